//! aarch64 stage 1 translation, EL1&0 regime, 4 KiB granule, 39-bit VA (TCR_EL1.T0SZ = 25):
//! walks start at level 1 (1 GiB per entry), then level 2 (2 MiB), level 3 (4 KiB).
//!
//! References (Arm ARM DDI 0487): D8.3 "Translation table descriptor formats" (table, block and
//! page descriptors: bits\[1:0\], output address, lower attributes AttrIndx\[4:2\], NS\[5\],
//! AP\[7:6\], SH\[9:8\], AF\[10\], nG\[11\], upper attributes PXN\[53\], UXN/XN\[54\]); D8.6 /
//! D19.2 MAIR_EL1 (`Attr<n>` encodings: Device 0b0000dd00, Normal 0booooiiii); D19.2 TCR_EL1.

use crate::attr::MemAttr;

pub const PAGE: u64 = 4096;
pub const ENTRIES: usize = 512;
/// Bytes one entry maps at levels 1, 2, 3.
pub const LEVEL_SIZE: [u64; 4] = [0, 1 << 30, 1 << 21, 1 << 12];
/// TCR_EL1.T0SZ for a 39-bit input address space.
pub const T0SZ: u64 = 25;
pub const VA_BITS: u32 = 64 - T0SZ as u32;

// Descriptor bits (D8.3).
pub const DESC_VALID: u64 = 1 << 0;
/// bit 1: table (levels 0-2) or page (level 3); 0 = block at levels 1-2.
pub const DESC_TABLE_OR_PAGE: u64 = 1 << 1;
pub const ATTR_INDX_SHIFT: u32 = 2;
pub const NS: u64 = 1 << 5;
pub const AP_SHIFT: u32 = 6;
pub const SH_SHIFT: u32 = 8;
pub const AF: u64 = 1 << 10;
pub const NG: u64 = 1 << 11;
pub const PXN: u64 = 1 << 53;
pub const UXN: u64 = 1 << 54;
/// Output address bits \[47:12\] of a descriptor.
pub const OA_MASK: u64 = 0x0000_ffff_ffff_f000;

/// SH\[1:0\] (D8.6.2 "Shareable Normal memory"; ignored for Device memory, which is always
/// treated as Outer Shareable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shareability {
    Non = 0b00,
    Outer = 0b10,
    Inner = 0b11,
}

impl Shareability {
    pub const ALL: [Shareability; 3] =
        [Shareability::Inner, Shareability::Outer, Shareability::Non];

    pub const fn name(self) -> &'static str {
        match self {
            Shareability::Non => "non-shareable",
            Shareability::Outer => "outer-shareable",
            Shareability::Inner => "inner-shareable",
        }
    }
}

/// MAIR_EL1 layout: index n holds the attribute of `MAIR_SLOTS[n]`.
///
/// Encodings (D19.2 MAIR_EL1): Normal = outer nibble \[7:4\], inner nibble \[3:0\];
/// 0b1111 write-back non-transient read+write-allocate, 0b1011 write-through non-transient
/// read+write-allocate, 0b0100 non-cacheable. Device = 0b0000_dd00 with dd = 00 nGnRnE,
/// 01 nGnRE, 10 nGRE, 11 GRE.
pub const MAIR_SLOTS: [(MemAttr, u8); 6] = [
    (MemAttr::NormalWb, 0xff),
    (MemAttr::NormalWt, 0xbb),
    (MemAttr::NormalNc, 0x44),
    (MemAttr::DeviceNGnRnE, 0x00),
    (MemAttr::DeviceNGnRE, 0x04),
    (MemAttr::DeviceGRE, 0x0c),
];

/// The MAIR_EL1 index of an aarch64 attribute.
pub fn mair_index(attr: MemAttr) -> Option<u64> {
    MAIR_SLOTS
        .iter()
        .position(|(a, _)| *a == attr)
        .map(|i| i as u64)
}

/// The whole MAIR_EL1 value.
pub fn mair_value() -> u64 {
    MAIR_SLOTS
        .iter()
        .enumerate()
        .fold(0, |m, (i, (_, enc))| m | (u64::from(*enc) << (8 * i)))
}

/// Leaf (block/page) attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leaf {
    pub attr: MemAttr,
    pub sh: Shareability,
    /// Executable at EL1 (PXN clear). Never executable at EL0 (UXN set).
    pub exec: bool,
}

