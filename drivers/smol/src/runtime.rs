//! smol's part of the driver: an `async-io` UDP socket's readiness and an
//! `async-io` timer.

use async_io::{Async, Timer};
use quinn_udp::UdpSockRef;
use std::future::Future;
use std::io;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;
use tern_driver::UdpIo;

/// An `async-io` UDP socket for [`tern_driver::UdpTransport`].
pub(crate) struct SmolUdp(pub(crate) Async<UdpSocket>);

impl UdpIo for SmolUdp {
    fn sock_ref(&self) -> UdpSockRef<'_> {
        self.0.get_ref().into()
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().local_addr()
    }

    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_readable(cx)
    }

    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_writable(cx)
    }

    /// `async-io` keeps no readiness of its own to clear: the next
    /// `poll_*_ready` waits for a new event.
    fn try_io<R>(&self, _write: bool, op: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        op()
    }

    fn try_send_to(&self, buf: &[u8], to: SocketAddr) -> Option<io::Result<usize>> {
        Some(self.0.get_ref().send_to(buf, to))
    }
}

/// An `async-io` timer, re-armed in place.
pub(crate) struct SmolTimer(Timer);

impl SmolTimer {
    pub(crate) fn new() -> Self {
        SmolTimer(Timer::never())
    }
}

impl tern_driver::Timer for SmolTimer {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn reset(&mut self, at: Instant) {
        self.0.set_at(at);
    }

    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

/// smol's TCP for [`tern_driver::TcpTransport`].
pub(crate) struct SmolTcp;

/// An `async-io` TCP stream, read and written through `&self`.
pub(crate) struct SmolStream(Async<TcpStream>);

impl tern_driver::TcpIo for SmolStream {
    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        loop {
            match (&mut self.0.get_ref()).read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::task::ready!(self.0.poll_readable(cx))?;
                }
                r => return Poll::Ready(r),
            }
        }
    }

    fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            match (&mut self.0.get_ref()).write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::task::ready!(self.0.poll_writable(cx))?;
                }
                r => return Poll::Ready(r),
            }
        }
    }

    fn shutdown_write(&self) -> io::Result<()> {
        self.0.get_ref().shutdown(std::net::Shutdown::Write)
    }
}

impl tern_driver::TcpRuntime for SmolTcp {
    type Stream = SmolStream;
    type Listener = Async<TcpListener>;

    fn poll_accept(
        listener: &Self::Listener,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(Self::Stream, SocketAddr)>> {
        loop {
            match listener.get_ref().accept() {
                Ok((s, a)) => {
                    let _ = s.set_nodelay(true);
                    return Poll::Ready(Async::new(s).map(|s| (SmolStream(s), a)));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::task::ready!(listener.poll_readable(cx))?;
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    async fn connect(addr: SocketAddr) -> io::Result<Self::Stream> {
        let s = Async::<TcpStream>::connect(addr).await?;
        s.get_ref().set_nodelay(true)?;
        Ok(SmolStream(s))
    }

    fn spawn(task: impl Future<Output = ()> + Send + 'static) {
        smol::spawn(task).detach();
    }

    async fn sleep(d: std::time::Duration) {
        Timer::after(d).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tern_driver::Timer as _;

    #[test]
    fn the_timer_fires_at_its_deadline_and_re_arms() {
        smol::block_on(async {
            let mut t = SmolTimer::new();
            for ms in [30u64, 10] {
                let start = t.now();
                t.reset(start + Duration::from_millis(ms));
                std::future::poll_fn(|cx| t.poll_expired(cx)).await;
                assert!(t.now().duration_since(start) >= Duration::from_millis(ms));
            }
        });
    }
}
