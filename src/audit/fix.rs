//! Candidate fixes: typed changes ([`Change`]) for a finding, with the
//! `firewall-cmd` or `ufw` commands for the same rules when that tool
//! manages the host. A candidate is shown only once proven
//! (`audit::prove`).
//!
//! - A missing inbound opening gets an `accept` rule for exactly the missing
//!   ports and peers, inserted just before the rule that refuses it
//!   (`nft insert rule ... handle N`), or appended to the chain whose policy
//!   refuses it (`nft add rule`, which runs before the policy).
//! - An excess opening gets, best first, `nft delete rule ... handle N` when
//!   everything that rule was found to accept is excess, and a `drop` rule
//!   for exactly the excess ports, sources and interfaces, inserted before
//!   the accepting rule or appended to the chain; with no deciding chain (no
//!   ruleset), a table `inet portwarden` whose input chain accepts
//!   established and related packets before its drops.
//! - A blocked outbound connection gets an `accept` rule in the output chain
//!   that refuses it; refused replies get `ct state established,related
//!   accept` before the input rule that refuses them.
//! - A statement never lists more than [`MAX_ELEMENTS`] prefixes, ports or
//!   interfaces: such a candidate is refused with the count and the first few.
//!
//! firewalld fixes are rich rules in the zone of each interface
//! (`$(firewall-cmd --get-zone-of-interface=IF || firewall-cmd
//! --get-default-zone)`); ufw fixes use `ufw allow` / `ufw prepend deny`.
//! No firewalld fix is offered for outbound connections (firewalld filters
//! them only through policy objects, which depend on the site's setup) or
//! for a deleted rule.

use super::change::{
    AddrField, ChainRef, Change, LegacyChainRef, NewRule, RuleVerdict, Stmt, MAX_ELEMENTS,
};
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

/// A fix the audit shows: proven on a copy of the snapshot, or the reason
/// none is offered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Fix {
    /// The changes, applied to a copy of the snapshot, resolve the finding
    /// and change nothing else (see `audit::prove`).
    Proven {
        /// The typed changes, in order.
        changes: Vec<Change>,
        /// The commands, rendered from `changes`: `nft`, or
        /// `iptables-legacy` / `ip6tables-legacy` where a legacy table
        /// decides.
        nft: String,
        /// `firewall-cmd` commands for the same rules, when firewalld
        /// manages the host (not for a deleted rule).
        firewalld: Option<String>,
        /// `ufw` commands for the same rules, when ufw manages the host.
        ufw: Option<String>,
    },
    /// "no safe automatic fix": why, and what shows it.
    NoSafeFix {
        /// Why no fix is offered.
        reason: String,
        /// What the proof found (the traffic that would change, the rule).
        evidence: Vec<String>,
    },
}

impl Fix {
    /// The `nft` commands of a proven fix.
    pub fn nft(&self) -> Option<&str> {
        match self {
            Fix::Proven { nft, .. } => Some(nft),
            Fix::NoSafeFix { .. } => None,
        }
    }

    /// The typed changes of a proven fix.
    pub fn changes(&self) -> &[Change] {
        match self {
            Fix::Proven { changes, .. } => changes,
            Fix::NoSafeFix { .. } => &[],
        }
    }
}

/// A candidate fix before its proof: the changes and the texts of the
/// other managers, rendered from the same rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    pub changes: Vec<Change>,
    pub firewalld: Option<String>,
    pub ufw: Option<String>,
}

impl Plan {
    /// The fix to show, once proven.
    pub fn proven(self) -> Fix {
        let nft = self
            .changes
            .iter()
            .map(Change::nft)
            .collect::<Vec<_>>()
            .join("\n");
        Fix::Proven {
            changes: self.changes,
            nft,
            firewalld: self.firewalld,
            ufw: self.ufw,
        }
    }
}

/// Why no candidate can be built.
pub(crate) fn refusal(reason: String) -> Fix {
    Fix::NoSafeFix {
        reason,
        evidence: Vec::new(),
    }
}

/// Joins the candidates of several rules into one (all or nothing).
pub(crate) fn combine(plans: Vec<Plan>) -> Option<Plan> {
    if plans.is_empty() {
        return None;
    }
    let join = |v: Vec<String>| (!v.is_empty()).then(|| v.join("\n"));
    Some(Plan {
        changes: plans.iter().flat_map(|p| p.changes.clone()).collect(),
        firewalld: join(plans.iter().filter_map(|p| p.firewalld.clone()).collect()),
        ufw: join(plans.iter().filter_map(|p| p.ufw.clone()).collect()),
    })
}

