//! Decoding the faults a probe provokes into the report's `fault` object.
//!
//! aarch64: ESR_ELx per Arm ARM D24.2.46 (ESR_EL1) — EC in bits \[31:26\], and for Data/Instruction
//! Aborts the fault status code (DFSC/IFSC) in ISS bits \[5:0\] (Arm ARM D24.2.46, "ISS encoding
//! for an exception from a Data Abort"). x86: exception vectors per Intel SDM Vol. 3A 6.3.1 /
//! Table 6-1, #PF error code per SDM Vol. 3A 4.7. Hosted: POSIX signal numbers and si_code
//! (Linux values), with x86-64 Linux's SIGSEGV/`SI_KERNEL` named `general-protection` like bare
//! metal's #GP.

use alloc::format;
use alloc::string::{String, ToString};

use crate::record::{hex, FaultRecord};

/// What a fault was, coarsely (`fault.kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    Alignment,
    Translation,
    Permission,
    AccessFlag,
    External,
    /// aarch64 DFSC 0b110101: an exclusive or atomic access to memory that does not support it
    /// ("Unsupported exclusive or atomic access" in the ESR_ELx DFSC encodings; allowed by Arm ARM
    /// B2.9.5 for exclusives and B2.2.6 for atomics off Normal Write-Back memory, the rules
    /// `rules::aarch64` cites).
    UnsupportedAtomic,
    /// x86 #GP: e.g. a misaligned CMPXCHG16B or MOVDQA operand.
    GeneralProtection,
    /// An undefined or trapped instruction (aarch64 EC 0x00, x86 #UD).
    Undefined,
    Other,
}

impl FaultKind {
    pub const fn name(self) -> &'static str {
        match self {
            FaultKind::Alignment => "alignment",
            FaultKind::Translation => "translation",
            FaultKind::Permission => "permission",
            FaultKind::AccessFlag => "access-flag",
            FaultKind::External => "external",
            FaultKind::UnsupportedAtomic => "unsupported-atomic",
            FaultKind::GeneralProtection => "general-protection",
            FaultKind::Undefined => "undefined",
            FaultKind::Other => "other",
        }
    }
}

/// A fault as the hardware (or OS) reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawFault {
    Aarch64 {
        esr: u64,
        far: u64,
        elr: u64,
    },
    X86 {
        vector: u8,
        error_code: Option<u64>,
        cr2: u64,
        rip: u64,
    },
    /// OS-hosted: a signal delivered for the faulting access.
    Signal {
        signo: i32,
        code: i32,
        addr: u64,
        pc: u64,
    },
}

/// aarch64 exception class names (Arm ARM D24.2.46, Table "ESR_ELx.EC").
pub fn esr_class_name(ec: u64) -> &'static str {
    match ec {
        0x00 => "unknown reason (undefined instruction)",
        0x01 => "trapped WFI/WFE",
        0x07 => "SVE/SIMD/FP access trap",
        0x0e => "illegal execution state",
        0x15 => "SVC (AArch64)",
        0x16 => "HVC (AArch64)",
        0x17 => "SMC (AArch64)",
        0x18 => "trapped MSR/MRS/system instruction",
        0x20 => "instruction abort from lower EL",
        0x21 => "instruction abort, same EL",
        0x22 => "PC alignment fault",
        0x24 => "data abort from lower EL",
        0x25 => "data abort, same EL",
        0x26 => "SP alignment fault",
        0x2f => "SError",
        0x30 | 0x31 => "breakpoint",
        0x32 | 0x33 => "software step",
        0x34 | 0x35 => "watchpoint",
        0x3c => "BRK instruction",
        _ => "other exception class",
    }
}

/// Name of an aarch64 data/instruction fault status code (DFSC/IFSC).
pub fn fsc_name(fsc: u64) -> &'static str {
    match fsc {
        0x00..=0x03 => "address size fault",
        0x04..=0x07 => "translation fault",
        0x08..=0x0b => "access flag fault",
        0x0c..=0x0f => "permission fault",
        0x10 => "synchronous external abort",
        0x11 => "synchronous tag check fault",
        0x14..=0x17 => "synchronous external abort on table walk",
        0x18 => "synchronous parity/ECC error",
        0x21 => "alignment fault",
        0x30 => "TLB conflict abort",
        0x31 => "unsupported atomic hardware update fault",
        0x34 => "implementation defined fault (lockdown)",
        0x35 => "implementation defined fault (unsupported exclusive or atomic access)",
        _ => "other fault status",
    }
}

