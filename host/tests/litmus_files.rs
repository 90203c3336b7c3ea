//! `atomprobe litmus`: herdtools7 `.litmus` files parsed, translated, compiled in and run,
//! hosted (x86-64 catalogue) and on QEMU virt (aarch64 catalogue), with hand-written tests no
//! table knows (model `unknown`, or judged by a `--kinds` file).

mod common;

use std::path::PathBuf;

use atomprobe::litmus_cmd::{expand_inputs, prepare, run_litmus, LitmusArgs, LitmusBoard};
use atomprobe::Board;
use common::{
    check_litmus_run, check_litmus_verdicts as check_verdicts, check_skips_only_for_lse_lrcpc,
    litmus_records, litmus_test_names,
};
use probes::litmus::parse::FileArch;
use probes::record::{Litmus, ModelVerdict, Record, Verdict};

/// The virt tests build into one `target/litmus` (module `gen/virt.rs`, kernel copy
/// `…-litmus-virt`): one at a time.
static VIRT: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../probes/tests/fixtures")
}

fn args(inputs: Vec<PathBuf>, board: LitmusBoard, kinds: Option<PathBuf>) -> LitmusArgs {
    LitmusArgs {
        inputs: inputs.iter().map(|p| p.display().to_string()).collect(),
        board,
        append: Some("iters=200".into()),
        out: None,
        kinds,
        output: atomprobe::view::OutputArgs::default(),
        digests: false,
        states: None,
        cpu: None,
        timeout: 300,
    }
}

/// Every catalogue file parses and translates (no refusal), on both architectures.
#[test]
fn catalogue_files_all_translate() {
    for (dir, arch, n) in [
        ("aarch64", FileArch::AArch64, 80),
        ("aarch64-mixed", FileArch::AArch64, 20),
        ("x86_64", FileArch::X86_64, 28),
    ] {
        let paths =
            expand_inputs(&[fixtures().join("litmus").join(dir).display().to_string()]).unwrap();
        assert_eq!(paths.len(), n);
        let (tests, refused) = prepare(&paths, arch, None);
        assert!(refused.is_empty(), "{dir}: {refused:#?}");
        assert_eq!(tests.len(), n);
        // Those the catalogue's kinds.txt names are judged, by name and digest.
        let judged = tests
            .iter()
            .filter(|t| t.model != atomprobe_litmus::Kind::Unknown)
            .count();
        let least = if dir == "aarch64-mixed" { 12 } else { 28 };
        assert!(judged >= least && judged <= n, "{dir}: {judged} judged");
    }
    // The built-in suite's files (probes/litmus) given to `atomprobe litmus`: every one judged,
    // by the catalogue or by the shipped derived kinds, as in the default image.
    for (dir, arch, n) in [
        ("aarch64", FileArch::AArch64, 50),
        ("x86_64", FileArch::X86_64, 13),
    ] {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../probes/litmus");
        let paths = expand_inputs(&[root.join(dir).display().to_string()]).unwrap();
        let (tests, refused) = prepare(&paths, arch, None);
        assert!(refused.is_empty(), "{dir}: {refused:#?}");
        assert_eq!(tests.len(), n);
        for t in &tests {
            assert_ne!(t.model, atomprobe_litmus::Kind::Unknown, "{dir}/{}", t.name);
        }
    }
    // A file of the other architecture, a malformed file: refused alone, with the reason.
    let paths = vec![
        fixtures().join("litmus/x86_64/SB.litmus"),
        fixtures().join("litmus-bad/cond-no-eq.litmus"),
        fixtures().join("litmus/aarch64/SB.litmus"),
    ];
    let (tests, refused) = prepare(&paths, FileArch::AArch64, None);
    assert_eq!(tests.len(), 1);
    assert!(refused[0].reason.contains("a X86_64 test"), "{refused:?}");
    assert!(
        refused[1]
            .reason
            .contains("cond-no-eq.litmus:5:14: expected `=`"),
        "{refused:?}"
    );
}

fn hand(name: &str) -> PathBuf {
    fixtures().join("litmus-hand").join(name)
}

