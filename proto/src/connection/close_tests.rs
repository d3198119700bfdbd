//! Regression tests for bugs the conformance scenarios found
//! (conformance/tests/scenarios.rs): closing and replayed handshake
//! messages.

use crate::ConstrainedConnection;
use crate::config::{Config, HandshakePattern};
use crate::connection::{ConnectionError, Credentials, DropReason, Event, Reason};
use crate::packet::{HandshakeHeader, HandshakeKind, LONG_HEADER_LEN, VERSION};
use crate::time::Instant;
use core::net::SocketAddr;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use std::vec::Vec;

fn client_addr() -> SocketAddr {
    "10.0.0.2:5000".parse().unwrap()
}

fn server_addr() -> SocketAddr {
    "10.0.0.1:4433".parse().unwrap()
}

/// An established constrained pair (pattern NN) and the client's first
/// handshake message as it went on the wire.
fn pair(now: Instant) -> (ConstrainedConnection, ConstrainedConnection, Vec<u8>) {
    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    let config = Config {
        pattern: HandshakePattern::NN,
        ..Config::constrained()
    };
    let creds = Credentials::default();
    let mut client =
        ConstrainedConnection::connect(config.clone(), &creds, now, 1, server_addr(), &mut rng)
            .unwrap();
    let mut buf = [0u8; 1500];
    let t = client.poll_transmit(now, &mut buf).unwrap().unwrap();
    let first = buf[..t.len].to_vec();
    let mut server =
        ConstrainedConnection::accept(config, &creds, now, 2, client_addr(), &first, &mut rng)
            .unwrap();
    deliver(&mut server, &mut client, now);
    deliver(&mut client, &mut server, now);
    assert!(client.is_established() && server.is_established());
    while client.poll_event().is_some() {}
    while server.poll_event().is_some() {}
    (client, server, first)
}

/// Moves every packet `from` has to send to `to`; returns how many.
fn deliver(
    from: &mut ConstrainedConnection,
    to: &mut ConstrainedConnection,
    now: Instant,
) -> usize {
    let mut buf = [0u8; 1500];
    let src = from.peer_addr();
    let src = if src == server_addr() {
        client_addr()
    } else {
        server_addr()
    };
    let mut n = 0;
    while let Some(t) = from.poll_transmit(now, &mut buf).unwrap() {
        let _ = to.handle(now, src, &mut buf[..t.len]);
        n += 1;
        assert!(n < 64);
    }
    n
}

/// Throws away every packet `from` has to send; returns how many.
fn lose(from: &mut ConstrainedConnection, now: Instant) -> usize {
    let mut buf = [0u8; 1500];
    let mut n = 0;
    while from.poll_transmit(now, &mut buf).unwrap().is_some() {
        n += 1;
        assert!(n < 64);
    }
    n
}

fn events(c: &mut ConstrainedConnection) -> Vec<Event> {
    core::iter::from_fn(|| c.poll_event()).collect()
}

/// Both applications closed at once: each side's close is its own. The
/// side in `Closing` that received the peer's CLOSE used to report
/// `PeerClosed`, while one whose peer CLOSE was lost reported
/// `LocallyClosed` when its closing period ended: the variant depended on
/// timing.
#[test]
fn simultaneous_close_is_reported_as_local_on_both_sides() {
    let now = Instant::from_millis(1);
    let (mut client, mut server, _) = pair(now);
    client.close(now, 0x100, "client done");
    server.close(now, 0x101, "server done");
    // The two CLOSE packets cross.
    let mut buf = [0u8; 1500];
    let mut from_client = Vec::new();
    while let Some(t) = client.poll_transmit(now, &mut buf).unwrap() {
        from_client.push(buf[..t.len].to_vec());
    }
    assert!(deliver(&mut server, &mut client, now) > 0);
    for mut p in from_client {
        let _ = server.handle(now, client_addr(), &mut p);
    }
    assert_eq!(
        events(&mut client),
        [Event::Closed(ConnectionError::LocallyClosed {
            code: 0x100
        })]
    );
    assert_eq!(
        events(&mut server),
        [Event::Closed(ConnectionError::LocallyClosed {
            code: 0x101
        })]
    );
    assert!(client.is_closed() && server.is_closed());
}

