//! The runner of tests from `.litmus` files (`probes::litmus::file::run`) hosted on OS threads,
//! in each sync mode it shares with the built-in engine: every counted outcome is one the test
//! can produce (the forbidden one never shows), the histogram sums to the instances run, and
//! every instance starts from the test's initial values (the reset-before-reuse the runner's
//! soundness argument rests on).
//!
//! The bodies below are what `atomprobe litmus` generates for these files (host/src/litmus_gen.rs:
//! the test's own instructions, registers renamed to operand slots); the sources are the
//! herdtools7 fixtures (CeCILL-B, see fixtures/litmus/LICENSE-herdtools7.txt).
#![cfg(feature = "std")]

use probes::attr::Arch;
use probes::config::Config;
use probes::hosted::{normal_attr, HostedPlatform};
use probes::litmus::engine::{LayoutKind, RunOpts, SyncMode};
use probes::litmus::file::run::{run, FileOutcome};
use probes::litmus::file::{prepare, FileBody, FileTest, Frame, Prepared, MAX_COLS};
use probes::platform::Platform;
use probes::record::ModelVerdict;

fn arch() -> Arch {
    Arch::current().expect("a probed architecture")
}

/// Instances per run: fewer under emulation (aarch64 here runs under qemu-aarch64).
fn iterations(native: u64) -> u64 {
    match arch() {
        Arch::X86_64 => native,
        Arch::Aarch64 => native / 20,
    }
}

/// The modes the file runner is tested in: the hosted default and the bare-metal default, plus
/// the per-instance handshake.
const MODES: [SyncMode; 3] = [SyncMode::Barrier, SyncMode::Lockstep, SyncMode::Handshake];

fn opts(mode: SyncMode, n: u64) -> RunOpts {
    let mut o = RunOpts::new(n);
    o.sync = mode;
    o.placements = 2;
    // No time bound: every instance must run, so the count check is exact.
    o.budget_ms = 0;
    o
}

#[cfg(target_arch = "x86_64")]
mod bodies {
    use super::Frame;
    // SB: P0 `movl $1,(x); movl (y),%eax`, P1 the same with x and y swapped.
    pub unsafe fn sb_p(f: &Frame, out: *mut u64) {
        // SAFETY: f.init[0], f.init[1] plus `f.off` are the instance's location addresses, and `out` has
        // room for the kept registers (FileBody).
        unsafe {
            core::arch::asm!(
                "movl $1,({r0})",
                "movl ({r1}),{r2:e}",
                r0 = inout(reg) f.init[0].wrapping_add(f.off) => _,
                r1 = inout(reg) f.init[1].wrapping_add(f.off) => _,
                r2 = inout(reg) f.init[2] => *out.add(0),
                options(att_syntax, nostack)
            )
        }
    }
    // MP: P0 `movl $1,(x); movl $1,(y)`.
    pub unsafe fn mp_p0(f: &Frame, _out: *mut u64) {
        // SAFETY: f.init[0], f.init[1] plus `f.off` are the instance's location addresses, and `out` has
        // room for the kept registers (FileBody).
        unsafe {
            core::arch::asm!(
                "movl $1,({r0})",
                "movl $1,({r1})",
                r0 = inout(reg) f.init[0].wrapping_add(f.off) => _,
                r1 = inout(reg) f.init[1].wrapping_add(f.off) => _,
                options(att_syntax, nostack)
            )
        }
    }
    // MP: P1 `movl (y),%eax; movl (x),%ebx`.
    pub unsafe fn mp_p1(f: &Frame, out: *mut u64) {
        // SAFETY: f.init[0], f.init[2] plus `f.off` are the instance's location addresses, and `out` has
        // room for the kept registers (FileBody).
        unsafe {
            core::arch::asm!(
                "movl ({r0}),{r1:e}",
                "movl ({r2}),{r3:e}",
                r0 = inout(reg) f.init[0].wrapping_add(f.off) => _,
                r1 = inout(reg) f.init[1] => *out.add(0),
                r2 = inout(reg) f.init[2].wrapping_add(f.off) => _,
                r3 = inout(reg) f.init[3] => *out.add(1),
                options(att_syntax, nostack)
            )
        }
    }
    // Reset: P0 `movl (x),%eax; movl $7,(x)`.
    pub unsafe fn reset_p0(f: &Frame, out: *mut u64) {
        // SAFETY: f.init[0] plus `f.off` are the instance's location addresses, and `out` has
        // room for the kept registers (FileBody).
        unsafe {
            core::arch::asm!(
                "movl ({r0}),{r1:e}",
                "movl $7,({r0})",
                r0 = inout(reg) f.init[0].wrapping_add(f.off) => _,
                r1 = inout(reg) f.init[1] => *out.add(0),
                options(att_syntax, nostack)
            )
        }
    }
}

