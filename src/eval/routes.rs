//! The host's routes prepared for the evaluator's lookups: the kernel's
//! local and main tables derived from [`crate::host::Routes`] the way the
//! kernel derives them (see [`crate::host::model`]), the other tables, and
//! the policy rules that choose between them ([`RouteIndex::route`],
//! `fib_rules_lookup`).

use crate::host::model::{
    is_link_local, is_v4, rtn, Interface, RouteKind, Routes, Rule, RuleAction, Socket,
    ARPHRD_LOOPBACK, RT_TABLE_LOCAL, RT_TABLE_MAIN,
};
use ipnet::IpNet;
use std::collections::BTreeMap;
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
    /// Tables other than local and main, by number.
    others: BTreeMap<u32, Vec<Entry>>,
    /// The policy rules of each family (IPv4, IPv6), by priority.
    rules: [Vec<Rule>; 2],
    /// Whether a family's rules differ from the kernel's defaults.
    custom: [bool; 2],
    /// Whether a family's rules select on `ipproto`, `sport` or `dport`:
    /// the kernel then fills them in for input lookups too
    /// (`fib4_rules_early_flow_dissect`).
    dissect: [bool; 2],
}

/// What a route lookup's flow holds (`struct flowi`): the keys policy
/// rules select on.
#[derive(Clone, Copy, Debug)]
pub(super) struct Flow<'a> {
    /// Destination.
    pub dst: IpAddr,
    /// Source (unspecified when not chosen yet).
    pub src: IpAddr,
    /// Input interface name (the loopback interface for the host's own
    /// packets and reverse-path lookups).
    pub iif: &'a str,
    /// Output interface name, empty for none.
    pub oif: &'a str,
    /// Mark value and the bits of it that are known.
    pub mark: (u32, u32),
    /// IP protocol, 0 when not filled in.
    pub proto: u8,
    /// Source port, 0 when not filled in.
    pub sport: u16,
    /// Destination port, 0 when not filled in.
    pub dport: u16,
    /// Whether proto and ports are filled in only when a rule needs them
    /// (input and reverse-path lookups). These lookups run as user 0
    /// (`sock_net_uid(net, NULL)`); others for a socket whose owner is not
    /// known.
    pub input: bool,
}

