//! The exposure map: which new inbound connections the ruleset accepts,
//! over the whole source-address and port spaces.
//!
//! # How
//!
//! The map is exact for what [`Evaluator::explain`] decides, because it *is*
//! `explain`, run on one representative of each class of probes the ruleset
//! cannot tell apart:
//!
//! 1. For each family, protocol and class of non-loopback input interfaces
//!    that no rule tells apart (a *combination*; see `eval/ifclass.rs`),
//!    the rules that can run are those whose leading
//!    `meta nfproto`/`l4proto`/`protocol`/`iifname` tests do not exclude it.
//!    What a rule that does not read the interface contributes below is the
//!    same for every class of a family and protocol: it is recorded once and
//!    replayed.
//! 2. Every expression of those rules that reads the source address or a
//!    port is found by following register contents through the rule
//!    (`payload`, `ct original saddr`, masks, concatenations, `cmp`,
//!    `range`, set and map lookups, `xt` tcp/udp/multiport/iprange). Port
//!    tests give *boundaries*; the destination ports split into intervals
//!    ("atoms") inside which no test changes. Address tests give
//!    *predicates* (address sets: a prefix, a range, the elements of a set
//!    that map to the same thing).
//! 3. A predicate guarded by destination-port tests that run before it in
//!    its rule only matters for those ports. The others are *common*: their
//!    classes (addresses with the same membership in every common
//!    predicate, found by one sweep; a 200,000-range blocklist makes two
//!    classes, not 400,000) are computed once, then refined per port atom
//!    with that atom's own predicates only. Likewise, when nothing rewrites
//!    the packet, every predicate of a rule whose guard (its leading pure
//!    conditions, see `compile::guard_of`) tests the destination port only
//!    matters for the ports that guard lets through: for the others the
//!    interpreter skips the rule without running it. So `ip saddr X tcp
//!    dport N accept` refines port `N` alone.
//! 4. One probe per (group of local addresses, source-port atom,
//!    destination-port atom, address class) is evaluated; accepted (or
//!    `unknown`) classes become [`Opening`]s, and neighbouring port atoms
//!    with the same outcome are merged. Local addresses that no rule tells
//!    apart (no destination-address test distinguishes them) form one group
//!    ([`Alike`]) and share their openings: an opening's `to` is the group.
//!
//! Routes are predicates too (for `fib` and `xt addrtype`), and the ports of
//! known sockets are boundaries (for `socket` and `tproxy`).
//!
//! # What is not symbolic
//!
//! The destination address takes each local address of the family in turn
//! (not broadcast or multicast ones). An address test that is not a prefix,
//! range or set of ranges (a non-prefix mask, a shift, an address copied
//! into a mark) cannot be split into classes: the combination is then
//! reported as one `unknown` opening with the reason.

use super::compile::{BitKind, CData, Op, Program, SetInfo, SetKind, Test};
use super::exec::{self, Dec};
use super::{DecidedBy, Evaluator, Iface, Probe, Verdict, L4};
use crate::addrs::{addr_value, AddrFamily, AddrSet};
use crate::ports::{PortRange, PortSet};
use crate::snapshot::xt::XtInfo;
use crate::snapshot::{CtKey, Family, MetaKey, PayloadBase};
use serde::Serialize;
use smallvec::SmallVec;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// What the ruleset accepts, for new inbound TCP and UDP connections.
#[derive(Clone, Debug, Serialize)]
pub struct Exposure {
    /// Accepted (or possibly accepted) regions, by family, protocol,
    /// interface, local addresses and port intervals.
    pub openings: Vec<Opening>,
    /// For each family, protocol and interface, the local addresses that
    /// no rule tells apart, in groups: one evaluation served each group,
    /// so any member stands for all (an [`Opening`]'s `to` is one group).
    #[serde(skip)]
    pub alike: Vec<Alike>,
    /// For each family and protocol, the input interfaces the ruleset
    /// cannot tell apart, in classes: one evaluation served each class, and
    /// any member stands for all (see [`Exposure::stand_in`]).
    #[serde(skip)]
    pub classes: Vec<IfClass>,
    /// What limited the analysis (no interfaces known...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Input interfaces the ruleset treats alike, for new connections of one
/// family and protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfClass {
    /// Address family.
    pub family: AddrFamily,
    /// Transport protocol.
    pub proto: L4,
    /// The interfaces (never empty); the first was evaluated.
    pub interfaces: Vec<String>,
}

/// Local addresses the ruleset treats alike, for one family, protocol and
/// input interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alike {
    /// Address family.
    pub family: AddrFamily,
    /// Transport protocol.
    pub proto: L4,
    /// Input interface.
    pub iif: String,
    /// The addresses (never empty).
    pub to: Vec<IpAddr>,
}

/// One accepted region: new connections of `proto` from `sources` and
/// `sports` to any of the addresses `to`, ports `ports`, arriving on `iif`.
#[derive(Clone, Debug, Serialize)]
pub struct Opening {
    /// Address family.
    pub family: AddrFamily,
    /// Transport protocol.
    pub proto: L4,
    /// Input interface.
    pub iif: String,
    /// Local destination addresses (those no rule tells apart share one
    /// opening).
    pub to: Vec<IpAddr>,
    /// Destination ports.
    pub ports: PortRange,
    /// Source ports.
    pub sports: PortRange,
    /// Source addresses.
    pub sources: AddrSet,
    /// [`Verdict::Accept`], or [`Verdict::Unknown`] (may be accepted).
    pub verdict: Verdict,
    /// The rule or policy that decided (as [`Evaluator::explain`] reports).
    pub decided_by: Option<DecidedBy>,
    /// Why the verdict is `unknown`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The verdict depends on the time of day (or date): a time match
    /// (`meta hour`/`day`/`time`, xt `time`) decided it at the moment the
    /// map is for, and with the time unknown it would be another.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub time_dependent: bool,
}

impl Opening {
    /// Whether the opening covers the probe described.
    pub fn covers(
        &self,
        proto: L4,
        from: IpAddr,
        to: IpAddr,
        iif: &str,
        sport: u16,
        dport: u16,
    ) -> bool {
        self.proto == proto
            && self.iif == iif
            && self.ports.contains(dport)
            && self.to.contains(&to)
            && self.sports.contains(sport)
            && self.sources.contains(from)
    }
}

impl Exposure {
    /// The interface that stands for `iif` for new `proto` connections of
    /// `family`: the first of its class (the one evaluated), `iif` itself
    /// when it is in none.
    pub fn stand_in<'a>(&'a self, family: AddrFamily, proto: L4, iif: &'a str) -> &'a str {
        self.classes
            .iter()
            .find(|c| {
                c.family == family && c.proto == proto && c.interfaces.iter().any(|i| i == iif)
            })
            .map_or(iif, |c| c.interfaces[0].as_str())
    }

    /// The opening covering a probe; `None` means the ruleset does not
    /// accept it.
    pub fn lookup(
        &self,
        proto: L4,
        from: IpAddr,
        to: IpAddr,
        iif: &str,
        sport: u16,
        dport: u16,
    ) -> Option<&Opening> {
        self.openings
            .iter()
            .find(|o| o.covers(proto, from, to, iif, sport, dport))
    }
}

impl Evaluator {
    /// Computes the exposure map (see the [module docs](self)).
    pub fn exposure(&self) -> Exposure {
        self.exposure_with(true)
    }

    /// The exposure map; `group`: evaluate interfaces the ruleset cannot
    /// tell apart once (see [`super::ifclass`]) and replay what rules that
    /// do not read the interface contribute, as [`Self::exposure`] does;
    /// without, each interface on its own, every rule followed (for tests).
    pub(super) fn exposure_with(&self, group: bool) -> Exposure {
        self.exposure_filtered(group, &|_, _| true)
    }

    /// The exposure map for the families and protocols `only` admits (the
    /// others have no openings): what a change confined to them can alter.
    pub fn exposure_of(&self, only: &(dyn Fn(AddrFamily, L4) -> bool + Sync)) -> Exposure {
        self.exposure_filtered(true, only)
    }

