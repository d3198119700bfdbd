//! The `session` target: a client and a server joined by an in-memory
//! network where the fuzzer's bytes choose every step, from the first
//! handshake datagram on: what the network does with each datagram
//! (deliver, drop, duplicate, reorder, hold back, corrupt, truncate), how
//! time passes, and what the application on either side does (send and read
//! messages on chosen channels, open channels, send and read datagrams,
//! close).
//!
//! The first input byte picks the setting:
//!
//! ```text
//! bits 0-1  0, 2: ConstrainedConnection, the constrained preset
//!           1: ServiceConnection, the service preset with small windows
//!              (4 KiB channels, 8 KiB connection, 4 channels), so that
//!              credit runs out within a short input
//!           3: ServiceConnection, the service preset as it is
//! bit 2     suite: ChaChaPoly/BLAKE2s, or AES-GCM/SHA-256
//! bit 3     pattern: NN, or IK (the client knows the server's key)
//! ```
//!
//! Then steps until the input ends, each an op byte and its operands
//! (missing bytes read as zero). Bit 7 of the op byte is the direction or
//! side `d`: 0 the client (its datagrams, on their way to the server), 1 the
//! server. The low seven bits, modulo 18, are the step:
//!
//! ```text
//! 0  deliver       the next datagram of direction d arrives
//! 1  drop          the next datagram of direction d is lost
//! 2  duplicate     a copy of the next datagram joins the back of the queue
//! 3  swap          k u8: the next datagram changes place with the k-th
//! 4  hold back     the next datagram leaves the queue for the held pool
//! 5  release       k u8: the k-th held datagram of d joins the queue's back
//! 6  corrupt       at u16, xor u8: one byte of the next datagram changes
//! 7  truncate      cut u16: the next datagram is cut to cut % len bytes
//! 8  time passes   ms u16: the clock moves, due timers fire
//! 9  next deadline the clock jumps to the earliest deadline, which fires
//! 10 send          channel u8, len u16: side d sends a message
//! 11 open channel  side d opens a channel
//! 12 read          channel u8 (0xff: any channel), count u8: side d reads
//!                  up to count % 8 + 1 messages
//! 13 send datagram len u16
//! 14 read datagrams count u8
//! 15 close         code u8, how u8: side d closes (how bit 0: abort)
//! 16 flush         every queued datagram both ways arrives, until quiet
//! 17 timeout call  side d's handle_timeout is called now, due or not
//! ```
//!
//! After every step both sides are polled for datagrams (which join the
//! network queue of their direction, at most [`QUEUE`]; more are lost) and
//! events.
//!
//! Invariants, checked at every step: nothing panics; no sender seals two
//! packets with the same packet number (every data packet a side emits has
//! exactly the packet number after its previous one, decoded from its
//! header, and names the peer's session id; a handshake message index is
//! only ever retransmitted byte for byte); every message read is the next
//! one sent on its channel in that direction (exactly once, in order,
//! intact); a datagram arrives at most as often as it was sent, intact;
//! memory stays bounded (the bytes sent and not yet read on a channel never
//! exceed the sender's and the receiver's windows together; a connection's
//! buffers never exceed its channels' and datagram queues' limits); no event
//! follows a side's `Closed` event, `Connected` comes at most once and
//! `ChannelOpened` once per channel the peer used; a closed connection sends
//! nothing; a connection ends only for a reason the input explains (a close
//! by either application, or a timeout; handshake failures only when a
//! handshake datagram was tampered with), never by a protocol violation;
//! `poll_transmit` ends; timers never spin.
//!
//! At the end the network turns perfect (no latency, no loss) and both
//! applications read whatever they are told is readable: every message sent
//! arrives, unless the handshake was tampered with, an application closed,
//! or a side timed out after the network misbehaved (datagrams lost, held
//! back, reordered, corrupted, cut, or left waiting for more than a second;
//! a timer fired more than a second late). On a network that only delivered
//! (and duplicated) promptly, a session that stalls or times out with
//! messages undelivered is a failure: this is how the target finds
//! deadlocks such as partial messages holding the connection credit
//! (`seed-partial-messages`).

use crate::{Input, Output, TestRng};
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;
use tern::channel::recv_store_len;
use tern::config::{Config, HandshakePattern, Suite};
use tern::connection::{ConnectionError, Credentials, SendError, code};
use tern::crypto::{CryptoProvider, RustCrypto};
use tern::packet::{HandshakeHeader, ShortHeader, decode_packet_number};
use tern::storage::{ByteStore, HeapBytes};
use tern::{Connection, ConstrainedBytes, Event, Instant};

