//! The litmus runner, designed for rate (issue 4 item 4).
//!
//! A run is a sequence of *chunks*, one `Platform::run_on` call each. A chunk holds up to
//! `max_chunk` instances, each with its own locations in the arena (see [`Layout`]), and its
//! threads walk through them in *batches* of `batch` instances: a spin barrier (one shared
//! counter) starts each batch, so the roles enter instance `k` of a batch at about the same time,
//! and nothing synchronises the instances inside a batch (no per-iteration barrier). Between
//! chunks the runner varies
//! - the variable placement: [`Layout`] cycles through packed arrays (neighbouring instances
//!   share lines, variables in separate arrays), all of an instance's variables in one line, and
//!   one line per variable, each at varying offsets inside the line;
//! - the thread-to-core placement: role `r` runs on `cpus[(r + chunk) % cpus.len()]`.
//!
//! Values and the soundness of what is counted are explained in [`super`].

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::{classify, value, HarnessError, Locs, Obs, Test, GEN_STEP, MAX_REGS, MAX_VARS};
use crate::platform::{Arena, Platform};
use crate::record::{HistogramEntry, Litmus, ModelVerdict, Verdict};

/// Cache line size assumed by the layouts (the probes' `RuleEnv::line`; 64 on every target here).
const LINE: usize = 64;

/// Where instance `k`'s variable `v` lives: `base + off[v] + k * stride`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub kind: LayoutKind,
    pub off: [usize; MAX_VARS],
    pub stride: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutKind {
    /// One array per variable; neighbouring instances share cache lines (litmus7's default).
    Packed,
    /// All of an instance's variables in one cache line.
    SameLine,
    /// Every variable of every instance in a cache line of its own.
    LinePerVar,
}

impl LayoutKind {
    pub const ALL: [LayoutKind; 3] = [
        LayoutKind::LinePerVar,
        LayoutKind::Packed,
        LayoutKind::SameLine,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LayoutKind::Packed => "packed",
            LayoutKind::SameLine => "same-line",
            LayoutKind::LinePerVar => "line-per-var",
        }
    }

    /// Bytes one instance of `nvars` variables needs (arrays rounded to lines for `Packed`).
    fn bytes_per_instance(self, nvars: usize) -> usize {
        match self {
            LayoutKind::Packed => 4 * nvars,
            LayoutKind::SameLine => LINE,
            LayoutKind::LinePerVar => LINE * nvars,
        }
    }
}

impl Layout {
    /// The layout of `kind` for `k` instances of `nvars` variables; `variant` picks the offset
    /// inside the line (any value; it is reduced to the choices the kind has).
    pub fn new(kind: LayoutKind, nvars: usize, k: usize, variant: usize) -> Layout {
        let mut off = [0usize; MAX_VARS];
        match kind {
            LayoutKind::Packed => {
                // Arrays start at a line plus 0, 4, …, 60 bytes; each array rounded up to lines
                // plus one spare line, so the offset never makes two arrays overlap.
                let o = 4 * (variant % (LINE / 4));
                let array = (4 * k).div_ceil(LINE) * LINE + LINE;
                for (v, slot) in off.iter_mut().enumerate().take(nvars) {
                    *slot = v * array + o;
                }
                Layout {
                    kind,
                    off,
                    stride: 4,
                }
            }
            LayoutKind::SameLine => {
                // Variables 4 bytes apart, the group at 0, 4, … within the line.
                let slots = LINE / 4 - nvars + 1;
                let o = 4 * (variant % slots);
                for (v, slot) in off.iter_mut().enumerate().take(nvars) {
                    *slot = o + 4 * v;
                }
                Layout {
                    kind,
                    off,
                    stride: LINE,
                }
            }
            LayoutKind::LinePerVar => {
                let o = 4 * (variant % (LINE / 4));
                for (v, slot) in off.iter_mut().enumerate().take(nvars) {
                    *slot = v * LINE + o;
                }
                Layout {
                    kind,
                    off,
                    stride: LINE * nvars,
                }
            }
        }
    }

    /// Bytes from the base the layout touches for `k` instances of `nvars` variables.
    pub fn span(&self, nvars: usize, k: usize) -> usize {
        (0..nvars)
            .map(|v| self.off[v] + (k - 1) * self.stride + 4)
            .max()
            .unwrap_or(0)
    }

