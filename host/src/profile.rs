//! QEMU board profiles: one plain TOML file per board in `qemu/` (`virt.toml`, `raspi4b.toml`,
//! `pc.toml`). They are read at run time from the workspace, so editing one needs no rebuild; a
//! copy is compiled in as a fallback for a tool used outside the repository.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The boards `atomprobe run` can boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Board {
    /// QEMU `virt` (aarch64).
    #[value(alias = "qemu-virt")]
    Virt,
    /// QEMU `raspi4b` (aarch64, Raspberry Pi 4 B model).
    #[value(alias = "qemu-raspi4b")]
    Raspi4b,
    /// QEMU `q35` PC (x86-64).
    #[value(alias = "qemu-pc")]
    Pc,
    /// QEMU `q35` + OVMF booting the UEFI disk image (x86-64).
    #[value(name = "pc-uefi")]
    PcUefi,
    /// QEMU `virt` + the aarch64 UEFI firmware booting the UEFI disk image.
    #[value(name = "virt-uefi")]
    VirtUefi,
}

impl Board {
    pub const ALL: [Board; 5] = [
        Board::Virt,
        Board::Raspi4b,
        Board::Pc,
        Board::PcUefi,
        Board::VirtUefi,
    ];

    /// The profile's file stem in `qemu/`.
    pub fn name(self) -> &'static str {
        match self {
            Board::Virt => "virt",
            Board::Raspi4b => "raspi4b",
            Board::Pc => "pc",
            Board::PcUefi => "pc-uefi",
            Board::VirtUefi => "virt-uefi",
        }
    }

    /// The built-in copy of the profile (the file as it was when the tool was compiled).
    pub fn builtin_profile(self) -> &'static str {
        match self {
            Board::Virt => include_str!("../../qemu/virt.toml"),
            Board::Raspi4b => include_str!("../../qemu/raspi4b.toml"),
            Board::Pc => include_str!("../../qemu/pc.toml"),
            Board::PcUefi => include_str!("../../qemu/pc-uefi.toml"),
            Board::VirtUefi => include_str!("../../qemu/virt-uefi.toml"),
        }
    }

    /// Parse a board name or alias (`virt`/`qemu-virt`, `raspi4b`/`qemu-raspi4b`, `pc`/`qemu-pc`).
    pub fn from_name(s: &str) -> Option<Board> {
        match s {
            "virt" | "qemu-virt" => Some(Board::Virt),
            "raspi4b" | "qemu-raspi4b" => Some(Board::Raspi4b),
            "pc" | "qemu-pc" => Some(Board::Pc),
            "pc-uefi" => Some(Board::PcUefi),
            "virt-uefi" => Some(Board::VirtUefi),
            _ => None,
        }
    }
}

impl fmt::Display for Board {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the kernel ELF is handed to QEMU's `-kernel`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum ImageKind {
    /// Flatten the ELF's loadable segments into a raw arm64 Image (see [`crate::elfimage`]).
    #[serde(rename = "arm64-image")]
    Arm64Image,
    /// Pass the ELF as is (x86 PVH).
    #[serde(rename = "elf")]
    Elf,
    /// The UEFI disk image of `atomprobe image --board uefi` (both loaders, `--append` in its
    /// `cmdline.txt`), booted by the profile's firmware from the profile's `disk` drive.
    #[serde(rename = "uefi-disk")]
    UefiDisk,
}

/// How the guest reports its status through QEMU's exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum ExitConvention {
    /// Arm semihosting SYS_EXIT: QEMU's status is the code (0 complete, 1 aborted).
    #[serde(rename = "semihosting")]
    Semihosting,
    /// `isa-debug-exit` at port 0xf4: the kernel writes 0x10 (complete) or 0x11 (aborted) and
    /// QEMU exits with `(v << 1) | 1`, i.e. 33 or 35.
    #[serde(rename = "isa-debug-exit")]
    IsaDebugExit,
}

impl fmt::Display for ExitConvention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExitConvention::Semihosting => "semihosting",
            ExitConvention::IsaDebugExit => "isa-debug-exit",
        })
    }
}

