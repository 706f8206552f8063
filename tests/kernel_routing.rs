//! The routing decision between prerouting and input, against the real
//! kernel: `portwarden explain` must say which packets the kernel drops
//! there, and name the check, for
//!
//! - IPv4 reverse-path filtering (`net.ipv4.conf.{all,IF}.rp_filter`,
//!   strict and loose, the larger value counting), with sources the host
//!   routes through the other interface (a remote network, a connected
//!   subnet of the other interface), a source with no route back and one
//!   whose route back is a blackhole;
//! - a source that is one of the host's own addresses: a martian source
//!   unless `accept_local` is set;
//! - DNAT to 127.0.0.1 from a non-loopback interface, dropped as a martian
//!   destination unless `route_localnet` is set (on `all` or the interface);
//! - policy routing (`ip rule`, `ip -6 rule`): `prohibit`, `blackhole`,
//!   `unreachable` rules and a table with a `prohibit` route before the
//!   local table, IPv4 and IPv6; lookups in another table that change
//!   reverse-path filtering's outcome and the interface a reply leaves
//!   through, and a reply refused by a rule (the connection fails; explain
//!   says why), checked with real connections.
//!
//! In the standard [`Topology`], real SYNs and datagrams are sent from the
//! peer (spoofed sources are addresses the peer owns, sent out of the other
//! link) and a recorder chain at the last input priority tells which
//! arrived. The kernel's own counters confirm the step: the namespace's
//! `TcpExt: IPReversePathFilter` counts exactly the reverse-path refusals;
//! `/proc/net/stat/rt_cache`'s `in_martian_dst` (a global counter) grows by
//! at least the martian destinations. Sysctls are set only inside the
//! namespaces. Needs root and python3.

mod common;

use common::packets::{self, Packet};
use common::{require_root, run, Netns, Topology, PRIVATE, PUBLIC};
use serde_json::Value;
use std::net::IpAddr;

/// One probe with what explain must say of it.
struct Case {
    proto: &'static str,
    from: &'static str,
    to: &'static str,
    port: u16,
    sport: u16,
    /// `None`: delivered (accept); `Some((check, setting))`: dropped by the
    /// routing decision.
    dropped: Option<(&'static str, String)>,
}

fn sysctl(ns: &Netns, kv: &str) {
    run(ns.cmd("sysctl").args(["-qw", kv]));
}

/// `portwarden explain --batch` in the host namespace, one answer per case.
fn explain(ns: &Netns, cases: &[Case]) -> Vec<Value> {
    let queries: Vec<Value> = cases
        .iter()
        .map(|c| {
            serde_json::json!({"proto": c.proto, "port": c.port, "from": c.from,
                "to": c.to, "iif": PUBLIC.host_if, "sport": c.sport})
        })
        .collect();
    ns.explain_batch(&queries)
}

/// The namespace's `TcpExt: IPReversePathFilter`.
fn rp_filter_drops(ns: &Netns) -> u64 {
    let out = run(ns.cmd("cat").arg("/proc/net/netstat"));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("TcpExt:")).collect();
    let (names, values) = (lines[0], lines[1]);
    let i = names
        .split_whitespace()
        .position(|n| n == "IPReversePathFilter")
        .expect("IPReversePathFilter counter");
    values.split_whitespace().nth(i).unwrap().parse().unwrap()
}

/// `in_martian_dst` summed over the CPUs (a global counter).
fn martian_destinations(ns: &Netns) -> u64 {
    let out = run(ns.cmd("cat").arg("/proc/net/stat/rt_cache"));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let i = lines
        .next()
        .unwrap()
        .split_whitespace()
        .position(|n| n == "in_martian_dst")
        .expect("in_martian_dst column");
    lines
        .map(|l| u64::from_str_radix(l.split_whitespace().nth(i).unwrap(), 16).unwrap())
        .sum()
}

