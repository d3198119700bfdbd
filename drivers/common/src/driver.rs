//! The endpoint: the sans-IO state machine, the socket, the timer and what
//! the driver keeps per connection, behind one lock shared by the
//! endpoint's task and every handle.
//!
//! Handles do their work themselves, from their own tasks: `send` hands
//! the message to the state machine and transmits at once (a non-blocking
//! send on the socket); `recv` takes a message if one is there. When they
//! must wait they leave a waker in the state, and events wake them. The
//! endpoint's task only waits for the socket, the timer and a wake-up from
//! a handle that needs it (a transmit the socket could not take or the
//! transport cannot do from a handle, a deadline the timer does not know
//! yet, a connection that ended). Either way the driving contract is
//! followed: after any input, events are taken and packets sent until
//! none are left, and the timer follows `poll_timeout`.
//!
//! The lock is never held across an `.await`, and tasks are woken only
//! after it was released.

use crate::clock::Clock;
use crate::conn_state::{
    ConnState, Core, Provider, RecvArena, ToWake, Wait, WaitList, close_outcome, read_datagram,
    read_message,
};
use crate::endpoint::EndpointStats;
use crate::error::{Error, SendError};
use crate::runtime::{Timer, Transport};
use crate::stats::Stats;
use crate::udp::batch_limit;
use bytes::Bytes;
use rand::rngs::StdRng;
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tern::connection::SendError as CoreSendError;
use tern::connection::code;
use tern::endpoint::{BoxSlots, ConnectionHandle};
use tern::storage::HeapBytes;
use tern::{Credentials, Event, Side};
use tern_ring::RingCrypto;
use tracing::{debug, info, trace, warn};

/// Receive calls (each up to a few buffers, a buffer up to 64 KiB of
/// coalesced datagrams) in one pass of the task, under one hold of the lock.
const BATCH: usize = 2;
/// Passes of the task in one poll before it lets other tasks run.
const PASSES: u32 = 256;

/// What a pass of the task found.
enum Step {
    /// Nothing to do: wait for the socket, the timer or a handle.
    Idle,
    /// Work done; look again.
    Busy,
    /// The endpoint stopped.
    Done,
}
/// Consecutive receive errors after which the socket is taken as broken.
const MAX_RECV_ERRORS: u32 = 64;

/// The sans-IO endpoint the loop drives: [`tern::ServiceEndpoint`]'s
/// sizes (heap buffers, 64 channels, 256 packets in flight) on the crypto
/// provider `P`, [`RingCrypto`] unless a benchmark asks otherwise.
pub(crate) type DriverEndpoint<P = RingCrypto> =
    tern::endpoint::Endpoint<HeapBytes, 64, 256, BoxSlots<Core<P>>, P>;

/// A connection as its handles name it: a slot of the endpoint's slab and
/// the connection's id (slots are reused, ids are not).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConnKey {
    idx: u32,
    pub(crate) id: u64,
}

/// What a handle asks of the endpoint (the endpoint's state is generic
/// over the transport, timer and crypto provider; handles are not).
pub(crate) trait Ops: Send + Sync + 'static {
    // ----- one connection -----
    fn open_channel(&self, k: ConnKey) -> Result<u32, SendError>;
    fn poll_accept_channel(
        &self,
        k: ConnKey,
        cx: &mut Context<'_>,
        t: &mut Option<u64>,
    ) -> Poll<Result<u32, Error>>;
    fn poll_send(
        &self,
        k: ConnKey,
        cx: &mut Context<'_>,
        channel: u32,
        data: &[u8],
        t: &mut Option<u64>,
    ) -> Poll<Result<(), SendError>>;
    fn poll_recv(
        &self,
        k: ConnKey,
        cx: &mut Context<'_>,
        channel: Option<u32>,
        t: &mut Option<u64>,
    ) -> Poll<Result<(u32, Bytes), Error>>;
    fn send_datagram(&self, k: ConnKey, data: &[u8]) -> Result<(), SendError>;
    fn poll_recv_datagram(
        &self,
        k: ConnKey,
        cx: &mut Context<'_>,
        t: &mut Option<u64>,
    ) -> Poll<Result<Bytes, Error>>;
    fn stats(&self, k: ConnKey) -> Result<Stats, Error>;
    /// `close`: closes on the first poll (`started` false), then waits.
    fn poll_close(
        &self,
        k: ConnKey,
        cx: &mut Context<'_>,
        code: u32,
        reason: &str,
        started: &mut bool,
        t: &mut Option<u64>,
    ) -> Poll<Result<(), Error>>;
    /// A waiting future was dropped.
    fn unregister(&self, k: ConnKey, w: Wait, t: &mut Option<u64>);
    /// No handle is left (`counted`: it was handed out as a `Connection`).
    fn release(&self, k: ConnKey, counted: bool);

    // ----- the endpoint -----
    fn connect(&self, peer: SocketAddr, creds: &Credentials) -> Result<ConnKey, Error>;
    /// `Ok` once established: the caller makes the `Connection`.
    fn poll_connected(
        &self,
        k: ConnKey,
        cx: &mut Context<'_>,
        t: &mut Option<u64>,
    ) -> Poll<Result<SocketAddr, Error>>;
    fn poll_accept(
        &self,
        cx: &mut Context<'_>,
        t: &mut Option<u64>,
    ) -> Poll<Option<(ConnKey, SocketAddr)>>;
    fn unregister_accept(&self, t: &mut Option<u64>);
    fn endpoint_stats(&self) -> Result<EndpointStats, Error>;
    fn poll_shutdown(
        &self,
        cx: &mut Context<'_>,
        started: &mut bool,
        t: &mut Option<u64>,
    ) -> Poll<()>;
    fn unregister_shutdown(&self, t: &mut Option<u64>);
    fn endpoint_dropped(&self);
}

/// A batch of packets the socket could not take yet, at the front of
/// `tx_buf`.
#[derive(Clone, Copy)]
struct Pending {
    to: SocketAddr,
    segment: usize,
    count: usize,
    len: usize,
}

struct Shutdown {
    deadline: tern::Instant,
    waiters: WaitList,
}

