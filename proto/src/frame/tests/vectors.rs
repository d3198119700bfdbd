//! Wire vectors written by hand from RFC 8949; `spec/frames.md` §6 lists the
//! same bytes.

use std::vec::Vec;

use super::*;

/// Checks that `hex_bytes` decodes to `frame` and `frame` encodes to them.
#[track_caller]
fn vector(hex_bytes: &str, frame: Frame<'_>) {
    let bytes = hex(hex_bytes);
    assert_eq!(decode_one(&bytes), Ok(frame), "decode {hex_bytes}");
    assert_eq!(frame.encoded_len(), bytes.len(), "encoded_len {hex_bytes}");
    assert_eq!(encode_to_vec(&frame), bytes, "encode {hex_bytes}");
}

#[test]
fn padding() {
    vector("00", Frame::Padding);
}

#[test]
fn ping() {
    vector("81 01", Frame::Ping);
}

#[test]
fn message() {
    // [3, 1, 0, true, h'6869']
    vector(
        "85 03 01 00 f5 42 68 69",
        Frame::Message(MessageFrame {
            channel: 1,
            offset: 0,
            fin: true,
            data: b"hi",
        }),
    );
    // [3, 300, 70000, false, h'']: 300 = 0x012c, 70000 = 0x00011170.
    vector(
        "85 03 19 01 2c 1a 00 01 11 70 f4 40",
        Frame::Message(MessageFrame {
            channel: 300,
            offset: 70000,
            fin: false,
            data: b"",
        }),
    );
}

#[test]
fn datagram() {
    vector("82 04 43 01 02 03", Frame::Datagram(&[1, 2, 3]));
    vector("82 04 40", Frame::Datagram(&[]));
}

#[test]
fn close() {
    // [5, 0, "bye"]
    vector(
        "83 05 00 63 62 79 65",
        Frame::Close(CloseFrame {
            code: 0,
            reason: "bye",
        }),
    );
    // [5, 256, ""]
    vector(
        "83 05 19 01 00 60",
        Frame::Close(CloseFrame {
            code: 256,
            reason: "",
        }),
    );
}

#[test]
fn flow_control() {
    // [6, 1048576]: 0x00100000.
    vector("82 06 1a 00 10 00 00", Frame::MaxData(1 << 20));
    // [7, 2, 65536]
    vector(
        "83 07 02 1a 00 01 00 00",
        Frame::MaxChannelData {
            channel: 2,
            max: 65536,
        },
    );
    // [8, 24]: 24 is the first value that needs a one-byte argument.
    vector("82 08 18 18", Frame::DataBlocked(24));
    // [9, 23, 2^64 - 1]
    vector(
        "83 09 17 1b ff ff ff ff ff ff ff ff",
        Frame::ChannelBlocked {
            channel: 23,
            limit: u64::MAX,
        },
    );
    // [9, 2^32 - 1, 0]
    vector(
        "83 09 1a ff ff ff ff 00",
        Frame::ChannelBlocked {
            channel: u32::MAX,
            limit: 0,
        },
    );
}

/// Checks an ACK vector both ways: `encode_ack` of `ranges` gives the bytes,
/// and the bytes decode to those ranges and re-encode unchanged.
#[track_caller]
fn ack_vector(hex_bytes: &str, delay_us: u64, ranges: &[(u64, u64)]) {
    let bytes = hex(hex_bytes);
    assert_eq!(ack_to_vec(delay_us, ranges, MAX_ACK_RANGES), bytes);
    let Ok(Frame::Ack(ack)) = decode_one(&bytes) else {
        panic!("{hex_bytes} is not an ACK");
    };
    assert_eq!(ack.delay_us, delay_us);
    assert_eq!(ack.largest(), ranges[0].1);
    assert_eq!(ack.range_count(), ranges.len());
    assert_eq!(ack.ranges().len(), ranges.len());
    assert_eq!(ack.ranges().collect::<Vec<_>>(), ranges);
    assert_eq!(encode_to_vec(&Frame::Ack(ack)), bytes);
}