    /// Byte offset of instance `i`'s variable `v`.
    #[inline(always)]
    pub fn at(&self, v: usize, i: usize) -> usize {
        self.off[v] + i * self.stride
    }
}

/// Largest instance count of `kind` that fits `len` bytes (at least one line of slack).
pub fn capacity(kind: LayoutKind, nvars: usize, len: usize) -> usize {
    let per = kind.bytes_per_instance(nvars);
    // Packed arrays are rounded up and offset: keep `nvars + 1` lines spare.
    len.saturating_sub((nvars + 1) * 2 * LINE) / per
}

/// How the threads of a chunk keep in step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// Time slots: every thread starts instance `i` at `t0 + offset(role) + i·Δ` read from the
    /// core's synchronised counter (x86 TSC, aarch64 CNTVCT_EL0), or at once when it is late.
    /// No shared-memory synchronisation inside a chunk at all, so a thread that is descheduled
    /// never stalls the others; Δ adapts between chunks to the cost of one instance. The
    /// default where such a counter exists.
    Clock,
    /// A spin barrier every `batch` instances (litmus7's `-barrier user` with batches).
    Barrier,
    /// The default where a counter exists: a spin barrier every `batch` instances whose last
    /// arriver publishes a start time a little ahead; inside the batch every role starts
    /// instance `j` at `start + offset(role) + j·Δ`. The barrier realigns the roles every batch,
    /// the slots keep them aligned inside it (and cancel the delay with which spinning roles
    /// see the barrier open); the offsets vary from batch to batch.
    BarrierClock,
}

/// Tunables of a run.
#[derive(Clone, Copy, Debug)]
pub struct RunOpts {
    /// Instances in total (the last chunk may be shorter).
    pub iterations: u64,
    pub sync: SyncMode,
    /// `SyncMode::Barrier`: instances between two batch barriers.
    pub batch: usize,
    /// Most instances per `run_on` call.
    pub max_chunk: usize,
    /// Time bound of one `run_on` call.
    pub timeout_ms: u64,
}

impl RunOpts {
    pub fn new(iterations: u64) -> RunOpts {
        RunOpts {
            iterations,
            sync: if clock::available() {
                SyncMode::BarrierClock
            } else {
                SyncMode::Barrier
            },
            batch: 256,
            max_chunk: 16_384,
            timeout_ms: 20_000,
        }
    }
}

/// A counting sense barrier for `n` roles: one shared counter and one phase word, each in its
/// own line.
#[repr(C, align(128))]
struct Barrier {
    count: AtomicU32,
    _pad: [u8; 124],
    phase: AtomicU32,
    _pad2: [u8; 4],
    /// `BarrierClock`: counter value at which the batch starts, set by the last arriver.
    release_at: AtomicU64,
    _pad3: [u8; 112],
}

impl Barrier {
    fn new() -> Barrier {
        Barrier {
            count: AtomicU32::new(0),
            _pad: [0; 124],
            phase: AtomicU32::new(0),
            _pad2: [0; 4],
            release_at: AtomicU64::new(0),
            _pad3: [0; 112],
        }
    }

    /// Wait for all `n` roles; `phase` is the caller's copy of the phase (start at 0).
    #[inline(always)]
    fn wait(&self, n: u32, phase: &mut u32) {
        self.wait_then(n, phase, || 0);
    }

    /// As `wait`; the last arriver computes a start time with `at` and every role gets it.
    #[inline(always)]
    fn wait_then(&self, n: u32, phase: &mut u32, at: impl FnOnce() -> u64) -> u64 {
        let p = *phase;
        if self.count.fetch_add(1, Ordering::AcqRel) + 1 == n {
            self.count.store(0, Ordering::Relaxed);
            self.release_at.store(at(), Ordering::Relaxed);
            self.phase.store(p.wrapping_add(1), Ordering::Release);
        } else {
            while self.phase.load(Ordering::Acquire) == p {
                core::hint::spin_loop();
            }
        }
        *phase = p.wrapping_add(1);
        self.release_at.load(Ordering::Relaxed)
    }
}

/// The time-slot parameters of `SyncMode::Clock`, adapted between chunks.
struct Slots {
    /// Ticks between two instances.
    delta: u64,
    /// Ticks from dispatch to the first slot.
    lead: u64,
    /// Ticks from a batch barrier's release to the batch's first slot.
    batch_lead: u64,
    min: u64,
    max: u64,
}

