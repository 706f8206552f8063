//! Every fix is proven before it is shown.
//!
//! A candidate fix ([`Plan`]: typed [`Change`]s) is applied to a copy of
//! the snapshot; an [`Evaluator`] is built from the copy with the same
//! routes, and the exposure is computed again for the families and
//! protocols the changes can touch. The fix is shown only if, on the copy:
//!
//! - (a) what the finding reports is resolved, and (c) nothing else
//!   changes: per family, protocol, interface and local address, the
//!   accepted region (destination ports × source ports × source addresses)
//!   after the change is exactly the region before it with the finding's
//!   pieces added (a missing opening) or taken away (an excess opening),
//!   and what the evaluator cannot decide is unchanged; for an outbound
//!   finding the inbound exposure is unchanged and the finding's
//!   connections now leave (output path) and their replies come back in
//!   (input path, conntrack state `established`);
//! - (b) every required opening of every role and every `[[allow]]`
//!   opening that was accepted stays accepted (for every client source port);
//! - (d) sample connections of the host's own that worked before still
//!   work: the first packet out (`Evaluator::explain_output`) and the
//!   reply in (`explain` with `established`), towards the peers of every
//!   outbound requirement and an address behind every route (tcp 22, 443,
//!   udp 53, 123 and the required ports); and later packets of every
//!   required inbound connection (`established`) that were accepted still are.
//!
//! Otherwise the finding's fix says "no safe automatic fix", with the reason
//! and the traffic that shows it. Each proof copies and recompiles the
//! whole ruleset: at most [`MAX_PROOFS`] candidates, fewer on a larger
//! ruleset ([`PROOF_WORK`]), are proven per audit (the findings' fixes are
//! proven once every finding is known, most severe first), and none on a
//! ruleset larger than
//! [`MAX_RULES_PROVEN`] rules or [`MAX_ELEMENTS_PROVEN`] set elements; the
//! others say they were not proven.

use super::change::{apply_all, Change, Stmt};
use super::findings::{l4, local_addrs, Ctx, RawPiece, CLIENT_SPORTS, PROBE_SPORT};
use super::fix::{Fix, Plan};
use super::region::{self, family_of, Rect};
use crate::addrs::{AddrFamily, AddrSet};
use crate::catalog::{Direction, Proto};
use crate::eval::{Evaluator, Exposure, OutProbe, Probe, Verdict, L4};
use crate::host::ARPHRD_LOOPBACK;
use crate::ports::{PortRange, PortSet};
use ipnet::IpNet;
use rustc_hash::FxHashMap as HashMap;
use std::net::IpAddr;

/// At most this many proofs per audit (each rebuilds the evaluator and the
/// exposure of the changed families and protocols).
pub const MAX_PROOFS: usize = 256;

/// Rulesets with more rules than this, or more set elements than
/// [`MAX_ELEMENTS_PROVEN`], are not proven fix by fix in an audit (each
/// proof copies and recompiles the whole ruleset: about a second on a
/// 20,000-rule, 200,000-element host).
pub const MAX_RULES_PROVEN: usize = 5_000;

/// See [`MAX_RULES_PROVEN`].
pub const MAX_ELEMENTS_PROVEN: usize = 50_000;

/// What the fix must do.
pub(crate) enum Claim<'p> {
    /// Accept exactly these pieces of a protocol (a missing opening).
    Opens(L4, &'p [RawPiece]),
    /// Refuse exactly these pieces of a protocol (an excess opening).
    Closes(L4, &'p [RawPiece]),
    /// Let these connections out and their replies in; inbound unchanged.
    Outbound {
        /// Protocol.
        proto: L4,
        /// Peer addresses (one per part) with the ports to open.
        conns: Vec<(IpAddr, PortSet)>,
    },
}

/// [`Claim`], owning what it names: kept with a finding until its proof.
#[derive(Clone, Debug)]
pub(crate) enum OwnedClaim {
    /// See [`Claim::Opens`].
    Opens(L4, Vec<RawPiece>),
    /// See [`Claim::Closes`].
    Closes(L4, Vec<RawPiece>),
    /// See [`Claim::Outbound`].
    Outbound {
        /// Protocol.
        proto: L4,
        /// Peer addresses (one per part) with the ports to open.
        conns: Vec<(IpAddr, PortSet)>,
    },
}

impl OwnedClaim {
    fn borrow(&self) -> Claim<'_> {
        match self {
            OwnedClaim::Opens(p, pieces) => Claim::Opens(*p, pieces),
            OwnedClaim::Closes(p, pieces) => Claim::Closes(*p, pieces),
            OwnedClaim::Outbound { proto, conns } => Claim::Outbound {
                proto: *proto,
                conns: conns.clone(),
            },
        }
    }
}

