//! Hostile networks: loss bursts, long reordering, duplication storms, MTU
//! drops and asymmetric loss. The traffic must get through exactly once,
//! in order, or (for a path that can never carry a full packet) both sides
//! must end with a typed error within the configured bound.

use super::{
    Params, Scenario, Verdict, close_cleanly, ensure, flow, fmt_secs, is_timeout, ms, presets,
    quiet_after, secs, transfer,
};
use crate::scenario::World;
use crate::sim::{Burst, Link};
use tern::ConnectionError;
use tern::config::Config;
use tern::storage::ByteStore;

pub(super) fn register(v: &mut Vec<Scenario>) {
    presets!(
        v,
        "loss-bursts",
        "bursty loss (two-state Gilbert-Elliott: each datagram has a 2% chance of starting a burst that loses everything for 5 round trips on average, 20 for the constrained preset; 0.5% loss otherwise) under traffic both ways",
        &[
            "every message delivered despite bursts of consecutive losses",
            "the loss really came in bursts (a run of at least 5 consecutive losses)",
            "the session survives and closes cleanly afterwards",
        ],
        loss_bursts
    );
    presets!(
        v,
        "long-reordering",
        "20% of datagrams held back for 25 to 50 round trips while traffic flows both ways",
        &[
            "every message delivered once, in order, although packets arrive long after their data was retransmitted",
            "datagrams really were held back for at least 25 round trips",
            "the session survives and closes cleanly",
        ],
        long_reordering
    );
    presets!(
        v,
        "duplication-storm",
        "30% of datagrams delivered five times (plus 5% reordering and 2% loss), handshake included",
        &[
            "every copy after the first of a data packet is dropped as a replay, and counted",
            "duplicated handshake initiations create no second session",
            "every message delivered exactly once",
        ],
        duplication_storm
    );
    presets!(
        v,
        "mtu-drop/temporary",
        "mid-transfer, the path MTU falls to half the packet size for a while (5 s service, 20 s constrained), then recovers",
        &[
            "full-size packets are dropped during the dip and the session does not end",
            "delivery resumes after the dip and every message arrives exactly once",
        ],
        mtu_temporary
    );
    presets!(
        v,
        "mtu-drop/permanent",
        "the path MTU stays below the packets Tern sends (two thirds of max_packet_size); the handshake fits, data packets never do",
        &[
            "both sides end with a typed error (DeliveryTimeout, PeerClosed with code DELIVERY_TIMEOUT, or IdleTimeout), never a hang",
            "the first ending comes within delivery_timeout + idle_timeout of the first data sent, the peer's within idle_timeout after that",
            "both endpoints free the connection and send nothing more",
        ],
        mtu_permanent
    );
    presets!(
        v,
        "asymmetric-loss/client-to-server",
        "once connected, 50% of datagrams towards the server are lost and none towards the client, under traffic both ways",
        &[
            "loss hit only the lossy direction",
            "every message delivered both ways",
            "the session closes (the client LocallyClosed; the server PeerClosed, or IdleTimeout if every CLOSE was lost)",
        ],
        asymmetric_loss,
        true
    );
    presets!(
        v,
        "asymmetric-loss/server-to-client",
        "once connected, 50% of datagrams towards the client are lost and none towards the server, under traffic both ways",
        &[
            "loss hit only the lossy direction",
            "every message delivered both ways",
            "the session closes (the client LocallyClosed; the server PeerClosed, or IdleTimeout if every CLOSE was lost)",
        ],
        asymmetric_loss,
        false
    );
}

/// Small windows mean the constrained preset: less traffic, longer dips.
fn constrained(config: &Config) -> bool {
    config.channel_window <= 4096
}

/// Messages each way: 600 for a service, 150 for a constrained device.
fn messages(config: &Config) -> usize {
    if constrained(config) { 150 } else { 600 }
}

fn loss_bursts<B: ByteStore, const CH: usize, const SENT: usize>(
    config: Config,
    p: &Params,
) -> Verdict {
    let link = Link {
        loss: 0.005,
        burst: Some(Burst {
            enter: 0.02,
            // A constrained device sends a packet or two per round trip:
            // its bursts must last longer to hit several in a row.
            length: if constrained(&config) {
                ms(400)
            } else {
                ms(100)
            },
            loss: 1.0,
        }),
        jitter: ms(2),
        ..Link::default()
    };
    let mut w = World::<B, CH, SENT>::new(config.clone(), link, p.seed);
    let k = w.add_client();
    let n = messages(&config);
    w.set_flow(k, flow(p.seed, &config, n));
    transfer(&mut w, k, secs(3600))?;
    let st = w.net.stats;
    ensure!(
        st.bursts >= 5 && st.longest_loss_run >= 5,
        "too few bursts, or none of 5 consecutive losses: {st:?}"
    );
    let rtx = w.client_conn(k).map_or(0, |c| c.stats().retransmissions)
        + w.server_conn(k).map_or(0, |c| c.stats().retransmissions);
    ensure!(rtx > 0, "nothing was retransmitted");
    let took = w
        .net
        .now
        .saturating_duration_since(tern::Instant::from_millis(1));
    close_cleanly(&mut w, k, true)?;
    Ok(format!(
        "{n}+{n} messages in {}; {} of {} datagrams lost in {} bursts, up to {} in a row; {rtx} retransmissions",
        fmt_secs(took),
        st.lost,
        st.sent,
        st.bursts,
        st.longest_loss_run
    ))
}

