//! Reading what the kernel needs from a flattened device tree (the DTB a loader passes in x0):
//! RAM banks, reserved memory, the console UART, CPUs and how to start them, the PSCI conduit
//! and `/chosen/bootargs`. Parsing is `dtoolkit`'s, which walks the FDT_NOP tokens that loaders
//! editing the tree with libfdt leave behind (QEMU raspi4b's `-dtb`, the Pi firmware); fdt 0.1.5
//! panicked on them (issue 11). Nothing here allocates: the kernel reads [`memory`] before its
//! heap exists. Host-tested against Debian's Raspberry Pi 4 DTB and hand-built trees.

use dtoolkit::fdt::{Fdt, FdtNode};
use dtoolkit::standard::NodeStandard;
use dtoolkit::{Node, Property};

use crate::memmap::{Range, RangeList};

/// Call `f` with every `reg` range of `node` (entries that do not fit 64 bits are left out).
pub fn for_each_reg<'a>(node: FdtNode<'a>, mut f: impl FnMut(Range)) {
    if let Ok(Some(it)) = node.reg() {
        for r in it {
            if let (Ok(a), Ok(s)) = (r.address::<u64>(), r.size::<u64>()) {
                f(Range::at(a, s));
            }
        }
    }
}

pub fn first_reg<'a>(node: FdtNode<'a>) -> Option<Range> {
    let mut first = None;
    for_each_reg(node, |r| {
        first.get_or_insert(r);
    });
    first
}

/// A string property (up to its first NUL), borrowed from the blob.
pub fn str_prop<'a>(node: &FdtNode<'a>, name: &str) -> Option<&'a str> {
    let v: &'a [u8] = node.property(name)?.value_as::<&[u8]>().ok()?;
    core::str::from_utf8(v.split(|&b| b == 0).next()?).ok()
}

/// A 1- or 2-cell integer property.
pub fn int_prop(node: &FdtNode<'_>, name: &str) -> Option<u64> {
    let p = node.property(name)?;
    p.value_as::<u64>()
        .ok()
        .or_else(|| p.value_as::<u32>().ok().map(u64::from))
}

pub fn cpu_nodes<'a>(f: Fdt<'a>) -> impl Iterator<Item = FdtNode<'a>> {
    f.find_node("/cpus")
        .into_iter()
        .flat_map(|c| c.children())
        .filter(|c| c.name_without_address() == "cpu")
}

/// What boot needs from the DTB before the heap exists, read without allocating. `CPUS` bounds
/// the spin-table slots kept.
#[derive(Default)]
pub struct DtbMemory<const CPUS: usize> {
    /// `reg` address of the console UART (`/chosen` `stdout-path`, else the first PL011), as
    /// the DTB gives it (a bus address behind `ranges` on the Pi).
    pub uart: Option<u64>,
    /// RAM: every `reg` range of the root's `device_type = "memory"` nodes.
    pub banks: RangeList<16>,
    /// `/memreserve/` entries and `/reserved-memory` children with a fixed `reg`.
    pub reserved: RangeList<32>,
    /// 8 bytes at each spin-table CPU's `cpu-release-addr`.
    pub spin_slots: RangeList<CPUS>,
}

