//! The Tern conformance suite as a library, so tests can call what the
//! command line runs.

pub mod noise_vectors;
pub mod scenario;
pub mod scenarios;
pub mod sim;
pub mod simulate;
pub mod tern_vectors;
