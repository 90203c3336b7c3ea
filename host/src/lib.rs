//! atomprobe host tool as a library: boot the image in QEMU and read its report back
//! ([`run_board`]), build board images, parse captured logs. The `atomprobe` binary is a thin
//! shell around [`cli`]; integration tests call [`run_board`] directly.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use probes::record::RunStatus;
use probes::report::{parse_report, Integrity, ParsedReport};

pub mod capture;
pub mod cli;
pub mod compare;
pub mod elfimage;
pub mod export;
pub mod hosted_cmd;
pub mod image;
pub mod kernel;
pub mod litmus_cmd;
/// The generator lives in the `atomprobe-litmus` crate (litmus/src/gen.rs), shared with
/// probes/build.rs; this name keeps `crate::litmus_gen::…` paths working.
pub use atomprobe_litmus::gen as litmus_gen;
pub mod litmus_hash;
pub mod litmus_states;
pub mod profile;
pub mod qemu;
pub mod report_cmd;
pub mod report_html;
pub mod show_cmd;
pub mod uefi;
pub mod view;

pub use profile::{Board, Profile};
pub use qemu::MappedExit;

/// Default `--timeout`, per mapping combination (see [`default_timeout`]).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// The `--timeout` a run gets when none is given: [`DEFAULT_TIMEOUT`] for each mapping
/// combination the boot arguments ask for (`mapping=` × `share=` × `caches=` × `mtrr=`), since
/// the image runs every selected family once per combination.
pub fn default_timeout(board: Board, append: Option<&str>) -> Duration {
    let arch = match board {
        Board::Pc => probes::attr::Arch::X86_64,
        _ => probes::attr::Arch::Aarch64,
    };
    let catalogue = probes::suite::catalogue();
    let known: Vec<(&str, &str)> = catalogue.iter().map(|(f, n)| (*f, n.as_str())).collect();
    let (cfg, _) = probes::config::Config::parse(append.unwrap_or(""), arch, &known);
    DEFAULT_TIMEOUT * cfg.variants().len().max(1) as u32
}

/// What to boot and how (the options of `atomprobe run`).
#[derive(Clone, Debug)]
pub struct RunOpts {
    pub board: Board,
    /// `-cpu` instead of the profile's default.
    pub cpu: Option<String>,
    /// `-smp` instead of the profile's default.
    pub smp: Option<u32>,
    /// Boot arguments (`-append`).
    pub append: Option<String>,
    /// Keep the raw serial log here.
    pub out: Option<PathBuf>,
    pub timeout: Duration,
    /// `-M virt,virtualization=on` (EL2 entry).
    pub virtualization: bool,
    /// Boot this kernel ELF instead of building one.
    pub kernel: Option<PathBuf>,
    /// Extra QEMU arguments, passed through after the profile's.
    pub qemu_args: Vec<String>,
    pub release: bool,
    /// Stream the serial output to stdout (and QEMU's stderr to stderr) while it runs.
    pub echo: bool,
    /// Boot a copy of the arm64 Image with this `text_offset` (loaded there instead of the
    /// link address: firmware that loads `kernel8.img` elsewhere).
    pub text_offset: Option<u64>,
}

impl RunOpts {
    /// Defaults for `board`: release build, 120 s timeout, no echo.
    pub fn new(board: Board) -> RunOpts {
        RunOpts {
            board,
            cpu: None,
            smp: None,
            append: None,
            out: None,
            timeout: DEFAULT_TIMEOUT,
            virtualization: false,
            kernel: None,
            qemu_args: Vec::new(),
            release: true,
            echo: false,
            text_offset: None,
        }
    }
}

