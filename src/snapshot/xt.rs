//! iptables-nft compat (`xt`) match and target options.
//!
//! iptables-nft stores a match it cannot express natively as an `xt match`
//! expression whose payload is the kernel's `xt_*_info` struct, laid out as on
//! this machine (x86_64 / aarch64: little endian, natural alignment). The
//! common ones are decoded here; others keep their raw bytes and are marked
//! as not understood by the evaluator.

use super::expr::Bytes;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A port interval as xt matches keep it.
pub type Ports = [u16; 2];

/// Decoded options of an xt match or target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum XtInfo {
    /// `-p tcp --sport/--dport/--tcp-flags`.
    Tcp {
        /// Source ports.
        sport: Ports,
        /// Destination ports.
        dport: Ports,
        /// TCP flag mask.
        flg_mask: u8,
        /// TCP flags that must be set within the mask.
        flg_cmp: u8,
        /// Inversion bits (`XT_TCP_INV_*`): 1 sport, 2 dport, 4 flags, 8 option.
        invflags: u8,
        /// `--tcp-option N`: the option kind that must be present (absent
        /// with the 8 inversion bit); 0 when not tested.
        #[serde(default)]
        option: u8,
    },
    /// `-p udp --sport/--dport`.
    Udp {
        /// Source ports.
        sport: Ports,
        /// Destination ports.
        dport: Ports,
        /// Inversion bits: 1 sport, 2 dport.
        invflags: u8,
    },
    /// `-m multiport` (revision 1).
    Multiport {
        /// 0 source, 1 destination, 2 either.
        flags: u8,
        /// Ports; an entry with `range` true starts a range ending at the next.
        ports: Vec<u16>,
        /// Range markers, parallel to `ports`.
        range: Vec<bool>,
        /// `!`.
        invert: bool,
    },
    /// `-m conntrack` (revisions 1-3): state, status and l4 protocol parts.
    Conntrack {
        /// `XT_CONNTRACK_*` bits of what is matched.
        match_flags: u16,
        /// Inversion bits, same layout.
        invert_flags: u16,
        /// `--ctstate` bits (`XT_CONNTRACK_STATE_BIT`).
        state_mask: u16,
        /// `--ctstatus` bits.
        status_mask: u16,
        /// `--ctproto`.
        l4proto: u16,
    },
    /// `-m state --state` (`XT_STATE_BIT` mask).
    State {
        /// State bits: 1 invalid, 2 established, 4 related, 8 new, 16 untracked.
        mask: u32,
    },
    /// `-m iprange`.
    Iprange {
        /// Source range, when matched.
        src: Option<[IpAddr; 2]>,
        /// Destination range, when matched.
        dst: Option<[IpAddr; 2]>,
        /// `IPRANGE_*` flags (1 src, 2 dst, 0x10 src inv, 0x20 dst inv).
        flags: u8,
    },
    /// `-m comment`.
    Comment {
        /// The comment.
        text: String,
    },
    /// `-m recent`.
    Recent {
        /// `--seconds`.
        seconds: u32,
        /// `--hitcount`.
        hit_count: u32,
        /// `XT_RECENT_*` command bits (1 check, 2 set, 4 update, 8 remove, 16 ttl, 32 reap).
        check_set: u8,
        /// `!`.
        invert: bool,
        /// List name.
        name: String,
        /// 0 source (`--rsource`), 1 destination (`--rdest`).
        side: u8,
    },
    /// `-m limit`.
    Limit {
        /// Average, in `XT_LIMIT_SCALE` (10000) units per second per packet.
        avg: u32,
        /// Burst.
        burst: u32,
    },
    /// `-p icmp --icmp-type` or `-p icmpv6 --icmpv6-type`.
    Icmp {
        /// Type.
        icmp_type: u8,
        /// Code range.
        code: [u8; 2],
        /// 1 = `!`.
        invflags: u8,
    },
    /// `-m mark --mark` (revision 1).
    Mark {
        /// Value.
        mark: u32,
        /// Mask.
        mask: u32,
        /// `!`.
        invert: bool,
    },
    /// `-m addrtype` (revision 1).
    Addrtype {
        /// `--src-type` bits.
        source: u16,
        /// `--dst-type` bits.
        dest: u16,
        /// Flags (invert, limit-iface).
        flags: u32,
    },
    /// `-m hl` (IPv6 hop limit) or `-m ttl`.
    Hl {
        /// 0 eq, 1 ne, 2 lt, 3 gt.
        mode: u8,
        /// The value compared.
        value: u8,
    },
    /// `-m rt` (IPv6 routing header): matches only packets that carry one.
    Ipv6Rt {
        /// `--rt-type`.
        rt_type: u32,
        /// Segments-left range.
        segsleft: [u32; 2],
        /// `IP6T_RT_*` flags of what is matched.
        flags: u8,
        /// Inversion bits.
        invflags: u8,
    },
    /// `-j REJECT` (IPv4 or IPv6 reject kinds).
    Reject {
        /// `ipt_reject_with` / `ip6t_reject_with` number.
        with: u32,
    },
    /// `-j LOG`.
    Log {
        /// Level.
        level: u8,
        /// Prefix.
        prefix: String,
    },
    /// `-j MARK` (revision 2) / `-j CONNMARK`-style set.
    MarkSet {
        /// Value.
        mark: u32,
        /// Mask.
        mask: u32,
    },
    /// Not decoded: the raw info bytes.
    Raw {
        /// The `xt_*_info` struct as the kernel holds it.
        bytes: Bytes,
    },
    /// `-j DNAT`, `-j SNAT`, `-j REDIRECT`, `-j MASQUERADE`: the
    /// `nf_nat_ipv4_multi_range_compat` (IPv4, revision 0), `nf_nat_range`
    /// (revision 1; IPv6 revision 0 of REDIRECT and MASQUERADE) or
    /// `nf_nat_range2` (revision 2) layouts.
    Nat {
        /// Which target.
        target: XtNatKind,
        /// `NF_NAT_RANGE_*` flags: 1 map IPs, 2 proto specified, 4 random,
        /// 8 persistent, 0x10 random fully, 0x20 proto offset, 0x40 netmap.
        flags: u32,
        /// The address range (present with flag 1).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        addr: Option<[IpAddr; 2]>,
        /// The port range (present with flag 2).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ports: Option<Ports>,
        /// `base_proto` of `nf_nat_range2` (the port offset's base).
        #[serde(default)]
        base_port: u16,
    },
    /// `-j NFQUEUE` (revisions 0-3).
    Queue {
        /// `--queue-num`, or the first of `--queue-balance`.
        num: u16,
        /// How many queues from `num` (1 unless balanced).
        total: u16,
        /// `--queue-bypass`: without a listener, go on as if accepted.
        bypass: bool,
        /// `--queue-cpu-fanout`.
        fanout: bool,
    },
    /// `-m statistic`: random or every-nth.
    Statistic {
        /// 0 random, 1 nth.
        mode: u16,
        /// `!`.
        invert: bool,
        /// Random: matches when a random 31-bit number is below this
        /// (`--probability` times 2^31).
        #[serde(default)]
        probability: u32,
        /// Nth: `--every` minus 1.
        #[serde(default)]
        every: u32,
    },
    /// `-m length --length MIN:MAX` (IPv4 total length; IPv6 payload length
    /// plus the 40-byte header).
    Length {
        /// Range.
        range: Ports,
        /// `!`.
        invert: bool,
    },
    /// `-m tcpmss --mss MIN:MAX` (the SYN's MSS option).
    Tcpmss {
        /// Range.
        range: Ports,
        /// `!`.
        invert: bool,
    },
    /// `-m string`: a pattern in the packet.
    String {
        /// Search algorithm (`bm`, `kmp`).
        algo: String,
        /// The pattern, as text (lossy).
        pattern: String,
        /// `!`.
        invert: bool,
    },
    /// `-m ecn`.
    Ecn {
        /// `XT_ECN_OP_*`: 1 IP ECT, 0x10 TCP ECE, 0x20 TCP CWR.
        operation: u8,
        /// Inversion bits, same layout.
        invert: u8,
        /// `--ecn-ip-ect` value (0-3).
        ip_ect: u8,
    },
    /// `-m socket` (revisions 0-3).
    Socket {
        /// `XT_SOCKET_*`: 1 transparent, 2 nowildcard, 4 restore-skmark.
        flags: u16,
    },
    /// `-m devgroup`.
    Devgroup {
        /// 1 src, 2 dst, 4 invert src, 8 invert dst.
        flags: u32,
        /// `--src-group` value and mask.
        src: [u32; 2],
        /// `--dst-group` value and mask.
        dst: [u32; 2],
    },
    /// `-m mac --mac-source`.
    Mac {
        /// The source MAC address.
        addr: [u8; 6],
        /// `!`.
        invert: bool,
    },
    /// `-m rpfilter`.
    Rpfilter {
        /// 1 loose, 2 validmark, 4 accept-local, 8 invert.
        flags: u8,
    },
    /// `-m helper --helper NAME`.
    Helper {
        /// The helper name.
        name: String,
        /// `!`.
        invert: bool,
    },
    /// `-m time` (`struct xt_time_info`, revision 0): every part must hold
    /// at the moment the packet is seen.
    Time {
        /// `--datestart`, `--datestop`: seconds since the epoch (inclusive).
        date: [u32; 2],
        /// `--timestart`, `--timestop`: seconds since midnight (inclusive;
        /// start after stop wraps around midnight).
        daytime: [u32; 2],
        /// `--monthdays`: bit N for day N of the month (1-31).
        monthdays: u32,
        /// `--weekdays`: bit N for day N of the week (1 Monday .. 7 Sunday).
        weekdays: u8,
        /// `XT_TIME_LOCAL_TZ` (1, `--kerneltz`: the kernel's timezone
        /// instead of UTC), `XT_TIME_CONTIGUOUS` (2, `--contiguous`).
        flags: u8,
    },
}

