//! A scenario harness over the simulator: one server endpoint and any
//! number of client endpoints, application traffic that is checked on
//! receipt, and global invariants checked after every simulated step.
//!
//! After every step [`World`] checks, and panics with the time and the
//! connection when one fails:
//!
//! - exactly-once, in-order, intact delivery per channel (every message
//!   names its direction, channel and sequence number, and its bytes are a
//!   function of those);
//! - memory: every connection's [`Connection::buffer_bytes`] stays within
//!   what its configured windows allow, and per direction the bytes a sender
//!   accepted but the receiving application has not read never exceed the
//!   sender's buffer plus the receiver's window;
//! - events: a connection's first event is `Connected` (or `Closed`, for a
//!   failed handshake), `Connected` comes once, `Closed` comes once and no
//!   event follows it;
//! - memory: no endpoint holds more connections than its
//!   `max_connections`;
//! - nonces: the data packets sealed under each key carry consecutive
//!   packet numbers, so no (key, packet number) pair is used twice
//!   ([`crate::sim::NetStats::pn_violations`] stays 0).
//!
//! [`World::violation`], [`Flow::deliver`] and [`World::record_event`]
//! return these checks' verdicts instead of panicking.

use crate::sim::{Link, Net, Node, SimEndpoint, addr};
use crate::simulate::{keys, message};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;
use tern::channel::SendBlocked;
use tern::config::Config;
use tern::connection::{Credentials, SendError};
use tern::crypto::{CryptoProvider, RustCrypto};
use tern::endpoint::{BoxSlots, ConnectionHandle, Endpoint, EndpointConfig};
use tern::storage::ByteStore;
use tern::{Connection, ConnectionError, Event, Instant};

/// A simulated endpoint with heap slots.
pub type Ep<B, const CH: usize, const SENT: usize> =
    SimEndpoint<B, CH, SENT, BoxSlots<Connection<B, CH, SENT>>>;

/// The server's port; client `k` uses `CLIENT_PORT + k`.
pub const SERVER_PORT: u16 = 4433;
/// The first client's port.
pub const CLIENT_PORT: u16 = 10_000;

/// Node index of the server in [`World::log`]; client `k` is node `k + 1`.
pub const SERVER: usize = 0;

/// Application traffic over one client's connection, both ways, checked on
/// receipt. Direction 0 is client to server, 1 server to client; side 0 is
/// the client, side 1 the server (side `s` sends direction `s`).
#[derive(Clone, Debug)]
pub struct Flow {
    /// Seed of the message contents.
    pub key: u64,
    /// Channels used, 0 to `channels - 1`, in turn.
    pub channels: u32,
    /// Largest message; sizes are uniform in `[9, size]`.
    pub size: usize,
    /// Messages each side is to send.
    pub to_send: [usize; 2],
    /// Messages each side queued so far.
    pub sent: [usize; 2],
    /// Messages each side received, intact and in order.
    pub received: [usize; 2],
    /// Whether each side's application reads what arrives.
    pub reading: [bool; 2],
    /// Refusals (`WouldBlock`) each side met.
    pub blocked: [u64; 2],
    /// Each distinct reason a refusal gave, per side.
    pub block_reasons: [Vec<SendBlocked>; 2],
    /// `Writable` events each side got.
    pub writable: [u64; 2],
    /// Bytes each side's `send` accepted.
    pub accepted_bytes: [u64; 2],
    /// Bytes each side's application read.
    pub read_bytes: [u64; 2],
    /// When each side last read a message.
    pub last_read_at: [Option<Instant>; 2],
    next_send: [Vec<u32>; 2],
    next_recv: [Vec<u32>; 2],
}

impl Flow {
    /// `messages` each way on `channels` channels, sizes up to `size`.
    pub fn new(key: u64, channels: u32, messages: usize, size: usize) -> Flow {
        let ch = channels as usize;
        Flow {
            key,
            channels,
            size,
            to_send: [messages; 2],
            sent: [0; 2],
            received: [0; 2],
            reading: [true; 2],
            blocked: [0; 2],
            block_reasons: [Vec::new(), Vec::new()],
            writable: [0; 2],
            accepted_bytes: [0; 2],
            read_bytes: [0; 2],
            last_read_at: [None; 2],
            next_send: [vec![0; ch], vec![0; ch]],
            next_recv: [vec![0; ch], vec![0; ch]],
        }
    }

