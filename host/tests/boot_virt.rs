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
    common::check_suite(&o);
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

#[test]
fn virt_eight_cores_mmu_off_every_misaligned_access_faults() {
    // Issue 3: `--smp 8` brings 8 cores up; with `mmu=off` every data access is Device-nGnRnE
    // (Arm ARM D8.2.11), so every misaligned access faults, on every core the family uses.
    let Some(o) = boot(Board::Virt, |opts| {
        opts.smp = Some(8);
        opts.append = Some("mmu=off probes=fault".into());
    }) else {
        return;
    };
    common::check_cpus_online(&o, 8);
    o.check(!o.begin().config.mmu, "begin.config.mmu is not false");
    let faults = o.probes("fault");
    let misaligned: Vec<_> = faults
        .iter()
        .filter(|p| p.result != probes::record::ProbeResult::Skipped && common::misaligned(p))
        .collect();
    o.check(!misaligned.is_empty(), "no misaligned fault probe ran");
    let mut cores = std::collections::BTreeSet::new();
    for p in &misaligned {
        cores.extend(p.cpus.iter().copied());
        o.check(
            p.attr == "device-ngnrne",
            &format!("{} reports attr {} with the MMU off", p.name, p.attr),
        );
        o.check(
            p.fault.as_ref().is_some_and(|f| f.kind == "alignment"),
            &format!(
                "misaligned {} on core {:?} did not take an alignment fault",
                p.name, p.cpus
            ),
        );
    }
    o.check(
        cores.len() >= 2,
        &format!("misaligned probes ran only on cores {cores:?}"),
    );
    o.assert_complete();
}

#[test]
fn virt_fault_family_per_attribute() {
    // Issue 3: a misaligned LDXR faults (alignment) under every attribute, and each record
    // states its expectation and verdict.
    let attrs = ["normal-wb", "normal-nc", "device-ngnrne"];
    let Some(o) = boot(Board::Virt, |opts| {
        opts.append = Some(format!("attrs={} probes=fault", attrs.join(",")));
    }) else {
        return;
    };
    let faults = o.probes("fault");
    for attr in attrs {
        let ldxr: Vec<_> = faults
            .iter()
            .filter(|p| p.attr == attr && p.op == "ldxr" && common::misaligned(p))
            .collect();
        o.check(
            !ldxr.is_empty(),
            &format!("no misaligned ldxr record on {attr}"),
        );
        for p in ldxr {
            o.check(
                p.fault.as_ref().is_some_and(|f| f.kind == "alignment"),
                &format!(
                    "misaligned ldxr {} on {attr} did not fault (alignment)",
                    p.name
                ),
            );
        }
    }
    for p in &faults {
        o.check(
            !p.expected.is_empty() && !p.rule.is_empty(),
            &format!("{} on {} has no expectation or rule", p.name, p.attr),
        );
    }
    o.assert_complete();
}

#[test]
fn virt_nested_fault_stops() {
    common::check_nested_fault(
        Board::Virt,
        &["ESR_EL1 0x96000021", "ELR_EL1", "FAR_EL1"],
        |_| {},
    );
}

/// Loaded away from its link address (text_offset 0x200000), also entered at EL2.
#[test]
fn virt_loaded_at_0x200000() {
    for el2 in [false, true] {
        let Some(o) = boot(Board::Virt, |opts| {
            opts.text_offset = Some(0x20_0000);
            opts.virtualization = el2;
            opts.append = Some("probes=fault".into());
        }) else {
            return;
        };
        let loaded = o.begin().platform.get("loaded_at").cloned();
        o.check(
            loaded.as_deref() == Some("0x40200000"),
            &format!("loaded_at = {loaded:?}, want 0x40200000"),
        );
        o.assert_complete();
    }
}
