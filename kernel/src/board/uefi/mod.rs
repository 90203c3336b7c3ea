//! Board `uefi`: PCs and Arm servers booted through UEFI. The loader (`uefi-loader/`, the
//! `\EFI\BOOT\BOOT*.EFI` application) does everything that needs the firmware, calls
//! ExitBootServices and jumps to this kernel's UEFI entry with a [`handover::Handover`] block:
//! boot arguments, memory map, ACPI RSDP, the heap it reserved, the EFI system table. From there
//! on this is the same kernel as on every other board (`kmain`, the arch's SMP, paging, traps).
//!
//! - x86-64 (`x86_64.rs`): `boot/x86_64/uefi_entry.S` replaces the firmware's page tables and
//!   GDT with the PVH entry's, then the `pc` board's path: COM1, the arch's boot-core setup
//!   (GDT/IDT, PAT aliases, MADT + INIT-SIPI-SIPI), `kmain`.
//! - AArch64 (`aarch64.rs`): `boot/aarch64/uefi_entry.S` turns the firmware's MMU and caches
//!   off and joins the shared entry; the hardware comes from ACPI (SPCR, MADT GICC, FADT).

#[cfg(target_arch = "x86_64")]
#[path = "x86_64.rs"]
mod arch_entry;

#[cfg(target_arch = "aarch64")]
#[path = "aarch64.rs"]
mod arch_entry;

pub use arch_entry::*;

mod screen;

use alloc::format;
use alloc::string::String;
use core::sync::atomic::{AtomicU64, Ordering};

use handover::Handover;
use probes::record::RunStatus;

/// The EFI system table (physical = virtual: identity maps throughout), for ResetSystem.
static SYSTEM_TABLE: AtomicU64 = AtomicU64::new(0);

fn remember_system_table(h: &Handover) {
    SYSTEM_TABLE.store(h.system_table, Ordering::Relaxed);
}

/// After the `end` record on every board: a line people see on every console, then (real
/// hardware: the QEMU exit devices did not stop the machine) power off through the UEFI runtime
/// service ResetSystem(EfiResetShutdown) after `shutdown=N` seconds, or stay parked.
fn finish(status: RunStatus, qemu_exit: impl FnOnce()) -> ! {
    let what = match status {
        RunStatus::Complete => "complete",
        RunStatus::Aborted => "aborted",
    };
    let shutdown = crate::kmain::shutdown_after_s();
    let plan = match shutdown {
        Some(s) => format!("powering off in {s} s (shutdown={s})"),
        None => {
            String::from("the machine stays on (boot argument shutdown=N powers it off after N s)")
        }
    };
    crate::console::final_line(&format!(
        "\n==== atomprobe: run finished ({what}); {plan} ====\n"
    ));
    qemu_exit();
    if let Some(s) = shutdown {
        let end = crate::arch::now_ns() + u64::from(s) * 1_000_000_000;
        while crate::arch::now_ns() < end {
            core::hint::spin_loop();
        }
        reset_shutdown();
        arch_entry::power_off_fallback();
    }
    crate::arch::halt()
}

/// UEFI 2.10 8.5.1 ResetSystem(EfiResetShutdown). Runtime services stay callable after
/// ExitBootServices at their physical addresses as long as SetVirtualAddressMap was never
/// called (it is not) and their memory is mapped: identity-mapped on x86 below 4 GiB, and
/// on aarch64 the runtime regions are mapped as RAM (see `aarch64::ram_regions`).
fn reset_shutdown() {
    let st = SYSTEM_TABLE.load(Ordering::Relaxed) as *const uefi_raw::table::system::SystemTable;
    if st.is_null() {
        return;
    }
    arch_entry::console_write(b"atomprobe: calling UEFI ResetSystem(Shutdown)\r\n");
    // SAFETY: the loader passed the firmware's system table; its runtime services table and
    // ResetSystem stay valid after ExitBootServices (UEFI 2.10 8.1) and are identity-mapped.
    // ResetSystem does not return.
    unsafe {
        let rt = (*st).runtime_services;
        if rt.is_null() {
            return;
        }
        ((*rt).reset_system)(
            uefi_raw::table::runtime::ResetType::SHUTDOWN,
            uefi_raw::Status::SUCCESS,
            0,
            core::ptr::null(),
        )
    }
}

/// Whether the screen console works, and why not (set once on the boot core before `kmain`).
static SCREEN_STATE: crate::sync::Once<Result<(), String>> = crate::sync::Once::new();

/// Set up the screen console on the GOP framebuffer the loader found; returns the facts
/// `framebuffer` and `screen` for `begin.platform`. `mapped_end`: the arch's identity map ends
/// there.
fn framebuffer_facts(h: &Handover, mapped_end: u64) -> (String, String) {
    let fb = &h.framebuffer;
    let what = if fb.base == 0 && fb.width == 0 {
        "none (no GOP)".into()
    } else {
        format!(
            "{}x{} {} stride {} at {:#x}+{:#x} (GOP)",
            fb.width,
            fb.height,
            match fb.format {
                handover::FB_RGB => "RGB",
                handover::FB_BGR => "BGR",
                handover::FB_BITMASK => "bitmask",
                handover::FB_BLT_ONLY => "blt-only",
                _ => "unknown-format",
            },
            fb.stride,
            fb.base,
            fb.size
        )
    };
    let state = screen::init(fb, mapped_end);
    let screen = match &state {
        Ok(s) => s.clone(),
        Err(e) => format!("none: {e}"),
    };
    SCREEN_STATE.call_once(|| state.map(|_| ()));
    (what, screen)
}

/// Human text to the screen console (no-op without one).
pub fn screen_write(text: &str) {
    screen::write(text);
}

/// [`screen_write`] at the end of the run, even if a stuck core holds the screen's lock.
pub fn screen_write_final(text: &str) {
    screen::write_final(text);
}

/// `Ok` when the screen console works, else why not.
pub fn screen_state() -> Result<(), String> {
    match SCREEN_STATE.get() {
        Some(s) => s.clone(),
        None => Err("the screen console was not set up".into()),
    }
}

/// Copy the loader's notes into error records (queued: they follow `begin`).
fn queue_notes(h: &Handover) {
    for line in String::from_utf8_lossy(h.notes()).lines() {
        if !line.trim().is_empty() {
            crate::kmain::queue_boot_error("uefi", line.trim().into());
        }
    }
}

/// The `begin.platform` facts both architectures take from the handover block.
fn handover_facts(h: &Handover, handover: u64, fact: &mut dyn FnMut(&str, String)) {
    fact("entry", "uefi".into());
    fact(
        "firmware",
        String::from_utf8_lossy(h.firmware()).into_owned(),
    );
    fact(
        "cmdline_source",
        handover::CmdlineSource::from_u32(h.cmdline_source)
            .name()
            .into(),
    );
    fact("handover", format!("{handover:#x}"));
    fact("rsdp", format!("{:#x}", h.rsdp));
}
