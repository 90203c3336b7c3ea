//! `atomprobe compare A B [C…]`: reports side by side.
//!
//! Each file (a serial log with noise around the records, or a record file) is read with
//! [`parse_report`]; its integrity is printed, and a truncated or corrupted report is refused
//! unless `--allow-damaged`. `probe` records are matched by (family, name, attr, width) and the
//! order in which they occur (a probe run once per CPU appears as `#2`, `#3` …), `litmus`
//! records by (name, attr). The normal cacheable attribute of each architecture (`wb` on x86-64,
//! `normal-wb` on aarch64) is matched as one, so a hosted x86-64 run lines up with an aarch64
//! image run. The `differs` column names where the runs disagree.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use probes::record::{Litmus, Probe, ProbeResult, Record, Verdict};
use probes::report::{parse_report, Integrity, ParsedReport};
use serde_json::{json, Value};

use crate::RunError;

/// Output formats of `compare`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// Aligned plain-text columns.
    #[default]
    Plain,
    /// A Markdown table.
    Md,
    /// One JSON document.
    Json,
}

#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// Two or more reports: serial logs (noise around the records is fine) or record files.
    #[arg(value_name = "REPORT", num_args = 2.., required = true)]
    pub files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "plain")]
    pub format: Format,
    /// Compare truncated or corrupted reports too (their integrity is still printed).
    #[arg(long)]
    pub allow_damaged: bool,
    /// Print only the rows where the reports disagree.
    #[arg(long)]
    pub differs_only: bool,
}

/// Read a report file (UTF-8 text with at least one record line).
pub fn load_report(path: &Path) -> Result<ParsedReport, RunError> {
    let bytes = std::fs::read(path)
        .map_err(|e| RunError::Io(format!("cannot read {}: {e}", path.display())))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        RunError::Io(format!(
            "{} is not UTF-8 text (invalid byte at offset {}): an atomprobe log or record file is \
             UTF-8 text",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })?;
    let report = parse_report(&text);
    if report.lines.is_empty() {
        return Err(RunError::Io(format!(
            "{} has no record lines (lines containing `{{\"type\":`): is it an atomprobe serial \
             log or record file?",
            path.display()
        )));
    }
    Ok(report)
}

/// `Verified`, `Truncated (why)` or `Corrupted (why)`.
pub fn integrity_text(i: &Integrity) -> String {
    match i {
        Integrity::Verified => "Verified".into(),
        Integrity::Truncated(m) => format!("Truncated ({m})"),
        Integrity::Corrupted(m) => format!("Corrupted ({m})"),
    }
}

/// One report in the comparison.
pub struct Input {
    pub label: String,
    pub name: String,
    pub report: ParsedReport,
}

impl Input {
    fn describe(&self) -> (String, String) {
        match self.report.records.iter().find_map(|r| match r {
            Record::Begin(b) => Some(b),
            _ => None,
        }) {
            Some(b) => (b.board.clone(), b.arch.clone()),
            None => ("?".into(), "?".into()),
        }
    }
}

/// What one report says about one row.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Probe {
        result: ProbeResult,
        fault: Option<String>,
        verdict: Verdict,
        counts: Vec<(String, u64)>,
    },
    Litmus {
        observed: u64,
        iterations: u64,
        model: String,
        verdict: Verdict,
    },
}

/// One matched row.
#[derive(Clone, Debug)]
pub struct Row {
    /// `probe` or `litmus`.
    pub kind: &'static str,
    /// Shown key, e.g. `tear/mov-mov-64-aligned wb w64` or `litmus/SB wb`.
    pub key: String,
    pub cells: Vec<Option<Cell>>,
    pub differs: Vec<String>,
    /// For each report, the index in its `records` of the record in this row (views use it to
    /// place the comparison's verdict on their own rendering of the record).
    pub records: Vec<Option<usize>>,
}

fn name_of<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v)
        .unwrap_or_default()
        .trim_matches('"')
        .to_string()
}

