//! The loader proper (UEFI targets only).

extern crate alloc;

use alloc::format;
use alloc::string::String;
use core::ptr::NonNull;

use handover::{CmdlineSource, Handover, Region, MAX_CMDLINE, MAX_REGIONS};
use uefi::boot::{self, AllocateType, MemoryType};
use uefi::mem::memory_map::MemoryMap;
use uefi::prelude::*;
use uefi::proto::loaded_image::LoadedImage;
use uefi::table::cfg::ConfigTableEntry;
use uefi::{cstr16, println};

/// The kernel ELF (board `uefi`), embedded at build time (see build.rs).
#[cfg(not(no_kernel))]
static KERNEL: &[u8] = include_bytes!(env!("ATOMPROBE_UEFI_KERNEL"));
#[cfg(no_kernel)]
static KERNEL: &[u8] = &[];

const PAGE: u64 = 4096;
/// Heap sizes tried in order (the kernel's other boards take at most 64 MiB too).
const HEAP_SIZES: [u64; 4] = [64 << 20, 32 << 20, 16 << 20, 8 << 20];
/// The kernel maps the first 4 GiB and treats 3-4 GiB as the MMIO hole (x86): heap and handover
/// must lie below 3 GiB there. On aarch64 the kernel maps what the memory map says is RAM.
#[cfg(target_arch = "x86_64")]
const MAX_KERNEL_DATA: u64 = (3 << 30) - 1;
#[cfg(target_arch = "aarch64")]
const MAX_KERNEL_DATA: u64 = u64::MAX;
/// The x86 AP trampoline's page (SIPI vector 0x08; `boot/x86_64/trampoline.S`).
#[cfg(target_arch = "x86_64")]
const TRAMPOLINE: u64 = 0x8000;

#[entry]
fn main() -> Status {
    println!("atomprobe UEFI loader ({})", env!("CARGO_PKG_VERSION"));
    if KERNEL.is_empty() {
        println!("atomprobe: this loader was built without a kernel (ATOMPROBE_UEFI_KERNEL unset)");
        return Status::LOAD_ERROR;
    }
    let pages = (core::mem::size_of::<Handover>() as u64).div_ceil(PAGE) as usize;
    let hp = match boot::allocate_pages(
        AllocateType::MaxAddress(MAX_KERNEL_DATA),
        MemoryType::LOADER_DATA,
        pages,
    ) {
        Ok(p) => p.cast::<Handover>(),
        Err(e) => {
            println!("atomprobe: cannot allocate the handover block: {e:?}");
            return Status::OUT_OF_RESOURCES;
        }
    };
    // SAFETY: freshly allocated pages, large enough and page-aligned for a Handover.
    unsafe { hp.as_ptr().write(Handover::new()) };
    // SAFETY: just initialised; nothing else refers to it.
    let h: &mut Handover = unsafe { &mut *hp.as_ptr() };

    read_cmdline(h);
    find_rsdp(h);
    find_framebuffer(h);
    #[cfg(target_arch = "aarch64")]
    arm_acpi::read(h);
    h.system_table = uefi::table::system_table_raw().map_or(0, |p| p.as_ptr() as u64);
    firmware_name(h);
    let entry = match load_kernel(h) {
        Ok(e) => e,
        Err(e) => {
            println!("atomprobe: cannot load the kernel: {e}");
            return Status::LOAD_ERROR;
        }
    };
    reserve_heap(h);
    #[cfg(target_arch = "x86_64")]
    reserve_trampoline(h);
    h.entry_el = current_el();

    println!(
        "atomprobe: kernel at {:#x}+{:#x}, heap {:#x}+{:#x}, boot arguments from {}; exiting boot services",
        h.image_base,
        h.image_len,
        h.heap_base,
        h.heap_len,
        CmdlineSource::from_u32(h.cmdline_source).name()
    );
    // SAFETY: no protocol or pool object is held past this point (the file system and loaded-
    // image protocols were closed when their scopes ended; `h` lives in our own pages).
    let map = unsafe { boot::exit_boot_services(None) };
    let mut n = 0;
    for d in map.entries() {
        if n == MAX_REGIONS {
            break;
        }
        h.regions[n] = Region {
            base: d.phys_start,
            pages: d.page_count,
            kind: d.ty.0,
            reserved: 0,
            attr: d.att.bits(),
        };
        n += 1;
    }
    h.nregions = n as u32;
    if map.len() > MAX_REGIONS {
        h.add_note(&[&format!(
            "uefi: the memory map has {} entries; the kernel is told about the first {MAX_REGIONS}",
            map.len()
        )]);
    }
    // The map's memory (EfiLoaderData) is left alone: the kernel only uses what it was given.
    core::mem::forget(map);
    // SAFETY: the kernel is loaded at its link addresses and `entry` is its UEFI entry point,
    // which takes the handover block's address as its only argument and never returns.
    unsafe { enter_kernel(entry, hp.as_ptr() as u64) }
}