/// Read [`DtbMemory`] from `f`.
pub fn memory<const CPUS: usize>(f: Fdt<'_>) -> DtbMemory<CPUS> {
    let mut m = DtbMemory::default();
    let root = f.root();
    // Console: /chosen stdout-path (a path, or an alias name), else the first PL011.
    let stdout = f
        .find_node("/chosen")
        .and_then(|c| str_prop(&c, "stdout-path"))
        .map(|p| p.split(':').next().unwrap_or(p));
    let stdout_node = stdout.and_then(|p| {
        if p.starts_with('/') {
            f.find_node(p)
        } else {
            f.find_node(str_prop(&f.find_node("/aliases")?, p)?)
        }
    });
    fn find_pl011(n: FdtNode<'_>) -> Option<FdtNode<'_>> {
        if n.is_compatible("arm,pl011") {
            return Some(n);
        }
        n.children().find_map(find_pl011)
    }
    m.uart = stdout_node
        .or_else(|| find_pl011(root))
        .and_then(first_reg)
        .map(|r| r.start);
    // RAM: every node under the root with device_type = "memory".
    for n in root
        .children()
        .filter(|n| str_prop(n, "device_type") == Some("memory"))
    {
        for_each_reg(n, |r| m.banks.push(r));
    }
    // Reserved: /memreserve/ entries and /reserved-memory children with a fixed `reg`.
    for r in f.memory_reservations() {
        m.reserved.push(Range::at(r.address(), r.size()));
    }
    if let Some(rm) = f.find_node("/reserved-memory") {
        for c in rm.children() {
            for_each_reg(c, |r| m.reserved.push(r));
        }
    }
    // Spin-table release slots are firmware memory, whether or not the DTB reserves them.
    for c in cpu_nodes(f) {
        if str_prop(&c, "enable-method") == Some("spin-table") {
            if let Some(a) = int_prop(&c, "cpu-release-addr") {
                m.spin_slots.push(Range::at(a & !7, 8));
            }
        }
    }
    m
}

/// One `/cpus/cpu@*` node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuNode<'a> {
    /// `reg`: the MPIDR affinity fields.
    pub id: u64,
    pub enable_method: Option<&'a str>,
    pub release_addr: Option<u64>,
}

/// Every CPU node with a `reg` (others are left out).
pub fn cpus<'a>(f: Fdt<'a>) -> impl Iterator<Item = CpuNode<'a>> {
    cpu_nodes(f).filter_map(|c| {
        Some(CpuNode {
            id: int_prop(&c, "reg")?,
            enable_method: str_prop(&c, "enable-method"),
            release_addr: int_prop(&c, "cpu-release-addr"),
        })
    })
}

/// `/psci` `method` (`hvc` or `smc`).
pub fn psci_method(f: Fdt<'_>) -> Option<&str> {
    str_prop(&f.find_node("/psci")?, "method")
}

