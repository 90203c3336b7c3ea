//! x86-64 memory types: PAT programming and page-table-entry cache bits (Intel SDM Vol. 3A
//! 13.12 "Page Attribute Table"), MTRR decoding (13.11) and the effective memory type when both
//! apply (13.5.2.2, Table 13-7). Pure functions: the image reads and writes the registers, this
//! module only computes and decodes values, so the host's unit tests check every bit.
//!
//! Section and table numbers follow the current SDM (chapter 13, "Memory Cache Control"; older
//! editions number the same material chapter 11).

use crate::attr::MemAttr;

/// A memory type as the PAT and the MTRRs encode it (SDM Vol. 3A Table 13-10 for the PAT,
/// Table 13-8 for the MTRRs; UC- exists only in the PAT).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemType {
    Uc,
    Wc,
    Wt,
    Wp,
    Wb,
    /// PAT only: UC, but an MTRR WC can override it to WC.
    UcMinus,
}

impl MemType {
    pub const fn encoding(self) -> u8 {
        match self {
            MemType::Uc => 0x00,
            MemType::Wc => 0x01,
            MemType::Wt => 0x04,
            MemType::Wp => 0x05,
            MemType::Wb => 0x06,
            MemType::UcMinus => 0x07,
        }
    }

    /// Decode a PAT entry (0x07 = UC-); `None` for reserved encodings (2, 3, 8-0xff).
    pub const fn from_pat(v: u8) -> Option<MemType> {
        match v {
            0x00 => Some(MemType::Uc),
            0x01 => Some(MemType::Wc),
            0x04 => Some(MemType::Wt),
            0x05 => Some(MemType::Wp),
            0x06 => Some(MemType::Wb),
            0x07 => Some(MemType::UcMinus),
            _ => None,
        }
    }

    /// Decode an MTRR type field (7 is reserved there: no UC- in MTRRs).
    pub const fn from_mtrr(v: u8) -> Option<MemType> {
        match v {
            0x07 => None,
            _ => MemType::from_pat(v),
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            MemType::Uc => "uc",
            MemType::Wc => "wc",
            MemType::Wt => "wt",
            MemType::Wp => "wp",
            MemType::Wb => "wb",
            MemType::UcMinus => "uc-",
        }
    }

    /// The memory type an atomprobe attribute asks for (`None` for aarch64 attributes).
    pub const fn from_attr(a: MemAttr) -> Option<MemType> {
        match a {
            MemAttr::Wb => Some(MemType::Wb),
            MemAttr::Wt => Some(MemType::Wt),
            MemAttr::Wc => Some(MemType::Wc),
            MemAttr::Uc => Some(MemType::Uc),
            MemAttr::UcMinus => Some(MemType::UcMinus),
            MemAttr::Wp => Some(MemType::Wp),
            _ => None,
        }
    }
}

/// atomprobe's PAT: entries 0-3 keep their power-on values (WB, WT, UC-, UC: SDM Vol. 3A
/// Table 13-12), so entries selected with PAT = 0 mean what they mean without a PAT; entries 4
/// and 5 add WC and WP. 6 and 7 repeat UC- and UC.
pub const PAT_LAYOUT: [MemType; 8] = [
    MemType::Wb,
    MemType::Wt,
    MemType::UcMinus,
    MemType::Uc,
    MemType::Wc,
    MemType::Wp,
    MemType::UcMinus,
    MemType::Uc,
];

/// IA32_PAT (MSR 0x277).
pub const IA32_PAT: u32 = 0x277;

/// The IA32_PAT value for `layout`: entry i in bits [8i+2:8i] (SDM Vol. 3A 13.12.2, Figure 13-9).
pub const fn pat_msr_value(layout: &[MemType; 8]) -> u64 {
    let mut v = 0u64;
    let mut i = 0;
    while i < 8 {
        v |= (layout[i].encoding() as u64) << (8 * i);
        i += 1;
    }
    v
}

/// The eight PAT entries of an IA32_PAT value.
pub fn decode_pat(msr: u64) -> [Option<MemType>; 8] {
    core::array::from_fn(|i| {
        MemType::from_pat(((msr >> (8 * i)) & 0x7) as u8).filter(|_| (msr >> (8 * i)) & 0xf8 == 0)
    })
}

