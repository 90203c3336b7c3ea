//! `atomprobe image --litmus FILE|DIR|@list...`: the image's kernel runs the given herdtools7
//! `.litmus` files instead of the built-in litmus tests, so a real board runs the same files as
//! `atomprobe litmus` does in QEMU or hosted. The steps are `litmus`'s
//! ([`crate::litmus_cmd`]): parse and translate every file (a file that cannot be taken is
//! refused alone, with its reason), write the generated module, build the kernel with it
//! (`target/litmus/kernel`). All files are parsed and translated before anything is built or
//! written, so an input without a single usable test fails at once and leaves no image behind.

use std::path::{Path, PathBuf};

use probes::litmus::parse::FileArch;

use crate::litmus_cmd::{
    build_litmus_kernel, expand_inputs, file_arch, load_kinds, load_states, no_test_error,
    prepare_with, print_refusals, write_module, Refusal,
};
use crate::litmus_gen::GenTest;
use crate::profile::Board;
use crate::RunError;

/// The translated tests of `--litmus`, per architecture the image has a kernel for.
pub struct ImageLitmus {
    /// (architecture, its tests), one entry per architecture asked for; a list may be empty.
    pub sets: Vec<(FileArch, Vec<GenTest>)>,
    /// Files not taken, with the reason (already printed on stderr).
    pub refused: Vec<Refusal>,
    /// How many files the inputs named.
    pub files: usize,
    /// The inputs as given (named in the generated module's header).
    pub origin: String,
}

impl ImageLitmus {
    /// Expand, parse and translate `inputs` for an image with kernels for `archs` (the rpi4
    /// card: AArch64; the UEFI stick: both, each file going to the kernel of the architecture
    /// its header names). Prints every refusal; fails when no test at all remains.
    pub fn prepare(
        inputs: &[String],
        kinds: Option<&Path>,
        states: Option<&Path>,
        archs: &[FileArch],
    ) -> Result<ImageLitmus, RunError> {
        let paths = expand_inputs(inputs)?;
        let kinds = load_kinds(kinds)?;
        let states = load_states(states)?;
        let mut per_arch: Vec<(FileArch, Vec<PathBuf>)> =
            archs.iter().map(|a| (*a, Vec::new())).collect();
        for p in &paths {
            // A file of another architecture, or one that does not parse, goes to the first
            // list, where `prepare` refuses it with the reason.
            let i = if archs.len() > 1 {
                file_arch(p)
                    .and_then(|a| archs.iter().position(|x| *x == a))
                    .unwrap_or(0)
            } else {
                0
            };
            per_arch[i].1.push(p.clone());
        }
        let mut sets = Vec::new();
        let mut refused = Vec::new();
        for (arch, list) in per_arch {
            let (tests, r) = prepare_with(&list, arch, kinds.as_ref(), states.as_ref());
            refused.extend(r);
            sets.push((arch, tests));
        }
        print_refusals("atomprobe image", &refused);
        if sets.iter().all(|(_, t)| t.is_empty()) {
            return Err(no_test_error(
                paths.len(),
                refused.len(),
                "; no image was written",
            ));
        }
        Ok(ImageLitmus {
            sets,
            refused,
            files: paths.len(),
            origin: inputs.join(" "),
        })
    }

    /// The tests for `arch` (empty when none, or not asked for).
    pub fn tests(&self, arch: FileArch) -> &[GenTest] {
        self.sets
            .iter()
            .find(|(a, _)| *a == arch)
            .map_or(&[], |(_, t)| t.as_slice())
    }

    /// Build `board`'s kernel with `arch`'s tests (module `target/litmus/gen/<name>.rs`); `None`
    /// when no file of `arch` was given (that kernel is the ordinary one, with the built-in
    /// tests).
    pub fn build_kernel(
        &self,
        root: &Path,
        arch: FileArch,
        board: Board,
        name: &str,
    ) -> Result<Option<PathBuf>, RunError> {
        let tests = self.tests(arch);
        if tests.is_empty() {
            return Ok(None);
        }
        let module = write_module(root, name, tests, &self.origin)?;
        build_litmus_kernel(root, board, &module).map(Some)
    }

