//! The probe suite: every family, written once against [`Platform`].

pub mod cost;
pub mod excl;
pub mod fault;
pub mod litmus;
pub mod tear;

use alloc::string::String;
use alloc::vec::Vec;

use crate::config::Config;
use crate::platform::Platform;
use crate::record::{ErrorRec, Record};

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

/// Run every selected probe; records go out through `platform.emit`.
pub fn run(platform: &dyn Platform) {
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
