//! The litmus runner hosted on OS threads (2 on the development machine), on the built-in tests
//! (`probes/litmus`, generated into `file::FILE_TESTS`): forbidden outcomes are never observed (a
//! harness bug must not produce one), also with batch boundaries everywhere, SB's allowed
//! relaxed outcome is, and the `litmus` family's records form a verified report.
#![cfg(feature = "std")]

use std::io::Write;
use std::sync::{Arc, Mutex};

use probes::attr::Arch;
use probes::config::Config;
use probes::hosted::{normal_attr, HostedPlatform};
use probes::litmus::engine;
use probes::litmus::file::run::{self as frun, FileOutcome};
use probes::litmus::file::{self, Col, FileTest, Prepared};
use probes::platform::Platform;
use probes::record::{ModelVerdict, Record, Verdict};

fn arch() -> Arch {
    Arch::current().expect("a probed architecture")
}

/// Instances per test: fewer under emulation (aarch64 here runs under qemu-aarch64).
fn iterations(native: u64) -> u64 {
    match arch() {
        Arch::X86_64 => native,
        Arch::Aarch64 => native / 20,
    }
}

fn platform(cfg: Config, out: Box<dyn Write + Send>) -> HostedPlatform {
    HostedPlatform::new(cfg, "", out)
}

/// Forbidden outcomes an emulator is known to show, when the run says it is emulated
/// (`ATOMPROBE_EMULATED=qemu-user`, set when the aarch64 tests run under `qemu-aarch64`).
/// QEMU's TCG on an x86-64 host puts no store-to-load fence between an STLR and a later LDAR,
/// so the RCsc release-acquire order of the Arm ARM (B2.3, `bob`: [L];po;[A]) is lost and
/// SB+dmb.sy+rel-acq shows store buffering: an emulator deviation, reported as a `violation`.
fn known_emulator_deviations() -> &'static [&'static str] {
    match std::env::var("ATOMPROBE_EMULATED").as_deref() {
        Ok("qemu-user") => &["SB+dmb.sy+rel-acq"],
        _ => &[],
    }
}

/// The built-in tests of this architecture, prepared.
fn builtin() -> Vec<(&'static FileTest, Prepared)> {
    file::FILE_TESTS
        .iter()
        .filter(|t| t.arch == arch())
        .map(|t| {
            (
                t,
                file::prepare(t).unwrap_or_else(|e| panic!("{}: {e}", t.name)),
            )
        })
        .collect()
}

/// Whether `t` can run here: enough cores, and the features its instructions need.
fn runnable(p: &HostedPlatform, t: &FileTest, cpus: usize) -> bool {
    let feat = probes::suite::tear::features(&p.env());
    t.bodies.len() <= cpus && t.needs.iter().all(|f| feat.missing(*f).is_none())
}

fn observed(p: &Prepared, out: &FileOutcome) -> u64 {
    out.hist
        .iter()
        .filter(|(k, _)| p.satisfies(&k[..p.cols.len()]))
        .map(|(_, c)| *c)
        .sum()
}

#[test]
fn forbidden_outcomes_are_never_observed() {
    let p = platform(Config::defaults(arch()), Box::new(std::io::sink()));
    let arena = p.arena(normal_attr(arch())).unwrap();
    let cpus: Vec<usize> = (0..p.cpu_count()).collect();
    let mut opts = engine::RunOpts::new(iterations(1_000_000));
    // Every instance asked for, whatever the machine's load (the suite's time budget stops a
    // run early on a loaded machine).
    opts.budget_ms = 0;
    let mut ran = 0;
    for (t, prep) in builtin() {
        if t.model != ModelVerdict::Forbidden || !runnable(&p, t, cpus.len()) {
            continue;
        }
        let out = frun::run(&p, t, &prep, &arena, &cpus, &opts)
            .unwrap_or_else(|e| panic!("{}: {e}", t.name));
        assert_eq!(out.iterations, opts.iterations);
        let total: u64 = out.hist.values().sum();
        assert_eq!(total, out.iterations, "{}", t.name);
        let seen = observed(&prep, &out);
        if known_emulator_deviations().contains(&t.name) {
            println!("{}: known emulator deviation, observed {seen}", t.name);
        } else {
            assert_eq!(
                seen, 0,
                "{}: forbidden outcome observed: {:?}",
                t.name, out.hist
            );
        }
        let ns = out.elapsed_ns.max(1);
        println!(
            "{:<22} {:>9} it/s",
            t.name,
            u128::from(out.iterations) * 1_000_000_000 / u128::from(ns)
        );
        ran += 1;
    }
    assert!(ran >= 5, "only {ran} forbidden tests could run");
}

