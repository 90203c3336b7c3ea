//! Disk images for real machines (`atomprobe image`): a Raspberry Pi 4 SD card (MBR + FAT32,
//! [`rpi4`]) and a UEFI USB stick (GPT + EFI System Partition, [`uefi`]), each also writable as
//! a plain folder for an existing FAT32 card or stick.
//!
//! Partition tables and FAT come from crates ([`mbrman`], [`gpt`], [`fatfs`]); this module only
//! lays them out ([`disk`]) and writes the result so that no half-written output is ever left
//! behind: a disk image is written to a temporary file in the output's own folder and renamed
//! over the target only when complete ([`write_file_atomically`]).

use std::fmt;
use std::path::{Path, PathBuf};

pub mod disk;
pub mod firmware;
pub mod litmus;
pub mod rpi4;
pub mod uefi;

pub use disk::DiskLayout;

/// One file of a boot volume.
#[derive(Clone, PartialEq, Eq)]
pub struct BootFile {
    /// Path inside the volume, `/`-separated, relative to its root (e.g. `EFI/BOOT/BOOTX64.EFI`).
    pub path: String,
    pub contents: Vec<u8>,
}

impl BootFile {
    pub fn new(path: impl Into<String>, contents: impl Into<Vec<u8>>) -> BootFile {
        BootFile {
            path: path.into(),
            contents: contents.into(),
        }
    }
}

impl fmt::Debug for BootFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BootFile({}, {} bytes)", self.path, self.contents.len())
    }
}

