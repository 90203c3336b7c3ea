//! Single-copy atomicity: which accesses the architecture promises never to tear, by form, size,
//! alignment and memory type, and what the CPU implements (features the promises depend on).
//!
//! Sources, quoted by section in every record's `rule`:
//! - Arm ARM (DDI 0487) B2.2.1 "Requirements for single-copy atomicity": a load or store of a
//!   single general-purpose register aligned to its size is single-copy atomic; LDP/STP aligned
//!   to the size of each register are two single-copy atomic accesses, one per register; a
//!   Load-Exclusive Pair of two 32-bit quantities is single-copy atomic; a Load-Exclusive Pair of
//!   two 64-bit quantities is single-copy atomic as a whole only when the Store-Exclusive Pair that
//!   follows it succeeds (otherwise each doubleword is); all other accesses are streams of byte
//!   accesses. With FEAT_LSE2 (not on Cortex-A53/A72, nor on QEMU's models of them), loads and
//!   stores to Normal Inner/Outer Write-Back memory whose bytes lie in one 16-byte aligned
//!   quantity are single-copy atomic, and LDP/STP of two 64-bit registers aligned to 16 bytes are
//!   single-copy atomic as a whole. B2.2.2 "Properties of single-copy atomic accesses" says what
//!   that means when sizes differ (a load overlapping a store reads all of the overlap from it or
//!   none of it). B2.2.6 "Possible implementation restrictions on using atomic instructions".
//! - Intel SDM Vol. 3A 9.1.1 "Guaranteed Atomic Operations": byte, aligned word, doubleword and
//!   quadword accesses are atomic (Intel486 / Pentium); P6 and later also unaligned 16-, 32- and
//!   64-bit accesses to *cached* memory that fit within one cache line; 16-bit accesses to uncached
//!   memory that fit within a 32-bit data bus; processors with AVX (CPUID.01H:ECX.AVX[bit 28])
//!   perform the 16-byte accesses of MOVAPD, MOVAPS and MOVDQA (and their VEX.128 / EVEX.128 forms)
//!   atomically — no memory-type condition is stated, and MOVDQU is not in the list. Accesses that
//!   cross a cache line or page are not guaranteed atomic. 9.1.2.2 "Software Controlled Bus
//!   Locking": LOCKed operations are atomic whatever their alignment (a split lock locks the bus).
//! - AMD APM Vol. 2 7.3.2 "Access Atomicity": *cacheable*, naturally aligned single loads or stores
//!   of up to a quadword are atomic, as are misaligned ones of less than a quadword contained
//!   entirely within a naturally aligned quadword (not "within a cache line" as Intel says, nor
//!   within a 16-byte block); processors with AVX extend the naturally aligned, cacheable case to a
//!   double quadword (any instruction, MOVDQU included). Misaligned atomicity otherwise needs XCHG
//!   or a LOCKed instruction. The APM states nothing for uncacheable memory.
//!
//! Where Intel and AMD differ, the record says whose rules it applied (`judged by Intel SDM` /
//! `judged by AMD APM`); on another vendor both must hold (the weaker promise is used).

use alloc::format;
use alloc::string::String;

use super::Expectation;
use crate::attr::{Arch, MemAttr};
use crate::fault::RawFault;
use crate::platform::RuleEnv;

/// Whose manual judged an x86 record (aarch64: Arm).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vendor {
    Arm,
    Intel,
    Amd,
    /// Another x86 vendor or unknown: both Intel's and AMD's promises must hold.
    Other,
}

impl Vendor {
    pub const fn name(self) -> &'static str {
        match self {
            Vendor::Arm => "Arm ARM",
            Vendor::Intel => "Intel SDM",
            Vendor::Amd => "AMD APM",
            Vendor::Other => "Intel SDM and AMD APM (unknown vendor: the weaker promise)",
        }
    }

    /// From the CPUID leaf 0 vendor string.
    pub fn from_cpuid(vendor: &str) -> Vendor {
        match vendor {
            "GenuineIntel" => Vendor::Intel,
            "AuthenticAMD" | "HygonGenuine" => Vendor::Amd,
            _ => Vendor::Other,
        }
    }
}

/// An optional CPU feature a probe needs or a rule depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    /// aarch64 FEAT_LSE: CAS, LDADD, SWP, …
    Lse,
    /// aarch64 FEAT_LRCPC: LDAPR.
    Lrcpc,
    /// aarch64 FEAT_LSE2: 16-byte single-copy atomicity relaxations.
    Lse2,
    /// x86 AVX (16-byte atomicity of aligned SSE moves).
    Avx,
    /// x86 CMPXCHG16B.
    Cx16,
    /// x86 SSE instructions usable (the OS / kernel enabled them: CR4.OSFXSR = 1, CR0.EM = 0).
    Sse,
}

