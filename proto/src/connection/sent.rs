//! Packets sent and not yet acknowledged or lost.

use crate::time::Instant;
use heapless::Deque;

/// Channel byte ranges one packet can carry.
pub(crate) const MAX_RANGES: usize = 4;

/// What a sent packet carried, to retransmit or release when its fate is
/// known.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SentPacket {
    pub pn: u64,
    pub time: Instant,
    pub size: u16,
    pub ack_eliciting: bool,
    /// Counted against the congestion window.
    pub in_flight: bool,
    /// Still waiting for a verdict.
    pub live: bool,
    /// `(channel, length, start)` of each byte range: 16 bytes each, so
    /// the whole record stays small enough to copy inline.
    pub ranges: [(u32, u32, u64); MAX_RANGES],
    pub n_ranges: u8,
    /// Largest packet number acknowledged by an ACK in this packet.
    pub ack_largest: Option<u64>,
    pub max_data: bool,
    /// Channels whose credit this packet carried (bit i = channels[i] id < 64).
    pub credit_channels: u64,
    pub close: bool,
}

impl SentPacket {
    pub(crate) fn new(pn: u64, time: Instant) -> Self {
        SentPacket {
            pn,
            time,
            size: 0,
            ack_eliciting: false,
            in_flight: false,
            live: true,
            ranges: [(0, 0, 0); MAX_RANGES],
            n_ranges: 0,
            ack_largest: None,
            max_data: false,
            credit_channels: 0,
            close: false,
        }
    }

    /// The channel byte ranges as `(channel, start, end)`.
    pub(crate) fn ranges(&self) -> impl Iterator<Item = (u32, u64, u64)> + '_ {
        self.ranges[..usize::from(self.n_ranges)]
            .iter()
            .map(|&(ch, len, s)| (ch, s, s + u64::from(len)))
    }

    /// Records channel bytes `[s, e)`, merging with the last range of the
    /// same channel when contiguous. False if there is no room.
    pub(crate) fn add_range(&mut self, ch: u32, s: u64, e: u64) -> bool {
        let n = usize::from(self.n_ranges);
        if n > 0 {
            let last = &mut self.ranges[n - 1];
            if last.0 == ch
                && last.2 + u64::from(last.1) == s
                && let Ok(len) = u32::try_from(e - last.2)
            {
                last.1 = len;
                return true;
            }
        }
        // One packet's worth of bytes always fits; anything else has no room.
        let Ok(len) = u32::try_from(e.saturating_sub(s)) else {
            return false;
        };
        if n == MAX_RANGES {
            return false;
        }
        self.ranges[n] = (ch, len, s);
        self.n_ranges += 1;
        true
    }
}

/// Sent packets in packet-number order, at most `N`.
pub(crate) struct SentQueue<const N: usize> {
    q: Deque<SentPacket, N>,
    live: usize,
    eliciting: usize,
}

impl<const N: usize> SentQueue<N> {
    pub(crate) fn new() -> Self {
        SentQueue {
            q: Deque::new(),
            live: 0,
            eliciting: 0,
        }
    }

    /// Whether no more ack-eliciting packets can be recorded.
    pub(crate) fn is_full(&self) -> bool {
        self.eliciting >= N
    }

    /// Live ack-eliciting packets (the ones that count as in flight).
    pub(crate) fn eliciting(&self) -> usize {
        self.eliciting
    }

