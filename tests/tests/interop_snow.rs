//! Live interoperability between Tern's Noise engine and the `snow` crate.
//!
//! Every Curve25519 handshake pattern both libraries know (one-way,
//! fundamental and deferred) and a set of psk variants, with every cipher
//! and hash, in both roles: Tern as initiator against a snow responder and
//! snow as initiator against a Tern responder (832 handshakes). On top of
//! that, `psk0` and `psk<last>` of every pattern and the middle positions of
//! the fundamental ones, each with one suite in rotation (162 handshakes).
//! Each run checks the payloads, the handshake hash, the remote static keys
//! and the number of messages, then transport messages both ways (one way
//! for one-way patterns), a rekey of each direction, and transport messages
//! again.
//!
//! The negative tests tamper with snow's messages, mismatch keys, PSKs and
//! prologues, rekey one side only, and hit the message size limits.
//!
//! Tern's ephemeral keys come from a seeded `ChaCha20Rng`, snow's from the
//! same generator through `fixed_ephemeral_key_for_testing_only`, so every
//! run is reproducible.

use rand_chacha::ChaCha20Rng;
use tern::crypto::{CryptoProvider, RustCrypto};
use tern::noise::{Builder, HandshakeState, NoiseError, NoiseParams, TransportState};
use tern::rand_core::{Rng, SeedableRng};
use tern_tests::{PatternShape, pattern_shape, split_pattern};

type TernHs = HandshakeState<RustCrypto>;
type TernTs = TransportState<RustCrypto>;

/// Every Curve25519 base pattern of the Noise specification with its number
/// of messages: one-way (§7.4), fundamental (§7.5), deferred (§7.6).
const BASES: &[(&str, usize)] = &[
    ("N", 1),
    ("K", 1),
    ("X", 1),
    ("NN", 2),
    ("NK", 2),
    ("NX", 2),
    ("XN", 3),
    ("XK", 3),
    ("XX", 3),
    ("KN", 2),
    ("KK", 2),
    ("KX", 2),
    ("IN", 2),
    ("IK", 2),
    ("IX", 2),
    ("NK1", 2),
    ("NX1", 3),
    ("X1N", 4),
    ("X1K", 4),
    ("XK1", 3),
    ("X1K1", 4),
    ("X1X", 4),
    ("XX1", 3),
    ("X1X1", 4),
    ("K1N", 3),
    ("K1K", 3),
    ("KK1", 2),
    ("K1K1", 3),
    ("K1X", 3),
    ("KX1", 3),
    ("K1X1", 3),
    ("I1N", 3),
    ("I1K", 3),
    ("IK1", 2),
    ("I1K1", 3),
    ("I1X", 3),
    ("IX1", 3),
    ("I1X1", 3),
];

/// psk variants run with every cipher and hash, like the base patterns:
/// the ones Tern's brief names, psks at the start, middle and end, and
/// several PSKs in one pattern (up to five, one per position of X1X1).
const FULL_PSK_PATTERNS: &[&str] = &[
    "Npsk0",
    "Kpsk0",
    "Xpsk1",
    "NNpsk0",
    "NNpsk2",
    "NKpsk0",
    "NKpsk2",
    "XXpsk3",
    "IKpsk1",
    "IKpsk2",
    "NNpsk0+psk2",
    "XXpsk0+psk3",
    "XXpsk0+psk1+psk2+psk3",
    "X1X1psk0+psk1+psk2+psk3+psk4",
];

const CIPHERS: [&str; 2] = ["ChaChaPoly", "AESGCM"];
const HASHES: [&str; 4] = ["SHA256", "SHA512", "BLAKE2s", "BLAKE2b"];

/// Protocol names of the matrices that snow 0.10 cannot parse; they are
/// skipped. snow 0.10 parses all of them, so this is empty: if a later snow
/// drops one, the test names it instead of silently running fewer.
const SNOW_UNSUPPORTED: &[&str] = &[];

/// Patterns run with all 8 cipher/hash suites: the 38 base patterns and
/// [`FULL_PSK_PATTERNS`].
const FULL_COUNT: usize = 38 + 14;

/// Patterns run with one suite each, rotating through the 8 suites (debug
/// builds do X25519 slowly; these add pattern coverage, not suite coverage):
/// `psk0` and `psk<last>` of every base pattern, and every middle psk
/// position of the fundamental patterns, minus those in the full set.
const ROTATING_COUNT: usize = 2 * 38 + 15 - 10;

fn full_patterns() -> Vec<String> {
    let mut names: Vec<String> = BASES.iter().map(|(b, _)| (*b).to_owned()).collect();
    names.extend(FULL_PSK_PATTERNS.iter().map(|s| (*s).to_owned()));
    assert_no_duplicates(&names);
    assert_eq!(names.len(), FULL_COUNT);
    names
}

fn rotating_patterns() -> Vec<String> {
    let full = full_patterns();
    let mut names = Vec::new();
    for (i, (base, n)) in BASES.iter().enumerate() {
        let mut positions = vec![0, *n];
        // Middle positions of the fundamental interactive patterns.
        if (3..15).contains(&i) {
            positions.extend(1..*n);
        }
        for p in positions {
            let name = format!("{base}psk{p}");
            if !full.contains(&name) && !names.contains(&name) {
                names.push(name);
            }
        }
    }
    assert_no_duplicates(&names);
    assert_eq!(names.len(), ROTATING_COUNT);
    names
}

fn assert_no_duplicates(names: &[String]) {
    let mut dedup = names.to_vec();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), names.len(), "pattern list has duplicates");
}

fn message_count(base: &str) -> usize {
    BASES
        .iter()
        .find(|(b, _)| *b == base)
        .unwrap_or_else(|| panic!("unknown base pattern {base}"))
        .1
}

