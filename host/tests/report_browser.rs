//! The HTML report in a real browser: boot QEMU virt on a small subset, run the same subset
//! hosted, render `atomprobe report` of the virt run alone and of virt vs hosted side by side,
//! open both in headless Chromium, and check the DOM Chromium built (one chart per litmus record,
//! one mark per matrix record, one row per matched litmus test, one table row per cost record),
//! that the page logged nothing to the console, and take screenshots (kept in
//! `target/ci-artifacts/`, not committed). Also the CLI's handling of a damaged report (`show` and
//! `report` refuse it; `--allow-damaged` renders it under a banner) and the exit status 2 of a
//! run whose boot arguments were not all used.
//!
//! Chromium: `/usr/bin/chromium` (Debian package `chromium`) or `$ATOMPROBE_CHROMIUM`. Missing, the
//! test is skipped loudly on a developer machine and fails when `CI` is set.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use atomprobe::compare::{build_rows, labels};
use atomprobe::Board;
use probes::record::{Record, Verdict};
use probes::report::{parse_report, ParsedReport};

fn chromium() -> Option<PathBuf> {
    let p = std::env::var_os("ATOMPROBE_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if p.is_file() {
        return Some(p);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{} not found and CI is set: install Debian's chromium package",
            p.display()
        );
    }
    eprintln!(
        "*** SKIPPED: {} not found; install chromium to run the browser test ***",
        p.display()
    );
    None
}

fn artifacts() -> PathBuf {
    let root = atomprobe::require_root().expect("workspace root");
    let d = root.join("target/ci-artifacts");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Run headless Chromium on `page` with `args`; returns (stdout, stderr).
fn chrome(bin: &Path, page: &Path, args: &[&str]) -> (String, String) {
    let profile = std::env::temp_dir().join(format!(
        "atomprobe-chromium-{}-{}",
        std::process::id(),
        args.len()
    ));
    let out = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium starts");
    let _ = std::fs::remove_dir_all(&profile);
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn atomprobe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_atomprobe"))
        .args(args)
        .output()
        .expect("atomprobe starts")
}

fn count(h: &str, pat: &str) -> usize {
    h.matches(pat).count()
}

/// The DOM of `html` as Chromium built it, checked against the records of `reports`; a
/// screenshot of the page is saved as `png`.
fn check_in_browser(bin: &Path, html: &Path, reports: &[&ParsedReport], png: &Path) {
    let (dom, err) = chrome(bin, html, &["--dump-dom"]);
    assert!(
        dom.contains("</html>"),
        "no DOM from chromium; stderr:\n{err}"
    );
    let console: Vec<&str> = err
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .collect();
    assert!(
        console.is_empty(),
        "the page logged to the console: {console:?}"
    );

    let mut litmus = 0;
    let mut litmus_run = 0;
    let mut matrix = 0;
    let mut cost = 0;
    for rep in reports {
        for r in &rep.records {
            match r {
                Record::Litmus(l) => {
                    litmus += 1;
                    if l.verdict != Verdict::Skipped {
                        litmus_run += 1;
                    }
                }
                Record::Probe(p) if p.family == "cost" => cost += 1,
                Record::Probe(_) => matrix += 1,
                _ => {}
            }
        }
    }
    assert!(
        litmus > 0 && matrix > 0,
        "the run has litmus and matrix records"
    );
    assert_eq!(
        count(&dom, "<figure class=\"litmus-chart\""),
        litmus,
        "litmus figures"
    );
    let cost_charts = count(&dom, "<figure class=\"cost-chart\"");
    let cost_empty = count(&dom, "every cost probe skipped");
    assert_eq!(
        count(&dom, "<svg"),
        litmus_run + cost_charts - cost_empty,
        "one chart per litmus record that ran and per cost group"
    );
    assert_eq!(
        count(&dom, "<span class=\"rec mark "),
        matrix,
        "matrix marks"
    );
    assert_eq!(count(&dom, "<tr class=\"rec-row\""), cost, "cost rows");
    let labels = labels(reports.len());
    let lit_rows = build_rows(reports, &labels)
        .iter()
        .filter(|r| r.kind == "litmus")
        .count();
    assert_eq!(
        count(&dom, "<tr class=\"litmus-row\""),
        lit_rows,
        "litmus rows"
    );
    // Each plotted histogram has one bar label per outcome: the chart's text is the outcome.
    for rep in reports {
        for r in &rep.records {
            if let Record::Litmus(l) = r {
                for o in &l.histogram {
                    assert!(dom.contains(&o.outcome), "outcome {} not drawn", o.outcome);
                }
            }
        }
    }

    let (_, err) = chrome(
        bin,
        html,
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=1400,2200",
        ],
    );
    let meta = std::fs::metadata(png).unwrap_or_else(|e| panic!("no screenshot ({e}): {err}"));
    assert!(
        meta.len() > 10_000,
        "screenshot too small: {} bytes",
        meta.len()
    );
}

