//! Handshake parameters: what each side tells the other in its handshake
//! payload, as a CBOR array (see `spec/handshake.md`).

use crate::config::Config;
use crate::packet::VERSION;
use core::time::Duration;
use minicbor::Decoder;

/// Feature bit: unreliable datagrams accepted.
pub const FEATURE_DATAGRAMS: u32 = 1;

/// Encoded size bound of [`Params`].
pub const MAX_PARAMS_LEN: usize = 64;

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

    /// Decodes and validates. Extra trailing array elements (from a later
    /// minor revision) are ignored.
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
            || p.idle_timeout_ms == 0
            || p.max_message_size > p.channel_window
        {
            return Err(ParamsError::OutOfRange);
        }
        Ok(p)
    }
}

/// Writes a CBOR head of major type `major` with argument `v` in its
/// shortest form.
fn head(out: &mut [u8], major: u8, v: u64) -> usize {
    let m = major << 5;
    if v < 24 {
        out[0] = m | v as u8;
        1
    } else if v <= 0xff {
        out[0] = m | 24;
        out[1] = v as u8;
        2
    } else if v <= 0xffff {
        out[0] = m | 25;
        out[1..3].copy_from_slice(&(v as u16).to_be_bytes());
        3
    } else if v <= 0xffff_ffff {
        out[0] = m | 26;
        out[1..5].copy_from_slice(&(v as u32).to_be_bytes());
        5
    } else {
        out[0] = m | 27;
        out[1..9].copy_from_slice(&v.to_be_bytes());
        9
    }
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
