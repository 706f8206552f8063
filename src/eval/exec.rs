//! The interpreter: one probe through the compiled program.
//!
//! The whole evaluation position (hook entry, chain, rule, expression, jump
//! stack), the register file with its known-bit masks, the synthesised packet
//! and the per-packet state (marks, conntrack, NAT) live in one [`St`], so a
//! fork is a clone: every outcome of an undecidable construct is run to its
//! end from the same position, and the outcomes are merged.

use super::compile::{
    index_key, words, BitKind, CData, CVerdict, Cond, Data, Dst, Entry, IndexKind, NatArg, Obj, Op,
    Opacity, Program, SetKind, Src, Test, NAT_MASQUERADE, NONE,
};
use super::order::Path;
use super::routes::{Lookup, RouteIndex};
use super::{
    Answer, ChainVisit, DecidedBy, PolicyRef, Probe, RoutingCheck, RoutingStep, RuleRef,
    Translation, Verdict, Via, L4, MAX_BRANCHES,
};
use crate::host::model::is_link_local;
use crate::host::{rtn, RouteKind, RpFilter, ARPHRD_ETHER, ARPHRD_LOOPBACK};
use crate::snapshot::xt::XtInfo;
use crate::snapshot::{CmpOp, CtKey, Family, Hook, MetaKey, PayloadBase, Policy};
use smallvec::{smallvec, SmallVec};
use std::cell::{Cell, RefCell};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

mod index;
mod legacy;
mod ops;
mod output;

pub(super) use output::{explain_output, output_verdict, route_out};

pub(super) use ops::ifname;
use ops::overlay_get;

// ---------------------------------------------------------------- origins

/// Where unknown register bits came from, for reasons (index into ORIGINS).
const ORIGIN_NONE: u8 = 0;
const ORIGIN_IPID: u8 = 1;
const ORIGIN_CSUM: u8 = 2;
const ORIGIN_LEN: u8 = 3;
const ORIGIN_FLOWLABEL: u8 = 4;
const ORIGIN_DF: u8 = 5;
const ORIGIN_MAC: u8 = 6;
const ORIGIN_SEQ: u8 = 7;
const ORIGIN_WINDOW: u8 = 8;
const ORIGIN_TCPOPT: u8 = 9;
const ORIGIN_PAYLOAD: u8 = 10;
/// A random number (`numgen`, `meta random`).
pub(super) const ORIGIN_RANDOM: u8 = 11;
/// A hash (`jhash`, `symhash`).
pub(super) const ORIGIN_HASH: u8 = 12;
const ORIGIN_TIME: u8 = 13;
const ORIGIN_CPU: u8 = 14;
const ORIGIN_OPAQUE: u8 = 15;
const ORIGIN_FIB: u8 = 16;
const ORIGIN_SOCKET: u8 = 17;
const ORIGIN_CTINFO: u8 = 18;
const ORIGIN_IFKIND: u8 = 19;
const ORIGIN_RT: u8 = 20;
const ORIGIN_LINK: u8 = 21;
const ORIGIN_IFINDEX: u8 = 22;
const ORIGIN_META: u8 = 23;
const ORIGIN_SOCKET_OWNER: u8 = 24;

const ORIGINS: &[&str] = &[
    "a value",
    "the IP identification field",
    "a checksum",
    "the packet length",
    "the IPv6 flow label",
    "the DF flag",
    "a MAC address",
    "the TCP sequence or acknowledgement number",
    "the TCP window",
    "the TCP header length or options",
    "the packet payload",
    "a random number",
    "a hash of packet fields",
    "the time",
    "the CPU number",
    "the result of an expression that is not understood",
    "a route lookup (no routes given)",
    "a socket lookup (no socket information given)",
    "conntrack accounting, id, expiry or events",
    "the interface kind",
    "routing data",
    "the link-layer header of a non-Ethernet interface",
    "the index of an interface not in the routes",
    "a meta key that is not modelled",
    "the sending socket's owner (uid, gid, cgroup)",
];

// ------------------------------------------------------------ assumptions

const A_TTL: u32 = 0;
const A_TOS: u32 = 1;
const A_SYN: u32 = 2;
const A_MSS: u32 = 3;
const A_NOEXT: u32 = 4;
const A_LIMIT: u32 = 5;
const A_CONNLIMIT: u32 = 6;
const A_RECENT: u32 = 7;
const A_DYNSET: u32 = 8;
const A_LOCAL_ALL: u32 = 9;
const A_TIE: u32 = 10;
const A_CT200: u32 = 11;
const A_NATRANGE: u32 = 12;
const A_MCAST: u32 = 13;
const A_TPROXY: u32 = 14;
const A_HELPER: u32 = 15;
const A_SECPATH: u32 = 16;
const A_GROUP: u32 = 17;
const A_ZONE: u32 = 18;
const A_ADDRTYPE6: u32 = 19;
const A_SYNOPTS: u32 = 20;
const A_RSTUDP: u32 = 21;
const A_LOOPBACK: u32 = 22;
const A_SOCKMARK: u32 = 23;
const A_NOQUEUE: u32 = 24;

const ASSUMPTIONS: &[&str] = &[
    "IPv4 TTL / IPv6 hop limit assumed 64 (as Linux sends)",
    "DSCP/ECN (traffic class) assumed 0",
    "the TCP probe is a plain SYN: flags 0x02, no ECN bits",
    "the SYN's MSS option assumed 1460 (IPv4) / 1440 (IPv6)",
    "no IPv4 options and no IPv6 extension headers",
    "rate limits (limit, xt limit, meters): first connection under no load, the limit is not exceeded",
    "connection counts (ct count, connlimit): this is the only connection (count 1)",
    "xt recent lists: the source is not in any list yet",
    "dynamic sets: the key is new (meters start fresh) and the set is not full",
    "no interfaces or routes given: every destination is assumed local",
    "base chains sharing a hook and a priority run in the order the kernel registered them, which a dump does not show: every order was followed and leads to the same verdict",
    "a chain at priority -200 runs before or after conntrack depending on which was registered last: both orders were followed and lead to the same verdict",
    "NAT to a range: the first address/port of the range is assumed",
    "multicast/broadcast destinations assumed delivered locally",
    "tproxy: a matching transparent socket and policy routing deliver the packet locally",
    "no conntrack helper is assigned to the connection",
    "no IPsec (meta secpath is 0)",
    "interface group of an interface not in the routes assumed 0",
    "a probe on a loopback interface: the conntrack zone and labels the output path gave the connection are assumed to be 0 (that path is not evaluated)",
    "IPv6 addrtype for xt addrtype approximated from the routes",
    "the SYN carries the TCP options a Linux SYN carries, and no others: MSS, SACK permitted, timestamps, window scale (a 40-byte TCP header)",
    "reject with tcp reset on a UDP packet sends nothing: a silent drop",
    "a probe on a loopback interface comes from a local process: its conntrack entry and NAT bindings were made on the output path, which is not evaluated",
    "the sending socket sets no mark (SO_MARK) and is not bound to a device",
    "no program listens on the NFQUEUE queue (it is not in /proc/net/netfilter/nfnetlink_queue): the kernel drops the packet, or with bypass goes on as if the chain had accepted it",
];

// ---------------------------------------------------------------- packet

const LINK: usize = 14;
/// The TCP header length of a Linux SYN (and SYN-ACK): 20 bytes and 20 of
/// options (see `Ctx::syn_option`).
const SYN_TCP_LEN: usize = 40;
const PKT: usize = LINK + 40 + 20;

/// The synthesised packet: link header, network header, transport header,
/// with known-bit masks, the origin of unknown bytes and the assumption a
/// byte rests on (1 + assumption index; 0 none).
#[derive(Clone)]
struct Pkt {
    v6: bool,
    l4: L4,
    nh: usize,
    th: usize,
    b: [u8; PKT],
    k: [u8; PKT],
    org: [u8; PKT],
    asm: [u8; PKT],
}

