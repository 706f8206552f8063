//! The snapshot pre-indexed for evaluation: chains and sets by number, jump
//! targets and set names resolved, registers turned into byte offsets, set
//! elements flattened into sorted key arrays, and base chains ordered per
//! hook and family.

use super::describe;
use crate::snapshot::xt::XtInfo;
use crate::snapshot::{
    flags as setflags, BitwiseOp, CmpOp, CtKey, ElemData, Expr, Family, Hook, MetaKey, NatKind,
    ObjectKind, PayloadBase, Policy, Reg, Snapshot, Table, Verdict as NftVerdict,
};
use rayon::prelude::*;
use smallvec::SmallVec;
use std::collections::HashMap;
use std::net::IpAddr;

/// Constant bytes (register values, keys).
pub(super) type Data = SmallVec<[u8; 16]>;

/// "No chain".
pub(super) const NONE: u32 = u32::MAX;

/// A verdict with resolved chain numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CVerdict {
    Accept,
    Drop,
    Continue,
    Return,
    Jump(u32),
    Goto(u32),
    Break,
    /// To userspace queues `num..num + total`; with `bypass`, a packet no
    /// program listens for goes on as if accepted.
    Queue {
        num: u16,
        total: u16,
        bypass: bool,
    },
    Stolen,
    /// A jump or goto to a chain that does not exist in the table.
    Missing,
}

/// Where a lookup puts the mapped data.
#[derive(Clone, Copy, Debug)]
pub(super) enum Dst {
    Verdict,
    Reg(u8),
}

#[derive(Clone, Debug)]
pub(super) enum BitKind {
    Bool { mask: Data, xor: Data },
    Shl(u32),
    Shr(u32),
}

/// A stateful object a rule refers to.
#[derive(Clone, Debug)]
pub(super) enum Obj {
    /// No effect on the verdict (counter, ct helper, ct timeout, secmark...).
    Nop,
    Quota {
        name: Box<str>,
        bytes: u64,
        consumed: u64,
        invert: bool,
    },
    Limit {
        invert: bool,
    },
    /// Not modelled (synproxy, connlimit objects, unknown types, missing).
    Unknown(Box<str>),
}

/// Whether an opaque expression can do more than match or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Opacity {
    /// Matches or not, nothing else (an xt match).
    Match,
    /// Anything: a verdict, register writes, mark or conntrack changes.
    Any,
}

/// A flag of `Op::Nat` (beyond the kernel's `NF_NAT_RANGE_*` bits): the
/// expression is `masquerade`, the address is the output device's.
pub(super) const NAT_MASQUERADE: u32 = 1 << 31;

/// Where a NAT statement takes a range (its lowest and highest value)
/// from: registers the rule loaded (nft `snat`/`dnat`, `masquerade`,
/// `redirect`), or the statement itself (the xt NAT targets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum NatArg<T> {
    /// Register offsets of the lowest and highest value.
    Regs(u8, u8),
    /// The lowest and highest value.
    Given(T, T),
}

impl<T> NatArg<T> {
    /// The registers read, if any.
    pub(super) fn regs(&self) -> Option<(u8, u8)> {
        match self {
            NatArg::Regs(a, b) => Some((*a, *b)),
            NatArg::Given(..) => None,
        }
    }
}

/// One compiled expression. Registers are byte offsets into the 64-byte
/// data area of `nft_regs` (after the verdict).
#[derive(Clone, Debug)]
pub(super) enum Op {
    Payload {
        base: PayloadBase,
        offset: u32,
        len: u8,
        dreg: u8,
    },
    PayloadSet {
        base: PayloadBase,
        offset: u32,
        len: u8,
        sreg: u8,
    },
    Cmp {
        sreg: u8,
        op: CmpOp,
        data: Data,
    },
    Range {
        sreg: u8,
        op: CmpOp,
        from: Data,
        to: Data,
    },
    Bitwise {
        sreg: u8,
        dreg: u8,
        len: u8,
        kind: BitKind,
    },
    Byteorder {
        sreg: u8,
        dreg: u8,
        len: u8,
        size: u8,
    },
    Meta {
        key: MetaKey,
        dreg: u8,
    },
    MetaSet {
        key: MetaKey,
        sreg: u8,
    },
    Ct {
        key: CtKey,
        dir: Option<u8>,
        dreg: u8,
    },
    CtSet {
        key: CtKey,
        dir: Option<u8>,
        sreg: u8,
    },
    Lookup {
        set: u32,
        sreg: u8,
        dst: Option<Dst>,
        invert: bool,
    },
    Verdict(CVerdict),
    Imm {
        dreg: u8,
        data: Data,
    },
    Nop,
    Limit {
        invert: bool,
    },
    Quota {
        bytes: u64,
        consumed: u64,
        invert: bool,
    },
    Connlimit {
        count: u32,
        invert: bool,
    },
    Reject {
        kind: u32,
        code: u8,
    },
    Nat {
        snat: bool,
        family: u8,
        addr: Option<NatArg<IpAddr>>,
        proto: Option<NatArg<u16>>,
        flags: u32,
    },
    Redir {
        proto: Option<NatArg<u16>>,
    },
    Fib {
        flags: u32,
        result: u32,
        dreg: u8,
    },
    Dynset {
        set: u32,
        op: u32,
        key: u8,
        data: Option<u8>,
        exprs: Box<[Op]>,
        invert: bool,
        /// Per-element expressions that are not modelled: the key is
        /// recorded, whether the rule goes on is not known.
        opaque: bool,
    },
    Obj(Obj),
    ObjMap {
        set: u32,
        sreg: u8,
    },
    Socket {
        key: u32,
        dreg: u8,
    },
    Exthdr {
        op: u32,
        kind: u8,
        offset: u32,
        len: u8,
        present: bool,
        dreg: u8,
    },
    Notrack,
    Rt {
        key: u32,
        dreg: u8,
    },
    /// A value nobody can predict (numgen, hash): unknown register bytes.
    Opaque {
        dreg: u8,
        len: u8,
        origin: u8,
    },
    Tproxy {
        family: u32,
        addr: Option<u8>,
        port: Option<u8>,
    },
    Xt {
        target: bool,
        info: Box<XtInfo>,
    },
    /// An ip6tables extension-header match (`rt`, `frag`, `hbh`, `dst`):
    /// false whenever the header is absent, whatever its options.
    Ip6ExtMatch {
        what: Box<str>,
    },
    Unknown {
        what: Box<str>,
        kind: Opacity,
    },
}

/// How set elements are matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum SetKind {
    /// Exact keys (hash, bitmap, non-interval concatenations).
    Exact,
    /// Closed ranges of one component (rbtree).
    Interval,
    /// Concatenated ranges, per component `(offset, len)` (pipapo).
    Concat(Vec<(usize, usize)>),
}

/// What an element maps to.
#[derive(Clone, Debug)]
pub(super) enum CData {
    None,
    Verdict(CVerdict),
    Value(Data),
    Obj(Obj),
}

/// A set prepared for lookups.
#[derive(Clone, Debug)]
pub(super) struct SetInfo {
    pub name: String,
    pub klen: usize,
    pub kind: SetKind,
    /// Element count.
    pub n: usize,
    /// `n * klen` bytes: keys (range starts), sorted for `Exact`/`Interval`.
    pub starts: Vec<u8>,
    /// `n * klen` bytes: inclusive range ends (`Interval`, `Concat`).
    pub ends: Vec<u8>,
    /// Per element, for maps.
    pub data: Vec<CData>,
    /// Mapped data length, for data maps.
    pub dlen: usize,
    /// Updated from the packet path (a `dynset` targets it): its elements
    /// may change during a probe.
    pub dynamic: bool,
    /// The catch-all element (`*`), if any.
    pub catchall: Option<CData>,
}

impl SetInfo {
    pub fn start(&self, i: usize) -> &[u8] {
        &self.starts[i * self.klen..(i + 1) * self.klen]
    }

    pub fn end(&self, i: usize) -> &[u8] {
        if self.ends.is_empty() {
            self.start(i)
        } else {
            &self.ends[i * self.klen..(i + 1) * self.klen]
        }
    }

    pub fn elem_data(&self, i: usize) -> &CData {
        self.data.get(i).unwrap_or(&CData::None)
    }

