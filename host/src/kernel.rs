//! Building the kernel for a board and preparing what QEMU's `-kernel` (or a Pi's SD card) takes.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::elfimage;
use crate::profile::{ImageKind, Profile};
use crate::RunError;

/// Cargo package name of the image.
pub const KERNEL_PACKAGE: &str = "atomprobe-kernel";

/// Target directory for kernel builds, separate from the workspace's so a kernel build never
/// waits on an outer cargo holding the main target lock.
pub fn kernel_target_dir(root: &Path) -> PathBuf {
    root.join("target").join("kernel")
}

/// Path of the kernel ELF that [`build_kernel`] produces.
pub fn kernel_elf_path(root: &Path, profile: &Profile, release: bool) -> PathBuf {
    kernel_target_dir(root)
        .join(&profile.target)
        .join(if release { "release" } else { "debug" })
        .join(KERNEL_PACKAGE)
}

/// `cargo build -p atomprobe-kernel --target T --features F --target-dir target/kernel`.
pub fn build_command(root: &Path, profile: &Profile, release: bool) -> Command {
    // Under `cargo run`/`cargo test` CARGO names the very cargo that built us.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root).arg("build");
    if release {
        cmd.arg("--release");
    }
    cmd.args(["-p", KERNEL_PACKAGE, "--target", &profile.target])
        .args(["--features", &profile.feature])
        .arg("--target-dir")
        .arg(kernel_target_dir(root));
    cmd
}

/// Build the kernel for `profile`; returns the ELF path. Cargo's output goes to our stderr.
pub fn build_kernel(root: &Path, profile: &Profile, release: bool) -> Result<PathBuf, RunError> {
    let mut cmd = build_command(root, profile, release);
    let shown = format!("{cmd:?}");
    let status = cmd
        .status()
        .map_err(|e| RunError::Build(format!("cannot start cargo ({shown}): {e}")))?;
    if !status.success() {
        return Err(RunError::Build(format!(
            "kernel build failed ({status}): {shown}"
        )));
    }
    let elf = kernel_elf_path(root, profile, release);
    if !elf.is_file() {
        return Err(RunError::Build(format!(
            "kernel build succeeded but {} does not exist",
            elf.display()
        )));
    }
    Ok(elf)
}

/// Turn the kernel ELF into what `-kernel` takes for this profile: the ELF itself, or a flat
/// arm64 Image written next to it (`<elf>.img`). Returns the path to give QEMU.
pub fn prepare_image(elf_path: &Path, profile: &Profile) -> Result<PathBuf, RunError> {
    match profile.image {
        ImageKind::Elf => Ok(elf_path.to_path_buf()),
        ImageKind::Arm64Image => {
            let img_path = elf_path.with_extension("img");
            let img = flat_arm64_image(elf_path)?;
            std::fs::write(&img_path, &img.bytes).map_err(|e| {
                RunError::Image(format!("cannot write {}: {e}", img_path.display()))
            })?;
            Ok(img_path)
        }
    }
}

/// Read an aarch64 kernel ELF and flatten it; warns when the arm64 Image header is missing.
pub fn flat_arm64_image(elf_path: &Path) -> Result<elfimage::FlatImage, RunError> {
    let elf = std::fs::read(elf_path)
        .map_err(|e| RunError::Image(format!("cannot read kernel {}: {e}", elf_path.display())))?;
    if !elfimage::is_aarch64(&elf) {
        return Err(RunError::Image(format!(
            "{} is not an aarch64 ELF64 kernel (the board needs one to make an arm64 Image)",
            elf_path.display()
        )));
    }
    let img = elfimage::flatten(&elf)
        .map_err(|e| RunError::Image(format!("{}: {e}", elf_path.display())))?;
    if !img.has_arm64_header() {
        eprintln!(
            "atomprobe: warning: {} has no arm64 Image header (magic ARM\\x64 at 0x38): QEMU \
             will load it as a raw binary and pass no DTB",
            elf_path.display()
        );
    }
    Ok(img)
}
