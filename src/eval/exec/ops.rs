//! What each expression does to the state: the per-expression semantics of
//! the kernel's `nft_*` and `xt_*` evaluation functions.

use super::*;

impl Ctx<'_> {
    // ------------------------------------------------------- forced paths

    pub(super) fn forced(&self, st: &mut St, op: &Op, c: Choice) -> Flow {
        match (op, c) {
            (Op::Lookup { set, dst, .. }, Choice::Elem(i)) => {
                self.apply_elem(st, *set, Some(i), *dst)
            }
            (Op::Lookup { set, dst, .. }, Choice::Catchall) => {
                self.apply_elem(st, *set, None, *dst)
            }
            (Op::ObjMap { set, .. }, Choice::Elem(i)) => {
                match self.p.sets[*set as usize].elem_data(i as usize) {
                    CData::Obj(o) => self.obj(st, o),
                    _ => Flow::Unknown("object map element without an object".into()),
                }
            }
            (Op::Socket { dreg, .. }, Choice::Tainted) => {
                st.runknown(*dreg, 4, ORIGIN_SOCKET);
                Flow::Next
            }
            (Op::Tproxy { .. }, Choice::Match) => {
                st.tproxied = true;
                Flow::Next
            }
            (Op::Exthdr { dreg, len, .. }, Choice::Tainted) => {
                st.runknown(*dreg, (*len as usize).max(1), ORIGIN_TCPOPT);
                Flow::Next
            }
            (Op::Meta { dreg, .. }, Choice::Tainted) => {
                st.runknown(*dreg, 16, ORIGIN_META);
                Flow::Next
            }
            (_, Choice::Tainted) => {
                st.taint();
                Flow::Next
            }
            (_, Choice::Match) => Flow::Next,
            (_, Choice::NoMatch) => Flow::Break,
            (_, Choice::Accept) => Flow::Verdict(CVerdict::Accept),
            (_, Choice::Drop) => Flow::Verdict(CVerdict::Drop),
            (_, Choice::Elem(_) | Choice::Catchall) => Flow::Break,
        }
    }

    // -------------------------------------------------------------- eval

    pub(super) fn eval(&self, st: &mut St, op: &Op) -> Flow {
        match op {
            Op::Nop => Flow::Next,
            Op::Payload {
                base,
                offset,
                len,
                dreg,
            } => self.payload(st, *base, *offset, *len as usize, *dreg),
            Op::PayloadSet {
                base,
                offset,
                len,
                sreg,
            } => {
                let start = match base {
                    PayloadBase::Link => 0,
                    PayloadBase::Network => st.pkt.net(),
                    PayloadBase::Transport => st.pkt.transport(),
                    PayloadBase::Inner => return Flow::Next,
                } + *offset as usize;
                let n = *len as usize;
                for i in 0..n {
                    let at = start + i;
                    if at < st.pkt.end() {
                        st.pkt.b[at] = st.d[*sreg as usize + i];
                        st.pkt.k[at] = st.k[*sreg as usize + i];
                        st.pkt.org[at] = st.org[(*sreg as usize + i) / 4];
                        st.pkt.asm[at] = 0;
                    }
                }
                self.rewritten(st);
                Flow::Next
            }
            Op::Cmp { sreg, op, data } => {
                let (d, k) = st.rget(*sreg, data.len());
                match tri_cmp(d, k, data, *op) {
                    Some(true) => Flow::Next,
                    Some(false) => Flow::Break,
                    None => fork2(format!(
                        "a comparison depends on {}",
                        ORIGINS[st.origin_of(*sreg, data.len()) as usize]
                    )),
                }
            }
            Op::Range { sreg, op, from, to } => {
                let (d, k) = st.rget(*sreg, from.len());
                let inside = tri_range(d, k, from, to);
                match inside.map(|i| i == (*op == CmpOp::Eq)) {
                    Some(true) => Flow::Next,
                    Some(false) => Flow::Break,
                    None => fork2(format!(
                        "a range test depends on {}",
                        ORIGINS[st.origin_of(*sreg, from.len()) as usize]
                    )),
                }
            }
            Op::Bitwise {
                sreg,
                dreg,
                len,
                kind,
            } => {
                bitwise(st, *sreg, *dreg, *len as usize, kind);
                Flow::Next
            }
            Op::Byteorder {
                sreg,
                dreg,
                len,
                size,
            } => {
                let (s, dr, n, sz) = (
                    *sreg as usize,
                    *dreg as usize,
                    *len as usize,
                    *size as usize,
                );
                let (src_d, src_k) = (st.d, st.k);
                let src_org = st.org;
                if cfg!(target_endian = "little") {
                    for e in 0..n / sz {
                        for j in 0..sz {
                            st.d[dr + e * sz + j] = src_d[s + e * sz + sz - 1 - j];
                            st.k[dr + e * sz + j] = src_k[s + e * sz + sz - 1 - j];
                        }
                    }
                } else {
                    st.d[dr..dr + n].copy_from_slice(&src_d[s..s + n]);
                    st.k[dr..dr + n].copy_from_slice(&src_k[s..s + n]);
                }
                for w in 0..n.div_ceil(4) {
                    if let Some(o) = src_org.get(s / 4 + w) {
                        st.org[dr / 4 + w] = *o;
                    }
                }
                Flow::Next
            }
            Op::Meta { key, dreg } => self.meta(st, *key, *dreg),
            Op::MetaSet { key, sreg } => {
                let (v, k) = st.read_u32(*sreg);
                match key {
                    MetaKey::Mark => {
                        st.mark = v & k;
                        st.mark_k = k;
                    }
                    MetaKey::Priority => st.skb_prio = v,
                    MetaKey::Pkttype => st.pkttype = st.d[*sreg as usize],
                    _ => {}
                }
                Flow::Next
            }
            Op::Ct { key, dir, dreg } => self.ct(st, *key, *dir, *dreg),
            Op::CtSet { key, dir, sreg } => {
                match key {
                    CtKey::Mark if st.ct == Ct::New => {
                        let (v, k) = st.read_u32(*sreg);
                        st.ct_mark = v & k;
                        st.ct_mark_k = k;
                    }
                    // nft_ct_set_zone_eval: only while the packet has no
                    // conntrack entry (nor template): attaches a template
                    // in the zone, which conntrack then uses; `notrack`
                    // before it is overridden.
                    CtKey::Zone
                        if matches!(st.ct, Ct::None | Ct::Untracked)
                            && st.hook != Hook::Ingress =>
                    {
                        let (d, k) = st.rget(*sreg, 2);
                        let (d, k) = ([d[0], d[1]], [k[0], k[1]]);
                        st.zone = u16::from_ne_bytes([d[0] & k[0], d[1] & k[1]]);
                        st.zone_k = u16::from_ne_bytes([k[0], k[1]]);
                        st.zone_dir = match dir {
                            Some(0) => 1,
                            Some(1) => 2,
                            _ => 3,
                        };
                        st.ct = Ct::Template;
                    }
                    // nf_connlabels_replace with the value as mask: the
                    // bits are added to the entry's labels.
                    CtKey::Labels if st.ct == Ct::New => {
                        let (d, k) = st.rget(*sreg, 16);
                        let (d, k): ([u8; 16], [u8; 16]) =
                            (d.try_into().expect("16"), k.try_into().expect("16"));
                        for i in 0..16 {
                            // A bit known set stays set; known clear keeps
                            // the old bit; unknown makes it unknown unless
                            // it was known set.
                            let set = d[i] & k[i];
                            let unknown = !k[i] & !(st.labels[i] & st.labels_k[i]);
                            st.labels[i] |= set;
                            st.labels_k[i] &= !unknown;
                            st.labels_k[i] |= set;
                        }
                    }
                    _ => {}
                }
                Flow::Next
            }
            Op::Lookup {
                set,
                sreg,
                dst,
                invert,
            } => self.lookup(st, *set, *sreg, *dst, *invert),
            Op::Verdict(v) => Flow::Verdict(*v),
            Op::Imm { dreg, data } => {
                st.rstore(*dreg, data);
                Flow::Next
            }
            Op::Limit { invert } => {
                st.set_assume(A_LIMIT);
                if *invert {
                    Flow::Break
                } else {
                    Flow::Next
                }
            }
            Op::Quota {
                bytes,
                consumed,
                invert,
            } => self.quota(st, None, *bytes, *consumed, *invert),
            Op::Connlimit { count, invert } => {
                st.set_assume(A_CONNLIMIT);
                if (1 > *count) ^ invert {
                    Flow::Break
                } else {
                    Flow::Next
                }
            }
            Op::Reject { kind, code } => {
                st.reject = Some((false, *kind, u32::from(*code)));
                Flow::Verdict(CVerdict::Drop)
            }
            Op::Nat {
                snat,
                family,
                addr,
                proto,
                flags,
            } => self.nat(st, *snat, *family, *addr, *proto, *flags),
            Op::Redir { proto } => self.redir(st, *proto),
            Op::Fib {
                flags,
                result,
                dreg,
            } => self.fib(st, *flags, *result, *dreg),
            Op::Dynset {
                set,
                op,
                key,
                data,
                exprs,
                invert,
                opaque,
            } => {
                let f = self.dynset(st, *set, *op, *key, *data, exprs, *invert);
                if *opaque && !matches!(f, Flow::Fork(_)) {
                    return fork2(format!(
                        "per-element expressions of an update of set {} are not modelled",
                        self.p.sets[*set as usize].name
                    ));
                }
                f
            }
            Op::Obj(o) => self.obj(st, o),
            Op::ObjMap { set, sreg } => {
                let s = &self.p.sets[*set as usize];
                let (key, k) = st.rget(*sreg, s.klen);
                if k.iter().any(|x| *x != 0xff) {
                    return fork2(format!(
                        "an object map key depends on {}",
                        ORIGINS[st.origin_of(*sreg, s.klen) as usize]
                    ));
                }
                let d = match s.find(key) {
                    Some(i) => s.elem_data(i),
                    None => match &s.catchall {
                        Some(c) => c,
                        None => return Flow::Break,
                    },
                };
                match d {
                    CData::Obj(o) => self.obj(st, o),
                    _ => Flow::Unknown("object map element without an object".into()),
                }
            }
            Op::Socket { key, dreg } => self.socket(st, *key, *dreg),
            Op::Exthdr {
                op,
                kind,
                offset,
                len,
                present,
                dreg,
            } => self.exthdr(
                st,
                *op,
                *kind,
                *offset as usize,
                *len as usize,
                *present,
                *dreg,
            ),
            Op::Notrack => {
                if st.ct == Ct::None && st.hook != Hook::Ingress {
                    st.ct = Ct::Untracked;
                }
                Flow::Next
            }
            Op::Rt { key, dreg } => {
                if st.hook != Hook::Input && st.out.is_none() {
                    return Flow::Break;
                }
                match key {
                    0 => st.store32(*dreg, 0),
                    1 | 2 => {
                        if (*key == 2) != st.pkt.v6 {
                            return Flow::Break;
                        }
                        if st.out.is_some() {
                            // The gateway of the route is not known.
                            st.runknown(*dreg, if st.pkt.v6 { 16 } else { 4 }, ORIGIN_RT);
                            return Flow::Next;
                        }
                        let at = st.pkt.daddr_off();
                        let n = if st.pkt.v6 { 16 } else { 4 };
                        let (b, k) = (st.pkt.b, st.pkt.k);
                        st.rset(*dreg, &b[at..at + n], &k[at..at + n], ORIGIN_RT);
                    }
                    4 => st.store8(*dreg, 0),
                    _ => st.runknown(*dreg, 4, ORIGIN_RT),
                }
                Flow::Next
            }
            Op::Opaque { dreg, len, origin } => {
                st.runknown(*dreg, *len as usize, *origin);
                Flow::Next
            }
            Op::Tproxy { family, addr, port } => self.tproxy(st, *family, *addr, *port),
            Op::Xt { target, info } => {
                if *target {
                    self.xt_target(st, info)
                } else {
                    match self.xt_match(st, info) {
                        Some(true) => Flow::Next,
                        Some(false) => Flow::Break,
                        None => fork2(format!(
                            "{} cannot be decided for this probe",
                            xt_name(info)
                        )),
                    }
                }
            }
            Op::Ip6ExtMatch { what } => {
                if st.pkt.v6 {
                    // ipv6_find_hdr: -ENOENT, the match is false.
                    st.set_assume(A_NOEXT);
                    Flow::Break
                } else {
                    fork2(format!("{what} on an IPv4 packet"))
                }
            }
            Op::Unknown { what, kind } => {
                fork(opaque_choices(*kind), format!("{what} is not understood"))
            }
        }
    }

    pub(super) fn payload(
        &self,
        st: &mut St,
        base: PayloadBase,
        offset: u32,
        len: usize,
        dreg: u8,
    ) -> Flow {
        let pk = &st.pkt;
        let start = match base {
            PayloadBase::Link => {
                // A locally generated packet has no link-layer header yet.
                if st.out.is_some() {
                    return Flow::Break;
                }
                if self.probe.iif.iftype != ARPHRD_ETHER && self.probe.iif.iftype != ARPHRD_LOOPBACK
                {
                    st.runknown(dreg, len, ORIGIN_LINK);
                    return Flow::Next;
                }
                0
            }
            PayloadBase::Network => pk.net(),
            PayloadBase::Transport => pk.transport(),
            PayloadBase::Inner => {
                // A SYN carries no payload; a UDP payload is unknown.
                return match pk.l4 {
                    L4::Tcp => Flow::Break,
                    L4::Udp => match self.probe.payload_len {
                        Some(l) if offset as usize + len > l as usize => Flow::Break,
                        _ => {
                            st.runknown(dreg, len, ORIGIN_PAYLOAD);
                            Flow::Next
                        }
                    },
                };
            }
        } + offset as usize;
        let end = start + len;
        if end > pk.end() {
            // Beyond the synthesised headers: TCP options, or UDP payload.
            let t = pk.transport();
            let beyond_packet = match pk.l4 {
                L4::Tcp => end > t + 60,
                L4::Udp => self
                    .probe
                    .payload_len
                    .is_some_and(|l| end > t + 8 + l as usize),
            };
            if beyond_packet {
                return Flow::Break;
            }
        }
        let mut d = [0u8; 64];
        let mut k = [0u8; 64];
        let mut origin = ORIGIN_NONE;
        for i in 0..len {
            let at = start + i;
            if at < pk.end() {
                d[i] = pk.b[at];
                k[i] = pk.k[at];
                if pk.k[at] != 0xff && origin == ORIGIN_NONE {
                    origin = pk.org[at];
                }
                if pk.asm[at] != 0 {
                    st.assume |= 1 << (pk.asm[at] - 1);
                }
            } else if origin == ORIGIN_NONE {
                origin = if pk.l4 == L4::Tcp {
                    ORIGIN_TCPOPT
                } else {
                    ORIGIN_PAYLOAD
                };
            }
        }
        st.rset(dreg, &d[..len], &k[..len], origin);
        Flow::Next
    }

    pub(super) fn meta(&self, st: &mut St, key: MetaKey, dreg: u8) -> Flow {
        if let Some(f) = self.dev_meta(st, key, dreg) {
            return f;
        }
        let p = self.probe;
        let v6 = st.pkt.v6;
        match key {
            MetaKey::Len => match (st.pkt.l4, p.payload_len) {
                (L4::Udp, Some(l)) => st.store32(dreg, (st.pkt.nh + 8) as u32 + u32::from(l)),
                (L4::Tcp, _) => {
                    st.set_assume(A_SYNOPTS);
                    st.store32(dreg, (st.pkt.nh + SYN_TCP_LEN) as u32)
                }
                _ => st.runknown(dreg, 4, ORIGIN_LEN),
            },
            MetaKey::Protocol => st.store16(dreg, if v6 { [0x86, 0xdd] } else { [0x08, 0x00] }),
            MetaKey::Priority => st.store32(dreg, st.skb_prio),
            MetaKey::Mark => {
                let (m, k) = (st.mark, st.mark_k);
                st.rset(dreg, &m.to_ne_bytes(), &k.to_ne_bytes(), ORIGIN_OPAQUE);
            }
            MetaKey::Iif => st.store32(dreg, p.iif.index),
            MetaKey::Iifname => st.rstore(dreg, &ifname(&p.iif.name)),
            MetaKey::Iiftype => st.store16(dreg, p.iif.iftype.to_ne_bytes()),
            MetaKey::Nftrace => st.store8(dreg, 0),
            MetaKey::Rtclassid => {
                if st.hook != Hook::Input {
                    return Flow::Break;
                }
                st.store32(dreg, 0)
            }
            MetaKey::Secmark => st.store32(dreg, 0),
            MetaKey::Nfproto => {
                let n = if self.chain_family(st.chain) == Family::Netdev {
                    5
                } else if v6 {
                    10
                } else {
                    2
                };
                st.store8(dreg, n)
            }
            MetaKey::L4proto => st.store8(dreg, st.pkt.l4.proto()),
            MetaKey::Pkttype => st.store8(dreg, st.pkttype),
            MetaKey::Cpu => st.runknown(dreg, 4, ORIGIN_CPU),
            MetaKey::Iifgroup => match self.r.by_name(&p.iif.name) {
                Some(i) => st.store32(dreg, self.r.interface(i).group),
                None => {
                    st.set_assume(A_GROUP);
                    st.store32(dreg, 0)
                }
            },
            MetaKey::Prandom => st.runknown(dreg, 4, ORIGIN_RANDOM),
            MetaKey::Secpath => {
                st.set_assume(A_SECPATH);
                st.store8(dreg, 0)
            }
            MetaKey::Iifkind => {
                match self
                    .r
                    .by_name(&p.iif.name)
                    .and_then(|i| self.r.interface(i).kind.clone())
                {
                    Some(k) => st.rstore(dreg, &ifname(&k)),
                    None => st.runknown(dreg, 16, ORIGIN_IFKIND),
                }
            }
            MetaKey::TimeNs | MetaKey::TimeDay | MetaKey::TimeHour => match self.now {
                None if key == MetaKey::TimeNs => st.runknown(dreg, 8, ORIGIN_TIME),
                None => st.runknown(dreg, 4, ORIGIN_TIME),
                Some(c) => {
                    st.timed = true;
                    match key {
                        MetaKey::TimeNs => st.rstore(dreg, &c.nft_time().to_ne_bytes()),
                        MetaKey::TimeDay => st.store8(dreg, c.nft_day()),
                        _ => st.store32(dreg, c.nft_hour()),
                    }
                }
            },
            MetaKey::Sdif => st.store32(dreg, 0),
            MetaKey::Sdifname => st.rstore(dreg, &[0u8; 16]),
            // No output device, no socket, no bridge on the input path.
            MetaKey::Oif
            | MetaKey::Oifname
            | MetaKey::Oiftype
            | MetaKey::Oifgroup
            | MetaKey::Oifkind
            | MetaKey::Skuid
            | MetaKey::Skgid
            | MetaKey::Cgroup
            | MetaKey::BriIifname
            | MetaKey::BriOifname => return Flow::Break,
            MetaKey::Other(n) => {
                return fork(
                    smallvec![Choice::NoMatch, Choice::Tainted],
                    format!("meta key {n} is not modelled"),
                )
            }
        }
        Flow::Next
    }

    pub(super) fn ct(&self, st: &mut St, key: CtKey, dir: Option<u8>, dreg: u8) -> Flow {
        if st.ct_taint && matches!(key, CtKey::State | CtKey::Status) {
            st.runknown(dreg, 4, ORIGIN_OPAQUE);
            return Flow::Next;
        }
        if key == CtKey::State {
            let s = match st.ct {
                Ct::None => 1,
                Ct::Untracked => 64,
                Ct::New | Ct::Template => 8,
                Ct::Established => 2,
            };
            st.store32(dreg, s);
            return Flow::Next;
        }
        if st.ct == Ct::Established {
            return fork(
                smallvec![Choice::NoMatch, Choice::Tainted],
                format!("ct {key:?} of an established connection is not modelled"),
            );
        }
        if key == CtKey::Zone && matches!(st.ct, Ct::New | Ct::Template) {
            if st.ct_assumed {
                st.set_assume(A_ZONE);
            }
            // nf_ct_zone_id: the zone in a direction it does not apply
            // to reads as the default zone 0.
            let applies = match dir {
                Some(d @ (0 | 1)) => st.zone_dir & (1 << d) != 0,
                _ => true,
            };
            let (z, k) = if applies {
                (st.zone, st.zone_k)
            } else {
                (0, !0)
            };
            let (z, k) = (z.to_ne_bytes(), k.to_ne_bytes());
            st.rset(
                dreg,
                &[z[0], z[1], 0, 0],
                &[k[0], k[1], 0xff, 0xff],
                ORIGIN_OPAQUE,
            );
            return Flow::Next;
        }
        if st.ct == Ct::Template {
            return fork(
                smallvec![Choice::NoMatch, Choice::Tainted],
                format!("ct {key:?} of a conntrack template (ct zone set before conntrack) is not modelled"),
            );
        }
        if st.ct != Ct::New {
            return Flow::Break;
        }
        let p = self.probe;
        let v6 = st.pkt.v6;
        let reply = dir == Some(1);
        // Tuples: original = the probe as it arrived; reply = the inverse of
        // the packet as translated so far.
        let (src, dst, sp, dp) = if reply {
            (
                st.pkt.daddr(),
                st.pkt.saddr(),
                st.pkt.dport(),
                st.pkt.sport(),
            )
        } else {
            (Some(p.saddr), Some(p.daddr), Some(p.sport), Some(p.dport))
        };
        let addr = |st: &mut St, a: Option<IpAddr>, want_v6: Option<bool>| -> Flow {
            if want_v6.is_some_and(|w| w != v6) {
                return Flow::Break;
            }
            match a {
                Some(IpAddr::V4(a)) => st.rstore(dreg, &a.octets()),
                Some(IpAddr::V6(a)) => st.rstore(dreg, &a.octets()),
                None => st.runknown(dreg, if v6 { 16 } else { 4 }, ORIGIN_OPAQUE),
            }
            Flow::Next
        };
        match key {
            CtKey::State => unreachable!("handled above"),
            CtKey::Direction => st.store8(dreg, 0),
            CtKey::Status => st.store32(dreg, st.ct_status),
            CtKey::Mark => {
                let (m, k) = (st.ct_mark, st.ct_mark_k);
                st.rset(dreg, &m.to_ne_bytes(), &k.to_ne_bytes(), ORIGIN_OPAQUE);
            }
            CtKey::Secmark => st.store32(dreg, 0),
            CtKey::Helper => {
                st.set_assume(A_HELPER);
                return Flow::Break;
            }
            CtKey::L3protocol => st.store8(dreg, if v6 { 10 } else { 2 }),
            CtKey::Protocol => st.store8(dreg, st.pkt.l4.proto()),
            CtKey::Src => return addr(st, src, None),
            CtKey::Dst => return addr(st, dst, None),
            CtKey::SrcIp => return addr(st, src, Some(false)),
            CtKey::DstIp => return addr(st, dst, Some(false)),
            CtKey::SrcIp6 => return addr(st, src, Some(true)),
            CtKey::DstIp6 => return addr(st, dst, Some(true)),
            CtKey::ProtoSrc | CtKey::ProtoDst => {
                match if key == CtKey::ProtoSrc { sp } else { dp } {
                    Some(port) => st.store16(dreg, port.to_be_bytes()),
                    None => st.runknown(dreg, 2, ORIGIN_OPAQUE),
                }
            }
            CtKey::Labels => {
                if st.ct_assumed {
                    st.set_assume(A_ZONE);
                }
                let (d, k) = (st.labels, st.labels_k);
                st.rset(dreg, &d, &k, ORIGIN_OPAQUE);
            }
            CtKey::Zone => unreachable!("handled above"),
            CtKey::Pkts | CtKey::Bytes => st.runknown(dreg, 8, ORIGIN_CTINFO),
            CtKey::Avgpkt | CtKey::Expiration | CtKey::Eventmask | CtKey::Id => {
                st.runknown(dreg, 4, ORIGIN_CTINFO)
            }
            CtKey::Other(n) => {
                return fork(
                    smallvec![Choice::NoMatch, Choice::Tainted],
                    format!("ct key {n} is not modelled"),
                )
            }
        }
        Flow::Next
    }

    pub(super) fn lookup(
        &self,
        st: &mut St,
        set: u32,
        sreg: u8,
        dst: Option<Dst>,
        invert: bool,
    ) -> Flow {
        let s = &self.p.sets[set as usize];
        let (key, known) = st.rget(sreg, s.klen);
        if known.iter().all(|k| *k == 0xff) {
            let hit = overlay_get(&st.overlay, set, key).unwrap_or_else(|| s.find(key).is_some());
            let idx = if hit { s.find(key) } else { None };
            return match dst {
                None => {
                    if (hit ^ invert) || s.catchall.is_some() {
                        Flow::Next
                    } else {
                        Flow::Break
                    }
                }
                Some(d) => {
                    if hit && idx.is_none() {
                        // Added by this packet's dynset: its data is in the overlay.
                        if let Some(data) = overlay_data(&st.overlay, set, key) {
                            if let Dst::Reg(r) = d {
                                st.rstore(r, &data);
                                return Flow::Next;
                            }
                        }
                        return Flow::Unknown(format!(
                            "map {} element added by this packet has unknown data",
                            s.name
                        ));
                    }
                    match (idx, &s.catchall) {
                        (Some(i), _) => self.apply_elem(st, set, Some(i as u32), Some(d)),
                        (None, Some(_)) => self.apply_elem(st, set, None, Some(d)),
                        (None, None) => Flow::Break,
                    }
                }
            };
        }
        // Partly known key: which elements could it be?
        let origin = ORIGINS[st.origin_of(sreg, s.klen) as usize];
        let (cands, certain) = candidates(s, key, known, 16);
        let what = format!("a lookup in set {} depends on {origin}", s.name);
        if cands.len() > 16 {
            return Flow::Unknown(what);
        }
        match dst {
            None => {
                let may_hit = !cands.is_empty();
                let may_miss = !certain;
                let matched = |hit: bool| (hit ^ invert) || s.catchall.is_some();
                match (may_hit, may_miss) {
                    (true, false) => bool_flow(matched(true)),
                    (false, _) => bool_flow(matched(false)),
                    (true, true) if matched(true) == matched(false) => bool_flow(matched(true)),
                    _ => fork2(what),
                }
            }
            Some(_) => {
                let mut ch: SmallVec<[Choice; 4]> =
                    cands.iter().map(|i| Choice::Elem(*i)).collect();
                if !certain {
                    ch.push(if s.catchall.is_some() {
                        Choice::Catchall
                    } else {
                        Choice::NoMatch
                    });
                }
                if ch.len() == 1 {
                    return self.forced(
                        st,
                        &Op::Lookup {
                            set,
                            sreg,
                            dst,
                            invert,
                        },
                        ch[0],
                    );
                }
                fork(ch, what)
            }
        }
    }

    pub(super) fn apply_elem(
        &self,
        st: &mut St,
        set: u32,
        i: Option<u32>,
        dst: Option<Dst>,
    ) -> Flow {
        let s = &self.p.sets[set as usize];
        let data = match i {
            Some(i) => s.elem_data(i as usize),
            None => s.catchall.as_ref().unwrap_or(&CData::None),
        };
        match (dst, data) {
            (None, _) => Flow::Next,
            (Some(Dst::Verdict), CData::Verdict(v)) => Flow::Verdict(*v),
            (Some(Dst::Reg(r)), CData::Value(v)) => {
                st.rstore(r, v);
                Flow::Next
            }
            _ => Flow::Unknown(format!("map {} element without usable data", s.name)),
        }
    }

    pub(super) fn quota(
        &self,
        st: &mut St,
        name: Option<&str>,
        bytes: u64,
        consumed: u64,
        invert: bool,
    ) -> Flow {
        let over = consumed >= bytes;
        let note = format!(
            "quota{}: {consumed} of {bytes} bytes used when the snapshot was taken; the probe is assumed {} it",
            name.map(|n| format!(" {n:?}")).unwrap_or_default(),
            if over { "over" } else { "under" }
        );
        if !st.notes.contains(&note) {
            st.notes.push(note);
        }
        bool_flow(over == invert)
    }

    pub(super) fn obj(&self, st: &mut St, o: &Obj) -> Flow {
        match o {
            Obj::Nop => Flow::Next,
            Obj::Quota {
                name,
                bytes,
                consumed,
                invert,
            } => self.quota(st, Some(name), *bytes, *consumed, *invert),
            Obj::Limit { invert } => {
                st.set_assume(A_LIMIT);
                bool_flow(!invert)
            }
            Obj::Unknown(what) => fork(opaque_choices(Opacity::Any), format!("{what}")),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn dynset(
        &self,
        st: &mut St,
        set: u32,
        op: u32,
        key: u8,
        data: Option<u8>,
        exprs: &[Op],
        invert: bool,
    ) -> Flow {
        let s = &self.p.sets[set as usize];
        if !st.fully_known(key, s.klen) {
            return fork2(format!(
                "a dynamic set update of {} depends on {}",
                s.name,
                ORIGINS[st.origin_of(key, s.klen) as usize]
            ));
        }
        let k: SmallVec<[u8; 16]> = SmallVec::from_slice(st.rget(key, s.klen).0);
        if op == 2 {
            st.overlay.push((set, k, false, None));
            return Flow::Next;
        }
        let d = data.map(|r| SmallVec::from_slice(st.rget(r, s.dlen).0));
        st.overlay.push((set, k, true, d));
        st.set_assume(A_DYNSET);
        for e in exprs {
            let f = match e {
                Op::Limit { invert } => {
                    st.set_assume(A_LIMIT);
                    bool_flow(!invert)
                }
                Op::Connlimit { count, invert } => {
                    st.set_assume(A_CONNLIMIT);
                    bool_flow(!((1 > *count) ^ invert))
                }
                Op::Quota { bytes, invert, .. } => bool_flow((*bytes == 0) == *invert),
                _ => Flow::Next,
            };
            if matches!(f, Flow::Break) {
                return Flow::Break;
            }
        }
        bool_flow(!invert)
    }

    pub(super) fn nat(
        &self,
        st: &mut St,
        snat: bool,
        family: u8,
        addr: Option<NatArg<IpAddr>>,
        proto: Option<NatArg<u16>>,
        flags: u32,
    ) -> Flow {
        if flags & NAT_MASQUERADE != 0 {
            return self.masquerade(st, proto);
        }
        let v6 = st.pkt.v6;
        if family != 1 && (family == 10) != v6 {
            return Flow::Next;
        }
        let (aoff, poff) = if snat {
            (st.pkt.saddr_off(), st.pkt.transport())
        } else {
            (st.pkt.daddr_off(), st.pkt.transport() + 2)
        };
        let cur_addr = st.pkt.addr_at(aoff);
        let cur_port = st.pkt.port_at(poff);
        let new_addr = match addr {
            Some(arg) if flags & 1 != 0 || flags & 0x40 != 0 || flags == 0 => {
                let Some((a, b)) = st.nat_addrs(arg, v6) else {
                    return Flow::Unknown("the NAT address is not known".into());
                };
                if flags & 0x40 != 0 {
                    // NETMAP: keep the host part of the original address.
                    let Some(cur) = cur_addr else {
                        return Flow::Unknown("the address to map is not known".into());
                    };
                    Some(netmap(cur, a, b))
                } else {
                    if a != b {
                        st.set_assume(A_NATRANGE);
                    }
                    Some(a)
                }
            }
            _ => None,
        };
        let new_port = match proto {
            Some(arg) => {
                let Some((a, b)) = st.nat_ports(arg) else {
                    return Flow::Unknown("the NAT port is not known".into());
                };
                if flags & 0x20 != 0 {
                    return Flow::Unknown("NAT with a port offset is not modelled".into());
                }
                match cur_port {
                    Some(c) if a != b && (a..=b).contains(&c) && !snat => Some(c),
                    _ => {
                        if a != b {
                            st.set_assume(A_NATRANGE);
                        }
                        Some(a)
                    }
                }
            }
            None => None,
        };
        if let Some(a) = new_addr {
            st.pkt.set_addr(aoff, a);
        }
        if let Some(p) = new_port {
            st.pkt.set_port(poff, p);
        }
        self.rewritten(st);
        st.mapped = true;
        st.ct_status |= if snat {
            IPS_SRC_NAT | IPS_SRC_NAT_DONE
        } else {
            IPS_DST_NAT | IPS_DST_NAT_DONE
        };
        st.nat = Some(NatRec {
            kind: if snat { "snat" } else { "dnat" },
            addr: new_addr
                .or(cur_addr)
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            port: new_port.or(cur_port).unwrap_or(0),
            chain: st.chain,
            rule: st.rule,
        });
        Flow::Verdict(CVerdict::Accept)
    }

    pub(super) fn redir(&self, st: &mut St, proto: Option<NatArg<u16>>) -> Flow {
        if !self.r.known() {
            return Flow::Unknown(
                "redirect: the input interface's address is not known (no routes given)".into(),
            );
        }
        let Some(a) = self
            .redirect_local(st)
            .or_else(|| self.r.primary_addr(&self.probe.iif.name, st.pkt.v6))
        else {
            // No address on the input interface: NF_DROP.
            return Flow::Verdict(CVerdict::Drop);
        };
        let poff = st.pkt.transport() + 2;
        let port = match proto {
            Some(arg) => {
                let Some((x, y)) = st.nat_ports(arg) else {
                    return Flow::Unknown("the redirect port is not known".into());
                };
                if x != y {
                    st.set_assume(A_NATRANGE);
                }
                Some(x)
            }
            None => None,
        };
        let daddr_off = st.pkt.daddr_off();
        st.pkt.set_addr(daddr_off, a);
        if let Some(p) = port {
            st.pkt.set_port(poff, p);
        }
        self.rewritten(st);
        st.mapped = true;
        st.ct_status |= IPS_DST_NAT | IPS_DST_NAT_DONE;
        st.nat = Some(NatRec {
            kind: "redirect",
            addr: a,
            port: port.or(st.pkt.dport()).unwrap_or(0),
            chain: st.chain,
            rule: st.rule,
        });
        Flow::Verdict(CVerdict::Accept)
    }

    pub(super) fn fib(&self, st: &mut St, flags: u32, result: u32, dreg: u8) -> Flow {
        const DADDR: u32 = 2;
        const IIF: u32 = 8;
        const OIF: u32 = 16;
        const PRESENT: u32 = 32;
        let width = if result == 2 { 16 } else { 4 };
        if !self.r.known() {
            st.runknown(dreg, width, ORIGIN_FIB);
            return Flow::Next;
        }
        let (Some(saddr), Some(daddr)) = (st.pkt.saddr(), st.pkt.daddr()) else {
            st.runknown(dreg, width, ORIGIN_OPAQUE);
            return Flow::Next;
        };
        let iif = &self.probe.iif;
        // The output device is NULL on the input path, the input device on
        // the output path.
        let out_dev = self.out_dev(st);
        let dev: Option<&str> = if flags & OIF != 0 {
            out_dev.as_deref()
        } else if flags & IIF != 0 && st.out.is_some() {
            None
        } else if flags & IIF != 0 {
            Some(iif.name.as_str())
        } else {
            None
        };
        let target = if flags & DADDR != 0 { daddr } else { saddr };
        if result == 3 {
            let t = match target {
                IpAddr::V4(a) => self.r.addr_type_v4(a, dev),
                IpAddr::V6(a) => self.r.addr_type_v6(a, dev),
            };
            st.store32(dreg, t);
            return Flow::Next;
        }
        let present = flags & PRESENT != 0;
        let store = |st: &mut St, found: Option<&str>| match (result, found) {
            (_, f) if present => st.store8(dreg, u8::from(f.is_some())),
            (1, None) => st.store32(dreg, 0),
            (1, Some(name)) => match self.ifindex(name) {
                Some(i) => st.store32(dreg, i),
                None => st.runknown(dreg, 4, ORIGIN_IFINDEX),
            },
            (_, None) => st.rstore(dreg, &[0u8; 16]),
            (_, Some(name)) => st.rstore(dreg, &ifname(name)),
        };
        let loopback = iif.iftype == ARPHRD_LOOPBACK;
        let oif = dev;
        match target {
            IpAddr::V4(_) => {
                if st.hook == Hook::Prerouting && loopback {
                    store(st, Some(&iif.name));
                    return Flow::Next;
                }
                if let (IpAddr::V4(s), IpAddr::V4(d)) = (saddr, daddr) {
                    let o = d.octets();
                    if s.octets()[0] == 0
                        && (d.is_broadcast() || (o[0] == 224 && o[1] == 0 && o[2] == 0))
                    {
                        store(st, Some(&iif.name));
                        return Flow::Next;
                    }
                }
            }
            IpAddr::V6(_) => {
                if matches!(st.hook, Hook::Prerouting | Hook::Ingress) && loopback {
                    store(st, Some(&iif.name));
                    return Flow::Next;
                }
            }
        }
        let restrict = if is_link_local(target) {
            Some(oif.unwrap_or(iif.name.as_str()))
        } else {
            None
        };
        let found = match self.r.lookup(target, restrict) {
            Lookup::None => None,
            Lookup::Found(e) => match e.kind {
                RouteKind::Blackhole | RouteKind::Unreachable | RouteKind::Prohibit => None,
                RouteKind::Local => None,
                _ => match (oif, e.dev_name.as_deref()) {
                    (_, None) => None,
                    (Some(o), Some(d)) if o != d => None,
                    (_, Some(d)) => Some(d),
                },
            },
        };
        store(st, found);
        Flow::Next
    }

    pub(super) fn ifindex(&self, name: &str) -> Option<u32> {
        if name == self.probe.iif.name {
            return Some(self.probe.iif.index);
        }
        self.r.by_name(name).map(|i| self.r.interface(i).index)
    }

    pub(super) fn socket(&self, st: &mut St, key: u32, dreg: u8) -> Flow {
        if st.out.is_some() {
            return fork(
                smallvec![Choice::NoMatch, Choice::Tainted],
                "the sending socket is not modelled".into(),
            );
        }
        let (Some(d), Some(port)) = (st.pkt.daddr(), st.pkt.dport()) else {
            return fork(
                smallvec![Choice::NoMatch, Choice::Tainted],
                "a socket lookup depends on an unknown destination".into(),
            );
        };
        match self.r.socket(st.pkt.l4, d, port) {
            None => fork(
                smallvec![Choice::NoMatch, Choice::Tainted],
                "a socket lookup needs socket information (none given)".into(),
            ),
            Some(None) => Flow::Break,
            Some(Some(s)) => {
                match key {
                    0 => st.store8(dreg, u8::from(s.transparent)),
                    1 => st.store32(dreg, s.mark),
                    2 => st.store8(dreg, u8::from(s.addr.map_or(true, |a| a.is_unspecified()))),
                    _ => st.runknown(dreg, 4, ORIGIN_SOCKET),
                }
                Flow::Next
            }
        }
    }

    pub(super) fn tproxy(
        &self,
        st: &mut St,
        family: u32,
        addr: Option<u8>,
        port: Option<u8>,
    ) -> Flow {
        let v6 = st.pkt.v6;
        if family != 0 && family != 1 && (family == 10) != v6 {
            return Flow::Break;
        }
        let a = match addr {
            Some(r) => st.read_addr(r, v6),
            None => st.pkt.daddr(),
        };
        let p = match port {
            Some(r) => st.read_port(r),
            None => st.pkt.dport(),
        };
        let (Some(a), Some(p)) = (a, p) else {
            return fork2("tproxy to an unknown address or port".into());
        };
        match self.r.socket(st.pkt.l4, a, p) {
            None => fork2("tproxy needs socket information (none given)".into()),
            Some(Some(s)) if s.transparent => {
                st.tproxied = true;
                Flow::Next
            }
            Some(_) => Flow::Break,
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn exthdr(
        &self,
        st: &mut St,
        op: u32,
        kind: u8,
        offset: usize,
        len: usize,
        present: bool,
        dreg: u8,
    ) -> Flow {
        let absent = |st: &mut St| {
            if present {
                st.store32(dreg, 0);
                Flow::Next
            } else {
                Flow::Break
            }
        };
        match op {
            // IPv6 extension headers
            0 => {
                if !st.pkt.v6 {
                    return fork(
                        smallvec![Choice::NoMatch, Choice::Tainted],
                        "an IPv6 extension header test on an IPv4 packet".into(),
                    );
                }
                if kind == st.pkt.l4.proto() {
                    return fork(
                        smallvec![Choice::NoMatch, Choice::Tainted],
                        "an extension header lookup of the transport header".into(),
                    );
                }
                st.set_assume(A_NOEXT);
                absent(st)
            }
            // TCP options
            1 => {
                if st.pkt.l4 != L4::Tcp {
                    return Flow::Break;
                }
                let Some((opt, known)) = self.syn_option(st, kind) else {
                    return absent(st);
                };
                if present {
                    st.store32(dreg, 1);
                    return Flow::Next;
                }
                if offset + len > opt.len() {
                    return Flow::Break;
                }
                st.rset(
                    dreg,
                    &opt[offset..offset + len],
                    &known[offset..offset + len],
                    ORIGIN_TCPOPT,
                );
                Flow::Next
            }
            // IPv4 options, SCTP chunks, DCCP options
            2 => {
                st.set_assume(A_NOEXT);
                absent(st)
            }
            _ => absent(st),
        }
    }

    /// TCP option `kind` of the probe's SYN (or SYN-ACK) as Linux sends
    /// it (`tcp_options_write`): MSS, SACK permitted, timestamps, a NOP and
    /// window scale (`02 04 MSS | 04 02 08 0a TSVAL TSECR | 01 03 03 WS`,
    /// a 40-byte header), nothing else; the option's bytes and their known
    /// masks (the timestamp value, the echo of a SYN-ACK and the window
    /// shift are unknown). `None`: the option is absent. Records the
    /// assumption.
    pub(super) fn syn_option(&self, st: &mut St, kind: u8) -> Option<(Data, Data)> {
        st.set_assume(A_SYNOPTS);
        let all = |b: &[u8]| Some((Data::from_slice(b), Data::from_slice(&vec![0xff; b.len()])));
        match kind {
            1 => all(&[1]),
            2 => {
                st.set_assume(A_MSS);
                let mss = self
                    .probe
                    .tcp_mss
                    .unwrap_or(if st.pkt.v6 { 1440 } else { 1460 });
                let [hi, lo] = mss.to_be_bytes();
                all(&[2, 4, hi, lo])
            }
            3 => Some((
                Data::from_slice(&[3, 3, 0]),
                Data::from_slice(&[0xff, 0xff, 0]),
            )),
            4 => all(&[4, 2]),
            8 => {
                // TSecr: 0 in a SYN, the peer's timestamp in a SYN-ACK.
                let ecr = if self.probe.established { 0 } else { 0xff };
                Some((
                    Data::from_slice(&[8, 10, 0, 0, 0, 0, 0, 0, 0, 0]),
                    Data::from_slice(&[0xff, 0xff, 0, 0, 0, 0, ecr, ecr, ecr, ecr]),
                ))
            }
            _ => None,
        }
    }

    pub(super) fn xt_match(&self, st: &mut St, info: &XtInfo) -> Option<bool> {
        let pk = &st.pkt;
        let inr = |p: u16, r: [u16; 2]| p >= r[0] && p <= r[1];
        match info {
            XtInfo::Tcp {
                sport,
                dport,
                flg_mask,
                flg_cmp,
                invflags,
                option,
            } => {
                if pk.l4 != L4::Tcp {
                    return None;
                }
                let (sp, dp) = (pk.sport()?, pk.dport()?);
                let flags = pk.b[pk.transport() + 13];
                if pk.asm[pk.transport() + 13] != 0 {
                    st.set_assume(A_SYN);
                }
                // tcp_mt: ports, then flags, then the option (found in
                // the options: true, unless inverted).
                if !(inr(sp, *sport) ^ (invflags & 1 != 0))
                    || !(inr(dp, *dport) ^ (invflags & 2 != 0))
                    || !(((flags & flg_mask) == *flg_cmp) ^ (invflags & 4 != 0))
                {
                    return Some(false);
                }
                if *option == 0 {
                    return Some(true);
                }
                Some(self.syn_option(st, *option).is_some() ^ (invflags & 8 != 0))
            }
            XtInfo::Udp {
                sport,
                dport,
                invflags,
            } => {
                if pk.l4 != L4::Udp {
                    return None;
                }
                let (sp, dp) = (pk.sport()?, pk.dport()?);
                Some(
                    (inr(sp, *sport) ^ (invflags & 1 != 0))
                        && (inr(dp, *dport) ^ (invflags & 2 != 0)),
                )
            }
            XtInfo::Multiport {
                flags,
                ports,
                range,
                invert,
            } => {
                let (sp, dp) = (pk.sport()?, pk.dport()?);
                let hit = |p: u16, lo: u16, hi: u16| p >= lo && p <= hi;
                let mut i = 0;
                while i < ports.len() {
                    let s = ports[i];
                    let e = if range.get(i).copied().unwrap_or(false) {
                        i += 1;
                        *ports.get(i)?
                    } else {
                        s
                    };
                    let m = match flags {
                        0 => hit(sp, s, e),
                        1 => hit(dp, s, e),
                        2 => hit(sp, s, e) || hit(dp, s, e),
                        _ => return None,
                    };
                    if m {
                        return Some(!invert);
                    }
                    i += 1;
                }
                Some(*invert)
            }
            XtInfo::Conntrack {
                match_flags,
                invert_flags,
                state_mask,
                status_mask,
                l4proto,
            } => {
                if st.ct_taint {
                    return None;
                }
                let mut bit: u16 = match st.ct {
                    Ct::None => 1,
                    Ct::Untracked => 16,
                    Ct::New | Ct::Template => 8,
                    Ct::Established => 2,
                };
                if matches!(st.ct, Ct::Established | Ct::Template) && match_flags & !1 != 0 {
                    return None;
                }
                if match_flags & 1 != 0 {
                    if st.ct == Ct::New {
                        if st.ct_status & IPS_SRC_NAT != 0 {
                            bit |= 0x100;
                        }
                        if st.ct_status & IPS_DST_NAT != 0 {
                            bit |= 0x200;
                        }
                    }
                    if (state_mask & bit != 0) == (invert_flags & 1 != 0) {
                        return Some(false);
                    }
                }
                if st.ct != Ct::New {
                    return Some(match_flags & 1 != 0);
                }
                if match_flags & 2 != 0
                    && ((u16::from(pk.l4.proto()) == *l4proto) == (invert_flags & 2 != 0))
                {
                    return Some(false);
                }
                if match_flags & 0x40 != 0
                    && ((u32::from(*status_mask) & st.ct_status != 0) == (invert_flags & 0x40 != 0))
                {
                    return Some(false);
                }
                Some(true)
            }
            XtInfo::State { mask } => {
                if st.ct_taint {
                    return None;
                }
                let bit = match st.ct {
                    Ct::None => 1,
                    Ct::Untracked => 16,
                    Ct::New | Ct::Template => 8,
                    Ct::Established => 2,
                };
                Some(mask & bit != 0)
            }
            XtInfo::Iprange { src, dst, flags } => {
                let test =
                    |r: &Option<[IpAddr; 2]>, a: Option<IpAddr>, inv: bool| -> Option<bool> {
                        match r {
                            None => Some(true),
                            Some([lo, hi]) => {
                                let a = a?;
                                if a.is_ipv6() != lo.is_ipv6() {
                                    return None;
                                }
                                Some((a >= *lo && a <= *hi) ^ inv)
                            }
                        }
                    };
                let s = if flags & 1 != 0 {
                    test(src, pk.saddr(), flags & 0x10 != 0)?
                } else {
                    true
                };
                let d = if flags & 2 != 0 {
                    test(dst, pk.daddr(), flags & 0x20 != 0)?
                } else {
                    true
                };
                Some(s && d)
            }
            XtInfo::Comment { .. } => Some(true),
            XtInfo::Recent {
                hit_count,
                check_set,
                invert,
                name,
                side,
                ..
            } => {
                st.set_assume(A_RECENT);
                let key = (name.as_str(), *side);
                let pos = st.recent.iter().position(|(n, s)| (&**n, *s) == key);
                let matched = match pos {
                    None => {
                        if check_set & 2 != 0 {
                            st.recent.push((name.as_str().into(), *side));
                            true
                        } else {
                            false
                        }
                    }
                    Some(i) => {
                        if check_set & 2 != 0 {
                            true
                        } else if check_set & 8 != 0 {
                            st.recent.remove(i);
                            true
                        } else {
                            *hit_count <= 1
                        }
                    }
                };
                Some(matched ^ invert)
            }
            XtInfo::Limit { .. } => {
                st.set_assume(A_LIMIT);
                Some(true)
            }
            XtInfo::Icmp {
                icmp_type,
                code,
                invflags,
            } => {
                let sp = pk.sport()?;
                let (t, c) = ((sp >> 8) as u8, (sp & 0xff) as u8);
                Some(
                    (*icmp_type == 0xff || (t == *icmp_type && c >= code[0] && c <= code[1]))
                        ^ (invflags & 1 != 0),
                )
            }
            XtInfo::Mark { mark, mask, invert } => {
                if st.mark_k & mask != *mask {
                    return None;
                }
                Some(((st.mark & mask) == *mark) ^ invert)
            }
            XtInfo::Addrtype {
                source,
                dest,
                flags,
            } => {
                if !self.r.known() {
                    return None;
                }
                let out_dev = self.out_dev(st);
                let dev = if flags & 4 != 0 {
                    Some(self.probe.iif.name.as_str())
                } else if flags & 8 != 0 {
                    out_dev.as_deref()
                } else {
                    None
                };
                let (sa, da) = (pk.saddr()?, pk.daddr()?);
                let ty = |a: IpAddr, mask: u16| -> bool {
                    match a {
                        IpAddr::V4(a) => {
                            (1u32 << self.r.addr_type_v4(a, dev)) & u32::from(mask) != 0
                        }
                        IpAddr::V6(a) => addrtype6(self.r, a, dev, mask),
                    }
                };
                if pk.v6 {
                    st.set_assume(A_ADDRTYPE6);
                }
                let mut ok = true;
                if *source != 0 {
                    ok &= ty(sa, *source) ^ (flags & 1 != 0);
                }
                if ok && *dest != 0 {
                    ok &= ty(da, *dest) ^ (flags & 2 != 0);
                }
                Some(ok)
            }
            XtInfo::Hl { mode, value } => {
                // The TTL / hop limit byte of the header, and its assumption.
                let at = pk.net() + if pk.v6 { 7 } else { 8 };
                let (ttl, asm) = (pk.b[at], pk.asm[at]);
                if asm != 0 {
                    st.assume |= 1 << (asm - 1);
                }
                Some(match mode {
                    0 => ttl == *value,
                    1 => ttl != *value,
                    2 => ttl < *value,
                    3 => ttl > *value,
                    _ => return None,
                })
            }
            XtInfo::Time { .. } => {
                let c = self.now?;
                st.timed = true;
                c.xt_time(info)
            }
            XtInfo::Ipv6Rt { .. } => {
                if !pk.v6 {
                    return None;
                }
                // No routing header: ip6t_rt is false whatever its options.
                st.set_assume(A_NOEXT);
                Some(false)
            }
            // length_mt / length_mt6: the IPv4 total length, or the IPv6
            // payload length plus the 40-byte header.
            XtInfo::Length { range, invert } => {
                let nh = pk.nh;
                let len = match (pk.l4, self.probe.payload_len) {
                    (L4::Tcp, _) => {
                        st.set_assume(A_SYNOPTS);
                        nh + SYN_TCP_LEN
                    }
                    (L4::Udp, Some(l)) => nh + 8 + usize::from(l),
                    (L4::Udp, None) => return None,
                };
                Some((usize::from(range[0]) <= len && len <= usize::from(range[1])) ^ invert)
            }
            // tcpmss_mt: the MSS option's value in range; without one, the
            // inversion.
            XtInfo::Tcpmss { range, invert } => {
                if pk.l4 != L4::Tcp {
                    return None;
                }
                let (opt, _) = self.syn_option(st, 2)?;
                let mss = u16::from_be_bytes([opt[2], opt[3]]);
                Some((range[0] <= mss && mss <= range[1]) ^ invert)
            }
            // ecn_mt4 / ecn_mt6: the IP ECN bits, then the TCP ECE and CWR
            // flags.
            XtInfo::Ecn {
                operation,
                invert,
                ip_ect,
            } => {
                let n = pk.net();
                let tos = if pk.v6 {
                    (pk.b[n] << 4) | (pk.b[n + 1] >> 4)
                } else {
                    pk.b[n + 1]
                };
                let (tos_asm, flags_at) = (pk.asm[n + 1], pk.transport() + 13);
                let flags = pk.b[flags_at];
                if operation & 1 != 0 {
                    if tos_asm != 0 {
                        st.assume |= 1 << (tos_asm - 1);
                    }
                    if ((tos & 3) == *ip_ect) == (invert & 1 != 0) {
                        return Some(false);
                    }
                }
                if operation & 0x30 != 0 {
                    if pk.l4 != L4::Tcp {
                        return None;
                    }
                    if st.pkt.asm[flags_at] != 0 {
                        st.set_assume(A_SYN);
                    }
                    for (op, bit) in [(0x10u8, 0x40u8), (0x20, 0x80)] {
                        if operation & op != 0 && ((flags & bit != 0) == (invert & op != 0)) {
                            return Some(false);
                        }
                    }
                }
                Some(true)
            }
            // devgroup_mt: the input (or output) device's group under the
            // mask.
            XtInfo::Devgroup { flags, src, dst } => {
                let group = |st: &mut St, name: &str| match self.r.by_name(name) {
                    Some(i) => self.r.interface(i).group,
                    None => {
                        st.set_assume(A_GROUP);
                        0
                    }
                };
                if flags & 1 != 0 {
                    let g = group(st, &self.probe.iif.name);
                    if ((src[0] ^ g) & src[1] != 0) ^ (flags & 4 != 0) {
                        return Some(false);
                    }
                }
                if flags & 2 != 0 {
                    let dev = self.out_dev(st)?;
                    let g = group(st, &dev);
                    if ((dst[0] ^ g) & dst[1] != 0) ^ (flags & 8 != 0) {
                        return Some(false);
                    }
                }
                Some(true)
            }
            // mac_mt: false on a non-Ethernet device; the peer's MAC address
            // is not known.
            XtInfo::Mac { .. } => {
                if st.out.is_none() && self.probe.iif.iftype != ARPHRD_ETHER {
                    return Some(false);
                }
                None
            }
            XtInfo::Rpfilter { flags } => self.xt_rpfilter(st, *flags),
            // helper_mt: the helper of the connection's master; a new
            // connection that no helper expected has none.
            XtInfo::Helper { invert, .. } => {
                st.set_assume(A_HELPER);
                Some(*invert)
            }
            // statistic_mt: certain only at the extremes (a probability of
            // 0 or 1, every packet).
            XtInfo::Statistic {
                mode,
                invert,
                probability,
                every,
            } => match mode {
                0 if *probability == 0 => Some(*invert),
                0 if *probability >= 0x8000_0000 => Some(!invert),
                1 if *every == 0 => Some(!invert),
                _ => None,
            },
            _ => None,
        }
    }

    /// `rpfilter_mt` / `rpfilter_mt6`: the route back to the source must be
    /// unicast (or local, with `--accept-local`) and, unless `--loose`,
    /// leave through the input interface. `None` without routes.
    fn xt_rpfilter(&self, st: &mut St, flags: u8) -> Option<bool> {
        const LOOSE: u8 = 1;
        const ACCEPT_LOCAL: u8 = 4;
        const INVERT: u8 = 8;
        if !self.r.known() || st.out.is_some() {
            return None;
        }
        let invert = flags & INVERT != 0;
        let iif = &self.probe.iif;
        if iif.iftype == ARPHRD_LOOPBACK {
            return Some(!invert);
        }
        let (saddr, daddr) = (st.pkt.saddr()?, st.pkt.daddr()?);
        if let (IpAddr::V4(s), IpAddr::V4(d)) = (saddr, daddr) {
            let o = d.octets();
            if s.octets()[0] == 0 && (d.is_broadcast() || (o[0] == 224 && o[1] == 0 && o[2] == 0)) {
                return Some(!invert);
            }
        }
        // IPv6: a link-local source is looked up on the input interface.
        let dev = (saddr.is_ipv6() && crate::host::model::is_link_local(saddr))
            .then_some(iif.name.as_str());
        let ok = match self.r.lookup(saddr, dev) {
            // rpfilter_lookup_reverse6: a local route decides alone.
            Lookup::Found(e) if saddr.is_ipv6() && e.kind == RouteKind::Local => {
                flags & ACCEPT_LOCAL != 0
            }
            Lookup::Found(e) => {
                let kind_ok = match e.kind {
                    RouteKind::Unicast => true,
                    RouteKind::Local => flags & ACCEPT_LOCAL != 0,
                    _ => false,
                };
                kind_ok && (flags & LOOSE != 0 || e.dev_name.as_deref() == Some(iif.name.as_str()))
            }
            Lookup::None => false,
        };
        Some(ok ^ invert)
    }

    pub(super) fn xt_target(&self, st: &mut St, info: &XtInfo) -> Flow {
        match info {
            XtInfo::Reject { with } => {
                let v6 = self.chain_family(st.chain) == Family::Ip6;
                st.reject = Some((true, u32::from(v6), *with));
                Flow::Verdict(CVerdict::Drop)
            }
            XtInfo::Log { .. } => Flow::Next,
            XtInfo::MarkSet { mark, mask } => {
                st.mark = ((st.mark & !mask) ^ mark) & (st.mark_k | mask);
                st.mark_k |= mask;
                Flow::Next
            }
            other => fork(
                opaque_choices(Opacity::Any),
                format!("{} is not understood", xt_name(other)),
            ),
        }
    }
}

pub(super) fn bool_flow(b: bool) -> Flow {
    if b {
        Flow::Next
    } else {
        Flow::Break
    }
}

pub(super) fn xt_name(info: &XtInfo) -> String {
    match info {
        XtInfo::Statistic { mode: 0, .. } => return "xt statistic --mode random".into(),
        XtInfo::Statistic { mode: 1, .. } => {
            return "xt statistic --mode nth (the count of earlier packets)".into()
        }
        XtInfo::String { pattern, .. } => {
            return format!("xt string {pattern:?} (the packet's payload)")
        }
        XtInfo::Socket { .. } => {
            return "xt socket (whether a matching socket exists when the packet arrives)".into()
        }
        XtInfo::Mac { .. } => return "xt mac (the peer's MAC address is not known)".into(),
        XtInfo::Length { .. } => return "xt length (the UDP payload length is not given)".into(),
        _ => {}
    }
    let v = serde_json::to_value(info).ok();
    let kind = v
        .as_ref()
        .and_then(|v| v.get("kind"))
        .and_then(|k| k.as_str())
        .unwrap_or("?");
    format!("xt {kind}")
}

/// `match_type6` of xt_addrtype, from the routes.
pub(super) fn addrtype6(r: &RouteIndex, a: Ipv6Addr, dev: Option<&str>, mask: u16) -> bool {
    const UNSPEC: u16 = 1;
    const UNICAST: u16 = 2;
    const LOCAL: u16 = 4;
    const ANYCAST: u16 = 16;
    const MULTICAST: u16 = 32;
    const UNREACHABLE: u16 = 128;
    if mask & MULTICAST != 0 && !a.is_multicast() {
        return false;
    }
    if mask & UNICAST != 0 && (a.is_multicast() || a.is_unspecified()) {
        return false;
    }
    if mask & UNSPEC != 0 && !a.is_unspecified() {
        return false;
    }
    if mask & (LOCAL | ANYCAST | UNREACHABLE) != 0 {
        let t = r.addr_type_v6(a, dev);
        let bits = match t {
            crate::host::rtn::LOCAL => LOCAL,
            crate::host::rtn::UNREACHABLE
            | crate::host::rtn::BLACKHOLE
            | crate::host::rtn::PROHIBIT => UNREACHABLE,
            _ => 0,
        };
        return mask & bits != 0;
    }
    true
}

pub(super) fn netmap(cur: IpAddr, min: IpAddr, max: IpAddr) -> IpAddr {
    match (cur, min, max) {
        (IpAddr::V4(c), IpAddr::V4(lo), IpAddr::V4(hi)) => {
            let (c, lo, hi) = (u32::from(c), u32::from(lo), u32::from(hi));
            let mask = !(lo ^ hi);
            IpAddr::V4(Ipv4Addr::from((c & !mask) | (lo & mask)))
        }
        (IpAddr::V6(c), IpAddr::V6(lo), IpAddr::V6(hi)) => {
            let (c, lo, hi) = (u128::from(c), u128::from(lo), u128::from(hi));
            let mask = !(lo ^ hi);
            IpAddr::V6(Ipv6Addr::from((c & !mask) | (lo & mask)))
        }
        _ => min,
    }
}

pub(in crate::eval) fn ifname(name: &str) -> [u8; 16] {
    let mut b = [0u8; 16];
    let n = name.len().min(15);
    b[..n].copy_from_slice(&name.as_bytes()[..n]);
    b
}

pub(super) fn overlay_get(o: &Overlay, set: u32, key: &[u8]) -> Option<bool> {
    o.iter()
        .rev()
        .find(|(s, k, _, _)| *s == set && k.as_slice() == key)
        .map(|(_, _, present, _)| *present)
}

pub(super) fn overlay_data(o: &Overlay, set: u32, key: &[u8]) -> Option<SmallVec<[u8; 16]>> {
    o.iter()
        .rev()
        .find(|(s, k, _, _)| *s == set && k.as_slice() == key)
        .and_then(|(_, _, _, d)| d.clone())
}

/// Elements a partly known key could hit, and whether one of them is
/// certain to be hit.
pub(super) fn candidates(
    s: &crate::eval::compile::SetInfo,
    key: &[u8],
    known: &[u8],
    limit: usize,
) -> (SmallVec<[u32; 4]>, bool) {
    let min: SmallVec<[u8; 16]> = key.iter().zip(known).map(|(d, k)| d & k).collect();
    let max: SmallVec<[u8; 16]> = key.iter().zip(known).map(|(d, k)| (d & k) | !k).collect();
    let mut out = SmallVec::new();
    let mut certain = false;
    let parts: Vec<(usize, usize)> = match &s.kind {
        SetKind::Concat(p) => p.clone(),
        _ => vec![(0, s.klen)],
    };
    for i in 0..s.n {
        let (st, en) = (s.start(i), s.end(i));
        let (possible, sure) = match s.kind {
            SetKind::Exact => (
                st.iter()
                    .zip(key)
                    .zip(known)
                    .all(|((e, d), k)| (e ^ d) & k == 0),
                false,
            ),
            _ => {
                let mut poss = true;
                let mut sure = true;
                for &(o, l) in &parts {
                    let r = o..o + l;
                    let (lo, hi) = (&min[r.clone()], &max[r.clone()]);
                    if hi < &st[r.clone()] || lo > &en[r.clone()] {
                        poss = false;
                    }
                    if !(lo >= &st[r.clone()] && hi <= &en[r]) {
                        sure = false;
                    }
                }
                (poss, poss && sure)
            }
        };
        if possible {
            out.push(i as u32);
            certain |= sure;
            if out.len() > limit {
                break;
            }
        }
    }
    if certain {
        out.retain(|i| {
            let i = *i as usize;
            parts.iter().all(|&(o, l)| {
                let r = o..o + l;
                min[r.clone()] >= s.start(i)[r.clone()] && max[r.clone()] <= s.end(i)[r]
            })
        });
    }
    (out, certain)
}

pub(super) fn bitwise(st: &mut St, sreg: u8, dreg: u8, len: usize, kind: &BitKind) {
    let words = len.div_ceil(4);
    let (s, d) = (sreg as usize, dreg as usize);
    let (src_d, src_k, src_org) = (st.d, st.k, st.org);
    match kind {
        BitKind::Bool { mask, xor } => {
            for i in 0..words * 4 {
                let m = mask.get(i).copied().unwrap_or(0);
                let x = xor.get(i).copied().unwrap_or(0);
                let k = src_k[s + i] | !m;
                st.k[d + i] = k;
                st.d[d + i] = ((src_d[s + i] & m) ^ x) & k;
            }
        }
        BitKind::Shl(n) | BitKind::Shr(n) => {
            let word = |a: &[u8; 64], i: usize| {
                u32::from_ne_bytes(a[s + i * 4..s + i * 4 + 4].try_into().expect("4 bytes"))
            };
            let left = matches!(kind, BitKind::Shl(_));
            let shift = |vals: &mut [u32]| {
                let mut carry = 0u32;
                if left {
                    for v in vals.iter_mut().rev() {
                        let x = *v;
                        *v = x.checked_shl(*n).unwrap_or(0) | carry;
                        carry = x.checked_shr(32 - n).unwrap_or(0);
                    }
                } else {
                    for v in vals.iter_mut() {
                        let x = *v;
                        *v = carry | x.checked_shr(*n).unwrap_or(0);
                        carry = x.checked_shl(32 - n).unwrap_or(0);
                    }
                }
            };
            let mut vd: SmallVec<[u32; 16]> = (0..words).map(|i| word(&src_d, i)).collect();
            let mut vu: SmallVec<[u32; 16]> = (0..words).map(|i| !word(&src_k, i)).collect();
            shift(&mut vd);
            shift(&mut vu);
            for i in 0..words {
                let k = !vu[i];
                st.k[d + i * 4..d + i * 4 + 4].copy_from_slice(&k.to_ne_bytes());
                st.d[d + i * 4..d + i * 4 + 4].copy_from_slice(&(vd[i] & k).to_ne_bytes());
            }
        }
    }
    for w in 0..words {
        if let Some(o) = src_org.get(s / 4 + w) {
            st.org[d / 4 + w] = *o;
        }
    }
}
