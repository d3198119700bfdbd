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
use tokio::net::UdpSocket;
use tokio::time::{Instant as TokioInstant, Sleep};

/// A tokio UDP socket for [`tern_driver::UdpTransport`].
pub(crate) struct TokioUdp(pub(crate) UdpSocket);

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