/// `portwarden explain`'s text for one probe arriving on pw-pub.
fn explain_text(ns: &Netns, service: &str, from: &str) -> String {
    let out = ns.portwarden(&[
        "explain",
        service,
        "--from",
        from,
        "--to",
        PUBLIC.host4,
        "--iif",
        PUBLIC.host_if,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Explains, sends and compares one round; returns the number of
/// disagreements, printed.
fn round(t: &Topology, what: &str, cases: &[Case]) -> Vec<String> {
    let answers = explain(&t.host, cases);
    let rp0 = rp_filter_drops(&t.host);
    let md0 = martian_destinations(&t.host);
    packets::add_recorder(&t.host);
    let batch: Vec<Packet> = cases
        .iter()
        .map(|c| Packet {
            proto: c.proto.into(),
            from: c.from.parse::<IpAddr>().unwrap(),
            to: c.to.parse().unwrap(),
            sport: c.sport,
            port: c.port,
        })
        .collect();
    packets::send(&t.peer, &batch, 0.02);
    let seen = packets::seen(&t.host);
    packets::remove_recorder(&t.host);
    let rp = rp_filter_drops(&t.host) - rp0;
    let md = martian_destinations(&t.host) - md0;

    let mut bad = Vec::new();
    let mut want_rp = 0;
    let mut want_md = 0;
    for (c, a) in cases.iter().zip(&answers) {
        let arrived = seen
            .iter()
            .any(|s| s.proto == c.proto && s.sport == c.sport && s.saddr == c.from);
        let desc = format!(
            "{what}: {} {}:{} -> {}:{}",
            c.proto, c.from, c.sport, c.to, c.port
        );
        let verdict = a["verdict"].as_str().unwrap_or("?");
        let step = (
            a["routing"]["check"].as_str().unwrap_or(""),
            a["routing"]["setting"].as_str().unwrap_or(""),
        );
        if arrived != (verdict == "accept") {
            bad.push(format!(
                "{desc}: the kernel {} it, explain says {verdict}: {a}",
                if arrived { "delivered" } else { "dropped" }
            ));
        }
        match &c.dropped {
            None if arrived && verdict == "accept" && a.get("routing").is_none() => {}
            None => bad.push(format!(
                "{desc}: expected delivered: arrived {arrived}, {a}"
            )),
            Some((check, setting)) => {
                if *check == "rp_filter" {
                    want_rp += 1;
                } else if *check == "martian_destination" {
                    want_md += 1;
                }
                if arrived || verdict != "drop" || step != (*check, setting.as_str()) {
                    bad.push(format!(
                        "{desc}: expected dropped by {check} ({setting}): arrived {arrived}, {a}"
                    ));
                }
                let reason = a["reason"].as_str().unwrap_or("");
                if !reason.contains("routing decision after prerouting") {
                    bad.push(format!(
                        "{desc}: the reason does not name the step: {reason}"
                    ));
                }
            }
        }
    }
    if rp != want_rp {
        bad.push(format!(
            "{what}: the kernel counted {rp} reverse-path refusals (IPReversePathFilter), explain {want_rp}"
        ));
    }
    if md < want_md {
        bad.push(format!(
            "{what}: the kernel counted {md} martian destinations (in_martian_dst), explain {want_md}"
        ));
    }
    bad
}

/// Reverse-path filtering, strict and loose, from `all` and from the
/// interface, against real packets: each verdict and the sysctl it names.
#[test]
fn rp_filter_strict_and_loose_agree_with_the_kernel() {
    if !require_root("rp_filter_strict_and_loose_agree_with_the_kernel") {
        return;
    }
    let t = Topology::new("rpf");
    t.static_neighbours();
    // Sources the peer owns (on its lo) and sends out of peer-pub: 10.0.0.10
    // the host routes through pw-priv; 203.0.113.9 it has no route to;
    // 198.51.100.9 is blackholed. 10.99.0.2 is the peer's address on the
    // private link: a connected subnet of the host's other interface.
    for a in ["10.0.0.10/32", "203.0.113.9/32", "198.51.100.9/32"] {
        t.peer.ip(&["addr", "add", a, "dev", "lo"]);
    }
    t.host.ip(&[
        "route",
        "add",
        "10.0.0.10/32",
        "via",
        PRIVATE.peer4,
        "dev",
        PRIVATE.host_if,
    ]);
    t.host.ip(&["route", "add", "blackhole", "198.51.100.0/24"]);
    t.host.nft_text(
        "table inet f { chain input { type filter hook input priority 0; policy accept; }; }",
    );

    let mut sport = 41000;
    let mut cases = |rpf: Option<(&'static str, String)>, sources: &[(&'static str, bool)]| {
        let mut v = Vec::new();
        for &(from, refused) in sources {
            for proto in ["tcp", "udp"] {
                sport += 1;
                v.push(Case {
                    proto,
                    from,
                    to: PUBLIC.host4,
                    port: 6162,
                    sport,
                    dropped: if refused { rpf.clone() } else { None },
                });
            }
        }
        v
    };
    let mut bad = Vec::new();

    // Off: everything arrives (the sources themselves are deliverable).
    for k in ["all", "default", PUBLIC.host_if, PRIVATE.host_if] {
        sysctl(&t.host, &format!("net.ipv4.conf.{k}.rp_filter=0"));
    }
    let off = cases(
        None,
        &[
            (PUBLIC.peer4, false),
            ("10.0.0.10", false),
            (PRIVATE.peer4, false),
            ("203.0.113.9", false),
        ],
    );
    bad.extend(round(&t, "rp_filter 0", &off));

    // Strict on the interface: only the source routed back through pw-pub.
    sysctl(&t.host, "net.ipv4.conf.pw-pub.rp_filter=1");
    let strict = cases(
        Some(("rp_filter", "net.ipv4.conf.pw-pub.rp_filter=1".into())),
        &[
            (PUBLIC.peer4, false),
            ("10.0.0.10", true),
            (PRIVATE.peer4, true),
            ("203.0.113.9", true),
            ("198.51.100.9", true),
        ],
    );
    bad.extend(round(&t, "pw-pub rp_filter 1", &strict));
    let text = explain_text(&t.host, "tcp/6162", "10.0.0.10");
    for want in [
        "tcp 10.0.0.10:",
        ": DROP\n",
        "decided by: the routing decision after prerouting: refused by reverse-path filtering (net.ipv4.conf.pw-pub.rp_filter=1)\n",
        "strict: the route back to 10.0.0.10 (10.0.0.10/32) leaves through pw-priv, not pw-pub",
        "before the input hook",
    ] {
        if !text.contains(want) {
            bad.push(format!("explain's text lacks {want:?}:\n{text}"));
        }
    }

    // Loose from `all` (2 > the interface's 0): any unicast route back.
    sysctl(&t.host, "net.ipv4.conf.pw-pub.rp_filter=0");
    sysctl(&t.host, "net.ipv4.conf.all.rp_filter=2");
    let loose = cases(
        Some(("rp_filter", "net.ipv4.conf.all.rp_filter=2".into())),
        &[
            (PUBLIC.peer4, false),
            ("10.0.0.10", false),
            (PRIVATE.peer4, false),
            ("203.0.113.9", true),
            ("198.51.100.9", true),
        ],
    );
    bad.extend(round(&t, "all rp_filter 2", &loose));

    // all=1, pw-pub=2: the larger, loose, from the interface.
    sysctl(&t.host, "net.ipv4.conf.all.rp_filter=1");
    sysctl(&t.host, "net.ipv4.conf.pw-pub.rp_filter=2");
    let max = cases(
        Some(("rp_filter", "net.ipv4.conf.pw-pub.rp_filter=2".into())),
        &[("10.0.0.10", false), ("203.0.113.9", true)],
    );
    bad.extend(round(&t, "all 1, pw-pub 2", &max));

    // The host's own address as the source (the peer owns it too, on its
    // lo): a martian source, with or without rp_filter, unless accept_local.
    t.peer.ip(&["addr", "add", "10.99.0.1/32", "dev", "lo"]);
    for k in ["all", PUBLIC.host_if] {
        sysctl(&t.host, &format!("net.ipv4.conf.{k}.rp_filter=0"));
        sysctl(&t.host, &format!("net.ipv4.conf.{k}.accept_local=0"));
    }
    let own = cases(
        Some((
            "martian_source",
            "net.ipv4.conf.all.accept_local=0, net.ipv4.conf.pw-pub.accept_local=0".into(),
        )),
        &[(PUBLIC.peer4, false), (PRIVATE.host4, true)],
    );
    bad.extend(round(&t, "own source, rp_filter 0", &own));
    sysctl(&t.host, "net.ipv4.conf.pw-pub.accept_local=1");
    let own = cases(None, &[(PRIVATE.host4, false)]);
    bad.extend(round(&t, "own source, accept_local 1", &own));

    assert!(bad.is_empty(), "disagreements:\n{}", bad.join("\n"));
}

/// DNAT to 127.0.0.1 from pw-pub: a martian destination, dropped in the
/// routing decision, unless route_localnet is set on the interface or on
/// `all`.
#[test]
fn dnat_to_loopback_needs_route_localnet() {
    if !require_root("dnat_to_loopback_needs_route_localnet") {
        return;
    }
    let t = Topology::new("rln");
    t.static_neighbours();
    for k in ["all", "default", PUBLIC.host_if, PRIVATE.host_if] {
        sysctl(&t.host, &format!("net.ipv4.conf.{k}.rp_filter=0"));
        sysctl(&t.host, &format!("net.ipv4.conf.{k}.route_localnet=0"));
    }
    t.host.nft_text(
        "table ip n {
           chain pre { type nat hook prerouting priority -100;
             meta l4proto { tcp, udp } th dport 8080 dnat to 127.0.0.1:9090; }
         }
         table inet f { chain input { type filter hook input priority 0; policy accept; }; }",
    );
    let mut sport = 42000;
    let mut cases = |dropped: Option<(&'static str, String)>| {
        let mut v = Vec::new();
        for proto in ["tcp", "udp"] {
            for port in [8080, 6162] {
                sport += 1;
                v.push(Case {
                    proto,
                    from: PUBLIC.peer4,
                    to: PUBLIC.host4,
                    port,
                    sport,
                    // Only the DNATed port goes to 127.0.0.1.
                    dropped: if port == 8080 { dropped.clone() } else { None },
                });
            }
        }
        v
    };
    let mut bad = Vec::new();
    let off = "net.ipv4.conf.all.route_localnet=0, net.ipv4.conf.pw-pub.route_localnet=0";
    bad.extend(round(
        &t,
        "route_localnet 0",
        &cases(Some(("martian_destination", off.into()))),
    ));
    let text = explain_text(&t.host, "tcp/8080", PUBLIC.peer4);
    for want in [
        ": DROP\n",
        "nat: dnat to 127.0.0.1:9090",
        &format!("decided by: the routing decision after prerouting: dropped as a martian destination ({off})\n"),
        "dnat to 127.0.0.1: a destination in 127.0.0.0/8 arriving on pw-pub",
    ] {
        if !text.contains(want) {
            bad.push(format!("explain's text lacks {want:?}:\n{text}"));
        }
    }
    sysctl(&t.host, "net.ipv4.conf.pw-pub.route_localnet=1");
    bad.extend(round(&t, "pw-pub route_localnet 1", &cases(None)));
    sysctl(&t.host, "net.ipv4.conf.pw-pub.route_localnet=0");
    sysctl(&t.host, "net.ipv4.conf.all.route_localnet=1");
    bad.extend(round(&t, "all route_localnet 1", &cases(None)));
    // Set on the other interface only: still a martian on pw-pub.
    sysctl(&t.host, "net.ipv4.conf.all.route_localnet=0");
    sysctl(&t.host, "net.ipv4.conf.pw-priv.route_localnet=1");
    bad.extend(round(
        &t,
        "pw-priv route_localnet 1",
        &cases(Some(("martian_destination", off.into()))),
    ));
    assert!(bad.is_empty(), "disagreements:\n{}", bad.join("\n"));
}

/// Real TCP connections from the peer, each from a source address it owns:
/// whether each completed (within a second).
fn connect(peer: &Netns, conns: &[(&str, &str, u16)]) -> Vec<bool> {
    const CONNECT: &str = r#"
import socket, sys
for spec in sys.argv[1:]:
    src, dst, port = spec.split(",")
    fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.bind((src, 0))
    s.settimeout(1.0)
    try:
        s.connect((dst, int(port)))
        print("ok", flush=True)
    except OSError:
        print("fail", flush=True)
    s.close()
"#;
    let specs: Vec<String> = conns
        .iter()
        .map(|(s, d, p)| format!("{s},{d},{p}"))
        .collect();
    let out = run(peer.cmd("python3").arg("-c").arg(CONNECT).args(&specs));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l == "ok")
        .collect()
}

