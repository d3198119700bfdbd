use core::fmt;

/// Everything that can go wrong in the Noise engine.
///
/// A call that returns an error leaves the state it was called on unchanged,
/// except where a variant says otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoiseError {
    /// The protocol name is not of the form `Noise_PATTERN_DH_CIPHER_HASH`.
    InvalidName,
    /// The handshake pattern is not one Tern knows.
    UnsupportedPattern,
    /// A pattern modifier other than `psk0`..`psk4`, a repeated one, or one
    /// beyond the pattern's last message.
    UnsupportedModifier,
    /// A DH function other than `25519` (for example `448`).
    UnsupportedDh,
    /// A cipher other than `ChaChaPoly` or `AESGCM`.
    UnsupportedCipher,
    /// A hash other than `SHA256`, `SHA512`, `BLAKE2s` or `BLAKE2b`.
    UnsupportedHash,
    /// A key the pattern needs was not supplied: which one.
    MissingKey(KeyRole),
    /// The number of PSKs supplied differs from what the pattern uses.
    PskCount {
        /// PSKs the pattern uses.
        expected: u8,
        /// PSKs supplied.
        supplied: u8,
    },
    /// The output buffer is too short; nothing was written or changed.
    BufferTooSmall {
        /// Bytes the call needs.
        needed: usize,
    },
    /// A message would exceed, or exceeds, the 65535-byte Noise limit.
    MessageTooLarge {
        /// The message length that was asked for or received.
        len: usize,
    },
    /// A received message is shorter than its pattern requires.
    MessageTooShort {
        /// Bytes the pattern requires at least.
        needed: usize,
        /// Bytes received.
        got: usize,
    },
    /// Authentication failed: the message was forged, corrupted, replayed
    /// out of order, or made with other keys.
    Decrypt,
    /// A Diffie-Hellman result was all zero: the peer sent a low-order
    /// public key.
    InvalidPublicKey,
    /// It is the other side's turn, or the handshake has finished.
    WrongTurn,
    /// The handshake has not finished, so there are no transport keys yet.
    NotFinished,
    /// The cipher state has used its last nonce (2^64 - 2) and must not
    /// encrypt again; rekey or start a new session.
    NonceExhausted,
    /// The cipher state has no key (the pattern did not set one).
    NoKey,
}

/// Which key a [`NoiseError::MissingKey`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyRole {
    /// Our own static private key.
    LocalStatic,
    /// The peer's static public key, known before the handshake.
    RemoteStatic,
}

impl fmt::Display for NoiseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoiseError::InvalidName => f.write_str("malformed Noise protocol name"),
            NoiseError::UnsupportedPattern => f.write_str("unsupported handshake pattern"),
            NoiseError::UnsupportedModifier => f.write_str("unsupported pattern modifier"),
            NoiseError::UnsupportedDh => f.write_str("unsupported DH function (only 25519)"),
            NoiseError::UnsupportedCipher => f.write_str("unsupported cipher"),
            NoiseError::UnsupportedHash => f.write_str("unsupported hash"),
            NoiseError::MissingKey(KeyRole::LocalStatic) => {
                f.write_str("pattern needs a local static key")
            }
            NoiseError::MissingKey(KeyRole::RemoteStatic) => {
                f.write_str("pattern needs the remote static key up front")
            }
            NoiseError::PskCount { expected, supplied } => {
                write!(f, "pattern uses {expected} PSKs, {supplied} supplied")
            }
            NoiseError::BufferTooSmall { needed } => {
                write!(f, "buffer too small: {needed} bytes needed")
            }
            NoiseError::MessageTooLarge { len } => {
                write!(f, "message of {len} bytes exceeds 65535")
            }
            NoiseError::MessageTooShort { needed, got } => {
                write!(
                    f,
                    "message too short: {got} bytes, at least {needed} needed"
                )
            }
            NoiseError::Decrypt => f.write_str("authentication failed"),
            NoiseError::InvalidPublicKey => f.write_str("peer public key has low order"),
            NoiseError::WrongTurn => f.write_str("not this side's turn in the handshake"),
            NoiseError::NotFinished => f.write_str("handshake not finished"),
            NoiseError::NonceExhausted => f.write_str("nonces exhausted"),
            NoiseError::NoKey => f.write_str("cipher state has no key"),
        }
    }
}

impl core::error::Error for NoiseError {}
