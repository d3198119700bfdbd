//! The Noise HandshakeState (§5.3), driven by pattern token tables.

use super::error::KeyRole;
use super::pattern::{MAX_PSKS, Token};
use super::symmetric::SymmetricState;
use super::{MAX_MESSAGE_LEN, NoiseError, NoiseParams, PSKLEN, TransportState};
use crate::crypto::{CryptoProvider, DHLEN, RustCrypto, TAGLEN};
use rand_core::CryptoRng;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Which side of the handshake this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Sends the first message.
    Initiator,
    /// Answers the first message.
    Responder,
}

/// A private key with its public key; the private half zeroizes on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct KeyPair {
    secret: [u8; DHLEN],
    public: [u8; DHLEN],
}

impl KeyPair {
    fn from_secret<P: CryptoProvider>(p: &mut P, secret: &[u8; DHLEN]) -> KeyPair {
        KeyPair {
            secret: *secret,
            public: p.x25519_base(secret),
        }
    }
}

/// Collects what a handshake needs, then builds a [`HandshakeState`].
///
/// ```
/// use tern::noise::{Builder, NoiseParams};
/// # struct Rng(u8);
/// # impl rand_core::TryRng for Rng { type Error = core::convert::Infallible;
/// #   fn try_next_u32(&mut self) -> Result<u32, Self::Error> { Ok(u32::from_le_bytes([self.0; 4])) }
/// #   fn try_next_u64(&mut self) -> Result<u64, Self::Error> { Ok(u64::from(self.try_next_u32()?)) }
/// #   fn try_fill_bytes(&mut self, d: &mut [u8]) -> Result<(), Self::Error> { for b in d { self.0 = self.0.wrapping_mul(31).wrapping_add(7); *b = self.0; } Ok(()) } }
/// # impl rand_core::TryCryptoRng for Rng {}
/// let params: NoiseParams = "Noise_NN_25519_ChaChaPoly_SHA256".parse().unwrap();
/// let mut rng = Rng(1);
/// let mut alice = Builder::new(params).build_initiator(&mut rng).unwrap();
/// let mut bob = Builder::new(params).build_responder(&mut rng).unwrap();
/// let (mut m, mut p) = ([0u8; 128], [0u8; 128]);
/// let n = alice.write_message(b"hi", &mut m).unwrap();
/// bob.read_message(&m[..n], &mut p).unwrap();
/// let n = bob.write_message(b"", &mut m).unwrap();
/// alice.read_message(&m[..n], &mut p).unwrap();
/// assert_eq!(alice.handshake_hash(), bob.handshake_hash());
/// let mut alice = alice.into_transport().unwrap();
/// let mut bob = bob.into_transport().unwrap();
/// let n = alice.write_message(b"hello", &mut m).unwrap();
/// let k = bob.read_message(&m[..n], &mut p).unwrap();
/// assert_eq!(&p[..k], b"hello");
/// ```
pub struct Builder<'a, P: CryptoProvider = RustCrypto> {
    provider: P,
    params: NoiseParams,
    prologue: &'a [u8],
    local_static: Option<&'a [u8; DHLEN]>,
    remote_static: Option<&'a [u8; DHLEN]>,
    fixed_ephemeral: Option<&'a [u8; DHLEN]>,
    psks: [Option<&'a [u8; PSKLEN]>; MAX_PSKS],
    n_psks: usize,
}

impl<'a> Builder<'a, RustCrypto> {
    /// A builder using the default RustCrypto provider.
    pub fn new(params: NoiseParams) -> Self {
        Builder::with_provider(params, RustCrypto)
    }
}

impl<'a, P: CryptoProvider> Builder<'a, P> {
    /// A builder using `provider` for every primitive.
    pub fn with_provider(params: NoiseParams, provider: P) -> Self {
        Builder {
            provider,
            params,
            prologue: &[],
            local_static: None,
            remote_static: None,
            fixed_ephemeral: None,
            psks: [None; MAX_PSKS],
            n_psks: 0,
        }
    }

    /// The prologue both sides must agree on (mixed into the handshake hash).
    pub fn prologue(mut self, prologue: &'a [u8]) -> Self {
        self.prologue = prologue;
        self
    }

