//! What the endpoint task keeps for each connection: the application's
//! waiting requests, and what was read from the state machine but not yet
//! handed over.
//!
//! Messages stay in the state machine's windows until the application asks
//! for them, so a reader that does not read holds back the sender (flow
//! control works end to end). The stashes only hold what a cancelled
//! request left behind and what was drained when the connection ended.

use crate::error::{Error, SendError};
use crate::stats::Stats;
use bytes::Bytes;
use futures_channel::oneshot;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;
use tern::connection::SendError as CoreSendError;
use tern::endpoint::ConnectionHandle;
use tern::{ConnectionError, Side};

/// The crypto providers an endpoint can run on: stateless ones that move
/// with the loop's task between threads.
pub(crate) trait Provider:
    tern::crypto::CryptoProvider<Aead: Send> + Clone + Default + Send + 'static
{
}
impl<P: tern::crypto::CryptoProvider<Aead: Send> + Clone + Default + Send + 'static> Provider
    for P
{
}

/// The state machine of one service connection: [`tern::ServiceConnection`]'s
/// sizes on the crypto provider `P`.
pub(crate) type Core<P> = tern::Connection<tern::storage::HeapBytes, 64, 256, P>;

type RecvReply = oneshot::Sender<Result<(u32, Bytes), Error>>;

/// A message waiting for room in its channel.
pub(crate) struct PendingSend {
    channel: u32,
    data: Bytes,
    reply: oneshot::Sender<Result<(), SendError>>,
}

pub(crate) struct ConnState {
    /// The core connection while it lives; `None` once it ended.
    pub(crate) handle: Option<ConnectionHandle>,
    pub(crate) peer: SocketAddr,
    pub(crate) side: Side,
    /// A client's `connect` waiting for the handshake.
    pub(crate) connect_reply: Option<oneshot::Sender<Result<crate::Connection, Error>>>,
    /// A `Connection` was made for it (accepted or connected).
    pub(crate) handed_out: bool,
    /// No `Connection` handle is left.
    pub(crate) released: bool,
    /// The code this side closed with, once it did.
    pub(crate) closing: Option<u32>,
    /// Why it ended, once it has.
    pub(crate) ended: Option<Error>,
    final_stats: Option<Stats>,
    stash: VecDeque<(u32, Bytes)>,
    dgram_stash: VecDeque<Bytes>,
    opened: VecDeque<u32>,
    recv_waiters: Vec<(Option<u32>, RecvReply)>,
    dgram_waiters: VecDeque<oneshot::Sender<Result<Bytes, Error>>>,
    channel_waiters: VecDeque<oneshot::Sender<Result<u32, Error>>>,
    pending_sends: VecDeque<PendingSend>,
    close_waiters: Vec<oneshot::Sender<Result<(), Error>>>,
    pub(crate) span: tracing::Span,
}

impl ConnState {
    pub(crate) fn new(
        id: u64,
        handle: ConnectionHandle,
        peer: SocketAddr,
        side: Side,
        connect_reply: Option<oneshot::Sender<Result<crate::Connection, Error>>>,
    ) -> Self {
        ConnState {
            handle: Some(handle),
            peer,
            side,
            connect_reply,
            handed_out: false,
            released: false,
            closing: None,
            ended: None,
            final_stats: None,
            stash: VecDeque::new(),
            dgram_stash: VecDeque::new(),
            opened: VecDeque::new(),
            recv_waiters: Vec::new(),
            dgram_waiters: VecDeque::new(),
            channel_waiters: VecDeque::new(),
            pending_sends: VecDeque::new(),
            close_waiters: Vec::new(),
            span: tracing::info_span!("conn", id, peer = %peer, side = ?side),
        }
    }

    /// The error a call on a closing or closed connection gets.
    pub(crate) fn gone(&self) -> Error {
        match &self.ended {
            Some(e) => e.clone(),
            None => Error::Closed(ConnectionError::LocallyClosed {
                code: self.closing.unwrap_or(0),
            }),
        }
    }

    /// Maps a refusal of the core (other than `WouldBlock` on a channel).
    pub(crate) fn send_error(&self, e: CoreSendError) -> SendError {
        match e {
            CoreSendError::TooLarge { max } => SendError::TooLarge { max },
            CoreSendError::InvalidChannel => SendError::InvalidChannel,
            CoreSendError::Empty => SendError::Empty,
            CoreSendError::WouldBlock(_) => SendError::QueueFull,
            CoreSendError::NotConnected => SendError::Closed(self.gone()),
        }
    }

    // ----- statistics -----

    pub(crate) fn stats<P: Provider>(&self, core: Option<&Core<P>>, now: tern::Instant) -> Stats {
        if let Some(s) = self.final_stats {
            return s;
        }
        match core {
            Some(c) => {
                let s = c.stats();
                Stats {
                    connection: s,
                    uptime: s.uptime(now),
                    ended: false,
                }
            }
            None => Stats {
                connection: tern::connection::Stats::default(),
                uptime: Duration::ZERO,
                ended: true,
            },
        }
    }