#[test]
fn ack() {
    // [2, 0, 0, 0]: packet 0 alone.
    ack_vector("84 02 00 00 00", 0, &[(0, 0)]);
    // [2, 1000, 100, 2, 3, 4]: [98, 100]; then largest 98 - 3 - 2 = 93,
    // 4 + 1 packets down to 89.
    ack_vector(
        "86 02 19 03 e8 18 64 02 03 04",
        1000,
        &[(98, 100), (89, 93)],
    );
    // The worked example of spec/frames.md §4:
    // [2, 25, 1000, 10, 8, 30, 941, 2].
    ack_vector(
        "88 02 18 19 19 03 e8 0a 08 18 1e 19 03 ad 02",
        25,
        &[(990, 1000), (950, 980), (5, 7)],
    );
}

#[test]
fn ack_array_head_grows_past_23_items() {
    // 10 pairs make 24 items: the array head becomes 0x98 0x18.
    let ranges: Vec<(u64, u64)> = (0..11u64).rev().map(|i| (i * 2, i * 2)).collect();
    let bytes = ack_to_vec(0, &ranges, MAX_ACK_RANGES);
    // [2, 0, 20, 0, then ten (0, 0)]: each range one packet, one missing
    // between them.
    let mut expected = hex("98 18 02 00 14 00");
    expected.extend(std::iter::repeat_n(0u8, 20));
    assert_eq!(bytes, expected);
    let Ok(Frame::Ack(ack)) = decode_one(&bytes) else {
        panic!("not an ACK");
    };
    assert_eq!(ack.ranges().collect::<Vec<_>>(), ranges);
    // With 9 pairs (22 items) the head is one byte.
    let nine = ack_to_vec(0, &ranges[..10], MAX_ACK_RANGES);
    assert_eq!(nine[0], 0x80 | 22);
    assert_eq!(nine.len(), bytes.len() - 1 - 2);
}

#[test]
fn sequence_of_frames() {
    // PADDING, PING, [6, 100], PADDING.
    let bytes = hex("00 81 01 82 06 18 64 00");
    let frames: Vec<_> = FrameDecoder::new(&bytes).collect();
    assert_eq!(
        frames,
        [
            Ok(Frame::Padding),
            Ok(Frame::Ping),
            Ok(Frame::MaxData(100)),
            Ok(Frame::Padding)
        ]
    );
    let all = decode_all(&bytes).unwrap();
    assert!(all.is_ack_eliciting());
    assert_eq!(all.len(), 4);
    assert_eq!(
        all.collect::<Vec<_>>(),
        [
            Frame::Padding,
            Frame::Ping,
            Frame::MaxData(100),
            Frame::Padding
        ]
    );
}

#[test]
fn ack_and_padding_do_not_elicit_acks() {
    let bytes = hex("84 02 00 00 00 00 00");
    let all = decode_all(&bytes).unwrap();
    assert!(!all.is_ack_eliciting());
    assert_eq!(all.len(), 3);
    let empty = decode_all(&[]).unwrap();
    assert!(!empty.is_ack_eliciting());
    assert_eq!(empty.len(), 0);
    for frame in [
        Frame::Ping,
        Frame::Datagram(b""),
        Frame::MaxData(0),
        Frame::Close(CloseFrame {
            code: 0,
            reason: "",
        }),
    ] {
        assert!(frame.is_ack_eliciting());
    }
    assert!(!Frame::Padding.is_ack_eliciting());
}

#[test]
fn message_data_is_borrowed_from_the_input() {
    let bytes = hex("85 03 01 00 f5 42 68 69");
    let Ok(Frame::Message(m)) = decode_one(&bytes) else {
        panic!("not a MESSAGE");
    };
    assert!(core::ptr::eq(m.data.as_ptr(), bytes[6..].as_ptr()));
}

#[test]
fn frame_types() {
    assert_eq!(Frame::Padding.frame_type(), 0);
    assert_eq!(Frame::Ping.frame_type(), 1);
    assert_eq!(Frame::Datagram(b"").frame_type(), 4);
    assert_eq!(
        Frame::ChannelBlocked {
            channel: 0,
            limit: 0
        }
        .frame_type(),
        9
    );
}