/// Everything behind the endpoint's lock.
pub(crate) struct State<T: Transport, C: Timer, P: Provider> {
    /// `None` once the endpoint stopped (the socket is closed then).
    socket: Option<T>,
    /// Handles may transmit themselves.
    direct: bool,
    local_addr: SocketAddr,
    ep: DriverEndpoint<P>,
    rng: StdRng,
    clock: Clock,
    timer: C,
    /// The deadline the timer is armed for (`None`: not armed, or fired).
    timer_at: Option<tern::Instant>,
    /// The timer was polled since it was last armed: it holds the task's
    /// waker and wakes the task when due, so a pass asks the clock rather
    /// than the timer whether it is.
    timer_waits: bool,
    /// The timer reported its deadline passed where the task could not
    /// handle it at once (a runtime's timer may say so only once): the
    /// next pass does.
    timer_fired: bool,
    /// Slab of connections by `ConnKey::idx`.
    conns: Vec<Option<ConnState>>,
    free: Vec<u32>,
    /// Slab slot + 1 of each core connection handle (0: none).
    by_handle: Vec<u32>,
    next_id: u64,
    accept_queue: VecDeque<ConnKey>,
    accept_w: WaitList,
    endpoint_alive: bool,
    /// `Connection` handles alive (each `Inner`, not each clone).
    handles: usize,
    shutdown: Option<Shutdown>,
    stopped: bool,
    /// Packets to send, back to back (several for a segmented send).
    tx_buf: Vec<u8>,
    /// Room for one packet in `tx_buf`.
    tx_slot: usize,
    /// Packets the socket would not take yet (at the front of `tx_buf`);
    /// nothing else is sent until they are.
    pending: Option<Pending>,
    recv_errors: u32,
    /// Peers of connections that ended, to tell the transport once no
    /// other connection uses them.
    gone_peers: Vec<SocketAddr>,
    /// Peers of `gone_peers` still used by connections that ended but
    /// drain in their slots: checked again on the task's next passes.
    draining_peers: Vec<SocketAddr>,
    /// The endpoint's task, to wake when a handle needs it.
    task: Option<Waker>,
    /// A handle asked the task for a full pass.
    kicked: bool,
    /// Events may wait where the direct draining of each connection the
    /// task or a handle drove does not look (a timeout was handled, a
    /// handle asked for a pass), or a closed connection waits to be freed
    /// by the endpoint's round over its connections: the next flush makes
    /// that round. Otherwise every event was taken already, and the round
    /// would only find nothing.
    scan_events: bool,
    to_wake: ToWake,
    /// Where received messages are copied for the application.
    arena: RecvArena,
    span: tracing::Span,
}

/// The endpoint's state behind its lock.
pub(crate) struct Shared<T: Transport, C: Timer, P: Provider> {
    state: Mutex<State<T, C, P>>,
}

impl<T: Transport, C: Timer, P: Provider> Shared<T, C, P> {
    pub(crate) fn new(
        socket: T,
        timer: C,
        ep: DriverEndpoint<P>,
        rng: StdRng,
        span: tracing::Span,
    ) -> Arc<Self> {
        let local_addr = socket.local_addr();
        let cfg = &ep.config().connection;
        let tx_slot = usize::from(cfg.max_packet_size);
        let batch = batch_limit(socket.max_segments(), tx_slot);
        let direct = socket.sends_anywhere();
        Arc::new(Shared {
            state: Mutex::new(State {
                socket: Some(socket),
                direct,
                local_addr,
                rng,
                clock: Clock::new(timer.now()),
                timer,
                timer_at: None,
                timer_waits: false,
                timer_fired: false,
                conns: Vec::new(),
                free: Vec::new(),
                by_handle: Vec::new(),
                next_id: 1,
                accept_queue: VecDeque::new(),
                accept_w: WaitList::default(),
                endpoint_alive: true,
                handles: 0,
                shutdown: None,
                stopped: false,
                tx_buf: vec![0; tx_slot * batch],
                tx_slot,
                pending: None,
                recv_errors: 0,
                gone_peers: Vec::new(),
                draining_peers: Vec::new(),
                task: None,
                kicked: true,
                scan_events: true,
                to_wake: ToWake::default(),
                arena: RecvArena::default(),
                span,
                ep,
            }),
        })
    }

    /// Runs `f` under the lock, then wakes the tasks it made ready.
    fn with<R>(&self, f: impl FnOnce(&mut State<T, C, P>) -> R) -> R {
        let mut g: MutexGuard<'_, State<T, C, P>> =
            self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let r = f(&mut g);
        if g.to_wake.is_empty() {
            return r;
        }
        if let Some(w) = g.to_wake.take_single() {
            drop(g);
            w.wake();
            return r;
        }
        let wake = std::mem::take(&mut g.to_wake);
        drop(g);
        wake.wake();
        r
    }
}

/// The endpoint's task: a future the driver crate spawns.
pub(crate) struct Task<T: Transport, C: Timer, P: Provider> {
    shared: Arc<Shared<T, C, P>>,
}

impl<T: Transport, C: Timer, P: Provider> Task<T, C, P> {
    pub(crate) fn new(shared: Arc<Shared<T, C, P>>) -> Self {
        Task { shared }
    }
}

impl<T: Transport, C: Timer, P: Provider> Future for Task<T, C, P> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        for i in 0..PASSES {
            let step = self.shared.with(|s| {
                if i == 0
                    && let Some(r) = s.begin_poll(cx)
                {
                    return if r.is_ready() { Step::Done } else { Step::Idle };
                }
                s.pass(cx, i == 0)
            });
            match step {
                Step::Idle => return Poll::Pending,
                Step::Done => return Poll::Ready(()),
                Step::Busy => {}
            }
        }
        // A busy endpoint finds work on every pass: let the runtime run
        // its other tasks now and then.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl<T: Transport, C: Timer, P: Provider> Drop for Task<T, C, P> {
    /// The runtime dropped the task (it is shutting down): every waiting
    /// call ends with [`Error::EndpointClosed`] rather than wait forever.
    fn drop(&mut self) {
        self.shared.with(|s| {
            if !s.stopped {
                s.stop(Error::EndpointClosed);
            }
        });
    }
}

impl<T: Transport, C: Timer, P: Provider> State<T, C, P> {
    /// The current time in Tern's terms.
    fn now(&self) -> tern::Instant {
        self.clock.to_tern(self.timer.now())
    }

    /// Asks the task to run a full pass (events, transmits, timer).
    fn wake_task(&mut self) {
        if !self.kicked {
            self.kicked = true;
            if let Some(w) = &self.task {
                self.to_wake.push(w.clone());
            }
        }
    }

    fn idx_of(&self, h: ConnectionHandle) -> Option<usize> {
        match self.by_handle.get(h.0) {
            Some(&i) if i > 0 => Some(i as usize - 1),
            _ => None,
        }
    }

    fn insert(&mut self, h: ConnectionHandle, peer: SocketAddr, side: Side) -> ConnKey {
        let id = self.next_id;
        self.next_id += 1;
        let st = ConnState::new(id, h, peer, side, &self.span);
        let idx = match self.free.pop() {
            Some(i) => {
                self.conns[i as usize] = Some(st);
                i
            }
            None => {
                self.conns.push(Some(st));
                (self.conns.len() - 1) as u32
            }
        };
        if self.by_handle.len() <= h.0 {
            self.by_handle.resize(h.0 + 1, 0);
        }
        self.by_handle[h.0] = idx + 1;
        ConnKey { idx, id }
    }

    // ----- the endpoint's task -----