fn long_reordering<B: ByteStore, const CH: usize, const SENT: usize>(
    config: Config,
    p: &Params,
) -> Verdict {
    let rtt = ms(20);
    let link = Link {
        reorder: 0.2,
        hold: rtt * 25,
        jitter: ms(1),
        ..Link::default()
    };
    let mut w = World::<B, CH, SENT>::new(config.clone(), link, p.seed);
    let k = w.add_client();
    let n = messages(&config);
    w.set_flow(k, flow(p.seed, &config, n));
    transfer(&mut w, k, secs(3600))?;
    let st = w.net.stats;
    ensure!(
        st.reordered > 20 && st.longest_hold >= rtt * 25,
        "too little held back: {st:?}"
    );
    let lost = w.client_conn(k).map_or(0, |c| c.stats().lost_packets)
        + w.server_conn(k).map_or(0, |c| c.stats().lost_packets);
    close_cleanly(&mut w, k, false)?;
    Ok(format!(
        "{n}+{n} messages; {} datagrams held back up to {} RTTs; {lost} packets declared lost",
        st.reordered,
        st.longest_hold.as_millis() / rtt.as_millis()
    ))
}

fn duplication_storm<B: ByteStore, const CH: usize, const SENT: usize>(
    config: Config,
    p: &Params,
) -> Verdict {
    let link = Link {
        duplicate: 0.3,
        copies: 4,
        reorder: 0.05,
        loss: 0.02,
        jitter: ms(2),
        ..Link::default()
    };
    let mut w = World::<B, CH, SENT>::new(config.clone(), link, p.seed);
    let k = w.add_client();
    let n = messages(&config);
    w.set_flow(k, flow(p.seed, &config, n));
    transfer(&mut w, k, secs(3600))?;
    let replays = w.client_conn(k).map_or(0, |c| c.stats().dropped.replay)
        + w.server_conn(k).map_or(0, |c| c.stats().dropped.replay);
    let st = w.net.stats;
    // Each duplicated data packet arrives five times: four replays.
    ensure!(st.duplicated > 50, "too few duplicated: {st:?}");
    ensure!(
        replays >= st.duplicated,
        "{replays} replays dropped for {} datagrams duplicated four times",
        st.duplicated
    );
    let es = w.server.ep.stats();
    ensure!(
        es.accepted == 1 && w.server.ep.len() == 1,
        "duplicated initiations made sessions: {es:?}"
    );
    close_cleanly(&mut w, k, true)?;
    Ok(format!(
        "{n}+{n} messages; {} datagrams duplicated x4, {replays} replays dropped; 1 session",
        st.duplicated
    ))
}

fn mtu_temporary<B: ByteStore, const CH: usize, const SENT: usize>(
    config: Config,
    p: &Params,
) -> Verdict {
    let link = Link {
        jitter: ms(2),
        ..Link::default()
    };
    let mut w = World::<B, CH, SENT>::new(config.clone(), link, p.seed);
    let k = w.add_client();
    let n = messages(&config);
    // Enough queued that packets are full.
    w.set_flow(k, flow(p.seed, &config, n));
    let quarter = n / 4;
    ensure!(
        w.run_until(secs(600), |w| w.flow(k).received[1] >= quarter),
        "no progress before the dip: {:?}",
        w.flow(k).received
    );
    let dip = if constrained(&config) {
        secs(20)
    } else {
        secs(5)
    };
    let mtu = usize::from(config.max_packet_size) / 2;
    w.net.link.mtu = mtu;
    let before = w.net.stats.too_big;
    w.run_for(dip);
    let dropped = w.net.stats.too_big - before;
    ensure!(dropped > 0, "nothing was too big during the dip");
    for (who, e) in [
        ("client", w.client_events(k)),
        ("server", w.server_events(k)),
    ] {
        let ending = World::<B, CH, SENT>::ending(&e);
        ensure!(ending.is_none(), "{who} ended during the dip: {ending:?}");
    }
    w.net.link.mtu = link.mtu;
    let restored = w.net.now;
    let got = w.flow(k).received;
    let more = w.run_until(secs(600), |w| {
        let r = w.flow(k).received;
        r[0] > got[0] || r[1] > got[1] || w.flow(k).done()
    });
    ensure!(more, "no delivery after the MTU came back");
    let resumed = w.net.now.saturating_duration_since(restored);
    transfer(&mut w, k, secs(3600))?;
    close_cleanly(&mut w, k, false)?;
    Ok(format!(
        "{n}+{n} messages; MTU {mtu} for {}: {dropped} datagrams too big; delivery resumed {} after",
        fmt_secs(dip),
        fmt_secs(resumed)
    ))
}