/// The lowest PAT index holding `t`.
pub fn pat_index(layout: &[MemType; 8], t: MemType) -> Option<u8> {
    layout.iter().position(|&x| x == t).map(|i| i as u8)
}

/// Page-table entry bits (SDM Vol. 3A 4.5, Tables 4-19/4-20).
pub const PTE_P: u64 = 1 << 0;
pub const PTE_RW: u64 = 1 << 1;
pub const PTE_US: u64 = 1 << 2;
pub const PTE_PWT: u64 = 1 << 3;
pub const PTE_PCD: u64 = 1 << 4;
pub const PTE_A: u64 = 1 << 5;
pub const PTE_D: u64 = 1 << 6;
/// PS in PDEs/PDPTEs; PAT in 4 KiB PTEs.
pub const PTE_PS: u64 = 1 << 7;
pub const PTE_PAT_4K: u64 = 1 << 7;
/// PAT in 2 MiB / 1 GiB entries.
pub const PTE_PAT_LARGE: u64 = 1 << 12;
pub const PTE_G: u64 = 1 << 8;
pub const PTE_NX: u64 = 1 << 63;
/// Address bits of a 4 KiB entry (MAXPHYADDR up to 52).
pub const PTE_ADDR_4K: u64 = 0x000f_ffff_ffff_f000;

/// The cache-control bits of a 4 KiB PTE selecting PAT entry `index`: PAT (bit 7) is the index's
/// bit 2, PCD (bit 4) bit 1, PWT (bit 3) bit 0 (SDM Vol. 3A 13.12.3, Table 13-11).
pub const fn pte_cache_bits_4k(index: u8) -> u64 {
    let mut v = 0;
    if index & 4 != 0 {
        v |= PTE_PAT_4K;
    }
    if index & 2 != 0 {
        v |= PTE_PCD;
    }
    if index & 1 != 0 {
        v |= PTE_PWT;
    }
    v
}

/// The same for a 2 MiB PDE or 1 GiB PDPTE (PAT is bit 12 there).
pub const fn pte_cache_bits_large(index: u8) -> u64 {
    let mut v = pte_cache_bits_4k(index) & !PTE_PAT_4K;
    if index & 4 != 0 {
        v |= PTE_PAT_LARGE;
    }
    v
}

/// The PAT index a 4 KiB PTE selects.
pub const fn pte_pat_index_4k(pte: u64) -> u8 {
    (((pte & PTE_PAT_4K) >> 5) | ((pte & PTE_PCD) >> 3) | ((pte & PTE_PWT) >> 3)) as u8
}

/// The PAT index a 2 MiB / 1 GiB entry selects.
pub const fn pte_pat_index_large(pte: u64) -> u8 {
    (((pte & PTE_PAT_LARGE) >> 10) | ((pte & PTE_PCD) >> 3) | ((pte & PTE_PWT) >> 3)) as u8
}

/// A present, writable, supervisor 4 KiB PTE for `paddr` with PAT entry `index`. (No NX: bit 63
/// is reserved, and faults with #PF(RSVD), unless EFER.NXE is set.)
pub const fn pte_4k(paddr: u64, index: u8) -> u64 {
    (paddr & PTE_ADDR_4K) | PTE_P | PTE_RW | pte_cache_bits_4k(index)
}

/// Address bits of a 2 MiB PDE (bits 51:21) and of a 1 GiB PDPTE (bits 51:30).
pub const PDE_ADDR_2M: u64 = 0x000f_ffff_ffe0_0000;
pub const PDPTE_ADDR_1G: u64 = 0x000f_ffff_c000_0000;

/// A present, writable, supervisor PDE mapping the 2 MiB page at `paddr` (PS = 1) with PAT
/// entry `index`: the PAT bit is bit 12 here, not bit 7, which is PS (SDM Vol. 3A 4.5, Table
/// 4-18 "Format of a Page-Directory Entry that Maps a 2-MByte Page").
pub const fn pde_2m(paddr: u64, index: u8) -> u64 {
    (paddr & PDE_ADDR_2M) | PTE_P | PTE_RW | PTE_PS | pte_cache_bits_large(index)
}

