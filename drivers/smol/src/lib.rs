//! Tern on smol: secure, reliable sessions over UDP or TCP for services.
//!
//! The same API as `tern-tokio`, on `async-io` sockets and timers and
//! smol's executor. An [`Endpoint`] is a UDP socket with any number of
//! connections on it; one smol task per endpoint waits for the socket and
//! the timer and drives every connection; the endpoint's state (the
//! sans-IO state machine, [`tern::ServiceEndpoint`], the socket, the
//! timer) is shared with the [`Endpoint`] and [`Connection`] handles under
//! one lock, and they work on it from their own tasks. The endpoint loop,
//! the handles, the errors and the statistics are `tern-driver`'s, shared
//! with `tern-tokio`: a [`Connection`] is the same type in both, and the
//! two drivers speak to each other.
//!
//! # Quick start
//!
//! ```
//! use tern_smol::{Config, Endpoint, EndpointConfig, code, public_key};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! smol::block_on(async {
//!     // Server: a static key, a socket, an accept loop.
//!     let server_key = [7u8; 32]; // use `tern keygen` or the OS RNG
//!     let server = Endpoint::bind(
//!         "127.0.0.1:0".parse()?,
//!         EndpointConfig::server(Config::service(), server_key),
//!     )?;
//!     let server_addr = server.local_addr();
//!     smol::spawn(async move {
//!         while let Some(conn) = server.accept().await {
//!             smol::spawn(async move {
//!                 while let Ok((channel, msg)) = conn.recv().await {
//!                     let _ = conn.send(channel, msg).await;
//!                 }
//!             })
//!             .detach();
//!         }
//!     })
//!     .detach();
//!
//!     // Client: knows the server's public key (pattern IK, the default).
//!     let client = Endpoint::client("127.0.0.1:0".parse()?, Config::service())?;
//!     let conn = client.connect(server_addr, public_key(&server_key)).await?;
//!     conn.send(0, &b"hello"[..]).await?;
//!     let (channel, echo) = conn.recv().await?;
//!     assert_eq!((channel, &echo[..]), (0, &b"hello"[..]));
//!     conn.close(code::NO_ERROR, "bye").await?;
//!     Ok(())
//! })
//! # }
//! ```
//!
//! # Behaviour
//!
//! As in `tern-tokio`: [`Connection::send`] waits for room in the
//! windows (backpressure), every ending is a typed [`Error`],
//! [`Connection::close`] delivers then waits for the peer, dropping the
//! last handle closes without waiting, [`Endpoint::shutdown`] closes
//! everything within a bound. The endpoint's task runs on smol's global
//! executor (`smol::spawn`); handles work from any executor.
//!
//! # Transport
//!
//! UDP through `quinn-udp` on the `async-io` socket, with the same
//! batching as `tern-tokio` (`recvmmsg`, GRO, GSO) and the same fallback
//! to one packet per call. Or TCP: [`Endpoint::bind_tcp`] and
//! [`Endpoint::client_tcp`], each packet framed with its 2-byte length
//! (`tern::stream`, `spec/tcp.md`), one stream per peer; as in
//! `tern-tokio`, a framing error or the end of a stream closes that stream
//! and its sessions end with a typed timeout.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod endpoint;
mod runtime;

pub use endpoint::Endpoint;
pub use tern_driver::{Connection, EndpointStats, Error, SendError, Stats, public_key};

pub use tern::connection::code;
pub use tern::endpoint::EndpointConfig;
pub use tern::{Config, ConnectionError, Credentials};
