//! Hostile input at the endpoint: a flood of handshake initiations from
//! many addresses, and packets for sessions that do not exist. The
//! endpoint's limits must hold, memory must stay bounded, the counters must
//! say what was dropped, nothing may be answered with more bytes than
//! arrived, and legitimate clients must still get through (or the
//! documented limit must explain why not).

use super::{Params, Scenario, Verdict, close_cleanly, ensure, fmt_secs, ms, presets, secs};
use super::{quiet_after, transfer};
use crate::scenario::{Flow, World};
use crate::sim::{Captured, Link};
use crate::simulate::keys;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use std::collections::HashMap;
use std::net::SocketAddr;
use tern::config::Config;
use tern::connection::Credentials;
use tern::endpoint::EndpointStats;
use tern::packet::{HandshakeHeader, HandshakeKind, LONG_HEADER_LEN, ShortHeader, VERSION};
use tern::storage::ByteStore;
use tern::{Connection, ConnectionError, Event, Instant};

pub(super) fn register(v: &mut Vec<Scenario>) {
    presets!(
        v,
        "handshake-flood/rate-limit",
        "initiations from thousands of spoofed addresses (1000 a second for 2 s; 100 a second for a constrained server) against a server limited to a few handshakes a second; a legitimate client connects mid-flood",
        &[
            "accepted handshakes stay within handshake_burst + handshakes_per_second x elapsed; connections within max_connections at every step",
            "every initiation is accepted or counted as refused (refused_rate, with dropped.busy agreeing)",
            "no spoofed address is sent more than 3x the bytes it sent",
            "every flood session ends HandshakeTimeout and is freed; the legitimate client connects within handshake_timeout and delivers its messages",
        ],
        flood,
        Flood::RateLimit
    );
    presets!(
        v,
        "handshake-flood/table-full",
        "initiations from spoofed addresses fill the server's session table (max_connections 32, or 4 constrained); a legitimate client connects mid-flood, another once the flood's sessions expired",
        &[
            "connections never exceed max_connections; each refused initiation is counted in refused_full",
            "no spoofed address is sent more than 3x the bytes it sent",
            "the first client connects, or ends HandshakeTimeout while the table was full at every one of its attempts (refused_full counts them)",
            "every flood session ends HandshakeTimeout within handshake_timeout and is freed; then a new client connects and delivers",
        ],
        flood,
        Flood::TableFull
    );
    presets!(
        v,
        "unknown-sessions",
        "short- and long-header packets with unknown session ids from spoofed addresses and from the client, a closed session's packets replayed after both ends freed it, and initiations of another version",
        &[
            "every packet for an unknown session is dropped and counted as unknown_session, at the server and at the client endpoint, exactly once",
            "none is answered; the live session is unaffected and still delivers",
            "a closed and freed session's replayed packets are dropped, counted and unanswered (nothing at all is sent)",
            "other-version initiations get one 14-byte VERSION_MISMATCH each, at most 8 per instant, only for datagrams of 45 bytes or more: never more bytes than received",
        ],
        unknown_sessions
    );
}

/// Which flood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Flood {
    RateLimit,
    TableFull,
}

/// A spoofed address, distinct for each `i`.
fn spoofed(i: usize) -> SocketAddr {
    let i = i as u32;
    SocketAddr::from((
        [10, (i >> 16) as u8, (i >> 8) as u8, i as u8],
        40_000 + (i % 1000) as u16,
    ))
}

/// `n` distinct first handshake messages for the server of `seed`, made
/// by real client connections (the flood replays them round robin from
/// many addresses: each address makes a new session).
fn initiations<B: ByteStore, const CH: usize, const SENT: usize>(
    config: &Config,
    seed: u64,
    server: SocketAddr,
    n: usize,
) -> Vec<Vec<u8>> {
    let (_, server_pub, _) = keys(seed);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xf100d);
    let mut buf = vec![0u8; 2048];
    (0..n)
        .map(|i| {
            let mut key = [0u8; 32];
            rng.fill_bytes(&mut key);
            let creds = Credentials {
                private_key: Some(key),
                remote_public_key: Some(server_pub),
                psk: None,
            };
            let id = 0x0100_0000 | i as u32;
            let mut c = Connection::<B, CH, SENT>::connect(
                config.clone(),
                &creds,
                Instant::from_millis(1),
                id,
                server,
                &mut rng,
            )
            .expect("connect");
            let t = c
                .poll_transmit(Instant::from_millis(1), &mut buf)
                .expect("buffer")
                .expect("first message");
            buf[..t.len].to_vec()
        })
        .collect()
}