impl Leaf {
    /// Kernel RAM: Normal write-back, inner shareable, executable.
    pub const RAM: Leaf = Leaf {
        attr: MemAttr::NormalWb,
        sh: Shareability::Inner,
        exec: true,
    };
    /// MMIO: Device-nGnRnE, never executable.
    pub const MMIO: Leaf = Leaf {
        attr: MemAttr::DeviceNGnRnE,
        sh: Shareability::Non,
        exec: false,
    };

    /// Probe memory with `attr`: not executable.
    pub const fn data(attr: MemAttr, sh: Shareability) -> Leaf {
        Leaf {
            attr,
            sh,
            exec: false,
        }
    }
}

/// Attribute bits shared by block and page descriptors: AttrIndx, AP = 0b00 (EL1 read/write,
/// no EL0 access), SH, AF = 1 (no access-flag faults), nG = 0, PXN unless executable, UXN.
pub fn leaf_attrs(leaf: Leaf) -> u64 {
    let idx = mair_index(leaf.attr).unwrap_or(3); // an x86 attribute never reaches here
    let mut d = (idx << ATTR_INDX_SHIFT) | ((leaf.sh as u64) << SH_SHIFT) | AF | UXN;
    if !leaf.exec {
        d |= PXN;
    }
    d
}

/// A table descriptor (levels 0-2) pointing at the next-level table at `next_pa`.
pub fn table_desc(next_pa: u64) -> u64 {
    (next_pa & OA_MASK) | DESC_TABLE_OR_PAGE | DESC_VALID
}

/// A block descriptor at level 1 (1 GiB) or 2 (2 MiB).
pub fn block_desc(pa: u64, level: usize, leaf: Leaf) -> u64 {
    debug_assert!(level == 1 || level == 2);
    let mask = OA_MASK & !(LEVEL_SIZE[level] - 1);
    (pa & mask) | leaf_attrs(leaf) | DESC_VALID
}

/// A page descriptor at level 3 (4 KiB).
pub fn page_desc(pa: u64, leaf: Leaf) -> u64 {
    (pa & OA_MASK) | leaf_attrs(leaf) | DESC_TABLE_OR_PAGE | DESC_VALID
}

/// Decode a leaf descriptor's attribute index back to the attribute.
pub fn desc_attr(desc: u64) -> Option<MemAttr> {
    let idx = ((desc >> ATTR_INDX_SHIFT) & 7) as usize;
    MAIR_SLOTS.get(idx).map(|(a, _)| *a)
}

/// Index of `va` in the level-`level` table.
pub const fn index(va: u64, level: usize) -> usize {
    ((va >> (39 - 9 * level as u32)) & 0x1ff) as usize
}

/// TCR_EL1 fields for this layout (D19.2 TCR_EL1): T0SZ = 25, IRGN0 = ORGN0 = 0b01 (walks
/// write-back read/write-allocate), SH0 = 0b11 (inner shareable), TG0 = 0b00 (4 KiB),
/// EPD1 = 1 (no TTBR1 walks), IPS = `ips` (ID_AA64MMFR0_EL1.PARange, at most 0b101 = 48 bits).
pub fn tcr_value(ips: u64) -> u64 {
    // TG0 = 0b00 (4 KiB) contributes no bits.
    T0SZ | (0b01 << 8) | (0b01 << 10) | (0b11 << 12) | (1 << 23) | ((ips.min(0b101) & 7) << 32)
}

/// One 4 KiB translation table.
#[derive(Clone)]
#[repr(C, align(4096))]
pub struct Table(pub [u64; ENTRIES]);

impl Table {
    pub const EMPTY: Table = Table([0; ENTRIES]);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// Addresses or length not 4 KiB aligned, or VA beyond 39 bits.
    BadRange,
    /// No free table left in the pool.
    OutOfTables,
    /// Part of the range is already mapped by a block or page.
    Overlap { va: u64 },
}

/// Builds identity and alias mappings into a pool of tables whose physical addresses are
/// `pool_pa + i × 4096` (table 0 is the level-1 root). Uses the largest block that fits.
pub struct Builder<'a> {
    tables: &'a mut [Table],
    pool_pa: u64,
    used: usize,
}

