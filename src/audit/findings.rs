//! The inbound finding kinds: `missing-opening` / `partial-opening`,
//! `excess-opening`, `exposed-listener` and `not-listening`.

use super::fix::{self, Manager};
use super::prove::{OwnedClaim, Prover};
use super::region::{
    self, family_of, has_default_route, iface_matches, requirement_peers, routed_sources, Peers,
    Rect,
};
use super::setfix;
use super::{AuditInput, Draft, Evidence, Need, Piece, RuleTexts};
use crate::addrs::{AddrFamily, AddrSet};
use crate::catalog::{Direction, Proto, ResolvedRequirement, Scope};
use crate::config::FindingKind;
use crate::eval::{DecidedBy, Evaluator, Opening, Probe, Verdict, L4};
use crate::host::Listener;
use crate::host::{Interface, RpFilter, ARPHRD_LOOPBACK};
use crate::ports::{PortRange, PortSet};
// Fx hashing: keys are the host's own ruleset and sockets (no untrusted
// input to flood a table with), and SipHash was a tenth of the audit.
use rayon::prelude::*;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Source port of the probes the audit sends through the evaluator (in the
/// Linux ephemeral range).
pub const PROBE_SPORT: u16 = 40000;

/// Linux's default ephemeral port range (`net.ipv4.ip_local_port_range`):
/// an opening counts as accepting a required connection only if it accepts
/// every source port of this range.
pub const CLIENT_SPORTS: (u16, u16) = (32768, 60999);

/// Port ranges (between the ports where some rule's port test changes) up
/// to this length are probed port by port for their blocker; longer ones by
/// bisection.
const SCAN_ALL: u32 = 64;

/// The catalog's protocol as the evaluator's.
pub fn l4(p: Proto) -> L4 {
    match p {
        Proto::Tcp => L4::Tcp,
        Proto::Udp => L4::Udp,
    }
}

/// What the finding functions share: the input, the firewall manager, the
/// host's non-loopback interfaces, and the exposure indexed.
pub(crate) struct Ctx<'a> {
    pub input: AuditInput<'a>,
    pub manager: Manager,
    pub ifaces: Vec<&'a Interface>,
    /// The exposure's openings by protocol and interface: every consumer
    /// asks for one interface at a time, and there may be tens of
    /// thousands of openings.
    by_iif: HashMap<(L4, String), Vec<&'a Opening>>,
    /// The snapshot's rules, indexed for evidence.
    pub rules: RuleTexts<'a>,
    /// Answers of [`Ctx::decide`].
    /// (A mutex: the finding kinds are worked out on two threads.)
    decided: Mutex<HashMap<ProbeKey, Decided>>,
    /// Ports where a verdict may change: every 2-byte constant of a rule
    /// (and the port after it), the bounds of port-typed set elements and
    /// the ports of xt tcp/udp/multiport matches.
    pub port_marks: BTreeSet<u32>,
    /// Proves fixes before they are shown (built on first use).
    prover: std::sync::OnceLock<Prover>,
    /// Per family (IPv4, IPv6): the addresses the host routes through each
    /// interface ([`routed_sources`]).
    routed: [BTreeMap<String, AddrSet>; 2],
    /// Per family: the addresses routed through some non-loopback
    /// interface (what loose reverse-path filtering lets in).
    routable: [AddrSet; 2],
    /// Per family: the host's own addresses (the local table), which no
    /// packet from outside may carry as its source.
    martian: [AddrSet; 2],
}

/// What a rule that refuses sources by their address tests them against.
pub(crate) struct SourceTest<'a> {
    /// The rule's table.
    pub table: &'a crate::snapshot::Table,
    /// The set the source address is looked up in, if any (else the rule
    /// names addresses itself).
    pub set: Option<&'a crate::snapshot::Set>,
}

impl SourceTest<'_> {
    /// `set inet f2b-table addr-set-sshd`, or `an anonymous set` / `the
    /// rule's own addresses`.
    pub fn name(&self) -> String {
        match self.set {
            Some(s) if !s.anonymous() => {
                format!("set {} {} {}", self.table.family, self.table.name, s.name)
            }
            Some(_) => "an anonymous set".into(),
            None => "the addresses the rule names".into(),
        }
    }

    /// The elements of the set that hold `addr` (an address-keyed set;
    /// none otherwise), as prefixes or ranges.
    pub fn covering(&self, addr: IpAddr) -> Vec<String> {
        let Some(set) = self.set else {
            return Vec::new();
        };
        let want: Vec<u8> = match addr {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        let as_addr = |b: &[u8]| -> Option<IpAddr> {
            match b.len() {
                4 => Some(IpAddr::from(<[u8; 4]>::try_from(b).ok()?)),
                16 => Some(IpAddr::from(<[u8; 16]>::try_from(b).ok()?)),
                _ => None,
            }
        };
        let mut out = Vec::new();
        for el in &set.elements {
            let lo = el.key.as_slice();
            let hi = el.key_end.as_ref().map_or(lo, |k| k.as_slice());
            if lo.len() != want.len() || hi.len() != want.len() {
                continue;
            }
            if lo <= want.as_slice() && want.as_slice() <= hi {
                let (Some(a), Some(b)) = (as_addr(lo), as_addr(hi)) else {
                    continue;
                };
                let range = AddrSet::from_ranges(
                    family_of(a),
                    vec![(crate::addrs::addr_value(a), crate::addrs::addr_value(b))],
                );
                let p = range.to_prefixes();
                out.push(if p.len() == 1 {
                    p[0].to_string()
                } else {
                    format!("{a}-{b}")
                });
            }
        }
        out
    }
}

/// Index of a family in [`Ctx`]'s per-family arrays.
fn fam_index(f: AddrFamily) -> usize {
    usize::from(region::is_v6(f))
}

/// Sources of a requirement on one interface: those to check, and those
/// the host's reverse-path filter refuses there (never a missing opening).
pub(crate) struct Sources {
    pub check: AddrSet,
    pub refused: AddrSet,
}

/// The ports at which some rule's port test can change its outcome.
pub(crate) fn port_marks(snapshot: &crate::snapshot::Snapshot) -> BTreeSet<u32> {
    use crate::snapshot::{value, xt::XtInfo, Expr};
    let mut marks = BTreeSet::new();
    let mut two = |b: &[u8]| {
        if b.len() == 2 {
            let v = u32::from(u16::from_be_bytes([b[0], b[1]]));
            marks.insert(v);
            marks.insert(v + 1);
        }
    };
    for t in &snapshot.tables {
        for c in &t.chains {
            for r in &c.rules {
                for e in &r.exprs {
                    match e {
                        Expr::Cmp { data, .. } => two(data.as_slice()),
                        Expr::Range { from, to, .. } => {
                            two(from.as_slice());
                            two(to.as_slice());
                        }
                        Expr::Match { info, .. } => match &**info {
                            XtInfo::Tcp { sport, dport, .. } | XtInfo::Udp { sport, dport, .. } => {
                                for p in sport.iter().chain(dport.iter()) {
                                    two(&p.to_be_bytes());
                                }
                            }
                            XtInfo::Multiport { ports, .. } => {
                                for p in ports {
                                    two(&p.to_be_bytes());
                                }
                            }
                            _ => {}
                        },
                        _ => {}
                    }
                }
            }
        }
        for set in &t.sets {
            let offsets = set.key.offsets();
            for (dt, (off, len)) in set.key.0.iter().zip(offsets) {
                if dt.id != value::INET_SERVICE || len != 2 {
                    continue;
                }
                for el in &set.elements {
                    for k in [Some(&el.key), el.key_end.as_ref()].into_iter().flatten() {
                        if let Some(b) = k.as_slice().get(off..off + 2) {
                            two(b);
                        }
                    }
                }
            }
        }
    }
    marks
}

/// Whether an interface is a loopback interface.
pub fn is_loopback(i: &Interface) -> bool {
    i.iftype == ARPHRD_LOOPBACK || i.name == "lo"
}

/// The local addresses of an interface that peers connect to (IPv6
/// link-local addresses are left out).
pub fn local_addrs(i: &Interface) -> Vec<IpAddr> {
    i.addrs
        .iter()
        .map(|n| n.addr())
        .filter(|a| match a {
            IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) != 0xfe80,
            IpAddr::V4(_) => true,
        })
        .collect()
}

fn covers_clients(o: &Opening) -> bool {
    o.sports.first() <= CLIENT_SPORTS.0 && o.sports.last() >= CLIENT_SPORTS.1
}

