//! The blocking client over `std-embedded-nal` (the host's sockets behind
//! the `embedded-nal` traits) against tern-tokio and tern-smol echo servers
//! on loopback.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::time::Duration;
use std_embedded_nal::Stack;
use tern::{Config, ConnectionError};
use tern_nal::Error;
use tern_nal::blocking::Client;

type StdClient<'a> = Client<Stack, &'a SysClock, 512>;

#[test]
fn echoes_messages_and_datagrams_then_closes() {
    echo_session(ServerDriver::Tokio);
}

#[test]
fn echoes_with_a_smol_server() {
    echo_session(ServerDriver::Smol);
}

fn echo_session(driver: ServerDriver) {
    let rt = runtime();
    let mut server = echo_server_on(&rt, driver);
    let clock = SysClock::new();
    let mut rng = rng();
    let creds = credentials(server.public_key);

    let mut client: StdClient = Client::connect(
        Stack,
        &clock,
        server.addr,
        &creds,
        Config::constrained(),
        &mut rng,
        STEP,
    )
    .expect("handshake");
    assert!(client.is_connected());
    assert!(client.stats().handshake_duration.is_some());

    // Two channels; the second message is longer than a packet.
    let big = big();
    assert!(big.len() > client.connection().max_packet_size());
    client.send_blocking(0, SMALL, STEP).expect("send on 0");
    client.send_blocking(1, &big, STEP).expect("send on 1");
    let mut got = BTreeMap::new();
    let mut buf = [0u8; 1024];
    for _ in 0..2 {
        let (channel, n) = client.recv_blocking(&mut buf, STEP).expect("echo");
        assert!(
            got.insert(channel, buf[..n].to_vec()).is_none(),
            "two echoes on {channel}"
        );
    }
    assert_eq!(got[&0], SMALL);
    assert_eq!(got[&1], big);

    // A buffer too short for the next message is a typed error that
    // consumes nothing.
    client.send_blocking(0, &big, STEP).expect("send again");
    let mut short = [0u8; 100];
    let err = loop {
        match client.recv(&mut short) {
            Err(nb::Error::WouldBlock) => std::thread::sleep(Duration::from_millis(1)),
            other => break other,
        }
    };
    assert!(
        matches!(
            err,
            Err(nb::Error::Other(Error::BufferTooSmall { needed: 900 }))
        ),
        "{err:?}"
    );
    let (channel, n) = client
        .recv_blocking(&mut buf, STEP)
        .expect("echo after all");
    assert_eq!((channel, &buf[..n]), (0, &big[..]));

    for d in datagrams() {
        nb::block!(client.send_datagram(&d)).expect("send datagram");
        let n = client
            .recv_datagram_blocking(&mut buf, STEP)
            .expect("datagram echo");
        assert_eq!(&buf[..n], &d[..]);
    }

    let stats = client.stats();
    assert_eq!((stats.tx_messages, stats.rx_messages), (3, 3));
    assert_eq!((stats.tx_datagrams, stats.rx_datagrams), (3, 3));
    assert_eq!(stats.dropped.total(), 0);

    client
        .close_blocking(CLOSE_CODE, CLOSE_REASON, STEP)
        .expect("clean close");
    assert_eq!(
        client.ended(),
        Some(ConnectionError::LocallyClosed { code: CLOSE_CODE })
    );
    // Every later call reports the ending.
    assert!(matches!(
        client.send(0, b"late"),
        Err(nb::Error::Other(Error::Closed(
            ConnectionError::LocallyClosed { .. }
        )))
    ));
    rt.block_on(expect_peer_close(&mut server));
    client.release().expect("close the socket");
}

