//! Tern packets over a byte stream (TCP): a sans-IO framing codec.
//!
//! On a stream every Tern packet is preceded by its length, a 2-byte
//! big-endian unsigned integer (`spec/tcp.md`):
//!
//! ```text
//! +--------+--------+=========================+--------+--------+====...
//! | length (u16 BE) |  packet (length bytes)  | length (u16 BE) |  next packet
//! +--------+--------+=========================+--------+--------+====...
//! ```
//!
//! A length of 0, or one above the receiver's maximum packet size, is a
//! protocol error that ends the stream: a stream cannot resynchronise.
//!
//! # Driving it
//!
//! Each complete packet the decoder yields is handed to
//! `Endpoint::handle` (or `Connection::handle`) exactly as if it were a UDP
//! datagram from the stream's peer address; the slice is mutable because
//! Tern decrypts in place. Each packet from `poll_transmit` is framed before
//! it is written to the stream whose peer is the transmit's destination.
//!
//! Receiving, zero-copy: read the socket straight into
//! [`StreamDecoder::read_buf`], [`commit`](StreamDecoder::commit) the bytes
//! read, then take packets with [`next_packet`](StreamDecoder::next_packet)
//! until it returns `Ok(None)`. A read of 0 bytes (end of stream) is checked
//! with [`finish`](StreamDecoder::finish), which reports a packet cut off in
//! the middle. Bytes that already sit in a slice go in with
//! [`feed`](StreamDecoder::feed) instead.
//!
//! Sending: let `poll_transmit` write the packet after room for the prefix,
//! then put the prefix in front with [`frame_header`] and write both with
//! one call; or copy a finished packet into a frame with [`encode_frame`].
//!
//! ```
//! use tern::stream::{PREFIX_LEN, StreamDecoder, frame_header};
//! # use std::io::Read;
//! # fn poll_transmit(buf: &mut [u8]) -> Option<usize> { buf[..3].copy_from_slice(b"abc"); Some(3) }
//!
//! // Sender: the packet goes at PREFIX_LEN, its length in front.
//! let mut out = [0u8; PREFIX_LEN + 1452];
//! let mut wire = Vec::new(); // stands for the TCP stream
//! for _ in 0..2 {
//!     let len = poll_transmit(&mut out[PREFIX_LEN..]).unwrap();
//!     out[..PREFIX_LEN].copy_from_slice(&frame_header(len)?);
//!     wire.extend_from_slice(&out[..PREFIX_LEN + len]); // stream.write_all(..)
//! }
//!
//! // Receiver: a decoder sized for the largest packet it accepts.
//! let mut dec = StreamDecoder::<{ PREFIX_LEN + 1452 }>::new();
//! let mut socket = std::io::Cursor::new(wire);
//! let mut got = Vec::new();
//! loop {
//!     let n = socket.read(dec.read_buf())?;
//!     if n == 0 {
//!         dec.finish()?; // an error here: the peer stopped mid-packet
//!         break;
//!     }
//!     dec.commit(n);
//!     // An error means: close the stream (it cannot resynchronise).
//!     while let Some(packet) = dec.next_packet()? {
//!         // endpoint.handle(now, peer_addr, packet, &mut rng)
//!         got.push(packet.to_vec());
//!     }
//! }
//! assert_eq!(got, [b"abc".to_vec(), b"abc".to_vec()]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::config::Config;
use core::fmt;

/// Bytes of the length prefix in front of every packet.
pub const PREFIX_LEN: usize = 2;

/// The largest packet length a prefix can express.
pub const MAX_PACKET_LEN: usize = u16::MAX as usize;

/// The decoder buffer (`N` of [`StreamDecoder`]) that holds one packet of
/// `max_packet_size` bytes with its prefix: `max_packet_size + 2`. Use the
/// [`Config::max_packet_size`] of the receiving side, e.g.
/// `StreamDecoder<{ buffer_len(1452) }>` for [`Config::service`].
pub const fn buffer_len(max_packet_size: u16) -> usize {
    max_packet_size as usize + PREFIX_LEN
}

