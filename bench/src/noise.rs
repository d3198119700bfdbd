//! `noise`: Tern's Noise engine against the snow crate (0.10, pure-Rust
//! resolver), in the same run.
//!
//! - Complete handshakes, both sides in one thread, build to Split, in
//!   handshakes per second. Empty payloads; static keys fixed up front, as a
//!   device or service has them; ephemerals from a fast seeded generator on
//!   both sides (snow gets it through a resolver that otherwise delegates to
//!   its default one).
//! - Transport messages: one side encrypts, the other decrypts, through the
//!   ordinary copying APIs of both, in MB/s of payload.
//!
//! Before measuring, every protocol is run once between Tern and snow
//! (Tern initiating), so both sides are known to compute the same thing.

use crate::harness::{self, Outcome, Plan, PlanArgs, Unit};
use crate::rng::FastRng;
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};
use std::cell::RefCell;
use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;
use tern::crypto::{CryptoProvider, DHLEN, RustCrypto, TAGLEN};
use tern::noise::{Builder, HandshakeState, NoiseParams, TransportState};

/// Options of `tern-bench noise`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    plan: PlanArgs,
}

/// Handshakes measured: the three patterns with ChaChaPoly, and the device
/// default (IK) with AES-GCM too.
const HANDSHAKES: &[&str] = &[
    "Noise_NN_25519_ChaChaPoly_SHA256",
    "Noise_XX_25519_ChaChaPoly_SHA256",
    "Noise_IK_25519_ChaChaPoly_SHA256",
    "Noise_IK_25519_AESGCM_SHA256",
];

/// Ciphers and payload sizes of the transport comparisons.
const CIPHERS: &[&str] = &["ChaChaPoly", "AESGCM"];
const SIZES: &[(usize, &str)] = &[(64, "64B"), (1024, "1KiB"), (16384, "16KiB")];

/// Fixed static keys (any 32 bytes are a valid X25519 private key).
pub(crate) struct Statics {
    pub(crate) initiator: [u8; DHLEN],
    pub(crate) responder: [u8; DHLEN],
    pub(crate) responder_public: [u8; DHLEN],
}

impl Statics {
    pub(crate) fn new(rng: &mut FastRng) -> Statics {
        let (mut initiator, mut responder) = ([0u8; DHLEN], [0u8; DHLEN]);
        rng.fill(&mut initiator);
        rng.fill(&mut responder);
        let responder_public = RustCrypto.x25519_base(&responder);
        Statics {
            initiator,
            responder,
            responder_public,
        }
    }
}

/// Runs the comparisons.
pub fn run(args: &Args) -> ExitCode {
    let plan = Plan::from_args(&args.plan);
    let start = Instant::now();
    let mut rng = FastRng::seeded(0x7e27_be9c);
    let keys = Statics::new(&mut rng);

    for name in HANDSHAKES {
        if let Err(e) = interop(name, &keys, &mut rng) {
            eprintln!("error: {name}: Tern and snow disagree: {e}");
            return ExitCode::FAILURE;
        }
    }
    for cipher in CIPHERS {
        let name = format!("Noise_NN_25519_{cipher}_SHA256");
        if let Err(e) = interop(&name, &keys, &mut rng) {
            eprintln!("error: {name}: Tern and snow disagree: {e}");
            return ExitCode::FAILURE;
        }
    }

    let mut results: Vec<Outcome> = Vec::new();
    for name in HANDSHAKES {
        let label = format!("handshake {name}");
        let tp: NoiseParams = name.parse().expect("known protocol name");
        let sp: snow::params::NoiseParams = name.parse().expect("known protocol name");
        let mut tern_rng = FastRng::seeded(1);
        let mut snow_rng = FastRng::seeded(2);
        let mut tern = || {
            black_box(tern_handshake(tp, &keys, &mut tern_rng));
            1
        };
        let mut snow = || {
            black_box(snow_handshake(&sp, &keys, &mut snow_rng));
            1
        };
        results.extend(harness::compare(
            &plan,
            &label,
            Unit::PerSecond("handshakes/s"),
            "snow",
            &mut tern,
            &mut snow,
        ));
    }

    for cipher in CIPHERS {
        let name = format!("Noise_NN_25519_{cipher}_SHA256");
        let tp: NoiseParams = name.parse().expect("known protocol name");
        let sp: snow::params::NoiseParams = name.parse().expect("known protocol name");
        for &(size, size_label) in SIZES {
            let label = format!("transport {cipher} {size_label}");
            if !plan.selects(&label) {
                continue;
            }
            let (mut ta, mut tb) = tern_handshake(tp, &keys, &mut rng);
            let (mut sa, mut sb) = snow_handshake(&sp, &keys, &mut rng);
            let bufs = RefCell::new(Buffers::new(size));
            let mut tern = || {
                let mut bufs = bufs.borrow_mut();
                let (payload, wire, out) = bufs.parts();
                let n = ta.write_message(payload, wire).expect("tern encrypts");
                let m = tb.read_message(&wire[..n], out).expect("tern decrypts");
                black_box(&out[..m]);
                m as u64
            };
            let mut snow = || {
                let mut bufs = bufs.borrow_mut();
                let (payload, wire, out) = bufs.parts();
                let n = sa.write_message(payload, wire).expect("snow encrypts");
                let m = sb.read_message(&wire[..n], out).expect("snow decrypts");
                black_box(&out[..m]);
                m as u64
            };
            results.extend(harness::compare(
                &plan,
                &label,
                Unit::MegabytesPerSecond,
                "snow",
                &mut tern,
                &mut snow,
            ));
        }
    }

    if !results.is_empty() {
        let ahead = results.iter().filter(|r| r.ratio() >= 1.0).count();
        let worst = results
            .iter()
            .map(Outcome::ratio)
            .fold(f64::INFINITY, f64::min);
        println!(
            "# {} comparisons, tern >= snow in {ahead}, lowest ratio {worst:.2}, {:.1} s",
            results.len(),
            start.elapsed().as_secs_f64()
        );
    }
    ExitCode::SUCCESS
}

