//! The host's network configuration as plain data: interfaces with their
//! addresses, routes and (optionally) listening sockets, as
//! [`super::read_routes`] reads them over rtnetlink (tests write them by
//! hand). The evaluator answers `fib`, `xt addrtype`, `socket`, `tproxy`,
//! `redirect` and the routing decision after prerouting from them
//! (`crate::eval`), and the audit finds where a peer's traffic arrives.
//!
//! The evaluator derives the kernel's tables from them the way the kernel
//! does:
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
    /// The NFQUEUE queue numbers a program listens on (nfnetlink_queue
    /// instances of the namespace), when known. `None` means unknown: a
    /// packet sent to a queue then has no known verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queues: Option<Vec<u16>>,
}

impl Routes {
    /// Whether a program listens on any of the NFQUEUE queues
    /// `num..num + total`: `Some(false)` when none does, `None` when the
    /// listeners are not known.
    pub fn queue_listened(&self, num: u16, total: u16) -> Option<bool> {
        let q = self.queues.as_ref()?;
        let end = u32::from(num) + u32::from(total.max(1));
        Some(
            q.iter()
                .any(|n| (u32::from(num)..end).contains(&u32::from(*n))),
        )
    }

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
    /// Which sysctl [`Interface::rp_filter`] comes from: `all` when its
    /// value is at least the interface's own.
    #[serde(default, skip_serializing_if = "ConfFrom::is_interface")]
    pub rp_filter_from: ConfFrom,
    /// `net.ipv4.conf.{all,IF}.route_localnet`: IPv4 packets to or from
    /// 127.0.0.0/8 arriving on the interface are routed instead of being
    /// dropped as martians. `None`: neither is set; otherwise the sysctl
    /// that enables it (`all` when both do). Either enables it, as the
    /// kernel's `IN_DEV_NET_ROUTE_LOCALNET` takes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_localnet: Option<ConfFrom>,
    /// `net.ipv4.conf.{all,IF}.accept_local`: a packet whose source is one
    /// of the host's own addresses is accepted (otherwise it is dropped as a
    /// martian source). `None`: neither is set; either enables it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_local: Option<ConfFrom>,
}

/// Which `net.ipv4.conf` entry a per-interface setting in force comes
/// from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfFrom {
    /// `net.ipv4.conf.IF.*`, the interface's own.
    #[default]
    Interface,
    /// `net.ipv4.conf.all.*`.
    All,
}

impl ConfFrom {
    /// Whether it is the interface's own entry.
    pub fn is_interface(&self) -> bool {
        *self == ConfFrom::Interface
    }

    /// The sysctl's name for interface `iface` and setting `key`
    /// (`net.ipv4.conf.eth0.rp_filter`).
    pub fn sysctl(self, iface: &str, key: &str) -> String {
        match self {
            ConfFrom::All => format!("net.ipv4.conf.all.{key}"),
            ConfFrom::Interface => format!("net.ipv4.conf.{iface}.{key}"),
        }
    }

    /// A boolean setting (`route_localnet`, `accept_local`) as the kernel's
    /// `IN_DEV_ORCONF` takes it: on when either value is non-zero.
    pub fn either(all: u32, own: u32) -> Option<ConfFrom> {
        if all != 0 {
            Some(ConfFrom::All)
        } else if own != 0 {
            Some(ConfFrom::Interface)
        } else {
            None
        }
    }
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

    /// Which sysctl the value in force comes from (see
    /// [`RpFilter::effective`]): `all` when it is set and at least the
    /// interface's value.
    pub fn effective_from(all: u32, own: u32) -> ConfFrom {
        if all != 0 && all >= own {
            ConfFrom::All
        } else {
            ConfFrom::Interface
        }
    }

    /// The sysctl's value: 0, 1 or 2.
    pub fn value(self) -> u8 {
        match self {
            RpFilter::Off => 0,
            RpFilter::Strict => 1,
            RpFilter::Loose => 2,
        }
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
            rp_filter_from: ConfFrom::Interface,
            route_localnet: None,
            accept_local: None,
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
    pub proto: crate::eval::L4,
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

/// Whether `n` is an IPv4 prefix.
pub(crate) fn is_v4(n: &IpNet) -> bool {
    matches!(n, IpNet::V4(_))
}

/// `fe80::/10`.
pub(crate) fn is_link_local(a: IpAddr) -> bool {
    match a {
        IpAddr::V6(a) => a.segments()[0] & 0xffc0 == 0xfe80,
        IpAddr::V4(_) => false,
    }
}
