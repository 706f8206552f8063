//! `outbound-blocked`: a deliberately small, conservative check of the
//! output path, which the evaluator does not model.
//!
//! For a required outbound connection (protocol, destination ports, peer
//! addresses) every base chain on the `output` hook of a table that sees its
//! family (`ip`/`inet` for IPv4 peers, `ip6`/`inet` for IPv6) is read rule by
//! rule, as the first packet of a new connection (conntrack state `new`,
//! leaving through a non-loopback interface) would meet it:
//!
//! - conditions portwarden decides exactly are the protocol (`meta
//!   l4proto`, `ip protocol`, `ip6 nexthdr`), `meta nfproto`, the
//!   destination port (`th/tcp/udp dport` with `==`, `!=`, ranges and
//!   anonymous or named port sets), `ct state` (bit tests and sets), `oifname`/`oif`
//!   against loopback, and the destination address against the peers
//!   (when the peers lie wholly inside or wholly outside it);
//! - a rule whose conditions are all of that kind and that ends in
//!   `accept` lets those ports through this chain; one that ends in `drop`
//!   or `reject` blocks them (a finding);
//! - ports that reach the end of a chain with policy `drop` are blocked by
//!   that policy (a finding);
//! - `jump` and `goto` to a regular chain (whose conditions are all of that
//!   kind) are followed, up to 16 deep; what the chain returns goes on with
//!   the next rule (after `jump`) or to the caller (after `goto`); `return`
//!   and the end of the base chain lead to its policy;
//! - any other rule that may match the connection (other matches, `limit`,
//!   verdict maps, `xt` matches, queues, unknown expressions) leaves its
//!   ports undecided: no finding, but a note ("not verified"), and later
//!   rules are not consulted for those ports.
//!
//! If an output chain (or a chain it jumps to) may rewrite destinations
//! (NAT, payload mangling, tproxy), nothing is concluded for that family (a
//! note says so). Netdev `egress` chains, policy routing and
//! the forward path are not read. So an `outbound-blocked` finding is
//! certain (for the ports and chain it names); its absence proves nothing
//! where a note says "not verified".

use super::findings::{l4, Ctx};
use super::fix;
use super::nfttext::{be, le, Ctx as TextCtx, Field, Loaded, Regs};
use super::region::{requirement_peers, Peers};
use super::{Draft, Evidence};
use crate::addrs::{AddrFamily, AddrSet};
use crate::catalog::{Direction, ResolvedRequirement};
use crate::config::FindingKind;
use crate::eval::{DecidedBy, PolicyRef, RuleRef, ARPHRD_LOOPBACK};
use crate::ports::{PortRange, PortSet};
use crate::snapshot::{
    value, Chain, CmpOp, Expr, Family, Hook, Policy, Rule, Table, Verdict as NftVerdict,
};
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether a condition holds for the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Truth {
    /// For every peer and source port.
    Always,
    /// For none.
    Never,
    /// Cannot tell.
    Maybe,
}

/// What a rule does to the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Action {
    /// No verdict (counters, logs, marks): the next rule follows.
    Continue,
    /// `accept`.
    Accept,
    /// `drop` or `reject`.
    Drop,
    /// `return` (in a base chain: the policy).
    Return,
    /// `jump CHAIN`.
    Jump(String),
    /// `goto CHAIN`.
    Goto(String),
    /// Anything else (queue, verdict map, unknown target).
    Other(String),
}

/// A rule as seen by the connection: the ports its conditions may hold
/// for, whether they certainly hold there, and its action.
#[derive(Clone, Debug)]
struct Effect {
    ports: PortSet,
    exact: bool,
    why: Option<String>,
    action: Action,
}

struct Want<'a> {
    proto: u8,
    v6: bool,
    peers: &'a AddrSet,
    loopback_ifindex: &'a [u32],
}

