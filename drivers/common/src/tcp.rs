//! Tern over TCP (`spec/tcp.md`): every packet framed with its 2-byte
//! length (`tern::stream`), one stream per peer address.
//!
//! The endpoint loop sees a packet transport like UDP: packets in with the
//! address of the stream they came on, packets out to an address. Each
//! stream has one task (spawned on the runtime) that reads and decodes
//! frames into a bounded channel to the loop, and writes the frames the
//! loop queued for it, so the loop never waits on one stream. A server
//! accepts streams on its listener; a transmit to an address without a
//! stream opens one (the client side), except to a peer whose accepted
//! stream ended (it cannot be reached again). A framing error or the end
//! of a stream ends that stream; the sessions on it keep running and end
//! as sessions whose peer went silent (idle, delivery or handshake
//! timeout), as §4 of the spec allows. Once no session uses a peer
//! address, its stream is closed after everything queued was written.

use crate::runtime::Transport;
use std::collections::{HashMap, HashSet, VecDeque};
use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tern::stream::{PREFIX_LEN, StreamDecoder, buffer_len, frame_header};
use tracing::debug;

/// Frames a stream's task may have queued for writing; more are dropped
/// (Tern recovers them as lost packets).
const WRITE_QUEUE: usize = 512;
/// Packets read from every stream and not yet taken by the loop; a full
/// queue holds the readers back (TCP's flow control does the rest).
const READ_QUEUE: usize = 1024;
/// Packets handed to the loop per batch.
const BATCH: usize = 64;
/// Bytes written per system call when frames are waiting.
const WRITE_CHUNK: usize = 64 * 1024;
/// How long a closed stream waits for the peer to close its side.
const LINGER: Duration = Duration::from_secs(2);

/// A connected TCP stream of a runtime. Reads and writes take `&self`, so
/// one task can do both at once.
pub trait TcpIo: Send + Sync + 'static {
    /// Reads into `buf`; `Ok(0)` at the end of the stream.
    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>>;
    /// Writes some of `buf`.
    fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>>;
    /// Closes the writing side (the peer reads the end of the stream).
    fn shutdown_write(&self) -> io::Result<()>;
}

