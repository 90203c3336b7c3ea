//! The runner of generated litmus tests.
//!
//! Like [`crate::litmus::engine`] it runs *instances* in *batches* separated by a batch barrier
//! (one `Platform::run_on` call runs many batches; slot `s` plays role `(s + g) mod threads` in
//! batch `g`, so the thread-to-core mapping rotates), but the values are the test's own: a
//! generated body stores what its instructions compute, so memory cannot carry generation tags.
//! Instead every instance's locations are written with their initial values before the batch
//! that uses them:
//!
//! 1. batch `g` uses arena half `g mod 2`; every instance has its own locations there;
//! 2. after running batch `g`, slot `s` reads the final values of its share of batch `g − 1`
//!    (instances `i ≡ s mod slots`, in the other half) and the registers the roles saved, adds
//!    the outcome to its histogram, and writes that instance's locations back to their initial
//!    values;
//! 3. the next batch barrier (store-release of the slot's epoch, load-acquire of every other's)
//!    orders those writes before every access of batch `g + 1`, which reuses that half.
//!
//! So an instance's locations hold exactly their initial values when its threads start, and
//! every write of an earlier batch is coherence-before them: each counted outcome is an
//! outcome of the test embedded in a larger execution (the barrier, the other instances), which
//! in an axiomatic model (aarch64.cat, x86-TSO) only adds ordering constraints. An outcome the
//! model forbids for the test alone stays forbidden there.
//!
//! Layouts: one half holds one cache line per location, the other packs locations 8 bytes apart
//! (neighbouring instances then share lines, as litmus7's default); the halves swap layouts from
//! placement to placement.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU64, Ordering};

use super::{Col, FileTest, InitVal, Prepared, ADDR, MAX_COLS, MAX_IO};
use crate::litmus::engine::{placement, RunOpts};
use crate::platform::{Arena, Platform};
use crate::record::{HistogramEntry, Litmus, Verdict};

const LINE: usize = 64;
/// Bytes per location slot: the widest access (64 bits), naturally aligned.
const SLOT: usize = 8;

/// Per-slot flag line of the batch barrier: arrival epoch and the stop vote, by epoch parity.
#[repr(C, align(128))]
struct Flag {
    epoch: AtomicU64,
    stop: [AtomicU64; 2],
}

/// Shared state a slot writes alone at a time (results of its role, its histogram); see the
/// SAFETY comments where it is touched.
struct Cell<T>(UnsafeCell<T>);
// SAFETY: every access is partitioned by slot/role and batch parity, and the batch barrier's
// release/acquire pairs order a writer's accesses before a reader's (module documentation).
unsafe impl<T> Sync for Cell<T> {}

/// What a run produced.
pub struct FileOutcome {
    pub iterations: u64,
    pub elapsed_ns: u64,
    /// Outcome (one value per column) and count.
    pub hist: BTreeMap<[i64; MAX_COLS], u64>,
}

/// Where instance `i`'s location `v` lives, in half `half`.
#[derive(Clone, Copy)]
struct Layout {
    base: usize,
    per_instance: usize,
    per_loc: usize,
}

impl Layout {
    fn new(arena: &Arena, half: usize, packed: bool, nlocs: usize) -> Layout {
        let half_len = arena.len / 2;
        let base = arena.base as usize + half * half_len;
        if packed {
            Layout {
                base,
                per_instance: SLOT * nlocs,
                per_loc: SLOT,
            }
        } else {
            Layout {
                base,
                per_instance: LINE * nlocs,
                per_loc: LINE,
            }
        }
    }
    #[inline(always)]
    fn at(&self, i: usize, v: usize) -> usize {
        self.base + i * self.per_instance + v * self.per_loc
    }
}

