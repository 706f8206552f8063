//! A legacy table as chains of the evaluator's own model: a [`Table`] of
//! family `ip` or `ip6` whose base chains sit at the legacy table's hooks
//! and priorities. Each rule becomes the expressions iptables-nft would
//! write for it: the header part as ordinary loads and comparisons, the
//! matches and targets as `xt` compat expressions (so whatever xt decoding
//! and evaluation exists applies to legacy rules), the standard targets as
//! verdicts.

use super::{
    AddrMatch, IfaceMatch, LegacyContents, LegacyFamily, LegacyRule, LegacyTable, LegacyTarget,
};
use crate::snapshot::{
    BaseHook, BitwiseOp, Bytes, Chain, CmpOp, Expr, Family, Hook, MetaKey, PayloadBase, Reg, Rule,
    Table, Verdict,
};
use std::net::IpAddr;

const R1: Reg = Reg(1);

fn bytes(b: &[u8]) -> Bytes {
    Bytes(b.into())
}

fn op(invert: bool) -> CmpOp {
    if invert {
        CmpOp::Neq
    } else {
        CmpOp::Eq
    }
}

fn octets(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// `ip saddr & mask == addr` (or `!=`), as the kernel's `ip_packet_match`
/// compares it.
fn addr(out: &mut Vec<Expr>, m: &AddrMatch, src: bool, v6: bool) {
    let (offset, len) = match (v6, src) {
        (false, true) => (12, 4),
        (false, false) => (16, 4),
        (true, true) => (8, 16),
        (true, false) => (24, 16),
    };
    out.push(Expr::Payload {
        base: PayloadBase::Network,
        offset,
        len,
        dreg: R1,
    });
    let mask = octets(m.mask);
    if mask.iter().any(|&b| b != 0xff) {
        out.push(Expr::Bitwise {
            sreg: R1,
            dreg: R1,
            len,
            op: BitwiseOp::Bool,
            mask: Some(bytes(&mask)),
            xor: Some(bytes(&vec![0; len as usize])),
            data: None,
        });
    }
    out.push(Expr::Cmp {
        sreg: R1,
        op: op(m.invert),
        data: bytes(&octets(m.addr)),
    });
}

/// `iifname "eth0"` (the name and its NUL padding) or `iifname "eth*"`
/// (the prefix only).
fn iface(out: &mut Vec<Expr>, m: &IfaceMatch, key: MetaKey) {
    out.push(Expr::Meta { key, dreg: R1 });
    let mut data = m.name.as_bytes().to_vec();
    if !m.wildcard {
        data.resize(16, 0);
    }
    if data.is_empty() {
        // `! -i +`: matches no packet (an empty prefix matches every name).
        out.push(Expr::Immediate {
            dreg: Reg(0),
            verdict: Some(Verdict::Break),
            data: None,
        });
        return;
    }
    out.push(Expr::Cmp {
        sreg: R1,
        op: op(m.invert),
        data: bytes(&data),
    });
}

/// The expressions of one rule.
fn exprs(r: &LegacyRule, v6: bool) -> Vec<Expr> {
    let mut out = Vec::new();
    let ip = &r.ip;
    if let Some(m) = &ip.src {
        addr(&mut out, m, true, v6);
    }
    if let Some(m) = &ip.dst {
        addr(&mut out, m, false, v6);
    }
    if let Some(m) = &ip.iniface {
        iface(&mut out, m, MetaKey::Iifname);
    }
    if let Some(m) = &ip.outiface {
        iface(&mut out, m, MetaKey::Oifname);
    }
    if let Some(p) = ip.proto {
        out.push(Expr::Meta {
            key: MetaKey::L4proto,
            dreg: R1,
        });
        out.push(Expr::Cmp {
            sreg: R1,
            op: op(p.invert),
            data: bytes(&[p.proto]),
        });
    }
    if let Some(frag) = ip.fragment {
        // Fragment offset (not the flags) non-zero: a later fragment.
        out.push(Expr::Payload {
            base: PayloadBase::Network,
            offset: 6,
            len: 2,
            dreg: R1,
        });
        out.push(Expr::Bitwise {
            sreg: R1,
            dreg: R1,
            len: 2,
            op: BitwiseOp::Bool,
            mask: Some(bytes(&[0x1f, 0xff])),
            xor: Some(bytes(&[0, 0])),
            data: None,
        });
        out.push(Expr::Cmp {
            sreg: R1,
            op: op(frag),
            data: bytes(&[0, 0]),
        });
    }
    for m in &r.matches {
        out.push(Expr::Match {
            name: m.name.clone(),
            rev: u32::from(m.rev),
            info: Box::new(m.info.clone()),
        });
    }
    let verdict = |v| Expr::Immediate {
        dreg: Reg(0),
        verdict: Some(v),
        data: None,
    };
    match &r.target {
        LegacyTarget::Accept => out.push(verdict(Verdict::Accept)),
        LegacyTarget::Drop => out.push(verdict(Verdict::Drop)),
        LegacyTarget::Queue => out.push(verdict(Verdict::Queue(0))),
        LegacyTarget::Return => out.push(verdict(Verdict::Return)),
        LegacyTarget::Jump { chain } => out.push(verdict(Verdict::Jump(chain.clone()))),
        LegacyTarget::Goto { chain } => out.push(verdict(Verdict::Goto(chain.clone()))),
        LegacyTarget::Fallthrough => out.push(Expr::Counter {
            packets: 0,
            bytes: 0,
        }),
        LegacyTarget::Target { name, rev, info } => out.push(Expr::Target {
            name: name.clone(),
            rev: u32::from(*rev),
            info: Box::new(info.clone()),
        }),
    }
    out
}

/// The rules of a chain; a rule's handle is its line number
/// (`iptables -L --line-numbers`, `iptables -D CHAIN N`).
fn rules(list: &[LegacyRule], v6: bool) -> Vec<Rule> {
    list.iter()
        .enumerate()
        .map(|(i, r)| Rule {
            handle: i as u64 + 1,
            position: i as u32,
            comment: None,
            exprs: exprs(r, v6),
            incomplete: false,
        })
        .collect()
}

/// The chain type a legacy table's chain at `hook` behaves as: `nat`
/// tables see the first packet of a connection only; the mangle table
/// routes a locally generated packet again when it changed it.
fn kind(table: &str, hook: Hook) -> &'static str {
    match (table, hook) {
        ("nat", _) => "nat",
        ("mangle", Hook::Output) => "route",
        _ => "filter",
    }
}

