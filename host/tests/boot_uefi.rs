//! Issue 12: the UEFI disk image (`atomprobe image --board uefi`) booted by real UEFI firmware
//! under QEMU: OVMF on q35 (`pc-uefi`) and the aarch64 UEFI firmware on virt (`virt-uefi`).
//! Every run boots the GPT disk image with both loaders, the boot arguments in its
//! `\atomprobe\cmdline.txt`. Firmware start-up costs about 5-8 s per boot under TCG, so all but
//! one run per architecture use small probe subsets.

mod common;

use std::path::Path;
use std::process::Command;

use atomprobe::Board;
use common::{boot, Outcome};
use probes::record::{ProbeResult, Record};

/// Facts every UEFI boot must show: the board, the UEFI entry, where the arguments came from.
fn check_uefi_begin(o: &Outcome, arch: &str, board: &str) {
    let b = o.begin();
    o.check(b.arch == arch, &format!("begin.arch = {}", b.arch));
    o.check(b.board == board, &format!("begin.board = {}", b.board));
    let fact = |k: &str| b.platform.get(k).cloned().unwrap_or_default();
    o.check(
        fact("entry") == "uefi",
        &format!("platform.entry = {}", fact("entry")),
    );
    o.check(
        fact("cmdline_source") == "cmdline-file",
        &format!("platform.cmdline_source = {}", fact("cmdline_source")),
    );
    o.check(
        fact("firmware").contains("EDK II"),
        &format!("platform.firmware = {}", fact("firmware")),
    );
}

fn ran(o: &Outcome, family: &str) -> usize {
    o.probes(family)
        .iter()
        .filter(|p| p.result != ProbeResult::Skipped)
        .count()
}

#[test]
fn pc_uefi_default_suite_4_cores() {
    let Some(o) = boot(Board::PcUefi, |opts| opts.smp = Some(4)) else {
        return;
    };
    check_uefi_begin(&o, "x86_64", "uefi-x86_64");
    common::check_cpus_online(&o, 4);
    common::check_suite(&o);
    let b = o.begin();
    o.check(b.ring == Some(0), &format!("begin.ring = {:?}", b.ring));
    // COM1 at `capture`'s default rate; QEMU's q35 tables have no SPCR.
    let console = b.platform.get("console").cloned().unwrap_or_default();
    o.check(
        console.starts_with("COM1 (I/O 0x3f8), 115200 8N1; "),
        &format!("platform.console = {console}"),
    );
    // The PAT aliases work on the kernel's own page tables (not the firmware's identity map).
    for attr in ["wb", "uc"] {
        let v = b
            .platform
            .get(&format!("arena_{attr}"))
            .cloned()
            .unwrap_or_default();
        o.check(
            v.ends_with("confirmed"),
            &format!("platform.arena_{attr} = {v}"),
        );
    }
    o.assert_complete();
}

#[test]
fn pc_uefi_one_core() {
    let Some(o) = boot(Board::PcUefi, |opts| {
        opts.smp = Some(1);
        opts.append = Some("probes=fault,tear iters=1k".into());
    }) else {
        return;
    };
    check_uefi_begin(&o, "x86_64", "uefi-x86_64");
    common::check_cpus_online(&o, 1);
    o.check(ran(&o, "fault") > 0, "no fault probe ran");
    o.check(
        o.begin().config.iters == 1000,
        "iters=1k from cmdline.txt not applied",
    );
    o.assert_complete();
}

#[test]
fn pc_uefi_8_cores() {
    let Some(o) = boot(Board::PcUefi, |opts| {
        opts.smp = Some(8);
        opts.append = Some("probes=tear iters=1k".into());
    }) else {
        return;
    };
    common::check_cpus_online(&o, 8);
    o.check(ran(&o, "tear") > 0, "no tear probe ran");
    o.assert_complete();
}

#[test]
fn virt_uefi_one_core() {
    let Some(o) = boot(Board::VirtUefi, |opts| {
        opts.smp = Some(1);
        opts.append = Some("probes=fault iters=1k".into());
    }) else {
        return;
    };
    check_uefi_begin(&o, "aarch64", "uefi-aarch64");
    common::check_cpus_online(&o, 1);
    o.check(ran(&o, "fault") > 0, "no fault probe ran");
    o.assert_complete();
}

