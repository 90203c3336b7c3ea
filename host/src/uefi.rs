//! The UEFI boot path (issue 12) on the host side: build the kernel for board `uefi` and the
//! loader that embeds it, per architecture (`BOOTX64.EFI`, `BOOTAA64.EFI`); the disk image of
//! `atomprobe image --board uefi` (written by [`crate::image::uefi`]); and, for the `pc-uefi`
//! and `virt-uefi` profiles, that same image plus the firmware on QEMU's command line.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use probes::litmus::parse::FileArch;

use crate::image::uefi::{esp_files, write_esp_image};
use crate::kernel::{self, kernel_target_dir};
use crate::profile::{Board, Profile};
use crate::{RunError, RunOpts};

/// Cargo package of the loader (`uefi-loader/`).
pub const LOADER_PACKAGE: &str = "atomprobe-uefi";

/// One architecture of the UEFI image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UefiArch {
    /// The QEMU profile whose `target`/`feature` build this architecture's kernel.
    pub board: Board,
    /// Rust target of the loader.
    pub loader_target: &'static str,
    /// Removable-media boot file name (UEFI 2.10 3.5.1.1).
    pub boot_file: &'static str,
}

pub const X86_64: UefiArch = UefiArch {
    board: Board::PcUefi,
    loader_target: "x86_64-unknown-uefi",
    boot_file: "BOOTX64.EFI",
};
pub const AARCH64: UefiArch = UefiArch {
    board: Board::VirtUefi,
    loader_target: "aarch64-unknown-uefi",
    boot_file: "BOOTAA64.EFI",
};

/// `cargo build -p atomprobe-uefi --target T` with the kernel to embed.
pub fn loader_build_command(
    root: &Path,
    arch: UefiArch,
    kernel_elf: &Path,
    release: bool,
) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root).arg("build");
    if release {
        cmd.arg("--release");
    }
    cmd.args(["-p", LOADER_PACKAGE, "--target", arch.loader_target])
        .arg("--target-dir")
        .arg(kernel_target_dir(root))
        .env("ATOMPROBE_UEFI_KERNEL", kernel_elf);
    cmd
}

/// Build `arch`'s kernel (unless `kernel_elf` is given) and its loader; the loader's bytes.
pub fn build_app(
    root: &Path,
    arch: UefiArch,
    kernel_elf: Option<&Path>,
    release: bool,
) -> Result<Vec<u8>, RunError> {
    let elf = match kernel_elf {
        Some(k) => k
            .canonicalize()
            .map_err(|e| RunError::Input(format!("kernel {}: {e}", k.display())))?,
        None => {
            let (profile, _) = Profile::load(arch.board, Some(root))?;
            kernel::build_kernel(root, &profile, release)?
        }
    };
    let elf = stripped(&elf);
    kernel::run_cargo(
        loader_build_command(root, arch, &elf, release),
        "UEFI loader build",
    )?;
    let efi = kernel_target_dir(root)
        .join(arch.loader_target)
        .join(if release { "release" } else { "debug" })
        .join(format!("{LOADER_PACKAGE}.efi"));
    std::fs::read(&efi).map_err(|e| RunError::Build(format!("cannot read {}: {e}", efi.display())))
}

/// A copy of `elf` without debug information (the release kernel keeps it for symbolising a
/// dump; embedded in the loader it would only make the stick slower to read: 9 MB instead of
/// under 1 MB), made with `llvm-objcopy --strip-debug` from the toolchain's `llvm-tools`
/// component (rust-toolchain.toml). Section headers stay (the loader needs `.rela.dyn`). Without
/// llvm-objcopy, the ELF as it is (with a warning).
pub fn stripped(elf: &Path) -> PathBuf {
    let out = elf.with_extension("stripped");
    let Some(objcopy) = llvm_objcopy() else {
        eprintln!(
            "atomprobe: warning: llvm-objcopy not found (rustup component add llvm-tools): \
             embedding {} with its debug information",
            elf.display()
        );
        return elf.to_path_buf();
    };
    let tmp = out.with_extension(format!("stripped-{}", std::process::id()));
    let ok = Command::new(&objcopy)
        .arg("--strip-debug")
        .arg(elf)
        .arg(&tmp)
        .status()
        .is_ok_and(|s| s.success())
        && (same_contents(&tmp, &out) && std::fs::remove_file(&tmp).is_ok()
            || std::fs::rename(&tmp, &out).is_ok());
    if ok {
        out
    } else {
        let _ = std::fs::remove_file(&tmp);
        eprintln!(
            "atomprobe: warning: {} --strip-debug {} failed: embedding it with its debug information",
            objcopy.display(),
            elf.display()
        );
        elf.to_path_buf()
    }
}

