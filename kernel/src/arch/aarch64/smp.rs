//! Secondary cores and the cross-core engine.
//!
//! Start-up: core 0 fills one boot block per core (stack, logical index, the MMU registers and
//! SCTLR_EL1 it runs with itself), cleans them to the point of coherency, then releases every
//! core at once through its DTB enable-method (PSCI CPU_ON or a spin-table slot) and waits, with
//! a bound, for each to say it is alive. A core that does not arrive is reported offline with
//! the reason.
//!
//! The engine ([`run_on`]) never uses an exclusive or atomic read-modify-write (they may fault
//! or never succeed on some memory types, and with the MMU off): per-core mailboxes written by
//! one side only, a generation number, a start flag (`GO`), plain loads and stores with
//! acquire/release ordering (LDAR/STLR), SEV/WFE for idle waiting, and a time bound.
//!
//! Idle cores: under QEMU's TCG a WFE does not sleep, so idle cores spinning in WFE take host
//! CPU from the cores doing work (badly so with more virtual than host cores). Where every core
//! was started through PSCI, an idle core therefore powers itself off (CPU_OFF) and `run_on`
//! powers it on again (CPU_ON) after posting its job; it re-enters through the boot block with
//! the same stack, index and MMU state. Where the board names a GICv2 (Raspberry Pi 4), an idle
//! spin-table core that passed its GIC self-check sleeps in WFI instead and `run_on` wakes it
//! with an SGI (see `gic`); other cores stay in the WFE loop.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use aarch64_cpu::asm::{sev, wfe};
use aarch64_cpu::registers::{Readable, SCTLR_EL1};
use probes::config::Config;
use probes::platform::RunError;
use probes::record::Cpu;

use super::boot::{atomprobe_secondary_entry, facts, BootBlock, EnableMethod, BOOT_BLOCKS, STACKS};
use super::gic;
use super::mmu::{dc_range, Dc};
use super::{apply_on_this_core, core_index, cpu_record, mpidr, now_ns, psci, MAX_CORES};

/// How long a released core has to arrive.
const ARRIVAL_MS: u64 = 2_000;

/// One core's mailbox. `seq`, `job` are written by core 0; `alive`, `ready`, `done` by the core.
#[repr(C, align(128))]
struct Mailbox {
    seq: AtomicU64,
    job: AtomicUsize,
    alive: AtomicBool,
    ready: AtomicU64,
    done: AtomicU64,
}

static MAILBOX: [Mailbox; MAX_CORES] = [const {
    Mailbox {
        seq: AtomicU64::new(0),
        job: AtomicUsize::new(0),
        alive: AtomicBool::new(false),
        ready: AtomicU64::new(0),
        done: AtomicU64::new(0),
    }
}; MAX_CORES];

/// Generation whose bodies may start.
static GO: AtomicU64 = AtomicU64::new(0);
/// Generation that was called off before it started (a core did not reach the barrier).
static CANCEL: AtomicU64 = AtomicU64::new(0);
/// Last generation posted (only core 0 writes it).
static GEN: AtomicU64 = AtomicU64::new(0);
/// Cores that came up (indexes `0..ONLINE`; logical indexes are dense).
static ONLINE: AtomicUsize = AtomicUsize::new(1);
/// Idle cores power off through PSCI and are powered on per job (see the module docs).
static POWER_CYCLE: AtomicBool = AtomicBool::new(false);
/// MPIDR of each logical core.
static HWID: [AtomicU64; MAX_CORES] = [const { AtomicU64::new(0) }; MAX_CORES];
/// Cores that did not finish a body in time: never used again.
static LOST: [AtomicBool; MAX_CORES] = [const { AtomicBool::new(false) }; MAX_CORES];

/// What a core runs for one generation.
struct Job<'a> {
    role: usize,
    body: &'a (dyn Fn(usize) + Sync),
}