/// Where feature answers came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeatureSource {
    /// MRS of the ID registers (bare metal at EL1).
    IdRegisters,
    /// Linux `getauxval(AT_HWCAP/AT_HWCAP2)`.
    Hwcap,
    /// x86 CPUID.
    Cpuid,
    /// Not known here; the text says why.
    Unknown(&'static str),
}

/// What the CPU implements, as far as it can be told where the probes run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features {
    pub vendor: Vendor,
    pub lse: Option<bool>,
    pub lrcpc: Option<bool>,
    pub lse2: Option<bool>,
    pub avx: Option<bool>,
    pub cx16: Option<bool>,
    pub sse: Option<bool>,
    pub source: FeatureSource,
}

impl Features {
    pub const fn unknown(vendor: Vendor, why: &'static str) -> Features {
        Features {
            vendor,
            lse: None,
            lrcpc: None,
            lse2: None,
            avx: None,
            cx16: None,
            sse: None,
            source: FeatureSource::Unknown(why),
        }
    }

    pub fn has(&self, f: Feature) -> Option<bool> {
        match f {
            Feature::Lse => self.lse,
            Feature::Lrcpc => self.lrcpc,
            Feature::Lse2 => self.lse2,
            Feature::Avx => self.avx,
            Feature::Cx16 => self.cx16,
            Feature::Sse => self.sse,
        }
    }

    /// `Some(reason)` when a probe needing `f` cannot run here.
    pub fn missing(&self, f: Feature) -> Option<String> {
        let (what, idreg, hwcap, cpuid) = match f {
            Feature::Lse => (
                "FEAT_LSE (CAS/LDADD/SWP)",
                "ID_AA64ISAR0_EL1.Atomic = 0b0000",
                "AT_HWCAP has no HWCAP_ATOMICS",
                "",
            ),
            Feature::Lrcpc => (
                "FEAT_LRCPC (LDAPR)",
                "ID_AA64ISAR1_EL1.LRCPC = 0b0000",
                "AT_HWCAP has no HWCAP_LRCPC",
                "",
            ),
            Feature::Lse2 => (
                "FEAT_LSE2",
                "ID_AA64MMFR2_EL1.AT = 0b0000",
                "AT_HWCAP has no HWCAP_USCAT",
                "",
            ),
            Feature::Avx => ("AVX", "", "", "CPUID.01H:ECX.AVX[bit 28] = 0"),
            Feature::Cx16 => ("CMPXCHG16B", "", "", "CPUID.01H:ECX.CMPXCHG16B[bit 13] = 0"),
            Feature::Sse => (
                "usable SSE (MOVDQA/MOVDQU)",
                "",
                "",
                "CR4.OSFXSR = 0 or CR0.EM = 1 (SSE not enabled by the kernel; SSE instructions would raise #UD)",
            ),
        };
        match (self.has(f), self.source) {
            (Some(true), _) => None,
            (Some(false), FeatureSource::IdRegisters) => {
                Some(format!("{idreg}: {what} not implemented"))
            }
            (Some(false), FeatureSource::Hwcap) => Some(format!("{hwcap}: {what} not implemented")),
            (Some(false), FeatureSource::Cpuid) => Some(format!("{cpuid}: {what} not implemented")),
            (Some(false), FeatureSource::Unknown(w)) | (None, FeatureSource::Unknown(w)) => Some(
                format!("cannot tell whether the CPU implements {what}: {w}"),
            ),
            (None, _) => Some(format!(
                "cannot tell whether the CPU implements {what} here"
            )),
        }
    }
}

/// The instruction form of one side of a probe, as far as atomicity rules care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// aarch64 load/store of one general-purpose register: LDR(B/H)/STR(B/H), LDAR/STLR, LDAPR,
    /// LDXR/STXR.
    Single,
    /// aarch64 LDP/STP of two registers of half the width each.
    Pair,
    /// aarch64 LDXP (and nothing else: no successful STXP).
    ExclPair,
    /// aarch64 LDXP followed by a Store-Exclusive Pair of the same value that succeeded.
    ExclPairStored,
    /// x86 MOV of 8 to 64 bits.
    Mov,
    /// x86 MOVDQA / MOVAPS / MOVAPD of 16 bytes.
    MovAligned128,
    /// x86 MOVDQU of 16 bytes.
    MovUnaligned128,
    /// x86 LOCKed read-modify-write (LOCK CMPXCHG/XADD, XCHG, LOCK CMPXCHG16B).
    Locked,
}

