//! The strict CBOR subset frames use, on top of `minicbor`.
//!
//! minicbor accepts any argument width; frames accept only the shortest
//! ("preferred", RFC 8949 §4.1) one, so every frame has exactly one encoding
//! and lengths computed for sending are exact. Each reader here checks that
//! and maps minicbor's errors onto [`FrameError`].

use minicbor::Decoder;
use minicbor::decode::Error as CborError;

use super::FrameError;

/// Length of a CBOR head (initial byte plus argument) carrying `v`.
pub(crate) const fn head_len(v: u64) -> usize {
    match v {
        0..=23 => 1,
        24..=0xff => 2,
        0x100..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

/// [`head_len`] for a length held in a `usize`.
pub(crate) const fn len_head_len(len: usize) -> usize {
    // usize is at most 64 bits on every target Rust supports, so this widens.
    head_len(len as u64)
}

/// End of input means [`FrameError::Truncated`]; anything else minicbor
/// refuses (wrong type, tag, indefinite length, bad UTF-8, overflow) is
/// [`FrameError::Malformed`].
fn map_err(e: CborError) -> FrameError {
    if e.is_end_of_input() {
        FrameError::Truncated
    } else {
        FrameError::Malformed
    }
}

/// Writes the shortest-form head of major type `major` carrying `v` at the
/// start of `out`; its length, or `None` if `out` is too short. (By hand:
/// minicbor's encoder cost several times as much per head, on every
/// packet that carries an ACK.)
#[inline]
pub(crate) fn put_head(out: &mut [u8], major: u8, v: u64) -> Option<usize> {
    let m = major << 5;
    let n = head_len(v);
    let o = out.get_mut(..n)?;
    match n {
        1 => o[0] = m | v as u8,
        2 => {
            o[0] = m | 24;
            o[1] = v as u8;
        }
        3 => {
            o[0] = m | 25;
            o[1..].copy_from_slice(&(v as u16).to_be_bytes());
        }
        5 => {
            o[0] = m | 26;
            o[1..].copy_from_slice(&(v as u32).to_be_bytes());
        }
        _ => {
            o[0] = m | 27;
            o[1..].copy_from_slice(&v.to_be_bytes());
        }
    }
    Some(n)
}

/// Fails unless the item read from `start` to the decoder's position had a
/// head of exactly `head_len(arg)` bytes followed by `body` bytes.
fn check_shortest(d: &Decoder<'_>, start: usize, arg: u64, body: usize) -> Result<(), FrameError> {
    let expected = start
        .checked_add(head_len(arg))
        .and_then(|p| p.checked_add(body));
    if expected == Some(d.position()) {
        Ok(())
    } else {
        Err(FrameError::Malformed)
    }
}

/// The argument of the CBOR head of major type `major` at `input[pos..]`,
/// if it is in shortest form, and the head's length. `None` for anything
/// else (another type, a longer form, indefinite, truncated).
#[inline(always)]
pub(crate) fn shortest_head(input: &[u8], pos: usize, major: u8) -> Option<(u64, usize)> {
    let b = *input.get(pos)?;
    if b >> 5 != major {
        return None;
    }
    // Each width checks that the value needed it (shortest form), as
    // `head_len(v) == len` would.
    let (v, len, min) = match b & 0x1f {
        info @ 0..=23 => return Some((u64::from(info), 1)),
        24 => (u64::from(*input.get(pos + 1)?), 2, 24),
        25 => {
            let a: [u8; 2] = input.get(pos + 1..pos + 3)?.try_into().ok()?;
            (u64::from(u16::from_be_bytes(a)), 3, 0x100)
        }
        26 => {
            let a: [u8; 4] = input.get(pos + 1..pos + 5)?.try_into().ok()?;
            (u64::from(u32::from_be_bytes(a)), 5, 0x1_0000)
        }
        27 => {
            let a: [u8; 8] = input.get(pos + 1..pos + 9)?.try_into().ok()?;
            (u64::from_be_bytes(a), 9, 0x1_0000_0000)
        }
        _ => return None,
    };
    (v >= min).then_some((v, len))
}

/// An unsigned integer in its shortest form.
#[inline]
pub(crate) fn uint(d: &mut Decoder<'_>) -> Result<u64, FrameError> {
    // What every sender writes, read directly; anything else (and every
    // error) takes minicbor's path below, which accepts the same with the
    // same result.
    if let Some((v, n)) = shortest_head(d.input(), d.position(), 0) {
        d.set_position(d.position() + n);
        return Ok(v);
    }
    uint_general(d)
}

/// [`uint`] through minicbor, for everything but the common form.
#[inline(never)]
fn uint_general(d: &mut Decoder<'_>) -> Result<u64, FrameError> {
    let start = d.position();
    let v = d.u64().map_err(map_err)?;
    check_shortest(d, start, v, 0)?;
    Ok(v)
}

/// An unsigned integer that must fit 32 bits.
pub(crate) fn uint32(d: &mut Decoder<'_>) -> Result<u32, FrameError> {
    u32::try_from(uint(d)?).map_err(|_| FrameError::Malformed)
}

/// `true` or `false` (the simple values 21 and 20, nothing else).
pub(crate) fn boolean(d: &mut Decoder<'_>) -> Result<bool, FrameError> {
    d.bool().map_err(map_err)
}

/// A definite-length byte string with a shortest-form length.
pub(crate) fn bytes<'a>(d: &mut Decoder<'a>) -> Result<&'a [u8], FrameError> {
    let start = d.position();
    let b = d.bytes().map_err(map_err)?;
    let len = u64::try_from(b.len()).map_err(|_| FrameError::Malformed)?;
    check_shortest(d, start, len, b.len())?;
    Ok(b)
}

