//! Building the QEMU command line from a profile, running QEMU with live serial streaming and a
//! timeout, and mapping its exit status through the board's exit convention.

use std::fmt;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::profile::{ExitConvention, ImageKind, Profile};
use crate::{RunError, RunOpts};

/// QEMU's exit status, read through the board's exit convention.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MappedExit {
    /// The kernel reported a complete run.
    Success,
    /// The kernel reported an aborted run.
    Aborted { status: i32 },
    /// Anything else: QEMU failed, the guest reset or stopped some other way, or QEMU was killed.
    Failure { status: Option<i32>, why: String },
}

impl MappedExit {
    pub fn is_success(&self) -> bool {
        matches!(self, MappedExit::Success)
    }
}

impl fmt::Display for MappedExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MappedExit::Success => f.write_str("success (the kernel reported a complete run)"),
            MappedExit::Aborted { status } => write!(
                f,
                "aborted (QEMU status {status}: the kernel reported an aborted run)"
            ),
            MappedExit::Failure { why, .. } => write!(f, "failure ({why})"),
        }
    }
}

/// Map QEMU's exit code (`None` = killed by a signal) through `conv`.
pub fn map_exit(conv: ExitConvention, code: Option<i32>) -> MappedExit {
    let Some(code) = code else {
        return MappedExit::Failure {
            status: None,
            why: "QEMU was killed by a signal".into(),
        };
    };
    match (conv, code) {
        (ExitConvention::Semihosting, 0) => MappedExit::Success,
        (ExitConvention::Semihosting, 1) => MappedExit::Aborted { status: 1 },
        (ExitConvention::Semihosting, c) => MappedExit::Failure {
            status: Some(c),
            why: format!(
                "QEMU exited with status {c}; semihosting SYS_EXIT gives 0 for complete, 1 for \
                 aborted: QEMU itself failed or the guest exited with an unexpected code"
            ),
        },
        (ExitConvention::IsaDebugExit, 33) => MappedExit::Success,
        (ExitConvention::IsaDebugExit, 35) => MappedExit::Aborted { status: 35 },
        (ExitConvention::IsaDebugExit, 0) => MappedExit::Failure {
            status: Some(0),
            why: "QEMU exited with status 0 without an isa-debug-exit write: the guest reset, \
                  shut down or triple-faulted (-no-reboot)"
                .into(),
        },
        (ExitConvention::IsaDebugExit, c) => MappedExit::Failure {
            status: Some(c),
            why: if c & 1 == 1 {
                format!(
                    "QEMU exited with status {c}: the kernel wrote {:#x} to isa-debug-exit \
                     (0x10 = complete → 33, 0x11 = aborted → 35)",
                    c >> 1
                )
            } else {
                format!("QEMU exited with status {c} (QEMU itself failed?)")
            },
        },
    }
}

