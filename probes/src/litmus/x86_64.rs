//! x86-64 litmus tests, judged against x86-TSO.
//!
//! Shapes and names follow herdtools7's `catalogue/x86_64/tests` (registers `rax`, `rbx` as
//! litmus7 prints them for `movl … %eax/%ebx`). Verdicts: the herdtools7 catalogue's
//! `kinds.txt` for the tests it lists (diy7 with x86-TSO; copy in
//! `probes/tests/fixtures/kinds-x86_64.txt`, checked by `probes/tests/litmus_verdicts.rs`); the
//! others are derived from x86-TSO and the Intel SDM Vol. 3A 9.2.2 rules quoted in their source.
//! Intel and AMD promise the same for these tests on WB memory (AMD APM Vol. 2 7.2 "Multiprocessor
//! memory access ordering" states the same rules: loads do not pass loads, stores do not pass
//! stores or loads, a load may pass an older store to another address, locked instructions and
//! MFENCE are ordered with all loads and stores).
//!
//! | test | model | source |
//! |---|---|---|
//! | SB | allowed | kinds.txt |
//! | SB+mfences | forbidden | kinds.txt |
//! | SB+mfence+po | allowed | kinds.txt |
//! | SB+lock-xchg | forbidden | SDM 9.2.2: loads and stores are not reordered with locked instructions |
//! | MP | forbidden | kinds.txt |
//! | LB | forbidden | kinds.txt |
//! | IRIW | forbidden | SDM 9.2.2: stores are seen in a consistent order by other processors; reads are not reordered with other reads |
//! | 2+2W | forbidden | kinds.txt |
//! | CoRR | forbidden | SDM 9.2.2: reads are not reordered with other reads (and TSO is coherent) |
//! | R | allowed | kinds.txt |
//! | R+po+mfence | forbidden | kinds.txt |
//! | S | forbidden | kinds.txt |
//! | WRC | forbidden | kinds.txt |

use super::{Body, Locs, Needs, Obs, Source, Test, MAX_REGS};
use crate::attr::Arch;
use crate::record::ModelVerdict::{Allowed, Forbidden};

/// One thread body: `body!(name, |l, o| asm-template-and-operands)`.
macro_rules! body {
    ($name:ident, |$l:ident, $o:ident| $($asm:tt)*) => {
        #[allow(unused_variables)]
        unsafe fn $name($l: &Locs, $o: &mut [u32; MAX_REGS]) {
            #[cfg(target_arch = "x86_64")]
            {
                // SAFETY: the caller passes valid, 4-byte aligned locations (see `Body`); the
                // snippet accesses only them and its listed registers.
                unsafe { core::arch::asm!($($asm)*, options(nostack)) }
            }
            #[cfg(not(target_arch = "x86_64"))]
            unreachable!("x86-64 litmus body run on another architecture")
        }
    };
}

const X: usize = 0;
const Y: usize = 1;

const fn rax(thread: usize, var: usize) -> Obs {
    Obs::Reg {
        thread,
        name: "rax",
        slot: 0,
        var,
    }
}
const fn rbx(thread: usize, var: usize) -> Obs {
    Obs::Reg {
        thread,
        name: "rbx",
        slot: 1,
        var,
    }
}

// --- bodies ------------------------------------------------------------------------------

// P: movl $1,(a); movl (b),%eax
body!(w1x_ry, |l, o| "mov dword ptr [{a}], {v:e}", "mov {r:e}, dword ptr [{b}]",
    a = in(reg) l.p[X], b = in(reg) l.p[Y], v = in(reg) l.w[X][1], r = out(reg) o[0]);
body!(w1y_rx, |l, o| "mov dword ptr [{a}], {v:e}", "mov {r:e}, dword ptr [{b}]",
    a = in(reg) l.p[Y], b = in(reg) l.p[X], v = in(reg) l.w[Y][1], r = out(reg) o[0]);
body!(w1x_mf_ry, |l, o| "mov dword ptr [{a}], {v:e}", "mfence", "mov {r:e}, dword ptr [{b}]",
    a = in(reg) l.p[X], b = in(reg) l.p[Y], v = in(reg) l.w[X][1], r = out(reg) o[0]);
body!(w1y_mf_rx, |l, o| "mov dword ptr [{a}], {v:e}", "mfence", "mov {r:e}, dword ptr [{b}]",
    a = in(reg) l.p[Y], b = in(reg) l.p[X], v = in(reg) l.w[Y][1], r = out(reg) o[0]);
body!(xchg1x_ry, |l, o| "xchg dword ptr [{a}], {v:e}", "mov {r:e}, dword ptr [{b}]",
    a = in(reg) l.p[X], b = in(reg) l.p[Y], v = inout(reg) l.w[X][1] => _, r = out(reg) o[0]);