    /// Whether every message was queued and received.
    pub fn done(&self) -> bool {
        self.received[0] == self.to_send[1] && self.received[1] == self.to_send[0]
    }

    /// Whether everything queued so far was received.
    pub fn caught_up(&self) -> bool {
        self.received[0] == self.sent[1] && self.received[1] == self.sent[0]
    }

    /// Checks a message side `side` read from `channel` and counts it:
    /// an error names a duplicate, a gap, a wrong channel or direction, or
    /// altered bytes (the message is then not counted).
    pub fn deliver(
        &mut self,
        now: Instant,
        side: usize,
        channel: u32,
        m: &[u8],
    ) -> Result<(), String> {
        let dir = 1 - side;
        if m.len() < 9 || usize::from(m[0]) != dir {
            return Err(format!(
                "message of the wrong direction or truncated ({} bytes)",
                m.len()
            ));
        }
        let c = u32::from_be_bytes([m[1], m[2], m[3], m[4]]);
        let seq = u32::from_be_bytes([m[5], m[6], m[7], m[8]]);
        if c != channel {
            return Err(format!("message of channel {c} read on {channel}"));
        }
        if c >= self.channels {
            return Err(format!("unknown channel {c}"));
        }
        let expect = self.next_recv[side][c as usize];
        if seq < expect {
            return Err(format!(
                "channel {c} message {seq} delivered twice (expected {expect})"
            ));
        }
        if seq > expect {
            return Err(format!(
                "channel {c} message {seq} delivered before {expect}"
            ));
        }
        if message(self.key, dir as u8, c, seq, self.size) != m {
            return Err(format!("channel {c} message {seq} corrupted"));
        }
        self.next_recv[side][c as usize] += 1;
        self.received[side] += 1;
        self.read_bytes[side] += m.len() as u64;
        self.last_read_at[side] = Some(now);
        Ok(())
    }

    /// The message side `side` will send next (channel and bytes), without
    /// counting it as sent.
    pub fn next_message(&self, side: usize) -> (u32, Vec<u8>) {
        let c = (self.sent[side] % self.channels as usize) as u32;
        let seq = self.next_send[side][c as usize];
        (c, message(self.key, side as u8, c, seq, self.size))
    }
}

/// Something that happened, with when and where.
#[derive(Clone, Copy, Debug)]
pub struct Logged {
    /// Virtual time.
    pub at: Instant,
    /// [`SERVER`] or client index + 1.
    pub node: usize,
    /// The connection within that node's endpoint (handles are reused
    /// once a closed connection is freed).
    pub handle: ConnectionHandle,
    /// Which connection it was: unique over the whole run.
    pub conn: u64,
    /// The event.
    pub event: Event,
}

/// One server endpoint, client endpoints, the network and the traffic.
pub struct World<B: ByteStore, const CH: usize, const SENT: usize> {
    /// The network and the clock.
    pub net: Net,
    /// The server endpoint.
    pub server: Ep<B, CH, SENT>,
    /// Client endpoints; client `k` has one connection, `client_handles[k]`.
    pub clients: Vec<Ep<B, CH, SENT>>,
    /// Each client's connection.
    pub client_handles: Vec<ConnectionHandle>,
    /// The server's connection for each client, from its `Connected` event
    /// until the server frees it.
    pub server_handles: Vec<Option<ConnectionHandle>>,
    /// Each client's connection id in [`Logged::conn`], and the server's
    /// for that client once known.
    conn_ids: Vec<[Option<u64>; 2]>,
    live_ids: HashMap<(usize, ConnectionHandle), u64>,
    next_id: u64,
    /// Traffic per client, if any.
    pub flows: Vec<Option<Flow>>,
    /// The connection configuration clients use.
    pub config: Config,
    /// The server endpoint's settings (for [`World::restart_server`]).
    pub server_config: EndpointConfig,
    /// Every event, in order.
    pub log: Vec<Logged>,
    /// Largest virtual step.
    pub max_step: Duration,
    /// Connections whose `Closed` was seen and that were then freed by
    /// their endpoint, per node.
    pub reaped: Vec<usize>,
    seed: u64,
    /// [`memory_bound`] per channel and for the rest, computed once.
    memory: (usize, usize),
    server_pub: [u8; 32],
    connected: HashSet<(usize, ConnectionHandle)>,
    closed: HashMap<(usize, ConnectionHandle), Instant>,
    scratch: Vec<u8>,
}

