//! Over UDP (`Endpoint::bind` / `client`), on every runtime: a client and
//! a server over 127.0.0.1: messages on several channels, datagrams,
//! backpressure, closing, and the typed errors of every ending.

use crate::suite::{
    Endpoint, Net, Runtime, SERVER_KEY, client, config, connect, echo, ends_in_idle_timeout, join,
    loopback, nothing_listens, peer_closed, poll_once, send_waits_for_a_reader_on, server,
    wrong_server_key, yield_now,
};
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};
use tern_driver::{Connection, ConnectionError, Error, SendError, code, public_key};

/// This file's `#[test]`s on runtime `$rt`.
macro_rules! tests {
    ($rt:ty) => {
        $crate::suite::tests!($rt, udp:
            run channels_datagrams_and_clean_close,
            run messages_before_a_close_are_still_received,
            run send_waits_for_a_reader,
            run a_dropped_server_closes_its_clients,
            run a_server_gone_silent_ends_in_idle_timeout,
            run shutdown_closes_every_connection_and_waits,
            run wrong_server_key_never_connects,
            run bulk_both_ways_with_batched_sends,
            run cancelled_receives_lose_nothing,
        );
    };
}
pub(crate) use tests;

pub async fn channels_datagrams_and_clean_close<R: Runtime>() {
    let server = server::<R>(Net::Udp, config());
    let s2 = server.clone();
    let served = R::spawn(async move {
        let conn = s2.accept().await.expect("a connection");
        let first = conn.accept_channel().await.unwrap();
        let end = echo::<R>(conn.clone()).await;
        (first, end, conn.stats().await.unwrap())
    });

    let conn = connect::<R>(Net::Udp, &server, config()).await;
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
    let (first, server_end, server_stats) = served.await;
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
}

pub async fn messages_before_a_close_are_still_received<R: Runtime>() {
    let server = server::<R>(Net::Udp, config());
    let conn = connect::<R>(Net::Udp, &server, config()).await;
    for i in 0..5u8 {
        conn.send(0, vec![i; 3000]).await.unwrap();
    }
    // Dropping the only handle closes with code 0 after delivering.
    drop(conn);
    let sc = server.accept().await.unwrap();
    // Give the close time to arrive before reading anything.
    R::sleep(Duration::from_millis(200)).await;
    for i in 0..5u8 {
        let (ch, m) = sc.recv().await.unwrap();
        assert_eq!((ch, m), (0, Bytes::from(vec![i; 3000])));
    }
    let end = sc.recv().await.unwrap_err();
    assert_eq!(peer_closed(&end), Some((0, String::new())));
}

pub async fn send_waits_for_a_reader<R: Runtime>() {
    send_waits_for_a_reader_on::<R>(Net::Udp).await;
}

pub async fn a_dropped_server_closes_its_clients<R: Runtime>() {
    let server = server::<R>(Net::Udp, config());
    let addr = server.local_addr();
    let client = client::<R>(Net::Udp, config());
    let conn = client.connect(addr, public_key(&SERVER_KEY)).await.unwrap();
    let sc = server.accept().await.unwrap();
    conn.send(0, &b"hi"[..]).await.unwrap();
    assert_eq!(&sc.recv().await.unwrap().1[..], b"hi");

    // Every server handle dropped: its task closes what is left.
    drop(sc);
    drop(server);
    let end = conn.recv().await.unwrap_err();
    assert_eq!(peer_closed(&end).map(|e| e.0), Some(code::NO_ERROR));

    // Nothing listens there now (once its task has stopped): a new
    // handshake times out.
    R::sleep(Duration::from_millis(200)).await;
    nothing_listens::<R>(&client, addr).await;
}

/// The server goes silent without a word (its packets, and the client's,
/// vanish on the way, as when it crashed): the client's connection ends
/// in an idle timeout, within the idle timeout of [`config`] and some
/// slack, and says so on every later call.
pub async fn a_server_gone_silent_ends_in_idle_timeout<R: Runtime>() {
    let server = server::<R>(Net::Udp, config());
    let relay = Relay::start(server.local_addr());
    let client = client::<R>(Net::Udp, config());
    let conn = client
        .connect(relay.addr, public_key(&SERVER_KEY))
        .await
        .unwrap();
    let echoing = R::spawn(echo::<R>(server.accept().await.unwrap()));
    conn.send(0, &b"ping"[..]).await.unwrap();
    assert_eq!(&conn.recv().await.unwrap().1[..], b"ping");

    relay.state.store(Relay::SILENT, Ordering::SeqCst);
    ends_in_idle_timeout(&conn).await;
    drop(echoing);
}

