//! The sending half of a channel.

use crate::range_set::RangeSet;
use crate::storage::{ByteStore, EndQueue, reserve_ring, ring_read, ring_write};
/// Ranges tracked for acknowledged and lost bytes.
const RANGES: usize = 16;

/// Why a message was not accepted; each clears by itself as the peer
/// acknowledges or grants credit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendBlocked {
    /// The channel's send buffer is full of unacknowledged data.
    Buffer,
    /// The peer's credit for this channel is used up.
    ChannelCredit,
    /// The peer's credit for the whole connection is used up.
    ConnectionCredit,
    /// Too many messages are queued on this channel.
    Queue,
}

/// Outgoing stream state of one channel.
pub struct SendChannel<B: ByteStore> {
    buf: B,
    /// Lowest offset not yet acknowledged (the ring's start).
    base: u64,
    /// End of the data the application queued.
    write_off: u64,
    /// End of the data sent at least once.
    sent_off: u64,
    /// Acknowledged ranges above `base`.
    acked: RangeSet<RANGES>,
    /// Ranges declared lost and not yet sent again.
    lost: RangeSet<RANGES>,
    /// End offsets of messages not yet fully acknowledged, ascending.
    ends: B::Ends,
    /// How many of `ends` lie at or below `sent_off`: the index of the
    /// first end new data is cut at, so sending new data needs no search.
    ends_sent: usize,
    /// Peer credit: data may be sent below this offset.
    max_data: u64,
}

impl<B: ByteStore> SendChannel<B> {
    /// A channel with a send buffer of `window` bytes and initial peer
    /// credit `max_data`.
    pub fn new(window: usize, max_data: u64) -> Self {
        SendChannel {
            buf: B::new(window),
            base: 0,
            write_off: 0,
            sent_off: 0,
            acked: RangeSet::new(),
            lost: RangeSet::new(),
            ends: B::Ends::for_window(window),
            ends_sent: 0,
            max_data,
        }
    }

    /// Bytes of buffer free for new messages.
    pub fn free(&self) -> usize {
        self.buf.capacity() - (self.write_off - self.base) as usize
    }

    /// Whether a message could be queued now as far as this buffer goes:
    /// a free byte and a free slot in the table of message ends.
    pub fn has_room(&self) -> bool {
        self.free() > 0 && !self.ends.is_full()
    }

    /// Largest message this channel can ever hold.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Queues a whole message. `conn_blocked` tells whether the connection
    /// credit is what holds unsent data back, for the error's reason.
    pub fn push(&mut self, msg: &[u8], conn_blocked: bool) -> Result<(), SendBlocked> {
        if msg.is_empty() {
            // The stream cannot express an empty message (spec/channels.md
            // §2.2): it is accepted and sends nothing. Queuing its end would
            // take a slot that only an acknowledgement frees, and nothing is
            // sent to be acknowledged.
            return Ok(());
        }
        if self.ends.is_full() {
            return Err(SendBlocked::Queue);
        }
        if msg.len() > self.free() {
            let unsent = self.write_off > self.sent_off;
            return Err(if unsent && self.sent_off >= self.max_data {
                SendBlocked::ChannelCredit
            } else if unsent && conn_blocked {
                SendBlocked::ConnectionCredit
            } else {
                SendBlocked::Buffer
            });
        }
        // A growable buffer grows to hold it (never a refusal: the check
        // above is against the whole capacity).
        let live = (self.write_off - self.base) as usize;
        reserve_ring(&mut self.buf, live + msg.len(), self.base, self.write_off);
        ring_write(&mut self.buf, self.write_off, msg);
        self.write_off += msg.len() as u64;
        // Checked non-full above.
        self.ends.push_back(self.write_off);
        Ok(())
    }

    /// Whether anything is waiting to be sent (lost or new within credit).
    pub fn has_pending(&self, conn_credit: u64) -> bool {
        !self.lost.is_empty() || (self.sendable_new() > 0 && conn_credit > 0)
    }

    /// New bytes sendable under the channel credit.
    pub fn sendable_new(&self) -> u64 {
        self.write_off
            .min(self.max_data)
            .saturating_sub(self.sent_off)
    }

    /// Whether unsent data is held back by this channel's credit.
    pub fn is_blocked_by_credit(&self) -> bool {
        self.write_off > self.sent_off && self.sent_off >= self.max_data
    }

