//! Memory types for the probe arena: IA32_PAT programmed with `probes::mmu::x86_64::PAT_LAYOUT`,
//! and one alias of the arena's physical pages per x86 memory type, each a 4 KiB mapping whose
//! PAT/PCD/PWT bits select that type. Every alias is confirmed by walking the live page tables
//! from CR3 and decoding the PTE's PAT index through the IA32_PAT value read back from the MSR;
//! the MTRR type of the arena and the effective type (SDM Vol. 3A Table 13-7) are reported too.
//!
//! Note (SDM Vol. 3A 13.12.4): mapping one physical page with different memory types is not
//! supported by Intel for coherent use; the probes use one alias at a time, and the identity map
//! of the same pages (WB) is never touched by probes. QEMU's TCG ignores memory types entirely.

use alloc::format;
use alloc::string::String;
use core::cell::UnsafeCell;

use probes::attr::{Arch, MemAttr};
use probes::mmu::x86_64::{
    decode_pat, effective_type, pat_index, pat_msr_value, pte_4k, pte_pat_index_4k, MemType,
    MtrrType, Mtrrs, IA32_MTRRCAP, IA32_MTRR_DEF_TYPE, IA32_MTRR_FIX16K_80000,
    IA32_MTRR_FIX16K_A0000, IA32_MTRR_FIX4K_C0000, IA32_MTRR_FIX64K_00000, IA32_MTRR_PHYSBASE0,
    IA32_PAT, MAX_VAR_MTRRS, PAT_LAYOUT, PTE_ADDR_4K, PTE_P, PTE_PS, PTE_RW, PTE_US,
};
use spin::Once;
use x86_64::registers::control::Cr3;
use x86_64::registers::model_specific::Msr;

use super::cpuid;

const PAGE: u64 = 4096;
/// The aliases live at 8 GiB + i * 2 MiB (PML4[0], PDPT[8], PD[i]): above the 4 GiB identity map.
const ALIAS_PDPT_INDEX: usize = 8;
const ALIAS_BASE: u64 = (ALIAS_PDPT_INDEX as u64) << 30;
const ALIAS_STRIDE: u64 = 2 << 20;
const NTYPES: usize = 6;

#[repr(C, align(4096))]
struct Table(UnsafeCell<[u64; 512]>);
// SAFETY: written only by the boot core during `init`, before any other core runs; read by the
// MMU and by `walk` afterwards.
unsafe impl Sync for Table {}

static ALIAS_PD: Table = Table(UnsafeCell::new([0; 512]));
static ALIAS_PT: [Table; NTYPES] = [const { Table(UnsafeCell::new([0; 512])) }; NTYPES];

extern "C" {
    /// The boot page tables (`entry.S`): PML4[0] -> PDPT, PDPT[0..4] -> the four PDs (2 MiB
    /// pages) that identity-map the first 4 GiB.
    static boot_pml4: u8;
    static boot_pdpt: u8;
    static boot_pd: u8;
}

/// The identity map below this is RAM (image, heap, stacks); 3-4 GiB is the MMIO hole.
const RAM_MAP_GIB: usize = 3;

/// What `init` set up and found.
pub struct State {
    pub pat_written: u64,
    pub pat_read: u64,
    pub mtrrs: Option<Mtrrs>,
    pub arena_phys: u64,
    pub arena_len: u64,
}

static STATE: Once<State> = Once::new();

fn rdmsr(m: u32) -> u64 {
    // SAFETY: callers only read MSRs whose presence CPUID reported (PAT, MTRRs).
    unsafe { Msr::new(m).read() }
}

/// CPUID.1:EDX[16] PAT, [12] MTRR.
fn has_pat() -> bool {
    cpuid(1).edx & (1 << 16) != 0
}
fn has_mtrr() -> bool {
    cpuid(1).edx & (1 << 12) != 0
}

fn flush_tlb() {
    let (frame, flags) = Cr3::read();
    // SAFETY: reloading CR3 with its own value only flushes non-global TLB entries.
    unsafe { Cr3::write(frame, flags) };
}

fn wbinvd() {
    // SAFETY: write back and invalidate caches: no architectural state besides the caches.
    unsafe { core::arch::asm!("wbinvd", options(nostack, preserves_flags)) };
}

/// Program IA32_PAT on the calling core (every core: the PAT is per logical processor), with
/// the cache/TLB flushes SDM Vol. 3A 13.12.4 asks for. Returns the value read back.
pub fn program_pat() -> Option<u64> {
    if !has_pat() {
        return None;
    }
    wbinvd();
    // SAFETY: PAT is present (CPUID); the value encodes only valid memory types.
    unsafe { Msr::new(IA32_PAT).write(pat_msr_value(&PAT_LAYOUT)) };
    flush_tlb();
    wbinvd();
    Some(rdmsr(IA32_PAT))
}

