//! Decoded nftables expressions, one variant per kernel expression type.
//!
//! Field meanings follow the kernel's `NFTA_*` attributes; the nftables C
//! sources (`src/netlink_delinearize.c`) are the reference for how `nft`
//! turns them back into rules.

use super::xt::XtInfo;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Raw bytes (a register value, a key), serialised as `0x`-prefixed hex.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes(pub Box<[u8]>);

impl Bytes {
    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

impl From<&[u8]> for Bytes {
    fn from(b: &[u8]) -> Self {
        Bytes(b.into())
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("0x")?;
        for b in self.0.iter() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{self:?}"))
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let hex = s
            .strip_prefix("0x")
            .ok_or_else(|| serde::de::Error::custom("bytes must start with 0x"))?;
        if hex.len() % 2 != 0 {
            return Err(serde::de::Error::custom("odd number of hex digits"));
        }
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map(|v| Bytes(v.into()))
            .map_err(serde::de::Error::custom)
    }
}

/// A register number as the kernel encodes it: 0 is the verdict register,
/// 1-4 the legacy 16-byte registers, 8-23 the 4-byte registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Reg(pub u32);

impl Reg {
    /// Byte offset of the register in the kernel's register file (which is
    /// what makes a 16-byte register 1 overlap 4-byte registers 8-11).
    pub fn offset(self) -> Option<usize> {
        match self.0 {
            1..=4 => Some((self.0 as usize - 1) * 16),
            8..=23 => Some((self.0 as usize - 8) * 4),
            _ => None,
        }
    }
}

/// A verdict, with its target chain for jump and goto.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Accept: ends this base chain; the packet goes on to the next one.
    Accept,
    /// Drop: final.
    Drop,
    /// Continue with the next rule.
    Continue,
    /// Return to the calling chain (or apply the policy in a base chain).
    Return,
    /// Call a chain, coming back here on `return` or at its end.
    Jump(String),
    /// Go to a chain, never coming back here.
    Goto(String),
    /// Stop evaluating this rule (a failed match).
    Break,
    /// Hand the packet to userspace queue `num`.
    Queue(u16),
    /// Packet taken over by the expression (`NF_STOLEN`).
    Stolen,
}

impl Verdict {
    /// Decodes the kernel's verdict code and chain name.
    pub fn from_raw(code: i32, chain: Option<&str>) -> Option<Verdict> {
        let chain = || chain.unwrap_or_default().to_string();
        Some(match code {
            0 => Verdict::Drop,
            1 => Verdict::Accept,
            2 => Verdict::Stolen,
            -1 => Verdict::Continue,
            -2 => Verdict::Break,
            -3 => Verdict::Jump(chain()),
            -4 => Verdict::Goto(chain()),
            -5 => Verdict::Return,
            c if c & 0xff == 3 => Verdict::Queue((c as u32 >> 16) as u16),
            _ => return None,
        })
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Accept => f.write_str("accept"),
            Verdict::Drop => f.write_str("drop"),
            Verdict::Continue => f.write_str("continue"),
            Verdict::Return => f.write_str("return"),
            Verdict::Jump(c) => write!(f, "jump {c}"),
            Verdict::Goto(c) => write!(f, "goto {c}"),
            Verdict::Break => f.write_str("break"),
            Verdict::Queue(n) => write!(f, "queue num {n}"),
            Verdict::Stolen => f.write_str("stolen"),
        }
    }
}

/// Comparison operators of `cmp` and `range`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Neq,
    /// `<`
    Lt,
    /// `<=`
    Lte,
    /// `>`
    Gt,
    /// `>=`
    Gte,
}

impl CmpOp {
    /// Decodes `NFT_CMP_*`.
    pub fn from_raw(n: u32) -> Option<CmpOp> {
        Some(match n {
            0 => CmpOp::Eq,
            1 => CmpOp::Neq,
            2 => CmpOp::Lt,
            3 => CmpOp::Lte,
            4 => CmpOp::Gt,
            5 => CmpOp::Gte,
            _ => return None,
        })
    }
}

