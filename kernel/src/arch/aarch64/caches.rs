//! `caches=off|on` at run time: SCTLR_EL1.C and .I on every core at once.
//!
//! With SCTLR_EL1.C = 0 every data access to Normal memory is Non-cacheable (Arm ARM D19.2,
//! SCTLR_EL1.C), so dirty lines must reach memory first and no core may read memory that another
//! core still holds dirty. The procedure ([`set`]):
//! 1. every core arrives (all still cached);
//! 2. core 0 cleans and invalidates all RAM to the point of coherency by VA (DC CIVAC is
//!    broadcast to the Inner Shareable domain, so it reaches every core's caches);
//! 3. every core arrives again, then in one asm block, without touching memory in between, clears
//!    C and I and cleans and invalidates its own stack (the only memory it wrote since step 2
//!    besides the rendezvous slots, which are cleaned as they are written);
//! 4. every core arrives a last time.
//!
//! Turning the caches back on needs no cleaning (nothing was allocated while C was 0): C and I are
//! set, the instruction cache is invalidated. The rendezvous slots are written with plain stores
//! and cleaned to memory each time (exclusives on Non-cacheable memory are IMPLEMENTATION
//! DEFINED, Arm ARM B2.9.5), and read after a clean+invalidate, so a core with C = 0 and one with
//! C = 1 see the same value.

use alloc::format;
use alloc::string::String;
use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::mmu::{dc_range, dline, Dc};
use super::{smp, MAX_CORES, STACK_SIZE};

/// Whether SCTLR_EL1.C/I are set on every core (what the last [`set`] made effective).
static ON: AtomicBool = AtomicBool::new(true);

/// One rendezvous slot per core, each on a line of its own.
#[repr(align(64))]
struct Slot(AtomicU64);
static SLOTS: [Slot; MAX_CORES] = [const { Slot(AtomicU64::new(0)) }; MAX_CORES];
static ROUND: AtomicU64 = AtomicU64::new(0);

pub fn on() -> bool {
    ON.load(Ordering::Acquire)
}

fn publish(role: usize, v: u64) {
    SLOTS[role].0.store(v, Ordering::Release);
    dc_range(&SLOTS[role] as *const Slot as usize, 64, Dc::Civac);
}

fn wait_all(n: usize, v: u64) {
    for s in &SLOTS[..n] {
        loop {
            dc_range(s as *const Slot as usize, 64, Dc::Civac);
            if s.0.load(Ordering::Acquire) >= v {
                break;
            }
            core::hint::spin_loop();
        }
    }
}

/// Make `caches` effective on cores `0..n` (every online core).
pub fn set(caches: bool, n: usize) -> Result<(), String> {
    if on() == caches {
        return Ok(());
    }
    let ram = super::boot::facts().memory.clone();
    let base = ROUND.fetch_add(3, Ordering::AcqRel) + 1;
    let cpus: alloc::vec::Vec<usize> = (0..n).collect();
    let body = |role: usize| {
        publish(role, base);
        wait_all(n, base);
        if caches {
            enable_here();
        } else {
            if role == 0 {
                for &(start, len) in &ram {
                    dc_range(start, len, Dc::Civac);
                }
            }
            publish(role, base + 1);
            wait_all(n, base + 1);
            disable_here();
        }
        publish(role, base + 2);
        wait_all(n, base + 2);
    };
    smp::run_on(&cpus, 30_000, &body).map_err(|e| {
        format!(
            "caches={}: not every core switched: {e:?}",
            if caches { "on" } else { "off" }
        )
    })?;
    ON.store(caches, Ordering::Release);
    Ok(())
}

/// SCTLR_EL1.C = I = 0, then clean and invalidate this core's stack, in one asm block that
/// touches no memory (so no dirty stack line can be read back stale in between).
fn disable_here() {
    let sp: usize;
    // SAFETY: reads SP only.
    unsafe { asm!("mov {0}, sp", out(reg) sp, options(nomem, nostack)) };
    let line = dline();
    let start = (sp.saturating_sub(1024)) & !(line - 1);
    let end = sp + STACK_SIZE;
    // SAFETY: clears SCTLR_EL1.C and .I (bits 2 and 12): data accesses become Non-cacheable and
    // instruction fetches uncached; then DC CIVAC over this core's stack (mapped RAM, plus at
    // most one stack's length above, also mapped: stacks sit in the image's RAM). No memory is
    // accessed by the block itself.
    unsafe {
        asm!(
            "mrs {t}, sctlr_el1",
            "bic {t}, {t}, #(1 << 2)",
            "bic {t}, {t}, #(1 << 12)",
            "msr sctlr_el1, {t}",
            "isb",
            "2:",
            "dc civac, {a}",
            "add {a}, {a}, {l}",
            "cmp {a}, {e}",
            "b.lo 2b",
            "dsb sy",
            t = out(reg) _,
            a = inout(reg) start => _,
            l = in(reg) line,
            e = in(reg) end,
            options(nostack)
        )
    };
}

/// SCTLR_EL1.C = I = 1, with the instruction cache invalidated first.
fn enable_here() {
    // SAFETY: invalidates this core's instruction cache and sets SCTLR_EL1.C and .I; nothing was
    // allocated into the data cache while C was 0, so no stale data line can appear.
    unsafe {
        asm!(
            "ic iallu",
            "dsb nsh",
            "isb",
            "mrs {t}, sctlr_el1",
            "orr {t}, {t}, #(1 << 2)",
            "orr {t}, {t}, #(1 << 12)",
            "msr sctlr_el1, {t}",
            "isb",
            t = out(reg) _,
            options(nostack)
        )
    };
}
