//! The driver's crypto provider (ring) against Tern's default
//! (RustCrypto), both ways: a client on one talks to a server on the other
//! for every suite and several handshake patterns, messages of one packet
//! and of many, and datagrams, all echoed byte for byte. (Embedded clients,
//! `tern-nal`, use RustCrypto against servers on these drivers.)

use bytes::Bytes;
use std::net::SocketAddr;
use std::time::Duration;
use tern::config::{HandshakePattern, Suite};
use tern::crypto::{CipherKind, CryptoProvider, HashKind, RustCrypto};
use tern_ring::RingCrypto;
use tern_tokio::{Config, Endpoint, EndpointConfig, code, public_key};
use tokio::time::timeout;

const SERVER_KEY: [u8; 32] = [0x24; 32];
const LIMIT: Duration = Duration::from_secs(20);

fn socket() -> std::net::UdpSocket {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap()
}

fn config(suite: Suite, pattern: HandshakePattern) -> Config {
    Config {
        suite,
        pattern,
        ..Config::service()
    }
}

fn endpoint<P>(config: EndpointConfig) -> Endpoint
where
    P: CryptoProvider<Aead: Send> + Clone + Default + Send + 'static,
{
    Endpoint::from_socket_with_provider::<P>(socket(), config).unwrap()
}

/// A server on `S` echoing messages and datagrams; a client on `C` checks
/// every echo for each suite and pattern.
async fn pairing<S, C>()
where
    S: CryptoProvider<Aead: Send> + Clone + Default + Send + 'static,
    C: CryptoProvider<Aead: Send> + Clone + Default + Send + 'static,
{
    let server = endpoint::<S>(EndpointConfig::server(Config::service(), SERVER_KEY));
    let addr: SocketAddr = server.local_addr();
    let accepting = server.clone();
    tokio::spawn(async move {
        while let Some(conn) = accepting.accept().await {
            let c2 = conn.clone();
            tokio::spawn(async move {
                while let Ok(d) = c2.recv_datagram().await {
                    let _ = c2.send_datagram(d).await;
                }
            });
            tokio::spawn(async move {
                while let Ok((ch, msg)) = conn.recv().await {
                    let _ = conn.send(ch, msg).await;
                }
            });
        }
    });
    let mut runs = 0;
    for cipher in [CipherKind::ChaChaPoly, CipherKind::AesGcm] {
        for hash in [
            HashKind::Sha256,
            HashKind::Sha512,
            HashKind::Blake2s,
            HashKind::Blake2b,
        ] {
            for pattern in [
                HandshakePattern::IK,
                HandshakePattern::XX,
                HandshakePattern::NK,
                HandshakePattern::NN,
            ] {
                let what = format!("{cipher:?}/{hash:?}/{pattern:?}");
                let suite = Suite { cipher, hash };
                let client = endpoint::<C>(EndpointConfig::client(config(suite, pattern)));
                let conn = client
                    .connect(addr, public_key(&SERVER_KEY))
                    .await
                    .unwrap_or_else(|e| panic!("{what}: connect: {e}"));
                for (ch, len) in [(0u32, 1usize), (1, 1000), (2, 20_000)] {
                    let msg: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
                    conn.send(ch, Bytes::from(msg.clone())).await.unwrap();
                    let (got_ch, got) = conn.recv().await.unwrap();
                    assert_eq!((got_ch, &got[..]), (ch, &msg[..]), "{what}: echo");
                }
                conn.send_datagram(Bytes::from_static(b"datagram"))
                    .await
                    .unwrap();
                let d = conn.recv_datagram().await.unwrap();
                assert_eq!(&d[..], b"datagram", "{what}: datagram");
                conn.close(code::NO_ERROR, "done").await.unwrap();
                runs += 1;
            }
        }
    }
    assert_eq!(runs, 32);
}

#[tokio::test]
async fn ring_server_rustcrypto_clients() {
    timeout(LIMIT, pairing::<RingCrypto, RustCrypto>())
        .await
        .expect("within the limit");
}

#[tokio::test]
async fn rustcrypto_server_ring_clients() {
    timeout(LIMIT, pairing::<RustCrypto, RingCrypto>())
        .await
        .expect("within the limit");
}
