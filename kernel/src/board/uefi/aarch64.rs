//! Board `uefi` on AArch64 (Arm servers, SystemReady machines, QEMU virt + UEFI firmware).
//!
//! `boot/aarch64/uefi_entry.S` turns the firmware's MMU and caches off and joins the shared
//! entry (EL2 -> EL1, BSS, stacks, vectors); `rust_primary` hands the handover block to
//! [`uefi_primary`], which takes the hardware from ACPI (read by the loader with the firmware's
//! MMU on, see `handover::ArmHw`) instead of a device tree: the console from the SPCR (PL011 or
//! SBSA UART), the cores from the MADT GICC entries (MPIDR, started with PSCI CPU_ON), the PSCI
//! conduit from the FADT (ACPI 6.5 5.2.9 Table 5.11, ARM_BOOT_ARCH PSCI_COMPLIANT /
//! PSCI_USE_HVC), the GIC version from the MADT GICD entry (reported). Then the same arch code
//! as on `virt` builds its own page tables (MMU on) and starts the cores.

use aarch64_cpu::registers::{Readable, CNTFRQ_EL0};
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use handover::{
    Handover, EFI_RUNTIME_SERVICES_CODE, EFI_RUNTIME_SERVICES_DATA, PSCI_HVC, PSCI_SMC, UART_PL011,
    UART_SBSA,
};
use probes::record::RunStatus;

use crate::arch::{self, pl011, semihosting, BootFacts, Conduit, CpuDesc, EnableMethod, FACTS};

core::arch::global_asm!(include_str!("../../../../boot/aarch64/uefi_entry.S"));

pub const NAME: &str = "uefi-aarch64";

/// No GIC wake-ups: idle cores power off through PSCI, as on `virt`.
pub const GIC: Option<(usize, usize)> = None;
/// Unused: memory comes from the UEFI memory map (`rust_primary` needs the item).
#[allow(dead_code)]
pub const FALLBACK_MEMORY: &[(usize, usize)] = &[];

/// entry.S prints to this PL011 only if it must move the image to its link address and cannot;
/// on this board the loader has already relocated the image to where it runs, so that path is
/// never taken. QEMU virt's PL011 (the SPCR port is only known once ACPI is read).
pub const EARLY_UART: usize = 0x0900_0000;
/// The kernel's tables map everything below 4 GiB that is not RAM as Device-nGnRnE
/// (`arch::aarch64::mmu`), RAM as Normal; a framebuffer above is not drawn on.
const SCREEN_MAPPED_END: u64 = 1 << 32;
/// The loader's memory map already keeps firmware memory out of what it hands over.
pub const FIRMWARE_RESERVED: &[(u64, u64)] = &[];
/// Cores start through PSCI (ACPI FADT), never a spin table.
pub const FALLBACK_SPIN_SLOTS: &[u64] = &[];
/// EFI_ACPI_RECLAIM_MEMORY and EFI_ACPI_MEMORY_NVS (UEFI 2.10 Table 7.6): mapped as RAM so the
/// tables stay readable with the MMU on.
const EFI_ACPI_RECLAIM: u32 = 9;
const EFI_ACPI_NVS: u32 = 10;

/// Set the console UART (PL011 register layout).
pub fn console_setup(base: Option<usize>) -> usize {
    let base = base.unwrap_or(0);
    if base != 0 {
        pl011::set_base(base);
    }
    base
}

#[allow(dead_code)]
pub fn fallback_cpus() -> Vec<CpuDesc> {
    Vec::new()
}

#[allow(dead_code)]
pub fn identify(_has_dtb: bool, _semihosting: bool) {}

pub fn console_write(bytes: &[u8]) {
    pl011::write_bytes(bytes);
}

/// The end of the run: the "run finished" line, semihosting SYS_EXIT under QEMU (0 complete,
/// 1 aborted); on real hardware `shutdown=` decides (see `finish`).
pub fn exit(status: RunStatus) -> ! {
    let code = match status {
        RunStatus::Complete => 0,
        _ => 1,
    };
    super::finish(status, || {
        if arch::facts_semihosting() {
            semihosting::exit(code);
        }
    })
}

/// Stop after a fatal error before boot finished (`crate::fatal::early`): whether semihosting
/// answers is not known yet (finding out takes the fault guard), so park (as `virt`).
pub fn exit_early() -> ! {
    console_write(b"atomprobe: parked (no exit status can be reported this early)\r\n");
    arch::halt()
}

/// When ResetSystem is not available: PSCI SYSTEM_OFF (Arm DEN 0022) through the FADT's conduit.
pub fn power_off_fallback() {
    arch::psci_system_off();
}

/// RAM for the page tables: every region the OS may use plus runtime services and ACPI tables,
/// adjacent ones merged.
fn ram_regions(h: &Handover) -> Vec<(usize, usize)> {
    let mut v: Vec<(usize, usize)> = h
        .regions()
        .iter()
        .filter(|r| {
            r.is_usable_ram()
                || matches!(
                    r.kind,
                    EFI_RUNTIME_SERVICES_CODE
                        | EFI_RUNTIME_SERVICES_DATA
                        | EFI_ACPI_RECLAIM
                        | EFI_ACPI_NVS
                )
        })
        .map(|r| (r.base as usize, r.bytes() as usize))
        .collect();
    v.sort_unstable();
    let mut out: Vec<(usize, usize)> = Vec::new();
    for (s, l) in v {
        match out.last_mut() {
            Some((ps, pl)) if *ps + *pl == s => *pl += l,
            _ => out.push((s, l)),
        }
    }
    out
}

