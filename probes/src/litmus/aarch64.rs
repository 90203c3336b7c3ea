//! aarch64 litmus tests, judged against the Arm memory model (herd7 `aarch64.cat`, Arm ARM B2.3).
//!
//! Names, thread code and register names follow herdtools7 (`catalogue/aarch64/tests` and the
//! diy7 naming of relaxations: `dmb.sy` = `DMB SY`, `dmb.st`/`dmb.ld` = `DMB ST`/`DMB LD`,
//! `addr` = `EOR W4,W0,W0` then an access indexed by `W4`, `data` = `EOR`/`ADD` into the stored
//! register, `ctrl` = `CBNZ` to the next instruction, `ctrlisb` = the same plus `ISB`, `rel` =
//! `STLR`, `acq` = `LDAR`, `acqpc` = `LDAPR`; a plural (`+dmb.sys`, `+addrs`) puts the same
//! thing on every thread with a po edge). Stores write the generation-tagged value of the litmus
//! value (see [`super`]), so `MOV W0,#1` becomes a register holding that value; `ADD W2,W2,#1`
//! of a data dependency adds that value instead of 1, keeping the dependency.
//!
//! Verdicts: [`Source::ArmKinds`] where the herdtools7 catalogue's `kinds.txt` lists the test
//! (copy in `probes/tests/fixtures/kinds-aarch64.txt`, checked by
//! `probes/tests/litmus_verdicts.rs`); otherwise derived from the Arm ARM B2.3 definitions that
//! aarch64.cat encodes: the external-visibility requirement (`ob` = `obs` ∪ `dob` ∪ `aob` ∪
//! `bob`, transitively closed, must be irreflexive; `obs` = `rfe` ∪ `fre` ∪ `coe` because AArch64
//! is other-multi-copy atomic) and internal visibility (per-location SC). A test whose cycle is
//! entirely made of `ob` edges is forbidden; one with an edge no rule orders is allowed:
//!
//! | test | model | why |
//! |---|---|---|
//! | MP+dmb.st+dmb.ld | forbidden | DMB ST orders W→W, DMB LD orders R→R (`bob`); rfe, fre in `obs` |
//! | MP+dmb.sy+addr | forbidden | address dependency R→R is in `dob` |
//! | MP+dmb.sy+ctrl | allowed | a control dependency orders only later writes (`dob` has ctrl;[W]); the second read may be satisfied speculatively |
//! | MP+dmb.sy+ctrlisb | forbidden | ctrl;ISB orders later reads (`dob` has (ctrl ∪ addr;po);[ISB];po;[R]) |
//! | LB+addrs, LB+datas, LB+ctrls | forbidden | addr, data and ctrl to a write are in `dob` |
//! | LB+dmb.sy+addr, LB+dmb.sy+data, LB+dmb.sy+ctrl | forbidden | DMB SY (`bob`) plus a `dob` edge |
//! | S+dmb.sy+addr, S+dmb.sy+data, S+dmb.sy+ctrl | forbidden | DMB SY, rfe, a `dob` edge to the write, coe |
//! | WRC | allowed | P1's read→write and P2's read→read are unordered |
//! | WRC+dmb.sys, WRC+addrs, WRC+dmb.sy+addr | forbidden | rfe ∈ `obs` (other-multi-copy atomicity) with ordered P1 and P2 |
//! | IRIW | allowed | the readers' read→read pairs are unordered |
//! | IRIW+dmb.sys, IRIW+addrs | forbidden | other-multi-copy atomicity: fre, rfe ∈ `obs`, ordered readers |

use super::{Body, Locs, Needs, Obs, Source, Test, MAX_REGS};
use crate::attr::Arch;
use crate::record::ModelVerdict::{Allowed, Forbidden};

/// One thread body: `body!(name, |l, o| asm-template-and-operands)`.
macro_rules! body {
    ($name:ident, |$l:ident, $o:ident| $($asm:tt)*) => {
        #[allow(unused_variables)]
        unsafe fn $name($l: &Locs, $o: &mut [u32; MAX_REGS]) {
            #[cfg(target_arch = "aarch64")]
            {
                // SAFETY: the caller passes valid, 4-byte aligned locations (see `Body`); the
                // snippet accesses only them and its listed registers.
                unsafe { core::arch::asm!($($asm)*, options(nostack)) }
            }
            #[cfg(not(target_arch = "aarch64"))]
            unreachable!("aarch64 litmus body run on another architecture")
        }
    };
}

