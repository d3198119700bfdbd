//! The `connection` target: an established client/server pair of
//! [`ConstrainedConnection`]s whose server is fed arbitrary datagrams,
//! interleaved with genuine traffic, lost and reordered packets, and
//! packets forged with the session keys.
//!
//! Every input starts from the same pair: `Config::constrained()` with
//! pattern NN (the cheapest handshake: four X25519 operations), fixed
//! session ids and deterministic RNGs, so the handshake, the keys and every
//! genuine packet are the same on every run. (A connection cannot be cloned,
//! deliberately: a copy would reuse nonces. So the pair is built per input.)
//!
//! Input layout: operations until the input ends, each an op byte (op % 12)
//! and its operands; missing bytes read as zero.
//!
//! ```text
//! 0  garbage datagram       from u8, len u16, bytes
//! 1  garbage data packet    flags u8 (bits 0-1 pn length - 1, bit 2 key
//!                           phase), receiver u8 (see below), pn u32,
//!                           len u16, body bytes: a well-formed short header
//! 2  garbage handshake      kind u8, version u8, pattern u8, suite u8,
//!                           index u8, receiver u8, sender u8, len u16, bytes
//! 3  mutated replay         which u8, position u16, xor u8, cut u16: a
//!                           genuine client packet the server already took,
//!                           with one byte changed and cut to `cut` bytes if
//!                           `cut` is shorter (xor 0 and no cut: a replay)
//! 4  client sends message   channel u8, len u16
//! 5  server sends message   channel u8, len u16
//! 6  client sends datagram  len u16
//! 7  time passes            ms u16 (up to 4 s), force u8: call
//!                           handle_timeout even before the deadline
//! 8  lossy delivery         mask u16: the next pump holds back the client
//!                           packets whose bit is set (up to 16)
//! 9  late delivery          which u8: a held-back genuine packet arrives
//! 10 forged, raw            pn u16, pn length u8, from u8, len u16, the
//!                           plaintext: encrypted with the client's real key
//! 11 forged, frames         pn u16, pn length u8, from u8, count u8, then
//!                           frames built from operands (see `frames`)
//! ```
//!
//! `from` picks the source address: 1 a stranger, else the client's.
//! `receiver` picks the session id: 0 the server's, 1 zero, 2 the client's,
//! 3 the next u32.
//!
//! After every operation both sides poll until quiet, and every message or
//! datagram that arrives is checked against what was sent.
//!
//! Invariants, always: nothing panics; `handle` counts every datagram in
//! `rx_packets` and every drop, under its reason, in `dropped`; no data
//! packet without the session keys is ever accepted (garbage, mutations,
//! replays all return `Err`; a handshake packet naming the session and the
//! client passes for a retransmission of the peer's, which is answered to
//! the peer); `poll_transmit` always returns `None` eventually (never an
//! endless stream of packets); `poll_timeout` gives a deadline while the
//! connection lives; a probe timeout that fires puts a packet on the wire;
//! the timers never spin.
//!
//! Unless the input forged packets with the session keys (which may
//! legitimately inject data or close the connection): garbage never closes
//! the server nor moves its peer address; every genuine message arrives
//! once, intact and in order; genuine datagrams arrive intact and at most
//! once (reordered with their packets, or dropped); and at the end a fresh
//! message each way and a datagram still arrive: the session survived the
//! garbage. Lost or late genuine packets (operations 8 and 9) may make a
//! connection end by its idle or delivery timeout, legitimately; then only
//! the first group of invariants applies.
//!
//! `TERN_FUZZ_TRACE=1` prints every operation and packet, for replaying a
//! crash with `cargo run --release --example replay -- connection <file>`.

use crate::{Input, Output, TestRng};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;
use tern::config::{Config, HandshakePattern};
use tern::connection::params::{MAX_PARAMS_LEN, Params};
use tern::connection::{ConnectionError, Credentials, DropReason, SendError, code};
use tern::crypto::RustCrypto;
use tern::frame::{CloseFrame, Frame, MessageFrame, encode_ack};
use tern::noise::{Builder, CipherState, NoiseParams};
use tern::packet::{HandshakeHeader, HandshakeKind, LONG_HEADER_LEN, ShortHeader, VERSION};
use tern::{ConstrainedConnection, Event, Instant};

/// The client's session id.
pub const CLIENT_ID: u32 = 0x1111_1111;
/// The server's session id.
pub const SERVER_ID: u32 = 0x2222_2222;
const CLIENT_SEED: u64 = 0xc11e;
const SERVER_SEED: u64 = 0x5e4e;
const BUF: usize = 1500;
/// Genuine client packets kept for the replay operation.
const CAPTURED: usize = 32;
/// Held-back packets kept for late delivery.
const HELD: usize = 16;
/// Rounds of a pump before the exchange must have gone quiet.
const QUIET_ROUNDS: usize = 64;
/// Packets one `poll_transmit` loop may produce before it counts as endless.
const MAX_BURST: usize = 256;
/// Virtual time the final checks may take: well beyond the constrained
/// preset's idle and delivery timeouts (120 s), and long enough for probe
/// timeouts backed off after an RTT inflated by late packets.
const DRIVE_LIMIT: Duration = Duration::from_secs(1800);

