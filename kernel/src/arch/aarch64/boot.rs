//! From the entry assembly to `kmain`: the per-core stacks, the secondary boot block, reading
//! the device tree, console and heap.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::arch::global_asm;
use core::cell::UnsafeCell;

use aarch64_cpu::registers::{Readable, CNTFRQ_EL0};
use dtoolkit::fdt::Fdt;
use probes::dtb;
use probes::memmap::{self, Range, RangeList, Used};

use super::{exceptions, semihosting, MAX_CORES, STACK_SIZE};
use crate::board;
use crate::sync::Once;

/// The per-core stacks (core i uses the i-th; each grows down from its end). An `UnsafeCell`
/// so the array lands in `.bss` (writable, zeroed by entry.S) rather than `.rodata`: an
/// immutable zero-filled static is placed among the read-only data right after `.text`, where a
/// stack that overflowed ran down over the code (issue 11).
#[repr(C, align(16))]
pub struct Stacks(UnsafeCell<[[u8; STACK_SIZE]; MAX_CORES]>);

// SAFETY: only the entry code and each core's own stack pointer ever reach a stack; Rust code
// only takes addresses (`top`, `range`), never references into the array.
unsafe impl Sync for Stacks {}

impl Stacks {
    /// Address just past core `i`'s stack (its initial stack pointer).
    pub fn top(&self, i: usize) -> u64 {
        self.0.get() as u64 + ((i + 1) * STACK_SIZE) as u64
    }

    /// Physical range of every stack.
    pub fn range(&self) -> Range {
        Range::at(self.0.get() as u64, (STACK_SIZE * MAX_CORES) as u64)
    }
}

pub static STACKS: Stacks = Stacks(UnsafeCell::new([[0; STACK_SIZE]; MAX_CORES]));

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
    early_uart = const board::EARLY_UART,
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
    // Linker-script symbols (boot/aarch64/image.ld); only their addresses are used.
    static __image_start: u8;
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

const HEAP_SIZE: u64 = 16 << 20;
const HEAP_ALIGN: u64 = 64 << 10;
/// A DTB larger than this is not believed (the Pi 4's is about 55 KiB, QEMU virt's 1 MiB).
const MAX_DTB: usize = 4 << 20;

/// The image at its link address, .bss included (linker-script symbols).
pub fn image_range() -> Range {
    Range {
        start: &raw const __image_start as u64,
        end: &raw const __image_end as u64,
    }
}

/// Why the blob at x0 was not used (printed once the console is up; no allocation yet).
enum DtbRejected {
    Misaligned,
    NoMagic(u32),
    Size(usize),
    Parse,
}

/// The DTB at the address x0 gave, if there is a usable one.
fn read_dtb(addr: usize) -> Result<Option<(Fdt<'static>, Range)>, DtbRejected> {
    // The arm64 boot protocol passes 0 when there is no DTB; QEMU raspi4b passes 0x100.
    if addr == 0 || addr == 0x100 {
        return Ok(None);
    }
    if !addr.is_multiple_of(8) {
        return Err(DtbRejected::Misaligned);
    }
    // SAFETY: `addr` is the boot protocol's DTB pointer (x0), 8-byte aligned, in RAM that
    // nothing has written since the loader (the loader keeps the image's image_size clear, and
    // entry.S checked that moving the image did not cover it). Two header words (magic,
    // totalsize) are read before anything else.
    let (magic, total) = unsafe {
        let p = addr as *const u32;
        (
            u32::from_be(p.read_volatile()),
            u32::from_be(p.add(1).read_volatile()) as usize,
        )
    };
    if magic != 0xd00d_feed {
        return Err(DtbRejected::NoMagic(magic));
    }
    if !(40..=MAX_DTB).contains(&total) {
        return Err(DtbRejected::Size(total));
    }
    // SAFETY: as above; `total` bytes from `addr` are the blob the loader placed, which stays
    // untouched for the whole run (the heap and every other region avoid it: `memmap::check`).
    let blob: &'static [u8] = unsafe { core::slice::from_raw_parts(addr as *const u8, total) };
    // dtoolkit validates the header and walks FDT_NOP tokens, which loaders that edit the tree
    // with libfdt (QEMU, the Pi firmware) leave behind; fdt 0.1.5 panicked on them (issue 11).
    let fdt = Fdt::new(blob).map_err(|_| DtbRejected::Parse)?;
    Ok(Some((fdt, Range::at(addr as u64, total as u64))))
}