const X: usize = 0;
const Y: usize = 1;

const fn reg(thread: usize, name: &'static str, slot: usize, var: usize) -> Obs {
    Obs::Reg {
        thread,
        name,
        slot,
        var,
    }
}

// --- writers -------------------------------------------------------------------------------
// "MOV W0,#a; STR W0,[X1]; <sep>; MOV W2,#b; STR W2,[X3]" for (x, y).
macro_rules! ww {
    ($name:ident, $first:expr, $a:expr, $second:expr, $b:expr, $($sep:literal)?) => {
        body!($name, |l, o| "str {v:w}, [{p}]", $($sep,)? "str {u:w}, [{q}]",
            p = in(reg) l.p[$first], q = in(reg) l.p[$second],
            v = in(reg) l.w[$first][$a], u = in(reg) l.w[$second][$b]);
    };
}
ww!(w1x_w1y, X, 1, Y, 1,);
ww!(w1x_dmb_w1y, X, 1, Y, 1, "dmb sy");
ww!(w1x_dmbst_w1y, X, 1, Y, 1, "dmb st");
ww!(w2x_w1y, X, 2, Y, 1,);
ww!(w2x_dmb_w1y, X, 2, Y, 1, "dmb sy");
ww!(w2y_w1x, Y, 2, X, 1,);
ww!(w2y_dmb_w1x, Y, 2, X, 1, "dmb sy");
ww!(w1x_w2x, X, 1, X, 2,);
body!(w1x_rel_w1y, |l, o| "str {v:w}, [{p}]", "stlr {u:w}, [{q}]",
    p = in(reg) l.p[X], q = in(reg) l.p[Y], v = in(reg) l.w[X][1], u = in(reg) l.w[Y][1]);
body!(w1x, |l, o| "str {v:w}, [{p}]", p = in(reg) l.p[X], v = in(reg) l.w[X][1]);
body!(w1y, |l, o| "str {v:w}, [{p}]", p = in(reg) l.p[Y], v = in(reg) l.w[Y][1]);

// --- write then read: "STR W0,[X1]; <sep>; LDR W2,[X3]" -----------------------------------
macro_rules! wr {
    ($name:ident, $w:expr, $lit:expr, $r:expr, $($sep:literal)?) => {
        body!($name, |l, o| "str {v:w}, [{p}]", $($sep,)? "ldr {r:w}, [{q}]",
            p = in(reg) l.p[$w], q = in(reg) l.p[$r], v = in(reg) l.w[$w][$lit],
            r = out(reg) o[0]);
    };
}
wr!(w1x_ry, X, 1, Y,);
wr!(w1y_rx, Y, 1, X,);
wr!(w1x_dmb_ry, X, 1, Y, "dmb sy");
wr!(w1y_dmb_rx, Y, 1, X, "dmb sy");
wr!(w2y_rx, Y, 2, X,);
wr!(w2y_dmb_rx, Y, 2, X, "dmb sy");
wr!(w1x_rx, X, 1, X,);
body!(rel1y_acq_rx, |l, o| "stlr {v:w}, [{p}]", "ldar {r:w}, [{q}]",
    p = in(reg) l.p[Y], q = in(reg) l.p[X], v = in(reg) l.w[Y][1], r = out(reg) o[0]);
body!(rel1y_acqpc_rx, |l, o| ".arch_extension rcpc", "stlr {v:w}, [{p}]", "ldapr {r:w}, [{q}]",
    p = in(reg) l.p[Y], q = in(reg) l.p[X], v = in(reg) l.w[Y][1], r = out(reg) o[0]);