    /// The credit limit the peer gave (for CHANNEL_BLOCKED).
    pub fn max_data(&self) -> u64 {
        self.max_data
    }

    /// Raises the peer credit (MAX_CHANNEL_DATA); lower values are ignored.
    pub fn set_max_data(&mut self, max: u64) {
        self.max_data = self.max_data.max(max);
    }

    /// The next range to send, at most `max` bytes and never past the end
    /// of a message: lost data first, then new data within `conn_credit`
    /// new bytes. Returns `(offset, len, fin, is_new)`.
    pub fn next_range(&mut self, max: usize, conn_credit: u64) -> Option<(u64, usize, bool, bool)> {
        if max == 0 {
            return None;
        }
        if let Some((s, e)) = self.lost.first() {
            let (end, fin) = self.cut(s, e.min(s + max as u64));
            self.lost.remove(s, end);
            return Some((s, (end - s) as usize, fin, false));
        }
        let new = self.sendable_new().min(conn_credit).min(max as u64);
        if new == 0 {
            return None;
        }
        let s = self.sent_off;
        let e = s + new;
        // The first end after `sent_off` is at `ends_sent` (the search
        // `cut` would make, without searching).
        let (a, b) = self.ends.as_slices();
        let first = match a.get(self.ends_sent) {
            Some(&end) => Some(end),
            None => b.get(self.ends_sent - a.len()).copied(),
        };
        debug_assert_eq!(
            first
                .filter(|&end| end <= e)
                .map_or((e, false), |end| (end, true)),
            self.cut(s, e)
        );
        let (end, fin) = match first {
            Some(end) if end <= e => (end, true),
            _ => (e, false),
        };
        self.sent_off = end;
        self.ends_sent += usize::from(fin);
        Some((s, (end - s) as usize, fin, true))
    }

    /// Offset of the range [`next_range`](Self::next_range) would return.
    pub fn peek_offset(&self) -> Option<u64> {
        match self.lost.first() {
            Some((s, _)) => Some(s),
            None => (self.sendable_new() > 0).then_some(self.sent_off),
        }
    }

    /// Cuts `[s, e)` (`s < e`) at the first message end inside it, and
    /// says whether the cut ends a message. `ends` ascends, so a binary
    /// search finds the first end after `s`; no other end can equal the cut.
    fn cut(&self, s: u64, e: u64) -> (u64, bool) {
        let (a, b) = self.ends.as_slices();
        let i = a.partition_point(|&end| end <= s);
        let first = match a.get(i) {
            Some(&end) => Some(end),
            None => b.get(b.partition_point(|&end| end <= s)).copied(),
        };
        match first {
            Some(end) if end <= e => (end, true),
            _ => (e, false),
        }
    }

    /// Copies stream bytes `[off, off + out.len())` into `out`.
    pub fn read(&self, off: u64, out: &mut [u8]) {
        ring_read(&self.buf, off, out);
    }

    /// `[s, e)` was acknowledged. Frees the buffer as the low end fills in.
    pub fn on_acked(&mut self, s: u64, e: u64) {
        let s = s.max(self.base);
        if s >= e {
            return;
        }
        self.lost.remove(s, e);
        if s == self.base && self.acked.is_empty() {
            // In order with nothing acknowledged beyond it (the common
            // case): what the general path below does, without the set.
            self.base = e;
            self.pop_acked_ends();
            return;
        }
        if self.acked.insert(s, e).is_err() {
            // Out of ranges to remember it: queue it to be sent again, so
            // every byte stays acknowledged, queued or in flight (a
            // spurious retransmission, never a stall).
            self.mark_lost(s, e);
            return;
        }
        if let Some((fs, fe)) = self.acked.first()
            && fs <= self.base
        {
            self.base = fe;
            self.acked.remove_below(fe);
            // A lost range widened over acknowledged bytes (`mark_lost`)
            // may reach below the new base: those bytes are not sent again
            // (nor held any more, once a heap buffer grew or was released).
            self.lost.remove_below(fe);
            self.pop_acked_ends();
        }
    }

    /// Forgets the ends of messages acknowledged in full.
    fn pop_acked_ends(&mut self) {
        while self.ends.front().is_some_and(|end| end <= self.base) {
            self.ends.pop_front();
            // Acknowledged, so sent: it was counted.
            self.ends_sent = self.ends_sent.saturating_sub(1);
        }
    }