fn hash_len(full_name: &str) -> usize {
    if full_name.ends_with("SHA256") || full_name.ends_with("BLAKE2s") {
        32
    } else {
        64
    }
}

fn public_key(secret: &[u8; 32]) -> [u8; 32] {
    RustCrypto.x25519_base(secret)
}

fn random32(rng: &mut ChaCha20Rng) -> [u8; 32] {
    let mut k = [0u8; 32];
    rng.fill_bytes(&mut k);
    k
}

/// Keys and settings for one handshake. Each side takes what its role and
/// the pattern need; the negative tests give the two sides different copies.
#[derive(Clone)]
struct Material {
    name: String,
    shape: PatternShape,
    messages: usize,
    si: [u8; 32],
    si_pub: [u8; 32],
    sr: [u8; 32],
    sr_pub: [u8; 32],
    /// Ephemeral private keys for snow (Tern draws its own from the RNG).
    ei: [u8; 32],
    er: [u8; 32],
    /// `(position, key)` in the order the modifiers are written.
    psks: Vec<(u8, [u8; 32])>,
    prologue: Vec<u8>,
}

impl Material {
    fn new(name: &str, rng: &mut ChaCha20Rng) -> Material {
        let (base, positions) = split_pattern(name);
        let si = random32(rng);
        let sr = random32(rng);
        Material {
            name: name.to_owned(),
            shape: pattern_shape(base),
            messages: message_count(base),
            si,
            si_pub: public_key(&si),
            sr,
            sr_pub: public_key(&sr),
            ei: random32(rng),
            er: random32(rng),
            psks: positions.into_iter().map(|p| (p, random32(rng))).collect(),
            prologue: format!("tern/snow interop prologue for {name}").into_bytes(),
        }
    }

    /// PSKs in the order the pattern uses them (by position).
    fn psks_in_use_order(&self) -> Vec<[u8; 32]> {
        let mut v = self.psks.clone();
        v.sort_by_key(|(p, _)| *p);
        v.into_iter().map(|(_, k)| k).collect()
    }

    /// The remote static key each side should end up with:
    /// `(initiator's view, responder's view)`.
    fn expected_remote_statics(&self) -> (Option<[u8; 32]>, Option<[u8; 32]>) {
        (
            self.shape.responder_static.then_some(self.sr_pub),
            self.shape.initiator_static.then_some(self.si_pub),
        )
    }
}

fn tern_side(m: &Material, initiator: bool, rng: &mut ChaCha20Rng) -> TernHs {
    let params: NoiseParams = m
        .name
        .parse()
        .unwrap_or_else(|e| panic!("Tern cannot parse {}: {e}", m.name));
    let psks = m.psks_in_use_order();
    let mut b = Builder::new(params).prologue(&m.prologue);
    let (has_static, secret, knows_remote, remote) = if initiator {
        (
            m.shape.initiator_static,
            &m.si,
            m.shape.initiator_knows_responder,
            &m.sr_pub,
        )
    } else {
        (
            m.shape.responder_static,
            &m.sr,
            m.shape.responder_knows_initiator,
            &m.si_pub,
        )
    };
    if has_static {
        b = b.local_private_key(secret);
    }
    if knows_remote {
        b = b.remote_public_key(remote);
    }
    for psk in &psks {
        b = b.psk(psk);
    }
    let hs = if initiator {
        b.build_initiator(rng)
    } else {
        b.build_responder(rng)
    };
    hs.unwrap_or_else(|e| panic!("Tern cannot build {}: {e}", m.name))
}

fn snow_side(m: &Material, initiator: bool) -> snow::HandshakeState {
    let params: snow::params::NoiseParams = m.name.parse().expect("snow parses the name");
    let mut b = snow::Builder::new(params).prologue(&m.prologue).unwrap();
    let (has_static, secret, knows_remote, remote, e) = if initiator {
        (
            m.shape.initiator_static,
            &m.si,
            m.shape.initiator_knows_responder,
            &m.sr_pub,
            &m.ei,
        )
    } else {
        (
            m.shape.responder_static,
            &m.sr,
            m.shape.responder_knows_initiator,
            &m.si_pub,
            &m.er,
        )
    };
    if has_static {
        b = b.local_private_key(secret).unwrap();
    }
    if knows_remote {
        b = b.remote_public_key(remote).unwrap();
    }
    for (pos, psk) in &m.psks {
        b = b.psk(*pos, psk).unwrap();
    }
    b = b.fixed_ephemeral_key_for_testing_only(e);
    let hs = if initiator {
        b.build_initiator()
    } else {
        b.build_responder()
    };
    hs.unwrap_or_else(|e| panic!("snow cannot build {}: {e}", m.name))
}

/// One side of a handshake, whichever library implements it.
trait HsPeer {
    fn lib(&self) -> &'static str;
    fn my_turn(&self) -> bool;
    fn finished(&self) -> bool;
    fn write(&mut self, payload: &[u8]) -> Vec<u8>;
    fn read(&mut self, message: &[u8]) -> Result<Vec<u8>, String>;
}

impl HsPeer for TernHs {
    fn lib(&self) -> &'static str {
        "Tern"
    }
    fn my_turn(&self) -> bool {
        self.is_my_turn()
    }
    fn finished(&self) -> bool {
        self.is_finished()
    }
    fn write(&mut self, payload: &[u8]) -> Vec<u8> {
        let expected = self.next_message_len(payload.len()).unwrap();
        let mut out = vec![0u8; 65535];
        let n = self.write_message(payload, &mut out).unwrap();
        assert_eq!(n, expected, "Tern's next_message_len matches what it wrote");
        out.truncate(n);
        out
    }
    fn read(&mut self, message: &[u8]) -> Result<Vec<u8>, String> {
        let mut out = vec![0u8; 65535];
        let n = self
            .read_message(message, &mut out)
            .map_err(|e| format!("{e:?}"))?;
        out.truncate(n);
        Ok(out)
    }
}

