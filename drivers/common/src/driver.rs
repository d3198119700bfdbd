//! The endpoint task: the only owner of the socket, the state machine and
//! the timer. Every connection of the endpoint is driven from here.
//!
//! The loop waits for one of three things (a datagram, a request from a
//! handle, the deadline), feeds it to the state machine, then follows the
//! driving contract: it polls events and transmits until none are left,
//! and re-arms the timer from `poll_timeout`.

use crate::clock::Clock;
use crate::command::{Command, ConnOp};
use crate::conn_state::{ConnState, Core, Provider};
use crate::connection::Connection;
use crate::endpoint::EndpointStats;
use crate::error::Error;
use crate::runtime::{Timer, Transport};
use crate::udp::batch_limit;
use futures_channel::oneshot;
use futures_core::Stream;
use rand::rngs::StdRng;
use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};
use tern::connection::code;
use tern::endpoint::BoxSlots;
use tern::endpoint::ConnectionHandle;
use tern::storage::HeapBytes;
use tern::{Event, Side};
use tern_ring::RingCrypto;
use tracing::{debug, info, trace, warn};

/// Datagrams (or requests) handled before the contract's polling runs.
const BATCH: usize = 64;
/// Turns of the loop between two yields to the runtime.
const YIELD_EVERY: u32 = 32;
/// Consecutive receive errors after which the socket is taken as broken.
const MAX_RECV_ERRORS: u32 = 64;

struct Shutdown {
    deadline: Instant,
    waiters: Vec<oneshot::Sender<()>>,
}

/// Lets the executor run other tasks once (any runtime).
async fn yield_now() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

/// The current time in Tern's terms.
fn now<C: Timer>(clock: Clock, timer: &C) -> tern::Instant {
    clock.to_tern(timer.now())
}

/// What woke the loop.
enum Wake {
    Datagrams(io::Result<usize>),
    Command(Option<Command>),
    Timer,
}

/// The sans-IO endpoint the loop drives: [`tern::ServiceEndpoint`]'s
/// sizes (heap buffers, 64 channels, 256 packets in flight) on the crypto
/// provider `P`, [`RingCrypto`] unless a benchmark asks otherwise.
pub(crate) type DriverEndpoint<P = RingCrypto> =
    tern::endpoint::Endpoint<HeapBytes, 64, 256, BoxSlots<Core<P>>, P>;

/// The endpoint loop, over any transport, timer and crypto provider.
pub(crate) struct Driver<T: Transport, C: Timer, P: Provider = RingCrypto> {
    socket: T,
    local_addr: SocketAddr,
    ep: DriverEndpoint<P>,
    rng: StdRng,
    clock: Clock,
    rx: Pin<Box<async_channel::Receiver<Command>>>,
    /// To make handles without keeping the channel open ourselves: the
    /// channel closes when the last `Endpoint` and `Connection` are gone.
    tx: async_channel::WeakSender<Command>,
    rx_closed: bool,
    conns: HashMap<u64, ConnState>,
    by_handle: HashMap<ConnectionHandle, u64>,
    next_id: u64,
    accept_queue: VecDeque<u64>,
    accept_waiters: VecDeque<oneshot::Sender<Option<Connection>>>,
    endpoint_alive: bool,
    shutdown: Option<Shutdown>,
    /// Packets to send, back to back (several for a segmented send).
    tx_buf: Vec<u8>,
    /// Room for one packet in `tx_buf`.
    tx_slot: usize,
    msg_buf: Vec<u8>,
    timer: C,
    timer_at: Option<Instant>,
    recv_errors: u32,
    /// Peers of connections that ended, to tell the transport once no
    /// other connection uses them.
    gone_peers: Vec<SocketAddr>,
    /// Which of the socket and the command channel is polled first, in
    /// turn, so neither starves the other.
    socket_first: bool,
}

impl<T: Transport, C: Timer, P: Provider> Drop for Driver<T, C, P> {
    /// Requests still queued when the loop stops (or its task is dropped)
    /// are dropped with it, so their callers get [`Error::EndpointClosed`]
    /// rather than waiting forever: an `async-channel` keeps its queue
    /// while any sender lives.
    fn drop(&mut self) {
        self.rx.close();
        while self.rx.try_recv().is_ok() {}
    }
}