    /// Frees the buffer if every queued byte was acknowledged (not on every
    /// acknowledgement: see `RecvChannel::release_if_drained`).
    pub fn release_if_idle(&mut self) {
        if self.is_idle() {
            self.buf.release();
            self.ends.release();
        }
    }

    /// `[s, e)` was in a lost packet: send again what is not acknowledged.
    pub fn on_lost(&mut self, s: u64, e: u64) {
        let s = s.max(self.base);
        if s >= e {
            return;
        }
        // Skip parts already acknowledged by another packet.
        let mut cur = s;
        let acked = self.acked.clone();
        for (as_, ae) in acked.iter() {
            if ae <= cur || as_ >= e {
                continue;
            }
            if as_ > cur {
                self.mark_lost(cur, as_);
            }
            cur = cur.max(ae);
        }
        if cur < e {
            self.mark_lost(cur, e);
        }
    }

    fn mark_lost(&mut self, s: u64, e: u64) {
        if self.lost.insert(s, e).is_err() {
            // Out of ranges: widen the oldest range to cover everything up
            // to this one; resending acked bytes is harmless.
            let (fs, _) = self.lost.first().unwrap_or((s, e));
            let low = fs.min(s);
            self.lost = RangeSet::new();
            let _ = self.lost.insert(low, e.max(self.sent_off.min(e)));
        }
    }

    /// Whether every queued byte was acknowledged.
    pub fn is_idle(&self) -> bool {
        self.base == self.write_off
    }

    /// Whether every byte sent so far was acknowledged (queued bytes that
    /// flow control held back may remain).
    pub fn is_sent_acked(&self) -> bool {
        self.base >= self.sent_off
    }

    /// Bytes queued and not yet acknowledged.
    pub fn unacked(&self) -> u64 {
        self.write_off - self.base
    }

    /// End of the data sent at least once, and of the data queued (for the
    /// flow-control model test).
    #[cfg(test)]
    pub(crate) fn offsets(&self) -> (u64, u64) {
        (self.sent_off, self.write_off)
    }

    /// Internal state, for debugging.
    #[cfg(feature = "std")]
    pub fn debug(&self) -> std::string::String {
        std::format!(
            "base={} sent={} write={} max={} acked={:?} lost={:?} ends={}",
            self.base,
            self.sent_off,
            self.write_off,
            self.max_data,
            self.acked.iter().collect::<std::vec::Vec<_>>(),
            self.lost.iter().collect::<std::vec::Vec<_>>(),
            self.ends.len()
        )
    }

