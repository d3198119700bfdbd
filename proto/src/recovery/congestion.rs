//! NewReno congestion control (RFC 9002 §7).

use crate::time::Instant;

/// Slow start, congestion avoidance and one reduction per recovery period.
#[derive(Clone, Copy, Debug)]
pub struct NewReno {
    mss: u64,
    window: u64,
    ssthresh: u64,
    in_flight: u64,
    recovery_start: Option<Instant>,
    /// Bytes acknowledged in congestion avoidance, toward the next MSS.
    acked_in_ca: u64,
    enabled: bool,
}

impl NewReno {
    /// A controller for packets of `mss` bytes. When `enabled` is false
    /// (constrained links with CoAP-like pacing by the timers alone) the
    /// window is unlimited but bytes in flight are still counted.
    pub fn new(mss: usize, enabled: bool) -> Self {
        let mss = mss as u64;
        NewReno {
            mss,
            window: Self::initial(mss),
            ssthresh: u64::MAX,
            in_flight: 0,
            recovery_start: None,
            acked_in_ca: 0,
            enabled,
        }
    }

    fn initial(mss: u64) -> u64 {
        (10 * mss).min((2 * mss).max(14720))
    }

    fn minimum(&self) -> u64 {
        2 * self.mss
    }

    /// The congestion window in bytes.
    pub fn window(&self) -> u64 {
        if self.enabled { self.window } else { u64::MAX }
    }

    /// Bytes sent and neither acknowledged nor declared lost.
    pub fn in_flight(&self) -> u64 {
        self.in_flight
    }

    /// Whether a packet of `bytes` may be sent now.
    pub fn can_send(&self, bytes: usize) -> bool {
        self.in_flight + bytes as u64 <= self.window()
    }

    /// A packet counted in flight was sent.
    pub fn on_sent(&mut self, bytes: usize) {
        self.in_flight += bytes as u64;
    }

    /// A packet sent at `sent` and counted in flight was acknowledged.
    pub fn on_acked(&mut self, bytes: usize, sent: Instant) {
        let bytes = bytes as u64;
        self.in_flight = self.in_flight.saturating_sub(bytes);
        if self.recovery_start.is_some_and(|r| sent <= r) {
            return;
        }
        if self.window < self.ssthresh {
            self.window += bytes;
        } else {
            self.acked_in_ca += bytes;
            if self.acked_in_ca >= self.window {
                self.acked_in_ca -= self.window;
                self.window += self.mss;
            }
        }
    }

    /// Packets counted in flight were lost; the newest was sent at
    /// `largest_sent`. Halves the window once per recovery period.
    pub fn on_lost(&mut self, bytes: usize, largest_sent: Instant, now: Instant) {
        self.in_flight = self.in_flight.saturating_sub(bytes as u64);
        if self.recovery_start.is_some_and(|r| largest_sent <= r) {
            return;
        }
        self.recovery_start = Some(now);
        self.window = (self.window / 2).max(self.minimum());
        self.ssthresh = self.window;
        self.acked_in_ca = 0;
    }

    /// Persistent congestion: back to the minimum window.
    pub fn on_persistent_congestion(&mut self) {
        self.window = self.minimum();
        self.recovery_start = None;
    }

    /// A packet counted in flight left the network without an ack or a loss
    /// verdict (its keys were discarded).
    pub fn on_discarded(&mut self, bytes: usize) {
        self.in_flight = self.in_flight.saturating_sub(bytes as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_start_then_halving_once_per_period() {
        let mut cc = NewReno::new(1200, true);
        let w0 = cc.window();
        assert_eq!(w0, 12000);
        cc.on_sent(1200);
        cc.on_acked(1200, Instant::from_millis(1));
        assert_eq!(cc.window(), w0 + 1200);
        cc.on_sent(2400);
        cc.on_lost(1200, Instant::from_millis(2), Instant::from_millis(10));
        assert_eq!(cc.window(), (w0 + 1200) / 2);
        // A second loss from the same flight does not halve again.
        cc.on_lost(1200, Instant::from_millis(3), Instant::from_millis(11));
        assert_eq!(cc.window(), (w0 + 1200) / 2);
        assert_eq!(cc.in_flight(), 0);
        // Congestion avoidance: one MSS per window acknowledged.
        let w = cc.window();
        for _ in 0..w.div_ceil(1200) {
            cc.on_sent(1200);
            cc.on_acked(1200, Instant::from_millis(20));
        }
        assert_eq!(cc.window(), w + 1200);
        cc.on_persistent_congestion();
        assert_eq!(cc.window(), 2400);
        assert!(!NewReno::new(1200, false).window() < u64::MAX);
    }
}
