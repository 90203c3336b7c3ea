//! The machinery of the litmus runner ([`super::file::run`]), designed for rate (issue 4 item 4).
//!
//! # Shape of a run
//! A run is split over a few *placements* ([`RunOpts::placements`]), one `Platform::run_on` call
//! each. A `run_on` call is expensive on bare metal (on QEMU virt every participating core is
//! powered on through PSCI for it: 15–35 ms a core under TCG), so one call runs many *batches*
//! and never returns to the caller between them. Inside a call, the cores of the placement
//! ("slots") walk through the batches in step:
//!
//! 1. a batch barrier (below), once per batch;
//! 2. batch `g` runs up to [`RunOpts::batch`] instances, each with its own locations in one half
//!    of the arena (`g mod 2`), laid out by [`LayoutKind`] `g mod 3` at offset variant `g / 3`;
//!    slot `s` plays role `(s + g) mod threads`, so the thread-to-core mapping rotates from batch
//!    to batch (and the set of cores from placement to placement);
//! 3. the roles run the batch's instances back to back ([`SyncMode::Barrier`]), from a common
//!    start time ([`SyncMode::BarrierStart`]), in time slots of [`RunOpts::every`] instances
//!    ([`SyncMode::BarrierClock`]), each after a one-way per-instance handshake
//!    ([`SyncMode::Handshake`], litmus7's userfence) or meeting every few instances
//!    ([`SyncMode::Lockstep`], the bare-metal default). One implementation of these modes
//!    (`in_step`, with `Barrier`, `Agreement`, `Meetings` and `Bounds`) serves the
//!    runner ([`super::file::run`]);
//! 4. after running batch `g`, every slot classifies its share of batch `g − 1` (registers from
//!    the per-role result arrays, final values from the other arena half) into its own
//!    histogram. Batch `g + 1` reuses that half only after the next barrier, which every slot
//!    reaches after its share: the classification never races the next writes.
//!
//! # The batch barrier
//! No exclusives or read-modify-write atomics (they may fault or never succeed on some memory
//! types; they compile to LDXR/STXR loops on Armv8.0): every slot owns one flag line and writes
//! only it — its arrival epoch (a store-release) and a small message (double-buffered by epoch
//! parity) — and waits until every other slot's epoch has reached its own (load-acquire). That
//! is one one-way latency per barrier, and the release/acquire pairs order every access of
//! batch `g` (and of the classification of `g − 1`) before every access of batch `g + 1`, which
//! the value scheme ([`super`]) relies on. The message carries each slot's proposal for the
//! batch's start time, the slot width, whether to stop and the stagger; every slot takes the
//! maximum of each, so all agree without a leader. A slot waiting past a hard deadline gives up (the run reports
//! a platform error instead of hanging the image).
//!
//! # Why batches are small
//! A relaxed outcome needs the roles to run the *same* instance within a few store-buffer
//! drain times of each other. The batch barrier leaves them within about one cache-line
//! transfer, and from there they drift apart as instances cost them different times; after a
//! few dozen instances they hardly ever meet. So the batch is the alignment period: with 64
//! instances per batch SB's relaxed outcome is ~10 % of the instances hosted (against < 1 % at
//! 4096), at a cost in instances/s of about a third (measurements in `docs/probes.md`,
//! litmus speed). Per-instance alignment (the handshake) costs a cache-line round trip per
//! instance and, measured, aligns worse: the releaser leads by that transfer.
//!
//! # Lockstep: meeting points with a stagger (bare metal)
//! Under QEMU TCG an instance costs a few hundred host instructions, and `litmus-debug=skew`
//! ([`Skew`]) showed the barrier-only roles of a batch dozens, later hundreds of instances
//! apart: SB's relaxed outcome in 0.2–0.4 % of the instances. [`SyncMode::Lockstep`] makes
//! every role meet the others every [`RunOpts::every`] instances ([`Lockstep`]: publish the
//! point, wait until every other role published it). A meeting is as asymmetric as the barrier:
//! the role that arrives last sees the others at once and leaves first, the others only once its
//! store reaches them. So a role that did not have to wait first spins a short *stagger*; the
//! right one is about a store's cross-core latency in loop iterations, which depends on the
//! host, so [`Stagger`] tunes it from the relaxed outcomes the run counts. Measured (SB, QEMU
//! TCG, `docs/probes.md`): stagger 0 gives 3–4 % relaxed, a good one 10–30 %.
//!
//! Values and the soundness of what is counted are explained in [`super`].

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

use crate::platform::{Platform, Privilege};

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
}

/// How the roles keep in step inside a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// The batch barrier only: every role runs its instances back to back as soon as it leaves
    /// the barrier (litmus7's `-barrier user` with batches).
    Barrier,
    /// The barrier also agrees on a start time a little ahead (counter ticks: x86 TSC, aarch64
    /// CNTVCT_EL0); every role waits for it, shifted by a role offset that varies from batch to
    /// batch, then runs its instances back to back. One counter read or two per batch.
    BarrierStart,
    /// As `BarrierStart`, and every role starts instance `j` at `start + offset + j·Δ`, Δ adapted
    /// to what an instance costs (litmus7's timebase mode). A role whose instances fill most of
    /// a slot does so only for every [`RunOpts::every`]-th instance `j` and runs the ones between
    /// back to back, reading the counter once per group; a much faster role keeps a slot per
    /// instance (`Pace::group`). Hosted, groups against a slot per instance for every role:
    /// 1.01–1.18× the instances per second and 0.85–1.38× the relaxed outcomes per second
    /// (medians of 5 paired rounds on the 9 tests that run this mode; issue 14,
    /// `docs/probes.md`). While every role's instances cost about the same in a batch (the
    /// narrowest slot at least 3/4 of the widest, `Agreement::long`) the next batch grows
    /// to [`RunOpts::even_batch`] and runs back to back from the common start, without slots
    /// (the counter still measures each group).
    BarrierClock,
    /// The batch barrier, and before every instance a one-way handshake (litmus7's `-barrier
    /// userfence`): the role `i mod threads` releases instance `i` by storing the batch's tag to
    /// the instance's flag word, the others wait until they read it. See [`Handshake`].
    Handshake,
    /// The batch barrier, and every [`RunOpts::every`] instances a symmetric meeting point
    /// ([`Lockstep`]): every role publishes the instance it reached and waits until every other
    /// role has published it too; a role that did not have to wait (it came last, so it would
    /// lead the others out by the time its store takes to reach them) first waits a short
    /// stagger, tuned from the relaxed outcomes the run counts ([`Stagger`]).
    Lockstep,
}