    fn exposure_filtered(
        &self,
        group: bool,
        only: &(dyn Fn(AddrFamily, L4) -> bool + Sync),
    ) -> Exposure {
        let itfs: Vec<Iface> = self
            .routes
            .given
            .interfaces
            .iter()
            .filter(|i| i.iftype != crate::host::ARPHRD_LOOPBACK)
            .map(|i| Iface::new(&i.name, i.index, i.iftype))
            .collect();
        let mut notes = Vec::new();
        if itfs.is_empty() {
            notes.push("no non-loopback interface is known: nothing can arrive".to_string());
        }
        for u in &self.prog.legacy_unlisted {
            notes.push(u.to_string());
        }
        if let (Some(c), true) = (self.prog.now, self.prog.reads_time()) {
            notes.push(format!(
                "time matches (meta hour/day/time, xt time) are evaluated at {} (the kernel's timezone: {}): openings marked as depending on the time of day change with it, and ports they refuse now may be accepted at another time",
                c.rfc3339(),
                c.zone_text()
            ));
        }
        // The IPv4 openings on an interface whose ARP exchange an `arp`
        // chain refuses cannot be reached from its link.
        for r in self.arp_refusals() {
            notes.push(format!("arp: {r}"));
        }
        // (family, protocol, interfaces evaluated alike, local addresses):
        // the first interface stands for the others.
        let mut combos = Vec::new();
        for fam in [AddrFamily::V4, AddrFamily::V6] {
            let locals = self.local_addrs(fam);
            if locals.is_empty() {
                continue;
            }
            for proto in [L4::Tcp, L4::Udp] {
                if !only(fam, proto) {
                    continue;
                }
                let classes = if group {
                    super::ifclass::classes(&self.prog, &self.routes, fam, proto, &itfs)
                } else {
                    (0..itfs.len()).map(|i| vec![i]).collect()
                };
                for class in classes {
                    combos.push((fam, proto, class, locals.clone()));
                }
            }
        }
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(combos.len())
            .max(1);
        // Combinations are taken from a shared counter (their costs differ
        // widely: a family with a big blocklist is the expensive one), the
        // families alternating: the first combination of a family builds
        // the classes and set groups the others share, under a lock, and
        // meanwhile the other threads can work on the other family.
        let mut order: Vec<usize> = (0..combos.len()).collect();
        order.sort_by_key(|&i| {
            let (fam, ..) = &combos[i];
            let nth = combos[..i].iter().filter(|c| c.0 == *fam).count();
            (nth, *fam == AddrFamily::V6)
        });
        let several = |fam, proto| combos.iter().filter(|c| c.0 == fam && c.1 == proto).count() > 1;
        let shared = Shared {
            replayed: [AddrFamily::V4, AddrFamily::V6]
                .into_iter()
                .flat_map(|f| [(f, L4::Tcp), (f, L4::Udp)])
                .filter(|&(f, p)| group && several(f, p))
                .collect(),
            ..Shared::default()
        };
        let next = std::sync::atomic::AtomicUsize::new(0);
        let results: Vec<(usize, ComboResult)> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        let mut mine = Vec::new();
                        loop {
                            let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(&i) = order.get(k) else {
                                break mine;
                            };
                            let (fam, proto, class, locals) = &combos[i];
                            let itf = &itfs[class[0]];
                            mine.push((i, self.combo(*fam, *proto, itf, locals, &shared)));
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().expect("exposure worker"))
                .collect()
        });
        // Each interface of a class gets the openings of the one evaluated,
        // in the order of family, protocol and interface.
        let mut each: Vec<((AddrFamily, L4, usize), ComboResult)> = Vec::new();
        let mut classes = Vec::with_capacity(results.len());
        for (i, (raws, groups)) in results {
            let (fam, proto, class, _) = &combos[i];
            classes.push((
                (*fam == AddrFamily::V6, *proto == L4::Udp, class[0]),
                IfClass {
                    family: *fam,
                    proto: *proto,
                    interfaces: class.iter().map(|&k| itfs[k].name.clone()).collect(),
                },
            ));
            for &k in &class[1..] {
                let name = &itfs[k].name;
                let raws = raws
                    .iter()
                    .map(|r| Raw {
                        iif: name.clone(),
                        ..r.clone()
                    })
                    .collect();
                let groups = groups
                    .iter()
                    .map(|g| Alike {
                        iif: name.clone(),
                        ..g.clone()
                    })
                    .collect();
                each.push(((*fam, *proto, k), (raws, groups)));
            }
            each.push(((*fam, *proto, class[0]), (raws, groups)));
        }
        each.sort_unstable_by_key(|(k, _)| (k.0 == AddrFamily::V6, k.1 == L4::Udp, k.2));
        let results = each;
        classes.sort_unstable_by_key(|c| c.0);
        let classes = classes.into_iter().map(|c| c.1).collect();
        let mut alike = Vec::new();
        // Sized up front: tens of thousands of openings are possible.
        let mut openings = Vec::with_capacity(results.iter().map(|r| r.1 .0.len()).sum());
        openings.extend(
            results
                .into_iter()
                .flat_map(|(_, (raws, groups))| {
                    alike.extend(groups);
                    raws
                })
                .map(|r| Opening {
                    family: r.family,
                    proto: r.proto,
                    iif: r.iif,
                    to: r.to,
                    ports: r.ports,
                    sports: r.sports,
                    sources: r.sources,
                    verdict: r.verdict,
                    decided_by: r.dec.map(|d| exec::decided_by(&self.prog, d)),
                    reason: r.reason,
                    time_dependent: r.timed,
                }),
        );
        Exposure {
            openings,
            alike,
            classes,
            notes,
        }
    }

    /// Local non-loopback addresses of a family.
    fn local_addrs(&self, fam: AddrFamily) -> Vec<IpAddr> {
        let mut v: Vec<IpAddr> = self
            .routes
            .given
            .interfaces
            .iter()
            .filter(|i| i.iftype != crate::host::ARPHRD_LOOPBACK)
            .flat_map(|i| i.addrs.iter().map(|n| n.addr()))
            .filter(|a| AddrFamily::of(*a) == fam && !a.is_loopback())
            .collect();
        v.dedup();
        v
    }

    /// The openings of one family, protocol and interface.
    fn combo(
        &self,
        fam: AddrFamily,
        proto: L4,
        itf: &Iface,
        locals: &[IpAddr],
        shared: &Shared,
    ) -> ComboResult {
        let alike = |to: Vec<IpAddr>| Alike {
            family: fam,
            proto,
            iif: itf.name.clone(),
            to,
        };
        let preds = collect(&self.prog, self, fam, proto, itf, shared);
        if let Some(why) = preds.opaque {
            let raw = Raw {
                family: fam,
                proto,
                iif: itf.name.clone(),
                to: locals.to_vec(),
                ports: PortRange::ALL,
                sports: PortRange::ALL,
                sources: AddrSet::all(fam),
                verdict: Verdict::Unknown,
                dec: None,
                reason: Some(format!("the exposure map cannot split this: {why}")),
                timed: false,
            };
            return (vec![raw], vec![alike(locals.to_vec())]);
        }
        let dports = atoms(preds.dport_bounds);
        let sports = atoms(preds.sport_bounds);
        let mut common = Vec::new();
        let mut specific: Vec<Vec<usize>> = vec![Vec::new(); dports.len()];
        let mut spec_sets = Vec::new();
        for p in preds.addr {
            match p.rel {
                None => common.push(p.set),
                Some(rel) => {
                    let id = spec_sets.len();
                    spec_sets.push(p.set);
                    for r in rel.ranges() {
                        let mut i = dports.partition_point(|a| a.1 < r.first());
                        while i < dports.len() && dports[i].0 <= r.last() {
                            specific[i].push(id);
                            i += 1;
                        }
                    }
                }
            }
        }
        let part = shared.partition(fam, common);
        // Local addresses no test tells apart share one evaluation.
        let mut groups: Vec<(IpAddr, Vec<IpAddr>)> = Vec::new();
        for &to in locals {
            let same = groups.iter_mut().find(|(rep, _)| {
                !preds.daddr_split
                    && preds
                        .daddr
                        .iter()
                        .all(|d| d.contains(*rep) == d.contains(to))
            });
            match same {
                Some(g) => g.1.push(to),
                None => groups.push((to, vec![to])),
            }
        }
        let mut out = Vec::new();
        let mut alikes = Vec::with_capacity(groups.len());
        for (to, members) in groups {
            for &(s0, s1) in &sports {
                let mut runs: Vec<Run> = Vec::new();
                for (ai, &(d0, d1)) in dports.iter().enumerate() {
                    let classes = part.refine(&specific[ai], &spec_sets);
                    // (verdict, dec, reason, timed) -> sources
                    let mut acc: Vec<(Outcome, AddrSet)> = Vec::new();
                    for (rep, region) in classes {
                        let probe = Probe::new(proto, fam.addr(rep), to, s0, d0, itf.clone());
                        let (v, dec, reason, timed) = exec::brief(&self.prog, &self.routes, &probe);
                        if !matches!(v, Verdict::Accept | Verdict::Unknown) {
                            continue;
                        }
                        let set = region.materialize(&part);
                        let outcome = (v, dec, reason, timed);
                        match acc.iter_mut().find(|a| a.0 == outcome) {
                            Some(a) => a.1 = a.1.union(&set),
                            None => acc.push((outcome, set)),
                        }
                    }
                    // Extend the runs that continue, close the others.
                    let mut next = Vec::with_capacity(acc.len());
                    for ((v, dec, reason, timed), set) in acc {
                        let cont = runs.iter().position(|r| {
                            r.last.checked_add(1) == Some(d0)
                                && r.verdict == v
                                && r.dec == dec
                                && r.reason == reason
                                && r.timed == timed
                                && (r.sources.ptr_eq(&set) || r.sources == set)
                        });
                        match cont {
                            Some(i) => {
                                let mut r = runs.swap_remove(i);
                                r.last = d1;
                                next.push(r);
                            }
                            None => next.push(Run {
                                first: d0,
                                last: d1,
                                verdict: v,
                                dec,
                                reason,
                                timed,
                                sources: set,
                            }),
                        }
                    }
                    for r in runs.drain(..) {
                        out.push(r.finish(fam, proto, &itf.name, &members, (s0, s1)));
                    }
                    runs = next;
                }
                for r in runs {
                    out.push(r.finish(fam, proto, &itf.name, &members, (s0, s1)));
                }
            }
            alikes.push(alike(members));
        }
        (out, alikes)
    }
}

/// What one probe gives: verdict, decider, reason, whether the time
/// decided it.
type Outcome = (Verdict, Option<Dec>, Option<String>, bool);

/// What one combination gives: its openings and its groups of alike local
/// addresses.
type ComboResult = (Vec<Raw>, Vec<Alike>);