/// Whether two files have the same bytes. An unchanged stripped kernel is not rewritten: a new
/// modification time would make cargo rebuild the loader that embeds it.
fn same_contents(a: &Path, b: &Path) -> bool {
    matches!((std::fs::read(a), std::fs::read(b)), (Ok(x), Ok(y)) if x == y)
}

/// `llvm-objcopy` of the active toolchain (`<sysroot>/lib/rustlib/<host>/bin/`).
fn llvm_objcopy() -> Option<PathBuf> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    let sysroot = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    std::fs::read_dir(sysroot.join("lib/rustlib"))
        .ok()?
        .flatten()
        .map(|d| d.path().join("bin/llvm-objcopy"))
        .find(|p| p.is_file())
}

/// Both boot files: (`BOOTX64.EFI`, `BOOTAA64.EFI`). `kernel` replaces the kernel of the
/// architecture it was built for (ELF machine), the other is built.
pub fn build_apps(
    root: &Path,
    kernel: Option<&Path>,
    release: bool,
) -> Result<(Vec<u8>, Vec<u8>), RunError> {
    let (mut x64_kernel, mut aa64_kernel) = (None, None);
    if let Some(k) = kernel {
        let bytes = std::fs::read(k)
            .map_err(|e| RunError::Input(format!("--kernel {}: {e}", k.display())))?;
        if crate::elfimage::is_aarch64(&bytes) {
            aa64_kernel = Some(k);
        } else {
            x64_kernel = Some(k);
        }
    }
    Ok((
        build_app(root, X86_64, x64_kernel, release)?,
        build_app(root, AARCH64, aa64_kernel, release)?,
    ))
}

/// `atomprobe image --board uefi`: both loaders (each embedding its kernel) and cmdline.txt, as
/// a GPT disk image (`--out FILE`) or a folder for an existing FAT32 stick (`--out DIR/`).
pub fn cmd_image_uefi(a: crate::cli::ImageArgs) -> Result<i32, RunError> {
    use crate::image::{check_out_file, out_is_dir, uefi as esp};
    let as_dir = out_is_dir(&a.out);
    // Bad input first, before the (slow) builds.
    if !as_dir {
        check_out_file(&a.out)?;
    }
    if a.firmware.is_some() {
        return Err(RunError::Usage(
            "--firmware is for --board rpi4; a UEFI stick needs no firmware files".into(),
        ));
    }
    // With --litmus each architecture's kernel runs the files of that architecture (checked
    // before any build: no usable test, no image); cmdline.txt starts with `probes=litmus`.
    let litmus = if a.litmus.is_empty() {
        None
    } else {
        Some(crate::image::litmus::ImageLitmus::prepare(
            &a.litmus,
            a.kinds.as_deref(),
            a.states.as_deref(),
            &[FileArch::X86_64, FileArch::AArch64],
        )?)
    };
    let root = crate::require_root()?;
    let (x64, aa64, append) = match &litmus {
        None => {
            let (x64, aa64) = build_apps(&root, a.kernel.as_deref(), !a.debug)?;
            (x64, aa64, a.append.clone())
        }
        Some(l) => {
            let xk = l.build_kernel(&root, FileArch::X86_64, X86_64.board, "image-uefi-x86_64")?;
            let ak = l.build_kernel(
                &root,
                FileArch::AArch64,
                AARCH64.board,
                "image-uefi-aarch64",
            )?;
            (
                build_app(&root, X86_64, xk.as_deref(), true)?,
                build_app(&root, AARCH64, ak.as_deref(), true)?,
                crate::litmus_cmd::litmus_append(Some(&a.append)),
            )
        }
    };
    let files = esp::esp_files(x64, aa64, &append);
    if as_dir {
        esp::write_esp_dir(&a.out, &files)?;
        crate::outln!(
            "wrote {}, {}, {} under {} (copy them to a FAT32 stick)",
            esp::BOOTX64_EFI,
            esp::BOOTAA64_EFI,
            esp::CMDLINE_TXT,
            a.out.display()
        );
    } else {
        let layout = esp::write_esp_image(&a.out, &files)?;
        crate::outln!(
            "wrote {}: GPT disk, EFI System Partition at byte {} ({} bytes) with {}, {}, {}; \
             flash it with dd, balenaEtcher or Rufus (DD mode)",
            a.out.display(),
            layout.partition_start,
            layout.partition_bytes,
            esp::BOOTX64_EFI,
            esp::BOOTAA64_EFI,
            esp::CMDLINE_TXT
        );
    }
    if let Some(l) = &litmus {
        crate::outln!("{}: {}", esp::BOOTX64_EFI, l.describe(FileArch::X86_64));
        crate::outln!("{}: {}", esp::BOOTAA64_EFI, l.describe(FileArch::AArch64));
        if let Some(r) = l.refused_line() {
            crate::outln!("litmus: {r}");
        }
        crate::outln!("{}: {append}", esp::CMDLINE_TXT);
    }
    Ok(0)
}

