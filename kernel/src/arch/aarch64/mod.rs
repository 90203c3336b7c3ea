//! aarch64 support (QEMU virt, Raspberry Pi 4): entry and EL handling (boot/aarch64/entry.S,
//! [`boot`]), exceptions and the fault guard ([`exceptions`]), secondary cores and the
//! cross-core engine ([`smp`]), counters, and the configuration (MMU, attributes, alignment
//! checking). See `arch/mod.rs` for the contract this module fulfils.

mod boot;
mod caches;
mod exceptions;
mod gic;
mod mmu;
// The full UART set-up is only needed on the real Raspberry Pi 4.
#[cfg_attr(not(feature = "board-rpi4"), allow(dead_code))]
pub mod pl011;
mod pmu;
mod psci;
pub mod semihosting;
mod smp;

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

use aarch64_cpu::asm::wfe;
use aarch64_cpu::registers::{
    ReadWriteable, Readable, CNTFRQ_EL0, CNTVCT_EL0, ID_AA64MMFR0_EL1, MIDR_EL1, MPIDR_EL1,
    SCTLR_EL1, TPIDR_EL1,
};
use probes::attr::{Arch, MemAttr};
use probes::config::Config;
use probes::fault::RawFault;
use probes::mapping::{Granule, MapSize, Share, Variant};
use probes::mmu::aarch64::Shareability;
use probes::platform::{Arena, Privilege, RuleEnv};
use probes::record::{Cpu, ErrorRec};

#[cfg_attr(not(feature = "board-rpi4"), allow(unused_imports))]
pub use boot::EnableMethod;
pub use boot::{facts, CpuDesc};
#[cfg(feature = "board-uefi")]
pub use boot::{BootFacts, Conduit, FACTS};
pub use smp::{online_cpus, run_on, start_cpus};

/// Most cores the image brings up (stacks and guard slots are per core).
pub const MAX_CORES: usize = 8;
/// The same bound under the name generic code uses (`crate::sync` sizes its lock slots by it).
pub const MAX_CPUS: usize = MAX_CORES;
/// Stack size per core.
pub const STACK_SIZE: usize = 64 * 1024;

/// Logical index of the calling core (kept in TPIDR_EL1 by the entry code).
pub fn core_index() -> usize {
    (TPIDR_EL1.get() as usize).min(MAX_CORES - 1)
}

/// MPIDR_EL1 affinity fields (Aff3..Aff0), as the `hwid` of a `cpu` record.
pub fn mpidr() -> u64 {
    MPIDR_EL1.get() & 0xff_00ff_ffff
}

pub fn mpidr_string() -> String {
    format!("MPIDR {:#x}", mpidr())
}

pub fn privilege() -> Privilege {
    Privilege::El(1)
}

pub fn cpu_id() -> String {
    format!("{:#010x}", MIDR_EL1.get())
}

/// Effective run settings every core applies (set by [`apply_config`] on core 0).
#[derive(Clone, Copy, Debug)]
pub struct Effective {
    pub mmu: bool,
    pub align_check: bool,
}

static EFFECTIVE: crate::sync::Once<Effective> = crate::sync::Once::new();

pub fn effective() -> Effective {
    EFFECTIVE.get().copied().unwrap_or(Effective {
        mmu: false,
        align_check: false,
    })
}

