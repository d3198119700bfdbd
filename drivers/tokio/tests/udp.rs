//! A client and a server over 127.0.0.1: messages on several channels,
//! datagrams, backpressure, closing, and the typed errors of every ending.

use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tern_tokio::{
    Config, Connection, ConnectionError, Endpoint, EndpointConfig, Error, SendError, code,
    public_key,
};
use tokio::time::{Instant, timeout};

const SERVER_KEY: [u8; 32] = [0x42; 32];
/// No test may take longer than this.
const LIMIT: Duration = Duration::from_secs(10);

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Short timeouts, so the failure paths finish quickly.
fn config() -> Config {
    Config {
        idle_timeout: Duration::from_millis(1500),
        keepalive: Some(Duration::from_millis(300)),
        handshake_timeout: Duration::from_millis(1500),
        ..Config::service()
    }
}

fn server(config: Config) -> Endpoint {
    Endpoint::bind(loopback(), EndpointConfig::server(config, SERVER_KEY)).unwrap()
}

async fn connect(server: &Endpoint, config: Config) -> Connection {
    let client = Endpoint::client(loopback(), config).unwrap();
    client
        .connect(server.local_addr(), public_key(&SERVER_KEY))
        .await
        .unwrap()
}

/// Echoes every message on its channel and every datagram until the
/// connection ends; returns how it ended.
async fn echo(conn: Connection) -> Error {
    let c2 = conn.clone();
    let datagrams = tokio::spawn(async move {
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
    datagrams.abort();
    end
}

fn peer_closed(e: &Error) -> Option<(u32, String)> {
    match e {
        Error::Closed(ConnectionError::PeerClosed { code, reason }) => {
            Some((*code, reason.as_str().to_owned()))
        }
        _ => None,
    }
}

#[tokio::test]
async fn channels_datagrams_and_clean_close() {
    timeout(LIMIT, async {
        let server = server(config());
        let s2 = server.clone();
        let served = tokio::spawn(async move {
            let conn = s2.accept().await.expect("a connection");
            let first = conn.accept_channel().await.unwrap();
            let end = echo(conn.clone()).await;
            (first, end, conn.stats().await.unwrap())
        });

        let conn = connect(&server, config()).await;
        let channels = [
            conn.open_channel().await.unwrap(),
            conn.open_channel().await.unwrap(),
            conn.open_channel().await.unwrap(),
        ];
        assert_eq!(channels, [0, 2, 4], "client channels are even");

        // A few messages per channel, one of them far larger than a packet.
        let mut sent = Vec::new();
        for (i, &ch) in channels.iter().enumerate() {
            for k in 0..4u8 {
                let len = if i == 2 && k == 1 {
                    20 * 1024
                } else {
                    10 + usize::from(k)
                };
                let msg: Vec<u8> = (0..len).map(|j| (j as u8) ^ k ^ (ch as u8)).collect();
                conn.send(ch, msg.clone()).await.unwrap();
                sent.push((ch, msg));
            }
        }
        let mut got = Vec::new();
        while got.len() < sent.len() {
            let (ch, msg) = conn.recv().await.unwrap();
            got.push((ch, msg.to_vec()));
        }
        for &ch in &channels {
            let a: Vec<_> = sent.iter().filter(|m| m.0 == ch).collect();
            let b: Vec<_> = got.iter().filter(|m| m.0 == ch).collect();
            assert_eq!(a, b, "channel {ch}: every message once, in order");
        }

        // recv_on takes from one channel only.
        conn.send(2, &b"only two"[..]).await.unwrap();
        assert_eq!(&conn.recv_on(2).await.unwrap()[..], b"only two");

        // Datagrams are unreliable, but loopback does not lose them.
        for i in 0..3u8 {
            conn.send_datagram(vec![i; 100]).await.unwrap();
            let d = conn.recv_datagram().await.unwrap();
            assert_eq!(d, Bytes::from(vec![i; 100]));
        }

        // Typed refusals that do not end the connection.
        assert!(matches!(
            conn.send(0, vec![0u8; 65 * 1024]).await,
            Err(SendError::TooLarge { max: 65536 })
        ));
        assert!(matches!(
            conn.send(1000, &b"x"[..]).await,
            Err(SendError::InvalidChannel)
        ));
        assert!(matches!(
            conn.send_datagram(vec![0u8; 5000]).await,
            Err(SendError::TooLarge { .. })
        ));

        let stats = conn.stats().await.unwrap();
        assert!(stats.connection.handshake_duration.is_some());
        assert!(!stats.ended);

        conn.close(code::NO_ERROR, "bye").await.unwrap();
        let (first, server_end, server_stats) = served.await.unwrap();
        assert_eq!(first, 0, "the server saw channel 0 opened first");
        assert_eq!(peer_closed(&server_end), Some((0, "bye".into())));
        assert!(server_end.is_clean_close());
        assert!(server_stats.ended);
        assert_eq!(server_stats.connection.rx_messages, sent.len() as u64 + 1);

        // After the close every call says how it ended.
        let after = conn.recv().await.unwrap_err();
        assert!(matches!(
            after,
            Error::Closed(ConnectionError::LocallyClosed { code: 0 })
        ));
        assert!(matches!(
            conn.send(0, &b"late"[..]).await,
            Err(SendError::Closed(Error::Closed(
                ConnectionError::LocallyClosed { .. }
            )))
        ));
        let stats = conn.stats().await.unwrap();
        assert!(stats.ended);
        assert!(stats.connection.tx_messages >= sent.len() as u64);
        server.shutdown().await;
    })
    .await
    .expect("test took too long");
}

#[tokio::test]
async fn messages_before_a_close_are_still_received() {
    timeout(LIMIT, async {
        let server = server(config());
        let conn = connect(&server, config()).await;
        for i in 0..5u8 {
            conn.send(0, vec![i; 3000]).await.unwrap();
        }
        // Dropping the only handle closes with code 0 after delivering.
        drop(conn);
        let sc = server.accept().await.unwrap();
        // Give the close time to arrive before reading anything.
        tokio::time::sleep(Duration::from_millis(200)).await;
        for i in 0..5u8 {
            let (ch, m) = sc.recv().await.unwrap();
            assert_eq!((ch, m), (0, Bytes::from(vec![i; 3000])));
        }
        let end = sc.recv().await.unwrap_err();
        assert_eq!(peer_closed(&end), Some((0, String::new())));
    })
    .await
    .expect("test took too long");
}

#[tokio::test]
async fn send_waits_for_a_reader() {
    timeout(LIMIT, async {
        // Small windows so that the sender fills them quickly.
        let small = Config {
            channel_window: 8 * 1024,
            connection_window: 16 * 1024,
            max_message_size: 4 * 1024,
            ..config()
        };
        let server = server(small.clone());
        let conn = connect(&server, small.clone()).await;
        let sc = server.accept().await.unwrap();

        const N: usize = 60;
        let queued = Arc::new(AtomicUsize::new(0));
        let q2 = queued.clone();
        let c2 = conn.clone();
        let sender = tokio::spawn(async move {
            for i in 0..N {
                c2.send(0, vec![i as u8; 1000]).await.unwrap();
                q2.fetch_add(1, Ordering::SeqCst);
            }
        });

        // Nobody reads: the sender stops once the windows are full.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let stalled = queued.load(Ordering::SeqCst);
        assert!(stalled < N, "send never waited ({stalled} of {N} queued)");
        assert!(stalled >= 8, "the windows should take some ({stalled})");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(queued.load(Ordering::SeqCst), stalled, "still waiting");

        // The reader reads: every message arrives, in order, and the
        // sender finishes.
        for i in 0..N {
            let m = sc.recv_on(0).await.unwrap();
            assert_eq!(m, Bytes::from(vec![i as u8; 1000]), "message {i}");
        }
        sender.await.unwrap();
        assert_eq!(queued.load(Ordering::SeqCst), N);

        // A cancelled send does not block the channel for the next one.
        let blocked = {
            let mut n = 0;
            loop {
                match timeout(Duration::from_millis(100), conn.send(0, vec![1u8; 1000])).await {
                    Ok(r) => {
                        r.unwrap();
                        n += 1;
                    }
                    Err(_) => break n,
                }
            }
        };
        for _ in 0..blocked {
            sc.recv_on(0).await.unwrap();
        }
        conn.send(0, &b"after"[..]).await.unwrap();
        assert_eq!(&sc.recv_on(0).await.unwrap()[..], b"after");
    })
    .await
    .expect("test took too long");
}

#[tokio::test]
async fn a_crashed_server_ends_in_idle_timeout() {
    timeout(LIMIT, async {
        // The server lives in its own runtime, so it can vanish without a
        // word, like a crashed process.
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.spawn(async move {
            let server = server(config());
            addr_tx.send(server.local_addr()).unwrap();
            while let Some(c) = server.accept().await {
                tokio::spawn(echo(c));
            }
        });
        let addr = addr_rx.recv().unwrap();
        let client = Endpoint::client(loopback(), config()).unwrap();
        let conn = client.connect(addr, public_key(&SERVER_KEY)).await.unwrap();
        conn.send(0, &b"ping"[..]).await.unwrap();
        assert_eq!(&conn.recv().await.unwrap().1[..], b"ping");

        rt.shutdown_background();
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
    })
    .await
    .expect("test took too long");
}

#[tokio::test]
async fn a_dropped_server_closes_its_clients() {
    timeout(LIMIT, async {
        let server = server(config());
        let addr = server.local_addr();
        let client = Endpoint::client(loopback(), config()).unwrap();
        let conn = client.connect(addr, public_key(&SERVER_KEY)).await.unwrap();
        let sc = server.accept().await.unwrap();
        conn.send(0, &b"hi"[..]).await.unwrap();
        assert_eq!(&sc.recv().await.unwrap().1[..], b"hi");

        // Every server handle dropped: its task closes what is left.
        drop(sc);
        drop(server);
        let end = conn.recv().await.unwrap_err();
        assert_eq!(peer_closed(&end).map(|e| e.0), Some(code::NO_ERROR));

        // Nothing listens there now: a new handshake times out.
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
    })
    .await
    .expect("test took too long");
}

#[tokio::test]
async fn shutdown_closes_every_connection_and_waits() {
    timeout(LIMIT, async {
        let server = server(config());
        let mut conns = Vec::new();
        let mut accepted = Vec::new();
        for _ in 0..3 {
            conns.push(connect(&server, config()).await);
            accepted.push(server.accept().await.unwrap());
        }
        let s2 = server.clone();
        let pending_accept = tokio::spawn(async move { s2.accept().await });
        let start = Instant::now();
        server.shutdown().await;
        assert!(start.elapsed() < Duration::from_secs(2));
        assert!(pending_accept.await.unwrap().is_none());
        for c in &conns {
            let e = c.recv().await.unwrap_err();
            assert_eq!(peer_closed(&e).map(|e| e.0), Some(code::SHUTDOWN), "{e:?}");
        }
        for a in &accepted {
            let e = a.recv().await.unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::Closed(ConnectionError::LocallyClosed { .. }) | Error::EndpointClosed
                ),
                "{e:?}"
            );
        }
        assert!(server.accept().await.is_none());
        assert!(matches!(
            server.connect(loopback(), [0; 32]).await,
            Err(Error::EndpointClosed)
        ));
    })
    .await
    .expect("test took too long");
}