/// x86 exception mnemonics (SDM Vol. 3A Table 6-1).
pub fn x86_vector_name(v: u8) -> &'static str {
    match v {
        0 => "#DE",
        1 => "#DB",
        2 => "NMI",
        3 => "#BP",
        4 => "#OF",
        5 => "#BR",
        6 => "#UD",
        7 => "#NM",
        8 => "#DF",
        10 => "#TS",
        11 => "#NP",
        12 => "#SS",
        13 => "#GP",
        14 => "#PF",
        16 => "#MF",
        17 => "#AC",
        18 => "#MC",
        19 => "#XM",
        20 => "#VE",
        21 => "#CP",
        _ => "#?",
    }
}

/// Whether x86 vector `v` pushes an error code (SDM Vol. 3A Table 6-1).
pub const fn x86_vector_has_error_code(v: u8) -> bool {
    matches!(v, 8 | 10 | 11 | 12 | 13 | 14 | 17 | 21 | 29 | 30)
}

const SIGILL: i32 = 4;
const SIGBUS: i32 = 7;
const SIGSEGV: i32 = 11;
const BUS_ADRALN: i32 = 1;
const BUS_ADRERR: i32 = 2;
const SEGV_MAPERR: i32 = 1;
const SEGV_ACCERR: i32 = 2;
/// `si_code` of a signal the kernel raised itself rather than for a page fault (Linux
/// `include/uapi/asm-generic/siginfo.h`: `SI_KERNEL` = 0x80).
const SI_KERNEL: i32 = 0x80;

/// Whether SIGSEGV with `SI_KERNEL` means #GP: on x86-64 Linux a general-protection fault in
/// user mode (`exc_general_protection` in `arch/x86/kernel/traps.c`) is delivered as SIGSEGV by
/// `force_sig`, whose `si_code` is `SI_KERNEL` and `si_addr` 0. That is how the probes' #GP
/// faults reach user space: a misaligned MOVDQA (a 16-byte SSE operand that is not 16-byte
/// aligned) or CMPXCHG16B (operand not 16-byte aligned) raise #GP(0) (SDM Vol. 3A 6.15,
/// "Interrupt 13—General Protection Exception (#GP)"; Vol. 2A CMPXCHG8B/CMPXCHG16B, Vol. 2B
/// MOVDQA). Elsewhere (aarch64 Linux, other OSes) `SI_KERNEL` is not tied to one exception, so
/// the kind stays `other`.
const SI_KERNEL_IS_GP: bool = cfg!(all(target_os = "linux", target_arch = "x86_64"));

impl RawFault {
    pub fn kind(&self) -> FaultKind {
        match *self {
            RawFault::Aarch64 { esr, .. } => {
                let ec = (esr >> 26) & 0x3f;
                match ec {
                    0x00 => FaultKind::Undefined,
                    0x22 | 0x26 => FaultKind::Alignment,
                    0x20 | 0x21 | 0x24 | 0x25 => match esr & 0x3f {
                        0x04..=0x07 => FaultKind::Translation,
                        0x08..=0x0b => FaultKind::AccessFlag,
                        0x0c..=0x0f => FaultKind::Permission,
                        0x10 | 0x14..=0x18 => FaultKind::External,
                        0x21 => FaultKind::Alignment,
                        0x35 => FaultKind::UnsupportedAtomic,
                        _ => FaultKind::Other,
                    },
                    _ => FaultKind::Other,
                }
            }
            RawFault::X86 {
                vector, error_code, ..
            } => match vector {
                17 => FaultKind::Alignment,
                13 => FaultKind::GeneralProtection,
                6 => FaultKind::Undefined,
                // #PF error code bit 0 (P): 0 = non-present page, 1 = protection violation.
                14 => match error_code {
                    Some(e) if e & 1 == 1 => FaultKind::Permission,
                    _ => FaultKind::Translation,
                },
                18 => FaultKind::External,
                _ => FaultKind::Other,
            },
            RawFault::Signal { signo, code, .. } => match (signo, code) {
                (SIGBUS, BUS_ADRALN) => FaultKind::Alignment,
                (SIGBUS, BUS_ADRERR) => FaultKind::External,
                (SIGSEGV, SEGV_MAPERR) => FaultKind::Translation,
                (SIGSEGV, SEGV_ACCERR) => FaultKind::Permission,
                (SIGSEGV, SI_KERNEL) if SI_KERNEL_IS_GP => FaultKind::GeneralProtection,
                (SIGILL, _) => FaultKind::Undefined,
                _ => FaultKind::Other,
            },
        }
    }