/// Boot arguments: load options when they are text (UEFI shell, a boot entry made with
/// `efibootmgr -u`), else `\atomprobe\cmdline.txt` on the volume this loader came from.
fn read_cmdline(h: &mut Handover) {
    let mut buf = [0u8; MAX_CMDLINE];
    if let Ok(li) = boot::open_protocol_exclusive::<LoadedImage>(boot::image_handle()) {
        if let Some(bytes) = li.load_options_as_bytes() {
            let units: alloc::vec::Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            if let Some(n) = handover::cmdline_from_load_options(&units, &mut buf) {
                if n > 0 {
                    h.set_cmdline(&buf[..n], CmdlineSource::LoadOptions);
                    return;
                }
            }
        }
    }
    let path = cstr16!("\\atomprobe\\cmdline.txt");
    let fs = match boot::get_image_file_system(boot::image_handle()) {
        Ok(fs) => fs,
        Err(e) => {
            h.add_note(&[&format!(
                "uefi: cannot open the boot volume to read \\atomprobe\\cmdline.txt ({e:?}); using the defaults"
            )]);
            return;
        }
    };
    let mut fs = uefi::fs::FileSystem::new(fs);
    match fs.read(path) {
        Ok(bytes) => match handover::cmdline_from_file(&bytes, &mut buf) {
            Ok(n) => {
                h.set_cmdline(&buf[..n], CmdlineSource::File);
            }
            Err(why) => h.add_note(&[
                "uefi: \\atomprobe\\cmdline.txt is ",
                why,
                " (plain text of key=value words is accepted); using the defaults",
            ]),
        },
        Err(uefi::fs::Error::Io(e)) if e.uefi_error.status() == Status::NOT_FOUND => {}
        Err(e) => h.add_note(&[&format!(
            "uefi: cannot read \\atomprobe\\cmdline.txt ({e}); using the defaults"
        )]),
    }
}

fn find_rsdp(h: &mut Handover) {
    let (mut v2, mut v1) = (0, 0);
    uefi::system::with_config_table(|t| {
        for e in t {
            if e.guid == ConfigTableEntry::ACPI2_GUID {
                v2 = e.address as u64;
            } else if e.guid == ConfigTableEntry::ACPI_GUID {
                v1 = e.address as u64;
            }
        }
    });
    h.rsdp = if v2 != 0 { v2 } else { v1 };
    if h.rsdp == 0 {
        h.add_note(&["uefi: the firmware gives no ACPI RSDP (no ACPI configuration table)"]);
    }
}

/// The GOP framebuffer, for the kernel's facts and screen console. Opened with
/// GET_PROTOCOL, not exclusively: an exclusive open would disconnect the firmware's own text
/// console from the screen.
fn find_framebuffer(h: &mut Handover) {
    use uefi::boot::{OpenProtocolAttributes, OpenProtocolParams};
    use uefi::proto::console::gop::{GraphicsOutput, PixelFormat};
    let Ok(handle) = boot::get_handle_for_protocol::<GraphicsOutput>() else {
        return;
    };
    let params = OpenProtocolParams {
        handle,
        agent: boot::image_handle(),
        controller: None,
    };
    // SAFETY: GET_PROTOCOL only reads the interface; nothing else of ours uses the GOP, and the
    // scope ends before ExitBootServices.
    let Ok(mut gop) = (unsafe {
        boot::open_protocol::<GraphicsOutput>(params, OpenProtocolAttributes::GetProtocol)
    }) else {
        return;
    };
    let mode = gop.current_mode_info();
    let format = match mode.pixel_format() {
        PixelFormat::Rgb => handover::FB_RGB,
        PixelFormat::Bgr => handover::FB_BGR,
        PixelFormat::Bitmask => handover::FB_BITMASK,
        PixelFormat::BltOnly => handover::FB_BLT_ONLY,
    };
    let (width, height) = mode.resolution();
    // Blt-only modes have no framebuffer to describe: only the format tells the kernel why.
    let (base, size) = if format == handover::FB_BLT_ONLY {
        (0, 0)
    } else {
        let mut fb = gop.frame_buffer();
        (fb.as_mut_ptr() as u64, fb.size() as u64)
    };
    h.framebuffer = handover::Framebuffer {
        base,
        size,
        width: width as u32,
        height: height as u32,
        stride: mode.stride() as u32,
        format,
    };
}