/// A present, writable, supervisor PDPTE mapping the 1 GiB page at `paddr` (PS = 1) with PAT
/// entry `index` (SDM Vol. 3A Table 4-16 "Format of a Page-Directory-Pointer-Table Entry
/// (PDPTE) that Maps a 1-GByte Page"; needs CPUID.80000001H:EDX.Page1GB[bit 26]).
pub const fn pdpte_1g(paddr: u64, index: u8) -> u64 {
    (paddr & PDPTE_ADDR_1G) | PTE_P | PTE_RW | PTE_PS | pte_cache_bits_large(index)
}

/// A present, writable table entry (PML4E, PDPTE or PDE pointing at the next table).
pub const fn table_entry(next: u64) -> u64 {
    (next & PTE_ADDR_4K) | PTE_P | PTE_RW
}

/// IA32_MTRR_PHYSBASEn / IA32_MTRR_PHYSMASKn for `[base, base + size)` with type `t` (SDM Vol.
/// 3A 13.11.2.3, Figure 13-7): `size` a power of two of at least 4 KiB, `base` aligned to it;
/// PHYSMASK holds the valid bit 11 and the mask over MAXPHYADDR `phys_bits` bits. `None` for a
/// range the registers cannot express or for UC- (not an MTRR type).
pub fn mtrr_var_pair(base: u64, size: u64, t: MemType, phys_bits: u32) -> Option<(u64, u64)> {
    if t == MemType::UcMinus
        || !size.is_power_of_two()
        || size < 0x1000
        || !base.is_multiple_of(size)
        || !(12..=52).contains(&phys_bits)
    {
        return None;
    }
    let phys = (1u64 << phys_bits) - 1;
    if base + size - 1 > phys {
        return None;
    }
    let mask = !(size - 1) & phys & !0xfff;
    Some((base | u64::from(t.encoding()), mask | (1 << 11)))
}

/// The effective memory type of an access when the MTRRs give `mtrr` and the PAT gives `pat`
/// (SDM Vol. 3A 13.5.2.2, Table 13-7, for Pentium III and later).
pub const fn effective_type(mtrr: MemType, pat: MemType) -> MemType {
    use MemType::*;
    match (mtrr, pat) {
        // A PAT UC and UC- are UC, except UC- under an MTRR WC (or WP, see the table's notes)
        // which gives WC; a PAT WC is always WC.
        (_, Uc) => Uc,
        (_, Wc) => Wc,
        (Wc, UcMinus) | (Wp, UcMinus) => Wc,
        (_, UcMinus) => Uc,
        // MTRR UC wins over every cacheable PAT type.
        (Uc, _) => Uc,
        // MTRR WC: PAT WB gives WC, WT and WP give UC.
        (Wc, Wb) => Wc,
        (Wc, Wt) | (Wc, Wp) => Uc,
        // MTRR WT: WB → WT, WT → WT, WP → WP.
        (Wt, Wb) | (Wt, Wt) => Wt,
        (Wt, Wp) => Wp,
        // MTRR WP: WB → WP, WT → WT, WP → WP.
        (Wp, Wb) | (Wp, Wp) => Wp,
        (Wp, Wt) => Wt,
        // MTRR WB: the PAT type.
        (Wb, p) => p,
        // Not an MTRR type; treat like its PAT meaning under WB.
        (UcMinus, p) => p,
    }
}

/// MTRR MSRs (SDM Vol. 3A 13.11.1-13.11.2).
pub const IA32_MTRRCAP: u32 = 0xfe;
pub const IA32_MTRR_DEF_TYPE: u32 = 0x2ff;
pub const IA32_MTRR_PHYSBASE0: u32 = 0x200;
pub const IA32_MTRR_FIX64K_00000: u32 = 0x250;
pub const IA32_MTRR_FIX16K_80000: u32 = 0x258;
pub const IA32_MTRR_FIX16K_A0000: u32 = 0x259;
pub const IA32_MTRR_FIX4K_C0000: u32 = 0x268;

/// Most variable ranges decoded.
pub const MAX_VAR_MTRRS: usize = 16;