/// Rust entry of a secondary core (entry.S): translation and SCTLR_EL1 already as on core 0.
pub extern "C" fn rust_secondary(index: usize) -> ! {
    apply_on_this_core();
    let sleeps = gic::init_this_core(index);
    let mb = &MAILBOX[index];
    mb.alive.store(true, Ordering::Release);
    // SAFETY: DSB + SEV only.
    unsafe { core::arch::asm!("dsb sy", "sev", options(nostack)) };
    loop {
        let s = mb.seq.load(Ordering::Acquire);
        if s == mb.done.load(Ordering::Relaxed) {
            if POWER_CYCLE.load(Ordering::Acquire) {
                power_off();
            }
            if sleeps {
                gic::wait();
            } else {
                wfe();
            }
            continue;
        }
        if CANCEL.load(Ordering::Acquire) != s {
            mb.ready.store(s, Ordering::Release);
            let run = loop {
                if GO.load(Ordering::Acquire) == s {
                    break true;
                }
                if CANCEL.load(Ordering::Acquire) == s {
                    break false;
                }
                core::hint::spin_loop();
            };
            if run {
                // SAFETY: core 0 posted a pointer to a `Job` that it keeps alive until this
                // core stores `done = s` (or forever, if it gave up waiting: see `run_on`).
                let job = unsafe { &*(mb.job.load(Ordering::Acquire) as *const Job) };
                (job.body)(job.role);
            }
        }
        mb.done.store(s, Ordering::Release);
        sev();
    }
}

/// PSCI CPU_OFF for the calling core; returns only if the call failed.
fn power_off() {
    if let Some(c) = facts().psci {
        psci::call(c, psci::CPU_OFF, 0, 0, 0);
    }
}

/// Make sure core `c` (job already posted) is running: PSCI CPU_ON if it is off.
fn power_on(c: usize, deadline: u64) -> Result<(), String> {
    let Some(conduit) = facts().psci else {
        return Ok(());
    };
    let mpidr = HWID[c].load(Ordering::Relaxed);
    let entry = atomprobe_secondary_entry as *const () as u64;
    let g = MAILBOX[c].seq.load(Ordering::Relaxed);
    loop {
        let r = psci::call(conduit, psci::CPU_ON, mpidr, entry, 0);
        match r {
            0 => return Ok(()),
            psci::ALREADY_ON | psci::ON_PENDING => {
                // Still on: it either picks the job up or is on its way to CPU_OFF.
                if MAILBOX[c].ready.load(Ordering::Acquire) == g {
                    return Ok(());
                }
                let off = psci::call(conduit, psci::AFFINITY_INFO, mpidr, 0, 0) == psci::AFF_OFF;
                if !off && now_ns() >= deadline {
                    return Ok(()); // the barrier wait reports it
                }
                core::hint::spin_loop();
            }
            _ => {
                return Err(format!(
                    "PSCI CPU_ON returned {r} ({})",
                    psci::status_name(r)
                ))
            }
        }
    }
}

