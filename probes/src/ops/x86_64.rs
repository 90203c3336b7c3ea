//! x86-64 probe instructions. (Filled in by the x86-64 board work.)

use super::FaultCase;

pub static FAULT_CASES: &[FaultCase] = &[];
