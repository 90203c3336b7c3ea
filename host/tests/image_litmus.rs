//! `atomprobe image --board rpi4 --litmus FILES`: the SD card's kernel runs the given `.litmus`
//! files instead of the built-in litmus tests (issue 14: "`atomprobe image` takes `--litmus`
//! too, so a real board runs the same files"). The card is written by the CLI with a stand-in
//! firmware folder (as host/tests/boot_rpi4_image.rs), `kernel8.img`, the DTB and `cmdline.txt`
//! are read BACK from the image, and booted in QEMU `raspi4b` the way the firmware hands them
//! over: the `litmus` records must be exactly the files' tests. A batch whose every file is
//! refused is a usage error (exit 2) that leaves no image behind.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use atomprobe::Board;
use common::boot;
use probes::record::{Record, Verdict};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../probes/tests/fixtures")
}

#[test]
fn rpi4_image_runs_the_given_litmus_files() {
    if !common::qemu_present(Board::Raspi4b) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let fw = common::fake_rpi4_firmware(tmp.path());
    let img = tmp.path().join("litmus.img");
    let bad = fixtures().join("litmus-bad/cond-no-eq.litmus");
    let out = Command::new(env!("CARGO_BIN_EXE_atomprobe"))
        .args(["image", "--board", "rpi4", "--out"])
        .arg(&img)
        .arg("--firmware")
        .arg(&fw)
        .arg("--litmus")
        .arg(fixtures().join("litmus/aarch64/MP+rel+acq.litmus"))
        .arg(fixtures().join("litmus/aarch64/LB+rel+BEQ.litmus"))
        .arg(&bad)
        .args(["--append", "iters=200"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "atomprobe image: {}\n{stderr}",
        out.status
    );
    // The refused file is listed with its reason; the summary names the tests included.
    assert!(
        stderr.contains(&format!("refused {}", bad.display())) && stderr.contains("expected `=`"),
        "{stderr}"
    );
    assert!(
        stdout.contains("litmus: 2 litmus tests from .litmus files, instead of the built-in ones: MP+rel+acq, LB+rel+BEQ"),
        "{stdout}"
    );
    assert!(stdout.contains("1 of 3 .litmus files refused"), "{stdout}");

    let disk = std::fs::read(&img).unwrap();
    let write = |name: &str| -> PathBuf {
        let p = tmp.path().join(format!("read-back-{name}"));
        std::fs::write(&p, common::read_from_sd_image(&disk, name)).unwrap();
        p
    };
    let kernel8 = write("kernel8.img");
    let dtb = write("bcm2711-rpi-4-b.dtb");
    let cmdline = String::from_utf8(common::read_from_sd_image(&disk, "cmdline.txt")).unwrap();
    assert_eq!(cmdline, "probes=litmus iters=200\n");

    let Some(o) = boot(Board::Raspi4b, |opts| {
        opts.kernel = Some(kernel8.clone());
        opts.append = Some(cmdline.trim().to_string());
        opts.qemu_args = vec!["-dtb".into(), dtb.display().to_string()];
    }) else {
        return;
    };
    o.check(
        o.begin().config.iters == 200,
        &format!("config.iters = {}", o.begin().config.iters),
    );
    let litmus: Vec<_> =
        o.0.report
            .records
            .iter()
            .filter_map(|r| match r {
                Record::Litmus(l) => Some(l),
                _ => None,
            })
            .collect();
    let names: BTreeSet<&str> = litmus.iter().map(|l| l.name.as_str()).collect();
    o.check(
        names.iter().eq(["LB+rel+BEQ", "MP+rel+acq"].iter()),
        &format!("litmus tests that ran: {names:?}, want exactly LB+rel+BEQ and MP+rel+acq"),
    );
    for l in &litmus {
        // Both are forbidden by the catalogue's kinds; cortex-a72 runs them (no LSE needed).
        o.check(
            l.verdict == Verdict::Ok && l.iterations > 0,
            &format!(
                "{} {}: verdict {:?}, {}/{} observed",
                l.name, l.attr, l.verdict, l.observed, l.iterations
            ),
        );
    }
    o.check(
        !o.0.report
            .records
            .iter()
            .any(|r| matches!(r, Record::Probe(_))),
        "probe records in a probes=litmus run",
    );
    o.assert_complete();
}

#[test]
fn image_with_no_usable_litmus_file_is_refused_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let fw = common::fake_rpi4_firmware(tmp.path());
    let img = tmp.path().join("none.img");
    let out = Command::new(env!("CARGO_BIN_EXE_atomprobe"))
        .args(["image", "--board", "rpi4", "--out"])
        .arg(&img)
        .arg("--firmware")
        .arg(&fw)
        .arg("--litmus")
        // An x86-64 test (not for the Pi) and a malformed one.
        .arg(fixtures().join("litmus/x86_64/SB.litmus"))
        .arg(fixtures().join("litmus-bad/cond-no-eq.litmus"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("a X86_64 test"), "{stderr}");
    assert!(stderr.contains("cond-no-eq.litmus:5:14"), "{stderr}");
    assert!(
        stderr.contains("none of the 2 .litmus files gave a test to run")
            && stderr.contains("no image was written"),
        "{stderr}"
    );
    assert!(!img.exists());
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["firmware"], "files left behind");
}