    /// The start of a poll of the task: `Some` when it is done.
    fn begin_poll(&mut self, cx: &mut Context<'_>) -> Option<Poll<()>> {
        if self.stopped {
            return Some(Poll::Ready(()));
        }
        if !self.task.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            if self.task.is_none() {
                info!(parent: &self.span, local = %self.local_addr, "endpoint started");
            }
            self.task = Some(cx.waker().clone());
        }
        // A full pass first only if a handle asked for one or the socket
        // refused packets; otherwise the socket or the timer woke us.
        if std::mem::take(&mut self.kicked) || self.pending.is_some() {
            self.scan_events = true;
            let now = self.now();
            return self.full_pass(cx, now);
        }
        None
    }

    /// One pass of the task (the lock is released between passes, so
    /// handles never wait long for it): the timer, a few receive batches,
    /// then a full pass if anything happened.
    fn pass(&mut self, cx: &mut Context<'_>, first: bool) -> Step {
        if self.stopped {
            return Step::Done;
        }
        // The clock is read only when there is work (an idle pass is the
        // common last one) or to see whether a waiting timer is due.
        let mut now = None;
        let mut busy = false;
        if let Some(at) = self.timer_at {
            let due = if self.timer_fired {
                true
            } else if self.timer_waits {
                // The timer wakes the task when it is due; the first pass
                // of each wake-up asks the clock (cheaper than polling the
                // runtime's timer on every pass).
                first && {
                    let t = self.now();
                    now = Some(t);
                    t >= at
                }
            } else if self.timer.poll_expired(cx).is_ready() {
                true
            } else {
                self.timer_waits = true;
                false
            };
            if due {
                self.timer_at = None;
                self.timer_waits = false;
                self.timer_fired = false;
                let t = *now.get_or_insert_with(|| self.now());
                self.ep.handle_timeout(t);
                self.scan_events = true;
                busy = true;
            }
        }
        let Some(socket) = self.socket.as_mut() else {
            return Step::Done;
        };
        if let Poll::Ready(r) = socket.poll_recv(cx) {
            let mut t = match now {
                Some(t) => t,
                None => self.now(),
            };
            busy = true;
            let mut r = self.on_recv(r, t);
            // Take what else is waiting, without sleeping.
            for _ in 1..BATCH {
                if r.is_err() {
                    break;
                }
                let Some(socket) = self.socket.as_mut() else {
                    break;
                };
                if socket.recv_waits() {
                    // The batch emptied the socket.
                    break;
                }
                match socket.try_recv() {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    next => {
                        t = self.now();
                        r = self.on_recv(next, t);
                    }
                }
            }
            now = Some(t);
            if let Err(e) = r {
                warn!(parent: &self.span, error = %e, "endpoint socket failed; every connection ends");
                self.stop(Error::Io(Arc::new(e)));
                return Step::Done;
            }
        }
        let Some(now) = now.filter(|_| busy) else {
            return Step::Idle;
        };
        self.kicked = false;
        match self.full_pass(cx, now) {
            Some(_) => Step::Done,
            None if self.settled(cx) => Step::Idle,
            None => Step::Busy,
        }
    }

    /// After a busy pass: whether the next would find nothing to do, so
    /// the task may wait now. It would if the socket's last receive
    /// emptied it and left the task's waker, and the timer holds the
    /// task's waker (polled here if it was armed since it last did).
    /// Handles that need the task wake it themselves.
    fn settled(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.socket.as_ref().is_some_and(|s| s.recv_waits()) {
            return false;
        }
        if self.timer_at.is_some() && !self.timer_waits {
            if self.timer.poll_expired(cx).is_ready() {
                self.timer_fired = true;
                return false;
            }
            self.timer_waits = true;
        }
        true
    }

    /// Pending packets, events, transmits, the end of a shutdown, the
    /// timer. `Some` when the task is done.
    fn full_pass(&mut self, cx: &mut Context<'_>, now: tern::Instant) -> Option<Poll<()>> {
        self.write_pending(cx);
        self.flush(now);
        if self.finished(now) {
            info!(parent: &self.span, "endpoint stopped");
            self.stop(Error::EndpointClosed);
            return Some(Poll::Ready(()));
        }
        self.arm_timer();
        None
    }

    /// Offers the socket the packets it refused, registering for
    /// writability if it still refuses.
    fn write_pending(&mut self, cx: &mut Context<'_>) {
        for _ in 0..4 {
            if self.pending.is_none() || !self.send_pending() {
                return;
            }
            let Some(socket) = self.socket.as_mut() else {
                return;
            };
            match socket.poll_writable(cx) {
                Poll::Pending => return,
                Poll::Ready(Err(e)) => {
                    debug!(parent: &self.span, error = %e, "socket not writable; packets lost");
                    self.pending = None;
                    return;
                }
                Poll::Ready(Ok(())) => {}
            }
        }
        // Writable, yet still refused: try again soon rather than wait
        // for a readiness that was already reported.
        if self.pending.is_some() {
            self.kicked = true;
            cx.waker().wake_by_ref();
        }
    }

    /// Whether the endpoint should stop: shut down and every connection
    /// gone (or the bound passed).
    fn finished(&mut self, now: tern::Instant) -> bool {
        let Some(s) = &self.shutdown else {
            return false;
        };
        if self.ep.is_empty() {
            return true;
        }
        if now >= s.deadline {
            warn!(
                parent: &self.span,
                left = self.ep.len(),
                "shutdown bound reached before every connection closed"
            );
            return true;
        }
        false
    }

    /// The earliest deadline: the state machine's, or the shutdown bound.
    fn deadline(&self) -> Option<tern::Instant> {
        let at = self.ep.poll_timeout();
        match &self.shutdown {
            Some(s) => Some(at.map_or(s.deadline, |t| t.min(s.deadline))),
            None => at,
        }
    }

    /// Arms the timer for the deadline if it is earlier than the one
    /// armed. A deadline that moved later (or went away) leaves the timer
    /// as it is: it fires early once, finds nothing due, and is armed
    /// again then. Deadlines move on every packet (an acknowledgement
    /// delay, a probe timeout) and the earlier ones rarely fire, so this
    /// re-arms the runtime's timer far less often.
    fn arm_timer(&mut self) {
        let Some(t) = self.deadline() else {
            return;
        };
        if self.timer_at.is_none_or(|armed| t < armed) {
            self.timer.reset(self.clock.to_std(t));
            self.timer_at = Some(t);
            self.timer_waits = false;
        }
    }

    /// After a handle changed something that now needs the timer at `at`:
    /// a deadline earlier than the one armed moves the timer (it keeps the
    /// task's waker); one the task does not know of at all needs the task.
    fn check_timer(&mut self, at: Option<tern::Instant>) {
        let Some(t) = at else {
            return;
        };
        match self.timer_at {
            Some(armed) if t >= armed => {}
            Some(_) => {
                self.timer.reset(self.clock.to_std(t));
                self.timer_at = Some(t);
                // The next pass polls it again (registering the task's
                // waker, should the timer have fired since).
                self.timer_waits = false;
            }
            None => self.wake_task(),
        }
    }

    /// The task stops: every waiting call gets `error` (or the error its
    /// connection ended with), the socket is closed.
    fn stop(&mut self, error: Error) {
        self.stopped = true;
        let now = self.now();
        for st in self.conns.iter_mut().flatten() {
            if st.ended.is_none() {
                st.on_ended::<P>(None, error.clone(), now, &mut self.to_wake, &mut self.arena);
            }
        }
        self.accept_w.wake_all(&mut self.to_wake);
        if let Some(s) = &mut self.shutdown {
            s.waiters.wake_all(&mut self.to_wake);
        }
        self.socket = None;
        self.pending = None;
        self.task = None;
    }

    // ----- the driving contract -----

    /// Polls events and transmits until neither has anything left.
    fn flush(&mut self, now: tern::Instant) {
        for _ in 0..16 {
            let events = if self.scan_events {
                self.drain_events(now)
            } else {
                0
            };
            self.transmit(now, None);
            if events == 0 {
                break;
            }
        }
        self.release_peers();
    }

    fn drain_events(&mut self, now: tern::Instant) -> usize {
        self.scan_events = false;
        let mut n = 0;
        while let Some((h, e)) = self.ep.poll_event() {
            self.on_event(h, e, now);
            n += 1;
        }
        n
    }

    /// What a handle does after changing the state machine in a way that
    /// may touch any connection: events, packets out (itself if the
    /// transport allows, else by the task), the timer.
    fn after_op(&mut self, now: tern::Instant) {
        if self.stopped {
            return;
        }
        self.drain_events(now);
        if self.direct {
            self.transmit(now, None);
        } else {
            self.wake_task();
        }
        if !self.gone_peers.is_empty() {
            self.wake_task();
        }
        self.check_timer(self.deadline());
    }

    /// What a handle does after changing connection `h` only: the same,
    /// asking that connection alone (not the endpoint's round over every
    /// connection).
    fn after_conn_op(&mut self, h: ConnectionHandle, now: tern::Instant) {
        if self.stopped {
            return;
        }
        while let Some(e) = self.ep.connection_mut(h).and_then(|c| c.poll_event()) {
            self.on_event(h, e, now);
        }
        if self.direct {
            self.transmit(now, Some(h));
        } else {
            self.wake_task();
        }
        if !self.gone_peers.is_empty() {
            self.wake_task();
        }
        let at = self.ep.connection(h).and_then(|c| c.poll_timeout());
        self.check_timer(at);
    }

    /// Tells the transport which peers no open connection uses any more
    /// (after the last packets to them were sent).
    ///
    /// A connection reported `Closed` may still be draining in its slot
    /// (a peer's CLOSE is acknowledged from there): its peer is checked
    /// again on later passes of the task, until the endpoint freed it.
    fn release_peers(&mut self) {
        if self.gone_peers.is_empty() && self.draining_peers.is_empty() {
            return;
        }
        let mut gone = std::mem::take(&mut self.gone_peers);
        gone.append(&mut self.draining_peers);
        gone.sort_unstable();
        gone.dedup();
        // O(1) per peer through the endpoint's address index (every
        // datagram reaches the connections through `Endpoint::handle`, so
        // the index follows their moves).
        let mut draining = Vec::new();
        gone.retain(|p| {
            let mut ending = false;
            for h in self.ep.connections_to(*p) {
                if self.ep.connection(h).is_none_or(|c| c.is_closed()) {
                    continue;
                }
                if self.idx_of(h).is_some() {
                    // A live connection uses it; its own end adds it again.
                    return false;
                }
                // Reported closed and draining, or a handshake not yet
                // known to the driver: look again later.
                ending = true;
            }
            if ending {
                draining.push(*p);
            }
            !ending
        });
        self.draining_peers = draining;
        if let Some(socket) = self.socket.as_mut() {
            for p in gone {
                socket.peer_gone(p);
            }
        }
    }

    /// Sends the waiting batch; whether the socket still refuses some.
    fn send_pending(&mut self) -> bool {
        match self.pending {
            Some(p) => self.offer(p),
            None => false,
        }
    }

    /// Offers the socket the batch `p` at the front of `tx_buf`, keeping
    /// what it refuses as pending; whether it refused some.
    fn offer(&mut self, p: Pending) -> bool {
        let Some(socket) = self.socket.as_mut() else {
            self.pending = None;
            return false;
        };
        match socket.try_send(p.to, &self.tx_buf[..p.len], p.segment, p.count) {
            Ok(n) if n < p.count => {
                let done = (n * p.segment).min(p.len);
                self.tx_buf.copy_within(done..p.len, 0);
                self.pending = Some(Pending {
                    count: p.count - n,
                    len: p.len - done,
                    ..p
                });
                true
            }
            Ok(_) => {
                self.pending = None;
                false
            }
            Err(e) => {
                debug!(parent: &self.span, to = %p.to, error = %e, "send failed");
                self.pending = None;
                false
            }
        }
    }

    /// Sends a batch built at the front of `tx_buf`; whether the socket
    /// refused some (they are kept as pending, and the task is woken to
    /// wait for writability).
    fn send_batch(&mut self, batch: Option<(SocketAddr, usize, usize)>, len: usize) -> bool {
        let Some((to, segment, count)) = batch else {
            return false;
        };
        if self.offer(Pending {
            to,
            segment,
            count,
            len,
        }) {
            self.wake_task();
            return true;
        }
        false
    }

    /// Sends every packet the state machine has (`only`: that
    /// connection's, without the endpoint's round over every connection),
    /// batching runs of equal-size packets to one destination into one
    /// segmented send. Stops when the socket refuses packets.
    fn transmit(&mut self, now: tern::Instant, only: Option<ConnectionHandle>) {
        if self.pending.is_some() {
            return;
        }
        let Some(socket) = self.socket.as_ref() else {
            return;
        };
        let max = batch_limit(socket.max_segments(), self.tx_slot);
        // The batch being built: destination, segment size, packets, bytes.
        let mut batch: Option<(SocketAddr, usize, usize)> = None;
        let mut len = 0;
        loop {
            let slot = self.tx_slot;
            let buf = &mut self.tx_buf[len..len + slot];
            let polled = match only {
                None => self.ep.poll_transmit(now, buf).map(|o| o.map(|(_, t)| t)),
                Some(h) => match self.ep.connection_mut(h) {
                    Some(c) => c.poll_transmit(now, buf),
                    None => Ok(None),
                },
            };
            let t = match polled {
                Ok(Some(t)) => t,
                Ok(None) => break,
                Err(tern::connection::TransmitError::BufferTooSmall { needed }) => {
                    if self.send_batch(batch.take(), len) {
                        return;
                    }
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
                        if self.send_batch(batch.take(), len) {
                            return;
                        }
                        len = 0;
                    }
                }
                Some(_) => {
                    // Another destination or a larger packet: send what
                    // is built, and start again with this packet.
                    let start = len;
                    if self.send_batch(batch.take(), len) {
                        // The socket's buffer filled in the middle of a
                        // transmit: this packet cannot wait behind the
                        // refused ones; it is lost (the protocol recovers).
                        trace!(parent: &self.span, to = %t.destination, "packet dropped: socket buffer full");
                        return;
                    }
                    self.tx_buf.copy_within(start..start + t.len, 0);
                    batch = Some((t.destination, t.len, 1));
                    len = t.len;
                }
            }
            if let Some((_, _, n)) = batch
                && (n >= max || len + self.tx_slot > self.tx_buf.len())
            {
                if self.send_batch(batch.take(), len) {
                    return;
                }
                len = 0;
            }
        }
        self.send_batch(batch.take(), len);
    }

    fn on_recv(&mut self, r: io::Result<usize>, now: tern::Instant) -> io::Result<()> {
        let bufs = match r {
            Ok(n) => n,
            Err(e) => {
                // ICMP errors surface here on some systems; they say
                // nothing about our socket.
                self.recv_errors += 1;
                debug!(parent: &self.span, error = %e, "receive error");
                if self.recv_errors >= MAX_RECV_ERRORS {
                    return Err(e);
                }
                return Ok(());
            }
        };
        self.recv_errors = 0;
        for i in 0..bufs {
            let Some(socket) = self.socket.as_mut() else {
                return Ok(());
            };
            let (from, len, stride) = socket.meta(i);
            let mut start = 0;
            while start < len {
                let n = stride.min(len - start);
                let Some(socket) = self.socket.as_mut() else {
                    return Ok(());
                };
                let data = socket.packet(i, start, n);
                start += n;
                if self.shutdown.is_some()
                    && matches!(
                        tern::packet::classify(data),
                        Ok(tern::packet::PacketClass::Handshake { receiver: 0 })
                    )
                {
                    // Shutting down: no new connection (the socket
                    // closes soon; the peer's handshake times out).
                    trace!(parent: &self.span, %from, "handshake refused: shutting down");
                    continue;
                }
                match self.ep.handle(now, from, data, &mut self.rng) {
                    Ok(h) => {
                        // Take this connection's events now, so a burst of
                        // packets never overflows its event queue.
                        while let Some(e) = self.ep.connection_mut(h).and_then(|c| c.poll_event()) {
                            self.on_event(h, e, now);
                        }
                    }
                    Err(reason) => {
                        trace!(parent: &self.span, %from, ?reason, len = n, "datagram dropped");
                    }
                }
            }
        }
        Ok(())
    }

    // ----- events -----

    fn on_event(&mut self, h: ConnectionHandle, e: Event, now: tern::Instant) {
        let idx = match (self.idx_of(h), e) {
            (Some(i), _) => i,
            (None, Event::Connected) => self.register_accepted(h),
            // A server connection that never finished its handshake.
            (None, Event::Closed(why)) => {
                self.scan_events = true;
                debug!(parent: &self.span, ?h, %why, "half-open connection dropped");
                if let Some(c) = self.ep.connection(h) {
                    self.gone_peers.push(c.peer_addr());
                }
                return;
            }
            (None, _) => return,
        };
        let Some(st) = self.conns.get_mut(idx).and_then(Option::as_mut) else {
            return;
        };
        match e {
            Event::Connected => self.on_connected(idx, now),
            Event::ChannelOpened(ch) => {
                st.opened.push_back(ch);
                st.wake(Wait::Channel, &mut self.to_wake);
            }
            Event::Readable(_) => st.wake(Wait::Recv, &mut self.to_wake),
            // The first sender waiting on each channel (the others wait
            // behind it). Every channel's, not only this one's: the core
            // signals a bounded number of channels per credit update, and
            // a first sender that finds no room registers again.
            Event::Writable(_) => st.waiters(Wait::Send).wake_firsts(&mut self.to_wake),
            Event::DatagramReceived => st.wake(Wait::Datagram, &mut self.to_wake),
            Event::Closed(why) => {
                // Its slot is freed by the endpoint's next round.
                self.scan_events = true;
                match why {
                    tern::ConnectionError::LocallyClosed { .. }
                    | tern::ConnectionError::PeerClosed { .. } => {
                        info!(parent: &st.span, %why, "connection closed");
                    }
                    _ => warn!(parent: &st.span, %why, "connection failed"),
                }
                let core = self.ep.connection_mut(h);
                self.gone_peers
                    .push(core.as_deref().map_or(st.peer, |c| c.peer_addr()));
                st.on_ended(
                    core,
                    Error::Closed(why),
                    now,
                    &mut self.to_wake,
                    &mut self.arena,
                );
                self.by_handle[h.0] = 0;
                self.forget_if_unused(idx);
            }
        }
    }

    /// A server connection finished its handshake: make it known.
    fn register_accepted(&mut self, h: ConnectionHandle) -> usize {
        let peer = self
            .ep
            .connection(h)
            .map_or(self.local_addr, |c| c.peer_addr());
        self.insert(h, peer, Side::Server).idx as usize
    }

    fn on_connected(&mut self, idx: usize, now: tern::Instant) {
        let Some(st) = self.conns.get_mut(idx).and_then(Option::as_mut) else {
            return;
        };
        st.established = true;
        let h = st.handle;
        let hs = h
            .and_then(|h| self.ep.connection(h))
            .and_then(|c| c.stats().handshake_duration);
        info!(parent: &st.span, handshake = ?hs, "connection established");
        match st.side {
            Side::Client => st.wake(Wait::Connect, &mut self.to_wake),
            Side::Server => {
                if self.shutdown.is_some() || !self.endpoint_alive {
                    st.handed_out = true;
                    st.released = true;
                    if let Some(c) = h.and_then(|h| self.ep.connection_mut(h)) {
                        c.close(now, code::SHUTDOWN, "not accepting");
                    }
                    st.start_close(code::SHUTDOWN, &mut self.to_wake);
                    self.scan_events = true;
                    return;
                }
                let key = ConnKey {
                    idx: idx as u32,
                    id: st.id,
                };
                self.accept_queue.push_back(key);
                self.accept_w.wake_all(&mut self.to_wake);
            }
        }
    }

    /// No handle is left for connection `idx`: close it gracefully if it
    /// lives, forget it once it has ended.
    fn release_idx(&mut self, idx: usize, now: tern::Instant) {
        let Some(st) = self.conns.get_mut(idx).and_then(Option::as_mut) else {
            return;
        };
        st.released = true;
        if st.closing.is_none()
            && let Some(c) = st.handle.and_then(|h| self.ep.connection_mut(h))
        {
            debug!(parent: &st.span, "last handle dropped; closing");
            c.close(now, code::NO_ERROR, "");
        }
        st.start_close(code::NO_ERROR, &mut self.to_wake);
        self.forget_if_unused(idx);
    }

    /// Drops the state of a connection that ended and that no handle can
    /// ask about any more.
    fn forget_if_unused(&mut self, idx: usize) {
        let Some(st) = self.conns.get(idx).and_then(Option::as_ref) else {
            return;
        };
        if st.handle.is_some() {
            return;
        }
        let key = ConnKey {
            idx: idx as u32,
            id: st.id,
        };
        let queued = !st.handed_out && self.accept_queue.contains(&key);
        let unreachable = st.released || (!st.handed_out && !st.connecting && !queued);
        let forget = if unreachable {
            true
        } else if queued && self.accept_queue.len() > self.ep.config().max_connections {
            // Ended before anyone accepted it, and the backlog is long.
            self.accept_queue.retain(|&q| q != key);
            true
        } else {
            false
        };
        if forget {
            self.conns[idx] = None;
            self.free.push(idx as u32);
        }
    }

    /// The endpoint handle is gone: no one will accept, so connections
    /// waiting to be accepted are closed.
    fn stop_accepting(&mut self, now: tern::Instant) {
        self.accept_w.wake_all(&mut self.to_wake);
        for key in std::mem::take(&mut self.accept_queue) {
            if let Some(st) = slot(&mut self.conns, key) {
                st.handed_out = true;
                if let Some(c) = st.handle.and_then(|h| self.ep.connection_mut(h)) {
                    c.close(now, code::SHUTDOWN, "not accepting");
                    st.start_close(code::SHUTDOWN, &mut self.to_wake);
                }
            }
            self.release_idx(key.idx as usize, now);
        }
    }

    /// Every handle is gone: close what is left, stop once it is closed.
    fn check_orphaned(&mut self, now: tern::Instant) {
        if !self.endpoint_alive && self.handles == 0 && self.shutdown.is_none() {
            debug!(parent: &self.span, "no handle left; closing every connection");
            self.begin_shutdown(now);
        }
    }

    fn begin_shutdown(&mut self, now: tern::Instant) {
        if self.shutdown.is_some() {
            return;
        }
        let bound = self.ep.close_bound().max(Duration::from_millis(100));
        info!(parent: &self.span, connections = self.ep.len(), ?bound, "shutting down");
        self.shutdown = Some(Shutdown {
            deadline: now + bound,
            waiters: WaitList::default(),
        });
        self.stop_accepting(now);
        // Close every connection not closing yet (handshakes included),
        // keeping the code of those already closing.
        let handles: Vec<ConnectionHandle> = self.ep.handles().collect();
        for h in handles {
            let idx = self.idx_of(h);
            let st = idx.and_then(|i| self.conns.get_mut(i).and_then(Option::as_mut));
            if st.as_ref().is_some_and(|st| st.closing.is_some()) {
                continue;
            }
            if let Some(st) = st {
                st.start_close(code::SHUTDOWN, &mut self.to_wake);
            }
            if let Some(c) = self.ep.connection_mut(h) {
                c.close(now, code::SHUTDOWN, "endpoint shutdown");
            }
        }
        // The task drives the closes and stops once they are done.
        self.wake_task();
    }
}