/// The atomicity the architecture promises for one access.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Atomicity {
    /// Size in bits of the parts (counted from the access's first byte) each of which is
    /// single-copy atomic: the access width when the whole access is, 8 when only bytes are.
    pub granule: u32,
    /// Human text.
    pub text: String,
    /// Manual reference.
    pub rule: &'static str,
}

const ARM_SINGLE: &str = "Arm ARM B2.2.1: a load or store of a single general-purpose register \
     aligned to the size of the access is single-copy atomic";
const ARM_PAIR: &str = "Arm ARM B2.2.1: LDP/STP aligned to the size of each register are treated \
     as two single-copy atomic accesses, one per register";
const ARM_EXCL_PAIR32: &str = "Arm ARM B2.2.1: a Load-Exclusive Pair of two 32-bit quantities is \
     single-copy atomic";
const ARM_EXCL_PAIR64: &str = "Arm ARM B2.2.1: a Load-Exclusive Pair of two 64-bit quantities is \
     single-copy atomic as a whole only when the Store-Exclusive Pair that follows succeeds; \
     otherwise only each doubleword is";
const ARM_EXCL_PAIR_STORED: &str = "Arm ARM B2.2.1: when the Store-Exclusive of a \
     Load-Exclusive/Store-Exclusive pair of two 64-bit quantities succeeds, the update of the \
     whole location is single-copy atomic, and the values the Load-Exclusive pair read are an \
     atomic read of it";
const ARM_BYTES: &str = "Arm ARM B2.2.1: accesses not covered by the single-copy atomicity rules \
     are streams of byte accesses; no atomicity between bytes is ensured";
const ARM_LSE2: &str = "Arm ARM B2.2.1 with FEAT_LSE2: loads and stores to Normal Inner/Outer \
     Write-Back memory whose bytes lie within one 16-byte aligned quantity are single-copy atomic";
const ARM_LSE2_PAIR: &str = "Arm ARM B2.2.1 with FEAT_LSE2: LDP/STP of two 64-bit registers \
     aligned to 16 bytes to Normal Inner/Outer Write-Back memory are single-copy atomic";

const INTEL_ALIGNED: &str = "Intel SDM Vol. 3A 9.1.1: reading or writing a byte, or a word, \
     doubleword or quadword aligned to its size, is always carried out atomically";
const INTEL_P6_LINE: &str = "Intel SDM Vol. 3A 9.1.1: unaligned 16-, 32- and 64-bit accesses to \
     cached memory that fit within a cache line are atomic (P6 family and later)";
const INTEL_UC16: &str = "Intel SDM Vol. 3A 9.1.1: 16-bit accesses to uncached memory locations \
     that fit within a 32-bit data bus are atomic";
const INTEL_SPLIT: &str = "Intel SDM Vol. 3A 9.1.1: accesses split across cache lines or pages, \
     or unaligned accesses to uncached memory, are not guaranteed to be atomic";
const INTEL_AVX128: &str = "Intel SDM Vol. 3A 9.1.1: processors with AVX (CPUID.01H:ECX.AVX) \
     carry out the 16-byte accesses of MOVAPD, MOVAPS and MOVDQA atomically";
const INTEL_SSE128: &str = "Intel SDM Vol. 3A 9.1.1: an SSE instruction that accesses data \
     larger than a quadword may be implemented using multiple memory accesses; only MOVAPD, \
     MOVAPS and MOVDQA on processors with AVX are promised 16-byte atomicity";
const X86_LOCKED: &str = "Intel SDM Vol. 3A 9.1.2.2 / AMD APM Vol. 2 7.3.2: a LOCKed \
     read-modify-write (and XCHG) is atomic whatever its alignment; a split lock locks the bus";
const AMD_CACHEABLE: &str = "AMD APM Vol. 2 7.3.2: cacheable, naturally aligned single loads or \
     stores of up to a quadword are atomic, as are misaligned ones of less than a quadword \
     contained entirely within a naturally aligned quadword";
const AMD_AVX128: &str = "AMD APM Vol. 2 7.3.2: processors with AVX extend the atomicity of \
     cacheable, naturally aligned single loads or stores from a quadword to a double quadword";
const AMD_NONE: &str = "AMD APM Vol. 2 7.3.2: atomicity is promised only for cacheable naturally \
     aligned accesses up to a quadword (a double quadword with AVX) and misaligned ones within a \
     naturally aligned quadword; otherwise use XCHG or a LOCKed instruction";