/// The attribute as matched: each architecture's normal cacheable memory under one name.
pub fn match_attr(attr: &str) -> &str {
    match attr {
        "normal-wb" => "wb",
        a => a,
    }
}

/// Counters worth showing in a table cell, in this order, when present.
const KEY_COUNTS: &[&str] = &["torn", "lost", "excess", "faults", "cycles_per_op"];

fn probe_cell(p: &Probe) -> Cell {
    Cell::Probe {
        result: p.result,
        fault: p.fault.as_ref().map(|f| f.kind.clone()),
        verdict: p.verdict,
        counts: KEY_COUNTS
            .iter()
            .filter_map(|k| p.counts.get(*k).map(|v| (k.to_string(), *v)))
            .filter(|(k, v)| !(k == "faults" && *v == 0))
            .collect(),
    }
}

fn litmus_cell(l: &Litmus) -> Cell {
    Cell::Litmus {
        observed: l.observed,
        iterations: l.iterations,
        model: name_of(&l.model),
        verdict: l.verdict,
    }
}

impl Cell {
    /// Short text for a table.
    pub fn text(&self) -> String {
        match self {
            Cell::Probe {
                result,
                fault,
                verdict,
                counts,
            } => {
                let mut s = name_of(result);
                if let Some(k) = fault {
                    s.push_str(&format!("({k})"));
                }
                s.push_str(&format!(" {}", name_of(verdict)));
                for (k, v) in counts {
                    s.push_str(&format!(" {k}={v}"));
                }
                s
            }
            Cell::Litmus {
                observed,
                iterations,
                model,
                verdict,
            } => {
                if *verdict == Verdict::Skipped {
                    return format!("skipped ({model})");
                }
                format!(
                    "{observed}/{iterations} ({}) {model} {}",
                    rate_text(*observed, *iterations),
                    name_of(verdict)
                )
            }
        }
    }

    fn skipped(&self) -> bool {
        match self {
            Cell::Probe { result, .. } => *result == ProbeResult::Skipped,
            Cell::Litmus { verdict, .. } => *verdict == Verdict::Skipped,
        }
    }

    fn verdict(&self) -> Verdict {
        match self {
            Cell::Probe { verdict, .. } | Cell::Litmus { verdict, .. } => *verdict,
        }
    }

    fn json(&self) -> Value {
        match self {
            Cell::Probe {
                result,
                fault,
                verdict,
                counts,
            } => json!({
                "result": name_of(result),
                "fault": fault,
                "verdict": name_of(verdict),
                "counts": counts.iter().cloned().collect::<BTreeMap<String, u64>>(),
            }),
            Cell::Litmus {
                observed,
                iterations,
                model,
                verdict,
            } => json!({
                "observed": observed,
                "iterations": iterations,
                "rate": if *iterations == 0 { 0.0 } else { *observed as f64 / *iterations as f64 },
                "model": model,
                "verdict": name_of(verdict),
            }),
        }
    }
}

/// `observed/iterations` as a short rate: `0`, `1.2e-3`, `0.25`.
pub fn rate_text(observed: u64, iterations: u64) -> String {
    if observed == 0 || iterations == 0 {
        return "0".into();
    }
    let r = observed as f64 / iterations as f64;
    if r >= 0.01 {
        format!("{r:.2}")
    } else {
        format!("{r:.1e}")
    }
}

fn list(labels: &[&str]) -> String {
    labels.join(",")
}

