//! Sets of IP addresses of one family, as sorted disjoint intervals.
//!
//! The exposure map and the audit reason about "which sources": the
//! complement of a 200,000-range blocklist, a peer prefix minus what the
//! firewall accepts. Prefix tries (the `iprange` crate) answer membership
//! well but not the interval sweeps the exposure map is built from, so an
//! [`AddrSet`] is a flat, shareable (`Arc`) vector of inclusive intervals;
//! turning it into prefixes is left to `ipnet`'s subnet iterators.

use ipnet::{IpNet, Ipv4Subnets, Ipv6Subnets};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// An address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AddrFamily {
    /// IPv4.
    #[serde(rename = "ipv4")]
    V4,
    /// IPv6.
    #[serde(rename = "ipv6")]
    V6,
}

impl AddrFamily {
    /// The family of `a`.
    pub fn of(a: IpAddr) -> AddrFamily {
        match a {
            IpAddr::V4(_) => AddrFamily::V4,
            IpAddr::V6(_) => AddrFamily::V6,
        }
    }

    /// The largest address, as an integer.
    pub fn max(self) -> u128 {
        match self {
            AddrFamily::V4 => u32::MAX as u128,
            AddrFamily::V6 => u128::MAX,
        }
    }

    /// Address bits.
    pub fn bits(self) -> u8 {
        match self {
            AddrFamily::V4 => 32,
            AddrFamily::V6 => 128,
        }
    }

    /// The address with integer value `v` (truncated to the family's width).
    pub fn addr(self, v: u128) -> IpAddr {
        match self {
            AddrFamily::V4 => IpAddr::V4(Ipv4Addr::from(v as u32)),
            AddrFamily::V6 => IpAddr::V6(Ipv6Addr::from(v)),
        }
    }
}

impl fmt::Display for AddrFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddrFamily::V4 => "ipv4",
            AddrFamily::V6 => "ipv6",
        })
    }
}

/// An address as an integer (IPv4 in the low 32 bits).
pub fn addr_value(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

/// A set of addresses of one family: sorted, disjoint, non-adjacent
/// inclusive intervals. Clones share the intervals.
///
/// ```
/// use portwarden::addrs::{AddrFamily, AddrSet};
/// let peers = AddrSet::from_prefixes(AddrFamily::V4, ["10.0.0.0/24".parse().unwrap()]);
/// let open = AddrSet::from_prefixes(AddrFamily::V4, ["10.0.0.0/25".parse().unwrap()]);
/// let missing = peers.subtract(&open);
/// assert_eq!(missing.to_string(), "10.0.0.128/25");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AddrSet {
    family: AddrFamily,
    ranges: Arc<[(u128, u128)]>,
}

impl AddrSet {
    /// No address.
    pub fn empty(family: AddrFamily) -> AddrSet {
        AddrSet {
            family,
            ranges: Arc::from(Vec::new()),
        }
    }

    /// Every address of the family.
    pub fn all(family: AddrFamily) -> AddrSet {
        AddrSet {
            family,
            ranges: Arc::from(vec![(0, family.max())]),
        }
    }

    /// The set of the given prefixes; prefixes of the other family are
    /// ignored.
    pub fn from_prefixes(family: AddrFamily, nets: impl IntoIterator<Item = IpNet>) -> AddrSet {
        let v = nets
            .into_iter()
            .filter(|n| AddrFamily::of(n.addr()) == family)
            .map(|n| (addr_value(n.network()), addr_value(n.broadcast())))
            .collect();
        AddrSet::from_ranges(family, v)
    }

