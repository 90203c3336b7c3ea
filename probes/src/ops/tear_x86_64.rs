//! x86-64 accesses of the `tear` family (MOV 8–64, MOVDQA/MOVDQU 128, CMPXCHG16B as a 128-bit
//! atomic read), and the CPU features and vendor the verdicts depend on (CPUID).
//!
//! Each access is one small `asm!` block named after its instruction; each instruction that may
//! fault is registered in the fault guard's table with a resume address that sets a status:
//! 0 = done, 1 = faulted, 2 = gave up (a CMPXCHG16B store that never succeeded).

use crate::guard::guard_entry;
use crate::platform::RuleEnv;
use crate::rules::atomicity::{Feature, FeatureSource, Features, Form, Vendor};
use crate::rules::{AccessKind, Placement};
use crate::suite::tear::{Shape, Side, TearCase};

/// Vendor, AVX and CMPXCHG16B from CPUID (usable at every privilege level); whether SSE is
/// enabled from CR0/CR4 at ring 0 on bare metal (an OS always enables it for user space).
pub fn features(env: &RuleEnv) -> Features {
    use core::arch::x86_64::__cpuid;
    #[allow(unused_unsafe)]
    // SAFETY: CPUID exists on every x86-64 processor and only reads identification data.
    let (l0, l1) = unsafe { (__cpuid(0), __cpuid(1)) };
    let mut v = [0u8; 12];
    v[0..4].copy_from_slice(&l0.ebx.to_le_bytes());
    v[4..8].copy_from_slice(&l0.edx.to_le_bytes());
    v[8..12].copy_from_slice(&l0.ecx.to_le_bytes());
    let vendor = Vendor::from_cpuid(core::str::from_utf8(&v).unwrap_or(""));
    Features {
        vendor,
        lse: None,
        lrcpc: None,
        lse2: None,
        // CPUID.01H:ECX bit 28 = AVX, bit 13 = CMPXCHG16B.
        avx: Some(l1.ecx & (1 << 28) != 0),
        cx16: Some(l1.ecx & (1 << 13) != 0),
        sse: sse_enabled(env),
        source: FeatureSource::Cpuid,
    }
}

#[cfg(target_os = "none")]
fn sse_enabled(env: &RuleEnv) -> Option<bool> {
    if env.privilege != crate::platform::Privilege::Ring(0) {
        return None;
    }
    let (cr0, cr4): (u64, u64);
    // SAFETY: reading CR0 and CR4 at ring 0 has no side effects.
    unsafe {
        core::arch::asm!(
            "mov {a}, cr0",
            "mov {b}, cr4",
            a = out(reg) cr0,
            b = out(reg) cr4,
            options(nomem, nostack, preserves_flags)
        );
    }
    // SDM Vol. 3A 2.5 / 13.1: SSE needs CR0.EM (bit 2) = 0 and CR4.OSFXSR (bit 9) = 1, else #UD.
    Some(cr0 & (1 << 2) == 0 && cr4 & (1 << 9) != 0)
}

#[cfg(not(target_os = "none"))]
fn sse_enabled(_env: &RuleEnv) -> Option<bool> {
    Some(true)
}

/// One guarded general-purpose load.
macro_rules! load1 {
    ($name:ident, $ins:literal) => {
        unsafe fn $name(a: *const u8, fallback: u128) -> (u128, u32) {
            let mut v = fallback as u64;
            let mut st: u64 = 0;
            // SAFETY: the caller passes an address in a probe arena with room for the access and
            // has the fault guard armed; a fault resumes at 22, which sets the status and leaves
            // the fallback in `v`.
            unsafe {
                core::arch::asm!(
                    concat!("21: ", $ins),
                    set_status_on_fault!(resume = "22", done = "23"),
                    guard_entry!(fault = "21", resume = "22"),
                    a = in(reg) a,
                    v = inout(reg) v,
                    st = inout(reg) st,
                    options(nostack, preserves_flags)
                );
            }
            (u128::from(v), st as u32)
        }
    };
}

