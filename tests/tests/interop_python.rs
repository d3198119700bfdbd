//! Live interoperability between Tern's Noise engine and Python's
//! `noiseprotocol` 0.3.1, over real message bytes.
//!
//! The test process starts `tests/python/noise_peer.py` with the
//! interpreter of a venv under the target directory (created on first use,
//! see `tern_tests::python_interpreter`) and drives it line by line: one
//! Python process per test handles many sessions one after the other.
//!
//! If the venv cannot be made these tests fail, unless
//! `TERN_SKIP_PYTHON_INTEROP=1` is set, in which case they say they skipped.

use rand_chacha::ChaCha20Rng;
use tern::crypto::{CryptoProvider, RustCrypto};
use tern::noise::{Builder, HandshakeState, NoiseError, NoiseParams, TransportState};
use tern::rand_core::{Rng, SeedableRng};
use tern_tests::{
    PatternShape, PythonPeer, pattern_shape, python_interpreter, split_pattern, wire_hex,
    wire_unhex,
};

type TernHs = HandshakeState<RustCrypto>;
type TernTs = TransportState<RustCrypto>;
/// Changes one side's copy of the material.
type Change = fn(&mut Material, &mut ChaCha20Rng);

const PATTERNS: [(&str, usize); 7] = [
    ("NN", 2),
    ("NK", 2),
    ("XX", 3),
    ("IK", 2),
    ("NNpsk0", 2),
    ("XXpsk3", 3),
    ("IKpsk2", 2),
];
const CIPHERS: [&str; 2] = ["ChaChaPoly", "AESGCM"];
const HASHES: [&str; 4] = ["SHA256", "SHA512", "BLAKE2s", "BLAKE2b"];

fn random32(rng: &mut ChaCha20Rng) -> [u8; 32] {
    let mut k = [0u8; 32];
    rng.fill_bytes(&mut k);
    k
}

fn public_key(secret: &[u8; 32]) -> [u8; 32] {
    RustCrypto.x25519_base(secret)
}

/// Keys and settings of one session.
#[derive(Clone)]
struct Material {
    name: String,
    shape: PatternShape,
    si: [u8; 32],
    si_pub: [u8; 32],
    sr: [u8; 32],
    sr_pub: [u8; 32],
    /// In the order the pattern uses them.
    psks: Vec<[u8; 32]>,
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
            si,
            si_pub: public_key(&si),
            sr,
            sr_pub: public_key(&sr),
            psks: positions.iter().map(|_| random32(rng)).collect(),
            prologue: format!("tern/python interop prologue for {name}").into_bytes(),
        }
    }

    /// `(has static, our secret, knows remote, remote public)` for a role.
    fn keys_for(&self, initiator: bool) -> (bool, &[u8; 32], bool, &[u8; 32]) {
        if initiator {
            (
                self.shape.initiator_static,
                &self.si,
                self.shape.initiator_knows_responder,
                &self.sr_pub,
            )
        } else {
            (
                self.shape.responder_static,
                &self.sr,
                self.shape.responder_knows_initiator,
                &self.si_pub,
            )
        }
    }

    /// The remote static key the side in `initiator`'s role ends up with.
    fn expected_remote_static(&self, initiator: bool) -> Option<[u8; 32]> {
        if initiator {
            self.shape.responder_static.then_some(self.sr_pub)
        } else {
            self.shape.initiator_static.then_some(self.si_pub)
        }
    }
}

fn tern_side(m: &Material, initiator: bool, rng: &mut ChaCha20Rng) -> TernHs {
    let params: NoiseParams = m.name.parse().unwrap();
    let (has_s, s, knows_rs, rs) = m.keys_for(initiator);
    let mut b = Builder::new(params).prologue(&m.prologue);
    if has_s {
        b = b.local_private_key(s);
    }
    if knows_rs {
        b = b.remote_public_key(rs);
    }
    for psk in &m.psks {
        b = b.psk(psk);
    }
    if initiator {
        b.build_initiator(rng)
    } else {
        b.build_responder(rng)
    }
    .unwrap_or_else(|e| panic!("Tern cannot build {}: {e}", m.name))
}

/// Starts the Python side of a session and checks the static public key it
/// derived from our private key.
fn python_side(peer: &mut PythonPeer, m: &Material, initiator: bool) {
    let (has_s, s, knows_rs, rs) = m.keys_for(initiator);
    let psks = if m.psks.is_empty() {
        "-".to_owned()
    } else {
        m.psks
            .iter()
            .map(|k| wire_hex(k))
            .collect::<Vec<_>>()
            .join(",")
    };
    let reply = peer.ok(&format!(
        "SESSION {} {} {} {} {} {psks}",
        m.name,
        if initiator { "initiator" } else { "responder" },
        wire_hex(&m.prologue),
        if has_s { wire_hex(s) } else { "-".into() },
        if knows_rs { wire_hex(rs) } else { "-".into() },
    ));
    let expected_pub = if has_s {
        public_key(s).to_vec()
    } else {
        Vec::new()
    };
    assert_eq!(
        wire_unhex(&reply[0]),
        expected_pub,
        "{}: Python and Tern derive the same static public key",
        m.name
    );
}

