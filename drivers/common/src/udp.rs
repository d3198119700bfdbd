//! A UDP socket with batched system calls where the OS offers them:
//! `quinn-udp` receives many datagrams per call (`recvmmsg`, and GRO
//! coalescing on Linux) and sends runs of equal-size packets to one
//! destination as one segmented write (GSO). Where they are missing,
//! `quinn-udp` reports one segment and one datagram per call, and this
//! module sends packets one by one.
//!
//! Only readiness is the runtime's: see [`UdpIo`].

use crate::runtime::Transport;
use quinn_udp::{BATCH_SIZE, RecvMeta, Transmit, UdpSockRef, UdpSocketState};
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::task::{Context, Poll, ready};
use tracing::debug;

/// Bytes per receive buffer: a whole datagram, or a GRO run of them.
const RECV_CHUNK: usize = 64 * 1024;
/// Receive buffers per system call.
const RECV_BUFS: usize = if BATCH_SIZE < 4 { BATCH_SIZE } else { 4 };
/// Most bytes in one segmented send (the UDP length limit).
const MAX_GSO_BYTES: usize = 65_000;
/// Kernel buffer asked for each way on sockets [`bind_udp`] binds.
const SOCKET_BUFFER: usize = 2 * 1024 * 1024;

/// A runtime's non-blocking UDP socket: readiness, and non-blocking
/// operations that clear it when they would block.
pub trait UdpIo: Send + Sync + 'static {
    /// The socket, for `quinn-udp`'s system calls.
    fn sock_ref(&self) -> UdpSockRef<'_>;
    /// The socket's local address.
    fn local_addr(&self) -> io::Result<SocketAddr>;
    /// Ready when a read may succeed.
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    /// Ready when a write may succeed.
    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    /// Runs a non-blocking operation; a `WouldBlock` from it clears the
    /// readiness of that direction (`write` or read).
    fn try_io<R>(&self, write: bool, op: impl FnOnce() -> io::Result<R>) -> io::Result<R>;

    /// Sends one datagram to `to` without waiting, as
    /// [`try_io`](Self::try_io) would for a write, where the socket offers
    /// a plain `send_to`: one packet needs none of the control messages
    /// `quinn-udp` builds (for segmentation), so this is the cheaper call.
    /// `None` (the default) lets the transport send it with `quinn-udp`.
    fn try_send_to(&self, _buf: &[u8], _to: SocketAddr) -> Option<io::Result<usize>> {
        None
    }
}