/// Make the configuration effective on the boot core: MMU and attributes, alignment checking,
/// counters. Secondary cores adopt the same state when they start (see `smp`).
pub fn apply_config(cfg: &mut Config, errors: &mut Vec<ErrorRec>) {
    let mut err = |message: String| {
        errors.push(ErrorRec {
            what: "bootarg".into(),
            message,
        })
    };
    // granule=: a granule this CPU does not implement is dropped from the list, said once;
    // with none left the default (4k) runs (docs/probes.md "Translation granule").
    if !cfg.granule.is_empty() {
        let mmfr0 = ID_AA64MMFR0_EL1.get();
        let (ok, missing): (Vec<String>, Vec<String>) = cfg
            .granule
            .iter()
            .cloned()
            .partition(|g| Granule::from_name(g).is_some_and(|g| g.implemented(mmfr0)));
        if !missing.is_empty() {
            err(format!(
                "granule={}: not implemented by this CPU (ID_AA64MMFR0_EL1 = {mmfr0:#x}, \
                 TGran4/TGran16/TGran64 implement {}); {}",
                missing.join(","),
                Granule::implemented_names(mmfr0),
                if ok.is_empty() {
                    "running the default granule=4k".to_string()
                } else {
                    format!("running granule={} only", ok.join(","))
                }
            ));
            cfg.granule = ok;
        }
    }
    if cfg.mmu {
        match enable_mmu() {
            Ok(()) => {}
            Err(e) => {
                err(format!(
                    "mmu=on failed ({e}); running with mmu=off, where every data access is \
                     Device-nGnRnE"
                ));
                cfg.mmu = false;
            }
        }
    }
    if !cfg.mmu {
        let defaults: Vec<String> = probes::config::default_attrs(Arch::Aarch64)
            .iter()
            .map(|a| a.name().to_string())
            .collect();
        let others: Vec<&str> = cfg
            .attrs
            .iter()
            .filter(|a| a.as_str() != MemAttr::DeviceNGnRnE.name())
            .map(String::as_str)
            .collect();
        if !others.is_empty() && cfg.attrs != defaults {
            err(format!(
                "attrs: {} cannot apply with the MMU off: every data access is Device-nGnRnE \
                 (Arm ARM D8.2.11); running attrs=device-ngnrne only",
                others.join(", ")
            ));
        }
        cfg.attrs = alloc::vec![MemAttr::DeviceNGnRnE.name().to_string()];
    }
    EFFECTIVE.call_once(|| Effective {
        mmu: cfg.mmu,
        align_check: cfg.align_check,
    });
    apply_on_this_core();
}

/// The MMU registers every core loads (set once core 0 has built the tables).
static MMU_REGS: crate::sync::Once<mmu::Regs> = crate::sync::Once::new();

fn enable_mmu() -> Result<(), String> {
    let f = facts();
    let root = mmu::build(&f.memory, ARENA.0.get() as u64, (ARENA_PAGES * PAGE) as u64)?;
    mmu::build_granules(ARENA.0.get() as u64)?;
    let regs = mmu::regs(root)?;
    mmu::enable(&regs);
    MMU_REGS.call_once(|| regs);
    Ok(())
}

/// Per-core part of the configuration: SCTLR_EL1.A and the cycle counter. Every core calls it
/// (secondaries arrive with translation already on, see `smp`).
pub fn apply_on_this_core() {
    let e = effective();
    if e.align_check {
        SCTLR_EL1.modify(SCTLR_EL1::A::Enable);
    } else {
        SCTLR_EL1.modify(SCTLR_EL1::A::Disable);
    }
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    // granule=: a core powered on through PSCI for a job (smp: idle cores power off) starts
    // from `MMU_REGS` (TTBR1 walks off): give it the TTBR1 aliases the others use.
    let g = current_granule();
    if e.mmu && g != Granule::K4 {
        mmu::use_granule(g);
    }
    let pmu = pmu::enable();
    PMU_OK[core_index()].store(pmu, Ordering::Relaxed);
}

static PMU_OK: [AtomicBool; MAX_CORES] = [const { AtomicBool::new(false) }; MAX_CORES];

