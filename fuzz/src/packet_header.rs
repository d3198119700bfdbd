//! The `packet_header` target: arbitrary bytes into the packet header
//! decoders.
//!
//! Input: a datagram, as is. Invariants:
//!
//! - `ShortHeader::decode`, `HandshakeHeader::decode` and `classify` never
//!   panic;
//! - a decoded header re-encodes to exactly the bytes it came from (the
//!   header part; a long header's body is the rest of the datagram);
//! - `classify` agrees with the decoder its first bit selects;
//! - a short header's packet number, recovered against any largest packet
//!   number (the datagram's last eight bytes), keeps the truncated bits.

use crate::Output;
use tern::packet::{
    HandshakeHeader, HandshakeKind, LONG_HEADER_LEN, PacketClass, SHORT_HEADER_MAX, ShortHeader,
    classify, decode_packet_number,
};

/// The fuzz target body.
pub fn run(data: &[u8]) {
    let short = ShortHeader::decode(data);
    if let Ok(h) = short {
        let len = h.len();
        assert!((6..=SHORT_HEADER_MAX).contains(&len), "{h:?}");
        assert!(!h.is_empty());
        let mut out = [0u8; SHORT_HEADER_MAX];
        assert_eq!(h.encode(&mut out), len);
        assert_eq!(&out[..len], &data[..len], "{h:?} re-encodes differently");
        assert_eq!(ShortHeader::decode(&out[..len]), Ok(h));

        // Packet-number recovery keeps the bits on the wire.
        let mut tail = [0u8; 8];
        let t = data.len().saturating_sub(8);
        tail[..data.len() - t].copy_from_slice(&data[t..]);
        let largest = u64::from_le_bytes(tail);
        let largest = (data[0] & 0x10 == 0).then_some(largest);
        let pn_len = usize::from(h.pn_len);
        let pn = decode_packet_number(largest, u64::from(h.pn_truncated), pn_len);
        let mask = (1u64 << (8 * pn_len)) - 1;
        assert_eq!(
            pn & mask,
            u64::from(h.pn_truncated),
            "decode_packet_number({largest:?}, {:#x}, {pn_len}) = {pn:#x}",
            h.pn_truncated
        );
    }

    let long = HandshakeHeader::decode(data);
    if let Ok((h, body)) = long {
        let mut out = [0u8; LONG_HEADER_LEN];
        h.encode(&mut out);
        assert_eq!(
            &out[..],
            &data[..LONG_HEADER_LEN],
            "{h:?} re-encodes differently"
        );
        assert_eq!(body, &data[LONG_HEADER_LEN..]);
        assert_eq!(HandshakeHeader::decode(&out), Ok((h, &[][..])));
    }

    match classify(data) {
        Ok(PacketClass::Handshake { receiver }) => {
            let (h, _) = long.expect("classified as handshake but does not decode");
            assert_eq!(h.receiver, receiver);
        }
        Ok(PacketClass::Data { receiver }) => {
            let h = short.expect("classified as data but does not decode");
            assert_eq!(h.receiver, receiver);
        }
        Err(e) => match data.first() {
            None => {}
            Some(b) if b & 0x80 != 0 => assert_eq!(long.map(|_| ()), Err(e)),
            Some(_) => assert_eq!(short.map(|_| ()), Err(e)),
        },
    }
    // The two kinds never overlap.
    assert!(short.is_err() || long.is_err());
}

/// Seed inputs: real headers of each kind (with bodies), and near misses.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    for (name, pn_len, pn, phase) in [
        ("short-pn1", 1u8, 0x07u32, false),
        ("short-pn2", 2, 0x1234, false),
        ("short-pn3-phase", 3, 0xab_cdef, true),
    ] {
        let h = ShortHeader {
            key_phase: phase,
            receiver: 0x2222_2222,
            pn_truncated: pn,
            pn_len,
        };
        let mut out = [0u8; SHORT_HEADER_MAX];
        let n = h.encode(&mut out);
        let mut o = Output::default();
        o.bytes(&out[..n]).bytes(&[0x5a; 24]);
        seeds.push((format!("seed-{name}"), o.0));
    }
    for (name, kind, idx, receiver) in [
        ("long-first", HandshakeKind::Handshake, 0u8, 0u32),
        ("long-answer", HandshakeKind::Handshake, 1, 0x1111_1111),
        (
            "long-version",
            HandshakeKind::VersionMismatch,
            0,
            0x1111_1111,
        ),
    ] {
        let h = HandshakeHeader {
            kind,
            version: 1,
            pattern: 1,
            suite: 0x02,
            msg_index: idx,
            receiver,
            sender: 0x2222_2222,
        };
        let mut out = [0u8; LONG_HEADER_LEN];
        h.encode(&mut out);
        let mut o = Output::default();
        o.bytes(&out).bytes(&[1, 2, 3]);
        seeds.push((format!("seed-{name}"), o.0));
    }
    seeds.push(("seed-truncated".into(), vec![0x02, 0, 0, 0, 1, 2]));
    seeds.push(("seed-reserved".into(), vec![0x04, 0, 0, 0, 1, 2, 3]));
    seeds.push(("seed-unknown-type".into(), vec![0x85; 13]));
    seeds
}
