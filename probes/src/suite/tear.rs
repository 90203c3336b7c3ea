//! Family `tear`: single-copy atomicity. Writer cores store values that differ in every byte; a
//! reader core loads the location over and over and counts values no writer wrote.
//!
//! The four values of a `w`-bit location (byte `i` of each): `V0` = 0x00, `V1` = 0xff,
//! `V2` = 0x10 + i, `V3` = 0xe0 + i. Any two differ in every byte, so a read that mixes two
//! stores shows up as a value that is none of them, and the bytes tell which parts came from
//! which store. Three writer shapes:
//! - `Whole`: every store writes a whole value (one writer cycles V0..V3; two writers use
//!   V0/V1 and V2/V3);
//! - `Halves` (the mixed-size case): half-width stores to each half; any combination of halves
//!   is a real memory state, so only a torn *half* is a torn value;
//! - `WholeAndHalves` (`go-loaduint64`): whole-width stores of V0/V1 race half-width stores of
//!   V2/V3 halves: a value joining the halves of V0 and V1 never existed in memory.
//!
//! A value is `torn` if it is not a state memory could have held; it is a deviation only when
//! the architecture makes the access single-copy atomic at the size where the tear is
//! ([`crate::rules::atomicity`]). `offset` in the record is the byte offset of the access from the
//! start of its cache line. Before racing, the store and the load run once under the fault guard
//! on core 0: if either faults the record says `fault`, judged by the alignment rules.
//!
//! `seed=` ([`crate::config::SeedRng`], one stream per probe name) chooses, reproducibly: the
//! cache line of the access within the arena's first page (`seeded_offset`: the offset within
//! the line, hence the placement, is unchanged; counter `line`), the value the location starts
//! with (`first_pattern`, 0..3), and where in its cycle of values each writer starts (its
//! rotation; `race` derives it from the seed, the case and the writer's role).

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::attr::MemAttr;
use crate::config::SeedRng;
use crate::fault::RawFault;
use crate::platform::{Platform, RuleEnv};
use crate::record::{Probe, ProbeResult, Record, Verdict};
use crate::rules::atomicity::{self, Feature, Features, Form, RaceExpectation};
use crate::rules::{AccessKind, Expectation, FaultExpect, Placement};
use crate::suite::RoleSlots;

/// Reads per race = `Config::iters` × this.
pub const TEAR_SCALE: u64 = 4;
/// A race never runs longer than this (the reader stops early and says so in `counts`).
pub const RACE_BUDGET_MS: u64 = 1_500;
/// At most this many writer cores.
pub const MAX_WRITERS: usize = 2;

/// One side of a probe: the instruction and what the rules need to know about it.
#[derive(Clone, Copy, Debug)]
pub struct Side {
    /// Instruction as printed in `op` (`ldar`, `lock cmpxchg16b`, …).
    pub op: &'static str,
    pub form: Form,
    /// For the alignment-fault rules.
    pub kind: AccessKind,
    /// Access size in bits.
    pub width: u32,
    /// A CPU feature the instruction needs.
    pub needs: Option<Feature>,
}

/// How writers store (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Whole,
    Halves,
    WholeAndHalves,
}

/// A load: returns the value read (`fallback` when it faulted) and a status (0 done, 1 faulted,
/// 2 gave up).
///
/// # Safety
/// `addr .. addr + width/8` must lie in a probe arena and the fault guard must be armed.
pub type ReadFn = unsafe fn(addr: *const u8, fallback: u128) -> (u128, u32);
/// A store of the low `width` bits of the value; returns a status like [`ReadFn`].
///
/// # Safety
/// As for [`ReadFn`].
pub type WriteFn = unsafe fn(addr: *mut u8, value: u128) -> u32;

/// One racing probe; run at each of `placements` on each selected attribute.
pub struct TearCase {
    /// Name without the placement (`ldar-stlr-64`).
    pub name: &'static str,
    /// Bits the reader loads.
    pub width: u32,
    pub shape: Shape,
    pub load: Side,
    pub read: ReadFn,
    /// Whole-width store (`Whole`, `WholeAndHalves`).
    pub store: Option<(Side, WriteFn)>,
    /// Half-width store (`Halves`, `WholeAndHalves`).
    pub half: Option<(Side, WriteFn)>,
    pub placements: &'static [Placement],
}

/// Value `k` (0..4) of a `width`-bit location.
pub const fn pattern(k: usize, width: u32) -> u128 {
    let mut v: u128 = 0;
    let mut i = 0;
    while i < (width / 8) as usize {
        let b: u128 = match k {
            0 => 0x00,
            1 => 0xff,
            2 => 0x10 + i as u128,
            _ => 0xe0 + i as u128,
        };
        v |= b << (8 * i);
        i += 1;
    }
    v
}

fn mask(bits: u32) -> u128 {
    if bits >= 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    }
}

