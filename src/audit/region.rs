//! Regions of (port, address) space: what a requirement needs, what the
//! ruleset accepts, and what is left when one is taken from the other.

use crate::addrs::{AddrFamily, AddrSet};
use crate::catalog::ResolvedRequirement;
use crate::config::HostConfig;
use crate::ports::{PortRange, PortSet};
use ipnet::IpNet;
use std::collections::BTreeSet;
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
pub fn uncovered(ports: &PortSet, base: &AddrSet, covers: &[Rect]) -> Vec<(PortRange, AddrSet)> {
    if base.is_empty() || ports.is_empty() {
        return Vec::new();
    }
    let relevant: Vec<&Rect> = covers
        .iter()
        .filter(|c| is_v6(c.sources.family()) == is_v6(base.family()))
        .filter(|c| !c.ports.intersect(ports).is_empty())
        .filter(|c| !c.sources.intersect(base).is_empty())
        .collect();
    let mut bounds: BTreeSet<u32> = BTreeSet::new();
    for r in ports.ranges() {
        bounds.insert(u32::from(r.first()));
        bounds.insert(u32::from(r.last()) + 1);
    }
    for c in &relevant {
        for r in c.ports.intersect(ports).ranges() {
            bounds.insert(u32::from(r.first()));
            bounds.insert(u32::from(r.last()) + 1);
        }
    }
    let bounds: Vec<u32> = bounds.into_iter().collect();
    let mut out: Vec<(PortRange, AddrSet)> = Vec::new();
    for w in bounds.windows(2) {
        let (lo, hi) = (w[0] as u16, (w[1] - 1) as u16);
        if !ports.contains(lo) {
            continue;
        }
        let mut rest = base.clone();
        for c in &relevant {
            if c.ports.contains(lo) {
                rest = rest.subtract(&c.sources);
                if rest.is_empty() {
                    break;
                }
            }
        }
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
            && !c.ports.intersect(ports).is_empty()
            && !c.sources.intersect(base).is_empty()
    })
}
