//! `transport`: Tern's whole session path against the bare AEAD and against
//! snow's transport mode, in the same run.
//!
//! Tern's side is a client and a server [`ServiceConnection`] in one thread,
//! joined by memory instead of sockets, driven as an event loop would drive
//! them. One step of that loop:
//!
//! 1. the client application queues messages on channel 0 until `send`
//!    says `WouldBlock` (queue, window or credit full);
//! 2. every datagram `poll_transmit` gives the client goes to the server's
//!    `handle` (frames, AEAD, reassembly);
//! 3. the server application reads every complete message and compares
//!    every byte with the message sent (length, sequence number, content);
//! 4. every datagram of the server (acknowledgements, credit) goes back to
//!    the client's `handle`, events are drained on both sides and expired
//!    timers handled. The clock is the real one.
//!
//! Only steady state is measured: the handshake is done when the pair is
//! built, and a message exchange with byte-for-byte checks runs before any
//! timing. After each size, the pair is flushed and every message sent must
//! have arrived, intact and in order.
//!
//! Each cipher and message size runs on two pairs:
//! - the in-memory pair, on which the goals are judged: memory has no
//!   MTU, so its packets are the largest the protocol allows (65535 bytes,
//!   the Noise message limit), and a message goes out sealed whole where
//!   it fits, as it does in both peers below;
//! - the same pair on a 1500-byte path (`... 1452B-packets`): the service
//!   configuration's 1452-byte packets, as over the Internet. A 16 KiB
//!   message is sealed there as twelve packets.
//!
//! The peers, one message per operation:
//! - `limit`: one seal and one open of the payload with the same AEAD code
//!   Tern uses (the provider's [`AeadKey`]), in place, no copies;
//! - `snow` (in-memory pair only): snow 0.10's `write_message` and
//!   `read_message` in transport mode, after a Noise NN handshake with the
//!   same cipher;
//! - `packet-limit` (16 KiB on the 1500-byte path): the `limit` again, but
//!   over pieces of one full packet's plaintext, as any protocol that seals
//!   each datagram must. Every AEAD call has a fixed cost (ChaCha20-Poly1305
//!   from these crates several thousand instructions), which Tern pays per
//!   packet where the message-sized `limit` pays it once. On that path the
//!   16 KiB share is reported against this bound.
//!
//! `--provider` picks the crypto provider (default: both, one after the
//! other): `rustcrypto` ([`RustCrypto`], names as above) or `ring`
//! (`tern_ring::RingCrypto`, ` ring` after the size in each name). Tern's
//! connections and the limit use the same provider on every line; snow
//! runs with RustCrypto only, whose crates its resolver shares. Goals are
//! summarised per provider.
//!
//! Figures are payload bytes per second (MB/s); at 64 B the message rate
//! is printed as well. Tern packs many small messages into one packet (one
//! AEAD call per packet), so at 64 B it can beat the per-message limit.

use crate::harness::{self, Outcome, Plan, PlanArgs, Unit};
use crate::noise::{Buffers, Statics, snow_handshake};
use crate::rng::FastRng;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant as Clock};
use tern::config::{Config, Suite};
use tern::connection::{Credentials, SendError};
use tern::crypto::{AeadKey, CipherKind, CryptoProvider, KEYLEN, RustCrypto, TAGLEN};
use tern::packet::SHORT_HEADER_MAX;
use tern::storage::HeapBytes;
use tern::{Connection, Event, Instant};
use tern_ring::RingCrypto;

/// [`tern::ServiceConnection`] on the crypto provider `P`.
type Conn<P> = Connection<HeapBytes, 64, 256, P>;

/// Options of `tern-bench transport`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    plan: PlanArgs,
    /// Crypto provider of Tern's connections and of the limit (each line
    /// compares Tern and the limit on the same provider).
    #[arg(long, value_enum, default_value_t = Providers::Both)]
    provider: Providers,
}