/// What a runtime provides for TCP.
pub trait TcpRuntime: Send + Sync + 'static {
    /// A connected stream.
    type Stream: TcpIo;
    /// A listening socket.
    type Listener: Send + Sync + 'static;
    /// Accepts a stream and its peer's address.
    fn poll_accept(
        listener: &Self::Listener,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(Self::Stream, SocketAddr)>>;
    /// Opens a stream to `addr` (with `TCP_NODELAY`).
    fn connect(addr: SocketAddr) -> impl Future<Output = io::Result<Self::Stream>> + Send;
    /// Runs `task` on the runtime, detached.
    fn spawn(task: impl Future<Output = ()> + Send + 'static);
    /// Waits for `d`.
    fn sleep(d: Duration) -> impl Future<Output = ()> + Send;
}

/// From a stream's task to the loop.
enum Inbound {
    Packet(SocketAddr, Vec<u8>),
    /// Stream `id` to this peer ended.
    Ended(SocketAddr, u64),
}

/// The loop's side of a live stream (accepted, connecting or connected).
struct Peer {
    id: u64,
    accepted: bool,
    /// The stream task's write queue.
    queue: async_channel::Sender<Vec<u8>>,
}

/// The endpoint's TCP transport: a listener (for a server) and a stream
/// per peer address.
pub struct TcpTransport<R: TcpRuntime> {
    listener: Option<R::Listener>,
    local_addr: SocketAddr,
    peers: HashMap<SocketAddr, Peer>,
    /// Peers whose accepted stream ended: they cannot be reached again
    /// (they are not listening). The oldest are forgotten beyond
    /// `max_streams`.
    gone: HashSet<SocketAddr>,
    gone_order: VecDeque<SocketAddr>,
    next_id: u64,
    max_streams: usize,
    max_packet: u16,
    /// An accepted stream that delivers no packet within this is closed.
    first_packet: Duration,
    inbound_tx: async_channel::Sender<Inbound>,
    inbound: Pin<Box<async_channel::Receiver<Inbound>>>,
    batch: Vec<(SocketAddr, Vec<u8>)>,
    /// Frames dropped because a stream's queue was full or it was gone.
    dropped: u64,
}

impl<R: TcpRuntime> TcpTransport<R> {
    /// A transport that accepts streams on `listener` (bound to
    /// `local_addr`) if given, and opens streams to the peers it sends to.
    /// At most `max_streams` streams are held; further accepted ones are
    /// closed at once. Frames longer than `max_packet_size` end a stream,
    /// and so does an accepted stream that delivers no packet within
    /// `first_packet` (a client sends its first handshake packet at once).
    pub fn new(
        listener: Option<R::Listener>,
        local_addr: SocketAddr,
        max_streams: usize,
        max_packet_size: u16,
        first_packet: Duration,
    ) -> Self {
        let (inbound_tx, inbound) = async_channel::bounded(READ_QUEUE);
        TcpTransport {
            listener,
            local_addr,
            peers: HashMap::new(),
            gone: HashSet::new(),
            gone_order: VecDeque::new(),
            next_id: 1,
            max_streams: max_streams.max(1),
            max_packet: max_packet_size,
            first_packet,
            inbound_tx,
            inbound: Box::pin(inbound),
            batch: Vec::new(),
            dropped: 0,
        }
    }

    fn live_streams(&self) -> usize {
        self.peers.len()
    }

    fn unreachable(&mut self) -> io::Error {
        self.dropped += 1;
        io::Error::new(io::ErrorKind::NotConnected, "the peer's TCP stream ended")
    }

    fn mark_gone(&mut self, peer: SocketAddr) {
        if self.gone.insert(peer) {
            self.gone_order.push_back(peer);
        }
        while self.gone_order.len() > self.max_streams {
            if let Some(old) = self.gone_order.pop_front() {
                self.gone.remove(&old);
            }
        }
    }

    /// Starts the task of a stream to `peer` (`stream` is connected, or is
    /// the connection being opened).
    fn start_stream(
        &mut self,
        peer: SocketAddr,
        accepted: bool,
        stream: impl Future<Output = io::Result<R::Stream>> + Send + 'static,
    ) -> async_channel::Sender<Vec<u8>> {
        let id = self.next_id;
        self.next_id += 1;
        let (queue, frames) = async_channel::bounded(WRITE_QUEUE);
        if accepted && self.gone.remove(&peer) {
            self.gone_order.retain(|p| *p != peer);
        }
        self.peers.insert(
            peer,
            Peer {
                id,
                accepted,
                queue: queue.clone(),
            },
        );
        let inbound = self.inbound_tx.clone();
        let max_packet = self.max_packet;
        let first_packet = accepted.then_some(self.first_packet);
        R::spawn(async move {
            match stream.await {
                Ok(s) => {
                    run_stream::<R>(&s, peer, frames, &inbound, max_packet, first_packet).await;
                }
                Err(e) => debug!(%peer, error = %e, "TCP connect failed"),
            }
            let _ = inbound.send(Inbound::Ended(peer, id)).await;
        });
        queue
    }

    /// Accepts every waiting stream.
    fn accept(&mut self, cx: &mut Context<'_>) {
        let Some(listener) = &self.listener else {
            return;
        };
        let mut accepted = Vec::new();
        while let Poll::Ready(r) = R::poll_accept(listener, cx) {
            match r {
                Ok(s) => accepted.push(s),
                // A connection that failed before it was accepted.
                Err(e) => {
                    debug!(error = %e, "TCP accept failed");
                    break;
                }
            }
        }
        for (stream, peer) in accepted {
            if self.live_streams() >= self.max_streams {
                debug!(%peer, "too many TCP streams; refused");
                continue;
            }
            debug!(%peer, "TCP stream accepted");
            self.start_stream(peer, true, std::future::ready(Ok(stream)));
        }
    }

    fn on_inbound(&mut self, m: Inbound) {
        match m {
            Inbound::Packet(from, p) => self.batch.push((from, p)),
            Inbound::Ended(peer, id) => {
                if let Some(p) = self.peers.get(&peer)
                    && p.id == id
                {
                    debug!(%peer, "TCP stream ended");
                    if p.accepted {
                        self.mark_gone(peer);
                    }
                    self.peers.remove(&peer);
                }
            }
        }
    }
}

impl<R: TcpRuntime> Transport for TcpTransport<R> {
    fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    fn max_segments(&self) -> usize {
        1
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        self.accept(cx);
        self.batch.clear();
        while self.batch.len() < BATCH {
            match futures_core::Stream::poll_next(self.inbound.as_mut(), cx) {
                Poll::Ready(Some(m)) => self.on_inbound(m),
                // The loop holds a sender: the channel never closes.
                Poll::Ready(None) | Poll::Pending => break,
            }
        }
        if self.batch.is_empty() {
            Poll::Pending
        } else {
            Poll::Ready(Ok(self.batch.len()))
        }
    }

    fn try_recv(&mut self) -> io::Result<usize> {
        self.batch.clear();
        while self.batch.len() < BATCH {
            match self.inbound.try_recv() {
                Ok(m) => self.on_inbound(m),
                Err(_) => break,
            }
        }
        if self.batch.is_empty() {
            Err(io::ErrorKind::WouldBlock.into())
        } else {
            Ok(self.batch.len())
        }
    }

    fn meta(&self, i: usize) -> (SocketAddr, usize, usize) {
        let (from, p) = &self.batch[i];
        (*from, p.len(), p.len().max(1))
    }

    fn packet(&mut self, i: usize, start: usize, len: usize) -> &mut [u8] {
        &mut self.batch[i].1[start..start + len]
    }

    /// Queues the packets on the peer's stream (opening one if needed):
    /// never waits, a full queue loses the packet. Called from the
    /// endpoint's task only (opening a stream spawns its task).
    fn try_send(
        &mut self,
        to: SocketAddr,
        buf: &[u8],
        segment: usize,
        count: usize,
    ) -> io::Result<usize> {
        let queue = match self.peers.get(&to) {
            Some(p) if !p.queue.is_closed() => p.queue.clone(),
            // A peer that connected to us cannot be reached again once its
            // stream ended.
            Some(Peer { accepted: true, .. }) => return Err(self.unreachable()),
            None if self.gone.contains(&to) => return Err(self.unreachable()),
            _ => {
                if self.live_streams() >= self.max_streams {
                    self.dropped += 1;
                    return Err(io::Error::other("too many TCP streams"));
                }
                debug!(%to, "opening a TCP stream");
                self.start_stream(to, false, R::connect(to))
            }
        };
        let mut result = Ok(());
        for packet in buf.chunks(segment.max(1)) {
            let mut frame = Vec::with_capacity(PREFIX_LEN + packet.len());
            frame.extend_from_slice(&frame_header(packet.len()).map_err(io::Error::other)?);
            frame.extend_from_slice(packet);
            if queue.try_send(frame).is_err() {
                // A whole packet is lost, never part of a frame.
                self.dropped += 1;
                result = Err(io::Error::other("TCP write queue full"));
            }
        }
        result.map(|()| count)
    }

    fn poll_writable(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn peer_gone(&mut self, peer: SocketAddr) {
        // Dropping the queue closes the stream once it is written.
        if self.peers.remove(&peer).is_some_and(|p| p.accepted) {
            self.mark_gone(peer);
        }
    }
}

/// One stream's task: frames in, frames out, until either side ends.
async fn run_stream<R: TcpRuntime>(
    stream: &R::Stream,
    peer: SocketAddr,
    frames: async_channel::Receiver<Vec<u8>>,
    inbound: &async_channel::Sender<Inbound>,
    max_packet: u16,
    first_packet: Option<Duration>,
) {
    let delivered = AtomicBool::new(false);
    let reader = async {
        let mut dec: Box<StreamDecoder<{ buffer_len(u16::MAX) }>> = Box::new(StreamDecoder::new());
        if let Ok(d) = StreamDecoder::with_max_packet_size(max_packet) {
            *dec = d;
        }
        loop {
            let n = poll_fn(|cx| stream.poll_read(cx, dec.read_buf())).await;
            match n {
                Ok(0) => {
                    if let Err(e) = dec.finish() {
                        debug!(%peer, error = %e, "TCP stream ended inside a frame");
                    }
                    return;
                }
                Ok(n) => dec.commit(n),
                Err(e) => {
                    debug!(%peer, error = %e, "TCP read failed");
                    return;
                }
            }
            loop {
                match dec.next_packet() {
                    Ok(Some(p)) => {
                        delivered.store(true, Ordering::Relaxed);
                        if inbound
                            .send(Inbound::Packet(peer, p.to_vec()))
                            .await
                            .is_err()
                        {
                            return; // the endpoint is gone
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        // The stream cannot be resynchronised.
                        debug!(%peer, error = %e, "TCP framing error; stream closed");
                        return;
                    }
                }
            }
        }
    };
    let writer = async {
        let mut out = Vec::with_capacity(WRITE_CHUNK);
        while let Ok(frame) = frames.recv().await {
            out.clear();
            out.extend_from_slice(&frame);
            while out.len() < WRITE_CHUNK {
                match frames.try_recv() {
                    Ok(f) => out.extend_from_slice(&f),
                    Err(_) => break,
                }
            }
            let mut written = 0;
            while written < out.len() {
                match poll_fn(|cx| stream.poll_write(cx, &out[written..])).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => written += n,
                }
            }
        }
        // No session uses this stream any more: close our side once
        // everything is written, and give the peer a moment to close its.
        let _ = stream.shutdown_write();
        R::sleep(LINGER).await;
    };
    // A silent accepted stream is closed once its first packet is late.
    let silent = async {
        match first_packet {
            Some(d) => {
                R::sleep(d).await;
                if !delivered.load(Ordering::Relaxed) {
                    debug!(%peer, "TCP stream sent no packet in time; closed");
                    return;
                }
                std::future::pending::<()>().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    or(or(reader, writer), silent).await;
}

/// Runs both futures until either finishes.
async fn or(a: impl Future<Output = ()>, b: impl Future<Output = ()>) {
    let mut a = std::pin::pin!(a);
    let mut b = std::pin::pin!(b);
    poll_fn(|cx| {
        if a.as_mut().poll(cx).is_ready() || b.as_mut().poll(cx).is_ready() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}
