//! `atomprobe host`: the probe suite run as OS threads on this machine (`probes::hosted`), with
//! the image's boot arguments spelled as options.
//!
//! The options are turned into the image's command line (`probes=… attrs=… iters=…`) and parsed
//! by [`probes::config::Config::parse`], so a bad value gets the very `error` record the image
//! prints. A rejected option does not start the suite: the report then holds `begin`, the
//! `error` records and `end`, and the command exits 2.
//!
//! Progress goes to stderr: one line per record (family/name, attribute, result) and a summary
//! with the time spent in each family.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use probes::attr::{Arch, MemAttr};
use probes::config::Config;
use probes::fault::RawFault;
use probes::hosted::{normal_attr, HostedPlatform};
use probes::platform::{Arena, Platform, RuleEnv, RunError as PlatRunError};
use probes::record::{ProbeResult, Record, Verdict};

use crate::RunError;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct HostArgs {
    /// Probes to run: families (fault, tear, excl, litmus, cost), names (fault/ldxr-64) or globs
    /// ('litmus/SB*'), comma-separated. Default: all.
    #[arg(long, value_name = "LIST")]
    pub probes: Option<String>,
    /// Memory attributes, comma-separated. Default: the one user space gets (x86-64 `wb`,
    /// aarch64 `normal-wb`); others are reported skipped.
    #[arg(long, value_name = "LIST")]
    pub attrs: Option<String>,
    /// Base iteration count (suffix k or M allowed); each family scales it. Default 10000.
    #[arg(long, value_name = "N")]
    pub iters: Option<String>,
    /// Number of CPUs to use (the first N of this process's affinity mask). Default: all.
    #[arg(long, value_name = "N")]
    pub cpus: Option<String>,
    /// Seed of the probes' pseudo-random choices (decimal or 0x hex). Default 1.
    #[arg(long, value_name = "N")]
    pub seed: Option<String>,
    /// Write the records to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// No per-record progress lines on stderr (the summary is still printed).
    #[arg(long, short)]
    pub quiet: bool,
}

/// Exit status when an option was rejected (the report holds the `error` records).
pub const EXIT_BAD_OPTION: i32 = 2;

/// The image command line equivalent to `a`, or which value cannot be put on one.
pub fn cmdline(a: &HostArgs, arch: Arch) -> Result<String, String> {
    let attrs = a
        .attrs
        .clone()
        .unwrap_or_else(|| normal_attr(arch).name().to_string());
    let items = [
        ("probes", "--probes", a.probes.clone()),
        ("attrs", "--attrs", Some(attrs)),
        ("iters", "--iters", a.iters.clone()),
        ("cpus", "--cpus", a.cpus.clone()),
        ("seed", "--seed", a.seed.clone()),
    ];
    let mut parts = Vec::new();
    for (key, flag, value) in items {
        let Some(v) = value else { continue };
        if v.is_empty() || v.chars().any(char::is_whitespace) {
            return Err(format!(
                "{flag} {v:?}: the value must be one word without spaces (lists are \
                 comma-separated, e.g. {flag} {})",
                match key {
                    "probes" => "fault,litmus/SB*",
                    "attrs" => "wb,uc",
                    _ => "1000",
                }
            ));
        }
        parts.push(format!("{key}={v}"));
    }
    Ok(parts.join(" "))
}

/// Time and records per family, gathered from the records as they are emitted: the time between
/// one record and the next is charged to the family of the later record (a probe's record is
/// emitted when it finishes).
#[derive(Default, Debug)]
pub struct Tally {
    pub records: usize,
    pub families: BTreeMap<String, FamilyTally>,
    pub errors: usize,
    /// Probe results and litmus verdicts, counted.
    pub outcomes: BTreeMap<String, usize>,
}

#[derive(Default, Debug, Clone)]
pub struct FamilyTally {
    pub time: Duration,
    pub records: usize,
    /// First-seen order, for printing in run order.
    pub order: usize,
}