/// Start every core the DTB (or the board) lists, up to `cpus=` if given.
pub fn start_cpus(cfg: &Config) -> Vec<Cpu> {
    let f = facts();
    let me = mpidr();
    let mut records = alloc::vec![cpu_record(0, me, true, None)];
    let want = match cfg.cpus {
        0 => usize::MAX,
        n => n as usize,
    };
    let regs = super::MMU_REGS.get().copied();
    let sctlr = SCTLR_EL1.get();
    if let Some((gicd, gicc)) = crate::board::GIC {
        gic::set_base(gicd, gicc);
    }
    let entry = atomprobe_secondary_entry as *const () as u64;

    // Assign logical indexes and fill the boot blocks.
    let mut planned: Vec<(usize, u64, EnableMethod)> = Vec::new();
    let mut next = 1usize;
    for c in f.cpus.iter().filter(|c| c.mpidr != me) {
        let idx = records.len();
        if next >= MAX_CORES {
            records.push(cpu_record(
                idx,
                c.mpidr,
                false,
                Some(format!(
                    "not started: this image supports at most {MAX_CORES} cores"
                )),
            ));
            continue;
        }
        if next >= want {
            records.push(cpu_record(
                idx,
                c.mpidr,
                false,
                Some(format!(
                    "not started: cpus={} limits the run to {} cores",
                    cfg.cpus, want
                )),
            ));
            continue;
        }
        let stack_top = STACKS.top(next);
        let block = BootBlock {
            stack_top,
            index: next as u64,
            mmu_on: u64::from(regs.is_some()),
            mair: regs.map_or(0, |r| r.mair),
            tcr: regs.map_or(0, |r| r.tcr),
            ttbr0: regs.map_or(0, |r| r.ttbr0),
            sctlr,
            mpidr: c.mpidr,
        };
        // SAFETY: only core 0 writes the blocks, and no secondary has been released yet.
        unsafe { (*BOOT_BLOCKS.0.get())[next] = block };
        HWID[next].store(c.mpidr, Ordering::Relaxed);
        planned.push((next, c.mpidr, c.method.clone()));
        records.push(cpu_record(idx, c.mpidr, false, None)); // replaced below
        next += 1;
    }
    dc_range(
        BOOT_BLOCKS.0.get() as usize,
        core::mem::size_of::<[BootBlock; MAX_CORES]>(),
        Dc::Cvac,
    );

    // Release every planned core, then wait for all of them together.
    let mut failed: Vec<(usize, String)> = Vec::new();
    for (idx, mpidr, method) in &planned {
        if let Err(e) = release(*mpidr, method, entry) {
            failed.push((*idx, e));
        }
    }
    let deadline = now_ns() + ARRIVAL_MS * 1_000_000;
    for (idx, _, _) in &planned {
        if failed.iter().any(|(i, _)| i == idx) {
            continue;
        }
        while !MAILBOX[*idx].alive.load(Ordering::Acquire) && now_ns() < deadline {
            core::hint::spin_loop();
        }
    }

    // Logical indexes must be dense for `online_cpus`: the first core that did not come up
    // ends the online range; later arrivals are still reported but not used.
    let mut online = 1usize;
    let mut dense = true;
    for (idx, mpidr, method) in &planned {
        let rec_pos = records
            .iter()
            .position(|r| r.hwid == format!("{mpidr:#x}"))
            .unwrap_or(*idx);
        let arrived = MAILBOX[*idx].alive.load(Ordering::Acquire);
        let error = if let Some((_, e)) = failed.iter().find(|(i, _)| i == idx) {
            Some(e.clone())
        } else if !arrived {
            Some(format!(
                "did not arrive within {ARRIVAL_MS} ms after release ({})",
                method_name(method)
            ))
        } else if !dense {
            Some(
                "arrived, but an earlier core did not: not used (logical indexes are dense)".into(),
            )
        } else {
            None
        };
        if error.is_none() {
            online += 1;
        } else {
            dense = false;
        }
        records[rec_pos] = cpu_record(*idx, *mpidr, error.is_none(), error);
    }
    ONLINE.store(online, Ordering::Release);
    if let Some((gicd, _)) = crate::board::GIC {
        let sleepers: Vec<String> = (1..online)
            .filter(|&c| gic::sleeps(c))
            .map(|c| format!("{c}"))
            .collect();
        crate::println!(
            "idle cores: {} sleep in WFI, woken by SGI {} through the GIC at {gicd:#x}; the rest wait in WFE",
            if sleepers.is_empty() { "none".into() } else { sleepers.join(",") },
            gic::SGI
        );
    }
    let all_psci = planned.iter().all(|(_, _, m)| *m == EnableMethod::Psci);
    if all_psci && !planned.is_empty() {
        POWER_CYCLE.store(true, Ordering::Release);
        // SAFETY: DSB + SEV only: idle cores re-check and power off.
        unsafe { core::arch::asm!("dsb sy", "sev", options(nostack)) };
    }
    records
}

fn method_name(m: &EnableMethod) -> String {
    match m {
        EnableMethod::Psci => "PSCI CPU_ON returned SUCCESS".into(),
        EnableMethod::SpinTable(a) => format!("spin table at {a:#x}"),
        EnableMethod::Other(o) => format!("enable-method {o}"),
    }
}

/// Release one core to `entry`.
fn release(mpidr: u64, method: &EnableMethod, entry: u64) -> Result<(), String> {
    match method {
        EnableMethod::Psci => {
            let Some(conduit) = facts().psci else {
                return Err("enable-method psci but the DTB has no /psci method".into());
            };
            let r = psci::call(conduit, psci::CPU_ON, mpidr, entry, 0);
            if r == 0 {
                Ok(())
            } else {
                Err(format!(
                    "PSCI CPU_ON returned {r} ({})",
                    psci::status_name(r)
                ))
            }
        }
        EnableMethod::SpinTable(addr) => {
            let slot = *addr as usize as *mut u64;
            // SAFETY: the DTB's (or the board's) cpu-release-addr: a 64-bit slot in reserved
            // low RAM that the waiting core polls; identity-mapped (RAM) or reached directly
            // (MMU off).
            unsafe { slot.write_volatile(entry) };
            // The waiting core reads the slot with its MMU and caches off: push it to memory.
            dc_range(slot as usize, 8, Dc::Civac);
            sev();
            Ok(())
        }
        EnableMethod::Other(o) => Err(format!("cannot start a core with enable-method '{o}'")),
    }
}

pub fn online_cpus() -> usize {
    ONLINE.load(Ordering::Acquire)
}

