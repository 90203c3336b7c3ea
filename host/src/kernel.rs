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

/// Where [`build_kernel`] keeps its board's copy of the ELF: boards of one target (virt and
/// rpi4) build to the same cargo output path, so each build is copied aside at once, and a later
/// build for the other board does not swap the kernel under a run.
pub fn board_elf_path(root: &Path, profile: &Profile, release: bool) -> PathBuf {
    let mut p = kernel_elf_path(root, profile, release);
    let board = profile.feature.trim_start_matches("board-");
    p.set_file_name(format!("{KERNEL_PACKAGE}-{board}"));
    p
}

/// Run a cargo build command; its output goes to our stderr. `what` names it in the error
/// (e.g. "kernel build"), with the command line.
pub fn run_cargo(mut cmd: Command, what: &str) -> Result<(), RunError> {
    let shown = format!("{cmd:?}");
    let status = cmd
        .status()
        .map_err(|e| RunError::Build(format!("cannot start cargo ({shown}): {e}")))?;
    if !status.success() {
        return Err(RunError::Build(format!(
            "{what} failed ({status}): {shown}"
        )));
    }
    Ok(())
}

/// Build the kernel for `profile`; returns the path of the board's copy of the ELF
/// ([`board_elf_path`]). Cargo's output goes to our stderr.
pub fn build_kernel(root: &Path, profile: &Profile, release: bool) -> Result<PathBuf, RunError> {
    run_cargo(build_command(root, profile, release), "kernel build")?;
    let elf = kernel_elf_path(root, profile, release);
    if !elf.is_file() {
        return Err(RunError::Build(format!(
            "kernel build succeeded but {} does not exist",
            elf.display()
        )));
    }
    let copy = board_elf_path(root, profile, release);
    // Copy then rename: a run reading the previous copy never sees a half-written file.
    let tmp = copy.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::copy(&elf, &tmp)
        .and_then(|_| std::fs::rename(&tmp, &copy))
        .map_err(|e| {
            RunError::Build(format!(
                "cannot copy {} to {}: {e}",
                elf.display(),
                copy.display()
            ))
        })?;
    Ok(copy)
}

/// Turn the kernel ELF into what `-kernel` takes for this profile: the ELF itself, or a flat
/// arm64 Image written next to it (`<elf>.img`, or in the temp dir when that folder is not
/// writable). Returns the path to give QEMU.
pub fn prepare_image(elf_path: &Path, profile: &Profile) -> Result<PathBuf, RunError> {
    match profile.image {
        ImageKind::Elf => Ok(elf_path.to_path_buf()),
        ImageKind::Arm64Image if is_arm64_image_file(elf_path) => {
            // Already a flat arm64 Image (e.g. kernel8.img read back from an SD-card image).
            Ok(elf_path.to_path_buf())
        }
        ImageKind::UefiDisk => Err(RunError::Image(
            "a uefi-disk profile boots the disk image (crate::uefi::RunDisk), not -kernel".into(),
        )),
        ImageKind::Arm64Image => {
            let img = flat_arm64_image(elf_path)?;
            let img_path = elf_path.with_extension("img");
            if std::fs::write(&img_path, &img.bytes).is_ok() {
                return Ok(img_path);
            }
            // Next to the ELF is not writable (a --kernel from elsewhere): use the temp dir.
            let name = img_path
                .file_name()
                .unwrap_or_else(|| "kernel.img".as_ref());
            let tmp = std::env::temp_dir().join(format!(
                "atomprobe-{}-{}",
                std::process::id(),
                name.to_string_lossy()
            ));
            std::fs::write(&tmp, &img.bytes).map_err(|e| {
                RunError::Image(format!(
                    "cannot write the flat image next to the kernel ({}) nor to {}: {e}",
                    img_path.display(),
                    tmp.display()
                ))
            })?;
            Ok(tmp)
        }
    }
}

/// Whether `path` is a flat arm64 Image rather than an ELF: the header's magic `ARM\x64` at
/// offset 0x38 (Linux Documentation/arch/arm64/booting.rst, "Call the kernel image").
pub fn is_arm64_image_file(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 0x3c];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && !head.starts_with(b"\x7fELF")
        && &head[0x38..0x3c] == b"ARM\x64"
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

/// Offset of the arm64 Image header's `text_offset` field (little-endian u64).
pub const TEXT_OFFSET_FIELD: usize = 8;
/// Largest `--text-offset` accepted: the load address must stay inside the first bank of every
/// board (the Pi 4's first bank ends below 1 GiB).
pub const MAX_TEXT_OFFSET: u64 = 0x3000_0000;

/// Check a `--text-offset` value: a multiple of 4 KiB from 0 to [`MAX_TEXT_OFFSET`].
pub fn check_text_offset(off: u64) -> Result<(), String> {
    if !off.is_multiple_of(0x1000) || off > MAX_TEXT_OFFSET {
        return Err(format!(
            "text offset {off:#x}: accepted is a multiple of 0x1000 from 0 to {MAX_TEXT_OFFSET:#x} \
             (e.g. 0x80000, 0x200000, 0x1000000)"
        ));
    }
    Ok(())
}

