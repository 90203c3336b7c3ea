//! Secondary cores and the cross-core engine.

use alloc::vec::Vec;

use probes::config::Config;
use probes::platform::RunError;
use probes::record::Cpu;

use super::{cpu_record, mpidr};

/// Rust entry of a secondary core (entry.S), with its logical index.
pub extern "C" fn rust_secondary(_index: usize) -> ! {
    super::halt()
}

pub fn start_cpus(_cfg: &Config) -> Vec<Cpu> {
    alloc::vec![cpu_record(0, mpidr(), true, None)]
}

pub fn online_cpus() -> usize {
    1
}

pub fn run_on(
    cpus: &[usize],
    _timeout_ms: u64,
    body: &(dyn Fn(usize) + Sync),
) -> Result<(), RunError> {
    if let Some(&c) = cpus.iter().find(|&&c| c != 0) {
        return Err(RunError::NoSuchCpu(c));
    }
    for role in 0..cpus.len() {
        body(role);
    }
    Ok(())
}
