//! The consoles: human text and records, one whole line at a time, and the report's running
//! count and CRC. Serialised by [`crate::sync::Mutex`] (no exclusives or RMW atomics: see
//! `sync.rs` for why).
//!
//! Two targets, chosen by `console=serial|screen|both` (default both): the serial port gets
//! everything; a screen console (the board's, e.g. the UEFI GOP framebuffer) gets only the
//! human lines (begin and summary lines, progress, each deviation/violation named, errors),
//! so that the records cannot scroll them away.

use alloc::format;
use alloc::string::String;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};

use probes::record::{Record, RunStatus, Verdict};
use probes::report::ReportWriter;

use crate::board;
use crate::sync::Mutex;

/// Tallies for the human summary.
#[derive(Default)]
pub struct Tally {
    pub probes: u64,
    pub deviations: u64,
    pub skipped: u64,
    pub faults: u64,
    pub litmus: u64,
    pub violations: u64,
    /// Violations whose record names a known emulator deviation (`suite::litmus`).
    pub known_emulator: u64,
    pub errors: u64,
    pub cpus_online: u64,
    pub cpus_offline: u64,
}

struct Console {
    /// Created on first use (`crc32fast::Hasher::new` is not `const`).
    report: Option<ReportWriter>,
    tally: Tally,
    ended: bool,
    /// The family of the last probe record, for the screen's progress lines.
    last_family: String,
}

static CONSOLE: Mutex<Console> = Mutex::new(Console {
    report: None,
    tally: Tally {
        probes: 0,
        deviations: 0,
        skipped: 0,
        faults: 0,
        litmus: 0,
        violations: 0,
        known_emulator: 0,
        errors: 0,
        cpus_online: 0,
        cpus_offline: 0,
    },
    ended: false,
    last_family: String::new(),
});

/// Set once an abort has started, so a second fault during the abort does not recurse (a lock,
/// not an atomic swap: no RMW, see `sync.rs`).
static ABORTING: Mutex<bool> = Mutex::new(false);

/// `console=`: whether the serial port and the screen are written (plain loads and stores,
/// set once by `kmain` before any other core runs).
static SERIAL_ON: AtomicBool = AtomicBool::new(true);
static SCREEN_ON: AtomicBool = AtomicBool::new(true);

/// Choose the targets (`kmain`, from `console=` and whether the board has a screen).
pub fn set_targets(serial: bool, screen: bool) {
    SERIAL_ON.store(serial, Ordering::Relaxed);
    SCREEN_ON.store(screen, Ordering::Relaxed);
}

/// Records: the serial port only.
struct Raw;

impl Write for Raw {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if !SERIAL_ON.load(Ordering::Relaxed) {
            return Ok(());
        }
        for b in s.bytes() {
            if b == b'\n' {
                board::console_write(b"\r\n");
            } else {
                board::console_write(&[b]);
            }
        }
        Ok(())
    }
}

/// Human text: the serial port and the screen.
struct Human;

impl Write for Human {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // The screen first: once a line is seen on the serial port it is on the screen too
        // (tests/uefi_screen.rs takes its screendump when the last line appears on serial).
        if SCREEN_ON.load(Ordering::Relaxed) {
            board::screen_write(s);
        }
        let _ = Raw.write_str(s);
        Ok(())
    }
}

/// A line for the screen only (what the serial port learns from the records).
fn screen_line(s: &str) {
    if SCREEN_ON.load(Ordering::Relaxed) {
        board::screen_write(s);
        board::screen_write("\n");
    }
}

/// Print human text (the caller keeps lines from starting with `{`).
pub fn print(args: fmt::Arguments) {
    let _g = CONSOLE.lock();
    let _ = Human.write_fmt(args);
}

/// The last line of a run ("run finished"), on every console, after `end`: taken without the
/// console lock, which a stuck or faulted core may hold after an abort.
// Only the UEFI boards print a line after `end` (the others end with the exit device).
#[cfg_attr(not(feature = "board-uefi"), allow(dead_code))]
pub fn final_line(text: &str) {
    if SCREEN_ON.load(Ordering::Relaxed) {
        board::screen_write_final(text);
    }
    let _ = Raw.write_str(text);
}