    /// The element matching a fully known key.
    pub fn find(&self, key: &[u8]) -> Option<usize> {
        match &self.kind {
            SetKind::Exact => {
                let (mut lo, mut hi) = (0, self.n);
                while lo < hi {
                    let mid = (lo + hi) / 2;
                    match self.start(mid).cmp(key) {
                        std::cmp::Ordering::Less => lo = mid + 1,
                        std::cmp::Ordering::Greater => hi = mid,
                        std::cmp::Ordering::Equal => return Some(mid),
                    }
                }
                None
            }
            SetKind::Interval => {
                // The last range starting at or before the key.
                let (mut lo, mut hi) = (0, self.n);
                while lo < hi {
                    let mid = (lo + hi) / 2;
                    if self.start(mid) <= key {
                        lo = mid + 1;
                    } else {
                        hi = mid;
                    }
                }
                let i = lo.checked_sub(1)?;
                (key <= self.end(i)).then_some(i)
            }
            SetKind::Concat(parts) => (0..self.n).find(|&i| {
                let (s, e) = (self.start(i), self.end(i));
                parts.iter().all(|&(o, l)| {
                    let k = &key[o..o + l];
                    &s[o..o + l] <= k && k <= &e[o..o + l]
                })
            }),
        }
    }
}

/// A base chain's attachment.
#[derive(Clone, Debug)]
pub(super) struct BaseInfo {
    pub hook: Hook,
    pub prio: i32,
    pub policy: Policy,
}

/// A compiled rule.
#[derive(Clone, Debug)]
pub(super) struct RuleInfo {
    pub handle: u64,
    pub ops: Box<[Op]>,
    /// The rule's leading conditions, evaluated without the interpreter to
    /// skip rules that cannot match (see [`guard_of`]).
    pub guard: Box<[Cond]>,
}

/// Where a guard condition's value comes from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum Src {
    Meta(MetaKey),
    Payload {
        base: PayloadBase,
        offset: u32,
        len: u8,
    },
    CtState,
}

/// The test of a guard condition.
#[derive(Clone, Debug)]
pub(super) enum Test {
    Cmp { op: CmpOp, data: Data },
    Range { op: CmpOp, from: Data, to: Data },
    Lookup { set: u32, invert: bool },
}

/// One leading `load → [mask/xor] → test` triple of a rule.
#[derive(Clone, Debug)]
pub(super) struct Cond {
    pub src: Src,
    /// The register width the load writes (4 or 16, or the payload length
    /// rounded up to 4).
    pub width: u8,
    pub mask: Option<(Data, Data)>,
    pub test: Test,
}

/// The register width a guardable `meta` load writes, if the key is one the
/// guard evaluates.
fn meta_width(k: MetaKey) -> Option<u8> {
    match k {
        MetaKey::Iifname => Some(16),
        MetaKey::Iif
        | MetaKey::Iiftype
        | MetaKey::L4proto
        | MetaKey::Nfproto
        | MetaKey::Protocol
        | MetaKey::Mark
        | MetaKey::Pkttype => Some(4),
        _ => None,
    }
}

/// How many register bytes a `meta` load writes.
pub(super) fn meta_store_width(k: MetaKey) -> usize {
    match k {
        MetaKey::Iifname
        | MetaKey::Oifname
        | MetaKey::Iifkind
        | MetaKey::Oifkind
        | MetaKey::Sdifname
        | MetaKey::BriIifname
        | MetaKey::BriOifname => 16,
        MetaKey::TimeNs => 8,
        _ => 4,
    }
}

/// The leading conditions of a rule: the longest prefix of
/// `load R; [bitwise R→R;] cmp|range|lookup R` triples whose load is a
/// packet field, a simple meta key or `ct state`. If one of them is false
/// the kernel breaks out of the rule, and (given [`self_contained`] rules)
/// nothing the skipped expressions wrote is ever read.
pub(super) fn guard_of(ops: &[Op], sets: &[SetInfo]) -> Vec<Cond> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        let (src, dreg, width) = match ops.get(i) {
            Some(Op::Meta { key, dreg }) => match meta_width(*key) {
                Some(w) => (Src::Meta(*key), *dreg, w),
                None => break,
            },
            Some(Op::Payload {
                base: base @ (PayloadBase::Network | PayloadBase::Transport),
                offset,
                len,
                dreg,
            }) if *len <= 16 => (
                Src::Payload {
                    base: *base,
                    offset: *offset,
                    len: *len,
                },
                *dreg,
                (*len).div_ceil(4) * 4,
            ),
            Some(Op::Ct {
                key: CtKey::State,
                dreg,
                ..
            }) => (Src::CtState, *dreg, 4),
            _ => break,
        };
        let mut j = i + 1;
        let mask = match ops.get(j) {
            Some(Op::Bitwise {
                sreg,
                dreg: d,
                len,
                kind: BitKind::Bool { mask, xor },
            }) if *sreg == dreg && *d == dreg && (*len).div_ceil(4) * 4 == width => {
                j += 1;
                Some((mask.clone(), xor.clone()))
            }
            _ => None,
        };
        let test = match ops.get(j) {
            Some(Op::Cmp { sreg, op, data }) if *sreg == dreg && data.len() <= width as usize => {
                Test::Cmp {
                    op: *op,
                    data: data.clone(),
                }
            }
            Some(Op::Range { sreg, op, from, to })
                if *sreg == dreg && from.len() <= width as usize =>
            {
                Test::Range {
                    op: *op,
                    from: from.clone(),
                    to: to.clone(),
                }
            }
            Some(Op::Lookup {
                set,
                sreg,
                dst: None,
                invert,
            }) if *sreg == dreg && sets[*set as usize].klen <= width as usize => Test::Lookup {
                set: *set,
                invert: *invert,
            },
            _ => break,
        };
        out.push(Cond {
            src,
            width,
            mask,
            test,
        });
        i = j + 1;
    }
    out
}

/// Whether every register byte the rule reads was written earlier in the
/// same rule (as in every rule `nft` generates). Reads are over-, writes
/// under-approximated.
pub(super) fn self_contained(ops: &[Op], sets: &[SetInfo]) -> bool {
    let mut written = 0u64;
    for op in ops {
        let (reads, writes) = reg_use(op, sets);
        if reads & !written != 0 {
            return false;
        }
        written |= writes;
    }
    true
}

/// The register bytes an expression reads and writes, as bit masks over
/// the 64 bytes of data registers (reads over-, writes under-approximated).
pub(super) fn reg_use(op: &Op, sets: &[SetInfo]) -> (u64, u64) {
    let span = |o: u8, len: usize| -> u64 {
        let len = len.min(64 - o as usize);
        if len == 0 {
            0
        } else {
            (u64::MAX >> (64 - len)) << o
        }
    };
    let round = |n: usize| n.div_ceil(4) * 4;
    match op {
        Op::Payload { len, dreg, .. } => (0, span(*dreg, round(*len as usize))),
        Op::PayloadSet { len, sreg, .. } => (span(*sreg, *len as usize), 0),
        Op::Cmp { sreg, data, .. } => (span(*sreg, data.len()), 0),
        Op::Range { sreg, from, .. } => (span(*sreg, from.len()), 0),
        Op::Bitwise {
            sreg, dreg, len, ..
        } => (
            span(*sreg, round(*len as usize)),
            span(*dreg, round(*len as usize)),
        ),
        Op::Byteorder {
            sreg, dreg, len, ..
        } => (span(*sreg, *len as usize), span(*dreg, *len as usize)),
        Op::Meta { key, dreg } => (0, span(*dreg, meta_store_width(*key))),
        Op::CtSet {
            key: CtKey::Labels,
            sreg,
            ..
        } => (span(*sreg, 16), 0),
        Op::MetaSet { sreg, .. } | Op::CtSet { sreg, .. } => (span(*sreg, 4), 0),
        Op::Ct {
            key: CtKey::Labels,
            dreg,
            ..
        } => (0, span(*dreg, 16)),
        Op::Ct { dreg, .. } => (0, span(*dreg, 4)),
        Op::Lookup { set, sreg, dst, .. } => (
            span(*sreg, sets[*set as usize].klen),
            match dst {
                Some(Dst::Reg(r)) => span(*r, round(sets[*set as usize].dlen)),
                _ => 0,
            },
        ),
        Op::Imm { dreg, data } => (0, span(*dreg, round(data.len()))),
        Op::Nat {
            addr,
            proto,
            family,
            ..
        } => {
            let alen = if *family == 10 { 16 } else { 4 };
            let mut r = 0;
            if let Some((a, b)) = addr.and_then(|a| a.regs()) {
                r |= span(a, alen) | span(b, alen);
            }
            if let Some((a, b)) = proto.and_then(|p| p.regs()) {
                r |= span(a, 2) | span(b, 2);
            }
            (r, 0)
        }
        Op::Redir { proto } => (
            proto
                .and_then(|p| p.regs())
                .map_or(0, |(a, b)| span(a, 2) | span(b, 2)),
            0,
        ),
        Op::Fib { dreg, .. } | Op::Socket { dreg, .. } | Op::Rt { dreg, .. } => (0, span(*dreg, 4)),
        Op::Dynset { set, key, data, .. } => (
            span(*key, sets[*set as usize].klen)
                | data.map_or(0, |d| span(d, sets[*set as usize].dlen)),
            0,
        ),
        Op::ObjMap { set, sreg } => (span(*sreg, sets[*set as usize].klen), 0),
        Op::Exthdr { dreg, .. } => (0, span(*dreg, 4)),
        Op::Opaque { dreg, len, .. } => (0, span(*dreg, *len as usize)),
        Op::Tproxy { addr, port, family } => (
            addr.map_or(0, |a| span(a, if *family == 10 { 16 } else { 4 }))
                | port.map_or(0, |p| span(p, 2)),
            0,
        ),
        _ => (0, 0),
    }
}