/// Where the cells of one row disagree.
pub fn differences(cells: &[Option<Cell>], labels: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let present: Vec<&str> = labels
        .iter()
        .zip(cells)
        .filter(|(_, c)| c.is_some())
        .map(|(l, _)| l.as_str())
        .collect();
    if present.len() < cells.len() {
        out.push(format!("only in {}", list(&present)));
    }
    let live: Vec<(&str, &Cell)> = labels
        .iter()
        .zip(cells)
        .filter_map(|(l, c)| c.as_ref().map(|c| (l.as_str(), c)))
        .collect();
    let skipped: Vec<&str> = live
        .iter()
        .filter(|(_, c)| c.skipped())
        .map(|(l, _)| *l)
        .collect();
    if !skipped.is_empty() && skipped.len() < live.len() {
        out.push(format!("skipped in {}", list(&skipped)));
    }
    let ran: Vec<(&str, &Cell)> = live.into_iter().filter(|(_, c)| !c.skipped()).collect();
    if ran.len() < 2 {
        return out;
    }
    let split = |pred: &dyn Fn(&Cell) -> bool| -> Option<(Vec<&str>, Vec<&str>)> {
        let (yes, no): (Vec<_>, Vec<_>) = ran.iter().partition(|(_, c)| pred(c));
        (!yes.is_empty() && !no.is_empty()).then(|| {
            (
                yes.iter().map(|(l, _)| *l).collect(),
                no.iter().map(|(l, _)| *l).collect(),
            )
        })
    };
    match ran[0].1 {
        Cell::Probe { .. } => {
            let is_fault =
                |c: &Cell| matches!(c, Cell::Probe { result, .. } if *result == ProbeResult::Fault);
            if let Some((y, n)) = split(&is_fault) {
                out.push(format!("fault in {} not {}", list(&y), list(&n)));
            } else {
                let results: Vec<ProbeResult> = ran
                    .iter()
                    .filter_map(|(_, c)| match c {
                        Cell::Probe { result, .. } => Some(*result),
                        _ => None,
                    })
                    .collect();
                if results.windows(2).any(|w| w[0] != w[1]) {
                    out.push("result differs".into());
                }
                let kinds: Vec<&Option<String>> = ran
                    .iter()
                    .filter_map(|(_, c)| match c {
                        Cell::Probe { fault, .. } => Some(fault),
                        _ => None,
                    })
                    .collect();
                if kinds.windows(2).any(|w| w[0] != w[1]) {
                    out.push("fault kind differs".into());
                }
            }
        }
        Cell::Litmus { .. } => {
            let seen = |c: &Cell| matches!(c, Cell::Litmus { observed, .. } if *observed > 0);
            if let Some((y, n)) = split(&seen) {
                out.push(format!(
                    "relaxed seen in {}, never in {}",
                    list(&y),
                    list(&n)
                ));
            }
            let models: Vec<&String> = ran
                .iter()
                .filter_map(|(_, c)| match c {
                    Cell::Litmus { model, .. } => Some(model),
                    _ => None,
                })
                .collect();
            if models.windows(2).any(|w| w[0] != w[1]) {
                out.push("model differs".into());
            }
        }
    }
    let verdicts: Vec<Verdict> = ran.iter().map(|(_, c)| c.verdict()).collect();
    if verdicts.windows(2).any(|w| w[0] != w[1]) {
        out.push("verdict differs".into());
    }
    out
}

type Key = (u8, String, String, String, u32, usize);