/// A fix waiting for its proof: the candidates, best first, and what they
/// must do.
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    plans: Vec<Plan>,
    claim: OwnedClaim,
}

/// A finding's fix as the kinds build it: decided (a refusal), or waiting
/// for its proof, which the audit makes once every finding is known, most
/// severe first ([`Prover::prove_pending`]).
#[derive(Clone, Debug)]
pub(crate) enum Fixing {
    /// Decided.
    Done(Fix),
    /// To be proven.
    Pending(Pending),
}

impl From<Fix> for Fixing {
    fn from(f: Fix) -> Fixing {
        Fixing::Done(f)
    }
}

/// A connection of the host's own that works before any change.
#[derive(Clone, Debug)]
struct Conn {
    proto: L4,
    saddr: IpAddr,
    daddr: IpAddr,
    dport: u16,
    iif: crate::eval::Iface,
}

/// Later packets of an accepted inbound connection.
#[derive(Clone, Debug)]
struct Inbound {
    probe: Probe,
}

/// What the proofs share: the samples of (d), and the budget.
pub(crate) struct Prover {
    conns: Vec<Conn>,
    inbound: Vec<Inbound>,
    /// Why no fix of this ruleset is proven (too large), if so.
    too_big: Option<String>,
    /// How many proofs this audit makes: [`MAX_PROOFS`], fewer on a larger
    /// ruleset ([`PROOF_WORK`]).
    budget: usize,
}

/// The work all proofs of one audit may do together, in rules (plus set
/// elements / 16) compiled: each proof copies and recompiles the ruleset,
/// so on a ruleset of a few thousand rules with many findings they would
/// otherwise make an audit (and every change the daemon audits) take
/// seconds (with 256 proofs the audit of the daemon benchmark's 1,000-rule
/// host took 4.5 s, nearly all of it proving). Counted, not timed, so that
/// a busy machine does not get fewer proofs. At least 8 proofs.
pub const PROOF_WORK: usize = 30_000;

/// The reply to `c` as it comes back in.
fn reply_probe(c: &Conn) -> Probe {
    let mut p = Probe::new(
        c.proto,
        c.daddr,
        c.saddr,
        c.dport,
        PROBE_SPORT,
        c.iif.clone(),
    );
    p.established = true;
    p
}

/// Whether a connection works: out, and its reply back in.
fn conn_works(ev: &Evaluator, c: &Conn) -> Result<(), String> {
    let out = ev.explain_output(&OutProbe::new(
        c.proto,
        c.saddr,
        c.daddr,
        PROBE_SPORT,
        c.dport,
    ));
    if out.verdict != Verdict::Accept {
        return Err(format!(
            "{} {}:{} -> {}:{} out: {}{}",
            c.proto,
            c.saddr,
            PROBE_SPORT,
            c.daddr,
            c.dport,
            out.verdict,
            out.decided_by
                .map(|d| format!(" by {d}"))
                .unwrap_or_default()
        ));
    }
    let back = ev.decide(&reply_probe(c));
    if back.0 != Verdict::Accept {
        return Err(format!(
            "the reply {} {}:{} -> {}:{} (established) in on {}: {}{}",
            c.proto,
            c.daddr,
            c.dport,
            c.saddr,
            PROBE_SPORT,
            c.iif.name,
            back.0,
            back.1.map(|d| format!(" by {d}")).unwrap_or_default()
        ));
    }
    Ok(())
}

