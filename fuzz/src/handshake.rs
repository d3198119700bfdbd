//! The `handshake` target.
//!
//! Input layout: one selector byte (pattern, cipher, hash: see
//! [`crate::protocol`]), then one record per handshake message:
//!
//! ```text
//! ctrl         u8
//! payload      u8 length, then that many bytes: the genuine payload
//! short_write  u8, if ctrl & SHORT_WRITE: the writer first tries an output
//!              buffer of (short_write % needed) bytes
//! injected     if ctrl & INJECT: u16 length, bytes (padded past 65535 if
//!              ctrl & HUGE), then a u16 payload buffer length: fed to the
//!              reader before the genuine message
//! short_read   u8, if ctrl & SHORT_READ: the reader first tries a payload
//!              buffer of this many bytes
//! ```
//!
//! Missing bytes read as zero, so every input runs the handshake to the end.
//!
//! Invariants checked: nothing panics; every `Err` leaves the observable
//! state unchanged; after every rejected message the genuine message from the
//! real peer is still accepted with its payload intact; at the end both sides
//! agree on the handshake hash and a transport message goes each way.

use crate::{Input, Output, build_pair, protocol};
use tern::noise::{HandshakeState, NoiseError};

/// Inject fuzzer bytes as the incoming message before the genuine one.
pub const INJECT: u8 = 1;
/// Try writing into a too-short buffer first.
pub const SHORT_WRITE: u8 = 2;
/// Try reading the genuine message into a short payload buffer first.
pub const SHORT_READ: u8 = 4;
/// Probe both sides with out-of-turn calls.
pub const WRONG_TURN: u8 = 8;
/// Pad the injected message beyond the 65535-byte Noise limit.
pub const HUGE: u8 = 16;

/// Everything a caller can observe of a handshake state.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    index: usize,
    my_turn: bool,
    finished: bool,
    hash: Vec<u8>,
    remote_static: Option<[u8; 32]>,
    local_ephemeral: Option<[u8; 32]>,
    next_len: Option<usize>,
}

fn snapshot(hs: &HandshakeState) -> Snapshot {
    Snapshot {
        index: hs.message_index(),
        my_turn: hs.is_my_turn(),
        finished: hs.is_finished(),
        hash: hs.handshake_hash().to_vec(),
        remote_static: hs.remote_static().copied(),
        local_ephemeral: hs.local_ephemeral().copied(),
        next_len: hs.next_message_len(7).ok(),
    }
}

/// One handshake message's worth of decoded input.
struct Step<'a> {
    ctrl: u8,
    payload: &'a [u8],
    short_write: u8,
    injected: Option<(Vec<u8>, usize)>,
    short_read: u8,
}

