//! `atomprobe litmus FILE|DIR|@list... [--board B]`: run herdtools7 `.litmus` files on a board
//! or hosted.
//!
//! The files are parsed (`probes::litmus::parse`) and translated ([`crate::litmus_gen`]) into a
//! Rust module written under `target/litmus/`; the image (or, for `--board host`, the
//! `atomprobe` binary) is built with `ATOMPROBE_LITMUS_GEN` naming it, in its own target
//! directory (so the default image of `atomprobe run` is never replaced), and run with the
//! suite's boot arguments and `probes=litmus`. A file that does not parse or translate is
//! refused alone, with its reason; the rest run. What it prints and saves is what `run` does
//! ([`crate::view`]: progress line, one-screen summary, report always saved, `--raw`,
//! `--quiet`, exit status 2 when boot arguments were not used as given).
//!
//! `atomprobe image --litmus` uses the same steps ([`prepare`], [`write_module`],
//! [`build_litmus_kernel`]) to put the files' tests into an SD-card or UEFI image.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use probes::litmus::parse::{parse, FileArch};
use probes::report::parse_report;

use crate::litmus_gen::{render, shipped_kinds, translate, GenTest, Kinds};
use crate::litmus_states::{StatesFile, TestStates};
use crate::profile::{Board, Profile};
use crate::{RunError, RunOpts};

/// Where `litmus` runs the tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LitmusBoard {
    Virt,
    Raspi4b,
    Pc,
    /// QEMU q35 + OVMF booting the UEFI disk image (x86-64), as a real PC boots the USB stick.
    #[value(name = "pc-uefi")]
    PcUefi,
    /// QEMU virt + the aarch64 UEFI firmware booting the UEFI disk image.
    #[value(name = "virt-uefi")]
    VirtUefi,
    /// OS threads on this machine (`atomprobe host`).
    Host,
}

#[derive(clap::Args, Debug)]
pub struct LitmusArgs {
    /// `.litmus` files, directories (every `.litmus` in them) or `@list` files (one path a
    /// line, relative to the list, `#` comments), as litmus7 reads them.
    #[arg(required = true, value_name = "FILE|DIR|@LIST")]
    pub inputs: Vec<String>,
    #[arg(long, value_enum, default_value = "virt")]
    pub board: LitmusBoard,
    /// Boot arguments (attrs=, iters=, cpus=, …), as for `atomprobe run`; `probes=litmus` is
    /// implied.
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    pub append: Option<String>,
    /// Save the report (its record lines, JSON Lines) to FILE instead of
    /// `reports/<board>-<UTC time>.jsonl`. A run that fails also keeps its whole serial log
    /// beside it (FILE.serial.txt).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub output: crate::view::OutputArgs,
    /// A kinds file (`Name Allow|Forbid|Require` lines, as herd7 writes) judging the tests by
    /// name; checked before the shipped catalogue kinds.
    #[arg(long, value_name = "FILE")]
    pub kinds: Option<PathBuf>,
    /// herd7's output for the tests (`herd7 -model … FILES > FILE`: per test `Test NAME KIND`,
    /// `States N`, the N allowed final states, `Ok`/`No`, …). A test found there (by name) is
    /// judged by its states: an observed outcome that is none of them is a `violation`, even
    /// when the condition did not hold; states are matched on the test's outcome columns (see
    /// docs/probes.md, "Final states from herd7"). Its `Ok`/`No` also gives `model` when no
    /// `--kinds` line matches. Tests not in it are judged as before.
    #[arg(long, value_name = "FILE")]
    pub states: Option<PathBuf>,
    /// Only print `name digest` for each file (the digests the catalogue kinds are tied to).
    #[arg(long)]
    pub digests: bool,
    /// QEMU CPU model (-cpu), instead of the board profile's (e.g. `max` for FEAT_LSE and
    /// FEAT_LRCPC on virt).
    #[arg(long, value_name = "MODEL")]
    pub cpu: Option<String>,
    /// Kill QEMU after S seconds without an end of run.
    #[arg(long, value_name = "S", default_value_t = 600)]
    pub timeout: u64,
}

