//! The audit: what the live ruleset, the host's listening sockets and its
//! declared roles mean together, as findings.
//!
//! [`audit`] is pure: it reads an [`AuditInput`] (the snapshot, an
//! [`Evaluator`] built from it and the host's routes, the [`Exposure`]
//! computed once from that evaluator, the listeners, the resolved
//! requirements and the host configuration) and returns a [`Report`]. No
//! netlink, no files; the CLI gathers the inputs (`portwarden audit`).
//!
//! # Finding kinds
//!
//! - `missing-opening`: part of a required inbound connection (protocol,
//!   ports, peer addresses) that the ruleset does not accept, each source
//!   on the interface the host routes it through (where its traffic
//!   arrives; [`region::routed_sources`]) or that `[peer_interfaces]` pins
//!   its group to, restricted to the private interfaces for `scope =
//!   "private"`, and on a local address of that interface (IPv6 link-local
//!   addresses excepted). The exact uncovered port sub-ranges and source
//!   prefixes are reported, each with the rule or policy that refuses it
//!   (the evaluator's `explain` on a probe from each uncovered piece);
//!   pieces refused by the same rule or policy at ports needed by the same
//!   requirements form one finding (one hole), listing them in `needed_by`. A
//!   requirement with `partial_ok` that is partly accepted gives
//!   `partial-opening` instead (default severity `ok`). Sources the host's
//!   reverse-path filtering refuses (`rp_filter`, `fib saddr . iif` rules)
//!   are one note, never a finding.
//! - Alternatives (`any_of` in the catalog): a requirement is met when one
//!   alternative is accepted (inbound: wherever its peers need it; outbound:
//!   nothing refuses it); only when none is, its `missing-opening`,
//!   `partial-opening` or `outbound-blocked` findings are those of the first
//!   alternative, naming every alternative in the summary, and their fix
//!   opens the first.
//! - `arp-refused`: an `arp` family chain refuses the ARP exchange for a
//!   local IPv4 address on an interface (see [`crate::eval::arp`]); a
//!   refusal that depends on a rule not decided is a note.
//! - `not-checked`: a requirement that could not be checked because a
//!   `private_interfaces` or `[peer_interfaces]` entry matches no interface.
//! - `excess-opening`: what the ruleset accepts from non-loopback interfaces
//!   that no requirement of the selected roles and no `[[allow]]` entry
//!   accounts for, as port intervals and source prefixes; one finding per
//!   accepting rule (or policy) and protocol, across interfaces and addresses.
//! - `exposed-listener`: a socket not bound to loopback that the ruleset lets
//!   sources reach that no requirement or `[[allow]]` entry wants there
//!   (in either family alike), with the owning process; on a port a role
//!   requires from other peers it is "open to more sources than" the role
//!   needs.
//! - `not-listening`: a required inbound port whose service should listen
//!   (`listen = true` in the catalog) without a matching socket.
//! - `outbound-blocked`: part of a required outbound connection (protocol,
//!   ports, peer addresses) that the output path refuses, decided by the
//!   evaluator's `explain_output` per port run and peer prefix: the exact
//!   blocked port sub-ranges and peer prefixes, one finding per refusing
//!   rule or policy. See [`outbound`]; what the evaluator cannot decide
//!   becomes a note, never a finding.
//!
//! Where the evaluator answers `unknown` (the exposure's openings with
//! verdict `unknown`), nothing is concluded: the report's `notes` say which
//! ports and addresses could not be decided and why.
//!
//! # Severities and ids
//!
//! Severity per kind comes from the configuration's `[severity]` (defaults:
//! `missing-opening`, `exposed-listener`, `outbound-blocked`, `not-checked` critical;
//! `excess-opening`, `not-listening` warning; `partial-opening` ok); a kind
//! set to `ignore` is dropped. Each finding's `id` is 12 hex digits of a
//! hash of kind, role, direction, protocol, ports, peers and interfaces: the
//! same finding gets the same id in every run, whatever the order of rules,
//! openings or requirements.

pub mod change;
pub mod findings;
pub mod fix;
pub mod legacy_change;
pub mod netjson;
pub mod outbound;
pub(crate) mod prove;
pub mod region;
mod setfix;
#[cfg(test)]
mod tests;

