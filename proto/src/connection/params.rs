//! Handshake parameters: what each side tells the other in its handshake
//! payload, as a CBOR array (see `spec/handshake.md`).

use crate::config::Config;
use crate::packet::VERSION;
use core::time::Duration;
use minicbor::Decoder;
use minicbor::data::Type;

/// Feature bit: unreliable datagrams accepted.
pub const FEATURE_DATAGRAMS: u32 = 1;

/// Encoded size bound of [`Params`].
pub const MAX_PARAMS_LEN: usize = 64;

/// `max_ack_delay_ms` must be below this (2^14 ms, as QUIC's
/// `max_ack_delay`): a peer announcing more could stretch every probe
/// timeout of this side; both a configuration and received parameters with
/// more are refused.
pub const MAX_ACK_DELAY_LIMIT_MS: u16 = 1 << 14;

/// The limits and features one side announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Protocol version.
    pub version: u8,
    /// Largest packet the sender of these parameters accepts.
    pub max_packet_size: u16,
    /// Its idle timeout, in milliseconds.
    pub idle_timeout_ms: u32,
    /// Channels it accepts.
    pub max_channels: u32,
    /// Initial credit per channel.
    pub channel_window: u32,
    /// Initial connection credit.
    pub connection_window: u64,
    /// Largest message it accepts.
    pub max_message_size: u32,
    /// Largest datagram it accepts.
    pub max_datagram_size: u16,
    /// Its maximum ack delay, in milliseconds.
    pub max_ack_delay_ms: u16,
    /// Feature bits.
    pub features: u32,
}

/// Parameters that do not decode or make no sense.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamsError {
    /// Not the CBOR array this version defines.
    Malformed,
    /// A value outside its allowed range.
    OutOfRange,
}

impl Params {
    /// What `config` announces.
    pub fn from_config(c: &Config) -> Params {
        let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
        Params {
            version: VERSION,
            max_packet_size: c.max_packet_size,
            idle_timeout_ms: ms(c.idle_timeout),
            max_channels: c.max_channels,
            channel_window: c.channel_window,
            connection_window: c.connection_window,
            max_message_size: c.max_message_size,
            max_datagram_size: c.max_datagram_size,
            max_ack_delay_ms: u16::try_from(ms(c.max_ack_delay)).unwrap_or(u16::MAX),
            features: if c.max_datagram_size > 0 {
                FEATURE_DATAGRAMS
            } else {
                0
            },
        }
    }

    fn fields(&self) -> [u64; 10] {
        [
            u64::from(self.version),
            u64::from(self.max_packet_size),
            u64::from(self.idle_timeout_ms),
            u64::from(self.max_channels),
            u64::from(self.channel_window),
            self.connection_window,
            u64::from(self.max_message_size),
            u64::from(self.max_datagram_size),
            u64::from(self.max_ack_delay_ms),
            u64::from(self.features),
        ]
    }

    /// Writes the CBOR array into `out`; returns its length. `out` must hold
    /// [`MAX_PARAMS_LEN`] bytes.
    pub fn encode(&self, out: &mut [u8]) -> usize {
        let fields = self.fields();
        let mut pos = head(out, 4, fields.len() as u64);
        for v in fields {
            pos += head(&mut out[pos..], 0, v);
        }
        pos
    }

