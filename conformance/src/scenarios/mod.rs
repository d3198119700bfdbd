//! The named scenario suite of `spec/scenarios.md`: hostile networks,
//! peers that vanish or restart, close races, flow-control stalls,
//! handshake floods and packets for unknown sessions, each run against the
//! real state machine in the simulator ([`crate::sim`]) through the
//! [`World`] harness.
//!
//! Every scenario checks the global invariants of [`GLOBAL_CHECKS`] after
//! every simulated step (the harness panics on a violation, which [`run`]
//! turns into a failure) and its own checks at the end.
//! `tern-conformance scenarios` runs the whole [`registry`].

mod close;
mod flood;
mod liveness;
mod network;
mod stall;

use crate::scenario::{Flow, World};
use std::any::Any;
use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;
use tern::config::Config;
use tern::storage::ByteStore;
use tern::{ConnectionError, Event, Instant};

/// What a run may vary.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    /// Seed of the network, the keys and the traffic.
    pub seed: u64,
}

impl Default for Params {
    fn default() -> Self {
        Params { seed: 1 }
    }
}

/// A scenario's verdict: a summary of what happened, or why it failed.
pub type Verdict = Result<String, String>;

/// One named scenario.
#[derive(Clone, Copy)]
pub struct Scenario {
    /// `family/variant/preset`, unique.
    pub name: &'static str,
    /// What it sets up, in one line.
    pub description: &'static str,
    /// What it checks beyond [`GLOBAL_CHECKS`].
    pub checks: &'static [&'static str],
    /// Runs it.
    pub run: fn(&Params) -> Verdict,
}

/// The invariants checked after every simulated step of every scenario.
pub const GLOBAL_CHECKS: &[&str] = &[
    "no nonce reuse: the data packets sealed under each key carry packet numbers 0, 1, 2, ... (no (key, packet number) pair twice)",
    "exactly-once, in-order, intact delivery per channel",
    "memory within the configured limits: buffers within the windows, unread bytes within sender buffer plus receiver window, connections within max_connections",
    "events: Connected once and first, exactly one Closed, nothing after Closed",
];

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every check held; the summary says what happened.
    Passed(String),
    /// A check failed (or the harness detected a violation).
    Failed(String),
}

impl Outcome {
    /// Whether it passed.
    pub fn passed(&self) -> bool {
        matches!(self, Outcome::Passed(_))
    }
}

thread_local! {
    static PANIC_AT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Replaces the panic hook with one that prints nothing and remembers
/// where the panic happened, for [`run`] to report: the command line wants
/// one line per scenario, not a backtrace notice.
pub fn quiet_panics() {
    panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()));
        PANIC_AT.with(|p| *p.borrow_mut() = at);
    }));
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

/// Runs one scenario; an invariant violation detected by the harness (a
/// panic) is a failure like any other.
pub fn run(s: &Scenario, p: &Params) -> Outcome {
    PANIC_AT.with(|a| *a.borrow_mut() = None);
    match panic::catch_unwind(AssertUnwindSafe(|| (s.run)(p))) {
        Ok(Ok(summary)) => Outcome::Passed(summary),
        Ok(Err(why)) => Outcome::Failed(why),
        Err(payload) => {
            let msg = panic_message(payload.as_ref());
            match PANIC_AT.with(|a| a.borrow_mut().take()) {
                Some(at) => Outcome::Failed(format!("invariant violated: {msg} ({at})")),
                None => Outcome::Failed(format!("invariant violated: {msg}")),
            }
        }
    }
}

/// Runs `list` on as many threads as there are cores and calls `report`
/// for each outcome, in the order of `list`, as soon as it and every one
/// before it finished. Returns the outcomes in that order.
pub fn run_all(
    list: &[Scenario],
    p: &Params,
    mut report: impl FnMut(&Scenario, &Outcome, Duration),
) -> Vec<Outcome> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(list.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel();
    let mut out: Vec<Option<Outcome>> = vec![None; list.len()];
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(s) = list.get(i) else { break };
                    let started = std::time::Instant::now();
                    let o = run(s, p);
                    if tx.send((i, o, started.elapsed())).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut done = std::collections::BTreeMap::new();
        let mut shown = 0;
        for (i, o, took) in rx {
            done.insert(i, (o, took));
            while let Some((o, took)) = done.remove(&shown) {
                report(&list[shown], &o, took);
                out[shown] = Some(o);
                shown += 1;
            }
        }
    });
    out.into_iter()
        .map(|o| o.expect("every scenario ran"))
        .collect()
}

/// Scenarios whose name contains `filter`.
pub fn select(filter: Option<&str>) -> Vec<Scenario> {
    registry()
        .into_iter()
        .filter(|s| filter.is_none_or(|f| s.name.contains(f)))
        .collect()
}

/// Fails the scenario with a message unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}
pub(crate) use ensure;

pub(crate) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub(crate) fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// `(channels, largest message)` for traffic in a preset: messages from a
/// fragment of a packet to several packets.
pub(crate) fn shape(config: &Config) -> (u32, usize) {
    (
        config.max_channels.min(4),
        (config.max_message_size as usize).min(4096),
    )
}

