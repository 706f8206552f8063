//! Suggested fixes: `nft` commands always, and `firewall-cmd` or `ufw`
//! commands when that tool manages the host.
//!
//! - A missing inbound opening gets an `accept` rule for exactly the missing
//!   ports and peers, inserted just before the rule that refuses it
//!   (`nft insert rule ... handle N`), or appended to the chain whose policy
//!   refuses it (`nft add rule`, which runs before the policy). Adding an
//!   accept ends only that chain: if another base chain refuses the same
//!   traffic, the next audit reports that one.
//! - An excess opening gets `nft delete rule ... handle N` when everything
//!   that rule was found to accept is excess; otherwise (and for an
//!   accepting policy) a `drop` rule for exactly the excess ports, sources
//!   and interfaces, inserted before the accepting rule or appended to the
//!   chain. Requirements and allowlist entries do not depend on the local
//!   address, so dropping per interface never drops wanted traffic.
//! - A blocked outbound connection gets an `accept` rule in the output chain
//!   that refuses it.
//!
//! firewalld fixes are rich rules in the zone of each interface
//! (`$(firewall-cmd --get-zone-of-interface=IF || firewall-cmd
//! --get-default-zone)`); ufw fixes use `ufw allow` / `ufw prepend deny`.
//! No firewalld fix is offered for outbound connections (firewalld filters
//! them only through policy objects, which depend on the site's setup).

use super::findings::RawPiece;
use super::region::Peers;
use crate::addrs::{AddrFamily, AddrSet};
use crate::catalog::Proto;
use crate::config::FirewallManager;
use crate::eval::DecidedBy;
use crate::ports::{PortRange, PortSet};
use crate::snapshot::{Family, Snapshot};
use ipnet::IpNet;
use rustc_hash::FxHashMap as HashMap;
use serde::Serialize;
use std::collections::BTreeSet;

/// At most this many commands per tool; more are summarised in a comment.
const MAX_LINES: usize = 32;

/// Which tool manages the host's firewall.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Manager {
    /// Plain nftables (or nothing recognisable).
    Nft,
    /// firewalld: the snapshot has a table called `firewalld`.
    Firewalld,
    /// ufw: the snapshot has chains called `ufw-*` / `ufw6-*` (iptables-nft).
    Ufw,
}

impl Manager {
    /// The configured manager, or for `auto` the one the snapshot shows.
    pub fn detect(snapshot: &Snapshot, configured: FirewallManager) -> Manager {
        match configured {
            FirewallManager::Nft => Manager::Nft,
            FirewallManager::Firewalld => Manager::Firewalld,
            FirewallManager::Ufw => Manager::Ufw,
            FirewallManager::Auto => {
                if snapshot.tables.iter().any(|t| t.name == "firewalld") {
                    Manager::Firewalld
                } else if snapshot.tables.iter().any(|t| {
                    t.chains
                        .iter()
                        .any(|c| c.name.starts_with("ufw-") || c.name.starts_with("ufw6-"))
                }) {
                    Manager::Ufw
                } else {
                    Manager::Nft
                }
            }
        }
    }
}

/// Commands that would fix a finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Fix {
    /// `nft` commands, one per line.
    pub nft: String,
    /// `firewall-cmd` commands, when firewalld manages the host.
    pub firewalld: Option<String>,
    /// `ufw` commands, when ufw manages the host.
    pub ufw: Option<String>,
}

/// Joins the fixes of several rules into one.
pub(crate) fn combine(fixes: Vec<Fix>) -> Option<Fix> {
    let join = |v: Vec<String>| (!v.is_empty()).then(|| v.join("\n"));
    let nft = join(fixes.iter().map(|f| f.nft.clone()).collect())?;
    Some(Fix {
        nft,
        firewalld: join(fixes.iter().filter_map(|f| f.firewalld.clone()).collect()),
        ufw: join(fixes.iter().filter_map(|f| f.ufw.clone()).collect()),
    })
}

