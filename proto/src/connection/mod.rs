//! One Tern session: handshake, records, frames, reliability, channels.
//!
//! See the crate root for the driving contract. The connection is split
//! over a few files: this one holds the state and the application API,
//! `input.rs` handles received datagrams, `output.rs` builds packets, and
//! `timers.rs` computes and handles deadlines.

#[cfg(test)]
mod close_tests;
mod error;
#[cfg(test)]
mod flow_tests;
mod input;
mod output;
pub mod params;
mod sent;
mod stats;
#[cfg(test)]
mod tests;
mod timers;

pub use error::{
    ConnectError, ConnectionError, MAX_REASON, Reason, SendError, TransmitError, code,
};
pub use stats::{DropCounts, DropReason, Stats};

use crate::channel::{RecvChannel, SendBlocked, SendChannel};
use crate::config::Config;
use crate::crypto::{CryptoProvider, RustCrypto};
use crate::noise::{CipherState, HandshakeState};
use crate::packet::ReplayWindow;
use crate::range_set::RangeSet;
use crate::recovery::{NewReno, RttEstimator};
use crate::storage::ByteStore;
use crate::time::Instant;
use core::net::SocketAddr;
use core::time::Duration;
use params::Params;
use sent::SentQueue;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Largest handshake flight kept for retransmission.
pub(crate) const MAX_FLIGHT: usize = 256;
/// Packet-number ranges remembered for acknowledgements.
pub(crate) const ACK_RANGES: usize = 16;
/// Events buffered before the application polls them. Events are
/// de-duplicated (one `Readable` per channel until it is drained, one
/// `DatagramReceived` until the queue is read), so this bounds a burst.
const EVENTS: usize = 16;

/// Which end of the session this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Sent the first handshake message.
    Client,
    /// Answered it.
    Server,
}

/// Keys for the handshake. Private material is zeroized on drop.
#[derive(Clone, Default, Zeroize, ZeroizeOnDrop)]
pub struct Credentials {
    /// This side's static private key (patterns that authenticate it).
    pub private_key: Option<[u8; 32]>,
    /// The peer's static public key, where the pattern needs it up front
    /// (the server's key for IK and NK clients).
    pub remote_public_key: Option<[u8; 32]>,
    /// Pre-shared key, for the psk patterns.
    pub psk: Option<[u8; 32]>,
}

/// What happened, for the application.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The handshake finished; channels and datagrams can be used.
    Connected,
    /// The peer started using a channel this side had not used.
    ChannelOpened(u32),
    /// A channel has a complete message to read.
    Readable(u32),
    /// A channel that refused a message has room again.
    Writable(u32),
    /// An unreliable datagram arrived.
    DatagramReceived,
    /// The connection ended; no event follows this one.
    Closed(ConnectionError),
}

/// Where a packet produced by `poll_transmit` goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Destination address.
    pub destination: SocketAddr,
    /// Bytes of the caller's buffer that hold the packet.
    pub len: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    Handshaking,
    Established,
    /// The application asked to close: data still unacknowledged is sent
    /// first, then CLOSE.
    Flushing,
    /// CLOSE sent; waiting for its acknowledgement or the peer's CLOSE.
    Closing,
    /// The peer's CLOSE arrived; only an acknowledgement goes out.
    Draining,
    Closed,
}

pub(crate) struct Channel<B: ByteStore> {
    pub(crate) id: u32,
    pub(crate) send: SendChannel<B>,
    pub(crate) recv: RecvChannel<B>,
    /// A Readable event is outstanding.
    pub(crate) readable_signalled: bool,
    /// A send was refused; signal Writable when it would pass.
    pub(crate) want_writable: bool,
    /// Our credit for this channel must be sent (again).
    pub(crate) credit_pending: bool,
    /// CHANNEL_BLOCKED should be sent.
    pub(crate) blocked_pending: bool,
    /// The credit limit at which CHANNEL_BLOCKED was last sent.
    pub(crate) blocked_sent_at: u64,
}

/// A datagram queue in a ring of bytes (growing with use on the heap, up
/// to its limit): `[len: u16][bytes]` records.
pub(crate) struct DatagramQueue<B: ByteStore> {
    buf: B,
    head: u64,
    tail: u64,
    count: usize,
    max_count: usize,
}