/// Where a payload offset counts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PayloadBase {
    /// Link-layer header.
    Link,
    /// Network header (IPv4/IPv6).
    Network,
    /// Transport header (TCP/UDP/...).
    Transport,
    /// Inner header of a tunnel.
    Inner,
}

impl PayloadBase {
    /// Decodes `NFT_PAYLOAD_*_HEADER`.
    pub fn from_raw(n: u32) -> Option<PayloadBase> {
        Some(match n {
            0 => PayloadBase::Link,
            1 => PayloadBase::Network,
            2 => PayloadBase::Transport,
            3 => PayloadBase::Inner,
            _ => return None,
        })
    }
}

/// Bitwise operation kinds (`NFT_BITWISE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BitwiseOp {
    /// `(reg & mask) ^ xor`.
    Bool,
    /// Left shift by `data`.
    Lshift,
    /// Right shift by `data`.
    Rshift,
}

/// One decoded expression.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Expr {
    /// Load `len` bytes at `offset` of a header into `dreg`.
    Payload {
        /// Header the offset counts from.
        base: PayloadBase,
        /// Byte offset.
        offset: u32,
        /// Length in bytes.
        len: u32,
        /// Destination register.
        dreg: Reg,
    },
    /// Write `sreg` into the packet (payload mangling).
    PayloadSet {
        /// Header.
        base: PayloadBase,
        /// Byte offset.
        offset: u32,
        /// Length.
        len: u32,
        /// Source register.
        sreg: Reg,
    },
    /// Compare a register with constant data; a mismatch ends the rule.
    Cmp {
        /// Register compared.
        sreg: Reg,
        /// Operator.
        op: CmpOp,
        /// Constant operand (register byte order).
        data: Bytes,
    },
    /// Bitwise operation from `sreg` into `dreg`.
    Bitwise {
        /// Source register.
        sreg: Reg,
        /// Destination register.
        dreg: Reg,
        /// Operand length.
        len: u32,
        /// Operation.
        op: BitwiseOp,
        /// Mask for [`BitwiseOp::Bool`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mask: Option<Bytes>,
        /// Xor for [`BitwiseOp::Bool`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        xor: Option<Bytes>,
        /// Shift amount for shifts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<Bytes>,
    },
    /// Byte order conversion.
    Byteorder {
        /// Source register.
        sreg: Reg,
        /// Destination register.
        dreg: Reg,
        /// 0 = to host order (`NFT_BYTEORDER_NTOH`), 1 = to network order (`HTON`).
        op: u32,
        /// Total length.
        len: u32,
        /// Element size (2, 4 or 8).
        size: u32,
    },
    /// Load packet metadata into `dreg`.
    Meta {
        /// `NFT_META_*` key.
        key: MetaKey,
        /// Destination register.
        dreg: Reg,
    },
    /// Set packet metadata (`meta mark set ...`).
    MetaSet {
        /// `NFT_META_*` key.
        key: MetaKey,
        /// Source register.
        sreg: Reg,
    },
    /// Load connection tracking data.
    Ct {
        /// `NFT_CT_*` key.
        key: CtKey,
        /// Direction (0 original, 1 reply) for directional keys.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dir: Option<u8>,
        /// Destination register.
        dreg: Reg,
    },
    /// Set conntrack data (`ct mark set ...`).
    CtSet {
        /// `NFT_CT_*` key.
        key: CtKey,
        /// Direction (0 original, 1 reply) for `ct original zone set`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dir: Option<u8>,
        /// Source register.
        sreg: Reg,
    },
    /// Look `sreg` up in a set; with `dreg` (maps), load the mapped data.
    Lookup {
        /// Set name (anonymous sets are named like `__set0`).
        set: String,
        /// Key register.
        sreg: Reg,
        /// Data register for maps (0 = verdict maps).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dreg: Option<Reg>,
        /// `!=` lookup: matches when the key is absent.
        #[serde(default)]
        invert: bool,
    },
    /// Load a constant into a register, or issue a verdict (register 0).
    Immediate {
        /// Destination register (0 = verdict).
        dreg: Reg,
        /// The verdict, when `dreg` is 0.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        verdict: Option<Verdict>,
        /// The constant, otherwise.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<Bytes>,
    },
    /// Range comparison (`from..=to`, or outside it with `Neq`).
    Range {
        /// Register compared.
        sreg: Reg,
        /// `Eq` (inside) or `Neq` (outside).
        op: CmpOp,
        /// Lower bound.
        from: Bytes,
        /// Upper bound.
        to: Bytes,
    },
    /// Packet/byte counter.
    Counter {
        /// Packets.
        packets: u64,
        /// Bytes.
        bytes: u64,
    },
    /// Log the packet.
    Log {
        /// Prefix.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix: Option<String>,
        /// Syslog level, when set.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        level: Option<u32>,
        /// nflog group, when set.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<u16>,
    },
    /// Rate limit: matches while under the rate (over it, with `invert`).
    Limit {
        /// Rate per unit.
        rate: u64,
        /// Unit in seconds.
        unit: u64,
        /// Burst.
        burst: u32,
        /// True for bytes, false for packets.
        bytes: bool,
        /// `over`: matches when the rate is exceeded.
        invert: bool,
    },
    /// Quota: matches until `bytes` are used (after, with `invert`).
    Quota {
        /// Budget.
        bytes: u64,
        /// Used so far.
        consumed: u64,
        /// `over`.
        invert: bool,
    },
    /// Reject: drop and answer with an ICMP error or TCP reset.
    Reject {
        /// 0 ICMP unreachable, 1 TCP reset, 2 ICMPx.
        kind: u32,
        /// ICMP code.
        code: u8,
    },
    /// SNAT or DNAT.
    Nat {
        /// `snat` or `dnat`.
        kind: NatKind,
        /// Family of the addresses (NFPROTO number).
        family: u32,
        /// Register with the lowest address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reg_addr_min: Option<Reg>,
        /// Register with the highest address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reg_addr_max: Option<Reg>,
        /// Register with the lowest port.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reg_proto_min: Option<Reg>,
        /// Register with the highest port.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reg_proto_max: Option<Reg>,
        /// `NF_NAT_RANGE_*` flags.
        flags: u32,
    },
    /// Masquerade.
    Masq {
        /// Flags.
        flags: u32,
        /// Register with the lowest port.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reg_proto_min: Option<Reg>,
        /// Register with the highest port.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reg_proto_max: Option<Reg>,
    },
    /// Redirect to a local port.
    Redir {
        /// Flags.
        flags: u32,
        /// Register with the lowest port.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reg_proto_min: Option<Reg>,
        /// Register with the highest port.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reg_proto_max: Option<Reg>,
    },
    /// Routing lookup (`fib saddr . iif oif`, `fib daddr type`).
    Fib {
        /// `NFTA_FIB_F_*` flags (saddr 1, daddr 2, mark 4, iif 8, oif 16, present 32).
        flags: u32,
        /// `NFT_FIB_RESULT_*` (1 oif, 2 oifname, 3 addrtype).
        result: u32,
        /// Destination register.
        dreg: Reg,
    },
    /// Add or update an element of a set from the packet path.
    Dynset {
        /// Set name.
        set: String,
        /// 0 add, 1 update, 2 delete.
        op: u32,
        /// Key register.
        sreg_key: Reg,
        /// Data register, for maps.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sreg_data: Option<Reg>,
        /// Element timeout in ms, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout: Option<u64>,
        /// Stateful expressions attached to the element (limit, counter...).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        exprs: Vec<Expr>,
        /// `NFT_DYNSET_F_*` (1 = inverted).
        #[serde(default)]
        flags: u32,
    },
    /// Reference to a named object, or an object map.
    Objref {
        /// Object type for a direct reference.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        object_type: Option<u32>,
        /// Object name for a direct reference.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// Map name for `... map @objmap`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        set: Option<String>,
        /// Key register for map references.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sreg: Option<Reg>,
    },
    /// Socket lookup (`socket transparent`, `socket mark`...).
    Socket {
        /// `NFT_SOCKET_*` key.
        key: u32,
        /// cgroup level.
        #[serde(default)]
        level: u32,
        /// Destination register.
        dreg: Reg,
    },
    /// Extension header or option load/test (`tcp option maxseg`, `exthdr`).
    Exthdr {
        /// 0 IPv6 exthdr, 1 TCP option, 2 IPv4 option, 3 SCTP chunk, 4 DCCP.
        op: u32,
        /// Header/option type.
        kind: u8,
        /// Offset inside it.
        offset: u32,
        /// Length.
        len: u32,
        /// `NFT_EXTHDR_F_PRESENT` (1) = existence test.
        flags: u32,
        /// Destination register (absent when writing).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dreg: Option<Reg>,
    },
    /// Disable connection tracking for the packet.
    Notrack,
    /// Routing data (`rt nexthop`, `rt mtu`...).
    Rt {
        /// `NFT_RT_*` key.
        key: u32,
        /// Destination register.
        dreg: Reg,
    },
    /// Send to a userspace queue.
    Queue {
        /// First queue number.
        num: u16,
        /// Number of queues.
        total: u16,
        /// Flags (bypass, fanout).
        flags: u16,
    },
    /// Connection count limit (`ct count`).
    Connlimit {
        /// Count.
        count: u32,
        /// 1 = `over`.
        flags: u32,
    },
    /// Number generator (`numgen`).
    Numgen {
        /// Destination register.
        dreg: Reg,
        /// Modulus.
        modulus: u32,
        /// 0 incremental, 1 random.
        kind: u32,
        /// Offset.
        offset: u32,
    },
    /// Hash of a register or the packet (`jhash`, `symhash`).
    Hash {
        /// Destination register.
        dreg: Reg,
        /// Modulus.
        modulus: u32,
        /// 0 jhash, 1 symhash.
        kind: u32,
        /// Offset.
        offset: u32,
    },
    /// Hand the flow to a flowtable (`flow add @ft`).
    FlowOffload {
        /// Flowtable name.
        table: String,
    },
    /// Timestamp of the last match (`last`).
    Last,
    /// Transparent proxy to a local socket (`tproxy to :port`).
    Tproxy {
        /// NFPROTO family of the address (0 = the table's).
        family: u32,
        /// Register with the address, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reg_addr: Option<Reg>,
        /// Register with the port, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reg_port: Option<Reg>,
    },
    /// iptables-nft compat match (`xt match "name"`).
    Match {
        /// xt match name.
        name: String,
        /// Revision.
        rev: u32,
        /// Decoded options (or the raw bytes when the match is not decoded).
        info: Box<XtInfo>,
    },
    /// iptables-nft compat target (`xt target "name"`).
    Target {
        /// xt target name.
        name: String,
        /// Revision.
        rev: u32,
        /// Decoded options.
        info: Box<XtInfo>,
    },
    /// An expression this version cannot decode. The rule is kept and marked
    /// [`super::Rule::incomplete`].
    Unknown {
        /// The kernel's expression name.
        name: String,
        /// Why it could not be decoded.
        reason: String,
    },
}

