//! Generated litmus tests: `ATOMPROBE_LITMUS_GEN` names a Rust file written by `atomprobe
//! litmus` (a `FILE_TESTS` table of `probes::litmus::file::FileTest`); it is copied into
//! `OUT_DIR/litmus_gen.rs`, which `probes/src/litmus/file/mod.rs` includes. Unset: an empty
//! table, and the built-in litmus tables run.

use std::env;
use std::fs;
use std::path::Path;

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
        _ => "/// No generated tests: the built-in tables run.\n\
              pub static FILE_TESTS: &[FileTest] = &[];\n"
            .to_string(),
    };
    // Write only when changed, so an unchanged module does not rebuild the crate.
    if fs::read_to_string(&dest).ok().as_deref() != Some(text.as_str()) {
        fs::write(&dest, text).expect("write OUT_DIR/litmus_gen.rs");
    }
}