use crate::catalog::{Direction, Proto, ResolvedRequirement};
use crate::config::{FindingKind, HostConfig, Severity};
use crate::eval::{DecidedBy, Evaluator, Exposure, RuleRef};
use crate::host::{Listener, Process};
use crate::ports::PortSet;
use crate::snapshot::{Family, Policy, Snapshot, TableText};
use ipnet::IpNet;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

pub use fix::{Fix, Manager};

/// Everything the audit looks at. Build the evaluator from the same
/// snapshot, and the exposure from that evaluator.
#[derive(Clone, Copy)]
pub struct AuditInput<'a> {
    /// The ruleset.
    pub snapshot: &'a Snapshot,
    /// The snapshot indexed for evaluation, with the host's routes.
    pub evaluator: &'a Evaluator,
    /// What the ruleset accepts ([`Evaluator::exposure`]), computed once.
    pub exposure: &'a Exposure,
    /// Listening TCP sockets and bound UDP sockets.
    pub listeners: &'a [Listener],
    /// The requirements of the host's roles ([`crate::catalog::Catalog::resolve`]).
    pub requirements: &'a [ResolvedRequirement],
    /// The host configuration (peers, private interfaces, allowlist, severities).
    pub config: &'a HostConfig,
    /// Which fixes are proven (the others say they were not).
    pub proofs: Proofs,
}

/// Which fixes an audit proves: each proof copies and recompiles the
/// ruleset and computes its exposure again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Proofs {
    /// Within a work budget that shrinks as the ruleset grows (at most 256,
    /// at least 8), and none on a ruleset of more than 5,000 rules or 50,000
    /// set elements: what the daemon does after every change, and `audit`
    /// by default.
    #[default]
    Budgeted,
    /// Every fix, up to 256, whatever the ruleset's size
    /// (`audit --prove-all`: on a 20,000-rule host about a second each).
    All,
}

/// Where a finding's decision comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Evidence {
    /// A rule that accepts or refuses the traffic.
    Rule {
        /// Table family.
        family: Family,
        /// Table name.
        table: String,
        /// Chain name.
        chain: String,
        /// Rule handle.
        handle: u64,
        /// The rule as nft would list it (approximately: rebuilt from the
        /// decoded expressions).
        text: String,
    },
    /// A base chain's policy.
    Policy {
        /// Table family.
        family: Family,
        /// Table name.
        table: String,
        /// Chain name.
        chain: String,
        /// The policy.
        policy: Policy,
    },
    /// A listening socket.
    Listener {
        /// Protocol.
        proto: Proto,
        /// Bound address (unspecified for a wildcard bind).
        addr: IpAddr,
        /// Port.
        port: u16,
        /// Bound device, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        dev: Option<String>,
        /// The owning process, when known.
        process: Option<Process>,
        /// The systemd unit the socket belongs to, when known (from its
        /// cgroup; needs no privilege, unlike `process`).
        #[serde(skip_serializing_if = "Option::is_none")]
        unit: Option<String>,
        /// When `unit` is a user manager's unit: that user's uid.
        #[serde(skip_serializing_if = "Option::is_none")]
        unit_user: Option<u32>,
    },
    /// Something that is not a rule, policy or socket (e.g. "no socket listens").
    Note {
        /// What was observed.
        text: String,
    },
}

impl Evidence {
    /// The evidence for a rule or policy that decided a verdict.
    pub fn decided_by(snapshot: &Snapshot, d: &DecidedBy) -> Evidence {
        Evidence::from_decider(d, |r| {
            rule_text_of(snapshot, r.family, &r.table, &r.chain, r.handle).or_else(|| {
                crate::snapshot::legacy::rule_line(
                    &snapshot.legacy,
                    r.family,
                    &r.table,
                    &r.chain,
                    r.handle,
                )
            })
        })
    }

    /// The evidence for `d`, with the text of a rule from `text` (inline
    /// sets cut to their first elements and their size).
    fn from_decider(d: &DecidedBy, text: impl FnOnce(&RuleRef) -> Option<String>) -> Evidence {
        match d {
            DecidedBy::Rule(r) => Evidence::Rule {
                family: r.family,
                table: r.table.clone(),
                chain: r.chain.clone(),
                handle: r.handle,
                text: text(r)
                    .map_or_else(|| "(rule not in the snapshot)".into(), |t| shorten_sets(&t)),
            },
            DecidedBy::Policy(p) => Evidence::Policy {
                family: p.family,
                table: p.table.clone(),
                chain: p.chain.clone(),
                policy: p.policy,
            },
        }
    }

