//! Input interfaces the ruleset cannot tell apart.
//!
//! The exposure map evaluates every (family, protocol, input interface).
//! Most interfaces of a host are named by no rule (a second uplink, bridges,
//! container veths), and for those the evaluation is the same: it need run
//! once. Two interfaces are *alike* for a family and protocol when
//! everything the evaluator lets depend on the input interface comes out
//! the same for both:
//!
//! - its type (loopback and link-layer handling), and which device-bound
//!   ingress chains it enters;
//! - every test of a value loaded from the interface (`iif`, `iifname`,
//!   `iiftype`, `iifgroup`, `iifkind`), followed through masks into `cmp`,
//!   `range` and set or map lookups: `iifname "eth3"` is false alike for
//!   `eth0` and `eth1`;
//! - any other use of such a value (a mark set from `iif`, a concatenated
//!   lookup with packet fields): there the values themselves must be equal;
//! - expressions that consult the interface's addresses or routes (`fib`
//!   with `iif` or on IPv6, where a link-local address is looked up on the
//!   input interface; `redirect`; `xt addrtype --limit-iface-in`): these
//!   tell every interface apart;
//! - for IPv4, the routing decision's own checks: `route_localnet`,
//!   `accept_local` and the reverse-path filter (a strict one tells the
//!   interface apart from every other).
//!
//! Each interface gets a *fingerprint*, the outcomes of those in rule
//! order; equal fingerprints mean equal evaluations, because the walk is
//! the same up to the first outcome that differs. Only rules that read
//! registers they wrote themselves are followed (`Program::guards`);
//! otherwise every interface is its own class.

use super::compile::{reg_use, BitKind, Dst, Entry, Op, Program};
use super::exposure::{cmp_holds, fixed_meta, range_holds};
use super::routes::RouteIndex;
use super::{Iface, L4};
use crate::addrs::AddrFamily;
use crate::snapshot::xt::XtInfo;
use crate::snapshot::{Family, MetaKey};
use smallvec::SmallVec;
use std::collections::HashMap;

/// `NFTA_FIB_F_IIF`.
const FIB_IIF: u32 = 8;
/// `xt addrtype` `--limit-iface-in`.
const ADDRTYPE_LIMIT_IN: u32 = 4;

/// The interfaces of `itfs` (by index) in classes the program evaluates
/// alike for new `proto` packets of `fam`, in order of first member; each
/// class's first member can stand for the others.
pub(super) fn classes(
    prog: &Program,
    routes: &RouteIndex,
    fam: AddrFamily,
    proto: L4,
    itfs: &[Iface],
) -> Vec<Vec<usize>> {
    if !prog.guards {
        return (0..itfs.len()).map(|i| vec![i]).collect();
    }
    let prints: Vec<Vec<u32>> = itfs
        .iter()
        .enumerate()
        .map(|(k, itf)| fingerprint(prog, routes, fam, proto, itf, k as u32))
        .collect();
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut seen: HashMap<&[u32], usize> = HashMap::new();
    for (k, p) in prints.iter().enumerate() {
        match seen.get(p.as_slice()) {
            Some(&c) => out[c].push(k),
            None => {
                seen.insert(p, out.len());
                out.push(vec![k]);
            }
        }
    }
    out
}

/// What one register byte holds during the walk.
#[derive(Clone, Copy, PartialEq, Eq)]
enum V {
    /// Not derived from the interface (the same for every interface at
    /// this point of the walk, known or not).
    Other,
    /// A value fixed for the family and protocol.
    Fixed(u8),
    /// Derived from the interface: its value, `None` when the evaluator
    /// does not know it either.
    If(Option<u8>),
}

// Fingerprint tokens: a tag, then its values.
const T_TYPE: u32 = 1;
const T_DEVICES: u32 = 2;
const T_TEST: u32 = 3;
const T_ELEM: u32 = 4;
const T_VALUES: u32 = 5;
const T_ITSELF: u32 = 6;
const T_ROUTING: u32 = 7;

struct Walk<'a> {
    prog: &'a Program,
    routes: &'a RouteIndex,
    fam: AddrFamily,
    proto: L4,
    itf: &'a Iface,
    /// The interface's position: a token no other interface has.
    me: u32,
    out: Vec<u32>,
}

/// The fingerprint of `itf` (see the module docs).
fn fingerprint(
    prog: &Program,
    routes: &RouteIndex,
    fam: AddrFamily,
    proto: L4,
    itf: &Iface,
    me: u32,
) -> Vec<u32> {
    let mut w = Walk {
        prog,
        routes,
        fam,
        proto,
        itf,
        me,
        out: vec![T_TYPE, u32::from(itf.iftype)],
    };
    let v6 = fam == AddrFamily::V6;
    if !v6 && routes.checks {
        routing_tokens(routes, itf, me, &mut w.out);
    }
    for e in &prog.paths[usize::from(v6)].entries {
        if let Entry::Chain {
            devices: Some(devs),
            ..
        } = e
        {
            w.out.push(T_DEVICES);
            w.out.push(u32::from(devs.contains(&itf.name)));
        }
    }
    for chain in &prog.chains {
        let runs = match prog.tables[chain.table as usize].family {
            Family::Ip => !v6,
            Family::Ip6 => v6,
            Family::Inet | Family::Netdev => true,
            _ => false,
        };
        if runs {
            let netdev = prog.tables[chain.table as usize].family == Family::Netdev;
            for rule in chain.rules.iter().filter(|r| reads_interface(&r.ops)) {
                w.rule(&rule.ops, netdev);
            }
        }
    }
    w.out
}

