//! The probe suite: every family, written once against [`Platform`].

pub mod cost;
pub mod excl;
pub mod fault;
pub mod litmus;
pub mod tear;

use alloc::string::String;
use alloc::vec::Vec;

use crate::config::Config;
use crate::mapping::{Share, Variant};
use crate::platform::{Platform, RuleEnv};
use crate::record::{ErrorRec, MapFields, Probe, ProbeResult, Record, Verdict};
use crate::rules::{Expectation, FaultExpect};

/// Every `(family, name)` the suite can run on this architecture, in run order.
pub fn catalogue() -> Vec<(&'static str, String)> {
    let mut all = Vec::new();
    all.extend(fault::names().into_iter().map(|n| ("fault", n)));
    all.extend(tear::names().into_iter().map(|n| ("tear", n)));
    all.extend(excl::names().into_iter().map(|n| ("excl", n)));
    all.extend(litmus::names().into_iter().map(|n| ("litmus", n)));
    all.extend(cost::names().into_iter().map(|n| ("cost", n)));
    all
}

/// Run every selected probe, once per mapping combination (`Config::variants`); records go out
/// through `platform.emit`, each carrying its combination.
pub fn run(platform: &dyn Platform) {
    let variants = platform.config().variants();
    let many = variants.len() > 1;
    for v in &variants {
        if many {
            platform.progress(&alloc::format!("== {}", v.label()));
        }
        let unavailable = platform.set_variant(v).err();
        if let Some(why) = &unavailable {
            error(
                platform,
                "mapping",
                alloc::format!("{}: {why}; the probes under it are skipped", v.label()),
            );
        }
        let mut env = platform.env();
        env.map = *v;
        // Shareability is a Normal-memory attribute: Device memory is Outer Shareable whatever
        // SH says (Arm ARM D8.6.2), so a `share=` other than inner runs the Normal types only.
        let mut cfg = platform.config().clone();
        if v.share != Share::Inner {
            cfg.attrs
                .retain(|a| crate::attr::MemAttr::from_name(a).is_some_and(|a| !a.is_arm_device()));
            if cfg.attrs.is_empty() {
                continue;
            }
        }
        let mapped = Mapped {
            inner: platform,
            cfg,
            v: *v,
            env,
            unavailable,
        };
        run_families(&mapped);
    }
    if variants.last().is_some_and(|v| !v.is_default()) {
        if let Err(why) = platform.set_variant(&Variant::DEFAULT) {
            error(
                platform,
                "mapping",
                alloc::format!("could not return to the default mapping: {why}"),
            );
        }
    }
}

/// A platform seen through one mapping combination: its arenas are the combination's aliases,
/// its rule environment names the combination, and every probe and litmus record it emits
/// carries the combination's fields (`record::MapFields`).
struct Mapped<'a> {
    inner: &'a dyn Platform,
    /// The configuration with the attributes this combination runs.
    cfg: Config,
    v: Variant,
    env: RuleEnv,
    /// Why `set_variant` refused the combination: every arena request gets this reason.
    unavailable: Option<String>,
}

impl Mapped<'_> {
    fn stamp(&self, attr: &str, map: &mut MapFields) {
        map.mapping = self.v.size.name().into();
        let a = crate::attr::MemAttr::from_name(attr);
        // Shareability applies to Normal memory only (Device is Outer Shareable, D8.6.2).
        if self.env.arch == crate::attr::Arch::Aarch64
            && self.v.share != Share::Inner
            && a.is_some_and(|a| !a.is_arm_device())
        {
            map.share = Some(self.v.share.name().into());
        }
        if !self.v.caches {
            map.caches = Some("off".into());
        }
        map.mtrr = self.v.mtrr.map(|t| t.name().into());
        if self.v.granule != crate::mapping::Granule::K4 {
            map.granule = Some(self.v.granule.name().into());
        }
        map.effective = a.and_then(|a| self.inner.effective_type(a, &self.v));
    }
}