/// Read location `v` of size `size` at `addr`, zero-extended.
///
/// # Safety
/// `addr` is a location slot inside the arena.
#[inline(always)]
unsafe fn read_loc(addr: usize, size: usize) -> i64 {
    // SAFETY: the caller passes a slot address inside the arena, aligned to 8.
    unsafe {
        match size {
            1 => core::ptr::read_volatile(addr as *const u8) as i64,
            2 => core::ptr::read_volatile(addr as *const u16) as i64,
            4 => core::ptr::read_volatile(addr as *const u32) as i64,
            _ => core::ptr::read_volatile(addr as *const u64) as i64,
        }
    }
}

/// Run `t` on `arena` with roles over `cpus`.
pub fn run(
    platform: &dyn Platform,
    t: &FileTest,
    p: &Prepared,
    arena: &Arena,
    cpus: &[usize],
    opts: &RunOpts,
) -> Result<FileOutcome, String> {
    let threads = t.bodies.len();
    if threads == 0 || threads > cpus.len() {
        return Err(format!(
            "needs {threads} cores (one per thread), {} usable",
            cpus.len()
        ));
    }
    let nlocs = p.locs.len().max(1);
    let half = arena.len / 2;
    // Instances per batch in the line-per-location half and in the packed half (the arena is
    // small on bare metal: 16 KiB; the barrier is the expensive part, so fill each half).
    let k_line = (half.saturating_sub(LINE) / (LINE * nlocs))
        .min(opts.batch)
        .max(1);
    let k_packed = (half.saturating_sub(LINE) / (SLOT * nlocs))
        .min(opts.batch)
        .max(1);
    let k = k_packed.max(k_line);
    if half < LINE * nlocs + LINE {
        return Err(format!("arena of {} bytes too small", arena.len));
    }
    let total_batches = opts
        .iterations
        .div_ceil(((k_line + k_packed) / 2) as u64)
        .max(1);
    let placements = opts.placements.max(1) as u64;
    let mut hist: BTreeMap<[i64; MAX_COLS], u64> = BTreeMap::new();
    let mut done = 0u64;
    let t0 = platform.now_ns();
    let deadline = if opts.budget_ms == 0 {
        u64::MAX
    } else {
        t0.saturating_add(opts.budget_ms * 1_000_000)
    };
    // Registers each role saves per instance.
    let saved: Vec<Vec<usize>> = (0..threads)
        .map(|r| {
            p.cols
                .iter()
                .filter_map(|c| match c {
                    Col::Reg { thread, slot, .. } if *thread == r => Some(*slot),
                    _ => None,
                })
                .collect()
        })
        .collect();
    for pl in 0..placements {
        if platform.now_ns() > deadline && done > 0 {
            break;
        }
        let batches =
            (total_batches / placements + u64::from(pl < total_batches % placements)).max(1);
        let cores = placement(cpus, threads, opts.rotate + pl as usize);
        let slots = cores.len();
        let flags: Vec<Flag> = (0..slots)
            .map(|_| Flag {
                epoch: AtomicU64::new(0),
                stop: Default::default(),
            })
            .collect();
        let results: Vec<[Cell<Vec<u64>>; 2]> = (0..threads)
            .map(|r| {
                [
                    Cell(UnsafeCell::new(vec![0u64; k * saved[r].len().max(1)])),
                    Cell(UnsafeCell::new(vec![0u64; k * saved[r].len().max(1)])),
                ]
            })
            .collect();
        let hists: Vec<Cell<BTreeMap<[i64; MAX_COLS], u64>>> = (0..slots)
            .map(|_| Cell(UnsafeCell::new(BTreeMap::new())))
            .collect();
        let ran = AtomicU64::new(0);
        let failed = AtomicU64::new(0);
        let give_up = deadline.saturating_add(10_000_000_000);

        // Write instance `i`'s locations in half `h` (layout of batch `g`) with their initial
        // values.
        let reset = |lay: &Layout, i: usize| {
            for (v, l) in p.locs.iter().enumerate() {
                let val = match l.init {
                    InitVal::Int(x) => x as u64,
                    InitVal::Addr(a) => lay.at(i, a) as u64,
                };
                // SAFETY: the slot lies inside the arena half (k instances fit, checked above);
                // only this slot touches instance `i` between two barriers.
                unsafe { core::ptr::write_volatile(lay.at(i, v) as *mut u64, val) };
            }
        };
        // The layout is fixed per half within a `run_on` call (classification reads one layout
        // while other slots reset the same half: both must see the same positions), and swaps
        // between placements.
        let layout_of = |g: u64| Layout::new(arena, (g % 2) as usize, ((g + pl) % 2) == 1, nlocs);
        // Instances in batch `g` (its half's layout).
        let k_of = |g: u64| {
            if ((g + pl) % 2) == 1 {
                k_packed
            } else {
                k_line
            }
        };

        let body = |slot: usize| {
            // Slot `slot` initialises its share of both halves for batches 0 and 1.
            for g in 0..2u64 {
                let lay = layout_of(g);
                for i in (slot..k_of(g)).step_by(slots) {
                    reset(&lay, i);
                }
            }
            let me = &flags[slot];
            let mut local_stop = false;
            for g in 0..=batches {
                // Barrier `g + 1`.
                let epoch = g + 1;
                let par = (epoch & 1) as usize;
                let vote = u64::from(local_stop || platform.now_ns() > deadline);
                me.stop[par].store(vote, Ordering::Relaxed);
                me.epoch.store(epoch, Ordering::Release);
                let mut stop = vote != 0;
                for (s, other) in flags.iter().enumerate() {
                    if s == slot {
                        continue;
                    }
                    let mut spins = 0u32;
                    while other.epoch.load(Ordering::Acquire) < epoch {
                        core::hint::spin_loop();
                        spins = spins.wrapping_add(1);
                        if spins.is_multiple_of(1 << 16)
                            && (platform.now_ns() > give_up || failed.load(Ordering::Relaxed) != 0)
                        {
                            failed.store(1, Ordering::Relaxed);
                            return;
                        }
                    }
                    stop |= other.stop[par].load(Ordering::Relaxed) != 0;
                }
                local_stop = stop;
                let running = g < batches && !stop;
                // Run batch `g`.
                if running {
                    let role = (slot + g as usize) % threads;
                    let lay = layout_of(g);
                    let body = t.bodies[role];
                    let init = &p.io_init[role];
                    let keep = &saved[role];
                    // SAFETY: in batch `g` only role `role`'s slot writes results[role][g % 2];
                    // readers read it after the next barrier.
                    let out = unsafe { &mut *results[role][(g % 2) as usize].0.get() };
                    let mut io = [0u64; MAX_IO];
                    for i in 0..k_of(g) {
                        for (s, v) in init.iter().enumerate() {
                            io[s] = match *v {
                                InitVal::Int(x) => x as u64,
                                InitVal::Addr(a) => lay.at(i, a) as u64,
                            };
                        }
                        // SAFETY: the address slots hold instance `i`'s locations, inside the
                        // arena; the body accesses only them (generated from the test).
                        unsafe { body(&mut io) };
                        for (j, &s) in keep.iter().enumerate() {
                            out[i * keep.len() + j] = io[s];
                        }
                    }
                }
                // Classify batch `g − 1`.
                if g >= 1 {
                    let pg = g - 1;
                    let lay = layout_of(pg);
                    // SAFETY: only this slot touches its histogram.
                    let h = unsafe { &mut *hists[slot].0.get() };
                    let mut vals = [0i64; MAX_COLS];
                    for i in (slot..k_of(pg)).step_by(slots) {
                        for (c, col) in p.cols.iter().enumerate() {
                            vals[c] = match col {
                                Col::Reg {
                                    thread, slot: s, ..
                                } => {
                                    let keep = &saved[*thread];
                                    let j = keep.iter().position(|x| x == s).unwrap_or(0);
                                    // SAFETY: batch `pg`'s results, written before the barrier
                                    // this slot passed; nobody writes them until batch `pg + 2`.
                                    let r =
                                        unsafe { &*results[*thread][(pg % 2) as usize].0.get() };
                                    let raw = r[i * keep.len() + j];
                                    symbolic(raw, &lay, i, p)
                                }
                                Col::Loc { loc } => {
                                    // SAFETY: a slot of instance `i` in the arena half of `pg`.
                                    let raw =
                                        unsafe { read_loc(lay.at(i, *loc), p.locs[*loc].size) };
                                    symbolic(raw as u64, &lay, i, p)
                                }
                            };
                        }
                        *h.entry(vals).or_insert(0) += 1;
                        // Batch `pg + 2` reuses this half, with the layout of `pg + 2`.
                        reset(&layout_of(pg + 2), i);
                    }
                    if slot == 0 {
                        ran.fetch_add(k_of(pg) as u64, Ordering::Relaxed);
                    }
                }
                if !running {
                    break;
                }
            }
        };
        let timeout_ms = opts.budget_ms.saturating_mul(2).max(10_000) + 10_000;
        platform
            .run_on(&cores, timeout_ms, &body)
            .map_err(|e| format!("cores failed: {e:?}"))?;
        if failed.load(Ordering::Relaxed) != 0 {
            return Err("a core did not reach the batch barrier in time".into());
        }
        for c in &hists {
            // SAFETY: `run_on` has returned: no slot runs any more.
            for (key, n) in unsafe { &*c.0.get() } {
                *hist.entry(*key).or_insert(0) += n;
            }
        }
        done += ran.load(Ordering::Relaxed);
    }
    Ok(FileOutcome {
        iterations: done,
        elapsed_ns: platform.now_ns().saturating_sub(t0),
        hist,
    })
}

