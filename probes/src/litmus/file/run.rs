//! The runner of generated litmus tests (every litmus test runs here).
//!
//! It runs *instances* in *batches* with the machinery of [`crate::litmus::engine`]: one
//! `Platform::run_on` call per placement runs many batches; before every batch
//! the slots meet at the engine's batch barrier (`engine::Barrier`: plain stores, one
//! store-release and one load-acquire per slot pair, no read-modify-write), which also agrees on
//! the stop vote, the stagger and the batch scale (`engine::Agreement`); slot `s` plays role
//! `(s + g) mod threads` in batch `g`, so the thread-to-core mapping rotates; inside a batch the
//! roles keep in step as [`RunOpts::sync`] says, through the engine's one implementation of the
//! sync modes (`engine::in_step`: `Barrier`, `BarrierStart`, `BarrierClock`, `Handshake`, and
//! on bare metal `Lockstep`, meeting points every few instances with the self-tuning stagger).
//!
//! Values: a generated body stores what its instructions compute, so memory cannot carry
//! generation tags (as the hand-written tests' values once did). Instead every instance's
//! locations hold their initial values when the batch that uses them starts:
//!
//! 1. batch `g` uses arena half `g mod 2`; every instance has its own locations there;
//! 2. before the first batch every location of either half holds its initial value: for a test
//!    whose locations all start at 0 the whole arena is zeroed before `run_on`; otherwise, at
//!    the start of a `run_on` call, slot `s` writes the initial values of its share (the `s`-th
//!    of `slots` contiguous ranges) of every instance either half can hold in its fixed layout;
//! 3. after running batch `g`, slot `s` reads the final values of its share (the `s`-th
//!    contiguous range) of batch `g − 1` (in the other half) and the registers the roles saved,
//!    adds the outcome to its histogram, and writes that instance's locations back to their
//!    initial values;
//! 4. the next batch barrier (store-release of the slot's epoch, load-acquire of every other's)
//!    orders those writes before every access of batch `g + 1`, which reuses that half. No
//!    other access touches an instance's locations between its classification and its reuse
//!    (one slot reads and resets it; the meeting points and handshakes use words of their own,
//!    outside the arena).
//!
//! Layouts. A test whose locations all start at 0 (nearly every test) changes layout from
//! batch to batch: kind `g mod 3` of [`LayoutKind::ALL`] (a line per
//! location; one array per location, neighbouring instances sharing lines as in litmus7's
//! default; an instance's locations side by side in one line), shifted by `g / 3` slots inside
//! the line. Every location not in use is 0 (zeroed at the start, reset after each use), so any
//! layout of a half finds every instance at its initial values. Under QEMU TCG the kinds give
//! SB very different relaxed shares (stagger 16, virt: 17 % a line per location, 5 % packed,
//! 11 % side by side; issue 14), and rotating keeps all three in every run. A test with other
//! initial values keeps one layout per half for a whole `run_on` call (a line per location in
//! one, the arrays in the other, swapped between placements), and a batch uses a window of the
//! half (`Plan::first`) that moves on by the batch size from one use of the half to the next,
//! so consecutive batches do not reuse the same lines (SB's relaxed share on QEMU TCG with
//! fixed layouts: 6.5–8.9 % without the window, 10–16.5 % with it). [`RunOpts::layout`] fixes
//! the kind (benchmarks).
//!
//! So an instance's locations hold exactly their initial values when its threads start, and
//! every write of an earlier batch is coherence-before them: each counted outcome is an
//! outcome of the test embedded in a larger execution (the barrier, the meeting points, the
//! other instances), which in an axiomatic model (aarch64.cat, x86-TSO) only adds ordering
//! constraints. An outcome the model forbids for the test alone stays forbidden there.
//!
//! Rate: per instance the roles' loop stores the instance's offset into the batch's frame and
//! calls the body, which loads its operands from the frame, adds the offset to the address
//! operands and stores the kept registers straight into the role's result array
//! ([`super::Frame`]; before it, a loop filled every slot and copied the kept ones out: with the
//! rotating layouts as well, SB on QEMU virt went from 2.4–3.5 M to 3.7–5.1 M it/s). The
//! classification resolves each column's source once per batch, finds the outcome in the slot's
//! list by a hash of its values (the condition is evaluated once per distinct outcome, not per
//! instance), and looks a value up among the instance's location addresses only when it lies in
//! the arena: under QEMU TCG it had taken 45 % of SB's run (docs/probes.md, "Classification").

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::{Col, FileTest, Frame, InitVal, Prepared, ADDR, MAX_COLS, MAX_IO};
use crate::litmus::engine::{
    self, cache, clock, in_step, placement, Agreement, Barrier, Bounds, Handshake, LayoutKind,
    Lockstep, Pace, Progress, RunOpts, Skew, Stagger, Step, SyncMode, ARMS, GIVE_UP_MS, MAX_SCALE,
};
use crate::litmus::parse::Quant;
use crate::platform::{Arena, Platform};
use crate::record::{HistogramEntry, Litmus, Verdict};

const LINE: usize = 64;

/// Shared state one slot writes at a time (results of its role, its own histogram); see the
/// SAFETY comments where it is touched.
struct Cells<T>(Vec<UnsafeCell<T>>);
// SAFETY: every access is partitioned by slot/role and batch parity, and the batch barrier's
// release/acquire pairs order a writer's accesses before a reader's (module documentation).
unsafe impl<T: Send> Sync for Cells<T> {}

/// `RunOpts::adaptive`: trials before the run proper (`Barrier`, `BarrierClock`, `Barrier`,
/// `BarrierClock`), each running this fraction of the instances…
const TRIALS: usize = 4;
const TRIAL_SHARE: u64 = 32;
/// … if that is at least this many (32 batches of 64).
const TRIAL_MIN: u64 = 2048;

