//! Boot arguments (`key=value`, space-separated) and the effective configuration.
//!
//! Bad input never stops a run: each unknown key or bad value yields an `error` record that names
//! what was wrong and what is accepted, and the default applies.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use crate::attr::{Arch, MemAttr};
use crate::mapping::{
    granule_names, key_applies, mapping_names, mtrr_from_name, mtrr_names, parse_list, share_names,
    Granule, MapSize, Share, Variant,
};
use crate::mmu::x86_64::MemType;
use crate::record::ErrorRec;

/// Default base iteration count (`iters=`); each family scales it (docs/probes.md).
pub const DEFAULT_ITERS: u64 = 10_000;
/// Largest accepted `iters=`.
pub const MAX_ITERS: u64 = 1_000_000_000;
/// Largest accepted `shutdown=` (a day).
pub const MAX_SHUTDOWN_S: u64 = 86_400;
/// Largest accepted `cpus=`.
pub const MAX_CPUS: u32 = 64;

/// Probe families the suite knows, in run order.
pub const FAMILIES: &[&str] = &["fault", "tear", "excl", "litmus", "cost"];

/// Test-only ways to end a run badly, to prove that aborts are reported (`selftest=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SelfTest {
    /// An access to an unmapped/invalid address outside any fault guard.
    Fault,
    /// A Rust panic.
    Panic,
    /// A fault outside any guard, then a second fault inside the fault handler's register dump:
    /// the kernel must print a last "nested fault" message and stop (issue 11).
    NestedFault,
}

/// The effective configuration, printed in `begin.config`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Selected probes: families, names or globs (`*`, `?`), matched against `family`, `name`
    /// and `family/name`.
    pub probes: Vec<String>,
    /// Memory attributes the probes run over.
    pub attrs: Vec<String>,
    /// Base iteration count.
    pub iters: u64,
    /// Number of cores to use (0 = every core that came up).
    pub cpus: u32,
    /// aarch64: MMU on (probe arena with chosen attributes) or off (everything Device-nGnRnE).
    pub mmu: bool,
    /// Alignment checking: SCTLR_EL1.A on aarch64, CR0.AM + RFLAGS.AC (at CPL 3) on x86.
    pub align_check: bool,
    /// Seed of the probes' pseudo-random choices (`seed=`, default 1): through [`SeedRng`], the
    /// `tear` family's cache line of the access, first pattern and writer rotation, and the
    /// `excl` family's cache line of the counter. The same seed repeats the same choices.
    pub seed: u64,
    /// Leaf sizes of the arena aliases (`mapping=`: 4k, 2m, 1g), each run in turn.
    #[serde(default = "default_mapping")]
    pub mapping: Vec<String>,
    /// aarch64: shareability of the Normal aliases (`share=`: inner, outer, non).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub share: Vec<String>,
    /// Data caches (`caches=`: on, off), each run in turn.
    #[serde(default = "default_caches")]
    pub caches: Vec<String>,
    /// x86: MTRR types put over the arena (`mtrr=`: uc, wc, wt, wp, wb); empty: as found.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mtrr: Vec<String>,
    /// aarch64: translation granules of the arena aliases (`granule=`: 4k, 16k, 64k), each run
    /// in turn; empty: 4k.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub granule: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selftest: Option<SelfTest>,
    /// Boards that can power themselves off (UEFI: runtime ResetSystem): seconds to wait after
    /// the `end` record before shutting down (`shutdown=N`; absent: stay on, parked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown: Option<u32>,
    /// Words of the command line that belong to a boot loader or Linux, not to atomprobe (the
    /// Raspberry Pi firmware prepends e.g. `console=…`, `8250.nr_uarts=1`, `rootwait` to
    /// `cmdline.txt`): kept here, not reported as errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<String>,
    /// `litmus-debug=skew`: the litmus runner also measures how far apart its roles run
    /// (`litmus::engine::Skew`) and prints a summary per test (a debug aid; it slows the runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub litmus_debug: Option<LitmusDebug>,
    /// Where the output goes (`console=serial|screen|both`; absent: both). Only these three
    /// values are atomprobe's: `console=ttyS0,115200`, `console=tty1` and the like are Linux
    /// words (the Pi firmware prepends them) and land in [`Config::ignored`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console: Option<ConsoleChoice>,
}

/// `console=`: the serial port, the screen (UEFI GOP framebuffer: human lines only, no
/// records), or both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsoleChoice {
    Serial,
    Screen,
    Both,
}