    /// One line, for the text report.
    pub fn line(&self) -> String {
        match self {
            Evidence::Rule {
                family,
                table,
                chain,
                handle,
                text,
            } => format!("table {family} {table} chain {chain} handle {handle}: {text}"),
            Evidence::Policy {
                family,
                table,
                chain,
                policy,
            } => format!(
                "table {family} {table} chain {chain}: policy {}",
                policy_word(*policy)
            ),
            Evidence::Listener {
                proto,
                addr,
                port,
                dev,
                process,
                unit,
                unit_user,
            } => {
                let at = match addr {
                    IpAddr::V6(_) => format!("[{addr}]:{port}"),
                    IpAddr::V4(_) => format!("{addr}:{port}"),
                };
                let dev = dev.as_ref().map(|d| format!("%{d}")).unwrap_or_default();
                let who =
                    crate::host::sockets::owner_text(process.as_ref(), unit.as_deref(), *unit_user)
                        .unwrap_or_else(|| "unknown process".into());
                format!("{proto} {at}{dev} listened on by {who}")
            }
            Evidence::Note { text } => text.clone(),
        }
    }
}

/// Inline sets (`{ a, b, ... }`) of more than [`SET_SHOWN`] elements cut to
/// the first ones and the count: a rule with an anonymous blocklist would
/// otherwise put every element in the report.
pub(crate) fn shorten_sets(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(4096));
    let mut rest = text;
    while let Some(open) = rest.find("{ ") {
        let Some(len) = rest[open..].find(" }") else {
            break;
        };
        out.push_str(&rest[..open]);
        let inner = &rest[open + 2..open + len];
        let elems: Vec<&str> = inner.split(", ").collect();
        if elems.len() > SET_SHOWN {
            out.push_str("{ ");
            out.push_str(&elems[..SET_SHOWN].join(", "));
            out.push_str(&format!(", ... ({} elements) }}", elems.len()));
        } else {
            out.push_str(&rest[open..open + len + 2]);
        }
        rest = &rest[open + len + 2..];
    }
    out.push_str(rest);
    out
}

/// How many elements of an inline set a rule's text shows.
const SET_SHOWN: usize = 6;

fn policy_word(p: Policy) -> &'static str {
    match p {
        Policy::Accept => "accept",
        Policy::Drop => "drop",
    }
}

/// The nft text of a rule of the snapshot (interface indexes stay numbers:
/// the snapshot does not name them).
fn rule_text_of(
    snapshot: &Snapshot,
    family: Family,
    table: &str,
    chain: &str,
    handle: u64,
) -> Option<String> {
    let t = snapshot
        .tables
        .iter()
        .find(|t| t.family == family && t.name == table)?;
    let r = t.chain(chain)?.rules.iter().find(|r| r.handle == handle)?;
    Some(crate::snapshot::rule_text(t, r, &|_| None))
}

/// The snapshot's rules by table, chain and handle, with a renderer per
/// table: evidence for thousands of findings without a search of the
/// ruleset (and of its sets) for each.
pub(crate) struct RuleTexts<'a> {
    tables: HashMap<(Family, &'a str), TableRules<'a>>,
    /// The legacy iptables tables (their rules written as
    /// `iptables-save` does).
    legacy: &'a [crate::snapshot::legacy::LegacyTable],
}

/// One table's renderer and its rules by chain and handle.
type TableRules<'a> = (
    TableText<'a>,
    HashMap<(&'a str, u64), &'a crate::snapshot::Rule>,
);

impl<'a> RuleTexts<'a> {
    /// Indexes every rule of the snapshot.
    pub fn new(snapshot: &'a Snapshot) -> RuleTexts<'a> {
        let tables = snapshot
            .tables
            .iter()
            .map(|t| {
                let rules = t
                    .chains
                    .iter()
                    .flat_map(|c| {
                        c.rules
                            .iter()
                            .map(move |r| ((c.name.as_str(), r.handle), r))
                    })
                    .collect();
                ((t.family, t.name.as_str()), (TableText::new(t), rules))
            })
            .collect();
        RuleTexts {
            tables,
            legacy: &snapshot.legacy,
        }
    }

    /// A rule of the snapshot.
    pub fn rule(&self, r: &RuleRef) -> Option<&'a crate::snapshot::Rule> {
        let (_, rules) = self.tables.get(&(r.family, r.table.as_str()))?;
        rules.get(&(r.chain.as_str(), r.handle)).copied()
    }

