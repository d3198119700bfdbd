//! Maps tokio's clock to Tern's [`tern::Instant`] and back.

use std::time::Duration;
use tokio::time::Instant as TokioInstant;

/// Tern time starts here, so that no deadline is ever near zero.
const OFFSET: Duration = Duration::from_secs(1);

/// The endpoint's epoch: Tern instants are microseconds since it (plus
/// [`OFFSET`]). Uses tokio's clock, so paused test time works too.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    epoch: TokioInstant,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Clock {
            epoch: TokioInstant::now(),
        }
    }

    /// The current time in Tern's terms.
    pub(crate) fn now(self) -> tern::Instant {
        self.to_tern(TokioInstant::now())
    }

    pub(crate) fn to_tern(self, t: TokioInstant) -> tern::Instant {
        let d = t.saturating_duration_since(self.epoch) + OFFSET;
        tern::Instant::from_micros(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }

    /// A Tern deadline as a tokio instant (far-off deadlines are capped at
    /// a year, which tokio's timer handles).
    pub(crate) fn to_tokio(self, t: tern::Instant) -> TokioInstant {
        let us = t.as_micros().saturating_sub(OFFSET.as_micros() as u64);
        let d = Duration::from_micros(us).min(Duration::from_secs(365 * 24 * 3600));
        self.epoch + d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn round_trips_and_advances() {
        let c = Clock::new();
        let a = c.now();
        assert_eq!(a.as_micros(), OFFSET.as_micros() as u64);
        tokio::time::advance(Duration::from_millis(1500)).await;
        let b = c.now();
        assert_eq!(b.saturating_duration_since(a), Duration::from_millis(1500));
        assert_eq!(c.to_tern(c.to_tokio(b)), b);
        // A deadline before the epoch maps to the epoch, not a panic.
        assert_eq!(c.to_tokio(tern::Instant::ZERO), c.epoch);
    }
}
