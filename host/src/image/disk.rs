//! Laying out a raw disk: one FAT32 partition at 1 MiB behind an MBR (Raspberry Pi SD card) or a
//! GPT (UEFI stick, EFI System Partition). The tables are written by [`mbrman`] and [`gpt`], the
//! file system by [`fatfs`]; this module picks sizes, alignment and reproducible identifiers.
//!
//! The whole disk is built in memory (65–66 MiB for the boards here) and handed back as bytes, so
//! the caller writes it in one go ([`super::write_file_atomically`]).

use std::io::{Cursor, Write};

use super::{check_paths, BootFile, ImageError};

const MIB: u64 = 1 << 20;
/// Logical sector size of every image (what SD cards and USB sticks report).
pub const SECTOR: u64 = 512;
/// Start of the partition: 1 MiB, the alignment every current partitioning tool uses (erase
/// blocks of SD cards and flash sticks are a power of two up to 4 MiB; 1 MiB is what
/// sfdisk/parted default to and what Raspberry Pi OS images use for their first partition).
pub const PARTITION_START: u64 = MIB;
/// Smallest partition: 64 MiB. FAT32 needs at least 65525 clusters (Microsoft FAT
/// specification, "FAT type determination"); with 512-byte clusters that is about 33 MiB, so 64
/// MiB is real FAT32 with room for a user's own files, and still quick to flash.
pub const MIN_PARTITION: u64 = 64 * MIB;
/// MBR partition type of a FAT32 partition addressed by LBA.
pub const MBR_TYPE_FAT32_LBA: u8 = 0x0c;
/// Name of the GPT partition (shown by partitioning tools).
pub const ESP_NAME: &str = "EFI System Partition";

/// Where things are on a disk built here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskLayout {
    /// Size of the whole disk image in bytes.
    pub disk_bytes: u64,
    /// Byte offset of the FAT32 partition (mtools: `-i image@@OFFSET`).
    pub partition_start: u64,
    /// Size of the FAT32 partition in bytes.
    pub partition_bytes: u64,
}

/// Partition size for `files`: at least [`MIN_PARTITION`], else their size plus a quarter and 8
/// MiB for the FAT and directories, rounded up to 1 MiB.
pub fn partition_size(files: &[BootFile]) -> u64 {
    let content: u64 = files.iter().map(|f| f.contents.len() as u64).sum();
    let want = content + content / 4 + 8 * MIB;
    want.div_ceil(MIB).max(MIN_PARTITION / MIB) * MIB
}

/// 16 bytes derived from the files (SHA-256 over `tag`, names and contents): the disk signature,
/// GUIDs and volume ID are functions of the content, so the same inputs give the same image bytes
/// (reproducible, and a test can compare two builds).
fn content_id(tag: &str, files: &[BootFile]) -> [u8; 16] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(tag.as_bytes());
    for f in files {
        h.update((f.path.len() as u64).to_le_bytes());
        h.update(f.path.as_bytes());
        h.update((f.contents.len() as u64).to_le_bytes());
        h.update(&f.contents);
    }
    let d = h.finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&d[..16]);
    id
}

/// File times on every volume: 1980-01-01 00:00, the first valid FAT date (Microsoft FAT
/// specification, "Date and Time Formats"). A fixed time keeps images reproducible; without it
/// fatfs (built without chrono) writes the date 0, which decodes to the invalid 1980-00-00.
#[derive(Debug)]
struct FixedTime;

const FAT_EPOCH: fatfs::Date = fatfs::Date {
    year: 1980,
    month: 1,
    day: 1,
};

impl fatfs::TimeProvider for FixedTime {
    fn get_current_date(&self) -> fatfs::Date {
        FAT_EPOCH
    }
    fn get_current_date_time(&self) -> fatfs::DateTime {
        fatfs::DateTime {
            date: FAT_EPOCH,
            time: fatfs::Time {
                hour: 0,
                min: 0,
                sec: 0,
                millis: 0,
            },
        }
    }
}

static FIXED_TIME: FixedTime = FixedTime;

fn build_err(what: &str) -> impl Fn(std::io::Error) -> ImageError + '_ {
    move |e| ImageError::Build(format!("{what}: {e}"))
}

