//! Many connections behind one socket, demultiplexed by session id.

use crate::config::{Config, HandshakePattern};
use crate::connection::{
    ConnectError, Connection, Credentials, DropCounts, DropReason, Event, Transmit, TransmitError,
};
use crate::crypto::{CryptoProvider, RustCrypto};
use crate::packet::{
    HandshakeHeader, HandshakeKind, LONG_HEADER_LEN, PacketClass, VERSION, classify,
};
use crate::storage::ByteStore;
use crate::time::Instant;
use core::net::SocketAddr;
use core::time::Duration;
use rand_core::CryptoRng;

/// Storage for an endpoint's connections: a fixed array without an
/// allocator, boxed slots with one.
pub trait Slots<T> {
    /// Empty storage for at most `max` items (a fixed store caps it).
    fn with_limit(max: usize) -> Self;
    /// Most items it can hold.
    fn limit(&self) -> usize;
    /// The item in slot `i`.
    fn get(&self, i: usize) -> Option<&T>;
    /// The item in slot `i`, mutably.
    fn get_mut(&mut self, i: usize) -> Option<&mut T>;
    /// The slot the next `insert` will use, if there is room.
    fn vacant(&self) -> Option<usize>;
    /// Puts `t` in a free slot, returning its index, or gives it back.
    fn insert(&mut self, t: T) -> Result<usize, T>;
    /// Empties slot `i`.
    fn remove(&mut self, i: usize);
    /// One past the highest slot index in use or ever used.
    fn span(&self) -> usize;
}

/// `N` slots held inline.
pub struct ArraySlots<T, const N: usize> {
    items: heapless::Vec<Option<T>, N>,
    limit: usize,
}

impl<T, const N: usize> Slots<T> for ArraySlots<T, N> {
    fn with_limit(max: usize) -> Self {
        ArraySlots {
            items: heapless::Vec::new(),
            limit: max.min(N),
        }
    }
    fn limit(&self) -> usize {
        self.limit
    }
    fn get(&self, i: usize) -> Option<&T> {
        self.items.get(i)?.as_ref()
    }
    fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.items.get_mut(i)?.as_mut()
    }
    fn vacant(&self) -> Option<usize> {
        match self.items.iter().position(Option::is_none) {
            Some(i) => Some(i),
            None => (self.items.len() < self.limit).then_some(self.items.len()),
        }
    }
    fn insert(&mut self, t: T) -> Result<usize, T> {
        if let Some(i) = self.items.iter().position(Option::is_none) {
            self.items[i] = Some(t);
            return Ok(i);
        }
        if self.items.len() >= self.limit {
            return Err(t);
        }
        match self.items.push(Some(t)) {
            Ok(()) => Ok(self.items.len() - 1),
            Err(Some(t)) => Err(t),
            Err(None) => unreachable_none(),
        }
    }
    fn remove(&mut self, i: usize) {
        if let Some(s) = self.items.get_mut(i) {
            *s = None;
        }
    }
    fn span(&self) -> usize {
        self.items.len()
    }
}

#[cold]
fn unreachable_none() -> ! {
    panic!("pushed Some, got None back")
}

/// Boxed slots on the heap, growing up to the limit.
#[cfg(feature = "alloc")]
pub struct BoxSlots<T> {
    items: alloc::vec::Vec<Option<alloc::boxed::Box<T>>>,
    free: alloc::vec::Vec<usize>,
    limit: usize,
}

#[cfg(feature = "alloc")]
impl<T> Slots<T> for BoxSlots<T> {
    fn with_limit(max: usize) -> Self {
        BoxSlots {
            items: alloc::vec::Vec::new(),
            free: alloc::vec::Vec::new(),
            limit: max,
        }
    }
    fn limit(&self) -> usize {
        self.limit
    }
    fn get(&self, i: usize) -> Option<&T> {
        self.items.get(i)?.as_deref()
    }
    fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.items.get_mut(i)?.as_deref_mut()
    }
    fn vacant(&self) -> Option<usize> {
        match self.free.last() {
            Some(&i) => Some(i),
            None => (self.items.len() < self.limit).then_some(self.items.len()),
        }
    }
    fn insert(&mut self, t: T) -> Result<usize, T> {
        if let Some(i) = self.free.pop() {
            self.items[i] = Some(alloc::boxed::Box::new(t));
            return Ok(i);
        }
        if self.items.len() >= self.limit {
            return Err(t);
        }
        self.items.push(Some(alloc::boxed::Box::new(t)));
        Ok(self.items.len() - 1)
    }
    fn remove(&mut self, i: usize) {
        if let Some(s) = self.items.get_mut(i)
            && s.take().is_some()
        {
            self.free.push(i);
        }
    }
    fn span(&self) -> usize {
        self.items.len()
    }
}

