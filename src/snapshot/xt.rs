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
        _ => return None,
    })
}

/// Decodes a target's info bytes.
pub fn decode_target(name: &str, rev: u32, b: &[u8]) -> XtInfo {
    let opt = || -> Option<XtInfo> {
        Some(match (name, rev) {
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
            "recent", "limit", "icmp", "icmp6", "mark", "addrtype", "hl", "rt", "time", "REJECT", "LOG", "MARK", "zz"]),
            rev in 0u32..4, bytes in prop::collection::vec(any::<u8>(), 0..300), v6: bool) {
            let _ = decode_match(name, rev, &bytes, v6);
            let _ = decode_target(name, rev, &bytes);
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
                invflags: 0
            }
        );
    }
}