/// Connection `k` in the slab, if it is still there.
#[inline]
fn slot(conns: &mut [Option<ConnState>], k: ConnKey) -> Option<&mut ConnState> {
    conns
        .get_mut(k.idx as usize)
        .and_then(Option::as_mut)
        .filter(|c| c.id == k.id)
}

/// The error of a call on a connection the endpoint no longer knows.
fn unknown() -> Error {
    Error::EndpointClosed
}

impl<T: Transport, C: Timer, P: Provider> Shared<T, C, P> {
    /// Runs `op` on connection `k` if it lives and is not closing, then
    /// does what follows any change to it (events, transmit, timer).
    fn live_op<R>(
        &self,
        k: ConnKey,
        op: impl FnOnce(&mut Core<P>) -> Result<R, tern::connection::SendError>,
    ) -> Result<R, SendError> {
        self.with(|s| {
            let now = s.now();
            let st = slot(&mut s.conns, k).ok_or_else(unknown)?;
            let (Some(h), None) = (st.handle, st.closing) else {
                return Err(SendError::Closed(st.gone()));
            };
            let Some(c) = s.ep.connection_mut(h) else {
                return Err(SendError::Closed(st.gone()));
            };
            let r = op(c).map_err(|e| st.send_error(e));
            s.after_conn_op(h, now);
            r
        })
    }
}