fn fail(what: &str) -> ! {
    console_write(b"atomprobe: ");
    console_write(what.as_bytes());
    console_write(b"\r\n");
    exit(RunStatus::Aborted)
}

/// The cores (usable MADT GICC entries, started with PSCI CPU_ON) and why others are not.
fn cpus(h: &Handover) -> (Vec<CpuDesc>, Vec<String>) {
    let mut cpus = Vec::new();
    let mut offline = Vec::new();
    for c in h.arm.cpus() {
        // ACPI 6.5 Table 5.37: bit 0 Enabled, bit 3 Online Capable.
        if c.flags & 0b1001 == 0 {
            offline.push(format!(
                "MADT GICC MPIDR {:#x}: neither enabled nor online-capable",
                c.mpidr
            ));
            continue;
        }
        cpus.push(CpuDesc {
            mpidr: c.mpidr & 0xff_00ff_ffff,
            method: EnableMethod::Psci,
        });
    }
    (cpus, offline)
}

/// From `rust_primary` (EL1, MMU off, BSS zeroed, vectors set), with the handover block.
pub fn uefi_primary(handover: usize, entry_el: u64) -> ! {
    // Report times from here, not from power-on (the firmware ran for seconds before us).
    arch::set_time_origin();
    if handover == 0 {
        arch::halt();
    }
    // SAFETY: the loader wrote a Handover here (EfiLoaderData, never given to the heap) and
    // cleaned it to the point of coherency; it does not run any more.
    let h: &'static Handover = unsafe { &*(handover as *const Handover) };
    if !h.is_valid() {
        // No console yet, and none known without the block: nothing to say it with.
        arch::halt();
    }
    let has_uart = matches!(h.arm.uart_kind, UART_PL011 | UART_SBSA);
    if has_uart {
        console_setup(Some(h.arm.uart_base as usize));
    }
    if h.heap_len == 0 {
        fail("the loader reserved no heap");
    }
    // SAFETY: the loader reserved this range as EfiLoaderData for us alone; nothing else
    // (handover, image) lies in it.
    unsafe { crate::heap::init(h.heap_base as usize, h.heap_len as usize) };
    let uart_fact = match has_uart {
        true => {
            format!(
                "{} at {:#x} (ACPI SPCR)",
                if h.arm.uart_kind == UART_PL011 {
                    "pl011"
                } else {
                    "sbsa"
                },
                h.arm.uart_base
            )
        }
        // Without a console the run is silent; the exit status still tells.
        false => "none (no usable ACPI SPCR: see the error records)".to_string(),
    };
    super::queue_notes(h);
    super::remember_system_table(h);
    let (cpus, offline) = cpus(h);
    for o in offline {
        crate::kmain::queue_boot_error("cpu", o);
    }
    let psci = match h.arm.psci {
        PSCI_HVC => Some(Conduit::Hvc),
        PSCI_SMC => Some(Conduit::Smc),
        _ => None,
    };
    let memory = ram_regions(h);
    let semihosting = semihosting::available();

    let mut platform = BTreeMap::new();
    let mut fact = |k: &str, v: String| {
        platform.insert(k.to_string(), v);
    };
    super::handover_facts(h, handover as u64, &mut fact);
    fact("entry_el", format!("{entry_el}"));
    fact("uart", uart_fact);
    fact(
        "gic",
        match h.arm.gic_version {
            u32::MAX => "no GICD entry in the MADT".to_string(),
            0 => format!(
                "distributor at {:#x}, version not given (MADT GICD)",
                h.arm.gicd_base
            ),
            v => format!("GICv{v}, distributor at {:#x} (MADT GICD)", h.arm.gicd_base),
        },
    );
    fact(
        "psci",
        match psci {
            Some(Conduit::Hvc) => "hvc (ACPI FADT)".into(),
            Some(Conduit::Smc) => "smc (ACPI FADT)".into(),
            None => "none (ACPI FADT: not PSCI-compliant)".into(),
        },
    );
    fact("ram_bytes", format!("{}", h.usable_bytes()));
    fact(
        "memory",
        memory
            .iter()
            .map(|(a, s)| format!("{a:#x}+{s:#x}"))
            .collect::<Vec<_>>()
            .join(","),
    );
    fact("kernel", format!("{:#x}+{:#x}", h.image_base, h.image_len));
    fact("heap", format!("{:#x}+{:#x}", h.heap_base, h.heap_len));
    let (framebuffer, screen) = super::framebuffer_facts(h, SCREEN_MAPPED_END);
    fact("framebuffer", framebuffer);
    fact("screen", screen);
    fact("semihosting", semihosting.to_string());
    fact("cntfrq_hz", format!("{}", CNTFRQ_EL0.get()));

    FACTS.call_once(|| BootFacts {
        memory,
        cpus,
        psci,
        semihosting,
    });
    crate::kmain(crate::BootInfo {
        cmdline: String::from_utf8_lossy(h.cmdline()).trim().into(),
        platform,
    })
}