/// Which NAT target an [`XtInfo::Nat`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum XtNatKind {
    /// `-j DNAT`.
    Dnat,
    /// `-j SNAT`.
    Snat,
    /// `-j REDIRECT`.
    Redirect,
    /// `-j MASQUERADE`.
    Masquerade,
}

impl XtInfo {
    /// The decoded fields as `name value` pairs (the variant's serialised
    /// form), for options that have no spelling of their own in a text.
    pub fn fields_text(&self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| {
                v.as_object().map(|o| {
                    o.iter()
                        .filter(|(k, _)| *k != "kind")
                        .map(|(k, v)| format!("{k} {v}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
            })
            .unwrap_or_default()
    }
}

/// A multiport match's ports as written: single ports, and ranges with
/// their ends joined by `sep` (`:` for iptables, `-` for nft).
pub fn multiport_items(ports: &[u16], range: &[bool], sep: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut i = 0;
    while i < ports.len() {
        if range.get(i) == Some(&true) && i + 1 < ports.len() {
            items.push(format!("{}{sep}{}", ports[i], ports[i + 1]));
            i += 2;
        } else {
            items.push(ports[i].to_string());
            i += 1;
        }
    }
    items
}

/// The option a multiport match's `flags` stand for.
pub fn multiport_option(flags: u8) -> &'static str {
    match flags {
        0 => "sports",
        1 => "dports",
        _ => "ports",
    }
}

fn u16_at(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(o..o + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(o..o + 4)?.try_into().ok()?))
}
fn cstr(b: &[u8]) -> String {
    String::from_utf8_lossy(b.split(|c| *c == 0).next().unwrap_or_default()).into_owned()
}
/// `union nf_inet_addr` (16 bytes) read as `family`'s address.
fn inet_addr(b: &[u8], o: usize, v6: bool) -> Option<IpAddr> {
    let raw: [u8; 16] = b.get(o..o + 16)?.try_into().ok()?;
    Some(if v6 {
        IpAddr::V6(Ipv6Addr::from(raw))
    } else {
        IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]))
    })
}