impl<B: ByteStore> DatagramQueue<B> {
    fn new(bytes: usize, max_count: usize) -> Self {
        DatagramQueue {
            buf: B::new(bytes),
            head: 0,
            tail: 0,
            count: 0,
            max_count,
        }
    }
    fn push(&mut self, d: &[u8]) -> bool {
        let need = 2 + d.len() as u64;
        if self.count >= self.max_count || self.tail - self.head + need > self.buf.capacity() as u64
        {
            return false;
        }
        let live = (self.tail - self.head) as usize;
        crate::storage::reserve_ring(&mut self.buf, live + need as usize, self.head, self.tail);
        crate::storage::ring_write(&mut self.buf, self.tail, &(d.len() as u16).to_be_bytes());
        crate::storage::ring_write(&mut self.buf, self.tail + 2, d);
        self.tail += need;
        self.count += 1;
        true
    }
    fn front_len(&self) -> Option<usize> {
        if self.count == 0 {
            return None;
        }
        let mut l = [0u8; 2];
        crate::storage::ring_read(&self.buf, self.head, &mut l);
        Some(usize::from(u16::from_be_bytes(l)))
    }
    /// Copies the front datagram into `out` (which must be long enough)
    /// and removes it.
    fn pop_into(&mut self, out: &mut [u8]) -> Option<usize> {
        let len = self.front_len()?;
        crate::storage::ring_read(&self.buf, self.head + 2, &mut out[..len]);
        self.head += 2 + len as u64;
        self.count -= 1;
        Some(len)
    }
    /// Hands the front datagram to `f` as the (up to) two slices of the
    /// ring that hold it, and removes it.
    fn pop_with<R>(&mut self, f: impl FnOnce(&[u8], &[u8]) -> R) -> Option<R> {
        let len = self.front_len()?;
        let (a, b) = crate::storage::ring_slices(&self.buf, self.head + 2, len);
        let r = f(a, b);
        self.head += 2 + len as u64;
        self.count -= 1;
        Some(r)
    }
    /// Frees the ring if it is empty (from the timers, like channel
    /// buffers, not on every pop).
    fn release_if_empty(&mut self) {
        if self.count == 0 {
            self.buf.release();
        }
    }
}

/// A Tern session, client or server side. See the crate documentation for
/// the driving loop.
///
/// `B` stores channel bytes ([`crate::storage::FixedBytes`] without an
/// allocator), `CH` is the most channels it tracks, `SENT` the most packets
/// it keeps in flight, `P` the crypto provider.
pub struct Connection<
    B: ByteStore,
    const CH: usize,
    const SENT: usize,
    P: CryptoProvider + Clone + Default = RustCrypto,
