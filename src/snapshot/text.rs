//! A rule as `nft list ruleset` would print it, reconstructed from its
//! decoded expressions (best effort).
//!
//! The kernel keeps rules as register programs (`payload load`, `cmp`,
//! `lookup`...). [`rule_text`] follows the registers the way nft's
//! `netlink_delinearize.c` does, for the forms nft generates: a load and the
//! test on it become one match (`tcp dport 22`, `ip saddr 10.99.0.0/24`,
//! `ct state established,related`), protocol dependencies that nft adds
//! implicitly (`meta l4proto tcp` before `tcp dport`) are left out, and
//! anonymous sets are printed inline. Anything it does not recognise is
//! printed in a bracketed raw form (`[payload @nh,96,32]`), never dropped,
//! so the text is always complete even where it is not nft's syntax.

use super::xt::XtInfo;
use super::{CmpOp, CtKey, Expr, Family, MetaKey, NatKind, PayloadBase, Rule, Set, Table};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

/// How a register's value is printed.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    V4,
    V6,
    /// A big-endian unsigned integer (ports, lengths...).
    Be,
    /// A host-order unsigned integer printed in decimal.
    HostDec,
    /// A host-order unsigned integer printed in hex (marks).
    HostHex,
    Proto,
    Ifname,
    Nfproto,
    /// Host-order bit flags with names.
    HostBits(&'static [(u32, &'static str)]),
    /// Big-endian bit flags with names (TCP flags).
    BeBits(&'static [(u32, &'static str)]),
    FibType,
    /// An interface index (`iif`), named when the caller knows it.
    Ifindex,
    /// A presence test (`fib ... oif missing`, `tcp option ... exists`).
    Exists,
    /// Unknown layout: hex.
    Raw,
}

const CT_STATE: &[(u32, &str)] = &[
    (1, "invalid"),
    (2, "established"),
    (4, "related"),
    (8, "new"),
    (64, "untracked"),
];
const CT_STATUS: &[(u32, &str)] = &[
    (1, "expected"),
    (2, "seen-reply"),
    (4, "assured"),
    (8, "confirmed"),
    (16, "snat"),
    (32, "dnat"),
    (512, "dying"),
];
const TCP_FLAGS: &[(u32, &str)] = &[
    (1, "fin"),
    (2, "syn"),
    (4, "rst"),
    (8, "psh"),
    (16, "ack"),
    (32, "urg"),
    (64, "ecn"),
    (128, "cwr"),
];
const RTN: &[&str] = &[
    "unspec",
    "unicast",
    "local",
    "broadcast",
    "anycast",
    "multicast",
    "blackhole",
    "unreachable",
    "prohibit",
];

/// What a register holds.
#[derive(Clone, Debug)]
enum RegVal {
    /// A loaded field: its text and how its values print.
    Field {
        text: String,
        kind: Kind,
        /// Full width of the field (an address loaded partially for a
        /// prefix match is printed with `/len`).
        full: usize,
        /// Bytes actually loaded.
        len: usize,
        /// A `bitwise` mask applied to it.
        mask: Option<Vec<u8>>,
    },
    /// A constant from `immediate`.
    Const(Vec<u8>),
}

/// An implicit protocol dependency nft would not print.
#[derive(Clone, Copy, Debug)]
enum Dep {
    L3 { v6: bool },
    L4(u8),
}

struct Ctx<'a> {
    table: &'a Table,
    /// The table's sets by name, when a [`TableText`] renders.
    sets: Option<&'a HashMap<&'a str, &'a Set>>,
    ifname: &'a dyn Fn(u32) -> Option<String>,
    regs: HashMap<usize, RegVal>,
    out: Vec<String>,
    /// Protocol tests since the last other statement: dependencies a
    /// following load may make implicit.
    deps: Vec<(usize, Dep)>,
    /// Known network family (from the table or a dependency).
    l3: Option<bool>,
    /// Known transport protocol.
    l4: Option<u8>,
}

/// The rule `rule` of `table` as nft would print it (best effort; see the
/// module documentation). `ifname` names interface indexes (`iif`), when
/// the caller knows them.
pub fn rule_text(table: &Table, rule: &Rule, ifname: &dyn Fn(u32) -> Option<String>) -> String {
    render(table, None, rule, ifname)
}

/// Renders many rules of one table as [`rule_text`] does, looking sets up
/// in an index built once: generated rulesets hold thousands of anonymous
/// sets, and a finding per rule is common in an audit.
pub struct TableText<'a> {
    table: &'a Table,
    sets: HashMap<&'a str, &'a Set>,
}

impl<'a> TableText<'a> {
    /// Indexes the sets of `table`.
    pub fn new(table: &'a Table) -> TableText<'a> {
        TableText {
            table,
            sets: table.sets.iter().map(|s| (s.name.as_str(), s)).collect(),
        }
    }

    /// The table rendered.
    pub fn table(&self) -> &'a Table {
        self.table
    }

    /// [`rule_text`] of a rule of this table.
    pub fn rule_text(&self, rule: &Rule, ifname: &dyn Fn(u32) -> Option<String>) -> String {
        render(self.table, Some(&self.sets), rule, ifname)
    }
}

