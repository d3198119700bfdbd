//! `tern`: try Tern on loopback, make keys, run an echo server, send to it.

#![forbid(unsafe_code)]

mod demo;
mod error;
mod keys;
mod send;
mod serve;
mod table;

use clap::{Parser, Subcommand};
use error::CliError;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  the command ran but something failed (a check of the demo, an echo)
  2  bad arguments
  3  key file missing, unreadable, malformed, or already there
  4  could not connect: no answer within the handshake timeout, handshake
     refused (wrong key, version), or the connection failed
  5  other I/O error (cannot bind the address, socket error)";

/// Tern: a secure, reliable session protocol (Noise over UDP).
#[derive(Parser, Debug)]
#[command(name = "tern", version, after_help = EXIT_CODES)]
struct Cli {
    /// Log the driver's events to stderr (or set RUST_LOG, e.g.
    /// RUST_LOG=tern_tokio=debug).
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a server and a client in this process on 127.0.0.1: handshake,
    /// messages on three channels, datagrams, a graceful close and the
    /// statistics of both sides. Nothing to install or start.
    #[command(after_help = EXIT_CODES)]
    Demo,
    /// Make a static key pair: the private key (hex) in FILE, readable by
    /// its owner only, the public key in FILE.pub; print the public key
    /// in the form `tern send --server-key` takes.
    #[command(after_help = EXIT_CODES)]
    Keygen {
        /// Where to write the private key.
        #[arg(long, short, value_name = "FILE", default_value = "tern.key")]
        out: PathBuf,
        /// Replace FILE and FILE.pub if they exist.
        #[arg(long)]
        force: bool,
    },
    /// Run an echo server: every message comes back on its channel, every
    /// datagram comes back. Logs connections to stderr; prints statistics
    /// on Ctrl-C.
    #[command(after_help = EXIT_CODES)]
    Serve {
        /// Address to listen on (UDP, or TCP with --tcp), e.g. 0.0.0.0:4433
        /// or 127.0.0.1:0.
        #[arg(long, value_name = "ADDR")]
        listen: SocketAddr,
        /// The server's private key file, from `tern keygen`.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Listen for TCP streams instead of UDP datagrams (each packet
        /// framed with its length, `spec/tcp.md`).
        #[arg(long)]
        tcp: bool,
    },
    /// Connect to a server, send each message on channel 0, print each
    /// echo with its round-trip time, close.
    #[command(after_help = EXIT_CODES)]
    Send {
        /// The server's address, e.g. 127.0.0.1:4433 or example.org:4433.
        #[arg(long, value_name = "ADDR")]
        to: String,
        /// The server's public key: 64 hex digits (what `tern keygen`
        /// prints), or a file holding them (FILE.pub).
        #[arg(long, value_name = "PUBKEY")]
        server_key: String,
        /// Connect over TCP instead of UDP (the server runs `serve --tcp`).
        #[arg(long)]
        tcp: bool,
        /// Give up the handshake after this many seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
        timeout: f64,
        /// The messages.
        #[arg(required = true, value_name = "MESSAGE")]
        messages: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, matches!(cli.command, Command::Serve { .. }));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(CliError::Io(format!("cannot start the runtime: {e}"))),
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Demo => demo::run().await,
            Command::Keygen { out, force } => keys::keygen(&out, force),
            Command::Serve { listen, key, tcp } => serve::run(listen, &key, tcp).await,
            Command::Send {
                to,
                server_key,
                tcp,
                timeout,
                messages,
            } => send::run(&to, &server_key, tcp, timeout, &messages).await,
        }
    });
    // Do not wait for endpoint tasks still closing.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

fn fail(e: CliError) -> ExitCode {
    eprintln!("tern: error: {e}");
    ExitCode::from(e.exit_code())
}

/// Logs go to stderr: always for `serve`, with `--verbose` or RUST_LOG
/// otherwise.
fn init_logging(verbose: bool, serve: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(f) if !f.is_empty() => EnvFilter::new(f),
        _ if verbose => EnvFilter::new("tern_tokio=debug,tern_driver=debug,tern=debug"),
        _ if serve => EnvFilter::new("tern_tokio=info,tern_driver=info,tern=info"),
        _ => return,
    };
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
