//! The outcome classifier on synthetic traces: what must and must not count as the relaxed
//! outcome, and values that only a harness bug can produce.

use probes::attr::Arch;
use probes::litmus::engine::{tally, Histogram};
use probes::litmus::{value, Locs, Needs, Obs, Source, Test, GEN_STEP, MAX_REGS};
use probes::record::ModelVerdict;

/// Never run: the classifier only reads a test's shape.
unsafe fn nop(_: &Locs, _: &mut [u32; MAX_REGS]) {}

const fn reg(thread: usize, name: &'static str, slot: usize, var: usize) -> Obs {
    Obs::Reg {
        thread,
        name,
        slot,
        var,
    }
}

/// The shapes of the classic tests the cases below use (as probes/litmus/<arch>/*.litmus state
/// them: x86 SB and 2+2W, aarch64 MP).
fn test(arch: Arch, name: &str) -> &'static Test {
    static SB: Test = Test {
        name: "SB",
        arch: Arch::X86_64,
        vars: &["x", "y"],
        threads: &[nop, nop],
        regs: &[1, 1],
        obs: &[reg(0, "rax", 0, Y), reg(1, "rax", 0, X)],
        cond: &[(0, 0), (1, 0)],
        model: ModelVerdict::Allowed,
        source: Source::X86Kinds,
        needs: Needs::Nothing,
    };
    static W22: Test = Test {
        name: "2+2W",
        arch: Arch::X86_64,
        vars: &["x", "y"],
        threads: &[nop, nop],
        regs: &[0, 0],
        obs: &[Obs::Loc { var: X }, Obs::Loc { var: Y }],
        cond: &[(0, 2), (1, 2)],
        model: ModelVerdict::Forbidden,
        source: Source::X86Kinds,
        needs: Needs::Nothing,
    };
    static MP: Test = Test {
        name: "MP",
        arch: Arch::Aarch64,
        vars: &["x", "y"],
        threads: &[nop, nop],
        regs: &[0, 2],
        obs: &[reg(1, "X0", 0, Y), reg(1, "X2", 1, X)],
        cond: &[(0, 1), (1, 0)],
        model: ModelVerdict::Allowed,
        source: Source::ArmKinds,
        needs: Needs::Nothing,
    };
    match (arch, name) {
        (Arch::X86_64, "SB") => &SB,
        (Arch::X86_64, "2+2W") => &W22,
        (Arch::Aarch64, "MP") => &MP,
        _ => unreachable!("{name}"),
    }
}

const G: u32 = 7 * GEN_STEP;
const X: usize = 0;
const Y: usize = 1;

fn no_finals(_: usize, _: usize) -> u32 {
    panic!("no final values in this test")
}

/// SB on x86: each thread has one register (the other variable).
#[test]
fn sb_relaxed_only_when_both_miss() {
    let t = test(Arch::X86_64, "SB");
    // Instances: (0,0) initial; (0,0) with older generations' values; (1,0); (1,1).
    let t0 = [0, value(G - GEN_STEP, Y, 1), value(G, Y, 1), value(G, Y, 1)];
    let t1 = [0, value(3 * GEN_STEP, X, 1), 0, value(G, X, 1)];
    let mut h = Histogram::new(t.obs.len());
    tally(t, G, 4, &[&t0, &t1], &no_finals, &mut h).unwrap();
    assert_eq!(h.observed(t), 2);
    assert_eq!(
        h.entries(),
        vec![(vec![0, 0], 2), (vec![1, 0], 1), (vec![1, 1], 1)]
    );
}

/// MP on aarch64: 1:X0 reads y, 1:X2 reads x; relaxed is X0=1 and X2=0.
#[test]
fn mp_needs_the_flag_from_this_generation() {
    let t = test(Arch::Aarch64, "MP");
    let regs1 = [
        value(G, Y, 1),
        0, // relaxed: flag seen, data not
        value(G, Y, 1),
        value(G, X, 1), // flag and data
        value(G - GEN_STEP, Y, 1),
        0, // flag from an earlier chunk: the initial value
        0,
        value(G, X, 1), // data only
    ];
    let mut h = Histogram::new(t.obs.len());
    tally(t, G, 4, &[&[], &regs1], &no_finals, &mut h).unwrap();
    assert_eq!(h.observed(t), 1);
}

/// 2+2W: final values decide; a final value of an earlier generation cannot occur in a correct
/// run (both threads write both variables) but classifies as 0, never as 2.
#[test]
fn two_plus_two_w_finals() {
    let t = test(Arch::X86_64, "2+2W");
    let finals = |var: usize, i: usize| match (var, i) {
        (_, 0) => value(G, var, 2), // [x]=2; [y]=2: relaxed
        (X, 1) => value(G, X, 2),   // [x]=2; [y]=1
        (Y, 1) => value(G, Y, 1),
        (_, _) => value(G - GEN_STEP, var, 2), // older: 0
    };
    let mut h = Histogram::new(t.obs.len());
    tally(t, G, 3, &[&[], &[]], &finals, &mut h).unwrap();
    assert_eq!(h.observed(t), 1);
    assert!(h.entries().contains(&(vec![0, 0], 1)));
}

/// Values only a harness bug produces are errors, never outcomes.
#[test]
fn impossible_values_are_harness_errors() {
    let t = test(Arch::X86_64, "SB");
    let bad: [(&str, [u32; 1]); 4] = [
        ("other variable's tag", [value(G, X, 1)]),
        ("value never stored", [G]),
        ("litmus value 3", [G + 4 * Y as u32 + 3]),
        ("future generation", [value(G + GEN_STEP, Y, 1)]),
    ];
    for (what, t0) in bad {
        let mut h = Histogram::new(t.obs.len());
        let r = tally(t, G, 1, &[&t0, &[0]], &no_finals, &mut h);
        assert!(r.is_err(), "{what} was accepted");
    }
}
