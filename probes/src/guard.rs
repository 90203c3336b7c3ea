//! The fault guard's table: which instructions may fault, and where execution resumes.
//!
//! A probe access that may fault is written in `asm!` with a label on the faulting instruction
//! and one where execution resumes, and registers the pair in the `atomprobe_guard` section with
//! `guard_entry!`:
//!
//! ```text
//! "21: ldxr {v}, [{a}]",      // x86: labels 0/1 read as binary literals: use two digits
//! "22:",
//! guard_entry!(fault = "21", resume = "22"),
//! ```
//!
//! When the platform's exception (or signal) handler sees a fault while the current core's guard
//! is armed, it looks the faulting PC up here, records the decoded fault and resumes at the
//! entry's resume address. A fault at a PC not in the table, or while the guard is not armed, is
//! an unexpected fault and ends the run with a dump.

/// `asm!` template text (a string literal, usable as an `asm!` template argument or inside
/// `concat!`) that registers one guarded instruction in the fault guard's table: the instruction
/// at local label `fault` may fault, and execution then resumes at local label `resume`.
///
/// The entry is a [`GuardEntry`]: two 32-bit words in section `atomprobe_guard`, each the offset
/// from that word to its label (`.long 21b - .`). The offsets are PC-relative so the table needs
/// no relocation: the same text works in the bare-metal images and in position-independent
/// hosted binaries, and the entry stays valid wherever the code is loaded. `"aR"` makes the
/// section allocated and retained (SHF_GNU_RETAIN), so `--gc-sections` keeps the entries;
/// `.balign 4` keeps each entry 4-byte aligned for the reader.
///
/// Both labels are referenced backwards (`21b`), so the entry must come after both labels in the
/// block. Labels are numeric local labels given without direction (`"21"`), two digits on x86
/// (LLVM reads `0b`/`1b` as binary literals). A block with several instructions that may fault
/// has one entry per instruction.
///
/// Only where the table has a reader (bare metal and Linux, the same `cfg` as `table` below):
/// elsewhere the macro expands to an empty template line (the definition below).
#[cfg(any(target_os = "none", target_os = "linux"))]
macro_rules! guard_entry {
    (fault = $fault:literal, resume = $resume:literal) => {
        concat!(
            ".pushsection atomprobe_guard, \"aR\"\n",
            ".balign 4\n",
            ".long ",
            $fault,
            "b - .\n",
            ".long ",
            $resume,
            "b - .\n",
            ".popsection"
        )
    };
}
/// `guard_entry!` where nothing reads the table (macOS, Windows, ...): an assembler comment, no
/// section. `.pushsection name, "aR"` uses ELF section flags, which the COFF assembler (Windows)
/// rejects, and on Mach-O (macOS) it would only make a section nobody reads: there is no
/// `__start_`/`__stop_` bound and no fault handler resumes there, so a fault in `guarded` is not
/// caught on these targets (`Platform::catches_faults` is false and the families skip probes
/// that may fault). The labels stay in the probe's `asm!`; only their registration is left out.
/// An empty template line rather than a comment: comment syntax differs between the assemblers
/// (`#`, `//`, `;` on Apple aarch64), an empty line is valid in all of them.
#[cfg(not(any(target_os = "none", target_os = "linux")))]
macro_rules! guard_entry {
    (fault = $fault:literal, resume = $resume:literal) => {
        ""
    };
}
pub(crate) use guard_entry;

/// One entry: offsets from the entry's own fields to the faulting and the resume instruction.
#[repr(C)]
pub struct GuardEntry {
    fault: i32,
    resume: i32,
}

impl GuardEntry {
    fn fault_pc(&self) -> usize {
        (&self.fault as *const i32 as usize).wrapping_add_signed(self.fault as isize)
    }

    fn resume_pc(&self) -> usize {
        (&self.resume as *const i32 as usize).wrapping_add_signed(self.resume as isize)
    }
}

#[cfg(any(target_os = "none", target_os = "linux"))]
mod table {
    use super::GuardEntry;

    extern "C" {
        // Defined by the linker for the section (ELF "__start_/__stop_" for C-identifier section
        // names; the kernel's linker scripts define them explicitly).
        static __start_atomprobe_guard: GuardEntry;
        static __stop_atomprobe_guard: GuardEntry;
    }

    pub fn entries() -> &'static [GuardEntry] {
        // A sentinel entry (offsets 0: it points at itself, never at an instruction) emitted by
        // the very function that reads the table, so the section exists in every binary that
        // looks at it even when no guarded probe was linked in. "R" (SHF_GNU_RETAIN) keeps the
        // entries through --gc-sections.
        // SAFETY: assembler directives only; no instruction is emitted.
        unsafe {
            core::arch::asm!(
                ".pushsection atomprobe_guard, \"aR\"",
                ".balign 4",
                ".long 0",
                ".long 0",
                ".popsection",
                options(nomem, nostack, preserves_flags)
            );
        }
        // SAFETY: the linker places the two symbols at the start and end of the section, which
        // holds only `GuardEntry` values (4-byte aligned pairs of i32) emitted by probe asm.
        unsafe {
            let start = &raw const __start_atomprobe_guard;
            let end = &raw const __stop_atomprobe_guard;
            let n = (end as usize - start as usize) / core::mem::size_of::<GuardEntry>();
            core::slice::from_raw_parts(start, n)
        }
    }
}

#[cfg(not(any(target_os = "none", target_os = "linux")))]
mod table {
    use super::GuardEntry;
    pub fn entries() -> &'static [GuardEntry] {
        &[]
    }
}

/// If `pc` is a guarded instruction, the address to resume at after it faulted.
pub fn resume_address(pc: usize) -> Option<usize> {
    table::entries()
        .iter()
        .find(|e| e.fault_pc() == pc)
        .map(GuardEntry::resume_pc)
}

/// Number of guarded instructions in this binary (for diagnostics).
pub fn guarded_instructions() -> usize {
    table::entries().len()
}

#[cfg(all(test, target_arch = "x86_64", target_os = "linux"))]
mod tests {
    use super::*;

    /// Returns (address of the guarded instruction, address after it).
    fn guarded_nop_addresses() -> (usize, usize) {
        let (f, r): (usize, usize);
        // SAFETY: only computes two label addresses and emits a guard entry; the `nop` runs.
        unsafe {
            core::arch::asm!(
                "lea {f}, [rip + 21f]",
                "lea {r}, [rip + 22f]",
                "21: nop",
                "22:",
                guard_entry!(fault = "21", resume = "22"),
                f = out(reg) f,
                r = out(reg) r,
                options(nomem, nostack, preserves_flags)
            );
        }
        (f, r)
    }

    #[test]
    fn table_finds_guarded_instruction() {
        let (f, r) = guarded_nop_addresses();
        assert_eq!(resume_address(f), Some(r));
        assert_eq!(resume_address(f + 1), None);
        assert!(guarded_instructions() >= 2);
    }
}