/// Run `body(role)` on cores `cpus[role]` after a common start barrier; see the module docs.
pub fn run_on(
    cpus: &[usize],
    timeout_ms: u64,
    body: &(dyn Fn(usize) + Sync),
) -> Result<(), RunError> {
    let me = core_index();
    let online = online_cpus();
    for (i, &c) in cpus.iter().enumerate() {
        if c >= online || LOST[c].load(Ordering::Relaxed) {
            return Err(RunError::NoSuchCpu(c));
        }
        if cpus[..i].contains(&c) {
            return Err(RunError::Other(format!("core {c} named twice")));
        }
    }
    let g = GEN.load(Ordering::Relaxed) + 1;
    GEN.store(g, Ordering::Relaxed);
    let deadline = now_ns().saturating_add(timeout_ms.saturating_mul(1_000_000));

    let jobs: Vec<Job> = cpus
        .iter()
        .enumerate()
        .map(|(role, _)| Job { role, body })
        .collect();
    let remote: Vec<(usize, usize)> = cpus
        .iter()
        .enumerate()
        .filter(|(_, &c)| c != me)
        .map(|(r, &c)| (r, c))
        .collect();
    for &(role, c) in &remote {
        let mb = &MAILBOX[c];
        mb.job
            .store(&jobs[role] as *const Job as usize, Ordering::Relaxed);
        mb.seq.store(g, Ordering::Release);
    }
    // SAFETY: DSB + SEV only: wake cores waiting in WFE.
    unsafe { core::arch::asm!("dsb sy", "sev", options(nostack)) };
    // Cores asleep in WFI need an interrupt (the DSB above put the mailboxes out first).
    gic::wake(remote.iter().map(|&(_, c)| c));
    if POWER_CYCLE.load(Ordering::Relaxed) {
        for &(_, c) in &remote {
            if let Err(e) = power_on(c, deadline) {
                CANCEL.store(g, Ordering::Release);
                return Err(RunError::Other(format!("core {c}: {e}")));
            }
        }
    }

    // Barrier: every remote core says it is ready, then GO.
    let not_ready = wait_ready(&remote, deadline, g);
    if !not_ready.is_empty() {
        CANCEL.store(g, Ordering::Release);
        sev();
        // Nothing started; a late core sees CANCEL and skips the body.
        return Err(RunError::Timeout { stuck: not_ready });
    }
    GO.store(g, Ordering::Release);
    if let Some(role) = cpus.iter().position(|&c| c == me) {
        body(role);
    }
    let stuck = wait_all(&remote, deadline, |c| {
        MAILBOX[c].done.load(Ordering::Acquire) == g
    });
    if !stuck.is_empty() {
        for &c in &stuck {
            LOST[c].store(true, Ordering::Relaxed);
        }
        // A stuck core may still read its job later: keep the jobs alive for good.
        Box::leak(Box::new(jobs));
        return Err(RunError::Timeout { stuck });
    }
    Ok(())
}

/// How often the barrier wait repeats the wake-up SGI to a core that has not answered.
const REWAKE_NS: u64 = 50_000_000;

/// Wait until every remote core is ready for generation `g` or the deadline; the cores that
/// never got there. A core asleep in WFI that has not answered gets its SGI again now and then
/// (belt and braces: a pending SGI is never lost, but a core that misses one would otherwise
/// sleep until the deadline).
fn wait_ready(remote: &[(usize, usize)], deadline: u64, g: u64) -> Vec<usize> {
    let mut rewake = now_ns().saturating_add(REWAKE_NS);
    loop {
        let pending: Vec<usize> = remote
            .iter()
            .map(|&(_, c)| c)
            .filter(|&c| MAILBOX[c].ready.load(Ordering::Acquire) != g)
            .collect();
        let now = now_ns();
        if pending.is_empty() || now >= deadline {
            return pending;
        }
        if now >= rewake {
            gic::wake(pending.iter().copied());
            rewake = now.saturating_add(REWAKE_NS);
        }
        core::hint::spin_loop();
    }
}

/// Wait until `ok(core)` for every remote core or the deadline; the cores that never got there.
fn wait_all(remote: &[(usize, usize)], deadline: u64, ok: impl Fn(usize) -> bool) -> Vec<usize> {
    loop {
        let pending: Vec<usize> = remote.iter().map(|&(_, c)| c).filter(|&c| !ok(c)).collect();
        if pending.is_empty() || now_ns() >= deadline {
            return pending;
        }
        core::hint::spin_loop();
    }
}
