//! The block the atomprobe UEFI loader (`uefi-loader/`) fills in before ExitBootServices and
//! hands to the kernel (board `uefi`): boot arguments, memory map, ACPI RSDP, what the loader
//! reserved for the kernel, the EFI system table (runtime services) and the GOP framebuffer.
//!
//! One `#[repr(C)]` struct with fixed-size arrays, shared by both sides through this crate, so
//! the layout cannot drift between the loader and the kernel; both check [`MAGIC`] and
//! [`VERSION`]. Plain data only: no pointers into boot-services memory survive ExitBootServices.
#![no_std]

/// "APHANDOV" little-endian.
pub const MAGIC: u64 = u64::from_le_bytes(*b"APHANDOV");
pub const VERSION: u32 = 1;
pub const MAX_CMDLINE: usize = 2048;
pub const MAX_NOTES: usize = 2048;
pub const MAX_REGIONS: usize = 512;

/// Where the boot arguments came from.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmdlineSource {
    /// None found: the defaults apply.
    None = 0,
    /// The image's load options (UEFI shell arguments, a boot entry's optional data).
    LoadOptions = 1,
    /// `\atomprobe\cmdline.txt` on the volume the loader was read from.
    File = 2,
}

impl CmdlineSource {
    pub fn from_u32(v: u32) -> CmdlineSource {
        match v {
            1 => CmdlineSource::LoadOptions,
            2 => CmdlineSource::File,
            _ => CmdlineSource::None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CmdlineSource::None => "none",
            CmdlineSource::LoadOptions => "load-options",
            CmdlineSource::File => "cmdline-file",
        }
    }
}

/// One UEFI memory descriptor, as in the final map (after ExitBootServices).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Region {
    pub base: u64,
    pub pages: u64,
    /// `EFI_MEMORY_TYPE` (UEFI 2.10, 7.2.1).
    pub kind: u32,
    pub reserved: u32,
    /// `EFI_MEMORY_*` attributes.
    pub attr: u64,
}

/// UEFI memory types the kernel cares about (UEFI 2.10 Table 7.6).
pub const EFI_LOADER_CODE: u32 = 1;
pub const EFI_LOADER_DATA: u32 = 2;
pub const EFI_BOOT_SERVICES_CODE: u32 = 3;
pub const EFI_BOOT_SERVICES_DATA: u32 = 4;
pub const EFI_RUNTIME_SERVICES_CODE: u32 = 5;
pub const EFI_RUNTIME_SERVICES_DATA: u32 = 6;
pub const EFI_CONVENTIONAL_MEMORY: u32 = 7;

impl Region {
    /// Free for the OS once boot services are gone (UEFI 2.10, 7.2.1 Table 7.7: loader and boot-
    /// services memory becomes conventional after ExitBootServices).
    pub fn is_usable_ram(&self) -> bool {
        matches!(
            self.kind,
            EFI_LOADER_CODE
                | EFI_LOADER_DATA
                | EFI_BOOT_SERVICES_CODE
                | EFI_BOOT_SERVICES_DATA
                | EFI_CONVENTIONAL_MEMORY
        )
    }

    pub fn bytes(&self) -> u64 {
        self.pages.saturating_mul(4096)
    }
}

/// The GOP framebuffer (0 base: none).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Framebuffer {
    pub base: u64,
    pub size: u64,
    pub width: u32,
    pub height: u32,
    /// Pixels per scan line.
    pub stride: u32,
    /// [`FB_RGB`], [`FB_BGR`] (4 bytes per pixel: the two a console can draw on), or
    /// [`FB_BITMASK`], [`FB_BLT_ONLY`] (reported, not used).
    pub format: u32,
}

/// GOP `EFI_GRAPHICS_PIXEL_FORMAT` (UEFI 2.10 12.9.2): PixelRedGreenBlueReserved8BitPerColor
/// (byte 0 = red).
pub const FB_RGB: u32 = 0;
/// PixelBlueGreenRedReserved8BitPerColor (byte 0 = blue).
pub const FB_BGR: u32 = 1;
/// PixelBitMask: channel positions given by masks.
pub const FB_BITMASK: u32 = 2;
/// PixelBltOnly: no linear framebuffer (`base` 0).
pub const FB_BLT_ONLY: u32 = 3;

