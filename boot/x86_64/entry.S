/* atomprobe x86-64 PVH entry (AT&T syntax; included by kernel/src/board/pc/boot.rs through
 * global_asm!(..., options(att_syntax))).
 *
 * QEMU's PVH loader finds the note below (XEN_ELFNOTE_PHYS32_ENTRY = 18, name "Xen"; QEMU reads
 * the descriptor as a 64-bit value for an ELF64) and enters pvh_start32 in 32-bit flat protected
 * mode, paging off, interrupts off, with %ebx = physical address of struct hvm_start_info
 * (magic 0x336ec578). There is no stack. We:
 *   1. zero BSS (page tables and stacks live there),
 *   2. identity-map the first 4 GiB with 2 MiB pages (3-4 GiB, the PCI/APIC hole, as UC via
 *      PCD|PWT = PAT entry 3, UC at power-on),
 *   3. enable PAE, EFER.LME, paging; far-jump into a 64-bit code segment,
 *   4. load data segments and the boot stack, enable SSE (CR0.EM = 0, CR0.MP = 1,
 *      CR4.OSFXSR | CR4.OSXMMEXCPT),
 *   5. call pc_entry64(start_info_paddr) in Rust.
 */

    .pushsection .note.Xen, "a", @note
    .balign 4
    .long 4                         /* namesz: "Xen\0" */
    .long 8                         /* descsz */
    .long 18                        /* type: XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .quad pvh_start32
    .balign 4
    .popsection

    .set BOOT_CS64, 0x08
    .set BOOT_DS, 0x10

    .pushsection .text.boot32, "ax"
    .code32
    .globl pvh_start32
pvh_start32:
    cli
    cld
    movl %ebx, %esi                 /* hvm_start_info: kept in %esi (survives to 64-bit) */

    /* 1. zero BSS */
    movl $__bss_start, %edi
    movl $__bss_end, %ecx
    subl %edi, %ecx
    xorl %eax, %eax
    rep stosb

    /* 2. page tables: PML4[0] -> PDPT, PDPT[0..4] -> PD[0..4], PD: 2048 x 2 MiB */
    movl $boot_pdpt, %eax
    orl $0x3, %eax                  /* P | RW */
    movl %eax, boot_pml4

    movl $boot_pd, %eax
    orl $0x3, %eax
    movl $boot_pdpt, %edi
    movl $4, %ecx
10:
    movl %eax, (%edi)
    addl $4096, %eax
    addl $8, %edi
    decl %ecx
    jnz 10b

    movl $boot_pd, %edi
    xorl %ecx, %ecx
11:
    movl %ecx, %eax
    shll $21, %eax
    orl $0x83, %eax                 /* P | RW | PS (2 MiB) */
    cmpl $1536, %ecx
    jb 12f
    orl $0x18, %eax                 /* PWT | PCD: 3-4 GiB is the MMIO hole (LAPIC, IOAPIC, PCI) */
12:
    movl %eax, (%edi,%ecx,8)
    incl %ecx
    cmpl $2048, %ecx
    jb 11b

    /* 3. long mode */
    movl %cr4, %eax
    orl $(1 << 5), %eax             /* CR4.PAE */
    movl %eax, %cr4
    movl $boot_pml4, %eax
    movl %eax, %cr3
    movl $0xC0000080, %ecx          /* IA32_EFER */
    rdmsr
    orl $(1 << 8), %eax             /* LME */
    wrmsr
    movl %cr0, %eax
    orl $((1 << 31) | (1 << 16) | 1), %eax  /* PG | WP | PE */
    movl %eax, %cr0
    lgdt boot_gdt_ptr
    ljmp $BOOT_CS64, $pvh_long_entry

    .code64
pvh_long_entry:
    movw $BOOT_DS, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorw %ax, %ax
    movw %ax, %fs
    movw %ax, %gs
    movq $boot_stack_top, %rsp
    xorl %ebp, %ebp

    /* 4. SSE */
    movq %cr0, %rax
    andq $~(1 << 2), %rax           /* CR0.EM = 0 */
    orq $(1 << 1), %rax             /* CR0.MP = 1 */
    movq %rax, %cr0
    movq %cr4, %rax
    orq $((1 << 9) | (1 << 10)), %rax   /* CR4.OSFXSR | CR4.OSXMMEXCPT */
    movq %rax, %cr4

    /* 5. Rust */
    movl %esi, %edi
    call pc_entry64
13:
    cli
    hlt
    jmp 13b
    .popsection

    .pushsection .rodata.boot_gdt, "a"
    .balign 16
    .globl boot_gdt
boot_gdt:
    .quad 0                         /* null */
    .quad 0x00209A0000000000        /* 0x08: 64-bit code, DPL 0 */
    .quad 0x0000920000000000        /* 0x10: data, DPL 0 */
boot_gdt_end:
    .balign 4
    .globl boot_gdt_ptr
boot_gdt_ptr:
    .word boot_gdt_end - boot_gdt - 1
    .long boot_gdt
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
boot_stack_bottom:
    .skip 64 * 1024
    .globl boot_stack_top
boot_stack_top:
    .popsection
