//! Ring 3 for guarded probe ops under `align-check=on`.
//!
//! The processor checks data alignment only at CPL 3 with CR0.AM = 1 and RFLAGS.AC = 1 (Intel SDM
//! Vol. 3A 6.15, "Interrupt 17 — Alignment Check Exception (#AC)"). With `align-check=on`:
//!
//! - every core sets CR0.AM (`init_core`);
//! - the RAM identity map (0-3 GiB: image, heap, stacks) and the arena aliases are made
//!   user-accessible (U/S = 1 at every paging level, see `paging::make_user_accessible`). This is
//!   a deliberate test-image trade-off: the probe op, a `fn`/closure in kernel text, runs at ring
//!   3 on the calling core's own stack and touches the arena and its captures there, with no
//!   separate user address space. The 3-4 GiB MMIO hole (APIC, IOAPIC, PCI) stays supervisor-only;
//!   SMEP/SMAP are not enabled, so ring 0 is unaffected;
//! - [`run`] enters ring 3 with `iretq` (CS/SS = the ring-3 selectors from `cpu`, RFLAGS = AC |
//!   bit 1, IF = 0), calls the op, and comes back to ring 0 through `int RETURN_VECTOR`, a DPL 3
//!   interrupt gate whose stub restores the ring-0 context saved on entry. Exceptions taken at
//!   ring 3 arrive on the core's TSS.RSP0 stack (`cpu::init_core`), separate from the stack the
//!   op runs on; the fault guard handles them as at ring 0 and resumes at ring 3.
//!
//! The op must not do anything privileged: no console, no MSR/port access, no `cli`. A panic or
//! a privileged instruction at ring 3 raises an unguarded #GP, which ends the run with a dump.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use x86_64::registers::control::{Cr0, Cr0Flags};

use super::cpu::{KERNEL_DS, USER_CS, USER_DS};
use super::MAX_CPUS;

/// The DPL 3 interrupt gate ring 3 uses to come back to ring 0.
pub const RETURN_VECTOR: u8 = 0x80;

/// RFLAGS at ring 3: AC (bit 18) and the reserved bit 1; IF = 0, IOPL = 0.
const USER_RFLAGS: u64 = (1 << 18) | (1 << 1);

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Per core: the ring-0 RSP saved by `atomprobe_ring3_call`, read by `atomprobe_ring3_return`.
static ATOMPROBE_RING3_SAVED_RSP: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

core::arch::global_asm!(
    ".pushsection .text.atomprobe_ring3, \"ax\"",
    // extern "sysv64" fn(body: rdi, ctx: rsi, save: rdx): save the callee-saved registers and
    // RFLAGS, store RSP in *save, and iretq to ring 3 at atomprobe_ring3_entry, with the ring-3
    // stack 256 bytes below the saved state (16-byte aligned).
    ".globl atomprobe_ring3_call",
    "atomprobe_ring3_call:",
    "    push rbx",
    "    push rbp",
    "    push r12",
    "    push r13",
    "    push r14",
    "    push r15",
    "    pushfq",
    "    mov [rdx], rsp",
    "    lea rax, [rsp - 256]",
    "    and rax, -16",
    "    push {user_ss}",
    "    push rax",
    "    push {user_rflags}",
    "    push {user_cs}",
    "    lea rax, [rip + atomprobe_ring3_entry]",
    "    push rax",
    "    iretq",
    // CPL 3: body(ctx), then back to ring 0.
    "atomprobe_ring3_entry:",
    "    mov rax, rdi",
    "    mov rdi, rsi",
    "    call rax",
    "    int {vector}",
    "    ud2",
    // CPL 0 on TSS.RSP0 (DPL 3 interrupt gate): drop the frame, reload the kernel data
    // segments (the iretq to ring 3 nulled them), take the saved RSP of this core (its index is
    // IA32_GS_BASE, see `cpu::init_core`) and return to the caller of atomprobe_ring3_call.
    ".globl atomprobe_ring3_return",
    "atomprobe_ring3_return:",
    "    mov ecx, 0xc0000101",
    "    rdmsr",
    "    lea rcx, [rip + {saved}]",
    "    mov rsp, [rcx + rax * 8]",
    "    mov ax, {kernel_ds}",
    "    mov ss, ax",
    "    mov ds, ax",
    "    mov es, ax",
    "    popfq",
    "    pop r15",
    "    pop r14",
    "    pop r13",
    "    pop r12",
    "    pop rbp",
    "    pop rbx",
    "    ret",
    ".popsection",
    user_ss = const USER_DS.0 as u64,
    user_cs = const USER_CS.0 as u64,
    user_rflags = const USER_RFLAGS,
    kernel_ds = const KERNEL_DS.0 as u64,
    vector = const RETURN_VECTOR,
    saved = sym ATOMPROBE_RING3_SAVED_RSP,
);

