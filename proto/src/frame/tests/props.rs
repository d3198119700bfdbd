//! Property tests: round trips, ACK range fitting, and arbitrary input.

use std::string::String;
use std::vec::Vec;

use proptest::prelude::*;

use super::*;

/// An owned frame (other than ACK) that a [`Frame`] can borrow from.
#[derive(Debug, Clone)]
enum Owned {
    Padding,
    Ping,
    Message(u32, u64, bool, Vec<u8>),
    Datagram(Vec<u8>),
    Close(u32, String),
    MaxData(u64),
    MaxChannelData(u32, u64),
    DataBlocked(u64),
    ChannelBlocked(u32, u64),
}

impl Owned {
    fn frame(&self) -> Frame<'_> {
        match self {
            Owned::Padding => Frame::Padding,
            Owned::Ping => Frame::Ping,
            Owned::Message(channel, offset, fin, data) => Frame::Message(MessageFrame {
                channel: *channel,
                offset: *offset,
                fin: *fin,
                data,
            }),
            Owned::Datagram(data) => Frame::Datagram(data),
            Owned::Close(code, reason) => Frame::Close(CloseFrame {
                code: *code,
                reason,
            }),
            Owned::MaxData(max) => Frame::MaxData(*max),
            Owned::MaxChannelData(channel, max) => Frame::MaxChannelData {
                channel: *channel,
                max: *max,
            },
            Owned::DataBlocked(limit) => Frame::DataBlocked(*limit),
            Owned::ChannelBlocked(channel, limit) => Frame::ChannelBlocked {
                channel: *channel,
                limit: *limit,
            },
        }
    }
}

/// Integers spread over every CBOR argument width.
fn any_width() -> impl Strategy<Value = u64> {
    prop_oneof![
        0..24u64,
        24..256u64,
        256..65536u64,
        65536..=u64::from(u32::MAX),
        any::<u64>(),
    ]
}

fn any_u32() -> impl Strategy<Value = u32> {
    any_width().prop_map(|v| u32::try_from(v).unwrap_or(u32::MAX))
}

fn any_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..40),
        proptest::collection::vec(any::<u8>(), 200..300),
    ]
}

fn any_owned() -> impl Strategy<Value = Owned> {
    prop_oneof![
        Just(Owned::Padding),
        Just(Owned::Ping),
        (any_u32(), any_width(), any::<bool>(), any_bytes()).prop_map(|(c, o, f, d)| {
            // Keep the end offset within u64.
            let o = o.min(u64::MAX - d.len() as u64);
            Owned::Message(c, o, f, d)
        }),
        any_bytes().prop_map(Owned::Datagram),
        // Up to 64 characters of up to 4 bytes: at most 256 bytes.
        (any_u32(), ".{0,64}").prop_map(|(c, r)| Owned::Close(c, r)),
        any_width().prop_map(Owned::MaxData),
        (any_u32(), any_width()).prop_map(|(c, m)| Owned::MaxChannelData(c, m)),
        any_width().prop_map(Owned::DataBlocked),
        (any_u32(), any_width()).prop_map(|(c, l)| Owned::ChannelBlocked(c, l)),
    ]
}

/// Descending, non-adjacent ranges from a largest packet number, a first
/// range length and `(gap, range_len)` pairs, cut where they would go below 0.
fn build_ranges(largest: u64, first: u64, pairs: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let first = first.min(largest);
    let mut smallest = largest - first;
    let mut ranges = std::vec![(smallest, largest)];
    for &(gap, len) in pairs {
        let Some(next_largest) = smallest.checked_sub(gap).and_then(|v| v.checked_sub(2)) else {
            break;
        };
        let len = len.min(next_largest);
        smallest = next_largest - len;
        ranges.push((smallest, next_largest));
    }
    ranges
}

fn any_ranges() -> impl Strategy<Value = Vec<(u64, u64)>> {
    let small = prop_oneof![4 => 0..30u64, 1 => any_width()];
    (
        prop_oneof![0..100u64, any_width()],
        prop_oneof![0..10u64, any_width()],
        proptest::collection::vec((small.clone(), small), 0..90),
    )
        .prop_map(|(largest, first, pairs)| build_ranges(largest, first, &pairs))
}