/// Payload, wire and output buffers of a transport comparison, in one
/// allocation that both sides share, so neither gets a luckier memory layout.
/// Each buffer starts 1 KiB further into a 4 KiB page than the one before:
/// when a copy's source and destination sit at the same offset in their
/// pages, loads falsely wait on earlier stores (4K aliasing) and `memcpy`
/// runs several times slower, which measured the heap, not the protocol.
pub(crate) struct Buffers {
    mem: Vec<u8>,
    stride: usize,
    size: usize,
}

impl Buffers {
    pub(crate) fn new(size: usize) -> Buffers {
        let stride = (size + TAGLEN).next_multiple_of(4096) + 1024;
        let mut mem = vec![0u8; 3 * stride];
        for (i, b) in mem[..size].iter_mut().enumerate() {
            *b = i as u8;
        }
        Buffers { mem, stride, size }
    }

    /// `(payload, wire, out)`.
    pub(crate) fn parts(&mut self) -> (&[u8], &mut [u8], &mut [u8]) {
        let (payload, rest) = self.mem.split_at_mut(self.stride);
        let (wire, out) = rest.split_at_mut(self.stride);
        let len = self.size + TAGLEN;
        (&payload[..self.size], &mut wire[..len], &mut out[..len])
    }
}

/// A complete Tern handshake, both sides, to Split.
fn tern_handshake(
    params: NoiseParams,
    keys: &Statics,
    rng: &mut FastRng,
) -> (TransportState<RustCrypto>, TransportState<RustCrypto>) {
    let (mut i, mut r) = tern_pair(params, keys, rng);
    let (mut msg, mut payload) = ([0u8; 256], [0u8; 256]);
    let mut initiator_writes = true;
    while !(i.is_finished() && r.is_finished()) {
        let (w, rd) = if initiator_writes {
            (&mut i, &mut r)
        } else {
            (&mut r, &mut i)
        };
        let n = w.write_message(&[], &mut msg).expect("tern writes");
        rd.read_message(&msg[..n], &mut payload)
            .expect("tern reads");
        initiator_writes = !initiator_writes;
    }
    (
        i.into_transport().expect("tern finished"),
        r.into_transport().expect("tern finished"),
    )
}

fn tern_pair(
    params: NoiseParams,
    keys: &Statics,
    rng: &mut FastRng,
) -> (HandshakeState, HandshakeState) {
    let pattern = *params.pattern();
    let mut ib = Builder::new(params);
    if pattern.initiator_needs_static() {
        ib = ib.local_private_key(&keys.initiator);
    }
    if pattern.initiator_knows_remote() {
        ib = ib.remote_public_key(&keys.responder_public);
    }
    let mut rb = Builder::new(params);
    if pattern.responder_needs_static() {
        rb = rb.local_private_key(&keys.responder);
    }
    (
        ib.build_initiator(rng).expect("tern builds"),
        rb.build_responder(rng).expect("tern builds"),
    )
}

