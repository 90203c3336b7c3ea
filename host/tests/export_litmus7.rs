//! `atomprobe export --litmus7` against logs written by the real litmus7.
//!
//! The fixtures are unchanged output of herdtools7's litmus7 7.57 (tag `7.57`, built from source
//! with Debian bookworm's OCaml 4.13 and dune 2.9), run on the development machine (x86-64, 2
//! cores) on tests of the herdtools7 catalogue (`catalogue/x86_64/tests`,
//! `catalogue/aarch64/tests`; CeCILL-B, see `fixtures/LICENSE-herdtools7.txt`):
//!
//! - `litmus7-7.57-x86_64.txt`: `litmus7 -mach x86_64 -a 2 -barrier userfence SB.litmus
//!   MP.litmus 2+2W.litmus -o DIR`, `make -C DIR`, `sh DIR/run.sh -s 1000 -r 10`.
//! - `litmus7-7.57-aarch64-qemu-user.txt`: `litmus7 -mach aarch64 -a 2 -barrier userfence -gcc
//!   aarch64-linux-gnu-gcc -linkopt -static 2+2W CoRR LB MP R S SB (.litmus) -o DIR`, run by
//!   `run.sh` with each `./T.exe` prefixed by `qemu-aarch64` (user mode on the x86-64 host: the
//!   counts say nothing about Arm hardware; the log is there for its shape).
//!
//! herdtools7's `mcompare7` and `msum7` cannot run in CI (no OCaml there), so what they accept is
//! checked on stored text: for every test of a fixture, atomprobe's export of a record with the
//! same name, condition, histogram and time must be, line for line, the fixture's block from the
//! `% Results for` banner to the `Time` line, except for what atomprobe does not have: the test's
//! source and generated assembler (between the banner and `Test`), the header lines litmus7
//! copies after `Hash=` (`Cycle=`, `Relax`, `Safe=`, `Generator=`, `Com=`, `Orig=`). The
//! `Hash=` lines are litmus7's own: the export computes them from the catalogue copies of the
//! same tests (`probes/tests/fixtures/litmus`, given as `--tests`), and they must equal the hashes
//! litmus7 wrote, so mcompare7 lines the two logs up test by test.

use atomprobe::export::{check_block, litmus7_log, parse_litmus7, Hashes, NO_HASH};
use probes::record::{Litmus, Record, RunStatus};
use probes::report::{parse_report, ParsedReport, ReportWriter};

const X86_64: &str = include_str!("fixtures/litmus7-7.57-x86_64.txt");
const AARCH64: &str = include_str!("fixtures/litmus7-7.57-aarch64-qemu-user.txt");

/// Lines litmus7 copies from the test's header into the block, after `Hash=`.
fn is_header_copy(line: &str) -> bool {
    [
        "Cycle=",
        "Relax ",
        "Safe=",
        "Generator=",
        "Com=",
        "Orig=",
        "Prefetch=",
    ]
    .iter()
    .any(|p| line.starts_with(p))
}

/// The lines of a litmus7 log that atomprobe's export also has: each test's `% Results for`
/// banner, then its block from `Test` to `Time`, without the header copies.
fn comparable(log: &str) -> Vec<&str> {
    let lines: Vec<&str> = log.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].starts_with("% Results for ") {
            out.extend_from_slice(&lines[i - 1..=i + 1]);
            i += 2;
            while i < lines.len() && !lines[i].starts_with("Test ") {
                i += 1; // source and generated assembler
            }
            while i < lines.len() {
                let l = lines[i];
                if !is_header_copy(l) {
                    out.push(l);
                }
                i += 1;
                if l.starts_with("Time ") {
                    break;
                }
            }
        } else {
            i += 1;
        }
    }
    out
}

