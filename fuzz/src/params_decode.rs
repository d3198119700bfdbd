//! The `params_decode` target: arbitrary bytes as the handshake parameters
//! a peer announces.
//!
//! Input: the handshake payload, as is. Invariants: `Params::decode` never
//! panics; what it accepts satisfies the checks it promises (packet size at
//! least 256, a non-zero idle timeout, messages no larger than the channel
//! window); it re-encodes within `MAX_PARAMS_LEN` bytes, in shortest form,
//! and that encoding decodes to the same parameters. An input that is
//! exactly a shortest-form ten-element array is its own re-encoding.

use crate::Output;
use tern::config::Config;
use tern::connection::params::{MAX_PARAMS_LEN, Params};

/// The fuzz target body.
pub fn run(data: &[u8]) {
    let Ok(p) = Params::decode(data) else {
        return;
    };
    assert!(p.max_packet_size >= 256, "{p:?}");
    assert!(p.idle_timeout_ms > 0, "{p:?}");
    assert!(p.max_message_size <= p.channel_window, "{p:?}");

    let mut out = [0u8; MAX_PARAMS_LEN];
    let n = p.encode(&mut out);
    assert!(n <= MAX_PARAMS_LEN);
    assert_eq!(Params::decode(&out[..n]), Ok(p), "round trip of {p:?}");
    // Decoding ignores anything after the ten fields it knows.
    let mut longer = out[..n].to_vec();
    longer.extend_from_slice(data);
    assert_eq!(Params::decode(&longer), Ok(p));
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
        max_ack_delay_ms: u16::MAX,
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