/// The client's session id.
pub const CLIENT_ID: u32 = 0x1111_1111;
/// The server's session id.
pub const SERVER_ID: u32 = 0x2222_2222;
const CLIENT_SEED: u64 = 0xc11e;
const SERVER_SEED: u64 = 0x5e4e;
const SERVER_KEY: [u8; 32] = [0x52; 32];
const CLIENT_KEY: [u8; 32] = [0x49; 32];
/// Datagrams queued per direction; the network loses what does not fit.
pub const QUEUE: usize = 64;
/// Datagrams held back per direction.
pub const HELD: usize = 16;
/// Packets one `poll_transmit` loop may produce before it counts as endless.
const MAX_BURST: usize = 512;
/// Rounds of a flush before the exchange must have gone quiet.
const QUIET_ROUNDS: usize = 256;
/// Virtual time the final delivery may take: beyond every idle, delivery
/// and handshake timeout of the presets, so a connection that cannot
/// deliver has ended by then.
const DRIVE_LIMIT: Duration = Duration::from_secs(1800);
const BUF: usize = 2048;

fn client_addr() -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 2], 5000))
}

fn server_addr() -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], 4433))
}

/// The configuration selector byte's meaning (see the module docs).
pub fn config(selector: u8) -> Config {
    let mut c = match selector & 3 {
        1 => Config {
            channel_window: 4096,
            connection_window: 8192,
            max_message_size: 4096,
            max_channels: 4,
            datagram_queue: 4,
            replay_window: 128,
            ..Config::service()
        },
        3 => Config::service(),
        _ => Config::constrained(),
    };
    c.suite = if selector & 4 == 0 {
        Suite::CHACHA_BLAKE2S
    } else {
        Suite::AESGCM_SHA256
    };
    c.pattern = if selector & 8 == 0 {
        HandshakePattern::NN
    } else {
        HandshakePattern::IK
    };
    c
}

/// The bytes of message or datagram `seq`, `len` long: its sequence number,
/// then a pattern derived from it, so a mix-up or a corruption shows.
fn payload(seq: u32, len: usize) -> Vec<u8> {
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

/// Whether `TERN_FUZZ_TRACE` is set: then steps and packets are printed.
fn tracing() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("TERN_FUZZ_TRACE").is_some())
}

const NAMES: [&str; 2] = ["client", "server"];

/// The harness's view of one side.
#[derive(Default)]
struct Side {
    /// Packet number of the next data packet this side must send.
    next_pn: u64,
    /// The first packet sent with each handshake message index.
    flights: HashMap<u8, Vec<u8>>,
    /// Messages sent and not yet read, per channel, in order.
    pending: HashMap<u32, VecDeque<Vec<u8>>>,
    /// Datagrams sent, and how often each arrived.
    dgrams_sent: HashMap<Vec<u8>, (u32, u32)>,
    /// Channels this side tried to send on or opened (the peer may see
    /// them opened).
    used: HashSet<u32>,
    /// Channels this side saw `ChannelOpened` for.
    opened_by_peer: HashSet<u32>,
    /// A `Readable` event was taken and the channel not yet read empty.
    armed: HashSet<u32>,
    /// `DatagramReceived` was taken and the queue not yet read empty.
    dgram_armed: bool,
    connected: bool,
    /// The `Closed` event, once taken.
    closed: Option<ConnectionError>,
    /// The codes this side's application closed with.
    close_codes: HashSet<u32>,
}

struct World<B: ByteStore, const CH: usize, const SENT: usize> {
    config: Config,
    client: Box<Connection<B, CH, SENT>>,
    server: Option<Box<Connection<B, CH, SENT>>>,
    server_rng: TestRng,
    now: Instant,
    /// Datagrams on their way: [0] to the server, [1] to the client.
    queue: [VecDeque<Vec<u8>>; 2],
    held: [Vec<Vec<u8>>; 2],
    sides: [Side; 2],
    seq: u32,
    /// A handshake datagram was corrupted or truncated.
    hs_tampered: bool,
    /// Datagrams were lost, held back, reordered, corrupted or cut, or
    /// delayed (see `advance_to`): timeouts may follow.
    impaired: bool,
    /// Time that passed with datagrams waiting in the network.
    waited: Duration,
    /// Largest bytes one store of a connection may hold.
    store_limit: usize,
    buf: Vec<u8>,
}

