//! The two drivers speak to each other: a smol client with a tokio server
//! and a tokio client with a smol server exchange messages (one larger
//! than a packet) and datagrams and close cleanly; and a client whose
//! server goes away and comes back on the same port ends its pending calls
//! with a typed error within a bound, never a hang.

use bytes::Bytes;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tern_smol::{Config, Connection, ConnectionError, EndpointConfig, Error, SendError, code};

const SERVER_KEY: [u8; 32] = [0x24; 32];
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

fn server_config(config: Config) -> EndpointConfig {
    EndpointConfig::server(config, SERVER_KEY)
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `fut` on smol, failing if it takes longer than [`LIMIT`].
fn smol_run<T>(fut: impl Future<Output = T>) -> T {
    smol::block_on(async {
        smol::future::or(fut, async {
            smol::Timer::after(LIMIT).await;
            panic!("test took too long")
        })
        .await
    })
}

/// Runs `fut` on `rt`, failing if it takes longer than [`LIMIT`].
fn tokio_run<T>(rt: &tokio::runtime::Runtime, fut: impl Future<Output = T>) -> T {
    rt.block_on(async {
        tokio::time::timeout(LIMIT, fut)
            .await
            .expect("test took too long")
    })
}

/// Echoes messages on their channel and datagrams until the connection
/// ends (the same code on either runtime: a `Connection` needs none);
/// returns how it ended.
async fn echo(conn: Connection) -> Error {
    let datagrams = async {
        while let Ok(d) = conn.recv_datagram().await {
            let _ = conn.send_datagram(d).await;
        }
        std::future::pending::<Error>().await
    };
    let messages = async {
        loop {
            match conn.recv().await {
                Ok((ch, m)) => {
                    if let Err(SendError::Closed(e)) = conn.send(ch, m).await {
                        return e;
                    }
                }
                Err(e) => return e,
            }
        }
    };
    smol::future::or(messages, datagrams).await
}

/// A tokio echo server on `rt`; each connection's ending is sent on the
/// returned channel.
fn tokio_server(
    rt: &tokio::runtime::Runtime,
    at: SocketAddr,
    tcp: bool,
) -> (SocketAddr, mpsc::Receiver<Error>) {
    let (tx, rx) = mpsc::channel();
    let addr = rt.block_on(async {
        let server = if tcp {
            tern_tokio::Endpoint::bind_tcp(at, server_config(config())).unwrap()
        } else {
            tern_tokio::Endpoint::bind(at, server_config(config())).unwrap()
        };
        let addr = server.local_addr();
        tokio::spawn(async move {
            while let Some(conn) = server.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _ = tx.send(echo(conn).await);
                });
            }
        });
        addr
    });
    (addr, rx)
}

/// A smol echo server (smol's global executor).
fn smol_server(tcp: bool) -> (SocketAddr, mpsc::Receiver<Error>) {
    let (tx, rx) = mpsc::channel();
    let server = if tcp {
        tern_smol::Endpoint::bind_tcp(loopback(), server_config(config())).unwrap()
    } else {
        tern_smol::Endpoint::bind(loopback(), server_config(config())).unwrap()
    };
    let addr = server.local_addr();
    smol::spawn(async move {
        while let Some(conn) = server.accept().await {
            let tx = tx.clone();
            smol::spawn(async move {
                let _ = tx.send(echo(conn).await);
            })
            .detach();
        }
    })
    .detach();
    (addr, rx)
}

/// The client's half of an exchange: channels, a message larger than a
/// packet, datagrams, a clean close.
async fn exchange(conn: &Connection) {
    let a = conn.open_channel().await.unwrap();
    let b = conn.open_channel().await.unwrap();
    assert_eq!((a, b), (0, 2));
    let big: Vec<u8> = (0..20 * 1024).map(|i| (i % 251) as u8).collect();
    let sent: Vec<(u32, Vec<u8>)> = vec![
        (a, b"one".to_vec()),
        (b, big.clone()),
        (a, b"two".to_vec()),
        (b, b"three".to_vec()),
    ];
    for (ch, m) in &sent {
        conn.send(*ch, m.clone()).await.unwrap();
    }
    let mut got = Vec::new();
    while got.len() < sent.len() {
        let (ch, m) = conn.recv().await.unwrap();
        got.push((ch, m.to_vec()));
    }
    for ch in [a, b] {
        let s: Vec<_> = sent.iter().filter(|m| m.0 == ch).collect();
        let g: Vec<_> = got.iter().filter(|m| m.0 == ch).collect();
        assert_eq!(s, g, "channel {ch}: every message once, in order");
    }
    for i in 0..3u8 {
        conn.send_datagram(vec![i; 200]).await.unwrap();
        assert_eq!(
            conn.recv_datagram().await.unwrap(),
            Bytes::from(vec![i; 200])
        );
    }
    let stats = conn.stats().await.unwrap();
    assert!(stats.connection.rx_messages >= sent.len() as u64);
    conn.close(code::NO_ERROR, "bye").await.unwrap();
    assert!(conn.stats().await.unwrap().ended);
}

