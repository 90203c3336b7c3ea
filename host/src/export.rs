//! `atomprobe export --litmus7 FILE`: a report's `litmus` records as a litmus7 log, the format
//! herdtools7's `mcompare7` and `msum7` read.
//!
//! Each test becomes one block, spelled as litmus7 7.57 prints it (checked against logs written by
//! litmus7 7.57 built on the development machine; see `host/tests/fixtures/litmus7-*.txt` and
//! `host/tests/export_litmus7.rs`):
//!
//! ```text
//! %%%%%%%%%%%%%%%%%%%%%%%%%
//! % Results for SB.litmus %
//! %%%%%%%%%%%%%%%%%%%%%%%%%
//! Test SB Allowed
//! Histogram (4 states)
//! 214   *>0:rax=0; 1:rax=0;
//! 499945:>0:rax=1; 1:rax=0;
//! Ok
//!
//! Witnesses
//! Positive: 214, Negative: 999786
//! Condition exists (0:rax=0 /\ 1:rax=0) is validated
//! Hash=NOHASH
//! Observation SB Sometimes 214 999786
//! Time SB 0.18
//! ```
//!
//! `Allowed` is litmus7's word for an `exists` condition (it is not the model's verdict: litmus7
//! prints `Test SB+mfences Allowed` too). The count is left-aligned in six columns; `*>` marks a
//! state satisfying the condition, `:>` the others. Final values of memory locations are written
//! `[x]=1;`, in states and in the condition, as litmus7 7.57 does (older litmus7 wrote `x=1;`;
//! mcompare7 and msum7 read both as the same location). As in litmus7's logs, the `Time` line is
//! followed directly by the next test's `% Results for` banner, with no blank line; the banner
//! matters, since mcompare7's reader would otherwise take the next `Test` line for one more
//! `key name …` line of the block it is finishing.
//!
//! litmus7's log carries the test's source and generated assembler before `Test`, and the
//! `Cycle=`/`Relax`/`Safe=`/`Generator=`/`Com=`/`Orig=` lines of its header after `Hash=`;
//! atomprobe has no litmus source text, so these are left out (the tools skip them anyway).
//!
//! `Hash=` is the hash litmus7 writes for the same `.litmus` file ([`crate::litmus_hash`]:
//! herdtools7's `lib/testHash.ml` digest of the test's meta-data, initial state, normalised code
//! and observed locations; a file's own `Hash=` line is kept, as litmus7 keeps it), so mcompare7
//! and msum7 line atomprobe's tests up with litmus7's by name *and* hash: mcompare7 stops with
//! `Fatal error: Hash mismatch occured` when two logs give one test name different hashes, and
//! msum7 with `Hash mismatch for test …` (herdtools7 `tools/mcompare.ml`, `tools/logState.ml`
//! `union_hash`). The sources are the `.litmus` files given with `--tests` (what `atomprobe
//! litmus` ran); a test without one takes the hash herdtools7 gives the catalogue test of that
//! name for the report's architecture (`host/src/litmus7-catalogue.hashes`, written by
//! herdtools7's own `mshowhashes7`; the built-in tests carry catalogue names, but that their code
//! is the catalogue's is not checked here), else `NOHASH`, with a note either way. Both
//! tools skip the literal `NOHASH`, as `--no-hash` writes for every test: then logs can be
//! compared and summed with real litmus7 logs and with each other without `-nohash`, at the
//! cost that the tools cannot tell that two tests of one name differ.
//! (An x86-64 and an aarch64 log name their registers differently, so mcompare7's
//! state tables stop at `State mismatch` for them, as they do for two real litmus7 logs of
//! different architectures; `mcompare7 -show v` or `-show W` compares them.)

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use probes::record::{Litmus, Record, Verdict};
use probes::report::ParsedReport;

use crate::compare::{integrity_text, load_report};
use crate::RunError;

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Report (serial log or record file) whose litmus records to write in litmus7's log format.
    #[arg(long = "litmus7", value_name = "FILE")]
    pub litmus7: PathBuf,
    /// Write the log to F instead of stdout.
    #[arg(long, value_name = "F")]
    pub out: Option<PathBuf>,
    /// Memory attribute whose tests to export (a litmus7 log names each test once). Default:
    /// the first attribute the report ran litmus tests on.
    #[arg(long, value_name = "ATTR")]
    pub attr: Option<String>,
    /// Export from a truncated or corrupted report too.
    #[arg(long)]
    pub allow_damaged: bool,
    /// The `.litmus` files the report's tests came from (files, directories, `@lists`, as
    /// `atomprobe litmus` takes them): each test's `Hash=` is litmus7's hash of its file.
    /// Tests without a file take the herdtools7 catalogue's hash of that name, else NOHASH.
    #[arg(long, value_name = "FILE|DIR|@LIST", num_args = 1..)]
    pub tests: Vec<String>,
    /// Write `Hash=NOHASH` for every test (mcompare7/msum7 then match by name only).
    #[arg(long, conflicts_with = "tests")]
    pub no_hash: bool,
}