impl Pkt {
    fn new(p: &Probe) -> Pkt {
        let v6 = p.is_v6();
        let nh = if v6 { 40 } else { 20 };
        let th = match p.proto {
            L4::Tcp => 20,
            L4::Udp => 8,
        };
        let mut pk = Pkt {
            v6,
            l4: p.proto,
            nh,
            th,
            b: [0; PKT],
            k: [0xff; PKT],
            org: [ORIGIN_NONE; PKT],
            asm: [0; PKT],
        };
        // Link: MAC addresses unknown (zero on loopback), ethertype known.
        if p.iif.iftype == ARPHRD_LOOPBACK {
            // loopback_xmit keeps a zeroed Ethernet header.
        } else {
            pk.unknown(0, 12, ORIGIN_MAC);
        }
        let et: u16 = if v6 { 0x86dd } else { 0x0800 };
        pk.b[12..14].copy_from_slice(&et.to_be_bytes());
        let n = LINK;
        let ttl = p.ttl.unwrap_or(64);
        let udp_len = p.payload_len.map(|l| 8 + u32::from(l));
        if v6 {
            pk.b[n] = 0x60;
            pk.assume(n, 2, A_TOS);
            // flow label: low nibble of byte 1, bytes 2-3
            pk.k[n + 1] = 0xf0;
            pk.org[n + 1] = ORIGIN_FLOWLABEL;
            pk.unknown(n + 2, 2, ORIGIN_FLOWLABEL);
            match (p.proto, udp_len) {
                (L4::Udp, Some(l)) => pk.b[n + 4..n + 6].copy_from_slice(&(l as u16).to_be_bytes()),
                (L4::Tcp, _) => {
                    pk.b[n + 4..n + 6].copy_from_slice(&(SYN_TCP_LEN as u16).to_be_bytes());
                    pk.assume(n + 4, 2, A_SYNOPTS);
                }
                _ => pk.unknown(n + 4, 2, ORIGIN_LEN),
            }
            pk.b[n + 6] = p.proto.proto();
            pk.b[n + 7] = ttl;
            if p.ttl.is_none() {
                pk.assume(n + 7, 1, A_TTL);
            }
            if let (IpAddr::V6(s), IpAddr::V6(d)) = (p.saddr, p.daddr) {
                pk.b[n + 8..n + 24].copy_from_slice(&s.octets());
                pk.b[n + 24..n + 40].copy_from_slice(&d.octets());
            }
        } else {
            pk.b[n] = 0x45;
            pk.assume(n + 1, 1, A_TOS);
            match (p.proto, udp_len) {
                (L4::Udp, Some(l)) => {
                    pk.b[n + 2..n + 4].copy_from_slice(&((l + 20) as u16).to_be_bytes())
                }
                (L4::Tcp, _) => {
                    pk.b[n + 2..n + 4].copy_from_slice(&(SYN_TCP_LEN as u16 + 20).to_be_bytes());
                    pk.assume(n + 2, 2, A_SYNOPTS);
                }
                _ => pk.unknown(n + 2, 2, ORIGIN_LEN),
            }
            pk.unknown(n + 4, 2, ORIGIN_IPID);
            // flags: DF unknown, MF 0, offset 0
            pk.k[n + 6] = 0xbf;
            pk.org[n + 6] = ORIGIN_DF;
            pk.b[n + 8] = ttl;
            if p.ttl.is_none() {
                pk.assume(n + 8, 1, A_TTL);
            }
            pk.b[n + 9] = p.proto.proto();
            pk.unknown(n + 10, 2, ORIGIN_CSUM);
            if let (IpAddr::V4(s), IpAddr::V4(d)) = (p.saddr, p.daddr) {
                pk.b[n + 12..n + 16].copy_from_slice(&s.octets());
                pk.b[n + 16..n + 20].copy_from_slice(&d.octets());
            }
        }
        let t = LINK + nh;
        pk.b[t..t + 2].copy_from_slice(&p.sport.to_be_bytes());
        pk.b[t + 2..t + 4].copy_from_slice(&p.dport.to_be_bytes());
        match p.proto {
            L4::Tcp => {
                pk.unknown(t + 4, 8, ORIGIN_SEQ);
                // data offset: the header with a Linux SYN's options;
                // reserved bits 0
                pk.b[t + 12] = ((SYN_TCP_LEN / 4) << 4) as u8;
                pk.assume(t + 12, 1, A_SYNOPTS);
                if p.established {
                    // The first packet back of a connection: a SYN-ACK.
                    pk.b[t + 13] = 0x12;
                } else {
                    pk.b[t + 13] = 0x02;
                    pk.assume(t + 13, 1, A_SYN);
                }
                pk.unknown(t + 14, 2, ORIGIN_WINDOW);
                pk.unknown(t + 16, 2, ORIGIN_CSUM);
            }
            L4::Udp => {
                match udp_len {
                    Some(l) => pk.b[t + 4..t + 6].copy_from_slice(&(l as u16).to_be_bytes()),
                    None => pk.unknown(t + 4, 2, ORIGIN_LEN),
                }
                pk.unknown(t + 6, 2, ORIGIN_CSUM);
            }
        }
        pk
    }

    fn unknown(&mut self, at: usize, len: usize, origin: u8) {
        for i in at..at + len {
            self.b[i] = 0;
            self.k[i] = 0;
            self.org[i] = origin;
        }
    }

    fn assume(&mut self, at: usize, len: usize, a: u32) {
        for i in at..at + len {
            self.asm[i] = a as u8 + 1;
        }
    }

    fn net(&self) -> usize {
        LINK
    }

    fn transport(&self) -> usize {
        LINK + self.nh
    }

    /// Synthesised bytes end here.
    fn end(&self) -> usize {
        LINK + self.nh + self.th
    }

    fn addr_at(&self, at: usize) -> Option<IpAddr> {
        let len = if self.v6 { 16 } else { 4 };
        if self.k[at..at + len].iter().any(|k| *k != 0xff) {
            return None;
        }
        Some(if self.v6 {
            let a: [u8; 16] = self.b[at..at + 16].try_into().expect("16 bytes");
            IpAddr::V6(Ipv6Addr::from(a))
        } else {
            IpAddr::V4(Ipv4Addr::new(
                self.b[at],
                self.b[at + 1],
                self.b[at + 2],
                self.b[at + 3],
            ))
        })
    }

    fn saddr_off(&self) -> usize {
        LINK + if self.v6 { 8 } else { 12 }
    }

    fn daddr_off(&self) -> usize {
        LINK + if self.v6 { 24 } else { 16 }
    }

    fn saddr(&self) -> Option<IpAddr> {
        self.addr_at(self.saddr_off())
    }

    fn daddr(&self) -> Option<IpAddr> {
        self.addr_at(self.daddr_off())
    }

    fn port_at(&self, at: usize) -> Option<u16> {
        (self.k[at] == 0xff && self.k[at + 1] == 0xff)
            .then(|| u16::from_be_bytes([self.b[at], self.b[at + 1]]))
    }

    fn sport(&self) -> Option<u16> {
        self.port_at(self.transport())
    }

    fn dport(&self) -> Option<u16> {
        self.port_at(self.transport() + 2)
    }

    fn set_addr(&mut self, at: usize, a: IpAddr) {
        match a {
            IpAddr::V4(a) => self.b[at..at + 4].copy_from_slice(&a.octets()),
            IpAddr::V6(a) => self.b[at..at + 16].copy_from_slice(&a.octets()),
        }
        let len = if a.is_ipv6() { 16 } else { 4 };
        self.k[at..at + len].fill(0xff);
        self.asm[at..at + len].fill(0);
    }

    fn set_port(&mut self, at: usize, p: u16) {
        self.b[at..at + 2].copy_from_slice(&p.to_be_bytes());
        self.k[at..at + 2].fill(0xff);
        self.asm[at..at + 2].fill(0);
    }
}

// ----------------------------------------------------------------- state

/// Conntrack as the packet sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ct {
    /// Before `nf_conntrack_in`, or at ingress: no entry (`invalid`).
    None,
    /// `notrack` before conntrack.
    Untracked,
    /// A conntrack template before conntrack (`ct zone set`): `ct state`
    /// reads `new`, the zone is the template's.
    Template,
    /// A new connection.
    New,
    /// A packet of an established connection ([`Probe::established`]).
    Established,
}

const IPS_CONFIRMED: u32 = 0x8;
const IPS_SRC_NAT: u32 = 0x10;
const IPS_DST_NAT: u32 = 0x20;
const IPS_SRC_NAT_DONE: u32 = 0x80;
const IPS_DST_NAT_DONE: u32 = 0x100;

/// Rules entered before evaluation is declared endless.
const MAX_STEPS: u32 = 1_000_000;

/// A fork alternative.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Choice {
    Match,
    NoMatch,
    Tainted,
    Accept,
    Drop,
    Elem(u32),
    Catchall,
}

impl Choice {
    fn label(self) -> String {
        match self {
            Choice::Match => "if it matches".into(),
            Choice::NoMatch => "if it does not match".into(),
            Choice::Tainted => "if it matches with unknown side effects".into(),
            Choice::Accept => "if it accepts".into(),
            Choice::Drop => "if it drops".into(),
            Choice::Elem(i) => format!("if the key is element #{i}"),
            Choice::Catchall => "if the key hits the catch-all element".into(),
        }
    }
}

