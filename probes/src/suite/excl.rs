//! Family `excl`: exclusives and atomic read-modify-writes.
//!
//! For each operation ([`crate::ops::excl`]), attribute and placement:
//! - `<op>-<placement>`: one attempt under the fault guard on core 0 (`fault` when it faults,
//!   judged by the alignment rules), then an uncontended run on core 0 that counts how many
//!   attempts succeed (`successes`, `failures`, `success_ppm`) and times them
//!   (`cycles_per_op_x100`, or `ns_per_op_x100` where there is no cycle counter). No success at
//!   all within [`LIVELOCK_MS`] is `livelock`.
//! - `<op>-<placement>-contended`: every selected core (up to [`MAX_CONTENDERS`]) adds 1 to one
//!   counter `iters` × [`CONTENDED_SCALE`] times, retrying failed attempts. A core with no
//!   success for [`LIVELOCK_MS`] gives up: `livelock`.
//!
//! Both runs compare the counter's final value with the successful attempts: `lost` = successes
//! − final when the counter is short (an update was lost), `excess` = final − successes when it is
//! over (an increment the successes do not account for: a successful Store-Exclusive, CAS, LDADD
//! or locked increment counted twice, or a torn counter). `result` is `lost-updates` for either.
//! A fault inside a run (after the trial did not fault) is judged by the same fault rule as the
//! trial: where the rule admits the fault (e.g. IMPLEMENTATION DEFINED on this memory type) it is
//! reported, not a deviation; `fault` holds the decoded fault.
//!
//! Expectations: an atomic read-modify-write never loses an update (Arm ARM B2.9 exclusives and
//! B2.2 atomics; SDM Vol. 3A 9.1.2 / APM Vol. 2 7.3.2 LOCKed operations). On aarch64 memory other
//! than Normal Write-Back, whether exclusives and LSE atomics work at all is IMPLEMENTATION
//! DEFINED (Arm ARM B2.9.5, B2.2.6): faults, livelock or lost updates are reported, not deviations.
//! `offset` is the byte offset of the counter from the start of its cache line. `seed=` chooses
//! the counter's cache line within the arena's first page (`super::tear::seeded_offset`;
//! counter `line`); the lock forms' counter sits in the page's last line, clear of it.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::UnsafeCell;

use super::tear::{arena_addr, base_probe, features, seeded_offset};
use crate::attr::{Arch, MemAttr};
use crate::config::SeedRng;
use crate::fault::RawFault;
use crate::platform::{Platform, RuleEnv};
use crate::record::{Probe, ProbeResult, Record, Verdict};
use crate::rules::atomicity::{self, Feature, Features};
use crate::rules::{AccessKind, Expectation, FaultExpect, Placement};
use crate::suite::RoleSlots;

/// The attempt succeeded.
pub const ST_OK: u32 = 0;
/// A guarded instruction faulted.
pub const ST_FAULT: u32 = 1;
/// Store-Exclusive failed / CAS lost / lock busy: try again.
pub const ST_RETRY: u32 = 2;

/// Uncontended attempts = `Config::iters` × this.
pub const UNCONTENDED_SCALE: u64 = 1;
/// Increments per core in the contended run = `Config::iters` × this.
pub const CONTENDED_SCALE: u64 = 1;
/// A core that sees no successful attempt for this long gives up (`livelock`).
pub const LIVELOCK_MS: u64 = 500;
/// No run lasts longer than this.
pub const RUN_BUDGET_MS: u64 = 3_000;
/// At most this many cores contend.
pub const MAX_CONTENDERS: usize = 4;

/// One read-modify-write operation.
pub struct ExclOp {
    /// Name without placement (`ldxr-stxr-64`).
    pub name: &'static str,
    /// Instruction form for `op`.
    pub op: &'static str,
    /// Access size in bits (128 for pairs and CMPXCHG16B: the alignment the rules check).
    pub width: u32,
    pub kind: AccessKind,
    pub needs: Option<Feature>,
    /// A failed attempt is a failed Store-Exclusive (counted as the STXR failure rate).
    pub exclusive: bool,
    /// The operation is a lock (SWP / XCHG) around a plain increment of a separate counter.
    pub lock_counter: bool,
    /// One attempt to add 1; returns [`ST_OK`], [`ST_FAULT`] or [`ST_RETRY`].
    ///
    /// # Safety
    /// `addr .. addr + width/8` and `aux .. aux + 8` (8-byte aligned) must lie in a probe arena,
    /// and the fault guard must be armed.
    pub attempt: unsafe fn(addr: *mut u8, aux: *mut u8) -> u32,
    pub placements: &'static [Placement],
}