/// A `litmus` record carrying what a litmus7 test block says.
fn record_of(b: &atomprobe::export::Block) -> Litmus {
    let histogram: Vec<_> = b
        .states
        .iter()
        .map(|(count, _, st)| serde_json::json!({ "outcome": st, "count": count }))
        .collect();
    let iterations = b.positive + b.negative;
    let ms = (b.time.expect("fixture block has a Time line") * 1000.0).round() as u64;
    serde_json::from_value(serde_json::json!({
        "name": b.name,
        "attr": "wb",
        "cpus": [0, 1],
        "iterations": iterations,
        "histogram": histogram,
        "condition": b.condition,
        "observed": b.positive,
        "model": "allowed",
        "verdict": "ok",
        "elapsed_ms": ms,
        "iter_per_s": 0,
    }))
    .expect("litmus record")
}

/// The catalogue copy of `arch`'s tests (what `--tests` names).
fn catalogue(arch: &str) -> String {
    format!(
        "{}/../probes/tests/fixtures/litmus/{arch}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// A report of records made from `fixture`'s litmus7 blocks.
fn report_of(fixture: &str) -> ParsedReport {
    let blocks = parse_litmus7(fixture).unwrap();
    let mut wr = ReportWriter::new();
    let mut text = String::new();
    for b in &blocks {
        text.push_str(&wr.encode(&Record::Litmus(record_of(b))));
        text.push('\n');
    }
    text.push_str(&wr.end(RunStatus::Complete, 1).to_line());
    parse_report(&text)
}

/// atomprobe's export of records made from `fixture`'s blocks, hashes from `hashes`.
fn export_of(fixture: &str, hashes: &Hashes) -> String {
    let rep = report_of(fixture);
    assert!(rep.integrity.is_verified());
    let (log, notes) = litmus7_log(&rep, None, "fixture", hashes).unwrap();
    assert!(notes.is_empty(), "{notes:?}");
    log
}

fn same_lines_as_litmus7(fixture: &str, arch: &str, names: &[&str]) {
    let blocks = parse_litmus7(fixture).unwrap();
    let got: Vec<&str> = blocks.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(got, names);
    for b in &blocks {
        check_block(b).unwrap();
        let h = b.hash.as_deref().unwrap();
        assert!(h.len() == 32 && h.bytes().all(|c| c.is_ascii_hexdigit()));
    }
    let hashes = Hashes::from_inputs(&[catalogue(arch)]).unwrap();
    let ours = export_of(fixture, &hashes);
    let theirs = comparable(fixture);
    // Nothing of ours is dropped: the export is exactly the comparable part, plus no trailer
    // (the report has no begin record here).
    let ours_lines: Vec<&str> = ours.lines().collect();
    assert_eq!(comparable(&ours), ours_lines, "{ours}");
    assert_eq!(ours_lines.len(), theirs.len(), "ours:\n{ours}");
    // Every line, the Hash= lines included: litmus7's hash of the same file.
    for (n, (o, t)) in ours_lines.iter().zip(&theirs).enumerate() {
        assert_eq!(o, t, "line {} of the comparable lines", n + 1);
    }
    // And it reads back as the same blocks.
    let back = parse_litmus7(&ours).unwrap();
    assert_eq!(back.len(), blocks.len());
    for (o, t) in back.iter().zip(&blocks) {
        check_block(o).unwrap();
        assert_eq!(
            (&o.name, &o.kind, &o.states, o.ok, o.positive, o.negative),
            (&t.name, &t.kind, &t.states, t.ok, t.positive, t.negative)
        );
        assert_eq!(
            (&o.condition, o.validated, &o.observation, o.time, &o.hash),
            (&t.condition, t.validated, &t.observation, t.time, &t.hash)
        );
    }
}

#[test]
fn x86_64_export_has_litmus7_block_structure_line_by_line() {
    same_lines_as_litmus7(X86_64, "x86_64", &["SB", "MP", "2+2W"]);
}

#[test]
fn aarch64_export_has_litmus7_block_structure_line_by_line() {
    same_lines_as_litmus7(
        AARCH64,
        "aarch64",
        &["2+2W", "CoRR", "LB", "MP", "R", "S", "SB"],
    );
}

#[test]
fn litmus7_spellings_the_export_follows() {
    // What the fixtures show litmus7 7.57 writes, and the export writes alike.
    for l in [
        "Test 2+2W Allowed",
        "28    :>[x]=1; [y]=1;",
        "Condition exists ([x]=2 /\\ [y]=2) is NOT validated",
        "37    *>0:rax=0; 1:rax=0;",
        "Positive: 37, Negative: 9963",
        "Observation SB Sometimes 37 9963",
        "Time SB 2.48",
    ] {
        assert!(X86_64.lines().any(|x| x == l), "{l}");
    }
    // Time is followed by the next banner, not by a blank line.
    assert!(X86_64.contains("Time SB 2.48\n%%%%%%%%%%%%%%%%%%%%%%%%%\n% Results for MP.litmus %\n"));
    let ours = export_of(X86_64, &Hashes::nohash());
    assert!(ours.contains("Time SB 2.48\n%%%%%%%%%%%%%%%%%%%%%%%%%\n% Results for MP.litmus %\n"));
    assert!(ours.contains("\n28    :>[x]=1; [y]=1;\n"), "{ours}");
    assert!(ours.contains("\nCondition exists ([x]=2 /\\ [y]=2) is NOT validated\n"));
    assert_eq!(ours.matches("\nHash=NOHASH\n").count(), 3);
}

#[test]
fn hashes_come_from_the_files_else_the_catalogue_else_nohash() {
    // A hand-written test with a catalogue name but other code gets its own file's hash.
    let dir = std::env::temp_dir().join(format!("atomprobe-hash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sb = std::fs::read_to_string(format!("{}/SB.litmus", catalogue("x86_64"))).unwrap();
    let mine = sb.replace(
        "movl (y),%eax | movl (x),%eax",
        "movq (y),%rax | movq (x),%rax",
    );
    std::fs::write(dir.join("SB.litmus"), &mine).unwrap();
    let h = Hashes::from_inputs(&[dir.join("SB.litmus").display().to_string()]).unwrap();
    let log = export_of(X86_64, &Hashes::nohash());
    assert_eq!(log.matches(&format!("Hash={NO_HASH}")).count(), 3);
    let rep = report_of(X86_64);
    let (log, notes) = litmus7_log(&rep, None, "r", &h).unwrap();
    let got: Vec<_> = parse_litmus7(&log)
        .unwrap()
        .into_iter()
        .map(|b| (b.name, b.hash.unwrap()))
        .collect();
    let own = atomprobe::litmus_hash::litmus7_hash(&mine).unwrap();
    assert_ne!(own, "055f9747fd517835a93f2f188e15e163");
    // SB from its file. MP and 2+2W have no file, and this report has no begin record to say
    // its architecture: both names are in the aarch64 and the x86_64 catalogue, so no hash is
    // guessed.
    assert_eq!(got[0], ("SB".to_string(), own));
    assert_eq!(
        got[1].1, NO_HASH,
        "MP is in both catalogues: no architecture, no guess"
    );
    assert_eq!(got[2].1, NO_HASH, "2+2W is in both catalogues");
    assert!(
        notes.iter().any(|n| n.contains("MP: no --tests file")),
        "{notes:?}"
    );
    // A file the hash cannot take is refused by name when its test is exported.
    let bad = sb.replace("movl $1,(x)   | movl $1,(y)", "pause | movl $1,(y)");
    assert_ne!(bad, sb);
    std::fs::write(dir.join("SB.litmus"), bad).unwrap();
    let h = Hashes::from_inputs(&[dir.display().to_string()]).unwrap();
    let e = litmus7_log(&rep, None, "r", &h).unwrap_err();
    assert!(e.contains("SB.litmus") && e.contains("pause"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
