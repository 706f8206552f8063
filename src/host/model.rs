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
//! Other tables hold the [`Route`]s whose [`Route::table`] names them.
//! Lookups follow the policy rules ([`Routes::rules`], `ip rule`; the
//! kernel's defaults when none of a family are given: `0 lookup local`,
//! `32766 lookup main`, and for IPv4 `32767 lookup default`), each table
//! by longest-prefix match. Multipath weights and route metrics are not
//! modelled: among routes of equal prefix length the first wins.

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
    /// Routes of the main table and of the other tables but the local one
    /// (connected routes of the interfaces' addresses are added to the
    /// main table automatically; repeating them is harmless).
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Policy routing rules (`ip rule`) of both families, in the kernel's
    /// order (by priority). A family with no rule here has the kernel's
    /// default rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
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
    /// The policy rules of the family of `v6`, by priority (the kernel's
    /// defaults when none were given).
    pub fn family_rules(&self, v6: bool) -> Vec<Rule> {
        let mut r: Vec<Rule> = self.rules.iter().filter(|r| r.v6 == v6).cloned().collect();
        if r.is_empty() {
            r = Rule::defaults(v6);
        }
        // Stable: the kernel keeps rules of equal priority in the order
        // they were added, which is the order it lists them.
        r.sort_by_key(|r| r.priority);
        r
    }

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
    /// prefixes of the interfaces' addresses and the main table's
    /// [`Routes::routes`] (the first of equal prefixes wins, connected
    /// prefixes first; policy rules are not consulted). `None` when
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
            .filter(|r| {
                r.table == RT_TABLE_MAIN
                    && !matches!(r.kind, RouteKind::Local | RouteKind::Broadcast)
            })
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

/// `RT_TABLE_MAIN`.
pub const RT_TABLE_MAIN: u32 = 254;
/// `RT_TABLE_LOCAL`.
pub const RT_TABLE_LOCAL: u32 = 255;
/// `RT_TABLE_DEFAULT`.
pub const RT_TABLE_DEFAULT: u32 = 253;

fn main_table() -> u32 {
    RT_TABLE_MAIN
}

fn is_main_table(t: &u32) -> bool {
    *t == RT_TABLE_MAIN
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
    /// The routing table (254, main, when absent). Local and broadcast
    /// routes of the main table are taken as the local table's.
    #[serde(default = "main_table", skip_serializing_if = "is_main_table")]
    pub table: u32,
}

impl Route {
    /// A unicast route to `dst` through `dev`, in the main table.
    pub fn via(dst: &str, dev: &str) -> Route {
        Route {
            dst: dst.parse().expect("prefix"),
            dev: Some(dev.to_string()),
            kind: RouteKind::Unicast,
            table: RT_TABLE_MAIN,
        }
    }

    /// The same route in table `table`.
    pub fn in_table(mut self, table: u32) -> Route {
        self.table = table;
        self
    }
}

/// A policy routing rule (`ip rule`): when a lookup's flow matches its
/// selectors, its action applies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// IPv6 (`ip -6 rule`) or IPv4.
    #[serde(default)]
    pub v6: bool,
    /// Priority (`pref`): rules are tried in increasing order.
    pub priority: u32,
    /// `not`: the selectors' result is inverted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not: bool,
    /// `from PREFIX`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<IpNet>,
    /// `to PREFIX`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<IpNet>,
    /// `iif NAME` (`lo` matches packets the host sends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iif: Option<String>,
    /// `oif NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oif: Option<String>,
    /// `fwmark MARK/MASK`: `(mark, mask)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fwmark: Option<(u32, u32)>,
    /// `ipproto N`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipproto: Option<u8>,
    /// `sport A-B`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sport: Option<(u16, u16)>,
    /// `dport A-B`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dport: Option<(u16, u16)>,
    /// `tos N` (`dsfield`), 0 for any.
    #[serde(default, skip_serializing_if = "is_zero_u8")]
    pub tos: u8,
    /// `suppress_prefixlength N`: a route found with a prefix this long or
    /// shorter is ignored and the next rule is tried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppress_prefixlength: Option<u8>,
    /// `suppress_ifgroup N`: a route through an interface of this group is
    /// ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppress_ifgroup: Option<u32>,
    /// `uidrange A-B`: the user owning the socket (0, root of the
    /// namespace, for packets the host receives).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uidrange: Option<(u32, u32)>,
    /// Selectors the model cannot decide (`l3mdev`, `tun_id`, attributes
    /// and actions not known): a lookup reaching this rule is unknown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub undecided: Vec<String>,
    /// What happens to a matching lookup.
    pub action: RuleAction,
}

