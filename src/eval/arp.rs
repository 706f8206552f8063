//! nf_tables `arp` family chains against the ARP exchange every IPv4
//! connection over an Ethernet link needs first: a peer asks who has the
//! host's address (a request arriving on the interface, `arp` input
//! chains), the host answers (a reply leaving by it, `arp` output chains).
//! A chain that refuses either makes every IPv4 connection to that address
//! on that interface impossible, whatever the inet chains say.
//!
//! The request is the one a peer with no neighbour entry sends: broadcast
//! Ethernet destination, hardware type 1, protocol 0x0800, lengths 6 and 4,
//! operation request, the host's address as target; the sender's hardware
//! and protocol addresses and the target hardware address are not known.
//! The reply: operation reply, the host's address as sender, the rest not
//! known. Payload loads of the link and network (ARP) headers, `meta`
//! (`iifname`, `oifname`, `iif`, `oif`, `iiftype`, `oiftype`, `protocol`,
//! `nfproto`, `mark`), `cmp`, `range`, `bitwise`, immediates, verdicts,
//! `jump`/`goto`/`return`, counters and logs are evaluated; a test on a
//! field not known, or any other expression, leaves the rule undecided:
//! the refusal is then reported as possible, naming that rule.

use crate::eval::{DecidedBy, PolicyRef, RuleRef};
use crate::host::Routes;
use crate::snapshot::{
    BitwiseOp, Chain, CmpOp, Expr, Family, Hook, MetaKey, PayloadBase, Policy, Snapshot, Table,
    Verdict,
};
use serde::Serialize;
use std::fmt;
use std::net::Ipv4Addr;

/// The `arp` family tables of a snapshot (what [`refusal`] reads).
#[derive(Clone, Debug, Default)]
pub struct ArpTables(Vec<Table>);

impl ArpTables {
    /// The live (not dormant) `arp` tables of `snapshot`.
    pub fn new(snapshot: &Snapshot) -> ArpTables {
        ArpTables(
            snapshot
                .tables
                .iter()
                .filter(|t| t.family == Family::Arp && !t.dormant())
                .cloned()
                .collect(),
        )
    }

    /// Whether there is no `arp` base chain at all.
    pub fn is_empty(&self) -> bool {
        !self
            .0
            .iter()
            .any(|t| t.chains.iter().any(|c| c.base.is_some()))
    }
}

/// Which half of the exchange is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ArpStep {
    /// The peer's request, in an input chain.
    Request,
    /// The host's reply, in an output chain.
    Reply,
}

/// An `arp` chain that refuses (or may refuse) the ARP exchange for a local
/// IPv4 address on an interface.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ArpRefusal {
    /// The interface.
    pub iface: String,
    /// The host's address asked for.
    pub addr: Ipv4Addr,
    /// Request or reply.
    pub step: ArpStep,
    /// The rule or policy that refuses it (`table arp f chain input rule
    /// handle 3`, `table arp f chain input policy drop`).
    pub by: DecidedBy,
    /// `None`: certain; otherwise the first rule whose outcome could not be
    /// decided, on which the refusal depends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub depends_on: Option<String>,
}

impl fmt::Display for ArpRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.step {
            ArpStep::Request => {
                format!("ARP requests for {} arriving on {}", self.addr, self.iface)
            }
            ArpStep::Reply => format!(
                "the host's ARP replies for {} leaving by {}",
                self.addr, self.iface
            ),
        };
        let verb = if self.depends_on.is_some() {
            "may be refused"
        } else {
            "are refused"
        };
        write!(
            f,
            "{what} {verb} by {}: peers on that link cannot resolve {}, so no IPv4 connection to it arrives on {}",
            self.by, self.addr, self.iface
        )?;
        if let Some(d) = &self.depends_on {
            write!(f, " (depends on {d}, not decided)")?;
        }
        Ok(())
    }
}

/// The first refusal of the ARP exchange for `addr` on interface `iface`
/// (request, then reply), if any.
pub fn refusal(
    arp: &ArpTables,
    routes: &Routes,
    iface: &str,
    addr: Ipv4Addr,
) -> Option<ArpRefusal> {
    if arp.is_empty() {
        return None;
    }
    let itf = routes.interfaces.iter().find(|i| i.name == iface);
    let (index, iftype) = itf.map_or((0, crate::host::ARPHRD_ETHER), |i| (i.index, i.iftype));
    for step in [ArpStep::Request, ArpStep::Reply] {
        let pkt = Pkt::new(step, iface, index, iftype, addr);
        let mut run = Run {
            tables: &arp.0,
            pkt: &pkt,
            undecided: None,
        };
        if let Some(by) = run.hook(match step {
            ArpStep::Request => Hook::Input,
            ArpStep::Reply => Hook::Output,
        }) {
            return Some(ArpRefusal {
                iface: iface.to_string(),
                addr,
                step,
                by,
                depends_on: run.undecided,
            });
        }
    }
    None
}

