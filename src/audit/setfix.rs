//! Fix candidates that change a named set instead of the rules: add the
//! missing peers or ports to the set an accepting rule looks them up in,
//! or delete from it the elements that make an excess opening.
//!
//! A host whose rules say `ip saddr @backup_servers tcp dport 6162 accept`
//! is kept by editing `@backup_servers`; a rule inserted in front of it
//! would work, but would not be how that host is run. These are only
//! candidates: like every fix they are shown only once `audit::prove` has
//! shown, on a copy of the snapshot, that they do exactly what the finding
//! needs and nothing else. The rules are read just enough to pick one
//! likely candidate per finding (each proof has a cost). Plain nftables
//! hosts only: firewalld and ufw keep their own sets.

use super::change::{apply_to_set, Change, SetElement, SetRef, MAX_ELEMENTS};
use super::fix::{Access, Manager};
use crate::addrs::{AddrFamily, AddrSet};
use crate::catalog::Proto;
use crate::eval::DecidedBy;
use crate::ports::{PortRange, PortSet};
use crate::snapshot::{
    value, CmpOp, Expr, MetaKey, PayloadBase, Reg, Rule, Set, Snapshot, Table, Verdict,
};
use ipnet::IpNet;
use std::collections::HashMap;

/// What a named-set lookup of a rule tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    /// The source address of a family.
    Saddr(AddrFamily),
    /// The transport destination port.
    Dport,
}

/// An accepting rule that looks one field up in one named set.
struct SetRule<'a> {
    set: &'a Set,
    field: Field,
    /// Interface names the rule requires (`iifname "x"`), if it tests one.
    iifname: Option<String>,
    /// The layer-4 protocol the rule requires, if it tests one.
    l4proto: Option<u8>,
    /// The destination ports the rule requires by a constant (`tcp dport
    /// 22`, `2500-3300`), if it tests them so.
    dports: Option<PortSet>,
}

/// What a register holds, as far as these candidates need to know.
#[derive(Clone, Copy)]
enum Loaded {
    Field(Field),
    Meta(MetaKey),
    Other,
}

fn field_of(base: PayloadBase, offset: u32, len: u32) -> Loaded {
    match (base, offset, len) {
        (PayloadBase::Network, 12, 4) => Loaded::Field(Field::Saddr(AddrFamily::V4)),
        (PayloadBase::Network, 8, 16) => Loaded::Field(Field::Saddr(AddrFamily::V6)),
        (PayloadBase::Transport, 2, 2) => Loaded::Field(Field::Dport),
        _ => Loaded::Other,
    }
}

fn ifname(data: &[u8]) -> String {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    String::from_utf8_lossy(&data[..end]).into_owned()
}

fn port(data: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes(data.get(..2)?.try_into().ok()?))
}

/// `rule` read as an accepting rule with one lookup in a named set of
/// addresses or ports (`None` for any other rule).
fn set_rule<'a>(table: &'a Table, rule: &Rule) -> Option<SetRule<'a>> {
    let accepts = matches!(
        rule.exprs.last(),
        Some(Expr::Immediate {
            dreg: Reg(0),
            verdict: Some(Verdict::Accept),
            ..
        })
    );
    if !accepts || rule.incomplete {
        return None;
    }
    let mut regs: HashMap<u32, Loaded> = HashMap::new();
    let mut found: Option<SetRule<'a>> = None;
    let (mut iifname, mut l4proto, mut dports) = (None, None, None);
    for e in &rule.exprs {
        match e {
            Expr::Payload {
                base,
                offset,
                len,
                dreg,
            } => {
                regs.insert(dreg.0, field_of(*base, *offset, *len));
            }
            Expr::Meta { key, dreg } => {
                regs.insert(dreg.0, Loaded::Meta(*key));
            }
            Expr::Lookup {
                set,
                sreg,
                dreg: None,
                invert: false,
            } => {
                let s = table.sets.iter().find(|s| s.name == *set)?;
                if s.anonymous() {
                    // `tcp dport { 22, 6162 }`: a port test of the rule.
                    if let Some(Loaded::Field(Field::Dport)) = regs.get(&sreg.0) {
                        dports = Some(ports_of(s)?);
                    }
                    continue;
                }
                let Some(Loaded::Field(field)) = regs.get(&sreg.0).copied() else {
                    return None;
                };
                if found.is_some() || s.is_map() || s.key.0.len() != 1 {
                    return None;
                }
                found = Some(SetRule {
                    set: s,
                    field,
                    iifname: None,
                    l4proto: None,
                    dports: None,
                });
            }
            Expr::Cmp {
                sreg,
                op: CmpOp::Eq,
                data,
            } => match regs.get(&sreg.0) {
                Some(Loaded::Meta(MetaKey::Iifname)) => iifname = Some(ifname(data.as_slice())),
                Some(Loaded::Meta(MetaKey::L4proto)) => l4proto = data.as_slice().first().copied(),
                Some(Loaded::Field(Field::Dport)) => {
                    let p = port(data.as_slice())?;
                    dports = Some(PortSet::from_ranges([PortRange::new(p, p).ok()?]));
                }
                _ => {}
            },
            Expr::Range {
                sreg,
                op: CmpOp::Eq,
                from,
                to,
            } => {
                if let Some(Loaded::Field(Field::Dport)) = regs.get(&sreg.0) {
                    let r = PortRange::new(port(from.as_slice())?, port(to.as_slice())?).ok()?;
                    dports = Some(PortSet::from_ranges([r]));
                }
            }
            _ => {}
        }
    }
    found.map(|f| SetRule {
        iifname,
        l4proto,
        dports,
        ..f
    })
}

