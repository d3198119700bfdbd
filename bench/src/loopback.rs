//! `loopback`: Tern on tokio against quinn (QUIC with rustls) and against
//! plain UDP, over 127.0.0.1, in the same run.
//!
//! Two threads, a server and a client, each with its own current-thread
//! tokio runtime, both pinned to one CPU (as under `taskset -c N`), so a
//! wake-up of the other side is a context switch on the same core rather
//! than an inter-processor interrupt to another (virtual) CPU. The server
//! thread hosts a Tern endpoint, a quinn endpoint and a UDP echo socket;
//! the client thread drives the workloads:
//!
//! - **bulk**: 64 MiB in 16 KiB messages, one after another on one Tern
//!   channel, or written in 16 KiB pieces to one QUIC stream. Timed from
//!   the first send to the moment the server has read the last byte (the
//!   server reads the clock; both threads share it). Every message carries
//!   its sequence number and the run's length, and the server compares
//!   every byte with what was sent.
//! - **echo**: a 64-byte request and its 64-byte answer, one at a time
//!   (Tern: one channel; QUIC: one bidirectional stream; UDP: one
//!   datagram each way, unencrypted: the limit). Each round trip is timed;
//!   a run's figure is its median round trip.
//!
//! Both protocols are held to 1452-byte UDP payloads (Tern's
//! `max_packet_size`; quinn's initial and minimum MTU, with MTU discovery
//! off) and to the same AEAD: ChaCha20-Poly1305 (Tern's ChaChaPoly_SHA256
//! suite, TLS_CHACHA20_POLY1305_SHA256), then AES-256-GCM (Tern's
//! AESGCM_SHA256, TLS_AES_256_GCM_SHA384), from ring on both sides
//! (tern-tokio's `RingCrypto`, rustls' ring provider). Both get the same flow-control
//! windows: Tern's service preset with 1 MiB channel and 4 MiB connection
//! windows, quinn `stream_receive_window` = Tern's channel window,
//! `receive_window` and `send_window` = Tern's connection window (quinn's
//! defaults are 1.25 MB and 10 MB); both sockets ask for the same 2 MiB
//! kernel buffers. Handshakes happen before any timing, then a
//! warm-up (one bulk transfer, some echoes) on each connection.
//!
//! Each figure is the median of several runs (5 by default), the runs of
//! the implementations interleaved with a rotating order. Ratios are
//! oriented so that above 1 is better for Tern: throughput Tern over quinn,
//! latency the peer's time over Tern's.

use crate::harness::Sides;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tern::config::Suite;
use tokio::sync::{mpsc, oneshot};

/// Options of `tern-bench loopback`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Smoke-test sizes for CI: 4 MiB bulk, 2,000 echoes, one run.
    #[arg(long)]
    quick: bool,
    /// Runs per figure (default 5, or 1 with --quick); the median is
    /// reported.
    #[arg(long, value_name = "N")]
    runs: Option<usize>,
    /// The CPU every benchmark thread is pinned to.
    #[arg(long, value_name = "CPU", default_value_t = 0)]
    core: usize,
    /// Do not pin threads (the scheduler may spread them over CPUs).
    #[arg(long)]
    no_pin: bool,
    /// Bulk transfer size in MiB (default 64, or 4 with --quick).
    #[arg(long, value_name = "MIB")]
    mib: Option<usize>,
    /// Timed echo round trips per run (default 20,000, or 2,000 with
    /// --quick).
    #[arg(long, value_name = "N")]
    echoes: Option<usize>,
    /// Run only the comparisons whose name contains this text.
    #[arg(long, value_name = "TEXT")]
    only: Option<String>,
    /// Which implementations to run (for profilers): `both` (all), `tern`,
    /// or `peer` (quinn and UDP).
    #[arg(long, value_enum, default_value_t = Sides::Both)]
    side: Sides,
    /// Give quinn its own default windows (a 1.25 MB stream window and
    /// no connection limit) instead of Tern's.
    #[arg(long)]
    quinn_own_windows: bool,
}

/// Size of one bulk message (and of one write to the QUIC stream).
const MSG: usize = 16 * 1024;
/// Size of one echo request and answer.
const ECHO: usize = 64;
/// The largest UDP payload either protocol sends.
const MAX_UDP_PAYLOAD: u16 = 1452;
/// Flow-control windows both protocols are held to: per channel (QUIC:
/// per stream) and per connection. Near quinn's own defaults (a 1.25 MB
/// stream window, a 10 MB send window); Tern's service preset has 256 KiB
/// and 1 MiB, which stalled both senders on credit on this path (both ran
/// about 7% slower, Tern relatively more: one pinned core switches between
/// client and server at every credit update).
const CHANNEL_WINDOW: u32 = 1024 * 1024;
const CONNECTION_WINDOW: u64 = 4 * 1024 * 1024;
/// Tern channels: bulk messages, echo requests.
const BULK_CHANNEL: u32 = 0;
const ECHO_CHANNEL: u32 = 1;
/// Bound on one run, so a stuck transfer fails instead of hanging.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);
/// Kernel socket buffers for quinn's and the UDP echo's sockets (what
/// tern-tokio asks for on its own).
const SOCKET_BUFFER: usize = 2 * 1024 * 1024;
/// Goals of the issue.
const BULK_GOAL: f64 = 1.5;
const ECHO_VS_QUINN_GOAL: f64 = 1.0;
const ECHO_VS_UDP_GOAL: f64 = 1.3;