fn aligned(addr: usize, bytes: usize) -> bool {
    addr.is_multiple_of(bytes)
}

fn within(addr: usize, bytes: usize, block: usize) -> bool {
    addr / block == (addr + bytes - 1) / block
}

fn whole(width: u32, rule: &'static str, why: &str) -> Atomicity {
    Atomicity {
        granule: width,
        text: format!("single-copy atomic as a whole ({width} bits): {why}"),
        rule,
    }
}

fn parts(granule: u32, rule: &'static str, why: &str) -> Atomicity {
    Atomicity {
        granule,
        text: if granule <= 8 {
            format!("no atomicity beyond single bytes: {why}")
        } else {
            format!("single-copy atomic per {granule}-bit part only: {why}")
        },
        rule,
    }
}

/// The atomicity the architecture promises for a `width`-bit access of `form` at `addr`
/// (absolute address: only its alignment to lines, pages and sizes matters) to memory of `attr`.
pub fn atomicity(
    form: Form,
    width: u32,
    addr: usize,
    attr: MemAttr,
    env: &RuleEnv,
    feat: &Features,
) -> Atomicity {
    let bytes = (width / 8).max(1) as usize;
    match env.arch {
        Arch::Aarch64 => arm(form, width, bytes, addr, attr, env, feat),
        Arch::X86_64 => x86(form, width, bytes, addr, attr, env, feat),
    }
}

fn arm(
    form: Form,
    width: u32,
    bytes: usize,
    addr: usize,
    attr: MemAttr,
    env: &RuleEnv,
    feat: &Features,
) -> Atomicity {
    let eff = super::aarch64::effective_attr(attr, env);
    let lse2 = feat.lse2 == Some(true) && eff == MemAttr::NormalWb;
    match form {
        Form::Single => {
            if aligned(addr, bytes) {
                whole(width, ARM_SINGLE, "one register, naturally aligned")
            } else if lse2 && within(addr, bytes, 16) {
                whole(
                    width,
                    ARM_LSE2,
                    "FEAT_LSE2, within one 16-byte aligned quantity",
                )
            } else {
                parts(8, ARM_BYTES, "misaligned")
            }
        }
        Form::Pair => {
            let elem = (bytes / 2).max(1);
            if lse2 && elem == 8 && aligned(addr, 16) {
                whole(
                    width,
                    ARM_LSE2_PAIR,
                    "FEAT_LSE2, 64-bit pair aligned to 16 bytes",
                )
            } else if aligned(addr, elem) {
                parts(
                    width / 2,
                    ARM_PAIR,
                    "a pair is two single-copy atomic accesses",
                )
            } else {
                parts(8, ARM_BYTES, "registers of the pair misaligned")
            }
        }
        Form::ExclPair => {
            if width <= 64 {
                whole(
                    width,
                    ARM_EXCL_PAIR32,
                    "Load-Exclusive Pair of two 32-bit quantities",
                )
            } else {
                parts(64, ARM_EXCL_PAIR64, "LDXP without a successful STXP")
            }
        }
        Form::ExclPairStored => whole(width, ARM_EXCL_PAIR_STORED, "LDXP whose STXP succeeded"),
        // x86 forms never reach here; judge them as bytes.
        _ => parts(8, ARM_BYTES, "not an aarch64 form"),
    }
}

fn x86(
    form: Form,
    width: u32,
    bytes: usize,
    addr: usize,
    attr: MemAttr,
    env: &RuleEnv,
    feat: &Features,
) -> Atomicity {
    match feat.vendor {
        Vendor::Intel => intel(form, width, bytes, addr, attr, env, feat),
        Vendor::Amd => amd(form, width, bytes, addr, attr, feat),
        Vendor::Arm | Vendor::Other => {
            let i = intel(form, width, bytes, addr, attr, env, feat);
            let a = amd(form, width, bytes, addr, attr, feat);
            if i.granule <= a.granule {
                i
            } else {
                a
            }
        }
    }
}

