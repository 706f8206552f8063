//! Regions of (port, address) space: what a requirement needs, what the
//! ruleset accepts, and what is left when one is taken from the other.

use crate::addrs::{AddrFamily, AddrSet};
use crate::catalog::ResolvedRequirement;
use crate::config::HostConfig;
use crate::ports::{PortRange, PortSet};
use ipnet::IpNet;
use std::net::IpAddr;

/// Addresses of both families.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peers {
    /// IPv4 addresses.
    pub v4: AddrSet,
    /// IPv6 addresses.
    pub v6: AddrSet,
}

impl Peers {
    /// No address.
    pub fn none() -> Peers {
        Peers {
            v4: AddrSet::empty(AddrFamily::V4),
            v6: AddrSet::empty(AddrFamily::V6),
        }
    }

    /// Every address.
    pub fn any() -> Peers {
        Peers {
            v4: AddrSet::all(AddrFamily::V4),
            v6: AddrSet::all(AddrFamily::V6),
        }
    }

    /// The addresses of these prefixes (an empty list: every address when
    /// `empty_is_any`, else none).
    pub fn from_nets(nets: &[IpNet], empty_is_any: bool) -> Peers {
        if nets.is_empty() && empty_is_any {
            return Peers::any();
        }
        Peers {
            v4: AddrSet::from_prefixes(AddrFamily::V4, nets.iter().copied()),
            v6: AddrSet::from_prefixes(AddrFamily::V6, nets.iter().copied()),
        }
    }

    /// The addresses of one family.
    pub fn family(&self, f: AddrFamily) -> &AddrSet {
        match f {
            AddrFamily::V4 => &self.v4,
            AddrFamily::V6 => &self.v6,
        }
    }

    /// Whether there is no address of either family.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// Addresses in either.
    pub fn union(&self, o: &Peers) -> Peers {
        Peers {
            v4: self.v4.union(&o.v4),
            v6: self.v6.union(&o.v6),
        }
    }

    /// Adds a set of one family.
    pub fn add(&mut self, s: &AddrSet) {
        match s.family() {
            AddrFamily::V4 => self.v4 = self.v4.union(s),
            AddrFamily::V6 => self.v6 = self.v6.union(s),
        }
    }

    /// Minimal prefixes, IPv4 first.
    pub fn prefixes(&self) -> Vec<IpNet> {
        let mut v = self.v4.to_prefixes();
        v.extend(self.v6.to_prefixes());
        v
    }
}

/// The addresses a requirement concerns, as the catalog defines it: the
/// union of its bound peer groups; if none of its groups is bound, every
/// address; a group bound to `[]` contributes nothing (so a requirement
/// whose groups are all bound empty concerns no address).
pub fn requirement_peers(r: &ResolvedRequirement, cfg: &HostConfig) -> Peers {
    let bound: Vec<&Vec<IpNet>> = r.peers.iter().filter_map(|g| cfg.peers.get(g)).collect();
    if bound.is_empty() {
        return Peers::any();
    }
    let nets: Vec<IpNet> = bound.into_iter().flatten().copied().collect();
    Peers::from_nets(&nets, false)
}

/// Whether a family is IPv6 (compares families without assuming more of
/// [`AddrFamily`] than its two variants).
pub fn is_v6(f: AddrFamily) -> bool {
    matches!(f, AddrFamily::V6)
}

/// The family of an address.
pub fn family_of(a: IpAddr) -> AddrFamily {
    if a.is_ipv4() {
        AddrFamily::V4
    } else {
        AddrFamily::V6
    }
}

/// Whether an interface name matches a configured name (a trailing `*`
/// matches any suffix, as in nftables).
pub fn iface_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// A rectangle of the (port, address) space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rect {
    /// Ports.
    pub ports: PortSet,
    /// Addresses (one family).
    pub sources: AddrSet,
}

