//! The client over an `embedded-nal` [`UdpClientStack`]: `nb` calls for a
//! superloop, and blocking forms with a deadline built on them.

use crate::session::Session;
use crate::{Clock, Error};
use core::net::SocketAddr;
use core::time::Duration;
use embedded_nal::UdpClientStack;
use tern::connection::Stats;
use tern::rand_core::CryptoRng;
use tern::storage::ByteStore;
use tern::{Config, ConnectionError, ConstrainedBytes, Credentials, Instant};

/// Datagrams read from the socket in one [`Client::poll`] at most, so a
/// flood cannot starve the caller's loop.
const RX_BURST: usize = 16;

/// A Tern client over one socket of an `embedded-nal` stack.
///
/// `BUF` is the size of each of its two packet buffers (receive and
/// transmit): at least the configured `max_packet_size` (512 for
/// [`Config::constrained`]). `B`, `CH` and `SENT` size the connection as in
/// [`tern::Connection`]; the defaults make it a
/// [`tern::ConstrainedConnection`].
///
/// Every call taking the `nb` form polls first: socket receive (until the
/// stack says `WouldBlock`), due timers, transmits, events. Nothing blocks
/// except the `*_blocking` calls and [`Client::connect`], which poll until
/// done or until their timeout, calling [`Clock::idle`] between polls.
/// `S` may be a `&mut` to a stack shared with other sockets. Dropping the
/// client drops its socket without the stack's `close`; call
/// [`release`](Client::release) to give it back to a stack with a fixed
/// socket pool.
pub struct Client<
    S: UdpClientStack,
    C: Clock,
    const BUF: usize = 512,
    B: ByteStore = ConstrainedBytes,
    const CH: usize = 2,
    const SENT: usize = 8,
> {
    stack: S,
    socket: Option<S::UdpSocket>,
    clock: C,
    session: Session<B, CH, SENT>,
    peer: SocketAddr,
    rx: [u8; BUF],
    tx: [u8; BUF],
    /// Bytes of `tx` the stack refused with `WouldBlock`, sent first next time.
    pending: usize,
}

type NbResult<T, E> = nb::Result<T, Error<E>>;