/// One AEAD, as each side names it.
struct Cipher {
    label: &'static str,
    tern: Suite,
    tls: rustls::SupportedCipherSuite,
    tls_name: &'static str,
}

fn ciphers() -> [Cipher; 2] {
    use rustls::crypto::ring::cipher_suite as cs;
    [
        Cipher {
            label: "chacha",
            tern: Suite::CHACHA_SHA256,
            tls: cs::TLS13_CHACHA20_POLY1305_SHA256,
            tls_name: "TLS13_CHACHA20_POLY1305_SHA256",
        },
        Cipher {
            label: "aesgcm",
            tern: Suite::AESGCM_SHA256,
            tls: cs::TLS13_AES_256_GCM_SHA384,
            tls_name: "TLS13_AES_256_GCM_SHA384",
        },
    ]
}

/// What the command line asks for.
struct Plan {
    runs: usize,
    bulk_bytes: usize,
    echoes: usize,
    warmup_echoes: usize,
    only: Option<String>,
    sides: Sides,
    quinn_own_windows: bool,
}

impl Plan {
    /// Whether this run measures `who`.
    fn runs(&self, who: Who) -> bool {
        match self.sides {
            Sides::Both => true,
            Sides::Tern => who == Who::Tern,
            Sides::Peer => who != Who::Tern,
        }
    }

    fn selects(&self, name: &str) -> bool {
        self.only.as_deref().is_none_or(|o| name.contains(o))
    }

    fn messages(&self) -> u64 {
        (self.bulk_bytes / MSG) as u64
    }
}

/// Runs the comparisons.
pub fn run(args: &Args) -> ExitCode {
    let plan = Plan {
        runs: args.runs.unwrap_or(if args.quick { 1 } else { 5 }).max(1),
        bulk_bytes: args.mib.unwrap_or(if args.quick { 4 } else { 64 }).max(1) << 20,
        echoes: args
            .echoes
            .unwrap_or(if args.quick { 2_000 } else { 20_000 })
            .max(1),
        warmup_echoes: if args.quick { 200 } else { 2_000 },
        only: args.only.clone(),
        sides: args.side,
        quinn_own_windows: args.quinn_own_windows,
    };
    let mut pin = if args.no_pin { None } else { Some(args.core) };
    if let Some(cpu) = pin
        && let Err(e) = pin_to(cpu)
    {
        // A smoke run must not fail for want of a CPU; the header says
        // the threads are not pinned.
        eprintln!("warning: {e}; threads not pinned");
        pin = None;
    }

    let (server_tx, server_rx) = mpsc::unbounded_channel();
    let server = std::thread::Builder::new()
        .name("loopback-server".into())
        .spawn(move || server_thread(pin, server_rx));
    let server = match server {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: server thread: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let result = match rt {
        Ok(rt) => rt.block_on(client_main(&plan, pin, server_tx)),
        Err(e) => Err(format!("client runtime: {e}")),
    };
    // The request channel is closed: the server thread ends.
    match server.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            eprintln!("error: server: {e}");
            return ExitCode::FAILURE;
        }
        Err(_) => {
            eprintln!("error: the server thread panicked");
            return ExitCode::FAILURE;
        }
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn pin_to(cpu: usize) -> Result<(), String> {
    let allowed = core_affinity::get_core_ids().unwrap_or_default();
    let id = allowed
        .iter()
        .find(|c| c.id == cpu)
        .copied()
        .ok_or_else(|| {
            let ids: Vec<usize> = allowed.iter().map(|c| c.id).collect();
            format!("CPU {cpu} is not among the CPUs this process may use ({ids:?})")
        })?;
    if core_affinity::set_for_current(id) {
        Ok(())
    } else {
        Err(format!("could not pin a thread to CPU {cpu}"))
    }
}

// ---------------------------------------------------------------------
// Messages and checks, shared by every implementation.

/// Bulk message `seq` of a run of `total`: the sequence number and the
/// total in the first 16 bytes, then a fixed pattern.
fn stamp(buf: &mut [u8], seq: u64, total: u64) {
    buf[..8].copy_from_slice(&seq.to_le_bytes());
    buf[8..16].copy_from_slice(&total.to_le_bytes());
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + 3) as u8).collect()
}