/// A UDP relay on its own thread between one client and `server`, until
/// it goes [`SILENT`](Self::SILENT): then it takes every packet and sends
/// none (its socket stays, so nobody is told).
struct Relay {
    addr: SocketAddr,
    state: Arc<AtomicU8>,
}

impl Relay {
    const FORWARD: u8 = 0;
    const SILENT: u8 = 1;
    const GONE: u8 = 2;

    fn start(server: SocketAddr) -> Relay {
        let socket = std::net::UdpSocket::bind(loopback()).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let state = Arc::new(AtomicU8::new(Relay::FORWARD));
        let st = state.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            let mut client = None;
            while st.load(Ordering::SeqCst) != Relay::GONE {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue; // the read timeout: look at the state again
                };
                let to = if from == server {
                    client
                } else {
                    client = Some(from);
                    Some(server)
                };
                if let (Some(to), Relay::FORWARD) = (to, st.load(Ordering::SeqCst)) {
                    let _ = socket.send_to(&buf[..n], to);
                }
            }
        });
        Relay { addr, state }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.state.store(Relay::GONE, Ordering::SeqCst);
    }
}

pub async fn shutdown_closes_every_connection_and_waits<R: Runtime>() {
    let server = server::<R>(Net::Udp, config());
    let mut conns = Vec::new();
    let mut accepted = Vec::new();
    for _ in 0..3 {
        conns.push(connect::<R>(Net::Udp, &server, config()).await);
        accepted.push(server.accept().await.unwrap());
    }
    let s2 = server.clone();
    let pending_accept = R::spawn(async move { s2.accept().await });
    let start = Instant::now();
    server.shutdown().await;
    assert!(start.elapsed() < Duration::from_secs(2));
    assert!(pending_accept.await.is_none());
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
}

pub async fn wrong_server_key_never_connects<R: Runtime>() {
    wrong_server_key::<R>(Net::Udp).await;
}

pub async fn bulk_both_ways_with_batched_sends<R: Runtime>() {
    let server = server::<R>(Net::Udp, config());
    let conn = connect::<R>(Net::Udp, &server, config()).await;
    let sc = server.accept().await.unwrap();
    const N: usize = 128; // 2 MiB each way in 16 KiB messages
    let msg = |dir: u8, i: usize| -> Vec<u8> {
        let mut m = vec![dir; 16 * 1024];
        m[..8].copy_from_slice(&(i as u64).to_be_bytes());
        m
    };
    let (c2, s2) = (conn.clone(), sc.clone());
    let up = R::spawn(async move {
        for i in 0..N {
            c2.send((i % 2) as u32 * 2, msg(1, i)).await.unwrap();
        }
    });
    let down = R::spawn(async move {
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
    join(check(sc.clone(), 1), check(conn.clone(), 2)).await;
    up.await;
    down.await;
    let s = conn.stats().await.unwrap().connection;
    assert!(s.tx_bytes > (N * 16 * 1024) as u64);
    conn.close(code::NO_ERROR, "").await.unwrap();
}

pub async fn cancelled_receives_lose_nothing<R: Runtime>() {
    let server = server::<R>(Net::Udp, config());
    let conn = connect::<R>(Net::Udp, &server, config()).await;
    let sc = server.accept().await.unwrap();
    const N: u32 = 300;
    // One receive is dropped while nothing can be waiting yet (the
    // sender has not started), so at least one is cancelled whatever
    // the timing of the executor's threads.
    assert!(poll_once(sc.recv()).await.is_none());
    let c2 = conn.clone();
    let sender = R::spawn(async move {
        for i in 0..N {
            c2.send(0, i.to_be_bytes().to_vec()).await.unwrap();
            if i % 16 == 0 {
                yield_now().await;
            }
        }
    });
    // Every other receive is dropped after one poll (a receive that
    // finds no message leaves its waker; dropping it must not lose the
    // message that would have woken it).
    let mut next = 0u32;
    let mut cancelled = 1;
    let mut k = 0u32;
    while next < N {
        k += 1;
        let r = if k.is_multiple_of(2) {
            Some(sc.recv().await)
        } else {
            // Polled once: the request goes out, then it is dropped.
            poll_once(sc.recv()).await
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
    sender.await;
    assert!(
        cancelled > 0,
        "no receive was cancelled: the test proves nothing"
    );
}