    /// The set of arbitrary inclusive intervals (in any order, overlapping
    /// or not; reversed ones are ignored; values are clamped to the family).
    pub fn from_ranges(family: AddrFamily, mut v: Vec<(u128, u128)>) -> AddrSet {
        let max = family.max();
        v.retain(|&(a, b)| a <= b && a <= max);
        for r in &mut v {
            r.1 = r.1.min(max);
        }
        v.sort_unstable();
        let mut out: Vec<(u128, u128)> = Vec::with_capacity(v.len());
        for (a, b) in v {
            match out.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => out.push((a, b)),
            }
        }
        AddrSet {
            family,
            ranges: Arc::from(out),
        }
    }

    /// Builds from intervals already sorted, disjoint and non-adjacent.
    pub(crate) fn from_sorted(family: AddrFamily, v: Vec<(u128, u128)>) -> AddrSet {
        debug_assert!(v.windows(2).all(|w| w[0].1.saturating_add(1) < w[1].0));
        AddrSet {
            family,
            ranges: Arc::from(v),
        }
    }

    /// The family.
    pub fn family(&self) -> AddrFamily {
        self.family
    }

    /// Whether no address is in the set.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Whether every address of the family is in the set.
    pub fn is_all(&self) -> bool {
        self.ranges.len() == 1 && self.ranges[0] == (0, self.family.max())
    }

    /// The intervals, as integers.
    pub fn intervals(&self) -> &[(u128, u128)] {
        &self.ranges
    }

    /// Number of intervals.
    pub fn len_ranges(&self) -> usize {
        self.ranges.len()
    }

    /// Whether both share their intervals (a cheap equality test).
    pub fn ptr_eq(&self, other: &AddrSet) -> bool {
        Arc::ptr_eq(&self.ranges, &other.ranges)
    }

    /// An identity for the shared intervals (equal for clones).
    pub(crate) fn ptr_id(&self) -> usize {
        self.ranges.as_ptr() as *const u8 as usize
    }

    /// Whether `a` is in the set (false for the other family).
    pub fn contains(&self, a: IpAddr) -> bool {
        AddrFamily::of(a) == self.family && self.contains_value(addr_value(a))
    }

    /// Whether the integer address `v` is in the set.
    pub fn contains_value(&self, v: u128) -> bool {
        let i = self.ranges.partition_point(|r| r.1 < v);
        self.ranges.get(i).is_some_and(|r| r.0 <= v)
    }

    /// Whether any address of `first..=last` is in the set.
    pub fn overlaps(&self, first: u128, last: u128) -> bool {
        let i = self.ranges.partition_point(|r| r.1 < first);
        self.ranges.get(i).is_some_and(|r| r.0 <= last)
    }

    /// Whether the sets share an address (no set is built).
    pub fn meets(&self, o: &AddrSet) -> bool {
        let (mut i, mut j) = (0, 0);
        while i < self.ranges.len() && j < o.ranges.len() {
            let (a, b) = (self.ranges[i], o.ranges[j]);
            if a.0 <= b.1 && b.0 <= a.1 {
                return true;
            }
            if a.1 < b.1 {
                i += 1;
            } else {
                j += 1;
            }
        }
        false
    }

    /// Addresses in any of `sets` (all of `family`), built in one pass
    /// rather than by repeated unions.
    pub fn union_all<'s>(
        family: AddrFamily,
        sets: impl IntoIterator<Item = &'s AddrSet>,
    ) -> AddrSet {
        let v: Vec<(u128, u128)> = sets
            .into_iter()
            .flat_map(|s| s.ranges.iter().copied())
            .collect();
        AddrSet::from_ranges(family, v)
    }

    /// Addresses in either set.
    pub fn union(&self, o: &AddrSet) -> AddrSet {
        if o.is_empty() {
            return self.clone();
        }
        if self.is_empty() {
            return o.clone();
        }
        let mut v = Vec::with_capacity(self.ranges.len() + o.ranges.len());
        v.extend_from_slice(&self.ranges);
        v.extend_from_slice(&o.ranges);
        AddrSet::from_ranges(self.family, v)
    }

    /// Addresses in both sets. Cost is proportional to the smaller set
    /// times the logarithm of the larger.
    pub fn intersect(&self, o: &AddrSet) -> AddrSet {
        let (small, big) = if self.ranges.len() <= o.ranges.len() {
            (self, o)
        } else {
            (o, self)
        };
        if big.is_all() {
            return small.clone();
        }
        let mut out = Vec::new();
        for &(a, b) in small.ranges.iter() {
            let mut i = big.ranges.partition_point(|r| r.1 < a);
            while let Some(&(c, d)) = big.ranges.get(i) {
                if c > b {
                    break;
                }
                out.push((a.max(c), b.min(d)));
                i += 1;
            }
        }
        AddrSet::from_sorted(self.family, out)
    }

    /// Addresses of `self` not in `o`. Cheap (shares `self`) when `o`
    /// does not meet it.
    pub fn subtract(&self, o: &AddrSet) -> AddrSet {
        if o.is_empty() || self.is_empty() {
            return self.clone();
        }
        if o.ranges.len() < self.ranges.len() && !o.ranges.iter().any(|&(a, b)| self.overlaps(a, b))
        {
            return self.clone();
        }
        let mut out = Vec::with_capacity(self.ranges.len());
        let mut j = 0;
        for &(a, b) in self.ranges.iter() {
            let mut cur = a;
            j += o.ranges[j..].partition_point(|r| r.1 < a);
            let mut k = j;
            let mut done = false;
            while let Some(&(c, d)) = o.ranges.get(k) {
                if c > b {
                    break;
                }
                if c > cur {
                    out.push((cur, c - 1));
                }
                if d >= b {
                    done = true;
                    break;
                }
                cur = d + 1;
                k += 1;
            }
            if !done {
                out.push((cur, b));
            }
        }
        AddrSet::from_sorted(self.family, out)
    }

    /// Addresses of the family not in the set.
    pub fn complement(&self) -> AddrSet {
        AddrSet::all(self.family).subtract(self)
    }

    /// The intervals as address pairs.
    pub fn ranges(&self) -> impl Iterator<Item = (IpAddr, IpAddr)> + '_ {
        self.ranges
            .iter()
            .map(|&(a, b)| (self.family.addr(a), self.family.addr(b)))
    }

    /// How many prefixes [`Self::to_prefixes`] gives, without making them
    /// (to choose between a set and its complement cheaply).
    pub fn prefix_count(&self) -> usize {
        let bits = u32::from(self.family.bits());
        self.ranges
            .iter()
            .map(|&(a, b)| prefixes_between(a, b, bits))
            .sum()
    }

    /// The smallest list of prefixes covering exactly the set, in order.
    pub fn to_prefixes(&self) -> Vec<IpNet> {
        self.prefixes().collect()
    }

    /// [`Self::to_prefixes`], one at a time.
    pub fn prefixes(&self) -> impl Iterator<Item = IpNet> + '_ {
        let family = self.family;
        self.ranges.iter().flat_map(move |&(a, b)| match family {
            AddrFamily::V4 => Subnets::V4(Ipv4Subnets::new(
                Ipv4Addr::from(a as u32),
                Ipv4Addr::from(b as u32),
                0,
            )),
            AddrFamily::V6 => {
                Subnets::V6(Ipv6Subnets::new(Ipv6Addr::from(a), Ipv6Addr::from(b), 0))
            }
        })
    }

    /// A few members for tests with real packets: both ends of the first
    /// and last intervals and the middle of up to `n` intervals spread
    /// over the set.
    pub fn sample(&self, n: usize) -> Vec<IpAddr> {
        let mut v: Vec<u128> = Vec::new();
        let len = self.ranges.len();
        if len == 0 {
            return Vec::new();
        }
        let step = len.div_ceil(n.max(1)).max(1);
        for (i, &(a, b)) in self.ranges.iter().enumerate() {
            if i == 0 || i + 1 == len {
                v.push(a);
                v.push(b);
            }
            if i % step == 0 {
                v.push(a + (b - a) / 2);
            }
        }
        v.sort_unstable();
        v.dedup();
        v.into_iter().map(|x| self.family.addr(x)).collect()
    }
}

