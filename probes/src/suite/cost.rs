//! Family `cost`: what barriers and atomic accesses cost, per memory attribute.
//!
//! Each operation ([`crate::ops::cost`]) runs in an unrolled loop on core 0 against an aligned
//! doubleword of the attribute's arena, in [`BATCHES`] batches of `iters` × [`COST_SCALE`] /
//! [`BATCHES`] operations, timed with `Platform::cycles()` (PMCCNTR_EL0, RDTSC) or, where that is
//! `None`, with `now_ns()` (the record's counters are then `ns_…` and `op` says so). Each batch of
//! the operation is followed by a batch of its baseline: the empty loop for memory operations, the
//! loop with only the store for barriers (which are measured after a store to the arena, since a
//! barrier's cost depends on what it orders). The figure is the median over batches of
//! operation − baseline, per operation, ×100 (`cycles_per_op_x100`).
//!
//! Timing is not architected: records are informational (`verdict` `ok`) unless an access faults
//! where the alignment and attribute rules say it must not.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::excl::Clock;
use super::tear::{arena_addr, base_probe, features};
use crate::attr::{Arch, MemAttr};
use crate::fault::RawFault;
use crate::platform::{Platform, RuleEnv};
use crate::record::{ProbeResult, Record, Verdict};
use crate::rules::atomicity::{self, Feature, Features};
use crate::rules::{AccessKind, Expectation};

/// Copies of the body per loop iteration.
pub const UNROLL: u64 = 8;
/// Operations timed per operation and attribute = `Config::iters` × this.
pub const COST_SCALE: u64 = 4;
/// Batches per measurement (the median is reported).
pub const BATCHES: usize = 9;

/// A timing loop: runs the body `UNROLL × n` times at `addr`; returns the failed
/// Store-Exclusives.
///
/// # Safety
/// `addr` must be 8-byte aligned in a probe arena with 8 bytes of room; the fault guard must be
/// armed.
pub type LoopFn = unsafe fn(addr: *mut u8, n: u64) -> u64;

/// One timed operation.
pub struct CostOp {
    /// Record name (`dmb-ish`).
    pub name: &'static str,
    /// Instruction form for `op`.
    pub op: &'static str,
    /// Measured after a store, against the store alone.
    pub barrier: bool,
    /// The arena access the loop makes (for the fault rules).
    pub access: Option<AccessKind>,
    pub needs: Option<Feature>,
    pub run: LoopFn,
}

#[cfg(any(target_arch = "aarch64", target_arch = "x86_64"))]
fn table() -> (&'static [CostOp], Option<(LoopFn, LoopFn)>) {
    use crate::ops::cost;
    (cost::OPS, Some((cost::EMPTY_LOOP, cost::STORE_LOOP)))
}

#[cfg(not(any(target_arch = "aarch64", target_arch = "x86_64")))]
fn table() -> (&'static [CostOp], Option<(LoopFn, LoopFn)>) {
    (&[], None)
}

pub fn names() -> Vec<String> {
    let mut v: Vec<String> = table().0.iter().map(|o| String::from(o.name)).collect();
    if !v.is_empty() {
        v.push(String::from(TLB_STRIDE));
    }
    v
}

/// The TLB-miss-heavy variant: one load per 4 KiB page across the arena's 2 MiB window, so
/// `mapping=4k` (512 translations) and `mapping=2m` / `1g` (one) differ in TLB reach.
pub const TLB_STRIDE: &str = "tlb-stride";
/// Page stride of [`TLB_STRIDE`].
const STRIDE: usize = 4096;

const RULE_PMU: &str = "informational: timing is not architected; cycles from PMCCNTR_EL0, the \
     PMU cycle counter (Arm ARM, 'The Performance Monitors Extension')";
const RULE_TSC: &str =
    "informational: timing is not architected; cycles from RDTSC, the time-stamp \
     counter (Intel SDM Vol. 3B, 'Time-Stamp Counter'), which may tick at a constant rate \
     unrelated to the core clock";
const RULE_NS: &str = "informational: timing is not architected; no cycle counter here, so \
     nanoseconds from the platform's monotonic clock";

