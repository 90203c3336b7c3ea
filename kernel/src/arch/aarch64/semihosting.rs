//! Arm semihosting (Arm "Semihosting for AArch32 and AArch64", version 3): `HLT #0xF000` with the
//! operation in w0 and a parameter block address in x1. QEMU implements it with `-semihosting`;
//! without it (and on real hardware without a debugger) the HLT is an undefined instruction.

use core::arch::asm;

const SYS_CLOCK: u64 = 0x10;
const SYS_EXIT: u64 = 0x18;
/// ADP_Stopped_ApplicationExit: with SYS_EXIT's extended form, the second word is the status.
const ADP_STOPPED_APPLICATION_EXIT: u64 = 0x20026;

/// Whether semihosting answers: a SYS_CLOCK call under the fault guard (an undefined-instruction
/// exception means no semihosting). Needs the exception vectors installed.
///
/// Only the fault decides. The value returned is not checked against SYS_CLOCK (0x10): SYS_CLOCK
/// answers centiseconds since the emulator started, which *is* 0x10 when the probe runs 160 ms
/// in — a slow (loaded) host hit that and took QEMU for the real board.
pub fn available() -> bool {
    let mut op = || {
        // SAFETY: SYS_CLOCK takes no parameter block and only returns a value in x0; the HLT is
        // registered in the fault guard's table, so if it is undefined here execution resumes
        // after it (and the guard reports the fault).
        unsafe {
            asm!(
                "21: hlt #0xf000",
                "22:",
                ".pushsection atomprobe_guard, \"aR\"",
                ".balign 4",
                ".long 21b - .",
                ".long 22b - .",
                ".popsection",
                inout("x0") SYS_CLOCK => _,
                in("x1") 0u64,
                options(nostack)
            );
        }
    };
    super::exceptions::guarded(&mut op).is_none()
}

/// SYS_EXIT with a status (QEMU's process exits with `code & 0xff`). Returns only if
/// semihosting did not end the emulator.
pub fn exit(code: u32) {
    let block: [u64; 2] = [ADP_STOPPED_APPLICATION_EXIT, u64::from(code)];
    // SAFETY: SYS_EXIT reads the two-word parameter block at x1, which lives on this stack
    // for the duration of the call; without semihosting the HLT traps (unexpected fault dump).
    unsafe {
        asm!(
            "hlt #0xf000",
            inout("x0") SYS_EXIT => _,
            in("x1") block.as_ptr(),
            options(nostack, readonly)
        );
    }
}
