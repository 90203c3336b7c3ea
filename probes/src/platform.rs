//! What a probe needs from where it runs. The bare-metal image (`kernel/`) and the OS-hosted
//! runner (`host/`) each implement [`Platform`]; every probe family is written once against it.

use alloc::format;
use alloc::string::String;

use crate::attr::{Arch, MemAttr};
use crate::config::Config;
use crate::fault::RawFault;
use crate::mapping::Variant;
use crate::record::Record;

/// A probe arena: memory probes may read, write and fault on, mapped with one attribute. On a
/// platform with aliases, every attribute's arena maps the same physical pages.
#[derive(Clone, Copy, Debug)]
pub struct Arena {
    pub base: *mut u8,
    pub len: usize,
    pub attr: MemAttr,
}

// SAFETY: an `Arena` is only an address range; probes on several cores touching it concurrently
// is the point (they use atomic or asm accesses, never Rust references into it).
unsafe impl Send for Arena {}
// SAFETY: as above.
unsafe impl Sync for Arena {}

/// The privilege the probes run at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Privilege {
    /// aarch64 exception level.
    El(u8),
    /// x86 ring.
    Ring(u8),
    /// OS user space.
    User,
}

/// Facts about the platform that verdict rules depend on.
#[derive(Clone, Copy, Debug)]
pub struct RuleEnv {
    pub arch: Arch,
    pub privilege: Privilege,
    /// aarch64: stage 1 translation enabled at EL1.
    pub mmu_on: bool,
    /// SCTLR_EL1.A / CR0.AM+RFLAGS.AC effective for the probes.
    pub align_check: bool,
    /// Cache line size in bytes (64 unless the platform knows better).
    pub line: usize,
    /// Page size in bytes.
    pub page: usize,
    /// How the arena is mapped for the probes being judged (`mapping=`, `share=`, `caches=`,
    /// `mtrr=`): set by the suite for each combination.
    pub map: Variant,
}

/// Error from the cross-core engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunError {
    /// A requested core index is not online.
    NoSuchCpu(usize),
    /// These cores did not finish within the bound.
    Timeout {
        stuck: alloc::vec::Vec<usize>,
    },
    Other(String),
}

pub trait Platform: Sync {
    fn env(&self) -> RuleEnv;
    fn config(&self) -> &Config;

    /// Number of cores probes may use (indexes `0..cpu_count()`; 0 is the calling core).
    fn cpu_count(&self) -> usize;

    /// Monotonic time in nanoseconds.
    fn now_ns(&self) -> u64;

    /// A cycle counter (PMCCNTR_EL0, RDTSC) and its name, or `None` where there is none.
    fn cycles(&self) -> Option<u64>;

    /// The probe arena for `attr`, or why there is none here (e.g. MMU off).
    fn arena(&self, attr: MemAttr) -> Result<Arena, String>;

    /// Make the system-wide part of `v` effective on every core before the probes under it run
    /// (data caches, MTRRs), or say why it cannot be. Where a platform has only the default
    /// mapping it cannot change anything: other combinations are refused with the reason.
    fn set_variant(&self, v: &Variant) -> Result<(), String> {
        if v.is_default() {
            Ok(())
        } else {
            Err(format!("{} is not available on this platform", v.label()))
        }
    }

    /// The probe arena for `attr` mapped as `v` says (leaf size, shareability), or why there is
    /// none. Default: only the default mapping, through [`arena`](Platform::arena).
    fn arena_mapped(&self, attr: MemAttr, v: &Variant) -> Result<Arena, String> {
        if v.is_default() {
            self.arena(attr)
        } else {
            Err(format!("{} is not available on this platform", v.label()))
        }
    }

    /// The page-aligned window around the arena that `attr`'s alias under `v` maps with the
    /// same leaf size (2 MiB here), for read-only strides over many pages (`cost/tlb-stride`),
    /// or why there is none. Probes only read it: it may alias other memory of the image.
    fn arena_window(&self, _attr: MemAttr, v: &Variant) -> Result<(*const u8, usize), String> {
        Err(format!(
            "{}: no multi-page window around the arena on this platform",
            v.label()
        ))
    }

    /// The memory type accesses to `attr`'s arena actually get under `v`, where something other
    /// than the page tables takes part (x86: PAT × MTRR, Intel SDM Vol. 3A 13.5.2.2).
    fn effective_type(&self, _attr: MemAttr, _v: &Variant) -> Option<String> {
        None
    }

    /// Run `op` on the calling core with the fault guard armed. If a guarded instruction in `op`
    /// faults, the fault is returned and execution resumed after that instruction.
    fn guarded(&self, op: &mut dyn FnMut()) -> Option<RawFault>;

    /// Whether [`guarded`](Platform::guarded) can survive a fault: a guarded instruction that
    /// faults is caught, reported and resumed after. Where it cannot (an OS without a fault guard:
    /// macOS, Windows), a fault ends the process, so the families do not run probes whose rule
    /// says the access may fault ([`crate::suite::unguarded_skip`]).
    ///
    /// No default: every platform must say, and a wrapper around another platform must forward
    /// it (a wrong `true` would let a faulting probe end the run).
    fn catches_faults(&self) -> bool;

    /// Run `body(role)` on cores `cpus[role]` at once (role 0 may be the calling core), each
    /// entered after a common start barrier; return when all have finished, or report the cores
    /// that did not finish within `timeout_ms`.
    fn run_on(
        &self,
        cpus: &[usize],
        timeout_ms: u64,
        body: &(dyn Fn(usize) + Sync),
    ) -> Result<(), RunError>;

    /// Print a record (counted into the report's CRC).
    fn emit(&self, rec: &Record);

    /// Human-readable progress (never starts with `{`).
    fn progress(&self, msg: &str);
}
