//! `atomprobe show FILE`: the summary `run`, `host` and `capture` print, for a saved report.

use std::path::PathBuf;

use crate::view::{model::Run, summary};
use crate::RunError;

#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    /// A saved report (record file or serial log).
    pub file: PathBuf,
    /// List every litmus record, not only those with the exists outcome seen or a verdict
    /// other than ok.
    #[arg(long)]
    pub all: bool,
    /// Show a truncated or corrupted report too, under a banner saying it is damaged.
    #[arg(long)]
    pub allow_damaged: bool,
}

/// Run `atomprobe show`; returns the exit status.
pub fn cmd_show(a: ShowArgs) -> Result<i32, RunError> {
    let report = crate::compare::load_report(&a.file)?;
    if !a.allow_damaged {
        if let Some(m) = crate::view::refuse_damaged(&a.file.display().to_string(), &report) {
            eprintln!("atomprobe show: {m}");
            return Ok(crate::cli::EXIT_FAIL);
        }
    }
    let opts = summary::Options { all_litmus: a.all };
    crate::cli::out(format_args!(
        "{}",
        summary::render(&Run::new(&report), Some(&a.file), &opts)
    ));
    Ok(0)
}