/// `10.0.0.1, 10.0.0.2, 10.0.0.3 and 49,997 more`.
fn first_few(v: &[IpNet], total: usize) -> String {
    let shown: Vec<String> = v.iter().take(3).map(ToString::to_string).collect();
    if total > shown.len() {
        format!("{} and {} more", shown.join(", "), total - shown.len())
    } else {
        shown.join(", ")
    }
}

/// The address match of a rule in a table of `table` family: the shorter of
/// the prefixes and their complement, `meta nfproto` for every address of
/// one family in an `inet` table, or nothing. Refused (with the count and
/// the first few) when more than [`MAX_ELEMENTS`] prefixes would be listed.
fn addr_stmt(
    table: Family,
    sources: &Option<AddrSet>,
    field: AddrField,
) -> Result<Option<Stmt>, String> {
    let Some(s) = sources else { return Ok(None) };
    if s.is_all() {
        return Ok(match table {
            Family::Ip | Family::Ip6 => None,
            _ => Some(Stmt::Nfproto { family: s.family() }),
        });
    }
    // Counted before either list is written out.
    let comp = s.complement();
    let (n, n_comp) = (s.prefix_count(), comp.prefix_count());
    let (negate, count, set) = if n_comp != 0 && n_comp < n {
        (true, n_comp, &comp)
    } else {
        (false, n, s)
    };
    if count > MAX_ELEMENTS {
        let few: Vec<IpNet> = set.prefixes().take(3).collect();
        return Err(format!(
            "the rule would list {count} address prefixes{} ({}): too many to check by eye or to pass on a command line; change the set or rule behind them instead",
            if negate { " (the complement)" } else { "" },
            first_few(&few, count)
        ));
    }
    Ok(Some(Stmt::Addr {
        field,
        family: s.family(),
        negate,
        prefixes: set.to_prefixes(),
    }))
}

/// Whether a table of `table` family sees packets of the access's family.
fn family_fits(table: Family, sources: &Option<AddrSet>) -> bool {
    !matches!(
        (table, sources.as_ref().map(AddrSet::family)),
        (Family::Ip, Some(AddrFamily::V6)) | (Family::Ip6, Some(AddrFamily::V4))
    )
}

fn ports_stmt(proto: Proto, ports: &PortSet) -> Result<Stmt, String> {
    if ports.ranges().len() > MAX_ELEMENTS {
        return Err(format!(
            "the rule would list {} port ranges",
            ports.ranges().len()
        ));
    }
    Ok(Stmt::Dport {
        proto,
        ports: ports.clone(),
    })
}

/// A rule for one access: `[iifname ...] [addr] proto dport ... verdict`.
fn access_rule(
    table: Family,
    ifaces: Option<&[String]>,
    a: &Access,
    field: AddrField,
    proto: Proto,
    verdict: RuleVerdict,
) -> Result<NewRule, String> {
    let mut matches = Vec::new();
    if let Some(list) = ifaces.filter(|l| !l.is_empty()) {
        if list.len() > MAX_ELEMENTS {
            return Err(format!("the rule would list {} interfaces", list.len()));
        }
        matches.push(Stmt::Iifname {
            names: list.to_vec(),
        });
    }
    if let Some(s) = addr_stmt(table, &a.sources, field)? {
        matches.push(s);
    }
    matches.push(ports_stmt(proto, &a.ports)?);
    Ok(NewRule { matches, verdict })
}

/// Where a new rule goes: before the deciding rule, or at the end of the
/// chain whose policy decided.
fn place(d: &DecidedBy, rule: NewRule) -> Change {
    // A legacy table decided: an iptables-legacy rule before the deciding
    // one (its line number), or at the end of the chain whose policy did.
    if let Some(at) = legacy_chain(d) {
        return Change::InsertLegacyRule {
            at,
            before: match d {
                DecidedBy::Rule(r) => Some(r.handle),
                DecidedBy::Policy(_) => None,
            },
            rule,
        };
    }
    match d {
        DecidedBy::Rule(r) => Change::InsertRule {
            at: ChainRef {
                family: r.family,
                table: r.table.clone(),
                chain: r.chain.clone(),
            },
            before: r.handle,
            rule,
        },
        DecidedBy::Policy(p) => Change::AddRule {
            at: ChainRef {
                family: p.family,
                table: p.table.clone(),
                chain: p.chain.clone(),
            },
            rule,
        },
    }
}