/// An opening before names are resolved.
#[derive(Clone, Debug)]
struct Raw {
    family: AddrFamily,
    proto: L4,
    iif: String,
    to: Vec<IpAddr>,
    ports: PortRange,
    sports: PortRange,
    sources: AddrSet,
    verdict: Verdict,
    dec: Option<Dec>,
    reason: Option<String>,
    timed: bool,
}

/// Consecutive port atoms with the same outcome.
struct Run {
    first: u16,
    last: u16,
    verdict: Verdict,
    dec: Option<Dec>,
    reason: Option<String>,
    timed: bool,
    sources: AddrSet,
}

impl Run {
    fn finish(
        self,
        family: AddrFamily,
        proto: L4,
        iif: &str,
        to: &[IpAddr],
        sp: (u16, u16),
    ) -> Raw {
        Raw {
            family,
            proto,
            iif: iif.to_string(),
            to: to.to_vec(),
            ports: PortRange::new(self.first, self.last).expect("atoms are ordered"),
            sports: PortRange::new(sp.0, sp.1).expect("atoms are ordered"),
            sources: self.sources,
            verdict: self.verdict,
            dec: self.dec,
            reason: self.reason,
            timed: self.timed,
        }
    }
}

/// Port intervals between consecutive boundaries (each boundary starts an
/// interval).
fn atoms(mut bounds: Vec<u16>) -> Vec<(u16, u16)> {
    bounds.push(0);
    bounds.sort_unstable();
    bounds.dedup();
    let mut v = Vec::with_capacity(bounds.len());
    for (i, &b) in bounds.iter().enumerate() {
        let end = bounds.get(i + 1).map_or(u16::MAX, |n| n - 1);
        v.push((b, end));
    }
    v
}

// ---------------------------------------------------------------------
// Address classes

/// The classes of the common predicates: elementary intervals (sorted,
/// covering the whole space) with their class.
struct Partition {
    family: AddrFamily,
    starts: Vec<u128>,
    class: Vec<u32>,
    /// Per class, its intervals.
    members: Vec<AddrSet>,
}

/// A class of addresses after refinement.
enum Region {
    /// A common class, whole.
    Class(u32),
    /// A common class minus some addresses.
    Minus(u32, AddrSet),
    /// Explicit addresses.
    Set(AddrSet),
}

impl Region {
    fn materialize(&self, p: &Partition) -> AddrSet {
        match self {
            Region::Class(c) => p.members[*c as usize].clone(),
            Region::Minus(c, u) => p.members[*c as usize].subtract(u),
            Region::Set(s) => s.clone(),
        }
    }
}

/// Membership tags: a predicate's contribution to a class hash.
fn tag(i: usize, salt: u64) -> u64 {
    // splitmix64
    let mut z = (i as u64)
        .wrapping_add(salt)
        .wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Elementary intervals of `sets` (sorted starts covering `0..=max`) with
/// the XOR of the tags of the sets containing each.
fn sweep(max: u128, sets: &[&AddrSet], salt: u64) -> Vec<(u128, u64)> {
    let mut ev: Vec<(u128, u64)> = Vec::new();
    for (i, s) in sets.iter().enumerate() {
        let t = tag(i, salt);
        for &(a, b) in s.intervals() {
            ev.push((a, t));
            if b < max {
                ev.push((b + 1, t));
            }
        }
    }
    ev.sort_unstable_by_key(|e| e.0);
    let mut out: Vec<(u128, u64)> = vec![(0, 0)];
    let mut h = 0u64;
    for (x, t) in ev {
        h ^= t;
        match out.last_mut() {
            Some(last) if last.0 == x => last.1 = h,
            _ => out.push((x, h)),
        }
    }
    out
}

impl Partition {
    fn new(family: AddrFamily, sets: &[AddrSet]) -> Partition {
        let refs: Vec<&AddrSet> = sets.iter().collect();
        let el = sweep(family.max(), &refs, 0);
        let mut ids: HashMap<u64, u32> = HashMap::new();
        let mut members: Vec<Vec<(u128, u128)>> = Vec::new();
        let mut starts = Vec::with_capacity(el.len());
        let mut class = Vec::with_capacity(el.len());
        for (i, &(a, h)) in el.iter().enumerate() {
            let b = el.get(i + 1).map_or(family.max(), |n| n.0 - 1);
            let next = ids.len() as u32;
            let c = *ids.entry(h).or_insert(next);
            if c as usize == members.len() {
                members.push(Vec::new());
            }
            // Neighbouring elementary intervals of one class merge.
            match members[c as usize].last_mut() {
                Some(l) if l.1.checked_add(1) == Some(a) => l.1 = b,
                _ => members[c as usize].push((a, b)),
            }
            starts.push(a);
            class.push(c);
        }
        Partition {
            family,
            starts,
            class,
            members: members
                .into_iter()
                .map(|m| AddrSet::from_sorted(family, m))
                .collect(),
        }
    }

    /// The class of the elementary interval holding `x`.
    fn index(&self, x: u128) -> usize {
        self.starts.partition_point(|&s| s <= x) - 1
    }

    fn end(&self, i: usize) -> u128 {
        self.starts.get(i + 1).map_or(self.family.max(), |n| n - 1)
    }

    /// The classes after refinement by the predicates `ids` of `sets`, each
    /// with a representative address.
    fn refine(&self, ids: &[usize], sets: &[AddrSet]) -> Vec<(u128, Region)> {
        if ids.is_empty() {
            return self
                .members
                .iter()
                .enumerate()
                .map(|(c, m)| (m.intervals()[0].0, Region::Class(c as u32)))
                .collect();
        }
        let local: Vec<&AddrSet> = ids.iter().map(|&i| &sets[i]).collect();
        let el = sweep(self.family.max(), &local, 1);
        // (class, hash) -> pieces, for addresses inside some predicate.
        let mut pieces: HashMap<(u32, u64), Vec<(u128, u128)>> = HashMap::new();
        let mut order: Vec<(u32, u64)> = Vec::new();
        let mut inside: Vec<(u128, u128)> = Vec::new();
        for (i, &(a, h)) in el.iter().enumerate() {
            if h == 0 {
                continue;
            }
            let b = el.get(i + 1).map_or(self.family.max(), |n| n.0 - 1);
            inside.push((a, b));
            let mut j = self.index(a);
            let mut x = a;
            loop {
                let e = self.end(j).min(b);
                let key = (self.class[j], h);
                let v = pieces.entry(key).or_insert_with(|| {
                    order.push(key);
                    Vec::new()
                });
                match v.last_mut() {
                    Some(l) if l.1.checked_add(1) == Some(x) => l.1 = e,
                    _ => v.push((x, e)),
                }
                if e == b {
                    break;
                }
                j += 1;
                x = e + 1;
            }
        }
        let u = AddrSet::from_ranges(self.family, inside);
        let mut out = Vec::new();
        for (c, m) in self.members.iter().enumerate() {
            // A member of the class outside every predicate, if any.
            let rep = m.intervals().iter().find_map(|&(a, b)| {
                let mut x = a;
                loop {
                    if !u.contains_value(x) {
                        return Some(x);
                    }
                    // Skip to the end of the predicate interval holding x.
                    let iv = u.intervals();
                    let k = iv.partition_point(|r| r.1 < x);
                    let end = iv[k].1;
                    if end >= b {
                        return None;
                    }
                    x = end + 1;
                }
            });
            if let Some(rep) = rep {
                let touched = order.iter().any(|k| k.0 == c as u32);
                out.push((
                    rep,
                    if touched {
                        Region::Minus(c as u32, u.clone())
                    } else {
                        Region::Class(c as u32)
                    },
                ));
            }
        }
        for key in order {
            let v = pieces.remove(&key).unwrap_or_default();
            let rep = v[0].0;
            out.push((rep, Region::Set(AddrSet::from_ranges(self.family, v))));
        }
        out
    }
}

// ---------------------------------------------------------------------
// Predicates: what the rules test

/// A symbolic field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Field {
    Saddr,
    Daddr,
    Sport,
    Dport,
}

/// What one register byte holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum B {
    /// Something the class does not vary.
    Other,
    /// A value fixed for the whole combination (family, protocol, interface).
    Known(u8),
    /// Byte `i` of a field, masked and xored.
    Fld { f: Field, i: u8, m: u8, x: u8 },
    /// A function of a field that is not a mask.
    Bad(Field),
}

/// An address predicate and the destination ports it matters for.
struct APred {
    set: AddrSet,
    /// `None`: every port.
    rel: Option<PortSet>,
}

/// Everything the rules of one combination test.
struct Preds {
    addr: Vec<APred>,
    dport_bounds: Vec<u16>,
    sport_bounds: Vec<u16>,
    opaque: Option<String>,
    /// Destination-address predicates.
    daddr: Vec<AddrSet>,
    /// Destination addresses must each be evaluated (a test of them the
    /// classes cannot follow, `fib`, `socket`).
    daddr_split: bool,
    /// `fib` or `xt addrtype` is used: routes split the address classes.
    fib: bool,
    /// Common predicates already recorded (shared sets, by identity).
    seen: std::collections::HashSet<usize>,
    /// When set, every call made is also written here (see [`Ev`]).
    log: Option<Vec<Ev>>,
}

