//! A deterministic network simulator: virtual time, a seeded RNG, loss,
//! reordering, duplication, corruption, delay, jitter and an MTU, driving
//! Tern endpoints through their sans-IO interface.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::hash_map::DefaultHasher;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::time::Duration;
use tern::Instant;
use tern::connection::DropReason;
use tern::crypto::CryptoProvider;
use tern::endpoint::{ConnectionHandle, Endpoint, Slots};
use tern::packet::{HandshakeHeader, HandshakeKind, ShortHeader, decode_packet_number};
use tern::storage::ByteStore;
use tern::{Connection, Event};

/// Datagrams one node may produce in a single flush before the simulator
/// declares it stuck in a loop.
pub const MAX_BURST: u64 = 100_000;

/// How the simulated network treats each datagram.
#[derive(Clone, Copy, Debug)]
pub struct Link {
    /// Probability a datagram is lost.
    pub loss: f64,
    /// Probability a datagram is held back (delivered after later ones).
    pub reorder: f64,
    /// Probability a datagram is delivered twice.
    pub duplicate: f64,
    /// Probability one bit of a datagram is flipped.
    pub corrupt: f64,
    /// One-way delay.
    pub delay: Duration,
    /// Extra random delay, uniform in `[0, jitter)`.
    pub jitter: Duration,
    /// Datagrams larger than this are dropped.
    pub mtu: usize,
    /// Bursty loss (Gilbert–Elliott): when set, `loss` is the loss
    /// probability in the good state and the model adds a bad state.
    pub burst: Option<Burst>,
    /// Extra delay of a held-back (reordered) datagram: uniform in
    /// `[hold, 2·hold)`; when zero, uniform in `[0, 3·delay + 1 ms)`.
    pub hold: Duration,
    /// Copies a duplicated datagram gets beyond the original (1 unless a
    /// duplication storm is wanted).
    pub copies: u32,
}

/// Bursty loss: a two-state (Gilbert–Elliott) model whose bad state lasts
/// a random time. In the good state a datagram is lost with the link's
/// `loss` and starts a burst with probability `enter`; a burst lasts a time
/// uniform in `[0, 2·length)` (mean `length`), and while it lasts each
/// datagram in that direction is lost with probability `loss`. Bursts are
/// timed, not counted in datagrams, so a sender that backs off is not
/// trapped in a burst that only its own packets could end.
#[derive(Clone, Copy, Debug)]
pub struct Burst {
    /// Probability that a datagram in the good state starts a burst.
    pub enter: f64,
    /// Mean length of a burst.
    pub length: Duration,
    /// Loss probability during a burst.
    pub loss: f64,
}

impl Default for Link {
    fn default() -> Self {
        Link {
            loss: 0.0,
            reorder: 0.0,
            duplicate: 0.0,
            corrupt: 0.0,
            delay: Duration::from_millis(10),
            jitter: Duration::ZERO,
            mtu: 1500,
            burst: None,
            hold: Duration::ZERO,
            copies: 1,
        }
    }
}

/// What the network did.
#[derive(Clone, Copy, Debug, Default)]
pub struct NetStats {
    /// Datagrams handed to the network.
    pub sent: u64,
    /// Datagrams delivered (duplicates count twice).
    pub delivered: u64,
    /// Lost on purpose.
    pub lost: u64,
    /// Delivered twice.
    pub duplicated: u64,
    /// Held back.
    pub reordered: u64,
    /// Bit-flipped.
    pub corrupted: u64,
    /// Dropped for exceeding the MTU.
    pub too_big: u64,
    /// Data packets whose packet number was not the one after the previous
    /// packet of the same session and direction: a reused nonce or a skipped
    /// number. Always 0 for a correct sender.
    pub pn_violations: u64,
    /// Data packets checked by the packet-number monitor.
    pub sealed: u64,
    /// Session keys (direction and handshake) the monitor has seen.
    pub keys: u64,
    /// Datagrams handed over by [`Net::inject`] (not from an endpoint).
    pub injected: u64,
    /// Loss bursts started.
    pub bursts: u64,
    /// Longest run of consecutive datagrams lost (by `loss` or a burst)
    /// in one direction.
    pub longest_loss_run: u64,
    /// Longest extra delay a held-back datagram got.
    pub longest_hold: Duration,
}

/// What the packet-number monitor knows about one session key.
#[derive(Clone, Copy, Debug)]
struct KeyTrack {
    /// The packet number the next data packet must carry.
    next: u64,
    /// Hash of the handshake message 1 that created the key (0 if none
    /// was seen).
    epoch: u64,
}

struct InFlight {
    at: u64,
    seq: u64,
    from: SocketAddr,
    to: SocketAddr,
    data: Vec<u8>,
}