#[tokio::test]
async fn wrong_server_key_never_connects() {
    timeout(LIMIT, async {
        let server = server(config());
        let client = Endpoint::client(loopback(), config()).unwrap();
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
        assert!(server.stats().await.unwrap().core.accepted == 0);
    })
    .await
    .expect("test took too long");
}

#[tokio::test]
async fn bulk_both_ways_with_batched_sends() {
    timeout(LIMIT, async {
        let server = server(config());
        let conn = connect(&server, config()).await;
        let sc = server.accept().await.unwrap();
        const N: usize = 128; // 2 MiB each way in 16 KiB messages
        let msg = |dir: u8, i: usize| -> Vec<u8> {
            let mut m = vec![dir; 16 * 1024];
            m[..8].copy_from_slice(&(i as u64).to_be_bytes());
            m
        };
        let (c2, s2) = (conn.clone(), sc.clone());
        let up = tokio::spawn(async move {
            for i in 0..N {
                c2.send((i % 2) as u32 * 2, msg(1, i)).await.unwrap();
            }
        });
        let down = tokio::spawn(async move {
            for i in 0..N {
                s2.send((i % 2) as u32 * 2 + 1, msg(2, i)).await.unwrap();
            }
        });
        let check = |c: Connection, dir: u8| async move {
            let mut next = [0usize, 0];
            for _ in 0..N {
                let (ch, m) = c.recv().await.unwrap();
                let k = (ch / 2) as usize;
                let i = next[k] * 2 + k;
                assert_eq!(&m[..], &msg(dir, i)[..], "message {i} on channel {ch}");
                next[k] += 1;
            }
        };
        tokio::join!(check(sc.clone(), 1), check(conn.clone(), 2));
        up.await.unwrap();
        down.await.unwrap();
        let s = conn.stats().await.unwrap().connection;
        assert!(s.tx_bytes > (N * 16 * 1024) as u64);
        conn.close(code::NO_ERROR, "").await.unwrap();
    })
    .await
    .expect("test took too long");
}