/// Tunables of a run.
#[derive(Clone, Copy, Debug)]
pub struct RunOpts {
    /// Instances in total.
    pub iterations: u64,
    pub sync: SyncMode,
    /// Most instances per batch (fewer where a layout of half the arena holds fewer).
    pub batch: usize,
    /// [`SyncMode::BarrierClock`]: most instances per batch after a batch in which every role's
    /// instances took at least 3/4 as long as the slowest role's (`Agreement::long`); `batch`
    /// after one in which they did not, and for the first batch of a `run_on` call. 0: always
    /// `batch`. See [`HOSTED_EVEN_BATCH`].
    pub even_batch: usize,
    /// `run_on` calls (core sets) the instances are spread over.
    pub placements: usize,
    /// Stop early (at a batch barrier, all roles agreeing) once a run has taken this long; the
    /// record then shows the instances that did run. 0: no bound.
    pub budget_ms: u64,
    /// Placement to start from (the suite varies it from test to test).
    pub rotate: usize,
    /// Only this layout (benchmarks); `None`: batches rotate through [`LayoutKind::ALL`].
    pub layout: Option<LayoutKind>,
    /// Debug (`litmus-debug=skew`): measure how far apart the roles run ([`Skew`]) and return
    /// it in [`FileOutcome::skew`](super::file::run::FileOutcome::skew). Costs a store per
    /// instance and a load every [`SKEW_EVERY`].
    pub skew: bool,
    /// [`SyncMode::Lockstep`]: delay-loop iterations a role that came last to a meeting point
    /// waits before it goes on; `None`: tuned during the run ([`Stagger`]).
    pub stagger: Option<u64>,
    /// [`SyncMode::Lockstep`]: instances between two meeting points; [`SyncMode::BarrierClock`]:
    /// instances a time slot holds.
    pub every: usize,
    /// OS-hosted, tests from `.litmus` files ([`super::file::run`]): before the run proper,
    /// short trials of `Barrier` and of `BarrierClock` (instances in time slots of their
    /// own, litmus7's timebase idea), two of each, alternating, then the rest in the one that
    /// counted more relaxed outcomes per second. With the batch barrier alone a test with a slow
    /// and a fast thread (SB+mfence+po) drifts apart (0.01 % relaxed); the time slots keep its
    /// threads together (5 %) at about a third of the rate. Where neither mode counted a relaxed
    /// outcome (it is forbidden), the one with more instances a second off the most common
    /// outcome ([`super::file::run::clock_wins`]; measured, issue 14, `docs/probes.md`).
    pub adaptive: bool,
    /// Before classifying its share of a batch, a slot asks for all of the share's lines at
    /// once ([`cache::prefetch`]): the roles' result arrays and the locations were last written
    /// by the other cores, and reached as the loop came to them their misses added up (hosted,
    /// the classification of 32 instances took about 15 % fewer ticks with the hints: issue 14,
    /// `docs/probes.md`). OS-hosted only: the arena is Normal write-back memory there, while on
    /// bare metal it may be Device or Non-cacheable, and under QEMU TCG there is no cache to
    /// warm, only a translated instruction to pay.
    pub prefetch: bool,
}

impl RunOpts {
    /// Defaults where nothing is known about the platform (the OS-hosted settings).
    pub fn new(iterations: u64) -> RunOpts {
        RunOpts {
            iterations,
            sync: SyncMode::Barrier,
            batch: HOSTED_BATCH,
            even_batch: HOSTED_EVEN_BATCH,
            placements: 4,
            budget_ms: budget_ms(iterations, HOSTED_FLOOR_PER_S),
            rotate: 0,
            layout: None,
            skew: false,
            stagger: None,
            every: 4,
            adaptive: false,
            prefetch: false,
        }
    }

    /// Defaults for `platform`, chosen by measurement (see `docs/probes.md`, litmus speed):
    /// on bare metal every `run_on` call powers cores on, so one placement per test (the suite
    /// rotates the cores from test to test), and a time bound that keeps the family's share
    /// of the default suite within its budget even on a loaded host.
    pub fn for_platform(platform: &dyn Platform, iterations: u64) -> RunOpts {
        let mut o = RunOpts::new(iterations);
        if platform.env().privilege != Privilege::User {
            // Under QEMU's TCG a CNTVCT_EL0 read takes the big QEMU lock (ARM_CP_IO): 140–330
            // ns each, and roles spinning on it serialise on that lock, so no timed mode. The
            // batch barrier alone left the roles of a batch hundreds of instances apart (SB
            // relaxed in 0.2–0.4 % of the instances); meeting every 4 instances with a tuned
            // stagger puts them on the same instance (issue 16, `docs/probes.md`).
            o.sync = SyncMode::Lockstep;
            o.every = BARE_EVERY;
            o.batch = BARE_BATCH;
            o.even_batch = 0;
            o.placements = 1;
            o.budget_ms = budget_ms(iterations, BARE_FLOOR_PER_S);
        } else {
            o.adaptive = true;
            o.prefetch = true;
        }
        o
    }
}

/// Most instances per batch, OS-hosted: the batch is the alignment period (module
/// documentation). Measured on 2 cores, SB with `Barrier`: 1.5 M relaxed/s at 15.8 M it/s with
/// 64, 0.38 M at 28.7 M with 4096 (`docs/probes.md`, litmus speed).
pub const HOSTED_BATCH: usize = 64;
/// [`RunOpts::even_batch`], OS-hosted. Roles of even cost need no time slots to stay together:
/// from the common start they run a long batch back to back, which spends far less on batch
/// barriers and start leads, and no ticks waiting for slots. Measured on the 2-core KVM guest
/// (1 M instances, 5 paired rounds against batches of 64 in slots; issue 14, `docs/probes.md`):
/// the 8 SB and R tests of the x86-64 catalogue 1.32–1.56× it/s, relaxed/s 0.42–1.42× (every
/// one still at least 6.7× litmus7's but SB+po+po-rfi-po, 4.4–4.9×); batches of 256, 512 or
/// 2048 were no better. Roles of uneven cost (SB+mfence+po: the fenced role takes about twice
/// as long) keep short batches in slots: in long batches, even in slots, the SB+mfence tests
/// lost more than half their relaxed outcomes (once the slow role falls behind the fast one's
/// slots it catches up only by the slots' slack of 1/8; a batch barrier ends that).
pub const HOSTED_EVEN_BATCH: usize = 1024;
/// Most instances per batch on bare metal. The meeting points keep the roles together inside a
/// batch, but once a role gives up meeting (its partner was descheduled) the rest of the batch
/// runs unaligned; small batches bound that loss (measured, SB with `Lockstep`: see
/// `docs/probes.md`, litmus speed).
pub const BARE_BATCH: usize = 64;
/// [`SyncMode::Lockstep`] doubles its batches, up to `2^MAX_SCALE` times, after a batch in
/// which a role gave up meeting, and halves them after one where none did.
pub const MAX_SCALE: u32 = 4;
/// Instances between two meeting points on bare metal ([`SyncMode::Lockstep`]).
pub const BARE_EVERY: usize = 4;

/// A run stops early once it has taken longer than its instances at this rate would (bare
/// metal; the default 200,000 instances: 400 ms).
pub const BARE_FLOOR_PER_S: u64 = 500_000;
/// As [`BARE_FLOOR_PER_S`], OS-hosted.
pub const HOSTED_FLOOR_PER_S: u64 = 50_000;

fn budget_ms(iterations: u64, floor_per_s: u64) -> u64 {
    (iterations.saturating_mul(1000) / floor_per_s).max(100)
}

/// One slot's flag line: its arrival epoch and its message for that epoch (by parity).
#[repr(C, align(128))]
struct Flag {
    epoch: AtomicU64,
    msg: [[AtomicU64; MSG]; 2],
}

/// Words of a barrier message: start time proposal, slot width proposal, and one word holding
/// the stop vote (bit 63), the short-batch request (bit 62, [`SHORT`]), the slot width again as
/// [`WIDTH_SPAN`] minus it (bits 32–61, [`SyncMode::BarrierClock`] only) and the stagger
/// proposal (bits 0–31, [`SyncMode::Lockstep`] only). The maximum of that word is a stop if any
/// slot voted for one, else a short batch if any slot asked for one, else the narrowest slot
/// width (the maximum of its complement) and, in `Lockstep`, where no slot sets the width bits,
/// the largest stagger. Below a stop or a short request the lower bits come from one slot, but
/// those decide the batch already. Three
/// words keep a flag (epoch and both parities' messages) in one 64-byte line. Measured hosted
/// (SB, 4 M instances, 3 rounds against the previous runner): with a fourth word and the skew
/// hook inside the `Barrier` instance loop the relaxed share fell from 30–34 % to 21–25 %; with
/// both undone it is 28.6–31 %.
pub(crate) const MSG: usize = 3;
pub(crate) const STOP: u64 = 1 << 63;
/// In the stop word, [`SyncMode::BarrierClock`]: a slot that has not measured its role yet (the
/// first batch of a `run_on` call) asks for a batch of [`RunOpts::batch`], not
/// [`RunOpts::even_batch`] (the maximum of the word: any slot's request holds).
pub(crate) const SHORT: u64 = 1 << 62;
/// Where the stop word keeps [`WIDTH_SPAN`] minus the slot's width ([`Agreement::long`]).
const WIDTH_SHIFT: u32 = 32;
/// Widths up to this fit the stop word's bits 32–61 (a slot is at most `max_delta`, 20 µs:
/// 50 000 ticks at 2.45 GHz).
const WIDTH_SPAN: u64 = (1 << 30) - 1;
/// The stop word's stagger bits.
const STAGGER_BITS: u64 = (1 << WIDTH_SHIFT) - 1;

