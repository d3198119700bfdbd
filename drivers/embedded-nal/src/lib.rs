//! Tern over `embedded-nal`: secure, reliable sessions for microcontrollers.
//!
//! `#![no_std]`, no allocator, no unsafe code. A client owns one UDP socket
//! of the caller's network stack, one [`tern::Connection`] (by default a
//! [`tern::ConstrainedConnection`]: 1 KiB channel windows, two channels)
//! and two packet buffers of `BUF` bytes, all inline: the RAM cost is
//! `size_of` the client, known at compile time. It does socket and timer
//! plumbing and nothing else; the protocol is `tern`'s.
//!
//! - [`blocking::Client`]: over an `embedded-nal` 0.9 [`UdpClientStack`]
//!   (non-blocking `nb` calls). [`poll`](blocking::Client::poll) is one
//!   step (receive what the socket has, run due timers, send what is
//!   ready) for a superloop; every application call has an `nb` form that
//!   polls first, and a `*_blocking` form that waits until a deadline.
//! - [`asynch::Client`] (feature `async`, on by default): over an
//!   `embedded-nal-async` 0.9 [`ConnectedUdp`](embedded_nal_async::ConnectedUdp)
//!   socket ([`asynch::Unconnected`] adapts an `UnconnectedUdp` one), timed
//!   by an `embedded-hal-async` [`DelayNs`](embedded_hal_async::delay::DelayNs):
//!   no runtime needed.
//!
//! The caller supplies the time through a [`Clock`] (any monotonic
//! microsecond counter) and the randomness (for the handshake's ephemeral
//! key and the session id) as a `rand_core` [`CryptoRng`](tern::rand_core::CryptoRng),
//! the same trait `tern` takes. The handshake is pattern IK by default: the
//! client has a static key pair and knows the server's public key
//! ([`tern::Credentials`]); other patterns are chosen through
//! [`tern::Config::pattern`].
//!
//! Every ending is a typed [`Error`]: [`Error::Closed`] carries `tern`'s
//! [`ConnectionError`] (handshake timeout or failure, peer close with its
//! code and reason, idle or delivery timeout, ...), [`Error::Socket`] the
//! stack's error.
//!
//! # A superloop
//!
//! Here on the host's stack (`std-embedded-nal`); on a device, the
//! stack is the modem's or smoltcp's, the clock a hardware timer.
//!
//! ```no_run
//! use rand::SeedableRng;
//! use rand::rngs::{StdRng, SysRng};
//! use std_embedded_nal::Stack;
//! use tern::{Config, Credentials, Instant};
//! use tern_nal::{Clock, blocking::Client};
//!
//! struct SysClock(std::time::Instant);
//! impl Clock for SysClock {
//!     fn now(&self) -> Instant {
//!         Instant::from_micros(self.0.elapsed().as_micros() as u64)
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut rng = StdRng::try_from_rng(&mut SysRng)?;
//! let creds = Credentials {
//!     private_key: Some([3; 32]),           // this device's static key
//!     remote_public_key: Some([9; 32]),     // the server's public key
//!     psk: None,
//! };
//! let server = "192.0.2.1:4433".parse()?;
//! // 512-byte packet buffers: Config::constrained()'s packet size.
//! let mut client: Client<_, _, 512> = Client::start(
//!     Stack, SysClock(std::time::Instant::now()), server, &creds,
//!     Config::constrained(), &mut rng,
//! )?;
//! let mut buf = [0u8; 1024];
//! let mut greeted = false;
//! loop {
//!     client.poll()?; // socket, timers, transmits
//!     if !greeted && client.is_connected() {
//!         client.send(0, b"hello").ok(); // WouldBlock: retried next turn
//!         greeted = client.stats().tx_messages > 0;
//!     }
//!     match client.recv(&mut buf) {
//!         Ok((channel, n)) => println!("channel {channel}: {:?}", &buf[..n]),
//!         Err(nb::Error::WouldBlock) => {}
//!         Err(nb::Error::Other(e)) => return Err(e.into()),
//!     }
//!     // ... the rest of the firmware's work; sleep until an interrupt
//!     // or client.next_deadline().
//! #   break;
//! }
//! # Ok(())
//! # }
//! ```

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "async")]
pub mod asynch;
pub mod blocking;
mod session;

