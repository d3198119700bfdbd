//! What the endpoint keeps for each connection besides the state machine:
//! the wakers of the tasks waiting on it, and what was read from the state
//! machine when the connection ended but not yet taken by the application.
//!
//! Messages stay in the state machine's windows until the application asks
//! for them (a handle reads them itself, under the endpoint's lock), so a
//! reader that does not read holds back the sender: flow control works end
//! to end. The stashes only hold what was left when the connection ended.

use crate::error::{Error, SendError};
use crate::stats::Stats;
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::task::{Context, Poll, Waker};
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

/// Wakers to call once the endpoint's lock is released: a waker may run
/// code (an executor that drops a cancelled task's future at once), and
/// that code may need the lock. The first few live inline, so the common
/// case (one task to wake) allocates nothing.
#[derive(Default)]
pub(crate) struct ToWake {
    few: [Option<Waker>; 4],
    n: usize,
    more: Vec<Waker>,
}

impl ToWake {
    #[inline]
    pub(crate) fn push(&mut self, w: Waker) {
        if let Some(slot) = self.few.get_mut(self.n) {
            *slot = Some(w);
            self.n += 1;
        } else {
            self.more.push(w);
        }
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The waker, if exactly one is held (the common case), leaving none.
    #[inline]
    pub(crate) fn take_single(&mut self) -> Option<Waker> {
        if self.n != 1 {
            return None;
        }
        self.n = 0;
        self.few[0].take()
    }

    /// Wakes every task (after the lock was released).
    pub(crate) fn wake(mut self) {
        for w in &mut self.few[..self.n] {
            if let Some(w) = w.take() {
                w.wake();
            }
        }
        for w in self.more.drain(..) {
            w.wake();
        }
    }
}

/// The tasks waiting for one thing. Each waiting future holds a token, so
/// that polling it again replaces its waker and dropping it removes it:
/// the list never holds more than one entry per waiting future. Entries
/// keep the order in which their futures first waited, with a tag (the
/// channel, for sends) so that the senders of one channel go first come,
/// first served.
#[derive(Default)]
pub(crate) struct WaitList {
    next: u64,
    list: Vec<(u64, u32, Waker)>,
}

impl WaitList {
    /// Registers (or refreshes) the waker of the future holding `token`.
    #[inline]
    pub(crate) fn register(&mut self, token: &mut Option<u64>, w: &Waker) {
        self.register_tagged(token, 0, w);
    }

    /// [`register`](Self::register) with a tag; a future already waiting
    /// keeps its place.
    #[inline]
    pub(crate) fn register_tagged(&mut self, token: &mut Option<u64>, tag: u32, w: &Waker) {
        if let Some(t) = *token
            && !self.list.is_empty()
            && let Some(e) = self.list.iter_mut().find(|e| e.0 == t)
        {
            if !e.2.will_wake(w) {
                e.2 = w.clone();
            }
            return;
        }
        self.next += 1;
        *token = Some(self.next);
        self.list.push((self.next, tag, w.clone()));
    }

    /// Forgets the future holding `token` (it got what it waited for, or
    /// it was dropped); the tag it waited with, if it was waiting.
    #[inline]
    pub(crate) fn remove(&mut self, token: &mut Option<u64>) -> Option<u32> {
        let t = token.take()?;
        if let [(only, tag, _)] = self.list[..]
            && only == t
        {
            self.list.clear();
            return Some(tag);
        }
        let i = self.list.iter().position(|e| e.0 == t)?;
        Some(self.list.remove(i).1)
    }

    /// Whether the future holding `token` (`None`: one not waiting yet)
    /// may go ahead for `tag`: no other future waits with `tag` before it.
    #[inline]
    pub(crate) fn is_first(&self, token: Option<u64>, tag: u32) -> bool {
        self.list.is_empty()
            || self
                .list
                .iter()
                .find(|e| e.1 == tag)
                .is_none_or(|e| Some(e.0) == token)
    }

    /// Wakes the first future waiting with `tag`, leaving it in its place.
    #[inline]
    pub(crate) fn wake_first(&self, tag: u32, out: &mut ToWake) {
        if !self.list.is_empty()
            && let Some(e) = self.list.iter().find(|e| e.1 == tag)
        {
            out.push(e.2.clone());
        }
    }

    /// Wakes the first future of every tag, leaving them in their places.
    pub(crate) fn wake_firsts(&self, out: &mut ToWake) {
        for (i, e) in self.list.iter().enumerate() {
            if !self.list[..i].iter().any(|f| f.1 == e.1) {
                out.push(e.2.clone());
            }
        }
    }

