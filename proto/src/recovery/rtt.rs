//! RTT estimation (RFC 9002 §5).

use core::time::Duration;

/// Timer granularity: no loss or probe timer is shorter (RFC 9002 §6.1.2).
pub const GRANULARITY: Duration = Duration::from_millis(1);

/// Largest RTT sample taken: a longer one (a very late acknowledgement, a
/// link that stalled) counts as this much, so that one outlier cannot set
/// the smoothed RTT, and every timer derived from it, to minutes.
pub const MAX_RTT: Duration = Duration::from_secs(10);

/// Longest probe timeout, backoff included, and longest interval between
/// handshake retransmissions (RFC 6298 §2.5 allows an upper bound of at
/// least 60 s). Without it, 16 doublings of a long PTO came to days.
pub const MAX_PTO: Duration = Duration::from_secs(60);

/// Smoothed RTT, variance and minimum, from acknowledged packets.
///
/// Kept in whole microseconds, the resolution of [`Instant`](crate::Instant):
/// the deadlines derived from it are computed after every input, and
/// integer arithmetic on one `u64` is a fraction of the cost of
/// [`Duration`]'s seconds-and-nanoseconds arithmetic.
#[derive(Clone, Copy, Debug)]
pub struct RttEstimator {
    latest: u64,
    smoothed: u64,
    var: u64,
    min: u64,
    has_sample: bool,
}

/// `d` in whole microseconds (saturating).
#[inline]
pub(crate) fn micros(d: Duration) -> u64 {
    crate::time::micros(d)
}

/// [`GRANULARITY`] in microseconds.
pub(crate) const GRANULARITY_US: u64 = GRANULARITY.as_micros() as u64;
/// [`MAX_RTT`] in microseconds.
const MAX_RTT_US: u64 = MAX_RTT.as_micros() as u64;
/// [`MAX_PTO`] in microseconds.
pub(crate) const MAX_PTO_US: u64 = MAX_PTO.as_micros() as u64;

impl RttEstimator {
    /// An estimator that assumes `initial` until the first sample (at most
    /// [`MAX_RTT`], as every sample).
    pub fn new(initial: Duration) -> Self {
        let initial = micros(initial).min(MAX_RTT_US);
        RttEstimator {
            latest: initial,
            smoothed: initial,
            var: initial / 2,
            min: initial,
            has_sample: false,
        }
    }

    /// Adds a sample: `latest` from send to acknowledgement (capped at
    /// [`MAX_RTT`]), `ack_delay` as reported by the peer (capped at
    /// `max_ack_delay`).
    pub fn update(&mut self, latest: Duration, ack_delay: Duration, max_ack_delay: Duration) {
        self.update_us(micros(latest), micros(ack_delay), micros(max_ack_delay));
    }

    /// [`update`](Self::update) in microseconds.
    pub(crate) fn update_us(&mut self, latest: u64, ack_delay: u64, max_ack_delay: u64) {
        let latest = latest.min(MAX_RTT_US);
        self.latest = latest;
        if !self.has_sample {
            self.has_sample = true;
            self.min = latest;
            self.smoothed = latest;
            self.var = latest / 2;
            return;
        }
        self.min = self.min.min(latest);
        let ack_delay = ack_delay.min(max_ack_delay);
        // Subtract the peer's delay only if that does not go below min_rtt.
        let adjusted = if latest >= self.min + ack_delay {
            latest - ack_delay
        } else {
            latest
        };
        let diff = self.smoothed.abs_diff(adjusted);
        // At most 10 s each (`MAX_RTT`): no overflow.
        self.var = (self.var * 3 + diff) / 4;
        self.smoothed = (self.smoothed * 7 + adjusted) / 8;
    }

    /// Whether any sample has been taken.
    pub fn has_sample(&self) -> bool {
        self.has_sample
    }

    /// Smoothed RTT.
    pub fn smoothed(&self) -> Duration {
        Duration::from_micros(self.smoothed)
    }

    /// Minimum RTT seen.
    pub fn min(&self) -> Duration {
        Duration::from_micros(self.min)
    }

    /// Latest sample.
    pub fn latest(&self) -> Duration {
        Duration::from_micros(self.latest)
    }

    /// RTT variance.
    pub fn var(&self) -> Duration {
        Duration::from_micros(self.var)
    }

    /// The probe timeout before backoff, without the peer's ack delay:
    /// `smoothed + max(4 * var, granularity)`.
    #[inline]
    pub fn pto_base(&self) -> Duration {
        Duration::from_micros(self.pto_base_us())
    }

