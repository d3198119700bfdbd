//! The client over an `embedded-nal-async` socket, timed by an
//! `embedded-hal-async` delay: runtime-free, for any executor (embassy,
//! RTIC, a host runtime).
//!
//! ```no_run
//! use embedded_hal_async::delay::DelayNs;
//! use embedded_nal_async::UdpStack;
//! use tern::{Config, Credentials, Instant};
//! use tern_nal::{Clock, asynch::Client};
//!
//! struct SysClock(std::time::Instant);
//! impl Clock for SysClock {
//!     fn now(&self) -> Instant {
//!         Instant::from_micros(self.0.elapsed().as_micros() as u64)
//!     }
//! }
//! // On a device: embassy_time::Delay, or the HAL's timer.
//! struct Delay;
//! impl DelayNs for Delay {
//!     async fn delay_ns(&mut self, ns: u32) {
//!         tokio::time::sleep(std::time::Duration::from_nanos(ns.into())).await
//!     }
//! }
//!
//! # async fn run(creds: Credentials, rng: &mut rand::rngs::StdRng) -> Result<(), Box<dyn std::error::Error>> {
//! let server = "192.0.2.1:4433".parse()?;
//! let (_, socket) = std_embedded_nal_async::Stack::default().connect(server).await?;
//! let clock = SysClock(std::time::Instant::now());
//! let mut client: Client<_, _, _, 512> =
//!     Client::connect(socket, clock, Delay, server, &creds, Config::constrained(), rng).await?;
//! client.send(0, b"hello").await?;
//! let mut buf = [0u8; 1024];
//! let (channel, n) = client.recv(&mut buf).await?;
//! println!("channel {channel}: {:?}", &buf[..n]);
//! client.close(0, "bye").await?;
//! # Ok(())
//! # }
//! ```

use crate::session::Session;
use crate::{Clock, Error};
use core::future::{Future, poll_fn};
use core::net::SocketAddr;
use core::pin::pin;
use core::task::Poll;
use core::time::Duration;
use embedded_hal_async::delay::DelayNs;
use embedded_nal_async::{ConnectedUdp, UnconnectedUdp};
use tern::connection::Stats;
use tern::rand_core::CryptoRng;
use tern::storage::ByteStore;
use tern::{Config, ConnectionError, ConstrainedBytes, Credentials, Instant};

/// The longest single wait when the connection has no deadline (it always
/// has one while it lives; this only bounds a wait after it ended).
const MAX_WAIT: Duration = Duration::from_secs(1);

/// A Tern client over a connected `embedded-nal-async` UDP socket.
///
/// One task owns it; each call drives the connection (socket, timers,
/// transmits) while it waits. Between calls nothing is read, so an
/// application that only sends should call [`drive`](Self::drive) or
/// [`recv`](Self::recv) now and then. `BUF`, `B`, `CH` and `SENT` are as
/// in [`crate::blocking::Client`]. The socket's `receive_into` must be
/// cancel-safe (a datagram is never lost when the future is dropped before
/// it completes), as readiness-based stacks are: the client drops it when
/// the delay finishes first.
pub struct Client<
    U: ConnectedUdp,
    C: Clock,
    D: DelayNs,
    const BUF: usize = 512,
    B: ByteStore = ConstrainedBytes,
    const CH: usize = 2,
    const SENT: usize = 8,
> {
    socket: U,
    clock: C,
    delay: D,
    session: Session<B, CH, SENT>,
    peer: SocketAddr,
    failed: bool,
    rx: [u8; BUF],
    tx: [u8; BUF],
}

enum Either<A, B> {
    Left(A),
    Right(B),
}

/// Whichever of `a` and `b` finishes first (`a` if both are ready).
async fn select<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let mut a = pin!(a);
    let mut b = pin!(b);
    poll_fn(|cx| {
        if let Poll::Ready(x) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(x));
        }
        if let Poll::Ready(y) = b.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(y));
        }
        Poll::Pending
    })
    .await
}

/// Loops `step` (an `nb` call on the session) with `drive` until done.
macro_rules! drive_until {
    ($self:ident, $step:expr) => {
        loop {
            match $step {
                Ok(v) => break Ok(v),
                Err(nb::Error::Other(e)) => break Err(e),
                Err(nb::Error::WouldBlock) => $self.drive().await?,
            }
        }
    };
}

impl<U, C, D, const BUF: usize, B, const CH: usize, const SENT: usize>
    Client<U, C, D, BUF, B, CH, SENT>