impl<B: ByteStore, const CH: usize, const SENT: usize> World<B, CH, SENT> {
    fn new(config: Config) -> Self {
        let now = Instant::from_millis(1);
        let creds = if config.pattern == HandshakePattern::IK {
            Credentials {
                private_key: Some(CLIENT_KEY),
                remote_public_key: Some(RustCrypto.x25519_base(&SERVER_KEY)),
                psk: None,
            }
        } else {
            Credentials::default()
        };
        let client = Connection::connect(
            config.clone(),
            &creds,
            now,
            CLIENT_ID,
            server_addr(),
            &mut TestRng(CLIENT_SEED),
        )
        .expect("connect");
        let dgram_bytes =
            (usize::from(config.max_datagram_size) + 2) * config.datagram_queue.max(1);
        let store_limit = B::new(0)
            .allocated()
            .max(recv_store_len(config.channel_window as usize))
            .max(dgram_bytes)
            .max(8);
        let mut w = World {
            config,
            client: Box::new(client),
            server: None,
            server_rng: TestRng(SERVER_SEED),
            now,
            queue: Default::default(),
            held: Default::default(),
            sides: Default::default(),
            seq: 0,
            hs_tampered: false,
            impaired: false,
            waited: Duration::ZERO,
            store_limit,
            buf: vec![0u8; 70 * 1024],
        };
        w.poll();
        w
    }

    fn conn(&mut self, side: usize) -> Option<&mut Connection<B, CH, SENT>> {
        if side == 0 {
            Some(&mut self.client)
        } else {
            self.server.as_deref_mut()
        }
    }

    fn conn_ref(&self, side: usize) -> Option<&Connection<B, CH, SENT>> {
        if side == 0 {
            Some(&self.client)
        } else {
            self.server.as_deref()
        }
    }

    // ----- the network -----

    /// Hands datagram `d` of direction `dir` to its receiver.
    fn deliver(&mut self, dir: usize, mut d: Vec<u8>) {
        let now = self.now;
        if dir == 0 && self.server.is_none() {
            let creds = if self.config.pattern == HandshakePattern::IK {
                Credentials {
                    private_key: Some(SERVER_KEY),
                    ..Credentials::default()
                }
            } else {
                Credentials::default()
            };
            let r = Connection::accept(
                self.config.clone(),
                &creds,
                now,
                SERVER_ID,
                client_addr(),
                &d,
                &mut self.server_rng,
            );
            if tracing() {
                eprintln!(
                    "  accept {} bytes: {:?}",
                    d.len(),
                    r.as_ref().map(|_| ()).err()
                );
            }
            if let Ok(s) = r {
                self.server = Some(Box::new(s));
            }
            return;
        }
        let from = if dir == 0 {
            client_addr()
        } else {
            server_addr()
        };
        let Some(conn) = self.conn(1 - dir) else {
            return;
        };
        let before = conn.stats();
        let r = conn.handle(now, from, &mut d);
        let after = conn.stats();
        assert_eq!(after.rx_packets, before.rx_packets + 1, "rx_packets");
        let mut counted = before.dropped;
        if let Err(reason) = r {
            counted.count(reason);
        }
        assert_eq!(after.dropped, counted, "drop {r:?} miscounted");
        if tracing() {
            eprintln!("  -> {} {} bytes: {r:?}", NAMES[1 - dir], d.len());
        }
    }

    /// Polls both sides for datagrams until both are quiet, checking each,
    /// then takes their events.
    fn poll(&mut self) {
        let mut buf = [0u8; BUF];
        for (side, name) in NAMES.iter().enumerate() {
            let mut burst = 0;
            loop {
                let now = self.now;
                let Some(conn) = self.conn(side) else { break };
                let closed = conn.is_closed();
                let Some(t) = conn.poll_transmit(now, &mut buf).expect("poll_transmit") else {
                    break;
                };
                assert!(!closed, "the closed {} sends", name);
                burst += 1;
                assert!(burst < MAX_BURST, "{} poll_transmit never ends", name);
                assert!(
                    t.len <= usize::from(self.config.max_packet_size),
                    "{} bytes",
                    t.len
                );
                let to = if side == 0 {
                    server_addr()
                } else {
                    client_addr()
                };
                assert_eq!(t.destination, to, "{} sends elsewhere", name);
                let d = buf[..t.len].to_vec();
                self.sent(side, &d);
                if self.queue[side].len() < QUEUE {
                    self.queue[side].push_back(d);
                } else {
                    self.impaired = true;
                }
            }
        }
        self.events();
        self.check_memory();
    }