/// The server's side of one bulk run: checks each message in turn and
/// says when the last one is in.
struct BulkCheck {
    pattern: Vec<u8>,
    next: u64,
    bytes: u64,
}

enum Checked {
    More,
    Done(BulkReport),
}

/// The server's account of a finished run.
struct BulkReport {
    end: Instant,
    bytes: u64,
}

impl BulkCheck {
    fn new() -> BulkCheck {
        BulkCheck {
            pattern: pattern(MSG),
            next: 0,
            bytes: 0,
        }
    }

    fn message(&mut self, m: &[u8]) -> Result<Checked, String> {
        if m.len() != MSG {
            return Err(format!("bulk message of {} bytes, sent {MSG}", m.len()));
        }
        let seq = u64::from_le_bytes(m[..8].try_into().expect("8 bytes"));
        let total = u64::from_le_bytes(m[8..16].try_into().expect("8 bytes"));
        if seq == 0 {
            self.next = 0;
            self.bytes = 0;
        }
        if seq != self.next || total == 0 || seq >= total {
            return Err(format!(
                "bulk message {seq} of {total} where {} was due",
                self.next
            ));
        }
        if m[16..] != self.pattern[16..] {
            return Err(format!("bulk message {seq}: bytes differ"));
        }
        self.next += 1;
        self.bytes += m.len() as u64;
        if self.next == total {
            let report = BulkReport {
                end: Instant::now(),
                bytes: self.bytes,
            };
            self.next = 0;
            self.bytes = 0;
            Ok(Checked::Done(report))
        } else {
            Ok(Checked::More)
        }
    }
}

type Reports = mpsc::UnboundedSender<Result<BulkReport, String>>;

// ---------------------------------------------------------------------
// The server thread.

/// What the client asks the server thread to start.
enum Start {
    Tern {
        suite: Suite,
        reports: Reports,
        reply: oneshot::Sender<Result<(SocketAddr, [u8; 32]), String>>,
    },
    Quinn {
        tls: rustls::SupportedCipherSuite,
        own_windows: bool,
        reports: Reports,
        reply: oneshot::Sender<Result<(SocketAddr, Vec<u8>), String>>,
    },
    Udp {
        reply: oneshot::Sender<Result<SocketAddr, String>>,
    },
}

fn server_thread(pin: Option<usize>, mut rx: mpsc::UnboundedReceiver<Start>) -> Result<(), String> {
    if let Some(cpu) = pin {
        pin_to(cpu)?;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("server runtime: {e}"))?;
    rt.block_on(async move {
        // Endpoints live until the client is done.
        let mut keep = Vec::new();
        while let Some(req) = rx.recv().await {
            match req {
                Start::Tern {
                    suite,
                    reports,
                    reply,
                } => {
                    let r = tern_server(suite, reports).map(|(ep, addr, key)| {
                        keep.push(Box::new(ep) as Box<dyn std::any::Any>);
                        (addr, key)
                    });
                    let _ = reply.send(r);
                }
                Start::Quinn {
                    tls,
                    own_windows,
                    reports,
                    reply,
                } => {
                    let r = quinn_server(tls, own_windows, reports).map(|(ep, addr, cert)| {
                        keep.push(Box::new(ep));
                        (addr, cert)
                    });
                    let _ = reply.send(r);
                }
                Start::Udp { reply } => {
                    let _ = reply.send(udp_server());
                }
            }
        }
        Ok(())
    })
}

fn tern_config(suite: Suite) -> tern_tokio::Config {
    tern_tokio::Config {
        max_packet_size: MAX_UDP_PAYLOAD,
        suite,
        channel_window: CHANNEL_WINDOW,
        connection_window: CONNECTION_WINDOW,
        ..tern_tokio::Config::service()
    }
}

fn localhost() -> SocketAddr {
    SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0)
}

fn tern_server(
    suite: Suite,
    reports: Reports,
) -> Result<(tern_tokio::Endpoint, SocketAddr, [u8; 32]), String> {
    let key: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(29).wrapping_add(1));
    let ep = tern_tokio::Endpoint::bind(
        localhost(),
        tern_tokio::EndpointConfig::server(tern_config(suite), key),
    )
    .map_err(|e| format!("tern bind: {e}"))?;
    let addr = ep.local_addr();
    let accepting = ep.clone();
    tokio::spawn(async move {
        while let Some(conn) = accepting.accept().await {
            let reports = reports.clone();
            tokio::spawn(async move {
                let mut bulk = BulkCheck::new();
                while let Ok((channel, msg)) = conn.recv().await {
                    if channel == ECHO_CHANNEL {
                        if conn.send(channel, msg).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    match bulk.message(&msg) {
                        Ok(Checked::More) => {}
                        Ok(Checked::Done(r)) => {
                            let _ = reports.send(Ok(r));
                        }
                        Err(e) => {
                            let _ = reports.send(Err(format!("tern server: {e}")));
                            return;
                        }
                    }
                }
            });
        }
    });
    Ok((ep, addr, tern_tokio::public_key(&key)))
}

