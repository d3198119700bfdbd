//! Tern: a secure, reliable session protocol as a sans-IO state machine.
//!
//! This crate is `#![no_std]` and needs no allocator. It never reads a clock
//! and never touches the network: callers hand it datagrams, the time and a
//! random number generator, and take datagrams, deadlines and events back.
//! Drivers (tokio, smol, embedded-nal) own sockets and timers and nothing
//! else.
//!
//! # The driving contract
//!
//! A [`Connection`] (one session) or an [`endpoint::Endpoint`] (many
//! sessions behind one socket) is driven by five calls:
//!
//! 1. `handle(now, from, datagram)`: a datagram arrived.
//! 2. `handle_timeout(now)`: the deadline from `poll_timeout` passed.
//! 3. `poll_transmit(now, buf)`: write the next datagram to send into `buf`
//!    and say where it goes; call until it returns `Ok(None)`.
//! 4. `poll_timeout()`: the next deadline (an [`Instant`] in microseconds,
//!    from the caller's monotonic clock).
//! 5. `poll_event()`: what happened for the application; call until `None`.
//!
//! After any input (1 or 2) or application call (`send`, `close`, ...),
//! poll transmits and events until nothing is left, then sleep until the
//! next datagram or the deadline. The application API is on the
//! connection: [`Connection::open_channel`], [`Connection::send`] (returns
//! `WouldBlock` with the reason instead of buffering without bound),
//! [`Connection::recv`], [`Connection::send_datagram`],
//! [`Connection::recv_datagram`], [`Connection::close`] and
//! [`Connection::stats`]. A short output buffer is a typed error that says
//! how much is needed and changes nothing. [`Connection::recv_with`],
//! [`Connection::recv_any_with`] and [`Connection::recv_datagram_with`]
//! read without copying: they lend the next message to a closure as the
//! (up to) two slices of the ring that hold it, then consume it exactly as
//! the copying calls do.
//!
//! ```
//! use core::net::SocketAddr;
//! use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
//! use tern::crypto::{CryptoProvider, RustCrypto};
//! use tern::{Config, ConstrainedConnection, Credentials, Event, Instant};
//!
//! // Seed from the OS or a hardware RNG in real use.
//! let mut rng = ChaCha20Rng::from_seed([7; 32]);
//! let server_key = [1u8; 32];
//! let client_addr: SocketAddr = "10.0.0.2:5000".parse().unwrap();
//! let server_addr: SocketAddr = "10.0.0.1:4433".parse().unwrap();
//! let mut now = Instant::from_millis(1);
//!
//! // The client knows the server's public key (pattern IK, the default).
//! let creds = Credentials {
//!     private_key: Some([2u8; 32]),
//!     remote_public_key: Some(RustCrypto.x25519_base(&server_key)),
//!     psk: None,
//! };
//! let mut client = ConstrainedConnection::connect(Config::constrained(), &creds, now, 1, server_addr, &mut rng)?;
//!
//! // The server is created from the client's first datagram.
//! let mut buf = [0u8; 1500];
//! let t = client.poll_transmit(now, &mut buf)?.expect("first handshake message");
//! let server_creds = Credentials { private_key: Some(server_key), ..Credentials::default() };
//! let mut server = ConstrainedConnection::accept(
//!     Config::constrained(), &server_creds, now, 2, client_addr, &buf[..t.len], &mut rng,
//! ).expect("valid first message");
//!
//! // A tiny event loop for both ends over a perfect network.
//! let mut got = Vec::new();
//! client.send(0, b"hello").ok(); // fails until connected; we resend below
//! for _ in 0..20 {
//!     while let Some(t) = server.poll_transmit(now, &mut buf)? {
//!         client.handle(now, server_addr, &mut buf[..t.len]).ok();
//!     }
//!     while let Some(t) = client.poll_transmit(now, &mut buf)? {
//!         server.handle(now, client_addr, &mut buf[..t.len]).ok();
//!     }
//!     while let Some(e) = client.poll_event() {
//!         if e == Event::Connected {
//!             client.send(0, b"hello").unwrap();
//!         }
//!     }
//!     while let Some(e) = server.poll_event() {
//!         if let Event::Readable(ch) = e {
//!             let mut msg = [0u8; 64];
//!             while let Ok(Some(n)) = server.recv(ch, &mut msg) {
//!                 got.push(msg[..n].to_vec());
//!             }
//!         }
//!     }
//!     // Jump to the next deadline, as a driver's timer would.
//!     if let Some(t) = client.poll_timeout().into_iter().chain(server.poll_timeout()).min() {
//!         now = now.max(t.min(now + core::time::Duration::from_millis(10)));
//!         client.handle_timeout(now);
//!         server.handle_timeout(now);
//!     }
//! }
//! assert_eq!(got, [b"hello".to_vec()]);
//! assert!(client.stats().handshake_duration.is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Layers
//!
//! - [`noise`]: a Noise Protocol Framework engine, byte-exact with the
//!   specification and its published vectors, behind the pluggable
//!   [`crypto`] provider (RustCrypto and dalek by default).
//! - [`packet`]: headers, packet numbers, the replay window.
//! - [`frame`]: the CBOR frames inside packets.
//! - [`channel`]: ordered reliable message streams with flow control.
//! - [`recovery`]: RTT estimation, NewReno.
//! - [`connection`], [`endpoint`]: the state machines.
//! - [`stream`]: the TCP framing (2-byte length prefixes) as a sans-IO codec.
//!
//! # Memory
//!
//! Without `alloc`, every buffer is fixed and the RAM cost is known at
//! compile time: `core::mem::size_of::<ConstrainedConnection>()` is 14,744
//! bytes on a 64-bit host (two channels with 1 KiB windows each way and
//! their reassembly bitmaps, two datagram queues, eight tracked packets, the
//! handshake state and keys; `cargo run -p tern --example sizes` prints it).
//! Smaller windows, fewer channels or fewer tracked packets are a matter of
//! choosing other type parameters. With `alloc`, [`ServiceConnection`]
//! buffers live on the heap and follow what each channel holds: a buffer
//! starts at 4 KiB (or the window if smaller) when the channel first holds
//! data, doubles when more must be held at once (up to the window, which
//! stays the flow-control credit) and is freed once drained, at the
//! connection's next timer; so is each channel's table of queued message
//! ends, which holds up to one end per 32 bytes of window (a fixed store
//! holds 64). A `ServiceConnection` is 81,080 bytes inline, most of it
//! the table of 256 tracked packets and 64 channel slots.
//!
//! Features: `alloc` and `std` are opt-in; the default build is `no_std`
//! without `alloc`.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(any(feature = "alloc", test))]
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
pub mod stream;

