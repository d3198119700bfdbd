//! The receiving half of a channel: reassembly by offset.
//!
//! The store holds the window's bytes as a ring, followed by two bitmaps
//! over the same ring positions: which bytes were received, and which bytes
//! end a message; then a summary of the second, one bit per 64-bit word of
//! it, set exactly when that word has a bit set, so looking for the next
//! message end passes over 4096 bytes of stream per summary word instead
//! of 64. Bitmaps never run out of room, so any fragment inside the
//! credit can always be stored: a packet the receiver acknowledges is never
//! dropped for lack of bookkeeping, and a hole at the front can always be
//! filled (no reassembly deadlock).
//!
//! A growable (heap) store holds a smaller ring with its bitmaps: 4 KiB
//! at first, doubled (up to the window) when a fragment ends beyond it,
//! its live bytes and bits moved to where the larger ring keeps them. The
//! window stays the credit; the ring is only where the bytes are kept.

use crate::storage::{ByteStore, move_ring, ring_index, ring_size_for};

/// Why a fragment was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecvError {
    /// Data beyond the credit given: the peer broke flow control.
    FlowControl,
    /// A message would exceed the largest message this side accepts.
    MessageTooLarge,
}

/// Store bytes needed for a receive window of `window` bytes.
pub const fn recv_store_len(window: usize) -> usize {
    window + 2 * window.div_ceil(8) + window.div_ceil(64).div_ceil(8)
}

/// The largest window whose ring and bitmaps fit `cap` store bytes.
#[cold]
#[inline(never)]
fn window_for(cap: usize) -> usize {
    let mut w = cap * 4 / 5;
    while recv_store_len(w) > cap {
        w -= 1;
    }
    w
}

/// Bitmap of received bytes.
const RECEIVED: usize = 0;
/// Bitmap of message ends.
const ENDS: usize = 1;
/// Summary of [`ENDS`]: bit `k` is set exactly when its word `k` (ring
/// positions `64k..64k + 64`) has a bit set.
const SUMMARY: usize = 2;

/// `first_end` when the first end is not known.
const UNKNOWN: u64 = u64::MAX;

/// Incoming stream state of one channel.
pub struct RecvChannel<B: ByteStore> {
    store: B,
    window: u64,
    /// Next offset to deliver.
    base: u64,
    /// End of the received prefix starting at `base`.
    contiguous: u64,
    /// No message end lies in `[base, scanned)`.
    scanned: u64,
    /// No received bit is set at or beyond `marked` (in-order data sets
    /// none, so reads of it have none to clear).
    marked: u64,
    /// The lowest offset at or beyond `scanned.max(base)` whose end bit
    /// is set, if known ([`UNKNOWN`]: not known, look for it). Saves
    /// looking again on every packet for the message-size check and
    /// `peek_len`. (Not an `Option`: eight bytes less per channel.)
    first_end: u64,
    /// Highest offset received (for connection-level accounting).
    highest: u64,
    /// Credit advertised to the peer: data must lie below it.
    max_data: u64,
    max_message: u64,
}

impl<B: ByteStore> RecvChannel<B> {
    /// A channel with a receive window of `window` bytes (also the first
    /// credit) accepting messages of up to `max_message` bytes.
    // Not inlined: channels are made once; their callers stay small.
    #[inline(never)]
    pub fn new(window: usize, max_message: usize) -> Self {
        let store = B::new(recv_store_len(window));
        // A fixed store smaller than asked for shrinks the window to fit
        // (with its bitmaps whole).
        let cap = store.capacity();
        let window = if cap >= recv_store_len(window) {
            window
        } else {
            window_for(cap)
        };
        RecvChannel {
            store,
            window: window as u64,
            base: 0,
            contiguous: 0,
            scanned: 0,
            marked: 0,
            first_end: UNKNOWN,
            highest: 0,
            max_data: window as u64,
            max_message: max_message.min(window) as u64,
        }
    }

    /// The ring size: the window for a fixed store; for a growable one,
    /// what its length says (it holds `recv_store_len(ring)` bytes, the
    /// ring a power of two of at least
    /// [`MIN_RING`](crate::storage::MIN_RING) or the window; zero while
    /// nothing is allocated).
    #[inline(always)]
    fn ring(&self) -> u64 {
        if !B::GROWS {
            return self.window;
        }
        let len = self.store.bytes().len();
        if len >= self.store.capacity() {
            self.window
        } else {
            ring_of_len(len) as u64
        }
    }

