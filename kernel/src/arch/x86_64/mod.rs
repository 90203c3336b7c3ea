//! x86-64 support (long mode, ring 0; guarded ops at ring 3 under `align-check=on`). See
//! `arch/mod.rs` for the items every arch provides.
//!
//! - `cpu`: per-core GDT/TSS (IST stacks), the shared IDT, the core index in GS base.
//! - `trap`: `global_asm!` exception stubs, the fault guard and the register dump.
//! - `time`: TSC calibrated against the PIT.
//! - `apic`: local APIC, xAPIC or x2APIC.
//! - `smp`: APs from the ACPI MADT via INIT-SIPI-SIPI, and the cross-core engine.
//! - `paging`: PAT and the arena's memory-type aliases, MTRRs.
//! - `ring3`: `align-check=on`: CR0.AM, and the guarded ops run at CPL 3 with RFLAGS.AC = 1.
//! - `serial`: 16550 UARTs at I/O ports (COM1, an SPCR console) through `uart_16550`.

mod apic;
mod cpu;
mod paging;
mod ring3;
pub mod serial;
mod smp;
mod time;
mod trap;

/// The UEFI board reads the SPCR with the same ACPI handler as the MADT walk.
#[cfg(feature = "board-uefi")]
pub use smp::IdentityMap as AcpiIdentityMap;

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::arch::x86_64::__cpuid;
use core::cell::UnsafeCell;

use probes::attr::{Arch, MemAttr};
use probes::config::Config;
use probes::mapping::Variant;
use probes::platform::{Arena, Privilege, RuleEnv, RunError};
use probes::record::{Cpu, ErrorRec};
use x86_64::registers::control::{Cr0, Cr3, Cr4};
use x86_64::registers::model_specific::GsBase;

pub use trap::guarded;

/// Most cores the image handles (matches `probes::config::MAX_CPUS`).
pub const MAX_CPUS: usize = 64;

const PAGE: usize = 4096;
const LINE: usize = 64;
/// Probe arena: 4 pages (the fault family needs a page boundary inside it).
const ARENA_PAGES: usize = 4;
/// The arena is the start of a 2 MiB-aligned window nothing else uses, so that `mtrr=` can
/// put one variable-range MTRR over the whole 2 MiB page a `mapping=2m` alias maps, without
/// changing the type of kernel memory (a large page over several MTRR types has an undefined
/// type: SDM Vol. 3A 13.11.9).
const ARENA_WINDOW: usize = 2 << 20;

#[repr(C, align(0x200000))]
struct ArenaMem(UnsafeCell<[u8; ARENA_WINDOW]>);
// SAFETY: the arena is only handed out as a raw address range; probes access it with asm or
// atomics, never through Rust references.
unsafe impl Sync for ArenaMem {}
static ARENA: ArenaMem = ArenaMem(UnsafeCell::new([0; ARENA_WINDOW]));

/// Load the IDT on the boot core before anything that can fault (issue 11): a fault before the
/// heap and the per-core GDT/TSS exist is then printed (`crate::fatal`) instead of triple
/// faulting. The entries use the boot GDT's code selector (`cpu::KERNEL_CS`, the same in both).
pub fn load_early_idt() {
    cpu::load_idt();
}

/// Boot-core setup, called by the board once the heap exists: descriptor tables, TSC, legacy
/// PIC masked, local APIC, PAT and the arena aliases, SMP bookkeeping.
pub fn init_boot_cpu(rsdp: u64) {
    cpu::init_core(0);
    time::calibrate();
    mask_pic();
    apic::init_boot(smp::needs_x2apic(rsdp));
    paging::init(ARENA.0.get() as u64, (ARENA_PAGES * PAGE) as u64);
    smp::init_boot(rsdp);
}

/// Mask both 8259 PICs: nothing here takes legacy interrupts.
fn mask_pic() {
    let mut master: x86_64::instructions::port::Port<u8> =
        x86_64::instructions::port::Port::new(0x21);
    let mut slave: x86_64::instructions::port::Port<u8> =
        x86_64::instructions::port::Port::new(0xa1);
    // SAFETY: writing the interrupt mask registers of the PC's 8259 pair only masks IRQs.
    unsafe {
        master.write(0xff);
        slave.write(0xff);
    }
}

/// `align-check=on`: CR0.AM on every core, pages user-accessible, and `guarded` runs each op at
/// CPL 3 with RFLAGS.AC = 1 (Intel SDM Vol. 3A 6.15: alignment is checked only at CPL 3); the
/// suite itself stays at ring 0. See `ring3`.
pub fn apply_config(cfg: &mut Config, _errors: &mut Vec<ErrorRec>) {
    if cfg.align_check {
        ring3::enable();
    }
}

