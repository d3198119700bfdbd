//! What a flood of first messages costs a server endpoint beside few or
//! many connections.
//!
//! `cargo run --release -p tern --features alloc --example initiation_flood`
//!
//! Fills a server endpoint with `n` accepted connections (16, then 4,096),
//! then hands it 100,000 first messages with fresh sender ids (refused: no
//! handshake token left) and prints the time per message. For comparison,
//! it also times the lookup the endpoint used to do for each of them (a
//! scan of every connection for the same peer address and sender id),
//! through the public API. With the keyed hash index the cost per message
//! should not grow with `n`; the scan grows linearly.
//!
//! Measured (release, shared 2-core machine, two runs): 93–115 ns per first
//! message beside 16 connections, 94–117 ns beside 4,096; the old scan
//! alone took 8–13 ns and 23,900–24,800 ns (about 6 ns a connection), so a
//! flood of 100,000 first messages cost the server about 2.4 s of CPU at
//! 4,096 connections, and now about 10 ms.

use core::net::SocketAddr;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use std::hint::black_box;
use std::time::Instant as Clock;
use tern::config::{Config, HandshakePattern};
use tern::connection::Credentials;
use tern::endpoint::{BoxSlots, Endpoint, EndpointConfig};
use tern::packet::{HandshakeHeader, HandshakeKind, LONG_HEADER_LEN, VERSION};
use tern::{ConstrainedBytes, ConstrainedConnection, Instant};

type Ep = Endpoint<ConstrainedBytes, 2, 8, BoxSlots<ConstrainedConnection>>;

const FLOOD: u32 = 100_000;

fn config() -> Config {
    Config {
        pattern: HandshakePattern::NN,
        ..Config::constrained()
    }
}

fn server_addr() -> SocketAddr {
    "10.0.0.1:4433".parse().unwrap()
}

fn client_addr(i: usize) -> SocketAddr {
    SocketAddr::from(([10, 1, (i >> 8) as u8, i as u8], 5000))
}

/// A server endpoint holding `n` connections, each from its own address.
fn server(n: usize, rng: &mut ChaCha20Rng) -> Ep {
    let mut cfg = EndpointConfig::server(config(), [7; 32]);
    cfg.max_connections = n;
    cfg.handshake_burst = n as u32;
    let mut ep = Ep::new(cfg);
    let now = Instant::from_millis(1);
    let mut buf = [0u8; 1500];
    for i in 0..n {
        let mut c = ConstrainedConnection::connect(
            config(),
            &Credentials::default(),
            now,
            i as u32 + 1,
            server_addr(),
            rng,
        )
        .unwrap();
        let t = c.poll_transmit(now, &mut buf).unwrap().unwrap();
        ep.handle(now, client_addr(i), &mut buf[..t.len], rng)
            .unwrap();
    }
    while ep.poll_transmit(now, &mut buf).unwrap().is_some() {}
    while ep.poll_event().is_some() {}
    assert_eq!(ep.len(), n);
    ep
}

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

fn main() {
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let flood_from: SocketAddr = "192.0.2.1:9999".parse().unwrap();
    let now = Instant::from_millis(1);
    println!("connections  ns/first message (index)  ns/scan (old lookup)");
    for n in [16, 4096] {
        let mut ep = server(n, &mut rng);
        let start = Clock::now();
        for k in 0..FLOOD {
            let mut pkt = initiation(0x8000_0000 | k);
            let _ = black_box(ep.handle(now, flood_from, &mut pkt, &mut rng));
        }
        let handled = start.elapsed().as_nanos() as f64 / f64::from(FLOOD);
        assert_eq!(ep.len(), n);
        let scans = FLOOD / 10;
        let start = Clock::now();
        for k in 0..scans {
            let id = black_box(0x8000_0000 | k);
            let found = ep.handles().any(|h| {
                ep.connection(h)
                    .is_some_and(|c| c.remote_id() == id && c.peer_addr() == flood_from)
            });
            black_box(found);
        }
        let scanned = start.elapsed().as_nanos() as f64 / f64::from(scans);
        println!("{n:>11}  {handled:>24.0}  {scanned:>20.0}");
    }
}
