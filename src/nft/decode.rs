//! Turns libnftnl's parsed objects into snapshot values (safe code).
//!
//! Each function decodes one netlink message, so the same code serves a full
//! dump and, later, the change notifications that update a snapshot in place.

use super::sys::{self, Elem, Expr as NlExpr, Msg};
use crate::snapshot::value::{self, Datatype};
use crate::snapshot::xt;
use crate::snapshot::*;
use nftnl_sys as ffi;

/// A message the decoder could not use, with what it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("undecodable {what} message: {why}")]
pub struct DecodeError {
    /// The kind of object.
    pub what: &'static str,
    /// What was wrong.
    pub why: String,
}

fn err(what: &'static str, why: impl Into<String>) -> DecodeError {
    DecodeError {
        what,
        why: why.into(),
    }
}

fn family(f: Option<u32>, what: &'static str) -> Result<Family, DecodeError> {
    let n = f.ok_or_else(|| err(what, "no family"))?;
    Family::from_nfproto(n).ok_or_else(|| err(what, format!("unknown family {n}")))
}

/// Where an object lives: family, table and (for rules) chain.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    /// Family of the table.
    pub family: Family,
    /// Table name.
    pub table: String,
    /// Chain or set name, when the object belongs to one.
    pub parent: Option<String>,
}

/// Decodes a table message (chains and sets come separately).
pub fn table(m: Msg<'_>) -> Result<Table, DecodeError> {
    let t = sys::Table::try_parse(m).map_err(|e| err("table", e.to_string()))?;
    Ok(Table {
        family: family(t.u32(ffi::NFTNL_TABLE_FAMILY), "table")?,
        name: t
            .str(ffi::NFTNL_TABLE_NAME)
            .ok_or_else(|| err("table", "no name"))?
            .to_string(),
        handle: t.u64(ffi::NFTNL_TABLE_HANDLE).unwrap_or(0),
        flags: t.u32(ffi::NFTNL_TABLE_FLAGS).unwrap_or(0),
        chains: Vec::new(),
        sets: Vec::new(),
        flowtables: Vec::new(),
        objects: Vec::new(),
    })
}

/// Decodes a chain message.
pub fn chain(m: Msg<'_>) -> Result<(Location, Chain), DecodeError> {
    let c = sys::Chain::try_parse(m).map_err(|e| err("chain", e.to_string()))?;
    let fam = family(c.u32(ffi::NFTNL_CHAIN_FAMILY), "chain")?;
    let name = c
        .str(ffi::NFTNL_CHAIN_NAME)
        .ok_or_else(|| err("chain", "no name"))?
        .to_string();
    let base = match c.u32(ffi::NFTNL_CHAIN_HOOKNUM) {
        None => None,
        Some(n) => {
            let hook = Hook::from_raw(fam, n)
                .ok_or_else(|| err("chain", format!("chain {name}: unknown hook {n}")))?;
            let mut devices = c.strings(ffi::NFTNL_CHAIN_DEVICES);
            // libnftnl reports a single device both as DEV and in DEVICES.
            if let Some(d) = c.str(ffi::NFTNL_CHAIN_DEV) {
                if !devices.iter().any(|x| x == d) {
                    devices.push(d.to_string());
                }
            }
            Some(BaseHook {
                kind: c.str(ffi::NFTNL_CHAIN_TYPE).unwrap_or("filter").to_string(),
                hook,
                priority: c.s32(ffi::NFTNL_CHAIN_PRIO).unwrap_or(0),
                // NF_DROP = 0, NF_ACCEPT = 1; a base chain without one accepts.
                policy: match c.u32(ffi::NFTNL_CHAIN_POLICY) {
                    Some(0) => Policy::Drop,
                    _ => Policy::Accept,
                },
                devices,
            })
        }
    };
    let loc = Location {
        family: fam,
        table: c
            .str(ffi::NFTNL_CHAIN_TABLE)
            .unwrap_or_default()
            .to_string(),
        parent: None,
    };
    Ok((
        loc,
        Chain {
            name,
            handle: c.u64(ffi::NFTNL_CHAIN_HANDLE).unwrap_or(0),
            base,
            rules: Vec::new(),
        },
    ))
}

/// Walks type-length-value userdata (libnftnl's `nftnl_udata` format).
fn udata(b: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    let mut rest = b;
    std::iter::from_fn(move || {
        let (&t, r) = rest.split_first()?;
        let (&l, r) = r.split_first()?;
        let v = r.get(..l as usize)?;
        rest = &r[l as usize..];
        Some((t, v))
    })
}

fn udata_str(b: &[u8]) -> String {
    String::from_utf8_lossy(b.split(|c| *c == 0).next().unwrap_or_default()).into_owned()
}