    /// The nonce invariant, for a datagram `side` sent.
    fn sent(&mut self, side: usize, d: &[u8]) {
        if tracing() {
            eprintln!(
                "  {} sends {} bytes {:02x?}",
                NAMES[side],
                d.len(),
                &d[..d.len().min(8)]
            );
        }
        let peer_id = if side == 0 { SERVER_ID } else { CLIENT_ID };
        let hs_tampered = self.hs_tampered;
        let s = &mut self.sides[side];
        if let Ok((h, _)) = HandshakeHeader::decode(d) {
            // A handshake message is encrypted under the handshake's own
            // nonces: sending index i again must repeat it byte for byte.
            let first = s.flights.entry(h.msg_index).or_insert_with(|| d.to_vec());
            assert!(
                first == d,
                "{} sent handshake message {} twice with different bytes",
                NAMES[side],
                h.msg_index
            );
            return;
        }
        let h = ShortHeader::decode(d).expect("a data packet with a valid header");
        // The session ids in handshake headers are not authenticated
        // (spec/packets.md §3): a tampered sender id redirects the peer.
        assert!(
            h.receiver == peer_id || hs_tampered,
            "{} names session {:#x}, not {peer_id:#x}",
            NAMES[side],
            h.receiver
        );
        let pn = decode_packet_number(
            s.next_pn.checked_sub(1),
            u64::from(h.pn_truncated),
            usize::from(h.pn_len),
        );
        assert_eq!(
            pn, s.next_pn,
            "{} sent packet number {pn}, expected {}: a nonce reused or skipped",
            NAMES[side], s.next_pn
        );
        s.next_pn += 1;
    }

    fn front(&mut self, dir: usize) -> Option<&mut Vec<u8>> {
        self.queue[dir].front_mut()
    }

    /// Delivers everything queued both ways, until nothing more is sent.
    ///
    /// A bulk transfer is acknowledgement-clocked, a few packets a round,
    /// so the bound on rounds grows with the bytes still to deliver: a
    /// round per 500 bytes beyond the first [`QUIET_ROUNDS`].
    fn flush(&mut self) {
        let unread: usize = self
            .sides
            .iter()
            .flat_map(|s| s.pending.values().flatten())
            .map(Vec::len)
            .sum();
        let rounds = QUIET_ROUNDS + unread / 500;
        for _ in 0..rounds {
            if self.queue.iter().all(VecDeque::is_empty) {
                return;
            }
            for dir in 0..2 {
                while let Some(d) = self.queue[dir].pop_front() {
                    self.deliver(dir, d);
                }
            }
            self.poll();
        }
        panic!("the exchange does not go quiet after {rounds} rounds ({unread} bytes unread)");
    }

    // ----- time -----

    /// Calls `handle_timeout` on `side` now.
    fn fire(&mut self, side: usize) {
        let now = self.now;
        if let Some(c) = self.conn(side) {
            c.handle_timeout(now);
        }
    }

    fn deadline(&self) -> Option<Instant> {
        (0..2)
            .filter_map(|s| self.conn_ref(s)?.poll_timeout())
            .min()
    }

    /// Moves the clock to `t` and fires the timers that are due. A timer
    /// fired more than a second late, or datagrams left waiting in the
    /// network for more than a second in all, count as an impairment
    /// (timeouts may follow).
    fn advance_to(&mut self, t: Instant) {
        let delta = t.saturating_duration_since(self.now);
        if !self.queue.iter().all(VecDeque::is_empty) || !self.held.iter().all(Vec::is_empty) {
            self.waited += delta;
        }
        let late = self
            .deadline()
            .is_some_and(|d| t > d + Duration::from_secs(1));
        self.impaired |= late || self.waited > Duration::from_secs(1);
        self.now = self.now.max(t);
        for side in 0..2 {
            let now = self.now;
            if self
                .conn_ref(side)
                .and_then(|c| c.poll_timeout())
                .is_some_and(|d| d <= now)
            {
                self.fire(side);
            }
        }
    }

    // ----- the applications -----

    fn send(&mut self, side: usize, ch: u32, len: usize) {
        let msg = payload(self.seq, len);
        self.seq += 1;
        let Some(conn) = self.conn(side) else { return };
        let established = conn.is_established();
        let max = conn.max_message_size();
        let r = conn.send(ch, &msg);
        if tracing() {
            eprintln!("  {} send ch {ch} {len} bytes: {r:?}", NAMES[side]);
        }
        let s = &mut self.sides[side];
        match r {
            Ok(()) => {
                assert!(!msg.is_empty() && len <= max);
                s.used.insert(ch);
                s.pending.entry(ch).or_default().push_back(msg);
            }
            Err(SendError::Empty) => assert!(msg.is_empty(), "{len} bytes refused as empty"),
            Err(SendError::NotConnected) => assert!(!established, "refused while established"),
            Err(SendError::TooLarge { max: m }) => {
                assert!(len > m && m == max, "{len} refused, max {m}")
            }
            Err(SendError::InvalidChannel) => {
                assert!(ch >= self.config.max_channels, "channel {ch} refused")
            }
            Err(SendError::WouldBlock(_)) => {
                s.used.insert(ch);
            }
        }
    }

