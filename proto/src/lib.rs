//! Tern: a secure, reliable session protocol as a sans-IO state machine.
//!
//! This crate is `#![no_std]` and needs no allocator. It never reads a clock
//! and never touches the network: callers hand it bytes, time and a random
//! number generator, and take bytes back.
//!
//! Today it holds the foundation, a [Noise Protocol Framework](noise) engine
//! that is byte-exact with the specification and its published test vectors,
//! behind a pluggable [crypto provider](crypto).
//!
//! Features: `alloc` and `std` are opt-in and add nothing required; the
//! default build is `no_std` without `alloc`.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

pub mod crypto;
pub mod noise;

/// The `rand_core` version whose RNG traits Tern's APIs take.
pub use rand_core;
