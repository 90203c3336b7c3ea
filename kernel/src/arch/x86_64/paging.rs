//! Memory types for the probe arena: IA32_PAT programmed with `probes::mmu::x86_64::PAT_LAYOUT`,
//! and one alias of the arena's physical pages per x86 memory type and leaf size (`mapping=`:
//! 4 KiB PTEs, 2 MiB PDEs, 1 GiB PDPTEs), whose PAT/PCD/PWT bits select that type. Every alias
//! is confirmed by walking the live page tables from CR3 and decoding the leaf's PAT index
//! through the IA32_PAT value read back from the MSR; the MTRR type of the arena and the
//! effective type (SDM Vol. 3A Table 13-7) are reported too. `mtrr=` puts a variable-range MTRR
//! over the arena's 2 MiB window and `caches=off` sets CR0.CD, on every core ([`set_variant`]).
//!
//! Note (SDM Vol. 3A 13.12.4): mapping one physical page with different memory types is not
//! supported by Intel for coherent use; the probes use one alias at a time, and the identity map
//! of the same pages (WB) is never touched by probes. QEMU's TCG ignores memory types entirely.

use alloc::format;
use alloc::string::String;
use core::cell::UnsafeCell;

use core::sync::atomic::{AtomicUsize, Ordering};
use probes::attr::{Arch, MemAttr};
use probes::mapping::{MapSize, Variant};
use probes::mmu::x86_64::{
    decode_pat, effective_type, mtrr_var_pair, pat_index, pat_msr_value, pde_2m, pdpte_1g, pte_4k,
    pte_pat_index_4k, pte_pat_index_large, table_entry, MemType, MtrrType, Mtrrs, IA32_MTRRCAP,
    IA32_MTRR_DEF_TYPE, IA32_MTRR_FIX16K_80000, IA32_MTRR_FIX16K_A0000, IA32_MTRR_FIX4K_C0000,
    IA32_MTRR_FIX64K_00000, IA32_MTRR_PHYSBASE0, IA32_PAT, MAX_VAR_MTRRS, PAT_LAYOUT, PTE_ADDR_4K,
    PTE_P, PTE_PS, PTE_US,
};
use spin::Once;
use x86_64::registers::control::{Cr0, Cr3, Cr4};
use x86_64::registers::model_specific::Msr;

use super::cpuid;

const PAGE: u64 = 4096;
const GIB: u64 = 1 << 30;
/// The arena sits at the start of a 2 MiB-aligned window of its own (see `mod.rs`): 4 KiB and
/// 2 MiB aliases map that window, a 1 GiB alias the GiB holding it.
pub const WINDOW: u64 = 2 << 20;
/// Each alias owns one GiB of VA from 8 GiB up: PDPT[8 + size × 6 + type] (PML4\[0\]), above the
/// 4 GiB identity map, so a 1 GiB page fits and the arena's VA keeps its PA's offset.
const ALIAS_PDPT_INDEX: usize = 8;
const NTYPES: usize = 6;
const NSIZES: usize = 3;

#[repr(C, align(4096))]
struct Table(UnsafeCell<[u64; 512]>);
// SAFETY: written only by the boot core during `init`, before any other core runs; read by the
// MMU and by `walk` afterwards.
unsafe impl Sync for Table {}

/// Page directories of the 4 KiB aliases (0..6) and of the 2 MiB aliases (6..12).
static ALIAS_PD: [Table; 2 * NTYPES] = [const { Table(UnsafeCell::new([0; 512])) }; 2 * NTYPES];
/// Page tables of the 4 KiB aliases, 512 PTEs over the window each.
static ALIAS_PT: [Table; NTYPES] = [const { Table(UnsafeCell::new([0; 512])) }; NTYPES];

extern "C" {
    /// The boot page tables (`entry.S`): PML4\[0\] -> PDPT, PDPT[0..4] -> the four PDs (2 MiB
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
    pub arena_phys: u64,
    pub arena_len: u64,
    /// CPUID.80000001H:EDX.Page1GB[bit 26]: 1 GiB pages exist.
    pub has_1g: bool,
    /// The variable-range MTRR `mtrr=` uses: the first one the firmware left invalid.
    pub free_var: Option<usize>,
}