/// The batch barrier of one `run_on` call (see the module documentation).
pub(crate) struct Barrier {
    flags: Vec<Flag>,
}

impl Barrier {
    pub(crate) fn new(slots: usize) -> Barrier {
        Barrier {
            flags: (0..slots)
                .map(|_| Flag {
                    epoch: AtomicU64::new(0),
                    msg: Default::default(),
                })
                .collect(),
        }
    }

    /// Arrive at barrier `epoch` (1, 2, … in every slot) with `msg`; wait for every slot and
    /// return the element-wise maximum of all messages, or `None` once the counter passes
    /// `give_up` (0: never) with a slot still missing.
    #[inline(always)]
    pub(crate) fn arrive(
        &self,
        slot: usize,
        epoch: u64,
        msg: [u64; MSG],
        give_up: u64,
    ) -> Option<[u64; MSG]> {
        let par = (epoch & 1) as usize;
        let me = &self.flags[slot];
        for (w, v) in me.msg[par].iter().zip(msg) {
            w.store(v, Ordering::Relaxed);
        }
        me.epoch.store(epoch, Ordering::Release);
        let mut agreed = msg;
        for (t, other) in self.flags.iter().enumerate() {
            if t == slot {
                continue;
            }
            let mut spins = 0u32;
            // A slot at `epoch + 1` already is past this barrier: it has written the other
            // parity's message, never this one (it cannot reach `epoch + 2` before we arrive at
            // `epoch + 1`).
            while other.epoch.load(Ordering::Acquire) < epoch {
                core::hint::spin_loop();
                spins = spins.wrapping_add(1);
                if spins.is_multiple_of(1 << 16) && give_up != 0 && clock::ticks() > give_up {
                    return None;
                }
            }
            for (a, w) in agreed.iter_mut().zip(&other.msg[par]) {
                *a = (*a).max(w.load(Ordering::Relaxed));
            }
        }
        Some(agreed)
    }
}

/// The per-instance flags of [`SyncMode::Handshake`], one word per instance of a batch.
///
/// Like the batch barrier it uses plain loads and stores with release/acquire only (no
/// read-modify-write: see the module documentation), and every flag has one writer per batch:
/// the releasing role of its instance. Flags are never cleared: a batch's tag is its generation,
/// which grows from batch to batch (and from placement to placement), so a flag still holding an
/// earlier batch's tag does not release anything. No role can be in a later batch while another
/// waits in this one (the batch barrier separates them), so a waiter reads either an earlier tag
/// or its own batch's.
///
/// Soundness: the handshake only adds events (a store-release and a full fence in the releasing
/// role, a load-acquire in the others) and orderings between instances; an instance is still the
/// litmus test embedded in a larger execution (see [`super`]).
pub struct Handshake {
    flags: Vec<HsFlag>,
}

/// Reads of a flag after which a [`SyncMode::Handshake`] waiter stops waiting for the rest of
/// the batch (some 100 µs natively; an instance takes well under 1 µs).
const HS_SPINS: u32 = 1 << 16;

/// Flags per cache line: litmus7 packs its `int` barrier words; consecutive instances' flags
/// then share a line, so the line a waiter spins on is already on its way for the next one.
const HS_PER_LINE: usize = 16;

#[repr(C, align(64))]
struct HsFlag([AtomicU32; HS_PER_LINE]);

impl Handshake {
    /// Flags for batches of at most `k` instances, all clear (0 is below every tag).
    pub fn new(k: usize) -> Handshake {
        Handshake {
            flags: (0..k.div_ceil(HS_PER_LINE).max(1))
                .map(|_| HsFlag(Default::default()))
                .collect(),
        }
    }

    #[inline(always)]
    fn word(&self, i: usize) -> &AtomicU32 {
        &self.flags[i / HS_PER_LINE].0[i % HS_PER_LINE]
    }

    /// Release instance `i` of the batch tagged `tag`. The fence (MFENCE; DMB ISH) makes the
    /// releaser wait until its flag store is globally visible (Intel SDM Vol. 3A 9.2.2: loads
    /// and stores are not reordered with MFENCE; Arm ARM B2.3: DMB orders the store before
    /// every later access), as litmus7's userfence does: the releaser then leads the waiters by
    /// about one cache-line transfer instead of by its store-buffer drain time.
    #[inline(always)]
    pub fn release(&self, i: usize, tag: u32) {
        self.word(i).store(tag, Ordering::Release);
        fence(Ordering::SeqCst);
    }

    /// Wait until instance `i` of the batch tagged `tag` is released: `true`; or `false` after
    /// `spins` reads without it.
    #[inline(always)]
    pub fn wait(&self, i: usize, tag: u32, spins: u32) -> bool {
        let w = self.word(i);
        let mut n = spins;
        // No PAUSE / YIELD hint in the loop: like litmus7's userfence, the waiter leaves as soon
        // as the line arrives (a PAUSE costs up to ~140 cycles on recent Intel cores).
        while w.load(Ordering::Acquire) != tag {
            if n == 0 {
                return false;
            }
            n -= 1;
        }
        true
    }
}

/// The staggers [`Stagger`] chooses from, in delay-loop iterations. One iteration is a few
/// nanoseconds natively and under QEMU TCG alike; a cache-line transfer between cores is 50–300
/// ns. Measured under QEMU TCG on a 2-core AMD EPYC host (SB, meeting every 4 instances): virt
/// did best at about 20, pc at about 40, and 160 is already far worse than 0
/// (`docs/probes.md`, litmus speed): the right value depends on the host, so it is tuned.
pub const STAGGERS: [u64; 12] = [0, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192];
pub(crate) const ARMS: usize = STAGGERS.len();

/// The arm a run starts from and falls back to while it has counted no relaxed outcome: the
/// best of the last run that counted some (index + 1; 0: none yet, use [`DEFAULT_ARM`]). Written
/// only by the core that called the runner, after `run_on` returned; a plain store (no RMW).
static LEARNED_ARM: AtomicU64 = AtomicU64::new(0);
const DEFAULT_ARM: usize = 4;

/// Instances an arm's counts may reach before they are halved (older batches weigh less, so the
/// choice follows a change in the host's load).
const ARM_WINDOW: u64 = 1 << 16;

/// The self-tuning stagger of [`SyncMode::Lockstep`]: a bandit over [`STAGGERS`], scored by the
/// fraction of instances that satisfy the test's `exists` clause. It tries every arm twice, then
/// plays the best arm, and one batch in 8 the next arm in turn (every arm stays measured, and a
/// test whose outcome never shows still runs with varied timing).
#[derive(Clone, Debug)]
pub struct Stagger {
    relaxed: [u64; ARMS],
    instances: [u64; ARMS],
    picks: u64,
}

impl Stagger {
    pub fn new() -> Stagger {
        Stagger {
            relaxed: [0; ARMS],
            instances: [0; ARMS],
            picks: 0,
        }
    }

    /// The arm for the next batch.
    pub fn pick(&mut self) -> usize {
        let n = self.picks;
        self.picks += 1;
        let sweep = 2 * ARMS as u64;
        if n < sweep {
            return (n % ARMS as u64) as usize;
        }
        if n.is_multiple_of(8) {
            return ((n / 8) % ARMS as u64) as usize;
        }
        self.best()
    }

    /// The arm with the highest relaxed fraction (a prior of 256 instances keeps an arm with few
    /// samples from winning by luck; ties go to the smaller stagger), or the learned / default
    /// arm while nothing relaxed was counted.
    pub fn best(&self) -> usize {
        if self.relaxed.iter().all(|&r| r == 0) {
            return match LEARNED_ARM.load(Ordering::Relaxed) {
                0 => DEFAULT_ARM,
                a => (a as usize - 1).min(ARMS - 1),
            };
        }
        let score = |a: usize| (self.relaxed[a] << 20) / (self.instances[a] + 256);
        (0..ARMS).fold(0, |b, a| if score(a) > score(b) { a } else { b })
    }

