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
        // ---- x86-64 (board pc) -------------------------------------------------------------
        "x86_64" => {
            let script = format!("{manifest}/../boot/x86_64/linker.ld");
            println!("cargo:rerun-if-changed={script}");
            println!("cargo:rerun-if-changed={manifest}/../boot/x86_64/entry.S");
            println!("cargo:rerun-if-changed={manifest}/../boot/x86_64/trampoline.S");
            println!("cargo:rustc-link-arg-bins=-T{script}");
            // x86_64-unknown-none links a static PIE by default; QEMU's PVH loader applies no
            // relocations, so link a fixed-address executable at the script's addresses instead
            // (the PIC code links fine into it; the 32-bit entry needs absolute addresses).
            println!("cargo:rustc-link-arg-bins=--no-pie");
        }
        // ---- aarch64 (boards virt, rpi4) ---------------------------------------------------
        "aarch64" => {
            // Every aarch64 board links boot/aarch64/image.ld through a small per-board script
            // that sets KERNEL_BASE (INCLUDE is resolved through -L).
            let board = if env::var_os("CARGO_FEATURE_BOARD_RPI4").is_some() {
                "rpi4/rpi4.ld"
            } else {
                "aarch64/virt.ld"
            };
            let boot = format!("{manifest}/../boot");
            for f in [
                "aarch64/image.ld",
                "aarch64/virt.ld",
                "aarch64/entry.S",
                "rpi4/rpi4.ld",
            ] {
                println!("cargo:rerun-if-changed={boot}/{f}");
            }
            println!("cargo:rustc-link-arg-bins=-L{boot}/aarch64");
            println!("cargo:rustc-link-arg-bins=-T{boot}/{board}");
        }
        _ => {}
    }
}