/// A framing error. On a received stream every error but
/// [`BufferTooSmall`](StreamError::BufferTooSmall) means the stream MUST be
/// closed: the bytes that follow cannot be framed again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamError {
    /// A length prefix of 0 (received), or an empty packet to frame.
    ZeroLength,
    /// A length above the maximum: the receiver's maximum packet size for a
    /// received prefix, 65535 for a packet to frame.
    TooLong {
        /// The length received or asked for.
        len: usize,
        /// The largest length allowed.
        max: usize,
    },
    /// The output buffer (or, for [`StreamDecoder::with_max_packet_size`],
    /// the decoder's buffer) is too short; nothing was written.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
    },
    /// The stream ended inside a frame (reported by
    /// [`StreamDecoder::finish`]).
    Truncated {
        /// Bytes of the unfinished frame that were received.
        buffered: usize,
    },
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::ZeroLength => f.write_str("framed packet of length 0"),
            StreamError::TooLong { len, max } => {
                write!(f, "framed packet of {len} bytes exceeds the maximum {max}")
            }
            StreamError::BufferTooSmall { needed } => {
                write!(f, "buffer too small: {needed} bytes needed")
            }
            StreamError::Truncated { buffered } => {
                write!(
                    f,
                    "stream ended inside a frame ({buffered} bytes of it received)"
                )
            }
        }
    }
}

impl core::error::Error for StreamError {}

/// The 2-byte prefix for a packet of `len` bytes.
///
/// # Errors
///
/// [`StreamError::ZeroLength`] for 0, [`StreamError::TooLong`] above 65535.
pub fn frame_header(len: usize) -> Result<[u8; PREFIX_LEN], StreamError> {
    if len == 0 {
        return Err(StreamError::ZeroLength);
    }
    let l = u16::try_from(len).map_err(|_| StreamError::TooLong {
        len,
        max: MAX_PACKET_LEN,
    })?;
    Ok(l.to_be_bytes())
}

/// Writes `packet` with its prefix at the start of `out` and returns the
/// bytes written (`packet.len() + 2`).
///
/// # Errors
///
/// As [`frame_header`], and [`StreamError::BufferTooSmall`] with the size
/// needed when `out` is shorter; nothing is written on error.
pub fn encode_frame(packet: &[u8], out: &mut [u8]) -> Result<usize, StreamError> {
    let header = frame_header(packet.len())?;
    let needed = PREFIX_LEN + packet.len();
    let Some(out) = out.get_mut(..needed) else {
        return Err(StreamError::BufferTooSmall { needed });
    };
    out[..PREFIX_LEN].copy_from_slice(&header);
    out[PREFIX_LEN..].copy_from_slice(packet);
    Ok(needed)
}

/// Splits a byte stream back into packets, in a fixed `N`-byte buffer.
///
/// `N` MUST be at least the largest accepted packet plus 2
/// ([`buffer_len`]); [`new`](Self::new) accepts packets up to `N - 2`
/// bytes (at most 65535), [`with_max_packet_size`](Self::with_max_packet_size)
/// and [`for_config`](Self::for_config) fewer. A packet is never split in
/// the buffer: the decoder moves a partial frame to the front before each
/// read (at most one frame's bytes, once per read).
///
/// Errors are final: once [`next_packet`](Self::next_packet) has returned
/// one, it returns the same error on every call, and further input is
/// discarded. The caller closes the stream.
///
/// The decoder is as large as its buffer; a 64 KiB one belongs on the heap
/// (`Box`) in a driver rather than on a small stack.
#[derive(Clone, Debug)]
pub struct StreamDecoder<const N: usize> {
    buf: [u8; N],
    /// First byte not yet consumed.
    start: usize,
    /// One past the last byte received.
    end: usize,
    /// Largest packet accepted.
    max: usize,
    /// The error that ended the stream.
    error: Option<StreamError>,
}

impl<const N: usize> Default for StreamDecoder<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> StreamDecoder<N> {
    /// A decoder that accepts packets up to `N - 2` bytes (at most 65535).
    /// `N` below 3 does not compile.
    pub const fn new() -> Self {
        const { assert!(N > PREFIX_LEN, "StreamDecoder needs N >= 3") };
        let max = if N - PREFIX_LEN > MAX_PACKET_LEN {
            MAX_PACKET_LEN
        } else {
            N - PREFIX_LEN
        };
        StreamDecoder {
            buf: [0; N],
            start: 0,
            end: 0,
            max,
            error: None,
        }
    }

