//! Byte storage for channel buffers: fixed arrays without an allocator,
//! heap vectors that grow with use (up to their limit) and are freed when
//! drained with one.
//!
//! The RAM a connection may use is the sum of its channels' buffers, each at
//! most the configured window, so it is known in advance either way; with
//! heap stores it follows what the channels actually hold.

/// Smallest ring a growable store starts at (or its limit if smaller).
pub const MIN_RING: usize = 4096;

/// A byte buffer of bounded capacity used as a ring by the channel code.
pub trait ByteStore {
    /// Whether the store can hold fewer bytes than its capacity and grow
    /// ([`resize`](Self::resize)). A fixed store does not: its ring is
    /// always the whole capacity, and code for growth is compiled out.
    const GROWS: bool = false;
    /// A store for at most `limit` bytes (a fixed store caps it at its size).
    fn new(limit: usize) -> Self;
    /// Usable capacity in bytes (the most the store may ever hold).
    fn capacity(&self) -> usize;
    /// The whole capacity as a slice, allocating all of it first if needed:
    /// what a store costs at its fullest. Not for a store a channel uses
    /// (a growable one keeps its ring's layout for the length it holds):
    /// the channels use [`held_mut`](Self::held_mut).
    fn bytes_mut(&mut self) -> &mut [u8];
    /// The bytes held now; empty if nothing was allocated yet.
    fn bytes(&self) -> &[u8];
    /// The bytes held now, mutable, without allocating (the whole capacity
    /// for a fixed store).
    fn held_mut(&mut self) -> &mut [u8] {
        self.bytes_mut()
    }
    /// A growable store now holds `len` bytes (at most its capacity), all
    /// zero but what `relayout(old, new)` writes there from the bytes held
    /// before. A fixed store is never resized (its callers check
    /// [`GROWS`](Self::GROWS)); it ignores the call.
    fn resize(&mut self, len: usize, relayout: impl FnOnce(&[u8], &mut [u8])) {
        let _ = (len, relayout);
    }
    /// The buffer holds no data any more: a growable store may free memory.
    fn release(&mut self);
    /// Bytes of RAM held right now.
    fn allocated(&self) -> usize;
    /// Where a send channel on this store keeps the ends of the messages
    /// it holds.
    type Ends: EndQueue;
}

/// Most messages a send channel on a fixed store keeps unacknowledged.
pub const FIXED_QUEUED_MESSAGES: usize = 64;

/// Window bytes per message end a send channel on a growable store may
/// keep: a channel holds up to `window / HEAP_BYTES_PER_END` unacknowledged
/// messages (at least [`FIXED_QUEUED_MESSAGES`]), so messages of this size
/// or more on average fill the window before the table of ends fills.
pub const HEAP_BYTES_PER_END: usize = 32;

/// The end offsets of the messages a send channel holds (not yet
/// acknowledged in full), ascending, oldest first.
pub trait EndQueue {
    /// The queue for a channel whose send buffer holds `window` bytes.
    fn for_window(window: usize) -> Self;
    /// Whether another end would exceed the queue's limit.
    fn is_full(&self) -> bool;
    /// Appends `end` (the caller checked [`is_full`](Self::is_full)).
    fn push_back(&mut self, end: u64);
    /// The oldest end.
    fn front(&self) -> Option<u64>;
    /// Removes the oldest end.
    fn pop_front(&mut self);
    /// The ends in order, as (up to) two slices.
    fn as_slices(&self) -> (&[u64], &[u64]);
    /// How many ends are queued.
    fn len(&self) -> usize;
    /// Whether none is queued.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The queue is empty: a growable one may free memory.
    fn release(&mut self) {}
    /// Bytes of RAM held outside the queue itself.
    fn allocated(&self) -> usize {
        0
    }
}

/// [`FIXED_QUEUED_MESSAGES`] ends in place, no allocator.
pub struct FixedEnds(heapless::Deque<u64, FIXED_QUEUED_MESSAGES>);