/// A compiled chain.
#[derive(Clone, Debug)]
pub(super) struct ChainInfo {
    pub table: u32,
    pub name: String,
    pub rules: Vec<RuleInfo>,
    pub base: Option<BaseInfo>,
    /// Rule indexes by tested field (empty: every rule is a candidate).
    pub index: Box<[Index]>,
}

/// Which rules of a chain can match, by the value of one field that many of
/// them test in their guard.
#[derive(Clone, Debug)]
pub(super) struct Index {
    pub src: Src,
    /// The compared length.
    pub len: u8,
    /// The number of (`src`, `len`, netdev chain or not) among all indexes
    /// of the program (below [`Program::index_srcs`]): chains testing the
    /// same field share the value the probe loads for it.
    pub sid: u32,
    /// The number of this index among all indexes of the program (below
    /// [`Program::indexes`]).
    pub iid: u32,
    /// Rules that do not test the field: candidates whatever its value.
    pub rest: Box<[u64]>,
    pub kind: IndexKind,
}

/// How an index maps a value (an [`index_key`]) to rules.
#[derive(Clone, Debug)]
pub(super) enum IndexKind {
    /// Equality tests: per value, a bitset in `bits` (one flat array)
    /// holding the rules that require it, and `rest`. Which bitset (slot) a
    /// value has is in the program's [`EqValues`] of the index's source:
    /// one lookup answers for every chain.
    Equal { bits: Vec<u64> },
    /// Order tests (ranges, `!=`, `<`, prefixes): segment starts, sorted,
    /// and per segment the rules whose test holds in it, and `rest`.
    Segments { starts: Vec<u128>, bits: Vec<u64> },
}

/// The values the equality indexes of one source look for.
#[derive(Clone, Debug, Default)]
pub(super) struct EqValues {
    /// A value's number.
    pub vid: HashMap<u128, u32, KeyHash>,
    /// For value number `v`, `pairs[at[v]..at[v + 1]]`: the (index, slot)
    /// of every equality index having it, by index number.
    pub at: Vec<u32>,
    pub pairs: Vec<(u32, u32)>,
}

impl EqValues {
    /// The slot of value number `vid` in index `iid`, if it has one.
    pub fn slot(&self, vid: u32, iid: u32) -> Option<u32> {
        let p = &self.pairs[self.at[vid as usize] as usize..self.at[vid as usize + 1] as usize];
        p.binary_search_by_key(&iid, |x| x.0).ok().map(|i| p[i].1)
    }
}

/// An index key: the compared bytes (at most 16) as a big-endian number,
/// left-aligned, zero after them. Among keys of one length, number order is
/// byte-string order, and comparing or hashing one costs what an integer
/// does (probes look keys up hundreds of thousands of times).
pub(super) fn index_key(b: &[u8]) -> u128 {
    // The usual lengths are one load; a variable-length copy into an array
    // would be a memcpy call.
    match *b {
        [a] => u128::from(a) << 120,
        [a, b] => u128::from(u16::from_be_bytes([a, b])) << 112,
        [a, b, c, d] => u128::from(u32::from_be_bytes([a, b, c, d])) << 96,
        _ => match <[u8; 16]>::try_from(b) {
            Ok(a) => u128::from_be_bytes(a),
            Err(_) => {
                let mut a = [0u8; 16];
                let n = b.len().min(16);
                a[..n].copy_from_slice(&b[..n]);
                u128::from_be_bytes(a)
            }
        },
    }
}

/// Hashes index keys with a multiply-and-fold (keys come from the
/// ruleset, not from an adversary; SipHash cost more than the lookup).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct KeyHash;

impl std::hash::BuildHasher for KeyHash {
    type Hasher = KeyHasher;
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(0)
    }
}

/// The hasher of [`KeyHash`].
pub(super) struct KeyHasher(u64);

impl KeyHasher {
    fn mix(&mut self, v: u64) {
        // Folded 64x64→128 multiply: every input bit reaches the low bits
        // (the table index) and the high bits (the control bytes).
        const K: u64 = 0x9e37_79b9_7f4a_7c15;
        let m = u128::from(self.0 ^ v) * u128::from(K);
        self.0 = (m as u64) ^ ((m >> 64) as u64);
    }
}

