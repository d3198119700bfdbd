//! Maps the runtime's clock to Tern's [`tern::Instant`] and back.

use std::time::{Duration, Instant};

/// Tern time starts here, so that no deadline is ever near zero.
const OFFSET: Duration = Duration::from_secs(1);

/// The endpoint's epoch: Tern instants are microseconds since it (plus
/// [`OFFSET`]). Instants come from the runtime's clock (see
/// [`Timer::now`](crate::Timer::now)), so a runtime's paused test time
/// works too.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    epoch: Instant,
}

impl Clock {
    pub(crate) fn new(now: Instant) -> Self {
        Clock { epoch: now }
    }

    #[inline]
    pub(crate) fn to_tern(self, t: Instant) -> tern::Instant {
        // Whole seconds and microseconds apart (no 128-bit arithmetic: this
        // runs on every packet).
        let d = t.saturating_duration_since(self.epoch);
        let us = d
            .as_secs()
            .saturating_mul(1_000_000)
            .saturating_add(u64::from(d.subsec_micros()));
        tern::Instant::from_micros(us.saturating_add(OFFSET.as_micros() as u64))
    }

    /// A Tern deadline as a runtime instant (far-off deadlines are capped
    /// at a year, which every timer handles).
    pub(crate) fn to_std(self, t: tern::Instant) -> Instant {
        let us = t.as_micros().saturating_sub(OFFSET.as_micros() as u64);
        let d = Duration::from_micros(us).min(Duration::from_secs(365 * 24 * 3600));
        self.epoch + d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_advances() {
        let start = Instant::now();
        let c = Clock::new(start);
        let a = c.to_tern(start);
        assert_eq!(a.as_micros(), OFFSET.as_micros() as u64);
        let later = start + Duration::from_millis(1500);
        let b = c.to_tern(later);
        assert_eq!(b.saturating_duration_since(a), Duration::from_millis(1500));
        assert_eq!(c.to_std(b), later);
        assert_eq!(c.to_tern(c.to_std(b)), b);
        // A deadline before the epoch maps to the epoch, not a panic.
        assert_eq!(c.to_std(tern::Instant::ZERO), start);
        // An instant before the epoch maps to the epoch too.
        if let Some(before) = start.checked_sub(Duration::from_secs(5)) {
            assert_eq!(c.to_tern(before), a);
        }
        // A far deadline is capped, not overflowed.
        let far = c.to_std(tern::Instant::from_micros(u64::MAX));
        assert_eq!(far, start + Duration::from_secs(365 * 24 * 3600));
    }
}
