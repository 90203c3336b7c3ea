//! Where the kernel may put what it allocates, decided from the memory banks, the reserved
//! regions and the ranges already in use (image, device tree blob). Pure logic, host-tested; the
//! kernel's boot code feeds it what the DTB (or the board's known layout) says.
//!
//! Raspberry Pi 4: the firmware writes every RAM range into `memory@0` `reg` (one range on the
//! 1 GiB model, several on 2/4/8 GiB ones); the first range ends where the VideoCore's share of
//! the first GiB begins (`gpu_mem`), and the others lie above 1 GiB (some above 4 GiB). The kernel
//! is loaded into the first one, and everything it allocates stays there ([`kernel_bank`]).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// A half-open physical range `[start, end)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Range {
    pub start: u64,
    pub end: u64,
}

impl Range {
    /// `start .. start + len`, saturating at the top of the address space.
    pub fn at(start: u64, len: u64) -> Range {
        Range {
            start,
            end: start.saturating_add(len),
        }
    }

    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    pub fn overlaps(&self, o: &Range) -> bool {
        !self.is_empty() && !o.is_empty() && self.start < o.end && o.start < self.end
    }

    pub fn contains(&self, o: &Range) -> bool {
        o.start >= self.start && o.end <= self.end
    }
}

impl core::fmt::Display for Range {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:#x}+{:#x}", self.start, self.len())
    }
}

/// The RAM bank the kernel allocates from: the bank holding the loaded image. On a Pi 4 that is
/// the first bank, below the VideoCore's share, whatever the model (see the module docs). `None`
/// when no bank holds the whole image (a DTB that does not describe the RAM the kernel runs in).
pub fn kernel_bank(banks: &[Range], image: Range) -> Option<Range> {
    banks.iter().copied().find(|b| b.contains(&image))
}

/// The lowest `align`-aligned start of `size` bytes inside `bank` overlapping none of `busy`,
/// preferring addresses at or above `prefer_from` (e.g. the image's end, so low memory that
/// firmware often uses without saying so stays untouched when there is room elsewhere).
/// `align` must be a power of two.
pub fn place(bank: Range, busy: &[Range], size: u64, align: u64, prefer_from: u64) -> Option<u64> {
    debug_assert!(align.is_power_of_two());
    let up = |a: u64| a.checked_add(align - 1).map(|v| v & !(align - 1));
    let first_fit = |from: u64| -> Option<u64> {
        let mut start = up(from.max(bank.start))?;
        // Each busy range can push the candidate up once; more passes than ranges + 1 mean none fits.
        for _ in 0..=busy.len() {
            let cand = Range {
                start,
                end: start.checked_add(size)?,
            };
            if cand.end > bank.end {
                return None;
            }
            match busy
                .iter()
                .filter(|b| b.overlaps(&cand))
                .map(|b| b.end)
                .max()
            {
                None => return Some(start),
                Some(end) => start = up(end)?,
            }
        }
        None
    };
    first_fit(prefer_from).or_else(|| first_fit(bank.start))
}

/// Up to `N` ranges in a fixed array: for boot code that runs before there is a heap. Ranges
/// past `N` are counted in `dropped`, not stored.
#[derive(Clone, Copy, Debug)]
pub struct RangeList<const N: usize> {
    v: [Range; N],
    n: usize,
    pub dropped: usize,
}

impl<const N: usize> Default for RangeList<N> {
    fn default() -> Self {
        RangeList {
            v: [Range::default(); N],
            n: 0,
            dropped: 0,
        }
    }
}

impl<const N: usize> RangeList<N> {
    pub fn push(&mut self, r: Range) {
        if r.is_empty() {
            return;
        }
        if self.n < N {
            self.v[self.n] = r;
            self.n += 1;
        } else {
            self.dropped += 1;
        }
    }

    pub fn as_slice(&self) -> &[Range] {
        &self.v[..self.n]
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
}

/// A region the kernel uses, by name, for [`check`] and `begin.platform`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Used {
    pub name: &'static str,
    pub range: Range,
}

