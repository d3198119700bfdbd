//! The Noise SymmetricState (§5.2) used during a handshake.

use super::NoiseError;
use crate::crypto::{AeadKey, CipherKind, CryptoProvider, HashKind, KEYLEN, MAX_HASHLEN, TAGLEN};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Chaining key, handshake hash and the handshake's cipher key.
///
/// Held by value and cloned for each handshake message, so that a message
/// that fails half-way leaves the committed state untouched. The cipher key
/// is kept raw (an AEAD is keyed per use: a handshake has a few
/// encryptions) so the state is plain bytes that zeroize on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct SymmetricState {
    #[zeroize(skip)]
    hash: HashKind,
    #[zeroize(skip)]
    cipher: CipherKind,
    ck: [u8; MAX_HASHLEN],
    h: [u8; MAX_HASHLEN],
    k: [u8; KEYLEN],
    has_key: bool,
    n: u64,
}

impl SymmetricState {
    /// InitializeSymmetric(protocol_name).
    pub(crate) fn new<P: CryptoProvider>(
        p: &mut P,
        hash: HashKind,
        cipher: CipherKind,
        name: &[u8],
    ) -> Self {
        let mut h = [0u8; MAX_HASHLEN];
        if name.len() <= hash.len() {
            h[..name.len()].copy_from_slice(name);
        } else {
            p.hash(hash, &[name], &mut h);
        }
        SymmetricState {
            hash,
            cipher,
            ck: h,
            h,
            k: [0; KEYLEN],
            has_key: false,
            n: 0,
        }
    }

    /// Whether a cipher key has been set (by MixKey or MixKeyAndHash).
    pub(crate) fn has_key(&self) -> bool {
        self.has_key
    }

    /// The handshake hash `h`.
    pub(crate) fn handshake_hash(&self) -> &[u8] {
        &self.h[..self.hash.len()]
    }

    /// MixHash(data).
    pub(crate) fn mix_hash<P: CryptoProvider>(&mut self, p: &mut P, data: &[u8]) {
        let mut out = [0u8; MAX_HASHLEN];
        p.hash(self.hash, &[&self.h[..self.hash.len()], data], &mut out);
        self.h = out;
    }

    /// MixKey(ikm).
    pub(crate) fn mix_key<P: CryptoProvider>(&mut self, p: &mut P, ikm: &[u8]) {
        let mut ck = [0u8; MAX_HASHLEN];
        let mut k = [0u8; MAX_HASHLEN];
        hkdf(
            p,
            self.hash,
            &self.ck[..self.hash.len()],
            ikm,
            &mut ck,
            &mut k,
            None,
        );
        self.ck = ck;
        self.set_key(&k);
        ck.zeroize();
        k.zeroize();
    }

    /// MixKeyAndHash(ikm), used for PSKs.
    pub(crate) fn mix_key_and_hash<P: CryptoProvider>(&mut self, p: &mut P, ikm: &[u8]) {
        let mut ck = [0u8; MAX_HASHLEN];
        let mut th = [0u8; MAX_HASHLEN];
        let mut k = [0u8; MAX_HASHLEN];
        hkdf(
            p,
            self.hash,
            &self.ck[..self.hash.len()],
            ikm,
            &mut ck,
            &mut th,
            Some(&mut k),
        );
        self.ck = ck;
        self.mix_hash(p, &th[..self.hash.len()]);
        self.set_key(&k);
        ck.zeroize();
        th.zeroize();
        k.zeroize();
    }

    fn set_key(&mut self, k: &[u8; MAX_HASHLEN]) {
        // Noise §5.2: a 64-byte HKDF output is truncated to 32 bytes.
        self.k.copy_from_slice(&k[..KEYLEN]);
        self.has_key = true;
        self.n = 0;
    }

    /// Bytes EncryptAndHash adds to a plaintext.
    pub(crate) fn overhead(&self) -> usize {
        if self.has_key { TAGLEN } else { 0 }
    }

    /// EncryptAndHash: `out[..pt.len() + overhead]` receives the ciphertext.
    /// The caller has checked that `out` is long enough.
    pub(crate) fn encrypt_and_hash<P: CryptoProvider>(
        &mut self,
        p: &mut P,
        pt: &[u8],
        out: &mut [u8],
    ) -> Result<usize, NoiseError> {
        let len = pt.len() + self.overhead();
        let out = &mut out[..len];
        out[..pt.len()].copy_from_slice(pt);
        if self.has_key {
            if self.n == u64::MAX {
                return Err(NoiseError::NonceExhausted);
            }
            let mut aead = p.aead(self.cipher, &self.k);
            let (body, tag) = out.split_at_mut(pt.len());
            tag.copy_from_slice(&aead.seal(self.n, &self.h[..self.hash.len()], body));
            self.n += 1;
        }
        self.mix_hash(p, out);
        Ok(len)
    }

    /// DecryptAndHash: `ct` is ciphertext and tag; `out[..ct.len() -
    /// overhead]` receives the plaintext. The caller has checked lengths.
    pub(crate) fn decrypt_and_hash<P: CryptoProvider>(
        &mut self,
        p: &mut P,
        ct: &[u8],
        out: &mut [u8],
    ) -> Result<usize, NoiseError> {
        let len = ct.len() - self.overhead();
        let out = &mut out[..len];
        out.copy_from_slice(&ct[..len]);
        if self.has_key {
            if self.n == u64::MAX {
                return Err(NoiseError::NonceExhausted);
            }
            let mut tag = [0u8; TAGLEN];
            tag.copy_from_slice(&ct[len..]);
            let mut aead = p.aead(self.cipher, &self.k);
            if aead
                .open(self.n, &self.h[..self.hash.len()], out, &tag)
                .is_err()
            {
                out.zeroize();
                return Err(NoiseError::Decrypt);
            }
            self.n += 1;
        }
        self.mix_hash(p, ct);
        Ok(len)
    }

    /// Split(): the two transport keys, initiator-to-responder first.
    pub(crate) fn split<P: CryptoProvider>(&self, p: &mut P) -> ([u8; KEYLEN], [u8; KEYLEN]) {
        let mut t1 = [0u8; MAX_HASHLEN];
        let mut t2 = [0u8; MAX_HASHLEN];
        hkdf(
            p,
            self.hash,
            &self.ck[..self.hash.len()],
            &[],
            &mut t1,
            &mut t2,
            None,
        );
        let mut k1 = [0u8; KEYLEN];
        let mut k2 = [0u8; KEYLEN];
        k1.copy_from_slice(&t1[..KEYLEN]);
        k2.copy_from_slice(&t2[..KEYLEN]);
        t1.zeroize();
        t2.zeroize();
        (k1, k2)
    }
}

/// HKDF(chaining_key, input_key_material, num_outputs) of Noise §4.3,
/// built on the provider's HMAC.
fn hkdf<P: CryptoProvider>(
    p: &mut P,
    hash: HashKind,
    ck: &[u8],
    ikm: &[u8],
    out1: &mut [u8; MAX_HASHLEN],
    out2: &mut [u8; MAX_HASHLEN],
    out3: Option<&mut [u8; MAX_HASHLEN]>,
) {
    let n = hash.len();
    let mut temp_key = [0u8; MAX_HASHLEN];
    p.hmac(hash, ck, &[ikm], &mut temp_key);
    p.hmac(hash, &temp_key[..n], &[&[1]], out1);
    p.hmac(hash, &temp_key[..n], &[&out1[..n], &[2]], out2);
    if let Some(out3) = out3 {
        p.hmac(hash, &temp_key[..n], &[&out2[..n], &[3]], out3);
    }
    temp_key.zeroize();
}