#[macro_export]
macro_rules! println {
    () => { $crate::console::print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::console::print(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Print a record line and count it into the report.
pub fn emit(rec: &Record) {
    let mut c = CONSOLE.lock();
    if c.ended {
        return;
    }
    tally(&mut c.tally, rec);
    let line: String = c.report.get_or_insert_with(ReportWriter::new).encode(rec);
    let _ = Raw.write_str(&line);
    let _ = Raw.write_str("\n");
    if SCREEN_ON.load(Ordering::Relaxed) {
        screen_note(&mut c.last_family, rec);
    }
}

/// The screen's view of a record: the run's settings, a line when a new probe family starts,
/// each deviation or violation by name, cores that stayed offline, errors.
fn screen_note(last_family: &mut String, rec: &Record) {
    match rec {
        Record::Begin(b) => screen_line(&format!(
            "probes {}, iters {}, {} variant(s); boot arguments: {}",
            b.config.probes.join(","),
            b.config.iters,
            b.config.variants().len(),
            if b.cmdline.is_empty() {
                "(none)"
            } else {
                &b.cmdline
            }
        )),
        Record::Cpu(c) if !c.online => screen_line(&format!(
            "cpu {} ({}) offline: {}",
            c.index,
            c.hwid,
            c.error.as_deref().unwrap_or("no reason given")
        )),
        Record::Probe(p) => {
            if *last_family != p.family {
                last_family.clone_from(&p.family);
                screen_line(&format!("-- probes: {}", p.family));
            }
            if matches!(p.verdict, Verdict::Deviation | Verdict::Violation) {
                screen_line(&format!(
                    "   {:?}: {}/{} {} ({})",
                    p.verdict,
                    p.family,
                    p.name,
                    p.attr,
                    p.reason.as_deref().unwrap_or(&p.rule)
                ));
            }
        }
        Record::Litmus(l) => {
            if last_family != "litmus" {
                *last_family = "litmus".into();
                screen_line("-- litmus tests");
            }
            if l.verdict == Verdict::Violation {
                screen_line(&format!(
                    "   violation: {} {} ({} of {} runs)",
                    l.name, l.attr, l.observed, l.iterations
                ));
            }
        }
        Record::Error(e) => screen_line(&format!("error ({}): {}", e.what, e.message)),
        _ => {}
    }
}

fn tally(t: &mut Tally, rec: &Record) {
    match rec {
        Record::Probe(p) => {
            t.probes += 1;
            match p.verdict {
                Verdict::Deviation | Verdict::Violation => t.deviations += 1,
                Verdict::Skipped => t.skipped += 1,
                Verdict::Ok | Verdict::Unjudged => {}
            }
            if p.fault.is_some() {
                t.faults += 1;
            }
        }
        Record::Litmus(l) => {
            t.litmus += 1;
            if l.verdict == Verdict::Violation {
                t.violations += 1;
                if probes::suite::litmus::KNOWN_EMULATOR_DEVIATIONS
                    .iter()
                    .any(|(name, _)| *name == l.name)
                {
                    t.known_emulator += 1;
                }
            }
        }
        Record::Error(_) => t.errors += 1,
        Record::Cpu(c) if c.online => t.cpus_online += 1,
        Record::Cpu(_) => t.cpus_offline += 1,
        _ => {}
    }
}

/// Print the summary and the `end` record; nothing is emitted afterwards.
pub fn finish(status: RunStatus, elapsed_ms: u64) {
    let mut c = CONSOLE.lock();
    finish_locked(&mut c, status, elapsed_ms);
}

fn finish_locked(c: &mut Console, status: RunStatus, elapsed_ms: u64) {
    if c.ended {
        return;
    }
    let t = &c.tally;
    let _ = write!(
        Human,
        "\n== atomprobe summary: {} cores online, {} offline; {} probe records ({} deviations, {} skipped, \
         {} faults taken); {} litmus records ({} violations, {} of them of a kind QEMU TCG is known \
         to produce); {} errors; {:?} in {} ms ==\n",
        t.cpus_online,
        t.cpus_offline,
        t.probes,
        t.deviations,
        t.skipped,
        t.faults,
        t.litmus,
        t.violations,
        t.known_emulator,
        t.errors,
        status,
        elapsed_ms
    );
    let end = c
        .report
        .get_or_insert_with(ReportWriter::new)
        .end(status, elapsed_ms);
    c.ended = true;
    let _ = Raw.write_str(&end.to_line());
    let _ = Raw.write_str("\n");
}

/// The abort path: print `args` and an `end` record with status `aborted`, even if another core
/// holds the console lock (it is taken by force after a bounded wait). Returns false if an abort
/// was already under way.
pub fn abort_report(args: fmt::Arguments, elapsed_ms: u64) -> bool {
    {
        let mut a = ABORTING.lock();
        if *a {
            return false;
        }
        *a = true;
    }
    // SAFETY: the holder is a core that is stuck or faulted (or this core, which faulted inside
    // the console): the run is ending and this is the only path that still prints, so breaking
    // the lock cannot race a live user in a way that matters more than getting the dump out.
    let mut g = unsafe { CONSOLE.lock_or_break(1_000_000) };
    let _ = Human.write_fmt(args);
    finish_locked(&mut g, RunStatus::Aborted, elapsed_ms);
    true
}
