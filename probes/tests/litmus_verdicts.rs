//! The litmus tables' model verdicts against herdtools7's published verdicts (`kinds.txt`,
//! copied into `tests/fixtures/`), and the tables' spelling against the reference tests.

use probes::attr::Arch;
use probes::litmus::{self, Source};
use probes::record::ModelVerdict;

/// (name, verdict) pairs of a kinds file; `#` starts a comment line.
fn kinds(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_string(), it.next()?.to_string()))
        })
        .collect()
}

fn verdict(word: &str) -> Option<ModelVerdict> {
    match word {
        "Allowed" | "Allow" => Some(ModelVerdict::Allowed),
        "Forbidden" | "Forbid" => Some(ModelVerdict::Forbidden),
        _ => None,
    }
}

fn check(arch: Arch, text: &str, from_kinds: fn(&Source) -> bool) {
    let table = kinds(text);
    let mut checked = 0;
    for t in litmus::tests(arch) {
        let listed = table.iter().find(|(n, _)| n == t.name);
        match listed {
            Some((_, v)) => {
                assert!(
                    from_kinds(&t.source),
                    "{}: kinds.txt lists it ({v}) but the table cites {:?}",
                    t.name,
                    t.source
                );
                assert_eq!(Some(t.model), verdict(v), "{}: kinds.txt says {v}", t.name);
                checked += 1;
            }
            None => assert!(
                !from_kinds(&t.source),
                "{} cites kinds.txt but is not listed there",
                t.name
            ),
        }
    }
    assert!(
        checked >= 10,
        "only {checked} tests checked against kinds.txt"
    );
}

#[test]
fn aarch64_verdicts_match_herdtools_kinds() {
    check(
        Arch::Aarch64,
        include_str!("fixtures/kinds-aarch64.txt"),
        |s| matches!(s, Source::ArmKinds),
    );
}

#[test]
fn x86_64_verdicts_match_herdtools_kinds() {
    check(
        Arch::X86_64,
        include_str!("fixtures/kinds-x86_64.txt"),
        |s| matches!(s, Source::X86Kinds),
    );
}

#[test]
fn every_verdict_cites_a_source_and_names_are_unique() {
    for arch in [Arch::Aarch64, Arch::X86_64] {
        let tests = litmus::tests(arch);
        for (i, t) in tests.iter().enumerate() {
            assert!(!t.source.cite().is_empty());
            assert_eq!(t.arch, arch);
            assert_eq!(t.threads.len(), t.regs.len(), "{}", t.name);
            assert!(
                tests[i + 1..].iter().all(|u| u.name != t.name),
                "{} twice",
                t.name
            );
        }
    }
}

#[test]
fn required_families_and_variants_are_present() {
    let names: Vec<&str> = litmus::tests(Arch::Aarch64)
        .iter()
        .map(|t| t.name)
        .collect();
    for n in [
        "MP",
        "SB",
        "LB",
        "2+2W",
        "R",
        "S",
        "WRC",
        "IRIW",
        "CoRR",
        "CoWR",
        "CoWW",
        "MP+dmb.sys",
        "MP+dmb.sy+po",
        "MP+po+dmb.sy",
        "MP+dmb.st+dmb.ld",
        "MP+dmb.sy+addr",
        "MP+dmb.sy+ctrl",
        "MP+dmb.sy+ctrlisb",
        "LB+addrs",
        "LB+datas",
        "LB+ctrls",
        "MP+rel+acq",
        "MP+rel+acqpc",
        "SB+dmb.sy+rel-acq",
    ] {
        assert!(names.contains(&n), "aarch64 {n} missing");
    }
    let names: Vec<&str> = litmus::tests(Arch::X86_64).iter().map(|t| t.name).collect();
    for n in [
        "SB",
        "SB+mfences",
        "SB+lock-xchg",
        "MP",
        "LB",
        "IRIW",
        "2+2W",
        "CoRR",
        "R",
        "S",
        "WRC",
    ] {
        assert!(names.contains(&n), "x86_64 {n} missing");
    }
}

/// Conditions and outcome spellings as litmus7 prints them for the reference tests.
#[test]
fn conditions_match_reference_tests() {
    let cond = |arch, name| {
        litmus::tests(arch)
            .iter()
            .find(|t| t.name == name)
            .unwrap()
            .condition()
    };
    assert_eq!(cond(Arch::Aarch64, "MP"), "exists (1:X0=1 /\\ 1:X2=0)");
    assert_eq!(cond(Arch::Aarch64, "SB"), "exists (0:X2=0 /\\ 1:X2=0)");
    assert_eq!(cond(Arch::Aarch64, "2+2W"), "exists ([x]=2 /\\ [y]=2)");
    assert_eq!(cond(Arch::Aarch64, "R"), "exists ([y]=2 /\\ 1:X2=0)");
    assert_eq!(cond(Arch::Aarch64, "S"), "exists ([x]=2 /\\ 1:X0=1)");
    assert_eq!(
        cond(Arch::Aarch64, "MP+rel+acq"),
        "exists (1:X2=1 /\\ 1:X0=0)"
    );
    assert_eq!(cond(Arch::Aarch64, "CoRR"), "exists (1:X1=1 /\\ 1:X2=0)");
    assert_eq!(cond(Arch::Aarch64, "CoWW"), "exists ([x]=1)");
    assert_eq!(cond(Arch::X86_64, "SB"), "exists (0:rax=0 /\\ 1:rax=0)");
    assert_eq!(cond(Arch::X86_64, "MP"), "exists (1:rax=1 /\\ 1:rbx=0)");
    assert_eq!(cond(Arch::X86_64, "S"), "exists ([x]=2 /\\ 1:rax=1)");
    assert_eq!(
        cond(Arch::X86_64, "WRC"),
        "exists (1:rax=1 /\\ 2:rax=1 /\\ 2:rbx=0)"
    );
    let sb = &litmus::tests(Arch::X86_64)[0];
    assert_eq!(sb.outcome(&[0, 1]), "0:rax=0; 1:rax=1;");
}