fn firmware_name(h: &mut Handover) {
    let mut s = String::new();
    for c in uefi::system::firmware_vendor().iter() {
        s.push(char::from(*c));
    }
    let rev = uefi::system::firmware_revision();
    let s = format!("{s} {:#x}", rev);
    let n = s.len().min(h.firmware.len() - 1);
    h.firmware[..n].copy_from_slice(&s.as_bytes()[..n]);
}

/// The relocation type meaning "add the load offset" (x86-64 psABI R_X86_64_RELATIVE; AArch64
/// ELF ABI R_AARCH64_RELATIVE).
#[cfg(target_arch = "x86_64")]
const R_RELATIVE: u32 = 8;
#[cfg(target_arch = "aarch64")]
const R_RELATIVE: u32 = 1027;
/// Load alignment: 2 MiB, so the kernel's own 2 MiB-page maps keep its segments' relative
/// placement on any boundary the tables use.
const KERNEL_ALIGN: u64 = 2 << 20;

/// Copy the kernel (a static PIE linked at 0) into pages the firmware gives us anywhere below
/// [`MAX_KERNEL_DATA`] (EfiLoaderCode), apply its RELATIVE relocations, return the entry point.
fn load_kernel(h: &mut Handover) -> Result<u64, String> {
    use elf::endian::AnyEndian;
    use elf::ElfBytes;
    let file = ElfBytes::<AnyEndian>::minimal_parse(KERNEL).map_err(|e| format!("{e}"))?;
    let segs = file.segments().ok_or("no program headers")?;
    let (mut lo, mut hi) = (u64::MAX, 0u64);
    for s in segs
        .iter()
        .filter(|s| s.p_type == elf::abi::PT_LOAD && s.p_memsz > 0)
    {
        lo = lo.min(s.p_vaddr);
        hi = hi.max(s.p_vaddr + s.p_memsz);
    }
    if lo >= hi {
        return Err("no loadable segments".into());
    }
    let lo = lo & !(PAGE - 1);
    let len = (hi - lo).div_ceil(PAGE) * PAGE;
    // Over-allocate by the alignment and use the aligned part (the rest stays ours, unused).
    let pages = ((len + KERNEL_ALIGN) / PAGE) as usize;
    let raw = boot::allocate_pages(
        AllocateType::MaxAddress(MAX_KERNEL_DATA),
        MemoryType::LOADER_CODE,
        pages,
    )
    .map_err(|e| format!("no {len:#x} bytes of free memory for it ({e:?})"))?;
    let base = (raw.as_ptr() as u64).next_multiple_of(KERNEL_ALIGN);
    let delta = base.wrapping_sub(lo);
    // SAFETY: [base, base + len) lies inside the allocation (over-allocated by the alignment).
    unsafe { core::ptr::write_bytes(base as *mut u8, 0, len as usize) };
    for s in segs.iter().filter(|s| s.p_type == elf::abi::PT_LOAD) {
        let src = KERNEL
            .get(s.p_offset as usize..(s.p_offset + s.p_filesz) as usize)
            .ok_or("a segment lies outside the file")?;
        let dst = s.p_vaddr.wrapping_add(delta);
        // SAFETY: inside [base, base + len) (lo <= p_vaddr, p_vaddr + p_filesz <= hi).
        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), dst as *mut u8, src.len()) };
    }
    let (shdrs, strtab) = file
        .section_headers_with_strtab()
        .map_err(|e| format!("section headers: {e}"))?;
    let shdrs = shdrs.ok_or("no section headers (the loader needs .rela.dyn)")?;
    let strtab = strtab.ok_or("no section name table")?;
    for sh in shdrs.iter().filter(|sh| sh.sh_type == elf::abi::SHT_RELA) {
        if strtab.get(sh.sh_name as usize).ok() != Some(".rela.dyn") {
            continue;
        }
        for r in file
            .section_data_as_relas(&sh)
            .map_err(|e| format!("{e}"))?
        {
            if r.r_type != R_RELATIVE {
                return Err(format!(
                    "relocation type {} at {:#x}: only RELATIVE is supported (link the kernel as a static PIE)",
                    r.r_type, r.r_offset
                ));
            }
            if r.r_offset < lo || r.r_offset + 8 > hi {
                return Err(format!("relocation at {:#x} outside the image", r.r_offset));
            }
            let at = r.r_offset.wrapping_add(delta) as *mut u64;
            // SAFETY: inside the image (checked above); RELATIVE: value = load offset + addend.
            unsafe { at.write_unaligned(delta.wrapping_add(r.r_addend as u64)) };
        }
    }
    h.image_base = base;
    h.image_len = len;
    flush_icache(base, len);
    Ok(file.ehdr.e_entry.wrapping_add(delta))
}

