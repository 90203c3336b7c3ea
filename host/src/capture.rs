//! `atomprobe capture --port DEV`: read a board's serial console until the `end` record (or a
//! timeout), showing progress, then check the report's integrity and save the log.
//!
//! The port is opened without becoming the controlling terminal and without waiting for carrier
//! (`O_NOCTTY | O_NONBLOCK`, then blocking again), set to raw mode 8N1 at the chosen baud rate
//! with `CLOCAL | CREAD` and no flow control, and read with a 0.2 s inter-read timeout
//! (`VMIN = 0`, `VTIME = 2`) so the overall timeout is honoured. A pseudo-terminal (QEMU's
//! `-serial pty`) is a tty like any other; when its other side closes, reading it fails with
//! `EIO`, which ends the capture as "port closed".

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use probes::report::{parse_report, record_text, ParsedReport};

use crate::compare::integrity_text;
use crate::RunError;

/// Baud rates accepted by `--baud`: the `B…` constants this OS's termios names (POSIX up to
/// 230400 everywhere; Linux adds the higher ones).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub const BAUDS: &[u32] = &[
    1200, 2400, 4800, 9600, 19200, 38400, 57600, 115_200, 230_400, 460_800, 500_000, 576_000,
    921_600, 1_000_000, 1_152_000, 1_500_000, 2_000_000, 3_000_000,
];
/// Baud rates accepted by `--baud`: the `B…` constants this OS's termios names (POSIX up to
/// 230400 everywhere; Linux adds the higher ones).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub const BAUDS: &[u32] = &[
    1200, 2400, 4800, 9600, 19200, 38400, 57600, 115_200, 230_400,
];

fn parse_baud(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(b) if BAUDS.contains(&b) => Ok(b),
        _ => Err(format!(
            "`{s}` is not a supported baud rate; accepted: {}",
            BAUDS
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn parse_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!(
            "`{s}`: accepted is a number of seconds, more than 0 and at most 86400"
        )),
    }
}

#[derive(clap::Args, Debug)]
pub struct CaptureArgs {
    /// Serial device to read, e.g. /dev/ttyUSB0 or a pseudo-terminal /dev/pts/N.
    #[arg(long, value_name = "DEV")]
    pub port: PathBuf,
    /// Baud rate (8N1, no flow control).
    #[arg(long, default_value = "115200", value_parser = parse_baud)]
    pub baud: u32,
    /// Save the report (its record lines, JSON Lines) to FILE instead of
    /// `reports/<board>-<UTC time>.jsonl`; a capture that does not verify also keeps the whole
    /// serial log beside it (FILE.serial.txt).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub output: crate::view::OutputArgs,
    /// Give up after S seconds without an end record.
    #[arg(long, value_name = "S", default_value = "300", value_parser = parse_secs)]
    pub timeout: f64,
}

/// Why a capture stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The `end` record arrived.
    End,
    /// The timeout passed first.
    Timeout,
    /// The port closed or failed (the message says how).
    Closed(String),
}

/// What a capture read.
#[derive(Debug)]
pub struct Capture {
    /// Everything read, lossily decoded.
    pub log: String,
    pub records: usize,
    pub stop: Stop,
    pub elapsed: Duration,
}

impl Capture {
    pub fn report(&self) -> ParsedReport {
        parse_report(&self.log)
    }
}

/// Splits incoming bytes into lines and watches for the `end` record.
#[derive(Default)]
pub struct LineWatch {
    pending: Vec<u8>,
    pub records: usize,
    pub ended: bool,
}

impl LineWatch {
    /// Account for `bytes`; returns true once a complete `end` record line has arrived.
    pub fn feed(&mut self, bytes: &[u8]) -> bool {
        self.pending.extend_from_slice(bytes);
        while let Some(nl) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=nl).collect();
            let line = String::from_utf8_lossy(&line);
            if let Some(rec) = record_text(&line) {
                self.records += 1;
                if rec.starts_with("{\"type\":\"end\"") {
                    self.ended = true;
                }
            }
        }
        self.ended
    }
}