    /// [`Evidence::decided_by`], from the index.
    pub fn evidence(&self, d: &DecidedBy) -> Evidence {
        Evidence::from_decider(d, |r| {
            let Some((tt, rules)) = self.tables.get(&(r.family, r.table.as_str())) else {
                return crate::snapshot::legacy::rule_line(
                    self.legacy,
                    r.family,
                    &r.table,
                    &r.chain,
                    r.handle,
                );
            };
            let rule = rules.get(&(r.chain.as_str(), r.handle))?;
            Some(tt.rule_text(rule, &|_| None))
        })
    }
}

/// Part of a finding: what some interfaces and local addresses see (every
/// interface of the piece with every address of it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Piece {
    /// Input interfaces.
    pub interfaces: Vec<String>,
    /// Local addresses.
    pub to: Vec<IpAddr>,
    /// Ports.
    pub ports: PortSet,
    /// Peer prefixes. In JSON, `peers` lists the first
    /// [`PEERS_LISTED`](netjson::PEERS_LISTED) and `peer_count` counts them all.
    #[serde(flatten, serialize_with = "netjson::serialize_capped")]
    pub peers: Vec<IpNet>,
}

/// A role's requirement that a finding concerns.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Need {
    /// Role id.
    pub role: String,
    /// Requirement id within the role.
    pub requirement: String,
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable id: 12 hex digits (see the module docs).
    pub id: String,
    /// Severity, from the configuration.
    pub severity: Severity,
    /// What kind of finding.
    pub kind: FindingKind,
    /// The role whose requirement it concerns (`None`: no role requires
    /// it); the first of `needed_by`.
    pub role: Option<String>,
    /// The requirement id within the role; the first of `needed_by`.
    pub requirement: Option<String>,
    /// Every role and requirement the finding concerns (one hole needed by
    /// several requirements or included roles is one finding), sorted;
    /// empty when no role requires it.
    pub needed_by: Vec<Need>,
    /// Direction of the connections.
    pub direction: Direction,
    /// Protocol.
    pub proto: Proto,
    /// Ports, as `[first, last]` intervals.
    pub ports: PortSet,
    /// Peer prefixes (sources for inbound, destinations for outbound). In
    /// JSON, `peers` lists the first [`PEERS_LISTED`](netjson::PEERS_LISTED)
    /// and `peer_count` counts them all.
    #[serde(flatten, serialize_with = "netjson::serialize_capped")]
    pub peers: Vec<IpNet>,
    /// Interfaces concerned (inbound; empty for outbound).
    pub interfaces: Vec<String>,
    /// One sentence saying what is wrong.
    pub summary: String,
    /// The rules, policies or sockets behind the finding.
    pub evidence: Vec<Evidence>,
    /// Suggested change (none for `not-listening`: start the service).
    pub fix: Option<Fix>,
    /// Per interfaces and local addresses: exactly which ports and peers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pieces: Vec<Piece>,
    /// For a requirement with alternatives (`any_of` in the catalog), all of
    /// them, in the catalog's order: none is open, and `ports` are (part of)
    /// the first, which the fix opens. Empty otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<PortSet>,
}

/// The audit's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Ruleset generation the snapshot was taken at.
    pub generation: u32,
    /// Findings, most severe first.
    pub findings: Vec<Finding>,
    /// What could not be decided, and other remarks.
    pub notes: Vec<String>,
}

impl Report {
    /// The most severe finding's severity (`Ok` when there is none).
    pub fn worst(&self) -> Severity {
        self.findings
            .iter()
            .map(|f| f.severity)
            .max()
            .unwrap_or(Severity::Ok)
            .max(Severity::Ok)
    }

    /// Exit code in the monitoring-plugin convention: 0 nothing to warn
    /// about, 1 warnings, 2 criticals.
    pub fn exit_code(&self) -> u8 {
        match self.worst() {
            Severity::Critical => crate::exit::CRITICAL,
            Severity::Warning => crate::exit::WARNINGS,
            Severity::Ok | Severity::Ignore => crate::exit::OK,
        }
    }

