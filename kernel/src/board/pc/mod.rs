//! Board `pc`: QEMU q35 (and, later, real PCs) entered through PVH.
//!
//! Boot flow: `boot/x86_64/entry.S` (32-bit PVH entry → long mode, identity map of the first
//! 4 GiB) calls [`pc_entry64`], which brings up COM1, reads the PVH start info (command line,
//! memory map, ACPI RSDP), gives the heap its memory, sets up this core's GDT/TSS/IDT through the
//! arch module and enters `kmain`.

mod boot;
pub mod pvh;

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;

use probes::record::RunStatus;
use x86_64::instructions::port::Port;

use crate::{arch, BootInfo};

pub const NAME: &str = "qemu-pc";

/// QEMU `-device isa-debug-exit,iobase=0xf4,iosize=0x04`: writing v exits with (v << 1) | 1.
const DEBUG_EXIT_PORT: u16 = 0xf4;
/// Exit codes written to the debug-exit port: QEMU exits 33 (complete) or 35 (aborted).
const EXIT_COMPLETE: u32 = 0x10;
const EXIT_ABORTED: u32 = 0x11;
/// Most heap the boot core takes from the memory map.
const HEAP_MAX: usize = 64 << 20;

/// Raw bytes to COM1.
pub fn console_write(bytes: &[u8]) {
    arch::serial::write(arch::serial::COM1, bytes);
}

/// Leave QEMU through isa-debug-exit; on hardware without it, park the core.
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

extern "C" {
    static __image_end: u8;
}

/// Rust entry on the boot core, called by `entry.S` in long mode with the PVH start info's
/// physical address (identity-mapped).
#[no_mangle]
extern "C" fn pc_entry64(start_info: u64) -> ! {
    // Nothing can be printed when this fails; the reason becomes the `console` fact below.
    let com1 = arch::serial::init(arch::serial::COM1, arch::serial::DEFAULT_BAUD);
    // Exceptions are printed from here on, even before the heap exists (issue 11).
    arch::load_early_idt();
    // Everything is copied out of the start info before the heap can overwrite it.
    let info = match pvh::StartInfo::read(start_info) {
        Ok(i) => i,
        Err(e) => {
            console_write(b"atomprobe: bad PVH start info: ");
            console_write(e.as_bytes());
            console_write(b"\r\n");
            exit(RunStatus::Aborted)
        }
    };
    // The linker script defines `__image_end` at the end of the loaded image (address only).
    let image_end = (&raw const __image_end) as u64;
    let (heap_start, heap_len) = info.heap_region(image_end, HEAP_MAX as u64);
    // SAFETY: the region is RAM of type 1 in the memory map, after the image, identity-mapped
    // by the entry code, and nothing else uses it (the start info was copied out above).
    unsafe { crate::heap::init(heap_start as usize, heap_len as usize) };

    arch::init_boot_cpu(info.rsdp);

    let mut platform = BTreeMap::new();
    platform.insert(String::from("entry"), String::from("pvh"));
    platform.insert(String::from("console"), arch::serial::com1_fact(com1));
    platform.insert(String::from("pvh_start_info"), format!("{start_info:#x}"));
    platform.insert(String::from("rsdp"), format!("{:#x}", info.rsdp));
    platform.insert(
        String::from("ram_bytes"),
        format!("{}", info.usable_bytes()),
    );
    platform.insert(
        String::from("heap"),
        format!("{heap_start:#x}+{heap_len:#x}"),
    );
    crate::kmain(BootInfo {
        cmdline: info.cmdline(),
        platform,
    })
}

/// Stop after a fatal error before boot finished (`crate::fatal::early`): isa-debug-exit needs
/// nothing set up, so leave with the aborted status as usual.
pub fn exit_early() -> ! {
    exit(RunStatus::Aborted)
}
