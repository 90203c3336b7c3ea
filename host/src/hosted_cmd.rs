//! `atomprobe host`: the probe suite run as OS threads on this machine (`probes::hosted`), with
//! the image's boot arguments spelled as options.
//!
//! The options are turned into the image's command line (`probes=… attrs=… iters=…`) and parsed
//! by [`probes::config::Config::parse_spelled`], so a bad value gets the `error` record the image
//! prints, worded with the flag the user typed (`--iters lots`, not `iters=lots`). As on bare
//! metal, bad input does not stop the run: the suite runs with the default each `error` record
//! names, and the command then exits 2 ([`EXIT_BAD_OPTION`]).
//!
//! `--cpus` is resolved here ([`plan_cpus`]), against this process's affinity mask: a count `N`
//! (the image's `cpus=N`: the first N usable CPUs) or, on Linux, a list of CPU numbers (`0,1`,
//! `2-3`, as `taskset -c` takes them) that the run is pinned to. The CPUs used are in
//! `begin.platform.os_cpus`.
//!
//! Output (`crate::view`): by default a progress line and the summary, the report saved to
//! `--out` or `reports/`; with `--raw` the records on stdout and, on stderr, one line per record
//! (family/name, attribute, result) and the time spent in each family.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use probes::attr::{Arch, MemAttr};
use probes::config::{Config, Spelling, MAX_CPUS};
use probes::fault::RawFault;
use probes::hosted::{normal_attr, HostedPlatform};
use probes::platform::{Arena, Platform, RuleEnv, RunError as PlatRunError};
use probes::record::{ErrorRec, ProbeResult, Record, Verdict};

use crate::RunError;
use probes::mapping::Variant;

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
    /// CPUs to use: a number N (the first N of this process's affinity mask) or, on Linux, a
    /// list of CPU numbers to pin to, as taskset -c takes it (0,1 or 2-3; one CPU: 3-3).
    /// Default: all.
    #[arg(long, value_name = "N|LIST")]
    pub cpus: Option<String>,
    /// Seed of the probes' pseudo-random choices (decimal or 0x hex). Default 1.
    #[arg(long, value_name = "N")]
    pub seed: Option<String>,
    /// Leaf sizes of the arena, comma-separated: 4k, 2m, 1g (2m/1g: huge pages from
    /// mmap(MAP_HUGETLB) on Linux; where none are reserved the probes are skipped, saying why).
    #[arg(long, value_name = "LIST")]
    pub mapping: Option<String>,
    /// aarch64 shareability (inner, outer, non): accepted for symmetry with the image; user
    /// space cannot choose it, so anything but inner is skipped with the reason.
    #[arg(long, value_name = "LIST")]
    pub share: Option<String>,
    /// Caches (on, off): user space cannot turn them off; off is skipped with the reason.
    #[arg(long, value_name = "LIST")]
    pub caches: Option<String>,
    /// x86 MTRR type over the arena (uc, wc, wt, wp, wb): privileged; skipped with the reason.
    #[arg(long, value_name = "LIST")]
    pub mtrr: Option<String>,
    /// Save the report to FILE instead of `reports/<board>-<UTC time>.jsonl`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub output: crate::view::OutputArgs,
}

/// Exit status when an option value was rejected or could not be honoured: the run went ahead
/// with the defaults the `error` records name.
pub const EXIT_BAD_OPTION: i32 = 2;