// --- read then read: "LDR W0,[X1]; <sep>; LDR W2,[X3]" ------------------------------------
macro_rules! rr {
    ($name:ident, $a:expr, $b:expr, $($line:literal),*) => {
        body!($name, |l, o| $($line),*,
            p = in(reg) l.p[$a], q = in(reg) l.p[$b], r = out(reg) o[0], s = out(reg) o[1]);
    };
}
rr!(ry_rx, Y, X, "ldr {r:w}, [{p}]", "ldr {s:w}, [{q}]");
rr!(rx_ry, X, Y, "ldr {r:w}, [{p}]", "ldr {s:w}, [{q}]");
rr!(
    ry_dmb_rx,
    Y,
    X,
    "ldr {r:w}, [{p}]",
    "dmb sy",
    "ldr {s:w}, [{q}]"
);
rr!(
    rx_dmb_ry,
    X,
    Y,
    "ldr {r:w}, [{p}]",
    "dmb sy",
    "ldr {s:w}, [{q}]"
);
rr!(
    ry_dmbld_rx,
    Y,
    X,
    "ldr {r:w}, [{p}]",
    "dmb ld",
    "ldr {s:w}, [{q}]"
);
rr!(
    ry_ctrl_rx,
    Y,
    X,
    "ldr {r:w}, [{p}]",
    "cbnz {r:w}, 21f",
    "21:",
    "ldr {s:w}, [{q}]"
);
rr!(
    ry_ctrlisb_rx,
    Y,
    X,
    "ldr {r:w}, [{p}]",
    "cbnz {r:w}, 21f",
    "21:",
    "isb",
    "ldr {s:w}, [{q}]"
);
rr!(rx_rx, X, X, "ldr {r:w}, [{p}]", "ldr {s:w}, [{q}]");
// MP+rel+acq P1: "LDAR W2,[X3]; LDR W0,[X1]" (out[0] = X2 from y, out[1] = X0 from x).
rr!(acqy_rx, Y, X, "ldar {r:w}, [{p}]", "ldr {s:w}, [{q}]");
rr!(
    acqpcy_rx,
    Y,
    X,
    ".arch_extension rcpc",
    "ldapr {r:w}, [{p}]",
    "ldr {s:w}, [{q}]"
);
macro_rules! rr_addr {
    ($name:ident, $a:expr, $b:expr) => {
        body!($name, |l, o| "ldr {r:w}, [{p}]", "eor {t:w}, {r:w}, {r:w}",
            "ldr {s:w}, [{q}, {t:w}, sxtw]",
            p = in(reg) l.p[$a], q = in(reg) l.p[$b], r = out(reg) o[0], s = out(reg) o[1],
            t = out(reg) _);
    };
}
rr_addr!(ry_addr_rx, Y, X);
rr_addr!(rx_addr_ry, X, Y);

// --- read then write: "LDR W0,[X1]; <dep/sep>; STR W2,[X3]" -------------------------------
macro_rules! rw {
    ($name:ident, $r:expr, $w:expr, $lit:expr, $($line:literal),*) => {
        body!($name, |l, o| "ldr {r:w}, [{p}]", $($line),*,
            p = in(reg) l.p[$r], q = in(reg) l.p[$w], v = in(reg) l.w[$w][$lit],
            r = out(reg) o[0]);
    };
}
rw!(rx_w1y, X, Y, 1, "str {v:w}, [{q}]");
rw!(ry_w1x, Y, X, 1, "str {v:w}, [{q}]");
rw!(rx_dmb_w1y, X, Y, 1, "dmb sy", "str {v:w}, [{q}]");
rw!(ry_dmb_w1x, Y, X, 1, "dmb sy", "str {v:w}, [{q}]");
rw!(
    rx_ctrl_w1y,
    X,
    Y,
    1,
    "cbnz {r:w}, 21f",
    "21:",
    "str {v:w}, [{q}]"
);
rw!(
    ry_ctrl_w1x,
    Y,
    X,
    1,
    "cbnz {r:w}, 21f",
    "21:",
    "str {v:w}, [{q}]"
);
rw!(rx_w2x, X, X, 2, "str {v:w}, [{q}]");
rw!(rx_w1x, X, X, 1, "str {v:w}, [{q}]");
macro_rules! rw_tmp {
    ($name:ident, $r:expr, $w:expr, $($line:literal),*) => {
        body!($name, |l, o| "ldr {r:w}, [{p}]", $($line),*,
            p = in(reg) l.p[$r], q = in(reg) l.p[$w], v = in(reg) l.w[$w][1],
            r = out(reg) o[0], t = out(reg) _);
    };
}
rw_tmp!(
    rx_addr_w1y,
    X,
    Y,
    "eor {t:w}, {r:w}, {r:w}",
    "str {v:w}, [{q}, {t:w}, sxtw]"
);
rw_tmp!(
    ry_addr_w1x,
    Y,
    X,
    "eor {t:w}, {r:w}, {r:w}",
    "str {v:w}, [{q}, {t:w}, sxtw]"
);
rw_tmp!(
    rx_data_w1y,
    X,
    Y,
    "eor {t:w}, {r:w}, {r:w}",
    "add {t:w}, {t:w}, {v:w}",
    "str {t:w}, [{q}]"
);
rw_tmp!(
    ry_data_w1x,
    Y,
    X,
    "eor {t:w}, {r:w}, {r:w}",
    "add {t:w}, {t:w}, {v:w}",
    "str {t:w}, [{q}]"
);

