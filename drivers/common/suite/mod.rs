//! The drivers' test suite, written once for every runtime.
//!
//! `tern-tokio` and `tern-smol` include these files in their tests
//! (`#[path]`): this module, and the test files `udp.rs`, `tcp.rs`,
//! `direct.rs` and `load.rs`, each of which expands to its `#[test]`s for
//! a runtime with its macro (`udp::tests!`, `load::test!`, ...), so that
//! every test runs on both runtimes. A runtime supplies its parts through
//! [`Runtime`] (how a test runs, spawning, sleeping, blocking calls) and
//! its endpoint type through [`Endpoint`] (see [`endpoint!`]), in its
//! crate's `tests/runtime/mod.rs`. Nothing here is built into a driver:
//! it is test code only (not a Cargo target: `tern-driver` builds none of
//! it).
#![allow(dead_code)] // each test binary uses part of it

use bytes::Bytes;
use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};
use tern_driver::{
    Config, Connection, ConnectionError, EndpointConfig, EndpointStats, Error, SendError, code,
    public_key,
};

/// What a test needs of a runtime.
pub trait Runtime: 'static {
    /// The driver's endpoint on this runtime.
    type Endpoint: Endpoint;
    /// A spawned task: its output once it finished; dropping it cancels
    /// the task.
    type Task<T: Send + 'static>: Future<Output = T> + Send + 'static;

    /// Runs `test` to its end on the test's thread (tokio: a
    /// current-thread runtime).
    fn block_on(test: impl Future<Output = ()>);
    /// Runs `test` to its end with worker threads of its own for the
    /// endpoints' tasks (tokio: a multi-thread runtime of two workers).
    fn block_on_threaded(test: impl Future<Output = ()>);
    /// Spawns `task` on the runtime.
    fn spawn<T: Send + 'static>(task: impl Future<Output = T> + Send + 'static) -> Self::Task<T>;
    /// Whether `task` has finished.
    fn is_finished<T: Send + 'static>(task: &Self::Task<T>) -> bool;
    /// Waits for `d` on the runtime's timer.
    fn sleep(d: Duration) -> impl Future<Output = ()> + Send;
    /// Runs the blocking `f` on a thread where it blocks no task.
    fn unblock<T: Send + 'static>(
        f: impl FnOnce() -> T + Send + 'static,
    ) -> impl Future<Output = T> + Send;
}

/// A driver's endpoint: the calls the tests make, named as the drivers'
/// own (implemented by [`endpoint!`]).
pub trait Endpoint: Clone + Send + Sync + Sized + 'static {
    /// `Endpoint::bind`: a UDP endpoint.
    fn bind(addr: SocketAddr, config: EndpointConfig) -> io::Result<Self>;
    /// `Endpoint::client`: a UDP client endpoint.
    fn client(addr: SocketAddr, config: Config) -> io::Result<Self>;
    /// `Endpoint::bind_tcp`: a TCP listener endpoint.
    fn bind_tcp(addr: SocketAddr, config: EndpointConfig) -> io::Result<Self>;
    /// `Endpoint::client_tcp`: a TCP client endpoint.
    fn client_tcp(config: Config) -> io::Result<Self>;
    /// `Endpoint::local_addr`.
    fn local_addr(&self) -> SocketAddr;
    /// `Endpoint::connect`.
    fn connect(
        &self,
        addr: SocketAddr,
        server_public_key: [u8; 32],
    ) -> impl Future<Output = Result<Connection, Error>> + Send;
    /// `Endpoint::accept`.
    fn accept(&self) -> impl Future<Output = Option<Connection>> + Send;
    /// `Endpoint::stats`.
    fn stats(&self) -> impl Future<Output = Result<EndpointStats, Error>> + Send;
    /// `Endpoint::shutdown`.
    fn shutdown(&self) -> impl Future<Output = ()> + Send;
}

