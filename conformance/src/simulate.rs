//! `simulate`: one client and one server exchange messages of random sizes
//! on several channels in both directions through the simulator, and every
//! message is checked for exactly-once, in-order, intact delivery.

use crate::sim::{Link, Net, NetStats, Node, SimEndpoint, addr};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use std::time::Duration;
use tern::config::Config;
use tern::connection::{Credentials, SendError, Stats};
use tern::crypto::{CryptoProvider, RustCrypto};
use tern::endpoint::{BoxSlots, ConnectionHandle, Endpoint, EndpointConfig, Slots};
use tern::storage::{ByteStore, HeapBytes};
use tern::{Connection, Event};

/// Which configuration preset both sides use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// [`Config::constrained`] with fixed buffers.
    Constrained,
    /// [`Config::service`] with heap buffers.
    Service,
}

/// What to simulate.
#[derive(Clone, Debug)]
pub struct Options {
    /// Seed for the network, the endpoints and the messages.
    pub seed: u64,
    /// The link.
    pub link: Link,
    /// Messages each side sends.
    pub messages: usize,
    /// Largest message size; sizes are uniform in `[9, size]`.
    pub size: usize,
    /// Preset.
    pub profile: Profile,
    /// Give up after this much virtual time.
    pub time_limit: Duration,
}

/// What happened.
#[derive(Clone, Debug)]
pub struct Report {
    /// Messages both sides were to deliver.
    pub expected: usize,
    /// Messages delivered intact, in order, once.
    pub delivered: usize,
    /// Messages delivered more than once.
    pub duplicated: usize,
    /// Messages never delivered, or delivered after a later one.
    pub lost: usize,
    /// Messages whose bytes differed from what was sent.
    pub corrupted: usize,
    /// Whether every channel's order held.
    pub in_order: bool,
    /// Virtual time taken.
    pub elapsed: Duration,
    /// Network counters.
    pub net: NetStats,
    /// Client connection statistics at the end.
    pub client: Option<Stats>,
    /// Server connection statistics at the end.
    pub server: Option<Stats>,
    /// Both sides saw the connection close cleanly.
    pub closed_cleanly: bool,
    /// How each side's connection ended, if it did.
    pub endings: [Option<tern::ConnectionError>; 2],
}

impl Report {
    /// The summary line the CLI prints.
    pub fn line(&self) -> String {
        format!(
            "delivered {}/{} in order, {} duplicated, {} lost",
            self.delivered, self.expected, self.duplicated, self.lost
        )
    }

    /// Whether the run met every guarantee.
    pub fn ok(&self) -> bool {
        self.delivered == self.expected
            && self.duplicated == 0
            && self.lost == 0
            && self.corrupted == 0
            && self.in_order
            && self.net.pn_violations == 0
    }
}

/// Fixed keys derived from the seed.
pub fn keys(seed: u64) -> ([u8; 32], [u8; 32], [u8; 32]) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6b65_7973);
    let mut server = [0u8; 32];
    let mut client = [0u8; 32];
    rng.fill_bytes(&mut server);
    rng.fill_bytes(&mut client);
    let server_pub = RustCrypto.x25519_base(&server);
    (server, server_pub, client)
}

/// The bytes of message `seq` on `channel` from `dir` (0 client, 1 server).
pub fn message(seed: u64, dir: u8, channel: u32, seq: u32, max: usize) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(
        seed ^ (u64::from(dir) << 56) ^ (u64::from(channel) << 32) ^ u64::from(seq),
    );
    let max = max.max(9);
    let len = 9 + (rng.next_u64() as usize % (max - 8));
    let mut m = vec![0u8; len];
    m[0] = dir;
    m[1..5].copy_from_slice(&channel.to_be_bytes());
    m[5..9].copy_from_slice(&seq.to_be_bytes());
    rng.fill_bytes(&mut m[9..]);
    m
}

struct Side {
    dir: u8,
    /// Next message to send per channel.
    next_send: Vec<u32>,
    /// Next expected per channel (from the peer).
    next_recv: Vec<u32>,
    sent: usize,
}

/// Runs a simulation.
pub fn run(opts: &Options) -> Report {
    match opts.profile {
        Profile::Service => run_with::<HeapBytes, 64, 256>(opts, Config::service()),
        Profile::Constrained => {
            run_with::<tern::ConstrainedBytes, 2, 16>(opts, Config::constrained())
        }
    }
}

