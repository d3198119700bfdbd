//! Many connections at once on one server endpoint over loopback, on
//! every runtime, every message accounted for: two hundred clients with an
//! endpoint each, and a thousand connections from fifty endpoints (so the
//! test needs few file descriptors).
#![allow(dead_code)] // each test binary runs one load

use crate::suite::{Endpoint, Runtime, SERVER_KEY, loopback, timeout};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;
use tern_driver::{Config, EndpointConfig, code, public_key};

/// The `#[test]` of load `$name` on runtime `$rt` (one per test binary,
/// so that loads do not run at the same time).
macro_rules! test {
    ($rt:ty, $name:ident) => {
        $crate::suite::tests!($rt, load: run_load $name);
    };
}
pub(crate) use test;

/// Two hundred clients, each on its own endpoint, two channels each.
pub async fn two_hundred_clients_every_message_accounted_for<R: Runtime>() {
    echo_load::<R>(Load {
        endpoints: 200,
        per_endpoint: 1,
        channels: 2,
        per_channel: 5,
        limit: Duration::from_secs(25),
        admit_all: false,
    })
    .await;
}

/// A thousand connections from fifty endpoints, every handshake admitted
/// at once.
pub async fn a_thousand_concurrent_connections_on_one_server<R: Runtime>() {
    echo_load::<R>(Load {
        endpoints: 50,
        per_endpoint: 20,
        channels: 1,
        per_channel: 3,
        limit: Duration::from_secs(120),
        admit_all: true,
    })
    .await;
}

/// The shape of a load.
pub struct Load {
    /// Client endpoints.
    pub endpoints: usize,
    /// Connections from each.
    pub per_endpoint: usize,
    /// Channels each connection sends on.
    pub channels: u32,
    /// Messages on each channel.
    pub per_channel: u32,
    /// The whole test's bound.
    pub limit: Duration,
    /// Room and rate-limit tokens on the server for every handshake at
    /// once (none may then be refused).
    pub admit_all: bool,
}

/// Every connection sends its messages, the server echoes them and
/// counts what each connection received, every client checks its echoes
/// in order on each channel and closes.
pub async fn echo_load<R: Runtime>(load: Load) {
    let connections = load.endpoints * load.per_endpoint;
    let (channels, per_channel) = (load.channels, load.per_channel);
    // How far each connection got: 0 started, 1 connected, 2 sent, 3 got
    // every echo, 4 closed (printed if the test times out).
    let stage: Arc<Vec<AtomicU8>> = Arc::new((0..connections).map(|_| AtomicU8::new(0)).collect());
    let stages = stage.clone();
    let r = timeout::<R, _>(load.limit, async move {
        let mut scfg = EndpointConfig::server(Config::service(), SERVER_KEY);
        scfg.max_connections = connections + 16;
        if load.admit_all {
            scfg.handshake_burst = 2 * connections as u32;
            scfg.handshakes_per_second = 10_000;
        }
        let server = R::Endpoint::bind(loopback(), scfg).unwrap();
        let addr = server.local_addr();

        // The server echoes and counts what each connection received.
        let s2 = server.clone();
        let server_side = R::spawn(async move {
            let mut conns = Vec::new();
            for _ in 0..connections {
                let conn = s2.accept().await.expect("accept");
                conns.push(R::spawn(async move {
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
                }));
            }
            let mut total = 0;
            for n in conns {
                total += n.await;
            }
            total
        });

        let mut clients = Vec::new();
        let mut endpoints = Vec::new();
        for e in 0..load.endpoints {
            let mut ccfg = EndpointConfig::client(Config::service());
            ccfg.max_connections = load.per_endpoint;
            let ep = R::Endpoint::bind(loopback(), ccfg).unwrap();
            for k in 0..load.per_endpoint {
                let i = e * load.per_endpoint + k;
                let (ep, stage) = (ep.clone(), stage.clone());
                clients.push(R::spawn(async move {
                    let conn = ep.connect(addr, public_key(&SERVER_KEY)).await.unwrap();
                    stage[i].store(1, Ordering::Relaxed);
                    for seq in 0..per_channel {
                        for ch in 0..channels {
                            let m = format!("connection {i} channel {ch} seq {seq}");
                            conn.send(ch * 2, m.into_bytes()).await.unwrap();
                        }
                    }
                    stage[i].store(2, Ordering::Relaxed);
                    let mut next: HashMap<u32, u32> = HashMap::new();
                    for _ in 0..channels * per_channel {
                        let (ch, m) = conn.recv().await.unwrap();
                        assert!(ch % 2 == 0 && ch / 2 < channels, "echo on channel {ch}");
                        let seq = next.entry(ch).or_default();
                        let want = format!("connection {i} channel {} seq {seq}", ch / 2);
                        assert_eq!(m, want.as_bytes(), "echo out of order or corrupted");
                        *seq += 1;
                    }
                    stage[i].store(3, Ordering::Relaxed);
                    conn.close(code::NO_ERROR, "done").await.unwrap();
                    stage[i].store(4, Ordering::Relaxed);
                    channels * per_channel
                }));
            }
            endpoints.push(ep);
        }
        let mut echoed = 0;
        for n in clients {
            echoed += n.await;
        }
        let expected = connections as u32 * channels * per_channel;
        assert_eq!(echoed, expected, "every echo came back");
        assert_eq!(
            server_side.await,
            expected,
            "the server got each message once"
        );
        let stats = server.stats().await.unwrap();
        assert_eq!(stats.core.accepted, connections as u64);
        if load.admit_all {
            assert_eq!(stats.core.refused_full + stats.core.refused_rate, 0);
        }
        for ep in &endpoints {
            ep.shutdown().await;
        }
        server.shutdown().await;
    })
    .await;
    if r.is_err() {
        let mut at = [0usize; 5];
        for s in stages.iter() {
            at[usize::from(s.load(Ordering::Relaxed))] += 1;
        }
        panic!("{connections} connections took too long; per stage: {at:?}");
    }
}
