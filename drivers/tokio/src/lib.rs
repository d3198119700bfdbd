//! Tern on tokio: secure, reliable sessions over UDP or TCP for services.
//!
//! An [`Endpoint`] is a UDP socket with any number of connections on it.
//! One tokio task per endpoint waits for the socket and the timer and
//! drives every connection through Tern's five-call contract; the
//! endpoint's state (the sans-IO state machine,
//! [`tern::ServiceEndpoint`], the socket, the timer) is shared with the
//! [`Endpoint`] and [`Connection`] handles under one lock, so a `send`
//! encrypts and transmits from the caller's task and a `recv` takes the
//! message itself, without a round trip through the endpoint's task.
//! There is no task per connection or per packet. Its cryptography is `tern-ring`'s `RingCrypto` (ring's AEADs,
//! SHA-2 and HMAC), byte for byte compatible with Tern's default
//! `RustCrypto`, which peers such as embedded clients may use.
//!
//! # Quick start
//!
//! A server that echoes every message, and a client that sends one:
//!
//! ```
//! use tern_tokio::{Config, Endpoint, EndpointConfig, code, public_key};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Server: a static key, a socket, an accept loop.
//! let server_key = [7u8; 32]; // use `tern keygen` or the OS RNG
//! let server = Endpoint::bind(
//!     "127.0.0.1:0".parse()?,
//!     EndpointConfig::server(Config::service(), server_key),
//! )?;
//! let server_addr = server.local_addr();
//! tokio::spawn(async move {
//!     while let Some(conn) = server.accept().await {
//!         tokio::spawn(async move {
//!             while let Ok((channel, msg)) = conn.recv().await {
//!                 let _ = conn.send(channel, msg).await;
//!             }
//!         });
//!     }
//! });
//!
//! // Client: knows the server's public key (pattern IK, the default).
//! let client = Endpoint::client("127.0.0.1:0".parse()?, Config::service())?;
//! let conn = client.connect(server_addr, public_key(&server_key)).await?;
//! conn.send(0, &b"hello"[..]).await?;
//! let (channel, echo) = conn.recv().await?;
//! assert_eq!((channel, &echo[..]), (0, &b"hello"[..]));
//! conn.close(code::NO_ERROR, "bye").await?;
//! println!("{:?}", conn.stats().await?.connection.smoothed_rtt);
//! # Ok(())
//! # }
//! ```
//!
//! # Behaviour
//!
//! - **Backpressure**: [`Connection::send`] waits while the channel's
//!   window or the peer's credit is full, and nothing is buffered beyond
//!   the windows: a peer that does not read holds the sender back.
//! - **Errors**: every way a connection ends is an [`Error`]: the core's
//!   [`tern::ConnectionError`] (closed by either side with its code and
//!   reason, handshake timeout or failure, version or parameter mismatch,
//!   idle or delivery timeout, protocol violation), a socket failure, or
//!   the endpoint being gone.
//! - **Closing**: [`Connection::close`] delivers what is queued, then
//!   waits for the peer's acknowledgement; dropping the last handle of a
//!   connection closes it the same way without waiting;
//!   [`Endpoint::shutdown`] closes everything and waits, within a bound.
//! - **Logging**: `tracing` spans and events for the endpoint, each
//!   connection's lifecycle and errors (install any subscriber).
//! - **Reconnecting**: [`ReconnectingClient`] keeps one client connection
//!   up. When it ends with a socket, timeout or peer-close error, it
//!   connects again after a wait that grows by a multiplier up to a cap,
//!   with jitter, giving up after an optional number of attempts
//!   ([`ReconnectConfig`]). Every attempt is reported as a
//!   [`ReconnectEvent`] (Waiting, Connecting, AttemptFailed, Connected,
//!   Disconnected, GaveUp) and a `tracing` event; while it reconnects,
//!   its `send` and `recv` return [`ReconnectError::Reconnecting`] rather
//!   than buffer, and [`ReconnectingClient::wait_connected`] waits for the
//!   next connection.
//!
//! # Transport
//!
//! UDP, through `quinn-udp`: many datagrams per receive call (`recvmmsg`,
//! and GRO coalescing on Linux), and runs of equal-size packets to one
//! destination sent as one segmented write (GSO), falling back to one
//! packet per call where the OS offers neither. Sockets bound by the
//! endpoint ask for 2 MiB kernel buffers, so bursts (many handshakes at
//! once) are not dropped.
//!
//! TCP is one line away: [`Endpoint::bind_tcp`] listens for streams and
//! [`Endpoint::client_tcp`] opens one stream per connection, with the same
//! API and behaviour. Every packet is framed with its 2-byte length
//! (`tern::stream`, `spec/tcp.md`); each stream is one peer address of the
//! same state machine. A framing error or the end of a stream closes that
//! stream; its sessions end as sessions whose peer went silent (a typed
//! timeout), never as a clean close. A stream is closed once no session
//! uses it, after everything queued for it was written.
//!
//! # Shared core
//!
//! The endpoint loop, [`Connection`], [`Error`] and the statistics are
//! `tern-driver`'s, shared with `tern-smol`; this crate is tokio's
//! sockets, timer and spawning. A `Connection` waits with plain wakers,
//! so it can be used from any executor.
//!
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod endpoint;
pub mod reconnect;
mod socket;

pub use endpoint::Endpoint;
pub use reconnect::{
    ReconnectConfig, ReconnectError, ReconnectEvent, ReconnectState, ReconnectingClient,
};
pub use tern_driver::{Connection, EndpointStats, Error, SendError, Stats};

pub use tern::connection::code;
pub use tern::endpoint::EndpointConfig;
pub use tern::{Config, ConnectionError, Credentials};

/// The X25519 public key of a static private key, as
/// [`Endpoint::connect`] expects it for a server.
pub fn public_key(private_key: &[u8; 32]) -> [u8; 32] {
    use tern::crypto::CryptoProvider;
    tern::crypto::RustCrypto.x25519_base(private_key)
}