#[test]
fn html_report_of_a_virt_run_and_a_comparison_in_chromium() {
    let Some(bin) = chromium() else { return };
    let Some(o) = common::boot(Board::Virt, |opts| {
        opts.append = Some("probes=fault,tear,cost/dmb*,litmus/SB,litmus/MP iters=1k".into());
    }) else {
        return;
    };
    o.assert_complete();
    let dir = artifacts();
    let virt = dir.join("report-virt.jsonl");
    atomprobe::view::save_report(Some(&virt), "qemu-virt", &o.0.log).unwrap();

    // The same subset hosted, through the CLI (quiet: only the final line).
    let host = dir.join("report-hosted.jsonl");
    let out = atomprobe(&[
        "host",
        "--probes",
        "fault,tear,cost/mfence,litmus/SB,litmus/MP",
        "--iters",
        "1k",
        "--quiet",
        "--out",
        host.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        out.stdout.is_empty(),
        "--quiet prints nothing on stdout: {out:?}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.lines().count(),
        1,
        "--quiet: only the final line: {err}"
    );
    assert!(err.contains("report saved to"), "{err}");

    let virt_rep = parse_report(&std::fs::read_to_string(&virt).unwrap());
    let host_rep = parse_report(&std::fs::read_to_string(&host).unwrap());
    assert!(virt_rep.integrity.is_verified() && host_rep.integrity.is_verified());

    // `show` prints the summary of the saved report.
    let out = atomprobe(&["show", virt.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.starts_with("atomprobe: qemu-virt aarch64"), "{s}");
    assert!(s.contains("\nlitmus: ") && s.contains("\nfault "), "{s}");

    // One run.
    let one = dir.join("report-virt.html");
    let out = atomprobe(&[
        "report",
        virt.to_str().unwrap(),
        "--html",
        one.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    check_in_browser(&bin, &one, &[&virt_rep], &dir.join("report-virt.png"));

    // Virt vs hosted, side by side.
    let cmp = dir.join("report-virt-vs-hosted.html");
    let out = atomprobe(&[
        "report",
        virt.to_str().unwrap(),
        host.to_str().unwrap(),
        "--html",
        cmp.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    check_in_browser(
        &bin,
        &cmp,
        &[&virt_rep, &host_rep],
        &dir.join("report-virt-vs-hosted.png"),
    );
    let html = std::fs::read_to_string(&cmp).unwrap();
    assert!(html.contains("A: qemu-virt aarch64") && html.contains("B: hosted-"));
    // MP is allowed by aarch64.cat and forbidden by x86-TSO: the cells are outlined.
    assert!(
        html.contains("class=\"run differs\""),
        "no differing cell outlined"
    );

    // A damaged report is refused by show and report, and rendered with a banner on request.
    let text = std::fs::read_to_string(&virt).unwrap();
    let bad = dir.join("report-virt-damaged.jsonl");
    std::fs::write(
        &bad,
        text.replacen("\"iterations\":", "\"iterations\":1", 1),
    )
    .unwrap();
    for args in [
        vec!["show", bad.to_str().unwrap()],
        vec![
            "report",
            bad.to_str().unwrap(),
            "--html",
            "/nonexistent/x.html",
        ],
    ] {
        let out = atomprobe(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(e.contains("is Corrupted (CRC mismatch"), "{e}");
        assert!(e.contains("--allow-damaged"), "{e}");
    }
    let out = atomprobe(&["show", "--allow-damaged", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("*** DAMAGED REPORT"));
    let dmg = dir.join("report-virt-damaged.html");
    let out = atomprobe(&[
        "report",
        "--allow-damaged",
        bad.to_str().unwrap(),
        "--html",
        dmg.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let (dom, _) = chrome(&bin, &dmg, &["--dump-dom"]);
    assert!(
        dom.contains("<div class=\"banner\">DAMAGED REPORT A:"),
        "no banner"
    );

    // A run whose boot arguments were not all used as given completes and exits 2; --quiet
    // prints only the final line, which says so.
    let root = atomprobe::require_root().unwrap();
    let profile = atomprobe::Profile::load(Board::Virt, Some(&root))
        .unwrap()
        .0;
    let elf = atomprobe::kernel::board_elf_path(&root, &profile, true);
    let rep = dir.join("report-virt-badarg.jsonl");
    let t = common::timeout().as_secs().to_string();
    let out = atomprobe(&[
        "run",
        "--kernel",
        elf.to_str().unwrap(),
        "--append",
        "probes=litmus/SB iters=1k colour=blue",
        "--timeout",
        &t,
        "--quiet",
        "--out",
        rep.to_str().unwrap(),
    ]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{e}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(
        e.contains("Result: PASS") && e.contains("exit status 2"),
        "{e}"
    );
    let r = parse_report(&std::fs::read_to_string(&rep).unwrap());
    assert!(r.integrity.is_verified());
    assert!(r.records.iter().any(
        |x| matches!(x, Record::Error(e) if e.what == "bootarg" && e.message.contains("colour"))
    ));
}