/// Which pattern `v`'s bits `[off, off + len)` (in bits) come from, if any.
fn part_of(v: u128, width: u32, off: u32, len: u32) -> Option<usize> {
    let m = mask(len) << off;
    (0..4).find(|&k| (v ^ pattern(k, width)) & m == 0)
}

fn parts_untorn(v: u128, width: u32, granule: u32) -> bool {
    let g = granule.clamp(8, width);
    (0..width / g).all(|c| part_of(v, width, c * g, g).is_some())
}

/// Classify a value read: `(torn, deviation)`. `torn`: no memory state the writers could have
/// produced. `deviation`: it breaks the atomicity `exp` says the architecture promises.
pub fn classify(v: u128, width: u32, shape: Shape, exp: &RaceExpectation) -> (bool, bool) {
    let v = v & mask(width);
    match shape {
        Shape::Whole => {
            let torn = !(0..4).any(|k| v == pattern(k, width));
            (torn, torn && !parts_untorn(v, width, exp.granule))
        }
        Shape::Halves => {
            let torn = !parts_untorn(v, width, width / 2);
            (
                torn,
                torn && !parts_untorn(v, width, exp.granule.min(width / 2)),
            )
        }
        Shape::WholeAndHalves => {
            let h = width / 2;
            let lo = part_of(v, width, 0, h);
            let hi = part_of(v, width, h, h);
            let joined = matches!((lo, hi), (Some(l), Some(u)) if l < 2 && u < 2 && l != u);
            let torn = lo.is_none() || hi.is_none() || joined;
            let dev = !parts_untorn(v, width, exp.granule.min(h)) || (exp.whole_pairs && joined);
            (torn, dev)
        }
    }
}

/// The value writer `writer` (1-based, of `writers`) stores at step `step`: `(offset in bytes,
/// value, half)` where `half` selects the half-width store.
pub fn writer_step(
    shape: Shape,
    width: u32,
    writer: usize,
    writers: usize,
    step: u64,
) -> (usize, u128, bool) {
    let h = width / 2;
    let half_val = |k: usize, upper: bool| -> u128 {
        let p = pattern(k, width);
        if upper {
            (p >> h) & mask(h)
        } else {
            p & mask(h)
        }
    };
    let s = step as usize;
    match shape {
        Shape::Whole => {
            let k = if writers <= 1 {
                s % 4
            } else {
                2 * ((writer - 1) % 2) + s % 2
            };
            (0, pattern(k, width), false)
        }
        Shape::Halves => {
            let upper = s % 2 == 1;
            let k = (s / 2 + writer + if upper { 2 } else { 0 }) % 4;
            (
                if upper { (h / 8) as usize } else { 0 },
                half_val(k, upper),
                true,
            )
        }
        Shape::WholeAndHalves => {
            // One writer: V0, lo=V2, V1, hi=V3, … Two: writer 1 whole V0/V1, writer 2 halves.
            let (whole, k, upper) = if writers <= 1 {
                match s % 4 {
                    0 => (true, 0, false),
                    1 => (false, 2, false),
                    2 => (true, 1, false),
                    _ => (false, 3, true),
                }
            } else if writer == 1 {
                (true, s % 2, false)
            } else {
                (false, 2 + (s / 2) % 2, s % 2 == 1)
            };
            if whole {
                (0, pattern(k, width), false)
            } else {
                (
                    if upper { (h / 8) as usize } else { 0 },
                    half_val(k, upper),
                    true,
                )
            }
        }
    }
}

/// The CPU features of this machine, as the probes see them.
pub fn features(env: &RuleEnv) -> Features {
    #[cfg(any(target_arch = "aarch64", target_arch = "x86_64"))]
    {
        crate::ops::tear::features(env)
    }
    #[cfg(not(any(target_arch = "aarch64", target_arch = "x86_64")))]
    {
        let _ = env;
        Features::unknown(
            atomicity::Vendor::Other,
            "no probe instructions for this target",
        )
    }
}

fn cases() -> Vec<&'static TearCase> {
    #[cfg(any(target_arch = "aarch64", target_arch = "x86_64"))]
    {
        let mut v: Vec<&'static TearCase> = crate::ops::tear::CASES.iter().collect();
        v.push(&crate::ops::tear::GO_LOADUINT64);
        v
    }
    #[cfg(not(any(target_arch = "aarch64", target_arch = "x86_64")))]
    {
        Vec::new()
    }
}

/// The umbrella name that selects every placement of the Go probe.
pub const GO_NAME: &str = "go-loaduint64";

pub fn names() -> Vec<String> {
    let mut v = Vec::new();
    for c in cases() {
        if c.name == GO_NAME {
            v.push(GO_NAME.to_string());
        }
        for &p in c.placements {
            v.push(name(c, p));
        }
    }
    v
}

fn name(c: &TearCase, p: Placement) -> String {
    format!("{}-{}", c.name, p.name())
}