/// Runs until client `k`'s traffic is all delivered.
pub(crate) fn transfer<B: ByteStore, const CH: usize, const SENT: usize>(
    w: &mut World<B, CH, SENT>,
    k: usize,
    limit: Duration,
) -> Result<(), String> {
    let start = w.net.now;
    let done = w.run_until(limit, |w| w.flow(k).done());
    let f = w.flow(k);
    ensure!(
        done,
        "traffic not delivered after {:?}: sent {:?} of {:?}, received {:?}; client ending {:?}, server ending {:?}",
        w.net.now.saturating_duration_since(start),
        f.sent,
        f.to_send,
        f.received,
        World::<B, CH, SENT>::ending(&w.client_events(k)),
        World::<B, CH, SENT>::ending(&w.server_events(k))
    );
    Ok(())
}

/// The client closes with code 0 once everything was delivered; both sides
/// must end within the idle timeout, the client `LocallyClosed { code: 0 }`
/// and the server `PeerClosed { code: 0 }` (or, when `lossy` and every
/// CLOSE was lost, a timeout). Returns how long the close took.
pub(crate) fn close_cleanly<B: ByteStore, const CH: usize, const SENT: usize>(
    w: &mut World<B, CH, SENT>,
    k: usize,
    lossy: bool,
) -> Result<Duration, String> {
    let start = w.net.now;
    w.client_conn(k)
        .ok_or("client connection gone before close")?
        .close(start, 0, "done");
    w.after_step();
    let bound = w.config.idle_timeout + secs(1);
    ensure!(
        w.run_until(bound, |w| w.both_closed(k)),
        "close did not complete within {bound:?}: client {:?}, server {:?}",
        World::<B, CH, SENT>::ending(&w.client_events(k)),
        World::<B, CH, SENT>::ending(&w.server_events(k))
    );
    let c = World::<B, CH, SENT>::ending(&w.client_events(k)).map(|e| e.1);
    let s = World::<B, CH, SENT>::ending(&w.server_events(k)).map(|e| e.1);
    ensure!(
        c == Some(ConnectionError::LocallyClosed { code: 0 }),
        "client ended with {c:?}"
    );
    // Under loss every CLOSE may be lost, and the acknowledgement of the
    // server's last data with it: the server then times out.
    ensure!(
        matches!(s, Some(ConnectionError::PeerClosed { code: 0, .. }))
            || (lossy && s.as_ref().is_some_and(is_timeout)),
        "server ended with {s:?}"
    );
    Ok(w.net.now.saturating_duration_since(start))
}

/// Whether an ending is one a dead path or peer may produce.
pub(crate) fn is_timeout(e: &ConnectionError) -> bool {
    matches!(
        e,
        ConnectionError::IdleTimeout
            | ConnectionError::DeliveryTimeout
            | ConnectionError::PeerClosed {
                code: tern::connection::code::DELIVERY_TIMEOUT,
                ..
            }
    )
}

/// Counts the `Closed` events and checks the last event is one.
pub(crate) fn one_close(events: &[(Instant, Event)], who: &str) -> Result<(), String> {
    let n = events
        .iter()
        .filter(|e| matches!(e.1, Event::Closed(_)))
        .count();
    ensure!(n == 1, "{who}: {n} Closed events: {events:?}");
    ensure!(
        matches!(events.last().map(|e| e.1), Some(Event::Closed(_))),
        "{who}: an event after Closed: {events:?}"
    );
    Ok(())
}

/// Lets `w` run a while after every connection ended, and checks the
/// endpoints freed them and went quiet.
pub(crate) fn quiet_after<B: ByteStore, const CH: usize, const SENT: usize>(
    w: &mut World<B, CH, SENT>,
) -> Result<(), String> {
    w.run_for(secs(5));
    let sent = w.net.stats.sent;
    w.run_for(secs(30));
    ensure!(
        w.net.stats.sent == sent,
        "{} datagrams sent after every connection ended",
        w.net.stats.sent - sent
    );
    ensure!(
        w.server.ep.is_empty() && w.clients.iter().all(|c| c.ep.is_empty()),
        "connections not freed"
    );
    Ok(())
}

/// `s` of virtual time, for summaries.
pub(crate) fn fmt_secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// Service and constrained variants of a generic scenario body.
macro_rules! presets {
    ($v:ident, $name:literal, $desc:literal, $checks:expr, $f:ident $(, $arg:expr)*) => {
        $v.push(Scenario {
            name: concat!($name, "/service"),
            description: $desc,
            checks: $checks,
            run: |p| {
                $f::<tern::storage::HeapBytes, 64, 256>(tern::config::Config::service(), p $(, $arg)*)
            },
        });
        $v.push(Scenario {
            name: concat!($name, "/constrained"),
            description: $desc,
            checks: $checks,
            run: |p| {
                $f::<tern::ConstrainedBytes, 2, 8>(tern::config::Config::constrained(), p $(, $arg)*)
            },
        });
    };
}

/// Every scenario, in the order of `spec/scenarios.md`.
pub fn registry() -> Vec<Scenario> {
    let mut v = Vec::new();
    network::register(&mut v);
    liveness::register(&mut v);
    close::register(&mut v);
    stall::register(&mut v);
    flood::register(&mut v);
    v
}

pub(crate) use presets;

/// A flow of `n` messages each way on the preset's channels.
pub(crate) fn flow(seed: u64, config: &Config, n: usize) -> Flow {
    let (channels, size) = shape(config);
    Flow::new(seed, channels, n, size)
}
