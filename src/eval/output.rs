//! The output path: what the kernel does to a new connection this host
//! opens ([`Evaluator::explain_output`]).
//!
//! An [`OutProbe`] is the first packet of a locally generated connection (a
//! SYN, or the first UDP datagram) from a local address and port to a peer.
//! Its output device is the one the routes pick for the destination
//! ([`Routes`](super::Routes): local table, then the main table, longest
//! prefix; the loopback device for a local destination), or the one the
//! probe names (a socket bound to a device). The packet then meets, as
//! `__ip_local_out` / `ip_output` run them:
//!
//! 1. **output**: the `output` base chains of `ip`/`inet` (IPv4) or
//!    `ip6`/`inet` (IPv6) tables of every type, by priority across tables
//!    and families exactly as on the input path (chains of one priority, and
//!    conntrack against chains at -200, run in registration order, which a
//!    dump does not show: every order is followed, see `super::order`).
//!    Conntrack runs at -200
//!    (before it `ct state` is `invalid` and `notrack` makes the connection
//!    untracked). All `nat` chains of the hook run together at -100 (DNAT,
//!    `redirect` to the loopback address). A `route` chain that changes the
//!    source or destination address, and a DNAT that changes the
//!    destination, make the kernel route the packet again
//!    (`ip_route_me_harder`): the new output device comes from the same
//!    lookup. A `route` chain that changes the packet mark is answered
//!    `unknown`: the new route would depend on policy routing rules
//!    (`ip rule`), which are not read.
//! 2. **postrouting**: the `postrouting` base chains (`filter`, and the
//!    `nat` chains together at 100: SNAT, `masquerade` to the output
//!    device's first address).
//! 3. **egress**: a `netdev` egress chain on the output device is not
//!    evaluated: the answer is `unknown` with that reason.
//! 4. **loopback**: a packet for a local address has left through the
//!    loopback device and comes back in on it: the input path follows
//!    ([`Evaluator::explain`] with the loopback device as input interface,
//!    marks and conntrack state as the output path left them).
//!
//! What the chains see differs from the input path the way the kernel's
//! `nft_pktinfo` does for a locally generated packet: there is no input
//! device (`meta iifname` is the empty name, `meta iif` 0, `iiftype`,
//! `iifgroup`, `iifkind` never match), the output device is known (`oif`,
//! `oifname`, `oiftype`, `oifgroup`, `oifkind`), `meta pkttype` is `host`,
//! there is no link-layer header yet (`@ll` loads do not match), `fib ...
//! type` tests (the only `fib` results the kernel accepts on these hooks)
//! answer from the routes with `oif` as the output device, and the
//! sending socket's owner (`meta skuid`, `skgid`, `cgroup`) is unknown. The
//! sending socket is assumed to set no mark (`SO_MARK`).
//!
//! `Verdict::Accept` means the packet left the host through the output
//! device (for a local destination: was delivered to a local socket);
//! `drop` and `reject` mean it did not (a `reject` on the output path
//! answers the local socket, which sees its connection refused).
//! `Verdict::Forwarded` does not occur. Everything the input path leaves
//! undecided (see the module documentation of `crate::eval`) is undecided
//! here too, and is an `unknown` with its reason.

use super::compile::{Entry, Program};
use super::order::{self, nat_orders, Item, Path};
use super::{exec, Answer, Evaluator, Iface, ProbeError, Verdict, L4};
use crate::snapshot::{Family, Hook, Snapshot};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;

/// The first packet of a new connection this host opens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutProbe {
    /// TCP (a SYN) or UDP.
    pub proto: L4,
    /// The local source address; its family (v4/v6) is the probe's.
    pub saddr: IpAddr,
    /// The peer's address.
    pub daddr: IpAddr,
    /// The local (ephemeral) source port.
    pub sport: u16,
    /// The peer's port.
    pub dport: u16,
    /// The output device, for a socket bound to one; `None`: the device
    /// the routes pick for `daddr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oif: Option<String>,
    /// IPv4 TTL / IPv6 hop limit; 64 (Linux) assumed when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u8>,
    /// UDP payload length, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_len: Option<u16>,
    /// The SYN's MSS option; 1460 (IPv4) / 1440 (IPv6) assumed when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_mss: Option<u16>,
}

impl OutProbe {
    /// A probe from `saddr:sport` to `daddr:dport`, routed by the routes;
    /// TTL, payload length and MSS are left to their documented defaults.
    pub fn new(proto: L4, saddr: IpAddr, daddr: IpAddr, sport: u16, dport: u16) -> OutProbe {
        OutProbe {
            proto,
            saddr,
            daddr,
            sport,
            dport,
            oif: None,
            ttl: None,
            payload_len: None,
            tcp_mss: None,
        }
    }

    /// Whether the probe is IPv6.
    pub fn is_v6(&self) -> bool {
        self.saddr.is_ipv6()
    }