/// RAM a store of `limit` bytes holds once used to the full.
fn store_max<B: ByteStore>(limit: usize) -> usize {
    let mut s = B::new(limit);
    let _ = s.bytes_mut();
    s.allocated()
}

/// The most [`Connection::buffer_bytes`] a connection with `config` may
/// hold with `channels` channels in use: per channel a send buffer of the
/// window and a receive store of the window with its bitmaps, plus the two
/// datagram queues.
pub fn memory_bound<B: ByteStore>(config: &Config, channels: u32) -> usize {
    let w = config.channel_window as usize;
    let dgram = (usize::from(config.max_datagram_size) + 2) * config.datagram_queue;
    channels as usize * (store_max::<B>(w) + store_max::<B>(tern::channel::recv_store_len(w)))
        + 2 * store_max::<B>(dgram)
}

impl<B: ByteStore, const CH: usize, const SENT: usize> World<B, CH, SENT> {
    /// A server with `config` on a network with `link`; no clients yet.
    pub fn new(config: Config, link: Link, seed: u64) -> Self {
        Self::with_server(config.clone(), config, link, seed, |_| {})
    }

    /// Like [`World::new`], with a server configuration of its own and a
    /// chance to adjust the server endpoint's settings.
    pub fn with_server(
        config: Config,
        server_config: Config,
        link: Link,
        seed: u64,
        tune: impl FnOnce(&mut EndpointConfig),
    ) -> Self {
        let (server_key, server_pub, _) = keys(seed);
        // Either side may hold the larger buffers.
        let memory = [&config, &server_config]
            .map(|c| {
                let base = memory_bound::<B>(c, 0);
                (memory_bound::<B>(c, 1) - base, base)
            })
            .into_iter()
            .fold((0, 0), |a, b| (a.0.max(b.0), a.1.max(b.1)));
        let mut scfg = EndpointConfig::server(server_config, server_key);
        tune(&mut scfg);
        let server = SimEndpoint::new(Endpoint::new(scfg.clone()), addr(SERVER_PORT), seed ^ 0x5e);
        World {
            net: Net::new(link, seed),
            server,
            clients: Vec::new(),
            client_handles: Vec::new(),
            server_handles: Vec::new(),
            conn_ids: Vec::new(),
            live_ids: HashMap::new(),
            next_id: 0,
            flows: Vec::new(),
            config,
            server_config: scfg,
            log: Vec::new(),
            max_step: Duration::from_secs(1),
            reaped: vec![0],
            seed,
            memory,
            server_pub,
            connected: HashSet::new(),
            closed: HashMap::new(),
            scratch: vec![0; 70_000],
        }
    }