#[cfg(target_arch = "aarch64")]
mod bodies {
    use super::Frame;
    // SB: `MOV W0,#1; STR W0,[X1]; LDR W2,[X3]` in both threads.
    pub unsafe fn sb_p(f: &Frame, out: *mut u64) {
        // SAFETY: f.init[1], f.init[3] plus `f.off` are the instance's location addresses, and `out` has
        // room for the kept registers (FileBody).
        unsafe {
            core::arch::asm!(
                "MOV {r0:w},#1",
                "STR {r0:w},[{r1:x}]",
                "LDR {r2:w},[{r3:x}]",
                r0 = inout(reg) f.init[0] => _,
                r1 = inout(reg) f.init[1].wrapping_add(f.off) => _,
                r2 = inout(reg) f.init[2] => *out.add(0),
                r3 = inout(reg) f.init[3].wrapping_add(f.off) => _,
                options(nostack)
            )
        }
    }
    // MP+dmb.sys: P0 `MOV W0,#1; STR W0,[X1]; DMB SY; MOV W2,#1; STR W2,[X3]`.
    pub unsafe fn mp_p0(f: &Frame, _out: *mut u64) {
        // SAFETY: f.init[1], f.init[3] plus `f.off` are the instance's location addresses, and `out` has
        // room for the kept registers (FileBody).
        unsafe {
            core::arch::asm!(
                "MOV {r0:w},#1",
                "STR {r0:w},[{r1:x}]",
                "DMB SY",
                "MOV {r2:w},#1",
                "STR {r2:w},[{r3:x}]",
                r0 = inout(reg) f.init[0] => _,
                r1 = inout(reg) f.init[1].wrapping_add(f.off) => _,
                r2 = inout(reg) f.init[2] => _,
                r3 = inout(reg) f.init[3].wrapping_add(f.off) => _,
                options(nostack)
            )
        }
    }
    // MP+dmb.sys: P1 `LDR W0,[X1]; DMB SY; LDR W2,[X3]`.
    pub unsafe fn mp_p1(f: &Frame, out: *mut u64) {
        // SAFETY: f.init[1], f.init[3] plus `f.off` are the instance's location addresses, and `out` has
        // room for the kept registers (FileBody).
        unsafe {
            core::arch::asm!(
                "LDR {r0:w},[{r1:x}]",
                "DMB SY",
                "LDR {r2:w},[{r3:x}]",
                r0 = inout(reg) f.init[0] => *out.add(0),
                r1 = inout(reg) f.init[1].wrapping_add(f.off) => _,
                r2 = inout(reg) f.init[2] => *out.add(1),
                r3 = inout(reg) f.init[3].wrapping_add(f.off) => _,
                options(nostack)
            )
        }
    }
    // Reset: P0 `LDR W0,[X1]; MOV W2,#7; STR W2,[X1]`.
    pub unsafe fn reset_p0(f: &Frame, out: *mut u64) {
        // SAFETY: f.init[1] plus `f.off` are the instance's location addresses, and `out` has
        // room for the kept registers (FileBody).
        unsafe {
            core::arch::asm!(
                "LDR {r0:w},[{r1:x}]",
                "MOV {r2:w},#7",
                "STR {r2:w},[{r1:x}]",
                r0 = inout(reg) f.init[0] => *out.add(0),
                r1 = inout(reg) f.init[1].wrapping_add(f.off) => _,
                r2 = inout(reg) f.init[2] => _,
                options(nostack)
            )
        }
    }
}

/// A test of `source`, `bodies`, `slots` (which start as addresses, which are kept), prepared as the suite prepares it.
fn test(
    name: &'static str,
    source: &'static str,
    bodies: &'static [FileBody],
    slots: &'static [&'static [&'static str]],
    addr: &'static [&'static [bool]],
    kept: &'static [&'static [usize]],
    model: ModelVerdict,
) -> (FileTest, Prepared) {
    let t = FileTest {
        name,
        source,
        arch: arch(),
        bodies,
        slots,
        addr,
        kept,
        wide: false,
        needs: &[],
        model,
        rule: "test",
        states: None,
    };
    let p = prepare(&t).unwrap_or_else(|e| panic!("{name}: {e}"));
    (t, p)
}

