//! aarch64 timing loops of the `cost` family: `dmb ish`, `dmb sy`, `dsb sy`, `isb` (each after a
//! store to the arena, measured against the store alone), `ldr`/`str` for scale, `ldar`, `stlr`,
//! an LDXR/STXR pair, and the FEAT_LSE atomics CAS, LDADD and SWP.
//!
//! Each loop runs its body [`UNROLL`] times per iteration for `n` iterations. Every instruction
//! that touches the arena is guarded, so a fault ends nothing: the suite sees it from
//! `Platform::guarded`. Execution resumes right after the faulting instruction ([`guarded!`]: the
//! rest of that body, e.g. the barrier after a store, still runs), except in the LDXR/STXR body,
//! whose two exclusives both resume after the STXR (the end of the body). A loop returns the
//! number of failed Store-Exclusives.

use crate::guard::guard_entry;
use crate::rules::atomicity::Feature;
use crate::rules::AccessKind;
use crate::suite::cost::{CostOp, UNROLL};

const _: () = assert!(UNROLL == 8);

/// `$ins` (one instruction) guarded: on a fault, execution resumes at the label right after it,
/// i.e. at whatever follows in the body (not after the whole body).
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

/// A timing loop: `n` iterations of [`UNROLL`] copies of `$body`. Operands every body may use:
/// `a` (arena address), `v` (a scratch register, starts at 0), `o` (scratch), `s` (Store-Exclusive
/// status), `f` (sum of the statuses: failed Store-Exclusives).
macro_rules! cost_loop {
    ($(#[$m:meta])* $name:ident, $body:expr) => {
        $(#[$m])*
        unsafe fn $name(a: *mut u8, n: u64) -> u64 {
            let mut f: u64 = 0;
            // SAFETY: the caller passes an 8-byte aligned address in a probe arena with 8 bytes of
            // room and arms the fault guard; every arena access in the body is guarded (resuming
            // after that copy of the body); `n` >= 1 so the count-down terminates.
            unsafe {
                core::arch::asm!(
                    ".arch_extension lse",
                    "/* {a} {v} {o} {s} {f} */",
                    "mov {v}, #0",
                    "mov {s}, #0",
                    "20:",
                    x8!($body),
                    "subs {n}, {n}, #1",
                    "b.ne 20b",
                    a = in(reg) a,
                    n = inout(reg) n.max(1) => _,
                    v = out(reg) _,
                    o = out(reg) _,
                    s = out(reg) _,
                    f = inout(reg) f,
                    options(nostack)
                );
            }
            f
        }
    };
}

cost_loop!(
    /// The loop alone (subtracted from every memory op).
    empty_loop,
    ""
);
cost_loop!(
    /// A store alone (subtracted from every barrier, which follows a store).
    store_loop,
    guarded!("str {v}, [{a}]")
);
cost_loop!(dmb_ish, concat!(guarded!("str {v}, [{a}]"), "dmb ish\n"));
cost_loop!(dmb_sy, concat!(guarded!("str {v}, [{a}]"), "dmb sy\n"));
cost_loop!(dsb_sy, concat!(guarded!("str {v}, [{a}]"), "dsb sy\n"));
cost_loop!(isb, concat!(guarded!("str {v}, [{a}]"), "isb\n"));
cost_loop!(ldr, guarded!("ldr {o}, [{a}]"));
cost_loop!(str_, guarded!("str {v}, [{a}]"));
cost_loop!(ldar, guarded!("ldar {o}, [{a}]"));
cost_loop!(stlr, guarded!("stlr {v}, [{a}]"));
cost_loop!(
    /// LDXR, add, STXR: one pair; failures are summed into `f`. Both exclusives are guarded.
    ldxr_stxr,
    concat!(
        "21: ldxr {o}, [{a}]\n",
        "add {o}, {o}, #1\n",
        "23: stxr {s:w}, {o}, [{a}]\n",
        "add {f}, {f}, {s}\n",
        "22:\n",
        guard_entry!(fault = "21", resume = "22"),
        "\n",
        guard_entry!(fault = "23", resume = "22"),
        "\n"
    )
);
cost_loop!(
    /// CAS that succeeds (compare value = memory value = 0, new value 0).
    cas,
    concat!("mov {o}, #0\n", guarded!("cas {o}, {v}, [{a}]"))
);
cost_loop!(
    /// LDADD of 0 (`v` stays 0), so the location keeps its value.
    ldadd,
    guarded!("ldadd {v}, {o}, [{a}]")
);
cost_loop!(swp, guarded!("swp {v}, {o}, [{a}]"));

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

const fn lse(name: &'static str, run: unsafe fn(*mut u8, u64) -> u64) -> CostOp {
    CostOp {
        name,
        op: name,
        barrier: false,
        access: Some(AccessKind::Atomic),
        needs: Some(Feature::Lse),
        run,
    }
}

pub static EMPTY_LOOP: unsafe fn(*mut u8, u64) -> u64 = empty_loop;
pub static STORE_LOOP: unsafe fn(*mut u8, u64) -> u64 = store_loop;

/// The `cost` family's operations on aarch64.
pub static OPS: &[CostOp] = &[
    op("dmb-ish", "dmb ish", true, Some(AccessKind::Store), dmb_ish),
    op("dmb-sy", "dmb sy", true, Some(AccessKind::Store), dmb_sy),
    op("dsb-sy", "dsb sy", true, Some(AccessKind::Store), dsb_sy),
    op("isb", "isb", true, Some(AccessKind::Store), isb),
    op("ldr", "ldr", false, Some(AccessKind::Load), ldr),
    op("str", "str", false, Some(AccessKind::Store), str_),
    op(
        "ldar",
        "ldar",
        false,
        Some(AccessKind::AcquireRelease),
        ldar,
    ),
    op(
        "stlr",
        "stlr",
        false,
        Some(AccessKind::AcquireRelease),
        stlr,
    ),
    op(
        "ldxr-stxr",
        "ldxr/stxr pair",
        false,
        Some(AccessKind::Exclusive),
        ldxr_stxr,
    ),
    lse("cas", cas),
    lse("ldadd", ldadd),
    lse("swp", swp),
];