impl Slots {
    fn new(platform: &dyn Platform) -> Slots {
        let per_us = clock::ticks_per_us(platform).max(1);
        // Start at 50 ns per instance; never below one tick or above 20 µs.
        let delta = (per_us / 20).max(1);
        Slots {
            delta,
            lead: per_us * 100,
            batch_lead: per_us / 2,
            min: 1,
            max: per_us * 20,
        }
    }

    /// Move Δ halfway towards 9/8 of what one instance cost the slowest role in the last
    /// chunk (time inside the bodies only, so waiting for a descheduled thread does not count):
    /// slots just wider than an instance keep the roles in step without idling much.
    fn adapt(&mut self, cost: u64) {
        let target = (cost + cost / 8 + 1).clamp(self.min, self.max);
        self.delta = (self.delta + target).div_ceil(2);
    }
}

/// The counter of `SyncMode::Clock`: x86-64 TSC, aarch64 CNTVCT_EL0 (both synchronised across
/// cores: invariant TSC on current x86 parts, the generic timer by architecture).
pub mod clock {
    use core::sync::atomic::{AtomicU64, Ordering};

    use crate::platform::Platform;

    pub fn available() -> bool {
        cfg!(any(target_arch = "x86_64", target_arch = "aarch64"))
    }

    #[inline(always)]
    pub fn ticks() -> u64 {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: RDTSC only reads the time-stamp counter (user space may: CR4.TSD clear).
            unsafe { core::arch::x86_64::_rdtsc() }
        }
        #[cfg(target_arch = "aarch64")]
        {
            let t: u64;
            // SAFETY: reads the virtual counter, readable at EL0 under Linux and at EL1.
            unsafe {
                core::arch::asm!("mrs {t}, cntvct_el0", t = out(reg) t, options(nomem, nostack))
            };
            t
        }
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        {
            0
        }
    }

    static PER_US: AtomicU64 = AtomicU64::new(0);

    /// Counter ticks per microsecond, measured once against `now_ns` over 2 ms.
    pub fn ticks_per_us(platform: &dyn Platform) -> u64 {
        let cached = PER_US.load(Ordering::Relaxed);
        if cached != 0 {
            return cached;
        }
        let (n0, t0) = (platform.now_ns(), ticks());
        let mut n1 = n0;
        while n1.saturating_sub(n0) < 2_000_000 {
            core::hint::spin_loop();
            n1 = platform.now_ns();
        }
        let t1 = ticks();
        let per_us = (t1.saturating_sub(t0) * 1000 / (n1 - n0).max(1)).max(1);
        PER_US.store(per_us, Ordering::Relaxed);
        per_us
    }
}

/// Per-role result arrays, written by exactly one role each inside `run_on`.
struct Results(Vec<UnsafeCell<Vec<u32>>>);
// SAFETY: role `r` writes only `0[r]` while the caller waits in `run_on`; the caller reads after
// `run_on` returned (the engine's completion handshake orders the writes before the reads).
unsafe impl Sync for Results {}

/// Counts per outcome, indexed by the packed outcome (2 bits per column).
pub struct Histogram {
    cols: usize,
    counts: Vec<u64>,
}

impl Histogram {
    pub fn new(cols: usize) -> Histogram {
        Histogram {
            cols,
            counts: vec![0; 1 << (2 * cols.min(8))],
        }
    }

    pub fn add(&mut self, values: &[u32]) {
        let mut key = 0usize;
        for (i, &v) in values.iter().enumerate() {
            key |= (v as usize & 3) << (2 * i);
        }
        self.counts[key] += 1;
    }

    /// (values, count) of every outcome seen, in increasing order of the values (column 0
    /// most significant), as litmus7 lists them.
    pub fn entries(&self) -> Vec<(Vec<u32>, u64)> {
        let mut out: Vec<(Vec<u32>, u64)> = self
            .counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(key, &c)| {
                let vals = (0..self.cols).map(|i| ((key >> (2 * i)) & 3) as u32);
                (vals.collect(), c)
            })
            .collect();
        out.sort();
        out
    }

    /// Instances whose outcome satisfies `test`'s `exists` clause.
    pub fn observed(&self, test: &Test) -> u64 {
        self.entries()
            .iter()
            .filter(|(v, _)| test.satisfies(v))
            .map(|(_, c)| c)
            .sum()
    }
}

