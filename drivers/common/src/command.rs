//! What handles ask of the endpoint task, each with its own reply channel.

use crate::connection::Connection;
use crate::endpoint::EndpointStats;
use crate::error::{Error, SendError};
use crate::stats::Stats;
use bytes::Bytes;
use futures_channel::oneshot;
use std::net::SocketAddr;
use tern::Credentials;

/// A request to the endpoint task.
pub(crate) enum Command {
    /// Open a client connection; the reply comes when it is established.
    Connect {
        peer: SocketAddr,
        creds: Box<Credentials>,
        reply: oneshot::Sender<Result<Connection, Error>>,
    },
    /// The next accepted connection; `None` once the endpoint shuts down.
    Accept {
        reply: oneshot::Sender<Option<Connection>>,
    },
    /// Endpoint counters.
    Stats {
        reply: oneshot::Sender<EndpointStats>,
    },
    /// Close every connection, wait for them, then stop.
    Shutdown { reply: oneshot::Sender<()> },
    /// The last `Endpoint` handle was dropped: accept no more.
    EndpointDropped,
    /// An operation on one connection (by its driver id).
    Conn { id: u64, op: ConnOp },
}

/// An operation on one connection.
pub(crate) enum ConnOp {
    OpenChannel(oneshot::Sender<Result<u32, SendError>>),
    AcceptChannel(oneshot::Sender<Result<u32, Error>>),
    Send {
        channel: u32,
        data: Bytes,
        reply: oneshot::Sender<Result<(), SendError>>,
    },
    /// `channel: None` takes from any channel.
    Recv {
        channel: Option<u32>,
        reply: oneshot::Sender<Result<(u32, Bytes), Error>>,
    },
    SendDatagram {
        data: Bytes,
        reply: oneshot::Sender<Result<(), SendError>>,
    },
    RecvDatagram(oneshot::Sender<Result<Bytes, Error>>),
    Stats(oneshot::Sender<Stats>),
    Close {
        code: u32,
        reason: String,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    /// The last handle was dropped: close with code 0 without waiting.
    Release,
}
