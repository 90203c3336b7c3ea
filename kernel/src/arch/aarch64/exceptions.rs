//! Exception handling: the Rust side of the vectors in boot/aarch64/entry.S, and the fault guard.
//!
//! Every exception arrives with the whole interrupted context saved in a [`Frame`]. A synchronous
//! exception on a core whose guard is armed, at a PC registered in the guard table
//! ([`probes::guard`]), is recorded in that core's guard slot and resumed after the faulting
//! instruction. Anything else — a fault outside a guard, IRQ, FIQ, SError, an exception from a
//! lower EL — prints a full dump and ends the run as aborted.

use core::fmt::{self, Write};
use core::sync::atomic::{compiler_fence, AtomicBool, AtomicU64, Ordering};

use probes::fault::RawFault;

use super::{core_index, MAX_CORES};

/// The saved context; layout fixed by `exception_common` in entry.S.
#[repr(C)]
pub struct Frame {
    pub x: [u64; 31],
    pub sp: u64,
    pub elr: u64,
    pub spsr: u64,
    pub esr: u64,
    pub far: u64,
    pub q: [u128; 32],
    pub fpcr: u64,
    pub fpsr: u64,
}

/// Size of [`Frame`], as used by entry.S.
pub const FRAME_SIZE: usize = core::mem::size_of::<Frame>();
const _: () = assert!(FRAME_SIZE == 816 && FRAME_SIZE.is_multiple_of(16));

/// One core's guard: armed flag and the fault taken while armed. Only its own core touches it
/// (the exception is synchronous on that core), so plain loads and stores suffice.
#[repr(C, align(64))]
struct GuardSlot {
    armed: AtomicBool,
    taken: AtomicBool,
    esr: AtomicU64,
    far: AtomicU64,
    elr: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY_SLOT: GuardSlot = GuardSlot {
    armed: AtomicBool::new(false),
    taken: AtomicBool::new(false),
    esr: AtomicU64::new(0),
    far: AtomicU64::new(0),
    elr: AtomicU64::new(0),
};

static GUARDS: [GuardSlot; MAX_CORES] = [EMPTY_SLOT; MAX_CORES];

/// Run `op` with this core's fault guard armed; the (last) fault a guarded instruction in `op`
/// took, if any.
pub fn guarded(op: &mut dyn FnMut()) -> Option<RawFault> {
    let slot = &GUARDS[core_index()];
    slot.taken.store(false, Ordering::Relaxed);
    slot.armed.store(true, Ordering::Relaxed);
    compiler_fence(Ordering::SeqCst);
    op();
    compiler_fence(Ordering::SeqCst);
    slot.armed.store(false, Ordering::Relaxed);
    if slot.taken.load(Ordering::Relaxed) {
        Some(RawFault::Aarch64 {
            esr: slot.esr.load(Ordering::Relaxed),
            far: slot.far.load(Ordering::Relaxed),
            elr: slot.elr.load(Ordering::Relaxed),
        })
    } else {
        None
    }
}

const KIND_NAMES: [&str; 4] = ["synchronous", "IRQ", "FIQ", "SError"];
const ORIGIN_NAMES: [&str; 4] = [
    "current EL with SP_EL0",
    "current EL with SP_ELx",
    "lower EL (AArch64)",
    "lower EL (AArch32)",
];

/// Called by entry.S for every exception, with the saved context and the vector index.
pub extern "C" fn handle(frame: &mut Frame, kind: u64) {
    let is_sync_here = kind == 4;
    if is_sync_here {
        let slot = &GUARDS[core_index()];
        if slot.armed.load(Ordering::Relaxed) {
            if let Some(resume) = probes::guard::resume_address(frame.elr as usize) {
                slot.esr.store(frame.esr, Ordering::Relaxed);
                slot.far.store(frame.far, Ordering::Relaxed);
                slot.elr.store(frame.elr, Ordering::Relaxed);
                slot.taken.store(true, Ordering::Relaxed);
                frame.elr = resume as u64;
                return;
            }
        }
    }
    let k = (kind & 3) as usize;
    let origin = ((kind >> 2) & 3) as usize;
    // A fault while this core already handles one (in the dump, the abort path, a panic):
    // print the essentials without allocating or locking and stop (`crate::fatal`).
    if !crate::fatal::begin() {
        crate::fatal::nested(format_args!(
            "{} exception from {} while handling another: ESR_EL1 {:#010x} ELR_EL1 {:#018x} \
             FAR_EL1 {:#018x}",
            KIND_NAMES[k], ORIGIN_NAMES[origin], frame.esr, frame.elr, frame.far
        ))
    }
    dump(frame, kind);
    if !crate::heap::ready() {
        crate::fatal::early(format_args!(
            "unexpected {} exception from {} at ELR {:#x} (dump above)",
            KIND_NAMES[k], ORIGIN_NAMES[origin], frame.elr
        ))
    }
    let what = if k == 0 {
        RawFault::Aarch64 {
            esr: frame.esr,
            far: frame.far,
            elr: frame.elr,
        }
        .describe()
    } else {
        alloc::string::String::from("asynchronous exception")
    };
    crate::abort_run(format_args!(
        "unexpected {} exception from {} at ELR {:#x}: {}",
        KIND_NAMES[k], ORIGIN_NAMES[origin], frame.elr, what
    ))
}

/// Writes straight to the board console: no lock, no allocation (the fault may have happened
/// while either was held on this core).
struct RawConsole;

impl Write for RawConsole {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                crate::board::console_write(b"\r\n");
            } else {
                crate::board::console_write(&[b]);
            }
        }
        Ok(())
    }
}

fn dump(f: &Frame, kind: u64) {
    let mut w = RawConsole;
    let k = (kind & 3) as usize;
    let origin = ((kind >> 2) & 3) as usize;
    let ec = (f.esr >> 26) & 0x3f;
    let _ = writeln!(
        w,
        "\n!! exception dump: core {} (MPIDR {:#x}), {} from {}",
        core_index(),
        super::mpidr(),
        KIND_NAMES[k],
        ORIGIN_NAMES[origin]
    );
    if crate::fatal::nested_selftest_armed() {
        // selftest=nested-fault: fault again in the middle of the dump.
        super::selftest_fault_now();
    }
    let _ = writeln!(
        w,
        "!! ESR_EL1 {:#010x} (EC {:#04x} {})",
        f.esr,
        ec,
        probes::fault::esr_class_name(ec)
    );
    let _ = writeln!(
        w,
        "!! FAR_EL1 {:#018x}  ELR_EL1 {:#018x}  SPSR_EL1 {:#010x}  SP {:#018x}",
        f.far, f.elr, f.spsr, f.sp
    );
    for row in 0..8 {
        let _ = write!(w, "!!");
        for col in 0..4 {
            let i = row * 4 + col;
            if i < 31 {
                let _ = write!(w, "  x{:<2} {:#018x}", i, f.x[i]);
            }
        }
        let _ = writeln!(w);
    }
}