fn selected(platform: &dyn Platform, c: &TearCase, p: Placement) -> bool {
    let cfg = platform.config();
    cfg.selects("tear", &name(c, p)) || (c.name == GO_NAME && cfg.selects("tear", GO_NAME))
}

/// A `probe` record with the common fields filled in and `result` `skipped`.
pub(crate) fn base_probe(
    family: &str,
    name: String,
    attr: &str,
    width: u32,
    offset: u32,
    op: String,
) -> Probe {
    Probe {
        family: family.into(),
        name,
        attr: attr.into(),
        width,
        offset,
        op,
        cpus: vec![],
        iterations: 0,
        result: ProbeResult::Skipped,
        counts: BTreeMap::new(),
        expected: String::new(),
        verdict: Verdict::Skipped,
        fault: None,
        rule: String::new(),
        reason: None,
        elapsed_ms: None,
        map: Default::default(),
    }
}

/// Per-attribute arena address for an access of `bytes` at `offset`, or why there is none.
/// The arena offset of a `width`-bit access at `p`, moved by a seeded whole number of cache lines
/// within the arena's first page, so the offset from the line start, the line or page crossing
/// and the memory attribute stay those of the placement. The last `reserved_top` lines of the
/// page are left out (`excl` keeps its lock counter there). Cross-page accesses stay at the first
/// page boundary.
pub(crate) fn seeded_offset(
    p: Placement,
    width: u32,
    env: &RuleEnv,
    rng: &mut SeedRng,
    reserved_top: usize,
) -> usize {
    let base = p.offset_in_arena(width, env.line, env.page);
    if p == Placement::CrossPage || env.line == 0 {
        return base;
    }
    // Unmoved, an access ends in line 2 at the latest (cross-line: lines 1 and 2).
    let room = (env.page / env.line).saturating_sub(3 + reserved_top);
    base + rng.below(room as u64 + 1) as usize * env.line
}

pub(crate) fn arena_addr(
    platform: &dyn Platform,
    attr: MemAttr,
    offset: usize,
    bytes: usize,
) -> Result<usize, String> {
    let arena = platform.arena(attr)?;
    if offset + bytes + 64 > arena.len {
        return Err(format!(
            "arena of {} bytes too small for offset {offset}",
            arena.len
        ));
    }
    Ok(arena.base as usize + offset)
}

fn op_text(c: &TearCase) -> String {
    let mut s = format!("{} vs", c.load.op);
    if let Some((st, _)) = &c.store {
        s.push_str(&format!(" {} ({}-bit)", st.op, st.width));
    }
    if let Some((st, _)) = &c.half {
        if c.store.is_some() {
            s.push_str(" +");
        }
        s.push_str(&format!(" {} ({}-bit halves)", st.op, st.width));
    }
    s
}

pub fn run(platform: &dyn Platform) {
    let cfg = platform.config();
    let env = platform.env();
    let feat = features(&env);
    for attr in cfg.mem_attrs() {
        for c in cases() {
            for &p in c.placements {
                if !selected(platform, c, p) {
                    continue;
                }
                platform.emit(&Record::Probe(one(platform, c, p, attr, &env, &feat)));
            }
        }
    }
}