impl ConsoleChoice {
    pub fn from_name(v: &str) -> Option<ConsoleChoice> {
        match v {
            "serial" => Some(ConsoleChoice::Serial),
            "screen" => Some(ConsoleChoice::Screen),
            "both" => Some(ConsoleChoice::Both),
            _ => None,
        }
    }

    /// (serial, screen) wanted.
    pub fn targets(self) -> (bool, bool) {
        match self {
            ConsoleChoice::Serial => (true, false),
            ConsoleChoice::Screen => (false, true),
            ConsoleChoice::Both => (true, true),
        }
    }
}

/// Debug measurements of the litmus runner (`litmus-debug=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LitmusDebug {
    /// How many instances apart the roles of a batch run.
    Skew,
}

impl Config {
    /// Defaults for `arch` before any boot argument is applied.
    pub fn defaults(arch: Arch) -> Config {
        Config {
            probes: vec!["*".to_string()],
            attrs: default_attrs(arch)
                .iter()
                .map(|a| a.name().to_string())
                .collect(),
            iters: DEFAULT_ITERS,
            cpus: 0,
            mmu: true,
            align_check: false,
            seed: 1,
            mapping: default_mapping(),
            share: match arch {
                Arch::Aarch64 => vec![Share::Inner.name().to_string()],
                Arch::X86_64 => Vec::new(),
            },
            caches: default_caches(),
            mtrr: Vec::new(),
            granule: Vec::new(),
            selftest: None,
            shutdown: None,
            ignored: Vec::new(),
            litmus_debug: None,
            console: None,
        }
    }

    /// Every combination of `granule=`, `mapping=`, `share=`, `caches=` and `mtrr=`, in the order
    /// the suite runs them (granule outermost, then mapping).
    pub fn variants(&self) -> Vec<Variant> {
        let sizes: Vec<MapSize> = self
            .mapping
            .iter()
            .filter_map(|m| MapSize::from_name(m))
            .collect();
        let mut shares: Vec<Share> = self
            .share
            .iter()
            .filter_map(|m| Share::from_name(m))
            .collect();
        if shares.is_empty() {
            shares.push(Share::Inner);
        }
        let caches: Vec<bool> = self.caches.iter().map(|c| c == "on").collect();
        let mut mtrrs: Vec<Option<MemType>> = self.mtrr.iter().map(|m| mtrr_from_name(m)).collect();
        if mtrrs.is_empty() {
            mtrrs.push(None);
        }
        let mut granules: Vec<Granule> = self
            .granule
            .iter()
            .filter_map(|g| Granule::from_name(g))
            .collect();
        if granules.is_empty() {
            granules.push(Granule::K4);
        }
        let mut out = Vec::new();
        for &granule in &granules {
            for &size in &sizes {
                for &share in &shares {
                    for &c in &caches {
                        for &mtrr in &mtrrs {
                            if granule != Granule::K4 && size != MapSize::Page4k {
                                continue; // refused by `parse` (granule pages only)
                            }
                            out.push(Variant {
                                size,
                                share,
                                caches: c,
                                mtrr,
                                granule,
                            });
                        }
                    }
                }
            }
        }
        if out.is_empty() {
            out.push(Variant::DEFAULT);
        }
        out
    }

    /// The selected attributes, parsed (names were validated by `parse`).
    pub fn mem_attrs(&self) -> Vec<MemAttr> {
        self.attrs
            .iter()
            .filter_map(|a| MemAttr::from_name(a))
            .collect()
    }

    /// Whether a probe (`family`, `name`) is selected by `probes=`.
    pub fn selects(&self, family: &str, name: &str) -> bool {
        self.probes
            .iter()
            .any(|pat| selector_matches(pat, family, name))
    }

    /// Parse a command line for `arch`. `known` lists every `(family, name)` the suite has, so a
    /// `probes=` item that selects nothing is reported. Returns the effective configuration and
    /// one error per bad item.
    pub fn parse(cmdline: &str, arch: Arch, known: &[(&str, &str)]) -> (Config, Vec<ErrorRec>) {
        Config::parse_spelled(cmdline, arch, known, Spelling::BootArg)
    }

