//! The measuring loop shared by every comparison.
//!
//! Two implementations are measured in the same run, interleaved: several
//! short rounds, alternating which side goes first, and the median round of
//! each side is reported. On a noisy shared machine a disturbance then hits
//! both sides alike, or lands in a round the median discards.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// Options every comparing subcommand takes.
#[derive(clap::Args, Clone, Debug)]
pub struct PlanArgs {
    /// Fewer and shorter rounds, for CI smoke runs (whole run well under 10 s).
    #[arg(long)]
    pub quick: bool,
    /// Rounds per side (overrides the default of 7, or 3 with --quick).
    #[arg(long, value_name = "N")]
    pub rounds: Option<usize>,
    /// Length of one round in milliseconds (default 200, or 30 with --quick).
    #[arg(long, value_name = "MS")]
    pub round_ms: Option<u64>,
    /// Run only the comparisons whose name contains this text.
    #[arg(long, value_name = "TEXT")]
    pub only: Option<String>,
    /// Instead of timed rounds, run exactly N operations per side once (for
    /// profilers: instruction counts differenced between two N).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Which implementation to run: `both`, `tern`, or `peer` (the
    /// implementation Tern is compared with; `snow` is accepted too).
    #[arg(long, value_enum, default_value_t = Sides::Both)]
    pub side: Sides,
}

/// Which implementations a run measures.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sides {
    /// Both, interleaved.
    Both,
    /// Only Tern.
    Tern,
    /// Only the peer.
    #[value(alias = "snow")]
    Peer,
}

/// How one comparison is measured.
#[derive(Clone, Debug)]
pub struct Plan {
    rounds: usize,
    round: Duration,
    warmup: Duration,
    only: Option<String>,
    count: Option<u64>,
    sides: Sides,
}

impl Plan {
    /// The plan the command line asks for.
    pub fn from_args(a: &PlanArgs) -> Plan {
        let (rounds, round_ms, warmup_ms) = if a.quick { (3, 30, 10) } else { (7, 200, 50) };
        Plan {
            rounds: a.rounds.unwrap_or(rounds).max(1),
            round: Duration::from_millis(a.round_ms.unwrap_or(round_ms).max(1)),
            warmup: Duration::from_millis(warmup_ms),
            only: a.only.clone(),
            count: a.count,
            sides: a.side,
        }
    }

    /// Whether the comparison called `name` is selected.
    pub fn selects(&self, name: &str) -> bool {
        self.only.as_deref().is_none_or(|o| name.contains(o))
    }
}

/// What a comparison measures and how its figures are printed.
#[derive(Clone, Copy, Debug)]
pub enum Unit {
    /// Operations per second; each call of a workload is one operation.
    PerSecond(&'static str),
    /// Megabytes (10^6 bytes) per second; a workload returns its bytes.
    MegabytesPerSecond,
}

impl Unit {
    fn label(self) -> &'static str {
        match self {
            Unit::PerSecond(l) => l,
            Unit::MegabytesPerSecond => "MB/s",
        }
    }

    fn scale(self, work_per_second: f64) -> f64 {
        match self {
            Unit::PerSecond(_) => work_per_second,
            Unit::MegabytesPerSecond => work_per_second / 1e6,
        }
    }
}

/// The medians of one comparison, in its unit.
#[derive(Clone, Copy, Debug)]
pub struct Outcome {
    /// Tern's median.
    pub tern: f64,
    /// The peer's median.
    pub peer: f64,
}

impl Outcome {
    /// Tern's figure over the peer's: above 1 means Tern is faster.
    pub fn ratio(&self) -> f64 {
        self.tern / self.peer
    }
}

/// Measures `tern` against `peer` and prints
/// `NAME: tern=X UNIT, PEER=Y UNIT, ratio=R`.
///
/// Each workload performs one operation per call and returns the units of
/// work it did (1 for a handshake, payload bytes for a message). Returns
/// `None` when the plan does not select `name`.
pub fn compare(
    plan: &Plan,
    name: &str,
    unit: Unit,
    peer_name: &str,
    tern: &mut dyn FnMut() -> u64,
    peer: &mut dyn FnMut() -> u64,
) -> Option<Outcome> {
    if !plan.selects(name) {
        return None;
    }
    let run_tern = plan.sides != Sides::Peer;
    let run_peer = plan.sides != Sides::Tern;
    if let Some(n) = plan.count {
        let t = run_tern.then(|| fixed(tern, n));
        let p = run_peer.then(|| fixed(peer, n));
        let show = |r: Option<f64>| r.map_or_else(|| "-".to_owned(), |r| fmt(unit.scale(r)));
        println!(
            "{name}: tern={} {u}, {peer_name}={} {u} ({n} operations each)",
            show(t),
            show(p),
            u = unit.label()
        );
        return None;
    }
    if run_tern {
        timed(tern, plan.warmup);
    }
    if run_peer {
        timed(peer, plan.warmup);
    }
    let mut t = Vec::with_capacity(plan.rounds);
    let mut p = Vec::with_capacity(plan.rounds);
    for round in 0..plan.rounds {
        // Alternate who goes first, so neither always follows the other.
        if round % 2 == 0 {
            if run_tern {
                t.push(timed(tern, plan.round));
            }
            if run_peer {
                p.push(timed(peer, plan.round));
            }
        } else {
            if run_peer {
                p.push(timed(peer, plan.round));
            }
            if run_tern {
                t.push(timed(tern, plan.round));
            }
        }
    }
    let out = Outcome {
        tern: unit.scale(median(&mut t)),
        peer: unit.scale(median(&mut p)),
    };
    println!(
        "{name}: tern={} {u}, {peer_name}={} {u}, ratio={:.2}",
        fmt(out.tern),
        fmt(out.peer),
        out.ratio(),
        u = unit.label()
    );
    Some(out)
}

/// Runs `f` for at least `dur` and returns work per second. Calls are
/// batched, the batch doubling until one batch takes a fair share of the
/// round, so reading the clock costs nothing measurable.
fn timed(f: &mut dyn FnMut() -> u64, dur: Duration) -> f64 {
    let start = Instant::now();
    let mut work = 0u64;
    let mut batch = 1u64;
    loop {
        for _ in 0..batch {
            work += black_box(f());
        }
        let elapsed = start.elapsed();
        if elapsed >= dur {
            return work as f64 / elapsed.as_secs_f64();
        }
        if elapsed < dur / 32 {
            batch *= 2;
        }
    }
}

fn fixed(f: &mut dyn FnMut() -> u64, n: u64) -> f64 {
    let start = Instant::now();
    let mut work = 0u64;
    for _ in 0..n {
        work += black_box(f());
    }
    work as f64 / start.elapsed().as_secs_f64()
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

/// Three significant figures or more, no exponent.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }

    #[test]
    fn formats_without_exponent() {
        assert_eq!(fmt(1515.4), "1515");
        assert_eq!(fmt(19.53), "19.5");
        assert_eq!(fmt(0.5), "0.50");
    }
}