/// The cores (after the heap exists), from the DTB's `/cpus`.
fn dtb_cpus(f: Fdt<'static>) -> Vec<CpuDesc> {
    dtb::cpus(f)
        .map(|c| CpuDesc {
            mpidr: c.id,
            method: match c.enable_method {
                Some("psci") => EnableMethod::Psci,
                Some("spin-table") => match c.release_addr {
                    Some(a) => EnableMethod::SpinTable(a),
                    None => EnableMethod::Other("spin-table without cpu-release-addr".into()),
                },
                Some(other) => EnableMethod::Other(other.to_string()),
                // No enable-method: the boot core (or a single-core system).
                None => EnableMethod::Other("none".into()),
            },
        })
        .collect()
}

/// Boot messages before the heap exists: no allocation, no lock ([`crate::fatal::Raw`]).
use crate::fatal::Raw as EarlyConsole;

/// Rust entry on the boot core: EL1, FP on, BSS zeroed, stack and vectors set, MMU off, running
/// at the link address (entry.S moved the image there when the loader put it at `loaded_at`).
#[cfg_attr(feature = "board-uefi", allow(unreachable_code, unused_variables))]
extern "C" fn rust_primary(dtb_addr: usize, entry_el: u64, loaded_at: u64) -> ! {
    // Board uefi: x0 was the UEFI loader's handover block, not a DTB (hardware from ACPI).
    #[cfg(feature = "board-uefi")]
    board::uefi_primary(dtb_addr, entry_el);
    use core::fmt::Write;
    // The console first, at the board's known address, before anything that can fault: from
    // here on a fault is printed by the exception handler (issue 11).
    let early_uart = board::console_setup(None);

    let dtb = match read_dtb(dtb_addr) {
        Ok(d) => d,
        Err(why) => {
            let _ = write!(EarlyConsole, "atomprobe: ignoring x0 = {dtb_addr:#x}: ");
            let _ = match why {
                DtbRejected::Misaligned => write!(EarlyConsole, "a DTB must be 8-byte aligned"),
                DtbRejected::NoMagic(m) => write!(EarlyConsole, "no DTB magic (read {m:#010x})"),
                DtbRejected::Size(n) => write!(EarlyConsole, "DTB header claims {n} bytes"),
                DtbRejected::Parse => write!(EarlyConsole, "the DTB does not parse"),
            };
            let _ = writeln!(EarlyConsole, "; using the board's known layout");
            None
        }
    };
    let dtb_range = dtb.map(|(_, r)| r);
    let mem: dtb::DtbMemory<MAX_CORES> = dtb.map(|(f, _)| dtb::memory(f)).unwrap_or_default();
    // The DTB's UART where the board takes it (virt); the Pi's is fixed (board/rpi4).
    let uart = match mem.uart.map(|u| u as usize) {
        Some(u) if u != early_uart => board::console_setup(Some(u)),
        _ => early_uart,
    };

    let image = image_range();
    let from_dtb = !mem.banks.is_empty();
    let mut banks = mem.banks;
    if !from_dtb {
        for &(s, l) in board::FALLBACK_MEMORY {
            banks.push(Range::at(s as u64, l as u64));
        }
    }
    let mut reserved = mem.reserved;
    if dtb.is_none() {
        for &(s, l) in board::FIRMWARE_RESERVED {
            reserved.push(Range::at(s, l));
        }
    }
    let mut spin_slots = mem.spin_slots;
    if dtb.is_none() {
        for c in board::FALLBACK_SPIN_SLOTS {
            spin_slots.push(Range::at(*c, 8));
        }
    }

    let Some(bank) = memmap::kernel_bank(banks.as_slice(), image) else {
        let _ = writeln!(
            EarlyConsole,
            "atomprobe: no RAM bank ({}) holds the image at {image}; halting",
            if from_dtb {
                "from the DTB"
            } else {
                "board's known layout"
            }
        );
        super::halt();
    };
    let mut busy = RangeList::<64>::default();
    busy.push(image);
    if let Some(d) = dtb_range {
        busy.push(d);
    }
    for r in reserved.as_slice().iter().chain(spin_slots.as_slice()) {
        busy.push(*r);
    }
    let Some(heap_start) = memmap::place(bank, busy.as_slice(), HEAP_SIZE, HEAP_ALIGN, image.end)
    else {
        let _ = writeln!(
            EarlyConsole,
            "atomprobe: no room for the {HEAP_SIZE:#x}-byte heap in RAM bank {bank} clear of the \
             image {image}, the DTB and reserved memory; halting"
        );
        super::halt();
    };
    let heap = Range::at(heap_start, HEAP_SIZE);
    // SAFETY: `memmap::place` chose RAM in the kernel's bank overlapping neither the image (with
    // its .bss: stacks, page tables, arena), the DTB, reserved memory nor the spin-table slots;
    // it is identity-mapped for the whole run.
    unsafe { crate::heap::init(heap.start as usize, heap.len() as usize) };

    // From here on the heap works.
    let (cpus, psci, cmdline) = match dtb {
        Some((f, _)) => {
            let psci = dtb::psci_method(f).and_then(|m| match m {
                "hvc" => Some(Conduit::Hvc),
                "smc" => Some(Conduit::Smc),
                _ => None,
            });
            let args = dtb::bootargs(f).unwrap_or_default().to_string();
            (dtb_cpus(f), psci, args)
        }
        None => (Vec::new(), None, String::new()),
    };
    let cpus = if cpus.is_empty() {
        board::fallback_cpus()
    } else {
        cpus
    };

    let (arena_pa, arena_len) = super::arena_range();
    let mut used = alloc::vec![
        Used {
            name: "image",
            range: image
        },
        Used {
            name: "stacks",
            range: STACKS.range()
        },
        Used {
            name: "arena",
            range: Range::at(arena_pa, arena_len)
        },
        Used {
            name: "heap",
            range: heap
        },
    ];
    if let Some(r) = dtb_range {
        used.push(Used {
            name: "dtb",
            range: r,
        });
    }
    let mut all_reserved: Vec<Range> = reserved.as_slice().to_vec();
    all_reserved.extend_from_slice(spin_slots.as_slice());
    let mut conflicts = memmap::check(
        &used,
        bank,
        banks.as_slice(),
        &all_reserved,
        &[("stacks", "image"), ("arena", "image")],
    );
    for (what, n) in [
        ("memory banks", banks.dropped),
        ("reserved regions", reserved.dropped),
    ] {
        if n > 0 {
            conflicts.push(format!("{n} {what} beyond the first ones were not read"));
        }
    }
    for c in &conflicts {
        let _ = writeln!(EarlyConsole, "atomprobe: memory layout: {c}");
    }

    let semihosting = semihosting::available();
    board::identify(dtb.is_some(), semihosting);

    let list = |v: &[Range]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join(",")
        }
    };
    let mut platform = BTreeMap::new();
    platform.insert("entry_el".to_string(), format!("{entry_el}"));
    platform.insert(
        "dtb".to_string(),
        match dtb_range {
            Some(r) => r.to_string(),
            None => format!("none (x0 = {dtb_addr:#x})"),
        },
    );
    platform.insert("uart".to_string(), format!("pl011 at {uart:#x}"));
    platform.insert(
        "memory".to_string(),
        format!(
            "{} ({})",
            list(banks.as_slice()),
            if from_dtb { "dtb" } else { "board default" }
        ),
    );
    platform.insert("kernel_bank".to_string(), bank.to_string());
    platform.insert("reserved".to_string(), list(reserved.as_slice()));
    platform.insert("spin_table_slots".to_string(), list(spin_slots.as_slice()));
    platform.insert("image".to_string(), image.to_string());
    platform.insert("loaded_at".to_string(), format!("{loaded_at:#x}"));
    platform.insert("stacks".to_string(), STACKS.range().to_string());
    platform.insert("heap".to_string(), heap.to_string());
    platform.insert(
        "memory_check".to_string(),
        if conflicts.is_empty() {
            "ok (image, stacks, arena, heap, dtb: in RAM, clear of reserved memory and of each \
             other)"
                .to_string()
        } else {
            conflicts.join("; ")
        },
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

    FACTS.call_once(|| BootFacts {
        memory: banks
            .as_slice()
            .iter()
            .map(|r| (r.start as usize, r.len() as usize))
            .collect(),
        cpus,
        psci,
        semihosting,
    });

    crate::kmain(crate::BootInfo { cmdline, platform })
}
