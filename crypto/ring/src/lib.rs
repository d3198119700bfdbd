//! A [`CryptoProvider`] for Tern on [`ring`], for services on std.
//!
//! [`RingCrypto`] takes the primitives that dominate a session's CPU time
//! from ring, whose assembly implementations pick the CPU's vector and
//! AES/CLMUL instructions at run time:
//!
//! - the AEADs: ChaCha20-Poly1305 and AES-256-GCM
//!   ([`ring::aead::LessSafeKey`], expanded once per key in
//!   [`aead`](CryptoProvider::aead));
//! - the hashes SHA-256 and SHA-512 ([`ring::digest`]) and HMAC over them
//!   ([`ring::hmac`]), used by the Noise handshake's HKDF.
//!
//! What ring does not offer is delegated to Tern's default provider,
//! [`RustCrypto`]: X25519 (ring's key agreement only accepts ephemeral keys
//! it generates itself, while Noise needs static keys and fixed test
//! ephemerals), and BLAKE2s/BLAKE2b with their HMAC.
//!
//! Outputs are byte for byte those of [`RustCrypto`]: a peer using either
//! provider talks to a peer using the other (the tests check every cipher
//! and hash on random inputs, and replay the Noise test vectors with both
//! providers on either side).
//!
//! # Key hygiene
//!
//! ring's key types ([`LessSafeKey`], [`ring::hmac::Key`]) do not expose
//! their bytes and do not zeroize their expanded keys when dropped, so this
//! provider cannot either: an AEAD key schedule or an HMAC key's padded
//! state may remain in freed memory. The raw key bytes Tern hands to
//! [`aead`](CryptoProvider::aead) and [`hmac`](CryptoProvider::hmac) are
//! only borrowed and stay under Tern's own zeroization. Where that matters
//! more than speed, use [`RustCrypto`], which zeroizes its keys.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use ring::aead::{AES_256_GCM, Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, Tag, UnboundKey};
use ring::{digest, hmac};
use tern::crypto::{
    AeadKey, AuthError, CipherKind, CryptoProvider, DHLEN, HashKind, KEYLEN, MAX_HASHLEN,
    RustCrypto, TAGLEN,
};

/// A [`CryptoProvider`] using ring for the AEADs, SHA-2 and HMAC-SHA-2, and
/// [`RustCrypto`] for X25519 and BLAKE2. It holds no state.
#[derive(Clone, Copy, Debug, Default)]
pub struct RingCrypto;

/// A keyed ring AEAD: ChaCha20-Poly1305 or AES-256-GCM with its key
/// expanded once.
///
/// ring does not zeroize the expanded key on drop (see the crate
/// documentation).
pub struct RingAead {
    key: LessSafeKey,
    cipher: CipherKind,
}

impl core::fmt::Debug for RingAead {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RingAead")
            .field("cipher", &self.cipher)
            .finish_non_exhaustive()
    }
}

impl RingAead {
    /// The cipher this key is for.
    pub fn cipher(&self) -> CipherKind {
        self.cipher
    }

    /// The 96-bit nonce for the Noise counter `n`, encoded as the cipher
    /// requires ([`CipherKind::nonce`]: little-endian after 32 zero bits
    /// for ChaChaPoly, big-endian for AESGCM).
    #[inline]
    fn nonce(&self, n: u64) -> Nonce {
        Nonce::assume_unique_for_key(self.cipher.nonce(n))
    }
}

impl AeadKey for RingAead {
    #[inline]
    fn seal(&mut self, n: u64, ad: &[u8], buf: &mut [u8]) -> [u8; TAGLEN] {
        // ring refuses only inputs longer than the cipher allows (about
        // 2^38 bytes for both), far beyond Noise's 65535-byte messages and
        // any buffer Tern hands in.
        match self
            .key
            .seal_in_place_separate_tag(self.nonce(n), Aad::from(ad), buf)
        {
            Ok(tag) => tag_bytes(&tag),
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
        self.key
            .open_in_place_separate_tag(self.nonce(n), Aad::from(ad), Tag::from(*tag), buf, 0..)
            .map(|_| ())
            .map_err(|_| AuthError)
    }
}

#[inline]
fn tag_bytes(tag: &Tag) -> [u8; TAGLEN] {
    let mut out = [0u8; TAGLEN];
    out.copy_from_slice(tag.as_ref());
    out
}

#[cold]
fn unreachable_len() -> ! {
    panic!("AEAD input longer than the cipher allows")
}

impl CryptoProvider for RingCrypto {
    type Aead = RingAead;

