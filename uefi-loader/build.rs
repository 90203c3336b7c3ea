//! The loader embeds the kernel ELF (board `uefi`, built first by `atomprobe image`), named by
//! `ATOMPROBE_UEFI_KERNEL`. Without it (e.g. `cargo clippy` of the loader alone) the loader is
//! built with `cfg(no_kernel)` and, if booted, says it has no kernel and returns to the firmware.

fn main() {
    println!("cargo:rustc-check-cfg=cfg(no_kernel)");
    println!("cargo:rerun-if-env-changed=ATOMPROBE_UEFI_KERNEL");
    match std::env::var("ATOMPROBE_UEFI_KERNEL") {
        Ok(p) if !p.is_empty() => println!("cargo:rerun-if-changed={p}"),
        _ => println!("cargo:rustc-cfg=no_kernel"),
    }
}
