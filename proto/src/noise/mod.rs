//! A Noise Protocol Framework engine, byte-exact with revision 34 of the
//! specification, for Curve25519 with ChaChaPoly or AESGCM and SHA256,
//! SHA512, BLAKE2s or BLAKE2b.
//!
//! - [`NoiseParams`] parses protocol names such as
//!   `Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s`.
//! - [`Builder`] collects keys, prologue and PSKs and builds a
//!   [`HandshakeState`] for either role.
//! - [`HandshakeState::write_message`] and [`HandshakeState::read_message`]
//!   run the handshake into and out of caller buffers; nothing allocates.
//! - [`HandshakeState::into_transport`] performs Split and returns a
//!   [`TransportState`] with one [`CipherState`] per direction.
//!
//! Every failure is a [`NoiseError`]; a failed call changes no state, so a
//! datagram transport can drop a bad packet and go on waiting for a good one.

mod cipher_state;
mod error;
mod handshake;
mod params;
mod pattern;
mod symmetric;
mod transport;

pub use cipher_state::CipherState;
pub use error::{KeyRole, NoiseError};
pub use handshake::{Builder, HandshakeState, Role};
pub use params::NoiseParams;
pub use pattern::{HandshakePattern, MAX_MESSAGES, MAX_PSKS, Token};
pub use transport::TransportState;

/// Largest Noise message, handshake or transport (Noise §3).
pub const MAX_MESSAGE_LEN: usize = 65535;
/// Length of a pre-shared key.
pub const PSKLEN: usize = 32;

#[cfg(test)]
mod tests;
