//! aarch64 alignment-fault rules (Arm ARM DDI 0487, section B2.5.2 "Alignment of data accesses",
//! B2.9 "Exclusive access instructions and Shareable memory locations", and D8.2.11 for the MMU
//! being off). The cores atomprobe targets first (Cortex-A53/A72, QEMU's models of them) do not
//! implement FEAT_LSE2, whose relaxations for LDAR/STLR/LSE atomics are not modelled here.

use alloc::format;

use super::{AccessKind, Expectation, FaultExpect, Placement};
use crate::attr::MemAttr;
use crate::fault::FaultKind;
use crate::platform::RuleEnv;

const RULE_EXCL_ALIGN: &str = "Arm ARM B2.5.2: a misaligned Load-Exclusive/Store-Exclusive, \
     Load-Acquire/Store-Release or atomic access generates an Alignment fault regardless of SCTLR_ELx.A";
const RULE_DEVICE_ALIGN: &str =
    "Arm ARM B2.5.2: an unaligned access to any type of Device memory generates an Alignment fault";
const RULE_SCTLR_A: &str =
    "Arm ARM B2.5.2: with SCTLR_EL1.A = 1 an unaligned access to Normal memory generates an Alignment fault";
const RULE_NORMAL_UNALIGNED: &str =
    "Arm ARM B2.5.2: with SCTLR_EL1.A = 0 unaligned LDR/STR/LDP/STP \
     to Normal memory are permitted (not single-copy atomic as a whole)";
const RULE_MMU_OFF: &str = "Arm ARM D8.2.11: with stage 1 translation disabled at EL1 every data \
     access is treated as Device-nGnRnE";
const RULE_EXCL_NONWB: &str = "Arm ARM B2.9.5: whether exclusives to memory other than Normal \
     inner/outer write-back shareable are supported is IMPLEMENTATION DEFINED (they may fault or never succeed)";
const RULE_ALIGNED_OK: &str =
    "Arm ARM B2.5.2: naturally aligned accesses never generate an Alignment fault";

/// The attribute an access really has: with the MMU off everything is Device-nGnRnE.
pub fn effective_attr(attr: MemAttr, env: &RuleEnv) -> MemAttr {
    if env.mmu_on {
        attr
    } else {
        MemAttr::DeviceNGnRnE
    }
}