    /// Our static private key.
    pub fn local_private_key(mut self, key: &'a [u8; DHLEN]) -> Self {
        self.local_static = Some(key);
        self
    }

    /// The peer's static public key, for patterns where it is known up front.
    pub fn remote_public_key(mut self, key: &'a [u8; DHLEN]) -> Self {
        self.remote_static = Some(key);
        self
    }

    /// Adds the next pre-shared key, in the order the pattern uses them.
    /// Extra PSKs beyond [`MAX_PSKS`] are counted, and refused at build.
    pub fn psk(mut self, psk: &'a [u8; PSKLEN]) -> Self {
        if let Some(slot) = self.psks.get_mut(self.n_psks) {
            *slot = Some(psk);
        }
        self.n_psks += 1;
        self
    }

    /// Uses this ephemeral private key instead of a random one. Only for test
    /// vectors: reusing an ephemeral key destroys the handshake's security.
    #[doc(hidden)]
    pub fn fixed_ephemeral_for_testing_only(mut self, key: &'a [u8; DHLEN]) -> Self {
        self.fixed_ephemeral = Some(key);
        self
    }

    /// Builds the initiator; `rng` supplies its ephemeral key.
    pub fn build_initiator<R: CryptoRng + ?Sized>(
        self,
        rng: &mut R,
    ) -> Result<HandshakeState<P>, NoiseError> {
        self.build(Role::Initiator, rng)
    }

    /// Builds the responder; `rng` supplies its ephemeral key.
    pub fn build_responder<R: CryptoRng + ?Sized>(
        self,
        rng: &mut R,
    ) -> Result<HandshakeState<P>, NoiseError> {
        self.build(Role::Responder, rng)
    }

    fn build<R: CryptoRng + ?Sized>(
        mut self,
        role: Role,
        rng: &mut R,
    ) -> Result<HandshakeState<P>, NoiseError> {
        let pattern = *self.params.pattern();
        let initiator = role == Role::Initiator;
        let (needs_s, knows_rs) = if initiator {
            (
                pattern.initiator_needs_static(),
                pattern.initiator_knows_remote(),
            )
        } else {
            (
                pattern.responder_needs_static(),
                pattern.responder_knows_remote(),
            )
        };
        if needs_s && self.local_static.is_none() {
            return Err(NoiseError::MissingKey(KeyRole::LocalStatic));
        }
        if knows_rs && self.remote_static.is_none() {
            return Err(NoiseError::MissingKey(KeyRole::RemoteStatic));
        }
        if self.n_psks != pattern.psk_count() {
            return Err(NoiseError::PskCount {
                expected: pattern.psk_count() as u8,
                supplied: self.n_psks.min(usize::from(u8::MAX)) as u8,
            });
        }
        let p = &mut self.provider;
        let s = self.local_static.map(|k| KeyPair::from_secret(p, k));
        let sends_e = pattern
            .messages()
            .iter()
            .enumerate()
            .any(|(i, m)| (i % 2 == 0) == initiator && m.as_slice().contains(&Token::E));
        let e = if sends_e {
            let mut secret = [0u8; DHLEN];
            match self.fixed_ephemeral {
                Some(k) => secret = *k,
                None => rng.fill_bytes(&mut secret),
            }
            let pair = KeyPair::from_secret(p, &secret);
            secret.zeroize();
            Some(pair)
        } else {
            None
        };
        let mut psks = [[0u8; PSKLEN]; MAX_PSKS];
        for (dst, src) in psks.iter_mut().zip(self.psks.iter()) {
            if let Some(src) = src {
                *dst = **src;
            }
        }

        let mut ss = SymmetricState::new(
            p,
            self.params.hash(),
            self.params.cipher(),
            self.params.name_bytes(),
        );
        ss.mix_hash(p, self.prologue);
        let rs = self.remote_static.copied();
        // Pre-messages: the initiator's first, then the responder's (§5.3).
        for (pre, ours) in [
            (pattern.pre_initiator(), initiator),
            (pattern.pre_responder(), !initiator),
        ] {
            for tok in pre {
                let key = match (tok, ours) {
                    (Token::S, true) => s.as_ref().map(|k| k.public),
                    (Token::S, false) => rs,
                    // Only the fallback modifier has `e` in a pre-message,
                    // and it is refused when the name is parsed.
                    _ => None,
                };
                let key = key.ok_or(NoiseError::MissingKey(if ours {
                    KeyRole::LocalStatic
                } else {
                    KeyRole::RemoteStatic
                }))?;
                ss.mix_hash(p, &key);
            }
        }
        Ok(HandshakeState {
            provider: self.provider,
            params: self.params,
            role,
            ss,
            s,
            e,
            rs,
            re: None,
            psks,
            next_psk: 0,
            msg_index: 0,
        })
    }
}