impl<T: Transport, C: Timer, P: Provider> Ops for Shared<T, C, P> {
    fn open_channel(&self, k: ConnKey) -> Result<u32, SendError> {
        self.live_op(k, |c| c.open_channel())
    }

    fn poll_accept_channel(
        &self,
        k: ConnKey,
        cx: &mut Context<'_>,
        t: &mut Option<u64>,
    ) -> Poll<Result<u32, Error>> {
        self.with(|s| {
            let stopped = s.stopped;
            let Some(st) = slot(&mut s.conns, k) else {
                return Poll::Ready(Err(unknown()));
            };
            if let Some(id) = st.opened.pop_front() {
                st.waiters(Wait::Channel).remove(t);
                return Poll::Ready(Ok(id));
            }
            st.park(Wait::Channel, stopped, t, cx)
        })
    }

    fn poll_send(
        &self,
        k: ConnKey,
        cx: &mut Context<'_>,
        channel: u32,
        data: &[u8],
        t: &mut Option<u64>,
    ) -> Poll<Result<(), SendError>> {
        self.with(|s| {
            let Some(st) = slot(&mut s.conns, k) else {
                return Poll::Ready(Err(SendError::Closed(unknown())));
            };
            let core = match (st.handle, st.closing) {
                (Some(h), None) => s.ep.connection_mut(h).map(|c| (h, c)),
                _ => None,
            };
            let Some((h, c)) = core else {
                st.waiters(Wait::Send).remove(t);
                return Poll::Ready(Err(SendError::Closed(st.gone())));
            };
            // First come, first served on each channel: a sender waits
            // behind those that waited before it, even if its message
            // would fit (a large message is never overtaken for ever by
            // small ones).
            let senders = st.waiters(Wait::Send);
            if !senders.is_first(*t, channel) {
                senders.register_tagged(t, channel, cx.waker());
                return Poll::Pending;
            }
            match c.send(channel, data) {
                Ok(()) => {
                    let senders = st.waiters(Wait::Send);
                    senders.remove(t);
                    // The next one may fit too.
                    senders.wake_first(channel, &mut s.to_wake);
                    let now = s.now();
                    s.after_conn_op(h, now);
                    Poll::Ready(Ok(()))
                }
                Err(CoreSendError::WouldBlock(_)) => {
                    // Woken by the channel's `Writable` event.
                    senders.register_tagged(t, channel, cx.waker());
                    Poll::Pending
                }
                Err(e) => {
                    senders.remove(t);
                    senders.wake_first(channel, &mut s.to_wake);
                    Poll::Ready(Err(st.send_error(e)))
                }
            }
        })
    }

