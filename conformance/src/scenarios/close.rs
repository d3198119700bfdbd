//! Close races: both sides closing at once, closing with data in flight,
//! closing during the handshake, and closing while the peer is sending.
//! Each side must report exactly one ending, as its last event, of the
//! kind the race allows; a side that reports `LocallyClosed` after
//! `close()` must have had everything it queued delivered; and the close
//! must complete within its bound, after which both endpoints free the
//! session and fall silent.

use super::{Params, Scenario, Verdict, ensure, fmt_secs, is_timeout, ms, one_close, presets};
use super::{quiet_after, secs};
use crate::scenario::{Flow, World};
use crate::sim::Link;
use std::time::Duration;
use tern::config::Config;
use tern::connection::Reason;
use tern::storage::ByteStore;
use tern::{ConnectionError, Event, Instant};

pub(super) fn register(v: &mut Vec<Scenario>) {
    presets!(
        v,
        "close-races/simultaneous",
        "both sides queue messages and call close() at the same instant; on a clean link, then with 10% loss",
        &[
            "each side ends LocallyClosed with its own code or PeerClosed with the peer's (or, under loss, a timeout)",
            "a side that ends LocallyClosed had every message it queued delivered",
            "clean link: done within 10 s; lossy: within idle_timeout + delivery_timeout",
        ],
        close_race,
        Race::Simultaneous
    );
    presets!(
        v,
        "close-races/data-in-flight",
        "the client queues messages and calls close() before any has left; clean, then 10% loss",
        &[
            "every queued message is delivered before the close completes",
            "the client ends LocallyClosed, the server PeerClosed with the client's code and reason (or, under loss, a timeout)",
        ],
        close_race,
        Race::InFlight
    );
    presets!(
        v,
        "close-races/during-handshake",
        "the client closes before its first message left, and again after it left; the server closes its half-open session",
        &[
            "close() before the first message: LocallyClosed at once and nothing is ever sent",
            "close() after it: LocallyClosed at once, nothing more sent; the server's session ends HandshakeTimeout within handshake_timeout and sent at most 3x the bytes it received",
            "the server's close: LocallyClosed at once, nothing more sent by it; the client ends IdleTimeout within idle_timeout",
        ],
        close_race,
        Race::Handshake
    );
    presets!(
        v,
        "close-races/while-peer-sends",
        "the server streams messages; the client calls close() mid-stream; clean, then 10% loss",
        &[
            "the client ends LocallyClosed; the server PeerClosed with the client's code (or, under loss, a timeout)",
            "what the client read before its Closed is exactly-once and in order; the server stops sending",
        ],
        close_race,
        Race::PeerSending
    );
}

/// Which race.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Race {
    Simultaneous,
    InFlight,
    Handshake,
    PeerSending,
}

const CLIENT_CODE: u32 = 0x100;
const SERVER_CODE: u32 = 0x101;

fn peer_closed(code: u32, text: &str) -> ConnectionError {
    ConnectionError::PeerClosed {
        code,
        reason: Reason::new(text),
    }
}

fn close_race<B: ByteStore, const CH: usize, const SENT: usize>(
    config: Config,
    p: &Params,
    race: Race,
) -> Verdict {
    let clean = Link {
        jitter: ms(3),
        ..Link::default()
    };
    if race == Race::Handshake {
        return during_handshake::<B, CH, SENT>(&config, p, clean);
    }
    let lossy = Link { loss: 0.1, ..clean };
    let mut out = Vec::new();
    for (i, link) in [clean, lossy].into_iter().enumerate() {
        let seed = p.seed ^ (i as u64) << 8;
        let what = ["clean", "lossy"][i];
        let r = match race {
            Race::PeerSending => peer_sending::<B, CH, SENT>(&config, seed, link, i == 1),
            _ => queue_and_close::<B, CH, SENT>(&config, seed, link, i == 1, race),
        };
        out.push(format!(
            "{what}: {}",
            r.map_err(|e| format!("{what} link: {e}"))?
        ));
    }
    Ok(out.join("; "))
}

/// Runs until both ends of client `k`'s session ended (within `bound`),
/// checks each has exactly one `Closed`, last, and that the endpoints then
/// free the session and fall silent. Returns the endings.
fn await_close<B: ByteStore, const CH: usize, const SENT: usize>(
    w: &mut World<B, CH, SENT>,
    k: usize,
    bound: Duration,
) -> Result<[(Instant, ConnectionError); 2], String> {
    ensure!(
        w.run_until(bound, |w| w.both_closed(k)),
        "not both closed within {}: client {:?}, server {:?}",
        fmt_secs(bound),
        World::<B, CH, SENT>::ending(&w.client_events(k)),
        World::<B, CH, SENT>::ending(&w.server_events(k))
    );
    let (ce, se) = (w.client_events(k), w.server_events(k));
    one_close(&ce, "client")?;
    one_close(&se, "server")?;
    quiet_after(w)?;
    // Events stay as they were (no event after Closed is also checked at
    // every step by the harness).
    ensure!(
        w.client_events(k) == ce && w.server_events(k) == se,
        "events after the close"
    );
    Ok([
        World::<B, CH, SENT>::ending(&ce).expect("closed"),
        World::<B, CH, SENT>::ending(&se).expect("closed"),
    ])
}

