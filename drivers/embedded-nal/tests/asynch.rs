//! The async client over `std-embedded-nal-async` (the host's sockets
//! behind the `embedded-nal-async` traits, driven by async-io's reactor)
//! against tern-tokio and tern-smol echo servers on loopback. The client runs on the
//! test thread (`Runtime::block_on`), timed by tokio's sleep through
//! `DelayNs`; the server on the runtime's worker.

mod common;

use common::*;
use embedded_hal_async::delay::DelayNs;
use embedded_nal_async::{ConnectedUdp, UdpStack};
use std::collections::BTreeMap;
use std::time::Duration;
use std_embedded_nal_async::Stack;
use tern::{Config, ConnectionError};
use tern_nal::Error;
use tern_nal::asynch::{Client, Unconnected};

/// `DelayNs` on tokio's timer.
struct TokioDelay;

impl DelayNs for TokioDelay {
    async fn delay_ns(&mut self, ns: u32) {
        tokio::time::sleep(Duration::from_nanos(ns.into())).await;
    }
    async fn delay_us(&mut self, us: u32) {
        tokio::time::sleep(Duration::from_micros(us.into())).await;
    }
}

/// Bound of a whole async test.
const WHOLE: Duration = Duration::from_secs(30);

/// Connects over `socket`, exchanges messages on two channels and
/// datagrams, checks every echo, closes.
async fn session<U: ConnectedUdp>(socket: U, server: &mut EchoServer)
where
    U::Error: std::fmt::Debug,
{
    let clock = SysClock::new();
    let creds = credentials(server.public_key);
    let mut client: Client<_, _, _, 512> = Client::connect(
        socket,
        &clock,
        TokioDelay,
        server.addr,
        &creds,
        Config::constrained(),
        &mut rng(),
    )
    .await
    .expect("handshake");
    assert!(client.is_connected());

    let big = big();
    assert!(big.len() > client.connection().max_packet_size());
    client.send(0, SMALL).await.expect("send on 0");
    client.send(1, &big).await.expect("send on 1");
    let mut got = BTreeMap::new();
    let mut buf = [0u8; 1024];
    for _ in 0..2 {
        let (channel, n) = client.recv(&mut buf).await.expect("echo");
        assert!(
            got.insert(channel, buf[..n].to_vec()).is_none(),
            "two echoes on {channel}"
        );
    }
    assert_eq!(got[&0], SMALL);
    assert_eq!(got[&1], big);

    for d in datagrams() {
        client.send_datagram(&d).await.expect("send datagram");
        let n = client.recv_datagram(&mut buf).await.expect("datagram echo");
        assert_eq!(&buf[..n], &d[..]);
    }

    let stats = client.stats();
    assert_eq!((stats.tx_messages, stats.rx_messages), (2, 2));
    assert_eq!((stats.tx_datagrams, stats.rx_datagrams), (3, 3));
    assert_eq!(stats.dropped.total(), 0);

    client
        .close(CLOSE_CODE, CLOSE_REASON)
        .await
        .expect("clean close");
    assert_eq!(
        client.ended(),
        Some(ConnectionError::LocallyClosed { code: CLOSE_CODE })
    );
    assert!(matches!(
        client.send(0, b"late").await,
        Err(Error::Closed(ConnectionError::LocallyClosed { .. }))
    ));
    expect_peer_close(server).await;
}

#[test]
fn connected_socket_echoes_then_closes() {
    connected_session(ServerDriver::Tokio);
}

#[test]
fn connected_socket_with_a_smol_server() {
    connected_session(ServerDriver::Smol);
}

fn connected_session(driver: ServerDriver) {
    let rt = runtime();
    let mut server = echo_server_on(&rt, driver);
    rt.block_on(async {
        let (_, socket) = Stack::default().connect(server.addr).await.expect("socket");
        tokio::time::timeout(WHOLE, session(socket, &mut server))
            .await
            .expect("bounded");
    });
}

#[test]
fn unconnected_socket_echoes_then_closes() {
    let rt = runtime();
    let mut server = echo_server(&rt);
    rt.block_on(async {
        let (local, socket) = Stack::default()
            .bind_single("127.0.0.1:0".parse().unwrap())
            .await
            .expect("socket");
        let socket = Unconnected::new(socket, local, server.addr);
        tokio::time::timeout(WHOLE, session(socket, &mut server))
            .await
            .expect("bounded");
    });
}

#[test]
fn wrong_server_key_is_a_handshake_timeout() {
    let rt = runtime();
    let server = echo_server(&rt);
    rt.block_on(async {
        let (_, socket) = Stack::default().connect(server.addr).await.expect("socket");
        let clock = SysClock::new();
        let creds = credentials(tern_tokio::public_key(&[0x77; 32]));
        let started = std::time::Instant::now();
        let result = tokio::time::timeout(
            WHOLE,
            Client::<_, _, _, 512>::connect(
                socket,
                &clock,
                TokioDelay,
                server.addr,
                &creds,
                short_handshake(),
                &mut rng(),
            ),
        )
        .await
        .expect("bounded");
        let took = started.elapsed();
        match result {
            Err(Error::Closed(ConnectionError::HandshakeTimeout)) => {}
            Err(e) => panic!("expected a handshake timeout, got {e}"),
            Ok(_) => panic!("connected with a wrong server key"),
        }
        assert!(took >= Duration::from_millis(1900), "{took:?}");
        assert!(took < Duration::from_secs(6), "{took:?}");
    });
}
