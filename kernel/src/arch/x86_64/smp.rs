//! Application processors and the cross-core engine.
//!
//! Cores come from the ACPI MADT (processor local APIC and local x2APIC entries, enabled or
//! online-capable), read with the `acpi` crate. Each AP is started with INIT-SIPI-SIPI (SDM
//! Vol. 3A 9.4.4.1, MP initialization) through the real-mode trampoline in
//! `boot/x86_64/trampoline.S`, copied below 1 MiB, one core at a time, each with its own fresh
//! stack. A core that does not check in within [`ARRIVE_TIMEOUT_NS`] is reported offline and
//! sent INIT again (back to wait-for-SIPI), so it can never run on a stack it was not given.
//!
//! The engine: every AP waits in `worker` on its mailbox (`sti; hlt` between jobs, woken by a
//! fixed IPI, so idle vCPUs do not steal the host). `run_on` posts a job to each core, all roles
//! meet at a start barrier, and the caller waits for every completion up to the time bound;
//! cores that do not finish are reported stuck, reset with INIT and taken offline.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};

use acpi::madt::{Madt, MadtEntry};
use acpi::{AcpiHandler, AcpiTables, PhysicalMapping};
use probes::platform::RunError;
use probes::record::Cpu;
use x86_64::registers::control::Cr3;

use super::{apic, core_index, cpu, paging, time, MAX_CPUS};

core::arch::global_asm!(
    include_str!("../../../../boot/x86_64/trampoline.S"),
    options(att_syntax)
);

extern "C" {
    static ap_tramp_start: u8;
    static ap_tramp_end: u8;
}

/// Where the trampoline runs: page 8 (SIPI vector 0x08), free RAM below 1 MiB.
const TRAMP_BASE: u64 = 0x8000;
const AP_STACK_SIZE: usize = 64 * 1024;
const ARRIVE_TIMEOUT_NS: u64 = 2_000_000_000;

/// Per-core state: APIC ID and arrival handshake.
const WAITING: u8 = 0;
const ONLINE: u8 = 1;
const ABANDONED: u8 = 2;
const OFFLINE: u8 = 3;

struct Core {
    apic_id: AtomicU32,
    state: AtomicU8,
    mailbox: Mailbox,
}

struct Mailbox {
    /// Incremented for each job posted.
    seq: AtomicU64,
    /// The last `seq` completed.
    done: AtomicU64,
    job: AtomicUsize,
    role: AtomicUsize,
}

static CORES: [Core; MAX_CPUS] = [const {
    Core {
        apic_id: AtomicU32::new(0),
        state: AtomicU8::new(OFFLINE),
        mailbox: Mailbox {
            seq: AtomicU64::new(0),
            done: AtomicU64::new(0),
            job: AtomicUsize::new(0),
            role: AtomicUsize::new(0),
        },
    }
}; MAX_CPUS];

/// Logical indexes handed out (online cores are 0..NCORES).
static NCORES: AtomicUsize = AtomicUsize::new(1);
static RSDP: AtomicU64 = AtomicU64::new(0);
static STARTED: AtomicBool = AtomicBool::new(false);

/// Boot core bookkeeping, before any AP starts.
pub fn init_boot(rsdp: u64) {
    RSDP.store(rsdp, Ordering::Relaxed);
    CORES[0].apic_id.store(apic::id(), Ordering::Relaxed);
    CORES[0].state.store(ONLINE, Ordering::Release);
}

pub fn online_cpus() -> usize {
    NCORES.load(Ordering::Acquire)
}

pub fn is_online(i: usize) -> bool {
    i < MAX_CPUS && CORES[i].state.load(Ordering::Acquire) == ONLINE
}

pub fn apic_id_of(i: usize) -> u32 {
    CORES[i].apic_id.load(Ordering::Relaxed)
}

/// ACPI tables are identity-mapped below 4 GiB (q35 puts them at the top of low RAM; the
/// machines UEFI boards were tried on too): the handler for the `acpi` crate on every x86 board.
#[derive(Clone, Copy)]
pub struct IdentityMap;