    /// A decoder that accepts packets up to `max` bytes: the receiver's
    /// [`Config::max_packet_size`].
    ///
    /// # Errors
    ///
    /// [`StreamError::BufferTooSmall`] when `N < max + 2`,
    /// [`StreamError::ZeroLength`] when `max` is 0.
    pub const fn with_max_packet_size(max: u16) -> Result<Self, StreamError> {
        let max = max as usize;
        if max == 0 {
            return Err(StreamError::ZeroLength);
        }
        if N < max + PREFIX_LEN {
            return Err(StreamError::BufferTooSmall {
                needed: max + PREFIX_LEN,
            });
        }
        let mut d = Self::new();
        d.max = max;
        Ok(d)
    }

    /// A decoder for the receiving side's configuration: accepts packets up
    /// to `config.max_packet_size`, which no conforming peer exceeds.
    ///
    /// # Errors
    ///
    /// As [`with_max_packet_size`](Self::with_max_packet_size).
    pub fn for_config(config: &Config) -> Result<Self, StreamError> {
        Self::with_max_packet_size(config.max_packet_size)
    }

    /// The largest packet accepted.
    pub fn max_packet_size(&self) -> usize {
        self.max
    }

    /// Bytes received but not yet returned as packets (a partial frame, or
    /// complete frames not yet taken).
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// The error that ended the stream, if one did.
    pub fn error(&self) -> Option<StreamError> {
        self.error
    }

    /// Free space to read the stream into; pass the number of bytes read to
    /// [`commit`](Self::commit).
    ///
    /// The slice is empty only when the buffer is full of complete packets
    /// not yet taken with [`next_packet`](Self::next_packet): take packets
    /// until it returns `Ok(None)` before reading (a read into an empty
    /// slice returns 0, which looks like the end of the stream).
    pub fn read_buf(&mut self) -> &mut [u8] {
        self.compact();
        &mut self.buf[self.end..]
    }

    /// Records that `n` bytes were written at the start of the slice last
    /// returned by [`read_buf`](Self::read_buf).
    ///
    /// # Panics
    ///
    /// If `n` exceeds that slice's length (a caller bug, like indexing out
    /// of bounds).
    pub fn commit(&mut self, n: usize) {
        assert!(
            n <= N - self.end,
            "commit({n}) beyond the {} bytes of read_buf",
            N - self.end
        );
        if self.error.is_some() {
            return;
        }
        self.end += n;
    }

    /// Copies as much of `input` as fits into the buffer and returns how
    /// many bytes it took. It takes nothing only when the buffer is full of
    /// complete packets: take them with [`next_packet`](Self::next_packet)
    /// and feed the rest. After an error, input is discarded (all taken).
    pub fn feed(&mut self, input: &[u8]) -> usize {
        if self.error.is_some() {
            return input.len();
        }
        let space = self.read_buf();
        let n = space.len().min(input.len());
        space[..n].copy_from_slice(&input[..n]);
        self.end += n;
        n
    }

    /// The next complete packet, or `Ok(None)` until more bytes arrive. The
    /// slice stays valid until the next call on the decoder; hand it to
    /// `handle` as a datagram.
    ///
    /// # Errors
    ///
    /// [`StreamError::ZeroLength`] or [`StreamError::TooLong`] as soon as an
    /// invalid prefix arrives (before its packet does); the stream MUST then
    /// be closed. The error is final.
    pub fn next_packet(&mut self) -> Result<Option<&mut [u8]>, StreamError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let avail = &self.buf[self.start..self.end];
        let Some(&[hi, lo]) = avail.get(..PREFIX_LEN) else {
            return Ok(None);
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if len == 0 || len > self.max {
            let e = if len == 0 {
                StreamError::ZeroLength
            } else {
                StreamError::TooLong { len, max: self.max }
            };
            self.error = Some(e);
            self.start = 0;
            self.end = 0;
            return Err(e);
        }
        if avail.len() < PREFIX_LEN + len {
            return Ok(None);
        }
        let first = self.start + PREFIX_LEN;
        self.start = first + len;
        Ok(Some(&mut self.buf[first..first + len]))
    }