/// Netlink attributes: `(type, payload)`, stopping at the first malformed one.
fn nl_attrs(b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut rest = b;
    std::iter::from_fn(move || {
        let len = u16::from_ne_bytes(rest.get(..2)?.try_into().ok()?) as usize;
        let ty = u16::from_ne_bytes(rest.get(2..4)?.try_into().ok()?) & 0x3fff;
        let v = rest.get(4..len)?;
        rest = rest.get(len.next_multiple_of(4)..).unwrap_or_default();
        Some((ty, v))
    })
}

/// Decodes a rule message. A rule libnftnl rejects (it refuses a whole rule
/// when one expression name is new to it) is rebuilt from the raw attributes
/// with every expression [`Expr::Unknown`], so it is never lost; a rule the
/// validator refuses (libnftnl would exit on it) is an error.
pub fn rule(
    m: Msg<'_>,
    v6_table: impl Fn(Family) -> bool,
) -> Result<(Location, Rule), DecodeError> {
    let r = match sys::Rule::try_parse(m) {
        Ok(r) => r,
        Err(sys::ParseError::Rejected) => return raw_rule(m),
        Err(e) => return Err(err("rule", e.to_string())),
    };
    let fam = family(r.u32(ffi::NFTNL_RULE_FAMILY), "rule")?;
    let loc = Location {
        family: fam,
        table: r.str(ffi::NFTNL_RULE_TABLE).unwrap_or_default().to_string(),
        parent: r.str(ffi::NFTNL_RULE_CHAIN).map(String::from),
    };
    let comment = r
        .data(ffi::NFTNL_RULE_USERDATA)
        .and_then(|u| udata(u).find(|(t, _)| *t == 0).map(|(_, v)| udata_str(v)));
    let v6 = v6_table(fam);
    let exprs: Vec<Expr> = r.exprs().iter().map(|e| expr(e, v6)).collect();
    Ok((
        loc,
        Rule {
            handle: r.u64(ffi::NFTNL_RULE_HANDLE).unwrap_or(0),
            position: 0,
            comment,
            incomplete: exprs.iter().any(|e| matches!(e, Expr::Unknown { .. })),
            exprs,
        },
    ))
}

fn raw_rule(m: Msg<'_>) -> Result<(Location, Rule), DecodeError> {
    let fam = family(m.family().map(u32::from), "rule")?;
    let (mut table, mut chain, mut handle, mut exprs) = (None, None, 0u64, Vec::new());
    for (ty, v) in nl_attrs(m.attrs()) {
        match ty {
            1 => table = Some(udata_str(v)),
            2 => chain = Some(udata_str(v)),
            3 if v.len() == 8 => handle = u64::from_be_bytes(v.try_into().expect("8 bytes")),
            4 => {
                for (_, elem) in nl_attrs(v) {
                    let name = nl_attrs(elem)
                        .find(|(t, _)| *t == 1)
                        .map(|(_, n)| udata_str(n))
                        .unwrap_or_default();
                    exprs.push(Expr::Unknown {
                        name,
                        reason: "rule rejected by libnftnl (expression unknown to it)".into(),
                    });
                }
            }
            _ => {}
        }
    }
    let table = table.ok_or_else(|| err("rule", "no table"))?;
    if exprs.is_empty() {
        exprs.push(Expr::Unknown {
            name: String::new(),
            reason: "rule rejected by libnftnl".into(),
        });
    }
    Ok((
        Location {
            family: fam,
            table,
            parent: chain,
        },
        Rule {
            handle,
            position: 0,
            comment: None,
            exprs,
            incomplete: true,
        },
    ))
}

fn reg(e: &NlExpr<'_>, attr: u32) -> Option<Reg> {
    e.u32(attr).map(Reg)
}

fn bytes(e: &NlExpr<'_>, attr: u32) -> Option<Bytes> {
    e.data(attr).map(Bytes::from)
}

/// Decodes one expression; anything missing or unknown becomes
/// [`Expr::Unknown`] with the reason.
pub fn expr(e: &NlExpr<'_>, v6: bool) -> Expr {
    let name = e.name();
    decode_expr(e, name, v6).unwrap_or_else(|| Expr::Unknown {
        name: name.to_string(),
        reason: if KNOWN.contains(&name) {
            "attributes missing or out of range".into()
        } else {
            "expression type not decoded by portwarden".into()
        },
    })
}

/// Expression names with a typed decoding.
pub(crate) const KNOWN: &[&str] = &[
    "payload",
    "cmp",
    "bitwise",
    "byteorder",
    "meta",
    "ct",
    "lookup",
    "immediate",
    "range",
    "counter",
    "log",
    "limit",
    "quota",
    "reject",
    "nat",
    "masq",
    "redir",
    "fib",
    "dynset",
    "objref",
    "socket",
    "exthdr",
    "notrack",
    "rt",
    "queue",
    "connlimit",
    "numgen",
    "hash",
    "flow_offload",
    "last",
    "tproxy",
    "match",
    "target",
];