/// Every refusal for the IPv4 addresses of each non-loopback interface on
/// that interface.
pub fn refusals(arp: &ArpTables, routes: &Routes) -> Vec<ArpRefusal> {
    if arp.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for itf in routes
        .interfaces
        .iter()
        .filter(|i| i.iftype != crate::host::ARPHRD_LOOPBACK)
    {
        for a in &itf.addrs {
            if let std::net::IpAddr::V4(a) = a.addr() {
                out.extend(refusal(arp, routes, &itf.name, a));
            }
        }
    }
    out
}

/// Bytes with a known-mask per byte.
#[derive(Clone)]
struct Known {
    v: Vec<u8>,
    k: Vec<bool>,
}

impl Known {
    fn unknown(n: usize) -> Known {
        Known {
            v: vec![0; n],
            k: vec![false; n],
        }
    }

    fn set(&mut self, at: usize, bytes: &[u8]) {
        for (i, b) in bytes.iter().enumerate() {
            self.v[at + i] = *b;
            self.k[at + i] = true;
        }
    }
}

/// The ARP packet and its metadata.
struct Pkt {
    link: Known,
    arp: Known,
    /// (iifname, oifname), 16 bytes each, zero padded.
    names: ([u8; 16], [u8; 16]),
    /// (iif, oif).
    index: (u32, u32),
    iftype: (u16, u16),
}

fn ifname(name: &str) -> [u8; 16] {
    let mut b = [0u8; 16];
    for (d, s) in b.iter_mut().zip(name.bytes().take(15)) {
        *d = s;
    }
    b
}

impl Pkt {
    fn new(step: ArpStep, iface: &str, index: u32, iftype: u16, addr: Ipv4Addr) -> Pkt {
        let mut link = Known::unknown(14);
        link.set(12, &[0x08, 0x06]);
        let mut arp = Known::unknown(28);
        arp.set(0, &[0, 1, 8, 0, 6, 4]);
        let none = ifname("");
        match step {
            ArpStep::Request => {
                link.set(0, &[0xff; 6]);
                arp.set(6, &[0, 1]);
                arp.set(24, &addr.octets());
                Pkt {
                    link,
                    arp,
                    names: (ifname(iface), none),
                    index: (index, 0),
                    iftype: (iftype, 0),
                }
            }
            ArpStep::Reply => {
                arp.set(6, &[0, 2]);
                arp.set(14, &addr.octets());
                Pkt {
                    link,
                    arp,
                    names: (none, ifname(iface)),
                    index: (0, index),
                    iftype: (0, iftype),
                }
            }
        }
    }
}

/// A rule's match: yes, no, or not decidable.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tri {
    Yes,
    No,
    Maybe,
}

/// How a chain ended.
enum End {
    Accept,
    Drop(DecidedBy),
    /// Fell off the end, or `return`.
    Fall,
}

struct Run<'a> {
    tables: &'a [Table],
    pkt: &'a Pkt,
    /// The first rule whose outcome was not decided.
    undecided: Option<String>,
}

fn where_(t: &Table, c: &Chain) -> String {
    format!("table arp {} chain {}", t.name, c.name)
}