/// Bytes received from and sent to each address of `addrs` by `node`.
fn exchanged(capture: &[Captured], node: SocketAddr) -> HashMap<SocketAddr, (u64, u64)> {
    let mut m: HashMap<SocketAddr, (u64, u64)> = HashMap::new();
    for (_, from, to, d) in capture {
        if *to == node {
            m.entry(*from).or_default().0 += d.len() as u64;
        } else if *from == node {
            m.entry(*to).or_default().1 += d.len() as u64;
        }
    }
    m
}

/// Fails if `node` sent any spoofed address more than `factor` times the
/// bytes it received from it; returns the most it sent one of them.
fn amplification(
    capture: &[Captured],
    node: SocketAddr,
    spoofed: &dyn Fn(&SocketAddr) -> bool,
    factor: u64,
) -> Result<u64, String> {
    let mut most = 0;
    for (addr, (rx, tx)) in exchanged(capture, node) {
        if !spoofed(&addr) {
            continue;
        }
        ensure!(
            tx <= factor * rx,
            "{addr} was sent {tx} bytes for the {rx} it sent"
        );
        most = most.max(tx);
    }
    Ok(most)
}

fn is_spoofed(a: &SocketAddr) -> bool {
    matches!(a, SocketAddr::V4(v) if v.ip().octets()[0] == 10)
}