    /// One line for the image's summary: which tests `arch`'s kernel runs.
    pub fn describe(&self, arch: FileArch) -> String {
        let tests = self.tests(arch);
        if tests.is_empty() {
            return format!(
                "no {} .litmus file given: the built-in litmus tests",
                arch.word()
            );
        }
        let names: Vec<&str> = tests.iter().map(|t| t.name.as_str()).collect();
        format!(
            "{} litmus test{} from .litmus files, instead of the built-in ones: {}",
            tests.len(),
            if tests.len() == 1 { "" } else { "s" },
            names.join(", ")
        )
    }

    /// The line about refused files, if any.
    pub fn refused_line(&self) -> Option<String> {
        (!self.refused.is_empty()).then(|| {
            format!(
                "{} of {} .litmus files refused (each with its reason on stderr): {}",
                self.refused.len(),
                self.files,
                self.refused
                    .iter()
                    .map(|r| r.path.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../probes/tests/fixtures")
    }

    fn s(p: PathBuf) -> String {
        p.display().to_string()
    }

    #[test]
    fn files_go_to_the_kernel_of_their_architecture() {
        let inputs = vec![
            s(fixtures().join("litmus/aarch64/SB.litmus")),
            s(fixtures().join("litmus/x86_64/MP.litmus")),
            s(fixtures().join("litmus-bad/cond-no-eq.litmus")),
        ];
        // The UEFI stick: both architectures.
        let l = ImageLitmus::prepare(&inputs, None, None, &[FileArch::X86_64, FileArch::AArch64])
            .unwrap();
        assert_eq!(l.files, 3);
        let names = |a| {
            l.tests(a)
                .iter()
                .map(|t| t.name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(FileArch::AArch64), ["SB"]);
        assert_eq!(names(FileArch::X86_64), ["MP"]);
        assert_eq!(l.refused.len(), 1);
        assert!(
            l.refused[0].reason.contains("expected `=`"),
            "{:?}",
            l.refused
        );
        assert!(l.refused_line().unwrap().contains("cond-no-eq.litmus"));
        assert!(l.describe(FileArch::AArch64).ends_with("built-in ones: SB"));
        // The Pi: only AArch64; the x86 file is refused, naming the architecture.
        let l = ImageLitmus::prepare(&inputs, None, None, &[FileArch::AArch64]).unwrap();
        assert_eq!(l.tests(FileArch::AArch64).len(), 1);
        assert!(l.tests(FileArch::X86_64).is_empty());
        assert!(l
            .describe(FileArch::X86_64)
            .contains("built-in litmus tests"));
        assert!(
            l.refused.iter().any(|r| r.reason.contains("a X86_64 test")),
            "{:?}",
            l.refused
        );
    }

    /// `--states` reaches the image's tests as it does `atomprobe litmus`'s: a test herd7's
    /// output names carries its allowed final states (judged in the image); a bad states file
    /// is an error before anything is built.
    #[test]
    fn states_file_reaches_the_image_tests() {
        let inputs = vec![
            s(fixtures().join("litmus-hand/AArch64-W+states-wrong.litmus")),
            s(fixtures().join("litmus/aarch64/SB.litmus")),
        ];
        let states = fixtures().join("litmus-hand/mixed-states.txt");
        let l = ImageLitmus::prepare(&inputs, None, Some(&states), &[FileArch::AArch64]).unwrap();
        let tests = l.tests(FileArch::AArch64);
        let get = |n: &str| tests.iter().find(|t| t.name == n).unwrap();
        let (source, rows) = get("W+states-wrong")
            .states
            .as_ref()
            .expect("states attached");
        assert!(source.contains("mixed-states.txt"), "{source}");
        assert_eq!(rows.len(), 1);
        assert!(get("SB").states.is_none());
        let e = ImageLitmus::prepare(
            &inputs,
            None,
            Some(&fixtures().join("litmus-hand/no-such-states.txt")),
            &[FileArch::AArch64],
        )
        .err()
        .expect("missing states file refused");
        assert!(e.to_string().contains("no-such-states.txt"), "{e}");
    }

    #[test]
    fn no_usable_test_is_an_error_naming_the_count() {
        let inputs = vec![
            s(fixtures().join("litmus/x86_64/SB.litmus")),
            s(fixtures().join("litmus-bad/cond-no-eq.litmus")),
        ];
        let e = ImageLitmus::prepare(&inputs, None, None, &[FileArch::AArch64])
            .err()
            .expect("refused");
        assert!(matches!(e, RunError::Usage(_)), "{e}");
        let m = e.to_string();
        assert!(
            m.contains("none of the 2 .litmus files") && m.contains("no image was written"),
            "{m}"
        );
    }
}
