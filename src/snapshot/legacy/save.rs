//! Legacy rules as `iptables-save` writes them (`-A INPUT -s
//! 10.0.0.10/32 -i eth1 -p tcp -m tcp --dport 6162 -j ACCEPT`). Options
//! portwarden decodes but has no iptables spelling for are written as a
//! `/* ... */` comment after the extension's name; a match or target whose
//! options are not decoded says so the same way.

use super::{
    AddrMatch, IfaceMatch, IpPart, LegacyContents, LegacyFamily, LegacyRule, LegacyTable,
    LegacyTarget,
};
use crate::snapshot::xt::{Ports, XtInfo, XtNatKind};
use std::fmt::Write;
use std::net::IpAddr;

/// `! ` when `invert`.
fn bang(invert: bool) -> &'static str {
    if invert {
        "! "
    } else {
        ""
    }
}

/// `10.0.0.0/24`, or `10.0.0.0/255.0.255.0` for a mask that is not a
/// prefix.
fn addr_text(m: &AddrMatch) -> String {
    let bits: Vec<u8> = match m.mask {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    let ones: u32 = bits.iter().map(|b| b.count_ones()).sum();
    let prefix = bits
        .iter()
        .flat_map(|b| (0..8).rev().map(move |i| b >> i & 1))
        .skip_while(|&b| b == 1)
        .all(|b| b == 0);
    if prefix {
        format!("{}/{ones}", m.addr)
    } else {
        format!("{}/{}", m.addr, m.mask)
    }
}

fn iface_text(m: &IfaceMatch) -> String {
    format!("{}{}", m.name, if m.wildcard { "+" } else { "" })
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

fn ip_text(out: &mut String, ip: &IpPart) {
    if let Some(m) = &ip.src {
        let _ = write!(out, " {}-s {}", bang(m.invert), addr_text(m));
    }
    if let Some(m) = &ip.dst {
        let _ = write!(out, " {}-d {}", bang(m.invert), addr_text(m));
    }
    if let Some(m) = &ip.iniface {
        let _ = write!(out, " {}-i {}", bang(m.invert), iface_text(m));
    }
    if let Some(m) = &ip.outiface {
        let _ = write!(out, " {}-o {}", bang(m.invert), iface_text(m));
    }
    if let Some(p) = &ip.proto {
        let _ = write!(out, " {}-p {}", bang(p.invert), proto_name(p.proto));
    }
    if let Some(f) = ip.fragment {
        let _ = write!(out, " {}-f", bang(!f));
    }
}

fn ports(p: Ports) -> Option<String> {
    match p {
        [0, 65535] => None,
        [a, b] if a == b => Some(a.to_string()),
        [a, b] => Some(format!("{a}:{b}")),
    }
}

fn tcp_flags(bits: u8) -> String {
    let names = ["FIN", "SYN", "RST", "PSH", "ACK", "URG"];
    let v: Vec<&str> = (0..6)
        .filter(|i| bits & (1 << i) != 0)
        .map(|i| names[i])
        .collect();
    if v.is_empty() {
        "NONE".into()
    } else {
        v.join(",")
    }
}

fn bits_text(bits: u32, names: &[(u32, &str)]) -> String {
    let mut v: Vec<String> = names
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| n.to_string())
        .collect();
    let rest = bits & !names.iter().fold(0, |a, (b, _)| a | b);
    if rest != 0 {
        v.push(format!("0x{rest:x}"));
    }
    v.join(",")
}

/// In the order iptables writes them.
const CT_STATES: [(u32, &str); 7] = [
    (1, "INVALID"),
    (8, "NEW"),
    (4, "RELATED"),
    (2, "ESTABLISHED"),
    (1 << 8, "SNAT"),
    (1 << 9, "DNAT"),
    (1 << 12, "UNTRACKED"),
];

const ADDR_TYPES: [(u32, &str); 12] = [
    (1, "UNSPEC"),
    (2, "UNICAST"),
    (4, "LOCAL"),
    (8, "BROADCAST"),
    (16, "ANYCAST"),
    (32, "MULTICAST"),
    (64, "BLACKHOLE"),
    (128, "UNREACHABLE"),
    (256, "PROHIBIT"),
    (512, "THROW"),
    (1024, "NAT"),
    (2048, "XRESOLVE"),
];

/// The options of a decoded variant without an iptables spelling here:
/// its fields, as a comment.
fn generic(info: &XtInfo) -> String {
    match info {
        XtInfo::Raw { bytes, .. } => format!(
            " /* options not decoded: {} bytes */",
            bytes.as_slice().len()
        ),
        other => {
            let fields = other.fields_text();
            if fields.is_empty() {
                String::new()
            } else {
                format!(" /* {fields} */")
            }
        }
    }
}

/// `-m NAME --option ...`.
fn match_text(out: &mut String, name: &str, info: &XtInfo) {
    // iptables writes `-m state` as the conntrack match with the state
    // alias flag, and reads it back the same way.
    let alias = matches!(info, XtInfo::Conntrack { match_flags, .. } if name == "conntrack" && match_flags & 0x2000 != 0);
    let name = if alias { "state" } else { name };
    let _ = write!(out, " -m {name}");
    match info {
        XtInfo::Tcp {
            sport,
            dport,
            flg_mask,
            flg_cmp,
            invflags,
            ..
        } => {
            if let Some(p) = ports(*sport) {
                let _ = write!(out, " {}--sport {p}", bang(invflags & 1 != 0));
            }
            if let Some(p) = ports(*dport) {
                let _ = write!(out, " {}--dport {p}", bang(invflags & 2 != 0));
            }
            if *flg_mask != 0 {
                let _ = write!(
                    out,
                    " {}--tcp-flags {} {}",
                    bang(invflags & 4 != 0),
                    tcp_flags(*flg_mask),
                    tcp_flags(*flg_cmp)
                );
            }
        }
        XtInfo::Udp {
            sport,
            dport,
            invflags,
            ..
        } => {
            if let Some(p) = ports(*sport) {
                let _ = write!(out, " {}--sport {p}", bang(invflags & 1 != 0));
            }
            if let Some(p) = ports(*dport) {
                let _ = write!(out, " {}--dport {p}", bang(invflags & 2 != 0));
            }
        }
        XtInfo::Multiport {
            flags,
            ports: p,
            range,
            invert,
            ..
        } => {
            let items = crate::snapshot::xt::multiport_items(p, range, ":");
            let dir = crate::snapshot::xt::multiport_option(*flags);
            let _ = write!(out, " {}--{dir} {}", bang(*invert), items.join(","));
        }
        XtInfo::Conntrack {
            match_flags,
            invert_flags,
            state_mask,
            status_mask,
            l4proto,
            ..
        } => {
            let inv = |b: u16| bang(invert_flags & b != 0);
            if match_flags & 1 != 0 {
                let s = bits_text(u32::from(*state_mask), &CT_STATES);
                let opt = if alias { "--state" } else { "--ctstate" };
                let _ = write!(out, " {}{opt} {s}", inv(1));
            }
            if match_flags & 2 != 0 {
                let _ = write!(out, " {}--ctproto {l4proto}", inv(2));
            }
            if match_flags & 0x40 != 0 {
                let _ = write!(out, " {}--ctstatus 0x{status_mask:x}", inv(0x40));
            }
            if match_flags & !0x2043 != 0 {
                out.push_str(" /* other conntrack options not decoded */");
            }
        }
        XtInfo::State { mask, .. } => {
            let _ = write!(out, " --state {}", bits_text(*mask, &CT_STATES[..4]));
        }
        XtInfo::Iprange {
            src, dst, flags, ..
        } => {
            if let Some([a, b]) = src {
                let _ = write!(out, " {}--src-range {a}-{b}", bang(flags & 0x10 != 0));
            }
            if let Some([a, b]) = dst {
                let _ = write!(out, " {}--dst-range {a}-{b}", bang(flags & 0x20 != 0));
            }
        }
        XtInfo::Comment { text, .. } => {
            let _ = write!(out, " --comment {text:?}");
        }
        XtInfo::Recent {
            seconds,
            hit_count,
            check_set,
            invert,
            name: list,
            side,
            ..
        } => {
            let cmd = match check_set & 0xf {
                1 => "--rcheck",
                2 => "--set",
                4 => "--update",
                8 => "--remove",
                _ => "",
            };
            let _ = write!(out, " {}{cmd} --name {list}", bang(*invert));
            if *seconds != 0 {
                let _ = write!(out, " --seconds {seconds}");
            }
            if *hit_count != 0 {
                let _ = write!(out, " --hitcount {hit_count}");
            }
            out.push_str(if *side == 1 { " --rdest" } else { " --rsource" });
        }
        XtInfo::Limit { avg, burst, .. } => {
            // avg: seconds per packet, in units of 1/10000 s.
            let units = [
                (10_000u64, "sec"),
                (600_000, "min"),
                (36_000_000, "hour"),
                (864_000_000, "day"),
            ];
            let avg = u64::from(*avg).max(1);
            let (n, unit) = units
                .iter()
                .find(|(s, _)| s % avg == 0)
                .map_or((864_000_000 / avg, "day"), |(s, u)| (s / avg, *u));
            let _ = write!(out, " --limit {n}/{unit}");
            if *burst != 5 {
                let _ = write!(out, " --limit-burst {burst}");
            }
        }
        XtInfo::Icmp {
            icmp_type,
            code,
            invflags,
            ..
        } => {
            let opt = if name == "icmp6" {
                "--icmpv6-type"
            } else {
                "--icmp-type"
            };
            let t = if *code == [0, 255] {
                icmp_type.to_string()
            } else {
                format!("{icmp_type}/{}", code[0])
            };
            let _ = write!(out, " {}{opt} {t}", bang(invflags & 1 != 0));
        }
        XtInfo::Mark {
            mark, mask, invert, ..
        } => {
            let _ = write!(out, " {}--mark 0x{mark:x}", bang(*invert));
            if *mask != u32::MAX {
                let _ = write!(out, "/0x{mask:x}");
            }
        }
        XtInfo::Addrtype {
            source,
            dest,
            flags,
            ..
        } => {
            if *source != 0 {
                let t = bits_text(u32::from(*source), &ADDR_TYPES);
                let _ = write!(out, " {}--src-type {t}", bang(flags & 1 != 0));
            }
            if *dest != 0 {
                let t = bits_text(u32::from(*dest), &ADDR_TYPES);
                let _ = write!(out, " {}--dst-type {t}", bang(flags & 2 != 0));
            }
            if flags & 4 != 0 {
                out.push_str(" --limit-iface-in");
            }
            if flags & 8 != 0 {
                out.push_str(" --limit-iface-out");
            }
        }
        XtInfo::Hl { mode, value, .. } => {
            let base = if name == "ttl" { "ttl" } else { "hl" };
            let op = ["eq", "ne", "lt", "gt"].get(usize::from(*mode)).copied();
            match op {
                Some("ne") => {
                    let _ = write!(out, " ! --{base}-eq {value}");
                }
                Some(op) => {
                    let _ = write!(out, " --{base}-{op} {value}");
                }
                None => out.push_str(&generic(info)),
            }
        }
        other => out.push_str(&generic(other)),
    }
}

fn reject_with(with: u32, v6: bool) -> Option<&'static str> {
    let v4 = [
        "icmp-net-unreachable",
        "icmp-host-unreachable",
        "icmp-proto-unreachable",
        "icmp-port-unreachable",
        "icmp-echo-reply",
        "icmp-net-prohibited",
        "icmp-host-prohibited",
        "tcp-reset",
        "icmp-admin-prohibited",
    ];
    let v6n = [
        "icmp6-no-route",
        "icmp6-adm-prohibited",
        "icmp6-not-neighbour",
        "icmp6-addr-unreachable",
        "icmp6-port-unreachable",
        "icmp6-echo-reply",
        "tcp-reset",
        "icmp6-policy-fail",
        "icmp6-reject-route",
    ];
    let list: &[&str] = if v6 { &v6n } else { &v4 };
    list.get(with as usize).copied()
}