fn ops() -> &'static [ExclOp] {
    #[cfg(any(target_arch = "aarch64", target_arch = "x86_64"))]
    {
        crate::ops::excl::OPS
    }
    #[cfg(not(any(target_arch = "aarch64", target_arch = "x86_64")))]
    {
        &[]
    }
}

pub fn names() -> Vec<String> {
    let mut v = Vec::new();
    for o in ops() {
        for &p in o.placements {
            v.push(name(o, p, false));
            v.push(name(o, p, true));
        }
    }
    v
}

fn name(o: &ExclOp, p: Placement, contended: bool) -> String {
    format!(
        "{}-{}{}",
        o.name,
        p.name(),
        if contended { "-contended" } else { "" }
    )
}

/// Whether exclusives / atomics may legitimately fail, fault or livelock on `attr` here:
/// IMPLEMENTATION DEFINED off Normal Write-Back memory on aarch64 (Arm ARM B2.9.5, B2.2.6),
/// which includes everything with the data caches off (`caches=off`: SCTLR_EL1.C = 0 makes
/// Normal accesses Non-cacheable). On Non-shareable Normal memory (`share=non`) only the local
/// monitor takes part (Arm ARM B2.9.1 "Exclusive access instructions and Non-shareable memory
/// locations"; the global monitor, B2.9.2, serves Shareable locations), and Non-shareable
/// locations need not be coherent between cores, so races between cores may lose updates there.
pub fn exclusives_may_fail(attr: MemAttr, env: &RuleEnv) -> bool {
    env.arch == Arch::Aarch64
        && (crate::rules::aarch64::effective_attr(attr, env) != MemAttr::NormalWb
            || env.map.share == crate::mapping::Share::Non)
}

const RULE_ARM_EXCL: &str = "Arm ARM B2.9: a Store-Exclusive succeeds only if no other observer \
     wrote the location since the Load-Exclusive, so an LDXR/STXR increment never loses an \
     update; B2.9.5: exclusives are supported on Normal Inner/Outer Write-Back memory, \
     IMPLEMENTATION DEFINED elsewhere";
const RULE_ARM_LSE: &str = "Arm ARM B2.2.1/C6 (CAS, LDADD, SWP): LSE atomics are single-copy \
     atomic read-modify-writes; B2.2.6: support on memory other than Normal Write-Back is \
     IMPLEMENTATION DEFINED";
const RULE_X86_LOCK: &str = "Intel SDM Vol. 3A 9.1.2 / 9.1.2.2 and AMD APM Vol. 2 7.3.2: LOCKed \
     read-modify-writes (and XCHG) are atomic on every memory type and alignment; a split lock \
     locks the bus";

fn rmw_rule(o: &ExclOp, env: &RuleEnv) -> &'static str {
    match (env.arch, o.exclusive) {
        (Arch::X86_64, _) => RULE_X86_LOCK,
        (Arch::Aarch64, true) => RULE_ARM_EXCL,
        (Arch::Aarch64, false) => RULE_ARM_LSE,
    }
}

/// Byte-wise volatile read of a little-endian counter (works at any alignment and memory type).
fn read_counter(addr: usize, bytes: usize) -> u128 {
    let mut v = 0u128;
    for i in 0..bytes.min(16) {
        // SAFETY: the caller passes an address in the arena with `bytes` of room; byte accesses
        // are always aligned.
        let b = unsafe { core::ptr::read_volatile((addr + i) as *const u8) };
        v |= u128::from(b) << (8 * i);
    }
    v
}

fn clear_counter(addr: usize, bytes: usize) {
    for i in 0..bytes.min(16) {
        // SAFETY: as in `read_counter`.
        unsafe { core::ptr::write_volatile((addr + i) as *mut u8, 0) };
    }
}