    /// Makes a growable store's ring hold the stream up to `end` (beyond
    /// `base`, within the window), moving what it holds to the positions
    /// of the larger ring: the bytes `[base, highest)`, the received bits
    /// `[base, marked)` and the end bits `[base, highest)` (the summary
    /// rebuilt with them). Everything else in the store is dead.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, end: u64) {
        let r0 = self.ring() as usize;
        let r1 = ring_size_for((end - self.base) as usize, self.window as usize);
        debug_assert!(r1 == self.window as usize || recv_store_len(r1) == r1 / 512 * 641);
        let (base, marked, highest) = (self.base, self.marked, self.highest);
        self.store.resize(recv_store_len(r1), |old, new| {
            if r0 == 0 || old.len() < recv_store_len(r0) {
                return;
            }
            move_ring(&old[..r0], &mut new[..r1], base, highest);
            let mut o = base;
            while let Some(s) = find_bit_at(old, r0, RECEIVED, o, marked, true) {
                let e = find_bit_at(old, r0, RECEIVED, s, marked, false).unwrap_or(marked);
                set_bits_at(new, r1, RECEIVED, s, e, true);
                o = e;
            }
            let mut o = base;
            while let Some(e) = find_end_at(old, r0, o, highest) {
                set_end_at(new, r1, e, true);
                o = e + 1;
            }
        });
    }

    /// First message end in `[from, to)`: the summary says which words
    /// of the ends bitmap to search. A store not allocated yet has none.
    #[inline(never)]
    fn find_end(&self, from: u64, to: u64) -> Option<u64> {
        find_end_at(self.store.bytes(), self.ring() as usize, from, to)
    }

    /// First offset in `[from, to)` whose bit in `map` equals `want`. A
    /// store not allocated yet reads as all clear. Word at a time.
    fn find_bit(&self, map: usize, from: u64, to: u64, want: bool) -> Option<u64> {
        find_bit_at(
            self.store.bytes(),
            self.ring() as usize,
            map,
            from,
            to,
            want,
        )
    }

    fn set_bits(&mut self, map: usize, from: u64, to: u64, value: bool) {
        let ring = self.ring() as usize;
        set_bits_at(self.store.held_mut(), ring, map, from, to, value);
    }

    /// Sets or clears the end bit for offset `o`, and its word's summary
    /// bit: set with it, cleared once the word has no bit left.
    #[inline]
    fn set_end(&mut self, o: u64, value: bool) {
        let ring = self.ring() as usize;
        set_end_at(self.store.held_mut(), ring, o, value);
    }

    /// Checks, without changing anything, whether a fragment respects the
    /// credit.
    pub fn check(&self, offset: u64, len: usize) -> Result<(), RecvError> {
        let end = offset
            .checked_add(len as u64)
            .ok_or(RecvError::FlowControl)?;
        if end > self.max_data {
            return Err(RecvError::FlowControl);
        }
        Ok(())
    }

    /// Stores a fragment. Returns how many bytes raised the highest offset
    /// (new connection-level data).
    pub fn insert(&mut self, offset: u64, data: &[u8], fin: bool) -> Result<u64, RecvError> {
        self.check(offset, data.len())?;
        let end = offset + data.len() as u64;
        if end <= self.base {
            return Ok(0);
        }
        // A growable store's ring must reach `end` (within the window, so
        // this is an allocation, never a refusal); the first data since
        // the buffer was released allocates it, zeroed.
        if B::GROWS && end - self.base > self.ring() {
            self.grow(end);
        }
        // Nothing was received at or beyond where a scan would start, so
        // no end bit lies there: this fragment's end, if it has one, is
        // the first (the common case, in-order data after a read).
        let scan_from = self.scanned.max(self.base);
        let nothing_beyond = self.highest <= scan_from;
        let start = offset.max(self.base);
        let skip = (start - offset) as usize;
        if start < end {
            let ring = self.ring();
            ring_write_window(&mut self.store, ring, start, &data[skip..]);
            // The received bitmap is only ever read in `[contiguous,
            // highest)`: a fragment that joins the received prefix needs
            // no bits (the common, in-order case). Reads clear the bits of
            // what they consume either way.
            if start > self.contiguous {
                self.set_bits(RECEIVED, start, end, true);
                self.marked = self.marked.max(end);
            }
        }
        // An end inside what `peek_len` already scanned (the peer moving a
        // message boundary it sent before) would be skipped by every scan
        // anyway: leaving it out keeps every end bit at or beyond
        // `scanned`, so a read clears only its message's own end bit.
        if fin && end > scan_from {
            self.set_end(end - 1, true);
            // A known first end stays the first unless this one is lower;
            // an unknown one stays unknown (the search finds the lowest)
            // unless no other end bit can lie at or beyond `scan_from`.
            if self.first_end != UNKNOWN {
                self.first_end = self.first_end.min(end - 1);
            } else if nothing_beyond {
                self.first_end = end - 1;
            }
        }
        let grew = end.saturating_sub(self.highest);
        self.highest = self.highest.max(end);
        if start < end && start <= self.contiguous {
            // `[start, end)` was just marked received: no need to scan it.
            self.contiguous = self.contiguous.max(end);
        }
        if self.contiguous < self.highest {
            self.contiguous = self
                .find_bit(RECEIVED, self.contiguous, self.highest, false)
                .unwrap_or(self.highest);
        }
        if self.contiguous - self.base > self.max_message
            && self.find_end_within(self.base + self.max_message).is_none()
        {
            return Err(RecvError::MessageTooLarge);
        }
        Ok(grew)
    }

    /// The first message end in `[scanned.max(base), limit.min(contiguous))`,
    /// plus one, from [`first_end`](Self::first_end) when it is known.
    #[inline]
    fn peek_end_within(&self, limit: u64) -> Option<u64> {
        let limit = limit.min(self.contiguous);
        match self.first_end {
            UNKNOWN => {
                let from = self.scanned.max(self.base);
                // Nothing unscanned (every read of the whole received data
                // ends so): no call to find nothing.
                if from >= limit {
                    return None;
                }
                self.find_end(from, limit).map(|end| end + 1)
            }
            e => (e < limit).then_some(e + 1),
        }
    }

    /// [`peek_end_within`](Self::peek_end_within), remembering an end the
    /// scan found as the first one.
    fn find_end_within(&mut self, limit: u64) -> Option<u64> {
        let end = self.peek_end_within(limit);
        if let Some(end) = end {
            self.first_end = end - 1;
        }
        end
    }

    /// Length of the next complete message, if there is one.
    pub fn peek_len(&mut self) -> Option<usize> {
        match self.find_end_within(self.contiguous) {
            Some(end) => {
                self.scanned = end - 1;
                Some((end - self.base) as usize)
            }
            None => {
                self.scanned = self.contiguous;
                None
            }
        }
    }

    /// Whether a complete message is waiting.
    pub fn is_readable(&self) -> bool {
        self.peek_end_within(self.contiguous).is_some()
    }

    /// Copies the next complete message into `out` and consumes it. Returns
    /// its length, or `Err(len)` if `out` is too short (nothing consumed).
    pub fn read(&mut self, out: &mut [u8]) -> Option<Result<usize, usize>> {
        let len = self.peek_len()?;
        if out.len() < len {
            return Some(Err(len));
        }
        ring_read_window(&self.store, self.ring(), self.base, &mut out[..len]);
        self.consume(len);
        Some(Ok(len))
    }

    /// Hands the next complete message to `f` as the (up to) two slices of
    /// the ring that hold it, in order, then consumes it exactly as
    /// [`read`](Self::read) does. The second slice is empty unless the
    /// message wraps the ring's end.
    pub fn read_with<R>(&mut self, f: impl FnOnce(&[u8], &[u8]) -> R) -> Option<R> {
        let len = self.peek_len()?;
        let (a, b) = ring_slices_window(&self.store, self.ring(), self.base, len);
        let r = f(a, b);
        self.consume(len);
        Some(r)
    }

    /// Consumes the next message, `len` bytes found by `peek_len`.
    fn consume(&mut self, len: usize) {
        let end = self.base + len as u64;
        if self.base < self.marked {
            self.set_bits(RECEIVED, self.base, end.min(self.marked), false);
        }
        // No end bit lies in `[base, end - 1)`: the scan found `end - 1`
        // first, and none is ever set behind `scanned` (see `insert`).
        self.set_end(end - 1, false);
        self.base = end;
        self.scanned = end;
        // That was the first end; the next one is not known yet.
        self.first_end = UNKNOWN;
    }

    /// Frees the buffer if everything received was read. Not done on
    /// every read: a stream the application keeps up with drains after
    /// nearly every packet, and allocating and zeroing the whole window
    /// again each time cost more than the rest of the receive path. (Kept,
    /// the store needs no clearing: reads clear the bits they consume.)
    pub fn release_if_drained(&mut self) {
        if self.highest == self.base {
            self.store.release();
            self.first_end = UNKNOWN;
        }
    }

    /// Bytes delivered to the application so far.
    pub fn consumed(&self) -> u64 {
        self.base
    }

    /// The credit to advertise if it moved by at least half a window since
    /// the last advertisement, or at once if the peer used all of it;
    /// records it as advertised.
    pub fn credit_update(&mut self) -> Option<u64> {
        let target = self.base + self.window;
        let exhausted = self.highest >= self.max_data;
        if target > self.max_data && (target >= self.max_data + self.window / 2 || exhausted) {
            self.max_data = target;
            return Some(target);
        }
        None
    }

    /// The credit last advertised.
    pub fn max_data(&self) -> u64 {
        self.max_data
    }

    /// Forgets the first end, so the next look scans (the path without
    /// the shortcut, for the equivalence test).
    #[cfg(test)]
    fn forget_first_end(&mut self) {
        self.first_end = UNKNOWN;
    }

    /// Whether each summary bit says exactly whether its word of the ends
    /// bitmap has a bit set.
    #[cfg(test)]
    fn summary_is_exact(&self) -> bool {
        let bytes = self.store.bytes();
        let ring = self.ring() as usize;
        let (start, end) = map_range(ring, ENDS);
        let (sum, _) = map_range(ring, SUMMARY);
        (0..ring.div_ceil(64)).all(|k| {
            let w = bytes.get(start + 8 * k..(start + 8 * k + 8).min(end));
            let any = w.is_some_and(|w| w.iter().any(|&x| x != 0));
            any == bytes.get(sum..).is_some_and(|s| get_bit(s, k))
        })
    }

    /// The lowest end bit set at or beyond `scanned.max(base)`, bit by bit.
    #[cfg(test)]
    fn first_end_by_scan(&self) -> Option<u64> {
        let ring = self.ring();
        if ring == 0 {
            return None;
        }
        let (start, _) = map_range(ring as usize, ENDS);
        let bits = self.store.bytes().get(start..).unwrap_or(&[]);
        (self.scanned.max(self.base)..self.base + ring)
            .find(|&o| get_bit(bits, (o % ring) as usize))
    }

    /// Highest offset received (for the flow-control model test).
    #[cfg(test)]
    pub(crate) fn highest(&self) -> u64 {
        self.highest
    }

    /// Bytes of RAM the buffer holds.
    pub fn allocated(&self) -> usize {
        self.store.allocated()
    }

    /// Internal state, for debugging.
    #[cfg(feature = "std")]
    pub fn debug(&self) -> std::string::String {
        std::format!(
            "base={} contiguous={} highest={} max={}",
            self.base,
            self.contiguous,
            self.highest,
            self.max_data
        )
    }
}