    /// A one-line human description.
    pub fn describe(&self) -> String {
        match *self {
            RawFault::Aarch64 { esr, .. } => {
                let ec = (esr >> 26) & 0x3f;
                if matches!(ec, 0x20 | 0x21 | 0x24 | 0x25) {
                    let fsc = esr & 0x3f;
                    // ISS.WnR (bit 6) tells a write from a read for data aborts.
                    let rw = if ec >= 0x24 {
                        if esr & (1 << 6) != 0 {
                            ", write"
                        } else {
                            ", read"
                        }
                    } else {
                        ""
                    };
                    format!(
                        "EC {ec:#04x} {}; FSC {fsc:#04x} {}{rw}",
                        esr_class_name(ec),
                        fsc_name(fsc)
                    )
                } else {
                    format!("EC {ec:#04x} {}", esr_class_name(ec))
                }
            }
            RawFault::X86 { vector, .. } => {
                format!("vector {vector} {}", x86_vector_name(vector))
            }
            RawFault::Signal { signo, code, .. } => {
                let name = match signo {
                    SIGBUS => "SIGBUS",
                    SIGSEGV => "SIGSEGV",
                    SIGILL => "SIGILL",
                    _ => "signal",
                };
                let why = match (signo, code) {
                    (SIGSEGV, SI_KERNEL) if SI_KERNEL_IS_GP => {
                        " (SI_KERNEL: #GP in user mode, no fault address)"
                    }
                    (SIGBUS, BUS_ADRALN) => " (BUS_ADRALN)",
                    (SIGBUS, BUS_ADRERR) => " (BUS_ADRERR)",
                    (SIGSEGV, SEGV_MAPERR) => " (SEGV_MAPERR)",
                    (SIGSEGV, SEGV_ACCERR) => " (SEGV_ACCERR)",
                    _ => "",
                };
                format!("{name} ({signo}), si_code {code}{why}")
            }
        }
    }

