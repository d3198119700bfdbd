//! Many connections behind one socket, demultiplexed by session id.

use crate::config::{Config, HandshakePattern};
use crate::connection::{
    ConnectError, Connection, Credentials, DropCounts, DropReason, Event, Side, Transmit,
    TransmitError,
};
use crate::crypto::{CryptoProvider, RustCrypto};
use crate::packet::{
    HandshakeHeader, HandshakeKind, LONG_HEADER_LEN, PacketClass, VERSION, classify,
};
use crate::storage::ByteStore;
use crate::time::Instant;
use core::hash::{Hash, Hasher};
use core::net::SocketAddr;
use core::time::Duration;
use rand_core::CryptoRng;
use siphasher::sip::SipHasher13;

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
    /// The endpoint's bookkeeping for each slot: at least
    /// [`span`](Self::span) entries, at most [`limit`](Self::limit) (or one
    /// when the limit is zero).
    fn meta(&self) -> &[SlotMeta];
    /// The bookkeeping, mutably.
    fn meta_mut(&mut self) -> &mut [SlotMeta];
}

/// What an endpoint keeps for each slot so that polling costs in
/// proportion to the connections with work rather than to all of them:
/// the slot's cached deadline, one node of the deadline tree, one word
/// of each ready set, and one bucket and link of each hash index (so that
/// finding a connection by address costs O(1) too). Opaque; storage only
/// holds it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlotMeta {
    /// Leaf of the deadline tree: the slot's cached deadline, `None` when
    /// it has none or it is being recomputed.
    deadline: Option<Instant>,
    /// Inner node number `i` of the deadline tree: the earliest deadline
    /// below it.
    node: Option<Instant>,
    /// Word `i` of the set of slots that may have a datagram to send.
    tx: u64,
    /// Word `i` of the set of slots that may have an event (or have ended).
    ev: u64,
    /// Word `i` of the set of slots whose cached deadline is stale.
    dirty: u64,
    /// Bucket `i` of each hash index of the endpoint, and this slot's place
    /// in it (see `Index`).
    links: [Link; 2],
}

/// Entry `i` of one hash index: bucket `i`, and the chain link of the
/// connection in slot `i`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Link {
    /// The first slot of bucket `i`'s chain plus one, 0 if empty.
    head: u16,
    /// The next slot (plus one) in the chain of this slot's connection.
    next: u16,
    /// This slot's keyed hash in the index (it picks the bucket).
    hash: u32,
}

impl Link {
    const EMPTY: Link = Link {
        head: 0,
        next: 0,
        hash: 0,
    };
}

/// The endpoint's hash indexes (see "the hash indexes" in `Endpoint`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Index {
    /// Accepted connections by (address, sender id) of their first
    /// message.
    Initiation = 0,
    /// Every connection by its current peer address.
    Peer = 1,
}

impl SlotMeta {
    /// Nothing pending.
    pub const EMPTY: SlotMeta = SlotMeta {
        deadline: None,
        node: None,
        tx: 0,
        ev: 0,
        dirty: 0,
        links: [Link::EMPTY; 2],
    };
}

/// `N` slots held inline.
pub struct ArraySlots<T, const N: usize> {
    items: heapless::Vec<Option<T>, N>,
    meta: [SlotMeta; N],
    limit: usize,
}