fn intel(
    form: Form,
    width: u32,
    bytes: usize,
    addr: usize,
    attr: MemAttr,
    env: &RuleEnv,
    feat: &Features,
) -> Atomicity {
    let cached = attr.is_cacheable();
    match form {
        Form::Mov => {
            if aligned(addr, bytes) {
                whole(width, INTEL_ALIGNED, "naturally aligned")
            } else if cached && within(addr, bytes, env.line) {
                whole(
                    width,
                    INTEL_P6_LINE,
                    "misaligned but within one cache line of cached memory",
                )
            } else if !cached && width == 16 && within(addr, bytes, 4) {
                whole(
                    width,
                    INTEL_UC16,
                    "16-bit access within an aligned doubleword of uncached memory",
                )
            } else {
                parts(
                    8,
                    INTEL_SPLIT,
                    "split across lines/pages, or misaligned in uncached memory",
                )
            }
        }
        Form::MovAligned128 => {
            if feat.avx == Some(true) && aligned(addr, 16) {
                whole(width, INTEL_AVX128, "MOVDQA on a processor with AVX")
            } else {
                parts(8, INTEL_SSE128, "no AVX (or not aligned)")
            }
        }
        Form::MovUnaligned128 => parts(
            8,
            INTEL_SSE128,
            "MOVDQU is not among the atomic 16-byte moves",
        ),
        Form::Locked => whole(width, X86_LOCKED, "LOCKed read-modify-write"),
        _ => parts(8, INTEL_SPLIT, "not an x86 form"),
    }
}

fn amd(
    form: Form,
    width: u32,
    bytes: usize,
    addr: usize,
    attr: MemAttr,
    feat: &Features,
) -> Atomicity {
    let cached = attr.is_cacheable();
    match form {
        Form::Mov => {
            if cached && aligned(addr, bytes) {
                whole(width, AMD_CACHEABLE, "cacheable and naturally aligned")
            } else if cached && bytes < 8 && within(addr, bytes, 8) {
                whole(
                    width,
                    AMD_CACHEABLE,
                    "misaligned but within a naturally aligned quadword of cacheable memory",
                )
            } else if cached {
                parts(8, AMD_NONE, "misaligned across a quadword boundary")
            } else {
                parts(8, AMD_NONE, "uncacheable memory")
            }
        }
        Form::MovAligned128 | Form::MovUnaligned128 => {
            if feat.avx == Some(true) && cached && aligned(addr, 16) {
                whole(
                    width,
                    AMD_AVX128,
                    "cacheable, 16-byte aligned, processor with AVX",
                )
            } else {
                parts(8, AMD_NONE, "not cacheable, not 16-byte aligned, or no AVX")
            }
        }
        Form::Locked => whole(width, X86_LOCKED, "LOCKed read-modify-write"),
        _ => parts(8, AMD_NONE, "not an x86 form"),
    }
}

/// What a racing probe expects: the atomicity of the load and of the stores combined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaceExpectation {
    /// Parts of this many bits (from the access's first byte) must never tear.
    pub granule: u32,
    /// For a reader racing whole-width and half-width stores: whether a value joining the halves
    /// of two different whole-width stores is forbidden (Arm ARM B2.2.2; SDM/APM: the whole-width
    /// load and store are each one access).
    pub whole_pairs: bool,
    pub text: String,
    pub rule: String,
}

/// Combine the load's atomicity with the stores' (`whole_store` for the full-width stores,
/// `half_store` for half-width stores when the probe has them) for a `width`-bit reader.
pub fn race_expectation(
    vendor: Vendor,
    width: u32,
    load: &Atomicity,
    whole_store: Option<&Atomicity>,
    half_store: Option<&Atomicity>,
) -> RaceExpectation {
    let mut granule = load.granule;
    let mut rule = String::from(load.rule);
    for s in [whole_store, half_store].into_iter().flatten() {
        granule = granule.min(s.granule);
        if !rule.contains(s.rule) {
            rule.push_str("; ");
            rule.push_str(s.rule);
        }
    }
    let whole_pairs = half_store.is_some()
        && load.granule >= width
        && whole_store.is_some_and(|s| s.granule >= width);
    let verdict = if whole_pairs {
        format!(
            "each {}-bit half must be untorn, and halves of two different {width}-bit stores must \
             never be read together: a torn value is a deviation",
            width / 2
        )
    } else if granule >= width {
        "a torn value is a deviation".into()
    } else if granule > 8 {
        format!("values joining whole {granule}-bit parts of different stores are allowed; a torn {granule}-bit part is a deviation")
    } else {
        "torn values are allowed".into()
    };
    let mut text = format!("judged by {}: load {}", vendor.name(), load.text);
    if let Some(s) = whole_store {
        text.push_str(&format!("; store {}", s.text));
    }
    if let Some(s) = half_store {
        text.push_str(&format!("; half-width stores {}", s.text));
    }
    text.push_str(&format!(" => {verdict}"));
    RaceExpectation {
        granule,
        whole_pairs,
        text,
        rule,
    }
}

