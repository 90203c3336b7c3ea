// atomprobe aarch64 entry: arm64 Image header, EL2 -> EL1 drop, FP/SIMD enable, BSS, stacks,
// exception vectors. Shared by every aarch64 board (QEMU virt, Raspberry Pi 4).
//
// Included by kernel/src/arch/aarch64/boot.rs through global_asm!, which supplies the operands
// in braces (Rust symbols and constants). This file must therefore contain no other braces.
//
// Register use on entry: x0 = DTB address (arm64 boot protocol; 0 or 0x100 when none).

    .section .text.boot, "ax"
    .global _start
_start:
    // arm64 Image header (Linux Documentation/arch/arm64/booting.rst), 64 bytes.
    b       primary_entry           // code0: branch to the real entry
    .long   0                       // code1
    .quad   0x80000                 // text_offset: loaded at RAM base + 0x80000
    .quad   __image_size            // image_size: whole image including .bss
    .quad   0x2                     // flags: little-endian, 4 KiB pages, 2 MiB-aligned base
    .quad   0                       // res2
    .quad   0                       // res3
    .quad   0                       // res4
    .ascii  "ARM\x64"               // magic
    .long   0                       // res5

// ---- Boot core ------------------------------------------------------------------------------
primary_entry:
    mov     x19, x0                 // DTB address, kept for Rust
    mrs     x20, CurrentEL
    lsr     x20, x20, #2            // entry exception level, reported in begin.platform
    and     x20, x20, #3
    cmp     x20, #3
    b.eq    park                    // EL3 entry (a plain ELF on raspi4b): not supported

    // Loaded where the image is linked? Firmware loads kernel8.img at 0x80000 or 0x200000 or
    // wherever config.txt's kernel_address= says (QEMU at RAM base + the header's text_offset).
    // Until the image runs at its link address only PC-relative code may run here: ADR gives
    // the run-time address, the literal holds the link-time one.
    adr     x21, _start             // where the loader put the image
    ldr     x22, =_start            // where it is linked
    cmp     x21, x22
    b.eq    relocated
    ldr     x23, =__bss_start
    sub     x23, x23, x22           // bytes with file contents (4 KiB multiple, see image.ld)
    ldr     x24, =__image_end       // the whole image at its link address ends here (.bss too)
    // The file contents' destination must not overlap where they were loaded (the copy loop
    // runs from there and reads ahead of its writes), nor the DTB (x19, when it holds the FDT
    // magic). Only the file contents count against the load address: .bss is zeroed after the
    // jump to the link address, when the loaded copy is no longer used (so a 0x200000 load of an
    // image linked at 0x80000 works while the file is under 1.5 MiB, whatever .bss holds). The
    // DTB must clear .bss too: that check uses the whole image's end (x24).
    add     x1, x21, x23
    add     x2, x22, x23
    cmp     x21, x2
    b.hs    1f
    cmp     x1, x22
    b.hi    move_overlaps_image
