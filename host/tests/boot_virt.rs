//! Boot the image on QEMU `virt` (aarch64) and check its report.

mod common;

use atomprobe::Board;
use common::{boot, Outcome};

/// begin (aarch64, qemu-virt, EL1), fault records with misaligned exclusives faulting with an
/// alignment fault, and a verified, complete end.
fn check_default_run(o: &Outcome) {
    let b = o.begin();
    o.check(b.arch == "aarch64", &format!("begin.arch = {}", b.arch));
    o.check(
        b.board == "qemu-virt",
        &format!("begin.board = {}", b.board),
    );
    o.check(b.el == Some(1), &format!("begin.el = {:?}, want 1", b.el));

    // -smp 4: every core came up (PSCI CPU_ON; HVC at EL1 entry, SMC at EL2 entry).
    common::check_cpus_online(o, 4);
    common::check_aarch64_faults(o);
    o.assert_complete();
}

#[test]
fn virt_default_run() {
    let Some(o) = boot(Board::Virt, |_| {}) else {
        return;
    };
    check_default_run(&o);
}

#[test]
fn virt_el2_entry_run() {
    // Same checks as the default run; only the fault family runs, to bound the test's time (the
    // cores still come up, which is what EL2 entry changes: PSCI through SMC, the EL2 -> EL1 drop).
    let Some(o) = boot(Board::Virt, |opts| {
        opts.virtualization = true;
        opts.append = Some("probes=fault".into());
    }) else {
        return;
    };
    o.check(
        o.0.command.iter().any(|a| a == "virt,virtualization=on"),
        "the run did not ask QEMU for EL2 entry",
    );
    check_default_run(&o);
}

#[test]
fn virt_bad_boot_args_are_reported_and_run_completes() {
    let Some(o) = boot(Board::Virt, |opts| {
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
    for (needle, e) in ["nonsense", "-3", "foo"].iter().zip(&errs) {
        o.check(
            e.message.contains(needle),
            &format!("bootarg error {:?} does not name '{needle}'", e.message),
        );
    }
    o.check(
        o.begin().cmdline.contains("probes=nonsense"),
        "begin.cmdline does not carry the boot arguments",
    );
    o.assert_complete();
}

#[test]
fn virt_selftest_fault_aborts() {
    let Some(o) = boot(Board::Virt, |opts| {
        opts.append = Some("selftest=fault".into())
    }) else {
        return;
    };
    o.assert_aborted();
}