/// Which crypto providers to measure.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Providers {
    /// `tern::crypto::RustCrypto` (names without a provider, as before).
    Rustcrypto,
    /// `tern_ring::RingCrypto` (names with ` ring`).
    Ring,
    /// Both, RustCrypto first.
    Both,
}

/// One cipher: Tern's suite and the snow protocol with the same AEAD.
struct Variant {
    label: &'static str,
    suite: Suite,
    cipher: CipherKind,
    snow: &'static str,
}

const VARIANTS: &[Variant] = &[
    Variant {
        label: "ChaChaPoly",
        suite: Suite::CHACHA_BLAKE2S,
        cipher: CipherKind::ChaChaPoly,
        snow: "Noise_NN_25519_ChaChaPoly_BLAKE2s",
    },
    Variant {
        label: "AESGCM",
        suite: Suite::AESGCM_SHA256,
        cipher: CipherKind::AesGcm,
        snow: "Noise_NN_25519_AESGCM_SHA256",
    },
];

/// Payload sizes (multiples of 8, at least 16: see [`stamp`]).
const SIZES: &[(usize, &str)] = &[(64, "64B"), (1024, "1KiB"), (16384, "16KiB")];

/// Goals of the issue: a share of the AEAD limit from 1 KiB up, and a
/// message rate at 64 B.
const LIMIT_GOAL: f64 = 0.8;
const MSG_RATE_GOAL: f64 = 100_000.0;

/// The largest packet the protocol allows (`max_packet_size`, the Noise
/// message limit): the in-memory pair's packets (memory has no MTU).
const LARGE_PACKET: u16 = 65535;

/// The service configuration's packets, for a 1500-byte path.
const PATH_PACKET: u16 = 1452;

/// Plaintext of a full packet on that path: what one AEAD call covers
/// when Tern splits a large message there.
const PACKET_PLAINTEXT: usize = PATH_PACKET as usize - SHORT_HEADER_MAX - TAGLEN;

const CLIENT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 5000);
const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 4433);
const CHANNEL: u32 = 0;

/// Runs the comparisons.
pub fn run(args: &Args) -> ExitCode {
    let plan = Plan::from_args(&args.plan);
    let start = Clock::now();
    let mut rng = FastRng::seeded(0x7a45_e0c7);
    let keys = Statics::new(&mut rng);

    let mut tallies = Vec::new();
    if args.provider != Providers::Ring {
        match run_provider::<RustCrypto>(&plan, "RustCrypto", "", &keys, &mut rng) {
            Ok(t) => tallies.push(t),
            Err(code) => return code,
        }
    }
    if args.provider != Providers::Rustcrypto {
        match run_provider::<RingCrypto>(&plan, "ring", " ring", &keys, &mut rng) {
            Ok(t) => tallies.push(t),
            Err(code) => return code,
        }
    }
    for t in &tallies {
        t.print();
    }
    println!("# {:.1} s", start.elapsed().as_secs_f64());
    ExitCode::SUCCESS
}

/// The results of one provider, for its summary lines.
struct Tally {
    provider: &'static str,
    results: Vec<(String, Outcome)>,
    /// The goals, judged on the in-memory pair.
    goals_met: Vec<String>,
    goals_missed: Vec<String>,
    /// The same share of the limit on 1452-byte packets (16 KiB against
    /// the per-packet limit), reported beside the goals.
    path_met: Vec<String>,
    path_missed: Vec<String>,
}

impl Tally {
    fn print(&self) {
        let p = self.provider;
        let list = |v: &[String]| {
            if v.is_empty() {
                "none".to_owned()
            } else {
                v.join(", ")
            }
        };
        if !self.results.is_empty() {
            let worst = self
                .results
                .iter()
                .map(|(_, o)| o.ratio())
                .fold(f64::INFINITY, f64::min);
            println!(
                "# {p}: {} comparisons, lowest ratio {worst:.2}, goals (in-memory pair, \
                 {LARGE_PACKET}-byte packets: >= {LIMIT_GOAL} of the {p} limit from 1 KiB, \
                 > {MSG_RATE_GOAL:.0} msg/s at 64 B): {}; met by {}; MISSED by {}",
                self.results.len(),
                if self.goals_missed.is_empty() {
                    "all met"
                } else {
                    "not all met"
                },
                list(&self.goals_met),
                list(&self.goals_missed),
            );
        }
        if !(self.path_met.is_empty() && self.path_missed.is_empty()) {
            println!(
                "# {p}: on {PATH_PACKET}-byte packets (a 1500-byte path; 16 KiB against the \
                 per-packet limit), >= {LIMIT_GOAL} of the limit: met by {}; missed by {}",
                list(&self.path_met),
                list(&self.path_missed),
            );
        }
    }
}

