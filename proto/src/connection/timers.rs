//! Deadlines: the earliest one for the caller, and what happens when each
//! passes.

use super::params::Params;
use super::{Connection, ConnectionError, State, code};
use crate::config::Config;
use crate::crypto::CryptoProvider;
use crate::recovery::MAX_PTO;
use crate::recovery::rtt::{MAX_PTO_US, micros};
use crate::storage::ByteStore;
use crate::time::Instant;

/// Handshake retransmissions before giving up early (the handshake timeout
/// still bounds the total).
const MAX_HANDSHAKE_BACKOFF: u32 = 16;
/// Probe packets sent when the PTO fires (RFC 9002 §6.2.4 allows two).
const PROBES: u8 = 2;

/// The configured intervals the deadlines are computed from, in
/// microseconds, converted once (when the connection is made and when the
/// peer's parameters arrive) rather than after every input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimerUs {
    /// The idle timeout: the smaller of ours and the peer's.
    pub(crate) idle: u64,
    /// The keepalive interval, `u64::MAX` for none.
    pub(crate) keepalive: u64,
    /// The delivery timeout, `u64::MAX` for none.
    pub(crate) delivery: u64,
}

impl TimerUs {
    pub(crate) fn of(config: &Config, peer: Option<&Params>) -> Self {
        let ours = micros(config.idle_timeout);
        let theirs = peer.map_or(ours, |p| u64::from(p.idle_timeout_ms) * 1000);
        TimerUs {
            idle: ours.min(theirs),
            keepalive: config.keepalive.map_or(u64::MAX, micros),
            delivery: config.delivery_timeout.map_or(u64::MAX, micros),
        }
    }
}

