//! Stage 1 translation at EL1: identity map (RAM Normal write-back inner shareable, everything
//! else in the low 4 GiB Device-nGnRnE), plus the probe arena's aliases — the same physical pages
//! mapped once per attribute (and per shareability for Normal memory). Descriptor encodings and
//! the table builder are `probes::mmu::aarch64` (host unit-tested); this file only owns the
//! tables and the system registers.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::arch::asm;
use core::cell::UnsafeCell;

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{
    ReadWriteable, Readable, Writeable, ID_AA64MMFR0_EL1, MAIR_EL1, SCTLR_EL1, TCR_EL1, TTBR0_EL1,
    TTBR1_EL1,
};
use probes::attr::MemAttr;
use probes::mapping::{Granule, MapSize};
use probes::mmu::aarch64::{self as desc, Builder, Leaf, Shareability, Table};
use probes::mmu::granule::{self as gdesc, Geometry};

/// Virtual base of the arena aliases (256 GiB: above any RAM or MMIO identity mapping).
pub const ALIAS_BASE: u64 = 0x40_0000_0000;
/// Each alias owns one 1 GiB-aligned GiB of VA, so that a 1 GiB block fits and the arena's VA
/// keeps its PA's offset within the GiB (the congruence every leaf size needs).
pub const ALIAS_STRIDE: u64 = 1 << 30;
/// Bytes every 4 KiB / 2 MiB alias maps: the 2 MiB-aligned block holding the arena (a 1 GiB
/// alias maps the 1 GiB-aligned block holding it). Probes touch only the arena's pages in it.
pub const WINDOW: u64 = 2 << 20;

/// The aliases, in VA order: each attribute, and the two other shareabilities for Normal ones.
pub const ALIASES: [(MemAttr, Shareability); 12] = [
    (MemAttr::NormalWb, Shareability::Inner),
    (MemAttr::NormalWt, Shareability::Inner),
    (MemAttr::NormalNc, Shareability::Inner),
    (MemAttr::DeviceNGnRnE, Shareability::Non),
    (MemAttr::DeviceNGnRE, Shareability::Non),
    (MemAttr::DeviceGRE, Shareability::Non),
    (MemAttr::NormalWb, Shareability::Outer),
    (MemAttr::NormalWt, Shareability::Outer),
    (MemAttr::NormalNc, Shareability::Outer),
    (MemAttr::NormalWb, Shareability::Non),
    (MemAttr::NormalWt, Shareability::Non),
    (MemAttr::NormalNc, Shareability::Non),
];

/// Root, identity-map tables, and per alias: L2 + L3 (4 KiB pages), L2 (2 MiB block).
const POOL_TABLES: usize = 48;

struct Pool(UnsafeCell<[Table; POOL_TABLES]>);
// SAFETY: written only by core 0 in `build`, before the MMU is on and before any other core
// runs; afterwards only the MMU and `translate` (reads) use it.
unsafe impl Sync for Pool {}

static POOL: Pool = Pool(UnsafeCell::new([Table::EMPTY; POOL_TABLES]));

/// Register values every core loads to turn translation on.
#[derive(Clone, Copy, Debug)]
pub struct Regs {
    pub mair: u64,
    pub tcr: u64,
    pub ttbr0: u64,
}