/// Where a pair's packets go: the in-memory pair the goals are judged on
/// (no MTU, so the largest packet the protocol allows), or a 1500-byte
/// path (the service configuration's 1452-byte packets).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Path {
    Memory,
    Mtu1500,
}

impl Path {
    fn packet(self) -> u16 {
        match self {
            Path::Memory => LARGE_PACKET,
            Path::Mtu1500 => PATH_PACKET,
        }
    }

    /// Goes into the names after the size and provider.
    fn tag(self) -> String {
        match self {
            Path::Memory => String::new(),
            Path::Mtu1500 => format!(" {PATH_PACKET}B-packets"),
        }
    }
}

/// Every comparison with Tern's connections and the limit on `P`; `tag`
/// goes into the names after the size (empty for RustCrypto, so that its
/// names stay as they were). snow runs only with RustCrypto, whose crates
/// its pure-Rust resolver shares.
fn run_provider<P: CryptoProvider + Clone + Default>(
    plan: &Plan,
    provider: &'static str,
    tag: &str,
    keys: &Statics,
    rng: &mut FastRng,
) -> Result<Tally, ExitCode> {
    let mut tally = Tally {
        provider,
        results: Vec::new(),
        goals_met: Vec::new(),
        goals_missed: Vec::new(),
        path_met: Vec::new(),
        path_missed: Vec::new(),
    };
    for v in VARIANTS {
        for &(size, size_label) in SIZES {
            for path in [Path::Memory, Path::Mtu1500] {
                run_one::<P>(plan, v, size, size_label, tag, path, keys, rng, &mut tally)?;
            }
        }
    }
    Ok(tally)
}

