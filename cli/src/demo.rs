//! `tern demo`: a server and a client in one process on 127.0.0.1.

use crate::error::{CliError, connect_error};
use crate::keys::random_key;
use crate::table::{self, Column, ms};
use bytes::Bytes;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tern_tokio::{Config, Connection, Endpoint, EndpointConfig, Error, Stats, code, public_key};

/// The whole demo must finish within this.
const LIMIT: Duration = Duration::from_secs(20);

pub async fn run() -> Result<(), CliError> {
    match tokio::time::timeout(LIMIT, demo()).await {
        Ok(r) => r,
        Err(_) => Err(CliError::Failed(format!(
            "the demo did not finish within {} s",
            LIMIT.as_secs()
        ))),
    }
}

fn noise_name(c: &Config) -> String {
    format!(
        "Noise_{}_25519_{}_{}",
        c.pattern.noise_name(),
        c.suite.cipher.name(),
        c.suite.hash.name()
    )
}

fn preview(m: &[u8]) -> String {
    match std::str::from_utf8(m) {
        Ok(s) if m.len() <= 40 => format!("{s:?}"),
        _ => format!("{} bytes", m.len()),
    }
}

/// The server side: echo messages and datagrams until the client closes;
/// return how the connection ended and its final statistics.
async fn serve_one(server: Endpoint) -> Result<(Error, Stats), CliError> {
    let conn = server
        .accept()
        .await
        .ok_or_else(|| CliError::Failed("the server accepted nothing".into()))?;
    println!(
        "server   accepted {} (session established)",
        conn.remote_addr()
    );
    let c2 = conn.clone();
    let datagrams = tokio::spawn(async move {
        while let Ok(d) = c2.recv_datagram().await {
            let _ = c2.send_datagram(d).await;
        }
    });
    let end = loop {
        match conn.recv().await {
            Ok((ch, m)) => {
                if let Err(e) = conn.send(ch, m).await {
                    break match e {
                        tern_tokio::SendError::Closed(e) => e,
                        e => return Err(CliError::Failed(format!("server echo failed: {e}"))),
                    };
                }
            }
            Err(e) => break e,
        }
    };
    datagrams.abort();
    let stats = conn
        .stats()
        .await
        .map_err(|e| CliError::Failed(format!("server statistics: {e}")))?;
    Ok((end, stats))
}

async fn demo() -> Result<(), CliError> {
    let config = Config::service();
    let any: SocketAddr = "127.0.0.1:0".parse().expect("an address");
    let server_key = random_key()?;
    let server = Endpoint::bind(any, EndpointConfig::server(config.clone(), server_key))
        .map_err(|e| CliError::Io(format!("cannot bind the server: {e}")))?;
    let client = Endpoint::client(any, config.clone())
        .map_err(|e| CliError::Io(format!("cannot bind the client: {e}")))?;
    let server_addr = server.local_addr();

    println!("Tern demo: a server and a client in this process, over UDP on loopback.");
    println!();
    println!(
        "server   listening on {server_addr}, public key {}…",
        &hex::encode(public_key(&server_key))[..16]
    );
    println!(
        "client   {} connecting with {}",
        client.local_addr(),
        noise_name(&config)
    );
    let served = tokio::spawn(serve_one(server.clone()));

    let started = Instant::now();
    let conn = client
        .connect(server_addr, public_key(&server_key))
        .await
        .map_err(|e| connect_error(&server_addr.to_string(), &e))?;
    let waited = started.elapsed();
    let hs = conn
        .stats()
        .await
        .ok()
        .and_then(|s| s.connection.handshake_duration);
    println!(
        "client   handshake done in {} (pattern {}: one round trip, both sides authenticated)",
        ms(hs.unwrap_or(waited)),
        config.pattern.noise_name()
    );
    println!();

    exchange(&conn, config.max_packet_size).await?;

    println!();
    conn.close(code::NO_ERROR, "demo finished")
        .await
        .map_err(|e| CliError::Failed(format!("the client's close failed: {e}")))?;
    println!("client   closed the session (code 0, \"demo finished\"); the server acknowledged");
    let (server_end, server_stats) = served
        .await
        .map_err(|e| CliError::Failed(format!("the server task failed: {e}")))??;
    println!("server   saw: {server_end}");
    if !server_end.is_clean_close() {
        return Err(CliError::Failed(format!(
            "the server's connection ended badly: {server_end}"
        )));
    }
    let client_stats = conn
        .stats()
        .await
        .map_err(|e| CliError::Failed(format!("client statistics: {e}")))?;
    server.shutdown().await;

    println!();
    println!("Statistics");
    print!(
        "{}",
        table::render(&[
            Column {
                title: "client",
                stats: &client_stats.connection,
                uptime: client_stats.uptime,
            },
            Column {
                title: "server",
                stats: &server_stats.connection,
                uptime: server_stats.uptime,
            },
        ])
    );
    println!();
    println!("Demo finished: every message and datagram came back intact.");
    Ok(())
}

