//! Board `uefi` on x86-64: entered from `boot/x86_64/uefi_entry.S` on our own page tables.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;

use handover::{CmdlineSource, Handover};
use probes::record::RunStatus;
use uart_16550::SerialPort;
use x86_64::instructions::port::Port;

use crate::{arch, BootInfo};

core::arch::global_asm!(
    include_str!("../../../../boot/x86_64/uefi_entry.S"),
    options(att_syntax)
);

pub const NAME: &str = "uefi-x86_64";

/// COM1's I/O base (the console on PCs with a serial port; OVMF mirrors its own output there).
const COM1: u16 = 0x3f8;
/// QEMU `-device isa-debug-exit,iobase=0xf4,iosize=0x04` (profile `pc-uefi`): writing v exits
/// with (v << 1) | 1. On a real PC the port is unused and the write does nothing.
const DEBUG_EXIT_PORT: u16 = 0xf4;
const EXIT_COMPLETE: u32 = 0x10;
const EXIT_ABORTED: u32 = 0x11;
/// The loader reserves the heap below 3 GiB (inside the kernel's identity map, outside the
/// MMIO hole); anything else is refused.
const MAPPED_RAM_END: u64 = 3 << 30;

fn com1() -> SerialPort {
    // SAFETY: 0x3f8 is COM1 on PCs; the port holds no state beyond the device itself, so a
    // fresh handle per use is fine. Callers serialise through the console lock.
    unsafe { SerialPort::new(COM1) }
}

/// Raw bytes to COM1.
pub fn console_write(bytes: &[u8]) {
    let mut port = com1();
    for &b in bytes {
        port.send_raw(b);
    }
}

/// Leave QEMU through isa-debug-exit; on a real PC (no such device) park the core.
pub fn exit(status: RunStatus) -> ! {
    let code = match status {
        RunStatus::Complete => EXIT_COMPLETE,
        RunStatus::Aborted => EXIT_ABORTED,
    };
    let mut port: Port<u32> = Port::new(DEBUG_EXIT_PORT);
    // SAFETY: port 0xf4 is the debug-exit device under QEMU and unused on PCs.
    unsafe { port.write(code) };
    arch::halt()
}

fn fail(what: &str) -> ! {
    console_write(b"atomprobe: ");
    console_write(what.as_bytes());
    console_write(b"\r\n");
    exit(RunStatus::Aborted)
}

/// Rust entry on the boot core, from `uefi_entry.S`, with the handover block's physical address
/// (identity-mapped below 4 GiB: the loader allocated it there).
#[no_mangle]
extern "C" fn uefi_entry64(handover: u64) -> ! {
    com1().init();
    // Exceptions are printed from here on, even before the heap exists (issue 11).
    arch::load_early_idt();
    if handover == 0 || handover >= MAPPED_RAM_END {
        fail("UEFI entry without a usable handover block");
    }
    // SAFETY: the loader wrote a Handover at this address (EfiLoaderData, never given to the
    // heap) and does not run any more; it is identity-mapped by our tables.
    let h: &'static Handover = unsafe { &*(handover as *const Handover) };
    if !h.is_valid() {
        fail("the handover block has the wrong magic or version (loader and kernel differ)");
    }
    if h.heap_len == 0 || h.heap_base + h.heap_len > MAPPED_RAM_END {
        fail("the loader reserved no heap below 3 GiB");
    }
    // SAFETY: the loader reserved this range as EfiLoaderData for us alone, inside the identity
    // map; nothing else (handover, image, trampoline) lies in it.
    unsafe { crate::heap::init(h.heap_base as usize, h.heap_len as usize) };
    super::queue_notes(h);

    arch::init_boot_cpu(h.rsdp);

    let mut platform = BTreeMap::new();
    let mut fact = |k: &str, v: String| {
        platform.insert(String::from(k), v);
    };
    fact("entry", "uefi".into());
    fact(
        "firmware",
        String::from_utf8_lossy(h.firmware()).into_owned(),
    );
    fact(
        "cmdline_source",
        CmdlineSource::from_u32(h.cmdline_source).name().into(),
    );
    fact("handover", format!("{handover:#x}"));
    fact("rsdp", format!("{:#x}", h.rsdp));
    fact("ram_bytes", format!("{}", h.usable_bytes()));
    fact("kernel", format!("{:#x}+{:#x}", h.image_base, h.image_len));
    fact("heap", format!("{:#x}+{:#x}", h.heap_base, h.heap_len));
    fact(
        "ap_trampoline",
        if h.trampoline != 0 {
            format!("{:#x} (reserved by the loader)", h.trampoline)
        } else {
            "not reserved by the loader".into()
        },
    );
    crate::kmain(BootInfo {
        cmdline: String::from_utf8_lossy(h.cmdline()).trim().into(),
        platform,
    })
}
