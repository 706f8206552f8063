//! The host's routes prepared for the evaluator's lookups: the kernel's
//! local and main tables derived from [`crate::host::Routes`] the way the
//! kernel derives them (see [`crate::host::model`]).

use crate::host::model::{
    is_link_local, is_v4, rtn, Interface, RouteKind, Routes, Socket, ARPHRD_LOOPBACK,
};
use ipnet::IpNet;
use std::net::IpAddr;

/// One entry of the derived tables.
#[derive(Clone, Debug)]
pub(super) struct Entry {
    pub net: IpNet,
    /// The device name even when it is not in the interface list.
    pub dev_name: Option<String>,
    pub kind: RouteKind,
}

/// [`Routes`] prepared for lookups.
#[derive(Clone, Debug, Default)]
pub(super) struct RouteIndex {
    pub given: Routes,
    /// Whether the IPv4 routing decision's own checks (reverse-path
    /// filtering, martians) are applied ([`super::Evaluator::without_routing_checks`]).
    pub checks: bool,
    local: Vec<Entry>,
    main: Vec<Entry>,
}

/// The result of a route lookup.
#[derive(Clone, Copy, Debug)]
pub(super) enum Lookup<'a> {
    /// A route was found.
    Found(&'a Entry),
    /// No route.
    None,
}

impl RouteIndex {
    pub fn new(given: Routes) -> RouteIndex {
        let mut local = Vec::new();
        let mut main = Vec::new();
        for itf in &given.interfaces {
            for a in &itf.addrs {
                let host = IpNet::new(a.addr(), a.max_prefix_len()).expect("host prefix");
                let loopback_v4 = itf.iftype == ARPHRD_LOOPBACK && is_v4(a);
                local.push(Entry {
                    net: if loopback_v4 { a.trunc() } else { host },
                    dev_name: Some(itf.name.clone()),
                    kind: RouteKind::Local,
                });
                if let IpNet::V4(n) = a {
                    if n.prefix_len() < 31 && !loopback_v4 {
                        local.push(Entry {
                            net: IpNet::V4(
                                ipnet::Ipv4Net::new(n.broadcast(), 32).expect("host prefix"),
                            ),
                            dev_name: Some(itf.name.clone()),
                            kind: RouteKind::Broadcast,
                        });
                    }
                }
                if !loopback_v4 && a.prefix_len() < a.max_prefix_len() {
                    main.push(Entry {
                        net: a.trunc(),
                        dev_name: Some(itf.name.clone()),
                        kind: RouteKind::Unicast,
                    });
                }
            }
        }
        for r in &given.routes {
            let e = Entry {
                net: r.dst.trunc(),
                dev_name: r.dev.clone(),
                kind: r.kind,
            };
            match r.kind {
                RouteKind::Local | RouteKind::Broadcast => local.push(e),
                _ => main.push(e),
            }
        }
        // Longest prefix first; stable, so the first of equal routes wins.
        local.sort_by_key(|e| std::cmp::Reverse(e.net.prefix_len()));
        main.sort_by_key(|e| std::cmp::Reverse(e.net.prefix_len()));
        RouteIndex {
            given,
            checks: true,
            local,
            main,
        }
    }

    /// Whether anything is known (no interfaces: nothing is).
    pub fn known(&self) -> bool {
        !self.given.interfaces.is_empty()
    }

    pub fn interface(&self, i: usize) -> &Interface {
        &self.given.interfaces[i]
    }

    pub fn by_name(&self, name: &str) -> Option<usize> {
        self.given.interfaces.iter().position(|i| i.name == name)
    }