impl HsPeer for snow::HandshakeState {
    fn lib(&self) -> &'static str {
        "snow"
    }
    fn my_turn(&self) -> bool {
        self.is_my_turn()
    }
    fn finished(&self) -> bool {
        self.is_handshake_finished()
    }
    fn write(&mut self, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; 65535];
        let n = self.write_message(payload, &mut out).unwrap();
        out.truncate(n);
        out
    }
    fn read(&mut self, message: &[u8]) -> Result<Vec<u8>, String> {
        let mut out = vec![0u8; 65535];
        let n = self
            .read_message(message, &mut out)
            .map_err(|e| format!("{e:?}"))?;
        out.truncate(n);
        Ok(out)
    }
}

/// The payload of handshake message `i`: non-empty, different per message.
fn hs_payload(ctx: &str, i: usize) -> Vec<u8> {
    format!("handshake payload {i} of {ctx};")
        .repeat(i + 1)
        .into_bytes()
}

/// Sends message `i` from `w` to `r` and checks the payload arrives.
fn step(w: &mut dyn HsPeer, r: &mut dyn HsPeer, i: usize, ctx: &str) {
    let payload = hs_payload(ctx, i);
    let msg = w.write(&payload);
    let got = r.read(&msg).unwrap_or_else(|e| {
        panic!(
            "{ctx}: {} failed to read message {i} from {}: {e}",
            r.lib(),
            w.lib()
        )
    });
    assert_eq!(got, payload, "{ctx}: payload of message {i}");
}

/// Runs handshake messages until both sides are finished or `limit`
/// messages were sent; returns how many were sent.
fn run_handshake(
    init: &mut dyn HsPeer,
    resp: &mut dyn HsPeer,
    sent_so_far: usize,
    limit: usize,
    ctx: &str,
) -> usize {
    let mut sent = sent_so_far;
    while sent < limit {
        assert_eq!(
            init.finished(),
            resp.finished(),
            "{ctx}: both sides finish together"
        );
        if init.finished() {
            break;
        }
        let (i_turn, r_turn) = (init.my_turn(), resp.my_turn());
        assert_ne!(
            i_turn, r_turn,
            "{ctx}: exactly one side writes message {sent}"
        );
        assert_eq!(i_turn, sent.is_multiple_of(2), "{ctx}: turns alternate");
        if i_turn {
            step(init, resp, sent, ctx);
        } else {
            step(resp, init, sent, ctx);
        }
        sent += 1;
    }
    sent
}

fn transport_payloads(ctx: &str, phase: usize, from: &str) -> Vec<Vec<u8>> {
    vec![
        Vec::new(),
        format!("{from} says hello in phase {phase} of {ctx}").into_bytes(),
        (0..1500u32).map(|i| (i * 7 + phase as u32) as u8).collect(),
    ]
}

fn tern_send(t: &mut TernTs, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; payload.len() + 16];
    let n = t.write_message(payload, &mut out).unwrap();
    assert_eq!(n, payload.len() + 16);
    out
}

fn tern_recv(t: &mut TernTs, msg: &[u8]) -> Result<Vec<u8>, NoiseError> {
    let mut out = vec![0u8; msg.len()];
    let n = t.read_message(msg, &mut out)?;
    out.truncate(n);
    Ok(out)
}

fn snow_send(s: &mut snow::TransportState, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; payload.len() + 16];
    let n = s.write_message(payload, &mut out).unwrap();
    out.truncate(n);
    out
}

fn snow_recv(s: &mut snow::TransportState, msg: &[u8]) -> Result<Vec<u8>, snow::Error> {
    let mut out = vec![0u8; msg.len()];
    let n = s.read_message(msg, &mut out)?;
    out.truncate(n);
    Ok(out)
}

/// Transport messages, a rekey of each used direction, transport messages
/// again; then the nonces and the one-way restrictions.
fn transport_exchange(
    tern: &mut TernTs,
    snow: &mut snow::TransportState,
    tern_initiates: bool,
    one_way: bool,
    ctx: &str,
) {
    let tern_sends = !one_way || tern_initiates;
    let snow_sends = !one_way || !tern_initiates;
    let mut count = 0u64;
    for phase in 0..2 {
        if phase == 1 {
            if tern_sends {
                tern.rekey_outgoing();
                snow.rekey_incoming();
            }
            if snow_sends {
                snow.rekey_outgoing();
                tern.rekey_incoming();
            }
        }
        let to_snow = transport_payloads(ctx, phase, "Tern");
        let to_tern = transport_payloads(ctx, phase, "snow");
        for (a, b) in to_snow.iter().zip(&to_tern) {
            if tern_sends {
                let ct = tern_send(tern, a);
                if !a.is_empty() {
                    assert_ne!(&ct[..a.len()], &a[..], "{ctx}: Tern's output is encrypted");
                }
                let pt = snow_recv(snow, &ct).unwrap_or_else(|e| {
                    panic!("{ctx}: snow rejects Tern transport message (phase {phase}): {e}")
                });
                assert_eq!(&pt, a, "{ctx}: Tern -> snow transport payload");
            }
            if snow_sends {
                let ct = snow_send(snow, b);
                let pt = tern_recv(tern, &ct).unwrap_or_else(|e| {
                    panic!("{ctx}: Tern rejects snow transport message (phase {phase}): {e}")
                });
                assert_eq!(&pt, b, "{ctx}: snow -> Tern transport payload");
            }
            count += 1;
        }
    }
    // Rekey keeps the nonces (Noise §4.2), in both libraries.
    let tern_out = if tern_sends { count } else { 0 };
    let snow_out = if snow_sends { count } else { 0 };
    assert_eq!(tern.sending_nonce(), tern_out, "{ctx}: Tern sending nonce");
    assert_eq!(
        tern.receiving_nonce(),
        snow_out,
        "{ctx}: Tern receiving nonce"
    );
    assert_eq!(
        snow.receiving_nonce(),
        tern_out,
        "{ctx}: snow receiving nonce"
    );
    assert_eq!(snow.sending_nonce(), snow_out, "{ctx}: snow sending nonce");
    if one_way {
        let mut buf = [0u8; 64];
        if tern_initiates {
            assert_eq!(
                tern.read_message(&[0u8; 16], &mut buf),
                Err(NoiseError::WrongTurn),
                "{ctx}: a one-way initiator cannot read"
            );
        } else {
            assert_eq!(
                tern.write_message(b"x", &mut buf),
                Err(NoiseError::WrongTurn),
                "{ctx}: a one-way responder cannot write"
            );
        }
    }
}

