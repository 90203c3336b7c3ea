//! PL011 UART (Arm PrimeCell UART, DDI 0183): transmit only, polled.
//!
//! QEMU's PL011 works without initialisation; the real Raspberry Pi 4 needs [`init`] (baud rate
//! divisors from the UART reference clock, 8N1, FIFOs on).

use core::sync::atomic::{AtomicUsize, Ordering};

const DR: usize = 0x00;
const FR: usize = 0x18;
const IBRD: usize = 0x24;
const FBRD: usize = 0x28;
const LCRH: usize = 0x2c;
const CR: usize = 0x30;
const ICR: usize = 0x44;

const FR_BUSY: u32 = 1 << 3;
const FR_TXFF: u32 = 1 << 5;
const LCRH_FEN: u32 = 1 << 4;
const LCRH_WLEN8: u32 = 0b11 << 5;
const CR_UARTEN: u32 = 1 << 0;
const CR_TXE: u32 = 1 << 8;
const CR_RXE: u32 = 1 << 9;

static BASE: AtomicUsize = AtomicUsize::new(0);

/// Use the PL011 at `base` (identity-mapped MMIO) from now on.
pub fn set_base(base: usize) {
    BASE.store(base, Ordering::Relaxed);
}

pub fn base() -> usize {
    BASE.load(Ordering::Relaxed)
}

fn reg(off: usize) -> *mut u32 {
    (base() + off) as *mut u32
}

fn read(off: usize) -> u32 {
    // SAFETY: `base()` is the PL011's MMIO block (set at boot from the DTB or the board's
    // known address); its registers are 32-bit and always readable.
    unsafe { reg(off).read_volatile() }
}

fn write(off: usize, v: u32) {
    // SAFETY: as in `read`; the registers written here have no memory side effects.
    unsafe { reg(off).write_volatile(v) }
}

/// Program 8N1 with FIFOs at `baud` from a `clock_hz` reference clock (PL011 TRM 3.3.6:
/// divisor = clock / (16 × baud), fraction in 1/64ths, rounded).
pub fn init(clock_hz: u32, baud: u32) {
    if base() == 0 {
        return;
    }
    write(CR, 0);
    while read(FR) & FR_BUSY != 0 {
        core::hint::spin_loop();
    }
    write(LCRH, 0); // flush the transmit FIFO
    write(ICR, 0x7ff);
    let div64 = (u64::from(clock_hz) * 4 + u64::from(baud) / 2) / u64::from(baud); // ×64/16
    write(IBRD, (div64 >> 6) as u32);
    write(FBRD, (div64 & 0x3f) as u32);
    write(LCRH, LCRH_WLEN8 | LCRH_FEN);
    write(CR, CR_UARTEN | CR_TXE | CR_RXE);
}

/// Send bytes, waiting while the transmit FIFO is full.
pub fn write_bytes(bytes: &[u8]) {
    if base() == 0 {
        return;
    }
    for &b in bytes {
        while read(FR) & FR_TXFF != 0 {
            core::hint::spin_loop();
        }
        write(DR, u32::from(b));
    }
}
