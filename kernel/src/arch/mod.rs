//! Architecture support. Each `arch/<arch>/mod.rs` provides the same set of items, used by
//! generic code (`kmain`, `platform`, `console`):
//!
//! | item | what |
//! |---|---|
//! | `fn apply_config(&mut Config, &mut Vec<ErrorRec>)` | make the configuration effective (MMU, attributes, alignment checking, counters), correcting what cannot apply with an error record |
//! | `fn privilege() -> Privilege` | EL or ring the probes run at |
//! | `fn cpu_id() -> String` | MIDR_EL1 / CPUID vendor-family-model-stepping |
//! | `fn platform_facts() -> BTreeMap<String, String>` | extra `begin.platform` facts |
//! | `fn start_cpus(&Config) -> Vec<probes::record::Cpu>` | start every present core; one record each |
//! | `fn online_cpus() -> usize` | cores that came up (logical indexes `0..n`) |
//! | `fn core_index() -> usize` | logical index of the calling core |
//! | `fn now_ns() -> u64`, `fn cycles() -> Option<u64>` | time since boot; cycle counter |
//! | `fn rule_env(&Config) -> RuleEnv` | facts the verdict rules need |
//! | `fn arena(MemAttr) -> Result<Arena, String>` | the probe arena alias for an attribute |
//! | `fn arena_mapped(MemAttr, &Variant)`, `fn set_variant(&Variant)`, `fn effective_type(MemAttr, &Variant)` | the alias for a mapping combination (`mapping=`, `share=`, `caches=`, `mtrr=`, `granule=`) |
//! | `fn guarded(&mut dyn FnMut()) -> Option<RawFault>` | the fault guard (see `probes::guard`) |
//! | `fn run_on(&[usize], u64, &(dyn Fn(usize) + Sync)) -> Result<(), RunError>` | the cross-core engine |
//! | `fn selftest_unguarded_fault() -> !` | a deliberate unguarded fault (test-only) |
//! | `fn panic_registers() -> String` | register dump for a panic |
//! | `fn halt() -> !` | stop this core for good |

#[cfg(target_arch = "aarch64")]
#[path = "aarch64/mod.rs"]
mod imp;

#[cfg(target_arch = "x86_64")]
#[path = "x86_64/mod.rs"]
mod imp;

pub use imp::*;
