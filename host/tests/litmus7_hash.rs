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
