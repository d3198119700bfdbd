//! A fixed-capacity set of disjoint `u64` ranges.
//!
//! Used for packet numbers to acknowledge, acknowledged and lost channel
//! bytes, and received channel bytes. Ranges are half-open `[start, end)`,
//! kept sorted, disjoint and non-adjacent (touching ranges merge).

/// A set of at most `N` disjoint ranges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeSet<const N: usize> {
    ranges: [(u64, u64); N],
    len: usize,
}

impl<const N: usize> Default for RangeSet<N> {
    fn default() -> Self {
        RangeSet::new()
    }
}

/// Inserting would need more ranges than the set holds; nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

impl<const N: usize> RangeSet<N> {
    /// An empty set.
    pub const fn new() -> Self {
        RangeSet {
            ranges: [(0, 0); N],
            len: 0,
        }
    }

    /// The ranges, ascending.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (u64, u64)> + '_ {
        self.ranges[..self.len].iter().copied()
    }

    /// Number of ranges.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The lowest range.
    pub fn first(&self) -> Option<(u64, u64)> {
        self.iter().next()
    }

    /// The highest range.
    pub fn last(&self) -> Option<(u64, u64)> {
        self.iter().next_back()
    }

    /// Whether `v` is in the set.
    pub fn contains(&self, v: u64) -> bool {
        self.iter().any(|(s, e)| s <= v && v < e)
    }

    /// Whether all of `[start, end)` is in the set.
    pub fn contains_range(&self, start: u64, end: u64) -> bool {
        start >= end || self.iter().any(|(s, e)| s <= start && end <= e)
    }

    /// Whether inserting `[start, end)` would fit.
    pub fn can_insert(&self, start: u64, end: u64) -> bool {
        if start >= end || self.len < N {
            return true;
        }
        // With the set full, the insert fits only if it touches a range.
        self.iter().any(|(s, e)| start <= e && s <= end)
    }

    /// Adds `[start, end)`, merging with what it touches. Returns `Full`,
    /// changing nothing, if it would make more than `N` ranges.
    pub fn insert(&mut self, start: u64, end: u64) -> Result<(), Full> {
        if start >= end {
            return Ok(());
        }
        // The common cases first: at or past the top (packet numbers and
        // stream bytes mostly arrive in order).
        if let Some(last) = self.len.checked_sub(1).map(|i| &mut self.ranges[i]) {
            if start >= last.0 && start <= last.1 {
                last.1 = last.1.max(end);
                return Ok(());
            }
            if start > last.1 && self.len < N {
                self.ranges[self.len] = (start, end);
                self.len += 1;
                return Ok(());
            }
        }
        // First range whose end reaches start (touching counts).
        let lo = self.ranges[..self.len]
            .iter()
            .position(|&(_, e)| e >= start)
            .unwrap_or(self.len);
        // One past the last range whose start is within end.
        let hi = self.ranges[..self.len]
            .iter()
            .rposition(|&(s, _)| s <= end)
            .map_or(0, |i| i + 1);
        if lo >= hi {
            // No overlap: insert a new range at `lo`.
            if self.len == N {
                return Err(Full);
            }
            self.ranges.copy_within(lo..self.len, lo + 1);
            self.ranges[lo] = (start, end);
            self.len += 1;
        } else {
            let s = start.min(self.ranges[lo].0);
            let e = end.max(self.ranges[hi - 1].1);
            self.ranges[lo] = (s, e);
            self.ranges.copy_within(hi..self.len, lo + 1);
            self.len -= hi - lo - 1;
        }
        Ok(())
    }

    /// Adds the single value `v`, as `insert(v, v + 1)` does; on success,
    /// whether `v` is now the highest value. The common case first:
    /// `v` extends the highest range by one.
    #[inline]
    pub fn insert_value(&mut self, v: u64) -> Result<bool, Full> {
        let end = v.saturating_add(1);
        if let Some(last) = self.len.checked_sub(1).map(|i| &mut self.ranges[i])
            && last.1 == v
            && v < end
        {
            last.1 = end;
            return Ok(true);
        }
        self.insert(v, end)?;
        Ok(self.last().is_some_and(|(_, e)| e == end))
    }

    /// Removes `[start, end)`. Splitting a range may need one more slot; if
    /// there is none, the lower piece is kept and the upper dropped (callers
    /// use removal only where forgetting is safe). Returns whether anything
    /// was dropped that way.
    pub fn remove(&mut self, start: u64, end: u64) -> bool {
        if start >= end {
            return false;
        }
        let mut dropped = false;
        let mut i = 0;
        while i < self.len {
            let (s, e) = self.ranges[i];
            if e <= start || s >= end {
                i += 1;
                continue;
            }
            let left = (s < start).then_some((s, start));
            let right = (e > end).then_some((end, e));
            match (left, right) {
                (None, None) => {
                    self.ranges.copy_within(i + 1..self.len, i);
                    self.len -= 1;
                }
                (Some(l), None) => {
                    self.ranges[i] = l;
                    i += 1;
                }
                (None, Some(r)) => {
                    self.ranges[i] = r;
                    i += 1;
                }
                (Some(l), Some(r)) => {
                    self.ranges[i] = l;
                    if self.len < N {
                        self.ranges.copy_within(i + 1..self.len, i + 2);
                        self.ranges[i + 1] = r;
                        self.len += 1;
                    } else {
                        dropped = true;
                    }
                    i += 2;
                }
            }
        }
        dropped
    }

    /// Removes every value below `v`.
    pub fn remove_below(&mut self, v: u64) {
        self.remove(0, v);
    }

    /// Takes the lowest range, cut to at most `max` values.
    pub fn pop_first(&mut self, max: u64) -> Option<(u64, u64)> {
        let (s, e) = self.first()?;
        let e = e.min(s.saturating_add(max));
        self.remove(s, e);
        Some((s, e))
    }

    /// Drops the lowest range (to make room for newer ones).
    pub fn drop_first(&mut self) {
        if self.len > 0 {
            self.ranges.copy_within(1..self.len, 0);
            self.len -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn model(set: &RangeSet<64>) -> BTreeSet<u64> {
        set.iter().flat_map(|(s, e)| s..e).collect()
    }

    #[test]
    fn merges_touching_and_overlapping() {
        let mut r = RangeSet::<4>::new();
        r.insert(10, 20).unwrap();
        r.insert(30, 40).unwrap();
        r.insert(20, 30).unwrap();
        assert_eq!(r.iter().collect::<std::vec::Vec<_>>(), [(10, 40)]);
        r.insert(0, 5).unwrap();
        r.insert(50, 60).unwrap();
        r.insert(70, 80).unwrap();
        assert_eq!(r.insert(90, 95), Err(Full));
        assert_eq!(r.len(), 4);
        assert!(r.can_insert(80, 81));
        assert!(!r.can_insert(90, 95));
        r.insert(1, 72).unwrap();
        r.insert(90, 95).unwrap();
        assert_eq!(r.iter().collect::<std::vec::Vec<_>>(), [(0, 80), (90, 95)]);
    }

    proptest! {
        #[test]
        fn behaves_like_a_set(ops in proptest::collection::vec((any::<bool>(), 0u64..200, 0u64..20), 0..60)) {
            let mut r = RangeSet::<64>::new();
            let mut m = BTreeSet::new();
            for (add, s, len) in ops {
                if add {
                    if r.insert(s, s + len).is_ok() {
                        m.extend(s..s + len);
                    }
                } else if !r.remove(s, s + len) {
                    for v in s..s + len { m.remove(&v); }
                } else {
                    m = model(&r);
                }
                prop_assert_eq!(model(&r), m.clone());
                // Sorted, disjoint, non-adjacent.
                let v: std::vec::Vec<_> = r.iter().collect();
                for w in v.windows(2) { prop_assert!(w[0].1 < w[1].0); }
                for (s, e) in v { prop_assert!(s < e); }
            }
        }

        /// `insert_value(v)` does what `insert(v, v + 1)` does, and says
        /// whether `v` is then the highest value; mostly in order, with
        /// gaps, repeats, older values and a full set.
        #[test]
        fn insert_value_matches_insert(steps in proptest::collection::vec((0u8..8, 0u64..6), 1..200)) {
            let (mut a, mut b) = (RangeSet::<4>::new(), RangeSet::<4>::new());
            let mut v = 0u64;
            for (kind, d) in steps {
                v = match kind {
                    0..=4 => v + 1,
                    5 => v + 1 + d,
                    6 => v.saturating_sub(d),
                    _ => v,
                };
                let r = a.insert_value(v);
                let expect = b.insert(v, v + 1).map(|()| b.last().is_some_and(|(_, e)| e == v + 1));
                prop_assert_eq!(r, expect);
                prop_assert_eq!(&a, &b);
                if kind == 7 && d == 0 {
                    a.drop_first();
                    b.drop_first();
                }
            }
        }

        #[test]
        fn full_insert_changes_nothing(starts in proptest::collection::vec(0u64..1000, 1..40)) {
            let mut r = RangeSet::<4>::new();
            for s in starts {
                let before = r.clone();
                let fits = r.can_insert(s * 3, s * 3 + 1);
                match r.insert(s * 3, s * 3 + 1) {
                    Ok(()) => prop_assert!(fits),
                    Err(Full) => { prop_assert!(!fits); prop_assert_eq!(&r, &before); }
                }
            }
        }
    }
}