/// Decodes a match's info bytes. `v6` tells the table family (ip6 tables
/// hold IPv6 addresses in `nf_inet_addr` unions).
pub fn decode_match(name: &str, rev: u32, b: &[u8], v6: bool) -> XtInfo {
    decode_match_opt(name, rev, b, v6).unwrap_or_else(|| XtInfo::Raw { bytes: b.into() })
}

fn decode_match_opt(name: &str, rev: u32, b: &[u8], v6: bool) -> Option<XtInfo> {
    Some(match (name, rev) {
        ("tcp", 0) => XtInfo::Tcp {
            sport: [u16_at(b, 0)?, u16_at(b, 2)?],
            dport: [u16_at(b, 4)?, u16_at(b, 6)?],
            option: *b.get(8)?,
            flg_mask: *b.get(9)?,
            flg_cmp: *b.get(10)?,
            invflags: *b.get(11)?,
        },
        ("udp", 0) => XtInfo::Udp {
            sport: [u16_at(b, 0)?, u16_at(b, 2)?],
            dport: [u16_at(b, 4)?, u16_at(b, 6)?],
            invflags: *b.get(8)?,
        },
        ("multiport", 1) => {
            // u8 flags, u8 count, u16 ports[15], u8 pflags[15], u8 invert
            let count = (*b.get(1)? as usize).min(15);
            let ports = (0..count)
                .map(|i| u16_at(b, 2 + 2 * i))
                .collect::<Option<Vec<_>>>()?;
            let range = (0..count)
                .map(|i| b.get(32 + i).map(|f| *f != 0))
                .collect::<Option<Vec<_>>>()?;
            XtInfo::Multiport {
                flags: *b.first()?,
                ports,
                range,
                invert: *b.get(47)? != 0,
            }
        }
        ("conntrack", 1..=3) => {
            // 8 x nf_inet_addr (128), u32 expires_min, expires_max (136),
            // u16 l4proto (138), 4 x be16 ports (146), u16 match_flags,
            // u16 invert_flags (150), then state/status: u8 in rev 1, u16 after.
            let (state_mask, status_mask) = if rev == 1 {
                (u16::from(*b.get(150)?), u16::from(*b.get(151)?))
            } else {
                (u16_at(b, 150)?, u16_at(b, 152)?)
            };
            XtInfo::Conntrack {
                l4proto: u16_at(b, 136)?,
                match_flags: u16_at(b, 146)?,
                invert_flags: u16_at(b, 148)?,
                state_mask,
                status_mask,
            }
        }
        ("state", 0) => XtInfo::State {
            mask: u32_at(b, 0)?,
        },
        ("iprange", 1) => {
            let flags = *b.get(64)?;
            XtInfo::Iprange {
                src: (flags & 1 != 0)
                    .then(|| Some([inet_addr(b, 0, v6)?, inet_addr(b, 16, v6)?]))
                    .flatten(),
                dst: (flags & 2 != 0)
                    .then(|| Some([inet_addr(b, 32, v6)?, inet_addr(b, 48, v6)?]))
                    .flatten(),
                flags,
            }
        }
        ("comment", 0) => XtInfo::Comment {
            text: cstr(b.get(..256.min(b.len()))?),
        },
        ("recent", 0 | 1) => XtInfo::Recent {
            seconds: u32_at(b, 0)?,
            hit_count: u32_at(b, 4)?,
            check_set: *b.get(8)?,
            invert: *b.get(9)? != 0,
            name: cstr(b.get(10..210)?),
            side: *b.get(210)?,
        },
        ("limit", 0) => XtInfo::Limit {
            avg: u32_at(b, 0)?,
            burst: u32_at(b, 4)?,
        },
        ("icmp" | "icmp6", 0) => XtInfo::Icmp {
            icmp_type: *b.first()?,
            code: [*b.get(1)?, *b.get(2)?],
            invflags: *b.get(3)?,
        },
        ("mark", 1) => XtInfo::Mark {
            mark: u32_at(b, 0)?,
            mask: u32_at(b, 4)?,
            invert: *b.get(8)? != 0,
        },
        ("hl" | "ttl", 0) => XtInfo::Hl {
            mode: *b.first()?,
            value: *b.get(1)?,
        },
        ("rt", 0) => XtInfo::Ipv6Rt {
            rt_type: u32_at(b, 0)?,
            segsleft: [u32_at(b, 4)?, u32_at(b, 8)?],
            flags: *b.get(16)?,
            invflags: *b.get(17)?,
        },
        ("time", 0) => XtInfo::Time {
            date: [u32_at(b, 0)?, u32_at(b, 4)?],
            daytime: [u32_at(b, 8)?, u32_at(b, 12)?],
            monthdays: u32_at(b, 16)?,
            weekdays: *b.get(20)?,
            flags: *b.get(21)?,
        },
        ("addrtype", 1) => XtInfo::Addrtype {
            source: u16_at(b, 0)?,
            dest: u16_at(b, 2)?,
            flags: u32_at(b, 4)?,
        },
        // struct xt_statistic_info: u16 mode, u16 flags (1 invert), ...
        // ... then u32 probability (random) or u32 every, packet, count (nth).
        ("statistic", 0) => XtInfo::Statistic {
            mode: u16_at(b, 0)?,
            invert: u16_at(b, 2)? & 1 != 0,
            probability: u32_at(b, 4)?,
            every: u32_at(b, 4)?,
        },
        // struct xt_length_info / xt_tcpmss_match_info: u16 min, u16 max, u8 invert
        ("length", 0) => XtInfo::Length {
            range: [u16_at(b, 0)?, u16_at(b, 2)?],
            invert: *b.get(4)? != 0,
        },
        ("tcpmss", 0) => XtInfo::Tcpmss {
            range: [u16_at(b, 0)?, u16_at(b, 2)?],
            invert: *b.get(4)? != 0,
        },
        // struct xt_string_info: u16 from, u16 to, char algo[16],
        // char pattern[128], u8 patlen, u8 invert (rev 0) / flags (rev 1).
        ("string", 0 | 1) => {
            let patlen = usize::from(*b.get(148)?).min(128);
            XtInfo::String {
                algo: cstr(b.get(4..20)?),
                pattern: String::from_utf8_lossy(b.get(20..20 + patlen)?).into_owned(),
                invert: *b.get(149)? & 1 != 0,
            }
        }
        // struct xt_ecn_info: u8 operation, u8 invert, u8 ip_ect, u8 tcp ect
        ("ecn", 0) => XtInfo::Ecn {
            operation: *b.first()?,
            invert: *b.get(1)?,
            ip_ect: *b.get(2)?,
        },
        ("socket", 0) => XtInfo::Socket { flags: 0 },
        ("socket", 1 | 2) => XtInfo::Socket {
            flags: u16::from(*b.first()?),
        },
        ("socket", 3) => XtInfo::Socket {
            flags: u16_at(b, 0)?,
        },
        ("devgroup", 0) => XtInfo::Devgroup {
            flags: u32_at(b, 0)?,
            src: [u32_at(b, 4)?, u32_at(b, 8)?],
            dst: [u32_at(b, 12)?, u32_at(b, 16)?],
        },
        // struct xt_mac_info: unsigned char srcaddr[6]; int invert
        ("mac", 0) => XtInfo::Mac {
            addr: b.get(..6)?.try_into().ok()?,
            invert: u32_at(b, 8)? != 0,
        },
        ("rpfilter", 0) => XtInfo::Rpfilter { flags: *b.first()? },
        // struct xt_helper_info: int invert; char name[30]
        ("helper", 0) => XtInfo::Helper {
            invert: u32_at(b, 0)? != 0,
            name: cstr(b.get(4..34)?),
        },
        _ => return None,
    })
}