/// What decided a verdict, by chain and rule index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Dec {
    /// A rule: (chain, rule index).
    Rule(u32, u32),
    /// A base chain's policy.
    Policy(u32),
}

#[derive(Clone, Copy, Debug)]
struct Visit {
    chain: u32,
    hook: Hook,
    prio: i32,
    via: Via,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct NatRec {
    kind: &'static str,
    addr: IpAddr,
    port: u16,
    chain: u32,
    rule: u32,
}

/// Dynamic-set changes made by this packet: (set, key, present, data).
type Overlay = Vec<(u32, SmallVec<[u8; 16]>, bool, Option<SmallVec<[u8; 16]>>)>;

#[derive(Clone)]
struct St {
    entry: usize,
    chain: u32,
    rule: u32,
    op: u32,
    sp: usize,
    stack: [(u32, u32); 16],
    base: u32,
    hook: Hook,
    prio: i32,
    group: Option<(usize, usize)>,
    mapped: bool,
    d: [u8; 64],
    k: [u8; 64],
    org: [u8; 16],
    pkt: Pkt,
    ct: Ct,
    ct_taint: bool,
    ct_mark: u32,
    ct_mark_k: u32,
    ct_status: u32,
    /// The conntrack zone (`ct zone set` before conntrack) with its known
    /// bits and the directions it applies to (1 original, 2 reply).
    zone: u16,
    zone_k: u16,
    zone_dir: u8,
    /// The conntrack labels (`ct label set`) with their known bits.
    labels: [u8; 16],
    labels_k: [u8; 16],
    /// The zone and labels are taken as 0 for a connection made on an
    /// output path that was not evaluated (a loopback probe).
    ct_assumed: bool,
    mark: u32,
    mark_k: u32,
    skb_prio: u32,
    pkttype: u8,
    tproxied: bool,
    /// Sent by a local process (arrived on loopback): conntrack and NAT
    /// already happened on the output path.
    local_origin: bool,
    reject: Option<(bool, u32, u32)>,
    trace: Vec<Visit>,
    assume: u64,
    notes: Vec<String>,
    nat: Option<NatRec>,
    last_accept: Option<Dec>,
    recent: Vec<(Box<str>, u8)>,
    overlay: Overlay,
    force: Option<Choice>,
    steps: u32,
    /// Packet version: changes with every rewrite of the packet.
    pver: u32,
    /// Candidate rules of the current chain: (chain, version, offset of
    /// the bitset in [`Scratch::arena`]).
    alive: Option<(u32, u32, u32)>,
    /// On the output path: the output device and what re-routing compares.
    out: Option<Box<output::OutSt>>,
    /// The order taken in each slot of the path met so far
    /// (`super::order`).
    orders: SmallVec<[u8; 4]>,
    /// A time match read the clock.
    timed: bool,
}

/// A finished branch.
#[derive(Clone, Debug)]
struct Out {
    verdict: Verdict,
    dec: Option<Dec>,
    reject: Option<(bool, u32, u32)>,
    nat: Option<NatRec>,
    trace: Vec<Visit>,
    assume: u64,
    notes: Vec<String>,
    reason: Option<String>,
    v6: bool,
    l4: L4,
    /// The output device, on the output path.
    oif: Option<String>,
    /// For a drop or reject: the hook and priority of the base chain that
    /// stopped the packet.
    stop: Option<(Hook, i32)>,
    /// A drop by the routing decision: the check.
    routing: Option<RoutingStep>,
    /// A time match read the clock on the way.
    timed: bool,
}

impl Out {
    fn same(&self, o: &Out) -> bool {
        self.verdict == o.verdict
            && (self.verdict != Verdict::Reject || self.reject == o.reject)
            && (self.verdict != Verdict::Forwarded
                || self.nat.as_ref().map(|n| (n.addr, n.port))
                    == o.nat.as_ref().map(|n| (n.addr, n.port)))
    }
}

/// The result of one expression.
enum Flow {
    Next,
    Break,
    Verdict(CVerdict),
    Fork(Box<(SmallVec<[Choice; 4]>, String)>),
    Unknown(String),
}

fn fork2(what: String) -> Flow {
    fork(smallvec![Choice::Match, Choice::NoMatch], what)
}

fn fork(choices: SmallVec<[Choice; 4]>, what: String) -> Flow {
    Flow::Fork(Box::new((choices, what)))
}

fn opaque_choices(kind: Opacity) -> SmallVec<[Choice; 4]> {
    match kind {
        Opacity::Match => smallvec![Choice::NoMatch, Choice::Match],
        Opacity::Any => smallvec![
            Choice::NoMatch,
            Choice::Tainted,
            Choice::Accept,
            Choice::Drop
        ],
    }
}

// ------------------------------------------------------------- registers

impl St {
    fn rget(&self, off: u8, len: usize) -> (&[u8], &[u8]) {
        let o = off as usize;
        (&self.d[o..o + len], &self.k[o..o + len])
    }

    fn fully_known(&self, off: u8, len: usize) -> bool {
        self.rget(off, len).1.iter().all(|k| *k == 0xff)
    }

    fn origin_of(&self, off: u8, len: usize) -> u8 {
        let o = off as usize;
        (o..o + len)
            .find(|i| self.k[*i] != 0xff)
            .map_or(ORIGIN_NONE, |i| self.org[i / 4])
    }

    /// Writes `len` bytes and zeroes the rest of the last 32-bit word
    /// (`nft_data_copy`, payload loads).
    fn rset(&mut self, off: u8, d: &[u8], k: &[u8], origin: u8) {
        let o = off as usize;
        let len = d.len();
        let end = (o + len).div_ceil(4) * 4;
        let end = end.min(64);
        self.d[o..end].fill(0);
        self.k[o..end].fill(0xff);
        for i in 0..len.min(64 - o) {
            self.k[o + i] = k[i];
            self.d[o + i] = d[i] & k[i];
        }
        for w in o / 4..end.div_ceil(4) {
            if self.k[w * 4..w * 4 + 4].iter().any(|x| *x != 0xff) {
                self.org[w] = origin;
            }
        }
    }

    /// A fully known value.
    fn rstore(&mut self, off: u8, d: &[u8]) {
        let k = [0xffu8; 64];
        let n = d.len().min(64);
        self.rset(off, &d[..n], &k[..n], ORIGIN_NONE);
    }

    fn store32(&mut self, off: u8, v: u32) {
        self.rstore(off, &v.to_ne_bytes());
    }

    fn store8(&mut self, off: u8, v: u8) {
        self.rstore(off, &[v, 0, 0, 0]);
    }

    fn store16(&mut self, off: u8, v: [u8; 2]) {
        self.rstore(off, &[v[0], v[1], 0, 0]);
    }

    fn runknown(&mut self, off: u8, len: usize, origin: u8) {
        let z = [0u8; 64];
        self.rset(off, &z[..len], &z[..len], origin);
    }

    fn taint(&mut self) {
        self.k = [0; 64];
        self.d = [0; 64];
        self.org = [ORIGIN_OPAQUE; 16];
        self.mark_k = 0;
        self.mark = 0;
        self.ct_mark_k = 0;
        self.ct_mark = 0;
        self.zone_k = 0;
        self.labels_k = [0; 16];
        self.ct_taint = true;
    }

    fn read_u32(&self, off: u8) -> (u32, u32) {
        let (d, k) = self.rget(off, 4);
        (
            u32::from_ne_bytes(d.try_into().expect("4 bytes")),
            u32::from_ne_bytes(k.try_into().expect("4 bytes")),
        )
    }

    fn read_addr(&self, off: u8, v6: bool) -> Option<IpAddr> {
        let len = if v6 { 16 } else { 4 };
        if !self.fully_known(off, len) {
            return None;
        }
        let (d, _) = self.rget(off, len);
        Some(if v6 {
            IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(d).expect("16 bytes")))
        } else {
            IpAddr::V4(Ipv4Addr::new(d[0], d[1], d[2], d[3]))
        })
    }

    fn read_port(&self, off: u8) -> Option<u16> {
        self.fully_known(off, 2).then(|| {
            let (d, _) = self.rget(off, 2);
            u16::from_be_bytes([d[0], d[1]])
        })
    }

    /// The lowest and highest address of a NAT range, when known.
    fn nat_addrs(&self, arg: NatArg<IpAddr>, v6: bool) -> Option<(IpAddr, IpAddr)> {
        match arg {
            NatArg::Regs(lo, hi) => Some((self.read_addr(lo, v6)?, self.read_addr(hi, v6)?)),
            NatArg::Given(a, b) => (a.is_ipv6() == v6 && b.is_ipv6() == v6).then_some((a, b)),
        }
    }

    /// The lowest and highest port of a NAT range, when known.
    fn nat_ports(&self, arg: NatArg<u16>) -> Option<(u16, u16)> {
        match arg {
            NatArg::Regs(lo, hi) => Some((self.read_port(lo)?, self.read_port(hi)?)),
            NatArg::Given(a, b) => Some((a, b)),
        }
    }

    fn set_assume(&mut self, a: u32) {
        self.assume |= 1 << a;
    }
}