fn client_addr() -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 2], 5000))
}

fn server_addr() -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], 4433))
}

fn stranger_addr() -> SocketAddr {
    SocketAddr::from(([10, 6, 6, 6], 666))
}

/// Both sides' configuration: the constrained preset with pattern NN.
pub fn config() -> Config {
    Config {
        pattern: HandshakePattern::NN,
        ..Config::constrained()
    }
}

/// The bytes of genuine message `seq`, `len` long: its sequence number,
/// then a pattern derived from it, so a mix-up or a corruption shows.
fn message(seq: u32, len: usize) -> Vec<u8> {
    let s = seq.to_be_bytes();
    (0..len)
        .map(|i| {
            if i < 4 {
                s[i]
            } else {
                (seq as u8).wrapping_mul(31).wrapping_add(i as u8)
            }
        })
        .collect()
}

/// A fresh client (its first datagram polled) and the server that accepted
/// it, both at `now`, plus that datagram.
fn handshake_start(now: Instant) -> (ConstrainedConnection, ConstrainedConnection, Vec<u8>) {
    let creds = Credentials::default();
    let mut client = ConstrainedConnection::connect(
        config(),
        &creds,
        now,
        CLIENT_ID,
        server_addr(),
        &mut TestRng(CLIENT_SEED),
    )
    .expect("connect");
    let mut buf = [0u8; BUF];
    let t = client
        .poll_transmit(now, &mut buf)
        .expect("poll_transmit")
        .expect("first handshake message");
    let first = buf[..t.len].to_vec();
    let server = ConstrainedConnection::accept(
        config(),
        &creds,
        now,
        SERVER_ID,
        client_addr(),
        &first,
        &mut TestRng(SERVER_SEED),
    )
    .expect("accept");
    (client, server, first)
}

/// A copy of the client's sending key, made by running the same
/// deterministic NN handshake with `tern::noise` directly: what an attacker
/// who stole the client's key could send. Built once.
fn forger() -> CipherState<RustCrypto> {
    let now = Instant::from_millis(1);
    let (_client, mut server, first) = handshake_start(now);
    let c = config();
    let name = format!(
        "Noise_{}_25519_{}_{}",
        c.pattern.noise_name(),
        c.suite.cipher.name(),
        c.suite.hash.name()
    );
    let params: NoiseParams = name.parse().expect("protocol name");
    let prologue = [b't', b'e', b'r', b'n', VERSION];
    let mut hs = Builder::new(params)
        .prologue(&prologue)
        .build_initiator(&mut TestRng(CLIENT_SEED))
        .expect("forger");
    let mut payload = [0u8; MAX_PARAMS_LEN];
    let plen = Params::from_config(&c).encode(&mut payload);
    let mut msg = [0u8; 256];
    let n = hs.write_message(&payload[..plen], &mut msg).expect("msg 0");
    assert_eq!(
        &msg[..n],
        &first[LONG_HEADER_LEN..],
        "the forger's first message differs from the client's: keys would differ"
    );
    let mut buf = [0u8; BUF];
    let t = server
        .poll_transmit(now, &mut buf)
        .expect("poll_transmit")
        .expect("server's handshake answer");
    let mut out = [0u8; 256];
    hs.read_message(&buf[LONG_HEADER_LEN..t.len], &mut out)
        .expect("msg 1");
    hs.into_transport().expect("split").into_cipher_states().0
}

thread_local! {
    static FORGER: RefCell<Option<CipherState<RustCrypto>>> = const { RefCell::new(None) };
}

/// Where a datagram injected at the server came from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// Made up, mutated or replayed: must be refused.
    Unauthenticated,
    /// A genuine packet delivered late: may be accepted once.
    Late,
    /// Encrypted with the session key.
    Forged,
}

struct World {
    client: Box<ConstrainedConnection>,
    server: Box<ConstrainedConnection>,
    now: Instant,
    /// Genuine client packets the server accepted, for replays.
    captured: Vec<Vec<u8>>,
    /// Genuine client packets held back by a lossy pump.
    held: Vec<Vec<u8>>,
    /// Bits of the next pump's loss mask, lowest first.
    loss: u16,
    /// Messages in flight per channel, in order: to the server, to the
    /// client.
    to_server: [VecDeque<Vec<u8>>; 2],
    to_client: [VecDeque<Vec<u8>>; 2],
    /// Datagrams sent to the server and not (yet) received.
    dgrams: VecDeque<Vec<u8>>,
    seq: u32,
    /// Packets with the session keys were injected: correctness checks off.
    forged: bool,
    /// Genuine packets were lost or delivered late.
    impaired: bool,
    /// After impairment, the connection timed out (a legitimate end).
    ended: bool,
    /// A probe timeout fired on (client, server): the next pump must send.
    probe_due: [bool; 2],
}

