//! Issue 12 item 3: the GOP framebuffer as a text console. OVMF on q35 with a VGA device boots
//! the UEFI disk image; when the serial log shows the "run finished" line (the kernel then
//! parks: no exit device and no `shutdown=`, as on a PC), QEMU's QMP monitor takes a
//! `screendump` (PPM) and the test looks for the lines the kernel drew, rendered here with the
//! same font crate at every text row, pixel for pixel.
#![cfg(unix)] // QEMU's QMP socket is a Unix socket (the foreign-target clippy builds every test)

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use atomprobe::Board;
use noto_sans_mono_bitmap::{get_raster, get_raster_width, FontWeight, RasterHeight};

/// kernel/src/board/uefi/screen.rs: pixels left free around the text.
const MARGIN: usize = 8;
const WEIGHT: FontWeight = FontWeight::Regular;
const HEIGHT: RasterHeight = RasterHeight::Size16;

/// A PPM (P6, maxval 255) screendump.
struct Picture {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

fn read_ppm(path: &Path) -> Picture {
    let data = std::fs::read(path).expect("screendump file");
    // Header: "P6" width height maxval, whitespace separated, then one whitespace byte.
    let mut fields = Vec::new();
    let mut i = 0;
    while fields.len() < 4 {
        while data[i].is_ascii_whitespace() {
            i += 1;
        }
        let start = i;
        while !data[i].is_ascii_whitespace() {
            i += 1;
        }
        fields.push(String::from_utf8_lossy(&data[start..i]).into_owned());
    }
    assert_eq!(fields[0], "P6", "screendump is not a binary PPM");
    assert_eq!(fields[3], "255");
    let (width, height) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    let rgb = data[i + 1..].to_vec();
    assert_eq!(rgb.len(), width * height * 3, "PPM size");
    Picture { width, height, rgb }
}

impl Picture {
    fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let o = (y * self.width + x) * 3;
        [self.rgb[o], self.rgb[o + 1], self.rgb[o + 2]]
    }

    /// Whether `text` is drawn at the start of text row `row`: every pixel of every glyph
    /// equal to the kernel's grey (i, i, i).
    fn has_text_at(&self, row: usize, text: &str) -> bool {
        let gw = get_raster_width(WEIGHT, HEIGHT);
        let gh = HEIGHT.val();
        let y0 = MARGIN + row * gh;
        if y0 + gh > self.height {
            return false;
        }
        for (col, c) in text.chars().enumerate() {
            let x0 = MARGIN + col * gw;
            if x0 + gw > self.width {
                return false;
            }
            let g = get_raster(c, WEIGHT, HEIGHT).expect("basic Latin");
            for (dy, line) in g.rows().enumerate() {
                for (dx, &i) in line.iter().enumerate() {
                    if self.pixel(x0 + dx, y0 + dy) != [i, i, i] {
                        return false;
                    }
                }
            }
        }
        true
    }

    /// The text rows where `text` starts.
    fn rows_with(&self, text: &str) -> Vec<usize> {
        let rows = self.height.saturating_sub(2 * MARGIN) / HEIGHT.val();
        (0..rows).filter(|&r| self.has_text_at(r, text)).collect()
    }
}

/// Send one QMP command and wait for its answer (events in between are skipped).
fn qmp(conn: &mut UnixStream, reader: &mut impl BufRead, cmd: &str) -> String {
    conn.write_all(format!("{cmd}\n").as_bytes()).unwrap();
    loop {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).unwrap() > 0, "QMP closed");
        if line.contains("\"return\"") || line.contains("\"error\"") {
            return line;
        }
    }
}