fn render<'a>(
    table: &'a Table,
    sets: Option<&'a HashMap<&'a str, &'a Set>>,
    rule: &Rule,
    ifname: &'a dyn Fn(u32) -> Option<String>,
) -> String {
    let mut c = Ctx {
        table,
        sets,
        ifname,
        regs: HashMap::new(),
        out: Vec::new(),
        deps: Vec::new(),
        l3: match table.family {
            Family::Ip => Some(false),
            Family::Ip6 => Some(true),
            _ => None,
        },
        l4: None,
    };
    for e in &rule.exprs {
        c.expr(e);
    }
    let mut s = c
        .out
        .into_iter()
        .filter(|x| !x.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if let Some(cm) = &rule.comment {
        if !s.is_empty() {
            s.push(' ');
        }
        let _ = write!(s, "comment {cm:?}");
    }
    s
}

fn be_uint(b: &[u8]) -> u64 {
    b.iter().take(8).fold(0, |a, x| (a << 8) | u64::from(*x))
}

fn host_uint(b: &[u8]) -> u64 {
    b.iter()
        .take(8)
        .rev()
        .fold(0, |a, x| (a << 8) | u64::from(*x))
}

fn hex(b: &[u8]) -> String {
    let mut s = String::from("0x");
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

fn bits(v: u64, names: &[(u32, &str)]) -> String {
    let mut parts = Vec::new();
    let mut rest = v;
    for (bit, n) in names {
        if v & u64::from(*bit) != 0 {
            parts.push((*n).to_string());
            rest &= !u64::from(*bit);
        }
    }
    if rest != 0 || parts.is_empty() {
        parts.push(format!("0x{rest:x}"));
    }
    parts.join(",")
}

fn proto_name(p: u8) -> String {
    match p {
        1 => "icmp".into(),
        2 => "igmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        33 => "dccp".into(),
        47 => "gre".into(),
        50 => "esp".into(),
        51 => "ah".into(),
        58 => "ipv6-icmp".into(),
        132 => "sctp".into(),
        136 => "udplite".into(),
        n => n.to_string(),
    }
}

/// Prefix length of a contiguous mask, if it is one.
fn prefix_of(mask: &[u8]) -> Option<usize> {
    let ones: usize = mask.iter().map(|b| b.count_ones() as usize).sum();
    let contiguous = mask.iter().enumerate().all(|(i, b)| {
        let bit0 = i * 8;
        (0..8).all(|j| {
            let set = b & (0x80 >> j) != 0;
            set == (bit0 + j < ones)
        })
    });
    contiguous.then_some(ones)
}

impl Kind {
    fn fmt(self, b: &[u8], ifname: &dyn Fn(u32) -> Option<String>) -> String {
        match self {
            Kind::V4 if b.len() == 4 => Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string(),
            Kind::V6 if b.len() == 16 => {
                let a: [u8; 16] = b.try_into().expect("length checked");
                Ipv6Addr::from(a).to_string()
            }
            Kind::Be if b.len() <= 8 => be_uint(b).to_string(),
            Kind::HostDec if b.len() <= 8 => host_uint(b).to_string(),
            Kind::HostHex if b.len() <= 8 => format!("0x{:08x}", host_uint(b)),
            Kind::Proto if b.len() == 1 => proto_name(b[0]),
            Kind::Ifname => format!(
                "{:?}",
                String::from_utf8_lossy(b.split(|c| *c == 0).next().unwrap_or(b))
            ),
            Kind::Nfproto if b.len() == 1 => match b[0] {
                2 => "ipv4".into(),
                10 => "ipv6".into(),
                n => n.to_string(),
            },
            Kind::HostBits(names) if b.len() <= 8 => bits(host_uint(b), names),
            Kind::BeBits(names) if b.len() <= 8 => bits(be_uint(b), names),
            Kind::FibType if b.len() <= 8 => {
                let n = host_uint(b) as usize;
                RTN.get(n).map_or(n.to_string(), |s| (*s).to_string())
            }
            Kind::Ifindex if b.len() == 4 => match (ifname)(host_uint(b) as u32) {
                Some(n) => format!("{n:?}"),
                None => host_uint(b).to_string(),
            },
            Kind::Exists if b.len() <= 8 => if host_uint(b) == 0 {
                "missing"
            } else {
                "exists"
            }
            .to_string(),
            _ => hex(b),
        }
    }
}

/// Renders an element or key as `nft -j` serialised it.
fn json_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Number(n) => n.to_string(),
        Json::Null => "null".into(),
        Json::Bool(b) => b.to_string(),
        Json::Array(a) => a.iter().map(json_text).collect::<Vec<_>>().join(" : "),
        Json::Object(o) => {
            if let Some(p) = o.get("prefix") {
                format!("{}/{}", json_text(&p["addr"]), json_text(&p["len"]))
            } else if let Some(Json::Array(r)) = o.get("range") {
                r.iter().map(json_text).collect::<Vec<_>>().join("-")
            } else if let Some(Json::Array(c)) = o.get("concat") {
                c.iter().map(json_text).collect::<Vec<_>>().join(" . ")
            } else if let Some(e) = o.get("elem") {
                json_text(&e["val"])
            } else if let Some((k, t)) = o.iter().next() {
                match t.get("target") {
                    Some(t) => format!("{k} {}", json_text(t)),
                    None => k.clone(),
                }
            } else {
                String::new()
            }
        }
    }
}

impl<'a> Ctx<'a> {
    fn emit(&mut self, s: String) {
        self.deps.clear();
        self.out.push(s);
    }

    /// Drops the latest pending dependency `pick` accepts and returns it.
    fn take_dep(&mut self, pick: impl Fn(Dep) -> bool) -> Option<Dep> {
        let i = self.deps.iter().rposition(|(_, d)| pick(*d))?;
        let (at, d) = self.deps.remove(i);
        self.out[at].clear();
        Some(d)
    }

    fn get(&self, r: super::Reg) -> Option<&RegVal> {
        self.regs.get(&r.offset()?)
    }

    fn set(&mut self, r: super::Reg, v: RegVal) {
        if let Some(o) = r.offset() {
            self.regs.insert(o, v);
        }
    }

    /// Text of a register used as a value (`meta mark set <this>`).
    fn operand(&self, r: super::Reg, kind: Kind, len: usize) -> String {
        match self.get(r) {
            Some(RegVal::Field { text, .. }) => text.clone(),
            Some(RegVal::Const(b)) => kind.fmt(&b[..len.min(b.len())], self.ifname),
            None => format!("[reg {}]", r.0),
        }
    }

    /// Whether register `r` lies inside the value of map lookup loaded into
    /// register `start` (`dnat ip addr . port to ... map @m`).
    fn inside(&self, r: super::Reg, start: super::Reg) -> bool {
        match (r.offset(), start.offset(), self.get(start)) {
            (Some(o), Some(s0), Some(RegVal::Field { len, .. })) => o > s0 && o < s0 + len,
            _ => false,
        }
    }