/// Where each exported test's `Hash=` comes from.
#[derive(Clone, Debug, Default)]
pub struct Hashes {
    /// (architecture as reports spell it, test name) -> (the file's text, its path).
    files: BTreeMap<(String, String), (String, String)>,
    /// `NOHASH` for every test.
    none: bool,
}

/// herdtools7's hashes of the catalogue tests (`arch name hash` lines), written by
/// `mshowhashes7` (see the file's header).
const CATALOGUE_HASHES: &str = include_str!("litmus7-catalogue.hashes");

/// The catalogue's hash of test `name` of `arch` (`aarch64`, `x86_64`; any when empty).
pub fn catalogue_hash(arch: &str, name: &str) -> Option<&'static str> {
    let mut found = CATALOGUE_HASHES
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?, w.next()?, w.next()?))
        })
        .filter(|(a, n, _)| *n == name && (arch.is_empty() || *a == arch))
        .map(|(_, _, h)| h);
    // Without an architecture, only a name the catalogue has once.
    match (found.next(), found.next()) {
        (Some(h), None) => Some(h),
        _ => None,
    }
}

impl Hashes {
    /// `NOHASH` for every test.
    pub fn nohash() -> Hashes {
        Hashes {
            none: true,
            ..Hashes::default()
        }
    }

    /// The tests in `inputs` (expanded as `atomprobe litmus` expands them), by name. A file
    /// that cannot be read or has no header line is an error naming it; a file's hash is
    /// computed when its test is exported, so a file of another architecture in a directory
    /// does no harm unless the report has its test.
    pub fn from_inputs(inputs: &[String]) -> Result<Hashes, String> {
        let paths = crate::litmus_cmd::expand_inputs(inputs).map_err(|e| e.to_string())?;
        let mut files: BTreeMap<(String, String), (String, String)> = BTreeMap::new();
        for p in paths {
            let shown = p.display().to_string();
            let src = std::fs::read_to_string(&p)
                .map_err(|e| format!("--tests {shown}: cannot read: {e}"))?;
            let header = src.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            let mut words = header.split_whitespace();
            let (Some(arch), Some(name)) = (words.next(), words.next()) else {
                return Err(format!(
                    "--tests {shown}: no header line (architecture, name)"
                ));
            };
            // Reports spell the architectures `aarch64` and `x86_64`.
            let arch = arch.to_ascii_lowercase();
            let name = name.trim_end_matches(';');
            let name = name.strip_suffix(".litmus").unwrap_or(name).to_string();
            let key = (arch, name.clone());
            if let Some((other, f)) = files.get(&key) {
                // Two files for one name: litmus7 refuses them when their hashes differ
                // (`Different hashes for test`, herdtools7 `lib/testHash.ml` `check_env`).
                let h = |t: &str, f: &str| {
                    crate::litmus_hash::litmus7_hash(t)
                        .map_err(|e| format!("--tests {f}: litmus7's hash: {e}"))
                };
                if h(other, f)? != h(&src, &shown)? {
                    return Err(format!(
                        "--tests: test {name} has different hashes in {f} and {shown}"
                    ));
                }
                continue;
            }
            files.insert(key, (src, shown));
        }
        Ok(Hashes { files, none: false })
    }

    /// The `Hash=` value for test `name` of `arch`, with a note when it is not from a given
    /// file; an error naming the file and the construct when its hash cannot be computed.
    fn lookup(&self, arch: &str, name: &str, notes: &mut Vec<String>) -> Result<String, String> {
        if self.none {
            return Ok(NO_HASH.to_string());
        }
        // The file of this architecture, or without one (no begin record) the only file of
        // that name.
        let mut of_name = self
            .files
            .iter()
            .filter(|((a, n), _)| n == name && (arch.is_empty() || a == arch));
        let file = match (of_name.next(), of_name.next()) {
            (Some((_, f)), None) => Some(f),
            _ => None,
        };
        if let Some((src, f)) = file {
            return crate::litmus_hash::litmus7_hash(src)
                .map_err(|e| format!("--tests {f}: litmus7's hash: {e}"));
        }
        if let Some(h) = catalogue_hash(arch, name) {
            notes.push(format!(
                "{name}: no --tests file; Hash= is herdtools7's hash of the catalogue test {name}"
            ));
            return Ok(h.to_string());
        }
        notes.push(format!(
            "{name}: no --tests file and no catalogue test of that name: Hash={NO_HASH}"
        ));
        Ok(NO_HASH.to_string())
    }
}