/// The comparisons of one cipher, message size and path.
#[allow(clippy::too_many_arguments)]
fn run_one<P: CryptoProvider + Clone + Default>(
    plan: &Plan,
    v: &Variant,
    size: usize,
    size_label: &str,
    tag: &str,
    path: Path,
    keys: &Statics,
    rng: &mut FastRng,
    tally: &mut Tally,
) -> Result<(), ExitCode> {
    let judged = path == Path::Memory;
    let with_snow = tag.is_empty() && judged;
    let name = format!("transport {} {size_label}{tag}{}", v.label, path.tag());
    let vs_limit = format!("{name} vs limit");
    let vs_snow = format!("{name} vs snow");
    // On the 1500-byte path above one packet, also the bound for any
    // protocol that seals each packet: the AEAD over packet-sized pieces.
    let vs_packets =
        (!judged && size > PACKET_PLAINTEXT).then(|| format!("{name} vs packet limit"));
    let selected = plan.selects(&vs_limit)
        || (with_snow && plan.selects(&vs_snow))
        || vs_packets.as_ref().is_some_and(|n| plan.selects(n));
    if !selected {
        return Ok(());
    }
    let fail = |what: &str, e: String| {
        eprintln!("error: {what}: {e}");
        ExitCode::FAILURE
    };
    let mut pair =
        Pair::<P>::new(v.suite, path.packet(), size, keys, rng).map_err(|e| fail(&name, e))?;
    pair.self_test()
        .map_err(|e| fail(&name, format!("self-test: {e}")))?;

    // (a) The limit: one seal and one open per message.
    let limit = Limit::<P>::new(v.cipher, size, rng);
    let out = against_limit(plan, &vs_limit, "limit", &mut pair, limit, Limit::message)
        .map_err(|e| fail(&vs_limit, e))?;
    if let Some(o) = out {
        let goal = format!("{} {size_label}", v.label);
        if size == 64 {
            let rate = o.tern * 1e6 / size as f64;
            let limit_rate = o.peer * 1e6 / size as f64;
            let met = rate > MSG_RATE_GOAL;
            println!(
                "{name} message rate: tern={rate:.0} msg/s, limit={limit_rate:.0} msg/s \
                 (goal > {MSG_RATE_GOAL:.0} msg/s: {})",
                if met { "met" } else { "MISSED" }
            );
            if judged {
                let goal = format!("{goal} message rate");
                if met {
                    tally.goals_met.push(goal);
                } else {
                    tally.goals_missed.push(goal);
                }
            }
        } else if judged {
            let entry = format!("{goal} (ratio {:.2})", o.ratio());
            if o.ratio() < LIMIT_GOAL {
                tally.goals_missed.push(entry);
            } else {
                tally.goals_met.push(entry);
            }
        } else if vs_packets.is_none() {
            let entry = format!("{goal} (ratio {:.2})", o.ratio());
            if o.ratio() < LIMIT_GOAL {
                tally.path_missed.push(entry);
            } else {
                tally.path_met.push(entry);
            }
        }
        tally.results.push((vs_limit, o));
    }

    // (b) snow's transport mode (one sealed message per message, as the
    // in-memory pair's packets).
    if with_snow {
        let sp: snow::params::NoiseParams = v.snow.parse().expect("known protocol name");
        let (mut sa, mut sb) = snow_handshake(&sp, keys, rng);
        let mut bufs = Buffers::new(size);
        let mut snow = || {
            let (payload, wire, out) = bufs.parts();
            let n = sa.write_message(payload, wire).expect("snow encrypts");
            let m = sb.read_message(&wire[..n], out).expect("snow decrypts");
            black_box(&out[..m]);
            m as u64
        };
        let out = harness::compare(
            plan,
            &vs_snow,
            Unit::MegabytesPerSecond,
            "snow",
            &mut || pair.step(),
            &mut snow,
        );
        tally.results.extend(out.map(|o| (vs_snow, o)));
    }

    // (c) The per-packet bound on the 1500-byte path.
    if let Some(vs_packets) = vs_packets {
        let packets = Limit::<P>::new(v.cipher, size, rng);
        let out = against_limit(
            plan,
            &vs_packets,
            "packet-limit",
            &mut pair,
            packets,
            Limit::message_in_packets,
        )
        .map_err(|e| fail(&vs_packets, e))?;
        if let Some(o) = out {
            let entry = format!(
                "{} {size_label} (per-packet ratio {:.2})",
                v.label,
                o.ratio()
            );
            if o.ratio() < LIMIT_GOAL {
                tally.path_missed.push(entry);
            } else {
                tally.path_met.push(entry);
            }
            tally.results.push((vs_packets, o));
        }
    }

    let summary = pair.finish().map_err(|e| fail(&name, e))?;
    println!("# {name}: {summary}");
    Ok(())
}

/// Tern's `pair` against `limit` doing `op` per operation; afterwards the
/// limit's payload must be what it was (every open gave it back).
fn against_limit<P: CryptoProvider + Clone + Default>(
    plan: &Plan,
    name: &str,
    peer_name: &str,
    pair: &mut Pair<P>,
    mut limit: Limit<P>,
    op: fn(&mut Limit<P>) -> u64,
) -> Result<Option<Outcome>, String> {
    let out = harness::compare(
        plan,
        name,
        Unit::MegabytesPerSecond,
        peer_name,
        &mut || pair.step(),
        &mut || op(&mut limit),
    );
    limit.check()?;
    Ok(out)
}

/// The bare AEAD: one seal and one open of one message, in place.
struct Limit<P: CryptoProvider> {
    aead: P::Aead,
    buf: Vec<u8>,
    original: Vec<u8>,
    n: u64,
}