    /// Checks that the probe can be evaluated.
    pub fn validate(&self) -> Result<(), ProbeError> {
        if self.saddr.is_ipv6() != self.daddr.is_ipv6() {
            return Err(ProbeError::MixedFamilies(self.saddr, self.daddr));
        }
        if let Some(o) = &self.oif {
            if o.len() > 15 {
                return Err(ProbeError::IfaceName(o.clone()));
            }
        }
        Ok(())
    }
}

/// A step of the output path besides base chains, conntrack and NAT hooks.
#[derive(Clone, Debug)]
pub(super) enum Step {
    /// Before a `route` chain or the output NAT hook: remember the source,
    /// destination and mark the packet was routed with.
    Remember,
    /// After it: route again if they changed (`ip_route_me_harder`); for the
    /// NAT hook (`nat`) only a changed destination counts.
    Reroute {
        /// After the NAT hook rather than a `route` chain.
        nat: bool,
    },
    /// `netdev` egress chains and their devices.
    Egress(Box<[(u32, Box<[String]>)]>),
    /// The end of postrouting: a local destination goes on along the input
    /// path, in through the loopback device.
    Local,
}

/// The output paths for IPv4 (0) and IPv6 (1).
#[derive(Debug, Default)]
pub(super) struct Paths(pub [Path; 2]);

impl Paths {
    /// Orders the base chains of `snap` (compiled into `prog`) that a
    /// locally generated packet meets.
    pub fn new(snap: &Snapshot, prog: &Program) -> Paths {
        let ids: HashMap<(u32, &str), u32> = prog
            .chains
            .iter()
            .enumerate()
            .map(|(i, c)| ((c.table, c.name.as_str()), i as u32))
            .collect();
        Paths([build(snap, &ids, false), build(snap, &ids, true)])
    }
}

fn build(snap: &Snapshot, ids: &HashMap<(u32, &str), u32>, v6: bool) -> Path {
    let mut items: Vec<Item> = Vec::new();
    // NAT chains of output (0) and postrouting (1): (priority, created, id).
    let mut nat: [Vec<(i32, usize, u32)>; 2] = [Vec::new(), Vec::new()];
    let mut egress: Vec<(u32, Box<[String]>)> = Vec::new();
    let mut created = 0usize;
    // The legacy iptables tables after the nf_tables ones, numbered as
    // `Program::new` numbers them.
    let legacy: Vec<crate::snapshot::Table> =
        snap.legacy.iter().filter_map(|t| t.to_table()).collect();
    for (ti, t) in snap.tables.iter().chain(&legacy).enumerate() {
        for c in &t.chains {
            created += 1;
            let Some(b) = &c.base else { continue };
            if t.dormant() {
                continue;
            }
            let Some(&id) = ids.get(&(ti as u32, c.name.as_str())) else {
                continue;
            };
            let fam_ok = match t.family {
                Family::Inet => true,
                Family::Ip => !v6,
                Family::Ip6 => v6,
                Family::Netdev => {
                    if b.hook == Hook::Egress {
                        egress.push((id, b.devices.clone().into()));
                    }
                    false
                }
                _ => false,
            };
            if !fam_ok {
                continue;
            }
            let chain = Entry::Chain {
                chain: id,
                devices: None,
            };
            let item = |stage, entries| Item::new(stage, b.priority, created, b.hook, entries);
            match (b.hook, b.kind.as_str()) {
                (Hook::Output, "nat") => nat[0].push((b.priority, created, id)),
                (Hook::Postrouting, "nat") => nat[1].push((b.priority, created, id)),
                (Hook::Output, "route") => items.push(item(
                    0,
                    vec![
                        Entry::Out(Step::Remember),
                        chain,
                        Entry::Out(Step::Reroute { nat: false }),
                    ],
                )),
                (Hook::Output, _) => items.push(item(0, vec![chain])),
                (Hook::Postrouting, _) => items.push(item(1, vec![chain])),
                _ => {}
            }
        }
    }
    // Conntrack: its order against chains at -200 is not known either.
    items.push(Item::new(
        0,
        -200,
        usize::MAX,
        Hook::Output,
        vec![Entry::Conntrack],
    ));
    for (i, (hook, prio)) in [(Hook::Output, -100), (Hook::Postrouting, 100)]
        .into_iter()
        .enumerate()
    {
        let mut members = std::mem::take(&mut nat[i]);
        if members.is_empty() {
            continue;
        }
        let first = members.iter().map(|m| m.1).min().unwrap_or(0);
        let (chains, others) = nat_orders(&mut members);
        let entries = |chains: Vec<u32>| {
            let group = Entry::NatGroup {
                hook,
                chains: chains.into(),
            };
            if hook == Hook::Output {
                vec![
                    Entry::Out(Step::Remember),
                    group,
                    Entry::Out(Step::Reroute { nat: true }),
                ]
            } else {
                vec![group]
            }
        };
        let mut item = Item::new(i as u8, prio, first, hook, entries(chains));
        item.inner = others.into_iter().map(entries).collect();
        items.push(item);
    }
    let mut path = order::build(items, |_, _| true);
    if !egress.is_empty() {
        path.entries.push(Entry::Out(Step::Egress(egress.into())));
        path.slot_of.push(u8::MAX);
    }
    path.entries.push(Entry::Out(Step::Local));
    path.slot_of.push(u8::MAX);
    path
}

