//! Received datagrams: handshake packets, data packets, frames.

use super::params::{MAX_PARAMS_LEN, Params};
use super::{
    Channel, ConnectError, Connection, ConnectionError, Credentials, DropReason, Event, MAX_FLIGHT,
    Side, State, code,
};
use crate::channel::RecvError;
use crate::config::{Config, HandshakePattern, Suite};
use crate::crypto::CryptoProvider;
use crate::frame::{AckFrame, Frame, FrameDecoder};
use crate::noise::{Builder, HandshakeState, NoiseError, NoiseParams};
use crate::packet::{
    HandshakeHeader, HandshakeKind, LONG_HEADER_LEN, ReplayCheck, ShortHeader, VERSION,
    decode_packet_number,
};
use crate::storage::ByteStore;
use crate::time::Instant;
use core::net::SocketAddr;
use rand_core::CryptoRng;

/// The Noise prologue: binds the handshake to Tern and its version.
pub(crate) const PROLOGUE: [u8; 5] = [b't', b'e', b'r', b'n', VERSION];

/// Frames of a received packet kept from the validating pass for the
/// applying pass (about 50 bytes of stack each); further frames are
/// decoded a second time.
const KEPT_FRAMES: usize = 8;

/// Builds `Noise_<pattern>_25519_<cipher>_<hash>` without allocating.
pub(crate) fn noise_params(
    pattern: HandshakePattern,
    suite: Suite,
) -> Result<NoiseParams, NoiseError> {
    let mut buf = [0u8; 64];
    let mut len = 0;
    for part in [
        "Noise_",
        pattern.noise_name(),
        "_25519_",
        suite.cipher.name(),
        "_",
        suite.hash.name(),
    ] {
        buf[len..len + part.len()].copy_from_slice(part.as_bytes());
        len += part.len();
    }
    NoiseParams::parse(core::str::from_utf8(&buf[..len]).map_err(|_| NoiseError::InvalidName)?)
}

pub(crate) fn build_handshake<P, R>(
    pattern: HandshakePattern,
    suite: Suite,
    initiator: bool,
    creds: &Credentials,
    rng: &mut R,
) -> Result<HandshakeState<P>, NoiseError>
where
    P: CryptoProvider + Clone + Default,
    R: CryptoRng + ?Sized,
{
    let params = noise_params(pattern, suite)?;
    let pat = params.pattern();
    let mut b = Builder::with_provider(params, P::default()).prologue(&PROLOGUE);
    let (needs_s, knows_rs) = if initiator {
        (pat.initiator_needs_static(), pat.initiator_knows_remote())
    } else {
        (pat.responder_needs_static(), pat.responder_knows_remote())
    };
    if needs_s && let Some(k) = &creds.private_key {
        b = b.local_private_key(k);
    }
    if knows_rs && let Some(k) = &creds.remote_public_key {
        b = b.remote_public_key(k);
    }
    if pat.has_psk()
        && let Some(psk) = &creds.psk
    {
        b = b.psk(psk);
    }
    if initiator {
        b.build_initiator(rng)
    } else {
        b.build_responder(rng)
    }
}

