//! Scenario tests: whole sessions driven through the deterministic network
//! simulator with virtual time and seeded RNGs. Each scenario asserts
//! outcomes that a broken implementation would miss; the harness
//! ([`tern_conformance::scenario::World`]) also checks, after every step,
//! exactly-once in-order delivery, memory within the configured windows,
//! the event sequence of every connection and packet-number monotonicity.

use std::process::Command;
use std::time::Duration;
use tern::channel::SendBlocked;
use tern::config::Config;
use tern::connection::{DropCounts, SendError};
use tern::endpoint::EndpointStats;
use tern::storage::{ByteStore, HeapBytes};
use tern::{ConnectionError, ConstrainedBytes, Event, Instant};
use tern_conformance::scenario::{Flow, SERVER, World};
use tern_conformance::sim::Link;
use tern_conformance::simulate::{self, Options, Profile};

type Service = World<HeapBytes, 64, 256>;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// 30% loss with reordering, duplication and jitter.
fn lossy() -> Link {
    Link {
        loss: 0.3,
        reorder: 0.1,
        duplicate: 0.05,
        jitter: ms(4),
        ..Link::default()
    }
}

fn clean() -> Link {
    Link::default()
}

/// `(channels, largest message)` for traffic in a preset: messages from
/// one byte-range fragment to several packets.
fn shape(config: &Config) -> (u32, usize) {
    (
        config.max_channels.min(4),
        (config.max_message_size as usize).min(4096),
    )
}

// ----- 1. exactly-once, in-order delivery under loss ------------------------

fn simulate_under_loss(profile: Profile, seeds: &[u64]) {
    for &seed in seeds {
        let r = simulate::run(&Options {
            seed,
            link: lossy(),
            messages: 1000,
            size: 1024,
            profile,
            time_limit: secs(3600),
        });
        let what = format!("{profile:?} seed {seed}: {}", r.line());
        assert!(r.ok(), "{what}; {r:?}");
        assert_eq!(r.expected, 2000, "{what}");
        assert_eq!(r.delivered, 2000, "{what}");
        assert_eq!(
            r.line(),
            "delivered 2000/2000 in order, 0 duplicated, 0 lost"
        );
        // The network really was hostile, and recovery really worked.
        assert!(r.net.lost > 100, "{what}: {:?}", r.net);
        assert!(r.net.duplicated > 0 && r.net.reordered > 0, "{what}");
        assert_eq!(r.net.pn_violations, 0, "{what}");
        let (c, s) = (
            r.client.expect("client stats"),
            r.server.expect("server stats"),
        );
        for (who, st) in [("client", c), ("server", s)] {
            assert!(st.retransmissions > 0, "{what}: {who} {st:?}");
            assert!(st.lost_packets > 0, "{what}: {who} {st:?}");
            assert_eq!(st.rx_messages, 1000, "{what}: {who} {st:?}");
            assert_eq!(st.tx_messages, 1000, "{what}: {who} {st:?}");
            assert!(st.smoothed_rtt >= ms(20), "{what}: {who} {st:?}");
            assert!(st.dropped.authentication == 0, "{what}: {who} {st:?}");
        }
        // Duplicated datagrams come back as replays and are dropped.
        assert!(
            c.dropped.replay + s.dropped.replay > 0,
            "{what}: {c:?} {s:?}"
        );
        // The client closed once done.
        assert_eq!(
            r.endings[0],
            Some(ConnectionError::LocallyClosed { code: 0 }),
            "{what}"
        );
    }
}

#[test]
fn service_delivers_exactly_once_in_order_under_30_percent_loss() {
    simulate_under_loss(Profile::Service, &[1, 2, 3, 4, 5]);
}

#[test]
fn constrained_delivers_exactly_once_in_order_under_30_percent_loss() {
    simulate_under_loss(Profile::Constrained, &[1, 2, 3, 4, 5]);
}

/// The same traffic through the harness, with every invariant checked
/// after every step.
fn invariants_under_loss<B: ByteStore, const CH: usize, const SENT: usize>(
    config: Config,
    seed: u64,
) {
    let mut w = World::<B, CH, SENT>::new(config.clone(), lossy(), seed);
    let k = w.add_client();
    let (channels, size) = shape(&config);
    w.set_flow(k, Flow::new(seed, channels, 1000, size));
    assert!(
        w.run_until(secs(3600), |w| w.flow(k).done()),
        "not done: {:?}",
        w.flow(k)
    );
    let now = w.net.now;
    w.client_conn(k).unwrap().close(now, 0, "done");
    w.after_step();
    assert!(w.run_until(secs(600), |w| w.both_closed(k)));
    assert!(w.net.stats.lost > 100 && w.net.stats.duplicated > 0);
    assert_eq!(
        World::<B, CH, SENT>::ending(&w.client_events(k)).map(|e| e.1),
        Some(ConnectionError::LocallyClosed { code: 0 })
    );
}

#[test]
fn invariants_hold_at_every_step_under_loss_service() {
    for seed in [11, 12, 13] {
        invariants_under_loss::<HeapBytes, 64, 256>(Config::service(), seed);
    }
}

#[test]
fn invariants_hold_at_every_step_under_loss_constrained() {
    for seed in [11, 12, 13] {
        invariants_under_loss::<ConstrainedBytes, 2, 8>(Config::constrained(), seed);
    }
}

