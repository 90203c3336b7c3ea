//! Issue 5: on a platform that cannot catch a fault (`Platform::catches_faults() == false`:
//! macOS and Windows, no fault guard), every family skips the probes whose fault rule admits a
//! fault (`Fault(_)` or `Either`), with a reason in words, and still runs the others.
//!
//! The test platform never executes a guarded operation: `guarded` counts the call and returns
//! "no fault", so nothing can crash the test. Each emitted record is paired with the number of
//! `guarded` calls made since the previous record (every family emits a probe's record after
//! running it), which is what "the probe ran" means here. Which probes may fault is decided
//! independently of the families' code, from the x86-64 rules as the Intel SDM states them
//! (see `may_fault_user` and `may_fault_ac`).
#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use probes::attr::{Arch, MemAttr};
use probes::config::Config;
use probes::fault::RawFault;
use probes::platform::{Arena, Platform, Privilege, RuleEnv, RunError};
use probes::record::{Probe, ProbeResult, Record, Verdict};
use probes::rules::{Expectation, FaultExpect};

const ARENA: usize = 4 * 4096;
const NOT_RUN: &str = "not run: this platform cannot catch a fault (no fault guard on Linux)";

struct Mock {
    cfg: Config,
    env: RuleEnv,
    catches: bool,
    t0: Instant,
    arena: usize,
    /// `guarded` calls so far, and the count when the last record was emitted.
    calls: AtomicUsize,
    out: Mutex<(usize, Vec<(Probe, usize)>)>,
}