/// The count a counter holds: for 128-bit pairs both halves were incremented; `None` when the
/// halves disagree (the pair was not updated atomically).
fn counter_value(v: u128, width: u32) -> Option<u64> {
    if width > 64 {
        let (lo, hi) = (v as u64, (v >> 64) as u64);
        (lo == hi).then_some(lo)
    } else {
        Some(v as u64)
    }
}

/// Compare a counter's final value with the successful increments: `(lost, excess)`. A counter
/// whose halves differ (`None`) counts every success as lost.
fn tally(successes: u64, fin: Option<u64>) -> (u64, u64) {
    match fin {
        Some(v) => (successes.saturating_sub(v), v.saturating_sub(successes)),
        None => (successes, 0),
    }
}

/// Whether the faults of a run are what `fx` admits: a fault seen (`faults` > 0) must be of the
/// kind `fx` allows (the guard reports the fault it caught; a run that counted a fault without one
/// is admitted only by "either"), and where `fx` requires a fault, no attempt may complete
/// (`completed`: attempts that succeeded or failed without faulting, on any core).
fn run_fault_ok(fx: &Expectation, faults: u64, fault: Option<&RawFault>, completed: u64) -> bool {
    if completed > 0 && matches!(fx.expect, FaultExpect::Fault(_)) {
        return false;
    }
    match (faults, fault) {
        (0, _) => true,
        (_, Some(f)) => atomicity::fault_admitted(fx, Some(f)),
        (_, None) => fx.expect == FaultExpect::Either,
    }
}

/// Whether an `excess` is a deviation. A successful Store-Exclusive / CAS / LDADD / locked
/// increment adds exactly 1, and an increment is never counted twice; a counter above the
/// successes can only come from a miscounted success or a torn counter. Torn counters are
/// possible only where single-copy atomicity is not promised: a misaligned counter (it did not
/// fault: FEAT_LSE2 within 16 bytes) on memory where exclusives/atomics are IMPLEMENTATION
/// DEFINED (Arm ARM B2.2.1 promises FEAT_LSE2 atomicity only on Normal Write-Back). Everywhere
/// else an excess is a deviation.
fn excess_is_deviation(may_fail: bool, lock_counter: bool, addr: usize, bytes: usize) -> bool {
    !(may_fail && !lock_counter && !addr.is_multiple_of(bytes.max(1)))
}

/// The fault each role of a contended run caught (each role writes only its own cell, read
/// after `run_on`); no read-modify-write to pick a winner, for the reason `RoleSlots` gives.
struct RoleFaults {
    cells: Vec<UnsafeCell<Option<RawFault>>>,
}
// SAFETY: role `r` alone writes `cells[r]`, and the caller reads the cells only after `run_on`
// returned (the engine's completion handshake orders the writes before the reads).
unsafe impl Sync for RoleFaults {}

impl RoleFaults {
    fn new(roles: usize) -> Self {
        RoleFaults {
            cells: (0..roles).map(|_| UnsafeCell::new(None)).collect(),
        }
    }

    fn offer(&self, role: usize, f: RawFault) {
        // SAFETY: only role `role` writes this cell (see the impl).
        unsafe { *self.cells[role].get() = Some(f) };
    }

    /// The fault of the lowest-numbered role that caught one.
    fn take(self) -> Option<RawFault> {
        self.cells.into_iter().find_map(UnsafeCell::into_inner)
    }
}

/// Clock used for timing: the cycle counter when there is one, else nanoseconds.
pub(crate) struct Clock<'a> {
    platform: &'a dyn Platform,
    pub cycles: bool,
}

impl<'a> Clock<'a> {
    pub(crate) fn new(platform: &'a dyn Platform) -> Self {
        Clock {
            platform,
            cycles: platform.cycles().is_some(),
        }
    }

    pub(crate) fn now(&self) -> u64 {
        if self.cycles {
            self.platform.cycles().unwrap_or(0)
        } else {
            self.platform.now_ns()
        }
    }

    /// Counter name for a per-op figure ×100.
    pub(crate) fn per_op_key(&self) -> &'static str {
        if self.cycles {
            "cycles_per_op_x100"
        } else {
            "ns_per_op_x100"
        }
    }
}