impl<S, C, const BUF: usize, B, const CH: usize, const SENT: usize> Client<S, C, BUF, B, CH, SENT>
where
    S: UdpClientStack,
    C: Clock,
    B: ByteStore,
{
    /// Opens a socket to `server` and starts the handshake; returns at
    /// once. Drive it with [`poll`](Self::poll) (or any `nb` call) until
    /// [`is_connected`](Self::is_connected), or use
    /// [`connect`](Self::connect). `rng` gives the session id and the
    /// handshake's ephemeral key.
    pub fn start<R: CryptoRng + ?Sized>(
        mut stack: S,
        clock: C,
        server: SocketAddr,
        creds: &Credentials,
        config: Config,
        rng: &mut R,
    ) -> Result<Self, Error<S::Error>> {
        let session = Session::start(config, creds, clock.now(), server, rng, BUF)?;
        let mut socket = stack.socket().map_err(Error::Socket)?;
        if let Err(e) = stack.connect(&mut socket, server) {
            let _ = stack.close(socket);
            return Err(Error::Socket(e));
        }
        let mut client = Client {
            stack,
            socket: Some(socket),
            clock,
            session,
            peer: server,
            rx: [0; BUF],
            tx: [0; BUF],
            pending: 0,
        };
        client.poll()?;
        Ok(client)
    }

    /// [`start`](Self::start), then polls until the handshake is done:
    /// the client, or why it failed (the handshake timeout of `config`
    /// bounds it; `timeout` too, with [`Error::Timeout`]).
    pub fn connect<R: CryptoRng + ?Sized>(
        stack: S,
        clock: C,
        server: SocketAddr,
        creds: &Credentials,
        config: Config,
        rng: &mut R,
        timeout: Duration,
    ) -> Result<Self, Error<S::Error>> {
        let mut client = Self::start(stack, clock, server, creds, config, rng)?;
        match client.block(timeout, |c| c.poll_connected()) {
            Ok(()) => Ok(client),
            Err(e) => {
                // Give the socket back to the stack (its pool may be small).
                let _ = client.release();
                Err(e)
            }
        }
    }

    /// One step: reads the datagrams the socket holds (up to 16), runs the
    /// timers if their deadline passed, sends what is ready, takes the
    /// connection's events. Never blocks. Fails only on a socket error;
    /// how the connection ended is reported by the application calls.
    pub fn poll(&mut self) -> Result<(), Error<S::Error>> {
        let Some(socket) = self.socket.as_mut() else {
            return Err(Error::SocketFailed);
        };
        let mut failed = None;
        for _ in 0..RX_BURST {
            match self.stack.receive(socket, &mut self.rx) {
                Ok((n, from)) => {
                    let now = self.clock.now();
                    self.session.handle(now, from, &mut self.rx[..n]);
                }
                Err(nb::Error::WouldBlock) => break,
                Err(nb::Error::Other(e)) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = failed {
            return Err(self.fail(e));
        }
        self.session.timers(self.clock.now());
        self.flush()?;
        self.session.drain_events();
        Ok(())
    }

    /// Sends what the connection has ready; keeps a packet the stack
    /// refused with `WouldBlock` for the next call.
    fn flush(&mut self) -> Result<(), Error<S::Error>> {
        let Some(socket) = self.socket.as_mut() else {
            return Err(Error::SocketFailed);
        };
        let mut failed = None;
        loop {
            if self.pending == 0 {
                let now = self.clock.now();
                match self.session.conn.poll_transmit(now, &mut self.tx) {
                    Ok(Some(t)) => self.pending = t.len,
                    Ok(None) => break,
                    // `start` checked BUF against the packet size.
                    Err(_) => break,
                }
            }
            match self.stack.send(socket, &self.tx[..self.pending]) {
                Ok(()) => self.pending = 0,
                Err(nb::Error::WouldBlock) => break,
                Err(nb::Error::Other(e)) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        match failed {
            Some(e) => Err(self.fail(e)),
            None => Ok(()),
        }
    }

    /// The socket failed: close it and end the connection.
    fn fail(&mut self, e: S::Error) -> Error<S::Error> {
        if let Some(socket) = self.socket.take() {
            let _ = self.stack.close(socket);
        }
        self.pending = 0;
        Error::Socket(e)
    }

    /// Polls, then `f`, until `f` is done, fails, or `timeout` passes.
    fn block<T>(
        &mut self,
        timeout: Duration,
        mut f: impl FnMut(&mut Self) -> NbResult<T, S::Error>,
    ) -> Result<T, Error<S::Error>> {
        let deadline = self.clock.now() + timeout;
        loop {
            match f(self) {
                Ok(v) => return Ok(v),
                Err(nb::Error::Other(e)) => return Err(e),
                Err(nb::Error::WouldBlock) => {}
            }
            let now = self.clock.now();
            if now >= deadline {
                return Err(Error::Timeout);
            }
            let until = self.next_deadline().map_or(deadline, |t| t.min(deadline));
            if until > now {
                self.clock.idle(until);
            }
        }
    }

    /// Polls; `Ok` once the handshake is done, the ending if it failed.
    pub fn poll_connected(&mut self) -> NbResult<(), S::Error> {
        self.poll()?;
        self.session.try_connected()
    }

    /// Whether the handshake finished and the connection has not ended.
    pub fn is_connected(&self) -> bool {
        self.session.connected && self.session.ended.is_none()
    }

    /// How the connection ended, once it has.
    pub fn ended(&self) -> Option<ConnectionError> {
        self.session.ended
    }

    /// Polls, then queues `msg` on `channel` (reliable, in order) and sends
    /// what it can. `WouldBlock` while the handshake runs or the channel's
    /// window or the peer's credit is full; nothing is buffered beyond the
    /// windows.
    pub fn send(&mut self, channel: u32, msg: &[u8]) -> NbResult<(), S::Error> {
        self.poll()?;
        self.session.try_send(channel, msg)?;
        self.flush()?;
        Ok(())
    }

    /// [`send`](Self::send) until it is queued or `timeout` passes.
    pub fn send_blocking(
        &mut self,
        channel: u32,
        msg: &[u8],
        timeout: Duration,
    ) -> Result<(), Error<S::Error>> {
        self.block(timeout, |c| c.send(channel, msg))
    }

    /// Polls, then reads the next complete message of any channel into
    /// `buf` (channels in turn): `(channel, length)`. Messages that arrived
    /// before the connection ended are still read; then its ending is
    /// returned.
    pub fn recv(&mut self, buf: &mut [u8]) -> NbResult<(u32, usize), S::Error> {
        self.poll()?;
        self.session.try_recv(buf)
    }

    /// [`recv`](Self::recv) until a message arrives or `timeout` passes.
    pub fn recv_blocking(
        &mut self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<(u32, usize), Error<S::Error>> {
        self.block(timeout, |c| c.recv(buf))
    }

    /// Polls, then queues an unreliable datagram, sent once in the next
    /// packet. [`Error::QueueFull`] rather than wait; `WouldBlock` only
    /// during the handshake.
    pub fn send_datagram(&mut self, data: &[u8]) -> NbResult<(), S::Error> {
        self.poll()?;
        self.session.try_send_datagram(data)?;
        self.flush()?;
        Ok(())
    }

    /// Polls, then takes the oldest datagram received into `buf`.
    pub fn recv_datagram(&mut self, buf: &mut [u8]) -> NbResult<usize, S::Error> {
        self.poll()?;
        self.session.try_recv_datagram(buf)
    }

    /// [`recv_datagram`](Self::recv_datagram) until one arrives or
    /// `timeout` passes.
    pub fn recv_datagram_blocking(
        &mut self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, Error<S::Error>> {
        self.block(timeout, |c| c.recv_datagram(buf))
    }

    /// Closes gracefully: messages already queued are delivered first, then
    /// CLOSE with `code` and `reason` is sent and acknowledged. The first
    /// call starts it; `WouldBlock` until the connection has ended; then
    /// `Ok` if it ended by a close (this one or the peer's), else its
    /// ending (for example a delivery timeout).
    pub fn close(&mut self, code: u32, reason: &str) -> NbResult<(), S::Error> {
        let now = self.clock.now();
        self.session.start_close(now, code, reason);
        self.poll()?;
        self.session.try_closed()
    }

    /// [`close`](Self::close) until done or `timeout` passes (the
    /// connection's own timers bound it too).
    pub fn close_blocking(
        &mut self,
        code: u32,
        reason: &str,
        timeout: Duration,
    ) -> Result<(), Error<S::Error>> {
        self.block(timeout, |c| c.close(code, reason))
    }

    /// The connection's statistics.
    pub fn stats(&self) -> Stats {
        self.session.conn.stats()
    }

    /// The connection, for what the driver does not wrap (the peer's
    /// parameters, the largest message, ...).
    pub fn connection(&self) -> &tern::Connection<B, CH, SENT> {
        &self.session.conn
    }

    /// The server's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The connection's next deadline: a superloop should poll again by
    /// then, or when a datagram arrives.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.session.conn.poll_timeout()
    }

    /// Closes the socket (without a protocol close: call
    /// [`close`](Self::close) first for that) and gives the stack back.
    pub fn release(mut self) -> Result<S, Error<S::Error>> {
        if let Some(socket) = self.socket.take() {
            self.stack.close(socket).map_err(Error::Socket)?;
        }
        Ok(self.stack)
    }
}
