//! Replays Noise test vectors in the cacophony/snow JSON format.
//!
//! For each vector both roles are built from the vector's keys, ephemerals,
//! prologues and PSKs. Every message is written by its sender and compared
//! byte for byte with the vector's ciphertext, then read by the receiver and
//! compared with the payload. Handshake messages alternate from the
//! initiator; transport messages keep alternating (one-way patterns: all
//! from the initiator). Where the vector has a handshake hash, both sides'
//! hashes must equal it.

use serde::Deserialize;
use tern::crypto::{CryptoProvider, RustCrypto};
use tern::noise::{Builder, HandshakeState, NoiseError, NoiseParams, TransportState};

/// One vector file.
#[derive(Deserialize)]
pub struct VectorFile {
    /// The vectors.
    pub vectors: Vec<Vector>,
}

/// One vector, fields as in the cacophony and snow files (hex strings).
#[derive(Deserialize)]
#[allow(missing_docs)]
pub struct Vector {
    pub protocol_name: String,
    #[serde(default)]
    pub init_prologue: String,
    #[serde(default)]
    pub init_psks: Vec<String>,
    pub init_static: Option<String>,
    pub init_ephemeral: Option<String>,
    pub init_remote_static: Option<String>,
    #[serde(default)]
    pub resp_prologue: String,
    #[serde(default)]
    pub resp_psks: Vec<String>,
    pub resp_static: Option<String>,
    pub resp_ephemeral: Option<String>,
    pub resp_remote_static: Option<String>,
    pub handshake_hash: Option<String>,
    pub messages: Vec<Message>,
}

/// One message of a vector.
#[derive(Deserialize)]
#[allow(missing_docs)]
pub struct Message {
    pub payload: String,
    pub ciphertext: String,
}

/// What became of one vector.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every byte matched.
    Passed,
    /// Outside what Tern supports (for example Curve448): not run.
    Skipped(NoiseError),
    /// A mismatch or error, described.
    Failed(String),
}

/// Totals over one or more files.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Vectors that passed.
    pub passed: usize,
    /// Vectors that failed.
    pub failed: usize,
    /// Vectors skipped as unsupported.
    pub skipped: usize,
}

impl Tally {
    /// Adds one outcome.
    pub fn add(&mut self, o: &Outcome) {
        match o {
            Outcome::Passed => self.passed += 1,
            Outcome::Skipped(_) => self.skipped += 1,
            Outcome::Failed(_) => self.failed += 1,
        }
    }

    /// Adds another tally.
    pub fn merge(&mut self, o: Tally) {
        self.passed += o.passed;
        self.failed += o.failed;
        self.skipped += o.skipped;
    }
}

fn unhex(field: &str, s: &str) -> Result<Vec<u8>, String> {
    hex::decode(s).map_err(|e| format!("{field}: bad hex: {e}"))
}

fn key32(field: &str, s: &Option<String>) -> Result<Option<[u8; 32]>, String> {
    match s {
        None => Ok(None),
        Some(s) => {
            let v = unhex(field, s)?;
            let k: [u8; 32] = v.try_into().map_err(|_| format!("{field}: not 32 bytes"))?;
            Ok(Some(k))
        }
    }
}

fn psks(field: &str, v: &[String]) -> Result<Vec<[u8; 32]>, String> {
    v.iter()
        .map(|s| key32(field, &Some(s.clone())).map(|k| k.unwrap_or_default()))
        .collect()
}

struct Side {
    prologue: Vec<u8>,
    psks: Vec<[u8; 32]>,
    s: Option<[u8; 32]>,
    e: Option<[u8; 32]>,
    rs: Option<[u8; 32]>,
}

/// An RNG for the vectors: every ephemeral is fixed, so drawing from it is a
/// bug the vector would reveal (its bytes could never match).
struct NoRandom;
impl rand_core_shim::TryRng for NoRandom {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(0)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(0)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        dst.fill(0);
        Ok(())
    }
}
impl rand_core_shim::TryCryptoRng for NoRandom {}
use tern::rand_core as rand_core_shim;

fn build<P: CryptoProvider>(
    params: NoiseParams,
    side: &Side,
    initiator: bool,
    provider: P,
) -> Result<HandshakeState<P>, NoiseError> {
    let mut b = Builder::with_provider(params, provider).prologue(&side.prologue);
    if let Some(s) = &side.s {
        b = b.local_private_key(s);
    }
    if let Some(rs) = &side.rs {
        b = b.remote_public_key(rs);
    }
    if let Some(e) = &side.e {
        b = b.fixed_ephemeral_for_testing_only(e);
    }
    for psk in &side.psks {
        b = b.psk(psk);
    }
    if initiator {
        b.build_initiator(&mut NoRandom)
    } else {
        b.build_responder(&mut NoRandom)
    }
}

/// Runs one vector with the default provider on both sides.
pub fn run_vector(v: &Vector) -> Outcome {
    run_vector_with(v, RustCrypto, RustCrypto)
}

/// Runs one vector with the initiator on provider `init` and the
/// responder on `resp`: every byte must still match the vector, so two
/// providers that pass it both ways interoperate.
pub fn run_vector_with<I: CryptoProvider + Clone, R: CryptoProvider + Clone>(
    v: &Vector,
    init: I,
    resp: R,
) -> Outcome {
    let params = match NoiseParams::parse(&v.protocol_name) {
        Ok(p) => p,
        Err(e) => return Outcome::Skipped(e),
    };
    match run_supported(params, v, init, resp) {
        Ok(()) => Outcome::Passed,
        Err(e) => Outcome::Failed(format!("{}: {e}", v.protocol_name)),
    }
}

