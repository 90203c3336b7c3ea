//! Waking idle cores with a GICv2 software-generated interrupt, so they can sleep in WFI.
//!
//! Why: an idle core waits for its next job in a WFE loop, but under QEMU's TCG a WFE does not
//! sleep, so on boards without PSCI (the Raspberry Pi 4's spin table, where idle cores cannot
//! power off) three idle cores spin on the host and slow the core doing the work. A WFI does
//! sleep, until an interrupt is pending at the core — also while PSTATE.I masks it (Arm ARM
//! D1.6.2 "Wait for Interrupt": the wake-up events include a pending IRQ whatever PSTATE.I;
//! the kernel keeps DAIF masked throughout, so no interrupt is ever taken). `run_on` sends SGI
//! [`SGI`] to the cores it posted a job to; the woken core acknowledges it (GICC_IAR/GICC_EOIR)
//! and rechecks its mailbox. Nothing is lost if an SGI arrives before the WFI: it stays pending
//! and the WFI falls straight through.
//!
//! Each core checks that the path works before relying on it: it enables its CPU interface,
//! sends the SGI to itself and must see it at GICC_IAR within a bound. A core whose check fails
//! (no GIC at the board's address, interrupts owned by the Secure world, ...) keeps the WFE
//! loop, as do all cores on boards that name no GIC.
//!
//! Register map: ARM IHI 0048B (GICv2) 4.1.2/4.1.3. Security: with the Security Extensions
//! (GICD_TYPER.SecurityExtn) this kernel runs Non-secure (EL1 under an EL2 entry) and sees the
//! Non-secure register views — only Group 1 interrupts, GICD_CTLR/GICC_CTLR bit 0 = EnableGrp1;
//! the Raspberry Pi armstub (and QEMU, for a kernel it boots Non-secure) puts every interrupt in
//! Group 1. Without them, bits 0 and 1 enable Groups 0 and 1 and IRQs are signalled for both.

use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use super::{now_ns, MAX_CORES};

/// The SGI used for wake-ups.
pub const SGI: u32 = 0;
/// How long a core's self-check waits for its own SGI, at least (and at least
/// [`SELF_CHECK_POLLS`] reads of GICC_IAR): generous, since under a loaded emulator host a vCPU
/// thread can lose milliseconds between two instructions (2 ms was seen to fail there).
const SELF_CHECK_NS: u64 = 100_000_000;
const SELF_CHECK_POLLS: u32 = 10_000;

const GICD_CTLR: usize = 0x000;
const GICD_TYPER: usize = 0x004;
const GICD_ISENABLER0: usize = 0x100;
const GICD_IPRIORITYR: usize = 0x400;
const GICD_ITARGETSR: usize = 0x800;
const GICD_SGIR: usize = 0xf00;
const GICC_CTLR: usize = 0x000;
const GICC_PMR: usize = 0x004;
const GICC_IAR: usize = 0x00c;
const GICC_EOIR: usize = 0x010;
const SPURIOUS: u32 = 1023;

/// Distributor and CPU interface bases (0 = no GIC), set once by core 0 before any secondary
/// is released.
static GICD: AtomicUsize = AtomicUsize::new(0);
static GICC: AtomicUsize = AtomicUsize::new(0);
/// Each core's GIC CPU-interface target mask (GICD_ITARGETSR0 as that core reads it); 0 = the
/// core does not sleep in WFI (check failed or not done).
static TARGET: [AtomicU32; MAX_CORES] = [const { AtomicU32::new(0) }; MAX_CORES];

fn rd(addr: usize) -> u32 {
    // SAFETY: `addr` is a GIC register inside the board's GIC frames (Device memory: identity-
    // mapped Device-nGnRnE with the MMU on, and every access is Device with it off).
    unsafe { (addr as *const u32).read_volatile() }
}

fn wr(addr: usize, v: u32) {
    // SAFETY: as in `rd`.
    unsafe { (addr as *mut u32).write_volatile(v) }
}

/// Core 0, before releasing secondaries: adopt the board's GIC (distributor, CPU interface).
pub fn set_base(gicd: usize, gicc: usize) {
    GICD.store(gicd, Ordering::Release);
    GICC.store(gicc, Ordering::Release);
}

