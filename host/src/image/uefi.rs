//! The UEFI USB stick of issue 12: a raw GPT disk with one EFI System Partition (FAT32) holding
//! the removable-media boot files `\EFI\BOOT\BOOTX64.EFI` and `\EFI\BOOT\BOOTAA64.EFI` (UEFI
//! 2.10 section 3.5.1.1, "Removable Media Boot Behavior": firmware boots
//! `\EFI\BOOT\BOOT{machine}.EFI` from an ESP on removable media) and `\atomprobe\cmdline.txt`
//! with the boot arguments, editable on any computer after flashing.
//!
//! # Usage (for `atomprobe image --board uefi`)
//!
//! ```no_run
//! use atomprobe::image::{out_is_dir, uefi};
//! # fn main() -> Result<(), atomprobe::image::ImageError> {
//! # let (x64, aa64) = (vec![0u8; 4], vec![0u8; 4]);
//! # let out = std::path::Path::new("atomprobe-uefi.img");
//! let files = uefi::esp_files(x64, aa64, "probes=fault iters=1k");
//! if out_is_dir(out) {
//!     // `--out DIR/`: the same tree as a folder, for an existing FAT32 stick.
//!     uefi::write_esp_dir(out, &files)?;
//! } else {
//!     let layout = uefi::write_esp_image(out, &files)?;
//!     println!("ESP at byte {} ({} bytes)", layout.partition_start, layout.partition_bytes);
//! }
//! # Ok(()) }
//! ```
//!
//! Errors are [`ImageError`]s: `Input` (bad output path or file name: `atomprobe image` exits 2)
//! or `Build`; `?` turns them into [`crate::RunError`]. The image is written to a temporary file
//! next to `out` and renamed at the end, so a failure leaves no partial image.

use std::path::Path;

use super::disk::{gpt_esp_disk, DiskLayout};
use super::{write_file_atomically, write_tree, BootFile, ImageError};

/// A file on the EFI System Partition (path `/`-separated, relative to the ESP root).
pub type EspFile = BootFile;

/// x86-64 removable-media boot file (UEFI 2.10 table 3-2, machine type x64).
pub const BOOTX64_EFI: &str = "EFI/BOOT/BOOTX64.EFI";
/// AArch64 removable-media boot file (UEFI 2.10 table 3-2, machine type AArch64).
pub const BOOTAA64_EFI: &str = "EFI/BOOT/BOOTAA64.EFI";
/// The boot arguments the UEFI entry reads when the load options are empty.
pub const CMDLINE_TXT: &str = "atomprobe/cmdline.txt";

/// The three files of the stick: both boot files and `atomprobe/cmdline.txt` holding `append`
/// (trimmed, one line ending in a newline).
pub fn esp_files(bootx64: Vec<u8>, bootaa64: Vec<u8>, append: &str) -> Vec<EspFile> {
    vec![
        EspFile::new(BOOTX64_EFI, bootx64),
        EspFile::new(BOOTAA64_EFI, bootaa64),
        EspFile::new(CMDLINE_TXT, format!("{}\n", append.trim())),
    ]
}

/// Write a raw GPT disk image to `out` with one EFI System Partition (FAT32, at 1 MiB, at least
/// 64 MiB) holding `files`; returns where the partition is. Flashable with `dd`, balenaEtcher or
/// Rufus (DD mode). The image is reproducible: the same files give the same bytes.
pub fn write_esp_image(out: &Path, files: &[EspFile]) -> Result<DiskLayout, ImageError> {
    super::check_out_file(out)?;
    let (disk, layout) = gpt_esp_disk(files)?;
    write_file_atomically(out, &disk)?;
    Ok(layout)
}

/// Write `files` as a folder tree under `dir` (created if missing): what goes on an existing
/// FAT32 stick.
pub fn write_esp_dir(dir: &Path, files: &[EspFile]) -> Result<(), ImageError> {
    write_tree(dir, files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esp_image_and_folder_hold_the_same_files() {
        let dir = tempfile::tempdir().unwrap();
        let files = esp_files(b"MZx64".to_vec(), b"MZaa64".to_vec(), "  probes=fault \n");
        assert_eq!(files[2].contents, b"probes=fault\n");
        let img = dir.path().join("u.img");
        let layout = write_esp_image(&img, &files).unwrap();
        let disk = std::fs::read(&img).unwrap();
        assert_eq!(disk.len() as u64, layout.disk_bytes);
        let part = &disk[layout.partition_start as usize..][..layout.partition_bytes as usize];
        let on_fat = super::super::disk::tests::read_fat(part);
        let tree = dir.path().join("tree");
        write_esp_dir(&tree, &files).unwrap();
        for f in &files {
            assert_eq!(on_fat[&f.path], f.contents, "{}", f.path);
            assert_eq!(std::fs::read(tree.join(&f.path)).unwrap(), f.contents);
        }
        assert_eq!(on_fat.len(), 3);
    }
}