/// The firmware and disk arguments of a `uefi-disk` profile for `disk` (the vars copy is next to
/// it: [`vars_copy_path`]).
pub fn firmware_and_disk_args(profile: &Profile, disk: &Path) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(code) = &profile.firmware_code {
        args.extend([
            "-drive".into(),
            format!("if=pflash,format=raw,unit=0,readonly=on,file={code}"),
        ]);
        if profile.firmware_vars.is_some() {
            args.extend([
                "-drive".into(),
                format!(
                    "if=pflash,format=raw,unit=1,file={}",
                    vars_copy_path(disk).display()
                ),
            ]);
        }
    } else if let Some(bios) = &profile.bios {
        args.extend(["-bios".into(), bios.clone()]);
    }
    let d = disk.display().to_string();
    args.extend(profile.disk.iter().map(|a| a.replace("{disk}", &d)));
    args
}

/// Where a run keeps its writable copy of the firmware's variable store.
pub fn vars_copy_path(disk: &Path) -> PathBuf {
    disk.with_extension("vars.fd")
}

/// A disk image (and variable store copy) made for one run, deleted when dropped.
pub struct RunDisk {
    pub disk: PathBuf,
    vars: Option<PathBuf>,
}

impl RunDisk {
    /// Build both boot files and write the disk image with `opts.append` in its cmdline.txt, in
    /// the temp dir; copy the firmware's variable store template next to it. `kernel` is the
    /// profile's architecture's kernel (built or `--kernel`); the other one is built.
    pub fn build(profile: &Profile, opts: &RunOpts, kernel: &Path) -> Result<RunDisk, RunError> {
        let root = crate::require_root()?;
        for f in [
            &profile.firmware_code,
            &profile.firmware_vars,
            &profile.bios,
        ]
        .into_iter()
        .flatten()
        {
            if !Path::new(f).is_file() {
                return Err(RunError::Profile(format!(
                    "UEFI firmware {f} not found (Debian/Ubuntu: apt-get install ovmf \
                     qemu-efi-aarch64), or edit qemu/{}.toml",
                    opts.board
                )));
            }
        }
        let (x64, aa64) = build_apps(&root, Some(kernel), opts.release)?;
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let disk = std::env::temp_dir().join(format!(
            "atomprobe-{}-{}-{}.img",
            opts.board,
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let files = esp_files(x64, aa64, opts.append.as_deref().unwrap_or(""));
        let mut made = RunDisk { disk, vars: None };
        write_esp_image(&made.disk, &files)?;
        if let Some(vars) = &profile.firmware_vars {
            let copy = vars_copy_path(&made.disk);
            std::fs::copy(vars, &copy).map_err(|e| {
                RunError::Io(format!("cannot copy {vars} to {}: {e}", copy.display()))
            })?;
            made.vars = Some(copy);
        }
        Ok(made)
    }
}

impl Drop for RunDisk {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.disk);
        if let Some(v) = &self.vars {
            let _ = std::fs::remove_file(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firmware_args_for_both_profiles() {
        let disk = Path::new("/tmp/u.img");
        let pc = Profile::parse(Board::PcUefi.builtin_profile(), "t").unwrap();
        let a = firmware_and_disk_args(&pc, disk).join(" ");
        assert!(
            a.contains(
                "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd"
            ),
            "{a}"
        );
        assert!(
            a.contains("if=pflash,format=raw,unit=1,file=/tmp/u.vars.fd"),
            "{a}"
        );
        assert!(a.ends_with("-drive format=raw,file=/tmp/u.img"), "{a}");
        let virt = Profile::parse(Board::VirtUefi.builtin_profile(), "t").unwrap();
        let a = firmware_and_disk_args(&virt, disk).join(" ");
        assert!(
            a.starts_with("-bios /usr/share/qemu-efi-aarch64/QEMU_EFI.fd"),
            "{a}"
        );
        assert!(a.contains("file=/tmp/u.img"), "{a}");
    }

    #[test]
    fn loader_command_embeds_the_kernel() {
        let cmd = loader_build_command(Path::new("/r"), AARCH64, Path::new("/k.elf"), true);
        let s = format!("{cmd:?}");
        assert!(
            s.contains("\"-p\" \"atomprobe-uefi\" \"--target\" \"aarch64-unknown-uefi\""),
            "{s}"
        );
        assert!(s.contains("ATOMPROBE_UEFI_KERNEL=\"/k.elf\""), "{s}");
    }
}
