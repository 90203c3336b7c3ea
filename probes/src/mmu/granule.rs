//! aarch64 stage 1 tables for any translation granule (4, 16 or 64 KiB), 39-bit input addresses
//! (TnSZ = 25), for the arena aliases of `granule=` (issue 13). The image keeps its own identity
//! map in TTBR0_EL1 with the 4 KiB granule (`super::aarch64`); the aliases of a 16 or 64 KiB
//! granule live in TTBR1_EL1, whose granule TCR_EL1.TG1 selects independently of TG0.
//!
//! Geometry (Arm ARM DDI 0487 D8.2 "Translation process", the tables of levels per granule): a
//! table is one granule of 8-byte descriptors, so each level resolves `shift - 3` bits (9, 11 or
//! 13) and a page is the granule. With a 39-bit input address:
//! - 4 KiB: levels 1 (VA\[38:30\], 1 GiB blocks), 2 (VA\[29:21\], 2 MiB blocks), 3 (VA\[20:12\]);
//! - 16 KiB: levels 1 (VA\[38:36\], 8 entries, table descriptors only: a level-1 block needs
//!   FEAT_LPA2), 2 (VA\[35:25\], 32 MiB blocks), 3 (VA\[24:14\], 16 KiB pages);
//! - 64 KiB: levels 2 (VA\[38:29\], 1024 entries, 512 MiB blocks), 3 (VA\[28:16\], 64 KiB pages);
//!   a level-1 block (4 TiB) needs FEAT_LPA and 52-bit addresses, not used.
//!
//! Descriptors (D8.3): the attribute fields are the same for every granule
//! (`super::aarch64::leaf_attrs`); the output address is bits \[47:shift\] of a page or table
//! descriptor and bits \[47:n\] of a block descriptor, n = log2 of the block size. With a 64 KiB
//! granule and FEAT_LPA bits \[15:12\] would hold OA\[51:48\]; physical addresses here are below
//! 2^48, so those bits are zero.

use crate::mapping::Granule;
use crate::mmu::aarch64::{leaf_attrs, Leaf, MapError, DESC_TABLE_OR_PAGE, DESC_VALID};

/// Input address bits of the regions these tables serve (TCR_EL1.T0SZ / T1SZ = 25).
pub const VA_BITS: u32 = 39;
pub const TSZ: u64 = 64 - VA_BITS as u64;

/// Physical address bits [47:0].
const PA_MASK: u64 = (1 << 48) - 1;

/// Granule geometry for a 39-bit input address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub granule: Granule,
}

impl Geometry {
    pub const fn new(granule: Granule) -> Geometry {
        Geometry { granule }
    }

    /// Bits one level resolves: a table is one granule of 8-byte entries.
    pub const fn level_bits(self) -> u32 {
        self.granule.shift() - 3
    }

    /// Entries in a full table.
    pub const fn entries(self) -> usize {
        1 << self.level_bits()
    }

    /// Lowest VA bit a level-`level` entry resolves (log2 of the bytes one entry maps).
    pub const fn level_shift(self, level: usize) -> u32 {
        self.granule.shift() + (3 - level as u32) * self.level_bits()
    }

    /// Bytes one level-`level` entry maps (a block there, or the page at level 3).
    pub const fn level_size(self, level: usize) -> u64 {
        1 << self.level_shift(level)
    }

    /// The level the walk starts at: the first whose entries split the 39-bit input.
    pub const fn start_level(self) -> usize {
        let mut l = 0;
        while self.level_shift(l) >= VA_BITS {
            l += 1;
        }
        l
    }

