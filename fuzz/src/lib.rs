//! Harnesses behind the cargo-fuzz targets, kept in a library so the seed
//! generator (`examples/seeds.rs`) encodes inputs with the same code that
//! decodes them.
//!
//! Everything is deterministic: fixed static keys, fixed PSKs and a fixed
//! RNG for the ephemerals, so a genuine handshake message recorded in a seed
//! file is still genuine when the fuzzer replays it.

use tern::crypto::{CryptoProvider, RustCrypto};
use tern::noise::{Builder, HandshakeState, NoiseParams};
use tern::rand_core::{TryCryptoRng, TryRng};

pub mod connection;
pub mod frame_decode;
pub mod handshake;
pub mod packet_header;
pub mod params_decode;
pub mod stream_decode;
pub mod session;
pub mod transport;

/// Handshake patterns the `handshake` target drives (the first input byte
/// picks one, with a cipher and a hash).
pub const PATTERNS: &[&str] = &[
    "NN",
    "NK",
    "XX",
    "IK",
    "IKpsk2",
    "XXpsk3",
    "NNpsk0",
    "NNpsk2",
    "NKpsk0",
    "NKpsk2",
    "IKpsk1",
    "XK",
    "KK",
    "IX",
    "NX",
    "XN",
    "KN",
    "KX",
    "IN",
    "N",
    "K",
    "X",
    "Npsk0",
    "KKpsk0+psk2",
];
/// Ciphers, second choice.
pub const CIPHERS: &[&str] = &["ChaChaPoly", "AESGCM"];
/// Hashes, third choice.
pub const HASHES: &[&str] = &["SHA256", "SHA512", "BLAKE2s", "BLAKE2b"];

/// The protocol a selector byte picks: pattern, then cipher, then hash.
pub fn protocol(selector: u8) -> NoiseParams {
    let s = usize::from(selector);
    let pattern = PATTERNS[s % PATTERNS.len()];
    let s = s / PATTERNS.len();
    let cipher = CIPHERS[s % CIPHERS.len()];
    let hash = HASHES[(s / CIPHERS.len()) % HASHES.len()];
    let name = format!("Noise_{pattern}_25519_{cipher}_{hash}");
    match name.parse() {
        Ok(p) => p,
        Err(e) => panic!("{name} does not parse: {e:?}"),
    }
}

/// The selector byte for a protocol, for the seed generator.
pub fn selector(pattern: &str, cipher: &str, hash: &str) -> u8 {
    let p = PATTERNS
        .iter()
        .position(|&x| x == pattern)
        .expect("pattern");
    let c = CIPHERS.iter().position(|&x| x == cipher).expect("cipher");
    let h = HASHES.iter().position(|&x| x == hash).expect("hash");
    let s = p + PATTERNS.len() * (c + CIPHERS.len() * h);
    u8::try_from(s).expect("selector fits a byte")
}

/// Deterministic SplitMix64: for reproducible fuzzing only.
pub struct TestRng(pub u64);

impl TryRng for TestRng {
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

impl TryCryptoRng for TestRng {}

const INITIATOR_STATIC: [u8; 32] = [0x49; 32];
const RESPONDER_STATIC: [u8; 32] = [0x52; 32];
const PSKS: [[u8; 32]; 4] = [[0xa0; 32], [0xa1; 32], [0xa2; 32], [0xa3; 32]];
const PROLOGUE: &[u8] = b"tern fuzz";

/// The static public keys, computed once.
fn public_keys() -> &'static ([u8; 32], [u8; 32]) {
    static KEYS: std::sync::OnceLock<([u8; 32], [u8; 32])> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        (
            RustCrypto.x25519_base(&INITIATOR_STATIC),
            RustCrypto.x25519_base(&RESPONDER_STATIC),
        )
    })
}

/// A fresh, deterministic (initiator, responder) pair for `params`, each
/// given exactly the keys its pattern requires.
pub fn build_pair(params: NoiseParams) -> (HandshakeState, HandshakeState) {
    let (i_pub, r_pub) = public_keys();
    let pattern = *params.pattern();
    let psks = &PSKS[..pattern.psk_count()];

    let mut b = Builder::new(params).prologue(PROLOGUE);
    if pattern.initiator_needs_static() {
        b = b.local_private_key(&INITIATOR_STATIC);
    }
    if pattern.initiator_knows_remote() {
        b = b.remote_public_key(r_pub);
    }
    for psk in psks {
        b = b.psk(psk);
    }
    let initiator = b.build_initiator(&mut TestRng(1)).expect("initiator");

    let mut b = Builder::new(params).prologue(PROLOGUE);
    if pattern.responder_needs_static() {
        b = b.local_private_key(&RESPONDER_STATIC);
    }
    if pattern.responder_knows_remote() {
        b = b.remote_public_key(i_pub);
    }
    for psk in psks {
        b = b.psk(psk);
    }
    let responder = b.build_responder(&mut TestRng(2)).expect("responder");
    (initiator, responder)
}

/// Reads fuzzer bytes; past the end every read yields zeros, so any input
/// is a complete program.
pub struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    /// Wraps the fuzzer's input.
    pub fn new(data: &'a [u8]) -> Self {
        Input(data)
    }

    /// Whether every byte has been consumed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The next byte, or 0.
    pub fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    /// The next little-endian u16.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// The next little-endian u64.
    pub fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        for x in &mut b {
            *x = self.u8();
        }
        u64::from_le_bytes(b)
    }

    /// Up to `n` bytes (fewer at the end of the input).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }
}

/// Writes inputs in the layout [`Input`] reads, for seed files.
#[derive(Default)]
pub struct Output(pub Vec<u8>);

impl Output {
    /// One byte.
    pub fn u8(&mut self, b: u8) -> &mut Self {
        self.0.push(b);
        self
    }

    /// A little-endian u16.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A little-endian u64.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// Raw bytes.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }
}
