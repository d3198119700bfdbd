//! The default provider: RustCrypto and dalek.

use super::{
    AeadKey, AuthError, CipherKind, CryptoProvider, DHLEN, HashKind, KEYLEN, MAX_HASHLEN, TAGLEN,
};
use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInOut, KeyInit};
use blake2::{Blake2b512, Blake2s256};
use chacha20poly1305::ChaCha20Poly1305;
use curve25519_dalek::montgomery::MontgomeryPoint;
use hmac::{Hmac, Mac, SimpleHmac};
use sha2::{Digest, Sha256, Sha512};

/// The default [`CryptoProvider`]: curve25519-dalek for X25519, RustCrypto for
/// the AEADs, hashes and HMAC. It holds no state.
#[derive(Clone, Copy, Debug, Default)]
pub struct RustCrypto;

/// A keyed RustCrypto AEAD. The key material is zeroized on drop (the
/// crates' `zeroize` features are enabled, and the raw AES key below is
/// wrapped in [`zeroize::Zeroizing`]).
pub enum RustCryptoAead {
    /// ChaCha20-Poly1305 (no key schedule: 32 bytes).
    ChaChaPoly(ChaCha20Poly1305),
    /// AES-256-GCM with its key schedule expanded once, on the heap (about
    /// 1.1 KB): fast per packet, for services.
    #[cfg(feature = "alloc")]
    AesGcm(alloc::boxed::Box<Aes256Gcm>),
    /// AES-256-GCM keyed per message from the raw key: without an
    /// allocator, a connection stays small on microcontrollers.
    #[cfg(not(feature = "alloc"))]
    AesGcm(zeroize::Zeroizing<[u8; KEYLEN]>),
}

#[cfg(feature = "alloc")]
fn aes(c: &Aes256Gcm) -> &Aes256Gcm {
    c
}

#[cfg(not(feature = "alloc"))]
fn aes(key: &[u8; KEYLEN]) -> Aes256Gcm {
    Aes256Gcm::new(key.into())
}

impl AeadKey for RustCryptoAead {
    #[inline]
    fn seal(&mut self, n: u64, ad: &[u8], buf: &mut [u8]) -> [u8; TAGLEN] {
        let tag = match self {
            RustCryptoAead::ChaChaPoly(c) => {
                let nonce = CipherKind::ChaChaPoly.nonce(n);
                c.encrypt_inout_detached((&nonce).into(), ad, buf.into())
            }
            RustCryptoAead::AesGcm(c) => {
                let nonce = CipherKind::AesGcm.nonce(n);
                #[allow(clippy::needless_borrow)]
                aes(&c).encrypt_inout_detached((&nonce).into(), ad, buf.into())
            }
        };
        // Encryption only fails for inputs longer than the cipher allows
        // (2^38 bytes for both), far beyond Noise's 65535-byte messages and
        // any buffer Tern hands in.
        match tag {
            Ok(t) => t.into(),
            Err(_) => unreachable_len(),
        }
    }

    #[inline]
    fn open(
        &mut self,
        n: u64,
        ad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAGLEN],
    ) -> Result<(), AuthError> {
        match self {
            RustCryptoAead::ChaChaPoly(c) => {
                let nonce = CipherKind::ChaChaPoly.nonce(n);
                c.decrypt_inout_detached((&nonce).into(), ad, buf.into(), tag.into())
            }
            RustCryptoAead::AesGcm(c) => {
                let nonce = CipherKind::AesGcm.nonce(n);
                #[allow(clippy::needless_borrow)]
                aes(&c).decrypt_inout_detached((&nonce).into(), ad, buf.into(), tag.into())
            }
        }
        .map_err(|_| AuthError)
    }
}

#[cold]
fn unreachable_len() -> ! {
    panic!("AEAD input longer than 2^38 bytes")
}

impl CryptoProvider for RustCrypto {
    type Aead = RustCryptoAead;

    #[inline]
    fn aead(&mut self, cipher: CipherKind, key: &[u8; KEYLEN]) -> RustCryptoAead {
        match cipher {
            CipherKind::ChaChaPoly => RustCryptoAead::ChaChaPoly(ChaCha20Poly1305::new(key.into())),
            #[cfg(feature = "alloc")]
            CipherKind::AesGcm => {
                RustCryptoAead::AesGcm(alloc::boxed::Box::new(Aes256Gcm::new(key.into())))
            }
            #[cfg(not(feature = "alloc"))]
            CipherKind::AesGcm => RustCryptoAead::AesGcm(zeroize::Zeroizing::new(*key)),
        }
    }

    fn x25519_base(&mut self, secret: &[u8; DHLEN]) -> [u8; DHLEN] {
        MontgomeryPoint::mul_base_clamped(*secret).to_bytes()
    }