impl AcpiHandler for IdentityMap {
    unsafe fn map_physical_region<T>(&self, pa: usize, size: usize) -> PhysicalMapping<Self, T> {
        assert!(
            pa.checked_add(size).is_some_and(|e| e <= 1 << 32),
            "ACPI table at {pa:#x} is outside the 4 GiB identity map"
        );
        let p = NonNull::new(pa as *mut T).expect("ACPI table at physical address 0");
        // SAFETY: physical memory below 4 GiB is identity-mapped, so `pa` is also the virtual
        // address of the region, valid for `size` bytes.
        unsafe { PhysicalMapping::new(pa, p, size, size, *self) }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

/// One processor from the MADT.
struct MadtCpu {
    apic_id: u32,
    usable: bool,
}

fn madt_cpus(rsdp: u64) -> Result<(Vec<MadtCpu>, u32), String> {
    if rsdp == 0 {
        return Err("no ACPI RSDP in the start info".into());
    }
    // SAFETY: the RSDP address comes from the PVH start info; the handler maps identity.
    let tables = unsafe { AcpiTables::from_rsdp(IdentityMap, rsdp as usize) }
        .map_err(|e| format!("ACPI tables at RSDP {rsdp:#x}: {e:?}"))?;
    let madt = tables
        .find_table::<Madt>()
        .map_err(|e| format!("no MADT: {e:?}"))?;
    let mut v = Vec::new();
    let mut max_id = 0;
    for e in madt.get().entries() {
        let (id, flags) = match e {
            MadtEntry::LocalApic(l) => (u32::from(l.apic_id), { l.flags }),
            MadtEntry::LocalX2Apic(x) => ({ x.x2apic_id }, { x.flags }),
            _ => continue,
        };
        // Flags bit 0: enabled; bit 1: online capable (ACPI 6.5, 5.2.12.2).
        let usable = flags & 0b11 != 0;
        if v.iter().any(|c: &MadtCpu| c.apic_id == id) {
            continue;
        }
        max_id = max_id.max(id);
        v.push(MadtCpu {
            apic_id: id,
            usable,
        });
    }
    Ok((v, max_id))
}

/// Whether the MADT lists an APIC ID that needs x2APIC (above 254).
pub fn needs_x2apic(rsdp: u64) -> bool {
    madt_cpus(rsdp).map(|(_, m)| m > 254).unwrap_or(false)
}

fn delay_ns(ns: u64) {
    let end = time::now_ns() + ns;
    while time::now_ns() < end {
        core::hint::spin_loop();
    }
}

fn install_trampoline(entry: u64, stack_top: u64, index: u64) {
    let start = &raw const ap_tramp_start;
    let len = (&raw const ap_tramp_end) as usize - start as usize;
    let dst = TRAMP_BASE as *mut u8;
    // SAFETY: 0x8000.. (a page) is free conventional RAM below 1 MiB, identity-mapped; no AP is
    // running the trampoline while it is rewritten (one start at a time, stragglers got INIT).
    unsafe { core::ptr::copy_nonoverlapping(start, dst, len) };
    let (frame, _) = Cr3::read();
    let slots = (TRAMP_BASE + len as u64 - 32) as *mut u64;
    // SAFETY: the last four quadwords of the copy are the data slots (trampoline.S).
    unsafe {
        slots.write_volatile(frame.start_address().as_u64());
        slots.add(1).write_volatile(stack_top);
        slots.add(2).write_volatile(entry);
        slots.add(3).write_volatile(index);
    }
}

/// Start every MADT processor other than this one; one `cpu` record each.
pub fn start_cpus() -> Vec<Cpu> {
    let rec = |index: usize, apic_id: u32, error: Option<String>| Cpu {
        index: index as u32,
        hwid: format!("{apic_id:#x}"),
        online: error.is_none(),
        error,
        el: None,
        cycle_counter: Some(true),
    };
    let bsp = apic::id();
    let mut online = alloc::vec![rec(0, bsp, None)];
    let mut offline = Vec::new();
    if STARTED.swap(true, Ordering::SeqCst) {
        return online;
    }
    let cpus = match madt_cpus(RSDP.load(Ordering::Relaxed)) {
        Ok((c, _)) => c,
        Err(e) => {
            crate::kmain::report_error(
                "cpu",
                format!("cannot enumerate cores: {e}; running on the boot core only"),
            );
            return online;
        }
    };
    for c in cpus.iter().filter(|c| c.apic_id != bsp) {
        if !c.usable {
            offline.push((
                c.apic_id,
                "MADT: processor neither enabled nor online-capable".into(),
            ));
            continue;
        }
        if !apic::is_x2apic() && c.apic_id > 254 {
            offline.push((
                c.apic_id,
                "APIC ID above 254 needs x2APIC, which this CPU lacks".into(),
            ));
            continue;
        }
        let index = NCORES.load(Ordering::Relaxed);
        if index >= MAX_CPUS {
            offline.push((c.apic_id, format!("more than {MAX_CPUS} cores")));
            continue;
        }
        match start_one(index, c.apic_id) {
            Ok(()) => online.push(rec(index, c.apic_id, None)),
            Err(e) => offline.push((c.apic_id, e)),
        }
    }
    let n = online.len();
    online.extend(
        offline
            .into_iter()
            .enumerate()
            .map(|(k, (id, e))| rec(n + k, id, Some(e))),
    );
    online
}

/// INIT-SIPI-SIPI one AP as logical core `index`; Ok if it arrived, or why it is offline.
fn start_one(index: usize, apic_id: u32) -> Result<(), String> {
    let stack: &'static mut [u8] = Box::leak(alloc::vec![0u8; AP_STACK_SIZE].into_boxed_slice());
    let top = (stack.as_ptr_range().end as u64) & !0xf;
    let core = &CORES[index];
    core.apic_id.store(apic_id, Ordering::Relaxed);
    core.state.store(WAITING, Ordering::SeqCst);
    install_trampoline(ap_entry as *const () as u64, top, index as u64);
    let t0 = time::now_ns();
    // SDM Vol. 3A 9.4.4.1: INIT, 10 ms, SIPI, 200 us, SIPI.
    apic::send_init(apic_id);
    delay_ns(10_000_000);
    let page = (TRAMP_BASE >> 12) as u8;
    apic::send_sipi(apic_id, page);
    delay_ns(200_000);
    if core.state.load(Ordering::Acquire) == WAITING {
        apic::send_sipi(apic_id, page);
    }
    while time::now_ns() - t0 < ARRIVE_TIMEOUT_NS {
        if core.state.load(Ordering::Acquire) == ONLINE {
            NCORES.store(index + 1, Ordering::Release);
            return Ok(());
        }
        core::hint::spin_loop();
    }
    // Too late: whoever wins this exchange decides. If the AP checks in afterwards it sees
    // ABANDONED and halts; INIT then puts it back into wait-for-SIPI for good.
    if core
        .state
        .compare_exchange(WAITING, ABANDONED, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
        && core.state.load(Ordering::Acquire) == ONLINE
    {
        NCORES.store(index + 1, Ordering::Release);
        return Ok(());
    }
    apic::send_init(apic_id);
    delay_ns(10_000_000);
    core.state.store(OFFLINE, Ordering::SeqCst);
    Err(format!(
        "did not arrive within {} ms of INIT-SIPI-SIPI; sent INIT to park it",
        ARRIVE_TIMEOUT_NS / 1_000_000
    ))
}

/// Rust entry of an AP, from the trampoline, in long mode on its own stack.
extern "C" fn ap_entry(index: u64) -> ! {
    let index = index as usize;
    apic::enable_local();
    paging::program_pat();
    cpu::init_core(index);
    let me = &CORES[index];
    if me
        .state
        .compare_exchange(WAITING, ONLINE, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        super::halt();
    }
    worker(index)
}

/// A job: the body and the start barrier.
struct Job<'a> {
    body: &'a (dyn Fn(usize) + Sync),
    arrived: AtomicUsize,
    n: usize,
    abort: AtomicBool,
}

impl Job<'_> {
    /// Wait for all roles; false if the caller gave up.
    fn barrier(&self, deadline: Option<u64>) -> bool {
        self.arrived.fetch_add(1, Ordering::AcqRel);
        while self.arrived.load(Ordering::Acquire) < self.n {
            if self.abort.load(Ordering::Acquire) {
                return false;
            }
            if deadline.is_some_and(|d| time::now_ns() > d) {
                return false;
            }
            core::hint::spin_loop();
        }
        true
    }
}

fn worker(index: usize) -> ! {
    let mb = &CORES[index].mailbox;
    let mut seen = 0;
    loop {
        x86_64::instructions::interrupts::disable();
        let s = mb.seq.load(Ordering::Acquire);
        if s != seen {
            seen = s;
            let job = mb.job.load(Ordering::Acquire) as *const Job;
            let role = mb.role.load(Ordering::Acquire);
            // SAFETY: `run_on` keeps the job alive until this core's `done` equals `s`, or until
            // it gave up on this core, in which case it resets the core (INIT) before returning.
            let job = unsafe { &*job };
            if job.barrier(None) {
                (job.body)(role);
            }
            mb.done.store(s, Ordering::Release);
            continue;
        }
        // `sti; hlt`: the interrupt shadow of STI means a wake-up IPI arriving after the check
        // above still ends the HLT.
        // SAFETY: enables interrupts and halts until the next one (wake-up IPI).
        unsafe { core::arch::asm!("sti", "hlt", options(nomem, nostack)) };
    }
}

/// Run `body(role)` on `cpus[role]`, after a common start barrier.
pub fn run_on(
    cpus: &[usize],
    timeout_ms: u64,
    body: &(dyn Fn(usize) + Sync),
) -> Result<(), RunError> {
    let me = core_index();
    for (k, &c) in cpus.iter().enumerate() {
        if !(c == me || is_online(c)) || cpus[..k].contains(&c) {
            return Err(RunError::NoSuchCpu(c));
        }
    }
    let job = Job {
        body,
        arrived: AtomicUsize::new(0),
        n: cpus.len(),
        abort: AtomicBool::new(false),
    };
    let deadline = time::now_ns() + timeout_ms * 1_000_000;
    let mut expect = Vec::with_capacity(cpus.len());
    for (role, &c) in cpus.iter().enumerate() {
        if c == me {
            continue;
        }
        let mb = &CORES[c].mailbox;
        mb.job.store(&job as *const Job as usize, Ordering::Release);
        mb.role.store(role, Ordering::Release);
        let s = mb.seq.fetch_add(1, Ordering::AcqRel) + 1;
        expect.push((c, s));
        apic::send_fixed(apic_id_of(c), apic::WAKE_VECTOR);
    }
    if let Some(role) = cpus.iter().position(|&c| c == me) {
        if job.barrier(Some(deadline)) {
            body(role);
        } else {
            job.abort.store(true, Ordering::Release);
        }
    }
    loop {
        let pending: Vec<usize> = expect
            .iter()
            .filter(|(c, s)| CORES[*c].mailbox.done.load(Ordering::Acquire) != *s)
            .map(|(c, _)| *c)
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        if time::now_ns() > deadline {
            job.abort.store(true, Ordering::Release);
            // Cores still inside `body` (or never woken) are reset: the job lives on this stack.
            for &c in &pending {
                CORES[c].state.store(OFFLINE, Ordering::SeqCst);
                apic::send_init(apic_id_of(c));
            }
            return Err(RunError::Timeout { stuck: pending });
        }
        core::hint::spin_loop();
    }
}