/// Bit flips on the wire: every corrupted datagram is dropped (as failing
/// authentication, malformed or for an unknown session) and nothing else
/// is, and delivery stays exact.
#[test]
fn corrupted_datagrams_are_dropped_and_delivery_stays_exact() {
    let link = Link {
        corrupt: 0.05,
        loss: 0.05,
        ..clean()
    };
    let mut w = Service::new(Config::service(), link, 14);
    let k = w.add_client();
    w.set_flow(k, Flow::new(14, 3, 500, 3000));
    assert!(
        w.run_until(secs(300), |w| w.flow(k).done()),
        "{:?}",
        w.flow(k)
    );
    w.run_for(secs(1));
    assert_eq!(w.net.in_flight(), 0);
    let mut dropped = DropCounts::default();
    for d in [
        w.server.ep.stats().dropped,
        w.clients[k].ep.stats().dropped,
        w.server_conn(k).unwrap().stats().dropped,
        w.client_conn(k).unwrap().stats().dropped,
    ] {
        dropped.malformed += d.malformed;
        dropped.authentication += d.authentication;
        dropped.unknown_session += d.unknown_session;
        dropped.replay += d.replay;
        dropped.unexpected += d.unexpected;
        dropped.busy += d.busy;
    }
    assert!(w.net.stats.corrupted > 20, "{:?}", w.net.stats);
    assert_eq!(dropped.total(), w.net.stats.corrupted, "{dropped:?}");
    assert_eq!(dropped.replay + dropped.busy, 0, "{dropped:?}");
}

/// Messages up to the 64 KiB maximum, fragmented over dozens of packets
/// and reassembled under loss.
#[test]
fn largest_messages_are_reassembled_under_loss() {
    let config = Config::service();
    let mut w = Service::new(config.clone(), lossy(), 13);
    let k = w.add_client();
    w.set_flow(k, Flow::new(13, 3, 40, config.max_message_size as usize));
    assert!(
        w.run_until(secs(600), |w| w.flow(k).done()),
        "{:?}",
        w.flow(k)
    );
    let st = w.client_conn(k).unwrap().stats();
    assert!(st.retransmissions > 0 && st.lost_packets > 0, "{st:?}");
    // Some message really was near the maximum.
    assert!(w.flow(k).read_bytes[1] > 40 * 20 * 1024, "{:?}", w.flow(k));
}

// ----- 2. handshake under heavy loss ---------------------------------------

/// Runs `seeds` handshakes at `loss` both ways; returns how many connected.
/// Every run must end one of three ways: both sides `Connected`; the
/// client `Closed(HandshakeTimeout)` exactly at the handshake timeout; or
/// the client `Connected` (it read the last message) while the server, whose
/// last message was never confirmed, ends with `HandshakeTimeout`.
fn handshakes_under_loss<B: ByteStore, const CH: usize, const SENT: usize>(
    config: &Config,
    loss: f64,
    seeds: std::ops::Range<u64>,
) -> usize {
    type Wd<B, const CH: usize, const SENT: usize> = World<B, CH, SENT>;
    let mut connected = 0;
    for seed in seeds {
        let link = Link {
            loss,
            ..Link::default()
        };
        let mut w = Wd::<B, CH, SENT>::new(config.clone(), link, seed);
        let k = w.add_client();
        let start = w.net.now;
        let limit = config.handshake_timeout * 2 + secs(1);
        w.run_until(limit, |w| {
            w.connected(k)
                || Wd::<B, CH, SENT>::ending(&w.client_events(k)).is_some()
                || Wd::<B, CH, SENT>::ending(&w.server_events(k)).is_some()
        });
        let what = format!("loss {loss} seed {seed}");
        let client = w.client_events(k);
        if w.connected(k) {
            connected += 1;
            let st = w.client_conn(k).unwrap().stats();
            let took = st.handshake_duration.expect("handshake duration");
            assert!(took < config.handshake_timeout, "{what}: {st:?}");
            // More than one round trip means the first flight or its
            // answer was lost and retransmission saved the handshake.
            if took > ms(100) {
                assert!(st.retransmissions > 0, "{what}: {st:?}");
            }
        } else if client.first().is_some_and(|e| e.1 == Event::Connected) {
            let ending = Wd::<B, CH, SENT>::ending(&w.server_events(k));
            assert_eq!(
                ending.map(|e| e.1),
                Some(ConnectionError::HandshakeTimeout),
                "{what}"
            );
        } else {
            let (at, why) = Wd::<B, CH, SENT>::ending(&client)
                .unwrap_or_else(|| panic!("{what}: neither connected nor closed: {client:?}"));
            assert_eq!(why, ConnectionError::HandshakeTimeout, "{what}");
            assert_eq!(at, start + config.handshake_timeout, "{what}");
        }
    }
    connected
}

#[test]
fn handshake_completes_under_heavy_loss_service() {
    let c = Config::service();
    let ok50 = handshakes_under_loss::<HeapBytes, 64, 256>(&c, 0.5, 0..20);
    let ok70 = handshakes_under_loss::<HeapBytes, 64, 256>(&c, 0.7, 100..120);
    // Without retransmission 25% and 9% of handshakes would complete.
    assert!(ok50 >= 18, "{ok50}/20 at 50% loss");
    assert!(ok70 >= 12, "{ok70}/20 at 70% loss");
}

#[test]
fn handshake_completes_under_heavy_loss_constrained() {
    let c = Config::constrained();
    let ok50 = handshakes_under_loss::<ConstrainedBytes, 2, 8>(&c, 0.5, 0..20);
    let ok70 = handshakes_under_loss::<ConstrainedBytes, 2, 8>(&c, 0.7, 100..120);
    assert!(ok50 >= 18, "{ok50}/20 at 50% loss");
    assert!(ok70 >= 12, "{ok70}/20 at 70% loss");
}