    // ----- receiving -----

    /// Takes the next message for `channel` (any when `None`): from the
    /// stash first, then from the core. Returns where it was, so a failed
    /// hand-over can put it back.
    fn take_message<P: Provider>(
        &mut self,
        core: Option<&mut Core<P>>,
        channel: Option<u32>,
        buf: &mut Vec<u8>,
    ) -> Option<(usize, u32, Bytes)> {
        let pos = match channel {
            None => (!self.stash.is_empty()).then_some(0),
            Some(c) => self.stash.iter().position(|(ch, _)| *ch == c),
        };
        if let Some(pos) = pos {
            let (ch, b) = self.stash.remove(pos)?;
            return Some((pos, ch, b));
        }
        let (ch, b) = read_message(core?, channel, buf)?;
        Some((self.stash.len(), ch, b))
    }

    pub(crate) fn add_recv_waiter(&mut self, channel: Option<u32>, reply: RecvReply) {
        self.recv_waiters.push((channel, reply));
    }

    /// Hands messages to waiting `recv` calls, in the order they asked;
    /// fails the rest once the connection has ended and nothing is left.
    pub(crate) fn serve_recv<P: Provider>(
        &mut self,
        mut core: Option<&mut Core<P>>,
        buf: &mut Vec<u8>,
    ) {
        let mut i = 0;
        while i < self.recv_waiters.len() {
            if self.recv_waiters[i].1.is_canceled() {
                self.recv_waiters.remove(i);
                continue;
            }
            let channel = self.recv_waiters[i].0;
            match self.take_message(core.as_deref_mut(), channel, buf) {
                Some((pos, ch, b)) => {
                    let (_, w) = self.recv_waiters.remove(i);
                    if let Err(Ok(msg)) = w.send(Ok((ch, b))) {
                        // The caller went away at that very moment.
                        self.stash.insert(pos, msg);
                    }
                }
                None => match &self.ended {
                    Some(e) => {
                        let e = e.clone();
                        let (_, w) = self.recv_waiters.remove(i);
                        let _ = w.send(Err(e));
                    }
                    None => i += 1,
                },
            }
        }
    }

    pub(crate) fn add_datagram_waiter(&mut self, reply: oneshot::Sender<Result<Bytes, Error>>) {
        self.dgram_waiters.push_back(reply);
    }

    pub(crate) fn serve_datagrams<P: Provider>(
        &mut self,
        mut core: Option<&mut Core<P>>,
        buf: &mut Vec<u8>,
    ) {
        while let Some(w) = self.dgram_waiters.pop_front() {
            if w.is_canceled() {
                continue;
            }
            let d = match self.dgram_stash.pop_front() {
                Some(d) => Some(d),
                None => core
                    .as_deref_mut()
                    .and_then(|c| read_datagram(c, buf))
                    .map(|n| Bytes::copy_from_slice(&buf[..n])),
            };
            match (d, &self.ended) {
                (Some(d), _) => {
                    if let Err(Ok(d)) = w.send(Ok(d)) {
                        self.dgram_stash.push_front(d);
                    }
                }
                (None, Some(e)) => {
                    let _ = w.send(Err(e.clone()));
                }
                (None, None) => {
                    self.dgram_waiters.push_front(w);
                    return;
                }
            }
        }
    }

    // ----- channels -----

    pub(crate) fn channel_opened(&mut self, id: u32) {
        self.opened.push_back(id);
        self.serve_channels();
    }

    pub(crate) fn add_channel_waiter(&mut self, reply: oneshot::Sender<Result<u32, Error>>) {
        self.channel_waiters.push_back(reply);
        self.serve_channels();
    }

    fn serve_channels(&mut self) {
        while let Some(w) = self.channel_waiters.pop_front() {
            if w.is_canceled() {
                continue;
            }
            match (self.opened.pop_front(), &self.ended) {
                (Some(id), _) => {
                    if let Err(Ok(id)) = w.send(Ok(id)) {
                        self.opened.push_front(id);
                    }
                }
                (None, Some(e)) => {
                    let _ = w.send(Err(e.clone()));
                }
                (None, None) => {
                    self.channel_waiters.push_front(w);
                    return;
                }
            }
        }
    }

    // ----- sending -----

