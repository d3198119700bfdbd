//! The application's handle to an endpoint: a UDP socket and every
//! connection on it.

use crate::command::Command;
use crate::connection::Connection;
use crate::driver::Driver;
use crate::error::Error;
use rand::SeedableRng;
use rand::rngs::{StdRng, SysRng};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tern::crypto::{CryptoProvider, RustCrypto};
use tern::endpoint::EndpointConfig;
use tern::{Config, Credentials, ServiceEndpoint};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

/// Kernel buffer asked for each way on sockets the endpoint binds.
const SOCKET_BUFFER: usize = 2 * 1024 * 1024;

/// A UDP socket serving any number of Tern connections, as a server, a
/// client, or both.
///
/// One tokio task per endpoint owns the socket, the sans-IO state machine
/// ([`tern::ServiceEndpoint`]) and its timer, and drives every connection;
/// [`Endpoint`] and [`Connection`] handles talk to it over a channel.
/// Handles are cheap to clone. The task runs while any handle exists: a
/// client may drop its `Endpoint` and keep using its `Connection`. When
/// the last `Endpoint` handle is dropped, connections waiting to be
/// accepted (and new ones) are refused; when every handle is gone, the
/// task closes what is left gracefully and stops.
#[derive(Clone)]
pub struct Endpoint {
    inner: Arc<Inner>,
}

struct Inner {
    tx: mpsc::UnboundedSender<Command>,
    local_addr: SocketAddr,
    /// The static key `connect` authenticates this side with.
    client_creds: Credentials,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.tx.send(Command::EndpointDropped);
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("local_addr", &self.inner.local_addr)
            .finish()
    }
}

/// Endpoint counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndpointStats {
    /// The state machine's counters: accepted, refused, dropped by reason.
    pub core: tern::endpoint::EndpointStats,
    /// Connections held now (handshaking, open or closing).
    pub connections: usize,
    /// The socket's address.
    pub local_addr: SocketAddr,
}

impl Endpoint {
    /// Binds a UDP socket to `addr` and starts the endpoint's task. With
    /// server credentials in `config` (see [`EndpointConfig::server`]) it
    /// accepts connections; it can always [`connect`](Self::connect).
    ///
    /// Must be called within a tokio runtime (with I/O and time enabled).
    pub fn bind(addr: SocketAddr, config: EndpointConfig) -> io::Result<Endpoint> {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )?;
        if addr.is_ipv6() {
            // Dual-stack where the system allows it.
            let _ = socket.set_only_v6(false);
        }
        // Room for bursts (many handshakes at once): a short kernel buffer
        // drops datagrams that the protocol must then recover. Best effort:
        // the system caps it (net.core.rmem_max).
        let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
        let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
        socket.bind(&addr.into())?;
        Self::from_socket(socket.into(), config)
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
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| io::Error::other(format!("tern-tokio needs a tokio runtime: {e}")))?;
        socket.set_nonblocking(true)?;
        let socket = {
            let _guard = runtime.enter();
            crate::socket::Socket::new(tokio::net::UdpSocket::from_std(socket)?)?
        };
        let local_addr = socket.local_addr()?;
        let mut rng = StdRng::try_from_rng(&mut SysRng).map_err(io::Error::other)?;
        let mut client_key = [0u8; 32];
        rand::Rng::fill_bytes(&mut rng, &mut client_key);
        let (tx, rx) = mpsc::unbounded_channel();
        let driver = Driver::new(
            socket,
            ServiceEndpoint::new(config),
            rng,
            rx,
            tx.downgrade(),
        )?;
        let span = tracing::info_span!("tern_endpoint", local = %local_addr);
        runtime.spawn(driver.run().instrument(span));
        Ok(Endpoint {
            inner: Arc::new(Inner {
                tx,
                local_addr,
                client_creds: Credentials {
                    private_key: Some(client_key),
                    ..Credentials::default()
                },
            }),
        })
    }

    /// The socket's local address.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// The public key `connect` authenticates this endpoint with (patterns
    /// IK and XX): a random static key made when the endpoint started. Use
    /// [`connect_with`](Self::connect_with) to present a lasting identity.
    pub fn client_public_key(&self) -> [u8; 32] {
        let k = self.inner.client_creds.private_key.unwrap_or_default();
        RustCrypto.x25519_base(&k)
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
        let mut creds = self.inner.client_creds.clone();
        creds.remote_public_key = Some(server_public_key);
        self.connect_with(addr, creds).await
    }

    /// Like [`connect`](Self::connect) with every key given: this side's
    /// static key, the server's, a pre-shared key for the psk patterns.
    pub async fn connect_with(
        &self,
        addr: SocketAddr,
        creds: Credentials,
    ) -> Result<Connection, Error> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Connect {
            peer: addr,
            creds: Box::new(creds),
            reply,
        })?;
        answer.await.map_err(|_| Error::EndpointClosed)?
    }

    /// The next connection a client opened to this endpoint, once its
    /// handshake is done; `None` when the endpoint is shutting down.
    /// Cancel-safe.
    pub async fn accept(&self) -> Option<Connection> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Accept { reply }).ok()?;
        answer.await.ok().flatten()
    }

    /// Endpoint counters.
    pub async fn stats(&self) -> Result<EndpointStats, Error> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Stats { reply })?;
        answer.await.map_err(|_| Error::EndpointClosed)
    }

    /// Closes every connection gracefully (code
    /// [`tern::connection::code::SHUTDOWN`]; connections already closing
    /// keep their code), waits until the peers acknowledged, bounded by
    /// the idle timeout, and stops the endpoint. Pending `accept` calls
    /// return `None`; calls on its connections return their close error,
    /// then [`Error::EndpointClosed`].
    pub async fn shutdown(&self) {
        let (reply, answer) = oneshot::channel();
        if self.send(Command::Shutdown { reply }).is_ok() {
            let _ = answer.await;
        }
    }

    fn send(&self, c: Command) -> Result<(), Error> {
        self.inner.tx.send(c).map_err(|_| Error::EndpointClosed)
    }
}
