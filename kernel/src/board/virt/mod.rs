//! QEMU `virt` (aarch64): PL011 console, everything else from the DTB QEMU always passes (x0),
//! exit through semihosting SYS_EXIT so QEMU's status says whether the run completed.

use alloc::vec::Vec;

use probes::record::RunStatus;

use crate::arch::{self, pl011, semihosting, CpuDesc};

pub const NAME: &str = "qemu-virt";

/// QEMU virt's PL011 (used if the DTB names none).
const UART_FALLBACK: usize = 0x0900_0000;

/// PL011 for entry.S's messages before any Rust runs.
pub const EARLY_UART: usize = UART_FALLBACK;

/// No firmware memory to keep clear without a DTB (QEMU always passes one).
pub const FIRMWARE_RESERVED: &[(u64, u64)] = &[];
pub const FALLBACK_SPIN_SLOTS: &[u64] = &[];

/// RAM if the DTB gives none: QEMU virt's RAM starts at 1 GiB; assume the 128 MiB minimum.
pub const FALLBACK_MEMORY: &[(usize, usize)] = &[(0x4000_0000, 128 << 20)];

/// No GIC wake-ups: idle cores power off through PSCI instead (see `arch::aarch64::smp`).
pub const GIC: Option<(usize, usize)> = None;

/// Choose the console UART (the DTB's if found); QEMU's PL011 needs no set-up.
pub fn console_setup(from_dtb: Option<usize>) -> usize {
    let base = from_dtb.unwrap_or(UART_FALLBACK);
    pl011::set_base(base);
    base
}

/// Cores when the DTB lists none: only the boot core is known.
pub fn fallback_cpus() -> Vec<CpuDesc> {
    Vec::new()
}

/// Nothing to tell apart on virt: it is always QEMU.
pub fn identify(_has_dtb: bool, _semihosting: bool) {}

pub fn console_write(bytes: &[u8]) {
    pl011::write_bytes(bytes);
}

/// Semihosting SYS_EXIT: 0 when the run completed, 1 when it was aborted. Without `-semihosting`
/// there is no way to pass a status: say so and power off through PSCI (status 0).
pub fn exit(status: RunStatus) -> ! {
    let code = match status {
        RunStatus::Complete => 0,
        _ => 1,
    };
    if arch::facts_semihosting() {
        semihosting::exit(code);
    }
    console_write(
        b"atomprobe: no semihosting (-semihosting missing): the exit status cannot report the \
          result; powering off through PSCI\r\n",
    );
    arch::psci_system_off();
    arch::halt()
}

/// Stop after a fatal error before boot finished (`crate::fatal::early`): whether semihosting
/// answers is not known yet (finding out takes the fault guard), so park.
pub fn exit_early() -> ! {
    console_write(b"atomprobe: parked (no exit status can be reported this early)\r\n");
    arch::halt()
}