/// One call on [`Preds`], as recorded for a rule: what a rule contributes
/// does not depend on the input interface unless the rule reads it, so the
/// other interface classes of a family and protocol replay the calls
/// instead of following the rule again.
#[derive(Clone, Debug)]
enum Ev {
    Ports(Field, u16, u16),
    Addr(AddrSet, PortSet),
    Daddr(AddrSet),
    SplitDaddr,
    Fib,
    Opaque(String),
}

impl Preds {
    fn new() -> Preds {
        Preds {
            addr: Vec::new(),
            dport_bounds: Vec::new(),
            sport_bounds: Vec::new(),
            opaque: None,
            daddr: Vec::new(),
            daddr_split: false,
            fib: false,
            seen: Default::default(),
            log: None,
        }
    }

    /// Makes the calls `evs` again.
    fn replay(&mut self, evs: &[Ev]) {
        for e in evs {
            match e {
                Ev::Ports(f, a, b) => self.ports(*f, *a, *b),
                Ev::Addr(set, rel) => self.addr(set.clone(), rel),
                Ev::Daddr(set) => self.push_daddr(set.clone()),
                Ev::SplitDaddr => self.split_daddr(),
                Ev::Fib => self.set_fib(),
                Ev::Opaque(why) => self.opaque(why.clone()),
            }
        }
    }

    fn record(&mut self, e: impl FnOnce() -> Ev) {
        if let Some(log) = &mut self.log {
            log.push(e());
        }
    }

    fn push_daddr(&mut self, set: AddrSet) {
        self.record(|| Ev::Daddr(set.clone()));
        self.daddr.push(set);
    }

    fn split_daddr(&mut self) {
        self.record(|| Ev::SplitDaddr);
        self.daddr_split = true;
    }

    fn set_fib(&mut self) {
        self.record(|| Ev::Fib);
        self.fib = true;
    }

    fn ports(&mut self, f: Field, a: u16, b: u16) {
        self.record(|| Ev::Ports(f, a, b));
        self.bounds(f, a, b);
    }

    /// [`Self::ports`] unrecorded.
    fn bounds(&mut self, f: Field, a: u16, b: u16) {
        let v = if f == Field::Dport {
            &mut self.dport_bounds
        } else {
            &mut self.sport_bounds
        };
        v.push(a);
        if b < u16::MAX {
            v.push(b + 1);
        }
    }

    fn addr(&mut self, set: AddrSet, rel: &PortSet) {
        self.record(|| Ev::Addr(set.clone(), rel.clone()));
        if set.is_empty() || set.is_all() {
            return;
        }
        let rel = if rel.count() == 65536 {
            None
        } else {
            for r in rel.ranges() {
                self.bounds(Field::Dport, r.first(), r.last());
            }
            Some(rel.clone())
        };
        if rel.is_none() && !self.seen.insert(set.ptr_id()) {
            return;
        }
        self.addr.push(APred { set, rel });
    }

    fn opaque(&mut self, why: String) {
        self.record(|| Ev::Opaque(why.clone()));
        if self.opaque.is_none() {
            self.opaque = Some(why);
        }
    }
}

/// The register bytes of a `meta` load that the family and protocol fix
/// (`nfproto`, except in netdev chains; `l4proto`; `protocol`), as the
/// evaluator stores them.
pub(super) fn fixed_meta(
    key: MetaKey,
    fam: AddrFamily,
    proto: L4,
    netdev: bool,
) -> Option<[u8; 4]> {
    let v6 = fam == AddrFamily::V6;
    match key {
        MetaKey::Nfproto if !netdev => Some([if v6 { 10 } else { 2 }, 0, 0, 0]),
        MetaKey::L4proto => Some([proto.proto(), 0, 0, 0]),
        MetaKey::Protocol => Some(if v6 {
            [0x86, 0xdd, 0, 0]
        } else {
            [0x08, 0x00, 0, 0]
        }),
        _ => None,
    }
}

/// A big-endian byte string as an integer.
fn be(b: &[u8]) -> u128 {
    b.iter().fold(0u128, |a, &x| (a << 8) | x as u128)
}

/// Widens an interval over the first `n` bytes of a `w`-byte field to the
/// field's value space.
fn widen(a: u128, b: u128, n: usize, w: usize) -> (u128, u128) {
    let shift = 8 * (w - n) as u32;
    if shift == 0 {
        (a, b)
    } else {
        (a << shift, (b << shift) | ((1u128 << shift) - 1))
    }
}

/// The whole values `0..=max` of an `n`-byte string.
fn max_of(n: usize) -> u128 {
    if n >= 16 {
        u128::MAX
    } else {
        (1u128 << (8 * n)) - 1
    }
}

/// Whether `m` (over `n` bytes) is a prefix mask.
fn is_prefix(m: &[u8]) -> bool {
    let bits: Vec<u8> = m
        .iter()
        .flat_map(|b| (0..8).rev().map(move |i| b >> i & 1))
        .collect();
    bits.windows(2).all(|w| w[0] >= w[1])
}

/// Per group of set elements: its addresses and destination ports.
type Groups = Arc<Vec<(AddrSet, Option<(u16, u16)>)>>;

/// Which groups: (set, key offset, length, field width, port offset).
type GroupKey = (u32, usize, usize, usize, Option<usize>);

/// Work that depends on the ruleset's sets, not on the combination, done
/// once for all combinations (and threads).
#[derive(Default)]
struct Shared {
    /// Grouped set elements.
    groups: Mutex<HashMap<GroupKey, Groups>>,
    /// Address classes by the common predicates they were made from.
    partitions: Mutex<Vec<(Vec<AddrSet>, Arc<Partition>)>>,
    /// Per chain and rule, the destination ports its guard lets through
    /// (the same in every combination).
    reached: std::sync::OnceLock<Vec<Vec<PortSet>>>,
    /// Per chain and rule, whether it reads the input interface.
    reads_iface: std::sync::OnceLock<Vec<Vec<bool>>>,
    /// Per family and protocol, what each rule that does not read the
    /// input interface contributes, per chain and rule (see [`Ev`]).
    contributions: Mutex<HashMap<(AddrFamily, L4), Contributions>>,
    /// The families and protocols with several classes of interfaces: only
    /// there are contributions recorded and replayed (none when each
    /// interface is evaluated on its own, for tests).
    replayed: Vec<(AddrFamily, L4)>,
}

/// Per chain and rule, its calls on [`Preds`].
type Contributions = Arc<Vec<Vec<Arc<[Ev]>>>>;

impl Shared {
    /// The destination ports rule `ri` of chain `ci` runs for at all: its
    /// guard's ports when nothing rewrites the destination port, else all.
    fn reached(&self, prog: &Program, ci: usize, ri: usize) -> PortSet {
        let all = self.reached.get_or_init(|| {
            let skips = dport_fixed(prog);
            prog.chains
                .iter()
                .map(|c| {
                    c.rules
                        .iter()
                        .map(|r| {
                            if skips {
                                guard_ports(&r.guard, &prog.sets)
                            } else {
                                PortSet::all()
                            }
                        })
                        .collect()
                })
                .collect()
        });
        all[ci][ri].clone()
    }

    /// Whether rule `ri` of chain `ci` reads the input interface.
    fn reads_interface(&self, prog: &Program, ci: usize, ri: usize) -> bool {
        self.reads_iface.get_or_init(|| {
            prog.chains
                .iter()
                .map(|c| {
                    c.rules
                        .iter()
                        .map(|r| super::ifclass::reads_interface(&r.ops))
                        .collect()
                })
                .collect()
        })[ci][ri]
    }

    /// The recorded contributions for a family and protocol, if any.
    fn contributions(&self, fam: AddrFamily, proto: L4) -> Option<Contributions> {
        if !self.replays(fam, proto) {
            return None;
        }
        let done = self.contributions.lock().ok()?;
        done.get(&(fam, proto)).cloned()
    }

    /// Whether contributions are recorded and replayed for a family and
    /// protocol.
    fn replays(&self, fam: AddrFamily, proto: L4) -> bool {
        self.replayed.contains(&(fam, proto))
    }

    /// Keeps the contributions recorded for a family and protocol.
    fn contributed(&self, fam: AddrFamily, proto: L4, c: Vec<Vec<Arc<[Ev]>>>) {
        if let Ok(mut done) = self.contributions.lock() {
            done.entry((fam, proto)).or_insert_with(|| Arc::new(c));
        }
    }

    /// The classes of `common` (compared by content; shared sets compare
    /// by pointer first, so this is cheap).
    fn partition(&self, fam: AddrFamily, common: Vec<AddrSet>) -> Arc<Partition> {
        // Built under the lock: two threads never build the same classes
        // (the memory of a big blocklist's sweep is needed only once).
        let mut done = self.partitions.lock().expect("partition cache");
        if let Some((_, p)) = done.iter().find(|(k, p)| p.family == fam && *k == common) {
            return p.clone();
        }
        let p = Arc::new(Partition::new(fam, &common));
        done.push((common, p.clone()));
        p
    }
}

struct Collector<'a> {
    prog: &'a Program,
    fam: AddrFamily,
    proto: L4,
    itf: &'a Iface,
    out: Preds,
    shared: &'a Shared,
}