use core::fmt;
pub use embedded_nal::UdpClientStack;
pub use nb;
pub use tern;
use tern::Instant;
use tern::connection::{ConnectError, ConnectionError};

/// The caller's monotonic clock.
pub trait Clock {
    /// Now, in microseconds since any fixed epoch (boot, for example). It
    /// must never go backwards.
    fn now(&self) -> Instant;

    /// Called by the blocking calls of [`blocking::Client`] when a poll
    /// found nothing to do; `until` is the next protocol deadline or the
    /// call's own, whichever is first. It may sleep briefly or wait for an
    /// interrupt, but must return by `until` (a datagram that arrives
    /// meanwhile is only read after it returns). The default returns at
    /// once (the blocking calls then spin).
    fn idle(&self, until: Instant) {
        let _ = until;
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> Instant {
        (**self).now()
    }
    fn idle(&self, until: Instant) {
        (**self).idle(until)
    }
}

/// Every way a call fails or the connection ends; `E` is the network
/// stack's error.
#[derive(Debug)]
pub enum Error<E> {
    /// The connection ended as `tern` reports it: closed by this side or
    /// the peer (with the code and reason), handshake timeout or failure
    /// (a wrong server key ends as a handshake timeout: the server cannot
    /// read the first message and stays silent), version or parameter
    /// mismatch, idle or delivery timeout, protocol violation. Every later
    /// call returns it again.
    Closed(ConnectionError),
    /// The connection could not be set up (a key the pattern needs is
    /// missing, the configuration is inconsistent).
    Setup(ConnectError),
    /// The network stack failed; the client is unusable from here on
    /// (later calls return [`Error::SocketFailed`]).
    Socket(E),
    /// An earlier call returned [`Error::Socket`].
    SocketFailed,
    /// A blocking call's deadline passed first; the connection goes on.
    Timeout,
    /// A buffer is too short: the caller's buffer for the next message or
    /// datagram (nothing was consumed), or, from `start`/`connect`, the
    /// client's `BUF` for the configured packet size.
    BufferTooSmall {
        /// The length needed.
        needed: usize,
    },
    /// The message or datagram is larger than the peer accepts or the
    /// channel can ever hold.
    TooLarge {
        /// The largest size allowed.
        max: usize,
    },
    /// Messages must have at least one byte.
    Empty,
    /// The channel id is beyond what either side accepts.
    InvalidChannel,
    /// The datagram queue is full; this datagram was not sent (datagrams
    /// never wait).
    QueueFull,
    /// The connection is closing: nothing more can be sent.
    NotConnected,
}

impl<E> Error<E> {
    /// `tern`'s reason, when the connection ended through the protocol.
    pub fn connection_error(&self) -> Option<&ConnectionError> {
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
                ConnectionError::LocallyClosed { code: 0 }
                    | ConnectionError::PeerClosed { code: 0, .. }
            )
        )
    }
}

impl<E: fmt::Debug> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Closed(e) => write!(f, "{e}"),
            Error::Setup(e) => write!(f, "cannot connect: {e}"),
            Error::Socket(e) => write!(f, "socket error: {e:?}"),
            Error::SocketFailed => f.write_str("the socket failed earlier"),
            Error::Timeout => f.write_str("timed out"),
            Error::BufferTooSmall { needed } => write!(f, "buffer too small: {needed} needed"),
            Error::TooLarge { max } => write!(f, "larger than {max} bytes"),
            Error::Empty => f.write_str("empty message"),
            Error::InvalidChannel => f.write_str("invalid channel"),
            Error::QueueFull => f.write_str("datagram queue full"),
            Error::NotConnected => f.write_str("connection closing"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for Error<E> {}

impl<E> From<ConnectionError> for Error<E> {
    fn from(e: ConnectionError) -> Self {
        Error::Closed(e)
    }
}