// --- outcome shapes -----------------------------------------------------------------------
const MP_OBS: &[Obs] = &[reg(1, "X0", 0, Y), reg(1, "X2", 1, X)];
const MP_COND: &[(usize, u32)] = &[(0, 1), (1, 0)];
// MP+rel+acq(pc) registers: P1 LDAR W2,[X3] (y) then LDR W0,[X1] (x).
const MPRA_OBS: &[Obs] = &[reg(1, "X0", 1, X), reg(1, "X2", 0, Y)];
const MPRA_COND: &[(usize, u32)] = &[(1, 1), (0, 0)];
const SB_OBS: &[Obs] = &[reg(0, "X2", 0, Y), reg(1, "X2", 0, X)];
const SB_COND: &[(usize, u32)] = &[(0, 0), (1, 0)];
// SB+dmb.sy+rel-acq: P1 "STLR W2,[X3]; LDAR W0,[X1]".
const SBRA_OBS: &[Obs] = &[reg(0, "X2", 0, Y), reg(1, "X0", 0, X)];
const LB_OBS: &[Obs] = &[reg(0, "X0", 0, X), reg(1, "X0", 0, Y)];
const LB_COND: &[(usize, u32)] = &[(0, 1), (1, 1)];
const W22_OBS: &[Obs] = &[Obs::Loc { var: X }, Obs::Loc { var: Y }];
const W22_COND: &[(usize, u32)] = &[(0, 2), (1, 2)];
const R_OBS: &[Obs] = &[reg(1, "X2", 0, X), Obs::Loc { var: Y }];
const R_COND: &[(usize, u32)] = &[(1, 2), (0, 0)];
const S_OBS: &[Obs] = &[reg(1, "X0", 0, Y), Obs::Loc { var: X }];
const S_COND: &[(usize, u32)] = &[(1, 2), (0, 1)];
const WRC_OBS: &[Obs] = &[reg(1, "X0", 0, X), reg(2, "X0", 0, Y), reg(2, "X2", 1, X)];
const WRC_COND: &[(usize, u32)] = &[(0, 1), (1, 1), (2, 0)];
const IRIW_OBS: &[Obs] = &[
    reg(2, "X0", 0, X),
    reg(2, "X2", 1, Y),
    reg(3, "X0", 0, Y),
    reg(3, "X2", 1, X),
];
const IRIW_COND: &[(usize, u32)] = &[(0, 1), (1, 0), (2, 1), (3, 0)];

const XY: &[&str] = &["x", "y"];

/// A test on variables x, y with no feature requirement.
const fn t(
    name: &'static str,
    threads: &'static [Body],
    regs: &'static [usize],
    obs: &'static [Obs],
    cond: &'static [(usize, u32)],
    model: crate::record::ModelVerdict,
    source: Source,
) -> Test {
    Test {
        name,
        arch: Arch::Aarch64,
        vars: XY,
        threads,
        regs,
        obs,
        cond,
        model,
        source,
        needs: Needs::Nothing,
    }
}

const K: Source = Source::ArmKinds;