    /// Wakes every waiting task (in the order they first waited); they
    /// poll again and register again if they must keep waiting.
    #[inline]
    pub(crate) fn wake_all(&mut self, out: &mut ToWake) {
        if self.list.len() == 1 {
            // The common case: one task waits.
            if let Some((_, _, w)) = self.list.pop() {
                out.push(w);
            }
            return;
        }
        for (_, _, w) in self.list.drain(..) {
            out.push(w);
        }
    }
}

/// What a connection handle waits for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Wait {
    Recv,
    Send,
    Datagram,
    Channel,
    Close,
    Connect,
}

pub(crate) struct ConnState {
    /// Never reused within the endpoint (the slab slot is).
    pub(crate) id: u64,
    /// The core connection while it lives; `None` once it ended.
    pub(crate) handle: Option<ConnectionHandle>,
    pub(crate) peer: SocketAddr,
    pub(crate) side: Side,
    /// A client connection whose `connect` still waits for the handshake.
    pub(crate) connecting: bool,
    /// The handshake finished.
    pub(crate) established: bool,
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
    pub(crate) opened: VecDeque<u32>,
    recv_w: WaitList,
    send_w: WaitList,
    dgram_w: WaitList,
    chan_w: WaitList,
    close_w: WaitList,
    connect_w: WaitList,
    pub(crate) span: tracing::Span,
}

impl ConnState {
    pub(crate) fn new(
        id: u64,
        handle: ConnectionHandle,
        peer: SocketAddr,
        side: Side,
        parent: &tracing::Span,
    ) -> Self {
        ConnState {
            id,
            handle: Some(handle),
            peer,
            side,
            connecting: side == Side::Client,
            established: false,
            handed_out: false,
            released: false,
            closing: None,
            ended: None,
            final_stats: None,
            stash: VecDeque::new(),
            dgram_stash: VecDeque::new(),
            opened: VecDeque::new(),
            recv_w: WaitList::default(),
            send_w: WaitList::default(),
            dgram_w: WaitList::default(),
            chan_w: WaitList::default(),
            close_w: WaitList::default(),
            connect_w: WaitList::default(),
            span: tracing::info_span!(parent: parent, "conn", id, peer = %peer, side = ?side),
        }
    }

    /// The end of a wait that found nothing: the error that ended the
    /// connection, [`Error::EndpointClosed`] once the endpoint stopped,
    /// or the caller's waker registered under `token` for `w`.
    pub(crate) fn park<T>(
        &mut self,
        w: Wait,
        stopped: bool,
        token: &mut Option<u64>,
        cx: &Context<'_>,
    ) -> Poll<Result<T, Error>> {
        if let Some(e) = &self.ended {
            let e = e.clone();
            self.waiters(w).remove(token);
            return Poll::Ready(Err(e));
        }
        if stopped {
            return Poll::Ready(Err(Error::EndpointClosed));
        }
        self.waiters(w).register(token, cx.waker());
        Poll::Pending
    }

    #[inline]
    pub(crate) fn waiters(&mut self, w: Wait) -> &mut WaitList {
        match w {
            Wait::Recv => &mut self.recv_w,
            Wait::Send => &mut self.send_w,
            Wait::Datagram => &mut self.dgram_w,
            Wait::Channel => &mut self.chan_w,
            Wait::Close => &mut self.close_w,
            Wait::Connect => &mut self.connect_w,
        }
    }