/// A file that was not run, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    pub path: String,
    pub reason: String,
}

/// Expand the inputs into `.litmus` paths (directories sorted, `@lists` in order).
pub fn expand_inputs(inputs: &[String]) -> Result<Vec<PathBuf>, RunError> {
    let mut out = Vec::new();
    for i in inputs {
        if let Some(list) = i.strip_prefix('@') {
            let lp = Path::new(list);
            let text = std::fs::read_to_string(lp)
                .map_err(|e| RunError::Usage(format!("@{list}: cannot read the list: {e}")))?;
            let dir = lp.parent().unwrap_or(Path::new("."));
            for l in text.lines() {
                let l = l.trim();
                if l.is_empty() || l.starts_with('#') {
                    continue;
                }
                out.push(dir.join(l));
            }
        } else {
            let p = PathBuf::from(i);
            if p.is_dir() {
                let mut v: Vec<PathBuf> = std::fs::read_dir(&p)
                    .map_err(|e| RunError::Usage(format!("{i}: cannot list: {e}")))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "litmus"))
                    .collect();
                v.sort();
                if v.is_empty() {
                    return Err(RunError::Usage(format!("{i}: no .litmus file in it")));
                }
                out.extend(v);
            } else {
                out.push(p);
            }
        }
    }
    Ok(out)
}

/// Parse and translate `paths` for `arch`: the tests and the refusals.
pub fn prepare(
    paths: &[PathBuf],
    arch: FileArch,
    user_kinds: Option<&Kinds>,
) -> (Vec<GenTest>, Vec<Refusal>) {
    prepare_with(paths, arch, user_kinds, None)
}

/// [`prepare`] with herd7's final states (`--states`): a test named there carries its states
/// projected on its columns, and takes its model from them when no `--kinds` line matches.
pub fn prepare_with(
    paths: &[PathBuf],
    arch: FileArch,
    user_kinds: Option<&Kinds>,
    states: Option<&StatesFile>,
) -> (Vec<GenTest>, Vec<Refusal>) {
    let shipped = shipped_kinds(arch);
    let mut kinds: Vec<&Kinds> = Vec::new();
    if let Some(k) = user_kinds {
        kinds.push(k);
    }
    kinds.extend(shipped.iter());
    let mut tests: Vec<GenTest> = Vec::new();
    let mut refused = Vec::new();
    for p in paths {
        let shown = p.display().to_string();
        let mut refuse = |reason: String| {
            refused.push(Refusal {
                path: shown.clone(),
                reason,
            })
        };
        let src = match std::fs::read_to_string(p) {
            Ok(s) => s,
            Err(e) => {
                refuse(format!("cannot read: {e}"));
                continue;
            }
        };
        let f = match parse(&src) {
            Ok(f) => f,
            Err(e) => {
                refuse(e.display(&shown));
                continue;
            }
        };
        if f.arch != arch {
            refuse(format!(
                "a {} test; this board runs {} tests",
                f.arch.word(),
                arch.word()
            ));
            continue;
        }
        if tests.iter().any(|t| t.name == f.name) {
            refuse(format!("a test named {} is already in this run", f.name));
            continue;
        }
        match translate(&f, &src, &kinds) {
            Ok(mut t) => {
                if let Some(ts) = states.and_then(|s| s.get(&f.name).map(|t| (s, t))) {
                    match attach_states(&mut t, &f, ts.0, ts.1, user_kinds) {
                        Ok(()) => {}
                        Err(e) => {
                            refuse(format!("--states: {e}"));
                            continue;
                        }
                    }
                }
                tests.push(t)
            }
            Err(e) => refuse(format!("cannot translate: {e}")),
        }
    }
    (tests, refused)
}