fn mtu_permanent<B: ByteStore, const CH: usize, const SENT: usize>(
    config: Config,
    p: &Params,
) -> Verdict {
    let mtu = usize::from(config.max_packet_size) * 2 / 3;
    let link = Link {
        mtu,
        jitter: ms(2),
        ..Link::default()
    };
    let mut w = World::<B, CH, SENT>::new(config.clone(), link, p.seed);
    let k = w.add_client();
    let n = messages(&config);
    let (channels, _) = super::shape(&config);
    w.set_flow(
        k,
        crate::scenario::Flow::new(p.seed, channels, n, config.max_message_size as usize),
    );
    ensure!(
        w.run_until(config.handshake_timeout, |w| w.connected(k)),
        "the handshake did not complete under MTU {mtu}"
    );
    let start = w.net.now;
    let delivery = config.delivery_timeout.unwrap_or(config.idle_timeout);
    let bound = delivery + config.idle_timeout * 2 + secs(1);
    ensure!(
        w.run_until(bound, |w| w.both_closed(k)),
        "hang: not both ended {} after connecting (client {:?}, server {:?}, received {:?})",
        fmt_secs(bound),
        World::<B, CH, SENT>::ending(&w.client_events(k)),
        World::<B, CH, SENT>::ending(&w.server_events(k)),
        w.flow(k).received
    );
    let c = World::<B, CH, SENT>::ending(&w.client_events(k)).expect("closed");
    let s = World::<B, CH, SENT>::ending(&w.server_events(k)).expect("closed");
    ensure!(w.net.stats.too_big > 0, "nothing was too big");
    for (who, (_, e)) in [("client", c), ("server", s)] {
        ensure!(is_timeout(&e), "{who} ended with {e:?}");
    }
    let (first, second) = if c.0 <= s.0 { (c, s) } else { (s, c) };
    ensure!(
        first.0 <= start + delivery + config.idle_timeout,
        "first ending {:?} at {}, later than delivery_timeout + idle_timeout",
        first.1,
        fmt_secs(first.0.saturating_duration_since(start))
    );
    ensure!(
        second.0 <= first.0 + config.idle_timeout,
        "second ending {:?} {} after the first",
        second.1,
        fmt_secs(second.0.saturating_duration_since(first.0))
    );
    // The first to end noticed the dead path itself.
    ensure!(
        matches!(
            first.1,
            ConnectionError::DeliveryTimeout | ConnectionError::IdleTimeout
        ),
        "the first ending is {:?}",
        first.1
    );
    // Freed, and silent from then on.
    quiet_after(&mut w)?;
    Ok(format!(
        "MTU {mtu} < {}: client {} after {}, server {} after {}",
        config.max_packet_size,
        c.1,
        fmt_secs(c.0.saturating_duration_since(start)),
        s.1,
        fmt_secs(s.0.saturating_duration_since(start)),
    ))
}

fn asymmetric_loss<B: ByteStore, const CH: usize, const SENT: usize>(
    config: Config,
    p: &Params,
    to_server: bool,
) -> Verdict {
    let clean = Link {
        jitter: ms(2),
        ..Link::default()
    };
    let lossy = Link { loss: 0.5, ..clean };
    let mut w = World::<B, CH, SENT>::new(config.clone(), clean, p.seed);
    let k = w.add_client();
    let n = messages(&config);
    w.set_flow(k, flow(p.seed, &config, n));
    ensure!(
        w.run_until(secs(30), |w| w.connected(k)),
        "no handshake on a clean link"
    );
    let (towards, other) = if to_server {
        (w.server.addr, w.client_addr(k))
    } else {
        (w.client_addr(k), w.server.addr)
    };
    if to_server {
        w.net.link_to_first = Some(lossy);
    } else {
        w.net.link = lossy;
        w.net.link_to_first = Some(clean);
    }
    transfer(&mut w, k, secs(3600))?;
    let lost = w.net.lost_to.get(&towards).copied().unwrap_or(0);
    let lost_other = w.net.lost_to.get(&other).copied().unwrap_or(0);
    ensure!(
        lost > 10 && lost_other == 0,
        "lost {lost} towards the lossy side, {lost_other} the other way"
    );
    close_cleanly(&mut w, k, true)?;
    Ok(format!(
        "{n}+{n} messages; {lost} datagrams lost towards the {}, 0 the other way",
        if to_server { "server" } else { "client" }
    ))
}
