//! [`probes::platform::Platform`] for bare metal: forwards to the arch modules.

use alloc::string::String;

use probes::attr::MemAttr;
use probes::config::Config;
use probes::fault::RawFault;
use probes::mapping::Variant;
use probes::platform::{Arena, Platform, RuleEnv, RunError};
use probes::record::Record;

use crate::{arch, console, println};

pub struct KernelPlatform {
    cfg: Config,
    env: RuleEnv,
}

impl KernelPlatform {
    pub fn new(cfg: Config) -> Self {
        let env = arch::rule_env(&cfg);
        Self { cfg, env }
    }
}

impl Platform for KernelPlatform {
    fn env(&self) -> RuleEnv {
        self.env
    }

    fn config(&self) -> &Config {
        &self.cfg
    }

    fn cpu_count(&self) -> usize {
        let online = arch::online_cpus();
        match self.cfg.cpus {
            0 => online,
            n => online.min(n as usize),
        }
    }

    fn now_ns(&self) -> u64 {
        arch::now_ns()
    }

    fn cycles(&self) -> Option<u64> {
        arch::cycles()
    }

    fn arena(&self, attr: MemAttr) -> Result<Arena, String> {
        arch::arena(attr)
    }

    fn arena_mapped(&self, attr: MemAttr, v: &Variant) -> Result<Arena, String> {
        arch::arena_mapped(attr, v)
    }

    fn set_variant(&self, v: &Variant) -> Result<(), String> {
        arch::set_variant(v)
    }

    fn effective_type(&self, attr: MemAttr, v: &Variant) -> Option<String> {
        arch::effective_type(attr, v)
    }

    fn arena_window(&self, attr: MemAttr, v: &Variant) -> Result<(*const u8, usize), String> {
        arch::arena_window(attr, v)
    }

    fn guarded(&self, op: &mut dyn FnMut()) -> Option<RawFault> {
        arch::guarded(op)
    }

    fn catches_faults(&self) -> bool {
        // The exception vectors resume every guarded instruction listed in the image's
        // `atomprobe_guard` table (probes::guard).
        true
    }

    fn run_on(
        &self,
        cpus: &[usize],
        timeout_ms: u64,
        body: &(dyn Fn(usize) + Sync),
    ) -> Result<(), RunError> {
        arch::run_on(cpus, timeout_ms, body)
    }

    fn emit(&self, rec: &Record) {
        console::emit(rec)
    }

    fn progress(&self, msg: &str) {
        println!("{msg}");
    }
}
