//! The OS-hosted platform (feature `std`): the same probe definitions as the bare-metal image,
//! run as OS threads.
//!
//! | `Platform` item | hosted implementation |
//! |---|---|
//! | `run_on` | one persistent worker thread per requested logical CPU, pinned with `sched_setaffinity` (Linux; unpinned elsewhere), a spin start barrier, a bounded wait ([`pool`]) |
//! | `arena` | `ARENA_LEN` bytes of page-aligned anonymous `mmap` memory, only for the architecture's normal cacheable attribute (`wb` / `normal-wb`): user space cannot choose others |
//! | `guarded` | SIGSEGV/SIGBUS handler resuming after guarded instructions ([`signal`]) |
//! | `now_ns` / `cycles` | `Instant` / `rdtsc` (x86-64; `None` elsewhere) |
//! | `emit` / `progress` | record lines through a [`ReportWriter`] to the output / text to stderr |
//!
//! Logical CPU `i` is the `i`-th CPU of the process's affinity mask. Typical use:
//!
//! ```no_run
//! # use probes::{config::Config, attr::Arch, hosted::HostedPlatform};
//! let cfg = Config::defaults(Arch::current().unwrap());
//! let p = HostedPlatform::new(cfg, "", Box::new(std::io::stdout()));
//! p.emit_begin();
//! probes::suite::run(&p);
//! p.finish();
//! ```

pub mod pool;
pub mod signal;
pub mod sys;

use std::collections::BTreeMap;
use std::io::Write;
use std::string::{String, ToString};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use std::vec::Vec;

use crate::attr::{Arch, MemAttr};
use crate::config::Config;
use crate::fault::RawFault;
use crate::mapping::{MapSize, Share, Variant};
use crate::platform::{Arena, Platform, Privilege, RuleEnv, RunError};
use crate::record::{Begin, ErrorRec, Record, RunStatus, SCHEMA};
use crate::report::ReportWriter;

/// Bytes in each hosted probe arena (256 pages of 4 KiB).
pub const ARENA_LEN: usize = 1 << 20;

/// How long `run_on` waits for stuck workers after the time bound before ending the process.
const GRACE: Duration = Duration::from_secs(2);

struct Output {
    out: Box<dyn Write + Send>,
    writer: ReportWriter,
    finished: bool,
}

/// [`Platform`] for OS threads. See the module documentation.
pub struct HostedPlatform {
    cfg: Config,
    cmdline: String,
    env: RuleEnv,
    /// OS CPU number of each logical CPU.
    cpus: Vec<usize>,
    start: Instant,
    out: Mutex<Output>,
    pool: Mutex<pool::Pool>,
    arenas: Mutex<BTreeMap<MemAttr, usize>>,
    /// Huge-page arenas (`--mapping 2m|1g`) and 4 KiB windows, by leaf size.
    huge: Mutex<BTreeMap<MapSize, usize>>,
}

/// The architecture this build runs on. Hosted builds exist only for the probed architectures.
fn this_arch() -> Arch {
    Arch::current().unwrap_or(Arch::X86_64)
}

/// `begin.board` for this OS: `hosted-linux`, `hosted-macos`, `hosted-windows`, …
pub fn board_name() -> String {
    format!("hosted-{}", std::env::consts::OS)
}

/// The normal cacheable attribute of the architecture: the only one user space gets.
pub fn normal_attr(arch: Arch) -> MemAttr {
    match arch {
        Arch::Aarch64 => MemAttr::NormalWb,
        Arch::X86_64 => MemAttr::Wb,
    }
}