/// One guarded general-purpose store.
macro_rules! store1 {
    ($name:ident, $ins:literal) => {
        unsafe fn $name(a: *mut u8, val: u128) -> u32 {
            let v = val as u64;
            let mut st: u64 = 0;
            // SAFETY: arena address with room for the access, guard armed; a fault resumes at 22.
            unsafe {
                core::arch::asm!(
                    concat!("21: ", $ins),
                    set_status_on_fault!(resume = "22", done = "23"),
                    guard_entry!(fault = "21", resume = "22"),
                    a = in(reg) a,
                    v = in(reg) v,
                    st = inout(reg) st,
                    options(nostack, preserves_flags)
                );
            }
            st as u32
        }
    };
}

/// One guarded 16-byte SSE load (MOVDQA / MOVDQU) through XMM0. No XMM operand is declared (the
/// bare-metal target is soft-float and has no SSE register class): XMM0 is saved to `buf[0..2]`
/// and restored, and the value read goes through `buf[2..4]`.
macro_rules! load128 {
    ($name:ident, $ins:literal) => {
        unsafe fn $name(a: *const u8, fallback: u128) -> (u128, u32) {
            let mut buf = [0u64, 0, fallback as u64, (fallback >> 64) as u64];
            let mut st: u64 = 0;
            // SAFETY: arena address with 16 bytes of room, guard armed; `buf` is 32 writable
            // bytes. A fault (including #UD where SSE is disabled) in any SSE instruction resumes
            // at 22 (status 1, `buf[2..4]` keep the fallback) or, for the restore, after it.
            // XMM0 holds its old value again on every path.
            unsafe {
                core::arch::asm!(
                    "24: movdqu xmmword ptr [{buf}], xmm0",
                    concat!("21: ", $ins),
                    "25: movdqu xmmword ptr [{buf} + 16], xmm0",
                    set_status_on_fault!(resume = "22", done = "23"),
                    "26: movdqu xmm0, xmmword ptr [{buf}]",
                    "27:",
                    guard_entry!(fault = "24", resume = "22"),
                    guard_entry!(fault = "21", resume = "22"),
                    guard_entry!(fault = "25", resume = "22"),
                    guard_entry!(fault = "26", resume = "27"),
                    a = in(reg) a,
                    buf = in(reg) buf.as_mut_ptr(),
                    st = inout(reg) st,
                    options(nostack, preserves_flags)
                );
            }
            (u128::from(buf[2]) | (u128::from(buf[3]) << 64), st as u32)
        }
    };
}

/// One guarded 16-byte SSE store (MOVDQA / MOVDQU) through XMM0, saved and restored as in
/// `load128`; the value comes from `buf[2..4]`.
macro_rules! store128 {
    ($name:ident, $ins:literal) => {
        unsafe fn $name(a: *mut u8, val: u128) -> u32 {
            let mut buf = [0u64, 0, val as u64, (val >> 64) as u64];
            let mut st: u64 = 0;
            // SAFETY: arena address with 16 bytes of room, guard armed; `buf` is 32 writable
            // bytes. A fault in any SSE instruction resumes at 22 or, for the restore, after it;
            // XMM0 holds its old value again on every path.
            unsafe {
                core::arch::asm!(
                    "24: movdqu xmmword ptr [{buf}], xmm0",
                    "25: movdqu xmm0, xmmword ptr [{buf} + 16]",
                    concat!("21: ", $ins),
                    set_status_on_fault!(resume = "22", done = "23"),
                    "26: movdqu xmm0, xmmword ptr [{buf}]",
                    "27:",
                    guard_entry!(fault = "24", resume = "22"),
                    guard_entry!(fault = "25", resume = "22"),
                    guard_entry!(fault = "21", resume = "22"),
                    guard_entry!(fault = "26", resume = "27"),
                    a = in(reg) a,
                    buf = in(reg) buf.as_mut_ptr(),
                    st = inout(reg) st,
                    options(nostack, preserves_flags)
                );
            }
            st as u32
        }
    };
}

