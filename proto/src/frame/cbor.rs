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

/// An unsigned integer in its shortest form.
pub(crate) fn uint(d: &mut Decoder<'_>) -> Result<u64, FrameError> {
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
