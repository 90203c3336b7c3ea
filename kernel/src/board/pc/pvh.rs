//! The PVH start info (`struct hvm_start_info`, Xen public header `arch-x86/hvm/start_info.h`):
//! magic 0x336ec578; version 1 adds the memory map. Everything is copied into [`StartInfo`] at
//! once, before the heap exists (the loader's structures may lie in what becomes heap).

use alloc::string::String;

const MAGIC: u32 = 0x336e_c578;
const MAX_REGIONS: usize = 32;
const MAX_CMDLINE: usize = 2048;
/// `XEN_HVM_MEMMAP_TYPE_RAM`.
const TYPE_RAM: u32 = 1;

#[repr(C)]
#[derive(Clone, Copy)]
struct HvmStartInfo {
    magic: u32,
    version: u32,
    flags: u32,
    nr_modules: u32,
    modlist_paddr: u64,
    cmdline_paddr: u64,
    rsdp_paddr: u64,
    memmap_paddr: u64,
    memmap_entries: u32,
    reserved: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct HvmMemmapEntry {
    addr: u64,
    size: u64,
    kind: u32,
    reserved: u32,
}

/// A memory-map region.
#[derive(Clone, Copy, Default, Debug)]
pub struct Region {
    pub addr: u64,
    pub size: u64,
    pub kind: u32,
}

pub struct StartInfo {
    pub rsdp: u64,
    regions: [Region; MAX_REGIONS],
    nregions: usize,
    cmdline: [u8; MAX_CMDLINE],
    cmdline_len: usize,
}

impl StartInfo {
    /// Copy the start info at physical `paddr` (identity-mapped).
    pub fn read(paddr: u64) -> Result<StartInfo, &'static str> {
        if paddr == 0 {
            return Err("no start info (not entered through PVH?)");
        }
        // SAFETY: the PVH loader passed this address in %ebx; it is identity-mapped RAM holding a
        // `hvm_start_info` (checked by its magic right after).
        let si: HvmStartInfo = unsafe { core::ptr::read_unaligned(paddr as *const HvmStartInfo) };
        if si.magic != MAGIC {
            return Err("wrong magic");
        }
        let mut out = StartInfo {
            rsdp: si.rsdp_paddr,
            regions: [Region::default(); MAX_REGIONS],
            nregions: 0,
            cmdline: [0; MAX_CMDLINE],
            cmdline_len: 0,
        };
        if si.cmdline_paddr != 0 {
            let p = si.cmdline_paddr as *const u8;
            while out.cmdline_len < MAX_CMDLINE {
                // SAFETY: a NUL-terminated string from the loader, identity-mapped; we stop at
                // the NUL or at MAX_CMDLINE.
                let b = unsafe { p.add(out.cmdline_len).read_volatile() };
                if b == 0 {
                    break;
                }
                out.cmdline[out.cmdline_len] = b;
                out.cmdline_len += 1;
            }
        }
        if si.version >= 1 && si.memmap_paddr != 0 {
            let n = (si.memmap_entries as usize).min(MAX_REGIONS);
            let p = si.memmap_paddr as *const HvmMemmapEntry;
            for i in 0..n {
                // SAFETY: `memmap_entries` entries at `memmap_paddr`, identity-mapped (PVH v1).
                let e = unsafe { core::ptr::read_unaligned(p.add(i)) };
                out.regions[i] = Region {
                    addr: e.addr,
                    size: e.size,
                    kind: e.kind,
                };
            }
            out.nregions = n;
        }
        Ok(out)
    }

    pub fn regions(&self) -> &[Region] {
        &self.regions[..self.nregions]
    }

    pub fn cmdline(&self) -> String {
        String::from_utf8_lossy(&self.cmdline[..self.cmdline_len])
            .trim()
            .into()
    }

    pub fn usable_bytes(&self) -> u64 {
        self.regions()
            .iter()
            .filter(|r| r.kind == TYPE_RAM)
            .map(|r| r.size)
            .sum()
    }

    /// The heap: page-aligned, right after the image, inside the RAM region holding the image's
    /// end (identity-mapped: below 4 GiB), at most `max` bytes. Without a memory map, a
    /// conservative 16 MiB after the image (QEMU's PVH always provides one).
    pub fn heap_region(&self, image_end: u64, max: u64) -> (u64, u64) {
        let start = (image_end + 0xfff) & !0xfff;
        let end = self
            .regions()
            .iter()
            .find(|r| r.kind == TYPE_RAM && r.addr <= start && start < r.addr + r.size)
            .map(|r| (r.addr + r.size).min(1 << 32))
            .unwrap_or(start + (16 << 20));
        (start, (end - start).min(max) & !0xfff)
    }
}