/// Three-valued memcmp comparison of a partly known value with a constant.
fn tri_cmp(d: &[u8], k: &[u8], data: &[u8], op: CmpOp) -> Option<bool> {
    if k.iter().all(|x| *x == 0xff) {
        let c = d.cmp(data);
        return Some(match op {
            CmpOp::Eq => c.is_eq(),
            CmpOp::Neq => c.is_ne(),
            CmpOp::Lt => c.is_lt(),
            CmpOp::Lte => c.is_le(),
            CmpOp::Gt => c.is_gt(),
            CmpOp::Gte => c.is_ge(),
        });
    }
    let min: SmallVec<[u8; 16]> = d.iter().zip(k).map(|(d, k)| d & k).collect();
    let max: SmallVec<[u8; 16]> = d.iter().zip(k).map(|(d, k)| (d & k) | !k).collect();
    let differs = d
        .iter()
        .zip(k)
        .zip(data)
        .any(|((d, k), x)| (d ^ x) & k != 0);
    let (lo, hi) = (min.as_slice().cmp(data), max.as_slice().cmp(data));
    match op {
        CmpOp::Eq => differs.then_some(false),
        CmpOp::Neq => differs.then_some(true),
        CmpOp::Lt if hi.is_lt() => Some(true),
        CmpOp::Lt if lo.is_ge() => Some(false),
        CmpOp::Lte if hi.is_le() => Some(true),
        CmpOp::Lte if lo.is_gt() => Some(false),
        CmpOp::Gt if lo.is_gt() => Some(true),
        CmpOp::Gt if hi.is_le() => Some(false),
        CmpOp::Gte if lo.is_ge() => Some(true),
        CmpOp::Gte if hi.is_lt() => Some(false),
        _ => None,
    }
}

/// Whether a partly known value lies in `[from, to]`.
fn tri_range(d: &[u8], k: &[u8], from: &[u8], to: &[u8]) -> Option<bool> {
    if k.iter().all(|x| *x == 0xff) {
        return Some(d >= from && d <= to);
    }
    let min: SmallVec<[u8; 16]> = d.iter().zip(k).map(|(d, k)| d & k).collect();
    let max: SmallVec<[u8; 16]> = d.iter().zip(k).map(|(d, k)| (d & k) | !k).collect();
    if min.as_slice() >= from && max.as_slice() <= to {
        Some(true)
    } else if max.as_slice() < from || min.as_slice() > to {
        Some(false)
    } else {
        None
    }
}

// ------------------------------------------------------------------ run

/// A probe's working memory, kept by each thread from probe to probe so
/// that a probe allocates nothing for it, and what the thread remembers of
/// the last probes of one program (the exposure map runs hundreds of
/// thousands of probes that differ in one or two fields).
#[derive(Default)]
struct Scratch {
    /// Candidate-rule bitsets of this probe, back to back (append-only
    /// during a probe: branches keep offsets into it).
    arena: Vec<u64>,
    /// The number of the probe at hand (never reused, unlike addresses).
    probe: u64,
    /// Per chain: (probe number, packet version, offset in `arena`) of its
    /// last bitset, shared by the branches of a probe.
    seen: Vec<(u64, u32, u32)>,
    /// Per index source ([`super::compile::Index::sid`]): the packet version
    /// its value was loaded at, and the value as an index key with its
    /// number in [`super::compile::EqValues`] (`NONE`: no equality index
    /// looks for it); `None` when not fully known.
    vals: Vec<Option<(u32, Val)>>,
    /// The [`Program::id`] the fields below belong to.
    prog: u64,
    /// Per index ([`super::compile::Index::iid`]).
    last: Vec<Last>,
    /// Per chain: the offset in `memo` of its last candidate bitset, built
    /// with the slots in [`Last::used`]; `NONE` when there is none yet.
    memo_at: Vec<u32>,
    memo: Vec<u64>,
}

/// An index source's value as an index key, with its number among the
/// values equality indexes look for; `None` when not fully known.
type Val = Option<(u128, u32)>;

/// What a thread remembers of one index.
#[derive(Clone, Copy)]
struct Last {
    /// The last key looked up, and its slot.
    key: Option<u128>,
    slot: u32,
    /// The slot the chain's remembered bitset was built with.
    used: u32,
    /// The slot for the packet at hand.
    cur: u32,
}

impl Last {
    const EMPTY: Last = Last {
        key: None,
        slot: 0,
        used: 0,
        cur: 0,
    };
}

impl Scratch {
    /// Arena words kept between probes; beyond it the memory is given back.
    const KEEP_WORDS: usize = 1 << 16;

    fn reset(&mut self, p: &Program) {
        if self.arena.capacity() > Self::KEEP_WORDS {
            self.arena = Vec::new();
        }
        self.arena.clear();
        self.probe += 1;
        self.vals.clear();
        self.vals.resize(p.index_srcs as usize, None);
        if self.prog != p.id.0 {
            self.prog = p.id.0;
            self.last.clear();
            self.last.resize(p.indexes as usize, Last::EMPTY);
            self.memo_at.clear();
            self.memo_at.resize(p.chains.len(), NONE);
            self.memo.clear();
            self.seen.clear();
            self.seen.resize(p.chains.len(), (0, 0, 0));
        }
    }
}

thread_local! {
    /// Taken by a probe and put back when it is done (a nested probe gets
    /// a fresh one).
    static SCRATCH: Cell<Option<Box<Scratch>>> = const { Cell::new(None) };
}

struct Ctx<'a> {
    p: &'a Program,
    r: &'a RouteIndex,
    probe: &'a Probe,
    path: &'a Path,
    iifname: [u8; 16],
    /// Working memory (candidate rules, index source values).
    /// (`None` only once dropped: [`Drop`] hands it back to the thread.)
    scratch: RefCell<Option<Box<Scratch>>>,
    /// The last packet version handed out.
    version: Cell<u32>,
    /// Whether to record the chains visited.
    trace: bool,
    /// The moment time matches are decided at (`None`: unknown).
    now: Option<super::Clock>,
}

pub(super) fn explain(p: &Program, r: &RouteIndex, probe: &Probe) -> Answer {
    let out = run_probe(p, r, probe, true, p.now);
    to_answer(p, out)
}

pub(super) fn verdict(p: &Program, r: &RouteIndex, probe: &Probe) -> Verdict {
    final_verdict(&run_probe(p, r, probe, false, p.now))
}

/// The verdict, what decided it, for `unknown` why, and whether the
/// verdict depends on the time (it read the clock, and with the time
/// unknown it would be another): what the exposure map needs, without the
/// names and trace of an [`Answer`].
pub(super) fn brief(
    p: &Program,
    r: &RouteIndex,
    probe: &Probe,
) -> (Verdict, Option<Dec>, Option<String>, bool) {
    let o = run_probe(p, r, probe, false, p.now);
    let v = final_verdict(&o);
    let timed = o.timed && final_verdict(&run_probe(p, r, probe, false, None)) != v;
    (v, o.dec, o.reason, timed)
}

/// The rule at `rule` of `chain`, by name.
fn rule_ref(p: &Program, chain: u32, rule: u32) -> RuleRef {
    let c = &p.chains[chain as usize];
    let t = &p.tables[c.table as usize];
    RuleRef {
        family: t.family,
        table: t.name.clone(),
        chain: c.name.clone(),
        handle: c.rules.get(rule as usize).map_or(0, |r| r.handle),
    }
}

/// The rule or policy `d` names.
pub(super) fn decided_by(p: &Program, d: Dec) -> DecidedBy {
    match d {
        Dec::Rule(c, r) => DecidedBy::Rule(rule_ref(p, c, r)),
        Dec::Policy(c) => {
            let ch = &p.chains[c as usize];
            let t = &p.tables[ch.table as usize];
            DecidedBy::Policy(PolicyRef {
                family: t.family,
                table: t.name.clone(),
                chain: ch.name.clone(),
                policy: ch.base.as_ref().map_or(Policy::Accept, |b| b.policy),
            })
        }
    }
}

