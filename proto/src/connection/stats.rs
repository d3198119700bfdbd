//! Per-connection statistics.

use crate::time::Instant;
use core::time::Duration;

/// Why a received datagram was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Did not parse (header, frames or handshake message).
    Malformed,
    /// Failed authentication (wrong key, tampered, forged).
    Authentication,
    /// A packet number seen before, or older than the replay window; or a
    /// repeated handshake message within a smoothed RTT of the last one
    /// answered.
    Replay,
    /// For a session id this side does not have, or arrived before its keys.
    UnknownSession,
    /// Refused for lack of room or rate: the endpoint's handshake rate
    /// limit, or its session table full. Nothing is sent back; a client
    /// retransmits its first message later.
    Busy,
    /// Arrived when the connection no longer accepts packets (closed,
    /// draining), or a handshake packet out of turn.
    Unexpected,
}

/// Counters of dropped datagrams, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropCounts {
    /// See [`DropReason::Malformed`].
    pub malformed: u64,
    /// See [`DropReason::Authentication`].
    pub authentication: u64,
    /// See [`DropReason::Replay`].
    pub replay: u64,
    /// See [`DropReason::UnknownSession`].
    pub unknown_session: u64,
    /// See [`DropReason::Busy`].
    pub busy: u64,
    /// See [`DropReason::Unexpected`].
    pub unexpected: u64,
}

impl DropCounts {
    /// Counts one drop.
    pub fn count(&mut self, r: DropReason) {
        let c = match r {
            DropReason::Malformed => &mut self.malformed,
            DropReason::Authentication => &mut self.authentication,
            DropReason::Replay => &mut self.replay,
            DropReason::UnknownSession => &mut self.unknown_session,
            DropReason::Busy => &mut self.busy,
            DropReason::Unexpected => &mut self.unexpected,
        };
        *c += 1;
    }

    /// All drops.
    pub fn total(&self) -> u64 {
        self.malformed
            + self.authentication
            + self.replay
            + self.unknown_session
            + self.busy
            + self.unexpected
    }
}

/// What a connection has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// UDP payload bytes sent.
    pub tx_bytes: u64,
    /// UDP payload bytes received (including dropped datagrams).
    pub rx_bytes: u64,
    /// Datagrams sent.
    pub tx_packets: u64,
    /// Datagrams received (including dropped ones).
    pub rx_packets: u64,
    /// Messages queued by the application.
    pub tx_messages: u64,
    /// Messages delivered to the application.
    pub rx_messages: u64,
    /// Unreliable datagrams sent.
    pub tx_datagrams: u64,
    /// Unreliable datagrams received.
    pub rx_datagrams: u64,
    /// Unreliable datagrams dropped (queue full, too large).
    pub datagrams_dropped: u64,
    /// Packets that carried retransmitted data or handshake messages.
    pub retransmissions: u64,
    /// Packets declared lost.
    pub lost_packets: u64,
    /// Probe timeouts that fired.
    pub probe_timeouts: u64,
    /// Received datagrams dropped, by reason.
    pub dropped: DropCounts,
    /// Smoothed RTT.
    pub smoothed_rtt: Duration,
    /// Minimum RTT.
    pub min_rtt: Duration,
    /// Congestion window in bytes (u64::MAX when congestion control is off).
    pub congestion_window: u64,
    /// From the first handshake packet to the session's keys being in use.
    pub handshake_duration: Option<Duration>,
    /// When the connection started.
    pub started: Instant,
}

impl Stats {
    /// Time since the connection started.
    pub fn uptime(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.started)
    }
}