    /// [`Config::parse`], with the error messages naming each argument as `spelling` says: the
    /// host tool passes its options (`--iters lots`) through here as boot arguments
    /// (`iters=lots`), and its user must read the flag they typed.
    pub fn parse_spelled(
        cmdline: &str,
        arch: Arch,
        known: &[(&str, &str)],
        spelling: Spelling,
    ) -> (Config, Vec<ErrorRec>) {
        let mut cfg = Config::defaults(arch);
        let mut errors = Vec::new();
        let mut err = |message: String| {
            errors.push(ErrorRec {
                what: "bootarg".into(),
                message,
            })
        };
        let arg = |key: &str, value: &str| spelling.arg(key, value);
        for item in cmdline.split_ascii_whitespace() {
            if is_foreign_bootarg(item) {
                cfg.ignored.push(item.to_string());
                continue;
            }
            let Some((key, value)) = item.split_once('=') else {
                // Words without '=' that a boot loader adds are not ours, but say so.
                err(format!(
                    "boot argument '{item}' is not key=value; accepted keys: {}",
                    KEYS.join(", ")
                ));
                continue;
            };
            match key {
                "probes" => match parse_probes(value, known, &arg(key, value)) {
                    Ok(list) => cfg.probes = list,
                    Err(m) => err(m),
                },
                "attrs" => match parse_attrs(value, arch, &arg(key, value)) {
                    Ok(list) => cfg.attrs = list,
                    Err(m) => err(m),
                },
                "iters" => match parse_count(value, 1, MAX_ITERS) {
                    Some(n) => cfg.iters = n,
                    None => err(format!(
                        "{} is not valid: expected a whole number from 1 to {MAX_ITERS} (suffix k or \
                         M allowed); using {}",
                        arg(key, value),
                        cfg.iters
                    )),
                },
                "cpus" => match parse_count(value, 1, u64::from(MAX_CPUS)) {
                    Some(n) => cfg.cpus = n as u32,
                    None => err(format!(
                        "{} is not valid: expected a whole number from 1 to {MAX_CPUS}; using \
                         every core",
                        arg(key, value)
                    )),
                },
                "mmu" => match (arch, parse_on_off(value)) {
                    (Arch::Aarch64, Some(b)) => cfg.mmu = b,
                    (Arch::Aarch64, None) => err(format!(
                        "{} is not valid: expected on or off; using on",
                        arg(key, value)
                    )),
                    (Arch::X86_64, _) => err(format!(
                        "{} is not accepted on x86_64: long mode requires paging; choose memory \
                         types with {}",
                        arg(key, value),
                        spelling.key("attrs")
                    )),
                },
                "align-check" => match parse_on_off(value) {
                    Some(b) => cfg.align_check = b,
                    None => err(format!(
                        "{} is not valid: expected on or off; using off",
                        arg(key, value)
                    )),
                },
                "seed" => match parse_u64(value) {
                    Some(n) => cfg.seed = n,
                    None => err(format!(
                        "{} is not valid: expected a whole number (decimal or 0x hex); using {}",
                        arg(key, value),
                        cfg.seed
                    )),
                },
                "mapping" | "share" | "caches" | "mtrr" | "granule" if !key_applies(key, arch) => {
                    err(format!(
                    "{} is not accepted on {}: {}",
                    arg(key, value),
                    arch.name(),
                    if key == "share" {
                        "x86 has no shareability attribute (every memory type is coherent)"
                    } else if key == "granule" {
                        "x86 paging has one base page size (4 KiB); choose large pages with mapping="
                    } else {
                        "MTRRs are x86 only; choose aarch64 memory types with attrs="
                    }
                ))
                }
                "granule" => match parse_list(
                    value,
                    &arg(key, value),
                    &granule_names(),
                    Granule::from_name,
                    "4k",
                ) {
                    Ok(l) => cfg.granule = l.iter().map(|g| g.name().to_string()).collect(),
                    Err(m) => err(m),
                },
                "mapping" => match parse_list(
                    value,
                    &arg(key, value),
                    &mapping_names(),
                    MapSize::from_name,
                    "4k",
                ) {
                    Ok(l) => cfg.mapping = l.iter().map(|m| m.name().to_string()).collect(),
                    Err(m) => err(m),
                },
                "share" => match parse_list(
                    value,
                    &arg(key, value),
                    &share_names(),
                    Share::from_name,
                    "inner",
                ) {
                    Ok(l) => cfg.share = l.iter().map(|m| m.name().to_string()).collect(),
                    Err(m) => err(m),
                },
                "caches" => match parse_list(value, &arg(key, value), &["on", "off"], parse_on_off, "on")
                {
                    Ok(l) => {
                        cfg.caches = l
                            .iter()
                            .map(|&b| if b { "on" } else { "off" }.to_string())
                            .collect()
                    }
                    Err(m) => err(m),
                },
                "mtrr" => match parse_list(
                    value,
                    &arg(key, value),
                    &mtrr_names(),
                    mtrr_from_name,
                    "the MTRRs as the firmware set them",
                ) {
                    Ok(l) => cfg.mtrr = l.iter().map(|m| m.name().to_string()).collect(),
                    Err(m) => err(m),
                },
                "shutdown" => match parse_count(value, 0, MAX_SHUTDOWN_S) {
                    Some(n) => cfg.shutdown = Some(n as u32),
                    None => err(format!(
                        "{} is not valid: expected seconds from 0 to {MAX_SHUTDOWN_S}; staying on \
                         after the run",
                        arg(key, value)
                    )),
                },
                "selftest" => match value {
                    "fault" => cfg.selftest = Some(SelfTest::Fault),
                    "panic" => cfg.selftest = Some(SelfTest::Panic),
                    "nested-fault" => cfg.selftest = Some(SelfTest::NestedFault),
                    _ => err(format!(
                        "{} is not valid: expected fault, panic or nested-fault (test-only)",
                        arg(key, value)
                    )),
                },
                "console" => match ConsoleChoice::from_name(value) {
                    Some(c) => cfg.console = Some(c),
                    // Not reached: other values are Linux words, set aside above.
                    None => err(format!(
                        "{} is not valid: expected serial, screen or both; using both",
                        arg(key, value)
                    )),
                },
                "litmus-debug" => match value {
                    "skew" => cfg.litmus_debug = Some(LitmusDebug::Skew),
                    _ => err(format!(
                        "{} is not valid: expected skew (debug: how far apart the litmus roles \
                         run)",
                        arg(key, value)
                    )),
                },
                _ => err(format!(
                    "unknown boot argument '{key}' (in '{item}'); accepted keys: {}",
                    KEYS.join(", ")
                )),
            }
        }
        // A 16k or 64k granule's aliases are pages of the granule only (docs/probes.md): its
        // combinations with mapping=2m/1g are not run (`variants` leaves them out), said once.
        let big: Vec<&str> = cfg
            .granule
            .iter()
            .map(String::as_str)
            .filter(|g| *g != "4k")
            .collect();
        let blocks: Vec<&str> = cfg
            .mapping
            .iter()
            .map(String::as_str)
            .filter(|m| *m != "4k")
            .collect();
        if !big.is_empty() && !blocks.is_empty() {
            err(format!(
                "{} with {}: a 16k or 64k granule maps the arena with pages of the granule only \
                 (accepted with it: mapping=4k, which then means those pages); those combinations \
                 are skipped",
                arg("mapping", &blocks.join(",")),
                arg("granule", &big.join(","))
            ));
        }
        (cfg, errors)
    }
}