1:  cbz     x19, 2f
    tst     x19, #7
    b.ne    2f
    ldr     w1, [x19]
    movz    w2, #0x0dd0             // 0xd00dfeed read little-endian
    movk    w2, #0xedfe, lsl #16
    cmp     w1, w2
    b.ne    2f
    ldr     w1, [x19, #4]           // totalsize, big-endian
    rev     w1, w1
    add     x1, x19, x1
    cmp     x19, x24
    b.hs    2f
    cmp     x1, x22
    b.hi    move_overlaps_dtb
2:  // Copy the file contents to the link address, 16 bytes at a time (no overlap: see above).
    mov     x0, x21
    mov     x1, x22
    mov     x2, x23
3:  ldp     x3, x4, [x0], #16
    stp     x3, x4, [x1], #16
    subs    x2, x2, #16
    b.hi    3b
    // The data side runs with the MMU and caches off (boot protocol), so the stores are in
    // memory; drop any instruction-cache line that still holds the old destination contents.
    dsb     sy
    ic      iallu
    dsb     sy
    isb
    ldr     x0, =relocated
    br      x0

move_overlaps_image:
    adr     x0, msg_overlaps_image
    b       early_fail
move_overlaps_dtb:
    adr     x0, msg_overlaps_dtb
early_fail:
    bl      early_puts
    b       park

// Print the NUL-terminated string at x0 on the board's PL011 (early_uart), polling FR.TXFF.
// Position-independent; clobbers x0-x3.
early_puts:
    ldr     x1, ={early_uart}
4:  ldrb    w2, [x0], #1
    cbz     w2, 6f
5:  ldr     w3, [x1, #0x18]
    tbnz    w3, #5, 5b
    str     w2, [x1]
    b       4b
6:  ret

msg_overlaps_image:
    .asciz  "\r\natomprobe: loaded too close below/above its link address to move there (the two copies would overlap); load it at its link address or at least the image file's size away. Parked.\r\n"
msg_overlaps_dtb:
    .asciz  "\r\natomprobe: the device tree lies where the image must move to (its link address); load the DTB elsewhere. Parked.\r\n"
    .balign 4
    .ltorg

relocated:
    bl      el2_to_el1
    msr     tpidr_el1, xzr          // logical core index 0
    bl      el1_common

    // Zero .bss (16-byte aligned at both ends, see image.ld).
    adrp    x0, __bss_start
    add     x0, x0, :lo12:__bss_start
    adrp    x1, __bss_end
    add     x1, x1, :lo12:__bss_end
1:  cmp     x0, x1
    b.hs    2f
    stp     xzr, xzr, [x0], #16
    b       1b
2:
    // Stack: the first of the per-core stacks.
    adrp    x0, {stacks}
    add     x0, x0, :lo12:{stacks}
    mov     x1, #{stack_size}
    add     sp, x0, x1
    mov     x0, x19
    mov     x1, x20
    mov     x2, x21                 // where the loader put the image
    bl      {rust_primary}
park:
    wfe
    b       park

// ---- Secondary cores ------------------------------------------------------------------------
// Entered from PSCI CPU_ON or a spin-table release, MMU off, at EL2 or EL1 (x0 is not used:
// spin tables pass 0). Core 0 has filled one boot block per core it starts (and cleaned them to
// the point of coherency) before releasing any: this core finds its own by MPIDR and adopts its
// stack, logical index and MMU/SCTLR state before running any Rust, so no Rust runs with the
// MMU off here while core 0 runs with caches on. A core with no block parks.
    .global atomprobe_secondary_entry
atomprobe_secondary_entry:
    bl      el2_to_el1
    bl      el1_common
    mrs     x2, mpidr_el1
    and     x3, x2, #0xffffff       // Aff2..Aff0
    lsr     x4, x2, #32
    and     x4, x4, #0xff           // Aff3
    orr     x2, x3, x4, lsl #32
    adrp    x9, {boot_blocks}
    add     x9, x9, :lo12:{boot_blocks}
    mov     x5, #{max_cores}
4:  cbz     x5, park
    ldr     x1, [x9, #0]            // stack top; 0 = unused block
    ldr     x6, [x9, #56]           // MPIDR affinity
    cbz     x1, 5f
    cmp     x6, x2
    b.eq    6f
5:  add     x9, x9, #{block_size}
    sub     x5, x5, #1
    b       4b
6:
    ldr     x0, [x9, #16]           // mmu_on
    cbz     x0, 3f
    ldr     x1, [x9, #24]
    msr     mair_el1, x1
    ldr     x1, [x9, #32]
    msr     tcr_el1, x1
    ldr     x1, [x9, #40]
    msr     ttbr0_el1, x1
    isb
    tlbi    vmalle1
    dsb     nsh
    ic      iallu
    dsb     nsh
    isb
3:
    ldr     x1, [x9, #48]           // SCTLR_EL1 as on core 0 (M, C, I, A)
    msr     sctlr_el1, x1
    isb
    ldr     x1, [x9, #0]            // stack top
    mov     sp, x1
    ldr     x0, [x9, #8]            // logical index
    msr     tpidr_el1, x0
    bl      {rust_secondary}
    b       park

// ---- Common per-core setup ------------------------------------------------------------------
// At EL2: make EL1 AArch64 with the counters usable and nothing trapped, then eret to the
// caller at EL1h with DAIF masked. At EL1: return. Clobbers x0.
el2_to_el1:
    mrs     x0, CurrentEL
    cmp     x0, #(2 << 2)
    b.ne    9f
    mov     x0, #(1 << 31)          // HCR_EL2.RW: EL1 is AArch64; no stage 2, no traps
    msr     hcr_el2, x0
    mrs     x0, cnthctl_el2
    orr     x0, x0, #3              // EL1PCTEN | EL1PCEN: EL1 may use the physical counter/timer
    msr     cnthctl_el2, x0
    msr     cntvoff_el2, xzr        // virtual count = physical count
    mov     x0, #0x33ff             // CPTR_EL2: RES1 bits only, TFP = 0 (no FP/SIMD trap)
    msr     cptr_el2, x0
    msr     hstr_el2, xzr
    mrs     x0, mdcr_el2
    bic     x0, x0, #(3 << 5)       // TPM, TPMCR = 0: EL1 may use the PMU
    msr     mdcr_el2, x0
    mov     x0, #0x0800             // SCTLR_EL1: RES1 bits; M = C = I = A = 0, little-endian
    movk    x0, #0x30d0, lsl #16
    msr     sctlr_el1, x0
    mov     x0, #0x3c5              // SPSR_EL2: EL1h, D, A, I, F masked
    msr     spsr_el2, x0
    msr     elr_el2, x30
    isb
    eret
9:  ret

// At EL1: FP/SIMD on (Rust for aarch64-unknown-none emits SIMD), vectors installed.
el1_common:
    mov     x0, #(3 << 20)          // CPACR_EL1.FPEN = 0b11
    msr     cpacr_el1, x0
    adrp    x0, atomprobe_vectors
    add     x0, x0, :lo12:atomprobe_vectors
    msr     vbar_el1, x0
    isb
    ret

// ---- Exception vectors ----------------------------------------------------------------------
// Every entry saves the whole interrupted context (x0-x30, SP, ELR, SPSR, ESR, FAR, q0-q31,
// FPCR, FPSR) in a frame on the current stack and calls the Rust handler with (frame, kind),
// kind = vector index 0..15. The handler may change the saved ELR (fault guard resume).
    .macro  VECTOR kind
    .balign 0x80
    sub     sp, sp, #{frame_size}
    stp     x0, x1, [sp, #0]
    mov     x0, #\kind
    b       exception_common
    .endm

    .section .text.vectors, "ax"
    .balign 0x800
    .global atomprobe_vectors
atomprobe_vectors:
    VECTOR  0                       // current EL, SP_EL0: synchronous
    VECTOR  1                       // IRQ
    VECTOR  2                       // FIQ
    VECTOR  3                       // SError
    VECTOR  4                       // current EL, SP_ELx: synchronous
    VECTOR  5                       // IRQ
    VECTOR  6                       // FIQ
    VECTOR  7                       // SError
    VECTOR  8                       // lower EL, AArch64
    VECTOR  9
    VECTOR  10
    VECTOR  11
    VECTOR  12                      // lower EL, AArch32
    VECTOR  13
    VECTOR  14
    VECTOR  15

exception_common:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    add     x1, sp, #{frame_size}   // SP of the interrupted context
    stp     x30, x1, [sp, #240]
    mrs     x1, elr_el1
    mrs     x2, spsr_el1
    stp     x1, x2, [sp, #256]
    mrs     x1, esr_el1
    mrs     x2, far_el1
    stp     x1, x2, [sp, #272]
    add     x1, sp, #288
    stp     q0, q1, [x1, #0]
    stp     q2, q3, [x1, #32]
    stp     q4, q5, [x1, #64]
    stp     q6, q7, [x1, #96]
    stp     q8, q9, [x1, #128]
    stp     q10, q11, [x1, #160]
    stp     q12, q13, [x1, #192]
    stp     q14, q15, [x1, #224]
    stp     q16, q17, [x1, #256]
    stp     q18, q19, [x1, #288]
    stp     q20, q21, [x1, #320]
    stp     q22, q23, [x1, #352]
    stp     q24, q25, [x1, #384]
    stp     q26, q27, [x1, #416]
    stp     q28, q29, [x1, #448]
    stp     q30, q31, [x1, #480]
    mrs     x2, fpcr
    mrs     x3, fpsr
    str     x2, [x1, #512]
    str     x3, [x1, #520]

    mov     x1, x0                  // kind
    mov     x0, sp                  // frame
    bl      {handler}

    add     x1, sp, #288
    ldr     x2, [x1, #512]
    ldr     x3, [x1, #520]
    msr     fpcr, x2
    msr     fpsr, x3
    ldp     q0, q1, [x1, #0]
    ldp     q2, q3, [x1, #32]
    ldp     q4, q5, [x1, #64]
    ldp     q6, q7, [x1, #96]
    ldp     q8, q9, [x1, #128]
    ldp     q10, q11, [x1, #160]
    ldp     q12, q13, [x1, #192]
    ldp     q14, q15, [x1, #224]
    ldp     q16, q17, [x1, #256]
    ldp     q18, q19, [x1, #288]
    ldp     q20, q21, [x1, #320]
    ldp     q22, q23, [x1, #352]
    ldp     q24, q25, [x1, #384]
    ldp     q26, q27, [x1, #416]
    ldp     q28, q29, [x1, #448]
    ldp     q30, q31, [x1, #480]
    ldp     x1, x2, [sp, #256]
    msr     elr_el1, x1
    msr     spsr_el1, x2
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    ldr     x30, [sp, #240]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #{frame_size}
    eret
