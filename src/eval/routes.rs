//! The host's interfaces, addresses, routes and (optionally) sockets: what
//! `fib`, `xt addrtype`, `socket`, `tproxy`, `redirect` and the routing
//! decision after prerouting are answered from.
//!
//! The caller fills [`Routes`] (the CLI reads it with rtnetlink; tests write
//! it by hand). The kernel's tables are derived from it the way the kernel
//! derives them:
//!
//! - **local table**: every address is `local` on its interface (on a loopback
//!   interface the whole IPv4 prefix is, as for `127.0.0.1/8`); the directed
//!   broadcast address of every IPv4 prefix shorter than /31 is `broadcast`;
//!   routes of kind [`RouteKind::Local`] / [`RouteKind::Broadcast`] are added
//!   as given.
//! - **main table**: every address's prefix is a connected route on its
//!   interface (as the kernel adds it), plus [`Routes::routes`].
//!
//! Lookups are longest-prefix match, local table first (the default policy
//! rules `local`, `main`). Policy routing, multipath weights and route
//! metrics are not modelled: among routes of equal prefix length the first
//! wins.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// `ARPHRD_ETHER`.
pub const ARPHRD_ETHER: u16 = 1;
/// `ARPHRD_LOOPBACK`.
pub const ARPHRD_LOOPBACK: u16 = 772;

fn ether() -> u16 {
    ARPHRD_ETHER
}

/// What the evaluator knows about the host's network configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routes {
    /// Interfaces with their addresses.
    #[serde(default)]
    pub interfaces: Vec<Interface>,
    /// Routes of the main table (connected routes of the interfaces'
    /// addresses are added automatically; repeating them is harmless).
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Listening sockets, when known. `None` means unknown: `socket` and
    /// `tproxy` expressions then cannot be decided for a probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sockets: Option<Vec<Socket>>,
}

impl Routes {
    /// The interface the host routes a packet to `addr` through, i.e. where
    /// a connection from `addr` is expected to arrive: the loopback
    /// interface for one of the host's own addresses (as the kernel's local
    /// table says), otherwise the longest-prefix match over the connected
    /// prefixes of the interfaces' addresses and [`Routes::routes`] (the
    /// first of equal prefixes wins, connected prefixes first). `None` when
    /// nothing matches or the best route has no device (blackhole,
    /// unreachable, prohibit).
    pub fn route_dev(&self, addr: IpAddr) -> Option<&str> {
        let local = self.interfaces.iter().find(|i| {
            i.addrs.iter().any(|n| {
                n.addr() == addr
                    || (i.iftype == ARPHRD_LOOPBACK && is_v4(n) && n.trunc().contains(&addr))
            })
        });
        if let Some(itf) = local {
            let lo = self.interfaces.iter().find(|i| i.iftype == ARPHRD_LOOPBACK);
            return Some(lo.unwrap_or(itf).name.as_str());
        }
        let connected = self.interfaces.iter().flat_map(|i| {
            i.addrs
                .iter()
                .filter(move |n| {
                    n.prefix_len() < n.max_prefix_len()
                        && !(i.iftype == ARPHRD_LOOPBACK && is_v4(n))
                })
                .map(move |n| (n.trunc(), Some(i.name.as_str())))
        });
        let routed = self
            .routes
            .iter()
            .filter(|r| !matches!(r.kind, RouteKind::Local | RouteKind::Broadcast))
            .map(|r| {
                let dev = match r.kind {
                    RouteKind::Unicast => r.dev.as_deref(),
                    _ => None,
                };
                (r.dst.trunc(), dev)
            });
        let mut best: Option<(u8, Option<&str>)> = None;
        for (net, dev) in connected.chain(routed) {
            if net.contains(&addr) && best.map_or(true, |(len, _)| net.prefix_len() > len) {
                best = Some((net.prefix_len(), dev));
            }
        }
        best.and_then(|(_, dev)| dev)
    }

    /// The address a connection arriving on `dev` is taken to be for when
    /// none is given: the interface's first address of the family (for
    /// IPv6 the first that is not link-local, if any), else the first
    /// address of that family on any non-loopback interface.
    pub fn default_local_addr(&self, dev: &str, v6: bool) -> Option<IpAddr> {
        let pick = |itf: &Interface| {
            let mut fam = itf
                .addrs
                .iter()
                .map(IpNet::addr)
                .filter(move |a| a.is_ipv6() == v6);
            if v6 {
                let all: Vec<IpAddr> = fam.collect();
                all.iter()
                    .find(|a| !is_link_local(**a))
                    .or(all.first())
                    .copied()
            } else {
                fam.next()
            }
        };
        self.interfaces
            .iter()
            .find(|i| i.name == dev)
            .and_then(pick)
            .or_else(|| {
                self.interfaces
                    .iter()
                    .filter(|i| i.iftype != ARPHRD_LOOPBACK)
                    .find_map(pick)
            })
    }
}

