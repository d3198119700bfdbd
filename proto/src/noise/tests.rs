//! Behaviour the vectors cannot show: errors, state left untouched by
//! failures, limits, rekey and explicit nonces.

use super::*;
use crate::crypto::{CipherKind, CryptoProvider, RustCrypto};

/// A deterministic test RNG (SplitMix64); not for real use.
struct TestRng(u64);
impl rand_core::TryRng for TestRng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.try_next_u64()? as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Ok(z ^ (z >> 31))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(8) {
            let v = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(())
    }
}
impl rand_core::TryCryptoRng for TestRng {}

const I_S: [u8; 32] = [1; 32];
const R_S: [u8; 32] = [2; 32];
const PSK: [u8; 32] = [3; 32];

fn public(secret: &[u8; 32]) -> [u8; 32] {
    RustCrypto.x25519_base(secret)
}

fn pair(name: &str, seed: u64) -> (HandshakeState, HandshakeState) {
    let params = NoiseParams::parse(name).unwrap();
    let r_pub = public(&R_S);
    let i_pub = public(&I_S);
    let mut rng = TestRng(seed);
    let pat = params.pattern();
    let mut ib = Builder::new(params).prologue(b"test");
    let mut rb = Builder::new(params).prologue(b"test");
    if pat.initiator_needs_static() {
        ib = ib.local_private_key(&I_S);
    }
    if pat.responder_needs_static() {
        rb = rb.local_private_key(&R_S);
    }
    if pat.initiator_knows_remote() {
        ib = ib.remote_public_key(&r_pub);
    }
    if pat.responder_knows_remote() {
        rb = rb.remote_public_key(&i_pub);
    }
    for _ in 0..pat.psk_count() {
        ib = ib.psk(&PSK);
        rb = rb.psk(&PSK);
    }
    (
        ib.build_initiator(&mut rng).unwrap(),
        rb.build_responder(&mut rng).unwrap(),
    )
}

/// Runs the handshake to the end, returning both transport states.
fn finish(
    mut i: HandshakeState,
    mut r: HandshakeState,
) -> (TransportState<RustCrypto>, TransportState<RustCrypto>) {
    let mut buf = [0u8; 512];
    let mut out = [0u8; 512];
    while !i.is_finished() || !r.is_finished() {
        let (w, rd) = if i.is_my_turn() {
            (&mut i, &mut r)
        } else {
            (&mut r, &mut i)
        };
        let n = w.write_message(b"payload", &mut buf).unwrap();
        let k = rd.read_message(&buf[..n], &mut out).unwrap();
        assert_eq!(&out[..k], b"payload");
    }
    assert_eq!(i.handshake_hash(), r.handshake_hash());
    (i.into_transport().unwrap(), r.into_transport().unwrap())
}

#[test]
fn short_output_buffer_reports_size_and_changes_nothing() {
    let (mut i, _) = pair("Noise_IK_25519_ChaChaPoly_SHA256", 7);
    let (mut twin, _) = pair("Noise_IK_25519_ChaChaPoly_SHA256", 7);
    let needed = i.next_message_len(5).unwrap();
    assert_eq!(needed, 32 + 48 + 5 + 16);
    let mut small = [0u8; 100];
    assert_eq!(
        i.write_message(b"hello", &mut small),
        Err(NoiseError::BufferTooSmall { needed })
    );
    assert_eq!(i.message_index(), 0);
    let mut a = [0u8; 200];
    let mut b = [0u8; 200];
    let n = i.write_message(b"hello", &mut a).unwrap();
    let m = twin.write_message(b"hello", &mut b).unwrap();
    assert_eq!(a[..n], b[..m], "a refused write must not change the state");
}

#[test]
fn a_bad_message_leaves_the_reader_ready_for_the_good_one() {
    let (mut i, mut r) = pair("Noise_XX_25519_AESGCM_BLAKE2s", 9);
    let mut buf = [0u8; 256];
    let mut out = [0u8; 256];
    let n = i.write_message(b"", &mut buf).unwrap();
    r.read_message(&buf[..n], &mut out).unwrap();
    let n = r.write_message(b"secret", &mut buf).unwrap();
    // Tampered: the static key's tag no longer verifies.
    let mut bad = buf;
    bad[40] ^= 1;
    assert_eq!(
        i.read_message(&bad[..n], &mut out),
        Err(NoiseError::Decrypt)
    );
    // Truncated below the fixed part.
    assert_eq!(
        i.read_message(&buf[..50], &mut out),
        Err(NoiseError::MessageTooShort {
            needed: 32 + 48 + 16,
            got: 50
        })
    );
    // Payload buffer too short.
    assert_eq!(
        i.read_message(&buf[..n], &mut out[..3]),
        Err(NoiseError::BufferTooSmall { needed: 6 })
    );
    assert_eq!(i.message_index(), 1);
    let k = i.read_message(&buf[..n], &mut out).unwrap();
    assert_eq!(&out[..k], b"secret");
    assert_eq!(i.remote_static(), Some(&public(&R_S)));
}

