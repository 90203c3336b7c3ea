//! How the probe arena is mapped (issue 13): the leaf size of its aliases (`mapping=`), the
//! shareability of Normal aliases (`share=`, aarch64), whether the data caches are on
//! (`caches=`) and the x86 MTRR type put over the arena (`mtrr=`). Each is a comma list; the
//! suite runs every family once per combination ([`Variant`]), and every probe and litmus record
//! names its combination (`record::MapFields`).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::attr::Arch;
use crate::mmu::x86_64::MemType;

/// Leaf size of the arena aliases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MapSize {
    /// 4 KiB pages (aarch64 level-3 page descriptors; x86 PTEs).
    Page4k,
    /// 2 MiB blocks (aarch64 level-2 block descriptors; x86 PDEs with PS = 1).
    Block2m,
    /// 1 GiB blocks (aarch64 level-1 block descriptors; x86 PDPTEs with PS = 1).
    Block1g,
}

impl MapSize {
    pub const ALL: [MapSize; 3] = [MapSize::Page4k, MapSize::Block2m, MapSize::Block1g];

    pub const fn name(self) -> &'static str {
        match self {
            MapSize::Page4k => "4k",
            MapSize::Block2m => "2m",
            MapSize::Block1g => "1g",
        }
    }

    pub const fn bytes(self) -> u64 {
        match self {
            MapSize::Page4k => 1 << 12,
            MapSize::Block2m => 1 << 21,
            MapSize::Block1g => 1 << 30,
        }
    }

    pub fn from_name(s: &str) -> Option<MapSize> {
        MapSize::ALL.iter().copied().find(|m| m.name() == s)
    }
}

/// Shareability of the Normal aliases (aarch64 SH\[9:8\], Arm ARM D8.3; Device memory is always
/// treated as Outer Shareable whatever SH says, D8.6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Share {
    Inner,
    Outer,
    Non,
}

impl Share {
    pub const ALL: [Share; 3] = [Share::Inner, Share::Outer, Share::Non];

    pub const fn name(self) -> &'static str {
        match self {
            Share::Inner => "inner",
            Share::Outer => "outer",
            Share::Non => "non",
        }
    }

    pub fn from_name(s: &str) -> Option<Share> {
        Share::ALL.iter().copied().find(|m| m.name() == s)
    }
}

/// aarch64 translation granule of the arena aliases (`granule=`; Arm ARM D8.2: 4 KiB, 16 KiB or
/// 64 KiB, each optional in an implementation, ID_AA64MMFR0_EL1.TGran4/16/64).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Granule {
    K4,
    K16,
    K64,
}

impl Granule {
    pub const ALL: [Granule; 3] = [Granule::K4, Granule::K16, Granule::K64];

    pub const fn name(self) -> &'static str {
        match self {
            Granule::K4 => "4k",
            Granule::K16 => "16k",
            Granule::K64 => "64k",
        }
    }

    /// log2 of the granule (the page) size in bytes.
    pub const fn shift(self) -> u32 {
        match self {
            Granule::K4 => 12,
            Granule::K16 => 14,
            Granule::K64 => 16,
        }
    }

    pub const fn bytes(self) -> u64 {
        1 << self.shift()
    }

    pub fn from_name(s: &str) -> Option<Granule> {
        Granule::ALL.iter().copied().find(|g| g.name() == s)
    }

    /// Whether ID_AA64MMFR0_EL1 value `mmfr0` says stage 1 supports this granule (Arm ARM D19.2
    /// ID_AA64MMFR0_EL1): TGran4 \[31:28\] and TGran64 \[27:24\] are 0b1111 when not implemented
    /// (0b0000 / 0b0001 implemented), TGran16 \[23:20\] is 0b0000 when not implemented (0b0001 /
    /// 0b0010 implemented).
    pub const fn implemented(self, mmfr0: u64) -> bool {
        match self {
            Granule::K4 => (mmfr0 >> 28) & 0xf != 0xf,
            Granule::K64 => (mmfr0 >> 24) & 0xf != 0xf,
            Granule::K16 => (mmfr0 >> 20) & 0xf != 0,
        }
    }

    /// The granules `mmfr0` implements, as `4k, 64k`.
    pub fn implemented_names(mmfr0: u64) -> String {
        let names: Vec<&str> = Granule::ALL
            .iter()
            .filter(|g| g.implemented(mmfr0))
            .map(|g| g.name())
            .collect();
        names.join(", ")
    }
}