fn hs_payload(ctx: &str, i: usize) -> Vec<u8> {
    format!("handshake payload {i} of {ctx};")
        .repeat(i + 1)
        .into_bytes()
}

fn tern_write(tern: &mut TernHs, payload: &[u8]) -> Vec<u8> {
    let expected = tern.next_message_len(payload.len()).unwrap();
    let mut out = vec![0u8; 65535];
    let n = tern.write_message(payload, &mut out).unwrap();
    assert_eq!(n, expected, "Tern's next_message_len matches what it wrote");
    out.truncate(n);
    out
}

fn tern_read(tern: &mut TernHs, msg: &[u8]) -> Result<Vec<u8>, NoiseError> {
    let mut out = vec![0u8; 65535];
    let n = tern.read_message(msg, &mut out)?;
    out.truncate(n);
    Ok(out)
}

/// Exchanges handshake messages until Tern has finished or `limit`
/// messages were sent; returns the number sent.
fn handshake(
    peer: &mut PythonPeer,
    tern: &mut TernHs,
    from: usize,
    limit: usize,
    ctx: &str,
) -> usize {
    let mut i = from;
    while i < limit && !tern.is_finished() {
        let payload = hs_payload(ctx, i);
        if tern.is_my_turn() {
            let msg = tern_write(tern, &payload);
            let got = peer
                .request(&format!("HS_READ {}", wire_hex(&msg)))
                .unwrap_or_else(|e| panic!("{ctx}: Python rejects Tern's message {i}: {e}"));
            assert_eq!(wire_unhex(&got[0]), payload, "{ctx}: payload {i} at Python");
        } else {
            let msg = wire_unhex(&peer.ok(&format!("HS_WRITE {}", wire_hex(&payload)))[0]);
            let got = tern_read(tern, &msg)
                .unwrap_or_else(|e| panic!("{ctx}: Tern rejects Python's message {i}: {e}"));
            assert_eq!(got, payload, "{ctx}: payload {i} at Tern");
        }
        i += 1;
    }
    i
}

/// Checks that Python finished too, with the same handshake hash and the
/// expected remote static key.
fn check_finished(
    peer: &mut PythonPeer,
    tern: &TernHs,
    m: &Material,
    tern_initiates: bool,
    ctx: &str,
) {
    assert!(tern.is_finished(), "{ctx}");
    let status = peer.ok("STATUS");
    assert_eq!(status[0], "1", "{ctx}: Python finished the handshake too");
    let py_hash = wire_unhex(&status[1]);
    let hash_len = if m.name.ends_with("SHA256") || m.name.ends_with("BLAKE2s") {
        32
    } else {
        64
    };
    assert_eq!(py_hash.len(), hash_len, "{ctx}");
    assert_eq!(
        tern.handshake_hash(),
        &py_hash[..],
        "{ctx}: handshake hashes differ"
    );
    let py_rs = wire_unhex(&status[2]);
    let expected_py_rs = m
        .expected_remote_static(!tern_initiates)
        .map(|k| k.to_vec())
        .unwrap_or_default();
    assert_eq!(py_rs, expected_py_rs, "{ctx}: Python's remote static key");
    assert_eq!(
        tern.remote_static(),
        m.expected_remote_static(tern_initiates).as_ref(),
        "{ctx}: Tern's remote static key"
    );
}

fn tern_send(t: &mut TernTs, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; payload.len() + 16];
    let n = t.write_message(payload, &mut out).unwrap();
    assert_eq!(n, out.len());
    out
}

fn tern_recv(t: &mut TernTs, msg: &[u8]) -> Result<Vec<u8>, NoiseError> {
    let mut out = vec![0u8; msg.len()];
    let n = t.read_message(msg, &mut out)?;
    out.truncate(n);
    Ok(out)
}

