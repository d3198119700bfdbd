//! What a driver crate provides for its runtime: a packet transport (the
//! socket, with its readiness) and a timer (with the runtime's clock).
//! Everything else, the endpoint loop included, is in this crate.

use std::future::Future;
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

    /// Where buffer `i` of the last batch came from, its length, and the
    /// size of each packet in it (several packets share a buffer when the
    /// OS coalesced them).
    fn meta(&self, i: usize) -> (SocketAddr, usize, usize);

    /// The bytes of buffer `i`, from `start` for `len` bytes.
    fn packet(&mut self, i: usize, start: usize, len: usize) -> &mut [u8];

    /// Sends `count` packets of `segment` bytes each (the last may be
    /// shorter) held back to back in `buf`, to `to`. Packets that cannot
    /// go are lost (the protocol recovers); the error is for logging.
    fn send(
        &mut self,
        to: SocketAddr,
        buf: &[u8],
        segment: usize,
        count: usize,
    ) -> impl Future<Output = io::Result<()>> + Send;

    /// No connection uses `peer` any more: a transport with state per
    /// peer (a TCP stream) may release it, after sending what it has.
    fn peer_gone(&mut self, _peer: SocketAddr) {}
}

/// The runtime's clock and one re-armable timer.
pub trait Timer: Send + 'static {
    /// The runtime's current time.
    fn now(&self) -> Instant;
    /// Arms the timer for `at` (replacing any earlier deadline).
    fn reset(&mut self, at: Instant);
    /// Ready once the armed deadline has passed.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}
