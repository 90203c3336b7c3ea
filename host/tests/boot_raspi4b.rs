//! Boot the image on QEMU `raspi4b` (Raspberry Pi 4 B model) and check its report.
//!
//! Boot arguments cannot reach the kernel here without a DTB (qemu/README.md), so only the
//! default run is checked.

mod common;

use atomprobe::Board;
use common::boot;

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
    o.assert_complete();
}