/// The addresses a masked prefix comparison matches.
fn prefix_set(v6: bool, data: &[u8], len: u32, mask: Option<&[u8]>) -> Option<AddrSet> {
    let full = if v6 { 16 } else { 4 };
    let mut buf = vec![0u8; full];
    let n = data.len().min(full).min(len as usize);
    buf[..n].copy_from_slice(&data[..n]);
    let bits: u32 = match mask {
        Some(m) => {
            // Only contiguous leading masks are prefixes.
            let ones: u32 = m.iter().map(|b| b.count_ones()).sum();
            let leading: u32 = m
                .iter()
                .scan(true, |go, b| {
                    if !*go {
                        return Some(0);
                    }
                    if *b != 0xff {
                        *go = false;
                    }
                    Some(b.leading_ones())
                })
                .sum();
            if ones != leading {
                return None;
            }
            ones
        }
        None => len * 8,
    };
    let addr: IpAddr = if v6 {
        let a: [u8; 16] = buf.try_into().ok()?;
        IpAddr::V6(Ipv6Addr::from(a))
    } else {
        IpAddr::V4(Ipv4Addr::new(buf[0], buf[1], buf[2], buf[3]))
    };
    let net = IpNet::new(addr, bits as u8).ok()?.trunc();
    let fam = if v6 { AddrFamily::V6 } else { AddrFamily::V4 };
    Some(AddrSet::from_prefixes(fam, [net]))
}

/// Whether peers inside `s` are all / none / some.
fn peers_in(peers: &AddrSet, s: &AddrSet, negate: bool) -> Truth {
    let inside = peers.intersect(s);
    let t = if inside == *peers {
        Truth::Always
    } else if inside.is_empty() {
        Truth::Never
    } else {
        Truth::Maybe
    };
    match (negate, t) {
        (false, t) => t,
        (true, Truth::Always) => Truth::Never,
        (true, Truth::Never) => Truth::Always,
        (true, Truth::Maybe) => Truth::Maybe,
    }
}

/// Set elements as (first, last) raw keys.
type Elems = Vec<(Vec<u8>, Vec<u8>)>;

/// The elements of a set keyed by one component, as (first, last) raw keys.
fn set_elements<'t>(table: &'t Table, name: &str) -> Option<(&'t crate::snapshot::Set, Elems)> {
    let set = table.set(name)?;
    if set.key.0.len() != 1 || set.is_map() {
        return None;
    }
    let v = set
        .elements
        .iter()
        .map(|e| {
            let lo = e.key.as_slice().to_vec();
            let hi = e
                .key_end
                .as_ref()
                .map_or_else(|| lo.clone(), |k| k.as_slice().to_vec());
            (lo, hi)
        })
        .collect();
    Some((set, v))
}

fn port_set_of(elems: &[(Vec<u8>, Vec<u8>)]) -> PortSet {
    PortSet::from_ranges(
        elems
            .iter()
            .filter_map(|(lo, hi)| PortRange::new(be(lo) as u16, be(hi) as u16).ok()),
    )
}

fn cmp_ports(op: CmpOp, port: u16) -> PortSet {
    let r = |a: u32, b: u32| {
        if a > b || b > 65535 {
            PortSet::new()
        } else {
            PortSet::from_ranges([PortRange::new(a as u16, b as u16).expect("ordered")])
        }
    };
    let p = u32::from(port);
    match op {
        CmpOp::Eq => r(p, p),
        CmpOp::Neq => r(p, p).complement(),
        CmpOp::Lt => {
            if p == 0 {
                PortSet::new()
            } else {
                r(0, p - 1)
            }
        }
        CmpOp::Lte => r(0, p),
        CmpOp::Gt => r(p + 1, 65535),
        CmpOp::Gte => r(p, 65535),
    }
}

