//! What the blocking and the async client share: the connection, how its
//! events end it, and the application calls mapped to `nb` results. No
//! socket or timer here; the clients do that plumbing.

use crate::Error;
use core::net::SocketAddr;
use tern::channel::SendBlocked;
use tern::connection::SendError;
use tern::rand_core::CryptoRng;
use tern::storage::ByteStore;
use tern::{Config, Connection, ConnectionError, Credentials, Event, Instant};

pub(crate) struct Session<B: ByteStore, const CH: usize, const SENT: usize> {
    pub(crate) conn: Connection<B, CH, SENT>,
    /// The `Connected` event arrived.
    pub(crate) connected: bool,
    /// The `Closed` event arrived: how the connection ended.
    pub(crate) ended: Option<ConnectionError>,
}

impl<B: ByteStore, const CH: usize, const SENT: usize> Session<B, CH, SENT> {
    /// Starts a client handshake with `peer`. `buf` is the driver's packet
    /// buffer size, checked against the configured packet size.
    pub(crate) fn start<R: CryptoRng + ?Sized, E>(
        config: Config,
        creds: &Credentials,
        now: Instant,
        peer: SocketAddr,
        rng: &mut R,
        buf: usize,
    ) -> Result<Self, Error<E>> {
        let needed = usize::from(config.max_packet_size);
        if buf < needed {
            return Err(Error::BufferTooSmall { needed });
        }
        let local_id = loop {
            let v = rng.next_u32();
            if v != 0 {
                break v;
            }
        };
        let conn =
            Connection::connect(config, creds, now, local_id, peer, rng).map_err(Error::Setup)?;
        Ok(Session {
            conn,
            connected: false,
            ended: None,
        })
    }

    /// A datagram arrived. What the connection refuses is dropped and
    /// counted in its statistics.
    pub(crate) fn handle(&mut self, now: Instant, from: SocketAddr, data: &mut [u8]) {
        let _ = self.conn.handle(now, from, data);
    }

    /// Runs the connection's timers if its deadline has passed.
    pub(crate) fn timers(&mut self, now: Instant) {
        if self.conn.poll_timeout().is_some_and(|t| t <= now) {
            self.conn.handle_timeout(now);
        }
    }

    /// Takes every pending event; only the connection's start and end
    /// matter to the driver (messages and datagrams are read from their
    /// queues directly).
    pub(crate) fn drain_events(&mut self) {
        while let Some(e) = self.conn.poll_event() {
            match e {
                Event::Connected => self.connected = true,
                Event::Closed(why) => self.ended = Some(why),
                _ => {}
            }
        }
    }

    /// The ending as an error, or `WouldBlock` while the connection lives.
    fn ended_or_block<T, E>(&self) -> nb::Result<T, Error<E>> {
        match self.ended {
            Some(why) => Err(nb::Error::Other(Error::Closed(why))),
            None => Err(nb::Error::WouldBlock),
        }
    }

    pub(crate) fn try_connected<E>(&self) -> nb::Result<(), Error<E>> {
        if self.connected && self.ended.is_none() {
            return Ok(());
        }
        self.ended_or_block()
    }

    fn send_error<T, E>(&self, e: SendError, datagram: bool) -> nb::Result<T, Error<E>> {
        Err(nb::Error::Other(match e {
            SendError::WouldBlock(SendBlocked::Queue) if datagram => Error::QueueFull,
            SendError::WouldBlock(_) => return Err(nb::Error::WouldBlock),
            SendError::TooLarge { max } => Error::TooLarge { max },
            SendError::Empty => Error::Empty,
            SendError::InvalidChannel => Error::InvalidChannel,
            SendError::NotConnected if !self.connected => return self.ended_or_block(),
            SendError::NotConnected => match self.ended {
                Some(why) => Error::Closed(why),
                None => Error::NotConnected,
            },
        }))
    }

    pub(crate) fn try_send<E>(&mut self, channel: u32, msg: &[u8]) -> nb::Result<(), Error<E>> {
        match self.conn.send(channel, msg) {
            Ok(()) => Ok(()),
            Err(e) => self.send_error(e, false),
        }
    }

    pub(crate) fn try_send_datagram<E>(&mut self, data: &[u8]) -> nb::Result<(), Error<E>> {
        match self.conn.send_datagram(data) {
            Ok(()) => Ok(()),
            Err(e) => self.send_error(e, true),
        }
    }

    pub(crate) fn try_recv<E>(&mut self, buf: &mut [u8]) -> nb::Result<(u32, usize), Error<E>> {
        match self.conn.recv_any(buf) {
            Ok(Some(got)) => Ok(got),
            Ok(None) => self.ended_or_block(),
            Err(needed) => Err(nb::Error::Other(Error::BufferTooSmall { needed })),
        }
    }

    pub(crate) fn try_recv_datagram<E>(&mut self, buf: &mut [u8]) -> nb::Result<usize, Error<E>> {
        match self.conn.recv_datagram(buf) {
            Ok(Some(n)) => Ok(n),
            Ok(None) => self.ended_or_block(),
            Err(needed) => Err(nb::Error::Other(Error::BufferTooSmall { needed })),
        }
    }

    /// Starts a graceful close (again: no effect once started).
    pub(crate) fn start_close(&mut self, now: Instant, code: u32, reason: &str) {
        self.conn.close(now, code, reason);
    }

    /// `Ok` once the connection ended by a close (ours or the peer's), the
    /// ending if it ended otherwise, else `WouldBlock`.
    pub(crate) fn try_closed<E>(&self) -> nb::Result<(), Error<E>> {
        match self.ended {
            Some(ConnectionError::LocallyClosed { .. } | ConnectionError::PeerClosed { .. }) => {
                Ok(())
            }
            Some(why) => Err(nb::Error::Other(Error::Closed(why))),
            None => Err(nb::Error::WouldBlock),
        }
    }
}