fn side(v: &Vector, init: bool) -> Result<Side, String> {
    Ok(if init {
        Side {
            prologue: unhex("init_prologue", &v.init_prologue)?,
            psks: psks("init_psks", &v.init_psks)?,
            s: key32("init_static", &v.init_static)?,
            e: key32("init_ephemeral", &v.init_ephemeral)?,
            rs: key32("init_remote_static", &v.init_remote_static)?,
        }
    } else {
        Side {
            prologue: unhex("resp_prologue", &v.resp_prologue)?,
            psks: psks("resp_psks", &v.resp_psks)?,
            s: key32("resp_static", &v.resp_static)?,
            e: key32("resp_ephemeral", &v.resp_ephemeral)?,
            rs: key32("resp_remote_static", &v.resp_remote_static)?,
        }
    })
}

fn run_supported<I: CryptoProvider + Clone, R: CryptoProvider + Clone>(
    params: NoiseParams,
    v: &Vector,
    init_provider: I,
    resp_provider: R,
) -> Result<(), String> {
    let mut init = build(params, &side(v, true)?, true, init_provider)
        .map_err(|e| format!("initiator: {e}"))?;
    let mut resp = build(params, &side(v, false)?, false, resp_provider)
        .map_err(|e| format!("responder: {e}"))?;
    let hs_len = params.pattern().messages().len();
    let one_way = params.pattern().is_one_way();
    if v.messages.len() < hs_len {
        return Err(format!(
            "{} messages, pattern has {hs_len}",
            v.messages.len()
        ));
    }
    let mut buf = vec![0u8; 65535];
    let mut out = vec![0u8; 65535];
    for (i, m) in v.messages[..hs_len].iter().enumerate() {
        let payload = unhex("payload", &m.payload)?;
        let expect = unhex("ciphertext", &m.ciphertext)?;
        let (n, k) = if i % 2 == 0 {
            hs_step(&mut init, &mut resp, &payload, &mut buf, &mut out)
        } else {
            hs_step(&mut resp, &mut init, &payload, &mut buf, &mut out)
        }
        .map_err(|e| format!("message {i} {e}"))?;
        if buf[..n] != expect[..] {
            return Err(format!("message {i}: ciphertext differs"));
        }
        if out[..k] != payload[..] {
            return Err(format!("message {i}: payload differs"));
        }
    }
    if init.handshake_hash() != resp.handshake_hash() {
        return Err("handshake hashes differ between the roles".into());
    }
    if let Some(h) = &v.handshake_hash
        && init.handshake_hash() != unhex("handshake_hash", h)?
    {
        return Err("handshake hash differs from the vector".into());
    }
    let mut init = init.into_transport().map_err(|e| format!("split: {e}"))?;
    let mut resp = resp.into_transport().map_err(|e| format!("split: {e}"))?;
    for (i, m) in v.messages.iter().enumerate().skip(hs_len) {
        let payload = unhex("payload", &m.payload)?;
        let expect = unhex("ciphertext", &m.ciphertext)?;
        let from_init = one_way || i % 2 == 0;
        let (n, k) = if from_init {
            ts_step(&mut init, &mut resp, &payload, &mut buf, &mut out)
        } else {
            ts_step(&mut resp, &mut init, &payload, &mut buf, &mut out)
        }
        .map_err(|e| format!("message {i} {e}"))?;
        if buf[..n] != expect[..] {
            return Err(format!("transport message {i}: ciphertext differs"));
        }
        if out[..k] != payload[..] {
            return Err(format!("transport message {i}: payload differs"));
        }
    }
    Ok(())
}

/// One handshake message: `w` writes `payload` into `buf`, `r` reads it
/// into `out`; returns both lengths. The sides may use different providers.
fn hs_step<A: CryptoProvider, B: CryptoProvider>(
    w: &mut HandshakeState<A>,
    r: &mut HandshakeState<B>,
    payload: &[u8],
    buf: &mut [u8],
    out: &mut [u8],
) -> Result<(usize, usize), String> {
    let n = w
        .write_message(payload, buf)
        .map_err(|e| format!("write: {e}"))?;
    let k = r
        .read_message(&buf[..n], out)
        .map_err(|e| format!("read: {e}"))?;
    Ok((n, k))
}

/// One transport message, as [`hs_step`].
fn ts_step<A: CryptoProvider, B: CryptoProvider>(
    w: &mut TransportState<A>,
    r: &mut TransportState<B>,
    payload: &[u8],
    buf: &mut [u8],
    out: &mut [u8],
) -> Result<(usize, usize), String> {
    let n = w
        .write_message(payload, buf)
        .map_err(|e| format!("write: {e}"))?;
    let k = r
        .read_message(&buf[..n], out)
        .map_err(|e| format!("read: {e}"))?;
    Ok((n, k))
}

/// Runs every vector of a parsed file; returns the tally and the failures.
pub fn run_file(file: &VectorFile) -> (Tally, Vec<String>) {
    run_file_with(file, RustCrypto, RustCrypto)
}

/// Like [`run_file`], the initiators on provider `init` and the responders
/// on `resp` (see [`run_vector_with`]).
pub fn run_file_with<I: CryptoProvider + Clone, R: CryptoProvider + Clone>(
    file: &VectorFile,
    init: I,
    resp: R,
) -> (Tally, Vec<String>) {
    let mut tally = Tally::default();
    let mut failures = Vec::new();
    for v in &file.vectors {
        let o = run_vector_with(v, init.clone(), resp.clone());
        tally.add(&o);
        if let Outcome::Failed(msg) = o {
            failures.push(msg);
        }
    }
    (tally, failures)
}

/// Reads and parses a vector file.
pub fn load(path: &std::path::Path) -> Result<VectorFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}
