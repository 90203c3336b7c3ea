//! Page-table descriptor encodings and builders, as pure functions so the host's unit tests can
//! check every bit against the architecture manuals. The bare-metal image writes the tables these
//! produce; nothing here touches a system register.

pub mod aarch64;
pub mod granule;
pub mod x86_64;
