//! x86-64 timing loops of the `cost` family: `mfence`, `lfence`, `sfence` (each after a store to
//! the arena, measured against the store alone), plain `mov` load/store for scale, and the LOCKed
//! operations `lock add`, `xchg`, `lock cmpxchg`. Timed with the platform's cycle counter (RDTSC).
//!
//! Each loop runs its body [`UNROLL`] times per iteration for `n` iterations; every instruction
//! that touches the arena is guarded, resuming after that copy of the body.

use crate::guard::guard_entry;
use crate::rules::AccessKind;
use crate::suite::cost::{CostOp, UNROLL};

const _: () = assert!(UNROLL == 8);

/// `$ins` with its first instruction guarded; resume after it.
macro_rules! guarded {
    ($ins:literal) => {
        concat!(
            "21: ",
            $ins,
            "\n",
            "22:\n",
            guard_entry!(fault = "21", resume = "22"),
            "\n"
        )
    };
}

macro_rules! x8 {
    ($s:expr) => {
        concat!($s, $s, $s, $s, $s, $s, $s, $s)
    };
}

/// A timing loop: `n` iterations of [`UNROLL`] copies of `$body`. Operands: `a` (arena address),
/// `v` (scratch, starts at 0), `o` (scratch); RAX is clobbered (LOCK CMPXCHG's comparand).
macro_rules! cost_loop {
    ($(#[$m:meta])* $name:ident, $body:expr) => {
        $(#[$m])*
        unsafe fn $name(a: *mut u8, n: u64) -> u64 {
            // SAFETY: the caller passes an 8-byte aligned address in a probe arena with 8 bytes of
            // room and arms the fault guard; every arena access in the body is guarded; `n` >= 1 so
            // the count-down terminates.
            unsafe {
                core::arch::asm!(
                    "/* {a} {v} {o} */",
                    "xor {v:e}, {v:e}",
                    "20:",
                    x8!($body),
                    "dec {n}",
                    "jnz 20b",
                    a = in(reg) a,
                    n = inout(reg) n.max(1) => _,
                    v = out(reg) _,
                    o = out(reg) _,
                    out("rax") _,
                    options(nostack)
                );
            }
            0
        }
    };
}

cost_loop!(
    /// The loop alone (subtracted from every memory op).
    empty_loop,
    ""
);
cost_loop!(
    /// A store alone (subtracted from every fence, which follows a store).
    store_loop,
    guarded!("mov qword ptr [{a}], {v}")
);
cost_loop!(
    mfence,
    concat!(guarded!("mov qword ptr [{a}], {v}"), "mfence\n")
);
cost_loop!(
    lfence,
    concat!(guarded!("mov qword ptr [{a}], {v}"), "lfence\n")
);
cost_loop!(
    sfence,
    concat!(guarded!("mov qword ptr [{a}], {v}"), "sfence\n")
);
cost_loop!(mov_load, guarded!("mov {o}, qword ptr [{a}]"));
cost_loop!(mov_store, guarded!("mov qword ptr [{a}], {v}"));
cost_loop!(lock_add, guarded!("lock add qword ptr [{a}], 0"));
cost_loop!(
    /// XCHG of 0 with memory holding 0 (the location keeps its value; `v` is reset each time).
    xchg,
    concat!("xor {o:e}, {o:e}\n", guarded!("xchg qword ptr [{a}], {o}"))
);
cost_loop!(
    /// LOCK CMPXCHG that succeeds: comparand 0 = memory, replacement 0.
    lock_cmpxchg,
    concat!("xor eax, eax\n", guarded!("lock cmpxchg qword ptr [{a}], {v}"))
);

const fn op(
    name: &'static str,
    text: &'static str,
    barrier: bool,
    access: Option<AccessKind>,
    run: unsafe fn(*mut u8, u64) -> u64,
) -> CostOp {
    CostOp {
        name,
        op: text,
        barrier,
        access,
        needs: None,
        run,
    }
}

pub static EMPTY_LOOP: unsafe fn(*mut u8, u64) -> u64 = empty_loop;
pub static STORE_LOOP: unsafe fn(*mut u8, u64) -> u64 = store_loop;

/// The `cost` family's operations on x86-64.
pub static OPS: &[CostOp] = &[
    op("mfence", "mfence", true, Some(AccessKind::Store), mfence),
    op("lfence", "lfence", true, Some(AccessKind::Store), lfence),
    op("sfence", "sfence", true, Some(AccessKind::Store), sfence),
    op(
        "mov-load",
        "mov (load)",
        false,
        Some(AccessKind::Load),
        mov_load,
    ),
    op(
        "mov-store",
        "mov (store)",
        false,
        Some(AccessKind::Store),
        mov_store,
    ),
    op(
        "lock-add",
        "lock add",
        false,
        Some(AccessKind::Locked),
        lock_add,
    ),
    op("xchg", "xchg", false, Some(AccessKind::Locked), xchg),
    op(
        "lock-cmpxchg",
        "lock cmpxchg",
        false,
        Some(AccessKind::Locked),
        lock_cmpxchg,
    ),
];