impl Run<'_> {
    /// Every base chain of `hook` by priority: the refusing rule or
    /// policy, if one refuses.
    fn hook(&mut self, hook: Hook) -> Option<DecidedBy> {
        let mut bases: Vec<(&Table, &Chain, i32)> = self
            .tables
            .iter()
            .flat_map(|t| {
                t.chains.iter().filter_map(move |c| {
                    let b = c.base.as_ref()?;
                    (b.hook == hook).then_some((t, c, b.priority))
                })
            })
            .collect();
        bases.sort_by_key(|(_, _, p)| *p);
        for (t, c, _) in bases {
            match self.chain(t, c, 0) {
                End::Accept => {}
                End::Drop(by) => return Some(by),
                End::Fall => {
                    if c.base.as_ref().map(|b| b.policy) == Some(Policy::Drop) {
                        return Some(DecidedBy::Policy(PolicyRef {
                            family: Family::Arp,
                            table: t.name.clone(),
                            chain: c.name.clone(),
                            policy: Policy::Drop,
                        }));
                    }
                }
            }
        }
        None
    }

    fn chain(&mut self, t: &Table, c: &Chain, depth: u32) -> End {
        if depth > 16 {
            self.undecided
                .get_or_insert_with(|| format!("{}: jump stack overflow", where_(t, c)));
            return End::Fall;
        }
        for rule in &c.rules {
            let here = format!("{} rule handle {}", where_(t, c), rule.handle);
            let (m, verdict) = self.rule(&rule.exprs);
            let m = if rule.incomplete { Tri::Maybe } else { m };
            match m {
                Tri::No => continue,
                Tri::Maybe => {
                    // Either outcome is possible: go on as if it did not
                    // match, and say what the answer depends on.
                    if verdict.is_some() || rule.incomplete {
                        self.undecided.get_or_insert(here);
                    }
                    continue;
                }
                Tri::Yes => {}
            }
            match verdict {
                None | Some(Verdict::Continue) => {}
                Some(Verdict::Accept) => return End::Accept,
                Some(Verdict::Drop) => {
                    return End::Drop(DecidedBy::Rule(RuleRef {
                        family: Family::Arp,
                        table: t.name.clone(),
                        chain: c.name.clone(),
                        handle: rule.handle,
                    }))
                }
                Some(Verdict::Return) => return End::Fall,
                Some(Verdict::Jump(to)) => match t.chain(&to) {
                    Some(next) => match self.chain(t, next, depth + 1) {
                        End::Fall => {}
                        end => return end,
                    },
                    None => {
                        self.undecided.get_or_insert(here);
                    }
                },
                Some(Verdict::Goto(to)) => match t.chain(&to) {
                    Some(next) => return self.chain(t, next, depth + 1),
                    None => {
                        self.undecided.get_or_insert(here);
                    }
                },
                Some(Verdict::Break) => {}
                Some(Verdict::Queue(_) | Verdict::Stolen) => {
                    self.undecided.get_or_insert(here);
                }
            }
        }
        End::Fall
    }

    /// One rule's match and its verdict.
    fn rule(&self, exprs: &[Expr]) -> (Tri, Option<Verdict>) {
        let mut regs = Known::unknown(64);
        let mut m = Tri::Yes;
        let mut verdict = None;
        let p = self.pkt;
        for e in exprs {
            match e {
                Expr::Payload {
                    base,
                    offset,
                    len,
                    dreg,
                } => {
                    let src = match base {
                        PayloadBase::Link => &p.link,
                        PayloadBase::Network => &p.arp,
                        _ => return (Tri::No, None),
                    };
                    let (o, n) = (*offset as usize, *len as usize);
                    let Some(at) = dreg.offset().filter(|a| a + n <= 64) else {
                        return (Tri::Maybe, verdict);
                    };
                    for i in 0..n {
                        match (src.v.get(o + i), src.k.get(o + i)) {
                            (Some(v), Some(true)) => regs.set(at + i, &[*v]),
                            _ => {
                                regs.k[at + i] = false;
                            }
                        }
                    }
                    // The kernel zeroes the rest of the last 4-byte word.
                    let end = (at + n).div_ceil(4) * 4;
                    for i in at + n..end.min(64) {
                        regs.set(i, &[0]);
                    }
                }
                Expr::Meta { key, dreg } => {
                    let Some(at) = dreg.offset() else {
                        return (Tri::Maybe, verdict);
                    };
                    let val: Option<Vec<u8>> = match key {
                        MetaKey::Iifname => Some(p.names.0.to_vec()),
                        MetaKey::Oifname => Some(p.names.1.to_vec()),
                        MetaKey::Iif => Some(p.index.0.to_ne_bytes().to_vec()),
                        MetaKey::Oif => Some(p.index.1.to_ne_bytes().to_vec()),
                        MetaKey::Iiftype => Some(u32::from(p.iftype.0).to_ne_bytes()[..2].to_vec()),
                        MetaKey::Oiftype => Some(u32::from(p.iftype.1).to_ne_bytes()[..2].to_vec()),
                        MetaKey::Protocol => Some(vec![0x08, 0x06]),
                        MetaKey::Nfproto => Some(vec![3]),
                        MetaKey::Mark => Some(vec![0; 4]),
                        _ => None,
                    };
                    match val {
                        Some(v) if at + v.len() <= 64 => {
                            regs.set(at, &v);
                            let end = (at + v.len()).div_ceil(4) * 4;
                            for i in at + v.len()..end.min(64) {
                                regs.set(i, &[0]);
                            }
                        }
                        _ => {
                            for i in at..(at + 16).min(64) {
                                regs.k[i] = false;
                            }
                        }
                    }
                }
                Expr::Cmp { sreg, op, data } => {
                    let r = cmp(&regs, sreg.offset(), *op, data.as_slice());
                    m = and(m, r);
                    if m == Tri::No {
                        return (Tri::No, None);
                    }
                }
                Expr::Range { sreg, op, from, to } => {
                    let lo = cmp(&regs, sreg.offset(), CmpOp::Gte, from.as_slice());
                    let hi = cmp(&regs, sreg.offset(), CmpOp::Lte, to.as_slice());
                    let inside = and(lo, hi);
                    let r = match (op, inside) {
                        (CmpOp::Neq, Tri::Yes) => Tri::No,
                        (CmpOp::Neq, Tri::No) => Tri::Yes,
                        (_, x) => x,
                    };
                    m = and(m, r);
                    if m == Tri::No {
                        return (Tri::No, None);
                    }
                }
                Expr::Bitwise {
                    sreg,
                    dreg,
                    len,
                    op: BitwiseOp::Bool,
                    mask: Some(mask),
                    xor: Some(xor),
                    ..
                } => {
                    let (Some(s), Some(d)) = (sreg.offset(), dreg.offset()) else {
                        return (Tri::Maybe, verdict);
                    };
                    let n = *len as usize;
                    if s + n > 64 || d + n > 64 {
                        return (Tri::Maybe, verdict);
                    }
                    let src = regs.clone();
                    for i in 0..n {
                        let mk = mask.as_slice().get(i).copied().unwrap_or(0);
                        let x = xor.as_slice().get(i).copied().unwrap_or(0);
                        regs.v[d + i] = (src.v[s + i] & mk) ^ x;
                        regs.k[d + i] = src.k[s + i] || mk == 0;
                    }
                }
                Expr::Immediate {
                    dreg,
                    verdict: v,
                    data,
                } => {
                    if dreg.0 == 0 {
                        verdict = v.clone();
                    } else if let (Some(at), Some(d)) = (dreg.offset(), data) {
                        if at + d.as_slice().len() <= 64 {
                            regs.set(at, d.as_slice());
                        }
                    }
                }
                Expr::Counter { .. } | Expr::Log { .. } => {}
                // Anything else: not modelled for ARP.
                _ => m = and(m, Tri::Maybe),
            }
        }
        (m, verdict)
    }
}

