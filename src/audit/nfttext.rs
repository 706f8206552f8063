//! Rules as text, approximately as `nft list ruleset` prints them, for the
//! evidence of findings; and the register tracking that names what a
//! comparison compares (shared with the outbound check).
//!
//! The text is rebuilt from the decoded expressions, not taken from `nft`:
//! common matches (`meta`, `ct state`, IP and transport header fields,
//! addresses with prefixes, set lookups with their elements, ranges) read as
//! nft writes them; anything else is shown by its expression name, so the
//! text is always complete but not always valid nft syntax.

use crate::snapshot::{
    BitwiseOp, Bytes, CmpOp, CtKey, Expr, Family, MetaKey, PayloadBase, Rule, Table,
};
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

/// What a register holds, as far as the rule text needs to know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    /// `meta l4proto`, `ip protocol` or `ip6 nexthdr`.
    L4Proto,
    /// `meta nfproto`.
    NfProto,
    /// Source address (first `len` bytes), v6 or not.
    Saddr { v6: bool, len: u32 },
    /// Destination address (first `len` bytes).
    Daddr { v6: bool, len: u32 },
    /// Transport source port.
    Sport,
    /// Transport destination port.
    Dport,
    /// `ct state` (host-order bits), possibly masked.
    CtState,
    /// `meta iifname` / `oifname`.
    Ifname { input: bool },
    /// `meta iif` / `oif` (index).
    Ifindex { input: bool },
    /// Anything else, by its nft-like name.
    Other(String),
}

/// A register's content: a field, and the mask applied to it, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Loaded {
    /// The field.
    pub field: Field,
    /// `bitwise` mask applied (raw bytes), if any.
    pub mask: Option<Bytes>,
}

/// Family context gathered while reading a rule.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Ctx {
    /// Known network family: Some(false) IPv4, Some(true) IPv6.
    pub v6: Option<bool>,
    /// The last `l4proto` value compared for equality.
    pub l4: Option<u8>,
}

impl Ctx {
    /// The context a table's family gives.
    pub fn of(family: Family) -> Ctx {
        Ctx {
            v6: match family {
                Family::Ip => Some(false),
                Family::Ip6 => Some(true),
                _ => None,
            },
            l4: None,
        }
    }
}

/// The field a payload load reads.
pub(crate) fn payload_field(base: PayloadBase, offset: u32, len: u32, ctx: &Ctx) -> Field {
    match base {
        PayloadBase::Network => {
            let v6 = ctx
                .v6
                .unwrap_or(matches!((offset, len), (8 | 24, _)) && len > 4);
            match (v6, offset, len) {
                (false, 9, 1) | (true, 6, 1) => Field::L4Proto,
                (false, 12, 1..=4) => Field::Saddr { v6, len },
                (false, 16, 1..=4) => Field::Daddr { v6, len },
                (true, 8, 1..=16) => Field::Saddr { v6, len },
                (true, 24, 1..=16) => Field::Daddr { v6, len },
                _ => Field::Other(format!(
                    "{} @nh,{},{}",
                    if v6 { "ip6" } else { "ip" },
                    offset * 8,
                    len * 8
                )),
            }
        }
        PayloadBase::Transport => match (offset, len, ctx.l4) {
            (0, 2, Some(6 | 17)) | (0, 2, None) => Field::Sport,
            (2, 2, Some(6 | 17)) | (2, 2, None) => Field::Dport,
            (0, 1, Some(1)) => Field::Other("icmp type".into()),
            (0, 1, Some(58)) => Field::Other("icmpv6 type".into()),
            (13, 1, Some(6)) => Field::Other("tcp flags".into()),
            _ => Field::Other(format!("@th,{},{}", offset * 8, len * 8)),
        },
        PayloadBase::Link => Field::Other(format!("@ll,{},{}", offset * 8, len * 8)),
        PayloadBase::Inner => Field::Other(format!("@ih,{},{}", offset * 8, len * 8)),
    }
}