/// Forbidden tests with final-value columns, at batch sizes that put batch boundaries
/// everywhere: never observed (the runner re-writes every location's initial value between an
/// instance's outcome and its reuse; file/run.rs).
#[test]
fn forbidden_with_finals_across_batch_boundaries() {
    let p = platform(Config::defaults(arch()), Box::new(std::io::sink()));
    let arena = p.arena(normal_attr(arch())).unwrap();
    let cpus: Vec<usize> = (0..p.cpu_count()).collect();
    let mut ran = 0;
    for (t, prep) in builtin() {
        let finals = prep.cols.iter().any(|c| matches!(c, Col::Loc { .. }));
        if t.model != ModelVerdict::Forbidden || !finals || !runnable(&p, t, cpus.len()) {
            continue;
        }
        for batch in [1, 5, 333, 64] {
            let mut o = engine::RunOpts::new(3_000);
            o.batch = batch;
            o.placements = 2;
            o.budget_ms = 0;
            let out = frun::run(&p, t, &prep, &arena, &cpus, &o)
                .unwrap_or_else(|e| panic!("{}: {e}", t.name));
            assert_eq!(
                observed(&prep, &out),
                0,
                "{} batch {batch}: {:?}",
                t.name,
                out.hist
            );
            assert_eq!(out.hist.values().sum::<u64>(), out.iterations);
        }
        ran += 1;
    }
    assert!(ran > 0);
}

#[test]
fn sb_relaxed_outcome_is_observed() {
    let p = platform(Config::defaults(arch()), Box::new(std::io::sink()));
    if p.cpu_count() < 2 {
        return;
    }
    let arena = p.arena(normal_attr(arch())).unwrap();
    let (t, prep) = builtin().into_iter().find(|(t, _)| t.name == "SB").unwrap();
    let out = frun::run(
        &p,
        t,
        &prep,
        &arena,
        &[0, 1],
        &engine::RunOpts::new(iterations(1_000_000)),
    )
    .unwrap();
    let seen = observed(&prep, &out);
    println!(
        "SB: {} iterations, {seen} relaxed, {:?}",
        out.iterations, out.hist
    );
    // x86-64 hardware shows store buffering readily; under qemu-aarch64 it is up to the host.
    if arch() == Arch::X86_64 {
        assert!(seen > 0, "SB relaxed outcome never seen");
    }
}

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);
impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn litmus_family_records_form_a_verified_report() {
    let known: Vec<(&str, String)> = probes::suite::catalogue();
    let known: Vec<(&str, &str)> = known.iter().map(|(f, n)| (*f, n.as_str())).collect();
    let attrs = match arch() {
        Arch::X86_64 => "wb,uc",
        Arch::Aarch64 => "normal-wb,device-ngnrne",
    };
    let iters = if arch() == Arch::X86_64 { 2000 } else { 200 };
    let (cfg, errors) = Config::parse(
        &format!("probes=litmus attrs={attrs} iters={iters}"),
        arch(),
        &known,
    );
    assert!(errors.is_empty(), "{errors:?}");
    let sink = Sink::default();
    let p = platform(cfg, Box::new(sink.clone()));
    p.emit_begin();
    probes::suite::run(&p);
    p.finish();
    let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    let rep = probes::report::parse_report(&text);
    assert!(rep.integrity.is_verified(), "{:?}", rep.integrity);
    let lit: Vec<_> = rep
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Litmus(l) => Some(l),
            Record::Error(e) => panic!("error record: {e:?}"),
            _ => None,
        })
        .collect();
    let n = builtin().len();
    assert_eq!(lit.len(), 2 * n, "one record per test and attribute");
    for l in &lit {
        if !known_emulator_deviations().contains(&l.name.as_str()) {
            assert_ne!(l.verdict, Verdict::Violation, "{l:?}");
        }
        assert!(!l.rule.is_empty());
        if l.verdict == Verdict::Skipped {
            assert!(l.reason.is_some(), "{l:?}");
        } else {
            // All of them, unless the run's time budget (a loaded machine) stopped it early.
            assert!(l.iterations > 0 && l.iterations <= iters * probes::suite::litmus::ITERS_SCALE);
            assert_eq!(
                l.histogram.iter().map(|h| h.count).sum::<u64>(),
                l.iterations
            );
            assert!(l.iter_per_s > 0);
        }
    }
    // The uncached attribute has no arena hosted: every test skipped with the reason.
    assert!(lit
        .iter()
        .filter(|l| l.attr != normal_attr(arch()).name())
        .all(|l| l.verdict == Verdict::Skipped));
    let sb = lit
        .iter()
        .find(|l| l.name == "SB" && l.attr == normal_attr(arch()).name())
        .unwrap();
    assert_eq!(sb.model, ModelVerdict::Allowed);
    let (_, sb_prep) = builtin().into_iter().find(|(t, _)| t.name == "SB").unwrap();
    assert_eq!(sb.condition, sb_prep.condition());
}