/// Reads one rule for the connection `w` to `ports`. `None`: the rule
/// cannot match it.
fn effect(table: &Table, rule: &Rule, w: &Want<'_>, ports: &PortSet) -> Option<Effect> {
    let mut ctx = TextCtx::of(table.family);
    let mut regs = Regs::default();
    let mut m = ports.clone();
    let mut exact = !rule.incomplete;
    let mut why: Option<String> = rule.incomplete.then(|| "has undecoded expressions".into());
    let mut action = Action::Continue;
    let maybe = |what: String, exact: &mut bool, why: &mut Option<String>| {
        *exact = false;
        why.get_or_insert(what);
    };
    for e in &rule.exprs {
        if regs.load(e, &ctx) {
            continue;
        }
        let truth: Truth = match e {
            Expr::Cmp { sreg, op, data } => {
                let Some(l) = regs.get(sreg.0).cloned() else {
                    maybe("compares an unknown register".into(), &mut exact, &mut why);
                    continue;
                };
                let data = data.as_slice();
                match cond_cmp(&l, *op, data, w, &mut m, &mut ctx) {
                    Some(t) => t,
                    None => {
                        maybe(
                            format!("matches {}", describe_field(&l)),
                            &mut exact,
                            &mut why,
                        );
                        continue;
                    }
                }
            }
            Expr::Range { sreg, op, from, to } => match regs.get(sreg.0) {
                Some(Loaded {
                    field: Field::Dport,
                    mask: None,
                }) => {
                    let r = PortRange::new(be(from.as_slice()) as u16, be(to.as_slice()) as u16)
                        .map(|r| PortSet::from_ranges([r]))
                        .unwrap_or_default();
                    m = match op {
                        CmpOp::Eq => m.intersect(&r),
                        CmpOp::Neq => m.subtract(&r),
                        _ => {
                            maybe("compares a port range".into(), &mut exact, &mut why);
                            continue;
                        }
                    };
                    Truth::Always
                }
                _ => {
                    maybe("matches a range".into(), &mut exact, &mut why);
                    continue;
                }
            },
            Expr::Lookup {
                set,
                sreg,
                dreg,
                invert,
            } => {
                if let Some(d) = dreg {
                    action = Action::Other(if d.0 == 0 {
                        format!("verdict map @{set}")
                    } else {
                        format!("map @{set}")
                    });
                    if d.0 == 0 {
                        break;
                    }
                    continue;
                }
                let l = regs.get(sreg.0).cloned();
                match (l, set_elements(table, set)) {
                    (
                        Some(Loaded {
                            field: Field::Dport,
                            mask: None,
                        }),
                        Some((s, elems)),
                    ) if s.key.0[0].len == 2 => {
                        let ps = port_set_of(&elems);
                        m = if *invert {
                            m.subtract(&ps)
                        } else {
                            m.intersect(&ps)
                        };
                        Truth::Always
                    }
                    (
                        Some(Loaded {
                            field: Field::CtState,
                            mask: None,
                        }),
                        Some((_, elems)),
                    ) => {
                        const NEW: u64 = 8;
                        let hit = elems.iter().any(|(lo, hi)| le(lo) <= NEW && NEW <= le(hi));
                        if hit != *invert {
                            Truth::Always
                        } else {
                            Truth::Never
                        }
                    }
                    (
                        Some(Loaded {
                            field: Field::L4Proto,
                            mask: None,
                        }),
                        Some((_, elems)),
                    ) => {
                        let hit = elems.iter().any(|(lo, hi)| {
                            be(lo) <= u64::from(w.proto) && u64::from(w.proto) <= be(hi)
                        });
                        if hit != *invert {
                            Truth::Always
                        } else {
                            Truth::Never
                        }
                    }
                    (
                        Some(Loaded {
                            field: Field::Daddr { v6, len },
                            mask,
                        }),
                        Some((s, elems)),
                    ) if v6 == w.v6
                        && mask.is_none()
                        && (s.key.0[0].id == value::IPADDR || s.key.0[0].id == value::IP6ADDR) =>
                    {
                        let _ = len;
                        let fam = if v6 { AddrFamily::V6 } else { AddrFamily::V4 };
                        let mut acc = AddrSet::empty(fam);
                        for (lo, hi) in &elems {
                            let (Some(a), Some(b)) = (addr_of(v6, lo), addr_of(v6, hi)) else {
                                continue;
                            };
                            acc = acc.union(&range_set(fam, a, b));
                        }
                        peers_in(w.peers, &acc, *invert)
                    }
                    (l, _) => {
                        maybe(
                            format!(
                                "looks up {} in @{set}",
                                l.as_ref()
                                    .map(describe_field)
                                    .unwrap_or_else(|| "a key".into())
                            ),
                            &mut exact,
                            &mut why,
                        );
                        continue;
                    }
                }
            }
            Expr::Immediate {
                verdict: Some(v), ..
            } => {
                action = match v {
                    NftVerdict::Accept => Action::Accept,
                    NftVerdict::Drop => Action::Drop,
                    NftVerdict::Continue => Action::Continue,
                    NftVerdict::Return => Action::Return,
                    NftVerdict::Jump(c) => Action::Jump(c.clone()),
                    NftVerdict::Goto(c) => Action::Goto(c.clone()),
                    other => Action::Other(other.to_string()),
                };
                break;
            }
            Expr::Reject { .. } => {
                action = Action::Drop;
                break;
            }
            Expr::Target { name, .. } => {
                action = match name.as_str() {
                    "REJECT" => Action::Drop,
                    "LOG" | "NFLOG" | "MARK" | "CONNMARK" => continue,
                    other => Action::Other(format!("xt target {other:?}")),
                };
                break;
            }
            Expr::Counter { .. }
            | Expr::Log { .. }
            | Expr::MetaSet { .. }
            | Expr::CtSet { .. }
            | Expr::Notrack
            | Expr::Last
            | Expr::Objref {
                object_type: Some(1),
                ..
            } => continue,
            Expr::Queue { .. } => {
                action = Action::Other("queue".into());
                break;
            }
            other => {
                maybe(
                    format!("uses {}", crate::eval::describe(other)),
                    &mut exact,
                    &mut why,
                );
                continue;
            }
        };
        match truth {
            Truth::Never => return None,
            Truth::Maybe => maybe(
                "matches the destination address partly".into(),
                &mut exact,
                &mut why,
            ),
            Truth::Always => {}
        }
        if m.is_empty() {
            return None;
        }
    }
    Some(Effect {
        ports: m,
        exact,
        why,
        action,
    })
}