/// With every datagram lost the client retransmits its first message with
/// exponential backoff and gives up exactly at the handshake timeout.
fn handshake_times_out<B: ByteStore, const CH: usize, const SENT: usize>(config: Config) {
    let link = Link {
        loss: 1.0,
        ..Link::default()
    };
    let mut w = World::<B, CH, SENT>::new(config.clone(), link, 5);
    w.net.capture = Some(Vec::new());
    let k = w.add_client();
    let start = w.net.now;
    w.run_for(config.handshake_timeout * 2);
    let events = w.client_events(k);
    assert_eq!(
        events,
        [(
            start + config.handshake_timeout,
            Event::Closed(ConnectionError::HandshakeTimeout)
        )]
    );
    // The connection was freed once its last event was taken.
    assert!(w.clients[k].ep.is_empty());
    assert_eq!(w.reaped[k + 1], 1);
    assert_eq!(w.server.ep.stats().accepted, 0);
    // Every transmission is the same first message, each interval twice
    // the one before.
    let sent = w.net.capture.take().unwrap();
    assert!(sent.len() >= 4, "{} transmissions", sent.len());
    assert!(
        sent.iter()
            .all(|(_, from, _, d)| *from == w.client_addr(k) && *d == sent[0].3)
    );
    let times: Vec<u64> = sent.iter().map(|c| c.0.as_micros()).collect();
    for i in 2..times.len() {
        let (a, b) = (times[i - 1] - times[i - 2], times[i] - times[i - 1]);
        assert_eq!(b, 2 * a, "intervals {times:?}");
    }
    assert!(*times.last().unwrap() < (start + config.handshake_timeout).as_micros());
}

#[test]
fn handshake_times_out_when_everything_is_lost_service() {
    handshake_times_out::<HeapBytes, 64, 256>(Config::service());
}

#[test]
fn handshake_times_out_when_everything_is_lost_constrained() {
    handshake_times_out::<ConstrainedBytes, 2, 8>(Config::constrained());
}

// ----- 3. idle timeout and keepalive ---------------------------------------

/// Connects client 0, exchanges a few messages and lets acknowledgements
/// settle; returns when the last datagram arrived (the link is quiet
/// since).
fn settle<B: ByteStore, const CH: usize, const SENT: usize>(w: &mut World<B, CH, SENT>) -> Instant {
    w.net.capture = Some(Vec::new());
    let k = w.add_client();
    w.set_flow(k, Flow::new(3, 2, 5, 300));
    assert!(w.run_until(secs(30), |w| w.flow(k).done()));
    // Acknowledgements of the last messages (at most the ack delay).
    w.run_for(ms(300));
    assert_eq!(w.net.in_flight(), 0);
    let last = w.net.capture.take().unwrap().last().unwrap().0;
    last + w.net.link.delay
}

fn idle_timeout_when_peer_goes_silent<B: ByteStore, const CH: usize, const SENT: usize>(
    config: Config,
) {
    let mut w = World::<B, CH, SENT>::new(config.clone(), clean(), 21);
    let t0 = settle(&mut w);
    let addr = w.client_addr(0);
    w.net.blackholed.push(addr);
    assert!(w.run_until(config.idle_timeout * 2, |w| w.both_closed(0)));
    for (who, events) in [
        ("client", w.client_events(0)),
        ("server", w.server_events(0)),
    ] {
        let (at, why) = World::<B, CH, SENT>::ending(&events).unwrap();
        assert_eq!(why, ConnectionError::IdleTimeout, "{who}");
        // Within the idle timeout of the last datagram heard, which came
        // shortly before the link went silent.
        assert!(
            at <= t0 + config.idle_timeout,
            "{who} at {at:?}, silent from {t0:?}"
        );
        assert!(
            at >= t0 + config.idle_timeout - secs(1),
            "{who} at {at:?}, silent from {t0:?}"
        );
    }
    // Keepalives and probes went out into the void meanwhile.
    assert!(w.net.stats.lost > 0);
    w.run_for(secs(1));
    assert!(w.server.ep.is_empty() && w.clients[0].ep.is_empty());
}

#[test]
fn idle_timeout_when_peer_goes_silent_service() {
    idle_timeout_when_peer_goes_silent::<HeapBytes, 64, 256>(Config::service());
}

#[test]
fn idle_timeout_when_peer_goes_silent_constrained() {
    idle_timeout_when_peer_goes_silent::<ConstrainedBytes, 2, 8>(Config::constrained());
}

/// Only the server's datagrams are lost: the client hears nothing and
/// times out first; the server hears the client until then, and times out
/// one idle period after the client fell silent.
#[test]
fn idle_timeout_when_only_one_direction_fails() {
    let config = Config::service();
    let mut w = Service::new(config.clone(), clean(), 22);
    let t0 = settle(&mut w);
    w.net.link = Link {
        loss: 1.0,
        ..clean()
    };
    w.net.link_to_first = Some(clean());
    assert!(w.run_until(secs(120), |w| w.both_closed(0)));
    let (c_at, c_why) = Service::ending(&w.client_events(0)).unwrap();
    let (s_at, s_why) = Service::ending(&w.server_events(0)).unwrap();
    assert_eq!(
        (c_why, s_why),
        (ConnectionError::IdleTimeout, ConnectionError::IdleTimeout)
    );
    assert!(c_at <= t0 + config.idle_timeout && c_at >= t0 + config.idle_timeout - secs(1));
    // The client kept the server's idle timer running with keepalives.
    assert!(s_at > c_at + config.idle_timeout - config.keepalive.unwrap() - secs(1));
    assert!(s_at <= c_at + config.idle_timeout);
}