/// Collects the predicates of every rule that can run in the combination.
fn collect<'a>(
    prog: &'a Program,
    ev: &Evaluator,
    fam: AddrFamily,
    proto: L4,
    itf: &'a Iface,
    shared: &'a Shared,
) -> Preds {
    let mut c = Collector {
        prog,
        fam,
        proto,
        itf,
        out: Preds::new(),
        shared,
    };
    let v6 = fam == AddrFamily::V6;
    // What the rules that do not read the interface contribute: replayed
    // from another class of interfaces when one has been done, else
    // recorded for the others. (Only for self-contained rules: otherwise a
    // rule's registers carry over from the one before.)
    let replay = if prog.guards {
        shared.contributions(fam, proto)
    } else {
        None
    };
    let mut record: Option<Vec<Vec<Arc<[Ev]>>>> =
        (prog.guards && replay.is_none() && shared.replays(fam, proto)).then(|| {
            prog.chains
                .iter()
                .map(|c| Vec::with_capacity(c.rules.len()))
                .collect()
        });
    for (ci, chain) in prog.chains.iter().enumerate() {
        let tf = prog.tables[chain.table as usize].family;
        let runs = match tf {
            Family::Ip => !v6,
            Family::Ip6 => v6,
            Family::Inet | Family::Netdev => true,
            _ => false,
        };
        if !runs {
            continue;
        }
        let mut regs = [B::Other; 64];
        for (ri, rule) in chain.rules.iter().enumerate() {
            let own = prog.guards && !shared.reads_interface(prog, ci, ri);
            if let (true, Some(done)) = (own, &replay) {
                c.out.replay(&done[ci][ri]);
                continue;
            }
            c.out.log = (own && record.is_some()).then(Vec::new);
            if c.applies(&rule.guard, tf) {
                if prog.guards {
                    regs = [B::Other; 64];
                }
                c.rule(&rule.ops, &mut regs, tf, shared.reached(prog, ci, ri));
            }
            // (Rules that read the interface keep an empty place.)
            let log = c.out.log.take().unwrap_or_default();
            if let Some(r) = record.as_mut() {
                r[ci].push(log.into());
            }
        }
    }
    if let Some(r) = record {
        shared.contributed(fam, proto, r);
    }
    // Routes answer fib and addrtype, and IPv4 reverse-path filtering;
    // sockets answer socket and tproxy.
    let routes = &ev.routes.given;
    let v4 = fam == AddrFamily::V4 && ev.routes.checks;
    let conf = ev.routes.by_name(&itf.name).map(|i| ev.routes.interface(i));
    let rp_filter = v4 && conf.is_some_and(|i| !i.rp_filter.is_off());
    let all = PortSet::all();
    if v4 {
        // The routing decision's martian sources, one class (the routing
        // decision drops them all alike, and the interfaces of a class share
        // their settings): 0.0.0.0/8, multicast, the limited broadcast
        // address, 127.0.0.0/8 without route_localnet and the host's own
        // addresses without accept_local.
        let mut martian: Vec<ipnet::IpNet> = ["0.0.0.0/8", "224.0.0.0/4", "255.255.255.255/32"]
            .iter()
            .map(|p| p.parse().expect("prefix"))
            .collect();
        if conf.map_or(true, |i| i.route_localnet.is_none()) {
            martian.push("127.0.0.0/8".parse().expect("prefix"));
        }
        let mut set = AddrSet::from_prefixes(fam, martian);
        if conf.map_or(true, |i| i.accept_local.is_none()) {
            let own = routes
                .interfaces
                .iter()
                .flat_map(|i| i.addrs.iter())
                .filter(|n| n.addr().is_ipv4())
                .map(|n| (addr_value(n.addr()), addr_value(n.addr())));
            set = set.union(&AddrSet::from_ranges(fam, own.collect()));
        }
        c.out.addr(set, &all);
    }
    // Custom policy rules decide the input route, the route back for
    // reverse-path filtering and the reply's: their prefixes split the
    // sources as the routes do, their port ranges the ports.
    let v6 = fam != AddrFamily::V4;
    let policy = ev.routes.custom_rules(v6) && (ev.routes.checks || c.out.fib);
    let rule_nets: Vec<ipnet::IpNet> = if policy {
        // The local address is the source of the route back and the
        // reply's: each is its own group.
        c.out.split_daddr();
        let rules = ev.routes.rules(v6);
        for r in rules {
            if let Some((a, b)) = r.sport {
                c.out.ports(Field::Sport, a, b);
                c.out.ports(Field::Dport, a, b);
            }
            if let Some((a, b)) = r.dport {
                c.out.ports(Field::Sport, a, b);
                c.out.ports(Field::Dport, a, b);
            }
        }
        rules
            .iter()
            .flat_map(|r| r.from.iter().chain(r.to.iter()).copied())
            .collect()
    } else {
        Vec::new()
    };
    let nets: Vec<ipnet::IpNet> = if c.out.fib || rp_filter || policy {
        routes
            .interfaces
            .iter()
            .flat_map(|i| i.addrs.iter().copied())
            .chain(routes.routes.iter().map(|r| r.dst))
            .chain(rule_nets)
            .collect()
    } else {
        Vec::new()
    };
    for n in nets {
        if AddrFamily::of(n.addr()) != fam {
            continue;
        }
        let host = AddrSet::from_ranges(fam, vec![(addr_value(n.addr()), addr_value(n.addr()))]);
        c.out.addr(host, &all);
        c.out.addr(AddrSet::from_prefixes(fam, [n.trunc()]), &all);
        if let ipnet::IpNet::V4(n4) = n {
            let b = addr_value(IpAddr::V4(n4.broadcast()));
            c.out.addr(AddrSet::from_ranges(fam, vec![(b, b)]), &all);
        }
    }
    for s in routes.sockets.iter().flatten() {
        c.out.ports(Field::Dport, s.port, s.port);
    }
    c.out
}

