//! Regions of (port, address) space: what a requirement needs, what the
//! ruleset accepts, and what is left when one is taken from the other.

use crate::addrs::{AddrFamily, AddrSet};
use crate::catalog::ResolvedRequirement;
use crate::config::HostConfig;
use crate::host::{RouteKind, Routes, ARPHRD_LOOPBACK};
use crate::ports::{PortRange, PortSet};
use ipnet::IpNet;
use std::collections::BTreeMap;
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

/// The address space of one family cut by the host's routes: for each
/// interface, the addresses the host routes through it
/// ([`Routes::route_dev`] for every address at once), i.e. the sources
/// whose connections are expected to arrive there (a reply leaves where
/// the route points). The host's own addresses go to the loopback
/// interface; addresses with no route, or whose route has no device
/// (blackhole, unreachable, prohibit), to no interface.
///
/// With `local` false the local table is left out: the host's own
/// addresses go where the main table sends them (a peer never sends from
/// them: the kernel drops such packets as martians), which keeps each
/// interface's share a few prefixes ("everything except 10.0.0.0/8").
///
/// Longest prefix first (the first of equal prefixes wins, connected
/// prefixes before routes, as in [`Routes::route_dev`]): each prefix takes
/// what no longer prefix took. Linear in the routes per prefix, so
/// quadratic at worst: fine for a host's table, not a full BGP table.
pub fn routed_sources(routes: &Routes, fam: AddrFamily, local: bool) -> BTreeMap<String, AddrSet> {
    let mine = |n: &IpNet| n.addr().is_ipv6() == is_v6(fam);
    let lo = routes
        .interfaces
        .iter()
        .find(|i| i.iftype == ARPHRD_LOOPBACK);
    let mut out: BTreeMap<String, AddrSet> = BTreeMap::new();
    // The local table: every address, and a loopback interface's IPv4 prefixes.
    let mut claimed = AddrSet::empty(fam);
    for i in routes.interfaces.iter().filter(|_| local) {
        for n in i.addrs.iter().filter(|n| mine(n)) {
            let net = if i.iftype == ARPHRD_LOOPBACK && n.addr().is_ipv4() {
                n.trunc()
            } else {
                IpNet::from(n.addr())
            };
            let s = AddrSet::from_prefixes(fam, [net]);
            let name = lo.unwrap_or(i).name.clone();
            let e = out.entry(name).or_insert_with(|| AddrSet::empty(fam));
            *e = e.union(&s.subtract(&claimed));
            claimed = claimed.union(&s);
        }
    }
    // The main table: connected prefixes, then routes, in order.
    let mut candidates: Vec<(IpNet, Option<&str>)> = Vec::new();
    for i in &routes.interfaces {
        for n in i.addrs.iter().filter(|n| mine(n)) {
            if n.prefix_len() < n.max_prefix_len()
                && !(i.iftype == ARPHRD_LOOPBACK && n.addr().is_ipv4())
            {
                candidates.push((n.trunc(), Some(i.name.as_str())));
            }
        }
    }
    for r in routes.routes.iter().filter(|r| mine(&r.dst)) {
        match r.kind {
            RouteKind::Local | RouteKind::Broadcast => {}
            RouteKind::Unicast => candidates.push((r.dst.trunc(), r.dev.as_deref())),
            _ => candidates.push((r.dst.trunc(), None)),
        }
    }
    // Stable: among equal prefix lengths the first stays first.
    candidates.sort_by_key(|(n, _)| std::cmp::Reverse(n.prefix_len()));
    for (net, dev) in candidates {
        let s = AddrSet::from_prefixes(fam, [net]);
        if let Some(dev) = dev {
            let part = s.subtract(&claimed);
            if !part.is_empty() {
                let e = out
                    .entry(dev.to_string())
                    .or_insert_with(|| AddrSet::empty(fam));
                *e = e.union(&part);
            }
        }
        claimed = claimed.union(&s);
    }
    out.retain(|_, s| !s.is_empty());
    out
}

/// Whether the host has a default route (`0.0.0.0/0` or `::/0`) through
/// interface `name`, in either family.
pub fn has_default_route(routes: &Routes, name: &str) -> bool {
    routes.routes.iter().any(|r| {
        r.kind == RouteKind::Unicast && r.dst.prefix_len() == 0 && r.dev.as_deref() == Some(name)
    })
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

    fn arb_routes() -> impl Strategy<Value = Routes> {
        use crate::host::{Interface, Route};
        let net = (0u8..4, 0u8..=32u8).prop_map(|(a, len)| {
            let addr = std::net::Ipv4Addr::new(10, a * 64, a, 1);
            IpNet::new(IpAddr::V4(addr), len.max(1)).unwrap().trunc()
        });
        let route = (net.clone(), 0u8..4, 0u8..6).prop_map(|(dst, dev, kind)| Route {
            dst,
            dev: (dev < 3).then(|| format!("e{dev}")),
            kind: match kind {
                0 => RouteKind::Blackhole,
                1 => RouteKind::Local,
                _ => RouteKind::Unicast,
            },
        });
        (
            proptest::collection::vec(route, 0..6),
            0u8..4,
            8u8..30,
            any::<bool>(),
        )
            .prop_map(|(mut routes, a, len, default)| {
                if default {
                    routes.push(Route::via("0.0.0.0/0", "e0"));
                }
                let own = format!("10.{}.{a}.1/{len}", a * 64);
                let mut lo = Interface::new("lo", 1, &["127.0.0.1/8", "::1/128"]);
                lo.iftype = ARPHRD_LOOPBACK;
                Routes {
                    interfaces: vec![
                        lo,
                        Interface::new("e0", 2, &["192.0.2.1/24"]),
                        Interface::new("e1", 3, &[own.as_str()]),
                        Interface::new("e2", 4, &["10.0.0.9/32"]),
                    ],
                    routes,
                    sockets: None,
                    queues: None,
                }
            })
    }

    proptest! {
        /// Every address lands on the interface [`Routes::route_dev`]
        /// names, and on no other.
        #[test]
        fn routed_sources_agree_with_route_dev(routes in arb_routes(), probes in proptest::collection::vec(any::<u32>(), 64)) {
            let parts = routed_sources(&routes, AddrFamily::V4, true);
            let mut samples: Vec<u32> = probes;
            for r in &routes.routes {
                if let IpAddr::V4(a) = r.dst.addr() {
                    let a = u32::from(a);
                    samples.extend([a, a.wrapping_sub(1), a | 1, a | 0xff, a.wrapping_add(256)]);
                }
            }
            samples.extend([u32::from(std::net::Ipv4Addr::new(10, 0, 0, 9)), u32::from(std::net::Ipv4Addr::new(127, 0, 0, 5)), u32::from(std::net::Ipv4Addr::new(192, 0, 2, 77))]);
            for v in samples {
                let a = IpAddr::V4(std::net::Ipv4Addr::from(v));
                let want = routes.route_dev(a);
                let got: Vec<&str> = parts
                    .iter()
                    .filter(|(_, s)| s.contains(a))
                    .map(|(n, _)| n.as_str())
                    .collect();
                prop_assert_eq!(got, want.into_iter().collect::<Vec<_>>(), "address {}", a);
            }
        }

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