/// The result of a lookup through the policy rules.
#[derive(Clone, Debug)]
pub(super) enum Routed<'a> {
    /// A route, found in `table` by `rule`'s lookup. A blackhole,
    /// unreachable or prohibit route is a failed lookup in the kernel.
    Route {
        /// The route.
        entry: &'a Entry,
        /// Its table.
        table: u32,
        /// The rule whose lookup found it.
        rule: &'a Rule,
    },
    /// A rule's action refused it (blackhole, unreachable, prohibit).
    Refused(&'a Rule),
    /// No rule found a route.
    NoRoute,
    /// A rule's selectors cannot be decided for this flow.
    Unknown(&'a Rule, String),
}

impl<'a> Routed<'a> {
    /// The route, when one was found.
    pub fn entry(&self) -> Option<&'a Entry> {
        match self {
            Routed::Route { entry, .. } => Some(entry),
            _ => None,
        }
    }
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
        let mut others: BTreeMap<u32, Vec<Entry>> = BTreeMap::new();
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
            match (r.table, r.kind) {
                (RT_TABLE_MAIN | RT_TABLE_LOCAL, RouteKind::Local | RouteKind::Broadcast) => {
                    local.push(e)
                }
                (RT_TABLE_MAIN, _) => main.push(e),
                // The local table is derived; other routes given for it
                // are left out (the kernel's own are the derived ones).
                (RT_TABLE_LOCAL, _) => {}
                (t, _) => others.entry(t).or_default().push(e),
            }
        }
        // Longest prefix first; stable, so the first of equal routes wins.
        local.sort_by_key(|e| std::cmp::Reverse(e.net.prefix_len()));
        main.sort_by_key(|e| std::cmp::Reverse(e.net.prefix_len()));
        for t in others.values_mut() {
            t.sort_by_key(|e| std::cmp::Reverse(e.net.prefix_len()));
        }
        let rules = [false, true].map(|v6| given.family_rules(v6));
        let custom = [0, 1].map(|i| rules[i] != Rule::defaults(i == 1));
        let dissect = [0, 1].map(|i| {
            rules[i]
                .iter()
                .any(|r| r.ipproto.is_some() || r.sport.is_some() || r.dport.is_some())
        });
        RouteIndex {
            given,
            checks: true,
            local,
            main,
            others,
            rules,
            custom,
            dissect,
        }
    }

    /// Whether the policy rules of the family of `v6` differ from the
    /// kernel's defaults.
    pub fn custom_rules(&self, v6: bool) -> bool {
        self.custom[usize::from(v6)]
    }

    /// The policy rules of the family of `v6`, by priority (the defaults
    /// when none were given).
    pub fn rules(&self, v6: bool) -> &[Rule] {
        &self.rules[usize::from(v6)]
    }

    fn table(&self, id: u32) -> &[Entry] {
        match id {
            RT_TABLE_LOCAL => &self.local,
            RT_TABLE_MAIN => &self.main,
            // Table 0 (unspec) is not a table a rule can look up.
            n => self.others.get(&n).map_or(&[], Vec::as_slice),
        }
    }

    /// Whether `rule` selects `flow`: `Err` names a selector that cannot
    /// be decided.
    fn rule_matches(rule: &Rule, flow: &Flow<'_>) -> Result<bool, String> {
        if let Some(u) = rule.undecided.first() {
            return Err(format!("its selector {u} is not modelled"));
        }
        let mut m = true;
        if let Some((a, b)) = rule.uidrange {
            if !flow.input {
                return Err(format!(
                    "its uidrange {a}-{b} depends on the user owning the socket"
                ));
            }
            m &= a == 0;
        }
        if let Some(i) = &rule.iif {
            m &= flow.iif == i;
        }
        if let Some(o) = &rule.oif {
            m &= flow.oif == o;
        }
        if let Some((mark, mask)) = rule.fwmark {
            let (v, known) = flow.mark;
            if m && mask & !known != 0 {
                return Err("its fwmark selector depends on mark bits not known here".into());
            }
            m &= (mark ^ v) & mask == 0;
        }
        if let Some(n) = &rule.from {
            m &= n.contains(&flow.src);
        }
        if let Some(n) = &rule.to {
            m &= n.contains(&flow.dst);
        }
        if rule.tos != 0 {
            // The probe's IP header carries TOS 0.
            m = false;
        }
        if let Some(p) = rule.ipproto {
            m &= flow.proto == p;
        }
        if let Some((a, b)) = rule.sport {
            m &= (a..=b).contains(&flow.sport);
        }
        if let Some((a, b)) = rule.dport {
            m &= (a..=b).contains(&flow.dport);
        }
        Ok(m != rule.not)
    }

    /// The first route of `table` for `flow`, as `fib_table_lookup`
    /// finds it: `None` when there is none or it is a `throw` (the next
    /// rule is tried). An output interface in the flow restricts the
    /// search to routes through it.
    fn table_lookup<'a>(table: &'a [Entry], flow: &Flow<'_>) -> Option<&'a Entry> {
        let e = table.iter().find(|e| {
            e.net.contains(&flow.dst)
                && (flow.oif.is_empty()
                    || e.kind != RouteKind::Unicast
                    || e.dev_name.as_deref() == Some(flow.oif))
        })?;
        (e.kind != RouteKind::Throw).then_some(e)
    }

    /// `fib_rules_lookup`: the policy rules of the flow's family in
    /// priority order, each rule's selectors, then its action (`lookup`,
    /// `goto`, `nop`, `blackhole`, `unreachable`, `prohibit`) and
    /// `suppress_prefixlength` / `suppress_ifgroup`.
    pub fn route<'a>(&'a self, flow: &Flow<'_>) -> Routed<'a> {
        let v6 = flow.dst.is_ipv6();
        let fam = usize::from(v6);
        let mut flow = *flow;
        if flow.input && !self.dissect[fam] {
            flow.proto = 0;
            flow.sport = 0;
            flow.dport = 0;
        }
        let rules = &self.rules[fam];
        let mut i = 0;
        while i < rules.len() {
            let rule = &rules[i];
            match Self::rule_matches(rule, &flow) {
                Err(why) => return Routed::Unknown(rule, why),
                Ok(false) => {
                    i += 1;
                    continue;
                }
                Ok(true) => {}
            }
            match rule.action {
                RuleAction::Goto(p) => {
                    // The first rule of that priority, matched in turn; an
                    // unresolved goto is skipped. Targets lie after the
                    // rule (the kernel refuses others), so this ends.
                    match rules.iter().position(|r| r.priority == p) {
                        Some(j) if j > i => i = j,
                        _ => i += 1,
                    }
                    continue;
                }
                RuleAction::Nop => {}
                RuleAction::Blackhole | RuleAction::Unreachable | RuleAction::Prohibit => {
                    return Routed::Refused(rule)
                }
                RuleAction::Lookup(t) => {
                    if let Some(entry) = Self::table_lookup(self.table(t), &flow) {
                        let error = matches!(
                            entry.kind,
                            RouteKind::Blackhole | RouteKind::Unreachable | RouteKind::Prohibit
                        );
                        let suppressed = !error
                            && (rule
                                .suppress_prefixlength
                                .is_some_and(|n| entry.net.prefix_len() <= n)
                                || rule.suppress_ifgroup.is_some_and(|g| {
                                    entry.dev_name.as_deref().is_some_and(|d| {
                                        self.given
                                            .interfaces
                                            .iter()
                                            .any(|i| i.name == d && i.group == g)
                                    })
                                }));
                        if !suppressed {
                            return Routed::Route {
                                entry,
                                table: t,
                                rule,
                            };
                        }
                    }
                }
            }
            i += 1;
        }
        Routed::NoRoute
    }

    /// The loopback interface's name (`lo` when none is listed): the input
    /// interface of the host's own lookups.
    pub fn loopback_name(&self) -> &str {
        self.given
            .interfaces
            .iter()
            .find(|i| i.iftype == ARPHRD_LOOPBACK)
            .map_or("lo", |i| i.name.as_str())
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

    /// `fib_lookup` with the default rules: local table, then main. `dev`
    /// restricts the lookup to routes through that device (IPv6 link-local
    /// lookups).
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
