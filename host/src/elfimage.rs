//! ELF → flat image (what `objcopy -O binary` does for a kernel): the file contents of the
//! loadable segments, laid out by physical address from the lowest one, gaps zero-filled. Used for
//! the arm64 Image form that QEMU's `virt` and `raspi4b` (and the Pi firmware) load.
//!
//! Segments with no file contents (pure `.bss`) are not written and do not set the base: the
//! image ends with the last byte of file contents, and the kernel clears its own `.bss`.

use std::fmt;

use object::elf::{FileHeader64, EM_AARCH64, PT_LOAD};
use object::read::elf::{FileHeader, ProgramHeader};
use object::Endianness;

/// Offset of the arm64 Image header's magic (`ARM\x64`).
pub const ARM64_MAGIC_OFFSET: usize = 0x38;
pub const ARM64_MAGIC: &[u8; 4] = b"ARM\x64";
/// A flat image larger than this is refused: it means the ELF is linked across distant addresses.
pub const MAX_IMAGE: u64 = 256 << 20;

#[derive(Debug, PartialEq, Eq)]
pub struct ImageError(pub String);

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ImageError {}

/// A flattened image.
#[derive(Debug)]
pub struct FlatImage {
    /// Physical address of the first byte.
    pub base: u64,
    /// ELF entry point.
    pub entry: u64,
    pub bytes: Vec<u8>,
}

impl FlatImage {
    /// Whether the image starts with an arm64 Image header (magic at 0x38).
    pub fn has_arm64_header(&self) -> bool {
        self.bytes.get(ARM64_MAGIC_OFFSET..ARM64_MAGIC_OFFSET + 4) == Some(&ARM64_MAGIC[..])
    }
}

/// Flatten a 64-bit ELF's `PT_LOAD` segments (by physical address) into one image.
pub fn flatten(elf: &[u8]) -> Result<FlatImage, ImageError> {
    let err = |m: String| ImageError(m);
    let header = FileHeader64::<Endianness>::parse(elf)
        .map_err(|e| err(format!("not a 64-bit ELF file: {e}")))?;
    let endian = header
        .endian()
        .map_err(|e| err(format!("bad ELF header: {e}")))?;
    let phdrs = header
        .program_headers(endian, elf)
        .map_err(|e| err(format!("bad ELF program headers: {e}")))?;

    let mut loads = Vec::new();
    for ph in phdrs {
        if ph.p_type(endian) != PT_LOAD || ph.p_filesz(endian) == 0 {
            continue;
        }
        let data = ph.data(endian, elf).map_err(|_| {
            err(format!(
                "PT_LOAD segment at {:#x}: file range {:#x}+{:#x} lies outside the {}-byte file",
                ph.p_paddr(endian),
                ph.p_offset(endian),
                ph.p_filesz(endian),
                elf.len()
            ))
        })?;
        loads.push((ph.p_paddr(endian), data));
    }
    if loads.is_empty() {
        return Err(err(
            "the ELF has no loadable segment with file contents (nothing to put in an image)"
                .into(),
        ));
    }
    loads.sort_by_key(|(addr, _)| *addr);
    let base = loads[0].0;
    let mut end = base;
    for (addr, data) in &loads {
        let seg_end = addr
            .checked_add(data.len() as u64)
            .ok_or_else(|| err(format!("segment at {addr:#x} wraps the address space")))?;
        if *addr < end {
            return Err(err(format!(
                "loadable segments overlap at physical address {addr:#x}"
            )));
        }
        end = seg_end;
    }
    let size = end - base;
    if size > MAX_IMAGE {
        return Err(err(format!(
            "flat image would be {size:#x} bytes (segments from {base:#x} to {end:#x}); more \
             than {MAX_IMAGE:#x} means the kernel is linked across distant addresses"
        )));
    }
    let mut bytes = vec![0u8; size as usize];
    for (addr, data) in &loads {
        let off = (addr - base) as usize;
        bytes[off..off + data.len()].copy_from_slice(data);
    }
    Ok(FlatImage {
        base,
        entry: header.e_entry(endian),
        bytes,
    })
}

