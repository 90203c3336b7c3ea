//! The atomprobe UEFI loader (`\EFI\BOOT\BOOTX64.EFI`, `\EFI\BOOT\BOOTAA64.EFI`).
//!
//! It does what needs the firmware and nothing else: reads the boot arguments (load options,
//! else `\atomprobe\cmdline.txt` on its own volume), finds the ACPI RSDP and the GOP
//! framebuffer, loads the embedded kernel ELF (board `uefi`, the same kernel as every other
//! board) at its physical addresses, reserves the kernel's heap (and, on x86, the AP trampoline
//! page below 1 MiB) as EfiLoaderData so no firmware data lives there, calls ExitBootServices
//! (the `uefi` crate retries once on a stale map key, as Linux does) and jumps to the kernel
//! with the [`handover::Handover`] block. Why a loader and not the kernel built as a PE image:
//! ARCHITECTURE.md ("UEFI").
#![cfg_attr(target_os = "uefi", no_std)]
#![cfg_attr(target_os = "uefi", no_main)]

#[cfg(target_os = "uefi")]
mod efi;

/// On a host target this binary only explains itself (the workspace builds every member).
#[cfg(not(target_os = "uefi"))]
fn main() {
    let _ = handover::VERSION;
    eprintln!(
        "atomprobe-uefi is a UEFI application: build it with --target x86_64-unknown-uefi or \
         aarch64-unknown-uefi (`atomprobe image --board uefi` does)"
    );
    std::process::exit(2);
}
