//! The cryptographic provider interface.
//!
//! Everything Tern needs from cryptography goes through [`CryptoProvider`]:
//! X25519, an AEAD keyed once per key ([`AeadKey`]), a hash and HMAC. The
//! default provider, [`RustCrypto`], uses curve25519-dalek, chacha20poly1305,
//! aes-gcm, sha2, blake2 and hmac. A hardware backend (a secure element, a
//! crypto accelerator) implements the same two traits; every method takes
//! `&mut self` so an engine that runs one operation at a time fits.
//!
//! Tern implements no primitive itself: the Noise engine only composes these
//! calls as the Noise specification prescribes (MixKey, MixHash, HKDF, Split).

mod rustcrypto;

pub use rustcrypto::{RustCrypto, RustCryptoAead};

/// Length of an X25519 public key, private key and shared secret.
pub const DHLEN: usize = 32;
/// Length of an AEAD key.
pub const KEYLEN: usize = 32;
/// Length of an AEAD authentication tag.
pub const TAGLEN: usize = 16;
/// Largest hash output of any supported hash (SHA-512, BLAKE2b).
pub const MAX_HASHLEN: usize = 64;

/// An AEAD cipher, as named in Noise protocol names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CipherKind {
    /// ChaCha20-Poly1305 (RFC 8439); the nonce is 32 zero bits then the
    /// 64-bit counter little-endian.
    ChaChaPoly,
    /// AES-256-GCM; the nonce is 32 zero bits then the 64-bit counter
    /// big-endian.
    AesGcm,
}

impl CipherKind {
    /// The name used in Noise protocol names.
    pub const fn name(self) -> &'static str {
        match self {
            CipherKind::ChaChaPoly => "ChaChaPoly",
            CipherKind::AesGcm => "AESGCM",
        }
    }

    /// The 96-bit AEAD nonce for a 64-bit Noise counter.
    pub fn nonce(self, n: u64) -> [u8; 12] {
        let mut nonce = [0u8; 12];
        match self {
            CipherKind::ChaChaPoly => nonce[4..].copy_from_slice(&n.to_le_bytes()),
            CipherKind::AesGcm => nonce[4..].copy_from_slice(&n.to_be_bytes()),
        }
        nonce
    }
}

/// A hash function, as named in Noise protocol names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashKind {
    /// SHA-256.
    Sha256,
    /// SHA-512.
    Sha512,
    /// BLAKE2s with a 32-byte output.
    Blake2s,
    /// BLAKE2b with a 64-byte output.
    Blake2b,
}

impl HashKind {
    /// Output length in bytes (Noise's `HASHLEN`).
    #[allow(clippy::len_without_is_empty)]
    pub const fn len(self) -> usize {
        match self {
            HashKind::Sha256 | HashKind::Blake2s => 32,
            HashKind::Sha512 | HashKind::Blake2b => 64,
        }
    }

    /// The name used in Noise protocol names.
    pub const fn name(self) -> &'static str {
        match self {
            HashKind::Sha256 => "SHA256",
            HashKind::Sha512 => "SHA512",
            HashKind::Blake2s => "BLAKE2s",
            HashKind::Blake2b => "BLAKE2b",
        }
    }
}

/// The AEAD rejected a ciphertext: wrong key, nonce, associated data or tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthError;

/// An AEAD instance bound to one key.
///
/// Keyed once so that per-key work (the AES key schedule, the GHASH key) is
/// done once, not per packet. Implementations zeroize their key when dropped.
pub trait AeadKey {
    /// Encrypts `buf` in place with the 64-bit nonce `n` and associated data
    /// `ad`, returning the detached tag.
    fn seal(&mut self, n: u64, ad: &[u8], buf: &mut [u8]) -> [u8; TAGLEN];

    /// Authenticates and decrypts `buf` in place. On failure the content of
    /// `buf` is unspecified and must be discarded by the caller.
    fn open(
        &mut self,
        n: u64,
        ad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAGLEN],
    ) -> Result<(), AuthError>;
}

/// The primitives Tern needs, supplied by the embedding application.
pub trait CryptoProvider {
    /// A keyed AEAD instance.
    type Aead: AeadKey;

    /// Creates an AEAD instance for `key`.
    fn aead(&mut self, cipher: CipherKind, key: &[u8; KEYLEN]) -> Self::Aead;

    /// X25519 of `secret` with the base point: the public key of `secret`.
    fn x25519_base(&mut self, secret: &[u8; DHLEN]) -> [u8; DHLEN];

    /// X25519 of `secret` with `public` (RFC 7748, clamping the scalar).
    fn x25519(&mut self, secret: &[u8; DHLEN], public: &[u8; DHLEN]) -> [u8; DHLEN];

    /// `out[..hash.len()] = HASH(parts[0] || parts[1] || ...)`.
    fn hash(&mut self, hash: HashKind, parts: &[&[u8]], out: &mut [u8; MAX_HASHLEN]);

    /// `out[..hash.len()] = HMAC-HASH(key, parts[0] || parts[1] || ...)`.
    fn hmac(&mut self, hash: HashKind, key: &[u8], parts: &[&[u8]], out: &mut [u8; MAX_HASHLEN]);
}
