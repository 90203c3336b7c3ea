/* atomprobe x86-64 entry from the UEFI loader (board uefi; AT&T syntax, included by
 * kernel/src/board/uefi/x86_64.rs through global_asm!(..., options(att_syntax))).
 *
 * The loader (uefi-loader/) has called ExitBootServices and jumps here in long mode, interrupts
 * off, on the firmware's page tables (an identity map, UEFI 2.10 2.3.4) and the firmware's GDT,
 * with %rdi = physical address of the handover block. We replace everything the firmware set
 * up that the kernel relies on:
 *   1. zero BSS (page tables and the boot stack live there; the handover block does not),
 *   2. build the same tables as the PVH entry (entry.S): identity map of the first 4 GiB with
 *      2 MiB pages, 3-4 GiB (the MMIO hole: LAPIC, IOAPIC, PCI) UC through PCD|PWT, and switch
 *      CR3 to them (this code and its data are below 4 GiB: linked at 16 MiB),
 *   3. load our boot GDT, reload CS with a far return and the data segments,
 *   4. boot stack, CR0.WP, SSE as entry.S does,
 *   5. call uefi_entry64(handover) in Rust.
 * paging.rs edits these tables later (arena aliases, U/S): same symbol names as entry.S. */

    .set UEFI_CS64, 0x08
    .set UEFI_DS, 0x10

    .pushsection .text.boot32, "ax"
    .code64
    .globl uefi_start64
uefi_start64:
    cli
    cld
    movq %rdi, %r12                 /* handover block: callee-saved across what follows */

    /* 1. zero BSS */
    leaq __bss_start(%rip), %rdi
    leaq __bss_end(%rip), %rcx
    subq %rdi, %rcx
    xorl %eax, %eax
    rep stosb

    /* 2. page tables: PML4[0] -> PDPT, PDPT[0..4] -> PD[0..4], PD: 2048 x 2 MiB */
    leaq boot_pdpt(%rip), %rax
    orq $0x3, %rax                  /* P | RW */
    movq %rax, boot_pml4(%rip)

    leaq boot_pd(%rip), %rax
    orq $0x3, %rax
    leaq boot_pdpt(%rip), %rdi
    movl $4, %ecx
10:
    movq %rax, (%rdi)
    addq $4096, %rax
    addq $8, %rdi
    decl %ecx
    jnz 10b

    leaq boot_pd(%rip), %rdi
    xorl %ecx, %ecx
11:
    movq %rcx, %rax
    shlq $21, %rax
    orq $0x83, %rax                 /* P | RW | PS (2 MiB) */
    cmpl $1536, %ecx
    jb 12f
    orq $0x18, %rax                 /* PWT | PCD: 3-4 GiB is the MMIO hole */
12:
    movq %rax, (%rdi,%rcx,8)
    incl %ecx
    cmpl $2048, %ecx
    jb 11b

    leaq boot_pml4(%rip), %rax
    movq %rax, %cr3

    /* 3. GDT, CS, data segments */
    lgdt uefi_gdt_ptr(%rip)
    pushq $UEFI_CS64
    leaq 13f(%rip), %rax
    pushq %rax
    lretq
13:
    movw $UEFI_DS, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorw %ax, %ax
    movw %ax, %fs
    movw %ax, %gs

    /* 4. stack, CR0, SSE */
    leaq boot_stack_top(%rip), %rsp
    xorl %ebp, %ebp
    movq %cr0, %rax
    andq $~(1 << 2), %rax           /* CR0.EM = 0 */
    orq $((1 << 1) | (1 << 16)), %rax   /* CR0.MP, CR0.WP */
    movq %rax, %cr0
    movq %cr4, %rax
    orq $((1 << 9) | (1 << 10)), %rax   /* CR4.OSFXSR | CR4.OSXMMEXCPT */
    movq %rax, %cr4

    /* 5. Rust */
    movq %r12, %rdi
    call uefi_entry64
14:
    cli
    hlt
    jmp 14b
    .popsection

    .pushsection .rodata.boot_gdt, "a"
    .balign 16
uefi_gdt:
    .quad 0                         /* null */
    .quad 0x00209A0000000000        /* 0x08: 64-bit code, DPL 0 (as entry.S and cpu.rs) */
    .quad 0x0000920000000000        /* 0x10: data, DPL 0 */
uefi_gdt_end:
    .balign 8
uefi_gdt_ptr:
    .word uefi_gdt_end - uefi_gdt - 1
    .quad uefi_gdt
    .popsection

    .pushsection .bss.boot_pt, "aw", @nobits
    .balign 4096
    .globl boot_pml4
boot_pml4:
    .skip 4096
    .globl boot_pdpt
boot_pdpt:
    .skip 4096
    .globl boot_pd
boot_pd:
    .skip 4 * 4096
    .popsection

    .pushsection .bss.boot_stack, "aw", @nobits
    .balign 4096
    .skip 64 * 1024
    .globl boot_stack_top
boot_stack_top:
    .popsection
