//! The instructions probes execute, per architecture. Each guarded access registers itself in
//! the fault guard's table (see [`crate::guard`]).

use crate::rules::AccessKind;

/// One access the `fault` family tries at every placement and attribute.
pub struct FaultCase {
    /// Instruction form as printed in `probe.op` (`ldr`, `ldxr`, `lock cmpxchg`, …).
    pub op: &'static str,
    /// Access size in bits used by the alignment rules (128 for LDXP/LDP pairs, CMPXCHG16B).
    pub width: u32,
    pub access: AccessKind,
    /// Perform the access once at `addr`. Every instruction that may fault is guarded.
    ///
    /// # Safety
    /// `addr .. addr + width/8` must lie in a probe arena, and the fault guard must be armed on
    /// the calling core (a fault otherwise ends the run).
    pub run: unsafe fn(addr: *mut u8),
}

#[cfg(target_arch = "aarch64")]
pub mod aarch64;
#[cfg(target_arch = "aarch64")]
pub use aarch64 as native;

#[cfg(target_arch = "x86_64")]
pub mod x86_64;
#[cfg(target_arch = "x86_64")]
pub use x86_64 as native;

/// `asm!` template text (a string literal) for the status tail of a guarded block in the
/// tear/excl families: the fall-through path branches to local label `done`; a fault resumes at
/// local label `resume`, which sets the block's `st` operand to 1 (status 1 = faulted) and falls
/// into `done`. The block declares `st` as a general-purpose register operand (written whole on
/// aarch64, as its low 32 bits on x86-64) and registers its guarded instructions with
/// `guard_entry!(fault = …, resume = <resume>)`.
#[cfg(target_arch = "aarch64")]
macro_rules! set_status_on_fault {
    (resume = $resume:literal, done = $done:literal) => {
        concat!("b ", $done, "f\n", $resume, ": mov {st}, #1\n", $done, ":")
    };
}
/// `asm!` template text for the status tail of a guarded block (x86-64 form of the aarch64
/// definition above).
#[cfg(target_arch = "x86_64")]
macro_rules! set_status_on_fault {
    (resume = $resume:literal, done = $done:literal) => {
        concat!(
            "jmp ",
            $done,
            "f\n",
            $resume,
            ": mov {st:e}, 1\n",
            $done,
            ":"
        )
    };
}

// The tear/excl/cost families' instructions (suite::{tear, excl, cost}), on every OS: where there
// is no guard table (non-ELF), the families skip every probe that may fault (`catches_faults`).
#[cfg(target_arch = "aarch64")]
pub mod cost_aarch64;
#[cfg(target_arch = "aarch64")]
pub mod excl_aarch64;
#[cfg(target_arch = "aarch64")]
pub mod tear_aarch64;
#[cfg(target_arch = "aarch64")]
pub use {cost_aarch64 as cost, excl_aarch64 as excl, tear_aarch64 as tear};
#[cfg(target_arch = "x86_64")]
pub mod cost_x86_64;
#[cfg(target_arch = "x86_64")]
pub mod excl_x86_64;
#[cfg(target_arch = "x86_64")]
pub mod tear_x86_64;
#[cfg(target_arch = "x86_64")]
pub use {cost_x86_64 as cost, excl_x86_64 as excl, tear_x86_64 as tear};

/// The `fault` family's accesses for the architecture this is compiled for.
pub fn fault_cases() -> &'static [FaultCase] {
    #[cfg(any(target_arch = "aarch64", target_arch = "x86_64"))]
    {
        native::FAULT_CASES
    }
    #[cfg(not(any(target_arch = "aarch64", target_arch = "x86_64")))]
    {
        &[]
    }
}