/// Every conflict among the regions the kernel uses: each must lie in `bank` (except `dtb`,
/// which the loader placed: it must only lie in RAM, i.e. in one of `banks`), must not overlap a
/// reserved region, and no two may overlap unless one is declared inside the other
/// (`nested`: pairs (inner, outer), e.g. the stacks inside the image). Empty = all is well.
pub fn check(
    used: &[Used],
    bank: Range,
    banks: &[Range],
    reserved: &[Range],
    nested: &[(&str, &str)],
) -> Vec<String> {
    let mut out = Vec::new();
    for u in used {
        if u.range.is_empty() {
            continue;
        }
        if u.name == "dtb" {
            if !banks.iter().any(|b| b.contains(&u.range)) {
                out.push(format!("dtb {} is not inside RAM", u.range));
            }
        } else if !bank.contains(&u.range) {
            out.push(format!(
                "{} {} is outside the kernel's RAM bank {bank}",
                u.name, u.range
            ));
        }
        for r in reserved.iter().filter(|r| r.overlaps(&u.range)) {
            out.push(format!(
                "{} {} overlaps reserved memory {r}",
                u.name, u.range
            ));
        }
    }
    for (i, a) in used.iter().enumerate() {
        for b in &used[i + 1..] {
            let declared = nested
                .iter()
                .any(|&(x, y)| (x == a.name && y == b.name) || (x == b.name && y == a.name));
            if a.range.overlaps(&b.range) && !declared {
                out.push(format!(
                    "{} {} overlaps {} {}",
                    a.name, a.range, b.name, b.range
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    /// `memory@0` as the Pi 4 firmware writes it (gpu_mem = 76 MiB: first bank ends at
    /// 0x3b400000), per model. The 2 GiB and larger models add the RAM above 1 GiB; the 8 GiB
    /// model also the RAM above 4 GiB.
    fn pi4(gib: u64) -> Vec<Range> {
        let mut v = vec![Range::at(0, 0x3b40_0000)];
        match gib {
            1 => {}
            2 => v.push(Range::at(0x4000_0000, GIB)),
            4 => v.push(Range::at(0x4000_0000, 0xbc00_0000)),
            8 => {
                v.push(Range::at(0x4000_0000, 0xbc00_0000));
                v.push(Range::at(0x1_0000_0000, 4 * GIB));
            }
            _ => unreachable!(),
        }
        v
    }

    #[test]
    fn pi4_models_use_the_first_bank() {
        let image = Range::at(0x8_0000, 0x20_0000);
        for gib in [1, 2, 4, 8] {
            let banks = pi4(gib);
            // The firmware's order is not promised: the choice must not depend on it.
            let mut reversed = banks.clone();
            reversed.reverse();
            for b in [&banks, &reversed] {
                assert_eq!(
                    kernel_bank(b, image),
                    Some(Range::at(0, 0x3b40_0000)),
                    "{gib} GiB"
                );
            }
            let bank = kernel_bank(&banks, image).unwrap();
            let dtb = Range::at(0x2eff_2000, 0xd000);
            let busy = [image, dtb, Range::at(0, 0x1000)];
            let heap = place(bank, &busy, 16 * MIB, 64 * 1024, image.end).unwrap();
            assert_eq!(heap, 0x28_0000, "{gib} GiB: right after the image");
            assert!(heap + 16 * MIB <= 0x3b40_0000);
        }
    }

    #[test]
    fn image_loaded_elsewhere_still_picks_its_bank() {
        // Loaded at 0x1000000 (kernel_address=), 4 GiB board.
        let image = Range::at(0x100_0000, 0x20_0000);
        assert_eq!(kernel_bank(&pi4(4), image), Some(Range::at(0, 0x3b40_0000)));
        // An image in no bank (memory node describes other RAM): no bank.
        assert_eq!(kernel_bank(&[Range::at(0x4000_0000, GIB)], image), None);
        // Straddling the end of a bank is not "inside".
        assert_eq!(kernel_bank(&[Range::at(0, 0x110_0000)], image), None);
    }

    #[test]
    fn place_skips_busy_ranges_and_respects_the_bank() {
        let bank = Range::at(0, 64 * MIB);
        let image = Range::at(0x8_0000, 0x10_0000);
        // DTB right after the image: the heap goes after the DTB, aligned.
        let dtb = Range::at(0x18_0000, 0x1_0000);
        let h = place(bank, &[image, dtb], 16 * MIB, 64 * 1024, image.end).unwrap();
        assert_eq!(h, 0x19_0000);
        // A reserved region in the way as well.
        let res = Range::at(0x19_0000, 0x100);
        let h = place(bank, &[image, dtb, res], 16 * MIB, 64 * 1024, image.end).unwrap();
        assert_eq!(h, 0x1a_0000);
        // No room above the image: falls back to the lowest free place.
        let small = Range::at(0, 0x40_0000);
        let h = place(small, &[image], 0x20_0000, 64 * 1024, image.end).unwrap();
        assert_eq!(h, 0x18_0000);
        let h = place(small, &[image], 0x28_0000 + 0x1_0000, 64 * 1024, image.end);
        assert_eq!(h, None);
        let h = place(
            small,
            &[Range::at(0x20_0000, 0x20_0000)],
            0x10_0000,
            4096,
            0x20_0000,
        );
        assert_eq!(h, Some(0), "fell back below the preferred start");
        // Nothing fits at all.
        assert_eq!(place(bank, &[bank], 4096, 4096, 0), None);
        // Near the top of the address space: no overflow.
        let top = Range {
            start: u64::MAX - 0x2000,
            end: u64::MAX,
        };
        assert_eq!(place(top, &[], 0x10_0000, 4096, 0), None);
    }

    #[test]
    fn range_list_keeps_what_fits() {
        let mut l = RangeList::<2>::default();
        assert!(l.is_empty());
        l.push(Range::at(0, 0));
        assert!(l.is_empty(), "empty ranges are not kept");
        for i in 0..3 {
            l.push(Range::at(i * 0x1000, 0x1000));
        }
        assert_eq!(
            l.as_slice(),
            [Range::at(0, 0x1000), Range::at(0x1000, 0x1000)]
        );
        assert_eq!(l.dropped, 1);
    }

    #[test]
    fn check_reports_every_conflict() {
        let bank = Range::at(0, 0x3c00_0000);
        let banks = [bank];
        let image = Used {
            name: "image",
            range: Range::at(0x8_0000, 0x10_0000),
        };
        let stacks = Used {
            name: "stacks",
            range: Range::at(0x10_0000, 0x8_0000),
        };
        let heap = Used {
            name: "heap",
            range: Range::at(0x20_0000, 16 * MIB),
        };
        let dtb = Used {
            name: "dtb",
            range: Range::at(0x800_0000, 0x1_0000),
        };
        let reserved = [Range::at(0, 0x1000)];
        let nested = [("stacks", "image")];
        let ok = [image.clone(), stacks.clone(), heap.clone(), dtb.clone()];
        assert!(check(&ok, bank, &banks, &reserved, &nested).is_empty());

        // The heap over the DTB, the image over reserved memory, the dtb outside RAM.
        let bad_heap = Used {
            name: "heap",
            range: Range::at(0x7ff_0000, 16 * MIB),
        };
        let bad_image = Used {
            name: "image",
            range: Range::at(0, 0x10_0000),
        };
        let bad_dtb = Used {
            name: "dtb",
            range: Range::at(0x3c00_0000, 0x1_0000),
        };
        let v = check(
            &[bad_image, stacks.clone(), bad_heap.clone(), dtb],
            bank,
            &banks,
            &reserved,
            &nested,
        );
        assert!(
            v.iter()
                .any(|m| m.contains("image") && m.contains("reserved")),
            "{v:?}"
        );
        assert!(
            v.iter().any(|m| m.starts_with("heap") && m.contains("dtb")),
            "{v:?}"
        );
        let v = check(&[heap, bad_dtb], bank, &banks, &reserved, &nested);
        assert_eq!(v, ["dtb 0x3c000000+0x10000 is not inside RAM"]);
        // Outside the kernel's bank (e.g. allocated in the RAM above 1 GiB).
        let high = Used {
            name: "heap",
            range: Range::at(0x4000_0000, MIB),
        };
        let v = check(&[high], bank, &pi4(2), &reserved, &nested);
        assert_eq!(v.len(), 1);
        assert!(v[0].contains("outside the kernel's RAM bank"), "{v:?}");
        // Undeclared overlap between two kernel regions.
        let v = check(&[image, stacks], bank, &banks, &reserved, &[]);
        assert_eq!(v.len(), 1, "{v:?}");
    }
}