impl<T: Transport, C: Timer, P: Provider> Driver<T, C, P> {
    pub(crate) fn new(
        socket: T,
        timer: C,
        ep: DriverEndpoint<P>,
        rng: StdRng,
        rx: async_channel::Receiver<Command>,
        tx: async_channel::WeakSender<Command>,
    ) -> Self {
        let local_addr = socket.local_addr();
        let cfg = &ep.config().connection;
        let tx_slot = usize::from(cfg.max_packet_size);
        let batch = batch_limit(socket.max_segments(), tx_slot);
        let msg_len = cfg.max_message_size as usize;
        Driver {
            socket,
            local_addr,
            rng,
            clock: Clock::new(timer.now()),
            rx: Box::pin(rx),
            tx,
            rx_closed: false,
            conns: HashMap::new(),
            by_handle: HashMap::new(),
            next_id: 1,
            accept_queue: VecDeque::new(),
            accept_waiters: VecDeque::new(),
            endpoint_alive: true,
            shutdown: None,
            tx_buf: vec![0; tx_slot * batch],
            tx_slot,
            msg_buf: vec![0; msg_len.max(1)],
            timer,
            timer_at: None,
            recv_errors: 0,
            gone_peers: Vec::new(),
            socket_first: true,
            ep,
        }
    }

    /// Runs until the endpoint is shut down (or orphaned and drained), or
    /// its socket fails.
    pub(crate) async fn run(mut self) {
        info!(local = %self.local_addr, "endpoint started");
        let result = self.run_loop().await;
        match result {
            Ok(()) => info!("endpoint stopped"),
            Err(e) => {
                warn!(error = %e, "endpoint socket failed; every connection ends");
                self.fail_all(Error::Io(Arc::new(e)));
            }
        }
        if let Some(s) = self.shutdown.take() {
            for w in s.waiters {
                let _ = w.send(());
            }
        }
    }

    async fn run_loop(&mut self) -> io::Result<()> {
        let mut turns = 0u32;
        loop {
            turns = turns.wrapping_add(1);
            if turns.is_multiple_of(YIELD_EVERY) {
                // A busy endpoint finds work on every turn without waiting:
                // let the runtime run its other tasks now and then.
                yield_now().await;
            }
            self.flush().await?;
            if self.finished() {
                return Ok(());
            }
            self.arm_timer();
            let wake = self.wait().await;
            match wake {
                Wake::Datagrams(r) => {
                    self.on_recv(r)?;
                    // Take what else is waiting, without sleeping.
                    for _ in 1..BATCH {
                        match self.socket.try_recv() {
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            r => self.on_recv(r)?,
                        }
                    }
                }
                Wake::Command(None) => self.orphaned(),
                Wake::Command(Some(c)) => {
                    self.command(c);
                    for _ in 1..BATCH {
                        match self.rx.try_recv() {
                            Ok(c) => self.command(c),
                            Err(_) => break,
                        }
                    }
                }
                Wake::Timer => {
                    self.timer_at = None;
                    let now = now(self.clock, &self.timer);
                    self.ep.handle_timeout(now);
                }
            }
        }
    }

    /// Waits for a datagram, a request or the deadline. A deadline that
    /// passed while the loop was busy fires first, so a busy socket cannot
    /// starve the timer; the socket and the requests take turns.
    async fn wait(&mut self) -> Wake {
        let socket_first = self.socket_first;
        self.socket_first = !socket_first;
        poll_fn(|cx| {
            if self.timer_at.is_some() && self.timer.poll_expired(cx).is_ready() {
                return Poll::Ready(Wake::Timer);
            }
            for socket_turn in [socket_first, !socket_first] {
                if socket_turn {
                    if let Poll::Ready(r) = self.socket.poll_recv(cx) {
                        return Poll::Ready(Wake::Datagrams(r));
                    }
                } else if !self.rx_closed
                    && let Poll::Ready(c) = self.rx.as_mut().poll_next(cx)
                {
                    return Poll::Ready(Wake::Command(c));
                }
            }
            Poll::Pending
        })
        .await
    }

    fn arm_timer(&mut self) {
        let mut at = self.ep.poll_timeout().map(|t| self.clock.to_std(t));
        if let Some(s) = &self.shutdown {
            at = Some(at.map_or(s.deadline, |t| t.min(s.deadline)));
        }
        if at != self.timer_at {
            if let Some(t) = at {
                self.timer.reset(t);
            }
            self.timer_at = at;
        }
    }