fn one(
    platform: &dyn Platform,
    c: &TearCase,
    p: Placement,
    attr: MemAttr,
    env: &RuleEnv,
    feat: &Features,
) -> Probe {
    let mut rng = SeedRng::new(platform.config().seed, &format!("tear/{}", name(c, p)));
    let off = seeded_offset(p, c.width, env, &mut rng, 0);
    let first = rng.below(4) as usize;
    let mut rec = base_probe(
        "tear",
        name(c, p),
        attr.name(),
        c.width,
        (off % env.line) as u32,
        op_text(c),
    );
    let sides = [Some(c.load), c.store.map(|s| s.0), c.half.map(|s| s.0)];
    for s in sides.iter().flatten() {
        if let Some(f) = s.needs {
            if let Some(why) = feat.missing(f) {
                rec.reason = Some(format!("{}: {why}", s.op));
                return rec;
            }
        }
    }
    let n = platform.cpu_count();
    if n < 2 {
        rec.reason = Some(format!(
            "needs at least 2 cores (a reader and a writer); {n} available"
        ));
        return rec;
    }
    let addr = match arena_addr(platform, attr, off, (c.width / 8) as usize) {
        Ok(a) => a,
        Err(why) => {
            rec.reason = Some(why);
            return rec;
        }
    };
    // What the architecture promises.
    let h_addr = addr;
    let load_a = atomicity::atomicity(c.load.form, c.width, addr, attr, env, feat);
    let store_a = c
        .store
        .map(|(s, _)| atomicity::atomicity(s.form, s.width, addr, attr, env, feat));
    let half_a = c.half.map(|(s, _)| {
        // The worse of the two halves.
        let lo = atomicity::atomicity(s.form, s.width, h_addr, attr, env, feat);
        let hi = atomicity::atomicity(
            s.form,
            s.width,
            h_addr + (s.width / 8) as usize,
            attr,
            env,
            feat,
        );
        if lo.granule <= hi.granule {
            lo
        } else {
            hi
        }
    });
    let exp = atomicity::race_expectation(
        feat.vendor,
        c.width,
        &load_a,
        store_a.as_ref(),
        half_a.as_ref(),
    );
    // Alignment is checked per register for LDP/STP (Arm ARM B2.5.2), on the whole for the rest.
    let fexp = |s: &Side, a: usize| {
        let w = if s.form == Form::Pair {
            s.width / 2
        } else {
            s.width
        };
        atomicity::access_fault_expectation(s.kind, w, a, attr, env, feat)
    };
    let load_fx = fexp(&c.load, addr);
    // Trial on core 0: initialise with V0 through each store (whole, or each half) under the
    // guard, then one load; each access is judged by its own alignment rule.
    let v0 = pattern(first, c.width);
    rec.counts.insert("line".into(), (off / env.line) as u64);
    rec.counts.insert("first_pattern".into(), first as u64);
    let mut trials: Vec<(Side, WriteFn, usize, u128)> = Vec::new();
    if let Some((s, w)) = c.store {
        trials.push((s, w, addr, v0));
    }
    if let Some((s, w)) = c.half {
        let hb = (s.width / 8) as usize;
        trials.push((s, w, addr, v0 & mask(s.width)));
        trials.push((s, w, addr + hb, (v0 >> s.width) & mask(s.width)));
    }
    // Every access the probe makes, by its fault rule: the load, and each trial store (the
    // race repeats the same accesses). Without a fault guard the probe is not run when one of
    // them may fault.
    let trial_fx: Vec<Expectation> = trials.iter().map(|(s, _, a, _)| fexp(s, *a)).collect();
    let mut accesses: Vec<(&str, &Expectation)> = alloc::vec![("load", &load_fx)];
    accesses.extend(trial_fx.iter().map(|e| ("store", e)));
    if super::unguarded_skip(platform, &mut rec, &accesses) {
        return rec;
    }
    let mut store_fx: Vec<Expectation> = Vec::new();
    let mut store_fault: Option<RawFault> = None;
    let mut store_faulted = false;
    let mut stores_ok = true;
    for ((_, w, a, v), e) in trials.iter().zip(trial_fx) {
        let mut st = 0;
        let f = platform.guarded(&mut || {
            // SAFETY: `a` lies inside the access, which fits in the arena (checked by
            // `arena_addr`); the guard is armed by `guarded`.
            st = unsafe { w(*a as *mut u8, *v) };
        });
        stores_ok &= atomicity::fault_admitted(&e, f.as_ref());
        store_faulted |= f.is_some() || st == 1;
        store_fault = store_fault.or(f);
        if !store_fx.contains(&e) {
            store_fx.push(e);
        }
    }
    let (load_fault, load_st) = {
        let mut st = 0;
        let f = platform.guarded(&mut || {
            // SAFETY: `addr` has room for the access in the arena (checked by `arena_addr`); the
            // guard is armed by `guarded`.
            st = unsafe { (c.read)(addr as *const u8, v0) }.1;
        });
        (f, st)
    };
    let load_faulted = load_fault.is_some() || load_st == 1;
    let fault_ok = atomicity::fault_admitted(&load_fx, load_fault.as_ref()) && stores_ok;
    let mut fault_text = format!("load: {}", load_fx.text);
    let mut fault_rule = String::from(load_fx.rule);
    for e in &store_fx {
        fault_text.push_str(&format!("; store: {}", e.text));
        if !fault_rule.contains(e.rule) {
            fault_rule.push_str("; ");
            fault_rule.push_str(e.rule);
        }
    }
    rec.counts
        .insert("load_faults".into(), u64::from(load_faulted));
    rec.counts
        .insert("store_faults".into(), u64::from(store_faulted));
    let go = c.name == GO_NAME;
    if load_faulted || store_faulted {
        let f = load_fault.or(store_fault);
        rec.result = ProbeResult::Fault;
        rec.verdict = if fault_ok {
            Verdict::Ok
        } else {
            Verdict::Deviation
        };
        rec.fault = f.map(|f| f.to_record());
        rec.counts.insert("faults".into(), 1);
        // One attempt was made (as in `fault`, `excl` and `cost`).
        rec.iterations = 1;
        rec.cpus = vec![0];
        rec.expected = if go {
            format!("does it fault: {fault_text}")
        } else {
            fault_text
        };
        rec.rule = fault_rule;
        return rec;
    }

    // The race.
    let writers = (n - 1).min(MAX_WRITERS);
    let cpus: Vec<usize> = (0..=writers).collect();
    let reads = platform.config().iters.saturating_mul(TEAR_SCALE).max(1);
    let out = race(platform, c, addr, &exp, &cpus, reads);
    rec.cpus = cpus.iter().map(|&c| c as u32).collect();
    rec.elapsed_ms = Some(out.elapsed_ms);
    rec.iterations = out.reads;
    let counts = [
        ("reads", out.reads),
        ("writes", out.writes),
        ("torn", out.torn),
        ("deviating", out.deviating),
        ("faults", out.faults),
        ("writers", writers as u64),
    ];
    for (k, v) in counts {
        rec.counts.insert(k.into(), v);
    }
    if out.gave_up > 0 {
        rec.counts.insert("exclusive_gave_up".into(), out.gave_up);
    }
    if out.budget_hit {
        rec.counts.insert("time_capped".into(), 1);
    }
    if let Some(v) = out.first_torn {
        rec.counts.insert("first_torn_lo".into(), v as u64);
        if c.width > 64 {
            rec.counts.insert("first_torn_hi".into(), (v >> 64) as u64);
        }
    }
    if let Some(e) = &out.error {
        rec.reason = Some(e.clone());
        rec.result = ProbeResult::Skipped;
        rec.verdict = Verdict::Skipped;
        return rec;
    }
    if out.writes == 0 && out.faults == 0 {
        rec.reason = Some(format!(
            "the writer cores stored nothing while core 0 read (within {RACE_BUDGET_MS} ms): no race took place"
        ));
        rec.result = ProbeResult::Skipped;
        rec.verdict = Verdict::Skipped;
        return rec;
    }
    let excl_never = out.reads == 0 && out.gave_up > 0;
    rec.result = if out.faults > 0 {
        ProbeResult::Fault
    } else if excl_never {
        ProbeResult::Livelock
    } else if out.torn > 0 {
        ProbeResult::Torn
    } else {
        ProbeResult::Atomic
    };
    // A livelocked atomic read is judged like an exclusive that never succeeds: required to
    // progress only on Normal Write-Back memory.
    let livelock_ok = !excl_never || super::excl::exclusives_may_fail(attr, env);
    let ok = fault_ok && out.deviating == 0 && out.faults == 0 && livelock_ok;
    rec.verdict = if ok { Verdict::Ok } else { Verdict::Deviation };
    let mut rule = exp.rule.clone();
    if load_fx.expect != FaultExpect::NoFault
        || store_fx.iter().any(|e| e.expect != FaultExpect::NoFault)
    {
        rule.push_str("; ");
        rule.push_str(&fault_rule);
    }
    rec.rule = rule;
    rec.expected = if go {
        format!(
            "does it fault: {fault_text}. does it tear: {} (Go's atomic.LoadUint64 is {} here)",
            exp.text, c.load.op
        )
    } else if load_fx.expect != FaultExpect::NoFault {
        format!("{fault_text}; {}", exp.text)
    } else {
        exp.text.clone()
    };
    rec
}

