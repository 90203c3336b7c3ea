//! Litmus runner throughput, hosted: iterations/s and relaxed outcomes/s for SB, MP and LB
//! (issue 4 item 4, issue 5's comparison with litmus7).
//!
//! `cargo bench -p atomprobe-probes --features std --bench litmus`
//! Environment: `LITMUS_BENCH_ITERS` (instances per test, default 20,000,000),
//! `LITMUS_BENCH_SYNC=barrier|start|clock` (see `engine::SyncMode`; default the runner's),
//! `LITMUS_BENCH_BATCH` (most instances per batch barrier, default the runner's),
//! `LITMUS_BENCH_PLACEMENTS` (`run_on` calls per test, default the runner's),
//! `LITMUS_BENCH_TESTS` (comma list of names, default `SB,MP,LB`).

use probes::attr::Arch;
use probes::config::Config;
use probes::hosted::{normal_attr, HostedPlatform};
use probes::litmus::{self, engine};
use probes::platform::Platform;

fn env_num(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn main() {
    let arch = Arch::current().expect("a probed architecture");
    let p = HostedPlatform::new(Config::defaults(arch), "", Box::new(std::io::sink()));
    let arena = p.arena(normal_attr(arch)).expect("normal memory arena");
    let mut opts = engine::RunOpts::new(env_num("LITMUS_BENCH_ITERS").unwrap_or(20_000_000));
    if let Some(b) = env_num("LITMUS_BENCH_BATCH") {
        opts.batch = b as usize;
    }
    match std::env::var("LITMUS_BENCH_SYNC").as_deref() {
        Ok("barrier") => opts.sync = engine::SyncMode::Barrier,
        Ok("start") => opts.sync = engine::SyncMode::BarrierStart,
        Ok("clock") => opts.sync = engine::SyncMode::BarrierClock,
        _ => {}
    }
    if let Some(c) = env_num("LITMUS_BENCH_PLACEMENTS") {
        opts.placements = c as usize;
    }
    // A benchmark runs every instance it was asked for.
    opts.budget_ms = 0;
    let names = std::env::var("LITMUS_BENCH_TESTS").unwrap_or_else(|_| "SB,MP,LB".into());
    let cpus: Vec<usize> = (0..p.cpu_count()).collect();
    println!(
        "hosted {} on {} cpus, sync {:?}, batch {}, placements {}",
        arch.name(),
        cpus.len(),
        opts.sync,
        opts.batch,
        opts.placements
    );
    for name in names.split(',') {
        let Some(test) = litmus::tests(arch).iter().find(|t| t.name == name) else {
            println!("{name}: no such test");
            continue;
        };
        if test.thread_count() > cpus.len() {
            println!("{name}: needs {} cpus", test.thread_count());
            continue;
        }
        match engine::run(&p, test, &arena, &cpus, &opts) {
            Ok(out) => println!(
                "{:<12} {:>12} iterations/s {:>12} relaxed/s  ({} iterations, {} relaxed, {} ms, model {:?})",
                test.name,
                out.iter_per_s(),
                out.relaxed_per_s(),
                out.iterations,
                out.observed,
                out.elapsed_ns / 1_000_000,
                test.model
            ),
            Err(e) => println!("{name}: {e:?}"),
        }
    }
}
