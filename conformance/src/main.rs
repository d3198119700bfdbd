//! `tern-conformance`: checks an implementation against the Noise vectors
//! (and, as Tern grows, its own vectors and scenarios).

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use tern_conformance::noise_vectors::{self, Tally};

#[derive(Parser)]
#[command(name = "tern-conformance", version, about = "Tern conformance suite")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay test vectors byte for byte.
    Vectors {
        /// Noise vector files in the cacophony/snow JSON format.
        #[arg(long = "noise", num_args = 1.., required = true, value_name = "FILE")]
        noise: Vec<PathBuf>,
        /// Print every failing vector, not only the first few per file.
        #[arg(long)]
        verbose: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Vectors { noise, verbose } => vectors(&noise, verbose),
    }
}

fn vectors(files: &[PathBuf], verbose: bool) -> ExitCode {
    let mut total = Tally::default();
    let mut unreadable = false;
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