/// A snapshot of the MTRR registers.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mtrrs {
    pub cap: u64,
    pub def_type: u64,
    /// (PHYSBASE, PHYSMASK) pairs, `cap.VCNT` of them (at most [`MAX_VAR_MTRRS`]).
    pub var: [(u64, u64); MAX_VAR_MTRRS],
    pub nvar: usize,
    /// FIX64K_00000, FIX16K_80000, FIX16K_A0000, FIX4K_C0000 .. FIX4K_F8000.
    pub fixed: [u64; 11],
    /// MAXPHYADDR (CPUID 0x80000008 EAX\[7:0\]).
    pub phys_bits: u32,
}

/// What the MTRRs say about a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MtrrType {
    Type(MemType),
    /// Overlapping variable ranges in a combination the SDM leaves undefined.
    Undefined,
    /// Different pages of the range have different types.
    Mixed,
}

impl Mtrrs {
    pub fn enabled(&self) -> bool {
        self.def_type & (1 << 11) != 0
    }

    pub fn fixed_enabled(&self) -> bool {
        self.def_type & (1 << 10) != 0 && self.cap & (1 << 8) != 0
    }

    pub fn default_type(&self) -> Option<MemType> {
        MemType::from_mtrr((self.def_type & 0xff) as u8)
    }

    /// Fixed-range type of `addr` below 1 MiB (SDM Vol. 3A 13.11.2.2, Table 13-9).
    fn fixed_type(&self, addr: u64) -> Option<MemType> {
        let (reg, sub) = if addr < 0x80000 {
            (0, addr / 0x10000)
        } else if addr < 0xc0000 {
            (
                1 + (addr - 0x80000) / 0x20000,
                ((addr - 0x80000) % 0x20000) / 0x4000,
            )
        } else {
            (
                3 + (addr - 0xc0000) / 0x8000,
                ((addr - 0xc0000) % 0x8000) / 0x1000,
            )
        };
        MemType::from_mtrr(((self.fixed[reg as usize] >> (8 * sub)) & 0xff) as u8)
    }

    /// The MTRR memory type of physical address `addr` (SDM Vol. 3A 13.11.4.1 "MTRR
    /// Precedences").
    pub fn type_of(&self, addr: u64) -> MtrrType {
        if !self.enabled() {
            return MtrrType::Type(MemType::Uc);
        }
        if addr < 0x10_0000 && self.fixed_enabled() {
            return self
                .fixed_type(addr)
                .map_or(MtrrType::Undefined, MtrrType::Type);
        }
        let phys_mask = if self.phys_bits >= 12 && self.phys_bits < 64 {
            (1u64 << self.phys_bits) - 1
        } else {
            (1u64 << 36) - 1
        } & !0xfff;
        let mut found: Option<MemType> = None;
        let mut uc = false;
        let mut count = 0;
        let mut all_wt_wb = true;
        for &(base, mask) in &self.var[..self.nvar.min(MAX_VAR_MTRRS)] {
            if mask & (1 << 11) == 0 {
                continue;
            }
            let m = mask & phys_mask;
            if addr & m != base & phys_mask & m {
                continue;
            }
            let Some(t) = MemType::from_mtrr((base & 0xff) as u8) else {
                return MtrrType::Undefined;
            };
            count += 1;
            uc |= t == MemType::Uc;
            all_wt_wb &= matches!(t, MemType::Wt | MemType::Wb);
            found = match found {
                None => Some(t),
                Some(f) if f == t => Some(f),
                Some(_) => Some(MemType::Wt), // only meaningful when all are WT/WB
            };
        }
        match (count, found) {
            (0, _) => self
                .default_type()
                .map_or(MtrrType::Undefined, MtrrType::Type),
            _ if uc => MtrrType::Type(MemType::Uc),
            (1, Some(t)) => MtrrType::Type(t),
            (_, Some(t)) if all_wt_wb => MtrrType::Type(t),
            (_, Some(t)) if self.var_all_same(addr, phys_mask, t) => MtrrType::Type(t),
            _ => MtrrType::Undefined,
        }
    }

    fn var_all_same(&self, addr: u64, phys_mask: u64, t: MemType) -> bool {
        self.var[..self.nvar.min(MAX_VAR_MTRRS)]
            .iter()
            .filter(|(b, m)| {
                m & (1 << 11) != 0 && addr & (m & phys_mask) == b & phys_mask & (m & phys_mask)
            })
            .all(|(b, _)| MemType::from_mtrr((b & 0xff) as u8) == Some(t))
    }

