//! Exceptions: `global_asm!` entry stubs (stable Rust has no `x86-interrupt` ABI), one Rust
//! handler, the fault guard, and the full dump for anything unexpected.
//!
//! Each stub pushes a dummy error code where the CPU pushes none (SDM Vol. 3A Table 6-1,
//! [`probes::fault::x86_vector_has_error_code`]) and its vector, so every frame has the same
//! shape; the common stub saves the 15 general-purpose registers and calls [`trap`] with a
//! pointer to the [`TrapFrame`]. The CPU aligns RSP to 16 before pushing its frame in 64-bit mode
//! (SDM Vol. 3A 6.14.2): 5 + 2 + 15 quadwords keep the call 16-byte aligned.

use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};

use probes::fault::{x86_vector_has_error_code, x86_vector_name, RawFault};
use spin::Mutex;
use x86_64::registers::control::{Cr0, Cr2, Cr3, Cr4};

use super::{apic, core_index, ring3, MAX_CPUS};

/// Exception vectors (0-31); every one has a stub.
pub const EXCEPTION_VECTORS: usize = 32;

/// The saved state, lowest address first (the order the common stub leaves it on the stack).
#[repr(C)]
#[derive(Debug)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error_code: u64,
    // Pushed by the CPU.
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

macro_rules! stubs {
    ($($v:literal $kind:ident),* $(,)?) => {
        core::arch::global_asm!(
            ".pushsection .text.atomprobe_traps, \"ax\"",
            ".macro ISR_NOERR n",
            "atomprobe_isr_\\n:",
            "    push 0",
            "    push \\n",
            "    jmp atomprobe_isr_common",
            ".endm",
            ".macro ISR_ERR n",
            "atomprobe_isr_\\n:",
            "    push \\n",
            "    jmp atomprobe_isr_common",
            ".endm",
            $(concat!(stringify!($kind), " ", $v),)*
            "atomprobe_isr_common:",
            "    push rax", "    push rbx", "    push rcx", "    push rdx",
            "    push rsi", "    push rdi", "    push rbp", "    push r8",
            "    push r9", "    push r10", "    push r11", "    push r12",
            "    push r13", "    push r14", "    push r15",
            "    mov rdi, rsp",
            "    cld",
            "    call {trap}",
            "    pop r15", "    pop r14", "    pop r13", "    pop r12",
            "    pop r11", "    pop r10", "    pop r9", "    pop r8",
            "    pop rbp", "    pop rdi", "    pop rsi", "    pop rdx",
            "    pop rcx", "    pop rbx", "    pop rax",
            "    add rsp, 16",
            "    iretq",
            ".popsection",
            ".pushsection .rodata.atomprobe_traps, \"a\"",
            ".balign 8",
            ".globl atomprobe_isr_table",
            "atomprobe_isr_table:",
            $(concat!("    .quad atomprobe_isr_", $v),)*
            ".popsection",
            trap = sym trap,
        );

        /// The vector of each stub and whether it expects a CPU-pushed error code, in the order
        /// of `atomprobe_isr_table` (from the same list as the stubs).
        pub const STUBS: &[(u8, bool)] = &[$(($v, stubs!(@err $kind))),*];
    };
    (@err ISR_ERR) => { true };
    (@err ISR_NOERR) => { false };
}

// Vectors 8, 10-14, 17, 21, 29, 30 push an error code (SDM Vol. 3A Table 6-1); checked against
// `x86_vector_has_error_code` at compile time below.
stubs!(
    0 ISR_NOERR, 1 ISR_NOERR, 2 ISR_NOERR, 3 ISR_NOERR, 4 ISR_NOERR, 5 ISR_NOERR, 6 ISR_NOERR, 7 ISR_NOERR,
    8 ISR_ERR, 9 ISR_NOERR, 10 ISR_ERR, 11 ISR_ERR, 12 ISR_ERR, 13 ISR_ERR, 14 ISR_ERR, 15 ISR_NOERR,
    16 ISR_NOERR, 17 ISR_ERR, 18 ISR_NOERR, 19 ISR_NOERR, 20 ISR_NOERR, 21 ISR_ERR, 22 ISR_NOERR, 23 ISR_NOERR,
    24 ISR_NOERR, 25 ISR_NOERR, 26 ISR_NOERR, 27 ISR_NOERR, 28 ISR_NOERR, 29 ISR_ERR, 30 ISR_ERR, 31 ISR_NOERR,
    240 ISR_NOERR, 255 ISR_NOERR,
);