fn decode_expr(e: &NlExpr<'_>, name: &str, v6: bool) -> Option<Expr> {
    use ffi::*;
    Some(match name {
        "payload" => {
            let base = PayloadBase::from_raw(e.u32(NFTNL_EXPR_PAYLOAD_BASE)?)?;
            let offset = e.u32(NFTNL_EXPR_PAYLOAD_OFFSET)?;
            let len = e.u32(NFTNL_EXPR_PAYLOAD_LEN)?;
            match reg(e, NFTNL_EXPR_PAYLOAD_DREG) {
                Some(dreg) => Expr::Payload {
                    base,
                    offset,
                    len,
                    dreg,
                },
                None => Expr::PayloadSet {
                    base,
                    offset,
                    len,
                    sreg: reg(e, NFTNL_EXPR_PAYLOAD_SREG)?,
                },
            }
        }
        "cmp" => Expr::Cmp {
            sreg: reg(e, NFTNL_EXPR_CMP_SREG)?,
            op: CmpOp::from_raw(e.u32(NFTNL_EXPR_CMP_OP)?)?,
            data: bytes(e, NFTNL_EXPR_CMP_DATA)?,
        },
        "bitwise" => Expr::Bitwise {
            sreg: reg(e, NFTNL_EXPR_BITWISE_SREG)?,
            dreg: reg(e, NFTNL_EXPR_BITWISE_DREG)?,
            len: e.u32(NFTNL_EXPR_BITWISE_LEN)?,
            op: match e.u32(NFTNL_EXPR_BITWISE_OP).unwrap_or(0) {
                0 => BitwiseOp::Bool,
                1 => BitwiseOp::Lshift,
                2 => BitwiseOp::Rshift,
                _ => return None,
            },
            mask: bytes(e, NFTNL_EXPR_BITWISE_MASK),
            xor: bytes(e, NFTNL_EXPR_BITWISE_XOR),
            data: bytes(e, NFTNL_EXPR_BITWISE_DATA),
        },
        "byteorder" => Expr::Byteorder {
            sreg: reg(e, NFTNL_EXPR_BYTEORDER_SREG)?,
            dreg: reg(e, NFTNL_EXPR_BYTEORDER_DREG)?,
            op: e.u32(NFTNL_EXPR_BYTEORDER_OP)?,
            len: e.u32(NFTNL_EXPR_BYTEORDER_LEN)?,
            size: e.u32(NFTNL_EXPR_BYTEORDER_SIZE)?,
        },
        "meta" => {
            let key = MetaKey::from_raw(e.u32(NFTNL_EXPR_META_KEY)?);
            match reg(e, NFTNL_EXPR_META_DREG) {
                Some(dreg) => Expr::Meta { key, dreg },
                None => Expr::MetaSet {
                    key,
                    sreg: reg(e, NFTNL_EXPR_META_SREG)?,
                },
            }
        }
        "ct" => {
            let key = CtKey::from_raw(e.u32(NFTNL_EXPR_CT_KEY)?);
            match reg(e, NFTNL_EXPR_CT_DREG) {
                Some(dreg) => Expr::Ct {
                    key,
                    dir: e.u32(NFTNL_EXPR_CT_DIR).map(|d| d as u8),
                    dreg,
                },
                None => Expr::CtSet {
                    key,
                    dir: e.u32(NFTNL_EXPR_CT_DIR).map(|d| d as u8),
                    sreg: reg(e, NFTNL_EXPR_CT_SREG)?,
                },
            }
        }
        "lookup" => Expr::Lookup {
            set: e.str(NFTNL_EXPR_LOOKUP_SET)?.to_string(),
            sreg: reg(e, NFTNL_EXPR_LOOKUP_SREG)?,
            dreg: reg(e, NFTNL_EXPR_LOOKUP_DREG),
            invert: e.u32(NFTNL_EXPR_LOOKUP_FLAGS).unwrap_or(0) & 1 != 0,
        },
        "immediate" => {
            let dreg = reg(e, NFTNL_EXPR_IMM_DREG)?;
            if dreg.0 == 0 {
                let code = e.u32(NFTNL_EXPR_IMM_VERDICT)? as i32;
                Expr::Immediate {
                    dreg,
                    verdict: Some(Verdict::from_raw(code, e.str(NFTNL_EXPR_IMM_CHAIN))?),
                    data: None,
                }
            } else {
                Expr::Immediate {
                    dreg,
                    verdict: None,
                    data: Some(bytes(e, NFTNL_EXPR_IMM_DATA)?),
                }
            }
        }
        "range" => Expr::Range {
            sreg: reg(e, NFTNL_EXPR_RANGE_SREG)?,
            op: CmpOp::from_raw(e.u32(NFTNL_EXPR_RANGE_OP)?)?,
            from: bytes(e, NFTNL_EXPR_RANGE_FROM_DATA)?,
            to: bytes(e, NFTNL_EXPR_RANGE_TO_DATA)?,
        },
        "counter" => Expr::Counter {
            packets: e.uint(NFTNL_EXPR_CTR_PACKETS).unwrap_or(0),
            bytes: e.uint(NFTNL_EXPR_CTR_BYTES).unwrap_or(0),
        },
        "log" => Expr::Log {
            prefix: e.str(NFTNL_EXPR_LOG_PREFIX).map(String::from),
            level: e.u32(NFTNL_EXPR_LOG_LEVEL),
            group: e.u32(NFTNL_EXPR_LOG_GROUP).map(|g| g as u16),
        },
        "limit" => Expr::Limit {
            rate: e.uint(NFTNL_EXPR_LIMIT_RATE)?,
            unit: e.uint(NFTNL_EXPR_LIMIT_UNIT)?,
            burst: e.u32(NFTNL_EXPR_LIMIT_BURST).unwrap_or(0),
            bytes: e.u32(NFTNL_EXPR_LIMIT_TYPE).unwrap_or(0) == 1,
            invert: e.u32(NFTNL_EXPR_LIMIT_FLAGS).unwrap_or(0) & 1 != 0,
        },
        "quota" => Expr::Quota {
            bytes: e.uint(NFTNL_EXPR_QUOTA_BYTES)?,
            consumed: e.uint(NFTNL_EXPR_QUOTA_CONSUMED).unwrap_or(0),
            invert: e.u32(NFTNL_EXPR_QUOTA_FLAGS).unwrap_or(0) & 1 != 0,
        },
        "reject" => Expr::Reject {
            kind: e.u32(NFTNL_EXPR_REJECT_TYPE)?,
            code: e.u32(NFTNL_EXPR_REJECT_CODE).unwrap_or(0) as u8,
        },
        "nat" => Expr::Nat {
            kind: match e.u32(NFTNL_EXPR_NAT_TYPE)? {
                0 => NatKind::Snat,
                1 => NatKind::Dnat,
                _ => return None,
            },
            family: e.u32(NFTNL_EXPR_NAT_FAMILY).unwrap_or(0),
            reg_addr_min: reg(e, NFTNL_EXPR_NAT_REG_ADDR_MIN),
            reg_addr_max: reg(e, NFTNL_EXPR_NAT_REG_ADDR_MAX),
            reg_proto_min: reg(e, NFTNL_EXPR_NAT_REG_PROTO_MIN),
            reg_proto_max: reg(e, NFTNL_EXPR_NAT_REG_PROTO_MAX),
            flags: e.u32(NFTNL_EXPR_NAT_FLAGS).unwrap_or(0),
        },
        "masq" => Expr::Masq {
            flags: e.u32(NFTNL_EXPR_MASQ_FLAGS).unwrap_or(0),
            reg_proto_min: reg(e, NFTNL_EXPR_MASQ_REG_PROTO_MIN),
            reg_proto_max: reg(e, NFTNL_EXPR_MASQ_REG_PROTO_MAX),
        },
        "redir" => Expr::Redir {
            flags: e.u32(NFTNL_EXPR_REDIR_FLAGS).unwrap_or(0),
            reg_proto_min: reg(e, NFTNL_EXPR_REDIR_REG_PROTO_MIN),
            reg_proto_max: reg(e, NFTNL_EXPR_REDIR_REG_PROTO_MAX),
        },
        "fib" => Expr::Fib {
            flags: e.u32(NFTNL_EXPR_FIB_FLAGS)?,
            result: e.u32(NFTNL_EXPR_FIB_RESULT)?,
            dreg: reg(e, NFTNL_EXPR_FIB_DREG)?,
        },
        "dynset" => Expr::Dynset {
            set: e.str(NFTNL_EXPR_DYNSET_SET_NAME)?.to_string(),
            op: e.u32(NFTNL_EXPR_DYNSET_OP)?,
            sreg_key: reg(e, NFTNL_EXPR_DYNSET_SREG_KEY)?,
            sreg_data: reg(e, NFTNL_EXPR_DYNSET_SREG_DATA),
            timeout: e.uint(NFTNL_EXPR_DYNSET_TIMEOUT).filter(|t| *t != 0),
            exprs: e.nested().iter().map(|n| expr(n, v6)).collect(),
            flags: e.u32(NFTNL_EXPR_DYNSET_FLAGS).unwrap_or(0),
        },
        "objref" => Expr::Objref {
            object_type: e.u32(NFTNL_EXPR_OBJREF_IMM_TYPE),
            name: e.str(NFTNL_EXPR_OBJREF_IMM_NAME).map(String::from),
            set: e.str(NFTNL_EXPR_OBJREF_SET_NAME).map(String::from),
            sreg: reg(e, NFTNL_EXPR_OBJREF_SET_SREG),
        },
        "socket" => Expr::Socket {
            key: e.u32(NFTNL_EXPR_SOCKET_KEY)?,
            level: e.u32(NFTNL_EXPR_SOCKET_LEVEL).unwrap_or(0),
            dreg: reg(e, NFTNL_EXPR_SOCKET_DREG)?,
        },
        "exthdr" => Expr::Exthdr {
            op: e.u32(NFTNL_EXPR_EXTHDR_OP).unwrap_or(0),
            kind: e.u32(NFTNL_EXPR_EXTHDR_TYPE)? as u8,
            offset: e.u32(NFTNL_EXPR_EXTHDR_OFFSET).unwrap_or(0),
            len: e.u32(NFTNL_EXPR_EXTHDR_LEN).unwrap_or(0),
            flags: e.u32(NFTNL_EXPR_EXTHDR_FLAGS).unwrap_or(0),
            dreg: reg(e, NFTNL_EXPR_EXTHDR_DREG),
        },
        "notrack" => Expr::Notrack,
        "rt" => Expr::Rt {
            key: e.u32(NFTNL_EXPR_RT_KEY)?,
            dreg: reg(e, NFTNL_EXPR_RT_DREG)?,
        },
        "queue" => Expr::Queue {
            num: e.u32(NFTNL_EXPR_QUEUE_NUM).unwrap_or(0) as u16,
            total: e.u32(NFTNL_EXPR_QUEUE_TOTAL).unwrap_or(1) as u16,
            flags: e.u32(NFTNL_EXPR_QUEUE_FLAGS).unwrap_or(0) as u16,
        },
        "connlimit" => Expr::Connlimit {
            count: e.u32(NFTNL_EXPR_CONNLIMIT_COUNT)?,
            flags: e.u32(NFTNL_EXPR_CONNLIMIT_FLAGS).unwrap_or(0),
        },
        "numgen" => Expr::Numgen {
            dreg: reg(e, NFTNL_EXPR_NG_DREG)?,
            modulus: e.u32(NFTNL_EXPR_NG_MODULUS)?,
            kind: e.u32(NFTNL_EXPR_NG_TYPE).unwrap_or(0),
            offset: e.u32(NFTNL_EXPR_NG_OFFSET).unwrap_or(0),
        },
        "hash" => Expr::Hash {
            dreg: reg(e, NFTNL_EXPR_HASH_DREG)?,
            modulus: e.u32(NFTNL_EXPR_HASH_MODULUS)?,
            kind: e.u32(NFTNL_EXPR_HASH_TYPE).unwrap_or(0),
            offset: e.u32(NFTNL_EXPR_HASH_OFFSET).unwrap_or(0),
        },
        "flow_offload" => Expr::FlowOffload {
            table: e.str(NFTNL_EXPR_FLOW_TABLE_NAME)?.to_string(),
        },
        "last" => Expr::Last,
        "tproxy" => Expr::Tproxy {
            family: e.u32(NFTNL_EXPR_TPROXY_FAMILY).unwrap_or(0),
            reg_addr: reg(e, NFTNL_EXPR_TPROXY_REG_ADDR),
            reg_port: reg(e, NFTNL_EXPR_TPROXY_REG_PORT),
        },
        "match" => {
            let (n, rev) = (
                e.str(NFTNL_EXPR_MT_NAME)?,
                e.u32(NFTNL_EXPR_MT_REV).unwrap_or(0),
            );
            Expr::Match {
                name: n.to_string(),
                rev,
                info: Box::new(xt::decode_match(
                    n,
                    rev,
                    e.data(NFTNL_EXPR_MT_INFO).unwrap_or_default(),
                    v6,
                )),
            }
        }
        "target" => {
            let (n, rev) = (
                e.str(NFTNL_EXPR_TG_NAME)?,
                e.u32(NFTNL_EXPR_TG_REV).unwrap_or(0),
            );
            Expr::Target {
                name: n.to_string(),
                rev,
                info: Box::new(xt::decode_target(
                    n,
                    rev,
                    e.data(NFTNL_EXPR_TG_INFO).unwrap_or_default(),
                    v6,
                )),
            }
        }
        _ => return None,
    })
}