    /// Batch share played with `arm`: `relaxed` of `instances` satisfied the `exists` clause.
    pub fn update(&mut self, arm: usize, relaxed: u64, instances: u64) {
        self.relaxed[arm] += relaxed;
        self.instances[arm] += instances;
        if self.instances[arm] > ARM_WINDOW {
            self.relaxed[arm] /= 2;
            self.instances[arm] /= 2;
        }
    }

    /// Per arm, the relaxed fraction counted, per million instances.
    pub fn scores(&self) -> [u64; ARMS] {
        core::array::from_fn(|a| self.relaxed[a] * 1_000_000 / self.instances[a].max(1))
    }

    /// Whether any relaxed outcome was counted (then [`Self::best`] is worth remembering).
    pub fn saw_relaxed(&self) -> bool {
        self.relaxed.iter().any(|&r| r > 0)
    }
}

impl Default for Stagger {
    fn default() -> Self {
        Stagger::new()
    }
}

/// Instances between two samples of the other roles' progress (`litmus-debug=skew`).
pub const SKEW_EVERY: usize = 8;

/// Positions in a batch the skew summary groups its samples by: bucket `b` holds instances
/// `SKEW_POS[b]..SKEW_POS[b + 1]`.
pub const SKEW_POS: [usize; SKEW_BUCKETS + 1] = [0, 16, 64, 256, 1024, usize::MAX];
const SKEW_BUCKETS: usize = 5;
/// Most roles the skew measurement keeps apart (the tests have at most 4 threads).
const SKEW_ROLES: usize = 4;

/// `litmus-debug=skew`: every role stores `(g + 1) << 32 | i` to its own progress word before it
/// runs instance `i` of batch `g` (and `i = k` once it is through the batch's `k` instances); every
/// [`SKEW_EVERY`] instances it reads the other roles' words and records how many instances they
/// are ahead (positive) or behind. Plain stores and loads (no read-modify-write, see the module
/// documentation); one writer per word per batch, ordered by the batch barrier. A sample lags
/// the truth by one cache-line transfer, so "same instance" is a lower bound.
pub(crate) struct Progress {
    words: Vec<ProgressWord>,
}

#[repr(C, align(128))]
struct ProgressWord(AtomicU64);

impl Progress {
    pub(crate) fn new(roles: usize) -> Progress {
        Progress {
            words: (0..roles)
                .map(|_| ProgressWord(AtomicU64::new(0)))
                .collect(),
        }
    }

    /// As role `role`, about to run instance `i` of batch `g` (of `threads` roles): publish it,
    /// and every [`SKEW_EVERY`] instances sample the others into `stats`.
    #[inline(always)]
    fn step(&self, role: usize, threads: usize, g: u64, i: usize, stats: &mut Skew) {
        let tag = (g + 1) << 32;
        self.words[role].0.store(tag | i as u64, Ordering::Relaxed);
        if !i.is_multiple_of(SKEW_EVERY) || role >= SKEW_ROLES {
            return;
        }
        let b = SKEW_POS.windows(2).position(|w| i < w[1]).unwrap_or(0);
        let cell = &mut stats.by_role[role][b];
        for (t, w) in self.words.iter().enumerate().take(threads) {
            if t == role {
                continue;
            }
            let v = w.0.load(Ordering::Relaxed);
            // A word below this batch's tag: that role has not started the batch yet (it cannot
            // be in a later one: the batch barrier separates them).
            let (other, started) = if v >> 32 == g + 1 {
                ((v & 0xffff_ffff) as i64, true)
            } else {
                (-1, false)
            };
            let d = other - i as i64;
            cell.samples += 1;
            cell.same += u64::from(d == 0);
            cell.near += u64::from(d.abs() <= 1);
            cell.not_started += u64::from(!started);
            cell.sum_abs += d.unsigned_abs();
            cell.sum += d;
        }
    }

    /// Role `role` is through batch `g`'s `k` instances.
    #[inline(always)]
    pub(crate) fn done(&self, role: usize, g: u64, k: usize) {
        self.words[role]
            .0
            .store(((g + 1) << 32) | k as u64, Ordering::Relaxed);
    }
}

/// The meeting points of [`SyncMode::Lockstep`]: one word per role, on its own line.
///
/// Role `r` reaching instance `i` of batch `g` stores `(g + 1) << 32 | i` to its word and waits
/// until every other role's word is at least that. Plain stores and loads only (no
/// read-modify-write: see the module documentation); each word has one writer per batch (the
/// slot playing the role), and the values only grow over a run (batches are numbered across
/// placements), so a word left by an earlier batch never releases anyone. Like the handshake,
/// meeting only adds events and orderings between instances: an instance is still the litmus
/// test embedded in a larger execution (see [`super`]).
pub struct Lockstep {
    words: Vec<ProgressWord>,
}

/// Reads of another role's word after which a [`Lockstep`] role stops meeting for the rest of
/// the batch (that role is descheduled or its emulated core preempted; waiting only ever adds
/// ordering, so not waiting is sound).
const MEET_SPINS: u32 = 1 << 12;

impl Lockstep {
    pub fn new(roles: usize) -> Lockstep {
        Lockstep {
            words: (0..roles)
                .map(|_| ProgressWord(AtomicU64::new(0)))
                .collect(),
        }
    }

    /// As `role`, meet the other roles at `point` (`(g + 1) << 32 | i`). `Some(true)`: this role
    /// had to wait; `Some(false)`: every other role was there already; `None`: a role did not
    /// come within `spins` reads.
    #[inline(always)]
    pub fn meet(&self, role: usize, point: u64, spins: u32) -> Option<bool> {
        self.words[role].0.store(point, Ordering::Relaxed);
        let mut waited = false;
        for (t, w) in self.words.iter().enumerate() {
            if t == role {
                continue;
            }
            let mut n = spins;
            while w.0.load(Ordering::Relaxed) < point {
                waited = true;
                if n == 0 {
                    return None;
                }
                n -= 1;
            }
        }
        Some(waited)
    }

    /// As `role`, stop meeting for the rest of the batch tagged `tag`: every later point of it
    /// finds this role there.
    pub fn leave(&self, role: usize, tag: u64) {
        self.words[role]
            .0
            .store(tag | 0xffff_ffff, Ordering::Relaxed);
    }
}

/// Busy-wait `n` loop iterations without a spin-wait hint (under QEMU TCG, x86 PAUSE leaves the
/// translated code for the main loop: far longer and more variable than the delay wanted).
#[inline(always)]
fn delay(n: u64) {
    for j in 0..n {
        core::hint::black_box(j);
    }
}

/// What one role saw of the other roles' progress at one position bucket ([`SKEW_POS`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SkewCell {
    pub samples: u64,
    /// The other role was on the same instance.
    pub same: u64,
    /// Within one instance.
    pub near: u64,
    /// The other role had not started the batch.
    pub not_started: u64,
    /// Sum of |other − mine| in instances.
    pub sum_abs: u64,
    /// Sum of other − mine (positive: the others run ahead of this role).
    pub sum: i64,
}

/// The skew measurement of a run, by role and position in the batch (`litmus-debug=skew`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Skew {
    pub by_role: [[SkewCell; SKEW_BUCKETS]; SKEW_ROLES],
}

impl Skew {
    pub(crate) fn merge(&mut self, other: &Skew) {
        for (a, b) in self.by_role.iter_mut().zip(&other.by_role) {
            for (x, y) in a.iter_mut().zip(b) {
                x.samples += y.samples;
                x.same += y.same;
                x.near += y.near;
                x.not_started += y.not_started;
                x.sum_abs += y.sum_abs;
                x.sum += y.sum;
            }
        }
    }