/// Runs a probe; `trace`: record the chains visited (only answers show
/// them); `now`: the moment time matches are decided at.
fn run_probe(
    p: &Program,
    r: &RouteIndex,
    probe: &Probe,
    trace: bool,
    now: Option<super::Clock>,
) -> Out {
    if let Err(e) = probe.validate() {
        return invalid(probe, format!("invalid probe: {e}"));
    }
    let mut ctx = Ctx::new(p, r, probe, &p.paths[usize::from(probe.is_v6())], trace);
    ctx.now = now;
    let mut st = initial(probe, r, trace);
    if probe.iif.iftype == ARPHRD_LOOPBACK {
        // nf_conntrack_in: "Previously seen (loopback or untracked)? Ignore."
        st.local_origin = true;
        st.ct = if probe.established {
            Ct::Established
        } else {
            Ct::New
        };
        st.ct_status = IPS_CONFIRMED;
        st.ct_assumed = true;
        st.set_assume(A_LOOPBACK);
    }
    let mut budget = MAX_BRANCHES;
    let mut out = ctx.run(st, &mut budget);
    legacy::apply(
        p,
        &[Hook::Prerouting, Hook::Input],
        probe.established,
        &mut out,
    );
    out
}

/// The answer for a probe that cannot be evaluated.
fn invalid(probe: &Probe, reason: String) -> Out {
    Out {
        verdict: Verdict::Unknown,
        dec: None,
        reject: None,
        nat: None,
        trace: Vec::new(),
        assume: 0,
        notes: Vec::new(),
        reason: Some(reason),
        v6: probe.is_v6(),
        l4: probe.proto,
        oif: None,
        stop: None,
        routing: None,
        timed: false,
    }
}

/// The state before the first hook: registers zeroed, mark 0, no
/// conntrack; `trace`: room for the chains visited.
fn initial(probe: &Probe, r: &RouteIndex, trace: bool) -> St {
    St {
        entry: 0,
        chain: NONE,
        rule: 0,
        op: 0,
        sp: 0,
        stack: [(NONE, 0); 16],
        base: NONE,
        hook: Hook::Ingress,
        prio: 0,
        group: None,
        mapped: false,
        d: [0; 64],
        k: [0xff; 64],
        org: [0; 16],
        pkttype: pkttype(probe, r),
        pkt: Pkt::new(probe),
        ct: Ct::None,
        ct_taint: false,
        ct_mark: 0,
        ct_mark_k: !0,
        ct_status: 0,
        zone: 0,
        zone_k: !0,
        zone_dir: 3,
        labels: [0; 16],
        labels_k: [0xff; 16],
        ct_assumed: false,
        mark: 0,
        mark_k: !0,
        skb_prio: 0,
        tproxied: false,
        local_origin: false,
        reject: None,
        trace: if trace {
            Vec::with_capacity(16)
        } else {
            Vec::new()
        },
        assume: 0,
        notes: Vec::new(),
        nat: None,
        last_accept: None,
        recent: Vec::new(),
        overlay: Vec::new(),
        force: None,
        steps: 0,
        pver: 0,
        alive: None,
        out: None,
        orders: SmallVec::new(),
        timed: false,
    }
}

/// `PACKET_HOST`, or multicast/broadcast by destination.
fn pkttype(p: &Probe, r: &RouteIndex) -> u8 {
    match p.daddr {
        IpAddr::V4(a) if a.is_multicast() => 2,
        IpAddr::V4(a) if a.is_broadcast() => 1,
        IpAddr::V4(a) if r.known() && r.addr_type_v4(a, None) == crate::host::rtn::BROADCAST => 1,
        IpAddr::V6(a) if a.is_multicast() => 2,
        _ => 0,
    }
}

impl Drop for Ctx<'_> {
    /// Hands the working memory back to the thread for its next probe.
    fn drop(&mut self) {
        let scratch = self.scratch.get_mut().take();
        let _ = SCRATCH.try_with(|s| s.set(scratch));
    }
}