impl HostedPlatform {
    /// A platform running `cfg` (its `cpus` limits the logical CPUs), writing records to `out`.
    /// `cmdline` is echoed in `begin.cmdline`.
    pub fn new(cfg: Config, cmdline: &str, out: Box<dyn Write + Send>) -> HostedPlatform {
        let mut cpus = sys::allowed_cpus();
        if cfg.cpus > 0 {
            cpus.truncate(cfg.cpus as usize);
        }
        let env = RuleEnv {
            arch: this_arch(),
            privilege: Privilege::User,
            mmu_on: true,
            align_check: false,
            line: 64,
            page: sys::page_size(),
            map: crate::mapping::Variant::DEFAULT,
        };
        HostedPlatform {
            cfg,
            cmdline: cmdline.to_string(),
            env,
            cpus,
            start: Instant::now(),
            out: Mutex::new(Output {
                out,
                writer: ReportWriter::new(),
                finished: false,
            }),
            pool: Mutex::new(pool::Pool::new(sys::PINS)),
            arenas: Mutex::new(BTreeMap::new()),
            huge: Mutex::new(BTreeMap::new()),
        }
    }

    /// The `begin` record for this run.
    pub fn begin_record(&self) -> Record {
        let mut facts = BTreeMap::new();
        facts.insert(
            "os_cpus".to_string(),
            self.cpus
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(","),
        );
        facts.insert("pinning".to_string(), sys::PINNING.to_string());
        facts.insert("fault_guard".to_string(), signal::GUARD.to_string());
        facts.insert("page".to_string(), self.env.page.to_string());
        let arch = self.env.arch;
        Record::Begin(Begin {
            schema: SCHEMA,
            version: crate::VERSION.to_string(),
            arch: arch.name().to_string(),
            board: board_name(),
            el: (arch == Arch::Aarch64).then_some(0),
            ring: (arch == Arch::X86_64).then_some(3),
            cpu_id: sys::cpu_id(),
            cmdline: self.cmdline.clone(),
            config: self.cfg.clone(),
            platform: facts,
        })
    }

    /// Emit the `begin` record.
    pub fn emit_begin(&self) {
        self.emit(&self.begin_record());
    }

    /// Write the `end` record (status `complete`) and flush. Later calls do nothing.
    pub fn finish(&self) {
        self.finish_with(RunStatus::Complete);
    }

    fn finish_with(&self, status: RunStatus) {
        let elapsed = self.start.elapsed().as_millis() as u64;
        let mut o = self.out.lock().unwrap_or_else(|e| e.into_inner());
        if o.finished {
            return;
        }
        o.finished = true;
        let line = o.writer.end(status, elapsed).to_line();
        let _ = writeln!(o.out, "{line}");
        let _ = o.out.flush();
    }
}

/// Bytes of the window `cost/tlb-stride` strides over (and of a 2 MiB huge-page arena).
const HUGE_WINDOW: usize = 2 << 20;

impl HostedPlatform {
    /// The huge-page mapping for `size` (made once), or for 4 KiB a 2 MiB window of ordinary
    /// pages (`madvise(MADV_NOHUGEPAGE)` on Linux, so transparent huge pages stay out of it).
    fn huge_base(&self, size: MapSize) -> Result<usize, String> {
        let mut huge = self.huge.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&b) = huge.get(&size) {
            return Ok(b);
        }
        let b = match size {
            MapSize::Page4k => {
                let p = sys::map_zeroed(HUGE_WINDOW, false)?;
                #[cfg(target_os = "linux")]
                // SAFETY: advice on our own fresh mapping; it changes no contents.
                unsafe {
                    libc::madvise(p.cast(), HUGE_WINDOW, libc::MADV_NOHUGEPAGE);
                }
                p
            }
            MapSize::Block2m => sys::map_huge(2 << 20, 21)?,
            MapSize::Block1g => sys::map_huge(1 << 30, 30)?,
        } as usize;
        huge.insert(size, b);
        Ok(b)
    }
}

impl Platform for HostedPlatform {
    fn env(&self) -> RuleEnv {
        self.env
    }

    fn config(&self) -> &Config {
        &self.cfg
    }

    fn cpu_count(&self) -> usize {
        self.cpus.len()
    }

    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn cycles(&self) -> Option<u64> {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: RDTSC is available to user space on every x86-64 OS we build for (CR4.TSD
            // clear) and only reads the time-stamp counter.
            Some(unsafe { core::arch::x86_64::_rdtsc() })
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            None
        }
    }