/// A UDP socket on 127.0.0.1 with [`SOCKET_BUFFER`] each way.
fn udp_socket() -> Result<std::net::UdpSocket, String> {
    let s = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )
    .map_err(|e| format!("socket: {e}"))?;
    let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = s.set_send_buffer_size(SOCKET_BUFFER);
    s.bind(&localhost().into())
        .map_err(|e| format!("bind: {e}"))?;
    s.set_nonblocking(true)
        .map_err(|e| format!("nonblocking: {e}"))?;
    Ok(s.into())
}

/// A rustls provider offering only `suite`.
fn tls_provider(suite: rustls::SupportedCipherSuite) -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::CryptoProvider {
        cipher_suites: vec![suite],
        ..rustls::crypto::ring::default_provider()
    })
}

/// QUIC Initial packets are always protected with AES-128-GCM, whatever
/// the negotiated suite.
fn quic_initial_suite() -> Result<rustls::quic::Suite, String> {
    rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256
        .tls13()
        .and_then(|s| s.quic_suite())
        .ok_or_else(|| "no QUIC initial suite".to_owned())
}

/// quinn's transport: 1452-byte packets, and Tern's windows unless
/// `own_windows`.
fn quinn_transport(own_windows: bool) -> Arc<quinn::TransportConfig> {
    let tern = tern_config(Suite::CHACHA_SHA256);
    let mut t = quinn::TransportConfig::default();
    t.initial_mtu(MAX_UDP_PAYLOAD)
        .min_mtu(MAX_UDP_PAYLOAD)
        .mtu_discovery_config(None);
    if !own_windows {
        t.stream_receive_window(quinn::VarInt::from_u32(tern.channel_window))
            .receive_window(
                quinn::VarInt::from_u64(tern.connection_window).unwrap_or(quinn::VarInt::MAX),
            )
            .send_window(tern.connection_window);
    }
    Arc::new(t)
}

fn quinn_server(
    tls: rustls::SupportedCipherSuite,
    own_windows: bool,
    reports: Reports,
) -> Result<(quinn::Endpoint, SocketAddr, Vec<u8>), String> {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
        .map_err(|e| format!("rcgen: {e}"))?;
    let cert_der = cert.cert.der().to_vec();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let crypto = rustls::ServerConfig::builder_with_provider(tls_provider(tls))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| format!("rustls: {e}"))?
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.clone().into()], key)
        .map_err(|e| format!("rustls: {e}"))?;
    let crypto = quinn::crypto::rustls::QuicServerConfig::with_initial(
        Arc::new(crypto),
        quic_initial_suite()?,
    )
    .map_err(|e| format!("quinn: {e}"))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(quinn_transport(own_windows));
    let ep = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(config),
        udp_socket()?,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(|e| format!("quinn endpoint: {e}"))?;
    let addr = ep.local_addr().map_err(|e| e.to_string())?;
    let accepting = ep.clone();
    tokio::spawn(async move {
        while let Some(incoming) = accepting.accept().await {
            let reports = reports.clone();
            tokio::spawn(async move {
                let Ok(conn) = incoming.await else { return };
                let echo_conn = conn.clone();
                tokio::spawn(async move {
                    while let Ok((mut send, mut recv)) = echo_conn.accept_bi().await {
                        tokio::spawn(async move {
                            let mut buf = [0u8; ECHO];
                            while recv.read_exact(&mut buf).await.is_ok() {
                                if send.write_all(&buf).await.is_err() {
                                    return;
                                }
                            }
                        });
                    }
                });
                while let Ok(mut recv) = conn.accept_uni().await {
                    let reports = reports.clone();
                    tokio::spawn(async move {
                        let mut bulk = BulkCheck::new();
                        let mut buf = vec![0u8; MSG];
                        loop {
                            match recv.read_exact(&mut buf).await {
                                Ok(()) => {}
                                Err(quinn::ReadExactError::FinishedEarly(0)) => return,
                                Err(e) => {
                                    let _ = reports.send(Err(format!("quinn server: {e}")));
                                    return;
                                }
                            }
                            match bulk.message(&buf) {
                                Ok(Checked::More) => {}
                                Ok(Checked::Done(r)) => {
                                    let _ = reports.send(Ok(r));
                                }
                                Err(e) => {
                                    let _ = reports.send(Err(format!("quinn server: {e}")));
                                    return;
                                }
                            }
                        }
                    });
                }
            });
        }
    });
    Ok((ep, addr, cert_der))
}