/// Transport messages both ways, a rekey of both directions, and again.
fn transport(peer: &mut PythonPeer, tern: &mut TernTs, ctx: &str) {
    let start = (tern.sending_nonce(), tern.receiving_nonce());
    let mut count = 0;
    for phase in 0..2 {
        if phase == 1 {
            tern.rekey_outgoing();
            peer.ok("REKEY_IN");
            peer.ok("REKEY_OUT");
            tern.rekey_incoming();
        }
        let payloads: [Vec<u8>; 3] = [
            Vec::new(),
            format!("phase {phase} of {ctx}").into_bytes(),
            (0..1500u32).map(|i| (i * 13 + phase) as u8).collect(),
        ];
        for p in &payloads {
            let ct = tern_send(tern, p);
            let got = peer
                .request(&format!("DEC {}", wire_hex(&ct)))
                .unwrap_or_else(|e| panic!("{ctx}: Python rejects Tern's transport message: {e}"));
            assert_eq!(&wire_unhex(&got[0]), p, "{ctx}: Tern -> Python");
            let ct = wire_unhex(&peer.ok(&format!("ENC {}", wire_hex(p)))[0]);
            assert_eq!(ct.len(), p.len() + 16);
            let got = tern_recv(tern, &ct)
                .unwrap_or_else(|e| panic!("{ctx}: Tern rejects Python's transport message: {e}"));
            assert_eq!(&got, p, "{ctx}: Python -> Tern");
            count += 1;
        }
    }
    assert_eq!(
        (tern.sending_nonce(), tern.receiving_nonce()),
        (start.0 + count, start.1 + count),
        "{ctx}"
    );
}

fn role_label(tern_initiates: bool) -> &'static str {
    if tern_initiates {
        "Tern initiator, Python responder"
    } else {
        "Python initiator, Tern responder"
    }
}

fn python_run(
    peer: &mut PythonPeer,
    name: &str,
    messages: usize,
    tern_initiates: bool,
    rng: &mut ChaCha20Rng,
) {
    let ctx = format!("{name} ({})", role_label(tern_initiates));
    let m = Material::new(name, rng);
    python_side(peer, &m, !tern_initiates);
    let mut tern = tern_side(&m, tern_initiates, rng);
    let sent = handshake(peer, &mut tern, 0, usize::MAX, &ctx);
    assert_eq!(sent, messages, "{ctx}: handshake messages");
    check_finished(peer, &tern, &m, tern_initiates, &ctx);
    let mut tt = tern.into_transport().unwrap();
    transport(peer, &mut tt, &ctx);
}

#[test]
fn python_handshakes_and_transport_in_both_roles() {
    let Some(python) = python_interpreter() else {
        return;
    };
    let mut peer = PythonPeer::spawn(&python);
    let mut rng = ChaCha20Rng::seed_from_u64(0x9e7);
    let mut sessions = 0;
    for (pattern, messages) in PATTERNS {
        for cipher in CIPHERS {
            for hash in HASHES {
                let name = format!("Noise_{pattern}_25519_{cipher}_{hash}");
                for tern_initiates in [true, false] {
                    python_run(&mut peer, &name, messages, tern_initiates, &mut rng);
                    sessions += 1;
                }
            }
        }
    }
    // 7 patterns x 2 ciphers x 4 hashes x 2 roles.
    assert_eq!(sessions, 112);
    println!(
        "{sessions} Tern<->noiseprotocol sessions (handshake, transport, rekey) in {} requests to one Python process",
        peer.requests()
    );
}

/// Starts a session and exchanges messages up to `index`, which Python
/// writes; returns Tern's state, the message and its payload.
fn until_python_writes(
    peer: &mut PythonPeer,
    m: &Material,
    index: usize,
    rng: &mut ChaCha20Rng,
    ctx: &str,
) -> (TernHs, Vec<u8>, Vec<u8>) {
    let python_initiates = index.is_multiple_of(2);
    python_side(peer, m, python_initiates);
    let mut tern = tern_side(m, !python_initiates, rng);
    assert_eq!(handshake(peer, &mut tern, 0, index, ctx), index);
    let payload = hs_payload(ctx, index);
    let msg = wire_unhex(&peer.ok(&format!("HS_WRITE {}", wire_hex(&payload)))[0]);
    (tern, msg, payload)
}