load1!(mov8_load, "movzx {v:e}, byte ptr [{a}]");
load1!(mov16_load, "movzx {v:e}, word ptr [{a}]");
load1!(mov32_load, "mov {v:e}, dword ptr [{a}]");
load1!(mov64_load, "mov {v}, qword ptr [{a}]");
store1!(mov8_store, "mov byte ptr [{a}], {v:l}");
store1!(mov16_store, "mov word ptr [{a}], {v:x}");
store1!(mov32_store, "mov dword ptr [{a}], {v:e}");
store1!(mov64_store, "mov qword ptr [{a}], {v}");
load128!(movdqa_load, "movdqa xmm0, xmmword ptr [{a}]");
load128!(movdqu_load, "movdqu xmm0, xmmword ptr [{a}]");
store128!(movdqa_store, "movdqa xmmword ptr [{a}], xmm0");
store128!(movdqu_store, "movdqu xmmword ptr [{a}], xmm0");

/// LOCK CMPXCHG16B with the same value as comparand and replacement: whether or not it matches,
/// RDX:RAX ends up holding the 16 bytes read atomically (SDM Vol. 2A CMPXCHG16B); on a match it
/// writes back the value that was there.
unsafe fn cmpxchg16b_load(a: *const u8, fallback: u128) -> (u128, u32) {
    let mut lo = fallback as u64;
    let mut hi = (fallback >> 64) as u64;
    let mut st: u64 = 0;
    // SAFETY: arena address with 16 bytes of room, guard armed (a misaligned operand raises #GP,
    // which resumes at 22). RBX is reserved by LLVM: it is swapped with `b` around the
    // instruction and restored on both paths. Memory is written only with the value it holds.
    unsafe {
        core::arch::asm!(
            "xchg {b}, rbx",
            "21: lock cmpxchg16b xmmword ptr [{a}]",
            set_status_on_fault!(resume = "22", done = "23"),
            "mov rbx, {b}",
            guard_entry!(fault = "21", resume = "22"),
            a = in(reg) a,
            b = inout(reg) lo => _,
            st = inout(reg) st,
            inout("rax") lo,
            inout("rdx") hi,
            in("rcx") hi,
            options(nostack)
        );
    }
    (u128::from(lo) | (u128::from(hi) << 64), st as u32)
}

/// An atomic 16-byte store: LOCK CMPXCHG16B retried (at most 1000 times) until it replaces
/// whatever is there with `val`. Status 2 = never succeeded.
unsafe fn cmpxchg16b_store(a: *mut u8, val: u128) -> u32 {
    let new_lo = val as u64;
    let new_hi = (val >> 64) as u64;
    let mut st: u64 = 0;
    // SAFETY: arena address with 16 bytes of room, guard armed (#GP on a misaligned operand
    // resumes at 22). RBX is swapped in and restored on every path. The loop is bounded.
    unsafe {
        core::arch::asm!(
            "xchg {b}, rbx",
            "mov {n:e}, 1000",
            "20:",
            "21: lock cmpxchg16b xmmword ptr [{a}]",
            "jz 23f",
            "dec {n:e}",
            "jnz 20b",
            "mov {st:e}, 2",
            set_status_on_fault!(resume = "22", done = "23"),
            "mov rbx, {b}",
            guard_entry!(fault = "21", resume = "22"),
            a = in(reg) a,
            b = inout(reg) new_lo => _,
            n = out(reg) _,
            st = inout(reg) st,
            inout("rax") 0u64 => _,
            inout("rdx") 0u64 => _,
            in("rcx") new_hi,
            options(nostack)
        );
    }
    st as u32
}

const fn side(op: &'static str, form: Form, kind: AccessKind, width: u32) -> Side {
    Side {
        op,
        form,
        kind,
        width,
        needs: None,
    }
}

/// A 16-byte SSE move, which needs SSE enabled.
const fn sse(op: &'static str, form: Form, kind: AccessKind) -> Side {
    Side {
        op,
        form,
        kind,
        width: 128,
        needs: Some(Feature::Sse),
    }
}