#[test]
fn wrong_server_key_is_a_handshake_timeout() {
    let rt = runtime();
    let server = echo_server(&rt);
    let clock = SysClock::new();
    let mut rng = rng();
    // Some other server's key: the server cannot read the first message.
    let creds = credentials(tern_tokio::public_key(&[0x77; 32]));
    let started = std::time::Instant::now();
    let result: Result<StdClient, _> = Client::connect(
        Stack,
        &clock,
        server.addr,
        &creds,
        short_handshake(),
        &mut rng,
        STEP,
    );
    let took = started.elapsed();
    match result {
        Err(Error::Closed(ConnectionError::HandshakeTimeout)) => {}
        Err(e) => panic!("expected a handshake timeout, got {e}"),
        Ok(_) => panic!("connected with a wrong server key"),
    }
    // The configured 2 s, not the call's 10 s bound, nor a hang.
    assert!(took >= Duration::from_millis(1900), "{took:?}");
    assert!(took < Duration::from_secs(6), "{took:?}");
}

#[test]
fn start_refuses_a_buffer_below_the_packet_size() {
    let clock = SysClock::new();
    let creds = credentials([1; 32]);
    let result: Result<Client<Stack, &SysClock, 256>, _> = Client::start(
        Stack,
        &clock,
        "127.0.0.1:9".parse().unwrap(),
        &creds,
        Config::constrained(),
        &mut rng(),
    );
    assert!(matches!(result, Err(Error::BufferTooSmall { needed: 512 })));
}

/// Connects to a fresh echo server, exchanges one message, then stops the
/// server (its runtime and socket go away). Returns the client and the
/// server's address.
fn connect_then_stop_server(
    config: Config,
    clock: &SysClock,
) -> (StdClient<'_>, std::net::SocketAddr) {
    let rt = runtime();
    let server = echo_server(&rt);
    let creds = credentials(server.public_key);
    let mut client: StdClient =
        Client::connect(Stack, clock, server.addr, &creds, config, &mut rng(), STEP)
            .expect("handshake");
    client.send_blocking(0, SMALL, STEP).expect("send");
    let mut buf = [0u8; 64];
    let (_, n) = client.recv_blocking(&mut buf, STEP).expect("echo");
    assert_eq!(&buf[..n], SMALL);
    let addr = server.addr;
    drop(server);
    rt.shutdown_timeout(Duration::from_secs(5));
    (client, addr)
}

#[test]
fn silent_server_is_an_idle_timeout() {
    let clock = SysClock::new();
    let config = Config {
        idle_timeout: Duration::from_secs(1),
        keepalive: None,
        ..Config::constrained()
    };
    let (mut client, addr) = connect_then_stop_server(config, &clock);
    // Something holds the port and swallows every packet: no answer, no
    // ICMP error.
    let _sink = std::net::UdpSocket::bind(addr).expect("rebind the server's port");
    let started = std::time::Instant::now();
    let mut buf = [0u8; 64];
    let err = client.recv_blocking(&mut buf, STEP).expect_err("no echo");
    assert!(
        matches!(err, Error::Closed(ConnectionError::IdleTimeout)),
        "expected an idle timeout, got {err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // Later calls report the same ending.
    assert!(matches!(
        client.recv(&mut buf),
        Err(nb::Error::Other(Error::Closed(
            ConnectionError::IdleTimeout
        )))
    ));
}

#[test]
fn unreachable_server_is_a_socket_error() {
    let clock = SysClock::new();
    let (mut client, _addr) = connect_then_stop_server(Config::constrained(), &clock);
    // The port is closed now: the next packet draws an ICMP port
    // unreachable, which the connected socket reports as an error.
    client.send_blocking(0, SMALL, STEP).expect("queued");
    let mut buf = [0u8; 64];
    let err = client.recv_blocking(&mut buf, STEP).expect_err("no echo");
    match err {
        Error::Socket(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused),
        other => panic!("expected a socket error, got {other}"),
    }
    assert!(matches!(client.poll(), Err(Error::SocketFailed)));
    assert!(matches!(
        client.recv(&mut buf),
        Err(nb::Error::Other(Error::SocketFailed))
    ));
}