impl<'a> Ctx<'a> {
    /// A context for one probe, with this thread's working memory (a fresh
    /// one when the thread's is in use by an enclosing probe, or gone).
    fn new(
        p: &'a Program,
        r: &'a RouteIndex,
        probe: &'a Probe,
        path: &'a Path,
        trace: bool,
    ) -> Ctx<'a> {
        let mut scratch = SCRATCH
            .try_with(Cell::take)
            .ok()
            .flatten()
            .unwrap_or_default();
        scratch.reset(p);
        Ctx {
            p,
            r,
            probe,
            path,
            iifname: ifname(&probe.iif.name),
            scratch: RefCell::new(Some(scratch)),
            version: Cell::new(0),
            trace,
            now: p.now,
        }
    }

    /// The working memory (present from `new` until the context is dropped).
    fn scratch(&self) -> std::cell::RefMut<'_, Scratch> {
        std::cell::RefMut::map(self.scratch.borrow_mut(), |s| {
            &mut **s.get_or_insert_with(Box::default)
        })
    }

    fn chain_family(&self, c: u32) -> Family {
        self.p.tables[self.p.chains[c as usize].table as usize].family
    }

    fn finish(
        &self,
        st: &mut St,
        verdict: Verdict,
        dec: Option<Dec>,
        reason: Option<String>,
    ) -> Out {
        Out {
            verdict,
            dec,
            reject: st.reject,
            nat: st.nat.take(),
            trace: std::mem::take(&mut st.trace),
            assume: st.assume,
            notes: std::mem::take(&mut st.notes),
            reason,
            v6: st.pkt.v6,
            l4: st.pkt.l4,
            oif: self.out_dev(st),
            stop: matches!(verdict, Verdict::Drop | Verdict::Reject).then_some((st.hook, st.prio)),
            routing: None,
            timed: st.timed,
        }
    }

    fn here(&self, st: &St) -> String {
        let c = &self.p.chains[st.chain as usize];
        let t = &self.p.tables[c.table as usize];
        let handle = c.rules.get(st.rule as usize).map_or(0, |r| r.handle);
        format!(
            "table {} {} chain {} rule handle {}",
            t.family, t.name, c.name, handle
        )
    }

    fn enter(&self, st: &mut St, chain: u32, via: Via) {
        st.chain = chain;
        st.rule = 0;
        st.op = 0;
        if self.trace {
            st.trace.push(Visit {
                chain,
                hook: st.hook,
                prio: st.prio,
                via,
            });
        }
    }

    fn enter_base(&self, st: &mut St, chain: u32) {
        let b = self.p.chains[chain as usize]
            .base
            .as_ref()
            .expect("base chain");
        st.hook = b.hook;
        st.prio = b.prio;
        st.sp = 0;
        st.base = chain;
        // nft_do_chain starts with zeroed registers.
        st.d = [0; 64];
        st.k = [0xff; 64];
        self.enter(st, chain, Via::Hook);
    }

    /// The current base chain let the packet through.
    fn base_done(&self, st: &mut St) {
        if let Some((ei, pos)) = st.group {
            let Some(Entry::NatGroup { chains, hook, .. }) = self.entry_at(st, ei) else {
                unreachable!("group entry")
            };
            if st.mapped || pos + 1 >= chains.len() {
                if !st.mapped {
                    // nf_nat_alloc_null_binding
                    st.ct_status |= if matches!(hook, Hook::Prerouting | Hook::Output) {
                        IPS_DST_NAT_DONE
                    } else {
                        IPS_SRC_NAT_DONE
                    };
                }
                st.group = None;
                st.chain = NONE;
            } else {
                st.group = Some((ei, pos + 1));
                self.enter_base(st, chains[pos + 1]);
            }
        } else {
            st.chain = NONE;
        }
    }

    /// The end of a chain or `return`: pop, or the base chain's policy.
    fn ret(&self, st: &mut St) -> Result<(), Box<Out>> {
        if st.sp > 0 {
            st.sp -= 1;
            let (c, r) = st.stack[st.sp];
            st.chain = c;
            st.rule = r;
            st.op = 0;
            if self.trace {
                st.trace.push(Visit {
                    chain: c,
                    hook: st.hook,
                    prio: st.prio,
                    via: Via::Return,
                });
            }
            return Ok(());
        }
        let policy = self.p.chains[st.base as usize]
            .base
            .as_ref()
            .map_or(Policy::Accept, |b| b.policy);
        match policy {
            Policy::Accept => {
                // A chain that lets the packet fall through to its accept
                // policy decides nothing: an earlier chain's accepting rule
                // (the one that opened the port) keeps the credit.
                if !matches!(st.last_accept, Some(Dec::Rule(..))) {
                    st.last_accept = Some(Dec::Policy(st.base));
                }
                self.base_done(st);
                Ok(())
            }
            Policy::Drop => {
                let d = Dec::Policy(st.base);
                st.reject = None;
                Err(Box::new(self.finish(st, Verdict::Drop, Some(d), None)))
            }
        }
    }

    fn run(&self, mut st: St, budget: &mut u32) -> Out {
        loop {
            if st.chain == NONE {
                if let Some(&k) = self.path.slot_of.get(st.entry) {
                    if usize::from(k) == st.orders.len() {
                        return self.fork_order(st, usize::from(k), budget);
                    }
                }
                let Some(e) = self.entry_at(&st, st.entry) else {
                    let dec = st.last_accept;
                    return self.finish(&mut st, Verdict::Accept, dec, None);
                };
                let ei = st.entry;
                st.entry += 1;
                match e {
                    Entry::Chain { chain, devices } => {
                        if let Some(devs) = devices {
                            if !devs.contains(&self.probe.iif.name) {
                                continue;
                            }
                        }
                        self.enter_base(&mut st, *chain);
                    }
                    Entry::Conntrack => {
                        if matches!(st.ct, Ct::None | Ct::Template) {
                            st.ct = if self.probe.established {
                                Ct::Established
                            } else {
                                Ct::New
                            };
                        }
                    }
                    Entry::NatGroup { chains, .. } => {
                        // Untracked packets and packets whose NAT binding
                        // exists (loopback) skip the nat chains.
                        if st.ct != Ct::New || st.local_origin {
                            continue;
                        }
                        st.group = Some((ei, 0));
                        st.mapped = false;
                        self.enter_base(&mut st, chains[0]);
                    }
                    Entry::Route => {
                        if let Some(out) = self.route(&mut st) {
                            return out;
                        }
                    }
                    Entry::Out(step) => {
                        if let Some(out) = self.out_step(&mut st, step, budget) {
                            return out;
                        }
                    }
                }
                continue;
            }
            let chain = &self.p.chains[st.chain as usize];
            let Some(rule) = chain.rules.get(st.rule as usize) else {
                if let Err(out) = self.ret(&mut st) {
                    return *out;
                }
                continue;
            };
            if st.op == 0 && st.force.is_none() {
                st.steps += 1;
                if st.steps > MAX_STEPS {
                    let reason = format!(
                        "{}: evaluation does not end (a loop of gotos?)",
                        self.here(&st)
                    );
                    return self.finish(&mut st, Verdict::Unknown, None, Some(reason));
                }
                if !chain.index.is_empty() && !self.candidate(&mut st) {
                    continue;
                }
                if !rule.guard.is_empty() && !self.guard(&mut st, &rule.guard) {
                    st.rule += 1;
                    continue;
                }
            }
            let Some(op) = rule.ops.get(st.op as usize) else {
                st.rule += 1;
                st.op = 0;
                continue;
            };
            let flow = match st.force.take() {
                Some(c) => self.forced(&mut st, op, c),
                None => self.eval(&mut st, op),
            };
            match flow {
                Flow::Next => st.op += 1,
                Flow::Break => {
                    st.rule += 1;
                    st.op = 0;
                }
                Flow::Verdict(v) => {
                    if let Err(out) = self.verdict(&mut st, v) {
                        return *out;
                    }
                }
                Flow::Fork(f) => {
                    let (choices, what) = *f;
                    return self.fork(st, choices, what, budget);
                }
                Flow::Unknown(why) => {
                    let reason = format!("{}: {why}", self.here(&st));
                    return self.finish(&mut st, Verdict::Unknown, None, Some(reason));
                }
            }
        }
    }

    fn verdict(&self, st: &mut St, v: CVerdict) -> Result<(), Box<Out>> {
        let here = Dec::Rule(st.chain, st.rule);
        match v {
            CVerdict::Continue => {
                st.op += 1;
                Ok(())
            }
            CVerdict::Break => {
                st.rule += 1;
                st.op = 0;
                Ok(())
            }
            CVerdict::Accept => {
                st.last_accept = Some(here);
                self.base_done(st);
                Ok(())
            }
            CVerdict::Drop => {
                let v = if st.reject.is_some() {
                    Verdict::Reject
                } else {
                    Verdict::Drop
                };
                Err(Box::new(self.finish(st, v, Some(here), None)))
            }
            CVerdict::Queue { num, total, bypass } => {
                let queues = if total > 1 {
                    format!("queues {num}-{}", u32::from(num) + u32::from(total) - 1)
                } else {
                    format!("queue {num}")
                };
                match self.r.given.queue_listened(num, total) {
                    // nf_queue: no listener is -ESRCH; with bypass the hook
                    // goes on to its next entry (as after an accept),
                    // without it the packet is freed.
                    Some(false) => {
                        st.set_assume(A_NOQUEUE);
                        if bypass {
                            st.last_accept = Some(here);
                            self.base_done(st);
                            Ok(())
                        } else {
                            Err(Box::new(self.finish(st, Verdict::Drop, Some(here), None)))
                        }
                    }
                    listened => {
                        let why = format!(
                            "{}: the packet is queued to userspace ({queues}{}); the verdict is the queue reader's",
                            self.here(st),
                            if listened.is_none() {
                                ", whose listeners are not known"
                            } else {
                                ", which a program listens on"
                            }
                        );
                        Err(Box::new(self.finish(
                            st,
                            Verdict::Unknown,
                            Some(here),
                            Some(why),
                        )))
                    }
                }
            }
            CVerdict::Stolen => {
                let why = format!("{}: the packet is stolen", self.here(st));
                Err(Box::new(self.finish(
                    st,
                    Verdict::Unknown,
                    Some(here),
                    Some(why),
                )))
            }
            CVerdict::Missing => {
                let why = format!(
                    "{}: jump or goto to a chain that does not exist",
                    self.here(st)
                );
                Err(Box::new(self.finish(
                    st,
                    Verdict::Unknown,
                    Some(here),
                    Some(why),
                )))
            }
            CVerdict::Return => self.ret(st),
            CVerdict::Jump(c) => {
                if st.sp >= st.stack.len() {
                    let why = format!(
                        "{}: jump stack overflow (more than 16 levels)",
                        self.here(st)
                    );
                    return Err(Box::new(self.finish(
                        st,
                        Verdict::Unknown,
                        Some(here),
                        Some(why),
                    )));
                }
                st.stack[st.sp] = (st.chain, st.rule + 1);
                st.sp += 1;
                self.enter(st, c, Via::Jump);
                Ok(())
            }
            CVerdict::Goto(c) => {
                self.enter(st, c, Via::Goto);
                Ok(())
            }
        }
    }

    /// The routing decision after prerouting.
    fn route(&self, st: &mut St) -> Option<Out> {
        if !self.r.known() {
            st.set_assume(A_LOCAL_ALL);
            return None;
        }
        if let Some(out) = self.routing_checks(st) {
            return Some(out);
        }
        if st.tproxied {
            st.set_assume(A_TPROXY);
            return None;
        }
        let Some(d) = st.pkt.daddr() else {
            return Some(self.finish(
                st,
                Verdict::Unknown,
                None,
                Some("the destination address was rewritten to an unknown value".into()),
            ));
        };
        if self.r.is_local(d) {
            let mcast = match d {
                IpAddr::V4(a) => a.is_multicast() || a.is_broadcast(),
                IpAddr::V6(a) => a.is_multicast(),
            } || st.pkttype != 0;
            if mcast {
                st.set_assume(A_MCAST);
            }
            return None;
        }
        let port = st.pkt.dport().unwrap_or(0);
        let dec = st.nat.as_ref().map(|n| Dec::Rule(n.chain, n.rule));
        let reason = match &st.nat {
            Some(n) => format!(
                "{} to {} port {port}, which is not a local address: the packet is forwarded (the forward path is not evaluated)",
                n.kind, d
            ),
            None => format!(
                "{d} is not a local address: the packet is forwarded (the forward path is not evaluated)"
            ),
        };
        Some(self.finish(st, Verdict::Forwarded, dec, Some(reason)))
    }

    /// The IPv4 routing decision's own checks (`ip_route_input_slow`), in
    /// the kernel's order: martian sources and destinations, then, for a
    /// packet delivered locally (local, broadcast or multicast
    /// destination), `fib_validate_source` (reverse-path filtering and a
    /// source that is one of the host's own addresses). A packet from a
    /// local process (loopback) keeps its route from the output path and is
    /// not checked; nor is a packet routed on (the forward path is not
    /// evaluated). IPv6 has no such sysctls.
    /// A drop by the routing decision's `check`, with the `setting` that
    /// decides it and why.
    fn routing_drop(
        &self,
        st: &mut St,
        check: RoutingCheck,
        setting: Option<String>,
        why: String,
    ) -> Option<Out> {
        let step = RoutingStep { check, setting };
        let reason = format!(
            "{step}: {why}; the kernel drops it in the routing decision after prerouting, before the input hook"
        );
        let mut out = self.finish(st, Verdict::Drop, None, Some(reason));
        out.routing = Some(step);
        // Every prerouting chain ran (legacy ones too), no input chain did.
        out.stop = Some((Hook::Input, i32::MIN));
        Some(out)
    }

    fn routing_checks(&self, st: &mut St) -> Option<Out> {
        if !self.r.checks || st.local_origin || st.pkt.v6 {
            return None;
        }
        let (Some(IpAddr::V4(s)), Some(IpAddr::V4(d))) = (st.pkt.saddr(), st.pkt.daddr()) else {
            return None;
        };
        let name = self.probe.iif.name.as_str();
        let itf = self.r.by_name(name).map(|i| self.r.interface(i));
        let localnet = itf.and_then(|i| i.route_localnet);
        let zeronet = |a: Ipv4Addr| a.octets()[0] == 0;
        let off = |key: &str| format!("net.ipv4.conf.all.{key}=0, net.ipv4.conf.{name}.{key}=0");
        // Both ip_route_input_mc and ip_route_input_slow refuse these first.
        if s.is_multicast() || s.is_broadcast() {
            return self.routing_drop(
                st,
                RoutingCheck::MartianSource,
                None,
                format!("the source {s} is a multicast or broadcast address"),
            );
        }
        if d.is_multicast() {
            // ip_route_input_mc / ip_mc_validate_source.
            if zeronet(s) {
                if d.octets()[..3] == [224, 0, 0] {
                    return None;
                }
                return self.routing_drop(
                    st,
                    RoutingCheck::MartianSource,
                    None,
                    format!("the source {s} is in 0.0.0.0/8"),
                );
            }
            if s.is_loopback() && localnet.is_none() {
                return self.routing_drop(
                    st,
                    RoutingCheck::MartianSource,
                    Some(off("route_localnet")),
                    format!("the source {s} is in 127.0.0.0/8 and {name} does not route it"),
                );
            }
            return self.validate_source(st, s, itf);
        }
        if d.is_broadcast() {
            if zeronet(s) {
                return None;
            }
            return self.validate_source(st, s, itf);
        }
        if zeronet(s) {
            return self.routing_drop(
                st,
                RoutingCheck::MartianSource,
                None,
                format!("the source {s} is in 0.0.0.0/8"),
            );
        }
        if zeronet(d) {
            return self.routing_drop(
                st,
                RoutingCheck::MartianDestination,
                None,
                format!("the destination {d} is in 0.0.0.0/8"),
            );
        }
        if d.is_loopback() {
            if localnet.is_none() {
                let what = match &st.nat {
                    Some(n) => format!("{} to {d}", n.kind),
                    None => format!("the destination {d}"),
                };
                return self.routing_drop(
                    st,
                    RoutingCheck::MartianDestination,
                    Some(off("route_localnet")),
                    format!("{what}: a destination in 127.0.0.0/8 arriving on {name} (not a loopback interface) is routed only with route_localnet set"),
                );
            }
        } else if s.is_loopback() && localnet.is_none() {
            return self.routing_drop(st, RoutingCheck::MartianSource, Some(off("route_localnet")), format!("the source {s} is in 127.0.0.0/8 and arrives on {name} (not a loopback interface); it is routed only with route_localnet set"));
        }
        match self.r.addr_type_v4(d, None) {
            rtn::LOCAL | rtn::BROADCAST => self.validate_source(st, s, itf),
            _ => None,
        }
    }

    /// `fib_validate_source` for a packet delivered locally: with
    /// `rp_filter` off, only a source that is one of the host's own
    /// addresses is refused (without `accept_local`); with it on, the route
    /// back to the source must be unicast (not local, broadcast,
    /// unreachable, blackhole or prohibit) and, for strict, leave through
    /// the input interface (loose also requires that when the input
    /// interface has no IPv4 address). Policy routing and multipath routes
    /// (only the first next hop is known) are not modelled.
    fn validate_source(
        &self,
        st: &mut St,
        s: Ipv4Addr,
        itf: Option<&crate::host::Interface>,
    ) -> Option<Out> {
        let name = self.probe.iif.name.as_str();
        let rpf = itf.map_or(RpFilter::Off, |i| i.rp_filter);
        let accept_local = itf.and_then(|i| i.accept_local).is_some();
        let own =
            || format!("net.ipv4.conf.all.accept_local=0, net.ipv4.conf.{name}.accept_local=0");
        let local_src = |st: &mut St| {
            self.routing_drop(
                st,
                RoutingCheck::MartianSource,
                Some(own()),
                format!("the source {s} is one of the host's own addresses"),
            )
        };
        let Some(itf) = itf.filter(|_| rpf != RpFilter::Off) else {
            let mine = self
                .r
                .given
                .interfaces
                .iter()
                .any(|i| i.addrs.iter().any(|n| n.addr() == IpAddr::V4(s)));
            return if mine && !accept_local {
                local_src(st)
            } else {
                None
            };
        };
        let setting = Some(format!(
            "{}={}",
            itf.rp_filter_from.sysctl(name, "rp_filter"),
            rpf.value()
        ));
        let mode = match rpf {
            RpFilter::Strict => "strict",
            _ => "loose",
        };
        let refuse = |st: &mut St, why: String| {
            self.routing_drop(
                st,
                RoutingCheck::RpFilter,
                setting.clone(),
                format!("{mode}: {why}"),
            )
        };
        let e = match self.r.lookup(IpAddr::V4(s), None) {
            Lookup::None => return refuse(st, format!("there is no route back to {s}")),
            Lookup::Found(e) => e,
        };
        match e.kind {
            RouteKind::Unicast => {}
            RouteKind::Local if accept_local => return None,
            RouteKind::Local => return local_src(st),
            RouteKind::Broadcast => {
                return self.routing_drop(
                    st,
                    RoutingCheck::MartianSource,
                    setting.clone(),
                    format!("the source {s} is a broadcast address of the host"),
                )
            }
            k @ (RouteKind::Blackhole | RouteKind::Unreachable | RouteKind::Prohibit) => {
                return refuse(
                    st,
                    format!(
                        "the route back to {s} ({}) is {}",
                        e.net,
                        format!("{k:?}").to_lowercase()
                    ),
                )
            }
        }
        if e.dev_name.as_deref() == Some(name) {
            return None;
        }
        let via = e.dev_name.as_deref().unwrap_or("no device");
        let has_v4 = itf.addrs.iter().any(|n| n.addr().is_ipv4());
        if rpf == RpFilter::Strict {
            return refuse(
                st,
                format!(
                    "the route back to {s} ({}) leaves through {via}, not {name}",
                    e.net
                ),
            );
        }
        if !has_v4 {
            return refuse(
                st,
                format!("the route back to {s} leaves through {via}, not {name}, and {name} has no IPv4 address"),
            );
        }
        None
    }

    /// The entry at `i` of the path, in the order `st` takes.
    fn entry_at(&self, st: &St, i: usize) -> Option<&'a Entry> {
        let path: &'a Path = self.path;
        match path.slot_of.get(i) {
            None => None,
            Some(&k) if k == u8::MAX => path.entries.get(i),
            Some(&k) => {
                let slot = &path.slots[usize::from(k)];
                let o = st.orders.get(usize::from(k)).map_or(0, |o| usize::from(*o));
                slot.orders[o].get(i - slot.start)
            }
        }
    }

    /// Names the members of one order of a slot, in that order.
    fn order_text(&self, entries: &[Entry]) -> String {
        let name = |c: u32| {
            let ch = &self.p.chains[c as usize];
            let t = &self.p.tables[ch.table as usize];
            format!("table {} {} chain {}", t.family, t.name, ch.name)
        };
        let mut v: Vec<String> = Vec::new();
        for e in entries {
            match e {
                Entry::Chain { chain, .. } => v.push(name(*chain)),
                Entry::Conntrack => v.push("conntrack".into()),
                Entry::NatGroup { chains, .. } => v.push(
                    chains
                        .iter()
                        .map(|c| name(*c))
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
                _ => {}
            }
        }
        v.join(", then ")
    }

    /// The probe reaches slot `k`: members whose order the kernel decides
    /// by registration. Every order is followed; the verdict is certain
    /// only when they all agree.
    fn fork_order(&self, mut st: St, k: usize, budget: &mut u32) -> Out {
        let slot = &self.path.slots[k];
        // Members that can change nothing commute with everything: with at
        // most one other member, every order ends the same.
        let active = slot.orders[0]
            .iter()
            .filter(|e| match e {
                Entry::Chain { chain, devices } => {
                    !self.p.inert[*chain as usize]
                        && devices
                            .as_ref()
                            .map_or(true, |d| d.contains(&self.probe.iif.name))
                }
                _ => true,
            })
            .count();
        if active <= 1 {
            st.orders.push(0);
            return self.run(st, budget);
        }
        let members = self.order_text(&slot.orders[0]);
        let has_ct = slot.orders[0].iter().any(|e| matches!(e, Entry::Conntrack));
        if slot.too_many {
            let reason = format!(
                "more than 4 base chains share hook {} priority {} ({members}); the kernel runs them in registration order, which a dump does not show, and not every order was followed",
                slot.hook, slot.prio
            );
            return self.finish(&mut st, Verdict::Unknown, None, Some(reason));
        }
        let mut outs: Vec<Out> = Vec::with_capacity(slot.orders.len());
        for o in 0..slot.orders.len() {
            if *budget == 0 {
                let reason = format!(
                    "too many undecidable constructs (more than {MAX_BRANCHES} branches); the last one: the order of {members}"
                );
                return self.finish(&mut st, Verdict::Unknown, None, Some(reason));
            }
            *budget -= 1;
            let mut s = st.clone();
            s.orders.push(o as u8);
            outs.push(self.run(s, budget));
        }
        let same = outs.windows(2).all(|w| w[0].same(&w[1]));
        let all_assume = outs.iter().fold(0, |a, o| a | o.assume);
        let alternatives = outs
            .iter()
            .zip(&slot.orders)
            .map(|(o, order)| {
                let v = match (&o.reason, o.verdict) {
                    (Some(r), Verdict::Unknown) => format!("unknown [{r}]"),
                    _ => final_verdict(o).to_string(),
                };
                format!("{} first → {v}", self.order_text(order))
            })
            .collect::<Vec<_>>()
            .join("; ");
        let any_timed = outs.iter().any(|o| o.timed);
        let mut first = outs.remove(0);
        first.assume = all_assume;
        first.timed = any_timed;
        for o in &outs {
            for n in &o.notes {
                if !first.notes.contains(n) {
                    first.notes.push(n.clone());
                }
            }
        }
        if same {
            if first.verdict != Verdict::Unknown {
                first.assume |= 1 << if has_ct { A_CT200 } else { A_TIE };
            }
            return first;
        }
        first.verdict = Verdict::Unknown;
        first.dec = None;
        first.reject = None;
        first.reason = Some(format!(
            "depends on the order of {members} at hook {} priority {}: the kernel runs {} in registration order (the last registered first), which a dump does not show ({alternatives})",
            slot.hook,
            slot.prio,
            if has_ct { "conntrack and the chains of its priority" } else { "base chains of one hook and priority" },
        ));
        first
    }

    fn fork(
        &self,
        mut st: St,
        choices: SmallVec<[Choice; 4]>,
        what: String,
        budget: &mut u32,
    ) -> Out {
        let at = self.here(&st);
        let mut outs: Vec<(Choice, Out)> = Vec::with_capacity(choices.len());
        for c in choices {
            if *budget == 0 {
                let reason = format!(
                    "too many undecidable constructs (more than {MAX_BRANCHES} branches); the last one: {at}: {what}"
                );
                return self.finish(&mut st, Verdict::Unknown, None, Some(reason));
            }
            *budget -= 1;
            let mut s = st.clone();
            s.force = Some(c);
            outs.push((c, self.run(s, budget)));
        }
        let all_assume = outs.iter().fold(0, |a, (_, o)| a | o.assume);
        let any_timed = outs.iter().any(|(_, o)| o.timed);
        let same = outs.windows(2).all(|w| w[0].1.same(&w[1].1));
        let alternatives = outs
            .iter()
            .map(|(c, o)| match (&o.reason, o.verdict) {
                (Some(r), Verdict::Unknown) => format!("{} → unknown [{r}]", c.label()),
                _ => format!("{} → {}", c.label(), final_verdict(o)),
            })
            .collect::<Vec<_>>()
            .join(", ");
        let (_, mut first) = outs.remove(0);
        first.assume = all_assume;
        first.timed = any_timed;
        for (_, o) in &outs {
            for n in &o.notes {
                if !first.notes.contains(n) {
                    first.notes.push(n.clone());
                }
            }
        }
        if same {
            if first.verdict != Verdict::Unknown {
                first.notes.push(format!(
                    "{at}: {what}; every outcome leads to {}",
                    final_verdict(&first)
                ));
            }
            return first;
        }
        first.verdict = Verdict::Unknown;
        first.dec = None;
        first.reason = Some(format!("depends on {at}: {what} ({alternatives})"));
        first
    }
}

