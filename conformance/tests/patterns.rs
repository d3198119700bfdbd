//! Every handshake pattern Tern offers, through the whole session layer:
//! handshake (two or three messages), key confirmation, a message each way
//! and a clean close, over a lossy network.

use std::time::Duration;
use tern::config::{Config, HandshakePattern, Suite};
use tern::connection::Credentials;
use tern::crypto::{CryptoProvider, RustCrypto};
use tern::endpoint::EndpointConfig;
use tern::{ConnectionError, Event, ServiceEndpoint};
use tern_conformance::sim::{Link, Net, Node, SimEndpoint, addr};

const SERVER_KEY: [u8; 32] = [0x11; 32];
const CLIENT_KEY: [u8; 32] = [0x22; 32];
const PSK: [u8; 32] = [0x33; 32];

fn run(
    pattern: HandshakePattern,
    suite: Suite,
    link: Link,
    seed: u64,
    client_psk: [u8; 32],
) -> (bool, Vec<Event>, Vec<Event>) {
    let config = Config {
        pattern,
        suite,
        ..Config::service()
    };
    let mut scfg = EndpointConfig::server(config.clone(), SERVER_KEY);
    if let Some(c) = scfg.server_credentials.as_mut() {
        c.psk = Some(PSK);
    }
    let mut server = SimEndpoint::new(ServiceEndpoint::new(scfg), addr(4433), seed);
    let mut client = SimEndpoint::new(
        ServiceEndpoint::new(EndpointConfig::client(config)),
        addr(5000),
        seed + 1,
    );
    let mut net = Net::new(link, seed);
    let creds = Credentials {
        private_key: Some(CLIENT_KEY),
        remote_public_key: Some(RustCrypto.x25519_base(&SERVER_KEY)),
        psk: Some(client_psk),
    };
    let ch = client
        .ep
        .connect(net.now, server.addr, &creds, &mut client.rng)
        .unwrap();
    let (mut sent_c, mut sent_s) = (false, false);
    let (mut got_c, mut got_s) = (None, None);
    let mut sh = None;
    let mut buf = [0u8; 256];
    let deadline = net.now + Duration::from_secs(120);
    while net.now < deadline {
        for (h, e) in client.drain_events().to_vec() {
            assert_eq!(h, ch);
            if e == Event::Connected && !sent_c {
                client
                    .ep
                    .connection_mut(ch)
                    .unwrap()
                    .send(0, b"from client")
                    .unwrap();
                sent_c = true;
            }
        }
        for (h, e) in server.drain_events().to_vec() {
            if e == Event::Connected && !sent_s {
                sh = Some(h);
                server
                    .ep
                    .connection_mut(h)
                    .unwrap()
                    .send(1, b"from server")
                    .unwrap();
                sent_s = true;
            }
        }
        if let Some(c) = client.ep.connection_mut(ch)
            && let Ok(Some((1, n))) = c.recv_any(&mut buf)
        {
            got_c = Some(buf[..n].to_vec());
        }
        if let Some(c) = sh.and_then(|h| server.ep.connection_mut(h))
            && let Ok(Some((0, n))) = c.recv_any(&mut buf)
        {
            got_s = Some(buf[..n].to_vec());
        }
        if got_c.is_some()
            && got_s.is_some()
            && let Some(c) = client.ep.connection_mut(ch)
            && c.is_established()
        {
            c.close(net.now, 0, "bye");
        }
        let done = |evs: &[(tern::endpoint::ConnectionHandle, Event)]| {
            evs.iter().any(|(_, e)| matches!(e, Event::Closed(_)))
        };
        if done(&client.events) && done(&server.events) {
            break;
        }
        let nodes: &mut [&mut dyn Node] = &mut [&mut server, &mut client];
        if !net.step(nodes, Duration::from_secs(1)) {
            break;
        }
    }
    let ok = got_c.as_deref() == Some(&b"from server"[..])
        && got_s.as_deref() == Some(&b"from client"[..]);
    let ce = client.events.iter().map(|(_, e)| *e).collect();
    let se = server.events.iter().map(|(_, e)| *e).collect();
    (ok, ce, se)
}

fn clean_close(client: &[Event], server: &[Event]) -> bool {
    client
        .iter()
        .any(|e| matches!(e, Event::Closed(ConnectionError::LocallyClosed { code: 0 })))
        && server.iter().any(|e| {
            matches!(
                e,
                Event::Closed(ConnectionError::PeerClosed { code: 0, .. })
            )
        })
}

#[test]
fn every_pattern_and_suite_carries_messages_and_closes_cleanly() {
    let suites = [
        Suite::CHACHA_BLAKE2S,
        Suite::CHACHA_SHA256,
        Suite::AESGCM_SHA256,
    ];
    let mut runs = 0;
    for (i, p) in HandshakePattern::ALL.into_iter().enumerate() {
        for (j, s) in suites.into_iter().enumerate() {
            let (ok, ce, se) = run(p, s, Link::default(), (i * 10 + j) as u64, PSK);
            assert!(
                ok,
                "{p:?} {s:?}: messages not exchanged; client {ce:?} server {se:?}"
            );
            assert!(
                clean_close(&ce, &se),
                "{p:?} {s:?}: client {ce:?} server {se:?}"
            );
            runs += 1;
        }
    }
    assert_eq!(runs, 30);
}

#[test]
fn three_message_patterns_survive_loss_and_reordering() {
    let link = Link {
        loss: 0.3,
        reorder: 0.3,
        duplicate: 0.2,
        ..Link::default()
    };
    for (seed, p) in [
        (1, HandshakePattern::XX),
        (2, HandshakePattern::XXpsk3),
        (3, HandshakePattern::IK),
        (4, HandshakePattern::NN),
    ] {
        for k in 0..5 {
            let (ok, ce, se) = run(p, Suite::CHACHA_BLAKE2S, link, seed * 100 + k, PSK);
            assert!(ok, "{p:?} seed {k}: client {ce:?} server {se:?}");
        }
    }
}

#[test]
fn a_wrong_psk_never_connects() {
    for p in [
        HandshakePattern::NNpsk0,
        HandshakePattern::IKpsk2,
        HandshakePattern::XXpsk3,
    ] {
        let (ok, ce, se) = run(p, Suite::CHACHA_BLAKE2S, Link::default(), 9, [0x44; 32]);
        assert!(!ok);
        assert!(
            !ce.contains(&Event::Connected) || !se.contains(&Event::Connected),
            "{p:?}: {ce:?} {se:?}"
        );
        assert!(
            ce.iter()
                .any(|e| matches!(e, Event::Closed(ConnectionError::HandshakeTimeout))),
            "{p:?}: {ce:?}"
        );
    }
}
