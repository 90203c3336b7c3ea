//! Shared heart of atomprobe: the report format, boot-argument parsing, fault decoding, memory
//! attributes and the probe definitions. `no_std` + `alloc`, so the bare-metal image and the
//! host tool use the very same code. With the `std` feature, [`hosted`] runs them as OS threads.
#![cfg_attr(not(any(test, feature = "std")), no_std)]

extern crate alloc;

pub mod attr;
pub mod config;
pub mod dtb;
pub mod fault;
pub mod guard;
#[cfg(feature = "std")]
pub mod hosted;
pub mod litmus;
pub mod mapping;
pub mod memmap;
pub mod mmu;
pub mod ops;
pub mod platform;
pub mod record;
pub mod report;
pub mod rules;
pub mod suite;

/// Version of the atomprobe image / tool, printed in `begin.version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
