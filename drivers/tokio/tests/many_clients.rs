//! Many clients at once on one server over loopback, every message
//! accounted for.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;
use tern_tokio::{Config, Endpoint, EndpointConfig, code, public_key};
use tokio::task::JoinSet;
use tokio::time::timeout;

const SERVER_KEY: [u8; 32] = [0x17; 32];
const CLIENTS: usize = 200;
const CHANNELS: u32 = 2;
const PER_CHANNEL: u32 = 5;

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// How far each client got: 0 started, 1 connected, 2 sent, 3 got every
/// echo, 4 closed (printed if the test times out).
static STAGE: [AtomicU8; CLIENTS] = [const { AtomicU8::new(0) }; CLIENTS];

fn stage(i: usize, s: u8) {
    STAGE[i].store(s, Ordering::Relaxed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_clients_every_message_accounted_for() {
    let r = timeout(Duration::from_secs(25), async {
        let mut scfg = EndpointConfig::server(Config::service(), SERVER_KEY);
        scfg.max_connections = CLIENTS + 16;
        let server = Endpoint::bind(loopback(), scfg).unwrap();
        let addr = server.local_addr();

        // The server echoes and counts what each connection received.
        let s2 = server.clone();
        let server_side = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            for _ in 0..CLIENTS {
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

        let mut clients = JoinSet::new();
        for i in 0..CLIENTS {
            clients.spawn(async move {
                let ep = Endpoint::client(loopback(), Config::service()).unwrap();
                let conn = ep.connect(addr, public_key(&SERVER_KEY)).await.unwrap();
                stage(i, 1);
                for seq in 0..PER_CHANNEL {
                    for ch in 0..CHANNELS {
                        let m = format!("client {i} channel {ch} seq {seq}");
                        conn.send(ch * 2, m.into_bytes()).await.unwrap();
                    }
                }
                stage(i, 2);
                let mut next: HashMap<u32, u32> = HashMap::new();
                for _ in 0..CHANNELS * PER_CHANNEL {
                    let (ch, m) = conn.recv().await.unwrap();
                    let seq = next.entry(ch).or_default();
                    let want = format!("client {i} channel {} seq {seq}", ch / 2);
                    assert_eq!(m, want.as_bytes(), "echo out of order or corrupted");
                    *seq += 1;
                }
                stage(i, 3);
                conn.close(code::NO_ERROR, "done").await.unwrap();
                stage(i, 4);
                CHANNELS * PER_CHANNEL
            });
        }
        let mut echoed = 0;
        while let Some(n) = clients.join_next().await {
            echoed += n.unwrap();
        }
        let expected = CLIENTS as u32 * CHANNELS * PER_CHANNEL;
        assert_eq!(echoed, expected, "every echo came back");
        assert_eq!(
            server_side.await.unwrap(),
            expected,
            "the server got each once"
        );
        let stats = server.stats().await.unwrap();
        assert_eq!(stats.core.accepted, CLIENTS as u64);
        server.shutdown().await;
    })
    .await;
    if r.is_err() {
        let mut at = [0usize; 5];
        for s in &STAGE {
            at[usize::from(s.load(Ordering::Relaxed))] += 1;
        }
        panic!("{CLIENTS} clients took too long; clients per stage: {at:?}");
    }
}
