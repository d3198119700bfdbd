//! The README's quick start: an echo server and a client, run together.
//!
//! `cargo run -p tern-tokio --example quickstart`. The part between the
//! markers is copied verbatim into README.md (a test checks they agree).

// README-BEGIN
use std::net::SocketAddr;
use tern_tokio::{Config, Endpoint, EndpointConfig, code};

/// An echo server: every message comes back on its channel.
async fn server(addr: SocketAddr, private_key: [u8; 32]) -> std::io::Result<()> {
    let config = EndpointConfig::server(Config::service(), private_key);
    let server = Endpoint::bind(addr, config)?;
    while let Some(conn) = server.accept().await {
        tokio::spawn(async move {
            while let Ok((channel, msg)) = conn.recv().await {
                let _ = conn.send(channel, msg).await;
            }
        });
    }
    Ok(())
}

/// A client that knows the server's public key (Noise IK, the default).
async fn client(
    server: SocketAddr,
    server_key: [u8; 32],
) -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = Endpoint::client("0.0.0.0:0".parse()?, Config::service())?;
    let conn = endpoint.connect(server, server_key).await?;
    conn.send(0, "hello, tern").await?;
    let (channel, echo) = conn.recv().await?;
    println!("echo on channel {channel}: {echo:?}");
    conn.close(code::NO_ERROR, "bye").await?;
    println!("{:?}", conn.stats().await?.connection);
    Ok(())
}
// README-END

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A free port on loopback, and a key pair (use `tern keygen` for real).
    let addr = std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?;
    let private_key = [0x5a; 32];
    tokio::spawn(server(addr, private_key));
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    client(addr, tern_tokio::public_key(&private_key)).await?;
    Ok(())
}
