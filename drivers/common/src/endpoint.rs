//! The runtime-independent endpoint handle: every request an application
//! makes of an endpoint, done on the endpoint's shared state. Each driver
//! wraps it in its own `Endpoint` with the runtime's constructors.

use crate::connection::Connection;
use crate::driver::{ConnKey, DriverEndpoint, Ops, Shared, Task};
use crate::error::Error;
use crate::runtime::{Timer, Transport};
use rand::SeedableRng;
use rand::rngs::{StdRng, SysRng};
use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tern::Credentials;
use tern::crypto::{CryptoProvider, RustCrypto};
use tern::endpoint::EndpointConfig;
use tern_ring::RingCrypto;

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
    ops: Arc<dyn Ops>,
    local_addr: SocketAddr,
    /// The static key `connect` authenticates this side with.
    client_creds: Credentials,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.ops.endpoint_dropped();
    }
}

/// A pending `connect`: dropped before the handshake finished, it closes
/// the connection.
struct Connecting<'a> {
    ops: &'a Arc<dyn Ops>,
    key: ConnKey,
    token: Option<u64>,
    done: bool,
}

impl Drop for Connecting<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.ops
                .unregister(self.key, crate::conn_state::Wait::Connect, &mut self.token);
            self.ops.release(self.key, false);
        }
    }
}

/// A waiting `accept` or `shutdown`: dropping it removes its waker.
struct EndpointWait<'a> {
    ops: &'a Arc<dyn Ops>,
    shutdown: bool,
    token: Option<u64>,
}

impl Drop for EndpointWait<'_> {
    fn drop(&mut self) {
        if self.token.is_some() {
            if self.shutdown {
                self.ops.unregister_shutdown(&mut self.token);
            } else {
                self.ops.unregister_accept(&mut self.token);
            }
        }
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
        let span = tracing::info_span!("tern_endpoint", local = %local_addr);
        let shared = Shared::new(
            transport,
            timer,
            DriverEndpoint::<P>::new(config),
            rng,
            span,
        );
        let task = Task::new(shared.clone());
        let endpoint = Endpoint {
            inner: Arc::new(Inner {
                ops: shared,
                local_addr,
                client_creds: Credentials {
                    private_key: Some(client_key),
                    ..Credentials::default()
                },
            }),
        };
        Ok((endpoint, task))
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
        let ops = &self.inner.ops;
        let key = ops.connect(addr, &creds)?;
        let mut c = Connecting {
            ops,
            key,
            token: None,
            done: false,
        };
        let r = poll_fn(|cx| ops.poll_connected(key, cx, &mut c.token)).await;
        c.done = true;
        let peer = r?;
        Ok(Connection::new(
            key,
            peer,
            tern::Side::Client,
            self.inner.ops.clone(),
        ))
    }

    /// The next accepted connection; `None` when the endpoint is shutting
    /// down. Cancel-safe.
    pub async fn accept(&self) -> Option<Connection> {
        let ops = &self.inner.ops;
        let mut w = EndpointWait {
            ops,
            shutdown: false,
            token: None,
        };
        let (key, peer) = poll_fn(|cx| ops.poll_accept(cx, &mut w.token)).await?;
        Some(Connection::new(
            key,
            peer,
            tern::Side::Server,
            self.inner.ops.clone(),
        ))
    }

    /// Endpoint counters.
    pub async fn stats(&self) -> Result<EndpointStats, Error> {
        self.inner.ops.endpoint_stats()
    }

    /// Closes every connection gracefully, waits for the peers within a
    /// bound, and stops the loop.
    pub async fn shutdown(&self) {
        let ops = &self.inner.ops;
        let mut w = EndpointWait {
            ops,
            shutdown: true,
            token: None,
        };
        let mut started = false;
        poll_fn(|cx| ops.poll_shutdown(cx, &mut started, &mut w.token)).await
    }
}