fn sb() -> (FileTest, Prepared) {
    match arch() {
        Arch::X86_64 => test(
            "SB",
            include_str!("fixtures/litmus/x86_64/SB.litmus"),
            &[bodies::sb_p, bodies::sb_p],
            &[&["&x", "&y", "rax"], &["&y", "&x", "rax"]],
            &[&[true, true, false], &[true, true, false]],
            &[&[2], &[2]],
            ModelVerdict::Allowed,
        ),
        Arch::Aarch64 => test(
            "SB",
            include_str!("fixtures/litmus/aarch64/SB.litmus"),
            &[bodies::sb_p, bodies::sb_p],
            &[&["X0", "X1", "X2", "X3"], &["X0", "X1", "X2", "X3"]],
            &[&[false, true, false, true], &[false, true, false, true]],
            &[&[2], &[2]],
            ModelVerdict::Allowed,
        ),
    }
}

/// MP with its relaxed outcome forbidden: x86-TSO's plain MP, AArch64's MP+dmb.sys.
fn mp_forbidden() -> (FileTest, Prepared) {
    match arch() {
        Arch::X86_64 => test(
            "MP",
            include_str!("fixtures/litmus/x86_64/MP.litmus"),
            &[bodies::mp_p0, bodies::mp_p1],
            &[&["&x", "&y"], &["&y", "rax", "&x", "rbx"]],
            &[&[true, true], &[true, false, true, false]],
            &[&[], &[1, 3]],
            ModelVerdict::Forbidden,
        ),
        Arch::Aarch64 => test(
            "MP+dmb.sys",
            include_str!("fixtures/litmus/aarch64/MP+dmb.sys.litmus"),
            &[bodies::mp_p0, bodies::mp_p1],
            &[&["X0", "X1", "X2", "X3"], &["X0", "X1", "X2", "X3"]],
            &[&[false, true, false, true], &[false, true, false, true]],
            &[&[], &[0, 2]],
            ModelVerdict::Forbidden,
        ),
    }
}

/// One thread that reads `x` (initially 5, or 0 with `zero`) and then writes 7 to it: every
/// instance must read the initial value, whatever earlier instances on the same locations
/// wrote. A test whose locations all start at 0 changes layout from batch to batch, the others
/// keep one per half: both resets are checked.
fn reset_probe(zero: bool) -> (FileTest, Prepared) {
    const X86: &str = "X86_64 reset\n{ x=5; }\n P0 ;\n movl (x),%eax ;\n movl $7,(x) ;\n\
                       locations [x;]\nexists (0:rax=7)\n";
    const A64: &str = "AArch64 reset\n{ x=5; 0:X1=x; }\n P0 ;\n LDR W0,[X1] ;\n MOV W2,#7 ;\n \
                       STR W2,[X1] ;\nlocations [x;]\nexists (0:X0=7)\n";
    const X86_0: &str = "X86_64 reset0\n{ x=0; }\n P0 ;\n movl (x),%eax ;\n movl $7,(x) ;\n\
                       locations [x;]\nexists (0:rax=7)\n";
    const A64_0: &str = "AArch64 reset0\n{ x=0; 0:X1=x; }\n P0 ;\n LDR W0,[X1] ;\n MOV W2,#7 ;\n \
                       STR W2,[X1] ;\nlocations [x;]\nexists (0:X0=7)\n";
    match arch() {
        Arch::X86_64 => test(
            "reset",
            if zero { X86_0 } else { X86 },
            &[bodies::reset_p0],
            &[&["&x", "rax"]],
            &[&[true, false]],
            &[&[1]],
            ModelVerdict::Forbidden,
        ),
        Arch::Aarch64 => test(
            "reset",
            if zero { A64_0 } else { A64 },
            &[bodies::reset_p0],
            &[&["X0", "X1", "X2"]],
            &[&[false, true, false]],
            &[&[0]],
            ModelVerdict::Forbidden,
        ),
    }
}

fn run_mode(t: &FileTest, p: &Prepared, mode: SyncMode, n: u64) -> FileOutcome {
    run_with(t, p, opts(mode, n))
}

fn run_with(t: &FileTest, p: &Prepared, o: RunOpts) -> FileOutcome {
    let (mode, n) = (o.sync, o.iterations);
    let plat = HostedPlatform::new(Config::defaults(arch()), "", Box::new(std::io::sink()));
    let arena = plat.arena(normal_attr(arch())).expect("hosted arena");
    let cpus: Vec<usize> = (0..plat.cpu_count()).collect();
    let out = run(&plat, t, p, &arena, &cpus, &o)
        .unwrap_or_else(|e| panic!("{} in {mode:?}: {e}", t.name));
    let total: u64 = out.hist.values().sum();
    assert_eq!(out.iterations, n, "{} in {mode:?}: instances run", t.name);
    assert_eq!(total, n, "{} in {mode:?}: histogram total", t.name);
    out
}

