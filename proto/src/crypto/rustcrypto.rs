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

/// A keyed RustCrypto AEAD. The key material is zeroized on drop by the
/// underlying crates (their `zeroize` features are enabled).
pub enum RustCryptoAead {
    /// ChaCha20-Poly1305.
    ChaChaPoly(ChaCha20Poly1305),
    /// AES-256-GCM; boxed away from the stack would need `alloc`, so it is
    /// held inline (its expanded key schedule is about 500 bytes).
    AesGcm(Aes256Gcm),
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
                c.encrypt_inout_detached((&nonce).into(), ad, buf.into())
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
                c.decrypt_inout_detached((&nonce).into(), ad, buf.into(), tag.into())
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
            CipherKind::AesGcm => RustCryptoAead::AesGcm(Aes256Gcm::new(key.into())),
        }
    }

    fn x25519_base(&mut self, secret: &[u8; DHLEN]) -> [u8; DHLEN] {
        MontgomeryPoint::mul_base_clamped(*secret).to_bytes()
    }

    fn x25519(&mut self, secret: &[u8; DHLEN], public: &[u8; DHLEN]) -> [u8; DHLEN] {
        MontgomeryPoint(*public).mul_clamped(*secret).to_bytes()
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
