//! 16550-compatible UARTs at x86 I/O ports: a PC's COM ports and the console an ACPI SPCR
//! names. The register work is the maintained `uart_16550` crate's; this module only keeps which
//! ports answered, so the console never spins on a port with no UART behind it.
//!
//! Handles are made per write, so the fatal path can print without any lock but the console's.
//! A fresh handle does not know whether `init` found FIFOs, so bytes go one at a time, each
//! after the transmitter holding register is empty (16550 data sheet, LSR bit 5 "THRE"): a
//! FIFO-less 16450 (an SPCR may name one) loses nothing. (The old `uart_16550` 0.3 did the same.)

use alloc::format;
use alloc::string::String;
use core::sync::atomic::{AtomicU16, Ordering};

use uart_16550::backend::PioBackend;
use uart_16550::{BaudRate, Config, InitError, Uart16550};

/// COM1's I/O base: the serial console on PCs (both x86 boards; OVMF mirrors its own output
/// there).
pub const COM1: u16 = 0x3f8;

/// The baud rate when the firmware names none: 115200 8N1, what `atomprobe capture` reads by
/// default and what Linux consoles use (`console=ttyS0,115200`).
pub const DEFAULT_BAUD: u32 = 115_200;

/// I/O bases of the UARTs that answered [`init`] (0: a free slot). COM1 and one SPCR console
/// are all the boards use.
static PRESENT: [AtomicU16; 2] = [const { AtomicU16::new(0) }; 2];

fn handle(base: u16) -> Option<Uart16550<PioBackend>> {
    // SAFETY: callers pass the I/O base of a PC COM port or of the 16550 the firmware's SPCR
    // names; a handle only performs `in`/`out` on base..base+7, and console writers are
    // serialised by the console lock (the fatal path takes it by force after a bounded wait).
    unsafe { Uart16550::new_port(base) }.ok()
}

/// Program the UART at `base` for `baud` 8N1 with FIFOs, interrupts off. `Err` says why the
/// port is not used: no UART answered (the crate writes and reads back the scratch register) or
/// `baud` has no divisor of the 1.8432 MHz clock. Allocates nothing: boards call it before the
/// heap exists.
pub fn init(base: u16, baud: u32) -> Result<(), &'static str> {
    let mut uart = handle(base).ok_or("the port range runs past I/O 0xffff")?;
    let config = Config {
        baud_rate: BaudRate::from_integer(baud),
        ..Config::DEFAULT
    };
    uart.init(config).map_err(|e| match e {
        InitError::DeviceNotPresent => "no UART answers (scratch register test)",
        _ => "the baud rate has no divisor of the 1.8432 MHz clock",
    })?;
    let free = PRESENT.iter().find(|s| {
        let v = s.load(Ordering::Relaxed);
        v == 0 || v == base
    });
    if let Some(slot) = free {
        slot.store(base, Ordering::Relaxed);
    }
    Ok(())
}

/// The `console` fact for COM1 brought up with [`DEFAULT_BAUD`]: its settings, or why nothing
/// comes out of it (`init`, what [`init`] returned).
pub fn com1_fact(init: Result<(), &str>) -> String {
    match init {
        Ok(()) => format!("COM1 (I/O {COM1:#x}), {DEFAULT_BAUD} 8N1"),
        Err(why) => format!("COM1 (I/O {COM1:#x}) not used: {why}"),
    }
}

/// Bytes to the UART at `base`; nothing if [`init`] found no UART there.
pub fn write(base: u16, bytes: &[u8]) {
    if !PRESENT.iter().any(|s| s.load(Ordering::Relaxed) == base) {
        return;
    }
    let Some(mut uart) = handle(base) else {
        return;
    };
    for &b in bytes {
        uart.send_bytes_exact(&[b]);
    }
}