/// Classify `k` instances of one chunk of generation `gen` into `hist`: `regs[t]` holds thread
/// `t`'s registers (`test.regs[t]` per instance, in order), `finals(var, i)` reads instance
/// `i`'s final value of `var`. Fails on any value no correct harness can produce.
pub fn tally(
    test: &Test,
    gen: u32,
    k: usize,
    regs: &[&[u32]],
    finals: &dyn Fn(usize, usize) -> u32,
    hist: &mut Histogram,
) -> Result<(), HarnessError> {
    let mut values = [0u32; 8];
    let values = &mut values[..test.obs.len()];
    for i in 0..k {
        for (c, obs) in test.obs.iter().enumerate() {
            let (raw, var) = match *obs {
                Obs::Reg {
                    thread, slot, var, ..
                } => (regs[thread][i * test.regs[thread] + slot], var),
                Obs::Loc { var } => (finals(var, i), var),
            };
            values[c] = classify(raw, gen, var)
                .map_err(|e| HarnessError(format!("{}: instance {i}: {}", test.name, e.0)))?;
        }
        hist.add(values);
    }
    Ok(())
}

/// What a run measured, before it becomes a record.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub iterations: u64,
    /// (outcome values per column, count), sorted.
    pub histogram: Vec<(Vec<u32>, u64)>,
    pub observed: u64,
    pub elapsed_ns: u64,
}

impl Outcome {
    pub fn iter_per_s(&self) -> u64 {
        per_s(self.iterations, self.elapsed_ns)
    }

    pub fn relaxed_per_s(&self) -> u64 {
        per_s(self.observed, self.elapsed_ns)
    }
}

fn per_s(n: u64, ns: u64) -> u64 {
    ((n as u128 * 1_000_000_000) / u128::from(ns.max(1))) as u64
}

/// Why a run did not produce an outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunFailure {
    /// A value no correct harness can produce (see [`classify`]).
    Harness(HarnessError),
    /// The platform could not run the threads.
    Platform(String),
    /// Too few CPUs, arena too small, …
    Setup(String),
}