/// Give `t` herd7's states for it (projected on its columns) and, unless the user's kinds
/// judged it, the model herd7's `Ok`/`No` gives.
fn attach_states(
    t: &mut GenTest,
    f: &probes::litmus::parse::LitmusFile,
    file: &StatesFile,
    ts: &TestStates,
    user_kinds: Option<&Kinds>,
) -> Result<(), String> {
    let model = ts.model(f.cond.quant)?;
    let slots: Vec<Vec<&str>> = t
        .threads
        .iter()
        .map(|th| th.slots.iter().map(|s| s.as_str()).collect())
        .collect();
    let slots: Vec<&[&str]> = slots.iter().map(|v| v.as_slice()).collect();
    let p = probes::litmus::file::prepare_parsed(f.clone(), &slots)?;
    let rows = ts.project(f, &p)?;
    let source = format!(
        "{} line {} (--states, matched by name)",
        file.source(),
        ts.line
    );
    if user_kinds.and_then(|k| k.lookup(f)).is_none() {
        t.model = model;
        t.rule = format!(
            "{source}: herd7 says {} for the `{}` condition",
            match ts.ok {
                Some(true) => "Ok",
                Some(false) => "No",
                None => "Undef",
            },
            f.cond.quant.word()
        );
    }
    t.states = Some((source, rows));
    Ok(())
}

fn board_arch(b: LitmusBoard) -> Result<FileArch, RunError> {
    Ok(match b {
        LitmusBoard::Virt | LitmusBoard::Raspi4b | LitmusBoard::VirtUefi => FileArch::AArch64,
        LitmusBoard::Pc | LitmusBoard::PcUefi => FileArch::X86_64,
        LitmusBoard::Host => match std::env::consts::ARCH {
            "aarch64" => FileArch::AArch64,
            "x86_64" => FileArch::X86_64,
            a => {
                return Err(RunError::Usage(format!(
                    "--board host runs on x86_64 or aarch64, not {a}"
                )))
            }
        },
    })
}

/// Write `text` to `path` atomically (never a half-written module).
fn write_atomic(path: &Path, text: &str) -> Result<(), RunError> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)
            .map_err(|e| RunError::Io(format!("cannot create {}: {e}", d.display())))?;
    }
    if std::fs::read_to_string(path).ok().as_deref() == Some(text) {
        return Ok(());
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| RunError::Io(format!("cannot write {}: {e}", path.display())))
}

fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

fn run_build(mut cmd: Command) -> Result<(), RunError> {
    let shown = format!("{cmd:?}");
    let st = cmd
        .status()
        .map_err(|e| RunError::Build(format!("cannot start cargo ({shown}): {e}")))?;
    if !st.success() {
        return Err(RunError::Build(format!("build failed ({st}): {shown}")));
    }
    Ok(())
}

/// Build the kernel for `board` with the generated module; returns the ELF.
pub fn build_litmus_kernel(root: &Path, board: Board, module: &Path) -> Result<PathBuf, RunError> {
    let (profile, _) = Profile::load(board, Some(root))?;
    let tdir = root.join("target/litmus/kernel");
    let mut cmd = Command::new(cargo());
    cmd.current_dir(root)
        .args(["build", "--release", "-p", crate::kernel::KERNEL_PACKAGE])
        .args(["--target", &profile.target, "--features", &profile.feature])
        .arg("--target-dir")
        .arg(&tdir)
        .env("ATOMPROBE_LITMUS_GEN", module);
    run_build(cmd)?;
    let elf = tdir
        .join(&profile.target)
        .join("release")
        .join(crate::kernel::KERNEL_PACKAGE);
    // Boards of one target share the output path: keep a per-board copy (copy, then rename).
    let copy = elf.with_file_name(format!("{}-litmus-{board}", crate::kernel::KERNEL_PACKAGE));
    let tmp = copy.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::copy(&elf, &tmp)
        .and_then(|_| std::fs::rename(&tmp, &copy))
        .map_err(|e| RunError::Build(format!("cannot copy {}: {e}", elf.display())))?;
    Ok(copy)
}

