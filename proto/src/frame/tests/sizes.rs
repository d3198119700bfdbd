//! `message_overhead` and `max_message_data` at the byte-string head
//! boundaries.

use super::*;

/// MESSAGE on channel 1 at offset 0: array head, type, channel, offset and
/// fin take one byte each.
const FIXED: usize = 5;

fn message_len(data_len: usize) -> usize {
    let data = std::vec![0x5a; data_len];
    let frame = Frame::Message(MessageFrame {
        channel: 1,
        offset: 0,
        fin: false,
        data: &data,
    });
    let encoded = encode_to_vec(&frame);
    encoded.len()
}

#[test]
fn overhead_is_exact_at_head_boundaries() {
    for (data_len, head) in [
        (0, 1),
        (23, 1),
        (24, 2),
        (255, 2),
        (256, 3),
        (65535, 3),
        (65536, 5),
    ] {
        let overhead = message_overhead(1, 0, data_len, true);
        assert_eq!(overhead, FIXED + head, "overhead for {data_len}");
        assert_eq!(
            message_len(data_len),
            overhead + data_len,
            "frame of {data_len}"
        );
        assert_eq!(message_overhead(1, 0, data_len, false), overhead);
    }
}

#[test]
fn overhead_counts_channel_and_offset_widths() {
    assert_eq!(message_overhead(23, 23, 0, true), 6);
    assert_eq!(message_overhead(24, 24, 0, true), 8);
    assert_eq!(
        message_overhead(u32::MAX, u64::MAX, 0, true),
        1 + 1 + 5 + 9 + 1 + 1
    );
    let frame = Frame::Message(MessageFrame {
        channel: u32::MAX,
        offset: u64::MAX - 3,
        fin: true,
        data: &[1, 2, 3],
    });
    assert_eq!(
        frame.encoded_len(),
        message_overhead(u32::MAX, u64::MAX - 3, 3, true) + 3
    );
    assert_eq!(encode_to_vec(&frame).len(), frame.encoded_len());
}

#[test]
fn max_message_data_at_head_boundaries() {
    for (space, expected) in [
        // Not even an empty MESSAGE (6 bytes) fits.
        (0, 0),
        (5, 0),
        (6, 0),
        (7, 1),
        // 23 bytes of data: 5 + 1 + 23 = 29. 24 bytes need 5 + 2 + 24 = 31.
        (29, 23),
        (30, 23),
        (31, 24),
        // 255: 5 + 2 + 255 = 262. 256 needs 5 + 3 + 256 = 264.
        (262, 255),
        (263, 255),
        (264, 256),
        // 65535: 5 + 3 + 65535 = 65543. 65536 needs 5 + 5 + 65536 = 65546.
        (65543, 65535),
        (65544, 65535),
        (65545, 65535),
        (65546, 65536),
    ] {
        assert_eq!(
            max_message_data(1, 0, space, true),
            expected,
            "space {space}"
        );
        assert_eq!(max_message_data(1, 0, space, false), expected);
    }
    // And the frames really fit.
    for space in [29, 30, 31, 262, 263, 264, 65543, 65545, 65546] {
        let n = max_message_data(1, 0, space, true);
        assert!(message_len(n) <= space);
        assert!(message_len(n + 1) > space);
    }
}

#[test]
#[cfg(target_pointer_width = "64")]
fn max_message_data_huge_space() {
    // Past 2^32 bytes the head is 9 bytes; no overflow at usize::MAX.
    let n = max_message_data(1, 0, usize::MAX, true);
    assert_eq!(n, usize::MAX - FIXED - 9);
    assert_eq!(
        message_overhead(1, 0, n, true).checked_add(n),
        Some(usize::MAX)
    );
}

#[test]
fn datagram_sizes() {
    assert_eq!(datagram_overhead(0), 3);
    assert_eq!(datagram_overhead(23), 3);
    assert_eq!(datagram_overhead(24), 4);
    assert_eq!(datagram_overhead(256), 5);
    assert_eq!(max_datagram_data(2), 0);
    assert_eq!(max_datagram_data(3), 0);
    assert_eq!(max_datagram_data(26), 23);
    assert_eq!(max_datagram_data(27), 23);
    assert_eq!(max_datagram_data(28), 24);
    let data = [0u8; 24];
    assert_eq!(Frame::Datagram(&data).encoded_len(), 28);
}