/// Whether `width`-bit access `kind` at `placement` must, may or must not fault.
///
/// `width` is the access size the alignment check uses: for LDXP/STXP of two 64-bit registers
/// it is 128 (Arm ARM B2.5.2: a pair exclusive must be aligned to the total size); for LDP/STP it
/// is the element size.
pub fn fault_expectation(
    kind: AccessKind,
    width: u32,
    attr: MemAttr,
    placement: Placement,
    env: &RuleEnv,
) -> Expectation {
    let eff = effective_attr(attr, env);
    let misaligned = placement.is_misaligned(width, env.line, env.page);
    let device = eff.is_arm_device();
    let mmu_note = if env.mmu_on {
        ""
    } else {
        " (MMU off: Device-nGnRnE)"
    };
    if misaligned {
        let (text, rule) = match kind {
            AccessKind::Exclusive | AccessKind::AcquireRelease | AccessKind::Atomic => (
                format!(
                    "alignment fault: misaligned {} access{mmu_note}",
                    kind_name(kind)
                ),
                RULE_EXCL_ALIGN,
            ),
            _ if device => (
                format!("alignment fault: unaligned access to Device memory{mmu_note}"),
                if env.mmu_on {
                    RULE_DEVICE_ALIGN
                } else {
                    RULE_MMU_OFF
                },
            ),
            _ if env.align_check => ("alignment fault: SCTLR_EL1.A = 1".into(), RULE_SCTLR_A),
            _ => {
                return Expectation {
                    expect: FaultExpect::NoFault,
                    text: "no fault: unaligned access to Normal memory with SCTLR_EL1.A = 0".into(),
                    rule: RULE_NORMAL_UNALIGNED,
                }
            }
        };
        return Expectation {
            expect: FaultExpect::Fault(FaultKind::Alignment),
            text,
            rule,
        };
    }
    if kind == AccessKind::Exclusive && eff != MemAttr::NormalWb {
        return Expectation {
            expect: FaultExpect::Either,
            text: format!(
                "no alignment fault; exclusives on {} may fault (IMPLEMENTATION DEFINED) or succeed{mmu_note}",
                eff.name()
            ),
            rule: RULE_EXCL_NONWB,
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

    fn env(mmu_on: bool, align_check: bool) -> RuleEnv {
        RuleEnv {
            arch: Arch::Aarch64,
            privilege: Privilege::El(1),
            mmu_on,
            align_check,
            line: 64,
            page: 4096,
        }
    }

    #[test]
    fn mmu_off_every_misaligned_access_faults() {
        for kind in [AccessKind::Load, AccessKind::Store, AccessKind::Exclusive] {
            for p in [
                Placement::Misaligned,
                Placement::CrossLine,
                Placement::CrossPage,
            ] {
                let e = fault_expectation(kind, 64, MemAttr::NormalWb, p, &env(false, false));
                assert_eq!(
                    e.expect,
                    FaultExpect::Fault(FaultKind::Alignment),
                    "{kind:?} {p:?}"
                );
            }
        }
    }

    #[test]
    fn normal_wb_unaligned_plain_access_is_fine_without_a_bit() {
        let e = fault_expectation(
            AccessKind::Load,
            64,
            MemAttr::NormalWb,
            Placement::Misaligned,
            &env(true, false),
        );
        assert_eq!(e.expect, FaultExpect::NoFault);
        let e = fault_expectation(
            AccessKind::Load,
            64,
            MemAttr::NormalWb,
            Placement::Misaligned,
            &env(true, true),
        );
        assert_eq!(e.expect, FaultExpect::Fault(FaultKind::Alignment));
    }

    #[test]
    fn misaligned_exclusive_faults_on_every_attr() {
        for &a in Arch::Aarch64.attrs() {
            let e = fault_expectation(
                AccessKind::Exclusive,
                32,
                a,
                Placement::Misaligned,
                &env(true, false),
            );
            assert_eq!(e.expect, FaultExpect::Fault(FaultKind::Alignment), "{a}");
        }
    }

    #[test]
    fn device_unaligned_faults_and_aligned_exclusive_is_impdef() {
        let e = fault_expectation(
            AccessKind::Store,
            16,
            MemAttr::DeviceGRE,
            Placement::CrossLine,
            &env(true, false),
        );
        assert_eq!(e.expect, FaultExpect::Fault(FaultKind::Alignment));
        let e = fault_expectation(
            AccessKind::Exclusive,
            64,
            MemAttr::DeviceNGnRnE,
            Placement::Aligned,
            &env(true, false),
        );
        assert_eq!(e.expect, FaultExpect::Either);
        assert!(e.admits(Some(FaultKind::UnsupportedAtomic)) && e.admits(None));
        let e = fault_expectation(
            AccessKind::Exclusive,
            64,
            MemAttr::NormalWb,
            Placement::Aligned,
            &env(true, false),
        );
        assert_eq!(e.expect, FaultExpect::NoFault);
        assert!(!e.admits(Some(FaultKind::Alignment)));
    }

    #[test]
    fn pair_exclusive_needs_total_size_alignment() {
        // 128-bit LDXP at a 64-bit aligned but not 128-bit aligned address is misaligned.
        assert!(Placement::CrossLine.is_misaligned(128, 64, 4096));
        let e = fault_expectation(
            AccessKind::Exclusive,
            128,
            MemAttr::NormalWb,
            Placement::CrossLine,
            &env(true, false),
        );
        assert_eq!(e.expect, FaultExpect::Fault(FaultKind::Alignment));
    }
}