// --------------------------------------------------------------- answers

fn final_verdict(o: &Out) -> Verdict {
    // A TCP reset answers TCP only: for UDP nothing is sent.
    let reset = match o.reject {
        Some((false, kind, _)) => kind == 1,
        Some((true, v6, with)) => with == if v6 == 1 { 6 } else { 7 },
        None => false,
    };
    if o.verdict == Verdict::Reject && reset && o.l4 == L4::Udp {
        Verdict::Drop
    } else {
        o.verdict
    }
}

fn reject_text(v6: bool, r: (bool, u32, u32)) -> String {
    let (xt, a, b) = r;
    if xt {
        let v6 = a == 1;
        let names4 = [
            "icmp net-unreachable",
            "icmp host-unreachable",
            "icmp prot-unreachable",
            "icmp port-unreachable",
            "icmp echo-reply",
            "icmp net-prohibited",
            "icmp host-prohibited",
            "tcp reset",
            "icmp admin-prohibited",
        ];
        let names6 = [
            "icmpv6 no-route",
            "icmpv6 admin-prohibited",
            "icmpv6 not-neighbour",
            "icmpv6 addr-unreachable",
            "icmpv6 port-unreachable",
            "icmpv6 echo-reply",
            "tcp reset",
            "icmpv6 policy-fail",
            "icmpv6 reject-route",
        ];
        let names: &[&str] = if v6 { &names6 } else { &names4 };
        return names
            .get(b as usize)
            .map_or(format!("REJECT {b}"), |s| s.to_string());
    }
    match a {
        1 => "tcp reset".into(),
        2 => match b {
            0 => "icmpx no-route".into(),
            1 => "icmpx port-unreachable".into(),
            2 => "icmpx host-unreachable".into(),
            3 => "icmpx admin-prohibited".into(),
            c => format!("icmpx code {c}"),
        },
        _ if v6 => match b {
            0 => "icmpv6 no-route".into(),
            1 => "icmpv6 admin-prohibited".into(),
            3 => "icmpv6 addr-unreachable".into(),
            4 => "icmpv6 port-unreachable".into(),
            5 => "icmpv6 policy-fail".into(),
            6 => "icmpv6 reject-route".into(),
            c => format!("icmpv6 code {c}"),
        },
        _ => match b {
            0 => "icmp net-unreachable".into(),
            1 => "icmp host-unreachable".into(),
            2 => "icmp prot-unreachable".into(),
            3 => "icmp port-unreachable".into(),
            9 => "icmp net-prohibited".into(),
            10 => "icmp host-prohibited".into(),
            13 => "icmp admin-prohibited".into(),
            c => format!("icmp code {c}"),
        },
    }
}