/// Per core: enable this core's CPU interface and the wake-up SGI, then check the SGI reaches
/// it. Returns whether this core may sleep in WFI (and records its target mask).
pub fn init_this_core(index: usize) -> bool {
    let (d, c) = (GICD.load(Ordering::Acquire), GICC.load(Ordering::Acquire));
    if d == 0 || c == 0 || index >= MAX_CORES {
        return false;
    }
    let typer = rd(d + GICD_TYPER);
    let secure_ext = typer & (1 << 10) != 0;
    let enable = if secure_ext { 0b01 } else { 0b11 };
    // Distributor (shared; only ever ORs enables in) and this core's banked SGI settings.
    let ctlr = rd(d + GICD_CTLR);
    if ctlr & enable != enable {
        wr(d + GICD_CTLR, ctlr | enable);
    }
    wr(d + GICD_ISENABLER0, 1 << SGI);
    let pri = d + GICD_IPRIORITYR + (SGI as usize & !3);
    let shift = (SGI % 4) * 8;
    wr(pri, (rd(pri) & !(0xff << shift)) | (0x80 << shift));
    // CPU interface: forward the enabled group(s); let every priority through.
    let cctlr = rd(c + GICC_CTLR);
    wr(c + GICC_CTLR, cctlr | enable);
    wr(c + GICC_PMR, 0xff);
    // Clear anything already pending here.
    drain(c);
    // Our own target mask: GICD_ITARGETSR0..7 read back the calling core's bit (IHI 0048B
    // 4.3.12); 0 on a uniprocessor GIC.
    let mask = rd(d + GICD_ITARGETSR) & 0xff;
    if mask == 0 {
        return false;
    }
    // Self-check: SGI to this core only (TargetListFilter 0b10).
    // SAFETY: DSB only: the set-up above reaches the GIC before the SGI is requested.
    unsafe { core::arch::asm!("dsb sy", options(nostack)) };
    wr(d + GICD_SGIR, (0b10 << 24) | SGI);
    let deadline = now_ns() + SELF_CHECK_NS;
    let mut seen = false;
    let mut polls = 0u32;
    while !seen && (polls < SELF_CHECK_POLLS || now_ns() < deadline) {
        polls = polls.saturating_add(1);
        let iar = rd(c + GICC_IAR);
        if iar & 0x3ff != SPURIOUS {
            wr(c + GICC_EOIR, iar);
            seen = iar & 0x3ff == SGI;
        }
    }
    if seen {
        TARGET[index].store(mask, Ordering::Release);
    }
    seen
}

/// Acknowledge and end whatever is pending at this core's CPU interface (bounded).
fn drain(c: usize) {
    for _ in 0..32 {
        let iar = rd(c + GICC_IAR);
        if iar & 0x3ff == SPURIOUS {
            break;
        }
        wr(c + GICC_EOIR, iar);
    }
}

/// Whether core `index` sleeps in WFI and needs an SGI to wake.
pub fn sleeps(index: usize) -> bool {
    index < MAX_CORES && TARGET[index].load(Ordering::Acquire) != 0
}

/// Idle wait on a core that passed its check: WFI, then acknowledge the wake-up.
pub fn wait() {
    let c = GICC.load(Ordering::Relaxed);
    // SAFETY: WFI only; interrupts stay masked (DAIF), so a pending SGI wakes the core without
    // being taken.
    unsafe { core::arch::asm!("wfi", options(nostack, nomem)) };
    drain(c);
    // SAFETY: DSB only: the IAR read (which saw the SGI, sent after the job was posted) completes
    // before the mailbox is read again.
    unsafe { core::arch::asm!("dsb sy", options(nostack)) };
}

/// Wake the listed cores (those that sleep in WFI; others are woken by SEV). The caller has
/// already made its mailbox stores visible (`dsb sy`).
pub fn wake(cores: impl Iterator<Item = usize>) {
    let d = GICD.load(Ordering::Relaxed);
    if d == 0 {
        return;
    }
    let mask = cores
        .filter(|&i| i < MAX_CORES)
        .fold(0, |m, i| m | TARGET[i].load(Ordering::Acquire));
    if mask != 0 {
        // TargetListFilter 0b00: the cores in CPUTargetList.
        wr(d + GICD_SGIR, (mask << 16) | SGI);
    }
}
