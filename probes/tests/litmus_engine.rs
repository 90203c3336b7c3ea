//! The batch runner end to end, hosted: batch boundaries, arena halves, placements and the time
//! budget never turn a harness mistake into an outcome, and every instance is counted once.
//! Synthetic tests with Rust bodies stand in for a buggy harness: a value stored to the wrong
//! variable or with a future generation must fail the run (`RunFailure::Harness`), whatever the
//! batch size.
#![cfg(feature = "std")]

use probes::attr::Arch;
use probes::config::Config;
use probes::hosted::{normal_attr, HostedPlatform};
use probes::litmus::engine::{self, RunFailure, RunOpts, SyncMode};
use probes::litmus::{self, Locs, Needs, Obs, Source, Test, GEN_STEP, MAX_REGS};
use probes::platform::Platform;
use probes::record::ModelVerdict;

fn arch() -> Arch {
    Arch::current().expect("a probed architecture")
}

fn platform() -> HostedPlatform {
    HostedPlatform::new(Config::defaults(arch()), "", Box::new(std::io::sink()))
}

const X: usize = 0;
const Y: usize = 1;

/// Thread 0: `x = 1` (this generation's value).
unsafe fn write_x(l: &Locs, _o: &mut [u32; MAX_REGS]) {
    // SAFETY: the engine passes valid, aligned locations.
    unsafe { l.p[X].write_volatile(l.w[X][1]) };
}

/// Thread 0 of a buggy harness: stores y's value into x.
unsafe fn write_x_wrong_var(l: &Locs, _o: &mut [u32; MAX_REGS]) {
    // SAFETY: as above.
    unsafe { l.p[X].write_volatile(l.w[Y][1]) };
}

/// Thread 0 of a buggy harness: stores a value of the next generation.
unsafe fn write_x_future(l: &Locs, _o: &mut [u32; MAX_REGS]) {
    // SAFETY: as above.
    unsafe { l.p[X].write_volatile(l.w[X][1] + GEN_STEP) };
}

/// Thread 0 of a harness replaying an old value: below the generation, it reads as 0.
unsafe fn write_x_stale(l: &Locs, _o: &mut [u32; MAX_REGS]) {
    // SAFETY: as above.
    unsafe { l.p[X].write_volatile(l.w[X][1].saturating_sub(GEN_STEP)) };
}

/// Thread 1: `r0 = x; r1 = y`.
unsafe fn read_x_y(l: &Locs, o: &mut [u32; MAX_REGS]) {
    // SAFETY: as above.
    unsafe {
        o[0] = l.p[X].read_volatile();
        o[1] = l.p[Y].read_volatile();
    }
}

const OBS: &[Obs] = &[
    Obs::Reg {
        thread: 1,
        name: "r0",
        slot: 0,
        var: X,
    },
    Obs::Reg {
        thread: 1,
        name: "r1",
        slot: 1,
        var: Y,
    },
    Obs::Loc { var: X },
];

const fn synthetic(name: &'static str, threads: &'static [litmus::Body]) -> Test {
    Test {
        name,
        arch: Arch::X86_64, // not run through `runnable`; the bodies are portable Rust
        vars: &["x", "y"],
        threads,
        regs: &[0, 2],
        obs: OBS,
        cond: &[(0, 1)],
        model: ModelVerdict::Allowed,
        source: Source::X86Tso("synthetic"),
        needs: Needs::Nothing,
    }
}

static GOOD: Test = synthetic("good", &[write_x, read_x_y]);
static WRONG_VAR: Test = synthetic("wrong-var", &[write_x_wrong_var, read_x_y]);
static FUTURE: Test = synthetic("future", &[write_x_future, read_x_y]);
static STALE: Test = synthetic("stale", &[write_x_stale, read_x_y]);

fn opts(iterations: u64, batch: usize, placements: usize, sync: SyncMode) -> RunOpts {
    let mut o = RunOpts::new(iterations);
    o.batch = batch;
    o.placements = placements;
    o.sync = sync;
    o.budget_ms = 0;
    o
}

const SYNCS: [SyncMode; 5] = [
    SyncMode::Barrier,
    SyncMode::BarrierStart,
    SyncMode::BarrierClock,
    SyncMode::Handshake,
    SyncMode::Lockstep,
];

#[test]
fn every_instance_is_counted_once_with_its_own_values() {
    let p = platform();
    let arena = p.arena(normal_attr(arch())).unwrap();
    let cpus: Vec<usize> = (0..p.cpu_count()).collect();
    if cpus.len() < 2 {
        return;
    }
    for sync in SYNCS {
        for (batch, placements) in [(1, 3), (3, 1), (17, 2), (100_000, 2)] {
            let n = 5_001;
            let out = engine::run(&p, &GOOD, &arena, &cpus, &opts(n, batch, placements, sync))
                .unwrap_or_else(|e| panic!("{sync:?} batch {batch}: {e:?}"));
            assert_eq!(out.iterations, n);
            assert_eq!(out.histogram.iter().map(|(_, c)| c).sum::<u64>(), n);
            // y is never written: r1 = 0 always; the final x is always this instance's 1.
            for (v, _) in &out.histogram {
                assert_eq!((v[1], v[2]), (0, 1), "{sync:?} batch {batch}: {v:?}");
            }
        }
    }
}