pub fn run(platform: &dyn Platform) {
    let cfg = platform.config();
    let env = platform.env();
    let feat = features(&env);
    let (ops, base) = table();
    let Some((empty, store)) = base else { return };
    for attr in cfg.mem_attrs() {
        for o in ops {
            if !cfg.selects("cost", o.name) {
                continue;
            }
            let rec = one(platform, o, attr, &env, &feat, empty, store);
            platform.emit(&Record::Probe(rec));
        }
        if cfg.selects("cost", TLB_STRIDE) {
            platform.emit(&Record::Probe(tlb_stride(platform, attr, &env)));
        }
    }
}

/// Read one doubleword per page over `pages` pages from `base` (page `p` at line `p % 64` of
/// the page, so the lines spread over the cache sets), `passes` times; returns a checksum so the
/// loads are not optimised away.
fn stride_pass(base: *const u8, pages: usize, step: usize, passes: u64) -> u64 {
    let mut sum = 0u64;
    for _ in 0..passes {
        for p in 0..pages {
            let off = p * step + (p % 64) * 64;
            // SAFETY: `off` < `pages × step` (≤ window length) and 8-aligned; the window is
            // mapped readable (`Platform::arena_window`).
            sum =
                sum.wrapping_add(unsafe { core::ptr::read_volatile(base.add(off) as *const u64) });
        }
    }
    sum
}

/// `cost/tlb-stride`: loads striding over every page of the 2 MiB window (a new translation per
/// load under 4 KiB pages, one for the whole window under a 2 MiB or 1 GiB block), minus the
/// same loads within one page (the same lines' offsets, one translation).
fn tlb_stride(platform: &dyn Platform, attr: MemAttr, env: &RuleEnv) -> crate::record::Probe {
    let clock = Clock::new(platform);
    let unit = if clock.cycles { "cycles" } else { "ns" };
    let mut rec = base_probe(
        "cost",
        String::from(TLB_STRIDE),
        attr.name(),
        64,
        0,
        String::from("ldr/mov: one load per 4 KiB page over 2 MiB"),
    );
    let (base, len) = match platform.arena_window(attr, &env.map) {
        Ok(w) => w,
        Err(why) => {
            rec.reason = Some(why);
            return rec;
        }
    };
    let pages = len / STRIDE;
    let passes = (platform.config().iters / 1000).clamp(1, 64);
    let (mut net, mut raw, mut same) = (Vec::new(), Vec::new(), Vec::new());
    let mut sum = stride_pass(base, pages, STRIDE, 1); // warm up
    let t0 = platform.now_ns();
    for _ in 0..BATCHES {
        let c0 = clock.now();
        sum = sum.wrapping_add(stride_pass(base, pages, STRIDE, passes));
        let c1 = clock.now();
        sum = sum.wrapping_add(stride_pass(base, pages, 0, passes));
        let c2 = clock.now();
        let per = |t: u64| t * 100 / (passes * pages as u64);
        let (r, s) = (per(c1.wrapping_sub(c0)), per(c2.wrapping_sub(c1)));
        raw.push(r);
        same.push(s);
        net.push(r.saturating_sub(s));
    }
    let elapsed = platform.now_ns() - t0;
    rec.cpus = alloc::vec![0];
    rec.iterations = passes * pages as u64 * BATCHES as u64;
    rec.elapsed_ms = Some(elapsed / 1_000_000);
    for (k, v) in [
        (format!("{unit}_per_op_x100"), median(net)),
        (format!("raw_{unit}_per_op_x100"), median(raw)),
        (format!("baseline_{unit}_per_op_x100"), median(same)),
        ("pages".into(), pages as u64),
        ("batches".into(), BATCHES as u64),
        ("checksum_low".into(), sum & 0xff),
    ] {
        rec.counts.insert(k, v);
    }
    rec.result = ProbeResult::Ok;
    rec.verdict = Verdict::Ok;
    rec.expected = format!(
        "informational: median {unit} per load striding over {pages} pages of {} mapped with \
         {} leaves, minus the same loads within one page; no architectural requirement",
        attr.name(),
        env.map.size.name()
    );
    rec.rule = String::from(match (clock.cycles, env.arch) {
        (false, _) => RULE_NS,
        (true, Arch::Aarch64) => RULE_PMU,
        (true, Arch::X86_64) => RULE_TSC,
    });
    rec
}

/// Median of per-op figures ×100.
fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