/// A Noise handshake in progress.
///
/// Call [`write_message`](Self::write_message) and
/// [`read_message`](Self::read_message) in the pattern's order until
/// [`is_finished`](Self::is_finished), then
/// [`into_transport`](Self::into_transport). A call that fails changes
/// nothing: the same state can read the next message.
pub struct HandshakeState<P: CryptoProvider = RustCrypto> {
    provider: P,
    params: NoiseParams,
    role: Role,
    ss: SymmetricState,
    s: Option<KeyPair>,
    e: Option<KeyPair>,
    rs: Option<[u8; DHLEN]>,
    re: Option<[u8; DHLEN]>,
    psks: [[u8; PSKLEN]; MAX_PSKS],
    next_psk: usize,
    msg_index: usize,
}

impl<P: CryptoProvider> Drop for HandshakeState<P> {
    fn drop(&mut self) {
        self.psks.zeroize();
    }
}

/// Which keys a message-processing step may read and update. Held apart
/// from `HandshakeState` so a message is processed on copies and committed
/// only when it succeeds.
struct Scratch {
    ss: SymmetricState,
    rs: Option<[u8; DHLEN]>,
    re: Option<[u8; DHLEN]>,
    next_psk: usize,
}

impl<P: CryptoProvider> HandshakeState<P> {
    /// This side's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The protocol this handshake runs.
    pub fn params(&self) -> &NoiseParams {
        &self.params
    }

    /// Whether every handshake message has been written or read.
    pub fn is_finished(&self) -> bool {
        self.msg_index == self.params.pattern().messages().len()
    }

    /// Whether the next step is ours to write (else we wait to read).
    pub fn is_my_turn(&self) -> bool {
        !self.is_finished() && self.msg_index.is_multiple_of(2) == (self.role == Role::Initiator)
    }

    /// Index of the next handshake message (0 is the initiator's first).
    pub fn message_index(&self) -> usize {
        self.msg_index
    }

    /// The handshake hash `h` so far; after the last message it is the value
    /// to use for channel binding.
    pub fn handshake_hash(&self) -> &[u8] {
        self.ss.handshake_hash()
    }

    /// The peer's static public key, once known.
    pub fn remote_static(&self) -> Option<&[u8; DHLEN]> {
        self.rs.as_ref()
    }

    /// Our ephemeral public key, if this side has one.
    pub fn local_ephemeral(&self) -> Option<&[u8; DHLEN]> {
        self.e.as_ref().map(|k| &k.public)
    }

    /// Length of the message for `tokens` and a payload of `payload` bytes,
    /// and the fixed part of it (everything but the payload).
    fn message_len(&self, tokens: &[Token], payload: usize) -> (usize, usize) {
        let mut has_key = self.ss.has_key();
        let mut len = 0;
        for tok in tokens {
            match tok {
                Token::E => {
                    len += DHLEN;
                    has_key |= self.params.pattern().has_psk();
                }
                Token::S => len += DHLEN + if has_key { TAGLEN } else { 0 },
                Token::EE | Token::ES | Token::SE | Token::SS | Token::Psk => has_key = true,
            }
        }
        let fixed = len + if has_key { TAGLEN } else { 0 };
        (fixed + payload, fixed)
    }

