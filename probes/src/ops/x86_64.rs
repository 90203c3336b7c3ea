//! x86-64 probe instructions. Every access that may fault is one `asm!` block with the faulting
//! instruction between labels `21:` and `22:`, registered in the fault guard's table (see
//! [`crate::guard`]; two-digit labels because LLVM reads `1b`/`0b` as binary literals on x86).
//!
//! `op` names use spaces (the `fault` family turns them into dashes for probe names); no commas,
//! so names stay usable in `probes=` lists.

use core::arch::asm;

use super::FaultCase;
use crate::guard::guard_entry;
use crate::rules::AccessKind;

/// One guarded instruction: `$insn` gets the guard labels and table entry around it.
macro_rules! guarded_asm {
    ($insn:literal, $($rest:tt)*) => {
        asm!(
            concat!("21: ", $insn),
            "22:",
            guard_entry!(fault = "21", resume = "22"),
            $($rest)*
        )
    };
}

/// `mov r, m` (load).
unsafe fn mov_load_16(addr: *mut u8) {
    // SAFETY: the caller guarantees `addr` is in the arena with the guard armed (FaultCase::run).
    unsafe {
        guarded_asm!("mov {v:x}, word ptr [{a}]", a = in(reg) addr, v = out(reg) _, options(nostack, readonly, preserves_flags))
    }
}
unsafe fn mov_load_32(addr: *mut u8) {
    // SAFETY: as for `mov_load_16`.
    unsafe {
        guarded_asm!("mov {v:e}, dword ptr [{a}]", a = in(reg) addr, v = out(reg) _, options(nostack, readonly, preserves_flags))
    }
}
unsafe fn mov_load_64(addr: *mut u8) {
    // SAFETY: as for `mov_load_16`.
    unsafe {
        guarded_asm!("mov {v}, qword ptr [{a}]", a = in(reg) addr, v = out(reg) _, options(nostack, readonly, preserves_flags))
    }
}

/// `mov m, r` (store of zero).
unsafe fn mov_store_16(addr: *mut u8) {
    // SAFETY: as for `mov_load_16`; the arena is scratch memory, any value may be stored.
    unsafe {
        guarded_asm!("mov word ptr [{a}], {v:x}", a = in(reg) addr, v = in(reg) 0u64, options(nostack, preserves_flags))
    }
}
unsafe fn mov_store_32(addr: *mut u8) {
    // SAFETY: as for `mov_store_16`.
    unsafe {
        guarded_asm!("mov dword ptr [{a}], {v:e}", a = in(reg) addr, v = in(reg) 0u64, options(nostack, preserves_flags))
    }
}
unsafe fn mov_store_64(addr: *mut u8) {
    // SAFETY: as for `mov_store_16`.
    unsafe {
        guarded_asm!("mov qword ptr [{a}], {v}", a = in(reg) addr, v = in(reg) 0u64, options(nostack, preserves_flags))
    }
}

/// `lock cmpxchg m, r`: compare with RAX (0), store 0 if equal.
unsafe fn lock_cmpxchg_16(addr: *mut u8) {
    // SAFETY: as for `mov_store_16`.
    unsafe {
        guarded_asm!("lock cmpxchg word ptr [{a}], {n:x}", a = in(reg) addr, n = in(reg) 0u64, inout("rax") 0u64 => _, options(nostack))
    }
}
unsafe fn lock_cmpxchg_32(addr: *mut u8) {
    // SAFETY: as for `mov_store_16`.
    unsafe {
        guarded_asm!("lock cmpxchg dword ptr [{a}], {n:e}", a = in(reg) addr, n = in(reg) 0u64, inout("rax") 0u64 => _, options(nostack))
    }
}
unsafe fn lock_cmpxchg_64(addr: *mut u8) {
    // SAFETY: as for `mov_store_16`.
    unsafe {
        guarded_asm!("lock cmpxchg qword ptr [{a}], {n}", a = in(reg) addr, n = in(reg) 0u64, inout("rax") 0u64 => _, options(nostack))
    }
}