impl<'a> Ctx<'a> {
    pub fn new(input: &AuditInput<'a>, manager: Manager) -> Ctx<'a> {
        let ifaces = input
            .evaluator
            .routes()
            .interfaces
            .iter()
            .filter(|i| !is_loopback(i))
            .collect();
        let mut by_iif: HashMap<(L4, String), Vec<&'a Opening>> = HashMap::default();
        for o in &input.exposure.openings {
            by_iif.entry((o.proto, o.iif.clone())).or_default().push(o);
        }
        let routes = input.evaluator.routes();
        let routed = [
            routed_sources(routes, AddrFamily::V4, false),
            routed_sources(routes, AddrFamily::V6, false),
        ];
        let routable = [AddrFamily::V4, AddrFamily::V6].map(|f| {
            AddrSet::union_all(
                f,
                routed[fam_index(f)]
                    .iter()
                    .filter(|(n, _)| {
                        !routes
                            .interfaces
                            .iter()
                            .any(|i| &i.name == *n && is_loopback(i))
                    })
                    .map(|(_, s)| s),
            )
        });
        let martian = [AddrFamily::V4, AddrFamily::V6].map(|f| {
            let lo: Vec<&str> = routes
                .interfaces
                .iter()
                .filter(|i| is_loopback(i))
                .map(|i| i.name.as_str())
                .collect();
            let local = routed_sources(routes, f, true);
            AddrSet::union_all(
                f,
                local
                    .iter()
                    .filter(|(n, _)| lo.contains(&n.as_str()))
                    .map(|(_, s)| s),
            )
        });
        Ctx {
            input: *input,
            manager,
            ifaces,
            by_iif,
            martian,
            decided: Mutex::default(),
            rules: RuleTexts::new(input.snapshot),
            port_marks: port_marks(input.snapshot),
            prover: std::sync::OnceLock::new(),
            routed,
            routable,
        }
    }

    /// The prover of fixes, with the samples of connections that must keep
    /// working (computed once).
    pub fn prover(&self) -> &Prover {
        self.prover.get_or_init(|| Prover::new(self))
    }

    /// The addresses the host routes through interface `name`.
    pub fn routed(&self, fam: AddrFamily, name: &str) -> AddrSet {
        self.routed[fam_index(fam)]
            .get(name)
            .cloned()
            .unwrap_or_else(|| AddrSet::empty(fam))
    }

    /// The sources of requirement `r` that concern interface `iface`, in
    /// one family: the addresses of its bound peer groups (every address
    /// when none is bound) that the host routes through `iface`, where a
    /// reply to them would leave; for a group pinned to interfaces in
    /// `[peer_interfaces]`, all of its addresses on those interfaces and
    /// none elsewhere. Pinned addresses that the interface's IPv4
    /// reverse-path filter refuses (strict: not routed back through it;
    /// loose: not routable at all) are `refused` instead.
    pub fn sources_on(
        &self,
        r: &ResolvedRequirement,
        iface: &Interface,
        fam: AddrFamily,
    ) -> Sources {
        let cfg = self.input.config;
        let routed = self.routed(fam, &iface.name);
        let empty = || AddrSet::empty(fam);
        let bound: Vec<&String> = r
            .peers
            .iter()
            .filter(|g| cfg.peers.contains_key(*g))
            .collect();
        if bound.is_empty() {
            return Sources {
                check: routed,
                refused: empty(),
            };
        }
        let (mut check, mut refused) = (empty(), empty());
        for g in bound {
            let addrs = AddrSet::from_prefixes(fam, cfg.peers[g].iter().copied());
            match cfg.peer_interfaces.get(g) {
                None => check = check.union(&addrs.intersect(&routed)),
                Some(pins) if pins.iter().any(|p| iface_matches(p, &iface.name)) => {
                    let passes = match (region::is_v6(fam), iface.rp_filter) {
                        (false, RpFilter::Strict) => routed.clone(),
                        (false, RpFilter::Loose) => self.routable[fam_index(fam)].clone(),
                        _ => AddrSet::all(fam),
                    };
                    check = check.union(&addrs.intersect(&passes));
                    refused = refused.union(&addrs.subtract(&passes));
                }
                Some(_) => {}
            }
        }
        Sources { check, refused }
    }

    /// The source test of a rule that refuses by source address (it loads
    /// the IPv4 or IPv6 source address and compares it or looks it up),
    /// with the set it looks the address up in; `None` for a policy or a
    /// rule that does not test the source.
    pub fn source_test(&self, d: &DecidedBy) -> Option<SourceTest<'a>> {
        use crate::snapshot::{Expr, PayloadBase};
        let DecidedBy::Rule(r) = d else { return None };
        let rule = self.rules.rule(r)?;
        let reg = rule.exprs.iter().find_map(|e| match e {
            Expr::Payload {
                base: PayloadBase::Network,
                offset,
                len,
                dreg,
            } if (*offset == 12 && *len == 4) || (*offset == 8 && *len == 16) => Some(*dreg),
            _ => None,
        })?;
        let table = self
            .input
            .snapshot
            .tables
            .iter()
            .find(|t| t.family == r.family && t.name == r.table)?;
        let set = rule.exprs.iter().find_map(|e| match e {
            Expr::Lookup { set, sreg, .. } if *sreg == reg => {
                table.sets.iter().find(|s| &s.name == set)
            }
            _ => None,
        });
        Some(SourceTest { table, set })
    }

    /// Whether a rule is a reverse-path filter: it looks up the route back
    /// to the source through the input interface (`fib saddr . iif oif
    /// missing drop`, firewalld's IPv6 rpfilter).
    fn is_rpfilter(&self, d: &DecidedBy) -> bool {
        use crate::snapshot::Expr;
        const SADDR: u32 = 1;
        const IIF: u32 = 8;
        let DecidedBy::Rule(r) = d else { return false };
        self.rules.rule(r).is_some_and(|rule| {
            rule.exprs.iter().any(|e| match e {
                Expr::Fib { flags, .. } => flags & SADDR != 0 && flags & IIF != 0,
                // iptables-nft's `-m rpfilter`.
                Expr::Match { name, .. } => name == "rpfilter",
                _ => false,
            })
        })
    }

    /// The local addresses of `iface` that peers connect to, in groups the
    /// ruleset treats alike for `proto` (the exposure's [`Alike`] groups,
    /// restricted to this interface's addresses; an address the exposure
    /// does not group stands alone). Deciding one member decides the group.
    ///
    /// [`Alike`]: crate::eval::Alike
    pub fn local_groups(&self, proto: L4, iface: &Interface) -> Vec<Vec<IpAddr>> {
        let mine = local_addrs(iface);
        let mut out: Vec<Vec<IpAddr>> = Vec::new();
        let mut placed: Vec<IpAddr> = Vec::new();
        for g in &self.input.exposure.alike {
            if g.proto != proto || g.iif != iface.name {
                continue;
            }
            let members: Vec<IpAddr> =
                g.to.iter()
                    .copied()
                    .filter(|a| mine.contains(a) && !placed.contains(a))
                    .collect();
            if !members.is_empty() {
                placed.extend(&members);
                out.push(members);
            }
        }
        for a in mine {
            if !placed.contains(&a) {
                out.push(vec![a]);
            }
        }
        out
    }

    fn evaluator(&self) -> &'a Evaluator {
        self.input.evaluator
    }

    /// What decides a probe from `from` to `to`:`port` on `iface`, with
    /// its verdict. Remembered: requirements overlap (several want the
    /// same data ports from the same peers), and each range is probed port
    /// by port where rules change often.
    fn decide(&self, proto: L4, from: IpAddr, to: IpAddr, iface: &Interface, port: u16) -> Decided {
        // Interfaces the ruleset treats alike share their answers.
        let stand_in = self
            .input
            .exposure
            .stand_in(family_of(from), proto, &iface.name);
        let index = self
            .ifaces
            .iter()
            .find(|i| i.name == stand_in)
            .map_or(iface.index, |i| i.index);
        let key = (proto, from, to, index, port);
        // A poisoned memo is still a valid memo (entries are inserted whole).
        let memo = || self.decided.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = memo().get(&key) {
            return d.clone();
        }
        let ev = self.evaluator();
        let probe = Probe::new(proto, from, to, PROBE_SPORT, port, ev.iface(stand_in));
        let d = ev.decide(&probe);
        memo().insert(key, d.clone());
        d
    }

    /// The interfaces a requirement concerns, and whether the private
    /// interfaces had to be replaced by all (none configured).
    pub fn applicable(&self, scope: Scope) -> (Vec<&'a Interface>, bool) {
        let private = &self.input.config.private_interfaces;
        match scope {
            Scope::Any => (self.ifaces.clone(), false),
            Scope::Private if private.is_empty() => (self.ifaces.clone(), true),
            Scope::Private => (
                self.ifaces
                    .iter()
                    .copied()
                    .filter(|i| private.iter().any(|p| iface_matches(p, &i.name)))
                    .collect(),
                false,
            ),
        }
    }

    /// Whether a requirement of `scope` concerns interface `name`.
    fn applies_to(&self, scope: Scope, name: &str) -> bool {
        let private = &self.input.config.private_interfaces;
        scope == Scope::Any || private.is_empty() || private.iter().any(|p| iface_matches(p, name))
    }

    /// Openings of a protocol on one interface and local address, with one verdict.
    fn openings(
        &self,
        proto: L4,
        iif: &str,
        to: IpAddr,
        verdict: Verdict,
    ) -> impl Iterator<Item = &'a Opening> + '_ {
        self.by_iif
            .get(&(proto, iif.to_string()))
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .copied()
            .filter(move |o| o.verdict == verdict && o.to.contains(&to))
    }

    /// What requirements and `[[allow]]` entries want accepted on interface
    /// `iif`, for `proto` and one family, as rectangles.
    pub fn wanted(&self, proto: Proto, iif: &str, fam: AddrFamily) -> Vec<Rect> {
        let mut out = Vec::new();
        for r in self.input.requirements {
            if r.direction != Direction::In || r.proto != proto || !self.applies_to(r.scope, iif) {
                continue;
            }
            let peers = requirement_peers(r, self.input.config);
            let sources = peers.family(fam).clone();
            if !sources.is_empty() {
                out.push(Rect {
                    ports: r.ports.clone(),
                    sources,
                });
            }
        }
        for a in &self.input.config.allow {
            if a.direction != Direction::In
                || a.proto != proto
                || !(a.interfaces.is_empty() || a.interfaces.iter().any(|p| iface_matches(p, iif)))
            {
                continue;
            }
            let sources = Peers::from_nets(&a.addresses, true).family(fam).clone();
            if !sources.is_empty() {
                out.push(Rect {
                    ports: a.ports.clone(),
                    sources,
                });
            }
        }
        out
    }
}

