//! Datatypes of set keys and map data, and how their raw bytes are shown.
//!
//! Elements are kept as the kernel's raw register bytes (what lookups
//! compare); this module renders them the way `nft -j` lists them and parses
//! that form back, so a saved snapshot reads in again unchanged.

use super::expr::{Bytes, Verdict};
use super::set::{ElemData, ElemExtra, Element, Key, KeyType, Set};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Value as Json};
use std::net::{Ipv4Addr, Ipv6Addr};

/// nftables datatype number for verdicts (verdict maps).
pub const VERDICT: u32 = 1;
/// `integer`.
pub const INTEGER: u32 = 4;
/// `ipv4_addr`.
pub const IPADDR: u32 = 7;
/// `ipv6_addr`.
pub const IP6ADDR: u32 = 8;
/// `ether_addr`.
pub const ETHERADDR: u32 = 9;
/// `inet_proto`.
pub const INET_PROTOCOL: u32 = 12;
/// `inet_service`.
pub const INET_SERVICE: u32 = 13;
/// `mark`.
pub const MARK: u32 = 19;
/// `ifname`.
pub const IFNAME: u32 = 41;

/// Datatype names by nftables number (`include/datatype.h`).
const NAMES: &[(u32, &str)] = &[
    (1, "verdict"),
    (2, "nf_proto"),
    (3, "bitmask"),
    (4, "integer"),
    (5, "string"),
    (6, "ll_addr"),
    (7, "ipv4_addr"),
    (8, "ipv6_addr"),
    (9, "ether_addr"),
    (10, "ether_type"),
    (11, "arp_op"),
    (12, "inet_proto"),
    (13, "inet_service"),
    (14, "icmp_type"),
    (15, "tcp_flag"),
    (16, "dccp_pkttype"),
    (17, "mh_type"),
    (18, "time"),
    (19, "mark"),
    (20, "iface_index"),
    (21, "iface_type"),
    (22, "realm"),
    (23, "classid"),
    (24, "uid"),
    (25, "gid"),
    (26, "ct_state"),
    (27, "ct_dir"),
    (28, "ct_status"),
    (29, "icmpv6_type"),
    (30, "ct_label"),
    (31, "pkt_type"),
    (32, "icmp_code"),
    (33, "icmpv6_code"),
    (34, "icmpx_code"),
    (35, "devgroup"),
    (36, "dscp"),
    (37, "ecn"),
    (38, "fib_addrtype"),
    (39, "boolean"),
    (40, "ct_event"),
    (41, "ifname"),
    (42, "igmp_type"),
    (43, "day"),
    (44, "hour"),
    (45, "time"),
    (46, "cgroupsv2"),
];

/// Types the kernel keeps in host byte order unless a set says otherwise.
const HOST_ORDER: &[u32] = &[19, 20, 22, 23, 24, 25, 26, 27, 28, 35];

/// The byte length of a datatype when it is fixed.
pub fn fixed_len(id: u32) -> Option<u32> {
    Some(match id {
        IPADDR => 4,
        IP6ADDR => 16,
        ETHERADDR => 6,
        INET_PROTOCOL | 2 | 14 | 29 | 31 | 32 | 33 | 34 | 36 | 37 | 39 => 1,
        INET_SERVICE | 10 | 11 | 21 => 2,
        MARK | 20 | 22 | 23 | 24 | 25 | 26 | 28 | 35 | 38 | 40 => 4,
        IFNAME => 16,
        30 => 16,
        27 => 1,
        _ => return None,
    })
}

/// One component of a key or map data: datatype, length and byte order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datatype {
    /// nftables datatype number.
    pub id: u32,
    /// Length in bytes, unpadded.
    pub len: u32,
    /// True when the value is in host byte order.
    pub host_order: bool,
}

impl Datatype {
    /// A datatype with its usual length and byte order.
    pub fn new(id: u32, len: u32) -> Self {
        Datatype {
            id,
            len,
            host_order: HOST_ORDER.contains(&id),
        }
    }

    /// nft's name for the type, if known.
    pub fn name(&self) -> Option<&'static str> {
        NAMES.iter().find(|(n, _)| *n == self.id).map(|(_, s)| *s)
    }

    fn shows_prefix(&self) -> bool {
        matches!(self.id, IPADDR | IP6ADDR)
    }
}