/// How an error message names an argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spelling {
    /// As a boot argument: `iters=lots`.
    BootArg,
    /// As the host tool's option: `--iters lots` (`atomprobe host`).
    Flag,
}

impl Spelling {
    /// `key` with `value`, as the user wrote it.
    pub fn arg(self, key: &str, value: &str) -> String {
        match self {
            Spelling::BootArg => format!("{key}={value}"),
            Spelling::Flag if value.is_empty() => format!("--{key} ''"),
            Spelling::Flag => format!("--{key} {value}"),
        }
    }

    /// `key` alone: `attrs=` or `--attrs`.
    pub fn key(self, key: &str) -> String {
        match self {
            Spelling::BootArg => format!("{key}="),
            Spelling::Flag => format!("--{key}"),
        }
    }
}

/// Linux / boot-firmware parameters that boot loaders put on the command line (the Raspberry Pi
/// firmware prepends its own to `cmdline.txt`). Module parameters (`module.param=…`) are
/// recognised by the dot in the key.
const FOREIGN_KEYS: &[&str] = &[
    "console",
    "earlycon",
    "root",
    "rootfstype",
    "rootwait",
    "rootdelay",
    "ro",
    "rw",
    "quiet",
    "splash",
    "loglevel",
    "coherent_pool",
    "cma",
    "video",
    "elevator",
    "fsck.repair",
    "init",
    "nokaslr",
    "maxcpus",
    "plymouth.ignore-serial-consoles",
];

/// Whether `item` is a boot-loader / Linux word rather than an atomprobe argument.
fn is_foreign_bootarg(item: &str) -> bool {
    let key = item.split_once('=').map_or(item, |(k, _)| k);
    // `console=serial|screen|both` is ours; every other `console=` (ttyS0,115200, tty1, …) is
    // Linux's.
    if let Some(("console", v)) = item.split_once('=') {
        return ConsoleChoice::from_name(v).is_none();
    }
    FOREIGN_KEYS.contains(&key)
        || (key.contains('.') && !KEYS.iter().any(|k| k.trim_end_matches('=') == key))
}

