//! A fix as a typed change to the ruleset: what to insert, add or delete.
//!
//! A [`Change`] can be applied to a [`Snapshot`] (the rule built as the
//! expressions `nft` would load, so the evaluator runs it as the kernel
//! would) and rendered as the `nft` command that makes the same change
//! ([`Change::nft`]); the firewalld and ufw texts of a fix are rendered
//! from the same [`NewRule`] values. The audit proves a fix on a copy of
//! the snapshot before it shows it (`audit::prove`).

use crate::addrs::AddrFamily;
use crate::catalog::Proto;
use crate::ports::{PortRange, PortSet};
use crate::snapshot::value::Datatype;
use crate::snapshot::{
    flags, value, BaseHook, BitwiseOp, Bytes, Chain, CmpOp, CtKey, Element, Expr, Family, Hook,
    Key, KeyType, MetaKey, PayloadBase, Policy, Reg, Rule, Set, Snapshot, Table, Verdict,
};
use ipnet::IpNet;
use serde::Serialize;
use std::fmt;

pub use super::legacy_change::LegacyChainRef;

/// At most this many addresses, ports or names in one statement: a fix
/// that would need more is not offered (it would not be readable, and a
/// 50,000-element command cannot run).
pub const MAX_ELEMENTS: usize = 64;

/// Which address of the packet a statement tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AddrField {
    /// The source address (`saddr`).
    Saddr,
    /// The destination address (`daddr`).
    Daddr,
}

/// Conntrack states a rule can test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CtState {
    /// Part of a connection that has seen traffic both ways.
    Established,
    /// Related to an existing connection (ICMP errors, FTP data...).
    Related,
}

impl CtState {
    fn bit(self) -> u32 {
        match self {
            CtState::Established => 2,
            CtState::Related => 4,
        }
    }
}

/// One match of a new rule.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "match", rename_all = "lowercase")]
pub enum Stmt {
    /// `iifname "a"` or `iifname { "a", "b" }`.
    Iifname {
        /// Interface names.
        names: Vec<String>,
    },
    /// `meta nfproto ipv4|ipv6` (in an `inet` table).
    Nfproto {
        /// The family.
        family: AddrFamily,
    },
    /// `ip saddr 10.0.0.0/8`, `ip6 daddr != { ... }`.
    Addr {
        /// Source or destination.
        field: AddrField,
        /// The prefixes' family.
        family: AddrFamily,
        /// Whether the rule matches addresses outside the prefixes.
        negate: bool,
        /// The prefixes (at most [`MAX_ELEMENTS`]).
        prefixes: Vec<IpNet>,
    },
    /// `tcp dport 22`, `udp dport { 53, 2500-3300 }`.
    Dport {
        /// Protocol.
        proto: Proto,
        /// Ports.
        ports: PortSet,
    },
    /// `ct state established,related`.
    Ct {
        /// The states.
        states: Vec<CtState>,
    },
}

/// What a new rule does to the packets it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleVerdict {
    /// `accept`.
    Accept,
    /// `drop`.
    Drop,
}

/// A rule to add: matches, all of which must hold, then a verdict.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct NewRule {
    /// The matches, in order.
    pub matches: Vec<Stmt>,
    /// The verdict.
    pub verdict: RuleVerdict,
}

impl NewRule {
    /// `ct state established,related accept`: replies to the host's own
    /// connections and later packets of accepted ones.
    pub fn established_related() -> NewRule {
        NewRule {
            matches: vec![Stmt::Ct {
                states: vec![CtState::Established, CtState::Related],
            }],
            verdict: RuleVerdict::Accept,
        }
    }
}

/// A chain, by table family, table name and chain name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct ChainRef {
    /// Table family.
    pub family: Family,
    /// Table name.
    pub table: String,
    /// Chain name.
    pub chain: String,
}

impl fmt::Display for ChainRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.family, self.table, self.chain)
    }
}

/// A named set, by table family, table name and set name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct SetRef {
    /// Table family.
    pub family: Family,
    /// Table name.
    pub table: String,
    /// Set name.
    pub set: String,
}

impl fmt::Display for SetRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.family, self.table, self.set)
    }
}