fn reserve_heap(h: &mut Handover) {
    for size in HEAP_SIZES {
        if let Ok(p) = boot::allocate_pages(
            AllocateType::MaxAddress(MAX_KERNEL_DATA),
            MemoryType::LOADER_DATA,
            (size / PAGE) as usize,
        ) {
            h.heap_base = NonNull::as_ptr(p) as u64;
            h.heap_len = size;
            return;
        }
    }
    h.add_note(&["uefi: no heap could be reserved (8 MiB or more below 3 GiB)"]);
}

#[cfg(target_arch = "x86_64")]
fn reserve_trampoline(h: &mut Handover) {
    match boot::allocate_pages(
        AllocateType::Address(TRAMPOLINE),
        MemoryType::LOADER_DATA,
        1,
    ) {
        Ok(_) => h.trampoline = TRAMPOLINE,
        Err(e) => h.add_note(&[&format!(
            "uefi: the AP trampoline page {TRAMPOLINE:#x} is in use by the firmware ({e:?})"
        )]),
    }
}

#[cfg(target_arch = "x86_64")]
fn current_el() -> u32 {
    0
}

#[cfg(target_arch = "aarch64")]
fn current_el() -> u32 {
    let el: u64;
    // SAFETY: reads CurrentEL, allowed at EL1 and above (where UEFI runs).
    unsafe { core::arch::asm!("mrs {0}, CurrentEL", out(reg) el, options(nomem, nostack)) };
    ((el >> 2) & 3) as u32
}

#[cfg(target_arch = "x86_64")]
fn flush_icache(_base: u64, _len: u64) {
    // x86 instruction fetch is coherent with data writes (SDM Vol. 3A 11.6).
}

#[cfg(target_arch = "aarch64")]
fn flush_icache(base: u64, len: u64) {
    // The kernel turns the MMU and caches off first thing (uefi_entry.S), so its image must be
    // in memory, not only in the data cache: clean and invalidate to the point of coherency
    // (Arm ARM D7.5.9), then invalidate the instruction cache. Steps of the smallest data
    // cache line, CTR_EL0.DminLine (log2 of words).
    let ctr: u64;
    // SAFETY: reads CTR_EL0, accessible at EL1 and EL2.
    unsafe { core::arch::asm!("mrs {0}, ctr_el0", out(reg) ctr, options(nomem, nostack)) };
    let line = 4u64 << ((ctr >> 16) & 0xf);
    let mut a = base & !(line - 1);
    while a < base + len {
        // SAFETY: cache maintenance by VA on memory we own; no architectural state changes.
        unsafe { core::arch::asm!("dc civac, {0}", in(reg) a, options(nostack)) };
        a += line;
    }
    // SAFETY: barriers and instruction-cache invalidation only.
    unsafe { core::arch::asm!("dsb sy", "ic iallu", "dsb sy", "isb", options(nostack)) };
}

/// Jump to the kernel: x86-64 SysV convention (`rdi` = handover), interrupts off. The kernel's
/// entry sets up its own stack, GDT and page tables.
#[cfg(target_arch = "x86_64")]
unsafe fn enter_kernel(entry: u64, handover: u64) -> ! {
    // SAFETY: see the caller; nothing of the firmware is needed any more.
    unsafe {
        core::arch::asm!("cli", "jmp {e}", e = in(reg) entry, in("rdi") handover,
            options(noreturn))
    }
}

/// Jump to the kernel with `x0` = handover, at the EL UEFI runs at, MMU and caches still on:
/// the kernel's UEFI entry takes over (it cleans what it needs, turns the MMU off, drops to EL1).
#[cfg(target_arch = "aarch64")]
unsafe fn enter_kernel(entry: u64, handover: u64) -> ! {
    // SAFETY: see the caller. The handover block must reach memory before the kernel reads it
    // with its MMU (and so its data caches) off: clean it to the point of coherency.
    unsafe {
        let mut a = handover & !63;
        while a < handover + core::mem::size_of::<Handover>() as u64 {
            core::arch::asm!("dc cvac, {0}", in(reg) a, options(nostack));
            a += 64;
        }
        core::arch::asm!("dsb sy", "msr daifset, #0xf", "isb", "br {e}", e = in(reg) entry,
            in("x0") handover, options(noreturn))
    }
}

