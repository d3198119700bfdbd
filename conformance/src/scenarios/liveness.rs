//! Peers that vanish: a peer that stops answering (during the handshake,
//! while idle, mid-transfer) and a server that restarts and loses every
//! session. The survivor must end with the right typed error within its
//! timeout bound, never hang, and a fresh connection must work.

use super::{
    Params, Scenario, Verdict, close_cleanly, ensure, flow, fmt_secs, presets, quiet_after, secs,
    transfer,
};
use crate::scenario::{Flow, World};
use crate::sim::Link;
use std::time::Duration;
use tern::config::Config;
use tern::storage::ByteStore;
use tern::{ConnectionError, Event, Instant};

pub(super) fn register(v: &mut Vec<Scenario>) {
    presets!(
        v,
        "silent-peer/handshake",
        "the server never answers the client's first message",
        &[
            "the client ends with HandshakeTimeout exactly handshake_timeout after connect, its only event",
            "the endpoint frees the connection and sends nothing more",
        ],
        silent_handshake
    );
    presets!(
        v,
        "silent-peer/idle",
        "an established, idle session (keepalives on); then every datagram to and from the server is lost",
        &[
            "both sides end with IdleTimeout, no later than idle_timeout after the silence began and no earlier than idle_timeout - keepalive",
            "both endpoints free the connection and send nothing more",
        ],
        silent_idle
    );
    presets!(
        v,
        "silent-peer/transfer",
        "traffic flows both ways; mid-transfer every datagram to and from the server is lost",
        &[
            "both sides end with IdleTimeout or DeliveryTimeout, between min and max of (idle_timeout, delivery_timeout) after the silence began",
            "both endpoints free the connection and send nothing more",
        ],
        silent_transfer
    );
    presets!(
        v,
        "peer-restart",
        "mid-transfer the server loses all state (a new endpoint with the same key and address); then a new client connects",
        &[
            "the client ends with IdleTimeout or DeliveryTimeout within max(idle_timeout, delivery_timeout) of the restart",
            "the restarted server drops the old session's packets as unknown_session, counts them, and sends nothing to the old client",
            "a fresh connection to the restarted server delivers its traffic and closes cleanly",
        ],
        peer_restart
    );
}

/// Longest a datagram already on the wire takes to arrive (delay and
/// jitter): what was sent before the silence still counts as heard.
const IN_FLIGHT: Duration = Duration::from_millis(12);

fn link() -> Link {
    Link {
        jitter: super::ms(2),
        ..Link::default()
    }
}

fn silent_handshake<B: ByteStore, const CH: usize, const SENT: usize>(
    config: Config,
    p: &Params,
) -> Verdict {
    let mut w = World::<B, CH, SENT>::new(config.clone(), link(), p.seed);
    let server = w.server.addr;
    w.net.blackholed.push(server);
    let start = w.net.now;
    let k = w.add_client();
    let limit = config.handshake_timeout * 2;
    w.run_until(limit, |w| {
        World::<B, CH, SENT>::ending(&w.client_events(k)).is_some()
    });
    let events = w.client_events(k);
    let want = [(
        start + config.handshake_timeout,
        Event::Closed(ConnectionError::HandshakeTimeout),
    )];
    ensure!(
        events == want,
        "client events {events:?}, expected {want:?}"
    );
    let attempts = w.net.stats.sent;
    quiet_after(&mut w)?;
    Ok(format!(
        "HandshakeTimeout at {} after {attempts} attempts",
        fmt_secs(config.handshake_timeout)
    ))
}

/// Connects client 0, exchanges a few messages and lets the
/// acknowledgements settle.
fn settle<B: ByteStore, const CH: usize, const SENT: usize>(
    w: &mut World<B, CH, SENT>,
    seed: u64,
) -> Result<usize, String> {
    let k = w.add_client();
    w.set_flow(k, Flow::new(seed, 2.min(w.config.max_channels), 5, 300));
    transfer(w, k, secs(60))?;
    w.run_for(secs(1));
    Ok(k)
}

/// Checks that both ends of client `k`'s session ended with one of
/// `allowed` between `earliest` and `latest`; returns the endings.
fn both_end<B: ByteStore, const CH: usize, const SENT: usize>(
    w: &mut World<B, CH, SENT>,
    k: usize,
    allowed: &[ConnectionError],
    earliest: Instant,
    latest: Instant,
) -> Result<[(Instant, ConnectionError); 2], String> {
    let limit = latest.saturating_duration_since(w.net.now) + secs(5);
    ensure!(
        w.run_until(limit, |w| w.both_closed(k)),
        "hang: not both ended by {latest:?} (client {:?}, server {:?})",
        World::<B, CH, SENT>::ending(&w.client_events(k)),
        World::<B, CH, SENT>::ending(&w.server_events(k))
    );
    let c = World::<B, CH, SENT>::ending(&w.client_events(k)).expect("closed");
    let s = World::<B, CH, SENT>::ending(&w.server_events(k)).expect("closed");
    for (who, (at, why)) in [("client", c), ("server", s)] {
        ensure!(allowed.contains(&why), "{who} ended with {why:?}");
        ensure!(
            at >= earliest && at <= latest,
            "{who} ended with {why:?} at {at:?}, outside [{earliest:?}, {latest:?}]"
        );
    }
    Ok([c, s])
}