/// A block of traffic for one rule: interfaces, sources (`None`: any address
/// of either family) and ports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Access {
    pub ifaces: Vec<String>,
    pub sources: Option<AddrSet>,
    pub ports: PortSet,
}

fn set_key(s: &AddrSet) -> (bool, Vec<IpNet>) {
    (super::region::is_v6(s.family()), s.to_prefixes())
}

/// Orders prefix lists as the lists of their texts would be ordered,
/// formatting only the first pair that differs (a source set can be a
/// blocklist's complement: a hundred thousand prefixes).
fn text_order(a: &[IpNet], b: &[IpNet]) -> std::cmp::Ordering {
    match a.iter().zip(b).find(|(x, y)| x != y) {
        Some((x, y)) => x.to_string().cmp(&y.to_string()),
        None => a.len().cmp(&b.len()),
    }
}

/// Groups pieces into as few exact blocks as it can: pieces with the same
/// sources on the same interfaces share a block; an all-IPv4 and an
/// all-IPv6 block with the same ports and interfaces become one.
pub(crate) fn accesses(pieces: &[RawPiece]) -> Vec<Access> {
    // Grouped by value in hash maps (thousands of pieces are usual), then
    // put in the order of the sources' prefixes and the interfaces.
    // (iface, sources) -> ports
    let mut ranges: HashMap<(&str, &AddrSet), Vec<PortRange>> = HashMap::default();
    for p in pieces {
        ranges
            .entry((p.iface.as_str(), &p.sources))
            .or_default()
            .push(p.ports);
    }
    let per_if = ranges
        .into_iter()
        .map(|(k, r)| (k, PortSet::from_ranges(r)));
    // (sources, ports) -> ifaces
    let mut per_ports: HashMap<(&AddrSet, PortSet), BTreeSet<String>> = HashMap::default();
    for ((iface, set), ports) in per_if {
        per_ports
            .entry((set, ports))
            .or_default()
            .insert(iface.to_string());
    }
    // (sources, ifaces) -> ports
    let mut per_src: HashMap<(&AddrSet, Vec<String>), PortSet> = HashMap::default();
    for ((set, ports), ifaces) in per_ports {
        let e = per_src
            .entry((set, ifaces.into_iter().collect()))
            .or_default();
        *e = e.union(&ports);
    }
    let mut keyed: Vec<((bool, Vec<IpNet>), Access)> = per_src
        .into_iter()
        .map(|((set, ifaces), ports)| {
            (
                set_key(set),
                Access {
                    ifaces,
                    sources: Some(set.clone()),
                    ports,
                },
            )
        })
        .collect();
    keyed.sort_by(|a, b| {
        (a.0 .0.cmp(&b.0 .0))
            .then_with(|| text_order(&a.0 .1, &b.0 .1))
            .then_with(|| a.1.ifaces.cmp(&b.1.ifaces))
    });
    let mut out: Vec<Access> = keyed.into_iter().map(|(_, a)| a).collect();
    // Merge the all-v4 / all-v6 pairs.
    let mut i = 0;
    while i < out.len() {
        let is_all = |a: &Access, v6: bool| {
            a.sources
                .as_ref()
                .is_some_and(|s| s.is_all() && super::region::is_v6(s.family()) == v6)
        };
        if is_all(&out[i], false) {
            let twin = out.iter().position(|b| {
                is_all(b, true) && b.ifaces == out[i].ifaces && b.ports == out[i].ports
            });
            if let Some(j) = twin {
                out[i].sources = None;
                out.remove(j);
                if j < i {
                    i -= 1;
                }
            }
        }
        i += 1;
    }
    out
}

fn quote_list(v: &[String]) -> String {
    if v.len() == 1 {
        format!("\"{}\"", v[0])
    } else {
        let q: Vec<String> = v.iter().map(|s| format!("\"{s}\"")).collect();
        format!("{{ {} }}", q.join(", "))
    }
}