fn meta_field(key: MetaKey) -> Field {
    match key {
        MetaKey::L4proto => Field::L4Proto,
        MetaKey::Nfproto => Field::NfProto,
        MetaKey::Iifname => Field::Ifname { input: true },
        MetaKey::Oifname => Field::Ifname { input: false },
        MetaKey::Iif => Field::Ifindex { input: true },
        MetaKey::Oif => Field::Ifindex { input: false },
        k => Field::Other(format!("meta {}", k.name().unwrap_or("?"))),
    }
}

/// Tracks what each register holds across a rule's expressions.
#[derive(Default)]
pub(crate) struct Regs {
    regs: HashMap<u32, Loaded>,
}

impl Regs {
    /// Records the effect of a loading expression; returns true if `e` was one.
    pub fn load(&mut self, e: &Expr, ctx: &Ctx) -> bool {
        let (reg, field) = match e {
            Expr::Payload {
                base,
                offset,
                len,
                dreg,
            } => (dreg.0, payload_field(*base, *offset, *len, ctx)),
            Expr::Meta { key, dreg } => (dreg.0, meta_field(*key)),
            Expr::Ct { key, dreg, .. } => (
                dreg.0,
                match key {
                    CtKey::State => Field::CtState,
                    k => Field::Other(format!("ct {}", k.name().unwrap_or("?"))),
                },
            ),
            Expr::Bitwise {
                sreg,
                dreg,
                op: BitwiseOp::Bool,
                mask,
                ..
            } => {
                let src = self.regs.get(&sreg.0).cloned();
                match src {
                    Some(l) => {
                        self.regs.insert(
                            dreg.0,
                            Loaded {
                                field: l.field,
                                mask: mask.clone(),
                            },
                        );
                    }
                    None => {
                        self.regs.remove(&dreg.0);
                    }
                }
                return true;
            }
            Expr::Fib { dreg, .. } => (dreg.0, Field::Other("fib".into())),
            Expr::Socket { dreg, .. } => (dreg.0, Field::Other("socket".into())),
            Expr::Rt { dreg, .. } => (dreg.0, Field::Other("rt".into())),
            Expr::Numgen { dreg, .. } => (dreg.0, Field::Other("numgen".into())),
            Expr::Hash { dreg, .. } => (dreg.0, Field::Other("hash".into())),
            Expr::Exthdr { dreg: Some(d), .. } => (d.0, Field::Other("exthdr".into())),
            Expr::Immediate {
                dreg,
                data: Some(_),
                ..
            } if dreg.0 != 0 => {
                self.regs.remove(&dreg.0);
                return true;
            }
            _ => return false,
        };
        self.regs.insert(reg, Loaded { field, mask: None });
        true
    }

    /// What register `reg` holds, if known.
    pub fn get(&self, reg: u32) -> Option<&Loaded> {
        self.regs.get(&reg)
    }
}

/// Unsigned value of bytes in network (big-endian) order.
pub(crate) fn be(b: &[u8]) -> u64 {
    b.iter()
        .take(8)
        .fold(0, |acc, x| (acc << 8) | u64::from(*x))
}

/// Unsigned value of bytes in host (little-endian) order.
pub(crate) fn le(b: &[u8]) -> u64 {
    b.iter()
        .take(8)
        .rev()
        .fold(0, |acc, x| (acc << 8) | u64::from(*x))
}

fn proto_name(p: u8) -> String {
    match p {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        58 => "ipv6-icmp".into(),
        132 => "sctp".into(),
        n => n.to_string(),
    }
}

fn ct_state_names(bits: u64) -> String {
    let names = [
        (1, "invalid"),
        (2, "established"),
        (4, "related"),
        (8, "new"),
        (64, "untracked"),
    ];
    let v: Vec<&str> = names
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| *n)
        .collect();
    if v.is_empty() {
        format!("0x{bits:x}")
    } else {
        v.join(",")
    }
}

fn ifname(b: &[u8]) -> String {
    let s = b.split(|c| *c == 0).next().unwrap_or(b);
    let full = !b.contains(&0);
    format!(
        "\"{}{}\"",
        String::from_utf8_lossy(s),
        if full && b.len() < 16 { "*" } else { "" }
    )
}