impl World {
    /// The established pair.
    fn new() -> World {
        let now = Instant::from_millis(1);
        let (client, server, _) = handshake_start(now);
        let mut w = World {
            client: Box::new(client),
            server: Box::new(server),
            now,
            captured: Vec::new(),
            held: Vec::new(),
            loss: 0,
            to_server: Default::default(),
            to_client: Default::default(),
            dgrams: VecDeque::new(),
            seq: 0,
            forged: false,
            impaired: false,
            ended: false,
            probe_due: [false; 2],
        };
        w.pump();
        assert!(w.client.is_established() && w.server.is_established());
        // Nothing retained from the handshake: the captured packets are
        // data packets only.
        w.captured.clear();
        w
    }

    /// Whether the session may legitimately have been disturbed: forged
    /// packets, or a timeout after lost or late packets.
    fn lenient(&self) -> bool {
        self.forged || self.ended
    }

    /// Exchanges packets at the current time until both sides are quiet,
    /// then handles every event.
    fn pump(&mut self) {
        let mut buf = [0u8; BUF];
        // A fired probe timeout must put a packet on the wire.
        let probe_due = core::mem::take(&mut self.probe_due);
        let mut sent = [0usize; 2];
        for round in 0..QUIET_ROUNDS {
            let mut moved = false;
            let mut burst = 0;
            while let Some(t) = self
                .client
                .poll_transmit(self.now, &mut buf)
                .expect("client poll_transmit")
            {
                burst += 1;
                sent[0] += 1;
                assert!(burst < MAX_BURST, "client poll_transmit never ends");
                assert!(t.len <= usize::from(config().max_packet_size));
                assert_eq!(t.destination, server_addr());
                moved = true;
                let hold = self.loss & 1 != 0;
                self.loss >>= 1;
                let packet = buf[..t.len].to_vec();
                if tracing() {
                    eprintln!(
                        "  client -> server {} bytes {:02x?}{}",
                        t.len,
                        &buf[..8],
                        if hold { " held back" } else { "" }
                    );
                }
                if hold {
                    if self.held.len() < HELD {
                        self.held.push(packet);
                    }
                    continue;
                }
                let r = self
                    .server
                    .handle(self.now, client_addr(), &mut buf[..t.len]);
                if tracing() {
                    eprintln!("    -> {r:?}");
                }
                if !self.lenient() {
                    assert_eq!(r, Ok(()), "a genuine client packet was refused");
                }
                if r.is_ok() && packet[0] & 0x80 == 0 && self.captured.len() < CAPTURED {
                    self.captured.push(packet);
                }
            }
            burst = 0;
            while let Some(t) = self
                .server
                .poll_transmit(self.now, &mut buf)
                .expect("server poll_transmit")
            {
                burst += 1;
                sent[1] += 1;
                if tracing() && burst == MAX_BURST - 1 {
                    eprintln!("server:\n{}", self.server.debug_dump());
                }
                assert!(burst < MAX_BURST, "server poll_transmit never ends");
                assert!(t.len <= usize::from(config().max_packet_size));
                moved = true;
                if t.destination != client_addr() {
                    // Forged packets from a stranger moved the peer: the
                    // client does not see these.
                    assert!(self.forged, "server sends to {}", t.destination);
                    continue;
                }
                let r = self
                    .client
                    .handle(self.now, server_addr(), &mut buf[..t.len]);
                if tracing() {
                    eprintln!("  server -> client {} bytes: {r:?}", t.len);
                }
                if !self.lenient() {
                    assert_eq!(r, Ok(()), "a genuine server packet was refused");
                }
            }
            if round == 0 {
                for (side, due) in probe_due.into_iter().enumerate() {
                    assert!(
                        !due || sent[side] > 0,
                        "the {} PTO fired but no probe was sent",
                        ["client's", "server's"][side]
                    );
                }
            }
            self.events();
            if !moved {
                return;
            }
        }
        panic!("the exchange does not go quiet after {QUIET_ROUNDS} rounds");
    }