/// One board's QEMU profile, as written in `qemu/<board>.toml`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// What the image reports in `begin.board`.
    pub board: String,
    /// QEMU binary (looked up in `PATH`).
    pub qemu: String,
    /// Kernel Rust target.
    pub target: String,
    /// Kernel cargo feature selecting the board.
    pub feature: String,
    pub image: ImageKind,
    /// `-M` value.
    pub machine: String,
    /// Whether `--virtualization` (`-M <machine>,virtualization=on`) is accepted.
    #[serde(default)]
    pub virtualization: bool,
    /// Default `-cpu`; none = QEMU's default for the machine.
    #[serde(default)]
    pub cpu: Option<String>,
    /// Whether `--cpu` may be given.
    #[serde(default = "yes")]
    pub cpu_selectable: bool,
    /// Default `-smp`.
    pub smp: u32,
    /// The machine has exactly `smp` cores: no `-smp` is passed and `--smp` must equal it.
    #[serde(default)]
    pub smp_fixed: bool,
    /// `-m` value.
    pub memory: String,
    /// The fixed arguments (display, serial, monitor, exit device …).
    #[serde(default)]
    pub args: Vec<String>,
    pub exit: ExitConvention,
    /// Whether `-append` reaches the kernel on this board.
    #[serde(default = "yes")]
    pub append: bool,
    /// `uefi-disk`: the firmware's code, as a read-only pflash drive (OVMF_CODE_4M.fd).
    #[serde(default)]
    pub firmware_code: Option<String>,
    /// `uefi-disk`: the firmware's variable store template; a writable copy per run is the
    /// second pflash drive (OVMF_VARS_4M.fd).
    #[serde(default)]
    pub firmware_vars: Option<String>,
    /// `uefi-disk`: a firmware given with `-bios` instead (QEMU_EFI.fd on virt).
    #[serde(default)]
    pub bios: Option<String>,
    /// `uefi-disk`: the arguments attaching the disk image; `{disk}` is replaced by its path.
    #[serde(default)]
    pub disk: Vec<String>,
}

fn yes() -> bool {
    true
}

/// A profile that could not be read or is not valid.
#[derive(Debug)]
pub struct ProfileError(pub String);

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProfileError {}

impl Profile {
    /// Parse a profile's TOML text; `origin` names it in error messages.
    pub fn parse(text: &str, origin: &str) -> Result<Profile, ProfileError> {
        let p: Profile = toml::from_str(text)
            .map_err(|e| ProfileError(format!("QEMU profile {origin} is not valid: {e}")))?;
        p.validate(origin)?;
        Ok(p)
    }

    fn validate(&self, origin: &str) -> Result<(), ProfileError> {
        let bad = |what: &str| Err(ProfileError(format!("QEMU profile {origin}: {what}")));
        const TARGETS: [&str; 2] = ["aarch64-unknown-none", "x86_64-unknown-none"];
        if self.image == ImageKind::UefiDisk {
            if self.firmware_code.is_none() && self.bios.is_none() {
                return bad("image = \"uefi-disk\" needs firmware_code (+ firmware_vars) or bios");
            }
            if !self.disk.iter().any(|a| a.contains("{disk}")) {
                return bad("image = \"uefi-disk\" needs `disk` arguments naming {disk}");
            }
        }
        if !TARGETS.contains(&self.target.as_str()) {
            return bad(&format!(
                "target `{}` is not a kernel target (accepted: {})",
                self.target,
                TARGETS.join(", ")
            ));
        }
        if self.image == ImageKind::Arm64Image && !self.target.starts_with("aarch64") {
            return bad("image = \"arm64-image\" needs an aarch64 target");
        }
        if self.smp == 0 {
            return bad("smp must be at least 1");
        }
        for (name, v) in [
            ("qemu", &self.qemu),
            ("machine", &self.machine),
            ("feature", &self.feature),
            ("memory", &self.memory),
        ] {
            if v.trim().is_empty() {
                return bad(&format!("`{name}` is empty"));
            }
        }
        Ok(())
    }

    /// Load `board`'s profile: `<root>/qemu/<board>.toml` if it exists, else the built-in copy.
    pub fn load(board: Board, root: Option<&Path>) -> Result<(Profile, String), ProfileError> {
        if let Some(root) = root {
            let path = root.join("qemu").join(format!("{}.toml", board.name()));
            if path.exists() {
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    ProfileError(format!("cannot read QEMU profile {}: {e}", path.display()))
                })?;
                let origin = path.display().to_string();
                return Ok((Profile::parse(&text, &origin)?, origin));
            }
        }
        let origin = format!("built-in {}.toml", board.name());
        Ok((Profile::parse(board.builtin_profile(), &origin)?, origin))
    }
}

