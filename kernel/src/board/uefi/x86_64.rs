//! Board `uefi` on x86-64: entered from `boot/x86_64/uefi_entry.S` on our own page tables.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use core::sync::atomic::{AtomicU16, Ordering};

use acpi::address::AddressSpace;
use acpi::spcr::{Spcr, SpcrInterfaceType};
use acpi::AcpiTables;

use handover::Handover;
use probes::record::RunStatus;
use x86_64::instructions::port::Port;

use crate::arch::serial::COM1;
use crate::{arch, BootInfo};

core::arch::global_asm!(
    include_str!("../../../../boot/x86_64/uefi_entry.S"),
    options(att_syntax)
);

pub const NAME: &str = "uefi-x86_64";

/// QEMU `-device isa-debug-exit,iobase=0xf4,iosize=0x04` (profile `pc-uefi`): writing v exits
/// with (v << 1) | 1. On a real PC the port is unused and the write does nothing.
const DEBUG_EXIT_PORT: u16 = 0xf4;
const EXIT_COMPLETE: u32 = 0x10;
const EXIT_ABORTED: u32 = 0x11;
/// The loader reserves the heap below 3 GiB (inside the kernel's identity map, outside the
/// MMIO hole); anything else is refused.
const MAPPED_RAM_END: u64 = 3 << 30;
/// `uefi_entry.S` identity-maps the first 4 GiB (RAM and the MMIO hole, where PCI display
/// BARs such as QEMU's VGA at 0x8000_0000 and real GPUs' apertures usually lie); a framebuffer
/// above is not drawn on.
const SCREEN_MAPPED_END: u64 = 1 << 32;

/// A second console port, from the ACPI SPCR when it names a 16550 at another I/O port
/// (0: none). Set once on the boot core before `kmain`.
static SPCR_PORT: AtomicU16 = AtomicU16::new(0);

/// Raw bytes to COM1 (and to the SPCR's port, when it is another one).
pub fn console_write(bytes: &[u8]) {
    arch::serial::write(COM1, bytes);
    let spcr = SPCR_PORT.load(Ordering::Relaxed);
    if spcr != 0 {
        arch::serial::write(spcr, bytes);
    }
}

/// The SPCR's console (ACPI SPCR, Microsoft "Serial Port Console Redirection Table"): used as a
/// second console when it is a 16550/16450 at an I/O port other than COM1. Returns the fact.
fn spcr_console(rsdp: u64) -> String {
    if rsdp == 0 || rsdp >= 1 << 32 {
        return "no SPCR (no RSDP below 4 GiB)".into();
    }
    // SAFETY: the RSDP comes from the firmware's configuration table; tables are identity-mapped.
    let tables = match unsafe { AcpiTables::from_rsdp(arch::AcpiIdentityMap, rsdp as usize) } {
        Ok(t) => t,
        Err(e) => return format!("no SPCR (ACPI tables: {e:?})"),
    };
    let Ok(spcr) = tables.find_table::<Spcr>() else {
        return "no SPCR table".into();
    };
    let kind = spcr.interface_type();
    let Some(Ok(addr)) = spcr.base_address() else {
        return format!("SPCR {kind:?} without a base address: not used");
    };
    let is_16550 = matches!(
        kind,
        SpcrInterfaceType::Full16550 | SpcrInterfaceType::Full16450
    );
    // The rate the firmware (or the BMC's serial-over-LAN) uses; ours when it names none.
    let (baud, baud_from) = match spcr.baud_rate() {
        Some(b) => (b.get(), "the SPCR's rate"),
        None => (arch::serial::DEFAULT_BAUD, "the SPCR names no rate"),
    };
    match (is_16550, addr.address_space) {
        (true, AddressSpace::SystemIo) if addr.address <= u64::from(u16::MAX) => {
            let port = addr.address as u16;
            match arch::serial::init(port, baud) {
                Ok(()) if port == COM1 => {
                    format!("SPCR names COM1, set to {baud} 8N1 ({baud_from})")
                }
                Ok(()) => {
                    SPCR_PORT.store(port, Ordering::Relaxed);
                    format!("SPCR 16550 at I/O {port:#x}, used as well, {baud} 8N1 ({baud_from})")
                }
                Err(why) => format!("SPCR 16550 at I/O {port:#x} not used: {why}"),
            }
        }
        _ => format!(
            "SPCR {kind:?} at {:?} {:#x}: not used (only 16550 I/O ports are)",
            addr.address_space, addr.address
        ),
    }
}

/// The end of the run: the "run finished" line, QEMU's isa-debug-exit (profile `pc-uefi`); on a
/// real PC (no such device) the write does nothing and `shutdown=` decides (see `finish`).
pub fn exit(status: RunStatus) -> ! {
    let code = match status {
        RunStatus::Complete => EXIT_COMPLETE,
        RunStatus::Aborted => EXIT_ABORTED,
    };
    super::finish(status, || {
        let mut port: Port<u32> = Port::new(DEBUG_EXIT_PORT);
        // SAFETY: port 0xf4 is the debug-exit device under QEMU and unused on PCs.
        unsafe { port.write(code) };
    })
}

/// Stop after a fatal error before boot finished (`crate::fatal::early`): the heap may not exist,
/// so no "run finished" line (it is formatted); isa-debug-exit needs nothing set up (QEMU), on a
/// PC the write does nothing and the core parks.
pub fn exit_early() -> ! {
    let mut port: Port<u32> = Port::new(DEBUG_EXIT_PORT);
    // SAFETY: port 0xf4 is the debug-exit device under QEMU and unused on PCs.
    unsafe { port.write(EXIT_ABORTED) };
    arch::halt()
}

/// When ResetSystem is not available: nothing else powers a PC off without ACPI's AML (the
/// `\_S5` sleep type lives in the DSDT); the core parks.
pub fn power_off_fallback() {}

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
    // Nothing can be printed when this fails; the reason becomes the `console` fact below.
    let com1 = arch::serial::init(COM1, arch::serial::DEFAULT_BAUD);
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
    super::remember_system_table(h);

    arch::init_boot_cpu(h.rsdp);
    let spcr = spcr_console(h.rsdp);

    let mut platform = BTreeMap::new();
    let mut fact = |k: &str, v: String| {
        platform.insert(String::from(k), v);
    };
    super::handover_facts(h, handover, &mut fact);
    let com1 = arch::serial::com1_fact(com1);
    fact("console", format!("{com1}; {spcr}"));
    fact("ram_bytes", format!("{}", h.usable_bytes()));
    fact("kernel", format!("{:#x}+{:#x}", h.image_base, h.image_len));
    fact("heap", format!("{:#x}+{:#x}", h.heap_base, h.heap_len));
    let (framebuffer, screen) = super::framebuffer_facts(h, SCREEN_MAPPED_END);
    fact("framebuffer", framebuffer);
    fact("screen", screen);
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
