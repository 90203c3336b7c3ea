//! What people see of a run: the live progress line, the one-screen summary, and the report
//! saved to a file. Shared by `run`, `host`, `capture`, `show` (and any later command that
//! produces a report, e.g. `litmus`: see [`Progress`], [`save_report`] and [`finish`]).
//!
//! Three output modes ([`OutputArgs`]): the default shows a progress line (only when stdout is a
//! terminal) and then [`summary::render`]; `--raw` streams the serial lines / records as they
//! come (what `run` and `host` printed before the summary existed); `--quiet` prints only the
//! final line. In every mode the complete report is saved (`--out`, default
//! [`default_report_path`]).

pub mod model;
pub mod summary;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use probes::record::Record;
use probes::report::ParsedReport;

use crate::RunError;

/// `--raw` / `--quiet`, shared by the commands that produce a report.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct OutputArgs {
    /// Stream the serial lines (records and text) as they arrive instead of the progress line
    /// and summary.
    #[arg(long, conflicts_with = "quiet")]
    pub raw: bool,
    /// Print only the final line (the verdict and where the report was saved).
    #[arg(long, short)]
    pub quiet: bool,
}

/// How much a command prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Progress line, then the summary.
    Summary,
    /// The serial lines / records as they arrive.
    Raw,
    /// Only the final line.
    Quiet,
}

impl OutputArgs {
    pub fn mode(&self) -> Mode {
        if self.raw {
            Mode::Raw
        } else if self.quiet {
            Mode::Quiet
        } else {
            Mode::Summary
        }
    }
}

/// Folder of the default report path, relative to the current directory.
pub const REPORTS_DIR: &str = "reports";

/// `reports/<board>-<UTC time>.jsonl`, e.g. `reports/qemu-virt-20261204T131500Z.jsonl`.
pub fn default_report_path(board: &str) -> PathBuf {
    let board: String = board
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let board = if board.is_empty() { "report" } else { &board };
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    PathBuf::from(REPORTS_DIR).join(format!("{board}-{}.jsonl", utc_stamp(secs)))
}

/// `YYYYMMDDTHHMMSSZ` for seconds since the Unix epoch (civil-from-days, proleptic Gregorian;
/// written out here rather than pulling a date crate in for one timestamp).
pub fn utc_stamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The report as saved: every record line of `text` (a serial log or record file), in order,
/// each followed by `\n` (`\r` and serial noise before the record stripped, as the CRC is
/// computed), so the file is JSON Lines and verifies exactly as the log does.
pub fn report_lines(text: &str) -> String {
    let mut s = String::new();
    for line in text.split('\n') {
        if let Some(r) = probes::report::record_text(line) {
            s.push_str(r);
            s.push('\n');
        }
    }
    s
}

/// Write `contents` to `path` (parent folders created) through a temporary file renamed into
/// place, so an interrupted write leaves no half-written report.
pub fn save_file(path: &Path, contents: &str) -> Result<(), RunError> {
    let io = |e: std::io::Error| RunError::Io(format!("cannot write {}: {e}", path.display()));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".part{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let r = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(contents.as_bytes()).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = r {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(())
}

/// Check before a run that its report can be written to `out` (or into [`REPORTS_DIR`]), so a
/// long run is not wasted on a path that cannot be written: creates the folder and a temporary
/// file next to the report, then removes the file.
pub fn check_writable(out: Option<&Path>) -> Result<(), RunError> {
    let probe = out.map_or_else(|| PathBuf::from(REPORTS_DIR).join("x"), Path::to_path_buf);
    let io = |e: std::io::Error| {
        RunError::Io(format!(
            "cannot write the report to {}: {e}",
            out.map_or_else(|| format!("{REPORTS_DIR}/"), |p| p.display().to_string())
        ))
    };
    if let Some(dir) = probe.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut tmp = probe.into_os_string();
    tmp.push(format!(".check{}", std::process::id()));
    std::fs::File::create(&tmp).map_err(io)?;
    let _ = std::fs::remove_file(&tmp);
    Ok(())
}

/// Save the records of `text` to `out` (or the default path for `board`); returns the path.
pub fn save_report(out: Option<&Path>, board: &str, text: &str) -> Result<PathBuf, RunError> {
    let path = out.map_or_else(|| default_report_path(board), Path::to_path_buf);
    save_file(&path, &report_lines(text))?;
    Ok(path)
}

/// The board named by the report's `begin` record, if any.
pub fn board_of(report: &ParsedReport) -> Option<&str> {
    report.records.iter().find_map(|r| match r {
        Record::Begin(b) => Some(b.board.as_str()),
        _ => None,
    })
}

/// The message refusing a damaged report, or `None` when it verifies.
pub fn refuse_damaged(name: &str, report: &probes::report::ParsedReport) -> Option<String> {
    (!report.integrity.is_verified()).then(|| {
        format!(
            "refusing damaged report: {name} is {}. A truncated or corrupted report can hide or \
             alter results; recapture it, or pass --allow-damaged to show it under a banner",
            crate::compare::integrity_text(&report.integrity)
        )
    })
}