// The stub list above and the shared decoder must agree.
// Vectors 240 (engine wake-up IPI) and 255 (APIC spurious) are interrupts: no error code.
const _: () = {
    let mut i = 0;
    while i < STUBS.len() {
        let (v, err) = STUBS[i];
        assert!(err == x86_vector_has_error_code(v) || v as usize >= EXCEPTION_VECTORS);
        assert!(
            v as usize >= EXCEPTION_VECTORS || v as usize == i,
            "exceptions first, in order"
        );
        i += 1;
    }
    assert!(STUBS[STUBS.len() - 2].0 == apic::WAKE_VECTOR);
    assert!(STUBS[STUBS.len() - 1].0 == apic::SPURIOUS_VECTOR);
};

extern "C" {
    static atomprobe_isr_table: [u64; STUBS.len()];
}

/// Address of the entry stub for `STUBS[i]`.
pub fn stub_address(i: usize) -> u64 {
    // SAFETY: the table holds one quadword stub address per `STUBS` entry, emitted above and
    // never written.
    unsafe { atomprobe_isr_table[i] }
}

/// Per-core fault guard: armed flag and the fault taken while armed.
struct Guard {
    armed: AtomicBool,
    fault: Mutex<Option<RawFault>>,
}

static GUARDS: [Guard; MAX_CPUS] = [const {
    Guard {
        armed: AtomicBool::new(false),
        fault: Mutex::new(None),
    }
}; MAX_CPUS];

/// Run `op` with this core's guard armed; the fault a guarded instruction took, if any. Under
/// `align-check=on` the op runs at CPL 3 with RFLAGS.AC = 1 (`ring3`); a fault it takes there
/// is handled by [`trap`] exactly as at ring 0 and execution resumes at ring 3.
pub fn guarded(op: &mut dyn FnMut()) -> Option<RawFault> {
    let g = &GUARDS[core_index()];
    *g.fault.lock() = None;
    g.armed.store(true, Ordering::SeqCst);
    if ring3::enabled() {
        ring3::run(op);
    } else {
        op();
    }
    g.armed.store(false, Ordering::SeqCst);
    g.fault.lock().take()
}