    /// Checks the end of the stream: `Ok` if it ended between frames.
    ///
    /// # Errors
    ///
    /// [`StreamError::Truncated`] if a partial frame is buffered (complete
    /// packets not yet taken do not count as partial; take them first), or
    /// the error that already ended the stream.
    pub fn finish(&self) -> Result<(), StreamError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut at = self.start;
        while at < self.end {
            let avail = &self.buf[at..self.end];
            let Some(&[hi, lo]) = avail.get(..PREFIX_LEN) else {
                return Err(StreamError::Truncated {
                    buffered: avail.len(),
                });
            };
            let len = usize::from(u16::from_be_bytes([hi, lo]));
            if len == 0 {
                return Err(StreamError::ZeroLength);
            }
            if len > self.max {
                return Err(StreamError::TooLong { len, max: self.max });
            }
            if avail.len() < PREFIX_LEN + len {
                return Err(StreamError::Truncated {
                    buffered: avail.len(),
                });
            }
            at += PREFIX_LEN + len;
        }
        Ok(())
    }

    /// Moves unconsumed bytes to the front of the buffer.
    fn compact(&mut self) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    /// Frames `packets` into one byte stream.
    fn framed(packets: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in packets {
            let mut f = std::vec![0u8; p.len() + PREFIX_LEN];
            assert_eq!(encode_frame(p, &mut f), Ok(p.len() + 2));
            out.extend_from_slice(&f);
        }
        out
    }

    /// Feeds `stream` in chunks of the given sizes (cycled), taking packets
    /// after every chunk; returns the packets and the first error.
    fn decode_fed<const N: usize>(
        dec: &mut StreamDecoder<N>,
        stream: &[u8],
        chunks: &[usize],
    ) -> (Vec<Vec<u8>>, Option<StreamError>) {
        let mut got = Vec::new();
        let mut rest = stream;
        let mut k = 0;
        while !rest.is_empty() {
            let size = chunks.get(k % chunks.len().max(1)).copied().unwrap_or(1);
            k += 1;
            let mut chunk = &rest[..size.clamp(1, rest.len())];
            rest = &rest[chunk.len()..];
            while !chunk.is_empty() {
                let n = dec.feed(chunk);
                chunk = &chunk[n..];
                loop {
                    match dec.next_packet() {
                        Ok(Some(p)) => got.push(p.to_vec()),
                        Ok(None) => break,
                        Err(e) => return (got, Some(e)),
                    }
                }
            }
        }
        (got, None)
    }

    /// The same through `read_buf` and `commit`, reading at most `chunks[k]`
    /// bytes per read.
    fn decode_read<const N: usize>(
        dec: &mut StreamDecoder<N>,
        stream: &[u8],
        chunks: &[usize],
    ) -> (Vec<Vec<u8>>, Option<StreamError>) {
        let mut got = Vec::new();
        let mut at = 0;
        let mut k = 0;
        while at < stream.len() {
            let want = chunks.get(k % chunks.len().max(1)).copied().unwrap_or(1);
            k += 1;
            let space = dec.read_buf();
            assert!(!space.is_empty(), "read_buf empty after packets were taken");
            let n = space.len().min(want.max(1)).min(stream.len() - at);
            space[..n].copy_from_slice(&stream[at..at + n]);
            dec.commit(n);
            at += n;
            loop {
                match dec.next_packet() {
                    Ok(Some(p)) => got.push(p.to_vec()),
                    Ok(None) => break,
                    Err(e) => return (got, Some(e)),
                }
            }
        }
        (got, None)
    }

    #[test]
    fn header_encoding() {
        assert_eq!(frame_header(1), Ok([0, 1]));
        assert_eq!(frame_header(0x1234), Ok([0x12, 0x34]));
        assert_eq!(frame_header(65535), Ok([0xff, 0xff]));
        assert_eq!(frame_header(0), Err(StreamError::ZeroLength));
        assert_eq!(
            frame_header(65536),
            Err(StreamError::TooLong {
                len: 65536,
                max: 65535
            })
        );
    }

    #[test]
    fn spec_example() {
        // spec/tcp.md §1: the ChaChaPoly PING packet of spec/packets.md §6.3.
        let packet = [
            0x00, 0x5a, 0x5a, 0x00, 0x01, 0x00, 0x99, 0xb9, 0xb9, 0x38, 0x75, 0x63, 0xac, 0x7b,
            0x44, 0x5d, 0x73, 0xce, 0xac, 0x3c, 0x8e, 0x48, 0xc5, 0xba,
        ];
        let mut out = [0u8; 26];
        assert_eq!(encode_frame(&packet, &mut out), Ok(26));
        assert_eq!(out[..2], [0x00, 0x18]);
        assert_eq!(out[2..], packet);
        assert_eq!(frame_header(1452), Ok([0x05, 0xac]));
        let mut dec = StreamDecoder::<{ buffer_len(1452) }>::new();
        assert_eq!(dec.feed(&out), 26);
        assert_eq!(dec.next_packet().unwrap().unwrap(), &packet[..]);
    }

    #[test]
    fn encode_frame_checks_the_buffer() {
        let mut out = [0xeeu8; 6];
        assert_eq!(
            encode_frame(b"abcde", &mut out),
            Err(StreamError::BufferTooSmall { needed: 7 })
        );
        assert_eq!(out, [0xee; 6], "nothing written on error");
        let mut out = [0xeeu8; 8];
        assert_eq!(encode_frame(b"abcde", &mut out), Ok(7));
        assert_eq!(out, [0, 5, b'a', b'b', b'c', b'd', b'e', 0xee]);
        assert_eq!(encode_frame(b"", &mut out), Err(StreamError::ZeroLength));
        let big = std::vec![0u8; 65536];
        let mut out = std::vec![0u8; 65538];
        assert_eq!(
            encode_frame(&big, &mut out),
            Err(StreamError::TooLong {
                len: 65536,
                max: 65535
            })
        );
        assert_eq!(encode_frame(&big[..65535], &mut out), Ok(65537));
        assert_eq!(&out[..2], &[0xff, 0xff]);
    }

    #[test]
    fn limits_from_the_buffer_and_the_config() {
        assert_eq!(StreamDecoder::<3>::new().max_packet_size(), 1);
        assert_eq!(StreamDecoder::<1454>::new().max_packet_size(), 1452);
        assert_eq!(StreamDecoder::<70000>::new().max_packet_size(), 65535);
        assert_eq!(
            StreamDecoder::<1454>::with_max_packet_size(512)
                .unwrap()
                .max_packet_size(),
            512
        );
        assert_eq!(
            StreamDecoder::<1453>::with_max_packet_size(1452).unwrap_err(),
            StreamError::BufferTooSmall { needed: 1454 }
        );
        assert_eq!(
            StreamDecoder::<10>::with_max_packet_size(0).unwrap_err(),
            StreamError::ZeroLength
        );
        let d = StreamDecoder::<{ buffer_len(1452) }>::for_config(&Config::service()).unwrap();
        assert_eq!(d.max_packet_size(), 1452);
        assert_eq!(
            StreamDecoder::<{ buffer_len(512) }>::for_config(&Config::service()).unwrap_err(),
            StreamError::BufferTooSmall { needed: 1454 }
        );
        assert_eq!(buffer_len(u16::MAX), 65537);
    }

    #[test]
    fn split_and_coalesced_packets() {
        let packets = [b"hello".to_vec(), std::vec![7u8; 300], b"x".to_vec()];
        let stream = framed(&packets);
        for size in [1, 2, 3, 7, 306, stream.len()] {
            let mut dec = StreamDecoder::<512>::new();
            assert_eq!(
                decode_fed(&mut dec, &stream, &[size]),
                (packets.to_vec(), None),
                "chunks of {size}"
            );
            assert_eq!(dec.buffered(), 0);
            assert_eq!(dec.finish(), Ok(()));
            let mut dec = StreamDecoder::<512>::new();
            assert_eq!(
                decode_read(&mut dec, &stream, &[size]),
                (packets.to_vec(), None),
                "reads of {size}"
            );
        }
    }

    #[test]
    fn packets_are_mutable_in_place() {
        let mut dec = StreamDecoder::<16>::new();
        assert_eq!(dec.feed(&[0, 3, 1, 2, 3]), 5);
        let p = dec.next_packet().unwrap().unwrap();
        p[0] = 9;
        assert_eq!(p, &[9, 2, 3]);
        assert_eq!(dec.next_packet(), Ok(None));
    }

    #[test]
    fn a_full_buffer_takes_input_after_packets_are_taken() {
        // N = 7 holds exactly one 5-byte packet with its prefix.
        let mut dec = StreamDecoder::<7>::new();
        let stream = framed(&[b"abcde".to_vec(), b"fghij".to_vec()]);
        assert_eq!(dec.feed(&stream), 7);
        assert_eq!(dec.feed(&stream[7..]), 0, "full of a complete packet");
        assert!(dec.read_buf().is_empty());
        assert_eq!(dec.next_packet().unwrap().unwrap(), b"abcde");
        assert_eq!(dec.read_buf().len(), 7);
        assert_eq!(dec.feed(&stream[7..]), 7);
        assert_eq!(dec.next_packet().unwrap().unwrap(), b"fghij");
        assert_eq!(dec.next_packet(), Ok(None));
    }

    #[test]
    fn a_partial_frame_moves_to_the_front() {
        let mut dec = StreamDecoder::<8>::new();
        // One 3-byte packet and the first 3 bytes of a 5-byte one.
        assert_eq!(dec.feed(&[0, 3, 1, 2, 3, 0, 5, 4]), 8);
        assert_eq!(dec.next_packet().unwrap().unwrap(), &[1, 2, 3]);
        assert_eq!(dec.next_packet(), Ok(None));
        assert_eq!(dec.buffered(), 3);
        assert_eq!(dec.read_buf().len(), 5, "compacted: 8 - 3 free");
        assert_eq!(dec.feed(&[5, 6, 7, 8]), 4);
        assert_eq!(dec.next_packet().unwrap().unwrap(), &[4, 5, 6, 7, 8]);
    }

    #[test]
    fn invalid_prefixes_end_the_stream() {
        let mut dec = StreamDecoder::<16>::new();
        assert_eq!(dec.feed(&[0, 1, 0xaa, 0, 0, 0, 1, 0xbb]), 8);
        assert_eq!(dec.next_packet().unwrap().unwrap(), &[0xaa]);
        assert_eq!(dec.next_packet(), Err(StreamError::ZeroLength));
        // Final: the valid frame after it is never returned.
        assert_eq!(dec.next_packet(), Err(StreamError::ZeroLength));
        assert_eq!(dec.feed(&[0, 1, 0xcc]), 3, "input discarded");
        assert_eq!(dec.next_packet(), Err(StreamError::ZeroLength));
        assert_eq!(dec.error(), Some(StreamError::ZeroLength));
        assert_eq!(dec.finish(), Err(StreamError::ZeroLength));

        // Too long is reported on the prefix alone, before the body.
        let mut dec = StreamDecoder::<1454>::with_max_packet_size(512).unwrap();
        assert_eq!(dec.feed(&[0x02, 0x01]), 2);
        assert_eq!(
            dec.next_packet(),
            Err(StreamError::TooLong { len: 513, max: 512 })
        );
        let mut dec = StreamDecoder::<1454>::with_max_packet_size(512).unwrap();
        assert_eq!(dec.feed(&[0x02, 0x00]), 2);
        assert_eq!(dec.next_packet(), Ok(None), "512 itself is allowed");
        let mut dec = StreamDecoder::<1454>::new();
        let (got, err) = decode_read(&mut dec, &[0xff, 0xff, 1, 2, 3], &[1]);
        assert!(got.is_empty());
        assert_eq!(
            err,
            Some(StreamError::TooLong {
                len: 65535,
                max: 1452
            })
        );
    }

    #[test]
    fn finish_reports_a_cut_frame() {
        let mut dec = StreamDecoder::<16>::new();
        assert_eq!(dec.finish(), Ok(()));
        dec.feed(&[0]);
        assert_eq!(dec.finish(), Err(StreamError::Truncated { buffered: 1 }));
        dec.feed(&[4, 1, 2]);
        assert_eq!(dec.next_packet(), Ok(None));
        assert_eq!(dec.finish(), Err(StreamError::Truncated { buffered: 4 }));
        dec.feed(&[3, 4]);
        assert_eq!(dec.finish(), Ok(()), "a complete packet not yet taken");
        assert_eq!(dec.next_packet().unwrap().unwrap(), &[1, 2, 3, 4]);
        assert_eq!(dec.finish(), Ok(()));
        // Complete, then cut.
        dec.feed(&[0, 1, 9, 0, 2, 8]);
        assert_eq!(dec.finish(), Err(StreamError::Truncated { buffered: 3 }));
    }

    #[test]
    #[should_panic(expected = "beyond")]
    fn commit_beyond_read_buf_panics() {
        let mut dec = StreamDecoder::<4>::new();
        let n = dec.read_buf().len();
        dec.commit(n + 1);
    }

    #[test]
    fn errors_display() {
        use std::string::ToString;
        assert_eq!(
            StreamError::TooLong { len: 600, max: 512 }.to_string(),
            "framed packet of 600 bytes exceeds the maximum 512"
        );
        assert_eq!(
            StreamError::BufferTooSmall { needed: 9 }.to_string(),
            "buffer too small: 9 bytes needed"
        );
        assert_eq!(
            StreamError::ZeroLength.to_string(),
            "framed packet of length 0"
        );
        assert_eq!(
            StreamError::Truncated { buffered: 3 }.to_string(),
            "stream ended inside a frame (3 bytes of it received)"
        );
    }

    /// Reference decoder: walks the stream from the start.
    fn reference(stream: &[u8], max: usize) -> (Vec<Vec<u8>>, Option<StreamError>) {
        let mut got = Vec::new();
        let mut at = 0;
        while stream.len() - at >= 2 {
            let len = usize::from(u16::from_be_bytes([stream[at], stream[at + 1]]));
            if len == 0 {
                return (got, Some(StreamError::ZeroLength));
            }
            if len > max {
                return (got, Some(StreamError::TooLong { len, max }));
            }
            if stream.len() - at - 2 < len {
                break;
            }
            got.push(stream[at + 2..at + 2 + len].to_vec());
            at += 2 + len;
        }
        (got, None)
    }

    proptest! {
        #[test]
        fn valid_streams_round_trip_in_any_chunks(
            packets in proptest::collection::vec(
                proptest::collection::vec(any::<u8>(), 1..=300), 0..12),
            chunks in proptest::collection::vec(1usize..700, 1..8),
        ) {
            let stream = framed(&packets);
            let mut dec = StreamDecoder::<302>::new();
            prop_assert_eq!(decode_fed(&mut dec, &stream, &chunks), (packets.clone(), None));
            prop_assert_eq!(dec.finish(), Ok(()));
            let mut dec = StreamDecoder::<302>::new();
            prop_assert_eq!(decode_read(&mut dec, &stream, &chunks), (packets.clone(), None));
            prop_assert_eq!(dec.finish(), Ok(()));
        }

        #[test]
        fn arbitrary_bytes_decode_like_the_reference(
            stream in proptest::collection::vec(any::<u8>(), 0..600),
            small_lengths in any::<bool>(),
            chunks in proptest::collection::vec(1usize..64, 1..8),
            max in 1u16..=64,
        ) {
            // Make short lengths likely, so that valid frames occur.
            let mut stream = stream;
            if small_lengths {
                let mut at = 0;
                while at + 1 < stream.len() {
                    stream[at] = 0;
                    at += 2 + usize::from(stream[at + 1]);
                }
            }
            let want = reference(&stream, usize::from(max));
            let mut dec = StreamDecoder::<66>::with_max_packet_size(max).unwrap();
            prop_assert_eq!(decode_fed(&mut dec, &stream, &chunks), want.clone());
            let mut dec = StreamDecoder::<66>::with_max_packet_size(max).unwrap();
            prop_assert_eq!(decode_read(&mut dec, &stream, &chunks), want.clone());
            if want.1.is_none() {
                let consumed: usize = want.0.iter().map(|p| p.len() + 2).sum();
                let rest = stream.len() - consumed;
                let end = if rest == 0 {
                    Ok(())
                } else {
                    Err(StreamError::Truncated { buffered: rest })
                };
                prop_assert_eq!(dec.finish(), end);
            }
        }
    }
}