/// A complete snow handshake, both sides, to transport mode.
pub(crate) fn snow_handshake(
    params: &snow::params::NoiseParams,
    keys: &Statics,
    rng: &mut FastRng,
) -> (snow::TransportState, snow::TransportState) {
    let (mut i, mut r) = snow_pair(params, keys, rng);
    let (mut msg, mut payload) = ([0u8; 256], [0u8; 256]);
    let mut initiator_writes = true;
    while !(i.is_handshake_finished() && r.is_handshake_finished()) {
        let (w, rd) = if initiator_writes {
            (&mut i, &mut r)
        } else {
            (&mut r, &mut i)
        };
        let n = w.write_message(&[], &mut msg).expect("snow writes");
        rd.read_message(&msg[..n], &mut payload)
            .expect("snow reads");
        initiator_writes = !initiator_writes;
    }
    (
        i.into_transport_mode().expect("snow finished"),
        r.into_transport_mode().expect("snow finished"),
    )
}

fn snow_pair(
    params: &snow::params::NoiseParams,
    keys: &Statics,
    rng: &mut FastRng,
) -> (snow::HandshakeState, snow::HandshakeState) {
    // Tern's pattern table says which keys each side needs; the names agree.
    let pattern = *params
        .name
        .parse::<NoiseParams>()
        .expect("known protocol name")
        .pattern();
    let mut ib = snow_builder(params, rng);
    if pattern.initiator_needs_static() {
        ib = ib.local_private_key(&keys.initiator).expect("key length");
    }
    if pattern.initiator_knows_remote() {
        ib = ib
            .remote_public_key(&keys.responder_public)
            .expect("key length");
    }
    let mut rb = snow_builder(params, rng);
    if pattern.responder_needs_static() {
        rb = rb.local_private_key(&keys.responder).expect("key length");
    }
    (
        ib.build_initiator().expect("snow builds"),
        rb.build_responder().expect("snow builds"),
    )
}

fn snow_builder<'a>(params: &snow::params::NoiseParams, rng: &mut FastRng) -> snow::Builder<'a> {
    snow::Builder::with_resolver(
        params.clone(),
        Box::new(BenchResolver {
            seed: rng.next_u64(),
        }),
    )
}

/// snow's default resolver with the benchmark generator in place of the
/// operating system's, so both sides draw ephemerals at the same cost.
struct BenchResolver {
    seed: u64,
}

struct SnowRng(FastRng);

impl Random for SnowRng {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        self.0.fill(dest);
        Ok(())
    }
}

impl CryptoResolver for BenchResolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(SnowRng(FastRng::seeded(self.seed))))
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        DefaultResolver.resolve_dh(choice)
    }

    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }

    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        DefaultResolver.resolve_cipher(choice)
    }
}

/// One handshake between a Tern initiator and a snow responder, then a
/// message each way: the handshake hashes and payloads must agree.
fn interop(name: &str, keys: &Statics, rng: &mut FastRng) -> Result<(), String> {
    let tp: NoiseParams = name.parse().map_err(|e| format!("{e:?}"))?;
    let sp: snow::params::NoiseParams = name.parse().map_err(|e| format!("{e:?}"))?;
    let (mut i, _) = tern_pair(tp, keys, rng);
    let (_, mut r) = snow_pair(&sp, keys, rng);
    let (mut msg, mut payload) = ([0u8; 256], [0u8; 256]);
    let mut turn = 0u8;
    while !(i.is_finished() && r.is_handshake_finished()) {
        let sent = [turn; 5];
        if turn.is_multiple_of(2) {
            let n = i
                .write_message(&sent, &mut msg)
                .map_err(|e| format!("{e:?}"))?;
            let m = r
                .read_message(&msg[..n], &mut payload)
                .map_err(|e| format!("snow read: {e:?}"))?;
            check(&payload[..m], &sent)?;
        } else {
            let n = r
                .write_message(&sent, &mut msg)
                .map_err(|e| format!("{e:?}"))?;
            let m = i
                .read_message(&msg[..n], &mut payload)
                .map_err(|e| format!("tern read: {e:?}"))?;
            check(&payload[..m], &sent)?;
        }
        turn += 1;
    }
    if i.handshake_hash() != r.get_handshake_hash() {
        return Err("handshake hashes differ".into());
    }
    let mut i = i.into_transport().map_err(|e| format!("{e:?}"))?;
    let mut r = r.into_transport_mode().map_err(|e| format!("{e:?}"))?;
    let n = i
        .write_message(b"ping", &mut msg)
        .map_err(|e| format!("{e:?}"))?;
    let m = r
        .read_message(&msg[..n], &mut payload)
        .map_err(|e| format!("snow transport read: {e:?}"))?;
    check(&payload[..m], b"ping")?;
    let n = r
        .write_message(b"pong", &mut msg)
        .map_err(|e| format!("{e:?}"))?;
    let m = i
        .read_message(&msg[..n], &mut payload)
        .map_err(|e| format!("tern transport read: {e:?}"))?;
    check(&payload[..m], b"pong")
}

fn check(got: &[u8], want: &[u8]) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("payload {got:02x?}, expected {want:02x?}"))
    }
}
