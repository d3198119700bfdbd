//! The named scenario suite of `spec/scenarios.md`: every registered
//! scenario passes (with smaller traffic in this debug build; the command
//! line runs them at full size), the registry names every scenario the
//! spec requires, and the invariant checkers really fail when an invariant
//! is broken, through the harness and through the runner.

use std::process::Command;
use std::time::Duration;
use tern::config::Config;
use tern::endpoint::ConnectionHandle;
use tern::storage::HeapBytes;
use tern::{ConnectionError, Event};
use tern_conformance::scenario::{Flow, World};
use tern_conformance::scenarios::{self, Outcome, Params, Scenario, Verdict};
use tern_conformance::sim::Link;
use tern_conformance::simulate::message;

type Service = World<HeapBytes, 64, 256>;

/// Runs the whole registry with `seed` and fails listing every failure.
fn registry_passes(seed: u64) {
    let list = scenarios::registry();
    let outcomes = scenarios::run_all(&list, &Params { seed }, |s, o, took| {
        eprintln!("seed {seed} {:<45} {took:>8.2?} {o:?}", s.name);
    });
    let failed: Vec<String> = list
        .iter()
        .zip(&outcomes)
        .filter_map(|(s, o)| match o {
            Outcome::Failed(why) => Some(format!("{}: {why}", s.name)),
            Outcome::Passed(_) => None,
        })
        .collect();
    assert!(
        failed.is_empty(),
        "seed {seed}: {} failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

/// The command line's default seed (the CI runs it too, in release).
#[test]
fn every_registered_scenario_passes() {
    registry_passes(1);
}

#[test]
fn every_registered_scenario_passes_with_another_seed() {
    registry_passes(2);
}

#[test]
fn the_registry_names_every_required_scenario_for_both_presets() {
    let list = scenarios::registry();
    let names: Vec<&str> = list.iter().map(|s| s.name).collect();
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "duplicate names: {names:?}");
    for family in [
        "loss-bursts",
        "long-reordering",
        "duplication-storm",
        "mtu-drop/temporary",
        "mtu-drop/permanent",
        "asymmetric-loss/client-to-server",
        "asymmetric-loss/server-to-client",
        "silent-peer/handshake",
        "silent-peer/idle",
        "silent-peer/transfer",
        "peer-restart",
        "close-races/simultaneous",
        "close-races/data-in-flight",
        "close-races/during-handshake",
        "close-races/while-peer-sends",
        "flow-control-stall",
        "handshake-flood/rate-limit",
        "handshake-flood/table-full",
        "unknown-sessions",
    ] {
        for preset in ["service", "constrained"] {
            let name = format!("{family}/{preset}");
            assert!(names.contains(&name.as_str()), "{name} missing");
        }
    }
    for s in &list {
        assert!(
            !s.description.is_empty() && !s.checks.is_empty(),
            "{}",
            s.name
        );
    }
    assert_eq!(scenarios::select(Some("mtu-drop/")).len(), 4);
    assert!(scenarios::select(Some("no such scenario")).is_empty());
}

// ----- the checkers can fail -------------------------------------------------

#[test]
fn the_delivery_checker_rejects_duplicates_gaps_and_corruption() {
    let now = tern::Instant::from_millis(1);
    let mut f = Flow::new(7, 2, 10, 100);
    // Side 0 (the client) reads what side 1 (the server) sent.
    let m = |ch, seq| message(7, 1, ch, seq, 100);
    assert_eq!(f.deliver(now, 0, 0, &m(0, 0)), Ok(()));
    let dup = f.deliver(now, 0, 0, &m(0, 0)).unwrap_err();
    assert!(dup.contains("delivered twice"), "{dup}");
    let gap = f.deliver(now, 0, 0, &m(0, 2)).unwrap_err();
    assert!(gap.contains("delivered before"), "{gap}");
    let wrong = f.deliver(now, 0, 1, &m(0, 1)).unwrap_err();
    assert!(wrong.contains("read on"), "{wrong}");
    let mut bad = m(0, 1);
    *bad.last_mut().unwrap() ^= 1;
    let corrupted = f.deliver(now, 0, 0, &bad).unwrap_err();
    assert!(corrupted.contains("corrupted"), "{corrupted}");
    // Refused deliveries are not counted; the right one still passes.
    assert_eq!(f.received, [1, 0]);
    assert_eq!(f.deliver(now, 0, 0, &m(0, 1)), Ok(()));
    assert_eq!(f.deliver(now, 0, 1, &m(1, 0)), Ok(()));
    assert_eq!(f.received, [3, 0]);
}

#[test]
fn the_event_checker_rejects_events_after_closed() {
    let mut w = Service::new(Config::service(), Link::default(), 3);
    let now = w.net.now;
    let h = ConnectionHandle(7);
    let before = w.record_event(now, 1, h, Event::Readable(0)).unwrap_err();
    assert!(before.contains("before Connected"), "{before}");
    assert_eq!(w.record_event(now, 1, h, Event::Connected), Ok(()));
    let twice = w.record_event(now, 1, h, Event::Connected).unwrap_err();
    assert!(twice.contains("Connected twice"), "{twice}");
    let closed = Event::Closed(ConnectionError::IdleTimeout);
    assert_eq!(w.record_event(now, 1, h, closed), Ok(()));
    let after = w.record_event(now, 1, h, Event::Readable(0)).unwrap_err();
    assert!(after.contains("after Closed"), "{after}");
    let again = w.record_event(now, 1, h, closed).unwrap_err();
    assert!(again.contains("after Closed"), "{again}");
}

/// A connected world with some traffic delivered, capturing datagrams.
fn busy_world(seed: u64) -> (Service, usize) {
    let mut w = Service::new(Config::service(), Link::default(), seed);
    w.net.capture = Some(Vec::new());
    let k = w.add_client();
    w.set_flow(k, Flow::new(seed, 2, 20, 500));
    assert!(w.run_until(Duration::from_secs(30), |w| w.flow(k).done()));
    (w, k)
}

#[test]
fn the_nonce_monitor_detects_a_packet_number_sealed_twice() {
    let (mut w, k) = busy_world(4);
    assert_eq!(w.violation(), None);
    let (client, server) = (w.client_addr(k), w.server.addr);
    let sealed = w.net.stats.sealed;
    assert!(sealed > 10 && w.net.stats.keys == 2, "{:?}", w.net.stats);
    // The client "seals" one of its earlier packets again: the same key
    // and packet number on the wire a second time.
    let again = w
        .net
        .capture
        .as_ref()
        .unwrap()
        .iter()
        .rev()
        .find(|c| c.1 == client && c.2 == server && c.3[0] & 0x80 == 0)
        .map(|c| c.3.clone())
        .unwrap();
    w.net.send(client, server, &again);
    assert_eq!(w.net.stats.pn_violations, 1);
    let why = w.violation().expect("violation");
    assert!(why.contains("nonce"), "{why}");
    // Injected datagrams (an attacker's replay) are not the sender's.
    let (mut w, k) = busy_world(5);
    let again = w.net.capture.as_ref().unwrap().last().unwrap().3.clone();
    let (from, to) = (w.client_addr(k), w.server.addr);
    w.net.inject(from, to, &again);
    assert_eq!(w.violation(), None);
}

#[test]
fn the_memory_check_detects_unread_bytes_beyond_the_windows() {
    let (mut w, k) = busy_world(6);
    assert_eq!(w.violation(), None);
    w.flow_mut(k).accepted_bytes[0] += 10 * u64::from(Config::service().channel_window);
    let why = w.violation().expect("violation");
    assert!(why.contains("accepted and unread"), "{why}");
}

fn broken_duplicate(p: &Params) -> Verdict {
    // A server application that sends a message twice is, to the checker,
    // a duplicated delivery.
    let (mut w, k) = busy_world(p.seed);
    let m = message(p.seed, 1, 0, 0, 500);
    w.server_conn(k).unwrap().send(0, &m).unwrap();
    w.run_for(Duration::from_secs(1));
    Ok("not detected".into())
}

fn broken_nonce(p: &Params) -> Verdict {
    let (mut w, k) = busy_world(p.seed);
    let (client, server) = (w.client_addr(k), w.server.addr);
    let first = w
        .net
        .capture
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.1 == client && c.3[0] & 0x80 == 0)
        .map(|c| c.3.clone())
        .unwrap();
    w.net.send(client, server, &first);
    w.run_for(Duration::from_secs(1));
    Ok("not detected".into())
}