    /// One line per role that has samples: per position bucket, the share of samples on the same
    /// instance and within one, the mean distance and the mean signed distance (positive: the
    /// others are ahead), and the share where the other had not started the batch.
    pub fn lines(&self) -> Vec<String> {
        let pct = |a: u64, n: u64| a as f64 * 100.0 / n.max(1) as f64;
        let mut out = Vec::new();
        for (role, cells) in self.by_role.iter().enumerate() {
            if cells.iter().all(|c| c.samples == 0) {
                continue;
            }
            let parts: Vec<String> = cells
                .iter()
                .enumerate()
                .filter(|(_, c)| c.samples > 0)
                .map(|(b, c)| {
                    let hi = match SKEW_POS[b + 1] {
                        usize::MAX => String::from("end"),
                        n => format!("{n}"),
                    };
                    format!(
                        "[{}, {hi}) n={}: same {:.1} %, ±1 {:.1} %, mean |Δ| {:.1}, mean Δ {:+.1}, \
                         not started {:.1} %",
                        SKEW_POS[b],
                        c.samples,
                        pct(c.same, c.samples),
                        pct(c.near, c.samples),
                        c.sum_abs as f64 / c.samples as f64,
                        c.sum as f64 / c.samples as f64,
                        pct(c.not_started, c.samples),
                    )
                })
                .collect();
            out.push(format!("role {role}: {}", parts.join("; ")));
        }
        out
    }
}

/// Ticks the roles spend per instance and from barrier to start, adapted by each slot from what
/// it saw (the proposals are maximised at the barrier).
#[derive(Clone, Copy)]
pub(crate) struct Pace {
    /// Ticks between two instance slots (`BarrierClock`), or the last batch's ticks per instance.
    delta: u64,
    /// Ticks from the barrier to the batch's start.
    lead: u64,
    min_lead: u64,
    max_lead: u64,
    max_delta: u64,
    /// `BarrierClock`: this slot has measured a batch ([`Pace::slots`]): `delta` is its role's.
    measured: bool,
    /// `BarrierClock`: ticks per instance this slot last measured playing role `r` (0: not
    /// yet), for the roles below [`PACED_ROLES`].
    role_mean: [u64; PACED_ROLES],
}

/// `BarrierClock`'s one rule for "about as long": `ticks` is at least 3/4 of `of` (a role's
/// instances against a slot, [`Pace::group`], or the quickest role's slot width against the
/// slowest one's, [`Agreement::long`]).
#[inline(always)]
fn fills(ticks: u64, of: u64) -> bool {
    ticks * 4 >= of * 3
}

/// Roles whose instance cost a [`Pace`] keeps; a role beyond them gets a slot per instance.
const PACED_ROLES: usize = 4;

impl Pace {
    pub(crate) fn new(per_us: u64) -> Pace {
        Pace {
            delta: (per_us / 20).max(1),
            lead: (per_us * 2).max(2),
            min_lead: (per_us / 4).max(2),
            max_lead: (per_us * 2).max(2),
            max_delta: (per_us * 20).max(16),
            measured: false,
            role_mean: [0; PACED_ROLES],
        }
    }

    /// The start came `late` ticks after it was due (0: on time): widen the lead by as much when
    /// late, but at most double it and never past 2 µs; narrow it slowly when on time.
    ///
    /// A core the host preempts between the barrier and the start comes late by its time slice,
    /// not by how long the barrier's news takes to reach it (a few hundred ticks hosted), and a
    /// lead as long would not have helped: every slot would only wait it out at every later
    /// batch. The lead used to grow to twice itself plus the lateness, up to 200 µs: measured
    /// hosted in a slow spell of the host (R, `BarrierClock`), the slots then waited 3 500–12 000
    /// ticks a batch with leads of 2 600–30 000, 15–28 % of the run (issue 14, `docs/probes.md`).
    fn started(&mut self, late: u64) {
        self.lead = if late > 0 {
            (self.lead + late.min(self.lead)).min(self.max_lead)
        } else {
            (self.lead - self.lead / 16).max(self.min_lead)
        };
    }

    /// `BarrierClock`: the instances of the last batch took `busy` ticks inside the bodies
    /// (each instance counted at most 2Δ + 2, so a preempted instance does not widen the slots):
    /// propose 9/8 of the mean, slots just wider than an instance.
    fn slots(&mut self, busy: u64, k: usize, role: usize) {
        let mean = busy / k.max(1) as u64;
        self.delta = (mean + mean / 8 + 1).clamp(1, self.max_delta);
        self.measured = true;
        if let Some(m) = self.role_mean.get_mut(role) {
            *m = mean;
        }
    }

    /// `BarrierClock`: instances per time slot for `role` in a batch of slots `delta` wide:
    /// `every` while the role's instances (as this slot last measured them) take at least 3/4
    /// of a slot, else one. A role much faster than the slowest (SB+mfence+po's role without
    /// the fence) would run ahead of the others inside a group; with a slot per instance it
    /// waits for each (hosted, groups of 4 for every role cut SB+mfence+po's relaxed outcomes
    /// per second to a tenth: issue 14, `docs/probes.md`).
    fn group(&self, role: usize, delta: u64, every: usize) -> usize {
        match self.role_mean.get(role) {
            Some(&m) if m != 0 && fills(m, delta) => every.max(1),
            _ => 1,
        }
    }
}

/// The cache hint of the classification ([`RunOpts::prefetch`]).
pub mod cache {
    /// Start fetching the cache line of `addr` (for reading: PREFETCHT0, `PRFM PLDL1KEEP`). A
    /// hint only: it never faults and changes no value, so an implementation that ignores it
    /// costs the instruction alone. A write-intent hint (PREFETCHW) for the locations the reset
    /// writes measured no better (issue 14, `docs/probes.md`).
    #[inline(always)]
    pub fn prefetch(addr: usize) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: PREFETCHT0 is a hint: it does not fault on any address (Intel SDM Vol. 2B,
        // PREFETCHh) and changes no architectural state.
        unsafe {
            core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
                addr as *const i8,
            )
        };
        #[cfg(target_arch = "aarch64")]
        // SAFETY: PRFM is a hint: it generates no fault (Arm ARM C6.2, PRFM (immediate)) and
        // changes no architectural state.
        unsafe {
            core::arch::asm!("prfm pldl1keep, [{a}]", a = in(reg) addr, options(nostack, readonly))
        };
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        let _ = addr;
    }
}

/// The counter of the timed sync modes: x86-64 TSC, aarch64 CNTVCT_EL0 (both synchronised across
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

/// Waiting past the time budget by more than this makes a slot give up on a missing core.
pub(crate) const GIVE_UP_MS: u64 = 10_000;

/// The time bounds of a run in counter ticks ([`clock`]; 0: none): past `soft` every slot votes
/// to stop at the next batch barrier ([`RunOpts::budget_ms`]); past `hard` a slot still waiting
/// at a barrier gives up. `timeout_ms` bounds the `run_on` call.
pub(crate) struct Bounds {
    pub(crate) per_us: u64,
    pub(crate) soft: u64,
    pub(crate) hard: u64,
    pub(crate) timeout_ms: u64,
}

impl Bounds {
    pub(crate) fn new(platform: &dyn Platform, opts: &RunOpts) -> Bounds {
        let per_us = if clock::available() {
            clock::ticks_per_us(platform)
        } else {
            0
        };
        let (soft, hard) = if opts.budget_ms > 0 && per_us > 0 {
            let now = clock::ticks();
            let soft = now + opts.budget_ms * 1000 * per_us;
            (soft, soft + GIVE_UP_MS * 1000 * per_us)
        } else {
            (0, 0)
        };
        let timeout_ms = if opts.budget_ms > 0 {
            opts.budget_ms + GIVE_UP_MS + 10_000
        } else {
            u64::MAX / 2_000_000
        };
        Bounds {
            per_us,
            soft,
            hard,
            timeout_ms,
        }
    }
}

/// One slot's proposals at the batch barrier and what it keeps of the agreements: the stagger
/// (slot 0 alone proposes one: tuned by its [`Stagger`], or the fixed [`RunOpts::stagger`]; the
/// others propose 0 and the barrier agrees on the maximum), the batch scale of
/// [`SyncMode::Lockstep`] (batches grow `2^scale` times while a role gives up meeting) and the
/// stop vote.
pub(crate) struct Agreement<'a> {
    sync: SyncMode,
    /// [`RunOpts::even_batch`] is set: `BarrierClock` batches may be long.
    may_be_long: bool,
    tuner: Option<&'a mut Stagger>,
    fixed: u64,
    arm: Option<usize>,
    prev_arm: Option<usize>,
    scale: u64,
    max_scale: u64,
}

