//! Time: the TSC, calibrated once at boot against PIT channel 2 (1.193182 MHz).

use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::instructions::port::Port;

const PIT_HZ: u64 = 1_193_182;
/// Calibration window: 10 ms of PIT ticks.
const PIT_TICKS: u16 = 11_932;

static TSC_HZ: AtomicU64 = AtomicU64::new(0);
static TSC_BOOT: AtomicU64 = AtomicU64::new(0);

pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC only reads the time-stamp counter (CR4.TSD is clear at ring 0 anyway).
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Measure the TSC frequency with PIT channel 2 in mode 0 (its output, readable in port 0x61
/// bit 5, goes high when the count reaches zero).
pub fn calibrate() {
    let mut ctl: Port<u8> = Port::new(0x61);
    let mut cmd: Port<u8> = Port::new(0x43);
    let mut ch2: Port<u8> = Port::new(0x42);
    // SAFETY: the PIT and the NMI status/control port exist on every PC; channel 2 drives only
    // the speaker, which stays disabled (bit 1 clear).
    let (t0, t1) = unsafe {
        let v = ctl.read();
        ctl.write((v & !0x02) | 0x01); // gate 2 on, speaker off
        cmd.write(0b1011_0000); // channel 2, lobyte/hibyte, mode 0, binary
        ch2.write((PIT_TICKS & 0xff) as u8);
        ch2.write((PIT_TICKS >> 8) as u8);
        let t0 = rdtsc();
        let mut spins: u64 = 0;
        while ctl.read() & 0x20 == 0 && spins < 100_000_000 {
            spins += 1;
        }
        (t0, rdtsc())
    };
    let hz = (t1 - t0) * PIT_HZ / u64::from(PIT_TICKS);
    // A sane floor in case the PIT is missing (then time is only roughly right).
    TSC_HZ.store(hz.max(100_000_000), Ordering::Relaxed);
    TSC_BOOT.store(t0, Ordering::Relaxed);
}

pub fn tsc_hz() -> u64 {
    TSC_HZ.load(Ordering::Relaxed)
}

pub fn now_ns() -> u64 {
    let hz = TSC_HZ.load(Ordering::Relaxed);
    if hz == 0 {
        return 0;
    }
    let d = rdtsc().saturating_sub(TSC_BOOT.load(Ordering::Relaxed));
    (u128::from(d) * 1_000_000_000 / u128::from(hz)) as u64
}