/// A register or location value as the outcome shows it: a location's address becomes that
/// location ([`ADDR`] + index).
#[inline(always)]
fn symbolic(raw: u64, lay: &Layout, i: usize, p: &Prepared) -> i64 {
    for v in 0..p.locs.len() {
        if raw == lay.at(i, v) as u64 {
            return ADDR + v as i64;
        }
    }
    raw as i64
}

/// The `litmus` record of a run: the histogram cast, filtered and judged by
/// [`super::summarise`].
pub fn record(t: &FileTest, p: &Prepared, attr: &str, cpus: &[usize], out: &FileOutcome) -> Litmus {
    let sum = super::summarise(t, p, &out.hist, out.iterations);
    let histogram: Vec<HistogramEntry> = sum
        .histogram
        .into_iter()
        .map(|(outcome, count)| HistogramEntry { outcome, count })
        .collect();
    let ns = out.elapsed_ns.max(1);
    let relaxed = if p.file.cond.quant == super::Quant::Exists {
        sum.observed
    } else {
        sum.counted - sum.observed
    };
    Litmus {
        name: t.name.into(),
        attr: attr.into(),
        cpus: cpus.iter().map(|&c| c as u32).collect(),
        // Runs counted (a `filter` leaves some out); `iter_per_s` counts every run.
        iterations: sum.counted,
        histogram,
        condition: p.condition(),
        observed: sum.observed,
        model: t.model,
        verdict: sum.verdict,
        elapsed_ms: out.elapsed_ns / 1_000_000,
        iter_per_s: (out.iterations as u128 * 1_000_000_000 / ns as u128) as u64,
        relaxed_per_s: (relaxed as u128 * 1_000_000_000 / ns as u128) as u64,
        rule: sum.rule,
        reason: sum.reason,
        // Filled in by the suite's per-mapping wrapper when the record is emitted.
        map: Default::default(),
    }
}

/// A `skipped` record for `t`.
pub fn skipped(t: &FileTest, condition: String, attr: &str, reason: String) -> Litmus {
    Litmus {
        name: t.name.into(),
        attr: attr.into(),
        cpus: Vec::new(),
        iterations: 0,
        histogram: Vec::new(),
        condition,
        observed: 0,
        model: t.model,
        verdict: Verdict::Skipped,
        elapsed_ms: 0,
        iter_per_s: 0,
        relaxed_per_s: 0,
        rule: t.rule.into(),
        reason: Some(reason),
        map: Default::default(),
    }
}
