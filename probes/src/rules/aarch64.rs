//! aarch64 alignment-fault rules: the one rule every family (`fault`, `tear`, `excl`, `cost`)
//! judges an aarch64 access by, through [`fault_expectation`] (the families reach it through
//! [`super::atomicity::access_fault_expectation`]).
//!
//! Sources (Arm ARM DDI 0487K.a, see [`super`]): B2.5.2 "Alignment of data accesses" and its
//! pseudocode `AArch64.UnalignedAccessFaults()` (which instructions take an Alignment fault when
//! misaligned, and FEAT_LSE2's relaxation), `AArch64.S1HasAlignmentFault()` (a misaligned access to
//! Device memory faults whatever the instruction and whatever FEAT_LSE2), D8.2.11 (MMU off: every
//! data access is Device-nGnRnE), B2.9.5 and B2.2.6 (exclusives and LSE atomics on memory other than
//! Normal Write-Back are IMPLEMENTATION DEFINED).
//!
//! `AArch64.UnalignedAccessFaults()` as DDI 0487K.a gives it, for an access not aligned to its
//! size:
//!
//! ```text
//! if AlignmentEnforced() then return TRUE;                 // SCTLR_ELx.A = 1
//! ...
//! elsif accdesc.exclusive || accdesc.atomicop then
//!     return !IsFeatureImplemented(FEAT_LSE2) || !AllInAlignedQuantity(address, size, 16);
//! elsif accdesc.acqsc || accdesc.acqpc || accdesc.relsc then
//!     return !IsFeatureImplemented(FEAT_LSE2) ||
//!            (SCTLR_ELx.nAA == '0' && !AllInAlignedQuantity(address, size, 16));
//! else return FALSE;
//! ```
//!
//! So FEAT_LSE2 relaxes the fault for exclusives (LDXR/STXR, LDAXR/STLXR) and LSE atomics as
//! well as for the ordered forms (LDAR/STLR/LDAPR/LDAPUR/STLUR): a misaligned access whose bytes
//! all lie in one 16-byte aligned quantity does not fault, whatever SCTLR_ELx.nAA; nAA only
//! decides whether an *ordered* access crossing that quantity faults (nAA = 1: no fault).
//! Exclusives and atomics crossing it always fault. (An LDXP/STXP is checked on its total size,
//! so a misaligned one never lies in one 16-byte quantity.) The rules do not see SCTLR_ELx.nAA:
//! an ordered access crossing a 16-byte boundary with FEAT_LSE2 is judged "either".

use alloc::format;

use super::{AccessKind, Expectation, FaultExpect};
use crate::attr::MemAttr;
use crate::fault::FaultKind;
use crate::platform::RuleEnv;

const RULE_EXCL_ALIGN: &str =
    "Arm ARM B2.5.2 (AArch64.UnalignedAccessFaults): without FEAT_LSE2 a \
     misaligned Load-Exclusive/Store-Exclusive, Load-Acquire/Store-Release or atomic access \
     generates an Alignment fault regardless of SCTLR_ELx.A";
const RULE_LSE2_CROSS: &str = "Arm ARM B2.5.2 (AArch64.UnalignedAccessFaults): with FEAT_LSE2 a \
     misaligned exclusive or atomic access whose bytes are not all within one 16-byte aligned \
     quantity generates an Alignment fault";
const RULE_LSE2_WITHIN: &str = "Arm ARM B2.5.2 (AArch64.UnalignedAccessFaults): with FEAT_LSE2 \
     and SCTLR_ELx.A = 0, a misaligned exclusive, atomic or Load-Acquire/Store-Release access to \
     Normal memory whose bytes all lie within one 16-byte aligned quantity does not generate an \
     Alignment fault, whatever SCTLR_ELx.nAA";
const RULE_LSE2_NAA: &str = "Arm ARM B2.5.2 (AArch64.UnalignedAccessFaults): with FEAT_LSE2 a \
     misaligned Load-Acquire/Store-Release crossing a 16-byte aligned quantity generates an \
     Alignment fault only when SCTLR_ELx.nAA = 0 (nAA is not known to the rules)";
