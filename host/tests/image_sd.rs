//! Disk images read back by tools independent of the crates that wrote them (issue 11 item 3,
//! issue 12 item 1): `sfdisk --json` / `sfdisk --verify` (util-linux, Debian package `fdisk`)
//! for the partition table, mtools (`mdir`, `mcopy`, Debian package `mtools`) for the FAT32
//! files, whose SHA-256 must equal the sources'. Plus `atomprobe image` bad input: exit status 2,
//! a message naming the file and what was expected, and nothing left behind.
//!
//! A missing tool skips its test loudly on a developer machine; with CI set it fails the test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use atomprobe::image::{firmware, sha256_hex, uefi};
use atomprobe::{kernel, profile, Board, Profile};

fn fixture_dtb() -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rpi4/bcm2711-rpi-4-b.dtb"),
    )
    .expect("fixture DTB")
}

/// A firmware folder with stand-ins for Raspberry Pi's proprietary start4.elf (an ELF header)
/// and fixup4.dat, and Debian's real DTB (host/tests/fixtures/rpi4/README.md).
fn fake_firmware(dir: &Path) -> PathBuf {
    let fw = dir.join("firmware");
    std::fs::create_dir_all(&fw).unwrap();
    let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
    elf.resize(4096, 0xa5);
    std::fs::write(fw.join(firmware::START4_ELF), &elf).unwrap();
    std::fs::write(fw.join(firmware::FIXUP4_DAT), b"fixup4 stand-in\n").unwrap();
    std::fs::write(fw.join(firmware::RPI4_DTB), fixture_dtb()).unwrap();
    fw
}

/// The Pi 4 kernel ELF, built once per test binary.
fn rpi4_kernel() -> PathBuf {
    static ELF: OnceLock<PathBuf> = OnceLock::new();
    ELF.get_or_init(|| {
        let root = atomprobe::require_root().expect("workspace");
        let (p, _) = Profile::load(Board::Raspi4b, profile::workspace_root().as_deref()).unwrap();
        kernel::build_kernel(&root, &p, true).expect("rpi4 kernel builds")
    })
    .clone()
}

fn atomprobe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_atomprobe"))
        .args(args)
        .output()
        .expect("run atomprobe")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Whether `tool` runs; `false` (skip, loudly) only when CI is unset.
fn tool_present(tool: &str, package: &str) -> bool {
    if Command::new(tool).arg("--version").output().is_ok() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{tool} is not available and CI is set: install the Debian package {package}");
    }
    eprintln!("*** SKIPPED: {tool} not found; install the package {package} to run this test ***");
    false
}