/// One full interop run: handshake, checks, transport, rekey, transport.
fn interop_run(name: &str, tern_initiates: bool, rng: &mut ChaCha20Rng) {
    let m = Material::new(name, rng);
    let ctx = format!(
        "{name} ({})",
        if tern_initiates {
            "Tern initiator, snow responder"
        } else {
            "snow initiator, Tern responder"
        }
    );
    let mut tern = tern_side(&m, tern_initiates, rng);
    let mut snow = snow_side(&m, !tern_initiates);
    let sent = if tern_initiates {
        run_handshake(&mut tern, &mut snow, 0, usize::MAX, &ctx)
    } else {
        run_handshake(&mut snow, &mut tern, 0, usize::MAX, &ctx)
    };
    assert_eq!(sent, m.messages, "{ctx}: number of handshake messages");
    assert!(tern.is_finished() && snow.is_handshake_finished());

    let h = tern.handshake_hash().to_vec();
    assert_eq!(h.len(), hash_len(name), "{ctx}: handshake hash length");
    assert_eq!(
        h,
        snow.get_handshake_hash(),
        "{ctx}: handshake hashes differ"
    );

    let (init_rs, resp_rs) = m.expected_remote_statics();
    let (tern_rs, snow_rs) = if tern_initiates {
        (init_rs, resp_rs)
    } else {
        (resp_rs, init_rs)
    };
    assert_eq!(
        tern.remote_static(),
        tern_rs.as_ref(),
        "{ctx}: Tern's remote static"
    );
    assert_eq!(
        snow.get_remote_static(),
        snow_rs.as_ref().map(|k| &k[..]),
        "{ctx}: snow's remote static"
    );

    let mut tt = tern.into_transport().unwrap();
    let mut st = snow.into_transport_mode().unwrap();
    assert_eq!(
        tt.handshake_hash(),
        &h[..],
        "{ctx}: transport keeps the hash"
    );
    assert_eq!(
        tt.remote_static(),
        tern_rs.as_ref(),
        "{ctx}: transport remote static"
    );
    transport_exchange(&mut tt, &mut st, tern_initiates, m.shape.one_way, &ctx);
}

fn snow_parses(name: &str) -> bool {
    let ok = name.parse::<snow::params::NoiseParams>().is_ok();
    assert_eq!(
        !ok,
        SNOW_UNSUPPORTED.contains(&name),
        "snow 0.10 support for {name} changed"
    );
    ok
}

/// Runs the full patterns with both ciphers and `hash`, both directions;
/// returns the number of handshakes run.
fn run_full_matrix(hash: &str, seed: u64) -> usize {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut runs = 0;
    let mut skipped = 0;
    for pattern in full_patterns() {
        for cipher in CIPHERS {
            let name = format!("Noise_{pattern}_25519_{cipher}_{hash}");
            if !snow_parses(&name) {
                skipped += 1;
                continue;
            }
            interop_run(&name, true, &mut rng);
            interop_run(&name, false, &mut rng);
            runs += 2;
        }
    }
    assert_eq!(runs, (FULL_COUNT * CIPHERS.len() - skipped) * 2);
    println!(
        "{hash}: {runs} Tern<->snow handshakes with transport and rekey \
         ({FULL_COUNT} patterns x {} ciphers x 2 roles, {skipped} skipped)",
        CIPHERS.len()
    );
    runs
}

#[test]
fn snow_full_matrix_sha256() {
    assert_eq!(run_full_matrix("SHA256", 0x5a256), 208);
}

#[test]
fn snow_full_matrix_sha512() {
    assert_eq!(run_full_matrix("SHA512", 0x5a512), 208);
}

#[test]
fn snow_full_matrix_blake2s() {
    assert_eq!(run_full_matrix("BLAKE2s", 0xb25), 208);
}

#[test]
fn snow_full_matrix_blake2b() {
    assert_eq!(run_full_matrix("BLAKE2b", 0xb2b), 208);
}

#[test]
fn snow_psk_positions_of_every_pattern() {
    let mut rng = ChaCha20Rng::seed_from_u64(0x9e);
    let mut runs = 0;
    let mut suites = std::collections::BTreeSet::new();
    for (i, pattern) in rotating_patterns().iter().enumerate() {
        let cipher = CIPHERS[i % 2];
        let hash = HASHES[(i / 2) % 4];
        let name = format!("Noise_{pattern}_25519_{cipher}_{hash}");
        if !snow_parses(&name) {
            continue;
        }
        interop_run(&name, true, &mut rng);
        interop_run(&name, false, &mut rng);
        suites.insert((cipher, hash));
        runs += 2;
    }
    assert_eq!(suites.len(), 8, "every suite had a turn");
    assert_eq!(runs, ROTATING_COUNT * 2);
    assert_eq!(runs, 162);
    println!("{runs} Tern<->snow handshakes of psk variants ({ROTATING_COUNT} patterns x 2 roles)");
}