    /// Whether the loop should stop: shut down and every connection gone
    /// (or the bound passed).
    fn finished(&mut self) -> bool {
        let Some(s) = &self.shutdown else {
            return false;
        };
        if self.ep.is_empty() {
            return true;
        }
        if self.timer.now() >= s.deadline {
            warn!(
                left = self.ep.len(),
                "shutdown bound reached before every connection closed"
            );
            self.fail_all(Error::EndpointClosed);
            return true;
        }
        false
    }

    // ----- the driving contract -----

    /// Polls events and transmits until neither has anything left.
    async fn flush(&mut self) -> io::Result<()> {
        for _ in 0..16 {
            let mut events = 0;
            while let Some((h, e)) = self.ep.poll_event() {
                self.on_event(h, e);
                events += 1;
            }
            self.transmit().await?;
            if events == 0 {
                break;
            }
        }
        self.release_peers();
        Ok(())
    }

    /// Tells the transport which peers no open connection uses any more
    /// (after the last packets to them were sent).
    fn release_peers(&mut self) {
        if self.gone_peers.is_empty() {
            return;
        }
        let mut gone = std::mem::take(&mut self.gone_peers);
        gone.sort_unstable();
        gone.dedup();
        gone.retain(|p| {
            !self
                .ep
                .handles()
                .filter_map(|h| self.ep.connection(h))
                .any(|c| !c.is_closed() && c.peer_addr() == *p)
        });
        for p in gone {
            self.socket.peer_gone(p);
        }
    }

    /// Sends every packet the state machine has, batching runs of
    /// equal-size packets to one destination into one segmented send.
    async fn transmit(&mut self) -> io::Result<()> {
        let max = batch_limit(self.socket.max_segments(), self.tx_slot);
        // The batch being built: destination, segment size, packets, bytes.
        let mut batch: Option<(SocketAddr, usize, usize)> = None;
        let mut len = 0;
        loop {
            let now = now(self.clock, &self.timer);
            let slot = self.tx_slot;
            let polled = self
                .ep
                .poll_transmit(now, &mut self.tx_buf[len..len + slot]);
            let t = match polled {
                Ok(Some((_, t))) => t,
                Ok(None) => break,
                Err(tern::connection::TransmitError::BufferTooSmall { needed }) => {
                    self.send_batch(batch.take(), len).await;
                    len = 0;
                    self.tx_slot = needed;
                    self.tx_buf.resize(needed * max, 0);
                    continue;
                }
            };
            match batch {
                None => {
                    batch = Some((t.destination, t.len, 1));
                    len = t.len;
                }
                Some((to, seg, n)) if to == t.destination && t.len <= seg => {
                    batch = Some((to, seg, n + 1));
                    len += t.len;
                    // A shorter packet must be the last of a batch.
                    if t.len < seg {
                        self.send_batch(batch.take(), len).await;
                        len = 0;
                    }
                }
                Some(_) => {
                    // Another destination or a larger packet: send what
                    // is built, and start again with this packet.
                    self.send_batch(batch.take(), len).await;
                    self.tx_buf.copy_within(len..len + t.len, 0);
                    batch = Some((t.destination, t.len, 1));
                    len = t.len;
                }
            }
            if let Some((_, _, n)) = batch
                && (n >= max || len + self.tx_slot > self.tx_buf.len())
            {
                self.send_batch(batch.take(), len).await;
                len = 0;
            }
        }
        self.send_batch(batch.take(), len).await;
        Ok(())
    }

    async fn send_batch(&mut self, batch: Option<(SocketAddr, usize, usize)>, len: usize) {
        let Some((to, segment, count)) = batch else {
            return;
        };
        if let Err(e) = self
            .socket
            .send(to, &self.tx_buf[..len], segment, count)
            .await
        {
            // The packets are lost; the protocol recovers.
            debug!(%to, error = %e, "send failed");
        }
    }

