//! The hosted runner of `atomprobe litmus --board host`: built with `ATOMPROBE_LITMUS_GEN`
//! naming the generated module, it runs the `litmus` family (the generated tests) as OS
//! threads and prints the report to stdout. Argument: the boot-argument line (`probes=litmus
//! attrs=wb iters=200 cpus=2`), parsed as the image parses it. Only the probes crate is built
//! for it (not the whole `atomprobe` tool), so a run of new files rebuilds little.

use probes::attr::Arch;
use probes::config::Config;
use probes::hosted::{normal_attr, HostedPlatform};
use probes::platform::Platform;
use probes::record::Record;

fn main() {
    let Some(arch) = Arch::current() else {
        eprintln!("litmus_hosted: runs on x86_64 or aarch64 only");
        std::process::exit(2);
    };
    let mut line = std::env::args().nth(1).unwrap_or_default();
    if !line.split_whitespace().any(|w| w.starts_with("attrs=")) {
        // As `atomprobe host`: the attribute user space gets, unless asked otherwise.
        line = format!("{line} attrs={}", normal_attr(arch).name());
    }
    let line = line.trim().to_string();
    let catalogue = probes::suite::catalogue();
    let known: Vec<(&str, &str)> = catalogue.iter().map(|(f, n)| (*f, n.as_str())).collect();
    let (cfg, errors) = Config::parse(&line, arch, &known);
    let platform = HostedPlatform::new(cfg, &line, Box::new(std::io::stdout()));
    platform.emit_begin();
    for e in &errors {
        platform.emit(&Record::Error(e.clone()));
        eprintln!("litmus_hosted: {}", e.message);
    }
    probes::suite::run(&platform);
    platform.finish();
}
