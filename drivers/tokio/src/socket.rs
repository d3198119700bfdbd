//! tokio's part of the driver: a UDP socket's readiness and a timer on
//! tokio's clock (so paused test time works too).

use quinn_udp::UdpSockRef;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;
use tern_driver::{Timer, UdpIo};
use tokio::io::Interest;
#[cfg(not(unix))]
use tokio::net::UdpSocket;
use tokio::time::{Instant as TokioInstant, Sleep};

/// A tokio UDP socket for [`tern_driver::UdpTransport`].
///
/// On Unix it is registered with the reactor for reading only: a socket
/// registered for writing too is reported writable again after nearly
/// every send (when the peer takes the datagram), which wakes the runtime
/// for nothing once per packet. Sends do not wait for readiness; when one
/// finds the socket's buffer full, a duplicate of the socket is registered
/// for writing until it has room.
#[cfg(unix)]
pub(crate) struct TokioUdp {
    read: tokio::io::unix::AsyncFd<std::net::UdpSocket>,
    /// While a send waits for room: the duplicate registered for writing.
    write: std::sync::Mutex<Option<tokio::io::unix::AsyncFd<std::net::UdpSocket>>>,
}

#[cfg(unix)]
impl TokioUdp {
    /// Registers a non-blocking socket (within a tokio runtime).
    pub(crate) fn new(socket: std::net::UdpSocket) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        Ok(TokioUdp {
            read: register(socket, Interest::READABLE)?,
            write: std::sync::Mutex::new(None),
        })
    }
}

#[cfg(unix)]
impl UdpIo for TokioUdp {
    fn sock_ref(&self) -> UdpSockRef<'_> {
        self.read.get_ref().into()
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.read.get_ref().local_addr()
    }

    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The guard keeps the readiness: `try_io` clears it on WouldBlock.
        self.read.poll_read_ready(cx).map_ok(|_| ())
    }

    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut write = self.write.lock().unwrap_or_else(|e| e.into_inner());
        if write.is_none() {
            let dup = self.read.get_ref().try_clone()?;
            *write = Some(register(dup, Interest::WRITABLE)?);
        }
        let Some(w) = write.as_ref() else {
            return Poll::Ready(Ok(()));
        };
        match w.poll_write_ready(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(r) => {
                // Writable (or failed): stop watching until the next full
                // buffer.
                let r = r.map(|_| ());
                *write = None;
                Poll::Ready(r)
            }
        }
    }

    fn try_io<R>(&self, write: bool, op: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        if write {
            // Writes track no readiness (see the type's documentation).
            op()
        } else {
            self.read.try_io(Interest::READABLE, |_| op())
        }
    }

    fn try_send_to(&self, buf: &[u8], to: SocketAddr) -> Option<io::Result<usize>> {
        Some(self.read.get_ref().send_to(buf, to))
    }
}

/// Registers `socket` with the reactor for `interest` only.
///
/// `AsyncFd::with_interest` is deprecated in favour of an `unsafe`
/// constructor (tokio#8587) because an arbitrary `AsRawFd` type might
/// close or swap its descriptor while registered; a
/// `std::net::UdpSocket` owns its descriptor until it is dropped, which
/// is exactly the condition the `unsafe` one asks for, and this crate
/// forbids `unsafe`.
#[cfg(unix)]
#[allow(deprecated)]
fn register(
    socket: std::net::UdpSocket,
    interest: Interest,
) -> io::Result<tokio::io::unix::AsyncFd<std::net::UdpSocket>> {
    tokio::io::unix::AsyncFd::with_interest(socket, interest)
}

/// A tokio UDP socket for [`tern_driver::UdpTransport`].
#[cfg(not(unix))]
pub(crate) struct TokioUdp(UdpSocket);

#[cfg(not(unix))]
impl TokioUdp {
    /// Registers a non-blocking socket (within a tokio runtime).
    pub(crate) fn new(socket: std::net::UdpSocket) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        Ok(TokioUdp(UdpSocket::from_std(socket)?))
    }
}