/// For each maximal port interval of `ports`, the addresses of `base` that
/// none of `covers` covers at those ports (intervals with nothing left are
/// omitted; neighbouring intervals with the same addresses are merged).
///
/// Thousands of covers are usual (one per accepted port and source on a
/// big ruleset), so each port interval takes away the union of just the
/// covers active there, found by their port spans, in one subtraction.
pub fn uncovered(ports: &PortSet, base: &AddrSet, covers: &[Rect]) -> Vec<(PortRange, AddrSet)> {
    if base.is_empty() || ports.is_empty() {
        return Vec::new();
    }
    // (first, last + 1, cover) for the covers that meet `base` inside `ports`.
    let mut spans: Vec<(u32, u32, usize)> = Vec::new();
    let mut bounds: Vec<u32> = Vec::new();
    for r in ports.ranges() {
        bounds.push(u32::from(r.first()));
        bounds.push(u32::from(r.last()) + 1);
    }
    for (i, c) in covers.iter().enumerate() {
        if is_v6(c.sources.family()) != is_v6(base.family()) || !c.sources.meets(base) {
            continue;
        }
        for r in c.ports.intersect(ports).ranges() {
            let (lo, end) = (u32::from(r.first()), u32::from(r.last()) + 1);
            spans.push((lo, end, i));
            bounds.push(lo);
            bounds.push(end);
        }
    }
    bounds.sort_unstable();
    bounds.dedup();
    // The covers active in each window bounds[w]..bounds[w + 1].
    let mut active: Vec<Vec<usize>> = vec![Vec::new(); bounds.len().saturating_sub(1)];
    for (lo, end, i) in spans {
        let a = bounds.partition_point(|b| *b < lo);
        let z = bounds.partition_point(|b| *b < end);
        for w in &mut active[a..z] {
            w.push(i);
        }
    }
    let mut out: Vec<(PortRange, AddrSet)> = Vec::new();
    let mut prev: Option<(&[usize], AddrSet)> = None;
    for (w, on) in active.iter().enumerate() {
        let (lo, hi) = (bounds[w] as u16, (bounds[w + 1] - 1) as u16);
        if !ports.contains(lo) {
            continue;
        }
        let rest = match &prev {
            Some((p, r)) if *p == on.as_slice() => r.clone(),
            _ => match on.as_slice() {
                [] => base.clone(),
                [one] => base.subtract(&covers[*one].sources),
                many => base.subtract(&AddrSet::union_all(
                    base.family(),
                    many.iter().map(|i| &covers[*i].sources),
                )),
            },
        };
        prev = Some((on, rest.clone()));
        if rest.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some((r, a)) if u32::from(r.last()) + 1 == u32::from(lo) && *a == rest => {
                *r = PortRange::new(r.first(), hi).expect("ordered");
            }
            _ => out.push((PortRange::new(lo, hi).expect("ordered"), rest)),
        }
    }
    out
}

/// Whether any of `covers` overlaps `ports` × `base`.
pub fn overlaps(ports: &PortSet, base: &AddrSet, covers: &[Rect]) -> bool {
    covers.iter().any(|c| {
        is_v6(c.sources.family()) == is_v6(base.family())
            && c.sources.meets(base)
            && !c.ports.intersect(ports).is_empty()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v4(v: &[(u128, u128)]) -> AddrSet {
        AddrSet::from_ranges(AddrFamily::V4, v.to_vec())
    }

    fn ports(v: &[(u16, u16)]) -> PortSet {
        PortSet::from_ranges(v.iter().map(|&(a, b)| PortRange::new(a, a + b).unwrap()))
    }

    fn arb_ports() -> impl Strategy<Value = Vec<(u16, u16)>> {
        proptest::collection::vec((0u16..40, 0u16..8), 0..4)
    }

    fn arb_addrs() -> impl Strategy<Value = Vec<(u128, u128)>> {
        proptest::collection::vec((0u128..60, 0u128..10), 0..4)
            .prop_map(|v| v.into_iter().map(|(a, l)| (a, a + l)).collect())
    }

    proptest! {
        /// Port by port and address by address, `uncovered` is exactly
        /// "wanted and in base and in no cover", and never repeats a port.
        #[test]
        fn uncovered_is_exact(
            want in arb_ports(),
            base in arb_addrs(),
            covers in proptest::collection::vec((arb_ports(), arb_addrs()), 0..6),
        ) {
            let want = ports(&want);
            let base = v4(&base);
            let covers: Vec<Rect> = covers
                .iter()
                .map(|(p, a)| Rect { ports: ports(p), sources: v4(a) })
                .collect();
            let got = uncovered(&want, &base, &covers);
            for w in got.windows(2) {
                prop_assert!(w[0].0.last() < w[1].0.first());
            }
            for port in 0u16..50 {
                let here = got.iter().find(|(r, _)| r.contains(port));
                for x in 0u128..75 {
                    let expect = want.contains(port)
                        && base.contains_value(x)
                        && !covers
                            .iter()
                            .any(|c| c.ports.contains(port) && c.sources.contains_value(x));
                    let seen = here.is_some_and(|(_, a)| a.contains_value(x));
                    prop_assert_eq!(seen, expect, "port {} address {}", port, x);
                }
            }
        }
    }
}