    fn on_recv(&mut self, r: io::Result<usize>) -> io::Result<()> {
        let bufs = match r {
            Ok(n) => n,
            Err(e) => {
                // ICMP errors surface here on some systems; they say
                // nothing about our socket.
                self.recv_errors += 1;
                debug!(error = %e, "receive error");
                if self.recv_errors >= MAX_RECV_ERRORS {
                    return Err(e);
                }
                return Ok(());
            }
        };
        self.recv_errors = 0;
        let now = now(self.clock, &self.timer);
        for i in 0..bufs {
            let (from, len, stride) = self.socket.meta(i);
            let mut start = 0;
            while start < len {
                let n = stride.min(len - start);
                let data = self.socket.packet(i, start, n);
                start += n;
                match self.ep.handle(now, from, data, &mut self.rng) {
                    Ok(h) => {
                        // Take this connection's events now, so a burst of
                        // packets never overflows its event queue.
                        while let Some(e) = self.ep.connection_mut(h).and_then(|c| c.poll_event()) {
                            self.on_event(h, e);
                        }
                    }
                    Err(reason) => trace!(%from, ?reason, len = n, "datagram dropped"),
                }
            }
        }
        Ok(())
    }

    // ----- events -----

    fn on_event(&mut self, h: ConnectionHandle, e: Event) {
        let id = match (self.by_handle.get(&h), e) {
            (Some(&id), _) => id,
            (None, Event::Connected) => self.register_accepted(h),
            // A server connection that never finished its handshake.
            (None, Event::Closed(why)) => {
                debug!(?h, %why, "half-open connection dropped");
                if let Some(c) = self.ep.connection(h) {
                    self.gone_peers.push(c.peer_addr());
                }
                return;
            }
            (None, _) => return,
        };
        let now = now(self.clock, &self.timer);
        let Some(st) = self.conns.get_mut(&id) else {
            return;
        };
        let core = self.ep.connection_mut(h);
        match e {
            Event::Connected => self.on_connected(id),
            Event::ChannelOpened(ch) => st.channel_opened(ch),
            Event::Readable(_) => st.serve_recv(core, &mut self.msg_buf),
            Event::Writable(_) => {
                if let Some(c) = core {
                    st.retry_sends(c);
                }
            }
            Event::DatagramReceived => st.serve_datagrams(core, &mut self.msg_buf),
            Event::Closed(why) => {
                let span = st.span.clone();
                let _g = span.enter();
                let error = Error::Closed(why);
                match why {
                    tern::ConnectionError::LocallyClosed { .. }
                    | tern::ConnectionError::PeerClosed { .. } => info!(%why, "connection closed"),
                    _ => warn!(%why, "connection failed"),
                }
                self.gone_peers
                    .push(core.as_deref().map_or(st.peer, |c| c.peer_addr()));
                st.on_ended(core, error, now, &mut self.msg_buf);
                self.by_handle.remove(&h);
                self.forget_if_unused(id);
            }
        }
    }

    /// A server connection finished its handshake: make it known.
    fn register_accepted(&mut self, h: ConnectionHandle) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let peer = self
            .ep
            .connection(h)
            .map_or(self.local_addr, |c| c.peer_addr());
        self.conns
            .insert(id, ConnState::new(id, h, peer, Side::Server, None));
        self.by_handle.insert(h, id);
        id
    }

    fn on_connected(&mut self, id: u64) {
        let Some(st) = self.conns.get_mut(&id) else {
            return;
        };
        let h = st.handle;
        let hs = h
            .and_then(|h| self.ep.connection(h))
            .and_then(|c| c.stats().handshake_duration);
        info!(parent: &st.span, handshake = ?hs, "connection established");
        match st.side {
            Side::Client => {
                if let Some(reply) = st.connect_reply.take() {
                    st.handed_out = true;
                    match self.tx.upgrade() {
                        Some(tx) => {
                            let conn = Connection::new(id, st.peer, Side::Client, tx);
                            // If `connect` was cancelled, dropping the
                            // handle closes the connection.
                            let _ = reply.send(Ok(conn));
                        }
                        None => self.release(id),
                    }
                }
            }
            Side::Server => {
                if self.shutdown.is_some() || !self.endpoint_alive {
                    st.handed_out = true;
                    self.release(id);
                    if let Some(c) = h.and_then(|h| self.ep.connection_mut(h)) {
                        c.close(
                            now(self.clock, &self.timer),
                            code::SHUTDOWN,
                            "not accepting",
                        );
                    }
                    return;
                }
                self.accept_queue.push_back(id);
                self.serve_accept();
            }
        }
    }

    fn serve_accept(&mut self) {
        while !self.accept_queue.is_empty() {
            let Some(w) = self.accept_waiters.pop_front() else {
                return;
            };
            if w.is_canceled() {
                continue;
            }
            let Some(tx) = self.tx.upgrade() else {
                return;
            };
            let Some(id) = self.accept_queue.pop_front() else {
                return;
            };
            let Some(st) = self.conns.get_mut(&id) else {
                continue;
            };
            st.handed_out = true;
            let conn = Connection::new(id, st.peer, Side::Server, tx);
            if let Err(Some(conn)) = w.send(Some(conn)) {
                // The caller went away at that very moment: keep the
                // connection for the next `accept`.
                conn.disarm();
                st.handed_out = false;
                self.accept_queue.push_front(id);
            }
        }
    }
}