impl<'a> Agreement<'a> {
    /// Slot `slot`'s side of a run; `tuner` is used by slot 0 of a [`SyncMode::Lockstep`] run
    /// without a fixed stagger.
    pub(crate) fn new(
        slot: usize,
        opts: &RunOpts,
        tuner: &'a mut Stagger,
        max_scale: u32,
    ) -> Agreement<'a> {
        let sync = opts.sync;
        Agreement {
            sync,
            may_be_long: opts.even_batch > 0,
            tuner: (slot == 0 && sync == SyncMode::Lockstep && opts.stagger.is_none())
                .then_some(tuner),
            fixed: if slot == 0 {
                opts.stagger.unwrap_or(0)
            } else {
                0
            },
            arm: None,
            prev_arm: None,
            scale: 0,
            max_scale: u64::from(max_scale),
        }
    }

    /// The message for the next barrier: the start-time proposal (`lead` ticks from `now`), the
    /// slot width `delta` (or the scale, in `Lockstep`), and the stop word ([`MSG`]): the stop
    /// vote; in `BarrierClock` the short-batch request (before this slot has measured its role)
    /// and the width again; in `Lockstep` the stagger.
    #[inline(always)]
    pub(crate) fn propose(&mut self, now: u64, pace: &Pace, stop: bool) -> [u64; MSG] {
        let stagger = match self.tuner.as_mut() {
            Some(t) => {
                let a = t.pick();
                self.arm = Some(a);
                STAGGERS[a]
            }
            None => self.fixed,
        };
        [
            now.wrapping_add(pace.lead),
            if self.sync == SyncMode::Lockstep {
                self.scale
            } else {
                pace.delta
            },
            if stop {
                STOP
            } else if self.timed_long() {
                // The width of this slot's slots from its role in the batch just run: all
                // slots' widths come from the same batch, in the same layout.
                let short = if pace.measured { 0 } else { SHORT };
                short | (WIDTH_SPAN - pace.delta.min(WIDTH_SPAN)) << WIDTH_SHIFT
            } else {
                stagger.min(STAGGER_BITS)
            },
        ]
    }

    /// Whether the barrier agreed to stop.
    #[inline(always)]
    pub(crate) fn stop(agreed: &[u64; MSG]) -> bool {
        agreed[2] & STOP != 0
    }

    /// Whether the barrier agreed on a long batch of [`RunOpts::even_batch`] instances, run back
    /// to back from the common start: `BarrierClock`, no slot asked for a short one, and the
    /// roles were even in the batch just run, the narrowest slot at least 3/4 of the widest
    /// ([`fills`]). Every slot proposes the width its own role measured in that batch, so the
    /// roles are compared in one batch and one layout. (Each slot used to compare the roles it
    /// had played in its last batches: one measured in another layout than the other, whose
    /// instances cost 13–43 ticks hosted in R, so even roles looked uneven and 63–85 % of the
    /// batches of R and R+po+rfi-po were short; issue 14, `docs/probes.md`.)
    #[inline(always)]
    pub(crate) fn long(&self, agreed: &[u64; MSG]) -> bool {
        let narrowest = WIDTH_SPAN - ((agreed[2] >> WIDTH_SHIFT) & WIDTH_SPAN);
        self.timed_long() && agreed[2] & SHORT == 0 && fills(narrowest, agreed[1])
    }

    /// Batches may be long: `BarrierClock` with [`RunOpts::even_batch`] set.
    #[inline(always)]
    fn timed_long(&self) -> bool {
        self.sync == SyncMode::BarrierClock && self.may_be_long
    }

    /// The agreed batch scale (0 outside `Lockstep`).
    #[inline(always)]
    pub(crate) fn scale(&self, agreed: &[u64; MSG]) -> u64 {
        if self.sync == SyncMode::Lockstep {
            agreed[1].min(self.max_scale)
        } else {
            0
        }
    }

    /// After running a batch: grow the batches while a role gives up meeting (the emulated cores
    /// do not run at the same time: each batch barrier then costs a host time slice, and
    /// unaligned instances test little), shrink them back once it does not.
    #[inline(always)]
    pub(crate) fn ran(&mut self, agreed: &[u64; MSG], gave_up: bool) {
        self.scale = if gave_up {
            (agreed[1] + 1).min(self.max_scale)
        } else {
            agreed[1].saturating_sub(1)
        };
    }

    /// `relaxed` of the `n` instances this slot classified from the previous batch were relaxed:
    /// score the stagger that batch ran with.
    #[inline(always)]
    pub(crate) fn scored(&mut self, relaxed: u64, n: u64) {
        if let Some((t, arm)) = self.tuner.as_mut().zip(self.prev_arm) {
            t.update(arm, relaxed, n);
        }
    }

    /// A batch ran: its stagger is scored when it is classified, after the next barrier.
    #[inline(always)]
    pub(crate) fn next(&mut self) {
        self.prev_arm = self.arm;
    }
}

/// After a run: remember slot 0's best stagger for the next run (if it counted anything
/// relaxed), and return it with every arm's score ([`Outcome::stagger`]).
pub(crate) fn learn(tuner: &Stagger) -> (u64, [u64; ARMS]) {
    if tuner.saw_relaxed() {
        LEARNED_ARM.store(tuner.best() as u64 + 1, Ordering::Relaxed);
    }
    (STAGGERS[tuner.best()], tuner.scores())
}

/// The cores of placement `p`: the first of `cpus` (the calling core, which would otherwise spin
/// in `run_on` waiting, taking a host core from the workers under emulation) and `threads − 1`
/// of the others, rotating with `p`.
pub fn placement(cpus: &[usize], threads: usize, p: usize) -> Vec<usize> {
    let n = cpus.len();
    if threads >= n || n < 2 {
        return cpus[..threads.min(n)].to_vec();
    }
    let mut v = vec![cpus[0]];
    v.extend((0..threads - 1).map(|j| cpus[1 + (p + j) % (n - 1)]));
    v
}

/// How a batch keeps its roles in step: the mode, what the barrier agreed, the handshake flags.
pub(crate) struct Step<'a> {
    pub(crate) mode: SyncMode,
    pub(crate) agreed: &'a [u64; MSG],
    pub(crate) hs: &'a Handshake,
    pub(crate) lockstep: &'a Lockstep,
    pub(crate) every: usize,
    /// `BarrierClock`: the barrier agreed on a long batch ([`Agreement::long`]): the roles are
    /// even, so they run back to back from the common start instead of waiting for slots.
    pub(crate) long: bool,
    /// `litmus-debug=skew`: the progress words and this slot's measurement.
    pub(crate) progress: Option<(&'a Progress, &'a mut Skew)>,
}

