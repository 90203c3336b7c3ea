//! The built-in litmus tests are `.litmus` files (`probes/litmus/<arch>`), generated into
//! `probes::litmus::file::FILE_TESTS` by probes/build.rs. This test checks that path against
//! the hand-written tables it replaced (`probes::litmus::{aarch64,x86_64}::TESTS`): the same
//! tests in the same order, the same model verdict, the same verdict source (catalogue kinds,
//! or the derived rule's text), the same outcome columns and the same `exists` condition.
//! It also checks the committed list `tests/fixtures/litmus-builtin-verdicts.txt`, which stays
//! the regression reference once the tables are gone.

use std::collections::BTreeMap;

use atomprobe_litmus::gen::catalogue_kinds;
use atomprobe_litmus::parse::FileArch;
use probes::attr::Arch;
use probes::litmus::file::{self, Col, FileTest, Prepared};
use probes::litmus::{self, Obs, Source, Test};

fn generated(arch: Arch) -> Vec<&'static FileTest> {
    file::FILE_TESTS.iter().filter(|t| t.arch == arch).collect()
}

/// The `rule` the new path must give for a table entry: a catalogue-judged test gets the
/// catalogue kinds' citation (now also saying it was matched by name and digest), a derived
/// one exactly the table's text.
fn expected_rule(t: &Test) -> String {
    match t.source {
        Source::ArmKinds => catalogue_kinds(FileArch::AArch64).source,
        Source::X86Kinds => catalogue_kinds(FileArch::X86_64).source,
        Source::ArmArm(_) | Source::X86Tso(_) => t.source.cite(),
    }
}

fn old_column(t: &Test, c: usize) -> String {
    match t.obs[c] {
        Obs::Reg { thread, name, .. } => format!("{thread}:{name}"),
        Obs::Loc { var } => format!("[{}]", t.vars[var]),
    }
}

fn new_column(p: &Prepared, c: usize) -> String {
    match &p.cols[c] {
        Col::Reg { thread, name, .. } => format!("{thread}:{name}"),
        Col::Loc { loc } => format!("[{}]", p.locs[*loc].name),
    }
}

/// Same columns (as sets) and, over every assignment of 0, 1, 2 to them, the same truth value
/// of the condition: the file states the table's test.
fn same_outcome_shape(t: &Test, p: &Prepared) {
    let old: Vec<String> = (0..t.obs.len()).map(|c| old_column(t, c)).collect();
    let new: Vec<String> = (0..p.cols.len()).map(|c| new_column(p, c)).collect();
    let mut a = old.clone();
    let mut b = new.clone();
    a.sort();
    b.sort();
    assert_eq!(a, b, "{}: outcome columns", t.name);
    let n = old.len();
    for code in 0..3u32.pow(n as u32) {
        let vals: Vec<u32> = (0..n).map(|k| code / 3u32.pow(k as u32) % 3).collect();
        let by_name: BTreeMap<&str, u32> = old
            .iter()
            .map(String::as_str)
            .zip(vals.iter().copied())
            .collect();
        let new_vals: Vec<i64> = new.iter().map(|c| i64::from(by_name[c.as_str()])).collect();
        assert_eq!(
            t.satisfies(&vals),
            p.satisfies(&new_vals),
            "{}: condition differs at {by_name:?} (table {}, file {})",
            t.name,
            t.condition(),
            p.condition()
        );
    }
}

#[test]
fn the_files_are_the_tables() {
    for arch in [Arch::Aarch64, Arch::X86_64] {
        let old = litmus::tests(arch);
        let new = generated(arch);
        let on: Vec<&str> = old.iter().map(|t| t.name).collect();
        let nn: Vec<&str> = new.iter().map(|t| t.name).collect();
        assert_eq!(on, nn, "{arch:?}: the same tests in the same order");
        for (t, g) in old.iter().zip(&new) {
            assert_eq!(t.model, g.model, "{}: model", t.name);
            assert_eq!(expected_rule(t), g.rule, "{}: rule", t.name);
            let p = file::prepare(g).unwrap_or_else(|e| panic!("{}: {e}", t.name));
            assert_eq!(t.thread_count(), g.bodies.len(), "{}: threads", t.name);
            same_outcome_shape(t, &p);
            // LDAPR tests need FEAT_LRCPC on both paths.
            let lrcpc = g.needs.contains(&probes::rules::atomicity::Feature::Lrcpc);
            assert_eq!(
                t.needs == litmus::Needs::Lrcpc,
                lrcpc,
                "{}: feature needs",
                t.name
            );
        }
    }
}

/// `arch name model rule` per test, tab-separated, in run order, as the generated tests give.
fn listing() -> String {
    let mut s = String::new();
    for arch in [Arch::Aarch64, Arch::X86_64] {
        for g in generated(arch) {
            let p = file::prepare(g).unwrap_or_else(|e| panic!("{}: {e}", g.name));
            s.push_str(&format!(
                "{}\t{}\t{:?}\t{}\t{}\n",
                arch.name(),
                g.name,
                g.model,
                p.condition(),
                g.rule
            ));
        }
    }
    s
}

#[test]
fn verdicts_match_the_committed_list() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/litmus-builtin-verdicts.txt"
    );
    let want = std::fs::read_to_string(path).unwrap_or_default();
    let want: String = want
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let got = listing();
    if got != want {
        let out = std::env::temp_dir().join("litmus-builtin-verdicts.txt");
        std::fs::write(&out, &got).unwrap();
        panic!(
            "the built-in tests' verdicts differ from {path} (the new listing is in {})",
            out.display()
        );
    }
}