where
    U: ConnectedUdp,
    C: Clock,
    D: DelayNs,
    B: ByteStore,
{
    /// Runs the handshake with `server` over `socket` (connected to
    /// `server`) and resolves once it is done: to the client, or to the
    /// typed reason it failed (within the handshake timeout of `config`).
    pub async fn connect<R: CryptoRng + ?Sized>(
        socket: U,
        clock: C,
        delay: D,
        server: SocketAddr,
        creds: &Credentials,
        config: Config,
        rng: &mut R,
    ) -> Result<Self, Error<U::Error>> {
        let session = Session::start(config, creds, clock.now(), server, rng, BUF)?;
        let mut client = Client {
            socket,
            clock,
            delay,
            session,
            peer: server,
            failed: false,
            rx: [0; BUF],
            tx: [0; BUF],
        };
        client.flush().await?;
        drive_until!(client, client.session.try_connected())?;
        Ok(client)
    }

    /// One step: sends what is ready, then waits for a datagram or the
    /// connection's next deadline, whichever comes first, handles it, and
    /// sends what that made ready. Fails only on a socket error.
    pub async fn drive(&mut self) -> Result<(), Error<U::Error>> {
        self.flush().await?;
        let now = self.clock.now();
        let wait = self
            .session
            .conn
            .poll_timeout()
            .map_or(MAX_WAIT, |t| t.saturating_duration_since(now));
        // Round up, so the timer is due when the delay ends. The socket is
        // polled first even when the deadline has passed, so datagrams are
        // never starved by timers.
        let us = if wait.is_zero() {
            0
        } else {
            u32::try_from(wait.as_micros() + 1).unwrap_or(u32::MAX)
        };
        let got = select(
            self.socket.receive_into(&mut self.rx),
            self.delay.delay_us(us),
        )
        .await;
        match got {
            Either::Left(Ok(n)) => {
                let now = self.clock.now();
                let n = n.min(BUF);
                self.session.handle(now, self.peer, &mut self.rx[..n]);
            }
            Either::Left(Err(e)) => return Err(self.fail(e)),
            Either::Right(()) => {}
        }
        self.session.timers(self.clock.now());
        self.flush().await?;
        self.session.drain_events();
        Ok(())
    }

    /// Sends every packet the connection has ready.
    async fn flush(&mut self) -> Result<(), Error<U::Error>> {
        if self.failed {
            return Err(Error::SocketFailed);
        }
        loop {
            let now = self.clock.now();
            let len = match self.session.conn.poll_transmit(now, &mut self.tx) {
                Ok(Some(t)) => t.len,
                // `connect` checked BUF against the packet size.
                Ok(None) | Err(_) => return Ok(()),
            };
            if let Err(e) = self.socket.send(&self.tx[..len]).await {
                return Err(self.fail(e));
            }
        }
    }

    fn fail(&mut self, e: U::Error) -> Error<U::Error> {
        self.failed = true;
        Error::Socket(e)
    }

    /// Whether the handshake finished and the connection has not ended.
    pub fn is_connected(&self) -> bool {
        self.session.connected && self.session.ended.is_none()
    }

    /// How the connection ended, once it has.
    pub fn ended(&self) -> Option<ConnectionError> {
        self.session.ended
    }

    /// Queues `msg` on `channel` (reliable, in order), waiting while the
    /// channel's window or the peer's credit is full, and sends what it
    /// can.
    pub async fn send(&mut self, channel: u32, msg: &[u8]) -> Result<(), Error<U::Error>> {
        drive_until!(self, self.session.try_send(channel, msg))?;
        self.flush().await
    }

    /// The next complete message of any channel, read into `buf`:
    /// `(channel, length)`. Messages that arrived before the connection
    /// ended are still read; then its ending is returned.
    pub async fn recv(&mut self, buf: &mut [u8]) -> Result<(u32, usize), Error<U::Error>> {
        let got = drive_until!(self, self.session.try_recv(buf))?;
        // Credit the read may have freed goes out now.
        self.flush().await?;
        Ok(got)
    }

    /// Queues an unreliable datagram, sent once in the next packet;
    /// [`Error::QueueFull`] rather than wait.
    pub async fn send_datagram(&mut self, data: &[u8]) -> Result<(), Error<U::Error>> {
        drive_until!(self, self.session.try_send_datagram(data))?;
        self.flush().await
    }

    /// The oldest datagram received, read into `buf`.
    pub async fn recv_datagram(&mut self, buf: &mut [u8]) -> Result<usize, Error<U::Error>> {
        drive_until!(self, self.session.try_recv_datagram(buf))
    }

    /// Closes gracefully: queued messages are delivered first, then CLOSE
    /// with `code` and `reason` is sent, and this waits until the peer
    /// acknowledged it (bounded by the connection's timers). `Ok` if the
    /// connection ended by a close, this one or the peer's; else its
    /// ending.
    pub async fn close(&mut self, code: u32, reason: &str) -> Result<(), Error<U::Error>> {
        let now = self.clock.now();
        self.session.start_close(now, code, reason);
        self.session.drain_events();
        drive_until!(self, self.session.try_closed())
    }

    /// The connection's statistics.
    pub fn stats(&self) -> Stats {
        self.session.conn.stats()
    }

    /// The connection, for what the driver does not wrap.
    pub fn connection(&self) -> &tern::Connection<B, CH, SENT> {
        &self.session.conn
    }

    /// The server's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The connection's next deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.session.conn.poll_timeout()
    }

    /// Gives the socket, clock and delay back.
    pub fn into_parts(self) -> (U, C, D) {
        (self.socket, self.clock, self.delay)
    }
}

/// An `UnconnectedUdp` socket used as a connected one: it sends from
/// `local` to `remote` and drops datagrams from anyone else.
pub struct Unconnected<U> {
    socket: U,
    local: SocketAddr,
    remote: SocketAddr,
}

impl<U: UnconnectedUdp> Unconnected<U> {
    /// `socket` bound at `local` (as its stack's bind call returned it),
    /// talking to `remote` only.
    pub fn new(socket: U, local: SocketAddr, remote: SocketAddr) -> Self {
        Unconnected {
            socket,
            local,
            remote,
        }
    }

    /// The socket back.
    pub fn into_inner(self) -> U {
        self.socket
    }
}

impl<U: UnconnectedUdp> ConnectedUdp for Unconnected<U> {
    type Error = U::Error;

    async fn send(&mut self, data: &[u8]) -> Result<(), Self::Error> {
        self.socket.send(self.local, self.remote, data).await
    }

    async fn receive_into(&mut self, buffer: &mut [u8]) -> Result<usize, Self::Error> {
        loop {
            let (n, _local, from) = self.socket.receive_into(buffer).await?;
            if from == self.remote {
                return Ok(n);
            }
        }
    }
}
