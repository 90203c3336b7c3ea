//! Litmus tests: the `.litmus` path every test takes ([`file`]: tests generated from herdtools7
//! files at build time, the built-in suite of `probes/litmus/` by default, and their runner) and
//! the older generation-tagged engine ([`engine`], with [`Test`]), kept for its synchronisation
//! modes until the file runner has them; no test table uses it any more.
//!
//! # The engine's tests
//! A [`Test`] names its outcome's shape (registers and final locations), its `exists` clause,
//! the model verdict and its source, and one small body per thread (Rust or `asm!`); the
//! engine's own tests build synthetic ones.
//!
//! # Instances, values and why a relaxed outcome is never a harness artefact
//! The runner ([`engine`]) executes *instances*: one run of every thread's body on one set of
//! locations. Within one *batch* every instance has its own locations (no address is shared by
//! two instances or two variables of one batch: [`engine::Layout`] checks it), so an instance is
//! exactly the litmus test with its own fresh variables. Consecutive batches alternate between
//! the two halves of the arena, and a batch barrier (release/acquire, see [`engine`]) separates
//! every batch from the next, and from the classification of the one before.
//!
//! Memory is not cleared between batches. Instead every store writes
//! [`value`]`(gen, var, lit)` = `gen + 4·var + lit`, where `lit` is the litmus value (1 or 2),
//! `var` the variable's index and `gen` a multiple of 16 that grows with every batch. A value
//! read back is [`classify`]-ed: below `gen` means "written by an earlier batch or never": every
//! such write happened before this batch started (the batch barriers order every access of a
//! batch before every access of the next ones), so it is coherence-before every write of this
//! batch and behaves exactly as the initial value 0 of the test (a read of it is `fr`-before the
//! instance's writes). A value at or above `gen` must carry this variable's tag and a litmus
//! value 1 or 2; anything else is a harness bug and fails the run (`HarnessError`), so a
//! misplaced, torn or future value can never be counted as a relaxed outcome. Final values
//! (`[x]=2`) are read after the next batch barrier, when every write of the batch is visible to
//! the reading core, and before the barrier after it, before which nothing writes that half.
//!
//! Hence each counted outcome is an outcome of a genuine instance of the test embedded in a
//! larger execution (other instances, the batch barrier). Extra events only add ordering
//! constraints in axiomatic models (aarch64.cat, x86-TSO: acyclicity of relations that grow with
//! the execution), so an outcome the model forbids for the test alone stays forbidden in the
//! embedding: observing it is a real violation, not an artefact of the harness.

pub mod engine;
pub mod file;
pub use atomprobe_litmus::parse;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::attr::Arch;
use crate::record::ModelVerdict;

/// Most variables a test uses (x, y, z).
pub const MAX_VARS: usize = 3;
/// Most registers one thread reports.
pub const MAX_REGS: usize = 3;

/// What a thread body gets: the addresses of the instance's variables and the value to store
/// for each (variable, litmus value) pair (`w[var][lit]`, see [`value`]).
#[repr(C)]
pub struct Locs {
    pub p: [*mut u32; MAX_VARS],
    pub w: [[u32; 3]; MAX_VARS],
}

/// One thread's code for one instance: loads go to `out` in the thread's register order.
///
/// # Safety
/// Every pointer in `l.p` the body uses must be valid for 4-byte aligned reads and writes.
pub type Body = unsafe fn(l: &Locs, out: &mut [u32; MAX_REGS]);

/// One column of an outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Obs {
    /// Register `name` of thread `thread`, the body's `out[slot]`, which loaded variable `var`.
    Reg {
        thread: usize,
        name: &'static str,
        slot: usize,
        var: usize,
    },
    /// Final value of variable `var`.
    Loc { var: usize },
}

/// CPU features a test needs beyond the base architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needs {
    Nothing,
    /// FEAT_LRCPC (LDAPR), ID_AA64ISAR1_EL1.LRCPC != 0.
    Lrcpc,
}

/// Where a test's model verdict comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// herdtools7's `catalogue/aarch64/tests/kinds.txt` (herd7 with aarch64.cat).
    ArmKinds,
    /// Derived from the Arm ARM B2.3 ordering rules; the text says how.
    ArmArm(&'static str),
    /// herdtools7's `catalogue/x86_64/tests/kinds.txt` (diy7 for X86_64, x86-TSO).
    X86Kinds,
    /// Derived from x86-TSO and the Intel SDM; the text says how.
    X86Tso(&'static str),
}

impl Source {
    /// Text for the record's `rule`.
    pub fn cite(&self) -> String {
        match self {
            Source::ArmKinds => {
                "herd7 aarch64.cat via herdtools7 catalogue kinds.txt (catalogue/aarch64/tests)"
                    .into()
            }
            Source::ArmArm(why) => format!("Arm ARM B2.3 (aarch64.cat ordered-before): {why}"),
            Source::X86Kinds => "herd7 x86tso.cat via herdtools7 catalogue kinds.txt \
                 (catalogue/x86_64/tests); Intel SDM Vol. 3A 9.2.2"
                .into(),
            Source::X86Tso(why) => format!(
                "x86-TSO (herd7 x86tso.cat); Intel SDM Vol. 3A 9.2.2 \"Memory ordering in P6 and \
                 more recent processor families\": {why}"
            ),
        }
    }
}

/// One litmus test.
pub struct Test {
    /// herdtools7 spelling.
    pub name: &'static str,
    pub arch: Arch,
    /// Variable names, index = `var`.
    pub vars: &'static [&'static str],
    /// One body per thread.
    pub threads: &'static [Body],
    /// Registers each thread writes to `out` (count per thread).
    pub regs: &'static [usize],
    /// Outcome columns, in histogram order.
    pub obs: &'static [Obs],
    /// The `exists` clause: a conjunction of (column, value).
    pub cond: &'static [(usize, u32)],
    pub model: ModelVerdict,
    pub source: Source,
    pub needs: Needs,
}

