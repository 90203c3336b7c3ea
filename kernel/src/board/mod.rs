//! Board support, chosen by cargo feature. Each `board/<board>/mod.rs` provides:
//!
//! | item | what |
//! |---|---|
//! | `const NAME: &str` | `begin.board` (`qemu-virt`, `qemu-raspi4b`/`rpi4`, `qemu-pc`, `uefi-x86_64`/`uefi-aarch64`) |
//! | `fn console_write(&[u8])` | raw bytes to the serial console |
//! | `fn exit(RunStatus) -> !` | leave the emulator with a status saying whether the run completed (semihosting, isa-debug-exit), or park the board |
//! | `fn screen_write(&str)`, `fn screen_write_final(&str)`, `fn screen_state() -> Result<(), String>` | human text to a screen console (UEFI GOP); boards without one take the defaults below |
//! | `fn exit_early() -> !` | stop after a fatal error before boot finished (`crate::fatal`): a failing exit where that needs no set-up, else park |
//!
//! plus whatever the arch's boot code needs from it (UART init, memory layout, how secondaries
//! are released).

#[cfg(feature = "board-virt")]
#[path = "virt/mod.rs"]
mod imp;

#[cfg(feature = "board-rpi4")]
#[path = "rpi4/mod.rs"]
mod imp;

#[cfg(feature = "board-pc")]
#[path = "pc/mod.rs"]
mod imp;

#[cfg(feature = "board-uefi")]
#[path = "uefi/mod.rs"]
mod imp;

pub use imp::*;

/// Boards without a screen console: human text goes to the serial console only.
#[cfg(not(feature = "board-uefi"))]
pub fn screen_write(_text: &str) {}

#[cfg(not(feature = "board-uefi"))]
#[allow(dead_code)] // only `console::final_line` calls it, which only UEFI boards use
pub fn screen_write_final(_text: &str) {}

#[cfg(not(feature = "board-uefi"))]
pub fn screen_state() -> Result<(), alloc::string::String> {
    Err(alloc::format!(
        "board {} has no screen console (only UEFI boards draw on the GOP framebuffer)",
        NAME
    ))
}