/// Checks every frame `FrameDecoder` accepts from `bytes` re-encodes to the
/// exact bytes it came from, and that `decode_all` agrees.
fn check_decoding(bytes: &[u8]) -> Result<(), TestCaseError> {
    let mut frames = FrameDecoder::new(bytes);
    let mut start = frames.position();
    let mut failed = None;
    let mut count = 0;
    while let Some(result) = frames.next() {
        match result {
            Ok(frame) => {
                let end = frames.position();
                prop_assert!(end > start);
                prop_assert_eq!(frame.encoded_len(), end - start);
                prop_assert_eq!(&encode_to_vec(&frame)[..], &bytes[start..end]);
                start = end;
                count += 1;
            }
            Err(e) => failed = Some(e),
        }
    }
    match decode_all(bytes) {
        Ok(all) => {
            prop_assert_eq!(failed, None);
            prop_assert_eq!(all.len(), count);
            prop_assert_eq!(all.count(), count);
        }
        Err(e) => prop_assert_eq!(Some(e), failed),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn frames_round_trip(owned in proptest::collection::vec(any_owned(), 1..8)) {
        // Encode a packet of frames, then decode it back.
        let mut packet = Vec::new();
        for o in &owned {
            packet.extend(encode_to_vec(&o.frame()));
        }
        let decoded: Vec<Frame<'_>> = decode_all(&packet).unwrap().collect();
        let expected: Vec<Frame<'_>> = owned.iter().map(Owned::frame).collect();
        prop_assert_eq!(decoded, expected);
    }

    #[test]
    fn short_buffers_get_the_exact_size(owned in any_owned(), cut in any::<prop::sample::Index>()) {
        let frame = owned.frame();
        let len = frame.encoded_len();
        let short = cut.index(len);
        let mut out = std::vec![0xaa; short];
        prop_assert_eq!(frame.encode(&mut out), Err(FrameError::BufferTooSmall { needed: len }));
        prop_assert!(out.iter().all(|&b| b == 0xaa));
        // A longer buffer is fine and only the first `len` bytes change.
        let mut out = std::vec![0xaa; len + 5];
        prop_assert_eq!(frame.encode(&mut out), Ok(len));
        prop_assert!(out[len..].iter().all(|&b| b == 0xaa));
    }

    #[test]
    fn ack_ranges_round_trip(
        delay in any_width(),
        ranges in any_ranges(),
        max_ranges in 0..80usize,
        size in 0..400usize,
    ) {
        let mut out = std::vec![0xaa; size];
        let result = encode_ack(delay, ranges.iter().copied(), max_ranges, &mut out);
        if max_ranges == 0 {
            prop_assert_eq!(result, Err(FrameError::InvalidAckRanges));
            return Ok(());
        }
        let minimal = ack_to_vec(delay, &ranges, 1).len();
        let n = match result {
            Err(FrameError::BufferTooSmall { needed }) => {
                prop_assert_eq!(needed, minimal);
                prop_assert!(needed > size);
                prop_assert!(out.iter().all(|&b| b == 0xaa));
                return Ok(());
            }
            other => other.unwrap(),
        };
        prop_assert!(n <= size);
        prop_assert!(size >= minimal);
        let Ok(Frame::Ack(ack)) = decode_one(&out[..n]) else {
            return Err(TestCaseError::fail("not an ACK"));
        };
        prop_assert_eq!(ack.delay_us, delay);
        prop_assert_eq!(ack.largest(), ranges[0].1);
        let k = ack.range_count();
        let got: Vec<(u64, u64)> = ack.ranges().collect();
        prop_assert_eq!(&got[..], &ranges[..k]);
        // As many as fit: either every allowed range is there, or one more
        // would not have fit in `size`.
        let allowed = ranges.len().min(max_ranges).min(MAX_ACK_RANGES);
        prop_assert!(k <= allowed);
        if k < allowed {
            let bigger = ack_to_vec(delay, &ranges, k + 1);
            prop_assert!(bigger.len() > size);
        }
        // Re-encoding the decoded frame gives the same bytes.
        prop_assert_eq!(&encode_to_vec(&Frame::Ack(ack))[..], &out[..n]);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        check_decoding(&bytes)?;
    }

    #[test]
    fn mutated_packets_never_panic(
        owned in proptest::collection::vec(any_owned(), 1..5),
        ranges in any_ranges(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
    ) {
        // A valid packet (an ACK and some frames), a few bytes changed, then
        // cut short anywhere.
        let mut packet = ack_to_vec(3, &ranges, MAX_ACK_RANGES);
        for o in &owned {
            packet.extend(encode_to_vec(&o.frame()));
        }
        for (at, value) in flips {
            let i = at.index(packet.len());
            packet[i] = value;
        }
        check_decoding(&packet)?;
        let len = cut.index(packet.len() + 1);
        check_decoding(&packet[..len])?;
    }

    #[test]
    fn max_message_data_is_exact(
        channel in any_u32(),
        offset in any_width(),
        space in prop_oneof![0..100usize, 0..70_000usize],
        fin in any::<bool>(),
    ) {
        let n = max_message_data(channel, offset, space, fin);
        if message_overhead(channel, offset, 0, fin) > space {
            prop_assert_eq!(n, 0);
        } else {
            prop_assert!(message_overhead(channel, offset, n, fin) + n <= space);
            prop_assert!(message_overhead(channel, offset, n + 1, fin) + n + 1 > space);
            // The frame really encodes into `space` bytes (when its end
            // offset is representable).
            if offset.checked_add(n as u64).is_some() {
                let data = std::vec![0u8; n];
                let frame = Frame::Message(MessageFrame { channel, offset, fin, data: &data });
                let mut out = std::vec![0u8; space];
                prop_assert_eq!(frame.encode(&mut out), Ok(message_overhead(channel, offset, n, fin) + n));
            }
        }
        let d = max_datagram_data(space);
        if datagram_overhead(0) > space {
            prop_assert_eq!(d, 0);
        } else {
            prop_assert!(datagram_overhead(d) + d <= space);
            prop_assert!(datagram_overhead(d + 1) + d + 1 > space);
        }
    }
}
