//! Board support, chosen by cargo feature. Each `board/<board>/mod.rs` provides:
//!
//! | item | what |
//! |---|---|
//! | `const NAME: &str` | `begin.board` (`qemu-virt`, `qemu-raspi4b`/`rpi4`, `qemu-pc`, `uefi-x86_64`/`uefi-aarch64`) |
//! | `fn console_write(&[u8])` | raw bytes to the serial console |
//! | `fn exit(RunStatus) -> !` | leave the emulator with a status saying whether the run completed (semihosting, isa-debug-exit), or park the board |
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