#[test]
fn virt_uefi_8_cores() {
    let Some(o) = boot(Board::VirtUefi, |opts| {
        opts.smp = Some(8);
        opts.append = Some("probes=tear iters=1k".into());
    }) else {
        return;
    };
    common::check_cpus_online(&o, 8);
    o.check(ran(&o, "tear") > 0, "no tear probe ran");
    o.assert_complete();
}

#[test]
fn pc_uefi_bad_cmdline_file_gives_errors_and_defaults() {
    let Some(o) = boot(Board::PcUefi, |opts| {
        opts.smp = Some(2);
        // console=screen without a display (the profile has none): an error record, and the
        // serial console stays on (this report is read from it). console=ttyS0 is Linux's.
        opts.append = Some(
            "probes=fault iters=banana colour=blue console=ttyS0,115200 console=screen".into(),
        );
    }) else {
        return;
    };
    let console = o.errors("console");
    o.check(
        console
            .iter()
            .any(|e| e.message.contains("console=screen is unavailable")),
        &format!("no console error for console=screen without a screen: {console:?}"),
    );
    o.check(
        o.begin().config.ignored == ["console=ttyS0,115200"],
        &format!("config.ignored = {:?}", o.begin().config.ignored),
    );
    let errs = o.errors("bootarg");
    for bad in ["iters", "colour"] {
        o.check(
            errs.iter().any(|e| e.message.contains(bad)),
            &format!("no bootarg error naming {bad}: {errs:?}"),
        );
    }
    o.check(
        o.begin().config.iters == probes::config::DEFAULT_ITERS,
        &format!("iters = {}, want the default", o.begin().config.iters),
    );
    o.check(ran(&o, "fault") > 0, "no fault probe ran");
    o.assert_complete();
}

#[test]
fn virt_uefi_default_suite_4_cores_el1() {
    let Some(o) = boot(Board::VirtUefi, |opts| opts.smp = Some(4)) else {
        return;
    };
    check_uefi_begin(&o, "aarch64", "uefi-aarch64");
    common::check_cpus_online(&o, 4);
    common::check_suite(&o);
    common::check_aarch64_faults(&o);
    let b = o.begin();
    o.check(b.el == Some(1), &format!("begin.el = {:?}", b.el));
    let fact = |k: &str| b.platform.get(k).cloned().unwrap_or_default();
    o.check(
        fact("entry_el") == "1",
        &format!("entry_el = {}", fact("entry_el")),
    );
    // QEMU's FADT says HVC when the guest has no EL2; the console comes from the SPCR.
    o.check(
        fact("psci").starts_with("hvc"),
        &format!("psci = {}", fact("psci")),
    );
    o.check(
        fact("uart").contains("ACPI SPCR"),
        &format!("uart = {}", fact("uart")),
    );
    o.check(
        fact("gic").starts_with("GICv2"),
        &format!("gic = {}", fact("gic")),
    );
    o.assert_complete();
}

#[test]
fn virt_uefi_el2_gicv3() {
    let Some(o) = boot(Board::VirtUefi, |opts| {
        opts.smp = Some(4);
        opts.virtualization = true;
        opts.qemu_args = vec!["-M".into(), "gic-version=3".into()];
        opts.append = Some("probes=fault,tear iters=1k".into());
    }) else {
        return;
    };
    check_uefi_begin(&o, "aarch64", "uefi-aarch64");
    common::check_cpus_online(&o, 4);
    let b = o.begin();
    let fact = |k: &str| b.platform.get(k).cloned().unwrap_or_default();
    o.check(
        fact("entry_el") == "2",
        &format!("entry_el = {}", fact("entry_el")),
    );
    o.check(
        b.el == Some(1),
        &format!("begin.el = {:?} (the kernel drops to EL1)", b.el),
    );
    o.check(
        fact("psci").starts_with("smc"),
        &format!("psci = {}", fact("psci")),
    );
    o.check(
        fact("gic").starts_with("GICv3"),
        &format!("gic = {}", fact("gic")),
    );
    for r in &o.0.report.records {
        if let Record::Cpu(c) = r {
            o.check(
                c.el == Some(1),
                &format!("cpu {} at EL {:?}", c.index, c.el),
            );
        }
    }
    o.check(ran(&o, "fault") > 0, "no fault probe ran");
    o.assert_complete();
}

