//! Decoding a packet's plaintext into frames.

use core::iter::FusedIterator;

use minicbor::Decoder;

use super::cbor::{self, shortest_head};
use super::frame_type as ty;
use super::{AckFrame, CloseFrame, Frame, FrameError, MAX_CLOSE_REASON_LEN, MessageFrame};

/// Iterator over the frames of a plaintext, yielding each frame or the first
/// error, after which it yields `None`.
///
/// A packet with any error must be discarded whole, so a receiver that acts
/// on frames as they come must first run the iterator to its end; see
/// [`decode_all`], which does that.
#[derive(Debug, Clone)]
pub struct FrameDecoder<'a> {
    dec: Decoder<'a>,
    done: bool,
}

impl<'a> FrameDecoder<'a> {
    /// A decoder over `plaintext`, a CBOR sequence of frames.
    pub fn new(plaintext: &'a [u8]) -> Self {
        FrameDecoder {
            dec: Decoder::new(plaintext),
            done: false,
        }
    }

    /// Offset in the plaintext of the next frame, or, after an error, of the
    /// frame that failed.
    pub fn position(&self) -> usize {
        self.dec.position()
    }
}

impl<'a> Iterator for FrameDecoder<'a> {
    type Item = Result<Frame<'a>, FrameError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.dec.position() >= self.dec.input().len() {
            self.done = true;
            return None;
        }
        let start = self.dec.position();
        match decode_frame(&mut self.dec) {
            Ok(frame) => Some(Ok(frame)),
            Err(e) => {
                self.done = true;
                self.dec.set_position(start);
                Some(Err(e))
            }
        }
    }
}

impl FusedIterator for FrameDecoder<'_> {}

/// Checks every frame of `plaintext`, then returns an iterator over them
/// that cannot fail.
///
/// An empty plaintext holds no frames and is accepted here; whether a packet
/// may be empty is for the packet layer to say.
///
/// # Errors
///
/// The first frame error. The packet must then be discarded whole.
pub fn decode_all(plaintext: &[u8]) -> Result<Frames<'_>, FrameError> {
    let mut count = 0;
    let mut ack_eliciting = false;
    for frame in FrameDecoder::new(plaintext) {
        let frame = frame?;
        count += 1;
        ack_eliciting |= frame.is_ack_eliciting();
    }
    Ok(Frames {
        inner: FrameDecoder::new(plaintext),
        remaining: count,
        ack_eliciting,
    })
}

/// The frames of a plaintext that [`decode_all`] checked.
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    inner: FrameDecoder<'a>,
    remaining: usize,
    ack_eliciting: bool,
}

