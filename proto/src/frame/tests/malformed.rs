//! Inputs the decoder must refuse, and inputs the encoder must refuse.

use std::vec::Vec;

use super::*;

#[track_caller]
fn refused(hex_bytes: &str, expected: FrameError) {
    let bytes = hex(hex_bytes);
    assert_eq!(decode_one_error(&bytes), expected, "decoding {hex_bytes}");
    assert_eq!(
        decode_all(&bytes).map(|f| f.len()).err(),
        Some(expected),
        "decode_all {hex_bytes}"
    );
}

/// The error the first frame of `bytes` fails with; the decoder then stops.
fn decode_one_error(bytes: &[u8]) -> FrameError {
    let mut frames = FrameDecoder::new(bytes);
    let err = frames
        .next()
        .expect("input is not empty")
        .expect_err("frame is refused");
    assert_eq!(frames.position(), 0, "position points at the failing frame");
    assert!(frames.next().is_none(), "nothing after an error");
    err
}

#[test]
fn not_a_frame_at_top_level() {
    // Unsigned integers other than 0, a non-shortest 0, negative integer,
    // byte string, text, map, tag, simple values, float, break.
    for input in [
        "01", "17", "18 00", "20", "40", "60", "a0", "c0 81 01", "f4", "f6", "f9 00 00", "ff",
    ] {
        refused(input, FrameError::Malformed);
    }
}

#[test]
fn wrong_array_lengths() {
    refused("80", FrameError::Malformed); // []
    refused("82 01 00", FrameError::Malformed); // PING with content
    refused("84 03 01 00 f5", FrameError::Malformed); // MESSAGE, 4 items
    refused("86 03 01 00 f5 40 00", FrameError::Malformed); // MESSAGE, 6 items
    refused("81 04", FrameError::Malformed); // DATAGRAM without data
    refused("83 04 40 40", FrameError::Malformed);
    refused("82 05 00", FrameError::Malformed); // CLOSE without reason
    refused("83 06 00 00", FrameError::Malformed); // MAX_DATA, 3 items
    refused("82 07 00", FrameError::Malformed); // MAX_CHANNEL_DATA, 2 items
    refused("81 08", FrameError::Malformed);
    refused("84 09 00 00 00", FrameError::Malformed);
    // ACK: 4 + 2k items only.
    refused("81 02", FrameError::Malformed);
    refused("83 02 00 00", FrameError::Malformed);
    refused("85 02 00 00 00 00", FrameError::Malformed);
    refused("87 02 00 0a 00 00 00 00", FrameError::Malformed);
}

#[test]
fn indefinite_lengths() {
    refused("9f 01 ff", FrameError::Malformed); // PING as [_ 1]
    refused("82 04 5f 41 00 ff", FrameError::Malformed); // (_ h'00')
    refused("83 05 00 7f 61 61 ff", FrameError::Malformed); // (_ "a")
    refused("9f 04 40 ff", FrameError::Malformed);
}

#[test]
fn tags_are_refused() {
    refused("82 06 c2 41 01", FrameError::Malformed); // bignum 1
    refused("82 06 c1 00", FrameError::Malformed); // epoch time 0
    refused("82 04 d8 18 40", FrameError::Malformed); // tag 24 on h''
    refused("c0 00", FrameError::Malformed); // tagged PADDING
}

#[test]
fn integers_must_be_shortest() {
    refused("82 06 18 05", FrameError::Malformed); // 5 in two bytes
    refused("82 06 19 00 ff", FrameError::Malformed);
    refused("82 06 1a 00 00 ff ff", FrameError::Malformed);
    refused("82 06 1b 00 00 00 00 ff ff ff ff", FrameError::Malformed);
    refused("98 01 01", FrameError::Malformed); // array head [1] in two bytes
    refused("82 18 01 00", FrameError::Malformed); // type 1... as 0x18 0x01
    refused("82 04 58 01 aa", FrameError::Malformed); // bstr length 1 in two bytes
    refused("83 05 00 78 01 61", FrameError::Malformed); // tstr length 1 in two bytes
}

