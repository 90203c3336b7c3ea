//! The PVH entry (32-bit → long mode) and its ELF note, from `boot/x86_64/entry.S`.

core::arch::global_asm!(
    include_str!("../../../../boot/x86_64/entry.S"),
    options(att_syntax)
);