/// The ring whose store is `len` bytes long, for a power-of-two ring of
/// at least 512 bytes (then `recv_store_len(r)` is `r / 512 * 641`).
#[inline]
fn ring_of_len(len: usize) -> usize {
    len / 641 * 512
}

/// Byte range of bitmap `map` in a store laid out for ring size `ring`.
#[inline]
fn map_range(ring: usize, map: usize) -> (usize, usize) {
    let start = ring + map * ring.div_ceil(8);
    let len = if map == SUMMARY {
        ring.div_ceil(64).div_ceil(8)
    } else {
        ring.div_ceil(8)
    };
    (start, start + len)
}

/// Part `range` of `bytes`, cut to what is there.
#[inline]
fn part(bytes: &[u8], (start, end): (usize, usize)) -> &[u8] {
    let end = end.min(bytes.len());
    &bytes[start.min(end)..end]
}

/// First message end in `[from, to)` of the store `bytes` laid out for
/// `ring`: the summary says which words of the ends bitmap to search.
fn find_end_at(bytes: &[u8], ring: usize, from: u64, to: u64) -> Option<u64> {
    if ring == 0 {
        return None;
    }
    let ends = part(bytes, map_range(ring, ENDS));
    let summary = part(bytes, map_range(ring, SUMMARY));
    let r = ring as u64;
    let mut o = from;
    while o < to {
        let i = ring_index(o, r);
        // The part of the range before the ring wraps.
        let n = (to - o).min(r - i as u64) as usize;
        if let Some(k) = find_end_in(ends, summary, i, i + n) {
            return Some(o + (k - i) as u64);
        }
        o += n as u64;
    }
    None
}

/// First offset in `[from, to)` whose bit in `map` equals `want`, in the
/// store `bytes` laid out for `ring`. Word at a time.
fn find_bit_at(
    bytes: &[u8],
    ring: usize,
    map: usize,
    from: u64,
    to: u64,
    want: bool,
) -> Option<u64> {
    if ring == 0 {
        return None;
    }
    let bits = part(bytes, map_range(ring, map));
    let r = ring as u64;
    let mut o = from;
    while o < to {
        let i = ring_index(o, r);
        // The part of the range before the ring wraps.
        let n = (to - o).min(r - i as u64) as usize;
        if let Some(k) = find_in(bits, i, i + n, want) {
            return Some(o + (k - i) as u64);
        }
        o += n as u64;
    }
    None
}