#[cfg(not(unix))]
impl UdpIo for TokioUdp {
    fn sock_ref(&self) -> UdpSockRef<'_> {
        (&self.0).into()
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_recv_ready(cx)
    }

    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_send_ready(cx)
    }

    fn try_io<R>(&self, write: bool, op: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        let interest = if write {
            Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        self.0.try_io(interest, op)
    }

    fn try_send_to(&self, buf: &[u8], to: SocketAddr) -> Option<io::Result<usize>> {
        Some(self.0.try_send_to(buf, to))
    }
}

/// tokio's sleep, re-armed in place.
pub(crate) struct TokioTimer(Pin<Box<Sleep>>);

impl TokioTimer {
    pub(crate) fn new() -> Self {
        TokioTimer(Box::pin(tokio::time::sleep_until(TokioInstant::now())))
    }
}

impl Timer for TokioTimer {
    fn now(&self) -> Instant {
        TokioInstant::now().into_std()
    }

    fn reset(&mut self, at: Instant) {
        self.0.as_mut().reset(TokioInstant::from_std(at));
    }

    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

/// tokio's TCP for [`tern_driver::TcpTransport`].
pub(crate) struct TokioTcp;

/// A tokio TCP stream, read and written through `&self`.
pub(crate) struct TokioStream(tokio::net::TcpStream);

impl tern_driver::TcpIo for TokioStream {
    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        loop {
            std::task::ready!(self.0.poll_read_ready(cx))?;
            match self.0.try_read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => return Poll::Ready(r),
            }
        }
    }

    fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            std::task::ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => return Poll::Ready(r),
            }
        }
    }

    fn shutdown_write(&self) -> io::Result<()> {
        socket2::SockRef::from(&self.0).shutdown(std::net::Shutdown::Write)
    }
}

impl tern_driver::TcpRuntime for TokioTcp {
    type Stream = TokioStream;
    type Listener = tokio::net::TcpListener;

