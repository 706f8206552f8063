//! Keeping a snapshot up to date from nf_tables change notifications.
//!
//! Every committed transaction arrives as its per-object events (new or
//! deleted table, chain, rule, set, set element, object, flowtable) followed
//! by `NEWGEN`. [`event`] decodes one notification; [`Transaction`] gathers
//! a transaction's events and applies them to a [`Snapshot`] in place, in
//! the order the kernel committed them, so a 200,000-element set is never
//! read again because one element changed.
//!
//! Two things cannot be applied from the events alone, and are re-read
//! instead (one chain's rules, not the ruleset):
//! - a new rule whose predecessor (`NFTA_RULE_POSITION`) is not known yet,
//!   as when a batch inserts several rules at the head of a chain;
//! - events about a table or chain the snapshot does not hold.

use super::decode::{self, DecodeError, ElemSink, GenInfo, Location};
use super::sys::{msg, Msg};
use crate::snapshot::{close_ranges, Chain, Family, Flowtable, Object, Rule, Set, Snapshot, Table};
use std::net::IpAddr;

/// `NLM_F_APPEND`: a rule event for a rule added at the end of its chain
/// (`nft add rule`), or a replaced one.
const NLM_F_APPEND: u16 = 0x800;

/// One change notification, decoded.
#[derive(Debug)]
pub enum Event {
    /// A table was added or updated.
    NewTable(Table),
    /// A table was deleted.
    DelTable(Family, String),
    /// A chain was added, updated or renamed.
    NewChain(Location, Chain),
    /// A chain was deleted.
    DelChain(Location, Chain),
    /// A rule was added.
    NewRule {
        /// Table and chain.
        loc: Location,
        /// The rule.
        rule: Rule,
        /// Handle of the rule just before it, when it has one and is not last.
        after: Option<u64>,
        /// Added at the end of its chain.
        append: bool,
    },
    /// A rule was deleted.
    DelRule(Location, u64),
    /// A set was added or updated.
    NewSet(Location, Set),
    /// A set was deleted.
    DelSet(Location, String),
    /// Elements were added to a set (`loc.parent` is the set).
    NewElems(Location, ElemSink),
    /// Elements were deleted from a set.
    DelElems(Location, ElemSink),
    /// A stateful object was added or updated.
    NewObj(Location, Object),
    /// A stateful object was deleted.
    DelObj(Location, Object),
    /// A flowtable was added or updated.
    NewFlowtable(Location, Flowtable),
    /// A flowtable was deleted.
    DelFlowtable(Location, Flowtable),
    /// The transaction was committed: the end of its events.
    NewGen(GenInfo),
}

/// Decodes one notification (`None` for messages that are not nf_tables
/// events).
pub fn event(m: Msg<'_>) -> Result<Option<Event>, DecodeError> {
    let table_loc = |t: &Table| Location {
        family: t.family,
        table: t.name.clone(),
        parent: None,
    };
    Ok(Some(match m.kind() {
        msg::NEWTABLE => Event::NewTable(decode::table(m)?),
        msg::DELTABLE => {
            let t = decode::table(m)?;
            let loc = table_loc(&t);
            Event::DelTable(loc.family, loc.table)
        }
        msg::NEWCHAIN => {
            let (loc, c) = decode::chain(m)?;
            Event::NewChain(loc, c)
        }
        msg::DELCHAIN => {
            let (loc, c) = decode::chain(m)?;
            Event::DelChain(loc, c)
        }
        msg::NEWRULE => {
            let (loc, rule) = decode::rule(m, |f| f == Family::Ip6)?;
            Event::NewRule {
                loc,
                rule,
                after: decode::rule_position(m),
                append: m.flags() & NLM_F_APPEND != 0,
            }
        }
        msg::DELRULE => {
            let (loc, rule) = decode::rule(m, |f| f == Family::Ip6)?;
            Event::DelRule(loc, rule.handle)
        }
        msg::NEWSET => {
            let (loc, s) = decode::set(m)?;
            Event::NewSet(loc, s)
        }
        msg::DELSET => {
            let (loc, s) = decode::set(m)?;
            Event::DelSet(loc, s.name)
        }
        msg::NEWSETELEM | msg::DELSETELEM => {
            let loc = decode::element_location(m)?;
            let mut sink = ElemSink::default();
            decode::elements(m, &mut sink)?;
            if m.kind() == msg::NEWSETELEM {
                Event::NewElems(loc, sink)
            } else {
                Event::DelElems(loc, sink)
            }
        }
        msg::NEWOBJ => {
            let (loc, o) = decode::object(m)?;
            Event::NewObj(loc, o)
        }
        msg::DELOBJ => {
            let (loc, o) = decode::object(m)?;
            Event::DelObj(loc, o)
        }
        msg::NEWFLOWTABLE => {
            let (loc, f) = decode::flowtable(m)?;
            Event::NewFlowtable(loc, f)
        }
        msg::DELFLOWTABLE => {
            let (loc, f) = decode::flowtable(m)?;
            Event::DelFlowtable(loc, f)
        }
        msg::NEWGEN => Event::NewGen(decode::gen_info(m).ok_or_else(|| DecodeError {
            what: "generation",
            why: "no generation id".into(),
        })?),
        _ => return Ok(None),
    }))
}