    fn arena(&self, attr: MemAttr) -> Result<Arena, String> {
        let normal = normal_attr(self.env.arch);
        if attr != normal {
            return Err(format!(
                "attribute {attr} is not available to a user-space process: the OS maps \
                 ordinary memory as {normal} only"
            ));
        }
        let mut arenas = self.arenas.lock().unwrap_or_else(|e| e.into_inner());
        let base = match arenas.get(&attr) {
            Some(&b) => b,
            None => {
                let b = sys::map_zeroed(ARENA_LEN, true)? as usize;
                arenas.insert(attr, b);
                b
            }
        };
        Ok(Arena {
            base: base as *mut u8,
            len: ARENA_LEN,
            attr,
        })
    }

    /// `--mapping 2m|1g`: the arena in huge pages from `mmap(MAP_HUGETLB)`. Shareability,
    /// caches and MTRRs are not a user-space process's to choose.
    fn set_variant(&self, v: &Variant) -> Result<(), String> {
        if v.share != Share::Inner {
            return Err(
                "--share: a user-space process cannot choose shareability (the OS maps \
                 ordinary memory Inner Shareable)"
                    .into(),
            );
        }
        if !v.caches {
            return Err(
                "--caches off: a user-space process cannot turn the caches off \
                 (SCTLR_EL1.C / CR0.CD are privileged)"
                    .into(),
            );
        }
        if v.mtrr.is_some() {
            return Err("--mtrr: MTRRs are privileged (ring 0 WRMSR) and the OS owns them".into());
        }
        if v.granule != crate::mapping::Granule::K4 {
            return Err(
                "granule: the OS chooses the translation granule (TCR_EL1 is privileged)".into(),
            );
        }
        self.huge_base(v.size).map(|_| ())
    }

    fn arena_mapped(&self, attr: MemAttr, v: &Variant) -> Result<Arena, String> {
        if v.size == MapSize::Page4k {
            return self.arena(attr);
        }
        let normal = normal_attr(self.env.arch);
        if attr != normal {
            return self.arena(attr);
        }
        Ok(Arena {
            base: self.huge_base(v.size)? as *mut u8,
            len: ARENA_LEN,
            attr,
        })
    }

    fn arena_window(&self, attr: MemAttr, v: &Variant) -> Result<(*const u8, usize), String> {
        self.arena_mapped(attr, v)?;
        Ok((self.huge_base(v.size)? as *const u8, HUGE_WINDOW))
    }

    fn guarded(&self, op: &mut dyn FnMut()) -> Option<RawFault> {
        signal::guarded(op)
    }

    fn catches_faults(&self) -> bool {
        signal::CATCHES
    }

    fn run_on(
        &self,
        cpus: &[usize],
        timeout_ms: u64,
        body: &(dyn Fn(usize) + Sync),
    ) -> Result<(), RunError> {
        let mut os = Vec::with_capacity(cpus.len());
        for &c in cpus {
            os.push(*self.cpus.get(c).ok_or(RunError::NoSuchCpu(c))?);
        }
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        match pool.run(&os, Duration::from_millis(timeout_ms), GRACE, body) {
            pool::Outcome::Finished => Ok(()),
            pool::Outcome::Panicked(p) => Err(RunError::Other(format!(
                "probe body panicked: {}",
                p.iter()
                    .map(|(r, m)| format!("role {r} on cpu {}: {m}", cpus[*r]))
                    .collect::<Vec<_>>()
                    .join("; ")
            ))),
            pool::Outcome::Stuck {
                roles,
                late_ok: true,
            } => Err(RunError::Timeout {
                stuck: roles.iter().map(|&r| cpus[r]).collect(),
            }),
            pool::Outcome::Stuck {
                roles,
                late_ok: false,
            } => {
                // A worker is still inside `body`, which borrows the caller's frame: returning
                // would let it touch freed memory. End the run here, reported as aborted.
                let stuck: Vec<usize> = roles.iter().map(|&r| cpus[r]).collect();
                self.emit(&Record::Error(ErrorRec {
                    what: "probe".into(),
                    message: format!(
                        "cpus {stuck:?} did not finish within {timeout_ms} ms (+{} ms grace); \
                         the hosted run cannot continue safely and stops",
                        GRACE.as_millis()
                    ),
                }));
                self.finish_with(RunStatus::Aborted);
                std::process::exit(3);
            }
        }
    }