impl Collector<'_> {
    /// Whether a rule whose guard is `guard` may run for the combination:
    /// false only when a leading `nfproto`/`l4proto`/`protocol`/`iifname`
    /// test is certainly false.
    fn applies(&self, guard: &[super::compile::Cond], tf: Family) -> bool {
        for c in guard {
            let super::compile::Src::Meta(key) = c.src else {
                continue;
            };
            let Some(known) = self.known_meta(key, tf) else {
                continue;
            };
            let mut val = [0u8; 16];
            val[..known.len()].copy_from_slice(&known);
            if let Some((m, x)) = &c.mask {
                for (i, v) in val.iter_mut().enumerate() {
                    *v = (*v & m.get(i).copied().unwrap_or(0)) ^ x.get(i).copied().unwrap_or(0);
                }
            }
            let holds = match &c.test {
                Test::Cmp { op, data } => cmp_holds(*op, &val[..data.len()], data),
                Test::Range { op, from, to } => range_holds(*op, &val[..from.len()], from, to),
                Test::Lookup { set, invert } => {
                    let s = &self.prog.sets[*set as usize];
                    if s.catchall.is_some() || s.dynamic || s.klen > 16 {
                        continue;
                    }
                    s.find(&val[..s.klen]).is_some() != *invert
                }
            };
            if !holds {
                return false;
            }
        }
        true
    }

    /// The register bytes a `meta` load writes when the combination fixes
    /// them. (Inline: asked for every guard of every rule in every
    /// combination.)
    fn known_meta(&self, key: MetaKey, tf: Family) -> Option<SmallVec<[u8; 16]>> {
        match key {
            MetaKey::Iifname => Some(SmallVec::from_slice(&exec::ifname(&self.itf.name))),
            _ => fixed_meta(key, self.fam, self.proto, tf == Family::Netdev)
                .map(|b| SmallVec::from_slice(&b)),
        }
    }

    /// Follows one rule's register contents, recording what it tests;
    /// `reached`: the destination ports the rule runs for at all.
    fn rule(&mut self, ops: &[Op], regs: &mut [B; 64], tf: Family, reached: PortSet) {
        let v6 = self.fam == AddrFamily::V6;
        let (sa, alen) = if v6 { (8u32, 16u32) } else { (12, 4) };
        let da = sa + alen;
        // Destination ports this point of the rule is reached for.
        let mut rel = reached;
        for op in ops {
            match op {
                Op::Payload {
                    base,
                    offset,
                    len,
                    dreg,
                } => {
                    let w = (*len as usize).div_ceil(4) * 4;
                    for i in 0..w {
                        let slot = *dreg as usize + i;
                        if slot >= 64 {
                            break;
                        }
                        let at = offset + i as u32;
                        regs[slot] = if i >= *len as usize {
                            B::Other
                        } else {
                            match base {
                                PayloadBase::Network if at >= sa && at < sa + alen => B::Fld {
                                    f: Field::Saddr,
                                    i: (at - sa) as u8,
                                    m: 0xff,
                                    x: 0,
                                },
                                PayloadBase::Network if at >= da && at < da + alen => B::Fld {
                                    f: Field::Daddr,
                                    i: (at - da) as u8,
                                    m: 0xff,
                                    x: 0,
                                },
                                PayloadBase::Transport if at < 2 => B::Fld {
                                    f: Field::Sport,
                                    i: at as u8,
                                    m: 0xff,
                                    x: 0,
                                },
                                PayloadBase::Transport if at < 4 => B::Fld {
                                    f: Field::Dport,
                                    i: (at - 2) as u8,
                                    m: 0xff,
                                    x: 0,
                                },
                                _ => B::Other,
                            }
                        };
                    }
                }
                Op::Ct { key, dir, dreg } => {
                    let reply = *dir == Some(1);
                    let (f, n) = match key {
                        CtKey::Src | CtKey::SrcIp | CtKey::SrcIp6 if !reply => {
                            (Some(Field::Saddr), alen as usize)
                        }
                        CtKey::Dst | CtKey::DstIp | CtKey::DstIp6 if reply => {
                            (Some(Field::Saddr), alen as usize)
                        }
                        CtKey::Dst | CtKey::DstIp | CtKey::DstIp6 => {
                            (Some(Field::Daddr), alen as usize)
                        }
                        CtKey::Src | CtKey::SrcIp | CtKey::SrcIp6 => {
                            (Some(Field::Daddr), alen as usize)
                        }
                        CtKey::ProtoSrc if !reply => (Some(Field::Sport), 2),
                        CtKey::ProtoDst if !reply => (Some(Field::Dport), 2),
                        CtKey::ProtoDst if reply => (Some(Field::Sport), 2),
                        CtKey::ProtoSrc if reply => (Some(Field::Dport), 2),
                        _ => (None, 0),
                    };
                    let w = if matches!(f, Some(Field::Saddr | Field::Daddr))
                        || *key == CtKey::Labels
                    {
                        16
                    } else {
                        4
                    };
                    for i in 0..w {
                        let slot = *dreg as usize + i;
                        if slot < 64 {
                            regs[slot] = match f {
                                Some(f) if i < n => B::Fld {
                                    f,
                                    i: i as u8,
                                    m: 0xff,
                                    x: 0,
                                },
                                _ => B::Other,
                            };
                        }
                    }
                }
                Op::Bitwise {
                    sreg,
                    dreg,
                    len,
                    kind,
                } => {
                    let src: Vec<B> = (0..*len as usize)
                        .map(|i| regs.get(*sreg as usize + i).copied().unwrap_or(B::Other))
                        .collect();
                    let any = src.iter().find_map(|b| match b {
                        B::Fld { f, .. } | B::Bad(f) => Some(*f),
                        B::Other | B::Known(_) => None,
                    });
                    for (i, b) in src.iter().enumerate() {
                        let slot = *dreg as usize + i;
                        if slot >= 64 {
                            break;
                        }
                        regs[slot] = match (kind, *b) {
                            (BitKind::Bool { mask, xor }, B::Fld { f, i: fi, m, x }) => {
                                let mk = mask.get(i).copied().unwrap_or(0);
                                let xk = xor.get(i).copied().unwrap_or(0);
                                if m & mk == 0 {
                                    B::Other
                                } else {
                                    B::Fld {
                                        f,
                                        i: fi,
                                        m: m & mk,
                                        x: (x & mk) ^ xk,
                                    }
                                }
                            }
                            (BitKind::Bool { mask, xor }, B::Known(v)) => B::Known(
                                (v & mask.get(i).copied().unwrap_or(0))
                                    ^ xor.get(i).copied().unwrap_or(0),
                            ),
                            (BitKind::Bool { .. }, other) => other,
                            _ => any.map_or(B::Other, B::Bad),
                        };
                    }
                }
                Op::Byteorder {
                    sreg, dreg, len, ..
                } => {
                    let any = (0..*len as usize).find_map(|i| match regs.get(*sreg as usize + i) {
                        Some(B::Fld { f, .. } | B::Bad(f)) => Some(*f),
                        _ => None,
                    });
                    for i in 0..*len as usize {
                        if let Some(r) = regs.get_mut(*dreg as usize + i) {
                            *r = any.map_or(B::Other, B::Bad);
                        }
                    }
                }
                Op::Cmp { sreg, op, data } => {
                    let bytes = slice(regs, *sreg, data.len());
                    if let Some(v) = known(&bytes) {
                        if !cmp_holds(*op, &v, data) {
                            return;
                        }
                        continue;
                    }
                    let test = Test::Cmp {
                        op: *op,
                        data: data.clone(),
                    };
                    if let Some(ports) = self.test(&bytes, &test, &rel) {
                        rel = rel.intersect(&ports);
                    }
                }
                Op::Range { sreg, op, from, to } => {
                    let bytes = slice(regs, *sreg, from.len());
                    if let Some(v) = known(&bytes) {
                        if !range_holds(*op, &v, from, to) {
                            return;
                        }
                        continue;
                    }
                    let test = Test::Range {
                        op: *op,
                        from: from.clone(),
                        to: to.clone(),
                    };
                    if let Some(ports) = self.test(&bytes, &test, &rel) {
                        rel = rel.intersect(&ports);
                    }
                }
                Op::Lookup {
                    set,
                    sreg,
                    dst,
                    invert,
                } => {
                    let s = &self.prog.sets[*set as usize];
                    let bytes = slice(regs, *sreg, s.klen);
                    // A failed lookup breaks the rule, map or not (a
                    // verdict map without the key has no verdict).
                    if let Some(ports) = self.lookup(*set, &bytes, &rel) {
                        if !invert {
                            rel = rel.intersect(&ports);
                        }
                    }
                    if let Some(super::compile::Dst::Reg(r)) = dst {
                        clear(regs, *r, s.dlen.div_ceil(4) * 4);
                    }
                }
                Op::ObjMap { set, sreg } => {
                    let s = &self.prog.sets[*set as usize];
                    let bytes = slice(regs, *sreg, s.klen);
                    self.lookup(*set, &bytes, &rel);
                }
                Op::MetaSet { sreg, .. } | Op::CtSet { sreg, .. } => {
                    let n = match op {
                        Op::CtSet {
                            key: CtKey::Labels, ..
                        } => 16,
                        _ => 4,
                    };
                    if let Some(f) = tainted(&slice(regs, *sreg, n)) {
                        self.out
                            .opaque(format!("a mark or conntrack value is computed from {f:?}"));
                    }
                }
                Op::PayloadSet { sreg, len, .. } => {
                    if let Some(f) = tainted(&slice(regs, *sreg, *len as usize)) {
                        self.out
                            .opaque(format!("a packet field is rewritten from {f:?}"));
                    }
                }
                Op::Nat { addr, proto, .. } => {
                    let mut b = Vec::new();
                    if let Some((x, y)) = addr.and_then(|a| a.regs()) {
                        b.extend(slice(regs, x, alen as usize));
                        b.extend(slice(regs, y, alen as usize));
                    }
                    if let Some((x, y)) = proto.and_then(|p| p.regs()) {
                        b.extend(slice(regs, x, 2));
                        b.extend(slice(regs, y, 2));
                    }
                    if let Some(f) = tainted(&b) {
                        self.out
                            .opaque(format!("a NAT target is computed from {f:?}"));
                    }
                }
                Op::Xt { info, .. } => self.xt(info, &mut rel),
                Op::Meta { dreg, key } => {
                    if let Some(v) = self.known_meta(*key, tf) {
                        for (i, b) in v.iter().enumerate() {
                            if let Some(r) = regs.get_mut(*dreg as usize + i) {
                                *r = B::Known(*b);
                            }
                        }
                        continue;
                    }
                    let w = if matches!(
                        key,
                        MetaKey::Iifname
                            | MetaKey::Oifname
                            | MetaKey::Iifkind
                            | MetaKey::Oifkind
                            | MetaKey::Sdifname
                            | MetaKey::BriIifname
                            | MetaKey::BriOifname
                    ) {
                        16
                    } else if *key == MetaKey::TimeNs {
                        8
                    } else {
                        4
                    };
                    clear(regs, *dreg, w);
                }
                Op::Imm { dreg, data } => {
                    clear(regs, *dreg, data.len().div_ceil(4) * 4);
                    for (i, b) in data.iter().enumerate() {
                        if let Some(r) = regs.get_mut(*dreg as usize + i) {
                            *r = B::Known(*b);
                        }
                    }
                }
                // NFT_FIB_RESULT_OIFNAME writes a 16-byte name.
                Op::Fib { dreg, result, .. } => {
                    self.out.set_fib();
                    self.out.split_daddr();
                    clear(regs, *dreg, if *result == 2 { 16 } else { 4 })
                }
                Op::Exthdr { dreg, len, .. } => {
                    clear(regs, *dreg, (*len as usize).div_ceil(4).max(1) * 4)
                }
                Op::Socket { dreg, .. } => {
                    self.out.split_daddr();
                    clear(regs, *dreg, 8)
                }
                Op::Tproxy { .. } => self.out.split_daddr(),
                Op::Rt { dreg, .. } => clear(regs, *dreg, 8),
                Op::Opaque { dreg, len, .. } => clear(regs, *dreg, *len as usize),
                _ => {}
            }
        }
    }

    /// Records what a `cmp`/`range` over `bytes` tests; returns the
    /// destination ports it can hold for when it tests only those.
    fn test(&mut self, bytes: &[B], test: &Test, rel: &PortSet) -> Option<PortSet> {
        let runs = field_runs(bytes);
        if runs.is_empty() {
            return None;
        }
        let eq = matches!(
            test,
            Test::Cmp {
                op: crate::snapshot::CmpOp::Eq | crate::snapshot::CmpOp::Neq,
                ..
            }
        );
        if !eq && (runs.len() != 1 || runs[0].pos != 0 || runs[0].len != bytes.len()) {
            let f = runs[0].f;
            self.brute(bytes, test, f);
            return None;
        }
        let mut dport_only = None;
        for r in &runs {
            let w = field_width(r.f, self.fam);
            let plain = r.masks.iter().all(|&m| m == 0xff) && r.xors.iter().all(|&x| x == 0);
            let interval = match test {
                Test::Cmp { data, .. } if eq => {
                    let d: Vec<u8> = (0..r.len).map(|k| data[r.pos + k] ^ r.xors[k]).collect();
                    if r.first != 0 || !is_prefix(&r.masks) {
                        None
                    } else if d.iter().zip(&r.masks).any(|(d, m)| d & !m != 0) {
                        Some(None)
                    } else {
                        let lo = be(&d);
                        let hi = be(&d
                            .iter()
                            .zip(&r.masks)
                            .map(|(d, m)| d | !m)
                            .collect::<Vec<_>>());
                        Some(Some(widen(lo, hi, r.len, w)))
                    }
                }
                _ if plain && r.first == 0 => {
                    let n = bytes.len();
                    let (lo, hi) = match test {
                        Test::Cmp { op, data } => {
                            let d = be(data);
                            match op {
                                crate::snapshot::CmpOp::Lt | crate::snapshot::CmpOp::Gte => {
                                    if d == 0 {
                                        (0, max_of(n))
                                    } else {
                                        (0, d - 1)
                                    }
                                }
                                crate::snapshot::CmpOp::Lte | crate::snapshot::CmpOp::Gt => (0, d),
                                _ => (d, d),
                            }
                        }
                        Test::Range { from, to, .. } => (be(from), be(to)),
                        Test::Lookup { .. } => unreachable!("lookups take their own path"),
                    };
                    Some(Some(widen(lo, hi, n, w)))
                }
                _ => None,
            };
            match interval {
                Some(None) => {}
                Some(Some((a, b))) => match r.f {
                    Field::Daddr => self
                        .out
                        .push_daddr(AddrSet::from_ranges(self.fam, vec![(a, b)])),
                    Field::Saddr => self
                        .out
                        .addr(AddrSet::from_ranges(self.fam, vec![(a, b)]), rel),
                    f => {
                        self.out.ports(f, a as u16, b as u16);
                        if f == Field::Dport && runs.len() == 1 && holds_inside(test) {
                            dport_only =
                                Some(PortSet::from_ranges([
                                    PortRange::new(a as u16, b as u16).expect("ordered")
                                ]));
                        }
                    }
                },
                None => {
                    if r.f == Field::Daddr {
                        self.out.split_daddr();
                    } else if r.f == Field::Saddr {
                        self.out.opaque(
                            "a source-address test that is not a prefix or range".to_string(),
                        );
                    } else {
                        self.brute(bytes, test, r.f);
                    }
                }
            }
        }
        dport_only
    }

    /// Port boundaries of any test over a port field, by trying every
    /// value; an address field makes the combination opaque.
    fn brute(&mut self, bytes: &[B], test: &Test, f: Field) {
        let only = |g: Field| {
            bytes
                .iter()
                .all(|b| !matches!(b, B::Fld { f, .. } | B::Bad(f) if *f != g))
        };
        if f == Field::Daddr && only(Field::Daddr) {
            self.out.split_daddr();
            return;
        }
        if f == Field::Saddr || !only(f) {
            self.out.opaque(format!(
                "a test combining {f:?} with other fields in an unusual way"
            ));
            return;
        }
        if bytes.iter().any(|b| matches!(b, B::Bad(_))) {
            self.out.opaque(format!("a computed function of {f:?}"));
            return;
        }
        if bytes.iter().any(|b| matches!(b, B::Other)) {
            self.out
                .opaque(format!("a test of {f:?} together with another value"));
            return;
        }
        let n = bytes.len();
        let mut last = None;
        for p in 0..=u16::MAX {
            let pb = p.to_be_bytes();
            let mut v = [0u8; 16];
            for (k, b) in bytes.iter().enumerate() {
                v[k] = match *b {
                    B::Fld { i, m, x, .. } => (pb[i as usize] & m) ^ x,
                    B::Known(c) => c,
                    B::Other | B::Bad(_) => unreachable!("excluded above"),
                };
            }
            let h = match test {
                Test::Cmp { op, data } => cmp_holds(*op, &v[..n], data),
                Test::Range { op, from, to } => range_holds(*op, &v[..n], from, to),
                Test::Lookup { .. } => false,
            };
            if last != Some(h) {
                if last.is_some() {
                    self.out.ports(f, p, p);
                }
                last = Some(h);
            }
        }
    }

    /// Records what a set lookup keyed on `bytes` tests; returns the
    /// destination ports it can succeed for when the key is the
    /// destination port alone.
    fn lookup(&mut self, set: u32, bytes: &[B], rel: &PortSet) -> Option<PortSet> {
        let runs = field_runs(bytes);
        if runs.is_empty() {
            return None;
        }
        let s: &SetInfo = &self.prog.sets[set as usize];
        let plain = |r: &FRun| {
            r.first == 0
                && r.len == field_width(r.f, self.fam)
                && r.masks.iter().all(|&m| m == 0xff)
                && r.xors.iter().all(|&x| x == 0)
        };
        let bad = runs.iter().find(|r| {
            let whole_addr = matches!(r.f, Field::Saddr | Field::Daddr)
                && r.first == 0
                && r.masks.iter().all(|&m| m == 0xff)
                && r.xors.iter().all(|&x| x == 0);
            !(plain(r) || whole_addr)
        });
        if let Some(r) = bad {
            if r.f == Field::Daddr && runs.iter().all(|r| r.f == Field::Daddr) {
                self.out.split_daddr();
                return None;
            }
            self.out.opaque(format!(
                "set {:?} is looked up with a masked, partial or computed {:?}",
                s.name, r.f
            ));
            return None;
        }
        let dport_at = runs.iter().find(|r| r.f == Field::Dport).map(|r| r.pos);
        let mut only_dport = Vec::new();
        for r in &runs {
            match r.f {
                Field::Daddr => {
                    let w = field_width(Field::Daddr, self.fam);
                    let groups = self.groups(set, r.pos, r.len, w, None);
                    for (g, _) in groups.iter() {
                        self.out.push_daddr(g.clone());
                    }
                }
                Field::Saddr => {
                    let w = field_width(Field::Saddr, self.fam);
                    let groups = self.groups(set, r.pos, r.len, w, dport_at);
                    for (g, port) in groups.iter() {
                        let rel2 = match port {
                            Some((a, b)) => rel
                                .intersect(&PortSet::from_ranges([
                                    PortRange::new(*a, *b).expect("ordered")
                                ])),
                            None => rel.clone(),
                        };
                        if !rel2.is_empty() {
                            self.out.addr(g.clone(), &rel2);
                        }
                    }
                }
                f => {
                    for i in 0..s.n {
                        let a = be(&s.start(i)[r.pos..r.pos + 2]) as u16;
                        let b = be(&s.end(i)[r.pos..r.pos + 2]) as u16;
                        let (a, b) = (a.min(b), a.max(b));
                        self.out.ports(f, a, b);
                        only_dport.push(PortRange::new(a, b).expect("ordered"));
                    }
                }
            }
        }
        let alone = runs.len() == 1
            && runs[0].f == Field::Dport
            && bytes.iter().all(|b| !matches!(b, B::Other))
            && s.catchall.is_none();
        alone.then(|| PortSet::from_ranges(only_dport))
    }

    /// The address intervals of a set's elements, grouped by everything
    /// else the element holds (other key components and mapped data), with
    /// the destination port component when the key has one.
    fn groups(
        &mut self,
        set: u32,
        pos: usize,
        n: usize,
        w: usize,
        dport_at: Option<usize>,
    ) -> Groups {
        let key = (set, pos, n, w, dport_at);
        // Built under the lock, once for all threads.
        let mut cache = self.shared.groups.lock().expect("group cache");
        if let Some(g) = cache.get(&key) {
            return g.clone();
        }
        let s: &SetInfo = &self.prog.sets[set as usize];
        let mut idx: HashMap<Vec<u8>, usize> = HashMap::new();
        // Per group: its address intervals and ports.
        type Group = (Vec<(u128, u128)>, Option<(u16, u16)>);
        let mut out: Vec<Group> = Vec::new();
        let interval = matches!(s.kind, SetKind::Interval | SetKind::Concat(_));
        // The group key, rebuilt per element; allocated only for new groups.
        let mut g: Vec<u8> = Vec::new();
        for i in 0..s.n {
            let (st, en) = (s.start(i), s.end(i));
            g.clear();
            for k in 0..s.klen {
                if k < pos || k >= pos + n {
                    g.push(st[k]);
                    g.push(if interval { en[k] } else { st[k] });
                }
            }
            match s.elem_data(i) {
                CData::None => {}
                CData::Value(d) => g.extend_from_slice(d),
                other => g.extend_from_slice(format!("{other:?}").as_bytes()),
            }
            let lo = be(&st[pos..pos + n]);
            let hi = be(&(if interval { en } else { st })[pos..pos + n]);
            let iv = widen(lo.min(hi), lo.max(hi), n, w);
            let port = dport_at.map(|p| {
                let a = be(&st[p..p + 2]) as u16;
                let b = be(&(if interval { en } else { st })[p..p + 2]) as u16;
                (a.min(b), a.max(b))
            });
            let gi = match idx.get(g.as_slice()) {
                Some(&gi) => gi,
                None => {
                    out.push((Vec::new(), port));
                    idx.insert(g.clone(), out.len() - 1);
                    out.len() - 1
                }
            };
            out[gi].0.push(iv);
        }
        let fam = self.fam;
        let g = Arc::new(
            out.into_iter()
                .map(|(iv, p)| (AddrSet::from_ranges(fam, iv), p))
                .collect::<Vec<_>>(),
        );
        cache.insert(key, g.clone());
        g
    }

    /// Predicates of decoded iptables matches.
    fn xt(&mut self, info: &XtInfo, rel: &mut PortSet) {
        let v6 = self.fam == AddrFamily::V6;
        match info {
            XtInfo::Tcp { sport, dport, .. } | XtInfo::Udp { sport, dport, .. } => {
                self.out
                    .ports(Field::Sport, sport[0].min(sport[1]), sport[0].max(sport[1]));
                self.out
                    .ports(Field::Dport, dport[0].min(dport[1]), dport[0].max(dport[1]));
            }
            XtInfo::Multiport {
                ports,
                range,
                flags,
                ..
            } => {
                // 0 `--sports`, 1 `--dports`, 2 `--ports` (either).
                let (sp, dp) = (*flags != 1, *flags != 0);
                let mut i = 0;
                while i < ports.len() {
                    let is_range = range.get(i).copied().unwrap_or(false) && i + 1 < ports.len();
                    let to = if is_range { ports[i + 1] } else { ports[i] };
                    if dp {
                        self.out.ports(Field::Dport, ports[i], to);
                    }
                    if sp {
                        self.out.ports(Field::Sport, ports[i], to);
                    }
                    i += if is_range { 2 } else { 1 };
                }
            }
            XtInfo::Addrtype { .. } => {
                self.out.set_fib();
                self.out.split_daddr();
            }
            // The route back to the source.
            XtInfo::Rpfilter { .. } => self.out.set_fib(),
            XtInfo::Iprange { src, dst, .. } => {
                let iv = |r: &[IpAddr; 2]| {
                    (r[0].is_ipv6() == v6).then(|| {
                        AddrSet::from_ranges(self.fam, vec![(addr_value(r[0]), addr_value(r[1]))])
                    })
                };
                if let Some(set) = src.as_ref().and_then(iv) {
                    self.out.addr(set, rel);
                }
                if let Some(set) = dst.as_ref().and_then(iv) {
                    self.out.push_daddr(set);
                }
            }
            _ => {}
        }
    }
}

