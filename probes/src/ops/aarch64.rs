//! aarch64 probe instructions. (Filled in by the aarch64 board work.)

use super::FaultCase;

pub static FAULT_CASES: &[FaultCase] = &[];