/// One `loc=value` term of a condition or state.
fn terms(s: &str) -> Result<Vec<(String, String)>, String> {
    s.split([';'])
        .flat_map(|t| t.split("/\\"))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            let (l, v) = t
                .split_once('=')
                .ok_or_else(|| format!("`{t}` is not loc=value"))?;
            Ok((unbracket(l.trim()), v.trim().to_string()))
        })
        .collect()
}

fn unbracket(loc: &str) -> String {
    loc.strip_prefix('[')
        .and_then(|l| l.strip_suffix(']'))
        .unwrap_or(loc)
        .to_string()
}

/// The conjunction inside `exists (…)`, as terms.
pub fn condition_terms(cond: &str) -> Result<Vec<(String, String)>, String> {
    let inner = cond
        .trim()
        .strip_prefix("exists")
        .map(str::trim)
        .and_then(|c| c.strip_prefix('('))
        .and_then(|c| c.strip_suffix(')'))
        .ok_or_else(|| format!("condition `{cond}` is not `exists (…)`"))?;
    if inner.contains("\\/") || inner.contains('~') {
        return Err(format!(
            "condition `{cond}`: only conjunctions (/\\) of loc=value are supported"
        ));
    }
    terms(inner)
}

/// A location in litmus7 7.57's spelling: registers `0:rax`, memory locations `[x]`.
fn litmus7_loc(loc: &str) -> String {
    if loc.contains(':') {
        loc.to_string()
    } else {
        format!("[{loc}]")
    }
}

/// A state in litmus7's spelling: `0:rax=0; 1:rax=0;`, `1:rax=0; [y]=1;`.
pub fn litmus7_state(outcome: &str) -> Result<String, String> {
    Ok(terms(outcome)?
        .iter()
        .map(|(l, v)| format!("{}={v};", litmus7_loc(l)))
        .collect::<Vec<_>>()
        .join(" "))
}

/// A condition in litmus7's spelling: `exists (0:rax=0 /\ 1:rax=0)`, `exists ([x]=2 /\ [y]=2)`.
pub fn litmus7_condition(cond: &str) -> Result<String, String> {
    Ok(format!(
        "exists ({})",
        condition_terms(cond)?
            .iter()
            .map(|(l, v)| format!("{}={v}", litmus7_loc(l)))
            .collect::<Vec<_>>()
            .join(" /\\ ")
    ))
}

/// What the `Hash=` line says: mcompare7 and msum7 skip this value when matching tests across
/// logs (see the module documentation).
pub const NO_HASH: &str = "NOHASH";

/// Whether litmus7's log reader (herdtools7 `tools/lexLog_tools.mll`, `testname`) reads `name`
/// whole as a test name.
pub fn is_litmus7_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_/.-+[]".contains(c))
}

/// Whether a state satisfies the condition's terms.
pub fn satisfies(state: &[(String, String)], cond: &[(String, String)]) -> bool {
    cond.iter()
        .all(|(l, v)| state.iter().any(|(sl, sv)| sl == l && sv == v))
}

/// One test's block in litmus7's log format, with `hash` on its `Hash=` line.
pub fn block(l: &Litmus, hash: &str) -> Result<String, String> {
    if !is_litmus7_name(&l.name) {
        return Err(format!(
            "test name `{}` has characters litmus7's log reader does not take in a name",
            l.name
        ));
    }
    let cond = condition_terms(&l.condition).map_err(|e| format!("{}: {e}", l.name))?;
    let cond_text = litmus7_condition(&l.condition).map_err(|e| format!("{}: {e}", l.name))?;
    let mut states = Vec::new();
    let (mut pos, mut total) = (0u64, 0u64);
    for h in l.histogram.iter().filter(|h| h.count > 0) {
        let st = terms(&h.outcome).map_err(|e| format!("{}: {e}", l.name))?;
        let hit = satisfies(&st, &cond);
        if hit {
            pos += h.count;
        }
        total += h.count;
        states.push((h.count, hit, litmus7_state(&h.outcome)?));
    }
    let neg = total - pos;
    let mut s = String::new();
    let banner = format!("% Results for {}.litmus %", l.name);
    let rule = "%".repeat(banner.chars().count());
    let _ = writeln!(s, "{rule}\n{banner}\n{rule}");
    let _ = writeln!(s, "Test {} Allowed", l.name);
    let _ = writeln!(s, "Histogram ({} states)", states.len());
    for (count, hit, st) in &states {
        let _ = writeln!(s, "{count:<6}{}>{st}", if *hit { '*' } else { ':' });
    }
    let validated = pos > 0;
    let _ = writeln!(s, "{}", if validated { "Ok" } else { "No" });
    let _ = writeln!(s);
    let _ = writeln!(s, "Witnesses");
    let _ = writeln!(s, "Positive: {pos}, Negative: {neg}");
    let _ = writeln!(
        s,
        "Condition {cond_text} is {}validated",
        if validated { "" } else { "NOT " }
    );
    let _ = writeln!(s, "Hash={hash}");
    let obs = if pos == 0 {
        "Never"
    } else if neg == 0 {
        "Always"
    } else {
        "Sometimes"
    };
    let _ = writeln!(s, "Observation {} {obs} {pos} {neg}", l.name);
    let _ = writeln!(s, "Time {} {:.2}", l.name, l.elapsed_ms as f64 / 1000.0);
    Ok(s)
}

