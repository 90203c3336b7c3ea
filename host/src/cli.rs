//! The `atomprobe` command line: `run`, `image`, `parse`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use probes::record::{Record, RunStatus};
use probes::report::Integrity;

use crate::profile::Board;
use crate::{RunError, RunOpts};

/// Exit status for a run that failed or a file that did not verify.
pub const EXIT_FAIL: i32 = 1;
/// Exit status for usage errors (as clap uses).
pub const EXIT_USAGE: i32 = 2;
/// Exit status when stdout was closed before everything was written (`atomprobe parse F | head
/// -2`): 128 + SIGPIPE (13), the status a shell reports for `cat`, `grep` or `yes` ended by the
/// same closed pipe, so `set -o pipefail` scripts see atomprobe behave like them. Nothing is
/// printed on stderr for it.
pub const EXIT_BROKEN_PIPE: i32 = 141;

/// Write formatted text to stdout through [`out`] (instead of `print!`, which panics when the
/// reader has gone away).
#[macro_export]
macro_rules! outln {
    () => {
        $crate::cli::out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Write `args` to stdout; when stdout is a closed pipe, end the process quietly with
/// [`EXIT_BROKEN_PIPE`] (see [`exit_on_closed`]). Every subcommand's stdout goes through here or
/// through [`ClosedPipeExit`].
pub fn out(args: std::fmt::Arguments) {
    let mut o = std::io::stdout().lock();
    let r = o.write_fmt(args).and_then(|()| o.flush());
    exit_on_closed(r);
}

/// Act on the result of a write to stdout: nothing when it worked, else [`exit_on_write_error`].
pub fn exit_on_closed(r: std::io::Result<()>) {
    if let Err(e) = r {
        exit_on_write_error(&e)
    }
}

/// End the process after a failed write to stdout: a closed pipe with [`EXIT_BROKEN_PIPE`],
/// silently; any other error with [`EXIT_FAIL`] and a message (stdout is gone, so the command
/// cannot do its job).
pub fn exit_on_write_error(e: &std::io::Error) -> ! {
    if is_closed_pipe(e) {
        std::process::exit(EXIT_BROKEN_PIPE)
    }
    eprintln!("atomprobe: error: cannot write to stdout: {e}");
    std::process::exit(EXIT_FAIL)
}

/// Whether `e` says the reading end of the pipe was closed (EPIPE; on Windows ERROR_NO_DATA or
/// ERROR_BROKEN_PIPE, which Rust maps to the same kind).
pub fn is_closed_pipe(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::BrokenPipe
}

/// A writer (stdout) whose write errors end the process as [`out`] does: for output handed to
/// code that writes through `dyn Write` and ignores errors (the hosted platform's records).
pub struct ClosedPipeExit<W: Write>(pub W);

impl<W: Write> Write for ClosedPipeExit<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.write(buf) {
            Err(e) if e.kind() != std::io::ErrorKind::Interrupted => exit_on_write_error(&e),
            r => r,
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self.0.flush() {
            Err(e) if e.kind() != std::io::ErrorKind::Interrupted => exit_on_write_error(&e),
            r => r,
        }
    }
}

/// Backstop for output written with `print!` (which panics with "failed printing to stdout: …"
/// when the reader has gone away): such a panic for a closed pipe ends the process as [`out`]
/// does, quietly; every other panic is reported by the default hook.
fn install_closed_pipe_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload_as_str().is_some_and(is_stdout_pipe_panic) {
            std::process::exit(EXIT_BROKEN_PIPE);
        }
        default(info)
    }));
}

/// Whether a panic message is std's `print!` failure on a closed stdout pipe: "failed printing to
/// stdout: <error>", the error ending in "(os error N)" with N an OS code for a closed pipe.
fn is_stdout_pipe_panic(msg: &str) -> bool {
    let Some(err) = msg.strip_prefix("failed printing to stdout: ") else {
        return false;
    };
    err.rsplit_once("(os error ")
        .and_then(|(_, n)| n.strip_suffix(')'))
        .and_then(|n| n.parse::<i32>().ok())
        .is_some_and(|code| is_closed_pipe(&std::io::Error::from_raw_os_error(code)))
}