/// Boot the UEFI disk image with `append` in its cmdline.txt and `machine` (QEMU program and
/// its machine, firmware, display and disk arguments; no exit device, so the kernel parks after
/// the run as on real hardware); take a screendump when "run finished" appears on serial.
fn boot_and_screendump(machine: &[String], append: &str) -> (probes::record::Begin, Picture) {
    // One QEMU at a time (2-core CI host).
    static ONE_QEMU: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_QEMU.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("u.img");
    let o = Command::new(env!("CARGO_BIN_EXE_atomprobe"))
        .args(["image", "--board", "uefi", "--append", append, "--out"])
        .arg(&img)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let sock = dir.path().join("qmp.sock");
    let shot = dir.path().join("screen.ppm");
    let d = img.display().to_string();
    let v = dir.path().join("vars.fd").display().to_string();
    let argv: Vec<String> = machine
        .iter()
        .map(|a| a.replace("{disk}", &d).replace("{vars}", &v))
        .collect();
    if argv.iter().any(|a| a.contains(&v)) {
        std::fs::copy("/usr/share/OVMF/OVMF_VARS_4M.fd", &v).expect("OVMF (Debian ovmf)");
    }
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .args(["-smp", "2", "-m", "256M", "-nodefaults", "-display", "none"])
        .args(["-serial", "stdio", "-no-reboot", "-qmp"])
        .arg(format!("unix:{},server=on,wait=off", sock.display()))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Wait for the last line of the run; the kernel then parks (QEMU stays up).
    let deadline = Instant::now() + common::timeout();
    let mut log = String::new();
    let mut finished = false;
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(line) => {
                log.push_str(&line);
                log.push('\n');
                if line.contains("run finished") {
                    finished = true;
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let tail: String = log.lines().rev().take(8).collect::<Vec<_>>().join("\n");
    let pic = if finished {
        let mut conn = UnixStream::connect(&sock).expect("QMP socket");
        conn.set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut r = BufReader::new(conn.try_clone().unwrap());
        let mut greeting = String::new();
        r.read_line(&mut greeting).unwrap();
        let a = qmp(&mut conn, &mut r, r#"{"execute":"qmp_capabilities"}"#);
        assert!(a.contains("return"), "{a}");
        let a = qmp(
            &mut conn,
            &mut r,
            &format!(
                r#"{{"execute":"screendump","arguments":{{"filename":"{}"}}}}"#,
                shot.display()
            ),
        );
        assert!(a.contains("return"), "screendump: {a}");
        // QEMU may close the socket before answering; it is killed below anyway.
        let _ = conn.write_all(b"{\"execute\":\"quit\"}\n");
        Some(read_ppm(&shot))
    } else {
        None
    };
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    let pic = pic.unwrap_or_else(|| panic!("no 'run finished' line; log tail:\n{tail}"));

    let report = probes::report::parse_report(&log);
    assert_eq!(
        report.integrity,
        probes::report::Integrity::Verified,
        "{tail}"
    );
    let begin = report
        .records
        .iter()
        .find_map(|r| match r {
            probes::record::Record::Begin(b) => Some(b),
            _ => None,
        })
        .expect("begin record")
        .clone();
    (begin, pic)
}

/// Boot the UEFI disk image (`probes=fault iters=1k`) with `machine` (QEMU program and its
/// machine, firmware, display and disk arguments; no exit device, so the kernel parks after the
/// run as on real hardware), take a screendump when "run finished" appears on serial, and check
/// the screen shows the human lines of the run and no records.
fn check_screen(machine: &[String], board: &str) {
    let (begin, pic) = boot_and_screendump(machine, "probes=fault iters=1k");
    let screen = begin.platform.get("screen").cloned().unwrap_or_default();
    assert!(
        screen.contains("text on the GOP framebuffer"),
        "platform.screen = {screen}"
    );
    // The human lines are on the screen: the "run finished" line, the summary, the first
    // probe family's progress line. Few enough lines are drawn that none has scrolled away.
    for text in [
        "==== atomprobe: run finished (complete)",
        "== atomprobe summary:",
        "-- probes: fault",
        "probes fault, iters 1000",
    ] {
        assert!(
            !pic.rows_with(text).is_empty(),
            "'{text}' not found on the {}x{} screen",
            pic.width,
            pic.height
        );
    }
    let first = format!("atomprobe {} on {board}", begin.version);
    assert_eq!(
        pic.rows_with(&first),
        [0],
        "first line '{first}' not on row 0"
    );
    // The matcher tells lines apart (the run completed, it did not abort).
    assert!(pic
        .rows_with("==== atomprobe: run finished (aborted)")
        .is_empty());
    // Records stay off the screen.
    assert!(
        pic.rows_with("{").is_empty(),
        "a record line is on the screen"
    );
}

fn pc_machine() -> Vec<String> {
    [
        "qemu-system-x86_64",
        "-M",
        "q35",
        // OVMF's QemuVideoDxe drives the std VGA (bochs) device and gives it a GOP.
        "-device",
        "VGA",
        "-drive",
        "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
        "-drive",
        "if=pflash,format=raw,unit=1,file={vars}",
        "-drive",
        "format=raw,file={disk}",
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn pc_uefi_screen_console_shows_the_human_lines() {
    if !common::qemu_present(Board::PcUefi) {
        return;
    }
    check_screen(&pc_machine(), "uefi-x86_64");
}

/// More lines than the screen has rows (one error line per bad boot argument, each wrapping):
/// the picture scrolls, the first line is gone from the top, the last lines sit at the bottom.
#[test]
fn pc_uefi_screen_console_scrolls() {
    if !common::qemu_present(Board::PcUefi) {
        return;
    }
    let bad: Vec<String> = (0..40).map(|i| format!("bad{i}=1")).collect();
    let (begin, pic) = boot_and_screendump(
        &pc_machine(),
        &format!("probes=fault iters=1k {}", bad.join(" ")),
    );
    let rows = (pic.height - 2 * MARGIN) / HEIGHT.val();
    let first = format!("atomprobe {} on uefi-x86_64", begin.version);
    assert!(
        pic.rows_with(&first).is_empty(),
        "the first line did not scroll away"
    );
    let finished = pic.rows_with("==== atomprobe: run finished (complete)");
    let summary = pic.rows_with("== atomprobe summary:");
    assert_eq!(finished.len(), 1, "run finished rows {finished:?}");
    assert!(
        finished[0] + 4 >= rows,
        "run finished at row {} of {rows}: not at the bottom",
        finished[0]
    );
    assert!(
        summary.len() == 1 && summary[0] < finished[0],
        "summary rows {summary:?}"
    );
    // Error lines scrolled up intact: the last bad argument's line is above the summary.
    let last_err = pic.rows_with("error (bootarg): unknown boot argument 'bad39'");
    assert!(
        last_err.len() == 1 && last_err[0] < summary[0],
        "last error line rows {last_err:?}"
    );
}

#[test]
fn virt_uefi_screen_console_shows_the_human_lines() {
    if !common::qemu_present(Board::VirtUefi) {
        return;
    }
    let machine = [
        "qemu-system-aarch64",
        "-M",
        "virt",
        "-cpu",
        "cortex-a72",
        // The aarch64 UEFI firmware's QemuRamfbDxe gives ramfb a GOP whose buffer is RAM that
        // QEMU scans out directly (virtio-gpu would need transfers after ExitBootServices).
        "-device",
        "ramfb",
        "-bios",
        "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd",
        "-drive",
        "if=none,id=esp,format=raw,file={disk}",
        "-device",
        "virtio-blk-device,drive=esp",
    ];
    check_screen(&machine.map(String::from), "uefi-aarch64");
}