/// The litmus7 log of `report`'s litmus records on `attr` (or the first attribute with litmus
/// records); also returns notes about what was left out.
pub fn litmus7_log(
    report: &ParsedReport,
    attr: Option<&str>,
    source: &str,
    hashes: &Hashes,
) -> Result<(String, Vec<String>), String> {
    let lit: Vec<&Litmus> = report
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Litmus(l) => Some(l),
            _ => None,
        })
        .collect();
    if lit.is_empty() {
        return Err(format!(
            "{source} has no litmus records (run the litmus family, e.g. `atomprobe host \
             --probes litmus`)"
        ));
    }
    let mut attrs: Vec<&str> = Vec::new();
    for l in &lit {
        if l.verdict != Verdict::Skipped && !attrs.contains(&l.attr.as_str()) {
            attrs.push(&l.attr);
        }
    }
    let chosen = match attr {
        Some(a) if attrs.contains(&a) => a.to_string(),
        Some(a) => {
            return Err(format!(
                "--attr {a}: {source} has no litmus test that ran on {a}; attributes with \
                 results: {}",
                if attrs.is_empty() {
                    "none".to_string()
                } else {
                    attrs.join(", ")
                }
            ))
        }
        None => match attrs.first() {
            Some(a) => a.to_string(),
            None => {
                return Err(format!(
                    "{source}: every litmus test was skipped; nothing to export"
                ))
            }
        },
    };
    let mut notes = Vec::new();
    if attrs.len() > 1 {
        notes.push(format!(
            "exported the tests on {chosen}; the report also has {} (choose with --attr)",
            attrs
                .iter()
                .filter(|a| **a != chosen)
                .copied()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut out = String::new();
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    for l in lit.iter().filter(|l| l.attr == chosen) {
        if l.verdict == Verdict::Skipped {
            notes.push(format!(
                "{} skipped in the report ({}): left out",
                l.name,
                l.reason.as_deref().unwrap_or("no reason given")
            ));
            continue;
        }
        *names.entry(&l.name).or_default() += 1;
        if names[l.name.as_str()] > 1 {
            notes.push(format!(
                "{} appears more than once on {chosen}: only the first is exported",
                l.name
            ));
            continue;
        }
        let arch = report
            .records
            .iter()
            .find_map(|r| match r {
                Record::Begin(b) => Some(b.arch.as_str()),
                _ => None,
            })
            .unwrap_or("");
        let hash = hashes.lookup(arch, &l.name, &mut notes)?;
        let b = block(l, &hash)?;
        let sum: u64 = l.histogram.iter().map(|h| h.count).sum();
        if sum != l.iterations {
            notes.push(format!(
                "{}: histogram counts sum to {sum}, the record says {} iterations; the log uses \
                 the histogram",
                l.name, l.iterations
            ));
        }
        out.push_str(&b);
    }
    let begin = report.records.iter().find_map(|r| match r {
        Record::Begin(b) => Some(b),
        _ => None,
    });
    if let Some(b) = begin {
        let _ = writeln!(
            out,
            "Revision atomprobe {}, board {}, {} (exported from {source}, attribute {chosen})",
            b.version, b.board, b.arch
        );
        let _ = writeln!(out, "Command line: atomprobe {}", b.cmdline);
    }
    Ok((out, notes))
}

/// Run `atomprobe export`; returns the exit status.
pub fn cmd_export(a: ExportArgs) -> Result<i32, RunError> {
    let report = load_report(&a.litmus7)?;
    let source = a.litmus7.display().to_string();
    if !report.integrity.is_verified() && !a.allow_damaged {
        eprintln!(
            "atomprobe export: refusing to export {source}: it is {}; recapture it, or pass \
             --allow-damaged to export it anyway",
            integrity_text(&report.integrity)
        );
        return Ok(crate::cli::EXIT_FAIL);
    }
    let hashes = if a.no_hash {
        Hashes::nohash()
    } else {
        Hashes::from_inputs(&a.tests).map_err(RunError::Usage)?
    };
    let (log, notes) =
        litmus7_log(&report, a.attr.as_deref(), &source, &hashes).map_err(RunError::Io)?;
    for n in &notes {
        eprintln!("atomprobe export: {n}");
    }
    match &a.out {
        Some(p) => std::fs::write(p, &log)
            .map_err(|e| RunError::Io(format!("cannot write --out {}: {e}", p.display())))?,
        None => crate::cli::out(format_args!("{log}")),
    }
    Ok(0)
}

/// A test block read back from a litmus7 log (the fields mcompare7/msum7 use).
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub name: String,
    /// `Allowed`, `Required` or `Forbidden`.
    pub kind: String,
    /// (count, satisfies the condition, state text).
    pub states: Vec<(u64, bool, String)>,
    /// `Ok` (true) or `No`.
    pub ok: bool,
    pub positive: u64,
    pub negative: u64,
    /// The condition text, e.g. `exists (0:rax=0 /\ 1:rax=0)`.
    pub condition: String,
    pub validated: bool,
    pub hash: Option<String>,
    /// `Always`, `Sometimes` or `Never`, and its two counts.
    pub observation: (String, u64, u64),
    pub time: Option<f64>,
}

/// Parse the test blocks of a litmus7 log. Lines outside blocks (the test source, generated
/// assembler, machine description) are skipped; inside a block every line must have its exact
/// litmus7 shape, or the error names the line.
pub fn parse_litmus7(text: &str) -> Result<Vec<Block>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    let bad = |n: usize, what: &str, line: &str| format!("line {}: {what}: `{line}`", n + 1);
    while i < lines.len() {
        let Some(rest) = lines[i].strip_prefix("Test ") else {
            i += 1;
            continue;
        };
        let (name, kind) = rest
            .rsplit_once(' ')
            .ok_or_else(|| bad(i, "expected `Test NAME KIND`", lines[i]))?;
        if !["Allowed", "Required", "Forbidden"].contains(&kind) {
            return Err(bad(i, "kind is not Allowed|Required|Forbidden", lines[i]));
        }
        i += 1;
        let n: usize = lines
            .get(i)
            .and_then(|l| l.strip_prefix("Histogram ("))
            .and_then(|l| l.strip_suffix(" states)"))
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| {
                bad(
                    i,
                    "expected `Histogram (N states)`",
                    lines.get(i).unwrap_or(&""),
                )
            })?;
        i += 1;
        let mut states = Vec::new();
        for _ in 0..n {
            let l = lines.get(i).copied().unwrap_or("");
            let at = l
                .find("*>")
                .or_else(|| l.find(":>"))
                .ok_or_else(|| bad(i, "expected `COUNT *>STATE` or `COUNT :>STATE`", l))?;
            let count_field = &l[..at];
            let count: u64 = count_field
                .trim_end()
                .parse()
                .map_err(|_| bad(i, "count is not a number", l))?;
            let digits = count.to_string().len();
            if count_field.len() != digits.max(6) || count_field.starts_with(' ') {
                return Err(bad(i, "count is not left-aligned in 6 columns", l));
            }
            let state = &l[at + 2..];
            if !state.ends_with(';') || terms(state).is_err() {
                return Err(bad(i, "state is not `loc=value; …;`", l));
            }
            states.push((count, &l[at..at + 1] == "*", state.to_string()));
            i += 1;
        }
        let ok = match lines.get(i).copied() {
            Some("Ok") => true,
            Some("No") => false,
            l => return Err(bad(i, "expected Ok or No", l.unwrap_or(""))),
        };
        i += 1;
        if lines.get(i) != Some(&"") || lines.get(i + 1) != Some(&"Witnesses") {
            return Err(bad(
                i,
                "expected an empty line, then Witnesses",
                lines.get(i).unwrap_or(&""),
            ));
        }
        i += 2;
        let wl = lines.get(i).copied().unwrap_or("");
        let (positive, negative) = wl
            .strip_prefix("Positive: ")
            .and_then(|r| r.split_once(", Negative: "))
            .and_then(|(p, n)| Some((p.parse().ok()?, n.parse().ok()?)))
            .ok_or_else(|| bad(i, "expected `Positive: P, Negative: N`", wl))?;
        i += 1;
        let cl = lines.get(i).copied().unwrap_or("");
        let (condition, validated) = cl
            .strip_prefix("Condition ")
            .and_then(|c| {
                c.strip_suffix(" is NOT validated")
                    .map(|c| (c, false))
                    .or_else(|| c.strip_suffix(" is validated").map(|c| (c, true)))
            })
            .ok_or_else(|| bad(i, "expected `Condition … is [NOT ]validated`", cl))?;
        i += 1;
        let mut hash = None;
        let mut observation = None;
        let mut time = None;
        // Hash, then optional litmus7 lines (Cycle=, Relax, Safe=, Generator=, Com=, Orig=),
        // then Observation and Time. litmus7 ends the block with Time and goes straight on to
        // the next test's `%` banner or to the log's trailer (`Revision …`).
        while let Some(&l) = lines.get(i) {
            if l.is_empty() || l.starts_with('%') || l.starts_with("Test ") {
                break;
            }
            if let Some(h) = l.strip_prefix("Hash=") {
                let md5 = h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit());
                if !md5 && h != NO_HASH {
                    return Err(bad(i, "hash is neither 32 hex digits nor NOHASH", l));
                }
                hash = Some(h.to_string());
            } else if let Some(r) = l.strip_prefix("Observation ") {
                let f: Vec<&str> = r.split(' ').collect();
                let parsed = match f.as_slice() {
                    [n, k, p, q] if *n == name && ["Always", "Sometimes", "Never"].contains(k) => p
                        .parse()
                        .ok()
                        .zip(q.parse().ok())
                        .map(|(p, q)| (k.to_string(), p, q)),
                    _ => None,
                };
                observation = Some(parsed.ok_or_else(|| {
                    bad(
                        i,
                        "expected `Observation NAME Always|Sometimes|Never P N`",
                        l,
                    )
                })?);
            } else if let Some(r) = l.strip_prefix("Time ") {
                let t = r
                    .strip_prefix(name)
                    .and_then(|t| t.strip_prefix(' '))
                    .and_then(|t| t.parse::<f64>().ok())
                    .ok_or_else(|| bad(i, "expected `Time NAME SECONDS`", l))?;
                time = Some(t);
                i += 1;
                break;
            }
            i += 1;
        }
        let observation = observation
            .ok_or_else(|| format!("test {name}: no `Observation` line before the block's end"))?;
        blocks.push(Block {
            name: name.to_string(),
            kind: kind.to_string(),
            states,
            ok,
            positive,
            negative,
            condition: condition.to_string(),
            validated,
            hash,
            observation,
            time,
        });
    }
    Ok(blocks)
}

