//! From the entry assembly to `kmain`: the per-core stacks, the secondary boot block, reading
//! the device tree, console and heap.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::arch::global_asm;
use core::cell::UnsafeCell;

use aarch64_cpu::registers::{Readable, CNTFRQ_EL0};

use super::{exceptions, semihosting, MAX_CORES, STACK_SIZE};
use crate::board;
use crate::sync::Once;

/// The per-core stacks (core i uses `STACKS[i]`; the stack grows down from its end).
#[repr(C, align(16))]
pub struct Stacks(pub [[u8; STACK_SIZE]; MAX_CORES]);

// SAFETY: only the entry code and each core's own stack pointer ever reach a stack; Rust code
// never forms a reference into this array.
unsafe impl Sync for Stacks {}

pub static STACKS: Stacks = Stacks([[0; STACK_SIZE]; MAX_CORES]);

/// What a secondary core adopts before running any Rust (layout fixed by entry.S).
#[repr(C, align(64))]
#[derive(Clone, Copy)]
pub struct BootBlock {
    /// 0 = block unused.
    pub stack_top: u64,
    pub index: u64,
    pub mmu_on: u64,
    pub mair: u64,
    pub tcr: u64,
    pub ttbr0: u64,
    pub sctlr: u64,
    /// MPIDR_EL1 affinity fields (Aff3..Aff0) of the core this block is for.
    pub mpidr: u64,
}

const _: () = assert!(core::mem::size_of::<BootBlock>() == 64);

pub struct BootBlocks(pub UnsafeCell<[BootBlock; MAX_CORES]>);
// SAFETY: written only by core 0 before it releases any secondary, read (with the MMU off) by
// the secondaries after core 0 cleaned the blocks to the point of coherency.
unsafe impl Sync for BootBlocks {}

pub static BOOT_BLOCKS: BootBlocks = BootBlocks(UnsafeCell::new(
    [BootBlock {
        stack_top: 0,
        index: 0,
        mmu_on: 0,
        mair: 0,
        tcr: 0,
        ttbr0: 0,
        sctlr: 0,
        mpidr: 0,
    }; MAX_CORES],
));

global_asm!(
    include_str!("../../../../boot/aarch64/entry.S"),
    stacks = sym STACKS,
    stack_size = const STACK_SIZE,
    boot_blocks = sym BOOT_BLOCKS,
    block_size = const core::mem::size_of::<BootBlock>(),
    max_cores = const MAX_CORES,
    rust_primary = sym rust_primary,
    rust_secondary = sym super::smp::rust_secondary,
    handler = sym exceptions::handle,
    frame_size = const exceptions::FRAME_SIZE,
);

extern "C" {
    static __image_end: u8;
    /// Entry point for secondary cores (entry.S).
    pub fn atomprobe_secondary_entry();
}

/// How a secondary core is started (DTB `enable-method`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnableMethod {
    Psci,
    /// Spin table: write the entry address to this physical address, `dsb sy; sev`.
    SpinTable(u64),
    Other(String),
}

#[derive(Clone, Debug)]
pub struct CpuDesc {
    pub mpidr: u64,
    pub method: EnableMethod,
}

/// PSCI conduit (DTB `/psci` `method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conduit {
    Hvc,
    Smc,
}

/// What boot found out, for the rest of the arch code.
pub struct BootFacts {
    pub memory: Vec<(usize, usize)>,
    pub cpus: Vec<CpuDesc>,
    pub psci: Option<Conduit>,
    pub semihosting: bool,
}

pub static FACTS: Once<BootFacts> = Once::new();

pub fn facts() -> &'static BootFacts {
    FACTS.get().expect("boot facts are set before kmain")
}

const MAX_REGIONS: usize = 8;
const HEAP_SIZE: usize = 16 << 20;

fn read_dtb(addr: usize) -> Option<fdt::Fdt<'static>> {
    if addr == 0 || !addr.is_multiple_of(8) {
        return None;
    }
    // SAFETY: the magic is checked before anything else is read; `addr` is the boot protocol's
    // DTB pointer (x0), 8-byte aligned and in RAM that nothing overwrites (the heap avoids it).
    let magic = unsafe { (addr as *const u32).read_volatile() };
    if u32::from_be(magic) != 0xd00d_feed {
        return None;
    }
    // SAFETY: as above; `from_ptr` validates the header and the DTB stays for the whole run.
    unsafe { fdt::Fdt::from_ptr(addr as *const u8) }.ok()
}