impl Frames<'_> {
    /// Whether any frame is ack-eliciting (anything but PADDING and ACK), so
    /// the packet must be acknowledged.
    pub fn is_ack_eliciting(&self) -> bool {
        self.ack_eliciting
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Frame<'a>;

    fn next(&mut self) -> Option<Frame<'a>> {
        // The frames were checked already, so `inner` yields no error; if it
        // somehow did, iteration just ends.
        match self.inner.next() {
            Some(Ok(frame)) => {
                self.remaining = self.remaining.saturating_sub(1);
                Some(frame)
            }
            _ => {
                self.remaining = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Frames<'_> {}
impl FusedIterator for Frames<'_> {}

/// Fails unless the frame array has exactly `expected` elements.
fn expect_items(items: u64, expected: u64) -> Result<(), FrameError> {
    if items == expected {
        Ok(())
    } else {
        Err(FrameError::Malformed)
    }
}

/// A MESSAGE frame at `input[pos..]` in the exact form senders write
/// (shortest heads throughout), decoded without minicbor: the frame and
/// the position after it. `None` for anything else, which the general
/// decoder then handles (and accepts or rejects as it always did): this
/// accepts a subset of what it accepts, with the same result.
#[inline]
fn message_fast(input: &[u8], pos: usize) -> Option<(MessageFrame<'_>, usize)> {
    // array(5), type 3
    if input.get(pos..pos + 2)? != [0x85, ty::MESSAGE as u8] {
        return None;
    }
    let mut at = pos + 2;
    let (channel, n) = shortest_head(input, at, 0)?;
    let channel = u32::try_from(channel).ok()?;
    at += n;
    let (offset, n) = shortest_head(input, at, 0)?;
    at += n;
    let fin = match *input.get(at)? {
        0xf4 => false,
        0xf5 => true,
        _ => return None,
    };
    at += 1;
    let (len, n) = shortest_head(input, at, 2)?;
    at += n;
    let len = usize::try_from(len).ok()?;
    let data = input.get(at..at.checked_add(len)?)?;
    offset.checked_add(u64::try_from(len).ok()?)?;
    Some((
        MessageFrame {
            channel,
            offset,
            fin,
            data,
        },
        at + len,
    ))
}

/// Decodes one frame at the decoder's position.
fn decode_frame<'a>(d: &mut Decoder<'a>) -> Result<Frame<'a>, FrameError> {
    if let Some((m, end)) = message_fast(d.input(), d.position()) {
        d.set_position(end);
        return Ok(Frame::Message(m));
    }
    if let Some((a, end)) = AckFrame::decode_fast(d.input(), d.position()) {
        d.set_position(end);
        return Ok(Frame::Ack(a));
    }
    decode_general(d)
}

/// [`decode_frame`] without the MESSAGE fast path: every frame type, every
/// check.
fn decode_general<'a>(d: &mut Decoder<'a>) -> Result<Frame<'a>, FrameError> {
    let initial = *d.input().get(d.position()).ok_or(FrameError::Truncated)?;
    if initial == 0x00 {
        d.set_position(d.position() + 1);
        return Ok(Frame::Padding);
    }
    // Anything else must be an array (major type 4) starting with a type.
    if initial >> 5 != 4 {
        return Err(FrameError::Malformed);
    }
    let items = cbor::array(d)?;
    if items == 0 {
        return Err(FrameError::Malformed);
    }
    let frame_type = cbor::uint(d)?;
    let frame = match frame_type {
        ty::PING => {
            expect_items(items, 1)?;
            Frame::Ping
        }
        ty::ACK => Frame::Ack(AckFrame::decode(d, items)?),
        ty::MESSAGE => {
            expect_items(items, 5)?;
            let channel = cbor::uint32(d)?;
            let offset = cbor::uint(d)?;
            let fin = cbor::boolean(d)?;
            let data = cbor::bytes(d)?;
            let len = u64::try_from(data.len()).map_err(|_| FrameError::Malformed)?;
            // The fragment must end at a representable offset.
            if offset.checked_add(len).is_none() {
                return Err(FrameError::Malformed);
            }
            Frame::Message(MessageFrame {
                channel,
                offset,
                fin,
                data,
            })
        }
        ty::DATAGRAM => {
            expect_items(items, 2)?;
            Frame::Datagram(cbor::bytes(d)?)
        }
        ty::CLOSE => {
            expect_items(items, 3)?;
            let code = cbor::uint32(d)?;
            let reason = cbor::text(d)?;
            if reason.len() > MAX_CLOSE_REASON_LEN {
                return Err(FrameError::Malformed);
            }
            Frame::Close(CloseFrame { code, reason })
        }
        ty::MAX_DATA => {
            expect_items(items, 2)?;
            Frame::MaxData(cbor::uint(d)?)
        }
        ty::MAX_CHANNEL_DATA => {
            expect_items(items, 3)?;
            let channel = cbor::uint32(d)?;
            let max = cbor::uint(d)?;
            Frame::MaxChannelData { channel, max }
        }
        ty::DATA_BLOCKED => {
            expect_items(items, 2)?;
            Frame::DataBlocked(cbor::uint(d)?)
        }
        ty::CHANNEL_BLOCKED => {
            expect_items(items, 3)?;
            let channel = cbor::uint32(d)?;
            let limit = cbor::uint(d)?;
            Frame::ChannelBlocked { channel, limit }
        }
        // PADDING is the bare integer 0, never an array.
        ty::PADDING => return Err(FrameError::Malformed),
        other => return Err(FrameError::UnknownFrame(other)),
    };
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec;

    /// Whatever the fast path accepts, the general decoder accepts too,
    /// with the same frame and the same end.
    fn agrees(input: &[u8]) -> Result<(), TestCaseError> {
        if let Some((m, end)) = message_fast(input, 0) {
            let mut d = Decoder::new(input);
            prop_assert_eq!(decode_general(&mut d), Ok(Frame::Message(m)));
            prop_assert_eq!(d.position(), end);
        }
        Ok(())
    }

    /// Whatever the ACK fast path accepts, the general decoder accepts
    /// too, with the same frame and the same end.
    fn ack_agrees(input: &[u8]) -> Result<(), TestCaseError> {
        if let Some((a, end)) = AckFrame::decode_fast(input, 0) {
            let mut d = Decoder::new(input);
            prop_assert_eq!(decode_general(&mut d), Ok(Frame::Ack(a)));
            prop_assert_eq!(d.position(), end);
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn ack_fast_path_agrees(
            head in prop_oneof![0x80u8..0xa0, Just(0x98), Just(0x84), Just(0x86), Just(0x88)],
            tail in proptest::collection::vec(any::<u8>(), 0..40),
            heads in proptest::collection::vec(
                prop_oneof![Just(0x00u8), Just(0x17), Just(0x18), Just(0x19), Just(0x1a),
                            Just(0x1b), Just(0x1c), Just(0x1f), Just(0x20), any::<u8>()],
                0..12),
        ) {
            // Frames that start like an ACK, with heads of every width
            // (shortest or not) and arbitrary bytes after them.
            let mut input = vec![head, 0x02];
            for (h, t) in heads.iter().zip(tail.chunks(2)) {
                input.push(*h);
                input.extend_from_slice(t);
            }
            input.extend_from_slice(&tail);
            ack_agrees(&input)?;
            for cut in 0..input.len() {
                ack_agrees(&input[..cut])?;
            }
        }

        #[test]
        fn well_formed_acks_take_the_fast_path(
            delay in prop_oneof![0..30u64, any::<u64>()],
            top in prop_oneof![0..100u64, 0..70_000u64, any::<u64>()],
            steps in proptest::collection::vec((0..40u64, 0..40u64), 0..10),
        ) {
            // Descending, non-touching inclusive ranges from `top` down.
            let mut ranges = vec![];
            let mut hi = top;
            for (len, gap) in steps {
                let Some(lo) = hi.checked_sub(len) else { break };
                ranges.push((lo, hi));
                let Some(next) = lo.checked_sub(gap + 2) else { break };
                hi = next;
            }
            if ranges.is_empty() {
                ranges.push((top, top));
            }
            let mut buf = vec![0u8; 200];
            let n = super::super::encode_ack(delay, ranges.iter().copied(), 64, &mut buf)
                .expect("fits");
            let mut d = Decoder::new(&buf[..n]);
            let general = decode_general(&mut d);
            // Up to 9 pairs fit a one-byte array head: the fast path.
            let (a, end) = AckFrame::decode_fast(&buf[..n], 0).expect("fast path");
            prop_assert_eq!(general, Ok(Frame::Ack(a)));
            prop_assert_eq!(end, n);
            prop_assert_eq!(a.ranges().collect::<std::vec::Vec<_>>(), ranges);
            ack_agrees(&buf[..n])?;
        }

        #[test]
        fn one_range_acks_encode_as_encode_ack_does(
            delay in prop_oneof![0..30u64, any::<u64>()],
            largest in prop_oneof![0..100u64, 0..70_000u64, any::<u64>()],
            width in prop_oneof![0..30u64, any::<u64>()],
            room in 0usize..40,
        ) {
            // Inverted ranges too (`largest` below `smallest`): refused alike.
            let smallest = largest.wrapping_sub(width);
            let (mut a, mut b) = ([0u8; 40], [0u8; 40]);
            let fast = super::super::ack::encode_ack_one(delay, smallest, largest, &mut a[..room]);
            let general =
                super::super::encode_ack(delay, [(smallest, largest)], 32, &mut b[..room]);
            prop_assert_eq!(fast, general);
            if let Ok(n) = fast {
                prop_assert_eq!(&a[..n], &b[..n]);
            }
        }

        #[test]
        fn message_fast_path_agrees(
            tail in proptest::collection::vec(any::<u8>(), 0..40),
            heads in proptest::collection::vec(
                prop_oneof![Just(0x18u8), Just(0x19), Just(0x1a), Just(0x1b), Just(0x1c),
                            Just(0x1f), Just(0x40), Just(0x58), Just(0x59), Just(0x5f),
                            Just(0xf4), Just(0xf5), Just(0xf6), any::<u8>()],
                0..6),
        ) {
            // Frames that start like a MESSAGE frame, with heads of every
            // width (shortest or not) and arbitrary bytes after them.
            let mut input = vec![0x85, 0x03];
            for (h, t) in heads.iter().zip(tail.chunks(3)) {
                input.push(*h);
                input.extend_from_slice(t);
            }
            input.extend_from_slice(&tail);
            agrees(&input)?;
            for cut in 0..input.len() {
                agrees(&input[..cut])?;
            }
        }

        #[test]
        fn well_formed_messages_take_the_fast_path(
            channel in any::<u32>(),
            offset in prop_oneof![0..30u64, 0..300u64, 0..70_000u64, any::<u64>()],
            fin in any::<bool>(),
            data in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let f = Frame::Message(MessageFrame { channel, offset, fin, data: &data });
            let mut buf = vec![0u8; 400];
            let Ok(n) = f.encode(&mut buf) else {
                return Ok(());
            };
            if offset.checked_add(data.len() as u64).is_none() {
                prop_assert!(message_fast(&buf[..n], 0).is_none());
                return Ok(());
            }
            let (m, end) = message_fast(&buf[..n], 0).expect("fast path");
            prop_assert_eq!(Frame::Message(m), f);
            prop_assert_eq!(end, n);
            agrees(&buf[..n])?;
        }
    }
}