/// A connection's handle within its endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionHandle(pub usize);

/// Endpoint settings.
#[derive(Clone)]
pub struct EndpointConfig {
    /// Settings for every connection (a server takes the client's pattern
    /// and suite if it accepts them).
    pub connection: Config,
    /// The server's keys (static private key, PSK), for accepted
    /// connections.
    pub server_credentials: Option<Credentials>,
    /// Patterns a server accepts.
    pub accept_patterns: &'static [HandshakePattern],
    /// Most connections at once.
    pub max_connections: usize,
    /// New handshakes accepted per second (token bucket), and the burst.
    pub handshakes_per_second: u32,
    /// Burst size of the handshake token bucket.
    pub handshake_burst: u32,
}

impl EndpointConfig {
    /// A client-only endpoint.
    pub fn client(connection: Config) -> Self {
        EndpointConfig {
            connection,
            server_credentials: None,
            accept_patterns: &[],
            max_connections: 64,
            handshakes_per_second: 0,
            handshake_burst: 0,
        }
    }

    /// A server endpoint with its static private key.
    pub fn server(connection: Config, private_key: [u8; 32]) -> Self {
        EndpointConfig {
            connection,
            server_credentials: Some(Credentials {
                private_key: Some(private_key),
                ..Credentials::default()
            }),
            accept_patterns: &HandshakePattern::ALL,
            max_connections: 4096,
            handshakes_per_second: 10_000,
            handshake_burst: 1_000,
        }
    }
}

/// Endpoint-level counters (connections count their own).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Connections accepted.
    pub accepted: u64,
    /// Handshake initiations refused: no slot free.
    pub refused_full: u64,
    /// Handshake initiations refused by the rate limit.
    pub refused_rate: u64,
    /// Datagrams dropped before reaching a connection, by reason.
    pub dropped: DropCounts,
    /// Version-mismatch answers sent.
    pub version_mismatches: u64,
}

/// Many connections sharing one socket: routes datagrams by session id,
/// accepts new clients within limits, and multiplexes output, deadlines
/// and events.
pub struct Endpoint<B, const CH: usize, const SENT: usize, S, P = RustCrypto>
where
    B: ByteStore,
    P: CryptoProvider + Clone + Default,
    S: Slots<Connection<B, CH, SENT, P>>,
{
    config: EndpointConfig,
    conns: S,
    rr_tx: usize,
    rr_ev: usize,
    tokens: u64,
    tokens_at: Instant,
    stateless: heapless::Deque<(SocketAddr, [u8; LONG_HEADER_LEN + 1]), 8>,
    stats: EndpointStats,
    _p: core::marker::PhantomData<(B, P)>,
}