fn addr_text(b: &[u8], v6: bool, full_len: u32, mask: Option<&Bytes>) -> String {
    let mut buf = vec![0u8; if v6 { 16 } else { 4 }];
    let n = b.len().min(buf.len());
    buf[..n].copy_from_slice(&b[..n]);
    let mut plen = (b.len() as u32).min(full_len) * 8;
    if let Some(m) = mask {
        plen = m.as_slice().iter().map(|x| x.count_ones()).sum();
    }
    let a = if v6 {
        let arr: [u8; 16] = buf.try_into().expect("16 bytes");
        Ipv6Addr::from(arr).to_string()
    } else {
        Ipv4Addr::new(buf[0], buf[1], buf[2], buf[3]).to_string()
    };
    if plen == full_len * 8 {
        a
    } else {
        format!("{a}/{plen}")
    }
}

/// A field's name as nft writes it.
fn field_name(f: &Field, ctx: &Ctx) -> String {
    let fam = |v6: bool| if v6 { "ip6" } else { "ip" };
    let l4 = match ctx.l4 {
        Some(6) => "tcp",
        Some(17) => "udp",
        _ => "th",
    };
    match f {
        Field::L4Proto => "meta l4proto".into(),
        Field::NfProto => "meta nfproto".into(),
        Field::Saddr { v6, .. } => format!("{} saddr", fam(*v6)),
        Field::Daddr { v6, .. } => format!("{} daddr", fam(*v6)),
        Field::Sport => format!("{l4} sport"),
        Field::Dport => format!("{l4} dport"),
        Field::CtState => "ct state".into(),
        Field::Ifname { input } => if *input { "iifname" } else { "oifname" }.into(),
        Field::Ifindex { input } => if *input { "iif" } else { "oif" }.into(),
        Field::Other(s) => s.clone(),
    }
}

/// A value of a field as nft writes it.
pub(crate) fn value_text(l: &Loaded, data: &[u8]) -> String {
    match &l.field {
        Field::L4Proto if data.len() == 1 => proto_name(data[0]),
        Field::NfProto if data.len() == 1 => match data[0] {
            2 => "ipv4".into(),
            10 => "ipv6".into(),
            n => n.to_string(),
        },
        Field::Saddr { v6, .. } | Field::Daddr { v6, .. } => {
            addr_text(data, *v6, if *v6 { 16 } else { 4 }, l.mask.as_ref())
        }
        Field::Sport | Field::Dport => be(data).to_string(),
        Field::CtState => ct_state_names(le(data)),
        Field::Ifname { .. } => ifname(data),
        Field::Ifindex { .. } => le(data).to_string(),
        Field::Other(_) => {
            if data.len() <= 2 {
                be(data).to_string()
            } else {
                format!("{:?}", Bytes(data.into()))
            }
        }
        _ => format!("{:?}", Bytes(data.into())),
    }
}

fn op_text(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "",
        CmpOp::Neq => "!= ",
        CmpOp::Lt => "< ",
        CmpOp::Lte => "<= ",
        CmpOp::Gt => "> ",
        CmpOp::Gte => ">= ",
    }
}

fn json_elem(v: &serde_json::Value) -> String {
    use serde_json::Value as J;
    match v {
        J::String(s) => s.clone(),
        J::Number(n) => n.to_string(),
        J::Array(kv) if kv.len() == 2 => format!("{} : {}", json_elem(&kv[0]), json_elem(&kv[1])),
        J::Object(m) => {
            if let Some(r) = m.get("range").and_then(|r| r.as_array()) {
                format!(
                    "{}-{}",
                    json_elem(&r[0]),
                    r.get(1).map(json_elem).unwrap_or_default()
                )
            } else if let Some(p) = m.get("prefix") {
                format!("{}/{}", json_elem(&p["addr"]), json_elem(&p["len"]))
            } else if let Some(c) = m.get("concat").and_then(|c| c.as_array()) {
                c.iter().map(json_elem).collect::<Vec<_>>().join(" . ")
            } else if let Some(e) = m.get("elem") {
                json_elem(&e["val"])
            } else if m.len() == 1 {
                let (k, v) = m.iter().next().expect("one entry");
                match v {
                    J::Null => k.clone(),
                    J::Object(t) => format!("{k} {}", json_elem(t.get("target").unwrap_or(v))),
                    other => format!("{k} {}", json_elem(other)),
                }
            } else {
                v.to_string()
            }
        }
        other => other.to_string(),
    }
}

