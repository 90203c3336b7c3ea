//! Litmus runner throughput, hosted: iterations/s and relaxed outcomes/s for SB, MP and LB
//! (issue 4 item 4, issue 5's comparison with litmus7), on the built-in tests
//! (`probes/litmus`, generated into `file::FILE_TESTS`) through the suite's runner
//! (`litmus::file::run`).
//!
//! `cargo bench -p atomprobe-probes --features std --bench litmus`
//! Environment:
//! - `LITMUS_BENCH_ITERS`: instances per run (default 20,000,000);
//! - `LITMUS_BENCH_SYNC`: comma list of `barrier`, `start`, `clock`, `handshake`, `lockstep` (see
//!   `engine::SyncMode`; default the runner's), passed in `RunOpts.sync`;
//! - `LITMUS_BENCH_LAYOUT`: comma list of `packed`, `same-line`, `line-per-var`, `rotate` (the
//!   runner's rotation through all three; default), passed in `RunOpts.layout`; the file
//!   runner reads neither option yet (the engine's modes are being moved into it), so until it
//!   does these only label the lines;
//! - `LITMUS_BENCH_BATCH`: comma list of most instances per batch (default the runner's);
//! - `LITMUS_BENCH_PLACEMENTS`: `run_on` calls per run (default the runner's);
//! - `LITMUS_BENCH_TESTS`: comma list of names (default `SB,MP,LB`);
//! - `LITMUS_BENCH_REPEAT`: rounds (default 1).
//!
//! Every combination runs once per round, interleaved (round 1 of every combination, then round
//! 2, …), so that A/B comparisons share the machine's load; with more than one round a summary
//! gives each combination's median.

use probes::attr::Arch;
use probes::config::Config;
use probes::hosted::{normal_attr, HostedPlatform};
use probes::litmus::engine::{LayoutKind, RunOpts, SyncMode};
use probes::litmus::file::{self, run as frun, FileTest, Prepared};
use probes::platform::Platform;

fn env_num(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn env_list(name: &str) -> Vec<String> {
    std::env::var(name)
        .map(|v| v.split(',').map(str::to_string).collect())
        .unwrap_or_default()
}

fn sync_mode(name: &str) -> Option<SyncMode> {
    Some(match name {
        "barrier" => SyncMode::Barrier,
        "start" => SyncMode::BarrierStart,
        "clock" => SyncMode::BarrierClock,
        "handshake" => SyncMode::Handshake,
        "lockstep" => SyncMode::Lockstep,
        _ => return None,
    })
}

fn layout(name: &str) -> Option<Option<LayoutKind>> {
    if name == "rotate" {
        return Some(None);
    }
    LayoutKind::ALL
        .into_iter()
        .find(|k| k.name() == name)
        .map(Some)
}

fn median(v: &mut [u64]) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn main() {
    let arch = Arch::current().expect("a probed architecture");
    let p = HostedPlatform::new(Config::defaults(arch), "", Box::new(std::io::sink()));
    let arena = p.arena(normal_attr(arch)).expect("normal memory arena");
    let base = RunOpts::new(env_num("LITMUS_BENCH_ITERS").unwrap_or(20_000_000));
    let syncs: Vec<SyncMode> = match env_list("LITMUS_BENCH_SYNC") {
        v if v.is_empty() => vec![base.sync],
        v => v
            .iter()
            .map(|s| sync_mode(s).unwrap_or_else(|| panic!("LITMUS_BENCH_SYNC: {s}?")))
            .collect(),
    };
    let layouts: Vec<Option<LayoutKind>> = match env_list("LITMUS_BENCH_LAYOUT") {
        v if v.is_empty() => vec![None],
        v => v
            .iter()
            .map(|s| layout(s).unwrap_or_else(|| panic!("LITMUS_BENCH_LAYOUT: {s}?")))
            .collect(),
    };
    let batches: Vec<usize> = match env_list("LITMUS_BENCH_BATCH") {
        v if v.is_empty() => vec![base.batch],
        v => v
            .iter()
            .map(|s| s.parse().expect("LITMUS_BENCH_BATCH"))
            .collect(),
    };
    let placements = env_num("LITMUS_BENCH_PLACEMENTS").map_or(base.placements, |c| c as usize);
    let repeat = env_num("LITMUS_BENCH_REPEAT").unwrap_or(1).max(1);
    let names = std::env::var("LITMUS_BENCH_TESTS").unwrap_or_else(|_| "SB,MP,LB".into());
    let cpus: Vec<usize> = (0..p.cpu_count()).collect();
    println!(
        "hosted {} on {} cpus, default sync {:?}, batch {}, placements {placements}",
        arch.name(),
        cpus.len(),
        base.sync,
        base.batch,
    );
    let mut combos = Vec::new();
    for name in names.split(',') {
        let Some(t) = file::FILE_TESTS
            .iter()
            .find(|t| t.arch == arch && t.name == name)
        else {
            println!("{name}: no such test");
            continue;
        };
        if t.bodies.len() > cpus.len() {
            println!("{name}: needs {} cpus", t.bodies.len());
            continue;
        }
        let prep = match file::prepare(t) {
            Ok(p) => p,
            Err(e) => {
                println!("{name}: {e}");
                continue;
            }
        };
        let test: &(&FileTest, Prepared) = Box::leak(Box::new((t, prep)));
        for &sync in &syncs {
            for &layout in &layouts {
                for &batch in &batches {
                    combos.push((test, sync, layout, batch));
                }
            }
        }
    }
    let label = |c: &(&(&FileTest, Prepared), SyncMode, Option<LayoutKind>, usize)| {
        format!(
            "{:<10} {:<12} {:<12} b{:<6}",
            c.0 .0.name,
            format!("{:?}", c.1),
            c.2.map_or("rotate", LayoutKind::name),
            c.3
        )
    };
    let mut results: Vec<(Vec<u64>, Vec<u64>)> = vec![(Vec::new(), Vec::new()); combos.len()];
    for round in 0..repeat {
        for (c, res) in combos.iter().zip(results.iter_mut()) {
            let mut opts = base;
            opts.sync = c.1;
            opts.layout = c.2;
            opts.batch = c.3;
            opts.placements = placements;
            opts.rotate = round as usize;
            // A benchmark runs every instance it was asked for.
            opts.budget_ms = 0;
            let (t, prep) = c.0;
            match frun::run(&p, t, prep, &arena, &cpus, &opts) {
                Ok(out) => {
                    // The suite's record: the same figures a report gives.
                    let rec = frun::record(t, prep, "bench", &cpus, &out);
                    println!(
                        "{} {:>10} it/s {:>9} relaxed/s ({:.3} %, {} ms, model {:?})",
                        label(c),
                        rec.iter_per_s,
                        rec.relaxed_per_s,
                        rec.observed as f64 * 100.0 / rec.iterations.max(1) as f64,
                        rec.elapsed_ms,
                        t.model
                    );
                    res.0.push(rec.iter_per_s);
                    res.1.push(rec.relaxed_per_s);
                }
                Err(e) => println!("{}: {e}", label(c)),
            }
        }
    }
    if repeat > 1 {
        println!("medians over {repeat} rounds:");
        for (c, res) in combos.iter().zip(results.iter_mut()) {
            if res.0.is_empty() {
                continue;
            }
            println!(
                "{} {:>10} it/s {:>9} relaxed/s",
                label(c),
                median(&mut res.0),
                median(&mut res.1)
            );
        }
    }
}