/// Build the tables for `ram` regions and an arena of `arena_len` bytes at physical `arena_pa`
/// (which must lie inside one 2 MiB block).
pub fn build(ram: &[(usize, usize)], arena_pa: u64, arena_len: u64) -> Result<u64, String> {
    // SAFETY: see `Pool`: only core 0 calls this, once, with the MMU off.
    let tables = unsafe { &mut *POOL.0.get() };
    let pool_pa = tables.as_ptr() as u64;
    let mut b = Builder::new(tables, pool_pa);
    let err = |what: &str, e| format!("page tables: {what}: {e:?}");

    // RAM (page-rounded inwards), then everything else below 4 GiB as Device-nGnRnE.
    let mut ram: Vec<(u64, u64)> = ram
        .iter()
        .map(|&(s, l)| {
            let s = s as u64;
            let start = (s + desc::PAGE - 1) & !(desc::PAGE - 1);
            let end = (s + l as u64) & !(desc::PAGE - 1);
            (start, end)
        })
        .filter(|(s, e)| e > s)
        .collect();
    ram.sort_unstable();
    for &(s, e) in &ram {
        b.map(s, s, e - s, Leaf::RAM).map_err(|e| err("RAM", e))?;
    }
    let mut cursor = 0u64;
    const LOW: u64 = 1 << 32;
    for &(s, e) in ram.iter().chain(core::iter::once(&(LOW, LOW))) {
        let s = s.min(LOW);
        if s > cursor {
            b.map(cursor, cursor, s - cursor, Leaf::MMIO)
                .map_err(|e| err("MMIO", e))?;
        }
        cursor = cursor.max(e.min(LOW));
    }
    if arena_pa / WINDOW != (arena_pa + arena_len - 1) / WINDOW {
        return Err(format!(
            "arena {arena_pa:#x}+{arena_len:#x} crosses a 2 MiB boundary"
        ));
    }
    for size in MapSize::ALL {
        let (pa, len) = alias_span(size, arena_pa);
        for (k, &(attr, sh)) in ALIASES.iter().enumerate() {
            let gib = alias_gib(size, k);
            b.map_leaf(
                gib + (pa & (GIB - 1)),
                pa,
                len,
                Leaf::data(attr, sh),
                size.bytes(),
            )
            .map_err(|e| err(&format!("arena alias {attr} {}", size.name()), e))?;
        }
    }
    // The tables were written with the MMU (and so the caches) off, straight to memory; drop
    // any stale line that could shadow them once walks are cacheable.
    dc_range(pool_pa as usize, POOL_TABLES * 4096, Dc::Civac);
    Ok(b.root_pa())
}

const GIB: u64 = 1 << 30;

/// The physical span an alias of leaf size `size` maps around the arena: the 2 MiB-aligned block
/// holding it (4 KiB pages or one 2 MiB block), or the 1 GiB-aligned block holding it.
pub fn alias_span(size: MapSize, arena_pa: u64) -> (u64, u64) {
    match size {
        MapSize::Block1g => (arena_pa & !(GIB - 1), GIB),
        _ => (arena_pa & !(WINDOW - 1), WINDOW),
    }
}

/// The 1 GiB of VA that alias `k` of leaf size `size` lives in.
fn alias_gib(size: MapSize, k: usize) -> u64 {
    let s = MapSize::ALL.iter().position(|&m| m == size).unwrap_or(0);
    ALIAS_BASE + (s * ALIASES.len() + k) as u64 * ALIAS_STRIDE
}

/// VA of the arena (physical `arena_pa`) through the alias for `attr` with shareability `sh`
/// (ignored for Device memory, always Outer Shareable) and leaf size `size`.
pub fn alias_for(attr: MemAttr, sh: Shareability, size: MapSize, arena_pa: u64) -> Option<u64> {
    ALIASES
        .iter()
        .position(|&(a, s)| a == attr && (s == sh || attr.is_arm_device()))
        .map(|k| alias_gib(size, k) + (arena_pa & (GIB - 1)))
}

/// Walk the live tables for `va`: output address, leaf descriptor, level.
pub fn translate(va: u64) -> Option<(u64, u64, usize)> {
    // SAFETY: the pool is only written by `build` before any reader exists (see `Pool`).
    let tables = unsafe { &*POOL.0.get() };
    desc::translate(tables, tables.as_ptr() as u64, va)
}

/// Confirm every alias of the arena by walking the tables: `attr/share/size@va level=L ok`, or
/// what is wrong.
pub fn confirm_aliases(arena_pa: u64) -> String {
    let mut out: Vec<String> = Vec::new();
    for size in MapSize::ALL {
        let want_level = match size {
            MapSize::Page4k => 3,
            MapSize::Block2m => 2,
            MapSize::Block1g => 1,
        };
        for &(attr, sh) in &ALIASES {
            let Some(va) = alias_for(attr, sh, size, arena_pa) else {
                continue;
            };
            let got = match translate(va) {
                Some((pa, d, level))
                    if pa == arena_pa
                        && level == want_level
                        && desc::desc_attr(d) == Some(attr)
                        && (d >> desc::SH_SHIFT) & 3 == sh as u64 =>
                {
                    "ok".to_string()
                }
                Some((pa, d, level)) => format!("MISMATCH pa={pa:#x} desc={d:#x} level={level}"),
                None => "UNMAPPED".to_string(),
            };
            out.push(format!(
                "{attr}/{}/{}@{va:#x} {got}",
                sh.name(),
                size.name()
            ));
        }
    }
    out.join(",")
}

