//! The ACK frame: decoding, range iteration and range-limited encoding.
//!
//! `[2, ack_delay, largest, first_range, *(gap, range_len)]` with the range
//! semantics of RFC 9000 §19.3.1: the first range is
//! `[largest - first_range, largest]`; each `(gap, range_len)` pair starts
//! `gap + 2` below the previous range's smallest packet number and covers
//! `range_len + 1` packets downward.

use minicbor::{Decoder, Encoder};

use super::FrameError;
use super::cbor::{self, head_len, put_head};
use super::frame_type;

/// Most ranges one ACK frame may carry, the first range included. A frame
/// with more is refused with [`FrameError::TooManyAckRanges`].
pub const MAX_ACK_RANGES: usize = 64;

/// Array elements before the `(gap, range_len)` pairs: type, ack_delay,
/// largest, first_range.
const FIXED_ITEMS: u64 = 4;

/// A decoded ACK frame.
///
/// Its ranges were checked when it was decoded (none reaches below packet
/// number 0, there are at most [`MAX_ACK_RANGES`]), so iterating them cannot
/// fail. It keeps the encoded pairs and reads them again on demand, so it is
/// small and `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckFrame<'a> {
    /// ACK delay: microseconds between receiving the largest acknowledged
    /// packet and sending this frame.
    pub delay_us: u64,
    largest: u64,
    first_range: u64,
    /// Number of `(gap, range_len)` pairs in `pairs`.
    extra: usize,
    /// The encoded pairs, validated and in shortest form.
    pairs: &'a [u8],
}

impl<'a> AckFrame<'a> {
    /// The largest packet number acknowledged.
    pub fn largest(&self) -> u64 {
        self.largest
    }

    /// Number of ranges, at least 1 and at most [`MAX_ACK_RANGES`].
    pub fn range_count(&self) -> usize {
        self.extra + 1
    }

    /// The acknowledged ranges as inclusive `(smallest, largest)` pairs,
    /// newest (highest) first.
    pub fn ranges(&self) -> AckRangeIter<'a> {
        // Decoding checked first_range <= largest; saturating keeps even a
        // broken invariant from panicking.
        let smallest = self.largest.saturating_sub(self.first_range);
        AckRangeIter {
            first: Some((smallest, self.largest)),
            pairs: Decoder::new(self.pairs),
            remaining: self.extra,
            smallest,
        }
    }

    /// Number of elements of the frame's array.
    fn items(&self) -> u64 {
        // `extra` is at most 63, so the widening is exact.
        FIXED_ITEMS + 2 * (self.extra as u64)
    }

    /// Encoded length of this frame.
    pub(crate) fn encoded_len(&self) -> usize {
        head_len(self.items())
            + head_len(frame_type::ACK)
            + head_len(self.delay_us)
            + head_len(self.largest)
            + head_len(self.first_range)
            + self.pairs.len()
    }

    /// Writes the frame; `out` is exactly [`encoded_len`](Self::encoded_len)
    /// long.
    pub(crate) fn write(&self, out: &mut [u8]) -> Result<(), FrameError> {
        let mut e = Encoder::new(out);
        let written = e
            .array(self.items())
            .and_then(|e| e.u64(frame_type::ACK))
            .and_then(|e| e.u64(self.delay_us))
            .and_then(|e| e.u64(self.largest))
            .and_then(|e| e.u64(self.first_range))
            .is_ok();
        let rest = e.into_writer();
        if !written || rest.len() != self.pairs.len() {
            return Err(FrameError::BufferTooSmall {
                needed: self.encoded_len(),
            });
        }
        rest.copy_from_slice(self.pairs);
        Ok(())
    }

    /// An ACK frame at `input[pos..]` in the form senders write (a
    /// one-byte array head, shortest heads throughout), decoded without
    /// minicbor: the frame and the position after it. `None` for anything
    /// else, which the general decoder then handles (and accepts or
    /// rejects as it always did): this accepts a subset of what
    /// [`decode`](Self::decode) accepts, with the same result.
    #[inline]
    pub(crate) fn decode_fast(input: &'a [u8], pos: usize) -> Option<(Self, usize)> {
        let [head, ty] = *input.get(pos..pos.checked_add(2)?)? else {
            return None;
        };
        // array(4..=23) (one-byte heads only), type 2.
        let items = u64::from(head & 0x1f);
        if head >> 5 != 4 || !(FIXED_ITEMS..24).contains(&items) || u64::from(ty) != frame_type::ACK
        {
            return None;
        }
        let extra_items = items - FIXED_ITEMS;
        if !extra_items.is_multiple_of(2) {
            return None;
        }
        // At most 9 pairs: below MAX_ACK_RANGES.
        let extra = (extra_items / 2) as usize;
        let mut at = pos + 2;
        let (delay_us, n) = cbor::shortest_head(input, at, 0)?;
        at += n;
        let (largest, n) = cbor::shortest_head(input, at, 0)?;
        at += n;
        let (first_range, n) = cbor::shortest_head(input, at, 0)?;
        at += n;
        let mut smallest = largest.checked_sub(first_range)?;
        let start = at;
        for _ in 0..extra {
            let (gap, n) = cbor::shortest_head(input, at, 0)?;
            at += n;
            let (range_len, n) = cbor::shortest_head(input, at, 0)?;
            at += n;
            smallest = next_range(smallest, gap, range_len)?.0;
        }
        Some((
            AckFrame {
                delay_us,
                largest,
                first_range,
                extra,
                pairs: input.get(start..at)?,
            },
            at,
        ))
    }

    /// Decodes the rest of an ACK whose array head said `items` elements and
    /// whose type number has been read.
    pub(crate) fn decode(d: &mut Decoder<'a>, items: u64) -> Result<Self, FrameError> {
        let extra_items = items
            .checked_sub(FIXED_ITEMS)
            .ok_or(FrameError::Malformed)?;
        if extra_items % 2 != 0 {
            return Err(FrameError::Malformed);
        }
        let extra = extra_items / 2;
        // `extra + 1` ranges in all; compare in u64 before any narrowing.
        if extra >= MAX_ACK_RANGES as u64 {
            return Err(FrameError::TooManyAckRanges);
        }
        let extra = usize::try_from(extra).map_err(|_| FrameError::TooManyAckRanges)?;
        let delay_us = cbor::uint(d)?;
        let largest = cbor::uint(d)?;
        let first_range = cbor::uint(d)?;
        let mut smallest = largest
            .checked_sub(first_range)
            .ok_or(FrameError::Malformed)?;
        let start = d.position();
        for _ in 0..extra {
            let gap = cbor::uint(d)?;
            let range_len = cbor::uint(d)?;
            smallest = next_range(smallest, gap, range_len)
                .ok_or(FrameError::Malformed)?
                .0;
        }
        let pairs = d
            .input()
            .get(start..d.position())
            .ok_or(FrameError::Malformed)?;
        Ok(AckFrame {
            delay_us,
            largest,
            first_range,
            extra,
            pairs,
        })
    }
}