#[allow(clippy::too_many_arguments)]
fn one(
    platform: &dyn Platform,
    o: &CostOp,
    attr: MemAttr,
    env: &RuleEnv,
    feat: &Features,
    empty: LoopFn,
    store: LoopFn,
) -> crate::record::Probe {
    let clock = Clock::new(platform);
    let off = env.line;
    let unit = if clock.cycles { "cycles" } else { "ns" };
    let op_text = if clock.cycles {
        String::from(o.op)
    } else {
        format!("{} (timed in ns: no cycle counter)", o.op)
    };
    let mut rec = base_probe("cost", String::from(o.name), attr.name(), 64, 0, op_text);
    if let Some(f) = o.needs {
        if let Some(why) = feat.missing(f) {
            rec.reason = Some(format!("{}: {why}", o.op));
            return rec;
        }
    }
    let addr = match arena_addr(platform, attr, off, 8) {
        Ok(a) => a,
        Err(why) => {
            rec.reason = Some(why);
            return rec;
        }
    };
    let fx = o
        .access
        .map(|k| atomicity::access_fault_expectation(k, 64, addr, attr, env, feat));
    // Without a fault guard an operation that may fault here is not timed. The baseline loops
    // (the empty loop, an aligned store) never fault.
    if let Some(e) = &fx {
        if super::unguarded_skip(platform, &mut rec, &[("", e)]) {
            return rec;
        }
    }
    // Start from 0 (CAS/LDADD/XCHG bodies keep it 0).
    // SAFETY: `addr` is 8-byte aligned in the arena with room (checked by `arena_addr`).
    unsafe { core::ptr::write_volatile(addr as *mut u64, 0) };
    rec.cpus = alloc::vec![0];
    // Trial.
    let fault = platform.guarded(&mut || {
        // SAFETY: aligned arena address with room; guard armed.
        unsafe { (o.run)(addr as *mut u8, 1) };
    });
    if let Some(f) = fault {
        let ok = fx
            .as_ref()
            .is_some_and(|e| atomicity::fault_admitted(e, Some(&f)));
        rec.result = ProbeResult::Fault;
        rec.verdict = if ok { Verdict::Ok } else { Verdict::Deviation };
        rec.fault = Some(f.to_record());
        rec.iterations = 1;
        rec.counts.insert("faults".into(), 1);
        if let Some(e) = fx {
            rec.expected = e.text;
            rec.rule = String::from(e.rule);
        }
        return rec;
    }
    let total = platform
        .config()
        .iters
        .saturating_mul(COST_SCALE)
        .max(UNROLL * BATCHES as u64);
    let n = (total / (UNROLL * BATCHES as u64)).max(1);
    let ops_per_batch = n * UNROLL;
    let baseline = if o.barrier { store } else { empty };
    let (mut raw, mut base, mut net) = (Vec::new(), Vec::new(), Vec::new());
    let mut fails = 0u64;
    let mut faults = 0u64;
    // The first fault of the measured op's loops and whether a baseline loop faulted.
    let mut op_fault: Option<RawFault> = None;
    let mut baseline_faulted = false;
    let t0 = platform.now_ns();
    for _ in 0..BATCHES {
        let time = |f: LoopFn, fails: &mut u64| -> (u64, Option<RawFault>) {
            let mut ticks = 0;
            let flt = platform.guarded(&mut || {
                let c0 = clock.now();
                // SAFETY: aligned arena address with room; guard armed.
                *fails += unsafe { f(addr as *mut u8, n) };
                ticks = clock.now().wrapping_sub(c0);
            });
            (ticks * 100 / ops_per_batch, flt)
        };
        let (r, f1) = time(o.run, &mut fails);
        let mut unused = 0;
        let (b, f2) = time(baseline, &mut unused);
        faults += u64::from(f1.is_some()) + u64::from(f2.is_some());
        op_fault = op_fault.or(f1);
        baseline_faulted |= f2.is_some();
        raw.push(r);
        base.push(b);
        net.push(r.saturating_sub(b));
    }
    let elapsed = platform.now_ns() - t0;
    let (min, max) = (
        net.iter().copied().min().unwrap_or(0),
        net.iter().copied().max().unwrap_or(0),
    );
    let (raw_m, base_m, net_m) = (median(raw), median(base), median(net));
    rec.iterations = ops_per_batch * BATCHES as u64;
    rec.elapsed_ms = Some(elapsed / 1_000_000);
    for (k, v) in [
        (format!("{unit}_per_op_x100"), net_m),
        (format!("{unit}_per_op"), (net_m + 50) / 100),
        (format!("raw_{unit}_per_op_x100"), raw_m),
        (format!("baseline_{unit}_per_op_x100"), base_m),
        (format!("min_{unit}_per_op_x100"), min),
        (format!("max_{unit}_per_op_x100"), max),
        ("batches".into(), BATCHES as u64),
        ("ops_per_batch".into(), ops_per_batch),
        ("faults".into(), faults),
    ] {
        rec.counts.insert(k, v);
    }
    if !clock.cycles {
        rec.counts.insert("timebase_ns".into(), 1);
    }
    if o.access == Some(AccessKind::Exclusive) {
        rec.counts.insert("stxr_failures".into(), fails);
    }
    rec.result = if faults > 0 {
        ProbeResult::Fault
    } else {
        ProbeResult::Ok
    };
    // The trial did not fault: that too must be what the rule admits.
    let trial_ok = fx
        .as_ref()
        .is_none_or(|e| atomicity::fault_admitted(e, None));
    let fault_ok = trial_ok && batch_faults_ok(fx.as_ref(), op_fault.as_ref(), baseline_faulted);
    rec.fault = op_fault.map(|f| f.to_record());
    if let (Some(e), true) = (&fx, faults > 0) {
        rec.rule = String::from(e.rule);
    }
    rec.verdict = if fault_ok {
        Verdict::Ok
    } else {
        Verdict::Deviation
    };
    let what = if o.barrier {
        format!(
            "{} after a store to {}, minus the store alone",
            o.op,
            attr.name()
        )
    } else {
        format!("{} on {}, minus the empty loop", o.op, attr.name())
    };
    rec.expected =
        format!("informational: median {unit} per op of {what}; no architectural requirement");
    let timing_rule = match (clock.cycles, env.arch) {
        (false, _) => RULE_NS,
        (true, Arch::Aarch64) => RULE_PMU,
        (true, Arch::X86_64) => RULE_TSC,
    };
    if faults > 0 {
        if let Some(e) = &fx {
            rec.expected = format!("{}; {}", rec.expected, e.text);
        }
        rec.rule = if rec.rule.is_empty() {
            String::from(timing_rule)
        } else {
            format!("{timing_rule}; {}", rec.rule)
        };
    } else {
        rec.rule = String::from(timing_rule);
    }
    rec
}

