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

use dtoolkit::{Node, Property};

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
    // dtoolkit (the crate the kernel reads the DTB with) validates the whole blob up front and
    // accepts the FDT_NOP tokens libfdt edits leave; fdt 0.1.5 panicked on those.
    let fdt = dtoolkit::fdt::Fdt::new(dtb)
        .map_err(|e| format!("the device tree blob does not parse ({e})"))?;
    let root = fdt.root();
    // The first string of a property, if it has one.
    fn string<N: Node>(node: &N, name: &str) -> Option<String> {
        let p = node.property(name)?;
        let first = p.value().split(|&b| b == 0).next()?;
        std::str::from_utf8(first).ok().map(str::to_string)
    }
    // What the kernel reads as RAM: root children with device_type = "memory" (Devicetree
    // Specification v0.4, 3.4 "/memory node").
    if !root
        .children()
        .any(|n| string(&n, "device_type").as_deref() == Some("memory"))
    {
        return Err(
            "no memory node (expected a child of / with device_type = \"memory\", e.g. \
             memory@0, which the firmware fills with the RAM banks)"
                .into(),
        );
    }
    let cpus = fdt
        .find_node("/cpus")
        .ok_or("no /cpus node (expected /cpus with one cpu@N node per core)")?;
    let cpu_nodes: Vec<_> = cpus
        .children()
        .filter(|n| n.name_without_address() == "cpu")
        .collect();
    if cpu_nodes.is_empty() {
        return Err("/cpus has no cpu@N nodes (expected one per core)".into());
    }
    for cpu in &cpu_nodes {
        let method = string(cpu, "enable-method");
        if method.as_deref() != Some("spin-table") {
            return Err(format!(
                "/cpus/{} has enable-method {:?}; expected \"spin-table\" (the Pi 4 firmware \
                 parks the secondary cores on a spin table)",
                cpu.name(),
                method.as_deref().unwrap_or("(none)")
            ));
        }
        if cpu.property("cpu-release-addr").is_none() {
            return Err(format!(
                "/cpus/{} has no cpu-release-addr (expected the spin-table release address)",
                cpu.name()
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Debian's Raspberry Pi 4 B device tree (host/tests/fixtures/rpi4/README.md).
    pub(crate) fn debian_dtb() -> Vec<u8> {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rpi4/bcm2711-rpi-4-b.dtb"),
        )
        .expect("fixture DTB")
    }

    /// `dtb` with every occurrence of `from` replaced by `to` (same length, so the blob's
    /// structure stays intact and only names or values change).
    fn patched(dtb: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
        assert_eq!(from.len(), to.len());
        let mut out = dtb.to_vec();
        let mut n = 0;
        let mut i = 0;
        while i + from.len() <= out.len() {
            if &out[i..i + from.len()] == from {
                out[i..i + from.len()].copy_from_slice(to);
                n += 1;
                i += from.len();
            } else {
                i += 1;
            }
        }
        assert!(n > 0, "{:?} not in the DTB", String::from_utf8_lossy(from));
        out
    }

    /// A firmware folder with stand-ins for Raspberry Pi's proprietary files and `dtb`.
    pub(crate) fn fake_firmware_dir(dtb: &[u8]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        // An ELF64 identification header: what the check looks at.
        let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
        elf.resize(64, 0);
        std::fs::write(dir.path().join(START4_ELF), &elf).unwrap();
        std::fs::write(dir.path().join(FIXUP4_DAT), b"fixup stand-in\n").unwrap();
        std::fs::write(dir.path().join(RPI4_DTB), dtb).unwrap();
        dir
    }

    #[test]
    fn debian_dtb_passes() {
        assert_eq!(check_rpi4_dtb(&debian_dtb()), Ok(()));
    }

    /// A DTB edited by libfdt (QEMU, the Pi firmware) holds FDT_NOP tokens: still accepted.
    #[test]
    fn dtb_with_nop_tokens_passes() {
        let dtb = debian_dtb();
        let be = |at: usize| u32::from_be_bytes(dtb[at..at + 4].try_into().unwrap()) as usize;
        // Header (Devicetree Specification v0.4, 5.2): totalsize @4, off_dt_struct @8,
        // off_dt_strings @12, size_dt_struct @36. The root node's FDT_BEGIN_NODE token and its
        // empty, padded name take the first 8 bytes of the structure block.
        let (off_struct, off_strings) = (be(8), be(12));
        assert!(off_strings > off_struct);
        let at = off_struct + 8;
        let mut out = dtb[..at].to_vec();
        out.extend_from_slice(&4u32.to_be_bytes()); // FDT_NOP
        out.extend_from_slice(&dtb[at..]);
        for (field, old) in [(4, be(4)), (12, off_strings), (36, be(36))] {
            out[field..field + 4].copy_from_slice(&((old + 4) as u32).to_be_bytes());
        }
        assert_eq!(check_rpi4_dtb(&out), Ok(()));
    }

    #[test]
    fn dtb_without_the_expected_nodes_is_refused() {
        let dtb = debian_dtb();
        let mut bad_magic = dtb.clone();
        bad_magic[0] = 0;
        let e = check_rpi4_dtb(&bad_magic).unwrap_err();
        assert!(e.contains("d00dfeed") && e.contains("000dfeed"), "{e}");
        assert!(check_rpi4_dtb(&[]).unwrap_err().contains("missing"));
        let e = check_rpi4_dtb(&dtb[..100]).unwrap_err();
        assert!(e.contains("does not parse"), "{e}");
        // No memory node: rename every "memory" (node name and device_type value).
        let e = check_rpi4_dtb(&patched(&dtb, b"memory", b"MEMORY")).unwrap_err();
        assert!(e.contains("no memory node"), "{e}");
        // CPUs started another way.
        let e = check_rpi4_dtb(&patched(&dtb, b"spin-table", b"psci-table")).unwrap_err();
        assert!(
            e.contains("enable-method \"psci-table\"") && e.contains("spin-table"),
            "{e}"
        );
        let e =
            check_rpi4_dtb(&patched(&dtb, b"cpu-release-addr", b"cpu-release-adds")).unwrap_err();
        assert!(e.contains("no cpu-release-addr"), "{e}");
        // No /cpus node.
        let e = check_rpi4_dtb(&patched(&dtb, b"cpus\0", b"CPUS\0")).unwrap_err();
        assert!(e.contains("no /cpus node"), "{e}");
    }

    #[test]
    fn firmware_folder_checks_name_the_file() {
        let dir = fake_firmware_dir(&debian_dtb());
        let fw = Firmware::load(dir.path()).unwrap();
        assert_eq!(fw.dtb, debian_dtb());
        assert!(fw.extras.is_empty());

        let err = |d: &Path| Firmware::load(d).unwrap_err();
        let missing = dir.path().join("nope");
        let e = err(&missing);
        assert!(
            matches!(&e, ImageError::Input(m) if m.contains("does not exist") && m.contains("nope")),
            "{e}"
        );

        std::fs::write(dir.path().join(START4_ELF), b"MZ not an elf").unwrap();
        let e = err(dir.path()).to_string();
        assert!(e.contains("start4.elf is not an ELF file"), "{e}");
        std::fs::write(dir.path().join(START4_ELF), b"").unwrap();
        assert!(err(dir.path()).to_string().contains("start4.elf is empty"));
        std::fs::remove_file(dir.path().join(START4_ELF)).unwrap();
        let e = err(dir.path()).to_string();
        assert!(e.contains("start4.elf: cannot read it"), "{e}");

        let dir = fake_firmware_dir(&debian_dtb());
        std::fs::remove_file(dir.path().join(FIXUP4_DAT)).unwrap();
        assert!(err(dir.path())
            .to_string()
            .contains("fixup4.dat: cannot read it"));

        let dir = fake_firmware_dir(b"not a dtb at all");
        let e = err(dir.path()).to_string();
        assert!(
            e.contains("bcm2711-rpi-4-b.dtb: not a device tree blob"),
            "{e}"
        );

        // Licence/provenance notes and the overlay travel along.
        let dir = fake_firmware_dir(&debian_dtb());
        std::fs::write(dir.path().join(SOURCES_TXT), b"sources").unwrap();
        std::fs::create_dir(dir.path().join("overlays")).unwrap();
        std::fs::write(dir.path().join(DISABLE_BT_OVERLAY), b"dtbo").unwrap();
        let fw = Firmware::load(dir.path()).unwrap();
        let names: Vec<&str> = fw.extras.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, [SOURCES_TXT, DISABLE_BT_OVERLAY]);
    }

    #[test]
    fn without_firmware_or_workspace_the_message_says_what_to_do() {
        let e = locate(None, None).unwrap_err().to_string();
        assert!(
            e.contains("--firmware DIR") && e.contains(FETCH_SCRIPT),
            "{e}"
        );
        // A workspace without the script: the failure names it and the alternative.
        let root = tempfile::tempdir().unwrap();
        let e = locate(None, Some(root.path())).unwrap_err().to_string();
        assert!(
            e.contains("cannot run") && e.contains("--firmware DIR"),
            "{e}"
        );
        assert!(!cache_dir(root.path()).exists());
    }
}