fn outcomes(p: &Prepared, out: &FileOutcome) -> Vec<(Vec<i64>, u64)> {
    let n = p.cols.len().min(MAX_COLS);
    out.hist
        .iter()
        .map(|(k, c)| (k[..n].to_vec(), *c))
        .collect()
}

#[test]
fn sb_outcomes_are_the_tests_own() {
    if HostedPlatform::new(Config::defaults(arch()), "", Box::new(std::io::sink())).cpu_count() < 2
    {
        eprintln!("skipped: needs 2 CPUs");
        return;
    }
    let (t, p) = sb();
    // `RunOpts::adaptive` (the hosted default): the trials count towards the instances run.
    // (At least 32 × 2048 instances: fewer run no trials.)
    let mut o = opts(SyncMode::Barrier, iterations(200_000).max(70_000));
    o.adaptive = true;
    let out = run_with(&t, &p, o);
    let ([barrier, clock], mode) = out.trials.expect("trials ran");
    assert!(barrier.ns > 0 && clock.ns > 0);
    // Every instance of the trials is counted, once, by one of the two.
    let trial_instances = 4 * (o.iterations / 32);
    assert!(barrier.relaxed + barrier.off_mode <= trial_instances / 2 + 1);
    assert!(clock.relaxed + clock.off_mode <= trial_instances / 2 + 1);
    assert!(
        matches!(mode, SyncMode::Barrier | SyncMode::BarrierClock),
        "{mode:?}"
    );
    for mode in MODES {
        let out = run_mode(&t, &p, mode, iterations(200_000));
        // Lockstep tunes its stagger (the engine's tuner) and reports it.
        assert_eq!(
            out.stagger.is_some(),
            mode == SyncMode::Lockstep,
            "{mode:?}"
        );
        for (vals, c) in outcomes(&p, &out) {
            assert!(
                vals.iter().all(|v| *v == 0 || *v == 1),
                "SB in {mode:?}: outcome {} ({c} times) is not one SB can produce",
                p.outcome(&vals)
            );
        }
    }
}

#[test]
fn forbidden_mp_outcome_is_never_observed() {
    if HostedPlatform::new(Config::defaults(arch()), "", Box::new(std::io::sink())).cpu_count() < 2
    {
        eprintln!("skipped: needs 2 CPUs");
        return;
    }
    let (t, p) = mp_forbidden();
    for mode in MODES {
        let out = run_mode(&t, &p, mode, iterations(200_000));
        for (vals, c) in outcomes(&p, &out) {
            assert!(
                vals.iter().all(|v| *v == 0 || *v == 1),
                "{} in {mode:?}: outcome {} ({c} times) is not one MP can produce",
                t.name,
                p.outcome(&vals)
            );
            assert!(
                !p.satisfies(&vals),
                "{} in {mode:?}: forbidden outcome {} observed {c} times",
                t.name,
                p.outcome(&vals)
            );
        }
    }
}

/// The soundness argument: an instance's locations hold their initial values when it starts.
/// Without the reset every reuse of an instance's location would read the 7 an earlier batch
/// wrote.
#[test]
fn every_instance_starts_from_the_initial_values() {
    let layouts = [
        None,
        Some(LayoutKind::LinePerVar),
        Some(LayoutKind::Packed),
        Some(LayoutKind::SameLine),
    ];
    for (init, mode, layout) in [5, 0].into_iter().flat_map(|init| {
        MODES
            .into_iter()
            .flat_map(move |m| layouts.map(move |l| (init, m, l)))
    }) {
        let (mut t, p) = reset_probe(init == 0);
        // Locations 4 bytes apart (no access is wider) and, marked wide, 8 bytes apart.
        t.wide = (mode as usize + layout.map_or(0, |l| l as usize)) % 2 == 1;
        let mut o = opts(mode, iterations(30_000));
        o.layout = layout;
        let out = run_with(&t, &p, o);
        let got = outcomes(&p, &out);
        assert_eq!(
            got.len(),
            1,
            "reset from {init} in {mode:?}, layout {layout:?}, wide {}: {:?}",
            t.wide,
            got.iter()
                .map(|(v, c)| format!("{} ×{c}", p.outcome(v)))
                .collect::<Vec<_>>()
        );
        let reg = if arch() == Arch::X86_64 { "rax" } else { "X0" };
        assert_eq!(p.outcome(&got[0].0), format!("[x]=7; 0:{reg}={init};"));
    }
}