/// Records the output interface of every TCP packet the host sends from
/// a port (its SYN-ACKs) in `inet pw_out`.
const OUT_RECORDER: &str = "table inet pw_out {
  set o { type ifname . inet_service; flags dynamic; size 1024; }
  chain out { type filter hook output priority 0; policy accept;
    meta l4proto tcp add @o { oifname . tcp sport };
  }
}";

/// The interfaces the host's TCP packets from its port `sport` left by.
fn sent_by(host: &Netns, sport: u16) -> Vec<String> {
    let o = run(host
        .cmd("nft")
        .args(["-j", "list", "set", "inet", "pw_out", "o"]));
    let v: Value = serde_json::from_slice(&o.stdout).expect("nft -j");
    let mut out = Vec::new();
    for o in v["nftables"].as_array().into_iter().flatten() {
        for e in o["set"]["elem"].as_array().into_iter().flatten() {
            let c = if e.get("elem").is_some() {
                &e["elem"]["val"]["concat"]
            } else {
                &e["concat"]
            };
            if c[1].as_u64() == Some(u64::from(sport)) {
                out.push(c[0].as_str().unwrap_or("").to_string());
            }
        }
    }
    out
}

/// Rules before the local table: `prohibit`, `blackhole`, `unreachable`
/// and a lookup in a table whose route is `prohibit` drop the packet in the
/// routing decision, and explain names the rule; a `throw` route passes
/// the lookup on. IPv4 and IPv6, real SYNs and datagrams.
#[test]
fn policy_rules_before_the_local_table_agree_with_the_kernel() {
    if !require_root("policy_rules_before_the_local_table_agree_with_the_kernel") {
        return;
    }
    let t = Topology::new("prl");
    t.static_neighbours();
    for k in ["all", "default", PUBLIC.host_if, PRIVATE.host_if] {
        sysctl(&t.host, &format!("net.ipv4.conf.{k}.rp_filter=0"));
    }
    t.host.nft_text(
        "table inet f { chain input { type filter hook input priority 0; policy accept; }; }",
    );
    let (v4, v6) = (
        [
            "203.0.113.9",
            "198.51.100.9",
            "203.0.113.10",
            "203.0.113.11",
            "203.0.113.12",
        ],
        [
            "2001:db8:9::9",
            "2001:db8:9::10",
            "2001:db8:9::11",
            "2001:db8:9::12",
            "2001:db8:9::13",
        ],
    );
    for a in v4 {
        t.peer.ip(&["addr", "add", &format!("{a}/32"), "dev", "lo"]);
    }
    for a in v6 {
        t.peer.ip(&[
            "-6",
            "addr",
            "add",
            &format!("{a}/128"),
            "dev",
            "lo",
            "nodad",
        ]);
    }
    // The local rule moved after the others (as VRF setups do).
    for (fam, src) in [("-4", v4), ("-6", v6)] {
        t.host
            .ip(&[fam, "rule", "add", "pref", "32765", "lookup", "local"]);
        t.host.ip(&[fam, "rule", "del", "pref", "0"]);
        for (pref, (a, action)) in src
            .iter()
            .zip(["prohibit", "blackhole", "unreachable"])
            .enumerate()
        {
            let pref = (100 + pref).to_string();
            t.host
                .ip(&[fam, "rule", "add", "pref", &pref, "from", a, action]);
        }
        t.host.ip(&[
            fam, "rule", "add", "pref", "103", "from", src[3], "lookup", "300",
        ]);
        t.host.ip(&[
            fam, "rule", "add", "pref", "104", "from", src[4], "lookup", "400",
        ]);
        t.host
            .ip(&[fam, "route", "add", "prohibit", "default", "table", "300"]);
        t.host
            .ip(&[fam, "route", "add", "throw", "default", "table", "400"]);
    }
    let mut sport = 43000;
    let mut cases = Vec::new();
    for (src, to, prohibit_net) in [(v4, PUBLIC.host4, "0.0.0.0/0"), (v6, PUBLIC.host6, "::/0")] {
        let expect: [Option<(&'static str, String)>; 5] = [
            Some((
                "policy_routing",
                format!("rule 100: from {} prohibit", src[0]),
            )),
            Some((
                "policy_routing",
                format!("rule 101: from {} blackhole", src[1]),
            )),
            Some((
                "policy_routing",
                format!("rule 102: from {} unreachable", src[2]),
            )),
            Some(("route_type", format!("table 300: prohibit {prohibit_net}"))),
            None,
        ];
        for (from, dropped) in src.iter().zip(expect) {
            for proto in ["tcp", "udp"] {
                sport += 1;
                cases.push(Case {
                    proto,
                    from,
                    to,
                    port: 6162,
                    sport,
                    dropped: dropped.clone(),
                });
            }
        }
    }
    let mut bad = round(&t, "rules before local", &cases);
    let text = explain_text(&t.host, "tcp/6162", "203.0.113.9");
    for want in [
        ": DROP\n",
        "decided by: the routing decision after prerouting: refused by policy routing (rule 100: from 203.0.113.9 prohibit)\n",
    ] {
        if !text.contains(want) {
            bad.push(format!("explain's text lacks {want:?}:\n{text}"));
        }
    }
    // The rules are in the host snapshot.
    let routes: Value = serde_json::from_slice(&t.host.portwarden(&["routes", "--json"]).stdout)
        .expect("routes --json");
    let rules = routes["rules"].as_array().cloned().unwrap_or_default();
    let has = |v6: bool, prio: u64, action: Value| {
        rules.iter().any(|r| {
            r["v6"].as_bool() == Some(v6)
                && r["priority"].as_u64() == Some(prio)
                && r["action"] == action
        })
    };
    for v6 in [false, true] {
        for (prio, action) in [
            (100, serde_json::json!("prohibit")),
            (103, serde_json::json!({"lookup": 300})),
            (32765, serde_json::json!({"lookup": 255})),
        ] {
            if !has(v6, prio, action.clone()) {
                bad.push(format!(
                    "routes --json lacks rule {prio} {action} (v6 {v6}): {rules:?}"
                ));
            }
        }
    }
    assert!(bad.is_empty(), "disagreements:\n{}", bad.join("\n"));
}

/// Lookups in another table: a rule sending the route back to a source
/// through the input interface lets strict reverse-path filtering pass it,
/// a `prohibit` rule on the way back refuses it; with rp_filter off, the
/// reply leaves where the rules send it (explain's note names the
/// interface, an output recorder confirms it) and a reply refused by a rule
/// makes a real connection fail, as explain's note says.
#[test]
fn policy_tables_change_reverse_path_and_replies() {
    if !require_root("policy_tables_change_reverse_path_and_replies") {
        return;
    }
    let t = Topology::new("prt");
    t.static_neighbours();
    for ns in [&t.host, &t.peer] {
        for k in ["all", "default"] {
            sysctl(ns, &format!("net.ipv4.conf.{k}.rp_filter=0"));
        }
    }
    for k in [PUBLIC.peer_if, PRIVATE.peer_if, "lo"] {
        sysctl(&t.peer, &format!("net.ipv4.conf.{k}.rp_filter=0"));
    }
    sysctl(&t.host, "net.ipv4.conf.pw-priv.rp_filter=0");
    sysctl(&t.host, "net.ipv4.conf.pw-pub.rp_filter=1");
    for a in ["10.0.0.10/32", "10.0.0.11/32", "10.0.0.12/32"] {
        t.peer.ip(&["addr", "add", a, "dev", "lo"]);
    }
    for a in ["2001:db8:9::10/128", "2001:db8:9::11/128"] {
        t.peer.ip(&["-6", "addr", "add", a, "dev", "lo", "nodad"]);
    }
    // Main: 10.0.0.0/24 through pw-priv; table 100: through pw-pub, for
    // 10.0.0.11 only.
    t.host.ip(&[
        "route",
        "add",
        "10.0.0.0/24",
        "via",
        PRIVATE.peer4,
        "dev",
        PRIVATE.host_if,
    ]);
    t.host.ip(&[
        "route",
        "add",
        "10.0.0.0/24",
        "via",
        PUBLIC.peer4,
        "dev",
        PUBLIC.host_if,
        "table",
        "100",
    ]);
    t.host.ip(&[
        "rule",
        "add",
        "pref",
        "100",
        "to",
        "10.0.0.11",
        "lookup",
        "100",
    ]);
    t.host.ip(&[
        "-6",
        "route",
        "add",
        "2001:db8:9::/64",
        "via",
        PRIVATE.peer6,
        "dev",
        PRIVATE.host_if,
    ]);
    t.host.ip(&[
        "-6",
        "route",
        "add",
        "2001:db8:9::/64",
        "via",
        PUBLIC.peer6,
        "dev",
        PUBLIC.host_if,
        "table",
        "100",
    ]);
    t.host.ip(&[
        "-6",
        "rule",
        "add",
        "pref",
        "100",
        "to",
        "2001:db8:9::11",
        "lookup",
        "100",
    ]);
    t.host.nft_text(
        "table inet f { chain input { type filter hook input priority 0; policy accept; }; }",
    );
    let rpf = || Some(("rp_filter", "net.ipv4.conf.pw-pub.rp_filter=1".to_string()));
    let mut sport = 44000;
    let mut cases = |list: &[(&'static str, Option<(&'static str, String)>)]| {
        let mut v = Vec::new();
        for (from, dropped) in list {
            for proto in ["tcp", "udp"] {
                sport += 1;
                v.push(Case {
                    proto,
                    from,
                    to: PUBLIC.host4,
                    port: 6162,
                    sport,
                    dropped: dropped.clone(),
                });
            }
        }
        v
    };
    // Strict on pw-pub: the route back to 10.0.0.11 is table 100's.
    let mut bad = round(
        &t,
        "strict, table 100",
        &cases(&[
            ("10.0.0.10", rpf()),
            ("10.0.0.11", None),
            ("10.0.0.12", rpf()),
        ]),
    );
    // A prohibit rule before it: no route back.
    t.host
        .ip(&["rule", "add", "pref", "90", "to", "10.0.0.11", "prohibit"]);
    bad.extend(round(
        &t,
        "strict, prohibit back",
        &cases(&[("10.0.0.11", rpf())]),
    ));
    let a = explain(
        &t.host,
        &[Case {
            proto: "tcp",
            from: "10.0.0.11",
            to: PUBLIC.host4,
            port: 6162,
            sport: 1,
            dropped: None,
        }],
    );
    let reason = a[0]["reason"].as_str().unwrap_or("");
    if !reason.contains("the route back to 10.0.0.11 is refused by policy routing (rule 90: from all to 10.0.0.11 prohibit)") {
        bad.push(format!("the reason does not name the rule: {reason}"));
    }

    // rp_filter off: real connections; the replies follow the rules.
    sysctl(&t.host, "net.ipv4.conf.pw-pub.rp_filter=0");
    let _l = common::listeners(&t.host, &["tcp/6162"]);
    t.host.nft_text(OUT_RECORDER);
    let conns = [
        ("10.0.0.10", PUBLIC.host4),
        ("10.0.0.11", PUBLIC.host4),
        ("2001:db8:9::10", PUBLIC.host6),
        ("2001:db8:9::11", PUBLIC.host6),
    ];
    // The prohibit rule stays for IPv4's 10.0.0.11; IPv6's twin is added.
    t.host.ip(&[
        "-6",
        "rule",
        "add",
        "pref",
        "90",
        "to",
        "2001:db8:9::11",
        "prohibit",
    ]);
    let queries: Vec<Value> = conns
        .iter()
        .map(|(from, to)| {
            serde_json::json!({"proto": "tcp", "port": 6162, "from": from, "to": to,
                "iif": PUBLIC.host_if, "sport": 45000})
        })
        .collect();
    let answers = t.host.explain_batch(&queries);
    let done = connect(
        &t.peer,
        &conns
            .iter()
            .map(|(f, to)| (*f, *to, 6162))
            .collect::<Vec<_>>(),
    );
    for (((from, _), a), ok) in conns.iter().zip(&answers).zip(&done) {
        let notes = a["assumptions"].to_string();
        let refused = from.ends_with(".11") || from.ends_with("::11");
        if a["verdict"] != "accept" {
            bad.push(format!("{from}: the SYN is delivered, explain says {a}"));
        }
        if refused {
            let want = format!("the reply to {from} is refused by policy routing (rule 90: from all to {from} prohibit); the connection cannot complete");
            if *ok || !notes.contains(&want) {
                bad.push(format!(
                    "{from}: connected {ok}, explain's notes lack {want:?}: {notes}"
                ));
            }
        } else {
            let want = format!("the reply to {from} leaves through pw-priv, not pw-pub");
            if !*ok || !notes.contains(&want) {
                bad.push(format!(
                    "{from}: connected {ok}, explain's notes lack {want:?}: {notes}"
                ));
            }
        }
    }
    // The kernel sent the SYN-ACKs (to the unrefused sources) by pw-priv.
    let ifs = sent_by(&t.host, 6162);
    if ifs != ["pw-priv"] {
        bad.push(format!(
            "the host's SYN-ACKs left by {ifs:?}, not pw-priv alone"
        ));
    }
    assert!(bad.is_empty(), "disagreements:\n{}", bad.join("\n"));
}