impl<'a> Step<'a> {
    fn read(inp: &mut Input<'a>) -> Step<'a> {
        let ctrl = inp.u8();
        let n = usize::from(inp.u8());
        let payload = inp.bytes(n);
        let short_write = if ctrl & SHORT_WRITE != 0 { inp.u8() } else { 0 };
        let injected = if ctrl & INJECT != 0 {
            let n = usize::from(inp.u16());
            let mut msg = inp.bytes(n).to_vec();
            if ctrl & HUGE != 0 {
                msg.resize(tern::noise::MAX_MESSAGE_LEN + 1 + msg.len(), 0);
            }
            let out_len = usize::from(inp.u16());
            Some((msg, out_len))
        } else {
            None
        };
        let short_read = if ctrl & SHORT_READ != 0 { inp.u8() } else { 0 };
        Step {
            ctrl,
            payload,
            short_write,
            injected,
            short_read,
        }
    }
}

/// The fuzz target body.
pub fn run(data: &[u8]) {
    let mut inp = Input::new(data);
    let params = protocol(inp.u8());
    let (mut initiator, mut responder) = build_pair(params);
    let name = params.name();

    while !initiator.is_finished() {
        assert!(!responder.is_finished(), "{name}: responder finished early");
        let (w, r) = if initiator.is_my_turn() {
            (&mut initiator, &mut responder)
        } else {
            (&mut responder, &mut initiator)
        };
        assert!(w.is_my_turn() && !r.is_my_turn(), "{name}: turns disagree");
        assert_eq!(w.message_index(), r.message_index(), "{name}");
        let step = Step::read(&mut inp);
        if !message(name, w, r, &step) {
            // The reader accepted forged bytes as a real message: a
            // legitimate fork (e.g. any 32 bytes are a valid NN message 0);
            // the real peer can no longer finish with it.
            return;
        }
    }
    assert!(responder.is_finished(), "{name}: responder not finished");
    assert_eq!(
        initiator.handshake_hash(),
        responder.handshake_hash(),
        "{name}: handshake hashes differ"
    );
    finish(name, initiator, responder);
}

/// Runs one handshake message from `w` to `r` with the step's detours.
/// Returns false if `r` accepted injected bytes that differ from the
/// genuine message.
fn message(name: &str, w: &mut HandshakeState, r: &mut HandshakeState, step: &Step) -> bool {
    let payload = step.payload;
    if step.ctrl & WRONG_TURN != 0 {
        let mut out = vec![0u8; 256];
        let before = snapshot(w);
        assert_eq!(
            w.read_message(&[0u8; 96], &mut out),
            Err(NoiseError::WrongTurn),
            "{name}"
        );
        assert_eq!(snapshot(w), before, "{name}: WrongTurn read changed state");
        let before = snapshot(r);
        assert_eq!(
            r.write_message(payload, &mut out),
            Err(NoiseError::WrongTurn),
            "{name}"
        );
        assert_eq!(r.next_message_len(0), Err(NoiseError::WrongTurn), "{name}");
        assert_eq!(snapshot(r), before, "{name}: WrongTurn write changed state");
    }

    let needed = w.next_message_len(payload.len()).expect("next_message_len");
    if step.ctrl & SHORT_WRITE != 0 && needed > 0 {
        let mut out = vec![0u8; usize::from(step.short_write) % needed];
        let before = snapshot(w);
        assert_eq!(
            w.write_message(payload, &mut out),
            Err(NoiseError::BufferTooSmall { needed }),
            "{name}"
        );
        assert_eq!(snapshot(w), before, "{name}: short write changed state");
    }
    let mut genuine = vec![0u8; needed];
    let n = w
        .write_message(payload, &mut genuine)
        .expect("genuine write");
    assert_eq!(n, needed, "{name}: next_message_len was wrong");

    if let Some((forged, out_len)) = &step.injected {
        let before = snapshot(r);
        let mut out = vec![0u8; *out_len];
        match r.read_message(forged, &mut out) {
            Ok(k) => {
                assert!(k <= *out_len, "{name}");
                assert_eq!(r.message_index(), before.index + 1, "{name}");
                if forged[..] != genuine[..] {
                    return false;
                }
                assert_eq!(&out[..k], payload, "{name}: payload corrupted");
                return true;
            }
            Err(e) => {
                assert_eq!(snapshot(r), before, "{name}: {e:?} changed state");
                assert!(
                    out.iter().all(|&b| b == 0),
                    "{name}: {e:?} left bytes in the payload buffer"
                );
                // The genuine message must still be what the reader expects.
                if forged[..] == genuine[..] {
                    assert!(
                        matches!(e, NoiseError::BufferTooSmall { .. }),
                        "{name}: genuine message refused: {e:?}"
                    );
                }
            }
        }
    }

    if step.ctrl & SHORT_READ != 0 && usize::from(step.short_read) < payload.len() {
        let mut out = vec![0u8; usize::from(step.short_read)];
        let before = snapshot(r);
        assert_eq!(
            r.read_message(&genuine, &mut out),
            Err(NoiseError::BufferTooSmall {
                needed: payload.len()
            }),
            "{name}"
        );
        assert_eq!(snapshot(r), before, "{name}: short read changed state");
    }
    let mut out = vec![0u8; payload.len()];
    let k = r
        .read_message(&genuine, &mut out)
        .unwrap_or_else(|e| panic!("{name}: genuine message refused: {e:?}"));
    assert_eq!(&out[..k], payload, "{name}: payload corrupted");
    true
}

/// Split both sides and check one transport message each way.
fn finish(name: &str, initiator: HandshakeState, responder: HandshakeState) {
    let one_way = initiator.params().pattern().is_one_way();
    let mut i = initiator.into_transport().expect("split");
    let mut r = responder.into_transport().expect("split");
    let mut wire = [0u8; 64];
    let mut out = [0u8; 64];
    let n = i.write_message(b"ping", &mut wire).expect("write");
    let k = r.read_message(&wire[..n], &mut out).expect("read");
    assert_eq!(&out[..k], b"ping", "{name}");
    if !one_way {
        let n = r.write_message(b"pong", &mut wire).expect("write");
        let k = i.read_message(&wire[..n], &mut out).expect("read");
        assert_eq!(&out[..k], b"pong", "{name}");
    }
}

/// Seed inputs: for each listed protocol, a run that injects the genuine
/// message at every step (so the accepting paths are in the corpus from the
/// start), one with short buffers and wrong-turn probes, and one that injects
/// a corrupted message at every step.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let protocols = [
        ("NN", "ChaChaPoly", "SHA256"),
        ("NK", "ChaChaPoly", "BLAKE2s"),
        ("XX", "AESGCM", "SHA256"),
        ("IK", "ChaChaPoly", "SHA256"),
        ("IK", "AESGCM", "SHA512"),
        ("IKpsk2", "ChaChaPoly", "BLAKE2s"),
        ("XXpsk3", "AESGCM", "BLAKE2b"),
        ("NNpsk0", "ChaChaPoly", "SHA512"),
        ("KK", "ChaChaPoly", "SHA256"),
        ("X", "ChaChaPoly", "SHA256"),
    ];
    let mut seeds = Vec::new();
    for (pattern, cipher, hash) in protocols {
        let sel = crate::selector(pattern, cipher, hash);
        for (kind, ctrl, corrupt) in [
            ("genuine", INJECT, false),
            ("detours", SHORT_WRITE | SHORT_READ | WRONG_TURN, false),
            ("corrupt", INJECT, true),
        ] {
            let name = format!("seed-{pattern}-{cipher}-{hash}-{kind}");
            seeds.push((name, encode(sel, ctrl, corrupt)));
        }
    }
    seeds
}

