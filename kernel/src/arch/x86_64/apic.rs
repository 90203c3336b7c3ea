//! The local APIC in xAPIC (MMIO) or x2APIC (MSR) mode, whichever the firmware handed over
//! (IA32_APIC_BASE.EXTD); x2APIC is switched on if a core's APIC ID does not fit xAPIC's 8 bits.
//! SDM Vol. 3A chapter 11 (APIC): 11.4.4 (APIC base), 11.6.1 (ICR), 11.12 (x2APIC).

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use x86_64::registers::model_specific::Msr;

use super::time;

const IA32_APIC_BASE: u32 = 0x1b;
const BASE_EN: u64 = 1 << 11;
const BASE_EXTD: u64 = 1 << 10;

/// xAPIC register offsets; the x2APIC MSR is 0x800 + offset / 16.
const REG_ID: u32 = 0x20;
const REG_EOI: u32 = 0xb0;
const REG_SVR: u32 = 0xf0;
const REG_ICR_LO: u32 = 0x300;
const REG_ICR_HI: u32 = 0x310;

/// Spurious-interrupt vector (SVR\[7:0\]) and the engine's wake-up IPI vector.
pub const SPURIOUS_VECTOR: u8 = 0xff;
pub const WAKE_VECTOR: u8 = 0xf0;

static X2APIC: AtomicBool = AtomicBool::new(false);
static XAPIC_BASE: AtomicU64 = AtomicU64::new(0xfee0_0000);

fn rdmsr(m: u32) -> u64 {
    // SAFETY: only called for architectural APIC MSRs that exist in the current APIC mode.
    unsafe { Msr::new(m).read() }
}

fn wrmsr(m: u32, v: u64) {
    // SAFETY: as for `rdmsr`; the values written are valid for the register (SDM 11.12).
    unsafe { Msr::new(m).write(v) }
}

fn read(reg: u32) -> u32 {
    if X2APIC.load(Ordering::Relaxed) {
        rdmsr(0x800 + reg / 16) as u32
    } else {
        let p = (XAPIC_BASE.load(Ordering::Relaxed) + u64::from(reg)) as *const u32;
        // SAFETY: the xAPIC page is identity-mapped UC (3-4 GiB in the boot map) and `reg` is an
        // architectural register offset.
        unsafe { p.read_volatile() }
    }
}

fn write(reg: u32, v: u32) {
    if X2APIC.load(Ordering::Relaxed) {
        wrmsr(0x800 + reg / 16, u64::from(v));
    } else {
        let p = (XAPIC_BASE.load(Ordering::Relaxed) + u64::from(reg)) as *mut u32;
        // SAFETY: as for `read`.
        unsafe { p.write_volatile(v) }
    }
}

/// CPUID.1:ECX\[21\]: x2APIC supported.
pub fn x2apic_supported() -> bool {
    super::cpuid(1).ecx & (1 << 21) != 0
}

/// Boot core: note the mode the firmware chose (x2APIC if EXTD is set), or switch to x2APIC when
/// `need_x2apic` (an APIC ID above 254) and the CPU has it. Returns the mode's name.
pub fn init_boot(need_x2apic: bool) -> &'static str {
    let base = rdmsr(IA32_APIC_BASE);
    XAPIC_BASE.store(base & 0x000f_ffff_ffff_f000, Ordering::Relaxed);
    let x2 = base & BASE_EXTD != 0 || (need_x2apic && x2apic_supported());
    X2APIC.store(x2, Ordering::Relaxed);
    enable_local();
    mode_name()
}

pub fn mode_name() -> &'static str {
    if X2APIC.load(Ordering::Relaxed) {
        "x2apic"
    } else {
        "xapic"
    }
}

pub fn is_x2apic() -> bool {
    X2APIC.load(Ordering::Relaxed)
}

/// This core: APIC globally enabled in the boot core's mode, software-enabled with the spurious
/// vector (SVR bit 8), so fixed IPIs are accepted.
pub fn enable_local() {
    let base = rdmsr(IA32_APIC_BASE);
    let want = if X2APIC.load(Ordering::Relaxed) {
        base | BASE_EN | BASE_EXTD
    } else {
        base | BASE_EN
    };
    if want != base {
        // xAPIC → x2APIC goes through EN = 1, EXTD = 0 first (SDM 11.12.5): EN is set here.
        if base & BASE_EN == 0 {
            wrmsr(IA32_APIC_BASE, base | BASE_EN);
        }
        wrmsr(IA32_APIC_BASE, want);
    }
    write(REG_SVR, 0x100 | u32::from(SPURIOUS_VECTOR));
}

/// This core's APIC ID (x2APIC: 32 bits; xAPIC: ID\[31:24\]).
pub fn id() -> u32 {
    let v = read(REG_ID);
    if X2APIC.load(Ordering::Relaxed) {
        v
    } else {
        v >> 24
    }
}

pub fn eoi() {
    write(REG_EOI, 0);
}

/// Send an IPI with ICR low `lo` to `dest`; waits (bounded) for xAPIC delivery.
fn send(dest: u32, lo: u32) {
    if X2APIC.load(Ordering::Relaxed) {
        wrmsr(0x830, (u64::from(dest) << 32) | u64::from(lo));
    } else {
        write(REG_ICR_HI, dest << 24);
        write(REG_ICR_LO, lo);
        // Delivery status (bit 12) clears when the IPI was accepted.
        let end = time::now_ns() + 10_000_000;
        while read(REG_ICR_LO) & (1 << 12) != 0 && time::now_ns() < end {
            core::hint::spin_loop();
        }
    }
}

/// INIT (assert, and in xAPIC mode de-assert, SDM 11.6.1), putting `dest` in wait-for-SIPI.
pub fn send_init(dest: u32) {
    if X2APIC.load(Ordering::Relaxed) {
        send(dest, 0x4500);
    } else {
        send(dest, 0xc500); // level-triggered, assert, INIT
        send(dest, 0x8500); // level-triggered, de-assert, INIT
    }
}

/// Start-up IPI: the core starts in real mode at `page` << 12.
pub fn send_sipi(dest: u32, page: u8) {
    send(dest, 0x4600 | u32::from(page));
}

/// A fixed IPI with `vector`.
pub fn send_fixed(dest: u32, vector: u8) {
    send(dest, 0x4000 | u32::from(vector));
}