impl<P: CryptoProvider + Default> Limit<P> {
    fn new(cipher: CipherKind, size: usize, rng: &mut FastRng) -> Limit<P> {
        let mut key = [0u8; KEYLEN];
        rng.fill(&mut key);
        let original: Vec<u8> = (0..size).map(|i| i as u8).collect();
        Limit {
            aead: P::default().aead(cipher, &key),
            buf: original.clone(),
            original,
            n: 0,
        }
    }

    fn message(&mut self) -> u64 {
        let tag = self.aead.seal(self.n, &[], &mut self.buf);
        self.aead
            .open(self.n, &[], &mut self.buf, &tag)
            .expect("the AEAD opens what it sealed");
        self.n += 1;
        self.buf.len() as u64
    }

    /// The same payload sealed and opened in pieces of one packet's
    /// plaintext, one seal and one open per piece.
    fn message_in_packets(&mut self) -> u64 {
        for piece in self.buf.chunks_mut(PACKET_PLAINTEXT) {
            let tag = self.aead.seal(self.n, &[], piece);
            self.aead
                .open(self.n, &[], piece, &tag)
                .expect("the AEAD opens what it sealed");
            self.n += 1;
        }
        self.buf.len() as u64
    }

    /// Every open gave the plaintext back.
    fn check(&self) -> Result<(), String> {
        if self.buf == self.original {
            Ok(())
        } else {
            Err("the AEAD round trip changed the payload".into())
        }
    }
}

/// A connected client and server, and the applications on top of them.
struct Pair<P: CryptoProvider + Clone + Default> {
    client: Box<Conn<P>>,
    server: Box<Conn<P>>,
    /// The real clock, read once per step; Tern time starts at 1 s.
    epoch: Clock,
    /// The datagram in transit.
    dgram: Vec<u8>,
    /// The sending application's message; [`stamp`] numbers it.
    msg: Vec<u8>,
    /// The receiving application's copy of the message, stamped with the
    /// number of the next message it expects.
    want: Vec<u8>,
    /// Messages queued by the client, and read by the server.
    sent: u64,
    received: u64,
    /// Last time a message arrived, to fail instead of spinning forever.
    progress_at: Instant,
}

const START: Duration = Duration::from_secs(1);

impl<P: CryptoProvider + Clone + Default> Pair<P> {
    /// Handshake (IK, service configuration with `suite` and
    /// `max_packet_size`), then ready.
    fn new(
        suite: Suite,
        max_packet_size: u16,
        size: usize,
        keys: &Statics,
        rng: &mut FastRng,
    ) -> Result<Self, String> {
        let service = Config::service();
        let config = Config {
            suite,
            max_packet_size,
            ..service
        };
        let epoch = Clock::now();
        let now = Instant::ZERO + START;
        let creds = Credentials {
            private_key: Some(keys.initiator),
            remote_public_key: Some(keys.responder_public),
            psk: None,
        };
        let mut client = Box::new(
            Conn::<P>::connect(config.clone(), &creds, now, 1, SERVER, rng)
                .map_err(|e| format!("connect: {e:?}"))?,
        );
        let mut dgram = vec![0u8; usize::from(config.max_packet_size)];
        let first = client
            .poll_transmit(now, &mut dgram)
            .map_err(|e| e.to_string())?
            .ok_or("no first handshake message")?;
        let server_creds = Credentials {
            private_key: Some(keys.responder),
            ..Credentials::default()
        };
        let server = Box::new(
            Conn::<P>::accept(
                config,
                &server_creds,
                now,
                2,
                CLIENT,
                &dgram[..first.len],
                rng,
            )
            .map_err(|e| format!("accept: {e:?}"))?,
        );
        let mut msg: Vec<u8> = (0..size).map(|i| (i * 7) as u8).collect();
        msg[..8].fill(0);
        msg[size - 8..].fill(0xff);
        let mut pair = Self {
            client,
            server,
            epoch,
            dgram,
            want: msg.clone(),
            msg,
            sent: 0,
            received: 0,
            progress_at: now,
        };
        // Finish the handshake: the server's answer, then the client's
        // first packet, which confirms the keys to the server.
        for _ in 0..8 {
            pair.exchange(pair.now())?;
        }
        if !(pair.client.is_established() && pair.server.is_established()) {
            return Err("handshake did not finish".into());
        }
        Ok(pair)
    }