impl LegacyTable {
    /// The name the evaluator knows this table by: `filter
    /// (iptables-legacy)`, never the name of an nf_tables table.
    pub fn eval_name(&self) -> String {
        format!("{} ({})", self.name, self.family.command())
    }

    /// The table name and family of a name the evaluator knows a legacy
    /// table by ([`Self::eval_name`]).
    pub fn parse_eval_name(name: &str) -> Option<(&str, LegacyFamily)> {
        if let Some(t) = name.strip_suffix(" (iptables-legacy)") {
            Some((t, LegacyFamily::Ipv4))
        } else {
            name.strip_suffix(" (ip6tables-legacy)")
                .map(|t| (t, LegacyFamily::Ipv6))
        }
    }

    /// Whether `name` is the name the evaluator knows a legacy table by
    /// ([`Self::eval_name`]).
    pub fn is_eval_name(name: &str) -> bool {
        name.ends_with(" (iptables-legacy)") || name.ends_with(" (ip6tables-legacy)")
    }

    /// This table as chains of the evaluator's model, when it was read
    /// and portwarden knows its priorities (otherwise see
    /// [`Self::deciding`]). A built-in chain without a known priority is
    /// left out, and so is one that cannot change a packet's fate (no
    /// rules, policy ACCEPT).
    pub fn to_table(&self) -> Option<Table> {
        let LegacyContents::Read {
            chains,
            user_chains,
            ..
        } = &self.contents
        else {
            return None;
        };
        let v6 = self.family == LegacyFamily::Ipv6;
        let mut out = Vec::new();
        // An empty chain with policy ACCEPT lets every packet on, as if it
        // were not there (`iptables -L` creates a table of them): left out.
        for c in chains.iter().filter(|c| c.can_decide()) {
            let Some(priority) = c.priority else { continue };
            out.push(Chain {
                name: c.name.clone(),
                handle: out.len() as u64 + 1,
                base: Some(BaseHook {
                    kind: kind(&self.name, c.hook).to_string(),
                    hook: c.hook,
                    priority,
                    policy: c.policy,
                    devices: Vec::new(),
                }),
                rules: rules(&c.rules, v6),
            });
        }
        for c in user_chains {
            out.push(Chain {
                name: c.name.clone(),
                handle: out.len() as u64 + 1,
                base: None,
                rules: rules(&c.rules, v6),
            });
        }
        Some(Table {
            family: if v6 { Family::Ip6 } else { Family::Ip },
            name: self.eval_name(),
            handle: 0,
            flags: 0,
            chains: out,
            sets: Vec::new(),
            flowtables: Vec::new(),
            objects: Vec::new(),
        })
    }
}