/// A part of a region on one interface and group of local addresses, with
/// the rule or policy that decides it.
#[derive(Clone, Debug)]
pub(crate) struct RawPiece {
    pub iface: String,
    pub to: Vec<IpAddr>,
    pub ports: PortRange,
    pub sources: AddrSet,
    pub decided_by: Option<DecidedBy>,
}

/// Pieces merged for a finding: total ports, peers and interfaces, and the
/// per-(interface, local addresses) breakdown.
pub(crate) struct Merged {
    pub ports: PortSet,
    pub peers: Peers,
    pub interfaces: Vec<String>,
    pub pieces: Vec<Piece>,
}

/// Merges raw pieces: per interface, local address and peers the ports are
/// united; then the interfaces and local addresses that see the same ports
/// and peers share one [`Piece`]. Grouped by value in hash maps (thousands
/// of pieces are usual), then ordered by interface, addresses and peers.
pub(crate) fn merge(pieces: &[RawPiece]) -> Merged {
    merge_uniform(pieces).unwrap_or_else(|| merge_by_value(pieces))
}

/// [`merge`] of the usual case, without its hash maps: every piece has
/// the same local addresses and sources, and every interface sees the same
/// ports (one piece); `None` otherwise.
fn merge_uniform(pieces: &[RawPiece]) -> Option<Merged> {
    let first = pieces.first()?;
    let same = |p: &RawPiece| {
        p.to == first.to && (p.sources.ptr_eq(&first.sources) || p.sources == first.sources)
    };
    if !pieces.iter().all(same) {
        return None;
    }
    let mut per_iface: BTreeMap<&str, Vec<PortRange>> = BTreeMap::new();
    for p in pieces {
        per_iface.entry(p.iface.as_str()).or_default().push(p.ports);
    }
    let mut sets = per_iface
        .into_iter()
        .map(|(i, r)| (i, PortSet::from_ranges(r)));
    let (name, ports) = sets.next()?;
    let mut interfaces = vec![name.to_string()];
    for (i, ps) in sets {
        if ps != ports {
            return None;
        }
        interfaces.push(i.to_string());
    }
    let mut to = first.to.clone();
    to.sort_unstable();
    to.dedup();
    let mut peers = Peers::none();
    peers.add(&first.sources);
    Some(Merged {
        ports: ports.clone(),
        peers,
        interfaces: interfaces.clone(),
        pieces: vec![Piece {
            interfaces,
            to,
            ports,
            peers: first.sources.to_prefixes(),
        }],
    })
}

/// [`merge`] in general.
pub(crate) fn merge_by_value(pieces: &[RawPiece]) -> Merged {
    // Gathered, then each set built once (a finding can have thousands of
    // pieces; uniting them one by one is quadratic).
    let ports = PortSet::from_ranges(pieces.iter().map(|p| p.ports));
    let mut sources: Vec<&AddrSet> = Vec::new();
    let mut seen: HashSet<usize> = HashSet::default();
    let mut interfaces: BTreeSet<&str> = BTreeSet::new();
    // (iface, addresses, sources) -> ports. Address lists are groups of
    // alike addresses or single listener addresses: per interface and
    // sources they do not overlap, except in mixed input, which is
    // expanded to single addresses to stay exact.
    let mut ranges: HashMap<(&str, &[IpAddr], &AddrSet), Vec<PortRange>> = HashMap::default();
    for p in pieces {
        if seen.insert(p.sources.ptr_id()) {
            sources.push(&p.sources);
        }
        interfaces.insert(p.iface.as_str());
        ranges
            .entry((p.iface.as_str(), p.to.as_slice(), &p.sources))
            .or_default()
            .push(p.ports);
    }
    let of =
        |f: AddrFamily| AddrSet::union_all(f, sources.iter().copied().filter(|s| s.family() == f));
    let peers = Peers {
        v4: of(AddrFamily::V4),
        v6: of(AddrFamily::V6),
    };
    let by: HashMap<(&str, &[IpAddr], &AddrSet), PortSet> = ranges
        .into_iter()
        .map(|(k, r)| (k, PortSet::from_ranges(r)))
        .collect();
    let mut seen: HashMap<(&str, &AddrSet), Vec<&[IpAddr]>> = HashMap::default();
    for &(iface, to, sources) in by.keys() {
        seen.entry((iface, sources)).or_default().push(to);
    }
    let overlapping = seen.values().any(|lists| {
        let mut all: Vec<IpAddr> = lists.iter().flat_map(|l| l.iter().copied()).collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        all.len() != n
    });
    let by: Vec<(&str, Vec<IpAddr>, &AddrSet, PortSet)> = if overlapping {
        let mut single: HashMap<(&str, IpAddr, &AddrSet), PortSet> = HashMap::default();
        for ((iface, to, sources), ps) in by {
            for &a in to {
                let e = single.entry((iface, a, sources)).or_default();
                *e = e.union(&ps);
            }
        }
        single
            .into_iter()
            .map(|((i, a, s), ps)| (i, vec![a], s, ps))
            .collect()
    } else {
        by.into_iter()
            .map(|((i, to, s), ps)| (i, to.to_vec(), s, ps))
            .collect()
    };
    // (iface, sources, ports) -> addresses
    let mut shared: HashMap<(&str, &AddrSet, PortSet), Vec<IpAddr>> = HashMap::default();
    for (iface, to, sources, ports) in by {
        shared
            .entry((iface, sources, ports))
            .or_default()
            .extend(to);
    }
    // (addresses, sources, ports) -> interfaces: a piece is every pair of
    // its interfaces and its addresses.
    let mut across: HashMap<(Vec<IpAddr>, &AddrSet, PortSet), Vec<String>> = HashMap::default();
    for ((iface, sources, ports), mut to) in shared {
        to.sort_unstable();
        to.dedup();
        across
            .entry((to, sources, ports))
            .or_default()
            .push(iface.to_string());
    }
    let mut pieces: Vec<Piece> = across
        .into_iter()
        .map(|((to, sources, ports), mut interfaces)| {
            interfaces.sort();
            Piece {
                interfaces,
                to,
                ports,
                peers: sources.to_prefixes(),
            }
        })
        .collect();
    pieces.sort_by(|a, b| {
        (&a.interfaces, &a.to, &a.peers, a.ports.ranges()).cmp(&(
            &b.interfaces,
            &b.to,
            &b.peers,
            b.ports.ranges(),
        ))
    });
    Merged {
        ports,
        peers,
        interfaces: interfaces.into_iter().map(str::to_string).collect(),
        pieces,
    }
}

/// `10.0.0.10/32, 10.0.0.0/8` or `any` (or `any except ...`), for summaries.
pub fn peers_text(p: &Peers) -> String {
    let all4 = p.v4.is_all();
    let all6 = p.v6.is_all();
    if all4 && all6 {
        return "any address".into();
    }
    let part = |s: &AddrSet, name: &str| -> Option<String> {
        if s.is_empty() {
            return None;
        }
        if s.is_all() {
            return Some(format!("any {name} address"));
        }
        // Counted, and only what is shown written out: a set can be a
        // blocklist's complement.
        let n = s.prefix_count();
        // The complement can only be shorter than two or more prefixes (and
        // one prefix per finding is the common case).
        let comp = (n > 1).then(|| s.complement());
        if let Some(comp) =
            comp.filter(|c| (1..=4).contains(&c.prefix_count()) && c.prefix_count() < n)
        {
            let c: Vec<String> = comp.prefixes().map(|p| p.to_string()).collect();
            return Some(format!("any {name} address except {}", c.join(", ")));
        }
        let mut v: Vec<String> = s.prefixes().take(6).map(|p| p.to_string()).collect();
        if n > 6 {
            v.push(format!("... ({n} prefixes)"));
        }
        Some(v.join(", "))
    };
    [part(&p.v4, "IPv4"), part(&p.v6, "IPv6")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("; ")
}

fn blocker_text(d: &Option<DecidedBy>) -> String {
    match d {
        Some(d) => d.to_string(),
        None => "no single rule (forwarded or undecided)".into(),
    }
}

fn blocker_key(d: &Option<DecidedBy>) -> String {
    d.as_ref().map(ToString::to_string).unwrap_or_default()
}

/// An address of `part` to probe with: preferably one in a connected subnet
/// of the interface (so reverse-path checks see a plausible peer), else the
/// first host address of the first interval.
fn representative(part: &AddrSet, iface: &Interface, to: IpAddr) -> Option<IpAddr> {
    for net in iface
        .addrs
        .iter()
        .filter(|n| n.addr().is_ipv6() == region::is_v6(part.family()))
    {
        for h in net.hosts().take(4) {
            if h != to && part.contains(h) {
                return Some(h);
            }
        }
    }
    let (first, last) = part.ranges().next()?;
    let next = match first {
        IpAddr::V4(a) => IpAddr::V4(std::net::Ipv4Addr::from(u32::from(a).wrapping_add(1))),
        IpAddr::V6(a) => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(a).wrapping_add(1))),
    };
    Some(if first != last && part.contains(next) {
        next
    } else {
        first
    })
}

/// A probe's identity for [`Ctx::decide`]'s memo: protocol, source,
/// destination, input interface index and destination port.
type ProbeKey = (L4, IpAddr, IpAddr, u32, u16);

type Decided = (Verdict, Option<DecidedBy>);

