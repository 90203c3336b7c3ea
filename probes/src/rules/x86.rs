//! x86-64 fault rules at the privilege the probes run at. Intel SDM Vol. 3A 6.15 "Interrupt 17 —
//! Alignment Check Exception (#AC)": alignment checking happens only at CPL 3 with CR0.AM = 1 and
//! RFLAGS.AC = 1. Intel SDM Vol. 2A "CMPXCHG8B/CMPXCHG16B": CMPXCHG16B with an operand not aligned
//! on 16 bytes raises #GP(0). Intel SDM Vol. 2B "MOVDQA": a misaligned operand raises #GP(0).
//! Intel SDM Vol. 3A 9.1.2.2 "Software Controlled Bus Locking": a LOCKed access that spans cache
//! lines is a split lock; it executes atomically (a bus lock) unless split-lock detection is on.

use alloc::format;

use super::{AccessKind, Expectation, FaultExpect, Placement};
use crate::attr::MemAttr;
use crate::fault::FaultKind;
use crate::platform::{Privilege, RuleEnv};

const RULE_AC: &str =
    "Intel SDM Vol. 3A 6.15: #AC is raised only at CPL 3 with CR0.AM = 1 and RFLAGS.AC = 1";
const RULE_CX16: &str =
    "Intel SDM Vol. 2A CMPXCHG16B: the destination must be 16-byte aligned, else #GP(0)";
const RULE_MOVDQA: &str =
    "Intel SDM Vol. 2B MOVDQA: a memory operand not aligned on 16 bytes raises #GP(0)";
const RULE_SPLIT_LOCK: &str =
    "Intel SDM Vol. 3A 9.1.2.2: a LOCKed access spanning two cache lines is a split \
     lock, executed atomically with a bus lock (#AC only if split-lock detection is enabled)";
const RULE_AC_VECTOR: &str =
    "Intel SDM Vol. 3A 6.15: MOVUPS/MOVUPD/MOVDQU/LDDQU may or may not raise #AC \
     for an operand not aligned on 8 bytes, depending on the processor";
const RULE_ALIGNED: &str = "Intel SDM Vol. 3A 6.15: aligned accesses never raise #AC";

pub fn fault_expectation(
    kind: AccessKind,
    width: u32,
    _attr: MemAttr,
    placement: Placement,
    env: &RuleEnv,
) -> Expectation {
    let misaligned = placement.is_misaligned(width, env.line, env.page);
    let cpl3_ac = env.align_check && env.privilege == Privilege::Ring(3);
    if !misaligned {
        return Expectation {
            expect: FaultExpect::NoFault,
            text: "no fault: naturally aligned".into(),
            rule: RULE_ALIGNED,
        };
    }
    match kind {
        AccessKind::Cmpxchg16b => Expectation {
            expect: FaultExpect::Fault(FaultKind::GeneralProtection),
            text: "#GP(0): CMPXCHG16B operand not 16-byte aligned".into(),
            rule: RULE_CX16,
        },
        AccessKind::AlignedVector => Expectation {
            expect: FaultExpect::Fault(FaultKind::GeneralProtection),
            text: "#GP(0): MOVDQA operand not 16-byte aligned".into(),
            rule: RULE_MOVDQA,
        },
        // 16-byte unaligned vector moves (MOVDQU/MOVUPS): SDM Vol. 3A 6.15 lists them among the
        // instructions that may or may not raise #AC when the operand is not 8-byte aligned; an
        // 8-byte aligned one does not.
        AccessKind::Load | AccessKind::Store if cpl3_ac && width == 128 => {
            if !placement
                .offset_in_arena(width, env.line, env.page)
                .is_multiple_of(8)
            {
                Expectation {
                    expect: FaultExpect::Either,
                    text: "#AC or no fault: 128-bit unaligned vector move not 8-byte aligned at CPL 3 \
                           (processor-dependent)"
                        .into(),
                    rule: RULE_AC_VECTOR,
                }
            } else {
                Expectation {
                    expect: FaultExpect::NoFault,
                    text: "no fault: 128-bit unaligned vector move on an 8-byte boundary".into(),
                    rule: RULE_AC_VECTOR,
                }
            }
        }
        _ if cpl3_ac => Expectation {
            expect: FaultExpect::Fault(FaultKind::Alignment),
            text: "#AC: misaligned access at CPL 3 with CR0.AM and RFLAGS.AC set".into(),
            rule: RULE_AC,
        },
        AccessKind::Locked if placement != Placement::Misaligned => Expectation {
            expect: FaultExpect::NoFault,
            text:
                "no fault: split lock (atomic via bus lock), unless split-lock detection is enabled"
                    .into(),
            rule: RULE_SPLIT_LOCK,
        },
        _ => Expectation {
            expect: FaultExpect::NoFault,
            text: format!(
                "no fault: alignment is not checked at {}",
                match env.privilege {
                    Privilege::Ring(r) => format!("ring {r}"),
                    Privilege::User => "user level without AC".into(),
                    Privilege::El(_) => "this level".into(),
                }
            ),
            rule: RULE_AC,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attr::Arch;

    fn env(privilege: Privilege, align_check: bool) -> RuleEnv {
        RuleEnv {
            arch: Arch::X86_64,
            privilege,
            mmu_on: true,
            align_check,
            line: 64,
            page: 4096,
            map: crate::mapping::Variant::DEFAULT,
        }
    }

    #[test]
    fn ring0_never_ac() {
        for p in Placement::ALL {
            let e = fault_expectation(
                AccessKind::Load,
                64,
                MemAttr::Wb,
                p,
                &env(Privilege::Ring(0), true),
            );
            assert_eq!(e.expect, FaultExpect::NoFault, "{p:?}");
        }
    }

    #[test]
    fn ring3_with_ac_faults_when_misaligned() {
        let e = fault_expectation(
            AccessKind::Store,
            32,
            MemAttr::Uc,
            Placement::Misaligned,
            &env(Privilege::Ring(3), true),
        );
        assert_eq!(e.expect, FaultExpect::Fault(FaultKind::Alignment));
    }

    #[test]
    fn cmpxchg16b_needs_16_byte_alignment() {
        let e = fault_expectation(
            AccessKind::Cmpxchg16b,
            128,
            MemAttr::Wb,
            Placement::CrossLine,
            &env(Privilege::Ring(0), false),
        );
        assert_eq!(e.expect, FaultExpect::Fault(FaultKind::GeneralProtection));
        let e = fault_expectation(
            AccessKind::Cmpxchg16b,
            128,
            MemAttr::Wb,
            Placement::Aligned,
            &env(Privilege::Ring(0), false),
        );
        assert_eq!(e.expect, FaultExpect::NoFault);
    }

    #[test]
    fn unaligned_vector_move_at_cpl3_is_processor_dependent() {
        let e3 = env(Privilege::Ring(3), true);
        let e = fault_expectation(
            AccessKind::Load,
            128,
            MemAttr::Wb,
            Placement::Misaligned,
            &e3,
        );
        assert_eq!(e.expect, FaultExpect::Either);
        let e = fault_expectation(
            AccessKind::Load,
            128,
            MemAttr::Wb,
            Placement::CrossLine,
            &e3,
        );
        assert_eq!(e.expect, FaultExpect::NoFault);
    }

    #[test]
    fn split_lock_is_not_a_fault() {
        let e = fault_expectation(
            AccessKind::Locked,
            64,
            MemAttr::Wb,
            Placement::CrossLine,
            &env(Privilege::Ring(0), false),
        );
        assert_eq!(e.expect, FaultExpect::NoFault);
        assert!(e.text.contains("split lock"));
    }
}