#[test]
fn integers_must_fit_their_fields() {
    // channel 2^32 in MESSAGE, MAX_CHANNEL_DATA, CHANNEL_BLOCKED; code 2^32.
    refused(
        "85 03 1b 00 00 00 01 00 00 00 00 00 f5 40",
        FrameError::Malformed,
    );
    refused("83 07 1b 00 00 00 01 00 00 00 00 00", FrameError::Malformed);
    refused("83 09 1b 00 00 00 01 00 00 00 00 00", FrameError::Malformed);
    refused("83 05 1b 00 00 00 01 00 00 00 00 60", FrameError::Malformed);
    // Negative integers are not unsigned.
    refused("82 06 20", FrameError::Malformed);
    refused("85 03 20 00 f5 40", FrameError::Malformed);
}

#[test]
fn wrong_field_types() {
    refused("85 03 01 00 01 40", FrameError::Malformed); // fin as 1
    refused("85 03 01 00 f6 40", FrameError::Malformed); // fin as null
    refused("85 03 01 00 f5 60", FrameError::Malformed); // data as text
    refused("82 04 60", FrameError::Malformed); // datagram as text
    refused("83 05 00 40", FrameError::Malformed); // reason as bytes
    refused("83 05 00 62 c3 28", FrameError::Malformed); // invalid UTF-8
    refused("82 06 f9 3c 00", FrameError::Malformed); // float 1.0
}

#[test]
fn unknown_and_reserved_types() {
    for ty in 10..=23u8 {
        refused(
            &std::format!("81 {ty:02x}"),
            FrameError::UnknownFrame(ty.into()),
        );
    }
    refused("81 18 63", FrameError::UnknownFrame(99));
    // Unknown types are refused whatever their length or content.
    refused("83 0a 00 00", FrameError::UnknownFrame(10));
    refused(
        "81 1b ff ff ff ff ff ff ff ff",
        FrameError::UnknownFrame(u64::MAX),
    );
    // PADDING's number as an array is malformed, not unknown.
    refused("81 00", FrameError::Malformed);
    // A type that is not an unsigned integer.
    refused("81 20", FrameError::Malformed);
    refused("81 40", FrameError::Malformed);
}

#[test]
fn truncated() {
    for input in [
        "81",
        "85 03 01",
        "85 03 01 00 f5",
        "85 03 01 00 f5 42 68",
        "82 04 43 01 02",
        "83 05 00 63 62 79",
        "82 06 1a 00 10 00",
        "83 09 17 1b ff ff ff",
        "86 02 19 03 e8 18 64 02 03",
        "84 02 00 00",
        "98",
        "82 06 18",
    ] {
        refused(input, FrameError::Truncated);
    }
}

#[test]
fn lengths_past_the_input_are_truncated() {
    refused("82 04 5a ff ff ff ff 00", FrameError::Truncated);
    refused("82 04 5b ff ff ff ff ff ff ff ff", FrameError::Truncated);
    refused("83 05 00 79 01 00 61", FrameError::Truncated);
    // An array head claiming about 2^32 items is never trusted either.
    refused("9a ff ff ff fe 02 00 00 00", FrameError::TooManyAckRanges);
    refused("9a ff ff ff ff 02 00 00 00", FrameError::Malformed); // odd: not 4 + 2k
    refused("9a ff ff ff ff 01", FrameError::Malformed);
}

#[test]
fn ack_ranges_below_zero() {
    // first_range 2 > largest 1.
    refused("84 02 00 01 02", FrameError::Malformed);
    // largest 5, [5, 5]; gap 4: 5 - 4 - 2 < 0.
    refused("86 02 00 05 00 04 00", FrameError::Malformed);
    // largest 5, [5, 5]; gap 3: next largest 0, range_len 1 reaches -1.
    refused("86 02 00 05 00 03 01", FrameError::Malformed);
    // ... and range_len 0 is fine: [5, 5], [0, 0].
    let bytes = hex("86 02 00 05 00 03 00");
    let Ok(Frame::Ack(ack)) = decode_one(&bytes) else {
        panic!("not an ACK");
    };
    assert_eq!(ack.ranges().collect::<Vec<_>>(), [(5, 5), (0, 0)]);
}