    fn open(&mut self, side: usize) {
        let max_channels = self.config.max_channels;
        let Some(conn) = self.conn(side) else { return };
        let r = conn.open_channel();
        if tracing() {
            eprintln!("  {} open_channel: {r:?}", NAMES[side]);
        }
        if let Ok(id) = r {
            assert_eq!(id % 2, side as u32, "{} opened channel {id}", NAMES[side]);
            assert!(id < max_channels, "channel {id} beyond the limit");
            self.sides[side].used.insert(id);
        }
    }

    /// Side `side` read message `msg` from `ch`: it must be the next one
    /// the peer sent there.
    fn arrived(&mut self, side: usize, ch: u32, msg: &[u8]) {
        let expected = self.sides[1 - side]
            .pending
            .get_mut(&ch)
            .and_then(VecDeque::pop_front)
            .unwrap_or_else(|| {
                panic!(
                    "{} read a message never sent (or twice) on channel {ch}: {} bytes {:02x?}",
                    NAMES[side],
                    msg.len(),
                    &msg[..msg.len().min(8)]
                )
            });
        assert!(
            expected == msg,
            "{} channel {ch}: expected {} bytes {:02x?}, read {} bytes {:02x?}",
            NAMES[side],
            expected.len(),
            &expected[..expected.len().min(8)],
            msg.len(),
            &msg[..msg.len().min(8)]
        );
    }

    /// Reads up to `count` messages from `ch` (`None`: any channel).
    fn read(&mut self, side: usize, ch: Option<u32>, count: usize) {
        let mut buf = std::mem::take(&mut self.buf);
        for _ in 0..count {
            let Some(conn) = self.conn(side) else { break };
            let r = match ch {
                Some(ch) => conn.recv(ch, &mut buf).map(|r| r.map(|n| (ch, n))),
                None => conn.recv_any(&mut buf),
            };
            match r {
                Ok(Some((ch, n))) => self.arrived(side, ch, &buf[..n]),
                Ok(None) => {
                    if let Some(ch) = ch {
                        self.sides[side].armed.remove(&ch);
                    } else {
                        self.sides[side].armed.clear();
                    }
                    break;
                }
                Err(needed) => panic!("recv wants {needed} bytes"),
            }
        }
        self.buf = buf;
    }

    fn send_datagram(&mut self, side: usize, len: usize) {
        let d = payload(self.seq, len);
        self.seq += 1;
        let Some(conn) = self.conn(side) else { return };
        let established = conn.is_established();
        let r = conn.send_datagram(&d);
        match r {
            Ok(()) => self.sides[side].dgrams_sent.entry(d).or_default().0 += 1,
            Err(SendError::TooLarge { max }) => assert!(len > max),
            Err(SendError::WouldBlock(_)) => {}
            Err(SendError::NotConnected) => assert!(!established, "refused while established"),
            Err(e) => panic!("send_datagram: {e:?}"),
        }
    }

    fn read_datagrams(&mut self, side: usize, count: usize) {
        let mut buf = std::mem::take(&mut self.buf);
        for _ in 0..count {
            let Some(conn) = self.conn(side) else { break };
            match conn.recv_datagram(&mut buf) {
                Ok(Some(n)) => {
                    let entry = self.sides[1 - side]
                        .dgrams_sent
                        .get_mut(&buf[..n])
                        .unwrap_or_else(|| panic!("a datagram never sent: {n} bytes"));
                    entry.1 += 1;
                    assert!(entry.1 <= entry.0, "a datagram arrived twice");
                }
                Ok(None) => {
                    self.sides[side].dgram_armed = false;
                    break;
                }
                Err(needed) => panic!("recv_datagram wants {needed} bytes"),
            }
        }
        self.buf = buf;
    }

    fn close(&mut self, side: usize, code: u32, abort: bool) {
        let now = self.now;
        let Some(conn) = self.conn(side) else { return };
        let open = !conn.is_closed();
        if abort {
            conn.abort(now, code, "fuzz abort");
        } else {
            conn.close(now, code, "fuzz close");
        }
        if open {
            self.sides[side].close_codes.insert(code);
        }
    }

    // ----- invariants -----