fn run_tool(cmd: &mut Command) -> String {
    // mtools checks the BPB's geometry against its own idea of the disk; the images are not
    // floppies, so the check is off (mtools manual, MTOOLS_SKIP_CHECK).
    let out = cmd.env("MTOOLS_SKIP_CHECK", "1").output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The one partition `sfdisk --json` sees: (label, start sector, size in sectors, type).
fn sfdisk_partition(img: &Path) -> (String, u64, u64, String) {
    let json = run_tool(Command::new("sfdisk").arg("--json").arg(img));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let t = &v["partitiontable"];
    assert_eq!(t["sectorsize"], 512, "{json}");
    let parts = t["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 1, "{json}");
    let p = &parts[0];
    (
        t["label"].as_str().unwrap().to_string(),
        p["start"].as_u64().unwrap(),
        p["size"].as_u64().unwrap(),
        p["type"].as_str().unwrap().to_string(),
    )
}

/// Copy every expected file out of the FAT at `offset` with mcopy and compare its SHA-256; the
/// volume must hold exactly these files (mdir -/ -b lists them recursively).
fn check_fat_with_mtools(img: &Path, offset: u64, expected: &[(String, Vec<u8>)], tmp: &Path) {
    let drive = format!("{}@@{offset}", s(img));
    let listing = run_tool(Command::new("mdir").args(["-i", &drive, "-/", "-b", "::/"]));
    let mut listed: Vec<String> = listing
        .lines()
        .filter_map(|l| l.strip_prefix("::/"))
        .filter(|l| !l.ends_with('/') && !l.is_empty())
        .map(str::to_string)
        .collect();
    listed.sort();
    let mut want: Vec<String> = expected.iter().map(|(p, _)| p.clone()).collect();
    want.sort();
    // mdir -b lists folders too (without a trailing slash): keep only the files we know.
    let dirs: Vec<String> = want
        .iter()
        .filter_map(|p| p.rsplit_once('/').map(|(d, _)| d.to_string()))
        .collect();
    listed.retain(|l| {
        !dirs
            .iter()
            .any(|d| d == l || d.starts_with(&format!("{l}/")))
    });
    assert_eq!(listed, want, "mdir listing:\n{listing}");
    for (path, bytes) in expected {
        let dest = tmp.join(format!("out-{}", path.replace('/', "_")));
        run_tool(Command::new("mcopy").args(["-n", "-i", &drive, &format!("::/{path}"), s(&dest)]));
        let got = std::fs::read(&dest).unwrap();
        assert_eq!(got.len(), bytes.len(), "{path}: size");
        assert_eq!(sha256_hex(&got), sha256_hex(bytes), "{path}: SHA-256");
    }
}

/// What the Pi image must hold, from the sources (not from the image).
fn rpi4_expected(fw: &Path, elf: &Path, cmdline: &str) -> Vec<(String, Vec<u8>)> {
    let rd = |p: PathBuf| std::fs::read(p).unwrap();
    vec![
        ("start4.elf".into(), rd(fw.join("start4.elf"))),
        ("fixup4.dat".into(), rd(fw.join("fixup4.dat"))),
        ("bcm2711-rpi-4-b.dtb".into(), fixture_dtb()),
        (
            "config.txt".into(),
            rd(Path::new(env!("CARGO_MANIFEST_DIR")).join("../boot/rpi4/config.txt")),
        ),
        ("cmdline.txt".into(), cmdline.as_bytes().to_vec()),
        (
            "kernel8.img".into(),
            kernel::flat_arm64_image(elf).unwrap().bytes,
        ),
    ]
}

#[test]
fn rpi4_image_reads_back_with_sfdisk_and_mtools() {
    if !tool_present("sfdisk", "fdisk") || !tool_present("mdir", "mtools") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let fw = fake_firmware(tmp.path());
    let elf = rpi4_kernel();
    let img = tmp.path().join("atomprobe-rpi4.img");
    let out = atomprobe(&[
        "image",
        "--board",
        "rpi4",
        "--out",
        s(&img),
        "--firmware",
        s(&fw),
        "--kernel",
        s(&elf),
        "--append",
        "probes=fault iters=1k",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (label, start, size, kind) = sfdisk_partition(&img);
    // MBR ("dos"), one FAT32-LBA partition (0x0c) at 1 MiB, at least 64 MiB.
    assert_eq!((label.as_str(), start, kind.as_str()), ("dos", 2048, "c"));
    assert!(size >= 131072, "partition of {size} sectors");
    let len = std::fs::metadata(&img).unwrap().len();
    assert_eq!(len, (start + size) * 512, "image ends with the partition");
    run_tool(Command::new("sfdisk").arg("--verify").arg(&img));
    let minfo = run_tool(Command::new("minfo").args(["-i", &format!("{}@@1M", s(&img)), "::"]));
    assert!(minfo.contains("hidden sectors: 2048"), "{minfo}");
    check_fat_with_mtools(
        &img,
        start * 512,
        &rpi4_expected(&fw, &elf, "probes=fault iters=1k\n"),
        tmp.path(),
    );
    // Nothing else in the output folder (no temporary file left over).
    let mut names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("out-"))
        .collect();
    names.sort();
    assert_eq!(names, ["atomprobe-rpi4.img", "firmware"]);
}

#[test]
fn rpi4_folder_output_holds_the_same_files() {
    let tmp = tempfile::tempdir().unwrap();
    let fw = fake_firmware(tmp.path());
    std::fs::write(
        fw.join(firmware::SOURCES_TXT),
        b"where the files came from\n",
    )
    .unwrap();
    let elf = rpi4_kernel();
    let dir = tmp.path().join("card");
    let out = atomprobe(&[
        "image",
        "--board",
        "rpi4",
        "--out",
        &format!("{}/", s(&dir)),
        "--firmware",
        s(&fw),
        "--kernel",
        s(&elf),
        "--append",
        "probes=tear",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut want = rpi4_expected(&fw, &elf, "probes=tear\n");
    want.push((
        "SOURCES.txt".into(),
        b"where the files came from\n".to_vec(),
    ));
    for (path, bytes) in &want {
        assert_eq!(&std::fs::read(dir.join(path)).unwrap(), bytes, "{path}");
    }
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), want.len());
}

#[test]
fn uefi_esp_image_reads_back_with_sfdisk_and_mtools() {
    if !tool_present("sfdisk", "fdisk") || !tool_present("mdir", "mtools") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // Stand-ins for the two EFI binaries: distinct, not a multiple of the cluster size.
    let x64: Vec<u8> = (0..70_001u32).map(|i| (i * 7) as u8).collect();
    let aa64: Vec<u8> = (0..90_003u32).map(|i| (i * 13) as u8).collect();
    let files = uefi::esp_files(x64, aa64, "probes=fault console=both");
    let img = tmp.path().join("u.img");
    let layout = uefi::write_esp_image(&img, &files).unwrap();
    let (label, start, size, kind) = sfdisk_partition(&img);
    assert_eq!(label, "gpt");
    // EFI System Partition type GUID (UEFI 2.10 table 5-7).
    assert_eq!(kind, "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
    assert_eq!(
        (start * 512, size * 512),
        (layout.partition_start, layout.partition_bytes)
    );
    assert!(size >= 131072);
    // Primary and backup header and entries consistent.
    let verify = run_tool(Command::new("sfdisk").arg("--verify").arg(&img));
    assert!(verify.contains("No errors detected"), "{verify}");
    let expected: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|f| (f.path.clone(), f.contents.clone()))
        .collect();
    assert_eq!(expected[2].1, b"probes=fault console=both\n");
    check_fat_with_mtools(&img, layout.partition_start, &expected, tmp.path());
}

/// `atomprobe image` with a bad input: exit 2, stderr names `what` and says `expected`, and the
/// output folder is left empty.
fn refused(args: &[String], out_dir: &Path, what: &str, expected: &str) {
    let out = atomprobe(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(
        err.contains(what) && err.contains(expected),
        "{args:?}: {err}"
    );
    if out_dir.is_dir() {
        let left: Vec<_> = std::fs::read_dir(out_dir).unwrap().collect();
        assert!(left.is_empty(), "{args:?} left {left:?}");
    }
}

#[test]
fn rpi4_bad_input_exits_2_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let fw = fake_firmware(tmp.path());
    let out_dir = tmp.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let img = out_dir.join("x.img");
    // Bad input is found before the kernel is needed: no kernel build here.
    let no_kernel = tmp.path().join("no-kernel.elf");
    let run = |fw: &Path| {
        vec![
            "image".to_string(),
            "--board".into(),
            "rpi4".into(),
            "--out".into(),
            s(&img).into(),
            "--firmware".into(),
            s(fw).into(),
            "--kernel".into(),
            s(&no_kernel).into(),
        ]
    };

    // Missing firmware folder.
    let missing = tmp.path().join("no-such-firmware");
    let a = run(&missing);
    refused(&a, &out_dir, "no-such-firmware", "start4.elf");

    // Corrupt start4.elf.
    let bad = tmp.path().join("bad-elf");
    std::fs::create_dir(&bad).unwrap();
    for f in ["fixup4.dat", "bcm2711-rpi-4-b.dtb"] {
        std::fs::copy(fw.join(f), bad.join(f)).unwrap();
    }
    std::fs::write(bad.join("start4.elf"), b"<html>404</html>").unwrap();
    refused(&run(&bad), &out_dir, "start4.elf", "not an ELF file");

    // Missing fixup4.dat.
    std::fs::copy(fw.join("start4.elf"), bad.join("start4.elf")).unwrap();
    std::fs::remove_file(bad.join("fixup4.dat")).unwrap();
    refused(&run(&bad), &out_dir, "fixup4.dat", "expected");

    // A DTB without the memory node (every "memory" renamed, same length).
    std::fs::copy(fw.join("fixup4.dat"), bad.join("fixup4.dat")).unwrap();
    let dtb = fixture_dtb();
    let mut nomem = dtb.clone();
    for i in 0..nomem.len() - 6 {
        if &nomem[i..i + 6] == b"memory" {
            nomem[i..i + 6].copy_from_slice(b"MEMORY");
        }
    }
    std::fs::write(bad.join("bcm2711-rpi-4-b.dtb"), &nomem).unwrap();
    refused(
        &run(&bad),
        &out_dir,
        "bcm2711-rpi-4-b.dtb",
        "no memory node",
    );
    // A DTB whose cpus are not on a spin table.
    let mut psci = dtb.clone();
    for i in 0..psci.len() - 10 {
        if &psci[i..i + 10] == b"spin-table" {
            psci[i..i + 10].copy_from_slice(b"psci-table");
        }
    }
    std::fs::write(bad.join("bcm2711-rpi-4-b.dtb"), &psci).unwrap();
    refused(
        &run(&bad),
        &out_dir,
        "bcm2711-rpi-4-b.dtb",
        "expected \"spin-table\"",
    );

    // Output in a folder that does not exist, and one nobody may write (/proc refuses new
    // files even for root).
    let mut a = run(&fw);
    a[4] = s(&out_dir.join("missing/x.img")).into();
    refused(&a, &out_dir, "missing/x.img", "does not exist");
    if cfg!(target_os = "linux") {
        a[4] = "/proc/atomprobe-test.img".into();
        refused(&a, &out_dir, "/proc/atomprobe-test.img", "cannot write");
    }
    // A line break in the boot arguments.
    let mut a = run(&fw);
    a.extend(["--append".into(), "probes=fault\niters=1".into()]);
    refused(&a, &out_dir, "--append", "line break");
}