body!(xchg1y_rx, |l, o| "xchg dword ptr [{a}], {v:e}", "mov {r:e}, dword ptr [{b}]",
    a = in(reg) l.p[Y], b = in(reg) l.p[X], v = inout(reg) l.w[Y][1] => _, r = out(reg) o[0]);
// MP P0 / S-like writers: movl $a,(x); movl $b,(y)
body!(w1x_w1y, |l, o| "mov dword ptr [{a}], {v:e}", "mov dword ptr [{b}], {u:e}",
    a = in(reg) l.p[X], b = in(reg) l.p[Y], v = in(reg) l.w[X][1], u = in(reg) l.w[Y][1]);
body!(w2x_w1y, |l, o| "mov dword ptr [{a}], {v:e}", "mov dword ptr [{b}], {u:e}",
    a = in(reg) l.p[X], b = in(reg) l.p[Y], v = in(reg) l.w[X][2], u = in(reg) l.w[Y][1]);
body!(w2y_w1x, |l, o| "mov dword ptr [{a}], {v:e}", "mov dword ptr [{b}], {u:e}",
    a = in(reg) l.p[Y], b = in(reg) l.p[X], v = in(reg) l.w[Y][2], u = in(reg) l.w[X][1]);
// MP P1: movl (y),%eax; movl (x),%ebx
body!(ry_rx, |l, o| "mov {r:e}, dword ptr [{a}]", "mov {s:e}, dword ptr [{b}]",
    a = in(reg) l.p[Y], b = in(reg) l.p[X], r = out(reg) o[0], s = out(reg) o[1]);
body!(rx_ry, |l, o| "mov {r:e}, dword ptr [{a}]", "mov {s:e}, dword ptr [{b}]",
    a = in(reg) l.p[X], b = in(reg) l.p[Y], r = out(reg) o[0], s = out(reg) o[1]);
body!(rx_rx, |l, o| "mov {r:e}, dword ptr [{a}]", "mov {s:e}, dword ptr [{a}]",
    a = in(reg) l.p[X], r = out(reg) o[0], s = out(reg) o[1]);
// LB: movl (x),%eax; movl $1,(y)
body!(rx_w1y, |l, o| "mov {r:e}, dword ptr [{a}]", "mov dword ptr [{b}], {v:e}",
    a = in(reg) l.p[X], b = in(reg) l.p[Y], v = in(reg) l.w[Y][1], r = out(reg) o[0]);
body!(ry_w1x, |l, o| "mov {r:e}, dword ptr [{a}]", "mov dword ptr [{b}], {v:e}",
    a = in(reg) l.p[Y], b = in(reg) l.p[X], v = in(reg) l.w[X][1], r = out(reg) o[0]);
body!(w1x, |l, o| "mov dword ptr [{a}], {v:e}", a = in(reg) l.p[X], v = in(reg) l.w[X][1]);
body!(w1y, |l, o| "mov dword ptr [{a}], {v:e}", a = in(reg) l.p[Y], v = in(reg) l.w[Y][1]);
// R P1: movl $2,(y); movl (x),%eax  (and with mfence)
body!(w2y_rx, |l, o| "mov dword ptr [{a}], {v:e}", "mov {r:e}, dword ptr [{b}]",
    a = in(reg) l.p[Y], b = in(reg) l.p[X], v = in(reg) l.w[Y][2], r = out(reg) o[0]);
body!(w2y_mf_rx, |l, o| "mov dword ptr [{a}], {v:e}", "mfence", "mov {r:e}, dword ptr [{b}]",
    a = in(reg) l.p[Y], b = in(reg) l.p[X], v = in(reg) l.w[Y][2], r = out(reg) o[0]);

const SB_OBS: &[Obs] = &[rax(0, Y), rax(1, X)];
const SB_COND: &[(usize, u32)] = &[(0, 0), (1, 0)];