    /// `{"generation": N, "findings": [...], "notes": [...]}`.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("report serialises")
    }
}

/// A finding before severity and id are assigned.
#[derive(Clone, Debug)]
pub(crate) struct Draft {
    pub kind: FindingKind,
    pub role: Option<String>,
    pub requirement: Option<String>,
    /// Every requirement concerned; when empty, `role`/`requirement` alone.
    pub needed_by: Vec<Need>,
    pub direction: Direction,
    pub proto: Proto,
    pub ports: PortSet,
    pub peers: Vec<IpNet>,
    pub interfaces: Vec<String>,
    pub summary: String,
    pub evidence: Vec<Evidence>,
    pub fix: Option<prove::Fixing>,
    pub pieces: Vec<Piece>,
    /// Distinguishes drafts whose other id fields coincide (the blocker).
    pub tiebreak: String,
}

/// FNV-1a, 64 bits: stable across runs and platforms (unlike `DefaultHasher`).
pub(crate) fn fnv1a(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn id_text(d: &Draft) -> String {
    let mut ifaces = d.interfaces.clone();
    ifaces.sort();
    let mut peers: Vec<String> = d.peers.iter().map(ToString::to_string).collect();
    peers.sort();
    format!(
        "{}|{}|{}|{}|{}|{}|{}",
        serde_json::to_value(d.kind)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default(),
        d.role.as_deref().unwrap_or("-"),
        d.direction,
        d.proto,
        d.ports,
        peers.join(","),
        ifaces.join(",")
    )
}

/// Assigns severities (dropping `ignore`d kinds) and stable, unique ids, and
/// sorts: most severe first, then by role, kind, protocol, ports and id.
pub(crate) fn finish(
    drafts: Vec<Draft>,
    config: &HostConfig,
) -> Vec<(Finding, Option<prove::Pending>)> {
    let mut keyed: Vec<(String, Draft)> = drafts
        .into_par_iter()
        .filter(|d| config.severity.of(d.kind) != Severity::Ignore)
        .map(|d| (id_text(&d), d))
        .collect();
    // Coinciding id texts (same region, different blockers): add the tiebreak.
    let mut count: HashMap<&str, usize> = HashMap::new();
    for (t, _) in &keyed {
        *count.entry(t.as_str()).or_default() += 1;
    }
    let repeated: Vec<bool> = keyed.iter().map(|(t, _)| count[t.as_str()] > 1).collect();
    for ((t, d), again) in keyed.iter_mut().zip(repeated) {
        if again {
            t.push('|');
            t.push_str(&d.tiebreak);
        }
    }
    keyed.par_sort_by(|a, b| a.0.cmp(&b.0));
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut out: Vec<(Finding, Option<prove::Pending>)> = keyed
        .into_iter()
        .map(|(mut t, d)| {
            while !seen.insert(format!("{:012x}", fnv1a(&t) & 0xffff_ffff_ffff)) {
                t.push('+');
            }
            let needed_by = if d.needed_by.is_empty() {
                match (&d.role, &d.requirement) {
                    (Some(role), Some(requirement)) => vec![Need {
                        role: role.clone(),
                        requirement: requirement.clone(),
                    }],
                    _ => Vec::new(),
                }
            } else {
                d.needed_by
            };
            let (fix, pending) = match d.fix {
                None => (None, None),
                Some(prove::Fixing::Done(f)) => (Some(f), None),
                Some(prove::Fixing::Pending(p)) => (None, Some(p)),
            };
            let f = Finding {
                id: format!("{:012x}", fnv1a(&t) & 0xffff_ffff_ffff),
                severity: config.severity.of(d.kind),
                kind: d.kind,
                role: d.role,
                requirement: d.requirement,
                needed_by,
                direction: d.direction,
                proto: d.proto,
                ports: d.ports,
                peers: d.peers,
                interfaces: d.interfaces,
                summary: d.summary,
                evidence: d.evidence,
                fix,
                pieces: d.pieces,
                alternatives: Vec::new(),
            };
            (f, pending)
        })
        .collect();
    out.par_sort_by(|(a, _), (b, _)| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.role.is_none().cmp(&b.role.is_none()))
            .then_with(|| a.role.cmp(&b.role))
            .then_with(|| kind_order(a.kind).cmp(&kind_order(b.kind)))
            .then_with(|| a.proto.cmp(&b.proto))
            .then_with(|| a.ports.ranges().cmp(b.ports.ranges()))
            .then_with(|| a.id.cmp(&b.id))
    });
    out
}