    /// Records a sent packet. When full, the oldest packet that only
    /// carried an ACK is forgotten to make room (it is tracked only to prune
    /// acknowledgement ranges early). Fails only when all `N` slots hold
    /// live ack-eliciting packets, that is when [`is_full`](Self::is_full).
    pub(crate) fn push(&mut self, p: SentPacket) -> bool {
        if self.q.is_full() {
            if let Some(old) = self.q.iter_mut().find(|p| p.live && !p.ack_eliciting) {
                old.live = false;
                self.live -= 1;
            }
            // Drop every finished packet, not only those at the front: one
            // old packet still in flight must not pin the dead slots after
            // it. The order is kept.
            for _ in 0..self.q.len() {
                if let Some(x) = self.q.pop_front()
                    && x.live
                {
                    let _ = self.q.push_back(x);
                }
            }
        }
        if self.q.push_back(p).is_ok() {
            self.live += 1;
            self.eliciting += usize::from(p.ack_eliciting);
            true
        } else {
            false
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &SentPacket> {
        self.q.iter().filter(|p| p.live)
    }

    /// Marks a packet done (acked or lost) and drops finished packets from
    /// the front.
    pub(crate) fn retire(&mut self, pn: u64) -> Option<SentPacket> {
        let p = self.q.iter_mut().find(|p| p.live && p.pn == pn)?;
        p.live = false;
        let out = *p;
        self.live -= 1;
        self.eliciting -= usize::from(out.ack_eliciting);
        while self.q.front().is_some_and(|p| !p.live) {
            self.q.pop_front();
        }
        Some(out)
    }

    /// The packet at index `k` of the queue (live or not), oldest first.
    #[inline]
    pub(crate) fn get(&self, k: usize) -> Option<&SentPacket> {
        self.q.get(k)
    }

    /// Marks the packet at index `k` done (acked or lost) if it is live,
    /// leaving it in place (indices stay valid) until
    /// [`drop_finished`](Self::drop_finished).
    pub(crate) fn mark_done(&mut self, k: usize) {
        if let Some(p) = self.q.get_mut(k)
            && p.live
        {
            p.live = false;
            self.live -= 1;
            self.eliciting -= usize::from(p.ack_eliciting);
        }
    }

    /// Drops finished packets from the front.
    pub(crate) fn drop_finished(&mut self) {
        while self.q.front().is_some_and(|p| !p.live) {
            self.q.pop_front();
        }
    }

    /// Oldest live ack-eliciting packet.
    pub(crate) fn oldest_eliciting(&self) -> Option<&SentPacket> {
        self.iter().find(|p| p.ack_eliciting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eliciting(pn: u64) -> SentPacket {
        SentPacket {
            ack_eliciting: true,
            in_flight: true,
            ..SentPacket::new(pn, Instant::ZERO)
        }
    }

    /// Small enough that pushing and retiring copy it inline, without a
    /// call to memcpy (as the 144 bytes it had took).
    #[test]
    fn a_record_stays_small() {
        assert!(core::mem::size_of::<SentPacket>() <= 128);
        let mut p = SentPacket::new(1, Instant::ZERO);
        assert!(p.add_range(3, 10, 20));
        assert!(p.add_range(3, 20, 25), "contiguous: merged");
        assert!(p.add_range(4, 25, 30));
        assert!(p.add_range(3, 40, 41));
        assert!(p.add_range(5, 0, 1));
        assert!(!p.add_range(6, 0, 1), "four ranges at most");
        let r: heapless::Vec<_, 4> = p.ranges().collect();
        assert_eq!(r, [(3, 10, 25), (4, 25, 30), (3, 40, 41), (5, 0, 1)]);
    }

    /// Found by the `connection` fuzz target: packets acknowledged behind
    /// an older one still in flight left dead slots that only retiring the
    /// oldest freed, so `push` failed with room to spare (`is_full` false)
    /// and the connection, treating the untracked packet as lost at once,
    /// rebuilt it forever.
    #[test]
    fn push_reuses_slots_behind_an_outstanding_packet() {
        let mut q = SentQueue::<8>::new();
        for pn in 0..8 {
            assert!(q.push(eliciting(pn)));
        }
        assert!(q.is_full());
        for pn in 1..8 {
            assert!(q.retire(pn).is_some());
        }
        assert!(!q.is_full());
        assert_eq!(q.eliciting(), 1);
        for pn in 8..15 {
            assert!(q.push(eliciting(pn)), "no room for {pn}");
        }
        assert!(q.is_full());
        assert!(!q.push(eliciting(15)), "eight live packets fill it");
        let pns: heapless::Vec<u64, 8> = q.iter().map(|p| p.pn).collect();
        assert_eq!(pns, [0, 8, 9, 10, 11, 12, 13, 14]);
    }

    /// Marking in place counts each packet once, keeps indices until the
    /// finished front is dropped, and that stops at the first live one:
    /// the same queue as retiring the same packets does.
    #[test]
    fn marking_in_place_matches_retiring() {
        let (mut a, mut b) = (SentQueue::<8>::new(), SentQueue::<8>::new());
        for pn in 0..6 {
            let p = SentPacket {
                ack_eliciting: pn % 3 != 2,
                ..SentPacket::new(pn, Instant::ZERO)
            };
            assert!(a.push(p) && b.push(p));
        }
        for pn in [0, 1, 3, 4] {
            assert!(b.retire(pn).is_some());
        }
        for k in [0, 1, 3, 4, 4, 0] {
            a.mark_done(k);
            assert_eq!(a.get(k).map(|p| (p.pn, p.live)), Some((k as u64, false)));
        }
        assert_eq!(a.get(2).map(|p| p.live), Some(true));
        a.drop_finished();
        a.mark_done(9);
        let pns = |q: &SentQueue<8>| -> heapless::Vec<u64, 8> { q.iter().map(|p| p.pn).collect() };
        assert_eq!(pns(&a), [2, 5]);
        assert_eq!(pns(&a), pns(&b));
        assert_eq!((a.live, a.eliciting), (b.live, b.eliciting));
        assert_eq!((a.live, a.eliciting), (2, 0));
        assert_eq!(
            a.get(0).map(|p| p.pn),
            Some(2),
            "the finished front is gone"
        );
        assert_eq!(a.q.len(), b.q.len());
    }
}