/// SNAT or DNAT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NatKind {
    /// Source NAT.
    Snat,
    /// Destination NAT.
    Dnat,
}

macro_rules! keyed_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident = $num:expr => $s:literal,)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $var,)*
            /// A key number this version does not name.
            Other(u32),
        }
        impl $name {
            /// Decodes the kernel's key number.
            pub fn from_raw(n: u32) -> Self {
                match n { $($num => $name::$var,)* n => $name::Other(n) }
            }
            /// The kernel's key number.
            pub fn raw(self) -> u32 {
                match self { $($name::$var => $num,)* $name::Other(n) => n }
            }
            /// The name `nft` uses.
            pub fn name(self) -> Option<&'static str> {
                match self { $($name::$var => Some($s),)* $name::Other(_) => None }
            }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self.name() { Some(n) => s.serialize_str(n), None => s.serialize_u32(self.raw()) }
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                #[derive(Deserialize)]
                #[serde(untagged)]
                enum Repr { N(u32), S(String) }
                match Repr::deserialize(d)? {
                    Repr::N(n) => Ok($name::from_raw(n)),
                    Repr::S(s) => match s.as_str() {
                        $($s => Ok($name::$var),)*
                        other => Err(serde::de::Error::custom(format!("unknown key {other:?}"))),
                    },
                }
            }
        }
    };
}