    /// The MTRR type of a naturally aligned power-of-two block `[addr, addr + len)` (a 2 MiB or
    /// 1 GiB page), or `Mixed` when parts of it have different types: then the memory type of a
    /// large page over it is undefined (SDM Vol. 3A 13.11.9 "Large Page Size Considerations").
    /// Exact for contiguous PHYSMASKs; checks the fixed ranges page by page, each variable range
    /// once (a range at least as large as the block covers all or none of it).
    pub fn type_of_block(&self, addr: u64, len: u64) -> MtrrType {
        if !len.is_power_of_two() || !addr.is_multiple_of(len) {
            return self.type_of_range(addr, len);
        }
        let first = self.type_of(addr);
        if !self.enabled() {
            return first;
        }
        let end = addr + len;
        if addr < 0x10_0000 && self.fixed_enabled() {
            let mut a = addr;
            while a < end.min(0x10_0000) {
                if self.type_of(a) != first {
                    return MtrrType::Mixed;
                }
                a += 0x1000;
            }
            if end > 0x10_0000 && self.type_of(0x10_0000) != first {
                return MtrrType::Mixed;
            }
        }
        let phys_mask = if self.phys_bits >= 12 && self.phys_bits < 64 {
            (1u64 << self.phys_bits) - 1
        } else {
            (1u64 << 36) - 1
        } & !0xfff;
        for &(base, mask) in &self.var[..self.nvar.min(MAX_VAR_MTRRS)] {
            if mask & (1 << 11) == 0 {
                continue;
            }
            let m = mask & phys_mask;
            let size = (!m & phys_mask) + 0x1000;
            if !size.is_power_of_two() {
                // A non-contiguous mask: fall back to looking at every page.
                return self.type_of_range(addr, len);
            }
            if size >= len {
                continue; // covers all of the block or none of it
            }
            let start = base & m;
            if start >= addr && start < end {
                let above_fixed = start.max(0x10_0000);
                if self.type_of(above_fixed) != first
                    || (start + size < end && self.type_of(start + size) != first)
                {
                    return MtrrType::Mixed;
                }
            }
        }
        first
    }