fn udp_server() -> Result<SocketAddr, String> {
    let socket = tokio::net::UdpSocket::from_std(udp_socket()?).map_err(|e| e.to_string())?;
    let addr = socket.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            if socket.send_to(&buf[..n], from).await.is_err() {
                return;
            }
        }
    });
    Ok(addr)
}

// ---------------------------------------------------------------------
// The client side: one connection per implementation and cipher.

struct TernClient {
    conn: tern_tokio::Connection,
    reports: mpsc::UnboundedReceiver<Result<BulkReport, String>>,
}

struct QuinnClient {
    /// Kept so the endpoint's driver outlives the measurements.
    _endpoint: quinn::Endpoint,
    conn: quinn::Connection,
    echo: (quinn::SendStream, quinn::RecvStream),
    reports: mpsc::UnboundedReceiver<Result<BulkReport, String>>,
}

struct UdpClient {
    socket: tokio::net::UdpSocket,
}

async fn ask<T>(
    server: &mpsc::UnboundedSender<Start>,
    make: impl FnOnce(oneshot::Sender<Result<T, String>>) -> Start,
) -> Result<T, String> {
    let (reply, answer) = oneshot::channel();
    server
        .send(make(reply))
        .map_err(|_| "the server thread is gone".to_owned())?;
    answer
        .await
        .map_err(|_| "the server thread is gone".to_owned())?
}

impl TernClient {
    async fn new(suite: Suite, server: &mpsc::UnboundedSender<Start>) -> Result<Self, String> {
        let (reports_tx, reports) = mpsc::unbounded_channel();
        let (addr, key) = ask(server, |reply| Start::Tern {
            suite,
            reports: reports_tx,
            reply,
        })
        .await?;
        let ep = tern_tokio::Endpoint::client(localhost(), tern_config(suite))
            .map_err(|e| format!("tern client: {e}"))?;
        let conn = ep
            .connect(addr, key)
            .await
            .map_err(|e| format!("tern connect: {e}"))?;
        Ok(TernClient { conn, reports })
    }

    /// One bulk run: the time from the first send until the server has
    /// the last byte, and the bytes it counted.
    async fn bulk(&mut self, messages: u64) -> Result<(Duration, u64), String> {
        let mut buf = pattern(MSG);
        let start = Instant::now();
        for seq in 0..messages {
            stamp(&mut buf, seq, messages);
            self.conn
                .send(BULK_CHANNEL, &buf)
                .await
                .map_err(|e| format!("tern send: {e}"))?;
        }
        let r = self.reports.recv().await.ok_or("tern server gone")??;
        Ok((r.end.saturating_duration_since(start), r.bytes))
    }

    async fn echo(&mut self, seq: u64) -> Result<Duration, String> {
        let mut req = [0u8; ECHO];
        req[..8].copy_from_slice(&seq.to_le_bytes());
        let start = Instant::now();
        self.conn
            .send(ECHO_CHANNEL, &req)
            .await
            .map_err(|e| format!("tern send: {e}"))?;
        let (channel, answer) = self
            .conn
            .recv()
            .await
            .map_err(|e| format!("tern recv: {e}"))?;
        let rtt = start.elapsed();
        if channel != ECHO_CHANNEL || answer[..] != req[..] {
            return Err(format!("tern echo {seq}: wrong answer"));
        }
        Ok(rtt)
    }

    async fn summary(&self) -> String {
        match self.conn.stats().await {
            Ok(s) => {
                let c = s.connection;
                format!(
                    "tern client: {} packets sent, {} received, {} retransmissions, {} lost, \
                     smoothed RTT {:?}",
                    c.tx_packets, c.rx_packets, c.retransmissions, c.lost_packets, c.smoothed_rtt
                )
            }
            Err(e) => format!("tern stats: {e}"),
        }
    }
}