#[derive(Parser, Debug)]
#[command(
    name = "atomprobe",
    version,
    about = "Boot the atomprobe image in QEMU, build board images, check captured reports"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Build the image for a board, boot it in QEMU, stream its serial output and check the report.
    Run(RunArgs),
    /// Build a ready-to-flash disk image (or its files in a folder): an SD card for a real
    /// Raspberry Pi 4, or a UEFI USB stick for PCs and Arm servers.
    Image(ImageArgs),
    /// Check a captured serial log or record file: integrity and records per type.
    Parse(ParseArgs),
    /// Run the probe suite on this machine as OS threads pinned to CPUs (board `hosted-<os>`);
    /// records to stdout or --out, progress and a per-family summary to stderr.
    Host(crate::hosted_cmd::HostArgs),
    /// Compare reports side by side (probe and litmus records matched by name, attribute and
    /// width) with a column marking where they disagree; damaged reports are refused.
    Compare(crate::compare::CompareArgs),
    /// Write a report's litmus records as a litmus7 log (for herdtools7's mcompare7 and msum7).
    Export(crate::export::ExportArgs),
    /// Read a board's serial console until the end record (or --timeout), showing progress;
    /// check the report's integrity and save the log (exit 0 only when verified).
    Capture(crate::capture::CaptureArgs),
    /// Print the one-screen summary of a saved report (what run, host and capture print).
    Show(crate::show_cmd::ShowArgs),
    /// Write one or more saved reports as a self-contained HTML page with charts (several:
    /// side by side, differences outlined).
    Report(crate::report_cmd::ReportArgs),
    /// Run herdtools7 .litmus files (files, directories, @lists) on a board or hosted; shows
    /// progress and the summary, as run does, and saves the report.
    Litmus(crate::litmus_cmd::LitmusArgs),
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Board profile (`qemu/<board>.toml`).
    #[arg(long, value_enum, default_value = "virt")]
    pub board: Board,
    /// QEMU CPU model (-cpu), instead of the profile's default.
    #[arg(long, value_name = "MODEL")]
    pub cpu: Option<String>,
    /// Number of cores (-smp), instead of the profile's default.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub smp: Option<u32>,
    /// Boot arguments for the image (-append), e.g. "probes=fault iters=1000".
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    pub append: Option<String>,
    /// Save the report (its record lines, JSON Lines) to FILE instead of
    /// `reports/<board>-<UTC time>.jsonl`. A run that fails also keeps its whole serial log
    /// beside it (FILE.serial.txt).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub output: crate::view::OutputArgs,
    /// Kill QEMU after S seconds without an end of run. Default: 120 s per mapping combination
    /// the boot arguments ask for (mapping= × share= × caches= × mtrr=).
    #[arg(long, value_name = "S", value_parser = parse_timeout)]
    pub timeout: Option<f64>,
    /// Enter at EL2 (-M virt,virtualization=on).
    #[arg(long)]
    pub virtualization: bool,
    /// Boot this kernel ELF instead of building one.
    #[arg(long, value_name = "PATH")]
    pub kernel: Option<PathBuf>,
    /// Boot a copy of the arm64 Image with this header text_offset (hex or decimal), so QEMU
    /// loads it there: emulates firmware loading kernel8.img elsewhere (virt, raspi4b).
    #[arg(long, value_name = "OFFSET", value_parser = parse_text_offset)]
    pub text_offset: Option<u64>,
    /// Extra QEMU argument, passed through (repeatable; use --qemu-arg=-d for dashes).
    #[arg(long = "qemu-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub qemu_arg: Vec<String>,
    /// Build the kernel in release mode (the default).
    #[arg(long, conflicts_with = "debug")]
    pub release: bool,
    /// Build the kernel in debug mode.
    #[arg(long)]
    pub debug: bool,
}

fn parse_text_offset(s: &str) -> Result<u64, String> {
    let v = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    }
    .map_err(|_| format!("`{s}` is not a number (e.g. 0x200000)"))?;
    crate::kernel::check_text_offset(v)?;
    Ok(v)
}

fn parse_timeout(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(v > 0.0 && v <= 86_400.0) {
        return Err(format!(
            "{s}: accepted is more than 0 and at most 86400 seconds"
        ));
    }
    Ok(v)
}