/// Run `test` on `arena` with roles placed over `cpus` (at least one CPU per thread).
pub fn run(
    platform: &dyn Platform,
    test: &Test,
    arena: &Arena,
    cpus: &[usize],
    opts: &RunOpts,
) -> Result<Outcome, RunFailure> {
    let threads = test.thread_count();
    if cpus.len() < threads {
        return Err(RunFailure::Setup(format!(
            "{} needs {threads} cores, {} available",
            test.name,
            cpus.len()
        )));
    }
    let nvars = test.vars.len();
    let t0 = platform.now_ns();
    let max_k = LayoutKind::ALL
        .iter()
        .map(|&kind| capacity(kind, nvars, arena.len))
        .min()
        .unwrap_or(0)
        .min(opts.max_chunk);
    if max_k == 0 {
        return Err(RunFailure::Setup(format!(
            "arena of {} bytes too small for {} variables",
            arena.len, nvars
        )));
    }
    // Clear the arena, so that values of earlier runs are below this run's first generation.
    // SAFETY: the arena is `arena.len` writable bytes; nothing else uses it while the suite is
    // here (probes run one at a time).
    unsafe { core::ptr::write_bytes(arena.base, 0, arena.len) };

    let results = Results(
        test.regs
            .iter()
            .map(|&n| UnsafeCell::new(vec![0u32; n * max_k]))
            .collect(),
    );
    let mut hist = Histogram::new(test.obs.len());
    let mut done: u64 = 0;
    let mut chunk: usize = 0;
    let mut gen: u32 = 0;
    let barrier = Barrier::new();
    let busy: [AtomicU64; 4] = Default::default();
    let mut slot = Slots::new(platform);
    let base = arena.base as usize;
    while done < opts.iterations {
        let k = (opts.iterations - done).min(max_k as u64) as usize;
        gen = gen.checked_add(GEN_STEP).ok_or_else(|| {
            RunFailure::Setup("generation counter exhausted: use fewer iterations".into())
        })?;
        let kind = LayoutKind::ALL[chunk % LayoutKind::ALL.len()];
        let layout = Layout::new(kind, nvars, k, chunk / LayoutKind::ALL.len());
        if layout.span(nvars, k) > arena.len {
            return Err(RunFailure::Setup(format!(
                "layout {} of {k} instances exceeds the arena",
                kind.name()
            )));
        }
        let mut w = [[0u32; 3]; MAX_VARS];
        for (v, row) in w.iter_mut().enumerate() {
            *row = [0, value(gen, v, 1), value(gen, v, 2)];
        }
        let placement: Vec<usize> = (0..threads)
            .map(|r| cpus[(r + chunk) % cpus.len()])
            .collect();
        let batch = opts.batch.max(1);
        let sync = opts.sync;
        // Time slots: start a little after dispatch (workers take a while to wake), with the
        // roles' relative offsets varied across chunks in steps of Δ/8 (−2..2 steps).
        let delta = slot.delta;
        let step = (delta / 8).max(1) as i64;
        let lead = slot.batch_lead;
        let mut offsets = [0i64; 4];
        for (r, off) in offsets.iter_mut().enumerate().take(threads).skip(1) {
            *off = ((chunk + r) % 5) as i64 * step - 2 * step;
        }
        let slot0 = if sync == SyncMode::Clock {
            clock::ticks() + slot.lead
        } else {
            0
        };
        for b in &busy {
            b.store(0, Ordering::Relaxed);
        }
        let busy_ref = &busy;
        let results_ref = &results;
        let barrier_ref = &barrier;
        let body = move |role: usize| {
            let f = test.threads[role];
            let nregs = test.regs[role];
            // SAFETY: only this role touches its result array (see `Results`).
            let out_vec = unsafe { &mut *results_ref.0[role].get() };
            let mut o = [0u32; MAX_REGS];
            let mut l = Locs {
                p: [core::ptr::null_mut(); MAX_VARS],
                w,
            };
            let mut run_one = |i: usize| {
                for v in 0..nvars {
                    l.p[v] = (base + layout.at(v, i)) as *mut u32;
                }
                // SAFETY: every address is inside the arena (span checked above), 4-byte
                // aligned (layout offsets and strides are multiples of 4, the arena is page
                // aligned), and shared only by the threads of instance `i`.
                unsafe { f(&l, &mut o) };
                out_vec[i * nregs..i * nregs + nregs].copy_from_slice(&o[..nregs]);
            };
            match sync {
                SyncMode::Clock => {
                    let start = slot0.wrapping_add_signed(offsets[role]);
                    let mut busy = 0u64;
                    for i in 0..k {
                        let due = start.wrapping_add(i as u64 * delta);
                        let mut now = clock::ticks();
                        while now < due {
                            core::hint::spin_loop();
                            now = clock::ticks();
                        }
                        run_one(i);
                        busy += clock::ticks().wrapping_sub(now);
                    }
                    busy_ref[role].store(busy, Ordering::Relaxed);
                }
                SyncMode::BarrierClock => {
                    let mut phase = 0u32;
                    let mut busy = 0u64;
                    let mut i = 0;
                    let mut b = 0usize;
                    while i < k {
                        let t0 = barrier_ref.wait_then(threads as u32, &mut phase, || {
                            clock::ticks().wrapping_add(lead)
                        });
                        let off = if role == 0 {
                            0
                        } else {
                            ((b + role) % 5) as i64 * step - 2 * step
                        };
                        let start = t0.wrapping_add_signed(off);
                        let end = (i + batch).min(k);
                        let mut j = 0u64;
                        while i < end {
                            let due = start.wrapping_add(j * delta);
                            let mut now = clock::ticks();
                            while now < due {
                                core::hint::spin_loop();
                                now = clock::ticks();
                            }
                            run_one(i);
                            busy += clock::ticks().wrapping_sub(now);
                            i += 1;
                            j += 1;
                        }
                        b += 1;
                    }
                    busy_ref[role].store(busy, Ordering::Relaxed);
                }
                SyncMode::Barrier => {
                    let mut phase = 0u32;
                    let mut i = 0;
                    while i < k {
                        barrier_ref.wait(threads as u32, &mut phase);
                        let end = (i + batch).min(k);
                        while i < end {
                            run_one(i);
                            i += 1;
                        }
                    }
                }
            }
        };
        // The barrier's phase restarts at 0 in every role: reset the shared words too.
        barrier.count.store(0, Ordering::Relaxed);
        barrier.phase.store(0, Ordering::Relaxed);
        platform
            .run_on(&placement, opts.timeout_ms, &body)
            .map_err(|e| RunFailure::Platform(format!("{e:?}")))?;
        if matches!(sync, SyncMode::Clock | SyncMode::BarrierClock) {
            let slowest = busy
                .iter()
                .take(threads)
                .map(|b| b.load(Ordering::Relaxed))
                .max()
                .unwrap_or(0);
            slot.adapt(slowest / k as u64);
        }
        // Classify the chunk.
        // SAFETY: `run_on` returned: no role writes the arrays any more.
        let regs: Vec<&[u32]> = results
            .0
            .iter()
            .map(|c| unsafe { &*c.get() }.as_slice())
            .collect();
        let finals = |var: usize, i: usize| {
            let addr = (base + layout.at(var, i)) as *const u32;
            // SAFETY: inside the arena (span checked), aligned; the chunk's threads have
            // finished, and `run_on`'s completion orders their writes before this read.
            unsafe { core::ptr::read_volatile(addr) }
        };
        tally(test, gen, k, &regs, &finals, &mut hist).map_err(|e| {
            RunFailure::Harness(HarnessError(format!(
                "chunk {chunk} (layout {}): {}",
                kind.name(),
                e.0
            )))
        })?;
        done += k as u64;
        chunk += 1;
    }
    let histogram = hist.entries();
    let observed = hist.observed(test);
    Ok(Outcome {
        iterations: done,
        histogram,
        observed,
        elapsed_ns: platform.now_ns().saturating_sub(t0),
    })
}