#[test]
fn too_many_ack_ranges() {
    // 64 ranges decode; 65 do not.
    let ranges: Vec<(u64, u64)> = (0..65u64).rev().map(|i| (i * 2, i * 2)).collect();
    let at_limit = ack_to_vec(0, &ranges[1..], MAX_ACK_RANGES);
    let Ok(Frame::Ack(ack)) = decode_one(&at_limit) else {
        panic!("not an ACK");
    };
    assert_eq!(ack.range_count(), MAX_ACK_RANGES);
    // Build the 65-range frame by hand: head 0x98 0x84 = 132 items.
    let mut over = hex("98 84 02 00 18 80 00");
    over.extend(std::iter::repeat_n(0u8, 128));
    assert_eq!(decode_one_error(&over), FrameError::TooManyAckRanges);
    // The limit is checked before any range is read.
    assert_eq!(
        decode_one_error(&hex("98 84 02")),
        FrameError::TooManyAckRanges
    );
    assert_eq!(decode_one_error(&hex("98 85 02")), FrameError::Malformed);
}

#[test]
fn close_reason_limit() {
    let mut at_limit = hex("83 05 00 79 01 00");
    at_limit.extend(std::iter::repeat_n(b'x', 256));
    let Ok(Frame::Close(c)) = decode_one(&at_limit) else {
        panic!("not a CLOSE");
    };
    assert_eq!(c.reason.len(), MAX_CLOSE_REASON_LEN);
    assert_eq!(encode_to_vec(&Frame::Close(c)), at_limit);

    let mut over = hex("83 05 00 79 01 01");
    over.extend(std::iter::repeat_n(b'x', 257));
    assert_eq!(decode_one_error(&over), FrameError::Malformed);
    let reason = core::str::from_utf8(&over[6..]).unwrap();
    let frame = Frame::Close(CloseFrame { code: 0, reason });
    let mut out = [0xaa; 400];
    assert_eq!(frame.encode(&mut out), Err(FrameError::ReasonTooLong));
    assert!(out.iter().all(|&b| b == 0xaa));
}

#[test]
fn message_end_offset_must_fit_u64() {
    // offset 2^64 - 1 with one byte ends at 2^64: refused.
    refused(
        "85 03 00 1b ff ff ff ff ff ff ff ff f5 41 00",
        FrameError::Malformed,
    );
    // ... with no data it is fine.
    let bytes = hex("85 03 00 1b ff ff ff ff ff ff ff ff f5 40");
    assert!(decode_one(&bytes).is_ok());
    let frame = Frame::Message(MessageFrame {
        channel: 0,
        offset: u64::MAX,
        fin: true,
        data: b"x",
    });
    let mut out = [0xaa; 32];
    assert_eq!(frame.encode(&mut out), Err(FrameError::OffsetOverflow));
    assert!(out.iter().all(|&b| b == 0xaa));
}

#[test]
fn error_stops_the_decoder_and_discards_the_packet() {
    // PING, then a malformed frame, then a PING.
    let bytes = hex("81 01 82 06 18 05 81 01");
    let mut frames = FrameDecoder::new(&bytes);
    assert_eq!(frames.next(), Some(Ok(Frame::Ping)));
    assert_eq!(frames.next(), Some(Err(FrameError::Malformed)));
    assert_eq!(frames.position(), 2);
    assert_eq!(frames.next(), None);
    assert_eq!(frames.next(), None);
    assert_eq!(decode_all(&bytes).err(), Some(FrameError::Malformed));
}

#[test]
fn encoding_into_a_short_buffer_writes_nothing() {
    let frames = [
        Frame::Padding,
        Frame::Ping,
        Frame::Message(MessageFrame {
            channel: 300,
            offset: 70000,
            fin: true,
            data: &[7; 30],
        }),
        Frame::Datagram(&[1, 2, 3]),
        Frame::Close(CloseFrame {
            code: 9,
            reason: "gone",
        }),
        Frame::MaxData(1 << 40),
        Frame::ChannelBlocked {
            channel: 5,
            limit: 6,
        },
    ];
    for frame in frames {
        let len = frame.encoded_len();
        for short in 0..len {
            let mut out = std::vec![0xaa; short];
            assert_eq!(
                frame.encode(&mut out),
                Err(FrameError::BufferTooSmall { needed: len })
            );
            assert!(
                out.iter().all(|&b| b == 0xaa),
                "{frame:?} wrote into {short}"
            );
        }
    }
    let bytes = hex("86 02 19 03 e8 18 64 02 03 04");
    let ack = decode_one(&bytes).unwrap();
    for short in 0..bytes.len() {
        let mut out = std::vec![0xaa; short];
        assert_eq!(
            ack.encode(&mut out),
            Err(FrameError::BufferTooSmall {
                needed: bytes.len()
            })
        );
        assert!(out.iter().all(|&b| b == 0xaa));
    }
}