/// Every x86-64 litmus test, in run order.
pub static TESTS: &[Test] = &[
    Test {
        name: "SB",
        arch: Arch::X86_64,
        vars: &["x", "y"],
        threads: &[w1x_ry as Body, w1y_rx],
        regs: &[1, 1],
        obs: SB_OBS,
        cond: SB_COND,
        model: Allowed,
        source: Source::X86Kinds,
        needs: Needs::Nothing,
    },
    Test {
        name: "SB+mfences",
        arch: Arch::X86_64,
        vars: &["x", "y"],
        threads: &[w1x_mf_ry as Body, w1y_mf_rx],
        regs: &[1, 1],
        obs: SB_OBS,
        cond: SB_COND,
        model: Forbidden,
        source: Source::X86Kinds,
        needs: Needs::Nothing,
    },
    Test {
        name: "SB+mfence+po",
        arch: Arch::X86_64,
        vars: &["x", "y"],
        threads: &[w1x_mf_ry as Body, w1y_rx],
        regs: &[1, 1],
        obs: SB_OBS,
        cond: SB_COND,
        model: Allowed,
        source: Source::X86Kinds,
        needs: Needs::Nothing,
    },
    Test {
        name: "SB+lock-xchg",
        arch: Arch::X86_64,
        vars: &["x", "y"],
        threads: &[xchg1x_ry as Body, xchg1y_rx],
        regs: &[1, 1],
        obs: SB_OBS,
        cond: SB_COND,
        model: Forbidden,
        source: Source::X86Tso(
            "both stores are XCHG (implicitly locked); \"loads and stores are not reordered \
             with locked instructions\", so each load follows its thread's store in the total \
             order of locked instructions",
        ),
        needs: Needs::Nothing,
    },
    Test {
        name: "MP",
        arch: Arch::X86_64,
        vars: &["x", "y"],
        threads: &[w1x_w1y as Body, ry_rx],
        regs: &[0, 2],
        obs: &[rax(1, Y), rbx(1, X)],
        cond: &[(0, 1), (1, 0)],
        model: Forbidden,
        source: Source::X86Kinds,
        needs: Needs::Nothing,
    },
    Test {
        name: "LB",
        arch: Arch::X86_64,
        vars: &["x", "y"],
        threads: &[rx_w1y as Body, ry_w1x],
        regs: &[1, 1],
        obs: &[rax(0, X), rax(1, Y)],
        cond: &[(0, 1), (1, 1)],
        model: Forbidden,
        source: Source::X86Kinds,
        needs: Needs::Nothing,
    },
    Test {
        name: "IRIW",
        arch: Arch::X86_64,
        vars: &["x", "y"],
        threads: &[w1x as Body, w1y, rx_ry, ry_rx],
        regs: &[0, 0, 2, 2],
        obs: &[rax(2, X), rbx(2, Y), rax(3, Y), rbx(3, X)],
        cond: &[(0, 1), (1, 0), (2, 1), (3, 0)],
        model: Forbidden,
        source: Source::X86Tso(
            "\"any two stores are seen in a consistent order by processors other than those \
             performing the stores\" and \"reads are not reordered with other reads\"",
        ),
        needs: Needs::Nothing,
    },
    Test {
        name: "2+2W",
        arch: Arch::X86_64,
        vars: &["x", "y"],
        threads: &[w2x_w1y as Body, w2y_w1x],
        regs: &[0, 0],
        obs: &[Obs::Loc { var: X }, Obs::Loc { var: Y }],
        cond: &[(0, 2), (1, 2)],
        model: Forbidden,
        source: Source::X86Kinds,
        needs: Needs::Nothing,
    },
    Test {
        name: "CoRR",
        arch: Arch::X86_64,
        vars: &["x"],
        threads: &[w1x as Body, rx_rx],
        regs: &[0, 2],
        obs: &[rax(1, X), rbx(1, X)],
        cond: &[(0, 1), (1, 0)],
        model: Forbidden,
        source: Source::X86Tso(
            "\"reads are not reordered with other reads\"; x86-TSO is coherent (a single \
             global order of stores per location)",
        ),
        needs: Needs::Nothing,
    },
    Test {
        name: "R",
        arch: Arch::X86_64,
        vars: &["x", "y"],
        threads: &[w1x_w1y as Body, w2y_rx],
        regs: &[0, 1],
        obs: &[rax(1, X), Obs::Loc { var: Y }],
        cond: &[(1, 2), (0, 0)],
        model: Allowed,
        source: Source::X86Kinds,
        needs: Needs::Nothing,
    },
    Test {
        name: "R+po+mfence",
        arch: Arch::X86_64,
        vars: &["x", "y"],
        threads: &[w1x_w1y as Body, w2y_mf_rx],
        regs: &[0, 1],
        obs: &[rax(1, X), Obs::Loc { var: Y }],
        cond: &[(1, 2), (0, 0)],
        model: Forbidden,
        source: Source::X86Kinds,
        needs: Needs::Nothing,
    },
    Test {
        name: "S",
        arch: Arch::X86_64,
        vars: &["x", "y"],
        threads: &[w2x_w1y as Body, ry_w1x],
        regs: &[0, 1],
        obs: &[rax(1, Y), Obs::Loc { var: X }],
        cond: &[(1, 2), (0, 1)],
        model: Forbidden,
        source: Source::X86Kinds,
        needs: Needs::Nothing,
    },
    Test {
        name: "WRC",
        arch: Arch::X86_64,
        vars: &["x", "y"],
        threads: &[w1x as Body, rx_w1y, ry_rx],
        regs: &[0, 1, 2],
        obs: &[rax(1, X), rax(2, Y), rbx(2, X)],
        cond: &[(0, 1), (1, 1), (2, 0)],
        model: Forbidden,
        source: Source::X86Kinds,
        needs: Needs::Nothing,
    },
];