/// `{ a, b }` for an anonymous set (first 16 elements), `@name` for a named one.
fn set_text(table: &Table, name: &str) -> String {
    let Some(set) = table.set(name) else {
        return format!("@{name}");
    };
    if !set.anonymous() {
        return format!("@{name}");
    }
    let v = serde_json::to_value(set).unwrap_or_default();
    let elems = v["elements"].as_array().cloned().unwrap_or_default();
    let mut parts: Vec<String> = elems.iter().take(16).map(json_elem).collect();
    if elems.len() > 16 {
        parts.push(format!("... ({} elements)", elems.len()));
    }
    format!("{{ {} }}", parts.join(", "))
}

fn reject_text(kind: u32, code: u8) -> String {
    match kind {
        1 => "reject with tcp reset".into(),
        2 => match code {
            0 => "reject with icmpx no-route".into(),
            1 => "reject with icmpx port-unreachable".into(),
            2 => "reject with icmpx host-unreachable".into(),
            3 => "reject with icmpx admin-prohibited".into(),
            c => format!("reject with icmpx {c}"),
        },
        _ => match code {
            3 => "reject".into(),
            c => format!("reject with icmp {c}"),
        },
    }
}

/// The rule as nft would list it (approximately; see the module docs).
pub fn rule_text(table: &Table, rule: &Rule) -> String {
    let mut ctx = Ctx::of(table.family);
    let mut regs = Regs::default();
    let mut out = Parts::default();
    for e in &rule.exprs {
        if regs.load(e, &ctx) {
            continue;
        }
        match e {
            Expr::Cmp { sreg, op, data } => {
                let Some(l) = regs.get(sreg.0).cloned() else {
                    out.push(format!("<cmp {}>", sreg.0));
                    continue;
                };
                let data = data.as_slice();
                // `ct state established,related` is `state & mask != 0`.
                if l.field == Field::CtState {
                    if let Some(m) = &l.mask {
                        let bits = le(m.as_slice());
                        let text = match op {
                            CmpOp::Neq if le(data) == 0 => {
                                format!("ct state {}", ct_state_names(bits))
                            }
                            CmpOp::Eq if le(data) == 0 => {
                                format!("ct state != {}", ct_state_names(bits))
                            }
                            _ => format!(
                                "ct state & {} {}{}",
                                ct_state_names(bits),
                                op_text(*op),
                                ct_state_names(le(data))
                            ),
                        };
                        out.push(text);
                        continue;
                    }
                }
                if *op == CmpOp::Eq && data.len() == 1 {
                    match l.field {
                        Field::L4Proto => {
                            ctx.l4 = Some(data[0]);
                            out.implicit_l4 = Some(out.v.len());
                        }
                        Field::NfProto => {
                            ctx.v6 = match data[0] {
                                2 => Some(false),
                                10 => Some(true),
                                _ => ctx.v6,
                            };
                            out.implicit_nf = Some(out.v.len());
                        }
                        _ => {}
                    }
                }
                let text = format!(
                    "{} {}{}",
                    field_name(&l.field, &ctx),
                    op_text(*op),
                    value_text(&l, data)
                );
                out.push_match(&l.field, text);
            }
            Expr::Range { sreg, op, from, to } => {
                let Some(l) = regs.get(sreg.0).cloned() else {
                    out.push("<range>".into());
                    continue;
                };
                let text = format!(
                    "{} {}{}-{}",
                    field_name(&l.field, &ctx),
                    op_text(*op),
                    value_text(&l, from.as_slice()),
                    value_text(&l, to.as_slice())
                );
                out.push_match(&l.field, text);
            }
            Expr::Lookup {
                set,
                sreg,
                dreg,
                invert,
            } => {
                let name = regs
                    .get(sreg.0)
                    .map(|l| field_name(&l.field, &ctx))
                    .unwrap_or_else(|| "<key>".into());
                let kw = match dreg {
                    Some(r) if r.0 == 0 => "vmap ",
                    Some(_) => "map ",
                    None if *invert => "!= ",
                    None => "",
                };
                let text = format!("{name} {kw}{}", set_text(table, set));
                match regs.get(sreg.0).cloned() {
                    Some(l) => out.push_match(&l.field, text),
                    None => out.push(text),
                }
            }
            Expr::Immediate {
                verdict: Some(v), ..
            } => out.push(v.to_string()),
            Expr::Counter { packets, bytes } => {
                out.push(format!("counter packets {packets} bytes {bytes}"))
            }
            Expr::Log { prefix, .. } => out.push(match prefix {
                Some(p) => format!("log prefix {p:?}"),
                None => "log".into(),
            }),
            Expr::Limit {
                rate,
                unit,
                burst,
                bytes,
                invert,
            } => {
                let unit = match unit {
                    1 => "second",
                    60 => "minute",
                    3600 => "hour",
                    86400 => "day",
                    _ => "period",
                };
                out.push(format!(
                    "limit rate {}{rate}/{unit} burst {burst} {}",
                    if *invert { "over " } else { "" },
                    if *bytes { "bytes" } else { "packets" }
                ));
            }
            Expr::Reject { kind, code } => out.push(reject_text(*kind, *code)),
            Expr::Nat { kind, .. } => out.push(format!("{kind:?}").to_lowercase()),
            Expr::Masq { .. } => out.push("masquerade".into()),
            Expr::Redir { .. } => out.push("redirect".into()),
            Expr::Notrack => out.push("notrack".into()),
            Expr::Queue { num, .. } => out.push(format!("queue num {num}")),
            Expr::Match { name, .. } => out.push(format!("xt match {name:?}")),
            Expr::Target { name, .. } => out.push(format!("xt target {name:?}")),
            Expr::Dynset { set, .. } => out.push(format!("update @{set}")),
            Expr::Unknown { name, .. } => out.push(format!("<{name}>")),
            Expr::Quota { bytes, invert, .. } => out.push(format!(
                "quota {}{bytes} bytes",
                if *invert { "over " } else { "" }
            )),
            Expr::Connlimit { count, flags } => out.push(format!(
                "ct count {}{count}",
                if flags & 1 != 0 { "over " } else { "" }
            )),
            Expr::MetaSet { key, .. } => {
                out.push(format!("meta {} set ...", key.name().unwrap_or("?")))
            }
            Expr::CtSet { key, .. } => {
                out.push(format!("ct {} set ...", key.name().unwrap_or("?")))
            }
            Expr::Objref { name, set, .. } => out.push(match (name, set) {
                (Some(n), _) => format!("{n:?}"),
                (None, Some(s)) => format!("map @{s}"),
                _ => "objref".into(),
            }),
            Expr::Tproxy { .. } => out.push("tproxy".into()),
            Expr::FlowOffload { table } => out.push(format!("flow add @{table}")),
            Expr::PayloadSet { .. } => out.push("payload set ...".into()),
            Expr::Last => out.push("last".into()),
            other => out.push(format!("<{}>", crate::eval::describe(other))),
        }
    }
    if let Some(c) = &rule.comment {
        out.push(format!("comment {c:?}"));
    }
    out.v.join(" ")
}

/// The words of a rule's text, with the position of a bare protocol match
/// that a following header field makes implicit (nft elides it).
#[derive(Default)]
struct Parts {
    v: Vec<String>,
    implicit_l4: Option<usize>,
    implicit_nf: Option<usize>,
}

impl Parts {
    fn push(&mut self, s: String) {
        self.v.push(s);
    }

    fn push_match(&mut self, field: &Field, text: String) {
        let elide = match field {
            Field::Sport | Field::Dport => self.implicit_l4.take(),
            Field::Saddr { .. } | Field::Daddr { .. } => self.implicit_nf.take(),
            _ => None,
        };
        if elide.is_some_and(|i| i + 1 == self.v.len()) {
            self.v.pop();
        }
        self.v.push(text);
    }
}