/// Sets bits `[from, to)` of `map` to `value` in the store `bytes` laid
/// out for `ring` (nothing if it is not allocated).
fn set_bits_at(bytes: &mut [u8], ring: usize, map: usize, from: u64, to: u64, value: bool) {
    let (start, end) = map_range(ring, map);
    if ring == 0 || bytes.len() < end {
        return;
    }
    let bits = &mut bytes[start..end];
    let r = ring as u64;
    let mut o = from;
    while o < to {
        let i = ring_index(o, r);
        let n = (to - o).min(r - i as u64) as usize;
        fill_in(bits, i, i + n, value);
        o += n as u64;
    }
}

/// Sets or clears the end bit for offset `o` in the store `bytes` laid
/// out for `ring`, and its word's summary bit: set with it, cleared once
/// the word has no bit left.
#[inline]
fn set_end_at(bytes: &mut [u8], ring: usize, o: u64, value: bool) {
    if ring == 0 {
        return;
    }
    let (ends, sum) = (map_range(ring, ENDS), map_range(ring, SUMMARY).0);
    let i = ring_index(o, ring as u64);
    let (k, bit) = (i / 64, 1u8 << (i % 8));
    let Some(map) = bytes.get_mut(ends.0..ends.1) else {
        return;
    };
    let Some(b) = map.get_mut(i / 8) else {
        return;
    };
    let sum_bit = if value {
        *b |= bit;
        true
    } else {
        *b &= !bit;
        word(map, k) != 0
    };
    if let Some(s) = bytes.get_mut(sum + k / 8) {
        if sum_bit {
            *s |= 1 << (k % 8);
        } else {
            *s &= !(1 << (k % 8));
        }
    }
}

/// Whether bit `i` of `bits` is set; bits past the slice read as clear.
fn get_bit(bits: &[u8], i: usize) -> bool {
    bits.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
}

/// First index in `[from, to)` whose bit equals `want`: bit by bit to a
/// byte boundary, then 64 bits, then 8 bits at a time.
fn find_in(bits: &[u8], from: usize, to: usize, want: bool) -> Option<usize> {
    let mut i = from;
    while i < to && !i.is_multiple_of(8) {
        if get_bit(bits, i) == want {
            return Some(i);
        }
        i += 1;
    }
    // Bits equal to `want` become ones.
    let flip = |x: u64| if want { x } else { !x };
    // Blocks of 64 bytes first: one holding no such bit is passed over
    // with a few vector instructions (the OR of its bytes); the first
    // block holding one is searched by word below.
    let blocks = to.saturating_sub(i) / 512;
    if let Some(run) = bits.get(i / 8..i / 8 + 64 * blocks) {
        for b in run.chunks_exact(64) {
            if b.iter().fold(0u8, |a, &x| a | if want { x } else { !x }) != 0 {
                break;
            }
            i += 512;
        }
    }
    // Whole words: `i` is a multiple of 8 here.
    let words = to.saturating_sub(i) / 64;
    if let Some(run) = bits.get(i / 8..i / 8 + 8 * words) {
        for w in run.chunks_exact(8) {
            let mut a = [0u8; 8];
            a.copy_from_slice(w);
            let x = flip(u64::from_le_bytes(a));
            if x != 0 {
                return Some(i + x.trailing_zeros() as usize);
            }
            i += 64;
        }
    }
    while i + 8 <= to {
        let x = flip(u64::from(bits.get(i / 8).copied().unwrap_or(0))) & 0xff;
        if x != 0 {
            return Some(i + x.trailing_zeros() as usize);
        }
        i += 8;
    }
    (i..to).find(|&k| get_bit(bits, k) == want)
}

/// Word `k` of a bitmap (bit `64k + j` is bit `j`); bytes past the slice
/// read as clear.
#[inline]
fn word(bits: &[u8], k: usize) -> u64 {
    let at = 8 * k;
    if let Some(w) = bits.get(at..at + 8) {
        let mut a = [0u8; 8];
        a.copy_from_slice(w);
        return u64::from_le_bytes(a);
    }
    let mut a = [0u8; 8];
    if let Some(w) = bits.get(at..) {
        a[..w.len()].copy_from_slice(w);
    }
    u64::from_le_bytes(a)
}

/// First set bit of `bits` in `[from, last]`, a word at a time.
#[inline]
fn next_set(bits: &[u8], from: usize, last: usize) -> Option<usize> {
    if from > last {
        return None;
    }
    let mut k = from / 64;
    let mut x = word(bits, k) & (!0u64 << (from % 64));
    loop {
        if x != 0 {
            let i = 64 * k + x.trailing_zeros() as usize;
            return (i <= last).then_some(i);
        }
        k += 1;
        if 64 * k > last {
            return None;
        }
        x = word(bits, k);
    }
}

/// First set bit of `ends` in `[from, to)`, reading only the words whose
/// bit in `summary` is set (a word whose summary bit is clear has none).
fn find_end_in(ends: &[u8], summary: &[u8], from: usize, to: usize) -> Option<usize> {
    if from >= to {
        return None;
    }
    let last = (to - 1) / 64;
    let mut k = from / 64;
    // The first word is read whatever its summary bit says.
    let mut x = word(ends, k) & (!0u64 << (from % 64));
    loop {
        if x != 0 {
            // The first set bit at or after `from`.
            let i = 64 * k + x.trailing_zeros() as usize;
            return (i < to).then_some(i);
        }
        k = next_set(summary, k + 1, last)?;
        x = word(ends, k);
    }
}

/// Sets bits `[from, to)` of `bits` to `value`, whole bytes at once.
fn fill_in(bits: &mut [u8], from: usize, to: usize, value: bool) {
    let set = |bits: &mut [u8], i: usize| {
        let b = &mut bits[i / 8];
        if value {
            *b |= 1 << (i % 8);
        } else {
            *b &= !(1 << (i % 8));
        }
    };
    let mut i = from;
    while i < to && !i.is_multiple_of(8) {
        set(bits, i);
        i += 1;
    }
    let whole = (to - i) / 8;
    bits[i / 8..i / 8 + whole].fill(if value { 0xff } else { 0 });
    i += whole * 8;
    while i < to {
        set(bits, i);
        i += 1;
    }
}