/// A connection to `daddr`, from the address and interface the routes pick.
fn conn_to(ev: &Evaluator, proto: L4, daddr: IpAddr, dport: u16) -> Option<Conn> {
    let iif = ev.output_device(daddr)?;
    if iif.iftype == ARPHRD_LOOPBACK {
        return None;
    }
    let saddr = ev.output_source(daddr)?;
    Some(Conn {
        proto,
        saddr,
        daddr,
        dport,
        iif,
    })
}

/// A few addresses to connect to: hosts of the connected and routed
/// prefixes, and an address behind a default route.
fn destinations(ev: &Evaluator) -> Vec<IpAddr> {
    let routes = ev.routes();
    let mut out: Vec<IpAddr> = Vec::new();
    for i in routes
        .interfaces
        .iter()
        .filter(|i| i.iftype != ARPHRD_LOOPBACK)
    {
        for n in &i.addrs {
            if let Some(h) = n.hosts().find(|h| *h != n.addr()) {
                out.push(h);
            }
        }
    }
    for r in &routes.routes {
        if let Some(h) = r.dst.hosts().nth(1) {
            out.push(h);
        }
    }
    for a in ["198.51.100.7", "2001:db8:77::7"] {
        out.push(a.parse().expect("address"));
    }
    out.retain(|a| match a {
        IpAddr::V6(v) => (v.segments()[0] & 0xffc0) != 0xfe80 && !v.is_multicast(),
        IpAddr::V4(v) => !v.is_multicast() && !v.is_loopback(),
    });
    out.sort();
    out.dedup();
    out
}

impl Prover {
    /// The samples of (d), as the ruleset answers them before any change
    /// (only those that work are kept: a fix must not break them).
    pub fn new(ctx: &Ctx<'_>) -> Prover {
        let ev = ctx.input.evaluator;
        let tables = &ctx.input.snapshot.tables;
        let rules: usize = tables
            .iter()
            .flat_map(|t| &t.chains)
            .map(|c| c.rules.len())
            .sum();
        let elements: usize = tables
            .iter()
            .flat_map(|t| &t.sets)
            .map(|s| s.elements.len())
            .sum();
        let all = ctx.input.proofs == super::Proofs::All;
        if !all && (rules > MAX_RULES_PROVEN || elements > MAX_ELEMENTS_PROVEN) {
            return Prover {
                conns: Vec::new(),
                inbound: Vec::new(),
                budget: 0,
                too_big: Some(format!(
                    "not proven: the ruleset ({rules} rules, {elements} set elements) is too large to prove fixes one by one in every audit (at most {MAX_RULES_PROVEN} rules and {MAX_ELEMENTS_PROVEN} elements); `portwarden audit --prove-all` proves them"
                )),
            };
        }
        let mut conns = Vec::new();
        let mut want: Vec<(L4, IpAddr, u16)> = Vec::new();
        for d in destinations(ev) {
            for (p, port) in [(L4::Tcp, 22), (L4::Tcp, 443), (L4::Udp, 53), (L4::Udp, 123)] {
                want.push((p, d, port));
            }
        }
        for r in ctx.input.requirements {
            if r.direction != Direction::Out {
                continue;
            }
            let peers = region::requirement_peers(r, ctx.input.config);
            for s in [&peers.v4, &peers.v6] {
                for net in s.prefixes().take(4) {
                    let part = AddrSet::from_prefixes(s.family(), [net]);
                    if let Some(a) = super::outbound::peer_address(ev, &part) {
                        for range in r.ports.ranges().iter().take(4) {
                            want.push((l4(r.proto), a, range.first()));
                            want.push((l4(r.proto), a, range.last()));
                        }
                    }
                }
            }
        }
        want.sort_by_key(|w| (w.0 == L4::Udp, w.1, w.2));
        want.dedup();
        for (p, d, port) in want {
            if let Some(c) = conn_to(ev, p, d, port) {
                if conn_works(ev, &c).is_ok() {
                    conns.push(c);
                }
            }
        }
        // Later packets of the required inbound connections.
        let mut inbound = Vec::new();
        for iface in &ctx.ifaces {
            for to in local_addrs(iface) {
                let fam = family_of(to);
                for proto in [Proto::Tcp, Proto::Udp] {
                    for w in ctx.wanted(proto, &iface.name, fam) {
                        let Some(from) = w
                            .sources
                            .prefixes()
                            .next()
                            .and_then(|n| n.hosts().find(|h| *h != to).or(Some(n.addr())))
                        else {
                            continue;
                        };
                        for r in w.ports.ranges().iter().take(4) {
                            for port in [r.first(), r.last()] {
                                let mut p = Probe::new(
                                    l4(proto),
                                    from,
                                    to,
                                    PROBE_SPORT,
                                    port,
                                    ev.iface(&iface.name),
                                );
                                p.established = true;
                                if ev.decide(&p).0 == Verdict::Accept {
                                    inbound.push(Inbound { probe: p });
                                }
                            }
                        }
                    }
                }
            }
        }
        Prover {
            conns,
            inbound,
            too_big: None,
            budget: if all {
                MAX_PROOFS
            } else {
                (PROOF_WORK / (rules + elements / 16 + 1)).clamp(8, MAX_PROOFS)
            },
        }
    }