#[test]
fn turns_and_completion_are_enforced() {
    let (mut i, mut r) = pair("Noise_NN_25519_ChaChaPoly_SHA256", 1);
    let mut buf = [0u8; 128];
    assert_eq!(r.write_message(b"", &mut buf), Err(NoiseError::WrongTurn));
    assert_eq!(
        i.read_message(&[0; 48], &mut buf),
        Err(NoiseError::WrongTurn)
    );
    let n = i.write_message(b"", &mut buf).unwrap();
    assert_eq!(i.write_message(b"", &mut buf), Err(NoiseError::WrongTurn));
    let mut out = [0u8; 128];
    r.read_message(&buf[..n], &mut out).unwrap();
    assert!(matches!(r.into_transport(), Err(NoiseError::NotFinished)));
}

#[test]
fn size_limits_are_the_noise_limits() {
    let (mut i, mut r) = pair("Noise_NN_25519_ChaChaPoly_SHA256", 2);
    let big = [0u8; MAX_MESSAGE_LEN];
    let mut out = [0u8; MAX_MESSAGE_LEN + 64];
    // Message 0 of NN is e (32 bytes) and the payload in clear.
    assert_eq!(
        i.write_message(&big[..MAX_MESSAGE_LEN - 31], &mut out),
        Err(NoiseError::MessageTooLarge {
            len: MAX_MESSAGE_LEN + 1
        })
    );
    let n = i
        .write_message(&big[..MAX_MESSAGE_LEN - 32], &mut out)
        .unwrap();
    assert_eq!(n, MAX_MESSAGE_LEN);
    let mut huge = [0u8; MAX_MESSAGE_LEN + 1];
    huge[..n].copy_from_slice(&out[..n]);
    let mut pay = [0u8; MAX_MESSAGE_LEN];
    assert_eq!(
        r.read_message(&huge, &mut pay),
        Err(NoiseError::MessageTooLarge {
            len: MAX_MESSAGE_LEN + 1
        })
    );
    assert_eq!(
        r.read_message(&huge[..n], &mut pay),
        Ok(MAX_MESSAGE_LEN - 32)
    );
}

#[test]
fn missing_keys_and_wrong_psk_counts_are_refused() {
    let params = NoiseParams::parse("Noise_IKpsk2_25519_ChaChaPoly_SHA256").unwrap();
    let r_pub = public(&R_S);
    let mut rng = TestRng(3);
    assert!(matches!(
        Builder::new(params)
            .remote_public_key(&r_pub)
            .psk(&PSK)
            .build_initiator(&mut rng),
        Err(NoiseError::MissingKey(KeyRole::LocalStatic))
    ));
    assert!(matches!(
        Builder::new(params)
            .local_private_key(&I_S)
            .psk(&PSK)
            .build_initiator(&mut rng),
        Err(NoiseError::MissingKey(KeyRole::RemoteStatic))
    ));
    assert!(matches!(
        Builder::new(params)
            .local_private_key(&I_S)
            .remote_public_key(&r_pub)
            .build_initiator(&mut rng),
        Err(NoiseError::PskCount {
            expected: 1,
            supplied: 0
        })
    ));
}

#[test]
fn psk_mismatch_fails_authentication() {
    let params = NoiseParams::parse("Noise_NNpsk0_25519_ChaChaPoly_SHA256").unwrap();
    let mut rng = TestRng(4);
    let other = [9u8; 32];
    let mut i = Builder::new(params)
        .psk(&PSK)
        .build_initiator(&mut rng)
        .unwrap();
    let mut r = Builder::new(params)
        .psk(&other)
        .build_responder(&mut rng)
        .unwrap();
    let mut buf = [0u8; 128];
    let mut out = [0u8; 128];
    let n = i.write_message(b"x", &mut buf).unwrap();
    assert_eq!(
        r.read_message(&buf[..n], &mut out),
        Err(NoiseError::Decrypt)
    );
}

#[test]
fn a_low_order_ephemeral_is_refused() {
    let (mut i, _) = pair("Noise_NN_25519_ChaChaPoly_SHA256", 5);
    let mut buf = [0u8; 128];
    i.write_message(b"", &mut buf).unwrap();
    // The responder's "ephemeral" is the all-zero point: ee would be zero.
    let msg = [0u8; 48];
    let mut out = [0u8; 128];
    assert_eq!(
        i.read_message(&msg, &mut out),
        Err(NoiseError::InvalidPublicKey)
    );
    assert_eq!(i.message_index(), 1);
}

