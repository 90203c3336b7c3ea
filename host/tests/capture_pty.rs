//! `atomprobe capture` against a real pseudo-terminal: QEMU's `-serial pty`.
//!
//! QEMU boots the virt image paused (`-S`) with its serial port on a new pty and its monitor on
//! stdio; the test reads `char device redirected to /dev/pts/N` from QEMU's output, starts the
//! `atomprobe capture --port /dev/pts/N` binary, waits until it has opened the port, then lets
//! QEMU run (`cont`), so no output is lost before the capture reads. The capture must stop at the
//! end record, exit 0 and leave a verified log.
//!
//! A missing QEMU skips the test loudly when CI is unset and fails it when CI is set.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use atomprobe::{kernel, profile, Board, Profile, RunOpts};
use probes::record::Record;
use probes::report::parse_report;

fn timeout() -> Duration {
    let s = std::env::var("ATOMPROBE_TEST_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(240);
    Duration::from_secs(s)
}

fn qemu_present(qemu: &str) -> bool {
    let ok = Command::new(qemu)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{qemu} is not available and CI is set: install QEMU >= 9.0");
    }
    eprintln!();
    eprintln!("*****************************************************************************");
    eprintln!("*** SKIPPED: {qemu} not found; install QEMU >= 9.0 to run the capture test ***");
    eprintln!("*****************************************************************************");
    false
}

/// Lines of a child's pipe, over a channel.
fn lines_of(r: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    lines_into(r, tx);
    rx
}

fn lines_into(r: impl std::io::Read + Send + 'static, tx: mpsc::Sender<String>) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
}

/// Wait for a line satisfying `pick`, up to `limit`; every line seen goes into `seen`.
fn wait_line(
    rx: &mpsc::Receiver<String>,
    limit: Duration,
    seen: &mut Vec<String>,
    pick: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    let deadline = Instant::now() + limit;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(l) => {
                let hit = pick(&l);
                seen.push(l);
                if hit.is_some() {
                    return hit;
                }
            }
            Err(_) => return None,
        }
    }
    None
}

struct KillOnDrop(Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn capture_reads_qemu_serial_pty_to_a_verified_log() {
    let root = atomprobe::require_root().expect("workspace root");
    let (profile, _) = Profile::load(Board::Virt, profile::workspace_root().as_deref()).unwrap();
    if !qemu_present(&profile.qemu) {
        return;
    }
    let elf = kernel::build_kernel(&root, &profile, true).expect("kernel builds");
    let image = kernel::prepare_image(&elf, &profile).expect("image");
    let mut opts = RunOpts::new(Board::Virt);
    opts.append = Some("probes=fault,litmus/SB iters=100".into());
    opts.smp = Some(2);
    let mut argv = atomprobe::qemu::qemu_command(&profile, &opts, &image).unwrap();
    // Serial on a new pseudo-terminal, monitor on stdin, start paused.
    let mut replaced = 0;
    for i in 0..argv.len() - 1 {
        match (argv[i].as_str(), argv[i + 1].as_str()) {
            ("-serial", "stdio") => {
                argv[i + 1] = "pty".into();
                replaced += 1;
            }
            ("-monitor", "none") => {
                argv[i + 1] = "stdio".into();
                replaced += 1;
            }
            _ => {}
        }
    }
    assert_eq!(
        replaced, 2,
        "the virt profile should have `-serial stdio` and `-monitor none`: {argv:?}"
    );
    argv.push("-S".into());

    let mut qemu = KillOnDrop(
        Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("QEMU starts"),
    );
    // With the monitor on stdio, QEMU names the pty on stdout (the monitor), else on stderr.
    let (tx, qemu_err) = mpsc::channel();
    lines_into(qemu.0.stdout.take().unwrap(), tx.clone());
    lines_into(qemu.0.stderr.take().unwrap(), tx);
    let mut qemu_seen = Vec::new();
    let pty = wait_line(&qemu_err, Duration::from_secs(60), &mut qemu_seen, |l| {
        let rest = &l[l.find("char device redirected to ")? + 26..];
        Some(rest.split_whitespace().next()?.to_string())
    })
    .unwrap_or_else(|| panic!("QEMU did not name its pty; stderr: {qemu_seen:?}; argv {argv:?}"));

    let dir = std::env::temp_dir().join(format!("atomprobe-capture-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("capture.log");
    let t = timeout();
    let mut cap = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_atomprobe"))
            .args(["capture", "--port", &pty, "--baud", "115200", "--out"])
            .arg(&out)
            .args(["--timeout", &t.as_secs().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("atomprobe capture starts"),
    );
    let cap_err = lines_of(cap.0.stderr.take().unwrap());
    let mut cap_seen = Vec::new();
    wait_line(&cap_err, Duration::from_secs(30), &mut cap_seen, |l| {
        l.contains("reading").then(String::new)
    })
    .unwrap_or_else(|| panic!("capture did not open {pty}: {cap_seen:?}"));

    // The port is open: let the guest run.
    let mut stdin = qemu.0.stdin.take().unwrap();
    writeln!(stdin, "cont").unwrap();
    stdin.flush().unwrap();

    let deadline = Instant::now() + t + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = cap.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "capture did not finish; stderr so far: {cap_seen:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    while let Ok(l) = cap_err.recv_timeout(Duration::from_millis(500)) {
        cap_seen.push(l);
    }
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let summary = cap_seen.join("\n");
    assert!(
        status.success(),
        "capture exit {status}; its stderr:\n{summary}\nlog:\n{text}"
    );
    assert!(summary.contains("integrity Verified"), "{summary}");
    assert!(summary.contains("the end record arrived"), "{summary}");
    let rep = parse_report(&text);
    assert!(rep.integrity.is_verified(), "{:?}", rep.integrity);
    match &rep.records[0] {
        Record::Begin(b) => assert_eq!(b.board, "qemu-virt"),
        r => panic!("first record is not begin: {r:?}"),
    }
    assert!(
        rep.records
            .iter()
            .any(|r| matches!(r, Record::Litmus(l) if l.name == "SB")),
        "no SB litmus record in the capture"
    );
    drop(stdin);
    drop(qemu);
    std::fs::remove_dir_all(&dir).unwrap();
}