    /// [`pto_base`](Self::pto_base) in microseconds.
    #[inline]
    pub(crate) fn pto_base_us(&self) -> u64 {
        self.smoothed + (self.var * 4).max(GRANULARITY_US)
    }

    /// The time-threshold loss delay: `9/8 * max(smoothed, latest)`, at least
    /// the granularity (RFC 9002 §6.1.2).
    #[inline]
    pub fn loss_delay(&self) -> Duration {
        Duration::from_micros(self.loss_delay_us())
    }

    /// [`loss_delay`](Self::loss_delay) in microseconds.
    #[inline]
    pub(crate) fn loss_delay_us(&self) -> u64 {
        (self.smoothed.max(self.latest) * 9 / 8).max(GRANULARITY_US)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn follows_rfc9002() {
        let mut r = RttEstimator::new(ms(333));
        r.update(ms(100), ms(0), ms(25));
        assert_eq!((r.smoothed(), r.var(), r.min()), (ms(100), ms(50), ms(100)));
        // 140 ms with 20 ms of ack delay: adjusted 120 ms.
        r.update(ms(140), ms(20), ms(25));
        assert_eq!(r.smoothed(), ms(100) * 7 / 8 + ms(120) / 8);
        assert_eq!(r.var(), (ms(50) * 3 + ms(20)) / 4);
        // Ack delay that would go below min_rtt is ignored.
        r.update(ms(101), ms(20), ms(25));
        assert_eq!(r.min(), ms(100));
        assert_eq!(r.latest(), ms(101));
    }

    /// One acknowledgement 20 s late set the smoothed RTT to 20 s (and the
    /// first PTO to a minute).
    #[test]
    fn a_very_late_sample_counts_as_max_rtt() {
        let mut r = RttEstimator::new(ms(333));
        r.update(Duration::from_secs(20), ms(0), ms(25));
        assert_eq!(
            (r.latest(), r.smoothed(), r.min()),
            (MAX_RTT, MAX_RTT, MAX_RTT)
        );
        assert_eq!(r.var(), MAX_RTT / 2);
        r.update(Duration::from_secs(3600), ms(0), ms(25));
        assert_eq!((r.latest(), r.smoothed()), (MAX_RTT, MAX_RTT));
        assert!(r.pto_base() <= MAX_RTT * 3);
        // Later ordinary samples bring it down as usual.
        r.update(ms(100), ms(0), ms(25));
        assert_eq!(r.smoothed(), MAX_RTT * 7 / 8 + ms(100) / 8);
    }

    /// A configured initial RTT beyond `MAX_RTT` counts as `MAX_RTT`, as a
    /// sample would: `Duration::MAX` overflowed the PTO arithmetic.
    #[test]
    fn a_huge_initial_rtt_counts_as_max_rtt() {
        for initial in [Duration::from_secs(3600), Duration::MAX] {
            let r = RttEstimator::new(initial);
            assert_eq!(r.smoothed(), MAX_RTT);
            assert_eq!(r.pto_base(), MAX_RTT + MAX_RTT / 2 * 4);
            assert_eq!(r.loss_delay(), MAX_RTT * 9 / 8);
        }
    }

    /// Microsecond samples keep their resolution.
    #[test]
    fn keeps_microseconds() {
        let mut r = RttEstimator::new(ms(100));
        r.update(Duration::from_micros(1_234), Duration::ZERO, ms(25));
        assert_eq!(r.smoothed(), Duration::from_micros(1_234));
        assert_eq!(r.var(), Duration::from_micros(617));
        assert_eq!(r.pto_base(), Duration::from_micros(1_234 + 2_468));
    }

    proptest! {
        /// The smoothed RTT stays within the range of the samples, and the
        /// minimum is the minimum.
        #[test]
        fn estimates_stay_within_the_samples(samples in proptest::collection::vec(1u64..10_000, 1..100)) {
            let mut r = RttEstimator::new(ms(500));
            for &s in &samples {
                r.update(Duration::from_micros(s), Duration::ZERO, ms(25));
            }
            let lo = Duration::from_micros(*samples.iter().min().unwrap());
            let hi = Duration::from_micros(*samples.iter().max().unwrap());
            prop_assert_eq!(r.min(), lo);
            prop_assert!(r.smoothed() >= lo && r.smoothed() <= hi);
            prop_assert!(r.pto_base() >= r.smoothed() + GRANULARITY);
        }
    }
}