#[test]
fn pattern_matrix_is_complete() {
    assert_eq!(BASES.len(), 38);
    // 832 handshakes with all suites, 162 with rotating suites.
    assert_eq!(FULL_COUNT * CIPHERS.len() * HASHES.len() * 2, 832);
    let all: Vec<String> = full_patterns()
        .into_iter()
        .chain(rotating_patterns())
        .collect();
    assert_no_duplicates(&all);
    // Every name is one Tern and snow both accept, and Tern's reading of it
    // agrees with this file's tables.
    for pattern in &all {
        for cipher in CIPHERS {
            for hash in HASHES {
                let name = format!("Noise_{pattern}_25519_{cipher}_{hash}");
                let tern: NoiseParams = name.parse().unwrap();
                assert_eq!(tern.name(), name);
                let (base, psks) = split_pattern(&name);
                assert_eq!(tern.pattern().base_name(), base);
                assert_eq!(
                    tern.pattern().messages().len(),
                    message_count(base),
                    "{name}"
                );
                assert_eq!(tern.pattern().psk_count(), psks.len(), "{name}");
                assert_eq!(
                    tern.pattern().is_one_way(),
                    pattern_shape(base).one_way,
                    "{name}"
                );
                assert!(snow_parses(&name));
            }
        }
    }
}

/// Drives a handshake up to message `index`, which `snow` writes, and
/// returns both states and the message with its payload.
fn handshake_until_snow_writes(
    m: &Material,
    index: usize,
    rng: &mut ChaCha20Rng,
    ctx: &str,
) -> (TernHs, snow::HandshakeState, Vec<u8>, Vec<u8>) {
    // snow writes even-numbered messages as initiator, odd ones as responder.
    let snow_initiates = index.is_multiple_of(2);
    let mut tern = tern_side(m, !snow_initiates, rng);
    let mut snow = snow_side(m, snow_initiates);
    let sent = if snow_initiates {
        run_handshake(&mut snow, &mut tern, 0, index, ctx)
    } else {
        run_handshake(&mut tern, &mut snow, 0, index, ctx)
    };
    assert_eq!(sent, index);
    assert!(snow.is_my_turn());
    let payload = hs_payload(ctx, index);
    let msg = HsPeer::write(&mut snow, &payload);
    (tern, snow, msg, payload)
}

#[test]
fn tampered_snow_handshake_messages_are_rejected_and_the_state_survives() {
    // (pattern, index of a snow-written message that carries a tag)
    const CASES: &[(&str, usize)] = &[
        ("N", 0),
        ("K", 0),
        ("X", 0),
        ("NN", 1),
        ("NK", 0),
        ("NK", 1),
        ("NX", 1),
        ("XX", 1),
        ("XX", 2),
        ("IK", 0),
        ("IK", 1),
        ("KK", 1),
        ("NNpsk0", 0),
        ("NKpsk2", 1),
        ("XXpsk3", 2),
        ("IKpsk2", 1),
        ("X1X", 2),
        ("XK1", 1),
        ("I1X1", 2),
        ("K1K1", 2),
    ];
    let mut rng = ChaCha20Rng::seed_from_u64(0x7a3e);
    let mut checked = 0usize;
    for (k, (pattern, index)) in CASES.iter().enumerate() {
        // Each case with one suite, all eight suites in turn.
        {
            let cipher = CIPHERS[k % 2];
            let hash = HASHES[(k / 2) % HASHES.len()];
            let name = format!("Noise_{pattern}_25519_{cipher}_{hash}");
            let ctx = format!("{name}, message {index} tampered");
            let m = Material::new(&name, &mut rng);
            let (mut tern, mut snow, msg, payload) =
                handshake_until_snow_writes(&m, *index, &mut rng, &ctx);
            let fixed = msg.len() - payload.len();
            let mut out = vec![0u8; 65535];
            for pos in 0..msg.len() {
                let mut bad = msg.clone();
                bad[pos] ^= 0x01;
                assert_eq!(
                    tern.read_message(&bad, &mut out),
                    Err(NoiseError::Decrypt),
                    "{ctx}: byte {pos} of {} flipped",
                    msg.len()
                );
                assert_eq!(tern.message_index(), *index, "{ctx}: state moved on error");
                checked += 1;
            }
            // The last bit of the ephemeral key is ignored by X25519 but not
            // by the handshake hash.
            let mut bad = msg.clone();
            bad[31] ^= 0x80;
            assert_eq!(
                tern.read_message(&bad, &mut out),
                Err(NoiseError::Decrypt),
                "{ctx}: bit 255 of e"
            );
            assert_eq!(
                tern.read_message(&msg[..msg.len() - 1], &mut out),
                Err(NoiseError::Decrypt),
                "{ctx}: truncated by one byte"
            );
            let mut longer = msg.clone();
            longer.push(0);
            assert_eq!(
                tern.read_message(&longer, &mut out),
                Err(NoiseError::Decrypt),
                "{ctx}: one byte longer"
            );
            assert_eq!(
                tern.read_message(&msg[..fixed - 1], &mut out),
                Err(NoiseError::MessageTooShort {
                    needed: fixed,
                    got: fixed - 1
                }),
                "{ctx}: shorter than the pattern's fixed part"
            );
            assert_eq!(
                tern.read_message(&msg, &mut out[..payload.len() - 1]),
                Err(NoiseError::BufferTooSmall {
                    needed: payload.len()
                }),
                "{ctx}: payload buffer one byte short"
            );
            assert!(!tern.is_my_turn(), "{ctx}: still Tern's turn to read");

            // The untampered message still goes through, and so does the rest.
            let got = HsPeer::read(&mut tern, &msg)
                .unwrap_or_else(|e| panic!("{ctx}: original rejected: {e}"));
            assert_eq!(got, payload, "{ctx}");
            let snow_initiates = index.is_multiple_of(2);
            let sent = if snow_initiates {
                run_handshake(&mut snow, &mut tern, index + 1, usize::MAX, &ctx)
            } else {
                run_handshake(&mut tern, &mut snow, index + 1, usize::MAX, &ctx)
            };
            assert_eq!(sent, m.messages, "{ctx}");
            assert_eq!(tern.handshake_hash(), snow.get_handshake_hash(), "{ctx}");
            let mut tt = tern.into_transport().unwrap();
            let mut st = snow.into_transport_mode().unwrap();
            transport_exchange(&mut tt, &mut st, !snow_initiates, m.shape.one_way, &ctx);
        }
    }
    println!("{checked} tampered handshake messages rejected");
    assert!(checked > 2000, "{checked}");
    assert_eq!(CASES.len(), 20);
}

