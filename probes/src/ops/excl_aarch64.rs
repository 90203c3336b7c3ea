//! aarch64 read-modify-write attempts of the `excl` family: LDXR/STXR, LDAXR/STLXR, LDXP/STXP
//! and the FEAT_LSE atomics CAS, LDADD and SWP (assembled with `.arch_extension lse`, executed only
//! when the CPU has them).
//!
//! Each function makes one attempt to add 1 to the counter and returns
//! [`ST_OK`], [`ST_FAULT`] (a guarded instruction faulted; execution resumed past the attempt) or
//! [`ST_RETRY`] (the Store-Exclusive failed, the CAS lost a race, or the lock was busy). No
//! function loops, so a memory type on which exclusives never succeed cannot hang a core: the
//! suite bounds the retries in time.

use crate::guard::guard_entry;
use crate::rules::atomicity::Feature;
use crate::rules::{AccessKind, Placement};
use crate::suite::excl::{ExclOp, ST_FAULT, ST_OK, ST_RETRY};

const _: () = assert!(ST_OK == 0 && ST_FAULT == 1 && ST_RETRY == 2);

/// LDXR/STXR (or LDAXR/STLXR) of one register: load, add 1, store-exclusive.
macro_rules! llsc1 {
    ($(#[$m:meta])* $name:ident, $ld:literal, $add:literal, $st:literal) => {
        $(#[$m])*
        unsafe fn $name(a: *mut u8, _aux: *mut u8) -> u32 {
            let st: u64;
            // SAFETY: arena address with room for the access, guard armed; a fault in either
            // exclusive resumes at 23 (status 1). STXR writes 0 (success) or 1 (failure), mapped
            // to ST_OK / ST_RETRY.
            unsafe {
                core::arch::asm!(
                    concat!("21: ", $ld),
                    $add,
                    concat!("22: ", $st),
                    "lsl {s:w}, {s:w}, #1",
                    "b 24f",
                    "23: mov {s:w}, #1",
                    "24:",
                    guard_entry!(fault = "21", resume = "23"),
                    guard_entry!(fault = "22", resume = "23"),
                    a = in(reg) a,
                    v = out(reg) _,
                    s = out(reg) st,
                    options(nostack, preserves_flags)
                );
            }
            st as u32
        }
    };
}

llsc1!(
    ldxr_stxr_32,
    "ldxr {v:w}, [{a}]",
    "add {v:w}, {v:w}, #1",
    "stxr {s:w}, {v:w}, [{a}]"
);
llsc1!(
    ldxr_stxr_64,
    "ldxr {v}, [{a}]",
    "add {v}, {v}, #1",
    "stxr {s:w}, {v}, [{a}]"
);
llsc1!(
    ldaxr_stlxr_64,
    "ldaxr {v}, [{a}]",
    "add {v}, {v}, #1",
    "stlxr {s:w}, {v}, [{a}]"
);

/// LDXP/STXP: add 1 to both doublewords of a 16-byte location.
unsafe fn ldxp_stxp_128(a: *mut u8, _aux: *mut u8) -> u32 {
    let st: u64;
    // SAFETY: arena address with 16 bytes of room, guard armed; a fault in LDXP or STXP
    // resumes at 23 (status 1).
    unsafe {
        core::arch::asm!(
            "21: ldxp {lo}, {hi}, [{a}]",
            "add {lo}, {lo}, #1",
            "add {hi}, {hi}, #1",
            "22: stxp {s:w}, {lo}, {hi}, [{a}]",
            "lsl {s:w}, {s:w}, #1",
            "b 24f",
            "23: mov {s:w}, #1",
            "24:",
            guard_entry!(fault = "21", resume = "23"),
            guard_entry!(fault = "22", resume = "23"),
            a = in(reg) a,
            lo = out(reg) _,
            hi = out(reg) _,
            s = out(reg) st,
            options(nostack, preserves_flags)
        );
    }
    st as u32
}

/// CAS: read the counter with a CAS (compare with 0: a 0 counter is rewritten unchanged, any
/// other is only read), then compare-and-swap it with itself + 1; retry when another core won.
/// Both accesses are CAS, so the first access the record reports on (a fault in it included) is
/// a CAS, never a plain load: on misaligned Device memory a plain LDR would fault first and the
/// CAS would never be tested.
unsafe fn cas_64(a: *mut u8, _aux: *mut u8) -> u32 {
    let st: u64;
    // SAFETY: arena address with room for the access, guard armed; a fault in either CAS resumes
    // at 23 (status 1). CAS is FEAT_LSE: the suite calls this only when the CPU has it.
    unsafe {
        core::arch::asm!(
            ".arch_extension lse",
            "mov {old}, xzr",
            "21: cas {old}, {old}, [{a}]",
            "add {new}, {old}, #1",
            "mov {cmp}, {old}",
            "22: cas {cmp}, {new}, [{a}]",
            "cmp {cmp}, {old}",
            "cset {s:w}, ne",
            "lsl {s:w}, {s:w}, #1",
            "b 24f",
            "23: mov {s:w}, #1",
            "24:",
            guard_entry!(fault = "21", resume = "23"),
            guard_entry!(fault = "22", resume = "23"),
            a = in(reg) a,
            old = out(reg) _,
            new = out(reg) _,
            cmp = out(reg) _,
            s = out(reg) st,
            options(nostack)
        );
    }
    st as u32
}

/// LDADD of 1: always succeeds unless it faults.
unsafe fn ldadd_64(a: *mut u8, _aux: *mut u8) -> u32 {
    let mut st: u64 = 0;
    // SAFETY: arena address with room for the access, guard armed; a fault resumes at 22
    // (status 1). LDADD is FEAT_LSE: called only when the CPU has it.
    unsafe {
        core::arch::asm!(
            ".arch_extension lse",
            "mov {one}, #1",
            "21: ldadd {one}, {old}, [{a}]",
            set_status_on_fault!(resume = "22", done = "23"),
            guard_entry!(fault = "21", resume = "22"),
            a = in(reg) a,
            one = out(reg) _,
            old = out(reg) _,
            st = inout(reg) st,
            options(nostack, preserves_flags)
        );
    }
    st as u32
}

/// SWP as a lock: SWPA 1 into the lock word; if it was free, add 1 to the counter at `aux` with
/// plain accesses and release with STLR of 0. Lost counter updates mean SWP was not atomic.
unsafe fn swp_lock_64(a: *mut u8, aux: *mut u8) -> u32 {
    let st: u64;
    // SAFETY: `a` is in the arena with room for the lock word, `aux` is an aligned counter in the
    // arena; guard armed: a fault in SWPA or the release resumes at 23 (status 1). SWPA is
    // FEAT_LSE: called only when the CPU has it.
    unsafe {
        core::arch::asm!(
            ".arch_extension lse",
            "mov {one}, #1",
            "21: swpa {one}, {old}, [{a}]",
            "cbnz {old}, 25f",
            "ldr {c}, [{aux}]",
            "add {c}, {c}, #1",
            "str {c}, [{aux}]",
            "22: stlr xzr, [{a}]",
            "mov {s:w}, #0",
            "b 24f",
            "25: mov {s:w}, #2",
            "b 24f",
            "23: mov {s:w}, #1",
            "24:",
            guard_entry!(fault = "21", resume = "23"),
            guard_entry!(fault = "22", resume = "23"),
            a = in(reg) a,
            aux = in(reg) aux,
            one = out(reg) _,
            old = out(reg) _,
            c = out(reg) _,
            s = out(reg) st,
            options(nostack, preserves_flags)
        );
    }
    st as u32
}

const ALL: &[Placement] = &Placement::ALL;

/// The `excl` family's operations on aarch64.
pub static OPS: &[ExclOp] = &[
    ExclOp {
        name: "ldxr-stxr-32",
        op: "ldxr/stxr",
        width: 32,
        kind: AccessKind::Exclusive,
        needs: None,
        exclusive: true,
        lock_counter: false,
        attempt: ldxr_stxr_32,
        placements: ALL,
    },
    ExclOp {
        name: "ldxr-stxr-64",
        op: "ldxr/stxr",
        width: 64,
        kind: AccessKind::Exclusive,
        needs: None,
        exclusive: true,
        lock_counter: false,
        attempt: ldxr_stxr_64,
        placements: ALL,
    },
    ExclOp {
        name: "ldaxr-stlxr-64",
        op: "ldaxr/stlxr",
        width: 64,
        kind: AccessKind::Exclusive,
        needs: None,
        exclusive: true,
        lock_counter: false,
        attempt: ldaxr_stlxr_64,
        placements: ALL,
    },
    ExclOp {
        name: "ldxp-stxp-128",
        op: "ldxp/stxp",
        width: 128,
        kind: AccessKind::Exclusive,
        needs: None,
        exclusive: true,
        lock_counter: false,
        attempt: ldxp_stxp_128,
        placements: ALL,
    },
    ExclOp {
        name: "cas-64",
        op: "cas (read by cas, then cas +1)",
        width: 64,
        kind: AccessKind::Atomic,
        needs: Some(Feature::Lse),
        exclusive: false,
        lock_counter: false,
        attempt: cas_64,
        placements: ALL,
    },
    ExclOp {
        name: "ldadd-64",
        op: "ldadd",
        width: 64,
        kind: AccessKind::Atomic,
        needs: Some(Feature::Lse),
        exclusive: false,
        lock_counter: false,
        attempt: ldadd_64,
        placements: ALL,
    },
    ExclOp {
        name: "swp-64",
        op: "swpa (lock) + stlr",
        width: 64,
        kind: AccessKind::Atomic,
        needs: Some(Feature::Lse),
        exclusive: false,
        lock_counter: true,
        attempt: swp_lock_64,
        placements: ALL,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    /// CAS increments from 0 (where the reading CAS rewrites 0) and from any other value. Needs
    /// FEAT_LSE: run under `qemu-aarch64` (-cpu max) or on an LSE core.
    #[test]
    fn cas_64_reads_with_cas_and_adds_one() {
        if !std::arch::is_aarch64_feature_detected!("lse") {
            return;
        }
        for start in [0u64, 41, u64::MAX - 1] {
            let mut v = [start, 0];
            let p = v.as_mut_ptr() as *mut u8;
            // SAFETY: `p` points at an aligned u64 on the stack; no fault is expected, so the
            // guard need not be armed.
            let st = unsafe { cas_64(p, p) };
            assert_eq!(st, ST_OK);
            assert_eq!(v[0], start.wrapping_add(1));
        }
    }
}
