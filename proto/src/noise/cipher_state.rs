//! The Noise CipherState (§5.1) for transport messages.

use super::NoiseError;
use crate::crypto::{AeadKey, CipherKind, CryptoProvider, KEYLEN, TAGLEN};
use zeroize::Zeroize;

/// One direction of a transport: a keyed AEAD and the next nonce.
///
/// The AEAD is keyed once (the AES key schedule is not redone per message)
/// and zeroizes its key when dropped or rekeyed.
pub struct CipherState<P: CryptoProvider> {
    provider: P,
    cipher: CipherKind,
    aead: P::Aead,
    n: u64,
}

impl<P: CryptoProvider> CipherState<P> {
    /// A cipher state keyed with `key`, nonce 0. The caller's copy of the key
    /// is its own to zeroize.
    pub fn new(mut provider: P, cipher: CipherKind, key: &[u8; KEYLEN]) -> Self {
        let aead = provider.aead(cipher, key);
        CipherState {
            provider,
            cipher,
            aead,
            n: 0,
        }
    }

    /// The cipher this state uses.
    pub fn cipher(&self) -> CipherKind {
        self.cipher
    }

    /// The nonce the next [`encrypt`](Self::encrypt) or
    /// [`decrypt`](Self::decrypt) uses.
    pub fn nonce(&self) -> u64 {
        self.n
    }

    /// SetNonce(n): for transports that carry nonces explicitly.
    pub fn set_nonce(&mut self, n: u64) {
        self.n = n;
    }

    /// EncryptWithAd with the internal nonce, in place: `buf[..len]` holds
    /// the plaintext, and the tag is written after it. Returns the ciphertext
    /// length `len + 16`. Increments the nonce.
    pub fn encrypt_in_place(
        &mut self,
        ad: &[u8],
        buf: &mut [u8],
        len: usize,
    ) -> Result<usize, NoiseError> {
        let out = self.encrypt_with_nonce(self.n, ad, buf, len)?;
        self.n += 1;
        Ok(out)
    }

    /// DecryptWithAd with the internal nonce, in place: `buf` holds
    /// ciphertext and tag; the plaintext is left in `buf[..returned]`.
    /// Increments the nonce only on success.
    pub fn decrypt_in_place(&mut self, ad: &[u8], buf: &mut [u8]) -> Result<usize, NoiseError> {
        let out = self.decrypt_with_nonce(self.n, ad, buf)?;
        self.n += 1;
        Ok(out)
    }

    /// EncryptWithAd into `out`. Returns the bytes written.
    pub fn encrypt(
        &mut self,
        ad: &[u8],
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, NoiseError> {
        let needed = plaintext.len() + TAGLEN;
        if out.len() < needed {
            return Err(NoiseError::BufferTooSmall { needed });
        }
        if self.n == u64::MAX {
            return Err(NoiseError::NonceExhausted);
        }
        out[..plaintext.len()].copy_from_slice(plaintext);
        self.encrypt_in_place(ad, out, plaintext.len())
    }

    /// DecryptWithAd into `out`. Returns the plaintext length.
    pub fn decrypt(
        &mut self,
        ad: &[u8],
        ciphertext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, NoiseError> {
        let Some(needed) = ciphertext.len().checked_sub(TAGLEN) else {
            return Err(NoiseError::MessageTooShort {
                needed: TAGLEN,
                got: ciphertext.len(),
            });
        };
        if out.len() < needed {
            return Err(NoiseError::BufferTooSmall { needed });
        }
        let (body, tag) = ciphertext.split_at(needed);
        let mut t = [0u8; TAGLEN];
        t.copy_from_slice(tag);
        self.open_detached(self.n, ad, body, &t, &mut out[..needed])?;
        self.n += 1;
        Ok(needed)
    }

    /// Encrypts with an explicit nonce, leaving the internal one alone:
    /// `buf[..len]` is the plaintext, the tag goes after it.
    pub fn encrypt_with_nonce(
        &mut self,
        n: u64,
        ad: &[u8],
        buf: &mut [u8],
        len: usize,
    ) -> Result<usize, NoiseError> {
        let needed = len
            .checked_add(TAGLEN)
            .ok_or(NoiseError::MessageTooLarge { len })?;
        if buf.len() < needed {
            return Err(NoiseError::BufferTooSmall { needed });
        }
        if n == u64::MAX {
            return Err(NoiseError::NonceExhausted);
        }
        let (body, rest) = buf.split_at_mut(len);
        let tag = self.aead.seal(n, ad, body);
        rest[..TAGLEN].copy_from_slice(&tag);
        Ok(needed)
    }

    /// Decrypts with an explicit nonce (datagram transports), leaving the
    /// internal one alone. `buf` is ciphertext and tag; returns the plaintext
    /// length. On failure `buf` is zeroed.
    pub fn decrypt_with_nonce(
        &mut self,
        n: u64,
        ad: &[u8],
        buf: &mut [u8],
    ) -> Result<usize, NoiseError> {
        let Some(len) = buf.len().checked_sub(TAGLEN) else {
            return Err(NoiseError::MessageTooShort {
                needed: TAGLEN,
                got: buf.len(),
            });
        };
        if n == u64::MAX {
            return Err(NoiseError::NonceExhausted);
        }
        let (body, tag) = buf.split_at_mut(len);
        let mut t = [0u8; TAGLEN];
        t.copy_from_slice(tag);
        if self.aead.open(n, ad, body, &t).is_err() {
            buf.zeroize();
            return Err(NoiseError::Decrypt);
        }
        Ok(len)
    }

    fn open_detached(
        &mut self,
        n: u64,
        ad: &[u8],
        body: &[u8],
        tag: &[u8; TAGLEN],
        out: &mut [u8],
    ) -> Result<(), NoiseError> {
        if n == u64::MAX {
            return Err(NoiseError::NonceExhausted);
        }
        out.copy_from_slice(body);
        if self.aead.open(n, ad, out, tag).is_err() {
            out.zeroize();
            return Err(NoiseError::Decrypt);
        }
        Ok(())
    }

    /// Rekey() of Noise §4.2: the new key is the first 32 bytes of
    /// `ENCRYPT(k, 2^64 - 1, "", zeros(32))`. The nonce is unchanged.
    pub fn rekey(&mut self) {
        let mut k = [0u8; KEYLEN];
        // The tag is discarded: only the 32 ciphertext bytes become the key.
        let _tag = self.aead.seal(u64::MAX, &[], &mut k);
        self.aead = self.provider.aead(self.cipher, &k);
        k.zeroize();
    }
}