    fn poll_recv(
        &self,
        k: ConnKey,
        cx: &mut Context<'_>,
        channel: Option<u32>,
        t: &mut Option<u64>,
    ) -> Poll<Result<(u32, Bytes), Error>> {
        self.with(|s| {
            let Some(st) = slot(&mut s.conns, k) else {
                return Poll::Ready(Err(unknown()));
            };
            if let Some(m) = st.take_stashed(channel) {
                st.waiters(Wait::Recv).remove(t);
                return Poll::Ready(Ok(m));
            }
            if let Some(h) = st.handle
                && let Some(c) = s.ep.connection_mut(h)
                && let Some(m) = read_message(c, channel, &mut s.arena)
            {
                st.waiters(Wait::Recv).remove(t);
                // A read adds at most a credit update to send (no event,
                // no deadline): the clock, the packets and the timer only
                // then.
                if c.has_credit_to_send() {
                    let now = s.now();
                    s.after_conn_op(h, now);
                }
                return Poll::Ready(Ok(m));
            }
            st.park(Wait::Recv, s.stopped, t, cx)
        })
    }

    fn send_datagram(&self, k: ConnKey, data: &[u8]) -> Result<(), SendError> {
        self.live_op(k, |c| c.send_datagram(data))
    }

    fn poll_recv_datagram(
        &self,
        k: ConnKey,
        cx: &mut Context<'_>,
        t: &mut Option<u64>,
    ) -> Poll<Result<Bytes, Error>> {
        self.with(|s| {
            let Some(st) = slot(&mut s.conns, k) else {
                return Poll::Ready(Err(unknown()));
            };
            if let Some(d) = st.take_stashed_datagram() {
                st.waiters(Wait::Datagram).remove(t);
                return Poll::Ready(Ok(d));
            }
            if let Some(c) = st.handle.and_then(|h| s.ep.connection_mut(h))
                && let Some(d) = read_datagram(c, &mut s.arena)
            {
                st.waiters(Wait::Datagram).remove(t);
                return Poll::Ready(Ok(d));
            }
            st.park(Wait::Datagram, s.stopped, t, cx)
        })
    }

