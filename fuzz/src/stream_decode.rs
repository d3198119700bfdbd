//! The `stream_decode` target: arbitrary bytes, in arbitrary chunks, into
//! the TCP framing decoder (`tern::stream`).
//!
//! Input: 2 bytes (little-endian) picking the maximum packet size
//! (1 to 4096), 1 byte picking the chunk pattern (bit 0: `feed` or
//! `read_buf`/`commit`; the rest seeds the chunk sizes), then the stream.
//! Invariants:
//!
//! - the decoder never panics;
//! - every packet it yields is 1 to `max` bytes long, is preceded in the
//!   stream by its length, and equals the stream's bytes at that position;
//!   packets come in stream order with nothing skipped;
//! - it reports `ZeroLength` / `TooLong { len, max }` exactly when the next
//!   prefix is 0 / above `max`, yields nothing after it, and the error is
//!   final;
//! - at the end, `finish` says `Ok` exactly when the stream ended on a frame
//!   boundary, else `Truncated` with the bytes of the cut frame;
//! - `read_buf` is never empty once every complete packet is taken.

use crate::{Input, Output};
use tern::stream::{PREFIX_LEN, StreamDecoder, StreamError, encode_frame};

/// Largest `max` the harness picks; the decoder holds one such packet.
const MAX: usize = 4096;

/// The fuzz target body.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let max = 1 + usize::from(input.u16()) % MAX;
    let mode = input.u8();
    let stream = input.bytes(data.len());
    let mut dec =
        StreamDecoder::<{ MAX + PREFIX_LEN }>::with_max_packet_size(max as u16).expect("fits");
    assert_eq!(dec.max_packet_size(), max);

    // Chunk sizes from a small LCG: bursts of 1-byte reads and long ones.
    let mut state = u32::from(mode >> 1) | 1;
    let mut next_chunk = || {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let s = (state >> 16) as usize;
        if s.is_multiple_of(4) {
            1
        } else {
            1 + s % (2 * max + 8)
        }
    };

    // Where the next frame starts in the stream.
    let mut pos = 0usize;
    let mut fed = 0usize;
    let mut error = None;
    'outer: while fed < stream.len() {
        let want = next_chunk().min(stream.len() - fed);
        if mode & 1 == 0 {
            let mut chunk = &stream[fed..fed + want];
            while !chunk.is_empty() {
                let n = dec.feed(chunk);
                assert!(n <= chunk.len());
                chunk = &chunk[n..];
                fed += n;
                if let Err(e) = take(&mut dec, stream, fed, &mut pos, max) {
                    error = Some(e);
                    break 'outer;
                }
                if n == 0 {
                    panic!("feed took nothing with every packet taken");
                }
            }
        } else {
            let space = dec.read_buf();
            assert!(!space.is_empty(), "read_buf empty with every packet taken");
            let n = space.len().min(want);
            space[..n].copy_from_slice(&stream[fed..fed + n]);
            dec.commit(n);
            fed += n;
            if let Err(e) = take(&mut dec, stream, fed, &mut pos, max) {
                error = Some(e);
                break;
            }
        }
    }

    match error {
        Some(e) => {
            // Final, whatever comes next.
            assert_eq!(dec.error(), Some(e));
            assert_eq!(dec.next_packet(), Err(e));
            assert_eq!(dec.feed(&stream[fed..]), stream.len() - fed);
            assert_eq!(dec.next_packet(), Err(e));
            assert_eq!(dec.finish(), Err(e));
        }
        None => {
            assert_eq!(dec.error(), None);
            let rest = stream.len() - pos;
            assert_eq!(dec.buffered(), rest);
            if rest >= PREFIX_LEN {
                // A prefix that arrived was valid, so the frame was cut.
                let len = usize::from(u16::from_be_bytes([stream[pos], stream[pos + 1]]));
                assert!((1..=max).contains(&len));
                assert!(rest < PREFIX_LEN + len);
            }
            let want = if rest == 0 {
                Ok(())
            } else {
                Err(StreamError::Truncated { buffered: rest })
            };
            assert_eq!(dec.finish(), want);
        }
    }
}

