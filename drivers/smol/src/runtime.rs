//! smol's part of the driver: an `async-io` UDP socket's readiness and an
//! `async-io` timer.

use async_io::{Async, Timer};
use quinn_udp::UdpSockRef;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, UdpSocket};
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