impl std::hash::Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut a = [0u8; 8];
            a[..c.len()].copy_from_slice(c);
            self.mix(u64::from_le_bytes(a));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.mix(v);
    }
    fn write_u128(&mut self, v: u128) {
        self.mix((v >> 64) as u64);
        self.mix(v as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Words of a bitset of `n` rules.
pub(super) fn words(n: usize) -> usize {
    n.div_ceil(64)
}

/// Fields an index may use: fixed for the whole probe, or changed only by
/// packet rewrites (which invalidate the index's answers).
fn indexable(src: &Src) -> bool {
    match src {
        Src::Meta(k) => !matches!(k, MetaKey::Mark | MetaKey::Pkttype),
        Src::Payload { .. } => true,
        Src::CtState => false,
    }
}

/// `b + 1` / `b - 1` on a big-endian byte string, `None` on overflow.
fn step(b: &[u8], up: bool) -> Option<Data> {
    let mut v = data(b);
    for x in v.iter_mut().rev() {
        let (n, carry) = if up {
            x.overflowing_add(1)
        } else {
            x.overflowing_sub(1)
        };
        *x = n;
        if !carry {
            return Some(v);
        }
    }
    None
}

/// The value intervals (inclusive, over `len` bytes) where an order test
/// holds, or `None` for tests the segment index does not take.
fn intervals(c: &Cond, sets: &[SetInfo]) -> Option<(u8, Vec<(Data, Data)>)> {
    /// Largest set whose elements become index intervals.
    const MAX_SET: usize = 256;
    let full = |n: usize, b: u8| -> Data { SmallVec::from_elem(b, n) };
    let below = |d: &Data| step(d, false).map(|m| (full(d.len(), 0), m));
    let above = |d: &Data| step(d, true).map(|m| (m, full(d.len(), 0xff)));
    let (len, iv): (usize, Vec<(Data, Data)>) = match (&c.mask, &c.test) {
        (None, Test::Range { op, from, to }) => (
            from.len(),
            match op {
                CmpOp::Eq => vec![(from.clone(), to.clone())],
                CmpOp::Neq => below(from).into_iter().chain(above(to)).collect(),
                _ => return None,
            },
        ),
        (None, Test::Lookup { set, invert }) => {
            let s = &sets[*set as usize];
            if s.n > MAX_SET
                || s.dynamic
                || s.catchall.is_some()
                || matches!(s.kind, SetKind::Concat(_))
            {
                return None;
            }
            let inside: Vec<(Data, Data)> = (0..s.n)
                .map(|i| (data(s.start(i)), data(s.end(i))))
                .collect();
            if !invert {
                (s.klen, inside)
            } else {
                // The gaps between the (sorted, disjoint) elements.
                let mut out = Vec::new();
                let mut from = Some(SmallVec::from_elem(0, s.klen));
                for (lo, hi) in &inside {
                    if let (Some(f), Some(b)) = (&from, step(lo, false)) {
                        if f <= &b {
                            out.push((f.clone(), b));
                        }
                    }
                    from = step(hi, true);
                }
                if let Some(f) = from {
                    out.push((f, SmallVec::from_elem(0xff, s.klen)));
                }
                (s.klen, out)
            }
        }
        (None, Test::Cmp { op, data: d }) => (
            d.len(),
            match op {
                CmpOp::Eq => return None,
                CmpOp::Neq => below(d).into_iter().chain(above(d)).collect(),
                CmpOp::Lt => below(d).into_iter().collect(),
                CmpOp::Lte => vec![(full(d.len(), 0), d.clone())],
                CmpOp::Gt => above(d).into_iter().collect(),
                CmpOp::Gte => vec![(d.clone(), full(d.len(), 0xff))],
            },
        ),
        (
            Some((mask, xor)),
            Test::Cmp {
                op: CmpOp::Eq,
                data: d,
            },
        ) => {
            let n = d.len();
            let m: Data = (0..n).map(|i| mask.get(i).copied().unwrap_or(0)).collect();
            let prefix = m
                .iter()
                .flat_map(|b| (0..8).rev().map(move |i| b >> i & 1))
                .collect::<Vec<_>>();
            let is_prefix = prefix.windows(2).all(|w| w[0] >= w[1]);
            if !is_prefix || xor.iter().any(|x| *x != 0) {
                return None;
            }
            if d.iter().zip(&m).any(|(d, m)| d & !m != 0) {
                (n, Vec::new())
            } else {
                (
                    n,
                    vec![(d.clone(), d.iter().zip(&m).map(|(d, m)| d | !m).collect())],
                )
            }
        }
        _ => return None,
    };
    Some((len as u8, iv))
}

/// Adds the rules that do not test the field to every bitset of an index:
/// a probe then reads one array per index, not two.
fn with_rest(bits: &mut [u64], rest: &[u64]) {
    for b in bits.chunks_mut(rest.len()) {
        for (b, r) in b.iter_mut().zip(rest) {
            *b |= r;
        }
    }
}

/// Builds the indexes of a chain from its rules' guards, with the value of
/// each slot of the equality indexes.
fn build_index(rules: &[RuleInfo], sets: &[SetInfo]) -> Vec<(Index, Vec<u128>)> {
    const MIN_RULES: usize = 8;
    /// Most words one segment index may hold (8 MiB).
    const MAX_WORDS: usize = 1 << 20;
    let n = rules.len();
    if n < MIN_RULES {
        return Vec::new();
    }
    type Iv = Vec<(Data, Data)>;
    let mut eq: HashMap<(Src, u8), Vec<(usize, &Data)>> = HashMap::new();
    let mut ord: HashMap<(Src, u8), Vec<(usize, Iv)>> = HashMap::new();
    for (i, r) in rules.iter().enumerate() {
        for c in r.guard.iter() {
            if !indexable(&c.src) {
                continue;
            }
            if let (
                None,
                Test::Cmp {
                    op: CmpOp::Eq,
                    data,
                },
            ) = (&c.mask, &c.test)
            {
                eq.entry((c.src.clone(), data.len() as u8))
                    .or_default()
                    .push((i, data));
            } else if let Some((len, iv)) = intervals(c, sets) {
                ord.entry((c.src.clone(), len)).or_default().push((i, iv));
            }
        }
    }
    let w = words(n);
    let clear = |rest: &mut [u64], i: usize| rest[i / 64] &= !(1 << (i % 64));
    let mut out: Vec<(usize, Index, Vec<u128>)> = Vec::new();
    for ((src, len), v) in eq {
        if v.len() < MIN_RULES / 2 {
            continue;
        }
        let mut rest = vec![!0u64; w];
        let mut slot: HashMap<u128, usize, KeyHash> = HashMap::default();
        let mut values = Vec::new();
        let mut bits: Vec<u64> = Vec::new();
        for (i, d) in v {
            clear(&mut rest, i);
            let key = index_key(d);
            let s = *slot.entry(key).or_insert_with(|| {
                bits.resize(bits.len() + w, 0);
                values.push(key);
                values.len() - 1
            });
            bits[s * w + i / 64] |= 1 << (i % 64);
        }
        with_rest(&mut bits, &rest);
        bits.shrink_to_fit();
        out.push((
            values.len(),
            Index {
                src,
                len,
                sid: 0,
                iid: 0,
                rest: rest.into(),
                kind: IndexKind::Equal { bits },
            },
            values,
        ));
    }
    for ((src, len), v) in ord {
        if v.len() < MIN_RULES / 2 {
            continue;
        }
        let mut starts: Vec<Data> = vec![SmallVec::from_elem(0, len as usize)];
        for (_, iv) in &v {
            for (lo, hi) in iv {
                starts.push(lo.clone());
                if let Some(h) = step(hi, true) {
                    starts.push(h);
                }
            }
        }
        starts.sort();
        starts.dedup();
        if starts.len() * w > MAX_WORDS {
            continue;
        }
        let mut bits = vec![0u64; starts.len() * w];
        let mut rest = vec![!0u64; w];
        for (i, iv) in &v {
            clear(&mut rest, *i);
            for (lo, hi) in iv {
                let a = starts.partition_point(|s| s <= lo) - 1;
                let b = starts.partition_point(|s| s <= hi) - 1;
                for seg in a..=b {
                    bits[seg * w + i / 64] |= 1 << (i % 64);
                }
            }
        }
        with_rest(&mut bits, &rest);
        out.push((
            starts.len(),
            Index {
                src,
                len,
                sid: 0,
                iid: 0,
                rest: rest.into(),
                kind: IndexKind::Segments {
                    starts: starts.iter().map(|s| index_key(s)).collect(),
                    bits,
                },
            },
            Vec::new(),
        ));
    }
    // Most selective first, for a stable order.
    out.sort_by_key(|(k, _, _)| std::cmp::Reverse(*k));
    out.into_iter().map(|(_, ix, v)| (ix, v)).collect()
}

/// A table's identity.
#[derive(Clone, Debug)]
pub(super) struct TableInfo {
    pub family: Family,
    pub name: String,
}

/// One step of the path through the hooks.
#[derive(Clone, Debug)]
pub(super) enum Entry {
    /// A base chain; `devices` restricts ingress chains to their devices.
    Chain {
        chain: u32,
        devices: Option<Box<[String]>>,
    },
    /// Conntrack (`nf_conntrack_in`, prerouting -200).
    Conntrack,
    /// The NAT hook: every `nat` chain of the hook, in order.
    NatGroup { hook: Hook, chains: Box<[u32]> },
    /// The routing decision between prerouting and input.
    Route,
    /// A step of the output path (`super::output`).
    Out(super::output::Step),
}

/// The compiled ruleset.
#[derive(Clone, Debug, Default)]
pub(super) struct Program {
    pub tables: Vec<TableInfo>,
    pub chains: Vec<ChainInfo>,
    pub sets: Vec<SetInfo>,
    /// The path for IPv4 (0) and IPv6 (1) packets.
    pub paths: [super::order::Path; 2],
    /// Whether rule guards may skip rules (every rule is self-contained).
    pub guards: bool,
    /// How many distinct index sources ([`Index::sid`]) there are.
    pub index_srcs: u32,
    /// Per index source: the values its equality indexes look for.
    pub eq_values: Vec<EqValues>,
    /// How many indexes ([`Index::iid`]) there are.
    pub indexes: u32,
    /// This program's identity, for what evaluation remembers between
    /// probes. Changing the chains' indexes after a probe needs a new one.
    pub id: ProgId,
    /// Where legacy iptables tables that could not be evaluated (not read,
    /// or of a name without known priorities) could decide: answers
    /// passing them are unknown. The others are compiled as chains.
    pub legacy: Vec<crate::snapshot::legacy::LegacyPoint>,
    /// Why legacy tables could not be listed (answers assume none).
    pub legacy_unlisted: Vec<crate::snapshot::legacy::LegacyUnlisted>,
    /// The moment time matches are evaluated at (`None`: the time is
    /// unknown, they fork).
    pub now: Option<super::Clock>,
    /// Per chain: nothing it does can change a verdict but its credit
    /// ([`super::order::inert_chains`]).
    pub inert: Vec<bool>,
}

impl Program {
    /// Whether a rule reads the time (`meta hour`/`day`/`time`, xt `time`).
    pub fn reads_time(&self) -> bool {
        self.chains.iter().flat_map(|c| c.rules.iter()).any(|r| {
            r.ops.iter().any(|op| match op {
                Op::Meta { key, .. } => {
                    matches!(key, MetaKey::TimeNs | MetaKey::TimeDay | MetaKey::TimeHour)
                }
                Op::Xt { info, .. } => matches!(**info, XtInfo::Time { .. }),
                _ => false,
            })
        })
    }
}

/// A number no other [`Program`] has, not even a clone (a clone may be
/// changed independently).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct ProgId(pub u64);

impl Default for ProgId {
    fn default() -> ProgId {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        ProgId(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    }
}

impl Clone for ProgId {
    fn clone(&self) -> ProgId {
        ProgId::default()
    }
}

/// A register's byte offset when `len` bytes fit from it.
fn reg(r: Reg, len: usize) -> Option<u8> {
    let o = r.offset()?;
    (o + len <= 64).then_some(o as u8)
}

fn data(b: &[u8]) -> Data {
    SmallVec::from_slice(b)
}

struct Ctx<'a> {
    table: u32,
    t: &'a Table,
    chain_ids: &'a HashMap<(u32, &'a str), u32>,
    set_ids: &'a HashMap<(u32, &'a str), u32>,
    set_dlen: &'a [usize],
    set_klen: &'a [usize],
}