impl QuinnClient {
    async fn new(
        tls: rustls::SupportedCipherSuite,
        own_windows: bool,
        server: &mpsc::UnboundedSender<Start>,
    ) -> Result<Self, String> {
        let (reports_tx, reports) = mpsc::unbounded_channel();
        let (addr, cert) = ask(server, |reply| Start::Quinn {
            tls,
            own_windows,
            reports: reports_tx,
            reply,
        })
        .await?;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(cert.into())
            .map_err(|e| format!("rustls root: {e}"))?;
        let crypto = rustls::ClientConfig::builder_with_provider(tls_provider(tls))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| format!("rustls: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let crypto = quinn::crypto::rustls::QuicClientConfig::with_initial(
            Arc::new(crypto),
            quic_initial_suite()?,
        )
        .map_err(|e| format!("quinn: {e}"))?;
        let mut config = quinn::ClientConfig::new(Arc::new(crypto));
        config.transport_config(quinn_transport(own_windows));
        let mut endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            None,
            udp_socket()?,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|e| format!("quinn endpoint: {e}"))?;
        endpoint.set_default_client_config(config);
        let conn = endpoint
            .connect(addr, "localhost")
            .map_err(|e| format!("quinn connect: {e}"))?
            .await
            .map_err(|e| format!("quinn connect: {e}"))?;
        let echo = conn
            .open_bi()
            .await
            .map_err(|e| format!("quinn open_bi: {e}"))?;
        Ok(QuinnClient {
            _endpoint: endpoint,
            conn,
            echo,
            reports,
        })
    }

    async fn bulk(&mut self, messages: u64) -> Result<(Duration, u64), String> {
        let mut buf = pattern(MSG);
        let start = Instant::now();
        let mut stream = self
            .conn
            .open_uni()
            .await
            .map_err(|e| format!("quinn open_uni: {e}"))?;
        for seq in 0..messages {
            stamp(&mut buf, seq, messages);
            stream
                .write_all(&buf)
                .await
                .map_err(|e| format!("quinn write: {e}"))?;
        }
        stream.finish().map_err(|e| format!("quinn finish: {e}"))?;
        let r = self.reports.recv().await.ok_or("quinn server gone")??;
        Ok((r.end.saturating_duration_since(start), r.bytes))
    }

    async fn echo(&mut self, seq: u64) -> Result<Duration, String> {
        let mut req = [0u8; ECHO];
        req[..8].copy_from_slice(&seq.to_le_bytes());
        let mut answer = [0u8; ECHO];
        let (send, recv) = &mut self.echo;
        let start = Instant::now();
        send.write_all(&req)
            .await
            .map_err(|e| format!("quinn write: {e}"))?;
        recv.read_exact(&mut answer)
            .await
            .map_err(|e| format!("quinn read: {e}"))?;
        let rtt = start.elapsed();
        if answer != req {
            return Err(format!("quinn echo {seq}: wrong answer"));
        }
        Ok(rtt)
    }

    fn summary(&self) -> String {
        let s = self.conn.stats();
        format!(
            "quinn client: {} datagrams sent in {} calls, {} received, {} lost packets, \
             RTT {:?}",
            s.udp_tx.datagrams, s.udp_tx.ios, s.udp_rx.datagrams, s.path.lost_packets, s.path.rtt
        )
    }
}

impl UdpClient {
    async fn new(server: &mpsc::UnboundedSender<Start>) -> Result<Self, String> {
        let addr = ask(server, |reply| Start::Udp { reply }).await?;
        let socket = tokio::net::UdpSocket::from_std(udp_socket()?).map_err(|e| e.to_string())?;
        socket.connect(addr).await.map_err(|e| e.to_string())?;
        Ok(UdpClient { socket })
    }

    async fn echo(&mut self, seq: u64) -> Result<Duration, String> {
        let mut req = [0u8; ECHO];
        req[..8].copy_from_slice(&seq.to_le_bytes());
        let mut answer = [0u8; 2048];
        let start = Instant::now();
        self.socket
            .send(&req)
            .await
            .map_err(|e| format!("udp send: {e}"))?;
        let n = self
            .socket
            .recv(&mut answer)
            .await
            .map_err(|e| format!("udp recv: {e}"))?;
        let rtt = start.elapsed();
        if answer[..n] != req[..] {
            return Err(format!("udp echo {seq}: wrong answer"));
        }
        Ok(rtt)
    }
}

/// Which implementation a step of a run is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Who {
    Tern,
    Quinn,
    Udp,
}

/// The first `n` of `who`, rotated by `run` so no side always goes first.
fn order(who: &[Who], run: usize) -> Vec<Who> {
    let mut v = who.to_vec();
    let len = v.len();
    v.rotate_left(run % len);
    v
}

/// The round trips of one echo run, in microseconds: (median, mean).
async fn echo_run<F>(n: usize, seq: &mut u64, mut one: F) -> Result<(f64, f64), String>
where
    F: AsyncFnMut(u64) -> Result<Duration, String>,
{
    let mut rtts = Vec::with_capacity(n);
    for _ in 0..n {
        *seq += 1;
        rtts.push(one(*seq).await?.as_secs_f64() * 1e6);
    }
    let mean = rtts.iter().sum::<f64>() / rtts.len() as f64;
    Ok((median(&mut rtts), mean))
}

