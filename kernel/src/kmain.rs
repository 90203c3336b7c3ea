//! The generic run: configuration, `begin`, cores, the suite, summary and `end`.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use probes::attr::Arch;
use probes::config::{Config, ConsoleChoice, SelfTest};
use probes::platform::Privilege;
use probes::record::{Begin, ErrorRec, Record, RunStatus, SCHEMA};

use crate::{arch, board, console, platform::KernelPlatform, println};

/// What the arch/board boot code found, handed to [`kmain`].
pub struct BootInfo {
    /// Raw boot arguments (DTB `/chosen/bootargs`, PVH command line).
    pub cmdline: String,
    /// Facts printed in `begin.platform` (entry EL, DTB address, timer frequency, …).
    pub platform: BTreeMap<String, String>,
}

/// The architecture this image runs on.
pub const ARCH: Arch = if cfg!(target_arch = "aarch64") {
    Arch::Aarch64
} else {
    Arch::X86_64
};

/// Entered once, on the boot core, with the console, exception vectors and heap ready.
pub fn kmain(info: BootInfo) -> ! {
    let catalogue = probes::suite::catalogue();
    let known: Vec<(&str, &str)> = catalogue.iter().map(|(f, n)| (*f, n.as_str())).collect();
    let (mut cfg, mut errors) = Config::parse(&info.cmdline, ARCH, &known);
    // The arch turns the requested configuration into what it can do (e.g. MMU off means every
    // access is Device-nGnRnE) and sets up paging, alignment checking and counters accordingly.
    arch::apply_config(&mut cfg, &mut errors);
    choose_consoles(&cfg, &mut errors);

    println!(
        "atomprobe {} on {} ({}), {}",
        probes::VERSION,
        board::NAME,
        ARCH.name(),
        arch::cpu_id()
    );
    let (el, ring) = match arch::privilege() {
        Privilege::El(e) => (Some(e), None),
        Privilege::Ring(r) => (None, Some(r)),
        Privilege::User => (None, None),
    };
    let mut facts = info.platform;
    facts.extend(arch::platform_facts());
    console::emit(&Record::Begin(Begin {
        schema: SCHEMA,
        version: probes::VERSION.to_string(),
        arch: ARCH.name().to_string(),
        board: board::NAME.to_string(),
        el,
        ring,
        cpu_id: arch::cpu_id(),
        cmdline: info.cmdline.clone(),
        config: cfg.clone(),
        platform: facts,
    }));
    for e in errors.into_iter().chain(take_boot_errors()) {
        console::emit(&Record::Error(e));
    }

    // Every core the board knows about is started; each reports itself in a `cpu` record.
    let cpus = arch::start_cpus(&cfg);
    for c in cpus {
        console::emit(&Record::Cpu(c));
    }

    match cfg.selftest {
        Some(SelfTest::Fault) => {
            println!("selftest=fault: making an unguarded access that faults");
            arch::selftest_unguarded_fault();
        }
        Some(SelfTest::Panic) => panic!("selftest=panic: a deliberate panic outside any probe"),
        Some(SelfTest::NestedFault) => {
            println!(
                "selftest=nested-fault: making an unguarded access that faults; the handler \
                 faults again while dumping"
            );
            crate::fatal::arm_nested_selftest();
            arch::selftest_unguarded_fault();
        }
        None => {}
    }

    if let Some(s) = cfg.shutdown {
        SHUTDOWN_AFTER_S.store(s, core::sync::atomic::Ordering::Relaxed);
    }
    let platform = KernelPlatform::new(cfg);
    probes::suite::run(&platform);

    let (used, free) = crate::heap::usage();
    println!("heap: {used} bytes used, {free} free");
    console::finish(RunStatus::Complete, arch::now_ns() / 1_000_000);
    board::exit(RunStatus::Complete)
}

/// `console=serial|screen|both` (default both) against the screen the board has: a screen
/// asked for by name but unusable gives an error record and the serial console stays on.
fn choose_consoles(cfg: &Config, errors: &mut Vec<ErrorRec>) {
    let choice = cfg.console.unwrap_or(ConsoleChoice::Both);
    let (serial, screen) = choice.targets();
    match board::screen_state() {
        Ok(()) => console::set_targets(serial, screen),
        Err(why) => {
            if choice == ConsoleChoice::Screen {
                errors.push(ErrorRec {
                    what: "console".into(),
                    message: alloc::format!(
                        "console=screen is unavailable: {why}; using the serial console"
                    ),
                });
            }
            console::set_targets(true, false);
        }
    }
}

/// End the run after something unexpected: print `what` (the caller has already dumped
/// registers), an `end` record with status `aborted`, and exit with a failing status.
pub fn abort_run(what: fmt::Arguments) -> ! {
    let core = arch::core_index();
    let elapsed = arch::now_ns() / 1_000_000;
    if console::abort_report(
        format_args!("\n!! atomprobe aborted on core {core}: {what}\n"),
        elapsed,
    ) {
        board::exit(RunStatus::Aborted)
    }
    // Another core is already aborting: stay out of its way.
    arch::halt()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let core = arch::core_index();
    let loc = PanicLocation(info);
    // A panic while this core handles a fault or panic (e.g. an allocation failing in the abort
    // path), or before the heap exists: print it without allocating and stop (`fatal`).
    if !crate::fatal::begin() {
        crate::fatal::nested(format_args!("panic at {loc}: {}", info.message()))
    }
    if !crate::heap::ready() {
        crate::fatal::early(format_args!("panic at {loc}: {}", info.message()))
    }
    // Registers of the panicking context, from the arch (SP, link register, EL/ring).
    let regs = arch::panic_registers();
    abort_run(format_args!(
        "panic on core {core} at {loc}: {}\n{regs}",
        info.message()
    ))
}

/// `file:line` of a panic, formatted without allocating.
struct PanicLocation<'a>(&'a core::panic::PanicInfo<'a>);

impl fmt::Display for PanicLocation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.location() {
            Some(l) => write!(f, "{}:{}", l.file(), l.line()),
            None => f.write_str("unknown location"),
        }
    }
}

/// Push an error record from anywhere (used by arch code for cpu/probe problems).
#[allow(dead_code)]
pub fn report_error(what: &str, message: String) {
    console::emit(&Record::Error(ErrorRec {
        what: what.into(),
        message,
    }));
}

/// Problems the boot code found before `begin` could be printed (e.g. a UEFI loader's notes),
/// emitted as `error` records right after `begin`. A lock, not atomics (see `sync.rs`).
static BOOT_ERRORS: crate::sync::Mutex<Vec<ErrorRec>> = crate::sync::Mutex::new(Vec::new());

/// Queue an error record for after `begin` (boot code, before `kmain`).
#[allow(dead_code)]
pub fn queue_boot_error(what: &str, message: String) {
    BOOT_ERRORS.lock().push(ErrorRec {
        what: what.into(),
        message,
    });
}

fn take_boot_errors() -> Vec<ErrorRec> {
    core::mem::take(&mut *BOOT_ERRORS.lock())
}

/// `shutdown=N` for boards that can power off (UEFI ResetSystem); `u32::MAX`: not given.
static SHUTDOWN_AFTER_S: core::sync::atomic::AtomicU32 =
    core::sync::atomic::AtomicU32::new(u32::MAX);

/// Seconds to wait after the run before powering off (`shutdown=`), if given.
#[allow(dead_code)]
pub fn shutdown_after_s() -> Option<u32> {
    match SHUTDOWN_AFTER_S.load(core::sync::atomic::Ordering::Relaxed) {
        u32::MAX => None,
        s => Some(s),
    }
}