/// Implements [`Endpoint`] for a driver's `Endpoint` type by calling its
/// methods of the same names.
macro_rules! endpoint {
    ($ty:ty) => {
        impl $crate::suite::Endpoint for $ty {
            fn bind(
                addr: std::net::SocketAddr,
                config: tern_driver::EndpointConfig,
            ) -> std::io::Result<Self> {
                <$ty>::bind(addr, config)
            }
            fn client(
                addr: std::net::SocketAddr,
                config: tern_driver::Config,
            ) -> std::io::Result<Self> {
                <$ty>::client(addr, config)
            }
            fn bind_tcp(
                addr: std::net::SocketAddr,
                config: tern_driver::EndpointConfig,
            ) -> std::io::Result<Self> {
                <$ty>::bind_tcp(addr, config)
            }
            fn client_tcp(config: tern_driver::Config) -> std::io::Result<Self> {
                <$ty>::client_tcp(config)
            }
            fn local_addr(&self) -> std::net::SocketAddr {
                <$ty>::local_addr(self)
            }
            fn connect(
                &self,
                addr: std::net::SocketAddr,
                server_public_key: [u8; 32],
            ) -> impl std::future::Future<
                Output = Result<tern_driver::Connection, tern_driver::Error>,
            > + Send {
                <$ty>::connect(self, addr, server_public_key)
            }
            fn accept(
                &self,
            ) -> impl std::future::Future<Output = Option<tern_driver::Connection>> + Send {
                <$ty>::accept(self)
            }
            fn stats(
                &self,
            ) -> impl std::future::Future<
                Output = Result<tern_driver::EndpointStats, tern_driver::Error>,
            > + Send {
                <$ty>::stats(self)
            }
            fn shutdown(&self) -> impl std::future::Future<Output = ()> + Send {
                <$ty>::shutdown(self)
            }
        }
    };
}
pub(crate) use endpoint;

/// One `#[test]` per async test function `$name::<$rt>` of module `$m`,
/// run on `$rt` by `$runner` ([`run`], [`run_threaded`] or [`run_load`]).
macro_rules! tests {
    ($rt:ty, $m:ident: $($runner:ident $name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            $crate::suite::$runner::<$rt>($crate::$m::$name::<$rt>());
        }
    )*};
}
pub(crate) use tests;

/// The server's static key in every test.
pub const SERVER_KEY: [u8; 32] = [0x42; 32];
/// No test may take longer than this.
pub const LIMIT: Duration = Duration::from_secs(10);

/// Runs `test` on `R` (on the test's thread), failing it if it takes
/// longer than [`LIMIT`].
pub fn run<R: Runtime>(test: impl Future<Output = ()>) {
    R::block_on(async {
        timeout::<R, _>(LIMIT, test)
            .await
            .expect("test took too long");
    });
}

/// [`run`] with worker threads for the endpoints' tasks.
pub fn run_threaded<R: Runtime>(test: impl Future<Output = ()>) {
    R::block_on_threaded(async {
        timeout::<R, _>(LIMIT, test)
            .await
            .expect("test took too long");
    });
}

/// Runs a load test (bounded by itself) with worker threads for the
/// endpoints' tasks.
pub fn run_load<R: Runtime>(test: impl Future<Output = ()>) {
    R::block_on_threaded(test);
}

/// `fut`'s output, or `Err(())` once `limit` passed (`fut` is dropped).
pub async fn timeout<R: Runtime, T>(
    limit: Duration,
    fut: impl Future<Output = T>,
) -> Result<T, ()> {
    let mut fut = pin!(fut);
    let mut sleep = pin!(R::sleep(limit));
    poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            Poll::Ready(Ok(v))
        } else if sleep.as_mut().poll(cx).is_ready() {
            Poll::Ready(Err(()))
        } else {
            Poll::Pending
        }
    })
    .await
}

/// Polls `fut` once: its output if it was ready, `None` (and `fut`
/// dropped, cancelled) if not.
pub async fn poll_once<F: Future>(fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    poll_fn(|cx| Poll::Ready(poll_once_now(fut.as_mut(), cx))).await
}

/// `fut`'s output if it is ready when first polled or, pending then, once
/// the task was woken and polled again (other tasks may run between, and
/// may wake `fut`); `None` (and `fut` dropped, cancelled) if not. Like a
/// biased `select!` of a yield and `fut`.
pub async fn poll_across_a_yield<F: Future>(fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            return Poll::Ready(None);
        }
        yielded = true;
        cx.waker().wake_by_ref();
        fut.as_mut().poll(cx).map(Some)
    })
    .await
}