fn result_name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v)
        .unwrap_or_default()
        .trim_matches('"')
        .to_string()
}

impl Tally {
    /// Account for `rec`, emitted `since` after the previous record. Returns a progress line.
    pub fn note(&mut self, rec: &Record, since: Duration) -> Option<String> {
        self.records += 1;
        let (family, line) = match rec {
            Record::Probe(p) => {
                let r = result_name(&p.result);
                *self.outcomes.entry(format!("probe {r}")).or_default() += 1;
                let mut line = format!("{}/{} {} w{} → {r}", p.family, p.name, p.attr, p.width);
                if p.result == ProbeResult::Fault {
                    if let Some(f) = &p.fault {
                        line.push_str(&format!(" ({})", f.kind));
                    }
                }
                if p.verdict == Verdict::Deviation {
                    line.push_str(" [deviation]");
                }
                (p.family.clone(), line)
            }
            Record::Litmus(l) => {
                let v = result_name(&l.verdict);
                *self.outcomes.entry(format!("litmus {v}")).or_default() += 1;
                (
                    "litmus".to_string(),
                    format!(
                        "litmus/{} {} → {}/{} observed, {} ({v})",
                        l.name,
                        l.attr,
                        l.observed,
                        l.iterations,
                        result_name(&l.model)
                    ),
                )
            }
            Record::Error(e) => {
                self.errors += 1;
                (
                    "error".to_string(),
                    format!("error ({}): {}", e.what, e.message),
                )
            }
            _ => return None,
        };
        let n = self.families.len();
        let f = self.families.entry(family).or_insert_with(|| FamilyTally {
            order: n,
            ..Default::default()
        });
        f.time += since;
        f.records += 1;
        Some(format!("[{:>4}] {line}", self.records))
    }

    /// Families in run order with their time.
    pub fn per_family(&self) -> Vec<(&str, &FamilyTally)> {
        let mut v: Vec<(&str, &FamilyTally)> =
            self.families.iter().map(|(k, t)| (k.as_str(), t)).collect();
        v.sort_by_key(|(_, t)| t.order);
        v
    }

    /// One line: records, outcomes and time per family.
    pub fn summary(&self, total: Duration) -> String {
        let fam: Vec<String> = self
            .per_family()
            .iter()
            .map(|(f, t)| format!("{f} {:.1} s ({} rec)", t.time.as_secs_f64(), t.records))
            .collect();
        let out: Vec<String> = self
            .outcomes
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        format!(
            "atomprobe host: {} records in {:.1} s; {}; per family: {}",
            self.records,
            total.as_secs_f64(),
            if out.is_empty() {
                "no probe ran".to_string()
            } else {
                out.join(", ")
            },
            if fam.is_empty() {
                "-".to_string()
            } else {
                fam.join(", ")
            }
        )
    }
}

/// The hosted platform with a progress tally on every emitted record.
struct Watched<'a> {
    inner: &'a HostedPlatform,
    tally: Mutex<(Tally, Instant)>,
    quiet: bool,
}

impl Platform for Watched<'_> {
    fn env(&self) -> RuleEnv {
        self.inner.env()
    }
    fn config(&self) -> &Config {
        self.inner.config()
    }
    fn cpu_count(&self) -> usize {
        self.inner.cpu_count()
    }
    fn now_ns(&self) -> u64 {
        self.inner.now_ns()
    }
    fn cycles(&self) -> Option<u64> {
        self.inner.cycles()
    }
    fn arena(&self, attr: MemAttr) -> Result<Arena, String> {
        self.inner.arena(attr)
    }
    fn guarded(&self, op: &mut dyn FnMut()) -> Option<RawFault> {
        self.inner.guarded(op)
    }
    fn run_on(
        &self,
        cpus: &[usize],
        timeout_ms: u64,
        body: &(dyn Fn(usize) + Sync),
    ) -> Result<(), PlatRunError> {
        self.inner.run_on(cpus, timeout_ms, body)
    }
    fn emit(&self, rec: &Record) {
        self.inner.emit(rec);
        let mut g = self.tally.lock().unwrap_or_else(|e| e.into_inner());
        let (tally, last) = &mut *g;
        let now = Instant::now();
        let line = tally.note(rec, now - *last);
        *last = now;
        if let (Some(l), false) = (line, self.quiet) {
            eprintln!("{l}");
        }
    }
    fn progress(&self, msg: &str) {
        self.inner.progress(msg)
    }
}

