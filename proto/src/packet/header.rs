//! Header encoding and decoding. Decoders never trust a length.

use core::fmt;

/// The protocol version this crate speaks.
pub const VERSION: u8 = 1;
/// Length of a long (handshake) header.
pub const LONG_HEADER_LEN: usize = 13;
/// Largest short header: flags, receiver id, 3-byte packet number.
pub const SHORT_HEADER_MAX: usize = 8;

const LONG_BIT: u8 = 0x80;
const KEY_PHASE_BIT: u8 = 0x40;
const SHORT_RESERVED: u8 = 0x3c;
const PN_LEN_MASK: u8 = 0x03;

/// A packet that does not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketError {
    /// Shorter than its header says.
    Truncated,
    /// A reserved bit is set, or a field has a reserved value.
    Malformed,
    /// A long header of a type this version does not know.
    UnknownType(u8),
}

impl fmt::Display for PacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PacketError::Truncated => f.write_str("truncated packet"),
            PacketError::Malformed => f.write_str("malformed packet header"),
            PacketError::UnknownType(t) => write!(f, "unknown packet type {t:#04x}"),
        }
    }
}

impl core::error::Error for PacketError {}

/// The kinds of long-header packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeKind {
    /// A Noise handshake message.
    Handshake = 0,
    /// The responder does not speak the initiator's version; the body lists
    /// the versions it does, one byte each.
    VersionMismatch = 1,
}

/// The long header of a handshake packet.
///
/// ```text
///  0        1        2        3        4        5..9        9..13
/// +--------+--------+--------+--------+--------+-----------+-----------+
/// |1 type  |version |pattern | suite  |msg idx |receiver id| sender id |
/// +--------+--------+--------+--------+--------+-----------+-----------+
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandshakeHeader {
    /// Packet kind.
    pub kind: HandshakeKind,
    /// Protocol version.
    pub version: u8,
    /// Handshake pattern id (see `spec/handshake.md`).
    pub pattern: u8,
    /// Cipher and hash id.
    pub suite: u8,
    /// Index of the Noise message within the handshake.
    pub msg_index: u8,
    /// The receiver's session id (0 in the first message).
    pub receiver: u32,
    /// The sender's session id.
    pub sender: u32,
}

impl HandshakeHeader {
    /// Writes the header into `out[..13]`; the caller checked the length.
    pub fn encode(&self, out: &mut [u8]) {
        out[0] = LONG_BIT | self.kind as u8;
        out[1] = self.version;
        out[2] = self.pattern;
        out[3] = self.suite;
        out[4] = self.msg_index;
        out[5..9].copy_from_slice(&self.receiver.to_be_bytes());
        out[9..13].copy_from_slice(&self.sender.to_be_bytes());
    }

    /// Parses a long header; returns it and the body after it.
    pub fn decode(packet: &[u8]) -> Result<(HandshakeHeader, &[u8]), PacketError> {
        if packet.len() < LONG_HEADER_LEN {
            return Err(PacketError::Truncated);
        }
        let kind = match packet[0] {
            b if b == LONG_BIT => HandshakeKind::Handshake,
            b if b == LONG_BIT | 1 => HandshakeKind::VersionMismatch,
            b if b & LONG_BIT != 0 => return Err(PacketError::UnknownType(b & !LONG_BIT)),
            _ => return Err(PacketError::Malformed),
        };
        let u32_at =
            |i: usize| u32::from_be_bytes([packet[i], packet[i + 1], packet[i + 2], packet[i + 3]]);
        Ok((
            HandshakeHeader {
                kind,
                version: packet[1],
                pattern: packet[2],
                suite: packet[3],
                msg_index: packet[4],
                receiver: u32_at(5),
                sender: u32_at(9),
            },
            &packet[LONG_HEADER_LEN..],
        ))
    }
}