/// A closing side whose CLOSE was lost only acknowledged what the peer
/// kept sending; its probe timer, backed off, fired after the closing
/// period had ended, so the peer never learnt of the close and waited
/// for its idle timeout. Now a packet from the peer is answered with the
/// CLOSE again.
#[test]
fn a_lost_close_is_sent_again_when_the_peer_keeps_sending() {
    let now = Instant::from_millis(1);
    let (mut client, mut server, _) = pair(now);
    client.close(now, 7, "bye");
    assert!(lose(&mut client, now) > 0, "the CLOSE is lost");
    // The server, unaware, sends a message.
    server.send(1, b"still here").unwrap();
    assert!(deliver(&mut server, &mut client, now) > 0);
    // The client answers at once, with the CLOSE.
    assert!(deliver(&mut client, &mut server, now) > 0);
    assert_eq!(
        events(&mut server),
        [Event::Closed(ConnectionError::PeerClosed {
            code: 7,
            reason: Reason::new("bye")
        })]
    );
    // Its acknowledgement ends the client's side.
    deliver(&mut server, &mut client, now);
    assert_eq!(
        events(&mut client).last(),
        Some(&Event::Closed(ConnectionError::LocallyClosed { code: 7 }))
    );
}

/// A replay of the client's first handshake message at a confirmed server
/// was taken for the client repeating the handshake's last message: the
/// server answered it with a PING and counted nothing. It is a replay of
/// an earlier message and is dropped.
#[test]
fn a_replayed_first_message_at_a_confirmed_server_is_dropped() {
    let now = Instant::from_millis(1);
    let (_client, mut server, first) = pair(now);
    let dropped = server.stats().dropped;
    let mut replay = first.clone();
    assert_eq!(
        server.handle(now, client_addr(), &mut replay),
        Err(DropReason::Unexpected)
    );
    assert_eq!(server.stats().dropped.unexpected, dropped.unexpected + 1);
    assert_eq!(lose(&mut server, now), 0, "nothing is sent in answer");
}

/// While closing, a probe timeout sent the CLOSE in only the first of its
/// two probes (the second was a bare PING), so a silent peer had about
/// two chances to learn of the close before `close_at`. Every probe now
/// carries it.
#[test]
fn every_probe_while_closing_carries_the_close() {
    let mut now = Instant::from_millis(1);
    let (mut client, mut server, _) = pair(now);
    client.close(now, 9, "gone");
    assert!(lose(&mut client, now) > 0, "the CLOSE is lost");
    // The probe timeout fires: two probes.
    now = client.poll_timeout().unwrap();
    client.handle_timeout(now);
    let mut buf = [0u8; 1500];
    let mut probes = Vec::new();
    while let Some(t) = client.poll_transmit(now, &mut buf).unwrap() {
        probes.push(buf[..t.len].to_vec());
    }
    assert_eq!(probes.len(), 2);
    // Only the second gets through, and it alone ends the server's side.
    let mut second = probes.pop().unwrap();
    server.handle(now, client_addr(), &mut second).unwrap();
    assert_eq!(
        events(&mut server),
        [Event::Closed(ConnectionError::PeerClosed {
            code: 9,
            reason: Reason::new("gone")
        })]
    );
}

/// A handshake packet with `index`, `receiver` and `sender` in the pair's
/// pattern and suite; nothing in it is authenticated.
fn spoofed_handshake(index: u8, receiver: u32, sender: u32) -> Vec<u8> {
    let mut pkt = std::vec![0u8; LONG_HEADER_LEN + 48];
    HandshakeHeader {
        kind: HandshakeKind::Handshake,
        version: VERSION,
        pattern: HandshakePattern::NN.id(),
        suite: Config::constrained().suite.id(),
        msg_index: index,
        receiver,
        sender,
    }
    .encode(&mut pkt);
    pkt
}

/// After confirmation, a packet naming both session ids that looked like
/// the peer repeating the handshake's last message made the side send a
/// PING to its peer, every time: anyone who saw the ids could make it send
/// continuously. It answers at most one such repeat per smoothed RTT.
#[test]
fn spoofed_repeats_of_the_last_handshake_message_get_one_ping_per_rtt() {
    let mut now = Instant::from_millis(1);
    let (mut client, mut server, _) = pair(now);
    let (me, peer) = (client.local_id(), client.remote_id());
    let spoof = || spoofed_handshake(1, me, peer);
    // Each spoofed repeat, then the PING it draws goes to the server and
    // the server's acknowledgements come back, so nothing in flight holds
    // the next PING back.
    let mut round = |client: &mut ConstrainedConnection, now: Instant| {
        let _ = client.handle(now, server_addr(), &mut spoof());
        let sent = deliver(client, &mut server, now);
        deliver(&mut server, client, now);
        sent
    };
    let replays = client.stats().dropped.replay;
    let sent: usize = (0..100).map(|_| round(&mut client, now)).sum();
    assert_eq!(sent, 1, "one PING for a hundred repeats");
    assert_eq!(client.stats().dropped.replay, replays + 99);
    // Within the smoothed RTT: still nothing. After it: one more. (The
    // pair exchanged everything at one instant: the timer granularity,
    // 1 ms, stands for the RTT.)
    let rtt = client
        .stats()
        .smoothed_rtt
        .max(core::time::Duration::from_millis(1));
    now = now + rtt / 2;
    assert_eq!(round(&mut client, now), 0);
    now = now + rtt;
    assert_eq!(round(&mut client, now), 1);
    assert!(client.is_established());
}