impl fmt::Debug for AddrSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AddrSet({}, {self})", self.family)
    }
}

/// Comma-separated prefixes; `none` when empty, `any` for everything.
impl fmt::Display for AddrSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        if self.is_all() {
            return f.write_str("any");
        }
        for (i, p) in self.to_prefixes().iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// Serialised as its list of prefixes.
impl Serialize for AddrSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.to_prefixes().iter().map(|p| p.to_string()))
    }
}

/// The prefixes of one interval, of either family.
enum Subnets {
    V4(Ipv4Subnets),
    V6(Ipv6Subnets),
}

impl Iterator for Subnets {
    type Item = IpNet;

    fn next(&mut self) -> Option<IpNet> {
        match self {
            Subnets::V4(s) => s.next().map(IpNet::V4),
            Subnets::V6(s) => s.next().map(IpNet::V6),
        }
    }
}

/// How many prefixes cover exactly `[a, b]` in a space of `bits` bits:
/// from `a`, each time the largest aligned block that fits.
fn prefixes_between(mut a: u128, b: u128, bits: u32) -> usize {
    let mut n = 0;
    loop {
        // Alignment of `a` (the whole space when `a` is 0).
        let align = a.trailing_zeros().min(bits);
        // The largest block size (as a power of two) within `[a, b]`.
        let room = match (b - a).checked_add(1) {
            Some(len) => 127 - len.leading_zeros(),
            None => 128,
        };
        let k = align.min(room);
        n += 1;
        if k >= 128 {
            return n;
        }
        match a.checked_add(1u128 << k) {
            Some(next) if next <= b => a = next,
            _ => return n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(v: &[(u128, u128)]) -> AddrSet {
        AddrSet::from_ranges(AddrFamily::V4, v.to_vec())
    }

    #[test]
    fn normalises_and_prints_prefixes() {
        let s = set(&[(10, 20), (21, 30), (5, 12), (100, 99)]);
        assert_eq!(s.intervals(), &[(5, 30)]);
        let p = AddrSet::from_prefixes(
            AddrFamily::V4,
            [
                "10.0.0.0/25".parse().unwrap(),
                "10.0.0.128/25".parse().unwrap(),
                "2001:db8::/32".parse().unwrap(),
            ],
        );
        assert_eq!(p.to_string(), "10.0.0.0/24");
        assert_eq!(AddrSet::all(AddrFamily::V6).to_string(), "any");
        assert_eq!(AddrSet::empty(AddrFamily::V6).to_string(), "none");
        let c = p.complement();
        assert_eq!(c.len_ranges(), 2);
        assert!(!c.contains("10.0.0.7".parse().unwrap()));
        assert!(c.contains("10.0.1.0".parse().unwrap()));
        assert!(!c.contains("::1".parse().unwrap()));
    }

    #[test]
    fn subtract_shares_when_disjoint() {
        let big = set(&[(0, 10), (20, 30), (40, 50)]);
        let small = set(&[(12, 15)]);
        assert!(big.subtract(&small).ptr_eq(&big));
        assert_eq!(
            big.subtract(&set(&[(25, 45)])).intervals(),
            &[(0, 10), (20, 24), (46, 50)]
        );
    }

    #[test]
    fn prefix_counts_of_whole_spaces() {
        assert_eq!(AddrSet::all(AddrFamily::V4).prefix_count(), 1);
        assert_eq!(AddrSet::all(AddrFamily::V6).prefix_count(), 1);
        let wide = AddrSet::from_ranges(AddrFamily::V6, vec![(1, u128::MAX)]);
        assert_eq!(wide.prefix_count(), wide.to_prefixes().len());
    }

    fn arb() -> impl Strategy<Value = AddrSet> {
        proptest::collection::vec((0u128..300, 0u128..20), 0..8)
            .prop_map(|v| set(&v.into_iter().map(|(a, l)| (a, a + l)).collect::<Vec<_>>()))
    }

    proptest! {
        #[test]
        fn algebra_matches_membership(a in arb(), b in arb(), x in 0u128..330) {
            let (ia, ib) = (a.contains_value(x), b.contains_value(x));
            prop_assert_eq!(a.union(&b).contains_value(x), ia || ib);
            prop_assert_eq!(a.intersect(&b).contains_value(x), ia && ib);
            prop_assert_eq!(a.subtract(&b).contains_value(x), ia && !ib);
            prop_assert_eq!(a.complement().contains_value(x), !ia);
            let back = AddrSet::from_prefixes(AddrFamily::V4, a.to_prefixes());
            prop_assert_eq!(a.prefix_count(), a.to_prefixes().len());
            prop_assert_eq!(a.complement().prefix_count(), a.complement().to_prefixes().len());
            prop_assert_eq!(back, a);
        }

        #[test]
        fn meets_and_union_all_agree_with_the_algebra(a in arb(), b in arb(), c in arb()) {
            prop_assert_eq!(a.meets(&b), !a.intersect(&b).is_empty());
            let all = AddrSet::union_all(AddrFamily::V4, [&a, &b, &c]);
            prop_assert_eq!(all, a.union(&b).union(&c));
        }
    }
}
