use super::{HandshakePattern, NoiseError};
use crate::crypto::{CipherKind, HashKind};

/// Longest protocol name Tern accepts (the longest real one is 52 bytes).
const MAX_NAME: usize = 96;

/// A parsed Noise protocol name: pattern, DH, cipher and hash.
///
/// ```
/// use tern::noise::NoiseParams;
/// let p: NoiseParams = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s".parse().unwrap();
/// assert_eq!(p.pattern().psk_count(), 1);
/// assert_eq!(p.name(), "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s");
/// assert!("Noise_IK_448_ChaChaPoly_BLAKE2s".parse::<NoiseParams>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoiseParams {
    name: [u8; MAX_NAME],
    name_len: u8,
    pattern: HandshakePattern,
    cipher: CipherKind,
    hash: HashKind,
}

impl NoiseParams {
    /// Parses a protocol name.
    pub fn parse(name: &str) -> Result<NoiseParams, NoiseError> {
        let mut parts = name.split('_');
        let (Some("Noise"), Some(pattern), Some(dh), Some(cipher), Some(hash), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(NoiseError::InvalidName);
        };
        if name.len() > MAX_NAME {
            return Err(NoiseError::InvalidName);
        }
        let pattern = HandshakePattern::parse(pattern)?;
        if dh != "25519" {
            return Err(NoiseError::UnsupportedDh);
        }
        let cipher = match cipher {
            "ChaChaPoly" => CipherKind::ChaChaPoly,
            "AESGCM" => CipherKind::AesGcm,
            _ => return Err(NoiseError::UnsupportedCipher),
        };
        let hash = match hash {
            "SHA256" => HashKind::Sha256,
            "SHA512" => HashKind::Sha512,
            "BLAKE2s" => HashKind::Blake2s,
            "BLAKE2b" => HashKind::Blake2b,
            _ => return Err(NoiseError::UnsupportedHash),
        };
        let mut buf = [0u8; MAX_NAME];
        buf[..name.len()].copy_from_slice(name.as_bytes());
        Ok(NoiseParams {
            name: buf,
            name_len: name.len() as u8,
            pattern,
            cipher,
            hash,
        })
    }

    /// The protocol name, exactly as given.
    pub fn name(&self) -> &str {
        // Built from a &str in `parse`, so always valid UTF-8.
        core::str::from_utf8(self.name_bytes()).unwrap_or("")
    }

    /// The protocol name as bytes (what `InitializeSymmetric` hashes).
    pub fn name_bytes(&self) -> &[u8] {
        &self.name[..usize::from(self.name_len)]
    }

    /// The handshake pattern with modifiers applied.
    pub fn pattern(&self) -> &HandshakePattern {
        &self.pattern
    }

    /// The AEAD cipher.
    pub fn cipher(&self) -> CipherKind {
        self.cipher
    }

    /// The hash function.
    pub fn hash(&self) -> HashKind {
        self.hash
    }
}

impl core::str::FromStr for NoiseParams {
    type Err = NoiseError;
    fn from_str(s: &str) -> Result<Self, NoiseError> {
        NoiseParams::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_into_their_parts() {
        let p = NoiseParams::parse("Noise_XXpsk0+psk1+psk2+psk3_25519_AESGCM_BLAKE2b").unwrap();
        assert_eq!(p.pattern().base_name(), "XX");
        assert_eq!(p.pattern().psk_count(), 4);
        assert_eq!(p.cipher(), CipherKind::AesGcm);
        assert_eq!(p.hash(), HashKind::Blake2b);
    }

    #[test]
    fn each_part_has_its_own_error() {
        let cases = [
            ("Noise_NN_25519_ChaChaPoly", NoiseError::InvalidName),
            ("Noize_NN_25519_ChaChaPoly_SHA256", NoiseError::InvalidName),
            (
                "Noise_NN_25519_ChaChaPoly_SHA256_x",
                NoiseError::InvalidName,
            ),
            (
                "Noise_QQ_25519_ChaChaPoly_SHA256",
                NoiseError::UnsupportedPattern,
            ),
            (
                "Noise_NNfallback_25519_ChaChaPoly_SHA256",
                NoiseError::UnsupportedModifier,
            ),
            ("Noise_NN_448_ChaChaPoly_SHA256", NoiseError::UnsupportedDh),
            ("Noise_NN_25519_Rot13_SHA256", NoiseError::UnsupportedCipher),
            ("Noise_NN_25519_ChaChaPoly_MD5", NoiseError::UnsupportedHash),
        ];
        for (name, err) in cases {
            assert_eq!(NoiseParams::parse(name), Err(err), "{name}");
        }
    }
}
