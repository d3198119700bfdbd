//! The application's handle to one connection.

use crate::conn_state::Wait;
use crate::driver::{ConnKey, Ops};
use crate::error::{Error, SendError};
use crate::stats::Stats;
use bytes::Bytes;
use std::fmt;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::Arc;
use tern::Side;

/// One Tern session, established. Cheap to clone: clones are handles to
/// the same connection, so one task can receive while another sends.
///
/// Every method works on the endpoint's state directly, from the caller's
/// task (under the endpoint's lock, never held across an `.await`): a
/// `send` hands the message to the state machine and transmits it at
/// once, a `recv` takes a message if one is there and waits otherwise.
/// When the last
/// handle is dropped the connection is closed gracefully with code 0
/// (queued messages are still delivered), without blocking.
///
/// Once the connection has ended, every method returns the [`Error`] that
/// says why, except that messages and datagrams which arrived before the
/// end can still be received.
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

struct Inner {
    key: ConnKey,
    remote: SocketAddr,
    side: Side,
    ops: Arc<dyn Ops>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.ops.release(self.key, true);
    }
}

/// A waiting call's registration: dropping the future removes its waker.
struct Waiting<'a> {
    inner: &'a Inner,
    what: Wait,
    token: Option<u64>,
}

impl<'a> Waiting<'a> {
    fn new(inner: &'a Inner, what: Wait) -> Self {
        Waiting {
            inner,
            what,
            token: None,
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.token.is_some() {
            self.inner
                .ops
                .unregister(self.inner.key, self.what, &mut self.token);
        }
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.inner.key.id)
            .field("remote", &self.inner.remote)
            .field("side", &self.inner.side)
            .finish()
    }
}

impl Connection {
    pub(crate) fn new(key: ConnKey, remote: SocketAddr, side: Side, ops: Arc<dyn Ops>) -> Self {
        Connection {
            inner: Arc::new(Inner {
                key,
                remote,
                side,
                ops,
            }),
        }
    }

    /// The peer's address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.inner.remote
    }

    /// Whether this side opened the connection.
    pub fn side(&self) -> Side {
        self.inner.side
    }

    /// A number that identifies the connection within its endpoint (for
    /// logs; never reused by the endpoint).
    pub fn id(&self) -> u64 {
        self.inner.key.id
    }

    /// Opens a new channel and returns its id (even ids on the client,
    /// odd on the server). Channel ids below both sides' `max_channels` can
    /// also be used directly with [`send`](Self::send).
    pub async fn open_channel(&self) -> Result<u32, SendError> {
        self.inner.ops.open_channel(self.inner.key)
    }

    /// Waits until the peer starts using a channel this side has not used,
    /// and returns its id.
    pub async fn accept_channel(&self) -> Result<u32, Error> {
        let mut w = Waiting::new(&self.inner, Wait::Channel);
        let (ops, key) = (&self.inner.ops, self.inner.key);
        poll_fn(|cx| ops.poll_accept_channel(key, cx, &mut w.token)).await
    }

    /// Queues `msg` on `channel` for reliable, in-order delivery, waiting
    /// while the channel's window or the peer's credit is full
    /// (backpressure: nothing is buffered beyond the windows). Resolves
    /// when the state machine has taken the message, not when the peer
    /// has it; [`close`](Self::close) waits for delivery.
    ///
    /// Messages sent one after another on a channel arrive in that order.
    /// Tasks sending on one channel at once are served first come, first
    /// served: a send waits behind those already waiting on its channel,
    /// even if its message would fit (so a large message is never
    /// overtaken for ever by small ones); other channels are not held up.
    /// If the future is dropped while waiting, the message is not sent and
    /// the next waiting send takes its turn.
    ///
    /// `msg` is anything that lends bytes (`&[u8]`, `Vec<u8>`, [`Bytes`],
    /// `&str`, ...): the state machine copies it into the channel's send
    /// window, so a caller with a slice need not allocate.
    pub async fn send(&self, channel: u32, msg: impl AsRef<[u8]>) -> Result<(), SendError> {
        let data = msg.as_ref();
        let mut w = Waiting::new(&self.inner, Wait::Send);
        let (ops, key) = (&self.inner.ops, self.inner.key);
        poll_fn(|cx| ops.poll_send(key, cx, channel, data, &mut w.token)).await
    }

    /// The next complete message from any channel, as `(channel, bytes)`.
    /// Channels are taken in turn; each channel's messages come in order.
    /// Cancel-safe: a message is never lost by dropping the future.
    ///
    /// Messages (and datagrams) up to 1 KiB are copied into 16 KiB buffers
    /// that the messages received around them share, one allocation per
    /// buffer rather than per message: a small message kept keeps its
    /// buffer allocated (at most 16 KiB per message kept). Copy out what
    /// is kept for long (`to_vec`, `Bytes::copy_from_slice`).
    pub async fn recv(&self) -> Result<(u32, Bytes), Error> {
        let mut w = Waiting::new(&self.inner, Wait::Recv);
        let (ops, key) = (&self.inner.ops, self.inner.key);
        poll_fn(|cx| ops.poll_recv(key, cx, None, &mut w.token)).await
    }

    /// The next complete message from `channel`.
    pub async fn recv_on(&self, channel: u32) -> Result<Bytes, Error> {
        let mut w = Waiting::new(&self.inner, Wait::Recv);
        let (ops, key) = (&self.inner.ops, self.inner.key);
        poll_fn(|cx| ops.poll_recv(key, cx, Some(channel), &mut w.token))
            .await
            .map(|(_, b)| b)
    }

    /// Sends an unreliable datagram: once, in the next packet, never
    /// retransmitted. Fails with [`SendError::QueueFull`] rather than wait.
    /// `data` is copied into the connection's datagram queue, as in
    /// [`send`](Self::send).
    pub async fn send_datagram(&self, data: impl AsRef<[u8]>) -> Result<(), SendError> {
        self.inner.ops.send_datagram(self.inner.key, data.as_ref())
    }

    /// The next unreliable datagram received.
    pub async fn recv_datagram(&self) -> Result<Bytes, Error> {
        let mut w = Waiting::new(&self.inner, Wait::Datagram);
        let (ops, key) = (&self.inner.ops, self.inner.key);
        poll_fn(|cx| ops.poll_recv_datagram(key, cx, &mut w.token)).await
    }

    /// The connection's statistics; final once it has ended. Fails only if
    /// the endpoint's task is gone.
    pub async fn stats(&self) -> Result<Stats, Error> {
        self.inner.ops.stats(self.inner.key)
    }

    /// Closes the connection gracefully: messages already queued are
    /// delivered first, then CLOSE with `code` and `reason` is sent, and
    /// this waits until the peer acknowledged it (or sent its own CLOSE),
    /// bounded by the connection's timeouts.
    ///
    /// `Ok(())` when the connection ended by a close, this one or the
    /// peer's; otherwise the error that ended it first (for example
    /// [`tern::ConnectionError::DeliveryTimeout`]).
    pub async fn close(&self, code: u32, reason: &str) -> Result<(), Error> {
        let mut w = Waiting::new(&self.inner, Wait::Close);
        let (ops, key) = (&self.inner.ops, self.inner.key);
        let mut started = false;
        poll_fn(|cx| ops.poll_close(key, cx, code, reason, &mut started, &mut w.token)).await
    }
}