/// The short header of a data packet; all of it is the AEAD's associated
/// data.
///
/// ```text
///  0                 1..5          5..5+L
/// +-+-+-+-+-+-+-+-+-------------+--------------+
/// |0|K|0 0 0 0|L-1|receiver id  |packet number |  L = 1..3 bytes
/// +-+-+-+-+-+-+-+-+-------------+--------------+
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShortHeader {
    /// Key phase bit (flips on each key update).
    pub key_phase: bool,
    /// The receiver's session id.
    pub receiver: u32,
    /// Truncated packet number.
    pub pn_truncated: u32,
    /// Bytes of packet number on the wire, 1 to 3.
    pub pn_len: u8,
}

impl ShortHeader {
    /// Length of this header on the wire.
    pub fn len(&self) -> usize {
        5 + usize::from(self.pn_len)
    }

    /// Always false: a header has at least five bytes.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the header into `out`; returns its length. The caller checked
    /// that `out` is long enough and that `pn_len` is 1 to 3.
    #[inline]
    pub fn encode(&self, out: &mut [u8]) -> usize {
        let len = self.len();
        out[0] = (u8::from(self.key_phase) << 6) | (self.pn_len - 1);
        out[1..5].copy_from_slice(&self.receiver.to_be_bytes());
        // Byte by byte: a copy of a variable 1 to 3 bytes was a memcpy call.
        for (k, b) in out[5..len].iter_mut().enumerate() {
            *b = (self.pn_truncated >> (8 * (len - 6 - k))) as u8;
        }
        len
    }

    /// Parses a short header from the start of `packet`.
    #[inline]
    pub fn decode(packet: &[u8]) -> Result<ShortHeader, PacketError> {
        let first = *packet.first().ok_or(PacketError::Truncated)?;
        if first & LONG_BIT != 0 || first & SHORT_RESERVED != 0 {
            return Err(PacketError::Malformed);
        }
        let pn_len = (first & PN_LEN_MASK) + 1;
        if pn_len > 3 {
            return Err(PacketError::Malformed);
        }
        let len = 5 + usize::from(pn_len);
        if packet.len() < len {
            return Err(PacketError::Truncated);
        }
        let pn = packet[5..len]
            .iter()
            .fold(0u32, |v, &b| (v << 8) | u32::from(b));
        Ok(ShortHeader {
            key_phase: first & KEY_PHASE_BIT != 0,
            receiver: u32::from_be_bytes([packet[1], packet[2], packet[3], packet[4]]),
            pn_truncated: pn,
            pn_len,
        })
    }
}

/// What the first byte says a datagram is, and the session id it is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketClass {
    /// A handshake packet; `receiver` is 0 for a first message.
    Handshake {
        /// The receiver session id in the header.
        receiver: u32,
    },
    /// A data packet for session `receiver`.
    Data {
        /// The receiver session id in the header.
        receiver: u32,
    },
}

