//! The fault guard for OS threads: a SIGSEGV/SIGBUS handler (`sigaction` with `SA_SIGINFO`).
//!
//! When the faulting thread's guard is armed and the faulting PC is a guarded instruction
//! ([`crate::guard::resume_address`]), the handler records [`RawFault::Signal`] in the thread's
//! guard slot and moves the interrupted context's PC to the resume address (x86-64 `REG_RIP`,
//! aarch64 `uc_mcontext.pc`), so the probe carries on after the faulting instruction. Any other
//! fault restores the default action and returns: the instruction faults again and the process
//! dies as it would have without us (a harness bug must not be reported as a probe result).
//!
//! Per OS (the handler needs both a signal context it can edit and the guard table, which
//! [`crate::guard`] reads from ELF section bounds):
//!
//! | OS | guard |
//! |---|---|
//! | Linux (x86-64, aarch64) | this handler |
//! | macOS (x86-64, aarch64) | none yet: the handler below builds for macOS (`ucontext_t.uc_mcontext->__ss`), but Mach-O has no `__start_`/`__stop_` section bounds and the probes' guard entries are emitted with ELF section flags, so there is no table to resume from |
//! | Windows (x86-64) | none: no signals; a vectored exception handler would need the same table, which COFF does not get either (nor do the ELF section flags in `guard_entry!` assemble for COFF) |
//!
//! Without a guard, `guarded` runs the operation unprotected: a fault ends the process like any
//! other crash, the report has no `end` record and reads as truncated. Faults are expected in the
//! default suite on every architecture (x86-64: misaligned MOVDQA and CMPXCHG16B raise #GP even
//! in user space; aarch64: misaligned exclusives), so there only a selection without the
//! faulting probes completes. [`GUARD`] says which case applies (for
//! `begin.platform.fault_guard`).

use core::cell::Cell;

use crate::fault::RawFault;

std::thread_local! {
    /// Armed by `guarded` on the calling thread. Const-initialised and without a destructor, so
    /// reading it from the signal handler is async-signal-safe (a plain TLS access).
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static FAULT: Cell<Option<RawFault>> = const { Cell::new(None) };
}

/// Whether faults are caught on this OS (the handler is installed and the guard table exists).
pub const CATCHES: bool = cfg!(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
));

/// How faults are handled on this OS, in words (for `begin.platform.fault_guard`).
pub const GUARD: &str = if CATCHES {
    "SIGSEGV/SIGBUS handler"
} else if cfg!(target_os = "macos") {
    "none on macOS (the guard table is ELF-only): probes whose rule says they may fault are \
     skipped with that reason"
} else if cfg!(windows) {
    "none on Windows (no signals, no guard table): probes whose rule says they may fault are \
     skipped with that reason"
} else {
    "none on this OS: probes whose rule says they may fault are skipped with that reason"
};

/// Run `op` with this thread's guard armed; the first guarded fault it took, if any.
pub fn guarded(op: &mut dyn FnMut()) -> Option<RawFault> {
    install();
    FAULT.with(|f| f.set(None));
    ARMED.with(|a| a.set(true));
    // Keep the compiler from moving accesses of `op` across the arming (the handler runs on this
    // thread, so a compiler fence is what is needed).
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
    op();
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
    ARMED.with(|a| a.set(false));
    FAULT.with(|f| f.take())
}

#[cfg(all(
    any(target_os = "linux", target_os = "macos"),
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
fn install() {
    if !CATCHES {
        // No guard table to resume from (macOS): leave SIGSEGV/SIGBUS at their defaults.
        return;
    }
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for sig in [libc::SIGSEGV, libc::SIGBUS] {
            // SAFETY: `sa` is fully initialised (zeroed, then the handler, flags and an empty
            // mask set) before sigaction reads it; the handler has the SA_SIGINFO signature.
            unsafe {
                let mut sa: libc::sigaction = core::mem::zeroed();
                sa.sa_sigaction = handler as *const () as usize;
                sa.sa_flags = libc::SA_SIGINFO;
                libc::sigemptyset(&mut sa.sa_mask);
                libc::sigaction(sig, &sa, core::ptr::null_mut());
            }
        }
    });
}

#[cfg(not(all(
    any(target_os = "linux", target_os = "macos"),
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
fn install() {}