> {
    pub(crate) config: Config,
    pub(crate) side: Side,
    pub(crate) state: State,
    pub(crate) local_id: u32,
    pub(crate) remote_id: u32,
    pub(crate) peer: SocketAddr,
    pub(crate) peer_params: Option<Params>,
    /// Intervals from `config` and `peer_params`, in microseconds: set
    /// with [`set_peer_params`](Self::set_peer_params).
    pub(crate) timer_us: timers::TimerUs,

    pub(crate) hs: Option<HandshakeState<P>>,
    pub(crate) flight: [u8; MAX_FLIGHT],
    pub(crate) flight_len: u16,
    pub(crate) flight_pending: bool,
    /// Keep the flight until the peer proves it has the session keys.
    pub(crate) flight_kept: bool,
    /// Handshake message index of the flight.
    pub(crate) flight_index: u8,
    /// The flight holds the final handshake message.
    pub(crate) last_flight_final: bool,
    /// The peer's parameters were refused: close once keys are in place.
    pub(crate) params_refused: bool,
    pub(crate) hs_retx_at: Option<Instant>,
    pub(crate) hs_retx_count: u32,
    /// When a repeated handshake message of the peer was last answered
    /// (at most one answer per smoothed RTT).
    pub(crate) repeat_answered_at: Option<Instant>,

    pub(crate) tx_key: Option<CipherState<P>>,
    pub(crate) rx_key: Option<CipherState<P>>,
    pub(crate) next_pn: u64,
    pub(crate) largest_acked: Option<u64>,
    pub(crate) replay: ReplayWindow,
    pub(crate) rx_pns: RangeSet<ACK_RANGES>,
    pub(crate) largest_rx_at: Instant,
    pub(crate) ack_eliciting_unacked: u32,
    pub(crate) ack_at: Option<Instant>,
    /// A `Writable` event found the event queue full: `poll_event` tries
    /// again once it made room.
    pub(crate) writable_deferred: bool,
    pub(crate) sent: SentQueue<SENT>,
    pub(crate) rtt: RttEstimator,
    pub(crate) cc: NewReno,
    pub(crate) pto_count: u32,
    pub(crate) loss_at: Option<Instant>,
    pub(crate) last_eliciting_sent: Option<Instant>,
    pub(crate) probes_pending: u8,
    pub(crate) last_rx: Instant,
    /// Start of the current stretch with unacknowledged data, moved on
    /// by every acknowledgement that frees data (the delivery timer).
    pub(crate) progress_at: Option<Instant>,

    pub(crate) channels: heapless::Vec<Channel<B>, CH>,
    pub(crate) next_channel: u32,
    pub(crate) rr: usize,
    /// Connection credit the peer gave, and new bytes sent against it.
    pub(crate) tx_max_data: u64,
    pub(crate) tx_data: u64,
    /// Connection credit we gave, bytes received against it, and consumed.
    pub(crate) rx_max_data: u64,
    pub(crate) rx_data: u64,
    pub(crate) max_data_pending: bool,
    pub(crate) data_blocked_pending: bool,
    pub(crate) ping_pending: bool,
    /// Bytes received from and sent to the peer before it was confirmed
    /// (the anti-amplification limit).
    /// (Saturating: what matters is the first few kilobytes.)
    pub(crate) unvalidated_rx: u32,
    pub(crate) unvalidated_tx: u32,
    /// The peer's static public key, if the pattern authenticated one.
    pub(crate) remote_static: Option<[u8; 32]>,
    /// The peer has proven it holds the session keys: data may be sent.
    pub(crate) confirmed: bool,
    /// Credit limits at which DATA_BLOCKED / CHANNEL_BLOCKED were last sent.
    pub(crate) blocked_sent_at: u64,

    pub(crate) dgram_tx: DatagramQueue<B>,
    pub(crate) dgram_rx: DatagramQueue<B>,

    pub(crate) close_code: u32,
    pub(crate) close_reason: Reason,
    pub(crate) close_pending: bool,
    pub(crate) close_at: Option<Instant>,
    pub(crate) ack_only_pending: bool,

    pub(crate) events: heapless::Deque<Event, EVENTS>,
    pub(crate) closed_signalled: bool,
    pub(crate) stats: Stats,
}