/// The QEMU command line (program and arguments) for `opts` on `profile`, booting `image`.
pub fn qemu_command(
    profile: &Profile,
    opts: &RunOpts,
    image: &Path,
) -> Result<Vec<String>, RunError> {
    let mut args = vec![profile.qemu.clone()];
    let mut machine = profile.machine.clone();
    if opts.virtualization {
        if !profile.virtualization {
            return Err(RunError::Usage(format!(
                "--virtualization is only accepted on boards whose machine has EL2 (virt); \
                 board {} (-M {}) has none",
                opts.board, profile.machine
            )));
        }
        machine.push_str(",virtualization=on");
    }
    args.extend(["-M".into(), machine]);
    match (&opts.cpu, profile.cpu_selectable) {
        (Some(cpu), true) => args.extend(["-cpu".into(), cpu.clone()]),
        (Some(cpu), false) => {
            return Err(RunError::Usage(format!(
                "--cpu {cpu}: board {} has a fixed CPU model; --cpu is not accepted there",
                opts.board
            )))
        }
        (None, _) => {
            if let Some(cpu) = &profile.cpu {
                args.extend(["-cpu".into(), cpu.clone()]);
            }
        }
    }
    let smp = opts.smp.unwrap_or(profile.smp);
    if smp == 0 {
        return Err(RunError::Usage(
            "--smp 0: at least one core is needed".into(),
        ));
    }
    if profile.smp_fixed {
        if smp != profile.smp {
            return Err(RunError::Usage(format!(
                "--smp {smp}: board {} has exactly {} cores (accepted: --smp {} or no --smp)",
                opts.board, profile.smp, profile.smp
            )));
        }
    } else {
        args.extend(["-smp".into(), smp.to_string()]);
    }
    args.extend(["-m".into(), profile.memory.clone()]);
    args.extend(profile.args.iter().cloned());
    if profile.image == ImageKind::UefiDisk {
        // The firmware boots the disk image; `--append` is already in its cmdline.txt.
        args.extend(crate::uefi::firmware_and_disk_args(profile, image));
        args.extend(opts.qemu_args.iter().cloned());
        return Ok(args);
    }
    args.extend(["-kernel".into(), image.display().to_string()]);
    if let Some(append) = &opts.append {
        // A device tree given with --qemu-arg=-dtb carries -append as /chosen/bootargs.
        if !profile.append && !opts.qemu_args.iter().any(|a| a == "-dtb") {
            eprintln!(
                "atomprobe: warning: on board {} the kernel cannot see -append without a device \
                 tree (pass one with --qemu-arg=-dtb --qemu-arg=FILE); passing it anyway",
                opts.board
            );
        }
        args.extend(["-append".into(), append.clone()]);
    }
    args.extend(opts.qemu_args.iter().cloned());
    Ok(args)
}

/// What one QEMU run produced.
pub struct QemuRun {
    /// Everything the serial port printed, as bytes arrived (lossily decoded).
    pub log: String,
    /// QEMU's own stderr.
    pub stderr: String,
    pub status: Option<ExitStatus>,
    pub timed_out: bool,
    /// The last record line seen (for the timeout message).
    pub last_record: Option<String>,
    pub elapsed: Duration,
}

enum Chunk {
    Out(Vec<u8>),
    Err(Vec<u8>),
}

/// Run `argv`, streaming serial lines to stdout (when `echo`) and raw bytes into `out`, killing
/// QEMU after `timeout`.
pub fn run_qemu(
    argv: &[String],
    timeout: Duration,
    echo: bool,
    out: Option<&mut dyn Write>,
) -> Result<QemuRun, RunError> {
    run_qemu_with(argv, timeout, echo, out, &mut |_| {})
}