/// Splits `range` into runs with the same decision. The range is first cut
/// at `marks` (where some rule's port test can change); each part is then
/// probed port by port when short, else by bisection (a run whose first,
/// middle and last ports agree is taken as uniform).
pub(crate) fn split_ports(
    probe: &dyn Fn(u16) -> Decided,
    range: PortRange,
    marks: &BTreeSet<u32>,
) -> Vec<(PortRange, Decided)> {
    let mut out: Vec<(PortRange, Decided)> = Vec::new();
    let push = |r: PortRange, d: Decided, out: &mut Vec<(PortRange, Decided)>| match out.last_mut()
    {
        Some((last, ld)) if *ld == d && u32::from(last.last()) + 1 == u32::from(r.first()) => {
            *last = PortRange::new(last.first(), r.last()).expect("ordered");
        }
        _ => out.push((r, d)),
    };
    let (lo, hi) = (u32::from(range.first()), u32::from(range.last()));
    let inner: Vec<u32> = if lo < hi {
        marks.range(lo + 1..=hi).copied().collect()
    } else {
        Vec::new()
    };
    let cuts: Vec<u32> = if inner.len() > 4096 {
        Vec::new()
    } else {
        inner
    };
    let mut parts = Vec::new();
    let mut start = lo;
    for c in cuts.into_iter().chain([hi + 1]) {
        parts.push(PortRange::new(start as u16, (c - 1) as u16).expect("ordered"));
        start = c;
    }
    for part in parts {
        if part.len() <= SCAN_ALL {
            for p in part.first()..=part.last() {
                push(PortRange::single(p), probe(p), &mut out);
            }
            continue;
        }
        let mut stack = vec![(
            part.first(),
            part.last(),
            probe(part.first()),
            probe(part.last()),
        )];
        let mut segs: Vec<(PortRange, Decided)> = Vec::new();
        while let Some((lo, hi, dlo, dhi)) = stack.pop() {
            if lo == hi {
                segs.push((PortRange::single(lo), dlo));
                continue;
            }
            let mid = lo + (hi - lo) / 2;
            let dmid = probe(mid);
            if dlo == dhi && dlo == dmid {
                segs.push((PortRange::new(lo, hi).expect("ordered"), dlo));
                continue;
            }
            let dnext = probe(mid + 1);
            stack.push((mid + 1, hi, dnext, dhi));
            stack.push((lo, mid, dlo, dmid));
        }
        segs.sort_by_key(|(r, _)| r.first());
        for (r, d) in segs {
            push(r, d, &mut out);
        }
    }
    out
}

/// The uncovered pieces of a requirement on one interface and group of
/// alike local addresses (decided on the first), each split by what
/// refuses it. Pieces the evaluator accepts or cannot decide (the exposure
/// disagreeing) are reported in `notes` instead.
fn blockers(
    ctx: &Ctx<'_>,
    (proto, iface, group): (L4, &Interface, &[IpAddr]),
    range: PortRange,
    sources: &AddrSet,
    what: &str,
    notes: &mut Vec<String>,
) -> Vec<RawPiece> {
    let to = group[0];
    let prefixes = sources.to_prefixes();
    let parts: Vec<AddrSet> = if prefixes.len() <= 8 {
        prefixes
            .iter()
            .map(|n| AddrSet::from_prefixes(sources.family(), [*n]))
            .collect()
    } else {
        vec![sources.clone()]
    };
    // (range, decided) -> sources
    let mut acc: Vec<(PortRange, Decided, AddrSet)> = Vec::new();
    for part in parts {
        let Some(from) = representative(&part, iface, to) else {
            continue;
        };
        let probe = |p: u16| ctx.decide(proto, from, to, iface, p);
        for (r, d) in split_ports(&probe, range, &ctx.port_marks) {
            match acc.iter_mut().find(|(r2, d2, _)| *r2 == r && *d2 == d) {
                Some(e) => e.2 = e.2.union(&part),
                None => acc.push((r, d, part.clone())),
            }
        }
    }
    let mut out = Vec::new();
    for (r, (verdict, decided_by), srcs) in acc {
        match verdict {
            Verdict::Drop | Verdict::Reject | Verdict::Forwarded => out.push(RawPiece {
                iface: iface.name.clone(),
                to: group.to_vec(),
                ports: r,
                sources: srcs,
                decided_by,
            }),
            Verdict::Accept | Verdict::Unknown => notes.push(format!(
                "{what}: {proto} {r} from {} to {} on {}: the exposure says not accepted but explain says {verdict}; not reported",
                peers_text(&peers_of(&srcs)),
                addrs_text(group),
                iface.name
            )),
        }
    }
    out
}

/// `192.0.2.1` or `192.0.2.1, 192.0.3.1`, for notes.
fn addrs_text(a: &[IpAddr]) -> String {
    a.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn peers_of(s: &AddrSet) -> Peers {
    let mut p = Peers::none();
    p.add(s);
    p
}

fn req_name(r: &ResolvedRequirement) -> String {
    format!("{}/{}", r.role, r.requirement)
}

/// What the exposure accepts for one protocol, interface and local
/// address, as `missing` checks requirements against it: the accepted
/// rectangles (for clients' source ports), the undecided openings, and
/// those as rectangles.
struct Regions<'a>(Vec<Rect>, Vec<&'a Opening>, Vec<Rect>);