/// What the IPv4 routing decision's checks read from the input interface
/// (`exec::routing_checks`): its `route_localnet` and `accept_local`, and
/// its reverse-path filter. Strict filtering (and loose filtering on an
/// interface without an IPv4 address) compares the route back with the
/// interface itself: such an interface is alike no other.
fn routing_tokens(routes: &RouteIndex, itf: &Iface, me: u32, out: &mut Vec<u32>) {
    use crate::host::RpFilter;
    let Some(i) = routes.by_name(&itf.name).map(|i| routes.interface(i)) else {
        return;
    };
    out.push(T_ROUTING);
    out.push(u32::from(i.route_localnet.is_some()));
    out.push(u32::from(i.accept_local.is_some()));
    out.push(u32::from(i.rp_filter.value()));
    let has_v4 = i.addrs.iter().any(|n| n.addr().is_ipv4());
    if i.rp_filter == RpFilter::Strict || (i.rp_filter == RpFilter::Loose && !has_v4) {
        out.extend([T_ITSELF, me]);
    }
}

impl Walk<'_> {
    /// Follows one rule until its end or a test that certainly fails.
    fn rule(&mut self, ops: &[Op], netdev: bool) {
        let mut regs = [V::Other; 64];
        for op in ops {
            match op {
                Op::Meta { key, dreg } => {
                    let vals = self.meta(*key, netdev);
                    let width = super::compile::meta_store_width(*key);
                    for i in 0..width {
                        if let Some(r) = regs.get_mut(*dreg as usize + i) {
                            *r = vals.as_ref().map_or(V::Other, |v| v[i]);
                        }
                    }
                }
                Op::Imm { dreg, data } => {
                    let n = data.len().div_ceil(4) * 4;
                    for i in 0..n {
                        if let Some(r) = regs.get_mut(*dreg as usize + i) {
                            *r = V::Fixed(data.get(i).copied().unwrap_or(0));
                        }
                    }
                }
                Op::Bitwise {
                    sreg,
                    dreg,
                    len,
                    kind: BitKind::Bool { mask, xor },
                } => {
                    let src: Vec<V> = (0..*len as usize)
                        .map(|i| regs.get(*sreg as usize + i).copied().unwrap_or(V::Other))
                        .collect();
                    for (i, v) in src.into_iter().enumerate() {
                        let m = mask.get(i).copied().unwrap_or(0);
                        let x = xor.get(i).copied().unwrap_or(0);
                        let out = match v {
                            V::Fixed(b) => V::Fixed((b & m) ^ x),
                            _ if m == 0 => V::Fixed(x),
                            V::If(Some(b)) => V::If(Some((b & m) ^ x)),
                            other => other,
                        };
                        if let Some(r) = regs.get_mut(*dreg as usize + i) {
                            *r = out;
                        }
                    }
                }
                Op::Cmp { sreg, op, data } => {
                    let holds = |v: &[u8]| cmp_holds(*op, v, data);
                    if !self.test(&regs, *sreg, data.len(), holds) {
                        return;
                    }
                }
                Op::Range { sreg, op, from, to } => {
                    let holds = |v: &[u8]| range_holds(*op, v, from, to);
                    if !self.test(&regs, *sreg, from.len(), holds) {
                        return;
                    }
                }
                Op::Lookup {
                    set,
                    sreg,
                    dst,
                    invert,
                } => {
                    let s = &self.prog.sets[*set as usize];
                    let key = slice(&regs, *sreg, s.klen);
                    if key.iter().any(|v| matches!(v, V::If(_))) {
                        match known(&key) {
                            Some(k) if !s.dynamic => {
                                let found = s.find(&k);
                                self.out.push(T_ELEM);
                                self.out.push(found.map_or(0, |i| i as u32 + 1));
                                let matched = found.is_some() || s.catchall.is_some();
                                if matched == *invert {
                                    return;
                                }
                            }
                            _ => self.values(&key),
                        }
                    }
                    if let Some(Dst::Reg(r)) = dst {
                        let n = s.dlen.div_ceil(4) * 4;
                        for v in regs.iter_mut().skip(*r as usize).take(n) {
                            *v = V::Other;
                        }
                    }
                }
                Op::Fib { flags, .. } => {
                    // With `iif`, or for an IPv6 link-local address, the
                    // lookup is made on the input interface.
                    if flags & FIB_IIF != 0 || self.fam == AddrFamily::V6 {
                        self.itself();
                    }
                    self.generic(op, &mut regs);
                }
                Op::Redir { .. } => {
                    // To the input interface's primary address.
                    self.itself();
                    self.generic(op, &mut regs);
                }
                Op::Xt { info, .. } => {
                    // addrtype --limit-iface-in, the input device's group,
                    // its type (mac) and the reverse path through it.
                    if matches!(**info, XtInfo::Addrtype { flags, .. } if flags & ADDRTYPE_LIMIT_IN != 0)
                        || matches!(
                            **info,
                            XtInfo::Devgroup { .. } | XtInfo::Mac { .. } | XtInfo::Rpfilter { .. }
                        )
                    {
                        self.itself();
                    }
                }
                _ => self.generic(op, &mut regs),
            }
        }
    }

    /// The register bytes a `meta` load writes, when they are fixed or
    /// come from the interface; `None` for anything else.
    fn meta(&self, key: MetaKey, netdev: bool) -> Option<Vec<V>> {
        if let Some(b) = fixed_meta(key, self.fam, self.proto, netdev) {
            return Some(b.iter().map(|&x| V::Fixed(x)).collect());
        }
        let from_if = |b: &[u8]| Some(b.iter().map(|&x| V::If(Some(x))).collect());
        match key {
            MetaKey::Iifname => from_if(&super::exec::ifname(&self.itf.name)),
            MetaKey::Iif => from_if(&self.itf.index.to_ne_bytes()),
            MetaKey::Iiftype => {
                let t = self.itf.iftype.to_ne_bytes();
                from_if(&[t[0], t[1], 0, 0])
            }
            MetaKey::Iifgroup => match self.routes.by_name(&self.itf.name) {
                Some(i) => from_if(&self.routes.interface(i).group.to_ne_bytes()),
                None => Some(vec![V::If(None); 4]),
            },
            MetaKey::Iifkind => match self
                .routes
                .by_name(&self.itf.name)
                .and_then(|i| self.routes.interface(i).kind.as_deref())
            {
                Some(k) => from_if(&super::exec::ifname(k)),
                None => Some(vec![V::If(None); 16]),
            },
            _ => None,
        }
    }

    /// A `cmp` or `range` over `len` bytes at `sreg`; false when it
    /// certainly fails (the rule stops there).
    fn test(
        &mut self,
        regs: &[V; 64],
        sreg: u8,
        len: usize,
        holds: impl Fn(&[u8]) -> bool,
    ) -> bool {
        let bytes = slice(regs, sreg, len);
        let from_if = bytes.iter().any(|v| matches!(v, V::If(_)));
        match known(&bytes) {
            Some(v) => {
                let h = holds(&v);
                if from_if {
                    self.out.push(T_TEST);
                    self.out.push(u32::from(h));
                }
                h
            }
            None => {
                if from_if {
                    self.values(&bytes);
                }
                true
            }
        }
    }

    /// Any other use of registers: the interface-derived bytes it reads
    /// must be equal; what it writes is then the same for all.
    fn generic(&mut self, op: &Op, regs: &mut [V; 64]) {
        let (reads, writes) = reg_use(op, &self.prog.sets);
        let read: Vec<V> = (0..64)
            .filter(|i| reads >> i & 1 == 1)
            .map(|i| regs[i])
            .collect();
        if read.iter().any(|v| matches!(v, V::If(_))) {
            self.values(&read);
        }
        for (i, r) in regs.iter_mut().enumerate() {
            if writes >> i & 1 == 1 {
                *r = V::Other;
            }
        }
    }

    /// The interface-derived bytes among `bytes`, as they are.
    fn values(&mut self, bytes: &[V]) {
        self.out.push(T_VALUES);
        self.out.push(bytes.len() as u32);
        for v in bytes {
            if let V::If(b) = v {
                self.out.push(b.map_or(0x100, u32::from));
            }
        }
    }

    /// Something that tells every interface apart.
    fn itself(&mut self) {
        self.out.push(T_ITSELF);
        self.out.push(self.me);
    }
}