/// Why a run could not be carried out (as opposed to a run that went badly: see [`RunOutcome`]).
#[derive(Debug)]
pub enum RunError {
    /// Options that do not fit the board.
    Usage(String),
    /// A QEMU profile is missing or invalid.
    Profile(String),
    /// The kernel did not build.
    Build(String),
    /// The kernel could not be turned into an image.
    Image(String),
    /// QEMU could not be started.
    Qemu(String),
    /// A file could not be read or written.
    Io(String),
    /// Input the user gave is wrong (a missing or invalid file, an unwritable output path):
    /// the message names the file and what was expected; exit status 2 like a usage error.
    Input(String),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Usage(m) => write!(f, "usage: {m}"),
            RunError::Profile(m) => write!(f, "profile: {m}"),
            RunError::Build(m) => write!(f, "build: {m}"),
            RunError::Image(m) => write!(f, "image: {m}"),
            RunError::Qemu(m) => write!(f, "qemu: {m}"),
            RunError::Io(m) | RunError::Input(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for RunError {}

impl From<profile::ProfileError> for RunError {
    fn from(e: profile::ProfileError) -> Self {
        RunError::Profile(e.0)
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct RunOutcome {
    pub board: Board,
    /// The raw serial log.
    pub log: String,
    /// QEMU's own stderr.
    pub qemu_stderr: String,
    pub report: ParsedReport,
    /// QEMU's exit code (`None`: killed, e.g. on timeout).
    pub exit_code: Option<i32>,
    pub exit: MappedExit,
    pub timed_out: bool,
    /// The last record line seen.
    pub last_record: Option<String>,
    pub elapsed: Duration,
    /// The QEMU command line used.
    pub command: Vec<String>,
    pub timeout: Duration,
}

impl RunOutcome {
    /// The `end` record's status, if there is one.
    pub fn end_status(&self) -> Option<RunStatus> {
        self.report.end().map(|e| e.status)
    }

    /// Success: QEMU's mapped status is success, the report is verified and complete.
    pub fn success(&self) -> bool {
        !self.timed_out
            && self.exit.is_success()
            && self.report.integrity.is_verified()
            && self.end_status() == Some(RunStatus::Complete)
    }

    /// The timeout message (when `timed_out`).
    pub fn timeout_message(&self) -> String {
        if self.report.end().is_some() {
            return format!(
                "atomprobe: timed out after {} s: the end record was printed but QEMU did not exit \
                 (the kernel's exit path hangs)",
                self.timeout.as_secs_f64()
            );
        }
        format!(
            "atomprobe: timed out after {} s without an end record (last record: {})",
            self.timeout.as_secs_f64(),
            match &self.last_record {
                Some(r) => shorten(r, 160),
                None => "none".into(),
            }
        )
    }

    /// One paragraph saying how the run went.
    pub fn verdict(&self) -> String {
        let integrity = match &self.report.integrity {
            Integrity::Verified => "Verified".to_string(),
            Integrity::Truncated(m) => format!("Truncated ({m})"),
            Integrity::Corrupted(m) => format!("Corrupted ({m})"),
        };
        let end = match self.report.end() {
            Some(e) => format!(
                "end status {} after {} ms",
                match e.status {
                    RunStatus::Complete => "complete",
                    RunStatus::Aborted => "aborted",
                },
                e.elapsed_ms
            ),
            None => "no end record".into(),
        };
        let code = match self.exit_code {
            Some(c) => format!("status {c}"),
            None => "killed".into(),
        };
        let mut s = format!(
            "atomprobe: board {} ran {:.1} s: {} records, integrity {integrity}, {end}; QEMU {code} \
             → {}{}. Result: {}.",
            self.board,
            self.elapsed.as_secs_f64(),
            self.report.records.len(),
            self.exit,
            if self.timed_out { " (timed out)" } else { "" },
            if self.success() { "PASS" } else { "FAIL" },
        );
        let stderr = self.qemu_stderr.trim();
        if !self.success() && !stderr.is_empty() {
            s.push_str(&format!(" QEMU said: {}", shorten(stderr, 400)));
        }
        s
    }
}

fn shorten(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Resolve the workspace root or fail with a message saying how to point at it.
pub fn require_root() -> Result<PathBuf, RunError> {
    profile::workspace_root().ok_or_else(|| {
        RunError::Usage(
            "cannot find the atomprobe workspace (a Cargo.toml with [workspace] next to \
             kernel/): run from inside it or set ATOMPROBE_ROOT"
                .into(),
        )
    })
}

/// Build (unless `opts.kernel` is given), boot `opts.board` in QEMU, capture and parse.
pub fn run_board(opts: &RunOpts) -> Result<RunOutcome, RunError> {
    run_board_with(opts, &mut |_| {})
}

/// [`run_board`], handing each serial line to `on_line` as it arrives (the progress line).
pub fn run_board_with(
    opts: &RunOpts,
    on_line: &mut dyn FnMut(&str),
) -> Result<RunOutcome, RunError> {
    let root = profile::workspace_root();
    let (profile, _origin) = Profile::load(opts.board, root.as_deref())?;
    let elf = match &opts.kernel {
        Some(k) => {
            if !k.is_file() {
                return Err(RunError::Usage(format!(
                    "--kernel {}: no such file",
                    k.display()
                )));
            }
            k.clone()
        }
        None => {
            let root = require_root()?;
            kernel::build_kernel(&root, &profile, opts.release)?
        }
    };
    // UEFI profiles boot the disk image of `atomprobe image --board uefi` (removed after the run).
    let uefi_disk = if profile.image == profile::ImageKind::UefiDisk {
        Some(uefi::RunDisk::build(&profile, opts, &elf)?)
    } else {
        None
    };
    let mut image = match &uefi_disk {
        Some(d) => d.disk.clone(),
        None => kernel::prepare_image(&elf, &profile)?,
    };
    if let Some(off) = opts.text_offset {
        if profile.image != profile::ImageKind::Arm64Image {
            return Err(RunError::Usage(format!(
                "--text-offset: board {} does not boot an arm64 Image; accepted on virt and \
                 raspi4b",
                opts.board
            )));
        }
        kernel::check_text_offset(off)
            .map_err(|e| RunError::Usage(format!("--text-offset: {e}")))?;
        image = kernel::image_with_text_offset(&image, off)?;
    }
    let argv = qemu::qemu_command(&profile, opts, &image)?;
    let mut out_file = match &opts.out {
        Some(p) => Some(
            std::fs::File::create(p)
                .map_err(|e| RunError::Io(format!("cannot create --out {}: {e}", p.display())))?,
        ),
        None => None,
    };
    if opts.echo {
        eprintln!("atomprobe: {}", argv.join(" "));
    }
    let run = qemu::run_qemu_with(
        &argv,
        opts.timeout,
        opts.echo,
        out_file.as_mut().map(|f| f as &mut dyn std::io::Write),
        on_line,
    )?;
    let exit_code = run.status.and_then(|s| s.code());
    let exit = if run.timed_out {
        MappedExit::Failure {
            status: exit_code,
            why: format!("killed after the {} s timeout", opts.timeout.as_secs_f64()),
        }
    } else {
        qemu::map_exit(profile.exit, exit_code)
    };
    let report = parse_report(&run.log);
    Ok(RunOutcome {
        board: opts.board,
        log: run.log,
        qemu_stderr: run.stderr,
        report,
        exit_code,
        exit,
        timed_out: run.timed_out,
        last_record: run.last_record,
        elapsed: run.elapsed,
        command: argv,
        timeout: opts.timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use probes::record::{ErrorRec, Record};
    use probes::report::ReportWriter;

    fn log(status: Option<RunStatus>) -> String {
        let mut w = ReportWriter::new();
        let rec = Record::Error(ErrorRec {
            what: "bootarg".into(),
            message: "m".into(),
        });
        let mut s = format!("banner\r\n{}\r\n", w.encode(&rec));
        if let Some(st) = status {
            s.push_str(&w.end(st, 3).to_line());
            s.push_str("\r\n");
        }
        s
    }

    fn outcome(text: &str, exit: MappedExit, timed_out: bool) -> RunOutcome {
        RunOutcome {
            board: Board::Virt,
            log: text.into(),
            qemu_stderr: String::new(),
            report: parse_report(text),
            exit_code: None,
            exit,
            timed_out,
            last_record: text
                .lines()
                .filter_map(probes::report::record_text)
                .next_back()
                .map(str::to_string),
            elapsed: Duration::from_millis(300),
            command: vec![],
            timeout: Duration::from_secs(7),
        }
    }

    #[test]
    fn success_needs_exit_integrity_and_complete() {
        let ok = outcome(&log(Some(RunStatus::Complete)), MappedExit::Success, false);
        assert!(ok.success());
        assert!(ok.verdict().contains("Result: PASS"), "{}", ok.verdict());
        assert!(ok.verdict().contains("integrity Verified"));

        let aborted = outcome(
            &log(Some(RunStatus::Aborted)),
            MappedExit::Aborted { status: 1 },
            false,
        );
        assert!(!aborted.success());
        assert!(aborted.verdict().contains("end status aborted"));

        // QEMU says success but the report says aborted, or is truncated/corrupted: failure.
        let lying = outcome(&log(Some(RunStatus::Aborted)), MappedExit::Success, false);
        assert!(!lying.success());
        let truncated = outcome(&log(None), MappedExit::Success, false);
        assert!(!truncated.success());
        assert!(truncated.verdict().contains("Truncated"));
        let corrupted = outcome(
            &log(Some(RunStatus::Complete)).replace("\"m\"", "\"n\""),
            MappedExit::Success,
            false,
        );
        assert!(!corrupted.success());
        assert!(corrupted.verdict().contains("Corrupted"));
    }

    #[test]
    fn default_timeout_scales_with_the_mapping_combinations() {
        assert_eq!(default_timeout(Board::Virt, None), DEFAULT_TIMEOUT);
        assert_eq!(
            default_timeout(
                Board::Virt,
                Some("probes=fault mapping=4k,2m,1g share=inner,outer,non")
            ),
            DEFAULT_TIMEOUT * 9
        );
        assert_eq!(
            default_timeout(Board::Pc, Some("mapping=4k,2m,1g mtrr=uc,wc")),
            DEFAULT_TIMEOUT * 6
        );
    }

    #[test]
    fn timeout_messages() {
        let t = outcome(
            &log(None),
            MappedExit::Failure {
                status: None,
                why: "killed".into(),
            },
            true,
        );
        assert!(!t.success());
        let m = t.timeout_message();
        assert!(
            m.starts_with("atomprobe: timed out after 7 s without an end record (last record: {\"type\":\"error\""),
            "{m}"
        );
        let t = outcome(&log(Some(RunStatus::Complete)), MappedExit::Success, true);
        assert!(!t.success());
        assert!(t.timeout_message().contains("did not exit"));
    }
}