/// 128-bit vector loads. The instruction names XMM0 directly and saves/restores it on the stack
/// around the access: on soft-float targets (x86_64-unknown-none) `xmm_reg` operands are not
/// available, and on hosted targets the compiler may hold a value in XMM0. The restore runs
/// after the guard's resume point, so it also runs when the load faulted.
unsafe fn movdqu_load_128(addr: *mut u8) {
    // SAFETY: as for `mov_load_16`; XMM0 is saved on the stack and restored (the block does not
    // declare `nostack`, so the compiler keeps nothing in a red zone below RSP across it).
    unsafe {
        asm!(
            "sub rsp, 16",
            "movdqu xmmword ptr [rsp], xmm0",
            "21: movdqu xmm0, xmmword ptr [{a}]",
            "22:",
            guard_entry!(fault = "21", resume = "22"),
            "movdqu xmm0, xmmword ptr [rsp]",
            "add rsp, 16",
            a = in(reg) addr,
            options(preserves_flags)
        )
    }
}
unsafe fn movdqa_load_128(addr: *mut u8) {
    // SAFETY: as for `movdqu_load_128`.
    unsafe {
        asm!(
            "sub rsp, 16",
            "movdqu xmmword ptr [rsp], xmm0",
            "21: movdqa xmm0, xmmword ptr [{a}]",
            "22:",
            guard_entry!(fault = "21", resume = "22"),
            "movdqu xmm0, xmmword ptr [rsp]",
            "add rsp, 16",
            a = in(reg) addr,
            options(preserves_flags)
        )
    }
}

/// `lock cmpxchg16b m128`: compare RDX:RAX (0:0) with the operand, store RCX:RBX (0:0) if equal.
/// LLVM reserves RBX, so it is swapped in and out around the access (the swap back runs after
/// the guard's resume point).
unsafe fn lock_cmpxchg16b_128(addr: *mut u8) {
    // SAFETY: as for `mov_store_16`; RBX is restored before the block ends.
    unsafe {
        asm!(
            "xchg {b}, rbx",
            "21: lock cmpxchg16b xmmword ptr [{a}]",
            "22:",
            guard_entry!(fault = "21", resume = "22"),
            "xchg {b}, rbx",
            a = in(reg) addr,
            b = inout(reg) 0u64 => _,
            inout("rax") 0u64 => _,
            inout("rdx") 0u64 => _,
            in("rcx") 0u64,
            options(nostack)
        )
    }
}

pub static FAULT_CASES: &[FaultCase] = &[
    FaultCase {
        op: "mov load",
        width: 16,
        access: AccessKind::Load,
        run: mov_load_16,
    },
    FaultCase {
        op: "mov load",
        width: 32,
        access: AccessKind::Load,
        run: mov_load_32,
    },
    FaultCase {
        op: "mov load",
        width: 64,
        access: AccessKind::Load,
        run: mov_load_64,
    },
    FaultCase {
        op: "mov store",
        width: 16,
        access: AccessKind::Store,
        run: mov_store_16,
    },
    FaultCase {
        op: "mov store",
        width: 32,
        access: AccessKind::Store,
        run: mov_store_32,
    },
    FaultCase {
        op: "mov store",
        width: 64,
        access: AccessKind::Store,
        run: mov_store_64,
    },
    FaultCase {
        op: "lock cmpxchg",
        width: 16,
        access: AccessKind::Locked,
        run: lock_cmpxchg_16,
    },
    FaultCase {
        op: "lock cmpxchg",
        width: 32,
        access: AccessKind::Locked,
        run: lock_cmpxchg_32,
    },
    FaultCase {
        op: "lock cmpxchg",
        width: 64,
        access: AccessKind::Locked,
        run: lock_cmpxchg_64,
    },
    FaultCase {
        op: "movdqu load",
        width: 128,
        access: AccessKind::Load,
        run: movdqu_load_128,
    },
    FaultCase {
        op: "movdqa load",
        width: 128,
        access: AccessKind::AlignedVector,
        run: movdqa_load_128,
    },
    FaultCase {
        op: "lock cmpxchg16b",
        width: 128,
        access: AccessKind::Cmpxchg16b,
        run: lock_cmpxchg16b_128,
    },
];
