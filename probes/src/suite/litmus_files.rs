//! Family `litmus` when the image was built with generated tests (`atomprobe litmus FILES`,
//! [`crate::litmus::file`]): those tests instead of the built-in tables, on every selected
//! attribute, judged by the kinds line the generator matched (or `unknown`).

use alloc::format;
use alloc::vec::Vec;

use crate::litmus::engine::RunOpts;
use crate::litmus::file::{self, run as frun, FileTest};
use crate::platform::Platform;
use crate::record::Record;

use super::litmus::ITERS_SCALE;

/// Whether the image holds generated tests.
pub fn present() -> bool {
    !file::FILE_TESTS.is_empty()
}

pub fn run(platform: &dyn Platform) {
    let Some(arch) = crate::attr::Arch::current() else {
        return;
    };
    let cfg = platform.config();
    let tests: Vec<&FileTest> = file::FILE_TESTS
        .iter()
        .filter(|t| t.arch == arch && cfg.selects("litmus", t.name))
        .collect();
    let ncpus = platform.cpu_count();
    let cpus: Vec<usize> = (0..ncpus).collect();
    let mut opts = RunOpts::for_platform(platform, cfg.iters.saturating_mul(ITERS_SCALE));
    let feat = super::tear::features(&platform.env());
    for attr in cfg.mem_attrs() {
        let arena = platform.arena(attr);
        for (n, t) in tests.iter().enumerate() {
            opts.rotate = n;
            let prepared = match file::prepare(t) {
                Ok(p) => p,
                Err(why) => {
                    platform.emit(&Record::Litmus(frun::skipped(
                        t,
                        "".into(),
                        attr.name(),
                        format!("cannot prepare the test: {why}"),
                    )));
                    continue;
                }
            };
            if let Some(why) = t.needs.iter().find_map(|f| feat.missing(*f)) {
                platform.emit(&Record::Litmus(frun::skipped(
                    t,
                    prepared.condition(),
                    attr.name(),
                    why,
                )));
                continue;
            }
            let arena = match &arena {
                Ok(a) => a,
                Err(reason) => {
                    platform.emit(&Record::Litmus(frun::skipped(
                        t,
                        prepared.condition(),
                        attr.name(),
                        reason.clone(),
                    )));
                    continue;
                }
            };
            match frun::run(platform, t, &prepared, arena, &cpus, &opts) {
                Ok(out) => {
                    let mut rec = frun::record(t, &prepared, attr.name(), &cpus, &out);
                    super::litmus::note_violation(platform, &mut rec);
                    platform.emit(&Record::Litmus(rec));
                }
                Err(why) => {
                    platform.emit(&Record::Litmus(frun::skipped(
                        t,
                        prepared.condition(),
                        attr.name(),
                        why,
                    )));
                }
            }
        }
    }
}