/// Decodes a set message (its elements come separately).
pub fn set(m: Msg<'_>) -> Result<(Location, Set), DecodeError> {
    let s = sys::Set::try_parse(m).map_err(|e| err("set", e.to_string()))?;
    let fam = family(s.u32(ffi::NFTNL_SET_FAMILY), "set")?;
    let name = s
        .str(ffi::NFTNL_SET_NAME)
        .ok_or_else(|| err("set", "no name"))?
        .to_string();
    let ud: Vec<(u8, &[u8])> = s
        .data(ffi::NFTNL_SET_USERDATA)
        .map(|u| udata(u).collect())
        .unwrap_or_default();
    let ud_u32 = |t: u8| {
        ud.iter()
            .find(|(k, v)| *k == t && v.len() == 4)
            .map(|(_, v)| u32::from_ne_bytes((*v).try_into().expect("4 bytes")))
    };
    // nftables byteorder enum: 1 host, 2 big endian.
    let key_host = ud_u32(0) == Some(1);
    let data_host = ud_u32(1) == Some(1);
    let comment = ud.iter().find(|(k, _)| *k == 7).map(|(_, v)| udata_str(v));

    let key_len = s.u32(ffi::NFTNL_SET_KEY_LEN).unwrap_or(0);
    let ids = value::split_concat_type(s.u32(ffi::NFTNL_SET_KEY_TYPE).unwrap_or(0));
    let desc: Vec<u32> = s
        .data(ffi::NFTNL_SET_DESC_CONCAT)
        .map(|d| d.iter().map(|x| u32::from(*x)).collect())
        .unwrap_or_default();
    let key = key_type(&ids, key_len, &desc, key_host);
    let flags = s.u32(ffi::NFTNL_SET_FLAGS).unwrap_or(0);
    let data = if flags & flags::MAP != 0 {
        let dt = s.u32(ffi::NFTNL_SET_DATA_TYPE).unwrap_or(0);
        let len = s.u32(ffi::NFTNL_SET_DATA_LEN).unwrap_or(0);
        Some(if dt == 0xffff_ff00 {
            KeyType(vec![Datatype::new(value::VERDICT, 0)])
        } else {
            key_type(&value::split_concat_type(dt), len, &[], data_host)
        })
    } else {
        None
    };
    Ok((
        Location {
            family: fam,
            table: s.str(ffi::NFTNL_SET_TABLE).unwrap_or_default().to_string(),
            parent: None,
        },
        Set {
            name,
            handle: s.u64(ffi::NFTNL_SET_HANDLE).unwrap_or(0),
            flags,
            key,
            data,
            timeout_ms: s.u64(ffi::NFTNL_SET_TIMEOUT).filter(|t| *t != 0),
            comment,
            elements: Vec::new(),
        },
    ))
}