impl PartialEq for InFlight {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for InFlight {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// Anything the simulator can drive: an endpoint with its RNG.
pub trait Node {
    /// Its address.
    fn addr(&self) -> SocketAddr;
    /// A datagram arrives.
    fn deliver(&mut self, now: Instant, from: SocketAddr, data: &mut [u8]);
    /// The next datagram to send, written into `buf`.
    fn transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<(SocketAddr, usize)>;
    /// Its next deadline.
    fn timeout(&self) -> Option<Instant>;
    /// Time passes.
    fn on_timeout(&mut self, now: Instant);
}

/// A Tern endpoint in the simulator.
pub struct SimEndpoint<B, const CH: usize, const SENT: usize, S, P = tern::crypto::RustCrypto>
where
    B: ByteStore,
    P: CryptoProvider + Clone + Default,
    S: Slots<Connection<B, CH, SENT, P>>,
{
    /// The endpoint.
    pub ep: Endpoint<B, CH, SENT, S, P>,
    /// Its address.
    pub addr: SocketAddr,
    /// Its RNG.
    pub rng: ChaCha8Rng,
    /// Events polled so far, in order, per connection.
    pub events: Vec<(ConnectionHandle, Event)>,
    /// Drops the endpoint reported.
    pub drops: Vec<DropReason>,
}

impl<B, const CH: usize, const SENT: usize, S, P> SimEndpoint<B, CH, SENT, S, P>
where
    B: ByteStore,
    P: CryptoProvider + Clone + Default,
    S: Slots<Connection<B, CH, SENT, P>>,
{
    /// Wraps an endpoint.
    pub fn new(ep: Endpoint<B, CH, SENT, S, P>, addr: SocketAddr, seed: u64) -> Self {
        SimEndpoint {
            ep,
            addr,
            rng: ChaCha8Rng::seed_from_u64(seed),
            events: Vec::new(),
            drops: Vec::new(),
        }
    }

    /// Takes every pending event into `events` and returns the new ones.
    pub fn drain_events(&mut self) -> &[(ConnectionHandle, Event)] {
        let start = self.events.len();
        while let Some(e) = self.ep.poll_event() {
            self.events.push(e);
        }
        &self.events[start..]
    }
}

impl<B, const CH: usize, const SENT: usize, S, P> Node for SimEndpoint<B, CH, SENT, S, P>
where
    B: ByteStore,
    P: CryptoProvider + Clone + Default,
    S: Slots<Connection<B, CH, SENT, P>>,
{
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn deliver(&mut self, now: Instant, from: SocketAddr, data: &mut [u8]) {
        if let Err(r) = self.ep.handle(now, from, data, &mut self.rng) {
            self.drops.push(r);
        }
    }
    fn transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<(SocketAddr, usize)> {
        match self.ep.poll_transmit(now, buf) {
            Ok(Some((_, t))) => Some((t.destination, t.len)),
            Ok(None) => None,
            Err(e) => panic!("transmit buffer: {e}"),
        }
    }
    fn timeout(&self) -> Option<Instant> {
        self.ep.poll_timeout()
    }
    fn on_timeout(&mut self, now: Instant) {
        self.ep.handle_timeout(now);
    }
}

/// A datagram seen on the wire: when, from, to, bytes.
pub type Captured = (Instant, SocketAddr, SocketAddr, Vec<u8>);

/// The network and the clock.
pub struct Net {
    /// Virtual time now.
    pub now: Instant,
    /// Link behaviour (the same both ways unless `link_back` is set).
    pub link: Link,
    /// Behaviour for datagrams towards the first node (the server), if it
    /// differs (asymmetric loss).
    pub link_to_first: Option<Link>,
    rng: ChaCha8Rng,
    queue: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    /// What happened to datagrams.
    pub stats: NetStats,
    /// Sizes of every datagram sent, for overhead checks.
    pub largest_datagram: usize,
    first: Option<SocketAddr>,
    /// Addresses whose datagrams are all dropped (a peer gone silent).
    pub blackholed: Vec<SocketAddr>,
    /// When set, a copy of every datagram handed to the network, before
    /// loss: `(time, from, to, bytes)`.
    pub capture: Option<Vec<Captured>>,
    /// The packet-number monitor: per key, identified by (from, to,
    /// receiver session id) and the handshake that made it.
    keys: HashMap<(SocketAddr, SocketAddr, u32), KeyTrack>,
    /// End of the current loss burst per direction.
    bad: HashMap<(SocketAddr, SocketAddr), Instant>,
    /// Current run of consecutive losses per direction.
    loss_run: HashMap<(SocketAddr, SocketAddr), u64>,
    /// Datagrams lost on purpose, per destination.
    pub lost_to: HashMap<SocketAddr, u64>,
    /// Transmit buffer, kept between flushes.
    buf: Vec<u8>,
}

impl Net {
    /// A network starting at time 0.
    pub fn new(link: Link, seed: u64) -> Self {
        Net {
            now: Instant::from_millis(1),
            link,
            link_to_first: None,
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x006e_6574),
            queue: BinaryHeap::new(),
            seq: 0,
            stats: NetStats::default(),
            largest_datagram: 0,
            first: None,
            blackholed: Vec::new(),
            capture: None,
            keys: HashMap::new(),
            bad: HashMap::new(),
            loss_run: HashMap::new(),
            lost_to: HashMap::new(),
            buf: Vec::new(),
        }
    }