fn addr_of(v6: bool, b: &[u8]) -> Option<IpAddr> {
    if v6 {
        let a: [u8; 16] = b.get(..16)?.try_into().ok()?;
        Some(IpAddr::V6(Ipv6Addr::from(a)))
    } else {
        let a = b.get(..4)?;
        Some(IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3])))
    }
}

/// The addresses from `a` to `b`, as a set.
fn range_set(fam: AddrFamily, a: IpAddr, b: IpAddr) -> AddrSet {
    // Built from prefixes: split [a, b] into aligned blocks.
    let (lo, hi, bits) = match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return AddrSet::empty(fam),
    };
    let mut nets = Vec::new();
    let mut cur = lo;
    while cur <= hi {
        let mut size_bits = 0u32;
        while size_bits < bits {
            let next = size_bits + 1;
            let mask = if next >= 128 {
                u128::MAX
            } else {
                (1u128 << next) - 1
            };
            let fits = matches!(cur.checked_add(mask), Some(e) if e <= hi);
            if cur & mask != 0 || !fits {
                break;
            }
            size_bits = next;
        }
        let addr = if bits == 32 {
            IpAddr::V4(Ipv4Addr::from(cur as u32))
        } else {
            IpAddr::V6(Ipv6Addr::from(cur))
        };
        nets.push(IpNet::new(addr, (bits - size_bits) as u8).expect("valid length"));
        let span = if size_bits >= 128 {
            u128::MAX
        } else {
            (1u128 << size_bits) - 1
        };
        match cur.checked_add(span).and_then(|e| e.checked_add(1)) {
            Some(n) => cur = n,
            None => break,
        }
        if cur == 0 {
            break;
        }
    }
    AddrSet::from_prefixes(fam, nets)
}

fn describe_field(l: &Loaded) -> String {
    match &l.field {
        Field::L4Proto => "the protocol".into(),
        Field::NfProto => "meta nfproto".into(),
        Field::Saddr { .. } => "the source address".into(),
        Field::Daddr { .. } => "the destination address".into(),
        Field::Sport => "the source port".into(),
        Field::Dport => "the destination port".into(),
        Field::CtState => "ct state".into(),
        Field::Ifname { input } => if *input { "iifname" } else { "oifname" }.into(),
        Field::Ifindex { input } => if *input { "iif" } else { "oif" }.into(),
        Field::Other(s) => s.clone(),
    }
}