async fn client_main(
    plan: &Plan,
    pin: Option<usize>,
    server: mpsc::UnboundedSender<Start>,
) -> Result<(), String> {
    let begun = Instant::now();
    println!(
        "# loopback over 127.0.0.1: UDP payloads at most {MAX_UDP_PAYLOAD} B on both sides; \
         client and server threads {}; each figure the median of {} run(s), run values in \
         brackets",
        match pin {
            Some(cpu) => format!("pinned to CPU {cpu} (as under taskset -c {cpu})"),
            None => "not pinned".to_owned(),
        },
        plan.runs
    );
    println!(
        "# bulk: {} MiB in {} KiB messages; echo: {} round trips of {ECHO} B per run",
        plan.bulk_bytes >> 20,
        MSG >> 10,
        plan.echoes
    );
    println!(
        "# ratio above 1 is better for Tern: bulk tern/quinn; echo quinn/tern, and udp/tern \
         against plain unencrypted UDP"
    );
    let mut missed: Vec<String> = Vec::new();
    let mut met: Vec<String> = Vec::new();
    let mut udp: Option<UdpClient> = None;
    for cipher in ciphers() {
        let bulk_name = format!("bulk-{}KiB-{}", MSG >> 10, cipher.label);
        let echo_name = format!("echo-{ECHO}B-{}", cipher.label);
        // The comparison with plain UDP is run with the first cipher.
        let udp_name = format!("echo-{ECHO}B");
        let with_udp = cipher.label == "chacha" && plan.selects(&udp_name);
        let do_bulk = plan.selects(&bulk_name);
        let do_echo = plan.selects(&echo_name) || with_udp;
        if !do_bulk && !do_echo {
            continue;
        }
        println!(
            "# {}: tern suite {:?}, quinn {}",
            cipher.label, cipher.tern, cipher.tls_name
        );
        let mut tern = TernClient::new(cipher.tern, &server).await?;
        let mut quinn = QuinnClient::new(cipher.tls, plan.quinn_own_windows, &server).await?;
        if with_udp && udp.is_none() {
            udp = Some(UdpClient::new(&server).await?);
        }

        if do_bulk {
            let messages = plan.messages();
            let bytes = messages * MSG as u64;
            // Warm-up: congestion windows open, allocations settle.
            let warm = messages.min(256);
            if plan.runs(Who::Tern) {
                timeout(tern.bulk(warm)).await?;
            }
            if plan.runs(Who::Quinn) {
                timeout(quinn.bulk(warm)).await?;
            }
            let (mut t, mut q) = (Vec::new(), Vec::new());
            for run in 0..plan.runs {
                for who in order(&[Who::Tern, Who::Quinn], run) {
                    if !plan.runs(who) {
                        continue;
                    }
                    let (took, got) = match who {
                        Who::Tern => timeout(tern.bulk(messages)).await?,
                        _ => timeout(quinn.bulk(messages)).await?,
                    };
                    if got != bytes {
                        return Err(format!(
                            "{bulk_name}: server counted {got} of {bytes} bytes"
                        ));
                    }
                    let mibs = bytes as f64 / (1 << 20) as f64 / took.as_secs_f64();
                    if who == Who::Tern { &mut t } else { &mut q }.push(mibs);
                }
            }
            let (tm, qm) = (median(&mut t.clone()), median(&mut q.clone()));
            let ratio = tm / qm;
            println!(
                "{bulk_name}: tern={} MiB/s, quinn={} MiB/s, ratio={ratio:.2}",
                fmt(tm),
                fmt(qm)
            );
            println!("#   runs: tern {}, quinn {}", list(&t), list(&q));
            goal(
                ratio >= BULK_GOAL,
                format!("{bulk_name} >= {BULK_GOAL} x quinn (ratio {ratio:.2})"),
                &mut met,
                &mut missed,
            );
        }

        if do_echo {
            let mut seq = 0u64;
            for _ in 0..plan.warmup_echoes {
                seq += 1;
                if plan.runs(Who::Tern) {
                    tern.echo(seq).await?;
                }
                if plan.runs(Who::Quinn) {
                    quinn.echo(seq).await?;
                }
                if with_udp
                    && plan.runs(Who::Udp)
                    && let Some(u) = udp.as_mut()
                {
                    u.echo(seq).await?;
                }
            }
            let sides: &[Who] = if with_udp {
                &[Who::Tern, Who::Quinn, Who::Udp]
            } else {
                &[Who::Tern, Who::Quinn]
            };
            let (mut t, mut q, mut u) = (Vec::new(), Vec::new(), Vec::new());
            let (mut tmean, mut qmean, mut umean) = (Vec::new(), Vec::new(), Vec::new());
            for run in 0..plan.runs {
                for who in order(sides, run) {
                    if !plan.runs(who) {
                        continue;
                    }
                    let n = plan.echoes;
                    let (med, mean) = match who {
                        Who::Tern => {
                            timeout(echo_run(n, &mut seq, async |s| tern.echo(s).await)).await?
                        }
                        Who::Quinn => {
                            timeout(echo_run(n, &mut seq, async |s| quinn.echo(s).await)).await?
                        }
                        Who::Udp => {
                            let Some(udp) = udp.as_mut() else { continue };
                            timeout(echo_run(n, &mut seq, async |s| udp.echo(s).await)).await?
                        }
                    };
                    match who {
                        Who::Tern => (t.push(med), tmean.push(mean)),
                        Who::Quinn => (q.push(med), qmean.push(mean)),
                        Who::Udp => (u.push(med), umean.push(mean)),
                    };
                }
            }
            let tm = median(&mut t.clone());
            if plan.selects(&echo_name) {
                let qm = median(&mut q.clone());
                let ratio = qm / tm;
                println!(
                    "{echo_name}: tern={} us, quinn={} us, ratio={ratio:.2}",
                    fmt(tm),
                    fmt(qm)
                );
                println!(
                    "#   run medians: tern {}, quinn {}; run means: tern {}, quinn {}",
                    list(&t),
                    list(&q),
                    list(&tmean),
                    list(&qmean)
                );
                goal(
                    ratio >= ECHO_VS_QUINN_GOAL,
                    format!("{echo_name} no slower than quinn (ratio {ratio:.2})"),
                    &mut met,
                    &mut missed,
                );
            }
            if with_udp {
                let um = median(&mut u.clone());
                let ratio = um / tm;
                println!(
                    "{udp_name}: tern={} us, udp={} us, ratio={ratio:.2}",
                    fmt(tm),
                    fmt(um)
                );
                println!(
                    "#   run medians: udp {}; run means: udp {}",
                    list(&u),
                    list(&umean)
                );
                goal(
                    tm <= ECHO_VS_UDP_GOAL * um,
                    format!(
                        "{udp_name} within {ECHO_VS_UDP_GOAL} x plain UDP (tern/udp {:.2})",
                        tm / um
                    ),
                    &mut met,
                    &mut missed,
                );
            }
        }
        println!("#   {} (bulk and echo)", tern.summary().await);
        println!("#   {} (bulk and echo)", quinn.summary());
        let _ = tern.conn.close(tern_tokio::code::NO_ERROR, "done").await;
        quinn.conn.close(0u32.into(), b"done");
    }
    println!(
        "# goals met: {}; missed: {}; {:.1} s",
        if met.is_empty() {
            "none".to_owned()
        } else {
            met.join(", ")
        },
        if missed.is_empty() {
            "none".to_owned()
        } else {
            missed.join(", ")
        },
        begun.elapsed().as_secs_f64()
    );
    Ok(())
}