extern "sysv64" {
    fn atomprobe_ring3_call(body: extern "C" fn(*mut u8), ctx: *mut u8, save: *const AtomicU64);
    static atomprobe_ring3_return: u8;
}

/// Address of the `RETURN_VECTOR` stub (for the IDT).
pub fn return_stub() -> u64 {
    (&raw const atomprobe_ring3_return) as u64
}

/// Turn ring-3 guarded ops on (boot core, from `apply_config`, before the APs start): pages
/// user-accessible, CR0.AM on this core (APs set it in `init_core`).
pub fn enable() {
    super::paging::make_user_accessible();
    ENABLED.store(true, Ordering::SeqCst);
    set_am();
}

pub fn enabled() -> bool {
    ENABLED.load(Ordering::SeqCst)
}

/// Per core, from `cpu::init_core`: CR0.AM when ring-3 ops are on.
pub fn init_core() {
    if enabled() {
        set_am();
    }
}

fn set_am() {
    // SAFETY: CR0.AM only enables alignment checking at CPL 3 when RFLAGS.AC = 1; ring 0 is not
    // affected.
    unsafe { Cr0::update(|f| f.insert(Cr0Flags::ALIGNMENT_MASK)) };
}

/// CR0.AM on the calling core.
pub fn am_set() -> bool {
    Cr0::read().contains(Cr0Flags::ALIGNMENT_MASK)
}

/// Runs at CPL 3: calls the op behind `ctx` (a `*mut &mut dyn FnMut()`).
extern "C" fn body(ctx: *mut u8) {
    // SAFETY: `run` passes a pointer to its `&mut dyn FnMut()`, live (on the caller's stack,
    // user-accessible) until `atomprobe_ring3_call` returns.
    let op = unsafe { &mut *ctx.cast::<&mut dyn FnMut()>() };
    op();
}

/// Measure what ring 3 looks like from inside: CS and RFLAGS read at ring 3 on this core, and
/// CR0.AM. So that a missing #AC can be told apart from ring 3 not being entered.
pub fn selfcheck() -> alloc::string::String {
    let (mut cs, mut rflags) = (0u64, 0u64);
    run(&mut || {
        // SAFETY: reads CS and RFLAGS (pushfq/pop on the ring-3 stack, 16-byte aligned).
        unsafe {
            core::arch::asm!("mov {c:e}, cs", "pushfq", "pop {f}", c = out(reg) cs, f = out(reg) rflags,
                options(preserves_flags))
        };
    });
    alloc::format!(
        "measured at ring 3: CS={cs:#x} (CPL {}), RFLAGS={rflags:#x} (AC={}); CR0.AM={}",
        cs & 3,
        (rflags >> 18) & 1,
        u8::from(am_set())
    )
}

/// Run `op` at CPL 3 with RFLAGS.AC = 1 on the calling core; returns at ring 0.
pub fn run(mut op: &mut dyn FnMut()) {
    debug_assert!(enabled());
    let core = super::core_index();
    let ctx = (&raw mut op).cast::<u8>();
    // SAFETY: ring-3 support is enabled (pages user-accessible, ring-3 selectors in this core's
    // GDT, TSS.RSP0 set, `RETURN_VECTOR` gate at DPL 3); `atomprobe_ring3_call` preserves the
    // SysV callee-saved registers and RFLAGS and returns through `atomprobe_ring3_return` on the
    // RSP it saved in this core's slot; `body` only calls `op`.
    unsafe { atomprobe_ring3_call(body, ctx, &ATOMPROBE_RING3_SAVED_RSP[core]) };
}