/// MTRR types `mtrr=` accepts (SDM Vol. 3A Table 13-8: UC-, a PAT-only type, is not one).
pub const MTRR_TYPES: [MemType; 5] = [
    MemType::Uc,
    MemType::Wc,
    MemType::Wt,
    MemType::Wp,
    MemType::Wb,
];

pub fn mtrr_from_name(s: &str) -> Option<MemType> {
    MTRR_TYPES.iter().copied().find(|t| t.name() == s)
}

/// One combination the families run under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variant {
    pub size: MapSize,
    pub share: Share,
    /// Data (and instruction) caches on: SCTLR_EL1.C/I = 1, x86 CR0.CD = 0.
    pub caches: bool,
    /// x86: the variable-range MTRR type over the arena (`None`: the firmware's MTRRs as found).
    pub mtrr: Option<MemType>,
    /// aarch64: translation granule of the arena aliases (`granule=`). With 16 KiB or 64 KiB
    /// only `size` = `Page4k` runs, meaning "pages of the granule" (docs/probes.md).
    pub granule: Granule,
}

impl Variant {
    /// What a run without these boot arguments uses.
    pub const DEFAULT: Variant = Variant {
        size: MapSize::Page4k,
        share: Share::Inner,
        caches: true,
        mtrr: None,
        granule: Granule::K4,
    };

    pub fn is_default(&self) -> bool {
        *self == Variant::DEFAULT
    }

    /// Short label for progress lines: `mapping=2m share=non caches=off mtrr=uc`.
    pub fn label(&self) -> String {
        let mut s = format!("mapping={}", self.size.name());
        if self.granule != Granule::K4 {
            s.push_str(&format!(" granule={}", self.granule.name()));
        }
        if self.share != Share::Inner {
            s.push_str(&format!(" share={}", self.share.name()));
        }
        if !self.caches {
            s.push_str(" caches=off");
        }
        if let Some(t) = self.mtrr {
            s.push_str(&format!(" mtrr={}", t.name()));
        }
        s
    }
}

/// Parse a comma list of names with `from`, without duplicates, in the order given. `Err` names
/// the bad items and what is accepted.
pub fn parse_list<T: Copy + PartialEq>(
    value: &str,
    given: &str,
    accepted: &[&str],
    from: impl Fn(&str) -> Option<T>,
    default_text: &str,
) -> Result<Vec<T>, String> {
    let mut out: Vec<T> = Vec::new();
    let mut bad: Vec<&str> = Vec::new();
    for item in value.split(',').filter(|s| !s.is_empty()) {
        match from(item) {
            Some(v) if !out.contains(&v) => out.push(v),
            Some(_) => {}
            None => bad.push(item),
        }
    }
    if bad.is_empty() && !out.is_empty() {
        return Ok(out);
    }
    Err(format!(
        "{given}: {} not accepted; accepted: a comma list of {}; using {default_text}",
        if bad.is_empty() {
            "an empty list is".to_string()
        } else {
            format!(
                "{} {}",
                bad.join(", "),
                if bad.len() == 1 { "is" } else { "are" }
            )
        },
        accepted.join(", ")
    ))
}

/// Names accepted by `mapping=`, `share=`, `caches=` and `mtrr=` on `arch`.
pub fn mapping_names() -> Vec<&'static str> {
    MapSize::ALL.iter().map(|m| m.name()).collect()
}

pub fn share_names() -> Vec<&'static str> {
    Share::ALL.iter().map(|m| m.name()).collect()
}

pub fn granule_names() -> Vec<&'static str> {
    Granule::ALL.iter().map(|g| g.name()).collect()
}