/// The ports of a set of ports (elements and ranges).
fn ports_of(s: &Set) -> Option<PortSet> {
    let k = s.key.0.first()?;
    if k.id != value::INET_SERVICE || s.key.0.len() != 1 {
        return None;
    }
    let mut v = Vec::new();
    for e in &s.elements {
        let lo = port(e.key.as_slice())?;
        let hi = e
            .key_end
            .as_ref()
            .map_or(Some(lo), |k| port(k.as_slice()))?;
        v.push(PortRange::new(lo, hi).ok()?);
    }
    Some(PortSet::from_ranges(v))
}

/// The addresses of a set of addresses of `family`, element by element.
fn addr_elements(s: &Set, family: AddrFamily) -> Vec<(IpNet, AddrSet)> {
    let bytes = match family {
        AddrFamily::V4 => 4,
        AddrFamily::V6 => 16,
    };
    let value = |b: &[u8]| b.iter().fold(0u128, |v, &x| (v << 8) | u128::from(x));
    s.elements
        .iter()
        .filter(|e| e.key.as_slice().len() == bytes)
        .filter_map(|e| {
            let lo = value(e.key.as_slice());
            let hi = e.key_end.as_ref().map_or(lo, |k| value(k.as_slice()));
            let set = AddrSet::from_ranges(family, vec![(lo, hi)]);
            // Only elements that are one prefix can be named in a change.
            match set.to_prefixes().as_slice() {
                [one] => Some((*one, set)),
                _ => None,
            }
        })
        .collect()
}

fn proto_number(p: Proto) -> u8 {
    match p {
        Proto::Tcp => 6,
        Proto::Udp => 17,
    }
}

/// Whether the rule's other tests let these accesses through (as far as
/// they can be read: the interface, the protocol and constant ports).
fn others_fit(r: &SetRule<'_>, proto: Proto, accesses: &[Access], field: Field) -> bool {
    let iface_ok = r.iifname.as_ref().map_or(true, |n| {
        accesses.iter().all(|a| a.ifaces.iter().all(|i| i == n))
    });
    let proto_ok = r.l4proto.map_or(true, |p| p == proto_number(proto));
    let ports_ok = field == Field::Dport
        || r.dports.as_ref().map_or(true, |d| {
            accesses.iter().all(|a| a.ports.subtract(d).is_empty())
        });
    iface_ok && proto_ok && ports_ok
}

fn set_ref(table: &Table, set: &Set) -> SetRef {
    SetRef {
        family: table.family,
        table: table.name.clone(),
        set: set.name.clone(),
    }
}

/// The table and chain of the deciding rule or policy, and the rule's
/// position in the chain (`None`: the policy, after every rule).
fn chain_of<'s>(
    snapshot: &'s Snapshot,
    d: &DecidedBy,
) -> Option<(&'s Table, &'s crate::snapshot::Chain, Option<usize>)> {
    let (family, table, chain) = match d {
        DecidedBy::Rule(r) => (r.family, &r.table, &r.chain),
        DecidedBy::Policy(p) => (p.family, &p.table, &p.chain),
    };
    let t = snapshot
        .tables
        .iter()
        .find(|t| t.family == family && t.name == *table)?;
    let c = t.chain(chain)?;
    let pos = match d {
        DecidedBy::Rule(r) => Some(c.rules.iter().position(|x| x.handle == r.handle)?),
        DecidedBy::Policy(_) => None,
    };
    Some((t, c, pos))
}