impl<B, const CH: usize, const SENT: usize, S, P> Endpoint<B, CH, SENT, S, P>
where
    B: ByteStore,
    P: CryptoProvider + Clone + Default,
    S: Slots<Connection<B, CH, SENT, P>>,
{
    /// An endpoint with no connections.
    pub fn new(config: EndpointConfig) -> Self {
        let max = config.max_connections.min(0xffff);
        Endpoint {
            conns: S::with_limit(max),
            rr_tx: 0,
            rr_ev: 0,
            tokens: u64::from(config.handshake_burst) * 1_000_000,
            tokens_at: Instant::ZERO,
            stateless: heapless::Deque::new(),
            stats: EndpointStats::default(),
            config,
            _p: core::marker::PhantomData,
        }
    }

    /// The endpoint's settings.
    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }

    /// Endpoint-level counters.
    pub fn stats(&self) -> EndpointStats {
        self.stats
    }

    /// A connection by handle.
    pub fn connection(&self, h: ConnectionHandle) -> Option<&Connection<B, CH, SENT, P>> {
        self.conns.get(h.0)
    }

    /// A connection by handle, to send, receive or close.
    pub fn connection_mut(
        &mut self,
        h: ConnectionHandle,
    ) -> Option<&mut Connection<B, CH, SENT, P>> {
        self.conns.get_mut(h.0)
    }

    /// Handles of all connections.
    pub fn handles(&self) -> impl Iterator<Item = ConnectionHandle> + '_ {
        (0..self.conns.span())
            .filter(|&i| self.conns.get(i).is_some())
            .map(ConnectionHandle)
    }

    /// Number of connections held.
    pub fn len(&self) -> usize {
        self.handles().count()
    }

    /// Whether no connection is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn session_id<R: CryptoRng + ?Sized>(slot: usize, rng: &mut R) -> u32 {
        // Low 16 bits: the slot, for O(1) routing; high 16: random, so a
        // stale or guessed id rarely matches.
        let hi = loop {
            let v = rng.next_u32() & 0xffff_0000;
            if v != 0 {
                break v;
            }
        };
        hi | (slot as u32 + 1)
    }

    fn route(&self, id: u32) -> Option<usize> {
        let slot = (id & 0xffff).checked_sub(1)? as usize;
        let c = self.conns.get(slot)?;
        (c.local_id() == id).then_some(slot)
    }

    /// Opens a client connection to `peer`.
    pub fn connect<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        creds: &Credentials,
        rng: &mut R,
    ) -> Result<ConnectionHandle, ConnectError> {
        // The session id encodes the slot the connection will take.
        let slot = self
            .conns
            .vacant()
            .ok_or(ConnectError::TooManyConnections)?;
        let id = Self::session_id(slot, rng);
        let conn = Connection::connect(self.config.connection.clone(), creds, now, id, peer, rng)?;
        self.conns
            .insert(conn)
            .map(ConnectionHandle)
            .map_err(|_| ConnectError::TooManyConnections)
    }

    fn take_token(&mut self, now: Instant) -> bool {
        let rate = u64::from(self.config.handshakes_per_second);
        let cap = u64::from(self.config.handshake_burst) * 1_000_000;
        let elapsed = now.saturating_duration_since(self.tokens_at).as_micros() as u64;
        self.tokens = (self.tokens + elapsed.saturating_mul(rate)).min(cap);
        self.tokens_at = now;
        if self.tokens >= 1_000_000 {
            self.tokens -= 1_000_000;
            true
        } else {
            false
        }
    }

    /// Handles a datagram received from `from`. Returns the connection it
    /// went to, or why it was dropped (also counted).
    pub fn handle<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        from: SocketAddr,
        data: &mut [u8],
        rng: &mut R,
    ) -> Result<ConnectionHandle, DropReason> {
        let r = self.handle_inner(now, from, data, rng);
        if let Err(reason) = r {
            self.stats.dropped.count(reason);
        }
        r
    }

    fn handle_inner<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        from: SocketAddr,
        data: &mut [u8],
        rng: &mut R,
    ) -> Result<ConnectionHandle, DropReason> {
        let class = classify(data).map_err(|_| DropReason::Malformed)?;
        let receiver = match class {
            PacketClass::Handshake { receiver: 0 } => {
                return self.handle_initiation(now, from, data, rng);
            }
            PacketClass::Handshake { receiver } | PacketClass::Data { receiver } => receiver,
        };
        let slot = self.route(receiver).ok_or(DropReason::UnknownSession)?;
        let c = self.conns.get_mut(slot).ok_or(DropReason::UnknownSession)?;
        // The connection counts its own drops.
        let _ = c.handle(now, from, data);
        Ok(ConnectionHandle(slot))
    }

    fn handle_initiation<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        from: SocketAddr,
        data: &mut [u8],
        rng: &mut R,
    ) -> Result<ConnectionHandle, DropReason> {
        let (h, _) = HandshakeHeader::decode(data).map_err(|_| DropReason::Malformed)?;
        if h.kind != HandshakeKind::Handshake || h.msg_index != 0 {
            return Err(DropReason::Malformed);
        }
        let Some(creds) = self.config.server_credentials.clone() else {
            return Err(DropReason::Unexpected);
        };
        if h.version != VERSION {
            // Answer only a datagram at least as large as any first message
            // (header and ephemeral key), so the answer never amplifies.
            if data.len() >= LONG_HEADER_LEN + 32 {
                self.queue_version_mismatch(from, h.sender);
            }
            return Err(DropReason::Unexpected);
        }
        // A retransmitted initiation goes to the connection it created.
        for i in 0..self.conns.span() {
            if let Some(c) = self.conns.get_mut(i)
                && c.remote_id() == h.sender
                && c.peer_addr() == from
            {
                let _ = c.handle(now, from, data);
                return Ok(ConnectionHandle(i));
            }
        }
        let pattern = HandshakePattern::from_id(h.pattern).ok_or(DropReason::Malformed)?;
        if !self.config.accept_patterns.contains(&pattern) {
            return Err(DropReason::Unexpected);
        }
        if !self.take_token(now) {
            self.stats.refused_rate += 1;
            return Err(DropReason::Busy);
        }
        let Some(slot) = self.conns.vacant() else {
            self.stats.refused_full += 1;
            return Err(DropReason::Busy);
        };
        let id = Self::session_id(slot, rng);
        let c = Connection::<B, CH, SENT, P>::accept(
            self.config.connection.clone(),
            &creds,
            now,
            id,
            from,
            data,
            rng,
        )?;
        let slot = self.conns.insert(c).map_err(|_| DropReason::Busy)?;
        self.stats.accepted += 1;
        Ok(ConnectionHandle(slot))
    }

    fn queue_version_mismatch(&mut self, to: SocketAddr, receiver: u32) {
        let h = HandshakeHeader {
            kind: HandshakeKind::VersionMismatch,
            version: VERSION,
            pattern: 0,
            suite: 0,
            msg_index: 0,
            receiver,
            sender: 0,
        };
        let mut pkt = [0u8; LONG_HEADER_LEN + 1];
        h.encode(&mut pkt);
        pkt[LONG_HEADER_LEN] = VERSION;
        if self.stateless.push_back((to, pkt)).is_ok() {
            self.stats.version_mismatches += 1;
        }
    }

    /// The next datagram to send from any connection, round robin.
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        buf: &mut [u8],
    ) -> Result<Option<(Option<ConnectionHandle>, Transmit)>, TransmitError> {
        if let Some((to, pkt)) = self.stateless.pop_front() {
            if buf.len() < pkt.len() {
                let _ = self.stateless.push_front((to, pkt));
                return Err(TransmitError::BufferTooSmall { needed: pkt.len() });
            }
            buf[..pkt.len()].copy_from_slice(&pkt);
            return Ok(Some((
                None,
                Transmit {
                    destination: to,
                    len: pkt.len(),
                },
            )));
        }
        let span = self.conns.span();
        for k in 0..span {
            let i = (self.rr_tx + k) % span;
            if let Some(c) = self.conns.get_mut(i)
                && let Some(t) = c.poll_transmit(now, buf)?
            {
                self.rr_tx = i + 1;
                return Ok(Some((Some(ConnectionHandle(i)), t)));
            }
        }
        Ok(None)
    }

    /// The earliest deadline of any connection.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        (0..self.conns.span())
            .filter_map(|i| self.conns.get(i)?.poll_timeout())
            .min()
    }

    /// Handles every passed deadline, and frees connections that ended and
    /// whose last event was polled.
    pub fn handle_timeout(&mut self, now: Instant) {
        for i in 0..self.conns.span() {
            if let Some(c) = self.conns.get_mut(i)
                && c.poll_timeout().is_some_and(|t| t <= now)
            {
                c.handle_timeout(now);
            }
        }
    }

    /// The next event of any connection.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<(ConnectionHandle, Event)> {
        let span = self.conns.span();
        for k in 0..span {
            let i = (self.rr_ev + k) % span;
            let Some(c) = self.conns.get_mut(i) else {
                continue;
            };
            if let Some(e) = c.poll_event() {
                self.rr_ev = i;
                return Some((ConnectionHandle(i), e));
            }
            if c.is_closed() {
                // Closed and its last event taken: free the slot.
                self.conns.remove(i);
            }
        }
        None
    }

    /// Gracefully closes every connection with `code` and `reason`.
    pub fn close_all(&mut self, now: Instant, code: u32, reason: &str) {
        for i in 0..self.conns.span() {
            if let Some(c) = self.conns.get_mut(i) {
                c.close(now, code, reason);
            }
        }
    }

    /// How long a graceful close may take at most, for drivers that wait.
    pub fn close_bound(&self) -> Duration {
        self.config.connection.idle_timeout
    }
}
