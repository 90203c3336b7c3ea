//! A report as the views read it: each record with the raw JSON it came from, so fields this
//! version does not know (added by later schema extensions, e.g. the MMU matrix's `mapping`,
//! `share`, `granule`, `caches`, `effective`) are still shown, generically, by [`Entry::extras`].

use std::collections::BTreeMap;

use probes::record::{Begin, Record};
use probes::report::{Integrity, ParsedReport};
use serde_json::Value;

/// The fields of `probe` and `litmus` records that the views render specifically (schema 1 and
/// the extras in docs/report-format.md); every other field is an extra.
pub const PROBE_FIELDS: &[&str] = &[
    "type",
    "family",
    "name",
    "attr",
    "width",
    "offset",
    "op",
    "cpus",
    "iterations",
    "result",
    "counts",
    "expected",
    "verdict",
    "fault",
    "rule",
    "reason",
    "elapsed_ms",
];
/// See [`PROBE_FIELDS`].
pub const LITMUS_FIELDS: &[&str] = &[
    "type",
    "name",
    "attr",
    "cpus",
    "iterations",
    "histogram",
    "condition",
    "observed",
    "model",
    "verdict",
    "elapsed_ms",
    "iter_per_s",
    "relaxed_per_s",
    "rule",
    "reason",
];

/// One record and the JSON object of its line.
#[derive(Clone, Debug)]
pub struct Entry {
    pub record: Record,
    pub raw: Value,
}

impl Entry {
    /// Fields of a `probe` / `litmus` record that the views do not render specifically, as
    /// `(name, value as text)`, in the order of the line (serde_json keeps keys sorted; that
    /// order is stable, which is what matters for a view).
    pub fn extras(&self) -> Vec<(String, String)> {
        let known = match self.record {
            Record::Probe(_) => PROBE_FIELDS,
            Record::Litmus(_) => LITMUS_FIELDS,
            _ => return Vec::new(),
        };
        let Value::Object(map) = &self.raw else {
            return Vec::new();
        };
        map.iter()
            .filter(|(k, _)| !known.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), value_text(v)))
            .collect()
    }
}

/// A JSON value as short text: strings bare, everything else as JSON.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// A serde enum value's name (`"lost-updates"` → `lost-updates`).
pub fn name_of<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v)
        .unwrap_or_default()
        .trim_matches('"')
        .to_string()
}

/// A report for the views.
#[derive(Clone, Debug)]
pub struct Run<'a> {
    pub report: &'a ParsedReport,
    pub entries: Vec<Entry>,
}

impl<'a> Run<'a> {
    /// Pair each record of `report` with its line's JSON (a line that does not parse, in a
    /// corrupted report, is left out).
    pub fn new(report: &'a ParsedReport) -> Run<'a> {
        let entries = report
            .lines
            .iter()
            .filter_map(|l| {
                let raw: Value = serde_json::from_str(l).ok()?;
                let record = Record::from_line(l).ok()?;
                Some(Entry { record, raw })
            })
            .collect();
        Run { report, entries }
    }

    pub fn begin(&self) -> Option<&Begin> {
        self.report.records.iter().find_map(|r| match r {
            Record::Begin(b) => Some(b),
            _ => None,
        })
    }

    /// `board, arch, CPU` in a few words, e.g. `qemu-virt aarch64 EL1, cpu 0x410fd083 (cortex-a72)`.
    pub fn describe(&self) -> String {
        match self.begin() {
            Some(b) => {
                let level = match (b.el, b.ring) {
                    (Some(el), _) => format!(" EL{el}"),
                    (None, Some(r)) => format!(" ring {r}"),
                    _ => String::new(),
                };
                format!("{} {}{level}, cpu {}", b.board, b.arch, b.cpu_id)
            }
            None => "unknown board (no begin record)".into(),
        }
    }

    pub fn cores_online(&self) -> (usize, usize) {
        let mut on = 0;
        let mut off = 0;
        for r in &self.report.records {
            if let Record::Cpu(c) = r {
                if c.online {
                    on += 1;
                } else {
                    off += 1;
                }
            }
        }
        (on, off)
    }

    /// Families in the order their first record appears (`litmus` for litmus records).
    pub fn families(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for e in &self.entries {
            let f = match &e.record {
                Record::Probe(p) => p.family.clone(),
                Record::Litmus(_) => "litmus".into(),
                _ => continue,
            };
            if !out.contains(&f) {
                out.push(f);
            }
        }
        out
    }

    /// Whether the report is damaged, with the integrity text.
    pub fn damaged(&self) -> Option<String> {
        match &self.report.integrity {
            Integrity::Verified => None,
            i => Some(crate::compare::integrity_text(i)),
        }
    }
}

/// Counts of values, kept in first-seen order.
#[derive(Clone, Debug, Default)]
pub struct Counter {
    order: Vec<String>,
    counts: BTreeMap<String, usize>,
}

impl Counter {
    pub fn add(&mut self, k: impl Into<String>) {
        let k = k.into();
        if !self.counts.contains_key(&k) {
            self.order.push(k.clone());
        }
        *self.counts.entry(k).or_default() += 1;
    }

    pub fn get(&self, k: &str) -> usize {
        self.counts.get(k).copied().unwrap_or(0)
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// `a 3, b 1` in first-seen order.
    pub fn text(&self) -> String {
        self.order
            .iter()
            .map(|k| format!("{k} {}", self.counts[k]))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