    /// Takes both sides' events and checks them.
    fn events(&mut self) {
        for (side, name) in NAMES.iter().enumerate() {
            while let Some(e) = self.conn(side).and_then(|c| c.poll_event()) {
                if tracing() {
                    eprintln!("  {} event {e:?}", name);
                }
                let s = &mut self.sides[side];
                assert!(
                    s.closed.is_none(),
                    "{} event {e:?} after Closed({:?})",
                    name,
                    s.closed
                );
                match e {
                    Event::Connected => {
                        assert!(!s.connected, "{} connected twice", name);
                        s.connected = true;
                    }
                    Event::ChannelOpened(ch) => {
                        assert!(
                            s.opened_by_peer.insert(ch),
                            "{} channel {ch} opened twice",
                            name
                        );
                        assert!(
                            self.sides[1 - side].used.contains(&ch),
                            "{}: channel {ch} opened, which the peer never used",
                            name
                        );
                    }
                    Event::Readable(ch) => {
                        s.armed.insert(ch);
                    }
                    Event::DatagramReceived => s.dgram_armed = true,
                    Event::Writable(_) => {}
                    Event::Closed(why) => {
                        s.closed = Some(why);
                        self.check_close(side, why);
                    }
                }
            }
        }
    }

    /// A connection ends only for a reason the input explains.
    fn check_close(&self, side: usize, why: ConnectionError) {
        let mine = &self.sides[side].close_codes;
        let theirs = &self.sides[1 - side].close_codes;
        let ok = match why {
            ConnectionError::LocallyClosed { code } => mine.contains(&code),
            ConnectionError::PeerClosed { code, .. } => {
                theirs.contains(&code) || code == code::DELIVERY_TIMEOUT
            }
            ConnectionError::IdleTimeout
            | ConnectionError::DeliveryTimeout
            | ConnectionError::HandshakeTimeout => true,
            ConnectionError::HandshakeFailed(_)
            | ConnectionError::VersionMismatch { .. }
            | ConnectionError::ParameterMismatch => self.hs_tampered,
            ConnectionError::ProtocolViolation { .. } => false,
        };
        assert!(
            ok,
            "{} closed: {why:?} (its close code {mine:?}, the peer's {theirs:?}, handshake \
             tampered: {})",
            NAMES[side], self.hs_tampered
        );
    }

    fn check_memory(&self) {
        let window = self.config.channel_window as usize;
        for (side, name) in NAMES.iter().enumerate() {
            for (ch, q) in &self.sides[side].pending {
                let bytes: usize = q.iter().map(Vec::len).sum();
                assert!(
                    bytes <= 2 * window,
                    "{} channel {ch}: {bytes} bytes sent and unread, beyond both windows",
                    name
                );
            }
            if let Some(c) = self.conn_ref(side) {
                let stores = 2 * self.config.max_channels as usize + 2;
                let held = c.buffer_bytes();
                assert!(
                    held <= stores * self.store_limit,
                    "{} holds {held} bytes of buffers",
                    name
                );
            }
        }
    }

    // ----- the end -----

    /// A perfect network and attentive applications: everything sent must
    /// arrive, unless the connection legitimately ended.
    fn finish(&mut self) {
        // Whatever happened before the network turned perfect.
        let impaired = self.impaired || !self.held.iter().all(Vec::is_empty);
        for dir in 0..2 {
            let held = std::mem::take(&mut self.held[dir]);
            self.queue[dir].extend(held);
        }
        let limit = self.now + DRIVE_LIMIT;
        let mut rounds = 0;
        loop {
            // No latency: what the reads and the deliveries provoke (credit,
            // acknowledgements) arrives before the clock moves.
            for _ in 0..QUIET_ROUNDS {
                self.flush();
                self.attend();
                if self.queue.iter().all(VecDeque::is_empty) {
                    break;
                }
            }
            if self.flushed() || self.ended() {
                break;
            }
            rounds += 1;
            assert!(rounds < 20_000, "timers spin");
            let Some(next) = self.deadline() else { break };
            if next > limit {
                break;
            }
            self.advance_to(next);
            self.poll();
        }
        // A session that ends before delivering is excused if an
        // application closed it, or if it timed out after the network
        // misbehaved; on a network that only delivered (perhaps twice),
        // promptly, every message must arrive.
        let closed_by_app = self.sides.iter().any(|s| !s.close_codes.is_empty());
        let excused = self.hs_tampered || (self.ended() && (impaired || closed_by_app));
        if !excused {
            let pending: Vec<(usize, u32, usize)> = (0..2)
                .flat_map(|s| {
                    self.sides[s]
                        .pending
                        .iter()
                        .map(move |(ch, q)| (s, *ch, q.len()))
                })
                .filter(|p| p.2 > 0)
                .collect();
            assert!(
                pending.is_empty(),
                "messages were never delivered on a live session (side, channel, count): \
                 {pending:?}; client {}\nserver {}",
                self.client.debug_dump(),
                self.server
                    .as_ref()
                    .map_or("none".into(), |s| s.debug_dump())
            );
        }
    }

    /// Whether every message sent was read.
    fn flushed(&self) -> bool {
        self.sides
            .iter()
            .all(|s| s.pending.values().all(VecDeque::is_empty))
    }