/// An idle but healthy session stays open for ten idle timeouts on
/// keepalives alone, and still works afterwards; without keepalives the
/// same session times out after one.
fn keepalive<B: ByteStore, const CH: usize, const SENT: usize>(config: Config) {
    let mut w = World::<B, CH, SENT>::new(config.clone(), clean(), 23);
    let t0 = settle(&mut w);
    let before = [
        w.client_conn(0).unwrap().stats(),
        w.server_conn(0).unwrap().stats(),
    ];
    w.run_for(config.idle_timeout * 10);
    assert!(w.net.now >= t0 + config.idle_timeout * 10);
    assert!(World::<B, CH, SENT>::ending(&w.client_events(0)).is_none());
    assert!(World::<B, CH, SENT>::ending(&w.server_events(0)).is_none());
    let after = [
        w.client_conn(0).unwrap().stats(),
        w.server_conn(0).unwrap().stats(),
    ];
    assert!(w.client_conn(0).unwrap().is_established());
    assert!(w.server_conn(0).unwrap().is_established());
    let pings = (config.idle_timeout * 10).as_secs() / config.keepalive.unwrap().as_secs();
    for i in 0..2 {
        assert_eq!(
            after[i].tx_messages, before[i].tx_messages,
            "no data was sent"
        );
        // Pings went out (each side's own or answers to the other's).
        assert!(
            after[i].tx_packets >= before[i].tx_packets + pings / 2,
            "{:?}",
            after[i]
        );
    }
    // Still works.
    w.flow_mut(0).to_send = [10, 10];
    assert!(w.run_until(secs(30), |w| w.flow(0).done()));

    // The same without keepalives on either side: it times out, having sent
    // nothing while idle.
    let quiet = Config {
        keepalive: None,
        ..config.clone()
    };
    let mut w = World::<B, CH, SENT>::new(quiet, clean(), 23);
    let t0 = settle(&mut w);
    let sent = w.net.stats.sent;
    assert!(w.run_until(config.idle_timeout * 10, |w| w.both_closed(0)));
    assert_eq!(w.net.stats.sent, sent, "nothing sent while idle");
    for events in [w.client_events(0), w.server_events(0)] {
        let (at, why) = World::<B, CH, SENT>::ending(&events).unwrap();
        assert_eq!(why, ConnectionError::IdleTimeout);
        assert!(at <= t0 + config.idle_timeout && at >= t0 + config.idle_timeout - secs(1));
    }
}

#[test]
fn keepalive_holds_an_idle_session_open_service() {
    keepalive::<HeapBytes, 64, 256>(Config::service());
}

#[test]
fn keepalive_holds_an_idle_session_open_constrained() {
    keepalive::<ConstrainedBytes, 2, 8>(Config::constrained());
}

// ----- 4. close: client, server, simultaneous ------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
enum Closer {
    Client,
    Server,
    Both,
}

/// The closer(s) queue messages and close at once: every queued message
/// arrives before the close completes, each side gets exactly one `Closed`
/// with the right variant, and nothing follows it (checked by the harness
/// at every step, here over a further minute).
fn close<B: ByteStore, const CH: usize, const SENT: usize>(
    config: Config,
    closer: Closer,
    link: Link,
    seed: u64,
) {
    let mut w = World::<B, CH, SENT>::new(config.clone(), link, seed);
    let k = w.add_client();
    // Enough to need several packets and to be in flight when close is
    // called, little enough to fit the windows (nothing refused).
    let n = if config.channel_window < 4096 { 2 } else { 24 };
    let to_send = match closer {
        Closer::Client => [n, 0],
        Closer::Server => [0, n],
        Closer::Both => [n, n],
    };
    let mut flow = Flow::new(seed, config.max_channels.min(2), 0, 600);
    flow.to_send = [0, 0];
    w.set_flow(k, flow);
    assert!(w.run_until(secs(30), |w| w.connected(k)));
    // The flows queue everything in one go, and the close follows before
    // anything is transmitted.
    w.flow_mut(k).to_send = to_send;
    w.after_step();
    assert_eq!(w.flow(k).sent, to_send, "{:?}", w.flow(k));
    let now = w.net.now;
    let (client_code, server_code) = (0x100, 0x101);
    if closer != Closer::Server {
        w.client_conn(k)
            .unwrap()
            .close(now, client_code, "client done");
    }
    if closer != Closer::Client {
        w.server_conn(k)
            .unwrap()
            .close(now, server_code, "server done");
    }
    w.after_step();
    assert!(w.run_until(secs(60), |w| w.both_closed(k)));
    let closed_at = w.net.now;
    w.run_for(secs(60));

    let f = w.flow(k).clone();
    assert_eq!(
        f.received,
        [to_send[1], to_send[0]],
        "every queued message arrived"
    );
    let client = w.client_events(k);
    let server = w.server_events(k);
    for events in [&client, &server] {
        let closes = events
            .iter()
            .filter(|e| matches!(e.1, Event::Closed(_)))
            .count();
        assert_eq!(closes, 1, "{events:?}");
        assert!(
            matches!(events.last().unwrap().1, Event::Closed(_)),
            "{events:?}"
        );
    }
    let (c_at, c_why) = World::<B, CH, SENT>::ending(&client).unwrap();
    let (s_at, s_why) = World::<B, CH, SENT>::ending(&server).unwrap();
    // The peer's code and reason text, as sent.
    let reason = |code: u32, text: &str| ConnectionError::PeerClosed {
        code,
        reason: tern::connection::Reason::new(text),
    };
    match closer {
        Closer::Client => {
            assert_eq!(c_why, ConnectionError::LocallyClosed { code: client_code });
            assert_eq!(s_why, reason(client_code, "client done"));
        }
        Closer::Server => {
            assert_eq!(c_why, reason(server_code, "server done"));
            assert_eq!(s_why, ConnectionError::LocallyClosed { code: server_code });
        }
        Closer::Both => {
            // Each side closed on its own account.
            assert_eq!(c_why, ConnectionError::LocallyClosed { code: client_code });
            assert_eq!(s_why, ConnectionError::LocallyClosed { code: server_code });
        }
    }
    // Delivered before the close completed.
    for side in 0..2 {
        if let Some(read) = f.last_read_at[side] {
            assert!(
                read <= c_at && read <= s_at,
                "read at {read:?}, closed at {c_at:?} {s_at:?}"
            );
        }
    }
    // A graceful close takes round trips, not timeouts.
    assert!(closed_at < now + secs(10), "closed at {closed_at:?}");
    // Both endpoints freed their connections.
    assert!(w.server.ep.is_empty() && w.clients[k].ep.is_empty());
    assert_eq!((w.reaped[SERVER], w.reaped[k + 1]), (1, 1));
    // And nothing was sent after the draining period.
    let sent = w.net.stats.sent;
    w.run_for(secs(10));
    assert_eq!(w.net.stats.sent, sent);
}