impl Test {
    fn column(&self, i: usize) -> String {
        match self.obs[i] {
            Obs::Reg { thread, name, .. } => format!("{thread}:{name}"),
            Obs::Loc { var } => format!("[{}]", self.vars[var]),
        }
    }

    /// The `exists` clause as litmus7 prints it, e.g. `exists (0:X2=0 /\ 1:X2=0)`.
    pub fn condition(&self) -> String {
        let terms: Vec<String> = self
            .cond
            .iter()
            .map(|&(c, v)| format!("{}={v}", self.column(c)))
            .collect();
        format!("exists ({})", terms.join(" /\\ "))
    }

    /// An outcome as litmus7 spells it, e.g. `1:X0=1; 1:X2=0;`.
    pub fn outcome(&self, values: &[u32]) -> String {
        let parts: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{}={v};", self.column(i)))
            .collect();
        parts.join(" ")
    }

    /// Whether `values` (one per column) satisfy the `exists` clause.
    pub fn satisfies(&self, values: &[u32]) -> bool {
        self.cond.iter().all(|&(c, v)| values[c] == v)
    }

    pub fn thread_count(&self) -> usize {
        self.threads.len()
    }
}

/// Whether this core has FEAT_LRCPC (LDAPR): Linux `AT_HWCAP` bit `HWCAP_LRCPC` hosted,
/// ID_AA64ISAR1_EL1.LRCPC (bits [23:20]) != 0 on bare metal (Arm ARM D24.2).
pub fn has_lrcpc() -> bool {
    #[cfg(all(target_arch = "aarch64", target_os = "linux", feature = "std"))]
    {
        // SAFETY: getauxval only reads the process's auxiliary vector.
        let hwcap = unsafe { libc::getauxval(libc::AT_HWCAP) };
        hwcap & (1 << 15) != 0
    }
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    {
        let isar1: u64;
        // SAFETY: reading an ID register at EL1 has no side effect.
        unsafe {
            core::arch::asm!("mrs {r}, id_aa64isar1_el1", r = out(reg) isar1,
                options(nomem, nostack, preserves_flags))
        };
        (isar1 >> 20) & 0xf != 0
    }
    #[cfg(not(any(
        all(target_arch = "aarch64", target_os = "linux", feature = "std"),
        all(target_arch = "aarch64", target_os = "none")
    )))]
    {
        false
    }
}

/// Whether the core can run `test`, or why not.
pub fn runnable(test: &Test) -> Result<(), &'static str> {
    if Arch::current() != Some(test.arch) {
        return Err("test is for another architecture");
    }
    match test.needs {
        Needs::Nothing => Ok(()),
        Needs::Lrcpc if has_lrcpc() => Ok(()),
        Needs::Lrcpc => Err("the core lacks FEAT_LRCPC (LDAPR): ID_AA64ISAR1_EL1.LRCPC = 0"),
    }
}

/// Generations are multiples of this; `value` adds `4·var + lit` below it.
pub const GEN_STEP: u32 = 16;

/// The value a store of litmus value `lit` (1 or 2) to variable `var` writes in generation `gen`.
pub const fn value(gen: u32, var: usize, lit: u32) -> u32 {
    gen + 4 * var as u32 + lit
}

/// A value no correct harness can produce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HarnessError(pub String);

/// Map `raw`, read from variable `var` in generation `gen`, to its litmus value (0 = the initial
/// value or anything written before this generation). See the module documentation.
pub fn classify(raw: u32, gen: u32, var: usize) -> Result<u32, HarnessError> {
    litmus_value(raw, gen, var).ok_or_else(|| {
        HarnessError(format!(
            "read {raw:#x} from variable {var} in generation {gen:#x}: no store of this \
             generation writes that value there"
        ))
    })
}

/// [`classify`] without the explanation (no allocation: used inside `run_on`).
#[inline(always)]
pub fn litmus_value(raw: u32, gen: u32, var: usize) -> Option<u32> {
    if raw < gen {
        return Some(0);
    }
    let d = raw - gen;
    let (tag, lit) = (d / 4, d % 4);
    if d >= GEN_STEP || tag as usize != var || lit == 0 || lit == 3 {
        return None;
    }
    Some(lit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_values() {
        let g = 5 * GEN_STEP;
        assert_eq!(classify(0, g, 0), Ok(0));
        assert_eq!(classify(value(g - GEN_STEP, 1, 2), g, 0), Ok(0));
        assert_eq!(classify(value(g, 0, 1), g, 0), Ok(1));
        assert_eq!(classify(value(g, 1, 2), g, 1), Ok(2));
        // Another variable's value, a value never stored, a future generation: harness bugs.
        assert!(classify(value(g, 1, 1), g, 0).is_err());
        assert!(classify(g, g, 0).is_err());
        assert!(classify(g + 3, g, 0).is_err());
        assert!(classify(value(g + GEN_STEP, 0, 1), g, 0).is_err());
    }
}
