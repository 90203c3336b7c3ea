//! The one-screen summary of a report: what ran where, per family the records, results and
//! verdicts, every `deviation` / `violation` with its rule, the litmus tests as a table, the
//! `error` records, and where the full report is. Used after `run`, `host` and `capture`, and by
//! `atomprobe show FILE`.
//!
//! To stay on one screen for the default suite (about 800 records), the litmus table lists the
//! records worth reading (the `exists` outcome seen, or a verdict other than `ok`) when there
//! are more than [`LITMUS_ROWS_ALL`]; the rest are counted on one line (`show --all` lists all).

use std::collections::BTreeMap;
use std::path::Path;

use probes::record::{ProbeResult, Record, RunStatus, Verdict};

use super::model::{name_of, Counter, Run};

/// Up to this many litmus records, the table lists every one.
pub const LITMUS_ROWS_ALL: usize = 20;
/// At most this many rows of litmus records worth reading (the rest are counted) unless `--all`.
pub const LITMUS_ROWS_MAX: usize = 25;
/// An extra field with more distinct values than this is summarised by its count of values.
const EXTRA_VALUES_SHOWN: usize = 8;
/// Longest `reason` shown in the deviations list (the report has it whole).
const REASON_CHARS: usize = 110;

/// What the summary includes.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// List every litmus record, not only those worth reading.
    pub all_litmus: bool,
}

fn shorten(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Align `rows` in columns separated by two spaces (the last column is not padded).
pub fn columns(rows: &[Vec<String>], indent: &str) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut s = String::new();
    for r in rows {
        let mut line = String::from(indent);
        for (c, cell) in r.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < r.len() {
                line.push_str(&" ".repeat(widths[c] - cell.chars().count() + 2));
            }
        }
        s.push_str(line.trim_end());
        s.push('\n');
    }
    s
}

/// Per family: records, results (fault kinds in brackets), verdicts, extra fields' values.
struct FamilyLine {
    records: usize,
    results: Counter,
    faults: Counter,
    verdicts: Counter,
    extras: BTreeMap<String, Counter>,
}