fn read_mtrrs() -> Option<Mtrrs> {
    if !has_mtrr() {
        return None;
    }
    let cap = rdmsr(IA32_MTRRCAP);
    let mut m = Mtrrs {
        cap,
        def_type: rdmsr(IA32_MTRR_DEF_TYPE),
        phys_bits: if cpuid(0x8000_0000).eax >= 0x8000_0008 {
            cpuid(0x8000_0008).eax & 0xff
        } else {
            36
        },
        ..Default::default()
    };
    m.nvar = ((cap & 0xff) as usize).min(MAX_VAR_MTRRS);
    for i in 0..m.nvar {
        let n = IA32_MTRR_PHYSBASE0 + 2 * i as u32;
        m.var[i] = (rdmsr(n), rdmsr(n + 1));
    }
    if cap & (1 << 8) != 0 {
        m.fixed[0] = rdmsr(IA32_MTRR_FIX64K_00000);
        m.fixed[1] = rdmsr(IA32_MTRR_FIX16K_80000);
        m.fixed[2] = rdmsr(IA32_MTRR_FIX16K_A0000);
        for k in 0..8 {
            m.fixed[3 + k] = rdmsr(IA32_MTRR_FIX4K_C0000 + k as u32);
        }
    }
    Some(m)
}

fn type_slot(t: MemType) -> usize {
    Arch::X86_64
        .attrs()
        .iter()
        .position(|a| MemType::from_attr(*a) == Some(t))
        .unwrap_or(0)
}

/// Boot core: program the PAT and map the arena (`phys`, `len` bytes, page-aligned, identity-
/// mapped below 4 GiB) once per memory type.
pub fn init(phys: u64, len: u64) {
    let pat_read = program_pat().unwrap_or(0);
    for (slot, attr) in Arch::X86_64.attrs().iter().enumerate() {
        let Some(t) = MemType::from_attr(*attr) else {
            continue;
        };
        let Some(idx) = pat_index(&PAT_LAYOUT, t) else {
            continue;
        };
        let pt = ALIAS_PT[slot].0.get().cast::<u64>();
        for p in 0..(len / PAGE) as usize {
            // SAFETY: `pt` is this slot's page table (512 entries, p < 512), not yet in use.
            unsafe {
                pt.add(p)
                    .write_volatile(pte_4k(phys + p as u64 * PAGE, idx))
            };
        }
        let pd = ALIAS_PD.0.get().cast::<u64>();
        // SAFETY: slot < 512; the PD is ours and not yet linked in.
        unsafe { pd.add(slot).write_volatile(pt as u64 | PTE_P | PTE_RW) };
    }
    let pdpt = (&raw const boot_pdpt).cast_mut().cast::<u64>();
    // SAFETY: `boot_pdpt` is the 512-entry PDPT the entry code built; entry 8 (8-9 GiB) is empty
    // and nothing else maps there.
    unsafe {
        pdpt.add(ALIAS_PDPT_INDEX)
            .write_volatile(ALIAS_PD.0.get() as u64 | PTE_P | PTE_RW)
    };
    flush_tlb();
    STATE.call_once(|| State {
        pat_written: pat_msr_value(&PAT_LAYOUT),
        pat_read,
        mtrrs: read_mtrrs(),
        arena_phys: phys,
        arena_len: len,
    });
}

/// `align-check=on` (see `ring3`): set U/S at every level for the RAM identity map (0-3 GiB:
/// kernel text, data, heap and stacks) and for the arena aliases, so the guarded ops can run at
/// ring 3 on their own stack. A test-image trade-off, not isolation: the 3-4 GiB MMIO hole stays
/// supervisor-only. Boot core only, before the APs start (they load the same CR3 afresh).
pub fn make_user_accessible() {
    let set = |table: *mut u64, range: core::ops::Range<usize>| {
        for i in range {
            // SAFETY: `table` is one of the boot or alias tables (512 entries each, or 2048 for
            // the four contiguous boot PDs) and `i` is inside it; setting U/S on a present entry
            // changes only who may access the mapping.
            unsafe {
                let e = table.add(i);
                let v = e.read_volatile();
                if v & PTE_P != 0 {
                    e.write_volatile(v | PTE_US);
                }
            }
        }
    };
    set((&raw const boot_pml4).cast_mut().cast(), 0..1);
    set((&raw const boot_pdpt).cast_mut().cast(), 0..RAM_MAP_GIB);
    set(
        (&raw const boot_pdpt).cast_mut().cast(),
        ALIAS_PDPT_INDEX..ALIAS_PDPT_INDEX + 1,
    );
    set((&raw const boot_pd).cast_mut().cast(), 0..RAM_MAP_GIB * 512);
    set(ALIAS_PD.0.get().cast(), 0..NTYPES);
    for pt in &ALIAS_PT {
        set(pt.0.get().cast(), 0..512);
    }
    flush_tlb();
}

/// The arena alias's virtual address for `attr`.
pub fn alias(attr: MemAttr) -> Option<u64> {
    let t = MemType::from_attr(attr)?;
    Some(ALIAS_BASE + type_slot(t) as u64 * ALIAS_STRIDE)
}

