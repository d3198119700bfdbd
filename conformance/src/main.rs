//! `tern-conformance`: checks an implementation against the Noise vectors,
//! and runs Tern through the network simulator.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tern_conformance::noise_vectors::{self, Tally};
use tern_conformance::sim::Link;
use tern_conformance::simulate::{self, Options, Profile};

#[derive(Parser)]
#[command(name = "tern-conformance", version, about = "Tern conformance suite")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum ProfileArg {
    Constrained,
    Service,
}

#[derive(Subcommand)]
enum Command {
    /// Replay test vectors byte for byte.
    Vectors {
        /// Noise vector files in the cacophony/snow JSON format.
        #[arg(long = "noise", num_args = 1.., value_name = "FILE", required_unless_present = "tern")]
        noise: Vec<PathBuf>,
        /// Tern's own vector directory (spec/vectors/).
        #[arg(long = "tern", value_name = "DIR")]
        tern: Option<PathBuf>,
        /// Print every failing vector, not only the first few per file.
        #[arg(long)]
        verbose: bool,
    },
    /// Write Tern's own vectors (handshakes, frames, packets, streams) into DIR.
    GenerateVectors {
        /// Output directory.
        #[arg(long, default_value = "spec/vectors")]
        out: PathBuf,
    },
    /// Run a client and a server through the network simulator, sending
    /// messages both ways on several channels, and check delivery.
    Simulate {
        /// Seed for the network, keys and messages.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Loss probability, 0 to 1.
        #[arg(long, default_value_t = 0.0)]
        loss: f64,
        /// Reordering probability.
        #[arg(long, default_value_t = 0.0)]
        reorder: f64,
        /// Duplication probability.
        #[arg(long, default_value_t = 0.0)]
        duplicate: f64,
        /// Corruption probability (one bit flipped).
        #[arg(long, default_value_t = 0.0)]
        corrupt: f64,
        /// One-way delay in milliseconds.
        #[arg(long, default_value_t = 10)]
        delay_ms: u64,
        /// Messages each side sends.
        #[arg(long, default_value_t = 1000)]
        messages: usize,
        /// Largest message size in bytes.
        #[arg(long, default_value_t = 1024)]
        size: usize,
        /// Configuration preset.
        #[arg(long, value_enum, default_value_t = ProfileArg::Service)]
        profile: ProfileArg,
    },
    /// Run the named scenarios of spec/scenarios.md through the simulator,
    /// checking the global invariants after every step.
    Scenarios {
        /// Only scenarios whose name contains this.
        #[arg(long)]
        filter: Option<String>,
        /// Seed for the network, keys and traffic.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// List the scenarios and what they check, without running them.
        #[arg(long)]
        list: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Vectors {
            noise,
            tern,
            verbose,
        } => vectors(&noise, tern.as_deref(), verbose),
        Command::GenerateVectors { out } => {
            let set = tern_conformance::tern_vectors::generate();
            match tern_conformance::tern_vectors::write(&out, &set) {
                Ok(()) => {
                    println!(
                        "wrote {} handshakes, {} frames, {} packets, {} streams to {}",
                        set.handshakes.len(),
                        set.frames.len(),
                        set.packets.len(),
                        set.streams.len(),
                        out.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {}: {e}", out.display());
                    ExitCode::FAILURE
                }
            }
        }
        Command::Scenarios { filter, seed, list } => scenarios(filter.as_deref(), seed, list),
        Command::Simulate {
            seed,
            loss,
            reorder,
            duplicate,
            corrupt,
            delay_ms,
            messages,
            size,
            profile,
        } => {
            let opts = Options {
                seed,
                link: Link {
                    loss,
                    reorder,
                    duplicate,
                    corrupt,
                    delay: Duration::from_millis(delay_ms),
                    jitter: Duration::from_millis(delay_ms / 5),
                    mtu: 1500,
                    ..Link::default()
                },
                messages,
                size,
                profile: match profile {
                    ProfileArg::Constrained => Profile::Constrained,
                    ProfileArg::Service => Profile::Service,
                },
                time_limit: Duration::from_secs(24 * 3600),
            };
            let r = simulate::run(&opts);
            println!(
                "virtual time {:.1} s; network: {} sent, {} lost, {} duplicated, {} reordered, {} corrupted",
                r.elapsed.as_secs_f64(),
                r.net.sent,
                r.net.lost,
                r.net.duplicated,
                r.net.reordered,
                r.net.corrupted
            );
            if let Some(s) = r.client {
                println!(
                    "client: {} packets sent, {} retransmissions, {} lost, srtt {:?}, dropped {}",
                    s.tx_packets,
                    s.retransmissions,
                    s.lost_packets,
                    s.smoothed_rtt,
                    s.dropped.total()
                );
            }
            for (who, e) in ["client", "server"].iter().zip(r.endings) {
                if let Some(e) = e {
                    println!("{who}: connection ended: {e}");
                }
            }
            if r.corrupted > 0 {
                println!("{} messages corrupted", r.corrupted);
            }
            println!("{}", r.line());
            if r.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn scenarios(filter: Option<&str>, seed: u64, list: bool) -> ExitCode {
    use tern_conformance::scenarios;
    let chosen = scenarios::select(filter);
    if list {
        println!("checked after every step of every scenario:");
        for c in scenarios::GLOBAL_CHECKS {
            println!("  - {c}");
        }
        for s in &chosen {
            println!("\n{}: {}", s.name, s.description);
            for c in s.checks {
                println!("  - {c}");
            }
        }
        return ExitCode::SUCCESS;
    }
    if chosen.is_empty() {
        eprintln!("no scenario matches {:?}", filter.unwrap_or_default());
        println!("0 passed, 0 failed");
        return ExitCode::FAILURE;
    }
    scenarios::quiet_panics();
    let params = scenarios::Params { seed };
    let width = chosen.iter().map(|s| s.name.len()).max().unwrap_or(0);
    let (mut passed, mut failed) = (0, 0);
    scenarios::run_all(&chosen, &params, |s, outcome, took| match outcome {
        scenarios::Outcome::Passed(summary) => {
            passed += 1;
            println!(
                "ok   {:width$}  ({summary}; {:.1} s)",
                s.name,
                took.as_secs_f64()
            );
        }
        scenarios::Outcome::Failed(why) => {
            failed += 1;
            // One line, of a readable length.
            let mut why = why.replace('\n', " ");
            if why.chars().count() > 600 {
                why = why.chars().take(600).collect::<String>() + " ...";
            }
            println!("FAIL {}: {why}", s.name);
        }
    });
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn vectors(files: &[PathBuf], tern: Option<&std::path::Path>, verbose: bool) -> ExitCode {
    let mut total = Tally::default();
    let mut unreadable = false;
    if let Some(dir) = tern {
        match tern_conformance::tern_vectors::check(dir) {
            Ok((tally, failures)) => {
                println!(
                    "{}: {} passed, {} failed",
                    dir.display(),
                    tally.passed,
                    tally.failed
                );
                for f in failures.iter().take(if verbose { usize::MAX } else { 5 }) {
                    println!("  FAILED {f}");
                }
                total.merge(tally);
            }
            Err(e) => {
                eprintln!("error: {e}");
                unreadable = true;
            }
        }
    }
    for path in files {
        let file = match noise_vectors::load(path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("error: {e}");
                unreadable = true;
                continue;
            }
        };
        let (tally, failures) = noise_vectors::run_file(&file);
        println!(
            "{}: {} passed, {} failed, {} skipped",
            path.display(),
            tally.passed,
            tally.failed,
            tally.skipped
        );
        for f in failures.iter().take(if verbose { usize::MAX } else { 5 }) {
            println!("  FAILED {f}");
        }
        total.merge(tally);
    }
    if total.skipped > 0 {
        println!(
            "{} passed, {} failed, {} skipped",
            total.passed, total.failed, total.skipped
        );
    } else {
        println!("{} passed, {} failed", total.passed, total.failed);
    }
    if total.failed > 0 || unreadable {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
