//! What a driver crate provides for its runtime: a packet transport (the
//! socket, with its readiness) and a timer (with the runtime's clock).
//! Everything else, the endpoint loop included, is in this crate.

use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::Instant;

/// Packets in and out: a UDP socket ([`UdpTransport`](crate::UdpTransport))
/// or TCP streams ([`TcpTransport`](crate::TcpTransport)).
///
/// Received packets come in batches of buffers: after
/// [`poll_recv`](Self::poll_recv) or [`try_recv`](Self::try_recv) returned
/// `n`, buffers `0..n` are read with [`meta`](Self::meta) and
/// [`packet`](Self::packet).
pub trait Transport: Send + 'static {
    /// The local address (the listening address for TCP).
    fn local_addr(&self) -> SocketAddr;

    /// Most packets one [`send`](Self::send) may carry (1 where the
    /// transport cannot segment).
    fn max_segments(&self) -> usize;

    /// Waits for packets and receives a batch; returns how many buffers
    /// were filled. Errors are reported and counted by the loop; many in a
    /// row end the endpoint.
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>>;

    /// Receives a batch if one is waiting (`WouldBlock` otherwise).
    fn try_recv(&mut self) -> io::Result<usize>;

    /// Whether the last [`poll_recv`](Self::poll_recv) found the socket's
    /// queue empty after the batch it returned, and left the task's waker
    /// for the next packet: until that wakes the task, a receive would
    /// only report `WouldBlock`, so the loop does not try one. A transport
    /// that cannot tell says `false` (the loop then receives until it
    /// finds nothing).
    fn recv_waits(&self) -> bool {
        false
    }

    /// Where buffer `i` of the last batch came from, its length, and the
    /// size of each packet in it (several packets share a buffer when the
    /// OS coalesced them).
    fn meta(&self, i: usize) -> (SocketAddr, usize, usize);

    /// The bytes of buffer `i`, from `start` for `len` bytes.
    fn packet(&mut self, i: usize, start: usize, len: usize) -> &mut [u8];

    /// Whether [`try_send`](Self::try_send) may be called from any task
    /// and thread (a connection handle's, under the endpoint's lock), not
    /// only from the endpoint's task. A UDP socket can; a transport that
    /// spawns tasks to send (TCP) cannot, and its packets wait for the
    /// endpoint's task.
    fn sends_anywhere(&self) -> bool {
        false
    }

    /// Sends, without waiting, `count` packets of `segment` bytes each
    /// (the last may be shorter) held back to back in `buf`, to `to`.
    /// Returns how many packets were taken: sent, or lost to an error
    /// other than a full socket buffer (the protocol recovers; the
    /// transport logs it). Fewer than `count` when the socket's buffer is
    /// full: the rest are offered again once
    /// [`poll_writable`](Self::poll_writable) is ready. An error means
    /// every packet was lost (for logging).
    fn try_send(
        &mut self,
        to: SocketAddr,
        buf: &[u8],
        segment: usize,
        count: usize,
    ) -> io::Result<usize>;

    /// Ready when the socket may take packets again after
    /// [`try_send`](Self::try_send) took fewer than it was offered.
    fn poll_writable(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// No connection uses `peer` any more: a transport with state per
    /// peer (a TCP stream) may release it, after sending what it has.
    fn peer_gone(&mut self, _peer: SocketAddr) {}
}

/// The runtime's clock and one re-armable timer.
///
/// The endpoint polls the timer from its task; connection handles may
/// [`reset`](Self::reset) it to an earlier deadline from their own tasks
/// and threads (under the endpoint's lock, so never concurrently), after
/// the endpoint's task polled it: a reset must keep the waker of the last
/// [`poll_expired`](Self::poll_expired), as tokio's `Sleep::reset` and
/// `async-io`'s `Timer::set_at` do.
pub trait Timer: Send + 'static {
    /// The runtime's current time.
    fn now(&self) -> Instant;
    /// Arms the timer for `at` (replacing any earlier deadline).
    fn reset(&mut self, at: Instant);
    /// Ready once the armed deadline has passed.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}