/// The bound on a close: round trips on a clean link, the timeouts under
/// loss.
fn close_bound(config: &Config, lossy: bool) -> Duration {
    if lossy {
        config.idle_timeout + config.delivery_timeout.unwrap_or(config.idle_timeout)
    } else {
        secs(10)
    }
}

fn queue_and_close<B: ByteStore, const CH: usize, const SENT: usize>(
    config: &Config,
    seed: u64,
    link: Link,
    lossy: bool,
    race: Race,
) -> Result<String, String> {
    let mut w = World::<B, CH, SENT>::new(config.clone(), link, seed);
    let k = w.add_client();
    // Several packets' worth, all within the windows (nothing refused).
    let n = if config.channel_window <= 4096 { 2 } else { 24 };
    let mut f = Flow::new(seed, config.max_channels.min(2), 0, 600);
    f.to_send = [0, 0];
    w.set_flow(k, f);
    ensure!(w.run_until(secs(30), |w| w.connected(k)), "no handshake");
    let to_send = if race == Race::Simultaneous {
        [n, n]
    } else {
        [n, 0]
    };
    w.flow_mut(k).to_send = to_send;
    w.after_step();
    ensure!(
        w.flow(k).sent == to_send,
        "not all queued at once: {:?}",
        w.flow(k)
    );
    let now = w.net.now;
    w.client_conn(k)
        .ok_or("no client connection")?
        .close(now, CLIENT_CODE, "client done");
    if race == Race::Simultaneous {
        w.server_conn(k)
            .ok_or("no server connection")?
            .close(now, SERVER_CODE, "server done");
    }
    w.after_step();
    let [(c_at, c), (s_at, s)] = await_close(&mut w, k, close_bound(config, lossy))?;
    let f = w.flow(k).clone();
    let client_ok = c == ConnectionError::LocallyClosed { code: CLIENT_CODE }
        || (race == Race::Simultaneous && c == peer_closed(SERVER_CODE, "server done"))
        || (lossy && is_timeout(&c));
    let server_ok = s == peer_closed(CLIENT_CODE, "client done")
        || (race == Race::Simultaneous
            && s == ConnectionError::LocallyClosed { code: SERVER_CODE })
        || (lossy && is_timeout(&s));
    ensure!(client_ok, "client ended with {c:?}");
    ensure!(server_ok, "server ended with {s:?}");
    // close() flushes: LocallyClosed means what was queued arrived.
    for (side, e) in [(0, c), (1, s)] {
        if matches!(e, ConnectionError::LocallyClosed { .. }) {
            ensure!(
                f.received[1 - side] == to_send[side],
                "side {side} ended {e:?} but its peer read {} of its {} messages",
                f.received[1 - side],
                to_send[side]
            );
        }
    }
    if race == Race::InFlight && !lossy {
        ensure!(f.received[1] == n, "server read {} of {n}", f.received[1]);
    }
    Ok(format!(
        "client {c} after {}, server {s} after {}; read {:?}",
        fmt_secs(c_at.saturating_duration_since(now)),
        fmt_secs(s_at.saturating_duration_since(now)),
        f.received
    ))
}

fn peer_sending<B: ByteStore, const CH: usize, const SENT: usize>(
    config: &Config,
    seed: u64,
    link: Link,
    lossy: bool,
) -> Result<String, String> {
    let mut w = World::<B, CH, SENT>::new(config.clone(), link, seed);
    let k = w.add_client();
    let mut f = super::flow(seed, config, 3000);
    f.to_send[0] = 0;
    w.set_flow(k, f);
    ensure!(
        w.run_until(secs(120), |w| w.flow(k).received[0] >= 20),
        "the stream did not start"
    );
    let now = w.net.now;
    w.client_conn(k)
        .ok_or("no client connection")?
        .close(now, CLIENT_CODE, "client done");
    w.after_step();
    let [(c_at, c), (s_at, s)] = await_close(&mut w, k, close_bound(config, lossy))?;
    ensure!(
        c == ConnectionError::LocallyClosed { code: CLIENT_CODE },
        "client ended with {c:?}"
    );
    ensure!(
        s == peer_closed(CLIENT_CODE, "client done") || (lossy && is_timeout(&s)),
        "server ended with {s:?}"
    );
    let f = w.flow(k);
    ensure!(
        f.sent[1] < f.to_send[1],
        "the server finished its stream before the close"
    );
    Ok(format!(
        "client {c} after {}, server {s} after {}; {} of {} streamed messages read",
        fmt_secs(c_at.saturating_duration_since(now)),
        fmt_secs(s_at.saturating_duration_since(now)),
        f.received[0],
        f.sent[1]
    ))
}