/// Binds a UDP socket for an endpoint: dual-stack where the system allows
/// it for IPv6, 2 MiB kernel buffers (best effort: the system caps them),
/// non-blocking.
pub fn bind_udp(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    if addr.is_ipv6() {
        let _ = socket.set_only_v6(false);
    }
    // Room for bursts (many handshakes at once): a short kernel buffer
    // drops datagrams that the protocol must then recover.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Binds a TCP listening socket for an endpoint (address reuse on, so a
/// restarted server gets its port back), non-blocking.
pub fn bind_tcp(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    if addr.is_ipv6() {
        let _ = socket.set_only_v6(false);
    }
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// The endpoint's UDP transport over a runtime's socket.
pub struct UdpTransport<U: UdpIo> {
    io: U,
    state: UdpSocketState,
    local_addr: SocketAddr,
    recv_buf: Vec<u8>,
    meta: [RecvMeta; RECV_BUFS],
    /// The last receive found the socket's queue empty after its batch
    /// (and cleared the runtime's readiness).
    drained: bool,
    /// Drained, and the waker of the last `poll_recv` waits for readiness.
    waits: bool,
}

impl<U: UdpIo> UdpTransport<U> {
    /// Wraps a runtime's socket.
    pub fn new(io: U) -> io::Result<Self> {
        let state = UdpSocketState::new(io.sock_ref())?;
        let local_addr = io.local_addr()?;
        Ok(UdpTransport {
            io,
            state,
            local_addr,
            recv_buf: vec![0; RECV_CHUNK * RECV_BUFS],
            meta: [RecvMeta::default(); RECV_BUFS],
            drained: false,
            waits: false,
        })
    }

    /// One system call without waiting (`WouldBlock` when the socket's
    /// buffer is full).
    fn try_one(&self, t: &Transmit<'_>) -> io::Result<()> {
        self.io
            .try_io(true, || self.state.try_send(self.io.sock_ref(), t))
    }

    /// One packet, without waiting: a plain `send_to` where the runtime
    /// offers it, else through `quinn-udp`.
    #[inline]
    fn send_one(&self, to: SocketAddr, pkt: &[u8]) -> io::Result<()> {
        match self.io.try_send_to(pkt, to) {
            // Interrupted: `quinn-udp` tries again.
            Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
            Some(r) => return r.map(|_| ()),
            None => {}
        }
        self.try_one(&Transmit {
            destination: to,
            ecn: None,
            contents: pkt,
            segment_size: None,
            src_ip: None,
        })
    }
}

impl<U: UdpIo> Transport for UdpTransport<U> {
    fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    fn max_segments(&self) -> usize {
        self.state.max_gso_segments().max(1)
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        self.waits = false;
        loop {
            match self.try_recv() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(self.io.poll_read_ready(cx))?;
                }
                Ok(n) => {
                    if self.drained {
                        // The batch emptied the queue: leave the waker for
                        // the next packet now (readiness was cleared, so
                        // this is pending unless one came meanwhile), so
                        // that the loop need not come back only to find
                        // the socket empty.
                        self.waits = self.io.poll_read_ready(cx).is_pending();
                    }
                    return Poll::Ready(Ok(n));
                }
                r => return Poll::Ready(r),
            }
        }
    }

    fn recv_waits(&self) -> bool {
        self.waits
    }

    fn try_recv(&mut self) -> io::Result<usize> {
        self.waits = false;
        let mut chunks = self.recv_buf.chunks_mut(RECV_CHUNK);
        let mut bufs: [IoSliceMut<'_>; RECV_BUFS] =
            std::array::from_fn(|_| IoSliceMut::new(chunks.next().unwrap_or_default()));
        let (state, io, meta) = (&self.state, &self.io, &mut self.meta);
        // Fewer buffers than offered means the call found the socket's
        // queue empty: say "would block" to the runtime too, so that it
        // clears the readiness it saw before the call (a datagram that
        // came after raises it again) and the next receive waits without
        // a system call that would only fail.
        let mut drained = None;
        let r = io.try_io(false, || {
            let n = state.recv(io.sock_ref(), &mut bufs, meta)?;
            if n < RECV_BUFS && RECV_BUFS > 1 {
                drained = Some(n);
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(n)
        });
        self.drained = drained.is_some();
        match drained {
            Some(n) => Ok(n),
            None => r,
        }
    }

    fn meta(&self, i: usize) -> (SocketAddr, usize, usize) {
        let m = &self.meta[i];
        (m.addr, m.len.min(RECV_CHUNK), m.stride.max(1))
    }

    fn packet(&mut self, i: usize, start: usize, len: usize) -> &mut [u8] {
        &mut self.recv_buf[i * RECV_CHUNK..][start..start + len]
    }

    fn sends_anywhere(&self) -> bool {
        true
    }

    /// Falls back to one packet per call if the segmented send fails for
    /// another reason than a full buffer. Packets lost to other errors are
    /// logged and counted as taken.
    fn try_send(
        &mut self,
        to: SocketAddr,
        buf: &[u8],
        segment: usize,
        count: usize,
    ) -> io::Result<usize> {
        if count == 1 {
            return match self.send_one(to, buf) {
                Ok(()) => Ok(1),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
                // The packet is lost: the caller logs why.
                Err(e) => Err(e),
            };
        }
        let segment = segment.max(1);
        if count > 1 {
            let t = Transmit {
                destination: to,
                ecn: None,
                contents: buf,
                segment_size: Some(segment),
                src_ip: None,
            };
            match self.try_one(&t) {
                Ok(()) => return Ok(count),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
                Err(_) => {}
            }
        }
        let (mut taken, mut sent) = (0, 0);
        let mut last = None;
        for pkt in buf.chunks(segment) {
            match self.send_one(to, pkt) {
                Ok(()) => sent += 1,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(taken),
                Err(e) => last = Some(e),
            }
            taken += 1;
        }
        match last {
            // Every packet failed: the caller logs why.
            Some(e) if sent == 0 => Err(e),
            Some(e) => {
                debug!(%to, error = %e, "send failed");
                Ok(taken)
            }
            None => Ok(taken),
        }
    }

    fn poll_writable(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.poll_write_ready(cx)
    }
}

/// How many packets of `segment` bytes one segmented send may carry.
#[inline]
pub(crate) fn batch_limit(max_segments: usize, segment: usize) -> usize {
    max_segments.min(MAX_GSO_BYTES / segment.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A blocking std socket, ready at all times, counting the packets
    /// sent with a plain `send_to` (none when `plain` is off).
    struct Plain {
        sock: std::net::UdpSocket,
        plain: bool,
        send_tos: AtomicUsize,
    }

    impl UdpIo for Plain {
        fn sock_ref(&self) -> UdpSockRef<'_> {
            (&self.sock).into()
        }
        fn local_addr(&self) -> io::Result<SocketAddr> {
            self.sock.local_addr()
        }
        fn poll_read_ready(&self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_write_ready(&self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn try_io<R>(&self, _: bool, op: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
            op()
        }
        fn try_send_to(&self, buf: &[u8], to: SocketAddr) -> Option<io::Result<usize>> {
            if !self.plain {
                return None;
            }
            self.send_tos.fetch_add(1, Ordering::SeqCst);
            Some(self.sock.send_to(buf, to))
        }
    }

    /// A single packet goes out with the socket's plain `send_to` where
    /// the runtime offers one (through `quinn-udp` otherwise); a batch of
    /// packets as one segmented send where the system can, else one by
    /// one. Either way every packet arrives whole, in order.
    #[test]
    fn single_packets_use_a_plain_send_and_batches_a_segmented_one() {
        for plain in [true, false] {
            let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            peer.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            let to = peer.local_addr().unwrap();
            let io = Plain {
                sock: std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
                plain,
                send_tos: AtomicUsize::new(0),
            };
            let mut t = UdpTransport::new(io).unwrap();
            assert_eq!(t.try_send(to, b"hello", 5, 1).unwrap(), 1);
            let sent = |t: &UdpTransport<Plain>| t.io.send_tos.load(Ordering::SeqCst);
            assert_eq!(sent(&t), usize::from(plain));
            let batch: Vec<u8> = (0..25u8).collect();
            assert_eq!(t.try_send(to, &batch, 10, 3).unwrap(), 3);
            // Segmented where the system can (one call); else each packet
            // as a single one.
            let singles = if t.max_segments() > 1 { 0 } else { 3 };
            assert_eq!(sent(&t), usize::from(plain) * (1 + singles));
            let mut got = Vec::new();
            let mut buf = [0u8; 64];
            for _ in 0..4 {
                let (n, from) = peer.recv_from(&mut buf).unwrap();
                assert_eq!(from, t.local_addr());
                got.push(buf[..n].to_vec());
            }
            assert_eq!(
                got,
                [&b"hello"[..], &batch[..10], &batch[10..20], &batch[20..]]
            );
        }
    }

    #[test]
    fn batches_fit_one_udp_payload() {
        assert_eq!(batch_limit(1, 1452), 1);
        assert_eq!(batch_limit(64, 1452), 44);
        assert_eq!(batch_limit(10, 1452), 10);
        assert_eq!(batch_limit(64, 100_000), 1);
        assert_eq!(batch_limit(0, 0), 1);
    }
}