/// Every outcome the slots have counted so far, with its count (call only while no slot runs).
fn counted_so_far(states: &Cells<SlotState>) -> BTreeMap<[i64; MAX_COLS], (u64, bool)> {
    let mut all: BTreeMap<[i64; MAX_COLS], (u64, bool)> = BTreeMap::new();
    // SAFETY: `run_on` has returned (or not started): no slot touches its state.
    for st in states.0.iter().map(|c| unsafe { &*c.get() }) {
        for e in &st.hist.entries {
            let t = all.entry(e.vals).or_insert((0, e.relaxed));
            t.0 += e.count;
        }
    }
    all
}

/// What one mode's trials counted ([`RunOpts::adaptive`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Trial {
    /// Instances with the outcome the condition looks for (the record's relaxed count).
    pub relaxed: u64,
    /// Instances whose outcome was not the trial's most common one: where the roles' accesses
    /// interleaved in some other way than one role's all before the other's.
    pub off_mode: u64,
    pub ns: u64,
}

impl Trial {
    /// Add what one trial counted: `before` and `after` are [`counted_so_far`] around it.
    fn add(
        &mut self,
        before: &BTreeMap<[i64; MAX_COLS], (u64, bool)>,
        after: &BTreeMap<[i64; MAX_COLS], (u64, bool)>,
        ns: u64,
    ) {
        let (mut total, mut most) = (0u64, 0u64);
        for (vals, &(count, relaxed)) in after {
            let n = count - before.get(vals).map_or(0, |b| b.0);
            total += n;
            most = most.max(n);
            if relaxed {
                self.relaxed += n;
            }
        }
        self.off_mode += total - most;
        self.ns += ns.max(1);
    }
}

/// Whether the trials favour `BarrierClock` over `Barrier`: more relaxed outcomes a
/// nanosecond; when neither trial counted one (a forbidden outcome, or a rare one), more
/// instances off the most common outcome a nanosecond. The batch barrier alone lets a role run
/// ahead: in R+po+mfence and MP+po+po-rfi-po 97–98 % of its instances then had the outcome of
/// one thread's accesses all before the other's, 46 % and 31 % under the time slots (litmus7:
/// 44 % off its most common outcome in R+po+mfence); a tie on relaxed outcomes used to keep the
/// faster `Barrier` (issue 14, `docs/probes.md`). A tie here too keeps `Barrier`.
pub fn clock_wins(barrier: Trial, clock: Trial) -> bool {
    // Rates compared without division: a/a_ns > b/b_ns as a·b_ns > b·a_ns.
    let more =
        |a: u64, a_ns: u64, b: u64, b_ns: u64| a as u128 * b_ns as u128 > b as u128 * a_ns as u128;
    if barrier.relaxed == 0 && clock.relaxed == 0 {
        more(clock.off_mode, clock.ns, barrier.off_mode, barrier.ns)
    } else {
        more(clock.relaxed, clock.ns, barrier.relaxed, barrier.ns)
    }
}

/// What a run produced.
pub struct FileOutcome {
    pub iterations: u64,
    pub elapsed_ns: u64,
    /// Outcome (one value per column) and count.
    pub hist: BTreeMap<[i64; MAX_COLS], u64>,
    /// `RunOpts::skew`: how far apart the roles ran.
    pub skew: Option<Skew>,
    /// [`SyncMode::Lockstep`] with a tuned stagger: the best stagger at the end and every
    /// arm's relaxed fraction per million ([`engine::STAGGERS`]).
    pub stagger: Option<(u64, [u64; ARMS])>,
    /// [`RunOpts::adaptive`]: what the trials counted (`Barrier`, then `BarrierClock`) and the
    /// mode the rest ran in.
    pub trials: Option<([Trial; 2], SyncMode)>,
}

/// Where instance `i`'s location `v` lives, in one half: `base + i·per_instance + v·per_loc`.
#[derive(Clone, Copy)]
struct Layout {
    base: usize,
    /// Line per location: the instance's lines (`LINE · nlocs`); packed: one slot.
    per_instance: usize,
    /// Line per location: a line; packed: one array of `cap` slots, rounded up to a line.
    per_loc: usize,
    /// Instances the half holds in this layout.
    cap: usize,
}

impl Layout {
    /// The fixed layouts: `packed` one array per location, else a line per location.
    fn new(
        arena: &Arena,
        half: usize,
        packed: bool,
        nlocs: usize,
        slot: usize,
        most: usize,
    ) -> Layout {
        let kind = if packed {
            LayoutKind::Packed
        } else {
            LayoutKind::LinePerVar
        };
        Layout::of(arena, half, kind, 0, nlocs, slot, most)
    }