/// The image command line equivalent to `a`, with `cpus=` as resolved by [`plan_cpus`] (`0`:
/// none), or which value cannot be put on one.
pub fn cmdline(a: &HostArgs, arch: Arch, cpus: u32) -> Result<String, String> {
    let attrs = a
        .attrs
        .clone()
        .unwrap_or_else(|| normal_attr(arch).name().to_string());
    let items = [
        ("probes", "--probes", a.probes.clone()),
        ("attrs", "--attrs", Some(attrs)),
        ("iters", "--iters", a.iters.clone()),
        ("cpus", "--cpus", (cpus > 0).then(|| cpus.to_string())),
        ("seed", "--seed", a.seed.clone()),
        ("mapping", "--mapping", a.mapping.clone()),
        ("share", "--share", a.share.clone()),
        ("caches", "--caches", a.caches.clone()),
        ("mtrr", "--mtrr", a.mtrr.clone()),
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

/// What `--cpus` asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CpuRequest {
    /// The first N CPUs of the affinity mask (the image's `cpus=N`).
    Count(usize),
    /// These OS CPU numbers (sorted, no repeats).
    List(Vec<usize>),
}

/// Parse a `--cpus` value: a count from 1 to [`MAX_CPUS`], or a list of CPU numbers and ranges
/// separated by commas (`0,1`, `2-3`, `0,2-3`; a value with a comma or a dash is a list).
pub fn parse_cpus(v: &str) -> Option<CpuRequest> {
    let v = v.trim();
    if !v.contains([',', '-']) {
        let n: usize = v.parse().ok()?;
        return (1..=MAX_CPUS as usize)
            .contains(&n)
            .then_some(CpuRequest::Count(n));
    }
    let mut list = Vec::new();
    for item in v.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (lo, hi) = match item.split_once('-') {
            Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
            None => {
                let c: usize = item.parse().ok()?;
                (c, c)
            }
        };
        // A CPU number beyond what an affinity mask holds (glibc CPU_SETSIZE) is a typo.
        if lo > hi || hi >= 1024 || hi - lo >= MAX_CPUS as usize {
            return None;
        }
        list.extend(lo..=hi);
    }
    list.sort_unstable();
    list.dedup();
    (!list.is_empty() && list.len() <= MAX_CPUS as usize).then_some(CpuRequest::List(list))
}

/// How a run uses CPUs, from `--cpus` and the CPUs this process may use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuPlan {
    /// `cpus=` for the command line and `begin.config.cpus` (0: every usable CPU).
    pub count: u32,
    /// Restrict the process to these OS CPUs before the platform takes its affinity mask.
    pub pin_to: Option<Vec<usize>>,
    /// What could not be done as asked, in words (one `error` record each).
    pub errors: Vec<String>,
}