/// One element of a set of addresses or of ports, as a change adds or
/// deletes it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum SetElement {
    /// An address prefix (a single address in a set without intervals).
    Prefix(IpNet),
    /// A port interval (a single port in a set without intervals).
    Ports(PortRange),
}

impl fmt::Display for SetElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // A host as a bare address: nft refuses a prefix in a set
            // without the interval flag, even a /32.
            SetElement::Prefix(n) if n.prefix_len() == n.max_prefix_len() => {
                write!(f, "{}", n.addr())
            }
            SetElement::Prefix(n) => write!(f, "{n}"),
            SetElement::Ports(r) => write!(f, "{r}"),
        }
    }
}

impl SetElement {
    /// The element's first and last key, as the kernel stores them
    /// (network byte order).
    fn keys(&self) -> (Vec<u8>, Vec<u8>) {
        match self {
            SetElement::Prefix(n) => (addr_bytes(n.network()), addr_bytes(n.broadcast())),
            SetElement::Ports(r) => (
                r.first().to_be_bytes().to_vec(),
                r.last().to_be_bytes().to_vec(),
            ),
        }
    }
}

/// One change to the ruleset.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Change {
    /// `nft add table FAMILY NAME`.
    AddTable {
        /// Family.
        family: Family,
        /// Name.
        table: String,
    },
    /// `nft add chain ... '{ type filter hook HOOK priority N; policy P; }'`.
    AddBaseChain {
        /// The new chain.
        at: ChainRef,
        /// Its hook.
        hook: Hook,
        /// Its priority.
        priority: i32,
        /// Its policy.
        policy: Policy,
    },
    /// `nft insert rule ... handle N RULE`: the rule goes just before rule `before`.
    InsertRule {
        /// The chain.
        at: ChainRef,
        /// The handle of the rule it goes before.
        before: u64,
        /// The rule.
        rule: NewRule,
    },
    /// `nft add rule ... RULE`: the rule goes at the end of the chain.
    AddRule {
        /// The chain.
        at: ChainRef,
        /// The rule.
        rule: NewRule,
    },
    /// `nft delete rule ... handle N`.
    DeleteRule {
        /// The chain.
        at: ChainRef,
        /// The rule's handle.
        handle: u64,
    },
    /// `iptables-legacy -I CHAIN N ...` (or `-A CHAIN ...`): the rule, as one
    /// legacy rule per interface, prefix and port range, before rule
    /// number `before` of a legacy chain (at its end when `None`).
    InsertLegacyRule {
        /// The legacy chain.
        at: LegacyChainRef,
        /// The 1-based number of the rule it goes before.
        before: Option<u64>,
        /// The rule.
        rule: NewRule,
    },
    /// `nft add element ... '{ E, ... }'`: elements a set does not hold yet
    /// (none overlapping one it holds).
    AddElement {
        /// The set.
        set: SetRef,
        /// The elements (at most [`MAX_ELEMENTS`]).
        elements: Vec<SetElement>,
    },
    /// `nft delete element ... '{ E, ... }'`: elements exactly as the set
    /// holds them.
    DeleteElement {
        /// The set.
        set: SetRef,
        /// The elements (at most [`MAX_ELEMENTS`]).
        elements: Vec<SetElement>,
    },
}

