//! Per-core descriptor tables: a GDT with a TSS (IST stacks for #DF, NMI and #MC; RSP0 for
//! exceptions taken at ring 3) and ring-3 code/data segments for every core, and one IDT shared by
//! all cores (it is read-only once built).

use alloc::boxed::Box;

use spin::LazyLock;
use x86_64::instructions::segmentation::{Segment, CS, DS, ES, FS, GS, SS};
use x86_64::instructions::tables::load_tss;
use x86_64::registers::model_specific::GsBase;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::idt::{EntryOptions, InterruptDescriptorTable};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::{PrivilegeLevel, VirtAddr};

use super::ring3;
use super::trap::{stub_address, EXCEPTION_VECTORS, STUBS};

/// IST slots (1-based in the IDT entry, 0-based in the TSS).
const IST_DOUBLE_FAULT: u16 = 0;
const IST_NMI: u16 = 1;
const IST_MACHINE_CHECK: u16 = 2;
const IST_STACK_SIZE: usize = 16 * 1024;
/// TSS.RSP0: where the CPU switches to when ring 3 (`ring3`) takes an exception or interrupt.
const RSP0_STACK_SIZE: usize = 32 * 1024;

/// The kernel code selector: entry 1, as in the boot GDT (`entry.S`), so IDT entries built with
/// either GDT loaded stay valid.
pub const KERNEL_CS: SegmentSelector = SegmentSelector::new(1, PrivilegeLevel::Ring0);
/// The kernel data selector (entry 2, as in the boot GDT).
pub const KERNEL_DS: SegmentSelector = SegmentSelector::new(2, PrivilegeLevel::Ring0);
/// Ring-3 data and code selectors (entries 5 and 6, after the 16-byte TSS descriptor at 3-4).
pub const USER_DS: SegmentSelector = SegmentSelector::new(5, PrivilegeLevel::Ring3);
pub const USER_CS: SegmentSelector = SegmentSelector::new(6, PrivilegeLevel::Ring3);

struct Tables {
    gdt: GlobalDescriptorTable,
    code: SegmentSelector,
    data: SegmentSelector,
    tss: SegmentSelector,
}

static IDT: LazyLock<InterruptDescriptorTable> = LazyLock::new(|| {
    let mut idt = InterruptDescriptorTable::new();
    for (i, &(v, _)) in STUBS.iter().enumerate() {
        let addr = VirtAddr::new(stub_address(i));
        // SAFETY: `addr` is the `global_asm!` stub for vector `v`, which saves the full state,
        // accounts for the presence of an error code and returns with iretq.
        let opts = unsafe { set_handler(&mut idt, v, addr) };
        if let Some(opts) = opts {
            match v {
                // SAFETY: the IST index names a stack the TSS of every core provides.
                8 => unsafe { opts.set_stack_index(IST_DOUBLE_FAULT) },
                // SAFETY: as for vector 8.
                2 => unsafe { opts.set_stack_index(IST_NMI) },
                // SAFETY: as for vector 8.
                18 => unsafe { opts.set_stack_index(IST_MACHINE_CHECK) },
                _ => opts,
            };
        }
    }
    // SAFETY: the stub is `ring3`'s return path: it discards the frame and restores the ring-0
    // context `atomprobe_ring3_call` saved. DPL 3 so that `int` at CPL 3 may use it.
    unsafe {
        idt[ring3::RETURN_VECTOR]
            .set_handler_addr(VirtAddr::new(ring3::return_stub()))
            .set_privilege_level(PrivilegeLevel::Ring3);
    }
    idt
});

/// Load the IDT on this core (again in `init_core`, with the core's own GDT and TSS).
pub fn load_idt() {
    IDT.load();
}

/// Point IDT entry `v` at `addr`; `None` for reserved vectors the crate does not expose.
///
/// # Safety
/// `addr` must be an interrupt entry stub suitable for vector `v`.
unsafe fn set_handler(
    idt: &mut InterruptDescriptorTable,
    v: u8,
    addr: VirtAddr,
) -> Option<&mut EntryOptions> {
    // SAFETY: forwarded from the caller (every arm sets the entry for vector `v`).
    unsafe {
        Some(match v {
            8 => idt.double_fault.set_handler_addr(addr),
            10 => idt.invalid_tss.set_handler_addr(addr),
            11 => idt.segment_not_present.set_handler_addr(addr),
            12 => idt.stack_segment_fault.set_handler_addr(addr),
            13 => idt.general_protection_fault.set_handler_addr(addr),
            14 => idt.page_fault.set_handler_addr(addr),
            17 => idt.alignment_check.set_handler_addr(addr),
            18 => idt.machine_check.set_handler_addr(addr),
            21 => idt.cp_protection_exception.set_handler_addr(addr),
            29 => idt.vmm_communication_exception.set_handler_addr(addr),
            30 => idt.security_exception.set_handler_addr(addr),
            0..=7 | 9 | 16 | 19 | 20 | 28 => idt[v].set_handler_addr(addr),
            v if usize::from(v) >= EXCEPTION_VECTORS => idt[v].set_handler_addr(addr),
            _ => return None,
        })
    }
}

/// Set up and load this core's GDT, TSS and the IDT, and record its logical index in GS base.
/// Needs the heap (tables and IST stacks are allocated and leaked: they live as long as the core).
pub fn init_core(index: usize) {
    let mut tss = TaskStateSegment::new();
    for slot in [IST_DOUBLE_FAULT, IST_NMI, IST_MACHINE_CHECK] {
        let stack: &'static mut [u8] =
            Box::leak(alloc::vec![0u8; IST_STACK_SIZE].into_boxed_slice());
        let top = VirtAddr::from_ptr(stack.as_ptr_range().end).align_down(16u64);
        tss.interrupt_stack_table[usize::from(slot)] = top;
    }
    let rsp0: &'static mut [u8] = Box::leak(alloc::vec![0u8; RSP0_STACK_SIZE].into_boxed_slice());
    tss.privilege_stack_table[0] = VirtAddr::from_ptr(rsp0.as_ptr_range().end).align_down(16u64);
    let tss: &'static TaskStateSegment = Box::leak(Box::new(tss));
    let mut gdt = GlobalDescriptorTable::new();
    let code = gdt.append(Descriptor::kernel_code_segment());
    let data = gdt.append(Descriptor::kernel_data_segment());
    let tss_sel = gdt.append(Descriptor::tss_segment(tss));
    let user_data = gdt.append(Descriptor::user_data_segment());
    let user_code = gdt.append(Descriptor::user_code_segment());
    assert!(code == KERNEL_CS && data == KERNEL_DS && user_data == USER_DS && user_code == USER_CS);
    let t: &'static Tables = Box::leak(Box::new(Tables {
        gdt,
        code,
        data,
        tss: tss_sel,
    }));
    t.gdt.load();
    // SAFETY: the selectors index the GDT just loaded: a 64-bit code segment, a data segment and
    // an available TSS (never loaded before: a fresh descriptor per core).
    unsafe {
        CS::set_reg(t.code);
        SS::set_reg(t.data);
        DS::set_reg(t.data);
        ES::set_reg(t.data);
        FS::set_reg(SegmentSelector(0));
        GS::set_reg(SegmentSelector(0));
        load_tss(t.tss);
    }
    // Writing GS (the selector) above cleared GS base: set it afterwards.
    GsBase::write(VirtAddr::new(index as u64));
    IDT.load();
    ring3::init_core();
}