    /// Text of a (possibly concatenated) key starting at `r`, `len` bytes.
    fn key_text(&self, r: super::Reg, len: usize) -> String {
        let Some(start) = r.offset() else {
            return format!("[reg {}]", r.0);
        };
        let mut parts = Vec::new();
        let mut o = start;
        while o < start + len.max(1) {
            match self.regs.get(&o) {
                Some(RegVal::Field {
                    text, len: l, mask, ..
                }) => {
                    let mut t = text.clone();
                    if let Some(m) = mask {
                        if prefix_of(m).is_none() {
                            let _ = write!(t, " & {}", hex(m));
                        }
                    }
                    parts.push(t);
                    o += l.div_ceil(4).max(1) * 4;
                }
                Some(RegVal::Const(b)) => {
                    parts.push(hex(b));
                    o += b.len().div_ceil(4).max(1) * 4;
                }
                None => {
                    parts.push(format!("[reg at {o}]"));
                    o += 4;
                }
            }
        }
        parts.join(" . ")
    }

    fn set_text(&self, name: &str) -> String {
        let Some(set) = self.find_set(name) else {
            return format!("@{name}");
        };
        if !set.anonymous() {
            return format!("@{name}");
        }
        let v = serde_json::to_value(set).unwrap_or(Json::Null);
        let elems: Vec<String> = v["elements"]
            .as_array()
            .map(|a| a.iter().map(json_text).collect())
            .unwrap_or_default();
        format!("{{ {} }}", elems.join(", "))
    }