fn flood<B: ByteStore, const CH: usize, const SENT: usize>(
    config: Config,
    p: &Params,
    kind: Flood,
) -> Verdict {
    let small = config.channel_window <= 4096;
    // (max_connections, handshakes/s, burst, initiations, over)
    let (max, rate, burst, count, spread) = match (kind, small) {
        (Flood::RateLimit, false) => (256, 50, 20, 2000, secs(2)),
        (Flood::RateLimit, true) => (16, 2, 2, 200, secs(2)),
        (Flood::TableFull, false) => (32, 10_000, 1_000, 500, ms(500)),
        (Flood::TableFull, true) => (4, 10_000, 1_000, 60, ms(500)),
    };
    let link = Link {
        jitter: ms(2),
        ..Link::default()
    };
    let mut w =
        World::<B, CH, SENT>::with_server(config.clone(), config.clone(), link, p.seed, |e| {
            e.max_connections = max;
            e.handshakes_per_second = rate;
            e.handshake_burst = burst;
        });
    w.net.capture = Some(Vec::new());
    w.max_step = ms(5);
    let server = w.server.addr;
    let msgs = initiations::<B, CH, SENT>(&config, p.seed, server, count.min(64));
    let start = w.net.now;
    let end = start + spread;
    let at = |i: usize| start + spread * i as u32 / count as u32;
    let mut injected = 0;
    let mut legit: Option<usize> = None;
    let mut full_at_attempts = true;
    let mut legit_attempts = 0u64;
    // The flood, with a legitimate client starting a quarter of the way in.
    w.run_until(spread + config.handshake_timeout + secs(1), |w| {
        while injected < count && at(injected) <= w.net.now {
            let m = &msgs[injected % msgs.len()];
            w.net.inject(spoofed(injected), server, m);
            injected += 1;
        }
        if legit.is_none() && w.net.now >= start + spread / 4 {
            let k = w.add_client();
            w.set_flow(k, Flow::new(p.seed, 2.min(config.max_channels), 5, 300));
            legit = Some(k);
        }
        if let Some(k) = legit {
            // Each of the client's initiations arriving while the table is
            // full explains a refusal.
            let sent = w.clients[k]
                .ep
                .connection(w.client_handles[k])
                .map_or(0, |c| c.stats().tx_packets);
            if sent > legit_attempts && !w.connected(k) {
                legit_attempts = sent;
                full_at_attempts &= w.server.ep.len() >= max;
            }
        }
        injected == count
            && legit.is_some_and(|k| {
                w.flow(k).done() || World::<B, CH, SENT>::ending(&w.client_events(k)).is_some()
            })
    });
    ensure!(injected == count, "only {injected} of {count} injected");
    let k = legit.expect("legitimate client");
    w.max_step = secs(1);
    // Every flood session ends within the handshake timeout of the flood.
    // (The last initiation arrives a link delay after the flood's end.)
    let expire = end + config.handshake_timeout + ms(100);
    let limit = expire.saturating_duration_since(w.net.now) + secs(1);
    let flood_over = |w: &World<B, CH, SENT>| {
        let legit_conn = w.server_handles[k];
        w.server.ep.handles().all(|h| Some(h) == legit_conn)
    };
    ensure!(
        w.run_until(limit, |w| flood_over(w)),
        "flood sessions still held at {:?}: {}",
        w.net.now,
        w.server.ep.len()
    );
    let st: EndpointStats = w.server.ep.stats();
    let client_events = w.client_events(k);
    let legit_ok = w.flow(k).done();
    let legit_hs = w
        .client_conn(k)
        .and_then(|c| c.stats().handshake_duration)
        .unwrap_or_default();
    // Limits held (the harness also checked max_connections at every step).
    ensure!(
        st.dropped.busy == st.refused_rate + st.refused_full,
        "busy drops {} != refused {} + {}",
        st.dropped.busy,
        st.refused_rate,
        st.refused_full
    );
    let handled = st.accepted + st.refused_rate + st.refused_full;
    ensure!(
        handled > count as u64 && handled <= count as u64 + 1 + legit_attempts,
        "{handled} initiations accounted for, {count} injected and {legit_attempts} sent by the client: {st:?}"
    );
    // Flood sessions: each only ever reported HandshakeTimeout.
    let legit_conn = w
        .log
        .iter()
        .find(|l| l.node == crate::scenario::SERVER && Some(l.handle) == w.server_handles[k])
        .map(|l| l.conn);
    let mut flood_sessions = HashMap::new();
    for l in w.log.iter().filter(|l| l.node == crate::scenario::SERVER) {
        if Some(l.conn) != legit_conn {
            flood_sessions
                .entry(l.conn)
                .or_insert_with(Vec::new)
                .push(l.event);
        }
    }
    for (c, events) in &flood_sessions {
        ensure!(
            *events == [Event::Closed(ConnectionError::HandshakeTimeout)],
            "flood session {c}: {events:?}"
        );
    }
    let capture = w.net.capture.take().expect("capture");
    let most = amplification(&capture, server, &is_spoofed, 3)?;
    let outcome = match kind {
        Flood::RateLimit => {
            let allowed = u64::from(burst) + u64::from(rate) * (spread + secs(1)).as_secs() + 1;
            ensure!(
                st.accepted <= allowed,
                "{} accepted, the rate limit allows {allowed}",
                st.accepted
            );
            ensure!(
                st.refused_rate > 0 && st.refused_full == 0,
                "refusals: {st:?}"
            );
            ensure!(
                legit_ok,
                "the legitimate client did not get through: {client_events:?}"
            );
            format!("legitimate client connected after {}", fmt_secs(legit_hs))
        }
        Flood::TableFull => {
            ensure!(st.refused_full > 0, "the table never filled: {st:?}");
            if legit_ok {
                format!("legitimate client connected after {}", fmt_secs(legit_hs))
            } else {
                let why = World::<B, CH, SENT>::ending(&client_events).map(|e| e.1);
                ensure!(
                    why == Some(ConnectionError::HandshakeTimeout) && full_at_attempts,
                    "the legitimate client failed ({why:?}) while the table was not full at each attempt"
                );
                ensure!(
                    st.refused_full >= legit_attempts,
                    "refused_full {} does not count the client's {legit_attempts} attempts",
                    st.refused_full
                );
                format!(
                    "legitimate client refused {legit_attempts} times (table full), HandshakeTimeout"
                )
            }
        }
    };
    // Once the flood's sessions expired, a new client gets through.
    let k2 = w.add_client();
    w.set_flow(
        k2,
        Flow::new(p.seed ^ 2, 2.min(config.max_channels), 5, 300),
    );
    transfer(&mut w, k2, config.handshake_timeout)?;
    close_cleanly(&mut w, k2, false)?;
    Ok(format!(
        "{count} initiations from {count} addresses: {} accepted, {} refused by rate, {} table full; at most {most} bytes to one address; {outcome}; a later client delivered",
        st.accepted, st.refused_rate, st.refused_full
    ))
}

