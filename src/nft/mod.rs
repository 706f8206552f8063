//! Reading the live ruleset from the kernel.
//!
//! [`read_snapshot`] takes one consistent copy of the current network
//! namespace's ruleset: it reads the generation id, dumps every object kind,
//! reads the generation again, and starts over if the ruleset changed in
//! between (or the kernel flagged a dump as interrupted), so a snapshot is
//! never a mix of two rulesets.

pub mod decode;
mod read;
pub mod sys;

pub use read::{read_snapshot, ReadError, ReadOptions};