const RULE_LSE2_UNKNOWN: &str = "Arm ARM B2.5.2 (AArch64.UnalignedAccessFaults): whether a \
     misaligned exclusive, atomic or Load-Acquire/Store-Release access within one 16-byte aligned \
     quantity faults depends on FEAT_LSE2, which cannot be read here";
const RULE_DEVICE_ALIGN: &str =
    "Arm ARM B2.5.2 (AArch64.S1HasAlignmentFault): an unaligned access \
     to any type of Device memory generates an Alignment fault, whatever the instruction and \
     FEAT_LSE2, and whatever the leaf size (4 KiB page, 2 MiB or 1 GiB block: the memory type \
     comes from the descriptor's AttrIndx alone, D8.3)";
const RULE_SCTLR_A: &str =
    "Arm ARM B2.5.2: with SCTLR_EL1.A = 1 an unaligned access to Normal memory generates an Alignment fault";
const RULE_NORMAL_UNALIGNED: &str =
    "Arm ARM B2.5.2: with SCTLR_EL1.A = 0 unaligned LDR/STR/LDP/STP \
     to Normal memory are permitted (not single-copy atomic as a whole)";
const RULE_MMU_OFF: &str = "Arm ARM D8.2.11: with stage 1 translation disabled at EL1 every data \
     access is treated as Device-nGnRnE";
const RULE_EXCL_NONWB: &str = "Arm ARM B2.9.5: whether exclusives to memory other than Normal \
     inner/outer write-back shareable are supported is IMPLEMENTATION DEFINED (they may fault or never succeed)";
const RULE_ATOMIC_RESTRICT: &str = "Arm ARM B2.2.6: an implementation may support atomic \
     instructions only for some memory types; elsewhere they may generate an IMPLEMENTATION \
     DEFINED abort (DFSC 0b110101, unsupported exclusive or atomic access)";
/// [`RULE_LSE2_WITHIN`] and [`RULE_EXCL_NONWB`] (`Expectation::rule` is one static string).
const RULE_LSE2_WITHIN_EXCL_NONWB: &str = "Arm ARM B2.5.2 (AArch64.UnalignedAccessFaults): with \
     FEAT_LSE2 and SCTLR_ELx.A = 0, a misaligned exclusive within one 16-byte aligned quantity of \
     Normal memory does not generate an Alignment fault; B2.9.5: whether exclusives to memory other \
     than Normal inner/outer write-back shareable are supported is IMPLEMENTATION DEFINED";
/// [`RULE_LSE2_WITHIN`] and [`RULE_ATOMIC_RESTRICT`].
const RULE_LSE2_WITHIN_ATOMIC_RESTRICT: &str = "Arm ARM B2.5.2 (AArch64.UnalignedAccessFaults): \
     with FEAT_LSE2 and SCTLR_ELx.A = 0, a misaligned atomic access within one 16-byte aligned \
     quantity of Normal memory does not generate an Alignment fault; B2.2.6: atomic instructions \
     may be supported only for some memory types (IMPLEMENTATION DEFINED abort elsewhere)";
const RULE_ALIGNED_OK: &str =
    "Arm ARM B2.5.2: naturally aligned accesses never generate an Alignment fault";

/// The attribute an access really has: with the MMU off everything is Device-nGnRnE; with the
/// data caches off (SCTLR_EL1.C = 0, `caches=off`) every Normal access is Non-cacheable (Arm ARM
/// D19.2 SCTLR_EL1.C: "All data access to Normal memory ... are Non-cacheable"), Device stays
/// Device. The leaf size (`mapping=`) changes nothing here: a block descriptor's AttrIndx selects
/// the same MAIR attribute as a page descriptor's (D8.3).
pub fn effective_attr(attr: MemAttr, env: &RuleEnv) -> MemAttr {
    if !env.mmu_on {
        MemAttr::DeviceNGnRnE
    } else if !env.map.caches && !attr.is_arm_device() {
        MemAttr::NormalNc
    } else {
        attr
    }
}

fn within16(addr: usize, bytes: usize) -> bool {
    addr / 16 == (addr + bytes - 1) / 16
}