/// [`run_qemu`], handing each complete serial line (without its line end) to `on_line`.
pub fn run_qemu_with(
    argv: &[String],
    timeout: Duration,
    echo: bool,
    mut out: Option<&mut dyn Write>,
    on_line: &mut dyn FnMut(&str),
) -> Result<QemuRun, RunError> {
    let start = Instant::now();
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            RunError::Qemu(if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "{} not found in PATH: install QEMU >= 9.0 (scripts/run does it on Debian/Ubuntu)",
                    argv[0]
                )
            } else {
                format!("cannot start {}: {e}", argv[0])
            })
        })?;

    let (tx, rx) = mpsc::channel();
    let mut readers = Vec::new();
    if let Some(mut so) = child.stdout.take() {
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || pump(&mut so, Chunk::Out, &tx)));
    }
    if let Some(mut se) = child.stderr.take() {
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || pump(&mut se, Chunk::Err, &tx)));
    }
    drop(tx);

    let deadline = start + timeout;
    let mut log = Vec::new();
    let mut stderr = Vec::new();
    let mut pending = Vec::new(); // serial bytes of the line not yet echoed
    let mut last_record = None;
    let mut timed_out = false;
    loop {
        let now = Instant::now();
        if now >= deadline {
            timed_out = true;
            break;
        }
        match rx.recv_timeout(deadline - now) {
            Ok(Chunk::Out(bytes)) => {
                if let Some(w) = out.as_deref_mut() {
                    // A failing log file must not stop the run; report once at the end.
                    let _ = w.write_all(&bytes).and_then(|_| w.flush());
                }
                log.extend_from_slice(&bytes);
                pending.extend_from_slice(&bytes);
                while let Some(nl) = pending.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=nl).collect();
                    let line = String::from_utf8_lossy(&line);
                    let line = line.trim_end_matches(['\r', '\n']);
                    if let Some(rec) = probes::report::record_text(line) {
                        last_record = Some(rec.to_string());
                    }
                    on_line(line);
                    if echo {
                        echo_line(line);
                    }
                }
            }
            Ok(Chunk::Err(bytes)) => {
                if echo {
                    eprint!("{}", String::from_utf8_lossy(&bytes));
                }
                stderr.extend_from_slice(&bytes);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                timed_out = true;
                break;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    if timed_out {
        let _ = child.kill();
    }
    // Both pipes are closed (EOF) or QEMU was killed: reap it, bounded in case it lingers.
    let status = wait_bounded(&mut child, Duration::from_secs(10));
    if !timed_out {
        // The pipes reached EOF: the readers are done. After a kill they may still be blocked
        // on a pipe held open by a grandchild; leave them.
        for r in readers {
            let _ = r.join();
        }
    }
    // Drain whatever arrived after the loop stopped.
    while let Ok(chunk) = rx.try_recv() {
        match chunk {
            Chunk::Out(b) => {
                log.extend_from_slice(&b);
                pending.extend_from_slice(&b);
            }
            Chunk::Err(b) => stderr.extend_from_slice(&b),
        }
    }
    if !pending.is_empty() {
        let line = String::from_utf8_lossy(&pending);
        if let Some(rec) = probes::report::record_text(&line) {
            last_record = Some(rec.to_string());
        }
        if echo {
            echo_line(line.trim_end_matches('\r'));
        }
    }
    Ok(QemuRun {
        log: String::from_utf8_lossy(&log).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        status,
        timed_out,
        last_record,
        elapsed: start.elapsed(),
    })
}

/// Print one serial line to stdout; a closed stdout (`| head`) must not stop the capture.
fn echo_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|_| out.flush());
}