static STATE: Once<State> = Once::new();
/// The MTRRs as last read back (after `init` and after every `set_variant` that changed them).
static MTRRS: spin::Mutex<Option<Mtrrs>> = spin::Mutex::new(None);
/// What `set_variant` last made effective on every core: (`mtrr=` type, caches on).
static CURRENT: spin::Mutex<(Option<MemType>, bool)> = spin::Mutex::new((None, true));

fn rdmsr(m: u32) -> u64 {
    // SAFETY: callers only read MSRs whose presence CPUID reported (PAT, MTRRs).
    unsafe { Msr::new(m).read() }
}

/// CPUID.1:EDX\[16\] PAT, \[12\] MTRR.
fn has_pat() -> bool {
    cpuid(1).edx & (1 << 16) != 0
}
fn has_mtrr() -> bool {
    cpuid(1).edx & (1 << 12) != 0
}
/// CPUID.80000001H:EDX\[26\] Page1GB.
fn has_1g_pages() -> bool {
    cpuid(0x8000_0000).eax >= 0x8000_0001 && cpuid(0x8000_0001).edx & (1 << 26) != 0
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

fn size_index(size: MapSize) -> usize {
    MapSize::ALL.iter().position(|&m| m == size).unwrap_or(0)
}

/// The GiB of VA the alias of type slot `slot` and leaf size `size` lives in.
fn alias_gib(size: MapSize, slot: usize) -> u64 {
    (ALIAS_PDPT_INDEX + size_index(size) * NTYPES + slot) as u64 * GIB
}

/// The physical block a `size` alias maps around the arena at `phys`.
pub fn alias_span(size: MapSize, phys: u64) -> (u64, u64) {
    match size {
        MapSize::Block1g => (phys & !(GIB - 1), GIB),
        _ => (phys & !(WINDOW - 1), WINDOW),
    }
}

/// Boot core: program the PAT and map the arena (`phys`, `len` bytes, at the start of its own
/// 2 MiB-aligned window, identity-mapped below 4 GiB) once per memory type and leaf size: 4 KiB
/// PTEs, 2 MiB PDEs and (where the CPU has them) 1 GiB PDPTEs, PAT bit at bit 12 in the latter
/// two (`probes::mmu::x86_64::pde_2m`, `pdpte_1g`).
pub fn init(phys: u64, len: u64) {
    let pat_read = program_pat().unwrap_or(0);
    let has_1g = has_1g_pages();
    let window = phys & !(WINDOW - 1);
    let pd_slot = ((window & (GIB - 1)) >> 21) as usize;
    let pdpt = (&raw const boot_pdpt).cast_mut().cast::<u64>();
    for (slot, attr) in Arch::X86_64.attrs().iter().enumerate() {
        let Some(t) = MemType::from_attr(*attr) else {
            continue;
        };
        let Some(idx) = pat_index(&PAT_LAYOUT, t) else {
            continue;
        };
        let pt = ALIAS_PT[slot].0.get().cast::<u64>();
        let pd4k = ALIAS_PD[slot].0.get().cast::<u64>();
        let pd2m = ALIAS_PD[NTYPES + slot].0.get().cast::<u64>();
        // SAFETY: `pt`, `pd4k`, `pd2m` are this slot's 512-entry tables, not yet linked in;
        // `pdpt` is the boot PDPT whose entries 8.. (8 GiB up) nothing else uses; every index
        // is below 512 (p < 512, pd_slot < 512, 8 + 3 × 6 < 512).
        unsafe {
            for p in 0..512u64 {
                pt.add(p as usize)
                    .write_volatile(pte_4k(window + p * PAGE, idx));
            }
            pd4k.add(pd_slot).write_volatile(table_entry(pt as u64));
            pd2m.add(pd_slot).write_volatile(pde_2m(window, idx));
            let at = |size: MapSize| pdpt.add((alias_gib(size, slot) / GIB) as usize);
            at(MapSize::Page4k).write_volatile(table_entry(pd4k as u64));
            at(MapSize::Block2m).write_volatile(table_entry(pd2m as u64));
            if has_1g {
                at(MapSize::Block1g).write_volatile(pdpte_1g(phys & !(GIB - 1), idx));
            }
        }
    }
    flush_tlb();
    let mtrrs = read_mtrrs();
    let free_var = mtrrs.and_then(|m| (0..m.nvar).find(|&i| m.var[i].1 & (1 << 11) == 0));
    *MTRRS.lock() = mtrrs;
    STATE.call_once(|| State {
        pat_written: pat_msr_value(&PAT_LAYOUT),
        pat_read,
        arena_phys: phys,
        arena_len: len,
        has_1g,
        free_var,
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
        ALIAS_PDPT_INDEX..ALIAS_PDPT_INDEX + NSIZES * NTYPES,
    );
    set((&raw const boot_pd).cast_mut().cast(), 0..RAM_MAP_GIB * 512);
    for pd in &ALIAS_PD {
        set(pd.0.get().cast(), 0..512);
    }
    for pt in &ALIAS_PT {
        set(pt.0.get().cast(), 0..512);
    }
    flush_tlb();
}

/// The arena's virtual address through the alias for `attr` with leaf size `size`.
pub fn alias(attr: MemAttr, size: MapSize) -> Option<u64> {
    let t = MemType::from_attr(attr)?;
    let st = STATE.get()?;
    Some(alias_gib(size, type_slot(t)) + (st.arena_phys & (GIB - 1)))
}

/// Walk the live page tables (from CR3) for `va`: the leaf entry and its level (1 = PTE,
/// 2 = 2 MiB PDE, 3 = 1 GiB PDPTE), or why there is none.
fn walk(va: u64) -> Result<(u64, u32), String> {
    let (frame, _) = Cr3::read();
    let mut table = frame.start_address().as_u64();
    for (level, shift) in [(4u32, 39), (3, 30), (2, 21), (1, 12)] {
        let idx = (va >> shift) & 511;
        // SAFETY: page tables are identity-mapped (all below 4 GiB: image and boot tables).
        let e = unsafe { ((table + idx * 8) as *const u64).read_volatile() };
        if e & PTE_P == 0 {
            return Err(format!("level {level} entry {idx} not present"));
        }
        if level == 1 || (level < 4 && e & PTE_PS != 0) {
            return Ok((e, level));
        }
        table = e & PTE_ADDR_4K;
    }
    unreachable!()
}

/// The MTRR type of the physical span a `size` alias maps (a large page over several MTRR
/// types has an undefined memory type: SDM Vol. 3A 13.11.9).
fn mtrr_of(size: MapSize, st: &State) -> Option<MtrrType> {
    let m = (*MTRRS.lock())?;
    Some(match size {
        MapSize::Page4k => m.type_of_range(st.arena_phys, st.arena_len),
        _ => {
            let (base, len) = alias_span(size, st.arena_phys);
            m.type_of_block(base, len)
        }
    })
}

/// The effective memory type of the `size` alias of PAT type `pat` (SDM Vol. 3A 13.5.2.2,
/// Table 13-7), with the MTRR type it comes from.
fn effective_of(size: MapSize, pat: MemType, st: &State) -> (&'static str, &'static str) {
    match mtrr_of(size, st) {
        Some(MtrrType::Type(m)) => (m.name(), effective_type(m, pat).name()),
        Some(MtrrType::Mixed) if size != MapSize::Page4k => (
            "mixed",
            "undefined (a large page over several MTRR types, SDM Vol. 3A 13.11.9)",
        ),
        Some(MtrrType::Mixed) => ("mixed", "unknown"),
        Some(MtrrType::Undefined) => ("undefined-overlap", "undefined"),
        None => ("none", pat.name()),
    }
}

/// The effective type name for records (`effective`).
pub fn effective_name(attr: MemAttr, size: MapSize) -> Option<String> {
    let st = STATE.get()?;
    let t = MemType::from_attr(attr)?;
    let idx = pat_index(&PAT_LAYOUT, t)?;
    let pat = decode_pat(st.pat_read)[usize::from(idx)]?;
    Some(effective_of(size, pat, st).1.into())
}

/// Confirm the alias for `attr` with leaf size `size` by walking the live tables: the leaf's
/// level, physical address and PAT index (decoded from bit 7 in a PTE, bit 12 in a PDE/PDPTE)
/// through the IA32_PAT read back, the MTRR type and the effective type. `Ok(summary)` when
/// the PAT type is the one asked for and the alias maps the arena's pages; `Err(summary)`
/// otherwise.
pub fn confirm(attr: MemAttr, size: MapSize) -> Result<String, String> {
    let st = STATE.get().ok_or("memory types not initialised")?;
    let want = MemType::from_attr(attr).ok_or("not an x86 memory type")?;
    if st.pat_read == 0 {
        return Err("no PAT on this CPU (CPUID.1:EDX[16] = 0)".into());
    }
    if size == MapSize::Block1g && !st.has_1g {
        return Err(
            "1 GiB pages are not implemented by this CPU (CPUID.80000001H:EDX.Page1GB[bit 26] \
             = 0; QEMU: --cpu max)"
                .into(),
        );
    }
    let va = alias(attr, size).ok_or("no alias")?;
    let want_level = match size {
        MapSize::Page4k => 1,
        MapSize::Block2m => 2,
        MapSize::Block1g => 3,
    };
    let mut leaf0 = 0;
    for p in 0..st.arena_len / PAGE {
        let (e, level) = walk(va + p * PAGE).map_err(|e| format!("va {va:#x}: {e}"))?;
        if level != want_level {
            return Err(format!(
                "va {:#x}: leaf at level {level}, want {want_level} for {}",
                va + p * PAGE,
                size.name()
            ));
        }
        let leaf_size = 1u64 << (12 + 9 * (level - 1));
        let pa = (e & PTE_ADDR_4K & !(leaf_size - 1)) + ((va + p * PAGE) & (leaf_size - 1));
        if pa != st.arena_phys + p * PAGE {
            return Err(format!(
                "va {:#x} maps {pa:#x}, not the arena",
                va + p * PAGE
            ));
        }
        if p == 0 {
            leaf0 = e;
        } else if e != leaf0 && level == 1 && pte_pat_index_4k(e) != pte_pat_index_4k(leaf0) {
            return Err(format!("page {p} selects a different PAT entry"));
        }
    }
    let idx = if want_level == 1 {
        pte_pat_index_4k(leaf0)
    } else {
        pte_pat_index_large(leaf0)
    };
    let pat = decode_pat(st.pat_read)[usize::from(idx)];
    let (mtrr_s, eff_s) = match pat {
        Some(p) => effective_of(size, p, st),
        None => ("?", "unknown"),
    };
    let summary = format!(
        "va={va:#x} pa={:#x} leaf={}@L{want_level} entry={leaf0:#x} pat_index={idx} pat={} \
         mtrr={mtrr_s} effective={eff_s}",
        st.arena_phys,
        size.name(),
        pat.map_or("reserved", MemType::name)
    );
    if pat == Some(want) {
        Ok(format!("{summary} confirmed"))
    } else {
        Err(format!("{summary} NOT {}", want.name()))
    }
}

/// Rendezvous counters for `set_variant`'s MTRR / cache procedure.
static ARRIVED: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];

fn rendezvous(k: usize, n: usize) {
    ARRIVED[k].fetch_add(1, Ordering::AcqRel);
    while ARRIVED[k].load(Ordering::Acquire) < n {
        core::hint::spin_loop();
    }
}

/// Make `mtrr` (a variable range over the arena's 2 MiB window, or none) and `caches` (CR0.CD)
/// effective on every online core, by the procedure of SDM Vol. 3A 13.11.7.2 / 13.11.8 ("MTRR
/// considerations in MP systems"): all cores rendezvous, enter no-fill cache mode (CR0.CD = 1,
/// NW = 0), WBINVD, flush the TLBs (CR4.PGE toggled), disable the MTRRs (IA32_MTRR_DEF_TYPE.E =
/// 0), write the range, re-enable, WBINVD and flush again, leave CD = 1 for `caches=off` or
/// clear it, and rendezvous again. `run_on` runs one role per core.
pub fn set_variant(v: &Variant, cores: usize) -> Result<(), String> {
    let st = STATE.get().ok_or("memory types not initialised")?;
    if v.size == MapSize::Block1g && !st.has_1g {
        return Err("mapping=1g: 1 GiB pages are not implemented by this CPU \
             (CPUID.80000001H:EDX.Page1GB[bit 26] = 0; QEMU: --cpu max)"
            .into());
    }
    let want = (v.mtrr, v.caches);
    if *CURRENT.lock() == want {
        return Ok(());
    }
    let m = (*MTRRS.lock()).ok_or("mtrr=: no MTRRs on this CPU (CPUID.1:EDX[12] = 0)")?;
    let pair = match v.mtrr {
        None => None,
        Some(t) => {
            if !m.enabled() {
                return Err(
                    "mtrr=: the firmware left the MTRRs disabled (IA32_MTRR_DEF_TYPE.E = 0)".into(),
                );
            }
            if t == MemType::Wc && m.cap & (1 << 10) == 0 {
                return Err("mtrr=wc: IA32_MTRRCAP.WC (bit 10) = 0, no WC MTRR type".into());
            }
            let window = st.arena_phys & !(WINDOW - 1);
            let pair = mtrr_var_pair(window, WINDOW, t, m.phys_bits)
                .ok_or_else(|| format!("mtrr=: cannot express {window:#x}+{WINDOW:#x}"))?;
            Some(pair)
        }
    };
    let slot = match (st.free_var, pair) {
        (Some(i), _) => Some(i),
        (None, None) => None,
        (None, Some(_)) => {
            return Err(format!(
                "mtrr=: no free variable-range MTRR (IA32_MTRRCAP.VCNT = {}, all valid)",
                m.cap & 0xff
            ))
        }
    };
    for a in &ARRIVED {
        a.store(0, Ordering::Release);
    }
    let cpus: alloc::vec::Vec<usize> = (0..cores).collect();
    let body = |_role: usize| program_on_this_core(slot, pair, v.caches, cores);
    super::smp::run_on(&cpus, 10_000, &body)
        .map_err(|e| format!("MTRR / cache procedure did not finish on every core: {e:?}"))?;
    *MTRRS.lock() = read_mtrrs();
    *CURRENT.lock() = want;
    Ok(())
}

/// One core's part of [`set_variant`] (SDM Vol. 3A 13.11.7.2 steps, numbered there).
fn program_on_this_core(slot: Option<usize>, pair: Option<(u64, u64)>, caches: bool, n: usize) {
    use x86_64::registers::control::{Cr0Flags, Cr4Flags};
    rendezvous(0, n);
    let cr0 = Cr0::read();
    // SAFETY: CD = 1, NW = 0: no-fill cache mode; memory stays coherent (SDM Table 13-5).
    unsafe { Cr0::write((cr0 | Cr0Flags::CACHE_DISABLE) - Cr0Flags::NOT_WRITE_THROUGH) };
    wbinvd();
    let cr4 = Cr4::read();
    let pge = cr4.contains(Cr4Flags::PAGE_GLOBAL);
    if pge {
        // SAFETY: clearing PGE flushes every TLB entry, global ones included.
        unsafe { Cr4::write(cr4 - Cr4Flags::PAGE_GLOBAL) };
    } else {
        flush_tlb();
    }
    if let Some(i) = slot {
        let def = rdmsr(IA32_MTRR_DEF_TYPE);
        let n_base = IA32_MTRR_PHYSBASE0 + 2 * i as u32;
        // SAFETY: the MTRRs exist (checked by the caller); this sequence is the SDM's, run on
        // every core at once with the caches in no-fill mode; variable range `i` was invalid
        // (unused) when the firmware handed over, so only the arena's window changes type.
        unsafe {
            Msr::new(IA32_MTRR_DEF_TYPE).write(def & !(1 << 11));
            match pair {
                Some((base, mask)) => {
                    Msr::new(n_base).write(base);
                    Msr::new(n_base + 1).write(mask);
                }
                None => Msr::new(n_base + 1).write(0),
            }
            Msr::new(IA32_MTRR_DEF_TYPE).write(def);
        }
    }
    wbinvd();
    flush_tlb();
    let cd = if caches {
        Cr0::read() - Cr0Flags::CACHE_DISABLE
    } else {
        Cr0::read() | Cr0Flags::CACHE_DISABLE
    };
    // SAFETY: CD back to 0 (normal cache mode), or left 1 for caches=off (no-fill mode after
    // the WBINVD above: every access goes to memory).
    unsafe { Cr0::write(cd) };
    if pge {
        // SAFETY: restores the PGE setting found.
        unsafe { Cr4::write(cr4) };
    }
    rendezvous(1, n);
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
    let mtrrs = *MTRRS.lock();
    match &mtrrs {
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
            if let Some(i) = st.free_var {
                out.insert(
                    "mtrr_var_for_arena".into(),
                    format!("{i} (IA32_MTRR_PHYSBASE{i}/PHYSMASK{i}, free at boot; mtrr= uses it)"),
                );
            }
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
    for size in MapSize::ALL {
        for a in Arch::X86_64.attrs() {
            let v = match confirm(*a, size) {
                Ok(s) => s,
                Err(e) => format!("unconfirmed: {e}"),
            };
            let key = match size {
                MapSize::Page4k => format!("arena_{}", a.name()),
                _ => format!("arena_{}_{}", a.name(), size.name()),
            };
            out.insert(key, v);
        }
    }
}