/// Real boards `atomprobe image` builds for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RealBoard {
    /// Raspberry Pi 4 Model B.
    Rpi4,
    /// PCs and Arm servers: a UEFI disk image (GPT + ESP) for a USB stick, x86-64 and AArch64.
    Uefi,
}

#[derive(clap::Args, Debug)]
pub struct ImageArgs {
    #[arg(long, value_enum)]
    pub board: RealBoard,
    /// Disk image to write (e.g. atomprobe-rpi4.img, atomprobe-uefi.img); a folder when it
    /// ends in `/` or is an existing directory (the same files, for an existing FAT32 card/stick).
    #[arg(long, value_name = "FILE|DIR/")]
    pub out: PathBuf,
    /// Boot arguments written to cmdline.txt.
    #[arg(
        long,
        value_name = "ARGS",
        default_value = "",
        allow_hyphen_values = true
    )]
    pub append: String,
    /// Folder with the Raspberry Pi firmware (start4.elf, fixup4.dat, bcm2711-rpi-4-b.dtb), e.g.
    /// the boot partition of a Raspberry Pi OS card; default: the cache that
    /// scripts/fetch-rpi-firmware fills (target/rpi-firmware/).
    #[arg(long, value_name = "DIR")]
    pub firmware: Option<PathBuf>,
    /// Use this kernel ELF instead of building one.
    #[arg(long, value_name = "PATH")]
    pub kernel: Option<PathBuf>,
    /// Build the kernel in debug mode.
    #[arg(long)]
    pub debug: bool,
    /// Run these herdtools7 .litmus files (files, directories, @lists, as `atomprobe litmus`
    /// takes them) instead of the built-in litmus tests: the kernel is built with them and
    /// cmdline.txt starts with `probes=litmus`. A file that cannot be taken is refused alone
    /// (listed on stderr); the image is written when at least one test remains.
    #[arg(long, value_name = "FILE|DIR|@LIST", num_args = 1.., conflicts_with_all = ["kernel", "debug"])]
    pub litmus: Vec<String>,
    /// With --litmus: a kinds file (herd7's `Name Allow|Forbid|Require` lines) judging the tests
    /// by name, before the shipped catalogue kinds.
    #[arg(long, value_name = "FILE", requires = "litmus")]
    pub kinds: Option<PathBuf>,
    /// With --litmus: herd7's output for the tests (its `States` lists): an outcome the board
    /// observes outside a test's allowed final states is a `violation` (as `atomprobe litmus
    /// --states`).
    #[arg(long, value_name = "FILE", requires = "litmus")]
    pub states: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct ParseArgs {
    /// Serial log or record file.
    pub file: PathBuf,
}

/// Entry point of the binary; returns the process exit status.
pub fn main() -> i32 {
    install_closed_pipe_hook();
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Run(a) => cmd_run(a),
        Cmd::Image(a) => crate::image::cmd_image(a),
        Cmd::Parse(a) => cmd_parse(&a.file),
        Cmd::Host(a) => crate::hosted_cmd::cmd_host(a),
        Cmd::Compare(a) => crate::compare::cmd_compare(a),
        Cmd::Export(a) => crate::export::cmd_export(a),
        Cmd::Capture(a) => crate::capture::cmd_capture(a),
        Cmd::Show(a) => crate::show_cmd::cmd_show(a),
        Cmd::Report(a) => crate::report_cmd::cmd_report(a),
        Cmd::Litmus(a) => crate::litmus_cmd::cmd_litmus(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("atomprobe: error: {e}");
            match e {
                RunError::Usage(_) | RunError::Input(_) => EXIT_USAGE,
                _ => EXIT_FAIL,
            }
        }
    }
}