pub fn mtrr_names() -> Vec<&'static str> {
    MTRR_TYPES.iter().map(|m| m.name()).collect()
}

/// Whether `key=` applies on `arch` (share= and granule= are aarch64 only, mtrr= x86 only).
pub fn key_applies(key: &str, arch: Arch) -> bool {
    match key {
        "share" | "granule" => arch == Arch::Aarch64,
        "mtrr" => arch == Arch::X86_64,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in MapSize::ALL {
            assert_eq!(MapSize::from_name(m.name()), Some(m));
        }
        assert_eq!(MapSize::Block2m.bytes(), 2 << 20);
        assert_eq!(MapSize::Block1g.bytes(), 1 << 30);
        for s in Share::ALL {
            assert_eq!(Share::from_name(s.name()), Some(s));
        }
        for t in MTRR_TYPES {
            assert_eq!(mtrr_from_name(t.name()), Some(t));
        }
        assert_eq!(mtrr_from_name("uc-"), None, "UC- is a PAT type only");
        assert_eq!(MapSize::from_name("4K"), None);
    }

    #[test]
    fn lists_parse_dedupe_and_reject() {
        let p = |v: &str| parse_list(v, "mapping=x", &mapping_names(), MapSize::from_name, "4k");
        assert_eq!(p("2m,4k,2m").unwrap(), [MapSize::Block2m, MapSize::Page4k]);
        let e = p("4k,8m,huge").unwrap_err();
        assert!(e.contains("8m, huge are not accepted"), "{e}");
        assert!(e.contains("4k, 2m, 1g") && e.ends_with("using 4k"), "{e}");
        let e = p(",").unwrap_err();
        assert!(e.contains("empty list"), "{e}");
    }

    /// ID_AA64MMFR0_EL1 granule fields (Arm ARM D19.2): Cortex-A72 reads 0x0000_1124 (QEMU's
    /// cortex-a72 model and the Cortex-A72 TRM: TGran4 = TGran64 = TGran16 = 0b0000, so 4 KiB
    /// and 64 KiB only); QEMU `-cpu max` sets TGran16 = 0b0010 (all three).
    #[test]
    fn granule_support_from_id_register() {
        for g in Granule::ALL {
            assert_eq!(Granule::from_name(g.name()), Some(g));
            assert_eq!(g.bytes(), 1 << g.shift());
        }
        assert_eq!(Granule::K16.bytes(), 16 << 10);
        assert_eq!(Granule::K64.bytes(), 64 << 10);
        let a72 = 0x0000_1124u64;
        assert_eq!(Granule::implemented_names(a72), "4k, 64k");
        assert!(!Granule::K16.implemented(a72));
        let max = a72 | (0b0010 << 20);
        assert_eq!(Granule::implemented_names(max), "4k, 16k, 64k");
        // TGran4 = TGran64 = 0b1111, TGran16 = 0b0001: a 16 KiB-only core.
        let only16 = (0xf << 28) | (0xf << 24) | (0b0001 << 20);
        assert_eq!(Granule::implemented_names(only16), "16k");
        // TGran4 = 0b0001 (4 KiB with 52-bit addresses) is still implemented.
        assert!(Granule::K4.implemented(1 << 28));
    }

    #[test]
    fn variant_labels() {
        assert!(Variant::DEFAULT.is_default());
        assert_eq!(Variant::DEFAULT.label(), "mapping=4k");
        let v = Variant {
            size: MapSize::Block1g,
            share: Share::Non,
            caches: false,
            mtrr: Some(MemType::Wc),
            granule: Granule::K4,
        };
        assert_eq!(v.label(), "mapping=1g share=non caches=off mtrr=wc");
        let g = Variant {
            granule: Granule::K64,
            ..Variant::DEFAULT
        };
        assert_eq!(g.label(), "mapping=4k granule=64k");
        assert!(!g.is_default());
        assert!(!key_applies("granule", Arch::X86_64));
        assert!(!key_applies("share", Arch::X86_64));
        assert!(!key_applies("mtrr", Arch::Aarch64));
    }
}