/// Component datatypes with their lengths: from the set's concat
/// description when present, else from the types' fixed sizes, with the one
/// unknown size (an `integer` from `typeof`) taking what is left.
fn key_type(ids: &[u32], key_len: u32, desc: &[u32], host: bool) -> KeyType {
    let mut lens: Vec<Option<u32>> = if desc.len() == ids.len() {
        desc.iter().map(|l| Some(*l)).collect()
    } else if ids.len() == 1 {
        vec![Some(key_len)]
    } else {
        ids.iter().map(|i| value::fixed_len(*i)).collect()
    };
    let known: u32 = lens.iter().flatten().map(|l| l.div_ceil(4) * 4).sum();
    if lens.iter().filter(|l| l.is_none()).count() == 1 {
        if let Some(slot) = lens.iter_mut().find(|l| l.is_none()) {
            *slot = Some(key_len.saturating_sub(known));
        }
    }
    KeyType(
        ids.iter()
            .zip(lens)
            .map(|(id, len)| {
                let mut d = Datatype::new(*id, len.unwrap_or(0));
                d.host_order |= host && *id == value::INTEGER;
                d
            })
            .collect(),
    )
}

/// Elements of one set as they arrive, before interval ends are paired up.
#[derive(Debug, Default)]
pub struct ElemSink {
    /// Elements (for interval sets: range starts).
    pub starts: Vec<Element>,
    /// Exclusive range ends (`NFT_SET_ELEM_INTERVAL_END`) of interval sets.
    pub ends: Vec<Key>,
}