/// For a missing inbound opening refused by `blocker`: add the missing
/// sources (or ports) to the named set of an accepting rule before the
/// refusing one in its chain, when that rule's other tests already let
/// the accesses through. At most one candidate.
pub(crate) fn add_to_set(
    manager: Manager,
    snapshot: &Snapshot,
    blocker: &DecidedBy,
    proto: Proto,
    accesses: &[Access],
) -> Option<Change> {
    if manager != Manager::Nft {
        return None;
    }
    let (table, chain, pos) = chain_of(snapshot, blocker)?;
    let before = &chain.rules[..pos.unwrap_or(chain.rules.len())];
    before.iter().find_map(|rule| {
        let r = set_rule(table, rule)?;
        if !others_fit(&r, proto, accesses, r.field) {
            return None;
        }
        let elements = match r.field {
            Field::Saddr(family) => {
                // Every access must be of the set's family: the others would
                // stay refused.
                let mut nets = Vec::new();
                for a in accesses {
                    let s = a.sources.as_ref().filter(|s| s.family() == family)?;
                    nets.extend(s.to_prefixes());
                }
                nets.sort();
                nets.dedup();
                nets.into_iter().map(SetElement::Prefix).collect::<Vec<_>>()
            }
            Field::Dport => {
                let all = accesses
                    .iter()
                    .fold(PortSet::new(), |u, a| u.union(&a.ports));
                all.ranges().iter().map(|r| SetElement::Ports(*r)).collect()
            }
        };
        if elements.is_empty() || elements.len() > MAX_ELEMENTS {
            return None;
        }
        let change = Change::AddElement {
            set: set_ref(table, r.set),
            elements,
        };
        // Elements of the wrong type, intervals in a set without them,
        // overlaps: checked on a copy of the one set.
        apply_to_set(&mut r.set.clone(), &change)
            .is_ok()
            .then_some(change)
    })
}

/// For an excess inbound opening accepted by rule `by`: delete from the
/// rule's named set the elements that hold exactly the excess sources (or
/// ports), when every element that meets them lies inside them.
pub(crate) fn delete_from_set(
    manager: Manager,
    snapshot: &Snapshot,
    by: &DecidedBy,
    proto: Proto,
    accesses: &[Access],
) -> Option<Change> {
    if manager != Manager::Nft {
        return None;
    }
    let (table, chain, Some(pos)) = chain_of(snapshot, by)? else {
        return None;
    };
    let r = set_rule(table, &chain.rules[pos])?;
    if !others_fit(&r, proto, accesses, r.field) {
        return None;
    }
    let elements: Vec<SetElement> = match r.field {
        Field::Saddr(family) => {
            let mut excess = AddrSet::empty(family);
            for a in accesses {
                let s = a.sources.as_ref().filter(|s| s.family() == family)?;
                excess = excess.union(s);
            }
            let meeting: Vec<(IpNet, AddrSet)> = addr_elements(r.set, family)
                .into_iter()
                .filter(|(_, s)| s.meets(&excess))
                .collect();
            let held = meeting
                .iter()
                .fold(AddrSet::empty(family), |u, (_, s)| u.union(s));
            if held.subtract(&excess).is_empty() && excess.subtract(&held).is_empty() {
                meeting
                    .into_iter()
                    .map(|(n, _)| SetElement::Prefix(n))
                    .collect()
            } else {
                return None;
            }
        }
        Field::Dport => {
            let excess = accesses
                .iter()
                .fold(PortSet::new(), |u, a| u.union(&a.ports));
            let held = ports_of(r.set)?;
            let mut out = Vec::new();
            for e in &r.set.elements {
                let lo = port(e.key.as_slice())?;
                let hi = e
                    .key_end
                    .as_ref()
                    .map_or(Some(lo), |k| port(k.as_slice()))?;
                let el = PortSet::from_ranges([PortRange::new(lo, hi).ok()?]);
                if !el.intersect(&excess).is_empty() {
                    if !el.subtract(&excess).is_empty() {
                        return None;
                    }
                    out.push(SetElement::Ports(PortRange::new(lo, hi).ok()?));
                }
            }
            if !excess.subtract(&held).is_empty() {
                return None;
            }
            out
        }
    };
    (!elements.is_empty() && elements.len() <= MAX_ELEMENTS).then(|| Change::DeleteElement {
        set: set_ref(table, r.set),
        elements,
    })
}