/// A finished NN handshake, Tern initiator and snow responder.
fn nn_pair(cipher: &str, hash: &str, rng: &mut ChaCha20Rng) -> (TernTs, snow::HandshakeState) {
    let name = format!("Noise_NN_25519_{cipher}_{hash}");
    let m = Material::new(&name, rng);
    let mut tern = tern_side(&m, true, rng);
    let mut snow = snow_side(&m, false);
    assert_eq!(run_handshake(&mut tern, &mut snow, 0, usize::MAX, &name), 2);
    assert_eq!(tern.handshake_hash(), snow.get_handshake_hash());
    (tern.into_transport().unwrap(), snow)
}

#[test]
fn tampered_snow_transport_messages_are_rejected_and_the_nonce_kept() {
    let mut rng = ChaCha20Rng::seed_from_u64(0x7a3f);
    for cipher in CIPHERS {
        for hash in ["SHA256", "BLAKE2b"] {
            let ctx = format!("NN {cipher} {hash}");
            let (mut tern, snow) = nn_pair(cipher, hash, &mut rng);
            let mut snow = snow.into_transport_mode().unwrap();
            let msgs: Vec<Vec<u8>> = (0..3)
                .map(|i| snow_send(&mut snow, format!("record {i} of {ctx}").as_bytes()))
                .collect();
            for pos in 0..msgs[0].len() {
                let mut bad = msgs[0].clone();
                bad[pos] ^= 0x20;
                assert_eq!(
                    tern_recv(&mut tern, &bad),
                    Err(NoiseError::Decrypt),
                    "{ctx}: byte {pos}"
                );
            }
            // Out of order: message 1 is not valid at nonce 0.
            assert_eq!(
                tern_recv(&mut tern, &msgs[1]),
                Err(NoiseError::Decrypt),
                "{ctx}"
            );
            assert_eq!(
                tern_recv(&mut tern, &msgs[0][..15]),
                Err(NoiseError::MessageTooShort {
                    needed: 16,
                    got: 15
                }),
                "{ctx}"
            );
            assert_eq!(tern.receiving_nonce(), 0, "{ctx}: failures keep the nonce");
            for (i, msg) in msgs.iter().enumerate() {
                let pt = tern_recv(&mut tern, msg).unwrap();
                assert_eq!(pt, format!("record {i} of {ctx}").as_bytes());
            }
            // A replay is refused.
            assert_eq!(
                tern_recv(&mut tern, &msgs[2]),
                Err(NoiseError::Decrypt),
                "{ctx}: replay"
            );
            assert_eq!(tern.receiving_nonce(), 3);
        }
    }
}

#[test]
fn rekey_on_one_side_only_breaks_the_channel_until_the_other_follows() {
    let mut rng = ChaCha20Rng::seed_from_u64(0x4e4b);
    for cipher in CIPHERS {
        let ctx = format!("NN {cipher}");
        let (mut tern, snow) = nn_pair(cipher, "SHA256", &mut rng);
        let mut snow = snow.into_transport_mode().unwrap();

        // Tern -> snow: only Tern rekeys.
        tern.rekey_outgoing();
        let ct = tern_send(&mut tern, b"after Tern's rekey");
        assert!(
            snow_recv(&mut snow, &ct).is_err(),
            "{ctx}: snow must not read the new key with the old one"
        );
        snow.rekey_incoming();
        assert_eq!(
            snow_recv(&mut snow, &ct).unwrap(),
            b"after Tern's rekey",
            "{ctx}"
        );

        // snow -> Tern: only snow rekeys.
        snow.rekey_outgoing();
        let ct = snow_send(&mut snow, b"after snow's rekey");
        assert_eq!(tern_recv(&mut tern, &ct), Err(NoiseError::Decrypt), "{ctx}");
        assert_eq!(tern.receiving_nonce(), 0, "{ctx}");
        tern.rekey_incoming();
        assert_eq!(
            tern_recv(&mut tern, &ct).unwrap(),
            b"after snow's rekey",
            "{ctx}"
        );

        // Several rekeys in a row agree too, and the incoming side of one
        // direction is not confused with the other.
        for _ in 0..3 {
            tern.rekey_outgoing();
            snow.rekey_incoming();
        }
        let ct = tern_send(&mut tern, b"three rekeys later");
        assert_eq!(
            snow_recv(&mut snow, &ct).unwrap(),
            b"three rekeys later",
            "{ctx}"
        );
        let ct = snow_send(&mut snow, b"reply");
        assert_eq!(tern_recv(&mut tern, &ct).unwrap(), b"reply", "{ctx}");
    }
}

