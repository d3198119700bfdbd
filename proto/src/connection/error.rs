//! Errors of the connection API and the ways a connection ends.

use crate::channel::SendBlocked;
use crate::noise::NoiseError;
use core::fmt;

/// Largest CLOSE reason kept (longer reasons are cut at a UTF-8 boundary).
pub const MAX_REASON: usize = 64;

/// Error codes carried in CLOSE frames. Codes below 0x100 are Tern's own;
/// applications use 0 or 0x100 and above.
pub mod code {
    /// Clean close.
    pub const NO_ERROR: u32 = 0;
    /// The sender hit an internal limit or bug.
    pub const INTERNAL: u32 = 1;
    /// The peer broke the protocol (malformed frame, bad ack, …).
    pub const PROTOCOL_VIOLATION: u32 = 2;
    /// The peer sent beyond its credit.
    pub const FLOW_CONTROL: u32 = 3;
    /// The handshake parameters are unacceptable.
    pub const PARAMETER: u32 = 4;
    /// A message larger than the receiver accepts.
    pub const MESSAGE_TOO_LARGE: u32 = 5;
    /// Data stayed unacknowledged longer than the delivery timeout.
    pub const DELIVERY_TIMEOUT: u32 = 6;
    /// The server is shutting down.
    pub const SHUTDOWN: u32 = 7;
}

/// A close reason kept without allocation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Reason {
    buf: [u8; MAX_REASON],
    len: u8,
}

impl Reason {
    /// Copies `s`, cut to [`MAX_REASON`] bytes at a character boundary.
    pub fn new(s: &str) -> Reason {
        let mut end = s.len().min(MAX_REASON);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        let mut buf = [0u8; MAX_REASON];
        buf[..end].copy_from_slice(&s.as_bytes()[..end]);
        Reason {
            buf,
            len: end as u8,
        }
    }

    /// The reason text.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..usize::from(self.len)]).unwrap_or("")
    }
}

impl fmt::Debug for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a connection ended; delivered once as [`crate::Event::Closed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionError {
    /// The application closed it (with this code and reason).
    LocallyClosed {
        /// The code sent.
        code: u32,
    },
    /// The peer closed it.
    PeerClosed {
        /// The peer's code.
        code: u32,
        /// The peer's reason.
        reason: Reason,
    },
    /// The handshake did not finish within the handshake timeout.
    HandshakeTimeout,
    /// The handshake failed cryptographically (wrong keys, wrong PSK).
    HandshakeFailed(NoiseError),
    /// The peer speaks another protocol version.
    VersionMismatch {
        /// Ours.
        ours: u8,
        /// The newest the peer offered.
        theirs: u8,
    },
    /// The peer's handshake parameters are unacceptable, or it refused ours.
    ParameterMismatch,
    /// Nothing heard from the peer within the idle timeout.
    IdleTimeout,
    /// Sent data stayed unacknowledged past the delivery timeout.
    DeliveryTimeout,
    /// The peer broke the protocol; the code sent to it.
    ProtocolViolation {
        /// The code sent in our CLOSE.
        code: u32,
    },
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionError::LocallyClosed { code } => write!(f, "closed locally (code {code})"),
            ConnectionError::PeerClosed { code, reason } => {
                write!(f, "closed by peer (code {code}: {reason})")
            }
            ConnectionError::HandshakeTimeout => f.write_str("handshake timed out"),
            ConnectionError::HandshakeFailed(e) => write!(f, "handshake failed: {e}"),
            ConnectionError::VersionMismatch { ours, theirs } => {
                write!(f, "version mismatch: we speak {ours}, the peer {theirs}")
            }
            ConnectionError::ParameterMismatch => f.write_str("handshake parameters refused"),
            ConnectionError::IdleTimeout => f.write_str("idle timeout"),
            ConnectionError::DeliveryTimeout => f.write_str("delivery timeout"),
            ConnectionError::ProtocolViolation { code } => {
                write!(f, "peer violated the protocol (code {code})")
            }
        }
    }
}

impl core::error::Error for ConnectionError {}

/// Why `send` refused a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// Try again later; the reason says what is full. A `Writable` event
    /// follows when it clears.
    WouldBlock(SendBlocked),
    /// Larger than the peer accepts or the channel can ever hold.
    TooLarge {
        /// The largest message allowed.
        max: usize,
    },
    /// Messages must have at least one byte.
    Empty,
    /// The channel id is beyond what the peer accepts.
    InvalidChannel,
    /// The connection is not established, or is closing or closed.
    NotConnected,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::WouldBlock(r) => write!(f, "would block: {r:?}"),
            SendError::TooLarge { max } => write!(f, "message larger than {max} bytes"),
            SendError::Empty => f.write_str("empty message"),
            SendError::InvalidChannel => f.write_str("invalid channel"),
            SendError::NotConnected => f.write_str("not connected"),
        }
    }
}

impl core::error::Error for SendError {}

/// Errors of `poll_transmit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransmitError {
    /// The buffer is shorter than a packet may be; nothing changed.
    BufferTooSmall {
        /// The size to pass.
        needed: usize,
    },
}

impl fmt::Display for TransmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransmitError::BufferTooSmall { needed } => {
                write!(f, "transmit buffer too small: {needed} needed")
            }
        }
    }
}

impl core::error::Error for TransmitError {}

/// Errors of `connect` and `accept`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectError {
    /// The handshake could not be set up (a key the pattern needs is
    /// missing, for example).
    Noise(NoiseError),
    /// The configuration is inconsistent (for example a max message size
    /// above the channel window).
    InvalidConfig(&'static str),
    /// No room for another connection.
    TooManyConnections,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Noise(e) => write!(f, "handshake setup: {e}"),
            ConnectError::InvalidConfig(why) => write!(f, "invalid configuration: {why}"),
            ConnectError::TooManyConnections => f.write_str("too many connections"),
        }
    }
}

impl core::error::Error for ConnectError {}

impl From<NoiseError> for ConnectError {
    fn from(e: NoiseError) -> Self {
        ConnectError::Noise(e)
    }
}
