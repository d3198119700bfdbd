//! Time as the caller hands it in. Tern never reads a clock.

use core::ops::{Add, Sub};
use core::time::Duration;

/// A point in time, in microseconds since an epoch the caller chooses (boot,
/// process start, the Unix epoch: anything monotonic).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

impl Instant {
    /// The epoch itself.
    pub const ZERO: Instant = Instant(0);

    /// An instant `us` microseconds after the epoch.
    pub const fn from_micros(us: u64) -> Instant {
        Instant(us)
    }

    /// An instant `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: u64) -> Instant {
        Instant(ms.saturating_mul(1000))
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// `us` microseconds later (saturating): `self + Duration::from_micros(us)`
    /// without the conversion.
    #[inline]
    pub(crate) const fn add_micros(self, us: u64) -> Instant {
        Instant(self.0.saturating_add(us))
    }

    /// Time since `earlier`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

/// `d` in whole microseconds, saturating at `u64::MAX`: what
/// `u64::try_from(d.as_micros()).unwrap_or(u64::MAX)` gives, in 64-bit
/// arithmetic (the 128-bit product and its narrowing cost several times
/// as much, on every deadline computed).
#[inline]
pub(crate) const fn micros(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1_000_000)
        .saturating_add(d.subsec_micros() as u64)
}

impl Add<Duration> for Instant {
    type Output = Instant;
    #[inline]
    fn add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(micros(d)))
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    #[inline]
    fn sub(self, d: Duration) -> Instant {
        Instant(self.0.saturating_sub(micros(d)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn by_u128(d: Duration) -> u64 {
        u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
    }

    #[test]
    fn micros_saturates_like_the_128_bit_conversion() {
        let max_secs = u64::MAX / 1_000_000;
        for d in [
            Duration::ZERO,
            Duration::from_nanos(999),
            Duration::from_nanos(1_000),
            Duration::from_millis(25),
            Duration::new(max_secs, 551_615_999),
            Duration::new(max_secs, 551_616_000),
            Duration::new(max_secs, 999_999_999),
            Duration::new(max_secs + 1, 0),
            Duration::MAX,
        ] {
            assert_eq!(micros(d), by_u128(d), "{d:?}");
        }
    }

    proptest! {
        #[test]
        fn micros_matches_the_128_bit_conversion(
            secs in prop_oneof![0..100_000u64, any::<u64>(),
                                (u64::MAX / 1_000_000 - 2)..=(u64::MAX / 1_000_000 + 2)],
            nanos in 0..1_000_000_000u32,
        ) {
            let d = Duration::new(secs, nanos);
            prop_assert_eq!(micros(d), by_u128(d));
        }
    }
}