/// `/chosen/bootargs`, trimmed.
pub fn bootargs(f: Fdt<'_>) -> Option<&str> {
    str_prop(&f.find_node("/chosen")?, "bootargs").map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// Debian's Raspberry Pi 4 device tree (host/tests/fixtures/rpi4/README.md): `memory@0`
    /// has an empty `reg` until the firmware fills it.
    const RPI4_DTB: &[u8] = include_bytes!("../../host/tests/fixtures/rpi4/bcm2711-rpi-4-b.dtb");

    /// A minimal FDT writer for the tests (header, memory reservation block, structure block
    /// with FDT_NOP tokens sprinkled in, strings block), per the Devicetree Specification v0.4
    /// chapter 5.
    struct Writer {
        st: Vec<u8>,
        strings: Vec<u8>,
    }

    const BEGIN: u32 = 1;
    const END: u32 = 2;
    const PROP: u32 = 3;
    const NOP: u32 = 4;
    const FDT_END: u32 = 9;

    impl Writer {
        fn new() -> Self {
            Writer {
                st: Vec::new(),
                strings: Vec::new(),
            }
        }
        fn u32(&mut self, v: u32) {
            self.st.extend_from_slice(&v.to_be_bytes());
        }
        fn pad(&mut self) {
            while !self.st.len().is_multiple_of(4) {
                self.st.push(0);
            }
        }
        fn begin(&mut self, name: &str) {
            self.u32(BEGIN);
            self.st.extend_from_slice(name.as_bytes());
            self.st.push(0);
            self.pad();
            self.u32(NOP);
        }
        fn end(&mut self) {
            self.u32(NOP);
            self.u32(END);
        }
        fn prop(&mut self, name: &str, value: &[u8]) {
            let off = self.strings.len() as u32;
            self.strings.extend_from_slice(name.as_bytes());
            self.strings.push(0);
            self.u32(PROP);
            self.u32(value.len() as u32);
            self.u32(off);
            self.st.extend_from_slice(value);
            self.pad();
            self.u32(NOP);
        }
        fn cells(&mut self, name: &str, cells: &[u32]) {
            let v: Vec<u8> = cells.iter().flat_map(|c| c.to_be_bytes()).collect();
            self.prop(name, &v);
        }
        fn str(&mut self, name: &str, s: &str) {
            let mut v = s.as_bytes().to_vec();
            v.push(0);
            self.prop(name, &v);
        }
        fn finish(mut self, reserve: &[(u64, u64)]) -> Vec<u8> {
            self.u32(FDT_END);
            let mut rsv = Vec::new();
            for &(a, s) in reserve.iter().chain(core::iter::once(&(0, 0))) {
                rsv.extend_from_slice(&a.to_be_bytes());
                rsv.extend_from_slice(&s.to_be_bytes());
            }
            let off_rsv = 40u32;
            let off_st = off_rsv + rsv.len() as u32;
            let off_str = off_st + self.st.len() as u32;
            let total = off_str + self.strings.len() as u32;
            let mut out = Vec::new();
            for v in [
                0xd00d_feed,
                total,
                off_st,
                off_str,
                off_rsv,
                17,
                16,
                0,
                self.strings.len() as u32,
                self.st.len() as u32,
            ] {
                out.extend_from_slice(&u32::to_be_bytes(v));
            }
            out.extend_from_slice(&rsv);
            out.extend_from_slice(&self.st);
            out.extend_from_slice(&self.strings);
            out
        }
    }

    /// A Pi 4 tree as the firmware hands it over: root #address-cells 2, #size-cells 1,
    /// `memory@0` with `ranges` banks, spin-table CPUs, a reserved-memory child, bootargs.
    fn pi4_tree(ranges: &[(u64, u32)]) -> Vec<u8> {
        let mut w = Writer::new();
        w.begin("");
        w.cells("#address-cells", &[2]);
        w.cells("#size-cells", &[1]);
        w.begin("chosen");
        w.str("bootargs", " iters=5 seed=3 ");
        w.str("stdout-path", "serial1:115200n8");
        w.end();
        w.begin("aliases");
        w.str("serial1", "/soc/serial@7e201000");
        w.end();
        w.begin("soc");
        w.cells("#address-cells", &[1]);
        w.cells("#size-cells", &[1]);
        w.begin("serial@7e201000");
        w.str("compatible", "arm,pl011");
        w.cells("reg", &[0x7e20_1000, 0x200]);
        w.end();
        w.end();
        w.begin("memory@0");
        w.str("device_type", "memory");
        let reg: Vec<u32> = ranges
            .iter()
            .flat_map(|&(a, s)| [(a >> 32) as u32, a as u32, s])
            .collect();
        w.cells("reg", &reg);
        w.end();
        w.begin("reserved-memory");
        w.cells("#address-cells", &[2]);
        w.cells("#size-cells", &[1]);
        w.begin("linux,cma");
        w.cells("size", &[0x400_0000]); // dynamic: no reg, not a fixed region
        w.end();
        w.begin("nvram@3b3fe000");
        w.cells("reg", &[0, 0x3b3f_e000, 0x2000]);
        w.end();
        w.end();
        w.begin("cpus");
        w.cells("#address-cells", &[1]);
        w.cells("#size-cells", &[0]);
        for (i, slot) in [0xd8u32, 0xe0, 0xe8, 0xf0].iter().enumerate() {
            w.begin(&alloc::format!("cpu@{i}"));
            w.str("device_type", "cpu");
            w.cells("reg", &[i as u32]);
            w.str("enable-method", "spin-table");
            w.cells("cpu-release-addr", &[0, *slot]);
            w.end();
        }
        w.end();
        w.end();
        w.finish(&[(0, 0x1000)])
    }

    #[test]
    fn firmware_written_multi_range_memory_node() {
        // 1, 2, 4 and 8 GiB boards (gpu_mem=76: the first bank ends at 0x3b400000).
        let layouts: [&[(u64, u32)]; 4] = [
            &[(0, 0x3b40_0000)],
            &[(0, 0x3b40_0000), (0x4000_0000, 0x4000_0000)],
            &[(0, 0x3b40_0000), (0x4000_0000, 0xbc00_0000)],
            &[
                (0, 0x3b40_0000),
                (0x4000_0000, 0xbc00_0000),
                (0x1_0000_0000, 0x8000_0000),
                (0x1_8000_0000, 0x8000_0000),
            ],
        ];
        for ranges in layouts {
            let blob = pi4_tree(ranges);
            let f = Fdt::new(&blob).expect("hand-built tree parses");
            let m: DtbMemory<4> = memory(f);
            let want: Vec<Range> = ranges
                .iter()
                .map(|&(a, s)| Range::at(a, u64::from(s)))
                .collect();
            assert_eq!(m.banks.as_slice(), want.as_slice());
            // The kernel's bank is the first, below the VideoCore's share.
            let image = Range::at(0x8_0000, 0x10_0000);
            assert_eq!(
                crate::memmap::kernel_bank(m.banks.as_slice(), image),
                Some(Range::at(0, 0x3b40_0000))
            );
            assert_eq!(
                m.reserved.as_slice(),
                [Range::at(0, 0x1000), Range::at(0x3b3f_e000, 0x2000)]
            );
            assert_eq!(
                m.spin_slots.as_slice(),
                [
                    Range::at(0xd8, 8),
                    Range::at(0xe0, 8),
                    Range::at(0xe8, 8),
                    Range::at(0xf0, 8)
                ]
            );
            // stdout-path names an alias; its reg is the VideoCore bus address.
            assert_eq!(m.uart, Some(0x7e20_1000));
            assert_eq!(bootargs(f), Some("iters=5 seed=3"));
            let c: Vec<CpuNode> = cpus(f).collect();
            assert_eq!(c.len(), 4);
            assert_eq!(
                c[2],
                CpuNode {
                    id: 2,
                    enable_method: Some("spin-table"),
                    release_addr: Some(0xe8)
                }
            );
            assert_eq!(psci_method(f), None);
        }
    }

    #[test]
    fn debian_rpi4_dtb_before_the_firmware_fills_it() {
        let f = Fdt::new(RPI4_DTB).expect("Debian's bcm2711-rpi-4-b.dtb parses");
        let m: DtbMemory<8> = memory(f);
        // memory@0's reg is empty until the firmware (or QEMU) writes it.
        assert!(m.banks.is_empty(), "{:?}", m.banks.as_slice());
        let c: Vec<CpuNode> = cpus(f).collect();
        assert_eq!(c.len(), 4);
        for (i, cpu) in c.iter().enumerate() {
            assert_eq!(cpu.id, i as u64);
            assert_eq!(cpu.enable_method, Some("spin-table"));
            assert_eq!(cpu.release_addr, Some(0xd8 + 8 * i as u64));
        }
        assert_eq!(m.spin_slots.as_slice().len(), 4);
        // stdout-path = "serial1:115200n8", and Debian's (upstream Linux's) serial1 is the mini
        // UART (bus address 0x7e215040): why board/rpi4 keeps its fixed PL011 UART0 instead.
        assert_eq!(m.uart, Some(0x7e21_5040));
    }

    #[test]
    fn spin_slots_beyond_the_bound_are_counted() {
        let blob = pi4_tree(&[(0, 0x3c00_0000)]);
        let f = Fdt::new(&blob).unwrap();
        let m: DtbMemory<2> = memory(f);
        assert_eq!(m.spin_slots.as_slice().len(), 2);
        assert_eq!(m.spin_slots.dropped, 2);
    }
}