pub fn run(platform: &dyn Platform) {
    let cfg = platform.config();
    let env = platform.env();
    let feat = features(&env);
    for attr in cfg.mem_attrs() {
        for o in ops() {
            for &p in o.placements {
                let (un, co) = (name(o, p, false), name(o, p, true));
                let want_un = cfg.selects("excl", &un);
                let want_co = cfg.selects("excl", &co);
                if !want_un && !want_co {
                    continue;
                }
                let (rec_un, rec_co) = one(platform, o, p, attr, &env, &feat, want_co);
                if want_un {
                    platform.emit(&Record::Probe(rec_un));
                }
                if let (true, Some(r)) = (want_co, rec_co) {
                    platform.emit(&Record::Probe(r));
                }
            }
        }
    }
}

fn one(
    platform: &dyn Platform,
    o: &ExclOp,
    p: Placement,
    attr: MemAttr,
    env: &RuleEnv,
    feat: &Features,
    contended: bool,
) -> (Probe, Option<Probe>) {
    let mut rng = SeedRng::new(
        platform.config().seed,
        &format!("excl/{}", name(o, p, false)),
    );
    // The last line of the first page holds the lock forms' counter.
    let off = seeded_offset(p, o.width, env, &mut rng, 1);
    let bytes = (o.width / 8) as usize;
    let mk = |c: bool| {
        base_probe(
            "excl",
            name(o, p, c),
            attr.name(),
            o.width,
            (off % env.line) as u32,
            String::from(o.op),
        )
    };
    let mut un = mk(false);
    let skip_both = |mut un: Probe, why: String| {
        let mut co = mk(true);
        co.reason = Some(why.clone());
        un.reason = Some(why);
        (un, Some(co))
    };
    if let Some(f) = o.needs {
        if let Some(why) = feat.missing(f) {
            return skip_both(un, format!("{}: {why}", o.op));
        }
    }
    let addr = match arena_addr(platform, attr, off, bytes) {
        Ok(a) => a,
        Err(why) => return skip_both(un, why),
    };
    // The lock forms' counter: an aligned doubleword in the last line of the arena's first page,
    // clear of every placement's access (`seeded_offset` leaves that line out).
    let aux = match arena_addr(platform, attr, env.page - env.line, 8) {
        Ok(a) => a,
        Err(why) => return skip_both(un, why),
    };
    let counter = if o.lock_counter { aux } else { addr };
    let fx = atomicity::access_fault_expectation(o.kind, o.width, addr, attr, env, feat);
    un.counts.insert("line".into(), (off / env.line) as u64);
    // Without a fault guard neither run is attempted where the operation may fault (the
    // contended run makes the same access).
    if super::unguarded_skip(platform, &mut un, &[("", &fx)]) {
        let mut co = mk(true);
        co.counts.insert("line".into(), (off / env.line) as u64);
        co.reason = un.reason.clone();
        co.expected = un.expected.clone();
        co.rule = un.rule.clone();
        return (un, contended.then_some(co));
    }
    let may_fail = exclusives_may_fail(attr, env);
    let rule = rmw_rule(o, env);

    // Trial: one attempt under the guard.
    clear_counter(addr, bytes);
    clear_counter(aux, 8);
    let mut st = ST_OK;
    let fault = platform.guarded(&mut || {
        // SAFETY: `addr`/`aux` are in the arena with room (checked above); guard armed.
        st = unsafe { (o.attempt)(addr as *mut u8, aux as *mut u8) };
    });
    let fault_ok = atomicity::fault_admitted(&fx, fault.as_ref());
    un.cpus = alloc::vec![0];
    if fault.is_some() || st == ST_FAULT {
        un.result = ProbeResult::Fault;
        un.verdict = if fault_ok {
            Verdict::Ok
        } else {
            Verdict::Deviation
        };
        un.fault = fault.map(|f| f.to_record());
        un.counts.insert("faults".into(), 1);
        un.iterations = 1;
        un.expected = fx.text.clone();
        un.rule = String::from(fx.rule);
        let mut co = mk(true);
        co.reason = Some(format!(
            "{} faults at this placement on {} (see {})",
            o.op,
            attr.name(),
            un.name
        ));
        return (un, contended.then_some(co));
    }
    let first_ok = u64::from(st == ST_OK);

    // Uncontended: success rate and time per attempt on core 0.
    let clock = Clock::new(platform);
    let attempts = platform
        .config()
        .iters
        .saturating_mul(UNCONTENDED_SCALE)
        .max(1);
    let (mut ok, mut failed, mut faults) = (first_ok, u64::from(st == ST_RETRY), 0u64);
    let mut livelock = false;
    let t_start = platform.now_ns();
    let mut last_ok = t_start;
    let mut ok_seen = ok;
    let c0 = clock.now();
    let loop_fault = platform.guarded(&mut || {
        for i in 0..attempts {
            // SAFETY: as for the trial.
            match unsafe { (o.attempt)(addr as *mut u8, aux as *mut u8) } {
                ST_OK => ok += 1,
                ST_FAULT => {
                    faults += 1;
                    break;
                }
                _ => failed += 1,
            }
            if i % 256 == 255 {
                let now = platform.now_ns();
                if ok > ok_seen {
                    ok_seen = ok;
                    last_ok = now;
                } else if now - last_ok > LIVELOCK_MS * 1_000_000 {
                    livelock = true;
                    break;
                }
                if now - t_start > RUN_BUDGET_MS * 1_000_000 {
                    break;
                }
            }
        }
    });
    let c1 = clock.now();
    let done = ok + failed + faults;
    let fin = read_counter(counter, if o.lock_counter { 8 } else { bytes });
    let fin_v = counter_value(fin, if o.lock_counter { 64 } else { o.width });
    let (lost, excess) = tally(ok, fin_v);
    let excess_bad = excess_is_deviation(may_fail, o.lock_counter, addr, bytes);
    let loop_fault_ok = run_fault_ok(&fx, faults, loop_fault.as_ref(), ok + failed);
    un.fault = loop_fault.filter(|_| faults > 0).map(|f| f.to_record());
    un.iterations = done;
    un.elapsed_ms = Some((platform.now_ns() - t_start) / 1_000_000);
    for (k, v) in [
        ("attempts", done),
        ("successes", ok),
        ("failures", failed),
        ("faults", faults),
        ("success_ppm", ok * 1_000_000 / done.max(1)),
        ("final", fin_v.unwrap_or(0)),
        ("lost", lost),
        ("excess", excess),
        (clock.per_op_key(), (c1 - c0) * 100 / done.max(1)),
    ] {
        un.counts.insert(k.into(), v);
    }
    if fin_v.is_none() {
        un.counts.insert("halves_differ".into(), 1);
    }
    if matches!(p, Placement::CrossLine | Placement::CrossPage) && o.kind == AccessKind::Locked {
        un.counts.insert("split_lock".into(), 1);
    }
    let lost_any = lost > 0 || fin_v.is_none();
    un.result = if faults > 0 {
        ProbeResult::Fault
    } else if ok == 0 || livelock {
        ProbeResult::Livelock
    } else if lost_any || excess > 0 {
        ProbeResult::LostUpdates
    } else {
        ProbeResult::Ok
    };
    let bad = !loop_fault_ok
        || (excess > 0 && excess_bad)
        || (!may_fail && (ok == 0 || livelock || lost_any));
    un.verdict = if fault_ok && !bad {
        Verdict::Ok
    } else {
        Verdict::Deviation
    };
    un.expected = if may_fail {
        format!(
            "{}; on {} exclusives/atomics may fault, never succeed or lose updates (IMPLEMENTATION DEFINED)",
            fx.text,
            attr.name()
        )
    } else if o.exclusive {
        format!("{}; a Store-Exclusive may fail spuriously, but attempts must succeed, no update may be lost and none counted twice (lost = excess = 0)", fx.text)
    } else {
        format!(
            "{}; every increment is atomic: no update may be lost or counted twice (lost = excess = 0)",
            fx.text
        )
    };
    un.rule = format!("{rule}; {}", fx.rule);

    if !contended {
        return (un, None);
    }
    (
        un.clone(),
        Some(contend(
            platform, o, p, attr, env, addr, aux, bytes, may_fail, &un, rule, &clock, &fx,
        )),
    )
}