/// Whether an observed fault is what `exp` admits (`RawFault::kind` already maps how an OS
/// reports faults, e.g. Linux's user-mode #GP as SIGSEGV with si_code SI_KERNEL).
pub fn fault_admitted(exp: &Expectation, fault: Option<&RawFault>) -> bool {
    // `RawFault::kind` names a hosted SIGSEGV/SI_KERNEL on x86-64 Linux general-protection.
    exp.admits(fault.map(RawFault::kind))
}

/// Where an access of `bytes` at `addr` sits, in the terms of [`super::Placement`].
pub fn placement_of(addr: usize, bytes: usize, env: &RuleEnv) -> super::Placement {
    use super::Placement;
    if bytes <= 1 || aligned(addr, bytes) {
        Placement::Aligned
    } else if !within(addr, bytes, env.page) {
        Placement::CrossPage
    } else if !within(addr, bytes, env.line) {
        Placement::CrossLine
    } else {
        Placement::Misaligned
    }
}

/// The alignment/attribute fault rule for one access of `width` bits at `addr` (the size the
/// alignment check uses: the element size for LDP/STP, the total size for LDXP/STXP and
/// CMPXCHG16B). Every family (`fault`, `tear`, `excl`, `cost`) judges faults through this one
/// function: aarch64 by [`super::aarch64::fault_expectation`] (B2.5.2 with FEAT_LSE2 from `feat`,
/// B2.9.5, B2.2.6), x86 by [`super::x86::fault_expectation`].
pub fn access_fault_expectation(
    kind: super::AccessKind,
    width: u32,
    addr: usize,
    attr: MemAttr,
    env: &RuleEnv,
    feat: &Features,
) -> Expectation {
    match env.arch {
        Arch::X86_64 => {
            let placement = placement_of(addr, (width / 8) as usize, env);
            super::x86::fault_expectation(kind, width, attr, placement, env)
        }
        Arch::Aarch64 => super::aarch64::fault_expectation(kind, width, addr, attr, env, feat.lse2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::FaultKind;
    use crate::platform::Privilege;
    use crate::rules::{AccessKind, FaultExpect, Placement};

    fn env(arch: Arch) -> RuleEnv {
        RuleEnv {
            arch,
            privilege: Privilege::El(1),
            mmu_on: true,
            align_check: false,
            line: 64,
            page: 4096,
            map: crate::mapping::Variant::DEFAULT,
        }
    }

    fn arm_feat(lse2: bool) -> Features {
        Features {
            vendor: Vendor::Arm,
            lse: Some(lse2),
            lrcpc: Some(lse2),
            lse2: Some(lse2),
            avx: None,
            cx16: None,
            sse: None,
            source: FeatureSource::IdRegisters,
        }
    }

    fn x86_feat(vendor: Vendor, avx: bool) -> Features {
        Features {
            vendor,
            lse: None,
            lrcpc: None,
            lse2: None,
            avx: Some(avx),
            cx16: Some(true),
            sse: Some(true),
            source: FeatureSource::Cpuid,
        }
    }

    const A: usize = 0x1000_0040; // line-aligned

    #[test]
    fn arm_single_register_aligned_is_whole_misaligned_is_bytes() {
        let e = env(Arch::Aarch64);
        for w in [8, 16, 32, 64] {
            let a = atomicity(Form::Single, w, A, MemAttr::NormalWb, &e, &arm_feat(false));
            assert_eq!(a.granule, w);
            assert!(a.rule.starts_with("Arm ARM B2.2.1"));
        }
        let a = atomicity(
            Form::Single,
            64,
            A + 1,
            MemAttr::NormalWb,
            &e,
            &arm_feat(false),
        );
        assert_eq!(a.granule, 8);
        // FEAT_LSE2: within a 16-byte quantity on Normal WB, but not across it, nor on NC.
        assert_eq!(
            atomicity(
                Form::Single,
                64,
                A + 1,
                MemAttr::NormalWb,
                &e,
                &arm_feat(true)
            )
            .granule,
            64
        );
        assert_eq!(
            atomicity(
                Form::Single,
                64,
                A + 12,
                MemAttr::NormalWb,
                &e,
                &arm_feat(true)
            )
            .granule,
            8
        );
        assert_eq!(
            atomicity(
                Form::Single,
                64,
                A + 1,
                MemAttr::NormalNc,
                &e,
                &arm_feat(true)
            )
            .granule,
            8
        );
    }

    #[test]
    fn arm_pairs() {
        let e = env(Arch::Aarch64);
        let f = arm_feat(false);
        assert_eq!(
            atomicity(Form::Pair, 128, A, MemAttr::NormalWb, &e, &f).granule,
            64
        );
        assert_eq!(
            atomicity(Form::Pair, 128, A + 8, MemAttr::NormalWb, &e, &f).granule,
            64
        );
        assert_eq!(
            atomicity(Form::Pair, 64, A, MemAttr::NormalWb, &e, &f).granule,
            32
        );
        assert_eq!(
            atomicity(Form::Pair, 128, A + 1, MemAttr::NormalWb, &e, &f).granule,
            8
        );
        assert_eq!(
            atomicity(Form::Pair, 128, A, MemAttr::NormalWb, &e, &arm_feat(true)).granule,
            128
        );
        assert_eq!(
            atomicity(Form::ExclPair, 128, A, MemAttr::NormalWb, &e, &f).granule,
            64
        );
        assert_eq!(
            atomicity(Form::ExclPair, 64, A, MemAttr::NormalWb, &e, &f).granule,
            64
        );
        assert_eq!(
            atomicity(Form::ExclPairStored, 128, A, MemAttr::NormalWb, &e, &f).granule,
            128
        );
    }

    #[test]
    fn intel_and_amd_differ_on_misaligned_and_uncacheable() {
        let e = env(Arch::X86_64);
        let intel = x86_feat(Vendor::Intel, true);
        let amd = x86_feat(Vendor::Amd, true);
        // 64-bit at line+1: within the line (Intel P6 rule) but across a quadword (AMD).
        assert_eq!(
            atomicity(Form::Mov, 64, A + 1, MemAttr::Wb, &e, &intel).granule,
            64
        );
        assert_eq!(
            atomicity(Form::Mov, 64, A + 1, MemAttr::Wb, &e, &amd).granule,
            8
        );
        // 32-bit at line+1 stays in the quadword: both promise it.
        assert_eq!(
            atomicity(Form::Mov, 32, A + 1, MemAttr::Wb, &e, &amd).granule,
            32
        );
        assert_eq!(
            atomicity(Form::Mov, 32, A + 1, MemAttr::Wb, &e, &intel).granule,
            32
        );
        // Across a line: neither.
        assert_eq!(
            atomicity(Form::Mov, 32, A + 62, MemAttr::Wb, &e, &intel).granule,
            8
        );
        assert_eq!(
            atomicity(Form::Mov, 32, A + 62, MemAttr::Wb, &e, &amd).granule,
            8
        );
        // Aligned uncacheable: Intel promises it, the APM text does not.
        assert_eq!(
            atomicity(Form::Mov, 64, A, MemAttr::Uc, &e, &intel).granule,
            64
        );
        assert_eq!(
            atomicity(Form::Mov, 64, A, MemAttr::Uc, &e, &amd).granule,
            8
        );
        // 16-bit misaligned in an aligned doubleword of UC memory: Intel only.
        assert_eq!(
            atomicity(Form::Mov, 16, A + 1, MemAttr::Uc, &e, &intel).granule,
            16
        );
        // Unknown vendor takes the weaker promise.
        let other = x86_feat(Vendor::Other, true);
        assert_eq!(
            atomicity(Form::Mov, 64, A + 1, MemAttr::Wb, &e, &other).granule,
            8
        );
        assert!(atomicity(Form::Mov, 64, A + 1, MemAttr::Wb, &e, &intel)
            .rule
            .contains("9.1.1"));
        assert!(atomicity(Form::Mov, 64, A + 1, MemAttr::Wb, &e, &amd)
            .rule
            .contains("7.3.2"));
    }

    #[test]
    fn x86_128_bit() {
        let e = env(Arch::X86_64);
        let intel = x86_feat(Vendor::Intel, true);
        let amd = x86_feat(Vendor::Amd, true);
        assert_eq!(
            atomicity(Form::MovAligned128, 128, A, MemAttr::Wb, &e, &intel).granule,
            128
        );
        assert_eq!(
            atomicity(Form::MovAligned128, 128, A, MemAttr::Uc, &e, &intel).granule,
            128
        );
        assert_eq!(
            atomicity(Form::MovAligned128, 128, A, MemAttr::Uc, &e, &amd).granule,
            8
        );
        assert_eq!(
            atomicity(Form::MovUnaligned128, 128, A, MemAttr::Wb, &e, &intel).granule,
            8
        );
        assert_eq!(
            atomicity(Form::MovUnaligned128, 128, A, MemAttr::Wb, &e, &amd).granule,
            128
        );
        assert_eq!(
            atomicity(
                Form::MovAligned128,
                128,
                A,
                MemAttr::Wb,
                &e,
                &x86_feat(Vendor::Intel, false)
            )
            .granule,
            8
        );
        assert_eq!(
            atomicity(Form::Locked, 128, A, MemAttr::Uc, &e, &amd).granule,
            128
        );
    }

    #[test]
    fn race_expectation_combines_sides() {
        let e = env(Arch::Aarch64);
        let f = arm_feat(false);
        let ld = atomicity(Form::Single, 64, A, MemAttr::NormalWb, &e, &f);
        let st = atomicity(Form::Single, 64, A, MemAttr::NormalWb, &e, &f);
        let half = atomicity(Form::Single, 32, A, MemAttr::NormalWb, &e, &f);
        let r = race_expectation(Vendor::Arm, 64, &ld, Some(&st), None);
        assert_eq!((r.granule, r.whole_pairs), (64, false));
        assert!(r.text.contains("deviation"));
        let r = race_expectation(Vendor::Arm, 64, &ld, None, Some(&half));
        assert_eq!((r.granule, r.whole_pairs), (32, false));
        let r = race_expectation(Vendor::Arm, 64, &ld, Some(&st), Some(&half));
        assert_eq!((r.granule, r.whole_pairs), (32, true));
        let mis = atomicity(Form::Single, 64, A + 1, MemAttr::NormalWb, &e, &f);
        let r = race_expectation(Vendor::Arm, 64, &mis, Some(&st), None);
        assert_eq!(r.granule, 8);
        assert!(r.text.contains("allowed"));
    }

    #[test]
    fn hosted_gp_counts_as_general_protection() {
        let exp = Expectation {
            expect: FaultExpect::Fault(FaultKind::GeneralProtection),
            text: String::new(),
            rule: "",
        };
        let sig = RawFault::Signal {
            signo: 11,
            code: 0x80,
            addr: 0,
            pc: 0,
        };
        assert!(fault_admitted(&exp, Some(&sig)));
        let segv = RawFault::Signal {
            signo: 11,
            code: 1,
            addr: 0,
            pc: 0,
        };
        assert!(!fault_admitted(&exp, Some(&segv)));
        assert!(!fault_admitted(&exp, None));
    }

    #[test]
    fn placement_of_matches_the_arena_placements() {
        let e = env(Arch::Aarch64);
        let base = 0x4000_0000;
        for p in Placement::ALL {
            for w in [16u32, 32, 64, 128] {
                let a = base + p.offset_in_arena(w, 64, 4096);
                assert_eq!(placement_of(a, (w / 8) as usize, &e), p, "{p:?} {w}");
            }
        }
        // LDP of two 32-bit registers straddling a line: each element is aligned.
        assert_eq!(placement_of(base + 124, 4, &e), Placement::Aligned);
        assert_eq!(placement_of(base + 128, 4, &e), Placement::Aligned);
    }

    #[test]
    fn lse_atomics_on_device_memory_are_impdef() {
        let e = env(Arch::Aarch64);
        let f = arm_feat(false);
        let x = access_fault_expectation(AccessKind::Atomic, 64, A, MemAttr::DeviceNGnRnE, &e, &f);
        assert_eq!(x.expect, FaultExpect::Either);
        let x = access_fault_expectation(AccessKind::Atomic, 64, A, MemAttr::NormalWb, &e, &f);
        assert_eq!(x.expect, FaultExpect::NoFault);
        let x = access_fault_expectation(AccessKind::Atomic, 64, A + 1, MemAttr::NormalWb, &e, &f);
        assert_eq!(x.expect, FaultExpect::Fault(FaultKind::Alignment));
        // FEAT_LSE2: misaligned within a 16-byte quantity does not fault (B2.5.2,
        // AArch64.UnalignedAccessFaults), for exclusives too; crossing it, exclusives fault.
        for kind in [
            AccessKind::AcquireRelease,
            AccessKind::Exclusive,
            AccessKind::Atomic,
        ] {
            let x =
                access_fault_expectation(kind, 64, A + 1, MemAttr::NormalWb, &e, &arm_feat(true));
            assert_eq!(x.expect, FaultExpect::NoFault, "{kind:?}");
        }
        let x = access_fault_expectation(
            AccessKind::Exclusive,
            64,
            A + 12,
            MemAttr::NormalWb,
            &e,
            &arm_feat(true),
        );
        assert_eq!(x.expect, FaultExpect::Fault(FaultKind::Alignment));
    }
}