impl EndQueue for FixedEnds {
    #[inline]
    fn for_window(_window: usize) -> Self {
        FixedEnds(heapless::Deque::new())
    }
    #[inline]
    fn is_full(&self) -> bool {
        self.0.is_full()
    }
    #[inline]
    fn push_back(&mut self, end: u64) {
        let _ = self.0.push_back(end);
    }
    #[inline]
    fn front(&self) -> Option<u64> {
        self.0.front().copied()
    }
    #[inline]
    fn pop_front(&mut self) {
        self.0.pop_front();
    }
    #[inline]
    fn as_slices(&self) -> (&[u64], &[u64]) {
        self.0.as_slices()
    }
    #[inline]
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// Ends on the heap, growing with use up to one per
/// [`HEAP_BYTES_PER_END`] bytes of window, freed when empty.
#[cfg(any(feature = "alloc", test))]
pub struct HeapEnds {
    q: alloc::collections::VecDeque<u64>,
    limit: usize,
}

#[cfg(any(feature = "alloc", test))]
impl EndQueue for HeapEnds {
    fn for_window(window: usize) -> Self {
        HeapEnds {
            q: alloc::collections::VecDeque::new(),
            limit: (window / HEAP_BYTES_PER_END).max(FIXED_QUEUED_MESSAGES),
        }
    }
    #[inline]
    fn is_full(&self) -> bool {
        self.q.len() >= self.limit
    }
    #[inline]
    fn push_back(&mut self, end: u64) {
        self.q.push_back(end);
    }
    #[inline]
    fn front(&self) -> Option<u64> {
        self.q.front().copied()
    }
    #[inline]
    fn pop_front(&mut self) {
        self.q.pop_front();
    }
    #[inline]
    fn as_slices(&self) -> (&[u64], &[u64]) {
        self.q.as_slices()
    }
    #[inline]
    fn len(&self) -> usize {
        self.q.len()
    }
    fn release(&mut self) {
        if self.q.is_empty() {
            self.q = alloc::collections::VecDeque::new();
        }
    }
    fn allocated(&self) -> usize {
        self.q.capacity() * core::mem::size_of::<u64>()
    }
}

/// A fixed array of `N` bytes: no allocator, cost known at compile time.
pub struct FixedBytes<const N: usize> {
    buf: [u8; N],
    limit: usize,
}

impl<const N: usize> ByteStore for FixedBytes<N> {
    type Ends = FixedEnds;
    #[inline]
    fn new(limit: usize) -> Self {
        FixedBytes {
            buf: [0; N],
            limit: limit.min(N),
        }
    }
    #[inline]
    fn capacity(&self) -> usize {
        self.limit
    }
    #[inline]
    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.buf[..self.limit]
    }
    #[inline]
    fn bytes(&self) -> &[u8] {
        &self.buf[..self.limit]
    }
    fn release(&mut self) {}
    fn allocated(&self) -> usize {
        N
    }
}

/// A heap buffer that grows with use, up to `limit` bytes, and is freed
/// once drained (the connection releases drained buffers when its timers
/// run). The channels start it at [`MIN_RING`] bytes (with their bitmaps)
/// and double it when what they must hold does not fit.
#[cfg(any(feature = "alloc", test))]
pub struct HeapBytes {
    buf: alloc::vec::Vec<u8>,
    limit: usize,
}

#[cfg(any(feature = "alloc", test))]
impl ByteStore for HeapBytes {
    const GROWS: bool = true;
    type Ends = HeapEnds;
    #[inline]
    fn new(limit: usize) -> Self {
        HeapBytes {
            buf: alloc::vec::Vec::new(),
            limit,
        }
    }
    #[inline]
    fn capacity(&self) -> usize {
        self.limit
    }
    #[inline]
    fn bytes_mut(&mut self) -> &mut [u8] {
        if self.buf.len() != self.limit {
            self.buf.resize(self.limit, 0);
        }
        &mut self.buf
    }
    #[inline]
    fn bytes(&self) -> &[u8] {
        &self.buf
    }
    #[inline]
    fn held_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }
    fn resize(&mut self, len: usize, relayout: impl FnOnce(&[u8], &mut [u8])) {
        // Zeroed by the allocator (no copy of the old bytes: `relayout`
        // moves what is live to where the new size puts it).
        let mut new = alloc::vec![0u8; len.min(self.limit)];
        relayout(&self.buf, &mut new);
        self.buf = new;
    }
    fn release(&mut self) {
        self.buf = alloc::vec::Vec::new();
    }
    fn allocated(&self) -> usize {
        self.buf.capacity()
    }
}

