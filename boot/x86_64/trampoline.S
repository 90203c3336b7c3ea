/* atomprobe x86-64 application-processor trampoline (AT&T syntax; included by
 * kernel/src/arch/x86_64/smp.rs through global_asm!(..., options(att_syntax))).
 *
 * The boot core copies ap_tramp_start .. ap_tramp_end to physical AP_TRAMP_BASE (0x8000, below
 * 1 MiB and page-aligned: the SIPI vector is its page number, 0x08), fills in the data slots at
 * the end (CR3, stack top, Rust entry, core index) and sends INIT-SIPI-SIPI. The AP starts in
 * real mode at CS:IP = 0x0800:0000 and goes straight to long mode: it loads a GDT with a 64-bit
 * code segment, sets CR4.PAE (+ OSFXSR/OSXMMEXCPT for SSE), CR3, EFER.LME, then CR0.PE|PG|WP at
 * once (and CR0.MP, EM clear), and far-jumps into 64-bit code, which calls
 * ap_entry(core_index) on its own stack. The code is position-dependent only through
 * AP_TRAMP_BASE. */

    .set AP_TRAMP_BASE, 0x8000
    .set AP_TRAMP_SEG, 0x0800

    .pushsection .rodata.ap_trampoline, "a"
    .balign 4096
    .globl ap_tramp_start
ap_tramp_start:
    .code16
    cli
    cld
    movw %cs, %ax
    movw %ax, %ds
    lgdtl (ap_tramp_gdt_ptr - ap_tramp_start)

    movl %cr4, %eax
    orl $((1 << 5) | (1 << 9) | (1 << 10)), %eax   /* PAE | OSFXSR | OSXMMEXCPT */
    movl %eax, %cr4
    movl (ap_tramp_cr3 - ap_tramp_start), %eax
    movl %eax, %cr3
    movl $0xC0000080, %ecx          /* IA32_EFER */
    rdmsr
    orl $(1 << 8), %eax             /* LME */
    wrmsr
    movl %cr0, %eax
    andl $~(1 << 2), %eax           /* EM = 0 */
    orl $((1 << 31) | (1 << 16) | (1 << 1) | 1), %eax  /* PG | WP | MP | PE */
    movl %eax, %cr0
    ljmpl $0x08, $(AP_TRAMP_BASE + ap_tramp_long - ap_tramp_start)

    .code64
ap_tramp_long:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorw %ax, %ax
    movw %ax, %fs
    movw %ax, %gs
    movq (AP_TRAMP_BASE + ap_tramp_stack - ap_tramp_start), %rsp
    movq (AP_TRAMP_BASE + ap_tramp_arg - ap_tramp_start), %rdi
    movq (AP_TRAMP_BASE + ap_tramp_entry - ap_tramp_start), %rax
    xorl %ebp, %ebp
    call *%rax
20:
    cli
    hlt
    jmp 20b

    .balign 16
ap_tramp_gdt:
    .quad 0
    .quad 0x00209A0000000000        /* 0x08: 64-bit code */
    .quad 0x0000920000000000        /* 0x10: data */
ap_tramp_gdt_end:
    .balign 4
ap_tramp_gdt_ptr:
    .word ap_tramp_gdt_end - ap_tramp_gdt - 1
    .long AP_TRAMP_BASE + ap_tramp_gdt - ap_tramp_start

    /* Data slots, written by the boot core before each SIPI: the last four quadwords before
     * ap_tramp_end (smp.rs relies on this order). */
    .balign 8
ap_tramp_cr3:
    .quad 0
ap_tramp_stack:
    .quad 0
ap_tramp_entry:
    .quad 0
ap_tramp_arg:
    .quad 0
    .globl ap_tramp_end
ap_tramp_end:

    .popsection
