//! The runtime-independent endpoint handle: every request an application
//! makes of an endpoint, sent to its loop over a channel. Each driver
//! wraps it in its own `Endpoint` with the runtime's constructors.

use crate::command::Command;
use crate::connection::Connection;
use crate::driver::{Driver, DriverEndpoint};
use crate::error::Error;
use crate::runtime::{Timer, Transport};
use futures_channel::oneshot;
use rand::SeedableRng;
use rand::rngs::{StdRng, SysRng};
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tern::Credentials;
use tern::crypto::{CryptoProvider, RustCrypto};
use tern::endpoint::EndpointConfig;
use tern_ring::RingCrypto;
use tracing::Instrument;

/// A handle to an endpoint's loop: a transport serving any number of Tern
/// connections, as a server, a client, or both.
///
/// Cheap to clone. The loop runs while any handle (this or a
/// [`Connection`]) exists: when the last `Endpoint` handle is dropped,
/// connections waiting to be accepted (and new ones) are refused; when
/// every handle is gone, the loop closes what is left gracefully and
/// stops.
#[derive(Clone)]
pub struct Endpoint {
    inner: Arc<Inner>,
}

struct Inner {
    tx: async_channel::Sender<Command>,
    local_addr: SocketAddr,
    /// The static key `connect` authenticates this side with.
    client_creds: Credentials,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.tx.try_send(Command::EndpointDropped);
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
    /// Makes an endpoint over `transport` and `timer`: returns its handle
    /// and the loop, a future the caller spawns on its runtime (the only
    /// owner of the transport, the state machine and the timer).
    ///
    /// The loop's cryptography is [`RingCrypto`] (ring's AEADs, SHA-2 and
    /// HMAC; X25519 and BLAKE2 from RustCrypto), whose output is byte for
    /// byte that of Tern's default provider: peers on either talk to it.
    pub fn start<T: Transport, C: Timer>(
        transport: T,
        timer: C,
        config: EndpointConfig,
    ) -> io::Result<(Endpoint, impl Future<Output = ()> + Send + 'static)> {
        Self::start_with_provider::<T, C, RingCrypto>(transport, timer, config)
    }

    /// Like [`start`](Self::start) with the crypto provider `P`, for
    /// benchmarks comparing providers (for example against
    /// [`tern::crypto::RustCrypto`]); not a stable interface.
    #[doc(hidden)]
    pub fn start_with_provider<T, C, P>(
        transport: T,
        timer: C,
        config: EndpointConfig,
    ) -> io::Result<(Endpoint, impl Future<Output = ()> + Send + 'static)>
    where
        T: Transport,
        C: Timer,
        P: CryptoProvider<Aead: Send> + Clone + Default + Send + 'static,
    {
        let local_addr = transport.local_addr();
        let mut rng = StdRng::try_from_rng(&mut SysRng).map_err(io::Error::other)?;
        let mut client_key = [0u8; 32];
        rand::Rng::fill_bytes(&mut rng, &mut client_key);
        let (tx, rx) = async_channel::unbounded();
        let driver = Driver::new(
            transport,
            timer,
            DriverEndpoint::<P>::new(config),
            rng,
            rx,
            tx.downgrade(),
        );
        let span = tracing::info_span!("tern_endpoint", local = %local_addr);
        let endpoint = Endpoint {
            inner: Arc::new(Inner {
                tx,
                local_addr,
                client_creds: Credentials {
                    private_key: Some(client_key),
                    ..Credentials::default()
                },
            }),
        };
        Ok((endpoint, driver.run().instrument(span)))
    }

    /// The socket's local address.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// The public key `connect` authenticates this endpoint with.
    pub fn client_public_key(&self) -> [u8; 32] {
        let k = self.inner.client_creds.private_key.unwrap_or_default();
        RustCrypto.x25519_base(&k)
    }

    /// Connects to the server at `addr` whose static public key is
    /// `server_public_key`; resolves once the handshake is done.
    pub async fn connect(
        &self,
        addr: SocketAddr,
        server_public_key: [u8; 32],
    ) -> Result<Connection, Error> {
        let mut creds = self.inner.client_creds.clone();
        creds.remote_public_key = Some(server_public_key);
        self.connect_with(addr, creds).await
    }

    /// Like [`connect`](Self::connect) with every key given.
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

    /// The next accepted connection; `None` when the endpoint is shutting
    /// down. Cancel-safe.
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

    /// Closes every connection gracefully, waits for the peers within a
    /// bound, and stops the loop.
    pub async fn shutdown(&self) {
        let (reply, answer) = oneshot::channel();
        if self.send(Command::Shutdown { reply }).is_ok() {
            let _ = answer.await;
        }
    }

    fn send(&self, c: Command) -> Result<(), Error> {
        self.inner.tx.try_send(c).map_err(|_| Error::EndpointClosed)
    }
}
