//! `tern send`: connect, send messages, print their echoes.

use crate::error::{CliError, connect_error};
use crate::keys::server_key;
use crate::table::ms;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tern_tokio::{Config, Endpoint, code};

async fn resolve(to: &str) -> Result<SocketAddr, CliError> {
    if let Ok(a) = to.parse() {
        return Ok(a);
    }
    let mut addrs = tokio::net::lookup_host(to)
        .await
        .map_err(|e| CliError::Usage(format!("--to {to:?}: not an address (HOST:PORT): {e}")))?;
    addrs
        .next()
        .ok_or_else(|| CliError::Usage(format!("--to {to:?}: no address found")))
}

pub async fn run(
    to: &str,
    key: &str,
    tcp: bool,
    timeout: f64,
    messages: &[String],
) -> Result<(), CliError> {
    let key = server_key(key)?;
    if !(timeout.is_finite() && timeout > 0.0 && timeout <= 3600.0) {
        return Err(CliError::Usage(format!(
            "--timeout {timeout}: expected seconds between 0 and 3600"
        )));
    }
    let addr = resolve(to).await?;
    let handshake_timeout = Duration::from_secs_f64(timeout);
    let config = Config {
        handshake_timeout,
        ..Config::service()
    };
    let bind: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0".parse().expect("an address")
    } else {
        "[::]:0".parse().expect("an address")
    };
    let client = if tcp {
        Endpoint::client_tcp(config)
    } else {
        Endpoint::client(bind, config)
    }
    .map_err(|e| CliError::Io(format!("cannot open a socket: {e}")))?;
    let t = Instant::now();
    // The core's handshake timeout ends the attempt; the outer bound only
    // guards against a stuck endpoint.
    let conn = tokio::time::timeout(
        handshake_timeout + Duration::from_secs(2),
        client.connect(addr, key),
    )
    .await
    .map_err(|_| CliError::Connect(format!("no answer from {addr} within {timeout} s")))?
    .map_err(|e| connect_error(&addr.to_string(), &e))?;
    println!("connected to {addr} in {}", ms(t.elapsed()));

    for m in messages {
        let t = Instant::now();
        let fail = |e: &dyn std::fmt::Display| {
            CliError::Connect(format!("connection to {addr} failed: {e}"))
        };
        conn.send(0, m.clone().into_bytes())
            .await
            .map_err(|e| match e {
                tern_tokio::SendError::TooLarge { max } => {
                    CliError::Usage(format!("message of {} bytes: larger than {max}", m.len()))
                }
                e => fail(&e),
            })?;
        let echo = conn.recv_on(0).await.map_err(|e| fail(&e))?;
        let rtt = t.elapsed();
        if echo != m.as_bytes() {
            return Err(CliError::Failed(format!(
                "the echo of {m:?} differs: {:?}",
                String::from_utf8_lossy(&echo)
            )));
        }
        println!(
            "echo: {} ({} bytes) in {}",
            String::from_utf8_lossy(&echo),
            echo.len(),
            ms(rtt)
        );
    }
    conn.close(code::NO_ERROR, "bye")
        .await
        .map_err(|e| CliError::Connect(format!("closing the connection to {addr}: {e}")))?;
    Ok(())
}