    /// Levels where a block descriptor is allowed without FEAT_LPA/LPA2 (D8.3.1).
    pub const fn block_levels(self) -> &'static [usize] {
        match self.granule {
            Granule::K4 => &[1, 2],
            Granule::K16 | Granule::K64 => &[2],
        }
    }

    /// Index of `va` in the level-`level` table (the start level's table holds only the entries
    /// the 39 bits need).
    pub const fn index(self, va: u64, level: usize) -> usize {
        let shift = self.level_shift(level);
        let top = if shift + self.level_bits() > VA_BITS {
            VA_BITS
        } else {
            shift + self.level_bits()
        };
        ((va >> shift) & ((1 << (top - shift)) - 1)) as usize
    }

    /// A page descriptor (level 3) for the granule page at `pa`.
    pub fn page_desc(self, pa: u64, leaf: Leaf) -> u64 {
        (pa & PA_MASK & !(self.granule.bytes() - 1))
            | leaf_attrs(leaf)
            | DESC_TABLE_OR_PAGE
            | DESC_VALID
    }

    /// A block descriptor at `level` (one of [`Self::block_levels`]).
    pub fn block_desc(self, pa: u64, level: usize, leaf: Leaf) -> u64 {
        debug_assert!(self.block_levels().contains(&level));
        (pa & PA_MASK & !(self.level_size(level) - 1)) | leaf_attrs(leaf) | DESC_VALID
    }

    /// A table descriptor pointing at a next-level table (granule-aligned) at `next_pa`.
    pub fn table_desc(self, next_pa: u64) -> u64 {
        (next_pa & PA_MASK & !(self.granule.bytes() - 1)) | DESC_TABLE_OR_PAGE | DESC_VALID
    }

    /// The output address field of descriptor `d` at `level`.
    fn out_addr(self, d: u64, level: usize, is_table_or_page: bool) -> u64 {
        let low = if is_table_or_page {
            self.granule.bytes()
        } else {
            self.level_size(level)
        };
        d & PA_MASK & !(low - 1)
    }

    /// TCR_EL1.TG0 encoding (D19.2 TCR_EL1: 0b00 4 KiB, 0b01 64 KiB, 0b10 16 KiB).
    pub const fn tg0(self) -> u64 {
        match self.granule {
            Granule::K4 => 0b00,
            Granule::K64 => 0b01,
            Granule::K16 => 0b10,
        }
    }

    /// TCR_EL1.TG1 encoding — not the TG0 one (D19.2 TCR_EL1: 0b01 16 KiB, 0b10 4 KiB,
    /// 0b11 64 KiB).
    pub const fn tg1(self) -> u64 {
        match self.granule {
            Granule::K16 => 0b01,
            Granule::K4 => 0b10,
            Granule::K64 => 0b11,
        }
    }

    /// TCR_EL1 bits \[31:16\] for TTBR1 walks with this granule: T1SZ = 25, A1 = 0 (ASID from
    /// TTBR0), EPD1 = 0 (walks enabled), IRGN1 = ORGN1 = 0b01 (write-back read/write-allocate
    /// walks), SH1 = 0b11 (Inner Shareable), TG1.
    pub const fn tcr_ttbr1_bits(self) -> u64 {
        (TSZ << 16) | (0b01 << 24) | (0b01 << 26) | (0b11 << 28) | (self.tg1() << 30)
    }
}

/// TCR_EL1 bits \[31:16\] (T1SZ, A1, EPD1, IRGN1, ORGN1, SH1, TG1).
pub const TCR_TTBR1_MASK: u64 = 0xffff << 16;

/// A translation table builder for one granule over a pool of tables in `pool`: table `i` is
/// `pool[i × entries ..][.. entries]` at physical address `pool_pa + i × granule` (the pool must
/// be granule-aligned). Table 0 is the root (the start level). Maps granule pages only: the arena
/// aliases of `granule=` are pages of the granule (docs/probes.md).
pub struct Tables<'a> {
    geo: Geometry,
    pool: &'a mut [u64],
    pool_pa: u64,
    used: usize,
}

