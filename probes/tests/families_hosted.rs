//! The `tear`, `excl` and `cost` families run as OS threads through a minimal std-thread
//! `Platform` (no signal handling, so only probes that cannot fault here are selected: at user
//! level on x86-64 Linux that excludes the misaligned MOVDQA and CMPXCHG16B forms, which raise
//! #GP). The full hosted runner lives in `probes::hosted`; this harness keeps the families'
//! own tests independent of it.
#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

mod common;

use std::sync::Mutex;
use std::time::Instant;

use probes::attr::{Arch, MemAttr};
use probes::config::Config;
use probes::fault::RawFault;
use probes::platform::{Arena, Platform, Privilege, RuleEnv, RunError};
use probes::record::{Probe, ProbeResult, Record, Verdict};
use probes::rules::atomicity::{self, Form, Vendor};
use probes::rules::{AccessKind, Placement};
use probes::suite::tear::{self, Shape, Side, TearCase};

struct Threads {
    cfg: Config,
    cpus: usize,
    t0: Instant,
    arena: usize,
    out: Mutex<Vec<Record>>,
}

const ARENA: usize = 4 * 4096;

impl Threads {
    fn new(probes: &[&str], iters: u64, cpus: usize) -> Threads {
        let mut cfg = Config::defaults(Arch::X86_64);
        cfg.probes = probes.iter().map(|s| s.to_string()).collect();
        cfg.attrs = vec!["wb".into()];
        cfg.iters = iters;
        let layout = std::alloc::Layout::from_size_align(ARENA, 4096).unwrap();
        // SAFETY: non-zero size; the arena lives for the rest of the test process.
        let arena = unsafe { std::alloc::alloc_zeroed(layout) } as usize;
        assert_ne!(arena, 0);
        Threads {
            cfg,
            cpus,
            t0: Instant::now(),
            arena,
            out: Mutex::new(Vec::new()),
        }
    }

    fn run(self) -> Vec<Probe> {
        probes::suite::run(&self);
        self.out
            .into_inner()
            .unwrap()
            .into_iter()
            .map(|r| match r {
                Record::Probe(p) => p,
                other => panic!("unexpected record {other:?}"),
            })
            .collect()
    }
}

