//! The kernel heap: `linked_list_allocator::Heap` over a region the board hands over at boot,
//! serialised by [`crate::sync::Mutex`] rather than `LockedHeap`'s `spin::Mutex` (no exclusives
//! or RMW atomics, which may never succeed with the MMU off: see `sync.rs`).

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicBool, Ordering};

use linked_list_allocator::Heap;

use crate::sync::Mutex;

struct KernelHeap(Mutex<Heap>);

// SAFETY: every method hands out or takes back blocks of the one `Heap`, under its lock; the
// allocator's own invariants (blocks are disjoint, sized and aligned per `layout`) are
// `linked_list_allocator`'s.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.0
            .lock()
            .allocate_first_fit(layout)
            .map_or(ptr::null_mut(), NonNull::as_ptr)
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        if let Some(p) = NonNull::new(p) {
            // SAFETY: `GlobalAlloc` contract: `p` came from `alloc` on this heap with `layout`.
            unsafe { self.0.lock().deallocate(p, layout) };
        }
    }
}

#[global_allocator]
static HEAP: KernelHeap = KernelHeap(Mutex::new(Heap::empty()));

/// Give the heap its memory. Called once, by the boot core, before anything allocates.
///
/// # Safety
/// `start .. start + size` must be unused RAM, writable, mapped for the kernel's whole life.
pub unsafe fn init(start: usize, size: usize) {
    // SAFETY: forwarded from the caller's contract.
    unsafe { HEAP.0.lock().init(start as *mut u8, size) };
    READY.store(true, Ordering::Release);
}

static READY: AtomicBool = AtomicBool::new(false);

/// Whether [`init`] has run (before it, every allocation fails: fault and panic paths must not
/// allocate, see `fatal`).
pub fn ready() -> bool {
    READY.load(Ordering::Acquire)
}

/// Bytes of heap in use and free, for the summary.
pub fn usage() -> (usize, usize) {
    let h = HEAP.0.lock();
    (h.used(), h.free())
}