    fn poll_accept(
        listener: &Self::Listener,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(Self::Stream, SocketAddr)>> {
        listener.poll_accept(cx).map_ok(|(s, a)| {
            let _ = s.set_nodelay(true);
            (TokioStream(s), a)
        })
    }

    async fn connect(addr: SocketAddr) -> io::Result<Self::Stream> {
        let s = tokio::net::TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        Ok(TokioStream(s))
    }

    fn spawn(task: impl Future<Output = ()> + Send + 'static) {
        tokio::spawn(task);
    }

    fn sleep(d: std::time::Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn the_timer_follows_tokio_time() {
        let mut t = TokioTimer::new();
        let start = t.now();
        t.reset(start + Duration::from_millis(1500));
        std::future::poll_fn(|cx| t.poll_expired(cx)).await;
        // Paused time jumped to the deadline, not past it by much.
        let took = t.now().duration_since(start);
        assert!(took >= Duration::from_millis(1500), "{took:?}");
        assert!(took < Duration::from_millis(1600), "{took:?}");
    }
}

#[cfg(all(test, target_os = "linux"))]
mod udp_tests {
    use super::TokioUdp;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll, Wake, Waker};
    use std::time::Duration;
    use tern_driver::{Transport, UdpTransport};

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Lets tokio's reactor run until `count` passed `before`.
    async fn woken(count: &Count, before: usize) {
        for _ in 0..5_000 {
            if count.0.load(Ordering::SeqCst) > before {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("never woken");
    }

    /// A receive batch that empties the socket leaves the caller's waker
    /// for the next datagram at once (so the endpoint's loop ends its pass
    /// without polling again only to find nothing), and the next datagram
    /// wakes it: no wake-up is lost. A batch that leaves datagrams behind
    /// says so.
    #[tokio::test]
    async fn a_batch_that_empties_the_socket_waits_for_the_next_datagram() {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        let mut t = UdpTransport::new(TokioUdp::new(sock).unwrap()).unwrap();
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(t.poll_recv(&mut cx).is_pending());
        assert!(!t.recv_waits());

        for (i, msg) in [&b"one"[..], b"second"].into_iter().enumerate() {
            let before = count.0.load(Ordering::SeqCst);
            peer.send_to(msg, addr).unwrap();
            woken(&count, before).await;
            match t.poll_recv(&mut cx) {
                Poll::Ready(Ok(1)) => {}
                other => panic!("datagram {i}: {other:?}"),
            }
            let (from, len, _) = t.meta(0);
            assert_eq!(from, peer.local_addr().unwrap());
            assert_eq!(t.packet(0, 0, len), msg);
            assert!(t.recv_waits(), "datagram {i}: the waker was not left");
        }

        // More datagrams than one call takes (sizes differ, so the kernel
        // does not coalesce them): the first batch leaves some behind.
        let before = count.0.load(Ordering::SeqCst);
        for i in 1..=9u8 {
            peer.send_to(&vec![i; usize::from(i)], addr).unwrap();
        }
        woken(&count, before).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut got = Vec::new();
        let mut first = true;
        while got.len() < 9 {
            let n = match t.poll_recv(&mut cx) {
                Poll::Ready(Ok(n)) => n,
                other => panic!("{other:?}"),
            };
            if first {
                assert!(n < 9, "one batch took {n}");
                assert!(!t.recv_waits(), "datagrams are left");
                first = false;
            }
            for b in 0..n {
                let (_, len, _) = t.meta(b);
                got.push(t.packet(b, 0, len).to_vec());
            }
        }
        assert!(t.recv_waits());
        let want: Vec<Vec<u8>> = (1..=9u8).map(|i| vec![i; usize::from(i)]).collect();
        assert_eq!(got, want);
    }
}

#[cfg(test)]
mod tcp_tests {
    use super::TokioTcp;
    use std::future::poll_fn;
    use std::io::{Read, Write};
    use std::net::SocketAddr;
    use std::time::Duration;
    use tern_driver::{TcpTransport, Transport};

    /// The TCP transport on the wire: a transmit opens a stream and writes
    /// the packet framed; packets framed by the peer come in with its
    /// address; once no session uses the peer, the stream is closed after
    /// everything queued was written.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn frames_on_the_wire_and_closes_once_released() {
        let raw = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = raw.local_addr().unwrap();
        let local: SocketAddr = "0.0.0.0:0".parse().unwrap();
        let mut t = TcpTransport::<TokioTcp>::new(None, local, 4, 1452, Duration::from_secs(5));
        assert_eq!(t.max_segments(), 1);

        // Two packets queued before the stream is even connected.
        assert_eq!(t.try_send(addr, b"first", 5, 1).unwrap(), 1);
        assert_eq!(t.try_send(addr, b"second!", 7, 1).unwrap(), 1);
        let peer = tokio::task::spawn_blocking(move || {
            let (mut s, _) = raw.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut got = [0u8; 16];
            s.read_exact(&mut got).unwrap();
            assert_eq!(&got, b"\x00\x05first\x00\x07second!");
            // A frame back, then wait for the transport to close.
            s.write_all(b"\x00\x03abc").unwrap();
            let mut rest = Vec::new();
            s.read_to_end(&mut rest).unwrap();
            rest
        });

        let n = tokio::time::timeout(Duration::from_secs(5), poll_fn(|cx| t.poll_recv(cx)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 1);
        let (from, len, _) = t.meta(0);
        assert_eq!((from, len), (addr, 3));
        assert_eq!(t.packet(0, 0, 3), b"abc");

        // A last packet, then no session uses the peer: it is written, and
        // the stream ends.
        assert_eq!(t.try_send(addr, b"bye", 3, 1).unwrap(), 1);
        t.peer_gone(addr);
        let rest = tokio::time::timeout(Duration::from_secs(5), peer)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rest, b"\x00\x03bye");
    }
}