/// The range after one whose smallest packet number is `smallest`, as
/// `(smallest, largest)`; `None` if it would reach below packet number 0.
fn next_range(smallest: u64, gap: u64, range_len: u64) -> Option<(u64, u64)> {
    let largest = smallest.checked_sub(gap)?.checked_sub(2)?;
    Some((largest.checked_sub(range_len)?, largest))
}

/// Iterator over an [`AckFrame`]'s ranges: inclusive `(smallest, largest)`
/// pairs in descending order.
#[derive(Debug, Clone)]
pub struct AckRangeIter<'a> {
    first: Option<(u64, u64)>,
    pairs: Decoder<'a>,
    remaining: usize,
    smallest: u64,
}

impl Iterator for AckRangeIter<'_> {
    type Item = (u64, u64);

    fn next(&mut self) -> Option<(u64, u64)> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        if self.remaining == 0 {
            return None;
        }
        // The pairs were validated when the frame was decoded, so none of
        // this fails; if it somehow did, the iterator just ends.
        let range = cbor::uint(&mut self.pairs)
            .ok()
            .zip(cbor::uint(&mut self.pairs).ok())
            .and_then(|(gap, len)| next_range(self.smallest, gap, len));
        match range {
            Some(r) => {
                self.remaining -= 1;
                self.smallest = r.0;
                Some(r)
            }
            None => {
                self.remaining = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.remaining + usize::from(self.first.is_some());
        (n, Some(n))
    }
}

impl ExactSizeIterator for AckRangeIter<'_> {}
impl core::iter::FusedIterator for AckRangeIter<'_> {}

