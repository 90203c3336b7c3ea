//! The herdtools7 catalogue copies run from their `.litmus` files on the boards `litmus_files`
//! does not cover: the x86-64 catalogue on QEMU pc (4 cores, so the 3- and 4-thread tests run
//! too) and the aarch64 catalogue on QEMU raspi4b (the Raspberry Pi 4 board, cortex-a72). Every
//! file must run (none refused), the report must verify, and no outcome the kinds forbid may be
//! observed except a documented QEMU deviation. And the UEFI boot path (pc-uefi, virt-uefi) runs
//! generated tests too.

mod common;

use std::path::PathBuf;
use std::sync::Mutex;

use atomprobe::litmus_cmd::{run_litmus, LitmusArgs, LitmusBoard};
use atomprobe::Board;
use common::{
    check_litmus_run, check_litmus_verdicts, check_skips_only_for_lse_lrcpc, litmus_records,
    litmus_test_names,
};
use probes::record::{ModelVerdict, Verdict};

/// One QEMU at a time: each board runs 4 vCPUs and the CI host has 2 cores.
static ONE_QEMU: Mutex<()> = Mutex::new(());

fn catalogue(dir: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../probes/tests/fixtures/litmus")
        .join(dir)
}

fn run(dir: &str, board: LitmusBoard) -> atomprobe::litmus_cmd::LitmusRun {
    run_inputs(vec![catalogue(dir)], board, "iters=200")
}

fn run_inputs(
    inputs: Vec<PathBuf>,
    board: LitmusBoard,
    append: &str,
) -> atomprobe::litmus_cmd::LitmusRun {
    let _one = ONE_QEMU.lock().unwrap_or_else(|e| e.into_inner());
    let args = LitmusArgs {
        inputs: inputs.iter().map(|p| p.display().to_string()).collect(),
        board,
        append: Some(append.into()),
        out: None,
        kinds: None,
        output: atomprobe::view::OutputArgs::default(),
        digests: false,
        states: None,
        cpu: None,
        timeout: 300,
    };
    run_litmus(&args).unwrap_or_else(|e| panic!("litmus {inputs:?} on {board:?}: {e}"))
}

#[test]
fn x86_64_catalogue_on_pc() {
    if !common::qemu_present(Board::Pc) {
        return;
    }
    let run = run("x86_64", LitmusBoard::Pc);
    let recs = check_litmus_run(&run);
    let tests = litmus_test_names(&recs);
    assert_eq!(tests.len(), 28, "{tests:?}");
    // 4 cores: every test has a core per thread, so none is skipped.
    for l in &recs {
        assert_ne!(
            l.verdict,
            Verdict::Skipped,
            "{} {}: {:?}",
            l.name,
            l.attr,
            l.reason
        );
    }
    // x86-TSO's signature: SB's relaxed outcome is allowed (and judged so), MP's forbidden.
    let model = |n: &str| recs.iter().find(|l| l.name == n).unwrap().model;
    assert_eq!(model("SB"), ModelVerdict::Allowed);
    assert_eq!(model("MP"), ModelVerdict::Forbidden);
}

#[test]
fn aarch64_catalogue_on_raspi4b() {
    if !common::qemu_present(Board::Raspi4b) {
        return;
    }
    let run = run("aarch64", LitmusBoard::Raspi4b);
    let recs = check_litmus_run(&run);
    let tests = litmus_test_names(&recs);
    assert_eq!(tests.len(), 80);
    // The Pi 4's cortex-a72 has neither FEAT_LSE nor FEAT_LRCPC: only those tests are skipped,
    // saying which feature; everything else ran.
    let ran = check_skips_only_for_lse_lrcpc(&recs);
    assert!(ran >= 40, "{ran} records ran");
}

/// The UEFI boot path (firmware → loader → kernel from the disk image) runs generated tests
/// too, on both architectures: what `image --board uefi --litmus` puts on a USB stick.
#[test]
fn files_on_uefi_boards() {
    for (board, litmus_board, dir) in [
        (Board::PcUefi, LitmusBoard::PcUefi, "x86_64"),
        (Board::VirtUefi, LitmusBoard::VirtUefi, "aarch64"),
    ] {
        if !common::qemu_present(board) {
            continue;
        }
        let files = ["SB.litmus", "MP.litmus"].map(|f| catalogue(dir).join(f));
        let run = run_inputs(files.to_vec(), litmus_board, "iters=500");
        assert!(
            run.finished && run.report.integrity.is_verified(),
            "{board}: {}",
            run.verdict
        );
        let recs = litmus_records(&run.report.records);
        check_litmus_verdicts(&recs);
        for name in ["SB", "MP"] {
            let l = recs.iter().find(|l| l.name == name);
            assert!(
                l.is_some_and(|l| l.verdict != Verdict::Skipped && l.iterations > 0),
                "{board}: {name} did not run: {l:?}"
            );
        }
    }
}