/// Why a change cannot be applied to a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The table does not exist (or exists already, for `AddTable`).
    #[error("table {0} {1}: {2}")]
    Table(Family, String, &'static str),
    /// The chain does not exist (or exists already).
    #[error("chain {0}: {1}")]
    Chain(String, &'static str),
    /// No rule with that handle.
    #[error("chain {0} has no rule with handle {1}")]
    Rule(String, u64),
    /// The rule does not fit the table (an IPv6 match in an `ip` table).
    #[error("{0}")]
    Misfit(String),
    /// The set does not exist, or does not hold addresses or ports.
    #[error("set {0}: {1}")]
    Set(String, &'static str),
    /// An element does not fit the set: its type, an interval in a set
    /// without intervals, an overlap with an element it holds (adding), or
    /// not held as given (deleting).
    #[error("set {0}, element {1}: {2}")]
    Element(String, String, &'static str),
}

fn family_word(f: AddrFamily) -> &'static str {
    match f {
        AddrFamily::V4 => "ip",
        AddrFamily::V6 => "ip6",
    }
}

fn braced<T: fmt::Display>(v: &[T], quote: bool) -> String {
    let item = |x: &T| {
        if quote {
            format!("\"{x}\"")
        } else {
            x.to_string()
        }
    };
    if v.len() == 1 {
        item(&v[0])
    } else {
        let parts: Vec<String> = v.iter().map(item).collect();
        format!("{{ {} }}", parts.join(", "))
    }
}

/// A prefix as the command gives it (`10.0.0.10/32`; nft lists a /32
/// without its length).
fn net_text(n: &IpNet) -> String {
    n.to_string()
}

impl fmt::Display for Stmt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stmt::Iifname { names } => write!(f, "iifname {}", braced(names, true)),
            Stmt::Nfproto { family } => write!(
                f,
                "meta nfproto {}",
                match family {
                    AddrFamily::V4 => "ipv4",
                    AddrFamily::V6 => "ipv6",
                }
            ),
            Stmt::Addr {
                field,
                family,
                negate,
                prefixes,
            } => {
                let texts: Vec<String> = prefixes.iter().map(net_text).collect();
                write!(
                    f,
                    "{} {}{} {}",
                    family_word(*family),
                    match field {
                        AddrField::Saddr => "saddr",
                        AddrField::Daddr => "daddr",
                    },
                    if *negate { " !=" } else { "" },
                    braced(&texts, false)
                )
            }
            Stmt::Dport { proto, ports } => {
                write!(f, "{proto} dport {}", braced(ports.ranges(), false))
            }
            Stmt::Ct { states } => {
                let s: Vec<&str> = states
                    .iter()
                    .map(|s| match s {
                        CtState::Established => "established",
                        CtState::Related => "related",
                    })
                    .collect();
                write!(f, "ct state {}", s.join(","))
            }
        }
    }
}

impl fmt::Display for NewRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for m in &self.matches {
            write!(f, "{m} ")?;
        }
        f.write_str(match self.verdict {
            RuleVerdict::Accept => "accept",
            RuleVerdict::Drop => "drop",
        })
    }
}

/// Quotes a rule for the shell when it holds braces, quotes or `!`.
fn shell(prefix: &str, rule: &str) -> String {
    if rule.contains(['{', '"', '!', ';']) {
        format!("{prefix} '{rule}'")
    } else {
        format!("{prefix} {rule}")
    }
}

impl Change {
    /// The `nft` command that makes this change.
    pub fn nft(&self) -> String {
        match self {
            Change::AddTable { family, table } => format!("nft add table {family} {table}"),
            Change::AddBaseChain {
                at,
                hook,
                priority,
                policy,
            } => format!(
                "nft add chain {at} '{{ type filter hook {hook} priority {priority}; policy {}; }}'",
                match policy {
                    Policy::Accept => "accept",
                    Policy::Drop => "drop",
                }
            ),
            Change::InsertRule { at, before, rule } => shell(
                &format!("nft insert rule {at} handle {before}"),
                &rule.to_string(),
            ),
            Change::AddRule { at, rule } => {
                shell(&format!("nft add rule {at}"), &rule.to_string())
            }
            Change::DeleteRule { at, handle } => format!("nft delete rule {at} handle {handle}"),
            Change::InsertLegacyRule { at, before, rule } => {
                super::legacy_change::commands(at, *before, rule)
            }
            Change::AddElement { set, elements } => {
                format!("nft add element {set} '{{ {} }}'", element_list(elements))
            }
            Change::DeleteElement { set, elements } => {
                format!("nft delete element {set} '{{ {} }}'", element_list(elements))
            }
        }
    }

    /// The new rule, if the change adds one.
    pub fn rule(&self) -> Option<&NewRule> {
        match self {
            Change::InsertRule { rule, .. }
            | Change::AddRule { rule, .. }
            | Change::InsertLegacyRule { rule, .. } => Some(rule),
            _ => None,
        }
    }
}

fn element_list(elements: &[SetElement]) -> String {
    elements
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Applies changes, in order, to a snapshot.
pub fn apply_all(snapshot: &mut Snapshot, changes: &[Change]) -> Result<(), ApplyError> {
    for c in changes {
        apply(snapshot, c)?;
    }
    Ok(())
}

fn table_mut<'s>(
    s: &'s mut Snapshot,
    family: Family,
    name: &str,
) -> Result<&'s mut Table, ApplyError> {
    s.tables
        .iter_mut()
        .find(|t| t.family == family && t.name == name)
        .ok_or_else(|| ApplyError::Table(family, name.to_string(), "no such table"))
}