impl<'a> Tables<'a> {
    pub fn new(geo: Geometry, pool: &'a mut [u64], pool_pa: u64) -> Tables<'a> {
        let n = geo.entries();
        pool[..n].fill(0);
        Tables {
            geo,
            pool,
            pool_pa,
            used: 1,
        }
    }

    /// Physical address of the root table: TTBRn_EL1.BADDR.
    pub fn root_pa(&self) -> u64 {
        self.pool_pa
    }

    pub fn tables_used(&self) -> usize {
        self.used
    }

    /// Map `len` bytes at `va` to `pa` with pages of the granule. `va` is a TTBR0 address
    /// (below 2^39) or a TTBR1 one (bits \[63:39\] all ones); `va`, `pa`, `len` granule-aligned.
    pub fn map_pages(&mut self, va: u64, pa: u64, len: u64, leaf: Leaf) -> Result<(), MapError> {
        let g = self.geo.granule.bytes();
        let top = va >> VA_BITS;
        let region_ok = top == 0 || top == u64::MAX >> VA_BITS;
        let low = va & ((1 << VA_BITS) - 1);
        if !region_ok
            || !va.is_multiple_of(g)
            || !pa.is_multiple_of(g)
            || !len.is_multiple_of(g)
            || low.checked_add(len).is_none_or(|e| e > 1 << VA_BITS)
        {
            return Err(MapError::BadRange);
        }
        let n = self.geo.entries();
        let mut off = 0;
        while off < len {
            let (va, pa) = (va + off, pa + off);
            let mut table = 0usize;
            for level in self.geo.start_level()..3 {
                let slot = table * n + self.geo.index(va, level);
                let d = self.pool[slot];
                if d == 0 {
                    if self.used * n >= self.pool.len() {
                        return Err(MapError::OutOfTables);
                    }
                    let next = self.used;
                    self.used += 1;
                    self.pool[next * n..(next + 1) * n].fill(0);
                    self.pool[slot] = self.geo.table_desc(self.pool_pa + next as u64 * g);
                    table = next;
                } else if d & (DESC_TABLE_OR_PAGE | DESC_VALID) == DESC_TABLE_OR_PAGE | DESC_VALID {
                    table = ((self.geo.out_addr(d, level, true) - self.pool_pa) / g) as usize;
                } else {
                    return Err(MapError::Overlap { va });
                }
            }
            let slot = table * n + self.geo.index(va, 3);
            if self.pool[slot] != 0 {
                return Err(MapError::Overlap { va });
            }
            self.pool[slot] = self.geo.page_desc(pa, leaf);
            off += g;
        }
        Ok(())
    }

    /// Walk like the MMU: output address, leaf descriptor and level for `va`.
    pub fn translate(&self, va: u64) -> Option<(u64, u64, usize)> {
        translate(self.geo, self.pool, self.pool_pa, va)
    }
}

/// Walk a pool laid out as [`Tables`] builds it: output address, leaf descriptor and level of
/// `va`. The image uses it to confirm the `granule=` aliases in `begin.platform`.
pub fn translate(geo: Geometry, pool: &[u64], pool_pa: u64, va: u64) -> Option<(u64, u64, usize)> {
    let n = geo.entries();
    let g = geo.granule.bytes();
    let mut table = 0usize;
    for level in geo.start_level()..=3 {
        let d = *pool.get(table * n + geo.index(va, level))?;
        if d & DESC_VALID == 0 {
            return None;
        }
        let is_table_or_page = d & DESC_TABLE_OR_PAGE != 0;
        if level < 3 && is_table_or_page {
            table = (geo.out_addr(d, level, true).checked_sub(pool_pa)? / g) as usize;
            continue;
        }
        if level == 3 && !is_table_or_page {
            return None; // reserved at level 3
        }
        if level < 3 && !geo.block_levels().contains(&level) {
            return None; // a block where this granule allows none: translation fault
        }
        let size = geo.level_size(level);
        let base = geo.out_addr(d, level, is_table_or_page);
        return Some((base + (va & (size - 1)), d, level));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attr::MemAttr;
    use crate::mmu::aarch64::{self as a4, desc_attr, Shareability};
    use alloc::vec;

    const G4: Geometry = Geometry::new(Granule::K4);
    const G16: Geometry = Geometry::new(Granule::K16);
    const G64: Geometry = Geometry::new(Granule::K64);

    #[test]
    fn levels_index_bits_and_block_sizes() {
        // 4 KiB: the same geometry as the identity map's encoder.
        assert_eq!(G4.start_level(), 1);
        for level in 1..=3 {
            assert_eq!(G4.level_size(level), a4::LEVEL_SIZE[level]);
            for va in [0x40_1234_5678u64, 0x7f_ffff_f000] {
                assert_eq!(G4.index(va, level), a4::index(va, level));
            }
        }
        // 16 KiB: 2048-entry tables, VA[38:36] / [35:25] / [24:14], 32 MiB level-2 blocks.
        assert_eq!((G16.entries(), G16.start_level()), (2048, 1));
        assert_eq!(G16.level_size(3), 16 << 10);
        assert_eq!(G16.level_size(2), 32 << 20);
        assert_eq!(G16.level_size(1), 64 << 30);
        assert_eq!(G16.block_levels(), [2]);
        let va = (0b101 << 36) | (0x5a5 << 25) | (0x3c3 << 14) | 0x1234;
        assert_eq!(G16.index(va, 1), 0b101);
        assert_eq!(G16.index(va, 2), 0x5a5);
        assert_eq!(G16.index(va, 3), 0x3c3);
        assert_eq!(G16.index(u64::MAX, 1), 7, "only 8 level-1 entries");
        // 64 KiB: 8192-entry tables, start at level 2 (VA[38:29], 1024 entries), [28:16];
        // 512 MiB level-2 blocks.
        assert_eq!((G64.entries(), G64.start_level()), (8192, 2));
        assert_eq!(G64.level_size(3), 64 << 10);
        assert_eq!(G64.level_size(2), 512 << 20);
        assert_eq!(G64.block_levels(), [2]);
        let va = (0x2a5 << 29) | (0x1abc << 16) | 0xfff;
        assert_eq!(G64.index(va, 2), 0x2a5);
        assert_eq!(G64.index(va, 3), 0x1abc);
        assert_eq!(G64.index(u64::MAX, 2), 1023);
    }

    #[test]
    fn descriptor_address_fields() {
        let leaf = Leaf::data(MemAttr::NormalNc, Shareability::Outer);
        let attrs = leaf_attrs(leaf);
        // Page: OA[47:shift]; low bits of a misaligned address are dropped.
        let d = G16.page_desc(0x4012_7fff, leaf);
        assert_eq!(d, 0x4012_4000 | attrs | 0b11);
        let d = G64.page_desc(0x4012_ffff, leaf);
        assert_eq!(d, 0x4012_0000 | attrs | 0b11);
        assert_eq!(
            G64.page_desc(1 << 48, leaf) & !attrs,
            0b11,
            "PA above 48 bits dropped"
        );
        assert_eq!(desc_attr(d), Some(MemAttr::NormalNc));
        assert_eq!((d >> a4::SH_SHIFT) & 3, Shareability::Outer as u64);
        // Block: OA[47:25] (16 KiB, level 2), OA[47:29] (64 KiB, level 2); bits[1:0] = 0b01.
        assert_eq!(
            G16.block_desc(0x4300_0000 + 0x1234, 2, leaf),
            0x4200_0000 | attrs | 0b01
        );
        assert_eq!(
            G64.block_desc(0x5fff_ffff, 2, leaf),
            0x4000_0000 | attrs | 0b01
        );
        // Table: next-level table address, granule-aligned.
        assert_eq!(G16.table_desc(0x4008_4000), 0x4008_4003);
        assert_eq!(G64.table_desc(0x4008_0000), 0x4008_0003);
        assert_eq!(G4.table_desc(0x4008_7000), a4::table_desc(0x4008_7000));
        assert_eq!(
            G4.page_desc(0x4012_3000, leaf),
            a4::page_desc(0x4012_3000, leaf)
        );
        assert_eq!(
            G4.block_desc(0x4020_0000, 2, leaf),
            a4::block_desc(0x4020_0000, 2, leaf)
        );
    }

    #[test]
    fn tg0_and_tg1_encodings_differ() {
        assert_eq!([G4.tg0(), G16.tg0(), G64.tg0()], [0b00, 0b10, 0b01]);
        assert_eq!([G4.tg1(), G16.tg1(), G64.tg1()], [0b10, 0b01, 0b11]);
        let t = G64.tcr_ttbr1_bits();
        assert_eq!((t >> 16) & 0x3f, 25, "T1SZ");
        assert_eq!((t >> 22) & 1, 0, "A1");
        assert_eq!((t >> 23) & 1, 0, "EPD1: walks on");
        assert_eq!((t >> 24) & 3, 1, "IRGN1");
        assert_eq!((t >> 26) & 3, 1, "ORGN1");
        assert_eq!((t >> 28) & 3, 3, "SH1");
        assert_eq!(t >> 30, 0b11, "TG1 = 64 KiB");
        assert_eq!(t & !TCR_TTBR1_MASK, 0);
        assert_eq!(G16.tcr_ttbr1_bits() >> 30, 0b01);
    }

    /// The kernel's layout: 12 aliases of a 2 MiB window at 2 MiB strides from the bottom of the
    /// TTBR1 region fit in root + one table per lower level.
    fn alias_layout(geo: Geometry, tables: usize) {
        let g = geo.granule.bytes();
        let n = geo.entries();
        let pool_pa = 0x4100_0000u64;
        let mut pool = vec![0u64; tables * n];
        let mut t = Tables::new(geo, &mut pool, pool_pa);
        let base = 0xffff_ff80_0000_0000u64;
        let window = 0x4060_0000u64;
        for k in 0..12u64 {
            let sh = [Shareability::Inner, Shareability::Non][k as usize % 2];
            t.map_pages(
                base + k * (2 << 20),
                window,
                2 << 20,
                Leaf::data(MemAttr::NormalWt, sh),
            )
            .unwrap();
        }
        assert_eq!(t.tables_used(), tables, "{:?}", geo.granule);
        for k in 0..12u64 {
            let va = base + k * (2 << 20) + 0x12_3456;
            let (pa, d, level) = t.translate(va).unwrap();
            assert_eq!((pa, level), (window + 0x12_3456, 3));
            assert_eq!(
                d & PA_MASK & !(g - 1),
                (window + 0x12_3456) & !(g - 1),
                "OA field"
            );
            assert_eq!((d >> a4::SH_SHIFT) & 3, [3, 0][k as usize % 2]);
        }
        assert_eq!(
            t.translate(base + 12 * (2 << 20)),
            None,
            "nothing past the last alias"
        );
        assert_eq!(t.translate(0x40_0000_0000), None);
        // Overlap, misalignment, non-canonical address, pool exhaustion.
        assert_eq!(
            t.map_pages(base, window, g, Leaf::RAM),
            Err(MapError::Overlap { va: base })
        );
        assert_eq!(
            t.map_pages(base + g / 2, 0, g, Leaf::RAM),
            Err(MapError::BadRange)
        );
        assert_eq!(
            t.map_pages(1 << 40, 0, g, Leaf::RAM),
            Err(MapError::BadRange)
        );
        assert_eq!(
            t.map_pages(base + (1 << 38), 0, g, Leaf::RAM),
            Err(MapError::OutOfTables)
        );
        // A granule page alias really is one page per granule: adjacent pages, adjacent PAs.
        let (p0, _, _) = t.translate(base).unwrap();
        let (p1, _, _) = t.translate(base + g).unwrap();
        assert_eq!(p1 - p0, g);
    }

    #[test]
    fn kernel_alias_layout_fits_its_pools() {
        alias_layout(G16, 3);
        alias_layout(G64, 2);
    }

    #[test]
    fn a_level_one_block_is_refused_by_the_walk() {
        // 16 KiB granule: bits[1:0] = 0b01 at level 1 is a fault, not a 64 GiB block.
        let mut pool = vec![0u64; 2048];
        pool[0] = 0x1 | leaf_attrs(Leaf::RAM);
        assert_eq!(translate(G16, &pool, 0, 0x1000), None);
    }
}