    /// Adds a client endpoint and starts its connection; returns its index.
    pub fn add_client(&mut self) -> usize {
        let k = self.clients.len();
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ 0xc1 ^ ((k as u64) << 16));
        let mut key = [0u8; 32];
        rng.fill_bytes(&mut key);
        let creds = Credentials {
            private_key: Some(key),
            remote_public_key: Some(self.server_pub),
            psk: None,
        };
        let ep = Endpoint::new(EndpointConfig::client(self.config.clone()));
        let port = CLIENT_PORT + u16::try_from(k).expect("client count");
        let mut c = SimEndpoint::new(ep, addr(port), self.seed ^ 0xc2 ^ ((k as u64) << 16));
        let h =
            c.ep.connect(self.net.now, self.server.addr, &creds, &mut c.rng)
                .expect("connect");
        self.clients.push(c);
        self.client_handles.push(h);
        self.server_handles.push(None);
        self.conn_ids.push([None; 2]);
        self.flows.push(None);
        self.reaped.push(0);
        k
    }

    /// Client `k`'s address.
    pub fn client_addr(&self, k: usize) -> SocketAddr {
        self.clients[k].addr
    }

    /// Client `k`'s connection, while its endpoint holds it.
    pub fn client_conn(&mut self, k: usize) -> Option<&mut Connection<B, CH, SENT>> {
        let h = self.client_handles[k];
        self.clients[k].ep.connection_mut(h)
    }

    /// The server's connection to client `k`, while the server holds it.
    pub fn server_conn(&mut self, k: usize) -> Option<&mut Connection<B, CH, SENT>> {
        let h = self.server_handles[k]?;
        self.server.ep.connection_mut(h)
    }

    /// Events of the connection a node holds (or last held) as `handle`.
    pub fn events(&self, node: usize, handle: ConnectionHandle) -> Vec<(Instant, Event)> {
        let last = self
            .log
            .iter()
            .rev()
            .find(|l| l.node == node && l.handle == handle);
        match last {
            Some(l) => self.conn_events(l.conn),
            None => Vec::new(),
        }
    }

    fn conn_events(&self, conn: u64) -> Vec<(Instant, Event)> {
        self.log
            .iter()
            .filter(|l| l.conn == conn)
            .map(|l| (l.at, l.event))
            .collect()
    }

    /// Client `k`'s events.
    pub fn client_events(&self, k: usize) -> Vec<(Instant, Event)> {
        self.conn_ids[k][0].map_or_else(Vec::new, |c| self.conn_events(c))
    }

    /// The server's events for client `k`'s connection.
    pub fn server_events(&self, k: usize) -> Vec<(Instant, Event)> {
        self.conn_ids[k][1].map_or_else(Vec::new, |c| self.conn_events(c))
    }

    /// How and when a connection ended.
    pub fn ending(events: &[(Instant, Event)]) -> Option<(Instant, ConnectionError)> {
        events.iter().find_map(|&(t, e)| match e {
            Event::Closed(why) => Some((t, why)),
            _ => None,
        })
    }

    /// Sets traffic for client `k`.
    pub fn set_flow(&mut self, k: usize, flow: Flow) {
        self.flows[k] = Some(flow);
    }

    /// Client `k`'s traffic.
    pub fn flow(&self, k: usize) -> &Flow {
        self.flows[k].as_ref().expect("flow")
    }

    /// Client `k`'s traffic, mutably.
    pub fn flow_mut(&mut self, k: usize) -> &mut Flow {
        self.flows[k].as_mut().expect("flow")
    }

    /// One simulated step (a delivery or a deadline), then the
    /// applications run and every invariant is checked. False when nothing
    /// at all is pending.
    pub fn step(&mut self) -> bool {
        let more = {
            let mut nodes: Vec<&mut dyn Node> = Vec::with_capacity(1 + self.clients.len());
            nodes.push(&mut self.server);
            for c in self.clients.iter_mut() {
                nodes.push(c);
            }
            self.net.step(&mut nodes, self.max_step)
        };
        self.after_step();
        more
    }

    /// Runs the applications and checks the invariants; [`World::step`]
    /// calls it, and tests call it after acting on a connection directly.
    pub fn after_step(&mut self) {
        // Read before polling events: the endpoint frees a closed
        // connection once its last event is taken.
        for k in 0..self.clients.len() {
            self.receive(k, 0);
            self.receive(k, 1);
        }
        self.drain_events();
        for k in 0..self.clients.len() {
            self.send(k, 0);
            self.send(k, 1);
        }
        self.check_invariants();
    }

    /// Steps until `done` holds or `limit` of virtual time passed; returns
    /// whether `done` held.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&mut Self) -> bool) -> bool {
        let deadline = self.net.now + limit;
        loop {
            if done(self) {
                return true;
            }
            if self.net.now >= deadline || !self.step() {
                return done(self);
            }
        }
    }

    /// Lets `d` of virtual time pass.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.net.now + d;
        self.run_until(d, |w| w.net.now >= end);
    }

    fn conn_mut(&mut self, k: usize, side: usize) -> Option<&mut Connection<B, CH, SENT>> {
        if side == 0 {
            self.client_conn(k)
        } else {
            self.server_conn(k)
        }
    }

    fn receive(&mut self, k: usize, side: usize) {
        let Some(mut flow) = self.flows[k].take() else {
            return;
        };
        if flow.reading[side] {
            let mut buf = std::mem::take(&mut self.scratch);
            let now = self.net.now;
            if let Some(conn) = self.conn_mut(k, side) {
                loop {
                    match conn.recv_any(&mut buf) {
                        Ok(Some((ch, len))) => {
                            if let Err(e) = flow.deliver(now, side, ch, &buf[..len]) {
                                panic!(
                                    "client {k} {} at {now:?}: {e}",
                                    ["client side", "server side"][side]
                                );
                            }
                        }
                        Ok(None) => break,
                        Err(needed) => panic!("receive buffer too small: {needed}"),
                    }
                }
            }
            self.scratch = buf;
        }
        self.flows[k] = Some(flow);
    }

    fn send(&mut self, k: usize, side: usize) {
        let Some(mut flow) = self.flows[k].take() else {
            return;
        };
        if let Some(conn) = self.conn_mut(k, side)
            && conn.is_established()
        {
            while flow.sent[side] < flow.to_send[side] {
                let (c, m) = flow.next_message(side);
                match conn.send(c, &m) {
                    Ok(()) => {
                        flow.next_send[side][c as usize] += 1;
                        flow.sent[side] += 1;
                        flow.accepted_bytes[side] += m.len() as u64;
                    }
                    Err(SendError::WouldBlock(why)) => {
                        flow.blocked[side] += 1;
                        if !flow.block_reasons[side].contains(&why) {
                            flow.block_reasons[side].push(why);
                        }
                        break;
                    }
                    Err(e) => panic!("client {k} side {side}: send: {e}"),
                }
            }
        }
        self.flows[k] = Some(flow);
    }

    /// Gives every connection an id when it first appears (before its
    /// events are polled: the endpoint frees a closed connection with its
    /// last event) and maps server connections to clients by address.
    fn track_connections(&mut self) {
        for node in 0..=self.clients.len() {
            let fresh: Vec<(ConnectionHandle, SocketAddr)> = {
                let ep = &self.endpoint(node).ep;
                ep.handles()
                    .filter(|&h| !self.live_ids.contains_key(&(node, h)))
                    .map(|h| (h, ep.connection(h).expect("listed").peer_addr()))
                    .collect()
            };
            for (h, peer) in fresh {
                self.next_id += 1;
                let id = self.next_id;
                self.live_ids.insert((node, h), id);
                if node != SERVER {
                    self.conn_ids[node - 1][0] = Some(id);
                } else if let Some(k) = self.clients.iter().position(|c| c.addr == peer) {
                    self.server_handles[k] = Some(h);
                    self.conn_ids[k][1] = Some(id);
                }
            }
        }
    }

    fn drain_events(&mut self) {
        self.track_connections();
        let now = self.net.now;
        let nodes = 1 + self.clients.len();
        for node in 0..nodes {
            let new: Vec<(ConnectionHandle, Event)> = if node == SERVER {
                self.server.drain_events().to_vec()
            } else {
                self.clients[node - 1].drain_events().to_vec()
            };
            for (h, e) in new {
                self.on_event(now, node, h, e);
            }
            // Connections freed by the endpoint: their handle may be reused.
            let gone: Vec<(usize, ConnectionHandle)> = self
                .closed
                .keys()
                .filter(|&&(n, h)| n == node && self.endpoint(n).ep.connection(h).is_none())
                .copied()
                .collect();
            for key in gone {
                self.closed.remove(&key);
                self.connected.remove(&key);
                self.live_ids.remove(&key);
                if node == SERVER {
                    for s in self.server_handles.iter_mut() {
                        if *s == Some(key.1) {
                            *s = None;
                        }
                    }
                }
                self.reaped[node] += 1;
            }
        }
    }

    fn endpoint(&self, node: usize) -> &Ep<B, CH, SENT> {
        if node == SERVER {
            &self.server
        } else {
            &self.clients[node - 1]
        }
    }

    fn on_event(&mut self, now: Instant, node: usize, h: ConnectionHandle, e: Event) {
        if let Err(why) = self.record_event(now, node, h, e) {
            panic!("{why}");
        }
    }

    /// Logs event `e` of connection `h` of `node` and checks it against
    /// what came before: the first event is `Connected` (or `Closed`),
    /// `Connected` comes once, and nothing follows `Closed`. [`World`]
    /// feeds it every event it polls; tests may feed it others.
    pub fn record_event(
        &mut self,
        now: Instant,
        node: usize,
        h: ConnectionHandle,
        e: Event,
    ) -> Result<(), String> {
        let key = (node, h);
        let conn = self.live_ids.get(&key).copied().unwrap_or(0);
        self.log.push(Logged {
            at: now,
            node,
            handle: h,
            conn,
            event: e,
        });
        if let Some(at) = self.closed.get(&key) {
            return Err(format!(
                "node {node} {h:?}: {e:?} at {now:?} after Closed at {at:?}"
            ));
        }
        match e {
            Event::Connected if !self.connected.insert(key) => {
                return Err(format!("node {node} {h:?}: Connected twice"));
            }
            Event::Connected => {}
            Event::Closed(_) => {
                self.closed.insert(key, now);
            }
            _ if !self.connected.contains(&key) => {
                return Err(format!("node {node} {h:?}: {e:?} before Connected"));
            }
            Event::Writable(_) => {
                if let Some(k) = self.client_of(node, h)
                    && let Some(f) = self.flows[k].as_mut()
                {
                    f.writable[usize::from(node == SERVER)] += 1;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn client_of(&self, node: usize, h: ConnectionHandle) -> Option<usize> {
        if node == SERVER {
            self.server_handles.iter().position(|&s| s == Some(h))
        } else {
            (self.client_handles[node - 1] == h).then_some(node - 1)
        }
    }

    /// The invariants that must hold after every step (see the module
    /// documentation); panics on a violation.
    pub fn check_invariants(&self) {
        if let Some(why) = self.violation() {
            panic!("{why}");
        }
    }

    /// The first invariant that does not hold now, if any.
    pub fn violation(&self) -> Option<String> {
        let now = self.net.now;
        if self.net.stats.pn_violations != 0 {
            return Some(format!(
                "at {now:?}: {} data packets did not carry the next packet number of their key (a nonce reused or skipped)",
                self.net.stats.pn_violations
            ));
        }
        for node in 0..=self.clients.len() {
            let ep = self.endpoint(node);
            let limit = ep.ep.config().max_connections;
            if ep.ep.len() > limit {
                return Some(format!(
                    "node {node} at {now:?}: {} connections, more than its limit of {limit}",
                    ep.ep.len()
                ));
            }
            for h in ep.ep.handles() {
                let conn = ep.ep.connection(h).expect("listed handle");
                let channels = self
                    .client_of(node, h)
                    .and_then(|k| self.flows[k].as_ref())
                    .map_or(self.config.max_channels, |f| f.channels);
                let bound = channels as usize * self.memory.0 + self.memory.1;
                if conn.buffer_bytes() > bound {
                    return Some(format!(
                        "node {node} {h:?} at {now:?}: {} buffer bytes, more than the {bound} the windows allow",
                        conn.buffer_bytes()
                    ));
                }
            }
        }
        for (k, f) in self.flows.iter().enumerate() {
            let Some(f) = f else { continue };
            // What a sender accepted and the receiving application has not
            // read sits in the sender's buffer or the receiver's window.
            let w = u64::from(self.config.channel_window);
            let bound = u64::from(f.channels) * 2 * w;
            for side in 0..2 {
                let pending = f.accepted_bytes[side] - f.read_bytes[1 - side];
                if pending > bound {
                    return Some(format!(
                        "client {k} side {side} at {now:?}: {pending} bytes accepted and unread, more than {bound}"
                    ));
                }
            }
        }
        None
    }

    /// The server loses all its state, as if its process restarted: a new
    /// endpoint with the same configuration, key and address, and fresh
    /// randomness from `seed`. Its connections vanish without an event.
    pub fn restart_server(&mut self, seed: u64) {
        let ep = Endpoint::new(self.server_config.clone());
        self.server = SimEndpoint::new(ep, self.server.addr, seed);
        for s in self.server_handles.iter_mut() {
            *s = None;
        }
        self.live_ids.retain(|&(n, _), _| n != SERVER);
        self.connected.retain(|&(n, _)| n != SERVER);
        self.closed.retain(|&(n, _), _| n != SERVER);
    }

    /// Whether client `k` and the server both report `Connected`.
    pub fn connected(&self, k: usize) -> bool {
        self.connected.contains(&(k + 1, self.client_handles[k]))
            && self.server_handles[k].is_some_and(|h| self.connected.contains(&(SERVER, h)))
    }

    /// Whether both of client `k`'s connection ends reported `Closed`.
    pub fn both_closed(&self, k: usize) -> bool {
        Self::ending(&self.client_events(k)).is_some()
            && Self::ending(&self.server_events(k)).is_some()
    }
}

/// The public key of a private key, for tests that build credentials.
pub fn public_key(private: &[u8; 32]) -> [u8; 32] {
    RustCrypto.x25519_base(private)
}
