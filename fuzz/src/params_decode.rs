//! The `params_decode` target: arbitrary bytes as the handshake parameters
//! a peer announces.
//!
//! Input: the handshake payload, as is. Invariants: `Params::decode` never
//! panics; what it accepts satisfies the checks it promises (packet size at
//! least 256, a non-zero idle timeout, messages no larger than the channel
//! window); it re-encodes within `MAX_PARAMS_LEN` bytes, in shortest form,
//! and that encoding decodes to the same parameters. An input that is
//! exactly a shortest-form ten-element array is its own re-encoding.
//! Further array elements are ignored, bytes after the array are not
//! (`spec/handshake.md` §7.1): the encoding followed by any input is
//! refused, and the encoding with the input appended as an eleventh
//! element (a byte string) decodes to the same parameters.

use crate::Output;
use tern::config::Config;
use tern::connection::params::{MAX_ACK_DELAY_LIMIT_MS, MAX_PARAMS_LEN, Params, ParamsError};

/// The fuzz target body.
pub fn run(data: &[u8]) {
    let Ok(p) = Params::decode(data) else {
        return;
    };
    assert!(p.max_packet_size >= 256, "{p:?}");
    assert!(p.idle_timeout_ms > 0, "{p:?}");
    assert!(p.max_ack_delay_ms < MAX_ACK_DELAY_LIMIT_MS, "{p:?}");
    assert!(p.max_message_size <= p.channel_window, "{p:?}");

    let mut out = [0u8; MAX_PARAMS_LEN];
    let n = p.encode(&mut out);
    assert!(n <= MAX_PARAMS_LEN);
    assert_eq!(Params::decode(&out[..n]), Ok(p), "round trip of {p:?}");
    // Nothing may follow the array.
    let mut longer = out[..n].to_vec();
    longer.extend_from_slice(data);
    assert_eq!(Params::decode(&longer), Err(ParamsError::Malformed));
    // Elements after the ten this version knows are ignored.
    let mut later = out[..n].to_vec();
    later[0] = 0x8b;
    byte_string_head(&mut later, data.len());
    later.extend_from_slice(data);
    assert_eq!(Params::decode(&later), Ok(p), "eleven elements");
    // What was accepted is one array and nothing after it: a definite
    // head of at least ten elements.
    assert!(matches!(data[0], 0x8a..=0x9b), "{data:02x?}");
    // Shortest form is canonical: the same array, written the same way.
    if data.len() == n && data[0] == 0x8a {
        let canonical = shortest_form(&data[1..]);
        assert_eq!(
            canonical,
            data == &out[..n],
            "{data:02x?} re-encodes as {:02x?}",
            &out[..n]
        );
    }
}

/// Appends the head of a CBOR byte string of `len` bytes.
fn byte_string_head(out: &mut Vec<u8>, len: usize) {
    match len {
        0..=23 => out.push(0x40 | len as u8),
        24..=0xff => out.extend_from_slice(&[0x58, len as u8]),
        0x100..=0xffff => {
            out.push(0x59);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0x5a);
            out.extend_from_slice(&(len as u32).to_be_bytes());
        }
    }
}

/// Whether `fields` is a run of shortest-form unsigned integers.
fn shortest_form(mut fields: &[u8]) -> bool {
    while let Some((&b, rest)) = fields.split_first() {
        if b >> 5 != 0 {
            return false;
        }
        let (len, min) = match b & 0x1f {
            0..=23 => (0, 0),
            24 => (1, 24),
            25 => (2, 0x100),
            26 => (4, 0x1_0000),
            27 => (8, 0x1_0000_0000),
            _ => return false,
        };
        if rest.len() < len {
            return false;
        }
        let v = rest[..len]
            .iter()
            .fold(0u64, |v, &x| (v << 8) | u64::from(x));
        if v < min {
            return false;
        }
        fields = &rest[len..];
    }
    true
}

/// Seed inputs: what each preset announces, extremes, a later revision's
/// longer array, and refusals.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let enc = |p: &Params| {
        let mut out = [0u8; MAX_PARAMS_LEN];
        let n = p.encode(&mut out);
        out[..n].to_vec()
    };
    let constrained = Params::from_config(&Config::constrained());
    let service = Params::from_config(&Config::service());
    let max = Params {
        version: u8::MAX,
        max_packet_size: u16::MAX,
        idle_timeout_ms: u32::MAX,
        max_channels: u32::MAX,
        channel_window: u32::MAX,
        connection_window: u64::MAX,
        max_message_size: u32::MAX,
        max_datagram_size: u16::MAX,
        max_ack_delay_ms: MAX_ACK_DELAY_LIMIT_MS - 1,
        features: u32::MAX,
    };
    let mut seeds = vec![
        ("seed-constrained".to_string(), enc(&constrained)),
        ("seed-service".to_string(), enc(&service)),
        ("seed-max".to_string(), enc(&max)),
    ];
    // Eleven elements: a later minor revision.
    let mut later = enc(&constrained);
    later[0] = 0x8b;
    later.push(0x07);
    seeds.push(("seed-later-revision".into(), later));
    // Thirteen: nested containers and a tag among the later elements.
    let mut nested = enc(&constrained);
    nested[0] = 0x8d;
    nested.extend_from_slice(&[0x82, 0x01, 0xa1, 0x02, 0x43, 1, 2, 3]);
    nested.extend_from_slice(&[0xc1, 0x1a, 0, 0, 0, 1, 0x62, b'h', b'i']);
    seeds.push(("seed-later-revision-nested".into(), nested));
    // Refused: bytes after the array, an indefinite-length later element.
    let mut trailing = enc(&constrained);
    trailing.push(0x00);
    seeds.push(("seed-bad-trailing-byte".into(), trailing));
    let mut indefinite = enc(&constrained);
    indefinite[0] = 0x8b;
    indefinite.extend_from_slice(&[0x9f, 0x01, 0xff]);
    seeds.push(("seed-bad-indefinite-element".into(), indefinite));
    // Refusals: packets too small, message beyond the window, nine fields.
    let small = enc(&Params {
        max_packet_size: 255,
        ..constrained
    });
    seeds.push(("seed-bad-small-packet".into(), small));
    let big_msg = enc(&Params {
        max_message_size: 4096,
        ..constrained
    });
    seeds.push(("seed-bad-message-size".into(), big_msg));
    let mut o = Output::default();
    o.u8(0x89).bytes(&[1; 9]);
    seeds.push(("seed-bad-nine-fields".into(), o.0));
    seeds
}