#[derive(Serialize, Deserialize)]
struct DatatypeRepr {
    #[serde(rename = "type")]
    kind: Json,
    len: u32,
    #[serde(default)]
    host_order: bool,
}

impl Serialize for Datatype {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        DatatypeRepr {
            kind: self.name().map_or(json!(self.id), |n| json!(n)),
            len: self.len,
            host_order: self.host_order,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Datatype {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = DatatypeRepr::deserialize(d)?;
        let id = match &r.kind {
            Json::Number(n) => n.as_u64().map(|n| n as u32),
            Json::String(s) => NAMES.iter().find(|(_, n)| n == s).map(|(i, _)| *i),
            _ => None,
        }
        .ok_or_else(|| serde::de::Error::custom(format!("unknown datatype {}", r.kind)))?;
        Ok(Datatype {
            id,
            len: r.len,
            host_order: r.host_order,
        })
    }
}

/// Splits the nftables concatenated type number into component numbers
/// (6 bits each, first component in the highest bits).
pub fn split_concat_type(mut t: u32) -> Vec<u32> {
    let mut v = Vec::new();
    while t != 0 {
        v.push(t & 0x3f);
        t >>= 6;
    }
    v.reverse();
    if v.is_empty() {
        v.push(0);
    }
    v
}

/// `b - 1` on a big-endian byte string (wrapping at zero).
pub fn decrement(b: &[u8]) -> Vec<u8> {
    let mut v = b.to_vec();
    for x in v.iter_mut().rev() {
        let (n, borrow) = x.overflowing_sub(1);
        *x = n;
        if !borrow {
            break;
        }
    }
    v
}

fn uint(b: &[u8], host: bool) -> Option<u64> {
    if b.len() > 8 {
        return None;
    }
    let mut buf = [0u8; 8];
    if host {
        buf[..b.len()].copy_from_slice(b);
        Some(u64::from_le_bytes(buf))
    } else {
        buf[8 - b.len()..].copy_from_slice(b);
        Some(u64::from_be_bytes(buf))
    }
}

fn proto_name(p: u8) -> Option<&'static str> {
    Some(match p {
        1 => "icmp",
        2 => "igmp",
        6 => "tcp",
        17 => "udp",
        33 => "dccp",
        47 => "gre",
        50 => "esp",
        51 => "ah",
        58 => "ipv6-icmp",
        132 => "sctp",
        136 => "udplite",
        _ => return None,
    })
}

fn hex(b: &[u8]) -> String {
    format!("{:?}", Bytes(b.into()))
}

/// Renders one component's bytes as `nft -j` shows it.
pub fn render(dt: &Datatype, b: &[u8]) -> Json {
    match dt.id {
        IPADDR if b.len() == 4 => json!(Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string()),
        IP6ADDR if b.len() == 16 => {
            let a: [u8; 16] = b.try_into().expect("length checked");
            json!(Ipv6Addr::from(a).to_string())
        }
        IFNAME => json!(String::from_utf8_lossy(
            b.split(|c| *c == 0).next().unwrap_or(b)
        )),
        ETHERADDR => json!(b
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(":")),
        INET_PROTOCOL if b.len() == 1 => proto_name(b[0]).map_or(json!(b[0]), |n| json!(n)),
        _ => uint(b, dt.host_order).map_or_else(|| json!(hex(b)), |n| json!(n)),
    }
}

/// Parses what [`render`] produced back into `len` bytes.
pub fn parse(dt: &Datatype, v: &Json) -> Result<Vec<u8>, String> {
    let len = dt.len as usize;
    let bad = || format!("cannot read {v} as {}", dt.name().unwrap_or("value"));
    match (dt.id, v) {
        (IPADDR, Json::String(s)) => s
            .parse::<Ipv4Addr>()
            .map(|a| a.octets().to_vec())
            .map_err(|_| bad()),
        (IP6ADDR, Json::String(s)) => s
            .parse::<Ipv6Addr>()
            .map(|a| a.octets().to_vec())
            .map_err(|_| bad()),
        (IFNAME, Json::String(s)) => {
            let mut b = s.as_bytes().to_vec();
            b.resize(len.max(b.len()), 0);
            Ok(b)
        }
        (ETHERADDR, Json::String(s)) => s
            .split(':')
            .map(|x| u8::from_str_radix(x, 16).map_err(|_| bad()))
            .collect(),
        (INET_PROTOCOL, Json::String(s)) => (0..=255u8)
            .find(|p| proto_name(*p) == Some(s.as_str()))
            .map(|p| vec![p])
            .ok_or_else(bad),
        (_, Json::Number(n)) => {
            let n = n.as_u64().ok_or_else(bad)?;
            if len > 8 {
                return Err(bad());
            }
            Ok(if dt.host_order {
                n.to_le_bytes()[..len].to_vec()
            } else {
                n.to_be_bytes()[8 - len..].to_vec()
            })
        }
        (_, Json::String(s)) if s.starts_with("0x") => {
            let b: Bytes = serde_json::from_value(v.clone()).map_err(|_| bad())?;
            Ok(b.as_slice().to_vec())
        }
        _ => Err(bad()),
    }
}