    /// Handles both sides' events, reading every message and datagram.
    fn events(&mut self) {
        let mut buf = [0u8; 2048];
        for to_server in [true, false] {
            loop {
                let conn = if to_server {
                    &mut self.server
                } else {
                    &mut self.client
                };
                let Some(e) = conn.poll_event() else { break };
                match e {
                    Event::Readable(ch) => loop {
                        let conn = if to_server {
                            &mut self.server
                        } else {
                            &mut self.client
                        };
                        match conn.recv(ch, &mut buf) {
                            Ok(Some(n)) => self.arrived(to_server, ch, &buf[..n]),
                            Ok(None) => break,
                            Err(needed) => panic!("recv wants {needed} bytes"),
                        }
                    },
                    Event::DatagramReceived => {
                        assert!(to_server, "nobody sends the client datagrams");
                        loop {
                            match self.server.recv_datagram(&mut buf) {
                                Ok(Some(n)) => self.datagram_arrived(&buf[..n]),
                                Ok(None) => break,
                                Err(needed) => panic!("recv_datagram wants {needed} bytes"),
                            }
                        }
                    }
                    Event::Closed(why) => {
                        let timeout = matches!(
                            why,
                            ConnectionError::IdleTimeout
                                | ConnectionError::DeliveryTimeout
                                | ConnectionError::PeerClosed {
                                    code: code::DELIVERY_TIMEOUT,
                                    ..
                                }
                        );
                        if self.impaired && timeout {
                            self.ended = true;
                        }
                        assert!(
                            self.lenient(),
                            "{} closed: {why:?}",
                            if to_server { "server" } else { "client" }
                        );
                    }
                    Event::Connected | Event::ChannelOpened(_) | Event::Writable(_) => {}
                }
            }
        }
    }

    fn arrived(&mut self, to_server: bool, ch: u32, msg: &[u8]) {
        if self.forged {
            return;
        }
        let queue = if to_server {
            &mut self.to_server
        } else {
            &mut self.to_client
        };
        let expected = queue
            .get_mut(ch as usize)
            .and_then(VecDeque::pop_front)
            .unwrap_or_else(|| panic!("unexpected message on channel {ch}: {msg:02x?}"));
        assert!(
            expected == msg,
            "channel {ch}: expected {} bytes {:02x?}, got {} bytes {:02x?}",
            expected.len(),
            &expected[..expected.len().min(8)],
            msg.len(),
            &msg[..msg.len().min(8)]
        );
    }

    fn datagram_arrived(&mut self, d: &[u8]) {
        if self.forged {
            return;
        }
        // Datagrams may be dropped, or reordered with the packets that
        // carry them, but never duplicated or changed (each is unique).
        match self.dgrams.iter().position(|x| x == d) {
            Some(i) => {
                self.dgrams.remove(i);
            }
            None => panic!("unexpected datagram {d:02x?}"),
        }
    }

    /// Feeds one datagram to the server and checks what `handle` reports
    /// and counts.
    fn inject(&mut self, from: SocketAddr, packet: &mut [u8], origin: Origin) {
        let before = self.server.stats();
        let peer = self.server.peer_addr();
        // `handle` decrypts in place: keep the header for the checks.
        let head = packet[..packet.len().min(16)].to_vec();
        let r = self.server.handle(self.now, from, packet);
        if tracing() {
            eprintln!(
                "  injected {} bytes {:02x?} from {from}: {r:?}",
                packet.len(),
                &head[..head.len().min(8)]
            );
        }
        let after = self.server.stats();
        assert_eq!(after.rx_packets, before.rx_packets + 1);
        assert_eq!(after.rx_bytes, before.rx_bytes + packet.len() as u64);
        let mut counted = before.dropped;
        if let Err(reason) = r {
            counted.count(reason);
        }
        assert_eq!(after.dropped, counted, "drop {r:?} miscounted");
        match origin {
            Origin::Unauthenticated => {
                // A handshake packet naming this session and the client as
                // its sender passes for a retransmission of the peer's (the
                // answer goes to the peer, not to `from`); nothing else
                // without the keys is accepted.
                let retransmission = HandshakeHeader::decode(&head).is_ok_and(|(h, _)| {
                    h.kind == HandshakeKind::Handshake
                        && (h.receiver == SERVER_ID || h.receiver == 0)
                        && h.sender == CLIENT_ID
                });
                assert!(
                    r.is_err() || retransmission,
                    "an unauthenticated datagram was accepted: {} bytes {head:02x?}",
                    packet.len()
                );
            }
            Origin::Late => {
                assert!(
                    matches!(r, Ok(()) | Err(DropReason::Replay)) || self.lenient(),
                    "a late genuine packet: {r:?}"
                );
            }
            Origin::Forged => {}
        }
        if !self.lenient() {
            assert!(self.server.is_established(), "garbage closed the server");
            assert_eq!(self.server.peer_addr(), peer, "garbage moved the peer");
        }
        if !self.server.is_closed() {
            assert!(self.server.poll_timeout().is_some(), "no deadline");
        }
    }

    /// Calls `handle_timeout` on one side (0 client, 1 server), noting
    /// whether its probe timeout fired.
    fn timeout(&mut self, side: usize) {
        let conn = if side == 0 {
            &mut self.client
        } else {
            &mut self.server
        };
        let probes = conn.stats().probe_timeouts;
        conn.handle_timeout(self.now);
        if conn.stats().probe_timeouts > probes && conn.is_established() {
            self.probe_due[side] = true;
        }
    }

    /// Lets time pass and handles the deadlines that passed.
    fn advance(&mut self, d: Duration, force: bool) {
        self.now = self.now + d;
        for side in 0..2 {
            let conn = if side == 0 {
                &self.client
            } else {
                &self.server
            };
            if force || conn.poll_timeout().is_some_and(|t| t <= self.now) {
                self.timeout(side);
            }
        }
    }

