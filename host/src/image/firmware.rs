//! The Raspberry Pi 4 firmware files an SD card needs besides the kernel: `start4.elf` (the
//! VideoCore firmware that reads `config.txt` and loads the kernel), `fixup4.dat` (its memory
//! split) and the board's device tree `bcm2711-rpi-4-b.dtb`, which the firmware completes
//! (memory, `/chosen/bootargs` from cmdline.txt) and passes to the kernel in x0.
//!
//! They come from `--firmware DIR` (e.g. the boot partition of a Raspberry Pi OS card), or from a
//! cache (`target/rpi-firmware/`) that `scripts/fetch-rpi-firmware` fills from Debian's
//! `raspi-firmware` and arm64 kernel packages, verified by apt against Debian's signed archive.
//! Either way every file is checked here before anything is written.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::ImageError;

pub const START4_ELF: &str = "start4.elf";
pub const FIXUP4_DAT: &str = "fixup4.dat";
pub const RPI4_DTB: &str = "bcm2711-rpi-4-b.dtb";
/// Written by `scripts/fetch-rpi-firmware`: packages, versions, checksums, licences.
pub const SOURCES_TXT: &str = "SOURCES.txt";
/// The `raspi-firmware` package's copyright file (the firmware's redistribution licence),
/// copied by `scripts/fetch-rpi-firmware`.
pub const FIRMWARE_COPYRIGHT: &str = "LICENCE.raspi-firmware";
/// The overlay `config.txt` names (`dtoverlay=disable-bt`); Raspberry Pi OS cards have it,
/// Debian's packages do not.
pub const DISABLE_BT_OVERLAY: &str = "overlays/disable-bt.dtbo";
/// The script that fills the cache, relative to the workspace root.
pub const FETCH_SCRIPT: &str = "scripts/fetch-rpi-firmware";

/// Devicetree blob magic (Devicetree Specification v0.4, 5.2 "Header": big-endian 0xd00dfeed).
pub const FDT_MAGIC: u32 = 0xd00d_feed;

/// Validated firmware files, read into memory.
#[derive(Clone, Debug)]
pub struct Firmware {
    /// Where they were read from.
    pub dir: PathBuf,
    pub start4_elf: Vec<u8>,
    pub fixup4_dat: Vec<u8>,
    pub dtb: Vec<u8>,
    /// Other files of the folder that go onto the card when present (licence and provenance
    /// notes, the Bluetooth-off overlay): (path on the card, contents).
    pub extras: Vec<(String, Vec<u8>)>,
}

fn read_required(dir: &Path, name: &str, what: &str) -> Result<Vec<u8>, ImageError> {
    let p = dir.join(name);
    let bytes = std::fs::read(&p).map_err(|e| {
        ImageError::Input(format!(
            "firmware file {}: cannot read it ({e}); expected {what}",
            p.display()
        ))
    })?;
    if bytes.is_empty() {
        return Err(ImageError::Input(format!(
            "firmware file {} is empty; expected {what}",
            p.display()
        )));
    }
    Ok(bytes)
}

impl Firmware {
    /// Read and check the files in `dir`: each present and non-empty, `start4.elf` an ELF file,
    /// the DTB a device tree with the nodes the kernel relies on ([`check_rpi4_dtb`]).
    pub fn load(dir: &Path) -> Result<Firmware, ImageError> {
        if !dir.is_dir() {
            return Err(ImageError::Input(format!(
                "firmware folder {} does not exist or is not a folder; expected a folder holding \
                 {START4_ELF}, {FIXUP4_DAT} and {RPI4_DTB} (e.g. the boot partition of a \
                 Raspberry Pi OS card)",
                dir.display()
            )));
        }
        let start4_elf = read_required(
            dir,
            START4_ELF,
            "the Raspberry Pi 4 VideoCore firmware (an ELF file)",
        )?;
        if !start4_elf.starts_with(b"\x7fELF") {
            return Err(ImageError::Input(format!(
                "firmware file {} is not an ELF file (no \\x7fELF magic at its start); expected \
                 the Raspberry Pi 4 VideoCore firmware",
                dir.join(START4_ELF).display()
            )));
        }
        let fixup4_dat = read_required(
            dir,
            FIXUP4_DAT,
            "the firmware's memory-split file matching start4.elf",
        )?;
        let dtb = read_required(dir, RPI4_DTB, "the Raspberry Pi 4 B device tree blob")?;
        check_rpi4_dtb(&dtb).map_err(|why| {
            ImageError::Input(format!(
                "device tree {}: {why}",
                dir.join(RPI4_DTB).display()
            ))
        })?;
        let mut extras = Vec::new();
        for name in [SOURCES_TXT, FIRMWARE_COPYRIGHT, DISABLE_BT_OVERLAY] {
            if let Ok(bytes) = std::fs::read(dir.join(name)) {
                extras.push((name.to_string(), bytes));
            }
        }
        Ok(Firmware {
            dir: dir.to_path_buf(),
            start4_elf,
            fixup4_dat,
            dtb,
            extras,
        })
    }
}