keyed_enum!(
    /// `meta` keys (`NFT_META_*`).
    MetaKey {
        /// Packet length.
        Len = 0 => "length",
        /// Ethertype.
        Protocol = 1 => "protocol",
        /// Priority.
        Priority = 2 => "priority",
        /// Packet mark.
        Mark = 3 => "mark",
        /// Input interface index.
        Iif = 4 => "iif",
        /// Output interface index.
        Oif = 5 => "oif",
        /// Input interface name.
        Iifname = 6 => "iifname",
        /// Output interface name.
        Oifname = 7 => "oifname",
        /// Input interface type (ARPHRD).
        Iiftype = 8 => "iiftype",
        /// Output interface type.
        Oiftype = 9 => "oiftype",
        /// Socket uid.
        Skuid = 10 => "skuid",
        /// Socket gid.
        Skgid = 11 => "skgid",
        /// nftrace.
        Nftrace = 12 => "nftrace",
        /// Routing realm.
        Rtclassid = 13 => "rtclassid",
        /// secmark.
        Secmark = 14 => "secmark",
        /// Netfilter protocol family.
        Nfproto = 15 => "nfproto",
        /// Layer 4 protocol.
        L4proto = 16 => "l4proto",
        /// Bridge input port name.
        BriIifname = 17 => "ibrname",
        /// Bridge output port name.
        BriOifname = 18 => "obrname",
        /// Packet type (unicast, broadcast...).
        Pkttype = 19 => "pkttype",
        /// CPU.
        Cpu = 20 => "cpu",
        /// Input interface group.
        Iifgroup = 21 => "iifgroup",
        /// Output interface group.
        Oifgroup = 22 => "oifgroup",
        /// cgroup classid.
        Cgroup = 23 => "cgroup",
        /// Pseudo-random number.
        Prandom = 24 => "random",
        /// IPsec secpath present.
        Secpath = 25 => "secpath",
        /// Input interface kind.
        Iifkind = 26 => "iifkind",
        /// Output interface kind.
        Oifkind = 27 => "oifkind",
        /// Time in ns.
        TimeNs = 30 => "time",
        /// Day of week.
        TimeDay = 31 => "day",
        /// Hour of day.
        TimeHour = 32 => "hour",
        /// Slave device index.
        Sdif = 33 => "sdif",
        /// Slave device name.
        Sdifname = 34 => "sdifname",
    }
);