/// A chain whose rules must be read again: the events did not say where a
/// rule goes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reread {
    /// Table family.
    pub family: Family,
    /// Table name.
    pub table: String,
    /// Chain name.
    pub chain: String,
}

/// What applying a transaction needs next.
#[derive(Debug, Default)]
pub struct Applied {
    /// Chains whose rule order the events left open: read their rules.
    pub reread: Vec<Reread>,
    /// Events about a table the snapshot does not hold: only a full read
    /// can say what the ruleset is.
    pub lost: bool,
}

/// Applies a transaction's events, in commit order, to `snap`.
pub fn apply(snap: &mut Snapshot, events: Vec<Event>) -> Applied {
    let mut out = Applied::default();
    // Tables whose rules moved: their chains' positions are numbered
    // again at the end (by table, as a chain may be renamed meanwhile).
    let mut touched: Vec<(Family, String)> = Vec::new();
    for ev in events {
        apply_one(snap, ev, &mut out, &mut touched);
    }
    touched.sort();
    touched.dedup();
    for (f, t) in touched {
        if let Some(table) = table_mut(snap, f, &t) {
            for chain in &mut table.chains {
                for (i, r) in chain.rules.iter_mut().enumerate() {
                    r.position = i as u32;
                }
            }
        }
    }
    out.reread.dedup();
    out
}

fn table_mut<'a>(snap: &'a mut Snapshot, f: Family, name: &str) -> Option<&'a mut Table> {
    snap.tables
        .iter_mut()
        .find(|t| t.family == f && t.name == name)
}

fn chain_mut<'a>(t: &'a mut Table, name: &str) -> Option<&'a mut Chain> {
    t.chains.iter_mut().find(|c| c.name == name)
}