impl<B: ByteStore, const CH: usize, const SENT: usize, P: CryptoProvider + Clone + Default>
    Connection<B, CH, SENT, P>
{
    pub(crate) fn blank(
        config: Config,
        side: Side,
        now: Instant,
        local_id: u32,
        peer: SocketAddr,
    ) -> Self {
        let dgram_bytes =
            usize::from(config.max_datagram_size).saturating_add(2) * config.datagram_queue;
        Connection {
            side,
            state: State::Handshaking,
            local_id,
            remote_id: 0,
            peer,
            peer_params: None,
            timer_us: timers::TimerUs::of(&config, None),
            hs: None,
            flight: [0; MAX_FLIGHT],
            flight_len: 0,
            flight_pending: false,
            flight_kept: false,
            flight_index: 0,
            last_flight_final: false,
            params_refused: false,
            hs_retx_at: None,
            hs_retx_count: 0,
            repeat_answered_at: None,
            tx_key: None,
            rx_key: None,
            next_pn: 0,
            largest_acked: None,
            replay: ReplayWindow::new(usize::from(config.replay_window)),
            rx_pns: RangeSet::new(),
            largest_rx_at: now,
            ack_eliciting_unacked: 0,
            writable_deferred: false,
            ack_at: None,
            sent: SentQueue::new(),
            rtt: RttEstimator::new(config.initial_rtt),
            cc: NewReno::new(
                usize::from(config.max_packet_size),
                config.congestion_control,
            ),
            pto_count: 0,
            loss_at: None,
            last_eliciting_sent: None,
            probes_pending: 0,
            last_rx: now,
            progress_at: None,
            channels: heapless::Vec::new(),
            next_channel: if side == Side::Client { 0 } else { 1 },
            rr: 0,
            tx_max_data: 0,
            tx_data: 0,
            rx_max_data: config.connection_window,
            rx_data: 0,
            max_data_pending: false,
            data_blocked_pending: false,
            ping_pending: false,
            unvalidated_rx: 0,
            unvalidated_tx: 0,
            remote_static: None,
            confirmed: false,
            blocked_sent_at: u64::MAX,
            dgram_tx: DatagramQueue::new(dgram_bytes, config.datagram_queue),
            dgram_rx: DatagramQueue::new(dgram_bytes, config.datagram_queue),
            close_code: 0,
            close_reason: Reason::new(""),
            close_pending: false,
            close_at: None,
            ack_only_pending: false,
            events: heapless::Deque::new(),
            closed_signalled: false,
            stats: Stats {
                started: now,
                ..Stats::default()
            },
            config,
        }
    }

    pub(crate) fn validate(config: &Config) -> Result<(), ConnectError> {
        let store = B::new(crate::channel::recv_store_len(
            config.channel_window as usize,
        ));
        if store.capacity() < crate::channel::recv_store_len(config.channel_window as usize) {
            return Err(ConnectError::InvalidConfig(
                "channel_window too large for the connection's byte store",
            ));
        }
        if config.max_message_size > config.channel_window {
            return Err(ConnectError::InvalidConfig(
                "max_message_size exceeds channel_window",
            ));
        }
        if config.max_packet_size < 256 {
            return Err(ConnectError::InvalidConfig("max_packet_size below 256"));
        }
        if config.max_channels as usize > CH {
            return Err(ConnectError::InvalidConfig(
                "max_channels exceeds the connection's channel capacity",
            ));
        }
        if config.max_ack_delay.as_millis()
            >= u128::from(crate::connection::params::MAX_ACK_DELAY_LIMIT_MS)
        {
            return Err(ConnectError::InvalidConfig(
                "max_ack_delay must be below 16384 ms",
            ));
        }
        if usize::from(config.max_datagram_size) + 64 > usize::from(config.max_packet_size) {
            return Err(ConnectError::InvalidConfig(
                "max_datagram_size does not fit in a packet",
            ));
        }
        Ok(())
    }

    // ----- identity and state -----

    /// Client or server.
    pub fn side(&self) -> Side {
        self.side
    }

    /// Our session id (the receiver id in packets sent to us).
    pub fn local_id(&self) -> u32 {
        self.local_id
    }

    /// The peer's session id (0 until known).
    pub fn remote_id(&self) -> u32 {
        self.remote_id
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Whether the handshake finished and the connection is open.
    pub fn is_established(&self) -> bool {
        self.state == State::Established
    }

    /// Whether the connection has ended (its `Closed` event may still be
    /// waiting to be polled).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// The peer's static public key, once the handshake authenticated it
    /// (patterns where the peer has a static key: IK and XX for the
    /// client's key on a server; every pattern but NN for the server's).
    /// A server decides from it whether it trusts the client.
    pub fn remote_static(&self) -> Option<&[u8; 32]> {
        self.remote_static.as_ref()
    }

    /// The peer's handshake parameters, once received.
    pub fn peer_params(&self) -> Option<&Params> {
        self.peer_params.as_ref()
    }

    /// The statistics so far.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats;
        s.smoothed_rtt = self.rtt.smoothed();
        s.min_rtt = self.rtt.min();
        s.congestion_window = self.cc.window();
        s
    }

    /// Bytes of RAM the channel and datagram buffers hold now.
    pub fn buffer_bytes(&self) -> usize {
        self.channels
            .iter()
            .map(|c| c.send.allocated() + c.recv.allocated())
            .sum::<usize>()
            + self.dgram_tx.buf.allocated()
            + self.dgram_rx.buf.allocated()
    }

    /// The next event, if any. Poll until `None` after every input.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        let e = self.events.pop_front();
        if self.writable_deferred && e.is_some() {
            self.signal_writable();
        }
        e
    }

    /// Queues `e`; returns whether it is now queued (false when the queue
    /// is full, so level-triggered flags are not set for a lost event).
    pub(crate) fn push_event(&mut self, e: Event) -> bool {
        if self.closed_signalled {
            return false;
        }
        if let Event::Closed(_) = e {
            self.closed_signalled = true;
            // The final event must never be lost: make room if needed.
            if self.events.is_full() {
                self.events.pop_front();
            }
        } else if self.events.iter().any(|q| *q == e) {
            return true;
        } else if self.events.len() + 1 >= EVENTS {
            // The last slot is kept for Closed.
            return false;
        }
        self.events.push_back(e).is_ok()
    }

    // ----- channels -----

    pub(crate) fn channel_index(&self, id: u32) -> Option<usize> {
        self.channels.iter().position(|c| c.id == id)
    }

    /// Finds or creates channel `id`. `remote` says the peer used it first.
    #[inline]
    pub(crate) fn channel_or_create(&mut self, id: u32, remote: bool) -> Option<usize> {
        if let Some(i) = self.channel_index(id) {
            return Some(i);
        }
        let peer = self.peer_params?;
        let window = self.config.channel_window as usize;
        let ch = Channel {
            id,
            send: SendChannel::new(window, u64::from(peer.channel_window)),
            recv: RecvChannel::new(window, self.config.max_message_size as usize),
            readable_signalled: false,
            want_writable: false,
            credit_pending: false,
            blocked_pending: false,
            blocked_sent_at: u64::MAX,
        };
        self.channels.push(ch).ok()?;
        if remote {
            self.push_event(Event::ChannelOpened(id));
        }
        Some(self.channels.len() - 1)
    }

    /// Opens a new channel and returns its id (even ids for the client, odd
    /// for the server, so both can open channels without colliding).
    pub fn open_channel(&mut self) -> Result<u32, SendError> {
        if self.state != State::Established {
            return Err(SendError::NotConnected);
        }
        let limit = self
            .peer_params
            .map_or(0, |p| p.max_channels)
            .min(self.config.max_channels);
        while self.next_channel < limit {
            let id = self.next_channel;
            self.next_channel += 2;
            if self.channel_index(id).is_none() {
                return self
                    .channel_or_create(id, false)
                    .map(|_| id)
                    .ok_or(SendError::InvalidChannel);
            }
        }
        Err(SendError::InvalidChannel)
    }

    /// The largest message `send` accepts.
    pub fn max_message_size(&self) -> usize {
        let peer = self.peer_params.map_or(0, |p| p.max_message_size as usize);
        peer.min(self.config.channel_window as usize)
    }

    /// Queues `msg` on `channel` for reliable, in-order delivery. Channel
    /// ids below both sides' `max_channels` may be used directly; the first
    /// use opens the channel.
    ///
    /// Never buffers beyond the channel window: when it is full, or the
    /// peer's credit is exhausted, it returns `WouldBlock` with the reason,
    /// and a [`Event::Writable`] follows when the message would fit.
    pub fn send(&mut self, channel: u32, msg: &[u8]) -> Result<(), SendError> {
        if self.state != State::Established {
            return Err(SendError::NotConnected);
        }
        if msg.is_empty() {
            return Err(SendError::Empty);
        }
        let max = self.max_message_size();
        if msg.len() > max {
            return Err(SendError::TooLarge { max });
        }
        let limit = self
            .peer_params
            .map_or(0, |p| p.max_channels)
            .min(self.config.max_channels);
        if channel >= limit {
            return Err(SendError::InvalidChannel);
        }
        let conn_blocked = self.tx_data >= self.tx_max_data;
        let i = self
            .channel_or_create(channel, false)
            .ok_or(SendError::InvalidChannel)?;
        let ch = &mut self.channels[i];
        match ch.send.push(msg, conn_blocked) {
            Ok(()) => {
                self.stats.tx_messages += 1;
                Ok(())
            }
            Err(reason) => {
                ch.want_writable = true;
                // Tell the peer once per credit limit, not on every refusal.
                if reason == SendBlocked::ChannelCredit && ch.blocked_sent_at != ch.send.max_data()
                {
                    ch.blocked_pending = true;
                } else if reason == SendBlocked::ConnectionCredit
                    && self.blocked_sent_at != self.tx_max_data
                {
                    self.data_blocked_pending = true;
                }
                Err(SendError::WouldBlock(reason))
            }
        }
    }

    /// Reads the next complete message of `channel` into `buf`. `Ok(None)`
    /// when there is none; `Err(needed)` when `buf` is too short (nothing
    /// is consumed).
    pub fn recv(&mut self, channel: u32, buf: &mut [u8]) -> Result<Option<usize>, usize> {
        let Some(i) = self.channel_index(channel) else {
            return Ok(None);
        };
        match self.channels[i].recv.read(buf) {
            None => {
                self.channels[i].readable_signalled = false;
                Ok(None)
            }
            Some(Err(needed)) => Err(needed),
            Some(Ok(n)) => {
                self.after_read(i);
                Ok(Some(n))
            }
        }
    }

    /// Like [`recv`](Self::recv), without a copy: hands the next complete
    /// message of `channel` to `f` as the (up to) two slices of the
    /// channel's receive ring that hold it, in order (the second is empty
    /// unless the message wraps the ring's end), then consumes it exactly
    /// as `recv` does (same credit updates and events). `None` when there
    /// is no complete message; `f` is not called then.
    ///
    /// ```
    /// # fn demo(conn: &mut tern::ConstrainedConnection) {
    /// let mut sum = 0u64;
    /// while let Some(len) = conn.recv_with(0, |a, b| {
    ///     sum += a.iter().chain(b).map(|&x| u64::from(x)).sum::<u64>();
    ///     a.len() + b.len()
    /// }) {
    ///     assert!(len > 0);
    /// }
    /// # }
    /// ```
    pub fn recv_with<R>(&mut self, channel: u32, f: impl FnOnce(&[u8], &[u8]) -> R) -> Option<R> {
        let i = self.channel_index(channel)?;
        match self.channels[i].recv.read_with(f) {
            None => {
                self.channels[i].readable_signalled = false;
                None
            }
            Some(r) => {
                self.after_read(i);
                Some(r)
            }
        }
    }

    /// Bookkeeping after a message of channel index `i` was consumed.
    /// Whether a credit update (a channel's or the connection's) waits to
    /// be sent. Reading a message changes nothing else that is sent and no
    /// deadline, so a driver may skip polling for packets after a read
    /// when this is false (and must poll when it is true: the peer learns
    /// of the room the read made only from those packets).
    #[must_use]
    pub fn has_credit_to_send(&self) -> bool {
        self.max_data_pending || self.channels.iter().any(|c| c.credit_pending)
    }

    fn after_read(&mut self, i: usize) {
        self.stats.rx_messages += 1;
        let ch = &mut self.channels[i];
        if ch.recv.credit_update().is_some() {
            ch.credit_pending = true;
        }
        // `peek_len`, unlike `is_readable`, remembers how far it
        // scanned, so the next read does not scan the same bytes.
        if ch.recv.peek_len().is_none() {
            ch.readable_signalled = false;
        }
        self.update_connection_credit();
    }

    /// Reads the next complete message of any channel, taking channels in
    /// turn: `Ok(Some((channel, len)))`, `Ok(None)` when none is ready,
    /// `Err(needed)` when `buf` is too short for the next one.
    pub fn recv_any(&mut self, buf: &mut [u8]) -> Result<Option<(u32, usize)>, usize> {
        let n = self.channels.len();
        for k in 0..n {
            let i = (self.rr + k) % n;
            if self.channels[i].recv.is_readable() {
                let id = self.channels[i].id;
                let r = self.recv(id, buf).map(|r| r.map(|len| (id, len)));
                if matches!(r, Ok(Some(_))) {
                    // The next call starts after this channel. (A buffer
                    // too small leaves the turn here, for the retry.)
                    self.rr = (i + 1) % n;
                }
                return r;
            }
        }
        Ok(None)
    }

    /// Like [`recv_any`](Self::recv_any), without a copy: hands the next
    /// complete message of any channel (taken in the same turn) to `f` as
    /// in [`recv_with`](Self::recv_with) and returns `(channel, f's
    /// result)`, or `None` when no channel has a complete message.
    pub fn recv_any_with<R>(&mut self, f: impl FnOnce(&[u8], &[u8]) -> R) -> Option<(u32, R)> {
        let n = self.channels.len();
        for k in 0..n {
            let i = (self.rr + k) % n;
            if self.channels[i].recv.is_readable() {
                let id = self.channels[i].id;
                let r = self.recv_with(id, f).map(|r| (id, r));
                if r.is_some() {
                    self.rr = (i + 1) % n;
                }
                return r;
            }
        }
        None
    }

    /// Raises the connection credit when half a window was consumed, or
    /// at once when the peer has used all of it. If all of it is held by
    /// partly received messages on several channels, nothing can be read
    /// to free credit: then half a window more is granted, or those
    /// messages would hold each other's credit forever (spec/channels.md
    /// §5.2). What is held stays bounded by the channel windows.
    pub(crate) fn update_connection_credit(&mut self) {
        let consumed: u64 = self.channels.iter().map(|c| c.recv.consumed()).sum();
        let window = self.config.connection_window;
        let mut target = consumed + window;
        let exhausted = self.rx_data >= self.rx_max_data;
        if exhausted
            && target <= self.rx_max_data
            && !self.channels.iter().any(|c| c.recv.is_readable())
        {
            target = self.rx_max_data + (window / 2).max(1);
        }
        if target > self.rx_max_data && (target >= self.rx_max_data + window / 2 || exhausted) {
            self.rx_max_data = target;
            self.max_data_pending = true;
        }
    }

    /// Queues an unreliable datagram. It is sent once, in the next packet,
    /// and never retransmitted.
    pub fn send_datagram(&mut self, data: &[u8]) -> Result<(), SendError> {
        if self.state != State::Established {
            return Err(SendError::NotConnected);
        }
        // It must fit one packet: header, DATAGRAM frame head, tag.
        let fits = self
            .max_packet_size()
            .saturating_sub(crate::packet::SHORT_HEADER_MAX + 16 + 5);
        let max = self
            .peer_params
            .map_or(0, |p| usize::from(p.max_datagram_size))
            .min(fits);
        if data.len() > max {
            return Err(SendError::TooLarge { max });
        }
        if !self.dgram_tx.push(data) {
            return Err(SendError::WouldBlock(SendBlocked::Queue));
        }
        self.stats.tx_datagrams += 1;
        Ok(())
    }

    /// Takes the oldest received datagram into `buf`. `Err(needed)` if
    /// `buf` is too short (the datagram stays queued).
    pub fn recv_datagram(&mut self, buf: &mut [u8]) -> Result<Option<usize>, usize> {
        match self.dgram_rx.front_len() {
            None => Ok(None),
            Some(len) if len > buf.len() => Err(len),
            Some(_) => Ok(self.dgram_rx.pop_into(buf)),
        }
    }

    /// Like [`recv_datagram`](Self::recv_datagram), without a copy: hands
    /// the oldest received datagram to `f` as the (up to) two slices of
    /// the queue's ring that hold it, in order, then removes it.
    pub fn recv_datagram_with<R>(&mut self, f: impl FnOnce(&[u8], &[u8]) -> R) -> Option<R> {
        self.dgram_rx.pop_with(f)
    }

    /// Closes the connection: data already queued is delivered first (until
    /// the idle or delivery timeout), then CLOSE with `code` and `reason` is
    /// sent and acknowledged. Ends with [`Event::Closed`].
    pub fn close(&mut self, now: Instant, code: u32, reason: &str) {
        if matches!(self.state, State::Established | State::Handshaking) {
            self.close_code = code;
            self.close_reason = Reason::new(reason);
        }
        match self.state {
            State::Established => {
                self.state = State::Flushing;
                // Queued bytes held back by flow control now bound the
                // close by the delivery timeout too.
                if self.progress_at.is_none() {
                    self.progress_at = Some(now);
                }
                self.maybe_finish_flush(now);
            }
            State::Handshaking => {
                // Nothing to flush and no keys to send CLOSE with.
                self.finish(ConnectionError::LocallyClosed { code });
            }
            _ => {}
        }
    }

    /// Closes at once with a CLOSE frame, without flushing queued data.
    pub fn abort(&mut self, now: Instant, code: u32, reason: &str) {
        if matches!(
            self.state,
            State::Established | State::Handshaking | State::Flushing
        ) {
            self.close_code = code;
            self.close_reason = Reason::new(reason);
        }
        match self.state {
            State::Established | State::Flushing => self.start_closing(now),
            State::Handshaking => self.finish(ConnectionError::LocallyClosed { code }),
            _ => {}
        }
    }

    pub(crate) fn maybe_finish_flush(&mut self, now: Instant) {
        if self.state == State::Flushing && self.channels.iter().all(|c| c.send.is_idle()) {
            self.start_closing(now);
        }
    }

    pub(crate) fn start_closing(&mut self, now: Instant) {
        self.state = State::Closing;
        self.close_pending = true;
        self.close_at = Some(now + self.three_pto());
    }

    /// Ends the connection because the peer misbehaved: CLOSE with `code`.
    pub(crate) fn violation(&mut self, now: Instant, code: u32, reason: &str) {
        if matches!(self.state, State::Closing | State::Draining | State::Closed) {
            return;
        }
        self.close_code = code;
        self.close_reason = Reason::new(reason);
        self.start_closing(now);
        self.push_event(Event::Closed(ConnectionError::ProtocolViolation { code }));
    }

    /// Ends the connection now, reporting `why`.
    pub(crate) fn finish(&mut self, why: ConnectionError) {
        self.state = State::Closed;
        self.hs = None;
        self.tx_key = None;
        self.rx_key = None;
        self.push_event(Event::Closed(why));
    }

    /// Takes the peer's parameters (and the intervals that depend on them).
    pub(crate) fn set_peer_params(&mut self, p: Params) {
        self.peer_params = Some(p);
        self.timer_us = timers::TimerUs::of(&self.config, Some(&p));
    }

    /// Three probe timeouts without backoff, each at most
    /// [`MAX_PTO`](crate::recovery::MAX_PTO).
    pub(crate) fn three_pto(&self) -> Duration {
        Duration::from_micros(self.pto_unit_us().min(crate::recovery::rtt::MAX_PTO_US) * 3)
    }

    /// The peer's maximum ack delay in microseconds (ours until its
    /// parameters arrive).
    pub(crate) fn peer_max_ack_delay_us(&self) -> u64 {
        self.peer_params.map_or_else(
            || crate::recovery::rtt::micros(self.config.max_ack_delay),
            |p| u64::from(p.max_ack_delay_ms) * 1000,
        )
    }

    /// Largest packet this connection sends.
    pub fn max_packet_size(&self) -> usize {
        let peer = self
            .peer_params
            .map_or(usize::from(self.config.max_packet_size), |p| {
                usize::from(p.max_packet_size)
            });
        usize::from(self.config.max_packet_size).min(peer)
    }
}

#[cfg(feature = "std")]
impl<B: ByteStore, const CH: usize, const SENT: usize, P: CryptoProvider + Clone + Default>
    Connection<B, CH, SENT, P>
{
    /// A dump of internal state for debugging tests; not a stable format.
    #[doc(hidden)]
    pub fn debug_dump(&self) -> std::string::String {
        use core::fmt::Write;
        let mut s = std::string::String::new();
        let _ = writeln!(
            s,
            "{:?} state={:?} confirmed={} tx_data={}/{} rx_data={}/{} sent_live={} elic={}",
            self.side,
            self.state,
            self.confirmed,
            self.tx_data,
            self.tx_max_data,
            self.rx_data,
            self.rx_max_data,
            self.sent.iter().count(),
            self.sent.eliciting()
        );
        for c in self.channels.iter() {
            let _ = writeln!(
                s,
                "  ch{} send: {} recv: {}",
                c.id,
                c.send.debug(),
                c.recv.debug()
            );
        }
        s
    }
}