/// The prefix length if `[lo, hi]` is exactly one prefix.
fn prefix_len(lo: &[u8], hi: &[u8]) -> Option<u32> {
    let bits = lo.len() * 8;
    let (mut plen, mut in_host) = (0u32, false);
    for i in 0..bits {
        let bit = |b: &[u8]| (b[i / 8] >> (7 - i % 8)) & 1;
        let (l, h) = (bit(lo), bit(hi));
        if !in_host && l == h {
            plen += 1;
        } else {
            in_host = true;
            if l != 0 || h != 1 {
                return None;
            }
        }
    }
    Some(plen)
}

fn render_component(dt: &Datatype, lo: &[u8], hi: Option<&[u8]>) -> Json {
    match hi {
        Some(hi) if hi != lo => match prefix_len(lo, hi) {
            Some(n) if dt.shows_prefix() => {
                json!({"prefix": {"addr": render(dt, lo), "len": n}})
            }
            _ => json!({"range": [render(dt, lo), render(dt, hi)]}),
        },
        _ => render(dt, lo),
    }
}

fn render_key(key: &KeyType, lo: &[u8], hi: Option<&[u8]>) -> Json {
    if key.0.len() == 1 {
        return render_component(&key.0[0], lo, hi);
    }
    let parts = key
        .offsets()
        .into_iter()
        .zip(&key.0)
        .map(|((off, len), dt)| {
            let get = |b: &[u8]| {
                b.get(off..off + len)
                    .map(<[u8]>::to_vec)
                    .unwrap_or_default()
            };
            render_component(dt, &get(lo), hi.map(get).as_deref())
        })
        .collect::<Vec<_>>();
    json!({ "concat": parts })
}

fn render_verdict(v: &Verdict) -> Json {
    match v {
        Verdict::Jump(c) => json!({"jump": {"target": c}}),
        Verdict::Goto(c) => json!({"goto": {"target": c}}),
        other => json!({ other.to_string(): null }),
    }
}

/// Serialises one element of `set` as `nft -j` does.
pub(super) struct ElementView<'a> {
    pub set: &'a Set,
    pub elem: &'a Element,
}

impl Serialize for ElementView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.elem;
        let mut val = render_key(
            &self.set.key,
            e.key.as_slice(),
            e.key_end.as_ref().map(Key::as_slice),
        );
        if let Some(x) = &e.extra {
            let mut m = serde_json::Map::new();
            m.insert("val".into(), val);
            if let Some(t) = x.timeout_ms {
                m.insert("timeout".into(), json!(t / 1000));
            }
            if let Some(t) = x.expires_ms {
                m.insert("expires".into(), json!(t / 1000));
            }
            if let Some(c) = &x.comment {
                m.insert("comment".into(), json!(c));
            }
            val = json!({ "elem": m });
        }
        match &e.data {
            None => val.serialize(s),
            Some(d) => {
                let data = match &**d {
                    ElemData::Verdict(v) => render_verdict(v),
                    ElemData::Object(o) => json!(o),
                    ElemData::Value(b) => match &self.set.data {
                        Some(dt) => render_key(dt, b.as_slice(), None),
                        None => json!(hex(b.as_slice())),
                    },
                };
                [val, data].serialize(s)
            }
        }
    }
}

/// The serialised form of a [`Set`], read back into raw elements.
#[derive(Deserialize)]
pub struct SetRepr {
    name: String,
    handle: u64,
    flags: u32,
    key: KeyType,
    #[serde(default)]
    data: Option<KeyType>,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    comment: Option<String>,
    elements: Vec<Json>,
}