    /// Layout `kind` of half `half` with `slot` bytes per location, shifted by `variant` slots
    /// inside the line (reduced to the
    /// shifts the kind has): `LinePerVar` a line per
    /// location, `Packed` one array per location (neighbouring instances share lines, as
    /// litmus7's default), `SameLine` an instance's locations side by side in one line (only
    /// where they fit in one).
    fn of(
        arena: &Arena,
        half: usize,
        kind: LayoutKind,
        variant: usize,
        nlocs: usize,
        slot: usize,
        most: usize,
    ) -> Layout {
        let half_len = arena.len / 2 / LINE * LINE;
        let base = arena.base as usize + half * half_len;
        // A line of slack per location for the shift (and the rounding of packed arrays).
        let room = half_len.saturating_sub(2 * LINE * (nlocs + 1));
        let shift = |choices: usize| slot * (variant % choices.max(1));
        match kind {
            LayoutKind::Packed => {
                let cap = (room / (slot * nlocs)).clamp(1, most);
                Layout {
                    base: base + shift(LINE / slot),
                    per_instance: slot,
                    per_loc: (cap * slot).div_ceil(LINE) * LINE + LINE,
                    cap,
                }
            }
            LayoutKind::SameLine if nlocs * slot <= LINE => Layout {
                base: base + shift(LINE / slot + 1 - nlocs),
                per_instance: LINE,
                per_loc: slot,
                cap: (room / LINE).clamp(1, most),
            },
            _ => Layout {
                base: base + shift(LINE / slot),
                per_instance: LINE * nlocs,
                per_loc: LINE,
                cap: (room / (LINE * nlocs)).clamp(1, most),
            },
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
    // SAFETY: the caller passes a location's slot inside the arena, aligned to the slot's size
    // (4 or 8 bytes), at least `size`.
    unsafe {
        match size {
            1 => core::ptr::read_volatile(addr as *const u8) as i64,
            2 => core::ptr::read_volatile(addr as *const u16) as i64,
            4 => core::ptr::read_volatile(addr as *const u32) as i64,
            _ => core::ptr::read_volatile(addr as *const u64) as i64,
        }
    }
}

/// Where an outcome column comes from, resolved once per run.
#[derive(Clone, Copy)]
enum Src {
    /// Saved value `j` of `n` per instance of role `thread`.
    Reg { thread: usize, j: usize, n: usize },
    /// Final value of location `loc`, `size` bytes.
    Loc { loc: usize, size: usize },
}

/// Where a column's values are in one batch: the address of instance 0's value, the bytes from
/// one instance's value to the next, and the value's size. A saved register is a `u64` of its
/// role's result array (the stride: the values saved per instance), a final value the location's
/// slot (the stride: the layout's bytes per instance): one form, so reading a column is one
/// multiply-add and one load, with no branch on where it comes from.
#[derive(Clone, Copy)]
struct ColAt {
    at: usize,
    stride: usize,
    size: usize,
}

impl ColAt {
    /// Column value of instance `i` of the batch, zero-extended.
    ///
    /// # Safety
    /// Instance `i` is one of the batch's, whose values the barrier ordered before this read.
    #[inline(always)]
    unsafe fn read(&self, i: usize) -> u64 {
        // SAFETY: by the caller, `at + i · stride` is instance `i`'s value: in its role's result
        // array, or its location's slot inside the arena.
        unsafe { read_loc(self.at + i * self.stride, self.size) as u64 }
    }
}

/// Ask for every line the classification of instances `lo..hi` of a batch (the half's
/// `first + lo..first + hi` in layout `lay`) reads (the columns, `at`) or resets (its `nlocs`
/// locations), all at once ([`RunOpts::prefetch`]).
#[inline(always)]
fn prefetch_share(lay: &Layout, first: usize, lo: usize, hi: usize, nlocs: usize, at: &[ColAt]) {
    if lo >= hi {
        return;
    }
    for c in at {
        let (from, to) = (c.at + lo * c.stride, c.at + (hi - 1) * c.stride);
        for a in (from & !(LINE - 1)..=to).step_by(LINE) {
            cache::prefetch(a);
        }
    }
    for v in 0..nlocs {
        let (mut i, mut last) = (first + lo, usize::MAX);
        while i < first + hi {
            let line = lay.at(i, v) & !(LINE - 1);
            if line != last {
                cache::prefetch(line);
                last = line;
            }
            i += 1;
        }
    }
}

/// One slot's histogram: the outcomes it counted, each with whether it is the relaxed one the
/// stagger tuner scores (evaluated once, when the outcome is first seen).
struct Hist {
    n: usize,
    entries: Vec<Entry>,
    /// Entry index + 1 (0: none) by a hash of the values: a counted outcome is found with one
    /// comparison, whatever the order outcomes come in (SB's four alternate at random).
    index: [u32; HIST_INDEX],
}

/// An outcome, its count and whether it is relaxed; `key` is its values packed into one word
/// ([`pack`]), or [`NO_KEY`] where they do not fit.
struct Entry {
    vals: [i64; MAX_COLS],
    count: u64,
    relaxed: bool,
    key: u64,
}

/// Hash buckets of [`Hist::index`].
const HIST_INDEX: usize = 64;
/// Bits of one column's value in a packed outcome ([`pack`]).
const PACK_BITS: u32 = 8;
/// Values packed are below this.
const PACK_LIMIT: u64 = 1 << PACK_BITS;
/// Most columns of a packed outcome: `PACK_COLS · PACK_BITS` bits stay clear of [`NO_KEY`].
const PACK_COLS: usize = 7;
/// The key of an outcome whose values do not pack.
const NO_KEY: u64 = u64::MAX;

/// `vals` packed into one word, `PACK_BITS` a column (column `c` at bit `c · PACK_BITS`), if
/// there are at most `PACK_COLS` and each is in `0..PACK_LIMIT`; else [`NO_KEY`]. The litmus
/// tests' values are small, so nearly every instance is counted by one word: hosted, comparing
/// the values one by one made classifying an instance cost more than running it (issue 14,
/// `docs/probes.md`).
fn pack(vals: &[i64]) -> u64 {
    if vals.len() > PACK_COLS {
        return NO_KEY;
    }
    let mut key = 0u64;
    for (c, &v) in vals.iter().enumerate() {
        if !(0..PACK_LIMIT as i64).contains(&v) {
            return NO_KEY;
        }
        key |= (v as u64) << (PACK_BITS * c as u32);
    }
    key
}

/// The bucket of a packed outcome (one multiply: Fibonacci hashing).
#[inline(always)]
fn key_bucket(key: u64) -> usize {
    (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58) as usize % HIST_INDEX
}

impl Hist {
    fn new(n: usize) -> Hist {
        Hist {
            n,
            entries: Vec::new(),
            index: [0; HIST_INDEX],
        }
    }

    /// Count the outcome packed as `key` ([`pack`] of its values); returns whether it is
    /// relaxed. One multiply, one load and one comparison when its bucket holds it.
    #[inline(always)]
    fn add_packed(&mut self, key: u64, relaxed: &dyn Fn(&[i64]) -> bool) -> bool {
        let bucket = key_bucket(key);
        if let Some(e) = self
            .entries
            .get_mut((self.index[bucket] as usize).wrapping_sub(1))
        {
            if e.key == key {
                e.count += 1;
                return e.relaxed;
            }
        }
        let mut vals = [0i64; MAX_COLS];
        for (c, v) in vals.iter_mut().enumerate().take(self.n) {
            *v = ((key >> (PACK_BITS * c as u32)) % PACK_LIMIT) as i64;
        }
        self.add_slow(key, bucket, &vals, relaxed)
    }

    /// Count `vals`; returns whether it is relaxed (`relaxed` decides for a new outcome).
    #[inline(always)]
    fn add(&mut self, vals: &[i64; MAX_COLS], relaxed: &dyn Fn(&[i64]) -> bool) -> bool {
        let n = self.n;
        let key = pack(&vals[..n]);
        if key != NO_KEY {
            return self.add_packed(key, relaxed);
        }
        let mut h = 0u64;
        for &v in &vals[..n] {
            h = (h ^ v as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
        let bucket = (h >> 58) as usize % HIST_INDEX;
        if let Some(e) = self
            .entries
            .get_mut((self.index[bucket] as usize).wrapping_sub(1))
        {
            // Compared value by value: a slice comparison calls `memcmp`, which in the kernel
            // is `compiler_builtins`' byte loop (SB on virt under QEMU TCG: 1.7 M it/s with it,
            // 3.0 M without).
            if e.key == NO_KEY && (0..n).all(|c| e.vals[c] == vals[c]) {
                e.count += 1;
                return e.relaxed;
            }
        }
        self.add_slow(key, bucket, vals, relaxed)
    }

    /// Count `vals` (packed as `key`, or [`NO_KEY`]) whose hash bucket is `bucket`, looking
    /// through every entry: a new outcome, or one whose bucket another has taken.
    fn add_slow(
        &mut self,
        key: u64,
        bucket: usize,
        vals: &[i64; MAX_COLS],
        relaxed: &dyn Fn(&[i64]) -> bool,
    ) -> bool {
        let n = self.n;
        // Value by value, as in `add`.
        let same = |e: &Entry| e.key == key && (0..n).all(|c| e.vals[c] == vals[c]);
        if let Some(k) = self.entries.iter().position(same) {
            self.index[bucket] = k as u32 + 1;
            self.entries[k].count += 1;
            return self.entries[k].relaxed;
        }
        let r = relaxed(&vals[..n]);
        let mut kept = [0i64; MAX_COLS];
        kept[..n].copy_from_slice(&vals[..n]);
        self.entries.push(Entry {
            vals: kept,
            count: 1,
            relaxed: r,
            key,
        });
        self.index[bucket] = self.entries.len() as u32;
        r
    }
}

/// What one slot accumulates; only that slot touches it while `run_on` runs.
struct SlotState {
    hist: Hist,
    skew: Skew,
    /// Slot 0's stagger tuner ([`SyncMode::Lockstep`]).
    tuner: Stagger,
}

/// A batch: instances `0..k` of batch `g` in arena half `g mod 2`.
#[derive(Clone, Copy)]
struct Plan {
    lay: Layout,
    g: u64,
    k: usize,
    half: usize,
    /// The batch's first instance in the half: instance `i` of the batch is `first + i` there.
    first: usize,
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
    let half = arena.len / 2 / LINE * LINE;
    // Room for one instance of every layout kind, with its slack (`Layout::of`).
    if half < 2 * LINE * (nlocs + 1) + LINE * nlocs {
        return Err(format!("arena of {} bytes too small", arena.len));
    }
    // Before the run's clock starts: the first call in a process calibrates the counter
    // against the OS clock for 2 ms (`engine::clock::ticks_per_us`), once for every test after
    // it. That is the platform's setup, not the test's run; it used to be charged to whichever
    // test ran first (hosted R alone: 2.1 ms of a 25 ms run, so its rate read 8 % low;
    // issue 14, `docs/probes.md`).
    let Bounds {
        per_us,
        soft,
        hard,
        timeout_ms,
    } = Bounds::new(platform, opts);
    let t0 = platform.now_ns();
    // `RunOpts::adaptive`: trials of `Barrier` and of `BarrierClock`, alternating, before the
    // run proper, each a 32nd of the instances (when that is at least `TRIAL_MIN`).
    let trials = if opts.adaptive
        && opts.sync == SyncMode::Barrier
        && clock::available()
        && opts.iterations / TRIAL_SHARE >= TRIAL_MIN
    {
        TRIALS
    } else {
        0
    };
    let sync = opts.sync;
    // `Lockstep` grows its batches up to 2^MAX_SCALE times while meetings fail.
    let max_scale = if sync == SyncMode::Lockstep {
        MAX_SCALE
    } else {
        0
    };
    // `BarrierClock` (a fixed mode or a trial's) may run batches of `even_batch`.
    let clock_possible =
        sync == SyncMode::BarrierClock || (opts.adaptive && sync == SyncMode::Barrier);
    let most =
        (opts.batch.max(1) << max_scale).max(if clock_possible { opts.even_batch } else { 0 });
    // Location slots: 8 bytes (the widest access, naturally aligned), or 4 when no instruction
    // accesses more and no location is wider (the packed arrays then hold 16 instances a line,
    // as the hand-written tests' did: under QEMU TCG, WRC ran at 0.12 M it/s packed 8 bytes apart, 0.24 M 4
    // bytes apart; issue 14).
    let slot = if !t.wide && p.locs.iter().all(|l| l.size <= 4) {
        4
    } else {
        8
    };
    let max_k = (half.saturating_sub(LINE) / (slot * nlocs)).clamp(1, most);
    // Registers each role saves per instance.
    // (ascending: the order the generated bodies store them in, `FileTest::kept`).
    let saved: Vec<Vec<usize>> = (0..threads).map(|r| p.kept(r)).collect();
    let ncols = p.cols.len().min(MAX_COLS);
    let srcs: Vec<Src> = p
        .cols
        .iter()
        .take(ncols)
        .map(|c| match c {
            Col::Reg { thread, slot, .. } => Src::Reg {
                thread: *thread,
                j: saved[*thread].iter().position(|x| x == slot).unwrap_or(0),
                n: saved[*thread].len(),
            },
            Col::Loc { loc } => Src::Loc {
                loc: *loc,
                size: p.locs[*loc].size,
            },
        })
        .collect();
    // The outcome the tuner scores: the one the condition looks for (`exists`, `~exists`: its
    // proposition holds; `forall`: it does not), as the record's relaxed count.
    let forall = p.file.cond.quant == Quant::Forall;
    // Values are cast to their columns' types first, as the record does (`super::summarise`).
    let relaxed_of = |vals: &[i64]| {
        let v = p.cast(vals);
        p.satisfies(&v[..vals.len()]) != forall
    };
    // Result arrays by (batch parity, role).
    let results: Cells<Vec<u64>> = Cells(
        (0..2)
            .flat_map(|_| saved.iter())
            .map(|s| UnsafeCell::new(vec![0u64; s.len().max(1) * max_k]))
            .collect(),
    );
    let states: Cells<SlotState> = Cells(
        (0..threads)
            .map(|_| {
                UnsafeCell::new(SlotState {
                    hist: Hist::new(ncols),
                    skew: Skew::default(),
                    tuner: Stagger::new(),
                })
            })
            .collect(),
    );
    let hs = Handshake::new(if sync == SyncMode::Handshake {
        max_k
    } else {
        0
    });
    let lockstep = Lockstep::new(threads);
    let progress = Progress::new(if opts.skew { threads } else { 0 });
    let progress = opts.skew.then_some(&progress);
    // Tests whose locations all start at 0 (nearly every test) change layout from batch to
    // batch: the whole arena starts at zero and every instance is reset to
    // zero after its classification, so any layout of a half finds every location at its
    // initial value. (Under QEMU TCG the three kinds give SB very different relaxed shares:
    // measured 17 % a line per location, 5 % packed, 11 % side by side, with a stagger of 16;
    // rotating keeps every kind in every run, on hardware too.) Other tests keep a layout per
    // half for a whole `run_on` call.
    let rotate = p.locs.iter().all(|l| l.init == InitVal::Int(0));
    // Values that may be a location's address (`symbolic`) lie in the arena: anything else is
    // taken as it is, with two comparisons.
    let arena_vals = arena.base as u64..arena.base as u64 + arena.len as u64;
    // Outcomes of up to `PACK_COLS` columns are counted by one word while their values are
    // small ([`Hist::add_packed`]); the arena, holding every address a value may be, lies
    // above the values packed.
    let packable = ncols <= PACK_COLS && arena_vals.start >= PACK_LIMIT;
    if rotate {
        // SAFETY: the arena is `arena.len` writable bytes, used by nothing else while the
        // suite runs this test.
        unsafe { core::ptr::write_bytes(arena.base, 0, arena.len) };
    }
    let placements = opts.placements.max(1) + trials;
    let mut done = 0u64;
    let mut g0 = 0u64;
    // The mode the run proper uses (`RunOpts::adaptive` may change it), and what each mode's
    // trials counted.
    let mut chosen = (opts.sync, opts.every);
    let mut trial = [Trial::default(); 2];
    let mut used_lockstep = false;
    for pl in 0..placements {
        let left = opts.iterations - done;
        if left == 0 {
            break;
        }
        let (share, (mode, every)) = if pl < trials {
            let mode = [
                (SyncMode::Barrier, opts.every),
                (SyncMode::BarrierClock, opts.every),
            ][pl % 2];
            ((opts.iterations / TRIAL_SHARE).min(left), mode)
        } else {
            (left.div_ceil((placements - pl) as u64), chosen)
        };
        used_lockstep |= mode == SyncMode::Lockstep;
        let mut popts = *opts;
        popts.sync = mode;
        popts.every = every;
        let popts = &popts;
        let counted_before = if pl < trials {
            counted_so_far(&states)
        } else {
            BTreeMap::new()
        };
        let started = platform.now_ns();
        let cores = placement(cpus, threads, opts.rotate + pl);
        let slots = cores.len();
        // The layout of each half, fixed for this call (a slot classifies one half while the
        // others reset it: all must see the same positions), swapped between placements.
        // `RunOpts::layout` (benchmarks) fixes it: `LinePerVar` a line per location in both
        // halves, `Packed` and `SameLine` the packed layout in both.
        let packed = |h: usize| match opts.layout {
            None => (h + pl) % 2 == 1,
            Some(kind) => kind != LayoutKind::LinePerVar,
        };
        let lays: [Layout; 2] =
            core::array::from_fn(|h| Layout::new(arena, h, packed(h), nlocs, slot, most));
        let barrier = Barrier::new(slots);
        let batches_out = AtomicU64::new(0);
        let done_out = AtomicU64::new(0);
        let abandoned = AtomicBool::new(false);
        let plan_for = |g: u64, left: u64, scale: u64, long: bool| -> Option<Plan> {
            if left == 0 {
                return None;
            }
            let h = (g % 2) as usize;
            let batch = if long {
                opts.even_batch as u64
            } else {
                (opts.batch.max(1) as u64) << scale.min(u64::from(max_scale))
            };
            if rotate {
                // Layout kind `g mod 3`, shifted by `g / 3` slots, from the half's start.
                let kind = opts.layout.unwrap_or(LayoutKind::ALL[(g % 3) as usize]);
                let mut lay = Layout::of(arena, h, kind, (g / 3) as usize, nlocs, slot, most);
                let k = (lay.cap as u64).min(batch).min(left) as usize;
                if kind == LayoutKind::Packed {
                    // Arrays as long as this batch needs (plus the line the shift may use): an
                    // instance's locations then lie a few lines apart, not a whole capacity's
                    // arrays apart.
                    lay.per_loc = (k * slot).div_ceil(LINE) * LINE + LINE;
                }
                return Some(Plan {
                    lay,
                    g,
                    k,
                    half: h,
                    first: 0,
                });
            }
            let lay = lays[h];
            let k = (lay.cap as u64).min(batch).min(left) as usize;
            // The batch's window of the half moves on from one use of the half to the next.
            let first = ((g / 2) as usize).wrapping_mul(k) % (lay.cap - k + 1);
            Some(Plan {
                lay,
                g,
                k,
                half: h,
                first,
            })
        };
        // Write instance `i`'s locations in `lay` with their initial values.
        let reset = |lay: &Layout, i: usize| {
            for (v, l) in p.locs.iter().enumerate() {
                let val = match l.init {
                    InitVal::Int(x) => x as u64,
                    InitVal::Addr(a) => lay.at(i, a) as u64,
                };
                let at = lay.at(i, v);
                // SAFETY: the location's slot (`slot` bytes, aligned to them) lies inside the
                // arena half (`cap` instances fit); only this slot touches instance `i` between
                // two barriers (module documentation).
                unsafe {
                    if slot == 4 {
                        core::ptr::write_volatile(at as *mut u32, val as u32)
                    } else {
                        core::ptr::write_volatile(at as *mut u64, val)
                    }
                };
            }
        };
        // A register or location value as the outcome shows it: one of instance `i`'s location
        // addresses becomes that location ([`ADDR`] + index).
        let symbolic = |raw: u64, lay: &Layout, i: usize| -> i64 {
            let lo = lay.at(i, 0) as u64;
            if raw < lo || raw > lay.at(i, nlocs - 1) as u64 {
                return raw as i64;
            }
            for v in 0..p.locs.len() {
                if raw == lay.at(i, v) as u64 {
                    return ADDR + v as i64;
                }
            }
            raw as i64
        };
        let (results, states, barrier, hs, lockstep) =
            (&results, &states, &barrier, &hs, &lockstep);
        let (batches_out, done_out, abandoned) = (&batches_out, &done_out, &abandoned);
        let body = |slot: usize| {
            if !rotate {
                for lay in &lays {
                    for i in slot * lay.cap / slots..(slot + 1) * lay.cap / slots {
                        reset(lay, i);
                    }
                }
            }
            // SAFETY: only this slot touches its state until `run_on` returns.
            let st = unsafe { &mut *states.0[slot].get() };
            let mut pace = Pace::new(per_us);
            let mut prev: Option<Plan> = None;
            let (mut b, mut local, mut epoch) = (0u64, 0u64, 0u64);
            let mut agree = Agreement::new(slot, popts, &mut st.tuner, max_scale);
            let timed = matches!(mode, SyncMode::BarrierStart | SyncMode::BarrierClock);
            loop {
                epoch += 1;
                // The untimed modes read the counter only for the time budget.
                let now = if !timed && soft == 0 {
                    0
                } else {
                    clock::ticks()
                };
                let vote = soft != 0 && now > soft;
                let msg = agree.propose(now, &pace, vote);
                let Some(agreed) = barrier.arrive(slot, epoch, msg, hard) else {
                    abandoned.store(true, Ordering::Relaxed);
                    return;
                };
                let plan = if Agreement::stop(&agreed) {
                    None
                } else {
                    plan_for(
                        g0 + b,
                        share - local,
                        agree.scale(&agreed),
                        agree.long(&agreed),
                    )
                };
                if let Some(plan) = plan {
                    let role = (slot + plan.g as usize) % threads;
                    let lay = plan.lay;
                    let body = t.bodies[role];
                    let keep = &saved[role];
                    // SAFETY: this slot alone plays `role` in this batch, and nobody reads this
                    // parity's arrays until the next barrier (see `Cells`).
                    let out = unsafe { &mut *results.0[plan.half * threads + role].get() };
                    // The operand slots of the batch's first instance; the body adds instance
                    // `i`'s offset to the address slots itself (`Frame`), and stores its kept
                    // registers straight into this role's result array.
                    let mut frame = Frame {
                        init: [0u64; MAX_IO],
                        off: 0,
                    };
                    for (s, v) in p.io_init[role].iter().take(MAX_IO).enumerate() {
                        frame.init[s] = match *v {
                            InitVal::Int(x) => x as u64,
                            InitVal::Addr(a) => lay.at(plan.first, a) as u64,
                        };
                    }
                    let per = lay.per_instance as u64;
                    let nk = keep.len();
                    let out = out.as_mut_ptr();
                    let run_one = |i: usize| {
                        frame.off = i as u64 * per;
                        // SAFETY: the address slots plus `off` are instance `i`'s locations,
                        // inside the arena half (`k` ≤ the layout's capacity); the body accesses
                        // only them (generated from the test) and writes `nk` values at `out`,
                        // inside this role's array of `nk · max_k` (`i` < `k` ≤ `max_k`).
                        unsafe { body(&frame, out.add(i * nk)) };
                    };
                    let step = Step {
                        mode,
                        agreed: &agreed,
                        hs,
                        lockstep,
                        every: every.max(1),
                        long: agree.long(&agreed),
                        progress: progress.map(|p| (p, &mut st.skew)),
                    };
                    let gave_up = in_step(
                        role,
                        threads,
                        plan.g,
                        plan.k,
                        (plan.g + 1) as u32,
                        step,
                        &mut pace,
                        run_one,
                    );
                    agree.ran(&agreed, gave_up);
                    if let Some(p) = progress {
                        p.done(role, plan.g, plan.k);
                    }
                    local += plan.k as u64;
                }
                // Classify this slot's share of the previous batch, and reset it.
                if let Some(pp) = prev.take() {
                    let lay = pp.lay;
                    // Each column's source in this batch, looked up once: under QEMU TCG
                    // every instruction of this loop costs about as much as one of the
                    // instance's own (classifying took 45 % of SB's time on virt).
                    let mut at = [ColAt {
                        at: 0,
                        stride: 0,
                        size: 8,
                    }; MAX_COLS];
                    for (c, src) in srcs.iter().enumerate() {
                        at[c] = match *src {
                            Src::Reg { thread, j, n } => {
                                // SAFETY: batch `pp`'s results, written before the barrier
                                // this slot passed; written again only after the next one.
                                let r = unsafe { &*results.0[pp.half * threads + thread].get() };
                                ColAt {
                                    at: r[j..].as_ptr() as usize,
                                    stride: n * 8,
                                    size: 8,
                                }
                            }
                            Src::Loc { loc, size } => ColAt {
                                at: lay.at(pp.first, loc),
                                stride: lay.per_instance,
                                size,
                            },
                        };
                    }
                    let mut vals = [0i64; MAX_COLS];
                    let (lo, hi) = (slot * pp.k / slots, (slot + 1) * pp.k / slots);
                    if opts.prefetch {
                        prefetch_share(&lay, pp.first, lo, hi, nlocs, &at[..ncols]);
                    }
                    let mut relaxed = 0u64;
                    for i in lo..hi {
                        // The outcome packed into one word while every value is below
                        // `PACK_LIMIT` (then none is an address); else value by value.
                        let mut key = 0u64;
                        let mut small = packable;
                        for (c, col) in at.iter().enumerate().take(ncols) {
                            // SAFETY: instance `i` (< `k`) of batch `pp`: a value `j` of its
                            // role's array of `n · max_k` (`j` < `n`), or a slot of the arena
                            // half of `pp`; the barrier ordered every write of `pp` before.
                            let raw = unsafe { col.read(i) };
                            small &= raw < PACK_LIMIT;
                            key |= raw.wrapping_shl(PACK_BITS * c as u32);
                        }
                        let r = if small {
                            st.hist.add_packed(key, &relaxed_of)
                        } else {
                            for (c, val) in vals.iter_mut().enumerate().take(ncols) {
                                // SAFETY: as above.
                                let raw = unsafe { at[c].read(i) };
                                *val = if arena_vals.contains(&raw) {
                                    symbolic(raw, &lay, pp.first + i)
                                } else {
                                    raw as i64
                                };
                            }
                            st.hist.add(&vals, &relaxed_of)
                        };
                        relaxed += u64::from(r);
                        reset(&lay, pp.first + i);
                    }
                    let n = (hi - lo) as u64;
                    agree.scored(relaxed, n);
                }
                match plan {
                    Some(pl) => {
                        prev = Some(pl);
                        agree.next();
                        b += 1;
                    }
                    None => break,
                }
            }
            if slot == 0 {
                batches_out.store(b, Ordering::Relaxed);
                done_out.store(local, Ordering::Relaxed);
            }
        };
        platform
            .run_on(&cores, timeout_ms, &body)
            .map_err(|e| format!("cores failed: {e:?}"))?;
        if abandoned.load(Ordering::Relaxed) {
            return Err(format!(
                "a core did not reach a batch barrier within {GIVE_UP_MS} ms of the time budget"
            ));
        }
        let ran = done_out.load(Ordering::Relaxed);
        g0 += batches_out.load(Ordering::Relaxed);
        done += ran;
        if pl < trials {
            let ns = platform.now_ns().saturating_sub(started);
            trial[pl % 2].add(&counted_before, &counted_so_far(states), ns);
            // Two trials of each, alternating, so one disturbed by the host (a role
            // descheduled) does not decide alone.
            if pl == trials - 1 && clock_wins(trial[0], trial[1]) {
                chosen = (SyncMode::BarrierClock, opts.every);
            }
        }
        if ran < share {
            break; // time budget spent
        }
    }
    let hist: BTreeMap<[i64; MAX_COLS], u64> = counted_so_far(&states)
        .into_iter()
        .map(|(vals, (count, _))| (vals, count))
        .collect();
    let mut skew = Skew::default();
    let mut stagger = None;
    for (slot, cell) in states.0.into_iter().enumerate() {
        let st = cell.into_inner();
        if slot == 0 && used_lockstep && opts.stagger.is_none() {
            stagger = Some(engine::learn(&st.tuner));
        }
        skew.merge(&st.skew);
    }
    Ok(FileOutcome {
        iterations: done,
        elapsed_ns: platform.now_ns().saturating_sub(t0),
        hist,
        skew: opts.skew.then_some(skew),
        stagger,
        trials: (trials > 0).then_some((trial, chosen.0)),
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every outcome is counted once per `add`, and its relaxed flag kept, however many share a
    /// hash bucket: 300 outcomes over 64 buckets, seen in an interleaved order, three times.
    #[test]
    fn hist_counts_every_outcome_through_bucket_collisions() {
        let mut hist = Hist::new(3);
        let relaxed = |v: &[i64]| v[0] % 7 == 0;
        let mut expect: BTreeMap<[i64; MAX_COLS], (u64, bool)> = BTreeMap::new();
        for round in 0..3u64 {
            for x in 0..300i64 {
                let x = (x * 37 + round as i64) % 300;
                let mut vals = [0i64; MAX_COLS];
                vals[..3].copy_from_slice(&[x, -x, x / 3]);
                // A value beyond the counted columns must not split an outcome.
                vals[3] = round as i64;
                let r = hist.add(&vals, &relaxed);
                assert_eq!(r, x % 7 == 0, "relaxed flag of {x}");
                vals[3] = 0;
                let e = expect.entry(vals).or_insert((0, r));
                e.0 += 1;
            }
        }
        assert_eq!(hist.entries.len(), 300);
        for e in &hist.entries {
            let key = {
                let mut k = [0i64; MAX_COLS];
                k[..3].copy_from_slice(&e.vals[..3]);
                k
            };
            assert_eq!(
                expect[&key],
                (e.count, e.relaxed),
                "outcome {:?}",
                &e.vals[..3]
            );
        }
    }

    /// A trial's tally: only the instances counted during it, relaxed ones by their flag, and
    /// the off-mode count against that trial's own most common outcome.
    #[test]
    fn trial_counts_only_its_own_instances() {
        let o = |a: i64, b: i64| {
            let mut v = [0i64; MAX_COLS];
            v[0] = a;
            v[1] = b;
            v
        };
        let before = BTreeMap::from([(o(0, 1), (100, false)), (o(1, 1), (5, true))]);
        let after = BTreeMap::from([
            (o(0, 1), (130, false)),
            (o(1, 1), (9, true)),
            (o(1, 0), (50, false)),
        ]);
        let mut t = Trial::default();
        t.add(&before, &after, 0);
        // 30 + 4 + 50 instances, the most common (1,0) with 50.
        assert_eq!(
            t,
            Trial {
                relaxed: 4,
                off_mode: 34,
                ns: 1
            }
        );
        t.add(&after, &after, 7);
        assert_eq!((t.relaxed, t.off_mode, t.ns), (4, 34, 8));
    }

    /// Relaxed outcomes a nanosecond decide; only when neither mode counted one do the
    /// instances off the most common outcome; a tie keeps `Barrier`.
    #[test]
    fn trials_prefer_relaxed_then_interleaving() {
        let t = |relaxed, off_mode, ns| Trial {
            relaxed,
            off_mode,
            ns,
        };
        // More relaxed a nanosecond under the slots, though fewer off the mode.
        assert!(clock_wins(t(10, 900, 1000), t(30, 100, 2000)));
        assert!(!clock_wins(t(30, 100, 1000), t(10, 900, 1000)));
        // Relaxed in one mode only: that one.
        assert!(!clock_wins(t(1, 0, 1000), t(0, 900, 1000)));
        // None relaxed (a forbidden outcome): interleavings a nanosecond, R+po+mfence's
        // measured shape (3 % at 15 M it/s against 46 % at 11 M it/s).
        assert!(clock_wins(t(0, 30, 1000), t(0, 460, 1360)));
        assert!(!clock_wins(t(0, 460, 1000), t(0, 460, 2000)));
        // A tie keeps `Barrier`.
        assert!(!clock_wins(t(0, 0, 1000), t(0, 0, 1000)));
        assert!(!clock_wins(t(5, 0, 1000), t(5, 0, 1000)));
    }

    /// Packing: small values of up to `PACK_COLS` columns pack, and unpack to themselves; a
    /// negative value, one of `PACK_LIMIT` or more, or too many columns do not.
    #[test]
    fn outcomes_pack_only_when_every_value_fits() {
        assert_eq!(pack(&[0, 0]), 0);
        assert_eq!(pack(&[1, 2, 255]), 1 | 2 << 8 | 255 << 16);
        assert_eq!(pack(&[1, 256]), NO_KEY);
        assert_eq!(pack(&[-1, 0]), NO_KEY);
        assert_eq!(pack(&[ADDR, 0]), NO_KEY);
        assert_eq!(pack(&[1; PACK_COLS]), 0x01_0101_0101_0101);
        assert_eq!(pack(&[1; PACK_COLS + 1]), NO_KEY);
    }

    /// An outcome counted by its packed word (`add_packed`, the classification's fast path)
    /// and by its values (`add`) is one entry, with one count; outcomes that do not pack are
    /// counted beside them, and the relaxed flag is decided once per outcome.
    #[test]
    fn packed_and_unpacked_counts_meet_in_one_entry() {
        let mut hist = Hist::new(2);
        let decided = core::cell::Cell::new(0);
        let relaxed = |v: &[i64]| {
            decided.set(decided.get() + 1);
            v == [0, 0]
        };
        let mut expect: BTreeMap<(i64, i64), u64> = BTreeMap::new();
        let values = [0i64, 1, 2, 255, 256, -1, ADDR + 1];
        for round in 0..4 {
            for (a_i, &a) in values.iter().enumerate() {
                for &b in &values[(a_i + round) % 3..] {
                    let mut vals = [0i64; MAX_COLS];
                    vals[..2].copy_from_slice(&[a, b]);
                    let key = pack(&vals[..2]);
                    let r = if key != NO_KEY && (a + b + round as i64) % 2 == 0 {
                        hist.add_packed(key, &relaxed)
                    } else {
                        hist.add(&vals, &relaxed)
                    };
                    assert_eq!(r, a == 0 && b == 0, "relaxed flag of ({a}, {b})");
                    *expect.entry((a, b)).or_insert(0) += 1;
                }
            }
        }
        assert_eq!(hist.entries.len(), expect.len());
        assert_eq!(
            decided.get(),
            expect.len(),
            "relaxed decided once per outcome"
        );
        for e in &hist.entries {
            assert_eq!(e.key, pack(&e.vals[..2]));
            assert_eq!(
                expect[&(e.vals[0], e.vals[1])],
                e.count,
                "{:?}",
                &e.vals[..2]
            );
        }
    }
}
