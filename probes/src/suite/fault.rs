//! Family `fault`: does an access fault, and is that what the architecture requires?
//!
//! For each access form of the architecture ([`crate::ops::fault_cases`]), each selected
//! attribute and each placement (aligned, misaligned within a line, across a line, across a
//! page), the access runs once under the fault guard, on core 0 and on the last online core.
//! `offset` in the record is the byte offset of the access from the start of its cache line.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::cell::UnsafeCell;

use crate::fault::RawFault;
use crate::ops::{fault_cases, FaultCase};
use crate::platform::{Arena, Platform, RuleEnv};
use crate::record::{Probe, ProbeResult, Record, Verdict};
use crate::rules::atomicity::{self, Features};
use crate::rules::{self, Expectation, Placement};

pub fn names() -> Vec<String> {
    let mut v = Vec::new();
    for c in fault_cases() {
        for p in Placement::ALL {
            v.push(name(c, p));
        }
    }
    v
}

fn name(c: &FaultCase, p: Placement) -> String {
    format!("{}-{}-{}", c.op.replace(' ', "-"), c.width, p.name())
}

/// The rule for `case` at `addr` (in `arena`) on this platform: the same rule the `tear`, `excl`
/// and `cost` families judge faults by ([`atomicity::access_fault_expectation`], FEAT_LSE2
/// included).
pub fn expectation(
    case: &FaultCase,
    arena: &Arena,
    addr: usize,
    env: &RuleEnv,
    feat: &Features,
) -> Expectation {
    atomicity::access_fault_expectation(case.access, case.width, addr, arena.attr, env, feat)
}

/// A result slot written by exactly one core inside `run_on` and read after it returned.
struct Slot<T>(UnsafeCell<Option<T>>);
// SAFETY: one role writes the slot while the caller waits in `run_on`, which returns only after
// every role finished (the engine's completion handshake orders the write before the read).
unsafe impl<T: Send> Sync for Slot<T> {}

pub fn run(platform: &dyn Platform) {
    let cfg = platform.config();
    let env = platform.env();
    let feat = super::tear::features(&env);
    let n = platform.cpu_count();
    let mut cores = vec![0usize];
    if n > 1 {
        cores.push(n - 1);
    }
    for attr in cfg.mem_attrs() {
        let arena = match platform.arena(attr) {
            Ok(a) => a,
            Err(reason) => {
                for c in fault_cases() {
                    for p in Placement::ALL {
                        if cfg.selects("fault", &name(c, p)) {
                            platform.emit(&skipped(c, p, attr.name(), &reason, &env));
                        }
                    }
                }
                continue;
            }
        };
        for &core in &cores {
            for c in fault_cases() {
                for p in Placement::ALL {
                    let nm = name(c, p);
                    if !cfg.selects("fault", &nm) {
                        continue;
                    }
                    let off = p.offset_in_arena(c.width, env.line, env.page);
                    if off + (c.width as usize) / 8 > arena.len {
                        platform.emit(&skipped(c, p, attr.name(), "arena too small", &env));
                        continue;
                    }
                    // SAFETY: `off + size <= arena.len` was checked just above.
                    let addr = unsafe { arena.base.add(off) };
                    let exp = expectation(c, &arena, addr as usize, &env, &feat);
                    // Without a fault guard an access that may fault is not attempted.
                    let mut unrun = base_record(c, p, attr.name(), &env);
                    if super::unguarded_skip(platform, &mut unrun, &[("", &exp)]) {
                        platform.emit(&Record::Probe(unrun));
                        continue;
                    }
                    let outcome = attempt(platform, core, c, addr);
                    let rec = match outcome {
                        Ok(fault) => judged(c, p, &arena, core, fault, &env, exp),
                        Err(e) => skipped(c, p, attr.name(), &e, &env),
                    };
                    platform.emit(&rec);
                }
            }
        }
    }
}

/// Run the access on `core` under the guard; `Ok(fault)` or why it could not run.
fn attempt(
    platform: &dyn Platform,
    core: usize,
    c: &FaultCase,
    addr: *mut u8,
) -> Result<Option<RawFault>, String> {
    let addr = addr as usize;
    let once = || {
        let mut op = || {
            // SAFETY: `addr` lies inside the arena with room for the access (checked by the
            // caller) and `guarded` arms the fault guard around this call.
            unsafe { (c.run)(addr as *mut u8) }
        };
        platform.guarded(&mut op)
    };
    if core == 0 {
        return Ok(once());
    }
    let slot: Slot<Option<RawFault>> = Slot(UnsafeCell::new(None));
    let slot_ref = &slot;
    let body = move |_role: usize| {
        let f = once();
        // SAFETY: only this role writes the slot (see `Slot`).
        unsafe { *slot_ref.0.get() = Some(f) };
    };
    platform
        .run_on(&[core], 5_000, &body)
        .map_err(|e| format!("core {core} did not run the probe: {e:?}"))?;
    // SAFETY: `run_on` returned Ok, so the role finished and nothing writes the slot any more.
    let got = unsafe { (*slot.0.get()).take() };
    got.ok_or_else(|| format!("core {core} finished without a result"))
}