/// Encodes a full handshake for `sel`, every step with `ctrl`.
fn encode(sel: u8, ctrl: u8, corrupt: bool) -> Vec<u8> {
    let (mut initiator, mut responder) = build_pair(protocol(sel));
    let mut o = Output::default();
    o.u8(sel);
    let mut step = 0u8;
    while !initiator.is_finished() {
        let (w, r) = if initiator.is_my_turn() {
            (&mut initiator, &mut responder)
        } else {
            (&mut responder, &mut initiator)
        };
        let payload = format!("payload {step}").into_bytes();
        let mut msg = vec![0u8; w.next_message_len(payload.len()).unwrap()];
        w.write_message(&payload, &mut msg).unwrap();
        let mut out = vec![0u8; payload.len()];
        r.read_message(&msg, &mut out).unwrap();

        o.u8(ctrl).u8(payload.len() as u8).bytes(&payload);
        if ctrl & SHORT_WRITE != 0 {
            o.u8(7);
        }
        if ctrl & INJECT != 0 {
            if corrupt {
                let last = msg.len() - 1;
                msg[last] ^= 0x80;
            }
            o.u16(msg.len() as u16).bytes(&msg).u16(256);
        }
        if ctrl & SHORT_READ != 0 {
            o.u8(3);
        }
        step += 1;
    }
    o.0
}