#[test]
fn close_from_the_client_flushes_and_reports_both_ways() {
    close::<HeapBytes, 64, 256>(Config::service(), Closer::Client, clean(), 31);
    close::<ConstrainedBytes, 2, 8>(Config::constrained(), Closer::Client, clean(), 31);
}

#[test]
fn close_from_the_server_flushes_and_reports_both_ways() {
    close::<HeapBytes, 64, 256>(Config::service(), Closer::Server, clean(), 32);
    close::<ConstrainedBytes, 2, 8>(Config::constrained(), Closer::Server, clean(), 32);
}

#[test]
fn simultaneous_close_flushes_both_ways() {
    close::<HeapBytes, 64, 256>(Config::service(), Closer::Both, clean(), 33);
    close::<ConstrainedBytes, 2, 8>(Config::constrained(), Closer::Both, clean(), 33);
}

#[test]
fn close_flushes_under_loss() {
    let link = Link {
        loss: 0.2,
        ..clean()
    };
    close::<HeapBytes, 64, 256>(Config::service(), Closer::Client, link, 34);
    close::<HeapBytes, 64, 256>(Config::service(), Closer::Server, link, 35);
    close::<ConstrainedBytes, 2, 8>(Config::constrained(), Closer::Client, link, 36);
}

// ----- 5. flow control -------------------------------------------------------

/// A receiver that does not read stops the sender with `WouldBlock` once
/// its credit is used, with memory bounded on both sides; once it reads,
/// the sender gets `Writable` and everything arrives.
fn flow_control<B: ByteStore, const CH: usize, const SENT: usize>(
    config: Config,
    channels: u32,
    size: usize,
    messages: usize,
) {
    let mut w = World::<B, CH, SENT>::new(config.clone(), clean(), 41);
    let k = w.add_client();
    let mut f = Flow::new(41, channels, messages, size);
    f.to_send = [messages, 0];
    f.reading[1] = false;
    w.set_flow(k, f);
    assert!(w.run_until(secs(10), |w| w.connected(k)));
    // Run until the sender makes no progress for five seconds.
    let mut stalled_packets = u64::MAX;
    for _ in 0..100 {
        let (sent, packets) = (w.flow(k).sent[0], w.net.stats.sent);
        w.run_for(secs(5));
        if w.flow(k).sent[0] == sent {
            stalled_packets = w.net.stats.sent - packets;
            break;
        }
    }
    let f = w.flow(k).clone();
    assert!(f.sent[0] < messages, "never blocked: {f:?}");
    assert!(f.blocked[0] > 0 && !f.block_reasons[0].is_empty(), "{f:?}");
    assert_eq!(f.received[1], 0);
    // Blocked, not busy: a few control packets (keepalives, BLOCKED) at most.
    assert!(
        stalled_packets < 20,
        "{stalled_packets} packets while stalled"
    );
    // The whole credit was used (no stall before it), and no more was
    // accepted than the credit plus the sender's own buffers.
    let credit = config
        .connection_window
        .min(u64::from(channels) * u64::from(config.channel_window));
    let own = u64::from(channels) * u64::from(config.channel_window);
    assert!(f.accepted_bytes[0] >= credit - size as u64, "{f:?}");
    assert!(f.accepted_bytes[0] <= credit + own, "{f:?}");
    let bound = tern_conformance::scenario::memory_bound::<B>(&config, channels);
    for server in [false, true] {
        let conn = if server {
            w.server_conn(k)
        } else {
            w.client_conn(k)
        };
        let conn = conn.unwrap();
        assert!(conn.buffer_bytes() <= bound);
        assert!(conn.is_established());
    }
    // The application kept trying and kept being refused, with a reason
    // that names a limit.
    let refusals = w.flow(k).blocked[0];
    w.run_for(secs(1));
    assert!(w.flow(k).blocked[0] > refusals);
    for why in &w.flow(k).block_reasons[0] {
        assert!(
            matches!(
                why,
                SendBlocked::Buffer
                    | SendBlocked::ChannelCredit
                    | SendBlocked::ConnectionCredit
                    | SendBlocked::Queue
            ),
            "{why:?}"
        );
    }
    if config.connection_window < own {
        assert!(
            w.flow(k).block_reasons[0].contains(&SendBlocked::ConnectionCredit),
            "{:?}",
            w.flow(k)
        );
    }
    // The receiver starts reading: credit flows back, the sender hears it
    // may write again, and everything arrives.
    let writable = w.flow(k).writable[0];
    w.flow_mut(k).reading[1] = true;
    assert!(
        w.run_until(secs(120), |w| w.flow(k).done()),
        "{:?}",
        w.flow(k)
    );
    let f = w.flow(k);
    assert!(
        f.writable[0] > writable,
        "no Writable after blocking: {f:?}"
    );
    assert_eq!(f.received[1], messages);
}