impl Platform for Mapped<'_> {
    fn env(&self) -> RuleEnv {
        self.env
    }
    fn config(&self) -> &Config {
        &self.cfg
    }
    fn cpu_count(&self) -> usize {
        self.inner.cpu_count()
    }
    fn now_ns(&self) -> u64 {
        self.inner.now_ns()
    }
    fn cycles(&self) -> Option<u64> {
        self.inner.cycles()
    }
    fn arena(&self, attr: crate::attr::MemAttr) -> Result<crate::platform::Arena, String> {
        match &self.unavailable {
            Some(why) => Err(alloc::format!("{}: {why}", self.v.label())),
            None => self.inner.arena_mapped(attr, &self.v),
        }
    }
    fn arena_mapped(
        &self,
        attr: crate::attr::MemAttr,
        v: &Variant,
    ) -> Result<crate::platform::Arena, String> {
        self.inner.arena_mapped(attr, v)
    }
    fn set_variant(&self, v: &Variant) -> Result<(), String> {
        self.inner.set_variant(v)
    }
    fn effective_type(&self, attr: crate::attr::MemAttr, v: &Variant) -> Option<String> {
        self.inner.effective_type(attr, v)
    }
    fn arena_window(
        &self,
        attr: crate::attr::MemAttr,
        _v: &Variant,
    ) -> Result<(*const u8, usize), String> {
        match &self.unavailable {
            Some(why) => Err(alloc::format!("{}: {why}", self.v.label())),
            None => self.inner.arena_window(attr, &self.v),
        }
    }
    fn guarded(&self, op: &mut dyn FnMut()) -> Option<crate::fault::RawFault> {
        self.inner.guarded(op)
    }
    fn catches_faults(&self) -> bool {
        self.inner.catches_faults()
    }
    fn run_on(
        &self,
        cpus: &[usize],
        timeout_ms: u64,
        body: &(dyn Fn(usize) + Sync),
    ) -> Result<(), crate::platform::RunError> {
        self.inner.run_on(cpus, timeout_ms, body)
    }
    fn emit(&self, rec: &Record) {
        let mut rec = rec.clone();
        match &mut rec {
            Record::Probe(p) => self.stamp(&p.attr.clone(), &mut p.map),
            Record::Litmus(l) => self.stamp(&l.attr.clone(), &mut l.map),
            _ => {}
        }
        self.inner.emit(&rec)
    }
    fn progress(&self, msg: &str) {
        self.inner.progress(msg)
    }
}

/// Run every selected family once, on `platform`.
fn run_families(platform: &dyn Platform) {
    let cfg: &Config = platform.config();
    let selected = |family: &str| {
        catalogue()
            .iter()
            .any(|(f, n)| *f == family && cfg.selects(f, n))
    };
    if selected("fault") {
        fault::run(platform);
    }
    if selected("tear") {
        tear::run(platform);
    }
    if selected("excl") {
        excl::run(platform);
    }
    if selected("litmus") {
        litmus::run(platform);
    }
    if selected("cost") {
        cost::run(platform);
    }
}

/// Emit an `error` record.
pub fn error(platform: &dyn Platform, what: &str, message: String) {
    platform.emit(&Record::Error(ErrorRec {
        what: what.into(),
        message,
    }));
}

/// Whether an access judged by `exp` may fault: its rule requires a fault (`Fault(_)`) or admits
/// one (`Either`: IMPLEMENTATION DEFINED, processor-dependent).
pub fn may_fault(exp: &Expectation) -> bool {
    exp.expect != FaultExpect::NoFault
}

/// The OS a skip reason names (`Platform::catches_faults` is false only on a hosted OS without
/// a fault guard).
const OS: &str = if cfg!(target_os = "macos") {
    "macOS"
} else if cfg!(windows) {
    "Windows"
} else if cfg!(target_os = "linux") {
    "Linux"
} else if cfg!(target_os = "none") {
    "bare metal"
} else {
    "this OS"
};

