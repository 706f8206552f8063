//! Rule guards and the per-chain rule index: skipping rules that cannot
//! match without running them (see `compile::guard_of` and
//! `compile::build_index`).

use super::*;
use crate::eval::compile::Index;

/// [`Ctx::slot`]: the value is not fully known.
const SKIP: u32 = u32::MAX;
/// [`Ctx::slot`]: no rule of an equality index requires the value.
const MISS: u32 = u32::MAX - 1;

impl Ctx<'_> {
    /// The value a guard source loads (register bytes, known bits, and the
    /// assumptions the bytes rest on), or `None` when the guard cannot tell.
    pub(super) fn src_val(&self, st: &St, src: &Src) -> Option<([u8; 16], [u8; 16], u64)> {
        let mut d = [0u8; 16];
        let mut k = [0xffu8; 16];
        let mut asm = 0u64;
        match src {
            Src::Meta(key) => match key {
                MetaKey::Iifname => d = self.iifname,
                MetaKey::Iif => d[..4].copy_from_slice(&self.probe.iif.index.to_ne_bytes()),
                MetaKey::Iiftype => d[..2].copy_from_slice(&self.probe.iif.iftype.to_ne_bytes()),
                MetaKey::L4proto => d[0] = st.pkt.l4.proto(),
                MetaKey::Nfproto => {
                    d[0] = if self.chain_family(st.chain) == Family::Netdev {
                        5
                    } else if st.pkt.v6 {
                        10
                    } else {
                        2
                    }
                }
                MetaKey::Protocol => {
                    d[..2].copy_from_slice(if st.pkt.v6 { &[0x86, 0xdd] } else { &[8, 0] })
                }
                MetaKey::Mark => {
                    d[..4].copy_from_slice(&st.mark.to_ne_bytes());
                    k[..4].copy_from_slice(&st.mark_k.to_ne_bytes());
                }
                MetaKey::Pkttype => d[0] = st.pkttype,
                _ => return None,
            },
            Src::Payload { base, offset, len } => {
                let start = match base {
                    PayloadBase::Network => st.pkt.net(),
                    _ => st.pkt.transport(),
                } + *offset as usize;
                let n = *len as usize;
                if start + n > st.pkt.end() {
                    return None;
                }
                d[..n].copy_from_slice(&st.pkt.b[start..start + n]);
                k[..n].copy_from_slice(&st.pkt.k[start..start + n]);
                for a in &st.pkt.asm[start..start + n] {
                    if *a != 0 {
                        asm |= 1 << (a - 1);
                    }
                }
            }
            Src::CtState => {
                if st.ct_taint {
                    return None;
                }
                let v: u32 = match st.ct {
                    Ct::None => 1,
                    Ct::Untracked => 64,
                    Ct::New | Ct::Template => 8,
                    Ct::Established => 2,
                };
                d[..4].copy_from_slice(&v.to_ne_bytes());
            }
        }
        Some((d, k, asm))
    }

    /// Moves to the next rule of the chain that its index leaves as a
    /// candidate; `true` when the current rule is one.
    pub(super) fn candidate(&self, st: &mut St) -> bool {
        let at = match st.alive {
            Some((c, v, at)) if c == st.chain && v == st.pver => at,
            _ => {
                let at = self.alive_set(st);
                st.alive = Some((st.chain, st.pver, at));
                at
            }
        } as usize;
        let n = self.p.chains[st.chain as usize].rules.len();
        let s = self.scratch();
        let bits = &s.arena[at..at + words(n)];
        let r = st.rule as usize;
        let mut w = r / 64;
        let mut word = bits.get(w).copied().unwrap_or(0) & (!0u64 << (r % 64));
        while word == 0 {
            w += 1;
            match bits.get(w) {
                Some(x) => word = *x,
                None => {
                    st.rule = n as u32;
                    return false;
                }
            }
        }
        let next = w * 64 + word.trailing_zeros() as usize;
        if next == r {
            return true;
        }
        st.rule = next as u32;
        false
    }

    /// The candidate rules of the current chain for the packet as it is:
    /// the offset of their bitset in the scratch arena.
    pub(super) fn alive_set(&self, st: &St) -> u32 {
        let mut g = self.scratch();
        let s = &mut *g;
        let c = st.chain as usize;
        // Back in a chain after a jump, or in another branch of the probe.
        let (probe, ver, at) = s.seen[c];
        if probe == s.probe && ver == st.pver {
            return at;
        }
        let chain = &self.p.chains[c];
        let w = words(chain.rules.len());
        // The bitset depends only on each index's slot: when they are all
        // those the chain's remembered bitset was built with (the probes
        // of the exposure map differ in a field or two), it is reused.
        let mut same = s.memo_at[c] != NONE;
        for ix in chain.index.iter() {
            let slot = self.slot(s, st, ix);
            let l = &mut s.last[ix.iid as usize];
            l.cur = slot;
            same &= l.used == slot;
        }
        if !same {
            if s.memo_at[c] == NONE {
                s.memo_at[c] = s.memo.len() as u32;
                s.memo.resize(s.memo.len() + w, 0);
            }
            let m = s.memo_at[c] as usize;
            let bits = &mut s.memo[m..m + w];
            bits.fill(!0u64);
            for ix in chain.index.iter() {
                let l = &mut s.last[ix.iid as usize];
                l.used = l.cur;
                let i = l.cur as usize;
                let hit = match (l.cur, &ix.kind) {
                    (SKIP, _) => continue,
                    (MISS, _) => None,
                    (_, IndexKind::Equal { bits, .. } | IndexKind::Segments { bits, .. }) => {
                        Some(&bits[i * w..(i + 1) * w])
                    }
                };
                // A value's bitset includes `rest`.
                match hit {
                    Some(h) => {
                        for (b, h) in bits.iter_mut().zip(h) {
                            *b &= h;
                        }
                    }
                    None => {
                        for (b, r) in bits.iter_mut().zip(&ix.rest[..]) {
                            *b &= r;
                        }
                    }
                }
            }
        }
        let m = s.memo_at[c] as usize;
        let at = s.arena.len() as u32;
        s.arena.extend_from_slice(&s.memo[m..m + w]);
        s.seen[c] = (s.probe, st.pver, at);
        at
    }

    /// Which bitset of an index the packet selects: a value's or segment's
    /// number, [`MISS`] (no rule requires the value) or [`SKIP`] (the
    /// value is not fully known: the index tells nothing).
    fn slot(&self, s: &mut Scratch, st: &St, ix: &Index) -> u32 {
        // Every chain testing the field reads the same value: load it (and
        // find its number among the values equality indexes look for)
        // once per packet version.
        let val: Val = match s.vals[ix.sid as usize] {
            Some((ver, v)) if ver == st.pver => v,
            _ => {
                let v = self.src_val(st, &ix.src).and_then(|(d, k, asm)| {
                    let l = ix.len as usize;
                    (asm == 0 && k[..l].iter().all(|x| *x == 0xff)).then(|| {
                        let key = index_key(&d[..l]);
                        let e = &self.p.eq_values[ix.sid as usize];
                        let vid = if e.vid.is_empty() {
                            NONE
                        } else {
                            e.vid.get(&key).copied().unwrap_or(NONE)
                        };
                        (key, vid)
                    })
                });
                s.vals[ix.sid as usize] = Some((st.pver, v));
                v
            }
        };
        let Some((key, vid)) = val else {
            return SKIP;
        };
        let l = &mut s.last[ix.iid as usize];
        if l.key != Some(key) {
            l.key = Some(key);
            l.slot = match &ix.kind {
                IndexKind::Equal { .. } if vid == NONE => MISS,
                IndexKind::Equal { .. } => self.p.eq_values[ix.sid as usize]
                    .slot(vid, ix.iid)
                    .unwrap_or(MISS),
                IndexKind::Segments { starts, .. } => {
                    (starts.partition_point(|x| *x <= key) - 1) as u32
                }
            };
        }
        l.slot
    }

    /// A new packet version, after a rewrite.
    pub(super) fn rewritten(&self, st: &mut St) {
        self.version.set(self.version.get() + 1);
        st.pver = self.version.get();
    }

    /// Evaluates a rule's leading conditions straight from the state:
    /// `false` when one is certainly false (the rule cannot match, whatever
    /// the undecided ones before it do: they are pure tests).
    pub(super) fn guard(&self, st: &mut St, conds: &[Cond]) -> bool {
        for c in conds {
            let Some((mut d, mut k, asm)) = self.src_val(st, &c.src) else {
                continue;
            };
            let w = c.width as usize;
            if let Some((mask, xor)) = &c.mask {
                for i in 0..w {
                    let m = mask.get(i).copied().unwrap_or(0);
                    let x = xor.get(i).copied().unwrap_or(0);
                    k[i] |= !m;
                    d[i] = ((d[i] & m) ^ x) & k[i];
                }
            }
            let r = match &c.test {
                Test::Cmp { op, data } => {
                    let n = data.len();
                    tri_cmp(&d[..n], &k[..n], data, *op)
                }
                Test::Range { op, from, to } => {
                    let n = from.len();
                    tri_range(&d[..n], &k[..n], from, to).map(|i| i == (*op == CmpOp::Eq))
                }
                Test::Lookup { set, invert } => {
                    let s = &self.p.sets[*set as usize];
                    let (key, known) = (&d[..s.klen], &k[..s.klen]);
                    if known.iter().all(|x| *x == 0xff) {
                        let hit = overlay_get(&st.overlay, *set, key)
                            .unwrap_or_else(|| s.find(key).is_some());
                        Some((hit ^ invert) || s.catchall.is_some())
                    } else {
                        None
                    }
                }
            };
            match r {
                Some(true) => st.assume |= asm,
                Some(false) => {
                    st.assume |= asm;
                    return false;
                }
                None => {}
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use crate::eval::testkit::topology;
    use crate::eval::{Evaluator, Probe, L4};
    use serde_json::json;
    use std::net::IpAddr;

    /// Two jumped-to chains of 48 rules the indexes cover (equality on the
    /// interface, protocol, source and port; port ranges; a source prefix).
    fn ruleset() -> crate::snapshot::Snapshot {
        let chain = |c: usize| {
            let rules: Vec<_> = (0..48)
                .map(|i| {
                    let port = 1000 + (i % 7) as u16;
                    let exprs = match i % 4 {
                        0 => json!([
                            {"type": "meta", "key": "iifname", "dreg": 1},
                            {"type": "cmp", "sreg": 1, "op": "eq", "data": if i % 8 == 0 {
                                "0x70772d707269760000000000000000" } else {
                                "0x70772d707562000000000000000000" }},
                            {"type": "meta", "key": "l4proto", "dreg": 1},
                            {"type": "cmp", "sreg": 1, "op": "eq", "data": "0x06"},
                            {"type": "payload", "base": "network", "offset": 12, "len": 4, "dreg": 1},
                            {"type": "cmp", "sreg": 1, "op": "eq", "data": format!("0x0a63{c:02x}{i:02x}")},
                            {"type": "payload", "base": "transport", "offset": 2, "len": 2, "dreg": 1},
                            {"type": "cmp", "sreg": 1, "op": "eq", "data": format!("0x{port:04x}")},
                            {"type": "immediate", "dreg": 0, "verdict": "accept"}
                        ]),
                        1 => json!([
                            {"type": "meta", "key": "l4proto", "dreg": 1},
                            {"type": "cmp", "sreg": 1, "op": "eq", "data": "0x11"},
                            {"type": "payload", "base": "transport", "offset": 2, "len": 2, "dreg": 1},
                            {"type": "range", "sreg": 1, "op": "eq", "from": format!("0x{:04x}", 2000 + i), "to": format!("0x{:04x}", 2003 + i)},
                            {"type": "immediate", "dreg": 0, "verdict": "drop"}
                        ]),
                        2 => json!([
                            {"type": "payload", "base": "network", "offset": 12, "len": 4, "dreg": 1},
                            {"type": "bitwise", "sreg": 1, "dreg": 1, "len": 4, "op": "bool", "mask": "0xffffff00", "xor": "0x00000000"},
                            {"type": "cmp", "sreg": 1, "op": "eq", "data": format!("0x0a63{i:02x}00")},
                            {"type": "payload", "base": "transport", "offset": 2, "len": 2, "dreg": 1},
                            {"type": "cmp", "sreg": 1, "op": "eq", "data": format!("0x{port:04x}")},
                            {"type": "immediate", "dreg": 0, "verdict": "accept"}
                        ]),
                        _ => json!([
                            {"type": "meta", "key": "l4proto", "dreg": 1},
                            {"type": "cmp", "sreg": 1, "op": "eq", "data": "0x06"},
                            {"type": "payload", "base": "transport", "offset": 2, "len": 2, "dreg": 1},
                            {"type": "cmp", "sreg": 1, "op": "eq", "data": format!("0x{:04x}", port + 10 * c as u16)},
                            {"type": "immediate", "dreg": 0, "verdict": "drop"}
                        ]),
                    };
                    json!({"handle": 100 * c + i + 10, "position": i, "exprs": exprs})
                })
                .collect();
            json!({"name": format!("c{c}"), "handle": 10 + c, "rules": rules})
        };
        let jumps: Vec<_> = (0..2)
            .map(|c| {
                json!({"handle": 1 + c, "position": c, "exprs": [
                    {"type": "immediate", "dreg": 0, "verdict": {"jump": format!("c{c}")}}
                ]})
            })
            .collect();
        serde_json::from_value(json!({"generation": 1, "tables": [{
            "family": "inet", "name": "filter", "handle": 1, "sets": [],
            "chains": [
                chain(0), chain(1),
                {"name": "input", "handle": 1, "type": "filter", "hook": "input",
                 "priority": 0, "policy": "drop", "rules": jumps}
            ]
        }]}))
        .unwrap()
    }

    fn probes(e: &Evaluator) -> Vec<Probe> {
        let mut out = Vec::new();
        for iif in ["pw-pub", "pw-priv"] {
            let itf = e.iface(iif);
            let dst: IpAddr = if iif == "pw-pub" {
                "192.0.2.1"
            } else {
                "10.99.0.1"
            }
            .parse()
            .unwrap();
            for port in (995..1025).chain(2000..2060) {
                for proto in [L4::Tcp, L4::Udp] {
                    for s in [
                        "10.99.0.4",
                        "10.99.1.8",
                        "10.99.0.9",
                        "10.99.2.77",
                        "10.99.44.3",
                    ] {
                        let src = s.parse().unwrap();
                        out.push(Probe::new(proto, src, dst, 40000, port, itf.clone()));
                    }
                }
            }
        }
        out
    }

    /// What a thread remembers between probes (slots, bitsets) never
    /// changes an answer, whatever the order of the probes and whichever
    /// program ran before on the thread.
    #[test]
    fn remembered_bitsets_do_not_change_answers() {
        let fast = Evaluator::new(&ruleset(), topology());
        assert!(fast.prog.chains.iter().any(|c| c.index.len() >= 3));
        let mut plain = Evaluator::new(&ruleset(), topology());
        for c in &mut plain.prog.chains {
            c.index = Box::new([]);
        }
        let ps = probes(&fast);
        let want: Vec<_> = ps.iter().map(|p| plain.explain(p)).collect();
        let mut verdicts = std::collections::HashSet::new();
        let check = |order: &mut dyn Iterator<Item = usize>, other: Option<&Evaluator>| {
            for i in order {
                if let Some(o) = other {
                    o.verdict(&ps[i]);
                }
                let a = fast.explain(&ps[i]);
                assert_eq!(
                    (&a.verdict, &a.decided_by, &a.trace, &a.assumptions),
                    (
                        &want[i].verdict,
                        &want[i].decided_by,
                        &want[i].trace,
                        &want[i].assumptions
                    ),
                    "{:?}",
                    ps[i]
                );
            }
        };
        check(&mut (0..ps.len()), None);
        check(&mut (0..ps.len()).rev(), None);
        check(&mut (0..ps.len()).map(|i| i * 7919 % ps.len()), None);
        // Another program with indexes between every two probes.
        let other = Evaluator::new(&ruleset(), topology());
        check(&mut (0..ps.len()), Some(&other));
        std::thread::scope(|s| {
            s.spawn(|| check(&mut (0..ps.len()).rev(), None));
        });
        for a in &want {
            verdicts.insert(format!("{:?}", a.verdict));
        }
        assert!(verdicts.len() >= 2, "{verdicts:?}");
    }
}