fn cpu_list(cpus: &[usize]) -> String {
    cpus.iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Resolve `--cpus value` against `allowed` (the process's usable OS CPUs, increasing);
/// `can_pin` says whether this OS can restrict threads to chosen CPUs (Linux). Every problem
/// becomes an error message naming `--cpus` and what is accepted, and the plan falls back to
/// what the message says it uses.
pub fn plan_cpus(value: Option<&str>, allowed: &[usize], can_pin: bool) -> CpuPlan {
    let mut plan = CpuPlan {
        count: 0,
        pin_to: None,
        errors: Vec::new(),
    };
    let Some(v) = value else { return plan };
    let every = format!(
        "every core ({} CPU{}: {})",
        allowed.len(),
        if allowed.len() == 1 { "" } else { "s" },
        cpu_list(allowed)
    );
    match parse_cpus(v) {
        None => plan.errors.push(format!(
            "{} is not valid: expected a number of CPUs from 1 to {MAX_CPUS} (the first \
             N of the {} this process may use: {}){}; using {every}",
            Spelling::Flag.arg("cpus", v),
            allowed.len(),
            cpu_list(allowed),
            if can_pin {
                ", or a list of CPU numbers to pin to, as taskset -c takes it (e.g. 0,1 or 2-3; \
                 one CPU: 3-3)"
            } else {
                ""
            }
        )),
        Some(CpuRequest::Count(n)) => {
            plan.count = n as u32;
            if n > allowed.len() {
                plan.errors.push(format!(
                    "--cpus {n}: this machine has {} CPU{} usable by this process; using {}",
                    allowed.len(),
                    if allowed.len() == 1 { "" } else { "s" },
                    allowed.len()
                ));
            }
        }
        Some(CpuRequest::List(list)) if !can_pin => {
            let n = list.len().min(allowed.len());
            plan.count = n as u32;
            plan.errors.push(format!(
                "--cpus {v}: choosing CPUs by number needs sched_setaffinity (Linux); threads run \
                 unpinned on this OS; a number of CPUs is accepted; using {n}"
            ));
        }
        Some(CpuRequest::List(list)) => {
            let (ok, bad): (Vec<usize>, Vec<usize>) =
                list.iter().partition(|c| allowed.contains(c));
            if !bad.is_empty() {
                plan.errors.push(format!(
                    "--cpus {v}: CPU{} {} {} not usable by this process (it may use {}); using {}",
                    if bad.len() == 1 { "" } else { "s" },
                    cpu_list(&bad),
                    if bad.len() == 1 { "is" } else { "are" },
                    cpu_list(allowed),
                    if ok.is_empty() { every } else { cpu_list(&ok) }
                ));
            }
            if !ok.is_empty() {
                plan.count = ok.len() as u32;
                plan.pin_to = Some(ok);
            }
        }
    }
    plan
}

/// Restrict the calling thread (and so the threads it starts) to `cpus`, so that the hosted
/// platform, which numbers the CPUs of the affinity mask, uses exactly these.
#[cfg(target_os = "linux")]
fn restrict_affinity(cpus: &[usize]) -> Result<(), String> {
    // SAFETY: `set` is a plain bitmask owned by this frame; CPU_SET writes only inside it (every
    // CPU number is below 1024 = CPU_SETSIZE, checked by `parse_cpus`), and sched_setaffinity
    // only reads it.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = core::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        libc::sched_setaffinity(0, core::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        return Err(format!(
            "sched_setaffinity({}): {}",
            cpu_list(cpus),
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn restrict_affinity(_cpus: &[usize]) -> Result<(), String> {
    Err("choosing CPUs needs Linux".into())
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
    tally: Mutex<(Tally, Instant, crate::view::Progress)>,
    mode: crate::view::Mode,
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
    fn arena_mapped(&self, attr: MemAttr, v: &Variant) -> Result<Arena, String> {
        self.inner.arena_mapped(attr, v)
    }
    fn set_variant(&self, v: &Variant) -> Result<(), String> {
        self.inner.set_variant(v)
    }
    fn effective_type(&self, attr: MemAttr, v: &Variant) -> Option<String> {
        self.inner.effective_type(attr, v)
    }
    fn arena_window(&self, attr: MemAttr, v: &Variant) -> Result<(*const u8, usize), String> {
        self.inner.arena_window(attr, v)
    }
    fn guarded(&self, op: &mut dyn FnMut()) -> Option<RawFault> {
        self.inner.guarded(op)
    }
    fn catches_faults(&self) -> bool {
        self.inner.catches_faults()
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
        let (tally, last, progress) = &mut *g;
        let now = Instant::now();
        let line = tally.note(rec, now - *last);
        *last = now;
        progress.record(rec);
        if let (Some(l), crate::view::Mode::Raw) = (line, self.mode) {
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
    let mut plan = plan_cpus(
        a.cpus.as_deref(),
        &probes::hosted::sys::allowed_cpus(),
        probes::hosted::sys::PINS,
    );
    if let Some(cpus) = &plan.pin_to {
        if let Err(e) = restrict_affinity(cpus) {
            plan.errors.push(format!(
                "--cpus {}: {e}; using every core",
                a.cpus.as_deref().unwrap_or_default()
            ));
            plan.count = 0;
        }
    }
    let line = cmdline(&a, arch, plan.count).map_err(RunError::Usage)?;
    let catalogue = probes::suite::catalogue();
    let known: Vec<(&str, &str)> = catalogue.iter().map(|(f, n)| (*f, n.as_str())).collect();
    let (cfg, mut errors) = Config::parse_spelled(&line, arch, &known, Spelling::Flag);
    errors.extend(plan.errors.into_iter().map(|message| ErrorRec {
        what: "bootarg".into(),
        message,
    }));

    use crate::view::Mode;
    let mode = a.output.mode();
    crate::view::check_writable(a.out.as_deref())?;
    // The records are kept for the saved report; with --raw they are also streamed to stdout
    // (a closed stdout, `| head`, ends the command quietly: see `cli::EXIT_BROKEN_PIPE`).
    let kept = std::sync::Arc::new(Mutex::new(Vec::<u8>::new()));
    let out: Box<dyn Write + Send> = Box::new(Tee {
        kept: kept.clone(),
        raw: (mode == Mode::Raw).then(|| crate::cli::ClosedPipeExit(std::io::stdout())),
    });
    let platform = HostedPlatform::new(cfg, &line, out);
    let watched = Watched {
        inner: &platform,
        tally: Mutex::new((
            Tally::default(),
            Instant::now(),
            crate::view::Progress::new(mode, &probes::hosted::board_name()),
        )),
        mode,
    };
    let start = Instant::now();
    platform.emit_begin();
    for e in &errors {
        platform.emit(&Record::Error(e.clone()));
        if mode == Mode::Raw {
            eprintln!("atomprobe host: {}", e.message);
        }
    }
    let os_cpus = match platform.begin_record() {
        Record::Begin(b) => b.platform.get("os_cpus").cloned(),
        _ => None,
    };
    let raw = mode == Mode::Raw;
    if raw {
        eprintln!(
            "atomprobe host: {} on {} CPU{}{} ({}), cmdline \"{line}\"",
            probes::hosted::board_name(),
            platform.cpu_count(),
            if platform.cpu_count() == 1 { "" } else { "s" },
            os_cpus.map(|c| format!(" [{c}]")).unwrap_or_default(),
            arch.name()
        );
    }
    // Restart the clock so that setup is not charged to the first family.
    watched.tally.lock().unwrap_or_else(|e| e.into_inner()).1 = Instant::now();
    probes::suite::run(&watched);
    platform.finish();
    let g = watched.tally.lock().unwrap_or_else(|e| e.into_inner());
    g.2.finish();
    if raw {
        eprintln!("{}", g.0.summary(start.elapsed()));
    }
    let text =
        String::from_utf8_lossy(&kept.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    let report = probes::report::parse_report(&text);
    let saved = crate::view::save_report(a.out.as_deref(), &probes::hosted::board_name(), &text)?;
    let mut final_line = format!(
        "atomprobe host: {} records in {:.1} s, integrity {}; report saved to {}",
        report.lines.len(),
        start.elapsed().as_secs_f64(),
        crate::compare::integrity_text(&report.integrity),
        saved.display()
    );
    let status = if errors.is_empty() {
        0
    } else {
        final_line.push_str(&format!(
            "; {} option value{} not used as given (the report holds the error records); the \
             run used the defaults they name; exit status {EXIT_BAD_OPTION}",
            errors.len(),
            if errors.len() == 1 { " was" } else { "s were" }
        ));
        EXIT_BAD_OPTION
    };
    crate::view::finish(mode, &report, &saved, &final_line);
    Ok(status)
}

/// The hosted platform's record output: kept for the saved report, and streamed to stdout with
/// `--raw`.
struct Tee {
    kept: std::sync::Arc<Mutex<Vec<u8>>>,
    raw: Option<crate::cli::ClosedPipeExit<std::io::Stdout>>,
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.kept
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        if let Some(r) = &mut self.raw {
            r.write_all(buf)?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.raw {
            Some(r) => r.flush(),
            None => Ok(()),
        }
    }
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
        let l = cmdline(&a, Arch::X86_64, 0).unwrap();
        assert_eq!(l, "attrs=wb");
        assert_eq!(cmdline(&a, Arch::Aarch64, 0).unwrap(), "attrs=normal-wb");
        let a = HostArgs {
            probes: Some("litmus/SB*,fault".into()),
            attrs: Some("wb,uc".into()),
            iters: Some("2k".into()),
            cpus: Some("2".into()),
            seed: Some("0x10".into()),
            ..Default::default()
        };
        assert_eq!(
            cmdline(&a, Arch::X86_64, 2).unwrap(),
            "probes=litmus/SB*,fault attrs=wb,uc iters=2k cpus=2 seed=0x10"
        );
        let a = HostArgs {
            probes: Some("fault litmus".into()),
            ..Default::default()
        };
        let e = cmdline(&a, Arch::X86_64, 0).unwrap_err();
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
        let line = cmdline(&a, arch(), 0).unwrap();
        let cat = probes::suite::catalogue();
        let known: Vec<(&str, &str)> = cat.iter().map(|(f, n)| (*f, n.as_str())).collect();
        let (_, errors) = Config::parse_spelled(&line, arch(), &known, Spelling::Flag);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors.iter().any(|e| e.message.contains("--iters lots")));
        assert!(errors.iter().any(|e| e.message.contains("--attrs purple")));
    }

    #[test]
    fn cpus_values_parse() {
        use CpuRequest::*;
        assert_eq!(parse_cpus("2"), Some(Count(2)));
        assert_eq!(parse_cpus("64"), Some(Count(64)));
        assert_eq!(parse_cpus("0,1"), Some(List(vec![0, 1])));
        assert_eq!(parse_cpus("3-3"), Some(List(vec![3])));
        assert_eq!(parse_cpus("1,0-2, 2"), Some(List(vec![0, 1, 2])));
        assert_eq!(parse_cpus("5,"), Some(List(vec![5])));
        for bad in [
            "0", "65", "x", "", "-1", "2-1", "0,a", ",", "0-2000", "1024",
        ] {
            assert_eq!(parse_cpus(bad), None, "{bad}");
        }
    }

    #[test]
    fn cpus_plan_says_what_it_uses_and_names_the_flag() {
        let two = [0, 1];
        let p = plan_cpus(None, &two, true);
        assert_eq!((p.count, p.pin_to, p.errors.len()), (0, None, 0));

        let p = plan_cpus(Some("2"), &two, true);
        assert_eq!((p.count, p.pin_to, p.errors.len()), (2, None, 0));

        // More than there are: an error in words, and the run uses what there is.
        let p = plan_cpus(Some("4"), &two, true);
        assert_eq!(p.count, 4);
        assert_eq!(
            p.errors,
            ["--cpus 4: this machine has 2 CPUs usable by this process; using 2"]
        );

        // A list pins to those CPUs.
        let p = plan_cpus(Some("0,1"), &two, true);
        assert_eq!((p.count, p.pin_to.as_deref()), (2, Some(&[0, 1][..])));
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        let p = plan_cpus(Some("1-1"), &two, true);
        assert_eq!((p.count, p.pin_to.as_deref()), (1, Some(&[1][..])));

        // CPUs this process may not use are named; the others are used.
        let p = plan_cpus(Some("1,5"), &two, true);
        assert_eq!((p.count, p.pin_to.as_deref()), (1, Some(&[1][..])));
        assert_eq!(
            p.errors,
            ["--cpus 1,5: CPU 5 is not usable by this process (it may use 0,1); using 1"]
        );
        let p = plan_cpus(Some("7-8"), &two, true);
        assert_eq!((p.count, p.pin_to), (0, None));
        assert!(
            p.errors[0].ends_with("using every core (2 CPUs: 0,1)"),
            "{:?}",
            p.errors
        );

        // Without pinning (macOS, Windows) a list is not honoured, and the message says so.
        let p = plan_cpus(Some("0,1"), &two, false);
        assert_eq!((p.count, p.pin_to), (2, None));
        assert!(p.errors[0].contains("sched_setaffinity"), "{:?}", p.errors);

        // Not a count or a list: every core, said in terms of the flag.
        for bad in ["0", "x", "0-"] {
            let p = plan_cpus(Some(bad), &two, true);
            assert_eq!((p.count, p.pin_to.clone()), (0, None), "{bad}");
            let m = &p.errors[0];
            assert!(m.starts_with(&format!("--cpus {bad} is not valid")), "{m}");
            assert!(
                m.contains("from 1 to 64") && m.contains("0,1 or 2-3"),
                "{m}"
            );
            assert!(m.ends_with("using every core (2 CPUs: 0,1)"), "{m}");
            assert!(!m.contains("cpus="), "{m}");
        }
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
            map: Default::default(),
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
            output: crate::view::OutputArgs {
                quiet: true,
                raw: false,
            },
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

        // A bad --cpus gets an error record naming the flag, and the run goes ahead on every
        // core, as the record says; the exit status says an option was not used as given.
        let bad = dir.join("bad.log");
        let a = HostArgs {
            probes: Some("litmus/SB".into()),
            iters: Some("100".into()),
            cpus: Some("0".into()),
            out: Some(bad.clone()),
            output: crate::view::OutputArgs {
                quiet: true,
                raw: false,
            },
            ..Default::default()
        };
        assert_eq!(cmd_host(a).unwrap(), EXIT_BAD_OPTION);
        let rep = probes::report::parse_report(&std::fs::read_to_string(&bad).unwrap());
        assert!(rep.integrity.is_verified());
        assert!(rep.records.iter().any(|r| matches!(r,
            Record::Error(e) if e.message.starts_with("--cpus 0 is not valid")
                && e.message.contains("using every core"))));
        let all = probes::hosted::sys::allowed_cpus();
        match &rep.records[0] {
            Record::Begin(b) => {
                assert_eq!(b.config.cpus, 0);
                assert_eq!(b.platform["os_cpus"], cpu_list(&all));
            }
            r => panic!("{r:?}"),
        }
        assert!(rep
            .records
            .iter()
            .any(|r| matches!(r, Record::Litmus(l) if l.name == "SB")));

        // More CPUs than there are: an error record in words, and the run uses those there are.
        let many = dir.join("many.log");
        let a = HostArgs {
            probes: Some("litmus/SB".into()),
            iters: Some("100".into()),
            cpus: Some("64".into()),
            out: Some(many.clone()),
            output: crate::view::OutputArgs {
                quiet: true,
                raw: false,
            },
            ..Default::default()
        };
        if all.len() < 64 {
            assert_eq!(cmd_host(a).unwrap(), EXIT_BAD_OPTION);
            let rep = probes::report::parse_report(&std::fs::read_to_string(&many).unwrap());
            let want = format!(
                "--cpus 64: this machine has {} CPU{} usable by this process; using {}",
                all.len(),
                if all.len() == 1 { "" } else { "s" },
                all.len()
            );
            assert!(
                rep.records
                    .iter()
                    .any(|r| matches!(r, Record::Error(e) if e.message == want)),
                "{:?}",
                rep.records
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
