//! Port numbers and inclusive port ranges.
//!
//! A [`PortRange`] can only be built with `first <= last`, so code that holds
//! one never has to re-check it. [`PortSet`] is a normalised list of disjoint,
//! non-adjacent ranges: the form in which coverage ("which of 2500-3300 is
//! open?") is computed and reported.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// An inclusive range of ports, `first..=last`, never empty.
///
/// ```
/// use portwarden::ports::{PortRange, PortSet};
/// let data: PortRange = "2500-3300".parse().unwrap();
/// assert_eq!(data.len(), 801);
/// assert!("3300-2500".parse::<PortRange>().is_err());
/// // Which part of the data range a rule opening 2500-2999 leaves closed:
/// let open = PortSet::from_ranges([PortRange::new(2500, 2999).unwrap()]);
/// let missing = PortSet::from_ranges([data]).subtract(&open);
/// assert_eq!(missing.to_string(), "3000-3300");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortRange {
    first: u16,
    last: u16,
}

/// Why a port range could not be built or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortRangeError {
    /// `first` was greater than `last`.
    #[error("port range {first}-{last} is reversed (the first port must not exceed the last)")]
    Reversed {
        /// The first port as given.
        first: u16,
        /// The last port as given.
        last: u16,
    },
    /// The text was not `N` or `N-M` with N, M in 0..=65535.
    #[error("expected a port (0-65535) or a range like 2500-3300, found {0:?}")]
    Syntax(String),
}

impl PortRange {
    /// The whole port space, 0-65535.
    pub const ALL: PortRange = PortRange {
        first: 0,
        last: u16::MAX,
    };

    /// Builds `first..=last`; fails if `first > last`.
    pub fn new(first: u16, last: u16) -> Result<Self, PortRangeError> {
        if first > last {
            Err(PortRangeError::Reversed { first, last })
        } else {
            Ok(PortRange { first, last })
        }
    }

    /// The range holding one port.
    pub const fn single(port: u16) -> Self {
        PortRange {
            first: port,
            last: port,
        }
    }

    /// First port of the range.
    pub const fn first(self) -> u16 {
        self.first
    }

    /// Last port of the range (inclusive).
    pub const fn last(self) -> u16 {
        self.last
    }

    /// Number of ports in the range (1..=65536).
    pub fn len(self) -> u32 {
        u32::from(self.last) - u32::from(self.first) + 1
    }

    /// Always false: a range holds at least one port. Present for clippy's sake.
    pub fn is_empty(self) -> bool {
        false
    }

    /// Whether `port` lies in the range.
    pub fn contains(self, port: u16) -> bool {
        self.first <= port && port <= self.last
    }

    /// The overlap of two ranges, if any.
    pub fn intersect(self, other: PortRange) -> Option<PortRange> {
        let first = self.first.max(other.first);
        let last = self.last.min(other.last);
        (first <= last).then_some(PortRange { first, last })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

impl FromStr for PortRange {
    type Err = PortRangeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || PortRangeError::Syntax(s.to_string());
        let parse = |t: &str| t.trim().parse::<u16>().map_err(|_| syntax());
        match s.split_once('-') {
            None => Ok(PortRange::single(parse(s)?)),
            Some((a, b)) => PortRange::new(parse(a)?, parse(b)?),
        }
    }
}

/// Serialised as `[first, last]`, the form the audit's JSON uses.
impl Serialize for PortRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        [self.first, self.last].serialize(s)
    }
}

/// Accepts `[first, last]`, a single number, or a string `"N"` / `"N-M"`.
impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Pair([u16; 2]),
            One(u16),
            Text(String),
        }
        match Repr::deserialize(d)? {
            Repr::Pair([a, b]) => PortRange::new(a, b).map_err(serde::de::Error::custom),
            Repr::One(p) => Ok(PortRange::single(p)),
            Repr::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// A set of ports held as sorted, disjoint, non-adjacent ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct PortSet {
    ranges: Vec<PortRange>,
}