    /// Wakes every task waiting for `w`.
    #[inline]
    pub(crate) fn wake(&mut self, w: Wait, out: &mut ToWake) {
        self.waiters(w).wake_all(out);
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

    // ----- what was left when the connection ended -----

    /// The next stashed message for `channel` (any when `None`).
    #[inline]
    pub(crate) fn take_stashed(&mut self, channel: Option<u32>) -> Option<(u32, Bytes)> {
        if self.stash.is_empty() {
            return None;
        }
        self.take_stashed_slow(channel)
    }

    fn take_stashed_slow(&mut self, channel: Option<u32>) -> Option<(u32, Bytes)> {
        let pos = match channel {
            None => 0,
            Some(c) => self.stash.iter().position(|(ch, _)| *ch == c)?,
        };
        self.stash.remove(pos)
    }

    pub(crate) fn take_stashed_datagram(&mut self) -> Option<Bytes> {
        self.dgram_stash.pop_front()
    }

    // ----- closing -----

    /// This side closes: blocked sends will never go, wake them to fail.
    pub(crate) fn start_close(&mut self, code: u32, out: &mut ToWake) {
        self.closing.get_or_insert(code);
        self.send_w.wake_all(out);
    }

    /// The connection ended: keep what arrived before the end for the
    /// application, freeze the statistics, wake every waiting task.
    pub(crate) fn on_ended<P: Provider>(
        &mut self,
        core: Option<&mut Core<P>>,
        error: Error,
        now: tern::Instant,
        out: &mut ToWake,
        arena: &mut RecvArena,
    ) {
        if let Some(c) = core {
            while let Some(m) = read_message(c, None, arena) {
                self.stash.push_back(m);
            }
            while let Some(d) = read_datagram(c, arena) {
                self.dgram_stash.push_back(d);
            }
            let mut stats = self.stats(Some(&*c), now);
            stats.ended = true;
            self.final_stats = Some(stats);
        } else {
            let mut stats = self.stats::<P>(None, now);
            stats.ended = true;
            self.final_stats = Some(stats);
        }
        self.handle = None;
        self.ended = Some(error);
        for w in [
            Wait::Recv,
            Wait::Send,
            Wait::Datagram,
            Wait::Channel,
            Wait::Close,
            Wait::Connect,
        ] {
            self.wake(w, out);
        }
    }
}

/// What `close` answers when the connection ended with `e`.
pub(crate) fn close_outcome(e: &Error) -> Result<(), Error> {
    match e {
        Error::Closed(
            ConnectionError::LocallyClosed { .. } | ConnectionError::PeerClosed { .. },
        ) => Ok(()),
        e => Err(e.clone()),
    }
}

/// The next message of `channel` (any when `None`) from the core, in the
/// `Bytes` the application gets: copied once, straight from the core's
/// receive ring (see [`RecvArena`]).
pub(crate) fn read_message<P: Provider>(
    core: &mut Core<P>,
    channel: Option<u32>,
    arena: &mut RecvArena,
) -> Option<(u32, Bytes)> {
    let copy = |a: &[u8], b: &[u8]| arena.copy(a, b);
    match channel {
        None => core.recv_any_with(copy),
        Some(c) => core.recv_with(c, copy).map(|m| (c, m)),
    }
}

/// The next datagram from the core, copied once as messages are.
pub(crate) fn read_datagram<P: Provider>(
    core: &mut Core<P>,
    arena: &mut RecvArena,
) -> Option<Bytes> {
    core.recv_datagram_with(|a, b| arena.copy(a, b))
}

/// Bytes of each buffer that small received messages share.
pub(crate) const ARENA_CHUNK: usize = 16 * 1024;
/// Largest message copied into a shared buffer; larger ones get their own
/// allocation of their exact size.
pub(crate) const ARENA_MAX: usize = 1024;

/// Where received messages are copied for the application: small ones
/// (up to [`ARENA_MAX`] bytes) one after the other into a shared buffer
/// of [`ARENA_CHUNK`] bytes, each handed out as its own `Bytes` (one
/// allocation per buffer rather than one per message, and no zeroing);
/// larger ones into an allocation of their own. A message that does not
/// fit in what is left of the buffer starts a new one; the old buffer is
/// freed once the application dropped every message in it.
///
/// So a small message the application keeps keeps its whole buffer
/// allocated (at most [`ARENA_CHUNK`] bytes per message kept, and less as
/// kept messages share buffers); one kept for long is best copied out.
#[derive(Default)]
pub(crate) struct RecvArena {
    buf: BytesMut,
}

impl RecvArena {
    /// A message lent by the core as two slices, in one `Bytes`.
    #[inline]
    pub(crate) fn copy(&mut self, a: &[u8], b: &[u8]) -> Bytes {
        let n = a.len() + b.len();
        if n == 0 {
            return Bytes::new();
        }
        if n > ARENA_MAX {
            let mut m = BytesMut::with_capacity(n);
            m.extend_from_slice(a);
            m.extend_from_slice(b);
            return m.freeze();
        }
        // What was handed out is split off: `buf` is the rest of the
        // buffer, empty, and never grows (that would reallocate).
        if self.buf.capacity() < n {
            self.buf = BytesMut::with_capacity(ARENA_CHUNK);
        }
        self.buf.extend_from_slice(a);
        if !b.is_empty() {
            self.buf.extend_from_slice(b);
        }
        self.buf.split_to(n).freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn waker() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    /// A future polled again keeps one entry; a dropped one leaves none;
    /// a wake reaches every waiting task once, after the lock (here: when
    /// `ToWake::wake` runs), and empties the list.
    #[test]
    fn wait_lists_hold_one_entry_per_waiting_future() {
        let mut list = WaitList::default();
        let (a, wa) = waker();
        let (b, wb) = waker();
        let (mut ta, mut tb) = (None, None);
        for _ in 0..10 {
            list.register(&mut ta, &wa);
        }
        list.register(&mut tb, &wb);
        assert_eq!(list.list.len(), 2);
        // A future dropped while waiting leaves nothing behind.
        list.remove(&mut tb);
        assert_eq!(tb, None);
        assert_eq!(list.list.len(), 1);
        // Polled again with another waker (moved to another task): the
        // entry is replaced, not added.
        let (a2, wa2) = waker();
        list.register(&mut ta, &wa2);
        assert_eq!(list.list.len(), 1);
        let mut out = ToWake::default();
        list.wake_all(&mut out);
        assert!(list.list.is_empty());
        assert_eq!(a2.0.load(Ordering::SeqCst), 0, "woken under the lock");
        out.wake();
        assert_eq!(a2.0.load(Ordering::SeqCst), 1);
        assert_eq!(a.0.load(Ordering::SeqCst), 0);
        assert_eq!(b.0.load(Ordering::SeqCst), 0);
        // The woken future's token is stale: polling again registers anew.
        list.register(&mut ta, &wa2);
        assert_eq!(list.list.len(), 1);
    }

    /// Small messages are copied one after the other into shared buffers
    /// (one allocation per buffer), each its own `Bytes`, intact and
    /// independent of the others however many buffers they span; large
    /// ones get their own allocation; a kept message is never touched by
    /// the messages after it.
    #[test]
    fn received_messages_share_buffers_and_stay_intact() {
        let mut arena = RecvArena::default();
        let msg = |i: usize, len: usize| -> Vec<u8> {
            (0..len).map(|j| (i * 31 + j * 7) as u8).collect()
        };
        // Consecutive small messages lie back to back in one buffer: no
        // allocation of their own.
        let a = arena.copy(&msg(0, 64), &[]);
        let b = arena.copy(&msg(1, 64), &[]);
        assert_eq!(b.as_ptr(), a.as_ptr().wrapping_add(64), "not shared");
        // A message lent as two slices comes out whole.
        let m = msg(2, 100);
        let c = arena.copy(&m[..30], &m[30..]);
        assert_eq!(&c[..], &m[..]);
        assert_eq!(c.as_ptr(), b.as_ptr().wrapping_add(64));
        // A large message has its own allocation, outside the buffer; the
        // next small one still follows the last small one.
        let big = msg(3, ARENA_MAX + 1);
        let d = arena.copy(&big[..500], &big[500..]);
        assert_eq!(&d[..], &big[..]);
        let e = arena.copy(&msg(4, 10), &[]);
        assert_eq!(e.as_ptr(), c.as_ptr().wrapping_add(100));
        // Many buffers' worth of messages of every size up to the limit,
        // every one kept: each is intact, and those of one buffer are
        // dropped in any order.
        let mut kept = Vec::new();
        let mut total = 0;
        for i in 0..2_000 {
            let len = 1 + (i * 37) % ARENA_MAX;
            let m = msg(i, len);
            let split = len / 3;
            kept.push((i, len, arena.copy(&m[..split], &m[split..])));
            total += len;
            if i % 3 == 0 {
                // Some are dropped at once (the application is done).
                kept.pop();
            }
        }
        assert!(total > 20 * ARENA_CHUNK, "too few buffers: {total}");
        for (i, len, k) in &kept {
            assert_eq!(&k[..], &msg(*i, *len)[..], "message {i}");
        }
        // The first messages, kept all along, were not overwritten.
        assert_eq!(&a[..], &msg(0, 64)[..]);
        assert_eq!(&b[..], &msg(1, 64)[..]);
        assert_eq!(&e[..], &msg(4, 10)[..]);
        // A message is independent of its neighbours: made mutable, it
        // is copied out (the buffer is shared), leaving them as they were.
        let mut own = Vec::from(b.clone());
        own.fill(0);
        assert_eq!(&b[..], &msg(1, 64)[..]);
        assert_eq!(&c[..], &m[..]);
        // An empty message holds no buffer.
        assert!(arena.copy(&[], &[]).is_empty());
    }

    /// More tasks than fit inline are all woken.
    #[test]
    fn to_wake_holds_any_number_of_wakers() {
        let mut out = ToWake::default();
        let counts: Vec<_> = (0..9).map(|_| waker()).collect();
        for (_, w) in &counts {
            out.push(w.clone());
        }
        assert!(!out.is_empty());
        out.wake();
        assert!(counts.iter().all(|(c, _)| c.0.load(Ordering::SeqCst) == 1));
    }
}