/// Build the hosted runner (`probes/examples/litmus_hosted.rs`) with the generated module
/// (for `--board host`); only the probes crate and its few dependencies are built.
pub fn build_litmus_host(root: &Path, module: &Path) -> Result<PathBuf, RunError> {
    let tdir = root.join("target/litmus/host");
    let mut cmd = Command::new(cargo());
    cmd.current_dir(root)
        .args([
            "build",
            "--release",
            "-p",
            "atomprobe-probes",
            "--features",
            "std",
        ])
        .args(["--example", "litmus_hosted"])
        .arg("--target-dir")
        .arg(&tdir)
        .env("ATOMPROBE_LITMUS_GEN", module);
    run_build(cmd)?;
    Ok(tdir.join("release/examples/litmus_hosted"))
}

/// `--kinds FILE`, read and parsed (matched by name).
pub fn load_kinds(path: Option<&Path>) -> Result<Option<Kinds>, RunError> {
    let Some(k) = path else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(k)
        .map_err(|e| RunError::Usage(format!("--kinds {}: {e}", k.display())))?;
    let shown = k.display().to_string();
    Kinds::parse(
        &text,
        None,
        &format!("kinds file {shown} (--kinds), matched by name"),
    )
    .map(Some)
    .map_err(RunError::Usage)
}

/// The boot arguments of a run (or image) of `.litmus` files: `probes=litmus` and then the
/// user's (a `probes=` of theirs comes later and wins, e.g. `probes=litmus/MP*`).
pub fn litmus_append(user: Option<&str>) -> String {
    format!("probes=litmus {}", user.unwrap_or("").trim())
        .trim()
        .to_string()
}

/// Print each refusal (`who: refused PATH: REASON`) on stderr.
pub fn print_refusals(who: &str, refused: &[Refusal]) {
    for r in refused {
        eprintln!("{who}: refused {}: {}", r.path, r.reason);
    }
}

/// The error when none of `files` gave a test (`refused` of them were refused, each printed).
pub fn no_test_error(files: usize, refused: usize, what: &str) -> RunError {
    RunError::Usage(format!(
        "none of the {files} .litmus file{} gave a test to run ({refused} refused, each with \
         its reason above){what}",
        if files == 1 { "" } else { "s" }
    ))
}

/// The architecture a `.litmus` file's header names; `None` when it cannot be read or parsed
/// ([`prepare`] then refuses it with the reason).
pub fn file_arch(path: &Path) -> Option<FileArch> {
    let src = std::fs::read_to_string(path).ok()?;
    parse(&src).ok().map(|f| f.arch)
}

/// Write the generated module for `tests` as `target/litmus/gen/<name>.rs` (unchanged text is
/// not rewritten, so an unchanged set of files rebuilds nothing); returns its path.
pub fn write_module(
    root: &Path,
    name: &str,
    tests: &[GenTest],
    origin: &str,
) -> Result<PathBuf, RunError> {
    let module = root.join(format!("target/litmus/gen/{name}.rs"));
    write_atomic(&module, &render(tests, origin))?;
    Ok(module)
}

/// What a `litmus` run produced.
#[derive(Debug)]
pub struct LitmusRun {
    /// The report (serial log or hosted records), parsed and checked.
    pub report: probes::report::ParsedReport,
    /// The serial log (hosted: the runner's output) the report was parsed from.
    pub log: String,
    /// The verdict line (board or hosted runner, time, records, integrity, PASS/FAIL).
    pub verdict: String,
    /// How many files the inputs named.
    pub files: usize,
    pub refused: Vec<Refusal>,
    /// The board (or hosted runner) finished and exited successfully, and the report verifies.
    pub finished: bool,
}