/// Lets other tasks run: pending once, woken at once.
pub async fn yield_now() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

/// Both outputs, `a` and `b` polled by the same task.
pub async fn join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (pin!(a), pin!(b));
    let (mut ra, mut rb) = (None, None);
    poll_fn(|cx| {
        if ra.is_none() {
            ra = poll_once_now(a.as_mut(), cx);
        }
        if rb.is_none() {
            rb = poll_once_now(b.as_mut(), cx);
        }
        match (ra.take(), rb.take()) {
            (Some(x), Some(y)) => Poll::Ready((x, y)),
            (x, y) => {
                (ra, rb) = (x, y);
                Poll::Pending
            }
        }
    })
    .await
}

fn poll_once_now<F: Future>(
    fut: std::pin::Pin<&mut F>,
    cx: &mut std::task::Context<'_>,
) -> Option<F::Output> {
    match fut.poll(cx) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

/// Any port on 127.0.0.1.
pub fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Short timeouts, so the failure paths finish quickly.
pub fn config() -> Config {
    Config {
        idle_timeout: Duration::from_millis(1500),
        keepalive: Some(Duration::from_millis(300)),
        handshake_timeout: Duration::from_millis(1500),
        ..Config::service()
    }
}

/// Small windows, so that a sender fills them quickly.
pub fn small_windows() -> Config {
    Config {
        channel_window: 8 * 1024,
        connection_window: 16 * 1024,
        max_message_size: 4 * 1024,
        ..config()
    }
}

/// UDP or TCP.
#[derive(Clone, Copy, Debug)]
pub enum Net {
    /// `Endpoint::bind` and `Endpoint::client`.
    Udp,
    /// `Endpoint::bind_tcp` and `Endpoint::client_tcp`.
    Tcp,
}

/// A server endpoint with [`SERVER_KEY`] on `net`.
pub fn server<R: Runtime>(net: Net, config: Config) -> R::Endpoint {
    let config = EndpointConfig::server(config, SERVER_KEY);
    match net {
        Net::Udp => R::Endpoint::bind(loopback(), config),
        Net::Tcp => R::Endpoint::bind_tcp(loopback(), config),
    }
    .unwrap()
}

/// A client endpoint on `net`.
pub fn client<R: Runtime>(net: Net, config: Config) -> R::Endpoint {
    match net {
        Net::Udp => R::Endpoint::client(loopback(), config),
        Net::Tcp => R::Endpoint::client_tcp(config),
    }
    .unwrap()
}

/// A connection from a new client endpoint to `server`.
pub async fn connect<R: Runtime>(net: Net, server: &R::Endpoint, config: Config) -> Connection {
    client::<R>(net, config)
        .connect(server.local_addr(), public_key(&SERVER_KEY))
        .await
        .unwrap()
}

/// Echoes every message on its channel and every datagram until the
/// connection ends; returns how it ended.
pub async fn echo<R: Runtime>(conn: Connection) -> Error {
    let c2 = conn.clone();
    let datagrams = R::spawn(async move {
        while let Ok(d) = c2.recv_datagram().await {
            let _ = c2.send_datagram(d).await;
        }
    });
    let end = loop {
        match conn.recv().await {
            Ok((ch, msg)) => {
                if let Err(e) = conn.send(ch, msg).await {
                    break match e {
                        SendError::Closed(e) => e,
                        e => panic!("echo send failed: {e}"),
                    };
                }
            }
            Err(e) => break e,
        }
    };
    drop(datagrams);
    end
}

/// A test of both transports: `send` waits while nobody reads, every message arrives once the reader
/// reads, and a cancelled send does not block the next one, over `net`.
pub async fn send_waits_for_a_reader_on<R: Runtime>(net: Net) {
    // Small windows so that the sender fills them quickly.
    let small = small_windows();
    let server = server::<R>(net, small.clone());
    let conn = connect::<R>(net, &server, small.clone()).await;
    let sc = server.accept().await.unwrap();

    const N: usize = 60;
    let queued = Arc::new(AtomicUsize::new(0));
    let q2 = queued.clone();
    let c2 = conn.clone();
    let sender = R::spawn(async move {
        for i in 0..N {
            c2.send(0, vec![i as u8; 1000]).await.unwrap();
            q2.fetch_add(1, Ordering::SeqCst);
        }
    });

    // Nobody reads: the sender stops once the windows are full.
    R::sleep(Duration::from_millis(400)).await;
    let stalled = queued.load(Ordering::SeqCst);
    assert!(stalled < N, "send never waited ({stalled} of {N} queued)");
    assert!(stalled >= 8, "the windows should take some ({stalled})");
    R::sleep(Duration::from_millis(200)).await;
    assert_eq!(queued.load(Ordering::SeqCst), stalled, "still waiting");

    // The reader reads: every message arrives, in order, and the
    // sender finishes.
    for i in 0..N {
        let m = sc.recv_on(0).await.unwrap();
        assert_eq!(m, Bytes::from(vec![i as u8; 1000]), "message {i}");
    }
    sender.await;
    assert_eq!(queued.load(Ordering::SeqCst), N);

    // A cancelled send does not block the channel for the next one.
    let blocked = fill::<R>(&conn, 0, Duration::from_millis(100), |_| vec![1u8; 1000]).await;
    for _ in 0..blocked {
        sc.recv_on(0).await.unwrap();
    }
    conn.send(0, &b"after"[..]).await.unwrap();
    assert_eq!(&sc.recv_on(0).await.unwrap()[..], b"after");
    conn.close(code::NO_ERROR, "").await.unwrap();
}

/// A test of both transports: a client with the wrong key for the server
/// never connects over `net`, and the server accepts nothing; the server
/// and the client.
pub async fn wrong_server_key<R: Runtime>(net: Net) -> (R::Endpoint, R::Endpoint) {
    let server = server::<R>(net, config());
    let client = client::<R>(net, config());
    let e = client
        .connect(server.local_addr(), public_key(&[9; 32]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Closed(ConnectionError::HandshakeTimeout | ConnectionError::HandshakeFailed(_))
        ),
        "{e:?}"
    );
    assert!(server.stats().await.unwrap().core.accepted == 0);
    (server, client)
}

/// Nothing listens at `addr`: a handshake from `client` times out, within
/// the handshake timeout of [`config`] and some slack.
pub async fn nothing_listens<R: Runtime>(client: &R::Endpoint, addr: SocketAddr) {
    let start = Instant::now();
    let e = client
        .connect(addr, public_key(&SERVER_KEY))
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Closed(ConnectionError::HandshakeTimeout)),
        "{e:?}"
    );
    assert!(start.elapsed() < Duration::from_millis(2500));
}