/// `atomprobe image --board uefi`: one GPT disk image with both boot files and cmdline.txt, and
/// the same tree as a folder with `--out DIR/`.
#[test]
fn image_uefi_writes_disk_and_folder() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("u.img");
    let exe = env!("CARGO_BIN_EXE_atomprobe");
    let run = |out: &Path| {
        let o = Command::new(exe)
            .args([
                "image",
                "--board",
                "uefi",
                "--append",
                "probes=fault iters=1k",
                "--out",
            ])
            .arg(out)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "atomprobe image failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    run(&img);
    let disk = std::fs::read(&img).unwrap();
    // GPT: protective MBR, then "EFI PART" at LBA 1 (UEFI 2.10 5.3.2).
    assert_eq!(&disk[512..520], b"EFI PART");
    let folder = dir.path().join("stick/");
    run(&folder);
    for f in ["EFI/BOOT/BOOTX64.EFI", "EFI/BOOT/BOOTAA64.EFI"] {
        let bytes = std::fs::read(folder.join(f)).unwrap();
        assert_eq!(&bytes[..2], b"MZ", "{f} is not a PE image");
        // The same bytes are on the disk image's FAT (files are stored contiguously by the
        // writer, so a window search finds them).
        assert!(
            disk.windows(64).any(|w| w == &bytes[4096..4160]),
            "{f} not found on the disk image"
        );
    }
    assert_eq!(
        std::fs::read_to_string(folder.join("atomprobe/cmdline.txt")).unwrap(),
        "probes=fault iters=1k\n"
    );
}

/// On real hardware the run ends with UEFI ResetSystem(Shutdown) after `shutdown=N` seconds.
/// Checked on OVMF without QEMU's exit device (as on a PC): the image written by
/// `atomprobe image` powers the machine off, QEMU exits 0, after a verified report and the
/// "run finished" line.
#[test]
fn pc_uefi_image_powers_off_through_reset_system() {
    if !common::qemu_present(Board::PcUefi) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("u.img");
    let o = Command::new(env!("CARGO_BIN_EXE_atomprobe"))
        .args([
            "image",
            "--board",
            "uefi",
            "--append",
            "probes=tear iters=1k shutdown=0",
            "--out",
        ])
        .arg(&img)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let vars = dir.path().join("vars.fd");
    std::fs::copy("/usr/share/OVMF/OVMF_VARS_4M.fd", &vars).expect("OVMF (Debian ovmf)");
    let mut child = Command::new("qemu-system-x86_64")
        .args([
            "-M",
            "q35",
            "-smp",
            "2",
            "-m",
            "256M",
            "-nodefaults",
            "-display",
            "none",
        ])
        .args(["-serial", "stdio", "-no-reboot", "-drive"])
        .arg("if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd")
        .arg("-drive")
        .arg(format!(
            "if=pflash,format=raw,unit=1,file={}",
            vars.display()
        ))
        .arg("-drive")
        .arg(format!("format=raw,file={}", img.display()))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read the serial output as it comes (a full pipe would stop QEMU).
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut log = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut log);
        log
    });
    // Bounded: a hang (no power-off) is killed after the test timeout.
    let deadline = std::time::Instant::now() + common::timeout();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let log = reader.join().unwrap();
    let tail: String = log.lines().rev().take(8).collect::<Vec<_>>().join("\n");
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "QEMU did not power off with status 0; log tail:\n{tail}"
    );
    let report = probes::report::parse_report(&log);
    assert_eq!(
        report.integrity,
        probes::report::Integrity::Verified,
        "{tail}"
    );
    assert!(log.contains("run finished (complete)"), "{tail}");
    assert!(log.contains("ResetSystem(Shutdown)"), "{tail}");
}