/// Takes every complete packet, checking each against the stream at `pos`.
fn take<const N: usize>(
    dec: &mut StreamDecoder<N>,
    stream: &[u8],
    fed: usize,
    pos: &mut usize,
    max: usize,
) -> Result<(), StreamError> {
    loop {
        match dec.next_packet() {
            Ok(Some(p)) => {
                let len = p.len();
                assert!((1..=max).contains(&len), "packet of {len} bytes, max {max}");
                let prefix = &stream[*pos..*pos + PREFIX_LEN];
                assert_eq!(usize::from(u16::from_be_bytes([prefix[0], prefix[1]])), len);
                let at = *pos + PREFIX_LEN;
                assert_eq!(
                    &p[..],
                    &stream[at..at + len],
                    "packet differs from the stream"
                );
                // Mutable in place, as `handle` needs.
                p.fill(0xa5);
                *pos = at + len;
            }
            Ok(None) => {
                // Nothing complete is left of what was fed.
                assert_eq!(dec.buffered(), fed - *pos);
                if let [hi, lo, ..] = stream[*pos..fed] {
                    let len = usize::from(u16::from_be_bytes([hi, lo]));
                    assert!((1..=max).contains(&len), "prefix {len} not reported");
                    assert!(fed - *pos < PREFIX_LEN + len, "complete packet held back");
                }
                return Ok(());
            }
            Err(e) => {
                assert!(
                    fed - *pos >= PREFIX_LEN,
                    "error {e:?} before a whole prefix"
                );
                let prefix = &stream[*pos..*pos + PREFIX_LEN];
                let len = usize::from(u16::from_be_bytes([prefix[0], prefix[1]]));
                let want = if len == 0 {
                    StreamError::ZeroLength
                } else {
                    assert!(len > max, "error {e:?} on a valid prefix {len}");
                    StreamError::TooLong { len, max }
                };
                assert_eq!(e, want);
                return Err(e);
            }
        }
    }
}

/// Seeds: valid streams of a few packets in both modes, and invalid ones.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let frame = |p: &[u8]| {
        let mut out = vec![0u8; p.len() + PREFIX_LEN];
        let n = encode_frame(p, &mut out).expect("frame");
        out.truncate(n);
        out
    };
    let packets: Vec<Vec<u8>> = vec![vec![0x80; 140], vec![0x00; 24], vec![0x5a; 1], vec![7; 255]];
    let valid: Vec<u8> = packets.iter().flat_map(|p| frame(p)).collect();
    let seed = |max: u16, mode: u8, stream: &[u8]| {
        let mut o = Output::default();
        o.bytes(&(max - 1).to_le_bytes())
            .bytes(&[mode])
            .bytes(stream);
        o.0
    };
    let mut v = vec![
        ("seed-valid-feed".to_string(), seed(256, 0x10, &valid)),
        ("seed-valid-read".to_string(), seed(256, 0x11, &valid)),
        ("seed-valid-bytewise".to_string(), seed(1452, 0x00, &valid)),
        ("seed-exact-max".to_string(), seed(255, 0x31, &valid)),
        (
            "seed-zero-length".to_string(),
            seed(256, 0x20, &[&frame(&packets[0])[..], &[0, 0, 1]].concat()),
        ),
        ("seed-too-long".to_string(), seed(140, 0x21, &valid)),
        (
            "seed-max-prefix".to_string(),
            seed(4096, 0x40, &[0xff, 0xff, 1, 2]),
        ),
    ];
    let mut cut = valid.clone();
    cut.truncate(valid.len() - 3);
    v.push(("seed-truncated".to_string(), seed(512, 0x51, &cut)));
    v
}