/// Whether `width`-bit access `kind` at absolute address `addr` must, may or must not fault.
///
/// `width` is the access size the alignment check uses: for LDXP/STXP of two 64-bit registers
/// it is 128 (Arm ARM B2.5.2: a pair exclusive must be aligned to the total size); for LDP/STP it
/// is the element size. `lse2` is whether the CPU implements FEAT_LSE2 (`None`: unknown).
pub fn fault_expectation(
    kind: AccessKind,
    width: u32,
    addr: usize,
    attr: MemAttr,
    env: &RuleEnv,
    lse2: Option<bool>,
) -> Expectation {
    let eff = effective_attr(attr, env);
    let bytes = (width / 8).max(1) as usize;
    let misaligned = bytes > 1 && !addr.is_multiple_of(bytes);
    let device = eff.is_arm_device();
    let mmu_note = if env.mmu_on {
        ""
    } else {
        " (MMU off: Device-nGnRnE)"
    };
    let fault = |text: alloc::string::String, rule: &'static str| Expectation {
        expect: FaultExpect::Fault(FaultKind::Alignment),
        text,
        rule,
    };
    let ordered_or_atomic = matches!(
        kind,
        AccessKind::Exclusive | AccessKind::AcquireRelease | AccessKind::Atomic
    );
    // Set when a misaligned access is architecturally free of alignment faults (FEAT_LSE2):
    // judged like an aligned one below, with this rule.
    let mut lse2_relaxed = false;
    if misaligned {
        if device {
            return fault(
                format!("alignment fault: unaligned access to Device memory{mmu_note}"),
                if env.mmu_on {
                    RULE_DEVICE_ALIGN
                } else {
                    RULE_MMU_OFF
                },
            );
        }
        if env.align_check {
            return fault("alignment fault: SCTLR_EL1.A = 1".into(), RULE_SCTLR_A);
        }
        if !ordered_or_atomic {
            return Expectation {
                expect: FaultExpect::NoFault,
                text: "no fault: unaligned access to Normal memory with SCTLR_EL1.A = 0".into(),
                rule: RULE_NORMAL_UNALIGNED,
            };
        }
        let inside = within16(addr, bytes);
        match (lse2, inside) {
            (Some(false), _) => {
                return fault(
                    format!(
                        "alignment fault: misaligned {} access (no FEAT_LSE2)",
                        kind_name(kind)
                    ),
                    RULE_EXCL_ALIGN,
                )
            }
            (None, true) => {
                return Expectation {
                    expect: FaultExpect::Either,
                    text: format!(
                        "alignment fault without FEAT_LSE2, none with it: misaligned {} access \
                         within a 16-byte quantity, FEAT_LSE2 unknown here",
                        kind_name(kind)
                    ),
                    rule: RULE_LSE2_UNKNOWN,
                }
            }
            (_, false) if kind == AccessKind::AcquireRelease && lse2 == Some(true) => {
                return Expectation {
                    expect: FaultExpect::Either,
                    text: "alignment fault if SCTLR_EL1.nAA = 0, none if 1: FEAT_LSE2, misaligned \
                           acquire/release access crossing a 16-byte quantity"
                        .into(),
                    rule: RULE_LSE2_NAA,
                }
            }
            (_, false) => {
                return fault(
                    format!(
                        "alignment fault: misaligned {} access crossing a 16-byte quantity{}",
                        kind_name(kind),
                        if lse2 == Some(true) {
                            " (FEAT_LSE2 does not relax it)"
                        } else {
                            ""
                        }
                    ),
                    if lse2 == Some(true) {
                        RULE_LSE2_CROSS
                    } else {
                        RULE_EXCL_ALIGN
                    },
                )
            }
            (Some(true), true) => lse2_relaxed = true,
        }
    }
    let how = if lse2_relaxed {
        "no alignment fault (FEAT_LSE2: misaligned within one 16-byte quantity)"
    } else {
        "no alignment fault"
    };
    if kind == AccessKind::Exclusive && eff != MemAttr::NormalWb {
        return Expectation {
            expect: FaultExpect::Either,
            text: format!(
                "{how}; exclusives on {} may fault (IMPLEMENTATION DEFINED) or succeed{mmu_note}",
                eff.name()
            ),
            rule: if lse2_relaxed {
                RULE_LSE2_WITHIN_EXCL_NONWB
            } else {
                RULE_EXCL_NONWB
            },
        };
    }
    if kind == AccessKind::Atomic && eff != MemAttr::NormalWb {
        return Expectation {
            expect: FaultExpect::Either,
            text: format!(
                "{how}; LSE atomics on {} may take an IMPLEMENTATION DEFINED abort or succeed{mmu_note}",
                eff.name()
            ),
            rule: if lse2_relaxed {
                RULE_LSE2_WITHIN_ATOMIC_RESTRICT
            } else {
                RULE_ATOMIC_RESTRICT
            },
        };
    }
    if lse2_relaxed {
        return Expectation {
            expect: FaultExpect::NoFault,
            text: format!(
                "no fault: FEAT_LSE2, misaligned {} access within one 16-byte quantity",
                kind_name(kind)
            ),
            rule: RULE_LSE2_WITHIN,
        };
    }
    Expectation {
        expect: FaultExpect::NoFault,
        text: format!("no fault: naturally aligned{mmu_note}"),
        rule: RULE_ALIGNED_OK,
    }
}