impl<T: Transport, C: Timer, P: Provider> Driver<T, C, P> {
    // ----- requests from handles -----

    fn command(&mut self, c: Command) {
        match c {
            Command::Connect { peer, creds, reply } => self.connect(peer, &creds, reply),
            Command::Accept { reply } => {
                if self.shutdown.is_some() {
                    let _ = reply.send(None);
                } else {
                    self.accept_waiters.push_back(reply);
                    self.serve_accept();
                }
            }
            Command::Stats { reply } => {
                let _ = reply.send(EndpointStats {
                    core: self.ep.stats(),
                    connections: self.ep.len(),
                    local_addr: self.local_addr,
                });
            }
            Command::Shutdown { reply } => {
                self.begin_shutdown();
                if let Some(s) = &mut self.shutdown {
                    s.waiters.push(reply);
                }
            }
            Command::EndpointDropped => {
                self.endpoint_alive = false;
                self.stop_accepting();
            }
            Command::Conn { id, op } => self.conn_command(id, op),
        }
    }

    fn connect(
        &mut self,
        peer: SocketAddr,
        creds: &tern::Credentials,
        reply: oneshot::Sender<Result<Connection, Error>>,
    ) {
        if self.shutdown.is_some() {
            let _ = reply.send(Err(Error::EndpointClosed));
            return;
        }
        let now = now(self.clock, &self.timer);
        match self.ep.connect(now, peer, creds, &mut self.rng) {
            Ok(h) => {
                let id = self.next_id;
                self.next_id += 1;
                let st = ConnState::new(id, h, peer, Side::Client, Some(reply));
                debug!(parent: &st.span, "handshake started");
                self.conns.insert(id, st);
                self.by_handle.insert(h, id);
            }
            Err(e) => {
                debug!(%peer, error = %e, "connect refused");
                let _ = reply.send(Err(Error::Setup(e)));
            }
        }
    }

    fn conn_command(&mut self, id: u64, op: ConnOp) {
        let now = now(self.clock, &self.timer);
        let Some(st) = self.conns.get_mut(&id) else {
            // Only a late `Release` can get here; the rest hold a handle.
            return;
        };
        let core: Option<&mut Core<P>> = st.handle.and_then(|h| self.ep.connection_mut(h));
        match op {
            ConnOp::OpenChannel(reply) => {
                let r = match (core, st.closing) {
                    (Some(c), None) => c.open_channel().map_err(|e| st.send_error(e)),
                    _ => Err(crate::SendError::Closed(st.gone())),
                };
                let _ = reply.send(r);
            }
            ConnOp::AcceptChannel(reply) => st.add_channel_waiter(reply),
            ConnOp::Send {
                channel,
                data,
                reply,
            } => st.send(core, channel, data, reply),
            ConnOp::Recv { channel, reply } => {
                st.add_recv_waiter(channel, reply);
                st.serve_recv(core, &mut self.msg_buf);
            }
            ConnOp::SendDatagram { data, reply } => {
                let r = match (core, st.closing) {
                    (Some(c), None) => c.send_datagram(&data).map_err(|e| st.send_error(e)),
                    _ => Err(crate::SendError::Closed(st.gone())),
                };
                let _ = reply.send(r);
            }
            ConnOp::RecvDatagram(reply) => {
                st.add_datagram_waiter(reply);
                st.serve_datagrams(core, &mut self.msg_buf);
            }
            ConnOp::Stats(reply) => {
                let _ = reply.send(st.stats(core.as_deref(), now));
            }
            ConnOp::Close {
                code,
                reason,
                reply,
            } => {
                if let Some(c) = core
                    && st.closing.is_none()
                {
                    debug!(parent: &st.span, code, reason, "closing");
                    c.close(now, code, &reason);
                }
                st.start_close(code);
                st.add_close_waiter(reply);
            }
            ConnOp::Release => self.release(id),
        }
    }