    fn aead(&mut self, cipher: CipherKind, key: &[u8; KEYLEN]) -> RingAead {
        let alg = match cipher {
            CipherKind::ChaChaPoly => &CHACHA20_POLY1305,
            CipherKind::AesGcm => &AES_256_GCM,
        };
        // Both algorithms take 32-byte keys, the only length `key` can
        // have, so ring cannot refuse it.
        let Ok(unbound) = UnboundKey::new(alg, key) else {
            unreachable_key()
        };
        RingAead {
            key: LessSafeKey::new(unbound),
            cipher,
        }
    }

    #[inline]
    fn x25519_base(&mut self, secret: &[u8; DHLEN]) -> [u8; DHLEN] {
        RustCrypto.x25519_base(secret)
    }

    #[inline]
    fn x25519(&mut self, secret: &[u8; DHLEN], public: &[u8; DHLEN]) -> [u8; DHLEN] {
        RustCrypto.x25519(secret, public)
    }

    fn hash(&mut self, hash: HashKind, parts: &[&[u8]], out: &mut [u8; MAX_HASHLEN]) {
        let alg = match hash {
            HashKind::Sha256 => &digest::SHA256,
            HashKind::Sha512 => &digest::SHA512,
            HashKind::Blake2s | HashKind::Blake2b => return RustCrypto.hash(hash, parts, out),
        };
        let mut ctx = digest::Context::new(alg);
        for p in parts {
            ctx.update(p);
        }
        out[..hash.len()].copy_from_slice(ctx.finish().as_ref());
    }

    fn hmac(&mut self, hash: HashKind, key: &[u8], parts: &[&[u8]], out: &mut [u8; MAX_HASHLEN]) {
        let alg = match hash {
            HashKind::Sha256 => hmac::HMAC_SHA256,
            HashKind::Sha512 => hmac::HMAC_SHA512,
            HashKind::Blake2s | HashKind::Blake2b => {
                return RustCrypto.hmac(hash, key, parts, out);
            }
        };
        let key = hmac::Key::new(alg, key);
        let mut ctx = hmac::Context::with_key(&key);
        for p in parts {
            ctx.update(p);
        }
        out[..hash.len()].copy_from_slice(ctx.sign().as_ref());
    }
}

#[cold]
fn unreachable_key() -> ! {
    panic!("ring refused a 32-byte AEAD key")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nonce is the trait's: 32 zero bits, then the counter
    /// little-endian (ChaChaPoly) or big-endian (AESGCM). A sealed message
    /// opens with the RustCrypto AEAD at the same counter and not at a
    /// counter with the other byte order.
    #[test]
    fn nonce_byte_order_per_cipher() {
        let key = [7u8; KEYLEN];
        for cipher in [CipherKind::ChaChaPoly, CipherKind::AesGcm] {
            let mut ring = RingCrypto.aead(cipher, &key);
            let mut rc = RustCrypto.aead(cipher, &key);
            let n = 0x0102_0304_0506_0708u64;
            let mut buf = *b"sixteen byte msg";
            let tag = ring.seal(n, b"ad", &mut buf);
            let sealed = buf;
            assert!(rc.open(n, b"ad", &mut buf, &tag).is_ok(), "{cipher:?}");
            assert_eq!(&buf, b"sixteen byte msg");
            buf = sealed;
            assert_eq!(
                rc.open(n.swap_bytes(), b"ad", &mut buf, &tag),
                Err(AuthError),
                "{cipher:?}"
            );
        }
    }
}