fn assert_closed_by_client(end: Error) {
    match end {
        Error::Closed(ConnectionError::PeerClosed { code: 0, reason }) => {
            assert_eq!(reason.as_str(), "bye");
        }
        e => panic!("the server saw {e:?}"),
    }
}

fn smol_client(addr: SocketAddr, tcp: bool) {
    smol_run(async {
        let client = if tcp {
            tern_smol::Endpoint::client_tcp(config()).unwrap()
        } else {
            tern_smol::Endpoint::client(loopback(), config()).unwrap()
        };
        let conn = client
            .connect(addr, tern_smol::public_key(&SERVER_KEY))
            .await
            .unwrap();
        exchange(&conn).await;
    });
}

fn tokio_client(rt: &tokio::runtime::Runtime, addr: SocketAddr, tcp: bool) {
    tokio_run(rt, async {
        let client = if tcp {
            tern_tokio::Endpoint::client_tcp(config()).unwrap()
        } else {
            tern_tokio::Endpoint::client(loopback(), config()).unwrap()
        };
        let conn = client
            .connect(addr, tern_tokio::public_key(&SERVER_KEY))
            .await
            .unwrap();
        exchange(&conn).await;
    });
}

#[test]
fn smol_client_tokio_server() {
    let rt = tokio_runtime();
    let (addr, ends) = tokio_server(&rt, loopback(), false);
    smol_client(addr, false);
    assert_closed_by_client(ends.recv_timeout(LIMIT).unwrap());
}

#[test]
fn tokio_client_smol_server() {
    let rt = tokio_runtime();
    let (addr, ends) = smol_server(false);
    tokio_client(&rt, addr, false);
    assert_closed_by_client(ends.recv_timeout(LIMIT).unwrap());
}

#[test]
fn tcp_tokio_client_tokio_server() {
    let rt = tokio_runtime();
    let (addr, ends) = tokio_server(&rt, loopback(), true);
    tokio_client(&rt, addr, true);
    assert_closed_by_client(ends.recv_timeout(LIMIT).unwrap());
}

#[test]
fn tcp_smol_client_smol_server() {
    let (addr, ends) = smol_server(true);
    smol_client(addr, true);
    assert_closed_by_client(ends.recv_timeout(LIMIT).unwrap());
}

#[test]
fn tcp_smol_client_tokio_server() {
    let rt = tokio_runtime();
    let (addr, ends) = tokio_server(&rt, loopback(), true);
    smol_client(addr, true);
    assert_closed_by_client(ends.recv_timeout(LIMIT).unwrap());
}

#[test]
fn tcp_tokio_client_smol_server() {
    let rt = tokio_runtime();
    let (addr, ends) = smol_server(true);
    tokio_client(&rt, addr, true);
    assert_closed_by_client(ends.recv_timeout(LIMIT).unwrap());
}

/// Binds a tokio server at `addr`, retrying while the old socket is still
/// being closed.
fn tokio_server_at(
    rt: &tokio::runtime::Runtime,
    addr: SocketAddr,
    tcp: bool,
) -> mpsc::Receiver<Error> {
    let start = Instant::now();
    loop {
        let bound =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tokio_server(rt, addr, tcp)));
        match bound {
            Ok((a, rx)) => {
                assert_eq!(a, addr);
                return rx;
            }
            Err(_) if start.elapsed() < Duration::from_secs(2) => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => std::panic::resume_unwind(e),
        }
    }
}