/// Most AArch64 cores the loader describes.
pub const MAX_ARM_CPUS: usize = 64;

/// One MADT GICC entry (ACPI 6.5 5.2.12.14).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArmCpu {
    pub mpidr: u64,
    /// GICC flags: bit 0 Enabled, bit 3 Online Capable.
    pub flags: u32,
    pub uid: u32,
}

/// AArch64 hardware from the ACPI tables, read by the loader while the firmware's MMU is on:
/// the kernel starts with its MMU off, where every access is Device memory and the tables'
/// unaligned fields would fault (Arm ARM B2.5.2).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArmHw {
    /// SPCR console base (0: none).
    pub uart_base: u64,
    /// [`UART_NONE`], [`UART_PL011`], [`UART_SBSA`].
    pub uart_kind: u32,
    /// [`PSCI_NONE`], [`PSCI_HVC`], [`PSCI_SMC`] (FADT ARM_BOOT_ARCH).
    pub psci: u32,
    /// MADT GICD entry's version (0: discover; u32::MAX: no GICD entry).
    pub gic_version: u32,
    pub ncpus: u32,
    pub gicd_base: u64,
    pub cpus: [ArmCpu; MAX_ARM_CPUS],
}

pub const UART_NONE: u32 = 0;
pub const UART_PL011: u32 = 1;
pub const UART_SBSA: u32 = 2;
pub const PSCI_NONE: u32 = 0;
pub const PSCI_HVC: u32 = 1;
pub const PSCI_SMC: u32 = 2;

impl ArmHw {
    pub const fn new() -> ArmHw {
        ArmHw {
            uart_base: 0,
            uart_kind: UART_NONE,
            psci: PSCI_NONE,
            gic_version: u32::MAX,
            ncpus: 0,
            gicd_base: 0,
            cpus: [ArmCpu {
                mpidr: 0,
                flags: 0,
                uid: 0,
            }; MAX_ARM_CPUS],
        }
    }

    pub fn cpus(&self) -> &[ArmCpu] {
        &self.cpus[..(self.ncpus as usize).min(MAX_ARM_CPUS)]
    }
}

impl Default for ArmHw {
    fn default() -> Self {
        ArmHw::new()
    }
}

#[repr(C)]
pub struct Handover {
    pub magic: u64,
    pub version: u32,
    pub cmdline_source: u32,
    /// ACPI 2.0+ RSDP (else the 1.0 one), 0 if the firmware gave none.
    pub rsdp: u64,
    /// The EFI system table (its runtime services stay usable after ExitBootServices).
    pub system_table: u64,
    /// Memory the loader reserved (EfiLoaderData) for the kernel's heap.
    pub heap_base: u64,
    pub heap_len: u64,
    /// A page the loader reserved below 1 MiB for the x86 AP trampoline (0: none).
    pub trampoline: u64,
    /// The kernel image as loaded (physical), for the facts.
    pub image_base: u64,
    pub image_len: u64,
    pub framebuffer: Framebuffer,
    /// Exception level the loader ran at (aarch64; 0 on x86).
    pub entry_el: u32,
    pub cmdline_len: u32,
    pub notes_len: u32,
    pub nregions: u32,
    pub cmdline: [u8; MAX_CMDLINE],
    /// Loader messages for the report, one per line (each becomes an `error` record).
    pub notes: [u8; MAX_NOTES],
    /// Firmware vendor and revision, e.g. "EDK II 1.0".
    pub firmware: [u8; 64],
    pub regions: [Region; MAX_REGIONS],
    /// AArch64 only (zeros on x86: the x86 kernel reads ACPI itself, with its MMU on).
    pub arm: ArmHw,
}

impl Handover {
    /// An empty block (magic and version set).
    pub const fn new() -> Handover {
        Handover {
            magic: MAGIC,
            version: VERSION,
            cmdline_source: CmdlineSource::None as u32,
            rsdp: 0,
            system_table: 0,
            heap_base: 0,
            heap_len: 0,
            trampoline: 0,
            image_base: 0,
            image_len: 0,
            framebuffer: Framebuffer {
                base: 0,
                size: 0,
                width: 0,
                height: 0,
                stride: 0,
                format: 0,
            },
            entry_el: 0,
            cmdline_len: 0,
            notes_len: 0,
            nregions: 0,
            cmdline: [0; MAX_CMDLINE],
            notes: [0; MAX_NOTES],
            firmware: [0; 64],
            regions: [Region {
                base: 0,
                pages: 0,
                kind: 0,
                reserved: 0,
                attr: 0,
            }; MAX_REGIONS],
            arm: ArmHw::new(),
        }
    }

