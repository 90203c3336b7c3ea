//! Mapping combinations (issue 13): `mapping=`, `share=`, `caches=`, `mtrr=` on QEMU virt and
//! pc. Every probe record carries its mapping, every misaligned access to Device memory faults
//! (or is marked a deviation) on every leaf size, and x86 records name the effective PAT × MTRR
//! type of Intel SDM Vol. 3A Table 13-7.

mod common;

use std::collections::BTreeSet;

use atomprobe::Board;
use common::{boot, crosses_line, misaligned, Outcome};
use probes::record::{ProbeResult, Record, Verdict};

/// Every probe and litmus record names its leaf size, one of `sizes`.
fn check_every_record_mapped(o: &Outcome, sizes: &[&str]) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for r in &o.0.report.records {
        let (what, map) = match r {
            Record::Probe(p) => (format!("{}/{} {}", p.family, p.name, p.attr), &p.map),
            Record::Litmus(l) => (format!("litmus/{} {}", l.name, l.attr), &l.map),
            _ => continue,
        };
        o.check(
            sizes.contains(&map.mapping.as_str()),
            &format!("{what}: mapping {:?} is not one of {sizes:?}", map.mapping),
        );
        seen.insert(map.mapping.clone());
    }
    seen
}

#[test]
fn virt_fault_tear_over_every_mapping_and_shareability() {
    let Some(o) = boot(Board::Virt, |opts| {
        opts.append = Some(
            "probes=fault,tear attrs=all mapping=4k,2m,1g share=inner,outer,non iters=20".into(),
        );
        opts.timeout *= 3;
    }) else {
        return;
    };
    o.assert_complete();
    let b = o.begin();
    o.check(
        b.config.mapping == ["4k", "2m", "1g"] && b.config.share == ["inner", "outer", "non"],
        &format!(
            "begin.config mapping/share = {:?}/{:?}",
            b.config.mapping, b.config.share
        ),
    );
    // Every alias (6 attributes + 6 other-shareability Normal ones, × 3 leaf sizes) confirmed by
    // walking the tables.
    let aliases = b.platform.get("arena_aliases").cloned().unwrap_or_default();
    let entries: Vec<&str> = aliases.split(',').collect();
    o.check(
        entries.len() == 36 && entries.iter().all(|e| e.ends_with(" ok")),
        &format!("begin.platform.arena_aliases: {aliases}"),
    );
    let seen = check_every_record_mapped(&o, &["4k", "2m", "1g"]);
    o.check(seen.len() == 3, &format!("leaf sizes seen: {seen:?}"));

    // Alignment faults on Device memory hold for every leaf size (Arm ARM B2.5.2): each
    // misaligned Device access in the fault family faulted, or is judged a deviation.
    let mut per_size = BTreeSet::new();
    for p in o.probes("fault") {
        o.check(
            p.result != ProbeResult::Skipped,
            &format!(
                "{} {} {}: skipped: {:?}",
                p.name, p.attr, p.map.mapping, p.reason
            ),
        );
        if p.attr.starts_with("device-") && (misaligned(p) || crosses_line(p)) {
            per_size.insert(p.map.mapping.clone());
            o.check(
                p.result == ProbeResult::Fault || p.verdict == Verdict::Deviation,
                &format!(
                    "{} on {} mapping={}: {:?}/{:?}, want a fault or a deviation",
                    p.name, p.attr, p.map.mapping, p.result, p.verdict
                ),
            );
        }
        // Shareability is named on Normal memory only, and never on Device memory.
        if p.attr.starts_with("device-") {
            o.check(
                p.map.share.is_none(),
                &format!("{} {}: share on Device", p.name, p.attr),
            );
        }
    }
    o.check(
        per_size.len() == 3,
        &format!("Device misaligned sizes: {per_size:?}"),
    );
    for fam in ["fault", "tear"] {
        let shares: BTreeSet<Option<String>> =
            o.probes(fam).iter().map(|p| p.map.share.clone()).collect();
        o.check(
            shares.len() == 3,
            &format!("{fam}: shareabilities seen {shares:?}, want inner (none), outer, non"),
        );
    }
}

#[test]
fn virt_caches_off_runs_and_is_named() {
    let Some(o) = boot(Board::Virt, |opts| {
        opts.append =
            Some("probes=fault,excl attrs=normal-wb,normal-nc caches=off,on iters=50".into());
    }) else {
        return;
    };
    o.assert_complete();
    let recs = o.probes("excl");
    let off: Vec<_> = recs
        .iter()
        .filter(|p| p.map.caches.as_deref() == Some("off"))
        .collect();
    o.check(
        !off.is_empty() && off.len() * 2 == recs.len(),
        &format!(
            "{} of {} excl records with caches=off",
            off.len(),
            recs.len()
        ),
    );
    // With SCTLR_EL1.C = 0 Normal Write-Back is Non-cacheable, where exclusives are
    // IMPLEMENTATION DEFINED (Arm ARM B2.9.5): no verdict may call that a deviation.
    for p in &off {
        o.check(
            p.verdict != Verdict::Deviation || p.result == ProbeResult::Fault,
            &format!(
                "{} {} caches=off: {:?}/{:?}",
                p.name, p.attr, p.result, p.verdict
            ),
        );
    }
    o.check(o.errors("mapping").is_empty(), "caches=off refused");
}

