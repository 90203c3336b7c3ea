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