/// The MAIR and TCR values, written through the aarch64-cpu field names and cross-checked
/// against the host-tested encodings.
pub fn regs(ttbr0: u64) -> Result<Regs, String> {
    MAIR_EL1.write(
        MAIR_EL1::Attr0_Normal_Outer::WriteBack_NonTransient_ReadWriteAlloc
            + MAIR_EL1::Attr0_Normal_Inner::WriteBack_NonTransient_ReadWriteAlloc
            + MAIR_EL1::Attr1_Normal_Outer::WriteThrough_NonTransient_ReadWriteAlloc
            + MAIR_EL1::Attr1_Normal_Inner::WriteThrough_NonTransient_ReadWriteAlloc
            + MAIR_EL1::Attr2_Normal_Outer::NonCacheable
            + MAIR_EL1::Attr2_Normal_Inner::NonCacheable
            + MAIR_EL1::Attr3_Device::nonGathering_nonReordering_noEarlyWriteAck
            + MAIR_EL1::Attr4_Device::nonGathering_nonReordering_EarlyWriteAck
            + MAIR_EL1::Attr5_Device::Gathering_Reordering_EarlyWriteAck,
    );
    let ips = ID_AA64MMFR0_EL1.read(ID_AA64MMFR0_EL1::PARange).min(0b101);
    TCR_EL1.write(
        TCR_EL1::T0SZ.val(desc::T0SZ)
            + TCR_EL1::EPD0::EnableTTBR0Walks
            + TCR_EL1::IRGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
            + TCR_EL1::ORGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
            + TCR_EL1::SH0::Inner
            + TCR_EL1::TG0::KiB_4
            + TCR_EL1::EPD1::DisableTTBR1Walks
            + TCR_EL1::IPS.val(ips),
    );
    let r = Regs {
        mair: MAIR_EL1.get(),
        tcr: TCR_EL1.get(),
        ttbr0,
    };
    if r.mair != desc::mair_value() {
        return Err(format!(
            "MAIR_EL1 {:#x} differs from the table encoding {:#x}",
            r.mair,
            desc::mair_value()
        ));
    }
    if r.tcr != desc::tcr_value(ips) {
        return Err(format!(
            "TCR_EL1 {:#x} differs from the expected {:#x}",
            r.tcr,
            desc::tcr_value(ips)
        ));
    }
    Ok(r)
}

/// Turn translation and caches on for the calling core (MAIR and TCR already written).
pub fn enable(r: &Regs) {
    TTBR0_EL1.set_baddr(r.ttbr0);
    barrier::isb(barrier::SY);
    // SAFETY: invalidates this core's EL1 TLB entries and instruction cache; no memory effect.
    unsafe {
        asm!(
            "tlbi vmalle1",
            "dsb nsh",
            "ic iallu",
            "dsb nsh",
            options(nostack)
        )
    };
    barrier::isb(barrier::SY);
    SCTLR_EL1.modify(SCTLR_EL1::M::Enable + SCTLR_EL1::C::Cacheable + SCTLR_EL1::I::Cacheable);
    barrier::isb(barrier::SY);
}

#[derive(Clone, Copy)]
pub enum Dc {
    /// Clean to the point of coherency.
    Cvac,
    /// Clean and invalidate to the point of coherency.
    Civac,
}

/// Smallest data cache line (CTR_EL0.DminLine, log2 of words).
pub fn dline() -> usize {
    let ctr: u64;
    // SAFETY: reads CTR_EL0, which EL1 may always read.
    unsafe { asm!("mrs {0}, ctr_el0", out(reg) ctr, options(nomem, nostack)) };
    4 << ((ctr >> 16) & 0xf)
}