/// Decodes every element of one element message into `sink`.
pub fn elements(m: Msg<'_>, sink: &mut ElemSink) -> Result<(), DecodeError> {
    sys::for_each_elem(m, |e| element(e, sink)).map_err(|e| err("set element", e.to_string()))
}

fn element(e: &Elem<'_>, sink: &mut ElemSink) {
    let flags = e.u32(ffi::NFTNL_SET_ELEM_FLAGS).unwrap_or(0);
    // NFT_SET_ELEM_CATCHALL elements have no key; they are kept with an empty one.
    let key: Key = e
        .data(ffi::NFTNL_SET_ELEM_KEY)
        .map(Key::from)
        .unwrap_or_default();
    if flags & 1 != 0 {
        sink.ends.push(key);
        return;
    }
    let key_end = e
        .data(ffi::NFTNL_SET_ELEM_KEY_END)
        .filter(|k| *k != key.as_slice())
        .map(Key::from);
    let data = if let Some(code) = e.u32(ffi::NFTNL_SET_ELEM_VERDICT) {
        Verdict::from_raw(code as i32, e.str(ffi::NFTNL_SET_ELEM_CHAIN)).map(ElemData::Verdict)
    } else if let Some(o) = e.str(ffi::NFTNL_SET_ELEM_OBJREF) {
        Some(ElemData::Object(o.to_string()))
    } else {
        e.data(ffi::NFTNL_SET_ELEM_DATA)
            .map(|d| ElemData::Value(d.into()))
    };
    let comment = e
        .data(ffi::NFTNL_SET_ELEM_USERDATA)
        .and_then(|u| udata(u).find(|(t, _)| *t == 0).map(|(_, v)| udata_str(v)));
    let timeout_ms = e.u64(ffi::NFTNL_SET_ELEM_TIMEOUT).filter(|t| *t != 0);
    let expires_ms = e.u64(ffi::NFTNL_SET_ELEM_EXPIRATION).filter(|t| *t != 0);
    let extra = (timeout_ms.is_some() || expires_ms.is_some() || comment.is_some()).then(|| {
        Box::new(ElemExtra {
            timeout_ms,
            expires_ms,
            comment,
        })
    });
    sink.starts.push(Element {
        key,
        key_end,
        data: data.map(Box::new),
        extra,
    });
}

