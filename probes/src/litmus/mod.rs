//! Litmus tests: every test takes the `.litmus` path ([`file`](mod@file)): tests generated from
//! herdtools7 files at build time (the built-in suite of `probes/litmus/` by default, or the files
//! given to `atomprobe litmus` / `atomprobe image --litmus`) and their runner ([`file::run`]).
//! [`engine`] holds the machinery that keeps the roles of a batch in step (the batch barrier and
//! its agreement, the sync modes, the stagger tuner, the time bounds, `litmus-debug=skew`).
//!
//! # Instances, values and why a relaxed outcome is never a harness artefact
//! The runner executes *instances*: one run of every thread's body on one set of locations.
//! Within one *batch* every instance has its own locations, so an instance is exactly the
//! litmus test with its own fresh variables. Consecutive batches alternate between the two
//! halves of the arena, and a batch barrier (release/acquire, see [`engine`]) separates every
//! batch from the next, and from the classification of the one before. Every location holds its
//! initial value when the batch that uses it starts: the classification of a batch writes the
//! initial values back, and the next barrier orders those writes before the batch that reuses
//! the half (the argument, step by step, is in [`file::run`]'s module documentation).
//!
//! Hence each counted outcome is an outcome of a genuine instance of the test embedded in a
//! larger execution (other instances, the batch barrier): every write of an earlier batch is
//! coherence-before the instance's initial values. Extra events only add ordering constraints
//! in axiomatic models (aarch64.cat, x86-TSO: acyclicity of relations that grow with the
//! execution), so an outcome the model forbids for the test alone stays forbidden in the
//! embedding: observing it is a real violation, not an artefact of the harness.
//!
//! (Until session 6 of issue 14 a second runner, generation-tagged and for hand-written Rust
//! test tables, was kept beside the file runner as its speed reference; the file runner
//! overtook it, and it was removed: docs/probes.md, "Classification (session 6)".)

pub mod engine;
pub mod file;
pub use atomprobe_litmus::parse;