#[test]
fn flow_control_blocks_and_unblocks_service() {
    // Six channels of 256 KiB credit against a 1 MiB connection window:
    // the connection credit binds.
    flow_control::<HeapBytes, 64, 256>(Config::service(), 6, 16384, 400);
}

#[test]
fn flow_control_blocks_and_unblocks_constrained() {
    flow_control::<ConstrainedBytes, 2, 8>(Config::constrained(), 2, 1024, 150);
}

// ----- 6. hostile input ------------------------------------------------------

/// Drop counters of the server endpoint and of its connection to client 0.
fn drops(w: &mut Service) -> (DropCounts, DropCounts) {
    let ep = w.server.ep.stats().dropped;
    let conn = w.server_conn(0).expect("server connection").stats().dropped;
    (ep, conn)
}

/// Hands `data` to the server endpoint as if from client 0 and returns how
/// the counters moved: `(endpoint, connection)` deltas.
fn inject(w: &mut Service, data: &[u8]) -> (DropCounts, DropCounts) {
    let before = drops(w);
    let mut d = data.to_vec();
    let (now, from) = (w.net.now, w.client_addr(0));
    let _ = w.server.ep.handle(now, from, &mut d, &mut w.server.rng);
    w.after_step();
    let after = drops(w);
    (diff(after.0, before.0), diff(after.1, before.1))
}

fn diff(a: DropCounts, b: DropCounts) -> DropCounts {
    DropCounts {
        malformed: a.malformed - b.malformed,
        authentication: a.authentication - b.authentication,
        replay: a.replay - b.replay,
        unknown_session: a.unknown_session - b.unknown_session,
        busy: a.busy - b.busy,
        unexpected: a.unexpected - b.unexpected,
    }
}

fn one(f: impl FnOnce(&mut DropCounts)) -> DropCounts {
    let mut d = DropCounts::default();
    f(&mut d);
    d
}