/// The ring size a growable store needs to hold `need` bytes: the next
/// power of two from [`MIN_RING`], or the whole `limit` once that is
/// reached.
#[inline]
pub(crate) fn ring_size_for(need: usize, limit: usize) -> usize {
    let r = need.next_power_of_two().max(MIN_RING);
    if r >= limit { limit } else { r }
}

/// Copies the stream bytes `[from, to)` from the ring `old` to the ring
/// `new` (each its whole length; `to - from` at most both), where each
/// ring keeps offset `o` at `o % len`. Nothing when `old` is empty.
pub(crate) fn move_ring(old: &[u8], new: &mut [u8], from: u64, to: u64) {
    let (r0, r1) = (old.len() as u64, new.len() as u64);
    if r0 == 0 || r1 == 0 {
        return;
    }
    let mut o = from;
    while o < to {
        let (i, j) = (ring_index(o, r0), ring_index(o, r1));
        // The part before either ring wraps.
        let n = (to - o).min(r0 - i as u64).min(r1 - j as u64) as usize;
        new[j..j + n].copy_from_slice(&old[i..i + n]);
        o += n as u64;
    }
}

/// Makes a ring store hold at least `need` bytes (at most its capacity)
/// when it grows, keeping the live stream bytes `[from, to)` at their
/// offsets. A fixed store, or one large enough, is left alone.
#[inline]
pub(crate) fn reserve_ring<B: ByteStore>(store: &mut B, need: usize, from: u64, to: u64) {
    if B::GROWS && need > store.bytes().len() {
        grow_ring(store, need, from, to);
    }
}

#[cold]
#[inline(never)]
fn grow_ring<B: ByteStore>(store: &mut B, need: usize, from: u64, to: u64) {
    let len = ring_size_for(need, store.capacity());
    store.resize(len, |old, new| move_ring(old, new, from, to));
}

/// `o % ring`, the position of stream offset `o` in a ring of `ring` bytes
/// or bits (`ring` > 0): a mask when `ring` is a power of two (every heap
/// ring, and a fixed ring whose window is one), a division otherwise. A
/// 64-bit division costs tens of cycles, and the data path reduces
/// offsets several times per frame.
#[inline(always)]
pub(crate) fn ring_index(o: u64, ring: u64) -> usize {
    let mask = ring.wrapping_sub(1);
    if ring & mask == 0 {
        (o & mask) as usize
    } else {
        (o % ring) as usize
    }
}

/// Ring-buffer access: offset `o` of a stream lives at `o % len`, `len`
/// the bytes the store holds (its capacity for a fixed store; a growable
/// one is made large enough with [`reserve_ring`] first).
#[inline]
pub(crate) fn ring_write<B: ByteStore>(store: &mut B, offset: u64, data: &[u8]) {
    let buf = store.held_mut();
    let cap = buf.len();
    if cap == 0 || data.is_empty() {
        return;
    }
    let start = ring_index(offset, cap as u64);
    let first = data.len().min(cap - start);
    buf[start..start + first].copy_from_slice(&data[..first]);
    let rest = &data[first..];
    if !rest.is_empty() {
        buf[..rest.len()].copy_from_slice(rest);
    }
}

/// The (up to) two slices of the ring holding `len` bytes of the stream
/// at `offset`, in order (both empty if nothing was allocated).
#[inline]
pub(crate) fn ring_slices<B: ByteStore>(store: &B, offset: u64, len: usize) -> (&[u8], &[u8]) {
    let buf = store.bytes();
    let cap = buf.len();
    if cap == 0 || len == 0 {
        return (&[], &[]);
    }
    let start = ring_index(offset, cap as u64);
    let first = len.min(cap - start);
    (&buf[start..start + first], &buf[..len - first])
}

/// Reads `out.len()` bytes of the stream at `offset` from the ring.
#[inline]
pub(crate) fn ring_read<B: ByteStore>(store: &B, offset: u64, out: &mut [u8]) {
    let buf = store.bytes();
    let cap = buf.len();
    if cap == 0 || out.is_empty() {
        return;
    }
    let start = ring_index(offset, cap as u64);
    let first = out.len().min(cap - start);
    out[..first].copy_from_slice(&buf[start..start + first]);
    let rest = out.len() - first;
    if rest > 0 {
        out[first..].copy_from_slice(&buf[..rest]);
    }
}
