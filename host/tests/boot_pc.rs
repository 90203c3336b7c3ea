//! Boot the image on QEMU `q35` (x86-64, PVH) and check its report.

mod common;

use atomprobe::Board;
use common::{boot, crosses_line, misaligned};
use probes::record::ProbeResult;

/// `lock cmpxchg` itself, not `lock cmpxchg8b`/`lock cmpxchg16b` (whose alignment rules differ).
fn is_lock_cmpxchg(op: &str) -> bool {
    op.contains("lock cmpxchg") && !op.contains("cmpxchg8b") && !op.contains("cmpxchg16b")
}

#[test]
fn pc_default_run() {
    // Issue 6: `--smp 4` shows 4 cores online and runs the default suite.
    let Some(o) = boot(Board::Pc, |opts| opts.smp = Some(4)) else {
        return;
    };
    common::check_cpus_online(&o, 4);
    common::check_suite(&o);
    let b = o.begin();
    o.check(b.arch == "x86_64", &format!("begin.arch = {}", b.arch));
    o.check(b.board == "qemu-pc", &format!("begin.board = {}", b.board));
    o.check(
        b.ring == Some(0),
        &format!("begin.ring = {:?}, want 0", b.ring),
    );
    // COM1 answered the UART crate's scratch-register test and runs at `capture`'s default rate.
    let console = b.platform.get("console").cloned().unwrap_or_default();
    o.check(
        console == "COM1 (I/O 0x3f8), 115200 8N1",
        &format!("begin.platform.console = {console}"),
    );

    let faults = o.probes("fault");
    o.check(!faults.is_empty(), "no probe records with family fault");

    // A LOCK CMPXCHG across a cache line is a split lock: it must execute (no fault at ring 0
    // without split-lock detection) and the record must say it was a split lock.
    let split: Vec<_> = faults
        .iter()
        .filter(|p| is_lock_cmpxchg(&p.op) && crosses_line(p) && p.result != ProbeResult::Skipped)
        .collect();
    o.check(
        !split.is_empty(),
        "no fault probe with op 'lock cmpxchg' across a cache line ran",
    );
    for p in &split {
        o.check(
            p.result != ProbeResult::Fault,
            &format!("{} on {} faulted: {:?}", p.name, p.attr, p.fault),
        );
        o.check(
            p.counts.keys().any(|k| k.contains("split")),
            &format!(
                "{} counts {:?} have no split-lock indicator",
                p.name, p.counts
            ),
        );
    }

    // CMPXCHG16B on an operand that is not 16-byte aligned raises #GP(0) at any CPL.
    for p in faults.iter().filter(|p| {
        p.op.contains("cmpxchg16b") && misaligned(p) && p.result != ProbeResult::Skipped
    }) {
        o.check(
            p.result == ProbeResult::Fault,
            &format!(
                "misaligned cmpxchg16b {} on {} did not fault",
                p.name, p.attr
            ),
        );
    }
    o.assert_complete();
}

#[test]
fn pc_bad_boot_args_are_reported_and_run_completes() {
    let Some(o) = boot(Board::Pc, |opts| {
        opts.append = Some("probes=nonsense iters=-3 foo".into())
    }) else {
        return;
    };
    let errs = o.errors("bootarg");
    o.check(
        errs.len() == 3,
        &format!(
            "want exactly 3 bootarg errors, got {}: {errs:?}",
            errs.len()
        ),
    );
    o.assert_complete();
}

#[test]
fn pc_selftest_fault_aborts() {
    let Some(o) = boot(Board::Pc, |opts| {
        opts.append = Some("selftest=fault".into())
    }) else {
        return;
    };
    o.assert_aborted();
}

#[test]
fn pc_one_and_two_cores() {
    // Issue 6: q35 with 1 and 2 cores (4 in pc_default_run): every core online, the run completes.
    for n in [1u32, 2] {
        let Some(o) = boot(Board::Pc, |opts| {
            opts.smp = Some(n);
            opts.append = Some("probes=fault,excl".into());
        }) else {
            return;
        };
        common::check_cpus_online(&o, n as usize);
        o.check(!o.probes("excl").is_empty(), "no excl records");
        o.assert_complete();
    }
}

#[test]
fn pc_nested_fault_stops() {
    common::check_nested_fault(
        Board::Pc,
        &["vector 14", "error code", "RIP", "CR2"],
        |_| {},
    );
}