fn nft_set<T: ToString>(v: &[T]) -> String {
    if v.len() == 1 {
        v[0].to_string()
    } else {
        let s: Vec<String> = v.iter().map(ToString::to_string).collect();
        format!("{{ {} }}", s.join(", "))
    }
}

fn nft_ports(p: &PortSet) -> String {
    nft_set(p.ranges())
}

/// `ip saddr 10.0.0.0/8`, `ip6 daddr != { ... }`, `meta nfproto ipv4` for all
/// addresses in a table that sees both families, or nothing.
fn nft_addr(table: Family, sources: &Option<AddrSet>, field: &str) -> Option<String> {
    let s = sources.as_ref()?;
    let fam = match s.family() {
        AddrFamily::V4 => "ip",
        AddrFamily::V6 => "ip6",
    };
    if s.is_all() {
        return match table {
            Family::Ip | Family::Ip6 => None,
            _ => Some(format!(
                "meta nfproto {}",
                if fam == "ip" { "ipv4" } else { "ipv6" }
            )),
        };
    }
    // The shorter of the set and its complement, counted before either is
    // written out (a blocklist's complement is a hundred thousand prefixes).
    let comp = s.complement();
    let n = comp.prefix_count();
    Some(if n != 0 && n < s.prefix_count() {
        format!("{fam} {field} != {}", nft_set(&comp.to_prefixes()))
    } else {
        format!("{fam} {field} {}", nft_set(&s.to_prefixes()))
    })
}

/// Whether a table of `table` family sees packets of the access's family.
fn family_fits(table: Family, sources: &Option<AddrSet>) -> bool {
    match (table, sources.as_ref().map(AddrSet::family)) {
        (Family::Ip, Some(AddrFamily::V6)) | (Family::Ip6, Some(AddrFamily::V4)) => false,
        (Family::Ip | Family::Ip6, None) => true,
        _ => true,
    }
}

fn nft_stmt(
    table: Family,
    ifaces: Option<(&str, &[String])>,
    sources: &Option<AddrSet>,
    addr_field: &str,
    proto: Proto,
    ports: &PortSet,
    verdict: &str,
) -> String {
    let mut parts = Vec::new();
    if let Some((kw, list)) = ifaces {
        if !list.is_empty() {
            parts.push(format!("{kw} {}", quote_list(list)));
        }
    }
    if let Some(a) = nft_addr(table, sources, addr_field) {
        parts.push(a);
    }
    parts.push(format!("{proto} dport {}", nft_ports(ports)));
    parts.push(verdict.to_string());
    parts.join(" ")
}

/// Where a new rule goes: before the deciding rule, or at the end of the
/// chain whose policy decided.
fn placement(d: &DecidedBy) -> (Family, String) {
    match d {
        DecidedBy::Rule(r) => (
            r.family,
            format!(
                "nft insert rule {} {} {} handle {}",
                r.family, r.table, r.chain, r.handle
            ),
        ),
        DecidedBy::Policy(p) => (
            p.family,
            format!("nft add rule {} {} {}", p.family, p.table, p.chain),
        ),
    }
}

/// Quotes a statement for the shell when it holds braces, quotes or `!`.
fn shell(cmd_prefix: &str, stmt: &str) -> String {
    if stmt.contains(['{', '"', '!', ';']) {
        format!("{cmd_prefix} '{stmt}'")
    } else {
        format!("{cmd_prefix} {stmt}")
    }
}

fn cap(mut lines: Vec<String>) -> String {
    if lines.len() > MAX_LINES {
        let more = lines.len() - MAX_LINES;
        lines.truncate(MAX_LINES);
        lines.push(format!("# ... and {more} more commands of the same form"));
    }
    lines.join("\n")
}

fn zone_of(iface: &str) -> String {
    format!(
        "\"$(firewall-cmd --get-zone-of-interface={iface} || firewall-cmd --get-default-zone)\""
    )
}