fn base_record(c: &FaultCase, p: Placement, attr: &str, env: &RuleEnv) -> Probe {
    Probe {
        family: "fault".into(),
        name: name(c, p),
        attr: attr.into(),
        width: c.width,
        offset: (p.offset_in_arena(c.width, env.line, env.page) % env.line) as u32,
        op: c.op.into(),
        cpus: vec![],
        iterations: 1,
        result: ProbeResult::Skipped,
        counts: BTreeMap::new(),
        expected: String::new(),
        verdict: Verdict::Skipped,
        fault: None,
        rule: String::new(),
        reason: None,
        elapsed_ms: None,
        map: Default::default(),
    }
}

fn skipped(c: &FaultCase, p: Placement, attr: &str, reason: &str, env: &RuleEnv) -> Record {
    let mut r = base_record(c, p, attr, env);
    r.iterations = 0;
    r.reason = Some(reason.to_string());
    Record::Probe(r)
}

fn judged(
    c: &FaultCase,
    p: Placement,
    arena: &Arena,
    core: usize,
    fault: Option<RawFault>,
    env: &RuleEnv,
    exp: Expectation,
) -> Record {
    let mut r = base_record(c, p, arena.attr.name(), env);
    r.cpus = vec![core as u32];
    r.result = if fault.is_some() {
        ProbeResult::Fault
    } else {
        ProbeResult::Ok
    };
    r.verdict = if atomicity::fault_admitted(&exp, fault.as_ref()) {
        Verdict::Ok
    } else {
        Verdict::Deviation
    };
    r.fault = fault.map(|f| f.to_record());
    r.counts.insert("faults".into(), u64::from(fault.is_some()));
    let crosses_line = matches!(p, Placement::CrossLine | Placement::CrossPage);
    if c.access == rules::AccessKind::Locked && crosses_line {
        // A LOCKed access spanning two lines is a split lock (SDM Vol. 3A 9.1.2.2).
        r.counts.insert("split_lock".into(), 1);
    }
    r.expected = exp.text;
    r.rule = exp.rule.into();
    Record::Probe(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attr::{Arch, MemAttr};
    use crate::platform::Privilege;
    use crate::rules::atomicity::{FeatureSource, Vendor};
    use crate::rules::{AccessKind, FaultExpect};

    unsafe fn nop(_: *mut u8) {}

    /// The `fault` family judges by the same rule as `tear`/`excl`/`cost`: with FEAT_LSE2 a
    /// misaligned LDXR within one 16-byte quantity does not fault (Arm ARM B2.5.2,
    /// AArch64.UnalignedAccessFaults); without it, it must.
    #[test]
    fn fault_family_uses_the_shared_lse2_rule() {
        let env = RuleEnv {
            arch: Arch::Aarch64,
            privilege: Privilege::El(1),
            mmu_on: true,
            align_check: false,
            line: 64,
            page: 4096,
            map: crate::mapping::Variant::DEFAULT,
        };
        let arena = Arena {
            base: 0x4000_0000 as *mut u8,
            len: 3 * 4096,
            attr: MemAttr::NormalWb,
        };
        let case = FaultCase {
            op: "ldxr",
            width: 64,
            access: AccessKind::Exclusive,
            run: nop,
        };
        for lse2 in [false, true] {
            let mut feat = Features::unknown(Vendor::Arm, "test");
            feat.lse2 = Some(lse2);
            feat.source = FeatureSource::IdRegisters;
            let addr =
                arena.base as usize + Placement::Misaligned.offset_in_arena(64, env.line, env.page);
            let e = expectation(&case, &arena, addr, &env, &feat);
            let shared = atomicity::access_fault_expectation(
                AccessKind::Exclusive,
                64,
                addr,
                MemAttr::NormalWb,
                &env,
                &feat,
            );
            assert_eq!(e, shared);
            let want = if lse2 {
                FaultExpect::NoFault
            } else {
                FaultExpect::Fault(crate::fault::FaultKind::Alignment)
            };
            assert_eq!(e.expect, want);
        }
    }
}