    /// Tern time now.
    fn now(&self) -> Instant {
        Instant::ZERO + START + self.epoch.elapsed()
    }

    /// One step of the event loop (see the module documentation); returns
    /// the payload bytes delivered.
    fn step(&mut self) -> u64 {
        let now = self.now();
        self.fill();
        let delivered = match self.exchange(now) {
            Ok(n) => n,
            Err(e) => panic!("{e}\n{}", self.dump()),
        };
        if delivered > 0 {
            self.progress_at = now;
        } else if now.saturating_duration_since(self.progress_at) > Duration::from_secs(5) {
            panic!("no message delivered for 5 s\n{}", self.dump());
        }
        delivered * self.msg.len() as u64
    }

    /// Queues messages until the connection refuses one.
    fn fill(&mut self) {
        loop {
            stamp(&mut self.msg, self.sent);
            match self.client.send(CHANNEL, &self.msg) {
                Ok(()) => self.sent += 1,
                Err(SendError::WouldBlock(_)) => return,
                Err(e) => panic!("send: {e}\n{}", self.dump()),
            }
        }
    }

    /// Client datagrams to the server, server reads, server datagrams back;
    /// events and timers on both sides. Returns the messages delivered.
    fn exchange(&mut self, now: Instant) -> Result<u64, String> {
        self.timers(now);
        while let Some(t) = self
            .client
            .poll_transmit(now, &mut self.dgram)
            .map_err(|e| e.to_string())?
        {
            self.server
                .handle(now, CLIENT, &mut self.dgram[..t.len])
                .map_err(|e| format!("server dropped a packet: {e:?}"))?;
        }
        let delivered = self.read_all()?;
        while let Some(t) = self
            .server
            .poll_transmit(now, &mut self.dgram)
            .map_err(|e| e.to_string())?
        {
            self.client
                .handle(now, SERVER, &mut self.dgram[..t.len])
                .map_err(|e| format!("client dropped a packet: {e:?}"))?;
        }
        for c in [&mut self.client, &mut self.server] {
            while let Some(e) = c.poll_event() {
                if let Event::Closed(why) = e {
                    return Err(format!("{:?} closed: {why:?}", c.side()));
                }
            }
        }
        Ok(delivered)
    }

    fn timers(&mut self, now: Instant) {
        for c in [&mut self.server, &mut self.client] {
            if c.poll_timeout().is_some_and(|t| t <= now) {
                c.handle_timeout(now);
            }
        }
    }

    /// The server application: every complete message, compared where it
    /// lies in the connection's receive ring (no copy out).
    fn read_all(&mut self) -> Result<u64, String> {
        let mut n = 0;
        loop {
            let seq = self.received;
            stamp(&mut self.want, seq);
            let want = &self.want;
            match self
                .server
                .recv_with(CHANNEL, |a, b| check(seq, want, a, b))
            {
                Some(r) => {
                    r?;
                    self.received += 1;
                    n += 1;
                }
                None => return Ok(n),
            }
        }
    }

    /// Moves data until every message sent has been read; returns whether
    /// that happened within `limit` of real time.
    fn drain(&mut self, limit: Duration) -> Result<(), String> {
        let until = self.now() + limit;
        while self.received < self.sent {
            let now = self.now();
            if now > until {
                return Err(format!(
                    "{} of {} messages arrived\n{}",
                    self.received,
                    self.sent,
                    self.dump()
                ));
            }
            self.exchange(now)?;
        }
        Ok(())
    }

    /// Before timing: a few windows' worth of messages.
    fn self_test(&mut self) -> Result<(), String> {
        let target = self.sent + 3 * (256 * 1024 / self.msg.len() as u64).max(64);
        while self.sent < target {
            self.fill();
            self.exchange(self.now())?;
        }
        self.drain(Duration::from_secs(5))
    }

