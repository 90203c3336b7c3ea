//! The few OS services the hosted platform needs: CPU affinity, page-aligned anonymous memory,
//! the page size and the CPU's identification. Linux gets the real thing; macOS and Windows build
//! and run unpinned ([`PINNING`] says so, for `begin.platform.pinning`): macOS has no call that
//! binds a thread to a CPU, and on Windows the hosted runner does not use
//! `SetThreadAffinityMask` (logical CPU `i` is simply the `i`-th of `available_parallelism`).

use std::string::String;
use std::vec::Vec;

/// OS CPU numbers this process may run on (Linux: its affinity mask), in increasing order.
pub fn allowed_cpus() -> Vec<usize> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `set` is a plain bitmask owned by this frame; sched_getaffinity writes at
        // most `size_of::<cpu_set_t>()` bytes into it.
        let got = unsafe {
            let mut set: libc::cpu_set_t = core::mem::zeroed();
            if libc::sched_getaffinity(0, core::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0 {
                Some(
                    (0..libc::CPU_SETSIZE as usize)
                        .filter(|&c| libc::CPU_ISSET(c, &set))
                        .collect::<Vec<usize>>(),
                )
            } else {
                None
            }
        };
        if let Some(cpus) = got.filter(|c| !c.is_empty()) {
            return cpus;
        }
    }
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    (0..n).collect()
}

/// Whether threads are pinned on this OS.
pub const PINS: bool = cfg!(target_os = "linux");

/// How threads are placed on this OS, in words (for `begin.platform.pinning`).
pub const PINNING: &str = if PINS {
    "sched_setaffinity"
} else if cfg!(target_os = "macos") {
    "none on macOS: no API binds a thread to a CPU (thread affinity tags are only hints); \
     threads run where the scheduler puts them"
} else if cfg!(windows) {
    "none on Windows: threads run unpinned (SetThreadAffinityMask is not used)"
} else {
    "none: threads run unpinned on this OS"
};

/// Pin the calling thread to OS CPU `cpu` (Linux `sched_setaffinity`); elsewhere do nothing.
pub fn pin_current_thread(cpu: usize) -> Result<(), String> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `set` is a plain bitmask owned by this frame; CPU_SET only writes inside it
        // (checked `cpu < CPU_SETSIZE`), and sched_setaffinity only reads it.
        let rc = unsafe {
            if cpu >= libc::CPU_SETSIZE as usize {
                return Err(format!("cpu {cpu} is beyond CPU_SETSIZE"));
            }
            let mut set: libc::cpu_set_t = core::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, core::mem::size_of::<libc::cpu_set_t>(), &set)
        };
        if rc != 0 {
            return Err(format!(
                "sched_setaffinity(cpu {cpu}): {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = cpu;
        Ok(())
    }
}

/// The OS page size.
pub fn page_size() -> usize {
    #[cfg(unix)]
    {
        // SAFETY: sysconf only reads a system constant.
        let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if n > 0 {
            return n as usize;
        }
    }
    4096
}

/// `len` bytes of zeroed, page-aligned, readable and writable memory that is never freed (probe
/// arenas live as long as the process; the memory is the OS's normal cacheable memory).
///
/// `populate`: fault the pages in here (`MAP_POPULATE`, Linux), with the platform's setup,
/// rather than in the first probe that writes them: the litmus runner zeroes its arena inside a
/// test's timed run, and the first test of a process paid the 256 page faults of a 1 MiB arena
/// (about 0.6 ms hosted, 2 % of a 1 M-instance run) that every later test skips. Not for a
/// mapping whose page size is still to be advised (`madvise` after `mmap`): populated first,
/// it could already be backed by a transparent huge page.
pub fn map_zeroed(len: usize, populate: bool) -> Result<*mut u8, String> {
    #[cfg(unix)]
    {
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing touches no
        // existing memory.
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE
                    | libc::MAP_ANONYMOUS
                    | if populate { populate_flag() } else { 0 },
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(format!(
                "mmap of {len} bytes failed: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(p.cast())
    }
    #[cfg(not(unix))]
    {
        // The allocator zeroes every page, so each is touched already.
        let _ = populate;
        let layout = std::alloc::Layout::from_size_align(len, page_size())
            .map_err(|e| format!("arena layout: {e}"))?;
        // SAFETY: `layout` has a non-zero size (the arena length).
        let p = unsafe { std::alloc::alloc_zeroed(layout) };
        if p.is_null() {
            return Err(format!("allocation of {len} bytes failed"));
        }
        Ok(p)
    }
}

/// `MAP_POPULATE` where the OS has it (Linux), else no flag.
#[cfg(unix)]
fn populate_flag() -> libc::c_int {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        libc::MAP_POPULATE
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        0
    }
}

/// `len` bytes of zeroed memory backed by huge pages of `1 << shift` bytes (`mapping=2m`: 21,
/// `1g`: 30) through `mmap(MAP_HUGETLB)` (Linux); or why not. Transparent huge pages are not
/// used: the kernel may or may not back a range with them, and the probes must know.
pub fn map_huge(len: usize, shift: u32) -> Result<*mut u8, String> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing touches no
        // existing memory.
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE
                    | libc::MAP_ANONYMOUS
                    | libc::MAP_HUGETLB
                    | ((shift as i32) << libc::MAP_HUGE_SHIFT),
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            let err = std::io::Error::last_os_error();
            let pool = std::fs::read_to_string(format!(
                "/sys/kernel/mm/hugepages/hugepages-{}kB/nr_hugepages",
                (1u64 << shift) / 1024
            ))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "no such pool".into());
            return Err(format!(
                "mmap(MAP_HUGETLB, {} KiB pages) failed: {err} (reserved huge pages of that \
                 size: {pool}; reserve some with /sys/kernel/mm/hugepages/hugepages-{}kB/\
                 nr_hugepages)",
                (1u64 << shift) / 1024,
                (1u64 << shift) / 1024
            ));
        }
        Ok(p.cast())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (len, shift);
        Err("huge pages on request (mmap MAP_HUGETLB) are Linux-only".into())
    }
}