    fn x25519(&mut self, secret: &[u8; DHLEN], public: &[u8; DHLEN]) -> [u8; DHLEN] {
        let u = MontgomeryPoint(*public);
        // On x86-64, dalek's Edwards variable-base multiplication (its AVX2
        // backend where the CPU has it) beats the Montgomery ladder by about
        // a fifth, conversions included. Both compute the u-coordinate of
        // clamp(secret) * P exactly (the clamped scalar is not reduced mod
        // l), so the result is identical, small-order points included.
        // `to_edwards` refuses only points on the twist, which the ladder
        // handles; the branch depends on the public key alone.
        #[cfg(target_arch = "x86_64")]
        if let Some(p) = u.to_edwards(0) {
            return p.mul_clamped(*secret).to_montgomery().to_bytes();
        }
        u.mul_clamped(*secret).to_bytes()
    }

    fn hash(&mut self, hash: HashKind, parts: &[&[u8]], out: &mut [u8; MAX_HASHLEN]) {
        fn run<D: Digest>(parts: &[&[u8]], out: &mut [u8]) {
            let mut d = D::new();
            for p in parts {
                d.update(p);
            }
            out.copy_from_slice(&d.finalize());
        }
        let out = &mut out[..hash.len()];
        match hash {
            HashKind::Sha256 => run::<Sha256>(parts, out),
            HashKind::Sha512 => run::<Sha512>(parts, out),
            HashKind::Blake2s => run::<Blake2s256>(parts, out),
            HashKind::Blake2b => run::<Blake2b512>(parts, out),
        }
    }

    fn hmac(&mut self, hash: HashKind, key: &[u8], parts: &[&[u8]], out: &mut [u8; MAX_HASHLEN]) {
        fn run<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]], out: &mut [u8]) {
            // HMAC accepts keys of any length, so this cannot fail.
            let Ok(mut m) = <M as KeyInit>::new_from_slice(key) else {
                return;
            };
            for p in parts {
                m.update(p);
            }
            out.copy_from_slice(&m.finalize().into_bytes());
        }
        let out = &mut out[..hash.len()];
        match hash {
            HashKind::Sha256 => run::<Hmac<Sha256>>(key, parts, out),
            HashKind::Sha512 => run::<Hmac<Sha512>>(key, parts, out),
            HashKind::Blake2s => run::<SimpleHmac<Blake2s256>>(key, parts, out),
            HashKind::Blake2b => run::<SimpleHmac<Blake2b512>>(key, parts, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn ladder(k: &[u8; 32], u: &[u8; 32]) -> [u8; 32] {
        MontgomeryPoint(*u).mul_clamped(*k).to_bytes()
    }

    /// The Edwards route agrees with the RFC 7748 ladder for every kind of
    /// input: random points on the curve and the twist, small-order points,
    /// non-canonical encodings and the ignored top bit.
    #[test]
    fn x25519_matches_ladder() {
        let mut x: u64 = 0x1234_5678_9abc_def1;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut fill = |b: &mut [u8; 32]| {
            for c in b.chunks_mut(8) {
                c.copy_from_slice(&next().to_le_bytes());
            }
        };
        let p_minus = |d: u8| {
            // p - d for small d, little-endian; p = 2^255 - 19.
            let mut b = [0xffu8; 32];
            b[0] = 0xed - d;
            b[31] = 0x7f;
            b
        };
        let mut special: Vec<[u8; 32]> = Vec::new();
        for small in [0u8, 1, 2, 9] {
            let mut b = [0u8; 32];
            b[0] = small;
            special.push(b);
        }
        // p - 1 (u = -1), p, p + 1 (non-canonical 0 and 1), 2^255 - 1.
        special.push(p_minus(1));
        special.push(p_minus(0));
        let mut p1 = p_minus(0);
        p1[0] += 1;
        special.push(p1);
        special.push([0xff; 32]);
        // Points of order 8 (RFC 7748 / libsodium blocklist).
        for hex in [
            "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
            "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        ] {
            let mut b = [0u8; 32];
            for (i, o) in b.iter_mut().enumerate() {
                *o = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
            }
            special.push(b);
            let mut t = b;
            t[31] |= 0x80;
            special.push(t);
        }
        let mut p = RustCrypto;
        let mut k = [0u8; 32];
        let mut on_curve = 0;
        for u in &special {
            fill(&mut k);
            assert_eq!(p.x25519(&k, u), ladder(&k, u), "u = {u:02x?}");
        }
        for i in 0..2000 {
            let mut u = [0u8; 32];
            fill(&mut u);
            fill(&mut k);
            if i % 3 == 0 {
                // Every third input a genuine public key, half of those
                // with the (ignored) top bit set.
                u = p.x25519_base(&u);
                u[31] |= (i as u8 & 8) << 4;
            }
            if MontgomeryPoint(u).to_edwards(0).is_some() {
                on_curve += 1;
            }
            assert_eq!(p.x25519(&k, &u), ladder(&k, &u), "u = {u:02x?}");
        }
        assert!(
            on_curve > 1000,
            "too few curve points exercised: {on_curve}"
        );
    }
}