/// An `arp` table that drops ARP requests for 10.99.0.1 on pw-priv: a real
/// connection from the peer to 10.99.0.1 fails (the peer cannot resolve
/// it) while pw-pub still works; explain's answer, the exposure map's notes
/// and the audit (an `arp-refused` finding naming the rule) say why. Then a
/// policy drop in the output chain: the host's replies, on both links.
#[test]
fn arp_tables_that_refuse_a_local_address() {
    if !require_root("arp_tables_that_refuse_a_local_address") {
        return;
    }
    let t = Topology::new("arp");
    t.host.nft_text(
        "table inet f { chain input { type filter hook input priority 0; policy accept; }; }",
    );
    let _l = common::listeners(&t.host, &["tcp/6162"]);
    let pairs = [(PRIVATE.peer4, PRIVATE.host4), (PUBLIC.peer4, PUBLIC.host4)];
    let conns: Vec<(&str, &str, u16)> = pairs.iter().map(|(f, to)| (*f, *to, 6162)).collect();
    let mut bad = Vec::new();
    if connect(&t.peer, &conns) != [true, true] {
        bad.push("without an arp table the connections fail".to_string());
    }
    t.host.nft_text(
        "table arp a { chain in { type filter hook input priority 0; policy accept;
           iifname \"pw-priv\" arp operation request arp daddr ip 10.99.0.1 drop; }; }",
    );
    let handle = t.host.nft_json()["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|o| o.get("rule").filter(|r| r["family"] == "arp")?["handle"].as_u64())
        .expect("the arp rule's handle");
    run(t.peer.cmd("ip").args(["neigh", "flush", "all"]));
    let done = connect(&t.peer, &conns);
    if done != [false, true] {
        bad.push(format!(
            "with the arp table: connected {done:?}, want [false, true]"
        ));
    }
    let by = format!("table arp a chain in rule handle {handle}");
    let want = format!(
        "arp: ARP requests for 10.99.0.1 arriving on pw-priv are refused by {by}: peers on that link cannot resolve 10.99.0.1, so no IPv4 connection to it arrives on pw-priv"
    );
    let queries: Vec<Value> = pairs
        .iter()
        .zip([PRIVATE.host_if, PUBLIC.host_if])
        .map(|((from, to), iif)| {
            serde_json::json!({"proto": "tcp", "port": 6162, "from": from, "to": to, "iif": iif})
        })
        .collect();
    let answers = t.host.explain_batch(&queries);
    let notes: Vec<String> = answers
        .iter()
        .map(|a| a["assumptions"].to_string())
        .collect();
    if !notes[0].contains(&want) || notes[1].contains("arp:") {
        bad.push(format!(
            "explain's notes: {notes:?}, want {want:?} on pw-priv only"
        ));
    }
    let x: Value = serde_json::from_slice(&t.host.portwarden(&["exposure", "--json"]).stdout)
        .expect("exposure --json");
    let xnotes = x["notes"].to_string();
    if !xnotes.contains(&want) || xnotes.contains("arriving on pw-pub") {
        bad.push(format!("exposure's notes: {xnotes}"));
    }
    let cfg = std::env::temp_dir().join(format!("pw-arp-{}.toml", std::process::id()));
    std::fs::write(&cfg, "roles = [\"veeam-data-mover\"]\n").unwrap();
    let (report, code) = t.host.audit_json(&cfg, &[]);
    let arp: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "arp-refused")
        .collect();
    if code != 2
        || arp.len() != 1
        || arp[0]["interfaces"] != serde_json::json!(["pw-priv"])
        || arp[0]["severity"] != "critical"
        || !arp[0]["evidence"]
            .to_string()
            .contains(&format!("\"handle\":{handle}"))
    {
        bad.push(format!("audit (exit {code}): arp-refused findings {arp:?}"));
    }

    // An output chain with policy drop: the host's replies on both links.
    run(t.host.cmd("nft").args(["delete", "table", "arp", "a"]));
    t.host.nft_text(
        "table arp o { chain out { type filter hook output priority 0; policy drop; }; }",
    );
    run(t.peer.cmd("ip").args(["neigh", "flush", "all"]));
    let done = connect(&t.peer, &conns);
    let answers = t.host.explain_batch(&queries);
    for ((a, ok), (_, to)) in answers.iter().zip(&done).zip(&pairs) {
        let want = format!("the host's ARP replies for {to} leaving by");
        if *ok || !a["assumptions"].to_string().contains(&want) {
            bad.push(format!("output policy drop: connected {ok}, explain {a}"));
        }
    }
    let _ = std::fs::remove_file(&cfg);
    assert!(bad.is_empty(), "disagreements:\n{}", bad.join("\n"));
}