impl<'a> Regions<'a> {
    fn new(ctx: &Ctx<'a>, proto: L4, iface: &Interface, to: IpAddr) -> Regions<'a> {
        let rect = |o: &Opening| Rect {
            ports: PortSet::from_ranges([o.ports]),
            sources: o.sources.clone(),
        };
        let acc = ctx
            .openings(proto, &iface.name, to, Verdict::Accept)
            .filter(|o| covers_clients(o))
            .map(rect)
            .collect();
        let unknown: Vec<&Opening> = ctx
            .openings(proto, &iface.name, to, Verdict::Unknown)
            .collect();
        let rects = unknown.iter().map(|o| rect(o)).collect();
        Regions(acc, unknown, rects)
    }
}

/// [`Regions`] by protocol, interface index and local address.
type RegionMemo<'a> = Mutex<HashMap<(L4, u32, IpAddr), Arc<Regions<'a>>>>;

/// What one requirement leaves uncovered.
#[derive(Default)]
struct Holes {
    /// The refused pieces, each with its blocker.
    raw: Vec<RawPiece>,
    /// Whether they are a `partial-opening` (a `partial_ok` requirement
    /// that is partly accepted).
    partial: bool,
    /// Sources the host's reverse-path filtering refuses: the interface,
    /// the sources and which filter.
    rp_refused: Vec<(String, AddrSet, String)>,
    /// For "any address": sources a rule refuses by their address (a deny
    /// list, policy rather than a hole), with the rule.
    denied: Vec<(DecidedBy, AddrSet)>,
    /// Bound peers no route leads to, as text.
    unrouted: Option<String>,
}

/// `50,000`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `missing-opening` and `partial-opening` findings: one per protocol,
/// refusing rule (or policy) and kind, listing every requirement that
/// needs what it refuses.
pub(crate) fn missing(ctx: &Ctx<'_>, notes: &mut Vec<String>) -> Vec<Draft> {
    // Shared by the requirements: what is accepted and what undecided, per
    // protocol, interface and local address.
    let regions = RegionMemo::default();
    let reqs = ctx.input.requirements;
    let per: Vec<(Holes, Vec<String>)> = reqs
        .par_iter()
        .map(|r| {
            if r.any_of.is_empty() {
                let mut notes = Vec::new();
                let holes = missing_for(ctx, r, &regions, &mut notes);
                return (holes, notes);
            }
            missing_any_of(ctx, r, &regions)
        })
        .collect();
    // All requirements' pieces by (proto, blocker, partial, private
    // without private_interfaces); each group is then cut by which
    // requirements need each part: one finding per part.
    type Key = (Proto, String, bool, bool);
    let mut groups: BTreeMap<Key, Vec<(usize, RawPiece)>> = BTreeMap::new();
    let mut rp: Vec<String> = Vec::new();
    // Deny lists, by rule: the rule, the sources refused, the requirements.
    let mut denied: BTreeMap<String, (DecidedBy, Peers, BTreeSet<String>)> = BTreeMap::new();
    let no_private = ctx.input.config.private_interfaces.is_empty();
    // Peers no route leads to -> the requirements concerned.
    let mut unrouted: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (i, (h, n)) in per.into_iter().enumerate() {
        notes.extend(n);
        let r = &reqs[i];
        if let Some(text) = h.unrouted {
            unrouted.entry(text).or_default().push(req_name(r));
        }
        for (d, srcs) in h.denied {
            let e = denied
                .entry(d.to_string())
                .or_insert_with(|| (d, Peers::none(), BTreeSet::new()));
            e.1.add(&srcs);
            e.2.insert(req_name(r));
        }
        for (iface, srcs, why) in h.rp_refused {
            rp.push(format!(
                "{} from {} on {iface} ({why})",
                req_name(r),
                peers_text(&peers_of(&srcs))
            ));
        }
        let unconfigured = r.scope == Scope::Private && no_private;
        for p in h.raw {
            let key = (r.proto, blocker_key(&p.decided_by), h.partial, unconfigured);
            groups.entry(key).or_default().push((i, p));
        }
    }
    for (peers, names) in unrouted {
        notes.push(format!(
            "{}: {peers} is routed through no interface of this host (no route, or a blackhole): not checked",
            names.join(", ")
        ));
    }
    for (d, refused, names) in denied.into_values() {
        let Some(test) = ctx.source_test(&d) else {
            continue;
        };
        let n = match test.set {
            Some(set) => set.elements.len(),
            None => refused.v4.prefix_count() + refused.v6.prefix_count(),
        };
        let names: Vec<String> = names.into_iter().collect();
        notes.push(format!(
            "{}: accepted from any address except {} {} in {} ({d}); a deny list, not a missing opening",
            names.join(", "),
            thousands(n),
            if n == 1 { "prefix" } else { "prefixes" },
            test.name()
        ));
    }
    if !rp.is_empty() {
        let n = rp.len();
        let shown: Vec<String> = rp.into_iter().take(3).collect();
        let more = if n > 3 {
            format!("; and {} more", n - 3)
        } else {
            String::new()
        };
        notes.push(format!(
            "not missing openings: the host's reverse-path filtering refuses these required sources where they were checked (replies to them would leave through another interface): {}{more}",
            shown.join("; ")
        ));
    }
    groups
        .into_iter()
        .flat_map(|((proto, key, partial, unconfigured), pieces)| {
            by_need(pieces)
                .into_iter()
                .map(move |(idx, pieces)| (proto, key.clone(), partial, unconfigured, idx, pieces))
        })
        .map(|(proto, key, partial, unconfigured, idx, pieces)| {
            hole_draft(ctx, proto, key, partial, unconfigured, &idx, pieces)
        })
        .collect()
}

/// Cuts pieces of several requirements (refused by one rule) into holes:
/// the ports are cut where the set of requirements with a piece there
/// changes, and each part goes to the hole of that set (one hole: the
/// same ports refused by the same rule, whichever requirement's peers).
/// Within a hole, the sources of each interface, local addresses and port
/// window are united.
fn by_need(pieces: Vec<(usize, RawPiece)>) -> BTreeMap<BTreeSet<usize>, Vec<RawPiece>> {
    let mut out: BTreeMap<BTreeSet<usize>, Vec<RawPiece>> = BTreeMap::new();
    if pieces.iter().all(|(i, _)| *i == pieces[0].0) {
        if let Some(&(i, _)) = pieces.first() {
            out.insert(
                BTreeSet::from([i]),
                pieces.into_iter().map(|(_, p)| p).collect(),
            );
        }
        return out;
    }
    let mut bounds: Vec<u32> = pieces
        .iter()
        .flat_map(|(_, p)| [u32::from(p.ports.first()), u32::from(p.ports.last()) + 1])
        .collect();
    bounds.sort_unstable();
    bounds.dedup();
    // (need set) -> (interface, local addresses, window) -> sources
    type Parts = BTreeMap<(String, Vec<IpAddr>, PortRange), AddrSet>;
    let mut holes: BTreeMap<BTreeSet<usize>, Parts> = BTreeMap::new();
    let decided_by = pieces[0].1.decided_by.clone();
    for w in bounds.windows(2) {
        let window = PortRange::new(w[0] as u16, (w[1] - 1) as u16).expect("ordered");
        let active: Vec<&(usize, RawPiece)> = pieces
            .iter()
            .filter(|(_, p)| p.ports.contains(window.first()))
            .collect();
        if active.is_empty() {
            continue;
        }
        let need: BTreeSet<usize> = active.iter().map(|(i, _)| *i).collect();
        let parts = holes.entry(need).or_default();
        for (_, p) in active {
            let key = (p.iface.clone(), p.to.clone(), window);
            match parts.get_mut(&key) {
                Some(s) => *s = s.union(&p.sources),
                None => {
                    parts.insert(key, p.sources.clone());
                }
            }
        }
    }
    for (need, parts) in holes {
        out.insert(
            need,
            parts
                .into_iter()
                .map(|((iface, to, ports), sources)| RawPiece {
                    iface,
                    to,
                    ports,
                    sources,
                    decided_by: decided_by.clone(),
                })
                .collect(),
        );
    }
    out
}

/// One `missing-opening` or `partial-opening` finding: what one rule or
/// policy refuses of the requirements `idx`.
fn hole_draft(
    ctx: &Ctx<'_>,
    proto: Proto,
    key: String,
    partial: bool,
    unconfigured: bool,
    idx: &BTreeSet<usize>,
    pieces: Vec<RawPiece>,
) -> Draft {
    let reqs: Vec<&ResolvedRequirement> = idx.iter().map(|&i| &ctx.input.requirements[i]).collect();
    let needed_by = needs(&reqs);
    let kind = if partial {
        FindingKind::PartialOpening
    } else {
        FindingKind::MissingOpening
    };
    let blocker = pieces[0].decided_by.clone();
    let m = merge(&pieces);
    let mut evidence = match &blocker {
        Some(d) => vec![ctx.rules.evidence(d)],
        None => vec![Evidence::Note {
            text: "not delivered locally: forwarded after NAT, or no single rule decides".into(),
        }],
    };
    // Bound peers refused by their address: which set and element.
    let mut listed = String::new();
    let bound = reqs.iter().any(|r| {
        r.peers
            .iter()
            .any(|g| ctx.input.config.peers.contains_key(g))
    });
    if let Some(test) = blocker
        .as_ref()
        .filter(|_| bound)
        .and_then(|d| ctx.source_test(d))
    {
        let mut found: Vec<String> = Vec::new();
        for net in m.peers.prefixes().iter().take(4) {
            let addr = net.addr();
            let els = test.covering(addr);
            found.push(if els.is_empty() {
                format!("{net} is refused by {}", test.name())
            } else {
                format!("{net} is in {} (element {})", test.name(), els.join(", "))
            });
        }
        let more = m.peers.v4.prefix_count() + m.peers.v6.prefix_count();
        if more > 4 {
            found.push(format!("and {} more prefixes", more - 4));
        }
        evidence.push(Evidence::Note {
            text: found.join("; "),
        });
        listed = format!("; {}", found.join("; "));
    }
    let routes = ctx.evaluator().routes();
    let defaults: Vec<&str> = m
        .interfaces
        .iter()
        .filter(|i| has_default_route(routes, i))
        .map(String::as_str)
        .collect();
    // A private-network requirement is never opened on an interface with
    // a default route because no private interface was named.
    let fix = if unconfigured && !defaults.is_empty() {
        evidence.push(Evidence::Note {
            text: format!(
                "no private_interfaces configured, and {} carries a default route: not opened there automatically",
                defaults.join(", ")
            ),
        });
        None
    } else {
        // Each piece concerns the interface its sources are routed through
        // (or pinned to): the accept is limited to it.
        let accesses = fix::accesses(&pieces);
        // Best first: the peers (or ports) added to the named set of an
        // accepting rule, then an accept rule of its own.
        let mut plans: Vec<fix::Plan> = blocker
            .as_ref()
            .and_then(|b| setfix::add_to_set(ctx.manager, ctx.input.snapshot, b, proto, &accesses))
            .map(|c| fix::element_plan(ctx.manager, c))
            .into_iter()
            .collect();
        Some(
            match fix::open_inbound(ctx.manager, blocker.as_ref(), proto, &accesses, true) {
                Ok(plan) => {
                    plans.push(plan);
                    ctx.prover()
                        .defer(plans, OwnedClaim::Opens(l4(proto), pieces.clone()))
                }
                Err(_) if !plans.is_empty() => ctx
                    .prover()
                    .defer(plans, OwnedClaim::Opens(l4(proto), pieces.clone())),
                Err(why) => fix::refusal(why).into(),
            },
        )
    };
    let how = if partial {
        "is only partly accepted (normal if the service opens ports on demand)"
    } else {
        "is not accepted"
    };
    let fallback = if reqs.iter().all(|r| r.fallback) {
        " (with these settings a fallback channel)"
    } else {
        ""
    };
    let mut purposes: Vec<&str> = reqs
        .iter()
        .map(|r| r.purpose.trim_end_matches('.'))
        .collect();
    purposes.dedup();
    let names: Vec<String> = needed_by
        .iter()
        .map(|n| format!("{}/{}", n.role, n.requirement))
        .collect();
    // Requirements with alternatives reach here only when none is open.
    let alternatives: String = reqs
        .iter()
        .filter(|r| !r.any_of.is_empty())
        .map(|r| {
            format!(
                "; {} needs one of {}, and none is accepted (the fix opens the first)",
                req_name(r),
                alternatives_text(r)
            )
        })
        .collect();
    let advice = if unconfigured {
        "; configure private_interfaces (the interfaces facing the private network) so that it is checked and opened only there"
    } else {
        ""
    };
    Draft {
        kind,
        role: Some(needed_by[0].role.clone()),
        requirement: Some(needed_by[0].requirement.clone()),
        needed_by,
        direction: Direction::In,
        proto,
        summary: format!(
            "{proto} {} from {} on {} {how}{fallback}: refused by {}{listed} (needed by {}: {}){alternatives}{advice}",
            m.ports,
            peers_text(&m.peers),
            m.interfaces.join(", "),
            blocker_text(&blocker),
            names.join(", "),
            purposes.join("; "),
        ),
        ports: m.ports,
        peers: m.peers.prefixes(),
        interfaces: m.interfaces,
        evidence,
        fix,
        pieces: m.pieces,
        tiebreak: key,
    }
}

/// The refused pieces of a requirement with alternatives: none when one
/// alternative is accepted wherever its peers need it (its notes kept),
/// otherwise those of the first alternative (so its fix opens the first).
fn missing_any_of<'a>(
    ctx: &Ctx<'a>,
    r: &ResolvedRequirement,
    regions: &RegionMemo<'a>,
) -> (Holes, Vec<String>) {
    let mut first = None;
    for alt in &r.any_of {
        let one = ResolvedRequirement {
            ports: alt.clone(),
            ..r.clone()
        };
        let mut notes = Vec::new();
        let holes = missing_for(ctx, &one, regions, &mut notes);
        if holes.raw.is_empty() {
            return (holes, notes);
        }
        first.get_or_insert((holes, notes));
    }
    first.unwrap_or_default()
}