fn target_text(out: &mut String, t: &LegacyTarget, v6: bool) {
    match t {
        LegacyTarget::Accept => out.push_str(" -j ACCEPT"),
        LegacyTarget::Drop => out.push_str(" -j DROP"),
        LegacyTarget::Queue => out.push_str(" -j QUEUE"),
        LegacyTarget::Return => out.push_str(" -j RETURN"),
        LegacyTarget::Jump { chain } => {
            let _ = write!(out, " -j {chain}");
        }
        LegacyTarget::Goto { chain } => {
            let _ = write!(out, " -g {chain}");
        }
        LegacyTarget::Fallthrough => {}
        LegacyTarget::Target { name, info, .. } => {
            let _ = write!(out, " -j {name}");
            match info {
                XtInfo::Reject { with, .. } => match reject_with(*with, v6) {
                    Some(w) => {
                        let _ = write!(out, " --reject-with {w}");
                    }
                    None => {
                        let _ = write!(out, " --reject-with {with}");
                    }
                },
                XtInfo::Log { level, prefix, .. } => {
                    if !prefix.is_empty() {
                        let _ = write!(out, " --log-prefix {prefix:?}");
                    }
                    if *level != 4 {
                        let _ = write!(out, " --log-level {level}");
                    }
                }
                XtInfo::MarkSet { mark, mask, .. } => {
                    let _ = write!(out, " --set-xmark 0x{mark:x}/0x{mask:x}");
                }
                XtInfo::Nat {
                    target,
                    flags,
                    addr,
                    ports,
                    ..
                } => nat_text(out, *target, *flags, addr.as_ref(), ports.as_ref()),
                XtInfo::Queue {
                    num,
                    total,
                    bypass,
                    fanout,
                } => {
                    if *total > 1 {
                        let last = u32::from(*num) + u32::from(*total) - 1;
                        let _ = write!(out, " --queue-balance {num}:{last}");
                    } else {
                        let _ = write!(out, " --queue-num {num}");
                    }
                    if *bypass {
                        out.push_str(" --queue-bypass");
                    }
                    if *fanout {
                        out.push_str(" --queue-cpu-fanout");
                    }
                }
                other => out.push_str(&generic(other)),
            }
        }
    }
}