/// Whether the ELF is for aarch64 (used for a clear error when a wrong kernel is given).
pub fn is_aarch64(elf: &[u8]) -> bool {
    FileHeader64::<Endianness>::parse(elf)
        .ok()
        .and_then(|h| h.endian().ok().map(|e| h.e_machine(e) == EM_AARCH64))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use object::elf::{ProgramType, PT_PHDR};

    /// Build a little-endian ELF64 (aarch64) with the given (type, paddr, file bytes, memsz)
    /// program headers.
    fn synth_elf(segs: &[(ProgramType, u64, &[u8], u64)], entry: u64) -> Vec<u8> {
        let ehsize = 64usize;
        let phentsize = 56usize;
        let mut data_off = ehsize + phentsize * segs.len();
        let mut out = Vec::new();
        out.extend_from_slice(b"\x7fELF");
        out.extend_from_slice(&[2, 1, 1, 0]); // ELFCLASS64, little endian, version 1, SysV
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        out.extend_from_slice(&EM_AARCH64.0.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&entry.to_le_bytes());
        out.extend_from_slice(&(ehsize as u64).to_le_bytes()); // e_phoff
        out.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
        out.extend_from_slice(&0u32.to_le_bytes()); // e_flags
        out.extend_from_slice(&(ehsize as u16).to_le_bytes());
        out.extend_from_slice(&(phentsize as u16).to_le_bytes());
        out.extend_from_slice(&(segs.len() as u16).to_le_bytes());
        out.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
        out.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
        out.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
        assert_eq!(out.len(), ehsize);
        for (ty, paddr, bytes, memsz) in segs {
            out.extend_from_slice(&ty.0.to_le_bytes());
            out.extend_from_slice(&5u32.to_le_bytes()); // R+X
            out.extend_from_slice(&(data_off as u64).to_le_bytes());
            // Virtual addresses differ from physical ones to prove paddr is used.
            out.extend_from_slice(&(paddr + 0xffff_0000_0000_0000).to_le_bytes());
            out.extend_from_slice(&paddr.to_le_bytes());
            out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            out.extend_from_slice(&memsz.to_le_bytes());
            out.extend_from_slice(&0x1000u64.to_le_bytes());
            data_off += bytes.len();
        }
        for (_, _, bytes, _) in segs {
            out.extend_from_slice(bytes);
        }
        out
    }

    #[test]
    fn flattens_segments_by_paddr_with_gaps_zeroed() {
        let mut text = vec![0xAAu8; ARM64_MAGIC_OFFSET];
        text.extend_from_slice(ARM64_MAGIC);
        text.extend_from_slice(&[0xBB; 8]);
        let data = [1u8, 2, 3, 4];
        // Listed out of order; a bss-only segment below the image must not move the base, and a
        // trailing bss must not be written.
        let elf = synth_elf(
            &[
                (PT_LOAD, 0x4008_1000, &data, 0x2000),
                (PT_LOAD, 0x4008_0000, &text, text.len() as u64),
                (PT_LOAD, 0x4000_0000, &[], 0x1000),
                (PT_PHDR, 0x1000, &[9, 9], 2),
            ],
            0x4008_0000,
        );
        let img = flatten(&elf).unwrap();
        assert_eq!(img.base, 0x4008_0000);
        assert_eq!(img.entry, 0x4008_0000);
        assert_eq!(img.bytes.len(), 0x1004);
        assert_eq!(&img.bytes[..0x38], &[0xAA; 0x38][..]);
        assert!(img.has_arm64_header());
        assert_eq!(&img.bytes[0x3c..0x44], &[0xBB; 8]);
        assert!(img.bytes[0x44..0x1000].iter().all(|&b| b == 0));
        assert_eq!(&img.bytes[0x1000..], &data);
        assert!(is_aarch64(&elf));
    }

    #[test]
    fn rejects_garbage_empty_overlap_and_huge() {
        assert!(flatten(b"hello")
            .unwrap_err()
            .0
            .contains("not a 64-bit ELF"));
        let none = synth_elf(&[(PT_LOAD, 0x80000, &[], 0x100)], 0x80000);
        assert!(flatten(&none)
            .unwrap_err()
            .0
            .contains("no loadable segment"));
        let overlap = synth_elf(
            &[
                (PT_LOAD, 0x80000, &[1; 16], 16),
                (PT_LOAD, 0x80008, &[2; 16], 16),
            ],
            0x80000,
        );
        assert!(flatten(&overlap).unwrap_err().0.contains("overlap"));
        let huge = synth_elf(
            &[(PT_LOAD, 0x80000, &[1], 1), (PT_LOAD, 0x4000_0000, &[2], 1)],
            0x80000,
        );
        assert!(flatten(&huge).unwrap_err().0.contains("distant"));
        let img = flatten(&synth_elf(&[(PT_LOAD, 0x80000, &[7; 8], 8)], 0x80000)).unwrap();
        assert!(!img.has_arm64_header());
    }

    #[test]
    fn truncated_file_is_reported() {
        let mut elf = synth_elf(&[(PT_LOAD, 0x80000, &[7; 64], 64)], 0x80000);
        elf.truncate(elf.len() - 10);
        let e = flatten(&elf).unwrap_err();
        assert!(e.0.contains("outside"), "{e}");
    }
}