fn apply_one(
    snap: &mut Snapshot,
    ev: Event,
    out: &mut Applied,
    touched: &mut Vec<(Family, String)>,
) {
    // Every event but a new table's names a table that must be there.
    macro_rules! table {
        ($loc:expr) => {
            match table_mut(snap, $loc.family, &$loc.table) {
                Some(t) => t,
                None => {
                    out.lost = true;
                    return;
                }
            }
        };
    }
    match ev {
        Event::NewTable(t) => match table_mut(snap, t.family, &t.name) {
            Some(old) => {
                old.handle = t.handle;
                old.flags = t.flags;
            }
            None => snap.tables.push(t),
        },
        Event::DelTable(f, name) => snap.tables.retain(|t| !(t.family == f && t.name == name)),
        Event::NewChain(loc, c) => {
            let t = table!(loc);
            // A rename keeps the handle; an update keeps the name.
            match t
                .chains
                .iter_mut()
                .find(|x| x.handle == c.handle || x.name == c.name)
            {
                Some(old) => {
                    old.name = c.name;
                    old.handle = c.handle;
                    old.base = c.base;
                }
                None => t.chains.push(c),
            }
        }
        Event::DelChain(loc, c) => {
            let t = table!(loc);
            t.chains.retain(|x| x.name != c.name);
        }
        Event::NewRule {
            loc,
            rule,
            after,
            append,
        } => {
            let chain_name = loc.parent.clone().unwrap_or_default();
            let t = table!(loc);
            let Some(chain) = chain_mut(t, &chain_name) else {
                out.lost = true;
                return;
            };
            touched.push((loc.family, loc.table.clone()));
            if let Some(old) = chain.rules.iter_mut().find(|r| r.handle == rule.handle) {
                *old = rule;
                return;
            }
            match after {
                Some(h) => match chain.rules.iter().position(|r| r.handle == h) {
                    Some(i) => chain.rules.insert(i + 1, rule),
                    None => {
                        chain.rules.push(rule);
                        out.reread.push(Reread {
                            family: loc.family,
                            table: loc.table,
                            chain: chain_name,
                        });
                    }
                },
                None if append => chain.rules.push(rule),
                None => chain.rules.insert(0, rule),
            }
        }
        Event::DelRule(loc, handle) => {
            let chain_name = loc.parent.clone().unwrap_or_default();
            let t = table!(loc);
            if let Some(chain) = chain_mut(t, &chain_name) {
                chain.rules.retain(|r| r.handle != handle);
                touched.push((loc.family, loc.table));
            }
        }
        Event::NewSet(loc, s) => {
            let t = table!(loc);
            match t.sets.iter_mut().find(|x| x.name == s.name) {
                Some(old) => {
                    let elements = std::mem::take(&mut old.elements);
                    *old = s;
                    old.elements = elements;
                }
                None => t.sets.push(s),
            }
        }
        Event::DelSet(loc, name) => {
            let t = table!(loc);
            t.sets.retain(|s| s.name != name);
        }
        Event::NewElems(loc, sink) => {
            let set_name = loc.parent.clone().unwrap_or_default();
            let t = table!(loc);
            match t.sets.iter_mut().find(|s| s.name == set_name) {
                Some(set) => add_elements(set, sink),
                None => out.lost = true,
            }
        }
        Event::DelElems(loc, sink) => {
            let set_name = loc.parent.clone().unwrap_or_default();
            let t = table!(loc);
            if let Some(set) = t.sets.iter_mut().find(|s| s.name == set_name) {
                for e in &sink.starts {
                    set.remove(&e.key);
                }
            }
        }
        Event::NewObj(loc, o) => {
            let t = table!(loc);
            let same = |x: &Object| {
                x.name == o.name
                    && std::mem::discriminant(&x.kind) == std::mem::discriminant(&o.kind)
            };
            match t.objects.iter_mut().find(|x| same(x)) {
                Some(old) => *old = o,
                None => t.objects.push(o),
            }
        }
        Event::DelObj(loc, o) => {
            let t = table!(loc);
            t.objects.retain(|x| {
                !(x.name == o.name
                    && std::mem::discriminant(&x.kind) == std::mem::discriminant(&o.kind))
            });
        }
        Event::NewFlowtable(loc, f) => {
            let t = table!(loc);
            match t.flowtables.iter_mut().find(|x| x.name == f.name) {
                Some(old) => *old = f,
                None => t.flowtables.push(f),
            }
        }
        Event::DelFlowtable(loc, f) => {
            let t = table!(loc);
            t.flowtables.retain(|x| x.name != f.name);
        }
        Event::NewGen(g) => snap.generation = g.id,
    }
}

/// Adds the elements of one event to `set`. The kernel announces an
/// interval `[a, b]` of a plain interval set as a start `a` and an end
/// `b + 1`, one event each: ends are paired with the starts of the same
/// event (see [`Transaction`], which joins consecutive element events of
/// one set into one).
fn add_elements(set: &mut Set, mut sink: ElemSink) {
    if set.interval() && set.key.0.len() == 1 {
        if sink.starts.is_empty() {
            return;
        }
        close_ranges(&mut sink.starts, &mut sink.ends);
    }
    for e in sink.starts {
        set.upsert(e);
    }
}

/// A transaction's events as they arrive, until its `NEWGEN`.
///
/// Consecutive element events of the same kind on the same set are joined,
/// so that the start and end of an interval, announced one element per
/// message, are applied together.
#[derive(Debug, Default)]
pub struct Transaction {
    events: Vec<Event>,
}

impl Transaction {
    /// Adds an event (not `NEWGEN`).
    pub fn push(&mut self, ev: Event) {
        match (self.events.last_mut(), ev) {
            (Some(Event::NewElems(l1, s1)), Event::NewElems(l2, s2))
            | (Some(Event::DelElems(l1, s1)), Event::DelElems(l2, s2))
                if *l1 == l2 =>
            {
                s1.starts.extend(s2.starts);
                s1.ends.extend(s2.ends);
            }
            (_, ev) => self.events.push(ev),
        }
    }

    /// Whether no event has arrived since the last commit.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Ends the transaction: its events, in commit order.
    pub fn take(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }
}

