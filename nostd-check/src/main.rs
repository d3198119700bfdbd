//! The no_std proof: a `#![no_std]`, `#![no_main]` binary without an
//! allocator that runs, with `tern` built with default features off:
//!
//! 1. a real Noise IK handshake between two in-memory peers, then one
//!    transport message each way (`common::handshake`);
//! 2. a whole session between a `tern::ConstrainedConnection` client and
//!    server held on the stack: the IK handshake, three messages on channel
//!    0 (one of them longer than a packet, so it is fragmented and
//!    reassembled), a reply on channel 1, an unreliable datagram, and a
//!    graceful close, each payload checked byte for byte.
//!
//! On the Linux host it links only libc (for `exit` and `write`) and has its
//! own `_start` and `#[panic_handler]`: if any dependency pulled in `std`, the
//! link would fail with a duplicate `panic_impl`; nothing provides a global
//! allocator, so anything needing `alloc` would fail to link as well. It
//! exits 0 only if every step succeeded and every payload came back intact.
//!
//! On bare metal (`thumbv7em-none-eabihf`) it is a firmware image whose entry
//! is `Reset`; it cannot run on the host, but its size is the flash cost of
//! a complete session. `handshake_only.rs` is the same without the session.

#![no_std]
#![no_main]

mod common;

use common::{Fail, INITIATOR_STATIC, RESPONDER_STATIC, TestRng, same};
use core::hint::black_box;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use tern::connection::ConnectionError;
use tern::crypto::{CryptoProvider, RustCrypto};
use tern::{Config, ConstrainedConnection, Credentials, Event, Instant};

const CLIENT_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 5000);
const SERVER_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 4433);

/// A message longer than one 512-byte packet.
const LONG: [u8; 700] = {
    let mut m = [0u8; 700];
    let mut i = 0;
    while i < m.len() {
        m[i] = (i * 7 + 3) as u8;
        i += 1;
    }
    m
};
/// What the client sends on channel 0, in order.
const MESSAGES: [&[u8]; 3] = [b"session: first message", &LONG, b"session: third message"];
/// What the server answers on channel 1.
const REPLY: &[u8] = b"session: the server's reply on channel 1";
/// The client's unreliable datagram.
const DATAGRAM: &[u8] = b"session: an unreliable datagram";
/// The close reason.
const BYE: &str = "session: done";

/// What has arrived so far.
#[derive(Default)]
struct Progress {
    /// Messages of `MESSAGES` the server received, in order.
    messages: usize,
    replies: usize,
    datagrams: usize,
    /// Each side's `Closed` event, once the close started.
    client_closed: bool,
    server_closed: bool,
}

/// Lets the two connections exchange packets at `now` until both are quiet.
fn exchange(
    client: &mut ConstrainedConnection,
    server: &mut ConstrainedConnection,
    now: Instant,
    buf: &mut [u8],
) -> Result<(), Fail> {
    for _ in 0..64 {
        let mut moved = false;
        while let Some(t) = client.poll_transmit(now, buf).map_err(|_| Fail::Transmit)? {
            if t.destination != SERVER_ADDR {
                return Err(Fail::Transmit);
            }
            server
                .handle(now, CLIENT_ADDR, &mut buf[..t.len])
                .map_err(|_| Fail::Dropped)?;
            moved = true;
        }
        while let Some(t) = server.poll_transmit(now, buf).map_err(|_| Fail::Transmit)? {
            if t.destination != CLIENT_ADDR {
                return Err(Fail::Transmit);
            }
            client
                .handle(now, SERVER_ADDR, &mut buf[..t.len])
                .map_err(|_| Fail::Dropped)?;
            moved = true;
        }
        if !moved {
            return Ok(());
        }
    }
    Err(Fail::Stalled)
}

/// Handles both sides' events: sends once connected, checks what arrives.
fn events(
    client: &mut ConstrainedConnection,
    server: &mut ConstrainedConnection,
    p: &mut Progress,
    closing: bool,
) -> Result<(), Fail> {
    let mut msg = [0u8; 1024];
    while let Some(e) = client.poll_event() {
        match e {
            Event::Connected => {
                for m in MESSAGES {
                    client.send(0, m).map_err(|_| Fail::Send)?;
                }
                client.send_datagram(DATAGRAM).map_err(|_| Fail::Send)?;
            }
            Event::Readable(ch) => {
                while let Some(n) = client.recv(ch, &mut msg).map_err(|_| Fail::Recv)? {
                    if ch != 1 {
                        return Err(Fail::Recv);
                    }
                    same(&msg[..n], REPLY)?;
                    p.replies += 1;
                }
            }
            Event::Closed(ConnectionError::LocallyClosed { code: 0 }) if closing => {
                p.client_closed = true;
            }
            Event::Closed(_) => return Err(Fail::Closed),
            _ => {}
        }
    }
    while let Some(e) = server.poll_event() {
        match e {
            Event::Connected => server.send(1, REPLY).map_err(|_| Fail::Send)?,
            Event::Readable(ch) => {
                while let Some(n) = server.recv(ch, &mut msg).map_err(|_| Fail::Recv)? {
                    let expected = MESSAGES.get(p.messages).ok_or(Fail::Recv)?;
                    if ch != 0 {
                        return Err(Fail::Recv);
                    }
                    same(&msg[..n], expected)?;
                    p.messages += 1;
                }
            }
            Event::DatagramReceived => {
                while let Some(n) = server.recv_datagram(&mut msg).map_err(|_| Fail::Recv)? {
                    same(&msg[..n], DATAGRAM)?;
                    p.datagrams += 1;
                }
            }
            Event::Closed(ConnectionError::PeerClosed { code: 0, reason })
                if closing && reason.as_str() == BYE =>
            {
                p.server_closed = true;
            }
            Event::Closed(_) => return Err(Fail::Closed),
            _ => {}
        }
    }
    Ok(())
}

