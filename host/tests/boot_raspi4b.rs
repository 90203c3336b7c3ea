//! Boot the image on QEMU `raspi4b` (Raspberry Pi 4 B model) and check its report: without a
//! device tree (QEMU's shortcut), with Debian's real `bcm2711-rpi-4-b.dtb` (the firmware's
//! conditions: memory, reserved regions, spin-table CPUs and `/chosen/bootargs` from the DTB),
//! and loaded away from its link address (issue 11).

mod common;

use atomprobe::Board;
use common::{boot, rpi4_dtb, Outcome};

fn with_dtb(opts: &mut atomprobe::RunOpts) {
    opts.qemu_args = vec!["-dtb".into(), rpi4_dtb().display().to_string()];
}

fn platform<'a>(o: &'a Outcome, key: &str) -> &'a str {
    o.begin()
        .platform
        .get(key)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("begin.platform has no {key}{}", o.context()))
}

/// Every region the kernel uses was checked against RAM, reserved memory and the DTB.
fn check_layout(o: &Outcome) {
    let check = platform(o, "memory_check");
    o.check(check.starts_with("ok"), &format!("memory_check: {check}"));
    for key in [
        "image",
        "stacks",
        "heap",
        "arena_pa",
        "kernel_bank",
        "loaded_at",
    ] {
        platform(o, key);
    }
}

#[test]
fn raspi4b_default_run() {
    let Some(o) = boot(Board::Raspi4b, |_| {}) else {
        return;
    };
    let b = o.begin();
    o.check(b.arch == "aarch64", &format!("begin.arch = {}", b.arch));
    o.check(
        b.board == "qemu-raspi4b",
        &format!("begin.board = {}", b.board),
    );
    o.check(b.el == Some(1), &format!("begin.el = {:?}, want 1", b.el));
    // Four Cortex-A72 cores, released from the spin table.
    common::check_cpus_online(&o, 4);
    common::check_aarch64_faults(&o);
    check_layout(&o);
    o.check(
        platform(&o, "memory").ends_with("(board default)"),
        "without a DTB the memory is the board's known layout",
    );
    o.assert_complete();
}

/// Debian's device tree, as the real firmware passes one: the default suite completes, the
/// layout comes from the DTB, and `--append` reaches the kernel through `/chosen/bootargs`.
#[test]
fn raspi4b_debian_dtb_default_suite_and_bootargs() {
    let Some(o) = boot(Board::Raspi4b, |opts| {
        with_dtb(opts);
        opts.append = Some("seed=7".into());
    }) else {
        return;
    };
    let b = o.begin();
    o.check(
        b.cmdline == "seed=7" && b.config.seed == 7,
        &format!(
            "--append must reach the kernel through the DTB's bootargs: cmdline {:?}, seed {}",
            b.cmdline, b.config.seed
        ),
    );
    o.check(
        platform(&o, "dtb").starts_with("0x"),
        "begin.platform.dtb must give the DTB's address",
    );
    // QEMU fills memory@0 with the first 960 MiB (below the VideoCore's share).
    o.check(
        platform(&o, "memory") == "0x0+0x3c000000 (dtb)",
        &format!("memory = {}", platform(&o, "memory")),
    );
    o.check(
        platform(&o, "spin_table_slots") == "0xd8+0x8,0xe0+0x8,0xe8+0x8,0xf0+0x8",
        &format!(
            "spin-table slots from the cpus' cpu-release-addr: {}",
            platform(&o, "spin_table_slots")
        ),
    );
    common::check_cpus_online(&o, 4);
    common::check_aarch64_faults(&o);
    common::check_suite(&o);
    check_layout(&o);
    o.assert_complete();
}

/// Firmware that loads kernel8.img elsewhere: the header's text_offset patched to `off`, so QEMU
/// loads and enters the image there; it moves itself to its link address and completes.
fn run_at_text_offset(off: u64) {
    let Some(o) = boot(Board::Raspi4b, |opts| {
        with_dtb(opts);
        opts.text_offset = Some(off);
        opts.append = Some("probes=fault,excl".into());
    }) else {
        return;
    };
    let loaded = platform(&o, "loaded_at");
    o.check(
        loaded == format!("{off:#x}"),
        &format!("loaded_at = {loaded}, want {off:#x}"),
    );
    common::check_cpus_online(&o, 4);
    common::check_aarch64_faults(&o);
    check_layout(&o);
    o.assert_complete();
}

#[test]
fn raspi4b_loaded_at_0x200000() {
    run_at_text_offset(0x20_0000);
}

#[test]
fn raspi4b_loaded_at_0x1000000() {
    run_at_text_offset(0x100_0000);
}

#[test]
fn raspi4b_nested_fault_stops() {
    common::check_nested_fault(
        Board::Raspi4b,
        &["ESR_EL1 0x96000021", "ELR_EL1", "FAR_EL1"],
        with_dtb,
    );
}