#[test]
fn pc_mapping_sizes_and_mtrrs_name_the_effective_type() {
    let Some(o) = boot(Board::Pc, |opts| {
        // -cpu max: QEMU's default qemu64 has no 1 GiB pages (CPUID.80000001H:EDX[26]).
        opts.cpu = Some("max".into());
        opts.append =
            Some("probes=fault attrs=wb,wc,uc mapping=4k,2m,1g mtrr=uc,wc iters=20".into());
    }) else {
        return;
    };
    o.assert_complete();
    o.check(
        o.errors("mapping").is_empty(),
        &format!("{:?}", o.errors("mapping")),
    );
    let b = o.begin();
    for key in ["arena_wb", "arena_wb_2m", "arena_wc_1g"] {
        let v = b.platform.get(key).cloned().unwrap_or_default();
        o.check(
            v.ends_with("confirmed"),
            &format!("begin.platform.{key} = {v}"),
        );
    }
    let seen = check_every_record_mapped(&o, &["4k", "2m", "1g"]);
    o.check(seen.len() == 3, &format!("leaf sizes seen: {seen:?}"));
    for p in o.probes("fault") {
        let what = format!(
            "{} {} mapping={} mtrr={:?}",
            p.name, p.attr, p.map.mapping, p.map.mtrr
        );
        o.check(
            p.result != ProbeResult::Skipped,
            &format!("{what}: skipped {:?}", p.reason),
        );
        let eff = p.map.effective.as_deref().unwrap_or("");
        // SDM Vol. 3A Table 13-7: MTRR UC + PAT WB → UC, MTRR WC + PAT WB → WC, PAT UC → UC,
        // PAT WC → WC; a 1 GiB page over several MTRR types: undefined (13.11.9).
        let want = match (
            p.map.mapping.as_str(),
            p.attr.as_str(),
            p.map.mtrr.as_deref(),
        ) {
            ("1g", _, _) => "undefined",
            (_, "wb", Some(m)) => m,
            (_, "wc", _) => "wc",
            (_, "uc", _) => "uc",
            _ => "?",
        };
        o.check(
            eff.starts_with(want),
            &format!("{what}: effective {eff:?}, want {want}"),
        );
    }
}

#[test]
fn pc_1g_without_page1gb_is_an_error_and_skipped() {
    let Some(o) = boot(Board::Pc, |opts| {
        opts.append = Some("probes=fault/lock-cmpxchg-32-aligned mapping=1g share=non".into());
    }) else {
        return;
    };
    o.assert_complete();
    let boot_errs = o.errors("bootarg");
    o.check(
        boot_errs.len() == 1 && boot_errs[0].message.contains("share=non"),
        &format!("share= on x86 must be one bootarg error: {boot_errs:?}"),
    );
    // qemu64 has no 1 GiB pages: one error naming the CPUID bit; the probes skipped saying why.
    let errs = o.errors("mapping");
    o.check(
        errs.len() == 1 && errs[0].message.contains("Page1GB"),
        &format!("{errs:?}"),
    );
    let recs = o.probes("fault");
    o.check(!recs.is_empty(), "no fault records");
    for p in recs {
        o.check(
            p.result == ProbeResult::Skipped
                && p.map.mapping == "1g"
                && p.reason
                    .as_deref()
                    .is_some_and(|r| r.contains("1 GiB pages")),
            &format!("{p:?}"),
        );
    }
}

/// `granule=` records: every probe record carries `granule` exactly when `want` is not 4k, none
/// was skipped for its mapping (a CPU feature missing, e.g. FEAT_LRCPC on Cortex-A72, may skip),
/// and every misaligned Device access faulted or is a deviation (Arm ARM B2.5.2, any granule).
fn check_granule_records(o: &Outcome, want: &[&str]) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for fam in ["fault", "tear"] {
        let recs = o.probes(fam);
        o.check(!recs.is_empty(), &format!("no {fam} records"));
        for p in recs {
            let g = p.map.granule.clone().unwrap_or_else(|| "4k".into());
            o.check(
                want.contains(&g.as_str()) && p.map.mapping == "4k",
                &format!(
                    "{} {}: granule {g} mapping {}, want one of {want:?} with 4k",
                    p.name, p.attr, p.map.mapping
                ),
            );
            let why = p.reason.clone().unwrap_or_default();
            o.check(
                p.result != ProbeResult::Skipped
                    || !(why.contains("granule") || why.contains("mapping")),
                &format!("{} {} granule={g}: skipped: {why}", p.name, p.attr),
            );
            if fam == "fault"
                && p.result != ProbeResult::Skipped
                && p.attr.starts_with("device-")
                && (misaligned(p) || crosses_line(p))
            {
                o.check(
                    p.result == ProbeResult::Fault || p.verdict == Verdict::Deviation,
                    &format!(
                        "{} on {} granule={g}: {:?}/{:?}, want a fault or a deviation",
                        p.name, p.attr, p.result, p.verdict
                    ),
                );
            }
            seen.insert(g);
        }
    }
    seen
}