    /// Whether this block was written by a loader speaking this version.
    pub fn is_valid(&self) -> bool {
        self.magic == MAGIC && self.version == VERSION
    }

    pub fn cmdline(&self) -> &[u8] {
        &self.cmdline[..(self.cmdline_len as usize).min(MAX_CMDLINE)]
    }

    pub fn notes(&self) -> &[u8] {
        &self.notes[..(self.notes_len as usize).min(MAX_NOTES)]
    }

    pub fn regions(&self) -> &[Region] {
        &self.regions[..(self.nregions as usize).min(MAX_REGIONS)]
    }

    pub fn firmware(&self) -> &[u8] {
        let n = self.firmware.iter().position(|&b| b == 0).unwrap_or(64);
        &self.firmware[..n]
    }

    /// Set the boot arguments; false (and nothing set) if they do not fit.
    pub fn set_cmdline(&mut self, text: &[u8], source: CmdlineSource) -> bool {
        if text.len() > MAX_CMDLINE {
            return false;
        }
        self.cmdline[..text.len()].copy_from_slice(text);
        self.cmdline_len = text.len() as u32;
        self.cmdline_source = source as u32;
        true
    }

    /// Append one note line (cut to fit; a note that does not fit at all is dropped).
    pub fn add_note(&mut self, parts: &[&str]) {
        let mut at = self.notes_len as usize;
        for p in parts.iter().map(|p| p.as_bytes()).chain([&b"\n"[..]]) {
            let n = p.len().min(MAX_NOTES.saturating_sub(at + 1));
            self.notes[at..at + n].copy_from_slice(&p[..n]);
            at += n;
        }
        if at < MAX_NOTES && self.notes[at.saturating_sub(1)] != b'\n' {
            self.notes[at] = b'\n';
            at += 1;
        }
        self.notes_len = at as u32;
    }

    /// Usable RAM in bytes.
    pub fn usable_bytes(&self) -> u64 {
        self.regions()
            .iter()
            .filter(|r| r.is_usable_ram())
            .map(Region::bytes)
            .sum()
    }
}

impl Default for Handover {
    fn default() -> Self {
        Handover::new()
    }
}

/// Boot arguments from UEFI load options (UCS-2): `None` when they are not text meant for us.
/// Firmware boot managers pass binary optional data (OVMF: a GUID for its auto-created entries),
/// the UEFI shell passes the command line starting with the image's own name: the first word is
/// dropped when it ends in `.efi` (any case). Printable ASCII only; the result may be empty.
pub fn cmdline_from_load_options(units: &[u16], out: &mut [u8]) -> Option<usize> {
    let end = units.iter().position(|&u| u == 0).unwrap_or(units.len());
    let units = &units[..end];
    if units.is_empty() {
        return None;
    }
    let mut n = 0;
    for &u in units {
        let c = match u {
            0x09 | 0x0a | 0x0d => b' ',
            0x20..=0x7e => u as u8,
            _ => return None,
        };
        if n == out.len() {
            return None;
        }
        out[n] = c;
        n += 1;
    }
    let text = &out[..n];
    let start = text.iter().position(|&c| c != b' ').unwrap_or(n);
    let first_end = text[start..]
        .iter()
        .position(|&c| c == b' ')
        .map_or(n, |p| start + p);
    let first = &text[start..first_end];
    let skip = if first.len() >= 4 && first[first.len() - 4..].eq_ignore_ascii_case(b".efi") {
        first_end
    } else {
        start
    };
    out.copy_within(skip..n, 0);
    let mut len = n - skip;
    while len > 0 && out[len - 1] == b' ' {
        len -= 1;
    }
    let lead = out[..len].iter().position(|&c| c != b' ').unwrap_or(len);
    out.copy_within(lead..len, 0);
    Some(len - lead)
}