const KEYS: &[&str] = &[
    "probes=",
    "attrs=",
    "iters=",
    "cpus=",
    "mmu=",
    "align-check=",
    "seed=",
    "mapping=",
    "share=",
    "caches=",
    "mtrr=",
    "granule=",
    "shutdown=",
    "selftest=",
    "litmus-debug=",
    "console=",
];

fn default_mapping() -> Vec<String> {
    vec![MapSize::Page4k.name().to_string()]
}

fn default_caches() -> Vec<String> {
    vec!["on".to_string()]
}

/// Default attributes: the cacheable one everything normally uses, plus the weakest Normal type
/// and the strongest Device/uncached type, so a default run shows the contrast.
pub fn default_attrs(arch: Arch) -> &'static [MemAttr] {
    match arch {
        Arch::Aarch64 => &[MemAttr::NormalWb, MemAttr::NormalNc, MemAttr::DeviceNGnRnE],
        Arch::X86_64 => &[MemAttr::Wb, MemAttr::Uc],
    }
}

fn parse_on_off(v: &str) -> Option<bool> {
    match v {
        "on" | "1" | "yes" | "true" => Some(true),
        "off" | "0" | "no" | "false" => Some(false),
        _ => None,
    }
}

fn parse_u64(v: &str) -> Option<u64> {
    if let Some(h) = v.strip_prefix("0x") {
        u64::from_str_radix(h, 16).ok()
    } else {
        v.parse().ok()
    }
}

/// A count with an optional `k` (×1000) or `M` (×1 000 000) suffix, within `[min, max]`.
fn parse_count(v: &str, min: u64, max: u64) -> Option<u64> {
    let (digits, mul) = match v.as_bytes().last() {
        Some(b'k') | Some(b'K') => (&v[..v.len() - 1], 1_000),
        Some(b'M') | Some(b'm') => (&v[..v.len() - 1], 1_000_000),
        _ => (v, 1),
    };
    let n: u64 = digits.parse().ok()?;
    let n = n.checked_mul(mul)?;
    (min..=max).contains(&n).then_some(n)
}

fn parse_attrs(v: &str, arch: Arch, given: &str) -> Result<Vec<String>, String> {
    let accepted: Vec<&str> = arch.attrs().iter().map(|a| a.name()).collect();
    let mut out: Vec<String> = Vec::new();
    let mut bad = Vec::new();
    for a in v.split(',').filter(|s| !s.is_empty()) {
        if a == "all" {
            out = accepted.iter().map(|s| s.to_string()).collect();
        } else if accepted.contains(&a) {
            if !out.iter().any(|o| o == a) {
                out.push(a.to_string());
            }
        } else {
            bad.push(a);
        }
    }
    if !bad.is_empty() || out.is_empty() {
        return Err(format!(
            "{given}: unknown attribute{} {}; accepted on {}: {}, or all; using the default",
            if bad.len() == 1 { "" } else { "s" },
            if bad.is_empty() {
                "(none given)".to_string()
            } else {
                bad.join(", ")
            },
            arch.name(),
            accepted.join(", ")
        ));
    }
    Ok(out)
}

fn parse_probes(v: &str, known: &[(&str, &str)], given: &str) -> Result<Vec<String>, String> {
    let items: Vec<&str> = v.split(',').filter(|s| !s.is_empty()).collect();
    let bad: Vec<&str> = items
        .iter()
        .copied()
        .filter(|pat| !known.iter().any(|(f, n)| selector_matches(pat, f, n)))
        .collect();
    if items.is_empty() || !bad.is_empty() {
        return Err(format!(
            "{given}: {} selects no probe; accepted: families {}, probe names (e.g. \
             fault/ldxr-64), or globs (e.g. 'litmus/SB*'); using all probes",
            if bad.is_empty() {
                "an empty list".to_string()
            } else {
                bad.join(", ")
            },
            FAMILIES.join(", ")
        ));
    }
    Ok(items.into_iter().map(String::from).collect())
}

/// Whether selector `pat` picks the probe `family`/`name`.
pub fn selector_matches(pat: &str, family: &str, name: &str) -> bool {
    if glob(pat, family) || glob(pat, name) {
        return true;
    }
    match pat.split_once('/') {
        Some((pf, pn)) => glob(pf, family) && glob(pn, name),
        None => false,
    }
}

