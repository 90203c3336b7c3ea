//! The Raspberry Pi 4 SD card (issue 11): a raw disk with an MBR and one FAT32 partition (type
//! 0x0c, at 1 MiB) holding what the Pi 4's boot ROM and firmware read: `start4.elf`,
//! `fixup4.dat`, `bcm2711-rpi-4-b.dtb` (see [`super::firmware`]), `config.txt`, `cmdline.txt`
//! and `kernel8.img`. Flashable with `dd`, Raspberry Pi Imager ("Use custom") or balenaEtcher.

use std::path::Path;

use super::disk::{mbr_fat32_disk, DiskLayout};
use super::firmware::{Firmware, FIXUP4_DAT, RPI4_DTB, START4_ELF};
use super::{write_file_atomically, write_tree, BootFile, ImageError};

/// `config.txt` of the card: the repository's boot/rpi4/config.txt, built in so the tool needs
/// no checkout to write a card.
pub const CONFIG_TXT: &str = include_str!("../../../boot/rpi4/config.txt");
/// The kernel file name `config.txt` names (`kernel=kernel8.img`).
pub const KERNEL8_IMG: &str = "kernel8.img";
pub const CMDLINE_TXT: &str = "cmdline.txt";
pub const CONFIG_TXT_NAME: &str = "config.txt";

/// `cmdline.txt` for `append`: one line (the firmware reads the first line only and passes it
/// to the kernel as `/chosen/bootargs`). A line break inside `append` is refused.
pub fn cmdline_txt(append: &str) -> Result<String, ImageError> {
    let a = append.trim();
    if a.contains(['\n', '\r']) {
        return Err(ImageError::Input(format!(
            "--append {append:?}: holds a line break; cmdline.txt is one line (the firmware \
             reads only the first), accepted: space-separated key=value arguments"
        )));
    }
    Ok(format!("{a}\n"))
}

/// The files of the card, in the order they are written.
pub fn rpi4_files(
    kernel8: &[u8],
    fw: &Firmware,
    append: &str,
) -> Result<Vec<BootFile>, ImageError> {
    let mut files = vec![
        BootFile::new(START4_ELF, fw.start4_elf.clone()),
        BootFile::new(FIXUP4_DAT, fw.fixup4_dat.clone()),
        BootFile::new(RPI4_DTB, fw.dtb.clone()),
        BootFile::new(CONFIG_TXT_NAME, CONFIG_TXT),
        BootFile::new(CMDLINE_TXT, cmdline_txt(append)?),
        BootFile::new(KERNEL8_IMG, kernel8.to_vec()),
    ];
    for (path, bytes) in &fw.extras {
        files.push(BootFile::new(path.clone(), bytes.clone()));
    }
    Ok(files)
}

/// Write the SD-card image to `out`: MBR + FAT32 holding `files`.
pub fn write_rpi4_image(out: &Path, files: &[BootFile]) -> Result<DiskLayout, ImageError> {
    super::check_out_file(out)?;
    let (disk, layout) = mbr_fat32_disk(files)?;
    write_file_atomically(out, &disk)?;
    Ok(layout)
}

/// Write the same files into the folder `dir` (for an existing FAT32 card).
pub fn write_rpi4_dir(dir: &Path, files: &[BootFile]) -> Result<(), ImageError> {
    write_tree(dir, files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_is_one_line() {
        assert_eq!(
            cmdline_txt("  probes=fault iters=1k ").unwrap(),
            "probes=fault iters=1k\n"
        );
        assert_eq!(cmdline_txt("").unwrap(), "\n");
        let e = cmdline_txt("a=1\nb=2").unwrap_err();
        assert!(
            matches!(&e, ImageError::Input(m) if m.contains("line break")),
            "{e}"
        );
    }

    #[test]
    fn config_txt_boots_kernel8_in_64_bit() {
        let lines: Vec<&str> = CONFIG_TXT.lines().map(str::trim).collect();
        assert!(lines.contains(&"arm_64bit=1"), "{CONFIG_TXT}");
        assert!(lines.contains(&"kernel=kernel8.img"), "{CONFIG_TXT}");
        assert!(lines.contains(&"enable_uart=1"), "{CONFIG_TXT}");
    }
}
