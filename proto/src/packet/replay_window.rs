//! Sliding replay window over 64-bit packet numbers (RFC 6479 style).

/// Bits of history the window type can hold; the configured window (64 on
/// constrained devices, 1024 on services) may be smaller.
pub const MAX_REPLAY_WINDOW: usize = 1024;
const WORDS: usize = MAX_REPLAY_WINDOW / 64;

/// What the window says about a packet number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayCheck {
    /// Never seen and inside the window: accept (after authenticating).
    Fresh,
    /// Seen before.
    Duplicate,
    /// Older than the window reaches: cannot tell, so drop.
    TooOld,
}

/// Remembers which of the last `window` packet numbers were received.
///
/// `check` is called before decryption to skip work on obvious replays, and
/// `mark` only after the packet authenticated, so a forged packet never
/// moves the window.
#[derive(Clone, Debug)]
pub struct ReplayWindow {
    bits: [u64; WORDS],
    /// Highest packet number marked, plus one (0 = nothing yet).
    top: u64,
    window: u64,
}

impl ReplayWindow {
    /// A window of `window` packets, clamped to 64..=[`MAX_REPLAY_WINDOW`].
    pub fn new(window: usize) -> Self {
        let window = window.clamp(64, MAX_REPLAY_WINDOW) as u64;
        ReplayWindow {
            bits: [0; WORDS],
            top: 0,
            window,
        }
    }

    /// The window size in packets.
    pub fn size(&self) -> u64 {
        self.window
    }

    /// The highest packet number marked, if any.
    pub fn largest(&self) -> Option<u64> {
        self.top.checked_sub(1)
    }

    fn bit(pn: u64) -> (usize, u64) {
        let i = (pn % MAX_REPLAY_WINDOW as u64) as usize;
        (i / 64, 1u64 << (i % 64))
    }

    /// Classifies `pn` without changing anything.
    pub fn check(&self, pn: u64) -> ReplayCheck {
        if pn >= self.top {
            return ReplayCheck::Fresh;
        }
        if self.top - pn > self.window {
            return ReplayCheck::TooOld;
        }
        let (w, m) = Self::bit(pn);
        if self.bits[w] & m != 0 {
            ReplayCheck::Duplicate
        } else {
            ReplayCheck::Fresh
        }
    }

    /// Records `pn` as received. Returns false (and changes nothing) if it
    /// was a duplicate or too old.
    #[inline]
    pub fn mark(&mut self, pn: u64) -> bool {
        if pn == self.top {
            // The next packet in order (the common case): its bit, last
            // used `MAX_REPLAY_WINDOW` packets ago, is set outright.
            let (w, m) = Self::bit(pn);
            self.bits[w] |= m;
            self.top = pn + 1;
            return true;
        }
        match self.check(pn) {
            ReplayCheck::Fresh => {}
            _ => return false,
        }
        if pn >= self.top {
            // Clear the bits of the packet numbers we skip over.
            let advance = pn + 1 - self.top;
            if advance >= MAX_REPLAY_WINDOW as u64 {
                self.bits = [0; WORDS];
            } else {
                for skipped in self.top..=pn {
                    let (w, m) = Self::bit(skipped);
                    self.bits[w] &= !m;
                }
            }
            self.top = pn + 1;
        }
        let (w, m) = Self::bit(pn);
        self.bits[w] |= m;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn duplicates_and_old_packets_are_refused() {
        let mut w = ReplayWindow::new(64);
        assert!(w.mark(0));
        assert!(!w.mark(0));
        assert!(w.mark(100));
        assert_eq!(w.check(37), ReplayCheck::Fresh);
        assert_eq!(w.check(36), ReplayCheck::TooOld);
        assert!(w.mark(50));
        assert_eq!(w.check(50), ReplayCheck::Duplicate);
        assert!(w.mark(5000));
        assert_eq!(w.check(100), ReplayCheck::TooOld);
        assert_eq!(w.largest(), Some(5000));
    }

    proptest! {
        /// Against a model that remembers everything: the window accepts a
        /// packet exactly when it is new and within `size` of the highest.
        #[test]
        fn matches_a_perfect_memory_model(size in prop_oneof![Just(64usize), Just(128), Just(1024)],
                                          pns in proptest::collection::vec(0u64..3000, 1..400),
                                          // Mostly the next packet in order (the fast path).
                                          in_order in any::<bool>()) {
            let mut next = 0;
            let pns: std::vec::Vec<u64> = if in_order {
                pns.into_iter().map(|p| {
                    next = if p % 8 == 0 { p } else { next + 1 };
                    next
                }).collect()
            } else {
                pns
            };
            let mut w = ReplayWindow::new(size);
            let mut seen = BTreeSet::new();
            let mut top: Option<u64> = None;
            for pn in pns {
                let expected = !seen.contains(&pn) && top.is_none_or(|t| pn + size as u64 > t);
                prop_assert_eq!(w.mark(pn), expected, "pn {}", pn);
                if expected {
                    seen.insert(pn);
                    top = Some(top.map_or(pn, |t| t.max(pn)));
                }
            }
        }
    }
}
