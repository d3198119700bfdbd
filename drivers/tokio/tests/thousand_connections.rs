//! A thousand concurrent connections on one server endpoint over
//! loopback, every message accounted for: 50 client endpoints (sockets)
//! with 20 connections each, so the test needs few file descriptors.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;
use tern_tokio::{Config, Endpoint, EndpointConfig, code, public_key};
use tokio::task::JoinSet;
use tokio::time::timeout;

const SERVER_KEY: [u8; 32] = [0x2a; 32];
const ENDPOINTS: usize = 50;
const PER_ENDPOINT: usize = 20;
const CONNECTIONS: usize = ENDPOINTS * PER_ENDPOINT;
const MESSAGES: u32 = 3;

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// How far each connection got: 0 started, 1 connected, 2 got every
/// echo, 3 closed (printed if the test times out).
static STAGE: [AtomicU8; CONNECTIONS] = [const { AtomicU8::new(0) }; CONNECTIONS];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_connections_on_one_server() {
    let r = timeout(Duration::from_secs(120), async {
        let mut scfg = EndpointConfig::server(Config::service(), SERVER_KEY);
        // Admit every handshake at once: room and rate-limit tokens for
        // all of them.
        scfg.max_connections = CONNECTIONS + 16;
        scfg.handshake_burst = 2 * CONNECTIONS as u32;
        scfg.handshakes_per_second = 10_000;
        let server = Endpoint::bind(loopback(), scfg).unwrap();
        let addr = server.local_addr();

        // The server echoes and counts what each connection received.
        let s2 = server.clone();
        let server_side = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            for _ in 0..CONNECTIONS {
                let conn = s2.accept().await.expect("accept");
                conns.spawn(async move {
                    let mut got = 0u32;
                    let end = loop {
                        match conn.recv().await {
                            Ok((ch, m)) => {
                                got += 1;
                                conn.send(ch, m).await.unwrap();
                            }
                            Err(e) => break e,
                        }
                    };
                    assert!(end.is_clean_close(), "{end:?}");
                    got
                });
            }
            let mut total = 0;
            while let Some(n) = conns.join_next().await {
                total += n.unwrap();
            }
            total
        });

        let mut endpoints = Vec::new();
        let mut clients = JoinSet::new();
        for e in 0..ENDPOINTS {
            let mut ccfg = EndpointConfig::client(Config::service());
            ccfg.max_connections = PER_ENDPOINT;
            let ep = Endpoint::bind(loopback(), ccfg).unwrap();
            for k in 0..PER_ENDPOINT {
                let i = e * PER_ENDPOINT + k;
                let ep = ep.clone();
                clients.spawn(async move {
                    let conn = ep.connect(addr, public_key(&SERVER_KEY)).await.unwrap();
                    STAGE[i].store(1, Ordering::Relaxed);
                    for seq in 0..MESSAGES {
                        let m = format!("connection {i} seq {seq}");
                        conn.send(0, m.into_bytes()).await.unwrap();
                    }
                    for seq in 0..MESSAGES {
                        let (ch, m) = conn.recv().await.unwrap();
                        let want = format!("connection {i} seq {seq}");
                        assert_eq!((ch, &m[..]), (0, want.as_bytes()), "echo wrong");
                    }
                    STAGE[i].store(2, Ordering::Relaxed);
                    conn.close(code::NO_ERROR, "done").await.unwrap();
                    STAGE[i].store(3, Ordering::Relaxed);
                    MESSAGES
                });
            }
            endpoints.push(ep);
        }
        let mut echoed = 0;
        while let Some(n) = clients.join_next().await {
            echoed += n.unwrap();
        }
        let expected = CONNECTIONS as u32 * MESSAGES;
        assert_eq!(echoed, expected, "every echo came back");
        assert_eq!(
            server_side.await.unwrap(),
            expected,
            "the server got each message once"
        );
        let stats = server.stats().await.unwrap();
        assert_eq!(stats.core.accepted, CONNECTIONS as u64);
        assert_eq!(stats.core.refused_full + stats.core.refused_rate, 0);
        for ep in &endpoints {
            ep.shutdown().await;
        }
        server.shutdown().await;
    })
    .await;
    if r.is_err() {
        let mut at = [0usize; 4];
        for s in &STAGE {
            at[usize::from(s.load(Ordering::Relaxed))] += 1;
        }
        panic!("{CONNECTIONS} connections took too long; per stage: {at:?}");
    }
}
