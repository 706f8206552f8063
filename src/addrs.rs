//! TEMPORARY stub of the lead's `AddrSet` (replaced at merge): sets of
//! addresses of one family as sorted, disjoint, inclusive `u128` intervals
//! (IPv4 in the low 32 bits), with the contract's signatures.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize, Serializer};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AddrFamily {
    /// IPv4.
    #[serde(rename = "ipv4")]
    V4,
    /// IPv6.
    #[serde(rename = "ipv6")]
    V6,
}

impl AddrFamily {
    fn max(self) -> u128 {
        match self {
            AddrFamily::V4 => u128::from(u32::MAX),
            AddrFamily::V6 => u128::MAX,
        }
    }
    fn bits(self) -> u32 {
        match self {
            AddrFamily::V4 => 32,
            AddrFamily::V6 => 128,
        }
    }
    /// The family of an address.
    pub fn of(a: IpAddr) -> AddrFamily {
        if a.is_ipv4() {
            AddrFamily::V4
        } else {
            AddrFamily::V6
        }
    }
}

/// A set of addresses of one family, as sorted disjoint inclusive intervals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddrSet {
    family: AddrFamily,
    ranges: Vec<(u128, u128)>,
}

fn to_u128(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_u128(f: AddrFamily, v: u128) -> IpAddr {
    match f {
        AddrFamily::V4 => IpAddr::V4(Ipv4Addr::from(v as u32)),
        AddrFamily::V6 => IpAddr::V6(Ipv6Addr::from(v)),
    }
}

impl AddrSet {
    fn normal(family: AddrFamily, mut v: Vec<(u128, u128)>) -> Self {
        v.sort_unstable();
        let mut out: Vec<(u128, u128)> = Vec::with_capacity(v.len());
        for (a, b) in v {
            match out.last_mut() {
                Some(p) if p.1 == u128::MAX || a <= p.1 + 1 => p.1 = p.1.max(b),
                _ => out.push((a, b)),
            }
        }
        AddrSet {
            family,
            ranges: out,
        }
    }

    /// No address.
    pub fn empty(f: AddrFamily) -> Self {
        AddrSet {
            family: f,
            ranges: Vec::new(),
        }
    }

    /// Every address of the family.
    pub fn all(f: AddrFamily) -> Self {
        AddrSet {
            family: f,
            ranges: vec![(0, f.max())],
        }
    }

    /// The union of the prefixes of family `f` (others are ignored).
    pub fn from_prefixes(f: AddrFamily, nets: impl IntoIterator<Item = IpNet>) -> Self {
        let v = nets
            .into_iter()
            .filter(|n| AddrFamily::of(n.addr()) == f)
            .map(|n| (to_u128(n.network()), to_u128(n.broadcast())))
            .collect();
        Self::normal(f, v)
    }

    /// The family.
    pub fn family(&self) -> AddrFamily {
        self.family
    }

    /// Whether the set holds no address.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Whether the set holds every address of its family.
    pub fn is_all(&self) -> bool {
        self.ranges == [(0, self.family.max())]
    }

    /// Whether `a` is in the set.
    pub fn contains(&self, a: IpAddr) -> bool {
        AddrFamily::of(a) == self.family && {
            let v = to_u128(a);
            self.ranges.iter().any(|&(x, y)| x <= v && v <= y)
        }
    }

    /// Addresses in either set.
    pub fn union(&self, o: &Self) -> Self {
        Self::normal(
            self.family,
            self.ranges.iter().chain(o.ranges.iter()).copied().collect(),
        )
    }

    /// Addresses in both sets.
    pub fn intersect(&self, o: &Self) -> Self {
        let mut out = Vec::new();
        for &(a, b) in &self.ranges {
            for &(c, d) in &o.ranges {
                let (x, y) = (a.max(c), b.min(d));
                if x <= y {
                    out.push((x, y));
                }
            }
        }
        Self::normal(self.family, out)
    }

    /// Addresses in `self` but not in `o`.
    pub fn subtract(&self, o: &Self) -> Self {
        self.intersect(&o.complement())
    }

    /// Addresses not in the set.
    pub fn complement(&self) -> Self {
        let mut out = Vec::new();
        let mut next: Option<u128> = Some(0);
        for &(a, b) in &self.ranges {
            if let Some(n) = next {
                if a > n {
                    out.push((n, a - 1));
                }
            }
            next = b.checked_add(1).filter(|&x| x <= self.family.max());
        }
        if let Some(n) = next {
            out.push((n, self.family.max()));
        }
        AddrSet {
            family: self.family,
            ranges: out,
        }
    }

    /// The minimal prefix cover, in order.
    pub fn to_prefixes(&self) -> Vec<IpNet> {
        let bits = self.family.bits();
        let mut out = Vec::new();
        for &(a, b) in &self.ranges {
            let mut cur = a;
            loop {
                // Largest aligned block starting at cur within [cur, b].
                let mut len = bits;
                while len > 0 {
                    let size_bits = bits - (len - 1);
                    let mask = if size_bits >= 128 {
                        u128::MAX
                    } else {
                        (1u128 << size_bits) - 1
                    };
                    let fits = matches!(cur.checked_add(mask), Some(e) if e <= b);
                    if cur & mask != 0 || !fits {
                        break;
                    }
                    len -= 1;
                }
                out.push(match self.family {
                    AddrFamily::V4 => IpNet::V4(
                        Ipv4Net::new(Ipv4Addr::from(cur as u32), len as u8).expect("len <= 32"),
                    ),
                    AddrFamily::V6 => {
                        IpNet::V6(Ipv6Net::new(Ipv6Addr::from(cur), len as u8).expect("len <= 128"))
                    }
                });
                let size_bits = bits - len;
                let end = if size_bits >= 128 {
                    u128::MAX
                } else {
                    cur + ((1u128 << size_bits) - 1)
                };
                if end >= b {
                    break;
                }
                cur = end + 1;
            }
        }
        out
    }

    /// The intervals as (first, last) addresses.
    pub fn ranges(&self) -> impl Iterator<Item = (IpAddr, IpAddr)> + '_ {
        self.ranges
            .iter()
            .map(|&(a, b)| (from_u128(self.family, a), from_u128(self.family, b)))
    }

    /// A few members: first, last, and one inside each of the first intervals.
    pub fn sample(&self) -> Vec<IpAddr> {
        let mut out = Vec::new();
        for &(a, b) in self.ranges.iter().take(4) {
            out.push(from_u128(self.family, a));
            if b > a + 1 {
                out.push(from_u128(self.family, a + (b - a) / 2));
            }
        }
        if let Some(&(_, b)) = self.ranges.last() {
            let last = from_u128(self.family, b);
            if !out.contains(&last) {
                out.push(last);
            }
        }
        out
    }

    /// Number of intervals.
    pub fn len_ranges(&self) -> usize {
        self.ranges.len()
    }
}

/// Serialised as its minimal list of prefixes.
impl Serialize for AddrSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v: Vec<String> = self.to_prefixes().iter().map(ToString::to_string).collect();
        v.serialize(s)
    }
}