impl<'a> Builder<'a> {
    /// Start with an empty root; `tables` must be zero or will be cleared as they are used.
    pub fn new(tables: &'a mut [Table], pool_pa: u64) -> Builder<'a> {
        tables[0] = Table::EMPTY;
        Builder {
            tables,
            pool_pa,
            used: 1,
        }
    }

    /// Physical address of the root (level-1) table: TTBR0_EL1.BADDR.
    pub fn root_pa(&self) -> u64 {
        self.pool_pa
    }

    pub fn tables_used(&self) -> usize {
        self.used
    }

    fn table_index(&self, pa: u64) -> usize {
        ((pa - self.pool_pa) / PAGE) as usize
    }

    /// Map `len` bytes at `va` to `pa` with `leaf`.
    pub fn map(&mut self, va: u64, pa: u64, len: u64, leaf: Leaf) -> Result<(), MapError> {
        self.map_sized(va, pa, len, leaf, LEVEL_SIZE[1])
    }

    /// Map `len` bytes at `va` to `pa` with leaves of exactly `size` bytes (4 KiB pages at
    /// level 3, 2 MiB blocks at level 2 or 1 GiB blocks at level 1): `va`, `pa` and `len` must
    /// be multiples of `size` (`mapping=`: the leaf size is what the probes compare).
    pub fn map_leaf(
        &mut self,
        va: u64,
        pa: u64,
        len: u64,
        leaf: Leaf,
        size: u64,
    ) -> Result<(), MapError> {
        if !LEVEL_SIZE[1..].contains(&size)
            || !va.is_multiple_of(size)
            || !pa.is_multiple_of(size)
            || !len.is_multiple_of(size)
        {
            return Err(MapError::BadRange);
        }
        self.map_sized(va, pa, len, leaf, size)
    }

    /// Map with leaves of at most `max` bytes, each the largest that fits.
    fn map_sized(
        &mut self,
        va: u64,
        pa: u64,
        len: u64,
        leaf: Leaf,
        max: u64,
    ) -> Result<(), MapError> {
        let aligned = |x: u64| x.is_multiple_of(PAGE);
        if !aligned(va)
            || !aligned(pa)
            || !aligned(len)
            || va.checked_add(len).is_none_or(|e| e > 1 << VA_BITS)
        {
            return Err(MapError::BadRange);
        }
        let (mut va, mut pa, mut left) = (va, pa, len);
        while left > 0 {
            let step = self.map_one(va, pa, left, leaf, max)?;
            va += step;
            pa += step;
            left -= step;
        }
        Ok(())
    }

    /// Map the largest block/page of at most `max` bytes at `va` that fits; returns its size.
    fn map_one(
        &mut self,
        va: u64,
        pa: u64,
        left: u64,
        leaf: Leaf,
        max: u64,
    ) -> Result<u64, MapError> {
        let mut table = 0usize;
        for (level, &size) in LEVEL_SIZE.iter().enumerate().skip(1) {
            let i = index(va, level);
            let fits =
                size <= max && va.is_multiple_of(size) && pa.is_multiple_of(size) && left >= size;
            let entry = self.tables[table].0[i];
            if level == 3 || (fits && entry == 0) {
                if entry != 0 {
                    return Err(MapError::Overlap { va });
                }
                self.tables[table].0[i] = if level == 3 {
                    page_desc(pa, leaf)
                } else {
                    block_desc(pa, level, leaf)
                };
                return Ok(size);
            }
            if entry == 0 {
                if self.used == self.tables.len() {
                    return Err(MapError::OutOfTables);
                }
                let next = self.used;
                self.used += 1;
                self.tables[next] = Table::EMPTY;
                self.tables[table].0[i] = table_desc(self.pool_pa + next as u64 * PAGE);
                table = next;
            } else if entry & (DESC_TABLE_OR_PAGE | DESC_VALID) == (DESC_TABLE_OR_PAGE | DESC_VALID)
            {
                table = self.table_index(entry & OA_MASK);
            } else {
                return Err(MapError::Overlap { va });
            }
        }
        unreachable!("level 3 always maps")
    }

    /// Walk the tables like the MMU: the output address, leaf descriptor and level for `va`.
    pub fn translate(&self, va: u64) -> Option<(u64, u64, usize)> {
        translate(self.tables, self.pool_pa, va)
    }
}

/// Walk a pool of tables (root at `pool_pa`, table `i` at `pool_pa + i × 4096`) like the MMU:
/// the output address, leaf descriptor and level for `va`. The image uses it to confirm every
/// arena alias in `begin.platform`.
pub fn translate(tables: &[Table], pool_pa: u64, va: u64) -> Option<(u64, u64, usize)> {
    {
        let mut table = 0usize;
        for (level, &size) in LEVEL_SIZE.iter().enumerate().skip(1) {
            let d = tables.get(table)?.0[index(va, level)];
            if d & DESC_VALID == 0 {
                return None;
            }
            let is_table = d & DESC_TABLE_OR_PAGE != 0;
            if level < 3 && is_table {
                table = ((d & OA_MASK).checked_sub(pool_pa)? / PAGE) as usize;
                continue;
            }
            if level == 3 && !is_table {
                return None; // reserved encoding at level 3
            }
            let base = d & OA_MASK & !(size - 1);
            return Some((base + (va & (size - 1)), d, level));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn mair_encodings_match_the_arm_arm() {
        // Attr0 Normal WB RA/WA non-transient (0xff), Attr1 Normal WT RA/WA (0xbb), Attr2 Normal
        // NC (0x44), Attr3 Device-nGnRnE (0x00), Attr4 Device-nGnRE (0x04), Attr5 Device-GRE
        // (0x0c); Attr6/7 unused (0).
        assert_eq!(mair_value(), 0x0000_0c04_0044_bbff);
        assert_eq!(mair_index(MemAttr::NormalWb), Some(0));
        assert_eq!(mair_index(MemAttr::DeviceGRE), Some(5));
        assert_eq!(mair_index(MemAttr::Wb), None);
        for (i, (a, enc)) in MAIR_SLOTS.iter().enumerate() {
            let device = enc >> 4 == 0;
            assert_eq!(device, a.is_arm_device(), "{a}");
            assert_eq!((mair_value() >> (8 * i)) as u8, *enc);
        }
    }

    #[test]
    fn page_descriptor_bits() {
        let d = page_desc(
            0x4012_3000,
            Leaf::data(MemAttr::NormalNc, Shareability::Inner),
        );
        assert_eq!(d & 0b11, 0b11, "valid page");
        assert_eq!((d >> 2) & 7, 2, "AttrIndx = normal-nc");
        assert_eq!(d & NS, 0);
        assert_eq!((d >> 6) & 3, 0, "AP = EL1 RW, no EL0");
        assert_eq!((d >> 8) & 3, 0b11, "SH = inner");
        assert_ne!(d & (1 << 10), 0, "AF");
        assert_eq!(d & (1 << 11), 0, "global");
        assert_ne!(d & (1 << 53), 0, "PXN");
        assert_ne!(d & (1 << 54), 0, "UXN");
        assert_eq!(d & OA_MASK, 0x4012_3000);
        assert_eq!(d, 0x0060_0000_4012_3000 | 0x700 | 0b1000 | 0b11);
        assert_eq!(desc_attr(d), Some(MemAttr::NormalNc));
    }

    #[test]
    fn block_descriptor_bits() {
        let d = block_desc(0x4000_0000, 1, Leaf::RAM);
        assert_eq!(d & 0b11, 0b01, "valid block");
        assert_eq!(d, 0x0040_0000_4000_0000 | 0x700 | 0b01);
        let d = block_desc(0x0900_0000 | 0x1234, 2, Leaf::MMIO);
        assert_eq!(
            d & OA_MASK,
            0x0900_0000,
            "low bits of a 2 MiB block's address are dropped"
        );
        assert_eq!((d >> 2) & 7, 3, "device-ngnrne");
        assert_eq!(d & (PXN | UXN), PXN | UXN);
        for sh in Shareability::ALL {
            let d = block_desc(0, 2, Leaf::data(MemAttr::NormalWt, sh));
            assert_eq!((d >> 8) & 3, sh as u64);
            assert_eq!(desc_attr(d), Some(MemAttr::NormalWt));
        }
    }

    #[test]
    fn table_descriptor_and_tcr() {
        assert_eq!(table_desc(0x4008_7000), 0x4008_7003);
        let t = tcr_value(0b010);
        assert_eq!(t & 0x3f, 25);
        assert_eq!((t >> 8) & 3, 1);
        assert_eq!((t >> 10) & 3, 1);
        assert_eq!((t >> 12) & 3, 3);
        assert_eq!((t >> 14) & 3, 0);
        assert_ne!(t & (1 << 23), 0);
        assert_eq!((t >> 32) & 7, 0b010);
        assert_eq!(
            (tcr_value(0b110) >> 32) & 7,
            0b101,
            "52-bit PA capped to 48"
        );
    }

    #[test]
    fn builder_uses_largest_blocks_and_translates() {
        let mut pool = vec![Table::EMPTY; 8];
        let base = 0x4010_0000;
        let mut b = Builder::new(&mut pool, base);
        // Device 0..1 GiB (one L1 block), RAM 1 GiB + 256 MiB (2 MiB blocks), a 3-page alias.
        b.map(0, 0, 1 << 30, Leaf::MMIO).unwrap();
        b.map(0x4000_0000, 0x4000_0000, 256 << 20, Leaf::RAM)
            .unwrap();
        b.map(
            0x40_0000_0000,
            0x4012_3000,
            3 * PAGE,
            Leaf::data(MemAttr::DeviceGRE, Shareability::Non),
        )
        .unwrap();
        assert_eq!(
            b.tables_used(),
            1 + 1 + 1 + 1,
            "root, L2 for RAM, L2+L3 for the alias"
        );
        let (pa, d, level) = b.translate(0x0900_0018).unwrap();
        assert_eq!((pa, level), (0x0900_0018, 1));
        assert_eq!(desc_attr(d), Some(MemAttr::DeviceNGnRnE));
        let (pa, d, level) = b.translate(0x4012_3456).unwrap();
        assert_eq!((pa, level), (0x4012_3456, 2));
        assert_eq!(desc_attr(d), Some(MemAttr::NormalWb));
        assert_eq!(d & PXN, 0, "RAM executable at EL1");
        let (pa, d, level) = b.translate(0x40_0000_2010).unwrap();
        assert_eq!((pa, level), (0x4012_5010, 3));
        assert_eq!(desc_attr(d), Some(MemAttr::DeviceGRE));
        assert_eq!(
            b.translate(0x40_0000_3000),
            None,
            "guard gap after the alias"
        );
        assert_eq!(b.translate(0x5000_0000), None, "beyond RAM");
        // Root entry for the RAM GiB is a table descriptor pointing into the pool.
        assert_eq!(pool[0].0[1] & 0b11, 0b11);
        assert_eq!(pool[0].0[1] & OA_MASK, base + PAGE);
    }

    /// `mapping=`: the same 2 MiB-aligned range mapped with 4 KiB pages, one 2 MiB block and
    /// (inside) a 1 GiB block, each translating to the same physical address at its level.
    #[test]
    fn builder_forces_the_leaf_size() {
        let mut pool = vec![Table::EMPTY; 8];
        let mut b = Builder::new(&mut pool, 0x1000_0000);
        let leaf = Leaf::data(MemAttr::NormalNc, Shareability::Non);
        let (pa, gib) = (0x4020_0000u64, 0x4000_0000u64);
        b.map_leaf(0x40_0000_0000, pa, 2 << 20, leaf, PAGE).unwrap();
        b.map_leaf(0x41_0000_0000, pa, 2 << 20, leaf, 2 << 20)
            .unwrap();
        b.map_leaf(0x42_0000_0000, gib, 1 << 30, leaf, 1 << 30)
            .unwrap();
        for (va, level) in [
            (0x40_0000_0000u64, 3),
            (0x41_0000_0000, 2),
            (0x42_0020_0000, 1),
        ] {
            let (out, d, l) = b.translate(va + 0x1238).unwrap();
            assert_eq!((out, l), (pa + 0x1238, level), "{va:#x}");
            assert_eq!(desc_attr(d), Some(MemAttr::NormalNc));
            assert_eq!((d >> SH_SHIFT) & 3, Shareability::Non as u64);
            assert_eq!(d & DESC_TABLE_OR_PAGE != 0, level == 3, "page vs block");
        }
        assert_eq!(
            b.tables_used(),
            1 + 2 + 1,
            "root, L2+L3 for the pages, L2 for the block"
        );
        // Sizes that are not a leaf size, or misaligned ranges, are refused.
        assert_eq!(
            b.map_leaf(0x43_0000_0000, pa, 4 << 20, leaf, 4 << 20),
            Err(MapError::BadRange)
        );
        assert_eq!(
            b.map_leaf(0x43_0000_0000, pa + PAGE, 2 << 20, leaf, 2 << 20),
            Err(MapError::BadRange)
        );
    }

    #[test]
    fn builder_rejects_overlaps_and_bad_ranges() {
        let mut pool = vec![Table::EMPTY; 4];
        let mut b = Builder::new(&mut pool, 0x1000_0000);
        b.map(0x20_0000, 0x20_0000, 0x20_0000, Leaf::RAM).unwrap();
        assert_eq!(
            b.map(0x20_1000, 0x20_1000, PAGE, Leaf::RAM),
            Err(MapError::Overlap { va: 0x20_1000 })
        );
        assert_eq!(b.map(0x123, 0, PAGE, Leaf::RAM), Err(MapError::BadRange));
        assert_eq!(b.map(1 << 39, 0, PAGE, Leaf::RAM), Err(MapError::BadRange));
        // Unaligned-to-block ranges fall back to pages, until the pool runs out.
        b.map(0x4000_1000, 0x4000_1000, PAGE, Leaf::RAM).unwrap();
        assert_eq!(
            b.map(0x80_0000_0000 - PAGE, 0, PAGE, Leaf::RAM),
            Err(MapError::OutOfTables)
        );
    }
}