/// Classifies a datagram and extracts its receiver id, for demultiplexing.
pub fn classify(packet: &[u8]) -> Result<PacketClass, PacketError> {
    let first = *packet.first().ok_or(PacketError::Truncated)?;
    if first & LONG_BIT != 0 {
        let (h, _) = HandshakeHeader::decode(packet)?;
        Ok(PacketClass::Handshake {
            receiver: h.receiver,
        })
    } else {
        let h = ShortHeader::decode(packet)?;
        Ok(PacketClass::Data {
            receiver: h.receiver,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_header_layout_is_pinned() {
        let h = ShortHeader {
            key_phase: true,
            receiver: 0x0102_0304,
            pn_truncated: 0xabcd,
            pn_len: 2,
        };
        let mut out = [0u8; 8];
        assert_eq!(h.encode(&mut out), 7);
        assert_eq!(out[..7], [0x41, 1, 2, 3, 4, 0xab, 0xcd]);
        assert_eq!(ShortHeader::decode(&out[..7]), Ok(h));
        assert_eq!(ShortHeader::decode(&out[..6]), Err(PacketError::Truncated));
        assert_eq!(
            ShortHeader::decode(&[0x03, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(PacketError::Malformed)
        );
        assert_eq!(
            ShortHeader::decode(&[0x04, 0, 0, 0, 0, 0]),
            Err(PacketError::Malformed)
        );
    }

    #[test]
    fn long_header_layout_is_pinned() {
        let h = HandshakeHeader {
            kind: HandshakeKind::Handshake,
            version: 1,
            pattern: 0,
            suite: 0x10,
            msg_index: 1,
            receiver: 0xdead_beef,
            sender: 7,
        };
        let mut out = [0u8; 14];
        h.encode(&mut out);
        out[13] = 0x55;
        assert_eq!(
            out[..13],
            [0x80, 1, 0, 0x10, 1, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 7]
        );
        let (d, body) = HandshakeHeader::decode(&out).unwrap();
        assert_eq!((d, body), (h, &[0x55][..]));
        assert_eq!(
            HandshakeHeader::decode(&out[..12]),
            Err(PacketError::Truncated)
        );
        out[0] = 0x85;
        assert_eq!(
            HandshakeHeader::decode(&out),
            Err(PacketError::UnknownType(5))
        );
        assert_eq!(classify(&[]), Err(PacketError::Truncated));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;
        use std::vec::Vec;

        fn any_long() -> impl Strategy<Value = HandshakeHeader> {
            (
                prop_oneof![
                    Just(HandshakeKind::Handshake),
                    Just(HandshakeKind::VersionMismatch)
                ],
                any::<(u8, u8, u8, u8, u32, u32)>(),
            )
                .prop_map(
                    |(kind, (version, pattern, suite, msg_index, receiver, sender))| {
                        HandshakeHeader {
                            kind,
                            version,
                            pattern,
                            suite,
                            msg_index,
                            receiver,
                            sender,
                        }
                    },
                )
        }

        /// A short header with every packet-number length, its truncated
        /// number within that length.
        fn any_short() -> impl Strategy<Value = ShortHeader> {
            (1u8..=3, any::<bool>(), any::<u32>(), any::<u32>()).prop_map(
                |(pn_len, key_phase, receiver, pn)| ShortHeader {
                    key_phase,
                    receiver,
                    pn_truncated: pn & ((1u32 << (8 * u32::from(pn_len))) - 1),
                    pn_len,
                },
            )
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Every long header round-trips, whatever body follows, and
            /// classifies as a handshake packet for its receiver.
            #[test]
            fn long_header_round_trips(
                h in any_long(),
                body in proptest::collection::vec(any::<u8>(), 0..64),
            ) {
                let mut p = std::vec![0u8; LONG_HEADER_LEN];
                h.encode(&mut p);
                prop_assert_eq!(p[0] & LONG_BIT, LONG_BIT);
                p.extend_from_slice(&body);
                let (d, rest) = HandshakeHeader::decode(&p).unwrap();
                prop_assert_eq!(d, h);
                prop_assert_eq!(rest, &body[..]);
                prop_assert_eq!(classify(&p), Ok(PacketClass::Handshake { receiver: h.receiver }));
                // Every cut inside the header is reported as truncated.
                for cut in 0..LONG_HEADER_LEN {
                    prop_assert_eq!(
                        HandshakeHeader::decode(&p[..cut]).map(|(h, _)| h),
                        Err(PacketError::Truncated)
                    );
                }
            }

            /// Every short header round-trips with each packet-number
            /// length, its length is what `encode` wrote, and it classifies
            /// as a data packet.
            #[test]
            fn short_header_round_trips(
                h in any_short(),
                body in proptest::collection::vec(any::<u8>(), 0..64),
            ) {
                let mut p = std::vec![0u8; SHORT_HEADER_MAX];
                let n = h.encode(&mut p);
                prop_assert_eq!(n, h.len());
                prop_assert_eq!(n, 5 + usize::from(h.pn_len));
                p.truncate(n);
                p.extend_from_slice(&body);
                prop_assert_eq!(ShortHeader::decode(&p), Ok(h));
                prop_assert_eq!(classify(&p), Ok(PacketClass::Data { receiver: h.receiver }));
                for cut in 0..n {
                    prop_assert_eq!(ShortHeader::decode(&p[..cut]), Err(PacketError::Truncated));
                }
            }

            /// Arbitrary bytes never panic a decoder; whatever decodes
            /// re-encodes to the bytes it came from, and `classify` agrees
            /// with the decoders.
            #[test]
            fn arbitrary_bytes_decode_or_fail(p in proptest::collection::vec(any::<u8>(), 0..24)) {
                match HandshakeHeader::decode(&p) {
                    Ok((h, rest)) => {
                        let mut out = [0u8; LONG_HEADER_LEN];
                        h.encode(&mut out);
                        prop_assert_eq!(&out[..], &p[..LONG_HEADER_LEN]);
                        prop_assert_eq!(rest, &p[LONG_HEADER_LEN..]);
                    }
                    Err(PacketError::Truncated) => prop_assert!(p.len() < LONG_HEADER_LEN),
                    Err(PacketError::UnknownType(t)) => {
                        prop_assert!(p[0] & LONG_BIT != 0 && t == p[0] & !LONG_BIT && t > 1)
                    }
                    Err(PacketError::Malformed) => prop_assert!(p[0] & LONG_BIT == 0),
                }
                match ShortHeader::decode(&p) {
                    Ok(h) => {
                        let mut out = [0u8; SHORT_HEADER_MAX];
                        let n = h.encode(&mut out);
                        prop_assert_eq!(&out[..n], &p[..n]);
                    }
                    Err(PacketError::Truncated) => prop_assert!(p.len() < 8),
                    Err(PacketError::Malformed) => prop_assert!(
                        p[0] & (LONG_BIT | SHORT_RESERVED) != 0 || p[0] & PN_LEN_MASK == 3
                    ),
                    Err(e) => prop_assert!(false, "short header error {:?}", e),
                }
                let class = classify(&p);
                if p.first().is_some_and(|b| b & LONG_BIT != 0) {
                    prop_assert_eq!(
                        class.ok(),
                        HandshakeHeader::decode(&p)
                            .ok()
                            .map(|(h, _)| PacketClass::Handshake { receiver: h.receiver })
                    );
                } else {
                    prop_assert_eq!(
                        class.ok(),
                        ShortHeader::decode(&p)
                            .ok()
                            .map(|h| PacketClass::Data { receiver: h.receiver })
                    );
                }
            }

            /// Garbled genuine headers (bytes flipped, cut anywhere) never
            /// panic, and a changed byte never decodes to the same header.
            #[test]
            fn garbled_headers_never_panic(
                long in any_long(),
                short in any_short(),
                flips in proptest::collection::vec((0usize..16, 1u8..=255), 1..4),
                cut in 0usize..20,
            ) {
                let mut l = std::vec![0u8; LONG_HEADER_LEN + 3];
                long.encode(&mut l);
                let mut s = std::vec![0u8; SHORT_HEADER_MAX + 3];
                let n = short.encode(&mut s);
                s.truncate(n + 3);
                for p in [&mut l, &mut s] {
                    let orig: Vec<u8> = p.clone();
                    for &(at, x) in &flips {
                        let i = at % p.len();
                        p[i] ^= x;
                    }
                    let cut = cut.min(p.len());
                    let _ = classify(&p[..cut]);
                    let _ = HandshakeHeader::decode(&p[..cut]);
                    let _ = ShortHeader::decode(&p[..cut]);
                    // Header bytes changed: the header must differ (or fail).
                    let hlen = if orig[0] & LONG_BIT != 0 { LONG_HEADER_LEN } else { n };
                    if p[..hlen] != orig[..hlen] {
                        if orig[0] & LONG_BIT != 0 {
                            prop_assert_ne!(HandshakeHeader::decode(p).ok().map(|x| x.0), Some(long));
                        } else {
                            prop_assert_ne!(ShortHeader::decode(p).ok(), Some(short));
                        }
                    }
                }
            }
        }
    }
}