/// Run `atomprobe host`; returns the exit status.
pub fn cmd_host(a: HostArgs) -> Result<i32, RunError> {
    let arch = Arch::current().ok_or_else(|| {
        RunError::Usage(format!(
            "atomprobe host runs the probes on x86_64 or aarch64; this is {}",
            std::env::consts::ARCH
        ))
    })?;
    let line = cmdline(&a, arch).map_err(RunError::Usage)?;
    let catalogue = probes::suite::catalogue();
    let known: Vec<(&str, &str)> = catalogue.iter().map(|(f, n)| (*f, n.as_str())).collect();
    let (cfg, errors) = Config::parse(&line, arch, &known);

    let out: Box<dyn Write + Send> = match &a.out {
        Some(p) => Box::new(std::io::BufWriter::new(std::fs::File::create(p).map_err(
            |e| RunError::Io(format!("cannot create --out {}: {e}", p.display())),
        )?)),
        None => Box::new(std::io::stdout()),
    };
    let platform = HostedPlatform::new(cfg, &line, out);
    let watched = Watched {
        inner: &platform,
        tally: Mutex::new((Tally::default(), Instant::now())),
        quiet: a.quiet,
    };
    let start = Instant::now();
    platform.emit_begin();
    for e in &errors {
        platform.emit(&Record::Error(e.clone()));
        eprintln!("atomprobe host: rejected option: {}", e.message);
    }
    if !errors.is_empty() {
        platform.finish();
        eprintln!(
            "atomprobe host: no probe ran because {} option value{} rejected (the report holds \
             the error records); fix the option and run again",
            errors.len(),
            if errors.len() == 1 { " was" } else { "s were" }
        );
        return Ok(EXIT_BAD_OPTION);
    }
    eprintln!(
        "atomprobe host: {} on {} CPUs ({}), cmdline \"{line}\"",
        probes::hosted::board_name(),
        platform.cpu_count(),
        arch.name()
    );
    // Restart the clock so that setup is not charged to the first family.
    watched.tally.lock().unwrap_or_else(|e| e.into_inner()).1 = Instant::now();
    probes::suite::run(&watched);
    platform.finish();
    let g = watched.tally.lock().unwrap_or_else(|e| e.into_inner());
    eprintln!("{}", g.0.summary(start.elapsed()));
    if let Some(p) = &a.out {
        eprintln!("atomprobe host: report written to {}", p.display());
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use probes::record::{ErrorRec, Litmus, ModelVerdict};

    fn arch() -> Arch {
        Arch::current().unwrap()
    }

    #[test]
    fn cmdline_defaults_to_the_user_space_attribute() {
        let a = HostArgs::default();
        let l = cmdline(&a, Arch::X86_64).unwrap();
        assert_eq!(l, "attrs=wb");
        assert_eq!(cmdline(&a, Arch::Aarch64).unwrap(), "attrs=normal-wb");
        let a = HostArgs {
            probes: Some("litmus/SB*,fault".into()),
            attrs: Some("wb,uc".into()),
            iters: Some("2k".into()),
            cpus: Some("2".into()),
            seed: Some("0x10".into()),
            ..Default::default()
        };
        assert_eq!(
            cmdline(&a, Arch::X86_64).unwrap(),
            "probes=litmus/SB*,fault attrs=wb,uc iters=2k cpus=2 seed=0x10"
        );
        let a = HostArgs {
            probes: Some("fault litmus".into()),
            ..Default::default()
        };
        let e = cmdline(&a, Arch::X86_64).unwrap_err();
        assert!(
            e.contains("--probes") && e.contains("comma-separated"),
            "{e}"
        );
    }

    #[test]
    fn bad_values_get_the_images_error_records() {
        let a = HostArgs {
            iters: Some("lots".into()),
            attrs: Some("purple".into()),
            ..Default::default()
        };
        let line = cmdline(&a, arch()).unwrap();
        let cat = probes::suite::catalogue();
        let known: Vec<(&str, &str)> = cat.iter().map(|(f, n)| (*f, n.as_str())).collect();
        let (_, errors) = Config::parse(&line, arch(), &known);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors.iter().any(|e| e.message.contains("iters=lots")));
        assert!(errors.iter().any(|e| e.message.contains("purple")));
    }

    #[test]
    fn tally_charges_time_to_the_finishing_family() {
        let mut t = Tally::default();
        let lit = Record::Litmus(Litmus {
            name: "SB".into(),
            attr: "wb".into(),
            cpus: vec![0, 1],
            iterations: 10,
            histogram: vec![],
            condition: "exists (0:rax=0 /\\ 1:rax=0)".into(),
            observed: 3,
            model: ModelVerdict::Allowed,
            verdict: Verdict::Ok,
            elapsed_ms: 1,
            iter_per_s: 1,
            relaxed_per_s: 1,
            rule: String::new(),
            reason: None,
        });
        let line = t.note(&lit, Duration::from_millis(1500)).unwrap();
        assert!(line.contains("litmus/SB wb → 3/10 observed"), "{line}");
        t.note(&lit, Duration::from_millis(500));
        t.note(
            &Record::Error(ErrorRec {
                what: "probe".into(),
                message: "m".into(),
            }),
            Duration::from_millis(1),
        );
        assert_eq!(t.families["litmus"].time, Duration::from_secs(2));
        assert_eq!(t.errors, 1);
        let s = t.summary(Duration::from_secs(3));
        assert!(s.contains("litmus 2.0 s (2 rec)"), "{s}");
        assert!(s.contains("litmus ok 2"), "{s}");
        assert_eq!(t.per_family()[0].0, "litmus");
    }

    #[test]
    fn host_run_of_one_probe_verifies() {
        let dir = std::env::temp_dir().join(format!("atomprobe-host-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("h.log");
        let a = HostArgs {
            probes: Some("litmus/SB".into()),
            iters: Some("100".into()),
            out: Some(out.clone()),
            quiet: true,
            ..Default::default()
        };
        assert_eq!(cmd_host(a).unwrap(), 0);
        let rep = probes::report::parse_report(&std::fs::read_to_string(&out).unwrap());
        assert!(rep.integrity.is_verified(), "{:?}", rep.integrity);
        match &rep.records[0] {
            Record::Begin(b) => {
                assert_eq!(b.board, probes::hosted::board_name());
                assert_eq!(b.config.attrs, [normal_attr(arch()).name()]);
            }
            r => panic!("{r:?}"),
        }
        assert!(rep
            .records
            .iter()
            .any(|r| matches!(r, Record::Litmus(l) if l.name == "SB")));

        let bad = dir.join("bad.log");
        let a = HostArgs {
            cpus: Some("0".into()),
            out: Some(bad.clone()),
            quiet: true,
            ..Default::default()
        };
        assert_eq!(cmd_host(a).unwrap(), EXIT_BAD_OPTION);
        let rep = probes::report::parse_report(&std::fs::read_to_string(&bad).unwrap());
        assert!(rep.integrity.is_verified());
        assert!(rep
            .records
            .iter()
            .any(|r| matches!(r, Record::Error(e) if e.message.contains("cpus=0"))));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