    /// The nonce monitor. Every datagram an endpoint produces passes
    /// through [`Net::send`], before any loss, so the monitor sees every
    /// packet an endpoint sealed. A data packet's nonce is its packet
    /// number under the key of its direction and session; the numbers of a
    /// key must run exactly 0, 1, 2, … (packets.md §5.1), so any other
    /// number is counted in [`NetStats::pn_violations`]: a repeat would be
    /// a (key, nonce) pair sealed twice.
    ///
    /// A key is identified by the direction (from, to), the receiver's
    /// session id and the handshake that created it: handshake message 1
    /// (the responder's, which carries its fresh ephemeral key) names both
    /// session ids, and a message 1 with other bytes for the same ids and
    /// addresses is a new handshake, hence new keys (a server that
    /// restarted and happened to pick the same id). Retransmissions of
    /// message 1 are byte for byte the same and change nothing.
    fn check_packet_number(&mut self, from: SocketAddr, to: SocketAddr, data: &[u8]) {
        if data.first().is_some_and(|b| b & 0x80 != 0) {
            let Ok((h, _)) = HandshakeHeader::decode(data) else {
                return;
            };
            if h.kind != HandshakeKind::Handshake || h.msg_index != 1 {
                return;
            }
            let mut hasher = DefaultHasher::new();
            data.hash(&mut hasher);
            let epoch = hasher.finish() | 1;
            // The responder's direction (to the initiator's id) and the
            // initiator's (to the responder's id).
            for key in [(from, to, h.receiver), (to, from, h.sender)] {
                let known = self.keys.get(&key).map(|k| k.epoch);
                if known != Some(epoch) {
                    self.keys.insert(key, KeyTrack { next: 0, epoch });
                    self.stats.keys += 1;
                }
            }
            return;
        }
        let Ok(h) = ShortHeader::decode(data) else {
            return;
        };
        self.stats.sealed += 1;
        let track = self.keys.entry((from, to, h.receiver)).or_insert_with(|| {
            self.stats.keys += 1;
            KeyTrack { next: 0, epoch: 0 }
        });
        let next = &mut track.next;
        let pn = decode_packet_number(
            next.checked_sub(1),
            u64::from(h.pn_truncated),
            usize::from(h.pn_len),
        );
        if pn != *next {
            self.stats.pn_violations += 1;
        }
        *next = (*next).max(pn + 1);
    }

    /// Hands a datagram that no endpoint produced (an attacker's, a
    /// replay) to the network: it is captured and delivered after the
    /// link's delay, but not lost, duplicated or checked by the nonce
    /// monitor.
    pub fn inject(&mut self, from: SocketAddr, to: SocketAddr, data: &[u8]) {
        self.stats.injected += 1;
        if let Some(c) = self.capture.as_mut() {
            c.push((self.now, from, to, data.to_vec()));
        }
        let link = self.link_towards(to);
        self.seq += 1;
        let at = (self.now + link.delay).as_micros();
        self.queue.push(Reverse(InFlight {
            at,
            seq: self.seq,
            from,
            to,
            data: data.to_vec(),
        }));
    }

    fn link_towards(&self, to: SocketAddr) -> Link {
        if Some(to) == self.first {
            self.link_to_first.unwrap_or(self.link)
        } else {
            self.link
        }
    }

    /// Whether the link loses this datagram, advancing the burst model.
    fn lose(&mut self, link: &Link, from: SocketAddr, to: SocketAddr) -> bool {
        let p = match link.burst {
            None => link.loss,
            Some(b) => {
                let until = self.bad.get(&(from, to)).copied();
                if until.is_some_and(|t| self.now < t) {
                    b.loss
                } else if self.chance(b.enter) {
                    self.stats.bursts += 1;
                    let length = self.jitter(b.length * 2);
                    self.bad.insert((from, to), self.now + length);
                    b.loss
                } else {
                    link.loss
                }
            }
        };
        let lost = self.chance(p);
        let run = self.loss_run.entry((from, to)).or_insert(0);
        if lost {
            *run += 1;
            self.stats.longest_loss_run = self.stats.longest_loss_run.max(*run);
        } else {
            *run = 0;
        }
        lost
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.rng.next_u64() as f64 / u64::MAX as f64) < p
    }