/// The same before confirmation: each copy of the client's first message
/// made a server that had not yet heard from the client again send its
/// whole flight. A genuine retransmission is still answered.
#[test]
fn repeats_of_the_first_message_get_one_flight_per_rtt() {
    let mut rng = ChaCha20Rng::from_seed([4; 32]);
    let config = Config {
        pattern: HandshakePattern::NN,
        ..Config::constrained()
    };
    let creds = Credentials::default();
    let mut now = Instant::from_millis(1);
    let mut client =
        ConstrainedConnection::connect(config.clone(), &creds, now, 1, server_addr(), &mut rng)
            .unwrap();
    let mut buf = [0u8; 1500];
    let t = client.poll_transmit(now, &mut buf).unwrap().unwrap();
    let first = buf[..t.len].to_vec();
    let mut server =
        ConstrainedConnection::accept(config, &creds, now, 2, client_addr(), &first, &mut rng)
            .unwrap();
    assert_eq!(lose(&mut server, now), 1, "message 1 is lost");
    let mut sent = 0;
    for _ in 0..100 {
        let _ = server.handle(now, client_addr(), &mut first.clone());
        sent += lose(&mut server, now);
    }
    assert_eq!(sent, 1, "one flight for a hundred copies");
    // The client's retransmission timer fires (one PTO, more than an RTT
    // later): its copy is answered, and the handshake completes.
    now = client.poll_timeout().unwrap();
    client.handle_timeout(now);
    deliver(&mut client, &mut server, now);
    assert_eq!(deliver(&mut server, &mut client, now), 1);
    deliver(&mut client, &mut server, now);
    assert!(client.is_established() && server.is_established());
    assert!(server.stats().handshake_duration.is_some(), "confirmed");
}

/// The borrowed reads on empty and unknown channels hand nothing over
/// and do not call the closure; messages and datagrams that arrived
/// before the peer closed are still lent out after the end, once, and
/// consumed.
#[test]
fn borrowed_reads_on_empty_channels_and_after_the_end() {
    let now = Instant::from_millis(1);
    let (mut client, mut server, _) = pair(now);
    let mut called = false;
    assert_eq!(server.recv_with(0, |_, _| called = true), None);
    assert_eq!(server.recv_any_with(|_, _| called = true), None);
    assert_eq!(server.recv_datagram_with(|_, _| called = true), None);
    client.send(0, b"first").unwrap();
    client.send(0, b"second").unwrap();
    client.send_datagram(b"dgram").unwrap();
    deliver(&mut client, &mut server, now);
    assert_eq!(
        server.recv_with(0, |a, b| [a, b].concat()).as_deref(),
        Some(&b"first"[..])
    );
    // Channel 0 exists now but channel 2 does not; neither calls `f`
    // when empty.
    assert_eq!(server.recv_with(2, |_, _| called = true), None);
    client.abort(now, 7, "bye");
    deliver(&mut client, &mut server, now);
    assert!(
        events(&mut server).contains(&Event::Closed(ConnectionError::PeerClosed {
            code: 7,
            reason: Reason::new("bye")
        }))
    );
    assert_eq!(
        server.recv_any_with(|a, b| [a, b].concat()),
        Some((0, b"second".to_vec()))
    );
    assert_eq!(
        server.recv_datagram_with(|a, b| [a, b].concat()).as_deref(),
        Some(&b"dgram"[..])
    );
    assert_eq!(server.recv_with(0, |_, _| called = true), None);
    assert_eq!(server.recv_datagram_with(|_, _| called = true), None);
    assert!(!called);
    assert_eq!(server.stats().rx_messages, 2);
}
