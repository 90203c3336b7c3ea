//! Memory attributes a probe arena can be mapped with, named as in REPORT-FORMAT.md.

use core::fmt;

/// Architecture a record or rule belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    Aarch64,
    X86_64,
}

impl Arch {
    pub const fn name(self) -> &'static str {
        match self {
            Arch::Aarch64 => "aarch64",
            Arch::X86_64 => "x86_64",
        }
    }

    /// Attributes a probe arena can carry on this architecture, in report order.
    pub const fn attrs(self) -> &'static [MemAttr] {
        match self {
            Arch::Aarch64 => &[
                MemAttr::NormalWb,
                MemAttr::NormalWt,
                MemAttr::NormalNc,
                MemAttr::DeviceNGnRnE,
                MemAttr::DeviceNGnRE,
                MemAttr::DeviceGRE,
            ],
            Arch::X86_64 => &[
                MemAttr::Wb,
                MemAttr::Wt,
                MemAttr::Wc,
                MemAttr::Uc,
                MemAttr::UcMinus,
                MemAttr::Wp,
            ],
        }
    }

    /// The architecture this code was compiled for, if it is one atomprobe probes.
    pub const fn current() -> Option<Arch> {
        if cfg!(target_arch = "aarch64") {
            Some(Arch::Aarch64)
        } else if cfg!(target_arch = "x86_64") {
            Some(Arch::X86_64)
        } else {
            None
        }
    }
}

/// A memory attribute (aarch64 MAIR encodings, x86 PAT memory types).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MemAttr {
    /// Normal, inner/outer write-back, read/write-allocate (Arm ARM D8.5 "Memory attributes").
    NormalWb,
    /// Normal, inner/outer write-through.
    NormalWt,
    /// Normal, inner/outer non-cacheable.
    NormalNc,
    /// Device-nGnRnE: the strongest Device type; what every data access is with the MMU off
    /// (Arm ARM D8.2.11 "The effects of disabling an address translation stage").
    DeviceNGnRnE,
    DeviceNGnRE,
    DeviceGRE,
    /// x86 write-back (Intel SDM Vol. 3A 12.3 "Methods of caching available").
    Wb,
    Wt,
    Wc,
    Uc,
    UcMinus,
    Wp,
}

impl MemAttr {
    pub const ALL: [MemAttr; 12] = [
        MemAttr::NormalWb,
        MemAttr::NormalWt,
        MemAttr::NormalNc,
        MemAttr::DeviceNGnRnE,
        MemAttr::DeviceNGnRE,
        MemAttr::DeviceGRE,
        MemAttr::Wb,
        MemAttr::Wt,
        MemAttr::Wc,
        MemAttr::Uc,
        MemAttr::UcMinus,
        MemAttr::Wp,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            MemAttr::NormalWb => "normal-wb",
            MemAttr::NormalWt => "normal-wt",
            MemAttr::NormalNc => "normal-nc",
            MemAttr::DeviceNGnRnE => "device-ngnrne",
            MemAttr::DeviceNGnRE => "device-ngnre",
            MemAttr::DeviceGRE => "device-gre",
            MemAttr::Wb => "wb",
            MemAttr::Wt => "wt",
            MemAttr::Wc => "wc",
            MemAttr::Uc => "uc",
            MemAttr::UcMinus => "uc-",
            MemAttr::Wp => "wp",
        }
    }

    pub fn from_name(name: &str) -> Option<MemAttr> {
        MemAttr::ALL.iter().copied().find(|a| a.name() == name)
    }

    pub const fn arch(self) -> Arch {
        match self {
            MemAttr::NormalWb
            | MemAttr::NormalWt
            | MemAttr::NormalNc
            | MemAttr::DeviceNGnRnE
            | MemAttr::DeviceNGnRE
            | MemAttr::DeviceGRE => Arch::Aarch64,
            _ => Arch::X86_64,
        }
    }

    /// Arm Device memory (any of the three Device types).
    pub const fn is_arm_device(self) -> bool {
        matches!(
            self,
            MemAttr::DeviceNGnRnE | MemAttr::DeviceNGnRE | MemAttr::DeviceGRE
        )
    }

    /// Cacheable in the sense the architecture uses for atomicity and exclusives rules.
    pub const fn is_cacheable(self) -> bool {
        matches!(
            self,
            MemAttr::NormalWb | MemAttr::NormalWt | MemAttr::Wb | MemAttr::Wt | MemAttr::Wp
        )
    }
}

impl fmt::Display for MemAttr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in MemAttr::ALL {
            assert_eq!(MemAttr::from_name(a.name()), Some(a));
        }
        assert_eq!(MemAttr::from_name("normal"), None);
    }

    #[test]
    fn arch_lists_partition_all() {
        let n = Arch::Aarch64.attrs().len() + Arch::X86_64.attrs().len();
        assert_eq!(n, MemAttr::ALL.len());
        for a in Arch::Aarch64.attrs() {
            assert_eq!(a.arch(), Arch::Aarch64);
        }
        for a in Arch::X86_64.attrs() {
            assert_eq!(a.arch(), Arch::X86_64);
        }
    }
}