    /// The candidates `plans` (best first) for `claim`, to be proven once
    /// every finding is known.
    pub fn defer(&self, plans: Vec<Plan>, claim: OwnedClaim) -> Fixing {
        if plans.is_empty() {
            return Fixing::Done(super::fix::refusal("no candidate fix".into()));
        }
        Fixing::Pending(Pending { plans, claim })
    }

    /// Proves the pending fixes, given most severe first: as many as the
    /// budget allows (each candidate tried counts), in that order whatever
    /// the number of cores, and all of them side by side. The others say
    /// they were not proven.
    pub fn prove_pending(&self, ctx: &Ctx<'_>, pending: Vec<Pending>) -> Vec<Fix> {
        use rayon::prelude::*;
        let mut left = self.budget;
        let jobs: Vec<(Pending, bool)> = pending
            .into_iter()
            .map(|p| {
                let n = p.plans.len();
                let within = self.too_big.is_none() && n <= left;
                if within {
                    left -= n;
                }
                (p, within)
            })
            .collect();
        jobs.into_par_iter()
            .map(|(p, within)| {
                if within {
                    self.prove_first(ctx, p.plans, &p.claim.borrow())
                } else {
                    let why = self.too_big.clone().unwrap_or_else(|| {
                        format!(
                            "not proven: an audit of this ruleset proves at most {} fixes, and this host has more findings with a fix (the most severe are proven first); `portwarden audit --prove-all` proves up to {MAX_PROOFS}",
                            self.budget
                        )
                    });
                    Fix::NoSafeFix {
                        reason: format!("{why} (the candidate was: {})", candidate_text(&p.plans[0])),
                        evidence: Vec::new(),
                    }
                }
            })
            .collect()
    }

    /// Proves `plan` for `claim`; the fix to show, or why there is none.
    fn prove(&self, ctx: &Ctx<'_>, plan: Plan, claim: &Claim<'_>) -> Fix {
        match self.check(ctx, &plan, claim) {
            Ok(()) => plan.proven(),
            Err((reason, evidence)) => Fix::NoSafeFix {
                reason: format!("{reason} (the candidate was: {})", candidate_text(&plan)),
                evidence,
            },
        }
    }

    /// The first of `plans` that is proven; else why the first is not.
    fn prove_first(&self, ctx: &Ctx<'_>, plans: Vec<Plan>, claim: &Claim<'_>) -> Fix {
        let mut first: Option<Fix> = None;
        for plan in plans {
            match self.prove(ctx, plan, claim) {
                f @ Fix::Proven { .. } => return f,
                f => {
                    first.get_or_insert(f);
                }
            }
        }
        first.unwrap_or_else(|| super::fix::refusal("no candidate fix".into()))
    }

