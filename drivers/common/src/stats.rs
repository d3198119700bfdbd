//! A connection's statistics as the driver reports them.

use std::time::Duration;

/// A snapshot of a connection's counters.
///
/// Taken when asked while the connection is open; frozen at the moment it
/// ended afterwards, so statistics stay readable after `close`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    /// The core's counters: packets, bytes, messages, retransmissions,
    /// losses, drops by reason, RTT, handshake duration.
    pub connection: tern::connection::Stats,
    /// Time since the connection started (until it ended, once it has).
    pub uptime: Duration,
    /// Whether the snapshot is final (the connection has ended).
    pub ended: bool,
}