#[test]
fn the_runner_reports_broken_invariants_as_failures() {
    let p = Params { seed: 8 };
    let scenario = |name, run| Scenario {
        name,
        description: "deliberately broken",
        checks: &["the harness notices"],
        run,
    };
    match scenarios::run(&scenario("broken/duplicate", broken_duplicate), &p) {
        Outcome::Failed(why) => assert!(why.contains("delivered twice"), "{why}"),
        o => panic!("{o:?}"),
    }
    match scenarios::run(&scenario("broken/nonce", broken_nonce), &p) {
        Outcome::Failed(why) => assert!(why.contains("nonce"), "{why}"),
        o => panic!("{o:?}"),
    }
    let refused = scenario("broken/verdict", |_| Err("a check failed".into()));
    assert_eq!(
        scenarios::run(&refused, &p),
        Outcome::Failed("a check failed".into())
    );
}

// ----- the command line ------------------------------------------------------

fn cli(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tern-conformance"))
        .arg("scenarios")
        .args(args)
        .output()
        .expect("run tern-conformance");
    (
        out.status.success(),
        String::from_utf8(out.stdout).expect("utf-8"),
    )
}

#[test]
fn scenarios_command_reports_one_line_each_and_a_total() {
    let (ok, out) = cli(&["--filter", "unknown-sessions/", "--seed", "3"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(ok, "{out}");
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].starts_with("ok   unknown-sessions/service"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("ok   unknown-sessions/constrained"),
        "{out}"
    );
    assert_eq!(lines[2], "2 passed, 0 failed");

    let (ok, out) = cli(&["--list", "--filter", "peer-restart"]);
    assert!(ok);
    assert!(out.contains("peer-restart/service") && out.contains("no nonce reuse"));

    let (ok, out) = cli(&["--filter", "no such scenario"]);
    assert!(!ok);
    assert_eq!(out.lines().last(), Some("0 passed, 0 failed"));
}
