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

// The tear/excl/cost families' instructions (suite::{tear, excl, cost}); ELF targets only, since
// their guard entries use ELF sections.
#[cfg(all(target_arch = "aarch64", any(target_os = "none", target_os = "linux")))]
pub mod cost_aarch64;
#[cfg(all(target_arch = "aarch64", any(target_os = "none", target_os = "linux")))]
pub mod excl_aarch64;
#[cfg(all(target_arch = "aarch64", any(target_os = "none", target_os = "linux")))]
pub mod tear_aarch64;
#[cfg(all(target_arch = "aarch64", any(target_os = "none", target_os = "linux")))]
pub use {cost_aarch64 as cost, excl_aarch64 as excl, tear_aarch64 as tear};
#[cfg(all(target_arch = "x86_64", any(target_os = "none", target_os = "linux")))]
pub mod cost_x86_64;
#[cfg(all(target_arch = "x86_64", any(target_os = "none", target_os = "linux")))]
pub mod excl_x86_64;
#[cfg(all(target_arch = "x86_64", any(target_os = "none", target_os = "linux")))]
pub mod tear_x86_64;
#[cfg(all(target_arch = "x86_64", any(target_os = "none", target_os = "linux")))]
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
