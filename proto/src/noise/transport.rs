//! Transport mode after Split: one cipher state per direction.

use super::handshake::Role;
use super::{CipherState, MAX_MESSAGE_LEN, NoiseError};
use crate::crypto::{CipherKind, CryptoProvider, DHLEN, KEYLEN, MAX_HASHLEN, TAGLEN};

/// The two cipher states a finished handshake produced, with the handshake
/// hash and the peer's static key.
///
/// Messages are limited to 65535 bytes, tag included. For one-way patterns
/// the initiator can only write and the responder only read.
pub struct TransportState<P: CryptoProvider> {
    send: CipherState<P>,
    recv: CipherState<P>,
    one_way: bool,
    role: Role,
    h: [u8; MAX_HASHLEN],
    h_len: u8,
    rs: Option<[u8; DHLEN]>,
}

impl<P: CryptoProvider + Clone> TransportState<P> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        provider: P,
        cipher: CipherKind,
        role: Role,
        k1: &[u8; KEYLEN],
        k2: &[u8; KEYLEN],
        one_way: bool,
        h: &[u8],
        rs: Option<[u8; DHLEN]>,
    ) -> Self {
        let (send, recv) = match role {
            Role::Initiator => (k1, k2),
            Role::Responder => (k2, k1),
        };
        let mut hh = [0u8; MAX_HASHLEN];
        hh[..h.len()].copy_from_slice(h);
        TransportState {
            send: CipherState::new(provider.clone(), cipher, send),
            recv: CipherState::new(provider, cipher, recv),
            one_way,
            role,
            h: hh,
            h_len: h.len() as u8,
            rs,
        }
    }
}

impl<P: CryptoProvider> TransportState<P> {
    fn can_send(&self) -> Result<(), NoiseError> {
        if self.one_way && self.role == Role::Responder {
            return Err(NoiseError::WrongTurn);
        }
        Ok(())
    }

    fn can_recv(&self) -> Result<(), NoiseError> {
        if self.one_way && self.role == Role::Initiator {
            return Err(NoiseError::WrongTurn);
        }
        Ok(())
    }

    /// Encrypts `payload` into `out` with the next sending nonce; returns the
    /// message length (`payload.len() + 16`).
    pub fn write_message(&mut self, payload: &[u8], out: &mut [u8]) -> Result<usize, NoiseError> {
        self.can_send()?;
        check_len(payload.len() + TAGLEN)?;
        self.send.encrypt(&[], payload, out)
    }

    /// Decrypts `message` into `out` with the next receiving nonce; returns
    /// the payload length. On failure the nonce does not advance.
    pub fn read_message(&mut self, message: &[u8], out: &mut [u8]) -> Result<usize, NoiseError> {
        self.can_recv()?;
        check_len(message.len())?;
        self.recv.decrypt(&[], message, out)
    }

    /// Encrypts `buf[..len]` in place, appending the tag; returns the message
    /// length.
    pub fn write_message_in_place(
        &mut self,
        buf: &mut [u8],
        len: usize,
    ) -> Result<usize, NoiseError> {
        self.can_send()?;
        check_len(len.saturating_add(TAGLEN))?;
        self.send.encrypt_in_place(&[], buf, len)
    }

    /// Decrypts a whole message in place; returns the payload length.
    pub fn read_message_in_place(&mut self, buf: &mut [u8]) -> Result<usize, NoiseError> {
        self.can_recv()?;
        check_len(buf.len())?;
        self.recv.decrypt_in_place(&[], buf)
    }

    /// Encrypts with an explicit nonce `n`, for datagram transports that
    /// carry the nonce beside the message. The sending nonce is unchanged.
    /// The caller must never use the same `n` twice.
    pub fn write_message_with_nonce(
        &mut self,
        n: u64,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<usize, NoiseError> {
        self.can_send()?;
        let needed = payload.len() + TAGLEN;
        check_len(needed)?;
        if out.len() < needed {
            return Err(NoiseError::BufferTooSmall { needed });
        }
        out[..payload.len()].copy_from_slice(payload);
        self.send.encrypt_with_nonce(n, &[], out, payload.len())
    }

    /// Decrypts with an explicit nonce `n` (datagrams may arrive out of
    /// order or be lost). The receiving nonce is unchanged; replay
    /// protection is the caller's.
    pub fn read_message_with_nonce(
        &mut self,
        n: u64,
        message: &[u8],
        out: &mut [u8],
    ) -> Result<usize, NoiseError> {
        self.can_recv()?;
        check_len(message.len())?;
        let Some(len) = message.len().checked_sub(TAGLEN) else {
            return Err(NoiseError::MessageTooShort {
                needed: TAGLEN,
                got: message.len(),
            });
        };
        if out.len() < message.len() {
            // The tag is checked in place, so the buffer holds it too.
            return Err(NoiseError::BufferTooSmall {
                needed: message.len(),
            });
        }
        out[..message.len()].copy_from_slice(message);
        self.recv
            .decrypt_with_nonce(n, &[], &mut out[..message.len()])?;
        Ok(len)
    }

    /// Rekey() of the sending cipher state.
    pub fn rekey_outgoing(&mut self) {
        self.send.rekey();
    }

    /// Rekey() of the receiving cipher state.
    pub fn rekey_incoming(&mut self) {
        self.recv.rekey();
    }

    /// The next sending nonce.
    pub fn sending_nonce(&self) -> u64 {
        self.send.nonce()
    }

    /// The next receiving nonce.
    pub fn receiving_nonce(&self) -> u64 {
        self.recv.nonce()
    }

    /// Sets the receiving nonce (SetNonce).
    pub fn set_receiving_nonce(&mut self, n: u64) {
        self.recv.set_nonce(n);
    }

    /// The final handshake hash, for channel binding.
    pub fn handshake_hash(&self) -> &[u8] {
        &self.h[..usize::from(self.h_len)]
    }

    /// The peer's static public key, if the pattern transmitted or
    /// pre-shared one.
    pub fn remote_static(&self) -> Option<&[u8; DHLEN]> {
        self.rs.as_ref()
    }

    /// This side's role in the handshake.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Takes the two cipher states apart: `(sending, receiving)`. Tern's
    /// record layer uses them with explicit nonces.
    pub fn into_cipher_states(self) -> (CipherState<P>, CipherState<P>) {
        (self.send, self.recv)
    }
}

fn check_len(len: usize) -> Result<(), NoiseError> {
    if len > MAX_MESSAGE_LEN {
        return Err(NoiseError::MessageTooLarge { len });
    }
    Ok(())
}
