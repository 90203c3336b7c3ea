//! herdtools7 `.litmus` tests as text, shared by everything that reads them
//! (ARCHITECTURE.md, "Litmus files"):
//!
//! - [`parse`]: the parser (header, init, thread columns, `locations`, condition);
//! - [`norm`]: a test's normalised text and digest (how a kinds line is tied to one text) and
//!   register names as a condition spells them;
//! - [`gen`]: kinds files and the translation of tests into the Rust module of `FileTest`s the
//!   probes crate compiles in.
//!
//! no_std + alloc, so the image parses a test's text at run time with the same parser
//! (`probes::litmus::file::prepare`), while `probes/build.rs` (the built-in tests of
//! `probes/litmus/`) and `atomprobe litmus` (the user's files) generate code with the same
//! generator.

#![no_std]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod gen;
pub mod norm;
pub mod parse;

/// Most operand slots (registers and location addresses) of one thread of a generated test:
/// the size of the runner's `io` array (`probes::litmus::file::FileBody`).
pub const MAX_IO: usize = 24;

/// A kinds file's verdict on a test's condition (herd7's kinds: `Allow`, `Forbid`, `Require`),
/// or `Unknown` when no line matches. The variants are spelled as `probes::record::ModelVerdict`'s,
/// which the generated module names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Allowed,
    Forbidden,
    Required,
    Unknown,
}