pub fn cmd_litmus(a: LitmusArgs) -> Result<i32, RunError> {
    use crate::view;
    if a.digests {
        let paths = expand_inputs(&a.inputs)?;
        for p in &paths {
            let src = std::fs::read_to_string(p)
                .map_err(|e| RunError::Io(format!("{}: {e}", p.display())))?;
            match parse(&src) {
                Ok(f) => crate::outln!("{} {}", f.name, probes::litmus::file::digest(&f)),
                Err(e) => eprintln!("{}", e.display(&p.display().to_string())),
            }
        }
        return Ok(0);
    }
    let mode = a.output.mode();
    view::check_writable(a.out.as_deref())?;
    let board_name = board_name(a.board);
    let mut progress = view::Progress::new(mode, &format!("litmus on {board_name}"));
    let run = run_litmus_with(&a, &mut |line| progress.line(line));
    progress.finish();
    let run = run?;
    let mut verdict = run.verdict.clone();
    if !run.refused.is_empty() {
        verdict.push_str(&format!(
            " {} of {} .litmus files refused (listed above).",
            run.refused.len(),
            run.files
        ));
    }
    view::conclude(
        mode,
        a.out.as_deref(),
        &board_name,
        &run.log,
        &verdict,
        run.finished,
    )
}

/// The board as `--board` spells it (`pc-uefi`), for file names and messages.
fn board_name(b: LitmusBoard) -> String {
    use clap::ValueEnum;
    b.to_possible_value().map_or_else(
        || format!("{b:?}").to_ascii_lowercase(),
        |v| v.get_name().to_string(),
    )
}

/// Read `--states FILE` (herd7's output), if given.
pub fn load_states(path: Option<&Path>) -> Result<Option<StatesFile>, RunError> {
    path.map(|p| StatesFile::load(p).map_err(RunError::Usage))
        .transpose()
}

/// Parse, translate, build and run `a`'s files.
pub fn run_litmus(a: &LitmusArgs) -> Result<LitmusRun, RunError> {
    run_litmus_with(a, &mut |_| {})
}

/// [`run_litmus`], handing each serial line (hosted: each output line) to `on_line` as it
/// arrives (the progress line). With `--raw` the lines are also streamed to stdout.
pub fn run_litmus_with(
    a: &LitmusArgs,
    on_line: &mut dyn FnMut(&str),
) -> Result<LitmusRun, RunError> {
    use crate::view::Mode;
    let mode = a.output.mode();
    let paths = expand_inputs(&a.inputs)?;
    let arch = board_arch(a.board)?;
    let user_kinds = load_kinds(a.kinds.as_deref())?;
    let states = load_states(a.states.as_deref())?;
    let (tests, refused) = prepare_with(&paths, arch, user_kinds.as_ref(), states.as_ref());
    print_refusals("atomprobe litmus", &refused);
    if mode != Mode::Quiet {
        eprintln!(
            "atomprobe litmus: {} file{}, {} to run, {} refused",
            paths.len(),
            if paths.len() == 1 { "" } else { "s" },
            tests.len(),
            refused.len()
        );
    }
    if tests.is_empty() {
        return Err(no_test_error(paths.len(), refused.len(), ""));
    }
    let root = crate::require_root()?;
    let board_name = board_name(a.board);
    let module = write_module(&root, &board_name, &tests, &a.inputs.join(" "))?;
    let append = litmus_append(a.append.as_deref());
    let (log, verdict, finished) = match a.board {
        LitmusBoard::Host => {
            let bin = build_litmus_host(&root, &module)?;
            run_hosted(&bin, &append, mode == Mode::Raw, on_line)?
        }
        b => {
            let board = match b {
                LitmusBoard::Virt => Board::Virt,
                LitmusBoard::Raspi4b => Board::Raspi4b,
                LitmusBoard::PcUefi => Board::PcUefi,
                LitmusBoard::VirtUefi => Board::VirtUefi,
                LitmusBoard::Pc | LitmusBoard::Host => Board::Pc,
            };
            let elf = build_litmus_kernel(&root, board, &module)?;
            let mut opts = RunOpts::new(board);
            opts.kernel = Some(elf);
            opts.cpu = a.cpu.clone();
            opts.append = Some(append);
            opts.timeout = Duration::from_secs(a.timeout);
            opts.echo = mode == Mode::Raw;
            let outcome = crate::run_board_with(&opts, on_line)?;
            if outcome.timed_out && mode != Mode::Quiet {
                eprintln!("{}", outcome.timeout_message());
            }
            let ok = outcome.success();
            (outcome.log.clone(), outcome.verdict(), ok)
        }
    };
    Ok(LitmusRun {
        report: parse_report(&log),
        log,
        verdict,
        files: paths.len(),
        refused,
        finished,
    })
}