/// Whether faults in the timed batches are what the fault rule admits: a fault of the measured
/// op must be of the kind `fx` expects (`Expectation::admits`, via `fault_admitted`); ops without
/// a fault rule (`fx` = `None`) and the baseline loops (an empty loop or an aligned store) must
/// never fault.
fn batch_faults_ok(
    fx: Option<&Expectation>,
    op_fault: Option<&RawFault>,
    baseline_faulted: bool,
) -> bool {
    if baseline_faulted {
        return false;
    }
    match (op_fault, fx) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(f), Some(e)) => atomicity::fault_admitted(e, Some(f)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::FaultKind;
    use crate::rules::FaultExpect;

    #[test]
    fn batch_faults_are_checked_against_the_expected_kind() {
        let align = Expectation {
            expect: FaultExpect::Fault(FaultKind::Alignment),
            text: String::new(),
            rule: "",
        };
        let either = Expectation {
            expect: FaultExpect::Either,
            ..align.clone()
        };
        let none = Expectation {
            expect: FaultExpect::NoFault,
            ..align.clone()
        };
        // ESR: Data Abort, same EL (EC 0x25); DFSC 0x21 alignment, 0x35 unsupported atomic.
        let alignment = RawFault::Aarch64 {
            esr: (0x25 << 26) | 0x21,
            far: 0,
            elr: 0,
        };
        let unsupported = RawFault::Aarch64 {
            esr: (0x25 << 26) | 0x35,
            far: 0,
            elr: 0,
        };
        assert_eq!(alignment.kind(), FaultKind::Alignment);
        assert!(batch_faults_ok(Some(&align), Some(&alignment), false));
        // The rule expects an Alignment fault: another kind is a deviation.
        assert!(!batch_faults_ok(Some(&align), Some(&unsupported), false));
        assert!(batch_faults_ok(Some(&either), Some(&unsupported), false));
        assert!(!batch_faults_ok(Some(&none), Some(&alignment), false));
        assert!(!batch_faults_ok(None, Some(&alignment), false));
        assert!(batch_faults_ok(Some(&none), None, false));
        assert!(!batch_faults_ok(Some(&either), None, true));
    }
}
