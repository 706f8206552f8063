//! `outbound-blocked`: required outbound connections that the output path
//! refuses, decided by the evaluator ([`Evaluator::explain_output`]).
//!
//! For each outbound requirement (protocol, destination ports, the peer
//! addresses its group is bound to) and each address family of its peers:
//!
//! - the peers are cut into parts, one per prefix (or one part when they
//!   are more than 8 prefixes); each part is probed from one address of it
//!   (preferably one in a connected subnet or routed prefix of the host;
//!   never a local, loopback, multicast or unspecified address), with the
//!   source address the host would pick (the output device's first address
//!   of the family) and source port [`PROBE_SPORT`];
//! - the required ports are cut where some rule's port test changes (the
//!   port marks of `findings`), and each piece is probed like
//!   `missing-opening` does (`findings::split_ports`: port by port when short, by
//!   bisection when long);
//! - the whole connection is checked: where the first packet leaves, its
//!   reply is followed back in (`Evaluator::explain` with `established`,
//!   from the peer's port to the probe's source port, on the device the
//!   packet left by);
//! - ports the output path drops or rejects, or whose replies the input
//!   path refuses, become `outbound-blocked` drafts, one per deciding rule
//!   or policy (and direction), with the exact port sub-ranges and peer
//!   prefixes, the rule or policy as evidence and the fix (an `accept`
//!   before the refusing rule, or at the end of the chain whose policy
//!   refuses; for refused replies `ct state established,related accept`),
//!   proven like every fix (`audit::prove`);
//! - ports the evaluator cannot decide (`unknown`: a route chain changing
//!   the mark, a netdev egress chain, no route to the peer, an undecidable
//!   match...) become notes ("not verified", with the reason), never
//!   findings.
//!
//! So a finding is as certain as the evaluator's answer for its probe
//! (checked against the kernel by `tests/kernel_output.rs`); within a peer
//! part, rules that tell its addresses apart are not split (one probe per
//! part).

use super::findings::{l4, peers_text, split_ports, Ctx, PROBE_SPORT};
use super::fix;
use super::prove::OwnedClaim;
use super::region::{requirement_peers, Peers};
use super::Draft;
use crate::addrs::{AddrFamily, AddrSet};
use crate::catalog::{Direction, ResolvedRequirement};
use crate::config::FindingKind;
use crate::eval::{DecidedBy, Evaluator, OutProbe, Probe, Verdict, L4};
use crate::host::ARPHRD_LOOPBACK;
use crate::ports::{PortRange, PortSet};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// More peer prefixes than this are probed as one part.
const MAX_PARTS: usize = 8;

fn req_name(r: &ResolvedRequirement) -> String {
    format!("{}/{}", r.role, r.requirement)
}

fn single(s: &AddrSet) -> Peers {
    let mut p = Peers::none();
    p.add(s);
    p
}

/// Whether a packet can be addressed to `a` at all (not unspecified,
/// loopback, multicast, broadcast, `0.0.0.0/8` or IPv6 link-local).
fn addressable(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => {
            !(v.octets()[0] == 0 || v.is_loopback() || v.is_multicast() || v.is_broadcast())
        }
        IpAddr::V6(v) => {
            !(v.is_unspecified()
                || v.is_loopback()
                || v.is_multicast()
                || (v.segments()[0] & 0xffc0) == 0xfe80)
        }
    }
}

/// The peer address to probe a part with: the part's second and first
/// address, else hosts of the connected and routed prefixes inside the
/// part; the first that leaves through a non-loopback device.
pub(crate) fn peer_address(ev: &Evaluator, part: &AddrSet) -> Option<IpAddr> {
    let v6 = part.family() == AddrFamily::V6;
    let mut cands: Vec<IpAddr> = Vec::new();
    if let Some((first, _)) = part.ranges().next() {
        let fam = part.family();
        let v = crate::addrs::addr_value(first);
        cands.push(fam.addr(v.saturating_add(1).min(fam.max())));
        cands.push(first);
    }
    let routes = ev.routes();
    for itf in routes
        .interfaces
        .iter()
        .filter(|i| i.iftype != ARPHRD_LOOPBACK)
    {
        for n in itf.addrs.iter().filter(|n| n.addr().is_ipv6() == v6) {
            cands.extend(n.hosts().take(4));
        }
    }
    for r in routes
        .routes
        .iter()
        .filter(|r| r.dst.addr().is_ipv6() == v6)
    {
        cands.extend(r.dst.hosts().take(2));
    }
    cands.into_iter().find(|a| {
        part.contains(*a)
            && addressable(*a)
            && ev
                .output_device(*a)
                .is_some_and(|d| d.iftype != ARPHRD_LOOPBACK)
    })
}

