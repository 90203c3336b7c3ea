// atomprobe aarch64 entry from the UEFI loader (board uefi). Included by
// kernel/src/board/uefi/aarch64.rs through global_asm! (no operands; no braces in this file).
//
// The loader has called ExitBootServices and branches here at the EL UEFI runs at (EL2 or EL1;
// UEFI 2.10 2.3.6: identity-mapped, MMU and caches on, interrupts masked by the loader) with
// x0 = the handover block. It has cleaned the kernel image and the handover block to the point
// of coherency, so both are in memory, not only in the caches. We turn this EL's MMU and caches
// off (Arm ARM D8.2.11: with SCTLR_ELx.M = 0 accesses are Device-nGnRnE, instruction fetches
// Normal non-cacheable), drop every TLB entry and instruction-cache line the firmware left, and
// continue at the shared entry (_start in entry.S): EL2 -> EL1, BSS, stacks, vectors, Rust
// (board::uefi_primary via rust_primary, x0 = handover).

    .section .text.boot, "ax"
    .global uefi_start
uefi_start:
    msr     daifset, #0xf
    mov     x19, x0
    mrs     x1, CurrentEL
    lsr     x1, x1, #2
    and     x1, x1, #3
    cmp     x1, #2
    b.eq    1f
    // EL1
    mrs     x2, sctlr_el1
    bic     x2, x2, #1              // M
    bic     x2, x2, #(1 << 2)       // C
    bic     x2, x2, #(1 << 12)      // I
    msr     sctlr_el1, x2
    isb
    tlbi    vmalle1
    b       2f
1:  // EL2
    mrs     x2, sctlr_el2
    bic     x2, x2, #1
    bic     x2, x2, #(1 << 2)
    bic     x2, x2, #(1 << 12)
    msr     sctlr_el2, x2
    isb
    tlbi    alle2
    tlbi    vmalle1
2:
    dsb     sy
    ic      iallu
    dsb     sy
    isb
    mov     x0, x19
    b       _start