/// Through the CLI, as a user runs it (issue 15's output): a refused file listed on stderr,
/// the one-screen summary on stdout, the report saved to `--out` and verified, and exit status
/// 2 because one boot argument (`colour=blue`) was not used as given.
#[test]
fn x86_64_catalogue_hosted() {
    if std::env::consts::ARCH != "x86_64" {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let saved = tmp.path().join("host.jsonl");
    let bad = fixtures().join("litmus-bad/cond-no-eq.litmus");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_atomprobe"))
        .arg("litmus")
        .arg(fixtures().join("litmus/x86_64"))
        .arg(hand("X86_64-MP+xchg+mixed.litmus"))
        .arg(hand("X86_64-SB+judged.litmus"))
        .arg(hand("X86_64-CoRR+widths.litmus"))
        .arg(&bad)
        .args([
            "--board",
            "host",
            "--append",
            "iters=200 colour=blue",
            "--kinds",
        ])
        .arg(hand("kinds-hand.txt"))
        .arg("--out")
        .arg(&saved)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let both = format!("--- stdout:\n{stdout}\n--- stderr:\n{stderr}");
    assert_eq!(out.status.code(), Some(2), "{both}");
    assert!(
        stderr.contains(&format!("refused {}: ", bad.display()))
            && stderr.contains("cond-no-eq.litmus:5:14: expected `=`"),
        "{both}"
    );
    assert!(stderr.contains("1 of 32 .litmus files refused"), "{both}");
    assert!(
        stderr.contains("1 boot argument was not used as given") && stderr.contains("Result: PASS"),
        "{both}"
    );
    assert!(stdout.contains("litmus: 31 records"), "{both}");
    assert!(
        stdout.contains(&format!("full report: {}", saved.display())),
        "{both}"
    );
    let report = probes::report::parse_report(&std::fs::read_to_string(&saved).unwrap());
    assert!(report.integrity.is_verified(), "{:?}", report.integrity);
    assert!(
        report.records.iter().any(
            |r| matches!(r, Record::Error(e) if e.what == "bootarg" && e.message.contains("colour"))
        ),
        "no bootarg error record for colour=blue"
    );
    let recs = litmus_records(&report.records);
    assert_eq!(recs.len(), 31);
    check_verdicts(&recs);
    let ran = recs
        .iter()
        .filter(|l| l.verdict != Verdict::Skipped)
        .count();
    // On 2 CPUs the 3-thread tests are skipped (needs 3 cores); the 2-thread ones run.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus >= 2 {
        assert!(ran >= 20, "{ran} ran");
    }
    let get = |n: &str| *recs.iter().find(|l| l.name == n).unwrap();
    let unknown = get("MP+xchg+mixed");
    assert_eq!(unknown.model, ModelVerdict::Unknown);
    let judged = get("SB+judged");
    assert_eq!(judged.model, ModelVerdict::Allowed);
    assert!(judged.rule.contains("--kinds"), "{}", judged.rule);
    if cpus >= 2 {
        assert_eq!(unknown.verdict, Verdict::Unjudged);
        assert_eq!(judged.verdict, Verdict::Ok);
        // The jump skips `movl $2,(x)`; x is not an outcome column, but the run shows the
        // label and branch assemble and execute.
        assert!(judged.iterations > 0);
    }
    // movb/movw/movl/movq on one uint64_t location: 64-bit values printed unsigned, the
    // 32-bit read zero-extended, judged by the hand kinds (coherence).
    let widths = get("CoRR+widths");
    assert_eq!(widths.model, ModelVerdict::Forbidden);
    if cpus >= 2 {
        assert!(widths.iterations > 0);
        assert!(
            widths
                .histogram
                .iter()
                .any(|h| h.outcome.contains("[x]=289360691352306692;")),
            "{:?}",
            widths.histogram
        );
    }
    assert_eq!(get("SB").model, ModelVerdict::Allowed);
    assert_eq!(get("MP").model, ModelVerdict::Forbidden);
}

#[test]
fn aarch64_catalogue_on_virt() {
    if !common::qemu_present(Board::Virt) {
        return;
    }
    let _one = VIRT.lock().unwrap_or_else(|e| e.into_inner());
    let inputs = vec![
        fixtures().join("litmus/aarch64"),
        hand("AArch64-MP+cbz+csel.litmus"),
    ];
    let run = run_litmus(&args(inputs, LitmusBoard::Virt, None)).unwrap();
    let recs = check_litmus_run(&run);
    let tests = litmus_test_names(&recs);
    assert_eq!(tests.len(), 81);
    // cortex-a72 has neither FEAT_LSE nor FEAT_LRCPC: those tests are skipped, saying which.
    check_skips_only_for_lse_lrcpc(&recs);
    let hand = recs.iter().find(|l| l.name == "MP+cbz+csel").unwrap();
    assert_eq!(hand.model, ModelVerdict::Unknown);
    assert_eq!(hand.verdict, Verdict::Unjudged);
    assert!(hand.iterations > 0);
}