/// The server (over UDP or TCP) goes away while the client has a `recv`
/// and a `send` pending (the send waits for window: the server does not read), and a
/// new server is bound on the same port. Both pending calls end in a
/// typed error within a bound; a new connection then reaches the new
/// server.
fn server_restart(graceful: bool, tcp: bool) {
    // Small windows, so that a send waits while the server does not read.
    let small = Config {
        channel_window: 8 * 1024,
        connection_window: 16 * 1024,
        max_message_size: 4 * 1024,
        ..config()
    };
    let old = tokio_runtime();
    let (server_tx, server_rx) = mpsc::channel();
    let addr = old.block_on(async {
        let server = if tcp {
            tern_tokio::Endpoint::bind_tcp(loopback(), server_config(small.clone())).unwrap()
        } else {
            tern_tokio::Endpoint::bind(loopback(), server_config(small.clone())).unwrap()
        };
        let addr = server.local_addr();
        tokio::spawn(async move {
            // Accepts, never reads, and hands the handles to the test.
            let conn = server.accept().await.unwrap();
            server_tx.send((server, conn)).unwrap();
        });
        addr
    });

    let client = if tcp {
        tern_smol::Endpoint::client_tcp(small).unwrap()
    } else {
        tern_smol::Endpoint::client(loopback(), small).unwrap()
    };
    let conn = smol_run(client.connect(addr, tern_smol::public_key(&SERVER_KEY))).unwrap();
    let held = server_rx.recv_timeout(LIMIT).unwrap();

    // Fill the windows until a send waits.
    let c2 = conn.clone();
    let sender = smol::spawn(async move {
        let mut queued = 0usize;
        loop {
            match c2.send(0, vec![7u8; 1000]).await {
                Ok(()) => queued += 1,
                Err(e) => return (queued, e),
            }
        }
    });
    let c3 = conn.clone();
    let receiver = smol::spawn(async move { c3.recv().await });
    smol_run(smol::Timer::after(Duration::from_millis(300)));
    assert!(!sender.is_finished() && !receiver.is_finished());

    // The server goes: its handles are dropped (it closes what it has), or
    // its runtime stops without a word, like a crashed process.
    let start = Instant::now();
    if graceful {
        drop(held);
        // Its task closes the connection, then stops with the last handle.
        std::thread::sleep(Duration::from_millis(300));
        old.shutdown_timeout(Duration::from_secs(2));
    } else {
        old.shutdown_timeout(Duration::from_secs(2));
        drop(held);
    }
    // And a new one takes the port.
    let new = tokio_runtime();
    let new_ends = tokio_server_at(&new, addr, tcp);

    let (queued, send_end) = smol_run(sender);
    let recv_end = smol_run(receiver).unwrap_err();
    let took = start.elapsed();
    assert!(queued >= 8, "the windows took some ({queued})");
    let SendError::Closed(send_end) = send_end else {
        panic!("{send_end:?}");
    };
    if graceful {
        assert!(
            matches!(
                recv_end,
                Error::Closed(ConnectionError::PeerClosed {
                    code: code::NO_ERROR,
                    ..
                })
            ),
            "{recv_end:?}"
        );
    } else {
        assert!(
            matches!(recv_end, Error::Closed(ConnectionError::IdleTimeout)),
            "{recv_end:?}"
        );
        // Bounded by the idle timeout, with room for a slow machine.
        assert!(took < Duration::from_millis(4000), "took {took:?}");
    }
    assert_eq!(
        send_end.to_string(),
        recv_end.to_string(),
        "one ending for every call"
    );

    // The new server answers a new connection.
    smol_run(async {
        let conn = client
            .connect(addr, tern_smol::public_key(&SERVER_KEY))
            .await
            .unwrap();
        conn.send(0, &b"again"[..]).await.unwrap();
        assert_eq!(&conn.recv().await.unwrap().1[..], b"again");
        conn.close(code::NO_ERROR, "bye").await.unwrap();
    });
    assert_closed_by_client(new_ends.recv_timeout(LIMIT).unwrap());
}

#[test]
fn a_crashed_server_restarting_on_its_port_ends_pending_calls() {
    server_restart(false, false);
}

#[test]
fn tcp_a_crashed_server_restarting_on_its_port_ends_pending_calls() {
    server_restart(false, true);
}

#[test]
fn a_dropped_server_restarting_on_its_port_ends_pending_calls() {
    server_restart(true, false);
}

#[test]
fn tcp_a_dropped_server_restarting_on_its_port_ends_pending_calls() {
    server_restart(true, true);
}