/// Walk the live page tables (from CR3) for `va`: the final 4 KiB PTE, or why there is none.
fn walk(va: u64) -> Result<u64, String> {
    let (frame, _) = Cr3::read();
    let mut table = frame.start_address().as_u64();
    for (level, shift) in [(4, 39), (3, 30), (2, 21), (1, 12)] {
        let idx = (va >> shift) & 511;
        // SAFETY: page tables are identity-mapped (all below 4 GiB: image and boot tables).
        let e = unsafe { ((table + idx * 8) as *const u64).read_volatile() };
        if e & PTE_P == 0 {
            return Err(format!("level {level} entry {idx} not present"));
        }
        if level == 1 {
            return Ok(e);
        }
        if level < 4 && e & PTE_PS != 0 {
            return Err(format!("level {level} entry {idx} is a large page"));
        }
        table = e & PTE_ADDR_4K;
    }
    unreachable!()
}

/// Confirm the alias for `attr`: PTE read back, PAT index decoded through the PAT read back,
/// physical address, MTRR type and effective type. `Ok(summary)` when the PAT type is the one
/// asked for and the alias maps the arena's pages; `Err(summary)` otherwise.
pub fn confirm(attr: MemAttr) -> Result<String, String> {
    let st = STATE.get().ok_or("memory types not initialised")?;
    let want = MemType::from_attr(attr).ok_or("not an x86 memory type")?;
    if st.pat_read == 0 {
        return Err("no PAT on this CPU (CPUID.1:EDX[16] = 0)".into());
    }
    let va = alias(attr).ok_or("no alias")?;
    let mut pte0 = 0;
    for p in 0..st.arena_len / PAGE {
        let pte = walk(va + p * PAGE).map_err(|e| format!("va {va:#x}: {e}"))?;
        if p == 0 {
            pte0 = pte;
        }
        if pte & PTE_ADDR_4K != st.arena_phys + p * PAGE {
            return Err(format!(
                "va {:#x} maps {:#x}, not the arena",
                va + p * PAGE,
                pte & PTE_ADDR_4K
            ));
        }
        if pte_pat_index_4k(pte) != pte_pat_index_4k(pte0) {
            return Err(format!("page {p} selects a different PAT entry"));
        }
    }
    let idx = pte_pat_index_4k(pte0);
    let pat = decode_pat(st.pat_read)[usize::from(idx)];
    let mtrr = st
        .mtrrs
        .map(|m| m.type_of_range(st.arena_phys, st.arena_len));
    let (mtrr_s, eff_s) = match (mtrr, pat) {
        (Some(MtrrType::Type(m)), Some(p)) => (m.name(), effective_type(m, p).name()),
        (Some(MtrrType::Mixed), _) => ("mixed", "unknown"),
        (Some(MtrrType::Undefined), _) => ("undefined-overlap", "undefined"),
        (None, Some(p)) => ("none", p.name()),
        (_, None) => ("?", "unknown"),
    };
    let summary = format!(
        "va={va:#x} pa={:#x} pte={pte0:#x} pat_index={idx} pat={} mtrr={mtrr_s} effective={eff_s}",
        st.arena_phys,
        pat.map_or("reserved", MemType::name)
    );
    if pat == Some(want) {
        Ok(format!("{summary} confirmed"))
    } else {
        Err(format!("{summary} NOT {}", want.name()))
    }
}

/// Facts for `begin.platform`.
pub fn facts(out: &mut alloc::collections::BTreeMap<String, String>) {
    let Some(st) = STATE.get() else { return };
    out.insert("pat".into(), format!("{:#018x}", st.pat_read));
    out.insert(
        "pat_written".into(),
        format!(
            "{:#018x}{}",
            st.pat_written,
            if st.pat_written == st.pat_read {
                " (read back equal)"
            } else {
                " (READ BACK DIFFERS)"
            }
        ),
    );
    match &st.mtrrs {
        Some(m) => {
            let mut s = format!(
                "enabled={} fixed={} default={} vcnt={}",
                m.enabled(),
                m.fixed_enabled(),
                m.default_type().map_or("reserved", MemType::name),
                m.cap & 0xff
            );
            for (b, k) in m.var[..m.nvar].iter().filter(|(_, k)| k & (1 << 11) != 0) {
                s.push_str(&format!(
                    "; var base={:#x} mask={:#x} type={}",
                    b & !0xfff,
                    k & !0xfff,
                    MemType::from_mtrr((b & 0xff) as u8).map_or("reserved", MemType::name)
                ));
            }
            out.insert("mtrr".into(), s);
            let t = match m.type_of_range(st.arena_phys, st.arena_len) {
                MtrrType::Type(t) => t.name(),
                MtrrType::Mixed => "mixed",
                MtrrType::Undefined => "undefined (overlapping variable ranges)",
            };
            out.insert(
                "mtrr_arena".into(),
                format!(
                    "{t} for {:#x}+{:#x} (SDM Vol. 3A 13.11.4.1 precedence; effective type per Table 13-7)",
                    st.arena_phys, st.arena_len
                ),
            );
        }
        None => {
            out.insert("mtrr".into(), "not supported (CPUID.1:EDX[12] = 0)".into());
        }
    }
    for a in Arch::X86_64.attrs() {
        let v = match confirm(*a) {
            Ok(s) => s,
            Err(e) => format!("unconfirmed: {e}"),
        };
        out.insert(format!("arena_{}", a.name()), v);
    }
}
