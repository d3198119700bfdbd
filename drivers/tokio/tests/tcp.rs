//! tern-tokio over TCP (`Endpoint::bind_tcp` / `client_tcp`): the same
//! behaviour as over UDP (backpressure, typed errors, shutdown), and
//! hostile streams: a framing error or a stream cut inside a frame closes
//! that stream at once; a well-framed packet that is not Tern is dropped,
//! counted, and the stream stays.

use bytes::Bytes;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tern_tokio::{
    Config, Connection, ConnectionError, Endpoint, EndpointConfig, Error, code, public_key,
};
use tokio::time::timeout;

const SERVER_KEY: [u8; 32] = [0x43; 32];
const LIMIT: Duration = Duration::from_secs(10);

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn config() -> Config {
    Config {
        idle_timeout: Duration::from_millis(1500),
        keepalive: Some(Duration::from_millis(300)),
        handshake_timeout: Duration::from_millis(1500),
        ..Config::service()
    }
}

fn server(config: Config) -> Endpoint {
    Endpoint::bind_tcp(loopback(), EndpointConfig::server(config, SERVER_KEY)).unwrap()
}

async fn connect(server: &Endpoint, config: Config) -> Connection {
    let client = Endpoint::client_tcp(config).unwrap();
    client
        .connect(server.local_addr(), public_key(&SERVER_KEY))
        .await
        .unwrap()
}

#[tokio::test]
async fn messages_datagrams_and_close_over_tcp() {
    timeout(LIMIT, async {
        let server = server(config());
        let conn = connect(&server, config()).await;
        let sc = server.accept().await.unwrap();
        let big: Vec<u8> = (0..40_000).map(|i| (i % 253) as u8).collect();
        conn.send(0, big.clone()).await.unwrap();
        conn.send(2, &b"small"[..]).await.unwrap();
        let mut got = [sc.recv().await.unwrap(), sc.recv().await.unwrap()];
        got.sort_by_key(|m| m.0);
        assert_eq!(got[0], (0, Bytes::from(big)));
        assert_eq!(got[1], (2, Bytes::from_static(b"small")));
        sc.send_datagram(&b"dgram"[..]).await.unwrap();
        assert_eq!(&conn.recv_datagram().await.unwrap()[..], b"dgram");
        conn.close(code::NO_ERROR, "done").await.unwrap();
        let end = sc.recv().await.unwrap_err();
        assert!(end.is_clean_close(), "{end:?}");
        server.shutdown().await;
    })
    .await
    .expect("test took too long");
}

#[tokio::test]
async fn send_waits_for_a_reader_over_tcp() {
    timeout(LIMIT, async {
        let small = Config {
            channel_window: 8 * 1024,
            connection_window: 16 * 1024,
            max_message_size: 4 * 1024,
            ..config()
        };
        let server = server(small.clone());
        let conn = connect(&server, small).await;
        let sc = server.accept().await.unwrap();
        const N: usize = 60;
        let queued = Arc::new(AtomicUsize::new(0));
        let q2 = queued.clone();
        let sender = tokio::spawn(async move {
            for i in 0..N {
                conn.send(0, vec![i as u8; 1000]).await.unwrap();
                q2.fetch_add(1, Ordering::SeqCst);
            }
            conn
        });
        tokio::time::sleep(Duration::from_millis(400)).await;
        let stalled = queued.load(Ordering::SeqCst);
        assert!(stalled < N, "send never waited ({stalled} of {N} queued)");
        for i in 0..N {
            assert_eq!(
                sc.recv_on(0).await.unwrap(),
                Bytes::from(vec![i as u8; 1000])
            );
        }
        let conn = sender.await.unwrap();
        conn.close(code::NO_ERROR, "").await.unwrap();
    })
    .await
    .expect("test took too long");
}

#[tokio::test]
async fn wrong_key_and_no_listener_are_typed_errors() {
    timeout(LIMIT, async {
        let server = server(config());
        let client = Endpoint::client_tcp(config()).unwrap();
        let e = client
            .connect(server.local_addr(), public_key(&[9; 32]))
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::Closed(
                    ConnectionError::HandshakeTimeout | ConnectionError::HandshakeFailed(_)
                )
            ),
            "{e:?}"
        );
        // Nothing listens: every stream is refused, the handshake times out.
        let addr = server.local_addr();
        server.shutdown().await;
        drop(server);
        let e = client
            .connect(addr, public_key(&SERVER_KEY))
            .await
            .unwrap_err();
        assert!(
            matches!(e, Error::Closed(ConnectionError::HandshakeTimeout)),
            "{e:?}"
        );
    })
    .await
    .expect("test took too long");
}

/// Writes `bytes` on a raw stream to the server; returns whether the
/// server closed the stream within a second.
fn closed_after(addr: SocketAddr, bytes: &[u8], half_close: bool) -> bool {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(bytes).unwrap();
    if half_close {
        s.shutdown(std::net::Shutdown::Write).unwrap();
    }
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => true,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => true,
        Ok(n) => panic!("the server answered {n} bytes to garbage"),
        Err(_) => false, // timed out: still open
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_streams() {
    let server = server(config());
    let addr = server.local_addr();
    let before = server.stats().await.unwrap().core.dropped.total();

    // A zero length, and a length above max_packet_size (1452): closed at
    // once, without waiting for a packet.
    let r = tokio::task::spawn_blocking(move || {
        (
            closed_after(addr, &[0, 0, 1, 2, 3], false),
            closed_after(addr, &[0xff, 0xff], false),
            closed_after(addr, &[0x05, 0xad], false),
            // A stream cut inside a frame.
            closed_after(addr, &[0x00, 0x30, 1, 2, 3], true),
            // A frame that is no Tern packet: dropped, the stream stays.
            closed_after(addr, &[&[0x00, 0x32][..], &[0x5a; 50]].concat(), false),
        )
    })
    .await
    .unwrap();
    assert_eq!(r, (true, true, true, true, false));
    let after = server.stats().await.unwrap().core.dropped.total();
    assert!(after > before, "the non-Tern packet was counted as dropped");

    // The server still serves.
    timeout(LIMIT, async {
        let conn = connect(&server, config()).await;
        let sc = server.accept().await.unwrap();
        conn.send(0, &b"still here"[..]).await.unwrap();
        assert_eq!(&sc.recv().await.unwrap().1[..], b"still here");
        conn.close(code::NO_ERROR, "").await.unwrap();
    })
    .await
    .expect("test took too long");
}

/// A stream that sends nothing is closed once the handshake timeout
/// (1.5 s here) passed without a packet.
#[test]
fn a_silent_stream_is_closed_after_the_handshake_timeout() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(async { server(config()) });
    let mut s = TcpStream::connect(server.local_addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let start = std::time::Instant::now();
    let mut buf = [0u8; 8];
    let r = s.read(&mut buf);
    let took = start.elapsed();
    assert!(
        matches!(&r, Ok(0))
            || matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "{r:?}"
    );
    assert!(
        took >= Duration::from_millis(1200),
        "closed too early: {took:?}"
    );
    assert!(
        took < Duration::from_millis(4000),
        "closed too late: {took:?}"
    );
    drop(server);
}