    /// Bytes of RAM the buffer holds.
    pub fn allocated(&self) -> usize {
        self.buf.allocated() + self.ends.allocated()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{FIXED_QUEUED_MESSAGES, FixedBytes, MIN_RING};

    #[test]
    fn fragments_stop_at_message_ends_and_lost_data_goes_first() {
        let mut c = SendChannel::<FixedBytes<64>>::new(64, 1000);
        c.push(b"hello", false).unwrap();
        c.push(b"world!", false).unwrap();
        assert_eq!(c.next_range(100, 100), Some((0, 5, true, true)));
        assert_eq!(c.next_range(3, 100), Some((5, 3, false, true)));
        assert_eq!(c.next_range(100, 100), Some((8, 3, true, true)));
        assert_eq!(c.next_range(100, 100), None);
        c.on_lost(0, 5);
        c.on_acked(5, 8);
        c.on_lost(5, 11);
        assert_eq!(c.next_range(100, 100), Some((0, 5, true, false)));
        assert_eq!(c.next_range(100, 100), Some((8, 3, true, false)));
        let mut out = [0u8; 3];
        c.read(8, &mut out);
        assert_eq!(&out, b"ld!");
        c.on_acked(0, 5);
        assert!(!c.is_idle());
        c.on_acked(8, 11);
        assert!(c.is_idle());
    }

    /// Found by the `connection` fuzz target: every empty message took a
    /// slot of `ends` that only an acknowledgement frees, and an empty
    /// message sends nothing, so 64 of them on an idle channel blocked it
    /// for good (`Queue`, and no `Writable` ever followed).
    #[test]
    fn empty_messages_take_no_queue_slot() {
        let mut c = SendChannel::<FixedBytes<64>>::new(64, 1000);
        for _ in 0..2 * FIXED_QUEUED_MESSAGES {
            assert_eq!(c.push(b"", false), Ok(()));
        }
        assert!(c.is_idle());
        assert_eq!(c.next_range(100, 100), None);
        c.push(b"after", false).unwrap();
        assert_eq!(c.next_range(100, 100), Some((0, 5, true, true)));
        c.on_acked(0, 5);
        assert!(c.is_idle());
    }

    /// Ranges end at message ends, with `fin` exactly there, while the
    /// queue of message ends wraps around many times.
    #[test]
    fn cuts_follow_message_ends_across_queue_wraps() {
        let mut c = SendChannel::<FixedBytes<256>>::new(256, u64::MAX);
        let mut ends = std::vec::Vec::new();
        let (mut written, mut k) = (0u64, 0u64);
        for round in 0..300u64 {
            while c.push(&[7; 5][..1 + (k % 5) as usize], false).is_ok() {
                written += 1 + k % 5;
                ends.push(written);
                k += 1;
            }
            let max = 1 + (round % 7) as usize;
            let mut sent = None;
            while let Some((off, len, fin, _)) = c.next_range(max, u64::MAX) {
                let end = off + len as u64;
                let next_end = *ends.iter().find(|&&e| e > off).unwrap();
                assert!(end <= next_end, "range crosses a message end");
                assert_eq!(fin, end == next_end);
                sent = Some(end);
            }
            if let Some(end) = sent {
                c.on_acked(0, end);
            }
        }
        assert!(k > 3 * FIXED_QUEUED_MESSAGES as u64);
    }

    /// A heap send buffer of a 1 MiB window holds small messages, each
    /// acknowledged before the next, in the small ring; 300 KiB queued at
    /// once grow it to at least that and at most the window; acknowledged
    /// and released, it holds nothing.
    #[test]
    fn a_heap_buffer_grows_with_what_it_holds() {
        use crate::storage::{HeapBytes, MIN_RING};
        const W: usize = 1 << 20;
        let mut c = SendChannel::<HeapBytes>::new(W, u64::MAX);
        assert_eq!(c.allocated(), 0);
        for k in 0..7000u64 {
            c.push(&[k as u8; 300], false).unwrap();
            let (off, len, fin, _) = c.next_range(1200, u64::MAX).unwrap();
            assert_eq!((len, fin), (300, true));
            let mut out = [0u8; 300];
            c.read(off, &mut out);
            assert_eq!(out, [k as u8; 300]);
            c.on_acked(off, off + 300);
            let ring = c.allocated() - c.ends.allocated();
            assert!(ring <= MIN_RING, "{k}: {ring}");
            assert!(c.ends.allocated() <= 64, "{k}: {}", c.ends.allocated());
        }
        assert_eq!(c.allocated() - c.ends.allocated(), MIN_RING);
        let start = c.offsets().1;
        // 300 KiB in 5 KiB messages (the queue takes 64).
        for k in 0..60u64 {
            c.push(&[(k * 3) as u8; 5120], false).unwrap();
        }
        assert!(
            c.allocated() >= 300 * 1024 && c.allocated() <= W,
            "{}",
            c.allocated()
        );
        for k in 0..60u64 {
            let mut out = [0u8; 5120];
            c.read(start + k * 5120, &mut out);
            assert_eq!(out, [(k * 3) as u8; 5120], "message {k}");
        }
        // Acceptance follows the window, not the ring: it fills up exactly.
        let left = W - 300 * 1024;
        assert_eq!(c.free(), left);
        c.push(&std::vec![1u8; left], false).unwrap();
        assert_eq!(c.push(&[1], false), Err(SendBlocked::Buffer));
        assert_eq!(c.allocated() - c.ends.allocated(), W);
        while let Some((off, len, _, _)) = c.next_range(1 << 16, u64::MAX) {
            c.on_acked(off, off + len as u64);
        }
        c.release_if_idle();
        assert_eq!(c.allocated(), 0);
        c.push(b"again", false).unwrap();
        assert_eq!(c.allocated() - c.ends.allocated(), MIN_RING);
    }

    /// On a fixed store a channel keeps 64 messages unacknowledged; on a
    /// heap store one per `HEAP_BYTES_PER_END` bytes of its window, so
    /// small messages fill a large window (`Queue` only beyond that), and
    /// the table of ends is freed with the ring once all is acknowledged.
    #[test]
    fn a_heap_channel_queues_small_messages_up_to_its_window() {
        use crate::storage::{HEAP_BYTES_PER_END, HeapBytes};
        const W: usize = 256 * 1024;
        let mut fixed = SendChannel::<FixedBytes<W>>::new(W, u64::MAX);
        let mut heap = SendChannel::<HeapBytes>::new(W, u64::MAX);
        for _ in 0..FIXED_QUEUED_MESSAGES {
            fixed.push(&[1; 64], false).unwrap();
        }
        assert_eq!(fixed.push(&[1; 64], false), Err(SendBlocked::Queue));
        let limit = W / HEAP_BYTES_PER_END;
        for k in 0..limit {
            assert_eq!(heap.push(&[k as u8; 16], false), Ok(()), "message {k}");
        }
        assert_eq!(heap.push(&[1; 16], false), Err(SendBlocked::Queue));
        assert!(heap.ends.allocated() >= limit * 8);
        // Every message is cut at its own end.
        for k in 0..limit as u64 {
            let r = heap.next_range(1200, u64::MAX);
            assert_eq!(r, Some((16 * k, 16, true, true)), "message {k}");
        }
        // Half acknowledged: room again, for exactly as many.
        heap.on_acked(0, 16 * (limit as u64 / 2));
        for _ in 0..limit / 2 {
            heap.push(&[2; 16], false).unwrap();
        }
        assert_eq!(heap.push(&[1; 16], false), Err(SendBlocked::Queue));
        while let Some((off, len, _, _)) = heap.next_range(1200, u64::MAX) {
            heap.on_acked(off, off + len as u64);
        }
        heap.on_acked(0, heap.offsets().1);
        heap.release_if_idle();
        assert_eq!(heap.allocated(), 0);
    }

    proptest::proptest! {
        /// Pushes, ranges sent, acknowledgements, losses and reads get the
        /// same answers and bytes from a channel on a heap buffer that
        /// grows as from one on a fixed buffer of the whole window.
        #[test]
        fn a_growing_buffer_matches_a_fixed_one(
            ops in proptest::collection::vec((0u8..8, 0usize..7000, 0usize..64), 1..150),
            window in proptest::prop_oneof![
                proptest::strategy::Just(20_000usize),
                proptest::strategy::Just(16_384),
                proptest::strategy::Just(9_001),
                proptest::strategy::Just(3_000)
            ],
        ) {
            use crate::storage::HeapBytes;
            let mut heap = SendChannel::<HeapBytes>::new(window, 12_000);
            let mut fixed = SendChannel::<FixedBytes<20_000>>::new(window, 12_000);
            let mut sent = std::vec::Vec::new();
            let mut k = 0u8;
            for (op, n, pick) in ops {
                match op {
                    0..=2 => {
                        k = k.wrapping_add(1);
                        let len = if op == 0 { n } else { n % 700 };
                        let msg: std::vec::Vec<u8> =
                            (0..len).map(|i| k ^ (i as u8) ^ ((i >> 8) as u8)).collect();
                        // The heap channel keeps more messages than the
                        // fixed one (`a_heap_channel_queues_small_messages_up_to_its_window`):
                        // in step only while the fixed one has room.
                        if !fixed.ends.is_full() {
                            proptest::prop_assert_eq!(heap.push(&msg, pick % 2 == 0), fixed.push(&msg, pick % 2 == 0));
                        }
                    }
                    3 | 4 => {
                        let r = heap.next_range(n + 1, 1 << 20);
                        proptest::prop_assert_eq!(r, fixed.next_range(n + 1, 1 << 20));
                        if let Some((off, len, _, _)) = r {
                            // What goes out is held (never below the
                            // acknowledged base) and the same bytes.
                            let (write, held) = (heap.offsets().1, heap.unacked());
                            proptest::prop_assert!(off >= write - held);
                            let (mut a, mut b) = (std::vec![0u8; len], std::vec![1u8; len]);
                            heap.read(off, &mut a);
                            fixed.read(off, &mut b);
                            proptest::prop_assert_eq!(a, b);
                            sent.push((off, off + len as u64));
                        }
                    }
                    5 | 6 if !sent.is_empty() => {
                        let (s, e) = sent.swap_remove(pick % sent.len());
                        if op == 5 {
                            heap.on_acked(s, e);
                            fixed.on_acked(s, e);
                        } else {
                            heap.on_lost(s, e);
                            fixed.on_lost(s, e);
                        }
                    }
                    7 => {
                        heap.release_if_idle();
                        fixed.release_if_idle();
                        heap.set_max_data(heap.max_data() + n as u64);
                        fixed.set_max_data(fixed.max_data() + n as u64);
                    }
                    _ => {}
                }
                proptest::prop_assert_eq!(heap.offsets(), fixed.offsets());
                proptest::prop_assert_eq!(heap.unacked(), fixed.unacked());
                proptest::prop_assert_eq!(heap.free(), fixed.free());
                proptest::prop_assert_eq!(heap.peek_offset(), fixed.peek_offset());
                // Every byte still held reads the same.
                let write = heap.offsets().1;
                let base = write - heap.unacked();
                let (mut a, mut b) = (std::vec![0u8; (write - base) as usize], std::vec![0u8; (write - base) as usize]);
                heap.read(base, &mut a);
                fixed.read(base, &mut b);
                proptest::prop_assert_eq!(a, b);
                // Held: nothing, or the ring the queued bytes need (at
                // least the small one, at most the window).
                let live = heap.unacked() as usize;
                let held = heap.allocated() - heap.ends.allocated();
                proptest::prop_assert!(held == 0 || held >= live.max(MIN_RING.min(window)));
                // The table of ends: room for what is queued, within
                // twice its limit; nothing once released idle.
                let ends = heap.ends.allocated() / 8;
                let limit = (window / crate::storage::HEAP_BYTES_PER_END).max(FIXED_QUEUED_MESSAGES);
                proptest::prop_assert!(ends >= heap.ends.len() && ends <= 2 * limit);
                if op == 7 && heap.is_idle() {
                    proptest::prop_assert_eq!(heap.allocated(), 0);
                }
                proptest::prop_assert!(held <= window);
            }
        }
    }

    /// Lost ranges past the sixteen the set tracks are widened to one
    /// range, over bytes already acknowledged; once the base moved past
    /// them, nothing below it is sent again (those bytes may no longer be
    /// held: a heap buffer moves only `[base, write)` when it grows, and
    /// one released holds nothing).
    #[test]
    fn nothing_below_the_base_is_sent_again() {
        let mut c = SendChannel::<FixedBytes<64>>::new(64, 1000);
        for k in 0..40u8 {
            c.push(&[k], false).unwrap();
            assert_eq!(c.next_range(1, 100), Some((u64::from(k), 1, true, true)));
        }
        for k in (1..32).step_by(2) {
            c.on_acked(k, k + 1);
        }
        for k in (0..34).step_by(2) {
            c.on_lost(k, k + 1);
        }
        c.on_acked(0, 1);
        let base = c.offsets().1 - c.unacked();
        assert_eq!(base, 2);
        while let Some((off, len, _, is_new)) = c.next_range(100, 100) {
            assert!(off >= base, "{off} below the base {base}");
            assert!(!is_new || off >= 40);
            let _ = len;
        }
    }

    #[test]
    fn backpressure_names_its_reason() {
        let mut c = SendChannel::<FixedBytes<16>>::new(16, 4);
        c.push(&[1; 10], false).unwrap();
        assert_eq!(c.next_range(100, 100), Some((0, 4, false, true)));
        assert_eq!(c.push(&[2; 10], false), Err(SendBlocked::ChannelCredit));
        c.set_max_data(100);
        assert_eq!(c.next_range(100, 0), None, "no connection credit");
        assert_eq!(c.push(&[2; 10], true), Err(SendBlocked::ConnectionCredit));
        assert_eq!(c.next_range(100, 100), Some((4, 6, true, true)));
        assert_eq!(c.push(&[2; 10], false), Err(SendBlocked::Buffer));
        c.on_acked(0, 10);
        c.push(&[2; 10], false).unwrap();
        // Ring wrap-around keeps the bytes intact.
        assert_eq!(c.next_range(100, 100), Some((10, 10, true, true)));
        let mut out = [0u8; 10];
        c.read(10, &mut out);
        assert_eq!(out, [2; 10]);
    }
}