fn ufw_ports(ports: &PortSet) -> Vec<String> {
    // ufw takes at most 15 ports per rule (a range counts as two).
    let mut out = Vec::new();
    let mut cur: Vec<String> = Vec::new();
    let mut weight = 0;
    for r in ports.ranges() {
        let (t, w) = if r.first() == r.last() {
            (r.first().to_string(), 1)
        } else {
            (format!("{}:{}", r.first(), r.last()), 2)
        };
        if weight + w > 15 {
            out.push(cur.join(","));
            cur.clear();
            weight = 0;
        }
        cur.push(t);
        weight += w;
    }
    if !cur.is_empty() {
        out.push(cur.join(","));
    }
    out
}

/// Rich-rule source parts for an access (one address, `NOT` one address,
/// or a firewalld ipset holding the prefixes or their complement), with the
/// commands that create the ipset first.
fn firewalld_sources(sources: &Option<AddrSet>) -> (Vec<String>, String) {
    let Some(s) = sources else {
        return (Vec::new(), String::new());
    };
    let (fam, ipset_fam) = match s.family() {
        AddrFamily::V4 => ("ipv4", ""),
        AddrFamily::V6 => ("ipv6", " --option=family=inet6"),
    };
    if s.is_all() {
        return (Vec::new(), format!("family=\"{fam}\" "));
    }
    // Counted first; only the list used is written out.
    let comp = s.complement();
    let (n, n_comp) = (s.prefix_count(), comp.prefix_count());
    if n == 1 {
        return (
            Vec::new(),
            format!(
                "family=\"{fam}\" source address=\"{}\" ",
                s.to_prefixes()[0]
            ),
        );
    }
    if n_comp == 1 {
        return (
            Vec::new(),
            format!(
                "family=\"{fam}\" source NOT address=\"{}\" ",
                comp.to_prefixes()[0]
            ),
        );
    }
    let (not, list) = if n_comp < n {
        ("NOT ", comp.to_prefixes())
    } else {
        ("", s.to_prefixes())
    };
    let entries: Vec<String> = list.iter().map(ToString::to_string).collect();
    let name = format!("pw-{:08x}", super::fnv1a(&entries.join(",")) as u32);
    let setup = vec![
        format!("firewall-cmd --permanent --new-ipset={name} --type=hash:net{ipset_fam}"),
        format!(
            "for e in {}; do firewall-cmd --permanent --ipset={name} --add-entry=$e; done",
            entries.join(" ")
        ),
    ];
    (
        setup,
        format!("family=\"{fam}\" source {not}ipset=\"{name}\" "),
    )
}

fn firewalld_port(r: &PortRange) -> String {
    if r.first() == r.last() {
        r.first().to_string()
    } else {
        format!("{}-{}", r.first(), r.last())
    }
}

fn firewalld_rich(a: &Access, ifaces: &[String], proto: Proto, verdict: &str) -> Vec<String> {
    let (mut lines, src) = firewalld_sources(&a.sources);
    for iface in ifaces {
        for r in a.ports.ranges() {
            lines.push(format!(
                "firewall-cmd --permanent --zone={} --add-rich-rule='rule {src}port port=\"{}\" protocol=\"{proto}\" {verdict}'",
                zone_of(iface),
                firewalld_port(r)
            ));
        }
    }
    lines
}

fn ufw_sources(sources: &Option<AddrSet>) -> Vec<String> {
    match sources {
        None => vec!["any".into()],
        Some(s) => s.to_prefixes().iter().map(ToString::to_string).collect(),
    }
}