/// Run instances `0..k` of batch `g` as `role` (of `threads`), `run_one(i)` running instance
/// `i`, in step with the other roles as `sync` says; `tag` is the batch's handshake tag (it
/// must grow from batch to batch). The one implementation of the sync modes inside a batch
/// ([`super::file::run`]). Returns whether a role gave up meeting ([`SyncMode::Lockstep`]).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn in_step(
    role: usize,
    threads: usize,
    g: u64,
    k: usize,
    tag: u32,
    sync: Step,
    pace: &mut Pace,
    mut run_one: impl FnMut(usize),
) -> bool {
    let mut progress = sync.progress;
    let skew = progress.is_some();
    // `litmus-debug=skew`: publish and sample progress (kept out of `run_one`, so the default
    // `Barrier` loop stays as it was: its rate and alignment are sensitive to every instruction).
    let mut note = |i: usize| {
        if let Some((p, stats)) = progress.as_mut() {
            p.step(role, threads, g, i, stats);
        }
    };
    match sync.mode {
        SyncMode::Barrier => {
            if skew {
                for i in 0..k {
                    note(i);
                    run_one(i);
                }
            } else {
                for i in 0..k {
                    run_one(i);
                }
            }
            return false;
        }
        SyncMode::Lockstep => {
            let mut m = Meetings::new(sync.lockstep, role, g, sync.agreed, sync.every);
            for i in 0..k {
                m.before(i);
                note(i);
                run_one(i);
            }
            return m.gave_up();
        }
        SyncMode::Handshake => {
            let mut mine = role;
            let mut waiting = true;
            for i in 0..k {
                // `mine` is the next instance this role releases (`i ≡ role mod threads`),
                // kept without a division per instance.
                if i == mine {
                    sync.hs.release(i, tag);
                    mine += threads;
                } else if waiting && !sync.hs.wait(i, tag, HS_SPINS) {
                    // The releaser is late by far more than an instance (descheduled, or its
                    // core is emulated and preempted): run the rest of the batch without
                    // waiting, as `Barrier` does, rather than lose a time slice per instance.
                    // Waiting only ever adds ordering, so skipping it is sound; this role
                    // still releases its own instances, so no role waits for it forever.
                    waiting = false;
                }
                note(i);
                run_one(i);
            }
            return false;
        }
        _ => {}
    }
    // Role offsets: −2…2 steps of Δ/8, varied from batch to batch; role 0 is the reference.
    let agreed = sync.agreed;
    let delta = agreed[1].max(1);
    let step = (delta / 8).max(1) as i64;
    let off = if role == 0 {
        0
    } else {
        ((g as usize + role) % 5) as i64 * step - 2 * step
    };
    let start = agreed[0].wrapping_add_signed(off);
    let mut now = clock::ticks();
    pace.started(now.saturating_sub(start));
    while now < start {
        core::hint::spin_loop();
        now = clock::ticks();
    }
    match sync.mode {
        SyncMode::BarrierStart => {
            for i in 0..k {
                note(i);
                run_one(i);
            }
            let per = clock::ticks().saturating_sub(now) / k.max(1) as u64;
            pace.delta = per.clamp(1, pace.max_delta);
        }
        _ => {
            // A group of `every` instances starts at its first instance's slot, `Δ` a slot per
            // instance: the counter is read once per group, not per instance (hosted, an
            // instance's run takes about 14 TSC ticks, so a read beside each one weighs).
            let mut busy = 0u64;
            let every = pace.group(role, delta, sync.every);
            // Each group counted at most `every · (2Δ + 2)` ticks: a preempted group does not
            // widen the slots.
            let cap = (2 * delta + 2) * every as u64;
            // Instances left in the current group.
            let mut left = 0usize;
            // A long batch (even roles) runs back to back: only the measurement stays.
            let wait = !sync.long;
            for i in 0..k {
                if left == 0 {
                    let due = start.wrapping_add(i as u64 * delta);
                    while wait && now < due {
                        core::hint::spin_loop();
                        now = clock::ticks();
                    }
                    left = every;
                }
                note(i);
                run_one(i);
                left -= 1;
                if left == 0 || i + 1 == k {
                    let after = clock::ticks();
                    busy += after.saturating_sub(now).min(cap);
                    now = after;
                }
            }
            pace.slots(busy, k, role);
        }
    }
    false
}

/// One role's meeting points through one batch ([`SyncMode::Lockstep`]): before every
/// [`RunOpts::every`]-th instance meet the other roles ([`Lockstep::meet`]); a role that did not
/// have to wait spins the agreed stagger; once a role does not come, stop meeting for the rest of
/// the batch and let the others through.
pub(crate) struct Meetings<'a> {
    lockstep: &'a Lockstep,
    role: usize,
    tag: u64,
    stagger: u64,
    every: usize,
    meeting: bool,
}

