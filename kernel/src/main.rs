//! atomprobe bare-metal image: boots, brings up the cores, runs the probe suite and prints the
//! report over serial.
//!
//! Generic code lives here and never names a register or an address; everything specific to an
//! architecture is in `arch/<arch>/`, everything specific to a board in `board/<board>/` (see
//! ARCHITECTURE.md for the list of what each must provide).
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod arch;
#[cfg(target_os = "none")]
mod board;
#[cfg(target_os = "none")]
mod console;
#[cfg(target_os = "none")]
mod fatal;
#[cfg(target_os = "none")]
mod heap;
#[cfg(target_os = "none")]
mod kmain;
#[cfg(target_os = "none")]
mod platform;
#[cfg(target_os = "none")]
mod sync;

#[cfg(target_os = "none")]
pub use kmain::{abort_run, kmain, BootInfo};

/// The image only means something on bare metal; on a host target this binary only explains.
#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "atomprobe-kernel is a bare-metal image: build it with --target aarch64-unknown-none \
         or x86_64-unknown-none (see ./scripts/run)"
    );
    std::process::exit(2);
}