/// [`encode_ack`] of the single range `[smallest, largest]` (the common
/// acknowledgement of in-order packets), without the iterator and the
/// room checks for further ranges: the same bytes and the same errors.
#[inline]
pub(crate) fn encode_ack_one(
    delay_us: u64,
    smallest: u64,
    largest: u64,
    out: &mut [u8],
) -> Result<usize, FrameError> {
    let first_range = largest
        .checked_sub(smallest)
        .ok_or(FrameError::InvalidAckRanges)?;
    let needed = 2 + head_len(delay_us) + head_len(largest) + head_len(first_range);
    let Some(o) = out.get_mut(..needed) else {
        return Err(FrameError::BufferTooSmall { needed });
    };
    // array(4), type 2: one byte each.
    o[0] = 0x84;
    o[1] = frame_type::ACK as u8;
    let mut at = 2;
    for v in [delay_us, largest, first_range] {
        at += put_head(&mut o[at..], 0, v).ok_or(FrameError::BufferTooSmall { needed })?;
    }
    Ok(at)
}

/// Encodes an ACK frame into `out` and returns the bytes written.
///
/// `ranges` are inclusive `(smallest, largest)` pairs, strictly descending,
/// with at least one packet number between consecutive ranges (so no two
/// overlap or touch). As many ranges as fit in `out` and in `max_ranges`
/// (itself capped at [`MAX_ACK_RANGES`]) are encoded, newest first; the
/// iterator is not read past the first range left out. The frame never
/// exceeds `out.len()`.
///
/// # Errors
///
/// - [`FrameError::BufferTooSmall`] if not even the first range fits;
///   `needed` is the exact size of an ACK with that one range, and nothing
///   was written.
/// - [`FrameError::InvalidAckRanges`] if `ranges` is empty, `max_ranges` is
///   0, or a range read is inverted or out of order; `out` may then hold
///   partial output.
pub fn encode_ack<I>(
    delay_us: u64,
    ranges: I,
    max_ranges: usize,
    out: &mut [u8],
) -> Result<usize, FrameError>
where
    I: IntoIterator<Item = (u64, u64)>,
{
    let max_ranges = max_ranges.min(MAX_ACK_RANGES);
    if max_ranges == 0 {
        return Err(FrameError::InvalidAckRanges);
    }
    let mut ranges = ranges.into_iter();
    let (first_smallest, largest) = ranges.next().ok_or(FrameError::InvalidAckRanges)?;
    let first_range = largest
        .checked_sub(first_smallest)
        .ok_or(FrameError::InvalidAckRanges)?;

    // Layout: array head (1 or 2 bytes, growing as pairs are added), then
    // the body: type, delay, largest, first_range, pairs.
    let mut head = head_len(FIXED_ITEMS);
    let mut body =
        head_len(frame_type::ACK) + head_len(delay_us) + head_len(largest) + head_len(first_range);
    let needed = head + body;
    let Some(fixed) = out.get_mut(head..needed) else {
        return Err(FrameError::BufferTooSmall { needed });
    };
    let mut at = 0;
    for v in [frame_type::ACK, delay_us, largest, first_range] {
        at += put_head(&mut fixed[at..], 0, v).ok_or(FrameError::BufferTooSmall { needed })?;
    }

    let mut extra: u64 = 0;
    let mut smallest = first_smallest;
    for _ in 1..max_ranges {
        let Some((next_smallest, next_largest)) = ranges.next() else {
            break;
        };
        let range_len = next_largest
            .checked_sub(next_smallest)
            .ok_or(FrameError::InvalidAckRanges)?;
        let gap = smallest
            .checked_sub(next_largest)
            .and_then(|d| d.checked_sub(2))
            .ok_or(FrameError::InvalidAckRanges)?;
        let pair = head_len(gap) + head_len(range_len);
        let new_head = head_len(FIXED_ITEMS + 2 * (extra + 1));
        if new_head + body + pair > out.len() {
            break;
        }
        if new_head != head {
            out.copy_within(head..head + body, new_head);
            head = new_head;
        }
        let at = head + body;
        let slot = out
            .get_mut(at..at + pair)
            .ok_or(FrameError::BufferTooSmall { needed })?;
        let n = put_head(slot, 0, gap).ok_or(FrameError::BufferTooSmall { needed })?;
        put_head(&mut slot[n..], 0, range_len).ok_or(FrameError::BufferTooSmall { needed })?;
        body += pair;
        extra += 1;
        smallest = next_smallest;
    }

    let slot = out
        .get_mut(..head)
        .ok_or(FrameError::BufferTooSmall { needed })?;
    put_head(slot, 4, FIXED_ITEMS + 2 * extra).ok_or(FrameError::BufferTooSmall { needed })?;
    Ok(head + body)
}