impl Ctx<'_> {
    fn verdict(&self, v: &NftVerdict) -> CVerdict {
        let chain = |n: &str| self.chain_ids.get(&(self.table, n)).copied();
        match v {
            NftVerdict::Accept => CVerdict::Accept,
            NftVerdict::Drop => CVerdict::Drop,
            NftVerdict::Continue => CVerdict::Continue,
            NftVerdict::Return => CVerdict::Return,
            NftVerdict::Break => CVerdict::Break,
            NftVerdict::Queue(n) => CVerdict::Queue {
                num: *n,
                total: 1,
                bypass: false,
            },
            NftVerdict::Stolen => CVerdict::Stolen,
            NftVerdict::Jump(c) => chain(c).map_or(CVerdict::Missing, CVerdict::Jump),
            NftVerdict::Goto(c) => chain(c).map_or(CVerdict::Missing, CVerdict::Goto),
        }
    }

    fn object(&self, name: &str) -> Obj {
        let Some(o) = self.t.objects.iter().find(|o| o.name == name) else {
            return Obj::Unknown(format!("object {name:?} not in the table").into());
        };
        match &o.kind {
            ObjectKind::Counter { .. } => Obj::Nop,
            ObjectKind::Quota {
                bytes,
                consumed,
                flags,
            } => Obj::Quota {
                name: name.into(),
                bytes: *bytes,
                consumed: *consumed,
                invert: flags & 1 != 0,
            },
            ObjectKind::Limit { flags, .. } => Obj::Limit {
                invert: flags & 1 != 0,
            },
            // ct helper, tunnel, ct timeout, secmark, ct expectation: no
            // effect on whether the packet passes.
            ObjectKind::Other { object_type } if [3, 6, 7, 8, 9].contains(object_type) => Obj::Nop,
            ObjectKind::Other { object_type } => Obj::Unknown(
                format!("stateful object {name:?} of type {object_type} is not modelled").into(),
            ),
        }
    }

    fn unknown(e: &Expr, why: &str, kind: Opacity) -> Op {
        Op::Unknown {
            what: format!("{} ({why})", describe(e)).into(),
            kind,
        }
    }

    /// An xt NAT target as the nft statement it stands for: the same
    /// [`Op::Nat`] / [`Op::Redir`], with its ranges given.
    fn xt_nat(&self, info: &XtInfo) -> Op {
        use crate::snapshot::xt::XtNatKind;
        let XtInfo::Nat {
            target: kind,
            flags,
            addr,
            ports,
            ..
        } = info
        else {
            return Op::Unknown {
                what: "an xt target that is not NAT".into(),
                kind: Opacity::Any,
            };
        };
        let proto = ports.map(|[a, b]| NatArg::Given(a, b));
        match kind {
            XtNatKind::Dnat | XtNatKind::Snat => Op::Nat {
                snat: *kind == XtNatKind::Snat,
                family: match self.t.family {
                    Family::Ip6 => 10,
                    Family::Ip => 2,
                    _ => match addr {
                        Some([IpAddr::V6(_), _]) => 10,
                        _ => 2,
                    },
                },
                addr: addr.map(|[a, b]| NatArg::Given(a, b)),
                proto,
                flags: *flags,
            },
            XtNatKind::Masquerade => Op::Nat {
                snat: true,
                family: 1,
                addr: None,
                proto,
                flags: *flags | NAT_MASQUERADE,
            },
            XtNatKind::Redirect => Op::Redir { proto },
        }
    }

    fn op(&self, e: &Expr) -> Op {
        let bad_reg = || Self::unknown(e, "register out of range", Opacity::Any);
        match e {
            Expr::Payload {
                base,
                offset,
                len,
                dreg,
            } => match reg(*dreg, *len as usize) {
                Some(d) if *len <= 64 => Op::Payload {
                    base: *base,
                    offset: *offset,
                    len: *len as u8,
                    dreg: d,
                },
                _ => bad_reg(),
            },
            Expr::PayloadSet {
                base,
                offset,
                len,
                sreg,
            } => match reg(*sreg, *len as usize) {
                Some(s) => Op::PayloadSet {
                    base: *base,
                    offset: *offset,
                    len: *len as u8,
                    sreg: s,
                },
                None => bad_reg(),
            },
            Expr::Cmp { sreg, op, data: d } => match reg(*sreg, d.0.len()) {
                Some(s) => Op::Cmp {
                    sreg: s,
                    op: *op,
                    data: data(d.as_slice()),
                },
                None => bad_reg(),
            },
            Expr::Range { sreg, op, from, to } => match reg(*sreg, from.0.len()) {
                Some(s) if from.0.len() == to.0.len() => Op::Range {
                    sreg: s,
                    op: *op,
                    from: data(from.as_slice()),
                    to: data(to.as_slice()),
                },
                _ => bad_reg(),
            },
            Expr::Bitwise {
                sreg,
                dreg,
                len,
                op,
                mask,
                xor,
                data: d,
            } => {
                let n = *len as usize;
                let (Some(s), Some(dr)) = (reg(*sreg, n), reg(*dreg, n)) else {
                    return bad_reg();
                };
                let shift = || {
                    d.as_ref()
                        .and_then(|b| b.as_slice().get(..4))
                        .map(|b| u32::from_ne_bytes(b.try_into().expect("4 bytes")))
                };
                let kind = match op {
                    BitwiseOp::Bool => BitKind::Bool {
                        mask: mask.as_ref().map_or_else(Data::new, |m| data(m.as_slice())),
                        xor: xor.as_ref().map_or_else(Data::new, |m| data(m.as_slice())),
                    },
                    BitwiseOp::Lshift => match shift() {
                        Some(k) if k < 32 => BitKind::Shl(k),
                        _ => return Self::unknown(e, "bad shift", Opacity::Any),
                    },
                    BitwiseOp::Rshift => match shift() {
                        Some(k) if k < 32 => BitKind::Shr(k),
                        _ => return Self::unknown(e, "bad shift", Opacity::Any),
                    },
                };
                Op::Bitwise {
                    sreg: s,
                    dreg: dr,
                    len: n as u8,
                    kind,
                }
            }
            Expr::Byteorder {
                sreg,
                dreg,
                len,
                size,
                ..
            } => {
                let n = *len as usize;
                match (reg(*sreg, n), reg(*dreg, n)) {
                    (Some(s), Some(d)) if matches!(size, 2 | 4 | 8) => Op::Byteorder {
                        sreg: s,
                        dreg: d,
                        len: n as u8,
                        size: *size as u8,
                    },
                    _ => bad_reg(),
                }
            }
            Expr::Meta { key, dreg } => match reg(*dreg, 4) {
                Some(d) => Op::Meta { key: *key, dreg: d },
                None => bad_reg(),
            },
            Expr::MetaSet { key, sreg } => match reg(*sreg, 4) {
                Some(s) => Op::MetaSet { key: *key, sreg: s },
                None => bad_reg(),
            },
            Expr::Ct { key, dir, dreg } => match reg(*dreg, 4) {
                Some(d) => Op::Ct {
                    key: *key,
                    dir: *dir,
                    dreg: d,
                },
                None => bad_reg(),
            },
            Expr::CtSet { key, dir, sreg } => {
                match reg(*sreg, if *key == CtKey::Labels { 16 } else { 4 }) {
                    Some(s) => Op::CtSet {
                        key: *key,
                        dir: *dir,
                        sreg: s,
                    },
                    None => bad_reg(),
                }
            }
            Expr::Lookup {
                set,
                sreg,
                dreg,
                invert,
            } => {
                let Some(&id) = self.set_ids.get(&(self.table, set.as_str())) else {
                    return Self::unknown(e, "set not found in the table", Opacity::Any);
                };
                let Some(s) = reg(*sreg, self.set_klen[id as usize]) else {
                    return bad_reg();
                };
                let dst = match dreg {
                    None => None,
                    Some(Reg(0)) => Some(Dst::Verdict),
                    Some(r) => match reg(*r, self.set_dlen[id as usize]) {
                        Some(d) => Some(Dst::Reg(d)),
                        None => return bad_reg(),
                    },
                };
                Op::Lookup {
                    set: id,
                    sreg: s,
                    dst,
                    invert: *invert,
                }
            }
            Expr::Immediate {
                dreg,
                verdict,
                data: d,
            } => match (dreg, verdict, d) {
                (Reg(0), Some(v), _) => Op::Verdict(self.verdict(v)),
                (r, None, Some(b)) => match reg(*r, b.0.len()) {
                    Some(o) => Op::Imm {
                        dreg: o,
                        data: data(b.as_slice()),
                    },
                    None => bad_reg(),
                },
                _ => Self::unknown(e, "neither verdict nor data", Opacity::Any),
            },
            Expr::Counter { .. } | Expr::Log { .. } | Expr::Last | Expr::FlowOffload { .. } => {
                Op::Nop
            }
            Expr::Limit { invert, .. } => Op::Limit { invert: *invert },
            Expr::Quota {
                bytes,
                consumed,
                invert,
            } => Op::Quota {
                bytes: *bytes,
                consumed: *consumed,
                invert: *invert,
            },
            Expr::Connlimit { count, flags } => Op::Connlimit {
                count: *count,
                invert: flags & 1 != 0,
            },
            Expr::Reject { kind, code } => Op::Reject {
                kind: *kind,
                code: *code,
            },
            Expr::Nat {
                kind,
                family,
                reg_addr_min,
                reg_addr_max,
                reg_proto_min,
                reg_proto_max,
                flags,
            } => {
                let alen = if *family == 10 { 16 } else { 4 };
                fn pair<T>(
                    a: &Option<Reg>,
                    b: &Option<Reg>,
                    len: usize,
                ) -> Result<Option<NatArg<T>>, ()> {
                    Ok(match a {
                        None => None,
                        Some(a) => {
                            let lo = reg(*a, len).ok_or(())?;
                            let hi = match b {
                                Some(b) => reg(*b, len).ok_or(())?,
                                None => lo,
                            };
                            Some(NatArg::Regs(lo, hi))
                        }
                    })
                }
                match (
                    pair(reg_addr_min, reg_addr_max, alen),
                    pair(reg_proto_min, reg_proto_max, 2),
                ) {
                    (Ok(addr), Ok(proto)) => Op::Nat {
                        snat: *kind == NatKind::Snat,
                        family: *family as u8,
                        addr,
                        proto,
                        flags: *flags,
                    },
                    _ => bad_reg(),
                }
            }
            Expr::Masq {
                flags,
                reg_proto_min,
                reg_proto_max,
            } => {
                // A source NAT to the output device's address (postrouting
                // only): `Op::Nat` marked with `NAT_MASQUERADE`.
                let proto = match reg_proto_min {
                    None => None,
                    Some(r) => {
                        let (Some(lo), hi) = (reg(*r, 2), reg_proto_max.map(|m| reg(m, 2))) else {
                            return bad_reg();
                        };
                        Some(NatArg::Regs(lo, hi.flatten().unwrap_or(lo)))
                    }
                };
                Op::Nat {
                    snat: true,
                    family: 1,
                    addr: None,
                    proto,
                    flags: *flags | NAT_MASQUERADE,
                }
            }
            Expr::Redir {
                reg_proto_min,
                reg_proto_max,
                ..
            } => {
                let proto = match reg_proto_min {
                    None => None,
                    Some(r) => {
                        let (Some(lo), hi) = (reg(*r, 2), reg_proto_max.map(|m| reg(m, 2))) else {
                            return bad_reg();
                        };
                        Some(NatArg::Regs(lo, hi.flatten().unwrap_or(lo)))
                    }
                };
                Op::Redir { proto }
            }
            Expr::Fib {
                flags,
                result,
                dreg,
            } => match reg(*dreg, if *result == 2 { 16 } else { 4 }) {
                Some(d) => Op::Fib {
                    flags: *flags,
                    result: *result,
                    dreg: d,
                },
                None => bad_reg(),
            },
            Expr::Dynset {
                set,
                op,
                sreg_key,
                sreg_data,
                exprs,
                flags,
                ..
            } => {
                let Some(&id) = self.set_ids.get(&(self.table, set.as_str())) else {
                    return Self::unknown(e, "set not found in the table", Opacity::Any);
                };
                let Some(k) = reg(*sreg_key, self.set_klen[id as usize]) else {
                    return bad_reg();
                };
                let d = match sreg_data {
                    None => None,
                    Some(r) => match reg(*r, self.set_dlen[id as usize]) {
                        Some(d) => Some(d),
                        None => return bad_reg(),
                    },
                };
                let sub: Vec<Op> = exprs.iter().map(|x| self.op(x)).collect();
                let opaque = sub.iter().any(|o| {
                    !matches!(
                        o,
                        Op::Nop | Op::Limit { .. } | Op::Quota { .. } | Op::Connlimit { .. }
                    )
                });
                Op::Dynset {
                    set: id,
                    op: *op,
                    key: k,
                    data: d,
                    exprs: sub.into(),
                    invert: flags & 1 != 0,
                    opaque,
                }
            }
            Expr::Objref {
                name, set, sreg, ..
            } => match (name, set, sreg) {
                (Some(n), _, _) => Op::Obj(self.object(n)),
                (None, Some(s), Some(r)) => {
                    let Some(&id) = self.set_ids.get(&(self.table, s.as_str())) else {
                        return Self::unknown(e, "map not found in the table", Opacity::Any);
                    };
                    match reg(*r, self.set_klen[id as usize]) {
                        Some(o) => Op::ObjMap { set: id, sreg: o },
                        None => bad_reg(),
                    }
                }
                _ => Self::unknown(e, "no object or map", Opacity::Any),
            },
            Expr::Socket { key, dreg, .. } => match reg(*dreg, 4) {
                Some(d) => Op::Socket { key: *key, dreg: d },
                None => bad_reg(),
            },
            Expr::Exthdr {
                op,
                kind,
                offset,
                len,
                flags,
                dreg,
            } => match dreg {
                // Writing an option (`tcp option maxseg size set ...`):
                // changes what later loads of it see, nothing else.
                None => Op::Nop,
                Some(r) => match reg(*r, (*len as usize).max(4)) {
                    Some(d) if *len <= 16 => Op::Exthdr {
                        op: *op,
                        kind: *kind,
                        offset: *offset,
                        len: *len as u8,
                        present: flags & 1 != 0,
                        dreg: d,
                    },
                    _ => bad_reg(),
                },
            },
            Expr::Notrack => Op::Notrack,
            Expr::Rt { key, dreg } => match reg(*dreg, 4) {
                Some(d) => Op::Rt { key: *key, dreg: d },
                None => bad_reg(),
            },
            // NFT_QUEUE_FLAG_BYPASS 1, NFT_QUEUE_FLAG_CPU_FANOUT 2.
            Expr::Queue { num, total, flags } => Op::Verdict(CVerdict::Queue {
                num: *num,
                total: (*total).max(1),
                bypass: flags & 1 != 0,
            }),
            Expr::Numgen { dreg, .. } => match reg(*dreg, 4) {
                Some(d) => Op::Opaque {
                    dreg: d,
                    len: 4,
                    origin: super::exec::ORIGIN_RANDOM,
                },
                None => bad_reg(),
            },
            Expr::Hash { dreg, .. } => match reg(*dreg, 4) {
                Some(d) => Op::Opaque {
                    dreg: d,
                    len: 4,
                    origin: super::exec::ORIGIN_HASH,
                },
                None => bad_reg(),
            },
            Expr::Tproxy {
                family,
                reg_addr,
                reg_port,
            } => {
                let alen = if *family == 10 { 16 } else { 4 };
                let a = reg_addr.map(|r| reg(r, alen));
                let p = reg_port.map(|r| reg(r, 2));
                if a == Some(None) || p == Some(None) {
                    return bad_reg();
                }
                Op::Tproxy {
                    family: *family,
                    addr: a.flatten(),
                    port: p.flatten(),
                }
            }
            Expr::Match { info, name, .. } => match &**info {
                XtInfo::Raw { .. } if matches!(name.as_str(), "rt" | "frag" | "hbh" | "dst") => {
                    Op::Ip6ExtMatch {
                        what: describe(e).into(),
                    }
                }
                XtInfo::Raw { .. } => Self::unknown(e, "not understood", Opacity::Match),
                XtInfo::Conntrack { match_flags, .. } if match_flags & !0x2043 != 0 => {
                    Self::unknown(
                        e,
                        "conntrack address, port, direction or expiry options not decoded",
                        Opacity::Match,
                    )
                }
                XtInfo::Tcp { .. }
                | XtInfo::Udp { .. }
                | XtInfo::Multiport { .. }
                | XtInfo::Conntrack { .. }
                | XtInfo::State { .. }
                | XtInfo::Iprange { .. }
                | XtInfo::Comment { .. }
                | XtInfo::Recent { .. }
                | XtInfo::Limit { .. }
                | XtInfo::Icmp { .. }
                | XtInfo::Mark { .. }
                | XtInfo::Addrtype { .. }
                | XtInfo::Hl { .. }
                | XtInfo::Ipv6Rt { .. }
                | XtInfo::Statistic { .. }
                | XtInfo::Length { .. }
                | XtInfo::Tcpmss { .. }
                | XtInfo::String { .. }
                | XtInfo::Ecn { .. }
                | XtInfo::Socket { .. }
                | XtInfo::Devgroup { .. }
                | XtInfo::Mac { .. }
                | XtInfo::Rpfilter { .. }
                | XtInfo::Helper { .. }
                | XtInfo::Time { .. } => Op::Xt {
                    target: false,
                    info: info.clone(),
                },
                _ => Self::unknown(e, "not a match", Opacity::Match),
            },
            Expr::Target { info, .. } => match &**info {
                XtInfo::Reject { .. } | XtInfo::Log { .. } | XtInfo::MarkSet { .. } => Op::Xt {
                    target: true,
                    info: info.clone(),
                },
                XtInfo::Nat { .. } => self.xt_nat(info),
                XtInfo::Queue {
                    num, total, bypass, ..
                } => Op::Verdict(CVerdict::Queue {
                    num: *num,
                    total: (*total).max(1),
                    bypass: *bypass,
                }),
                _ => Self::unknown(e, "not understood", Opacity::Any),
            },
            Expr::Unknown { .. } => Self::unknown(e, "not decoded", Opacity::Any),
        }
    }
}