    /// Runs timers and the network until `done`, within `DRIVE_LIMIT` of
    /// virtual time (longer than the idle and delivery timeouts, so a
    /// connection that cannot deliver has ended by then). Returns whether
    /// `done` became true.
    fn drive(&mut self, done: impl Fn(&mut World) -> bool) -> bool {
        self.drive_for(DRIVE_LIMIT, done)
    }

    /// [`drive`](Self::drive) within `limit` of virtual time.
    fn drive_for(&mut self, limit: Duration, done: impl Fn(&mut World) -> bool) -> bool {
        let limit = self.now + limit;
        for _ in 0..5000 {
            self.pump();
            if done(self) {
                return true;
            }
            let next = [self.client.poll_timeout(), self.server.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            if tracing() {
                eprintln!(
                    "  deadlines: client {:?}, server {:?}",
                    self.client.poll_timeout(),
                    self.server.poll_timeout()
                );
            }
            let Some(next) = next else { return false };
            if next > limit {
                return false;
            }
            self.now = self.now.max(next);
            self.timeout(0);
            self.timeout(1);
        }
        panic!("timers spin: 5000 deadlines without progress");
    }

    fn send(&mut self, from_client: bool, ch: u32, len: usize) {
        let msg = message(self.seq, len);
        self.seq += 1;
        let conn = if from_client {
            &mut self.client
        } else {
            &mut self.server
        };
        match conn.send(ch, &msg) {
            // The stream cannot express an empty message (spec/channels.md
            // §2.2): refused, or accepted and never delivered.
            Ok(()) if msg.is_empty() => {}
            Err(SendError::Empty) => assert!(msg.is_empty(), "{len} bytes refused as empty"),
            Ok(()) => {
                let q = if from_client {
                    &mut self.to_server
                } else {
                    &mut self.to_client
                };
                q[ch as usize].push_back(msg);
            }
            Err(SendError::TooLarge { max }) => assert!(len > max, "{len} refused, max {max}"),
            Err(SendError::InvalidChannel) => assert!(ch >= 2),
            Err(SendError::WouldBlock(_)) => {}
            Err(SendError::NotConnected) => assert!(self.lenient(), "not connected"),
        }
    }

    /// Encrypts `plain` as the client would, with packet number `pn`.
    fn forge(&mut self, pn: u64, pn_len: u8, plain: &[u8]) -> Vec<u8> {
        self.forged = true;
        let header = ShortHeader {
            key_phase: false,
            receiver: SERVER_ID,
            pn_truncated: (pn & ((1 << (8 * u32::from(pn_len))) - 1)) as u32,
            pn_len,
        };
        let mut packet = vec![0u8; 8 + plain.len() + 16];
        let hlen = header.encode(&mut packet);
        packet[hlen..hlen + plain.len()].copy_from_slice(plain);
        let (hdr, body) = packet.split_at_mut(hlen);
        let n = FORGER.with(|f| {
            f.borrow_mut()
                .get_or_insert_with(forger)
                .encrypt_with_nonce(pn, hdr, body, plain.len())
                .expect("forge")
        });
        packet.truncate(hlen + n);
        packet
    }

    /// Prints both sides' state, when tracing.
    fn dump(&self) {
        if tracing() {
            eprintln!(
                "at {:?}\nclient:\n{}\nserver:\n{}\nclient {:?}\nserver {:?}",
                self.now,
                self.client.debug_dump(),
                self.server.debug_dump(),
                self.client.stats(),
                self.server.stats()
            );
        }
    }

    /// The end: unless packets were forged, everything sent arrives, and a
    /// fresh message each way plus a datagram still get through.
    fn finish(&mut self) {
        // A perfect network from here on: what the loss mask still holds
        // would otherwise drop the final datagram.
        self.loss = 0;
        if self.lenient() {
            // Whatever state the forgeries left, the timers and the
            // exchange must keep working (past the idle timeout).
            self.drive_for(Duration::from_secs(150), |_| false);
            return;
        }
        let all_delivered = |w: &mut World| {
            w.to_server
                .iter()
                .chain(&w.to_client)
                .all(VecDeque::is_empty)
        };
        if !self.drive(all_delivered) {
            if self.ended {
                // Lost or late packets made it time out: legitimate.
                return;
            }
            let mut buf = [0u8; 2048];
            self.dump();
            let stuck = (0..2).any(|ch| matches!(self.server.recv(ch, &mut buf), Ok(Some(_))));
            panic!(
                "genuine messages were not delivered (readable without an event: {stuck}); \
                 pending to server {:?}, to client {:?}",
                self.to_server.iter().map(VecDeque::len).collect::<Vec<_>>(),
                self.to_client.iter().map(VecDeque::len).collect::<Vec<_>>(),
            );
        }
        let ping = b"after the garbage: client to server";
        let pong = b"after the garbage: server to client";
        let dgram = b"after the garbage: a datagram";
        let sent = self.drive(|w| {
            w.client.send(0, ping).is_ok() && {
                w.to_server[0].push_back(ping.to_vec());
                true
            }
        });
        if self.ended {
            return;
        }
        assert!(sent, "the client cannot send any more");
        let sent = self.drive(|w| {
            w.server.send(1, pong).is_ok() && {
                w.to_client[1].push_back(pong.to_vec());
                true
            }
        });
        if self.ended {
            return;
        }
        assert!(sent, "the server cannot send any more");
        // The queue may still hold datagrams waiting for room in flight:
        // wait for it to drain, as an application would on WouldBlock.
        let queued = self.drive(|w| match w.client.send_datagram(dgram) {
            Ok(()) => true,
            Err(SendError::WouldBlock(_)) => false,
            Err(_) if w.ended => true,
            Err(e) => panic!("send_datagram: {e:?}"),
        });
        if self.ended {
            return;
        }
        assert!(queued, "the client's datagram queue never drains");
        // Only this one must arrive; earlier ones may have been dropped.
        self.dgrams.push_back(dgram.to_vec());
        let done = self.drive(|w| all_delivered(w) && !w.dgrams.iter().any(|d| d == dgram));
        if !done && !self.ended {
            self.dump();
            panic!(
                "the session did not survive the garbage: pending to server {:?}, to client \
                 {:?}, datagrams {}",
                self.to_server.iter().map(VecDeque::len).collect::<Vec<_>>(),
                self.to_client.iter().map(VecDeque::len).collect::<Vec<_>>(),
                self.dgrams.len(),
            );
        }
        assert!(self.ended || self.client.is_established() && self.server.is_established());
    }
}

/// Reads a session-id choice.
fn receiver(inp: &mut Input) -> u32 {
    match inp.u8() % 4 {
        0 => SERVER_ID,
        1 => 0,
        2 => CLIENT_ID,
        _ => u32::from_le_bytes([inp.u8(), inp.u8(), inp.u8(), inp.u8()]),
    }
}

fn from(inp: &mut Input) -> SocketAddr {
    if inp.u8() == 1 {
        stranger_addr()
    } else {
        client_addr()
    }
}

fn sized<'a>(inp: &mut Input<'a>) -> &'a [u8] {
    let n = usize::from(inp.u16());
    inp.bytes(n)
}