fn to_answer(p: &Program, mut o: Out) -> Answer {
    let verdict = final_verdict(&o);
    if verdict == Verdict::Drop && o.verdict == Verdict::Reject {
        o.assume |= 1 << A_RSTUDP;
    }
    let decided_by = o.dec.map(|d| decided_by(p, d));
    let trace = o
        .trace
        .iter()
        .map(|v| {
            let c = &p.chains[v.chain as usize];
            let t = &p.tables[c.table as usize];
            ChainVisit {
                family: t.family,
                table: t.name.clone(),
                chain: c.name.clone(),
                hook: v.hook,
                priority: v.prio,
                via: v.via,
            }
        })
        .collect();
    let mut assumptions: Vec<String> = (0..ASSUMPTIONS.len())
        .filter(|i| o.assume & (1 << i) != 0)
        .map(|i| ASSUMPTIONS[i].to_string())
        .collect();
    assumptions.extend(o.notes);
    if let (true, Some(c)) = (o.timed, p.now) {
        assumptions.push(format!(
            "time matches are evaluated at {} (the kernel's timezone, for meta day and xt time --kerneltz: {}); at another time the answer may differ",
            c.rfc3339(),
            c.zone_text()
        ));
    }
    Answer {
        verdict,
        decided_by,
        reject_with: (verdict == Verdict::Reject)
            .then(|| o.reject.map(|r| reject_text(o.v6, r)))
            .flatten(),
        nat: o.nat.map(|n| Translation {
            kind: n.kind.to_string(),
            addr: n.addr,
            port: n.port,
            rule: rule_ref(p, n.chain, n.rule),
        }),
        trace,
        assumptions,
        reason: o.reason,
        oif: o.oif,
        routing: o.routing,
    }
}
