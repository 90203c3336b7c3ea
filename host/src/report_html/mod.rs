//! `atomprobe report FILE... --html OUT.html`: one self-contained HTML page (inline CSS and SVG,
//! no script, no font or network fetch), readable offline and printable.
//!
//! - litmus: per record a bar chart of its outcome histogram ([`charts::bar_chart`], drawn with
//!   plotters), the `exists` outcome outlined, an outcome the model forbids in red; model,
//!   verdict, speed.
//! - tear / fault / excl (every probe family but `cost`): a matrix per family, one row per probe
//!   with the offset class taken out of its name (`ldxr-stxr-64`), columns run × attribute (×
//!   the values of any extra field, e.g. the MMU matrix's `mapping`) × offset class; each record
//!   a coloured mark (atomic, torn, fault kind, deviation …) whose `title` carries the details and
//!   counts. The matrices are HTML tables rather than charts: each cell needs a hover text
//!   (`title`), which the SVG that plotters writes has no way to carry.
//! - cost: per run and attribute a bar chart of cycles per operation.
//! - several reports: side by side, the run's board and CPU in each column header; where
//!   `atomprobe compare`'s matching ([`crate::compare::build_rows`]) says the runs disagree, the
//!   cell is outlined and its title says how.
//!
//! A damaged report is refused unless `--allow-damaged`; then the page opens with a banner.

pub mod charts;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use probes::record::{Litmus, ModelVerdict, Probe, ProbeResult, Record, Verdict};
use probes::report::ParsedReport;

use crate::compare::{build_rows, Input, Row};
use crate::view::model::{name_of, Entry, Run};
use charts::{Bar, EXISTS_ALLOWED, FORBIDDEN, PLAIN};

/// Escape text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Offset classes as the probe names spell them, most specific first.
const CLASSES: &[&str] = &["cross-page", "cross-line", "misaligned", "aligned"];

/// Split a probe name into its row name and offset class: `ldxr-stxr-64-cross-line` →
/// (`ldxr-stxr-64`, `cross-line`); a name with no class gets `+<offset>`.
pub fn split_class(p: &Probe) -> (String, String) {
    for c in CLASSES {
        let pat = format!("-{c}");
        if let Some(i) = p.name.find(&pat) {
            let end = i + pat.len();
            if end == p.name.len() || p.name[end..].starts_with('-') {
                return (format!("{}{}", &p.name[..i], &p.name[end..]), c.to_string());
            }
        }
    }
    (p.name.clone(), format!("+{}", p.offset))
}

