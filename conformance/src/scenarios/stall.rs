//! Flow-control stalls: the receiving application stops reading. The
//! sender must be refused with `WouldBlock` once the credit is used, never
//! have more outstanding than the credit allows, keep memory bounded, and
//! resume, delivering everything exactly once, when reading resumes.

use super::{Params, Scenario, Verdict, close_cleanly, ensure, ms, presets, secs, transfer};
use crate::scenario::{Flow, World, memory_bound};
use crate::sim::Link;
use tern::channel::SendBlocked;
use tern::config::Config;
use tern::storage::ByteStore;

pub(super) fn register(v: &mut Vec<Scenario>) {
    presets!(
        v,
        "flow-control-stall",
        "the server stops reading while the client sends on every channel (2% loss); after a stall 10 s longer than the delivery timeout it reads again",
        &[
            "the sender meets WouldBlock with a reason naming a limit, and keeps meeting it while the stall lasts",
            "the bytes accepted never exceed the peer's credit plus the sender's own buffers, and the whole credit is used",
            "neither side ends (no DeliveryTimeout: what was sent is acknowledged) nor closes for flow control; a stalled session sends only keepalives and a few control packets",
            "when reading resumes the sender gets Writable and every message arrives exactly once",
        ],
        stall
    );
}

fn stall<B: ByteStore, const CH: usize, const SENT: usize>(config: Config, p: &Params) -> Verdict {
    let (channels, size, messages) = if config.channel_window <= 4096 {
        (2, 1024, 150)
    } else {
        // Six channels of 256 KiB against a 1 MiB connection window: the
        // connection credit binds.
        (6, 16384, 400)
    };
    let link = Link {
        loss: 0.02,
        jitter: ms(2),
        ..Link::default()
    };
    let mut w = World::<B, CH, SENT>::new(config.clone(), link, p.seed);
    let k = w.add_client();
    let mut f = Flow::new(p.seed, channels, messages, size);
    f.to_send = [messages, 0];
    f.reading[1] = false;
    w.set_flow(k, f);
    ensure!(w.run_until(secs(30), |w| w.connected(k)), "no handshake");
    // Until the sender makes no progress for five seconds.
    let mut stalled = false;
    for _ in 0..100 {
        let sent = w.flow(k).sent[0];
        w.run_for(secs(5));
        if w.flow(k).sent[0] == sent {
            stalled = true;
            break;
        }
    }
    let f = w.flow(k).clone();
    ensure!(
        stalled && f.sent[0] < messages,
        "never stalled: sent {} of {messages}",
        f.sent[0]
    );
    ensure!(f.blocked[0] > 0, "no WouldBlock: {f:?}");
    ensure!(f.received[1] == 0, "the server read while not reading");
    let credit = config
        .connection_window
        .min(u64::from(channels) * u64::from(config.channel_window));
    let own = u64::from(channels) * u64::from(config.channel_window);
    ensure!(
        f.accepted_bytes[0] + size as u64 >= credit,
        "stalled at {} bytes, before the credit of {credit} was used",
        f.accepted_bytes[0]
    );
    ensure!(
        f.accepted_bytes[0] <= credit + own,
        "{} bytes accepted, more than the credit {credit} plus the sender's buffers {own}",
        f.accepted_bytes[0]
    );
    // The stall lasts longer than the delivery timeout: still refused,
    // quiet, bounded, and nobody ends (what was sent is acknowledged; the
    // rest is held back by the receiver's credit).
    let (refusals, packets) = (w.flow(k).blocked[0], w.net.stats.sent);
    let hold = config.delivery_timeout.unwrap_or(config.idle_timeout) + secs(10);
    w.run_for(hold);
    let during = w.net.stats.sent - packets;
    ensure!(
        w.flow(k).blocked[0] > refusals,
        "the application was not refused again"
    );
    // Keepalives and their acknowledgements, a few BLOCKED frames.
    let keepalive = config.keepalive.unwrap_or(hold);
    let allowed = 4 * (hold.as_secs() / keepalive.as_secs().max(1)) + 10;
    ensure!(
        during <= allowed,
        "{during} datagrams during a {} stall (at most {allowed})",
        super::fmt_secs(hold)
    );
    for why in &w.flow(k).block_reasons[0] {
        ensure!(
            matches!(
                why,
                SendBlocked::Buffer
                    | SendBlocked::ChannelCredit
                    | SendBlocked::ConnectionCredit
                    | SendBlocked::Queue
            ),
            "refused for {why:?}"
        );
    }
    for (who, e) in [
        ("client", w.client_events(k)),
        ("server", w.server_events(k)),
    ] {
        let ending = World::<B, CH, SENT>::ending(&e);
        ensure!(ending.is_none(), "{who} ended during the stall: {ending:?}");
    }
    let bound = memory_bound::<B>(&config, channels);
    for (who, bytes) in [
        ("client", w.client_conn(k).map(|c| c.buffer_bytes())),
        ("server", w.server_conn(k).map(|c| c.buffer_bytes())),
    ] {
        let bytes = bytes.ok_or(format!("{who} connection gone during the stall"))?;
        ensure!(
            bytes <= bound,
            "{who} holds {bytes} buffer bytes, bound {bound}"
        );
    }
    // Reading resumes.
    let writable = w.flow(k).writable[0];
    w.flow_mut(k).reading[1] = true;
    transfer(&mut w, k, secs(600))?;
    let f = w.flow(k).clone();
    ensure!(f.writable[0] > writable, "no Writable after the stall");
    close_cleanly(&mut w, k, true)?;
    Ok(format!(
        "stalled at {} of {} bytes of credit after {} refusals ({:?}); {during} datagrams in {} of stall; then {messages} delivered",
        f.accepted_bytes[0].min(credit),
        credit,
        refusals,
        f.block_reasons[0],
        super::fmt_secs(hold)
    ))
}
