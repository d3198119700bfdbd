//! Encoding frames into a caller's slice, and the size arithmetic a sender
//! needs to fill a packet.

use minicbor::Encoder;
use minicbor::encode::write::EndOfSlice;

use super::cbor::{head_len, len_head_len};
use super::frame_type as ty;
use super::{Frame, FrameError, MAX_CLOSE_REASON_LEN};

/// Array head, type number, channel, offset and `fin` of a MESSAGE frame:
/// everything before the data's byte-string head.
fn message_fixed(channel: u32, offset: u64) -> usize {
    head_len(5) + head_len(ty::MESSAGE) + head_len(u64::from(channel)) + head_len(offset) + 1
}

/// Bytes a MESSAGE frame spends on everything but its data: the array head,
/// type, channel, offset, `fin` and the data's byte-string head. The whole
/// frame is `message_overhead(..) + data_len` bytes.
///
/// `fin` is one byte either way; it is a parameter so callers need not know.
pub fn message_overhead(channel: u32, offset: u64, data_len: usize, fin: bool) -> usize {
    let _ = fin;
    message_fixed(channel, offset) + len_head_len(data_len)
}

/// The largest data length whose whole MESSAGE frame fits in `space` bytes.
///
/// Returns 0 both when only an empty MESSAGE fits and when none does; check
/// `message_overhead(channel, offset, 0, fin) <= space` to tell them apart.
/// The answer accounts for the byte-string head growing at 24, 256 and 65536
/// bytes of data, so a frame of the returned length always fits and one a
/// byte longer never does.
pub fn max_message_data(channel: u32, offset: u64, space: usize, fin: bool) -> usize {
    let _ = fin;
    max_bstr_content(space.saturating_sub(message_fixed(channel, offset)))
}

/// Bytes a DATAGRAM frame spends on everything but its data.
pub fn datagram_overhead(data_len: usize) -> usize {
    head_len(2) + head_len(ty::DATAGRAM) + len_head_len(data_len)
}

/// The largest datagram whose whole DATAGRAM frame fits in `space` bytes
/// (0 also when none fits; compare `datagram_overhead(0)` with `space`).
pub fn max_datagram_data(space: usize) -> usize {
    max_bstr_content(space.saturating_sub(head_len(2) + head_len(ty::DATAGRAM)))
}

/// The largest `n` with `head_len(n) + n <= avail`, or 0 if there is none.
fn max_bstr_content(avail: usize) -> usize {
    // For each head size h, every n up to the largest length h can describe
    // and up to avail - h fits; the answer is the best of these candidates.
    const HEADS: [(usize, u64); 5] = [
        (1, 23),
        (2, 0xff),
        (3, 0xffff),
        (5, 0xffff_ffff),
        (9, u64::MAX),
    ];
    HEADS
        .iter()
        .filter_map(|&(head, cap)| {
            let n = avail.checked_sub(head)?;
            Some(n.min(usize::try_from(cap).unwrap_or(usize::MAX)))
        })
        .max()
        .unwrap_or(0)
}

impl Frame<'_> {
    /// Exact length of this frame's encoding.
    pub fn encoded_len(&self) -> usize {
        match self {
            Frame::Padding => 1,
            Frame::Ping => head_len(1) + head_len(ty::PING),
            Frame::Ack(ack) => ack.encoded_len(),
            Frame::Message(m) => {
                message_overhead(m.channel, m.offset, m.data.len(), m.fin) + m.data.len()
            }
            Frame::Datagram(data) => datagram_overhead(data.len()) + data.len(),
            Frame::Close(c) => {
                head_len(3)
                    + head_len(ty::CLOSE)
                    + head_len(u64::from(c.code))
                    + len_head_len(c.reason.len())
                    + c.reason.len()
            }
            Frame::MaxData(v) | Frame::DataBlocked(v) => head_len(2) + 1 + head_len(*v),
            Frame::MaxChannelData { channel, max: v }
            | Frame::ChannelBlocked { channel, limit: v } => {
                head_len(3) + 1 + head_len(u64::from(*channel)) + head_len(*v)
            }
        }
    }

    /// Encodes this frame at the start of `out` and returns its length,
    /// [`encoded_len`](Self::encoded_len).
    ///
    /// # Errors
    ///
    /// - [`FrameError::BufferTooSmall`] with the exact length needed if `out`
    ///   is shorter; `out` is left untouched.
    /// - [`FrameError::ReasonTooLong`] for a CLOSE reason over
    ///   [`MAX_CLOSE_REASON_LEN`] bytes, [`FrameError::OffsetOverflow`] for a
    ///   MESSAGE whose end offset exceeds `u64::MAX`: frames a receiver would
    ///   refuse are not encoded. `out` is left untouched.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, FrameError> {
        self.check()?;
        let needed = self.encoded_len();
        let Some(buf) = out.get_mut(..needed) else {
            return Err(FrameError::BufferTooSmall { needed });
        };
        if let Frame::Ack(ack) = self {
            ack.write(buf)?;
            return Ok(needed);
        }
        let mut e = Encoder::new(&mut *buf);
        match self.write(&mut e) {
            Ok(()) if e.writer().is_empty() => Ok(needed),
            // Unreachable: `encoded_len` is exact.
            _ => Err(FrameError::BufferTooSmall { needed }),
        }
    }

    /// Refuses frames that break a rule the decoder enforces.
    fn check(&self) -> Result<(), FrameError> {
        match self {
            Frame::Close(c) if c.reason.len() > MAX_CLOSE_REASON_LEN => {
                Err(FrameError::ReasonTooLong)
            }
            Frame::Message(m)
                if u64::try_from(m.data.len())
                    .ok()
                    .and_then(|len| m.offset.checked_add(len))
                    .is_none() =>
            {
                Err(FrameError::OffsetOverflow)
            }
            _ => Ok(()),
        }
    }

    /// Writes every frame but ACK.
    fn write(&self, e: &mut Encoder<&mut [u8]>) -> Result<(), minicbor::encode::Error<EndOfSlice>> {
        match self {
            Frame::Padding => {
                e.u8(0)?;
            }
            Frame::Ping => {
                e.array(1)?.u64(ty::PING)?;
            }
            // Written by `AckFrame::write`.
            Frame::Ack(_) => {}
            Frame::Message(m) => {
                e.array(5)?
                    .u64(ty::MESSAGE)?
                    .u32(m.channel)?
                    .u64(m.offset)?
                    .bool(m.fin)?
                    .bytes(m.data)?;
            }
            Frame::Datagram(data) => {
                e.array(2)?.u64(ty::DATAGRAM)?.bytes(data)?;
            }
            Frame::Close(c) => {
                e.array(3)?.u64(ty::CLOSE)?.u32(c.code)?.str(c.reason)?;
            }
            Frame::MaxData(max) => {
                e.array(2)?.u64(ty::MAX_DATA)?.u64(*max)?;
            }
            Frame::MaxChannelData { channel, max } => {
                e.array(3)?
                    .u64(ty::MAX_CHANNEL_DATA)?
                    .u32(*channel)?
                    .u64(*max)?;
            }
            Frame::DataBlocked(limit) => {
                e.array(2)?.u64(ty::DATA_BLOCKED)?.u64(*limit)?;
            }
            Frame::ChannelBlocked { channel, limit } => {
                e.array(3)?
                    .u64(ty::CHANNEL_BLOCKED)?
                    .u32(*channel)?
                    .u64(*limit)?;
            }
        }
        Ok(())
    }
}