/// `struct nf_nat_ipv4_multi_range_compat` with its one range (IPv4):
/// u32 rangesize (1), then u32 flags, be32 min_ip, be32 max_ip, be16
/// min port, be16 max port.
fn nat_compat(kind: XtNatKind, b: &[u8]) -> Option<XtInfo> {
    if u32_at(b, 0)? != 1 {
        return None;
    }
    let flags = u32_at(b, 4)?;
    let ip = |o: usize| -> Option<IpAddr> {
        let a: [u8; 4] = b.get(o..o + 4)?.try_into().ok()?;
        Some(IpAddr::V4(Ipv4Addr::from(a)))
    };
    let port = |o: usize| Some(u16::from_be_bytes(b.get(o..o + 2)?.try_into().ok()?));
    Some(XtInfo::Nat {
        target: kind,
        flags,
        addr: if flags & 1 != 0 {
            Some([ip(8)?, ip(12)?])
        } else {
            None
        },
        ports: if flags & 2 != 0 {
            Some([port(16)?, port(18)?])
        } else {
            None
        },
        base_port: 0,
    })
}

/// `struct nf_nat_range` (u32 flags, two `nf_inet_addr`, be16 min and max
/// port) and, with `v2`, `nf_nat_range2` (then be16 base port).
fn nat_range(kind: XtNatKind, b: &[u8], v6: bool, v2: bool) -> Option<XtInfo> {
    let flags = u32_at(b, 0)?;
    let port = |o: usize| Some(u16::from_be_bytes(b.get(o..o + 2)?.try_into().ok()?));
    Some(XtInfo::Nat {
        target: kind,
        flags,
        addr: if flags & 1 != 0 {
            Some([inet_addr(b, 4, v6)?, inet_addr(b, 20, v6)?])
        } else {
            None
        },
        ports: if flags & 2 != 0 {
            Some([port(36)?, port(38)?])
        } else {
            None
        },
        base_port: if v2 { port(40)? } else { 0 },
    })
}