/// The fix for a missing inbound opening: accept exactly `accesses`, before
/// the refusing rule (or at the end of the refusing policy's chain).
/// `private` names the interfaces for a private-network requirement (the
/// accept is then limited to them).
pub(crate) fn open_inbound(
    manager: Manager,
    _snapshot: &Snapshot,
    blocker: Option<&DecidedBy>,
    proto: Proto,
    accesses: &[Access],
    private: Option<&[String]>,
) -> Fix {
    let mut nft = Vec::new();
    match blocker {
        Some(d) => {
            let (fam, prefix) = placement(d);
            for a in accesses.iter().filter(|a| family_fits(fam, &a.sources)) {
                let ifaces = private.map(|_| ("iifname", a.ifaces.as_slice()));
                let stmt = nft_stmt(fam, ifaces, &a.sources, "saddr", proto, &a.ports, "accept");
                nft.push(shell(&prefix, &stmt));
            }
        }
        None => nft.push(
            "# no single rule refuses this traffic (forwarded after NAT?): check the nat chains"
                .into(),
        ),
    }
    let firewalld = (manager == Manager::Firewalld).then(|| {
        let mut lines = Vec::new();
        for a in accesses {
            let ifaces = a.ifaces.as_slice();
            if any_source(&a.sources) {
                for iface in ifaces {
                    for r in a.ports.ranges() {
                        lines.push(format!(
                            "firewall-cmd --permanent --zone={} --add-port={}/{proto}",
                            zone_of(iface),
                            firewalld_port(r)
                        ));
                    }
                }
            } else {
                lines.extend(firewalld_rich(a, ifaces, proto, "accept"));
            }
        }
        lines.dedup();
        lines.push("firewall-cmd --reload".into());
        cap(lines)
    });
    let ufw = (manager == Manager::Ufw).then(|| {
        // Before a ufw user rule that refuses it, `prepend`; else append.
        let verb = match blocker {
            Some(DecidedBy::Rule(r)) if r.chain.starts_with("ufw") => "prepend allow",
            _ => "allow",
        };
        let mut lines = Vec::new();
        for a in accesses {
            let ons: Vec<Option<&String>> = match private {
                Some(_) => a.ifaces.iter().map(Some).collect(),
                None => vec![None],
            };
            for on in ons {
                for src in ufw_sources(&a.sources) {
                    for ports in ufw_ports(&a.ports) {
                        lines.push(format!(
                            "ufw {verb} {}proto {proto} from {src} to any port {ports}",
                            on.map(|i| format!("in on {i} ")).unwrap_or_default()
                        ));
                    }
                }
            }
        }
        cap(lines)
    });
    Fix {
        nft: cap(nft),
        firewalld,
        ufw,
    }
}

/// Whether sources are every address (`None`: of both families).
fn any_source(sources: &Option<AddrSet>) -> bool {
    match sources {
        None => true,
        Some(s) => s.is_all(),
    }
}