/// Frames from operands, for operation 11: each a kind byte (% 10) and its
/// operands, encoded with `tern::frame`, until `count` or the space ends.
///
/// ```text
/// 0 PADDING  1 PING
/// 2 ACK      delay u16, largest u8, first u8, pairs u8 (% 4) of gap u8, len u8
/// 3 MESSAGE  channel u8 (% 3), offset u16, fin u8, len u16 (% 600)
/// 4 DATAGRAM len u16 (% 300)
/// 5 CLOSE    code u8
/// 6 MAX_DATA u32   7 MAX_CHANNEL_DATA channel u8 (% 3), u32
/// 8 DATA_BLOCKED u32   9 CHANNEL_BLOCKED channel u8 (% 3), u32
/// ```
fn frames(inp: &mut Input, count: u8, out: &mut [u8]) -> usize {
    let data = [0x5au8; 600];
    let u32_ =
        |inp: &mut Input| u64::from(u32::from_le_bytes([inp.u8(), inp.u8(), inp.u8(), inp.u8()]));
    let mut pos = 0;
    for _ in 0..count {
        let kind = inp.u8() % 10;
        let n = match kind {
            0 => Frame::Padding.encode(&mut out[pos..]),
            1 => Frame::Ping.encode(&mut out[pos..]),
            2 => {
                let delay = u64::from(inp.u16());
                let largest = u64::from(inp.u8());
                let first = u64::from(inp.u8()).min(largest);
                let mut ranges = vec![(largest - first, largest)];
                for _ in 0..inp.u8() % 4 {
                    let (gap, len) = (u64::from(inp.u8()), u64::from(inp.u8()));
                    let lo = ranges[ranges.len() - 1].0;
                    let Some(hi) = lo.checked_sub(gap + 2) else {
                        break;
                    };
                    ranges.push((hi.saturating_sub(len), hi));
                }
                encode_ack(delay, ranges, 64, &mut out[pos..])
            }
            3 => {
                let channel = u32::from(inp.u8() % 3);
                let offset = u64::from(inp.u16());
                let fin = inp.u8() & 1 != 0;
                let len = usize::from(inp.u16()) % 600;
                Frame::Message(MessageFrame {
                    channel,
                    offset,
                    fin,
                    data: &data[..len],
                })
                .encode(&mut out[pos..])
            }
            4 => Frame::Datagram(&data[..usize::from(inp.u16()) % 300]).encode(&mut out[pos..]),
            5 => Frame::Close(CloseFrame {
                code: u32::from(inp.u8()),
                reason: "forged",
            })
            .encode(&mut out[pos..]),
            6 => Frame::MaxData(u32_(inp)).encode(&mut out[pos..]),
            7 => Frame::MaxChannelData {
                channel: u32::from(inp.u8() % 3),
                max: u32_(inp),
            }
            .encode(&mut out[pos..]),
            8 => Frame::DataBlocked(u32_(inp)).encode(&mut out[pos..]),
            _ => Frame::ChannelBlocked {
                channel: u32::from(inp.u8() % 3),
                limit: u32_(inp),
            }
            .encode(&mut out[pos..]),
        };
        match n {
            Ok(n) => pos += n,
            Err(_) => break,
        }
    }
    pos
}

