//! The `transport` target: arbitrary bytes into the transport read paths.
//!
//! Input layout: one byte whose low bit picks the cipher (ChaChaPoly or
//! AESGCM), then operations until the input ends, each an op byte (bit 7:
//! direction, responder reads if clear; op % 5 below) and its operands:
//!
//! ```text
//! 0  read_message             msg (u16 length, bytes), out length u16
//! 1  read_message_with_nonce  nonce u64, msg, out length u16
//! 2  read_message_in_place    msg
//! 3  set_receiving_nonce      nonce u64
//! 4  genuine message          payload (u8 length, bytes): the peer encrypts
//!                             it for the current receiving nonce, and
//!                             read_message must return it
//! ```
//!
//! Invariants: nothing panics; a failed read leaves the receiving nonce
//! unchanged and the state still decrypts a genuine message; a successful
//! `read_message` advances the nonce by exactly one and
//! `read_message_with_nonce` not at all.
//!
//! The transport states are built once per cipher (a fixed handshake) and
//! reused; each run starts by resetting their receiving nonces, and nothing
//! else about them changes, so every run is reproducible.

use crate::{Input, Output, build_pair};
use std::cell::RefCell;
use tern::crypto::RustCrypto;
use tern::noise::{NoiseError, NoiseParams, TransportState};

type Pair = (TransportState<RustCrypto>, TransportState<RustCrypto>);

const PROTOCOLS: [&str; 2] = [
    "Noise_NN_25519_ChaChaPoly_SHA256",
    "Noise_NN_25519_AESGCM_SHA256",
];

/// A finished NN handshake for protocol `c`: (initiator, responder).
pub fn pair(c: usize) -> Pair {
    let params: NoiseParams = PROTOCOLS[c].parse().expect("protocol");
    let (mut i, mut r) = build_pair(params);
    let mut m = [0u8; 128];
    let mut p = [0u8; 128];
    let n = i.write_message(b"", &mut m).expect("msg 0");
    r.read_message(&m[..n], &mut p).expect("msg 0");
    let n = r.write_message(b"", &mut m).expect("msg 1");
    i.read_message(&m[..n], &mut p).expect("msg 1");
    (
        i.into_transport().expect("split"),
        r.into_transport().expect("split"),
    )
}

thread_local! {
    static PAIRS: RefCell<Vec<Pair>> = RefCell::new(vec![pair(0), pair(1)]);
}

fn read_msg<'a>(inp: &mut Input<'a>) -> &'a [u8] {
    let n = usize::from(inp.u16());
    inp.bytes(n)
}

/// The fuzz target body.
pub fn run(data: &[u8]) {
    let mut inp = Input::new(data);
    let c = usize::from(inp.u8() & 1);
    PAIRS.with(|pairs| {
        let mut pairs = pairs.borrow_mut();
        let (i, r) = &mut pairs[c];
        i.set_receiving_nonce(0);
        r.set_receiving_nonce(0);
        while !inp.is_empty() {
            let op = inp.u8();
            let (rx, tx) = if op & 0x80 == 0 {
                (&mut *r, &mut *i)
            } else {
                (&mut *i, &mut *r)
            };
            step(op & 0x7f, &mut inp, rx, tx);
        }
    });
}

