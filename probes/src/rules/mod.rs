//! Architecture rules: what the manual requires or allows for an observation. Every
//! expectation carries the rule it comes from, printed in the record.
//!
//! Editions the section numbers refer to:
//! - **Arm ARM**: Arm Architecture Reference Manual for A-profile architecture, DDI 0487, issue
//!   K.a. The B-chapter numbers used here (B2.2.1 single-copy atomicity and its FEAT_LSE2
//!   changes, B2.2.2, B2.2.6, B2.5.2 alignment, B2.9 / B2.9.5 exclusives) and the pseudocode
//!   `AArch64.UnalignedAccessFaults()` / `AArch64.S1HasAlignmentFault()` are K.a's. D-chapter
//!   numbers (D8.2.11 MMU off, D24.2.46 ESR_EL1) move between issues and were not re-checked
//!   against K.a; the pseudocode function and register names are the stable references.
//! - **Intel SDM**: Intel 64 and IA-32 Architectures Software Developer's Manual, combined
//!   volumes (order number 325462), an edition in which Vol. 3A chapter 9 is "Multiple-Processor
//!   Management" (9.1.1 Guaranteed Atomic Operations, 9.1.2.2 Software Controlled Bus Locking)
//!   and 6.15 is the exception reference (#AC). Older editions number that chapter 8 (or 7):
//!   same text, other numbers. Vol. 2A/2B instruction pages are cited by mnemonic.
//! - **AMD APM**: AMD64 Architecture Programmer's Manual Volume 2: System Programming
//!   (publication 24593), section 7.3.2 "Access Atomicity". The revision was not pinned when the
//!   rules were written; cite the section title when comparing with another revision.

pub mod aarch64;
pub mod atomicity;
pub mod x86;

use alloc::string::String;

use crate::fault::FaultKind;

/// What the architecture says about whether an access faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultExpect {
    /// The access must fault with this kind.
    Fault(FaultKind),
    /// The access must complete without a fault.
    NoFault,
    /// IMPLEMENTATION DEFINED or CONSTRAINED UNPREDICTABLE: either is architecturally fine.
    Either,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expectation {
    pub expect: FaultExpect,
    /// Human text for `expected`.
    pub text: String,
    /// Manual reference for `rule`.
    pub rule: &'static str,
}

impl Expectation {
    /// Whether an observed fault (or none) is consistent with this expectation.
    pub fn admits(&self, observed: Option<FaultKind>) -> bool {
        match (self.expect, observed) {
            (FaultExpect::Either, _) => true,
            (FaultExpect::NoFault, None) => true,
            (FaultExpect::Fault(k), Some(o)) => k == o,
            _ => false,
        }
    }
}

/// What kind of access a fault probe makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessKind {
    /// Plain load (LDR, LDP, MOV r, m).
    Load,
    /// Plain store (STR, STP, MOV m, r).
    Store,
    /// Load-acquire / store-release (LDAR, STLR, LDAPR).
    AcquireRelease,
    /// Exclusive (LDXR/STXR, LDXP) on aarch64.
    Exclusive,
    /// LSE single-copy atomic read-modify-write (CAS, LDADD, SWP) on aarch64.
    Atomic,
    /// x86 LOCK-prefixed read-modify-write (LOCK CMPXCHG, LOCK XADD, XCHG).
    Locked,
    /// x86 CMPXCHG16B (needs a 16-byte aligned operand).
    Cmpxchg16b,
    /// x86 aligned-only vector move (MOVDQA / MOVAPS).
    AlignedVector,
}

/// Where in memory a probe access sits, relative to natural alignment, lines and pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Naturally aligned.
    Aligned,
    /// One byte past natural alignment, inside one cache line.
    Misaligned,
    /// Straddling two cache lines (half in each).
    CrossLine,
    /// Straddling two pages (half in each).
    CrossPage,
}

impl Placement {
    pub const ALL: [Placement; 4] = [
        Placement::Aligned,
        Placement::Misaligned,
        Placement::CrossLine,
        Placement::CrossPage,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Placement::Aligned => "aligned",
            Placement::Misaligned => "misaligned",
            Placement::CrossLine => "cross-line",
            Placement::CrossPage => "cross-page",
        }
    }

    /// Byte offset of an access of `width` bits from the start of an arena whose first
    /// `page` bytes are one page. Aligned and misaligned accesses sit in the arena's second cache
    /// line; cross-line ones straddle the first line boundary after it; cross-page ones the
    /// first page boundary.
    pub const fn offset_in_arena(self, width_bits: u32, line: usize, page: usize) -> usize {
        let bytes = (width_bits / 8) as usize;
        let half = if bytes >= 2 { bytes / 2 } else { 1 };
        match self {
            Placement::Aligned => line,
            Placement::Misaligned => line + 1,
            Placement::CrossLine => 2 * line - half,
            Placement::CrossPage => page - half,
        }
    }

    /// Whether the access is misaligned with respect to its own size.
    pub const fn is_misaligned(self, width_bits: u32, line: usize, page: usize) -> bool {
        let bytes = (width_bits / 8) as usize;
        bytes > 1
            && !self
                .offset_in_arena(width_bits, line, page)
                .is_multiple_of(bytes)
    }
}