/// Whether `TERN_FUZZ_TRACE` is set: then operations and packets are
/// printed (for replaying a crash with `examples/replay.rs`).
fn tracing() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("TERN_FUZZ_TRACE").is_some())
}

/// The fuzz target body.
pub fn run(data: &[u8]) {
    let mut w = World::new();
    let mut inp = Input::new(data);
    let trace = tracing();
    while !inp.is_empty() {
        let op = inp.u8() % 12;
        if trace {
            eprintln!("t={:?} op {op}", w.now);
        }
        match op {
            0 => {
                let from = from(&mut inp);
                let mut d = sized(&mut inp).to_vec();
                w.inject(from, &mut d, Origin::Unauthenticated);
            }
            1 => {
                let flags = inp.u8();
                let receiver = receiver(&mut inp);
                let pn = u32::from_le_bytes([inp.u8(), inp.u8(), inp.u8(), 0]);
                let h = ShortHeader {
                    key_phase: flags & 4 != 0,
                    receiver,
                    pn_truncated: pn,
                    pn_len: 1 + (flags & 3) % 3,
                };
                let h = ShortHeader {
                    pn_truncated: h.pn_truncated & ((1 << (8 * u32::from(h.pn_len))) - 1),
                    ..h
                };
                let mut d = vec![0u8; h.len()];
                h.encode(&mut d);
                d.extend_from_slice(sized(&mut inp));
                w.inject(client_addr(), &mut d, Origin::Unauthenticated);
            }
            2 => {
                let kind = if inp.u8() & 1 == 0 {
                    HandshakeKind::Handshake
                } else {
                    HandshakeKind::VersionMismatch
                };
                let h = HandshakeHeader {
                    kind,
                    version: inp.u8(),
                    pattern: inp.u8(),
                    suite: inp.u8(),
                    msg_index: inp.u8(),
                    receiver: receiver(&mut inp),
                    sender: match inp.u8() % 3 {
                        0 => CLIENT_ID,
                        1 => 0,
                        _ => SERVER_ID,
                    },
                };
                let mut d = vec![0u8; LONG_HEADER_LEN];
                h.encode(&mut d);
                d.extend_from_slice(sized(&mut inp));
                w.inject(client_addr(), &mut d, Origin::Unauthenticated);
            }
            3 => {
                let which = usize::from(inp.u8());
                let at = usize::from(inp.u16());
                let xor = inp.u8();
                let cut = usize::from(inp.u16());
                if w.captured.is_empty() {
                    continue;
                }
                let mut d = w.captured[which % w.captured.len()].clone();
                let i = at % d.len();
                d[i] ^= xor;
                if cut < d.len() {
                    d.truncate(cut);
                }
                w.inject(client_addr(), &mut d, Origin::Unauthenticated);
            }
            4 | 5 => {
                let ch = u32::from(inp.u8() % 3);
                let len = usize::from(inp.u16()) % 1200;
                w.send(op == 4, ch, len);
            }
            6 => {
                let len = usize::from(inp.u16()) % 300;
                let d = message(w.seq, len);
                w.seq += 1;
                match w.client.send_datagram(&d) {
                    Ok(()) => w.dgrams.push_back(d),
                    Err(SendError::TooLarge { max }) => assert!(len > max),
                    Err(SendError::WouldBlock(_)) => {}
                    Err(SendError::Empty) => assert!(d.is_empty()),
                    Err(e) => assert!(w.lenient(), "send_datagram: {e:?}"),
                }
            }
            7 => {
                let ms = u64::from(inp.u16()) % 4000;
                let force = inp.u8() & 1 != 0;
                w.advance(Duration::from_millis(ms), force);
            }
            8 => {
                w.loss = inp.u16();
                w.impaired |= w.loss != 0;
            }
            9 => {
                let which = usize::from(inp.u8());
                if w.held.is_empty() {
                    continue;
                }
                w.impaired = true;
                let mut d = w.held.remove(which % w.held.len());
                let copy = d.clone();
                w.inject(client_addr(), &mut d, Origin::Late);
                if w.captured.len() < CAPTURED {
                    w.captured.push(copy);
                }
            }
            _ => {
                let pn = u64::from(inp.u16());
                let pn_len = 1 + inp.u8() % 3;
                let from = from(&mut inp);
                let mut plain = [0u8; 480];
                let len = if op == 10 {
                    let p = sized(&mut inp);
                    let n = p.len().min(plain.len());
                    plain[..n].copy_from_slice(&p[..n]);
                    n
                } else {
                    let count = inp.u8() % 16;
                    frames(&mut inp, count, &mut plain)
                };
                let mut d = w.forge(pn, pn_len, &plain[..len]);
                w.inject(from, &mut d, Origin::Forged);
            }
        }
        w.pump();
    }
    w.finish();
}

