//! Frame codec tests: hand-written wire vectors, refusals, size arithmetic
//! and property tests.

use std::vec::Vec;

use super::*;

mod malformed;
mod props;
mod sizes;
mod vectors;

/// Bytes from hex with optional spaces ("85 03 01").
fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd hex: {s}");
    digits
        .chunks(2)
        .map(|pair| {
            let text = core::str::from_utf8(pair).unwrap();
            u8::from_str_radix(text, 16).unwrap()
        })
        .collect()
}

/// Decodes `bytes` as exactly one frame.
fn decode_one(bytes: &[u8]) -> Result<Frame<'_>, FrameError> {
    let mut frames = FrameDecoder::new(bytes);
    let frame = frames.next().expect("input is not empty")?;
    assert_eq!(frames.position(), bytes.len(), "one frame spans the input");
    assert!(frames.next().is_none());
    Ok(frame)
}

/// Encodes `frame` into a fresh buffer of exactly its length.
fn encode_to_vec(frame: &Frame<'_>) -> Vec<u8> {
    let mut out = std::vec![0u8; frame.encoded_len()];
    let n = frame.encode(&mut out).expect("frame encodes");
    assert_eq!(n, out.len());
    out
}

/// Encodes an ACK with up to `max_ranges` of `ranges` into a large buffer.
fn ack_to_vec(delay_us: u64, ranges: &[(u64, u64)], max_ranges: usize) -> Vec<u8> {
    let mut out = std::vec![0u8; 2048];
    let n = encode_ack(delay_us, ranges.iter().copied(), max_ranges, &mut out).unwrap();
    out.truncate(n);
    out
}