/// Match the records of `reports` into rows, in the order they first occur.
pub fn build_rows(reports: &[&ParsedReport], labels: &[String]) -> Vec<Row> {
    let mut order: Vec<Key> = Vec::new();
    let mut rows: BTreeMap<Key, Row> = BTreeMap::new();
    for (i, rep) in reports.iter().enumerate() {
        let mut seen: BTreeMap<(u8, String, String, String, u32), usize> = BTreeMap::new();
        for (ri, rec) in rep.records.iter().enumerate() {
            // The mapping (`mapping`, `share`, `caches`, `mtrr`) is part of the key: a 2 MiB
            // block run matches the 2 MiB block run of another report, not its 4 KiB one.
            let (kind, fam, name, attr, width, shown, cell, map) = match rec {
                Record::Probe(p) => (
                    0u8,
                    p.family.clone(),
                    p.name.clone(),
                    p.attr.clone(),
                    p.width,
                    format!(
                        "{}/{} {} w{}{}",
                        p.family,
                        p.name,
                        p.attr,
                        p.width,
                        p.map.key_suffix()
                    ),
                    probe_cell(p),
                    p.map.key_suffix(),
                ),
                Record::Litmus(l) => (
                    1u8,
                    "litmus".into(),
                    l.name.clone(),
                    l.attr.clone(),
                    0,
                    format!("litmus/{} {}{}", l.name, l.attr, l.map.key_suffix()),
                    litmus_cell(l),
                    l.map.key_suffix(),
                ),
                _ => continue,
            };
            let base = (
                kind,
                fam,
                name,
                format!("{}{map}", match_attr(&attr)),
                width,
            );
            let n = seen.entry(base.clone()).or_default();
            *n += 1;
            let key: Key = (base.0, base.1, base.2, base.3, base.4, *n);
            let row = rows.entry(key.clone()).or_insert_with(|| {
                order.push(key.clone());
                Row {
                    kind: if kind == 0 { "probe" } else { "litmus" },
                    key: if *n > 1 {
                        format!("{shown} #{n}")
                    } else {
                        shown
                    },
                    cells: vec![None; reports.len()],
                    differs: Vec::new(),
                    records: vec![None; reports.len()],
                }
            });
            row.cells[i] = Some(cell);
            row.records[i] = Some(ri);
        }
    }
    order
        .into_iter()
        .filter_map(|k| rows.remove(&k))
        .map(|mut r| {
            r.differs = differences(&r.cells, labels);
            r
        })
        .collect()
}

/// Labels A, B, … Z, R27, R28 …
pub fn labels(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            if i < 26 {
                char::from(b'A' + i as u8).to_string()
            } else {
                format!("R{}", i + 1)
            }
        })
        .collect()
}

fn header_lines(inputs: &[Input]) -> Vec<String> {
    inputs
        .iter()
        .map(|inp| {
            let (board, arch) = inp.describe();
            format!(
                "{}: {} — {}; board {board}, {arch}, {} record lines",
                inp.label,
                inp.name,
                integrity_text(&inp.report.integrity),
                inp.report.lines.len()
            )
        })
        .collect()
}

fn cell_texts(r: &Row) -> Vec<String> {
    r.cells
        .iter()
        .map(|c| c.as_ref().map_or("-".to_string(), Cell::text))
        .collect()
}