/// Random packets for session ids `avoid` does not hold: short headers,
/// and long headers with a non-zero receiver.
fn unknown_packets(rng: &mut ChaCha8Rng, n: usize, avoid: &[u32]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while out.len() < n {
        let id = rng.next_u32();
        if id == 0 || avoid.contains(&id) {
            continue;
        }
        let len = 24 + (rng.next_u32() % 1100) as usize;
        let mut d = vec![0u8; len];
        rng.fill_bytes(&mut d);
        if out.len() % 2 == 0 {
            let pn_len = 1 + (rng.next_u32() % 3) as u8;
            ShortHeader {
                key_phase: false,
                receiver: id,
                pn_truncated: rng.next_u32() & ((1 << (8 * u32::from(pn_len))) - 1),
                pn_len,
            }
            .encode(&mut d);
        } else {
            HandshakeHeader {
                kind: HandshakeKind::Handshake,
                version: VERSION,
                pattern: 0,
                suite: 0x02,
                msg_index: 1 + (rng.next_u32() % 2) as u8,
                receiver: id,
                sender: rng.next_u32() | 1,
            }
            .encode(&mut d);
        }
        out.push(d);
    }
    out
}

fn unknown_sessions<B: ByteStore, const CH: usize, const SENT: usize>(
    config: Config,
    p: &Params,
) -> Verdict {
    let link = Link {
        jitter: ms(2),
        ..Link::default()
    };
    let mut w = World::<B, CH, SENT>::new(config.clone(), link, p.seed);
    w.net.capture = Some(Vec::new());
    let k = w.add_client();
    w.set_flow(k, Flow::new(p.seed, 2.min(config.max_channels), 20, 300));
    transfer(&mut w, k, secs(60))?;
    w.run_for(secs(1));
    let (server, client) = (w.server.addr, w.client_addr(k));
    let live = [
        w.client_conn(k)
            .map(|c| c.local_id())
            .ok_or("client gone")?,
        w.server_conn(k)
            .map(|c| c.local_id())
            .ok_or("server gone")?,
    ];
    let session_drops = |w: &mut World<B, CH, SENT>| {
        w.client_conn(k).map_or(0, |c| c.stats().dropped.total())
            + w.server_conn(k).map_or(0, |c| c.stats().dropped.total())
    };
    let drops_before = session_drops(&mut w);
    let mut rng = ChaCha8Rng::seed_from_u64(p.seed ^ 0x0bad);
    let n = 600;

    // 1. Unknown ids at both endpoints, from spoofed addresses and from
    //    the session's own peer address.
    let before = (w.server.ep.stats().dropped, w.clients[k].ep.stats().dropped);
    let pkts = unknown_packets(&mut rng, n, &live);
    for (i, d) in pkts.iter().enumerate() {
        let (from, to) = match i % 4 {
            0 => (spoofed(i), server),
            1 => (client, server),
            2 => (spoofed(i), client),
            _ => (server, client),
        };
        w.net.inject(from, to, d);
        if i % 50 == 49 {
            w.step();
        }
    }
    w.run_for(secs(1));
    let after = (w.server.ep.stats().dropped, w.clients[k].ep.stats().dropped);
    let to_server = pkts.len().div_ceil(2) as u64;
    let to_client = pkts.len() as u64 - to_server;
    ensure!(
        after.0.unknown_session - before.0.unknown_session == to_server
            && after.0.total() - before.0.total() == to_server,
        "server: {to_server} unknown-session packets, counters went from {:?} to {:?}",
        before.0,
        after.0
    );
    ensure!(
        after.1.unknown_session - before.1.unknown_session == to_client
            && after.1.total() - before.1.total() == to_client,
        "client: {to_client} unknown-session packets, counters went from {:?} to {:?}",
        before.1,
        after.1
    );
    ensure!(
        session_drops(&mut w) == drops_before,
        "the live session saw the unknown packets"
    );
    let capture = w.net.capture.clone().expect("capture");
    for node in [server, client] {
        let most = amplification(&capture, node, &is_spoofed, 0)?;
        ensure!(most == 0, "{node} answered a spoofed address");
    }
    // The live session is unaffected.
    w.flow_mut(k).to_send = [40, 40];
    transfer(&mut w, k, secs(60))?;

    // 2. A closed session's packets, replayed after both ends freed it.
    close_cleanly(&mut w, k, false)?;
    w.run_for(secs(5));
    ensure!(
        w.server.ep.is_empty() && w.clients[k].ep.is_empty(),
        "the closed session was not freed"
    );
    let capture = w.net.capture.take().expect("capture");
    let replay: Vec<&Captured> = capture
        .iter()
        .filter(|c| {
            c.3.first().is_some_and(|b| b & 0x80 == 0)
                && ((c.1 == client && c.2 == server) || (c.1 == server && c.2 == client))
        })
        .collect();
    let before = (w.server.ep.stats().dropped, w.clients[k].ep.stats().dropped);
    let sent = w.net.stats.sent;
    for (i, c) in replay.iter().enumerate() {
        w.net.inject(c.1, c.2, &c.3);
        if i % 50 == 49 {
            w.step();
        }
    }
    w.run_for(secs(2));
    let after = (w.server.ep.stats().dropped, w.clients[k].ep.stats().dropped);
    let replayed = replay.len() as u64;
    let counted = (after.0.unknown_session - before.0.unknown_session)
        + (after.1.unknown_session - before.1.unknown_session);
    ensure!(
        counted == replayed,
        "{replayed} replayed packets of a freed session, {counted} counted as unknown_session"
    );
    ensure!(
        w.net.stats.sent == sent,
        "{} datagrams sent in answer to a freed session's packets",
        w.net.stats.sent - sent
    );

    // 3. Initiations of another version: one short answer each, only for
    //    datagrams at least as large as a first message's header and key,
    //    at most 8 queued per instant.
    w.net.capture = Some(Vec::new());
    let mut answered_to = 0;
    let mut burst_answers = 0;
    for round in 0..3 {
        let start = w.net.now;
        for i in 0..20 {
            let len = if i % 2 == 0 {
                LONG_HEADER_LEN + 32
            } else {
                LONG_HEADER_LEN + 31
            };
            let mut d = vec![0u8; len + (rng.next_u32() % 64) as usize * (i % 2)];
            rng.fill_bytes(&mut d);
            HandshakeHeader {
                kind: HandshakeKind::Handshake,
                version: VERSION + 1,
                pattern: 0,
                suite: 0x02,
                msg_index: 0,
                receiver: 0,
                sender: rng.next_u32() | 1,
            }
            .encode(&mut d);
            if i % 2 == 1 {
                d.truncate(LONG_HEADER_LEN + 31);
            }
            w.net.inject(spoofed(100_000 + round * 100 + i), server, &d);
        }
        w.run_for(secs(1));
        let c = w.net.capture.as_ref().expect("capture");
        let answers: Vec<&Captured> = c.iter().filter(|c| c.0 >= start && c.1 == server).collect();
        ensure!(
            answers.len() <= 8,
            "{} VERSION_MISMATCH answers to one burst",
            answers.len()
        );
        for a in &answers {
            ensure!(
                a.3.len() == LONG_HEADER_LEN + 1,
                "a {}-byte answer",
                a.3.len()
            );
        }
        burst_answers = burst_answers.max(answers.len());
        answered_to += answers.len();
    }
    let capture = w.net.capture.take().expect("capture");
    amplification(&capture, server, &is_spoofed, 1)?;
    ensure!(answered_to > 0, "no VERSION_MISMATCH answer at all");
    let short_answered = exchanged(&capture, server)
        .into_iter()
        .filter(|(_, (rx, tx))| *rx < (LONG_HEADER_LEN + 32) as u64 && *tx > 0)
        .count();
    ensure!(
        short_answered == 0,
        "{short_answered} datagrams under 45 bytes were answered"
    );
    quiet_after(&mut w)?;
    Ok(format!(
        "{n} unknown-session packets counted and unanswered; {replayed} packets of a freed session counted, nothing sent; {answered_to} VERSION_MISMATCH answers of 14 bytes, at most {burst_answers} per burst of 20"
    ))
}