#[test]
fn encode_ack_refuses_bad_ranges() {
    let mut out = [0u8; 64];
    let bad: [&[(u64, u64)]; 6] = [
        &[],                       // nothing to acknowledge
        &[(5, 4)],                 // inverted
        &[(5, 9), (3, 4)],         // touching: no packet between 4 and 5
        &[(5, 9), (2, 6)],         // overlapping
        &[(5, 9), (12, 20)],       // ascending
        &[(5, 9), (1, 3), (0, 0)], // 0 touches 1
    ];
    for ranges in bad {
        assert_eq!(
            encode_ack(0, ranges.iter().copied(), 8, &mut out),
            Err(FrameError::InvalidAckRanges),
            "{ranges:?}"
        );
    }
    assert_eq!(
        encode_ack(0, [(1, 2)], 0, &mut out),
        Err(FrameError::InvalidAckRanges)
    );
    // Ranges beyond what is encoded are not read, so not checked.
    assert_eq!(encode_ack(0, [(5, 9), (12, 20)], 1, &mut out), Ok(5));
}

#[test]
fn encode_ack_short_buffer() {
    // [2, 1000, 100, 2] needs 1 + 1 + 3 + 2 + 1 = 8 bytes.
    let ranges = [(98u64, 100u64), (89, 93)];
    for short in 0..8 {
        let mut out = std::vec![0xaa; short];
        assert_eq!(
            encode_ack(1000, ranges, 8, &mut out),
            Err(FrameError::BufferTooSmall { needed: 8 })
        );
        assert!(out.iter().all(|&b| b == 0xaa));
    }
    // 8 or 9 bytes hold the first range only; 10 hold both.
    for (len, expected) in [
        (8, "84 02 19 03 e8 18 64 02"),
        (9, "84 02 19 03 e8 18 64 02"),
    ] {
        let mut out = std::vec![0u8; len];
        let n = encode_ack(1000, ranges, 8, &mut out).unwrap();
        assert_eq!(out[..n], hex(expected)[..]);
    }
    let mut out = [0u8; 10];
    assert_eq!(encode_ack(1000, ranges, 8, &mut out), Ok(10));
    assert_eq!(out[..], hex("86 02 19 03 e8 18 64 02 03 04")[..]);
}

#[test]
fn encode_ack_caps_ranges() {
    let ranges: Vec<(u64, u64)> = (0..100u64).rev().map(|i| (i * 3, i * 3 + 1)).collect();
    let bytes = ack_to_vec(0, &ranges, 1000);
    let Ok(Frame::Ack(ack)) = decode_one(&bytes) else {
        panic!("not an ACK");
    };
    assert_eq!(ack.range_count(), MAX_ACK_RANGES);
    assert_eq!(ack.ranges().collect::<Vec<_>>(), ranges[..MAX_ACK_RANGES]);
    let bytes = ack_to_vec(0, &ranges, 3);
    let Ok(Frame::Ack(ack)) = decode_one(&bytes) else {
        panic!("not an ACK");
    };
    assert_eq!(ack.ranges().collect::<Vec<_>>(), ranges[..3]);
}

#[test]
fn errors_display() {
    use std::string::ToString;
    assert_eq!(
        FrameError::UnknownFrame(12).to_string(),
        "unknown frame type 12"
    );
    assert_eq!(
        FrameError::BufferTooSmall { needed: 9 }.to_string(),
        "output buffer too small: 9 bytes needed"
    );
    let e: &dyn core::error::Error = &FrameError::Malformed;
    assert_eq!(e.to_string(), "malformed frame");
}