/// Replayed, truncated, tampered, unknown-session and garbage datagrams
/// at an established session: each is dropped and counted once, under the
/// right reason, nothing panics, and the session carries on.
#[test]
fn hostile_datagrams_are_dropped_counted_and_harmless() {
    let mut w = Service::new(Config::service(), clean(), 51);
    w.net.capture = Some(Vec::new());
    let k = w.add_client();
    w.set_flow(k, Flow::new(51, 2, 30, 2000));
    assert!(w.run_until(secs(30), |w| w.flow(k).done()));
    // Everything sent so far has arrived.
    w.run_for(secs(1));
    assert_eq!(w.net.in_flight(), 0);
    let captured = w.net.capture.take().unwrap();
    let (client, server) = (w.client_addr(k), w.server.addr);
    let data_packets: Vec<Vec<u8>> = captured
        .iter()
        .filter(|c| c.1 == client && c.2 == server && c.3[0] & 0x80 == 0)
        .map(|c| c.3.clone())
        .collect();
    let initiation = captured
        .iter()
        .find(|c| c.1 == client && c.3[0] & 0x80 != 0)
        .map(|c| c.3.clone())
        .unwrap();
    assert!(data_packets.len() > 10);
    let local_id = w.server_conn(k).unwrap().local_id();
    let none = DropCounts::default();

    // Replays of real datagrams: authentic, but seen before.
    for p in data_packets.iter().rev().take(10) {
        assert_eq!(inject(&mut w, p), (none, one(|d| d.replay = 1)));
    }
    // A replayed handshake initiation creates no second session.
    let (ep, conn) = inject(&mut w, &initiation);
    assert_eq!(ep.total() + conn.total(), 1);
    assert_eq!(w.server.ep.stats().accepted, 1);
    assert_eq!(w.server.ep.len(), 1);

    // Truncated at every length.
    let p = data_packets.last().unwrap().clone();
    let hlen = tern::packet::ShortHeader::decode(&p).unwrap().len();
    for cut in 0..p.len() {
        let got = inject(&mut w, &p[..cut]);
        let want = if cut < hlen {
            (one(|d| d.malformed = 1), none)
        } else if cut < hlen + 16 {
            (none, one(|d| d.malformed = 1))
        } else {
            (none, one(|d| d.authentication = 1))
        };
        assert_eq!(got, want, "cut at {cut} of {}", p.len());
    }

    // Every single bit flipped.
    for bit in 0..p.len() * 8 {
        let mut t = p.clone();
        t[bit / 8] ^= 1 << (bit % 8);
        let (ep, conn) = inject(&mut w, &t);
        let what = format!("bit {bit} of {}", p.len());
        match bit / 8 {
            0 => assert_eq!(ep.total() + conn.total(), 1, "{what}"),
            1..=4 => assert_eq!((ep, conn), (one(|d| d.unknown_session = 1), none), "{what}"),
            _ => assert_eq!((ep, conn), (none, one(|d| d.authentication = 1)), "{what}"),
        }
    }

    // Other session ids, short and long headers.
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for _ in 0..200 {
        let mut t = p.clone();
        let id = (next() as u32).max(1);
        if id == local_id {
            continue;
        }
        t[1..5].copy_from_slice(&id.to_be_bytes());
        assert_eq!(inject(&mut w, &t), (one(|d| d.unknown_session = 1), none));
        let mut h = initiation.clone();
        h[5..9].copy_from_slice(&id.to_be_bytes());
        assert_eq!(inject(&mut w, &h), (one(|d| d.unknown_session = 1), none));
    }

    // Random garbage of every length.
    for i in 0..3000 {
        let len = (next() % 1500) as usize;
        let mut g: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if i % 3 == 0 && len > 0 {
            // Well-formed short headers for this very session: garbage that
            // must be stopped by authentication.
            g[0] &= 0x03;
            if len >= 5 {
                g[1..5].copy_from_slice(&local_id.to_be_bytes());
            }
        }
        let (ep, conn) = inject(&mut w, &g);
        assert_eq!(ep.total() + conn.total(), 1, "garbage {i}: {g:02x?}");
    }
    // The same at the client.
    let before =
        w.clients[k].ep.stats().dropped.total() + w.client_conn(k).unwrap().stats().dropped.total();
    for _ in 0..500 {
        let len = (next() % 600) as usize;
        let mut g: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let now = w.net.now;
        let c = &mut w.clients[k];
        let _ = c.ep.handle(now, server, &mut g, &mut c.rng);
    }
    w.after_step();
    let after =
        w.clients[k].ep.stats().dropped.total() + w.client_conn(k).unwrap().stats().dropped.total();
    assert_eq!(after - before, 500);

    // Nothing was accepted, nothing ended, and the session still works.
    assert_eq!(w.server.ep.stats().accepted, 1);
    assert_eq!(w.server.ep.len(), 1);
    assert!(Service::ending(&w.client_events(k)).is_none());
    assert!(Service::ending(&w.server_events(k)).is_none());
    w.flow_mut(k).to_send = [60, 60];
    assert!(
        w.run_until(secs(30), |w| w.flow(k).done()),
        "{:?}",
        w.flow(k)
    );
    assert!(w.client_conn(k).unwrap().is_established());
    assert!(w.server_conn(k).unwrap().is_established());
}

// ----- 7. many clients -------------------------------------------------------

/// Two hundred client endpoints on one server endpoint, each exchanging
/// messages over a lossy link and closing when done: all delivered, all
/// accepted, and every connection freed at the end.
#[test]
fn many_clients_on_one_endpoint() {
    const CLIENTS: usize = 200;
    let link = Link {
        loss: 0.05,
        jitter: ms(5),
        ..clean()
    };
    // A service buffer takes its whole window once used; smaller windows
    // keep this test's memory small (the scenario is about the endpoint).
    let config = Config {
        channel_window: 64 * 1024,
        max_message_size: 16 * 1024,
        ..Config::service()
    };
    let mut w = Service::new(config, link, 61);
    for k in 0..CLIENTS {
        w.add_client();
        w.set_flow(k, Flow::new(61 + k as u64, 2, 10, 1500));
    }
    let mut closing = [false; CLIENTS];
    let all_closed = w.run_until(secs(120), |w| {
        for (k, closing) in closing.iter_mut().enumerate() {
            if !*closing && w.flow(k).done() {
                let now = w.net.now;
                w.client_conn(k).unwrap().close(now, 0, "bye");
                *closing = true;
            }
        }
        (0..CLIENTS).all(|k| w.both_closed(k))
    });
    assert!(all_closed);
    w.run_for(secs(5));
    let st: EndpointStats = w.server.ep.stats();
    assert_eq!(st.accepted, CLIENTS as u64);
    // Only stragglers for freed sessions (a retransmitted CLOSE arriving
    // after the server's draining period) are dropped.
    assert_eq!(st.dropped.total(), st.dropped.unknown_session, "{st:?}");
    assert!(st.dropped.unknown_session < CLIENTS as u64 / 10, "{st:?}");
    for k in 0..CLIENTS {
        assert!(w.flow(k).done());
        assert_eq!(
            Service::ending(&w.client_events(k)).unwrap().1,
            ConnectionError::LocallyClosed { code: 0 }
        );
        let server = w.server_events(k);
        assert!(
            matches!(
                Service::ending(&server).unwrap().1,
                ConnectionError::PeerClosed { code: 0, .. }
            ),
            "client {k}: {server:?}"
        );
        assert!(w.clients[k].ep.is_empty());
    }
    // Every connection was freed once closed.
    assert!(w.server.ep.is_empty());
    assert_eq!(w.reaped[SERVER], CLIENTS);
    // One server connection per client: no retransmitted or duplicated
    // initiation made a second one.
    let conns: std::collections::HashSet<_> = w
        .log
        .iter()
        .filter(|l| l.node == SERVER)
        .map(|l| l.conn)
        .collect();
    assert_eq!(conns.len(), CLIENTS);
}