fn silent_idle<B: ByteStore, const CH: usize, const SENT: usize>(
    config: Config,
    p: &Params,
) -> Verdict {
    let mut w = World::<B, CH, SENT>::new(config.clone(), link(), p.seed);
    let k = settle(&mut w, p.seed)?;
    // Idle for a while, on keepalives.
    w.run_for(config.idle_timeout + secs(3));
    let silent = w.net.now;
    let server = w.server.addr;
    w.net.blackholed.push(server);
    let keepalive = config.keepalive.unwrap_or(Duration::ZERO);
    let [c, s] = both_end(
        &mut w,
        k,
        &[ConnectionError::IdleTimeout],
        silent + config.idle_timeout - keepalive - secs(1),
        silent + config.idle_timeout + IN_FLIGHT,
    )?;
    quiet_after(&mut w)?;
    Ok(format!(
        "IdleTimeout {} (client) and {} (server) after the silence",
        fmt_secs(c.0.saturating_duration_since(silent)),
        fmt_secs(s.0.saturating_duration_since(silent))
    ))
}

fn silent_transfer<B: ByteStore, const CH: usize, const SENT: usize>(
    config: Config,
    p: &Params,
) -> Verdict {
    let mut w = World::<B, CH, SENT>::new(config.clone(), link(), p.seed);
    let k = w.add_client();
    let n = if config.channel_window <= 4096 {
        300
    } else {
        3000
    };
    w.set_flow(k, flow(p.seed, &config, n));
    let some = n / 10;
    ensure!(
        w.run_until(secs(600), |w| w.flow(k).received.iter().all(|&r| r >= some)),
        "no progress: {:?}",
        w.flow(k).received
    );
    ensure!(!w.flow(k).done(), "traffic finished before the silence");
    let silent = w.net.now;
    let server = w.server.addr;
    w.net.blackholed.push(server);
    let delivery = config.delivery_timeout.unwrap_or(config.idle_timeout);
    let [c, s] = both_end(
        &mut w,
        k,
        &[
            ConnectionError::IdleTimeout,
            ConnectionError::DeliveryTimeout,
        ],
        silent + config.idle_timeout.min(delivery) - secs(1),
        // Datagrams already on the wire still arrive.
        silent + config.idle_timeout.max(delivery) + IN_FLIGHT,
    )?;
    quiet_after(&mut w)?;
    Ok(format!(
        "client {} after {}, server {} after {}",
        c.1,
        fmt_secs(c.0.saturating_duration_since(silent)),
        s.1,
        fmt_secs(s.0.saturating_duration_since(silent))
    ))
}

fn peer_restart<B: ByteStore, const CH: usize, const SENT: usize>(
    config: Config,
    p: &Params,
) -> Verdict {
    let mut w = World::<B, CH, SENT>::new(config.clone(), link(), p.seed);
    w.net.capture = Some(Vec::new());
    let k = w.add_client();
    let n = if config.channel_window <= 4096 {
        300
    } else {
        3000
    };
    w.set_flow(k, flow(p.seed, &config, n));
    let some = n / 10;
    ensure!(
        w.run_until(secs(600), |w| w.flow(k).received.iter().all(|&r| r >= some)),
        "no progress: {:?}",
        w.flow(k).received
    );
    ensure!(!w.flow(k).done(), "traffic finished before the restart");
    let restart = w.net.now;
    w.restart_server(p.seed ^ 0x7265_7374);
    let delivery = config.delivery_timeout.unwrap_or(config.idle_timeout);
    let latest = restart + config.idle_timeout.max(delivery) + IN_FLIGHT;
    let ended = w.run_until(latest.saturating_duration_since(w.net.now) + secs(1), |w| {
        World::<B, CH, SENT>::ending(&w.client_events(k)).is_some()
    });
    ensure!(ended, "hang: the client did not end by {latest:?}");
    let (at, why) = World::<B, CH, SENT>::ending(&w.client_events(k)).expect("ended");
    ensure!(
        matches!(
            why,
            ConnectionError::IdleTimeout | ConnectionError::DeliveryTimeout
        ),
        "client ended with {why:?}"
    );
    ensure!(at <= latest, "client ended at {at:?}, after {latest:?}");
    let es = w.server.ep.stats();
    ensure!(
        es.dropped.unknown_session > 0 && es.accepted == 0,
        "restarted server: {es:?}"
    );
    // Let the old session's last packets (a CLOSE) arrive.
    w.run_for(secs(5));
    let old = w.client_addr(k);
    let server = w.server.addr;
    let answers = w
        .net
        .capture
        .as_ref()
        .expect("capture")
        .iter()
        .filter(|c| c.0 > restart && c.1 == server && c.2 == old)
        .count();
    ensure!(
        answers == 0,
        "the restarted server sent {answers} datagrams to the old client"
    );
    let dropped = w.server.ep.stats().dropped;
    ensure!(
        dropped.total() == dropped.unknown_session,
        "restarted server dropped {dropped:?}"
    );
    w.net.capture = None;
    // A fresh connection works.
    let k2 = w.add_client();
    let m = 60;
    w.set_flow(k2, flow(p.seed ^ 2, &config, m));
    transfer(&mut w, k2, secs(600))?;
    close_cleanly(&mut w, k2, false)?;
    Ok(format!(
        "client {why} {} after the restart; {} packets dropped as unknown_session, none answered; fresh connection delivered {m}+{m}",
        fmt_secs(at.saturating_duration_since(restart)),
        dropped.unknown_session
    ))
}