    /// The set called `name`, through the index when there is one.
    fn find_set(&self, name: &str) -> Option<&'a Set> {
        match self.sets {
            Some(index) => index.get(name).copied(),
            None => self.table.set(name),
        }
    }

    fn set_key_len(&self, name: &str) -> usize {
        self.find_set(name)
            .map(|s| {
                s.key
                    .0
                    .iter()
                    .map(|d| (d.len as usize).div_ceil(4) * 4)
                    .sum()
            })
            .unwrap_or(4)
    }

    fn field(&mut self, dreg: super::Reg, text: String, kind: Kind, full: usize, len: usize) {
        self.set(
            dreg,
            RegVal::Field {
                text,
                kind,
                full,
                len,
                mask: None,
            },
        );
    }

    fn payload(&mut self, base: PayloadBase, offset: u32, len: u32, dreg: super::Reg) {
        let (o, l) = (offset as usize, len as usize);
        let mut name = None;
        match base {
            PayloadBase::Network => {
                // Drop a `meta nfproto` / `meta protocol` dependency that names the family.
                if let Some(Dep::L3 { v6 }) = self.take_dep(|d| matches!(d, Dep::L3 { .. })) {
                    self.l3 = Some(v6);
                }
                let v6 = self.l3.unwrap_or(o >= 8 && l > 4 || o == 6 || o == 24);
                let f = if v6 { "ip6" } else { "ip" };
                name = match (v6, o, l) {
                    (false, 12, 1..=4) => Some((format!("{f} saddr"), Kind::V4, 4)),
                    (false, 16, 1..=4) => Some((format!("{f} daddr"), Kind::V4, 4)),
                    (false, 9, 1) => Some((format!("{f} protocol"), Kind::Proto, 1)),
                    (false, 8, 1) => Some((format!("{f} ttl"), Kind::Be, 1)),
                    (false, 2, 2) => Some((format!("{f} length"), Kind::Be, 2)),
                    (false, 4, 2) => Some((format!("{f} id"), Kind::Be, 2)),
                    (false, 6, 2) => Some((format!("{f} frag-off"), Kind::Be, 2)),
                    (false, 1, 1) => Some((format!("{f} dscp"), Kind::Be, 1)),
                    (true, 8, 1..=16) => Some((format!("{f} saddr"), Kind::V6, 16)),
                    (true, 24, 1..=16) => Some((format!("{f} daddr"), Kind::V6, 16)),
                    (true, 6, 1) => Some((format!("{f} nexthdr"), Kind::Proto, 1)),
                    (true, 7, 1) => Some((format!("{f} hoplimit"), Kind::Be, 1)),
                    (true, 4, 2) => Some((format!("{f} length"), Kind::Be, 2)),
                    _ => None,
                };
                if name.is_none() {
                    name = Some((format!("@nh,{},{}", o * 8, l * 8), Kind::Raw, l));
                }
            }
            PayloadBase::Transport => {
                let p = match self.take_dep(|d| matches!(d, Dep::L4(_))) {
                    Some(Dep::L4(p)) => Some(p),
                    _ => self.l4,
                };
                self.l4 = p;
                let proto = match p {
                    Some(6) => "tcp",
                    Some(17) => "udp",
                    Some(1) => "icmp",
                    Some(58) => "icmpv6",
                    Some(132) => "sctp",
                    Some(33) => "dccp",
                    Some(136) => "udplite",
                    _ => "th",
                };
                name = match (proto, o, l) {
                    (_, 0, 2) if !proto.starts_with("icmp") => {
                        Some((format!("{proto} sport"), Kind::Be, 2))
                    }
                    (_, 2, 2) if !proto.starts_with("icmp") => {
                        Some((format!("{proto} dport"), Kind::Be, 2))
                    }
                    ("tcp", 13, 1) => Some(("tcp flags".into(), Kind::BeBits(TCP_FLAGS), 1)),
                    ("tcp", 4, 4) => Some(("tcp sequence".into(), Kind::Be, 4)),
                    ("tcp", 14, 2) => Some(("tcp window".into(), Kind::Be, 2)),
                    ("udp", 4, 2) => Some(("udp length".into(), Kind::Be, 2)),
                    (p, 0, 1) if p.starts_with("icmp") => Some((format!("{p} type"), Kind::Be, 1)),
                    (p, 1, 1) if p.starts_with("icmp") => Some((format!("{p} code"), Kind::Be, 1)),
                    _ => Some((format!("@th,{},{}", o * 8, l * 8), Kind::Raw, l)),
                };
            }
            PayloadBase::Link => {
                name = Some(match (o, l) {
                    (12, 2) => ("ether type".into(), Kind::Be, 2),
                    (6, 6) => ("ether saddr".into(), Kind::Raw, 6),
                    (0, 6) => ("ether daddr".into(), Kind::Raw, 6),
                    _ => (format!("@ll,{},{}", o * 8, l * 8), Kind::Raw, l),
                });
            }
            PayloadBase::Inner => {}
        }
        let (text, kind, full) = name.unwrap_or_else(|| {
            (
                format!("@ih,{},{}", o * 8, l * 8),
                Kind::Raw,
                l, // no width known
            )
        });
        self.field(dreg, text, kind, full, l);
    }

    fn cmp(&mut self, sreg: super::Reg, op: CmpOp, data: &[u8]) {
        let opt = match op {
            CmpOp::Eq => "",
            CmpOp::Neq => "!= ",
            CmpOp::Lt => "< ",
            CmpOp::Lte => "<= ",
            CmpOp::Gt => "> ",
            CmpOp::Gte => ">= ",
        };
        let Some(v) = self.get(sreg).cloned() else {
            self.emit(format!("[reg {}] {opt}{}", sreg.0, hex(data)));
            return;
        };
        let RegVal::Field {
            text,
            kind,
            full,
            len,
            mask,
        } = v
        else {
            self.emit(format!("[const] {opt}{}", hex(data)));
            return;
        };
        let ifname = self.ifname;
        let s = match (&mask, kind) {
            // `ct state established,related`, `tcp flags syn`: mask != 0.
            (Some(m), Kind::HostBits(_) | Kind::BeBits(_))
                if op == CmpOp::Neq && data.iter().all(|b| *b == 0) =>
            {
                format!("{text} {}", kind.fmt(m, ifname))
            }
            (Some(m), Kind::HostBits(_) | Kind::BeBits(_)) => {
                format!(
                    "{text} & {} {}{}",
                    kind.fmt(m, ifname),
                    if opt.is_empty() { "== " } else { opt },
                    kind.fmt(data, ifname)
                )
            }
            // Address prefixes: a partial load and/or a contiguous mask.
            (m, Kind::V4 | Kind::V6)
                if full > len || m.as_ref().is_some_and(|m| prefix_of(m).is_some()) =>
            {
                let plen = m.as_ref().and_then(|m| prefix_of(m)).unwrap_or(len * 8);
                let mut addr = data.to_vec();
                addr.resize(full, 0);
                format!("{text} {opt}{}/{plen}", kind.fmt(&addr, ifname))
            }
            (Some(m), _) => format!(
                "{text} & {} {}{}",
                kind.fmt(m, ifname),
                if opt.is_empty() { "== " } else { opt },
                kind.fmt(data, ifname)
            ),
            (None, _) => format!("{text} {opt}{}", kind.fmt(data, ifname)),
        };
        // Protocol tests nft adds as dependencies are kept pending.
        let mut dep = None;
        if op == CmpOp::Eq && mask.is_none() && data.len() == 1 {
            dep = match text.as_str() {
                "meta l4proto" | "ip protocol" | "ip6 nexthdr" => Some(Dep::L4(data[0])),
                "meta nfproto" => match data[0] {
                    2 => Some(Dep::L3 { v6: false }),
                    10 => Some(Dep::L3 { v6: true }),
                    _ => None,
                },
                _ => None,
            };
        } else if op == CmpOp::Eq && mask.is_none() && text == "meta protocol" && data.len() == 2 {
            dep = match be_uint(data) {
                0x0800 => Some(Dep::L3 { v6: false }),
                0x86dd => Some(Dep::L3 { v6: true }),
                _ => None,
            };
        }
        match dep {
            Some(d) => {
                self.out.push(s);
                self.deps.push((self.out.len() - 1, d));
            }
            None => self.emit(s),
        }
    }

    fn meta_kind(key: MetaKey) -> (Kind, usize) {
        match key {
            MetaKey::Iifname | MetaKey::Oifname | MetaKey::Iifkind | MetaKey::Oifkind => {
                (Kind::Ifname, 16)
            }
            MetaKey::L4proto => (Kind::Proto, 1),
            MetaKey::Nfproto => (Kind::Nfproto, 1),
            MetaKey::Protocol => (Kind::Be, 2),
            MetaKey::Mark => (Kind::HostHex, 4),
            MetaKey::Iif | MetaKey::Oif => (Kind::Ifindex, 4),
            _ => (Kind::HostDec, 4),
        }
    }

    fn ct_kind(key: CtKey) -> (Kind, usize) {
        match key {
            CtKey::State => (Kind::HostBits(CT_STATE), 4),
            CtKey::Status => (Kind::HostBits(CT_STATUS), 4),
            CtKey::Mark => (Kind::HostHex, 4),
            CtKey::SrcIp | CtKey::DstIp => (Kind::V4, 4),
            CtKey::SrcIp6 | CtKey::DstIp6 => (Kind::V6, 16),
            CtKey::ProtoSrc | CtKey::ProtoDst => (Kind::Be, 2),
            CtKey::Protocol => (Kind::Proto, 1),
            _ => (Kind::HostDec, 4),
        }
    }

    fn nat_target(
        &self,
        v6: bool,
        addr: (Option<super::Reg>, Option<super::Reg>),
        port: (Option<super::Reg>, Option<super::Reg>),
    ) -> String {
        let ak = if v6 { Kind::V6 } else { Kind::V4 };
        let alen = if v6 { 16 } else { 4 };
        let mut s = String::from("to ");
        if let (Some(a), Some(p)) = (addr.0, port.0) {
            if self.inside(p, a) {
                return format!("addr . port to {}", self.operand(a, ak, alen));
            }
        }
        if let Some(a) = addr.0 {
            let lo = self.operand(a, ak, alen);
            let t = match addr.1 {
                Some(b) if b != a => format!("{lo}-{}", self.operand(b, ak, alen)),
                _ => lo,
            };
            if v6 && port.0.is_some() {
                let _ = write!(s, "[{t}]");
            } else {
                s += &t;
            }
        }
        if let Some(p) = port.0 {
            let lo = self.operand(p, Kind::Be, 2);
            let _ = write!(s, ":{lo}");
            if let Some(q) = port.1.filter(|q| *q != p) {
                let _ = write!(s, "-{}", self.operand(q, Kind::Be, 2));
            }
        }
        s
    }

    fn expr(&mut self, e: &Expr) {
        let ifname = self.ifname;
        match e {
            Expr::Payload {
                base,
                offset,
                len,
                dreg,
            } => self.payload(*base, *offset, *len, *dreg),
            Expr::Cmp { sreg, op, data } => self.cmp(*sreg, *op, data.as_slice()),
            Expr::Bitwise {
                sreg,
                dreg,
                op,
                mask,
                xor,
                data,
                ..
            } => {
                let v = self.get(*sreg).cloned();
                let simple_and = matches!(op, super::BitwiseOp::Bool)
                    && xor
                        .as_ref()
                        .map_or(true, |x| x.as_slice().iter().all(|b| *b == 0));
                match (v, simple_and, mask) {
                    (
                        Some(RegVal::Field {
                            text,
                            kind,
                            full,
                            len,
                            ..
                        }),
                        true,
                        Some(m),
                    ) => {
                        self.set(
                            *dreg,
                            RegVal::Field {
                                text,
                                kind,
                                full,
                                len,
                                mask: Some(m.as_slice().to_vec()),
                            },
                        );
                    }
                    (v, _, _) => {
                        let base = match v {
                            Some(RegVal::Field { text, .. }) => text,
                            _ => format!("[reg {}]", sreg.0),
                        };
                        let t = match op {
                            super::BitwiseOp::Bool => format!(
                                "{base} & {} ^ {}",
                                mask.as_ref().map_or("?".into(), |m| hex(m.as_slice())),
                                xor.as_ref().map_or("?".into(), |m| hex(m.as_slice()))
                            ),
                            super::BitwiseOp::Lshift => format!(
                                "{base} << {}",
                                data.as_ref().map_or(0, |d| host_uint(d.as_slice()))
                            ),
                            super::BitwiseOp::Rshift => format!(
                                "{base} >> {}",
                                data.as_ref().map_or(0, |d| host_uint(d.as_slice()))
                            ),
                        };
                        self.field(*dreg, t, Kind::Raw, 4, 4);
                    }
                }
            }
            Expr::Byteorder { sreg, dreg, .. } => {
                if let Some(v) = self.get(*sreg).cloned() {
                    self.set(*dreg, v);
                }
            }
            Expr::Meta { key, dreg } => {
                let (kind, len) = Self::meta_kind(*key);
                let name = key.name().map_or(format!("meta {}", key.raw()), |n| {
                    // nft prints these without the `meta` keyword.
                    if matches!(
                        key,
                        MetaKey::Iif
                            | MetaKey::Oif
                            | MetaKey::Iifname
                            | MetaKey::Oifname
                            | MetaKey::Iiftype
                            | MetaKey::Oiftype
                            | MetaKey::Iifgroup
                            | MetaKey::Oifgroup
                            | MetaKey::Mark
                    ) {
                        if *key == MetaKey::Mark {
                            "meta mark".to_string()
                        } else {
                            n.to_string()
                        }
                    } else {
                        format!("meta {n}")
                    }
                });
                self.field(*dreg, name, kind, len, len);
            }
            Expr::MetaSet { key, sreg } => {
                let (kind, len) = Self::meta_kind(*key);
                let v = self.operand(*sreg, kind, len);
                let n = key.name().map_or(key.raw().to_string(), String::from);
                self.emit(format!("meta {n} set {v}"));
            }
            Expr::Ct { key, dir, dreg } => {
                let (kind, len) = Self::ct_kind(*key);
                let d = match dir {
                    Some(0) => "original ",
                    Some(1) => "reply ",
                    _ => "",
                };
                let n = key.name().map_or(key.raw().to_string(), String::from);
                self.field(*dreg, format!("ct {d}{n}"), kind, len, len);
            }
            Expr::CtSet { key, dir, sreg } => {
                let (kind, len) = Self::ct_kind(*key);
                let v = self.operand(*sreg, kind, len);
                let d = match dir {
                    Some(0) => "original ",
                    Some(1) => "reply ",
                    _ => "",
                };
                let n = key.name().map_or(key.raw().to_string(), String::from);
                self.emit(format!("ct {d}{n} set {v}"));
            }
            Expr::Lookup {
                set,
                sreg,
                dreg,
                invert,
            } => {
                let key = self.key_text(*sreg, self.set_key_len(set));
                let st = self.set_text(set);
                let neg = if *invert { "!= " } else { "" };
                match dreg {
                    None => self.emit(format!("{key} {neg}{st}")),
                    Some(d) if d.0 == 0 => self.emit(format!("{key} vmap {st}")),
                    Some(d) => {
                        // A map: the register now holds the mapped value.
                        let t = format!("{key} map {st}");
                        let len = self
                            .find_set(set)
                            .and_then(|s| s.data.as_ref())
                            .map(|k| k.0.iter().map(|d| (d.len as usize).div_ceil(4) * 4).sum())
                            .unwrap_or(4);
                        self.field(*d, t, Kind::Raw, len, len);
                    }
                }
            }
            Expr::Immediate {
                dreg,
                verdict,
                data,
            } => match (verdict, data) {
                (Some(v), _) => self.emit(v.to_string()),
                (None, Some(d)) => self.set(*dreg, RegVal::Const(d.as_slice().to_vec())),
                (None, None) => self.emit("[immediate]".into()),
            },
            Expr::Range { sreg, op, from, to } => {
                let (text, kind) = match self.get(*sreg) {
                    Some(RegVal::Field { text, kind, .. }) => (text.clone(), *kind),
                    _ => (format!("[reg {}]", sreg.0), Kind::Raw),
                };
                let neg = if *op == CmpOp::Neq { "!= " } else { "" };
                self.emit(format!(
                    "{text} {neg}{}-{}",
                    kind.fmt(from.as_slice(), ifname),
                    kind.fmt(to.as_slice(), ifname)
                ));
            }
            Expr::Counter { packets, bytes } => {
                self.emit(format!("counter packets {packets} bytes {bytes}"))
            }
            Expr::Log {
                prefix,
                level,
                group,
            } => {
                let mut s = String::from("log");
                if let Some(p) = prefix {
                    let _ = write!(s, " prefix {p:?}");
                }
                if let Some(g) = group {
                    let _ = write!(s, " group {g}");
                }
                if let Some(l) = level {
                    let names = [
                        "emerg", "alert", "crit", "err", "warn", "notice", "info", "debug",
                    ];
                    match names.get(*l as usize) {
                        Some(n) if *n != "warn" => {
                            let _ = write!(s, " level {n}");
                        }
                        Some(_) => {}
                        None => {
                            let _ = write!(s, " level {l}");
                        }
                    }
                }
                self.emit(s);
            }
            Expr::Limit {
                rate,
                unit,
                burst,
                bytes,
                invert,
            } => {
                let u = match unit {
                    1 => "second",
                    60 => "minute",
                    3600 => "hour",
                    86400 => "day",
                    604800 => "week",
                    _ => "?",
                };
                let over = if *invert { "over " } else { "" };
                let what = if *bytes { " bytes" } else { "" };
                let mut s = format!("limit rate {over}{rate}{what}/{u}");
                if *burst > 0 {
                    let _ = write!(
                        s,
                        " burst {burst} {}",
                        if *bytes { "bytes" } else { "packets" }
                    );
                }
                self.emit(s);
            }
            Expr::Quota {
                bytes,
                consumed,
                invert,
            } => {
                let mut s = format!("quota {}{bytes} bytes", if *invert { "over " } else { "" });
                if *consumed > 0 {
                    let _ = write!(s, " used {consumed} bytes");
                }
                self.emit(s);
            }
            Expr::Reject { kind, code } => {
                let v6 = self.l3 == Some(true);
                let s = match kind {
                    1 => "reject with tcp reset".to_string(),
                    2 => {
                        let n = ["no-route", "port-unreachable", "host-unreachable"];
                        let n = match code {
                            3 => "admin-prohibited",
                            c => n.get(*c as usize).copied().unwrap_or("?"),
                        };
                        if *code == 1 {
                            "reject".to_string()
                        } else {
                            format!("reject with icmpx {n}")
                        }
                    }
                    // The default for the family: nft prints a bare `reject`.
                    _ if *code == if v6 { 4 } else { 3 } => "reject".to_string(),
                    _ if v6 => {
                        let n = match code {
                            0 => "no-route",
                            1 => "admin-prohibited",
                            3 => "addr-unreachable",
                            4 => "port-unreachable",
                            5 => "policy-fail",
                            6 => "reject-route",
                            _ => "",
                        };
                        if n.is_empty() {
                            format!("reject with icmpv6 code {code}")
                        } else {
                            format!("reject with icmpv6 {n}")
                        }
                    }
                    _ => {
                        let n = match code {
                            0 => "net-unreachable",
                            1 => "host-unreachable",
                            2 => "prot-unreachable",
                            3 => "port-unreachable",
                            9 => "net-prohibited",
                            10 => "host-prohibited",
                            13 => "admin-prohibited",
                            _ => "",
                        };
                        if n.is_empty() {
                            format!("reject with icmp code {code}")
                        } else {
                            format!("reject with icmp {n}")
                        }
                    }
                };
                self.emit(s);
            }
            Expr::Nat {
                kind,
                family,
                reg_addr_min,
                reg_addr_max,
                reg_proto_min,
                reg_proto_max,
                ..
            } => {
                let k = match kind {
                    NatKind::Snat => "snat",
                    NatKind::Dnat => "dnat",
                };
                let v6 = *family == 10;
                let fam = match self.table.family {
                    Family::Inet if v6 => "ip6 ",
                    Family::Inet => "ip ",
                    _ => "",
                };
                let t = self.nat_target(
                    v6,
                    (*reg_addr_min, *reg_addr_max),
                    (*reg_proto_min, *reg_proto_max),
                );
                self.emit(format!("{k} {fam}{t}"));
            }
            Expr::Masq {
                reg_proto_min,
                reg_proto_max,
                ..
            } => {
                let t = self.nat_target(false, (None, None), (*reg_proto_min, *reg_proto_max));
                self.emit(if reg_proto_min.is_none() {
                    "masquerade".into()
                } else {
                    format!("masquerade {t}")
                });
            }
            Expr::Redir {
                reg_proto_min,
                reg_proto_max,
                ..
            } => {
                let t = self.nat_target(false, (None, None), (*reg_proto_min, *reg_proto_max));
                self.emit(if reg_proto_min.is_none() {
                    "redirect".into()
                } else {
                    format!("redirect {t}")
                });
            }
            Expr::Fib {
                flags,
                result,
                dreg,
            } => {
                let mut keys = Vec::new();
                for (bit, n) in [
                    (1, "saddr"),
                    (2, "daddr"),
                    (4, "mark"),
                    (8, "iif"),
                    (16, "oif"),
                ] {
                    if flags & bit != 0 {
                        keys.push(n);
                    }
                }
                let (r, kind) = match result {
                    1 => ("oif", Kind::HostDec),
                    2 => ("oifname", Kind::Ifname),
                    3 => ("type", Kind::FibType),
                    _ => ("?", Kind::Raw),
                };
                let text = format!("fib {} {r}", keys.join(" . "));
                let len = if *result == 2 { 16 } else { 4 };
                // `fib ... oif missing` / `exists` test the result against 0.
                let kind = if flags & 32 != 0 { Kind::Exists } else { kind };
                self.field(*dreg, text, kind, len, len);
            }
            Expr::Dynset {
                set,
                op,
                sreg_key,
                sreg_data,
                exprs,
                flags: _,
                ..
            } => {
                let key = self.key_text(*sreg_key, self.set_key_len(set));
                let verb = match op {
                    0 => "add",
                    1 => "update",
                    2 => "delete",
                    _ => "?",
                };
                let mut inner = key;
                for x in exprs {
                    let mut sub = Ctx {
                        table: self.table,
                        sets: self.sets,
                        ifname: self.ifname,
                        regs: HashMap::new(),
                        out: Vec::new(),
                        deps: Vec::new(),
                        l3: self.l3,
                        l4: self.l4,
                    };
                    sub.expr(x);
                    for s in sub.out {
                        inner.push(' ');
                        inner += &s;
                    }
                }
                if let Some(d) = sreg_data {
                    let _ = write!(inner, " : {}", self.operand(*d, Kind::Raw, 4));
                }
                self.emit(format!("{verb} @{set} {{ {inner} }}"));
            }
            Expr::Objref {
                object_type,
                name,
                set,
                sreg,
            } => {
                let kind = match object_type {
                    Some(1) => "counter",
                    Some(2) => "quota",
                    Some(3) => "ct helper",
                    Some(4) => "limit",
                    Some(5) => "ct timeout",
                    Some(8) => "ct expectation",
                    Some(9) => "synproxy",
                    _ => "object",
                };
                let s = match (name, set, sreg) {
                    (Some(n), _, _) => format!("{kind} name {n:?}"),
                    (None, Some(st), Some(r)) => {
                        let key = self.key_text(*r, self.set_key_len(st));
                        format!("{kind} name {key} map {}", self.set_text(st))
                    }
                    _ => format!("{kind} name ?"),
                };
                self.emit(s);
            }
            Expr::Socket { key, dreg, .. } => {
                let n = match key {
                    0 => "transparent",
                    1 => "mark",
                    2 => "wildcard",
                    3 => "cgroupv2",
                    _ => "?",
                };
                self.field(*dreg, format!("socket {n}"), Kind::HostDec, 4, 4);
            }
            Expr::Exthdr {
                op,
                kind,
                offset,
                len,
                flags,
                dreg,
            } => {
                let what = match (op, kind, offset, len) {
                    (1, 2, 2, 2) => "tcp option maxseg size".to_string(),
                    (1, k, 0, _) if flags & 1 != 0 => format!("tcp option {k}"),
                    (1, k, o, l) => format!("tcp option @{k},{},{}", o * 8, l * 8),
                    (0, 43, 2, 1) => "rt type".to_string(),
                    (0, k, o, l) => format!("exthdr {k} @{},{}", o * 8, l * 8),
                    (2, k, o, l) => format!("ip option @{k},{},{}", o * 8, l * 8),
                    (o, k, off, l) => format!("exthdr op {o} {k} @{},{}", off * 8, l * 8),
                };
                match dreg {
                    Some(d) => {
                        let kind = if flags & 1 != 0 {
                            Kind::Exists
                        } else {
                            Kind::Be
                        };
                        self.field(*d, what, kind, *len as usize, *len as usize);
                    }
                    None => self.emit(format!("{what} set (value not decoded)")),
                }
            }
            Expr::Notrack => self.emit("notrack".into()),
            Expr::Rt { key, dreg } => {
                let n = match key {
                    0 => "classid",
                    1 => "ip nexthop",
                    2 => "ip6 nexthop",
                    3 => "mtu",
                    4 => "ipsec",
                    _ => "?",
                };
                self.field(*dreg, format!("rt {n}"), Kind::HostDec, 4, 4);
            }
            Expr::Queue { num, total, .. } => self.emit(if *total > 1 {
                format!("queue num {num}-{}", num + total - 1)
            } else {
                format!("queue num {num}")
            }),
            Expr::Connlimit { count, flags } => self.emit(format!(
                "ct count {}{count}",
                if flags & 1 != 0 { "over " } else { "" }
            )),
            Expr::Numgen {
                dreg,
                modulus,
                kind,
                offset,
            } => {
                let k = if *kind == 0 { "inc" } else { "random" };
                let mut t = format!("numgen {k} mod {modulus}");
                if *offset > 0 {
                    let _ = write!(t, " offset {offset}");
                }
                self.field(*dreg, t, Kind::HostDec, 4, 4);
            }
            Expr::Hash {
                dreg,
                modulus,
                kind,
                offset,
            } => {
                let k = if *kind == 0 { "jhash" } else { "symhash" };
                let mut t = format!("{k} mod {modulus}");
                if *offset > 0 {
                    let _ = write!(t, " offset {offset}");
                }
                self.field(*dreg, t, Kind::HostDec, 4, 4);
            }
            Expr::FlowOffload { table } => self.emit(format!("flow add @{table}")),
            Expr::Last => self.emit("last".into()),
            Expr::Tproxy {
                family,
                reg_addr,
                reg_port,
            } => {
                let v6 = *family == 10 || (*family == 0 && self.l3 == Some(true));
                let fam = match (self.table.family, family) {
                    (Family::Inet, 2) => "ip ",
                    (Family::Inet, 10) => "ip6 ",
                    _ => "",
                };
                let t = self.nat_target(v6, (*reg_addr, None), (*reg_port, None));
                self.emit(format!("tproxy {fam}{t}"));
            }
            Expr::Match { name, info, .. } => self.emit(xt_text("match", name, info)),
            Expr::Target { name, info, .. } => self.emit(xt_text("target", name, info)),
            Expr::Unknown { name, .. } => self.emit(format!("[{name}: not decoded]")),
            Expr::PayloadSet {
                base,
                offset,
                len,
                sreg,
            } => {
                let v = self.operand(*sreg, Kind::Be, *len as usize);
                let b = match base {
                    PayloadBase::Link => "ll",
                    PayloadBase::Network => "nh",
                    PayloadBase::Transport => "th",
                    PayloadBase::Inner => "ih",
                };
                self.emit(format!("@{b},{},{} set {v}", offset * 8, len * 8));
            }
        }
    }
}