/// Why an image could not be written.
#[derive(Debug, PartialEq, Eq)]
pub enum ImageError {
    /// The user's input is wrong: a missing or invalid firmware file, an output path that cannot
    /// be written, a bad file name. `atomprobe image` exits with status 2.
    Input(String),
    /// Building the image failed for another reason (a partition or FAT library error).
    Build(String),
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageError::Input(m) | ImageError::Build(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ImageError {}

impl From<ImageError> for crate::RunError {
    fn from(e: ImageError) -> Self {
        match e {
            ImageError::Input(m) => crate::RunError::Input(m),
            ImageError::Build(m) => crate::RunError::Image(m),
        }
    }
}

/// Whether `--out` names a folder to write the files into (rather than a disk image): it ends
/// in a path separator (`out/`) or is an existing directory.
pub fn out_is_dir(out: &Path) -> bool {
    let s = out.as_os_str().to_string_lossy();
    s.ends_with(std::path::MAIN_SEPARATOR) || s.ends_with('/') || out.is_dir()
}

/// `atomprobe image`: check the inputs (output path, firmware), build the kernel, write the
/// image or folder, and say what was written.
pub fn cmd_image(a: crate::cli::ImageArgs) -> Result<i32, crate::RunError> {
    use crate::cli::RealBoard;
    match a.board {
        RealBoard::Rpi4 => cmd_image_rpi4(a),
        RealBoard::Uefi => crate::uefi::cmd_image_uefi(a),
    }
}

fn cmd_image_rpi4(a: crate::cli::ImageArgs) -> Result<i32, crate::RunError> {
    use crate::profile::{workspace_root, Board, Profile};
    use probes::litmus::parse::FileArch;
    let as_dir = out_is_dir(&a.out);
    // Bad input first, before the (slow) kernel build.
    if !as_dir {
        check_out_file(&a.out)?;
    }
    // With --litmus the card runs the files' tests: `probes=litmus` first, as `atomprobe litmus`.
    let append = if a.litmus.is_empty() {
        a.append.clone()
    } else {
        crate::litmus_cmd::litmus_append(Some(&a.append))
    };
    let cmdline = rpi4::cmdline_txt(&append)?;
    let root = workspace_root();
    let fw = firmware::locate(a.firmware.as_deref(), root.as_deref())?;
    let (profile, _) = Profile::load(Board::Raspi4b, root.as_deref())?;
    // Every file parsed and translated before the build: no usable test, no image.
    let litmus = if a.litmus.is_empty() {
        None
    } else {
        Some(litmus::ImageLitmus::prepare(
            &a.litmus,
            a.kinds.as_deref(),
            a.states.as_deref(),
            &[FileArch::AArch64],
        )?)
    };
    let elf = match (&a.kernel, &litmus) {
        (Some(k), _) => k.clone(),
        (None, Some(l)) => {
            let root = crate::require_root()?;
            l.build_kernel(&root, FileArch::AArch64, Board::Raspi4b, "image-rpi4")?
                .ok_or_else(|| {
                    crate::RunError::Usage("--litmus: no AArch64 test to build in".into())
                })?
        }
        (None, None) => {
            let root = crate::require_root()?;
            crate::kernel::build_kernel(&root, &profile, !a.debug)?
        }
    };
    let img = crate::kernel::flat_arm64_image(&elf)?;
    let files = rpi4::rpi4_files(&img.bytes, &fw, &append)?;
    if as_dir {
        rpi4::write_rpi4_dir(&a.out, &files)?;
        crate::outln!(
            "wrote the Raspberry Pi 4 boot files into {}:",
            a.out.display()
        );
    } else {
        let layout = rpi4::write_rpi4_image(&a.out, &files)?;
        crate::outln!(
            "wrote {} ({} MiB: MBR, FAT32 partition type 0x0c at byte {}, {} MiB):",
            a.out.display(),
            layout.disk_bytes >> 20,
            layout.partition_start,
            layout.partition_bytes >> 20
        );
    }
    for f in &files {
        crate::outln!(
            "  {:<24} {:>9} bytes  sha256 {}…",
            f.path,
            f.contents.len(),
            &sha256_hex(&f.contents)[..16]
        );
    }
    crate::outln!(
        "firmware from {}; kernel8.img from {} (base {:#x}); cmdline.txt: {}",
        fw.dir.display(),
        elf.display(),
        img.base,
        match cmdline.trim() {
            "" => "(empty: the defaults)",
            c => c,
        }
    );
    if let Some(l) = &litmus {
        crate::outln!("litmus: {}", l.describe(FileArch::AArch64));
        if let Some(r) = l.refused_line() {
            crate::outln!("litmus: {r}");
        }
    }
    if as_dir {
        crate::outln!("copy the folder's contents to the FAT32 partition of an SD card");
    } else {
        crate::outln!(
            "flash it to an SD card (dd, Raspberry Pi Imager \"Use custom\", balenaEtcher): see \
             docs/real-hardware.md"
        );
    }
    crate::outln!(
        "the report comes out on the PL011 UART (GPIO 14/15, pins 8/10, 115200 8N1): \
         `atomprobe capture --port /dev/ttyUSB0`"
    );
    Ok(0)
}

/// Characters FAT long file names cannot hold (Microsoft FAT specification, "FAT Long
/// Directory Entries": the short-name set plus `+,;=[]` is allowed in long names, these are not).
const FAT_FORBIDDEN: &[char] = &['"', '*', ':', '<', '>', '?', '\\', '|'];

/// Check that every path is a relative, `/`-separated path whose components FAT can store, and
/// that no path occurs twice.
pub fn check_paths(files: &[BootFile]) -> Result<(), ImageError> {
    let mut seen = std::collections::BTreeSet::new();
    for f in files {
        let bad = |why: &str| {
            Err(ImageError::Input(format!(
                "file name `{}` in the image: {why} (accepted: a relative path of `/`-separated \
                 names without {} or control characters, e.g. EFI/BOOT/BOOTX64.EFI)",
                f.path,
                FAT_FORBIDDEN.iter().collect::<String>()
            )))
        };
        if f.path.is_empty() || f.path.starts_with('/') {
            return bad("empty or absolute");
        }
        for c in f.path.split('/') {
            if c.is_empty() || c == "." || c == ".." {
                return bad("empty, `.` or `..` component");
            }
            if c.len() > 255 {
                return bad("a name is longer than 255 characters");
            }
            if c.chars()
                .any(|ch| ch.is_control() || FAT_FORBIDDEN.contains(&ch))
            {
                return bad("a name holds a character FAT cannot store");
            }
            if c.ends_with('.') || c.ends_with(' ') {
                return bad("a name ends in `.` or a space");
            }
        }
        // FAT compares names case-insensitively.
        if !seen.insert(f.path.to_ascii_uppercase()) {
            return bad("occurs twice (FAT names are case-insensitive)");
        }
    }
    Ok(())
}

/// The folder `out` is written into, which must exist (it is never created for a disk image:
/// a typo in the folder should fail, not scatter files).
fn parent_dir(out: &Path) -> PathBuf {
    match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Check before any work that `out` can be written as a file: its folder exists and is a folder,
/// and `out` itself is not a directory. Writing can still fail later (no permission, disk full);
/// [`write_file_atomically`] reports that and leaves nothing behind.
pub fn check_out_file(out: &Path) -> Result<(), ImageError> {
    let dir = parent_dir(out);
    if !dir.is_dir() {
        return Err(ImageError::Input(format!(
            "cannot write {}: the folder {} does not exist (create it first, or name an existing \
             folder)",
            out.display(),
            dir.display()
        )));
    }
    if out.is_dir() {
        return Err(ImageError::Input(format!(
            "cannot write the image to {}: it is a folder (for a folder output end --out with `/`)",
            out.display()
        )));
    }
    // Can a file be created there at all? (Removed again at once.)
    tempfile::Builder::new()
        .prefix(".atomprobe-write-check.")
        .tempfile_in(&dir)
        .map_err(|e| {
            ImageError::Input(format!(
                "cannot write {}: no new file can be created in {}: {e}",
                out.display(),
                dir.display()
            ))
        })?;
    Ok(())
}

/// Write `bytes` to `out` so that `out` is either the complete new file or untouched: write a
/// temporary file in the same folder (so the rename stays on one file system), flush it to the
/// device, then rename it over `out`. On any error the temporary file is removed.
pub fn write_file_atomically(out: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    use std::io::Write;
    check_out_file(out)?;
    let dir = parent_dir(out);
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into());
    let cannot = |e: std::io::Error| {
        ImageError::Input(format!(
            "cannot write {} (through a temporary file in {}): {e}",
            out.display(),
            dir.display()
        ))
    };
    // tempfile removes the file when `tmp` is dropped without being persisted.
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".partial")
        .tempfile_in(&dir)
        .map_err(cannot)?;
    tmp.write_all(bytes).map_err(cannot)?;
    tmp.as_file().sync_all().map_err(cannot)?;
    #[cfg(unix)]
    {
        // tempfile creates the file private (0600); an image or boot file is ordinary data.
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(cannot)?;
    }
    tmp.persist(out).map_err(|e| cannot(e.error))?;
    Ok(())
}

/// Write `files` as a folder tree under `dir` (created if missing), each file atomically.
pub fn write_tree(dir: &Path, files: &[BootFile]) -> Result<(), ImageError> {
    check_paths(files)?;
    if dir.exists() && !dir.is_dir() {
        return Err(ImageError::Input(format!(
            "cannot write the files into {}: it exists and is not a folder",
            dir.display()
        )));
    }
    for f in files {
        let path = dir.join(&f.path);
        let parent = parent_dir(&path);
        std::fs::create_dir_all(&parent).map_err(|e| {
            ImageError::Input(format!(
                "cannot create the folder {}: {e}",
                parent.display()
            ))
        })?;
        write_file_atomically(&path, &f.contents)?;
    }
    Ok(())
}

/// SHA-256 of `bytes` as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_outputs_are_recognised() {
        assert!(out_is_dir(Path::new("some/dir/")));
        assert!(out_is_dir(&std::env::temp_dir()));
        assert!(!out_is_dir(Path::new("atomprobe-rpi4.img")));
        assert!(!out_is_dir(Path::new("no/such/dir/x.img")));
    }

    #[test]
    fn bad_paths_are_refused_with_the_name() {
        let f = |p: &str| vec![BootFile::new(p, b"x".to_vec())];
        for ok in ["a.txt", "EFI/BOOT/BOOTX64.EFI", "atomprobe/cmdline.txt"] {
            assert_eq!(check_paths(&f(ok)), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "/abs",
            "a//b",
            "../x",
            "a/./b",
            "a:b",
            "x?",
            "tab\there",
            "dot.",
        ] {
            let e = check_paths(&f(bad)).unwrap_err().to_string();
            assert!(e.contains(&format!("`{bad}`")), "{bad}: {e}");
        }
        let twice = vec![
            BootFile::new("A.txt", vec![]),
            BootFile::new("a.TXT", vec![]),
        ];
        assert!(check_paths(&twice)
            .unwrap_err()
            .to_string()
            .contains("twice"));
    }

    #[test]
    fn atomic_write_replaces_or_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("x.img");
        write_file_atomically(&out, b"one").unwrap();
        write_file_atomically(&out, b"two").unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"two");
        // Missing folder: refused before anything is written.
        let e = write_file_atomically(&dir.path().join("nope/x.img"), b"x").unwrap_err();
        assert!(
            matches!(&e, ImageError::Input(m) if m.contains("does not exist")),
            "{e}"
        );
        // A folder as the target.
        let e = write_file_atomically(dir.path(), b"x").unwrap_err();
        assert!(e.to_string().contains("is a folder"), "{e}");
        // Only x.img is left: no temporary files.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["x.img"]);
    }

    #[cfg(unix)]
    #[test]
    fn unwritable_folder_is_an_input_error_and_leaves_nothing() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
        // As root, permissions do not stop writes: /proc refuses new files for everyone.
        let root_user = std::fs::write(dir.path().join("probe"), b"").is_ok();
        let target = if root_user {
            std::fs::remove_file(dir.path().join("probe")).unwrap();
            PathBuf::from("/proc/atomprobe-test.img")
        } else {
            dir.path().join("x.img")
        };
        let e = write_file_atomically(&target, b"x").unwrap_err();
        assert!(
            matches!(&e, ImageError::Input(m) if m.contains("cannot write") && m.contains(&*target.to_string_lossy())),
            "{e}"
        );
        assert!(!target.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn sha256_of_known_input() {
        // FIPS 180-2 appendix B.1 ("abc").
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
