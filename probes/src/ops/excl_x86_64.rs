//! x86-64 read-modify-write attempts of the `excl` family: LOCK CMPXCHG, LOCK XADD, XCHG (as a
//! lock) and LOCK CMPXCHG16B. At a cross-line or cross-page placement the LOCKed access is a split
//! lock (SDM Vol. 3A 9.1.2.2), which the suite times against the aligned one.
//!
//! Each function makes one attempt to add 1 to the counter and returns [`ST_OK`], [`ST_FAULT`]
//! or [`ST_RETRY`]; none loops.

use crate::guard::guard_entry;
use crate::rules::atomicity::Feature;
use crate::rules::{AccessKind, Placement};
use crate::suite::excl::{ExclOp, ST_FAULT, ST_OK, ST_RETRY};

const _: () = assert!(ST_OK == 0 && ST_FAULT == 1 && ST_RETRY == 2);

/// LOCK CMPXCHG: read the counter, replace it with itself + 1 if no one changed it.
unsafe fn lock_cmpxchg_64(a: *mut u8, _aux: *mut u8) -> u32 {
    let mut st: u64 = 0;
    // SAFETY: arena address with room for the access, guard armed; a fault in the load or the
    // LOCK CMPXCHG resumes at 23 (status 1).
    unsafe {
        core::arch::asm!(
            "21: mov rax, qword ptr [{a}]",
            "lea {new}, [rax + 1]",
            "22: lock cmpxchg qword ptr [{a}], {new}",
            "jz 24f",
            "mov {st:e}, 2",
            set_status_on_fault!(resume = "23", done = "24"),
            guard_entry!(fault = "21", resume = "23"),
            guard_entry!(fault = "22", resume = "23"),
            a = in(reg) a,
            new = out(reg) _,
            st = inout(reg) st,
            out("rax") _,
            options(nostack)
        );
    }
    st as u32
}

/// LOCK XADD of 1: always succeeds unless it faults.
unsafe fn lock_xadd_64(a: *mut u8, _aux: *mut u8) -> u32 {
    let mut st: u64 = 0;
    // SAFETY: arena address with room for the access, guard armed; a fault resumes at 22.
    unsafe {
        core::arch::asm!(
            "mov {one:e}, 1",
            "21: lock xadd qword ptr [{a}], {one}",
            set_status_on_fault!(resume = "22", done = "23"),
            guard_entry!(fault = "21", resume = "22"),
            a = in(reg) a,
            one = out(reg) _,
            st = inout(reg) st,
            options(nostack)
        );
    }
    st as u32
}

/// XCHG as a lock: swap 1 into the lock word; if it was free, add 1 to the counter at `aux` with
/// plain accesses and release with a plain store of 0 (a release under x86-TSO).
unsafe fn xchg_lock_64(a: *mut u8, aux: *mut u8) -> u32 {
    let mut st: u64 = 0;
    // SAFETY: `a` is in the arena with room for the lock word, `aux` an aligned counter in the
    // arena; guard armed: a fault in XCHG or the release resumes at 23 (status 1).
    unsafe {
        core::arch::asm!(
            "mov {old:e}, 1",
            "21: xchg qword ptr [{a}], {old}",
            "test {old}, {old}",
            "jnz 25f",
            "inc qword ptr [{aux}]",
            "22: mov qword ptr [{a}], 0",
            "jmp 24f",
            "25: mov {st:e}, 2",
            set_status_on_fault!(resume = "23", done = "24"),
            guard_entry!(fault = "21", resume = "23"),
            guard_entry!(fault = "22", resume = "23"),
            a = in(reg) a,
            aux = in(reg) aux,
            old = out(reg) _,
            st = inout(reg) st,
            options(nostack)
        );
    }
    st as u32
}

/// LOCK CMPXCHG16B: add 1 to both quadwords of a 16-byte location if no one changed it.
unsafe fn lock_cmpxchg16b_128(a: *mut u8, _aux: *mut u8) -> u32 {
    let mut st: u64 = 0;
    // SAFETY: arena address with 16 bytes of room, guard armed: a misaligned operand raises #GP
    // and resumes at 23 (status 1), as does a fault in the two loads. RBX is reserved by LLVM: it
    // is saved in `b` and restored on every path.
    unsafe {
        core::arch::asm!(
            "mov {b}, rbx",
            "21: mov rax, qword ptr [{a}]",
            "22: mov rdx, qword ptr [{a} + 8]",
            "lea rbx, [rax + 1]",
            "lea rcx, [rdx + 1]",
            "25: lock cmpxchg16b xmmword ptr [{a}]",
            "jz 24f",
            "mov {st:e}, 2",
            set_status_on_fault!(resume = "23", done = "24"),
            "mov rbx, {b}",
            guard_entry!(fault = "21", resume = "23"),
            guard_entry!(fault = "22", resume = "23"),
            guard_entry!(fault = "25", resume = "23"),
            a = in(reg) a,
            b = out(reg) _,
            st = inout(reg) st,
            out("rax") _,
            out("rdx") _,
            out("rcx") _,
            options(nostack)
        );
    }
    st as u32
}

const ALL: &[Placement] = &Placement::ALL;

/// The `excl` family's operations on x86-64.
pub static OPS: &[ExclOp] = &[
    ExclOp {
        name: "lock-cmpxchg-64",
        op: "lock cmpxchg",
        width: 64,
        kind: AccessKind::Locked,
        needs: None,
        exclusive: false,
        lock_counter: false,
        attempt: lock_cmpxchg_64,
        placements: ALL,
    },
    ExclOp {
        name: "lock-xadd-64",
        op: "lock xadd",
        width: 64,
        kind: AccessKind::Locked,
        needs: None,
        exclusive: false,
        lock_counter: false,
        attempt: lock_xadd_64,
        placements: ALL,
    },
    ExclOp {
        name: "xchg-64",
        op: "xchg (lock) + mov",
        width: 64,
        kind: AccessKind::Locked,
        needs: None,
        exclusive: false,
        lock_counter: true,
        attempt: xchg_lock_64,
        placements: ALL,
    },
    ExclOp {
        name: "lock-cmpxchg16b-128",
        op: "lock cmpxchg16b",
        width: 128,
        kind: AccessKind::Cmpxchg16b,
        needs: Some(Feature::Cx16),
        exclusive: false,
        lock_counter: false,
        attempt: lock_cmpxchg16b_128,
        placements: ALL,
    },
];
