//! The last line of defence (issue 11): a fault or panic on a core that is already handling one,
//! or one before the heap exists, ends here. What is known is printed straight to the board's
//! UART — no lock, no allocation, nothing that could fault again — and the run stops with a
//! failing status (or the core parks where there is no way to report one). Never a loop: a
//! third entry on the same core parks at once.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};

use probes::record::RunStatus;

use crate::{arch, board};

/// Per core: a fault or panic is being handled (plain loads and stores only: with the MMU off
/// exclusives may never succeed, see `sync.rs`; each flag is only touched by its own core).
static HANDLING: [AtomicBool; arch::MAX_CPUS] = [const { AtomicBool::new(false) }; arch::MAX_CPUS];
/// Per core: the nested-fault message is being printed.
static STOPPING: [AtomicBool; arch::MAX_CPUS] = [const { AtomicBool::new(false) }; arch::MAX_CPUS];
/// `selftest=nested-fault`: the fault handler faults again while dumping (tested on every board).
static NESTED_SELFTEST: AtomicBool = AtomicBool::new(false);

/// Bytes straight to the board's console, `\n` as CR LF.
pub struct Raw;

impl Write for Raw {
    fn write_str(&mut self, s: &str) -> fmt::Result {
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

/// Mark this core as handling a fault or panic. `false`: it already was, and the caller must
/// call [`nested`] instead of handling this one.
pub fn begin() -> bool {
    let slot = &HANDLING[arch::core_index()];
    if slot.load(Ordering::Relaxed) {
        return false;
    }
    slot.store(true, Ordering::Relaxed);
    true
}

/// A second fault or panic while this core handled one: print `what` and stop.
pub fn nested(what: fmt::Arguments) -> ! {
    let core = arch::core_index();
    if STOPPING[core].load(Ordering::Relaxed) {
        // Faulted again while printing or exiting: nothing is left to try.
        arch::halt()
    }
    STOPPING[core].store(true, Ordering::Relaxed);
    let _ = write!(
        Raw,
        "\n!! nested fault on core {core}: {what}\n!! atomprobe: stopped: a fault or panic while \
         handling another one; no report follows\n"
    );
    board::exit(RunStatus::Aborted)
}

/// A fault or panic before the heap exists: the normal abort path (records, summary) cannot run.
pub fn early(what: fmt::Arguments) -> ! {
    let core = arch::core_index();
    STOPPING[core].store(true, Ordering::Relaxed);
    let _ = write!(
        Raw,
        "\n!! atomprobe: fatal on core {core} before the kernel was up: {what}\n!! atomprobe: \
         stopped; no report follows\n"
    );
    board::exit_early()
}

/// Arm `selftest=nested-fault`.
pub fn arm_nested_selftest() {
    NESTED_SELFTEST.store(true, Ordering::Relaxed);
}

/// Whether the fault handler must fault again now (`selftest=nested-fault`).
pub fn nested_selftest_armed() -> bool {
    NESTED_SELFTEST.load(Ordering::Relaxed)
}
