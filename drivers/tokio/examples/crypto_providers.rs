//! Tern on tokio with the driver's crypto provider (ring) against Tern's
//! default (RustCrypto), in the same run on the same machine: the median
//! round trip of a 64-byte echo and the throughput of a one-way bulk
//! transfer of 16 KiB messages, over loopback, for ChaChaPoly and AESGCM.
//!
//! `cargo run --release -p tern-tokio --example crypto_providers [rounds]`
//!
//! The server runs on its own thread and tokio runtime, the client on the
//! main thread's. Each round measures every provider and suite once, the
//! providers' order alternating between rounds; the figures printed are the
//! medians over the rounds. A measurement, not a test: nothing is asserted
//! about speed.

use bytes::Bytes;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tern::config::Suite;
use tern::crypto::{CipherKind, HashKind};
use tern::crypto::{CryptoProvider, RustCrypto};
use tern_ring::RingCrypto;
use tern_tokio::{Config, Endpoint, EndpointConfig};

const ECHO: usize = 64;
const ECHOES: usize = 2000;
const WARMUP: usize = 200;
const MSG: usize = 16 * 1024;
const BULK_MESSAGES: u64 = 4096;
const BULK: u32 = 0;
const ECHO_CHANNEL: u32 = 1;

/// What a provider must be for an endpoint's task.
trait Provider: CryptoProvider<Aead: Send> + Clone + Default + Send + 'static {}
impl<P: CryptoProvider<Aead: Send> + Clone + Default + Send + 'static> Provider for P {}

fn config(cipher: CipherKind) -> Config {
    Config {
        suite: Suite {
            cipher,
            hash: HashKind::Sha256,
        },
        ..Config::service()
    }
}

fn loopback() -> std::net::UdpSocket {
    tern_driver::bind_udp(SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind loopback")
}

/// An echo server on channel 1 and a bulk sink on channel 0 (answering the
/// byte count once the last message is in), on `rt`.
fn server<P: Provider>(rt: &tokio::runtime::Handle, cipher: CipherKind) -> (Endpoint, SocketAddr) {
    let key = [0x5a; 32];
    let _guard = rt.enter();
    let ep = Endpoint::from_socket_with_provider::<P>(
        loopback(),
        EndpointConfig::server(config(cipher), key),
    )
    .expect("server endpoint");
    let addr = ep.local_addr();
    let accepting = ep.clone();
    rt.spawn(async move {
        while let Some(conn) = accepting.accept().await {
            tokio::spawn(async move {
                let (mut bytes, mut count) = (0u64, 0u64);
                while let Ok((channel, msg)) = conn.recv().await {
                    if channel == ECHO_CHANNEL {
                        let _ = conn.send(channel, msg).await;
                        continue;
                    }
                    bytes += msg.len() as u64;
                    count += 1;
                    let total = u64::from_le_bytes(msg[8..16].try_into().unwrap());
                    if count == total {
                        let _ = conn
                            .send(BULK, Bytes::from(bytes.to_le_bytes().to_vec()))
                            .await;
                        (bytes, count) = (0, 0);
                    }
                }
            });
        }
    });
    (ep, addr)
}

/// One measurement: (median echo RTT in µs, bulk MB/s).
async fn measure<P: Provider>(rt: &tokio::runtime::Handle, cipher: CipherKind) -> (f64, f64) {
    let (_server, addr) = server::<P>(rt, cipher);
    let client = Endpoint::from_socket_with_provider::<P>(
        loopback(),
        EndpointConfig::client(config(cipher)),
    )
    .expect("client endpoint");
    let conn = client
        .connect(addr, tern_tokio::public_key(&[0x5a; 32]))
        .await
        .expect("connect");

    let mut rtts = Vec::with_capacity(ECHOES);
    for i in 0..WARMUP + ECHOES {
        let mut req = [0u8; ECHO];
        req[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let start = Instant::now();
        conn.send(ECHO_CHANNEL, Bytes::copy_from_slice(&req))
            .await
            .expect("echo send");
        let (channel, answer) = conn.recv().await.expect("echo answer");
        let rtt = start.elapsed();
        assert!(
            channel == ECHO_CHANNEL && answer[..] == req[..],
            "wrong echo"
        );
        if i >= WARMUP {
            rtts.push(rtt.as_secs_f64() * 1e6);
        }
    }

    let mut msg = vec![0xa5u8; MSG];
    msg[8..16].copy_from_slice(&BULK_MESSAGES.to_le_bytes());
    let start = Instant::now();
    for seq in 0..BULK_MESSAGES {
        msg[..8].copy_from_slice(&seq.to_le_bytes());
        conn.send(BULK, Bytes::copy_from_slice(&msg))
            .await
            .expect("bulk send");
    }
    let (channel, answer) = conn.recv().await.expect("bulk answer");
    let took = start.elapsed();
    let bytes = u64::from_le_bytes(answer[..8].try_into().expect("8-byte count"));
    assert_eq!(channel, BULK);
    assert_eq!(bytes, BULK_MESSAGES * MSG as u64, "bulk bytes lost");
    conn.close(0, "done").await.ok();
    (median(&mut rtts), bytes as f64 / took.as_secs_f64() / 1e6)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("rounds: a number"))
        .unwrap_or(5);
    let server_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("server runtime");
    let handle = server_rt.handle().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server_thread = std::thread::spawn(move || {
        server_rt.block_on(async {
            let _ = stopped.await;
        })
    });
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");

    let ciphers = [CipherKind::ChaChaPoly, CipherKind::AesGcm];
    // [cipher][provider: 0 RustCrypto, 1 ring] -> per-round figures.
    let mut echo = vec![[Vec::new(), Vec::new()]; ciphers.len()];
    let mut bulk = vec![[Vec::new(), Vec::new()]; ciphers.len()];
    client_rt.block_on(async {
        for round in 0..rounds {
            for (c, &cipher) in ciphers.iter().enumerate() {
                let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
                for p in order {
                    let (e, b) = if p == 0 {
                        measure::<RustCrypto>(&handle, cipher).await
                    } else {
                        measure::<RingCrypto>(&handle, cipher).await
                    };
                    echo[c][p].push(e);
                    bulk[c][p].push(b);
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let _ = stop.send(());
    server_thread.join().expect("server thread");

    println!(
        "{rounds} rounds; echo: median of {ECHOES} round trips of {ECHO} bytes; \
         bulk: {BULK_MESSAGES} x {MSG} bytes one way; medians over rounds"
    );
    println!(
        "{:<12} {:>16} {:>16} {:>8} {:>16} {:>16} {:>8}",
        "cipher", "echo RustCrypto", "echo ring", "ratio", "bulk RustCrypto", "bulk ring", "ratio"
    );
    for (c, cipher) in ciphers.iter().enumerate() {
        let [er, eg] = &mut echo[c];
        let [br, bg] = &mut bulk[c];
        let (er, eg, br, bg) = (median(er), median(eg), median(br), median(bg));
        println!(
            "{:<12} {:>13.1} µs {:>13.1} µs {:>8.2} {:>11.0} MB/s {:>11.0} MB/s {:>8.2}",
            cipher.name(),
            er,
            eg,
            er / eg,
            br,
            bg,
            bg / br
        );
    }
}
