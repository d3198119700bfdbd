//! How an endpoint's poll cycle scales with idle connections: one busy
//! connection exchanging a message per cycle, alone and beside `IDLE`
//! established idle connections on the same client and server endpoints.
//! A cycle is what a driver does per wake-up: the application sends
//! through `connection_mut`, then `poll_transmit`, `handle`, `poll_event`,
//! `poll_timeout` and `handle_timeout` on both endpoints, in memory.
//!
//! `cargo run --release -p tern-bench --example endpoint_scale [IDLE] [CYCLES]`
//! prints the time per cycle for both and their ratio (near 1 when the
//! cost follows the work, not the number of connections). Under
//! callgrind, `IDLE CYCLES only` runs only the busy-plus-idle case: the
//! instructions of a run with `CYCLES` minus one with 0, over `CYCLES`,
//! are the instructions per cycle.
//!
//! Measured when the endpoint stopped scanning every slot (callgrind,
//! 1,000 cycles, release): with 1,000 idle connections a cycle took
//! 1,611,000 instructions before and 44,600 after (36 times fewer); the
//! busy connection alone, 37,000 before and 40,000 after (the cost of the
//! bookkeeping). Wall time, same run: 627 µs against 26 µs per cycle.

#[path = "../src/rng.rs"]
#[allow(dead_code)]
mod rng;

use rng::FastRng;
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant as Clock};
use tern::config::{Config, HandshakePattern};
use tern::connection::Credentials;
use tern::endpoint::{ConnectionHandle, EndpointConfig};
use tern::{Instant, ServiceEndpoint};

fn client_addr() -> SocketAddr {
    "10.0.0.2:5000".parse().unwrap()
}

fn server_addr() -> SocketAddr {
    "10.0.0.1:4433".parse().unwrap()
}

struct Pair {
    client: ServiceEndpoint,
    server: ServiceEndpoint,
    busy: ConnectionHandle,
    now: Instant,
    rng: FastRng,
    buf: Vec<u8>,
}

impl Pair {
    fn new(idle: usize) -> Pair {
        let config = Config {
            pattern: HandshakePattern::NN,
            ..Config::service()
        };
        let mut scfg = EndpointConfig::server(config.clone(), [7; 32]);
        scfg.max_connections = idle + 1;
        scfg.handshake_burst = idle as u32 + 1;
        let mut ccfg = EndpointConfig::client(config);
        ccfg.max_connections = idle + 1;
        let mut p = Pair {
            client: ServiceEndpoint::new(ccfg),
            server: ServiceEndpoint::new(scfg),
            busy: ConnectionHandle(0),
            now: Instant::from_millis(1),
            rng: FastRng::seeded(1),
            buf: vec![0; 2048],
        };
        for _ in 0..=idle {
            let creds = Credentials::default();
            p.busy = p
                .client
                .connect(p.now, server_addr(), &creds, &mut p.rng)
                .unwrap();
        }
        for _ in 0..64 {
            p.cycle(false);
        }
        assert_eq!(p.server.len(), idle + 1);
        p
    }

    /// One driver wake-up; returns the messages the server read.
    fn cycle(&mut self, send: bool) -> usize {
        self.now = self.now + Duration::from_millis(1);
        let now = self.now;
        if send && let Some(c) = self.client.connection_mut(self.busy) {
            c.send(0, &[0x5a; 64]).unwrap();
        }
        while let Some((_, t)) = self.client.poll_transmit(now, &mut self.buf).unwrap() {
            let _ = self
                .server
                .handle(now, client_addr(), &mut self.buf[..t.len], &mut self.rng);
        }
        let mut read = 0;
        while let Some((h, _)) = self.server.poll_event() {
            let c = self.server.connection_mut(h).unwrap();
            let mut m = [0u8; 128];
            while let Ok(Some(_)) = c.recv(0, &mut m) {
                read += 1;
            }
        }
        while let Some((_, t)) = self.server.poll_transmit(now, &mut self.buf).unwrap() {
            let _ = self
                .client
                .handle(now, server_addr(), &mut self.buf[..t.len], &mut self.rng);
        }
        while self.client.poll_event().is_some() {}
        for ep in [&mut self.client, &mut self.server] {
            if ep.poll_timeout().is_some_and(|t| t <= now) {
                ep.handle_timeout(now);
            }
        }
        read
    }
}

fn per_cycle(idle: usize, cycles: u32) -> (Duration, usize) {
    let mut p = Pair::new(idle);
    let start = Clock::now();
    let mut read = 0;
    for _ in 0..cycles {
        read += black_box(p.cycle(true));
    }
    (start.elapsed() / cycles.max(1), read)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let idle: usize = args.get(1).map_or(1000, |a| a.parse().unwrap());
    let cycles: u32 = args.get(2).map_or(20_000, |a| a.parse().unwrap());
    if args.get(3).is_some_and(|a| a == "only") {
        let (_, read) = per_cycle(idle, cycles);
        println!("{idle} idle, {cycles} cycles, {read} messages");
        return;
    }
    let (alone, r1) = per_cycle(0, cycles);
    let (crowd, r2) = per_cycle(idle, cycles);
    assert!(r1 >= cycles as usize * 9 / 10 && r2 >= cycles as usize * 9 / 10);
    println!(
        "endpoint-scale: busy+{idle}idle={:.2} us/cycle, busy-alone={:.2} us/cycle, ratio={:.2}",
        crowd.as_secs_f64() * 1e6,
        alone.as_secs_f64() * 1e6,
        alone.as_secs_f64() / crowd.as_secs_f64()
    );
}