/// Which side's material differs, and where the handshake must fail.
struct Mismatch {
    name: &'static str,
    what: &'static str,
    tern_initiates: bool,
    fail_at: usize,
    change: fn(&mut Material, &mut ChaCha20Rng),
}

#[test]
fn mismatched_psk_prologue_name_or_static_key_is_rejected() {
    let cases = [
        Mismatch {
            name: "Noise_NNpsk0_25519_ChaChaPoly_SHA256",
            what: "snow's psk0 differs",
            tern_initiates: false,
            fail_at: 0,
            change: |m, rng| m.psks[0].1 = random32(rng),
        },
        Mismatch {
            name: "Noise_NNpsk0_25519_AESGCM_BLAKE2s",
            what: "snow's psk0 differs",
            tern_initiates: true,
            fail_at: 0,
            change: |m, rng| m.psks[0].1 = random32(rng),
        },
        Mismatch {
            name: "Noise_XXpsk0+psk3_25519_ChaChaPoly_BLAKE2b",
            what: "snow's psk3 differs",
            tern_initiates: false,
            fail_at: 2,
            change: |m, rng| m.psks[1].1 = random32(rng),
        },
        Mismatch {
            name: "Noise_XXpsk0+psk3_25519_AESGCM_SHA512",
            what: "psk0 and psk3 swapped on snow's side",
            tern_initiates: false,
            fail_at: 0,
            change: |m, _| {
                let (a, b) = (m.psks[0].1, m.psks[1].1);
                m.psks[0].1 = b;
                m.psks[1].1 = a;
            },
        },
        Mismatch {
            name: "Noise_IKpsk2_25519_ChaChaPoly_SHA256",
            what: "snow's psk2 differs",
            tern_initiates: true,
            fail_at: 1,
            change: |m, rng| m.psks[0].1 = random32(rng),
        },
        Mismatch {
            name: "Noise_NN_25519_ChaChaPoly_SHA256",
            what: "snow's prologue differs",
            tern_initiates: true,
            fail_at: 1,
            change: |m, _| m.prologue.push(b'!'),
        },
        Mismatch {
            name: "Noise_NN_25519_AESGCM_SHA256",
            what: "snow runs AESGCM_BLAKE2s instead",
            tern_initiates: true,
            fail_at: 1,
            change: |m, _| m.name = "Noise_NN_25519_AESGCM_BLAKE2s".to_owned(),
        },
        Mismatch {
            name: "Noise_NK_25519_ChaChaPoly_BLAKE2s",
            what: "snow initiator expects another responder key",
            tern_initiates: false,
            fail_at: 0,
            change: |m, rng| m.sr_pub = public_key(&random32(rng)),
        },
        Mismatch {
            name: "Noise_IK_25519_AESGCM_SHA256",
            what: "snow initiator expects another responder key",
            tern_initiates: false,
            fail_at: 0,
            change: |m, rng| m.sr_pub = public_key(&random32(rng)),
        },
        Mismatch {
            name: "Noise_KK_25519_ChaChaPoly_SHA512",
            what: "snow initiator uses another static key than Tern expects",
            tern_initiates: false,
            fail_at: 0,
            change: |m, rng| m.si = random32(rng),
        },
        Mismatch {
            name: "Noise_XK_25519_ChaChaPoly_SHA256",
            what: "snow responder has another static key than Tern expects",
            tern_initiates: true,
            fail_at: 0,
            change: |m, rng| m.sr = random32(rng),
        },
    ];
    let mut rng = ChaCha20Rng::seed_from_u64(0xbad);
    for case in &cases {
        let ctx = format!("{}: {}", case.name, case.what);
        let m_tern = Material::new(case.name, &mut rng);
        let mut m_snow = m_tern.clone();
        (case.change)(&mut m_snow, &mut rng);
        let mut tern = tern_side(&m_tern, case.tern_initiates, &mut rng);
        let mut snow = snow_side(&m_snow, !case.tern_initiates);
        let sent = if case.tern_initiates {
            run_handshake(&mut tern, &mut snow, 0, case.fail_at, &ctx)
        } else {
            run_handshake(&mut snow, &mut tern, 0, case.fail_at, &ctx)
        };
        assert_eq!(sent, case.fail_at, "{ctx}");
        let tern_writes = case.fail_at.is_multiple_of(2) == case.tern_initiates;
        let payload = hs_payload(&ctx, case.fail_at);
        if tern_writes {
            let msg = HsPeer::write(&mut tern, &payload);
            assert!(
                HsPeer::read(&mut snow, &msg).is_err(),
                "{ctx}: snow accepted message {}",
                case.fail_at
            );
        } else {
            let msg = HsPeer::write(&mut snow, &payload);
            let mut out = vec![0u8; 65535];
            assert_eq!(
                tern.read_message(&msg, &mut out),
                Err(NoiseError::Decrypt),
                "{ctx}: Tern must reject message {}",
                case.fail_at
            );
        }
    }
}