/// The workspace root: `$ATOMPROBE_ROOT`, else the workspace this tool was built from, else the
/// first directory above the current one holding a `Cargo.toml` with a `[workspace]` and a
/// `kernel/` directory.
pub fn workspace_root() -> Option<PathBuf> {
    if let Some(r) = std::env::var_os("ATOMPROBE_ROOT") {
        return Some(PathBuf::from(r));
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if is_root(&built) {
        return built.canonicalize().ok().or(Some(built));
    }
    let mut dir = std::env::current_dir().ok()?;
    loop {
        if is_root(&dir) {
            return Some(dir);
        }
        if !dir.pop() {
            return None;
        }
    }
}

fn is_root(dir: &Path) -> bool {
    dir.join("kernel").is_dir()
        && std::fs::read_to_string(dir.join("Cargo.toml"))
            .map(|t| t.contains("[workspace]"))
            .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_profiles_parse_and_say_what_the_brief_says() {
        let virt = Profile::parse(Board::Virt.builtin_profile(), "virt").unwrap();
        assert_eq!(virt.qemu, "qemu-system-aarch64");
        assert_eq!(virt.target, "aarch64-unknown-none");
        assert_eq!(virt.feature, "board-virt");
        assert_eq!(virt.image, ImageKind::Arm64Image);
        assert_eq!(virt.cpu.as_deref(), Some("cortex-a72"));
        assert_eq!(virt.smp, 4);
        assert_eq!(virt.memory, "256M");
        assert_eq!(virt.exit, ExitConvention::Semihosting);
        assert!(virt.virtualization);
        assert!(virt.args.iter().any(|a| a == "-semihosting"));

        let rpi = Profile::parse(Board::Raspi4b.builtin_profile(), "raspi4b").unwrap();
        assert_eq!(rpi.machine, "raspi4b");
        assert_eq!(rpi.feature, "board-rpi4");
        assert_eq!(rpi.image, ImageKind::Arm64Image);
        assert_eq!(rpi.cpu, None);
        assert!(!rpi.cpu_selectable);
        assert!(rpi.smp_fixed);
        assert_eq!(rpi.memory, "2G");
        assert!(!rpi.append);

        let pc = Profile::parse(Board::Pc.builtin_profile(), "pc").unwrap();
        assert_eq!(pc.qemu, "qemu-system-x86_64");
        assert_eq!(pc.target, "x86_64-unknown-none");
        assert_eq!(pc.feature, "board-pc");
        assert_eq!(pc.image, ImageKind::Elf);
        assert_eq!(pc.cpu, None);
        assert_eq!(pc.smp, 4);
        assert_eq!(pc.exit, ExitConvention::IsaDebugExit);
        assert!(pc
            .args
            .join(" ")
            .contains("isa-debug-exit,iobase=0xf4,iosize=0x04"));
    }

    #[test]
    fn uefi_profiles_boot_the_disk_with_the_firmware() {
        let pc = Profile::parse(Board::PcUefi.builtin_profile(), "pc-uefi").unwrap();
        assert_eq!(pc.image, ImageKind::UefiDisk);
        assert_eq!(pc.feature, "board-uefi");
        assert_eq!(pc.exit, ExitConvention::IsaDebugExit);
        assert!(pc
            .firmware_code
            .as_deref()
            .unwrap()
            .ends_with("OVMF_CODE_4M.fd"));
        assert!(pc
            .firmware_vars
            .as_deref()
            .unwrap()
            .ends_with("OVMF_VARS_4M.fd"));
        let virt = Profile::parse(Board::VirtUefi.builtin_profile(), "virt-uefi").unwrap();
        assert_eq!(virt.image, ImageKind::UefiDisk);
        assert!(virt.bios.as_deref().unwrap().ends_with("QEMU_EFI.fd"));
        assert!(virt.virtualization);
        assert_eq!(virt.exit, ExitConvention::Semihosting);
        let e = Profile::parse(&Board::PcUefi.builtin_profile().replace("{disk}", "x"), "t")
            .unwrap_err();
        assert!(e.0.contains("{disk}"), "{e}");
    }

    #[test]
    fn workspace_profiles_match_builtin_parse() {
        let root = workspace_root().expect("workspace root");
        for b in Board::ALL {
            let (p, origin) = Profile::load(b, Some(&root)).unwrap();
            assert!(origin.ends_with(".toml"), "{origin}");
            assert_eq!(p, Profile::parse(b.builtin_profile(), "x").unwrap());
        }
    }

    #[test]
    fn rejects_unknown_field_and_bad_values() {
        let base = Board::Virt.builtin_profile();
        let e = Profile::parse(&format!("{base}\nbogus = 1\n"), "t").unwrap_err();
        assert!(e.0.contains("bogus"), "{e}");

        let e = Profile::parse(
            &base.replace("exit = \"semihosting\"", "exit = \"morse-code\""),
            "t",
        )
        .unwrap_err();
        assert!(e.0.contains("morse-code"), "{e}");

        let e = Profile::parse(
            &base.replace("\"aarch64-unknown-none\"", "\"riscv64gc-unknown-none-elf\""),
            "t",
        )
        .unwrap_err();
        assert!(e.0.contains("not a kernel target"), "{e}");

        let e = Profile::parse(&base.replace("smp = 4", "smp = 0"), "t").unwrap_err();
        assert!(e.0.contains("smp"), "{e}");
    }

    #[test]
    fn board_aliases() {
        assert_eq!(Board::from_name("qemu-virt"), Some(Board::Virt));
        assert_eq!(Board::from_name("pc"), Some(Board::Pc));
        assert_eq!(Board::from_name("qemu-raspi4b"), Some(Board::Raspi4b));
        assert_eq!(Board::from_name("vert"), None);
        assert_eq!(Board::from_name("pc-uefi"), Some(Board::PcUefi));
        assert_eq!(Board::from_name("virt-uefi"), Some(Board::VirtUefi));
    }
}
