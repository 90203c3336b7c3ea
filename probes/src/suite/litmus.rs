//! Family `litmus`: every litmus test compiled into this build ([`crate::litmus::file`]) on
//! every selected attribute, judged by the kinds line the generator matched.
//!
//! The tests are `.litmus` files, translated at build time by one generator
//! (`atomprobe-litmus`, ARCHITECTURE.md "Litmus files"): by default the built-in suite of
//! `probes/litmus/<arch>/` (catalogue verdicts, or the derived ones of `kinds-derived.txt`); in
//! an image built by `atomprobe litmus FILES` (or `image --litmus`) those files instead, judged
//! by the catalogue or `--kinds`, else `unknown`.
//!
//! Iterations per test: `iters × ITERS_SCALE`. Threads are placed over all usable cores; the
//! runner rotates the role-to-core mapping across tests and chunks
//! ([`crate::litmus::file::run`]). A test is skipped (a `litmus` record with `verdict` `skipped`
//! and `reason`) when the attribute has no arena here, when it needs more cores than there are,
//! or when the core lacks a feature its instructions need (LSE, LDAPR).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::litmus::engine::RunOpts;
use crate::litmus::file::{self, run as frun, FileTest};
use crate::platform::Platform;
use crate::record::{Record, Verdict};

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

/// The test names of this architecture compiled into this build, in run order.
pub fn names() -> Vec<String> {
    match crate::attr::Arch::current() {
        Some(arch) => file::FILE_TESTS
            .iter()
            .filter(|t| t.arch == arch)
            .map(|t| t.name.to_string())
            .collect(),
        None => Vec::new(),
    }
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
    opts.skew = cfg.litmus_debug == Some(crate::config::LitmusDebug::Skew);
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
                    debug_lines(platform, t.name, attr.name(), &out);
                    let mut rec = frun::record(t, &prepared, attr.name(), &cpus, &out);
                    weakly_ordered_memory(&mut rec, &prepared);
                    note_violation(platform, &mut rec);
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

/// `litmus-debug=skew`: the stagger the run settled on with every stagger's relaxed share, and
/// how far apart the roles ran (`engine::Skew::lines`), as progress lines.
pub fn debug_lines(platform: &dyn Platform, name: &str, attr: &str, out: &frun::FileOutcome) {
    let Some(skew) = &out.skew else {
        return;
    };
    if let Some((best, scores)) = &out.stagger {
        platform.progress(&alloc::format!(
            "litmus-debug=skew {name} {attr}: stagger {best}; relaxed per million by stagger \
             {:?}: {scores:?}",
            crate::litmus::engine::STAGGERS
        ));
    }
    for line in skew.lines() {
        platform.progress(&alloc::format!("litmus-debug=skew {name} {attr}: {line}"));
    }
    if let Some(([b, c], mode)) = out.trials {
        platform.progress(&alloc::format!(
            "litmus-debug=skew {name} {attr}: trials: Barrier {} relaxed, {} off the most \
             common outcome in {} us; BarrierClock {} relaxed, {} off it in {} us; the rest \
             ran in {mode:?}",
            b.relaxed,
            b.off_mode,
            b.ns / 1000,
            c.relaxed,
            c.off_mode,
            c.ns / 1000
        ));
    }
}

/// The model verdicts (herd7's `x86tso.cat`, x86-TSO) describe write-back memory; x86
/// write-combining memory is weakly ordered (Intel SDM Vol. 3A 12.3 "Methods of Caching
/// Available": WC writes may be combined and delayed, reads are speculative), so on `wc` no
/// outcome is forbidden and none is judged a violation: the record says `allowed` and why.
fn weakly_ordered_memory(rec: &mut crate::record::Litmus, p: &file::Prepared) {
    use crate::record::ModelVerdict;
    if rec.attr != "wc" || rec.model != ModelVerdict::Forbidden {
        return;
    }
    rec.model = ModelVerdict::Allowed;
    rec.rule = format!(
        "Intel SDM Vol. 3A 12.3: WC memory is weakly ordered, so x86-TSO's guarantees do not \
         apply (forbidden on WB memory: {})",
        rec.rule
    );
    (rec.verdict, rec.reason) =
        file::judge(p.file.cond.quant, rec.model, rec.observed, rec.iterations);
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
