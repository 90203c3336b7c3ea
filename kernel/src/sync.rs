//! Locks for the kernel's own shared state (console, heap, set-once values) built from plain
//! loads, stores and barriers only — never an exclusive or an atomic read-modify-write.
//!
//! **Why not `spin::Mutex`.** A spin lock needs an atomic read-modify-write. On
//! aarch64-unknown-none (no LSE) Rust compiles every RMW to a Load-Exclusive/Store-Exclusive
//! loop, and with LSE it would be CAS/LDADD; either way the architecture only promises it works
//! on Normal, Inner/Outer Write-Back, shareable memory: whether exclusives (and LSE atomics)
//! work on any other memory type is IMPLEMENTATION DEFINED (Arm ARM DDI 0487, B2.9.5 "Load-
//! Exclusive and Store-Exclusive instruction usage restrictions" / B2.9 on the exclusive
//! monitors, and the "atomic instructions" memory-type rules). With `mmu=off` every data access
//! is Device-nGnRnE (Arm ARM D8.2.11, translation disabled), so on a real board a store-exclusive
//! may fail for ever and a `spin::Mutex` round the console or the heap would hang the run — a
//! probe image must not rely on the very thing it measures. On x86-64 a `lock`-prefixed RMW
//! always works, but the same lock is used there so the generic code has one behaviour.
//!
//! **What instead.** Lamport's bakery algorithm ("A New Solution of Dijkstra's Concurrent
//! Programming Problem", CACM 17(8), 1974) over one slot per core (`crate::arch::core_index()`,
//! at most [`MAX_SLOTS`] cores). It needs sequentially consistent plain loads and stores: every
//! store here is `store(Release)` followed by `fence(SeqCst)` (aarch64: STLR; DMB ISH —
//! x86-64: MOV; MFENCE), every load is `load(SeqCst)` (LDAR — MOV). A `store(SeqCst)` is
//! deliberately not used: on x86-64 it compiles to XCHG, an RMW.
//!
//! The lock is not reentrant. A core asking again for a lock it holds can only have faulted or
//! panicked inside its critical section, on the way to ending the run, so [`Mutex::lock`] then
//! drops the dead hold rather than deadlock; the abort path also breaks a lock another core
//! holds, after a bounded wait ([`Mutex::lock_or_break`]).
//!
//! Cost: taking the lock reads every slot twice (2 × [`MAX_SLOTS`] loads), fine for the console
//! and the heap, which are not on any measured path.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{fence, AtomicU32, Ordering};

/// Cores a lock has slots for (a core index is clamped to this by `arch::core_index`).
pub const MAX_SLOTS: usize = crate::arch::MAX_CPUS;

/// A plain store followed by a full barrier, so later loads are ordered after it.
#[inline(always)]
fn store_sc(a: &AtomicU32, v: u32) {
    a.store(v, Ordering::Release);
    fence(Ordering::SeqCst);
}

/// Lamport's bakery lock (see the module docs).
struct Bakery {
    /// `choosing[i] != 0` while core `i` is picking its ticket.
    choosing: [AtomicU32; MAX_SLOTS],
    /// Core `i`'s ticket; 0 = not interested.
    number: [AtomicU32; MAX_SLOTS],
    /// Holder's core index + 1, 0 when free (written only by the holder; for reentrancy checks
    /// and breaking the lock on abort).
    owner: AtomicU32,
}

impl Bakery {
    const fn new() -> Bakery {
        Bakery {
            choosing: [const { AtomicU32::new(0) }; MAX_SLOTS],
            number: [const { AtomicU32::new(0) }; MAX_SLOTS],
            owner: AtomicU32::new(0),
        }
    }

    fn me() -> usize {
        crate::arch::core_index().min(MAX_SLOTS - 1)
    }

    fn held_by(&self, core: usize) -> bool {
        self.owner.load(Ordering::SeqCst) == core as u32 + 1
    }

    /// Take a ticket and wait for every earlier one; give up (and withdraw the ticket) after
    /// `budget` polls of a single other core. Returns whether the lock was taken.
    fn acquire(&self, me: usize, mut budget: u64) -> bool {
        // Doorway: ticket = 1 + the largest ticket seen.
        store_sc(&self.choosing[me], 1);
        let max = self
            .number
            .iter()
            .map(|n| n.load(Ordering::SeqCst))
            .max()
            .unwrap_or(0);
        // Tickets only grow while the lock never falls free; saturating keeps order sane even
        // then (ties are broken by core index).
        let mine = max.saturating_add(1);
        store_sc(&self.number[me], mine);
        store_sc(&self.choosing[me], 0);
        // Wait for every core with an earlier (ticket, index).
        for j in 0..MAX_SLOTS {
            if j == me {
                continue;
            }
            loop {
                let choosing = self.choosing[j].load(Ordering::SeqCst) != 0;
                if !choosing {
                    let t = self.number[j].load(Ordering::SeqCst);
                    if t == 0 || (t, j) > (mine, me) {
                        break;
                    }
                }
                if budget == 0 {
                    store_sc(&self.number[me], 0);
                    return false;
                }
                budget -= 1;
                core::hint::spin_loop();
            }
        }
        fence(Ordering::SeqCst);
        store_sc(&self.owner, me as u32 + 1);
        true
    }