/// `--to-destination 10.0.0.5:80`, `--to-source`, `--to-ports 22` and the
/// NAT flags, as iptables writes them.
fn nat_text(
    out: &mut String,
    target: XtNatKind,
    flags: u32,
    addr: Option<&[IpAddr; 2]>,
    ports: Option<&Ports>,
) {
    let one = |a: &IpAddr| match a {
        IpAddr::V6(_) if ports.is_some() => format!("[{a}]"),
        _ => a.to_string(),
    };
    let addrs = addr.map(|[a, b]| {
        if a == b {
            one(a)
        } else {
            format!("{}-{}", one(a), one(b))
        }
    });
    let ports = ports.map(|[a, b]| {
        if a == b {
            a.to_string()
        } else {
            format!("{a}-{b}")
        }
    });
    match target {
        XtNatKind::Dnat | XtNatKind::Snat => {
            let opt = if target == XtNatKind::Dnat {
                "--to-destination"
            } else {
                "--to-source"
            };
            let _ = write!(out, " {opt} {}", addrs.unwrap_or_default());
            if let Some(p) = ports {
                let _ = write!(out, ":{p}");
            }
        }
        XtNatKind::Redirect | XtNatKind::Masquerade => {
            if let Some(p) = ports {
                let _ = write!(out, " --to-ports {p}");
            }
        }
    }
    for (bit, opt) in [
        (4, "--random"),
        (0x10, "--random-fully"),
        (8, "--persistent"),
    ] {
        if flags & bit != 0 {
            let _ = write!(out, " {opt}");
        }
    }
}

