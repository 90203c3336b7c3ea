//! litmus7's `Hash=` computed by `atomprobe::litmus_hash` against hashes written by herdtools7
//! itself, for every AArch64 and X86_64 test of the catalogue copy in
//! `probes/tests/fixtures/litmus` (CeCILL-B, see `fixtures/LICENSE-herdtools7.txt`).

use std::path::Path;

use atomprobe::litmus_hash::{computed_hash, litmus7_hash, test_name};

fn catalogue() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../probes/tests/fixtures/litmus");
    let mut out = Vec::new();
    for arch in ["aarch64", "x86_64"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(arch))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "litmus"))
            .collect();
        files.sort();
        for f in files {
            let name = format!("{arch}/{}", f.file_name().unwrap().to_string_lossy());
            out.push((name, std::fs::read_to_string(&f).unwrap()));
        }
    }
    out
}

/// The six catalogue files that carry their own `Hash=` line: herdtools7 wrote it from the same
/// text, so recomputing it must give it back.
#[test]
fn recomputed_hash_equals_the_catalogue_files_own_hash_lines() {
    let mut n = 0;
    for (name, src) in catalogue() {
        let Some(own) = src.lines().find_map(|l| l.strip_prefix("Hash=")) else {
            continue;
        };
        n += 1;
        assert_eq!(computed_hash(&src).unwrap(), own.trim(), "{name}");
        assert_eq!(litmus7_hash(&src).unwrap(), own.trim(), "{name}");
    }
    assert_eq!(n, 6);
}

/// herdtools7's own hashes (`fixtures/litmus7-hashes.txt`, written by `mshowhashes7`; its header
/// has the commands): `ARCH/FILE NAME HASH REHASH` lines.
fn reference() -> Vec<(String, String, String, String)> {
    include_str!("fixtures/litmus7-hashes.txt")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(w.len(), 4, "{l}");
            (w[0].into(), w[1].into(), w[2].into(), w[3].into())
        })
        .collect()
}

#[test]
fn every_catalogue_test_hashes_as_herdtools7_hashes_it() {
    let reference = reference();
    let files = catalogue();
    // The reference covers exactly the catalogue copy.
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    let ref_names: Vec<&str> = reference.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(names, ref_names);
    let mut wrong = Vec::new();
    for ((file, src), (_, name, hash, rehash)) in files.iter().zip(&reference) {
        assert_eq!(&test_name(src).unwrap(), name, "{file}");
        match (litmus7_hash(src), computed_hash(src)) {
            (Ok(h), Ok(r)) if &h == hash && &r == rehash => {}
            other => wrong.push(format!("{file}: {other:?}, herdtools7: {hash} {rehash}")),
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {}:\n{}",
        wrong.len(),
        files.len(),
        wrong.join("\n")
    );
}

/// The table `export --litmus7` ships for tests without a `--tests` file is the same list.
#[test]
fn shipped_catalogue_table_is_the_reference() {
    for (file, name, hash, _) in reference() {
        let arch = file.split('/').next().unwrap();
        assert_eq!(
            atomprobe::export::catalogue_hash(arch, &name),
            Some(hash.as_str()),
            "{file}"
        );
    }
}