/// Shell-style glob: `*` matches any run of characters, `?` one character.
pub fn glob(pat: &str, s: &str) -> bool {
    let (p, s) = (pat.as_bytes(), s.as_bytes());
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// A small deterministic generator for the choices `seed=` controls: xorshift64* (Marsaglia,
/// "Xorshift RNGs", 2003; the `*` output multiplier from Vigna, 2016), its state set from the seed
/// and a stream name by splitmix64 so that nearby seeds, seed 0 and different streams give
/// unrelated sequences. Not for cryptography: it only varies where and in which order probes
/// run, reproducibly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedRng(u64);

impl SeedRng {
    /// The generator for `stream` (e.g. a probe's name) under `seed`: one probe's choices do not
    /// depend on which other probes ran.
    pub fn new(seed: u64, stream: &str) -> SeedRng {
        // FNV-1a of the stream name.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in stream.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        // splitmix64 finaliser.
        let mut z = (seed ^ h).wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        // xorshift's state must never be 0.
        SeedRng(if z == 0 { 0x9e37_79b9_7f4a_7c15 } else { z })
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutdown_seconds() {
        let (c, e) = Config::parse("shutdown=30", Arch::X86_64, &[]);
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(c.shutdown, Some(30));
        let (c, e) = Config::parse("shutdown=soon", Arch::Aarch64, &[]);
        assert_eq!(c.shutdown, None);
        assert!(e[0].message.contains("shutdown=soon") && e[0].message.contains("seconds"));
        assert_eq!(Config::defaults(Arch::X86_64).shutdown, None);
    }

    #[test]
    fn seed_rng_is_reproducible_and_seed_dependent() {
        let seq = |seed, stream| {
            let mut r = SeedRng::new(seed, stream);
            (0..8).map(|_| r.next_u64()).collect::<Vec<u64>>()
        };
        assert_eq!(seq(1, "tear/a"), seq(1, "tear/a"));
        assert_ne!(seq(1, "tear/a"), seq(2, "tear/a"));
        assert_ne!(seq(1, "tear/a"), seq(1, "tear/b"));
        assert!(seq(0, "").iter().all(|&v| v != 0));
        let mut r = SeedRng::new(7, "x");
        let mut seen = [false; 5];
        for _ in 0..200 {
            let v = r.below(5);
            assert!(v < 5);
            seen[v as usize] = true;
        }
        assert!(seen.iter().all(|&s| s), "below(5) should reach every value");
        assert_eq!(r.below(0), 0);
    }

    const KNOWN: &[(&str, &str)] = &[
        ("fault", "ldxr-64"),
        ("litmus", "SB"),
        ("litmus", "SB+dmb.sys"),
    ];

    #[test]
    fn defaults_apply_without_args() {
        let (c, e) = Config::parse("", Arch::Aarch64, KNOWN);
        assert!(e.is_empty());
        assert_eq!(c, Config::defaults(Arch::Aarch64));
    }

    #[test]
    fn good_args_apply() {
        let (c, e) = Config::parse(
            "probes=fault,litmus/SB* attrs=normal-wb,device-gre iters=5k cpus=2 mmu=off align-check=on seed=0x10",
            Arch::Aarch64,
            KNOWN,
        );
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(c.probes, ["fault", "litmus/SB*"]);
        assert_eq!(c.attrs, ["normal-wb", "device-gre"]);
        assert_eq!(
            (c.iters, c.cpus, c.mmu, c.align_check, c.seed),
            (5000, 2, false, true, 16)
        );
        assert!(c.selects("litmus", "SB+dmb.sys"));
        assert!(!c.selects("tear", "x"));
    }

    #[test]
    fn each_bad_item_gives_one_error_and_defaults_stay() {
        let (c, e) = Config::parse("probes=nonsense iters=-3 foo", Arch::Aarch64, KNOWN);
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].message.contains("nonsense") && e[0].message.contains("fault"));
        assert!(e[1].message.contains("-3") && e[1].message.contains("whole number"));
        assert!(e[2].message.contains("'foo'") && e[2].message.contains("accepted keys"));
        assert!(e.iter().all(|r| r.what == "bootarg"));
        assert_eq!(c, Config::defaults(Arch::Aarch64));
    }

    #[test]
    fn console_takes_our_three_values_and_leaves_linux_forms_aside() {
        for (v, want) in [
            ("serial", ConsoleChoice::Serial),
            ("screen", ConsoleChoice::Screen),
            ("both", ConsoleChoice::Both),
        ] {
            let (c, e) = Config::parse(&format!("console={v}"), Arch::X86_64, KNOWN);
            assert!(e.is_empty(), "{e:?}");
            assert_eq!(c.console, Some(want));
            assert!(c.ignored.is_empty());
        }
        assert_eq!(ConsoleChoice::Screen.targets(), (false, true));
        assert_eq!(ConsoleChoice::Both.targets(), (true, true));
        // The Pi firmware's and Linux's forms: ignored, not errors, and not ours.
        let (c, e) = Config::parse(
            "console=ttyS0,115200 console=tty1 console=serial0,115200 console=",
            Arch::Aarch64,
            KNOWN,
        );
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(c.console, None);
        assert_eq!(c.ignored.len(), 4);
        // Ours after a Linux one still applies.
        let (c, _) = Config::parse("console=tty1 console=serial", Arch::Aarch64, KNOWN);
        assert_eq!(c.console, Some(ConsoleChoice::Serial));
        assert_eq!(c.ignored, ["console=tty1"]);
    }

    #[test]
    fn firmware_words_are_kept_aside_not_errors() {
        let (c, e) = Config::parse(
            "coherent_pool=1M 8250.nr_uarts=1 console=ttyS0,115200 rootwait probes=fault",
            Arch::Aarch64,
            KNOWN,
        );
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(c.probes, ["fault"]);
        assert_eq!(c.ignored.len(), 4);
        // A plain unknown word is still an error.
        let (_, e) = Config::parse("foo", Arch::Aarch64, KNOWN);
        assert_eq!(e.len(), 1);
    }

    #[test]
    fn attrs_are_checked_per_arch() {
        let (_, e) = Config::parse("attrs=wb", Arch::Aarch64, KNOWN);
        assert_eq!(e.len(), 1);
        assert!(e[0].message.contains("normal-wb"));
        let (c, e) = Config::parse("attrs=wb,uc-", Arch::X86_64, KNOWN);
        assert!(e.is_empty());
        assert_eq!(c.attrs, ["wb", "uc-"]);
        let (c, _) = Config::parse("attrs=all", Arch::X86_64, KNOWN);
        assert_eq!(c.attrs.len(), 6);
    }

    #[test]
    fn litmus_debug_skew() {
        let (c, e) = Config::parse("litmus-debug=skew", Arch::X86_64, KNOWN);
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(c.litmus_debug, Some(LitmusDebug::Skew));
        assert_eq!(Config::defaults(Arch::X86_64).litmus_debug, None);
    }

    #[test]
    fn bad_values_name_value_and_accepted() {
        for arg in [
            "cpus=0",
            "cpus=x",
            "mmu=maybe",
            "align-check=2",
            "seed=-1",
            "iters=",
            "selftest=boom",
            "litmus-debug=all",
        ] {
            let (_, e) = Config::parse(arg, Arch::Aarch64, KNOWN);
            assert_eq!(e.len(), 1, "{arg}");
            let v = arg.split_once('=').unwrap().1;
            assert!(
                e[0].message.contains(&format!("={v}")),
                "{arg}: {}",
                e[0].message
            );
        }
        let (_, e) = Config::parse("mmu=off", Arch::X86_64, KNOWN);
        assert_eq!(e.len(), 1);
    }

    #[test]
    fn flag_spelling_names_the_option_typed() {
        let (c, e) = Config::parse_spelled(
            "iters=lots probes=nonsense attrs=purple seed=x cpus=0",
            Arch::X86_64,
            KNOWN,
            Spelling::Flag,
        );
        assert_eq!(e.len(), 5, "{e:?}");
        for (m, want) in e.iter().zip([
            "--iters lots",
            "--probes nonsense",
            "--attrs purple",
            "--seed x",
            "--cpus 0",
        ]) {
            assert!(m.message.starts_with(want), "{}", m.message);
            assert!(!m.message.contains('='), "{}", m.message);
        }
        assert_eq!(c, Config::defaults(Arch::X86_64));
        let (_, e) = Config::parse_spelled("mmu=off", Arch::X86_64, KNOWN, Spelling::Flag);
        assert!(e[0].message.contains("with --attrs"), "{}", e[0].message);
        assert_eq!(Spelling::Flag.arg("iters", ""), "--iters ''");
        assert_eq!(Spelling::BootArg.arg("iters", ""), "iters=");
    }

    #[test]
    fn mapping_arguments_make_variants() {
        let (c, e) = Config::parse(
            "mapping=4k,2m,1g share=inner,outer,non caches=on,off",
            Arch::Aarch64,
            KNOWN,
        );
        assert!(e.is_empty(), "{e:?}");
        let v = c.variants();
        assert_eq!(v.len(), 18);
        assert_eq!(v[0], Variant::DEFAULT);
        assert!(!v[1].caches);
        assert_eq!(v[17].size, MapSize::Block1g);
        assert_eq!(v[17].share, Share::Non);
        assert_eq!(
            Config::defaults(Arch::Aarch64).variants(),
            [Variant::DEFAULT]
        );
        // granule= is the outermost dimension; 4k first is the default combination.
        let (c, e) = Config::parse("granule=4k,64k caches=on,off", Arch::Aarch64, KNOWN);
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(c.granule, ["4k", "64k"]);
        let v = c.variants();
        assert_eq!(v.len(), 4);
        assert_eq!(v[0], Variant::DEFAULT);
        assert_eq!(v[2].granule, Granule::K64);
        assert!(v[2].caches && !v[3].caches);
        // Blocks with a 16k/64k granule: one error, those combinations left out.
        let (c, e) = Config::parse("granule=4k,16k mapping=4k,2m", Arch::Aarch64, KNOWN);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].message.contains("mapping=2m with granule=16k")
                && e[0].message.contains("accepted with it: mapping=4k"),
            "{}",
            e[0].message
        );
        let v: Vec<(Granule, MapSize)> = c.variants().iter().map(|v| (v.granule, v.size)).collect();
        assert_eq!(
            v,
            [
                (Granule::K4, MapSize::Page4k),
                (Granule::K4, MapSize::Block2m),
                (Granule::K16, MapSize::Page4k)
            ]
        );
        let (c, e) = Config::parse("granule=8k,16k", Arch::Aarch64, KNOWN);
        assert_eq!(e.len(), 1);
        assert!(
            e[0].message.contains("8k is not accepted") && e[0].message.contains("4k, 16k, 64k"),
            "{}",
            e[0].message
        );
        assert!(c.granule.is_empty(), "a bad list keeps the default");
        let (c, e) = Config::parse("granule=16k", Arch::X86_64, KNOWN);
        assert!(
            e[0].message.contains("one base page size"),
            "{}",
            e[0].message
        );
        assert!(c.granule.is_empty());
        let (c, e) = Config::parse("mapping=2m mtrr=uc,wc", Arch::X86_64, KNOWN);
        assert!(e.is_empty(), "{e:?}");
        let v = c.variants();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].mtrr, Some(MemType::Wc));
        assert_eq!(v[1].size, MapSize::Block2m);
        // Bad values: one error each, naming the value and what is accepted; defaults stay.
        for (arg, arch, want) in [
            ("mapping=8m", Arch::Aarch64, "4k, 2m, 1g"),
            ("share=outer,system", Arch::Aarch64, "inner, outer, non"),
            ("caches=maybe", Arch::X86_64, "on, off"),
            ("mtrr=uc-", Arch::X86_64, "uc, wc, wt, wp, wb"),
            ("mtrr=uc", Arch::Aarch64, "x86 only"),
            ("share=non", Arch::X86_64, "shareability"),
        ] {
            let (c, e) = Config::parse(arg, arch, KNOWN);
            assert_eq!(e.len(), 1, "{arg}");
            assert!(e[0].message.contains(arg), "{}", e[0].message);
            assert!(e[0].message.contains(want), "{}", e[0].message);
            assert_eq!(c, Config::defaults(arch), "{arg}");
        }
    }

    #[test]
    fn count_suffixes_and_bounds() {
        assert_eq!(parse_count("2M", 1, MAX_ITERS), Some(2_000_000));
        assert_eq!(parse_count("0", 1, 10), None);
        assert_eq!(parse_count("11", 1, 10), None);
        assert_eq!(parse_count("99999999999999999999k", 1, u64::MAX), None);
    }

    #[test]
    fn glob_matches() {
        assert!(glob("*", ""));
        assert!(glob("SB*", "SB+dmb.sys"));
        assert!(glob("S?", "SB"));
        assert!(!glob("SB", "SB+dmb.sys"));
        assert!(glob("*dmb*", "MP+dmb.sy+po"));
        assert!(!glob("*dmb.st*", "MP+dmb.sy+po"));
        assert!(selector_matches("litmus/MP*", "litmus", "MP+dmb.sys"));
        assert!(!selector_matches("tear/MP*", "litmus", "MP+dmb.sys"));
    }
}