pub fn platform_facts() -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    if effective().mmu {
        // Every alias (attribute × shareability × leaf size) confirmed by walking the tables.
        let pa = ARENA.0.get() as u64;
        m.insert("arena_aliases".to_string(), mmu::confirm_aliases(pa));
        // granule=: the TTBR1 aliases of each implemented 16/64 KiB granule, walked the same way.
        for g in [Granule::K16, Granule::K64] {
            let c = mmu::confirm_granule_aliases(g, pa);
            if !c.is_empty() {
                m.insert(format!("arena_aliases_granule_{}", g.name()), c);
            }
        }
        for size in [MapSize::Block2m, MapSize::Block1g] {
            let (base, len) = mmu::alias_span(size, pa);
            m.insert(
                format!("arena_{}_block", size.name()),
                format!(
                    "{base:#x}+{len:#x} (the aligned block holding the arena; probes touch only \
                     the arena's pages)"
                ),
            );
        }
    }
    m.insert(
        "arena_pa".to_string(),
        format!("{:#x}+{:#x}", ARENA.0.get() as usize, ARENA_PAGES * PAGE),
    );
    if let Some(r) = MMU_REGS.get() {
        // The translation tables are a static pool in the image's .bss (mmu.rs): the root must
        // lie inside the image, which `boot` checked against RAM, the DTB and reserved memory.
        let inside = boot::image_range().contains(&probes::memmap::Range::at(r.ttbr0, 4096));
        m.insert(
            "page_tables".to_string(),
            format!(
                "root {:#x} ({})",
                r.ttbr0,
                if inside {
                    "inside the image's .bss"
                } else {
                    "OUTSIDE the image: not checked against reserved memory"
                }
            ),
        );
    }
    m.insert("dcache_line".to_string(), format!("{}", mmu::dline()));
    m.insert("mpidr".to_string(), format!("{:#x}", mpidr()));
    m.insert(
        "guarded_instructions".to_string(),
        format!("{}", probes::guard::guarded_instructions()),
    );
    m
}

/// CNTVCT_EL0 at the time origin: 0 (the counter's start, i.e. power-on, where the kernel is
/// the first thing that runs), or the kernel's entry on boards entered after firmware
/// ([`set_time_origin`]).
static TIME_ORIGIN: AtomicU64 = AtomicU64::new(0);

/// Count time from now on (boot core, before any other core runs): the UEFI board, whose
/// firmware ran for seconds before the kernel.
#[cfg_attr(not(feature = "board-uefi"), allow(dead_code))]
pub fn set_time_origin() {
    TIME_ORIGIN.store(CNTVCT_EL0.get(), Ordering::Relaxed);
}

/// Nanoseconds since the time origin (CNTVCT_EL0 scaled by CNTFRQ_EL0).
pub fn now_ns() -> u64 {
    let freq = CNTFRQ_EL0.get().max(1);
    let t = CNTVCT_EL0
        .get()
        .saturating_sub(TIME_ORIGIN.load(Ordering::Relaxed));
    ((u128::from(t) * 1_000_000_000) / u128::from(freq)) as u64
}

/// PMCCNTR_EL0 where this core has a usable PMU cycle counter.
pub fn cycles() -> Option<u64> {
    PMU_OK[core_index()].load(Ordering::Relaxed).then(pmu::read)
}

pub fn rule_env(_cfg: &Config) -> RuleEnv {
    let e = effective();
    RuleEnv {
        arch: Arch::Aarch64,
        privilege: privilege(),
        mmu_on: e.mmu,
        align_check: e.align_check,
        line: 64,
        page: 4096,
        map: probes::mapping::Variant::DEFAULT,
    }
}

/// Pages in the probe arena.
pub const ARENA_PAGES: usize = 4;
pub const PAGE: usize = 4096;

/// 16 KiB-aligned: the arena never crosses a 2 MiB boundary, so one 2 MiB block holds it.
#[repr(C, align(16384))]
struct ArenaPages([u8; ARENA_PAGES * PAGE]);

struct ArenaCell(core::cell::UnsafeCell<ArenaPages>);
// SAFETY: the arena is only ever reached through raw pointers handed to probes, which use asm
// or atomic accesses on it by design (see `probes::platform::Arena`).
unsafe impl Sync for ArenaCell {}

static ARENA: ArenaCell = ArenaCell(core::cell::UnsafeCell::new(ArenaPages(
    [0; ARENA_PAGES * PAGE],
)));

/// Physical address and length of the probe arena (inside the image's .bss).
pub fn arena_range() -> (u64, u64) {
    (ARENA.0.get() as u64, (ARENA_PAGES * PAGE) as u64)
}