/// Ring write over the first `ring` bytes of the store.
fn ring_write_window<B: ByteStore>(store: &mut B, ring: u64, offset: u64, data: &[u8]) {
    if B::GROWS && ring == 0 {
        return;
    }
    let w = ring as usize;
    let buf = &mut store.held_mut()[..w];
    let start = ring_index(offset, ring);
    let first = data.len().min(w - start);
    buf[start..start + first].copy_from_slice(&data[..first]);
    let rest = &data[first..];
    if !rest.is_empty() {
        buf[..rest.len()].copy_from_slice(rest);
    }
}

/// The (up to) two slices of the ring over the first `ring` bytes of the
/// store that hold `len` bytes from `offset`, in order.
fn ring_slices_window<B: ByteStore>(
    store: &B,
    ring: u64,
    offset: u64,
    len: usize,
) -> (&[u8], &[u8]) {
    if B::GROWS && ring == 0 {
        return (&[], &[]);
    }
    let w = ring as usize;
    let buf = &store.bytes()[..w];
    let start = ring_index(offset, ring);
    let first = len.min(w - start);
    (&buf[start..start + first], &buf[..len - first])
}

/// Ring read over the first `ring` bytes of the store.
fn ring_read_window<B: ByteStore>(store: &B, ring: u64, offset: u64, out: &mut [u8]) {
    if B::GROWS && ring == 0 {
        return;
    }
    let w = ring as usize;
    let buf = &store.bytes()[..w];
    let start = ring_index(offset, ring);
    let first = out.len().min(w - start);
    out[..first].copy_from_slice(&buf[start..start + first]);
    let rest = out.len() - first;
    if rest > 0 {
        out[first..].copy_from_slice(&buf[..rest]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::FixedBytes;
    use proptest::prelude::*;

    type Store = FixedBytes<{ recv_store_len(64) }>;

    #[test]
    fn out_of_order_fragments_make_whole_messages_in_order() {
        let mut c = RecvChannel::<FixedBytes<{ recv_store_len(32) }>>::new(32, 32);
        assert_eq!(c.insert(5, b"world", true), Ok(10));
        assert_eq!(c.peek_len(), None);
        assert_eq!(c.insert(2, b"llo", true), Ok(0));
        assert_eq!(c.peek_len(), None);
        assert_eq!(c.insert(0, b"he", false), Ok(0));
        let mut out = [0u8; 8];
        assert_eq!(c.read(&mut out[..4]), Some(Err(5)));
        assert_eq!(c.read(&mut out), Some(Ok(5)));
        assert_eq!(&out[..5], b"hello");
        // Duplicate of delivered data is ignored.
        assert_eq!(c.insert(0, b"hello", true), Ok(0));
        assert_eq!(c.read(&mut out), Some(Ok(5)));
        assert_eq!(&out[..5], b"world");
        assert_eq!(c.read(&mut out), None);
    }

    #[test]
    fn credit_and_size_limits_hold() {
        let mut c = RecvChannel::<FixedBytes<{ recv_store_len(16) }>>::new(16, 8);
        assert_eq!(c.insert(10, &[0; 7], false), Err(RecvError::FlowControl));
        assert_eq!(c.insert(0, &[0; 8], true), Ok(8));
        assert_eq!(c.credit_update(), None);
        let mut out = [0u8; 8];
        c.read(&mut out).unwrap().unwrap();
        assert_eq!(c.credit_update(), Some(24));
        assert_eq!(c.max_data(), 24);
        // Nine contiguous bytes and no end within eight: too large.
        assert_eq!(c.insert(8, &[0; 9], false), Err(RecvError::MessageTooLarge));
    }

    /// A fixed store shorter than a window asks for shrinks the window
    /// until the ring and all three bitmaps fit, and the channel then
    /// carries whole windows of messages, across the ring's end too.
    #[test]
    fn a_short_fixed_store_shrinks_the_window_to_fit_its_bitmaps() {
        fn fits<const N: usize>() {
            let mut c = RecvChannel::<FixedBytes<N>>::new(N, N);
            let w = c.window as usize;
            assert!(w > 0 && recv_store_len(w) <= N, "{N}: window {w}");
            let data = std::vec![5u8; w];
            let mut out = std::vec![0u8; w];
            for round in 0..3u64 {
                let at = c.consumed();
                assert_eq!(c.insert(at, &data[..w / 2 + 1], true), Ok(w as u64 / 2 + 1));
                assert_eq!(c.read(&mut out), Some(Ok(w / 2 + 1)), "{N}: round {round}");
                let _ = c.credit_update();
            }
        }
        fits::<13>();
        fits::<77>();
        fits::<1000>();
        fits::<4096>();
    }

    /// A message across the ring's end is lent as two slices, in order;
    /// one that is not, as one slice and an empty one. Each is consumed
    /// once, with its credit, as `read` does.
    /// In-order messages, each after the previous one was read, have
    /// their end known as the first at once (no scan for it), and it is
    /// the one a scan finds; a fragment behind a gap leaves it unknown
    /// when other data already lies beyond the scanned part.
    #[test]
    fn in_order_fragments_know_their_end_without_a_scan() {
        let mut r = RecvChannel::<FixedBytes<{ recv_store_len(256) }>>::new(256, 64);
        let mut out = [0u8; 64];
        let mut off = 0u64;
        for len in [5usize, 17, 1, 40, 63, 9, 30, 64, 12, 50] {
            let msg = [len as u8; 64];
            assert_eq!(r.insert(off, &msg[..len], true), Ok(len as u64));
            assert_eq!(r.first_end, off + len as u64 - 1, "known at once");
            assert_eq!(Some(r.first_end), r.first_end_by_scan());
            assert_eq!(r.read(&mut out), Some(Ok(len)));
            assert_eq!(r.first_end, UNKNOWN);
            let _ = r.credit_update();
            off += len as u64;
        }
        // A message in two fragments: the first (no end) leaves nothing to
        // know; then data beyond the scanned part exists, so a later
        // fragment out of order must not claim the first end.
        assert_eq!(r.insert(off + 10, &[1; 5], true), Ok(15));
        assert_eq!(r.first_end, off + 14);
        assert_eq!(r.insert(off + 4, &[1; 2], true), Ok(0));
        assert_eq!(r.first_end, off + 5, "lower end, known end moved down");
        assert_eq!(Some(r.first_end), r.first_end_by_scan());
        let mut s = RecvChannel::<FixedBytes<{ recv_store_len(256) }>>::new(256, 64);
        assert_eq!(s.insert(10, &[1; 5], false), Ok(15));
        assert_eq!(s.insert(3, &[1; 2], true), Ok(0));
        assert_eq!(s.first_end, UNKNOWN, "data lay beyond: scan instead");
        assert_eq!(s.first_end_by_scan(), Some(4));
    }

    #[test]
    fn borrowed_reads_lend_both_parts_of_a_wrapped_message() {
        let mut c = RecvChannel::<FixedBytes<{ recv_store_len(16) }>>::new(16, 16);
        assert_eq!(c.read_with(|_, _| unreachable!()), None::<()>);
        c.insert(0, b"abcdefghij", true).unwrap();
        let parts = c.read_with(|a, b| (a.to_vec(), b.to_vec()));
        assert_eq!(parts, Some((b"abcdefghij".to_vec(), std::vec::Vec::new())));
        assert_eq!(c.credit_update(), Some(26));
        c.insert(10, b"0123456789", true).unwrap();
        let parts = c.read_with(|a, b| (a.to_vec(), b.to_vec()));
        assert_eq!(parts, Some((b"012345".to_vec(), b"6789".to_vec())));
        assert_eq!(c.consumed(), 20);
        assert_eq!(c.read_with(|_, _| unreachable!()), None::<()>);
        assert_eq!(c.credit_update(), Some(36));
    }

    /// A heap store of a 1 MiB window: small messages, read as they come,
    /// never make it more than the small ring; 300 KiB held at once grow
    /// it to at least that and at most the window; drained and released,
    /// it holds nothing, and small messages then take the small ring again.
    #[test]
    fn a_heap_store_grows_with_what_it_holds() {
        use crate::storage::{HeapBytes, MIN_RING};
        const W: usize = 1 << 20;
        let small = recv_store_len(MIN_RING);
        let mut c = RecvChannel::<HeapBytes>::new(W, W);
        assert_eq!(c.allocated(), 0);
        let mut out = std::vec![0u8; W];
        let mut off = 0u64;
        // Two windows' worth of 300-byte messages, across many ring wraps.
        for k in 0..7000u64 {
            let msg = [k as u8; 300];
            assert_eq!(c.insert(off, &msg, true), Ok(300));
            assert_eq!(c.read(&mut out), Some(Ok(300)));
            assert_eq!(out[..300], msg);
            let _ = c.credit_update();
            assert!(c.allocated() <= small, "{k}: {}", c.allocated());
            off += 300;
        }
        assert_eq!(c.allocated(), small);
        // 300 KiB in 1 KiB messages, held at once (in order).
        let held = 300 * 1024;
        for k in 0..300u64 {
            let msg = [(k * 7) as u8; 1024];
            assert_eq!(c.insert(off + k * 1024, &msg, true), Ok(1024));
        }
        assert!(c.allocated() >= held, "{}", c.allocated());
        assert!(c.allocated() <= recv_store_len(W), "{}", c.allocated());
        for k in 0..300u64 {
            assert_eq!(c.read(&mut out), Some(Ok(1024)));
            assert!(
                out[..1024].iter().all(|&b| b == (k * 7) as u8),
                "message {k}"
            );
        }
        off += held as u64;
        c.release_if_drained();
        assert_eq!(c.allocated(), 0);
        let _ = c.credit_update();
        // Fragments received out of order in the small ring, then one that
        // grows it: the gaps filled, the messages come out whole.
        assert_eq!(c.insert(off + 1000, &[3; 100], false), Ok(1100));
        assert_eq!(c.insert(off + 2000, &[4; 100], true), Ok(1000));
        assert_eq!(c.allocated(), small);
        assert_eq!(c.insert(off + 9000, &[5; 100], true), Ok(7000));
        assert!(c.allocated() > small);
        assert_eq!(c.insert(off, &[3; 1000], false), Ok(0));
        assert_eq!(c.insert(off + 1100, &[4; 900], false), Ok(0));
        assert_eq!(c.peek_len(), Some(2100));
        assert_eq!(c.insert(off + 2100, &[5; 6900], false), Ok(0));
        assert_eq!(c.read(&mut out), Some(Ok(2100)));
        assert!(out[..1100].iter().all(|&b| b == 3) && out[1100..2100].iter().all(|&b| b == 4));
        assert_eq!(c.read(&mut out), Some(Ok(7000)));
        assert!(out[..7000].iter().all(|&b| b == 5));
        off += 9100;
        c.release_if_drained();
        assert_eq!(c.allocated(), 0);
        let _ = c.credit_update();
        // A fragment far ahead of a gap grows the ring to reach it, and the
        // gap filled later gives whole messages.
        assert_eq!(c.insert(off + 200_000, &[9; 100], true), Ok(200_100));
        assert!(c.allocated() >= 200_100 && c.allocated() <= recv_store_len(W));
        assert_eq!(c.insert(off, &std::vec![8u8; 200_000], true), Ok(0));
        assert_eq!(c.read(&mut out), Some(Ok(200_000)));
        assert!(out[..200_000].iter().all(|&b| b == 8));
        assert_eq!(c.read(&mut out), Some(Ok(100)));
        assert_eq!(out[..100], [9; 100]);
        c.release_if_drained();
        assert_eq!(c.allocated(), 0);
        let _ = c.credit_update();
        assert_eq!(c.insert(off + 200_100, &[1; 10], true), Ok(10));
        assert_eq!(c.allocated(), small);
    }

    proptest! {
        /// Hostile fragments (in order, out of order, duplicated,
        /// overlapping, beyond the credit, with and without ends) and reads
        /// get the same answers, bytes and credits from a channel on a
        /// heap store that grows as from one on a fixed store of the whole
        /// window; the heap store never holds more than the ring the data
        /// in it needs.
        #[test]
        fn a_growing_store_matches_a_fixed_one(
            ops in proptest::collection::vec(
                (0u8..10, 0u64..30_000, 0usize..7000, any::<bool>()), 1..120),
            window in prop_oneof![Just(20_000usize), Just(16_384), Just(9_001), Just(3_000)],
            max_message in prop_oneof![Just(20_000usize), Just(5_000), Just(100)],
        ) {
            use crate::storage::HeapBytes;
            type Fixed = FixedBytes<{ recv_store_len(20_000) }>;
            let mut heap = RecvChannel::<HeapBytes>::new(window, max_message);
            let mut fixed = RecvChannel::<Fixed>::new(window, max_message);
            // Stream bytes depend on their offset, so bytes moved to the
            // wrong place show.
            let stream = |o: u64, len: usize| -> std::vec::Vec<u8> {
                (o..o + len as u64).map(|x| (x ^ (x >> 8)) as u8).collect()
            };
            let (mut a, mut b) = (std::vec![0u8; 20_000], std::vec![0u8; 20_000]);
            for (op, off, len, fin) in ops {
                match op {
                    // Mostly fragments near what is expected next: small
                    // ones within the first ring (out of order, so the
                    // received bits matter when it grows), and any within
                    // the window.
                    0..=4 => {
                        let (span, len) = if op < 3 { (3000, len % 1500) } else { (window as u64 + 200, len) };
                        let off = heap.consumed().saturating_sub(100) + off % span;
                        let data = stream(off, len);
                        prop_assert_eq!(heap.insert(off, &data, fin), fixed.insert(off, &data, fin));
                    }
                    5 => {
                        let data = stream(off, len % 50);
                        prop_assert_eq!(heap.insert(off, &data, fin), fixed.insert(off, &data, fin));
                    }
                    6 => prop_assert_eq!(heap.peek_len(), fixed.peek_len()),
                    7 => {
                        let n = (len * 3).min(20_000);
                        prop_assert_eq!(heap.read(&mut a[..n]), fixed.read(&mut b[..n]));
                        prop_assert_eq!(&a, &b);
                    }
                    8 => prop_assert_eq!(
                        heap.read_with(|x, y| [x, y].concat()),
                        fixed.read_with(|x, y| [x, y].concat())
                    ),
                    _ => {
                        heap.release_if_drained();
                        fixed.release_if_drained();
                        prop_assert_eq!(heap.credit_update(), fixed.credit_update());
                    }
                }
                prop_assert_eq!(heap.is_readable(), fixed.is_readable());
                prop_assert_eq!(heap.max_data(), fixed.max_data());
                prop_assert_eq!(
                    (heap.base, heap.contiguous, heap.scanned, heap.marked, heap.highest, heap.first_end),
                    (fixed.base, fixed.contiguous, fixed.scanned, fixed.marked, fixed.highest, fixed.first_end)
                );
                prop_assert!(heap.summary_is_exact());
                prop_assert_eq!(heap.first_end_by_scan(), fixed.first_end_by_scan());
                // Held: nothing, or the ring the live data needs, doubled at
                // most once beyond it.
                let ring = heap.ring() as usize;
                prop_assert_eq!(heap.allocated(), if ring == 0 { 0 } else { recv_store_len(ring) });
                let live = (heap.highest - heap.base) as usize;
                prop_assert!(live <= ring);
            }
        }

        /// Long runs of equal bits with a few odd ones (what the block
        /// loop passes over and then stops in): `find_in` agrees with a
        /// bit-by-bit search.
        #[test]
        fn sparse_bitmaps_match_bit_by_bit(
            len in 0usize..300,
            fill in any::<bool>(),
            odd in proptest::collection::vec(0usize..2400, 0..4),
            a in 0usize..2500,
            b in 0usize..2500,
            want in any::<bool>(),
        ) {
            let mut bytes = std::vec![if fill { 0xffu8 } else { 0 }; len];
            for k in odd.into_iter().filter(|&k| k < len * 8) {
                bytes[k / 8] ^= 1 << (k % 8);
            }
            let (from, to) = (a.min(b), a.max(b));
            let naive = (from..to).find(|&i| get_bit(&bytes, i) == want);
            prop_assert_eq!(find_in(&bytes, from, to, want), naive);
        }

        /// `find_end_in` finds what a bit-by-bit search finds, given an
        /// exact summary, over bitmaps of several words (a length not a
        /// whole number of words too).
        #[test]
        fn summary_search_matches_bit_by_bit(
            len in 0usize..100,
            set in proptest::collection::vec(0usize..800, 0..6),
            a in 0usize..850,
            b in 0usize..850,
        ) {
            let mut ends = std::vec![0u8; len];
            for k in set.into_iter().filter(|&k| k < len * 8) {
                ends[k / 8] |= 1 << (k % 8);
            }
            let mut summary = std::vec![0u8; len.div_ceil(8).div_ceil(8)];
            for k in 0..len.div_ceil(8) {
                if ends[8 * k..(8 * k + 8).min(len)].iter().any(|&x| x != 0) {
                    summary[k / 8] |= 1 << (k % 8);
                }
            }
            let (from, to) = (a.min(b), a.max(b));
            let naive = (from..to).find(|&i| get_bit(&ends, i));
            prop_assert_eq!(find_end_in(&ends, &summary, from, to), naive);
        }

        /// The search by stream offset over a ring (wrapping at most once,
        /// or more for a range longer than the ring) finds what looking at
        /// every offset's ring position does.
        #[test]
        fn ring_search_matches_offset_by_offset(
            ring in prop_oneof![Just(61usize), Just(64), Just(300), Just(1024)],
            set in proptest::collection::vec(0usize..1024, 0..6),
            from in 0u64..5000,
            span in 0u64..2200,
        ) {
            let mut bytes = std::vec![0u8; recv_store_len(ring)];
            for k in set.into_iter().filter(|&k| k < ring) {
                set_end_at(&mut bytes, ring, k as u64, true);
            }
            let (start, _) = map_range(ring, ENDS);
            let r = ring as u64;
            let naive = (from..from + span)
                .find(|&o| get_bit(&bytes[start..], (o % r) as usize));
            prop_assert_eq!(find_end_at(&bytes, ring, from, from + span), naive);
            // A short store (a growable one being allocated) reads as clear
            // past its end, and never panics.
            let short = &bytes[..bytes.len() / 2];
            let _ = find_end_at(short, ring, from, from + span);
        }

        /// The word-at-a-time bitmap helpers agree with bit-by-bit ones.
        #[test]
        fn bitmap_helpers_match_bit_by_bit(
            bytes in proptest::collection::vec(any::<u8>(), 0..40),
            a in 0usize..330,
            b in 0usize..330,
            want in any::<bool>(),
        ) {
            let (from, to) = (a.min(b), a.max(b));
            let naive = (from..to).find(|&i| get_bit(&bytes, i) == want);
            prop_assert_eq!(find_in(&bytes, from, to, want), naive);
            let to = to.min(bytes.len() * 8);
            let from = from.min(to);
            let mut fast = bytes.clone();
            fill_in(&mut fast, from, to, want);
            let mut slow = bytes.clone();
            for i in from..to {
                if want {
                    slow[i / 8] |= 1 << (i % 8);
                } else {
                    slow[i / 8] &= !(1 << (i % 8));
                }
            }
            prop_assert_eq!(fast, slow);
        }

        /// Messages cut into fragments, delivered in any order with
        /// duplicates, come out whole and in order, across ring wraps.
        #[test]
        fn reassembly_matches_the_model(
            sizes in proptest::collection::vec(1usize..20, 1..40),
            order_seed in any::<u64>(),
            cut in 1usize..9,
            // A window that is not a whole number of bitmap bytes too.
            window in prop_oneof![Just(64usize), Just(61)],
        ) {
            let mut c = RecvChannel::<Store>::new(window, 32);
            let mut stream = std::vec::Vec::new();
            let mut ends = std::vec::Vec::new();
            for (i, &s) in sizes.iter().enumerate() {
                stream.extend((0..s).map(|j| (i * 31 + j) as u8));
                ends.push(stream.len());
            }
            // Fragments of at most `cut` bytes that never cross a message end.
            let mut frags = std::vec::Vec::new();
            let mut start = 0;
            for &e in &ends {
                while start < e {
                    let end = (start + cut).min(e);
                    frags.push((start, end, end == e));
                    start = end;
                }
            }
            let mut delivered = std::vec::Vec::new();
            let mut out = [0u8; 64];
            let mut rng = order_seed;
            let mut pending = frags.clone();
            while !pending.is_empty() {
                // Pick a fragment within the credit, pseudo-randomly.
                rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let allowed: std::vec::Vec<usize> = (0..pending.len())
                    .filter(|&k| pending[k].1 as u64 <= c.max_data()).collect();
                prop_assert!(!allowed.is_empty());
                let k = allowed[(rng >> 33) as usize % allowed.len()];
                let (s, e, fin) = pending[k];
                c.insert(s as u64, &stream[s..e], fin).unwrap();
                if rng & 1 == 0 { pending.swap_remove(k); } // else: delivered again later
                // Copying and borrowed reads, mixed.
                loop {
                    let m = if rng & 4 == 0 {
                        match c.read(&mut out) {
                            Some(Ok(n)) => out[..n].to_vec(),
                            _ => break,
                        }
                    } else {
                        match c.read_with(|a, b| [a, b].concat()) {
                            Some(m) => m,
                            None => break,
                        }
                    };
                    delivered.push(m);
                    rng = rng.rotate_left(7);
                }
                let _ = c.credit_update();
            }
            let mut expect = std::vec::Vec::new();
            let mut s = 0;
            for &e in &ends { expect.push(stream[s..e].to_vec()); s = e; }
            prop_assert_eq!(delivered, expect);
        }

        /// Hostile fragments (any offset, length and `fin`, ends moved,
        /// overlapping, duplicated, beyond the credit, messages too large)
        /// get exactly the same answers, reads and credits from a channel
        /// that remembers its first message end as from one made to scan
        /// for it every time; and a remembered end is always the lowest
        /// end bit a scan would find.
        #[test]
        fn remembered_first_end_changes_nothing(
            ops in proptest::collection::vec(
                (0u8..8, 0u64..200, 0usize..24, any::<bool>()), 1..200),
            // Windows of one summary word and of several, whole or not.
            window in prop_oneof![Just(64usize), Just(61), Just(300), Just(1000)],
            max_message in prop_oneof![Just(8usize), Just(32), Just(64)],
        ) {
            type Big = FixedBytes<{ recv_store_len(1000) }>;
            let mut fast = RecvChannel::<Big>::new(window, max_message);
            let mut slow = RecvChannel::<Big>::new(window, max_message);
            let data = [7u8; 24];
            let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
            for (op, off, len, fin) in ops {
                slow.forget_first_end();
                match op {
                    // Mostly fragments near what is expected next.
                    0..=3 => {
                        let off = fast.consumed().saturating_sub(8) + off % 80;
                        prop_assert_eq!(
                            fast.insert(off, &data[..len], fin),
                            slow.insert(off, &data[..len], fin)
                        );
                        slow.forget_first_end();
                    }
                    4 => {
                        prop_assert_eq!(
                            fast.insert(off, &data[..len], fin),
                            slow.insert(off, &data[..len], fin)
                        );
                        slow.forget_first_end();
                    }
                    5 => prop_assert_eq!(fast.peek_len(), slow.peek_len()),
                    6 => {
                        let n = len.min(64) * 3;
                        prop_assert_eq!(
                            fast.read(&mut a[..n.min(64)]),
                            slow.read(&mut b[..n.min(64)])
                        );
                        prop_assert_eq!(a, b);
                    }
                    _ => {
                        fast.release_if_drained();
                        slow.release_if_drained();
                        prop_assert_eq!(fast.credit_update(), slow.credit_update());
                    }
                }
                prop_assert_eq!(fast.is_readable(), slow.is_readable());
                if fast.first_end != UNKNOWN {
                    prop_assert_eq!(Some(fast.first_end), fast.first_end_by_scan());
                }
                // The summary-guided search finds what a bit-by-bit one does.
                prop_assert!(fast.summary_is_exact());
                let by_scan = fast.first_end_by_scan().filter(|&e| e < fast.contiguous);
                prop_assert_eq!(
                    fast.find_end(fast.scanned.max(fast.base), fast.contiguous),
                    by_scan
                );
                prop_assert_eq!(
                    (fast.base, fast.contiguous, fast.scanned, fast.marked, fast.highest),
                    (slow.base, slow.contiguous, slow.scanned, slow.marked, slow.highest)
                );
            }
        }
    }
}