fn run_with<B: ByteStore, const CH: usize, const SENT: usize>(
    opts: &Options,
    config: Config,
) -> Report
where
    BoxSlots<Connection<B, CH, SENT>>: Slots<Connection<B, CH, SENT>>,
{
    let (server_key, server_pub, client_key) = keys(opts.seed);
    let channels = config.max_channels.min(4);
    let mut scfg = EndpointConfig::server(config.clone(), server_key);
    scfg.max_connections = 8;
    let mut server = SimEndpoint::new(
        Endpoint::<B, CH, SENT, BoxSlots<_>>::new(scfg),
        addr(4433),
        opts.seed ^ 1,
    );
    let mut client = SimEndpoint::new(
        Endpoint::<B, CH, SENT, BoxSlots<_>>::new(EndpointConfig::client(config)),
        addr(5000),
        opts.seed ^ 2,
    );
    let mut net = Net::new(opts.link, opts.seed);
    let creds = Credentials {
        private_key: Some(client_key),
        remote_public_key: Some(server_pub),
        psk: None,
    };
    let ch = client
        .ep
        .connect(net.now, server.addr, &creds, &mut client.rng)
        .expect("connect");

    let per_side = opts.messages;
    let mut sides = [
        Side {
            dir: 0,
            next_send: vec![0; channels as usize],
            next_recv: vec![0; channels as usize],
            sent: 0,
        },
        Side {
            dir: 1,
            next_send: vec![0; channels as usize],
            next_recv: vec![0; channels as usize],
            sent: 0,
        },
    ];
    let mut delivered = 0usize;
    let mut duplicated = 0usize;
    let mut lost = 0usize;
    let mut corrupted = 0usize;
    let mut in_order = true;
    let mut server_handle: Option<ConnectionHandle> = None;
    let mut buf = vec![0u8; 70_000];
    let deadline = net.now + opts.time_limit;
    let mut closing = false;
    let (mut client_closed, mut server_closed) = (false, false);

    // The last statistics of each side: an endpoint frees a connection
    // once its final event is polled.
    let (mut client_stats, mut server_stats) = (None, None);
    while net.now < deadline {
        if let Some(c) = client.ep.connection(ch) {
            client_stats = Some(c.stats());
        }
        if let Some(c) = server_handle.and_then(|h| server.ep.connection(h)) {
            server_stats = Some(c.stats());
        }
        // Applications: events, receive, send.
        for (h, e) in client.drain_events().to_vec() {
            if h == ch && matches!(e, Event::Closed(_)) {
                client_closed = true;
            }
        }
        for (h, e) in server.drain_events().to_vec() {
            if matches!(e, Event::Connected) {
                server_handle = Some(h);
            }
            if Some(h) == server_handle && matches!(e, Event::Closed(_)) {
                server_closed = true;
            }
        }
        for (side, ep, h) in [
            (0usize, &mut client, Some(ch)),
            (1, &mut server, server_handle),
        ] {
            let Some(h) = h else { continue };
            let Some(conn) = ep.ep.connection_mut(h) else {
                continue;
            };
            // Receive everything ready.
            loop {
                match conn.recv_any(&mut buf) {
                    Ok(Some((chan, len))) => {
                        let m = &buf[..len];
                        let peer_dir = 1 - sides[side].dir;
                        if len < 9 || m[0] != peer_dir {
                            corrupted += 1;
                            continue;
                        }
                        let c = u32::from_be_bytes([m[1], m[2], m[3], m[4]]);
                        let seq = u32::from_be_bytes([m[5], m[6], m[7], m[8]]);
                        if c != chan || c >= channels {
                            corrupted += 1;
                            continue;
                        }
                        let expect = &mut sides[side].next_recv[c as usize];
                        if seq < *expect {
                            duplicated += 1;
                        } else {
                            if seq > *expect {
                                in_order = false;
                                lost += (seq - *expect) as usize;
                            }
                            *expect = seq + 1;
                            if message(opts.seed, peer_dir, c, seq, opts.size) != m {
                                corrupted += 1;
                            } else {
                                delivered += 1;
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(needed) => panic!("receive buffer too small: {needed}"),
                }
            }
            if !conn.is_established() {
                continue;
            }
            // Send until the connection pushes back, spreading channels.
            let s = &mut sides[side];
            'send: while s.sent < per_side {
                let c = (s.sent % channels as usize) as u32;
                let seq = s.next_send[c as usize];
                let m = message(opts.seed, s.dir, c, seq, opts.size);
                match conn.send(c, &m) {
                    Ok(()) => {
                        s.next_send[c as usize] += 1;
                        s.sent += 1;
                    }
                    Err(SendError::WouldBlock(_)) => break 'send,
                    Err(e) => panic!("send: {e}"),
                }
            }
        }
        let done = delivered + duplicated + lost + corrupted >= 2 * per_side;
        if done && !closing {
            closing = true;
            if let Some(c) = client.ep.connection_mut(ch) {
                c.close(net.now, 0, "done");
            }
        }
        if std::env::var("TERN_DUMP").is_ok() && (client_closed || server_closed) && !closing {
            break;
        }
        if closing && client_closed && server_closed {
            break;
        }
        let nodes: &mut [&mut dyn Node] = &mut [&mut server, &mut client];
        if !net.step(nodes, Duration::from_secs(1)) {
            break;
        }
    }
    if std::env::var("TERN_DUMP").is_ok() {
        if let Some(c) = client.ep.connection(ch) {
            eprintln!("{}", c.debug_dump());
        }
        if let Some(c) = server_handle.and_then(|h| server.ep.connection(h)) {
            eprintln!("{}", c.debug_dump());
        }
    }
    let elapsed = net
        .now
        .saturating_duration_since(tern::Instant::from_millis(1));
    if let Some(c) = client.ep.connection(ch) {
        client_stats = Some(c.stats());
    }
    if let Some(c) = server_handle.and_then(|h| server.ep.connection(h)) {
        server_stats = Some(c.stats());
    }
    // Anything never delivered is lost.
    let accounted = delivered + lost + corrupted;
    if accounted < 2 * per_side {
        lost += 2 * per_side - accounted;
    }
    let clean = |events: &[(ConnectionHandle, Event)]| {
        events.iter().any(|(_, e)| {
            matches!(
                e,
                Event::Closed(tern::ConnectionError::LocallyClosed { code: 0 })
                    | Event::Closed(tern::ConnectionError::PeerClosed { code: 0, .. })
            )
        })
    };
    Report {
        expected: 2 * per_side,
        delivered,
        duplicated,
        lost,
        corrupted,
        in_order,
        elapsed,
        net: net.stats,
        client: client_stats,
        server: server_stats,
        closed_cleanly: clean(&client.events) && clean(&server.events),
        endings: [ending(&client.events), ending(&server.events)],
    }
}

fn ending(events: &[(ConnectionHandle, Event)]) -> Option<tern::ConnectionError> {
    events.iter().find_map(|(_, e)| match e {
        Event::Closed(why) => Some(*why),
        _ => None,
    })
}