impl Evaluator {
    /// Follows a locally generated connection's first packet through the
    /// output path (output, postrouting, and for a local destination the
    /// input path) and says what happens to it: `accept` (it leaves the
    /// host), `drop`, `reject`, or `unknown` with the reason. See the
    /// module documentation of `crate::eval::output`.
    pub fn explain_output(&self, probe: &OutProbe) -> Answer {
        exec::explain_output(
            &self.prog,
            &self.routes,
            &self.out.0[usize::from(probe.is_v6())],
            probe,
        )
    }

    /// Only the verdict of [`Evaluator::explain_output`].
    pub fn output_verdict(&self, probe: &OutProbe) -> Verdict {
        exec::output_verdict(
            &self.prog,
            &self.routes,
            &self.out.0[usize::from(probe.is_v6())],
            probe,
        )
    }

    /// The device the routes send a packet for `daddr` through (the
    /// loopback device for a local address), or `None` when no route
    /// leads there.
    pub fn output_device(&self, daddr: IpAddr) -> Option<Iface> {
        exec::route_out_addr(&self.routes, daddr)
            .ok()
            .map(|(i, _)| i)
    }

    /// The source address a connection to `daddr` gets when the socket
    /// does not choose one: the first address of the family on the output
    /// device (IPv6: the first that is not link-local), else the first on
    /// any non-loopback interface. (A route's `src` hint is not known.)
    pub fn output_source(&self, daddr: IpAddr) -> Option<IpAddr> {
        let dev = self.output_device(daddr)?;
        self.routes
            .given
            .default_local_addr(&dev.name, daddr.is_ipv6())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{snapshot, topology};
    use super::*;

    fn out(e: &Evaluator, proto: L4, from: &str, to: &str, port: u16) -> Answer {
        e.explain_output(&OutProbe::new(
            proto,
            from.parse().unwrap(),
            to.parse().unwrap(),
            40000,
            port,
        ))
    }

    #[test]
    fn output_chains_decide_per_output_device() {
        // iptables-nft: OUTPUT accepts 2546 and 8086:8087, rejects 6162 on
        // pw-pub only (icmp admin-prohibited).
        let e = Evaluator::new(&snapshot("iptables-xt"), topology());
        let a = out(&e, L4::Tcp, "192.0.2.1", "192.0.2.2", 6162);
        assert_eq!(a.verdict, Verdict::Reject, "{a:#?}");
        assert_eq!(a.oif.as_deref(), Some("pw-pub"));
        assert_eq!(a.reject_with.as_deref(), Some("icmp admin-prohibited"));
        assert!(a.trace.iter().all(|v| v.hook == Hook::Output));
        let a = out(&e, L4::Tcp, "10.99.0.1", "10.99.0.2", 6162);
        assert_eq!(a.verdict, Verdict::Accept, "{a:#?}");
        assert_eq!(a.oif.as_deref(), Some("pw-priv"));
        // Routed through pw-priv by the route to 10.0.0.10.
        let a = out(&e, L4::Tcp, "192.0.2.1", "10.0.0.10", 6162);
        assert_eq!(
            (a.verdict, a.oif.as_deref()),
            (Verdict::Accept, Some("pw-priv"))
        );
    }

    #[test]
    fn a_local_destination_goes_on_along_the_input_path() {
        let e = Evaluator::new(&snapshot("backup-host-basic"), topology());
        let a = out(&e, L4::Tcp, "10.99.0.1", "10.99.0.1", 4444);
        assert_eq!(a.verdict, Verdict::Accept, "{a:#?}");
        assert_eq!(a.oif.as_deref(), Some("lo"));
        // The input chain accepts `iif "lo"`.
        assert!(a.trace.iter().any(|v| v.hook == Hook::Input), "{a:#?}");
    }

    #[test]
    fn no_route_or_no_routes_is_unknown_with_the_reason() {
        let e = Evaluator::new(&snapshot("backup-host-basic"), topology());
        let a = out(&e, L4::Udp, "192.0.2.1", "198.51.100.7", 53);
        assert_eq!(a.verdict, Verdict::Unknown);
        assert!(a.reason.unwrap().contains("no route"));
        let e = Evaluator::new(&snapshot("backup-host-basic"), Default::default());
        let a = out(&e, L4::Udp, "192.0.2.1", "192.0.2.2", 53);
        assert_eq!(a.verdict, Verdict::Unknown);
        let a = out(&e, L4::Udp, "192.0.2.1", "2001:db8:1::2", 53);
        assert!(a.reason.unwrap().contains("invalid probe"));
    }
}
