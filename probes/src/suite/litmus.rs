//! Family `litmus`: every litmus test of the architecture ([`crate::litmus`]) on every selected
//! attribute, judged against the architecture's model.
//!
//! Iterations per test: `iters × ITERS_SCALE`. Threads are placed over all usable cores; the
//! runner rotates the role-to-core mapping and the variable layout across chunks
//! ([`crate::litmus::engine`]). A test is skipped (a `litmus` record with `verdict` `skipped` and
//! `reason`) when the attribute has no arena here, when it needs more cores than there are, or
//! when the core lacks a feature it needs (LDAPR).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::config::LitmusDebug;
use crate::litmus::engine::{self, RunFailure, RunOpts};
use crate::litmus::{self, Test};
use crate::platform::Platform;
use crate::record::{Litmus, Record, Verdict};

/// Instances per test for each unit of `iters=` (default 10,000 → 200,000 instances).
pub const ITERS_SCALE: u64 = 20;

/// Litmus tests whose forbidden outcome an emulator is known to produce, with the explanation
/// a `violation` record of that test carries in `reason`. The verdict stays `violation`: the
/// machine the image ran on did break the model; the note says where to look. On hardware the
/// same record would be a real violation (or a core erratum).
///
/// `SB+dmb.sy+rel-acq`: Arm ARM B2.3.7 ("Barrier-ordered-before": a Store-Release is ordered
/// before a later Load-Acquire of the same observer; herd7 `aarch64.cat` forbids the outcome).
/// QEMU's TCG emits the Store-Release's barrier before the store and the Load-Acquire's barrier
/// after the load (`trans_STLR` / `trans_LDAR` in `target/arm/tcg/translate-a64.c`), so nothing
/// separates an STLR from a later LDAR; an x86-64 host (TSO) lets the store wait in its store
/// buffer while the load runs. Measured: observed with multi-threaded TCG, never with
/// `-accel tcg,thread=single` (docs/probes.md, "Known QEMU deviations").
pub const KNOWN_EMULATOR_DEVIATIONS: &[(&str, &str)] = &[(
    "SB+dmb.sy+rel-acq",
    "known QEMU TCG deviation: QEMU emits no barrier between an STLR and a later LDAR \
     (target/arm/tcg/translate-a64.c), so on an x86-64 host the store can pass the load; not \
     seen with -accel tcg,thread=single; on hardware this would be a real violation",
)];

/// The test names of this architecture, in run order.
pub fn names() -> Vec<String> {
    match crate::attr::Arch::current() {
        Some(arch) => litmus::tests(arch)
            .iter()
            .map(|t| t.name.to_string())
            .collect(),
        None => Vec::new(),
    }
}

fn skipped(test: &Test, attr: &str, reason: String) -> Record {
    Record::Litmus(Litmus {
        name: test.name.into(),
        attr: attr.into(),
        cpus: Vec::new(),
        iterations: 0,
        histogram: Vec::new(),
        condition: test.condition(),
        observed: 0,
        model: test.model,
        verdict: Verdict::Skipped,
        elapsed_ms: 0,
        iter_per_s: 0,
        relaxed_per_s: 0,
        rule: test.source.cite(),
        reason: Some(reason),
        map: Default::default(),
    })
}

pub fn run(platform: &dyn Platform) {
    if super::litmus_files::present() {
        // An image built for `atomprobe litmus FILES` runs those tests instead.
        return super::litmus_files::run(platform);
    }
    let Some(arch) = crate::attr::Arch::current() else {
        return;
    };
    let cfg = platform.config();
    let tests: Vec<&Test> = litmus::tests(arch)
        .iter()
        .filter(|t| cfg.selects("litmus", t.name))
        .collect();
    let ncpus = platform.cpu_count();
    let cpus: Vec<usize> = (0..ncpus).collect();
    let mut opts = RunOpts::for_platform(platform, cfg.iters.saturating_mul(ITERS_SCALE));
    opts.skew = cfg.litmus_debug == Some(LitmusDebug::Skew);
    for attr in cfg.mem_attrs() {
        let arena = match platform.arena(attr) {
            Ok(a) => a,
            Err(reason) => {
                for t in &tests {
                    platform.emit(&skipped(t, attr.name(), reason.clone()));
                }
                continue;
            }
        };
        for (n, t) in tests.iter().enumerate() {
            // Vary the cores from test to test (and within a test, across placements).
            opts.rotate = n;
            if let Err(why) = litmus::runnable(t) {
                platform.emit(&skipped(t, attr.name(), why.into()));
                continue;
            }
            if t.thread_count() > ncpus {
                platform.emit(&skipped(
                    t,
                    attr.name(),
                    format!(
                        "needs {} cores (one per thread), {ncpus} usable",
                        t.thread_count()
                    ),
                ));
                continue;
            }
            match engine::run(platform, t, &arena, &cpus, &opts) {
                Ok(out) => {
                    if let (Some(_), Some((best, scores))) = (&out.skew, &out.stagger) {
                        platform.progress(&format!(
                            "litmus-debug=skew {} {}: stagger {best}; relaxed per million by \
                             stagger {:?}: {scores:?}",
                            t.name,
                            attr.name(),
                            engine::STAGGERS
                        ));
                    }
                    if let Some(skew) = &out.skew {
                        for line in skew.lines() {
                            platform.progress(&format!(
                                "litmus-debug=skew {} {}: {line}",
                                t.name,
                                attr.name()
                            ));
                        }
                    }
                    let mut rec = engine::record(t, attr.name(), &cpus, &out);
                    super::litmus::note_violation(platform, &mut rec);
                    platform.emit(&Record::Litmus(rec));
                }
                Err(RunFailure::Harness(e)) => {
                    super::error(platform, "probe", format!("litmus harness error: {}", e.0));
                }
                Err(RunFailure::Platform(e)) | Err(RunFailure::Setup(e)) => {
                    platform.emit(&skipped(t, attr.name(), e));
                }
            }
        }
    }
}

/// A `violation` record: give it the known-emulator-deviation reason when its test is in
/// [`KNOWN_EMULATOR_DEVIATIONS`], and say on the console that a forbidden outcome was seen.
pub(super) fn note_violation(platform: &dyn Platform, rec: &mut crate::record::Litmus) {
    if rec.verdict != Verdict::Violation {
        return;
    }
    // A reason the judge gave (e.g. the outcome outside herd7's `--states`) stays unless the
    // deviation is a known one.
    if let Some((_, why)) = KNOWN_EMULATOR_DEVIATIONS
        .iter()
        .find(|(name, _)| *name == rec.name)
    {
        rec.reason = Some((*why).into());
    }
    platform.progress(&format!(
        "litmus {} on {}: forbidden outcome observed {} times",
        rec.name, rec.attr, rec.observed
    ));
}