/// Format `part` (the partition's bytes) as FAT32 and write `files` into it.
///
/// `hidden_sectors` is the partition's first LBA, stored in the boot sector's BPB_HiddSec.
/// fatfs 0.3 has no option for it and always writes 0, so it is patched in afterwards (in the
/// boot sector and its backup): the FAT specification defines it as the sectors before the
/// partition, mkfs.fat and Windows set it, and firmware that boots from the volume may read it.
pub fn format_fat32(
    part: &mut [u8],
    hidden_sectors: u32,
    volume_id: u32,
    files: &[BootFile],
) -> Result<(), ImageError> {
    check_paths(files)?;
    let total_sectors = u32::try_from(part.len() as u64 / SECTOR)
        .map_err(|_| ImageError::Build("partition larger than FAT32 can address".into()))?;
    fatfs::format_volume(
        Cursor::new(&mut *part),
        fatfs::FormatVolumeOptions::new()
            .fat_type(fatfs::FatType::Fat32)
            .bytes_per_sector(SECTOR as u16)
            .total_sectors(total_sectors)
            .volume_id(volume_id)
            .volume_label(*b"ATOMPROBE  "),
    )
    .map_err(build_err("formatting the FAT32 volume"))?;
    {
        let fs = fatfs::FileSystem::new(
            Cursor::new(&mut *part),
            fatfs::FsOptions::new().time_provider(&FIXED_TIME),
        )
        .map_err(build_err("opening the new FAT32 volume"))?;
        if fs.fat_type() != fatfs::FatType::Fat32 {
            return Err(ImageError::Build(format!(
                "fatfs made a {:?} volume, want FAT32",
                fs.fat_type()
            )));
        }
        write_files(&fs.root_dir(), files)?;
        fs.unmount()
            .map_err(build_err("closing the FAT32 volume"))?;
    }
    // BPB_HiddSec at byte 0x1c of the boot sector and of its backup (BPB_BkBootSec, sector 6 as
    // fatfs writes it; read back from the BPB at 0x32).
    let backup = u16::from_le_bytes([part[0x32], part[0x33]]) as usize;
    for sector in [0, backup] {
        let at = sector * SECTOR as usize + 0x1c;
        part[at..at + 4].copy_from_slice(&hidden_sectors.to_le_bytes());
    }
    Ok(())
}

fn write_files<T: fatfs::ReadWriteSeek>(
    root: &fatfs::Dir<T>,
    files: &[BootFile],
) -> Result<(), ImageError> {
    for f in files {
        let (dirs, name) = match f.path.rsplit_once('/') {
            Some((d, n)) => (Some(d), n),
            None => (None, f.path.as_str()),
        };
        let dir = match dirs {
            Some(d) => {
                // create_dir opens a directory that already exists; one level at a time.
                let mut dir = root.clone();
                for c in d.split('/') {
                    dir = dir
                        .create_dir(c)
                        .map_err(build_err(&format!("creating folder {d} on FAT")))?;
                }
                dir
            }
            None => root.clone(),
        };
        let what = format!("writing {} on FAT", f.path);
        let mut file = dir.create_file(name).map_err(build_err(&what))?;
        file.truncate().map_err(build_err(&what))?;
        file.write_all(&f.contents).map_err(build_err(&what))?;
        file.flush().map_err(build_err(&what))?;
    }
    Ok(())
}

/// CHS address of `lba` for the MBR's legacy fields, on the usual 255-head, 63-sector
/// geometry; addresses beyond 1023 cylinders get the "use LBA" maximum (1023/254/63).
fn chs(lba: u32) -> mbrman::CHS {
    mbrman::CHS::from_lba_exact(lba, 1023, 255, 63).unwrap_or(mbrman::CHS::new(1023, 254, 63))
}

/// A raw disk: MBR with one FAT32 (LBA, type 0x0c) partition at 1 MiB holding `files`.
pub fn mbr_fat32_disk(files: &[BootFile]) -> Result<(Vec<u8>, DiskLayout), ImageError> {
    let part_bytes = partition_size(files);
    let layout = DiskLayout {
        disk_bytes: PARTITION_START + part_bytes,
        partition_start: PARTITION_START,
        partition_bytes: part_bytes,
    };
    let mut disk = vec![0u8; layout.disk_bytes as usize];
    let id = content_id("mbr", files);
    let first_lba = (PARTITION_START / SECTOR) as u32;
    let sectors = (part_bytes / SECTOR) as u32;
    format_fat32(
        &mut disk[PARTITION_START as usize..],
        first_lba,
        u32::from_le_bytes([id[4], id[5], id[6], id[7]]),
        files,
    )?;
    let mbr_err = |e: mbrman::Error| ImageError::Build(format!("writing the MBR: {e}"));
    let mut dev = Cursor::new(&mut disk[..]);
    let mut mbr = mbrman::MBR::new_from(&mut dev, SECTOR as u32, [id[0], id[1], id[2], id[3]])
        .map_err(mbr_err)?;
    mbr[1] = mbrman::MBRPartitionEntry {
        // Not marked active: the Pi's boot ROM looks for the first FAT partition, and BIOS
        // booting is not what this disk is for.
        boot: mbrman::BOOT_INACTIVE,
        first_chs: chs(first_lba),
        sys: MBR_TYPE_FAT32_LBA,
        last_chs: chs(first_lba + sectors - 1),
        starting_lba: first_lba,
        sectors,
    };
    mbr.write_into(&mut dev).map_err(mbr_err)?;
    Ok((disk, layout))
}