/// `k=v` of a record's extra fields, for the litmus table's last column.
fn extras_text(extras: &[(String, String)]) -> String {
    extras
        .iter()
        .map(|(k, v)| format!("{k}={}", shorten(v, 24)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The summary text (ends with a newline). `saved`: where the full report was written.
pub fn render(run: &Run, saved: Option<&Path>, opts: &Options) -> String {
    let mut s = String::new();
    let rep = run.report;
    if let Some(d) = run.damaged() {
        s.push_str(&format!(
            "*** DAMAGED REPORT: {d}. Records may be missing or altered; do not trust this \
             summary. ***\n"
        ));
    }
    let (on, off) = run.cores_online();
    let cmdline = run.begin().map(|b| b.cmdline.as_str()).unwrap_or("");
    let os_cpus = run.begin().and_then(|b| b.platform.get("os_cpus"));
    let cores = match (on, off, os_cpus) {
        // Hosted runs have no `cpu` records: the OS CPUs used are in `begin.platform`.
        (0, 0, Some(c)) => format!("OS CPUs {c}"),
        _ => format!(
            "{on} core{} online{}",
            if on == 1 { "" } else { "s" },
            if off > 0 {
                format!(", {off} offline")
            } else {
                String::new()
            }
        ),
    };
    s.push_str(&format!(
        "atomprobe: {}; {cores}; cmdline \"{cmdline}\"\n",
        run.describe(),
    ));
    let end = match rep.end() {
        Some(e) => format!(
            "end {} after {:.1} s",
            match e.status {
                RunStatus::Complete => "complete",
                RunStatus::Aborted => "ABORTED",
            },
            e.elapsed_ms as f64 / 1000.0
        ),
        None => "no end record".into(),
    };
    s.push_str(&format!(
        "{} record lines, integrity {}, {end}\n\n",
        rep.lines.len(),
        crate::compare::integrity_text(&rep.integrity)
    ));

    // Per family.
    let mut fams: BTreeMap<String, FamilyLine> = BTreeMap::new();
    for e in &run.entries {
        let (fam, result, verdict) = match &e.record {
            Record::Probe(p) => (p.family.clone(), name_of(&p.result), p.verdict),
            Record::Litmus(l) => (
                "litmus".to_string(),
                if l.verdict == Verdict::Skipped {
                    "skipped".into()
                } else if l.observed > 0 {
                    "exists seen".into()
                } else {
                    "never seen".into()
                },
                l.verdict,
            ),
            _ => continue,
        };
        let f = fams.entry(fam).or_insert_with(|| FamilyLine {
            records: 0,
            results: Counter::default(),
            faults: Counter::default(),
            verdicts: Counter::default(),
            extras: BTreeMap::new(),
        });
        f.records += 1;
        f.results.add(result);
        f.verdicts.add(name_of(&verdict));
        if let Record::Probe(p) = &e.record {
            if let (ProbeResult::Fault, Some(fault)) = (p.result, &p.fault) {
                f.faults.add(fault.kind.clone());
            }
        }
        for (k, v) in e.extras() {
            f.extras.entry(k).or_default().add(v);
        }
    }
    let mut table = vec![vec![
        "family".to_string(),
        "records".into(),
        "results".into(),
        "verdicts".into(),
    ]];
    let mut extra_lines = Vec::new();
    for fam in run.families() {
        let f = &fams[&fam];
        let mut results = f.results.text();
        if !f.faults.is_empty() {
            results = results.replacen(
                &format!("fault {}", f.results.get("fault")),
                &format!("fault {} ({})", f.results.get("fault"), f.faults.text()),
                1,
            );
        }
        table.push(vec![
            fam.clone(),
            f.records.to_string(),
            results,
            f.verdicts.text(),
        ]);
        for (k, c) in &f.extras {
            extra_lines.push(if c.len() <= EXTRA_VALUES_SHOWN {
                format!("  {fam} {k}: {}", c.text())
            } else {
                format!("  {fam} {k}: {} distinct values", c.len())
            });
        }
    }
    if table.len() == 1 {
        s.push_str("no probe or litmus records\n");
    } else {
        s.push_str(&columns(&table, ""));
    }
    if !extra_lines.is_empty() {
        s.push_str("extra fields:\n");
        for l in extra_lines {
            s.push_str(&l);
            s.push('\n');
        }
    }

    // Deviations and violations, grouped by rule. Probe deviations that agree in family,
    // result, expectation and reason are one line naming every probe (with the attributes it
    // deviated on), so a family-wide deviation (e.g. one per core and attribute) stays short.
    struct DevGroup {
        head: String,
        probes: Vec<(String, Vec<String>, usize)>,
    }
    let mut by_rule: Vec<(String, Vec<DevGroup>)> = Vec::new();
    let mut bad = 0;
    for e in &run.entries {
        let (rule, head, probe) = match &e.record {
            Record::Probe(p) if p.verdict == Verdict::Deviation => (
                p.rule.clone(),
                format!(
                    "{} → {}{} (expected: {}){}",
                    p.family,
                    name_of(&p.result),
                    p.fault
                        .as_ref()
                        .map(|f| format!(" ({})", f.kind))
                        .unwrap_or_default(),
                    shorten(&p.expected, 80),
                    p.reason
                        .as_deref()
                        .map(|r| format!("; {}", shorten(r, REASON_CHARS)))
                        .unwrap_or_default()
                ),
                Some((format!("{} w{}", p.name, p.width), p.attr.clone())),
            ),
            Record::Litmus(l) if l.verdict == Verdict::Violation => (
                l.rule.clone(),
                format!(
                    "litmus/{} {}: {}/{} observed, model {}{}",
                    l.name,
                    l.attr,
                    l.observed,
                    l.iterations,
                    name_of(&l.model),
                    l.reason
                        .as_deref()
                        .map(|r| format!("; {}", shorten(r, REASON_CHARS)))
                        .unwrap_or_default()
                ),
                None,
            ),
            _ => continue,
        };
        bad += 1;
        let groups = match by_rule.iter_mut().find(|(r, _)| *r == rule) {
            Some((_, g)) => g,
            None => {
                by_rule.push((rule, Vec::new()));
                &mut by_rule.last_mut().expect("just pushed").1
            }
        };
        let Some((name, attr)) = probe else {
            groups.push(DevGroup {
                head,
                probes: Vec::new(),
            });
            continue;
        };
        let g = match groups
            .iter_mut()
            .position(|g| g.head == head && !g.probes.is_empty())
        {
            Some(i) => &mut groups[i],
            None => {
                groups.push(DevGroup {
                    head,
                    probes: Vec::new(),
                });
                groups.last_mut().expect("just pushed")
            }
        };
        match g.probes.iter_mut().find(|(n, _, _)| *n == name) {
            Some((_, attrs, count)) => {
                *count += 1;
                if !attrs.contains(&attr) {
                    attrs.push(attr);
                }
            }
            None => g.probes.push((name, vec![attr], 1)),
        }
    }
    s.push_str(&format!("\ndeviations and violations: {bad}\n"));
    for (rule, groups) in &by_rule {
        for g in groups {
            if g.probes.is_empty() {
                s.push_str(&format!("  ! {}\n", g.head));
                continue;
            }
            let n: usize = g.probes.iter().map(|(_, _, c)| c).sum();
            let names: Vec<String> = g
                .probes
                .iter()
                .map(|(name, attrs, count)| {
                    format!(
                        "{name} [{}]{}",
                        attrs.join(","),
                        if *count > attrs.len() {
                            format!(" ×{count}")
                        } else {
                            String::new()
                        }
                    )
                })
                .collect();
            s.push_str(&format!(
                "  ! {}: {n} record{}: {}\n",
                g.head,
                if n == 1 { "" } else { "s" },
                names.join(", ")
            ));
        }
        s.push_str(&format!(
            "    rule: {}\n",
            if rule.is_empty() {
                "(none given)"
            } else {
                rule
            }
        ));
    }

    // Litmus table.
    let lit: Vec<(&probes::record::Litmus, Vec<(String, String)>)> = run
        .entries
        .iter()
        .filter_map(|e| match &e.record {
            Record::Litmus(l) => Some((l, e.extras())),
            _ => None,
        })
        .collect();
    if !lit.is_empty() {
        let all = opts.all_litmus || lit.len() <= LITMUS_ROWS_ALL;
        let shown: Vec<&(&probes::record::Litmus, Vec<(String, String)>)> = lit
            .iter()
            .filter(|(l, _)| {
                all || (l.verdict != Verdict::Skipped
                    && (l.observed > 0 || l.verdict != Verdict::Ok))
            })
            .collect();
        let worth = shown.len();
        let shown: Vec<_> = if all {
            shown
        } else {
            shown.into_iter().take(LITMUS_ROWS_MAX).collect()
        };
        let any_extra = shown.iter().any(|(_, x)| !x.is_empty());
        s.push_str(&format!(
            "\nlitmus: {} record{}{}\n",
            lit.len(),
            if lit.len() == 1 { "" } else { "s" },
            if all {
                String::new()
            } else {
                format!(
                    "; the {worth} with the exists outcome seen or a verdict other than ok{}:",
                    if worth > shown.len() {
                        format!(" (the first {})", shown.len())
                    } else {
                        String::new()
                    }
                )
            }
        ));
        let mut rows = vec![vec![
            "test".to_string(),
            "attr".into(),
            "observed/iterations".into(),
            "model".into(),
            "verdict".into(),
            "relaxed/s".into(),
        ]];
        if any_extra {
            rows[0].push("extra".into());
        }
        for (l, x) in &shown {
            let mut row = vec![
                l.name.clone(),
                l.attr.clone(),
                if l.verdict == Verdict::Skipped {
                    "-".into()
                } else {
                    format!("{}/{}", l.observed, l.iterations)
                },
                name_of(&l.model),
                name_of(&l.verdict),
                l.relaxed_per_s.to_string(),
            ];
            if any_extra {
                row.push(extras_text(x));
            }
            rows.push(row);
        }
        if shown.is_empty() {
            s.push_str("  (none)\n");
        } else {
            s.push_str(&columns(&rows, "  "));
        }
        if !all {
            let never = lit
                .iter()
                .filter(|(l, _)| l.verdict == Verdict::Ok && l.observed == 0)
                .count();
            let mut skipped: Vec<(String, Vec<String>)> = Vec::new();
            for (l, _) in lit.iter().filter(|(l, _)| l.verdict == Verdict::Skipped) {
                let why = shorten(l.reason.as_deref().unwrap_or("no reason given"), 70);
                match skipped.iter_mut().find(|(w, _)| *w == why) {
                    Some((_, v)) => {
                        if !v.contains(&l.name) {
                            v.push(l.name.clone())
                        }
                    }
                    None => skipped.push((why, vec![l.name.clone()])),
                }
            }
            s.push_str(&format!(
                "  + {never} with the exists outcome never seen (verdict ok){}\n",
                if opts.all_litmus {
                    ""
                } else {
                    "; `atomprobe show --all FILE` lists every record"
                }
            ));
            let nskip = lit
                .iter()
                .filter(|(l, _)| l.verdict == Verdict::Skipped)
                .count();
            if nskip > 0 {
                s.push_str(&format!("  + {nskip} skipped:"));
                for (why, names) in &skipped {
                    s.push_str(&format!(" {} ({why});", names.join(", ")));
                }
                s.pop();
                s.push('\n');
            }
        }
    }

    // Errors.
    let errors: Vec<&probes::record::ErrorRec> = rep
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Error(e) => Some(e),
            _ => None,
        })
        .collect();
    if errors.is_empty() {
        s.push_str("\nerrors: none\n");
    } else {
        s.push_str(&format!("\nerrors: {}\n", errors.len()));
        for e in errors {
            s.push_str(&format!("  {}: {}\n", e.what, e.message));
        }
    }
    if let Some(p) = saved {
        s.push_str(&format!("full report: {}\n", p.display()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use probes::report::parse_report;

    /// A small report in the image's spelling, with an extra field the views do not know.
    pub(crate) fn fixture() -> String {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/");
        std::fs::read_to_string(format!("{dir}report-virt-small.jsonl")).unwrap()
    }

    #[test]
    fn summary_of_a_real_virt_report() {
        let text = fixture();
        let rep = parse_report(&text);
        assert!(rep.integrity.is_verified());
        let run = Run::new(&rep);
        let s = render(
            &run,
            Some(Path::new("reports/x.jsonl")),
            &Options::default(),
        );
        assert!(s.starts_with("atomprobe: qemu-virt aarch64 EL1"), "{s}");
        assert!(s.contains("integrity Verified, end complete"), "{s}");
        // One line per family, with its record count.
        for fam in run.families() {
            let n = run
                .entries
                .iter()
                .filter(|e| match &e.record {
                    Record::Probe(p) => p.family == fam,
                    Record::Litmus(_) => fam == "litmus",
                    _ => false,
                })
                .count();
            assert!(
                s.lines()
                    .any(|l| l.starts_with(&format!("{fam} ")) && l.contains(&format!(" {n} "))),
                "{fam} {n}\n{s}"
            );
        }
        assert!(s.contains("full report: reports/x.jsonl"), "{s}");
        assert!(s.lines().count() <= 60, "{s}");
    }

    #[test]
    fn deviations_extras_errors_and_damage_are_shown() {
        let text = fixture();
        // Mark one tear record as a deviation with a rule, add an unknown field, and an error.
        let mut w = probes::report::ReportWriter::new();
        let mut out = String::new();
        let mut marked = false;
        for line in text.lines() {
            let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
            match v["type"].as_str().unwrap() {
                "end" => continue,
                "probe" if !marked && v["family"] == "tear" => {
                    v["verdict"] = "deviation".into();
                    v["result"] = "torn".into();
                    v["rule"] = "Arm ARM B2.2.1".into();
                    marked = true;
                }
                "probe" => v["mapping"] = "alias-2".into(),
                _ => {}
            }
            w.account(&v.to_string());
            out.push_str(&v.to_string());
            out.push('\n');
        }
        let e = Record::Error(probes::record::ErrorRec {
            what: "bootarg".into(),
            message: "iters=lots: not a number".into(),
        });
        out.push_str(&w.encode(&e));
        out.push('\n');
        out.push_str(&w.end(RunStatus::Complete, 5).to_line());
        out.push('\n');
        let rep = parse_report(&out);
        assert!(rep.integrity.is_verified(), "{:?}", rep.integrity);
        let s = render(&Run::new(&rep), None, &Options::default());
        assert!(s.contains("deviations and violations: 1"), "{s}");
        assert!(s.contains("  ! tear → torn (expected: "), "{s}");
        assert!(s.contains(": 1 record: "), "{s}");
        assert!(s.contains("    rule: Arm ARM B2.2.1"), "{s}");
        assert!(s.contains("mapping: alias-2"), "{s}");
        assert!(
            s.contains("errors: 1\n  bootarg: iters=lots: not a number"),
            "{s}"
        );

        let damaged = out.replacen("\"iterations\":", "\"iterations\":1", 1);
        let rep = parse_report(&damaged);
        assert!(!rep.integrity.is_verified());
        let s = render(&Run::new(&rep), None, &Options::default());
        assert!(
            s.starts_with("*** DAMAGED REPORT: Corrupted (CRC mismatch"),
            "{s}"
        );
    }

    #[test]
    fn litmus_table_lists_what_is_worth_reading() {
        use probes::record::{HistogramEntry, Litmus, ModelVerdict};
        let mut w = probes::report::ReportWriter::new();
        let mut text = String::new();
        for i in 0..30u64 {
            let r = Record::Litmus(Litmus {
                name: format!("T{i}"),
                attr: "wb".into(),
                cpus: vec![0, 1],
                iterations: 100,
                histogram: vec![HistogramEntry {
                    outcome: "0:rax=0;".into(),
                    count: 100,
                }],
                condition: "exists (0:rax=1)".into(),
                observed: u64::from(i == 3),
                model: ModelVerdict::Allowed,
                verdict: if i == 7 {
                    Verdict::Skipped
                } else {
                    Verdict::Ok
                },
                elapsed_ms: 1,
                iter_per_s: 100,
                relaxed_per_s: 7,
                rule: "r".into(),
                reason: (i == 7).then(|| "no cores".to_string()),
                map: Default::default(),
            });
            text.push_str(&w.encode(&r));
            text.push('\n');
        }
        text.push_str(&w.end(RunStatus::Complete, 1).to_line());
        let rep = parse_report(&text);
        let s = render(&Run::new(&rep), None, &Options::default());
        assert!(s.contains("litmus: 30 records; the 1 with"), "{s}");
        assert!(s.contains("  T3    wb    1/100"), "{s}");
        assert!(!s.contains("  T4 "), "{s}");
        assert!(s.contains("+ 28 with the exists outcome never seen"), "{s}");
        assert!(s.contains("+ 1 skipped: T7 (no cores)"), "{s}");
        let s = render(&Run::new(&rep), None, &Options { all_litmus: true });
        assert_eq!(
            s.lines().filter(|l| l.starts_with("  T")).count(),
            30,
            "{s}"
        );
    }
}