/// Whether the interpreter sees the probe's own destination port in every
/// rule: guards are on (they skip a rule whose leading condition is false)
/// and nothing rewrites the packet (NAT, `redirect`, `payload set`).
fn dport_fixed(prog: &Program) -> bool {
    prog.guards
        && !prog.chains.iter().flat_map(|c| &c.rules).any(|r| {
            r.ops
                .iter()
                .any(|o| matches!(o, Op::PayloadSet { .. } | Op::Nat { .. } | Op::Redir { .. }))
        })
}

/// The destination ports for which every destination-port condition of a
/// rule's guard can hold. For the others the interpreter skips the rule
/// without running it (the probe's port is fully known and, given
/// [`dport_fixed`], never rewritten), so nothing the rule tests matters
/// there. Conditions this does not follow (masked, wider compares, dynamic
/// sets, catch-alls, concatenations) allow every port.
fn guard_ports(guard: &[super::compile::Cond], sets: &[SetInfo]) -> PortSet {
    use crate::snapshot::CmpOp;
    let mut out = PortSet::all();
    let range = |a: u16, b: u16| PortRange::new(a.min(b), a.max(b)).expect("ordered");
    let port = |d: &[u8]| u16::from_be_bytes([d[0], d[1]]);
    for c in guard {
        let dport = matches!(
            c.src,
            super::compile::Src::Payload {
                base: PayloadBase::Transport,
                offset: 2,
                len: 2
            }
        );
        if !dport || c.mask.is_some() {
            continue;
        }
        let holds = match &c.test {
            Test::Cmp { op, data } if data.len() == 2 => {
                let d = port(data);
                let (lt, eq, gt) = (
                    d.checked_sub(1).map(|x| range(0, x)),
                    Some(range(d, d)),
                    d.checked_add(1).map(|x| range(x, u16::MAX)),
                );
                let parts = match op {
                    CmpOp::Eq => [None, eq, None],
                    CmpOp::Neq => [lt, None, gt],
                    CmpOp::Lt => [lt, None, None],
                    CmpOp::Lte => [lt, eq, None],
                    CmpOp::Gt => [None, None, gt],
                    CmpOp::Gte => [None, eq, gt],
                };
                PortSet::from_ranges(parts.into_iter().flatten())
            }
            Test::Range { op, from, to } if from.len() == 2 && to.len() == 2 => {
                let (a, b) = (port(from), port(to));
                let inside = if a <= b {
                    PortSet::from_ranges([range(a, b)])
                } else {
                    PortSet::new()
                };
                if *op == CmpOp::Eq {
                    inside
                } else {
                    inside.complement()
                }
            }
            Test::Lookup { set, invert } => {
                let s = &sets[*set as usize];
                if s.klen != 2
                    || s.dynamic
                    || s.catchall.is_some()
                    || matches!(s.kind, SetKind::Concat(_))
                {
                    continue;
                }
                let interval = s.kind == SetKind::Interval;
                let inside = PortSet::from_ranges((0..s.n).filter_map(|i| {
                    let a = port(s.start(i));
                    let b = if interval { port(s.end(i)) } else { a };
                    (a <= b).then(|| range(a, b))
                }));
                if *invert {
                    inside.complement()
                } else {
                    inside
                }
            }
            _ => continue,
        };
        out = out.intersect(&holds);
    }
    out
}