#[cfg(all(
    any(target_os = "linux", target_os = "macos"),
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
extern "C" fn handler(signo: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let uc = ctx.cast::<libc::ucontext_t>();
    // SAFETY: the kernel passes a valid ucontext for SA_SIGINFO handlers; we read the saved PC.
    let pc = unsafe { context_pc(uc) };
    let armed = ARMED.with(|a| a.get());
    let resume = if armed {
        crate::guard::resume_address(pc as usize)
    } else {
        None
    };
    let Some(resume) = resume else {
        // Not ours: let the default action happen when the instruction re-executes.
        // SAFETY: resetting a signal's disposition to SIG_DFL is async-signal-safe.
        unsafe {
            libc::signal(signo, libc::SIG_DFL);
        }
        return;
    };
    // SAFETY: `info` is valid for SA_SIGINFO handlers; si_addr is defined for SIGSEGV/SIGBUS.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as u64) };
    FAULT.with(|f| {
        if f.get().is_none() {
            f.set(Some(RawFault::Signal {
                signo,
                code,
                addr,
                pc,
            }))
        }
    });
    // SAFETY: as above; writing the saved PC makes sigreturn resume at `resume`, the label
    // right after the guarded instruction in the same asm block.
    unsafe { set_context_pc(uc, resume as u64) };
}

/// # Safety
/// `uc` must be the ucontext passed to an SA_SIGINFO handler.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
unsafe fn context_pc(uc: *mut libc::ucontext_t) -> u64 {
    // SAFETY: per the contract, `uc` is valid.
    unsafe { (*uc).uc_mcontext.gregs[libc::REG_RIP as usize] as u64 }
}

/// # Safety
/// `uc` must be the ucontext passed to an SA_SIGINFO handler.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
unsafe fn set_context_pc(uc: *mut libc::ucontext_t, pc: u64) {
    // SAFETY: per the contract, `uc` is valid and writable.
    unsafe { (*uc).uc_mcontext.gregs[libc::REG_RIP as usize] = pc as i64 }
}

/// # Safety
/// `uc` must be the ucontext passed to an SA_SIGINFO handler.
#[cfg(all(target_os = "linux", target_arch = "aarch64"))]
unsafe fn context_pc(uc: *mut libc::ucontext_t) -> u64 {
    // SAFETY: per the contract, `uc` is valid.
    unsafe { (*uc).uc_mcontext.pc }
}

/// # Safety
/// `uc` must be the ucontext passed to an SA_SIGINFO handler.
#[cfg(all(target_os = "linux", target_arch = "aarch64"))]
unsafe fn set_context_pc(uc: *mut libc::ucontext_t, pc: u64) {
    // SAFETY: per the contract, `uc` is valid and writable.
    unsafe { (*uc).uc_mcontext.pc = pc }
}

/// # Safety
/// `uc` must be the ucontext passed to an SA_SIGINFO handler.
#[cfg(all(target_os = "macos", target_arch = "x86_64"))]
unsafe fn context_pc(uc: *mut libc::ucontext_t) -> u64 {
    // SAFETY: per the contract, `uc` is valid and its `uc_mcontext` points at the saved
    // machine state (Darwin `_STRUCT_MCONTEXT64`, thread state `__ss`).
    unsafe { (*(*uc).uc_mcontext).__ss.__rip }
}

/// # Safety
/// `uc` must be the ucontext passed to an SA_SIGINFO handler.
#[cfg(all(target_os = "macos", target_arch = "x86_64"))]
unsafe fn set_context_pc(uc: *mut libc::ucontext_t, pc: u64) {
    // SAFETY: per the contract, `uc` and the machine state it points at are valid and writable.
    unsafe { (*(*uc).uc_mcontext).__ss.__rip = pc }
}

/// # Safety
/// `uc` must be the ucontext passed to an SA_SIGINFO handler.
#[cfg(all(target_os = "macos", target_arch = "aarch64"))]
unsafe fn context_pc(uc: *mut libc::ucontext_t) -> u64 {
    // SAFETY: per the contract, `uc` is valid and its `uc_mcontext` points at the saved
    // machine state (Darwin `_STRUCT_MCONTEXT64`, thread state `__ss`).
    unsafe { (*(*uc).uc_mcontext).__ss.__pc }
}

/// # Safety
/// `uc` must be the ucontext passed to an SA_SIGINFO handler.
#[cfg(all(target_os = "macos", target_arch = "aarch64"))]
unsafe fn set_context_pc(uc: *mut libc::ucontext_t, pc: u64) {
    // SAFETY: per the contract, `uc` and the machine state it points at are valid and writable.
    unsafe { (*(*uc).uc_mcontext).__ss.__pc = pc }
}