/// Check that `dtb` is a device tree the kernel can boot with: the magic, a parsable structure,
/// a `/cpus` node whose `cpu` nodes use `enable-method = "spin-table"` with a `cpu-release-addr`
/// (how the Pi 4's armstub holds the secondary cores; Linux
/// Documentation/arch/arm64/booting.rst, "spin-table"), and a `memory` node (which the firmware
/// fills with the RAM banks). Returns what is wrong, in words.
pub fn check_rpi4_dtb(dtb: &[u8]) -> Result<(), String> {
    let magic = dtb
        .get(..4)
        .map(|m| u32::from_be_bytes([m[0], m[1], m[2], m[3]]));
    if magic != Some(FDT_MAGIC) {
        return Err(format!(
            "not a device tree blob (first 4 bytes {}; expected the magic d00dfeed)",
            match magic {
                Some(m) => format!("{m:08x}"),
                None => "missing".into(),
            }
        ));
    }
    let fdt =
        fdt::Fdt::new(dtb).map_err(|e| format!("the device tree blob does not parse ({e:?})"))?;
    let root = fdt
        .find_node("/")
        .ok_or("the device tree has no root node")?;
    let base = |name: &str| name.split('@').next().unwrap_or("").to_string();
    let has_memory = root.children().any(|n| {
        base(n.name) == "memory"
            || n.property("device_type").and_then(|p| p.as_str()) == Some("memory")
    });
    if !has_memory {
        return Err(
            "no memory node (expected a root child `memory@...` or one with device_type = \
             \"memory\", which the firmware fills with the RAM banks)"
                .into(),
        );
    }
    let cpus = root
        .children()
        .find(|n| n.name == "cpus")
        .ok_or("no /cpus node (expected /cpus with one cpu@N node per core)")?;
    let cpu_nodes: Vec<_> = cpus.children().filter(|n| base(n.name) == "cpu").collect();
    if cpu_nodes.is_empty() {
        return Err("/cpus has no cpu@N nodes (expected one per core)".into());
    }
    for cpu in &cpu_nodes {
        let method = cpu.property("enable-method").and_then(|p| p.as_str());
        if method != Some("spin-table") {
            return Err(format!(
                "/cpus/{} has enable-method {:?}; expected \"spin-table\" (the Pi 4 firmware \
                 parks the secondary cores on a spin table)",
                cpu.name,
                method.unwrap_or("(none)")
            ));
        }
        if cpu.property("cpu-release-addr").is_none() {
            return Err(format!(
                "/cpus/{} has no cpu-release-addr (expected the spin-table release address)",
                cpu.name
            ));
        }
    }
    Ok(())
}

/// The default cache folder: `<workspace>/target/rpi-firmware`.
pub fn cache_dir(root: &Path) -> PathBuf {
    root.join("target").join("rpi-firmware")
}

/// What to tell a user whose firmware could not be found or fetched.
fn how_to_get_firmware(root: Option<&Path>) -> String {
    let script = match root {
        Some(r) => r.join(FETCH_SCRIPT).display().to_string(),
        None => FETCH_SCRIPT.to_string(),
    };
    format!(
        "run {script} (Debian or Ubuntu with apt and network access) to fetch Debian's \
         raspi-firmware and arm64 kernel packages, or pass --firmware DIR with a folder holding \
         {START4_ELF}, {FIXUP4_DAT} and {RPI4_DTB} (e.g. the boot partition of a Raspberry Pi \
         OS card)"
    )
}

/// The firmware for an image: `--firmware DIR` when given; else the cache, filled first by
/// running `scripts/fetch-rpi-firmware` when it does not hold valid files.
pub fn locate(firmware: Option<&Path>, root: Option<&Path>) -> Result<Firmware, ImageError> {
    if let Some(dir) = firmware {
        return Firmware::load(dir);
    }
    let Some(root) = root else {
        return Err(ImageError::Input(format!(
            "no --firmware DIR given and no atomprobe workspace found for the firmware cache: {}",
            how_to_get_firmware(None)
        )));
    };
    let cache = cache_dir(root);
    if let Ok(fw) = Firmware::load(&cache) {
        return Ok(fw);
    }
    let script = root.join(FETCH_SCRIPT);
    eprintln!(
        "atomprobe: no Raspberry Pi firmware in {}: fetching it with {}",
        cache.display(),
        script.display()
    );
    let status = Command::new(&script).arg(&cache).status();
    match status {
        Ok(s) if s.success() => Firmware::load(&cache).map_err(|e| {
            ImageError::Input(format!(
                "{} finished but the cache is not usable: {e}",
                script.display()
            ))
        }),
        Ok(s) => Err(ImageError::Input(format!(
            "{} failed ({s}; its messages are above): {}",
            script.display(),
            how_to_get_firmware(Some(root))
        ))),
        Err(e) => Err(ImageError::Input(format!(
            "cannot run {}: {e}: {}",
            script.display(),
            how_to_get_firmware(Some(root))
        ))),
    }
}
