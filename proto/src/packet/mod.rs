//! Packet layouts: the long header of handshake packets, the short header of
//! data packets, packet-number truncation and the replay window.
//!
//! Byte diagrams are in `spec/packets.md`.

mod header;
mod number;
mod replay_window;

pub use header::{
    HandshakeHeader, HandshakeKind, LONG_HEADER_LEN, PacketClass, PacketError, SHORT_HEADER_MAX,
    ShortHeader, VERSION, classify,
};
pub use number::{decode_packet_number, encoded_pn_len};
pub use replay_window::{MAX_REPLAY_WINDOW, ReplayCheck, ReplayWindow};