fn kind_order(k: FindingKind) -> u8 {
    match k {
        FindingKind::NotChecked => 0,
        FindingKind::ArpRefused => 0,
        FindingKind::MissingOpening => 0,
        FindingKind::PartialOpening => 1,
        FindingKind::OutboundBlocked => 2,
        FindingKind::NotListening => 3,
        FindingKind::ExposedListener => 4,
        FindingKind::ExcessOpening => 5,
    }
}

/// Audits the host: every finding kind, severities applied, notes collected.
pub fn audit(input: &AuditInput<'_>) -> Report {
    let manager = Manager::detect(input.snapshot, input.config.remediation.manager);
    let ctx = findings::Ctx::new(input, manager);
    // The kinds that probe the evaluator (missing openings, outbound) side
    // by side with those that walk the exposure; excess openings, thousands
    // of findings on a big host, are then shared out between the cores.
    let ((mut drafts, mut notes), (more, more_notes)) = rayon::join(
        || {
            let mut notes = Vec::new();
            let mut drafts = findings::missing(&ctx, &mut notes);
            drafts.extend(findings::not_checked(&ctx, &mut notes));
            drafts.extend(findings::arp_refused(&ctx, &mut notes));
            drafts.extend(findings::not_listening(&ctx));
            drafts.extend(outbound::blocked(&ctx, &mut notes));
            (drafts, notes)
        },
        || {
            let mut notes = Vec::new();
            let mut drafts = findings::excess(&ctx, &mut notes);
            drafts.extend(findings::exposed_listeners(&ctx));
            (drafts, notes)
        },
    );
    drafts.extend(more);
    notes.extend(more_notes);
    // Which interface a peer's traffic arrives on is the main table's
    // answer (`region::routed_sources`); say so where rules could change it.
    let routes = input.evaluator.routes();
    for v6 in [false, true] {
        if routes.family_rules(v6) != crate::host::Rule::defaults(v6) {
            notes.push(format!(
                "{} policy routing rules (ip rule) other than the kernel's defaults: the interface each peer's traffic is checked on comes from the main table's routes, which the rules may override",
                if v6 { "IPv6" } else { "IPv4" }
            ));
        }
    }
    notes.sort();
    notes.dedup();
    let mut findings = finish(drafts, input.config);
    // The fixes are proven now that every finding is known: the most severe
    // first, so that on a host with more findings than the proof budget the
    // criticals get theirs, whatever the order the kinds were worked out in.
    let waiting: Vec<usize> = (0..findings.len())
        .filter(|&i| findings[i].1.is_some())
        .collect();
    let pending = waiting
        .iter()
        .filter_map(|&i| findings[i].1.take())
        .collect();
    let proven = ctx.prover().prove_pending(&ctx, pending);
    for (i, fix) in waiting.into_iter().zip(proven) {
        findings[i].0.fix = Some(fix);
    }
    let mut findings: Vec<Finding> = findings.into_iter().map(|(f, _)| f).collect();
    name_alternatives(&mut findings, input.requirements);
    Report {
        generation: input.snapshot.generation,
        findings,
        notes,
    }
}

/// Fills `alternatives` of the findings about a requirement with
/// alternatives (missing, partly open or blocked: the kinds that honour
/// them).
fn name_alternatives(findings: &mut [Finding], requirements: &[ResolvedRequirement]) {
    if requirements.iter().all(|r| r.any_of.is_empty()) {
        return;
    }
    for f in findings.iter_mut().filter(|f| {
        matches!(
            f.kind,
            FindingKind::MissingOpening
                | FindingKind::PartialOpening
                | FindingKind::OutboundBlocked
        )
    }) {
        let with = f.needed_by.iter().find_map(|n| {
            requirements.iter().find(|r| {
                !r.any_of.is_empty() && r.role == n.role && r.requirement == n.requirement
            })
        });
        if let Some(r) = with {
            f.alternatives = r.any_of.clone();
        }
    }
}