/// Puts decoded elements into `set`, closing the ranges of interval sets
/// (concatenated interval sets already carry their `key_end`).
pub fn fill_set(set: &mut Set, mut sink: ElemSink) {
    if set.interval() && set.key.0.len() == 1 {
        close_ranges(&mut sink.starts, &mut sink.ends);
        set.elements = sink.starts;
    } else {
        set.elements = sink.starts;
        set.sort();
    }
    set.elements.shrink_to_fit();
}

/// Decodes a stateful object message.
pub fn object(m: Msg<'_>) -> Result<(Location, Object), DecodeError> {
    let o = sys::Obj::try_parse(m).map_err(|e| err("object", e.to_string()))?;
    let fam = family(o.u32(ffi::NFTNL_OBJ_FAMILY), "object")?;
    let ty = o.u32(ffi::NFTNL_OBJ_TYPE).unwrap_or(0);
    let kind = match ty {
        1 => ObjectKind::Counter {
            packets: o.u64(ffi::NFTNL_OBJ_CTR_PKTS).unwrap_or(0),
            bytes: o.u64(ffi::NFTNL_OBJ_CTR_BYTES).unwrap_or(0),
        },
        2 => ObjectKind::Quota {
            bytes: o.u64(ffi::NFTNL_OBJ_QUOTA_BYTES).unwrap_or(0),
            consumed: o.u64(ffi::NFTNL_OBJ_QUOTA_CONSUMED).unwrap_or(0),
            flags: o.u32(ffi::NFTNL_OBJ_QUOTA_FLAGS).unwrap_or(0),
        },
        4 => ObjectKind::Limit {
            rate: o.u64(ffi::NFTNL_OBJ_LIMIT_RATE).unwrap_or(0),
            unit: o.u64(ffi::NFTNL_OBJ_LIMIT_UNIT).unwrap_or(0),
            burst: o.u32(ffi::NFTNL_OBJ_LIMIT_BURST).unwrap_or(0),
            kind: o.u32(ffi::NFTNL_OBJ_LIMIT_TYPE).unwrap_or(0),
            flags: o.u32(ffi::NFTNL_OBJ_LIMIT_FLAGS).unwrap_or(0),
        },
        t => ObjectKind::Other { object_type: t },
    };
    Ok((
        Location {
            family: fam,
            table: o.str(ffi::NFTNL_OBJ_TABLE).unwrap_or_default().to_string(),
            parent: None,
        },
        Object {
            name: o.str(ffi::NFTNL_OBJ_NAME).unwrap_or_default().to_string(),
            kind,
        },
    ))
}

/// Decodes a flowtable message.
pub fn flowtable(m: Msg<'_>) -> Result<(Location, Flowtable), DecodeError> {
    let f = sys::Flowtable::try_parse(m).map_err(|e| err("flowtable", e.to_string()))?;
    let fam = family(f.u32(ffi::NFTNL_FLOWTABLE_FAMILY), "flowtable")?;
    Ok((
        Location {
            family: fam,
            table: f
                .str(ffi::NFTNL_FLOWTABLE_TABLE)
                .unwrap_or_default()
                .to_string(),
            parent: None,
        },
        Flowtable {
            name: f
                .str(ffi::NFTNL_FLOWTABLE_NAME)
                .unwrap_or_default()
                .to_string(),
            hook: f.u32(ffi::NFTNL_FLOWTABLE_HOOKNUM).unwrap_or(0),
            priority: f.s32(ffi::NFTNL_FLOWTABLE_PRIO).unwrap_or(0),
            devices: f.devices(),
            flags: f.u32(ffi::NFTNL_FLOWTABLE_FLAGS).unwrap_or(0),
        },
    ))
}