    pub fn to_record(&self) -> FaultRecord {
        let mut r = FaultRecord {
            kind: self.kind().name().to_string(),
            esr: None,
            far: None,
            vector: None,
            error_code: None,
            detail: Some(self.describe()),
        };
        match *self {
            RawFault::Aarch64 { esr, far, .. } => {
                r.esr = Some(hex(esr));
                r.far = Some(hex(far));
            }
            RawFault::X86 {
                vector,
                error_code,
                cr2,
                ..
            } => {
                r.vector = Some(format!("{vector} {}", x86_vector_name(vector)));
                r.error_code = error_code.map(hex);
                if vector == 14 {
                    r.far = Some(hex(cr2));
                }
            }
            RawFault::Signal { addr, .. } => {
                // A #GP has no fault address (si_addr is 0 for SI_KERNEL), as on bare metal
                // where only #PF reports one (CR2).
                if r.kind != FaultKind::GeneralProtection.name() {
                    r.far = Some(hex(addr));
                }
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a64(esr: u64) -> RawFault {
        RawFault::Aarch64 {
            esr,
            far: 0x4000_0001,
            elr: 0,
        }
    }

    #[test]
    fn platform_facts_alignment_fault_decodes() {
        // PLATFORM-FACTS: misaligned LDR with the MMU off gives ESR_EL1 0x96000021.
        let f = a64(0x9600_0021);
        assert_eq!(f.kind(), FaultKind::Alignment);
        let r = f.to_record();
        assert_eq!(r.kind, "alignment");
        assert_eq!(r.esr.as_deref(), Some("0x96000021"));
        assert_eq!(r.far.as_deref(), Some("0x40000001"));
        assert!(r.detail.unwrap().contains("alignment fault, read"));
    }

    #[test]
    fn aarch64_fault_classes() {
        assert_eq!(a64(0x9600_0045).kind(), FaultKind::Translation); // write, level 1
        assert_eq!(a64(0x9600_000b).kind(), FaultKind::AccessFlag);
        assert_eq!(a64(0x9600_004f).kind(), FaultKind::Permission);
        assert_eq!(a64(0x9600_0010).kind(), FaultKind::External);
        assert_eq!(a64(0x9600_0035).kind(), FaultKind::UnsupportedAtomic);
        assert_eq!(a64(0x8600_0007).kind(), FaultKind::Translation); // instruction abort
        assert_eq!(a64(0x0200_0000).kind(), FaultKind::Undefined);
        assert_eq!(a64(0x8a00_0000).kind(), FaultKind::Alignment); // PC alignment
        assert!(a64(0x9600_0061).describe().contains("write"));
    }

    #[test]
    fn x86_faults() {
        let pf = |e| RawFault::X86 {
            vector: 14,
            error_code: Some(e),
            cr2: 0xdead,
            rip: 0,
        };
        assert_eq!(pf(0).kind(), FaultKind::Translation);
        assert_eq!(pf(3).kind(), FaultKind::Permission);
        assert_eq!(pf(3).to_record().far.as_deref(), Some("0xdead"));
        let ac = RawFault::X86 {
            vector: 17,
            error_code: Some(0),
            cr2: 0,
            rip: 0,
        };
        assert_eq!(ac.kind(), FaultKind::Alignment);
        assert_eq!(ac.to_record().vector.as_deref(), Some("17 #AC"));
        let gp = RawFault::X86 {
            vector: 13,
            error_code: Some(0),
            cr2: 0,
            rip: 0,
        };
        assert_eq!(gp.to_record().kind, "general-protection");
        assert!(x86_vector_has_error_code(13) && !x86_vector_has_error_code(6));
    }

    #[test]
    fn signals() {
        let s = |signo, code| RawFault::Signal {
            signo,
            code,
            addr: 1,
            pc: 0,
        };
        assert_eq!(s(7, 1).kind(), FaultKind::Alignment);
        assert_eq!(s(11, 1).kind(), FaultKind::Translation);
        assert_eq!(s(11, 2).kind(), FaultKind::Permission);
        assert_eq!(s(4, 0).kind(), FaultKind::Undefined);
        assert!(s(7, 1).describe().contains("BUS_ADRALN"));
        assert_eq!(s(7, 1).to_record().far.as_deref(), Some("0x1"));
    }

    #[test]
    fn hosted_gp_is_general_protection_on_x86_64_linux() {
        // A misaligned MOVDQA / CMPXCHG16B under Linux on x86-64: SIGSEGV, si_code SI_KERNEL.
        let gp = RawFault::Signal {
            signo: 11,
            code: 0x80,
            addr: 0,
            pc: 0x1234,
        };
        let r = gp.to_record();
        let detail = r.detail.clone().unwrap();
        assert!(detail.contains("SIGSEGV (11), si_code 128"), "{detail}");
        if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
            assert_eq!(gp.kind(), FaultKind::GeneralProtection);
            assert_eq!(r.kind, "general-protection");
            // The same kind bare metal reports for vector 13, so `compare` sees no difference.
            let bare = RawFault::X86 {
                vector: 13,
                error_code: Some(0),
                cr2: 0,
                rip: 0,
            };
            assert_eq!(r.kind, bare.to_record().kind);
            assert!(detail.contains("SI_KERNEL"), "{detail}");
            assert_eq!(r.far, None);
        } else {
            assert_eq!(gp.kind(), FaultKind::Other);
        }
        // Other SIGSEGV codes stay what they were.
        let segv = RawFault::Signal {
            signo: 11,
            code: 3,
            addr: 8,
            pc: 0,
        };
        assert_eq!(segv.kind(), FaultKind::Other);
    }

    #[test]
    fn aarch64_linux_misaligned_exclusive_is_alignment() {
        // arm64 Linux `do_alignment_fault` (DFSC 0x21) sends SIGBUS with BUS_ADRALN and the
        // faulting address, what bare metal reports as ESR DFSC 0x21 `alignment`.
        let f = RawFault::Signal {
            signo: 7,
            code: 1,
            addr: 0x1001,
            pc: 0,
        };
        assert_eq!(f.to_record().kind, a64(0x9600_0021).to_record().kind);
        assert_eq!(f.to_record().far.as_deref(), Some("0x1001"));
    }
}