fn parse_component(dt: &Datatype, v: &Json) -> Result<(Vec<u8>, Vec<u8>), String> {
    if let Some(p) = v.get("prefix") {
        let lo = parse(dt, &p["addr"])?;
        let n = p["len"].as_u64().ok_or("prefix without len")? as usize;
        let mut hi = lo.clone();
        for i in n..lo.len() * 8 {
            hi[i / 8] |= 1 << (7 - i % 8);
        }
        return Ok((lo, hi));
    }
    if let Some(r) = v.get("range") {
        return Ok((parse(dt, &r[0])?, parse(dt, &r[1])?));
    }
    let b = parse(dt, v)?;
    Ok((b.clone(), b))
}

fn parse_key(key: &KeyType, v: &Json) -> Result<(Vec<u8>, Vec<u8>), String> {
    if key.0.len() == 1 {
        return parse_component(&key.0[0], v);
    }
    let parts = v
        .get("concat")
        .and_then(Json::as_array)
        .ok_or_else(|| format!("expected a concatenation, found {v}"))?;
    let (mut lo, mut hi) = (Vec::new(), Vec::new());
    for ((dt, (off, _)), p) in key.0.iter().zip(key.offsets()).zip(parts) {
        let (l, h) = parse_component(dt, p)?;
        lo.resize(off, 0);
        hi.resize(off, 0);
        lo.extend(l);
        hi.extend(h);
        let pad = lo.len().div_ceil(4) * 4;
        lo.resize(pad, 0);
        hi.resize(pad, 0);
    }
    Ok((lo, hi))
}

fn parse_verdict(v: &Json) -> Result<Verdict, String> {
    let o = v.as_object().ok_or("verdict must be an object")?;
    let (k, inner) = o.iter().next().ok_or("empty verdict")?;
    let target = || inner["target"].as_str().unwrap_or_default().to_string();
    Ok(match k.as_str() {
        "accept" => Verdict::Accept,
        "drop" => Verdict::Drop,
        "continue" => Verdict::Continue,
        "return" => Verdict::Return,
        "jump" => Verdict::Jump(target()),
        "goto" => Verdict::Goto(target()),
        other => return Err(format!("unknown verdict {other}")),
    })
}

fn parse_element(repr: &SetRepr, v: &Json) -> Result<Element, String> {
    let (keyv, datav) = match v.as_array() {
        Some(pair) if pair.len() == 2 => (&pair[0], Some(&pair[1])),
        _ => (v, None),
    };
    let (keyv, extra) = match keyv.get("elem") {
        Some(inner) => {
            let secs = |k: &str| inner.get(k).and_then(Json::as_u64).map(|s| s * 1000);
            let extra = ElemExtra {
                timeout_ms: secs("timeout"),
                expires_ms: secs("expires"),
                comment: inner
                    .get("comment")
                    .and_then(Json::as_str)
                    .map(String::from),
            };
            (&inner["val"], Some(Box::new(extra)))
        }
        None => (keyv, None),
    };
    let (lo, hi) = parse_key(&repr.key, keyv)?;
    let data = match datav {
        None => None,
        Some(d) => Some(match &repr.data {
            Some(dt) if dt.0.first().map(|t| t.id) == Some(VERDICT) => {
                ElemData::Verdict(parse_verdict(d)?)
            }
            Some(dt) => ElemData::Value(parse_key(dt, d)?.0.as_slice().into()),
            None => ElemData::Object(d.as_str().unwrap_or_default().to_string()),
        }),
    };
    Ok(Element {
        key_end: (hi != lo).then(|| hi.as_slice().into()),
        key: lo.as_slice().into(),
        data: data.map(Box::new),
        extra,
    })
}

impl TryFrom<SetRepr> for Set {
    type Error = String;
    fn try_from(r: SetRepr) -> Result<Set, String> {
        let elements = r
            .elements
            .iter()
            .map(|e| parse_element(&r, e))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("set {}: {e}", r.name))?;
        Ok(Set {
            name: r.name,
            handle: r.handle,
            flags: r.flags,
            key: r.key,
            data: r.data,
            timeout_ms: r.timeout_ms,
            comment: r.comment,
            elements,
        })
    }
}
