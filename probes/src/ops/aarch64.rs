//! aarch64 probe instructions for the `fault` family.
//!
//! `op` names the instruction form and `width` the access size, so `ldr` at width 16/32/64 is
//! LDRH / LDR Wt / LDR Xt, `str` likewise (STRH / STR Wt / STR Xt, storing zero), `ldxr` is
//! LDXRH / LDXR Wt / LDXR Xt followed by a store-exclusive of the loaded value to the same
//! address (both guarded; a faulting load skips the store).
//!
//! The 128-bit row: `ldp`/`stp` move two 64-bit registers (16 bytes), but their alignment
//! requirement is the element size (Arm ARM B2.5.2: for load/store pair the alignment check uses
//! the size of each element), so they carry `width` 64 — the unit the alignment rules and the
//! placements use. `ldxp` (LDXP Xt1, Xt2 then STXP) is a 128-bit single-copy exclusive whose
//! alignment requirement is the total size (B2.5.2), so it carries `width` 128.
//!
//! Every instruction that may fault is registered in the fault guard's table exactly as
//! [`crate::guard`] describes.

use core::arch::asm;

use super::FaultCase;
use crate::guard::guard_entry;
use crate::rules::AccessKind;

/// A single guarded instruction `$insn` with operands; resume right after it.
macro_rules! guarded_one {
    ($insn:literal, $($operands:tt)*) => {
        asm!(
            concat!("21: ", $insn),
            "22:",
            guard_entry!(fault = "21", resume = "22"),
            $($operands)*
        )
    };
}

/// A guarded load-exclusive / store-exclusive pair; a fault at either resumes after the pair.
macro_rules! guarded_pair {
    ($ld:literal, $st:literal, $($operands:tt)*) => {
        asm!(
            concat!("21: ", $ld),
            concat!("22: ", $st),
            "23:",
            guard_entry!(fault = "21", resume = "23"),
            guard_entry!(fault = "22", resume = "23"),
            $($operands)*
        )
    };
}

unsafe fn ldr16(a: *mut u8) {
    // SAFETY: the caller guarantees `a` is in a probe arena and the guard is armed.
    unsafe {
        guarded_one!("ldrh {v:w}, [{a}]", a = in(reg) a, v = out(reg) _, options(nostack, readonly))
    }
}
unsafe fn str16(a: *mut u8) {
    // SAFETY: as for `ldr16`; stores zero into the arena.
    unsafe { guarded_one!("strh wzr, [{a}]", a = in(reg) a, options(nostack)) }
}
unsafe fn ldxr16(a: *mut u8) {
    // SAFETY: as for `ldr16`; the store-exclusive writes back the value just loaded.
    unsafe {
        guarded_pair!("ldxrh {v:w}, [{a}]", "stxrh {s:w}, {v:w}, [{a}]",
            a = in(reg) a, v = out(reg) _, s = out(reg) _, options(nostack))
    }
}
unsafe fn ldr32(a: *mut u8) {
    // SAFETY: as for `ldr16`.
    unsafe {
        guarded_one!("ldr {v:w}, [{a}]", a = in(reg) a, v = out(reg) _, options(nostack, readonly))
    }
}
unsafe fn str32(a: *mut u8) {
    // SAFETY: as for `str16`.
    unsafe { guarded_one!("str wzr, [{a}]", a = in(reg) a, options(nostack)) }
}
unsafe fn ldxr32(a: *mut u8) {
    // SAFETY: as for `ldxr16`.
    unsafe {
        guarded_pair!("ldxr {v:w}, [{a}]", "stxr {s:w}, {v:w}, [{a}]",
            a = in(reg) a, v = out(reg) _, s = out(reg) _, options(nostack))
    }
}
unsafe fn ldr64(a: *mut u8) {
    // SAFETY: as for `ldr16`.
    unsafe {
        guarded_one!("ldr {v}, [{a}]", a = in(reg) a, v = out(reg) _, options(nostack, readonly))
    }
}
unsafe fn str64(a: *mut u8) {
    // SAFETY: as for `str16`.
    unsafe { guarded_one!("str xzr, [{a}]", a = in(reg) a, options(nostack)) }
}
unsafe fn ldxr64(a: *mut u8) {
    // SAFETY: as for `ldxr16`.
    unsafe {
        guarded_pair!("ldxr {v}, [{a}]", "stxr {s:w}, {v}, [{a}]",
            a = in(reg) a, v = out(reg) _, s = out(reg) _, options(nostack))
    }
}
unsafe fn ldp64(a: *mut u8) {
    // SAFETY: as for `ldr16`; reads 16 bytes (the arena has room, see `FaultCase::run`'s
    // caller, which places accesses at least a page before the arena's end).
    unsafe {
        guarded_one!("ldp {v1}, {v2}, [{a}]", a = in(reg) a, v1 = out(reg) _, v2 = out(reg) _,
            options(nostack, readonly))
    }
}
unsafe fn stp64(a: *mut u8) {
    // SAFETY: as for `ldp64`; stores 16 zero bytes.
    unsafe { guarded_one!("stp xzr, xzr, [{a}]", a = in(reg) a, options(nostack)) }
}
unsafe fn ldxp128(a: *mut u8) {
    // SAFETY: as for `ldxr16`, 16 bytes.
    unsafe {
        guarded_pair!("ldxp {v1}, {v2}, [{a}]", "stxp {s:w}, {v1}, {v2}, [{a}]",
            a = in(reg) a, v1 = out(reg) _, v2 = out(reg) _, s = out(reg) _, options(nostack))
    }
}

const fn case(
    op: &'static str,
    width: u32,
    access: AccessKind,
    run: unsafe fn(*mut u8),
) -> FaultCase {
    FaultCase {
        op,
        width,
        access,
        run,
    }
}

pub static FAULT_CASES: &[FaultCase] = &[
    case("ldr", 16, AccessKind::Load, ldr16),
    case("str", 16, AccessKind::Store, str16),
    case("ldxr", 16, AccessKind::Exclusive, ldxr16),
    case("ldr", 32, AccessKind::Load, ldr32),
    case("str", 32, AccessKind::Store, str32),
    case("ldxr", 32, AccessKind::Exclusive, ldxr32),
    case("ldr", 64, AccessKind::Load, ldr64),
    case("str", 64, AccessKind::Store, str64),
    case("ldxr", 64, AccessKind::Exclusive, ldxr64),
    case("ldp", 64, AccessKind::Load, ldp64),
    case("stp", 64, AccessKind::Store, stp64),
    case("ldxp", 128, AccessKind::Exclusive, ldxp128),
];
