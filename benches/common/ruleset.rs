//! The large benchmark ruleset shared by the benchmarks: `rules` rules in
//! chains of 1,000 jumped to from an input chain, and an interval
//! blocklist of `elements` IPv4 ranges checked first.

use std::fmt::Write as _;

/// The ruleset as `nft -f` input.
pub fn ruleset(rules: usize, elements: usize) -> String {
    let mut s = String::with_capacity(elements * 40 + rules * 60);
    s += "flush ruleset\ntable inet bench {\n";
    s += "  set blocklist {\n    type ipv4_addr\n    flags interval\n    elements = {\n";
    for i in 0..elements {
        let base = 0x0B00_0000u32 + (i as u32) * 16;
        let a = std::net::Ipv4Addr::from(base);
        if i % 2 == 0 {
            let b = std::net::Ipv4Addr::from(base + 9);
            let _ = writeln!(s, "      {a}-{b},");
        } else {
            let _ = writeln!(s, "      {a}/29,");
        }
    }
    s += "    }\n  }\n";
    let chains = rules.div_ceil(1000).max(1);
    for c in 0..chains {
        let _ = writeln!(s, "  chain c{c} {{");
        for i in 0..(rules / chains) {
            let _ = match i % 4 {
                0 => writeln!(
                    s,
                    "    ip saddr 10.{c}.{}.{} tcp dport {} accept",
                    i / 256,
                    i % 256,
                    2000 + i
                ),
                1 => writeln!(
                    s,
                    "    meta mark & 0xff == {} udp dport {} counter drop",
                    i % 255,
                    3000 + i
                ),
                2 => writeln!(
                    s,
                    "    ip6 saddr fd00:{c}::{i:x} tcp dport {{ 22, {} }} ct state new accept",
                    4000 + i
                ),
                _ => writeln!(
                    s,
                    "    iifname \"eth{}\" th dport {}-{} reject",
                    i % 8,
                    5000 + i,
                    5010 + i
                ),
            };
        }
        s += "  }\n";
    }
    s += "  chain input {\n    type filter hook input priority filter; policy drop;\n";
    s += "    ip saddr @blocklist drop\n";
    for c in 0..chains {
        let _ = writeln!(s, "    jump c{c}");
    }
    s += "  }\n}\n";
    s
}
