//! aarch64 accesses of the `tear` family, and the CPU features the probes depend on.
//!
//! Every access is one small `asm!` block named after its instruction. Each instruction that may
//! fault is registered in the fault guard's table with a resume address that sets a status
//! register, so a fault inside a racing loop is counted instead of leaving a stale value behind:
//! status 0 = done, 1 = faulted, 2 = gave up (an exclusive pair that never succeeded).

use crate::guard::guard_entry;
use crate::platform::{Privilege, RuleEnv};
use crate::rules::atomicity::{Feature, Features, Form, Vendor};
use crate::rules::{AccessKind, Placement};
use crate::suite::tear::{Shape, Side, TearCase};

/// What the CPU implements: ID registers at EL1 on bare metal, `getauxval(AT_HWCAP)` on Linux.
pub fn features(env: &RuleEnv) -> Features {
    #[cfg(target_os = "none")]
    {
        if matches!(env.privilege, Privilege::El(1..)) {
            return id_register_features();
        }
        Features::unknown(
            Vendor::Arm,
            "ID registers cannot be read at EL0 without OS emulation",
        )
    }
    #[cfg(target_os = "linux")]
    {
        let _ = env;
        let _ = Privilege::User;
        hwcap_features()
    }
    #[cfg(not(any(target_os = "none", target_os = "linux")))]
    {
        let _ = (env, Privilege::User);
        Features::unknown(Vendor::Arm, "no way to read the CPU features on this OS")
    }
}

#[cfg(target_os = "none")]
fn id_register_features() -> Features {
    use crate::rules::atomicity::FeatureSource;
    let (isar0, isar1, mmfr2): (u64, u64, u64);
    // SAFETY: reads three ID registers, which are always readable at EL1 and have no side effects.
    unsafe {
        core::arch::asm!(
            "mrs {a}, id_aa64isar0_el1",
            "mrs {b}, id_aa64isar1_el1",
            "mrs {c}, id_aa64mmfr2_el1",
            a = out(reg) isar0,
            b = out(reg) isar1,
            c = out(reg) mmfr2,
            options(nomem, nostack, preserves_flags)
        );
    }
    Features {
        vendor: Vendor::Arm,
        // ID_AA64ISAR0_EL1.Atomic, bits [23:20]: 0b0010 = FEAT_LSE.
        lse: Some((isar0 >> 20) & 0xf >= 2),
        // ID_AA64ISAR1_EL1.LRCPC, bits [23:20]: 0b0001 = FEAT_LRCPC.
        lrcpc: Some((isar1 >> 20) & 0xf >= 1),
        // ID_AA64MMFR2_EL1.AT, bits [35:32]: 0b0001 = FEAT_LSE2.
        lse2: Some((mmfr2 >> 32) & 0xf >= 1),
        avx: None,
        cx16: None,
        sse: None,
        source: FeatureSource::IdRegisters,
    }
}

#[cfg(target_os = "linux")]
fn hwcap_features() -> Features {
    use crate::rules::atomicity::FeatureSource;
    extern "C" {
        fn getauxval(kind: core::ffi::c_ulong) -> core::ffi::c_ulong;
    }
    const AT_HWCAP: core::ffi::c_ulong = 16;
    const HWCAP_ATOMICS: core::ffi::c_ulong = 1 << 8;
    const HWCAP_LRCPC: core::ffi::c_ulong = 1 << 15;
    const HWCAP_USCAT: core::ffi::c_ulong = 1 << 25;
    // SAFETY: getauxval only reads the process's auxiliary vector.
    let hw = unsafe { getauxval(AT_HWCAP) };
    Features {
        vendor: Vendor::Arm,
        lse: Some(hw & HWCAP_ATOMICS != 0),
        lrcpc: Some(hw & HWCAP_LRCPC != 0),
        lse2: Some(hw & HWCAP_USCAT != 0),
        avx: None,
        cx16: None,
        sse: None,
        source: FeatureSource::Hwcap,
    }
}