impl<'a> Meetings<'a> {
    /// Role `role`'s meetings in batch `g`, with the stagger the barrier agreed (`agreed[2]`).
    #[inline(always)]
    pub(crate) fn new(
        lockstep: &'a Lockstep,
        role: usize,
        g: u64,
        agreed: &[u64; MSG],
        every: usize,
    ) -> Meetings<'a> {
        Meetings {
            lockstep,
            role,
            tag: (g + 1) << 32,
            stagger: agreed[2] & STAGGER_BITS,
            every: every.max(1),
            meeting: true,
        }
    }

    /// Before instance `i`.
    #[inline(always)]
    pub(crate) fn before(&mut self, i: usize) {
        if self.meeting && i.is_multiple_of(self.every) {
            match self
                .lockstep
                .meet(self.role, self.tag | i as u64, MEET_SPINS)
            {
                Some(true) => {}
                Some(false) => delay(self.stagger),
                None => {
                    // Let the others through every later point of this batch too.
                    self.lockstep.leave(self.role, self.tag);
                    self.meeting = false;
                }
            }
        }
    }

    /// Whether this role stopped meeting in this batch.
    #[inline(always)]
    pub(crate) fn gave_up(&self) -> bool {
        !self.meeting
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `BarrierClock` groups: a role filling at least 3/4 of a slot runs `every` instances a
    /// slot, a faster role, one not measured yet, or one beyond `PACED_ROLES` one a slot.
    #[test]
    fn clock_groups_only_roles_that_fill_their_slots() {
        let mut pace = Pace::new(2450);
        assert_eq!(pace.group(0, 100, 4), 1, "not measured yet");
        pace.slots(64 * 80, 64, 0);
        pace.slots(64 * 20, 64, 1);
        assert_eq!(pace.group(0, 100, 4), 4, "80 of 100 ticks");
        assert_eq!(pace.group(0, 106, 4), 4, "75 % of 106 is 79.5");
        assert_eq!(pace.group(0, 107, 4), 1, "80 ticks of 107: under 3/4");
        assert_eq!(
            pace.group(1, 100, 4),
            1,
            "20 of 100 ticks: keeps a slot per instance"
        );
        assert_eq!(pace.group(0, 100, 0), 1, "`every` 0 means 1");
        pace.slots(64 * 80, 64, PACED_ROLES);
        assert_eq!(
            pace.group(PACED_ROLES, 100, 4),
            1,
            "a role beyond PACED_ROLES"
        );
    }

    /// The lead: widened by the lateness when late, at most doubled and never past 2 µs (a
    /// preempted core's time slice is not the barrier's lag); narrowed by 1/16 when on time, to
    /// no less than 1/4 µs.
    #[test]
    fn lead_grows_by_the_lateness_at_most_doubling_and_to_2_us() {
        let mut pace = Pace::new(2450);
        assert_eq!(pace.lead, 4900, "starts at 2 µs");
        for _ in 0..200 {
            pace.started(0);
        }
        assert_eq!(pace.lead, 612, "on time: down to 1/4 µs");
        pace.started(100);
        assert_eq!(pace.lead, 712, "late by 100: 100 more");
        pace.started(2_000_000);
        assert_eq!(pace.lead, 1424, "preempted: at most doubled");
        for _ in 0..4 {
            pace.started(2_000_000);
        }
        assert_eq!(pace.lead, 4900, "never past 2 µs");
    }

    /// Long batches: `BarrierClock` with `even_batch` set runs one when every slot has measured
    /// its role and the narrowest slot width the slots proposed (each its own role's, in the
    /// batch just run) is at least 3/4 of the widest; the barrier's maximum makes any slot's
    /// short request hold; other modes, or `even_batch` 0, never run long batches, and the
    /// stagger ignores the short and width bits.
    #[test]
    fn long_batches_only_when_the_roles_were_even_in_one_batch() {
        let mut opts = RunOpts::new(1000);
        opts.sync = SyncMode::BarrierClock;
        let (mut t0, mut t1) = (Stagger::new(), Stagger::new());
        let mut a = Agreement::new(0, &opts, &mut t0, 0);
        let mut b = Agreement::new(1, &opts, &mut t1, 0);
        // Slot widths from ticks per instance m: m + m/8 + 1.
        let paced = |ticks: u64, role: usize| {
            let mut p = Pace::new(2450);
            p.slots(64 * ticks, 64, role);
            p
        };
        let unmeasured = Pace::new(2450);
        let max = |x: [u64; MSG], y: [u64; MSG]| -> [u64; MSG] {
            core::array::from_fn(|w| x[w].max(y[w]))
        };
        let mut agree = |p: &Pace, q: &Pace| max(a.propose(0, p, false), b.propose(0, q, false));
        // 80 ticks: width 91; 61: 69 (69 · 4 = 276 ≥ 91 · 3 = 273); 60: 68 (272 < 273).
        let even = agree(&paced(80, 0), &paced(61, 1));
        assert_eq!(even[1], 91, "the widest slot");
        let uneven = agree(&paced(80, 0), &paced(60, 1));
        let short = agree(&paced(80, 0), &unmeasured);
        let same = agree(&paced(80, 0), &paced(80, 1));
        let stop = max(
            a.propose(0, &paced(80, 0), true),
            b.propose(0, &paced(80, 1), false),
        );
        assert!(a.long(&even) && b.long(&even), "69 of 91 ticks fills 3/4");
        assert!(
            !a.long(&uneven) && !b.long(&uneven),
            "68 of 91 ticks does not"
        );
        assert!(
            !a.long(&short) && !b.long(&short),
            "a slot not measured yet"
        );
        assert!(a.long(&same), "equal roles");
        assert!(!Agreement::stop(&short), "a short request is no stop");
        assert!(Agreement::stop(&stop));
        let agreed = [0, 0, SHORT | 5];
        let lockstep = Lockstep::new(2);
        let m = Meetings::new(&lockstep, 0, 0, &agreed, 4);
        assert_eq!(m.stagger, 5, "the stagger ignores the short request");
        let mut fixed = RunOpts::new(1000);
        fixed.stagger = Some(7);
        fixed.sync = SyncMode::Lockstep;
        let mut t = Stagger::new();
        let mut l = Agreement::new(0, &fixed, &mut t, 0);
        let msg = l.propose(0, &paced(80, 0), false);
        assert_eq!(msg[2], 7, "Lockstep: the stagger alone");
        assert_eq!(Meetings::new(&lockstep, 0, 0, &msg, 4).stagger, 7);
        for (sync, even_batch) in [
            (SyncMode::Barrier, HOSTED_EVEN_BATCH),
            (SyncMode::BarrierClock, 0),
        ] {
            opts.sync = sync;
            opts.even_batch = even_batch;
            let mut t = Stagger::new();
            let mut c = Agreement::new(0, &opts, &mut t, 0);
            for p in [&unmeasured, &paced(80, 0)] {
                let msg = c.propose(0, p, false);
                assert_eq!(msg[2] & SHORT, 0, "{sync:?}, even_batch {even_batch}");
                assert!(!c.long(&msg), "{sync:?}, even_batch {even_batch}");
            }
        }
    }

    /// A placement keeps role 0 on the calling core and gives every role its own core; two-thread
    /// tests visit every other core from placement to placement.
    #[test]
    fn placements_keep_the_caller_and_distinct_cores() {
        let cpus = [0, 1, 2, 3];
        for threads in 1..=4 {
            for p in 0..8 {
                let v = placement(&cpus, threads, p);
                assert_eq!(v.len(), threads);
                assert_eq!(v[0], 0);
                let mut s = v.clone();
                s.sort();
                s.dedup();
                assert_eq!(s.len(), threads, "{v:?}");
            }
        }
        let seen: Vec<usize> = (0..3).map(|p| placement(&cpus, 2, p)[1]).collect();
        assert_eq!(seen, vec![1, 2, 3]);
    }

    /// A flag releases only its own batch's tag: a tag left by an earlier batch (or none) keeps
    /// the waiter waiting, until it stops after its spin count.
    #[test]
    fn handshake_releases_only_its_batch() {
        let hs = Handshake::new(40);
        assert!(!hs.wait(3, 16, 1000), "a clear flag released a waiter");
        hs.release(3, 16);
        assert!(hs.wait(3, 16, 0));
        assert!(
            !hs.wait(3, 32, 1000),
            "an earlier batch's tag released a waiter"
        );
        assert!(
            !hs.wait(4, 16, 1000),
            "a neighbour's flag released a waiter"
        );
        hs.release(39, 32);
        assert!(hs.wait(39, 32, 0));
        hs.release(3, 32);
        assert!(hs.wait(3, 32, 0));
    }

    /// Two roles alternating as releaser, as in a batch: every instance's data written before
    /// its release is visible to the waiter after its wait (release/acquire), batch after
    /// batch on the same flags, without clearing them. (No batch barrier is needed here: the
    /// last instance's handshake already keeps the roles within one instance of each other.)
    #[test]
    fn handshake_orders_release_before_wait() {
        extern crate std;
        const K: usize = 1000;
        let hs = Handshake::new(K);
        let data: Vec<AtomicU32> = (0..2 * K).map(|_| AtomicU32::new(0)).collect();
        let (hs, data) = (&hs, &data);
        std::thread::scope(|s| {
            for role in 0..2 {
                s.spawn(move || {
                    for batch in 1..=5u32 {
                        let tag = batch * 16;
                        for i in 0..K {
                            if i % 2 == role {
                                data[2 * i + role].store(tag + i as u32, Ordering::Relaxed);
                                hs.release(i, tag);
                            } else {
                                while !hs.wait(i, tag, u32::MAX) {}
                                let seen = data[2 * i + 1 - role].load(Ordering::Relaxed);
                                assert_eq!(seen, tag + i as u32, "batch {batch} instance {i}");
                            }
                        }
                    }
                });
            }
        });
    }

    /// The tuner tries every arm twice, then settles on the arm with the best relaxed fraction,
    /// still visiting every arm one batch in 8; with nothing relaxed it keeps the fallback arm.
    #[test]
    fn stagger_tunes_to_the_best_arm() {
        let mut t = Stagger::new();
        let sweep: Vec<usize> = (0..2 * ARMS).map(|_| t.pick()).collect();
        assert!((0..ARMS).all(|a| sweep.iter().filter(|&&x| x == a).count() == 2));
        assert!(!t.saw_relaxed());
        let fallback = t.best();
        assert!(fallback < ARMS);
        let good = 7;
        for a in 0..ARMS {
            t.update(a, if a == good { 300 } else { 20 }, 1000);
        }
        assert_eq!(t.best(), good);
        let picks: Vec<usize> = (0..8 * ARMS).map(|_| t.pick()).collect();
        let on_best = picks.iter().filter(|&&a| a == good).count();
        assert!(on_best >= 7 * ARMS, "{picks:?}");
        assert!((0..ARMS).all(|a| picks.contains(&a)), "{picks:?}");
        // Ties go to the smaller stagger; old counts fade once an arm's window is full.
        let mut t = Stagger::new();
        t.update(3, 10, 100);
        t.update(5, 10, 100);
        assert_eq!(t.best(), 3);
        t.update(3, 0, ARM_WINDOW * 4);
        assert!(t.instances[3] <= ARM_WINDOW * 4 && t.relaxed[3] < 10);
        assert_eq!(t.best(), 5);
        assert_eq!(t.scores()[5], 100_000);
    }

    /// Meeting points: each role waits until every other role has reached the same point, and
    /// reports whether it had to; a role that left lets the others through the rest of the
    /// batch; a point of an earlier batch never releases anyone.
    #[test]
    fn lockstep_meets_and_leaves() {
        extern crate std;
        let l = Lockstep::new(2);
        let tag = 5u64 << 32;
        assert_eq!(
            l.meet(0, tag | 4, 100),
            None,
            "met a role that is not there"
        );
        l.leave(1, tag);
        assert_eq!(l.meet(0, tag | 8, 0), Some(false));
        assert_eq!(
            l.meet(0, 6u64 << 32, 100),
            None,
            "an earlier batch released"
        );
        // Two threads meeting at every point of three batches get through every point (no
        // deadlock across batches on the same words, which are never cleared).
        let l = Lockstep::new(2);
        let l = &l;
        std::thread::scope(|s| {
            for role in 0..2 {
                s.spawn(move || {
                    for g in 10..13u64 {
                        for i in 0..500u64 {
                            while l.meet(role, ((g + 1) << 32) | i, 1 << 20).is_none() {}
                        }
                    }
                });
            }
        });
        assert_eq!(l.meet(0, (13u64 << 32) | 499, 0), Some(false));
    }
}