/// The key length of a set: from its elements when it has any, else from
/// its type (components padded to 4 bytes in a concatenation).
fn key_len(s: &crate::snapshot::Set) -> usize {
    if let Some(e) = s.elements.iter().find(|e| !e.key.as_slice().is_empty()) {
        return e.key.as_slice().len();
    }
    match s.key.0.as_slice() {
        [one] => one.len as usize,
        many => many.iter().map(|d| (d.len as usize).div_ceil(4) * 4).sum(),
    }
}

fn data_len(s: &crate::snapshot::Set) -> usize {
    match &s.data {
        None => 0,
        Some(k) if k.0.first().map(|d| d.id) == Some(crate::snapshot::value::VERDICT) => 0,
        Some(k) => {
            if let Some(ElemData::Value(v)) = s.elements.iter().find_map(|e| e.data.as_deref()) {
                return v.0.len();
            }
            match k.0.as_slice() {
                [one] => one.len as usize,
                many => many.iter().map(|d| (d.len as usize).div_ceil(4) * 4).sum(),
            }
        }
    }
}

impl Program {
    /// Installs each chain's indexes, numbering them and their sources, and
    /// gathers the values of the equality indexes by source.
    fn number_indexes(&mut self, built: Vec<Vec<(Index, Vec<u128>)>>) {
        let mut sids: HashMap<(Src, u8, bool), u32> = HashMap::new();
        // Per source: value -> (index, slot) pairs, in index order.
        type Pairs = HashMap<u128, Vec<(u32, u32)>, KeyHash>;
        let mut by_value: Vec<Pairs> = Vec::new();
        for (c, ixs) in self.chains.iter_mut().zip(built) {
            // `meta nfproto` reads differently in netdev chains.
            let netdev = self.tables[c.table as usize].family == Family::Netdev;
            let mut out = Vec::with_capacity(ixs.len());
            for (mut ix, values) in ixs {
                let nd = netdev && ix.src == Src::Meta(MetaKey::Nfproto);
                let n = sids.len() as u32;
                ix.sid = *sids.entry((ix.src.clone(), ix.len, nd)).or_insert(n);
                ix.iid = self.indexes;
                self.indexes += 1;
                if by_value.len() <= ix.sid as usize {
                    by_value.push(HashMap::default());
                }
                for (slot, v) in values.into_iter().enumerate() {
                    by_value[ix.sid as usize]
                        .entry(v)
                        .or_default()
                        .push((ix.iid, slot as u32));
                }
                out.push(ix);
            }
            c.index = out.into();
        }
        self.index_srcs = sids.len() as u32;
        self.eq_values = by_value
            .into_iter()
            .map(|m| {
                let mut e = EqValues {
                    vid: HashMap::with_capacity_and_hasher(m.len(), KeyHash),
                    at: vec![0],
                    pairs: Vec::new(),
                };
                for (v, pairs) in m {
                    e.vid.insert(v, e.at.len() as u32 - 1);
                    e.pairs.extend(pairs);
                    e.at.push(e.pairs.len() as u32);
                }
                e
            })
            .collect();
    }