type Decided = (Verdict, Option<DecidedBy>);

/// A blocked or undecided piece: ports, peers, and what decided.
struct Piece {
    ports: PortRange,
    peers: AddrSet,
    decided: Decided,
    reason: Option<String>,
    /// The first packet leaves, but the reply is refused coming back in.
    reply: bool,
}

/// Probes one requirement's ports towards one part of its peers.
fn probe_part(
    ctx: &Ctx<'_>,
    proto: L4,
    ports: &PortSet,
    part: &AddrSet,
    out: &mut Vec<Piece>,
) -> Result<(), String> {
    let ev = ctx.input.evaluator;
    let daddr = peer_address(ev, part).ok_or_else(|| {
        "no address of it is routed through a non-loopback interface of this host".to_string()
    })?;
    let saddr = ev
        .output_source(daddr)
        .ok_or_else(|| format!("the output interface towards {daddr} has no address"))?;
    let reasons = std::cell::RefCell::new(BTreeMap::<u16, String>::new());
    let replies = std::cell::RefCell::new(std::collections::BTreeSet::<u16>::new());
    let probe = |port: u16| -> Decided {
        let a = ev.explain_output(&OutProbe::new(proto, saddr, daddr, PROBE_SPORT, port));
        if let Some(r) = a.reason.filter(|_| a.verdict == Verdict::Unknown) {
            reasons.borrow_mut().insert(port, r);
        }
        if a.verdict != Verdict::Accept {
            return (a.verdict, a.decided_by);
        }
        // The whole connection: the reply must come back in (input path,
        // conntrack state established) on the device the packet left by.
        let Some(dev) = ev.output_device(daddr) else {
            return (a.verdict, a.decided_by);
        };
        let mut back = Probe::new(proto, daddr, saddr, port, PROBE_SPORT, dev);
        back.established = true;
        let b = ev.explain(&back);
        if b.verdict == Verdict::Accept {
            return (a.verdict, a.decided_by);
        }
        if let Some(r) = b.reason.filter(|_| b.verdict == Verdict::Unknown) {
            reasons
                .borrow_mut()
                .insert(port, format!("the reply coming back in: {r}"));
        }
        replies.borrow_mut().insert(port);
        (b.verdict, b.decided_by)
    };
    for range in ports.ranges() {
        for (r, d) in split_ports(&probe, *range, &ctx.port_marks) {
            if d.0 == Verdict::Accept {
                continue;
            }
            let reason = reasons
                .borrow()
                .range(r.first()..=r.last())
                .next()
                .map(|(_, why)| why.clone());
            let reply = replies
                .borrow()
                .range(r.first()..=r.last())
                .next()
                .is_some();
            out.push(Piece {
                ports: r,
                peers: part.clone(),
                decided: d,
                reason,
                reply,
            });
        }
    }
    Ok(())
}

/// `outbound-blocked` findings, and notes for what could not be verified.
///
/// A requirement with alternatives ("80 or 443") gives findings only when
/// every alternative is blocked: those of the first alternative, whose fix
/// opens it, naming every alternative.
pub(crate) fn blocked(ctx: &Ctx<'_>, notes: &mut Vec<String>) -> Vec<Draft> {
    let mut drafts = Vec::new();
    for r in ctx.input.requirements {
        if r.direction != Direction::Out || r.ports.is_empty() {
            continue;
        }
        if r.any_of.is_empty() {
            let _ = blocked_one(ctx, r, &mut drafts, notes);
            continue;
        }
        let mut first: Option<(Vec<Draft>, Vec<String>)> = None;
        let mut open = None;
        let mut refusals = Vec::new();
        for alt in &r.any_of {
            let one = ResolvedRequirement {
                ports: alt.clone(),
                ..r.clone()
            };
            let (mut d, mut n) = (Vec::new(), Vec::new());
            let by = blocked_one(ctx, &one, &mut d, &mut n);
            if d.is_empty() {
                open = Some(n);
                break;
            }
            refusals.push(format!("{alt}: {}", by.join(", ")));
            first.get_or_insert((d, n));
        }
        match (open, first) {
            (Some(n), _) => notes.extend(n),
            (None, Some((mut d, n))) => {
                for x in &mut d {
                    x.summary.push_str(&format!(
                        "; {} needs one of {}, and none is open ({}; the fix opens the first)",
                        req_name(r),
                        crate::audit::findings::alternatives_text(r),
                        refusals.join("; ")
                    ));
                }
                drafts.extend(d);
                notes.extend(n);
            }
            (None, None) => {}
        }
    }
    drafts
}