    fn jitter(&mut self, max: Duration) -> Duration {
        if max.is_zero() {
            return Duration::ZERO;
        }
        Duration::from_micros(self.rng.next_u64() % max.as_micros().max(1) as u64)
    }

    /// Hands a datagram to the network.
    pub fn send(&mut self, from: SocketAddr, to: SocketAddr, data: &[u8]) {
        self.stats.sent += 1;
        self.largest_datagram = self.largest_datagram.max(data.len());
        if let Some(c) = self.capture.as_mut() {
            c.push((self.now, from, to, data.to_vec()));
        }
        self.check_packet_number(from, to, data);
        if self.blackholed.contains(&from) || self.blackholed.contains(&to) {
            self.stats.lost += 1;
            *self.lost_to.entry(to).or_insert(0) += 1;
            return;
        }
        let link = self.link_towards(to);
        if data.len() > link.mtu {
            self.stats.too_big += 1;
            return;
        }
        if self.lose(&link, from, to) {
            self.stats.lost += 1;
            *self.lost_to.entry(to).or_insert(0) += 1;
            return;
        }
        let copies = if self.chance(link.duplicate) {
            self.stats.duplicated += 1;
            1 + link.copies.max(1)
        } else {
            1
        };
        for _ in 0..copies {
            let mut delay = link.delay + self.jitter(link.jitter);
            if self.chance(link.reorder) {
                self.stats.reordered += 1;
                let extra = if link.hold.is_zero() {
                    self.jitter(link.delay * 3 + Duration::from_millis(1))
                } else {
                    link.hold + self.jitter(link.hold)
                };
                self.stats.longest_hold = self.stats.longest_hold.max(extra);
                delay += extra;
            }
            let mut data = data.to_vec();
            if self.chance(link.corrupt) && !data.is_empty() {
                self.stats.corrupted += 1;
                let bit = (self.rng.next_u64() % (data.len() as u64 * 8)) as usize;
                data[bit / 8] ^= 1 << (bit % 8);
            }
            self.seq += 1;
            let at = (self.now + delay).as_micros();
            self.queue.push(Reverse(InFlight {
                at,
                seq: self.seq,
                from,
                to,
                data,
            }));
        }
    }

    /// Moves every node's output onto the network.
    pub fn flush(&mut self, nodes: &mut [&mut dyn Node]) {
        if self.first.is_none() {
            self.first = nodes.first().map(|n| n.addr());
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(65536, 0);
        for n in nodes.iter_mut() {
            let mut count = 0u64;
            while let Some((to, len)) = n.transmit(self.now, &mut buf) {
                let from = n.addr();
                self.send(from, to, &buf[..len]);
                // Congestion and flow control bound a burst; an endpoint
                // that never stops would fill memory.
                count += 1;
                assert!(
                    count < MAX_BURST,
                    "{from} produced {MAX_BURST} datagrams at {:?} without stopping",
                    self.now
                );
            }
        }
        self.buf = buf;
    }

    /// Advances virtual time to the next event (a delivery or a deadline,
    /// at most `max_step` ahead) and processes it. Returns false if nothing
    /// is pending at all.
    pub fn step(&mut self, nodes: &mut [&mut dyn Node], max_step: Duration) -> bool {
        self.flush(nodes);
        let next_pkt = self
            .queue
            .peek()
            .map(|Reverse(p)| Instant::from_micros(p.at));
        let next_timer = nodes.iter().filter_map(|n| n.timeout()).min();
        let next = match (next_pkt, next_timer) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => return false,
        };
        let next = next.min(self.now + max_step).max(self.now);
        self.now = next;
        while let Some(Reverse(p)) = self.queue.peek() {
            if p.at > self.now.as_micros() {
                break;
            }
            let Reverse(mut p) = self.queue.pop().expect("peeked");
            if let Some(n) = nodes.iter_mut().find(|n| n.addr() == p.to) {
                self.stats.delivered += 1;
                n.deliver(self.now, p.from, &mut p.data);
            }
        }
        for n in nodes.iter_mut() {
            if n.timeout().is_some_and(|t| t <= self.now) {
                n.on_timeout(self.now);
            }
        }
        self.flush(nodes);
        true
    }

    /// Datagrams still on the wire.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }
}

/// `127.0.0.1:port`.
pub fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}