/// Where the suite runs (`begin.ring`): ring 0. Under `align-check=on` the guarded ops run at
/// ring 3 (`rule_env` and the `guarded_ops_ring` platform fact say so).
pub fn privilege() -> Privilege {
    Privilege::Ring(0)
}

/// The ring the guarded ops (the accesses the verdict rules judge) run at.
fn ops_privilege() -> Privilege {
    if ring3::enabled() {
        Privilege::Ring(3)
    } else {
        Privilege::Ring(0)
    }
}

pub(crate) fn cpuid(leaf: u32) -> core::arch::x86_64::CpuidResult {
    #[allow(unused_unsafe)]
    // SAFETY: CPUID exists on every x86-64 processor and only reads identification registers.
    unsafe {
        __cpuid(leaf)
    }
}

fn cpuid_sub(leaf: u32, sub: u32) -> core::arch::x86_64::CpuidResult {
    #[allow(unused_unsafe)]
    // SAFETY: as for `cpuid`.
    unsafe {
        core::arch::x86_64::__cpuid_count(leaf, sub)
    }
}

/// `GenuineIntel family 6 model 0x3a stepping 9` style (SDM Vol. 2A CPUID leaf 1 EAX).
pub fn cpu_id() -> String {
    let l0 = cpuid(0);
    let mut vendor = [0u8; 12];
    vendor[0..4].copy_from_slice(&l0.ebx.to_le_bytes());
    vendor[4..8].copy_from_slice(&l0.edx.to_le_bytes());
    vendor[8..12].copy_from_slice(&l0.ecx.to_le_bytes());
    let eax = cpuid(1).eax;
    let base_family = (eax >> 8) & 0xf;
    let family = if base_family == 0xf {
        base_family + ((eax >> 20) & 0xff)
    } else {
        base_family
    };
    let model = if base_family == 0x6 || base_family == 0xf {
        ((eax >> 4) & 0xf) | (((eax >> 16) & 0xf) << 4)
    } else {
        (eax >> 4) & 0xf
    };
    format!(
        "{} family {family:#x} model {model:#x} stepping {}",
        String::from_utf8_lossy(&vendor),
        eax & 0xf
    )
}

pub fn platform_facts() -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    m.insert("apic".to_string(), apic::mode_name().to_string());
    m.insert("split_lock_detect".to_string(), split_lock_detect());
    m.insert(
        "guarded_ops_ring".to_string(),
        match ops_privilege() {
            Privilege::Ring(3) => format!(
                "3 (align-check=on; {}; RAM identity map and arena aliases user-accessible; the \
                 suite runs at ring 0)",
                ring3::selfcheck()
            ),
            _ => "0".to_string(),
        },
    );
    paging::facts(&mut m);
    m.insert("tsc_hz".to_string(), time::tsc_hz().to_string());
    m.insert(
        "guarded_instructions".to_string(),
        probes::guard::guarded_instructions().to_string(),
    );
    m
}

/// Split-lock detection is enumerated by IA32_CORE_CAPABILITIES (MSR 0xcf) bit 5; the MSR
/// exists only when CPUID.(EAX=7,ECX=0):EDX\[30\] is set (Intel SDM Vol. 4, Vol. 3A 9.1.2.3). It
/// is reported, never assumed, and not enabled (MSR_TEST_CTRL is left alone).
fn split_lock_detect() -> String {
    if cpuid(0).eax < 7 || cpuid_sub(7, 0).edx & (1 << 30) == 0 {
        return "absent (CPUID.(EAX=7,ECX=0):EDX[30] = 0: no IA32_CORE_CAPABILITIES)".to_string();
    }
    // SAFETY: IA32_CORE_CAPABILITIES (0xcf) exists when CPUID.7.0:EDX[30] is set (checked).
    let caps = unsafe { x86_64::registers::model_specific::Msr::new(0xcf).read() };
    if caps & (1 << 5) != 0 {
        format!("supported (IA32_CORE_CAPABILITIES={caps:#x} bit 5), not enabled")
    } else {
        format!("absent (IA32_CORE_CAPABILITIES={caps:#x} bit 5 = 0)")
    }
}

pub fn start_cpus(_cfg: &Config) -> Vec<Cpu> {
    smp::start_cpus()
}

pub fn online_cpus() -> usize {
    smp::online_cpus()
}