impl<T, const N: usize> Slots<T> for ArraySlots<T, N> {
    fn with_limit(max: usize) -> Self {
        ArraySlots {
            items: heapless::Vec::new(),
            meta: [SlotMeta::EMPTY; N],
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
    fn meta(&self) -> &[SlotMeta] {
        &self.meta[..self.limit.max(1).min(N)]
    }
    fn meta_mut(&mut self) -> &mut [SlotMeta] {
        &mut self.meta[..self.limit.max(1).min(N)]
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
    /// Grows by doubling, ahead of `items`, up to the limit.
    meta: alloc::vec::Vec<SlotMeta>,
    limit: usize,
}

#[cfg(feature = "alloc")]
impl<T> Slots<T> for BoxSlots<T> {
    fn with_limit(max: usize) -> Self {
        BoxSlots {
            items: alloc::vec::Vec::new(),
            free: alloc::vec::Vec::new(),
            meta: alloc::vec![SlotMeta::EMPTY; max.clamp(1, 64)],
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
        if self.meta.len() < self.items.len() {
            let n = (self.meta.len() * 2).min(self.limit).max(self.items.len());
            self.meta.resize(n, SlotMeta::EMPTY);
        }
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
    fn meta(&self) -> &[SlotMeta] {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut [SlotMeta] {
        &mut self.meta
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
    /// Connections held.
    count: usize,
    /// Slots in the dirty set.
    dirty: usize,
    /// `meta().len()` the deadline tree was laid out for.
    tree_n: usize,
    /// `meta().len()` the hash indexes were laid out for.
    index_n: usize,
    /// SipHash key of the hash indexes, drawn with the first connection.
    index_key: Option<(u64, u64)>,
    /// Slots the index lookups visited (tests check the cost).
    #[cfg(test)]
    index_visits: core::cell::Cell<u64>,
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
            count: 0,
            dirty: 0,
            tree_n: 0,
            index_n: 0,
            index_key: None,
            #[cfg(test)]
            index_visits: core::cell::Cell::new(0),
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
    ///
    /// The endpoint cannot see what is done through the reference, so it
    /// looks at the connection again on the next poll.
    pub fn connection_mut(
        &mut self,
        h: ConnectionHandle,
    ) -> Option<&mut Connection<B, CH, SENT, P>> {
        if self.conns.get(h.0).is_some() {
            self.touch(h.0);
        }
        self.conns.get_mut(h.0)
    }

    /// Handles of all connections, in one step per slot ever used: to find
    /// the connections using a peer address, use
    /// [`connections_to`](Self::connections_to).
    pub fn handles(&self) -> impl Iterator<Item = ConnectionHandle> + '_ {
        (0..self.conns.span())
            .filter(|&i| self.conns.get(i).is_some())
            .map(ConnectionHandle)
    }

    /// Number of connections held.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no connection is held.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    // ----- bookkeeping: ready sets and the deadline tree -----
    //
    // Every path that may change a connection (input, timeouts, output,
    // `connection_mut`, `connect`, `close_all`) calls `touch`, which puts
    // the slot in the transmit and event sets and in the dirty set, whose
    // connections `poll_timeout` asks directly until `flush` asks them
    // again for the tree. A slot leaves the transmit set when it has
    // nothing to send and the event set when it has no event; one whose
    // deadline has passed rejoins the transmit set (a due acknowledgement
    // is sent on the next poll, as before).
    //
    // A connection's deadline moves on nearly every packet, mostly later
    // (the probe timer restarts with each packet sent). `flush` writes a
    // deadline into the tree only when it is earlier than the cached one:
    // a later one leaves the earlier, stale one in place, so the common
    // update costs O(1) instead of a walk to the root. A stale deadline
    // only makes the endpoint's deadline early: when it passes,
    // `handle_timeout` finds nothing of that connection due, leaves it
    // alone and caches its exact deadline again.

    /// Marks slot `i` as changed.
    fn touch(&mut self, i: usize) {
        let m = self.conns.meta_mut();
        let (w, b) = (i / 64, 1u64 << (i % 64));
        m[w].tx |= b;
        m[w].ev |= b;
        if m[w].dirty & b == 0 {
            m[w].dirty |= b;
            self.dirty += 1;
        }
    }

    /// Lays the deadline tree out again after the storage grew.
    fn sync_tree(&mut self) {
        let m = self.conns.meta_mut();
        if m.len() != self.tree_n {
            self.tree_n = m.len();
            for v in (1..m.len()).rev() {
                m[v].node = earlier(tree_val(m, 2 * v), tree_val(m, 2 * v + 1));
            }
        }
    }

    /// Asks every changed connection for its deadline again.
    fn flush(&mut self) {
        if self.dirty == 0 {
            return;
        }
        for w in 0..self.conns.span().div_ceil(64) {
            let mut bits = core::mem::take(&mut self.conns.meta_mut()[w].dirty);
            while bits != 0 {
                let i = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let d = self.conns.get(i).and_then(Connection::poll_timeout);
                let m = self.conns.meta_mut();
                // A later deadline (or none) keeps the earlier one cached:
                // see above.
                let stays = m[i].deadline.is_some_and(|c| d.is_none_or(|d| d >= c));
                if !stays {
                    tree_set(m, i, d);
                }
            }
        }
        self.dirty = 0;
    }

    /// Empties slot `i` and forgets its bookkeeping.
    fn free(&mut self, i: usize) {
        if self.conns.get(i).is_some_and(|c| c.side() == Side::Server) {
            self.index_unlink(Index::Initiation, i);
        }
        self.index_unlink(Index::Peer, i);
        self.conns.remove(i);
        self.count -= 1;
        let m = self.conns.meta_mut();
        let (w, b) = (i / 64, 1u64 << (i % 64));
        m[w].tx &= !b;
        m[w].ev &= !b;
        if m[w].dirty & b != 0 {
            m[w].dirty &= !b;
            self.dirty -= 1;
        }
        tree_set(m, i, None);
    }

    /// Takes a connection just inserted in slot `i` into account.
    fn inserted(&mut self, i: usize) {
        self.count += 1;
        self.sync_tree();
        self.touch(i);
    }

    // ----- the hash indexes -----
    //
    // Two lookups must not cost O(connections):
    //
    // - `Index::Initiation`: a retransmitted first message goes to the
    //   connection it created, found by (source address, sender id).
    //   Scanning every slot for it made each initiation cost
    //   O(connections), and a flood of them O(n²). Each accepted
    //   connection is indexed under the address and id of its first
    //   message, and found only while it still has both.
    // - `Index::Peer`: which connections use a peer address (drivers ask
    //   before they forget a peer), by the connection's current address,
    //   moved when a datagram handled here moves it.
    //
    // Each is a hash table with separate chaining threaded through
    // `SlotMeta`: one bucket per bookkeeping entry (at least one per slot,
    // so chains are short), chains linked through the slots themselves. No
    // allocation, 8 bytes a slot each. The hash is SipHash-1-3 under a key
    // drawn from the caller's RNG with the first connection, so a peer
    // cannot pick addresses or ids that share a bucket.

    /// The index key, drawn from `rng` the first time.
    fn index_key<R: CryptoRng + ?Sized>(&mut self, rng: &mut R) -> (u64, u64) {
        *self
            .index_key
            .get_or_insert_with(|| (rng.next_u64(), rng.next_u64()))
    }

    /// The hash of a key in index `ix`: an address, and for
    /// `Index::Initiation` a sender id.
    fn hash_of(key: (u64, u64), ix: Index, addr: SocketAddr, id: u32) -> u32 {
        let mut h = SipHasher13::new_with_keys(key.0, key.1);
        (ix as u8).hash(&mut h);
        addr.hash(&mut h);
        if ix == Index::Initiation {
            id.hash(&mut h);
        }
        (h.finish() >> 32) as u32
    }

    /// The slots in the chain of `hash`'s bucket in index `ix` whose hash
    /// is `hash` (the caller checks the connection itself).
    fn chain(&self, ix: Index, hash: u32) -> impl Iterator<Item = usize> + '_ {
        let m = self.conns.meta();
        let x = ix as usize;
        let mut p = if m.is_empty() {
            0
        } else {
            m[bucket(hash, m.len())].links[x].head
        };
        core::iter::from_fn(move || {
            while p != 0 {
                let j = usize::from(p - 1);
                #[cfg(test)]
                self.index_visits.set(self.index_visits.get() + 1);
                let l = m[j].links[x];
                p = l.next;
                if l.hash == hash {
                    return Some(j);
                }
            }
            None
        })
    }

    /// The accepted connection whose first message came from `from` with
    /// sender id `id` (`hash` being its `Index::Initiation` hash).
    fn initiation_find(&self, hash: u32, from: SocketAddr, id: u32) -> Option<usize> {
        self.chain(Index::Initiation, hash).find(|&j| {
            self.conns
                .get(j)
                .is_some_and(|c| c.remote_id() == id && c.peer_addr() == from)
        })
    }

    /// Handles of the connections whose peer address is `peer`: O(1)
    /// expected plus one step per such connection, where filtering
    /// [`handles`](Self::handles) costs one step per slot.
    ///
    /// A connection's address moves when it accepts a datagram from a new
    /// one; the endpoint notices when the datagram went through
    /// [`handle`](Self::handle) (not when fed to the connection directly
    /// through [`connection_mut`](Self::connection_mut)).
    pub fn connections_to(&self, peer: SocketAddr) -> impl Iterator<Item = ConnectionHandle> + '_ {
        let hash = self
            .index_key
            .map(|k| Self::hash_of(k, Index::Peer, peer, 0));
        hash.into_iter()
            .flat_map(move |h| self.chain(Index::Peer, h))
            .filter(move |&j| self.conns.get(j).is_some_and(|c| c.peer_addr() == peer))
            .map(ConnectionHandle)
    }

    /// Indexes the connection just put in slot `i`: by its peer address,
    /// and if it was accepted, by its first message's `initiation` hash.
    fn index_insert<R: CryptoRng + ?Sized>(
        &mut self,
        i: usize,
        initiation: Option<u32>,
        rng: &mut R,
    ) {
        let key = self.index_key(rng);
        let Some(peer) = self.conns.get(i).map(Connection::peer_addr) else {
            return;
        };
        let n = self.index_n;
        let m = self.conns.meta_mut();
        m[i].links[Index::Peer as usize].hash = Self::hash_of(key, Index::Peer, peer, 0);
        m[i].links[Index::Initiation as usize].hash = initiation.unwrap_or(0);
        if m.len() == n {
            self.index_link(Index::Peer, i);
            if initiation.is_some() {
                self.index_link(Index::Initiation, i);
            }
            return;
        }
        // The storage grew (or this is the first): lay every chain out
        // again for the new number of buckets, this slot included. The
        // bookkeeping grows by doubling, so this is O(1) amortized.
        self.index_n = m.len();
        for e in m.iter_mut() {
            for l in &mut e.links {
                l.head = 0;
                l.next = 0;
            }
        }
        for j in 0..self.conns.span() {
            let Some(c) = self.conns.get(j) else { continue };
            let accepted = c.side() == Side::Server;
            self.index_link(Index::Peer, j);
            if accepted {
                self.index_link(Index::Initiation, j);
            }
        }
    }

    /// The connection in slot `i` took a new peer address: file it again.
    #[cold]
    fn peer_moved(&mut self, i: usize) {
        let (Some(key), Some(peer)) =
            (self.index_key, self.conns.get(i).map(Connection::peer_addr))
        else {
            return;
        };
        self.index_unlink(Index::Peer, i);
        self.conns.meta_mut()[i].links[Index::Peer as usize].hash =
            Self::hash_of(key, Index::Peer, peer, 0);
        self.index_link(Index::Peer, i);
    }

    fn index_link(&mut self, ix: Index, i: usize) {
        let m = self.conns.meta_mut();
        let x = ix as usize;
        let b = bucket(m[i].links[x].hash, m.len());
        m[i].links[x].next = m[b].links[x].head;
        // Slots are below 0xffff (the endpoint holds at most 65535).
        m[b].links[x].head = i as u16 + 1;
    }

    fn index_unlink(&mut self, ix: Index, i: usize) {
        let m = self.conns.meta_mut();
        let x = ix as usize;
        let b = bucket(m[i].links[x].hash, m.len());
        let me = i as u16 + 1;
        let after = core::mem::take(&mut m[i].links[x].next);
        if m[b].links[x].head == me {
            m[b].links[x].head = after;
            return;
        }
        let mut p = m[b].links[x].head;
        while p != 0 {
            let j = usize::from(p - 1);
            if m[j].links[x].next == me {
                m[j].links[x].next = after;
                return;
            }
            p = m[j].links[x].next;
        }
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
        let slot = self
            .conns
            .insert(conn)
            .map_err(|_| ConnectError::TooManyConnections)?;
        self.inserted(slot);
        self.index_insert(slot, None, rng);
        Ok(ConnectionHandle(slot))
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
        let elsewhere = c.peer_addr() != from;
        // The connection counts its own drops.
        let _ = c.handle(now, from, data);
        if elsewhere && c.peer_addr() == from {
            self.peer_moved(slot);
        }
        self.touch(slot);
        Ok(ConnectionHandle(slot))
    }

    // Out of line: a new connection is built on the stack here (over
    // 100 KiB for a service connection), and inlined into `handle` that
    // frame would be set up and probed for every data packet.
    #[inline(never)]
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
        let key = self.index_key(rng);
        let hash = Self::hash_of(key, Index::Initiation, from, h.sender);
        if let Some(i) = self.initiation_find(hash, from, h.sender)
            && let Some(c) = self.conns.get_mut(i)
        {
            let _ = c.handle(now, from, data);
            self.touch(i);
            return Ok(ConnectionHandle(i));
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
        self.inserted(slot);
        self.index_insert(slot, Some(hash), rng);
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
        // A connection whose deadline passed may owe an acknowledgement
        // even if nothing else touched it. (Changed ones are in the set
        // already: their deadlines go back in the tree below, once the
        // endpoint has nothing left to send, not on every packet.)
        mark_due(self.conns.meta_mut(), 1, now);
        let span = self.conns.span();
        let mut from = self.rr_tx;
        while let Some(i) = next_set(self.conns.meta(), Set::Tx, from, span) {
            let polled = match self.conns.get_mut(i) {
                Some(c) => c.poll_transmit(now, buf)?,
                None => None,
            };
            if let Some(t) = polled {
                self.rr_tx = i + 1;
                self.touch(i);
                return Ok(Some((Some(ConnectionHandle(i)), t)));
            }
            // Nothing to send: out of the set until something changes.
            self.conns.meta_mut()[i / 64].tx &= !(1u64 << (i % 64));
            from = i + 1;
        }
        // Deadlines of what changed go back in the tree, so that
        // `poll_timeout` need not ask those connections.
        self.flush();
        Ok(None)
    }

    /// The earliest deadline of any connection, or an earlier one: when a
    /// connection's deadline moved later, the endpoint may keep the
    /// earlier one until it passes (so the common update is O(1)); calling
    /// [`handle_timeout`](Self::handle_timeout) then leaves the connection
    /// alone and corrects it.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let m = self.conns.meta();
        let mut t = if m.is_empty() { None } else { tree_val(m, 1) };
        if self.dirty > 0 {
            // Changed since the tree last asked them: ask them now.
            for (w, mw) in m.iter().enumerate().take(self.conns.span().div_ceil(64)) {
                let mut bits = mw.dirty;
                while bits != 0 {
                    let i = w * 64 + bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    t = earlier(t, self.conns.get(i).and_then(Connection::poll_timeout));
                }
            }
        }
        t
    }

    /// Handles every passed deadline.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.flush();
        // Each handled slot leaves the tree (touched, no deadline) until
        // the flush below caches its exact deadline, so every due
        // connection is handled exactly once.
        while let Some(i) = tree_due(self.conns.meta(), now) {
            // A stale deadline (see `touch`) is only re-checked: the
            // connection's timeout work (it frees drained buffers, which
            // the next packet allocates and zeroes again) is for when
            // something of it is due.
            if let Some(c) = self.conns.get_mut(i)
                && c.poll_timeout().is_some_and(|t| t <= now)
            {
                c.handle_timeout(now);
            }
            self.touch(i);
            tree_set(self.conns.meta_mut(), i, None);
        }
        self.flush();
    }

    /// The next event of any connection. A connection that ended is freed
    /// once its last event was taken.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<(ConnectionHandle, Event)> {
        let span = self.conns.span();
        let mut from = self.rr_ev;
        while let Some(i) = next_set(self.conns.meta(), Set::Ev, from, span) {
            from = i + 1;
            let Some(c) = self.conns.get_mut(i) else {
                self.conns.meta_mut()[i / 64].ev &= !(1u64 << (i % 64));
                continue;
            };
            if let Some(e) = c.poll_event() {
                self.rr_ev = i;
                return Some((ConnectionHandle(i), e));
            }
            if c.is_closed() {
                // Closed and its last event taken: free the slot.
                self.free(i);
            } else {
                self.conns.meta_mut()[i / 64].ev &= !(1u64 << (i % 64));
            }
        }
        None
    }

    /// Gracefully closes every connection with `code` and `reason`.
    pub fn close_all(&mut self, now: Instant, code: u32, reason: &str) {
        for i in 0..self.conns.span() {
            if let Some(c) = self.conns.get_mut(i) {
                c.close(now, code, reason);
                self.touch(i);
            }
        }
    }

    /// How long a graceful close may take at most, for drivers that wait.
    pub fn close_bound(&self) -> Duration {
        self.config.connection.idle_timeout
    }
}

/// Which ready set of [`SlotMeta`].
#[derive(Clone, Copy)]
enum Set {
    Tx,
    Ev,
}

#[inline]
fn word(m: &SlotMeta, set: Set) -> u64 {
    match set {
        Set::Tx => m.tx,
        Set::Ev => m.ev,
    }
}

/// The first slot in `set` at or after `from`, wrapping around below
/// `span`: a round robin over the set, one word at a time. (Inlined: it is
/// called several times for every packet, and for up to 64 slots it is a
/// few instructions.)
#[inline(always)]
fn next_set(meta: &[SlotMeta], set: Set, from: usize, span: usize) -> Option<usize> {
    let from = if from >= span { 0 } else { from };
    if span == 0 {
        return None;
    }
    if span <= 64 {
        // One word (up to 64 slots, every client and most servers): the
        // round robin in a few instructions, no loop.
        let all = word(meta.first()?, set) & (!0u64 >> (64 - span));
        let after = all & (!0u64 << from);
        let bits = if after != 0 { after } else { all };
        return (bits != 0).then(|| bits.trailing_zeros() as usize);
    }
    next_set_wide(meta, set, from, span)
}

/// [`next_set`] over more than one word.
#[inline(never)]
fn next_set_wide(meta: &[SlotMeta], set: Set, from: usize, span: usize) -> Option<usize> {
    first_set(meta, set, from, span).or_else(|| first_set(meta, set, 0, from))
}

/// The first slot in `set` within `lo..hi`.
fn first_set(meta: &[SlotMeta], set: Set, lo: usize, hi: usize) -> Option<usize> {
    if lo >= hi {
        return None;
    }
    let mut w = lo / 64;
    let mut bits = word(&meta[w], set) & (!0u64 << (lo % 64));
    loop {
        if bits != 0 {
            let i = w * 64 + bits.trailing_zeros() as usize;
            return (i < hi).then_some(i);
        }
        w += 1;
        if w * 64 >= hi {
            return None;
        }
        bits = word(&meta[w], set);
    }
}

/// The bucket of `hash` among `n`: the high bits of `hash · n` (uniform
/// for any `n`, no division).
fn bucket(hash: u32, n: usize) -> usize {
    ((u64::from(hash) * n as u64) >> 32) as usize
}

/// The earlier of two deadlines, `None` being never.
fn earlier(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

// The deadline tree: a binary tree over the `n = meta.len()` slots, laid
// out as an array of `2n` positions with leaf `i` at position `n + i` and
// the inner node at position `v` (1 ≤ v < n) holding the earliest deadline
// of positions `2v` and `2v + 1`; position 1 is the root. Leaves live in
// `SlotMeta::deadline`, inner node `v` in `meta[v].node`.

fn tree_val(meta: &[SlotMeta], v: usize) -> Option<Instant> {
    let n = meta.len();
    if v >= n {
        meta[v - n].deadline
    } else {
        meta[v].node
    }
}

/// Sets leaf `i` and the nodes above it, in O(log n).
fn tree_set(meta: &mut [SlotMeta], i: usize, d: Option<Instant>) {
    if meta[i].deadline == d {
        return;
    }
    meta[i].deadline = d;
    let mut v = (meta.len() + i) / 2;
    while v >= 1 {
        let m = earlier(tree_val(meta, 2 * v), tree_val(meta, 2 * v + 1));
        if meta[v].node == m {
            // Nothing above changes either.
            break;
        }
        meta[v].node = m;
        v /= 2;
    }
}

fn is_due(d: Option<Instant>, now: Instant) -> bool {
    d.is_some_and(|t| t <= now)
}

/// A slot whose cached deadline is at or before `now`, in O(log n).
fn tree_due(meta: &[SlotMeta], now: Instant) -> Option<usize> {
    let n = meta.len();
    if n == 0 || !is_due(tree_val(meta, 1), now) {
        return None;
    }
    let mut v = 1;
    while v < n {
        v = if is_due(tree_val(meta, 2 * v), now) {
            2 * v
        } else {
            2 * v + 1
        };
    }
    Some(v - n)
}

/// Puts every slot below position `v` whose deadline passed in the
/// transmit set: O(log n) per such slot, O(1) when none is due.
fn mark_due(meta: &mut [SlotMeta], v: usize, now: Instant) {
    let n = meta.len();
    if n == 0 || !is_due(tree_val(meta, v), now) {
        return;
    }
    if v >= n {
        let i = v - n;
        meta[i / 64].tx |= 1u64 << (i % 64);
    } else {
        mark_due(meta, 2 * v, now);
        mark_due(meta, 2 * v + 1, now);
    }
}

#[cfg(test)]
mod tests {
    //! The endpoint polls only the slots it marked; these tests fail if a
    //! changed connection were skipped or a deadline were cached stale.

    use super::*;
    use crate::config::Config;
    use crate::{ConstrainedBytes, ConstrainedConnection, config::HandshakePattern};
    use rand_chacha::ChaCha20Rng;
    use rand_chacha::rand_core::{Rng, SeedableRng};
    use std::boxed::Box;
    use std::vec::Vec;

    /// Heap slots built on `std` alone (the default test build has no
    /// `alloc` feature), which also shows the trait can be implemented
    /// outside the crate. Its bookkeeping grows by doubling, as
    /// `BoxSlots`' does.
    struct VecSlots<T> {
        items: Vec<Option<Box<T>>>,
        meta: Vec<SlotMeta>,
        limit: usize,
    }

    impl<T> Slots<T> for VecSlots<T> {
        fn with_limit(max: usize) -> Self {
            VecSlots {
                items: Vec::new(),
                meta: std::vec![SlotMeta::EMPTY; max.clamp(1, 16)],
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
            match self.items.iter().position(Option::is_none) {
                Some(i) => Some(i),
                None => (self.items.len() < self.limit).then_some(self.items.len()),
            }
        }
        fn insert(&mut self, t: T) -> Result<usize, T> {
            let Some(i) = self.vacant() else {
                return Err(t);
            };
            if i == self.items.len() {
                self.items.push(None);
                if self.meta.len() < self.items.len() {
                    let n = (self.meta.len() * 2).min(self.limit);
                    self.meta.resize(n, SlotMeta::EMPTY);
                }
            }
            self.items[i] = Some(Box::new(t));
            Ok(i)
        }
        fn remove(&mut self, i: usize) {
            if let Some(s) = self.items.get_mut(i) {
                *s = None;
            }
        }
        fn span(&self) -> usize {
            self.items.len()
        }
        fn meta(&self) -> &[SlotMeta] {
            &self.meta
        }
        fn meta_mut(&mut self) -> &mut [SlotMeta] {
            &mut self.meta
        }
    }

    type Ep = Endpoint<ConstrainedBytes, 2, 8, VecSlots<ConstrainedConnection>>;

    fn client_addr() -> SocketAddr {
        "10.0.0.2:5000".parse().unwrap()
    }

    fn server_addr() -> SocketAddr {
        "10.0.0.1:4433".parse().unwrap()
    }

    fn config() -> Config {
        Config {
            pattern: HandshakePattern::NN,
            ..Config::constrained()
        }
    }

    /// A client endpoint with `n` connections established to a server
    /// endpoint, both quiet at the returned time.
    fn established(n: usize, rng: &mut ChaCha20Rng) -> (Ep, Ep, Instant) {
        let mut scfg = EndpointConfig::server(config(), [7; 32]);
        scfg.max_connections = n;
        scfg.handshake_burst = n as u32;
        let mut ccfg = EndpointConfig::client(config());
        ccfg.max_connections = n;
        let (mut client, mut server) = (Ep::new(ccfg), Ep::new(scfg));
        let now = Instant::from_millis(1000);
        for _ in 0..n {
            client
                .connect(now, server_addr(), &Credentials::default(), rng)
                .unwrap();
        }
        pump(&mut client, &mut server, now, rng, None);
        assert_eq!((client.len(), server.len()), (n, n));
        for h in client.handles().chain(server.handles()) {
            let c = client.connection(h).unwrap();
            assert!(c.is_established(), "{h:?}");
        }
        (client, server, now)
    }

    /// Delivers datagrams both ways at `now` and takes every event until
    /// both endpoints are quiet; returns the client handles that sent. A
    /// datagram of `lose` from the client is lost.
    fn pump(
        client: &mut Ep,
        server: &mut Ep,
        now: Instant,
        rng: &mut ChaCha20Rng,
        lose: Option<ConnectionHandle>,
    ) -> Vec<ConnectionHandle> {
        let mut buf = [0u8; 1500];
        let mut sent = Vec::new();
        for _ in 0..100 {
            let mut moved = false;
            while let Some((h, t)) = client.poll_transmit(now, &mut buf).unwrap() {
                sent.push(h.unwrap());
                moved = true;
                if h != lose {
                    let _ = server.handle(now, client_addr(), &mut buf[..t.len], rng);
                }
            }
            while let Some((_, t)) = server.poll_transmit(now, &mut buf).unwrap() {
                moved = true;
                let _ = client.handle(now, server_addr(), &mut buf[..t.len], rng);
            }
            while client.poll_event().is_some() || server.poll_event().is_some() {
                moved = true;
            }
            if !moved {
                return sent;
            }
        }
        panic!("the endpoints do not go quiet");
    }

    /// The earliest deadline, asked of every connection.
    fn brute_timeout(ep: &Ep) -> Option<Instant> {
        ep.handles()
            .filter_map(|h| ep.connection(h)?.poll_timeout())
            .min()
    }

    /// The endpoint's deadline once every stale (early) one it kept has
    /// been handled: never later than the true one, and exact after.
    fn settled(ep: &mut Ep) -> Option<Instant> {
        for _ in 0..1000 {
            let (t, want) = (ep.poll_timeout(), brute_timeout(ep));
            if t == want {
                return t;
            }
            let t = t.expect("a deadline is never lost");
            assert!(want.is_none_or(|w| t < w), "{t:?} later than {want:?}");
            // Nothing of any connection is due then: they ignore it.
            let stats: Vec<_> = ep
                .handles()
                .map(|h| ep.connection(h).map(|c| c.stats()))
                .collect();
            ep.handle_timeout(t);
            let after: Vec<_> = ep
                .handles()
                .map(|h| ep.connection(h).map(|c| c.stats()))
                .collect();
            assert_eq!(stats, after, "a stale deadline changed a connection");
        }
        panic!("the endpoint's deadline never settles");
    }

    #[test]
    fn an_application_send_through_connection_mut_is_transmitted() {
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let (mut client, mut server, now) = established(1000, &mut rng);
        let mut buf = [0u8; 1500];
        assert!(client.poll_transmit(now, &mut buf).unwrap().is_none());
        // Every deadline is back in the tree: `poll_timeout` asks no
        // connection (it would ask all 1,000 otherwise).
        assert_eq!((client.dirty, server.dirty), (0, 0));
        let h = ConnectionHandle(900);
        client.connection_mut(h).unwrap().send(0, b"hello").unwrap();
        // The only change is the application's: the endpoint still finds
        // the packet, and only that one.
        let sent = pump(&mut client, &mut server, now, &mut rng, None);
        assert_eq!(sent, [h]);
        let mut got = [0u8; 16];
        let s = server
            .handles()
            .find(|&s| {
                server.connection(s).unwrap().remote_id()
                    == client.connection(h).unwrap().local_id()
            })
            .unwrap();
        let n = server.connection_mut(s).unwrap().recv(0, &mut got).unwrap();
        assert_eq!(&got[..n.unwrap()], b"hello");
    }

    #[test]
    fn the_timer_of_one_connection_among_a_thousand_fires() {
        let mut rng = ChaCha20Rng::from_seed([2; 32]);
        let (mut client, mut server, now) = established(1000, &mut rng);
        assert_eq!(settled(&mut client), brute_timeout(&client));
        let h = ConnectionHandle(900);
        let later = now + Duration::from_secs(5);
        // Every timer left from the handshakes runs out first.
        loop {
            let next = [client.poll_timeout(), server.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .filter(|&t| t <= later);
            let Some(t) = next else { break };
            client.handle_timeout(t);
            server.handle_timeout(t);
            pump(&mut client, &mut server, t, &mut rng, None);
        }
        client.connection_mut(h).unwrap().send(0, b"lost").unwrap();
        // The datagram is lost: only connection 900 has a probe timer, the
        // earliest deadline of all.
        let sent = pump(&mut client, &mut server, later, &mut rng, Some(h));
        assert_eq!(sent, [h]);
        let at = settled(&mut client).unwrap();
        assert_eq!(Some(at), client.connection(h).unwrap().poll_timeout());
        assert_eq!(Some(at), brute_timeout(&client));
        let before = client.connection(h).unwrap().stats().retransmissions;
        client.handle_timeout(at);
        let sent = pump(&mut client, &mut server, at, &mut rng, None);
        assert!(sent.iter().all(|&s| s == h) && !sent.is_empty(), "{sent:?}");
        assert!(client.connection(h).unwrap().stats().retransmissions > before);
        let mut got = [0u8; 16];
        let s = server
            .handles()
            .find(|&s| {
                server.connection(s).unwrap().remote_id()
                    == client.connection(h).unwrap().local_id()
            })
            .unwrap();
        let n = server.connection_mut(s).unwrap().recv(0, &mut got).unwrap();
        assert_eq!(&got[..n.unwrap()], b"lost");
        assert_eq!(settled(&mut client), brute_timeout(&client));
    }

    /// The one-word round robin finds what the general one finds.
    #[test]
    fn next_set_in_one_word_matches_the_general_search() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let meta = [SlotMeta {
                tx: x & x.rotate_left(17),
                ..SlotMeta::EMPTY
            }];
            let span = (x >> 58) as usize + 1;
            let from = (x >> 40) as usize % 70;
            let f = if from >= span { 0 } else { from };
            let general =
                first_set(&meta, Set::Tx, f, span).or_else(|| first_set(&meta, Set::Tx, 0, f));
            assert_eq!(
                next_set(&meta, Set::Tx, from, span),
                general,
                "{x:x} {span} {from}"
            );
        }
        assert_eq!(next_set(&[SlotMeta::EMPTY], Set::Tx, 0, 0), None);
    }

    #[test]
    fn a_deadline_that_moves_later_is_corrected_when_the_earlier_one_passes() {
        let mut rng = ChaCha20Rng::from_seed([6; 32]);
        let (mut client, mut server, now) = established(1, &mut rng);
        settled(&mut client);
        settled(&mut server);
        let h = client.handles().next().unwrap();
        client.connection_mut(h).unwrap().send(0, b"ping").unwrap();
        // The send starts the probe timer, an earlier deadline (cached
        // exactly); the server's acknowledgement ends it, a later one.
        pump(&mut client, &mut server, now, &mut rng, None);
        let exact = brute_timeout(&client).unwrap();
        let probe = client.poll_timeout().unwrap();
        assert!(probe < exact, "{probe:?} {exact:?}");
        // Handled when it passes, it changes nothing but the cache.
        let before = client.connection(h).unwrap().stats();
        client.handle_timeout(probe);
        assert_eq!(client.connection(h).unwrap().stats(), before);
        assert_eq!(client.poll_timeout(), Some(exact));
        let mut buf = [0u8; 1500];
        assert!(client.poll_transmit(probe, &mut buf).unwrap().is_none());
    }

    #[test]
    fn the_cached_deadlines_match_every_connection_through_random_work() {
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        let (mut client, mut server, mut now) = established(150, &mut rng);
        let mut pick = ChaCha20Rng::from_seed([4; 32]);
        let mut closed = 0;
        for step in 0..400 {
            let h = ConnectionHandle(pick.next_u32() as usize % 150);
            match pick.next_u32() % 6 {
                0 | 1 => {
                    if let Some(c) = client.connection_mut(h) {
                        let _ = c.send(0, b"data");
                    }
                }
                2 => {
                    // Jump to the next deadline (any side) and handle it.
                    let next = [client.poll_timeout(), server.poll_timeout()]
                        .into_iter()
                        .flatten()
                        .min();
                    if let Some(t) = next {
                        now = now.max(t);
                    }
                    client.handle_timeout(now);
                    server.handle_timeout(now);
                }
                3 if closed < 20 => {
                    if let Some(c) = client.connection_mut(h) {
                        c.close(now, 0, "bye");
                        closed += 1;
                    }
                }
                _ => now = now + Duration::from_millis(u64::from(pick.next_u32() % 500)),
            }
            assert_eq!(settled(&mut client), brute_timeout(&client), "step {step}");
            let lose = (pick.next_u32() % 4 == 0).then_some(h);
            pump(&mut client, &mut server, now, &mut rng, lose);
            assert_eq!(settled(&mut client), brute_timeout(&client), "step {step}");
            assert_eq!(settled(&mut server), brute_timeout(&server), "step {step}");
            assert_eq!(client.len(), client.handles().count());
            assert_eq!(server.len(), server.handles().count());
            assert_index_consistent(&server);
            assert_index_consistent(&client);
            // Nothing is left unsent: every connection says so itself.
            for h in client.handles().collect::<Vec<_>>() {
                let c = client.connection_mut(h).unwrap();
                assert!(c.poll_transmit(now, &mut [0u8; 1500]).unwrap().is_none());
            }
        }
        assert!(client.len() < 150, "some connections closed and were freed");
        assert!(
            server.len() < 150,
            "and so were their peers, out of the index"
        );
    }

    #[test]
    fn array_slots_keep_their_bookkeeping_inline() {
        let mut rng = ChaCha20Rng::from_seed([5; 32]);
        let mut ep = crate::ConstrainedEndpoint::<3>::new(EndpointConfig::client(config()));
        let now = Instant::from_millis(5);
        for _ in 0..3 {
            ep.connect(now, server_addr(), &Credentials::default(), &mut rng)
                .unwrap();
        }
        assert!(
            ep.connect(now, server_addr(), &Credentials::default(), &mut rng)
                .is_err()
        );
        assert_eq!(ep.len(), 3);
        let mut buf = [0u8; 1500];
        let mut sent = Vec::new();
        while let Some((h, _)) = ep.poll_transmit(now, &mut buf).unwrap() {
            sent.push(h.unwrap().0);
        }
        assert_eq!(sent, [0, 1, 2]);
        let want = (0..3)
            .filter_map(|i| ep.connection(ConnectionHandle(i))?.poll_timeout())
            .min();
        assert_eq!(ep.poll_timeout(), want);
        // The handshake retransmission timers fire for all three.
        ep.handle_timeout(want.unwrap());
        let mut again = Vec::new();
        while let Some((h, _)) = ep.poll_transmit(want.unwrap(), &mut buf).unwrap() {
            again.push(h.unwrap().0);
        }
        assert_eq!(again, [0, 1, 2]);
    }

    /// A first message (msg index 0, receiver 0) from sender `id`, with a
    /// body that is no Noise message.
    fn initiation(id: u32) -> [u8; LONG_HEADER_LEN + 48] {
        let mut pkt = [0x5a; LONG_HEADER_LEN + 48];
        HandshakeHeader {
            kind: HandshakeKind::Handshake,
            version: VERSION,
            pattern: config().pattern.id(),
            suite: config().suite.id(),
            msg_index: 0,
            receiver: 0,
            sender: id,
        }
        .encode(&mut pkt);
        pkt
    }

    /// Every accepted connection is in the chain of its bucket of the
    /// initiation index, every connection in that of its peer address, and
    /// the chains hold nothing else.
    fn assert_index_consistent(ep: &Ep) {
        let m = ep.conns.meta();
        assert_eq!(ep.index_n, m.len());
        let key = ep.index_key.unwrap();
        for ix in [Index::Initiation, Index::Peer] {
            let x = ix as usize;
            let mut chained = 0;
            for b in 0..m.len() {
                let mut p = m[b].links[x].head;
                while p != 0 {
                    let j = usize::from(p - 1);
                    let c = ep.conns.get(j).expect("a chained slot holds a connection");
                    assert_eq!(bucket(m[j].links[x].hash, m.len()), b);
                    if ix == Index::Initiation {
                        assert_eq!(c.side(), Side::Server);
                    } else {
                        let h = Ep::hash_of(key, ix, c.peer_addr(), 0);
                        assert_eq!(m[j].links[x].hash, h, "filed under its address");
                    }
                    chained += 1;
                    p = m[j].links[x].next;
                }
            }
            let indexed = ep
                .handles()
                .filter(|&h| ix == Index::Peer || ep.connection(h).unwrap().side() == Side::Server)
                .count();
            assert_eq!(chained, indexed);
        }
    }

    #[test]
    fn an_initiation_costs_the_same_beside_ten_or_a_thousand_connections() {
        let mut rng = ChaCha20Rng::from_seed([6; 32]);
        let mut per_initiation = Vec::new();
        for n in [10, 1000] {
            let (client, mut server, now) = established(n, &mut rng);
            assert_index_consistent(&server);
            // A retransmitted first message still reaches the connection
            // it created, for every connection.
            for h in client.handles() {
                let id = client.connection(h).unwrap().local_id();
                let mut pkt = initiation(id);
                let s = server
                    .handle(now, client_addr(), &mut pkt, &mut rng)
                    .unwrap();
                assert_eq!(server.connection(s).unwrap().remote_id(), id);
            }
            // From another address it is a new initiation (refused: full).
            let id = client.connection(ConnectionHandle(0)).unwrap().local_id();
            let other: SocketAddr = "10.0.0.3:5000".parse().unwrap();
            let r = server.handle(now, other, &mut initiation(id), &mut rng);
            assert_eq!(r, Err(DropReason::Busy));
            // A flood of initiations with fresh ids: each looks at about
            // one slot, however many connections there are (the scan
            // looked at all of them).
            let before = server.index_visits.get();
            for k in 0..1000u32 {
                let mut pkt = initiation(0x8000_0000 | k);
                let _ = server.handle(now, client_addr(), &mut pkt, &mut rng);
            }
            per_initiation.push((server.index_visits.get() - before) as f64 / 1000.0);
            assert_eq!(server.len(), n);
        }
        assert!(
            per_initiation.iter().all(|&v| v <= 2.0),
            "{per_initiation:?}"
        );
        // The chains are really walked (about one slot per bucket when full).
        assert!(per_initiation[1] >= 0.5, "{per_initiation:?}");
    }

    /// The address client connection `h` sends from, in
    /// [`established_apart`].
    fn addr_of(h: ConnectionHandle) -> SocketAddr {
        SocketAddr::from(([10, 1, (h.0 >> 8) as u8, h.0 as u8], 5000))
    }

    /// `n` connections established between two endpoints, each client
    /// connection from its own address ([`addr_of`]).
    fn established_apart(n: usize, rng: &mut ChaCha20Rng) -> (Ep, Ep, Instant) {
        let mut scfg = EndpointConfig::server(config(), [7; 32]);
        scfg.max_connections = n;
        scfg.handshake_burst = n as u32;
        let mut ccfg = EndpointConfig::client(config());
        ccfg.max_connections = n;
        let (mut client, mut server) = (Ep::new(ccfg), Ep::new(scfg));
        let now = Instant::from_millis(1000);
        for _ in 0..n {
            client
                .connect(now, server_addr(), &Credentials::default(), rng)
                .unwrap();
        }
        let mut buf = [0u8; 1500];
        loop {
            let mut moved = false;
            while let Some((h, t)) = client.poll_transmit(now, &mut buf).unwrap() {
                let _ = server.handle(now, addr_of(h.unwrap()), &mut buf[..t.len], rng);
                moved = true;
            }
            while let Some((_, t)) = server.poll_transmit(now, &mut buf).unwrap() {
                let _ = client.handle(now, server_addr(), &mut buf[..t.len], rng);
                moved = true;
            }
            while client.poll_event().is_some() || server.poll_event().is_some() {
                moved = true;
            }
            if !moved {
                break;
            }
        }
        assert_eq!((client.len(), server.len()), (n, n));
        (client, server, now)
    }

    #[test]
    fn connections_to_a_peer_cost_the_same_beside_ten_or_a_thousand() {
        let mut rng = ChaCha20Rng::from_seed([7; 32]);
        let mut per_lookup = Vec::new();
        for n in [10, 1000] {
            let (client, server, _) = established_apart(n, &mut rng);
            assert_index_consistent(&server);
            assert_index_consistent(&client);
            // Every client connection uses the one server address.
            let mut all: Vec<_> = client.connections_to(server_addr()).collect();
            all.sort();
            assert_eq!(all, client.handles().collect::<Vec<_>>());
            let before = server.index_visits.get();
            for h in client.handles() {
                let got: Vec<_> = server.connections_to(addr_of(h)).collect();
                assert_eq!(got.len(), 1);
                let c = server.connection(got[0]).unwrap();
                assert_eq!(c.remote_id(), client.connection(h).unwrap().local_id());
            }
            // Addresses nobody uses.
            for k in 0..n {
                let a = SocketAddr::from(([10, 2, (k >> 8) as u8, k as u8], 6000));
                assert_eq!(server.connections_to(a).count(), 0);
            }
            per_lookup.push((server.index_visits.get() - before) as f64 / (2 * n) as f64);
        }
        // About one slot visited per lookup, however many connections
        // (filtering `handles()` visits all of them).
        assert!(per_lookup.iter().all(|&v| v <= 2.0), "{per_lookup:?}");
        assert!(per_lookup[1] >= 0.5, "{per_lookup:?}");
    }

    #[test]
    fn a_connection_that_moves_is_found_at_its_new_address() {
        let mut rng = ChaCha20Rng::from_seed([8; 32]);
        let (mut client, mut server, now) = established_apart(40, &mut rng);
        let h = ConnectionHandle(17);
        let old = addr_of(h);
        let new: SocketAddr = "192.0.2.1:7000".parse().unwrap();
        let s = server.connections_to(old).next().unwrap();
        // The client's NAT rebinds: its next packet comes from elsewhere.
        client.connection_mut(h).unwrap().send(0, b"moved").unwrap();
        let mut buf = [0u8; 1500];
        let mut sent = 0;
        while let Some((from, t)) = client.poll_transmit(now, &mut buf).unwrap() {
            assert_eq!(from, Some(h));
            assert_eq!(server.handle(now, new, &mut buf[..t.len], &mut rng), Ok(s));
            sent += 1;
        }
        assert!(sent > 0);
        assert_eq!(server.connection(s).unwrap().peer_addr(), new);
        assert_eq!(server.connections_to(new).collect::<Vec<_>>(), [s]);
        assert_eq!(server.connections_to(old).count(), 0);
        assert_index_consistent(&server);
        // And it is forgotten once freed.
        server.connection_mut(s).unwrap().close(now, 0, "bye");
        let later = now + Duration::from_secs(600);
        server.handle_timeout(later);
        while server.poll_event().is_some() {}
        assert!(server.connection(s).is_none());
        assert_eq!(server.connections_to(new).count(), 0);
        assert_index_consistent(&server);
    }
}