impl Mock {
    fn new(catches: bool, env: RuleEnv) -> Mock {
        let mut cfg = Config::defaults(Arch::X86_64);
        cfg.probes = ["fault", "tear", "excl", "cost"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        cfg.attrs = vec!["wb".into()];
        cfg.iters = 10;
        let layout = std::alloc::Layout::from_size_align(ARENA, 4096).unwrap();
        // SAFETY: non-zero size; leaked for the rest of the test process. The families write the
        // lock counters and initial values here with plain volatile accesses.
        let arena = unsafe { std::alloc::alloc_zeroed(layout) } as usize;
        assert_ne!(arena, 0);
        Mock {
            cfg,
            env,
            catches,
            t0: Instant::now(),
            arena,
            calls: AtomicUsize::new(0),
            out: Mutex::new((0, Vec::new())),
        }
    }

    /// Every family, as `atomprobe host` runs them; each record with its `guarded` calls.
    fn run(self) -> Vec<(Probe, usize)> {
        probes::suite::fault::run(&self);
        probes::suite::tear::run(&self);
        probes::suite::excl::run(&self);
        probes::suite::cost::run(&self);
        let (last, recs) = self.out.into_inner().unwrap();
        assert_eq!(
            last,
            self.calls.load(Ordering::SeqCst),
            "guarded calls after the last record"
        );
        recs
    }
}

fn user_env() -> RuleEnv {
    RuleEnv {
        arch: Arch::X86_64,
        privilege: Privilege::User,
        mmu_on: true,
        align_check: false,
        line: 64,
        page: 4096,
        map: probes::mapping::Variant::DEFAULT,
    }
}

/// Ring 3 with CR0.AM and RFLAGS.AC set: every misaligned access may fault (#AC), some only
/// processor-dependently (`Either`).
fn ac_env() -> RuleEnv {
    RuleEnv {
        privilege: Privilege::Ring(3),
        align_check: true,
        ..user_env()
    }
}

impl Platform for Mock {
    fn env(&self) -> RuleEnv {
        self.env
    }
    fn config(&self) -> &Config {
        &self.cfg
    }
    fn cpu_count(&self) -> usize {
        2
    }
    fn now_ns(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }
    fn cycles(&self) -> Option<u64> {
        None
    }
    fn arena(&self, attr: MemAttr) -> Result<Arena, String> {
        Ok(Arena {
            base: self.arena as *mut u8,
            len: ARENA,
            attr,
        })
    }
    fn guarded(&self, _op: &mut dyn FnMut()) -> Option<RawFault> {
        // Counted, never executed: a probe that was not skipped "ran".
        self.calls.fetch_add(1, Ordering::SeqCst);
        None
    }
    fn catches_faults(&self) -> bool {
        self.catches
    }
    fn run_on(
        &self,
        cpus: &[usize],
        _timeout_ms: u64,
        body: &(dyn Fn(usize) + Sync),
    ) -> Result<(), RunError> {
        common::run_on_threads(cpus, body)
    }
    fn emit(&self, rec: &Record) {
        let Record::Probe(p) = rec else {
            panic!("unexpected record {rec:?}")
        };
        let now = self.calls.load(Ordering::SeqCst);
        let mut o = self.out.lock().unwrap();
        let ran = now - o.0;
        o.0 = now;
        o.1.push((p.clone(), ran));
    }
    fn progress(&self, _msg: &str) {}
}

fn aligned(p: &Probe) -> bool {
    // Placement names: aligned, misaligned, cross-line, cross-page. `cost` has no placements:
    // every loop works on an aligned doubleword at the start of a line.
    p.family == "cost" || p.name.contains("-aligned")
}

/// At user level without alignment checking the only x86-64 accesses that may fault are
/// MOVDQA and CMPXCHG16B off a 16-byte boundary (Intel SDM Vol. 2B MOVDQA, Vol. 2A CMPXCHG16B:
/// #GP(0)); every placement but `aligned` is off it for these 128-bit accesses.
fn may_fault_user(p: &Probe) -> bool {
    (p.op.contains("movdqa") || p.op.contains("cmpxchg16b")) && !aligned(p)
}

/// Ring 3 with alignment checking: every misaligned access may fault (#AC, SDM Vol. 3A 6.15;
/// #GP for MOVDQA/CMPXCHG16B), except an unaligned 128-bit vector move on an 8-byte boundary.
fn may_fault_ac(p: &Probe) -> bool {
    !aligned(p) && (!p.op.contains("movdqu") || !p.offset.is_multiple_of(8))
}

fn not_run(p: &Probe) -> bool {
    p.reason.as_deref().is_some_and(|r| r.starts_with(NOT_RUN))
}

fn check(recs: &[(Probe, usize)], may_fault: fn(&Probe) -> bool) -> usize {
    let mut skipped = 0;
    for (p, ran) in recs {
        if may_fault(p) {
            assert_eq!(*ran, 0, "{} {}: ran {ran} guarded ops", p.family, p.name);
            assert!(not_run(p), "{} {}: {:?}", p.family, p.name, p.reason);
            assert_eq!(
                (p.result, p.verdict, p.iterations),
                (ProbeResult::Skipped, Verdict::Skipped, 0),
                "{p:?}"
            );
            let reason = p.reason.as_deref().unwrap();
            assert!(reason.ends_with("says this access may fault"), "{reason}");
            // The rule is named in the reason and in the record.
            assert!(!p.rule.is_empty() && reason.contains(&p.rule), "{p:?}");
            assert!(!p.expected.is_empty(), "{p:?}");
            skipped += 1;
        } else {
            assert!(
                !not_run(p),
                "{} {}: skipped: {:?}",
                p.family,
                p.name,
                p.reason
            );
            // A probe that cannot fault runs (unless skipped for another reason: a missing CPU
            // feature).
            if p.result != ProbeResult::Skipped || p.family == "tear" {
                assert!(*ran > 0 || p.name.ends_with("-contended"), "{p:?}");
            }
        }
    }
    skipped
}

#[test]
fn without_a_guard_probes_that_may_fault_are_not_run() {
    let recs = Mock::new(false, user_env()).run();
    let skipped = check(&recs, may_fault_user);
    for fam in ["fault", "tear", "excl"] {
        assert!(
            recs.iter().any(|(p, _)| p.family == fam && not_run(p)),
            "{fam}: nothing skipped"
        );
        assert!(
            recs.iter().any(|(p, ran)| p.family == fam && *ran > 0),
            "{fam}: nothing ran"
        );
    }
    // Aligned cost loops cannot fault: all of them run (`tlb-stride` makes plain loads over a
    // window this mock has not, and is skipped for that).
    assert!(recs
        .iter()
        .filter(|(p, _)| p.family == "cost" && p.name != "tlb-stride")
        .all(|(p, ran)| *ran > 0 && !not_run(p)));
    // The same suite with a guard: the same records, nothing skipped for want of one, and the
    // skipped probes do make guarded accesses there.
    let guarded = Mock::new(true, user_env()).run();
    assert_eq!(guarded.len(), recs.len());
    let mut more = 0;
    for ((g, g_ran), (u, _)) in guarded.iter().zip(&recs) {
        assert_eq!((&g.family, &g.name), (&u.family, &u.name));
        assert!(!not_run(g), "{g:?}");
        if not_run(u) {
            // `excl` runs both forms before emitting either: the contended run's calls are
            // counted with the uncontended record.
            assert!(*g_ran > 0 || g.name.ends_with("-contended"), "{g:?}");
            more += 1;
        }
    }
    assert_eq!(more, skipped);
}

#[test]
fn without_a_guard_either_expectations_are_skipped_too() {
    let recs = Mock::new(false, ac_env()).run();
    check(&recs, may_fault_ac);
    // "#AC or no fault" (processor-dependent) is `Either`: skipped as well.
    assert!(
        recs.iter()
            .any(|(p, _)| not_run(p) && p.expected.contains("processor-dependent")),
        "no Either expectation among the skipped records"
    );
}

/// The helper on its own: `Fault(_)` and `Either` skip, `NoFault` runs, and a platform with a
/// guard runs everything.
#[test]
fn unguarded_skip_follows_the_expectation() {
    let e = |expect| Expectation {
        expect,
        text: "TEXT".into(),
        rule: "RULE",
    };
    let fault = e(FaultExpect::Fault(probes::fault::FaultKind::Alignment));
    let either = e(FaultExpect::Either);
    let none = e(FaultExpect::NoFault);
    let blank = || {
        let mut p = Probe {
            family: "fault".into(),
            name: "x".into(),
            attr: "wb".into(),
            width: 64,
            offset: 1,
            op: "op".into(),
            cpus: vec![0],
            iterations: 1,
            result: ProbeResult::Ok,
            counts: Default::default(),
            expected: String::new(),
            verdict: Verdict::Ok,
            fault: None,
            rule: String::new(),
            reason: None,
            elapsed_ms: None,
            map: Default::default(),
        };
        p.counts.insert("line".into(), 3);
        p
    };
    let unguarded = Mock::new(false, user_env());
    let with_guard = Mock::new(true, user_env());
    for (exp, skip) in [(&fault, true), (&either, true), (&none, false)] {
        let mut p = blank();
        assert_eq!(
            probes::suite::unguarded_skip(&unguarded, &mut p, &[("", exp)]),
            skip
        );
        if skip {
            assert_eq!(
                p.reason.as_deref(),
                Some(
                    "not run: this platform cannot catch a fault (no fault guard on Linux), and \
                     RULE (TEXT) says this access may fault"
                )
            );
            assert_eq!(
                (p.result, p.verdict),
                (ProbeResult::Skipped, Verdict::Skipped)
            );
            assert_eq!((p.expected.as_str(), p.rule.as_str()), ("TEXT", "RULE"));
            assert_eq!(p.iterations, 0);
        } else {
            assert_eq!(p, blank());
        }
        let mut p = blank();
        assert!(!probes::suite::unguarded_skip(
            &with_guard,
            &mut p,
            &[("", exp)]
        ));
        assert_eq!(p, blank());
    }
    // Several accesses: only those that may fault are named, each once.
    let mut p = blank();
    assert!(probes::suite::unguarded_skip(
        &unguarded,
        &mut p,
        &[("load", &none), ("store", &fault), ("store", &fault)]
    ));
    assert_eq!(
        p.reason.as_deref(),
        Some(
            "not run: this platform cannot catch a fault (no fault guard on Linux), and store: \
             RULE (TEXT) says this access may fault"
        )
    );
    assert_eq!(p.expected, "store: TEXT");
}