/// The logical index of the calling core, kept in IA32_GS_BASE by `cpu::init_core`.
pub fn core_index() -> usize {
    (GsBase::read().as_u64() as usize).min(MAX_CPUS - 1)
}

pub fn now_ns() -> u64 {
    time::now_ns()
}

pub fn cycles() -> Option<u64> {
    Some(time::rdtsc())
}

pub fn rule_env(cfg: &Config) -> RuleEnv {
    RuleEnv {
        arch: Arch::X86_64,
        privilege: ops_privilege(),
        mmu_on: true,
        align_check: cfg.align_check && ring3::enabled(),
        line: LINE,
        page: PAGE,
        map: probes::mapping::Variant::DEFAULT,
    }
}

/// The arena alias whose PTEs select `attr` (default mapping).
pub fn arena(attr: MemAttr) -> Result<Arena, String> {
    arena_mapped(attr, &Variant::DEFAULT)
}

/// The arena alias whose leaf entries (4 KiB PTE, 2 MiB PDE or 1 GiB PDPTE, `v.size`) select
/// `attr` through the PAT, confirmed by reading back the page tables and IA32_PAT (`paging`).
pub fn arena_mapped(attr: MemAttr, v: &Variant) -> Result<Arena, String> {
    paging::confirm(attr, v.size).map_err(|e| {
        format!(
            "memory type {attr}, mapping={}: alias not confirmed: {e}",
            v.size.name()
        )
    })?;
    let va =
        paging::alias(attr, v.size).ok_or_else(|| format!("{attr} is not an x86 memory type"))?;
    Ok(Arena {
        base: va as *mut u8,
        len: ARENA_PAGES * PAGE,
        attr,
    })
}

/// The arena's own 2 MiB window through `attr`'s alias under `v` (the arena is its start).
pub fn arena_window(attr: MemAttr, v: &Variant) -> Result<(*const u8, usize), String> {
    let a = arena_mapped(attr, v)?;
    Ok((a.base as *const u8, ARENA_WINDOW))
}

/// `mtrr=` and `caches=` on every online core (SDM Vol. 3A 13.11.8), and whether the CPU has
/// the leaf size.
pub fn set_variant(v: &Variant) -> Result<(), String> {
    paging::set_variant(v, smp::online_cpus())
}

/// PAT × MTRR for the arena's alias (SDM Vol. 3A 13.5.2.2, Table 13-7).
pub fn effective_type(attr: MemAttr, v: &Variant) -> Option<String> {
    paging::effective_name(attr, v.size)
}

pub fn run_on(
    cpus: &[usize],
    timeout_ms: u64,
    body: &(dyn Fn(usize) + Sync),
) -> Result<(), RunError> {
    smp::run_on(cpus, timeout_ms, body)
}

/// A canonical address no page table maps (PML4 entry 0xfd is empty): reading it raises #PF.
const UNMAPPED: u64 = 0x0000_7ead_0000_0000;

pub fn selftest_unguarded_fault() -> ! {
    selftest_fault_now();
    panic!("read of unmapped {UNMAPPED:#x} did not fault")
}

/// The faulting read of [`selftest_unguarded_fault`], also used inside the trap handler by
/// `selftest=nested-fault`.
pub fn selftest_fault_now() {
    let v: u64;
    // SAFETY: deliberately faults (not-present page) outside any guard: the exception handler
    // dumps the registers and ends the run; execution never comes back here.
    unsafe {
        core::arch::asm!("mov {v}, qword ptr [{a}]", a = in(reg) UNMAPPED, v = out(reg) v,
            options(nostack, readonly, preserves_flags));
    }
    // Not reached when the read faults (the handler ends the run); keep `v` observable.
    core::hint::black_box(v);
}

pub fn panic_registers() -> String {
    let (rsp, rbp): (u64, u64);
    // SAFETY: copies two registers.
    unsafe {
        core::arch::asm!("mov {0}, rsp", "mov {1}, rbp", out(reg) rsp, out(reg) rbp,
            options(nomem, nostack, preserves_flags));
    }
    let (cr3, _) = Cr3::read_raw();
    format!(
        "ring 0, RSP {rsp:#018x}, RBP {rbp:#018x}, RFLAGS {:#x}, CR0 {:#x}, CR3 {:#x}, CR4 {:#x}",
        x86_64::registers::rflags::read_raw(),
        Cr0::read_raw(),
        cr3.start_address().as_u64(),
        Cr4::read_raw()
    )
}

pub fn halt() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}