/// Whether the report holds `error` records about boot arguments / options that were not used
/// as given (the run went ahead with the defaults they name): such a run ends with status 2.
pub fn bootarg_errors(report: &ParsedReport) -> usize {
    report
        .records
        .iter()
        .filter(|r| matches!(r, Record::Error(e) if e.what == "bootarg"))
        .count()
}

/// Exit status of a completed run whose boot arguments were not all used as given (as `atomprobe
/// host` has always used for a rejected option).
pub const EXIT_BAD_BOOTARG: i32 = 2;

/// The live progress line: family and probe of the last record, records so far, elapsed time.
/// Drawn on stdout only when stdout is a terminal (indicatif hides it otherwise), and only in
/// [`Mode::Summary`].
pub struct Progress {
    bar: ProgressBar,
    records: usize,
    start: Instant,
}

impl Progress {
    /// A progress line labelled `what` (e.g. `qemu-virt`), shown when `mode` is
    /// [`Mode::Summary`] and stdout is a terminal.
    pub fn new(mode: Mode, what: &str) -> Progress {
        let target = if mode == Mode::Summary {
            ProgressDrawTarget::stdout()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(None, target);
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {prefix} {wide_msg}")
        {
            bar.set_style(style);
        }
        bar.set_prefix(what.to_string());
        bar.set_message("starting");
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress {
            bar,
            records: 0,
            start: Instant::now(),
        }
    }

    /// Account for one record line (text after any serial noise) or any other serial line.
    pub fn line(&mut self, line: &str) {
        if let Some(t) = probes::report::record_text(line) {
            if let Ok(rec) = Record::from_line(t) {
                self.record(&rec);
            }
        }
    }

    /// Account for one record.
    pub fn record(&mut self, rec: &Record) {
        self.records += 1;
        let what = match rec {
            Record::Probe(p) => format!("{}/{} {}", p.family, p.name, p.attr),
            Record::Litmus(l) => format!("litmus/{} {}", l.name, l.attr),
            Record::Begin(b) => format!("{} started", b.board),
            Record::Cpu(c) => format!("cpu {}", c.index),
            Record::Error(e) => format!("error ({})", e.what),
            Record::End(_) => "end".to_string(),
        };
        self.bar
            .set_message(format!("{} records · {what}", self.records));
    }

    pub fn records(&self) -> usize {
        self.records
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Remove the line (before the summary is printed).
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// End a command that produced a report from a serial log or record stream (`run`, `capture`,
/// and any later command that boots or captures, e.g. `litmus`): save the records of `text` to
/// `out` (default [`default_report_path`] of the report's board, else `board_fallback`); when
/// the run did not succeed, keep the whole serial text beside it as `<report>.serial.txt` (a
/// fault dump is not a record); print the summary (per `mode`) and the final line, which is
/// `verdict` plus where the report went. Returns the exit status: 1 when `success` is false, 2
/// ([`EXIT_BAD_BOOTARG`]) when the run completed but some boot arguments were not used as
/// given, else 0.
pub fn conclude(
    mode: Mode,
    out: Option<&Path>,
    board_fallback: &str,
    text: &str,
    verdict: &str,
    success: bool,
) -> Result<i32, RunError> {
    let report = probes::report::parse_report(text);
    let board = board_of(&report).unwrap_or(board_fallback).to_string();
    let saved = save_report(out, &board, text)?;
    let mut final_line = format!("{verdict} Report saved to {}.", saved.display());
    if !success {
        let mut serial = saved.clone().into_os_string();
        serial.push(".serial.txt");
        let serial = PathBuf::from(serial);
        save_file(&serial, text)?;
        final_line.push_str(&format!(" Serial log: {}.", serial.display()));
    }
    let bad_args = bootarg_errors(&report);
    let status = if !success {
        crate::cli::EXIT_FAIL
    } else if bad_args > 0 {
        final_line.push_str(&format!(
            " {bad_args} boot argument{} not used as given (the report's error records say \
             which and what was used instead): exit status {EXIT_BAD_BOOTARG}.",
            if bad_args == 1 { " was" } else { "s were" },
        ));
        EXIT_BAD_BOOTARG
    } else {
        0
    };
    finish(mode, &report, &saved, &final_line);
    Ok(status)
}

/// Print what a finished run shows: in [`Mode::Summary`] the summary of `report` (saved at
/// `saved`) on stdout; the `final_line` on stderr in every mode.
pub fn finish(mode: Mode, report: &ParsedReport, saved: &Path, final_line: &str) {
    if mode == Mode::Summary {
        let opts = summary::Options::default();
        crate::cli::out(format_args!(
            "{}",
            summary::render(&model::Run::new(report), Some(saved), &opts)
        ));
    }
    eprintln!("{final_line}");
}

/// A writer that hands each complete line written to it to a callback (for watching a byte
/// stream, e.g. a serial port, line by line).
pub struct LineSplitter<F: FnMut(&str)> {
    pending: Vec<u8>,
    on_line: F,
}

impl<F: FnMut(&str)> LineSplitter<F> {
    pub fn new(on_line: F) -> Self {
        LineSplitter {
            pending: Vec::new(),
            on_line,
        }
    }
}

impl<F: FnMut(&str)> Write for LineSplitter<F> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        while let Some(nl) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=nl).collect();
            let line = String::from_utf8_lossy(&line);
            (self.on_line)(line.trim_end_matches(['\r', '\n']));
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamps() {
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        // 2026-12-04 13:15:00 UTC
        assert_eq!(utc_stamp(1_796_390_100), "20261204T131500Z");
        // 2000-02-29 23:59:59 UTC (leap day)
        assert_eq!(utc_stamp(951_868_799), "20000229T235959Z");
        let p = default_report_path("qemu virt/x");
        let s = p.to_string_lossy();
        assert!(
            s.starts_with("reports/qemu_virt_x-") && s.ends_with("Z.jsonl"),
            "{s}"
        );
    }

    #[test]
    fn saved_report_is_the_record_lines_and_verifies() {
        let mut w = probes::report::ReportWriter::new();
        let rec = Record::Error(probes::record::ErrorRec {
            what: "bootarg".into(),
            message: "m".into(),
        });
        let log = format!(
            "banner\r\n\x1b[0m{}\r\nsome text\r\n{}\r\n",
            w.encode(&rec),
            w.end(probes::record::RunStatus::Complete, 1).to_line()
        );
        let lines = report_lines(&log);
        assert_eq!(lines.lines().count(), 2);
        assert!(lines.starts_with("{\"type\":\"error\""));
        let rep = probes::report::parse_report(&lines);
        assert!(rep.integrity.is_verified(), "{:?}", rep.integrity);
        assert_eq!(bootarg_errors(&rep), 1);

        let dir = std::env::temp_dir().join(format!("atomprobe-view-{}", std::process::id()));
        let p = dir.join("sub/r.jsonl");
        check_writable(Some(&p)).unwrap();
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 0);
        let e = check_writable(Some(Path::new("/proc/no/such/r.jsonl"))).unwrap_err();
        assert!(
            e.to_string()
                .contains("cannot write the report to /proc/no/such/r.jsonl"),
            "{e}"
        );
        assert_eq!(save_report(Some(&p), "x", &log).unwrap(), p);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), lines);
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn conclude_saves_and_sets_the_exit_status() {
        let mut w = probes::report::ReportWriter::new();
        let err = Record::Error(probes::record::ErrorRec {
            what: "bootarg".into(),
            message: "colour=blue: unknown key".into(),
        });
        let log = format!(
            "banner\r\n{}\r\n{}\r\n",
            w.encode(&err),
            w.end(probes::record::RunStatus::Complete, 1).to_line()
        );
        let dir = std::env::temp_dir().join(format!("atomprobe-conclude-{}", std::process::id()));
        let p = dir.join("r.jsonl");
        let serial = dir.join("r.jsonl.serial.txt");
        // Complete, but a boot argument was not used: 2, and no serial log kept.
        assert_eq!(
            conclude(Mode::Quiet, Some(&p), "b", &log, "v.", true).unwrap(),
            EXIT_BAD_BOOTARG
        );
        assert!(
            probes::report::parse_report(&std::fs::read_to_string(&p).unwrap())
                .integrity
                .is_verified()
        );
        assert!(!serial.exists());
        // A failed run: 1, and the whole serial text kept beside the report.
        assert_eq!(
            conclude(Mode::Quiet, Some(&p), "b", &log, "v.", false).unwrap(),
            crate::cli::EXIT_FAIL
        );
        assert_eq!(std::fs::read_to_string(&serial).unwrap(), log);
        // Nothing wrong: 0.
        let w2 = probes::report::ReportWriter::new();
        let clean = format!(
            "{}\n",
            w2.end(probes::record::RunStatus::Complete, 1).to_line()
        );
        assert_eq!(
            conclude(Mode::Quiet, Some(&p), "b", &clean, "v.", true).unwrap(),
            0
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn progress_counts_records_from_serial_lines() {
        let mut pr = Progress::new(Mode::Quiet, "t");
        pr.line("plain text");
        pr.line("\x1b[0m{\"type\":\"error\",\"what\":\"cpu\",\"message\":\"m\"}\r");
        pr.line("{\"type\":\"garbled");
        assert_eq!(pr.records(), 1);
        pr.finish();
        let mut lines = Vec::new();
        let mut split = LineSplitter::new(|l: &str| lines.push(l.to_string()));
        split.write_all(b"a\r\nb").unwrap();
        split.write_all(b"c\n").unwrap();
        drop(split);
        assert_eq!(lines, ["a", "bc"]);
    }
}