    fn stats(&self, k: ConnKey) -> Result<Stats, Error> {
        self.with(|s| {
            let now = s.now();
            let Some(st) = s.conns.get(k.idx as usize).and_then(Option::as_ref) else {
                return Err(unknown());
            };
            if st.id != k.id {
                return Err(unknown());
            }
            let core = st.handle.and_then(|h| s.ep.connection(h));
            Ok(st.stats(core, now))
        })
    }

    fn poll_close(
        &self,
        k: ConnKey,
        cx: &mut Context<'_>,
        code: u32,
        reason: &str,
        started: &mut bool,
        t: &mut Option<u64>,
    ) -> Poll<Result<(), Error>> {
        self.with(|s| {
            let now = s.now();
            let stopped = s.stopped;
            let Some(st) = slot(&mut s.conns, k) else {
                return Poll::Ready(Err(unknown()));
            };
            if !*started {
                *started = true;
                if st.closing.is_none()
                    && let Some(c) = st.handle.and_then(|h| s.ep.connection_mut(h))
                {
                    debug!(parent: &st.span, code, reason, "closing");
                    c.close(now, code, reason);
                }
                st.start_close(code, &mut s.to_wake);
                if let Some(h) = st.handle {
                    s.after_conn_op(h, now);
                }
            }
            let Some(st) = slot(&mut s.conns, k) else {
                return Poll::Ready(Err(unknown()));
            };
            if let Some(e) = &st.ended {
                let r = close_outcome(e);
                st.waiters(Wait::Close).remove(t);
                return Poll::Ready(r);
            }
            if stopped {
                return Poll::Ready(Err(Error::EndpointClosed));
            }
            st.waiters(Wait::Close).register(t, cx.waker());
            Poll::Pending
        })
    }

    fn unregister(&self, k: ConnKey, w: Wait, t: &mut Option<u64>) {
        self.with(|s| {
            if let Some(st) = slot(&mut s.conns, k) {
                let tag = st.waiters(w).remove(t);
                // A sender dropped at the head of its channel's queue
                // (perhaps just woken) hands its turn on.
                if let (Wait::Send, Some(ch)) = (w, tag) {
                    st.waiters(Wait::Send).wake_first(ch, &mut s.to_wake);
                }
            }
        });
    }

    fn release(&self, k: ConnKey, counted: bool) {
        self.with(|s| {
            if counted {
                s.handles = s.handles.saturating_sub(1);
            }
            if s.stopped {
                return;
            }
            let now = s.now();
            if slot(&mut s.conns, k).is_some() {
                s.release_idx(k.idx as usize, now);
            }
            s.check_orphaned(now);
            s.after_op(now);
        });
    }

    fn connect(&self, peer: SocketAddr, creds: &Credentials) -> Result<ConnKey, Error> {
        self.with(|s| {
            if s.stopped || s.shutdown.is_some() {
                return Err(Error::EndpointClosed);
            }
            let now = s.now();
            match s.ep.connect(now, peer, creds, &mut s.rng) {
                Ok(h) => {
                    let key = s.insert(h, peer, Side::Client);
                    if let Some(st) = slot(&mut s.conns, key) {
                        debug!(parent: &st.span, "handshake started");
                    }
                    s.after_conn_op(h, now);
                    Ok(key)
                }
                Err(e) => {
                    debug!(parent: &s.span, %peer, error = %e, "connect refused");
                    Err(Error::Setup(e))
                }
            }
        })
    }

    fn poll_connected(
        &self,
        k: ConnKey,
        cx: &mut Context<'_>,
        t: &mut Option<u64>,
    ) -> Poll<Result<SocketAddr, Error>> {
        self.with(|s| {
            let stopped = s.stopped;
            let Some(st) = slot(&mut s.conns, k) else {
                return Poll::Ready(Err(unknown()));
            };
            let r = if st.established {
                st.connecting = false;
                st.handed_out = true;
                Ok(st.peer)
            } else if let Some(e) = &st.ended {
                Err(e.clone())
            } else if stopped {
                Err(Error::EndpointClosed)
            } else {
                st.waiters(Wait::Connect).register(t, cx.waker());
                return Poll::Pending;
            };
            st.waiters(Wait::Connect).remove(t);
            match r {
                Ok(_) => s.handles += 1,
                Err(_) => {
                    // Nothing will ask about it again.
                    st.connecting = false;
                    st.released = true;
                    s.forget_if_unused(k.idx as usize);
                }
            }
            Poll::Ready(r)
        })
    }

    fn poll_accept(
        &self,
        cx: &mut Context<'_>,
        t: &mut Option<u64>,
    ) -> Poll<Option<(ConnKey, SocketAddr)>> {
        self.with(|s| {
            if s.stopped || s.shutdown.is_some() || !s.endpoint_alive {
                s.accept_w.remove(t);
                return Poll::Ready(None);
            }
            while let Some(key) = s.accept_queue.pop_front() {
                let Some(st) = slot(&mut s.conns, key) else {
                    continue;
                };
                st.handed_out = true;
                let peer = st.peer;
                s.handles += 1;
                s.accept_w.remove(t);
                return Poll::Ready(Some((key, peer)));
            }
            s.accept_w.register(t, cx.waker());
            Poll::Pending
        })
    }

    fn unregister_accept(&self, t: &mut Option<u64>) {
        self.with(|s| s.accept_w.remove(t));
    }