/// The comparison in `format`.
pub fn render(inputs: &[Input], rows: &[Row], format: Format) -> String {
    let labels: Vec<&str> = inputs.iter().map(|i| i.label.as_str()).collect();
    let differing = rows.iter().filter(|r| !r.differs.is_empty()).count();
    match format {
        Format::Json => {
            let reports: Vec<Value> = inputs
                .iter()
                .map(|i| {
                    let (board, arch) = i.describe();
                    json!({
                        "label": i.label,
                        "file": i.name,
                        "integrity": integrity_text(&i.report.integrity),
                        "verified": i.report.integrity.is_verified(),
                        "board": board,
                        "arch": arch,
                        "record_lines": i.report.lines.len(),
                    })
                })
                .collect();
            let rows: Vec<Value> = rows
                .iter()
                .map(|r| {
                    json!({
                        "kind": r.kind,
                        "key": r.key,
                        "cells": r.cells.iter().map(|c| c.as_ref().map_or(Value::Null, Cell::json)).collect::<Vec<_>>(),
                        "differs": r.differs,
                    })
                })
                .collect();
            let doc = json!({ "reports": reports, "rows": rows, "differing_rows": differing });
            let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
            s.push('\n');
            s
        }
        Format::Md => {
            let mut s = String::new();
            for l in header_lines(inputs) {
                s.push_str(&format!("- {}\n", l.replace('|', "\\|")));
            }
            s.push('\n');
            s.push_str(&format!("| record | {} | differs |\n", labels.join(" | ")));
            s.push_str(&format!("|---|{}---|\n", "---|".repeat(labels.len())));
            let esc = |t: &str| t.replace('|', "\\|");
            for r in rows {
                let cells: Vec<String> = cell_texts(r).iter().map(|t| esc(t)).collect();
                s.push_str(&format!(
                    "| {} | {} | {} |\n",
                    esc(&r.key),
                    cells.join(" | "),
                    esc(&r.differs.join("; "))
                ));
            }
            s.push_str(&format!(
                "\n{} rows, {differing} where the reports differ\n",
                rows.len()
            ));
            s
        }
        Format::Plain => {
            let mut s = String::new();
            for l in header_lines(inputs) {
                s.push_str(&l);
                s.push('\n');
            }
            s.push('\n');
            let mut table: Vec<Vec<String>> = Vec::new();
            let mut head = vec!["record".to_string()];
            head.extend(labels.iter().map(|l| l.to_string()));
            head.push("differs".into());
            table.push(head);
            for r in rows {
                let mut line = vec![r.key.clone()];
                line.extend(cell_texts(r));
                line.push(if r.differs.is_empty() {
                    String::new()
                } else {
                    format!("* {}", r.differs.join("; "))
                });
                table.push(line);
            }
            let cols = table[0].len();
            let widths: Vec<usize> = (0..cols)
                .map(|c| {
                    table
                        .iter()
                        .map(|l| l[c].chars().count())
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            for line in &table {
                let mut out = String::new();
                for (c, cell) in line.iter().enumerate() {
                    if c + 1 == cols {
                        out.push_str(cell);
                    } else {
                        out.push_str(cell);
                        out.push_str(&" ".repeat(widths[c] - cell.chars().count() + 2));
                    }
                }
                s.push_str(out.trim_end());
                s.push('\n');
            }
            s.push_str(&format!(
                "\n{} rows, {differing} where the reports differ\n",
                rows.len()
            ));
            s
        }
    }
}

/// The check of the inputs' integrity: a message naming each damaged report, or `None`.
pub fn refuse_damaged(inputs: &[Input]) -> Option<String> {
    let bad: Vec<String> = inputs
        .iter()
        .filter(|i| !i.report.integrity.is_verified())
        .map(|i| format!("{} is {}", i.name, integrity_text(&i.report.integrity)))
        .collect();
    (!bad.is_empty()).then(|| {
        format!(
            "refusing to compare damaged report{}: {}. A truncated or corrupted report can hide \
             or alter results; recapture it, or pass --allow-damaged to compare it anyway",
            if bad.len() == 1 { "" } else { "s" },
            bad.join("; ")
        )
    })
}

/// Run `atomprobe compare`; returns the exit status.
pub fn cmd_compare(a: CompareArgs) -> Result<i32, RunError> {
    let labels = labels(a.files.len());
    let mut inputs = Vec::new();
    for (label, path) in labels.iter().zip(&a.files) {
        inputs.push(Input {
            label: label.clone(),
            name: path.display().to_string(),
            report: load_report(path)?,
        });
    }
    if !a.allow_damaged {
        if let Some(msg) = refuse_damaged(&inputs) {
            for l in header_lines(&inputs) {
                eprintln!("{l}");
            }
            eprintln!("atomprobe compare: {msg}");
            return Ok(crate::cli::EXIT_FAIL);
        }
    }
    let reports: Vec<&ParsedReport> = inputs.iter().map(|i| &i.report).collect();
    let mut rows = build_rows(&reports, &labels);
    if rows.is_empty() {
        eprintln!("atomprobe compare: the reports hold no probe or litmus records to compare");
    }
    if a.differs_only {
        rows.retain(|r| !r.differs.is_empty());
    }
    // Through `cli::out`: a closed stdout (`| head`) ends the command quietly.
    crate::cli::out(format_args!("{}", render(&inputs, &rows, a.format)));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use probes::record::{FaultRecord, HistogramEntry, ModelVerdict, RunStatus};
    use probes::report::ReportWriter;

    fn probe(name: &str, attr: &str, result: ProbeResult, fault: Option<&str>) -> Record {
        Record::Probe(Probe {
            family: "fault".into(),
            name: name.into(),
            attr: attr.into(),
            width: 64,
            offset: 1,
            op: "ldxr".into(),
            cpus: vec![0],
            iterations: 1,
            result,
            counts: [("faults".to_string(), u64::from(fault.is_some()))].into(),
            expected: "e".into(),
            verdict: Verdict::Ok,
            fault: fault.map(|k| FaultRecord {
                kind: k.into(),
                esr: None,
                far: None,
                vector: None,
                error_code: None,
                detail: None,
            }),
            rule: String::new(),
            reason: None,
            elapsed_ms: None,
            map: Default::default(),
        })
    }

    fn litmus(name: &str, attr: &str, observed: u64, model: ModelVerdict) -> Record {
        let verdict = if model == ModelVerdict::Forbidden && observed > 0 {
            Verdict::Violation
        } else {
            Verdict::Ok
        };
        Record::Litmus(Litmus {
            name: name.into(),
            attr: attr.into(),
            cpus: vec![0, 1],
            iterations: 1000,
            histogram: vec![HistogramEntry {
                outcome: "0:rax=0; 1:rax=0;".into(),
                count: observed,
            }],
            condition: "exists (0:rax=0 /\\ 1:rax=0)".into(),
            observed,
            model,
            verdict,
            elapsed_ms: 1,
            iter_per_s: 1000,
            relaxed_per_s: observed,
            rule: String::new(),
            reason: None,
            map: Default::default(),
        })
    }

    fn report_text(recs: &[Record]) -> String {
        let mut w = ReportWriter::new();
        let mut s = String::from("boot noise\r\n");
        for r in recs {
            s.push_str(&w.encode(r));
            s.push_str("\r\n");
        }
        s.push_str(&w.end(RunStatus::Complete, 9).to_line());
        s.push('\n');
        s
    }

    fn inputs(texts: &[String]) -> Vec<Input> {
        labels(texts.len())
            .into_iter()
            .zip(texts)
            .map(|(l, t)| Input {
                name: format!("{l}.log"),
                label: l,
                report: parse_report(t),
            })
            .collect()
    }

    fn rows_of(inputs: &[Input]) -> Vec<Row> {
        let reps: Vec<&ParsedReport> = inputs.iter().map(|i| &i.report).collect();
        let labels: Vec<String> = inputs.iter().map(|i| i.label.clone()).collect();
        build_rows(&reps, &labels)
    }

    fn bare_and_hosted() -> (String, String) {
        let a = report_text(&[
            probe(
                "ldxr-64-misaligned",
                "normal-wb",
                ProbeResult::Fault,
                Some("alignment"),
            ),
            probe(
                "ldxr-64-misaligned",
                "normal-wb",
                ProbeResult::Fault,
                Some("alignment"),
            ),
            probe("only-bare", "device-ngnrne", ProbeResult::Ok, None),
            litmus("SB", "normal-wb", 0, ModelVerdict::Allowed),
            litmus("MP", "normal-wb", 0, ModelVerdict::Forbidden),
        ]);
        let b = report_text(&[
            probe("ldxr-64-misaligned", "wb", ProbeResult::Ok, None),
            probe(
                "ldxr-64-misaligned",
                "wb",
                ProbeResult::Fault,
                Some("alignment"),
            ),
            litmus("SB", "wb", 12, ModelVerdict::Allowed),
            litmus("MP", "wb", 0, ModelVerdict::Forbidden),
        ]);
        (a, b)
    }

    /// Records of another mapping (`mapping`, `share`, `mtrr`) are other rows: a 2 MiB block
    /// run is compared with the 2 MiB block run, and an old report without `mapping` matches 4k.
    #[test]
    fn mapping_is_part_of_the_key() {
        let with_map = |rec: Record, mapping: &str, mtrr: Option<&str>| match rec {
            Record::Probe(mut p) => {
                p.map.mapping = mapping.into();
                p.map.mtrr = mtrr.map(String::from);
                Record::Probe(p)
            }
            Record::Litmus(mut l) => {
                l.map.mapping = mapping.into();
                Record::Litmus(l)
            }
            r => r,
        };
        let p = |r| probe("ldxr-64-misaligned", "wb", r, None);
        let a = report_text(&[
            with_map(p(ProbeResult::Ok), "4k", None),
            with_map(p(ProbeResult::Ok), "2m", None),
            with_map(p(ProbeResult::Ok), "2m", Some("uc")),
            with_map(litmus("SB", "wb", 0, ModelVerdict::Allowed), "1g", None),
        ]);
        let b = report_text(&[
            with_map(p(ProbeResult::Fault), "2m", None),
            p(ProbeResult::Ok),
            with_map(litmus("SB", "wb", 0, ModelVerdict::Allowed), "1g", None),
        ]);
        let inp = inputs(&[a, b]);
        let rows = rows_of(&inp);
        let keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "fault/ldxr-64-misaligned wb w64",
                "fault/ldxr-64-misaligned wb w64 map=2m",
                "fault/ldxr-64-misaligned wb w64 map=2m mtrr=uc",
                "litmus/SB wb map=1g",
            ]
        );
        assert!(rows[0].differs.is_empty(), "{:?}", rows[0].differs);
        assert!(!rows[1].differs.is_empty(), "2m rows differ: ok vs fault");
        assert_eq!(rows[2].differs, ["only in A"]);
        assert!(rows[3].differs.is_empty());
    }

    #[test]
    fn matches_and_marks_differences() {
        let (a, b) = bare_and_hosted();
        let inp = inputs(&[a, b]);
        let rows = rows_of(&inp);
        let keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "fault/ldxr-64-misaligned normal-wb w64",
                "fault/ldxr-64-misaligned normal-wb w64 #2",
                "fault/only-bare device-ngnrne w64",
                "litmus/SB normal-wb",
                "litmus/MP normal-wb",
            ]
        );
        assert_eq!(rows[0].differs, ["fault in A not B"]);
        assert!(rows[1].differs.is_empty(), "{:?}", rows[1].differs);
        assert_eq!(rows[2].differs, ["only in A"]);
        assert_eq!(rows[3].differs, ["relaxed seen in B, never in A"]);
        assert!(rows[4].differs.is_empty());

        let plain = render(&inp, &rows, Format::Plain);
        assert!(plain.contains("A: A.log — Verified"), "{plain}");
        assert!(plain.contains("fault(alignment) ok"), "{plain}");
        assert!(plain.contains("12/1000 (0.01) allowed ok"), "{plain}");
        assert!(plain.contains("* fault in A not B"), "{plain}");
        assert!(
            plain.contains("5 rows, 3 where the reports differ"),
            "{plain}"
        );

        let md = render(&inp, &rows, Format::Md);
        assert!(md.contains("| record | A | B | differs |"), "{md}");
        assert!(md.contains("|---|---|---|---|"), "{md}");
        assert!(md.contains("| litmus/SB normal-wb | 0/1000 (0) allowed ok | 12/1000 (0.01) allowed ok | relaxed seen in B, never in A |"), "{md}");

        let js: Value = serde_json::from_str(&render(&inp, &rows, Format::Json)).unwrap();
        assert_eq!(js["differing_rows"], 3);
        assert_eq!(js["reports"][1]["verified"], true);
        assert_eq!(js["rows"][2]["cells"][1], Value::Null);
        assert_eq!(js["rows"][3]["cells"][1]["observed"], 12);
        assert_eq!(js["rows"][0]["cells"][0]["fault"], "alignment");
    }

    #[test]
    fn verdict_and_skip_differences() {
        let a = report_text(&[
            litmus("MP", "wb", 3, ModelVerdict::Forbidden),
            litmus("IRIW", "wb", 0, ModelVerdict::Forbidden),
        ]);
        let mut skipped = litmus("IRIW", "wb", 0, ModelVerdict::Forbidden);
        if let Record::Litmus(l) = &mut skipped {
            l.verdict = Verdict::Skipped;
        }
        let b = report_text(&[litmus("MP", "wb", 0, ModelVerdict::Forbidden), skipped]);
        let c = report_text(&[litmus("MP", "wb", 0, ModelVerdict::Forbidden)]);
        let inp = inputs(&[a, b, c]);
        let rows = rows_of(&inp);
        assert_eq!(
            rows[0].differs,
            ["relaxed seen in A, never in B,C", "verdict differs"]
        );
        assert_eq!(rows[1].differs, ["only in A,B", "skipped in B"]);
        assert!(render(&inp, &rows, Format::Plain).contains("skipped (forbidden)"));
    }

    #[test]
    fn damaged_reports_are_refused_by_name() {
        let (a, _) = bare_and_hosted();
        // One record line deleted.
        let deleted: String = a
            .lines()
            .filter(|l| !l.contains("only-bare"))
            .map(|l| format!("{l}\n"))
            .collect();
        // One record line altered.
        let altered = a.replacen("\"observed\":0", "\"observed\":5", 1);
        assert_ne!(altered, a);
        let truncated = a[..a.find("{\"type\":\"end\"").unwrap()].to_string();
        let inp = inputs(&[a.clone(), deleted, altered, truncated]);
        assert!(inp[0].report.integrity.is_verified());
        let msg = refuse_damaged(&inp).unwrap();
        assert!(
            msg.contains("B.log is Corrupted (end record counts"),
            "{msg}"
        );
        assert!(msg.contains("C.log is Corrupted (CRC mismatch"), "{msg}");
        assert!(msg.contains("D.log is Truncated"), "{msg}");
        assert!(!msg.contains("A.log"), "{msg}");
        assert!(msg.contains("--allow-damaged"), "{msg}");
        assert!(refuse_damaged(&inputs(&[a.clone(), a])).is_none());
    }

    #[test]
    fn command_on_files() {
        let dir = std::env::temp_dir().join(format!("atomprobe-compare-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = bare_and_hosted();
        let pa = dir.join("a.log");
        let pb = dir.join("b.log");
        let pc = dir.join("c.log");
        std::fs::write(&pa, &a).unwrap();
        std::fs::write(&pb, &b).unwrap();
        std::fs::write(&pc, b.replace("\"wb\"", "\"uc\"")).unwrap();
        let args = |files: Vec<PathBuf>, allow| CompareArgs {
            files,
            format: Format::Plain,
            allow_damaged: allow,
            differs_only: true,
        };
        assert_eq!(
            cmd_compare(args(vec![pa.clone(), pb.clone()], false)).unwrap(),
            0
        );
        assert_eq!(
            cmd_compare(args(vec![pa.clone(), pc.clone()], false)).unwrap(),
            crate::cli::EXIT_FAIL
        );
        assert_eq!(cmd_compare(args(vec![pa.clone(), pc], true)).unwrap(), 0);
        let e = cmd_compare(args(vec![pa, dir.join("missing.log")], false)).unwrap_err();
        assert!(e.to_string().contains("cannot read"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn cli_needs_two_reports_and_a_known_format() {
        use clap::Parser;
        let e = crate::cli::Cli::try_parse_from(["atomprobe", "compare", "a.log"]).unwrap_err();
        assert!(e.to_string().contains("REPORT"), "{e}");
        let e =
            crate::cli::Cli::try_parse_from(["atomprobe", "compare", "a", "b", "--format", "csv"])
                .unwrap_err();
        assert!(
            e.to_string().contains("plain") && e.to_string().contains("md"),
            "{e}"
        );
        assert!(crate::cli::Cli::try_parse_from([
            "atomprobe",
            "compare",
            "a",
            "b",
            "--format",
            "md"
        ])
        .is_ok());
    }
}