/// The one check every family makes before a probe's guarded accesses: when `platform` cannot
/// catch a fault ([`Platform::catches_faults`]) and one of the accesses may fault by its rule
/// (`accesses`: `(what, expectation)`, `what` naming the access in the reason when a probe makes
/// several, e.g. `load`/`store`, else empty), running the probe could end the process. Then the
/// probe is not run: `rec` becomes a `skipped` record whose `reason` says why in words, with the
/// fault rule in `expected` and `rule`, and the function returns `true`. Otherwise `rec` is
/// untouched and the probe runs (accesses that must not fault run everywhere).
pub fn unguarded_skip(
    platform: &dyn Platform,
    rec: &mut Probe,
    accesses: &[(&str, &Expectation)],
) -> bool {
    if platform.catches_faults() {
        return false;
    }
    // The accesses that may fault, each named once (a probe's two half-width stores usually
    // share one rule).
    let mut faulting: Vec<&(&str, &Expectation)> = Vec::new();
    for a in accesses.iter().filter(|(_, e)| may_fault(e)) {
        if !faulting.iter().any(|f| f.0 == a.0 && f.1 == a.1) {
            faulting.push(a);
        }
    }
    if faulting.is_empty() {
        return false;
    }
    let what = |w: &str| {
        if w.is_empty() {
            String::new()
        } else {
            alloc::format!("{w}: ")
        }
    };
    let says = faulting
        .iter()
        .map(|(w, e)| alloc::format!("{}{} ({})", what(w), e.rule, e.text))
        .collect::<Vec<_>>()
        .join("; ");
    rec.reason = Some(alloc::format!(
        "not run: this platform cannot catch a fault (no fault guard on {OS}), and {says} says \
         this access may fault"
    ));
    rec.expected = faulting
        .iter()
        .map(|(w, e)| alloc::format!("{}{}", what(w), e.text))
        .collect::<Vec<_>>()
        .join("; ");
    let mut rules: Vec<&str> = Vec::new();
    for (_, e) in &faulting {
        if !rules.contains(&e.rule) {
            rules.push(e.rule);
        }
    }
    rec.rule = rules.join("; ");
    rec.result = ProbeResult::Skipped;
    rec.verdict = Verdict::Skipped;
    rec.iterations = 0;
    rec.cpus.clear();
    rec.fault = None;
    true
}

/// One word per role of a `run_on` body, each written only by its role (plain stores) and
/// combined by the caller after `run_on` returned.
///
/// The families keep their bookkeeping here instead of in shared read-modify-write atomics:
/// on Armv8.0 `fetch_add`/`swap` compile to LDXR/STXR loops, and with `mmu=off` every data
/// access is Device-nGnRnE (Arm ARM D8.2.10, "Behavior when stage 1 address translation is
/// disabled"), where whether exclusives work at all is IMPLEMENTATION DEFINED (Arm ARM B2.9.5):
/// on a real core the bookkeeping could spin for ever. Plain stores work on every memory type.
pub struct RoleSlots {
    slots: Vec<RoleSlot>,
}

/// A slot on a cache line of its own, so roles do not share lines.
#[repr(align(64))]
struct RoleSlot(core::sync::atomic::AtomicU64);

impl RoleSlots {
    pub fn new(roles: usize) -> RoleSlots {
        RoleSlots {
            slots: (0..roles)
                .map(|_| RoleSlot(core::sync::atomic::AtomicU64::new(0)))
                .collect(),
        }
    }

    /// Role `role` publishes `v` (release: what it wrote before is visible to whoever
    /// acquires the slot).
    pub fn set(&self, role: usize, v: u64) {
        self.slots[role]
            .0
            .store(v, core::sync::atomic::Ordering::Release);
    }

    pub fn get(&self, role: usize) -> u64 {
        self.slots[role]
            .0
            .load(core::sync::atomic::Ordering::Acquire)
    }

    pub fn sum(&self) -> u64 {
        (0..self.slots.len()).map(|r| self.get(r)).sum()
    }

    /// Roles among `roles` whose slot is not zero.
    pub fn nonzero(&self, roles: core::ops::Range<usize>) -> usize {
        roles.filter(|&r| self.get(r) != 0).count()
    }
}