/// Sends `message(n)` for n = 0, 1, ... on `channel` until a send waits
/// longer than `wait` (it is cancelled: the windows are full); how many
/// went.
pub async fn fill<R: Runtime>(
    conn: &Connection,
    channel: u32,
    wait: Duration,
    message: impl Fn(u32) -> Vec<u8>,
) -> u32 {
    let mut queued = 0;
    loop {
        match timeout::<R, _>(wait, conn.send(channel, message(queued))).await {
            Ok(r) => {
                r.unwrap();
                queued += 1;
            }
            Err(()) => return queued,
        }
        assert!(queued < 100, "the window never filled");
    }
}

/// `conn`'s peer went silent: the connection ends in an idle timeout,
/// within the idle timeout of [`config`] and some slack, and says so on
/// every later call.
pub async fn ends_in_idle_timeout(conn: &Connection) {
    let start = Instant::now();
    let end = conn.recv().await.unwrap_err();
    assert!(
        matches!(end, Error::Closed(ConnectionError::IdleTimeout)),
        "{end:?}"
    );
    let took = start.elapsed();
    assert!(took <= Duration::from_millis(2500), "took {took:?}");
    assert!(matches!(
        conn.send(0, &b"x"[..]).await,
        Err(SendError::Closed(Error::Closed(
            ConnectionError::IdleTimeout
        )))
    ));
}

/// The code and reason of a close by the peer.
pub fn peer_closed(e: &Error) -> Option<(u32, String)> {
    match e {
        Error::Closed(ConnectionError::PeerClosed { code, reason }) => {
            Some((*code, reason.as_str().to_owned()))
        }
        _ => None,
    }
}
