//! The runtime-independent core of Tern's drivers (`tern-tokio`,
//! `tern-smol`): the endpoint loop that drives every connection of an
//! endpoint through Tern's five-call contract, the [`Connection`] handle,
//! the errors and statistics, and the UDP and TCP transports written
//! against a few runtime hooks.
//!
//! A driver crate supplies what belongs to its runtime only: a socket's
//! readiness ([`UdpIo`]), a timer and clock ([`Timer`]), TCP streams and
//! spawning ([`TcpRuntime`]), and spawns the task that
//! [`Endpoint::start`] returns. The endpoint's state (the state machine,
//! the socket, the timer) sits behind one lock shared by that task and
//! every handle: a [`Connection`] sends and receives from the caller's
//! task, with wakers rather than messages to the endpoint's task, so it
//! can be used from any executor.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod clock;
mod conn_state;
mod connection;
mod driver;
mod endpoint;
mod error;
mod runtime;
mod stats;
mod tcp;
#[cfg(test)]
mod tests;
mod udp;

pub use connection::Connection;
pub use endpoint::{Endpoint, EndpointStats};
pub use error::{Error, SendError};
pub use runtime::{Timer, Transport};
pub use stats::Stats;
pub use tcp::{TcpIo, TcpRuntime, TcpTransport};
pub use udp::{UdpIo, UdpTransport, bind_tcp, bind_udp};

pub use tern::connection::code;
pub use tern::endpoint::EndpointConfig;
pub use tern::{Config, ConnectionError, Credentials};

/// The X25519 public key of a static private key, as `connect` expects it
/// for a server.
pub fn public_key(private_key: &[u8; 32]) -> [u8; 32] {
    use tern::crypto::CryptoProvider;
    tern::crypto::RustCrypto.x25519_base(private_key)
}
