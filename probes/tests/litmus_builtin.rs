//! The built-in litmus tests are `.litmus` files (`probes/litmus/<arch>`), generated into
//! `probes::litmus::file::FILE_TESTS` by probes/build.rs. Their names, order, model verdicts,
//! conditions and verdict sources must match the committed list
//! `tests/fixtures/litmus-builtin-verdicts.txt`.
//!
//! That list was written, and checked, against the hand-written tables the files replaced
//! (commit 07800d6, `the_files_are_the_tables`: same tests in the same order, same model, the
//! table's derived citation word for word or the catalogue kinds' citation, the same outcome
//! columns and the same truth value of the condition on every assignment of 0, 1, 2 to them).

use probes::attr::Arch;
use probes::litmus::file::{self, FileTest};

/// Under ATOMPROBE_LITMUS_GEN the crate holds a user's tests, not the built-in ones.
fn user_module() -> bool {
    std::env::var_os("ATOMPROBE_LITMUS_GEN").is_some_and(|v| !v.is_empty())
}

fn generated(arch: Arch) -> Vec<&'static FileTest> {
    file::FILE_TESTS.iter().filter(|t| t.arch == arch).collect()
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
    if user_module() {
        return;
    }
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

/// Every built-in test carries a verdict and cites its source; names are unique per arch.
#[test]
fn every_builtin_test_is_judged_and_cites_its_source() {
    if user_module() {
        return;
    }
    for arch in [Arch::Aarch64, Arch::X86_64] {
        let tests = generated(arch);
        assert!(tests.len() >= 13, "{arch:?}: {} tests", tests.len());
        for t in &tests {
            assert_ne!(t.model, probes::record::ModelVerdict::Unknown, "{}", t.name);
            assert!(!t.rule.is_empty(), "{}", t.name);
            assert_eq!(tests.iter().filter(|u| u.name == t.name).count(), 1);
        }
    }
}
