//! Board `uefi`: PCs and Arm servers booted through UEFI. The loader (`uefi-loader/`, the
//! `\EFI\BOOT\BOOT*.EFI` application) does everything that needs the firmware, calls
//! ExitBootServices and jumps to this kernel's UEFI entry with a [`handover::Handover`] block:
//! boot arguments, memory map, ACPI RSDP, the heap it reserved, the EFI system table. From there
//! on this is the same kernel as on every other board (`kmain`, the arch's SMP, paging, traps).
//!
//! - x86-64 (`x86_64.rs`): `boot/x86_64/uefi_entry.S` replaces the firmware's page tables and
//!   GDT with the PVH entry's, then the `pc` board's path: COM1, the arch's boot-core setup
//!   (GDT/IDT, PAT aliases, MADT + INIT-SIPI-SIPI), `kmain`.
//! - AArch64 (`aarch64.rs`): `boot/aarch64/uefi_entry.S` turns the firmware's MMU and caches
//!   off and joins the shared entry; the hardware comes from ACPI (SPCR, MADT GICC, FADT).

#[cfg(target_arch = "x86_64")]
#[path = "x86_64.rs"]
mod arch_entry;

#[cfg(target_arch = "aarch64")]
#[path = "aarch64.rs"]
mod arch_entry;

pub use arch_entry::*;

use alloc::string::String;

use handover::Handover;

/// Copy the loader's notes into error records (queued: they follow `begin`).
fn queue_notes(h: &Handover) {
    for line in String::from_utf8_lossy(h.notes()).lines() {
        if !line.trim().is_empty() {
            crate::kmain::queue_boot_error("uefi", line.trim().into());
        }
    }
}