fn cmd_run(a: RunArgs) -> Result<i32, RunError> {
    use crate::view::{self, Mode};
    let mode = a.output.mode();
    view::check_writable(a.out.as_deref())?;
    let timeout = a.timeout.map_or_else(
        || crate::default_timeout(a.board, a.append.as_deref()),
        Duration::from_secs_f64,
    );
    let opts = RunOpts {
        board: a.board,
        cpu: a.cpu,
        smp: a.smp,
        append: a.append,
        // The raw serial log is kept in memory and saved after the run (below).
        out: None,
        timeout,
        virtualization: a.virtualization,
        kernel: a.kernel,
        qemu_args: a.qemu_arg,
        release: !a.debug,
        echo: mode == Mode::Raw,
        text_offset: a.text_offset,
    };
    let mut progress = view::Progress::new(mode, a.board.name());
    let outcome = crate::run_board_with(&opts, &mut |line| progress.line(line));
    progress.finish();
    let outcome = outcome?;
    if outcome.timed_out && mode != Mode::Quiet {
        eprintln!("{}", outcome.timeout_message());
    }
    view::conclude(
        mode,
        a.out.as_deref(),
        a.board.name(),
        &outcome.log,
        &outcome.verdict(),
        outcome.success(),
    )
}

fn cmd_parse(file: &Path) -> Result<i32, RunError> {
    let report = crate::compare::load_report(file)?;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &report.records {
        *counts.entry(r.type_name()).or_default() += 1;
    }
    let mut results: BTreeMap<String, usize> = BTreeMap::new();
    for r in &report.records {
        if let Record::Probe(p) = r {
            *results
                .entry(
                    serde_json::to_string(&p.result)
                        .unwrap_or_default()
                        .trim_matches('"')
                        .to_string(),
                )
                .or_default() += 1;
        }
    }
    let integrity = match &report.integrity {
        Integrity::Verified => "Verified".to_string(),
        Integrity::Truncated(m) => format!("Truncated: {m}"),
        Integrity::Corrupted(m) => format!("Corrupted: {m}"),
    };
    crate::outln!("{}: {} record lines", file.display(), report.lines.len());
    crate::outln!("integrity: {integrity}");
    for (t, n) in &counts {
        crate::outln!("  {t:<8} {n}");
    }
    if !results.is_empty() {
        let r: Vec<String> = results.iter().map(|(k, v)| format!("{k} {v}")).collect();
        crate::outln!("probe results: {}", r.join(", "));
    }
    if let Some(end) = report.end() {
        crate::outln!(
            "end: status {}, {} ms",
            match end.status {
                RunStatus::Complete => "complete",
                RunStatus::Aborted => "aborted",
            },
            end.elapsed_ms
        );
    }
    Ok(if report.integrity.is_verified() {
        0
    } else {
        EXIT_FAIL
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_args_parse_with_aliases_and_defaults() {
        let cli = Cli::try_parse_from(["atomprobe", "run", "--board", "qemu-virt"]).unwrap();
        let Cmd::Run(a) = cli.command else { panic!() };
        assert_eq!(a.board, Board::Virt);
        assert_eq!(a.timeout, None);
        assert!(!a.debug);

        let cli = Cli::try_parse_from([
            "atomprobe",
            "run",
            "--board",
            "pc",
            "--append",
            "probes=fault iters=3",
            "--qemu-arg=-d",
            "--qemu-arg",
            "int",
            "--debug",
            "--smp",
            "2",
        ])
        .unwrap();
        let Cmd::Run(a) = cli.command else { panic!() };
        assert_eq!(a.board, Board::Pc);
        assert_eq!(a.qemu_arg, ["-d", "int"]);
        assert!(a.debug);
        assert_eq!(a.smp, Some(2));
    }

    #[test]
    fn text_offset_parses_hex_and_decimal_and_refuses_the_rest() {
        let parse = |v: &str| {
            Cli::try_parse_from(["atomprobe", "run", "--board", "raspi4b", "--text-offset", v]).map(
                |c| match c.command {
                    Cmd::Run(a) => a.text_offset,
                    _ => panic!(),
                },
            )
        };
        assert_eq!(parse("0x200000").unwrap(), Some(0x20_0000));
        assert_eq!(parse("16777216").unwrap(), Some(0x100_0000));
        for bad in ["0x200001", "lots", "0x80000000"] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains("--text-offset"), "{e}");
        }
    }

    #[test]
    fn usage_errors_say_what_is_accepted() {
        let e = Cli::try_parse_from(["atomprobe", "run", "--board", "sparc"]).unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("virt") && s.contains("raspi4b") && s.contains("pc"),
            "{s}"
        );
        assert_eq!(e.exit_code(), 2);
        let e = Cli::try_parse_from(["atomprobe", "run", "--timeout", "0"]).unwrap_err();
        assert!(e.to_string().contains("seconds"), "{e}");
        assert!(Cli::try_parse_from(["atomprobe", "run", "--release", "--debug"]).is_err());
        assert!(Cli::try_parse_from(["atomprobe", "run", "--smp", "0"]).is_err());
    }

    #[test]
    fn stdout_pipe_panics_are_recognised() {
        let epipe = std::io::Error::from_raw_os_error(if cfg!(windows) { 232 } else { 32 });
        assert!(is_closed_pipe(&epipe));
        assert!(is_stdout_pipe_panic(&format!(
            "failed printing to stdout: {epipe}"
        )));
        // Other write failures and other panics are not hidden.
        let enospc = std::io::Error::from_raw_os_error(if cfg!(windows) { 112 } else { 28 });
        assert!(!is_stdout_pipe_panic(&format!(
            "failed printing to stdout: {enospc}"
        )));
        assert!(!is_stdout_pipe_panic(&format!(
            "failed printing to stderr: {epipe}"
        )));
        assert!(!is_stdout_pipe_panic("index out of bounds"));
    }

    /// Runs this test binary again as a child whose stdout is a pipe closed after the first line:
    /// `outln!`, `ClosedPipeExit` and a plain `print!` (through the panic hook) must each end the
    /// child with EXIT_BROKEN_PIPE and nothing on stderr.
    #[cfg(unix)]
    #[test]
    fn closed_stdout_ends_quietly() {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};
        const ROLE: &str = "ATOMPROBE_TEST_CLOSED_STDOUT";
        if let Ok(how) = std::env::var(ROLE) {
            install_closed_pipe_hook();
            for i in 0..1_000_000 {
                match how.as_str() {
                    "outln" => crate::outln!("line {i}"),
                    "writer" => {
                        let mut w = ClosedPipeExit(std::io::stdout());
                        let _ = writeln!(w, "line {i}");
                    }
                    _ => {
                        // std's print! panics on EPIPE; the hook must turn that into the exit.
                        println!("line {i}");
                        let _ = std::io::stdout().flush();
                    }
                }
            }
            std::process::exit(0);
        }
        for how in ["outln", "writer", "print"] {
            let mut child = Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "cli::tests::closed_stdout_ends_quietly",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(ROLE, how)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let mut r = BufReader::new(child.stdout.take().unwrap());
            let mut first = String::new();
            while !first.starts_with("line ") {
                first.clear();
                assert!(r.read_line(&mut first).unwrap() > 0, "{how}: no output");
            }
            drop(r);
            let out = child.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(EXIT_BROKEN_PIPE), "{how}: {err}");
            assert!(!err.contains("panicked"), "{how}: {err}");
        }
    }

    #[test]
    fn parse_command_on_files() {
        use probes::record::{ErrorRec, Record, RunStatus};
        use probes::report::ReportWriter;
        let dir = std::env::temp_dir().join(format!("atomprobe-parse-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut w = ReportWriter::new();
        let mut text = String::from("banner\n");
        let rec = Record::Error(ErrorRec {
            what: "bootarg".into(),
            message: "x".into(),
        });
        text.push_str(&w.encode(&rec));
        text.push('\n');
        text.push_str(&w.end(RunStatus::Complete, 1).to_line());
        text.push('\n');
        let good = dir.join("good.log");
        std::fs::write(&good, &text).unwrap();
        assert_eq!(cmd_parse(&good).unwrap(), 0);

        let bad = dir.join("bad.log");
        std::fs::write(&bad, text.replace("\"x\"", "\"y\"")).unwrap();
        assert_eq!(cmd_parse(&bad).unwrap(), EXIT_FAIL);

        let none = dir.join("none.log");
        std::fs::write(&none, "just text\n").unwrap();
        assert!(cmd_parse(&none)
            .unwrap_err()
            .to_string()
            .contains("no record lines"));

        let bin = dir.join("bin.log");
        std::fs::write(&bin, [b'{', 0xff, 0xfe]).unwrap();
        assert!(cmd_parse(&bin)
            .unwrap_err()
            .to_string()
            .contains("not UTF-8"));

        assert!(cmd_parse(&dir.join("missing"))
            .unwrap_err()
            .to_string()
            .contains("cannot read"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
