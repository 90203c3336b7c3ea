//! `atomprobe report FILE... --html OUT.html`: the HTML report of one or more saved reports
//! (`crate::report_html`).

use std::path::PathBuf;

use crate::compare::{labels, load_report, Input};
use crate::RunError;

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// One or more saved reports (record files or serial logs); several are shown side by side.
    #[arg(value_name = "REPORT", required = true)]
    pub files: Vec<PathBuf>,
    /// Write the self-contained HTML page here.
    #[arg(long, value_name = "OUT.html", required = true)]
    pub html: PathBuf,
    /// Render truncated or corrupted reports too, under a banner saying they are damaged.
    #[arg(long)]
    pub allow_damaged: bool,
}

/// Run `atomprobe report`; returns the exit status.
pub fn cmd_report(a: ReportArgs) -> Result<i32, RunError> {
    let mut inputs = Vec::new();
    for (label, path) in labels(a.files.len()).into_iter().zip(&a.files) {
        inputs.push(Input {
            label,
            name: path.display().to_string(),
            report: load_report(path)?,
        });
    }
    if !a.allow_damaged {
        let bad: Vec<String> = inputs
            .iter()
            .filter_map(|i| crate::view::refuse_damaged(&i.name, &i.report))
            .collect();
        if !bad.is_empty() {
            for m in bad {
                eprintln!("atomprobe report: {m}");
            }
            return Ok(crate::cli::EXIT_FAIL);
        }
    }
    let html = crate::report_html::render(&inputs);
    crate::view::save_file(&a.html, &html)?;
    eprintln!(
        "atomprobe report: wrote {} ({} report{}, {} bytes)",
        a.html.display(),
        inputs.len(),
        if inputs.len() == 1 { "" } else { "s" },
        html.len()
    );
    Ok(0)
}