/// The probe arena for `attr` with the default mapping (4 KiB pages, Inner Shareable).
pub fn arena(attr: MemAttr) -> Result<Arena, String> {
    arena_mapped(attr, &Variant::DEFAULT)
}

/// The probe arena for `attr` mapped as `v` says. With the MMU off there is only the identity
/// view (Device-nGnRnE). With the MMU on it is the alias of the same physical pages with that
/// attribute, shareability and leaf size; before handing it out the pages are cleaned and
/// invalidated to the point of coherency through the cacheable identity mapping, so no dirty or
/// stale line from an earlier alias with other attributes is left (Arm ARM B2.12 "Mismatched
/// memory attributes": software must clean/invalidate when switching between aliases of
/// different cacheability).
pub fn arena_mapped(attr: MemAttr, v: &Variant) -> Result<Arena, String> {
    let pa = ARENA.0.get() as usize;
    let len = ARENA_PAGES * PAGE;
    if !effective().mmu {
        if attr != MemAttr::DeviceNGnRnE {
            return Err(format!(
                "{attr} is not available: the MMU is off, so every access is Device-nGnRnE"
            ));
        }
        if !v.is_default() {
            return Err(format!(
                "{} is not available: the MMU is off (no translation tables)",
                v.label()
            ));
        }
        return Ok(Arena {
            base: pa as *mut u8,
            len,
            attr,
        });
    }
    if v.caches != caches::on() {
        return Err(format!(
            "caches={} is not in effect",
            if v.caches { "on" } else { "off" }
        ));
    }
    let sh = match v.share {
        Share::Inner => Shareability::Inner,
        Share::Outer => Shareability::Outer,
        Share::Non => Shareability::Non,
    };
    let va = if v.granule == Granule::K4 {
        mmu::alias_for(attr, sh, v.size, pa as u64)
    } else {
        if v.granule != current_granule() || v.size != MapSize::Page4k {
            return Err(format!("{} is not in effect", v.label()));
        }
        mmu::granule_alias_for(attr, sh, pa as u64)
    }
    .ok_or_else(|| format!("{attr} is not an aarch64 memory attribute"))?;
    mmu::dc_range(pa, len, mmu::Dc::Civac);
    Ok(Arena {
        base: va as *mut u8,
        len,
        attr,
    })
}

/// The 2 MiB window around the arena through `attr`'s alias under `v` (every alias maps at least
/// the 2 MiB block holding the arena, `mmu::alias_span`); read-only use.
pub fn arena_window(attr: MemAttr, v: &Variant) -> Result<(*const u8, usize), String> {
    let a = arena_mapped(attr, v)?;
    if !effective().mmu {
        return Err("mmu=off: no alias window".into());
    }
    let pa = ARENA.0.get() as usize;
    let off = pa % mmu::WINDOW as usize;
    Ok(((a.base as usize - off) as *const u8, mmu::WINDOW as usize))
}

/// The `granule=` whose aliases TTBR1_EL1 holds on every core (index in `Granule::ALL`).
static GRANULE: AtomicU8 = AtomicU8::new(0);

fn current_granule() -> Granule {
    Granule::ALL[GRANULE.load(Ordering::Acquire) as usize]
}

/// Make `g`'s TTBR1 aliases effective on every online core (`mmu::use_granule`).
fn set_granule(g: Granule) -> Result<(), String> {
    if g == current_granule() {
        return Ok(());
    }
    if !mmu::granule_implemented(g) {
        return Err(format!(
            "granule={} is not implemented by this CPU (it implements {})",
            g.name(),
            Granule::implemented_names(ID_AA64MMFR0_EL1.get())
        ));
    }
    let bad = AtomicBool::new(false);
    let cpus: Vec<usize> = (0..online_cpus()).collect();
    let body = |_role: usize| {
        if !mmu::use_granule(g) {
            bad.store(true, Ordering::Relaxed);
        }
    };
    smp::run_on(&cpus, 30_000, &body)
        .map_err(|e| format!("granule={}: not every core switched: {e:?}", g.name()))?;
    let i = Granule::ALL.iter().position(|&x| x == g).unwrap_or(0);
    GRANULE.store(i as u8, Ordering::Release);
    if bad.load(Ordering::Relaxed) {
        return Err(format!(
            "granule={}: TCR_EL1 did not read back the TTBR1 fields written",
            g.name()
        ));
    }
    Ok(())
}