    /// Decodes and validates. Array elements after the ten this version
    /// defines (from a later minor revision) are ignored, but must be
    /// well-formed CBOR items of definite length; nothing may follow the
    /// array.
    pub fn decode(bytes: &[u8]) -> Result<Params, ParamsError> {
        let mut d = Decoder::new(bytes);
        let n = d
            .array()
            .map_err(|_| ParamsError::Malformed)?
            .ok_or(ParamsError::Malformed)?;
        if n < 10 {
            return Err(ParamsError::Malformed);
        }
        let mut f = [0u64; 10];
        for v in &mut f {
            *v = d.u64().map_err(|_| ParamsError::Malformed)?;
        }
        skip_items(&mut d, n - 10)?;
        if d.position() != bytes.len() {
            return Err(ParamsError::Malformed);
        }
        let narrow = |v: u64| u32::try_from(v).map_err(|_| ParamsError::OutOfRange);
        let p = Params {
            version: u8::try_from(f[0]).map_err(|_| ParamsError::OutOfRange)?,
            max_packet_size: u16::try_from(f[1]).map_err(|_| ParamsError::OutOfRange)?,
            idle_timeout_ms: narrow(f[2])?,
            max_channels: narrow(f[3])?,
            channel_window: narrow(f[4])?,
            connection_window: f[5],
            max_message_size: narrow(f[6])?,
            max_datagram_size: u16::try_from(f[7]).map_err(|_| ParamsError::OutOfRange)?,
            max_ack_delay_ms: u16::try_from(f[8]).map_err(|_| ParamsError::OutOfRange)?,
            features: narrow(f[9])?,
        };
        if p.max_packet_size < 256
            || p.max_ack_delay_ms >= MAX_ACK_DELAY_LIMIT_MS
            || p.idle_timeout_ms == 0
            || p.max_message_size > p.channel_window
        {
            return Err(ParamsError::OutOfRange);
        }
        Ok(p)
    }
}

/// Skips `n` CBOR items of definite length, whatever they hold. Each step
/// consumes at least one byte or fails, so the work is bounded by the
/// input's length whatever the lengths claim; nothing recurses.
/// (minicbor's own `skip` accepts indefinite-length containers inside
/// definite ones only with its `alloc` feature, which another crate in the
/// build may turn on: what is accepted must not depend on that.)
fn skip_items(d: &mut Decoder<'_>, mut n: u64) -> Result<(), ParamsError> {
    let bad = |_| ParamsError::Malformed;
    while n > 0 {
        n -= 1;
        match d.datatype().map_err(bad)? {
            Type::Array => {
                let len = d.array().map_err(bad)?.ok_or(ParamsError::Malformed)?;
                n = n.saturating_add(len);
            }
            Type::Map => {
                let len = d.map().map_err(bad)?.ok_or(ParamsError::Malformed)?;
                n = n.saturating_add(len.saturating_mul(2));
            }
            Type::Tag => {
                // The tagged item follows.
                d.tag().map_err(bad)?;
                n = n.saturating_add(1);
            }
            Type::ArrayIndef
            | Type::MapIndef
            | Type::BytesIndef
            | Type::StringIndef
            | Type::Break
            | Type::Unknown(_) => return Err(ParamsError::Malformed),
            // Integers, floats, simple values, definite byte and text
            // strings: one item each, whichever feature set minicbor has.
            _ => d.skip().map_err(bad)?,
        }
    }
    Ok(())
}