/// The `litmus` record for an outcome.
pub fn record(test: &Test, attr: &str, cpus: &[usize], out: &Outcome) -> Litmus {
    let verdict = if test.model == ModelVerdict::Forbidden && out.observed > 0 {
        Verdict::Violation
    } else {
        Verdict::Ok
    };
    Litmus {
        name: test.name.into(),
        attr: attr.into(),
        cpus: cpus.iter().map(|&c| c as u32).collect(),
        iterations: out.iterations,
        histogram: out
            .histogram
            .iter()
            .map(|(v, c)| HistogramEntry {
                outcome: test.outcome(v),
                count: *c,
            })
            .collect(),
        condition: test.condition(),
        observed: out.observed,
        model: test.model,
        verdict,
        elapsed_ms: out.elapsed_ns / 1_000_000,
        iter_per_s: out.iter_per_s(),
        relaxed_per_s: out.relaxed_per_s(),
        rule: test.source.cite(),
        reason: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every layout keeps every (instance, variable) at its own aligned address inside the span.
    #[test]
    fn layouts_are_disjoint_and_aligned() {
        for kind in LayoutKind::ALL {
            for nvars in 1..=MAX_VARS {
                for k in [1usize, 2, 15, 16, 17, 100] {
                    for variant in [0usize, 1, 7, 15, 16, 99, usize::MAX] {
                        let l = Layout::new(kind, nvars, k, variant);
                        let mut addrs: Vec<usize> = (0..k)
                            .flat_map(|i| (0..nvars).map(move |v| (i, v)))
                            .map(|(i, v)| l.at(v, i))
                            .collect();
                        assert!(addrs.iter().all(|a| a % 4 == 0));
                        assert!(addrs.iter().all(|a| a + 4 <= l.span(nvars, k)));
                        addrs.sort();
                        assert!(
                            addrs.windows(2).all(|w| w[1] >= w[0] + 4),
                            "{kind:?} {nvars} {k} {variant}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn capacity_fits() {
        for kind in LayoutKind::ALL {
            for nvars in 1..=MAX_VARS {
                let len = 1 << 16;
                let k = capacity(kind, nvars, len);
                assert!(k > 0);
                let l = Layout::new(kind, nvars, k, usize::MAX);
                assert!(l.span(nvars, k) + LINE <= len, "{kind:?} {nvars}");
            }
        }
    }

    #[test]
    fn histogram_orders_outcomes() {
        let mut h = Histogram::new(2);
        h.add(&[1, 0]);
        h.add(&[0, 1]);
        h.add(&[1, 0]);
        assert_eq!(h.entries(), vec![(vec![0, 1], 1), (vec![1, 0], 2)]);
    }
}
