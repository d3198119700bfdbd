//! The errors of the driver: how a connection ends, and why a send fails.

use std::io;
use std::sync::Arc;

/// Every way a connection ends or fails to start.
///
/// Once a connection has ended, every call on it returns the same `Error`.
#[derive(Clone, Debug, thiserror::Error)]
pub enum Error {
    /// The connection ended as the core reports it: closed by either side
    /// (with the code and reason), handshake timeout or failure, version
    /// or parameter mismatch, idle or delivery timeout, protocol violation.
    #[error("{0}")]
    Closed(tern::ConnectionError),
    /// The connection could not be set up (a key the pattern needs is
    /// missing, the configuration is inconsistent, the endpoint is full).
    #[error("cannot connect: {0}")]
    Setup(tern::connection::ConnectError),
    /// The endpoint's socket failed; every connection on it ended.
    #[error("socket error: {0}")]
    Io(Arc<io::Error>),
    /// The endpoint was shut down, or its task is gone.
    #[error("endpoint closed")]
    EndpointClosed,
}

impl Error {
    /// The core's reason, when the connection ended through the protocol.
    pub fn connection_error(&self) -> Option<&tern::ConnectionError> {
        match self {
            Error::Closed(e) => Some(e),
            _ => None,
        }
    }

    /// Whether this is a clean close by either side with code 0.
    pub fn is_clean_close(&self) -> bool {
        matches!(
            self,
            Error::Closed(
                tern::ConnectionError::LocallyClosed { code: 0 }
                    | tern::ConnectionError::PeerClosed { code: 0, .. }
            )
        )
    }
}

impl From<tern::ConnectionError> for Error {
    fn from(e: tern::ConnectionError) -> Self {
        Error::Closed(e)
    }
}

/// Why a message or datagram was not sent.
#[derive(Clone, Debug, thiserror::Error)]
pub enum SendError {
    /// Larger than the peer accepts (or the channel can ever hold).
    #[error("message larger than {max} bytes")]
    TooLarge {
        /// The largest size allowed.
        max: usize,
    },
    /// Messages must have at least one byte (datagrams may be empty).
    #[error("empty message")]
    Empty,
    /// The channel id is beyond what either side accepts.
    #[error("invalid channel")]
    InvalidChannel,
    /// Unreliable datagrams are queued faster than they can be sent; this
    /// one was dropped (datagrams never wait).
    #[error("datagram queue full")]
    QueueFull,
    /// The connection ended (or is closing).
    #[error(transparent)]
    Closed(#[from] Error),
}