/// A definite-length UTF-8 text string with a shortest-form length.
pub(crate) fn text<'a>(d: &mut Decoder<'a>) -> Result<&'a str, FrameError> {
    let start = d.position();
    let s = d.str().map_err(map_err)?;
    let len = u64::try_from(s.len()).map_err(|_| FrameError::Malformed)?;
    check_shortest(d, start, len, s.len())?;
    Ok(s)
}

/// The head of a definite-length array with a shortest-form length.
pub(crate) fn array(d: &mut Decoder<'_>) -> Result<u64, FrameError> {
    let start = d.position();
    let n = d.array().map_err(map_err)?.ok_or(FrameError::Malformed)?;
    check_shortest(d, start, n, 0)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_len_boundaries() {
        for (v, n) in [
            (0, 1),
            (23, 1),
            (24, 2),
            (255, 2),
            (256, 3),
            (65535, 3),
            (65536, 5),
            (u64::from(u32::MAX), 5),
            (u64::from(u32::MAX) + 1, 9),
            (u64::MAX, 9),
        ] {
            assert_eq!(head_len(v), n, "head_len({v})");
            let mut buf = [0u8; 9];
            let mut e = minicbor::Encoder::new(&mut buf[..]);
            e.u64(v).unwrap();
            let left = e.writer().len();
            assert_eq!(9 - left, n, "minicbor agrees for {v}");
            // The hand-written heads are minicbor's, and never overrun.
            for major in [0u8, 4] {
                let mut ours = [0u8; 9];
                assert_eq!(put_head(&mut ours, major, v), Some(n));
                let mut theirs = [0u8; 9];
                let mut e = minicbor::Encoder::new(&mut theirs[..]);
                if major == 0 {
                    e.u64(v).unwrap();
                } else {
                    e.array(v).unwrap();
                }
                assert_eq!(ours, theirs, "major {major}, {v}");
                assert_eq!(put_head(&mut ours[..n - 1], major, v), None);
            }
        }
    }

    /// `shortest_head` takes every value in its shortest form and refuses
    /// it in every longer one, at each width's boundaries.
    #[test]
    fn shortest_head_refuses_every_longer_form() {
        for v in [
            0,
            23,
            24,
            255,
            256,
            0xffff,
            0x1_0000,
            0xffff_ffff,
            0x1_0000_0000,
            u64::MAX,
        ] {
            for major in [0u8, 2, 4] {
                for (info, width) in [(24u8, 1usize), (25, 2), (26, 4), (27, 8)] {
                    if width < 8 && v >> (8 * width) != 0 {
                        continue;
                    }
                    let mut input = [0u8; 9];
                    input[0] = major << 5 | info;
                    input[1..=width].copy_from_slice(&v.to_be_bytes()[8 - width..]);
                    let shortest = head_len(v) == width + 1;
                    assert_eq!(
                        shortest_head(&input, 0, major),
                        shortest.then_some((v, width + 1)),
                        "major {major}, {v} in {width} bytes"
                    );
                    assert_eq!(shortest_head(&input[..width], 0, major), None);
                    assert_eq!(shortest_head(&input, 0, major ^ 1), None);
                }
                if v < 24 {
                    let input = [major << 5 | v as u8];
                    assert_eq!(shortest_head(&input, 0, major), Some((v, 1)));
                }
            }
        }
    }

    /// The direct path of `uint` gives what minicbor's gives, value,
    /// error and position, for every head byte and argument width.
    #[test]
    fn uint_fast_path_agrees_with_minicbor() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for b in 0..=255u8 {
            for _ in 0..64 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let mut input = [0u8; 10];
                input[0] = b;
                input[1..9].copy_from_slice(&x.to_le_bytes());
                // Small arguments too, so shortest forms come up.
                if x & 3 == 0 {
                    input[1..9].fill(0);
                    input[(x >> 8) as usize % 9] = (x >> 16) as u8;
                }
                for len in [1, 2, 3, 5, 9, 10] {
                    let (mut a, mut b2) =
                        (Decoder::new(&input[..len]), Decoder::new(&input[..len]));
                    assert_eq!(
                        uint(&mut a),
                        uint_general(&mut b2),
                        "{:02x?}",
                        &input[..len]
                    );
                    assert_eq!(a.position(), b2.position(), "{:02x?}", &input[..len]);
                }
            }
        }
    }

    #[test]
    fn longer_than_shortest_is_malformed() {
        // 5 as 0x18 0x05, 0x19 0x0005, ...; byte string of length 1 with a
        // two-byte length head.
        for input in [
            &[0x18, 0x05][..],
            &[0x19, 0x00, 0x05],
            &[0x1a, 0, 0, 0, 5],
            &[0x1b, 0, 0, 0, 0, 0, 0, 0, 5],
        ] {
            assert_eq!(uint(&mut Decoder::new(input)), Err(FrameError::Malformed));
        }
        assert_eq!(
            bytes(&mut Decoder::new(&[0x58, 0x01, 0xaa])),
            Err(FrameError::Malformed)
        );
        assert_eq!(
            text(&mut Decoder::new(&[0x78, 0x01, b'a'])),
            Err(FrameError::Malformed)
        );
        assert_eq!(
            array(&mut Decoder::new(&[0x98, 0x01, 0x01])),
            Err(FrameError::Malformed)
        );
        // Shortest forms pass.
        assert_eq!(uint(&mut Decoder::new(&[0x18, 0x18])), Ok(24));
        assert_eq!(bytes(&mut Decoder::new(&[0x41, 0xaa])), Ok(&[0xaa][..]));
    }
}