#[test]
fn largest_messages_interoperate_and_larger_ones_are_refused() {
    let mut rng = ChaCha20Rng::seed_from_u64(0xb16);
    for cipher in CIPHERS {
        let name = format!("Noise_NN_25519_{cipher}_SHA256");
        let m = Material::new(&name, &mut rng);
        let mut tern = tern_side(&m, true, &mut rng);
        let mut snow = snow_side(&m, false);
        let mut out = vec![0u8; 70000];
        // Message 0 is e (32 bytes) and a plaintext payload.
        let all: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
        let big = all[..65503].to_vec();
        assert_eq!(tern.next_message_len(big.len()), Ok(65535));
        let mut too_big = big.clone();
        too_big.push(0);
        assert_eq!(
            tern.write_message(&too_big, &mut out),
            Err(NoiseError::MessageTooLarge { len: 65536 })
        );
        let msg = HsPeer::write(&mut tern, &big);
        assert_eq!(msg.len(), 65535);
        assert_eq!(HsPeer::read(&mut snow, &msg).unwrap(), big, "{name}");
        // Message 1 is e, ee and an encrypted payload: 65535 - 32 - 16.
        let big1 = all[..65487].to_vec();
        let msg = HsPeer::write(&mut snow, &big1);
        assert_eq!(msg.len(), 65535);
        assert_eq!(HsPeer::read(&mut tern, &msg).unwrap(), big1, "{name}");
        assert_eq!(tern.handshake_hash(), snow.get_handshake_hash());

        let mut tern = tern.into_transport().unwrap();
        let mut snow = snow.into_transport_mode().unwrap();
        let big2 = all[..65519].to_vec();
        let ct = tern_send(&mut tern, &big2);
        assert_eq!(ct.len(), 65535);
        assert_eq!(snow_recv(&mut snow, &ct).unwrap(), big2, "{name}");
        let ct = snow_send(&mut snow, &big2);
        assert_eq!(tern_recv(&mut tern, &ct).unwrap(), big2, "{name}");
        assert_eq!(
            tern.write_message(&all[..65520], &mut out),
            Err(NoiseError::MessageTooLarge { len: 65536 })
        );
        assert_eq!(
            tern.read_message(&out[..65536], &mut vec![0u8; 70000]),
            Err(NoiseError::MessageTooLarge { len: 65536 })
        );
        assert_eq!(tern.sending_nonce(), 1);
        assert_eq!(tern.receiving_nonce(), 1);
    }
}

#[test]
fn explicit_nonce_and_in_place_apis_interoperate() {
    let mut rng = ChaCha20Rng::seed_from_u64(0xe0);
    const NONCES: [u64; 6] = [7, 0, 3, 1 << 40, u64::MAX - 1, 1];
    for cipher in CIPHERS {
        let ctx = format!("NN {cipher}");
        // Explicit nonces, against snow's stateless transport.
        let (mut tern, snow) = nn_pair(cipher, "BLAKE2s", &mut rng);
        let snow = snow.into_stateless_transport_mode().unwrap();
        let mut buf = vec![0u8; 256];
        let mut out = vec![0u8; 256];
        for n in NONCES {
            let payload = format!("nonce {n}");
            let len = tern
                .write_message_with_nonce(n, payload.as_bytes(), &mut buf)
                .unwrap();
            let k = snow.read_message(n, &buf[..len], &mut out).unwrap();
            assert_eq!(
                &out[..k],
                payload.as_bytes(),
                "{ctx}: Tern -> snow at nonce {n}"
            );
            let k = snow.write_message(n, payload.as_bytes(), &mut buf).unwrap();
            let wrong = if n == 0 { 1 } else { n - 1 };
            assert_eq!(
                tern.read_message_with_nonce(wrong, &buf[..k], &mut out),
                Err(NoiseError::Decrypt),
                "{ctx}: snow's message at nonce {n} read at {wrong}"
            );
            let j = tern
                .read_message_with_nonce(n, &buf[..k], &mut out)
                .unwrap();
            assert_eq!(
                &out[..j],
                payload.as_bytes(),
                "{ctx}: snow -> Tern at nonce {n}"
            );
        }
        assert_eq!(
            tern.write_message_with_nonce(u64::MAX, b"x", &mut buf),
            Err(NoiseError::NonceExhausted)
        );
        // Explicit nonces leave the internal counters alone.
        assert_eq!((tern.sending_nonce(), tern.receiving_nonce()), (0, 0));

        // In-place, and SetNonce, against snow's ordinary transport.
        let (mut tern, snow) = nn_pair(cipher, "SHA512", &mut rng);
        let mut snow = snow.into_transport_mode().unwrap();
        let mut buf = vec![0u8; 256];
        let text = b"encrypted in place";
        buf[..text.len()].copy_from_slice(text);
        let len = tern.write_message_in_place(&mut buf, text.len()).unwrap();
        assert_eq!(snow_recv(&mut snow, &buf[..len]).unwrap(), text, "{ctx}");
        let mut ct = snow_send(&mut snow, b"decrypted in place");
        let n = tern.read_message_in_place(&mut ct).unwrap();
        assert_eq!(&ct[..n], b"decrypted in place", "{ctx}");
        let skipped: Vec<Vec<u8>> = (0..4)
            .map(|i| snow_send(&mut snow, format!("msg {i}").as_bytes()))
            .collect();
        tern.set_receiving_nonce(1 + 3);
        assert_eq!(
            tern_recv(&mut tern, &skipped[3]).unwrap(),
            b"msg 3",
            "{ctx}: SetNonce"
        );
        assert_eq!(tern.receiving_nonce(), 5);
    }
}

#[test]
fn tern_public_keys_match_snow_generated_keypairs() {
    let builder = snow::Builder::new("Noise_NN_25519_ChaChaPoly_SHA256".parse().unwrap());
    for _ in 0..16 {
        let kp = builder.generate_keypair().unwrap();
        let secret: [u8; 32] = kp.private.as_slice().try_into().unwrap();
        assert_eq!(public_key(&secret).as_slice(), kp.public.as_slice());
    }
}