/// herdtools7's `aarch64-mixed` catalogue (several widths and offsets over one location) on
/// virt with `-cpu max` (its SWP tests need FEAT_LSE), plus a `filter` test and herd7 final
/// states (`--states`): no refusal, a verified report, no outcome the mixed kinds forbid, the
/// states judging the tests they name.
#[test]
fn aarch64_mixed_catalogue_on_virt() {
    if !common::qemu_present(Board::Virt) {
        return;
    }
    let _one = VIRT.lock().unwrap_or_else(|e| e.into_inner());
    let mixed = fixtures().join("litmus/aarch64-mixed");
    let n_mixed = expand_inputs(&[mixed.display().to_string()]).unwrap().len();
    assert_eq!(n_mixed, 20);
    let inputs = vec![
        mixed,
        hand("AArch64-MP+dmb+filter.litmus"),
        hand("AArch64-W+states-wrong.litmus"),
    ];
    let mut a = args(inputs, LitmusBoard::Virt, Some(hand("kinds-hand.txt")));
    a.cpu = Some("max".into());
    a.append = Some("iters=100".into());
    a.states = Some(hand("mixed-states.txt"));
    let run = run_litmus(&a).unwrap();
    let recs = common::verified_litmus_records(&run);
    let (wrong, rest): (Vec<&Litmus>, Vec<&Litmus>) =
        recs.iter().partition(|l| l.name == "W+states-wrong");
    check_verdicts(&rest);
    let names: std::collections::BTreeSet<&str> = recs.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names.len(), n_mixed + 2);
    // With -cpu max every test runs (LSE and LRCPC present), every width and offset.
    for l in &recs {
        assert_ne!(l.verdict, Verdict::Skipped, "{}: {:?}", l.name, l.reason);
    }
    let get = |n: &str| *recs.iter().find(|l| l.name == n).unwrap();
    // The mixed kinds judge their 12 tests by name and digest.
    let judged = recs
        .iter()
        .filter(|l| l.rule.contains("catalogue/aarch64-mixed"))
        .map(|l| l.name.as_str())
        .collect::<std::collections::BTreeSet<_>>();
    // 12 kinds lines; SmallEndian's model comes from the states file instead (--states
    // outranks the shipped kinds, --kinds outranks both).
    assert_eq!(judged.len(), 11, "{judged:?}");
    assert!(!judged.contains("SmallEndian"));
    assert_eq!(get("CO-MIXED-20cc+H").model, ModelVerdict::Forbidden);
    // SmallEndian: two STRH into one int, read back whole as herd7 prints it.
    let se = get("SmallEndian");
    assert_eq!(se.verdict, Verdict::Ok);
    assert_eq!(se.histogram.len(), 1);
    assert_eq!(se.histogram[0].outcome, "[x]=131073;");
    assert!(se.rule.contains("mixed-states.txt"), "{}", se.rule);
    // uint64_t values printed unsigned, and judged by the states file.
    let q = get("CoRW2+posq0q0+q0");
    assert!(
        q.rule.contains("herd7 states file") && q.rule.contains("mixed-states.txt line 1"),
        "{}",
        q.rule
    );
    assert!(
        q.histogram
            .iter()
            .all(|h| h.outcome.contains("[x]=72340172838076673;")
                || h.outcome.contains("[x]=144680345676153346;")),
        "{:?}",
        q.histogram
    );
    // The filter: only runs with 1:X0=1 counted; its column not shown.
    let f = get("MP+dmb+filter");
    assert!(
        f.histogram.iter().all(|h| !h.outcome.contains("1:X0")),
        "{:?}",
        f.histogram
    );
    assert_eq!(f.model, ModelVerdict::Forbidden);
    // The deliberately false states: every run is outside them, though the condition held.
    let w = wrong[0];
    assert_eq!(w.verdict, Verdict::Violation);
    assert_eq!(w.observed, w.iterations);
    let why = w.reason.as_deref().unwrap_or("");
    assert!(
        why.contains("outcome `[x]=1;`") && why.contains("mixed-states.txt"),
        "{why}"
    );
}