const ALL: &[Placement] = &Placement::ALL;
const ALIGNED: &[Placement] = &[Placement::Aligned];
const MOV64_LOAD: Side = side("mov", Form::Mov, AccessKind::Load, 64);
const MOV64_STORE: Side = side("mov", Form::Mov, AccessKind::Store, 64);
const MOV32_STORE: Side = side("mov", Form::Mov, AccessKind::Store, 32);

/// The `tear` family's cases on x86-64.
pub static CASES: &[TearCase] = &[
    TearCase {
        name: "mov-mov-8",
        width: 8,
        shape: Shape::Whole,
        load: side("mov", Form::Mov, AccessKind::Load, 8),
        read: mov8_load,
        store: Some((side("mov", Form::Mov, AccessKind::Store, 8), mov8_store)),
        half: None,
        placements: ALIGNED,
    },
    TearCase {
        name: "mov-mov-16",
        width: 16,
        shape: Shape::Whole,
        load: side("mov", Form::Mov, AccessKind::Load, 16),
        read: mov16_load,
        store: Some((side("mov", Form::Mov, AccessKind::Store, 16), mov16_store)),
        half: None,
        placements: ALL,
    },
    TearCase {
        name: "mov-mov-32",
        width: 32,
        shape: Shape::Whole,
        load: side("mov", Form::Mov, AccessKind::Load, 32),
        read: mov32_load,
        store: Some((MOV32_STORE, mov32_store)),
        half: None,
        placements: ALL,
    },
    TearCase {
        name: "mov-mov-64",
        width: 64,
        shape: Shape::Whole,
        load: MOV64_LOAD,
        read: mov64_load,
        store: Some((MOV64_STORE, mov64_store)),
        half: None,
        placements: ALL,
    },
    TearCase {
        name: "movdqa-movdqa-128",
        width: 128,
        shape: Shape::Whole,
        load: sse("movdqa", Form::MovAligned128, AccessKind::AlignedVector),
        read: movdqa_load,
        store: Some((
            sse("movdqa", Form::MovAligned128, AccessKind::AlignedVector),
            movdqa_store,
        )),
        half: None,
        placements: ALL,
    },
    TearCase {
        name: "movdqu-movdqu-128",
        width: 128,
        shape: Shape::Whole,
        load: sse("movdqu", Form::MovUnaligned128, AccessKind::Load),
        read: movdqu_load,
        store: Some((
            sse("movdqu", Form::MovUnaligned128, AccessKind::Store),
            movdqu_store,
        )),
        half: None,
        placements: ALL,
    },
    TearCase {
        name: "cmpxchg16b-cmpxchg16b-128",
        width: 128,
        shape: Shape::Whole,
        load: Side {
            op: "lock cmpxchg16b",
            form: Form::Locked,
            kind: AccessKind::Cmpxchg16b,
            width: 128,
            needs: Some(Feature::Cx16),
        },
        read: cmpxchg16b_load,
        store: Some((
            Side {
                op: "lock cmpxchg16b",
                form: Form::Locked,
                kind: AccessKind::Cmpxchg16b,
                width: 128,
                needs: Some(Feature::Cx16),
            },
            cmpxchg16b_store,
        )),
        half: None,
        placements: ALL,
    },
    TearCase {
        name: "mov-mov-64-halves",
        width: 64,
        shape: Shape::Halves,
        load: MOV64_LOAD,
        read: mov64_load,
        store: None,
        half: Some((MOV32_STORE, mov32_store)),
        placements: ALL,
    },
];

/// Issue 4 item 6 on x86-64: Go's `atomic.LoadUint64` is a plain MOV; it races 64-bit stores of
/// the whole word and 32-bit stores of its halves.
pub static GO_LOADUINT64: TearCase = TearCase {
    name: "go-loaduint64",
    width: 64,
    shape: Shape::WholeAndHalves,
    load: MOV64_LOAD,
    read: mov64_load,
    store: Some((MOV64_STORE, mov64_store)),
    half: Some((MOV32_STORE, mov32_store)),
    placements: ALL,
};