    fn lpm<'a>(table: &'a [Entry], addr: IpAddr, dev: Option<&str>) -> Option<&'a Entry> {
        table.iter().find(|e| {
            e.net.contains(&addr) && dev.map_or(true, |d| e.dev_name.as_deref() == Some(d))
        })
    }

    /// `fib_lookup`: local table, then main. `dev` restricts the lookup to
    /// routes through that device (IPv6 link-local lookups).
    pub fn lookup(&self, addr: IpAddr, dev: Option<&str>) -> Lookup<'_> {
        match Self::lpm(&self.local, addr, dev).or_else(|| Self::lpm(&self.main, addr, dev)) {
            Some(e) => Lookup::Found(e),
            None => Lookup::None,
        }
    }

    /// `inet_dev_addr_type` (IPv4): the address's type in the local table,
    /// as seen from `dev` when given.
    pub fn addr_type_v4(&self, addr: std::net::Ipv4Addr, dev: Option<&str>) -> u32 {
        let o = addr.octets();
        if o[0] == 0 || addr.is_broadcast() {
            return rtn::BROADCAST;
        }
        if addr.is_multicast() {
            return rtn::MULTICAST;
        }
        match Self::lpm(&self.local, IpAddr::V4(addr), None) {
            Some(e) if dev.is_none() || e.dev_name.as_deref() == dev => match e.kind {
                RouteKind::Local => rtn::LOCAL,
                RouteKind::Broadcast => rtn::BROADCAST,
                _ => rtn::UNICAST,
            },
            _ => rtn::UNICAST,
        }
    }

    /// `__nft_fib6_eval_type` (IPv6).
    pub fn addr_type_v6(&self, addr: std::net::Ipv6Addr, dev: Option<&str>) -> u32 {
        let a = IpAddr::V6(addr);
        let mut ret = rtn::UNSPEC;
        if let Some(d) = dev {
            let on_dev = self
                .given
                .interfaces
                .iter()
                .filter(|i| i.name == d)
                .flat_map(|i| i.addrs.iter())
                .any(|n| n.addr() == a);
            if on_dev {
                ret = rtn::LOCAL;
            }
        }
        if !addr.is_multicast() {
            match self.lookup(a, None) {
                Lookup::None => return rtn::UNREACHABLE,
                Lookup::Found(e) => match e.kind {
                    RouteKind::Blackhole => return rtn::BLACKHOLE,
                    RouteKind::Prohibit => return rtn::PROHIBIT,
                    RouteKind::Unreachable => return rtn::UNREACHABLE,
                    RouteKind::Local if dev.is_none() => ret = rtn::LOCAL,
                    _ => {}
                },
            }
        }
        if ret != rtn::UNSPEC {
            return ret;
        }
        if addr.is_multicast() {
            rtn::MULTICAST
        } else if addr.is_unspecified() {
            rtn::UNSPEC
        } else {
            rtn::UNICAST
        }
    }

    /// Whether a packet to `addr` is delivered locally (the routing decision
    /// after prerouting).
    pub fn is_local(&self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(a) => matches!(
                self.addr_type_v4(a, None),
                rtn::LOCAL | rtn::BROADCAST | rtn::MULTICAST
            ),
            IpAddr::V6(a) => a.is_multicast() || self.addr_type_v6(a, None) == rtn::LOCAL,
        }
    }

    /// The first IPv4 (or first global IPv6) address of interface `dev`:
    /// where `redirect` sends a packet.
    pub fn primary_addr(&self, dev: &str, v6: bool) -> Option<IpAddr> {
        let itf = self.given.interfaces.iter().find(|i| i.name == dev)?;
        if !v6 && itf.iftype == ARPHRD_LOOPBACK {
            return Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
        }
        let mut addrs = itf
            .addrs
            .iter()
            .map(IpNet::addr)
            .filter(|a| a.is_ipv6() == v6);
        if v6 {
            // The kernel keeps global addresses before link-local ones.
            let all: Vec<IpAddr> = addrs.collect();
            all.iter()
                .find(|a| !is_link_local(**a))
                .or(all.first())
                .copied()
        } else {
            addrs.next()
        }
    }

    /// The socket a packet to `addr:port` finds (exact bind before wildcard).
    pub fn socket(&self, proto: super::L4, addr: IpAddr, port: u16) -> Option<Option<&Socket>> {
        let socks = self.given.sockets.as_ref()?;
        let exact = socks
            .iter()
            .find(|s| s.proto == proto && s.port == port && s.addr == Some(addr));
        let wild = || {
            socks.iter().find(|s| {
                s.proto == proto
                    && s.port == port
                    && s.addr.map_or(true, |a| {
                        a.is_unspecified() && a.is_ipv6() == addr.is_ipv6()
                    })
            })
        };
        Some(exact.or_else(wild))
    }
}