/// One rule: `-A CHAIN ...`.
pub fn rule_text(chain: &str, r: &LegacyRule, family: LegacyFamily) -> String {
    let mut out = format!("-A {chain}");
    ip_text(&mut out, &r.ip);
    for m in &r.matches {
        match_text(&mut out, &m.name, &m.info);
    }
    target_text(&mut out, &r.target, family.is_v6());
    out
}

/// The table as `iptables-save` writes it: `*filter`, the chains with
/// their policies (`-` for user chains), the rules, `COMMIT`. A table
/// that could not be read is a comment.
pub fn table_text(t: &LegacyTable) -> String {
    let mut out = format!("# {} table {}\n", t.family.command(), t.name);
    let (chains, user_chains) = match &t.contents {
        LegacyContents::Read {
            chains,
            user_chains,
            ..
        } => (chains, user_chains),
        LegacyContents::Unreadable { reason } => {
            let _ = writeln!(out, "# could not be read: {reason}");
            return out;
        }
    };
    let _ = writeln!(out, "*{}", t.name);
    for c in chains {
        let _ = writeln!(out, ":{} {} [0:0]", c.name, super::policy_name(c.policy));
    }
    for c in user_chains {
        let _ = writeln!(out, ":{} - [0:0]", c.name);
    }
    for c in chains {
        for r in &c.rules {
            let _ = writeln!(out, "{}", rule_text(&c.name, r, t.family));
        }
    }
    for c in user_chains {
        for r in &c.rules {
            let _ = writeln!(out, "{}", rule_text(&c.name, r, t.family));
        }
    }
    out.push_str("COMMIT\n");
    out
}