/// Make `v`'s system-wide part effective: the caches (SCTLR_EL1.C/I on every core) and the
/// granule (TTBR1_EL1 + TCR_EL1.TG1 on every core) are system-wide on aarch64; the leaf size and
/// shareability are the alias chosen.
pub fn set_variant(v: &Variant) -> Result<(), String> {
    if v.mtrr.is_some() {
        return Err("mtrr= is x86 only".into());
    }
    if !effective().mmu {
        return if v.is_default() {
            Ok(())
        } else {
            Err(format!("{}: the MMU is off (mmu=off)", v.label()))
        };
    }
    if v.granule != Granule::K4 && v.size != MapSize::Page4k {
        return Err(format!(
            "mapping={} with granule={}: only mapping=4k (pages of the granule) is accepted",
            v.size.name(),
            v.granule.name()
        ));
    }
    set_granule(v.granule)?;
    caches::set(v.caches, online_cpus())
}

pub fn guarded(op: &mut dyn FnMut()) -> Option<RawFault> {
    exceptions::guarded(op)
}

/// A Load-Exclusive at a misaligned address outside any guard: an alignment fault under every
/// memory attribute and with the MMU on or off (Arm ARM B2.5.2), hence a dump and an abort.
pub fn selftest_unguarded_fault() -> ! {
    selftest_fault_now();
    panic!("selftest=fault: a misaligned LDXR did not fault")
}

/// The misaligned LDXR of [`selftest_unguarded_fault`], also used inside the exception handler
/// by `selftest=nested-fault`.
pub fn selftest_fault_now() {
    let buf = [0u64; 2];
    let addr = buf.as_ptr() as usize + 1;
    let v: u64;
    // SAFETY: deliberately faults (misaligned LDXR); the exception handler ends the run, so
    // nothing after the LDXR executes. `addr` points into `buf`, which outlives the asm.
    unsafe {
        asm!("ldxr {v}, [{a}]", "clrex", v = out(reg) v, a = in(reg) addr, options(nostack, readonly));
    }
    // Not reached when the LDXR faults (the handler ends the run); keep `v` observable.
    core::hint::black_box(v);
}

pub fn panic_registers() -> String {
    let (sp, lr): (u64, u64);
    // SAFETY: reads SP and LR into registers; no memory access.
    unsafe {
        asm!("mov {0}, sp", "mov {1}, x30", out(reg) sp, out(reg) lr, options(nomem, nostack))
    };
    format!(
        "SP {sp:#x}  LR {lr:#x}  EL1  {}  SCTLR_EL1 {:#x}",
        mpidr_string(),
        SCTLR_EL1.get()
    )
}

/// Whether semihosting answered at boot (false before the boot facts exist).
pub fn facts_semihosting() -> bool {
    boot::FACTS.get().is_some_and(|f| f.semihosting)
}

/// PSCI SYSTEM_OFF through the DTB's conduit, if there is PSCI.
pub fn psci_system_off() {
    if let Some(c) = boot::FACTS.get().and_then(|f| f.psci) {
        psci::call(c, psci::SYSTEM_OFF, 0, 0, 0);
    }
}

pub fn halt() -> ! {
    loop {
        wfe();
    }
}

fn cpu_record(index: usize, hwid: u64, online: bool, error: Option<String>) -> Cpu {
    Cpu {
        index: index as u32,
        hwid: format!("{hwid:#x}"),
        online,
        error,
        el: online.then_some(1),
        cycle_counter: online.then(|| PMU_OK[index.min(MAX_CORES - 1)].load(Ordering::Relaxed)),
    }
}

/// No second source of memory types on aarch64: the descriptor's AttrIndx is the type.
pub fn effective_type(_attr: MemAttr, _v: &Variant) -> Option<String> {
    None
}