/// The consistency litmus7's own logs have: counts add up, `*` marks exactly the states
/// satisfying the condition, Ok/validated/Observation agree.
pub fn check_block(b: &Block) -> Result<(), String> {
    let cond = condition_terms(&b.condition)?;
    let total: u64 = b.states.iter().map(|s| s.0).sum();
    let pos: u64 = b.states.iter().filter(|s| s.1).map(|s| s.0).sum();
    for (_, hit, st) in &b.states {
        if satisfies(&terms(st)?, &cond) != *hit {
            return Err(format!("{}: state `{st}` marked wrongly", b.name));
        }
    }
    if b.positive != pos || b.positive + b.negative != total {
        return Err(format!(
            "{}: Positive/Negative do not match the histogram",
            b.name
        ));
    }
    if b.ok != b.validated || b.validated != (pos > 0) {
        return Err(format!("{}: Ok/No and validated disagree", b.name));
    }
    let want = if pos == 0 {
        "Never"
    } else if b.negative == 0 {
        "Always"
    } else {
        "Sometimes"
    };
    if b.observation != (want.to_string(), b.positive, b.negative) {
        return Err(format!("{}: Observation line disagrees", b.name));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use probes::record::{HistogramEntry, ModelVerdict, RunStatus};
    use probes::report::{parse_report, ReportWriter};

    const SAMPLE: &str = include_str!("../tests/fixtures/litmus7-x86_64-sample.txt");

    fn lit(name: &str, attr: &str, hist: &[(&str, u64)], cond: &str) -> Litmus {
        let observed = hist
            .iter()
            .filter(|(o, _)| satisfies(&terms(o).unwrap(), &condition_terms(cond).unwrap()))
            .map(|(_, c)| c)
            .sum();
        Litmus {
            name: name.into(),
            attr: attr.into(),
            cpus: vec![0, 1],
            iterations: hist.iter().map(|(_, c)| c).sum(),
            histogram: hist
                .iter()
                .map(|(o, c)| HistogramEntry {
                    outcome: o.to_string(),
                    count: *c,
                })
                .collect(),
            condition: cond.into(),
            observed,
            model: ModelVerdict::Allowed,
            verdict: Verdict::Ok,
            elapsed_ms: 1234,
            iter_per_s: 1,
            relaxed_per_s: 1,
            rule: String::new(),
            reason: None,
            map: Default::default(),
        }
    }

    #[test]
    fn sample_blocks_parse_with_their_fields() {
        let blocks = parse_litmus7(SAMPLE).unwrap();
        let names: Vec<&str> = blocks.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["SB", "SB+mfences", "MP"]);
        let sb = &blocks[0];
        assert_eq!(sb.kind, "Allowed");
        assert_eq!(sb.states.len(), 4);
        assert_eq!(sb.states[0], (214, true, "0:rax=0; 1:rax=0;".to_string()));
        assert_eq!(sb.states[3], (5, false, "0:rax=1; 1:rax=1;".to_string()));
        assert!(sb.ok && sb.validated);
        assert_eq!((sb.positive, sb.negative), (214, 999786));
        assert_eq!(sb.condition, "exists (0:rax=0 /\\ 1:rax=0)");
        assert_eq!(sb.hash.as_deref(), Some("055f9747fd517835a93f2f188e15e163"));
        assert_eq!(sb.observation, ("Sometimes".to_string(), 214, 999786));
        assert_eq!(sb.time, Some(0.18));
        let sbm = &blocks[1];
        assert_eq!(sbm.kind, "Allowed");
        assert!(!sbm.ok && !sbm.validated);
        assert_eq!(sbm.observation, ("Never".to_string(), 0, 1_000_000));
        assert_eq!(blocks[2].states.len(), 3);
        for b in &blocks {
            check_block(b).unwrap();
        }
    }

    #[test]
    fn parser_rejects_misshapen_blocks() {
        let sb = &SAMPLE[SAMPLE.find("Test SB Allowed").unwrap()..];
        let sb = &sb[..sb.find("\n\n%%%").unwrap() + 1];
        parse_litmus7(sb).unwrap();
        for (from, to, why) in [
            ("214   *>", "214 *>", "6 columns"),
            ("Histogram (4 states)", "Histogram 4", "Histogram"),
            (
                "Positive: 214, Negative",
                "Positive 214, Negative",
                "Positive",
            ),
            ("is validated", "validated", "Condition"),
            (
                "Observation SB Sometimes",
                "Observation SB Often",
                "Observation",
            ),
            ("Hash=055f", "Hash=zz5f", "hash"),
            ("\nOk\n", "\nYes\n", "Ok or No"),
        ] {
            let e = parse_litmus7(&sb.replacen(from, to, 1)).unwrap_err();
            assert!(e.contains(why), "{from}: {e}");
        }
    }

    #[test]
    fn export_round_trips_in_litmus7_shapes() {
        let sb = lit(
            "SB",
            "wb",
            &[
                ("0:rax=0; 1:rax=0;", 214),
                ("0:rax=1; 1:rax=0;", 499945),
                ("0:rax=0; 1:rax=1;", 499836),
                ("0:rax=1; 1:rax=1;", 5),
            ],
            "exists (0:rax=0 /\\ 1:rax=0)",
        );
        let mp = lit(
            "MP",
            "wb",
            &[
                ("1:rax=0; 1:rbx=0;", 10),
                ("1:rax=1; 1:rbx=0;", 0),
                ("1:rax=1; 1:rbx=1;", 1234567),
            ],
            "exists (1:rax=1 /\\ 1:rbx=0)",
        );
        let w = lit(
            "2+2W",
            "wb",
            &[("[x]=1; [y]=1;", 3)],
            "exists ([x]=1 /\\ [y]=1)",
        );
        let mut skipped = lit("IRIW", "wb", &[], "exists (1:rax=1 /\\ 1:rbx=0)");
        skipped.verdict = Verdict::Skipped;
        let on_uc = lit(
            "SB",
            "uc",
            &[("0:rax=0; 1:rax=0;", 1)],
            "exists (0:rax=0 /\\ 1:rax=0)",
        );
        let mut wr = ReportWriter::new();
        let mut text = String::new();
        for r in [sb, mp, w, skipped, on_uc] {
            text.push_str(&wr.encode(&Record::Litmus(r)));
            text.push('\n');
        }
        text.push_str(&wr.end(RunStatus::Complete, 1).to_line());
        let rep = parse_report(&text);
        assert!(rep.integrity.is_verified());

        let (log, notes) = litmus7_log(&rep, None, "r.log", &Hashes::nohash()).unwrap();
        assert!(
            notes.iter().any(|n| n.contains("IRIW skipped")),
            "{notes:?}"
        );
        assert!(notes.iter().any(|n| n.contains("also has uc")), "{notes:?}");
        assert!(log.contains("\nTest SB Allowed\nHistogram (4 states)\n214   *>0:rax=0; 1:rax=0;\n499945:>0:rax=1; 1:rax=0;\n"), "{log}");
        assert!(log.contains("1234567:>1:rax=1; 1:rbx=1;\n"), "{log}");
        assert!(log.contains("Observation 2+2W Always 3 0\n"), "{log}");
        assert!(log.contains("3     *>[x]=1; [y]=1;\n"), "{log}");
        assert!(
            log.contains("Condition exists ([x]=1 /\\ [y]=1) is validated\n"),
            "{log}"
        );
        // litmus7 goes from a block's Time line straight to the next banner.
        assert!(
            log.contains("Time SB 1.23\n%%%%%%%%%%%%%%%%%%%%%%%%%\n% Results for MP.litmus %\n"),
            "{log}"
        );
        assert!(log.contains("% Results for SB.litmus %\n"), "{log}");

        let blocks = parse_litmus7(&log).unwrap();
        let names: Vec<&str> = blocks.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["SB", "MP", "2+2W"]);
        for b in &blocks {
            check_block(b).unwrap();
            assert_eq!(b.kind, "Allowed");
            assert_eq!(b.hash.as_deref(), Some(NO_HASH));
            assert_eq!(b.time, Some(1.23));
        }
        // The same field shapes as the sample's blocks.
        let sample = parse_litmus7(SAMPLE).unwrap();
        assert_eq!(blocks[0].states, sample[0].states);
        assert_eq!(
            (
                blocks[0].positive,
                blocks[0].negative,
                &blocks[0].observation
            ),
            (
                sample[0].positive,
                sample[0].negative,
                &sample[0].observation
            )
        );
        assert_eq!(blocks[0].condition, sample[0].condition);
        assert_eq!(blocks[1].observation, ("Never".to_string(), 0, 1234577));
        assert!(!blocks[1].ok && !blocks[1].validated);
        // Zero-count states are left out, as litmus7 only lists states it saw.
        assert_eq!(blocks[1].states.len(), 2);

        let (uc, _) = litmus7_log(&rep, Some("uc"), "r.log", &Hashes::nohash()).unwrap();
        assert_eq!(parse_litmus7(&uc).unwrap().len(), 1);
        let e = litmus7_log(&rep, Some("wc"), "r.log", &Hashes::nohash()).unwrap_err();
        assert!(e.contains("attributes with results: wb, uc"), "{e}");
    }

    #[test]
    fn command_refuses_damaged_and_empty_reports() {
        let dir = std::env::temp_dir().join(format!("atomprobe-export-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut wr = ReportWriter::new();
        let rec = Record::Litmus(lit(
            "SB",
            "wb",
            &[("0:rax=0; 1:rax=0;", 2)],
            "exists (0:rax=0 /\\ 1:rax=0)",
        ));
        let text = format!(
            "{}\n{}\n",
            wr.encode(&rec),
            wr.end(RunStatus::Complete, 1).to_line()
        );
        let good = dir.join("good.log");
        std::fs::write(&good, &text).unwrap();
        let out = dir.join("out.log");
        let args = |f: &PathBuf, allow| ExportArgs {
            litmus7: f.clone(),
            out: Some(out.clone()),
            attr: None,
            allow_damaged: allow,
            tests: Vec::new(),
            no_hash: false,
        };
        assert_eq!(cmd_export(args(&good, false)).unwrap(), 0);
        assert_eq!(
            parse_litmus7(&std::fs::read_to_string(&out).unwrap())
                .unwrap()
                .len(),
            1
        );
        let bad = dir.join("bad.log");
        std::fs::write(&bad, text.replace("\"count\":2", "\"count\":3")).unwrap();
        assert_eq!(
            cmd_export(args(&bad, false)).unwrap(),
            crate::cli::EXIT_FAIL
        );
        assert_eq!(cmd_export(args(&bad, true)).unwrap(), 0);
        let none = dir.join("none.log");
        let wr = ReportWriter::new();
        std::fs::write(
            &none,
            format!("{}\n", wr.end(RunStatus::Complete, 1).to_line()),
        )
        .unwrap();
        let e = cmd_export(args(&none, false)).unwrap_err().to_string();
        assert!(e.contains("no litmus records"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