fn pump(r: &mut dyn Read, wrap: fn(Vec<u8>) -> Chunk, tx: &mpsc::Sender<Chunk>) {
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if tx.send(wrap(buf[..n].to_vec())).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

fn wait_bounded(child: &mut std::process::Child, limit: Duration) -> Option<ExitStatus> {
    let until = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                return child.wait().ok();
            }
            Err(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Board;

    #[test]
    fn semihosting_mapping() {
        let c = ExitConvention::Semihosting;
        assert_eq!(map_exit(c, Some(0)), MappedExit::Success);
        assert_eq!(map_exit(c, Some(1)), MappedExit::Aborted { status: 1 });
        let f = map_exit(c, Some(3));
        assert!(
            matches!(
                f,
                MappedExit::Failure {
                    status: Some(3),
                    ..
                }
            ),
            "{f:?}"
        );
        assert!(f.to_string().contains("status 3"));
        assert!(!map_exit(c, None).is_success());
    }

    #[test]
    fn isa_debug_exit_mapping() {
        let c = ExitConvention::IsaDebugExit;
        assert_eq!(map_exit(c, Some(33)), MappedExit::Success);
        assert_eq!(map_exit(c, Some(35)), MappedExit::Aborted { status: 35 });
        let zero = map_exit(c, Some(0));
        assert!(!zero.is_success());
        assert!(
            zero.to_string().contains("without an isa-debug-exit"),
            "{zero}"
        );
        let other = map_exit(c, Some(1));
        assert!(other.to_string().contains("wrote 0x0"), "{other}");
        let odd = map_exit(c, Some(0x25));
        assert!(odd.to_string().contains("wrote 0x12"), "{odd}");
        assert!(matches!(
            map_exit(c, None),
            MappedExit::Failure { status: None, .. }
        ));
    }

    fn opts(board: Board) -> RunOpts {
        RunOpts::new(board)
    }

    fn profile(board: Board) -> Profile {
        Profile::parse(board.builtin_profile(), "t").unwrap()
    }

    #[test]
    fn virt_command_line() {
        let mut o = opts(Board::Virt);
        o.append = Some("iters=5 probes=fault".into());
        o.qemu_args = vec!["-d".into(), "guest_errors".into()];
        let argv = qemu_command(&profile(Board::Virt), &o, Path::new("/k.img")).unwrap();
        let s = argv.join(" ");
        assert!(
            s.starts_with("qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 4 -m 256M "),
            "{s}"
        );
        assert!(s.contains("-semihosting"));
        assert!(s.contains("-kernel /k.img -append"));
        assert!(argv.contains(&"iters=5 probes=fault".to_string()));
        assert!(s.ends_with("-d guest_errors"));

        o.virtualization = true;
        o.cpu = Some("cortex-a53".into());
        o.smp = Some(2);
        let s = qemu_command(&profile(Board::Virt), &o, Path::new("/k.img"))
            .unwrap()
            .join(" ");
        assert!(
            s.contains("-M virt,virtualization=on -cpu cortex-a53 -smp 2 "),
            "{s}"
        );
    }

    #[test]
    fn raspi_and_pc_constraints() {
        let rp = profile(Board::Raspi4b);
        let s = qemu_command(&rp, &opts(Board::Raspi4b), Path::new("/k"))
            .unwrap()
            .join(" ");
        assert!(
            s.starts_with("qemu-system-aarch64 -M raspi4b -m 2G "),
            "{s}"
        );
        assert!(!s.contains("-smp") && !s.contains("-cpu"), "{s}");
        let mut o = opts(Board::Raspi4b);
        o.smp = Some(2);
        assert!(
            matches!(qemu_command(&rp, &o, Path::new("/k")), Err(RunError::Usage(m)) if m.contains("exactly 4"))
        );
        let mut o = opts(Board::Raspi4b);
        o.cpu = Some("cortex-a53".into());
        assert!(matches!(
            qemu_command(&rp, &o, Path::new("/k")),
            Err(RunError::Usage(_))
        ));

        let pc = profile(Board::Pc);
        let s = qemu_command(&pc, &opts(Board::Pc), Path::new("/k"))
            .unwrap()
            .join(" ");
        assert!(
            s.starts_with("qemu-system-x86_64 -M q35 -smp 4 -m 256M -nodefaults"),
            "{s}"
        );
        assert!(s.contains("isa-debug-exit,iobase=0xf4,iosize=0x04"));
        let mut o = opts(Board::Pc);
        o.virtualization = true;
        assert!(
            matches!(qemu_command(&pc, &o, Path::new("/k")), Err(RunError::Usage(m)) if m.contains("virtualization"))
        );
    }

    #[test]
    fn streams_and_times_out() {
        // A stand-in for QEMU: prints a record, then hangs.
        let argv: Vec<String> = [
            "sh",
            "-c",
            "printf 'hello\\r\\n{\"type\":\"x\"}\\n'; sleep 30",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut sink = Vec::new();
        let r = run_qemu(&argv, Duration::from_millis(700), false, Some(&mut sink)).unwrap();
        assert!(r.timed_out);
        assert!(r.elapsed < Duration::from_secs(10));
        assert_eq!(r.last_record.as_deref(), Some("{\"type\":\"x\"}"));
        assert!(r.log.starts_with("hello\r\n"));
        assert_eq!(sink, r.log.as_bytes());
    }

    #[test]
    fn collects_exit_status_and_partial_line() {
        let argv: Vec<String> = ["sh", "-c", "printf 'a\\nb'; echo oops >&2; exit 35"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let r = run_qemu(&argv, Duration::from_secs(20), false, None).unwrap();
        assert!(!r.timed_out);
        assert_eq!(r.status.and_then(|s| s.code()), Some(35));
        assert_eq!(r.log, "a\nb");
        assert_eq!(r.stderr, "oops\n");
    }

    #[test]
    fn missing_binary_is_a_clear_error() {
        let argv = vec!["qemu-system-nonexistent-arch".to_string()];
        let e = run_qemu(&argv, Duration::from_secs(1), false, None)
            .err()
            .unwrap();
        assert!(e.to_string().contains("not found in PATH"), "{e}");
    }
}