/// Writes a CBOR head of major type `major` with argument `v` in its
/// shortest form (`out` holds at least 9 bytes).
fn head(out: &mut [u8], major: u8, v: u64) -> usize {
    crate::frame::cbor::put_head(out, major, v).expect("room for the CBOR head")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_pinned_bytes() {
        let p = Params::from_config(&Config::constrained());
        let mut out = [0u8; MAX_PARAMS_LEN];
        let n = p.encode(&mut out);
        assert_eq!(Params::decode(&out[..n]), Ok(p));
        // [1, 512, 120000, 2, 1024, 2048, 1024, 256, 100, 1]
        assert_eq!(
            out[..n],
            [
                0x8a, 0x01, 0x19, 0x02, 0x00, 0x1a, 0x00, 0x01, 0xd4, 0xc0, 0x02, 0x19, 0x04, 0x00,
                0x19, 0x08, 0x00, 0x19, 0x04, 0x00, 0x19, 0x01, 0x00, 0x18, 0x64, 0x01
            ]
        );
        assert!(n <= MAX_PARAMS_LEN);
        let big = Params {
            connection_window: u64::MAX,
            ..p
        };
        let n = big.encode(&mut out);
        assert_eq!(Params::decode(&out[..n]), Ok(big));
    }

    /// QUIC's bound on max_ack_delay: 2^14 ms and above is refused.
    #[test]
    fn max_ack_delay_at_or_above_2_14_ms_is_refused() {
        let base = Params::from_config(&Config::constrained());
        let mut out = [0u8; MAX_PARAMS_LEN];
        for (ms, ok) in [(0, true), (16_383, true), (16_384, false), (65_535, false)] {
            let p = Params {
                max_ack_delay_ms: ms,
                ..base
            };
            let n = p.encode(&mut out);
            let want = if ok {
                Ok(p)
            } else {
                Err(ParamsError::OutOfRange)
            };
            assert_eq!(Params::decode(&out[..n]), want, "{ms} ms");
        }
    }

    /// The constrained preset's parameters as an array of `10 + extra.len()`
    /// elements (fewer than 14), the extra elements being `extra`.
    fn with_extra(extra: &[&[u8]]) -> std::vec::Vec<u8> {
        let mut out = [0u8; MAX_PARAMS_LEN];
        let n = Params::from_config(&Config::constrained()).encode(&mut out);
        let mut v = out[..n].to_vec();
        v[0] = 0x8a + extra.len() as u8;
        for e in extra {
            v.extend_from_slice(e);
        }
        v
    }

    /// Anything after the array was ignored: trailing bytes (a second
    /// item, garbage, a truncated item) are now refused, while further
    /// array elements stay open to later revisions.
    #[test]
    fn later_elements_are_ignored_but_trailing_bytes_refused() {
        let p = Params::from_config(&Config::constrained());
        let exact = with_extra(&[]);
        assert_eq!(Params::decode(&exact), Ok(p));
        for tail in [&[0x00][..], &[0xff], &[0x8a], &[0x19, 0x01], &[0x01, 0x02]] {
            let mut v = exact.clone();
            v.extend_from_slice(tail);
            assert_eq!(Params::decode(&v), Err(ParamsError::Malformed), "{v:02x?}");
        }
        // Later elements of any definite-length kind are ignored.
        let later: [&[u8]; 9] = [
            &[0x07],                               // uint
            &[0x39, 0x01, 0x00],                   // negative int
            &[0x43, 1, 2, 3],                      // bytes
            &[0x62, b'h', b'i'],                   // text
            &[0x82, 0x01, 0x81, 0x02],             // nested arrays
            &[0xa1, 0x01, 0x82, 0x02, 0x03],       // map
            &[0xc1, 0x1a, 0, 0, 0, 1],             // tag
            &[0xf5],                               // true
            &[0xfb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0], // float 1.0
        ];
        for e in later {
            assert_eq!(Params::decode(&with_extra(&[e])), Ok(p), "{e:02x?}");
        }
        assert_eq!(Params::decode(&with_extra(&later[..3])), Ok(p));
        // But they must be whole, well-formed and of definite length.
        for e in [
            &[][..],                                                 // missing
            &[0x43, 1, 2],                                           // truncated bytes
            &[0x82, 0x01],                                           // truncated array
            &[0x9f, 0x01, 0xff],                                     // indefinite array
            &[0xbf, 0xff],                                           // indefinite map
            &[0x5f, 0x41, 0x00, 0xff],                               // indefinite bytes
            &[0x62, 0xff, 0xfe],                                     // text that is not UTF-8
            &[0xff],                                                 // a lone break
            &[0x1c],                                                 // reserved additional info
            &[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // huge array
        ] {
            assert_eq!(
                Params::decode(&with_extra(&[e])),
                Err(ParamsError::Malformed),
                "{e:02x?}"
            );
        }
        // An element count beyond what the bytes could hold fails fast.
        let mut huge = with_extra(&[]);
        huge[0] = 0x9b;
        huge.splice(1..1, [0xff; 8]);
        assert_eq!(Params::decode(&huge), Err(ParamsError::Malformed));
    }

    #[test]
    fn garbage_and_nonsense_are_refused() {
        assert_eq!(Params::decode(&[]), Err(ParamsError::Malformed));
        assert_eq!(
            Params::decode(&[0x83, 1, 2, 3]),
            Err(ParamsError::Malformed)
        );
        let p = Params {
            max_packet_size: 100,
            ..Params::from_config(&Config::service())
        };
        let mut out = [0u8; MAX_PARAMS_LEN];
        let n = p.encode(&mut out);
        assert_eq!(Params::decode(&out[..n]), Err(ParamsError::OutOfRange));
    }
}