/// Data cache maintenance by VA over `[start, start + len)`, then `dsb sy`.
pub fn dc_range(start: usize, len: usize, op: Dc) {
    let line = dline();
    let mut a = start & !(line - 1);
    while a < start + len {
        match op {
            // SAFETY: cache maintenance by VA on a mapped (or, MMU off, any) address; it
            // changes no data as seen by a coherent observer.
            Dc::Cvac => unsafe { asm!("dc cvac, {0}", in(reg) a, options(nostack)) },
            // SAFETY: as above.
            Dc::Civac => unsafe { asm!("dc civac, {0}", in(reg) a, options(nostack)) },
        }
        a += line;
    }
    barrier::dsb(barrier::SY);
}

// ---- `granule=` (issue 13): the arena aliases with a 16 KiB or 64 KiB granule ----
//
// Design (docs/probes.md "Translation granule"): the image's identity map and the 4 KiB aliases
// stay in TTBR0_EL1 with TG0 = 4 KiB, always. The 16/64 KiB aliases live in TTBR1_EL1, whose
// granule TCR_EL1.TG1 chooses independently of TG0 (Arm ARM D19.2 TCR_EL1; D8.2: each TTBR has
// its own granule). Only one TG1 can be in effect, so `use_granule` switches TTBR1_EL1 and TG1 on
// every core between combinations; code, stacks and the kernel's data never move.

/// Bottom of the TTBR1_EL1 region with T1SZ = 25 (VA\[63:39\] all ones). Alias `k` is the 2 MiB
/// window around the arena at `GRANULE_ALIAS_BASE + k × 2 MiB` (the same VA for either granule).
pub const GRANULE_ALIAS_BASE: u64 = 0xffff_ff80_0000_0000;

/// A pool of `N` descriptors, 64 KiB-aligned (so every 16 KiB or 64 KiB table in it is aligned
/// to its size, D8.2: a table is aligned to its size).
#[repr(C, align(65536))]
struct GranulePool<const N: usize>(UnsafeCell<[u64; N]>);
// SAFETY: as `Pool`: written only by core 0 in `build_granules`, before other cores run and
// before TTBR1 walks are enabled; read afterwards by the MMU and `translate_granule`.
unsafe impl<const N: usize> Sync for GranulePool<N> {}

/// 16 KiB: level-1 root, one level-2 and one level-3 table (2048 entries each); 64 KiB: level-2
/// root and one level-3 table (8192 entries). Host test `kernel_alias_layout_fits_its_pools`.
static POOL16: GranulePool<{ 3 * 2048 }> = GranulePool(UnsafeCell::new([0; 3 * 2048]));
static POOL64: GranulePool<{ 2 * 8192 }> = GranulePool(UnsafeCell::new([0; 2 * 8192]));

fn granule_pool(g: Granule) -> Option<*mut [u64]> {
    match g {
        Granule::K16 => Some(POOL16.0.get() as *mut [u64]),
        Granule::K64 => Some(POOL64.0.get() as *mut [u64]),
        Granule::K4 => None,
    }
}

/// Whether this CPU implements granule `g` for stage 1 (ID_AA64MMFR0_EL1.TGran*).
pub fn granule_implemented(g: Granule) -> bool {
    g.implemented(ID_AA64MMFR0_EL1.get())
}

/// Build the TTBR1 tables of every implemented 16/64 KiB granule: each alias of `ALIASES` maps
/// the 2 MiB window holding the arena with pages of the granule.
pub fn build_granules(arena_pa: u64) -> Result<(), String> {
    let window = arena_pa & !(WINDOW - 1);
    for g in [Granule::K16, Granule::K64] {
        let Some(pool) = granule_pool(g).filter(|_| granule_implemented(g)) else {
            continue;
        };
        // SAFETY: see `GranulePool`: only core 0, once, before any TTBR1 walk.
        let pool = unsafe { &mut *pool };
        let pool_pa = pool.as_ptr() as u64;
        let mut t = gdesc::Tables::new(Geometry::new(g), pool, pool_pa);
        for (k, &(attr, sh)) in ALIASES.iter().enumerate() {
            t.map_pages(
                GRANULE_ALIAS_BASE + k as u64 * WINDOW,
                window,
                WINDOW,
                Leaf::data(attr, sh),
            )
            .map_err(|e| format!("granule={} alias {attr}: {e:?}", g.name()))?;
        }
        dc_range(pool_pa as usize, core::mem::size_of_val(pool), Dc::Civac);
    }
    Ok(())
}