pub use config::Config;
pub use connection::{Connection, ConnectionError, Credentials, Event, Side, Transmit};

/// Byte store of a [`ConstrainedConnection`]: a 1 KiB window with its
/// reassembly bitmaps.
pub type ConstrainedBytes = storage::FixedBytes<{ channel::recv_store_len(1024) }>;

/// A connection sized for microcontrollers: fixed 1 KiB channel windows,
/// two channels, eight packets tracked in flight; matches [`Config::constrained`].
pub type ConstrainedConnection = Connection<ConstrainedBytes, 2, 8>;

/// A connection for services: heap buffers that grow with what a channel
/// holds, up to the configured window, and are freed once drained; 64
/// channels, 256 packets in flight; matches
/// [`Config::service`].
#[cfg(feature = "alloc")]
pub type ServiceConnection = Connection<storage::HeapBytes, 64, 256>;

/// An endpoint of [`ServiceConnection`]s on the heap.
#[cfg(feature = "alloc")]
pub type ServiceEndpoint =
    endpoint::Endpoint<storage::HeapBytes, 64, 256, endpoint::BoxSlots<ServiceConnection>>;

/// An endpoint of up to `N` [`ConstrainedConnection`]s held inline.
pub type ConstrainedEndpoint<const N: usize> =
    endpoint::Endpoint<ConstrainedBytes, 2, 8, endpoint::ArraySlots<ConstrainedConnection, N>>;