/// `tcp 80 or 443`: a requirement's alternatives, for summaries.
pub(crate) fn alternatives_text(r: &ResolvedRequirement) -> String {
    let alts: Vec<String> = r.any_of.iter().map(ToString::to_string).collect();
    format!("{} {}", r.proto, alts.join(" or "))
}

/// The refused pieces of one requirement, on the interfaces its sources
/// arrive on.
fn missing_for<'a>(
    ctx: &Ctx<'a>,
    r: &ResolvedRequirement,
    regions: &RegionMemo<'a>,
    notes: &mut Vec<String>,
) -> Holes {
    let mut holes = Holes::default();
    if r.direction != Direction::In || r.ports.is_empty() {
        return holes;
    }
    if requirement_peers(r, ctx.input.config).is_empty() {
        return holes;
    }
    let proto = l4(r.proto);
    let what = req_name(r);
    let private = &ctx.input.config.private_interfaces;
    // A private-network requirement is checked on the private interfaces
    // (a name that matches none is a `not-checked` finding); without any
    // configured, where its peers are routed (see `hole_draft`).
    let restricted = r.scope == Scope::Private && !private.is_empty();
    let unbound = !r
        .peers
        .iter()
        .any(|g| ctx.input.config.peers.contains_key(g));
    let mut accepted_any = false;
    for iface in &ctx.ifaces {
        let is_private = private.iter().any(|p| iface_matches(p, &iface.name));
        let sources = [AddrFamily::V4, AddrFamily::V6].map(|f| ctx.sources_on(r, iface, f));
        if restricted && !is_private {
            let skipped: Vec<&AddrSet> = sources
                .iter()
                .map(|s| &s.check)
                .filter(|s| !s.is_empty())
                .collect();
            // (For any address that is only natural: said for bound peers.)
            if !skipped.is_empty() && !unbound {
                let mut p = Peers::none();
                for s in skipped {
                    p.add(s);
                }
                notes.push(format!(
                    "{what}: {} is routed through {}, which is not one of the private_interfaces: not checked there",
                    peers_text(&p),
                    iface.name
                ));
            }
            continue;
        }
        for s in &sources {
            if !s.refused.is_empty() {
                holes.rp_refused.push((
                    iface.name.clone(),
                    s.refused.clone(),
                    format!("rp_filter {:?}", iface.rp_filter).to_lowercase(),
                ));
            }
        }
        for group in ctx.local_groups(proto, iface) {
            let to = group[0];
            let base = &sources[fam_index(family_of(to))].check;
            if base.is_empty() {
                continue;
            }
            let key = (proto, iface.index, to);
            let known = regions.lock().ok().and_then(|m| m.get(&key).cloned());
            let got = known.unwrap_or_else(|| {
                // Computed outside the lock; another thread may do the same
                // meanwhile, to the same result.
                let made = Arc::new(Regions::new(ctx, proto, iface, to));
                if let Ok(mut m) = regions.lock() {
                    m.insert(key, made.clone());
                }
                made
            });
            let Regions(acc, unknown, unknown_rects) = &*got;
            accepted_any |= region::overlaps(&r.ports, base, acc);
            for o in unknown.iter() {
                let ports = PortSet::from_ranges([o.ports]).intersect(&r.ports);
                let srcs = o.sources.intersect(base);
                if !ports.is_empty() && !srcs.is_empty() {
                    notes.push(format!(
                        "{what}: {proto} {ports} from {} to {} on {} may or may not be accepted: {}",
                        peers_text(&peers_of(&srcs)),
                        addrs_text(&group),
                        iface.name,
                        o.reason.as_deref().unwrap_or("undecided")
                    ));
                }
            }
            for (range, srcs) in region::uncovered(&r.ports, base, acc) {
                let ps = PortSet::from_ranges([range]);
                for (rg, s) in region::uncovered(&ps, &srcs, unknown_rects) {
                    for p in blockers(ctx, (proto, iface, &group), rg, &s, &what, notes) {
                        // Refused by the host's own reverse-path rule: the
                        // source is not expected on this interface.
                        if p.decided_by.as_ref().is_some_and(|d| ctx.is_rpfilter(d)) {
                            // The host's own addresses as sources are
                            // martians the kernel drops anyway: not worth
                            // a word.
                            let fam = p.sources.family();
                            let srcs = p.sources.subtract(&ctx.martian[fam_index(fam)]);
                            if !srcs.is_empty() {
                                let why = blocker_text(&p.decided_by);
                                holes.rp_refused.push((iface.name.clone(), srcs, why));
                            }
                        } else if unbound
                            && p.sources != *base
                            && p.decided_by
                                .as_ref()
                                .is_some_and(|d| ctx.source_test(d).is_some())
                        {
                            // Any address, but some refused by their
                            // address: a deny list (fail2ban, CrowdSec).
                            let d = p.decided_by.clone().expect("checked");
                            holes.denied.push((d, p.sources));
                        } else {
                            holes.raw.push(p);
                        }
                    }
                }
            }
        }
    }
    // Bound peers (not pinned) that no route leads to: a connection from
    // them could not be answered; said, not checked.
    let cfg = ctx.input.config;
    let (mut configured, mut unrouted, mut routed) = (Peers::none(), Peers::none(), Peers::none());
    for g in r
        .peers
        .iter()
        .filter(|g| !cfg.peer_interfaces.contains_key(*g))
    {
        if let Some(nets) = cfg.peers.get(g) {
            for f in [AddrFamily::V4, AddrFamily::V6] {
                let addrs = AddrSet::from_prefixes(f, nets.iter().copied());
                let routable = &ctx.routable[fam_index(f)];
                unrouted.add(&addrs.subtract(routable));
                routed.add(&addrs.intersect(routable));
                configured.add(&addrs);
            }
        }
    }
    if !unrouted.is_empty() {
        // Said the short way: "10.0.0.0/8 except 10.99.0.0/24".
        let n = routed.v4.prefix_count() + routed.v6.prefix_count();
        holes.unrouted = Some(if routed.is_empty() || n > 4 {
            peers_text(&unrouted)
        } else {
            let r: Vec<String> = routed.prefixes().iter().map(ToString::to_string).collect();
            format!("{} except {}", peers_text(&configured), r.join(", "))
        });
    }
    holes.partial = r.partial_ok && accepted_any;
    holes
}

/// `arp-refused` findings: one per interface and local IPv4 address whose
/// ARP exchange an `arp` chain certainly refuses; a possible refusal (it
/// depends on a rule not decided) is a note.
pub(crate) fn arp_refused(ctx: &Ctx<'_>, notes: &mut Vec<String>) -> Vec<Draft> {
    let mut drafts = Vec::new();
    for r in ctx.evaluator().arp_refusals() {
        if r.depends_on.is_some() {
            notes.push(format!("arp: {r}"));
            continue;
        }
        drafts.push(Draft {
            kind: FindingKind::ArpRefused,
            role: None,
            requirement: None,
            needed_by: Vec::new(),
            direction: Direction::In,
            proto: Proto::Tcp,
            summary: format!("IPv4 on {} to {}: {r}", r.iface, r.addr),
            ports: PortSet::all(),
            peers: vec!["0.0.0.0/0".parse().expect("prefix")],
            interfaces: vec![r.iface.clone()],
            evidence: vec![Evidence::decided_by(ctx.input.snapshot, &r.by)],
            fix: None,
            pieces: Vec::new(),
            tiebreak: format!("arp {} {} {:?}", r.iface, r.addr, r.step),
        });
    }
    drafts
}

/// `not-checked` findings: a requirement that could not be checked where
/// the configuration says, because a `private_interfaces` or
/// `[peer_interfaces]` entry matches no interface of the host. One per
/// requirement and entry.
pub(crate) fn not_checked(ctx: &Ctx<'_>, notes: &mut Vec<String>) -> Vec<Draft> {
    let cfg = ctx.input.config;
    let names: Vec<&str> = ctx
        .evaluator()
        .routes()
        .interfaces
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    let absent = |p: &String| !names.iter().any(|n| iface_matches(p, n));
    let mut drafts = Vec::new();
    let mut push = |r: &ResolvedRequirement, entry: &str, key: &str| {
        let text = format!(
            "{key} entry \"{entry}\" matches no interface of this host ({})",
            names.join(", ")
        );
        drafts.push(Draft {
            kind: FindingKind::NotChecked,
            role: Some(r.role.clone()),
            requirement: Some(r.requirement.clone()),
            needed_by: Vec::new(),
            direction: Direction::In,
            proto: r.proto,
            summary: format!(
                "{} {} ({}) could not be checked on \"{entry}\": {text}; fix the configuration (portwarden check-config)",
                r.proto,
                r.ports,
                r.purpose.trim_end_matches('.')
            ),
            ports: r.ports.clone(),
            peers: requirement_peers(r, cfg).prefixes(),
            interfaces: vec![entry.to_string()],
            evidence: vec![Evidence::Note { text }],
            fix: None,
            pieces: Vec::new(),
            tiebreak: format!("{key}={entry}"),
        });
    };
    let inbound = || {
        ctx.input
            .requirements
            .iter()
            .filter(|r| r.direction == Direction::In && !r.ports.is_empty())
    };
    for entry in cfg.private_interfaces.iter().filter(|p| absent(p)) {
        let mut any = false;
        for r in inbound().filter(|r| r.scope == Scope::Private) {
            any = true;
            push(r, entry, "private_interfaces");
        }
        if !any {
            notes.push(format!(
                "private_interfaces entry \"{entry}\" matches no interface of this host (no requirement of the selected roles concerns the private network)"
            ));
        }
    }
    for (group, pins) in &cfg.peer_interfaces {
        for entry in pins.iter().filter(|p| absent(p)) {
            for r in inbound().filter(|r| r.peers.contains(group)) {
                push(r, entry, &format!("[peer_interfaces] {group}"));
            }
        }
    }
    drafts
}