/// Decodes a target's info bytes. `v6` tells the table family (the NAT
/// targets' layouts depend on it).
pub fn decode_target(name: &str, rev: u32, b: &[u8], v6: bool) -> XtInfo {
    let opt = || -> Option<XtInfo> {
        Some(match (name, rev) {
            ("DNAT" | "SNAT" | "REDIRECT" | "MASQUERADE", _) => {
                let kind = match name {
                    "DNAT" => XtNatKind::Dnat,
                    "SNAT" => XtNatKind::Snat,
                    "REDIRECT" => XtNatKind::Redirect,
                    _ => XtNatKind::Masquerade,
                };
                let two = matches!(kind, XtNatKind::Dnat | XtNatKind::Snat);
                match (two, rev) {
                    (true, 0) | (false, 0) if !v6 => nat_compat(kind, b)?,
                    (true, 1) | (false, 0) => nat_range(kind, b, v6, false)?,
                    (true, 2) => nat_range(kind, b, v6, true)?,
                    _ => return None,
                }
            }
            // struct xt_NFQ_info(_v1, _v2, _v3): u16 queuenum, u16
            // queues_total, u16 bypass (v2) / flags (v3: 1 bypass, 2 fanout).
            ("NFQUEUE", 0..=3) => {
                let num = u16_at(b, 0)?;
                let total = if rev >= 1 { u16_at(b, 2)?.max(1) } else { 1 };
                let extra = if rev >= 2 { u16_at(b, 4)? } else { 0 };
                XtInfo::Queue {
                    num,
                    total,
                    bypass: if rev == 2 { extra != 0 } else { extra & 1 != 0 },
                    fanout: rev == 3 && extra & 2 != 0,
                }
            }
            ("REJECT", 0) => XtInfo::Reject {
                with: u32_at(b, 0)?,
            },
            ("LOG", 0) => XtInfo::Log {
                level: *b.first()?,
                prefix: cstr(b.get(2..32.min(b.len()))?),
            },
            ("MARK", 2) => XtInfo::MarkSet {
                mark: u32_at(b, 0)?,
                mask: u32_at(b, 4)?,
            },
            _ => return None,
        })
    };
    opt().unwrap_or_else(|| XtInfo::Raw { bytes: b.into() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Short, long or random info bytes never panic the decoder.
        #[test]
        fn decoding_random_bytes_never_panics(name in prop::sample::select(vec![
            "tcp", "udp", "multiport", "conntrack", "state", "iprange", "comment",
            "recent", "limit", "icmp", "icmp6", "mark", "addrtype", "hl", "rt", "REJECT", "LOG", "MARK", "zz", "DNAT", "SNAT", "REDIRECT",
            "MASQUERADE", "NFQUEUE", "statistic", "length", "tcpmss", "string", "ecn", "socket",
            "devgroup", "mac", "rpfilter", "helper", "time"]),
            rev in 0u32..4, bytes in prop::collection::vec(any::<u8>(), 0..300), v6: bool) {
            let _ = decode_match(name, rev, &bytes, v6);
            let _ = decode_target(name, rev, &bytes, v6);
        }
    }

    #[test]
    fn tcp_match_layout() {
        // sport 0-65535, dport 22-22, option 0, mask 0x17, cmp 0x02, inv 0
        let mut b = vec![];
        for p in [0u16, 65535, 22, 22] {
            b.extend(p.to_ne_bytes());
        }
        b.extend([0, 0x17, 0x02, 0]);
        assert_eq!(
            decode_match("tcp", 0, &b, false),
            XtInfo::Tcp {
                sport: [0, 65535],
                dport: [22, 22],
                flg_mask: 0x17,
                flg_cmp: 2,
                invflags: 0,
                option: 0,
            }
        );
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The bytes iptables-nft 1.8.9 wrote for these targets (dumped from a
    /// namespace), decoded.
    #[test]
    fn nat_target_layouts_as_iptables_nft_writes_them() {
        let v4 = |a: [u8; 4]| IpAddr::V4(Ipv4Addr::from(a));
        // -j DNAT --to-destination 172.17.0.2:80 (rev 2, nf_nat_range2)
        let b = hex("03000000ac110002000000000000000000000000ac110002000000000000000000000000005000500000000000000000");
        assert_eq!(
            decode_target("DNAT", 2, &b, false),
            XtInfo::Nat {
                target: XtNatKind::Dnat,
                flags: 3,
                addr: Some([v4([172, 17, 0, 2]); 2]),
                ports: Some([80, 80]),
                base_port: 0
            }
        );
        // --to-destination 172.17.0.2-172.17.0.5:80-90 --random --persistent
        let b = hex("0f000000ac110002000000000000000000000000ac1100050000000000000000000000000050005a0000000000000000");
        assert_eq!(
            decode_target("DNAT", 2, &b, false),
            XtInfo::Nat {
                target: XtNatKind::Dnat,
                flags: 15,
                addr: Some([v4([172, 17, 0, 2]), v4([172, 17, 0, 5])]),
                ports: Some([80, 90]),
                base_port: 0
            }
        );
        // -j REDIRECT --to-ports 22 (IPv4 rev 0: the compat layout)
        let b = hex("010000000200000000000000000000000016001600000000");
        assert_eq!(
            decode_target("REDIRECT", 0, &b, false),
            XtInfo::Nat {
                target: XtNatKind::Redirect,
                flags: 2,
                addr: None,
                ports: Some([22, 22]),
                base_port: 0
            }
        );
        // -j SNAT --to-source 1.2.3.4 (IPv4 rev 0)
        let b = hex("010000000100000001020304010203040000000000000000");
        assert_eq!(
            decode_target("SNAT", 0, &b, false),
            XtInfo::Nat {
                target: XtNatKind::Snat,
                flags: 1,
                addr: Some([v4([1, 2, 3, 4]); 2]),
                ports: None,
                base_port: 0
            }
        );
        // ip6tables -j REDIRECT --to-ports 22 (IPv6 rev 0: nf_nat_range)
        let b =
            hex("02000000000000000000000000000000000000000000000000000000000000000000000000160016");
        assert!(matches!(
            decode_target("REDIRECT", 0, &b, true),
            XtInfo::Nat {
                target: XtNatKind::Redirect,
                ports: Some([22, 22]),
                ..
            }
        ));
        // ip6tables -j DNAT --to-destination [fd00::2]:80 (rev 2)
        let b = hex("03000000fd000000000000000000000000000002fd000000000000000000000000000002005000500000000000000000");
        let fd2: IpAddr = "fd00::2".parse().unwrap();
        assert!(matches!(
            decode_target("DNAT", 2, &b, true),
            XtInfo::Nat { addr: Some([a, b]), ports: Some([80, 80]), .. } if a == fd2 && b == fd2
        ));
        // A compat layout with another range count, and DNAT rev 0 in an
        // IPv6 table, are not decoded.
        let mut b = hex("010000000100000001020304010203040000000000000000");
        b[0] = 2;
        assert!(matches!(
            decode_target("SNAT", 0, &b, false),
            XtInfo::Raw { .. }
        ));
        assert!(matches!(
            decode_target("DNAT", 0, &b, true),
            XtInfo::Raw { .. }
        ));
    }

    #[test]
    fn nfqueue_revisions() {
        // --queue-num 3; --queue-balance 3:5 --queue-bypass --queue-cpu-fanout (rev 3)
        assert_eq!(
            decode_target("NFQUEUE", 3, &hex("0300010000000000"), false),
            XtInfo::Queue {
                num: 3,
                total: 1,
                bypass: false,
                fanout: false
            }
        );
        assert_eq!(
            decode_target("NFQUEUE", 3, &hex("0300030003000000"), false),
            XtInfo::Queue {
                num: 3,
                total: 3,
                bypass: true,
                fanout: true
            }
        );
        // rev 2: a bypass field; rev 0: the queue number only.
        assert_eq!(
            decode_target("NFQUEUE", 2, &hex("0700010001000000"), false),
            XtInfo::Queue {
                num: 7,
                total: 1,
                bypass: true,
                fanout: false
            }
        );
        assert_eq!(
            decode_target("NFQUEUE", 0, &hex("0700"), false),
            XtInfo::Queue {
                num: 7,
                total: 1,
                bypass: false,
                fanout: false
            }
        );
    }

    /// The bytes iptables-nft 1.8.9 wrote for these matches, decoded.
    #[test]
    fn match_layouts_as_iptables_nft_writes_them() {
        let d = |n: &str, rev: u32, h: &str| decode_match(n, rev, &hex(h), false);
        // -p tcp ! --tcp-option 8
        assert!(matches!(
            d("tcp", 0, "0000ffff0000ffff0800000800000000"),
            XtInfo::Tcp {
                option: 8,
                invflags: 8,
                ..
            }
        ));
        assert_eq!(
            d(
                "statistic",
                0,
                "010000000200000001000000010000000000000000000000"
            ),
            XtInfo::Statistic {
                mode: 1,
                invert: false,
                probability: 2,
                every: 2
            }
        );
        // --mode random --probability 0.5
        assert!(matches!(
            d(
                "statistic",
                0,
                "000000000000004000000000000000400000000000000000"
            ),
            XtInfo::Statistic {
                mode: 0,
                probability: 0x4000_0000,
                ..
            }
        ));
        assert_eq!(
            d("length", 0, "28003c0000000000"),
            XtInfo::Length {
                range: [40, 60],
                invert: false
            }
        );
        assert_eq!(
            d("tcpmss", 0, "e803dc0500000000"),
            XtInfo::Tcpmss {
                range: [1000, 1500],
                invert: false
            }
        );
        assert_eq!(
            d("ecn", 0, "0100010000000000"),
            XtInfo::Ecn {
                operation: 1,
                invert: 0,
                ip_ect: 1
            }
        );
        assert_eq!(
            d("socket", 3, "0300000000000000"),
            XtInfo::Socket { flags: 3 }
        );
        assert_eq!(
            d(
                "devgroup",
                0,
                "0100000001000000ffffffff000000000000000000000000"
            ),
            XtInfo::Devgroup {
                flags: 1,
                src: [1, 0xffff_ffff],
                dst: [0, 0]
            }
        );
        assert_eq!(
            d("mac", 0, "00112233445500000000000000000000"),
            XtInfo::Mac {
                addr: [0, 0x11, 0x22, 0x33, 0x44, 0x55],
                invert: false
            }
        );
        assert_eq!(
            d("rpfilter", 0, "0800000000000000"),
            XtInfo::Rpfilter { flags: 8 }
        );
        assert_eq!(
            d(
                "helper",
                0,
                "00000000667470000000000000000000000000000000000000000000000000000000000000000000"
            ),
            XtInfo::Helper {
                name: "ftp".into(),
                invert: false
            }
        );
        let mut s = vec![0u8; 160];
        s[4..6].copy_from_slice(b"bm");
        s[20..25].copy_from_slice(b"GET /");
        s[148] = 5;
        assert_eq!(
            decode_match("string", 1, &s, false),
            XtInfo::String {
                algo: "bm".into(),
                pattern: "GET /".into(),
                invert: false
            }
        );
    }
}
