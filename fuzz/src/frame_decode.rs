//! The `frame_decode` target: arbitrary bytes as a packet's plaintext.
//!
//! Input: the plaintext, as is. Invariants:
//!
//! - `FrameDecoder` never panics, yields frames until the end or the first
//!   error, then only `None`; after an error `position()` is where the
//!   failing frame starts;
//! - every decoded frame spans exactly `encoded_len()` bytes and
//!   `Frame::encode` gives those bytes back (frames have one encoding: the
//!   shortest form); one byte less of output is `BufferTooSmall` with the
//!   exact length; the re-encoding decodes to the same frame;
//! - an ACK's ranges are descending, disjoint, not touching, within
//!   `MAX_ACK_RANGES`, and `encode_ack` of them rebuilds the same bytes;
//! - `decode_all` agrees with the iterator: the same first error, or the
//!   same frames, count and ack-eliciting flag.

use crate::Output;
use tern::frame::{
    AckFrame, CloseFrame, Frame, FrameDecoder, FrameError, MAX_ACK_RANGES, MAX_CLOSE_REASON_LEN,
    MessageFrame, decode_all, encode_ack,
};

/// The fuzz target body.
pub fn run(data: &[u8]) {
    let mut dec = FrameDecoder::new(data);
    let mut frames = Vec::new();
    let mut first_error = None;
    let mut start = 0;
    loop {
        assert_eq!(dec.position(), start);
        match dec.next() {
            None => {
                assert_eq!(start, data.len(), "decoder stopped early");
                break;
            }
            Some(Ok(frame)) => {
                let end = dec.position();
                assert!(end > start && end <= data.len());
                check_frame(&frame, &data[start..end]);
                frames.push(frame);
                start = end;
            }
            Some(Err(e)) => {
                assert!(
                    matches!(
                        e,
                        FrameError::Truncated
                            | FrameError::Malformed
                            | FrameError::UnknownFrame(_)
                            | FrameError::TooManyAckRanges
                    ),
                    "decoding gave an encoding error: {e:?}"
                );
                assert_eq!(dec.position(), start, "error moved the position");
                assert!(dec.next().is_none(), "decoder went on after {e:?}");
                first_error = Some(e);
                break;
            }
        }
    }
    assert!(dec.next().is_none());

    match (decode_all(data), first_error) {
        (Err(e), Some(first)) => assert_eq!(e, first),
        (Ok(all), None) => {
            assert_eq!(all.len(), frames.len());
            assert_eq!(
                all.is_ack_eliciting(),
                frames.iter().any(Frame::is_ack_eliciting)
            );
            let again: Vec<Frame<'_>> = all.collect();
            assert_eq!(again, frames);
        }
        (all, first) => panic!(
            "decode_all {:?} disagrees with the iterator's {first:?}",
            all.map(|f| f.len())
        ),
    }
}

/// One decoded frame against the bytes it came from.
fn check_frame(frame: &Frame<'_>, bytes: &[u8]) {
    assert_eq!(frame.encoded_len(), bytes.len(), "encoded_len of {frame:?}");
    let mut out = vec![0u8; bytes.len() + 1];
    assert_eq!(frame.encode(&mut out), Ok(bytes.len()), "{frame:?}");
    assert_eq!(
        &out[..bytes.len()],
        bytes,
        "{frame:?} re-encodes differently"
    );
    assert_eq!(out[bytes.len()], 0, "encode wrote past its length");
    let mut short = vec![0xeeu8; bytes.len() - 1];
    assert_eq!(
        frame.encode(&mut short),
        Err(FrameError::BufferTooSmall {
            needed: bytes.len()
        })
    );
    assert!(short.iter().all(|&b| b == 0xee), "a failed encode wrote");
    let mut re = FrameDecoder::new(&out[..bytes.len()]);
    assert_eq!(re.next(), Some(Ok(*frame)));
    assert!(re.next().is_none());

    match frame {
        Frame::Ack(ack) => check_ack(ack, bytes),
        Frame::Message(MessageFrame { offset, data, .. }) => {
            assert!(offset.checked_add(data.len() as u64).is_some());
        }
        Frame::Close(CloseFrame { reason, .. }) => assert!(reason.len() <= MAX_CLOSE_REASON_LEN),
        _ => {}
    }
}