/// The `outbound-blocked` findings of one requirement (all its ports
/// needed); returns what blocks each, as "refused by ...".
fn blocked_one(
    ctx: &Ctx<'_>,
    r: &ResolvedRequirement,
    drafts: &mut Vec<Draft>,
    notes: &mut Vec<String>,
) -> Vec<String> {
    let mut blockers = Vec::new();
    let peers = requirement_peers(r, ctx.input.config);
    if peers.is_empty() {
        return blockers;
    }
    let what = req_name(r);
    let proto = l4(r.proto);
    let mut pieces: Vec<Piece> = Vec::new();
    for fam in [AddrFamily::V4, AddrFamily::V6] {
        let fam_peers = peers.family(fam);
        if fam_peers.is_empty() {
            continue;
        }
        let prefixes = fam_peers.to_prefixes();
        let parts: Vec<AddrSet> = if prefixes.len() <= MAX_PARTS {
            prefixes
                .iter()
                .map(|n| AddrSet::from_prefixes(fam, [*n]))
                .collect()
        } else {
            vec![fam_peers.clone()]
        };
        for part in parts {
            if let Err(why) = probe_part(ctx, proto, &r.ports, &part, &mut pieces) {
                notes.push(format!(
                    "outbound {} {} to {} ({what}) not verified: {why}",
                    r.proto,
                    r.ports,
                    peers_text(&single(&part)),
                ));
            }
        }
    }
    // (blocker, reply) -> (blocker, ports, peers)
    let mut by_blocker: BTreeMap<(String, bool), (DecidedBy, PortSet, Peers)> = BTreeMap::new();
    let mut undecided: BTreeMap<String, (PortSet, Peers)> = BTreeMap::new();
    for p in pieces {
        let ports = PortSet::from_ranges([p.ports]);
        match (p.decided.0, p.decided.1) {
            (Verdict::Drop | Verdict::Reject, Some(d)) => {
                let e = by_blocker
                    .entry((d.to_string(), p.reply))
                    .or_insert_with(|| (d, PortSet::new(), Peers::none()));
                e.1 = e.1.union(&ports);
                e.2.add(&p.peers);
            }
            (v, _) => {
                let why = p
                    .reason
                    .unwrap_or_else(|| format!("the evaluator says {v}"));
                let e = undecided
                    .entry(why)
                    .or_insert_with(|| (PortSet::new(), Peers::none()));
                e.0 = e.0.union(&ports);
                e.1.add(&p.peers);
            }
        }
    }
    for (why, (ports, ps)) in undecided {
        notes.push(format!(
            "outbound {} {ports} to {} ({what}) not verified: {why}",
            r.proto,
            peers_text(&ps),
        ));
    }
    for ((key, reply), (d, ports, bpeers)) in by_blocker {
        let mut conns = Vec::new();
        for s in [&bpeers.v4, &bpeers.v6] {
            for net in s.prefixes().take(MAX_PARTS) {
                let part = AddrSet::from_prefixes(s.family(), [net]);
                if let Some(a) = peer_address(ctx.input.evaluator, &part) {
                    conns.push((a, ports.clone()));
                }
            }
        }
        let claim = OwnedClaim::Outbound { proto, conns };
        let plan = if reply {
            fix::accept_replies(ctx.manager, &d)
        } else {
            fix::open_outbound(ctx.manager, &d, r.proto, &bpeers, &ports)
        };
        let fix = match plan {
            Ok(plan) => ctx.prover().defer(vec![plan], claim),
            Err(why) => fix::refusal(why).into(),
        };
        let how = if reply {
            "leaves, but its replies are refused coming back in"
        } else {
            "is blocked"
        };
        blockers.push(if reply {
            format!("replies refused by {d}")
        } else {
            format!("refused by {d}")
        });
        drafts.push(Draft {
            kind: FindingKind::OutboundBlocked,
            role: Some(r.role.clone()),
            requirement: Some(r.requirement.clone()),
            needed_by: Vec::new(),
            direction: Direction::Out,
            proto: r.proto,
            summary: format!(
                "{} {ports} to {} {how}: refused by {d} (needed for: {})",
                r.proto,
                peers_text(&bpeers),
                r.purpose.trim_end_matches('.'),
            ),
            ports,
            peers: bpeers.prefixes(),
            interfaces: Vec::new(),
            evidence: vec![ctx.rules.evidence(&d)],
            fix: Some(fix),
            pieces: Vec::new(),
            tiebreak: format!("{key}{}", if reply { "|reply" } else { "" }),
        });
    }
    blockers
}