/// AArch64: the hardware description from ACPI, for the kernel (see `handover::ArmHw`).
#[cfg(target_arch = "aarch64")]
mod arm_acpi {
    use super::format;
    use core::ptr::NonNull;

    use acpi::fadt::Fadt;
    use acpi::madt::{Madt, MadtEntry};
    use acpi::spcr::{Spcr, SpcrInterfaceType};
    use acpi::{AcpiHandler, AcpiTables, PhysicalMapping};
    use handover::{ArmCpu, Handover, MAX_ARM_CPUS};

    /// Boot services run on an identity map (UEFI 2.10 2.3.6).
    #[derive(Clone, Copy)]
    struct Identity;

    impl AcpiHandler for Identity {
        unsafe fn map_physical_region<T>(
            &self,
            pa: usize,
            size: usize,
        ) -> PhysicalMapping<Self, T> {
            let p = NonNull::new(pa as *mut T).expect("ACPI table at physical address 0");
            // SAFETY: the firmware maps all memory identity while boot services run.
            unsafe { PhysicalMapping::new(pa, p, size, size, *self) }
        }

        fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
    }

    pub fn read(h: &mut Handover) {
        if h.rsdp == 0 {
            return;
        }
        // SAFETY: the RSDP comes from the firmware's configuration table.
        let tables = match unsafe { AcpiTables::from_rsdp(Identity, h.rsdp as usize) } {
            Ok(t) => t,
            Err(e) => {
                h.add_note(&[&format!("uefi: ACPI tables at RSDP {:#x}: {e:?}", h.rsdp)]);
                return;
            }
        };
        match tables.find_table::<Spcr>() {
            Ok(spcr) => {
                let kind = match spcr.interface_type() {
                    SpcrInterfaceType::ArmPL011 => handover::UART_PL011,
                    // The SBSA generic UART is a subset of the PL011 (Arm DEN0094 Appendix B).
                    SpcrInterfaceType::ArmSBSAGeneric32bit | SpcrInterfaceType::ArmSBSAGeneric => {
                        handover::UART_SBSA
                    }
                    other => {
                        h.add_note(&[&format!(
                            "uefi: the SPCR console is {other:?}; only PL011 and SBSA UARTs are supported"
                        )]);
                        handover::UART_NONE
                    }
                };
                match spcr.base_address() {
                    Some(Ok(a)) if kind != handover::UART_NONE => {
                        h.arm.uart_base = a.address;
                        h.arm.uart_kind = kind;
                    }
                    Some(Err(e)) => h.add_note(&[&format!("uefi: SPCR base address: {e:?}")]),
                    _ => {}
                }
            }
            Err(e) => h.add_note(&[&format!(
                "uefi: no ACPI SPCR table ({e:?}): no serial console"
            )]),
        }
        match tables.find_table::<Fadt>() {
            Ok(f) => {
                let flags = { f.arm_boot_arch };
                h.arm.psci = if !flags.implements_psci() {
                    handover::PSCI_NONE
                } else if flags.use_hvc_as_psci_conduit() {
                    handover::PSCI_HVC
                } else {
                    handover::PSCI_SMC
                };
            }
            Err(e) => h.add_note(&[&format!("uefi: no ACPI FADT ({e:?}): PSCI conduit unknown")]),
        }
        let madt = match tables.find_table::<Madt>() {
            Ok(m) => m,
            Err(e) => {
                h.add_note(&[&format!(
                    "uefi: no ACPI MADT ({e:?}): the cores are unknown"
                )]);
                return;
            }
        };
        let mut n = 0;
        for e in madt.get().entries() {
            match e {
                MadtEntry::Gicc(g) => {
                    if n == MAX_ARM_CPUS {
                        h.add_note(&[&format!(
                            "uefi: more than {MAX_ARM_CPUS} GICC entries; the rest are left out"
                        )]);
                        break;
                    }
                    h.arm.cpus[n] = ArmCpu {
                        mpidr: { g.mpidr },
                        flags: { g.flags },
                        uid: { g.processor_uid },
                    };
                    n += 1;
                }
                MadtEntry::Gicd(d) => {
                    h.arm.gicd_base = d.physical_base_address;
                    h.arm.gic_version = u32::from(d.gic_version);
                }
                _ => {}
            }
        }
        h.arm.ncpus = n as u32;
    }
}