fn check_ack(ack: &AckFrame<'_>, bytes: &[u8]) {
    let ranges: Vec<(u64, u64)> = ack.ranges().collect();
    assert_eq!(ranges.len(), ack.range_count());
    assert_eq!(ack.ranges().len(), ranges.len());
    assert!((1..=MAX_ACK_RANGES).contains(&ranges.len()));
    assert_eq!(ranges[0].1, ack.largest());
    for r in &ranges {
        assert!(r.0 <= r.1, "inverted range {r:?}");
    }
    for w in ranges.windows(2) {
        assert!(w[1].1 + 1 < w[0].0, "ranges touch or overlap: {w:?}");
    }
    let mut out = vec![0u8; bytes.len()];
    let n = encode_ack(
        ack.delay_us,
        ranges.iter().copied(),
        MAX_ACK_RANGES,
        &mut out,
    )
    .unwrap_or_else(|e| panic!("encode_ack of decoded ranges {ranges:?}: {e:?}"));
    assert_eq!(&out[..n], bytes, "encode_ack rebuilds differently");
}

/// Encodes frames end to end.
pub fn encode_frames(frames: &[Frame<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        let mut buf = vec![0u8; f.encoded_len()];
        let n = f.encode(&mut buf).expect("seed frame encodes");
        out.extend_from_slice(&buf[..n]);
    }
    out
}

/// An encoded ACK frame for `ranges`.
pub fn ack_bytes(delay: u64, ranges: &[(u64, u64)]) -> Vec<u8> {
    let mut buf = [0u8; 1024];
    let n = encode_ack(delay, ranges.iter().copied(), MAX_ACK_RANGES, &mut buf).expect("ack");
    buf[..n].to_vec()
}

/// Seed inputs: every frame type, alone and in packets like the ones a
/// connection sends, plus a few refusals.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let msg = |channel, offset, fin, data| {
        Frame::Message(MessageFrame {
            channel,
            offset,
            fin,
            data,
        })
    };
    let singles: Vec<(&str, Vec<u8>)> = vec![
        ("padding", encode_frames(&[Frame::Padding])),
        ("ping", encode_frames(&[Frame::Ping])),
        ("ack-one", ack_bytes(0, &[(0, 0)])),
        (
            "ack-three",
            ack_bytes(25, &[(990, 1000), (950, 980), (5, 7)]),
        ),
        (
            "ack-many",
            ack_bytes(
                70_000,
                &(0..30u64)
                    .rev()
                    .map(|i| (i * 3, i * 3 + 1))
                    .collect::<Vec<_>>(),
            ),
        ),
        ("message", encode_frames(&[msg(0, 0, true, b"hello")])),
        (
            "message-long",
            encode_frames(&[msg(1, 70_000, false, &[0x61; 300])]),
        ),
        ("datagram", encode_frames(&[Frame::Datagram(&[1, 2, 3])])),
        (
            "close",
            encode_frames(&[Frame::Close(CloseFrame {
                code: 2,
                reason: "malformed frame",
            })]),
        ),
        ("max-data", encode_frames(&[Frame::MaxData(1 << 20)])),
        (
            "max-channel-data",
            encode_frames(&[Frame::MaxChannelData {
                channel: 1,
                max: 2048,
            }]),
        ),
        ("data-blocked", encode_frames(&[Frame::DataBlocked(24)])),
        (
            "channel-blocked",
            encode_frames(&[Frame::ChannelBlocked {
                channel: 23,
                limit: u64::MAX,
            }]),
        ),
    ];
    let mut seeds: Vec<(String, Vec<u8>)> = singles
        .into_iter()
        .map(|(n, b)| (format!("seed-{n}"), b))
        .collect();

    // A packet as a connection builds it: ACK, control, data, padding.
    let mut packet = ack_bytes(1200, &[(4, 9), (0, 2)]);
    packet.extend(encode_frames(&[
        Frame::MaxData(4096),
        Frame::MaxChannelData {
            channel: 0,
            max: 2048,
        },
        Frame::Datagram(b"dgram"),
        msg(0, 512, false, &[0x42; 40]),
        msg(1, 0, true, b"end"),
        Frame::Ping,
        Frame::Padding,
        Frame::Padding,
    ]));
    seeds.push(("seed-packet".into(), packet.clone()));

    // Refusals: a valid frame, then a bad one.
    for (name, bad) in [
        ("non-shortest", &[0x82, 0x06, 0x18, 0x05][..]),
        ("reserved-type", &[0x81, 0x0a]),
        ("truncated", &[0x85, 0x03, 0x01, 0x00, 0xf5, 0x45, 0x68]),
        ("indefinite", &[0x9f, 0x01, 0xff]),
        ("bad-utf8", &[0x83, 0x05, 0x00, 0x62, 0xc3, 0x28]),
        (
            "ack-below-zero",
            &[0x86, 0x02, 0x00, 0x03, 0x01, 0x01, 0x00],
        ),
    ] {
        let mut o = Output::default();
        o.bytes(&encode_frames(&[Frame::Ping])).bytes(bad);
        seeds.push((format!("seed-bad-{name}"), o.0));
    }
    seeds
}