impl<B: ByteStore, const CH: usize, const SENT: usize, P: CryptoProvider + Clone + Default>
    Connection<B, CH, SENT, P>
{
    /// Starts a client connection to `peer`: the first handshake message is
    /// ready to be polled. `local_id` must be unique among this side's
    /// connections and non-zero.
    pub fn connect<R: CryptoRng + ?Sized>(
        config: Config,
        creds: &Credentials,
        now: Instant,
        local_id: u32,
        peer: SocketAddr,
        rng: &mut R,
    ) -> Result<Self, ConnectError> {
        Self::validate(&config)?;
        let hs = build_handshake(config.pattern, config.suite, true, creds, rng)?;
        let mut c = Self::blank(config, Side::Client, now, local_id, peer);
        c.hs = Some(hs);
        c.write_handshake(now)?;
        Ok(c)
    }

    /// Accepts a client: `packet` is its first handshake message (a long
    /// header with message index 0). On success the answer is ready to be
    /// polled; on failure nothing is kept and the reason says how to count
    /// the datagram.
    pub fn accept<R: CryptoRng + ?Sized>(
        config: Config,
        creds: &Credentials,
        now: Instant,
        local_id: u32,
        peer: SocketAddr,
        packet: &[u8],
        rng: &mut R,
    ) -> Result<Self, DropReason> {
        let (h, body) = HandshakeHeader::decode(packet).map_err(|_| DropReason::Malformed)?;
        if h.kind != HandshakeKind::Handshake
            || h.msg_index != 0
            || h.receiver != 0
            || h.version != VERSION
        {
            return Err(DropReason::Unexpected);
        }
        let pattern = HandshakePattern::from_id(h.pattern).ok_or(DropReason::Malformed)?;
        let suite = Suite::from_id(h.suite).ok_or(DropReason::Malformed)?;
        if Self::validate(&config).is_err() {
            return Err(DropReason::Unexpected);
        }
        let config = Config {
            pattern,
            suite,
            ..config
        };
        let hs = build_handshake::<P, R>(pattern, suite, false, creds, rng)
            .map_err(|_| DropReason::Unexpected)?;
        if h.sender == 0 {
            return Err(DropReason::Malformed);
        }
        let mut c = Self::blank(config, Side::Server, now, local_id, peer);
        c.hs = Some(hs);
        c.remote_id = h.sender;
        c.unvalidated_rx = u32::try_from(packet.len()).unwrap_or(u32::MAX);
        c.read_handshake(now, body)?;
        Ok(c)
    }

    /// Reads the peer's next handshake message; writes ours if it is our
    /// turn; installs keys when done.
    fn read_handshake(&mut self, now: Instant, body: &[u8]) -> Result<(), DropReason> {
        let Some(hs) = self.hs.as_mut() else {
            return Err(DropReason::Unexpected);
        };
        let mut payload = [0u8; MAX_FLIGHT];
        let n = match hs.read_message(body, &mut payload) {
            Ok(n) => n,
            Err(NoiseError::Decrypt | NoiseError::InvalidPublicKey) => {
                return Err(DropReason::Authentication);
            }
            Err(_) => return Err(DropReason::Malformed),
        };
        // Our parameters go in the first message each side sends; the
        // peer's come in the first one it sends.
        if self.peer_params.is_none() {
            match Params::decode(&payload[..n]) {
                Ok(p) if p.version == VERSION => self.set_peer_params(p),
                _ => {
                    // Finish the handshake so the refusal is authenticated,
                    // then close with PARAMETER.
                    self.set_peer_params(Params::from_config(&self.config));
                    self.close_code = code::PARAMETER;
                    self.close_reason = super::Reason::new("handshake parameters refused");
                    self.params_refused = true;
                }
            }
        }
        if self.side == Side::Client && self.hs_retx_count == 0 {
            // Karn: only an unretransmitted flight gives an RTT sample.
            self.rtt.update(
                now.saturating_duration_since(self.stats.started),
                core::time::Duration::ZERO,
                self.config.max_ack_delay,
            );
        }
        let hs = self.hs.as_ref().ok_or(DropReason::Unexpected)?;
        if hs.is_my_turn() {
            self.write_handshake(now)
                .map_err(|_| DropReason::Unexpected)?;
        } else {
            self.hs_retx_at = None;
        }
        if self.hs.as_ref().is_some_and(|h| h.is_finished()) {
            self.establish(now);
        }
        Ok(())
    }

    /// Writes our next handshake message into the flight buffer.
    fn write_handshake(&mut self, now: Instant) -> Result<(), ConnectError> {
        let hs = self
            .hs
            .as_mut()
            .ok_or(ConnectError::InvalidConfig("no handshake"))?;
        let first_from_us = match self.side {
            Side::Client => hs.message_index() == 0,
            Side::Server => hs.message_index() == 1,
        };
        let mut params = [0u8; MAX_PARAMS_LEN];
        let plen = if first_from_us {
            Params::from_config(&self.config).encode(&mut params)
        } else {
            0
        };
        let header = HandshakeHeader {
            kind: HandshakeKind::Handshake,
            version: VERSION,
            pattern: self.config.pattern.id(),
            suite: self.config.suite.id(),
            msg_index: hs.message_index() as u8,
            receiver: self.remote_id,
            sender: self.local_id,
        };
        header.encode(&mut self.flight);
        let n = hs.write_message(&params[..plen], &mut self.flight[LONG_HEADER_LEN..])?;
        // At most MAX_FLIGHT (256) bytes: `write_message` wrote into it.
        self.flight_len = u16::try_from(LONG_HEADER_LEN + n).unwrap_or(0);
        self.flight_pending = true;
        self.hs_retx_count = 0;
        // Wait for an answer only if the pattern has more messages.
        self.hs_retx_at = if hs.is_finished() {
            None
        } else {
            Some(now + self.rtt.pto_base())
        };
        self.last_flight_final = hs.is_finished();
        self.flight_index = header.msg_index;
        self.flight_kept = true;
        Ok(())
    }

    /// The handshake's last message was written or read: install the
    /// session keys. The side that read it knows the peer has the keys, so
    /// the handshake is confirmed at once and it sends a packet (a PING if
    /// nothing else) to prove it. The side that wrote it stays in the
    /// handshake, sending no data and retransmitting its last message on a
    /// timer, until that first authenticated packet arrives; a wrong PSK or
    /// key therefore ends as a handshake timeout, never as a connection
    /// that looks open.
    fn establish(&mut self, now: Instant) {
        let Some(hs) = self.hs.take() else { return };
        let wrote_last = self.last_flight_final;
        let Ok(t) = hs.into_transport() else { return };
        self.remote_static = t.remote_static().copied();
        let (tx, rx) = t.into_cipher_states();
        self.tx_key = Some(tx);
        self.rx_key = Some(rx);
        self.tx_max_data = self.peer_params.map_or(0, |p| p.connection_window);
        if wrote_last {
            self.hs_retx_count = 0;
            self.hs_retx_at = Some(now + self.rtt.pto_base());
        } else {
            self.confirm(now);
            self.ping_pending = true;
        }
    }

    /// The peer proved it holds the session keys: the connection is open.
    pub(crate) fn confirm(&mut self, now: Instant) {
        if self.confirmed {
            return;
        }
        self.confirmed = true;
        self.state = State::Established;
        self.hs_retx_at = None;
        self.stats.handshake_duration = Some(now.saturating_duration_since(self.stats.started));
        self.last_rx = now;
        self.push_event(Event::Connected);
        if self.params_refused {
            self.violation(now, code::PARAMETER, "handshake parameters refused");
            // Report it as what it is.
            if let Some(Event::Closed(_)) = self.events.back() {
                self.events.pop_back();
                self.closed_signalled = false;
                self.push_event(Event::Closed(ConnectionError::ParameterMismatch));
            }
        }
    }

    /// Handles one received datagram from `from` at `now`. The datagram is
    /// decrypted in place, so `data` is left scrambled. Returns why it was
    /// dropped, if it was (also counted in [`Stats::dropped`]).
    ///
    /// [`Stats::dropped`]: super::Stats::dropped
    pub fn handle(
        &mut self,
        now: Instant,
        from: SocketAddr,
        data: &mut [u8],
    ) -> Result<(), DropReason> {
        self.stats.rx_packets += 1;
        self.stats.rx_bytes += data.len() as u64;
        if !self.confirmed {
            self.unvalidated_rx = self
                .unvalidated_rx
                .saturating_add(u32::try_from(data.len()).unwrap_or(u32::MAX));
        }
        let r = self.handle_inner(now, from, data);
        if let Err(reason) = r {
            self.stats.dropped.count(reason);
        }
        r
    }

    fn handle_inner(
        &mut self,
        now: Instant,
        from: SocketAddr,
        data: &mut [u8],
    ) -> Result<(), DropReason> {
        if self.state == State::Closed {
            return Err(DropReason::Unexpected);
        }
        match data.first() {
            None => Err(DropReason::Malformed),
            Some(b) if b & 0x80 != 0 => self.handle_long(now, data),
            Some(_) => self.handle_short(now, from, data),
        }
    }

    fn handle_long(&mut self, now: Instant, data: &[u8]) -> Result<(), DropReason> {
        let (h, body) = HandshakeHeader::decode(data).map_err(|_| DropReason::Malformed)?;
        if h.receiver != self.local_id && !(self.side == Side::Server && h.receiver == 0) {
            return Err(DropReason::UnknownSession);
        }
        if h.kind == HandshakeKind::VersionMismatch {
            if self.state != State::Handshaking || self.side != Side::Client {
                return Err(DropReason::Unexpected);
            }
            let theirs = body.iter().copied().max().ok_or(DropReason::Malformed)?;
            self.finish(ConnectionError::VersionMismatch {
                ours: VERSION,
                theirs,
            });
            return Ok(());
        }
        if h.version != VERSION
            || h.pattern != self.config.pattern.id()
            || h.suite != self.config.suite.id()
        {
            return Err(DropReason::Malformed);
        }
        let expected = self.hs.as_ref().map(|hs| hs.message_index());
        match expected {
            Some(i)
                if usize::from(h.msg_index) == i
                    && !self.hs.as_ref().is_some_and(|hs| hs.is_my_turn()) =>
            {
                if self.remote_id != 0 && self.remote_id != h.sender {
                    return Err(DropReason::Malformed);
                }
                // Take the peer's session id only from a message that
                // authenticates: a forged one must not redirect the session.
                let previous = self.remote_id;
                self.remote_id = h.sender;
                let r = self.read_handshake(now, body);
                if r.is_err() {
                    self.remote_id = previous;
                } else {
                    self.last_rx = now;
                }
                r
            }
            _ => {
                // A retransmission of a message we already processed: the
                // peer did not get our answer. Send it again.
                // Only a message after our own last one qualifies: a replay
                // of an earlier message (a server seeing the client's first
                // message again once confirmed) is not a retransmission and
                // is dropped as unexpected below, not answered.
                // Nothing in the header is authenticated, so anyone who
                // knows both session ids could send such repeats: each is
                // answered only if no other was within the last smoothed
                // RTT (the peer's own retransmissions are further apart),
                // so they cannot make this side send continuously.
                if self.confirmed
                    && self.hs.is_none()
                    && h.sender == self.remote_id
                    && h.msg_index > self.flight_index
                {
                    // The peer repeats the last handshake message: it has
                    // not seen our confirming packet yet. Send another.
                    self.answer_repeat(now)?;
                    self.ping_pending = true;
                    return Ok(());
                }
                if self.flight_kept
                    && h.sender == self.remote_id
                    && h.msg_index.wrapping_add(1) == self.flight_index
                {
                    self.answer_repeat(now)?;
                    self.flight_pending = true;
                    self.stats.retransmissions += 1;
                    Ok(())
                } else {
                    Err(DropReason::Unexpected)
                }
            }
        }
    }

    /// Whether a repeated handshake message may be answered at `now`: at
    /// most one answer per smoothed RTT (at least the timer granularity).
    /// A repeat within that time is dropped as a replay.
    fn answer_repeat(&mut self, now: Instant) -> Result<(), DropReason> {
        let gap = self.rtt.smoothed().max(crate::recovery::GRANULARITY);
        if self.repeat_answered_at.is_some_and(|t| now < t + gap) {
            return Err(DropReason::Replay);
        }
        self.repeat_answered_at = Some(now);
        Ok(())
    }

    fn handle_short(
        &mut self,
        now: Instant,
        from: SocketAddr,
        data: &mut [u8],
    ) -> Result<(), DropReason> {
        let h = ShortHeader::decode(data).map_err(|_| DropReason::Malformed)?;
        if h.receiver != self.local_id {
            return Err(DropReason::UnknownSession);
        }
        let Some(rx) = self.rx_key.as_mut() else {
            return Err(DropReason::UnknownSession);
        };
        if h.key_phase {
            // Key update is not negotiated in this version.
            return Err(DropReason::Authentication);
        }
        let hlen = h.len();
        let pn = decode_packet_number(
            self.replay.largest(),
            u64::from(h.pn_truncated),
            usize::from(h.pn_len),
        );
        let (header, body) = data.split_at_mut(hlen);
        let plen = rx
            .decrypt_with_nonce(pn, header, body)
            .map_err(|e| match e {
                NoiseError::MessageTooShort { .. } => DropReason::Malformed,
                _ => DropReason::Authentication,
            })?;
        if self.replay.check(pn) != ReplayCheck::Fresh {
            return Err(DropReason::Replay);
        }
        let plain = &body[..plen];
        if matches!(self.state, State::Draining) {
            // Only the peer's acknowledgement of nothing; stay silent.
            self.replay.mark(pn);
            return Ok(());
        }
        // Validate every frame before acting on any, so a packet is either
        // processed whole or dropped unacknowledged. MESSAGE frames are
        // checked against the limits in the same pass; a malformed frame
        // anywhere still takes precedence over a limit broken before it.
        //
        // The first frames are kept as decoded, so the second pass applies
        // them without decoding again; a packet with more frames than that
        // decodes the rest again from where the kept ones end.
        let mut eliciting = false;
        let mut limits = Ok(());
        let mut kept: heapless::Vec<Frame<'_>, KEPT_FRAMES> = heapless::Vec::new();
        let mut rest_at = None;
        let mut frames = FrameDecoder::new(plain);
        loop {
            let at = frames.position();
            // The end of the plaintext, without a call that says so (the
            // decoder stops there too; after an error this loop has
            // returned already).
            if at >= plain.len() {
                break;
            }
            let Some(f) = frames.next() else {
                break;
            };
            let Ok(f) = f else {
                self.replay.mark(pn);
                self.violation(now, code::PROTOCOL_VIOLATION, "malformed frame");
                return Err(DropReason::Malformed);
            };
            eliciting |= f.is_ack_eliciting();
            if let (Ok(()), Frame::Message(m)) = (limits, &f) {
                limits = self.precheck_message(m.channel, m.offset, m.data.len());
            }
            if rest_at.is_none() && kept.push(f).is_err() {
                rest_at = Some(at);
            }
        }
        if let Err(reason) = limits {
            let (code, why) = match reason {
                RecvError::FlowControl => (code::FLOW_CONTROL, "flow control"),
                RecvError::MessageTooLarge => {
                    (code::PROTOCOL_VIOLATION, "channel beyond the limit")
                }
            };
            self.replay.mark(pn);
            self.violation(now, code, why);
            return Err(DropReason::Malformed);
        }
        self.replay.mark(pn);
        self.last_rx = now;
        self.peer = from;
        // The peer has our keys: the handshake flight is no longer needed.
        self.flight_kept = false;
        self.confirm(now);
        self.hs_retx_at = None;
        let largest = self.rx_pns.insert_value(pn).unwrap_or_else(|_| {
            self.rx_pns.drop_first();
            self.rx_pns.insert_value(pn).unwrap_or(false)
        });
        if largest {
            self.largest_rx_at = now;
        }
        if eliciting {
            self.ack_eliciting_unacked += 1;
            let out_of_order = self.rx_pns.len() > 1;
            let deadline = if self.ack_eliciting_unacked >= 2 || out_of_order {
                now
            } else {
                now + self.config.max_ack_delay
            };
            self.ack_at = Some(self.ack_at.map_or(deadline, |a| a.min(deadline)));
            if self.state == State::Closing {
                // The peer still sends as if open: our CLOSE was lost. Send
                // it again now (RFC 9000 §10.2.1), one per packet received,
                // so no amplification. The probe timer alone, backed off,
                // often fires after `close_at`, and the peer then waited
                // for its idle timeout instead of seeing the close.
                self.close_pending = true;
            }
        }
        // Copy out the frames' effects; the plaintext borrows `data`.
        // By index, not `into_iter`: moving the vector out copied all of
        // its slots (hundreds of bytes) for every packet.
        for f in kept.iter() {
            self.apply(now, f);
            if self.state == State::Closed {
                return Ok(());
            }
        }
        if let Some(at) = rest_at {
            for f in FrameDecoder::new(&plain[at..]).flatten() {
                self.apply(now, &f);
                if self.state == State::Closed {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Checks a MESSAGE frame against the credit and channel limits
    /// before any frame of its packet is applied.
    fn precheck_message(&self, channel: u32, offset: u64, len: usize) -> Result<(), RecvError> {
        if channel >= self.config.max_channels {
            return Err(RecvError::MessageTooLarge);
        }
        match self.channel_index(channel) {
            Some(i) => self.channels[i].recv.check(offset, len),
            None => {
                let end = offset.saturating_add(len as u64);
                if end > u64::from(self.config.channel_window) {
                    return Err(RecvError::FlowControl);
                }
                Ok(())
            }
        }
    }

    /// Acts on one validated frame (by reference: frames are kept as
    /// decoded, and copying each one again cost more than reading it).
    fn apply(&mut self, now: Instant, f: &Frame<'_>) {
        match *f {
            Frame::Padding | Frame::Ping => {}
            Frame::Ack(ack) => self.on_ack(now, &ack),
            Frame::Message(m) => {
                // The lookup inline; only a new channel takes the call.
                let i = match self.channel_index(m.channel) {
                    Some(i) => Some(i),
                    None => self.channel_or_create(m.channel, true),
                };
                let Some(i) = i else {
                    // The channel table is full (more channels than this
                    // connection type holds): refuse rather than lose data.
                    self.violation(now, code::INTERNAL, "channel table full");
                    return;
                };
                let ch: &mut Channel<B> = &mut self.channels[i];
                match ch.recv.insert(m.offset, m.data, m.fin) {
                    Ok(grew) => {
                        self.rx_data += grew;
                        if !ch.readable_signalled && ch.recv.peek_len().is_some() {
                            let id = ch.id;
                            // Mark it signalled only if the event was queued,
                            // so a full queue is retried on the next data.
                            if self.push_event(Event::Readable(id)) {
                                self.channels[i].readable_signalled = true;
                            }
                        }
                        if self.rx_data > self.rx_max_data {
                            self.violation(now, code::FLOW_CONTROL, "connection credit exceeded");
                        } else if grew > 0 {
                            // Receiving consumes nothing, so the credit can
                            // only move here once the peer used all of it
                            // (`recv` updates it after every read).
                            if self.rx_data >= self.rx_max_data {
                                self.update_connection_credit();
                            }
                            let ch = &mut self.channels[i];
                            if ch.recv.credit_update().is_some() {
                                ch.credit_pending = true;
                            }
                        }
                    }
                    Err(RecvError::MessageTooLarge) => {
                        self.violation(now, code::MESSAGE_TOO_LARGE, "message too large");
                    }
                    Err(RecvError::FlowControl) => {
                        self.violation(now, code::FLOW_CONTROL, "flow control")
                    }
                }
            }
            Frame::Datagram(d) => {
                if d.len() > usize::from(self.config.max_datagram_size) || !self.dgram_rx.push(d) {
                    self.stats.datagrams_dropped += 1;
                } else {
                    self.stats.rx_datagrams += 1;
                    self.push_event(Event::DatagramReceived);
                }
            }
            Frame::Close(c) => {
                let why = ConnectionError::PeerClosed {
                    code: c.code,
                    reason: super::Reason::new(c.reason),
                };
                let why = if c.code == code::PARAMETER {
                    ConnectionError::ParameterMismatch
                } else {
                    why
                };
                match self.state {
                    // Simultaneous close: the application closed first (and
                    // its data was all acknowledged), so the close is its
                    // own, whichever CLOSE crossed which. Reporting the
                    // peer's instead made the variant depend on timing (on
                    // whether the peer's CLOSE arrived before `close_at`).
                    // A connection already reported closed (a violation or
                    // the delivery timeout) keeps its event.
                    State::Closing => {
                        let code = self.close_code;
                        self.finish(ConnectionError::LocallyClosed { code });
                    }
                    _ => {
                        self.state = State::Draining;
                        self.ack_only_pending = true;
                        self.close_at = Some(now + self.three_pto());
                        self.push_event(Event::Closed(why));
                    }
                }
            }
            Frame::MaxData(max) => {
                if max > self.tx_max_data {
                    self.tx_max_data = max;
                    self.signal_writable();
                }
            }
            Frame::MaxChannelData { channel, max } => {
                if let Some(i) = self.channel_index(channel) {
                    self.channels[i].send.set_max_data(max);
                    self.signal_writable();
                }
            }
            Frame::DataBlocked(_) => {
                self.update_connection_credit();
                self.max_data_pending = true;
            }
            Frame::ChannelBlocked { channel, .. } => {
                if let Some(i) = self.channel_index(channel) {
                    let _ = self.channels[i].recv.credit_update();
                    self.channels[i].credit_pending = true;
                }
            }
        }
    }

    /// Queues `Writable` for every channel a refused send waits on that
    /// has room again. A channel's wish is cleared only once its event is
    /// queued: with the event queue full, the rest are signalled when
    /// `poll_event` makes room (they used to be lost, and a sender waiting
    /// for `Writable` waited for ever).
    pub(crate) fn signal_writable(&mut self) {
        self.writable_deferred = false;
        for i in 0..self.channels.len() {
            let ch = &self.channels[i];
            if ch.want_writable && ch.send.has_room() && !ch.send.is_blocked_by_credit() {
                let id = ch.id;
                if self.push_event(Event::Writable(id)) {
                    self.channels[i].want_writable = false;
                } else {
                    self.writable_deferred = !self.closed_signalled;
                    return;
                }
            }
        }
    }

    fn on_ack(&mut self, now: Instant, ack: &AckFrame<'_>) {
        let largest = ack.largest();
        if largest >= self.next_pn {
            self.violation(now, code::PROTOCOL_VIOLATION, "ack of an unsent packet");
            return;
        }
        let mut newly_acked = false;
        let mut freed = false;
        for (lo, hi) in ack.ranges() {
            // The packets in place, by index: marked done, read where they
            // lie, and dropped from the front once the range is through
            // (no list of packet numbers to look each up again, and no copy
            // of each record).
            let mut k = 0;
            while let Some(p) = self.sent.get(k) {
                k += 1;
                if !p.live || p.pn < lo || p.pn > hi {
                    continue;
                }
                self.sent.mark_done(k - 1);
                let Some(p) = self.sent.get(k - 1) else {
                    break;
                };
                newly_acked = true;
                if p.pn == largest && p.ack_eliciting {
                    self.rtt.update_us(
                        now.as_micros().saturating_sub(p.time.as_micros()),
                        ack.delay_us,
                        self.peer_max_ack_delay_us(),
                    );
                }
                if p.in_flight {
                    self.cc.on_acked(usize::from(p.size), p.time);
                }
                for (id, s, e) in p.ranges() {
                    if let Some(i) = self.channel_index(id) {
                        self.channels[i].send.on_acked(s, e);
                        freed = true;
                    }
                }
                if let Some(l) = p.ack_largest {
                    self.rx_pns.remove_below(
                        l.saturating_add(1)
                            .min(self.rx_pns.last().map_or(0, |r| r.0)),
                    );
                }
                if p.close && self.state == State::Closing {
                    let code = self.close_code;
                    self.finish(ConnectionError::LocallyClosed { code });
                }
            }
            self.sent.drop_finished();
        }
        if !newly_acked {
            return;
        }
        self.largest_acked = Some(self.largest_acked.map_or(largest, |l| l.max(largest)));
        self.pto_count = 0;
        if freed {
            // Only data sent and unacknowledged runs the delivery timer: a
            // peer that stops reading must not end the session (its credit
            // holds the rest back). Flushing waits for every queued byte.
            let waiting = if self.state == State::Flushing {
                self.channels.iter().any(|c| !c.send.is_idle())
            } else {
                self.channels.iter().any(|c| !c.send.is_sent_acked())
            };
            self.progress_at = waiting.then_some(now);
            self.signal_writable();
            self.maybe_finish_flush(now);
        }
        self.detect_lost(now);
    }

    /// Declares packets lost by packet or time threshold (RFC 9002 §6.1).
    pub(crate) fn detect_lost(&mut self, now: Instant) {
        self.loss_at = None;
        let Some(largest) = self.largest_acked else {
            return;
        };
        let delay = self.rtt.loss_delay_us();
        let mut lost: heapless::Vec<u64, 64> = heapless::Vec::new();
        for p in self.sent.iter() {
            if p.pn >= largest {
                break;
            }
            if largest - p.pn >= 3 || p.time.add_micros(delay) <= now {
                let _ = lost.push(p.pn);
            } else {
                let at = p.time.add_micros(delay);
                self.loss_at = Some(self.loss_at.map_or(at, |l| l.min(at)));
            }
        }
        let mut bytes = 0usize;
        let mut newest = None;
        for &pn in &lost {
            let Some(p) = self.sent.retire(pn) else {
                continue;
            };
            self.on_packet_lost(&p);
            if p.in_flight {
                bytes += usize::from(p.size);
                newest = Some(p.time);
            }
        }
        if let Some(t) = newest {
            self.cc.on_lost(bytes, t, now);
        }
        if lost.is_full() {
            // More than one batch: look again soon.
            self.loss_at = Some(now);
        }
    }

    /// Queues again what a lost packet carried.
    pub(crate) fn on_packet_lost(&mut self, p: &super::sent::SentPacket) {
        self.stats.lost_packets += 1;
        for (id, s, e) in p.ranges() {
            if let Some(i) = self.channel_index(id) {
                self.channels[i].send.on_lost(s, e);
            }
        }
        if p.max_data {
            self.max_data_pending = true;
        }
        if p.credit_channels != 0 {
            for (i, ch) in self.channels.iter_mut().enumerate() {
                if p.credit_channels & (1 << (i % 64)) != 0 {
                    ch.credit_pending = true;
                }
            }
        }
        if p.close && self.state == State::Closing {
            self.close_pending = true;
        }
    }
}
