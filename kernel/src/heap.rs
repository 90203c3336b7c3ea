//! The kernel heap: `linked_list_allocator` over a region the board hands over at boot.

use linked_list_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Give the heap its memory. Called once, by the boot core, before anything allocates.
///
/// # Safety
/// `start .. start + size` must be unused RAM, writable, mapped for the kernel's whole life.
pub unsafe fn init(start: usize, size: usize) {
    // SAFETY: forwarded from the caller's contract.
    unsafe { HEAP.lock().init(start as *mut u8, size) };
}

/// Bytes of heap in use and free, for the summary.
pub fn usage() -> (usize, usize) {
    let h = HEAP.lock();
    (h.used(), h.free())
}