impl Platform for Threads {
    fn env(&self) -> RuleEnv {
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
    fn config(&self) -> &Config {
        &self.cfg
    }
    fn cpu_count(&self) -> usize {
        self.cpus
    }
    fn now_ns(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }
    fn cycles(&self) -> Option<u64> {
        // SAFETY: RDTSC is available to user space on Linux x86-64.
        Some(unsafe { core::arch::x86_64::_rdtsc() })
    }
    fn arena(&self, attr: MemAttr) -> Result<Arena, String> {
        if attr != MemAttr::Wb {
            return Err(format!("{attr} is not available to user space"));
        }
        Ok(Arena {
            base: self.arena as *mut u8,
            len: ARENA,
            attr,
        })
    }
    fn guarded(&self, op: &mut dyn FnMut()) -> Option<RawFault> {
        op();
        None
    }

    /// No guard here: the families must not run a probe that may fault on this platform.
    fn catches_faults(&self) -> bool {
        false
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
        // Every record must survive the report format.
        let line = rec.to_line();
        assert_eq!(&Record::from_line(&line).unwrap(), rec, "{line}");
        self.out.lock().unwrap().push(rec.clone());
    }
    fn progress(&self, msg: &str) {
        eprintln!("{msg}");
    }
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(4)
}

fn show(recs: &[Probe]) {
    for r in recs {
        eprintln!(
            "{:<34} {:>10?} {:>9?} {:?} {}",
            r.name,
            r.result,
            r.verdict,
            r.counts,
            r.reason.as_deref().unwrap_or("")
        );
    }
}

/// Probes that cannot fault at user level on x86-64 (no #GP forms).
const TEAR_SAFE: &[&str] = &[
    "tear/mov-*",
    "tear/movdqu-*",
    "tear/movdqa-movdqa-128-aligned",
    "tear/cmpxchg16b-cmpxchg16b-128-aligned",
    "tear/go-loaduint64",
];

#[test]
fn tear_runs_and_aligned_accesses_never_tear() {
    if cores() < 2 {
        eprintln!("skipped: one core");
        return;
    }
    let recs = Threads::new(TEAR_SAFE, 2_000, cores()).run();
    show(&recs);
    assert!(recs.len() >= 20, "{}", recs.len());
    for r in &recs {
        assert_eq!(r.family, "tear");
        assert_eq!(r.verdict, Verdict::Ok, "{r:?}");
        assert!(!r.expected.is_empty() && !r.rule.is_empty(), "{r:?}");
        assert!(r.counts["reads"] > 0 && r.counts["writes"] > 0, "{r:?}");
        assert_eq!(r.iterations, r.counts["reads"]);
        if r.name.ends_with("-aligned") {
            assert_eq!(r.result, ProbeResult::Atomic, "{r:?}");
        }
    }
    let go: Vec<_> = recs
        .iter()
        .filter(|r| r.name.starts_with("go-loaduint64-"))
        .collect();
    assert_eq!(go.len(), 4);
    assert!(go
        .iter()
        .all(|r| r.expected.contains("does it fault") && r.expected.contains("does it tear")));
}

/// A "store" made of two 32-bit halves is not atomic by construction: the race must see tears,
/// and count them as deviations when the expectation demands 64-bit atomicity.
#[test]
fn the_race_detects_a_store_that_tears() {
    if cores() < 2 {
        eprintln!("skipped: one core");
        return;
    }
    /// Two separate 32-bit stores.
    unsafe fn split_store(a: *mut u8, v: u128) -> u32 {
        // SAFETY: the caller passes an 8-byte aligned arena address.
        unsafe {
            std::ptr::write_volatile(a as *mut u32, v as u32);
            std::hint::spin_loop();
            std::ptr::write_volatile((a as *mut u32).add(1), (v >> 32) as u32);
        }
        0
    }
    unsafe fn load64(a: *const u8, _fallback: u128) -> (u128, u32) {
        // SAFETY: the caller passes an 8-byte aligned arena address.
        (
            u128::from(unsafe { std::ptr::read_volatile(a as *const u64) }),
            0,
        )
    }
    static CASE: TearCase = TearCase {
        name: "split-store",
        width: 64,
        shape: Shape::Whole,
        load: Side {
            op: "mov",
            form: Form::Mov,
            kind: AccessKind::Load,
            width: 64,
            needs: None,
        },
        read: load64,
        store: Some((
            Side {
                op: "2x mov32",
                form: Form::Mov,
                kind: AccessKind::Store,
                width: 64,
                needs: None,
            },
            split_store,
        )),
        half: None,
        placements: &[Placement::Aligned],
    };
    let p = Threads::new(&["tear"], 1, cores());
    let addr = p.arena + 64;
    let env = p.env();
    let f = tear::features(&env);
    let whole = atomicity::atomicity(Form::Mov, 64, addr, MemAttr::Wb, &env, &f);
    let exp = atomicity::race_expectation(f.vendor, 64, &whole, Some(&whole), None);
    assert_eq!(exp.granule, 64);
    let mut torn = 0;
    for _ in 0..5 {
        let out = tear::race(&p, &CASE, addr, &exp, &[0, 1], 2_000_000);
        eprintln!("{out:?}");
        assert!(out.error.is_none());
        assert_eq!(out.torn, out.deviating);
        torn += out.torn;
        if torn > 0 {
            break;
        }
    }
    assert!(torn > 0, "no tear seen from a store split in two");
}

#[test]
fn excl_locked_operations_lose_no_update() {
    let recs = Threads::new(
        &[
            "excl/lock-cmpxchg-64-*",
            "excl/lock-xadd-64-*",
            "excl/xchg-64-*",
            "excl/lock-cmpxchg16b-128-aligned*",
        ],
        2_000,
        cores(),
    )
    .run();
    show(&recs);
    assert_eq!(recs.len(), 3 * 8 + 2, "{}", recs.len());
    for r in &recs {
        if r.result == ProbeResult::Skipped {
            assert!(cores() < 2 && r.name.ends_with("-contended"), "{r:?}");
            continue;
        }
        assert_eq!(r.verdict, Verdict::Ok, "{r:?}");
        assert_eq!(r.result, ProbeResult::Ok, "{r:?}");
        assert_eq!(r.counts["lost"], 0, "{r:?}");
        assert!(r.counts.contains_key("cycles_per_op_x100"), "{r:?}");
        if r.name.contains("cross-") {
            assert_eq!(r.counts.get("split_lock"), Some(&1), "{r:?}");
        }
        if r.name.ends_with("-contended") {
            assert_eq!(r.counts["final"], r.counts["expected"], "{r:?}");
        } else {
            assert_eq!(r.counts["successes"], r.counts["final"], "{r:?}");
        }
    }
}

#[test]
fn cost_reports_cycles_per_op() {
    let mut recs = Threads::new(&["cost"], 2_000, 1).run();
    show(&recs);
    assert_eq!(recs.len(), 9);
    // `tlb-stride` needs a multi-page window around the arena, which this test platform has
    // not: skipped, saying so.
    let stride = recs.pop().unwrap();
    assert_eq!(stride.name, "tlb-stride");
    assert_eq!(stride.result, ProbeResult::Skipped, "{stride:?}");
    assert!(
        stride.reason.as_deref().unwrap().contains("window"),
        "{stride:?}"
    );
    for r in &recs {
        assert_eq!(
            (r.result, r.verdict),
            (ProbeResult::Ok, Verdict::Ok),
            "{r:?}"
        );
        assert!(r.counts.contains_key("cycles_per_op_x100"), "{r:?}");
        assert!(r.counts["batches"] >= 5);
        assert!(r.rule.contains("RDTSC"));
    }
    let get = |n: &str| recs.iter().find(|r| r.name == n).unwrap().counts["cycles_per_op_x100"];
    // A locked operation is not free; this is a sanity bound, not a verdict.
    assert!(get("lock-add") > 0, "lock add measured as free");
}

#[test]
fn one_core_skips_racing_probes_with_a_reason() {
    let recs = Threads::new(
        &[
            "tear/mov-mov-64-aligned",
            "excl/lock-xadd-64-aligned-contended",
        ],
        10,
        1,
    )
    .run();
    show(&recs);
    assert_eq!(recs.len(), 2);
    for r in &recs {
        assert_eq!(
            (r.result, r.verdict),
            (ProbeResult::Skipped, Verdict::Skipped)
        );
        assert!(
            r.reason.as_deref().unwrap_or("").contains("2 cores"),
            "{r:?}"
        );
    }
}

#[test]
fn vendor_is_named_in_x86_expectations() {
    let env = RuleEnv {
        arch: Arch::X86_64,
        privilege: Privilege::User,
        mmu_on: true,
        align_check: false,
        line: 64,
        page: 4096,
        map: probes::mapping::Variant::DEFAULT,
    };
    let f = tear::features(&env);
    assert_ne!(f.vendor, Vendor::Arm);
    let recs = Threads::new(&["tear/mov-mov-32-aligned"], 100, cores().max(2)).run();
    assert!(
        recs[0].expected.contains(f.vendor.name()),
        "{:?}",
        recs[0].expected
    );
}