fn step(
    op: u8,
    inp: &mut Input,
    rx: &mut TransportState<RustCrypto>,
    tx: &mut TransportState<RustCrypto>,
) {
    let nonce = rx.receiving_nonce();
    let sending = (rx.sending_nonce(), tx.sending_nonce());
    let failed = match op % 5 {
        0 => {
            let msg = read_msg(inp);
            let mut out = vec![0u8; usize::from(inp.u16())];
            match rx.read_message(msg, &mut out) {
                Ok(k) => {
                    assert_eq!(k + 16, msg.len());
                    assert_eq!(rx.receiving_nonce(), nonce + 1);
                    None
                }
                Err(e) => Some(no_leak(e, &out)),
            }
        }
        1 => {
            let n = inp.u64();
            let msg = read_msg(inp);
            let mut out = vec![0u8; usize::from(inp.u16())];
            match rx.read_message_with_nonce(n, msg, &mut out) {
                Ok(k) => {
                    assert_eq!(k + 16, msg.len());
                    assert_eq!(rx.receiving_nonce(), nonce);
                    None
                }
                Err(e) => Some(no_leak(e, &out)),
            }
        }
        2 => {
            let mut buf = read_msg(inp).to_vec();
            let len = buf.len();
            match rx.read_message_in_place(&mut buf) {
                Ok(k) => {
                    assert_eq!(k + 16, len);
                    assert_eq!(rx.receiving_nonce(), nonce + 1);
                    None
                }
                Err(e) => Some(no_leak(e, &buf)),
            }
        }
        3 => {
            let n = inp.u64();
            rx.set_receiving_nonce(n);
            assert_eq!(rx.receiving_nonce(), n);
            None
        }
        _ => {
            let n = usize::from(inp.u8());
            let payload = inp.bytes(n);
            let mut wire = vec![0u8; payload.len() + 16];
            let mut out = vec![0u8; payload.len()];
            match tx.write_message_with_nonce(nonce, payload, &mut wire) {
                Ok(len) => {
                    let k = rx
                        .read_message(&wire[..len], &mut out)
                        .unwrap_or_else(|e| panic!("genuine message at {nonce} refused: {e:?}"));
                    assert_eq!(&out[..k], payload);
                    assert_eq!(rx.receiving_nonce(), nonce + 1);
                }
                Err(e) => {
                    assert_eq!(nonce, u64::MAX, "write at {nonce}: {e:?}");
                    assert_eq!(e, NoiseError::NonceExhausted);
                }
            }
            None
        }
    };
    assert_eq!((rx.sending_nonce(), tx.sending_nonce()), sending);
    if let Some(e) = failed {
        assert_eq!(rx.receiving_nonce(), nonce, "{e:?} moved the nonce");
        probe(rx, tx, nonce);
    }
}

/// A message that failed authentication leaves nothing of itself, not even
/// ciphertext, in the output buffer (which starts zeroed).
fn no_leak(e: NoiseError, out: &[u8]) -> NoiseError {
    if e == NoiseError::Decrypt {
        assert!(
            out.iter().all(|&b| b == 0),
            "Decrypt left bytes in the buffer"
        );
    }
    e
}

/// After a failure: a genuine message for the current nonce still decrypts
/// (through the explicit-nonce path, which leaves the state alone).
fn probe(rx: &mut TransportState<RustCrypto>, tx: &mut TransportState<RustCrypto>, n: u64) {
    let mut wire = [0u8; 32];
    let mut out = [0u8; 32];
    match tx.write_message_with_nonce(n, b"probe", &mut wire) {
        Ok(len) => {
            let k = rx
                .read_message_with_nonce(n, &wire[..len], &mut out)
                .unwrap_or_else(|e| panic!("probe at {n} refused after a failure: {e:?}"));
            assert_eq!(&out[..k], b"probe");
        }
        Err(e) => assert_eq!((n, e), (u64::MAX, NoiseError::NonceExhausted)),
    }
    assert_eq!(rx.receiving_nonce(), n);
}

/// Seed inputs: genuine messages through each read path, in both
/// directions, for both ciphers, with a corrupted one between them.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    for (c, cipher) in ["ChaChaPoly", "AESGCM"].into_iter().enumerate() {
        let (mut i, mut r) = pair(c);
        let mut o = Output::default();
        o.u8(c as u8);
        let mut wire = [0u8; 64];
        // 0: read_message of a genuine message at nonce 0.
        let n = i
            .write_message_with_nonce(0, b"seed zero", &mut wire)
            .unwrap();
        o.u8(0).u16(n as u16).bytes(&wire[..n]).u16(64);
        // 1: out-of-order datagram at nonce 5.
        let n = i
            .write_message_with_nonce(5, b"seed five", &mut wire)
            .unwrap();
        o.u8(1).u64(5).u16(n as u16).bytes(&wire[..n]).u16(64);
        // 2: in place at nonce 1, with a flipped tag bit (refused), then
        // intact.
        let n = i
            .write_message_with_nonce(1, b"seed one", &mut wire)
            .unwrap();
        wire[n - 1] ^= 1;
        o.u8(2).u16(n as u16).bytes(&wire[..n]);
        wire[n - 1] ^= 1;
        o.u8(2).u16(n as u16).bytes(&wire[..n]);
        // Other direction: 3 sets the nonce, 4 sends a genuine message.
        o.u8(0x83).u64(9).u8(0x84).u8(5).bytes(b"hello");
        let n = r.write_message_with_nonce(10, b"ten", &mut wire).unwrap();
        o.u8(0x80).u16(n as u16).bytes(&wire[..n]).u16(3);
        seeds.push((format!("seed-{cipher}-paths"), o.0));
    }
    seeds
}
