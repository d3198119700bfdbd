//! Frames: the units of content inside a packet's plaintext.
//!
//! A packet's plaintext is a CBOR sequence (RFC 8742): one CBOR data item per
//! frame, laid end to end. `spec/frames.md` is the normative description of
//! the wire format; this module is its implementation.
//!
//! Everything here borrows: decoding hands out [`Frame`]s whose byte and text
//! fields point into the plaintext, and encoding writes into a caller's slice.
//! Nothing allocates and nothing panics on any input.
//!
//! # Receiving
//!
//! A malformed frame makes the whole packet malformed: none of its frames may
//! be acted on. [`decode_all`] checks every frame first and only then hands
//! back an iterator that cannot fail:
//!
//! ```
//! use tern::frame::{decode_all, Frame};
//!
//! // PING, then two bytes of PADDING.
//! let plaintext = [0x81, 0x01, 0x00, 0x00];
//! let frames = decode_all(&plaintext)?;
//! assert!(frames.is_ack_eliciting());
//! assert_eq!(frames.len(), 3);
//! for frame in frames {
//!     match frame {
//!         Frame::Ping => { /* answer with an ACK */ }
//!         Frame::Padding => {}
//!         _ => unreachable!(),
//!     }
//! }
//! # Ok::<(), tern::frame::FrameError>(())
//! ```
//!
//! [`FrameDecoder`] is the lower-level iterator that yields each frame or the
//! first error.
//!
//! # Sending
//!
//! ```
//! use tern::frame::{max_message_data, Frame, MessageFrame};
//!
//! let mut packet = [0u8; 64];
//! let payload = b"hello, tern";
//! // How much of the payload fits in the space left?
//! let n = max_message_data(7, 0, packet.len(), true).min(payload.len());
//! let frame = Frame::Message(MessageFrame { channel: 7, offset: 0, fin: true, data: &payload[..n] });
//! let written = frame.encode(&mut packet)?;
//! assert_eq!(written, frame.encoded_len());
//! # Ok::<(), tern::frame::FrameError>(())
//! ```
//!
//! ACK frames are built straight from the receiver's ranges with
//! [`encode_ack`], which keeps as many of the newest ranges as fit.

pub(crate) mod ack;
pub(crate) mod cbor;
mod decode;
mod encode;
mod error;

#[cfg(test)]
mod tests;

pub use ack::{AckFrame, AckRangeIter, MAX_ACK_RANGES, encode_ack};
pub use decode::{FrameDecoder, Frames, decode_all};
pub use encode::{datagram_overhead, max_datagram_data, max_message_data, message_overhead};
pub use error::FrameError;

/// The longest CLOSE reason, in bytes of UTF-8.
pub const MAX_CLOSE_REASON_LEN: usize = 256;

/// Frame type numbers: the first element of a frame's CBOR array.
///
/// PADDING has no array; it is the bare unsigned integer 0. Types 10 to 15
/// are reserved for features to come and decode as
/// [`FrameError::UnknownFrame`] today, as does any other unlisted type.
pub mod frame_type {
    /// PADDING: the bare CBOR unsigned integer 0 (not an array).
    pub const PADDING: u64 = 0;
    /// PING: `[1]`.
    pub const PING: u64 = 1;
    /// ACK: `[2, ack_delay, largest, first_range, *(gap, range_len)]`.
    pub const ACK: u64 = 2;
    /// MESSAGE: `[3, channel, offset, fin, data]`.
    pub const MESSAGE: u64 = 3;
    /// DATAGRAM: `[4, data]`.
    pub const DATAGRAM: u64 = 4;
    /// CLOSE: `[5, code, reason]`.
    pub const CLOSE: u64 = 5;
    /// MAX_DATA: `[6, max]`.
    pub const MAX_DATA: u64 = 6;
    /// MAX_CHANNEL_DATA: `[7, channel, max]`.
    pub const MAX_CHANNEL_DATA: u64 = 7;
    /// DATA_BLOCKED: `[8, limit]`.
    pub const DATA_BLOCKED: u64 = 8;
    /// CHANNEL_BLOCKED: `[9, channel, limit]`.
    pub const CHANNEL_BLOCKED: u64 = 9;
}

/// One frame, borrowing any bytes or text from the plaintext it came from
/// (or from the caller, when it is built to be sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Frame<'a> {
    /// PADDING: one byte that fills space in a packet and means nothing.
    Padding,
    /// PING: asks for an acknowledgement and carries nothing else.
    Ping,
    /// ACK: the packet numbers received, as ranges.
    Ack(AckFrame<'a>),
    /// MESSAGE: a fragment of a channel's byte stream.
    Message(MessageFrame<'a>),
    /// DATAGRAM: an unreliable datagram.
    Datagram(&'a [u8]),
    /// CLOSE: the sender closes the session.
    Close(CloseFrame<'a>),
    /// MAX_DATA: the peer may send channel data up to this many bytes in
    /// total, over all channels.
    MaxData(u64),
    /// MAX_CHANNEL_DATA: the peer may send data on `channel` up to byte
    /// offset `max`.
    MaxChannelData {
        /// The channel the credit is for.
        channel: u32,
        /// The offset limit: data may be sent up to, not including, `max`.
        max: u64,
    },
    /// DATA_BLOCKED: the sender has data to send but is held back by the
    /// connection credit `limit`.
    DataBlocked(u64),
    /// CHANNEL_BLOCKED: the sender has data to send on `channel` but is held
    /// back by that channel's credit `limit`.
    ChannelBlocked {
        /// The blocked channel.
        channel: u32,
        /// The credit the sender is blocked at.
        limit: u64,
    },
}

/// A MESSAGE frame: `data` sits at byte `offset` of `channel`'s stream, the
/// stream being all of the channel's messages laid end to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageFrame<'a> {
    /// The channel id.
    pub channel: u32,
    /// Offset of `data`'s first byte within the channel's byte stream.
    pub offset: u64,
    /// Whether this fragment ends a message.
    pub fin: bool,
    /// The fragment's bytes.
    pub data: &'a [u8],
}

/// A CLOSE frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseFrame<'a> {
    /// Application or protocol error code (0 for a clean close).
    pub code: u32,
    /// Human-readable reason, at most [`MAX_CLOSE_REASON_LEN`] bytes.
    pub reason: &'a str,
}

impl Frame<'_> {
    /// The frame's type number (see [`frame_type`]).
    pub fn frame_type(&self) -> u64 {
        match self {
            Frame::Padding => frame_type::PADDING,
            Frame::Ping => frame_type::PING,
            Frame::Ack(_) => frame_type::ACK,
            Frame::Message(_) => frame_type::MESSAGE,
            Frame::Datagram(_) => frame_type::DATAGRAM,
            Frame::Close(_) => frame_type::CLOSE,
            Frame::MaxData(_) => frame_type::MAX_DATA,
            Frame::MaxChannelData { .. } => frame_type::MAX_CHANNEL_DATA,
            Frame::DataBlocked(_) => frame_type::DATA_BLOCKED,
            Frame::ChannelBlocked { .. } => frame_type::CHANNEL_BLOCKED,
        }
    }

    /// Whether a packet holding this frame must be acknowledged: true for
    /// every frame except PADDING and ACK.
    pub fn is_ack_eliciting(&self) -> bool {
        !matches!(self, Frame::Padding | Frame::Ack(_))
    }
}