/// The next free handle of a table (rules, chains and sets share the
/// kernel's per-table counter).
fn next_handle(t: &Table) -> u64 {
    let rules = t
        .chains
        .iter()
        .flat_map(|c| c.rules.iter().map(|r| r.handle));
    let chains = t.chains.iter().map(|c| c.handle);
    let sets = t.sets.iter().map(|s| s.handle);
    rules.chain(chains).chain(sets).max().unwrap_or(0) + 1
}

/// Applies one change to a snapshot.
pub fn apply(snapshot: &mut Snapshot, change: &Change) -> Result<(), ApplyError> {
    match change {
        Change::AddTable { family, table } => {
            if snapshot
                .tables
                .iter()
                .any(|t| t.family == *family && t.name == *table)
            {
                return Ok(()); // `nft add table` of an existing table is a no-op
            }
            let handle = snapshot.tables.iter().map(|t| t.handle).max().unwrap_or(0) + 1;
            snapshot.tables.push(Table {
                family: *family,
                name: table.clone(),
                handle,
                flags: 0,
                chains: Vec::new(),
                sets: Vec::new(),
                flowtables: Vec::new(),
                objects: Vec::new(),
            });
            Ok(())
        }
        Change::AddBaseChain {
            at,
            hook,
            priority,
            policy,
        } => {
            let t = table_mut(snapshot, at.family, &at.table)?;
            if t.chain(&at.chain).is_some() {
                return Err(ApplyError::Chain(at.to_string(), "exists already"));
            }
            let handle = next_handle(t);
            t.chains.push(Chain {
                name: at.chain.clone(),
                handle,
                base: Some(BaseHook {
                    kind: "filter".into(),
                    hook: *hook,
                    priority: *priority,
                    policy: *policy,
                    devices: Vec::new(),
                }),
                rules: Vec::new(),
            });
            Ok(())
        }
        Change::InsertRule { at, before, rule } => add_rule(snapshot, at, Some(*before), rule),
        Change::AddRule { at, rule } => add_rule(snapshot, at, None, rule),
        Change::DeleteRule { at, handle } => {
            let t = table_mut(snapshot, at.family, &at.table)?;
            let c = t
                .chains
                .iter_mut()
                .find(|c| c.name == at.chain)
                .ok_or_else(|| ApplyError::Chain(at.to_string(), "no such chain"))?;
            let i = c
                .rules
                .iter()
                .position(|r| r.handle == *handle)
                .ok_or_else(|| ApplyError::Rule(at.to_string(), *handle))?;
            c.rules.remove(i);
            Ok(())
        }
        Change::InsertLegacyRule { at, before, rule } => {
            super::legacy_change::apply(snapshot, at, *before, rule)
        }
        Change::AddElement { set, .. } | Change::DeleteElement { set, .. } => {
            apply_to_set(set_mut(snapshot, set)?, change)
        }
    }
}