fn kind_name(kind: AccessKind) -> &'static str {
    match kind {
        AccessKind::Exclusive => "exclusive",
        AccessKind::AcquireRelease => "acquire/release",
        AccessKind::Atomic => "atomic",
        AccessKind::Load => "load",
        AccessKind::Store => "store",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attr::Arch;
    use crate::platform::Privilege;
    use crate::rules::Placement;

    fn env(mmu_on: bool, align_check: bool) -> RuleEnv {
        RuleEnv {
            arch: Arch::Aarch64,
            privilege: Privilege::El(1),
            mmu_on,
            align_check,
            line: 64,
            page: 4096,
            map: crate::mapping::Variant::DEFAULT,
        }
    }

    /// A page-aligned arena base, as the platforms hand out.
    const BASE: usize = 0x4000_0000;

    fn at(p: Placement, w: u32) -> usize {
        BASE + p.offset_in_arena(w, 64, 4096)
    }

    fn fx(
        kind: AccessKind,
        w: u32,
        a: MemAttr,
        p: Placement,
        e: &RuleEnv,
        lse2: bool,
    ) -> FaultExpect {
        fault_expectation(kind, w, at(p, w), a, e, Some(lse2)).expect
    }

    const ALIGN: FaultExpect = FaultExpect::Fault(FaultKind::Alignment);

    #[test]
    fn mmu_off_every_misaligned_access_faults() {
        for lse2 in [false, true] {
            for kind in [AccessKind::Load, AccessKind::Store, AccessKind::Exclusive] {
                for p in [
                    Placement::Misaligned,
                    Placement::CrossLine,
                    Placement::CrossPage,
                ] {
                    let e = fx(kind, 64, MemAttr::NormalWb, p, &env(false, false), lse2);
                    assert_eq!(e, ALIGN, "{kind:?} {p:?}");
                }
            }
        }
    }

    #[test]
    fn normal_wb_unaligned_plain_access_is_fine_without_a_bit() {
        let e = env(true, false);
        assert_eq!(
            fx(
                AccessKind::Load,
                64,
                MemAttr::NormalWb,
                Placement::Misaligned,
                &e,
                false
            ),
            FaultExpect::NoFault
        );
        let e = env(true, true);
        assert_eq!(
            fx(
                AccessKind::Load,
                64,
                MemAttr::NormalWb,
                Placement::Misaligned,
                &e,
                false
            ),
            ALIGN
        );
    }

    #[test]
    fn misaligned_exclusive_faults_on_every_attr_without_lse2() {
        for &a in Arch::Aarch64.attrs() {
            let e = fx(
                AccessKind::Exclusive,
                32,
                a,
                Placement::Misaligned,
                &env(true, false),
                false,
            );
            assert_eq!(e, ALIGN, "{a}");
        }
    }

    /// AArch64.UnalignedAccessFaults(): with FEAT_LSE2, exclusives and atomics within one 16-byte
    /// quantity do not fault (on Normal memory), crossing it they do; ordered forms crossing it
    /// depend on SCTLR_ELx.nAA; Device memory and SCTLR_ELx.A = 1 fault regardless.
    #[test]
    fn lse2_relaxes_exclusive_atomic_and_ordered_within_16_bytes() {
        let e = env(true, false);
        for kind in [
            AccessKind::Exclusive,
            AccessKind::Atomic,
            AccessKind::AcquireRelease,
        ] {
            for w in [16, 32, 64] {
                // Arena offset 65: bytes 65..65+w/8 lie in the 16-byte quantity at 64.
                assert_eq!(
                    fx(kind, w, MemAttr::NormalWb, Placement::Misaligned, &e, true),
                    FaultExpect::NoFault,
                    "{kind:?} {w}"
                );
                assert_eq!(
                    fx(kind, w, MemAttr::NormalWb, Placement::Misaligned, &e, false),
                    ALIGN,
                    "{kind:?} {w}"
                );
                for p in [Placement::CrossLine, Placement::CrossPage] {
                    let want = if kind == AccessKind::AcquireRelease {
                        FaultExpect::Either
                    } else {
                        ALIGN
                    };
                    assert_eq!(
                        fx(kind, w, MemAttr::NormalWb, p, &e, true),
                        want,
                        "{kind:?} {w} {p:?}"
                    );
                }
                for a in [
                    MemAttr::DeviceNGnRnE,
                    MemAttr::DeviceNGnRE,
                    MemAttr::DeviceGRE,
                ] {
                    assert_eq!(
                        fx(kind, w, a, Placement::Misaligned, &e, true),
                        ALIGN,
                        "{kind:?} {a}"
                    );
                }
                assert_eq!(
                    fx(
                        kind,
                        w,
                        MemAttr::NormalWb,
                        Placement::Misaligned,
                        &env(true, true),
                        true
                    ),
                    ALIGN
                );
            }
        }
        // Off Normal Write-Back, the relaxed exclusive/atomic is still IMPLEMENTATION DEFINED.
        let x = fault_expectation(
            AccessKind::Exclusive,
            64,
            at(Placement::Misaligned, 64),
            MemAttr::NormalNc,
            &e,
            Some(true),
        );
        assert_eq!(x.expect, FaultExpect::Either);
        assert!(x.rule.contains("UnalignedAccessFaults") && x.rule.contains("B2.9.5"));
        // A 128-bit LDXP is checked on its total size: never within a 16-byte quantity.
        assert_eq!(
            fx(
                AccessKind::Exclusive,
                128,
                MemAttr::NormalWb,
                Placement::Misaligned,
                &e,
                true
            ),
            ALIGN
        );
        // FEAT_LSE2 unknown: either.
        let x = fault_expectation(
            AccessKind::Exclusive,
            64,
            at(Placement::Misaligned, 64),
            MemAttr::NormalWb,
            &e,
            None,
        );
        assert_eq!(x.expect, FaultExpect::Either);
    }

    #[test]
    fn device_unaligned_faults_and_aligned_exclusive_is_impdef() {
        let e = env(true, false);
        assert_eq!(
            fx(
                AccessKind::Store,
                16,
                MemAttr::DeviceGRE,
                Placement::CrossLine,
                &e,
                false
            ),
            ALIGN
        );
        let x = fault_expectation(
            AccessKind::Exclusive,
            64,
            at(Placement::Aligned, 64),
            MemAttr::DeviceNGnRnE,
            &e,
            Some(false),
        );
        assert_eq!(x.expect, FaultExpect::Either);
        assert!(x.admits(Some(FaultKind::UnsupportedAtomic)) && x.admits(None));
        let x = fault_expectation(
            AccessKind::Exclusive,
            64,
            at(Placement::Aligned, 64),
            MemAttr::NormalWb,
            &e,
            Some(false),
        );
        assert_eq!(x.expect, FaultExpect::NoFault);
        assert!(!x.admits(Some(FaultKind::Alignment)));
    }

    #[test]
    fn pair_exclusive_needs_total_size_alignment() {
        // 128-bit LDXP at a 64-bit aligned but not 128-bit aligned address is misaligned.
        assert!(Placement::CrossLine.is_misaligned(128, 64, 4096));
        assert_eq!(
            fx(
                AccessKind::Exclusive,
                128,
                MemAttr::NormalWb,
                Placement::CrossLine,
                &env(true, false),
                false
            ),
            ALIGN
        );
    }
}
