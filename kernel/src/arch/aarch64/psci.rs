//! PSCI (Arm DEN 0022) calls through the conduit the DTB's `/psci` node names.

use core::arch::asm;

use super::boot::Conduit;

pub const CPU_ON: u64 = 0xc400_0003;
pub const CPU_OFF: u64 = 0x8400_0002;
pub const AFFINITY_INFO: u64 = 0xc400_0004;
/// AFFINITY_INFO: the core is off.
pub const AFF_OFF: i64 = 1;
pub const ALREADY_ON: i64 = -4;
pub const ON_PENDING: i64 = -5;
pub const SYSTEM_OFF: u64 = 0x8400_0008;

/// Make a PSCI call; returns x0 (a signed PSCI status for CPU_ON).
pub fn call(conduit: Conduit, func: u64, a1: u64, a2: u64, a3: u64) -> i64 {
    let r: u64;
    match conduit {
        // SAFETY: an SMCCC call: the firmware (or QEMU's built-in PSCI) may clobber x0-x17;
        // it touches no memory of ours.
        Conduit::Hvc => unsafe {
            asm!("hvc #0", inout("x0") func => r, inout("x1") a1 => _, inout("x2") a2 => _,
                 inout("x3") a3 => _, out("x4") _, out("x5") _, out("x6") _, out("x7") _,
                 out("x8") _, out("x9") _, out("x10") _, out("x11") _, out("x12") _,
                 out("x13") _, out("x14") _, out("x15") _, out("x16") _, out("x17") _,
                 options(nostack))
        },
        // SAFETY: as above, through SMC.
        Conduit::Smc => unsafe {
            asm!("smc #0", inout("x0") func => r, inout("x1") a1 => _, inout("x2") a2 => _,
                 inout("x3") a3 => _, out("x4") _, out("x5") _, out("x6") _, out("x7") _,
                 out("x8") _, out("x9") _, out("x10") _, out("x11") _, out("x12") _,
                 out("x13") _, out("x14") _, out("x15") _, out("x16") _, out("x17") _,
                 options(nostack))
        },
    }
    r as i64
}

/// Name of a PSCI return code.
pub fn status_name(code: i64) -> &'static str {
    match code {
        0 => "SUCCESS",
        -1 => "NOT_SUPPORTED",
        -2 => "INVALID_PARAMETERS",
        -3 => "DENIED",
        -4 => "ALREADY_ON",
        -5 => "ON_PENDING",
        -6 => "INTERNAL_FAILURE",
        -7 => "NOT_PRESENT",
        -8 => "DISABLED",
        -9 => "INVALID_ADDRESS",
        _ => "unknown",
    }
}