impl<B: ByteStore, const CH: usize, const SENT: usize, P: CryptoProvider + Clone + Default>
    Connection<B, CH, SENT, P>
{
    /// The probe timeout before backoff, with the peer's ack delay, in
    /// microseconds (the unit of `pto_deadline` and `three_pto`, computed
    /// once per `poll_timeout`; integer arithmetic, as the RTT estimator
    /// keeps it).
    #[inline]
    pub(crate) fn pto_unit_us(&self) -> u64 {
        self.rtt.pto_base_us() + self.peer_max_ack_delay_us()
    }

    fn idle_deadline(&self) -> Instant {
        self.idle_deadline_with(self.pto_unit_us())
    }

    #[inline]
    fn idle_deadline_with(&self, pto_us: u64) -> Instant {
        debug_assert_eq!(
            self.timer_us,
            TimerUs::of(&self.config, self.peer_params.as_ref())
        );
        // `three_pto`, from the unit computed once.
        self.last_rx
            .add_micros(self.timer_us.idle.max(pto_us.min(MAX_PTO_US) * 3))
    }

    fn pto_deadline(&self) -> Option<Instant> {
        self.pto_deadline_with(self.pto_unit_us())
    }

    #[inline]
    fn pto_deadline_with(&self, pto_us: u64) -> Option<Instant> {
        let oldest = self.sent.oldest_eliciting()?;
        let last = self.last_eliciting_sent.unwrap_or(oldest.time);
        let backoff = 1u64 << self.pto_count.min(16);
        Some(last.add_micros(pto_us.saturating_mul(backoff).min(MAX_PTO_US)))
    }

    fn keepalive_deadline(&self) -> Option<Instant> {
        let k = self.config.keepalive?;
        // Once a PING is due, nothing more until it is sent (which moves
        // `last_eliciting_sent`).
        if self.state != State::Established || self.ping_pending {
            return None;
        }
        let last = self
            .last_eliciting_sent
            .unwrap_or(self.last_rx)
            .max(self.last_rx);
        Some(last + k)
    }

    /// The earliest time [`handle_timeout`](Self::handle_timeout) must be
    /// called, or `None` when nothing is pending (the connection closed).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        // In microseconds, `u64::MAX` for a deadline not set: this runs
        // after every input, and `Option` and `Duration` arithmetic was
        // most of its cost.
        let us = |x: Option<Instant>| x.map_or(u64::MAX, Instant::as_micros);
        let t = match self.state {
            State::Closed => return None,
            State::Handshaking => us(self.hs_retx_at)
                .min((self.stats.started + self.config.handshake_timeout).as_micros()),
            State::Draining => return self.close_at,
            _ => {
                let pto = self.pto_unit_us();
                let mut t = self.idle_deadline_with(pto).as_micros();
                t = t.min(us(self.ack_at));
                t = t.min(us(self.loss_at.or_else(|| self.pto_deadline_with(pto))));
                // The keepalive and delivery deadlines from the intervals in
                // microseconds (`u64::MAX` for none: a deadline that far
                // changes no minimum, as none does).
                if self.state == State::Established && !self.ping_pending {
                    let last = self
                        .last_eliciting_sent
                        .unwrap_or(self.last_rx)
                        .max(self.last_rx);
                    t = t.min(last.add_micros(self.timer_us.keepalive).as_micros());
                }
                t = t.min(us(self.close_at));
                if let (Some(p), State::Established | State::Flushing) =
                    (self.progress_at, self.state)
                {
                    t = t.min(p.add_micros(self.timer_us.delivery).as_micros());
                }
                t.min(us(self.hs_retx_at))
            }
        };
        Some(Instant::from_micros(t))
    }

    /// Handles every deadline that has passed at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Drained channel buffers are freed here rather than the moment
        // they drain, which for a busy stream is after nearly every packet.
        // A connection always has a timer pending (idle, keepalive, ack,
        // loss), so an idle one gives its buffers back within one interval.
        for ch in self.channels.iter_mut() {
            ch.send.release_if_idle();
            ch.recv.release_if_drained();
        }
        self.dgram_tx.release_if_empty();
        self.dgram_rx.release_if_empty();
        match self.state {
            State::Closed => {}
            State::Handshaking => {
                if now >= self.stats.started + self.config.handshake_timeout {
                    self.finish(ConnectionError::HandshakeTimeout);
                    return;
                }
                self.handshake_retransmit(now);
            }
            State::Draining => {
                if self.close_at.is_some_and(|t| now >= t) {
                    self.state = State::Closed;
                    self.hs = None;
                    self.tx_key = None;
                    self.rx_key = None;
                }
            }
            _ => self.established_timeout(now),
        }
    }

    fn handshake_retransmit(&mut self, now: Instant) {
        if let Some(at) = self.hs_retx_at
            && now >= at
            && self.flight_len > 0
        {
            self.flight_pending = true;
            self.hs_retx_count += 1;
            self.stats.retransmissions += 1;
            let backoff = 1u32 << self.hs_retx_count.min(MAX_HANDSHAKE_BACKOFF);
            self.hs_retx_at = Some(now + self.rtt.pto_base().saturating_mul(backoff).min(MAX_PTO));
        }
    }

    fn established_timeout(&mut self, now: Instant) {
        if now >= self.idle_deadline() {
            let closing = matches!(self.state, State::Closing);
            let code = self.close_code;
            self.finish(if closing {
                ConnectionError::LocallyClosed { code }
            } else {
                ConnectionError::IdleTimeout
            });
            return;
        }
        if self.close_at.is_some_and(|t| now >= t) {
            let code = self.close_code;
            self.finish(ConnectionError::LocallyClosed { code });
            return;
        }
        if let (Some(d), Some(p)) = (self.config.delivery_timeout, self.progress_at)
            && now >= p + d
            && !matches!(self.state, State::Closing)
        {
            self.close_code = code::DELIVERY_TIMEOUT;
            self.close_reason = super::Reason::new("delivery timeout");
            self.start_closing(now);
            self.push_event(super::Event::Closed(ConnectionError::DeliveryTimeout));
            return;
        }
        if self.hs_retx_at.is_some_and(|t| now >= t) {
            self.handshake_retransmit(now);
        }
        if self.ack_at.is_some_and(|t| now >= t) {
            // Sent by the next poll_transmit.
            self.ack_only_pending = self.ack_eliciting_unacked > 0;
        }
        if self.loss_at.is_some_and(|t| now >= t) {
            self.detect_lost(now);
        } else if self.pto_deadline().is_some_and(|t| now >= t) {
            self.on_pto(now);
        }
        if self.keepalive_deadline().is_some_and(|t| now >= t) {
            // Not counted as sent until it is: the PTO counts from the
            // last ack-eliciting packet really sent, and moving that here
            // postponed it at every keepalive when packets in flight at
            // their limit held the PING back.
            self.ping_pending = true;
        }
    }

    fn on_pto(&mut self, now: Instant) {
        self.pto_count += 1;
        self.stats.probe_timeouts += 1;
        self.probes_pending = PROBES;
        self.last_eliciting_sent = Some(now);
        // Probes need room in the table of sent packets. If earlier probes
        // filled it, nothing else would ever free it (only an
        // acknowledgement of a newer packet declares old ones lost) and the
        // connection could never send again: declare the oldest lost,
        // queueing what they carried again, to make room.
        while self.sent.eliciting() + usize::from(PROBES) > SENT {
            let Some(pn) = self.sent.oldest_eliciting().map(|p| p.pn) else {
                break;
            };
            let Some(p) = self.sent.retire(pn) else { break };
            if p.in_flight {
                self.cc.on_discarded(usize::from(p.size));
            }
            self.on_packet_lost(&p);
        }
        // Send the oldest unacknowledged data again in the probes.
        if let Some(p) = self.sent.oldest_eliciting().copied() {
            for (id, s, e) in p.ranges() {
                if let Some(i) = self.channel_index(id) {
                    self.channels[i].send.on_lost(s, e);
                }
            }
            if p.close {
                self.close_pending = true;
            }
            if p.max_data {
                self.max_data_pending = true;
            }
        }
    }
}