#[test]
fn harness_mistakes_fail_the_run_never_count() {
    let p = platform();
    let arena = p.arena(normal_attr(arch())).unwrap();
    let cpus: Vec<usize> = (0..p.cpu_count()).collect();
    if cpus.len() < 2 {
        return;
    }
    for test in [&WRONG_VAR, &FUTURE] {
        for sync in SYNCS {
            for batch in [1, 64, 100_000] {
                let r = engine::run(&p, test, &arena, &cpus, &opts(2_000, batch, 2, sync));
                match r {
                    Err(RunFailure::Harness(e)) => assert!(e.0.contains(test.name), "{e:?}"),
                    other => panic!("{} {sync:?} batch {batch}: {other:?}", test.name),
                }
            }
        }
    }
    // Values of earlier generations are the initial value, not an error.
    let out = engine::run(
        &p,
        &STALE,
        &arena,
        &cpus,
        &opts(2_000, 7, 2, SyncMode::Barrier),
    )
    .unwrap();
    assert_eq!(out.histogram, vec![(vec![0, 0, 0], 2_000)]);
}

#[test]
fn time_budget_stops_early_and_consistently() {
    let p = platform();
    let arena = p.arena(normal_attr(arch())).unwrap();
    let cpus: Vec<usize> = (0..p.cpu_count()).collect();
    if cpus.len() < 2 {
        return;
    }
    let mut o = opts(u64::from(u32::MAX), 256, 3, SyncMode::BarrierStart);
    o.budget_ms = 50;
    let t = std::time::Instant::now();
    let out = engine::run(&p, &GOOD, &arena, &cpus, &o).unwrap();
    assert!(t.elapsed().as_secs() < 20, "{:?}", t.elapsed());
    assert!(out.iterations > 0 && out.iterations < o.iterations);
    assert_eq!(
        out.histogram.iter().map(|(_, c)| c).sum::<u64>(),
        out.iterations
    );
}

#[test]
fn placements_keep_the_caller_and_distinct_cores() {
    let cpus = [0, 1, 2, 3];
    for threads in 1..=4 {
        for p in 0..8 {
            let v = engine::placement(&cpus, threads, p);
            assert_eq!(v.len(), threads);
            assert_eq!(v[0], 0);
            let mut s = v.clone();
            s.sort();
            s.dedup();
            assert_eq!(s.len(), threads, "{v:?}");
        }
    }
    // Two-thread tests visit every other core.
    let seen: Vec<usize> = (0..3).map(|p| engine::placement(&cpus, 2, p)[1]).collect();
    assert_eq!(seen, vec![1, 2, 3]);
}

/// A run restricted to one layout (the benchmark's per-layout figures) counts every instance once
/// with its own values, as the rotating default does.
#[test]
fn one_layout_runs_count_every_instance() {
    let p = platform();
    let arena = p.arena(normal_attr(arch())).unwrap();
    let cpus: Vec<usize> = (0..p.cpu_count()).collect();
    if cpus.len() < 2 {
        return;
    }
    for kind in engine::LayoutKind::ALL {
        for sync in [SyncMode::Barrier, SyncMode::Handshake, SyncMode::Lockstep] {
            let mut o = opts(3_001, 64, 2, sync);
            o.layout = Some(kind);
            let out = engine::run(&p, &GOOD, &arena, &cpus, &o)
                .unwrap_or_else(|e| panic!("{kind:?} {sync:?}: {e:?}"));
            assert_eq!(out.iterations, 3_001);
            for (v, _) in &out.histogram {
                assert_eq!((v[1], v[2]), (0, 1), "{kind:?} {sync:?}: {v:?}");
            }
            assert_eq!(out.histogram.iter().map(|(_, c)| c).sum::<u64>(), 3_001);
        }
    }
}

/// `litmus-debug=skew`: every role of a two-thread test records samples of the other's progress,
/// as many as its instances call for, and the summary names each role; the run's outcome is
/// counted as without it. A tuned `Lockstep` run reports its stagger and a score per arm.
#[test]
fn skew_measurement_and_tuned_stagger_are_reported() {
    let p = platform();
    let arena = p.arena(normal_attr(arch())).unwrap();
    let cpus: Vec<usize> = (0..p.cpu_count()).collect();
    if cpus.len() < 2 {
        return;
    }
    for sync in [SyncMode::Barrier, SyncMode::Lockstep] {
        let mut o = opts(4_000, 64, 1, sync);
        o.skew = true;
        let out = engine::run(&p, &GOOD, &arena, &cpus, &o).unwrap();
        assert_eq!(out.histogram.iter().map(|(_, c)| c).sum::<u64>(), 4_000);
        let skew = out.skew.expect("skew requested");
        for role in 0..2 {
            let samples: u64 = skew.by_role[role].iter().map(|c| c.samples).sum();
            // Every role runs every instance; one sample every 8 instances of a batch (62
            // batches of 64, then one of 32), one other role.
            assert_eq!(samples, 62 * 8 + 4, "{sync:?} role {role}");
            for c in &skew.by_role[role] {
                assert!(c.same <= c.near && c.near <= c.samples && c.not_started <= c.samples);
            }
        }
        let lines = skew.lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with("role 0: [0, 16) n="), "{lines:?}");
        assert_eq!(out.stagger.is_some(), sync == SyncMode::Lockstep);
    }
    let out = engine::run(
        &p,
        &GOOD,
        &arena,
        &cpus,
        &opts(1_000, 64, 1, SyncMode::Barrier),
    );
    assert!(out.unwrap().skew.is_none());
}