// ----- 8. datagrams ----------------------------------------------------------

/// Sends `n` datagrams from client to server over `link`; returns the
/// sequence numbers received, in order. Every datagram received must be
/// intact and none twice.
fn datagrams(link: Link, n: u32, seed: u64) -> Vec<u32> {
    let mut w = Service::new(Config::service(), link, seed);
    let k = w.add_client();
    assert!(w.run_until(secs(30), |w| w.connected(k)));
    let mut sent = 0u32;
    let mut got: Vec<u32> = Vec::new();
    let mut buf = vec![0u8; 2000];
    let mut quiet_since = None;
    let mut last_burst = None;
    w.run_until(secs(120), |w| {
        // Bursts of 16 at distinct instants: the receiver's queue (64)
        // holds what one instant delivers until the application reads.
        let mut burst = 0;
        if last_burst != Some(w.net.now) {
            last_burst = Some(w.net.now);
            burst = 16;
        }
        while sent < n && burst > 0 {
            burst -= 1;
            let d = simulate::message(seed, 0, 99, sent, 1000);
            match w.client_conn(k).unwrap().send_datagram(&d) {
                Ok(()) => sent += 1,
                Err(SendError::WouldBlock(SendBlocked::Queue)) => break,
                Err(e) => panic!("send_datagram: {e}"),
            }
        }
        let conn = w.server_conn(k).unwrap();
        while let Some(len) = conn.recv_datagram(&mut buf).expect("buffer") {
            let d = &buf[..len];
            assert!(len >= 9, "datagram of {len} bytes");
            let seq = u32::from_be_bytes([d[5], d[6], d[7], d[8]]);
            assert!(seq < sent, "datagram {seq} never sent");
            assert!(
                d == simulate::message(seed, 0, 99, seq, 1000),
                "datagram {seq} corrupted"
            );
            assert!(!got.contains(&seq), "datagram {seq} delivered twice");
            got.push(seq);
        }
        if sent == n && w.net.in_flight() == 0 {
            let now = w.net.now;
            let since = *quiet_since.get_or_insert(now);
            return now >= since + secs(1);
        }
        quiet_since = None;
        false
    });
    assert_eq!(sent, n);
    let (c, s) = (
        w.client_conn(k).unwrap().stats(),
        w.server_conn(k).unwrap().stats(),
    );
    assert_eq!(c.tx_datagrams, u64::from(n));
    assert_eq!(s.rx_datagrams, got.len() as u64);
    assert_eq!(s.datagrams_dropped, 0, "{s:?}");
    got
}

#[test]
fn datagrams_arrive_intact_once_or_not_at_all() {
    // A perfect link: every datagram, in order.
    let got = datagrams(clean(), 500, 71);
    assert_eq!(got, (0..500).collect::<Vec<_>>());
    // Loss, reordering and duplication: some lost, never retransmitted,
    // none corrupted, and none twice although the network duplicates.
    let link = Link {
        loss: 0.3,
        duplicate: 0.2,
        reorder: 0.1,
        ..lossy()
    };
    let got = datagrams(link, 500, 72);
    assert!(got.len() < 450 && got.len() > 250, "{} of 500", got.len());
}

/// A receiver that does not read keeps at most its queue of datagrams and
/// counts the rest as dropped.
#[test]
fn unread_datagrams_are_bounded() {
    let config = Config::service();
    let mut w = Service::new(config.clone(), clean(), 73);
    let k = w.add_client();
    assert!(w.run_until(secs(30), |w| w.connected(k)));
    let mut sent = 0;
    w.run_until(secs(10), |w| {
        while sent < 300 {
            let d = simulate::message(73, 0, 99, sent, 1000);
            if w.client_conn(k).unwrap().send_datagram(&d).is_err() {
                break;
            }
            sent += 1;
        }
        false
    });
    assert_eq!(sent, 300);
    let s = w.server_conn(k).unwrap();
    let st = s.stats();
    assert!(st.rx_datagrams <= config.datagram_queue as u64, "{st:?}");
    assert_eq!(st.rx_datagrams + st.datagrams_dropped, 300, "{st:?}");
    let mut buf = vec![0u8; 2000];
    let mut read = 0;
    while s.recv_datagram(&mut buf).unwrap().is_some() {
        read += 1;
    }
    assert_eq!(read, st.rx_datagrams);
}

// ----- the command line ------------------------------------------------------

fn simulate_cli(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tern-conformance"))
        .arg("simulate")
        .args(args)
        .output()
        .expect("run tern-conformance");
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let last = stdout.lines().last().unwrap_or_default().to_string();
    (out.status.success(), last)
}

#[test]
fn simulate_command_reports_exact_delivery() {
    let (ok, last) = simulate_cli(&[
        "--seed",
        "8",
        "--loss",
        "0.3",
        "--reorder",
        "0.1",
        "--duplicate",
        "0.05",
        "--messages",
        "300",
        "--size",
        "1024",
        "--profile",
        "constrained",
    ]);
    assert_eq!(last, "delivered 600/600 in order, 0 duplicated, 0 lost");
    assert!(ok);
    // And fails when it cannot deliver.
    let (ok, last) = simulate_cli(&["--loss", "1", "--messages", "10"]);
    assert_eq!(last, "delivered 0/20 in order, 0 duplicated, 20 lost");
    assert!(!ok);
}
