//! Link the image with its board's linker script. One arm per target architecture; each arm only
//! emits link arguments for the binary (`cargo:rustc-link-arg-bins=`).

use std::env;

fn main() {
    let manifest = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os != "none" {
        // Host build of the kernel crate (it only prints how to build it): nothing to link.
        return;
    }
    match arch.as_str() {
        // ---- x86-64 (boards pc, uefi) -------------------------------------------------------
        "x86_64" => {
            let script = format!("{manifest}/../boot/x86_64/linker.ld");
            println!("cargo:rerun-if-changed={script}");
            for f in ["entry.S", "uefi_entry.S", "trampoline.S"] {
                println!("cargo:rerun-if-changed={manifest}/../boot/x86_64/{f}");
            }
            if env::var_os("CARGO_FEATURE_BOARD_UEFI").is_some() {
                // uefi: a static PIE (the target's default) linked at 0; the UEFI loader puts it
                // wherever the firmware has free pages below 3 GiB and applies its
                // R_X86_64_RELATIVE relocations (.rela.dyn), so no fixed address must be free.
                println!("cargo:rustc-link-arg-bins=--defsym=KERNEL_BASE=0x0");
                println!("cargo:rustc-link-arg-bins=-euefi_start64");
                // Tables in the asm (trap stubs, guard entries) hold absolute addresses in
                // read-only sections; the loader patches them before anything runs, and the
                // kernel maps everything writable, so allow those relocations there.
                println!("cargo:rustc-link-arg-bins=-znotext");
            } else {
                // pc: QEMU's PVH loader applies no relocations and the 32-bit entry needs
                // absolute addresses: a fixed-address executable at 1 MiB (the PIC code links
                // fine into it).
                println!("cargo:rustc-link-arg-bins=--defsym=KERNEL_BASE=0x100000");
                println!("cargo:rustc-link-arg-bins=-epvh_start32");
                println!("cargo:rustc-link-arg-bins=--no-pie");
            }
            println!("cargo:rustc-link-arg-bins=-T{script}");
        }
        // ---- aarch64 (boards virt, rpi4) ---------------------------------------------------
        "aarch64" => {
            // Every aarch64 board links boot/aarch64/image.ld through a small per-board script
            // that sets KERNEL_BASE (INCLUDE is resolved through -L).
            let uefi = env::var_os("CARGO_FEATURE_BOARD_UEFI").is_some();
            let board = if env::var_os("CARGO_FEATURE_BOARD_RPI4").is_some() {
                "rpi4/rpi4.ld"
            } else if uefi {
                "aarch64/uefi.ld"
            } else {
                "aarch64/virt.ld"
            };
            let boot = format!("{manifest}/../boot");
            for f in [
                "aarch64/image.ld",
                "aarch64/virt.ld",
                "aarch64/uefi.ld",
                "aarch64/entry.S",
                "aarch64/uefi_entry.S",
                "rpi4/rpi4.ld",
            ] {
                println!("cargo:rerun-if-changed={boot}/{f}");
            }
            println!("cargo:rustc-link-arg-bins=-L{boot}/aarch64");
            println!("cargo:rustc-link-arg-bins=-T{boot}/{board}");
            if uefi {
                // uefi: a static PIE the UEFI loader relocates (R_AARCH64_RELATIVE), entered at
                // uefi_start; absolute addresses in read-only tables are patched by the loader.
                println!("cargo:rustc-link-arg-bins=-pie");
                println!("cargo:rustc-link-arg-bins=-znotext");
                println!("cargo:rustc-link-arg-bins=-euefi_start");
            }
        }
        _ => {}
    }
}