    /// Length of the next message we write with a payload of `payload`
    /// bytes, or `WrongTurn` if it is not ours to write.
    pub fn next_message_len(&self, payload: usize) -> Result<usize, NoiseError> {
        let tokens = self.turn(true)?;
        Ok(self.message_len(tokens, payload).0)
    }

    fn turn(&self, write: bool) -> Result<&[Token], NoiseError> {
        let ours = self.msg_index.is_multiple_of(2) == (self.role == Role::Initiator);
        if self.is_finished() || ours != write {
            return Err(NoiseError::WrongTurn);
        }
        Ok(self.params.pattern().messages()[self.msg_index].as_slice())
    }

    fn scratch(&self) -> Scratch {
        Scratch {
            ss: self.ss.clone(),
            rs: self.rs,
            re: self.re,
            next_psk: self.next_psk,
        }
    }

    fn commit(&mut self, s: Scratch) {
        self.ss = s.ss;
        self.rs = s.rs;
        self.re = s.re;
        self.next_psk = s.next_psk;
        self.msg_index += 1;
    }

    /// WriteMessage: writes the next handshake message carrying `payload`
    /// into `out` and returns its length.
    ///
    /// Errors: `WrongTurn`; `BufferTooSmall { needed }` and
    /// `MessageTooLarge` before anything is changed.
    pub fn write_message(&mut self, payload: &[u8], out: &mut [u8]) -> Result<usize, NoiseError> {
        let tokens = self.turn(true)?;
        let (needed, _) = self.message_len(tokens, payload.len());
        if needed > MAX_MESSAGE_LEN {
            return Err(NoiseError::MessageTooLarge { len: needed });
        }
        if out.len() < needed {
            return Err(NoiseError::BufferTooSmall { needed });
        }
        let mut st = self.scratch();
        let p = &mut self.provider;
        let pattern = self.params.pattern();
        let mut pos = 0;
        for &tok in pattern.messages()[self.msg_index].as_slice() {
            match tok {
                Token::E => {
                    let e = self.e.as_ref().ok_or(NoiseError::NoKey)?;
                    out[pos..pos + DHLEN].copy_from_slice(&e.public);
                    pos += DHLEN;
                    st.ss.mix_hash(p, &e.public);
                    if pattern.has_psk() {
                        st.ss.mix_key(p, &e.public);
                    }
                }
                Token::S => {
                    let s = self
                        .s
                        .as_ref()
                        .ok_or(NoiseError::MissingKey(KeyRole::LocalStatic))?;
                    pos += st.ss.encrypt_and_hash(p, &s.public, &mut out[pos..])?;
                }
                Token::Psk => mix_psk(p, &mut st, &self.psks),
                dh => mix_dh(p, &mut st, dh, self.role, self.s.as_ref(), self.e.as_ref())?,
            }
        }
        pos += st.ss.encrypt_and_hash(p, payload, &mut out[pos..])?;
        debug_assert_eq!(pos, needed);
        self.commit(st);
        Ok(pos)
    }

    /// ReadMessage: processes the peer's next handshake message and writes
    /// its payload into `payload_out`, returning the payload length.
    ///
    /// Errors: `WrongTurn`, `MessageTooLarge`, `MessageTooShort`,
    /// `BufferTooSmall { needed }` (for the payload), `Decrypt`,
    /// `InvalidPublicKey`. On any error the state is unchanged.
    pub fn read_message(
        &mut self,
        message: &[u8],
        payload_out: &mut [u8],
    ) -> Result<usize, NoiseError> {
        let tokens = self.turn(false)?;
        if message.len() > MAX_MESSAGE_LEN {
            return Err(NoiseError::MessageTooLarge { len: message.len() });
        }
        let (_, fixed) = self.message_len(tokens, 0);
        if message.len() < fixed {
            return Err(NoiseError::MessageTooShort {
                needed: fixed,
                got: message.len(),
            });
        }
        let payload_len = message.len() - fixed;
        if payload_out.len() < payload_len {
            return Err(NoiseError::BufferTooSmall {
                needed: payload_len,
            });
        }
        let mut st = self.scratch();
        let p = &mut self.provider;
        let pattern = self.params.pattern();
        let mut pos = 0;
        for &tok in pattern.messages()[self.msg_index].as_slice() {
            match tok {
                Token::E => {
                    let mut re = [0u8; DHLEN];
                    re.copy_from_slice(&message[pos..pos + DHLEN]);
                    pos += DHLEN;
                    st.ss.mix_hash(p, &re);
                    if pattern.has_psk() {
                        st.ss.mix_key(p, &re);
                    }
                    st.re = Some(re);
                }
                Token::S => {
                    let len = DHLEN + st.ss.overhead();
                    let mut rs = [0u8; DHLEN];
                    st.ss
                        .decrypt_and_hash(p, &message[pos..pos + len], &mut rs)?;
                    pos += len;
                    st.rs = Some(rs);
                }
                Token::Psk => mix_psk(p, &mut st, &self.psks),
                dh => mix_dh(p, &mut st, dh, self.role, self.s.as_ref(), self.e.as_ref())?,
            }
        }
        let n = st.ss.decrypt_and_hash(p, &message[pos..], payload_out)?;
        self.commit(st);
        Ok(n)
    }