/// `excess-opening` findings: one per accepting rule (or policy) and protocol.
pub(crate) fn excess(ctx: &Ctx<'_>, notes: &mut Vec<String>) -> Vec<Draft> {
    let loopbacks: BTreeSet<&str> = ctx
        .evaluator()
        .routes()
        .interfaces
        .iter()
        .filter(|i| is_loopback(i))
        .map(|i| i.name.as_str())
        .collect();
    // (proto, accepting rule) -> pieces; and whether the rule also accepts
    // wanted traffic. (Keyed by value: tens of thousands of openings; the
    // findings are put in order later, by `finish`.)
    let mut groups: HashMap<(Proto, Option<&DecidedBy>), Vec<RawPiece>> = HashMap::default();
    let mut partly_wanted: HashSet<Option<&DecidedBy>> = HashSet::default();
    // Computed once per protocol, interface and family, not per opening.
    let mut wanted: HashMap<(Proto, &str, AddrFamily), Vec<Rect>> = HashMap::default();
    for o in &ctx.input.exposure.openings {
        if loopbacks.contains(o.iif.as_str()) || o.sources.is_empty() {
            continue;
        }
        let proto = match o.proto {
            L4::Tcp => Proto::Tcp,
            L4::Udp => Proto::Udp,
        };
        if o.verdict == Verdict::Unknown {
            notes.push(format!(
                "{} {} from {} to {} on {} may or may not be accepted: {}",
                o.proto,
                o.ports,
                peers_text(&peers_of(&o.sources)),
                addrs_text(&o.to),
                o.iif,
                o.reason.as_deref().unwrap_or("undecided")
            ));
            continue;
        }
        if o.verdict != Verdict::Accept {
            continue;
        }
        let key = o.decided_by.as_ref();
        let fam = o.sources.family();
        let wanted = wanted
            .entry((proto, o.iif.as_str(), fam))
            .or_insert_with(|| ctx.wanted(proto, &o.iif, fam));
        let ports = PortSet::from_ranges([o.ports]);
        let rest = region::uncovered(&ports, &o.sources, wanted);
        if region::overlaps(&ports, &o.sources, wanted) {
            partly_wanted.insert(key);
        }
        for (rg, s) in rest {
            groups.entry((proto, key)).or_default().push(RawPiece {
                iface: o.iif.clone(),
                to: o.to.clone(),
                ports: rg,
                sources: s,
                // The group's key says it (cloning it per piece is most
                // of the allocations here).
                decided_by: None,
            });
        }
    }
    // One finding per group, independent of the others: thousands on a big
    // host, shared out between the cores.
    let groups: Vec<_> = groups.into_iter().collect();
    groups
        .into_par_iter()
        .map(|((proto, key), pieces)| {
            let decided_by = key.cloned();
            let m = merge(&pieces);
            let evidence = decided_by.iter().map(|d| ctx.rules.evidence(d)).collect();
            let accesses = fix::accesses(&pieces);
            let fix = match fix::close_inbound(
                ctx.manager,
                decided_by.as_ref(),
                !partly_wanted.contains(&key),
                proto,
                &accesses,
            ) {
                Ok(mut plans) => {
                    // Best first: the excess elements deleted from the
                    // accepting rule's named set (the smallest change, and
                    // the set stays for what it is there for).
                    if let Some(c) = decided_by.as_ref().and_then(|d| {
                        setfix::delete_from_set(
                            ctx.manager,
                            ctx.input.snapshot,
                            d,
                            proto,
                            &accesses,
                        )
                    }) {
                        plans.insert(0, fix::element_plan(ctx.manager, c));
                    }
                    ctx.prover()
                        .defer(plans, OwnedClaim::Closes(l4(proto), pieces.clone()))
                }
                Err(why) => fix::refusal(why).into(),
            };
            Draft {
                kind: FindingKind::ExcessOpening,
                role: None,
                requirement: None,
                needed_by: Vec::new(),
                direction: Direction::In,
                proto,
                summary: {
                    // Roles that require some of these ports, from other peers
                    // or elsewhere: the wording must not deny them.
                    let mut roles: Vec<&str> = ctx
                        .input
                        .requirements
                        .iter()
                        .filter(|r| {
                            r.direction == Direction::In
                                && r.proto == proto
                                && !r.ports.intersect(&m.ports).is_empty()
                        })
                        .map(|r| r.role.as_str())
                        .collect();
                    roles.sort_unstable();
                    roles.dedup();
                    let required = PortSet::from_ranges(
                        ctx.input
                            .requirements
                            .iter()
                            .filter(|r| r.direction == Direction::In && r.proto == proto)
                            .flat_map(|r| r.ports.intersect(&m.ports).ranges().to_vec()),
                    );
                    let why = if roles.is_empty() {
                        "no role requires it and no [[allow]] entry allows it".to_string()
                    } else {
                        format!(
                            "that is more sources than {} {}{}, and no [[allow]] entry allows it",
                            roles.join(", "),
                            if roles.len() == 1 { "needs" } else { "need" },
                            if required == m.ports {
                                String::new()
                            } else {
                                format!(" on {proto} {required} (the rest no role requires)")
                            }
                        )
                    };
                    format!(
                        "{proto} {} from {} is accepted on {} but {why}: accepted by {}",
                        m.ports,
                        peers_text(&m.peers),
                        m.interfaces.join(", "),
                        blocker_text(&decided_by)
                    )
                },
                ports: m.ports,
                peers: m.peers.prefixes(),
                interfaces: m.interfaces,
                evidence,
                fix: Some(fix),
                pieces: m.pieces,
                tiebreak: blocker_key(&decided_by),
            }
        })
        .collect()
}

/// Openings ordered by first port, for finding those that cover a port
/// without looking at all of them (thousands of listeners, tens of
/// thousands of openings).
struct ByPort<'a> {
    /// Sorted by first port.
    openings: Vec<&'a Opening>,
    /// `reach[i]`: the highest last port among `openings[..=i]`.
    reach: Vec<u16>,
}

impl<'a> ByPort<'a> {
    fn new(mut openings: Vec<&'a Opening>) -> ByPort<'a> {
        openings.sort_by_key(|o| o.ports.first());
        let mut top = 0;
        let reach = openings
            .iter()
            .map(|o| {
                top = top.max(o.ports.last());
                top
            })
            .collect();
        ByPort { openings, reach }
    }

    /// The openings whose ports include `port`, in first-port order.
    fn covering(&self, port: u16) -> Vec<&'a Opening> {
        let end = self.openings.partition_point(|o| o.ports.first() <= port);
        let mut out: Vec<&'a Opening> = Vec::new();
        // Back from the last opening starting at or before `port`, until no
        // earlier one reaches it.
        for i in (0..end).rev() {
            if self.reach[i] < port {
                break;
            }
            if self.openings[i].ports.last() >= port {
                out.push(self.openings[i]);
            }
        }
        out.reverse();
        out
    }
}

/// The sockets on one port and where the firewall lets peers reach them.
type ListenerGroup<'a> = (Vec<&'a Listener>, Vec<RawPiece>);