/// Whether a rule uses the input interface at all: without, it adds
/// nothing to a fingerprint (only interface-derived values do).
pub(super) fn reads_interface(ops: &[Op]) -> bool {
    ops.iter().any(|op| match op {
        Op::Meta { key, .. } => matches!(
            key,
            MetaKey::Iifname
                | MetaKey::Iif
                | MetaKey::Iiftype
                | MetaKey::Iifgroup
                | MetaKey::Iifkind
        ),
        Op::Fib { .. } | Op::Redir { .. } => true,
        Op::Xt { info, .. } => matches!(
            **info,
            XtInfo::Addrtype { .. }
                | XtInfo::Devgroup { .. }
                | XtInfo::Mac { .. }
                | XtInfo::Rpfilter { .. }
        ),
        _ => false,
    })
}

fn slice(regs: &[V; 64], at: u8, len: usize) -> SmallVec<[V; 16]> {
    (0..len)
        .map(|i| regs.get(at as usize + i).copied().unwrap_or(V::Other))
        .collect()
}

/// The bytes, when every one is known.
fn known(bytes: &[V]) -> Option<Vec<u8>> {
    bytes
        .iter()
        .map(|v| match v {
            V::Fixed(b) | V::If(Some(b)) => Some(*b),
            V::Other | V::If(None) => None,
        })
        .collect()
}
