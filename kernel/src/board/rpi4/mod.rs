//! Raspberry Pi 4 (BCM2711, 4 × Cortex-A72): QEMU `raspi4b` and the real board.
//!
//! - Image: raw `kernel8.img` with the arm64 header, linked for 0x80000 (boot/rpi4/rpi4.ld);
//!   firmware may load it elsewhere (`kernel_address=`, 0x200000 on some versions): entry.S
//!   then moves it to 0x80000 first. Core 0 enters at EL2 and drops to EL1 (entry.S).
//! - Console: PL011 UART0 at 0xFE201000 (ARM physical address in the default low-peripheral
//!   mode). The DTB names it by its VideoCore bus address (0x7e201000), so its `reg` is not
//!   used. GPIO 14/15 are switched to ALT0 (TXD0/RXD0) and the baud divisors programmed from
//!   the 48 MHz UART clock recent firmware sets up (115200 8N1); QEMU accepts the same set-up.
//! - Memory and cores: from the DTB when x0 points at one, else the known layout (first
//!   960 MiB of RAM, 4 cores released through the spin table at 0xe0/0xe8/0xf0).
//!
//! **QEMU or the real board?** Two facts decide, both observed at boot: (1) the real firmware
//! always passes a DTB in x0 to a kernel with the arm64 header, while QEMU's `raspi4b` passes
//! none unless `-dtb` is given (x0 = 0x100, PLATFORM-FACTS); (2) semihosting answers only under
//! QEMU with `-semihosting` (on the board HLT is undefined and the fault guard catches it).
//! So: no DTB, or semihosting answers → `qemu-raspi4b`; a DTB and no semihosting → `rpi4`.
//! A QEMU run with `-dtb` but without `-semihosting` would be named `rpi4` — it then also has no
//! way to report an exit status, just like the board.
//!
//! Exit: semihosting SYS_EXIT where it answers; otherwise (the board) print the end and park.

use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};

use probes::record::RunStatus;

use crate::arch::{self, pl011, semihosting, CpuDesc, EnableMethod};

/// `begin.board`: decided at boot (see the module docs).
pub struct BoardName;

impl fmt::Display for BoardName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if REAL_BOARD.load(Ordering::Relaxed) {
            "rpi4"
        } else {
            "qemu-raspi4b"
        })
    }
}

pub const NAME: BoardName = BoardName;

static REAL_BOARD: AtomicBool = AtomicBool::new(false);

const UART0: usize = 0xFE20_1000;
const GPIO: usize = 0xFE20_0000;
const GPFSEL1: usize = 0x04;
/// BCM2711 pull-up/down control for GPIO 0-15, two bits per pin.
const GPIO_PUP_PDN_CNTRL_REG0: usize = 0xe4;
const UART_CLOCK_HZ: u32 = 48_000_000;
const BAUD: u32 = 115_200;

/// GIC-400 distributor and CPU interface, ARM physical addresses in the default low-peripheral
/// mode (BCM2711 ARM peripherals, "GIC-400" at 0xFF84_0000 + 0x1000 / + 0x2000; the DTB's
/// `arm,gic-400` node names them 0x40041000/0x40042000 behind /soc's ranges, which map
/// 0x4000_0000 to 0xFF80_0000; QEMU's bcm2838 puts them at the same place). Used to wake idle
/// cores from WFI (`arch::aarch64::gic`, which checks each core's path before relying on it).
pub const GIC: Option<(usize, usize)> = Some((0xFF84_1000, 0xFF84_2000));

/// RAM when there is no DTB: the first 960 MiB, below the VideoCore's share on every model.
pub const FALLBACK_MEMORY: &[(usize, usize)] = &[(0, 0x3c00_0000)];

/// Spin-table release slots of cores 1-3 (the armstub's and QEMU's; 0xd8 is core 0's).
const SPIN_SLOTS: [u64; 3] = [0xe0, 0xe8, 0xf0];

/// The same slots, kept clear of the heap when there is no DTB to say so.
pub const FALLBACK_SPIN_SLOTS: &[u64] = &SPIN_SLOTS;

/// Memory the firmware uses when there is no DTB to reserve it: the armstub and its spin table
/// in the first page (the real firmware adds `/memreserve/ 0x0 0x1000` to the DTB it passes).
pub const FIRMWARE_RESERVED: &[(u64, u64)] = &[(0, 0x1000)];

/// UART0 (PL011) for entry.S's messages before any Rust runs; the firmware has set it up when
/// `enable_uart=1` (and QEMU's needs no set-up).
pub const EARLY_UART: usize = UART0;

fn gpio_rmw(off: usize, mask: u32, val: u32) {
    let r = (GPIO + off) as *mut u32;
    // SAFETY: BCM2711 GPIO block, identity-mapped MMIO (the MMU is still off at this point);
    // only the bits of GPIO 14/15 change.
    unsafe { r.write_volatile((r.read_volatile() & !mask) | val) };
}

/// UART0 on GPIO 14 (TXD0) / 15 (RXD0), 115200 8N1. Set up once, at boot before the DTB is
/// read (`None`); the DTB's console (`Some`: Debian's `stdout-path` names the mini UART) is not
/// taken, UART0 stays.
pub fn console_setup(from_dtb: Option<usize>) -> usize {
    if from_dtb.is_some() {
        return UART0;
    }
    // GPFSEL1: FSEL14 bits 14:12, FSEL15 bits 17:15; ALT0 = 0b100.
    gpio_rmw(GPFSEL1, 0b111_111 << 12, 0b100_100 << 12);
    // No pull on TXD0 (bits 29:28 = 00), pull-up on RXD0 (bits 31:30 = 01).
    gpio_rmw(GPIO_PUP_PDN_CNTRL_REG0, 0b1111 << 28, 0b01 << 30);
    pl011::set_base(UART0);
    pl011::init(UART_CLOCK_HZ, BAUD);
    UART0
}

/// Cores when there is no DTB: 0-3, secondaries on the spin table.
pub fn fallback_cpus() -> Vec<CpuDesc> {
    let mut v = alloc::vec![CpuDesc {
        mpidr: 0,
        method: EnableMethod::Other("boot core".into()),
    }];
    for (i, &slot) in SPIN_SLOTS.iter().enumerate() {
        v.push(CpuDesc {
            mpidr: i as u64 + 1,
            method: EnableMethod::SpinTable(slot),
        });
    }
    v
}

/// QEMU or the real board (see the module docs).
pub fn identify(has_dtb: bool, semihosting: bool) {
    REAL_BOARD.store(has_dtb && !semihosting, Ordering::Relaxed);
}

pub fn console_write(bytes: &[u8]) {
    pl011::write_bytes(bytes);
}

pub fn exit(status: RunStatus) -> ! {
    let code = match status {
        RunStatus::Complete => 0,
        _ => 1,
    };
    if arch::facts_semihosting() {
        semihosting::exit(code);
    }
    console_write(
        b"atomprobe: run finished; parking all cores (power-cycle the board to run again)\r\n",
    );
    // A firmware with PSCI would power off here; the stock Pi 4 armstub has none.
    arch::psci_system_off();
    arch::halt()
}

/// Stop after a fatal error before boot finished (`crate::fatal::early`): whether semihosting
/// answers is not known yet (finding out takes the fault guard), so park.
pub fn exit_early() -> ! {
    console_write(b"atomprobe: parked (no exit status can be reported this early)\r\n");
    arch::halt()
}