#[tokio::test]
async fn cancelled_receives_lose_nothing() {
    timeout(LIMIT, async {
        let server = server(config());
        let conn = connect(&server, config()).await;
        let sc = server.accept().await.unwrap();
        const N: u32 = 300;
        let c2 = conn.clone();
        let sender = tokio::spawn(async move {
            for i in 0..N {
                c2.send(0, i.to_be_bytes().to_vec()).await.unwrap();
                if i % 16 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        });
        // Every other receive is dropped after one poll (a receive that
        // finds no message leaves its waker; dropping it must not lose the
        // message that would have woken it). The first is dropped before
        // the sender runs, so at least one is cancelled.
        let mut next = 0u32;
        let mut cancelled = 0;
        let mut k = 0u32;
        while next < N {
            k += 1;
            let r = if k.is_multiple_of(2) {
                Some(sc.recv().await)
            } else {
                tokio::select! {
                    biased;
                    r = sc.recv() => Some(r),
                    () = std::future::ready(()) => None,
                }
            };
            match r {
                Some(r) => {
                    let (_, m) = r.unwrap();
                    assert_eq!(&m[..], next.to_be_bytes(), "in order, none lost");
                    next += 1;
                }
                None => cancelled += 1,
            }
        }
        sender.await.unwrap();
        assert!(
            cancelled > 0,
            "no receive was cancelled: the test proves nothing"
        );
    })
    .await
    .expect("test took too long");
}