/// Run the hosted runner `bin` with the boot-argument line `append`, reading its output line
/// by line (to `on_line`, and to stdout when `raw`); returns (output, verdict, success).
fn run_hosted(
    bin: &Path,
    append: &str,
    raw: bool,
    on_line: &mut dyn FnMut(&str),
) -> Result<(String, String, bool), RunError> {
    let start = Instant::now();
    let mut child = Command::new(bin)
        .arg(append)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| RunError::Io(format!("cannot run {}: {e}", bin.display())))?;
    let mut text = String::new();
    if let Some(out) = child.stdout.take() {
        let mut reader = std::io::BufReader::new(out);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf);
                    text.push_str(&line);
                    let line = line.trim_end_matches(['\r', '\n']);
                    on_line(line);
                    if raw {
                        // A closed stdout must not stop the run: the report is still saved.
                        let mut o = std::io::stdout().lock();
                        let _ = writeln!(o, "{line}").and_then(|()| o.flush());
                    }
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(RunError::Io(format!(
                        "reading the output of {}: {e}",
                        bin.display()
                    )));
                }
            }
        }
    }
    let st = child
        .wait()
        .map_err(|e| RunError::Io(format!("waiting for {}: {e}", bin.display())))?;
    let report = parse_report(&text);
    let ok = st.success() && report.integrity.is_verified();
    let verdict = format!(
        "atomprobe litmus: hosted runner ran {:.1} s: {} records, integrity {}; {st}. \
         Result: {}.",
        start.elapsed().as_secs_f64(),
        report.records.len(),
        crate::compare::integrity_text(&report.integrity),
        if ok { "PASS" } else { "FAIL" }
    );
    Ok((text, verdict, ok))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../probes/tests/fixtures/litmus")
    }

    #[test]
    fn inputs_expand_dirs_lists_and_files() {
        let dir = fixtures().join("x86_64");
        let from_dir = expand_inputs(&[dir.display().to_string()]).unwrap();
        assert_eq!(from_dir.len(), 28);
        assert!(from_dir.windows(2).all(|w| w[0] <= w[1]), "sorted");
        // litmus7's @list: one path a line, relative to the list, `#` comments skipped.
        let list = format!("@{}", dir.join("@all").display());
        let from_list = expand_inputs(&[list]).unwrap();
        assert_eq!(from_list.len(), 28);
        assert!(from_list.iter().all(|p| p.is_file()), "{from_list:?}");
        let one = expand_inputs(&[dir.join("SB.litmus").display().to_string()]).unwrap();
        assert_eq!(one.len(), 1);
        let e = expand_inputs(&["@/nonexistent/list".into()]).unwrap_err();
        assert!(e.to_string().contains("cannot read the list"), "{e}");
    }

    #[test]
    fn generated_module_names_every_test_and_body() {
        let paths = vec![
            fixtures().join("aarch64/MP+rel+acq.litmus"),
            fixtures().join("aarch64/LB+rel+BEQ.litmus"),
        ];
        let (tests, refused) = prepare(&paths, FileArch::AArch64, None);
        assert!(refused.is_empty(), "{refused:?}");
        let m = render(&tests, "test");
        assert!(m.contains("pub static FILE_TESTS: &[FileTest] = &["));
        assert!(m.contains("unsafe fn t1_p1(f: &Frame, out: *mut u64)"));
        assert!(m.contains("name: \"LB+rel+BEQ\""));
        assert!(
            m.contains("model: crate::record::ModelVerdict::Forbidden"),
            "{m}"
        );
        // The branch to `over` became a forward numeric label.
        assert!(m.contains("\"B.EQ 2f\""), "{m}");
        assert!(m.contains("// SAFETY:"));
    }
}
