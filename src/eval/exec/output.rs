//! The output path in the interpreter (see `crate::eval::output`): the
//! state a locally generated packet starts with, the output device and the
//! re-routing after `route` chains and output NAT, the device keys of
//! `meta` on either path, `masquerade`, and the hand-over to the input path
//! for a local destination.

use super::*;
use crate::eval::output::{OutProbe, Step};
use crate::eval::Iface;

/// The output path's part of the state.
#[derive(Clone, Debug)]
pub(in crate::eval) struct OutSt {
    /// The output device.
    oif: Iface,
    /// The route is local: the packet comes back in on `oif` (loopback).
    local: bool,
    /// Source, destination and mark (value, known bits) at the last
    /// [`Step::Remember`].
    before: (Option<IpAddr>, Option<IpAddr>, u32, u32),
}

/// The loopback device of the routes (`lo`, index 1, when none is listed).
fn loopback(r: &RouteIndex) -> Iface {
    r.given
        .interfaces
        .iter()
        .find(|i| i.iftype == ARPHRD_LOOPBACK)
        .map_or_else(
            || Iface::new("lo", 1, ARPHRD_LOOPBACK),
            |i| Iface::new(&i.name, i.index, i.iftype),
        )
}

fn device(r: &RouteIndex, name: &str) -> Iface {
    match r.by_name(name) {
        Some(i) => {
            let itf = r.interface(i);
            Iface::new(&itf.name, itf.index, itf.iftype)
        }
        None => Iface::new(name, 0, ARPHRD_ETHER),
    }
}

/// `ip_route_output_key` from the routes: the output device and whether
/// the destination is local, or why there is no route.
pub(in crate::eval) fn route_out(r: &RouteIndex, daddr: IpAddr) -> Result<(Iface, bool), String> {
    if !r.known() {
        return Err("no interfaces or routes given: the output device is not known".into());
    }
    let multicast = match daddr {
        IpAddr::V4(a) => a.is_multicast() || a.is_broadcast(),
        IpAddr::V6(a) => a.is_multicast(),
    };
    if multicast {
        return Err(format!(
            "{daddr} is a multicast or broadcast address: not modelled on the output path"
        ));
    }
    if is_link_local(daddr) {
        return Err(format!(
            "{daddr} is link-local: the output device must be given"
        ));
    }
    match r.lookup(daddr, None) {
        Lookup::None => Err(format!(
            "no route to {daddr}: the connection fails before any output chain"
        )),
        Lookup::Found(e) => match (e.kind, e.dev_name.as_deref()) {
            (RouteKind::Local, _) => Ok((loopback(r), true)),
            (RouteKind::Unicast, Some(d)) => Ok((device(r, d), false)),
            (RouteKind::Broadcast, _) => Err(format!(
                "{daddr} is a broadcast address: not modelled on the output path"
            )),
            (kind, _) => Err(format!(
                "the route to {daddr} is {kind:?}: the connection fails before any output chain"
            )),
        },
    }
}

/// What the input path's `Probe` holds for an output probe: its addresses
/// and ports, and no input device.
fn as_probe(p: &OutProbe) -> Probe {
    Probe {
        proto: p.proto,
        saddr: p.saddr,
        daddr: p.daddr,
        sport: p.sport,
        dport: p.dport,
        iif: Iface::new("", 0, ARPHRD_ETHER),
        ttl: p.ttl,
        payload_len: p.payload_len,
        tcp_mss: p.tcp_mss,
        established: false,
    }
}

fn run_output(p: &Program, r: &RouteIndex, path: &Path, probe: &OutProbe) -> Out {
    let pr = as_probe(probe);
    if let Err(e) = probe.validate() {
        return invalid(&pr, format!("invalid probe: {e}"));
    }
    let route = match &probe.oif {
        Some(name) => Ok((device(r, name), r.is_local(probe.daddr))),
        None => route_out(r, probe.daddr),
    };
    let (oif, local) = match route {
        Ok(x) => x,
        Err(why) => return invalid(&pr, why),
    };
    let ctx = Ctx::new(p, r, &pr, path, true);
    let mut st = initial(&pr, r, true);
    st.hook = Hook::Output;
    st.pkttype = 0;
    st.set_assume(A_SOCKMARK);
    st.out = Some(Box::new(OutSt {
        oif,
        local,
        before: (Some(probe.saddr), Some(probe.daddr), 0, !0),
    }));
    let mut budget = MAX_BRANCHES;
    let mut out = ctx.run(st, &mut budget);
    let path: &[Hook] = if local {
        &[
            Hook::Output,
            Hook::Postrouting,
            Hook::Prerouting,
            Hook::Input,
        ]
    } else {
        &[Hook::Output, Hook::Postrouting]
    };
    legacy::apply(p, path, false, &mut out);
    out
}

/// [`crate::eval::Evaluator::explain_output`].
pub(in crate::eval) fn explain_output(
    p: &Program,
    r: &RouteIndex,
    path: &Path,
    probe: &OutProbe,
) -> Answer {
    to_answer(p, run_output(p, r, path, probe))
}