    fn check(&self, ctx: &Ctx<'_>, plan: &Plan, claim: &Claim<'_>) -> Result<(), Failure> {
        if let Some(why) = &self.too_big {
            return Err((why.clone(), Vec::new()));
        }
        let mut copy = ctx.input.snapshot.clone();
        apply_all(&mut copy, &plan.changes)
            .map_err(|e| (format!("the change cannot be applied: {e}"), Vec::new()))?;
        let ev = ctx.input.evaluator.like(&copy);
        let touched = touched(&plan.changes);
        let only = |f: AddrFamily, p: L4| {
            touched
                .iter()
                .any(|&(tf, tp)| tf.map_or(true, |x| x == f) && tp.map_or(true, |x| x == p))
        };
        let after = ev.exposure_of(&only);
        let before = ctx.input.exposure;
        // (a) and (c)
        let (proto, pieces, opens) = match claim {
            Claim::Opens(proto, p) => (*proto, *p, true),
            Claim::Closes(proto, p) => (*proto, *p, false),
            Claim::Outbound { proto, .. } => (*proto, &[][..], false),
        };
        // Only what the audit looks at: each interface with its own
        // addresses (a packet to another interface's address is another
        // question, answered for that one).
        let own: Vec<(String, IpAddr)> = ctx
            .ifaces
            .iter()
            .flat_map(|i| local_addrs(i).into_iter().map(|a| (i.name.clone(), a)))
            .collect();
        let mine = |iif: &str, to: IpAddr| own.iter().any(|(i, a)| i == iif && *a == to);
        compare(before, &after, &only, &mine, proto, pieces, opens)?;
        if let Claim::Outbound { proto, conns } = claim {
            for (daddr, ports) in conns {
                for r in ports.ranges().iter().take(16) {
                    for port in [r.first(), r.first() + (r.last() - r.first()) / 2, r.last()] {
                        let c = conn_to(&ev, *proto, *daddr, port)
                            .ok_or_else(|| (format!("no route to {daddr}"), Vec::new()))?;
                        conn_works(&ev, &c).map_err(|e| {
                            (
                                "after the change the connection is still refused".to_string(),
                                vec![e],
                            )
                        })?;
                    }
                }
            }
        }
        // (b)
        wanted_kept(ctx, before, &after, &only)?;
        // (d)
        let mut broken = Vec::new();
        for c in &self.conns {
            if let Err(e) = conn_works(&ev, c) {
                broken.push(e);
            }
        }
        for i in &self.inbound {
            let (v, d) = ev.decide(&i.probe);
            if v != Verdict::Accept {
                let p = &i.probe;
                broken.push(format!(
                    "{} {}:{} -> {}:{} (established) in on {}: {v}{}",
                    p.proto,
                    p.saddr,
                    p.sport,
                    p.daddr,
                    p.dport,
                    p.iif.name,
                    d.map(|d| format!(" by {d}")).unwrap_or_default()
                ));
            }
        }
        if !broken.is_empty() {
            broken.truncate(4);
            return Err((
                "the change would break established connections or replies to the host's own connections"
                    .into(),
                broken,
            ));
        }
        Ok(())
    }
}

type Failure = (String, Vec<String>);

fn candidate_text(plan: &Plan) -> String {
    let cmds: Vec<String> = plan.changes.iter().map(Change::nft).collect();
    let mut t = cmds.iter().take(3).cloned().collect::<Vec<_>>().join("; ");
    if cmds.len() > 3 {
        t.push_str(&format!("; ... ({} commands)", cmds.len()));
    }
    t
}

/// The families and protocols the changes can touch (`None`: any).
fn touched(changes: &[Change]) -> Vec<(Option<AddrFamily>, Option<L4>)> {
    let mut out = Vec::new();
    for c in changes {
        match c {
            Change::InsertRule { rule, .. }
            | Change::AddRule { rule, .. }
            | Change::InsertLegacyRule { rule, .. } => {
                let mut fam = None;
                let mut proto = None;
                for m in &rule.matches {
                    match m {
                        Stmt::Nfproto { family } | Stmt::Addr { family, .. } => fam = Some(*family),
                        Stmt::Dport { proto: p, .. } => proto = Some(l4(*p)),
                        _ => {}
                    }
                }
                out.push((fam, proto));
            }
            // A set may be looked up by any rule of its table.
            Change::DeleteRule { .. }
            | Change::AddElement { .. }
            | Change::DeleteElement { .. } => out.push((None, None)),
            Change::AddTable { .. } | Change::AddBaseChain { .. } => {}
        }
    }
    out
}

/// (family, protocol, interface, local address).
type Key = (AddrFamily, L4, String, IpAddr);

/// Destination ports × source ports × sources.
struct Cube {
    d: PortRange,
    s: PortRange,
    src: AddrSet,
}