/// Runs one message through libnftnl's parsers and every decoder, for the
/// robustness tests: none may panic, exit or read out of bounds.
#[cfg(test)]
pub(crate) fn decode_everything(m: Msg<'_>) {
    sys::parse_all_for_fuzzing(m);
    let _ = table(m);
    let _ = chain(m);
    let _ = rule(m, |_| false);
    let _ = set(m);
    let _ = object(m);
    let _ = flowtable(m);
    let _ = elements(m, &mut ElemSink::default());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(ty: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = ((4 + payload.len()) as u16).to_ne_bytes().to_vec();
        v.extend(ty.to_ne_bytes());
        v.extend(payload);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    /// A NEWRULE message for `inet t c`, handle 7, with one expression.
    fn rule_msg(expr_name: &str) -> Vec<u32> {
        let expr = attr(1 | 0x8000, &attr(1, format!("{expr_name}\0").as_bytes()));
        let mut body = attr(1, b"t\0");
        body.extend(attr(2, b"c\0"));
        body.extend(attr(3, &7u64.to_be_bytes()));
        body.extend(attr(4 | 0x8000, &expr));
        let mut m = ((20 + body.len()) as u32).to_ne_bytes().to_vec();
        m.extend((6u16 | 10 << 8).to_ne_bytes());
        m.extend([0u8; 10]);
        m.extend([1u8, 0, 0, 0]);
        m.extend(body);
        m.chunks(4)
            .map(|c| u32::from_ne_bytes(c.try_into().unwrap()))
            .collect()
    }

    #[test]
    fn a_rule_libnftnl_rejects_is_kept_and_flagged() {
        let words = rule_msg("frobnicate");
        // SAFETY (test): view the u32 buffer as bytes.
        let bytes =
            unsafe { std::slice::from_raw_parts(words.as_ptr() as *const u8, words.len() * 4) };
        let m = sys::messages(bytes).next().unwrap().unwrap();
        let (loc, r) = rule(m, |_| false).unwrap();
        assert_eq!(
            (loc.family, loc.table.as_str(), loc.parent.as_deref()),
            (Family::Inet, "t", Some("c"))
        );
        assert_eq!(r.handle, 7);
        assert!(r.incomplete);
        assert!(matches!(&r.exprs[..], [Expr::Unknown { name, .. }] if name == "frobnicate"));
    }
}

/// The generation, pid and command of a `NEWGEN` notification
/// (`NFTA_GEN_ID`, `NFTA_GEN_PROC_PID`, `NFTA_GEN_PROC_NAME`).
pub fn gen_info(m: Msg<'_>) -> Option<GenInfo> {
    let mut info = GenInfo {
        id: sys::parse_gen(m)?,
        pid: None,
        comm: None,
    };
    for (ty, v) in nl_attrs(m.attrs()) {
        match ty {
            2 if v.len() == 4 => info.pid = Some(u32::from_be_bytes(v.try_into().ok()?)),
            3 => info.comm = Some(udata_str(v)),
            _ => {}
        }
    }
    Some(info)
}

/// A committed ruleset generation and the process that committed it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GenInfo {
    /// The generation id.
    pub id: u32,
    /// The committing process's pid.
    pub pid: Option<u32>,
    /// The committing process's command name (`comm`).
    pub comm: Option<String>,
}

/// `NFTA_RULE_POSITION` of a rule notification: the handle of the rule
/// just before it, when it is neither first nor last in its chain.
pub fn rule_position(m: Msg<'_>) -> Option<u64> {
    nl_attrs(m.attrs())
        .find(|(t, v)| *t == 6 && v.len() == 8)
        .map(|(_, v)| u64::from_be_bytes(v.try_into().expect("8 bytes")))
}

/// The table and set an element message is about
/// (`NFTA_SET_ELEM_LIST_TABLE`, `NFTA_SET_ELEM_LIST_SET`).
pub fn element_location(m: Msg<'_>) -> Result<Location, DecodeError> {
    let fam = family(m.family().map(u32::from), "set element")?;
    let (mut table, mut set) = (None, None);
    for (ty, v) in nl_attrs(m.attrs()) {
        match ty {
            1 => table = Some(udata_str(v)),
            2 => set = Some(udata_str(v)),
            _ => {}
        }
    }
    Ok(Location {
        family: fam,
        table: table.ok_or_else(|| err("set element", "no table"))?,
        parent: Some(set.ok_or_else(|| err("set element", "no set"))?),
    })
}