/// [`crate::eval::Evaluator::output_verdict`].
pub(in crate::eval) fn output_verdict(
    p: &Program,
    r: &RouteIndex,
    path: &Path,
    probe: &OutProbe,
) -> Verdict {
    final_verdict(&run_output(p, r, path, probe))
}

impl Ctx<'_> {
    /// Runs one output-path step; `Some` when evaluation ends there.
    pub(super) fn out_step(&self, st: &mut St, step: &Step, budget: &mut u32) -> Option<Out> {
        match step {
            Step::Remember => {
                let now = (st.pkt.saddr(), st.pkt.daddr(), st.mark, st.mark_k);
                if let Some(o) = st.out.as_mut() {
                    o.before = now;
                }
                None
            }
            Step::Reroute { nat } => self.reroute(st, *nat),
            Step::Egress(chains) => {
                let name = st.out.as_ref()?.oif.name.clone();
                let (chain, _) = chains.iter().find(|(_, devs)| devs.contains(&name))?;
                let c = &self.p.chains[*chain as usize];
                let t = &self.p.tables[c.table as usize];
                let why = format!(
                    "table {} {} chain {} is a netdev egress chain on {name}: egress chains are not evaluated",
                    t.family, t.name, c.name
                );
                Some(self.finish(st, Verdict::Unknown, None, Some(why)))
            }
            Step::Local => {
                if st.out.as_ref().is_some_and(|o| o.local) {
                    Some(self.loopback_in(st, budget))
                } else {
                    None
                }
            }
        }
    }

    /// `ip_route_me_harder` after a `route` chain or the output NAT hook.
    fn reroute(&self, st: &mut St, nat: bool) -> Option<Out> {
        let (s0, d0, m0, mk0) = st.out.as_ref()?.before;
        let (s1, d1) = (st.pkt.saddr(), st.pkt.daddr());
        let addr_changed = d1 != d0 || (!nat && s1 != s0);
        let mark_changed = !nat && (st.mark != m0 || st.mark_k != mk0);
        if !addr_changed && !mark_changed {
            return None;
        }
        let by = if nat {
            "the output NAT hook".to_string()
        } else {
            let c = &self.p.chains[st.base as usize];
            let t = &self.p.tables[c.table as usize];
            format!(
                "table {} {} chain {} (type route)",
                t.family, t.name, c.name
            )
        };
        if mark_changed {
            let why = format!(
                "{by} changed the packet mark: the kernel routes the packet again, and the route then depends on policy routing rules (ip rule), which are not read"
            );
            return Some(self.finish(st, Verdict::Unknown, None, Some(why)));
        }
        let Some(d) = d1 else {
            let why = format!("{by} rewrote the destination to an unknown address");
            return Some(self.finish(st, Verdict::Unknown, None, Some(why)));
        };
        match route_out(self.r, d) {
            Ok((oif, local)) => {
                if let Some(o) = st.out.as_mut() {
                    o.oif = oif;
                    o.local = local;
                }
                None
            }
            Err(e) => {
                let why = format!("{by} rewrote the destination, and routing again fails: {e}");
                Some(self.finish(st, Verdict::Unknown, None, Some(why)))
            }
        }
    }

    /// A local destination: out through loopback, in through it again.
    fn loopback_in(&self, st: &mut St, budget: &mut u32) -> Out {
        let (Some(saddr), Some(daddr), Some(sport), Some(dport)) = (
            st.pkt.saddr(),
            st.pkt.daddr(),
            st.pkt.sport(),
            st.pkt.dport(),
        ) else {
            let why = "the packet comes back in through loopback with an address or port rewritten to an unknown value".to_string();
            return self.finish(st, Verdict::Unknown, None, Some(why));
        };
        let iif = st
            .out
            .as_ref()
            .map_or_else(|| loopback(self.r), |o| o.oif.clone());
        let probe = Probe {
            proto: self.probe.proto,
            saddr,
            daddr,
            sport,
            dport,
            iif,
            ttl: self.probe.ttl,
            payload_len: self.probe.payload_len,
            tcp_mss: self.probe.tcp_mss,
            established: false,
        };
        let ctx = Ctx::new(
            self.p,
            self.r,
            &probe,
            &self.p.paths[usize::from(st.pkt.v6)],
            self.trace,
        );
        ctx.version.set(self.version.get());
        let mut s = st.clone();
        s.out = None;
        s.entry = 0;
        s.chain = NONE;
        s.base = NONE;
        s.group = None;
        s.sp = 0;
        s.alive = None;
        s.orders.clear();
        s.pkttype = 0;
        // The conntrack entry and NAT bindings exist (confirmed in
        // postrouting); loopback_xmit leaves a zeroed Ethernet header.
        s.local_origin = true;
        s.ct_status |= IPS_CONFIRMED;
        s.pkt.b[..12].fill(0);
        s.pkt.k[..12].fill(0xff);
        s.pkt.org[..12].fill(ORIGIN_NONE);
        let lo = probe.iif.name.clone();
        let mut out = ctx.run(s, budget);
        out.oif = Some(lo);
        out
    }

    /// The device keys of `meta`, and the socket keys on the output path:
    /// `None` for other keys (and on the input path for the input device's
    /// keys, which `meta` answers).
    pub(super) fn dev_meta(&self, st: &mut St, key: MetaKey, dreg: u8) -> Option<Flow> {
        let Some(o) = st.out.as_ref() else {
            // The input path has no output device: the kernel stores the
            // empty name and index 0 (so `oifname != "x"` matches).
            match key {
                MetaKey::Oif => st.store32(dreg, 0),
                MetaKey::Oifname => st.rstore(dreg, &[0u8; 16]),
                _ => return None,
            }
            return Some(Flow::Next);
        };
        let oif = o.oif.clone();
        let known = self.r.by_name(&oif.name);
        match key {
            // No input device for a locally generated packet.
            MetaKey::Iif => st.store32(dreg, 0),
            MetaKey::Iifname => st.rstore(dreg, &[0u8; 16]),
            // `iiftype` reads `skb->dev`, which is the output device from
            // postrouting on (`ip_output` sets it) and none before.
            MetaKey::Iiftype if st.hook == Hook::Postrouting => {
                st.store16(dreg, oif.iftype.to_ne_bytes())
            }
            MetaKey::Iiftype | MetaKey::Iifgroup | MetaKey::Iifkind => return Some(Flow::Break),
            MetaKey::BriIifname | MetaKey::BriOifname => return Some(Flow::Break),
            MetaKey::Oif => match self.ifindex(&oif.name) {
                Some(i) if i != 0 => st.store32(dreg, i),
                _ => st.runknown(dreg, 4, ORIGIN_IFINDEX),
            },
            MetaKey::Oifname => st.rstore(dreg, &ifname(&oif.name)),
            MetaKey::Oiftype => st.store16(dreg, oif.iftype.to_ne_bytes()),
            MetaKey::Oifgroup => match known {
                Some(i) => st.store32(dreg, self.r.interface(i).group),
                None => {
                    st.set_assume(A_GROUP);
                    st.store32(dreg, 0)
                }
            },
            MetaKey::Oifkind => match known.and_then(|i| self.r.interface(i).kind.clone()) {
                Some(k) => st.rstore(dreg, &ifname(&k)),
                None => st.runknown(dreg, 16, ORIGIN_IFKIND),
            },
            MetaKey::Skuid | MetaKey::Skgid | MetaKey::Cgroup => {
                st.runknown(dreg, 4, ORIGIN_SOCKET_OWNER)
            }
            // The route is attached: its classid is 0.
            MetaKey::Rtclassid => st.store32(dreg, 0),
            _ => return None,
        }
        Some(Flow::Next)
    }

    /// The output device's name on the output path.
    pub(super) fn out_dev(&self, st: &St) -> Option<String> {
        st.out.as_ref().map(|o| o.oif.name.clone())
    }

    /// Where `redirect` sends a packet on the output path
    /// (`nf_nat_redirect_ipv4/6` at `LOCAL_OUT`): the loopback address.
    pub(super) fn redirect_local(&self, st: &St) -> Option<IpAddr> {
        st.out.as_ref().map(|_| {
            if st.pkt.v6 {
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            } else {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            }
        })
    }

    /// `masquerade` (postrouting NAT): source NAT to the output device's
    /// first address of the family (`inet_select_addr`; for IPv6 source
    /// address selection is approximated the same way); no address: drop.
    pub(super) fn masquerade(&self, st: &mut St, proto: Option<NatArg<u16>>) -> Flow {
        let Some(dev) = self.out_dev(st) else {
            return Flow::Unknown("masquerade outside postrouting".into());
        };
        let Some(a) = self.r.primary_addr(&dev, st.pkt.v6) else {
            return Flow::Verdict(CVerdict::Drop);
        };
        let poff = st.pkt.transport();
        let port = match proto {
            Some(arg) => {
                let Some((x, y)) = st.nat_ports(arg) else {
                    return Flow::Unknown("the masquerade port is not known".into());
                };
                match st.pkt.port_at(poff) {
                    Some(c) if (x..=y).contains(&c) => Some(c),
                    _ => {
                        if x != y {
                            st.set_assume(A_NATRANGE);
                        }
                        Some(x)
                    }
                }
            }
            None => None,
        };
        let saddr_off = st.pkt.saddr_off();
        st.pkt.set_addr(saddr_off, a);
        if let Some(p) = port {
            st.pkt.set_port(poff, p);
        }
        self.rewritten(st);
        st.mapped = true;
        st.ct_status |= IPS_SRC_NAT | IPS_SRC_NAT_DONE;
        st.nat = Some(NatRec {
            kind: "masquerade",
            addr: a,
            port: port.or(st.pkt.sport()).unwrap_or(0),
            chain: st.chain,
            rule: st.rule,
        });
        Flow::Verdict(CVerdict::Accept)
    }
}
