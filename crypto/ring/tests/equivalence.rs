//! RingCrypto and RustCrypto agree byte for byte on random inputs for every
//! cipher, hash and HMAC, and ring's AEADs refuse tampered messages.

use proptest::prelude::*;
use tern::crypto::{
    AeadKey, AuthError, CipherKind, CryptoProvider, HashKind, MAX_HASHLEN, RustCrypto,
};
use tern_ring::RingCrypto;

const CIPHERS: [CipherKind; 2] = [CipherKind::ChaChaPoly, CipherKind::AesGcm];
const HASHES: [HashKind; 4] = [
    HashKind::Sha256,
    HashKind::Sha512,
    HashKind::Blake2s,
    HashKind::Blake2b,
];

fn cipher() -> impl Strategy<Value = CipherKind> {
    prop::sample::select(CIPHERS.to_vec())
}

fn hash() -> impl Strategy<Value = HashKind> {
    prop::sample::select(HASHES.to_vec())
}

/// Counters near both ends and random ones, so that every byte of the
/// nonce's encoding is exercised.
fn counter() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..4, any::<u64>(), (u64::MAX - 4)..=u64::MAX]
}

/// Up to a few parts of up to 300 bytes (crossing the hashes' block sizes).
fn parts() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..4)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Sealing gives the same ciphertext and tag; each side opens the
    /// other's message.
    #[test]
    fn aead_matches_rustcrypto(
        cipher in cipher(),
        key in any::<[u8; 32]>(),
        n in counter(),
        ad in prop::collection::vec(any::<u8>(), 0..100),
        msg in prop::collection::vec(any::<u8>(), 0..2000),
    ) {
        let mut ring = RingCrypto.aead(cipher, &key);
        let mut rc = RustCrypto.aead(cipher, &key);
        let mut a = msg.clone();
        let mut b = msg.clone();
        let ta = ring.seal(n, &ad, &mut a);
        let tb = rc.seal(n, &ad, &mut b);
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(ta, tb);
        prop_assert_eq!(ring.open(n, &ad, &mut b, &tb), Ok(()));
        prop_assert_eq!(&b, &msg);
        prop_assert_eq!(rc.open(n, &ad, &mut a, &ta), Ok(()));
        prop_assert_eq!(&a, &msg);
    }

    /// A flipped bit anywhere in the ciphertext, the tag or the associated
    /// data, or a different counter, makes ring refuse the message.
    #[test]
    fn aead_rejects_tampering(
        cipher in cipher(),
        key in any::<[u8; 32]>(),
        n in counter(),
        ad in prop::collection::vec(any::<u8>(), 1..100),
        msg in prop::collection::vec(any::<u8>(), 1..600),
        which in 0usize..4,
        pos in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let mut k = RingCrypto.aead(cipher, &key);
        let mut ct = msg.clone();
        let mut tag = k.seal(n, &ad, &mut ct);
        let mut ad = ad;
        let mut n = n;
        match which {
            0 => {
                let i = pos.index(ct.len());
                ct[i] ^= 1 << bit
            },
            1 => {
                let i = pos.index(tag.len());
                tag[i] ^= 1 << bit
            },
            2 => {
                let i = pos.index(ad.len());
                ad[i] ^= 1 << bit
            },
            _ => n ^= 1 << (pos.index(64) as u32),
        }
        prop_assert_eq!(k.open(n, &ad, &mut ct, &tag), Err(AuthError));
    }

    #[test]
    fn hash_matches_rustcrypto(hash in hash(), parts in parts()) {
        let parts: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        let mut a = [0u8; MAX_HASHLEN];
        let mut b = [0u8; MAX_HASHLEN];
        RingCrypto.hash(hash, &parts, &mut a);
        RustCrypto.hash(hash, &parts, &mut b);
        prop_assert_eq!(&a[..hash.len()], &b[..hash.len()]);
        // Nothing written past the hash's length.
        prop_assert!(a[hash.len()..].iter().all(|&x| x == 0));
    }

    /// Keys shorter and longer than the block size (longer keys are hashed
    /// first).
    #[test]
    fn hmac_matches_rustcrypto(
        hash in hash(),
        key in prop::collection::vec(any::<u8>(), 0..200),
        parts in parts(),
    ) {
        let parts: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        let mut a = [0u8; MAX_HASHLEN];
        let mut b = [0u8; MAX_HASHLEN];
        RingCrypto.hmac(hash, &key, &parts, &mut a);
        RustCrypto.hmac(hash, &key, &parts, &mut b);
        prop_assert_eq!(&a[..hash.len()], &b[..hash.len()]);
        prop_assert!(a[hash.len()..].iter().all(|&x| x == 0));
    }

    #[test]
    fn x25519_matches_rustcrypto(s in any::<[u8; 32]>(), t in any::<[u8; 32]>()) {
        let pa = RingCrypto.x25519_base(&s);
        prop_assert_eq!(pa, RustCrypto.x25519_base(&s));
        let pb = RustCrypto.x25519_base(&t);
        prop_assert_eq!(RingCrypto.x25519(&s, &pb), RustCrypto.x25519(&t, &pa));
    }
}

/// Known answers, so that agreement with RustCrypto is not agreement on a
/// shared mistake: the SHA-256 and SHA-512 digests of "abc" (FIPS 180-2)
/// and RFC 4231's HMAC-SHA-256 case 2. The ciphers' known answers are the
/// Noise vectors (`noise_vectors.rs`), whose ciphertexts other
/// implementations produced.
#[test]
fn known_answers() {
    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
    let mut sha = [0u8; MAX_HASHLEN];
    RingCrypto.hash(HashKind::Sha256, &[b"a", b"bc"], &mut sha);
    assert_eq!(
        sha[..32],
        unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")[..]
    );
    RingCrypto.hash(HashKind::Sha512, &[b"abc"], &mut sha);
    assert_eq!(
        sha[..],
        unhex(
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        )[..]
    );
    // RFC 4231 test case 2: HMAC with key "Jefe".
    let mut mac = [0u8; MAX_HASHLEN];
    RingCrypto.hmac(
        HashKind::Sha256,
        b"Jefe",
        &[b"what do ya want ", b"for nothing?"],
        &mut mac,
    );
    assert_eq!(
        mac[..32],
        unhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")[..]
    );
}
