//! The frame codec's error type.

use core::fmt;

/// Why a frame could not be decoded or encoded.
///
/// Decoding yields [`Truncated`](Self::Truncated),
/// [`Malformed`](Self::Malformed), [`UnknownFrame`](Self::UnknownFrame) or
/// [`TooManyAckRanges`](Self::TooManyAckRanges); a receiver treats all four
/// alike (the packet is discarded and counted as malformed) and may log which
/// one it was. Encoding yields the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The input ended inside a frame, or a length in it points past the end.
    Truncated,
    /// The bytes are not a frame of a known type: wrong CBOR type, wrong
    /// array length, an integer out of its field's range or not in its
    /// shortest form, an indefinite length, a tag, invalid UTF-8, an ACK range
    /// below packet number 0, a MESSAGE ending past offset 2^64 - 1, or a
    /// CLOSE reason over 256 bytes.
    Malformed,
    /// A well-formed frame array whose type number this version does not know
    /// (types 10 to 15 are reserved for features to come).
    UnknownFrame(u64),
    /// An ACK frame with more than [`MAX_ACK_RANGES`](super::MAX_ACK_RANGES)
    /// ranges.
    TooManyAckRanges,
    /// The output slice is too short; nothing was written. `needed` is the
    /// exact length the encoding needs.
    BufferTooSmall {
        /// Bytes the encoding needs.
        needed: usize,
    },
    /// [`encode_ack`](super::encode_ack) was given no range, a range whose
    /// start is above its end, ranges that are not strictly descending with at
    /// least one unacknowledged packet between them, or `max_ranges == 0`.
    InvalidAckRanges,
    /// A CLOSE frame to encode has a reason longer than
    /// [`MAX_CLOSE_REASON_LEN`](super::MAX_CLOSE_REASON_LEN) bytes.
    ReasonTooLong,
    /// A MESSAGE frame to encode ends past byte offset 2^64 - 1.
    OffsetOverflow,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Truncated => f.write_str("frame truncated"),
            FrameError::Malformed => f.write_str("malformed frame"),
            FrameError::UnknownFrame(ty) => write!(f, "unknown frame type {ty}"),
            FrameError::TooManyAckRanges => write!(
                f,
                "ACK frame has more than {} ranges",
                super::MAX_ACK_RANGES
            ),
            FrameError::BufferTooSmall { needed } => {
                write!(f, "output buffer too small: {needed} bytes needed")
            }
            FrameError::InvalidAckRanges => f.write_str("invalid ACK ranges to encode"),
            FrameError::ReasonTooLong => write!(
                f,
                "CLOSE reason longer than {} bytes",
                super::MAX_CLOSE_REASON_LEN
            ),
            FrameError::OffsetOverflow => f.write_str("MESSAGE frame ends past offset 2^64 - 1"),
        }
    }
}

impl core::error::Error for FrameError {}