fn cubes(
    exp: &Exposure,
    verdict: Verdict,
    only: &dyn Fn(AddrFamily, L4) -> bool,
) -> HashMap<Key, Vec<Cube>> {
    let mut m: HashMap<Key, Vec<Cube>> = HashMap::default();
    for o in &exp.openings {
        if o.verdict != verdict || !only(o.family, o.proto) || o.sources.is_empty() {
            continue;
        }
        for &to in &o.to {
            m.entry((o.family, o.proto, o.iif.clone(), to))
                .or_default()
                .push(Cube {
                    d: o.ports,
                    s: o.sports,
                    src: o.sources.clone(),
                });
        }
    }
    m
}

fn bounds(rs: impl Iterator<Item = PortRange>) -> Vec<u32> {
    let mut b: Vec<u32> = vec![0];
    for r in rs {
        b.push(u32::from(r.first()));
        b.push(u32::from(r.last()) + 1);
    }
    b.sort_unstable();
    b.dedup();
    b.retain(|x| *x <= 65535);
    b
}

fn atoms(b: &[u32]) -> Vec<PortRange> {
    b.iter()
        .enumerate()
        .map(|(i, &lo)| {
            let hi = b.get(i + 1).map_or(65535, |n| n - 1);
            PortRange::new(lo as u16, hi as u16).expect("ordered")
        })
        .collect()
}

fn few(s: &AddrSet) -> String {
    let n = s.prefix_count();
    let v: Vec<String> = s.prefixes().take(3).map(|p: IpNet| p.to_string()).collect();
    if n > 3 {
        format!("{} ... ({n} prefixes)", v.join(", "))
    } else {
        v.join(", ")
    }
}

/// (a) and (c): after = before ∪ pieces (`opens`) or before \ pieces, for
/// the accepted region; the undecided region unchanged.
fn compare(
    before: &Exposure,
    after: &Exposure,
    only: &dyn Fn(AddrFamily, L4) -> bool,
    mine: &dyn Fn(&str, IpAddr) -> bool,
    proto: L4,
    pieces: &[RawPiece],
    opens: bool,
) -> Result<(), Failure> {
    let mut p: HashMap<Key, Vec<Cube>> = HashMap::default();
    for piece in pieces {
        let fam = piece.sources.family();
        for &to in &piece.to {
            p.entry((fam, proto, piece.iface.clone(), to))
                .or_default()
                .push(Cube {
                    d: piece.ports,
                    s: PortRange::new(0, 65535).expect("all"),
                    src: piece.sources.clone(),
                });
        }
    }
    for verdict in [Verdict::Accept, Verdict::Unknown] {
        let mut b = cubes(before, verdict, only);
        let mut a = cubes(after, verdict, only);
        b.retain(|k, _| mine(&k.2, k.3));
        a.retain(|k, _| mine(&k.2, k.3));
        let empty = HashMap::default();
        let p = if verdict == Verdict::Accept {
            &p
        } else {
            &empty
        };
        let mut keys: Vec<&Key> = b.keys().chain(a.keys()).chain(p.keys()).collect();
        keys.sort_by_key(|k| (k.0 == AddrFamily::V6, k.1 == L4::Udp, k.2.as_str(), k.3));
        keys.dedup();
        let none: Vec<Cube> = Vec::new();
        for k in keys {
            let (bc, ac, pc) = (
                b.get(k).unwrap_or(&none),
                a.get(k).unwrap_or(&none),
                p.get(k).unwrap_or(&none),
            );
            let db = bounds(bc.iter().chain(ac).chain(pc).map(|c| c.d));
            for atom in atoms(&db) {
                let cover = |v: &[Cube]| -> Vec<usize> {
                    (0..v.len())
                        .filter(|&i| v[i].d.contains(atom.first()))
                        .collect()
                };
                let (ib, ia, ip) = (cover(bc), cover(ac), cover(pc));
                if ib.is_empty() && ia.is_empty() {
                    if !ip.is_empty() && opens {
                        // pieces to open, nothing accepted after: checked below
                    } else {
                        continue;
                    }
                }
                let sb = bounds(
                    ib.iter()
                        .map(|&i| bc[i].s)
                        .chain(ia.iter().map(|&i| ac[i].s)),
                );
                for satom in atoms(&sb) {
                    let un = |v: &[Cube], idx: &[usize]| {
                        AddrSet::union_all(
                            k.0,
                            idx.iter()
                                .filter(|&&i| v[i].s.contains(satom.first()))
                                .map(|&i| &v[i].src),
                        )
                    };
                    let (sb, sa, sp) = (un(bc, &ib), un(ac, &ia), un(pc, &ip));
                    let expect = if opens {
                        sb.union(&sp)
                    } else {
                        sb.subtract(&sp)
                    };
                    if sa != expect {
                        let extra = sa.subtract(&expect);
                        let lost = expect.subtract(&sa);
                        let mut ev = Vec::new();
                        let what = |s: &AddrSet, how: &str| {
                            format!(
                                "{} {atom} from {} (source ports {satom}) to {} on {}: {how}",
                                k.1,
                                few(s),
                                k.3,
                                k.2
                            )
                        };
                        let undecided = if verdict == Verdict::Unknown {
                            "undecided "
                        } else {
                            ""
                        };
                        if !extra.is_empty() {
                            ev.push(what(
                                &extra,
                                &format!("{undecided}accepted after the change, not before"),
                            ));
                        }
                        if !lost.is_empty() {
                            ev.push(what(
                                &lost,
                                &format!("{undecided}accepted before the change, not after"),
                            ));
                        }
                        let reason = match (opens, extra.is_empty()) {
                            (true, true) => "after the change part of what the finding reports is still refused",
                            (false, false) => "after the change part of what the finding reports is still accepted",
                            _ => "the change alters traffic the finding does not report",
                        };
                        return Err((reason.into(), ev));
                    }
                }
            }
        }
    }
    Ok(())
}