/// Parse `exists (1:X0=1 /\ 1:X2=0)` into its `loc=value` terms; `None` when the condition is
/// not a plain conjunction (then no outcome is marked).
pub fn exists_terms(cond: &str) -> Option<Vec<(String, String)>> {
    let c = cond.trim();
    let c = c.strip_prefix("exists").unwrap_or(c).trim();
    let c = c
        .strip_prefix('(')
        .and_then(|c| c.strip_suffix(')'))
        .unwrap_or(c);
    if c.contains("\\/") || c.contains('~') || c.contains("not ") {
        return None;
    }
    c.split("/\\")
        .map(|t| {
            let (l, v) = t.split_once('=')?;
            Some((l.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// Whether an outcome (`1:X0=1; 1:X2=0;`) satisfies every term.
pub fn outcome_matches(outcome: &str, terms: &[(String, String)]) -> bool {
    let vals: BTreeMap<&str, &str> = outcome
        .split(';')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.trim(), v.trim()))
        })
        .collect();
    !terms.is_empty()
        && terms
            .iter()
            .all(|(k, v)| vals.get(k.as_str()).is_some_and(|x| x == v))
}

/// CSS class and short text of a probe record's mark.
fn mark_of(p: &Probe) -> (String, String) {
    if p.verdict == Verdict::Deviation {
        return ("r-deviation".into(), format!("{}!", short_result(p)));
    }
    match p.result {
        ProbeResult::Fault => {
            let kind = p.fault.as_ref().map_or("other", |f| f.kind.as_str());
            (format!("r-fault k-{kind}"), short_result(p))
        }
        r => (format!("r-{}", name_of(&r)), short_result(p)),
    }
}

fn short_result(p: &Probe) -> String {
    match p.result {
        ProbeResult::Atomic => "A".into(),
        ProbeResult::Torn => "T".into(),
        ProbeResult::Ok => "ok".into(),
        ProbeResult::LostUpdates => "L".into(),
        ProbeResult::Livelock => "LL".into(),
        ProbeResult::Skipped => "–".into(),
        ProbeResult::Fault => {
            let kind = p.fault.as_ref().map_or("other", |f| f.kind.as_str());
            match kind {
                "alignment" => "F:al".into(),
                "translation" => "F:tr".into(),
                "permission" => "F:pm".into(),
                "access-flag" => "F:af".into(),
                "external" => "F:ex".into(),
                "unsupported-atomic" => "F:ua".into(),
                "general-protection" => "F:gp".into(),
                "undefined" => "F:ud".into(),
                _ => "F".into(),
            }
        }
    }
}

/// Hover text of a probe record.
fn probe_title(label: &str, e: &Entry, p: &Probe, differs: &[String]) -> String {
    let mut t = format!(
        "{label}: {}/{} {} w{} +{} ({})\nresult: {}",
        p.family,
        p.name,
        p.attr,
        p.width,
        p.offset,
        p.op,
        name_of(&p.result)
    );
    if let Some(f) = &p.fault {
        let _ = write!(t, " ({})", f.kind);
        if let Some(d) = &f.detail {
            let _ = write!(t, "\nfault: {d}");
        }
    }
    let _ = write!(t, "\nverdict: {}", name_of(&p.verdict));
    let counts: Vec<String> = p.counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if !counts.is_empty() {
        let _ = write!(t, "\ncounts: {}", counts.join(" "));
    }
    let _ = write!(t, "\niterations: {}, cpus {:?}", p.iterations, p.cpus);
    for (k, v) in e.extras() {
        let _ = write!(t, "\n{k}: {v}");
    }
    let _ = write!(t, "\nexpected: {}", p.expected);
    if !p.rule.is_empty() {
        let _ = write!(t, "\nrule: {}", p.rule);
    }
    if let Some(r) = &p.reason {
        let _ = write!(t, "\nreason: {r}");
    }
    if !differs.is_empty() {
        let _ = write!(t, "\nDIFFERS: {}", differs.join("; "));
    }
    t
}

const CSS: &str = r#"
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.2em;color:#222;background:#fff}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.25em;margin-top:1.6em;border-bottom:2px solid #ccc}
h3{font-size:1.05em;margin:1.2em 0 .4em}
table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 6px;vertical-align:top}
th{background:#f3f3f3;font-weight:600}
.runs td,.runs th{text-align:left}
.banner{background:#b71c1c;color:#fff;padding:.8em 1em;font-weight:700;font-size:1.1em;margin:.6em 0}
.note{color:#555;font-size:13px}
.matrix td.cell{text-align:center;min-width:2.6em;padding:2px}
.matrix th.rowname{text-align:left;font-family:ui-monospace,monospace;font-weight:normal;white-space:nowrap}
.rec{display:inline-block;min-width:2.2em;padding:1px 3px;margin:1px;border-radius:3px;font-family:ui-monospace,monospace;font-size:12px}
.r-atomic{background:#a5d6a7}.r-ok{background:#c5e1a5}.r-torn{background:#ffcc80}
.r-fault{background:#90caf9}.k-alignment{background:#90caf9}.k-translation,.k-permission,.k-access-flag{background:#b39ddb}
.k-external,.k-other{background:#ce93d8}.k-unsupported-atomic{background:#80deea}.k-general-protection{background:#9fa8da}.k-undefined{background:#f48fb1}
.r-lost-updates{background:#ef9a9a}.r-livelock{background:#f8bbd0}.r-skipped{background:#eee;color:#888}
.r-deviation{background:#c62828;color:#fff;font-weight:700}
.differs{outline:3px solid #d500f9;outline-offset:-2px}
.legend .rec{margin-right:.3em}
.litmus td.run{min-width:440px}
.facts{font-size:12px;margin:.2em 0}
.v-violation{color:#c62828;font-weight:700}.v-ok{color:#2e7d32}.v-skipped{color:#888}
figure{margin:0}
figure svg{max-width:100%;height:auto}
.cost td.run{min-width:380px}
.cost table.recs{margin-top:.3em}
@media print{body{margin:0}h2{break-before:auto}tr,figure{break-inside:avoid}.differs{outline-color:#000}}
"#;

/// One report in the page.
struct Page<'a> {
    label: &'a str,
    name: &'a str,
    run: Run<'a>,
}

impl Page<'_> {
    fn header(&self) -> String {
        format!("{}: {}", self.label, self.run.describe())
    }
}

/// The HTML page for `inputs` (one or more reports).
pub fn render(inputs: &[Input]) -> String {
    let pages: Vec<Page> = inputs
        .iter()
        .map(|i| Page {
            label: &i.label,
            name: &i.name,
            run: Run::new(&i.report),
        })
        .collect();
    let reports: Vec<&ParsedReport> = inputs.iter().map(|i| &i.report).collect();
    let labels: Vec<String> = inputs.iter().map(|i| i.label.clone()).collect();
    let rows = build_rows(&reports, &labels);
    // (report, record index) → the comparison's differences (not "only in …": a record of one
    // architecture has no counterpart in the other, which is no disagreement to outline).
    let mut differs: BTreeMap<(usize, usize), Vec<String>> = BTreeMap::new();
    if inputs.len() > 1 {
        for r in &rows {
            for (i, ri) in r.records.iter().enumerate() {
                if let Some(ri) = ri {
                    differs.insert((i, *ri), r.differs.clone());
                }
            }
        }
    }
    let real = |d: &[String]| d.iter().any(|x| !x.starts_with("only in "));

    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    let title = if pages.len() == 1 {
        format!("atomprobe report: {}", pages[0].run.describe())
    } else {
        format!("atomprobe comparison of {} reports", pages.len())
    };
    let _ = writeln!(
        h,
        "<title>{}</title><style>{CSS}</style></head><body>",
        esc(&title)
    );
    let _ = writeln!(h, "<h1>{}</h1>", esc(&title));
    h.push_str("<nav class=\"note\">Sections: <a href=\"#runs\">runs</a> · <a href=\"#deviations\">deviations and violations</a> · <a href=\"#litmus\">litmus tests</a> · <a href=\"#matrices\">probe matrices</a> · <a href=\"#cost\">cost</a></nav>\n");
    for p in &pages {
        if let Some(d) = p.run.damaged() {
            let _ = writeln!(
                h,
                "<div class=\"banner\">DAMAGED REPORT {}: {} is {}. Records may be missing or altered; nothing here can be trusted.</div>",
                esc(p.label),
                esc(p.name),
                esc(&d)
            );
        }
    }
    runs_table(&mut h, &pages);
    if pages.len() > 1 {
        let n = rows.iter().filter(|r| real(&r.differs)).count();
        let _ = writeln!(
            h,
            "<p class=\"note\">{} matched rows (matched as <code>atomprobe compare</code> does: probe by family, name, attribute and width, litmus by test and attribute, each architecture's normal cacheable memory as one attribute); <b>{n}</b> where the runs disagree, outlined <span class=\"rec differs\">like this</span>; hover for details.</p>",
            rows.len()
        );
    }
    deviations(&mut h, &pages);
    litmus_section(&mut h, &pages, &rows, &real);
    matrices(&mut h, &pages, &differs, &real);
    cost_section(&mut h, &pages, &differs, &real);
    h.push_str("</body></html>\n");
    h
}

fn runs_table(h: &mut String, pages: &[Page]) {
    h.push_str("<h2 id=\"runs\">Runs</h2><table class=\"runs\"><thead><tr><th>run</th><th>file</th><th>board</th><th>arch</th><th>level</th><th>CPU id</th><th>cores</th><th>command line</th><th>records</th><th>integrity</th><th>end</th></tr></thead><tbody>\n");
    for p in pages {
        let b = p.run.begin();
        let (on, off) = p.run.cores_online();
        let end = p.run.report.end().map_or("no end record".to_string(), |e| {
            format!(
                "{} after {:.1} s",
                name_of(&e.status),
                e.elapsed_ms as f64 / 1000.0
            )
        });
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{on}{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(p.label),
            esc(p.name),
            esc(b.map_or("?", |b| &b.board)),
            esc(b.map_or("?", |b| &b.arch)),
            b.map_or(String::new(), |b| match (b.el, b.ring) {
                (Some(e), _) => format!("EL{e}"),
                (_, Some(r)) => format!("ring {r}"),
                _ => String::new(),
            }),
            esc(b.map_or("?", |b| &b.cpu_id)),
            match (on, off, b.and_then(|b| b.platform.get("os_cpus"))) {
                (0, 0, Some(c)) => format!(" (OS CPUs {})", esc(c)),
                (_, 0, _) => String::new(),
                _ => format!(" (+{off} offline)"),
            },
            esc(b.map_or("", |b| &b.cmdline)),
            p.run.report.lines.len(),
            esc(&crate::compare::integrity_text(&p.run.report.integrity)),
            esc(&end),
        );
    }
    h.push_str("</tbody></table>\n");
    // Errors of each run.
    for p in pages {
        let errs: Vec<&probes::record::ErrorRec> = p
            .run
            .report
            .records
            .iter()
            .filter_map(|r| match r {
                Record::Error(e) => Some(e),
                _ => None,
            })
            .collect();
        if !errs.is_empty() {
            let _ = writeln!(
                h,
                "<h3>Errors in {}</h3><ul class=\"errors\">",
                esc(p.label)
            );
            for e in errs {
                let _ = writeln!(h, "<li><b>{}</b>: {}</li>", esc(&e.what), esc(&e.message));
            }
            h.push_str("</ul>\n");
        }
    }
}

fn deviations(h: &mut String, pages: &[Page]) {
    let mut items = Vec::new();
    for p in pages {
        for e in &p.run.entries {
            match &e.record {
                Record::Probe(x) if x.verdict == Verdict::Deviation => items.push(format!(
                    "<li><b>{}</b> {}/{} {} w{}: {} — expected {}; rule: {}</li>",
                    esc(p.label),
                    esc(&x.family),
                    esc(&x.name),
                    esc(&x.attr),
                    x.width,
                    esc(&name_of(&x.result)),
                    esc(&x.expected),
                    esc(&x.rule)
                )),
                Record::Litmus(l) if l.verdict == Verdict::Violation => items.push(format!(
                    "<li><b>{}</b> litmus/{} {}: {}/{} observed, model {}; rule: {}{}</li>",
                    esc(p.label),
                    esc(&l.name),
                    esc(&l.attr),
                    l.observed,
                    l.iterations,
                    esc(&name_of(&l.model)),
                    esc(&l.rule),
                    l.reason
                        .as_deref()
                        .map(|r| format!("<br><span class=\"note\">{}</span>", esc(r)))
                        .unwrap_or_default()
                )),
                _ => {}
            }
        }
    }
    let _ = writeln!(
        h,
        "<h2 id=\"deviations\">Deviations and violations: {}</h2>",
        items.len()
    );
    if !items.is_empty() {
        let _ = writeln!(h, "<ul class=\"deviations\">{}</ul>", items.join("\n"));
    }
}

fn run_header(p: &Page) -> String {
    format!("<th class=\"runhead\">{}</th>", esc(&p.header()))
}

fn litmus_section(h: &mut String, pages: &[Page], rows: &[Row], real: &dyn Fn(&[String]) -> bool) {
    // Tests run in more than one report first (the side-by-side view), then the others.
    let mut lrows: Vec<&Row> = rows.iter().filter(|r| r.kind == "litmus").collect();
    lrows.sort_by_key(|r| r.records.iter().filter(|x| x.is_some()).count() < 2.min(pages.len()));
    if lrows.is_empty() {
        return;
    }
    let _ = writeln!(
        h,
        "<h2 id=\"litmus\">Litmus tests</h2><p class=\"note\">Outcome histograms: one bar per outcome seen, its count after it (a small non-zero count is drawn at a minimum length so it stays visible). The <code>exists</code> outcome is outlined in black: <span class=\"rec\" style=\"background:#f2a900\">amber</span> when the model allows it, <span class=\"rec\" style=\"background:#d32f2f;color:#fff\">red</span> when it forbids it (seeing it is a violation).</p>"
    );
    h.push_str("<table class=\"litmus\"><thead><tr><th>test</th>");
    for p in pages {
        h.push_str(&run_header(p));
    }
    h.push_str("</tr></thead><tbody>\n");
    for r in lrows {
        let (name, attr) = r
            .records
            .iter()
            .enumerate()
            .find_map(
                |(i, ri)| match ri.map(|ri| &pages[i].run.report.records[ri]) {
                    Some(Record::Litmus(l)) => Some((l.name.clone(), l.attr.clone())),
                    _ => None,
                },
            )
            .unwrap_or_default();
        let _ = write!(
            h,
            "<tr class=\"litmus-row\"><th class=\"rowname\">{}<br><span class=\"note\">{}</span></th>",
            esc(&name),
            esc(&attr)
        );
        for (i, p) in pages.iter().enumerate() {
            let Some(ri) = r.records[i] else {
                h.push_str("<td class=\"run absent\"><span class=\"note\">not run</span></td>");
                continue;
            };
            let (Record::Litmus(l), Some(e)) = (&p.run.report.records[ri], p.run.entries.get(ri))
            else {
                h.push_str("<td class=\"run\"></td>");
                continue;
            };
            let d = real(&r.differs) && pages.len() > 1;
            let _ = write!(
                h,
                "<td class=\"run{}\"{}>",
                if d { " differs" } else { "" },
                if r.differs.is_empty() || pages.len() == 1 {
                    String::new()
                } else {
                    format!(
                        " title=\"{}\"",
                        esc(&format!("differs: {}", r.differs.join("; ")))
                    )
                }
            );
            litmus_figure(h, p.label, e, l);
            h.push_str("</td>");
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table>\n");
}

fn litmus_figure(h: &mut String, label: &str, e: &Entry, l: &Litmus) {
    let _ = write!(
        h,
        "<figure class=\"litmus-chart\" data-run=\"{}\" data-test=\"{}\" data-attr=\"{}\">",
        esc(label),
        esc(&l.name),
        esc(&l.attr)
    );
    if l.verdict == Verdict::Skipped {
        let _ = write!(
            h,
            "<p class=\"facts v-skipped\">skipped: {}</p>",
            esc(l.reason.as_deref().unwrap_or("no reason given"))
        );
    } else {
        let terms = exists_terms(&l.condition);
        let bars: Vec<Bar> = l
            .histogram
            .iter()
            .map(|o| {
                let exists = terms
                    .as_deref()
                    .is_some_and(|t| outcome_matches(&o.outcome, t));
                Bar {
                    label: o.outcome.clone(),
                    value: o.count as f64,
                    value_text: o.count.to_string(),
                    colour: match (exists, l.model) {
                        (true, ModelVerdict::Forbidden) => FORBIDDEN,
                        (true, ModelVerdict::Allowed) => EXISTS_ALLOWED,
                        _ => PLAIN,
                    },
                    marked: exists,
                }
            })
            .collect();
        match charts::bar_chart(&bars, 440, "instances") {
            Ok(svg) => h.push_str(&svg),
            Err(err) => {
                let _ = write!(h, "<p class=\"facts\">chart failed: {}</p>", esc(&err));
            }
        }
    }
    let extras: Vec<String> = e
        .extras()
        .iter()
        .map(|(k, v)| format!("{}={}", esc(k), esc(v)))
        .collect();
    let _ = write!(
        h,
        "<figcaption class=\"facts\"><code>{}</code>: {}/{} ({}) · model <b>{}</b> · verdict <b class=\"v-{}\">{}</b> · {} iter/s · {} relaxed/s · {} ms{}<br><span class=\"note\">rule: {}</span></figcaption></figure>",
        esc(&l.condition),
        l.observed,
        l.iterations,
        crate::compare::rate_text(l.observed, l.iterations),
        esc(&name_of(&l.model)),
        esc(&name_of(&l.verdict)),
        esc(&name_of(&l.verdict)),
        l.iter_per_s,
        l.relaxed_per_s,
        l.elapsed_ms,
        if extras.is_empty() { String::new() } else { format!(" · {}", extras.join(" ")) },
        esc(&l.rule),
    );
}

/// A column group of a matrix: attribute plus the values of extra fields that take few values.
type Group = String;

fn matrices(
    h: &mut String,
    pages: &[Page],
    differs: &BTreeMap<(usize, usize), Vec<String>>,
    real: &dyn Fn(&[String]) -> bool,
) {
    // Families other than cost, in first-seen order over the runs.
    let mut fams: Vec<String> = Vec::new();
    for p in pages {
        for f in p.run.families() {
            if f != "litmus" && f != "cost" && !fams.contains(&f) {
                fams.push(f);
            }
        }
    }
    if fams.is_empty() {
        return;
    }
    let _ = writeln!(h, "<h2 id=\"matrices\">Probe matrices</h2><p class=\"note legend\">Rows: probe (its offset class taken out of the name); columns: run × attribute{} × offset class. Marks: <span class=\"rec r-atomic\">A</span> atomic <span class=\"rec r-torn\">T</span> torn <span class=\"rec r-ok\">ok</span> ok <span class=\"rec r-fault k-alignment\">F:al</span> fault (kind: al alignment, tr translation, pm permission, af access flag, ex external, ua unsupported atomic, gp general protection, ud undefined) <span class=\"rec r-lost-updates\">L</span> lost updates <span class=\"rec r-livelock\">LL</span> livelock <span class=\"rec r-skipped\">–</span> skipped <span class=\"rec r-deviation\">T!</span> deviation. Hover a mark for its counts, rule and reason.</p>",
        if pages.iter().any(|p| p.run.entries.iter().any(|e| !e.extras().is_empty())) { " (× extra fields)" } else { "" });
    for fam in &fams {
        // Records of this family per run, with their group, row and class.
        struct Cellrec<'a> {
            page: usize,
            idx: usize,
            entry: &'a Entry,
            probe: &'a Probe,
            group: Group,
            row: String,
            class: String,
        }
        let mut recs: Vec<Cellrec> = Vec::new();
        for (pi, p) in pages.iter().enumerate() {
            // Extra fields that take at most 6 values in this family become column dimensions.
            let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for e in &p.run.entries {
                if let Record::Probe(x) = &e.record {
                    if &x.family == fam {
                        for (k, v) in e.extras() {
                            let vs = values.entry(k).or_default();
                            if !vs.contains(&v) {
                                vs.push(v);
                            }
                        }
                    }
                }
            }
            let dims: Vec<&String> = values
                .iter()
                .filter(|(_, v)| v.len() <= 6)
                .map(|(k, _)| k)
                .collect();
            for (idx, e) in p.run.entries.iter().enumerate() {
                let Record::Probe(x) = &e.record else {
                    continue;
                };
                if &x.family != fam {
                    continue;
                }
                let extras = e.extras();
                let mut group = x.attr.clone();
                for d in &dims {
                    if let Some((_, v)) = extras.iter().find(|(k, _)| k == *d) {
                        let _ = write!(group, " · {d}={v}");
                    }
                }
                let (row, class) = split_class(x);
                recs.push(Cellrec {
                    page: pi,
                    idx,
                    entry: e,
                    probe: x,
                    group,
                    row,
                    class,
                });
            }
        }
        // Columns: per run, groups in first-seen order, classes in CLASSES order then others.
        let class_rank = |c: &str| {
            CLASSES
                .iter()
                .rev()
                .position(|x| *x == c)
                .unwrap_or(CLASSES.len())
        };
        let mut cols: Vec<(usize, Group, Vec<String>)> = Vec::new();
        for r in &recs {
            match cols
                .iter_mut()
                .find(|(p, g, _)| *p == r.page && *g == r.group)
            {
                Some((_, _, cl)) => {
                    if !cl.contains(&r.class) {
                        cl.push(r.class.clone());
                    }
                }
                None => cols.push((r.page, r.group.clone(), vec![r.class.clone()])),
            }
        }
        for (_, _, cl) in &mut cols {
            cl.sort_by_key(|c| (class_rank(c), c.clone()));
        }
        let mut row_names: Vec<String> = Vec::new();
        for r in &recs {
            if !row_names.contains(&r.row) {
                row_names.push(r.row.clone());
            }
        }
        let _ = writeln!(
            h,
            "<h3 id=\"matrix-{}\">{}</h3><table class=\"matrix\" data-family=\"{}\"><thead>",
            esc(fam),
            esc(fam),
            esc(fam)
        );
        // Header 1: runs.
        h.push_str("<tr><th rowspan=\"3\">probe</th>");
        for (pi, p) in pages.iter().enumerate() {
            let span: usize = cols
                .iter()
                .filter(|(cp, _, _)| *cp == pi)
                .map(|(_, _, cl)| cl.len())
                .sum();
            if span > 0 {
                let _ = write!(
                    h,
                    "<th class=\"runhead\" colspan=\"{span}\">{}</th>",
                    esc(&p.header())
                );
            }
        }
        h.push_str("</tr><tr>");
        for (_, g, cl) in &cols {
            let _ = write!(h, "<th colspan=\"{}\">{}</th>", cl.len(), esc(g));
        }
        h.push_str("</tr><tr>");
        for (_, _, cl) in &cols {
            for c in cl {
                let _ = write!(h, "<th>{}</th>", esc(c));
            }
        }
        h.push_str("</tr></thead><tbody>\n");
        for rn in &row_names {
            let _ = write!(h, "<tr><th class=\"rowname\">{}</th>", esc(rn));
            for (pi, g, cl) in &cols {
                for c in cl {
                    let here: Vec<&Cellrec> = recs
                        .iter()
                        .filter(|r| r.page == *pi && r.group == *g && r.class == *c && r.row == *rn)
                        .collect();
                    let any_diff = here
                        .iter()
                        .any(|r| differs.get(&(r.page, r.idx)).is_some_and(|d| real(d)));
                    let _ = write!(
                        h,
                        "<td class=\"cell{}\">",
                        if any_diff { " differs" } else { "" }
                    );
                    for r in here {
                        let d = differs.get(&(r.page, r.idx)).cloned().unwrap_or_default();
                        let (cls, text) = mark_of(r.probe);
                        let _ = write!(
                            h,
                            "<span class=\"rec mark {cls}\" title=\"{}\">{}</span>",
                            esc(&probe_title(pages[r.page].label, r.entry, r.probe, &d)),
                            esc(&text)
                        );
                    }
                    h.push_str("</td>");
                }
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</tbody></table>\n");
    }
}

/// Cycles per operation of a cost record: `cycles_per_op_x100 / 100`, else `cycles_per_op`.
pub fn cycles_per_op(p: &Probe) -> Option<f64> {
    p.counts
        .get("cycles_per_op_x100")
        .map(|v| *v as f64 / 100.0)
        .or_else(|| p.counts.get("cycles_per_op").map(|v| *v as f64))
}

fn cost_section(
    h: &mut String,
    pages: &[Page],
    differs: &BTreeMap<(usize, usize), Vec<String>>,
    real: &dyn Fn(&[String]) -> bool,
) {
    // Attribute groups (matched as compare matches them) in first-seen order.
    let mut attrs: Vec<String> = Vec::new();
    for p in pages {
        for e in &p.run.entries {
            if let Record::Probe(x) = &e.record {
                let a = crate::compare::match_attr(&x.attr).to_string();
                if x.family == "cost" && !attrs.contains(&a) {
                    attrs.push(a);
                }
            }
        }
    }
    if attrs.is_empty() {
        return;
    }
    h.push_str("<h2 id=\"cost\">Cost</h2><p class=\"note\">Median cycles per operation (the cycle counter of each run: PMCCNTR_EL0 on aarch64, RDTSC on x86, so runs at different clock rates are not directly comparable); skipped probes have no bar.</p>\n");
    h.push_str("<table class=\"cost\"><thead><tr><th>attribute</th>");
    for p in pages {
        h.push_str(&run_header(p));
    }
    h.push_str("</tr></thead><tbody>\n");
    for a in &attrs {
        // The attribute names as the runs spell them (`normal-wb` and `wb` are one group).
        let mut shown: Vec<&str> = Vec::new();
        for p in pages {
            for e in &p.run.entries {
                if let Record::Probe(x) = &e.record {
                    if x.family == "cost"
                        && crate::compare::match_attr(&x.attr) == a
                        && !shown.contains(&x.attr.as_str())
                    {
                        shown.push(&x.attr);
                    }
                }
            }
        }
        let _ = write!(
            h,
            "<tr><th class=\"rowname\">{}</th>",
            esc(&shown.join(" / "))
        );
        for (pi, p) in pages.iter().enumerate() {
            let recs: Vec<(usize, &Entry, &Probe)> = p
                .run
                .entries
                .iter()
                .enumerate()
                .filter_map(|(i, e)| match &e.record {
                    Record::Probe(x)
                        if x.family == "cost" && crate::compare::match_attr(&x.attr) == a =>
                    {
                        Some((i, e, x))
                    }
                    _ => None,
                })
                .collect();
            if recs.is_empty() {
                h.push_str("<td class=\"run absent\"><span class=\"note\">not run</span></td>");
                continue;
            }
            let any_diff = recs
                .iter()
                .any(|(i, _, _)| differs.get(&(pi, *i)).is_some_and(|d| real(d)));
            let _ = write!(
                h,
                "<td class=\"run{}\">",
                if any_diff { " differs" } else { "" }
            );
            let bars: Vec<Bar> = recs
                .iter()
                .filter_map(|(_, _, x)| {
                    let v = cycles_per_op(x).filter(|_| x.result != ProbeResult::Skipped)?;
                    Some(Bar {
                        label: x.name.clone(),
                        value: v,
                        value_text: format!("{v:.2}"),
                        colour: PLAIN,
                        marked: false,
                    })
                })
                .collect();
            let _ = write!(
                h,
                "<figure class=\"cost-chart\" data-run=\"{}\" data-attr=\"{}\">",
                esc(p.label),
                esc(a)
            );
            if bars.is_empty() {
                h.push_str("<p class=\"facts v-skipped\">every cost probe skipped</p>");
            } else {
                match charts::bar_chart(&bars, 380, "cycles per operation") {
                    Ok(svg) => h.push_str(&svg),
                    Err(err) => {
                        let _ = write!(h, "<p class=\"facts\">chart failed: {}</p>", esc(&err));
                    }
                }
            }
            h.push_str("<table class=\"recs\"><tbody>");
            for (i, e, x) in &recs {
                let d = differs.get(&(pi, *i)).cloned().unwrap_or_default();
                let (cls, _) = mark_of(x);
                let _ = write!(
                    h,
                    "<tr class=\"rec-row\" title=\"{}\"><td><code>{}</code></td><td>{}</td><td><span class=\"rec {cls}\">{}</span></td></tr>",
                    esc(&probe_title(p.label, e, x, &d)),
                    esc(&x.name),
                    cycles_per_op(x)
                        .filter(|_| x.result != ProbeResult::Skipped)
                        .map_or("skipped".to_string(), |v| format!("{v:.2} cycles/op")),
                    esc(&name_of(&x.verdict)),
                );
            }
            h.push_str("</tbody></table></figure></td>");
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use probes::report::parse_report;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    fn input(label: &str, name: &str) -> Input {
        Input {
            label: label.into(),
            name: name.into(),
            report: parse_report(&fixture(name)),
        }
    }

    fn count(h: &str, pat: &str) -> usize {
        h.matches(pat).count()
    }

    #[test]
    fn class_and_condition_parsing() {
        let mut p = match parse_report(&fixture("report-virt-small.jsonl"))
            .records
            .into_iter()
            .find_map(|r| match r {
                Record::Probe(p) => Some(p),
                _ => None,
            }) {
            Some(p) => p,
            None => panic!("no probe"),
        };
        p.name = "lock-xadd-64-cross-line-contended".into();
        assert_eq!(
            split_class(&p),
            ("lock-xadd-64-contended".into(), "cross-line".into())
        );
        p.name = "ldxr-stxr-64-misaligned".into();
        assert_eq!(
            split_class(&p),
            ("ldxr-stxr-64".into(), "misaligned".into())
        );
        p.name = "dmb-ish".into();
        assert_eq!(split_class(&p).1, format!("+{}", p.offset));

        let t = exists_terms("exists (1:X0=1 /\\ 1:X2=0)").unwrap();
        assert_eq!(t.len(), 2);
        assert!(outcome_matches("1:X0=1; 1:X2=0;", &t));
        assert!(!outcome_matches("1:X0=0; 1:X2=0;", &t));
        assert!(exists_terms("exists (0:X0=1 \\/ 1:X0=1)").is_none());
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn one_report_has_a_chart_per_litmus_record_and_a_mark_per_probe() {
        let inp = vec![input("A", "report-virt-small.jsonl")];
        let h = render(&inp);
        let recs = &inp[0].report.records;
        let lit = recs
            .iter()
            .filter(|r| matches!(r, Record::Litmus(_)))
            .count();
        let lit_run = recs
            .iter()
            .filter(|r| matches!(r, Record::Litmus(l) if l.verdict != Verdict::Skipped))
            .count();
        let matrix = recs
            .iter()
            .filter(|r| matches!(r, Record::Probe(p) if p.family != "cost"))
            .count();
        let cost = recs
            .iter()
            .filter(|r| matches!(r, Record::Probe(p) if p.family == "cost"))
            .count();
        assert!(lit > 0 && matrix > 0 && cost > 0);
        assert_eq!(count(&h, "<figure class=\"litmus-chart\""), lit);
        assert_eq!(count(&h, "<tr class=\"litmus-row\""), lit);
        let cost_charts = count(&h, "<figure class=\"cost-chart\"");
        assert_eq!(
            count(&h, "<svg"),
            lit_run + cost_charts - count(&h, "every cost probe skipped")
        );
        assert_eq!(count(&h, "<span class=\"rec mark "), matrix);
        assert_eq!(count(&h, "<tr class=\"rec-row\""), cost);
        assert!(!h.contains("DAMAGED"));
        assert!(!h.contains(" differs\""), "one report: nothing outlined");
        // Self-contained: no script, no external resource (the only URL is SVG's namespace
        // name, which is never fetched).
        let urls = h.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        for bad in [
            "<script", "http://", "https://", "<link", "@import", "url(", " src=",
        ] {
            assert!(!urls.contains(bad), "{bad}");
        }
    }

    #[test]
    fn side_by_side_outlines_disagreements() {
        let inp = vec![
            input("A", "report-virt-small.jsonl"),
            input("B", "report-hosted-small.jsonl"),
        ];
        let h = render(&inp);
        let heads = count(&h, "class=\"runhead\"");
        assert!(heads >= 2, "{heads}");
        assert!(
            h.contains("A: qemu-virt aarch64 EL1"),
            "run header names board and CPU"
        );
        assert!(h.contains("B: hosted-"), "run header names board");
        // Litmus tests matched across the architectures; at least one pair disagrees in the
        // fixtures (MP: allowed on aarch64, forbidden on x86-64 → "model differs").
        assert!(h.contains("class=\"run differs\""), "no outlined cell");
        assert!(h.contains("model differs"));
    }

    #[test]
    fn damaged_report_gets_a_banner() {
        let text =
            fixture("report-virt-small.jsonl").replacen("\"iterations\":", "\"iterations\":9", 1);
        let inp = vec![Input {
            label: "A".into(),
            name: "bad.jsonl".into(),
            report: parse_report(&text),
        }];
        let h = render(&inp);
        assert!(
            h.contains(
                "<div class=\"banner\">DAMAGED REPORT A: bad.jsonl is Corrupted (CRC mismatch"
            ),
            "{}",
            &h[..2000]
        );
    }
}