/// Set the arm64 Image header's `text_offset` in `img` (Linux Documentation/arch/arm64/
/// booting.rst: the loader places the image at a 2 MiB-aligned RAM base + text_offset; QEMU
/// `virt` and `raspi4b` load it there and enter it at its first byte), so a run emulates firmware
/// that loads `kernel8.img` elsewhere than the image's link address.
pub fn patch_text_offset(img: &mut [u8], off: u64) -> Result<(), String> {
    check_text_offset(off)?;
    if img.get(elfimage::ARM64_MAGIC_OFFSET..elfimage::ARM64_MAGIC_OFFSET + 4)
        != Some(&elfimage::ARM64_MAGIC[..])
    {
        return Err("the image has no arm64 Image header (magic ARM\\x64 at 0x38)".into());
    }
    img[TEXT_OFFSET_FIELD..TEXT_OFFSET_FIELD + 8].copy_from_slice(&off.to_le_bytes());
    Ok(())
}

/// A copy of the arm64 Image at `image` with `text_offset` set to `off`, written next to it
/// (`<name>.text-<off>.img`, or in the temp dir when that folder is not writable).
pub fn image_with_text_offset(image: &Path, off: u64) -> Result<PathBuf, RunError> {
    let mut bytes = std::fs::read(image)
        .map_err(|e| RunError::Image(format!("cannot read {}: {e}", image.display())))?;
    patch_text_offset(&mut bytes, off)
        .map_err(|e| RunError::Image(format!("{}: {e}", image.display())))?;
    let name = format!(
        "{}.text-{off:#x}.img",
        image.file_stem().unwrap_or_default().to_string_lossy()
    );
    let next_to = image.with_file_name(&name);
    if std::fs::write(&next_to, &bytes).is_ok() {
        return Ok(next_to);
    }
    let tmp = std::env::temp_dir().join(format!("atomprobe-{}-{name}", std::process::id()));
    std::fs::write(&tmp, &bytes).map_err(|e| {
        RunError::Image(format!(
            "cannot write the text-offset copy next to {} nor to {}: {e}",
            image.display(),
            tmp.display()
        ))
    })?;
    Ok(tmp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Board;

    #[test]
    fn text_offset_patch() {
        let mut img = vec![0u8; 64];
        img[0x38..0x3c].copy_from_slice(b"ARM\x64");
        img[8..16].copy_from_slice(&0x80000u64.to_le_bytes());
        patch_text_offset(&mut img, 0x20_0000).unwrap();
        assert_eq!(&img[8..16], &0x20_0000u64.to_le_bytes());
        assert_eq!(&img[0x38..0x3c], b"ARM\x64");
        for bad in [0x123, 0x4000_0000] {
            let e = patch_text_offset(&mut img, bad).unwrap_err();
            assert!(e.contains("multiple of 0x1000"), "{e}");
        }
        let mut raw = vec![0u8; 64];
        let e = patch_text_offset(&mut raw, 0x20_0000).unwrap_err();
        assert!(e.contains("no arm64 Image header"), "{e}");
        let mut short = vec![0u8; 8];
        assert!(patch_text_offset(&mut short, 0x20_0000).is_err());
    }

    #[test]
    fn flat_arm64_images_are_told_from_elfs() {
        let dir = tempfile::tempdir().unwrap();
        let mut image = vec![0u8; 0x40];
        image[0x38..0x3c].copy_from_slice(b"ARM\x64");
        let img = dir.path().join("kernel8.img");
        std::fs::write(&img, &image).unwrap();
        assert!(is_arm64_image_file(&img));
        // An ELF, a short file, a missing file: not an Image (the ELF path flattens them).
        let mut elf = image.clone();
        elf[..4].copy_from_slice(b"\x7fELF");
        std::fs::write(&img, &elf).unwrap();
        assert!(!is_arm64_image_file(&img));
        std::fs::write(&img, &image[..0x3b]).unwrap();
        assert!(!is_arm64_image_file(&img));
        assert!(!is_arm64_image_file(&dir.path().join("missing")));
        // prepare_image passes an Image through unchanged on an Image board.
        std::fs::write(&img, &image).unwrap();
        let p = Profile::parse(Board::Raspi4b.builtin_profile(), "t").unwrap();
        assert_eq!(prepare_image(&img, &p).unwrap(), img);
    }

    #[test]
    fn boards_of_one_target_get_their_own_elf() {
        let root = Path::new("/r");
        let p = |b: Board| Profile::parse(b.builtin_profile(), "t").unwrap();
        let virt = board_elf_path(root, &p(Board::Virt), true);
        let rpi = board_elf_path(root, &p(Board::Raspi4b), true);
        assert_eq!(
            virt,
            Path::new("/r/target/kernel/aarch64-unknown-none/release/atomprobe-kernel-virt")
        );
        assert_eq!(
            rpi,
            Path::new("/r/target/kernel/aarch64-unknown-none/release/atomprobe-kernel-rpi4")
        );
        assert_eq!(
            kernel_elf_path(root, &p(Board::Pc), false),
            Path::new("/r/target/kernel/x86_64-unknown-none/debug/atomprobe-kernel")
        );
        let cmd = format!("{:?}", build_command(root, &p(Board::Raspi4b), true));
        for part in [
            "\"build\" \"--release\" \"-p\" \"atomprobe-kernel\"",
            "\"--target\" \"aarch64-unknown-none\" \"--features\" \"board-rpi4\"",
            "\"--target-dir\" \"/r/target/kernel\"",
        ] {
            assert!(cmd.contains(part), "{cmd} lacks {part}");
        }
    }
}