    fn endpoint_stats(&self) -> Result<EndpointStats, Error> {
        self.with(|s| {
            if s.stopped {
                return Err(Error::EndpointClosed);
            }
            Ok(EndpointStats {
                core: s.ep.stats(),
                connections: s.ep.len(),
                local_addr: s.local_addr,
            })
        })
    }

    fn poll_shutdown(
        &self,
        cx: &mut Context<'_>,
        started: &mut bool,
        t: &mut Option<u64>,
    ) -> Poll<()> {
        self.with(|s| {
            if s.stopped {
                return Poll::Ready(());
            }
            if !*started {
                *started = true;
                let now = s.now();
                s.begin_shutdown(now);
                s.after_op(now);
            }
            match &mut s.shutdown {
                Some(sh) => {
                    sh.waiters.register(t, cx.waker());
                    Poll::Pending
                }
                None => Poll::Ready(()),
            }
        })
    }

    fn unregister_shutdown(&self, t: &mut Option<u64>) {
        self.with(|s| {
            if let Some(sh) = &mut s.shutdown {
                sh.waiters.remove(t);
            }
        });
    }

    fn endpoint_dropped(&self) {
        self.with(|s| {
            s.endpoint_alive = false;
            if s.stopped {
                return;
            }
            let now = s.now();
            s.stop_accepting(now);
            s.check_orphaned(now);
            s.after_op(now);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Instant;

    /// Datagrams put in `inbox` by the test arrive in one batch, which
    /// empties it; nothing to send ever fills up.
    struct Inbox {
        inbox: Arc<Mutex<VecDeque<Vec<u8>>>>,
        batch: Vec<Vec<u8>>,
        waits: bool,
    }

    const PEER: SocketAddr =
        SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9);

    impl Transport for Inbox {
        fn local_addr(&self) -> SocketAddr {
            SocketAddr::from(([127, 0, 0, 1], 8))
        }
        fn max_segments(&self) -> usize {
            1
        }
        fn poll_recv(&mut self, _: &mut Context<'_>) -> Poll<io::Result<usize>> {
            self.waits = false;
            let mut q = self.inbox.lock().unwrap();
            if q.is_empty() {
                return Poll::Pending;
            }
            self.batch = q.drain(..).collect();
            self.waits = true;
            Poll::Ready(Ok(self.batch.len()))
        }
        fn try_recv(&mut self) -> io::Result<usize> {
            Err(io::ErrorKind::WouldBlock.into())
        }
        fn recv_waits(&self) -> bool {
            self.waits
        }
        fn meta(&self, i: usize) -> (SocketAddr, usize, usize) {
            let n = self.batch[i].len();
            (PEER, n, n.max(1))
        }
        fn packet(&mut self, i: usize, start: usize, len: usize) -> &mut [u8] {
            &mut self.batch[i][start..start + len]
        }
        fn try_send(
            &mut self,
            _: SocketAddr,
            _: &[u8],
            _: usize,
            count: usize,
        ) -> io::Result<usize> {
            Ok(count)
        }
        fn poll_writable(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// A timer on a clock the test sets, that reports its deadline passed
    /// once per arming (as `async-io`'s does), or once early when told to
    /// (the deadline passing between the arming and the next poll).
    struct OnceTimer {
        now: Arc<Mutex<Instant>>,
        deadline: Option<Instant>,
        fired: Arc<AtomicBool>,
        expire_next: Arc<AtomicBool>,
        resets: Arc<AtomicUsize>,
    }

    impl Timer for OnceTimer {
        fn now(&self) -> Instant {
            *self.now.lock().unwrap()
        }
        fn reset(&mut self, at: Instant) {
            self.deadline = Some(at);
            self.fired.store(false, Ordering::SeqCst);
            self.resets.fetch_add(1, Ordering::SeqCst);
        }
        fn poll_expired(&mut self, _: &mut Context<'_>) -> Poll<()> {
            if self.fired.load(Ordering::SeqCst) {
                return Poll::Pending;
            }
            let now = self.now();
            if self.deadline.is_some_and(|d| now >= d)
                || self.expire_next.swap(false, Ordering::SeqCst)
            {
                self.fired.store(true, Ordering::SeqCst);
                return Poll::Ready(());
            }
            Poll::Pending
        }
    }

    /// A timer that reports its deadline only once (`async-io`'s) and does
    /// so where the task checks, after a busy pass, whether it may wait:
    /// the task handles that deadline on its next pass and arms the timer
    /// again, rather than poll it again, get nothing, and never hear of
    /// the deadline.
    #[test]
    fn a_timer_expiry_seen_before_waiting_is_handled() {
        let inbox = Arc::new(Mutex::new(VecDeque::new()));
        let now = Arc::new(Mutex::new(Instant::now()));
        let fired = Arc::new(AtomicBool::new(false));
        let expire_next = Arc::new(AtomicBool::new(false));
        let resets = Arc::new(AtomicUsize::new(0));
        let timer = OnceTimer {
            now: now.clone(),
            deadline: None,
            fired: fired.clone(),
            expire_next: expire_next.clone(),
            resets: resets.clone(),
        };
        let io = Inbox {
            inbox: inbox.clone(),
            batch: Vec::new(),
            waits: false,
        };
        let config = tern::endpoint::EndpointConfig::client(tern::Config::service());
        let shared = Shared::new(
            io,
            timer,
            DriverEndpoint::<RingCrypto>::new(config),
            StdRng::seed_from_u64(7),
            tracing::Span::none(),
        );
        let creds = Credentials {
            private_key: Some([1; 32]),
            remote_public_key: Some(crate::public_key(&[2; 32])),
            ..Credentials::default()
        };
        // A handshake that nobody answers: it has a retransmission timer.
        shared.connect(PEER, &creds).unwrap();
        let mut task = Task::new(shared.clone());
        let mut cx = Context::from_waker(Waker::noop());
        assert!(Pin::new(&mut task).poll(&mut cx).is_pending());
        let armed = resets.load(Ordering::SeqCst);
        assert!(armed >= 1);
        let at = {
            let s = shared.state.lock().unwrap();
            s.clock.to_std(s.timer_at.expect("the timer is armed"))
        };
        // The retransmission is due; a datagram comes in (and is dropped:
        // it is garbage). The pass handles both and arms the timer again;
        // the new deadline passes before the task checks whether it may
        // wait (the timer says so once).
        *now.lock().unwrap() = at;
        inbox.lock().unwrap().push_back(vec![0; 40]);
        expire_next.store(true, Ordering::SeqCst);
        assert!(Pin::new(&mut task).poll(&mut cx).is_pending());
        assert!(
            !expire_next.load(Ordering::SeqCst),
            "the test proves nothing"
        );
        // The expiry was handled: the timer was armed again after it, so
        // it will report the next deadline.
        assert!(
            !fired.load(Ordering::SeqCst),
            "an expiry the timer reported once was lost"
        );
        assert!(resets.load(Ordering::SeqCst) >= armed + 2);
    }
}