impl PortSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every port, 0-65535.
    pub fn all() -> Self {
        PortSet {
            ranges: vec![PortRange::ALL],
        }
    }

    /// The normalised set covering every given range.
    pub fn from_ranges(ranges: impl IntoIterator<Item = PortRange>) -> Self {
        let mut v: Vec<PortRange> = ranges.into_iter().collect();
        v.sort_unstable();
        let mut out: Vec<PortRange> = Vec::with_capacity(v.len());
        for r in v {
            match out.last_mut() {
                Some(prev) if u32::from(r.first) <= u32::from(prev.last) + 1 => {
                    prev.last = prev.last.max(r.last);
                }
                _ => out.push(r),
            }
        }
        PortSet { ranges: out }
    }

    /// The ranges, sorted and disjoint.
    pub fn ranges(&self) -> &[PortRange] {
        &self.ranges
    }

    /// Whether no port is in the set.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Number of ports in the set.
    pub fn count(&self) -> u32 {
        self.ranges.iter().map(|r| r.len()).sum()
    }

    /// Whether `port` is in the set.
    pub fn contains(&self, port: u16) -> bool {
        let i = self.ranges.partition_point(|r| r.last < port);
        self.ranges.get(i).is_some_and(|r| r.contains(port))
    }

    /// Ports in both sets.
    pub fn intersect(&self, other: &PortSet) -> PortSet {
        let (mut i, mut j) = (0, 0);
        let mut out = Vec::new();
        while i < self.ranges.len() && j < other.ranges.len() {
            let (a, b) = (self.ranges[i], other.ranges[j]);
            if let Some(r) = a.intersect(b) {
                out.push(r);
            }
            if a.last < b.last {
                i += 1;
            } else {
                j += 1;
            }
        }
        PortSet { ranges: out }
    }

    /// Ports in `self` but not in `other`.
    pub fn subtract(&self, other: &PortSet) -> PortSet {
        self.intersect(&other.complement())
    }

    /// Ports in either set.
    pub fn union(&self, other: &PortSet) -> PortSet {
        PortSet::from_ranges(self.ranges.iter().chain(other.ranges.iter()).copied())
    }

    /// Ports not in the set.
    pub fn complement(&self) -> PortSet {
        let mut out = Vec::with_capacity(self.ranges.len() + 1);
        let mut next: u32 = 0;
        for r in &self.ranges {
            if u32::from(r.first) > next {
                out.push(PortRange {
                    first: next as u16,
                    last: r.first - 1,
                });
            }
            next = u32::from(r.last) + 1;
        }
        if next <= u32::from(u16::MAX) {
            out.push(PortRange {
                first: next as u16,
                last: u16::MAX,
            });
        }
        PortSet { ranges: out }
    }
}

impl fmt::Display for PortSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reversed_range_is_rejected() {
        assert!(PortRange::new(10, 9).is_err());
        assert_eq!(
            "3300-2500".parse::<PortRange>(),
            Err(PortRangeError::Reversed {
                first: 3300,
                last: 2500
            })
        );
        assert!("70000".parse::<PortRange>().is_err());
        assert_eq!("2500-3300".parse::<PortRange>().unwrap().len(), 801);
    }

    fn naive(s: &PortSet) -> Vec<bool> {
        (0..=u16::MAX).map(|p| s.contains(p)).collect()
    }

    fn arb_set() -> impl Strategy<Value = PortSet> {
        prop::collection::vec((0u16..200, 0u16..20), 0..8).prop_map(|v| {
            PortSet::from_ranges(
                v.into_iter()
                    .map(|(a, l)| PortRange::new(a, a + l).unwrap()),
            )
        })
    }

    proptest! {
        #[test]
        fn set_algebra_matches_pointwise(a in arb_set(), b in arb_set()) {
            let (na, nb) = (naive(&a), naive(&b));
            let i = naive(&a.intersect(&b));
            let u = naive(&a.union(&b));
            let d = naive(&a.subtract(&b));
            let c = naive(&a.complement());
            for p in 0..=u16::MAX as usize {
                prop_assert_eq!(i[p], na[p] && nb[p]);
                prop_assert_eq!(u[p], na[p] || nb[p]);
                prop_assert_eq!(d[p], na[p] && !nb[p]);
                prop_assert_eq!(c[p], !na[p]);
            }
            // normal form: disjoint and non-adjacent
            for w in a.ranges().windows(2) {
                prop_assert!(u32::from(w[0].last()) + 1 < u32::from(w[1].first()));
            }
        }
    }
}
