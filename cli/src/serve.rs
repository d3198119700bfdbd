//! `tern serve`: an echo server.

use crate::error::CliError;
use crate::keys::read_private;
use crate::table::{self, Column};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tern::connection::Stats as CoreStats;
use tern_tokio::{Config, Connection, Endpoint, EndpointConfig, public_key};
use tokio::task::JoinSet;
use tracing::info;

/// Counters summed over every connection served.
#[derive(Default)]
struct Totals {
    connections: u64,
    stats: CoreStats,
}

impl Totals {
    fn add(&mut self, s: &CoreStats) {
        let t = &mut self.stats;
        self.connections += 1;
        t.tx_packets += s.tx_packets;
        t.rx_packets += s.rx_packets;
        t.tx_bytes += s.tx_bytes;
        t.rx_bytes += s.rx_bytes;
        t.tx_messages += s.tx_messages;
        t.rx_messages += s.rx_messages;
        t.tx_datagrams += s.tx_datagrams;
        t.rx_datagrams += s.rx_datagrams;
        t.retransmissions += s.retransmissions;
        t.lost_packets += s.lost_packets;
        t.probe_timeouts += s.probe_timeouts;
        t.dropped.malformed += s.dropped.malformed;
        t.dropped.authentication += s.dropped.authentication;
        t.dropped.replay += s.dropped.replay;
        t.dropped.unknown_session += s.dropped.unknown_session;
        t.dropped.busy += s.dropped.busy;
        t.dropped.unexpected += s.dropped.unexpected;
        if s.min_rtt > std::time::Duration::ZERO && (t.min_rtt.is_zero() || s.min_rtt < t.min_rtt) {
            t.min_rtt = s.min_rtt;
        }
        t.smoothed_rtt = s.smoothed_rtt;
        t.handshake_duration = s.handshake_duration;
    }
}

pub async fn run(listen: SocketAddr, key: &Path, tcp: bool) -> Result<(), CliError> {
    let key = read_private(key)?;
    let config = EndpointConfig::server(Config::service(), key);
    let server = if tcp {
        Endpoint::bind_tcp(listen, config)
    } else {
        Endpoint::bind(listen, config)
    }
    .map_err(|e| CliError::Io(format!("cannot listen on {listen}: {e}")))?;
    let started = std::time::Instant::now();
    // The first line says where to reach the server (useful with port 0).
    println!(
        "tern serve: listening on {} ({}), public key {}",
        server.local_addr(),
        if tcp { "TCP" } else { "UDP" },
        hex::encode(public_key(&key))
    );
    println!("press Ctrl-C to stop and print statistics");

    let totals = Arc::new(Mutex::new(Totals::default()));
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            c = server.accept() => match c {
                Some(c) => {
                    conns.spawn(echo(c, totals.clone()));
                }
                None => break,
            },
            _ = tokio::signal::ctrl_c() => {
                info!("Ctrl-C: closing every connection");
                break;
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    let e = server.stats().await.ok();
    server.shutdown().await;
    while conns.join_next().await.is_some() {}

    let t = totals
        .lock()
        .map_err(|_| CliError::Failed("statistics lost".into()))?;
    println!();
    println!(
        "Statistics: {} connection(s) served in {:.1} s{}",
        t.connections,
        started.elapsed().as_secs_f64(),
        e.map_or(String::new(), |e| format!(
            ", {} refused (full) / {} (rate), {} datagrams dropped before any connection",
            e.core.refused_full,
            e.core.refused_rate,
            e.core.dropped.total()
        ))
    );
    print!(
        "{}",
        table::render(&[Column {
            title: "all connections",
            stats: &t.stats,
            uptime: started.elapsed(),
        }])
    );
    println!("  (rtt and handshake: the last connection; the rest: sums)");
    Ok(())
}

/// Echoes one connection's messages and datagrams until it ends, then
/// adds its statistics to the totals.
async fn echo(conn: Connection, totals: Arc<Mutex<Totals>>) {
    let c2 = conn.clone();
    let datagrams = tokio::spawn(async move {
        while let Ok(d) = c2.recv_datagram().await {
            let _ = c2.send_datagram(d).await;
        }
    });
    while let Ok((ch, msg)) = conn.recv().await {
        if conn.send(ch, msg).await.is_err() {
            break;
        }
    }
    datagrams.abort();
    if let Ok(s) = conn.stats().await
        && let Ok(mut t) = totals.lock()
    {
        t.add(&s.connection);
    }
}