/// (b): every wanted opening accepted before (for every client source
/// port) is accepted after.
fn wanted_kept(
    ctx: &Ctx<'_>,
    before: &Exposure,
    after: &Exposure,
    only: &dyn Fn(AddrFamily, L4) -> bool,
) -> Result<(), Failure> {
    let clients = |o: &crate::eval::Opening| {
        o.sports.first() <= CLIENT_SPORTS.0 && o.sports.last() >= CLIENT_SPORTS.1
    };
    let rects = |exp: &Exposure, k: &Key| -> Vec<Rect> {
        exp.openings
            .iter()
            .filter(|o| {
                o.verdict == Verdict::Accept
                    && o.family == k.0
                    && o.proto == k.1
                    && o.iif == k.2
                    && o.to.contains(&k.3)
                    && clients(o)
            })
            .map(|o| Rect {
                ports: PortSet::from_ranges([o.ports]),
                sources: o.sources.clone(),
            })
            .collect()
    };
    let mut lost = Vec::new();
    for iface in &ctx.ifaces {
        for to in local_addrs(iface) {
            let fam = family_of(to);
            for proto in [Proto::Tcp, Proto::Udp] {
                if !only(fam, l4(proto)) {
                    continue;
                }
                let wanted = ctx.wanted(proto, &iface.name, fam);
                if wanted.is_empty() {
                    continue;
                }
                let k: Key = (fam, l4(proto), iface.name.clone(), to);
                let (b, a) = (rects(before, &k), rects(after, &k));
                for w in &wanted {
                    let ub: Vec<Rect> = region::uncovered(&w.ports, &w.sources, &b)
                        .into_iter()
                        .map(|(r, s)| Rect {
                            ports: PortSet::from_ranges([r]),
                            sources: s,
                        })
                        .collect();
                    for (r, s) in region::uncovered(&w.ports, &w.sources, &a) {
                        for (r2, s2) in region::uncovered(&PortSet::from_ranges([r]), &s, &ub) {
                            lost.push(format!(
                                "{proto} {r2} from {} to {to} on {}: wanted, accepted before the change, refused after",
                                few(&s2),
                                iface.name
                            ));
                        }
                    }
                }
            }
        }
    }
    if lost.is_empty() {
        Ok(())
    } else {
        lost.truncate(4);
        Err((
            "the change would refuse an opening a role requires or an [[allow]] entry allows"
                .into(),
            lost,
        ))
    }
}