/// What a race observed.
#[derive(Clone, Debug, Default)]
pub struct RaceOut {
    pub reads: u64,
    pub writes: u64,
    pub torn: u64,
    pub deviating: u64,
    pub faults: u64,
    /// Reads that gave up (an exclusive pair that never succeeded).
    pub gave_up: u64,
    pub first_torn: Option<u128>,
    /// The reader stopped at [`RACE_BUDGET_MS`] before doing all its reads.
    pub budget_hit: bool,
    pub elapsed_ms: u64,
    /// The engine could not run the roles.
    pub error: Option<String>,
}

/// Race the reader (role 0 on `cpus[0]`) against writers (roles 1.. on the other cores) at
/// `addr` for `reads` loads, at most [`RACE_BUDGET_MS`].
pub fn race(
    platform: &dyn Platform,
    c: &TearCase,
    addr: usize,
    exp: &RaceExpectation,
    cpus: &[usize],
    reads: u64,
) -> RaceOut {
    let stop = AtomicBool::new(false);
    let c_reads = AtomicU64::new(0);
    let c_torn = AtomicU64::new(0);
    let c_dev = AtomicU64::new(0);
    let c_gave = AtomicU64::new(0);
    let c_first_lo = AtomicU64::new(0);
    let c_first_hi = AtomicU64::new(0);
    let c_first = AtomicBool::new(false);
    let c_budget = AtomicBool::new(false);
    let writers = cpus.len() - 1;
    // Per-role bookkeeping, plain stores only (see `RoleSlots`): faults and writes by role,
    // and each writer's "storing now" flag.
    let c_faults = RoleSlots::new(cpus.len());
    let c_writes = RoleSlots::new(cpus.len());
    let started = RoleSlots::new(cpus.len());
    let t0 = platform.now_ns();
    let deadline = t0 + RACE_BUDGET_MS * 1_000_000;
    let v0 = pattern(0, c.width);
    let body = |role: usize| {
        if role == 0 {
            let (mut n, mut torn, mut dev, mut faults, mut gave) = (0u64, 0u64, 0u64, 0u64, 0u64);
            // Read only once every writer is storing (the start barrier does not promise that
            // they all leave it at once).
            let mut spins = 0u64;
            while started.nonzero(1..writers + 1) < writers {
                core::hint::spin_loop();
                spins += 1;
                if spins.is_multiple_of(1024) && platform.now_ns() > deadline {
                    break;
                }
            }
            platform.guarded(&mut || {
                let mut i = 0u64;
                while i < reads {
                    i += 1;
                    // SAFETY: arena address with room for the access; guard armed.
                    let (v, st) = unsafe { (c.read)(addr as *const u8, v0) };
                    match st {
                        0 => {
                            n += 1;
                            let (t, d) = classify(v, c.width, c.shape, exp);
                            if t {
                                torn += 1;
                                // Only this role writes the first torn value: no RMW.
                                if torn == 1 {
                                    c_first_lo.store(v as u64, Ordering::Relaxed);
                                    c_first_hi.store((v >> 64) as u64, Ordering::Relaxed);
                                    c_first.store(true, Ordering::Relaxed);
                                }
                            }
                            dev += u64::from(d);
                        }
                        1 => {
                            faults += 1;
                            break;
                        }
                        _ => gave += 1,
                    }
                    if i.is_multiple_of(1024) && platform.now_ns() > deadline {
                        c_budget.store(true, Ordering::Relaxed);
                        break;
                    }
                }
            });
            stop.store(true, Ordering::SeqCst);
            c_reads.store(n, Ordering::Relaxed);
            c_torn.store(torn, Ordering::Relaxed);
            c_dev.store(dev, Ordering::Relaxed);
            c_faults.set(role, faults);
            c_gave.store(gave, Ordering::Relaxed);
        } else {
            let mut w = 0u64;
            let mut faults = 0u64;
            started.set(role, 1);
            // The writer's rotation: where in its cycle of values it starts (every cycle is at
            // most 8 steps long, see `writer_step`).
            let mut rng = SeedRng::new(
                platform.config().seed,
                &format!("tear-writer/{}/{role}", c.name),
            );
            let first_step = rng.below(8);
            platform.guarded(&mut || {
                let mut step = first_step;
                while !stop.load(Ordering::Relaxed) {
                    let (off, v, half) = writer_step(c.shape, c.width, role, writers, step);
                    step += 1;
                    let f = if half {
                        c.half.map(|h| h.1)
                    } else {
                        c.store.map(|s| s.1)
                    };
                    let Some(f) = f else { break };
                    // SAFETY: `off` is 0 or the half offset, inside the access, which fits in the
                    // arena; guard armed.
                    let st = unsafe { f((addr + off) as *mut u8, v) };
                    match st {
                        0 => w += 1,
                        1 => {
                            faults += 1;
                            break;
                        }
                        // An exclusive store that never succeeded wrote nothing.
                        _ => {}
                    }
                    if (step - first_step).is_multiple_of(1024)
                        && platform.now_ns() > deadline + 1_000_000_000
                    {
                        break;
                    }
                }
            });
            c_writes.set(role, w);
            c_faults.set(role, faults);
        }
    };
    let res = platform.run_on(cpus, RACE_BUDGET_MS + 5_000, &body);
    let elapsed_ms = (platform.now_ns().saturating_sub(t0)) / 1_000_000;
    let first_torn = c_first.load(Ordering::Relaxed).then(|| {
        u128::from(c_first_lo.load(Ordering::Relaxed))
            | (u128::from(c_first_hi.load(Ordering::Relaxed)) << 64)
    });
    RaceOut {
        reads: c_reads.load(Ordering::Relaxed),
        writes: c_writes.sum(),
        torn: c_torn.load(Ordering::Relaxed),
        deviating: c_dev.load(Ordering::Relaxed),
        faults: c_faults.sum(),
        gave_up: c_gave.load(Ordering::Relaxed),
        first_torn,
        budget_hit: c_budget.load(Ordering::Relaxed),
        elapsed_ms,
        error: res
            .err()
            .map(|e| format!("cores {cpus:?} could not run the race: {e:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A platform whose guard reports a fault for every guarded call without running it (so no
    /// instruction really faults): every family's trial takes its fault path.
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    mod always_faults {
        use alloc::string::ToString;
        use std::sync::Mutex;

        use crate::attr::{Arch, MemAttr};
        use crate::config::Config;
        use crate::fault::RawFault;
        use crate::platform::{Arena, Platform, Privilege, RuleEnv, RunError};
        use crate::record::{Probe, ProbeResult, Record};

        struct Faulty {
            cfg: Config,
            arena: usize,
            out: Mutex<Vec<Probe>>,
        }

        impl Platform for Faulty {
            fn env(&self) -> RuleEnv {
                RuleEnv {
                    arch: Arch::X86_64,
                    privilege: Privilege::User,
                    mmu_on: true,
                    align_check: false,
                    line: 64,
                    page: 4096,
                    map: crate::mapping::Variant::DEFAULT,
                }
            }
            fn config(&self) -> &Config {
                &self.cfg
            }
            fn cpu_count(&self) -> usize {
                2
            }
            fn now_ns(&self) -> u64 {
                0
            }
            fn cycles(&self) -> Option<u64> {
                None
            }
            fn arena(&self, attr: MemAttr) -> Result<Arena, String> {
                Ok(Arena {
                    base: self.arena as *mut u8,
                    len: 4 * 4096,
                    attr,
                })
            }
            fn guarded(&self, _op: &mut dyn FnMut()) -> Option<RawFault> {
                Some(RawFault::X86 {
                    vector: 13,
                    error_code: Some(0),
                    cr2: 0,
                    rip: 0,
                })
            }
            fn catches_faults(&self) -> bool {
                // Every guarded call "faults" and is reported: a guard that survives faults.
                true
            }
            fn run_on(
                &self,
                cpus: &[usize],
                _timeout_ms: u64,
                body: &(dyn Fn(usize) + Sync),
            ) -> Result<(), RunError> {
                for role in 0..cpus.len() {
                    body(role);
                }
                Ok(())
            }
            fn emit(&self, rec: &Record) {
                if let Record::Probe(p) = rec {
                    self.out.lock().unwrap().push(p.clone());
                }
            }
            fn progress(&self, _msg: &str) {}
        }

        /// A record whose trial faulted says 1 attempt in every family.
        #[test]
        fn a_trial_fault_is_one_iteration_in_every_family() {
            let mut cfg = Config::defaults(Arch::X86_64);
            cfg.probes = ["fault", "tear", "excl", "cost"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            cfg.attrs = vec!["wb".into()];
            let layout = std::alloc::Layout::from_size_align(4 * 4096, 4096).unwrap();
            // SAFETY: non-zero size; leaked for the test (nothing is accessed through it: the
            // guard never runs the probe).
            let arena = unsafe { std::alloc::alloc_zeroed(layout) } as usize;
            let p = Faulty {
                cfg,
                arena,
                out: Mutex::new(Vec::new()),
            };
            crate::suite::fault::run(&p);
            super::super::run(&p);
            crate::suite::excl::run(&p);
            crate::suite::cost::run(&p);
            let recs = p.out.into_inner().unwrap();
            for fam in ["fault", "tear", "excl", "cost"] {
                let faulted: Vec<&Probe> = recs
                    .iter()
                    .filter(|r| r.family == fam && r.result == ProbeResult::Fault)
                    .collect();
                assert!(!faulted.is_empty(), "{fam}: no fault record");
                for r in faulted {
                    assert_eq!(r.iterations, 1, "{fam} {}", r.name);
                }
            }
        }
    }

    fn exp(granule: u32, whole_pairs: bool) -> RaceExpectation {
        RaceExpectation {
            granule,
            whole_pairs,
            text: String::new(),
            rule: String::new(),
        }
    }

    #[test]
    fn seeded_offset_keeps_the_placement_and_varies_the_line() {
        use crate::attr::Arch;
        use crate::platform::Privilege;
        let env = RuleEnv {
            arch: Arch::Aarch64,
            privilege: Privilege::El(1),
            mmu_on: true,
            align_check: false,
            line: 64,
            page: 4096,
            map: crate::mapping::Variant::DEFAULT,
        };
        let base = 0x4000_0000usize;
        for p in Placement::ALL {
            for w in [16u32, 32, 64, 128] {
                let mut lines = alloc::collections::BTreeSet::new();
                for seed in 0..64 {
                    let mut rng = SeedRng::new(seed, "t");
                    let off = seeded_offset(p, w, &env, &mut rng, 2);
                    let plain = p.offset_in_arena(w, env.line, env.page);
                    assert_eq!(off % env.line, plain % env.line);
                    assert_eq!(
                        atomicity::placement_of(base + off, (w / 8) as usize, &env),
                        p,
                        "{p:?} {w} seed {seed}"
                    );
                    // Inside the first page (cross-page: across its end), clear of the
                    // reserved lines.
                    assert!(
                        p == Placement::CrossPage
                            || off + (w / 8) as usize <= env.page - 2 * env.line
                    );
                    lines.insert(off / env.line);
                    // Same seed, same choice.
                    assert_eq!(
                        off,
                        seeded_offset(p, w, &env, &mut SeedRng::new(seed, "t"), 2)
                    );
                }
                assert_eq!(lines.len() > 1, p != Placement::CrossPage, "{p:?}");
            }
        }
    }

    #[test]
    fn patterns_differ_in_every_byte() {
        for w in [8u32, 16, 32, 64, 128] {
            for a in 0..4 {
                for b in 0..4 {
                    if a == b {
                        continue;
                    }
                    let x = pattern(a, w) ^ pattern(b, w);
                    for i in 0..w / 8 {
                        assert_ne!((x >> (8 * i)) & 0xff, 0, "w{w} {a} {b} byte {i}");
                    }
                }
            }
        }
        assert_eq!(pattern(2, 32), 0x1312_1110);
        assert_eq!(pattern(1, 64), u64::MAX as u128);
    }

    #[test]
    fn whole_values_are_not_torn() {
        for k in 0..4 {
            assert_eq!(
                classify(pattern(k, 64), 64, Shape::Whole, &exp(64, false)),
                (false, false)
            );
        }
    }

    #[test]
    fn a_mix_of_two_stores_is_torn_and_deviates_only_where_atomicity_is_promised() {
        // Low half of V0, high half of V1.
        let v = pattern(0, 64) & 0xffff_ffff | pattern(1, 64) & !0xffff_ffffu128;
        assert_eq!(classify(v, 64, Shape::Whole, &exp(64, false)), (true, true));
        assert_eq!(
            classify(v, 64, Shape::Whole, &exp(32, false)),
            (true, false)
        );
        assert_eq!(classify(v, 64, Shape::Whole, &exp(8, false)), (true, false));
        // A byte mix inside the low 32 bits deviates at 32-bit granules.
        let v = pattern(0, 64) & 0xffff | pattern(1, 64) & !0xffffu128 & mask(64);
        assert_eq!(classify(v, 64, Shape::Whole, &exp(32, false)), (true, true));
        // 128-bit pair: halves from different stores are allowed at 64-bit granules.
        let v = pattern(2, 128) & mask(64) | pattern(3, 128) & !mask(64);
        assert_eq!(
            classify(v, 128, Shape::Whole, &exp(64, false)),
            (true, false)
        );
        assert_eq!(
            classify(v, 128, Shape::Whole, &exp(128, false)),
            (true, true)
        );
    }

    #[test]
    fn halves_combinations_are_states_not_tears() {
        let v = pattern(0, 64) & 0xffff_ffff | pattern(3, 64) & !0xffff_ffffu128;
        assert_eq!(
            classify(v, 64, Shape::Halves, &exp(32, false)),
            (false, false)
        );
        let v = pattern(0, 64) & 0xff_ffff | pattern(3, 64) & !0xff_ffffu128 & mask(64);
        assert_eq!(
            classify(v, 64, Shape::Halves, &exp(32, false)),
            (true, true)
        );
    }

    #[test]
    fn whole_and_halves_joining_two_whole_stores_is_torn() {
        let lo0_hi1 = pattern(0, 64) & 0xffff_ffff | pattern(1, 64) & !0xffff_ffffu128 & mask(64);
        assert_eq!(
            classify(lo0_hi1, 64, Shape::WholeAndHalves, &exp(32, true)),
            (true, true)
        );
        assert_eq!(
            classify(lo0_hi1, 64, Shape::WholeAndHalves, &exp(32, false)),
            (true, false)
        );
        let lo2_hi1 = pattern(2, 64) & 0xffff_ffff | pattern(1, 64) & !0xffff_ffffu128 & mask(64);
        assert_eq!(
            classify(lo2_hi1, 64, Shape::WholeAndHalves, &exp(32, true)),
            (false, false)
        );
        assert_eq!(
            classify(pattern(1, 64), 64, Shape::WholeAndHalves, &exp(32, true)),
            (false, false)
        );
    }

    /// Simulate the writers' steps on a memory image: every intermediate state must classify as
    /// not torn, so a race can never report a tear that the harness made up.
    #[test]
    fn every_state_the_writers_produce_is_untorn() {
        for shape in [Shape::Whole, Shape::Halves, Shape::WholeAndHalves] {
            for writers in 1..=2usize {
                let width = 64;
                let mut mem = pattern(0, width);
                for step in 0..64u64 {
                    for w in 1..=writers {
                        let (off, v, half) = writer_step(shape, width, w, writers, step);
                        if shape == Shape::Whole || (shape == Shape::WholeAndHalves && !half) {
                            mem = v;
                        } else {
                            let sh = 8 * off as u32;
                            mem = mem & !(mask(32) << sh) | (v << sh);
                        }
                        let (torn, dev) = classify(mem, width, shape, &exp(32, true));
                        assert!(
                            !torn && !dev,
                            "{shape:?} writers {writers} step {step}: {mem:#x}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn consecutive_stores_of_a_writer_differ_in_every_byte() {
        for shape in [Shape::Whole, Shape::Halves] {
            for w in 1..=2 {
                for s in 0..8u64 {
                    // The next store to the same place: the next step (whole values) or the one
                    // after (halves alternate low and high).
                    let next = if shape == Shape::Whole { 1 } else { 2 };
                    let (o1, a, _) = writer_step(shape, 64, w, 2, s);
                    let (o2, b, _) = writer_step(shape, 64, w, 2, s + next);
                    if o1 == o2 {
                        let n = if shape == Shape::Whole { 8 } else { 4 };
                        for i in 0..n {
                            assert_ne!((a ^ b) >> (8 * i) & 0xff, 0, "{shape:?} w{w} s{s}");
                        }
                    }
                }
            }
        }
    }
}