#[test]
fn python_tampering_and_mismatches_are_caught() {
    let Some(python) = python_interpreter() else {
        return;
    };
    let mut peer = PythonPeer::spawn(&python);
    let mut rng = ChaCha20Rng::seed_from_u64(0x7a9);
    let mut out = vec![0u8; 65535];

    // Every byte of a tagged Python handshake message, flipped, is refused
    // by Tern; the genuine message is then accepted and the session works.
    let cases: [(&str, usize, usize); 6] = [
        ("NN", 1, 2),
        ("XX", 1, 3),
        ("IK", 0, 2),
        ("NNpsk0", 0, 2),
        ("XXpsk3", 2, 3),
        ("IKpsk2", 1, 2),
    ];
    for (k, (pattern, index, messages)) in cases.into_iter().enumerate() {
        let name = format!(
            "Noise_{pattern}_25519_{}_{}",
            CIPHERS[k % 2],
            HASHES[k % HASHES.len()]
        );
        let ctx = format!("{name}, Python's message {index} tampered");
        let m = Material::new(&name, &mut rng);
        let (mut tern, msg, payload) = until_python_writes(&mut peer, &m, index, &mut rng, &ctx);
        for pos in 0..msg.len() {
            let mut bad = msg.clone();
            bad[pos] ^= 0x04;
            assert_eq!(
                tern.read_message(&bad, &mut out),
                Err(NoiseError::Decrypt),
                "{ctx}: byte {pos}"
            );
        }
        assert_eq!(tern.message_index(), index, "{ctx}");
        assert_eq!(tern_read(&mut tern, &msg).unwrap(), payload, "{ctx}");
        assert_eq!(
            handshake(&mut peer, &mut tern, index + 1, usize::MAX, &ctx),
            messages
        );
        let tern_initiates = index % 2 == 1;
        check_finished(&mut peer, &tern, &m, tern_initiates, &ctx);
        let mut tt = tern.into_transport().unwrap();

        // Transport: a tampered Python message is refused, nonce kept.
        let ct = wire_unhex(&peer.ok("ENC 7472616e73706f7274")[0]);
        for pos in 0..ct.len() {
            let mut bad = ct.clone();
            bad[pos] ^= 0x80;
            assert_eq!(
                tern_recv(&mut tt, &bad),
                Err(NoiseError::Decrypt),
                "{ctx}: transport byte {pos}"
            );
        }
        assert_eq!(tern_recv(&mut tt, &ct).unwrap(), b"transport", "{ctx}");
        // And Python refuses a tampered Tern message, then takes the real one.
        let ct = tern_send(&mut tt, b"from Tern");
        let mut bad = ct.clone();
        bad[3] ^= 1;
        assert!(
            peer.request(&format!("DEC {}", wire_hex(&bad))).is_err(),
            "{ctx}"
        );
        assert_eq!(
            wire_unhex(&peer.ok(&format!("DEC {}", wire_hex(&ct)))[0]),
            b"from Tern"
        );
        transport(&mut peer, &mut tt, &ctx);
    }

    // Python refuses a tampered Tern handshake message (Tern writes the
    // tag correctly, or this would not be a check of anything).
    for (k, (pattern, index)) in [("NN", 1usize), ("XX", 2), ("IK", 0), ("NNpsk0", 0)]
        .into_iter()
        .enumerate()
    {
        let name = format!("Noise_{pattern}_25519_{}_SHA256", CIPHERS[k % 2]);
        let ctx = format!("{name}, Tern's message {index} tampered");
        let m = Material::new(&name, &mut rng);
        let tern_initiates = index.is_multiple_of(2);
        python_side(&mut peer, &m, !tern_initiates);
        let mut tern = tern_side(&m, tern_initiates, &mut rng);
        assert_eq!(handshake(&mut peer, &mut tern, 0, index, &ctx), index);
        let mut msg = tern_write(&mut tern, &hs_payload(&ctx, index));
        let last = msg.len() - 1;
        msg[last] ^= 1;
        assert!(
            peer.request(&format!("HS_READ {}", wire_hex(&msg)))
                .is_err(),
            "{ctx}: Python accepted it"
        );
    }

    // Mismatched PSKs and keys: Tern refuses Python's message.
    let mismatches: [(&str, &str, usize, Change); 4] = [
        (
            "Noise_NNpsk0_25519_ChaChaPoly_SHA256",
            "Python's psk differs",
            0,
            |m, rng| m.psks[0] = random32(rng),
        ),
        (
            "Noise_IKpsk2_25519_AESGCM_BLAKE2s",
            "Python's psk differs",
            1,
            |m, rng| m.psks[0] = random32(rng),
        ),
        (
            "Noise_XXpsk3_25519_AESGCM_SHA512",
            "Python's psk differs",
            2,
            |m, rng| m.psks[0] = random32(rng),
        ),
        (
            "Noise_IK_25519_ChaChaPoly_SHA512",
            "Python expects another responder key",
            0,
            |m, rng| m.sr_pub = public_key(&random32(rng)),
        ),
    ];
    for (name, what, index, change) in mismatches {
        let ctx = format!("{name}: {what}");
        let m = Material::new(name, &mut rng);
        let mut m_py = m.clone();
        change(&mut m_py, &mut rng);
        let python_initiates = index.is_multiple_of(2);
        python_side(&mut peer, &m_py, python_initiates);
        let mut tern = tern_side(&m, !python_initiates, &mut rng);
        assert_eq!(handshake(&mut peer, &mut tern, 0, index, &ctx), index);
        let msg = wire_unhex(&peer.ok(&format!("HS_WRITE {}", wire_hex(b"hello")))[0]);
        assert_eq!(
            tern_read(&mut tern, &msg),
            Err(NoiseError::Decrypt),
            "{ctx}"
        );
    }
}
