//! Byte storage for channel buffers: fixed arrays without an allocator,
//! heap vectors allocated at their limit on first use (and freed when
//! drained) with one.
//!
//! The RAM a connection may use is the sum of its channels' buffers, each at
//! most the configured window, so it is known in advance either way.

/// A byte buffer of bounded capacity used as a ring by the channel code.
pub trait ByteStore {
    /// A store for at most `limit` bytes (a fixed store caps it at its size).
    fn new(limit: usize) -> Self;
    /// Usable capacity in bytes.
    fn capacity(&self) -> usize;
    /// The whole capacity as a slice, allocating it first if needed.
    fn bytes_mut(&mut self) -> &mut [u8];
    /// The capacity as a slice; empty if nothing was allocated yet.
    fn bytes(&self) -> &[u8];
    /// The buffer holds no data any more: a growable store may free memory.
    fn release(&mut self);
    /// Bytes of RAM held right now.
    fn allocated(&self) -> usize;
}

/// A fixed array of `N` bytes: no allocator, cost known at compile time.
pub struct FixedBytes<const N: usize> {
    buf: [u8; N],
    limit: usize,
}

impl<const N: usize> ByteStore for FixedBytes<N> {
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

/// A heap buffer allocated on first use and freed once drained (the
/// connection releases drained buffers when its timers run), up to `limit`
/// bytes.
#[cfg(feature = "alloc")]
pub struct HeapBytes {
    buf: alloc::vec::Vec<u8>,
    limit: usize,
}

#[cfg(feature = "alloc")]
impl ByteStore for HeapBytes {
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
    fn release(&mut self) {
        self.buf = alloc::vec::Vec::new();
    }
    fn allocated(&self) -> usize {
        self.buf.capacity()
    }
}

/// Ring-buffer access: offset `o` of a stream lives at `o % capacity`.
#[inline]
pub(crate) fn ring_write<B: ByteStore>(store: &mut B, offset: u64, data: &[u8]) {
    let cap = store.capacity();
    if cap == 0 || data.is_empty() {
        return;
    }
    let buf = store.bytes_mut();
    let start = (offset % cap as u64) as usize;
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
    let cap = store.capacity();
    let buf = store.bytes();
    if cap == 0 || len == 0 || buf.len() < cap {
        return (&[], &[]);
    }
    let start = (offset % cap as u64) as usize;
    let first = len.min(cap - start);
    (&buf[start..start + first], &buf[..len - first])
}

/// Reads `out.len()` bytes of the stream at `offset` from the ring.
#[inline]
pub(crate) fn ring_read<B: ByteStore>(store: &B, offset: u64, out: &mut [u8]) {
    let cap = store.capacity();
    let buf = store.bytes();
    if cap == 0 || out.is_empty() || buf.len() < cap {
        return;
    }
    let start = (offset % cap as u64) as usize;
    let first = out.len().min(cap - start);
    out[..first].copy_from_slice(&buf[start..start + first]);
    let rest = out.len() - first;
    if rest > 0 {
        out[first..].copy_from_slice(&buf[..rest]);
    }
}
