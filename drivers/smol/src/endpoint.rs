//! The application's handle to an endpoint: a UDP socket and every
//! connection on it.

use crate::runtime::{SmolTcp, SmolTimer, SmolUdp};
use crate::{Connection, EndpointStats, Error};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use tern::Config;
use tern::Credentials;
use tern::endpoint::EndpointConfig;
use tern_driver::{TcpTransport, UdpTransport};

/// A UDP socket serving any number of Tern connections, as a server, a
/// client, or both.
///
/// One smol task per endpoint waits for the socket and the timer and
/// drives every connection; the state it drives (the sans-IO state
/// machine, [`tern::ServiceEndpoint`], the socket, the timer) is shared
/// under one lock with the [`Endpoint`] and [`Connection`] handles, which
/// send and receive from their own tasks.
/// Handles are cheap to clone. The task runs while any handle exists: a
/// client may drop its `Endpoint` and keep using its `Connection`. When
/// the last `Endpoint` handle is dropped, connections waiting to be
/// accepted (and new ones) are refused; when every handle is gone, the
/// task closes what is left gracefully and stops.
#[derive(Clone)]
pub struct Endpoint {
    inner: tern_driver::Endpoint,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl Endpoint {
    /// Binds a UDP socket to `addr` and starts the endpoint's task. With
    /// server credentials in `config` (see [`EndpointConfig::server`]) it
    /// accepts connections; it can always [`connect`](Self::connect).
    ///
    /// The endpoint's task runs on smol's global executor; the handles
    /// work from any executor.
    pub fn bind(addr: SocketAddr, config: EndpointConfig) -> io::Result<Endpoint> {
        Self::from_socket(tern_driver::bind_udp(addr)?, config)
    }

    /// A client endpoint on `bind_addr` (port 0 for any), every
    /// connection using `config`.
    pub fn client(bind_addr: SocketAddr, config: Config) -> io::Result<Endpoint> {
        Self::bind(bind_addr, EndpointConfig::client(config))
    }

    /// Starts an endpoint on an already bound socket.
    pub fn from_socket(
        socket: std::net::UdpSocket,
        config: EndpointConfig,
    ) -> io::Result<Endpoint> {
        socket.set_nonblocking(true)?;
        let transport = UdpTransport::new(SmolUdp(async_io::Async::new(socket)?))?;
        let (inner, driver) = tern_driver::Endpoint::start(transport, SmolTimer::new(), config)?;
        smol::spawn(driver).detach();
        Ok(Endpoint { inner })
    }

    /// Listens for TCP streams on `addr` and starts the endpoint's task:
    /// the same endpoint as [`bind`](Self::bind), with every packet framed
    /// on a stream per peer (`tern::stream`, `spec/tcp.md`). It can also
    /// [`connect`](Self::connect), over TCP.
    pub fn bind_tcp(addr: SocketAddr, config: EndpointConfig) -> io::Result<Endpoint> {
        let listener = tern_driver::bind_tcp(addr)?;
        let local = listener.local_addr()?;
        Self::start_tcp(Some(async_io::Async::new(listener)?), local, config)
    }

    /// A client endpoint whose connections each open a TCP stream to
    /// their server: the TCP counterpart of [`client`](Self::client).
    /// Its [`local_addr`](Self::local_addr) is the unspecified address
    /// (each stream has its own).
    pub fn client_tcp(config: Config) -> io::Result<Endpoint> {
        let local = SocketAddr::from(([0, 0, 0, 0], 0));
        Self::start_tcp(None, local, EndpointConfig::client(config))
    }

    fn start_tcp(
        listener: Option<async_io::Async<std::net::TcpListener>>,
        local: SocketAddr,
        config: EndpointConfig,
    ) -> io::Result<Endpoint> {
        let transport = TcpTransport::<SmolTcp>::new(
            listener,
            local,
            config.max_connections.saturating_mul(2).max(16),
            config.connection.max_packet_size,
            config.connection.handshake_timeout,
        );
        let (inner, driver) = tern_driver::Endpoint::start(transport, SmolTimer::new(), config)?;
        smol::spawn(driver).detach();
        Ok(Endpoint { inner })
    }

    /// The socket's local address.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr()
    }

    /// The public key `connect` authenticates this endpoint with (patterns
    /// IK and XX): a random static key made when the endpoint started. Use
    /// [`connect_with`](Self::connect_with) to present a lasting identity.
    pub fn client_public_key(&self) -> [u8; 32] {
        self.inner.client_public_key()
    }

    /// Connects to the server at `addr` whose static public key is
    /// `server_public_key`, and resolves once the handshake is done: to
    /// the connection, or to the typed reason it failed (handshake timeout,
    /// handshake failure such as a wrong key, version or parameter
    /// mismatch, ...).
    pub async fn connect(
        &self,
        addr: SocketAddr,
        server_public_key: [u8; 32],
    ) -> Result<Connection, Error> {
        self.inner.connect(addr, server_public_key).await
    }

    /// Like [`connect`](Self::connect) with every key given: this side's
    /// static key, the server's, a pre-shared key for the psk patterns.
    pub async fn connect_with(
        &self,
        addr: SocketAddr,
        creds: Credentials,
    ) -> Result<Connection, Error> {
        self.inner.connect_with(addr, creds).await
    }

    /// The next connection a client opened to this endpoint, once its
    /// handshake is done; `None` when the endpoint is shutting down.
    /// Cancel-safe.
    pub async fn accept(&self) -> Option<Connection> {
        self.inner.accept().await
    }

    /// Endpoint counters.
    pub async fn stats(&self) -> Result<EndpointStats, Error> {
        self.inner.stats().await
    }

    /// Closes every connection gracefully (code
    /// [`tern::connection::code::SHUTDOWN`]; connections already closing
    /// keep their code), waits until the peers acknowledged, bounded by
    /// the idle timeout, and stops the endpoint. Pending `accept` calls
    /// return `None`; calls on its connections return their close error,
    /// then [`Error::EndpointClosed`].
    pub async fn shutdown(&self) {
        self.inner.shutdown().await
    }
}