/// Seed inputs: each kind of garbage, replays of genuine packets, genuine
/// traffic with loss and reordering, and forged frames.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    let mut add = |name: &str, o: &mut Output| seeds.push((format!("seed-{name}"), o.0.clone()));

    // Genuine traffic both ways with a datagram and some time.
    let mut o = Output::default();
    o.u8(4).u8(0).u16(100);
    o.u8(5).u8(1).u16(700);
    o.u8(6).u16(40);
    o.u8(7).u16(150).u8(0);
    o.u8(4).u8(1).u16(1024);
    add("genuine", &mut o);

    // Garbage of each shape between genuine messages.
    let mut o = Output::default();
    o.u8(4).u8(0).u16(30);
    o.u8(0).u8(0).u16(5).bytes(&[0x00, 0x22, 0x22, 0x22, 0x22]);
    o.u8(0).u8(1).u16(40).bytes(&[0x41; 40]);
    o.u8(1)
        .u8(2)
        .u8(0)
        .bytes(&[7, 0, 0])
        .u16(32)
        .bytes(&[0xaa; 32]);
    o.u8(1)
        .u8(4)
        .u8(0)
        .bytes(&[8, 0, 0])
        .u16(20)
        .bytes(&[0x55; 20]);
    o.u8(2)
        .u8(0)
        .u8(1)
        .u8(1)
        .u8(0x02)
        .u8(1)
        .u8(0)
        .u8(0)
        .u16(48)
        .bytes(&[3; 48]);
    o.u8(2)
        .u8(1)
        .u8(1)
        .u8(1)
        .u8(0x02)
        .u8(0)
        .u8(0)
        .u8(0)
        .u16(2)
        .bytes(&[1, 2]);
    o.u8(2)
        .u8(0)
        .u8(1)
        .u8(1)
        .u8(0x02)
        .u8(0)
        .u8(1)
        .u8(0)
        .u16(32)
        .bytes(&[9; 32]);
    o.u8(4).u8(1).u16(64);
    add("garbage", &mut o);

    // Replays and mutations of genuine packets.
    let mut o = Output::default();
    o.u8(4).u8(0).u16(200);
    o.u8(7).u16(200).u8(0);
    o.u8(3).u8(0).u16(0).u8(0).u16(0xffff);
    o.u8(3).u8(1).u16(9).u8(0x01).u16(0xffff);
    o.u8(3).u8(0).u16(0).u8(0x40).u16(0xffff);
    o.u8(3).u8(0).u16(3).u8(0).u16(20);
    o.u8(4).u8(0).u16(10);
    add("replay", &mut o);

    // Loss and late delivery of genuine packets.
    let mut o = Output::default();
    o.u8(8).u16(0b1011);
    o.u8(4).u8(0).u16(900);
    o.u8(4).u8(1).u16(300);
    o.u8(6).u16(100);
    o.u8(7).u16(3000).u8(0);
    o.u8(9).u8(0);
    o.u8(9).u8(1);
    o.u8(7).u16(3000).u8(1);
    add("loss", &mut o);

    // Forged frames of every kind.
    let mut o = Output::default();
    o.u8(11).u16(500).u8(1).u8(0).u8(10);
    o.u8(0).u8(1);
    o.u8(2).u16(0).u8(1).u8(1).u8(0);
    o.u8(3).u8(0).u16(0).u8(1).u16(5);
    o.u8(4).u16(7);
    o.u8(6).bytes(&[0, 0, 1, 0]);
    o.u8(7).u8(1).bytes(&[0, 8, 0, 0]);
    o.u8(8).bytes(&[1, 0, 0, 0]);
    o.u8(9).u8(0).bytes(&[0, 4, 0, 0]);
    o.u8(5).u8(0);
    add("forged-frames", &mut o);

    // 64 empty messages, then a real one: empty messages once filled the
    // channel's message queue for good (now they are refused).
    let mut o = Output::default();
    for _ in 0..64 {
        o.u8(4).u8(0).u16(0);
    }
    o.u8(4).u8(0).u16(10);
    add("empty-messages", &mut o);

    // A forged raw plaintext: PING then a bad byte.
    let mut o = Output::default();
    o.u8(10)
        .u16(600)
        .u8(1)
        .u8(1)
        .u16(3)
        .bytes(&[0x81, 0x01, 0xff]);
    add("forged-raw", &mut o);
    seeds
}