/// Cortex-A72 implements the 4 KiB and 64 KiB granules only (ID_AA64MMFR0_EL1.TGran16 = 0):
/// `granule=16k` is one error naming it and what the CPU implements, and the default runs.
#[test]
fn virt_a72_granule_16k_is_an_error_and_the_default_runs() {
    let Some(o) = boot(Board::Virt, |opts| {
        opts.append = Some("probes=fault attrs=normal-wb,device-ngnre granule=16k iters=20".into());
    }) else {
        return;
    };
    o.assert_complete();
    let errs = o.errors("bootarg");
    o.check(
        errs.len() == 1
            && errs[0].message.contains("granule=16k: not implemented")
            && errs[0].message.contains("implement 4k, 64k")
            && errs[0].message.contains("default granule=4k"),
        &format!("bootarg errors: {errs:?}"),
    );
    let b = o.begin();
    o.check(
        b.config.granule.is_empty(),
        &format!("begin.config.granule = {:?}", b.config.granule),
    );
    o.check(
        !b.platform.contains_key("arena_aliases_granule_16k"),
        "16k aliases built on a CPU without the granule",
    );
    let faults = o.probes("fault");
    o.check(
        !faults.is_empty() && faults.iter().all(|p| p.map.granule.is_none()),
        "fault records should run with the default granule",
    );
}

/// Cortex-A72 `granule=64k` (with `mapping=4k,2m`: the 2 MiB combination refused once): the
/// probes run on 64 KiB pages through TTBR1 (TCR_EL1.TG1), every record says so, and Device
/// alignment faults hold (Arm ARM B2.5.2).
#[test]
fn virt_a72_granule_64k_runs_and_is_named() {
    let Some(o) = boot(Board::Virt, |opts| {
        opts.append = Some(
            "probes=fault,tear attrs=normal-wb,normal-nc,device-ngnre granule=64k mapping=4k,2m \
             iters=20"
                .into(),
        );
    }) else {
        return;
    };
    o.assert_complete();
    let errs = o.errors("bootarg");
    o.check(
        errs.len() == 1 && errs[0].message.contains("mapping=2m with granule=64k"),
        &format!("bootarg errors: {errs:?}"),
    );
    o.check(
        o.errors("mapping").is_empty(),
        &format!("{:?}", o.errors("mapping")),
    );
    let b = o.begin();
    o.check(
        b.config.granule == ["64k"],
        &format!("begin.config.granule = {:?}", b.config.granule),
    );
    let aliases = b
        .platform
        .get("arena_aliases_granule_64k")
        .cloned()
        .unwrap_or_default();
    let entries: Vec<&str> = aliases.split(',').collect();
    o.check(
        entries.len() == 12 && entries.iter().all(|e| e.ends_with(" ok")),
        &format!("begin.platform.arena_aliases_granule_64k: {aliases}"),
    );
    let seen = check_granule_records(&o, &["64k"]);
    o.check(seen.len() == 1, &format!("granules seen: {seen:?}"));
    common::check_aarch64_faults(&o);
    // The faults taken through the 64 KiB aliases are at TTBR1 addresses.
    let far_high = o
        .probes("fault")
        .iter()
        .filter_map(|p| p.fault.as_ref())
        .any(|f| {
            f.far
                .as_deref()
                .is_some_and(|a| a.starts_with("0xffffff80"))
        });
    o.check(far_high, "no fault address in the TTBR1 alias region");
}

/// `-cpu max` implements all three granules: `granule=16k,4k` runs both, switching TTBR1 and
/// TCR_EL1.TG1 on every core and back.
#[test]
fn virt_max_granule_16k_runs() {
    let Some(o) = boot(Board::Virt, |opts| {
        opts.cpu = Some("max".into());
        opts.append =
            Some("probes=fault,tear attrs=normal-wb,device-ngnre granule=16k,4k iters=20".into());
    }) else {
        return;
    };
    o.assert_complete();
    o.check(
        o.errors("bootarg").is_empty() && o.errors("mapping").is_empty(),
        &format!(
            "errors: {:?} {:?}",
            o.errors("bootarg"),
            o.errors("mapping")
        ),
    );
    let seen = check_granule_records(&o, &["16k", "4k"]);
    o.check(seen.len() == 2, &format!("granules seen: {seen:?}"));
}
