//! The litmus tests the crate compiles in (`probes::litmus::file::FILE_TESTS`, included from
//! `OUT_DIR/litmus_gen.rs` by `probes/src/litmus/file/mod.rs`):
//!
//! - by default the built-in suite: every file `probes/litmus/<arch>/@all` lists, translated
//!   here by the generator `atomprobe litmus` uses (crate `atomprobe-litmus`) and judged by the
//!   shipped kinds files (herdtools7's catalogue, then `kinds-derived.txt`), so the built-in
//!   tests and a user's `.litmus` files take one path (ARCHITECTURE.md, "Litmus files");
//! - when `ATOMPROBE_LITMUS_GEN` names a module written by `atomprobe litmus`, that module
//!   instead (the user's tests).

use std::env;
use std::fs;
use std::path::Path;

use atomprobe_litmus::gen::{render, shipped_kinds, translate, GenTest};
use atomprobe_litmus::parse::{parse, FileArch};

/// The built-in tests of `dir` (`probes/litmus/<arch>`), in the order of its `@all`.
fn builtin(dir: &Path, arch: FileArch, tests: &mut Vec<GenTest>) {
    let list = dir.join("@all");
    let text = fs::read_to_string(&list)
        .unwrap_or_else(|e| panic!("{}: cannot read the list of tests: {e}", list.display()));
    let kinds = shipped_kinds(arch);
    let kinds: Vec<_> = kinds.iter().collect();
    let mut listed = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        listed.push(line.to_string());
        let path = dir.join(line);
        let shown = path.display().to_string();
        let src = fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{shown} (listed in {}): {e}", list.display()));
        let f = parse(&src).unwrap_or_else(|e| panic!("{}", e.display(&shown)));
        assert!(
            f.arch == arch,
            "{shown}: a {} test in the {} directory",
            f.arch.word(),
            arch.word()
        );
        let t = translate(&f, &src, &kinds)
            .unwrap_or_else(|e| panic!("{shown}: cannot translate: {e}"));
        // A built-in test always has a verdict with its source: a catalogue kinds line or a
        // derived one (kinds-derived.txt), matched by name and by the digest of this text.
        assert!(
            t.model != atomprobe_litmus::Kind::Unknown,
            "{shown}: no kinds line matches {} and this text's digest: add its verdict to \
             {}/kinds-derived.txt and its digest (atomprobe litmus --digests) to \
             kinds-derived.digests",
            f.name,
            dir.display()
        );
        tests.push(t);
    }
    // Every file of the directory runs: a file left out of `@all` is a mistake.
    for e in fs::read_dir(dir).expect("list probes/litmus/<arch>") {
        let name = e.expect("directory entry").file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".litmus") && !listed.iter().any(|l| *l == name) {
            panic!("{}: {name} is not listed in @all", dir.display());
        }
    }
}

fn main() {
    let out = env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let dest = Path::new(&out).join("litmus_gen.rs");
    println!("cargo:rerun-if-env-changed=ATOMPROBE_LITMUS_GEN");
    let text = match env::var("ATOMPROBE_LITMUS_GEN") {
        Ok(path) if !path.is_empty() => {
            println!("cargo:rerun-if-changed={path}");
            fs::read_to_string(&path).unwrap_or_else(|e| {
                panic!("ATOMPROBE_LITMUS_GEN={path}: cannot read the generated litmus module: {e}")
            })
        }
        _ => {
            let root =
                Path::new(&env::var("CARGO_MANIFEST_DIR").expect("cargo sets it")).join("litmus");
            // A directory: cargo reruns when any file under it changes.
            println!("cargo:rerun-if-changed={}", root.display());
            let mut tests = Vec::new();
            builtin(&root.join("aarch64"), FileArch::AArch64, &mut tests);
            builtin(&root.join("x86_64"), FileArch::X86_64, &mut tests);
            render(
                &tests,
                "probes/litmus (the built-in tests, probes/build.rs)",
            )
        }
    };
    // Write only when changed, so an unchanged module does not rebuild the crate.
    if fs::read_to_string(&dest).ok().as_deref() != Some(text.as_str()) {
        fs::write(&dest, text).expect("write OUT_DIR/litmus_gen.rs");
    }
}