/// A copy of `snap` without what changes by itself while nothing is
/// committed (counter and quota values, element expiry times), for
/// comparing a snapshot kept from events with a fresh read. The legacy
/// iptables tables are left out: no nf_tables event tells of them.
pub fn comparable(snap: &Snapshot) -> Snapshot {
    use crate::snapshot::{Expr, ObjectKind};
    let mut s = snap.clone();
    s.legacy.clear();
    s.legacy_unlisted.clear();
    for t in &mut s.tables {
        for c in &mut t.chains {
            for r in &mut c.rules {
                for e in &mut r.exprs {
                    match e {
                        Expr::Counter { packets, bytes } => {
                            *packets = 0;
                            *bytes = 0;
                        }
                        Expr::Quota { consumed, .. } => *consumed = 0,
                        _ => {}
                    }
                }
            }
        }
        for set in &mut t.sets {
            for e in &mut set.elements {
                if let Some(x) = &mut e.extra {
                    x.expires_ms = None;
                }
            }
        }
        for o in &mut t.objects {
            match &mut o.kind {
                ObjectKind::Counter { packets, bytes } => {
                    *packets = 0;
                    *bytes = 0;
                }
                ObjectKind::Quota { consumed, .. } => *consumed = 0,
                _ => {}
            }
        }
        // Dump order is the kernel's list order; events append. Order does
        // not change what the ruleset does except for rules, which keep it.
        t.chains.sort_by(|a, b| a.name.cmp(&b.name));
        t.sets.sort_by(|a, b| a.name.cmp(&b.name));
        t.objects.sort_by(|a, b| a.name.cmp(&b.name));
        t.flowtables.sort_by(|a, b| a.name.cmp(&b.name));
    }
    s.tables
        .sort_by(|a, b| (a.family, &a.name).cmp(&(b.family, &b.name)));
    s
}

/// The addresses a transaction's element changes touch, when the
/// transaction changes nothing but elements of sets keyed by one IPv4 or
/// IPv6 address (a deny list that fail2ban or CrowdSec keep filling):
/// per element event the lowest and highest address among its keys and
/// range ends (a hull: never smaller than what changed). `None` when the
/// transaction changes anything else, or a set the snapshot does not hold.
pub fn address_elements_only(snap: &Snapshot, events: &[Event]) -> Option<Vec<(IpAddr, IpAddr)>> {
    use crate::snapshot::value::{IP6ADDR, IPADDR};
    let mut hulls = Vec::new();
    for ev in events {
        let (loc, sink) = match ev {
            Event::NewElems(l, s) | Event::DelElems(l, s) => (l, s),
            _ => return None,
        };
        let set_name = loc.parent.as_deref()?;
        let set = snap
            .tables
            .iter()
            .find(|t| t.family == loc.family && t.name == loc.table)?
            .set(set_name)?;
        let [key] = set.key.0.as_slice() else {
            return None;
        };
        if set.is_map() {
            return None;
        }
        let addr = |b: &[u8]| -> Option<IpAddr> {
            match key.id {
                IPADDR => <[u8; 4]>::try_from(b).ok().map(IpAddr::from),
                IP6ADDR => <[u8; 16]>::try_from(b).ok().map(IpAddr::from),
                _ => None,
            }
        };
        // A deleted range reaches as far as the kept element says; an added
        // start without its end in the event runs to the top.
        let kept_ends = sink.starts.iter().filter_map(|e| {
            let i = set.elements.binary_search_by(|x| x.key.cmp(&e.key)).ok()?;
            set.elements[i].key_end.as_ref()
        });
        let keys = sink
            .starts
            .iter()
            .flat_map(|e| std::iter::once(&e.key).chain(e.key_end.as_ref()))
            .chain(sink.ends.iter())
            .chain(kept_ends);
        let mut hull: Option<(IpAddr, IpAddr)> = None;
        if set.interval() && sink.starts.len() > sink.ends.len() {
            let top = match key.id {
                IPADDR => IpAddr::from([0xffu8; 4]),
                _ => IpAddr::from([0xffu8; 16]),
            };
            hull = sink
                .starts
                .first()
                .and_then(|e| addr(e.key.as_slice()))
                .map(|a| (a, top));
        }
        for k in keys {
            let a = addr(k.as_slice())?;
            hull = Some(match hull {
                None => (a, a),
                Some((lo, hi)) => (lo.min(a), hi.max(a)),
            });
        }
        hulls.extend(hull);
    }
    Some(hulls)
}