/// Applies an element change to its set (`s`, the set the change names);
/// other changes leave it alone.
pub(crate) fn apply_to_set(s: &mut Set, change: &Change) -> Result<(), ApplyError> {
    match change {
        Change::AddElement { set, elements } => {
            for e in elements {
                let el = element_for(s, set, e)?;
                let (lo, hi) = (el.key.clone(), el.key_end.clone().unwrap_or(el.key.clone()));
                // The kernel refuses an element that overlaps one it holds
                // (nft merges them only with `auto-merge`, which the
                // snapshot does not show): not offered.
                if s.elements
                    .iter()
                    .any(|x| x.key <= hi && lo <= *x.key_end.as_ref().unwrap_or(&x.key))
                {
                    return Err(ApplyError::Element(
                        set.to_string(),
                        e.to_string(),
                        "overlaps an element the set holds",
                    ));
                }
                s.upsert(el);
            }
            Ok(())
        }
        Change::DeleteElement { set, elements } => {
            for e in elements {
                let el = element_for(s, set, e)?;
                let held = s
                    .elements
                    .iter()
                    .any(|x| x.key == el.key && x.key_end == el.key_end);
                if !held {
                    return Err(ApplyError::Element(
                        set.to_string(),
                        e.to_string(),
                        "not held by the set as given",
                    ));
                }
                s.remove(&el.key);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The named set a change concerns; it must hold addresses or ports (one
/// key, no data).
fn set_mut<'s>(snapshot: &'s mut Snapshot, set: &SetRef) -> Result<&'s mut Set, ApplyError> {
    let t = table_mut(snapshot, set.family, &set.table)?;
    let s = t
        .sets
        .iter_mut()
        .find(|s| s.name == set.set && !s.anonymous())
        .ok_or_else(|| ApplyError::Set(set.to_string(), "no such named set"))?;
    if s.is_map() || s.key.0.len() != 1 {
        return Err(ApplyError::Set(
            set.to_string(),
            "a map or a concatenation: its elements are not single addresses or ports",
        ));
    }
    Ok(s)
}

/// `e` as an element of `s`: the key type must be the element's, and a
/// set without intervals holds single values only.
fn element_for(s: &Set, set: &SetRef, e: &SetElement) -> Result<Element, ApplyError> {
    let key = &s.key.0[0];
    let fits = match e {
        SetElement::Prefix(IpNet::V4(_)) => key.id == value::IPADDR && key.len == 4,
        SetElement::Prefix(IpNet::V6(_)) => key.id == value::IP6ADDR && key.len == 16,
        SetElement::Ports(_) => key.id == value::INET_SERVICE && key.len == 2,
    };
    let misfit = |why| ApplyError::Element(set.to_string(), e.to_string(), why);
    if !fits {
        return Err(misfit("not of the set's type"));
    }
    let (lo, hi) = e.keys();
    if lo != hi && !s.interval() {
        return Err(misfit("an interval, and the set has no interval flag"));
    }
    Ok(elem(&lo, (lo != hi).then_some(hi.as_slice())))
}

fn add_rule(
    snapshot: &mut Snapshot,
    at: &ChainRef,
    before: Option<u64>,
    rule: &NewRule,
) -> Result<(), ApplyError> {
    let t = table_mut(snapshot, at.family, &at.table)?;
    let mut handle = next_handle(t);
    let mut sets = Vec::new();
    let exprs = rule_exprs(at.family, rule, &mut |set: Set| {
        let name = format!("__pwset{handle}");
        handle += 1;
        sets.push(Set {
            name: name.clone(),
            handle: handle - 1,
            ..set
        });
        name
    })?;
    let taken: Vec<&str> = t.sets.iter().map(|s| s.name.as_str()).collect();
    if sets.iter().any(|s| taken.contains(&s.name.as_str())) {
        return Err(ApplyError::Misfit("anonymous set name taken".into()));
    }
    t.sets.extend(sets);
    let c = t
        .chains
        .iter_mut()
        .find(|c| c.name == at.chain)
        .ok_or_else(|| ApplyError::Chain(at.to_string(), "no such chain"))?;
    let pos = match before {
        Some(h) => c
            .rules
            .iter()
            .position(|r| r.handle == h)
            .ok_or_else(|| ApplyError::Rule(at.to_string(), h))?,
        None => c.rules.len(),
    };
    c.rules.insert(
        pos,
        Rule {
            handle,
            position: 0,
            comment: None,
            exprs,
            incomplete: false,
        },
    );
    Ok(())
}

const R1: Reg = Reg(1);

fn meta(key: MetaKey) -> Expr {
    Expr::Meta { key, dreg: R1 }
}

fn cmp(op: CmpOp, data: &[u8]) -> Expr {
    Expr::Cmp {
        sreg: R1,
        op,
        data: Bytes::from(data),
    }
}

fn lookup(set: String, invert: bool) -> Expr {
    Expr::Lookup {
        set,
        sreg: R1,
        dreg: None,
        invert,
    }
}

fn anon_set(key: Datatype, interval: bool, elements: Vec<Element>) -> Set {
    Set {
        name: String::new(),
        handle: 0,
        flags: flags::ANONYMOUS | flags::CONSTANT | if interval { flags::INTERVAL } else { 0 },
        key: KeyType(vec![key]),
        data: None,
        timeout_ms: None,
        comment: None,
        elements,
    }
}

fn elem(key: &[u8], end: Option<&[u8]>) -> Element {
    Element {
        key: Key::from(key),
        key_end: end.map(Key::from),
        data: None,
        extra: None,
    }
}

fn ifname_bytes(name: &str) -> [u8; 16] {
    let mut b = [0u8; 16];
    let n = name.len().min(15);
    b[..n].copy_from_slice(&name.as_bytes()[..n]);
    b
}

fn addr_bytes(a: std::net::IpAddr) -> Vec<u8> {
    match a {
        std::net::IpAddr::V4(v) => v.octets().to_vec(),
        std::net::IpAddr::V6(v) => v.octets().to_vec(),
    }
}

/// The expressions `nft` loads for a rule in a table of `family`;
/// anonymous sets are handed to `add_set`, which names them.
pub fn rule_exprs(
    family: Family,
    rule: &NewRule,
    add_set: &mut dyn FnMut(Set) -> String,
) -> Result<Vec<Expr>, ApplyError> {
    let mut out = Vec::new();
    for m in &rule.matches {
        match m {
            Stmt::Iifname { names } => {
                out.push(meta(MetaKey::Iifname));
                if names.len() == 1 {
                    out.push(cmp(CmpOp::Eq, &ifname_bytes(&names[0])));
                } else {
                    let elements = names.iter().map(|n| elem(&ifname_bytes(n), None)).collect();
                    let name = add_set(anon_set(Datatype::new(value::IFNAME, 16), false, elements));
                    out.push(lookup(name, false));
                }
            }
            Stmt::Nfproto { family: f } => {
                out.push(meta(MetaKey::Nfproto));
                out.push(cmp(
                    CmpOp::Eq,
                    &[match f {
                        AddrFamily::V4 => 2,
                        AddrFamily::V6 => 10,
                    }],
                ));
            }
            Stmt::Addr {
                field,
                family: f,
                negate,
                prefixes,
            } => {
                let v6 = matches!(f, AddrFamily::V6);
                match (family, v6) {
                    (Family::Ip, true) | (Family::Ip6, false) => {
                        return Err(ApplyError::Misfit(format!(
                            "an {} address match in a {family} table",
                            family_word(*f)
                        )))
                    }
                    (Family::Inet | Family::Bridge | Family::Netdev, _) => {
                        out.push(meta(MetaKey::Nfproto));
                        out.push(cmp(CmpOp::Eq, &[if v6 { 10 } else { 2 }]));
                    }
                    _ => {}
                }
                let (off, len) = match (v6, field) {
                    (false, AddrField::Saddr) => (12, 4),
                    (false, AddrField::Daddr) => (16, 4),
                    (true, AddrField::Saddr) => (8, 16),
                    (true, AddrField::Daddr) => (24, 16),
                };
                out.push(Expr::Payload {
                    base: PayloadBase::Network,
                    offset: off,
                    len,
                    dreg: R1,
                });
                let op = if *negate { CmpOp::Neq } else { CmpOp::Eq };
                if let [net] = prefixes.as_slice() {
                    if net.prefix_len() != net.max_prefix_len() {
                        out.push(Expr::Bitwise {
                            sreg: R1,
                            dreg: R1,
                            len,
                            op: BitwiseOp::Bool,
                            mask: Some(Bytes::from(addr_bytes(net.netmask()).as_slice())),
                            xor: Some(Bytes::from(vec![0u8; len as usize].as_slice())),
                            data: None,
                        });
                    }
                    out.push(cmp(op, &addr_bytes(net.network())));
                } else {
                    let elements = prefixes
                        .iter()
                        .map(|n| elem(&addr_bytes(n.network()), Some(&addr_bytes(n.broadcast()))))
                        .collect();
                    let id = if v6 { value::IP6ADDR } else { value::IPADDR };
                    let name = add_set(anon_set(Datatype::new(id, len), true, elements));
                    out.push(lookup(name, *negate));
                }
            }
            Stmt::Dport { proto, ports } => {
                out.push(meta(MetaKey::L4proto));
                out.push(cmp(
                    CmpOp::Eq,
                    &[match proto {
                        Proto::Tcp => 6,
                        Proto::Udp => 17,
                    }],
                ));
                out.push(Expr::Payload {
                    base: PayloadBase::Transport,
                    offset: 2,
                    len: 2,
                    dreg: R1,
                });
                match ports.ranges() {
                    [r] if r.first() == r.last() => {
                        out.push(cmp(CmpOp::Eq, &r.first().to_be_bytes()))
                    }
                    [r] => out.push(Expr::Range {
                        sreg: R1,
                        op: CmpOp::Eq,
                        from: Bytes::from(r.first().to_be_bytes().as_slice()),
                        to: Bytes::from(r.last().to_be_bytes().as_slice()),
                    }),
                    rs => {
                        let elements = rs
                            .iter()
                            .map(|r| elem(&r.first().to_be_bytes(), Some(&r.last().to_be_bytes())))
                            .collect();
                        let name = add_set(anon_set(
                            Datatype::new(value::INET_SERVICE, 2),
                            true,
                            elements,
                        ));
                        out.push(lookup(name, false));
                    }
                }
            }
            Stmt::Ct { states } => {
                let bits: u32 = states.iter().map(|s| s.bit()).sum();
                out.push(Expr::Ct {
                    key: CtKey::State,
                    dir: None,
                    dreg: R1,
                });
                out.push(Expr::Bitwise {
                    sreg: R1,
                    dreg: R1,
                    len: 4,
                    op: BitwiseOp::Bool,
                    mask: Some(Bytes::from(bits.to_ne_bytes().as_slice())),
                    xor: Some(Bytes::from([0u8; 4].as_slice())),
                    data: None,
                });
                out.push(cmp(CmpOp::Neq, &[0u8; 4]));
            }
        }
    }
    out.push(Expr::Immediate {
        dreg: Reg(0),
        verdict: Some(match rule.verdict {
            RuleVerdict::Accept => Verdict::Accept,
            RuleVerdict::Drop => Verdict::Drop,
        }),
        data: None,
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::PortRange;

    fn demo_rule() -> NewRule {
        NewRule {
            matches: vec![
                Stmt::Iifname {
                    names: vec!["pw-priv".into(), "pw-pub".into()],
                },
                Stmt::Addr {
                    field: AddrField::Saddr,
                    family: AddrFamily::V4,
                    negate: true,
                    prefixes: vec![
                        "10.0.0.10/32".parse().unwrap(),
                        "10.99.0.0/24".parse().unwrap(),
                    ],
                },
                Stmt::Dport {
                    proto: Proto::Tcp,
                    ports: PortSet::from_ranges([
                        PortRange::single(22),
                        PortRange::new(2500, 2999).unwrap(),
                    ]),
                },
            ],
            verdict: RuleVerdict::Drop,
        }
    }

    /// The rule built from typed matches lists as the text the command
    /// holds (the snapshot's renderer reads the expressions back).
    #[test]
    fn built_rules_list_as_their_command_text() {
        let mut s = Snapshot::default();
        let at = ChainRef {
            family: Family::Inet,
            table: "t".into(),
            chain: "input".into(),
        };
        let changes = [
            Change::AddTable {
                family: Family::Inet,
                table: "t".into(),
            },
            Change::AddBaseChain {
                at: at.clone(),
                hook: Hook::Input,
                priority: 0,
                policy: Policy::Accept,
            },
            Change::AddRule {
                at: at.clone(),
                rule: NewRule::established_related(),
            },
            Change::AddRule {
                at: at.clone(),
                rule: demo_rule(),
            },
        ];
        apply_all(&mut s, &changes).unwrap();
        let t = &s.tables[0];
        let texts: Vec<String> = t.chains[0]
            .rules
            .iter()
            .map(|r| crate::snapshot::rule_text(t, r, &|_| None))
            .collect();
        assert_eq!(texts[0], "ct state established,related accept");
        // (The snapshot's renderer lists set elements of names unquoted.)
        assert_eq!(
            texts[1],
            "iifname { pw-priv, pw-pub } ip saddr != { 10.0.0.10, 10.99.0.0/24 } tcp dport { 22, 2500-2999 } drop"
        );
        assert_eq!(
            changes[3].nft(),
            "nft add rule inet t input 'iifname { \"pw-priv\", \"pw-pub\" } ip saddr != { 10.0.0.10/32, 10.99.0.0/24 } tcp dport { 22, 2500-2999 } drop'"
        );
    }
}
