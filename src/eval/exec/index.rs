//! Rule guards and the per-chain rule index: skipping rules that cannot
//! match without running them (see `compile::guard_of` and
//! `compile::build_index`).

use super::*;

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
                    Ct::New => 8,
                };
                d[..4].copy_from_slice(&v.to_ne_bytes());
            }
        }
        Some((d, k, asm))
    }

    /// Moves to the next rule of the chain that its index leaves as a
    /// candidate; `true` when the current rule is one.
    pub(super) fn candidate(&self, st: &mut St) -> bool {
        if !matches!(&st.alive, Some((c, v, _)) if *c == st.chain && *v == st.pver) {
            let b = self.alive_set(st);
            st.alive = Some((st.chain, st.pver, b));
        }
        let Some((_, _, bits)) = &st.alive else {
            return true;
        };
        let r = st.rule as usize;
        let mut w = r / 64;
        let mut word = bits.get(w).copied().unwrap_or(0) & (!0u64 << (r % 64));
        while word == 0 {
            w += 1;
            match bits.get(w) {
                Some(x) => word = *x,
                None => {
                    st.rule = self.p.chains[st.chain as usize].rules.len() as u32;
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

    /// The candidate rules of the current chain for the packet as it is.
    pub(super) fn alive_set(&self, st: &St) -> Rc<[u64]> {
        let key = (st.chain, st.pver);
        if let Some(b) = self.cache.borrow().get(&key) {
            return b.clone();
        }
        let chain = &self.p.chains[st.chain as usize];
        let n = chain.rules.len();
        let mut bits = vec![!0u64; words(n)];
        for ix in chain.index.iter() {
            let Some((d, k, asm)) = self.src_val(st, &ix.src) else {
                continue;
            };
            let l = ix.len as usize;
            if asm != 0 || k[..l].iter().any(|x| *x != 0xff) {
                continue;
            }
            let v = &d[..l];
            let hit: Option<&[u64]> = match &ix.kind {
                IndexKind::Equal(m) => m.get(v).map(|b| &b[..]),
                IndexKind::Segments { starts, bits: seg } => {
                    let s = starts.partition_point(|x| x.as_slice() <= v) - 1;
                    let w = ix.rest.len();
                    Some(&seg[s * w..(s + 1) * w])
                }
            };
            for (i, b) in bits.iter_mut().enumerate() {
                *b &= ix.rest[i] | hit.map_or(0, |h| h[i]);
            }
        }
        let rc: Rc<[u64]> = bits.into();
        self.cache.borrow_mut().insert(key, rc.clone());
        rc
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
