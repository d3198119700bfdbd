//! `tern-bench`: Tern measured against peer implementations and machine
//! limits, side by side in one run.
//!
//! Each subcommand is one module; every comparison prints one line,
//! `NAME: tern=X UNIT, PEER=Y UNIT, ratio=R`, where R is Tern's figure over
//! the peer's (above 1 means Tern is faster).

#![forbid(unsafe_code)]

mod harness;
mod loopback;
mod noise;
mod rng;
mod transport;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "tern-bench",
    version,
    about = "Benchmarks Tern against its peers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The Noise engine against the snow crate: handshakes and transport
    /// messages.
    Noise(noise::Args),
    /// The whole session path (client and server in memory) against the
    /// bare AEAD and snow's transport mode.
    Transport(transport::Args),
    /// Tern on tokio against quinn (QUIC with rustls) and plain UDP over
    /// loopback, pinned to one core: bulk throughput and echo latency.
    Loopback(loopback::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Noise(args) => noise::run(&args),
        Command::Transport(args) => transport::run(&args),
        Command::Loopback(args) => loopback::run(&args),
    }
}