/// The boot arguments in a cmdline file: `#` comment lines dropped, other lines joined with
/// spaces, surrounding whitespace trimmed. `Err` with a reason when it is not UTF-8 text or does
/// not fit `out`.
pub fn cmdline_from_file(bytes: &[u8], out: &mut [u8]) -> Result<usize, &'static str> {
    let text = core::str::from_utf8(bytes).map_err(|_| "not UTF-8 text")?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut n = 0;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let need = line.len() + usize::from(n > 0);
        if n + need > out.len() {
            return Err("longer than 2048 bytes");
        }
        if n > 0 {
            out[n] = b' ';
            n += 1;
        }
        out[n..n + line.len()].copy_from_slice(line.as_bytes());
        n += line.len();
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ucs2(s: &str) -> [u16; 64] {
        let mut v = [0u16; 64];
        for (i, c) in s.encode_utf16().enumerate() {
            v[i] = c;
        }
        v
    }

    fn opts(s: &str) -> Option<([u8; 128], usize)> {
        let mut out = [0u8; 128];
        cmdline_from_load_options(&ucs2(s), &mut out).map(|n| (out, n))
    }

    #[test]
    fn load_options_text_and_shell_name() {
        let (o, n) = opts("iters=1k probes=fault").unwrap();
        assert_eq!(&o[..n], b"iters=1k probes=fault");
        let (o, n) = opts("  FS0:\\EFI\\BOOT\\BOOTX64.EFI  iters=1k  ").unwrap();
        assert_eq!(&o[..n], b"iters=1k");
        let (_, n) = opts("bootx64.efi").unwrap();
        assert_eq!(n, 0);
    }

    #[test]
    fn load_options_binary_or_empty_are_not_ours() {
        assert!(opts("").is_none());
        let mut units = [0u16; 8];
        units[0] = 0x4e; // 'N', then binary
        units[1] = 0xac00;
        units[2] = 0x0001;
        let mut out = [0u8; 16];
        assert!(cmdline_from_load_options(&units, &mut out).is_none());
        // A buffer too small for the text is refused, not cut.
        assert!(cmdline_from_load_options(&ucs2("iters=1000000"), &mut out[..4]).is_none());
    }

    #[test]
    fn cmdline_file_comments_lines_and_errors() {
        let mut out = [0u8; 64];
        let n = cmdline_from_file(
            b"\xef\xbb\xbf# atomprobe boot arguments\r\niters=1k\r\n\r\n probes=fault \n",
            &mut out,
        )
        .unwrap();
        assert_eq!(&out[..n], b"iters=1k probes=fault");
        assert_eq!(
            cmdline_from_file(b"\xff\xfe", &mut out),
            Err("not UTF-8 text")
        );
        let long = [b'a'; 100];
        assert!(cmdline_from_file(&long, &mut out).is_err());
        assert_eq!(cmdline_from_file(b"# only\n", &mut out), Ok(0));
    }

    #[test]
    fn notes_are_lines_and_cut_to_fit() {
        let mut h = Handover::new();
        h.add_note(&["cmdline.txt: ", "not UTF-8 text"]);
        h.add_note(&["second"]);
        assert_eq!(h.notes(), b"cmdline.txt: not UTF-8 text\nsecond\n");
        let big = [b'x'; MAX_NOTES * 2];
        h.add_note(&[core::str::from_utf8(&big).unwrap()]);
        assert_eq!(h.notes_len as usize, MAX_NOTES);
        assert_eq!(h.notes()[MAX_NOTES - 1], b'\n');
    }

    #[test]
    fn usable_memory_counts_loader_and_boot_services() {
        let mut h = Handover::new();
        for (i, kind) in [
            EFI_CONVENTIONAL_MEMORY,
            EFI_BOOT_SERVICES_DATA,
            EFI_RUNTIME_SERVICES_DATA,
            10,
        ]
        .into_iter()
        .enumerate()
        {
            h.regions[i] = Region {
                base: i as u64 * 0x10000,
                pages: 2,
                kind,
                ..Region::default()
            };
        }
        h.nregions = 4;
        assert_eq!(h.usable_bytes(), 4 * 4096);
        assert!(h.is_valid());
    }
}
