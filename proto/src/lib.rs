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
pub mod frame;
pub mod noise;

/// The `rand_core` version whose RNG traits Tern's APIs take.
pub use rand_core;

pub mod packet;
pub mod range_set;
pub mod recovery;
pub mod time;

pub use time::Instant;
pub mod channel;
pub mod config;
pub mod connection;
pub mod endpoint;
pub mod storage;

pub use config::Config;
pub use connection::{Connection, ConnectionError, Credentials, Event, Side, Transmit};

/// Byte store of a [`ConstrainedConnection`]: a 1 KiB window with its
/// reassembly bitmaps.
pub type ConstrainedBytes = storage::FixedBytes<{ channel::recv_store_len(1024) }>;

/// A connection sized for microcontrollers: fixed 1 KiB channel windows,
/// two channels, sixteen packets in flight; matches [`Config::constrained`].
pub type ConstrainedConnection = Connection<ConstrainedBytes, 2, 16>;

/// A connection for services: heap buffers that grow up to the configured
/// windows, 64 channels, 1024 packets in flight; matches
/// [`Config::service`].
#[cfg(feature = "alloc")]
pub type ServiceConnection = Connection<storage::HeapBytes, 64, 1024>;

/// An endpoint of [`ServiceConnection`]s on the heap.
#[cfg(feature = "alloc")]
pub type ServiceEndpoint =
    endpoint::Endpoint<storage::HeapBytes, 64, 1024, endpoint::BoxSlots<ServiceConnection>>;

/// An endpoint of up to `N` [`ConstrainedConnection`]s held inline.
pub type ConstrainedEndpoint<const N: usize> =
    endpoint::Endpoint<ConstrainedBytes, 2, 16, endpoint::ArraySlots<ConstrainedConnection, N>>;