/// `exposed-listener` findings: one per protocol and port.
pub(crate) fn exposed_listeners(ctx: &Ctx<'_>) -> Vec<Draft> {
    // (proto, port) -> (listeners, pieces)
    let mut groups: BTreeMap<(Proto, u16), ListenerGroup<'_>> = BTreeMap::new();
    // Computed once, not per listener: thousands of sockets are common.
    let mut wanted: HashMap<(Proto, String, AddrFamily), Vec<Rect>> = HashMap::default();
    // What the wanted rectangles cover at one port.
    let mut covered: HashMap<(Proto, String, AddrFamily, u16), AddrSet> = HashMap::default();
    let mut accepting: HashMap<(L4, &str, IpAddr), Vec<&Opening>> = HashMap::default();
    for o in &ctx.input.exposure.openings {
        if o.verdict == Verdict::Accept && !o.sources.is_empty() {
            for &to in &o.to {
                accepting
                    .entry((o.proto, o.iif.as_str(), to))
                    .or_default()
                    .push(o);
            }
        }
    }
    let accepting: HashMap<(L4, &str, IpAddr), ByPort<'_>> = accepting
        .into_iter()
        .map(|(k, v)| (k, ByPort::new(v)))
        .collect();
    for l in ctx.input.listeners.iter().filter(|l| l.is_exposed()) {
        let proto = match l.proto {
            L4::Tcp => Proto::Tcp,
            L4::Udp => Proto::Udp,
        };
        let mut pieces = Vec::new();
        for iface in &ctx.ifaces {
            for to in local_addrs(iface) {
                if !l.accepts(to, &iface.name) {
                    continue;
                }
                let fam = family_of(to);
                let Some(candidates) = accepting.get(&(l.proto, iface.name.as_str(), to)) else {
                    continue;
                };
                // The sources some requirement or [[allow]] entry wants
                // here are not exposure; the rest is, in either family.
                let cover = covered
                    .entry((proto, iface.name.clone(), fam, l.port))
                    .or_insert_with(|| {
                        let rects = wanted
                            .entry((proto, iface.name.clone(), fam))
                            .or_insert_with(|| ctx.wanted(proto, &iface.name, fam));
                        AddrSet::union_all(
                            fam,
                            rects
                                .iter()
                                .filter(|w| w.ports.contains(l.port))
                                .map(|w| &w.sources),
                        )
                    });
                for o in candidates.covering(l.port) {
                    let sources = if cover.is_empty() {
                        o.sources.clone()
                    } else {
                        o.sources.subtract(cover)
                    };
                    if sources.is_empty() {
                        continue;
                    }
                    pieces.push(RawPiece {
                        iface: iface.name.clone(),
                        to: vec![to],
                        ports: PortRange::single(l.port),
                        sources,
                        decided_by: o.decided_by.clone(),
                    });
                }
            }
        }
        if !pieces.is_empty() {
            let e = groups.entry((proto, l.port)).or_default();
            e.0.push(l);
            e.1.extend(pieces);
        }
    }
    let mut drafts = Vec::new();
    for ((proto, port), (listeners, pieces)) in groups {
        let m = merge(&pieces);
        let mut evidence: Vec<Evidence> = Vec::new();
        for l in &listeners {
            let ev = Evidence::Listener {
                proto,
                addr: l.addr,
                port: l.port,
                dev: l.dev.clone(),
                process: l.process.clone(),
                unit: l.unit.clone(),
                unit_user: l.unit_user,
            };
            if !evidence.contains(&ev) {
                evidence.push(ev);
            }
        }
        // The accepting rules, each with the fix that closes its part.
        let mut by_rule: BTreeMap<String, Vec<RawPiece>> = BTreeMap::new();
        for p in &pieces {
            by_rule
                .entry(blocker_key(&p.decided_by))
                .or_default()
                .push(p.clone());
        }
        let mut fixes = Vec::new();
        // Per accepting rule, the excess elements of its named set, if any
        // (tried first, as for an excess opening).
        let mut set_changes = Vec::new();
        for rule_pieces in by_rule.values() {
            let d = rule_pieces[0].decided_by.clone();
            if let Some(d) = &d {
                let e = ctx.rules.evidence(d);
                if !evidence.contains(&e) {
                    evidence.push(e);
                }
            }
            let accesses = fix::accesses(rule_pieces);
            set_changes.push(d.as_ref().and_then(|d| {
                setfix::delete_from_set(ctx.manager, ctx.input.snapshot, d, proto, &accesses)
            }));
            fixes.push(fix::close_inbound(
                ctx.manager,
                d.as_ref(),
                false,
                proto,
                &accesses,
            ));
        }
        // Named by their commands, or by their units where the process
        // is not known (no privilege to read /proc/PID/fd).
        let who: Vec<String> = listeners
            .iter()
            .filter_map(|l| match &l.process {
                Some(p) => Some(p.command.clone()),
                None => l.unit.clone(),
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        // The roles that require this port (from some peers, on some
        // interface): then the listener is wanted, only too widely open.
        let mut roles: Vec<&str> = ctx
            .input
            .requirements
            .iter()
            .filter(|r| r.direction == Direction::In && r.proto == proto && r.ports.contains(port))
            .map(|r| r.role.as_str())
            .collect();
        roles.sort_unstable();
        roles.dedup();
        let who = if who.is_empty() {
            "a process".to_string()
        } else {
            who.join(", ")
        };
        let summary = if roles.is_empty() {
            format!(
                "{who} listens on {proto} {port}, which no role or [[allow]] entry wants, and the firewall lets {} reach it on {}",
                peers_text(&m.peers),
                m.interfaces.join(", ")
            )
        } else {
            format!(
                "{who} listens on {proto} {port}, open to more sources than {} {}: the firewall lets {} reach it on {}",
                roles.join(", "),
                if roles.len() == 1 { "needs" } else { "need" },
                peers_text(&m.peers),
                m.interfaces.join(", ")
            )
        };
        drafts.push(Draft {
            kind: FindingKind::ExposedListener,
            role: None,
            requirement: None,
            needed_by: Vec::new(),
            direction: Direction::In,
            proto,
            summary,
            ports: m.ports,
            peers: m.peers.prefixes(),
            interfaces: m.interfaces,
            evidence,
            fix: match fixes
                .into_iter()
                .map(|f| f.and_then(|v| v.into_iter().next().ok_or_else(String::new)))
                .collect::<Result<Vec<_>, String>>()
            {
                Ok(plans) => {
                    // With the set elements where a rule has them, then
                    // with the rules' own candidates only.
                    let with_sets: Vec<fix::Plan> = plans
                        .iter()
                        .zip(&set_changes)
                        .map(|(p, c)| match c {
                            Some(c) => fix::element_plan(ctx.manager, c.clone()),
                            None => p.clone(),
                        })
                        .collect();
                    let mut candidates: Vec<fix::Plan> = Vec::new();
                    if set_changes.iter().any(Option::is_some) {
                        candidates.extend(fix::combine(with_sets));
                    }
                    candidates.extend(fix::combine(plans));
                    (!candidates.is_empty()).then(|| {
                        ctx.prover()
                            .defer(candidates, OwnedClaim::Closes(l4(proto), pieces.clone()))
                    })
                }
                Err(why) => Some(fix::refusal(why).into()),
            },
            pieces: m.pieces,
            tiebreak: String::new(),
        });
    }
    drafts
}

/// `not-listening` findings: required ports with `listen = true` that no
/// socket serves on the interfaces the requirement concerns.
pub(crate) fn not_listening(ctx: &Ctx<'_>) -> Vec<Draft> {
    // (proto, missing ports, interfaces) -> the requirements and their
    // peers: one finding for one port nobody serves, whoever needs it.
    type Key = (Proto, Vec<(u16, u16)>, Vec<String>);
    let mut groups: BTreeMap<Key, (PortSet, Vec<&ResolvedRequirement>, Peers)> = BTreeMap::new();
    for r in ctx.input.requirements {
        if r.direction != Direction::In || !r.listen || r.ports.is_empty() {
            continue;
        }
        let peers = requirement_peers(r, ctx.input.config);
        if peers.is_empty() {
            continue;
        }
        let (ifaces, _) = ctx.applicable(r.scope);
        let pairs: Vec<(&str, IpAddr)> = ifaces
            .iter()
            .flat_map(|i| {
                local_addrs(i)
                    .into_iter()
                    .filter(|a| !peers.family(family_of(*a)).is_empty())
                    .map(move |a| (i.name.as_str(), a))
            })
            .collect();
        let proto = l4(r.proto);
        let served = PortSet::from_ranges(
            ctx.input
                .listeners
                .iter()
                .filter(|l| l.proto == proto && l.is_exposed())
                .filter(|l| pairs.is_empty() || pairs.iter().any(|(i, a)| l.accepts(*a, i)))
                .map(|l| PortRange::single(l.port)),
        );
        let missing = r.ports.subtract(&served);
        if missing.is_empty() {
            continue;
        }
        let mut interfaces: Vec<String> = ifaces.iter().map(|i| i.name.clone()).collect();
        interfaces.sort();
        let key = (
            r.proto,
            missing
                .ranges()
                .iter()
                .map(|p| (p.first(), p.last()))
                .collect(),
            interfaces,
        );
        let e = groups
            .entry(key)
            .or_insert_with(|| (missing, Vec::new(), Peers::none()));
        e.1.push(r);
        e.2 = e.2.union(&peers);
    }
    let mut drafts = Vec::new();
    for ((proto, _, interfaces), (missing, reqs, peers)) in groups {
        let needed_by = needs(&reqs);
        let mut purposes: Vec<&str> = reqs
            .iter()
            .map(|r| r.purpose.trim_end_matches('.'))
            .collect();
        purposes.dedup();
        let names: Vec<String> = needed_by
            .iter()
            .map(|n| format!("{}/{}", n.role, n.requirement))
            .collect();
        let on = if interfaces.is_empty() {
            "this host".to_string()
        } else {
            interfaces.join(", ")
        };
        drafts.push(Draft {
            kind: FindingKind::NotListening,
            role: Some(needed_by[0].role.clone()),
            requirement: Some(needed_by[0].requirement.clone()),
            summary: format!(
                "nothing listens on {proto} {missing} ({}) on {on} (needed by {})",
                purposes.join("; "),
                names.join(", ")
            ),
            needed_by,
            direction: Direction::In,
            proto,
            evidence: vec![Evidence::Note {
                text: format!(
                    "no {proto} socket bound to port {missing} on an address of {on} (a wildcard or that address)"
                ),
            }],
            ports: missing,
            peers: peers.prefixes(),
            interfaces,
            fix: None,
            pieces: Vec::new(),
            tiebreak: String::new(),
        });
    }
    drafts
}

/// Every requirement of `reqs` as `needed_by` lists it: sorted, once each.
fn needs(reqs: &[&ResolvedRequirement]) -> Vec<Need> {
    let mut v: Vec<Need> = reqs
        .iter()
        .map(|r| Need {
            role: r.role.clone(),
            requirement: r.requirement.clone(),
        })
        .collect();
    v.sort();
    v.dedup();
    v
}
