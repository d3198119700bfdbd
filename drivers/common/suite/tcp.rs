//! Over TCP (`Endpoint::bind_tcp` / `client_tcp`), on every runtime: the
//! same behaviour as over UDP (backpressure, typed errors, shutdown), and
//! hostile streams: a framing error or a stream cut inside a frame closes
//! that stream at once; a well-framed packet that is not Tern is dropped,
//! counted, and the stream stays.

use crate::suite::{
    Endpoint, Net, Runtime, config, connect, nothing_listens, send_waits_for_a_reader_on, server,
    wrong_server_key,
};
use bytes::Bytes;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use tern_driver::code;

/// This file's `#[test]`s on runtime `$rt`.
macro_rules! tests {
    ($rt:ty) => {
        $crate::suite::tests!($rt, tcp:
            run messages_datagrams_and_close_over_tcp,
            run send_waits_for_a_reader_over_tcp,
            run wrong_key_and_no_listener_are_typed_errors,
            run_threaded hostile_streams,
            run_threaded a_silent_stream_is_closed_after_the_handshake_timeout,
        );
    };
}
pub(crate) use tests;

pub async fn messages_datagrams_and_close_over_tcp<R: Runtime>() {
    let server = server::<R>(Net::Tcp, config());
    let conn = connect::<R>(Net::Tcp, &server, config()).await;
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
}

/// The UDP test, over TCP.
pub async fn send_waits_for_a_reader_over_tcp<R: Runtime>() {
    send_waits_for_a_reader_on::<R>(Net::Tcp).await;
}

pub async fn wrong_key_and_no_listener_are_typed_errors<R: Runtime>() {
    let (server, client) = wrong_server_key::<R>(Net::Tcp).await;
    // Nothing listens: every stream is refused, the handshake times out.
    let addr = server.local_addr();
    server.shutdown().await;
    drop(server);
    nothing_listens::<R>(&client, addr).await;
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

pub async fn hostile_streams<R: Runtime>() {
    let server = server::<R>(Net::Tcp, config());
    let addr = server.local_addr();
    let before = server.stats().await.unwrap().core.dropped.total();

    // A zero length, and a length above max_packet_size (1452): closed at
    // once, without waiting for a packet.
    let r = R::unblock(move || {
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
    .await;
    assert_eq!(r, (true, true, true, true, false));
    let after = server.stats().await.unwrap().core.dropped.total();
    assert!(after > before, "the non-Tern packet was counted as dropped");

    // The server still serves.
    let conn = connect::<R>(Net::Tcp, &server, config()).await;
    let sc = server.accept().await.unwrap();
    conn.send(0, &b"still here"[..]).await.unwrap();
    assert_eq!(&sc.recv().await.unwrap().1[..], b"still here");
    conn.close(code::NO_ERROR, "").await.unwrap();
}

/// A stream that sends nothing is closed once the handshake timeout
/// (1.5 s here) passed without a packet.
pub async fn a_silent_stream_is_closed_after_the_handshake_timeout<R: Runtime>() {
    let server = server::<R>(Net::Tcp, config());
    let addr = server.local_addr();
    let (r, took) = R::unblock(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let start = Instant::now();
        let mut buf = [0u8; 8];
        let r = s.read(&mut buf);
        (r, start.elapsed())
    })
    .await;
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