    /// Queues `data` on `channel`, or parks it until the channel has room.
    /// A channel's messages keep their order: one parked message holds
    /// back the later ones.
    pub(crate) fn send<P: Provider>(
        &mut self,
        core: Option<&mut Core<P>>,
        channel: u32,
        data: Bytes,
        reply: oneshot::Sender<Result<(), SendError>>,
    ) {
        let p = PendingSend {
            channel,
            data,
            reply,
        };
        if self.ended.is_some() || self.closing.is_some() {
            let _ = p.reply.send(Err(SendError::Closed(self.gone())));
        } else if self.pending_sends.iter().any(|q| q.channel == channel) {
            self.pending_sends.push_back(p);
        } else if let Some(core) = core {
            match core.send(channel, &p.data) {
                Ok(()) => {
                    let _ = p.reply.send(Ok(()));
                }
                Err(CoreSendError::WouldBlock(_)) => self.pending_sends.push_back(p),
                Err(e) => {
                    let _ = p.reply.send(Err(self.send_error(e)));
                }
            }
        } else {
            let _ = p.reply.send(Err(SendError::Closed(self.gone())));
        }
    }

    /// Tries parked messages again (the core said a channel is writable).
    pub(crate) fn retry_sends<P: Provider>(&mut self, core: &mut Core<P>) {
        let mut blocked: Vec<u32> = Vec::new();
        let mut i = 0;
        while i < self.pending_sends.len() {
            let p = &self.pending_sends[i];
            if p.reply.is_canceled() {
                // Cancelled: not sent.
                self.pending_sends.remove(i);
                continue;
            }
            if blocked.contains(&p.channel) {
                i += 1;
                continue;
            }
            match core.send(p.channel, &p.data) {
                Err(CoreSendError::WouldBlock(_)) => {
                    blocked.push(p.channel);
                    i += 1;
                }
                r => {
                    let e = r.err().map(|e| self.send_error(e));
                    if let Some(p) = self.pending_sends.remove(i) {
                        let _ = p.reply.send(e.map_or(Ok(()), Err));
                    }
                }
            }
        }
    }

    // ----- closing -----

    /// This side closes: parked messages will never go.
    pub(crate) fn start_close(&mut self, code: u32) {
        self.closing.get_or_insert(code);
        let e = SendError::Closed(self.gone());
        for p in self.pending_sends.drain(..) {
            let _ = p.reply.send(Err(e.clone()));
        }
    }

    pub(crate) fn add_close_waiter(&mut self, reply: oneshot::Sender<Result<(), Error>>) {
        match &self.ended {
            Some(e) => {
                let _ = reply.send(close_outcome(e));
            }
            None => self.close_waiters.push(reply),
        }
    }

    /// The connection ended: keep what arrived before the end for the
    /// application, freeze the statistics, answer every waiting request.
    pub(crate) fn on_ended<P: Provider>(
        &mut self,
        mut core: Option<&mut Core<P>>,
        error: Error,
        now: tern::Instant,
        buf: &mut Vec<u8>,
    ) {
        if let Some(c) = core.as_deref_mut() {
            // Deliver the waiting readers first, in order, then keep the rest.
            self.serve_recv(Some(c), buf);
            while let Some(m) = read_message(c, None, buf) {
                self.stash.push_back(m);
            }
            self.serve_datagrams(Some(c), buf);
            while let Some(n) = read_datagram(c, buf) {
                self.dgram_stash
                    .push_back(Bytes::copy_from_slice(&buf[..n]));
            }
        }
        let mut stats = self.stats(core.as_deref(), now);
        stats.ended = true;
        self.final_stats = Some(stats);
        self.handle = None;
        self.ended = Some(error.clone());
        if let Some(r) = self.connect_reply.take() {
            let _ = r.send(Err(error.clone()));
        }
        self.serve_recv::<P>(None, buf);
        self.serve_datagrams::<P>(None, buf);
        self.serve_channels();
        for p in self.pending_sends.drain(..) {
            let _ = p.reply.send(Err(SendError::Closed(error.clone())));
        }
        for w in self.close_waiters.drain(..) {
            let _ = w.send(close_outcome(&error));
        }
    }
}

/// What `close` answers when the connection ended with `e`.
fn close_outcome(e: &Error) -> Result<(), Error> {
    match e {
        Error::Closed(
            ConnectionError::LocallyClosed { .. } | ConnectionError::PeerClosed { .. },
        ) => Ok(()),
        e => Err(e.clone()),
    }
}

/// The next message of `channel` (any when `None`) from the core.
fn read_message<P: Provider>(
    core: &mut Core<P>,
    channel: Option<u32>,
    buf: &mut Vec<u8>,
) -> Option<(u32, Bytes)> {
    loop {
        let r = match channel {
            None => core.recv_any(buf),
            Some(c) => core.recv(c, buf).map(|o| o.map(|n| (c, n))),
        };
        match r {
            Ok(Some((ch, n))) => return Some((ch, Bytes::copy_from_slice(&buf[..n]))),
            Ok(None) => return None,
            Err(needed) => buf.resize(needed, 0),
        }
    }
}

fn read_datagram<P: Provider>(core: &mut Core<P>, buf: &mut Vec<u8>) -> Option<usize> {
    loop {
        match core.recv_datagram(buf) {
            Ok(r) => return r,
            Err(needed) => buf.resize(needed, 0),
        }
    }
}