    /// No handle is left for connection `id`: close it gracefully if it
    /// lives, forget it once it has ended.
    fn release(&mut self, id: u64) {
        let Some(st) = self.conns.get_mut(&id) else {
            return;
        };
        st.released = true;
        if st.closing.is_none()
            && let Some(c) = st.handle.and_then(|h| self.ep.connection_mut(h))
        {
            debug!(parent: &st.span, "last handle dropped; closing");
            c.close(now(self.clock, &self.timer), code::NO_ERROR, "");
        }
        st.start_close(code::NO_ERROR);
        self.forget_if_unused(id);
    }

    /// Drops the state of a connection that ended and that no handle can
    /// ask about any more.
    fn forget_if_unused(&mut self, id: u64) {
        let Some(st) = self.conns.get(&id) else {
            return;
        };
        if st.handle.is_some() {
            return;
        }
        let queued = !st.handed_out && self.accept_queue.contains(&id);
        let unreachable = st.released || (!st.handed_out && st.connect_reply.is_none() && !queued);
        if unreachable {
            self.conns.remove(&id);
        } else if queued && self.accept_queue.len() > self.ep.config().max_connections {
            // Ended before anyone accepted it, and the backlog is long.
            self.accept_queue.retain(|&q| q != id);
            self.conns.remove(&id);
        }
    }

    /// The endpoint handle is gone: no one will accept, so connections
    /// waiting to be accepted are closed.
    fn stop_accepting(&mut self) {
        for w in self.accept_waiters.drain(..) {
            let _ = w.send(None);
        }
        for id in std::mem::take(&mut self.accept_queue) {
            if let Some(st) = self.conns.get_mut(&id) {
                st.handed_out = true;
                if let Some(c) = st.handle.and_then(|h| self.ep.connection_mut(h)) {
                    c.close(
                        now(self.clock, &self.timer),
                        code::SHUTDOWN,
                        "not accepting",
                    );
                    st.start_close(code::SHUTDOWN);
                }
            }
            self.release(id);
        }
    }

    /// Every handle is gone: close what is left and stop once it is closed.
    fn orphaned(&mut self) {
        self.rx_closed = true;
        debug!("no handle left; closing every connection");
        self.begin_shutdown();
    }

    fn begin_shutdown(&mut self) {
        if self.shutdown.is_some() {
            return;
        }
        let bound = self.ep.close_bound().max(Duration::from_millis(100));
        info!(connections = self.ep.len(), ?bound, "shutting down");
        self.shutdown = Some(Shutdown {
            deadline: self.timer.now() + bound,
            waiters: Vec::new(),
        });
        self.stop_accepting();
        // Close every connection not closing yet (handshakes included),
        // keeping the code of those already closing.
        let now = now(self.clock, &self.timer);
        let handles: Vec<ConnectionHandle> = self.ep.handles().collect();
        for h in handles {
            let st = self.by_handle.get(&h).and_then(|id| self.conns.get_mut(id));
            if st.as_ref().is_some_and(|st| st.closing.is_some()) {
                continue;
            }
            if let Some(st) = st {
                st.start_close(code::SHUTDOWN);
            }
            if let Some(c) = self.ep.connection_mut(h) {
                c.close(now, code::SHUTDOWN, "endpoint shutdown");
            }
        }
    }

    /// The endpoint stops: every request still waiting gets `error`.
    fn fail_all(&mut self, error: Error) {
        let now = now(self.clock, &self.timer);
        for (_, mut st) in self.conns.drain() {
            if st.ended.is_none() {
                st.on_ended::<P>(None, error.clone(), now, &mut self.msg_buf);
            }
        }
        for w in self.accept_waiters.drain(..) {
            let _ = w.send(None);
        }
    }
}
