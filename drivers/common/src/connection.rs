//! The application's handle to one connection.

use crate::command::{Command, ConnOp};
use crate::error::{Error, SendError};
use crate::stats::Stats;
use bytes::Bytes;
use futures_channel::oneshot;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tern::Side;

/// One Tern session, established. Cheap to clone: clones are handles to
/// the same connection, so one task can receive while another sends.
///
/// Every method sends a request to the endpoint's task, which owns the
/// socket and the state machine, and waits for its answer. When the last
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
    id: u64,
    remote: SocketAddr,
    side: Side,
    tx: async_channel::Sender<Command>,
    /// Cleared for a handle that was never given out.
    armed: AtomicBool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if !self.armed.load(Ordering::Relaxed) {
            return;
        }
        let _ = self.tx.try_send(Command::Conn {
            id: self.id,
            op: ConnOp::Release,
        });
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.inner.id)
            .field("remote", &self.inner.remote)
            .field("side", &self.inner.side)
            .finish()
    }
}

impl Connection {
    pub(crate) fn new(
        id: u64,
        remote: SocketAddr,
        side: Side,
        tx: async_channel::Sender<Command>,
    ) -> Self {
        Connection {
            inner: Arc::new(Inner {
                id,
                remote,
                side,
                tx,
                armed: AtomicBool::new(true),
            }),
        }
    }

    /// Drops a handle that never reached the application without closing
    /// the connection.
    pub(crate) fn disarm(self) {
        self.inner.armed.store(false, Ordering::Relaxed);
    }

    async fn call<T>(&self, op: impl FnOnce(oneshot::Sender<T>) -> ConnOp) -> Result<T, Error> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .tx
            .try_send(Command::Conn {
                id: self.inner.id,
                op: op(reply),
            })
            .map_err(|_| Error::EndpointClosed)?;
        answer.await.map_err(|_| Error::EndpointClosed)
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
        self.inner.id
    }

    /// Opens a new channel and returns its id (even ids on the client,
    /// odd on the server). Channel ids below both sides' `max_channels` can
    /// also be used directly with [`send`](Self::send).
    pub async fn open_channel(&self) -> Result<u32, SendError> {
        self.call(ConnOp::OpenChannel).await?
    }

    /// Waits until the peer starts using a channel this side has not used,
    /// and returns its id.
    pub async fn accept_channel(&self) -> Result<u32, Error> {
        self.call(ConnOp::AcceptChannel).await?
    }

    /// Queues `msg` on `channel` for reliable, in-order delivery, waiting
    /// while the channel's window or the peer's credit is full
    /// (backpressure: nothing is buffered beyond the windows). Resolves
    /// when the state machine has taken the message, not when the peer
    /// has it; [`close`](Self::close) waits for delivery.
    ///
    /// Messages sent one after another on a channel arrive in that order.
    /// If the future is dropped while waiting, the message is not sent.
    pub async fn send(&self, channel: u32, msg: impl Into<Bytes>) -> Result<(), SendError> {
        let data = msg.into();
        self.call(|reply| ConnOp::Send {
            channel,
            data,
            reply,
        })
        .await?
    }

    /// The next complete message from any channel, as `(channel, bytes)`.
    /// Channels are taken in turn; each channel's messages come in order.
    /// Cancel-safe: a message is never lost by dropping the future.
    pub async fn recv(&self) -> Result<(u32, Bytes), Error> {
        self.call(|reply| ConnOp::Recv {
            channel: None,
            reply,
        })
        .await?
    }

    /// The next complete message from `channel`.
    pub async fn recv_on(&self, channel: u32) -> Result<Bytes, Error> {
        self.call(|reply| ConnOp::Recv {
            channel: Some(channel),
            reply,
        })
        .await?
        .map(|(_, b)| b)
    }

    /// Sends an unreliable datagram: once, in the next packet, never
    /// retransmitted. Fails with [`SendError::QueueFull`] rather than wait.
    pub async fn send_datagram(&self, data: impl Into<Bytes>) -> Result<(), SendError> {
        let data = data.into();
        self.call(|reply| ConnOp::SendDatagram { data, reply })
            .await?
    }

    /// The next unreliable datagram received.
    pub async fn recv_datagram(&self) -> Result<Bytes, Error> {
        self.call(ConnOp::RecvDatagram).await?
    }

    /// The connection's statistics; final once it has ended. Fails only if
    /// the endpoint's task is gone.
    pub async fn stats(&self) -> Result<Stats, Error> {
        self.call(ConnOp::Stats).await
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
        let reason = reason.to_owned();
        self.call(|reply| ConnOp::Close {
            code,
            reason,
            reply,
        })
        .await?
    }
}