keyed_enum!(
    /// `ct` keys (`NFT_CT_*`).
    CtKey {
        /// Connection state bits.
        State = 0 => "state",
        /// Direction of the packet.
        Direction = 1 => "direction",
        /// Status bits.
        Status = 2 => "status",
        /// Connection mark.
        Mark = 3 => "mark",
        /// secmark.
        Secmark = 4 => "secmark",
        /// Expiration.
        Expiration = 5 => "expiration",
        /// Helper.
        Helper = 6 => "helper",
        /// L3 protocol.
        L3protocol = 7 => "l3proto",
        /// Source address (legacy).
        Src = 8 => "saddr",
        /// Destination address (legacy).
        Dst = 9 => "daddr",
        /// L4 protocol.
        Protocol = 10 => "protocol",
        /// Source port.
        ProtoSrc = 11 => "proto-src",
        /// Destination port.
        ProtoDst = 12 => "proto-dst",
        /// Labels.
        Labels = 13 => "label",
        /// Packets.
        Pkts = 14 => "packets",
        /// Bytes.
        Bytes = 15 => "bytes",
        /// Average packet size.
        Avgpkt = 16 => "avgpkt",
        /// Zone.
        Zone = 17 => "zone",
        /// Events.
        Eventmask = 18 => "event",
        /// IPv4 source.
        SrcIp = 19 => "ip saddr",
        /// IPv4 destination.
        DstIp = 20 => "ip daddr",
        /// IPv6 source.
        SrcIp6 = 21 => "ip6 saddr",
        /// IPv6 destination.
        DstIp6 = 22 => "ip6 daddr",
        /// Conntrack id.
        Id = 23 => "id",
    }
);