#[test]
fn transport_rekey_and_explicit_nonces() {
    let (i, r) = pair("Noise_NK_25519_AESGCM_SHA512", 6);
    let (mut i, mut r) = finish(i, r);
    let mut buf = [0u8; 128];
    let mut out = [0u8; 128];
    let n = i.write_message(b"one", &mut buf).unwrap();
    assert_eq!(r.read_message(&buf[..n], &mut out), Ok(3));
    // Out-of-order datagrams with explicit nonces.
    let n5 = i.write_message_with_nonce(5, b"five", &mut buf).unwrap();
    let mut b4 = [0u8; 128];
    let n4 = i.write_message_with_nonce(4, b"four", &mut b4).unwrap();
    assert_eq!(r.read_message_with_nonce(4, &b4[..n4], &mut out), Ok(4));
    assert_eq!(&out[..4], b"four");
    assert_eq!(
        r.read_message_with_nonce(6, &buf[..n5], &mut out),
        Err(NoiseError::Decrypt)
    );
    assert_eq!(r.read_message_with_nonce(5, &buf[..n5], &mut out), Ok(4));
    assert_eq!(
        i.sending_nonce(),
        1,
        "explicit nonces leave the counter alone"
    );
    // Rekey on one side only: the other can no longer read.
    i.rekey_outgoing();
    let n = i.write_message(b"two", &mut buf).unwrap();
    assert_eq!(
        r.read_message(&buf[..n], &mut out),
        Err(NoiseError::Decrypt)
    );
    assert_eq!(
        r.receiving_nonce(),
        1,
        "a failed read does not advance the nonce"
    );
    r.rekey_incoming();
    assert_eq!(r.read_message(&buf[..n], &mut out), Ok(3));
    // And the other direction is independent.
    let n = r.write_message(b"back", &mut buf).unwrap();
    assert_eq!(i.read_message(&buf[..n], &mut out), Ok(4));
}

#[test]
fn nonce_exhaustion_is_an_error() {
    let key = [7u8; 32];
    let mut cs = CipherState::new(RustCrypto, CipherKind::ChaChaPoly, &key);
    let mut buf = [0u8; 64];
    cs.set_nonce(u64::MAX - 1);
    assert_eq!(cs.encrypt(b"", b"last", &mut buf), Ok(20));
    assert_eq!(
        cs.encrypt(b"", b"more", &mut buf),
        Err(NoiseError::NonceExhausted)
    );
    assert_eq!(
        cs.encrypt_with_nonce(u64::MAX, b"", &mut buf, 4),
        Err(NoiseError::NonceExhausted)
    );
    let mut rx = CipherState::new(RustCrypto, CipherKind::ChaChaPoly, &key);
    rx.set_nonce(u64::MAX);
    assert_eq!(
        rx.decrypt(b"", &buf[..20], &mut [0u8; 64]),
        Err(NoiseError::NonceExhausted)
    );
}

#[test]
fn one_way_patterns_only_send_from_the_initiator() {
    let (i, r) = pair("Noise_X_25519_ChaChaPoly_BLAKE2b", 8);
    let (mut i, mut r) = finish(i, r);
    let mut buf = [0u8; 64];
    let mut out = [0u8; 64];
    assert_eq!(r.write_message(b"no", &mut buf), Err(NoiseError::WrongTurn));
    let n = i.write_message(b"yes", &mut buf).unwrap();
    assert_eq!(
        i.read_message(&buf[..n], &mut out),
        Err(NoiseError::WrongTurn)
    );
    assert_eq!(r.read_message(&buf[..n], &mut out), Ok(3));
    assert_eq!(r.remote_static(), Some(&public(&I_S)));
}

#[test]
fn every_pattern_completes_with_every_suite() {
    let patterns = [
        "N",
        "K",
        "X",
        "NN",
        "NK",
        "NX",
        "XN",
        "XK",
        "XX",
        "KN",
        "KK",
        "KX",
        "IN",
        "IK",
        "IX",
        "NK1",
        "NX1",
        "X1N",
        "X1K",
        "XK1",
        "X1K1",
        "X1X",
        "XX1",
        "X1X1",
        "K1N",
        "K1K",
        "KK1",
        "K1K1",
        "K1X",
        "KX1",
        "K1X1",
        "I1N",
        "I1K",
        "IK1",
        "I1K1",
        "I1X",
        "IX1",
        "I1X1",
        "NNpsk0+psk2",
        "XXpsk0+psk1+psk2+psk3",
        "X1X1psk4",
    ];
    let mut seed = 100;
    for p in patterns {
        for suite in [
            "ChaChaPoly_SHA256",
            "AESGCM_SHA512",
            "ChaChaPoly_BLAKE2s",
            "AESGCM_BLAKE2b",
        ] {
            let name = std::format!("Noise_{p}_25519_{suite}");
            seed += 1;
            let (i, r) = pair(&name, seed);
            let (mut i, mut r) = finish(i, r);
            let mut buf = [0u8; 64];
            let mut out = [0u8; 64];
            let n = i.write_message(b"data", &mut buf).unwrap();
            assert_eq!(r.read_message(&buf[..n], &mut out), Ok(4), "{name}");
        }
    }
}