/// The fix for an excess opening (or an exposed listener's opening): delete
/// the accepting rule when all it accepts is excess (`delete_ok`), else drop
/// exactly `accesses` before it (or at the end of the accepting policy's chain).
pub(crate) fn close_inbound(
    manager: Manager,
    _snapshot: &Snapshot,
    decided_by: Option<&DecidedBy>,
    delete_ok: bool,
    proto: Proto,
    accesses: &[Access],
) -> Fix {
    let mut nft = Vec::new();
    match decided_by {
        Some(DecidedBy::Rule(r)) if delete_ok => nft.push(format!(
            "nft delete rule {} {} {} handle {}",
            r.family, r.table, r.chain, r.handle
        )),
        Some(d) => {
            let (fam, prefix) = placement(d);
            for a in accesses.iter().filter(|a| family_fits(fam, &a.sources)) {
                let stmt = nft_stmt(
                    fam,
                    Some(("iifname", &a.ifaces)),
                    &a.sources,
                    "saddr",
                    proto,
                    &a.ports,
                    "drop",
                );
                nft.push(shell(&prefix, &stmt));
            }
        }
        None => {
            nft.push("nft add table inet portwarden".into());
            nft.push(
                "nft add chain inet portwarden input '{ type filter hook input priority -1; policy accept; }'"
                    .into(),
            );
            for a in accesses {
                let stmt = nft_stmt(
                    Family::Inet,
                    Some(("iifname", &a.ifaces)),
                    &a.sources,
                    "saddr",
                    proto,
                    &a.ports,
                    "drop",
                );
                nft.push(shell("nft add rule inet portwarden input", &stmt));
            }
        }
    }
    let firewalld = (manager == Manager::Firewalld).then(|| {
        let mut lines = Vec::new();
        for a in accesses {
            lines.extend(firewalld_rich(a, &a.ifaces, proto, "drop"));
        }
        lines.push("firewall-cmd --reload".into());
        cap(lines)
    });
    let ufw = (manager == Manager::Ufw).then(|| {
        let mut lines = Vec::new();
        for a in accesses {
            for iface in &a.ifaces {
                for ports in ufw_ports(&a.ports) {
                    let rule = |verb: &str, src: &str| {
                        format!("ufw prepend {verb} in on {iface} proto {proto} from {src} to any port {ports}")
                    };
                    match &a.sources {
                        None => lines.push(rule("deny", "any")),
                        Some(s) => {
                            let comp = s.complement();
                            let n_comp = comp.prefix_count();
                            if n_comp != 0 && n_comp < s.prefix_count() {
                                let comp = comp.to_prefixes();
                                // Deny the family, then put the exceptions above it.
                                let all = AddrSet::all(s.family()).to_prefixes()[0].to_string();
                                lines.push(rule("deny", &all));
                                for c in comp {
                                    lines.push(rule("allow", &c.to_string()));
                                }
                            } else {
                                for d in s.prefixes() {
                                    lines.push(rule("deny", &d.to_string()));
                                }
                            }
                        }
                    }
                }
            }
        }
        cap(lines)
    });
    Fix {
        nft: cap(nft),
        firewalld,
        ufw,
    }
}

/// The fix for a blocked outbound connection: accept it before the refusing
/// rule (or at the end of the refusing policy's chain).
pub(crate) fn open_outbound(
    manager: Manager,
    blocker: &DecidedBy,
    proto: Proto,
    peers: &Peers,
    ports: &PortSet,
) -> Fix {
    let (fam, prefix) = placement(blocker);
    let mut targets: Vec<Option<AddrSet>> = Vec::new();
    if peers.v4.is_all() && peers.v6.is_all() {
        targets.push(None);
    } else {
        for s in [&peers.v4, &peers.v6] {
            if !s.is_empty() {
                targets.push(Some(s.clone()));
            }
        }
    }
    let nft: Vec<String> = targets
        .iter()
        .filter(|t| family_fits(fam, t))
        .map(|t| {
            let stmt = nft_stmt(fam, None, t, "daddr", proto, ports, "accept");
            shell(&prefix, &stmt)
        })
        .collect();
    let ufw = (manager == Manager::Ufw).then(|| {
        let mut lines = Vec::new();
        for t in &targets {
            for dst in ufw_sources(t) {
                for p in ufw_ports(ports) {
                    lines.push(format!("ufw allow out proto {proto} to {dst} port {p}"));
                }
            }
        }
        cap(lines)
    });
    Fix {
        nft: cap(nft),
        firewalld: None,
        ufw,
    }
}

#[cfg(test)]
mod order_tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn prefix_lists_sort_as_their_texts(
            a in proptest::collection::vec((any::<u32>(), 0u8..=32), 0..6),
            b in proptest::collection::vec((any::<u32>(), 0u8..=32), 0..6),
            shared in 0usize..4,
        ) {
            let net = |(x, l): &(u32, u8)| IpNet::new(std::net::Ipv4Addr::from(*x).into(), *l).unwrap().trunc();
            // Lists that often share a beginning.
            let common: Vec<IpNet> = a.iter().take(shared).map(net).collect();
            let a: Vec<IpNet> = common.iter().copied().chain(a.iter().map(net)).collect();
            let b: Vec<IpNet> = common.iter().copied().chain(b.iter().map(net)).collect();
            let texts = |v: &[IpNet]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
            prop_assert_eq!(text_order(&a, &b), texts(&a).cmp(&texts(&b)));
        }
    }
}