fn goal(ok: bool, what: String, met: &mut Vec<String>, missed: &mut Vec<String>) {
    if ok { met } else { missed }.push(what);
}

async fn timeout<T>(f: impl Future<Output = Result<T, String>>) -> Result<T, String> {
    tokio::time::timeout(RUN_TIMEOUT, f)
        .await
        .map_err(|_| format!("a run took longer than {RUN_TIMEOUT:?}"))?
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

fn fmt(x: f64) -> String {
    if !x.is_finite() {
        "-".to_owned()
    } else if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn list(v: &[f64]) -> String {
    let items: Vec<String> = v.iter().map(|&x| fmt(x)).collect();
    format!("[{}]", items.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(seq: u64, total: u64) -> Vec<u8> {
        let mut m = pattern(MSG);
        stamp(&mut m, seq, total);
        m
    }

    #[test]
    fn bulk_check_reports_the_last_message_once() {
        let mut c = BulkCheck::new();
        assert!(matches!(c.message(&message(0, 3)), Ok(Checked::More)));
        assert!(matches!(c.message(&message(1, 3)), Ok(Checked::More)));
        match c.message(&message(2, 3)) {
            Ok(Checked::Done(r)) => assert_eq!(r.bytes, 3 * MSG as u64),
            _ => panic!("the last message must finish the run"),
        }
        // A new run starts again from 0.
        assert!(matches!(c.message(&message(0, 1)), Ok(Checked::Done(_))));
    }

    #[test]
    fn bulk_check_refuses_gaps_corruption_and_short_messages() {
        let mut c = BulkCheck::new();
        assert!(matches!(c.message(&message(0, 4)), Ok(Checked::More)));
        assert!(c.message(&message(2, 4)).is_err());
        let mut c = BulkCheck::new();
        let mut m = message(0, 4);
        m[MSG / 2] ^= 1;
        assert!(c.message(&m).is_err());
        assert!(c.message(&message(0, 4)[..MSG - 1]).is_err());
    }

    #[test]
    fn order_rotates() {
        let w = [Who::Tern, Who::Quinn, Who::Udp];
        assert!(order(&w, 0) == w);
        assert!(order(&w, 1) == [Who::Quinn, Who::Udp, Who::Tern]);
        assert!(order(&w, 3) == w);
    }
}