/// A client and a server `ConstrainedConnection` over a perfect in-memory
/// network, driven as the crate documentation says: exchange packets, handle
/// events, then jump to the next deadline.
fn session() -> Result<(), Fail> {
    let server_key = black_box(RESPONDER_STATIC);
    let client_creds = Credentials {
        private_key: Some(black_box(INITIATOR_STATIC)),
        remote_public_key: Some(RustCrypto.x25519_base(&server_key)),
        psk: None,
    };
    let server_creds = Credentials {
        private_key: Some(server_key),
        ..Credentials::default()
    };
    let mut rng = TestRng(black_box(0x5e55_1011));
    let mut now = Instant::from_millis(black_box(1));
    let mut buf = [0u8; 1500];

    let mut client = ConstrainedConnection::connect(
        Config::constrained(),
        &client_creds,
        now,
        1,
        SERVER_ADDR,
        &mut rng,
    )
    .map_err(|_| Fail::Connect)?;
    let first = client
        .poll_transmit(now, &mut buf)
        .map_err(|_| Fail::Transmit)?
        .ok_or(Fail::Connect)?;
    let mut server = ConstrainedConnection::accept(
        Config::constrained(),
        &server_creds,
        now,
        2,
        CLIENT_ADDR,
        &buf[..first.len],
        &mut rng,
    )
    .map_err(|_| Fail::Accept)?;

    let mut p = Progress::default();
    let mut closing = false;
    for _ in 0..500 {
        exchange(&mut client, &mut server, now, &mut buf)?;
        events(&mut client, &mut server, &mut p, closing)?;
        let delivered = p.messages == MESSAGES.len() && p.replies == 1 && p.datagrams == 1;
        if delivered && !closing {
            client.close(now, 0, BYE);
            closing = true;
            continue;
        }
        if closing && p.client_closed && p.server_closed {
            break;
        }
        // Nothing to do until the next deadline: jump there.
        let Some(next) = [client.poll_timeout(), server.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
        else {
            break;
        };
        now = now.max(next);
        client.handle_timeout(now);
        server.handle_timeout(now);
    }
    if !(p.messages == MESSAGES.len() && p.replies == 1 && p.datagrams == 1) {
        return Err(Fail::Stalled);
    }
    if !(p.client_closed && p.server_closed) {
        return Err(Fail::Closed);
    }
    // A perfect network: nothing dropped, everything counted.
    let (c, s) = (client.stats(), server.stats());
    if c.dropped.total() != 0
        || s.dropped.total() != 0
        || c.tx_messages != MESSAGES.len() as u64
        || s.rx_messages != MESSAGES.len() as u64
        || c.rx_messages != 1
        || s.rx_datagrams != 1
        || c.handshake_duration.is_none()
    {
        return Err(Fail::Stats);
    }
    Ok(())
}

/// `size_of::<ConstrainedConnection>()` on the target (32-bit on Cortex-M):
/// the RAM one connection takes there. `.ci/nostd.sh` reads it from the
/// image.
#[cfg(target_os = "none")]
#[unsafe(no_mangle)]
static TERN_CONSTRAINED_CONNECTION_SIZE: u32 = core::mem::size_of::<ConstrainedConnection>() as u32;

/// 0 on success, else the failing step's code.
fn run() -> i32 {
    // Keeps the size record in the image.
    #[cfg(target_os = "none")]
    black_box(&TERN_CONSTRAINED_CONNECTION_SIZE);
    match common::handshake().and_then(|()| session()) {
        Ok(()) => 0,
        Err(f) => f as i32,
    }
}

/// What a successful run prints (the host runtime calls it; bare metal has
/// no console).
#[cfg_attr(target_os = "none", allow(dead_code))]
fn report() {
    common::print(b"nostd-check: IK handshake and transport round trip OK\n");
    common::print(
        b"nostd-check: ConstrainedConnection session OK (IK handshake, 3 messages incl. a \
          fragmented one, a reply, a datagram, graceful close; no allocator)\n",
    );
    common::print(b"nostd-check: size_of::<ConstrainedConnection>() = ");
    common::print_usize(core::mem::size_of::<ConstrainedConnection>());
    common::print(b" bytes\n");
}