extern "C" fn trap(f: &mut TrapFrame) {
    let vector = f.vector as u8;
    if vector == apic::WAKE_VECTOR {
        // The engine's wake-up: the worker loop re-reads its mailbox after `hlt` returns.
        apic::eoi();
        return;
    }
    if vector == apic::SPURIOUS_VECTOR {
        // Spurious APIC interrupts take no EOI (SDM Vol. 3A 11.9).
        return;
    }
    let cr2 = Cr2::read_raw();
    let core = core_index();
    let fault = RawFault::X86 {
        vector,
        error_code: x86_vector_has_error_code(vector).then_some(f.error_code),
        cr2,
        rip: f.rip,
    };
    if usize::from(vector) < EXCEPTION_VECTORS && GUARDS[core].armed.load(Ordering::SeqCst) {
        if let Some(resume) = probes::guard::resume_address(f.rip as usize) {
            *GUARDS[core].fault.lock() = Some(fault);
            f.rip = resume as u64;
            return;
        }
    }
    // A fault while this core already handles one (in the dump, the abort path, a panic):
    // print the essentials without allocating or locking and stop (`crate::fatal`).
    if !crate::fatal::begin() {
        crate::fatal::nested(format_args!(
            "vector {vector} ({}) while handling another: error code {}, RIP {:#018x}, CR2 \
             {cr2:#018x}",
            x86_vector_name(vector),
            ErrorCode(x86_vector_has_error_code(vector).then_some(f.error_code)),
            f.rip
        ))
    }
    if crate::fatal::nested_selftest_armed() {
        use core::fmt::Write;
        let _ = writeln!(
            crate::fatal::Raw,
            "\n!! exception dump: vector {vector} ({}) on core {core}, RIP {:#018x}, CR2 \
             {cr2:#018x}",
            x86_vector_name(vector),
            f.rip
        );
        // selftest=nested-fault: fault again in the middle of the dump.
        super::selftest_fault_now();
    }
    if !crate::heap::ready() {
        // `Dump` describes the fault with an allocated string: not before the heap exists.
        crate::fatal::early(format_args!(
            "unexpected exception: vector {vector} ({}), error code {}, RIP {:#018x}, RSP \
             {:#018x}, CR2 {cr2:#018x}",
            x86_vector_name(vector),
            ErrorCode(x86_vector_has_error_code(vector).then_some(f.error_code)),
            f.rip,
            f.rsp
        ))
    }
    crate::abort_run(format_args!(
        "unexpected exception {}",
        Dump {
            f,
            cr2,
            core,
            fault
        }
    ))
}

/// An error code, or "none" for vectors that push none.
struct ErrorCode(Option<u64>);

impl fmt::Display for ErrorCode {
    fn fmt(&self, w: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(c) => write!(w, "{c:#x}"),
            None => w.write_str("none"),
        }
    }
}

/// The full register dump, written straight into the abort message (no allocation).
struct Dump<'a> {
    f: &'a TrapFrame,
    cr2: u64,
    core: usize,
    fault: RawFault,
}

impl fmt::Display for Dump<'_> {
    fn fmt(&self, w: &mut fmt::Formatter<'_>) -> fmt::Result {
        let f = self.f;
        let v = f.vector as u8;
        writeln!(w, "vector {v} {} on core {}", x86_vector_name(v), self.core)?;
        if x86_vector_has_error_code(v) {
            writeln!(w, "  error code {:#x}", f.error_code)?;
        } else {
            writeln!(w, "  error code (none)")?;
        }
        writeln!(
            w,
            "  kind {}: {}",
            self.fault.kind().name(),
            self.fault.describe()
        )?;
        writeln!(
            w,
            "  RIP {:#018x}  CS {:#06x}  RFLAGS {:#018x}",
            f.rip, f.cs, f.rflags
        )?;
        writeln!(
            w,
            "  RSP {:#018x}  SS {:#06x}  CR2 {:#018x}",
            f.rsp, f.ss, self.cr2
        )?;
        writeln!(
            w,
            "  RAX {:#018x}  RBX {:#018x}  RCX {:#018x}",
            f.rax, f.rbx, f.rcx
        )?;
        writeln!(
            w,
            "  RDX {:#018x}  RSI {:#018x}  RDI {:#018x}",
            f.rdx, f.rsi, f.rdi
        )?;
        writeln!(
            w,
            "  RBP {:#018x}  R8  {:#018x}  R9  {:#018x}",
            f.rbp, f.r8, f.r9
        )?;
        writeln!(
            w,
            "  R10 {:#018x}  R11 {:#018x}  R12 {:#018x}",
            f.r10, f.r11, f.r12
        )?;
        writeln!(
            w,
            "  R13 {:#018x}  R14 {:#018x}  R15 {:#018x}",
            f.r13, f.r14, f.r15
        )?;
        let (cr3, _) = Cr3::read_raw();
        write!(
            w,
            "  CR0 {:#018x}  CR3 {:#018x}  CR4 {:#018x}",
            Cr0::read_raw(),
            cr3.start_address().as_u64(),
            Cr4::read_raw()
        )
    }
}