    /// After timing: everything sent arrived; a summary of the traffic.
    fn finish(&mut self) -> Result<String, String> {
        self.drain(Duration::from_secs(5))?;
        let c = self.client.stats();
        let s = self.server.stats();
        if c.tx_messages != self.sent || s.rx_messages != self.received {
            return Err(format!(
                "stats disagree: client sent {} messages, server read {}; the \
                 applications counted {} and {}",
                c.tx_messages, s.rx_messages, self.sent, self.received
            ));
        }
        let size = self.msg.len() as f64;
        Ok(format!(
            "{} messages ({:.0} MB) arrived intact and in order; client sent {} \
             packets ({:.1} messages, {:.0} payload bytes each), {} retransmitted \
             frames; server sent {} packets ({:.2} per client packet)",
            self.received,
            self.received as f64 * size / 1e6,
            c.tx_packets,
            self.received as f64 / c.tx_packets as f64,
            self.received as f64 * size / c.tx_packets as f64,
            c.retransmissions,
            s.tx_packets,
            s.tx_packets as f64 / c.tx_packets as f64,
        ))
    }

    fn dump(&self) -> String {
        format!(
            "application: sent {} read {}\nclient {}\nserver {}",
            self.sent,
            self.received,
            self.client.debug_dump(),
            self.server.debug_dump()
        )
    }
}

/// Writes the sequence number `seq` into the first word of `msg` and its
/// complement into the last.
fn stamp(msg: &mut [u8], seq: u64) {
    let n = msg.len();
    msg[..8].copy_from_slice(&seq.to_le_bytes());
    msg[n - 8..].copy_from_slice(&(!seq).to_le_bytes());
}

/// Checks received message `seq`, lent as the two slices `a` and `b`,
/// against `want`, the message sent with its stamps for `seq`: every byte.
fn check(seq: u64, want: &[u8], a: &[u8], b: &[u8]) -> Result<(), String> {
    let len = a.len() + b.len();
    if len != want.len() {
        return Err(format!("message {seq}: {len} bytes, sent {}", want.len()));
    }
    let (wa, wb) = want.split_at(a.len());
    if a == wa && b == wb {
        return Ok(());
    }
    let mut head = [0u8; 8];
    for (d, s) in head.iter_mut().zip(a.iter().chain(b)) {
        *d = *s;
    }
    let first = u64::from_le_bytes(head);
    if first != seq {
        return Err(format!("message {seq}: got message {first} (out of order)"));
    }
    Err(format!("message {seq}: bytes differ (corrupted)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(seq: u64, n: usize) -> Vec<u8> {
        let mut m: Vec<u8> = (0..n).map(|i| (i * 7 + 3) as u8).collect();
        m[..8].copy_from_slice(&seq.to_le_bytes());
        m[n - 8..].copy_from_slice(&(!seq).to_le_bytes());
        m
    }

    /// A message split anywhere passes; a wrong byte in either part
    /// (swapped bytes too), a wrong sequence number or length fails.
    #[test]
    fn the_check_sees_every_fault_wherever_the_message_is_split() {
        let mut want = message(0, 64);
        stamp(&mut want, 5);
        let got = message(5, 64);
        for split in 0..=64 {
            let (a, b) = got.split_at(split);
            assert_eq!(check(5, &want, a, b), Ok(()));
            let other = message(4, 64);
            let (a, b) = other.split_at(split);
            assert!(check(5, &want, a, b).unwrap_err().contains("out of order"));
            let mut bad = got.clone();
            bad[(split + 20) % 64] ^= 1;
            let (a, b) = bad.split_at(split);
            assert!(check(5, &want, a, b).is_err());
            let mut swapped = got.clone();
            swapped.swap(9, 17);
            let (a, b) = swapped.split_at(split);
            assert!(check(5, &want, a, b).is_err());
        }
        assert!(check(5, &want, &got[..60], &[]).is_err());
    }
}
