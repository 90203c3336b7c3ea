//! The PMU cycle counter (Arm ARM D13 "The Performance Monitors Extension"): PMCCNTR_EL0,
//! enabled at EL1 where ID_AA64DFR0_EL1.PMUVer says the core has PMUv3.

use core::arch::asm;

use aarch64_cpu::registers::{Readable, ID_AA64DFR0_EL1};

/// Enable the cycle counter on the calling core; whether it counts.
pub fn enable() -> bool {
    let ver = ID_AA64DFR0_EL1.read(ID_AA64DFR0_EL1::PMUVer);
    if ver == 0 || ver == 0xf {
        return false; // no PMU, or an IMPLEMENTATION DEFINED one
    }
    // SAFETY: PMU control registers, accessible at EL1 (MDCR_EL2.TPM/TPMCR cleared by the entry
    // code when it dropped from EL2). PMCR_EL0: E (bit 0) enable, C (bit 2) reset the cycle
    // counter, LC (bit 6) 64-bit overflow; PMCCFILTR_EL0 = 0 counts at EL1 and EL0;
    // PMCNTENSET_EL0 bit 31 enables PMCCNTR_EL0.
    unsafe {
        asm!(
            "mrs {t}, pmcr_el0",
            "mov {u}, #0x45",
            "orr {t}, {t}, {u}",
            "msr pmcr_el0, {t}",
            "msr pmccfiltr_el0, xzr",
            "mov {t}, #0x80000000",
            "msr pmcntenset_el0, {t}",
            "isb",
            t = out(reg) _,
            u = out(reg) _,
            options(nomem, nostack)
        );
    }
    let a = read();
    for _ in 0..1000 {
        core::hint::spin_loop();
    }
    read() != a
}

pub fn read() -> u64 {
    let v: u64;
    // SAFETY: reads PMCCNTR_EL0; only called where `enable` succeeded on this core.
    unsafe { asm!("mrs {0}, pmccntr_el0", out(reg) v, options(nomem, nostack)) };
    v
}