fn and(a: Tri, b: Tri) -> Tri {
    match (a, b) {
        (Tri::No, _) | (_, Tri::No) => Tri::No,
        (Tri::Yes, Tri::Yes) => Tri::Yes,
        _ => Tri::Maybe,
    }
}

/// `nft_cmp`: memcmp of the register's bytes with `data`.
fn cmp(regs: &Known, at: Option<usize>, op: CmpOp, data: &[u8]) -> Tri {
    let Some(at) = at.filter(|a| a + data.len() <= 64) else {
        return Tri::Maybe;
    };
    // The first differing known byte decides, if every byte before it is
    // known.
    let mut ord = std::cmp::Ordering::Equal;
    for (i, d) in data.iter().enumerate() {
        if !regs.k[at + i] {
            // Unknown from here: equality is decided only if a known byte
            // already differs (handled below), else not decidable.
            let differs = data
                .iter()
                .enumerate()
                .skip(i)
                .any(|(j, d)| regs.k[at + j] && regs.v[at + j] != *d);
            return match (op, differs) {
                (CmpOp::Eq, true) => Tri::No,
                (CmpOp::Neq, true) => Tri::Yes,
                _ => Tri::Maybe,
            };
        }
        ord = regs.v[at + i].cmp(d);
        if ord != std::cmp::Ordering::Equal {
            break;
        }
    }
    use std::cmp::Ordering::*;
    let r = match op {
        CmpOp::Eq => ord == Equal,
        CmpOp::Neq => ord != Equal,
        CmpOp::Lt => ord == Less,
        CmpOp::Lte => ord != Greater,
        CmpOp::Gt => ord == Greater,
        CmpOp::Gte => ord != Less,
    };
    if r {
        Tri::Yes
    } else {
        Tri::No
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::testkit::topology;

    /// A snapshot with one `arp` table whose input chain has `rules` (as
    /// JSON expression lists) and `policy`.
    fn arp_snapshot(rules: &[serde_json::Value], policy: &str, hook: &str) -> Snapshot {
        let rules: Vec<serde_json::Value> = rules
            .iter()
            .enumerate()
            .map(|(i, e)| serde_json::json!({"handle": 10 + i, "position": i, "exprs": e}))
            .collect();
        serde_json::from_value(serde_json::json!({"generation": 1, "tables": [
            {"family": "arp", "name": "a", "handle": 1, "flags": 0, "sets": [], "flowtables": [], "objects": [], "chains": [
                {"name": "c", "handle": 1, "type": "filter", "hook": hook, "priority": 0,
                 "policy": policy, "rules": rules}]}]}))
        .expect("snapshot")
    }

    fn op_request_drop() -> serde_json::Value {
        serde_json::json!([
            {"type": "payload", "base": "network", "offset": 6, "len": 2, "dreg": 1},
            {"type": "cmp", "sreg": 1, "op": "eq", "data": "0x0001"},
            {"type": "immediate", "dreg": 0, "verdict": "drop"}])
    }

    fn daddr_drop(a: &str) -> serde_json::Value {
        let hex: String = a
            .parse::<Ipv4Addr>()
            .unwrap()
            .octets()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        serde_json::json!([
            {"type": "meta", "key": "iifname", "dreg": 1},
            {"type": "cmp", "sreg": 1, "op": "eq", "data": "0x70772d7072697600000000000000000000"[..34].to_string()},
            {"type": "payload", "base": "network", "offset": 24, "len": 4, "dreg": 1},
            {"type": "cmp", "sreg": 1, "op": "eq", "data": format!("0x{hex}")},
            {"type": "immediate", "dreg": 0, "verdict": "drop"}])
    }

    fn refused(s: &Snapshot) -> Vec<String> {
        refusals(&ArpTables::new(s), &topology())
            .iter()
            .map(|r| {
                format!(
                    "{} {} {:?} {} {}",
                    r.iface,
                    r.addr,
                    r.step,
                    r.by,
                    r.depends_on.is_some()
                )
            })
            .collect()
    }

    #[test]
    fn arp_chains_that_refuse_requests_or_replies() {
        // `arp operation request drop`: every address on every interface.
        let s = arp_snapshot(&[op_request_drop()], "accept", "input");
        assert_eq!(
            refused(&s),
            [
                "pw-pub 192.0.2.1 Request table arp a chain c rule handle 10 false",
                "pw-priv 10.99.0.1 Request table arp a chain c rule handle 10 false"
            ]
        );
        let r = &refusals(&ArpTables::new(&s), &topology())[0];
        assert_eq!(
            r.to_string(),
            "ARP requests for 192.0.2.1 arriving on pw-pub are refused by table arp a chain c rule handle 10: peers on that link cannot resolve 192.0.2.1, so no IPv4 connection to it arrives on pw-pub"
        );
        // The same rule in output: replies are operation 2, not refused.
        let s = arp_snapshot(&[op_request_drop()], "accept", "output");
        assert!(refused(&s).is_empty());
        // Output policy drop: replies refused.
        let s = arp_snapshot(&[], "drop", "output");
        assert_eq!(refused(&s).len(), 2);
        assert!(refused(&s)[0].contains("Reply table arp a chain c policy drop false"));
        // iifname pw-priv + arp daddr ip 10.99.0.1: that pair only.
        let s = arp_snapshot(&[daddr_drop("10.99.0.1")], "accept", "input");
        assert_eq!(
            refused(&s),
            ["pw-priv 10.99.0.1 Request table arp a chain c rule handle 10 false"]
        );
        let s = arp_snapshot(&[daddr_drop("10.99.0.7")], "accept", "input");
        assert!(refused(&s).is_empty());
        // A test on the sender's address (not known): possibly refused.
        let s = arp_snapshot(
            &[serde_json::json!([
                {"type": "payload", "base": "network", "offset": 14, "len": 4, "dreg": 1},
                {"type": "cmp", "sreg": 1, "op": "eq", "data": "0x0a000001"},
                {"type": "immediate", "dreg": 0, "verdict": "accept"}])],
            "drop",
            "input",
        );
        let r = refused(&s);
        assert_eq!(r.len(), 2);
        assert!(r[0].ends_with("policy drop true"), "{r:?}");
        // No arp table: nothing, and explain's answer has no note.
        assert!(refused(&crate::eval::testkit::snapshot("backup-host-basic")).is_empty());
    }
}