/// One guarded load of one or two registers into `lo`/`hi`; the value is `lo | hi << shift`.
macro_rules! load2 {
    ($(#[$m:meta])* $name:ident, $ins:literal, $shift:expr) => {
        $(#[$m])*
        unsafe fn $name(a: *const u8, fallback: u128) -> (u128, u32) {
            let mut lo = fallback as u64;
            let mut hi = (fallback >> $shift) as u64;
            let mut st: u64 = 0;
            // SAFETY: the caller passes an address in a probe arena with room for the access and
            // has the fault guard armed; a fault resumes at 22, which sets the status, and leaves
            // `lo`/`hi` holding the fallback.
            unsafe {
                core::arch::asm!(
                    concat!("21: ", $ins),
                    set_status_on_fault!(resume = "22", done = "23"),
                    guard_entry!(fault = "21", resume = "22"),
                    a = in(reg) a,
                    lo = inout(reg) lo,
                    hi = inout(reg) hi,
                    st = inout(reg) st,
                    options(nostack, preserves_flags)
                );
            }
            (u128::from(lo) | (u128::from(hi) << $shift), st as u32)
        }
    };
}

/// One guarded load of a single register (the `hi` operand is unused but kept for the macro).
macro_rules! load1 {
    ($(#[$m:meta])* $name:ident, $ins:literal) => {
        $(#[$m])*
        unsafe fn $name(a: *const u8, fallback: u128) -> (u128, u32) {
            let mut v = fallback as u64;
            let mut st: u64 = 0;
            // SAFETY: as for `load2`: arena address, guard armed, fault resumes at 22.
            unsafe {
                core::arch::asm!(
                    ".arch_extension rcpc",
                    concat!("21: ", $ins),
                    set_status_on_fault!(resume = "22", done = "23"),
                    guard_entry!(fault = "21", resume = "22"),
                    a = in(reg) a,
                    v = inout(reg) v,
                    st = inout(reg) st,
                    options(nostack, preserves_flags)
                );
            }
            (u128::from(v), st as u32)
        }
    };
}

/// One guarded store of one register.
macro_rules! store1 {
    ($(#[$m:meta])* $name:ident, $ins:literal) => {
        $(#[$m])*
        unsafe fn $name(a: *mut u8, val: u128) -> u32 {
            let v = val as u64;
            let mut st: u64 = 0;
            // SAFETY: arena address with room for the access, guard armed; a fault resumes at 22.
            unsafe {
                core::arch::asm!(
                    concat!("21: ", $ins),
                    set_status_on_fault!(resume = "22", done = "23"),
                    guard_entry!(fault = "21", resume = "22"),
                    a = in(reg) a,
                    v = in(reg) v,
                    st = inout(reg) st,
                    options(nostack, preserves_flags)
                );
            }
            st as u32
        }
    };
}

/// One guarded store of a register pair: `lo` = low part, `hi` = `val >> shift`.
macro_rules! store2 {
    ($(#[$m:meta])* $name:ident, $ins:literal, $shift:expr) => {
        $(#[$m])*
        unsafe fn $name(a: *mut u8, val: u128) -> u32 {
            let lo = val as u64;
            let hi = (val >> $shift) as u64;
            let mut st: u64 = 0;
            // SAFETY: arena address with room for the access, guard armed; a fault resumes at 22.
            unsafe {
                core::arch::asm!(
                    concat!("21: ", $ins),
                    set_status_on_fault!(resume = "22", done = "23"),
                    guard_entry!(fault = "21", resume = "22"),
                    a = in(reg) a,
                    lo = in(reg) lo,
                    hi = in(reg) hi,
                    st = inout(reg) st,
                    options(nostack, preserves_flags)
                );
            }
            st as u32
        }
    };
}

load1!(ldrb, "ldrb {v:w}, [{a}]");
load1!(ldrh, "ldrh {v:w}, [{a}]");
load1!(ldr32, "ldr {v:w}, [{a}]");
load1!(ldr64, "ldr {v}, [{a}]");
load1!(ldar32, "ldar {v:w}, [{a}]");
load1!(ldar64, "ldar {v}, [{a}]");
load1!(
    /// LDAPR (FEAT_LRCPC): only called when the CPU has it.
    ldapr64,
    "ldapr {v}, [{a}]"
);
load1!(
    /// LDXR, then CLREX so no monitor is left open.
    ldxr64,
    "ldxr {v}, [{a}]\nclrex"
);
load2!(ldp32x2, "ldp {lo:w}, {hi:w}, [{a}]", 32);
load2!(ldp64x2, "ldp {lo}, {hi}, [{a}]", 64);
load2!(
    /// LDXP alone (then CLREX): single-copy atomic per doubleword only.
    ldxp64x2,
    "ldxp {lo}, {hi}, [{a}]\nclrex",
    64
);

/// LDXP followed by STXP of the same value, retried until the STXP succeeds (at most 1000
/// times): the architected 128-bit atomic read (Arm ARM B2.2.1). Status 2 = never succeeded.
unsafe fn ldxp_stxp_read(a: *const u8, fallback: u128) -> (u128, u32) {
    let mut lo = fallback as u64;
    let mut hi = (fallback >> 64) as u64;
    let mut st: u64 = 0;
    // SAFETY: arena address with 16 bytes of room, guard armed; a fault in LDXP or STXP resumes
    // at 24 (status 1); the retry loop is bounded by `n`. STXP writes back what LDXP read, so the
    // memory value never changes.
    unsafe {
        core::arch::asm!(
            "mov {n:w}, #1000",
            "21: ldxp {lo}, {hi}, [{a}]",
            "22: stxp {s:w}, {lo}, {hi}, [{a}]",
            "cbz {s:w}, 25f",
            "subs {n:w}, {n:w}, #1",
            "b.ne 21b",
            "mov {st}, #2",
            set_status_on_fault!(resume = "24", done = "25"),
            guard_entry!(fault = "21", resume = "24"),
            guard_entry!(fault = "22", resume = "24"),
            a = in(reg) a,
            lo = inout(reg) lo,
            hi = inout(reg) hi,
            st = inout(reg) st,
            n = out(reg) _,
            s = out(reg) _,
            options(nostack)
        );
    }
    (u128::from(lo) | (u128::from(hi) << 64), st as u32)
}

/// An atomic 16-byte store: LDXP then STXP of the new value, retried until the STXP succeeds (at
/// most 1000 times; status 2 = never succeeded). Arm ARM B2.2.1: a successful STXP of two 64-bit
/// registers is a single-copy atomic update of all 16 bytes.
unsafe fn stxp_store(a: *mut u8, val: u128) -> u32 {
    let lo = val as u64;
    let hi = (val >> 64) as u64;
    let mut st: u64 = 0;
    // SAFETY: arena address with 16 bytes of room, guard armed; a fault in LDXP or STXP resumes
    // at 24 (status 1); the retry loop is bounded by `n`.
    unsafe {
        core::arch::asm!(
            "mov {n:w}, #1000",
            "21: ldxp {t1}, {t2}, [{a}]",
            "22: stxp {s:w}, {lo}, {hi}, [{a}]",
            "cbz {s:w}, 25f",
            "subs {n:w}, {n:w}, #1",
            "b.ne 21b",
            "mov {st}, #2",
            set_status_on_fault!(resume = "24", done = "25"),
            guard_entry!(fault = "21", resume = "24"),
            guard_entry!(fault = "22", resume = "24"),
            a = in(reg) a,
            lo = in(reg) lo,
            hi = in(reg) hi,
            st = inout(reg) st,
            n = out(reg) _,
            s = out(reg) _,
            t1 = out(reg) _,
            t2 = out(reg) _,
            options(nostack)
        );
    }
    st as u32
}

store1!(strb, "strb {v:w}, [{a}]");
store1!(strh, "strh {v:w}, [{a}]");
store1!(str32, "str {v:w}, [{a}]");
store1!(str64, "str {v}, [{a}]");
store1!(stlr32, "stlr {v:w}, [{a}]");
store1!(stlr64, "stlr {v}, [{a}]");
store2!(stp32x2, "stp {lo:w}, {hi:w}, [{a}]", 32);
store2!(stp64x2, "stp {lo}, {hi}, [{a}]", 64);

const fn side(op: &'static str, form: Form, kind: AccessKind, width: u32) -> Side {
    Side {
        op,
        form,
        kind,
        width,
        needs: None,
    }
}

const ALL: &[Placement] = &Placement::ALL;
const ALIGNED: &[Placement] = &[Placement::Aligned];

const LDR64: Side = side("ldr", Form::Single, AccessKind::Load, 64);
const STR64: Side = side("str", Form::Single, AccessKind::Store, 64);
const STR32: Side = side("str", Form::Single, AccessKind::Store, 32);
const STLR64: Side = side("stlr", Form::Single, AccessKind::AcquireRelease, 64);
const STP128: Side = side("stp", Form::Pair, AccessKind::Store, 128);

/// The `tear` family's cases on aarch64 (loads `ldr`, `ldar`, `ldapr`, `ldxr`, `ldp`, `ldxp`;
/// stores `str`, `stlr`, `stp`), plus the mixed-size case.
pub static CASES: &[TearCase] = &[
    TearCase {
        name: "ldrb-strb-8",
        width: 8,
        shape: Shape::Whole,
        load: side("ldrb", Form::Single, AccessKind::Load, 8),
        read: ldrb,
        store: Some((side("strb", Form::Single, AccessKind::Store, 8), strb)),
        half: None,
        placements: ALIGNED,
    },
    TearCase {
        name: "ldrh-strh-16",
        width: 16,
        shape: Shape::Whole,
        load: side("ldrh", Form::Single, AccessKind::Load, 16),
        read: ldrh,
        store: Some((side("strh", Form::Single, AccessKind::Store, 16), strh)),
        half: None,
        placements: ALL,
    },
    TearCase {
        name: "ldr-str-32",
        width: 32,
        shape: Shape::Whole,
        load: side("ldr", Form::Single, AccessKind::Load, 32),
        read: ldr32,
        store: Some((STR32, str32)),
        half: None,
        placements: ALL,
    },
    TearCase {
        name: "ldr-str-64",
        width: 64,
        shape: Shape::Whole,
        load: LDR64,
        read: ldr64,
        store: Some((STR64, str64)),
        half: None,
        placements: ALL,
    },
    TearCase {
        name: "ldar-stlr-32",
        width: 32,
        shape: Shape::Whole,
        load: side("ldar", Form::Single, AccessKind::AcquireRelease, 32),
        read: ldar32,
        store: Some((
            side("stlr", Form::Single, AccessKind::AcquireRelease, 32),
            stlr32,
        )),
        half: None,
        placements: ALL,
    },
    TearCase {
        name: "ldar-stlr-64",
        width: 64,
        shape: Shape::Whole,
        load: side("ldar", Form::Single, AccessKind::AcquireRelease, 64),
        read: ldar64,
        store: Some((STLR64, stlr64)),
        half: None,
        placements: ALL,
    },
    TearCase {
        name: "ldapr-stlr-64",
        width: 64,
        shape: Shape::Whole,
        load: Side {
            op: "ldapr",
            form: Form::Single,
            kind: AccessKind::AcquireRelease,
            width: 64,
            needs: Some(Feature::Lrcpc),
        },
        read: ldapr64,
        store: Some((STLR64, stlr64)),
        half: None,
        placements: ALL,
    },
    TearCase {
        name: "ldxr-str-64",
        width: 64,
        shape: Shape::Whole,
        load: side("ldxr", Form::Single, AccessKind::Exclusive, 64),
        read: ldxr64,
        store: Some((STR64, str64)),
        half: None,
        placements: ALL,
    },
    TearCase {
        name: "ldp-stp-64",
        width: 64,
        shape: Shape::Whole,
        load: side("ldp", Form::Pair, AccessKind::Load, 64),
        read: ldp32x2,
        store: Some((side("stp", Form::Pair, AccessKind::Store, 64), stp32x2)),
        half: None,
        placements: ALL,
    },
    TearCase {
        name: "ldp-stp-128",
        width: 128,
        shape: Shape::Whole,
        load: side("ldp", Form::Pair, AccessKind::Load, 128),
        read: ldp64x2,
        store: Some((STP128, stp64x2)),
        half: None,
        placements: ALL,
    },
    TearCase {
        name: "ldxp-stp-128",
        width: 128,
        shape: Shape::Whole,
        load: side("ldxp", Form::ExclPair, AccessKind::Exclusive, 128),
        read: ldxp64x2,
        store: Some((STP128, stp64x2)),
        half: None,
        placements: ALL,
    },
    TearCase {
        name: "ldxp.stxp-ldxp.stxp-128",
        width: 128,
        shape: Shape::Whole,
        load: side(
            "ldxp+stxp",
            Form::ExclPairStored,
            AccessKind::Exclusive,
            128,
        ),
        read: ldxp_stxp_read,
        store: Some((
            side(
                "ldxp+stxp",
                Form::ExclPairStored,
                AccessKind::Exclusive,
                128,
            ),
            stxp_store,
        )),
        half: None,
        placements: ALL,
    },
    TearCase {
        name: "ldr-str-64-halves",
        width: 64,
        shape: Shape::Halves,
        load: LDR64,
        read: ldr64,
        store: None,
        half: Some((STR32, str32)),
        placements: ALL,
    },
];

/// Issue 4 item 6: Go's `atomic.LoadUint64` on arm64 is LDAR; it races plain 64-bit stores of the
/// whole word and 32-bit stores of its halves.
pub static GO_LOADUINT64: TearCase = TearCase {
    name: "go-loaduint64",
    width: 64,
    shape: Shape::WholeAndHalves,
    load: side("ldar", Form::Single, AccessKind::AcquireRelease, 64),
    read: ldar64,
    store: Some((STR64, str64)),
    half: Some((STR32, str32)),
    placements: ALL,
};