    /// The type of every page in `[addr, addr + len)`, or `Mixed`.
    pub fn type_of_range(&self, addr: u64, len: u64) -> MtrrType {
        let first = self.type_of(addr);
        let mut a = (addr & !0xfff) + 0x1000;
        while a < addr + len {
            if self.type_of(a) != first {
                return MtrrType::Mixed;
            }
            a += 0x1000;
        }
        first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pat_value_and_power_on_prefix() {
        // Power-on IA32_PAT is 0x0007040600070406 (SDM Vol. 3A 13.12.4): our entries 0-3 keep it.
        let v = pat_msr_value(&PAT_LAYOUT);
        assert_eq!(v & 0xffff_ffff, 0x0007_0406);
        assert_eq!(v, 0x0007_0501_0007_0406);
        let d = decode_pat(v);
        for (i, t) in PAT_LAYOUT.iter().enumerate() {
            assert_eq!(d[i], Some(*t));
        }
        assert_eq!(decode_pat(0x0007_0406_0007_0406)[4], Some(MemType::Wb));
        assert_eq!(decode_pat(0x02)[0], None, "2 is reserved");
    }

    #[test]
    fn pte_bits_select_pat_index() {
        // SDM Vol. 3A Table 13-11: PAT:PCD:PWT = index.
        assert_eq!(pte_cache_bits_4k(0), 0);
        assert_eq!(pte_cache_bits_4k(1), PTE_PWT);
        assert_eq!(pte_cache_bits_4k(2), PTE_PCD);
        assert_eq!(pte_cache_bits_4k(3), PTE_PCD | PTE_PWT);
        assert_eq!(pte_cache_bits_4k(4), 1 << 7);
        assert_eq!(pte_cache_bits_4k(5), (1 << 7) | (1 << 3));
        assert_eq!(pte_cache_bits_large(4), 1 << 12);
        assert_eq!(pte_cache_bits_large(7), (1 << 12) | (1 << 4) | (1 << 3));
        for i in 0..8 {
            assert_eq!(pte_pat_index_4k(pte_4k(0x1234_5000, i)), i);
            assert_eq!(pte_pat_index_large(pte_cache_bits_large(i) | PTE_PS), i);
        }
        let e = pte_4k(0x1234_5678, 5);
        assert_eq!(e & PTE_ADDR_4K, 0x1234_5000);
        assert_eq!(e & (PTE_P | PTE_RW | PTE_US | PTE_NX), PTE_P | PTE_RW);
    }

    #[test]
    fn every_x86_attr_has_a_pat_entry() {
        for a in crate::attr::Arch::X86_64.attrs() {
            let t = MemType::from_attr(*a).unwrap();
            let i = pat_index(&PAT_LAYOUT, t).unwrap();
            assert_eq!(PAT_LAYOUT[i as usize], t);
            assert_eq!(t.name(), a.name());
        }
        // The boot identity map's PCD|PWT (index 3) is UC as at power-on.
        assert_eq!(PAT_LAYOUT[3], MemType::Uc);
    }

    /// 2 MiB PDEs and 1 GiB PDPTEs carry PAT in bit 12 (bit 7 is PS); 4 KiB PTEs in bit 7.
    #[test]
    fn large_page_encoders_put_pat_at_bit_12() {
        for i in 0..8u8 {
            let pde = pde_2m(0x1234_5678_9000, i);
            assert_eq!(pde & PDE_ADDR_2M, 0x1234_5660_0000, "low 21 bits dropped");
            assert_ne!(pde & PTE_PS, 0, "PS");
            assert_eq!(pde & (PTE_P | PTE_RW | PTE_US), PTE_P | PTE_RW);
            assert_eq!(pte_pat_index_large(pde), i);
            assert_eq!(pde & PTE_PAT_LARGE != 0, i & 4 != 0, "PAT at bit 12");
            let pdpte = pdpte_1g(0x1_4000_1000, i);
            assert_eq!(pdpte & PDPTE_ADDR_1G, 0x1_4000_0000, "low 30 bits dropped");
            assert_ne!(pdpte & PTE_PS, 0);
            assert_eq!(pte_pat_index_large(pdpte), i);
            let pte = pte_4k(0x1234_6000, i);
            assert_eq!(pte & PTE_PAT_4K != 0, i & 4 != 0, "PAT at bit 7 in a PTE");
            assert_eq!(pte & PTE_PAT_LARGE, 0);
        }
        // The PAT layout's WB (index 0) and UC (3) entries.
        assert_eq!(pde_2m(0x20_0000, 0), 0x20_0000 | 0x83);
        assert_eq!(pdpte_1g(0x4000_0000, 3), 0x4000_0000 | 0x83 | 0x18);
        assert_eq!(pde_2m(0, 4), 0x1083);
        assert_eq!(table_entry(0x7000 | 0xfff), 0x7003);
    }

    #[test]
    fn mtrr_variable_pair_encoding() {
        // 2 MiB WC at 0x400000 on a 40-bit machine: base | type, mask 0xff_ffe0_0000 | V.
        assert_eq!(
            mtrr_var_pair(0x40_0000, 0x20_0000, MemType::Wc, 40),
            Some((0x40_0001, 0xff_ffe0_0800))
        );
        assert_eq!(
            mtrr_var_pair(0, 1 << 30, MemType::Uc, 36),
            Some((0, 0xf_c000_0800))
        );
        assert_eq!(
            mtrr_var_pair(0x1000, 0x2000, MemType::Wb, 40),
            None,
            "misaligned"
        );
        assert_eq!(
            mtrr_var_pair(0, 0x3000, MemType::Wb, 40),
            None,
            "not a power of 2"
        );
        assert_eq!(mtrr_var_pair(0, 0x1000, MemType::UcMinus, 40), None);
        assert_eq!(
            mtrr_var_pair(1 << 40, 0x1000, MemType::Wb, 40),
            None,
            "beyond MAXPHYADDR"
        );
        // Round trip through the decoder.
        let mut m = mtrrs();
        let (b, k) = mtrr_var_pair(0x40_0000, 0x20_0000, MemType::Wc, 40).unwrap();
        m.var[1] = (b, k);
        assert_eq!(m.type_of(0x40_1000), MtrrType::Type(MemType::Wc));
        assert_eq!(m.type_of(0x60_0000), MtrrType::Type(MemType::Wb));
        assert_eq!(
            m.type_of_block(0x40_0000, 0x20_0000),
            MtrrType::Type(MemType::Wc)
        );
        assert_eq!(
            m.type_of_block(0, 1 << 30),
            MtrrType::Mixed,
            "VGA + WC inside"
        );
        assert_eq!(
            m.type_of_block(0x20_0000, 0x20_0000),
            MtrrType::Type(MemType::Wb)
        );
        assert_eq!(
            m.type_of_block(0x4000_0000, 1 << 30),
            MtrrType::Type(MemType::Wb)
        );
        assert_eq!(
            m.type_of_block(0xc000_0000, 1 << 30),
            MtrrType::Type(MemType::Uc),
            "inside the 2 GiB UC range"
        );
        assert_eq!(m.type_of_block(0x4000_0000, 1 << 31), MtrrType::Mixed);
    }

    #[test]
    fn effective_type_table() {
        use MemType::*;
        // MTRR WB: the PAT type stands.
        for p in [Uc, Wc, Wt, Wp, Wb] {
            assert_eq!(effective_type(Wb, p), p);
        }
        assert_eq!(effective_type(Wb, UcMinus), Uc);
        // MTRR UC: only PAT WC survives.
        assert_eq!(effective_type(Uc, Wb), Uc);
        assert_eq!(effective_type(Uc, Wc), Wc);
        assert_eq!(effective_type(Uc, UcMinus), Uc);
        // MTRR WC.
        assert_eq!(effective_type(Wc, UcMinus), Wc);
        assert_eq!(effective_type(Wc, Wb), Wc);
        assert_eq!(effective_type(Wc, Wt), Uc);
        // MTRR WT / WP.
        assert_eq!(effective_type(Wt, Wb), Wt);
        assert_eq!(effective_type(Wt, Wp), Wp);
        assert_eq!(effective_type(Wp, Wb), Wp);
        assert_eq!(effective_type(Wp, Wt), Wt);
    }

    fn mtrrs() -> Mtrrs {
        let mut m = Mtrrs {
            cap: 0x508, // 8 variable, fixed supported, WC supported
            def_type: (1 << 11) | (1 << 10) | 0x06,
            phys_bits: 40,
            ..Default::default()
        };
        m.nvar = 8;
        // 0x8000_0000 .. 0x1_0000_0000 UC (a typical PCI hole).
        m.var[0] = (0x8000_0000, (0xff_8000_0000 & !0xfff) | (1 << 11));
        m.fixed = [0x0606_0606_0606_0606; 11];
        m.fixed[2] = 0; // A0000-BFFFF UC (VGA)
        m
    }

    #[test]
    fn mtrr_lookup() {
        let m = mtrrs();
        assert_eq!(m.type_of(0x20_0000), MtrrType::Type(MemType::Wb));
        assert_eq!(m.type_of(0xfee0_0000), MtrrType::Type(MemType::Uc));
        assert_eq!(m.type_of(0xa_0000), MtrrType::Type(MemType::Uc));
        assert_eq!(m.type_of(0x9_f000), MtrrType::Type(MemType::Wb));
        assert_eq!(m.type_of_range(0x7fff_e000, 0x4000), MtrrType::Mixed);
        let mut off = m;
        off.def_type = 0x06;
        assert_eq!(
            off.type_of(0x20_0000),
            MtrrType::Type(MemType::Uc),
            "MTRRs disabled: UC"
        );
        // Overlap: UC wins; WT + WB gives WT.
        let mut o = m;
        o.var[1] = (
            0x04,
            /* base 0 */ (0xff_0000_0000 & !0xfff) | (1 << 11),
        ); // 0-4G WT
        assert_eq!(o.type_of(0x8000_1000), MtrrType::Type(MemType::Uc));
        o.var[2] = (
            0x06,
            /* base 0 */ (0xff_c000_0000 & !0xfff) | (1 << 11),
        ); // 0-1G WB
        assert_eq!(o.type_of(0x20_0000), MtrrType::Type(MemType::Wt));
        o.var[3] = (
            0x01,
            /* base 0 */ (0xff_c000_0000 & !0xfff) | (1 << 11),
        ); // 0-1G WC
        assert_eq!(o.type_of(0x20_0000), MtrrType::Undefined);
    }
}