    /// The two transport keys Split() would produce (initiator-to-responder
    /// first), for publishing test vectors. Never needed to use Tern:
    /// keys handed out this way are the caller's to protect and zeroize.
    #[doc(hidden)]
    pub fn split_keys_for_test_vectors(&mut self) -> Result<([u8; 32], [u8; 32]), NoiseError> {
        if !self.is_finished() {
            return Err(NoiseError::NotFinished);
        }
        Ok(self.ss.split(&mut self.provider))
    }

    /// Split(): ends the handshake and returns the transport state.
    /// `NotFinished` if messages remain.
    pub fn into_transport(self) -> Result<TransportState<P>, NoiseError>
    where
        P: Clone,
    {
        if !self.is_finished() {
            return Err(NoiseError::NotFinished);
        }
        let mut p = self.provider.clone();
        let (mut k1, mut k2) = self.ss.split(&mut p);
        let t = TransportState::new(
            p,
            self.params.cipher(),
            self.role,
            &k1,
            &k2,
            self.params.pattern().is_one_way(),
            self.ss.handshake_hash(),
            self.rs,
        );
        k1.zeroize();
        k2.zeroize();
        Ok(t)
    }
}

fn mix_psk<P: CryptoProvider>(p: &mut P, st: &mut Scratch, psks: &[[u8; PSKLEN]; MAX_PSKS]) {
    // The builder checked that as many PSKs were supplied as the pattern has
    // psk tokens, so the index is always in range.
    if let Some(psk) = psks.get(st.next_psk) {
        st.ss.mix_key_and_hash(p, psk);
    }
    st.next_psk += 1;
}

fn mix_dh<P: CryptoProvider>(
    p: &mut P,
    st: &mut Scratch,
    tok: Token,
    role: Role,
    s: Option<&KeyPair>,
    e: Option<&KeyPair>,
) -> Result<(), NoiseError> {
    let initiator = role == Role::Initiator;
    // (local key, remote key) per token, from the initiator's point of view
    // for es/se and swapped for the responder (§5.3).
    let (local, remote) = match tok {
        Token::EE => (e, st.re.as_ref()),
        Token::SS => (s, st.rs.as_ref()),
        Token::ES if initiator => (e, st.rs.as_ref()),
        Token::ES => (s, st.re.as_ref()),
        Token::SE if initiator => (s, st.re.as_ref()),
        Token::SE => (e, st.rs.as_ref()),
        Token::E | Token::S | Token::Psk => return Ok(()),
    };
    let local = local.ok_or(NoiseError::MissingKey(KeyRole::LocalStatic))?;
    let remote = remote.ok_or(NoiseError::MissingKey(KeyRole::RemoteStatic))?;
    let mut shared = p.x25519(&local.secret, remote);
    // An all-zero result means the peer's key has small order: refuse it
    // rather than derive keys an attacker knows.
    let zero = shared.iter().fold(0u8, |acc, b| acc | b) == 0;
    if zero {
        return Err(NoiseError::InvalidPublicKey);
    }
    st.ss.mix_key(p, &shared);
    shared.zeroize();
    Ok(())
}