/// The legacy chain a legacy iptables table's rule or policy decided in
/// (`None`: an nf_tables chain).
fn legacy_chain(d: &DecidedBy) -> Option<LegacyChainRef> {
    let (table, chain) = match d {
        DecidedBy::Rule(r) => (&r.table, &r.chain),
        DecidedBy::Policy(p) => (&p.table, &p.chain),
    };
    let (name, family) = crate::snapshot::legacy::LegacyTable::parse_eval_name(table)?;
    Some(LegacyChainRef {
        family,
        table: name.to_string(),
        chain: chain.clone(),
    })
}

fn table_family(d: &DecidedBy) -> Family {
    match d {
        DecidedBy::Rule(r) => r.family,
        DecidedBy::Policy(p) => p.family,
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

fn firewalld_port(r: &PortRange) -> String {
    if r.first() == r.last() {
        r.first().to_string()
    } else {
        format!("{}-{}", r.first(), r.last())
    }
}

/// The parts of a typed rule the other managers' texts are rendered from.
struct RuleParts<'r> {
    ifaces: &'r [String],
    addr: Option<(AddrFamily, bool, &'r [IpNet])>,
    family: Option<AddrFamily>,
    proto: Proto,
    ports: &'r PortSet,
    accept: bool,
}

fn parts(rule: &NewRule) -> Option<RuleParts<'_>> {
    let mut p = RuleParts {
        ifaces: &[],
        addr: None,
        family: None,
        proto: Proto::Tcp,
        ports: EMPTY_PORTS.get_or_init(PortSet::new),
        accept: rule.verdict == RuleVerdict::Accept,
    };
    let mut has_ports = false;
    for m in &rule.matches {
        match m {
            Stmt::Iifname { names } => p.ifaces = names,
            Stmt::Nfproto { family } => p.family = Some(*family),
            Stmt::Addr {
                family,
                negate,
                prefixes,
                ..
            } => {
                p.family = Some(*family);
                p.addr = Some((*family, *negate, prefixes));
            }
            Stmt::Dport { proto, ports } => {
                p.proto = *proto;
                p.ports = ports;
                has_ports = true;
            }
            Stmt::Ct { .. } => return None,
        }
    }
    has_ports.then_some(p)
}

static EMPTY_PORTS: std::sync::OnceLock<PortSet> = std::sync::OnceLock::new();

/// firewalld rich rules (ipsets for several prefixes) for a typed rule, in
/// the zone of each of `zones` (the interfaces the finding concerns).
fn firewalld_lines(rule: &NewRule, zones: &[String]) -> Option<Vec<String>> {
    let p = parts(rule)?;
    let zones = if p.ifaces.is_empty() { zones } else { p.ifaces };
    let verdict = if p.accept { "accept" } else { "drop" };
    let mut lines = Vec::new();
    let src = match (p.addr, p.family) {
        (Some((fam, not, list)), _) => {
            let (f, ipset_fam) = match fam {
                AddrFamily::V4 => ("ipv4", ""),
                AddrFamily::V6 => ("ipv6", " --option=family=inet6"),
            };
            let not = if not { "NOT " } else { "" };
            if let [one] = list {
                format!("family=\"{f}\" source {not}address=\"{one}\" ")
            } else {
                let entries: Vec<String> = list.iter().map(ToString::to_string).collect();
                let name = format!("pw-{:08x}", super::fnv1a(&entries.join(",")) as u32);
                lines.push(format!(
                    "firewall-cmd --permanent --new-ipset={name} --type=hash:net{ipset_fam}"
                ));
                lines.push(format!(
                    "for e in {}; do firewall-cmd --permanent --ipset={name} --add-entry=$e; done",
                    entries.join(" ")
                ));
                format!("family=\"{f}\" source {not}ipset=\"{name}\" ")
            }
        }
        (None, Some(AddrFamily::V4)) => "family=\"ipv4\" ".into(),
        (None, Some(AddrFamily::V6)) => "family=\"ipv6\" ".into(),
        (None, None) => String::new(),
    };
    for iface in zones {
        for r in p.ports.ranges() {
            if p.accept && src.is_empty() {
                lines.push(format!(
                    "firewall-cmd --permanent --zone={} --add-port={}/{}",
                    zone_of(iface),
                    firewalld_port(r),
                    p.proto
                ));
            } else {
                lines.push(format!(
                    "firewall-cmd --permanent --zone={} --add-rich-rule='rule {src}port port=\"{}\" protocol=\"{}\" {verdict}'",
                    zone_of(iface),
                    firewalld_port(r),
                    p.proto
                ));
            }
        }
    }
    Some(lines)
}

/// ufw commands for a typed rule: `prepend` when it goes before a ufw
/// rule (or is a deny), `out` for the output direction.
fn ufw_lines(rule: &NewRule, prepend: bool, out: bool) -> Option<Vec<String>> {
    let p = parts(rule)?;
    let verb = match (p.accept, prepend || !p.accept) {
        (true, true) => "prepend allow",
        (true, false) => "allow",
        (false, _) => "prepend deny",
    };
    let ons: Vec<Option<&String>> = if p.ifaces.is_empty() {
        vec![None]
    } else {
        p.ifaces.iter().map(Some).collect()
    };
    let mut lines = Vec::new();
    for on in ons {
        let on = on
            .map(|i| format!("{} on {i} ", if out { "out" } else { "in" }))
            .unwrap_or_else(|| if out { "out ".into() } else { String::new() });
        for ports in ufw_ports(p.ports) {
            let line = |verb: &str, addr: &str| {
                if out {
                    format!("ufw {verb} {on}proto {} to {addr} port {ports}", p.proto)
                } else {
                    format!(
                        "ufw {verb} {on}proto {} from {addr} to any port {ports}",
                        p.proto
                    )
                }
            };
            match p.addr {
                None => lines.push(line(verb, "any")),
                Some((fam, false, list)) => {
                    let _ = fam;
                    lines.extend(list.iter().map(|n| line(verb, &n.to_string())));
                }
                Some((fam, true, list)) => {
                    // Every address of the family, with the exceptions
                    // above it (ufw has no negation).
                    let all = AddrSet::all(fam).to_prefixes()[0].to_string();
                    lines.push(line(verb, &all));
                    let other = if p.accept {
                        "prepend deny"
                    } else {
                        "prepend allow"
                    };
                    lines.extend(list.iter().map(|n| line(other, &n.to_string())));
                }
            }
        }
    }
    Some(lines)
}

/// The other managers' texts for the rules of `changes`.
fn render_others(
    manager: Manager,
    changes: &[Change],
    zones: &[String],
    out: bool,
) -> (Option<String>, Option<String>) {
    let rules: Vec<(&NewRule, bool)> = changes
        .iter()
        .filter_map(|c| match c {
            Change::InsertRule { at, rule, .. } => Some((rule, at.chain.starts_with("ufw"))),
            Change::AddRule { rule, .. } => Some((rule, false)),
            _ => None,
        })
        .collect();
    let only_rules = changes
        .iter()
        .all(|c| matches!(c, Change::InsertRule { .. } | Change::AddRule { .. }));
    let firewalld = (manager == Manager::Firewalld && only_rules && !out)
        .then(|| {
            let mut lines = Vec::new();
            for (r, _) in &rules {
                lines.extend(firewalld_lines(r, zones)?);
            }
            lines.dedup();
            lines.push("firewall-cmd --reload".into());
            Some(cap(lines))
        })
        .flatten();
    let ufw = (manager == Manager::Ufw && only_rules)
        .then(|| {
            let mut lines = Vec::new();
            for (r, prepend) in &rules {
                lines.extend(ufw_lines(r, *prepend, out)?);
            }
            Some(cap(lines))
        })
        .flatten();
    (firewalld, ufw)
}

fn plan(manager: Manager, changes: Vec<Change>, zones: &[String], out: bool) -> Plan {
    let (firewalld, ufw) = render_others(manager, &changes, zones, out);
    Plan {
        changes,
        firewalld,
        ufw,
    }
}

/// A candidate that changes a set's elements (no firewalld or ufw text:
/// those managers keep their own sets).
pub(crate) fn element_plan(manager: Manager, change: Change) -> Plan {
    plan(manager, vec![change], &[], false)
}

fn all_ifaces(accesses: &[Access]) -> Vec<String> {
    let set: BTreeSet<&String> = accesses.iter().flat_map(|a| a.ifaces.iter()).collect();
    set.into_iter().cloned().collect()
}

/// The candidate for a missing inbound opening: accept exactly
/// `accesses`, before the refusing rule (or at the end of the refusing
/// policy's chain). `private`: limit the accept to the accesses'
/// interfaces (a private-network requirement).
pub(crate) fn open_inbound(
    manager: Manager,
    blocker: Option<&DecidedBy>,
    proto: Proto,
    accesses: &[Access],
    private: bool,
) -> Result<Plan, String> {
    let d = blocker.ok_or_else(|| {
        "no single rule refuses this traffic (forwarded after NAT?): check the nat chains"
            .to_string()
    })?;
    let fam = table_family(d);
    let mut changes = Vec::new();
    for a in accesses.iter().filter(|a| family_fits(fam, &a.sources)) {
        let ifaces = private.then_some(a.ifaces.as_slice());
        let rule = access_rule(fam, ifaces, a, AddrField::Saddr, proto, RuleVerdict::Accept)?;
        changes.push(place(d, rule));
    }
    if changes.len() > MAX_LINES {
        return Err(format!("the fix would take {} rules", changes.len()));
    }
    Ok(plan(manager, changes, &all_ifaces(accesses), false))
}

/// The name of the table and chain the audit creates when no chain decides
/// (a host without a ruleset).
pub const OWN_TABLE: &str = "portwarden";

/// The candidates for an excess opening (or an exposed listener's opening),
/// best first: delete the accepting rule when all it accepts is excess
/// (`delete_ok`); a `drop` for exactly `accesses` before it (or at the end
/// of the accepting policy's chain); with no deciding chain, a new table
/// whose input chain accepts established and related packets first.
pub(crate) fn close_inbound(
    manager: Manager,
    decided_by: Option<&DecidedBy>,
    delete_ok: bool,
    proto: Proto,
    accesses: &[Access],
) -> Result<Vec<Plan>, String> {
    let zones = all_ifaces(accesses);
    let mut plans = Vec::new();
    // (A legacy rule is not deleted: a drop goes before it.)
    let legacy = decided_by.is_some_and(|d| legacy_chain(d).is_some());
    if let (Some(DecidedBy::Rule(r)), true, false) = (decided_by, delete_ok, legacy) {
        plans.push(plan(
            manager,
            vec![Change::DeleteRule {
                at: ChainRef {
                    family: r.family,
                    table: r.table.clone(),
                    chain: r.chain.clone(),
                },
                handle: r.handle,
            }],
            &zones,
            false,
        ));
    }
    let drops = |fam: Family| -> Result<Vec<NewRule>, String> {
        accesses
            .iter()
            .filter(|a| family_fits(fam, &a.sources))
            .map(|a| {
                access_rule(
                    fam,
                    Some(&a.ifaces),
                    a,
                    AddrField::Saddr,
                    proto,
                    RuleVerdict::Drop,
                )
            })
            .collect()
    };
    let drop_plan = match decided_by {
        Some(d) => drops(table_family(d)).map(|rules| {
            let changes: Vec<Change> = rules.into_iter().map(|r| place(d, r)).collect();
            plan(manager, changes, &zones, false)
        }),
        None => drops(Family::Inet).map(|rules| {
            let at = ChainRef {
                family: Family::Inet,
                table: OWN_TABLE.into(),
                chain: "input".into(),
            };
            let mut changes = vec![
                Change::AddTable {
                    family: Family::Inet,
                    table: OWN_TABLE.into(),
                },
                Change::AddBaseChain {
                    at: at.clone(),
                    hook: crate::snapshot::Hook::Input,
                    priority: -1,
                    policy: crate::snapshot::Policy::Accept,
                },
                // Replies to the host's own connections, and packets of
                // connections already accepted, before any drop.
                Change::AddRule {
                    at: at.clone(),
                    rule: NewRule::established_related(),
                },
            ];
            changes.extend(rules.into_iter().map(|rule| Change::AddRule {
                at: at.clone(),
                rule,
            }));
            plan(manager, changes, &zones, false)
        }),
    };
    match drop_plan {
        Ok(p) if p.changes.len() <= MAX_LINES + 3 => plans.push(p),
        Ok(p) => {
            if plans.is_empty() {
                return Err(format!("the fix would take {} rules", p.changes.len()));
            }
        }
        Err(e) if plans.is_empty() => return Err(e),
        Err(_) => {}
    }
    Ok(plans)
}

/// The candidate for a blocked outbound connection: accept it before the
/// refusing rule (or at the end of the refusing policy's chain).
pub(crate) fn open_outbound(
    manager: Manager,
    blocker: &DecidedBy,
    proto: Proto,
    peers: &Peers,
    ports: &PortSet,
) -> Result<Plan, String> {
    let fam = table_family(blocker);
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
    let mut changes = Vec::new();
    for t in targets.iter().filter(|t| family_fits(fam, t)) {
        let a = Access {
            ifaces: Vec::new(),
            sources: t.clone(),
            ports: ports.clone(),
        };
        let rule = access_rule(fam, None, &a, AddrField::Daddr, proto, RuleVerdict::Accept)?;
        changes.push(place(blocker, rule));
    }
    Ok(plan(manager, changes, &[], true))
}

/// The candidate for replies of an outbound connection that the input path
/// refuses: accept established and related packets before the refusing
/// rule (or at the end of the refusing policy's chain).
pub(crate) fn accept_replies(manager: Manager, blocker: &DecidedBy) -> Result<Plan, String> {
    Ok(plan(
        manager,
        vec![place(blocker, NewRule::established_related())],
        &[],
        false,
    ))
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