/// Rust entry on the boot core: EL1, FP on, BSS zeroed, stack and vectors set, MMU off.
#[cfg_attr(feature = "board-uefi", allow(unreachable_code))]
extern "C" fn rust_primary(dtb_addr: usize, entry_el: u64) -> ! {
    // Board uefi: x0 was the UEFI loader's handover block, not a DTB (hardware from ACPI).
    #[cfg(feature = "board-uefi")]
    board::uefi_primary(dtb_addr, entry_el);
    let dtb = read_dtb(dtb_addr);

    // Console first: the DTB's stdout-path (or first PL011), else the board's known address.
    let uart = dtb
        .as_ref()
        .and_then(|f| {
            let chosen = f.find_node("/chosen")?;
            let path = chosen.property("stdout-path")?.as_str()?;
            let path = path.split(':').next().unwrap_or(path);
            f.find_node(path)
        })
        .or_else(|| dtb.as_ref()?.find_compatible(&["arm,pl011"]))
        .and_then(|n| n.reg()?.next())
        .map(|r| r.starting_address as usize);
    let uart = board::console_setup(uart);

    // Memory: DTB `device_type = "memory"` nodes, else the board's known layout.
    let mut regions = [(0usize, 0usize); MAX_REGIONS];
    let mut nreg = 0;
    if let Some(f) = dtb.as_ref() {
        for node in f.all_nodes() {
            let is_mem = node
                .property("device_type")
                .and_then(|p| p.as_str())
                .is_some_and(|s| s == "memory");
            if !is_mem {
                continue;
            }
            for r in node.reg().into_iter().flatten() {
                if let (Some(size), true) = (r.size, nreg < MAX_REGIONS) {
                    if size > 0 {
                        regions[nreg] = (r.starting_address as usize, size);
                        nreg += 1;
                    }
                }
            }
        }
    }
    if nreg == 0 {
        for &r in board::FALLBACK_MEMORY {
            if nreg < MAX_REGIONS {
                regions[nreg] = r;
                nreg += 1;
            }
        }
    }

    // Heap: 16 MiB of RAM after the image, clear of the DTB.
    // Linker-defined symbols; only their addresses are taken.
    let img_end = &raw const __image_end as usize;
    let dtb_range = dtb.as_ref().map(|f| (dtb_addr, dtb_addr + f.total_size()));
    let heap = place_heap(&regions[..nreg], img_end, dtb_range);
    let Some(heap_start) = heap else {
        board::console_write(b"atomprobe: no RAM for the heap after the image; halting\r\n");
        super::halt();
    };
    // SAFETY: `place_heap` chose RAM past the image's end (.bss included) that overlaps neither
    // the DTB nor anything else in use; it is identity-mapped for the whole run.
    unsafe { crate::heap::init(heap_start, HEAP_SIZE) };

    // From here on the heap works.
    let mut cpus = Vec::new();
    let mut psci = None;
    let mut cmdline = String::new();
    if let Some(f) = dtb.as_ref() {
        psci = f
            .find_node("/psci")
            .and_then(|n| n.property("method"))
            .and_then(|p| p.as_str())
            .and_then(|m| match m {
                "hvc" => Some(Conduit::Hvc),
                "smc" => Some(Conduit::Smc),
                _ => None,
            });
        if f.find_node("/cpus").is_some() {
            for c in f.cpus() {
                let Some(reg) = c.property("reg").and_then(|p| p.as_usize()) else {
                    continue;
                };
                let method = match c.property("enable-method").and_then(|p| p.as_str()) {
                    Some("psci") => EnableMethod::Psci,
                    Some("spin-table") => match c
                        .property("cpu-release-addr")
                        .and_then(|p| p.as_usize())
                    {
                        Some(a) => EnableMethod::SpinTable(a as u64),
                        None => EnableMethod::Other("spin-table without cpu-release-addr".into()),
                    },
                    Some(other) => EnableMethod::Other(other.to_string()),
                    // No enable-method: the boot core (or a single-core system).
                    None => EnableMethod::Other("none".into()),
                };
                cpus.push(CpuDesc {
                    mpidr: reg as u64,
                    method,
                });
            }
        }
        // fdt 0.1.5's path lookup can miss `/chosen` when it follows a node whose `reg` the
        // loader rewrote (seen with QEMU raspi4b -dtb); fall back to a scan of every node.
        let chosen = f.find_node("/chosen").or_else(|| {
            f.all_nodes()
                .find(|n| n.name == "chosen" || n.name.starts_with("chosen@"))
        });
        if let Some(args) = chosen
            .and_then(|n| n.property("bootargs"))
            .and_then(|p| p.as_str())
        {
            cmdline = args.trim().to_string();
        }
    }
    if cpus.is_empty() {
        cpus = board::fallback_cpus();
    }

    let semihosting = semihosting::available();
    board::identify(dtb.is_some(), semihosting);

    let mut platform = BTreeMap::new();
    platform.insert("entry_el".to_string(), format!("{entry_el}"));
    platform.insert(
        "dtb".to_string(),
        match dtb_range {
            Some((a, _)) => format!("{a:#x}"),
            None => format!("none (x0 = {dtb_addr:#x})"),
        },
    );
    platform.insert("uart".to_string(), format!("pl011 at {uart:#x}"));
    platform.insert(
        "memory".to_string(),
        regions[..nreg]
            .iter()
            .map(|(a, s)| format!("{a:#x}+{:#x}", s))
            .collect::<Vec<_>>()
            .join(","),
    );
    platform.insert(
        "psci".to_string(),
        match psci {
            Some(Conduit::Hvc) => "hvc".into(),
            Some(Conduit::Smc) => "smc".into(),
            None => "none".into(),
        },
    );
    platform.insert("cntfrq_hz".to_string(), format!("{}", CNTFRQ_EL0.get()));
    platform.insert("semihosting".to_string(), semihosting.to_string());
    platform.insert(
        "heap".to_string(),
        format!("{heap_start:#x}+{HEAP_SIZE:#x}"),
    );

    FACTS.call_once(|| BootFacts {
        memory: regions[..nreg].to_vec(),
        cpus,
        psci,
        semihosting,
    });

    crate::kmain(crate::BootInfo { cmdline, platform })
}

/// The first 64 KiB-aligned address after the image where `HEAP_SIZE` bytes of RAM are free of
/// the DTB.
fn place_heap(
    regions: &[(usize, usize)],
    img_end: usize,
    dtb: Option<(usize, usize)>,
) -> Option<usize> {
    let align = |a: usize| (a + 0xffff) & !0xffff;
    let region = regions
        .iter()
        .find(|(s, l)| img_end > *s && img_end <= s + l)?;
    let region_end = region.0 + region.1;
    let mut start = align(img_end);
    if let Some((ds, de)) = dtb {
        if start < de && ds < start + HEAP_SIZE {
            start = align(de);
        }
    }
    (start + HEAP_SIZE <= region_end).then_some(start)
}