    /// Whether either side closed or was told it closed.
    fn ended(&self) -> bool {
        self.sides
            .iter()
            .any(|s| s.closed.is_some() || !s.close_codes.is_empty())
            || self.client.is_closed()
            || self.server.as_ref().is_some_and(|s| s.is_closed())
    }

    /// Reads what the events said is readable, as an application would.
    fn attend(&mut self) {
        for side in 0..2 {
            let armed: Vec<u32> = self.sides[side].armed.iter().copied().collect();
            for ch in armed {
                self.read(side, Some(ch), usize::MAX);
            }
            if self.sides[side].dgram_armed {
                self.read_datagrams(side, usize::MAX);
            }
        }
        self.poll();
    }

    // ----- one step -----

    fn step(&mut self, inp: &mut Input) {
        let op = inp.u8();
        let d = usize::from(op >> 7);
        let kind = (op & 0x7f) % 18;
        // Loss, delay beyond a second, reordering, corruption.
        self.impaired |= matches!(kind, 1 | 3 | 4 | 6 | 7);
        if tracing() {
            eprintln!("t={:?} op {kind} side/dir {d}", self.now);
        }
        match kind {
            0 => {
                if let Some(x) = self.queue[d].pop_front() {
                    self.deliver(d, x);
                }
            }
            1 => {
                self.queue[d].pop_front();
            }
            2 => {
                if let Some(x) = self.queue[d].front().cloned()
                    && self.queue[d].len() < QUEUE
                {
                    self.queue[d].push_back(x);
                }
            }
            3 => {
                let k = usize::from(inp.u8());
                let n = self.queue[d].len();
                if n > 1 {
                    self.queue[d].swap(0, k % n);
                }
            }
            4 => {
                if self.held[d].len() < HELD
                    && let Some(x) = self.queue[d].pop_front()
                {
                    self.held[d].push(x);
                }
            }
            5 => {
                let k = usize::from(inp.u8());
                if !self.held[d].is_empty() && self.queue[d].len() < QUEUE {
                    let n = self.held[d].len();
                    let x = self.held[d].remove(k % n);
                    self.queue[d].push_back(x);
                }
            }
            6 => {
                let at = usize::from(inp.u16());
                let xor = inp.u8().max(1);
                if let Some(x) = self.front(d)
                    && !x.is_empty()
                {
                    let long = x[0] & 0x80 != 0;
                    let i = at % x.len();
                    x[i] ^= xor;
                    self.hs_tampered |= long;
                }
            }
            7 => {
                let cut = usize::from(inp.u16());
                if let Some(x) = self.front(d)
                    && !x.is_empty()
                {
                    let long = x[0] & 0x80 != 0;
                    let n = x.len();
                    x.truncate(cut % n);
                    self.hs_tampered |= long;
                }
            }
            8 => {
                let ms = u64::from(inp.u16());
                self.advance_to(self.now + Duration::from_millis(ms));
            }
            9 => {
                if let Some(t) = self.deadline() {
                    self.advance_to(t);
                }
            }
            10 => {
                let ch = u32::from(inp.u8()) % (self.config.max_channels + 1);
                let max = self.config.max_message_size as usize + 2;
                let len = usize::from(inp.u16()) % max;
                self.send(d, ch, len);
            }
            11 => self.open(d),
            12 => {
                let ch = inp.u8();
                let count = usize::from(inp.u8() % 8) + 1;
                let ch = (ch != 0xff).then(|| u32::from(ch) % (self.config.max_channels + 1));
                self.read(d, ch, count);
            }
            13 => {
                let max = usize::from(self.config.max_datagram_size) + 2;
                let len = usize::from(inp.u16()) % max;
                self.send_datagram(d, len);
            }
            14 => {
                let count = usize::from(inp.u8() % 8) + 1;
                self.read_datagrams(d, count);
            }
            15 => {
                let c = inp.u8();
                let how = inp.u8();
                // Applications use 0 and codes from 0x100.
                let code = if c == 0 { 0 } else { 0x100 + u32::from(c) };
                self.close(d, code, how & 1 != 0);
            }
            16 => self.flush(),
            _ => self.fire(d),
        }
        self.poll();
    }
}

fn run_with<B: ByteStore, const CH: usize, const SENT: usize>(config: Config, inp: &mut Input) {
    let mut w = World::<B, CH, SENT>::new(config);
    while !inp.is_empty() {
        w.step(inp);
    }
    w.finish();
}

/// The fuzz target body.
pub fn run(data: &[u8]) {
    let mut inp = Input::new(data);
    let selector = inp.u8();
    let config = config(selector);
    match selector & 3 {
        1 | 3 => run_with::<HeapBytes, 64, 256>(config, &mut inp),
        _ => run_with::<ConstrainedBytes, 2, 8>(config, &mut inp),
    }
}