fn ports(p: [u16; 2]) -> String {
    if p[0] == p[1] {
        p[0].to_string()
    } else {
        format!("{}-{}", p[0], p[1])
    }
}

/// An xt match or target, with its decoded options in short.
fn xt_text(what: &str, name: &str, info: &XtInfo) -> String {
    let opts = match info {
        XtInfo::Tcp {
            sport,
            dport,
            invflags,
            ..
        }
        | XtInfo::Udp {
            sport,
            dport,
            invflags,
        } => {
            let mut v = Vec::new();
            if *sport != [0, 65535] {
                let neg = if invflags & 1 != 0 { "!= " } else { "" };
                v.push(format!("sport {neg}{}", ports(*sport)));
            }
            if *dport != [0, 65535] {
                let neg = if invflags & 2 != 0 { "!= " } else { "" };
                v.push(format!("dport {neg}{}", ports(*dport)));
            }
            if let XtInfo::Tcp { option, .. } = info {
                if *option != 0 {
                    let neg = if invflags & 8 != 0 {
                        "missing"
                    } else {
                        "exists"
                    };
                    v.push(format!("option {option} {neg}"));
                }
            }
            v.join(" ")
        }
        XtInfo::Multiport {
            flags,
            ports: p,
            range,
            invert,
        } => {
            let items = super::xt::multiport_items(p, range, "-");
            let dir = super::xt::multiport_option(*flags);
            format!(
                "{dir} {}{{ {} }}",
                if *invert { "!= " } else { "" },
                items.join(", ")
            )
        }
        XtInfo::Comment { text } => format!("comment {text:?}"),
        XtInfo::Recent {
            name: n,
            seconds,
            hit_count,
            ..
        } => format!("name {n:?} seconds {seconds} hitcount {hit_count}"),
        XtInfo::Limit { avg, burst } => format!("avg {avg} burst {burst}"),
        XtInfo::Log { prefix, .. } => format!("prefix {prefix:?}"),
        XtInfo::Reject { with } => format!("with {with}"),
        XtInfo::State { mask } => format!("state 0x{mask:x}"),
        XtInfo::Conntrack { state_mask, .. } => format!("ctstate 0x{state_mask:x}"),
        XtInfo::MarkSet { mark, mask } => format!("set 0x{mark:x}/0x{mask:x}"),
        XtInfo::Mark { mark, mask, invert } => format!(
            "mark {}0x{mark:x}/0x{mask:x}",
            if *invert { "!= " } else { "" }
        ),
        XtInfo::Raw { .. } => "(options not decoded)".to_string(),
        XtInfo::Nat {
            flags,
            addr,
            ports: p,
            ..
        } => {
            let a = match addr {
                Some([x, y]) if x == y => x.to_string(),
                Some([x, y]) => format!("{x}-{y}"),
                None => String::new(),
            };
            let a = if a.contains(':') && p.is_some() {
                format!("[{a}]")
            } else {
                a
            };
            let mut t = match p {
                Some(p) => format!("to {a}:{}", ports(*p)),
                None if addr.is_some() => format!("to {a}"),
                None => String::new(),
            };
            for (bit, word) in [
                (4, "random"),
                (8, "persistent"),
                (0x10, "fully-random"),
                (0x20, "port-offset"),
            ] {
                if flags & bit != 0 {
                    t.push_str(&format!(" {word}"));
                }
            }
            t.trim().to_string()
        }
        XtInfo::Queue {
            num,
            total,
            bypass,
            fanout,
        } => {
            let mut t = if *total > 1 {
                format!("num {num}-{}", u32::from(*num) + u32::from(*total) - 1)
            } else {
                format!("num {num}")
            };
            if *bypass {
                t.push_str(" bypass");
            }
            if *fanout {
                t.push_str(" fanout");
            }
            t
        }
        other => other.fields_text(),
    };
    if opts.is_empty() {
        format!("xt {what} {name:?}")
    } else {
        format!("xt {what} {name:?} {opts}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Snapshot;

    fn snapshot(name: &str) -> Snapshot {
        let p = format!(
            "{}/src/eval/testdata/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    }

    fn rules(s: &Snapshot) -> Vec<String> {
        let names = |i: u32| (i == 1).then(|| "lo".to_string());
        s.tables
            .iter()
            .flat_map(|t| {
                t.chains
                    .iter()
                    .flat_map(move |c| c.rules.iter().map(move |r| rule_text(t, r, &names)))
            })
            .collect()
    }

    #[test]
    fn common_rules_read_like_nft() {
        let r = rules(&snapshot("backup-host-basic"));
        for want in [
            "ct state established,related accept",
            "ct state invalid counter packets 0 bytes 0 drop",
            "iif \"lo\" accept",
            "icmp type { 3, 8, 11 } accept",
            "tcp dport 22 ct state new limit rate 10/minute burst 5 packets counter packets 0 bytes 0 accept",
            "iifname \"pw-priv\" tcp dport @veeam_tcp counter packets 0 bytes 0 accept",
            "iifname \"pw-priv\" ip saddr 10.99.0.0/24 tcp dport 2548 counter packets 0 bytes 0 accept",
            "counter packets 0 bytes 0 log prefix \"portwarden-fixture drop: \" level info",
            "meta l4proto tcp reject with tcp reset",
            "reject with icmpx admin-prohibited",
        ] {
            assert!(r.iter().any(|x| x == want), "{want:?} not in {r:#?}");
        }
    }

    #[test]
    fn every_fixture_rule_renders_without_panicking() {
        let dir = format!("{}/src/eval/testdata", env!("CARGO_MANIFEST_DIR"));
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "json") {
                let s: Snapshot =
                    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
                for t in rules(&s) {
                    // Every register a rule reads was loaded by the rule itself.
                    assert!(!t.contains("[reg"), "{}: {t}", p.display());
                    if std::env::var_os("PW_PRINT_RULES").is_some() {
                        println!("{t}");
                    }
                }
                // The indexed renderer says exactly the same.
                for t in &s.tables {
                    let tt = TableText::new(t);
                    for c in &t.chains {
                        for r in &c.rules {
                            assert_eq!(tt.rule_text(r, &|_| None), rule_text(t, r, &|_| None));
                        }
                    }
                }
            }
        }
    }
}