#[allow(clippy::too_many_arguments)]
fn contend(
    platform: &dyn Platform,
    o: &ExclOp,
    p: Placement,
    attr: MemAttr,
    env: &RuleEnv,
    addr: usize,
    aux: usize,
    bytes: usize,
    may_fail: bool,
    un: &Probe,
    rule: &str,
    clock: &Clock<'_>,
    fx: &Expectation,
) -> Probe {
    let off = p.offset_in_arena(o.width, env.line, env.page);
    let mut co = base_probe(
        "excl",
        name(o, p, true),
        attr.name(),
        o.width,
        (off % env.line) as u32,
        String::from(o.op),
    );
    if let Some(&l) = un.counts.get("line") {
        co.counts.insert("line".into(), l);
    }
    let n = platform.cpu_count().min(MAX_CONTENDERS);
    if n < 2 {
        co.reason = Some(format!(
            "needs at least 2 cores; {} available",
            platform.cpu_count()
        ));
        return co;
    }
    if un.result == ProbeResult::Livelock && may_fail {
        co.reason = Some(format!(
            "{} never succeeded uncontended on {} (see {})",
            o.op,
            attr.name(),
            un.name
        ));
        return co;
    }
    let per_core = platform
        .config()
        .iters
        .saturating_mul(CONTENDED_SCALE)
        .max(1);
    clear_counter(addr, bytes);
    clear_counter(aux, 8);
    // Per-role bookkeeping, plain stores only (see `RoleSlots`).
    let ok = RoleSlots::new(n);
    let failed = RoleSlots::new(n);
    let faults = RoleSlots::new(n);
    let ticks = RoleSlots::new(n);
    let livelock = RoleSlots::new(n);
    let first_fault = RoleFaults::new(n);
    let t_start = platform.now_ns();
    let body = |role: usize| {
        let (mut k, mut f, mut flt) = (0u64, 0u64, 0u64);
        let mut gave_up = false;
        let c0 = clock.now();
        let caught = platform.guarded(&mut || {
            let mut last_ok = platform.now_ns();
            let mut k_seen = 0u64;
            let mut tries = 0u64;
            while k < per_core {
                // SAFETY: `addr`/`aux` are in the arena with room (checked by the caller); guard
                // armed.
                match unsafe { (o.attempt)(addr as *mut u8, aux as *mut u8) } {
                    ST_OK => k += 1,
                    ST_FAULT => {
                        flt += 1;
                        break;
                    }
                    _ => f += 1,
                }
                tries += 1;
                if tries.is_multiple_of(256) {
                    let now = platform.now_ns();
                    if k > k_seen {
                        k_seen = k;
                        last_ok = now;
                    } else if now - last_ok > LIVELOCK_MS * 1_000_000 {
                        gave_up = true;
                        break;
                    }
                    if now - t_start > RUN_BUDGET_MS * 1_000_000 {
                        break;
                    }
                }
            }
        });
        let c1 = clock.now();
        if let Some(f) = caught.filter(|_| flt > 0) {
            first_fault.offer(role, f);
        }
        ok.set(role, k);
        failed.set(role, f);
        faults.set(role, flt);
        ticks.set(role, c1.wrapping_sub(c0));
        livelock.set(role, u64::from(gave_up));
    };
    let cpus: Vec<usize> = (0..n).collect();
    let res = platform.run_on(&cpus, RUN_BUDGET_MS + 5_000, &body);
    co.cpus = cpus.iter().map(|&c| c as u32).collect();
    co.elapsed_ms = Some((platform.now_ns() - t_start) / 1_000_000);
    if let Err(e) = res {
        co.reason = Some(format!("cores {cpus:?} could not run: {e:?}"));
        return co;
    }
    let (ok, failed, faults) = (ok.sum(), failed.sum(), faults.sum());
    let livelock = livelock.nonzero(0..n) > 0;
    let run_fault = first_fault.take();
    let fault_ok = run_fault_ok(fx, faults, run_fault.as_ref(), ok + failed);
    co.fault = run_fault.map(|f| f.to_record());
    let fin = read_counter(
        if o.lock_counter { aux } else { addr },
        if o.lock_counter { 8 } else { bytes },
    );
    let fin_v = counter_value(fin, if o.lock_counter { 64 } else { o.width });
    let (lost, excess) = tally(ok, fin_v);
    let excess_bad = excess_is_deviation(may_fail, o.lock_counter, addr, bytes);
    let attempts = ok + failed + faults;
    co.iterations = attempts;
    for (k, v) in [
        ("cores", n as u64),
        ("per_core", per_core),
        ("expected", per_core * n as u64),
        ("successes", ok),
        ("failures", failed),
        ("faults", faults),
        ("final", fin_v.unwrap_or(0)),
        ("lost", lost),
        ("excess", excess),
        (clock.per_op_key(), ticks.sum() * 100 / ok.max(1)),
    ] {
        co.counts.insert(k.into(), v);
    }
    if fin_v.is_none() {
        co.counts.insert("halves_differ".into(), 1);
    }
    if matches!(p, Placement::CrossLine | Placement::CrossPage) && o.kind == AccessKind::Locked {
        co.counts.insert("split_lock".into(), 1);
    }
    let lost_any = lost > 0 || fin_v.is_none();
    co.result = if faults > 0 {
        ProbeResult::Fault
    } else if lost_any || excess > 0 {
        ProbeResult::LostUpdates
    } else if livelock {
        ProbeResult::Livelock
    } else {
        ProbeResult::Ok
    };
    let bad = !fault_ok || (excess > 0 && excess_bad) || (!may_fail && (lost_any || livelock));
    co.verdict = if bad { Verdict::Deviation } else { Verdict::Ok };
    co.expected = if may_fail {
        format!(
            "{n} cores racing: on {} lost updates or livelock are IMPLEMENTATION DEFINED outcomes; {}",
            attr.name(),
            fx.text
        )
    } else {
        format!(
            "{n} cores racing: no update may be lost or counted twice (lost = excess = 0), and the cores must make progress; {}",
            fx.text
        )
    };
    co.rule = format!("{rule}; {}", fx.rule);
    co
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::FaultKind;

    #[test]
    fn tally_reports_lost_and_excess() {
        assert_eq!(tally(5, Some(5)), (0, 0));
        assert_eq!(tally(5, Some(3)), (2, 0));
        // A final value above the successes is not hidden as "0 lost".
        assert_eq!(tally(5, Some(7)), (0, 2));
        assert_eq!(tally(5, None), (5, 0));
    }

    #[test]
    fn excess_is_a_deviation_unless_the_counter_may_tear() {
        let a = 0x4000_0040;
        assert!(excess_is_deviation(false, false, a + 1, 8));
        assert!(excess_is_deviation(true, false, a, 8));
        assert!(excess_is_deviation(true, true, a + 1, 8));
        assert!(!excess_is_deviation(true, false, a + 1, 8));
    }

    #[test]
    fn run_faults_are_judged_by_the_rule() {
        let either = Expectation {
            expect: FaultExpect::Either,
            text: String::new(),
            rule: "",
        };
        let none = Expectation {
            expect: FaultExpect::NoFault,
            ..either.clone()
        };
        let unsupported = RawFault::Aarch64 {
            esr: (0x25 << 26) | 0x35,
            far: 0,
            elr: 0,
        };
        assert_eq!(unsupported.kind(), FaultKind::UnsupportedAtomic);
        assert!(run_fault_ok(&either, 1, Some(&unsupported), 5));
        assert!(!run_fault_ok(&none, 1, Some(&unsupported), 5));
        assert!(run_fault_ok(&none, 0, None, 5));
        assert!(!run_fault_ok(&none, 1, None, 0));
        assert!(run_fault_ok(&either, 1, None, 0));
        // A fault is required: cores that faulted are fine, a core that completed attempts
        // without one is a deviation (e.g. 3 of 4 contending cores fault, one succeeds).
        let align = Expectation {
            expect: FaultExpect::Fault(FaultKind::Alignment),
            ..either.clone()
        };
        let alignment = RawFault::Aarch64 {
            esr: (0x25 << 26) | 0x21,
            far: 0,
            elr: 0,
        };
        assert!(run_fault_ok(&align, 4, Some(&alignment), 0));
        assert!(!run_fault_ok(&align, 3, Some(&alignment), 10_000));
    }
}