/// `begin.cpu_id`: CPUID vendor/family/model/stepping on x86-64 (SDM Vol. 2A, CPUID leaf 1
/// EAX), MIDR_EL1 on aarch64 (from Linux's sysfs, else `/proc/cpuinfo`).
pub fn cpu_id() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::__cpuid;
        #[allow(unused_unsafe)]
        // SAFETY: CPUID exists on every x86-64 processor and only reads identification data.
        let (l0, l1) = unsafe { (__cpuid(0), __cpuid(1)) };
        let mut vendor = [0u8; 12];
        vendor[0..4].copy_from_slice(&l0.ebx.to_le_bytes());
        vendor[4..8].copy_from_slice(&l0.edx.to_le_bytes());
        vendor[8..12].copy_from_slice(&l0.ecx.to_le_bytes());
        let eax = l1.eax;
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
    #[cfg(target_arch = "aarch64")]
    {
        midr().map_or_else(|| "unknown".to_string(), |m| format!("{m:#010x}"))
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        "unknown".to_string()
    }
}

#[cfg(target_arch = "aarch64")]
fn midr() -> Option<u64> {
    if let Ok(s) =
        std::fs::read_to_string("/sys/devices/system/cpu/cpu0/regs/identification/midr_el1")
    {
        if let Some(v) = crate::record::parse_hex(s.trim()) {
            return Some(v);
        }
    }
    // /proc/cpuinfo: "CPU implementer : 0x41", "CPU variant : 0x0", "CPU architecture: 8",
    // "CPU part : 0xd08", "CPU revision : 3" -> MIDR_EL1 fields [31:24], [23:20], [19:16],
    // [15:4], [3:0] (Arm ARM D24.2 MIDR_EL1).
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = info.lines().find(|l| l.starts_with(name))?;
        let v = line.split(':').nth(1)?.trim();
        crate::record::parse_hex(v).or_else(|| v.parse().ok())
    };
    let arch = field("CPU architecture").map(|a| if a >= 8 { 0xf } else { a })?;
    Some(
        (field("CPU implementer")? << 24)
            | (field("CPU variant")? << 20)
            | (arch << 16)
            | (field("CPU part")? << 4)
            | field("CPU revision")?,
    )
}
