//! What both host tests share: a tern-tokio or tern-smol echo server on
//! loopback, the system clock, the payloads.

#![allow(dead_code)] // each test binary uses part of it

use rand::SeedableRng;
use rand::rngs::{StdRng, SysRng};
use std::net::SocketAddr;
use std::time::Duration;
use tern::{Config, Credentials, Instant};
use tern_nal::Clock;
use tern_tokio::{Endpoint, EndpointConfig};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

/// Bound of every single blocking step in the tests.
pub const STEP: Duration = Duration::from_secs(10);
/// The close code and reason the clients send.
pub const CLOSE_CODE: u32 = 0x1234;
pub const CLOSE_REASON: &str = "tern-nal: done";

/// The host's monotonic clock; idles by sleeping at most a millisecond.
pub struct SysClock(pub std::time::Instant);

impl SysClock {
    pub fn new() -> Self {
        SysClock(std::time::Instant::now())
    }
}

impl Clock for SysClock {
    fn now(&self) -> Instant {
        Instant::from_micros(self.0.elapsed().as_micros() as u64)
    }
    fn idle(&self, until: Instant) {
        let left = until.saturating_duration_since(self.now());
        std::thread::sleep(left.min(Duration::from_millis(1)));
    }
}

pub fn rng() -> StdRng {
    StdRng::try_from_rng(&mut SysRng).expect("OS RNG")
}

/// A message on channel 0, shorter than a packet.
pub const SMALL: &[u8] = b"tern-nal: a short message on channel 0";

/// A message on channel 1, longer than a 512-byte packet: fragmented.
pub fn big() -> Vec<u8> {
    (0..900u32).map(|i| (i * 7 + 3) as u8).collect()
}

/// The datagrams the clients send, each echoed.
pub fn datagrams() -> Vec<Vec<u8>> {
    (0..3u8)
        .map(|i| vec![0xd0 + i; 40 + usize::from(i) * 30])
        .collect()
}

/// Which driver runs the echo server.
#[derive(Clone, Copy, Debug)]
pub enum ServerDriver {
    Tokio,
    Smol,
}

/// A server endpoint of either driver, kept alive by the test.
pub enum ServerEndpoint {
    Tokio(Endpoint),
    Smol(tern_smol::Endpoint),
}

/// A server on 127.0.0.1 (tern-tokio or tern-smol) that echoes every
/// message on its channel and every datagram, and reports how each
/// connection ended.
pub struct EchoServer {
    pub addr: SocketAddr,
    pub public_key: [u8; 32],
    pub endings: mpsc::UnboundedReceiver<tern_tokio::Error>,
    _endpoint: ServerEndpoint,
}

pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The echo server on tern-tokio.
pub fn echo_server(rt: &Runtime) -> EchoServer {
    echo_server_on(rt, ServerDriver::Tokio)
}

/// The two tasks that serve one accepted connection (the same
/// `Connection` type in both drivers): datagram echo and message echo.
fn serve(
    conn: tern_tokio::Connection,
    tx: mpsc::UnboundedSender<tern_tokio::Error>,
) -> (
    impl Future<Output = ()> + Send + 'static,
    impl Future<Output = ()> + Send + 'static,
) {
    let dgrams = conn.clone();
    let datagrams = async move {
        while let Ok(d) = dgrams.recv_datagram().await {
            let _ = dgrams.send_datagram(d).await;
        }
    };
    let messages = async move {
        let ending = loop {
            match conn.recv().await {
                Ok((channel, msg)) => match conn.send(channel, msg).await {
                    Ok(()) => {}
                    Err(tern_tokio::SendError::Closed(e)) => break e,
                    Err(e) => panic!("the echo failed: {e}"),
                },
                Err(e) => break e,
            }
        };
        let _ = tx.send(ending);
    };
    (datagrams, messages)
}

/// The echo server on the chosen driver.
pub fn echo_server_on(rt: &Runtime, driver: ServerDriver) -> EchoServer {
    let key = [0x5a; 32];
    let config = EndpointConfig::server(Config::service(), key);
    let local = "127.0.0.1:0".parse().unwrap();
    let (tx, endings) = mpsc::unbounded_channel();
    let (addr, endpoint) = match driver {
        ServerDriver::Tokio => {
            let _guard = rt.enter();
            let endpoint = Endpoint::bind(local, config).expect("bind the server");
            let server = endpoint.clone();
            rt.spawn(async move {
                while let Some(conn) = server.accept().await {
                    let (datagrams, messages) = serve(conn, tx.clone());
                    tokio::spawn(datagrams);
                    tokio::spawn(messages);
                }
            });
            (endpoint.local_addr(), ServerEndpoint::Tokio(endpoint))
        }
        ServerDriver::Smol => {
            let endpoint = tern_smol::Endpoint::bind(local, config).expect("bind the server");
            let server = endpoint.clone();
            smol::spawn(async move {
                while let Some(conn) = server.accept().await {
                    let (datagrams, messages) = serve(conn, tx.clone());
                    smol::spawn(datagrams).detach();
                    smol::spawn(messages).detach();
                }
            })
            .detach();
            (endpoint.local_addr(), ServerEndpoint::Smol(endpoint))
        }
    };
    EchoServer {
        addr,
        public_key: tern_tokio::public_key(&key),
        endings,
        _endpoint: endpoint,
    }
}

/// The client's IK credentials: a fresh static key, the server's public key.
pub fn credentials(server_public_key: [u8; 32]) -> Credentials {
    let mut private = [0u8; 32];
    rand::Rng::fill_bytes(&mut rng(), &mut private);
    Credentials {
        private_key: Some(private),
        remote_public_key: Some(server_public_key),
        psk: None,
    }
}

/// Config::constrained() with a short handshake timeout, for the
/// wrong-key tests.
pub fn short_handshake() -> Config {
    Config {
        handshake_timeout: Duration::from_secs(2),
        ..Config::constrained()
    }
}

/// How the server saw the connection end: a peer close with our code and
/// reason.
pub async fn expect_peer_close(server: &mut EchoServer) {
    let ending = tokio::time::timeout(STEP, server.endings.recv())
        .await
        .expect("the server saw the connection end")
        .expect("an ending");
    match ending.connection_error() {
        Some(tern::ConnectionError::PeerClosed { code, reason }) => {
            assert_eq!(*code, CLOSE_CODE);
            assert_eq!(reason.as_str(), CLOSE_REASON);
        }
        other => panic!("the server saw {other:?} ({ending}), not our close"),
    }
}