fn is_zero_u8(v: &u8) -> bool {
    *v == 0
}

/// The action of a [`Rule`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleAction {
    /// `lookup TABLE`: the table's route, if it has one (else the next
    /// rule).
    Lookup(u32),
    /// `goto PRIORITY`: continue at the first rule of that priority.
    Goto(u32),
    /// `nop`: nothing.
    Nop,
    /// `blackhole`: discarded silently.
    Blackhole,
    /// `unreachable`: refused (`ENETUNREACH`).
    Unreachable,
    /// `prohibit`: refused (`EACCES`).
    Prohibit,
}

impl Rule {
    /// A rule of priority `priority` with no selector.
    pub fn new(v6: bool, priority: u32, action: RuleAction) -> Rule {
        Rule {
            v6,
            priority,
            not: false,
            from: None,
            to: None,
            iif: None,
            oif: None,
            fwmark: None,
            ipproto: None,
            sport: None,
            dport: None,
            tos: 0,
            suppress_prefixlength: None,
            suppress_ifgroup: None,
            uidrange: None,
            undecided: Vec::new(),
            action,
        }
    }

    /// The kernel's default rules of a family.
    pub fn defaults(v6: bool) -> Vec<Rule> {
        let mut r = vec![
            Rule::new(v6, 0, RuleAction::Lookup(RT_TABLE_LOCAL)),
            Rule::new(v6, 32766, RuleAction::Lookup(RT_TABLE_MAIN)),
        ];
        if !v6 {
            r.push(Rule::new(v6, 32767, RuleAction::Lookup(RT_TABLE_DEFAULT)));
        }
        r
    }
}

fn table_name(t: u32) -> String {
    match t {
        RT_TABLE_MAIN => "main".into(),
        RT_TABLE_LOCAL => "local".into(),
        RT_TABLE_DEFAULT => "default".into(),
        n => n.to_string(),
    }
}

/// As `ip rule` lists it: `100: from 10.0.0.10 prohibit`.
impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:", self.priority)?;
        if self.not {
            f.write_str(" not")?;
        }
        match &self.from {
            Some(n) if n.prefix_len() == n.max_prefix_len() => write!(f, " from {}", n.addr())?,
            Some(n) => write!(f, " from {n}")?,
            None => f.write_str(" from all")?,
        }
        match &self.to {
            Some(n) if n.prefix_len() == n.max_prefix_len() => write!(f, " to {}", n.addr())?,
            Some(n) => write!(f, " to {n}")?,
            None => {}
        }
        if self.tos != 0 {
            write!(f, " tos {:#04x}", self.tos)?;
        }
        if let Some((m, mask)) = self.fwmark {
            if mask == u32::MAX {
                write!(f, " fwmark {m:#x}")?;
            } else {
                write!(f, " fwmark {m:#x}/{mask:#x}")?;
            }
        }
        if let Some(i) = &self.iif {
            write!(f, " iif {i}")?;
        }
        if let Some(o) = &self.oif {
            write!(f, " oif {o}")?;
        }
        if let Some(p) = self.ipproto {
            write!(f, " ipproto {p}")?;
        }
        for (k, r) in [("sport", self.sport), ("dport", self.dport)] {
            match r {
                Some((a, b)) if a == b => write!(f, " {k} {a}")?,
                Some((a, b)) => write!(f, " {k} {a}-{b}")?,
                None => {}
            }
        }
        if let Some((a, b)) = self.uidrange {
            write!(f, " uidrange {a}-{b}")?;
        }
        for u in &self.undecided {
            write!(f, " {u}")?;
        }
        match self.action {
            RuleAction::Lookup(t) => write!(f, " lookup {}", table_name(t))?,
            RuleAction::Goto(p) => write!(f, " goto {p}")?,
            RuleAction::Nop => f.write_str(" nop")?,
            RuleAction::Blackhole => f.write_str(" blackhole")?,
            RuleAction::Unreachable => f.write_str(" unreachable")?,
            RuleAction::Prohibit => f.write_str(" prohibit")?,
        }
        if let Some(n) = self.suppress_prefixlength {
            write!(f, " suppress_prefixlength {n}")?;
        }
        if let Some(g) = self.suppress_ifgroup {
            write!(f, " suppress_ifgroup {g}")?;
        }
        Ok(())
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
    /// `throw`: the lookup in this table fails and the next policy rule is
    /// tried.
    Throw,
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