/// Decides a comparison for the connection, narrowing `m` for port tests.
/// `None`: not decidable here.
fn cond_cmp(
    l: &Loaded,
    op: CmpOp,
    data: &[u8],
    w: &Want<'_>,
    m: &mut PortSet,
    ctx: &mut TextCtx,
) -> Option<Truth> {
    let yes = |b: bool| if b { Truth::Always } else { Truth::Never };
    match (&l.field, &l.mask) {
        (Field::L4Proto, None) if data.len() == 1 => {
            if op == CmpOp::Eq {
                ctx.l4 = Some(data[0]);
            }
            match op {
                CmpOp::Eq => Some(yes(data[0] == w.proto)),
                CmpOp::Neq => Some(yes(data[0] != w.proto)),
                _ => None,
            }
        }
        (Field::NfProto, None) if data.len() == 1 => {
            let mine = if w.v6 { 10 } else { 2 };
            if op == CmpOp::Eq {
                ctx.v6 = Some(data[0] == 10);
            }
            match op {
                CmpOp::Eq => Some(yes(data[0] == mine)),
                CmpOp::Neq => Some(yes(data[0] != mine)),
                _ => None,
            }
        }
        (Field::Dport, None) if data.len() == 2 => {
            *m = m.intersect(&cmp_ports(op, be(data) as u16));
            Some(Truth::Always)
        }
        (Field::CtState, mask) => {
            const NEW: u64 = 8;
            let v = le(data);
            match (mask, op) {
                (Some(mk), CmpOp::Neq) if v == 0 => Some(yes(le(mk.as_slice()) & NEW != 0)),
                (Some(mk), CmpOp::Eq) if v == 0 => Some(yes(le(mk.as_slice()) & NEW == 0)),
                (None, CmpOp::Eq) => Some(yes(v == NEW)),
                (None, CmpOp::Neq) => Some(yes(v != NEW)),
                _ => None,
            }
        }
        (Field::Ifname { input: false }, None) => {
            let name = data.split(|c| *c == 0).next().unwrap_or(data);
            let full = data.contains(&0);
            if name == b"lo" && full {
                match op {
                    CmpOp::Eq => Some(Truth::Never),
                    CmpOp::Neq => Some(Truth::Always),
                    _ => None,
                }
            } else {
                None
            }
        }
        (Field::Ifindex { input: false }, None) if data.len() == 4 => {
            let idx = le(data) as u32;
            if w.loopback_ifindex.contains(&idx) {
                match op {
                    CmpOp::Eq => Some(Truth::Never),
                    CmpOp::Neq => Some(Truth::Always),
                    _ => None,
                }
            } else {
                None
            }
        }
        (Field::Daddr { v6, len }, mask) if *v6 == w.v6 => {
            let s = prefix_set(*v6, data, *len, mask.as_ref().map(|b| b.as_slice()))?;
            match op {
                CmpOp::Eq => Some(peers_in(w.peers, &s, false)),
                CmpOp::Neq => Some(peers_in(w.peers, &s, true)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Most nested jumps followed (the kernel's `NFT_JUMP_STACK_SIZE`).
const MAX_DEPTH: usize = 16;

/// What becomes of the ports that enter a chain.
#[derive(Default)]
struct Walk {
    /// Ports certainly refused, by rule.
    blocked: Vec<(PortSet, DecidedBy)>,
    /// Ports not decided, with why.
    unverified: Vec<(PortSet, String)>,
    /// Ports that leave the chain by `return` or its end.
    returned: PortSet,
}

fn walk_chain(table: &Table, chain: &Chain, w: &Want<'_>, ports: &PortSet, depth: usize) -> Walk {
    let mut res = Walk::default();
    let mut undecided = ports.clone();
    let rule_ref = |r: &Rule| {
        DecidedBy::Rule(RuleRef {
            family: table.family,
            table: table.name.clone(),
            chain: chain.name.clone(),
            handle: r.handle,
        })
    };
    let unverified = |rule: &Rule, why: &str| {
        format!(
            "table {} {} chain {} rule handle {} {why}",
            table.family, table.name, chain.name, rule.handle
        )
    };
    for rule in &chain.rules {
        if undecided.is_empty() {
            break;
        }
        let Some(eff) = effect(table, rule, w, &undecided) else {
            continue;
        };
        let hit = eff.ports.intersect(&undecided);
        if hit.is_empty() || eff.action == Action::Continue {
            continue;
        }
        let target = match &eff.action {
            Action::Jump(t) | Action::Goto(t) => table.chain(t).filter(|_| depth < MAX_DEPTH),
            _ => None,
        };
        match (&eff.action, eff.exact, target) {
            (Action::Accept, true, _) => undecided = undecided.subtract(&hit),
            (Action::Drop, true, _) => {
                res.blocked.push((hit.clone(), rule_ref(rule)));
                undecided = undecided.subtract(&hit);
            }
            (Action::Return, true, _) => {
                res.returned = res.returned.union(&hit);
                undecided = undecided.subtract(&hit);
            }
            (Action::Jump(_) | Action::Goto(_), true, Some(sub_chain)) => {
                let sub = walk_chain(table, sub_chain, w, &hit, depth + 1);
                res.blocked.extend(sub.blocked);
                res.unverified.extend(sub.unverified);
                if matches!(eff.action, Action::Jump(_)) {
                    // What the jumped-to chain returns goes on with the next rule.
                    undecided = undecided.subtract(&hit.subtract(&sub.returned));
                } else {
                    res.returned = res.returned.union(&sub.returned);
                    undecided = undecided.subtract(&hit);
                }
            }
            (action, _, _) => {
                let why = match action {
                    Action::Other(what) => format!("ends in {what}"),
                    Action::Jump(t) | Action::Goto(t) if eff.exact => {
                        format!("jumps to chain {t}, which portwarden could not follow")
                    }
                    _ => eff.why.clone().unwrap_or_else(|| "is not evaluated".into()),
                };
                res.unverified.push((hit.clone(), unverified(rule, &why)));
                undecided = undecided.subtract(&hit);
            }
        }
    }
    res.returned = res.returned.union(&undecided);
    res
}

/// What a base chain does to the connection's ports: what reaches the
/// policy is refused when the policy is `drop`.
fn walk(table: &Table, chain: &Chain, w: &Want<'_>, ports: &PortSet) -> Walk {
    let base = chain.base.as_ref().expect("a base chain");
    let mut res = walk_chain(table, chain, w, ports, 0);
    if !res.returned.is_empty() && base.policy == Policy::Drop {
        let d = DecidedBy::Policy(PolicyRef {
            family: table.family,
            table: table.name.clone(),
            chain: chain.name.clone(),
            policy: base.policy,
        });
        res.blocked.push((res.returned.clone(), d));
    }
    res
}

fn sees(table: Family, v6: bool) -> bool {
    match table {
        Family::Inet => true,
        Family::Ip => !v6,
        Family::Ip6 => v6,
        _ => false,
    }
}

/// Whether a chain, or a chain it jumps to, may rewrite packets (NAT,
/// payload mangling, tproxy).
fn rewrites_destination(table: &Table, chain: &Chain, depth: usize) -> bool {
    chain.rules.iter().any(|r| {
        r.exprs.iter().any(|e| match e {
            Expr::Nat { .. }
            | Expr::Redir { .. }
            | Expr::PayloadSet { .. }
            | Expr::Tproxy { .. } => true,
            Expr::Immediate {
                verdict: Some(NftVerdict::Jump(t) | NftVerdict::Goto(t)),
                ..
            } => match table.chain(t) {
                Some(c) if depth < MAX_DEPTH => rewrites_destination(table, c, depth + 1),
                Some(_) => true,
                None => false,
            },
            _ => false,
        })
    })
}

fn req_name(r: &ResolvedRequirement) -> String {
    format!("{}/{}", r.role, r.requirement)
}

/// `outbound-blocked` findings, and notes for what could not be verified.
pub(crate) fn blocked(ctx: &Ctx<'_>, notes: &mut Vec<String>) -> Vec<Draft> {
    let snapshot = ctx.input.snapshot;
    let loopback_ifindex: Vec<u32> = ctx
        .input
        .evaluator
        .routes()
        .interfaces
        .iter()
        .filter(|i| i.iftype == ARPHRD_LOOPBACK || i.name == "lo")
        .map(|i| i.index)
        .collect();
    let output_chains: Vec<(&Table, &Chain)> = snapshot
        .tables
        .iter()
        .filter(|t| !t.dormant())
        .flat_map(|t| {
            t.chains
                .iter()
                .filter(|c| c.base.as_ref().is_some_and(|b| b.hook == Hook::Output))
                .map(move |c| (t, c))
        })
        .collect();
    let egress = snapshot.tables.iter().any(|t| {
        !t.dormant()
            && t.chains
                .iter()
                .any(|c| c.base.as_ref().is_some_and(|b| b.hook == Hook::Egress))
    });
    let mut drafts = Vec::new();
    for r in ctx.input.requirements {
        if r.direction != Direction::Out || r.ports.is_empty() {
            continue;
        }
        let peers = requirement_peers(r, ctx.input.config);
        if peers.is_empty() {
            continue;
        }
        let what = req_name(r);
        if egress {
            notes.push(format!(
                "outbound {} {} ({what}) not verified against netdev egress chains: portwarden does not read them",
                r.proto, r.ports
            ));
        }
        let proto = l4(r.proto).proto();
        // blocker key -> (blocker, ports, peers)
        let mut by_blocker: BTreeMap<String, (DecidedBy, PortSet, Peers)> = BTreeMap::new();
        for v6 in [false, true] {
            let fam = if v6 { AddrFamily::V6 } else { AddrFamily::V4 };
            let fam_peers = peers.family(fam);
            if fam_peers.is_empty() {
                continue;
            }
            let chains: Vec<&(&Table, &Chain)> = output_chains
                .iter()
                .filter(|(t, _)| sees(t.family, v6))
                .collect();
            if let Some((t, c)) = chains.iter().find(|(t, c)| rewrites_destination(t, c, 0)) {
                notes.push(format!(
                    "outbound {} {} to {} ({what}) not verified: table {} {} chain {} may rewrite destinations",
                    r.proto, r.ports, if v6 { "IPv6 peers" } else { "IPv4 peers" }, t.family, t.name, c.name
                ));
                continue;
            }
            let w = Want {
                proto,
                v6,
                peers: fam_peers,
                loopback_ifindex: &loopback_ifindex,
            };
            for (t, c) in chains {
                let res = walk(t, c, &w, &r.ports);
                for (ports, why) in res.unverified {
                    notes.push(format!(
                        "outbound {} {ports} to {} ({what}) not verified: {why}, which portwarden does not evaluate",
                        r.proto,
                        super::findings::peers_text(&single(fam_peers)),
                    ));
                }
                for (ports, d) in res.blocked {
                    let e = by_blocker
                        .entry(d.to_string())
                        .or_insert_with(|| (d.clone(), PortSet::new(), Peers::none()));
                    e.1 = e.1.union(&ports);
                    e.2.add(fam_peers);
                }
            }
        }
        for (key, (d, ports, bpeers)) in by_blocker {
            let fix = fix::open_outbound(ctx.manager, &d, r.proto, &bpeers, &ports);
            drafts.push(Draft {
                kind: FindingKind::OutboundBlocked,
                role: Some(r.role.clone()),
                requirement: Some(r.requirement.clone()),
                direction: Direction::Out,
                proto: r.proto,
                summary: format!(
                    "{} {ports} to {} is blocked: refused by {d} (needed for: {})",
                    r.proto,
                    super::findings::peers_text(&bpeers),
                    r.purpose.trim_end_matches('.'),
                ),
                ports,
                peers: bpeers.prefixes(),
                interfaces: Vec::new(),
                evidence: vec![Evidence::decided_by(snapshot, &d)],
                fix: Some(fix),
                pieces: Vec::new(),
                tiebreak: key,
            });
        }
    }
    drafts
}

fn single(s: &AddrSet) -> Peers {
    let mut p = Peers::none();
    p.add(s);
    p
}