/// Op bytes for the seed generator: step `kind` for side/direction `d`.
fn op(kind: u8, d: u8) -> u8 {
    kind | (d << 7)
}

/// Seed inputs: handshakes that reach an established session and exchange
/// data, under each setting, with loss, duplication, reordering and a
/// close.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    // The handshake through a perfect network, then messages both ways on
    // two channels, a datagram each way, reads, and a flush.
    let exchange = |o: &mut Output| {
        o.u8(op(16, 0));
        o.u8(op(10, 0)).u8(0).u16(100);
        o.u8(op(10, 1)).u8(1).u16(300);
        o.u8(op(13, 0)).u16(40);
        o.u8(op(13, 1)).u16(20);
        o.u8(op(16, 0));
        o.u8(op(12, 1)).u8(0).u8(7);
        o.u8(op(12, 0)).u8(0xff).u8(7);
        o.u8(op(14, 1)).u8(7);
        o.u8(op(14, 0)).u8(7);
        o.u8(op(8, 0)).u16(200);
        o.u8(op(16, 0));
    };
    for (name, selector) in [
        ("constrained-nn", 0u8),
        ("service-small-nn", 1),
        ("service-nn", 3),
        ("constrained-ik-aes", 4 | 8),
        ("service-small-ik", 1 | 8),
    ] {
        let mut o = Output::default();
        o.u8(selector);
        exchange(&mut o);
        seeds.push((format!("seed-{name}"), o.0));
    }

    // An impaired network: the first datagram duplicated, the server's
    // answer held back and released, data lost, reordered and corrupted,
    // time passing, then a graceful close.
    let mut o = Output::default();
    o.u8(1);
    o.u8(op(2, 0)).u8(op(0, 0)).u8(op(0, 0));
    o.u8(op(4, 1)).u8(op(9, 0)).u8(op(5, 1)).u8(0).u8(op(16, 0));
    o.u8(op(11, 0));
    o.u8(op(10, 0)).u8(0).u16(1000);
    o.u8(op(10, 0)).u8(0).u16(2000);
    o.u8(op(10, 0)).u8(2).u16(500);
    o.u8(op(1, 0));
    o.u8(op(3, 0)).u8(1);
    o.u8(op(6, 0)).u16(7).u8(0x40);
    o.u8(op(0, 0)).u8(op(0, 0)).u8(op(16, 0));
    o.u8(op(9, 0)).u8(op(16, 0));
    o.u8(op(12, 1)).u8(0).u8(7).u8(op(12, 1)).u8(2).u8(7);
    o.u8(op(16, 0)).u8(op(8, 0)).u16(3000).u8(op(16, 0));
    o.u8(op(15, 0)).u8(1).u8(0);
    o.u8(op(16, 0)).u8(op(9, 0)).u8(op(16, 0));
    seeds.push(("seed-impaired-close".into(), o.0));

    // Credit exhaustion: the small service setting, the client sending
    // more than the server's windows before the server reads.
    let mut o = Output::default();
    o.u8(1).u8(op(16, 0));
    for _ in 0..6 {
        o.u8(op(10, 0)).u8(1).u16(4000).u8(op(16, 0));
    }
    o.u8(op(12, 1)).u8(1).u8(7).u8(op(16, 0));
    o.u8(op(12, 1)).u8(1).u8(7).u8(op(16, 0));
    o.u8(op(10, 0)).u8(1).u16(4000).u8(op(16, 0));
    seeds.push(("seed-credit".into(), o.0));

    // Partial messages on all four channels of the small service setting
    // fill the connection window (8 KiB) with nothing complete to read:
    // two messages use most of the credit, two more are queued behind it,
    // and each read frees credit that the sender spreads over every
    // channel with queued data. This stalled the session until its
    // delivery timeout (spec/channels.md §5.2).
    let mut o = Output::default();
    o.u8(1).u8(op(16, 0));
    let send = |o: &mut Output, ch: u8| {
        o.u8(op(10, 0)).u8(ch).u16(4000);
    };
    send(&mut o, 0);
    send(&mut o, 1);
    o.u8(op(16, 0));
    send(&mut o, 2);
    send(&mut o, 3);
    o.u8(op(16, 0));
    o.u8(op(12, 1)).u8(0).u8(0).u8(op(16, 0));
    send(&mut o, 0);
    send(&mut o, 1);
    o.u8(op(12, 1)).u8(1).u8(0).u8(op(16, 0));
    o.u8(op(16, 0)).u8(op(9, 0)).u8(op(16, 0));
    seeds.push(("seed-partial-messages".into(), o.0));
    seeds
}