/// Open `port` and put it in raw mode at `baud`.
#[cfg(unix)]
pub fn open_port(port: &Path, baud: u32) -> Result<std::fs::File, RunError> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;

    let io =
        |what: &str, e: std::io::Error| RunError::Io(format!("{}: {what}: {e}", port.display()));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(port)
        .map_err(|e| io("cannot open", e))?;
    let fd = f.as_raw_fd();
    let speed = baud_constant(baud).ok_or_else(|| {
        RunError::Usage(format!("--baud {baud}: not a rate this OS's termios names"))
    })?;
    // SAFETY: `termios` is plain data; tcgetattr fills it from the open descriptor `fd`.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is open for the life of `f`, `t` is a valid termios to fill.
    if unsafe { libc::tcgetattr(fd, &mut t) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(RunError::Io(format!(
            "{} is not a serial port or terminal (tcgetattr: {e}); --port takes a tty device \
             such as /dev/ttyUSB0, /dev/ttyAMA0 or a /dev/pts/N pseudo-terminal",
            port.display()
        )));
    }
    // SAFETY: `t` was filled by tcgetattr; these only edit the struct.
    unsafe {
        libc::cfmakeraw(&mut t);
        libc::cfsetispeed(&mut t, speed);
        libc::cfsetospeed(&mut t, speed);
    }
    t.c_cflag |= libc::CLOCAL | libc::CREAD;
    t.c_cflag &= !(libc::CSTOPB | libc::PARENB | libc::CRTSCTS);
    t.c_iflag &= !(libc::IXON | libc::IXOFF | libc::IXANY);
    t.c_cc[libc::VMIN] = 0;
    t.c_cc[libc::VTIME] = 2;
    // SAFETY: `fd` is open, `t` is a complete termios.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &t) } != 0 {
        return Err(io(
            "cannot set raw mode and baud rate (tcsetattr)",
            std::io::Error::last_os_error(),
        ));
    }
    // Blocking reads again (bounded by VTIME): O_NONBLOCK was only for the open.
    // SAFETY: F_GETFL/F_SETFL on an open descriptor.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl < 0 || libc::fcntl(fd, libc::F_SETFL, fl & !libc::O_NONBLOCK) < 0 {
            return Err(io(
                "cannot clear O_NONBLOCK",
                std::io::Error::last_os_error(),
            ));
        }
    }
    Ok(f)
}

/// Not available: the port is configured through POSIX termios, which this OS does not have.
#[cfg(not(unix))]
pub fn open_port(port: &Path, baud: u32) -> Result<std::fs::File, RunError> {
    Err(RunError::Usage(format!(
        "cannot capture {}: atomprobe capture is not available on {} (it configures the port \
         through POSIX termios: Linux, macOS and the BSDs). Save the console with a terminal \
         program instead ({baud} baud, 8N1, no flow control, e.g. PuTTY session logging) and \
         check the file with `atomprobe parse FILE`",
        port.display(),
        std::env::consts::OS
    )))
}

#[cfg(unix)]
fn baud_constant(b: u32) -> Option<libc::speed_t> {
    Some(match b {
        1200 => libc::B1200,
        2400 => libc::B2400,
        4800 => libc::B4800,
        9600 => libc::B9600,
        19200 => libc::B19200,
        38400 => libc::B38400,
        57600 => libc::B57600,
        115_200 => libc::B115200,
        230_400 => libc::B230400,
        #[cfg(any(target_os = "linux", target_os = "android"))]
        460_800 => libc::B460800,
        #[cfg(any(target_os = "linux", target_os = "android"))]
        500_000 => libc::B500000,
        #[cfg(any(target_os = "linux", target_os = "android"))]
        576_000 => libc::B576000,
        #[cfg(any(target_os = "linux", target_os = "android"))]
        921_600 => libc::B921600,
        #[cfg(any(target_os = "linux", target_os = "android"))]
        1_000_000 => libc::B1000000,
        #[cfg(any(target_os = "linux", target_os = "android"))]
        1_152_000 => libc::B1152000,
        #[cfg(any(target_os = "linux", target_os = "android"))]
        1_500_000 => libc::B1500000,
        #[cfg(any(target_os = "linux", target_os = "android"))]
        2_000_000 => libc::B2000000,
        #[cfg(any(target_os = "linux", target_os = "android"))]
        3_000_000 => libc::B3000000,
        _ => return None,
    })
}