    fn release(&self, me: usize) {
        self.owner.store(0, Ordering::Release);
        // Release: the critical section's accesses are visible before the ticket goes.
        store_sc(&self.number[me], 0);
    }

    /// Clear the holder's slot as if it had released the lock.
    ///
    /// # Safety
    /// The holder must never touch the protected data again (or the caller accepts the race).
    unsafe fn force_release(&self) {
        let o = self.owner.load(Ordering::SeqCst);
        if o != 0 {
            let k = (o as usize - 1).min(MAX_SLOTS - 1);
            store_sc(&self.owner, 0);
            store_sc(&self.choosing[k], 0);
            store_sc(&self.number[k], 0);
        }
    }
}

/// A mutual-exclusion lock over `T` built on [`Bakery`]; see the module docs.
pub struct Mutex<T> {
    lock: Bakery,
    data: UnsafeCell<T>,
}

// SAFETY: the bakery lock gives one core at a time access to `data` (a guard is only created
// after `acquire` succeeded, or by the documented `unsafe` breaking of the lock).
unsafe impl<T: Send> Sync for Mutex<T> {}
// SAFETY: as for any mutex: moving the lock moves the `T`.
unsafe impl<T: Send> Send for Mutex<T> {}

impl<T> Mutex<T> {
    pub const fn new(v: T) -> Mutex<T> {
        Mutex {
            lock: Bakery::new(),
            data: UnsafeCell::new(v),
        }
    }

    /// Wait for the lock. If the calling core already holds it, the critical section it was in
    /// is dead — the only way back in is a fault or panic inside it, and those end the run — so
    /// its hold is dropped and the lock taken afresh; that lets the abort path print and
    /// allocate (the data may be half-updated: acceptable only because the run is ending).
    pub fn lock(&self) -> MutexGuard<'_, T> {
        let me = Bakery::me();
        if self.lock.held_by(me) {
            self.lock.release(me);
        }
        while !self.lock.acquire(me, u64::MAX) {}
        MutexGuard { m: self, me }
    }

    /// Try for about `polls` polls; `None` if the lock did not come free (or this core holds it).
    pub fn try_lock_for(&self, polls: u64) -> Option<MutexGuard<'_, T>> {
        let me = Bakery::me();
        if self.lock.held_by(me) {
            return None;
        }
        self.lock
            .acquire(me, polls)
            .then_some(MutexGuard { m: self, me })
    }

    /// The abort path: take the lock within about `polls` polls, or else break it — the holder
    /// (stuck, faulted, or this very core) is treated as gone — and take it.
    ///
    /// # Safety
    /// Only for ending the run: if the holder is in fact still running it may touch the data at
    /// the same time as the caller.
    pub unsafe fn lock_or_break(&self, polls: u64) -> MutexGuard<'_, T> {
        if let Some(g) = self.try_lock_for(polls) {
            return g;
        }
        // SAFETY: forwarded from the caller's contract.
        unsafe { self.lock.force_release() };
        let me = Bakery::me();
        // Other waiters with earlier tickets are running cores that will get in and out.
        while !self.lock.acquire(me, u64::MAX) {}
        MutexGuard { m: self, me }
    }
}

pub struct MutexGuard<'a, T> {
    m: &'a Mutex<T>,
    me: usize,
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while this core holds the lock.
        unsafe { &*self.m.data.get() }
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard exists only while this core holds the lock.
        unsafe { &mut *self.m.data.get() }
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.m.lock.release(self.me);
    }
}

/// A value set once and read many times, without an RMW (replaces `spin::Once`): the first
/// `call_once` under the lock sets it; readers check a flag published with release ordering.
// Used by the aarch64 kernel; the x86-64 kernel still has its own `spin::Once`s.
#[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
pub struct Once<T> {
    set: AtomicU32,
    value: Mutex<Option<T>>,
}

// SAFETY: the value is written once under the lock and only read (shared) after `set` is seen
// with acquire ordering, so sharing `&Once<T>` needs `T: Sync` (readers) and `T: Send` (writer).
unsafe impl<T: Send + Sync> Sync for Once<T> {}

#[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
impl<T> Once<T> {
    pub const fn new() -> Once<T> {
        Once {
            set: AtomicU32::new(0),
            value: Mutex::new(None),
        }
    }

    /// The value, once set.
    pub fn get(&self) -> Option<&T> {
        if self.set.load(Ordering::Acquire) == 0 {
            return None;
        }
        // SAFETY: `set` is stored (release) only after the value was written, and the value is
        // never written again, so a shared reference to it is sound from here on.
        unsafe { (*self.value.data.get()).as_ref() }
    }

    /// Set the value with `f` unless it is already set; returns the value.
    pub fn call_once(&self, f: impl FnOnce() -> T) -> &T {
        if self.get().is_none() {
            let mut g = self.value.lock();
            if g.is_none() {
                *g = Some(f());
                // Published while still holding the lock, so a later taker that finds the
                // value also finds `set`.
                store_sc(&self.set, 1);
            }
            drop(g);
        }
        self.get().expect("set above")
    }
}