/// Whether a `cmp`/`range` holds inside the interval it names (`==`,
/// `<=`...) rather than outside it (`!=`).
fn holds_inside(t: &Test) -> bool {
    use crate::snapshot::CmpOp;
    match t {
        Test::Cmp { op, .. } => *op == CmpOp::Eq,
        Test::Range { op, .. } => *op == CmpOp::Eq,
        Test::Lookup { invert, .. } => !invert,
    }
}

/// Whether a `range` expression holds for `v` (`==`: inside, `!=`: outside).
pub(super) fn range_holds(op: crate::snapshot::CmpOp, v: &[u8], from: &[u8], to: &[u8]) -> bool {
    let inside = from <= v && v <= to;
    inside == (op == crate::snapshot::CmpOp::Eq)
}

/// Whether a `cmp` expression holds for `v` (byte-wise, as `memcmp`).
pub(super) fn cmp_holds(op: crate::snapshot::CmpOp, v: &[u8], d: &[u8]) -> bool {
    use crate::snapshot::CmpOp;
    let o = v.cmp(d);
    match op {
        CmpOp::Eq => o.is_eq(),
        CmpOp::Neq => o.is_ne(),
        CmpOp::Lt => o.is_lt(),
        CmpOp::Lte => o.is_le(),
        CmpOp::Gt => o.is_gt(),
        CmpOp::Gte => o.is_ge(),
    }
}

/// Bytes of a field in a field's value: 2 for ports.
fn field_width(f: Field, fam: AddrFamily) -> usize {
    match (f, fam) {
        (Field::Saddr | Field::Daddr, AddrFamily::V4) => 4,
        (Field::Saddr | Field::Daddr, AddrFamily::V6) => 16,
        _ => 2,
    }
}

fn slice(regs: &[B; 64], at: u8, len: usize) -> SmallVec<[B; 16]> {
    (0..len)
        .map(|i| regs.get(at as usize + i).copied().unwrap_or(B::Other))
        .collect()
}

fn clear(regs: &mut [B; 64], at: u8, len: usize) {
    for i in 0..len {
        if let Some(b) = regs.get_mut(at as usize + i) {
            *b = B::Other;
        }
    }
}

fn tainted(b: &[B]) -> Option<Field> {
    b.iter().find_map(|b| match b {
        B::Fld { f, .. } | B::Bad(f) => Some(*f),
        B::Other | B::Known(_) => None,
    })
}

/// The bytes, when all are fixed for the combination.
fn known(b: &[B]) -> Option<SmallVec<[u8; 16]>> {
    b.iter()
        .map(|b| match b {
            B::Known(v) => Some(*v),
            _ => None,
        })
        .collect()
}

/// A run of consecutive bytes of one field in a compared value.
#[derive(Clone, Debug)]
struct FRun {
    f: Field,
    /// Position in the compared bytes.
    pos: usize,
    /// First field byte.
    first: usize,
    len: usize,
    masks: SmallVec<[u8; 16]>,
    xors: SmallVec<[u8; 16]>,
}

fn field_runs(bytes: &[B]) -> SmallVec<[FRun; 2]> {
    let mut out: SmallVec<[FRun; 2]> = SmallVec::new();
    for (k, b) in bytes.iter().enumerate() {
        match *b {
            B::Fld { f, i, m, x } => {
                let extend = out.last().is_some_and(|r| {
                    r.f == f && r.pos + r.len == k && r.first + r.len == i as usize
                });
                if extend {
                    let r = out.last_mut().expect("checked");
                    r.len += 1;
                    r.masks.push(m);
                    r.xors.push(x);
                } else {
                    out.push(FRun {
                        f,
                        pos: k,
                        first: i as usize,
                        len: 1,
                        masks: smallvec::smallvec![m],
                        xors: smallvec::smallvec![x],
                    });
                }
            }
            B::Bad(f) => out.push(FRun {
                f,
                pos: k,
                first: usize::MAX,
                len: 1,
                masks: smallvec::smallvec![0],
                xors: smallvec::smallvec![0],
            }),
            B::Other | B::Known(_) => {}
        }
    }
    out
}