    pub fn new(snap: &Snapshot) -> Program {
        // The legacy iptables tables, as chains of this model, after the
        // nf_tables ones.
        let legacy: Vec<Table> = snap.legacy.iter().filter_map(|t| t.to_table()).collect();
        let all: Vec<&Table> = snap.tables.iter().chain(&legacy).collect();
        let mut prog = Program {
            legacy: snap.legacy.iter().flat_map(|t| t.deciding()).collect(),
            legacy_unlisted: snap.legacy_unlisted.clone(),
            ..Program::default()
        };
        let mut chain_ids: HashMap<(u32, &str), u32> = HashMap::new();
        let mut set_ids: HashMap<(u32, &str), u32> = HashMap::new();
        let mut set_klen = Vec::new();
        let mut set_dlen = Vec::new();
        // First pass: number tables, chains and sets.
        for (ti, t) in all.iter().enumerate() {
            prog.tables.push(TableInfo {
                family: t.family,
                name: t.name.clone(),
            });
            for c in &t.chains {
                chain_ids.insert((ti as u32, c.name.as_str()), prog.chains.len() as u32);
                prog.chains.push(ChainInfo {
                    table: ti as u32,
                    name: c.name.clone(),
                    rules: Vec::new(),
                    index: Box::new([]),
                    base: c.base.as_ref().map(|b| BaseInfo {
                        hook: b.hook,
                        prio: b.priority,
                        policy: b.policy,
                    }),
                });
            }
            for s in &t.sets {
                set_ids.insert((ti as u32, s.name.as_str()), set_klen.len() as u32);
                set_klen.push(key_len(s));
                set_dlen.push(data_len(s));
            }
        }
        // Second pass: compile sets and rules, each on its own (a big set,
        // thousands of rules: shared out between the cores).
        let ctxs: Vec<Ctx<'_>> = all
            .iter()
            .enumerate()
            .map(|(ti, &t)| Ctx {
                table: ti as u32,
                t,
                chain_ids: &chain_ids,
                set_ids: &set_ids,
                set_dlen: &set_dlen,
                set_klen: &set_klen,
            })
            .collect();
        // In numbering order (tables, then their sets or chains).
        let sets: Vec<(&Ctx<'_>, &crate::snapshot::Set)> = ctxs
            .iter()
            .flat_map(|c| c.t.sets.iter().map(move |s| (c, s)))
            .collect();
        let chains: Vec<(&Ctx<'_>, &crate::snapshot::Chain)> = ctxs
            .iter()
            .flat_map(|c| c.t.chains.iter().map(move |ch| (c, ch)))
            .collect();
        let (compiled_sets, rules): (Vec<SetInfo>, Vec<Vec<RuleInfo>>) = rayon::join(
            || {
                sets.par_iter()
                    .enumerate()
                    .map(|(id, (ctx, s))| compile_set(ctx, s, set_klen[id], set_dlen[id]))
                    .collect()
            },
            || {
                chains
                    .par_iter()
                    .map(|(ctx, c)| {
                        c.rules
                            .iter()
                            .map(|r| RuleInfo {
                                handle: r.handle,
                                ops: r.exprs.iter().map(|e| ctx.op(e)).collect(),
                                guard: Box::new([]),
                            })
                            .collect()
                    })
                    .collect()
            },
        );
        prog.sets = compiled_sets;
        for (c, r) in prog.chains.iter_mut().zip(rules) {
            c.rules = r;
        }
        let dynamic: Vec<u32> = prog
            .chains
            .iter()
            .flat_map(|c| &c.rules)
            .flat_map(|r| r.ops.iter())
            .filter_map(|o| match o {
                Op::Dynset { set, .. } => Some(*set),
                _ => None,
            })
            .collect();
        for id in dynamic {
            prog.sets[id as usize].dynamic = true;
        }
        prog.guards = prog
            .chains
            .iter()
            .flat_map(|c| &c.rules)
            .all(|r| self_contained(&r.ops, &prog.sets));
        if prog.guards {
            let sets = &prog.sets;
            let built = prog
                .chains
                .par_iter_mut()
                .map(|c| {
                    for r in &mut c.rules {
                        r.guard = guard_of(&r.ops, sets).into();
                    }
                    build_index(&c.rules, sets)
                })
                .collect();
            prog.number_indexes(built);
        }
        prog.paths = [
            build_path(&all, &chain_ids, false),
            build_path(&all, &chain_ids, true),
        ];
        prog.inert = super::order::inert_chains(&prog.chains);
        prog
    }
}

fn compile_set(ctx: &Ctx<'_>, s: &crate::snapshot::Set, klen: usize, dlen: usize) -> SetInfo {
    let kind = if s.interval() && s.key.0.len() > 1 {
        let parts: Vec<(usize, usize)> = s.key.offsets();
        if parts.iter().all(|(o, l)| o + l <= klen) {
            SetKind::Concat(parts)
        } else {
            SetKind::Concat(vec![(0, klen)])
        }
    } else if s.interval() {
        SetKind::Interval
    } else {
        SetKind::Exact
    };
    let is_map = s.is_map() || s.flags & setflags::OBJECT != 0;
    let conv = |d: Option<&ElemData>| -> CData {
        match d {
            None => CData::None,
            Some(ElemData::Verdict(v)) => CData::Verdict(ctx.verdict(v)),
            Some(ElemData::Value(b)) => {
                let mut v = data(b.as_slice());
                v.resize(dlen.max(v.len()), 0);
                CData::Value(v)
            }
            Some(ElemData::Object(o)) => CData::Obj(ctx.object(o)),
        }
    };
    let mut catchall = None;
    let mut elems: Vec<(&[u8], &[u8], CData)> = Vec::with_capacity(s.elements.len());
    for e in &s.elements {
        let k = e.key.as_slice();
        if k.is_empty() {
            catchall = Some(conv(e.data.as_deref()));
            continue;
        }
        let end = e.key_end.as_ref().map_or(k, |k| k.as_slice());
        if k.len() != klen || end.len() != klen {
            continue;
        }
        let d = if is_map {
            conv(e.data.as_deref())
        } else {
            CData::None
        };
        elems.push((k, end, d));
    }
    if !matches!(kind, SetKind::Concat(_)) && !elems.windows(2).all(|w| w[0].0 < w[1].0) {
        elems.sort_by(|a, b| a.0.cmp(b.0));
    }
    let n = elems.len();
    let mut starts = Vec::with_capacity(n * klen);
    let mut ends = Vec::new();
    let mut datav = Vec::new();
    if kind != SetKind::Exact {
        ends.reserve(n * klen);
    }
    for (k, e, d) in elems {
        starts.extend_from_slice(k);
        if kind != SetKind::Exact {
            ends.extend_from_slice(e);
        }
        if is_map {
            datav.push(d);
        }
    }
    SetInfo {
        name: s.name.clone(),
        klen,
        kind,
        n,
        starts,
        ends,
        data: datav,
        dlen,
        dynamic: false,
        catchall,
    }
}

/// Orders the base chains a packet of one family meets on its way in.
fn build_path(
    tables: &[&Table],
    chain_ids: &HashMap<(u32, &str), u32>,
    v6: bool,
) -> super::order::Path {
    use super::order::{nat_orders, Item};
    let mut items: Vec<Item> = Vec::new();
    let mut nat: [Vec<(i32, usize, u32)>; 2] = [Vec::new(), Vec::new()];
    let mut created = 0usize;
    for (ti, t) in tables.iter().enumerate() {
        for c in &t.chains {
            created += 1;
            let Some(b) = &c.base else { continue };
            if t.dormant() {
                continue;
            }
            let fam_ok = match t.family {
                Family::Inet => true,
                Family::Ip => !v6,
                Family::Ip6 => v6,
                Family::Netdev => b.hook == Hook::Ingress,
                _ => false,
            };
            if !fam_ok {
                continue;
            }
            let id = chain_ids[&(ti as u32, c.name.as_str())];
            let is_nat = b.kind == "nat";
            match b.hook {
                Hook::Ingress => items.push(Item::new(
                    0,
                    b.priority,
                    created,
                    b.hook,
                    vec![Entry::Chain {
                        chain: id,
                        devices: Some(b.devices.clone().into()),
                    }],
                )),
                Hook::Prerouting if is_nat => nat[0].push((b.priority, created, id)),
                Hook::Input if is_nat => nat[1].push((b.priority, created, id)),
                Hook::Prerouting | Hook::Input => items.push(Item::new(
                    if b.hook == Hook::Prerouting { 1 } else { 3 },
                    b.priority,
                    created,
                    b.hook,
                    vec![Entry::Chain {
                        chain: id,
                        devices: None,
                    }],
                )),
                _ => {}
            }
        }
    }
    // Conntrack: its order against chains at -200 is not known either.
    items.push(Item::new(
        1,
        -200,
        usize::MAX,
        Hook::Prerouting,
        vec![Entry::Conntrack],
    ));
    items.push(Item::new(2, 0, 0, Hook::Prerouting, vec![Entry::Route]));
    for (i, (hook, prio)) in [(Hook::Prerouting, -100), (Hook::Input, 100)]
        .into_iter()
        .enumerate()
    {
        let mut members = std::mem::take(&mut nat[i]);
        if members.is_empty() {
            continue;
        }
        let first = members.iter().map(|m| m.1).min().unwrap_or(0);
        let (chains, others) = nat_orders(&mut members);
        let group = |chains: Vec<u32>| Entry::NatGroup {
            hook,
            chains: chains.into(),
        };
        let mut item = Item::new(
            if i == 0 { 1 } else { 3 },
            prio,
            first,
            hook,
            vec![group(chains)],
        );
        item.inner = others.into_iter().map(|o| vec![group(o)]).collect();
        items.push(item);
    }
    // Ingress chains share a hook list only when they share a device.
    super::order::build(items, |a, b| match (&a.entries[0], &b.entries[0]) {
        (
            Entry::Chain {
                devices: Some(x), ..
            },
            Entry::Chain {
                devices: Some(y), ..
            },
        ) => x.iter().any(|d| y.contains(d)),
        _ => true,
    })
}