fn during_handshake<B: ByteStore, const CH: usize, const SENT: usize>(
    config: &Config,
    p: &Params,
    link: Link,
) -> Verdict {
    // Datagrams and bytes captured from `from` to `to` since `since`.
    let captured = |w: &World<B, CH, SENT>, from, to, since: Instant| -> (usize, u64) {
        let c = w.net.capture.as_ref().expect("capture");
        let v: Vec<_> = c
            .iter()
            .filter(|c| c.0 >= since && c.1 == from && c.2 == to)
            .collect();
        (v.len(), v.iter().map(|c| c.3.len() as u64).sum())
    };

    // 1. Before the first message left: nothing is ever sent.
    let mut w = World::<B, CH, SENT>::new(config.clone(), link, p.seed);
    let k = w.add_client();
    let now = w.net.now;
    w.client_conn(k)
        .ok_or("no client connection")?
        .close(now, CLIENT_CODE, "never mind");
    w.after_step();
    let want = [(
        now,
        Event::Closed(ConnectionError::LocallyClosed { code: CLIENT_CODE }),
    )];
    ensure!(
        w.client_events(k) == want,
        "client events {:?}",
        w.client_events(k)
    );
    w.run_for(config.handshake_timeout);
    ensure!(
        w.net.stats.sent == 0,
        "{} datagrams sent after a close before the first message",
        w.net.stats.sent
    );
    ensure!(w.clients[k].ep.is_empty(), "client connection not freed");

    // 2. After it left: the client stops at once; the server's half-open
    //    session times out, bounded by the anti-amplification limit.
    let mut w = World::<B, CH, SENT>::new(config.clone(), link, p.seed ^ 1);
    w.net.capture = Some(Vec::new());
    let k = w.add_client();
    let start = w.net.now;
    ensure!(
        w.run_until(secs(5), |w| w.net.stats.sent >= 1),
        "the first message never left"
    );
    let now = w.net.now;
    w.client_conn(k)
        .ok_or("client connection gone")?
        .close(now, CLIENT_CODE, "never mind");
    w.after_step();
    let bound = config.handshake_timeout + secs(1);
    ensure!(
        w.run_until(bound, |w| w.both_closed(k)),
        "not both ended within {}: client {:?}, server {:?}",
        fmt_secs(bound),
        w.client_events(k),
        w.server_events(k)
    );
    let (c, s) = (w.client_events(k), w.server_events(k));
    one_close(&c, "client")?;
    one_close(&s, "server")?;
    ensure!(
        c == [(
            now,
            Event::Closed(ConnectionError::LocallyClosed { code: CLIENT_CODE })
        )],
        "client events {c:?}"
    );
    let (s_at, s_why) = World::<B, CH, SENT>::ending(&s).expect("closed");
    ensure!(
        s_why == ConnectionError::HandshakeTimeout && s_at <= start + bound,
        "server ended {s_why:?} at {s_at:?}"
    );
    let (client, server) = (w.client_addr(k), w.server.addr);
    let (after, _) = captured(&w, client, server, now + ms(1));
    ensure!(
        after == 0,
        "the client sent {after} datagrams after closing"
    );
    let (_, rx) = captured(&w, client, server, start);
    let (answers, tx) = captured(&w, server, client, start);
    ensure!(
        tx <= 3 * rx,
        "the server sent {tx} bytes for the {rx} it received"
    );
    quiet_after(&mut w)?;
    let part2 = format!(
        "server HandshakeTimeout after {} with {answers} answers ({tx} bytes for {rx})",
        fmt_secs(s_at.saturating_duration_since(start))
    );

    // 3. The server closes its half-open session.
    let mut w = World::<B, CH, SENT>::new(config.clone(), link, p.seed ^ 2);
    w.net.capture = Some(Vec::new());
    let k = w.add_client();
    ensure!(
        w.run_until(secs(5), |w| w.server_handles[k].is_some()),
        "the server never accepted"
    );
    let now = w.net.now;
    w.server_conn(k)
        .ok_or("server connection gone")?
        .close(now, SERVER_CODE, "not now");
    w.after_step();
    let bound = config.idle_timeout + secs(2);
    ensure!(
        w.run_until(bound, |w| w.both_closed(k)),
        "not both ended within {}: client {:?}, server {:?}",
        fmt_secs(bound),
        w.client_events(k),
        w.server_events(k)
    );
    let (c, s) = (w.client_events(k), w.server_events(k));
    one_close(&c, "client")?;
    ensure!(
        s == [(
            now,
            Event::Closed(ConnectionError::LocallyClosed { code: SERVER_CODE })
        )],
        "server events {s:?}"
    );
    let (c_at, c_why) = World::<B, CH, SENT>::ending(&c).expect("closed");
    ensure!(
        c_why == ConnectionError::IdleTimeout && c_at <= now + bound,
        "client ended {c_why:?} at {c_at:?}"
    );
    let (client, server) = (w.client_addr(k), w.server.addr);
    let (after, _) = captured(&w, server, client, now + ms(1));
    ensure!(
        after == 0,
        "the server sent {after} datagrams after closing"
    );
    quiet_after(&mut w)?;
    Ok(format!(
        "before the first message: nothing sent; after it: {part2}; server close: client IdleTimeout after {}",
        fmt_secs(c_at.saturating_duration_since(now))
    ))
}