/// Read `port` until the `end` record, `timeout`, or the port closing. Bytes go to `sink` as
/// they arrive; `progress` is called with the record count whenever it changes.
pub fn capture(
    port: &mut dyn Read,
    timeout: Duration,
    mut sink: Option<&mut dyn Write>,
    progress: &mut dyn FnMut(usize),
) -> Capture {
    let start = Instant::now();
    let mut log = Vec::new();
    let mut watch = LineWatch::default();
    let mut buf = [0u8; 4096];
    let mut shown = usize::MAX;
    let stop = loop {
        if start.elapsed() >= timeout {
            break Stop::Timeout;
        }
        match port.read(&mut buf) {
            // VTIME expired with nothing to read.
            Ok(0) => continue,
            Ok(n) => {
                log.extend_from_slice(&buf[..n]);
                if let Some(w) = sink.as_deref_mut() {
                    let _ = w.write_all(&buf[..n]).and_then(|_| w.flush());
                }
                let ended = watch.feed(&buf[..n]);
                if watch.records != shown {
                    shown = watch.records;
                    progress(shown);
                }
                if ended {
                    break Stop::End;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => {
                break Stop::Closed(if e.raw_os_error() == Some(5) {
                    "the port closed (EIO: the other side hung up)".to_string()
                } else {
                    format!("read failed: {e}")
                })
            }
        }
    };
    Capture {
        log: String::from_utf8_lossy(&log).into_owned(),
        records: watch.records,
        stop,
        elapsed: start.elapsed(),
    }
}

/// The closing paragraph for a capture; `Ok(true)` when the report verifies.
pub fn verdict(c: &Capture, port: &str) -> (bool, String) {
    let rep = c.report();
    let how = match &c.stop {
        Stop::End => "the end record arrived".to_string(),
        Stop::Timeout => format!(
            "timed out after {:.0} s without an end record",
            c.elapsed.as_secs_f64()
        ),
        Stop::Closed(m) => format!("stopped before an end record: {m}"),
    };
    let ok = rep.integrity.is_verified();
    (
        ok,
        format!(
            "atomprobe capture: {port}: {} record lines in {:.1} s, {how}; integrity {}. Result: {}.",
            c.records,
            c.elapsed.as_secs_f64(),
            integrity_text(&rep.integrity),
            if ok { "PASS" } else { "FAIL" }
        ),
    )
}

/// Run `atomprobe capture`; returns the exit status.
pub fn cmd_capture(a: CaptureArgs) -> Result<i32, RunError> {
    use crate::view::{self, Mode};
    let mode = a.output.mode();
    view::check_writable(a.out.as_deref())?;
    let mut port = open_port(&a.port, a.baud)?;
    let name = a.port.display().to_string();
    if mode != Mode::Quiet {
        eprintln!(
            "atomprobe capture: reading {name} at {} baud (8N1) until the end record, at most {} s",
            a.baud, a.timeout
        );
    }
    let mut progress = view::Progress::new(mode, &name);
    let c = {
        // Each serial line: to the progress line, and with --raw to stdout as it arrives (a
        // closed stdout must not stop the capture: the report is still saved).
        let mut watch = view::LineSplitter::new(|line: &str| {
            progress.line(line);
            if mode == Mode::Raw {
                let mut o = std::io::stdout().lock();
                let _ = writeln!(o, "{line}").and_then(|()| o.flush());
            }
        });
        capture(
            &mut port,
            Duration::from_secs_f64(a.timeout),
            Some(&mut watch),
            &mut |_| {},
        )
    };
    progress.finish();
    let (ok, text) = verdict(&c, &name);
    view::conclude(mode, a.out.as_deref(), "capture", &c.log, &text, ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use probes::record::{ErrorRec, Record, RunStatus};
    use probes::report::ReportWriter;

    fn report() -> String {
        let mut w = ReportWriter::new();
        let mut s = String::from("\x1b[0mfirmware chatter\r\n");
        for i in 0..5 {
            let r = Record::Error(ErrorRec {
                what: "probe".into(),
                message: format!("m{i}"),
            });
            s.push_str(&w.encode(&r));
            s.push_str("\r\n");
        }
        s.push_str(&w.end(RunStatus::Complete, 3).to_line());
        s.push_str("\r\n");
        s
    }

    #[test]
    fn baud_and_timeout_values() {
        assert_eq!(parse_baud("115200"), Ok(115_200));
        let e = parse_baud("115201").unwrap_err();
        assert!(e.contains("115201") && e.contains("9600, 19200"), "{e}");
        assert!(parse_baud("fast").is_err());
        assert!(parse_secs("0").unwrap_err().contains("seconds"));
        assert_eq!(parse_secs("2.5"), Ok(2.5));
        #[cfg(unix)]
        for b in [9600, 115_200, 230_400] {
            assert!(baud_constant(b).is_some());
        }
    }

    #[test]
    fn line_watch_counts_records_across_chunks() {
        let text = report();
        let mut w = LineWatch::default();
        let bytes = text.as_bytes();
        let mut ended_at = None;
        for (i, chunk) in bytes.chunks(7).enumerate() {
            if w.feed(chunk) && ended_at.is_none() {
                ended_at = Some(i);
            }
        }
        assert!(w.ended);
        assert_eq!(w.records, 6);
        assert_eq!(ended_at, Some(bytes.chunks(7).count() - 1));
    }

    #[test]
    fn capture_stops_at_end_timeout_or_close() {
        let text = report() + "after the end\n";
        let mut seen = Vec::new();
        let mut sink = Vec::new();
        let c = capture(
            &mut text.as_bytes(),
            Duration::from_secs(5),
            Some(&mut sink),
            &mut |n| seen.push(n),
        );
        assert_eq!(c.stop, Stop::End);
        assert_eq!(c.records, 6);
        assert_eq!(seen.last(), Some(&6));
        assert_eq!(sink, c.log.as_bytes());
        let (ok, msg) = verdict(&c, "p");
        assert!(ok, "{msg}");
        assert!(msg.contains("Verified") && msg.contains("PASS"), "{msg}");

        // A reader that never has data: the timeout ends it.
        struct Idle;
        impl Read for Idle {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                std::thread::sleep(Duration::from_millis(10));
                Ok(0)
            }
        }
        let c = capture(&mut Idle, Duration::from_millis(50), None, &mut |_| {});
        assert_eq!(c.stop, Stop::Timeout);
        let (ok, msg) = verdict(&c, "p");
        assert!(
            !ok && msg.contains("timed out") && msg.contains("Truncated"),
            "{msg}"
        );

        // The port hangs up halfway.
        struct Half(Vec<u8>, bool);
        impl Read for Half {
            fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
                if self.1 {
                    return Err(std::io::Error::from_raw_os_error(5));
                }
                self.1 = true;
                let n = self.0.len().min(b.len());
                b[..n].copy_from_slice(&self.0[..n]);
                Ok(n)
            }
        }
        let full = report();
        let cut = full.as_bytes()[..full.len() / 2].to_vec();
        let c = capture(
            &mut Half(cut, false),
            Duration::from_secs(5),
            None,
            &mut |_| {},
        );
        assert!(
            matches!(c.stop, Stop::Closed(ref m) if m.contains("EIO")),
            "{:?}",
            c.stop
        );
        assert!(!verdict(&c, "p").0);
    }

    /// A real pseudo-terminal: write a report into the master, capture it from the slave.
    #[cfg(target_os = "linux")]
    #[test]
    fn captures_from_a_pseudo_terminal() {
        use std::os::unix::io::FromRawFd;
        // SAFETY: posix_openpt returns a new descriptor (or -1), owned by the File below.
        let master = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY) };
        assert!(master >= 0);
        // SAFETY: `master` is a pty master we own.
        let mut master_file = unsafe { std::fs::File::from_raw_fd(master) };
        let mut name = [0 as libc::c_char; 128];
        // SAFETY: `master` is a valid pty master; `name` has room for the path and its NUL.
        unsafe {
            assert_eq!(libc::grantpt(master), 0);
            assert_eq!(libc::unlockpt(master), 0);
            assert_eq!(libc::ptsname_r(master, name.as_mut_ptr(), name.len()), 0);
        }
        // SAFETY: ptsname_r wrote a NUL-terminated string into `name`.
        let path = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }
            .to_str()
            .unwrap()
            .to_string();
        let mut port = open_port(Path::new(&path), 115_200).unwrap();
        let text = report();
        let writer = std::thread::spawn(move || {
            for chunk in text.as_bytes().chunks(50) {
                master_file.write_all(chunk).unwrap();
                std::thread::sleep(Duration::from_millis(2));
            }
            master_file
        });
        let c = capture(&mut port, Duration::from_secs(10), None, &mut |_| {});
        let _master = writer.join().unwrap();
        assert_eq!(c.stop, Stop::End, "{}", c.log);
        let (ok, msg) = verdict(&c, &path);
        assert!(ok, "{msg}");
        // Raw mode: the CR LF line ends arrive unchanged.
        assert!(c.log.contains("\r\n{\"type\":\"end\""), "{:?}", c.log);

        let e = open_port(Path::new("/dev/null"), 115_200).unwrap_err();
        assert!(e.to_string().contains("not a serial port"), "{e}");
        let e = open_port(Path::new("/nonexistent/tty"), 115_200).unwrap_err();
        assert!(e.to_string().contains("cannot open"), "{e}");
    }
}