/// Messages on three channels (one larger than a packet) and datagrams,
/// each echoed and checked.
async fn exchange(conn: &Connection, max_packet: u16) -> Result<(), CliError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| CliError::Failed(format!("{what}: {e}"));
    let chat = conn
        .open_channel()
        .await
        .map_err(|e| fail("open a channel", &e))?;
    let sensors = conn
        .open_channel()
        .await
        .map_err(|e| fail("open a channel", &e))?;
    let bulk = conn
        .open_channel()
        .await
        .map_err(|e| fail("open a channel", &e))?;
    let big: Vec<u8> = (0..20 * 1024).map(|i| (i % 251) as u8).collect();
    let plan: Vec<(u32, &str, Bytes)> = vec![
        (chat, "chat", Bytes::from_static(b"hello, tern")),
        (chat, "chat", Bytes::from_static(b"how are you?")),
        (sensors, "sensors", Bytes::from_static(b"temperature=21.5C")),
        (sensors, "sensors", Bytes::from_static(b"humidity=40%")),
        (sensors, "sensors", Bytes::from_static(b"battery=3.71V")),
        (bulk, "bulk", Bytes::from(big)),
        (chat, "chat", Bytes::from_static(b"bye for now")),
    ];
    for (ch, name, msg) in plan {
        let t = Instant::now();
        conn.send(ch, msg.clone())
            .await
            .map_err(|e| fail("send", &e))?;
        let echo = conn.recv_on(ch).await.map_err(|e| fail("receive", &e))?;
        let rtt = t.elapsed();
        if echo != msg {
            return Err(CliError::Failed(format!(
                "channel {ch}: the echo differs from what was sent"
            )));
        }
        let note = if msg.len() > usize::from(max_packet) {
            format!(" (more than a {max_packet}-byte packet: fragmented, reassembled)")
        } else {
            String::new()
        };
        println!(
            "channel {ch} ({name:>7})  {}{note} echoed in {}",
            preview(&msg),
            ms(rtt)
        );
    }
    for i in 1..=3u8 {
        let d = Bytes::from(format!("datagram #{i}"));
        let t = Instant::now();
        conn.send_datagram(d.clone())
            .await
            .map_err(|e| fail("send a datagram", &e))?;
        let echo = tokio::time::timeout(Duration::from_secs(2), conn.recv_datagram())
            .await
            .map_err(|_| CliError::Failed(format!("datagram #{i} was not echoed")))?
            .map_err(|e| fail("receive a datagram", &e))?;
        if echo != d {
            return Err(CliError::Failed(format!("datagram #{i} came back changed")));
        }
        println!(
            "datagram (unreliable)  {} echoed in {}",
            preview(&d),
            ms(t.elapsed())
        );
    }
    Ok(())
}