/// A raw disk: GPT (protective MBR, primary and backup header, 128 entries) with one EFI System
/// Partition (FAT32) at 1 MiB holding `files`; 1 MiB at the end holds the backup table.
pub fn gpt_esp_disk(files: &[BootFile]) -> Result<(Vec<u8>, DiskLayout), ImageError> {
    let part_bytes = partition_size(files);
    let layout = DiskLayout {
        disk_bytes: PARTITION_START + part_bytes + MIB,
        partition_start: PARTITION_START,
        partition_bytes: part_bytes,
    };
    let mut disk = vec![0u8; layout.disk_bytes as usize];
    let id = content_id("gpt", files);
    let first_lba = PARTITION_START / SECTOR;
    let last_lba = first_lba + part_bytes / SECTOR - 1;
    let start = PARTITION_START as usize;
    format_fat32(
        &mut disk[start..start + part_bytes as usize],
        first_lba as u32,
        u32::from_le_bytes([id[4], id[5], id[6], id[7]]),
        files,
    )?;
    let gpt_err = |e: gpt::GptError| ImageError::Build(format!("writing the GPT: {e}"));
    let disk_guid = uuid::Builder::from_random_bytes(id).into_uuid();
    let part_guid = uuid::Builder::from_random_bytes(content_id("esp", files)).into_uuid();
    {
        let mut dev = Cursor::new(&mut disk[..]);
        // The gpt crate writes headers and entries but not the protective MBR (UEFI 2.10
        // section 5.2.3), which firmware and tools need to see a GPT disk: write it first.
        let lbas = layout.disk_bytes / SECTOR;
        gpt::mbr::ProtectiveMBR::with_lb_size(u32::try_from(lbas - 1).unwrap_or(u32::MAX))
            .overwrite_lba0(&mut dev)
            .map_err(|e| ImageError::Build(format!("writing the protective MBR: {e}")))?;
        let mut gdisk = gpt::GptConfig::new()
            .writable(true)
            .logical_block_size(gpt::disk::LogicalBlockSize::Lb512)
            .create_from_device(dev, Some(disk_guid))
            .map_err(gpt_err)?;
        let mut parts = std::collections::BTreeMap::new();
        parts.insert(
            1,
            gpt::partition::Partition {
                part_type_guid: gpt::partition_types::EFI,
                part_guid,
                first_lba,
                last_lba,
                flags: 0,
                name: ESP_NAME.into(),
            },
        );
        gdisk.update_partitions(parts).map_err(gpt_err)?;
        gdisk.write().map_err(gpt_err)?;
    }
    Ok((disk, layout))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Read;

    pub(crate) fn sample() -> Vec<BootFile> {
        vec![
            BootFile::new(
                "kernel8.img",
                (0..300_000u32).map(|i| i as u8).collect::<Vec<_>>(),
            ),
            BootFile::new("cmdline.txt", b"probes=fault\n".to_vec()),
            BootFile::new("EFI/BOOT/BOOTX64.EFI", vec![0x4d, 0x5a, 1, 2, 3]),
            BootFile::new("empty.txt", vec![]),
        ]
    }

    /// Read every file of a FAT volume back with fatfs: path → contents.
    pub(crate) fn read_fat(part: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
        fn walk<T: fatfs::ReadWriteSeek>(
            dir: fatfs::Dir<T>,
            prefix: &str,
            out: &mut std::collections::BTreeMap<String, Vec<u8>>,
        ) {
            for e in dir.iter() {
                let e = e.unwrap();
                let name = e.file_name();
                if name == "." || name == ".." {
                    continue;
                }
                let path = format!("{prefix}{name}");
                if e.is_dir() {
                    walk(e.to_dir(), &format!("{path}/"), out);
                } else {
                    let mut v = Vec::new();
                    e.to_file().read_to_end(&mut v).unwrap();
                    out.insert(path, v);
                }
            }
        }
        let fs =
            fatfs::FileSystem::new(Cursor::new(part.to_vec()), fatfs::FsOptions::new()).unwrap();
        assert_eq!(fs.fat_type(), fatfs::FatType::Fat32);
        let mut out = std::collections::BTreeMap::new();
        walk(fs.root_dir(), "", &mut out);
        out
    }

    fn expected(files: &[BootFile]) -> std::collections::BTreeMap<String, Vec<u8>> {
        files
            .iter()
            .map(|f| (f.path.clone(), f.contents.clone()))
            .collect()
    }

    #[test]
    fn mbr_disk_reads_back() {
        let files = sample();
        let (disk, layout) = mbr_fat32_disk(&files).unwrap();
        assert_eq!(disk.len() as u64, layout.disk_bytes);
        assert_eq!(layout.partition_start, 1 << 20);
        assert_eq!(layout.partition_bytes, MIN_PARTITION);
        let mbr = mbrman::MBR::read_from(&mut Cursor::new(&disk), 512).unwrap();
        let used: Vec<_> = mbr.iter().filter(|(_, p)| p.is_used()).collect();
        assert_eq!(used.len(), 1);
        let p = used[0].1;
        assert_eq!((p.sys, p.starting_lba, p.sectors), (0x0c, 2048, 131072));
        assert_eq!(&disk[510..512], &[0x55, 0xaa]);
        let part = &disk[(p.starting_lba as usize * 512)..][..p.sectors as usize * 512];
        // BPB_HiddSec = partition start, in the boot sector and the backup at sector 6.
        assert_eq!(&part[0x1c..0x20], &2048u32.to_le_bytes());
        assert_eq!(
            &part[6 * 512 + 0x1c..6 * 512 + 0x20],
            &2048u32.to_le_bytes()
        );
        assert_eq!(&part[0x52..0x5a], b"FAT32   ");
        assert_eq!(read_fat(part), expected(&files));
        // Same inputs, same bytes.
        assert!(mbr_fat32_disk(&files).unwrap().0 == disk);
    }

    #[test]
    fn gpt_disk_reads_back() {
        let files = sample();
        let (disk, layout) = gpt_esp_disk(&files).unwrap();
        assert_eq!(layout.disk_bytes, 66 << 20);
        let gdisk = gpt::GptConfig::new()
            .writable(false)
            .open_from_device(Cursor::new(disk.clone()))
            .unwrap();
        // Both headers valid (open_from_device checks their CRCs).
        assert!(gdisk.primary_header().is_ok() && gdisk.backup_header().is_ok());
        let parts: Vec<_> = gdisk
            .partitions()
            .values()
            .filter(|p| p.is_used())
            .collect();
        assert_eq!(parts.len(), 1);
        let p = parts[0];
        assert_eq!(p.part_type_guid, gpt::partition_types::EFI);
        assert_eq!((p.first_lba, p.last_lba), (2048, 2048 + 131072 - 1));
        assert_eq!(p.name, ESP_NAME);
        let pmbr =
            gpt::mbr::ProtectiveMBR::from_bytes(&disk[..512], gpt::disk::LogicalBlockSize::Lb512)
                .unwrap();
        assert_eq!(pmbr.partition(0).unwrap().os_type, 0xee);
        let part = &disk[2048 * 512..][..131072 * 512];
        assert_eq!(read_fat(part), expected(&files));
        assert!(gpt_esp_disk(&files).unwrap().0 == disk);
        // Another content, other identifiers.
        let mut other = files.clone();
        other[1].contents = b"probes=tear\n".to_vec();
        let g2 = gpt::GptConfig::new()
            .open_from_device(Cursor::new(gpt_esp_disk(&other).unwrap().0))
            .unwrap();
        assert_ne!(g2.guid(), gdisk.guid());
    }

    #[test]
    fn big_contents_grow_the_partition() {
        let files = vec![BootFile::new("big.bin", vec![7u8; 80 << 20])];
        let size = partition_size(&files);
        assert!(
            size >= (80 << 20) + (8 << 20) && size.is_multiple_of(MIB),
            "{size}"
        );
        assert_eq!(partition_size(&[]), MIN_PARTITION);
    }
}