    fn emit(&self, rec: &Record) {
        let mut o = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let line = o.writer.encode(rec);
        let _ = writeln!(o.out, "{line}");
    }

    fn progress(&self, msg: &str) {
        eprintln!("{msg}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn platform() -> (HostedPlatform, Sink) {
        let sink = Sink::default();
        let cfg = Config::defaults(this_arch());
        (HostedPlatform::new(cfg, "", Box::new(sink.clone())), sink)
    }

    #[test]
    fn run_on_runs_every_role_and_reuses_workers() {
        let (p, _) = platform();
        let n = p.cpu_count().min(2);
        let cpus: Vec<usize> = (0..n).collect();
        for _ in 0..3 {
            let hits = AtomicUsize::new(0);
            p.run_on(&cpus, 5_000, &|role| {
                hits.fetch_add(role + 1, Ordering::SeqCst);
            })
            .unwrap();
            assert_eq!(hits.load(Ordering::SeqCst), n * (n + 1) / 2);
        }
        assert_eq!(
            p.run_on(&[999], 100, &|_| {}),
            Err(RunError::NoSuchCpu(999))
        );
    }

    #[test]
    fn late_role_is_reported_as_timeout() {
        let (p, _) = platform();
        let r = p.run_on(&[0], 50, &|_| {
            std::thread::sleep(Duration::from_millis(300))
        });
        assert_eq!(r, Err(RunError::Timeout { stuck: vec![0] }));
        // The worker is usable again.
        p.run_on(&[0], 1_000, &|_| {}).unwrap();
    }

    #[test]
    fn arena_only_for_normal_memory() {
        let (p, _) = platform();
        let a = p.arena(normal_attr(this_arch())).unwrap();
        assert_eq!(a.base as usize % p.env().page, 0);
        assert_eq!(a.len, ARENA_LEN);
        let b = p.arena(normal_attr(this_arch())).unwrap();
        assert_eq!(a.base, b.base);
        let other = this_arch()
            .attrs()
            .iter()
            .copied()
            .find(|&m| m != normal_attr(this_arch()))
            .unwrap();
        assert!(p.arena(other).unwrap_err().contains("user-space"));
    }

    #[test]
    fn report_verifies() {
        let (p, sink) = platform();
        p.emit_begin();
        p.progress("progress goes to stderr");
        p.finish();
        p.finish();
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let rep = crate::report::parse_report(&text);
        assert!(rep.integrity.is_verified(), "{:?}", rep.integrity);
        assert_eq!(rep.records.len(), 2);
        match &rep.records[0] {
            Record::Begin(b) => assert_eq!(b.board, board_name()),
            r => panic!("{r:?}"),
        }
    }

    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    #[test]
    fn guarded_fault_resumes_after_instruction() {
        let (p, _) = platform();
        let mut after = 0u64;
        let fault = p.guarded(&mut || {
            // SAFETY: the load from address 8 faults (page zero is never mapped on Linux) and is
            // guarded: the handler resumes at label 22, which then sets `after`.
            unsafe {
                core::arch::asm!(
                    "21: mov {t}, qword ptr [{a}]",
                    "22: mov {after}, 1",
                    ".pushsection atomprobe_guard, \"aR\"",
                    ".balign 4",
                    ".long 21b - .",
                    ".long 22b - .",
                    ".popsection",
                    a = in(reg) 8usize,
                    t = out(reg) _,
                    after = out(reg) after,
                    options(nostack)
                );
            }
        });
        assert_eq!(after, 1);
        match fault {
            Some(RawFault::Signal { signo, addr, .. }) => {
                assert_eq!(signo, libc::SIGSEGV);
                assert_eq!(addr, 8);
            }
            f => panic!("{f:?}"),
        }
        assert_eq!(p.guarded(&mut || {}), None);
    }
}