/// Every aarch64 litmus test, in run order.
pub static TESTS: &[Test] = &[
    // MP
    t(
        "MP",
        &[w1x_w1y, ry_rx],
        &[0, 2],
        MP_OBS,
        MP_COND,
        Allowed,
        K,
    ),
    t(
        "MP+dmb.sys",
        &[w1x_dmb_w1y, ry_dmb_rx],
        &[0, 2],
        MP_OBS,
        MP_COND,
        Forbidden,
        K,
    ),
    t(
        "MP+dmb.sy+po",
        &[w1x_dmb_w1y, ry_rx],
        &[0, 2],
        MP_OBS,
        MP_COND,
        Allowed,
        K,
    ),
    t(
        "MP+po+dmb.sy",
        &[w1x_w1y, ry_dmb_rx],
        &[0, 2],
        MP_OBS,
        MP_COND,
        Allowed,
        K,
    ),
    t(
        "MP+dmb.st+dmb.ld",
        &[w1x_dmbst_w1y, ry_dmbld_rx],
        &[0, 2],
        MP_OBS,
        MP_COND,
        Forbidden,
        Source::ArmArm("DMB ST orders the writes, DMB LD the reads (bob); rfe, fre in obs"),
    ),
    t(
        "MP+dmb.sy+addr",
        &[w1x_dmb_w1y, ry_addr_rx],
        &[0, 2],
        MP_OBS,
        MP_COND,
        Forbidden,
        Source::ArmArm("DMB SY (bob) and an address dependency read-to-read (dob)"),
    ),
    t(
        "MP+dmb.sy+ctrl",
        &[w1x_dmb_w1y, ry_ctrl_rx],
        &[0, 2],
        MP_OBS,
        MP_COND,
        Allowed,
        Source::ArmArm(
            "a control dependency orders only later writes (dob: ctrl;[W]); the second read \
             is unordered",
        ),
    ),
    t(
        "MP+dmb.sy+ctrlisb",
        &[w1x_dmb_w1y, ry_ctrlisb_rx],
        &[0, 2],
        MP_OBS,
        MP_COND,
        Forbidden,
        Source::ArmArm("control dependency plus ISB orders later reads (dob: ctrl;[ISB];po;[R])"),
    ),
    t(
        "MP+rel+acq",
        &[w1x_rel_w1y, acqy_rx],
        &[0, 2],
        MPRA_OBS,
        MPRA_COND,
        Forbidden,
        K,
    ),
    Test {
        needs: Needs::Lrcpc,
        ..t(
            "MP+rel+acqpc",
            &[w1x_rel_w1y, acqpcy_rx],
            &[0, 2],
            MPRA_OBS,
            MPRA_COND,
            Forbidden,
            K,
        )
    },
    // SB
    t(
        "SB",
        &[w1x_ry, w1y_rx],
        &[1, 1],
        SB_OBS,
        SB_COND,
        Allowed,
        K,
    ),
    t(
        "SB+dmb.sys",
        &[w1x_dmb_ry, w1y_dmb_rx],
        &[1, 1],
        SB_OBS,
        SB_COND,
        Forbidden,
        K,
    ),
    t(
        "SB+dmb.sy+po",
        &[w1x_dmb_ry, w1y_rx],
        &[1, 1],
        SB_OBS,
        SB_COND,
        Allowed,
        K,
    ),
    t(
        "SB+dmb.sy+rel-acq",
        &[w1x_dmb_ry, rel1y_acq_rx],
        &[1, 1],
        SBRA_OBS,
        SB_COND,
        Forbidden,
        K,
    ),
    Test {
        needs: Needs::Lrcpc,
        ..t(
            "SB+dmb.sy+rel-acqpc",
            &[w1x_dmb_ry, rel1y_acqpc_rx],
            &[1, 1],
            SBRA_OBS,
            SB_COND,
            Allowed,
            K,
        )
    },
    // LB
    t(
        "LB",
        &[rx_w1y, ry_w1x],
        &[1, 1],
        LB_OBS,
        LB_COND,
        Allowed,
        K,
    ),
    t(
        "LB+dmb.sys",
        &[rx_dmb_w1y, ry_dmb_w1x],
        &[1, 1],
        LB_OBS,
        LB_COND,
        Forbidden,
        K,
    ),
    t(
        "LB+dmb.sy+po",
        &[rx_dmb_w1y, ry_w1x],
        &[1, 1],
        LB_OBS,
        LB_COND,
        Allowed,
        K,
    ),
    t(
        "LB+addrs",
        &[rx_addr_w1y, ry_addr_w1x],
        &[1, 1],
        LB_OBS,
        LB_COND,
        Forbidden,
        Source::ArmArm("address dependencies to the writes (dob); rfe in obs"),
    ),
    t(
        "LB+datas",
        &[rx_data_w1y, ry_data_w1x],
        &[1, 1],
        LB_OBS,
        LB_COND,
        Forbidden,
        Source::ArmArm("data dependencies to the writes (dob); rfe in obs"),
    ),
    t(
        "LB+ctrls",
        &[rx_ctrl_w1y, ry_ctrl_w1x],
        &[1, 1],
        LB_OBS,
        LB_COND,
        Forbidden,
        Source::ArmArm("control dependencies to the writes (dob: ctrl;[W]); rfe in obs"),
    ),
    t(
        "LB+dmb.sy+addr",
        &[rx_dmb_w1y, ry_addr_w1x],
        &[1, 1],
        LB_OBS,
        LB_COND,
        Forbidden,
        Source::ArmArm("DMB SY (bob) and an address dependency to the write (dob)"),
    ),
    t(
        "LB+dmb.sy+data",
        &[rx_dmb_w1y, ry_data_w1x],
        &[1, 1],
        LB_OBS,
        LB_COND,
        Forbidden,
        Source::ArmArm("DMB SY (bob) and a data dependency (dob)"),
    ),
    t(
        "LB+dmb.sy+ctrl",
        &[rx_dmb_w1y, ry_ctrl_w1x],
        &[1, 1],
        LB_OBS,
        LB_COND,
        Forbidden,
        Source::ArmArm("DMB SY (bob) and a control dependency to the write (dob)"),
    ),
    // 2+2W
    t(
        "2+2W",
        &[w2x_w1y, w2y_w1x],
        &[0, 0],
        W22_OBS,
        W22_COND,
        Allowed,
        K,
    ),
    t(
        "2+2W+dmb.sys",
        &[w2x_dmb_w1y, w2y_dmb_w1x],
        &[0, 0],
        W22_OBS,
        W22_COND,
        Forbidden,
        K,
    ),
    t(
        "2+2W+dmb.sy+po",
        &[w2x_dmb_w1y, w2y_w1x],
        &[0, 0],
        W22_OBS,
        W22_COND,
        Allowed,
        K,
    ),
    // R
    t("R", &[w1x_w1y, w2y_rx], &[0, 1], R_OBS, R_COND, Allowed, K),
    t(
        "R+dmb.sys",
        &[w1x_dmb_w1y, w2y_dmb_rx],
        &[0, 1],
        R_OBS,
        R_COND,
        Forbidden,
        K,
    ),
    t(
        "R+dmb.sy+po",
        &[w1x_dmb_w1y, w2y_rx],
        &[0, 1],
        R_OBS,
        R_COND,
        Allowed,
        K,
    ),
    t(
        "R+po+dmb.sy",
        &[w1x_w1y, w2y_dmb_rx],
        &[0, 1],
        R_OBS,
        R_COND,
        Allowed,
        K,
    ),
    // S
    t("S", &[w2x_w1y, ry_w1x], &[0, 1], S_OBS, S_COND, Allowed, K),
    t(
        "S+dmb.sys",
        &[w2x_dmb_w1y, ry_dmb_w1x],
        &[0, 1],
        S_OBS,
        S_COND,
        Forbidden,
        K,
    ),
    t(
        "S+dmb.sy+po",
        &[w2x_dmb_w1y, ry_w1x],
        &[0, 1],
        S_OBS,
        S_COND,
        Allowed,
        K,
    ),
    t(
        "S+po+dmb.sy",
        &[w2x_w1y, ry_dmb_w1x],
        &[0, 1],
        S_OBS,
        S_COND,
        Allowed,
        K,
    ),
    t(
        "S+dmb.sy+addr",
        &[w2x_dmb_w1y, ry_addr_w1x],
        &[0, 1],
        S_OBS,
        S_COND,
        Forbidden,
        Source::ArmArm("DMB SY (bob), rfe, an address dependency to the write (dob), coe"),
    ),
    t(
        "S+dmb.sy+data",
        &[w2x_dmb_w1y, ry_data_w1x],
        &[0, 1],
        S_OBS,
        S_COND,
        Forbidden,
        Source::ArmArm("DMB SY (bob), rfe, a data dependency (dob), coe"),
    ),
    t(
        "S+dmb.sy+ctrl",
        &[w2x_dmb_w1y, ry_ctrl_w1x],
        &[0, 1],
        S_OBS,
        S_COND,
        Forbidden,
        Source::ArmArm("DMB SY (bob), rfe, a control dependency to the write (dob), coe"),
    ),
    // WRC
    t(
        "WRC",
        &[w1x, rx_w1y, ry_rx],
        &[0, 1, 2],
        WRC_OBS,
        WRC_COND,
        Allowed,
        Source::ArmArm("P1's read-to-write and P2's read-to-read pairs are unordered"),
    ),
    t(
        "WRC+dmb.sys",
        &[w1x, rx_dmb_w1y, ry_dmb_rx],
        &[0, 1, 2],
        WRC_OBS,
        WRC_COND,
        Forbidden,
        Source::ArmArm("DMB SY on P1 and P2 (bob); rfe, fre in obs (other-multi-copy atomic)"),
    ),
    t(
        "WRC+addrs",
        &[w1x, rx_addr_w1y, ry_addr_rx],
        &[0, 1, 2],
        WRC_OBS,
        WRC_COND,
        Forbidden,
        Source::ArmArm("address dependencies (dob); rfe, fre in obs (other-multi-copy atomic)"),
    ),
    t(
        "WRC+dmb.sy+addr",
        &[w1x, rx_dmb_w1y, ry_addr_rx],
        &[0, 1, 2],
        WRC_OBS,
        WRC_COND,
        Forbidden,
        Source::ArmArm("DMB SY on P1 (bob), address dependency on P2 (dob); rfe, fre in obs"),
    ),
    // IRIW
    t(
        "IRIW",
        &[w1x, w1y, rx_ry, ry_rx],
        &[0, 0, 2, 2],
        IRIW_OBS,
        IRIW_COND,
        Allowed,
        Source::ArmArm("the readers' read-to-read pairs are unordered"),
    ),
    t(
        "IRIW+dmb.sys",
        &[w1x, w1y, rx_dmb_ry, ry_dmb_rx],
        &[0, 0, 2, 2],
        IRIW_OBS,
        IRIW_COND,
        Forbidden,
        Source::ArmArm("DMB SY on the readers (bob); rfe, fre in obs (other-multi-copy atomic)"),
    ),
    t(
        "IRIW+addrs",
        &[w1x, w1y, rx_addr_ry, ry_addr_rx],
        &[0, 0, 2, 2],
        IRIW_OBS,
        IRIW_COND,
        Forbidden,
        Source::ArmArm("address dependencies on the readers (dob); rfe, fre in obs"),
    ),
    // Coherence
    Test {
        vars: &["x"],
        ..t(
            "CoRR",
            &[w1x, rx_rx],
            &[0, 2],
            &[reg(1, "X1", 0, X), reg(1, "X2", 1, X)],
            &[(0, 1), (1, 0)],
            Forbidden,
            K,
        )
    },
    Test {
        vars: &["x"],
        ..t(
            "CoWR",
            &[w1x_rx],
            &[1],
            &[reg(0, "X2", 0, X)],
            &[(0, 0)],
            Forbidden,
            K,
        )
    },
    Test {
        vars: &["x"],
        ..t(
            "CoWW",
            &[w1x_w2x],
            &[0],
            &[Obs::Loc { var: X }],
            &[(0, 1)],
            Forbidden,
            K,
        )
    },
    Test {
        vars: &["x"],
        ..t(
            "CoRW1",
            &[rx_w1x],
            &[1],
            &[reg(0, "X1", 0, X)],
            &[(0, 1)],
            Forbidden,
            K,
        )
    },
    Test {
        vars: &["x"],
        ..t(
            "CoRW2",
            &[w1x, rx_w2x],
            &[0, 1],
            &[reg(1, "X1", 0, X), Obs::Loc { var: X }],
            &[(1, 1), (0, 1)],
            Forbidden,
            K,
        )
    },
];