/// VA of the arena through the `granule=` alias for `attr` / `sh` (Device: any `sh`).
pub fn granule_alias_for(attr: MemAttr, sh: Shareability, arena_pa: u64) -> Option<u64> {
    ALIASES
        .iter()
        .position(|&(a, s)| a == attr && (s == sh || attr.is_arm_device()))
        .map(|k| GRANULE_ALIAS_BASE + k as u64 * WINDOW + (arena_pa & (WINDOW - 1)))
}

/// Walk granule `g`'s tables for `va` (output address, leaf descriptor, level).
pub fn translate_granule(g: Granule, va: u64) -> Option<(u64, u64, usize)> {
    let pool = granule_pool(g)?;
    // SAFETY: written only by `build_granules` before any reader exists (see `GranulePool`).
    let pool = unsafe { &*pool };
    gdesc::translate(Geometry::new(g), pool, pool.as_ptr() as u64, va)
}

/// Confirm every `granule=` alias by walking its tables, like `confirm_aliases`: empty when the
/// CPU does not implement `g`.
pub fn confirm_granule_aliases(g: Granule, arena_pa: u64) -> String {
    if !granule_implemented(g) {
        return String::new();
    }
    let mut out: Vec<String> = Vec::new();
    for &(attr, sh) in &ALIASES {
        let Some(va) = granule_alias_for(attr, sh, arena_pa) else {
            continue;
        };
        let got = match translate_granule(g, va) {
            Some((pa, d, 3))
                if pa == arena_pa
                    && desc::desc_attr(d) == Some(attr)
                    && (d >> desc::SH_SHIFT) & 3 == sh as u64 =>
            {
                "ok".to_string()
            }
            Some((pa, d, level)) => format!("MISMATCH pa={pa:#x} desc={d:#x} level={level}"),
            None => "UNMAPPED".to_string(),
        };
        out.push(format!("{attr}/{}@{va:#x} {got}", sh.name()));
    }
    out.join(",")
}

/// Make granule `g`'s aliases the TTBR1_EL1 translation on the calling core: TTBR1_EL1 = its
/// root and TCR_EL1.{T1SZ, A1, EPD1, IRGN1, ORGN1, SH1, TG1} for it (`K4`: TTBR1 walks off,
/// EPD1 = 1), then drop this core's EL1 TLB entries (which may hold translations of the other
/// granule at the same VAs). Returns whether TCR_EL1 reads back the host-tested encoding.
pub fn use_granule(g: Granule) -> bool {
    let ok = match granule_pool(g) {
        None => {
            TCR_EL1.modify(TCR_EL1::EPD1::DisableTTBR1Walks);
            true
        }
        Some(pool) => {
            TTBR1_EL1.set_baddr(pool as *mut u64 as u64);
            let tg1 = if g == Granule::K16 {
                TCR_EL1::TG1::KiB_16
            } else {
                TCR_EL1::TG1::KiB_64
            };
            TCR_EL1.modify(
                TCR_EL1::T1SZ.val(gdesc::TSZ)
                    + TCR_EL1::A1::TTBR0
                    + TCR_EL1::EPD1::EnableTTBR1Walks
                    + TCR_EL1::IRGN1::WriteBack_ReadAlloc_WriteAlloc_Cacheable
                    + TCR_EL1::ORGN1::WriteBack_ReadAlloc_WriteAlloc_Cacheable
                    + TCR_EL1::SH1::Inner
                    + tg1,
            );
            TCR_EL1.get() & gdesc::TCR_TTBR1_MASK == Geometry::new(g).tcr_ttbr1_bits()
        }
    };
    barrier::isb(barrier::SY);
    // SAFETY: invalidates this core's EL1 TLB entries; no memory effect.
    unsafe { asm!("tlbi vmalle1", "dsb nsh", options(nostack)) };
    barrier::isb(barrier::SY);
    ok
}