/// One network interface.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    /// Name (`eth0`).
    pub name: String,
    /// Interface index.
    pub index: u32,
    /// `ARPHRD_*` type: 1 Ethernet (default), 772 loopback.
    #[serde(default = "ether")]
    pub iftype: u16,
    /// Addresses with their prefix lengths, in the kernel's order (the first
    /// IPv4 address is the one `redirect` uses).
    #[serde(default)]
    pub addrs: Vec<IpNet>,
    /// Interface group (`meta iifgroup`).
    #[serde(default)]
    pub group: u32,
    /// Link kind (`veth`, `bridge`...; `meta iifkind`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// IPv4 reverse-path filtering in force on the interface: the larger of
    /// `net.ipv4.conf.all.rp_filter` and the interface's own value.
    #[serde(default, skip_serializing_if = "RpFilter::is_off")]
    pub rp_filter: RpFilter,
}

/// The kernel's IPv4 reverse-path filter (`net.ipv4.conf.*.rp_filter`),
/// applied in the routing decision, before the input hook: a packet whose
/// source fails it never reaches the input chains.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum RpFilter {
    /// 0: no check.
    #[default]
    Off,
    /// 1: the route back to the source must leave through the interface
    /// the packet came in on.
    Strict,
    /// 2: the source must be routable through some interface.
    Loose,
}

impl RpFilter {
    /// The sysctl's value (0, 1, 2; other values count as off).
    pub fn from_sysctl(v: u32) -> RpFilter {
        match v {
            1 => RpFilter::Strict,
            2 => RpFilter::Loose,
            _ => RpFilter::Off,
        }
    }

    /// The filter in force for an interface, as the kernel takes it: the
    /// larger of the `all` value and the interface's value, by number (so
    /// loose, 2, wins over strict, 1).
    pub fn effective(all: u32, own: u32) -> RpFilter {
        RpFilter::from_sysctl(all.max(own).min(2))
    }

    /// Whether there is no check.
    pub fn is_off(&self) -> bool {
        *self == RpFilter::Off
    }
}

impl Interface {
    /// An Ethernet interface with addresses.
    pub fn new(name: &str, index: u32, addrs: &[&str]) -> Interface {
        Interface {
            name: name.to_string(),
            index,
            iftype: ARPHRD_ETHER,
            addrs: addrs
                .iter()
                .map(|a| a.parse().expect("address with prefix length"))
                .collect(),
            group: 0,
            kind: None,
            rp_filter: RpFilter::Off,
        }
    }
}

/// A route.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// Destination prefix.
    pub dst: IpNet,
    /// Output interface name (none for blackhole/unreachable/prohibit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
    /// Route type.
    #[serde(default)]
    pub kind: RouteKind,
}

impl Route {
    /// A unicast route to `dst` through `dev`.
    pub fn via(dst: &str, dev: &str) -> Route {
        Route {
            dst: dst.parse().expect("prefix"),
            dev: Some(dev.to_string()),
            kind: RouteKind::Unicast,
        }
    }
}

/// Route types (`RTN_*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteKind {
    /// A gateway or direct route.
    #[default]
    Unicast,
    /// A local address (local table).
    Local,
    /// A broadcast address (local table).
    Broadcast,
    /// Silently discarded.
    Blackhole,
    /// Unreachable.
    Unreachable,
    /// Administratively prohibited.
    Prohibit,
}

/// A listening (or bound) socket, for `socket` and `tproxy`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Socket {
    /// `tcp` or `udp`.
    pub proto: super::L4,
    /// Bound address; `None` for a wildcard bind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<IpAddr>,
    /// Port.
    pub port: u16,
    /// `IP_TRANSPARENT` is set.
    #[serde(default)]
    pub transparent: bool,
    /// `SO_MARK`.
    #[serde(default)]
    pub mark: u32,
}

/// `RTN_*` numbers as `fib ... type` and `xt addrtype` see them.
pub mod rtn {
    /// Unspecified.
    pub const UNSPEC: u32 = 0;
    /// Unicast.
    pub const UNICAST: u32 = 1;
    /// Local.
    pub const LOCAL: u32 = 2;
    /// Broadcast.
    pub const BROADCAST: u32 = 3;
    /// Anycast.
    pub const ANYCAST: u32 = 4;
    /// Multicast.
    pub const MULTICAST: u32 = 5;
    /// Blackhole.
    pub const BLACKHOLE: u32 = 6;
    /// Unreachable.
    pub const UNREACHABLE: u32 = 7;
    /// Prohibit.
    pub const PROHIBIT: u32 = 8;
}

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

fn is_v4(n: &IpNet) -> bool {
    matches!(n, IpNet::V4(_))
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
        RouteIndex { given, local, main }
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

/// `fe80::/10`.
pub(super) fn is_link_local(a: IpAddr) -> bool {
    match a {
        IpAddr::V6(a) => a.segments()[0] & 0xffc0 == 0xfe80,
        IpAddr::V4(_) => false,
    }
}
