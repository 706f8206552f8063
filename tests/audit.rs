//! `portwarden audit` against the real kernel: fixture rulesets and real
//! listeners in the host namespace of the test topology, the audit run
//! there, and every claim checked with real packets from the peer namespace.
//!
//! For each reported missing (or partly open) piece, a SYN or datagram at
//! both edges and in the middle of each port range, from peer addresses
//! inside the piece's prefixes, must NOT reach a last-priority input chain
//! (a recorder table like `src/eval/testdata/kernel-diff.py` uses); for each
//! required port NOT reported missing, one from the requirement's peers MUST
//! reach it. Outbound findings are checked the other way round (host sends,
//! the peer records).

mod common;

use common::packets;
use common::{require_root, run, Netns, Topology, PRIVATE, PUBLIC};
use ipnet::IpNet;
use portwarden::audit::region::{requirement_peers, Peers};
use portwarden::catalog::{Catalog, Direction, Scope};
use portwarden::config::HostConfig;
use serde_json::Value;
use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

// ---- no root needed: exit code 3 ----

fn pw(args: &[&str]) -> std::process::Output {
    Command::new(common::portwarden_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run portwarden")
}

#[test]
fn cannot_audit_is_exit_3_with_one_line() {
    for args in [
        &["audit", "--config", "/nonexistent/portwarden.toml"][..],
        &[
            "audit",
            "--role",
            "veeam-data-mover",
            "--peer",
            "bakup_server=10.0.0.1",
        ][..],
        &["audit", "--role", "no-such-role"][..],
        &["audit", "--format", "xml"][..],
    ] {
        let out = pw(args);
        assert_eq!(out.status.code(), Some(3), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("portwarden: cannot audit: "), "{err}");
        assert!(out.stdout.is_empty());
    }
}

// ---- the kernel checks ----

/// One packet to send: a SYN or a datagram.
#[derive(Clone, Debug)]
struct Probe {
    proto: String,
    saddr: IpAddr,
    daddr: IpAddr,
    dport: u16,
    sport: u16,
    /// Whether it must reach the receiver's last input chain.
    expect: bool,
    why: String,
}

/// Sends `probes` from `sender` and says which reached `receiver`'s last
/// input chain (the recorder table is added to `receiver` first).
fn record(receiver: &Netns, sender: &Netns, probes: &[Probe]) -> HashSet<(IpAddr, u16)> {
    packets::add_recorder(receiver);
    let batch: Vec<packets::Packet> = probes
        .iter()
        .map(|p| packets::Packet {
            proto: p.proto.clone(),
            from: p.saddr,
            to: p.daddr,
            sport: p.sport,
            port: p.dport,
        })
        .collect();
    packets::send(sender, &batch, 0.002);
    let seen = packets::seen(receiver)
        .into_iter()
        .map(|s| (s.saddr.parse().expect("recorded address"), s.sport))
        .collect();
    packets::remove_recorder(receiver);
    seen
}

/// Checks every probe; panics listing all that disagree.
fn check(receiver: &Netns, sender: &Netns, probes: &[Probe]) {
    let seen = record(receiver, sender, probes);
    let bad: Vec<String> = probes
        .iter()
        .filter(|p| seen.contains(&(p.saddr, p.sport)) != p.expect)
        .map(|p| {
            format!(
                "{} {} -> {}:{} should {}reach the host: {}",
                p.proto,
                p.saddr,
                p.daddr,
                p.dport,
                if p.expect { "" } else { "NOT " },
                p.why
            )
        })
        .collect();
    assert!(
        bad.is_empty(),
        "{} of {} probes disagree:\n{}",
        bad.len(),
        probes.len(),
        bad.join("\n")
    );
}

/// Extra peer addresses: a second one per link, beside .2 / ::2.
fn add_peer_addresses(t: &Topology) {
    for (a, dev) in [
        ("192.0.2.66/24", PUBLIC.peer_if),
        ("10.99.0.66/24", PRIVATE.peer_if),
    ] {
        t.peer.ip(&["addr", "add", a, "dev", dev]);
    }
    for (a, dev) in [
        ("2001:db8:1::66/64", PUBLIC.peer_if),
        ("fd00:99::66/64", PRIVATE.peer_if),
    ] {
        t.peer.ip(&["addr", "add", a, "dev", dev, "nodad"]);
    }
    // Packets from the "other" link's addresses must reach the ruleset.
    for k in ["all", "default", "pw-pub", "pw-priv"] {
        run(t
            .host
            .cmd("sysctl")
            .args(["-qw", &format!("net.ipv4.conf.{k}.rp_filter=0")]));
    }
}

/// Every source address the peer namespace can send from, same link first.
fn peer_sources(to: IpAddr) -> Vec<IpAddr> {
    let link_first: [&str; 4] = match to.to_string().as_str() {
        "192.0.2.1" | "2001:db8:1::1" => {
            ["192.0.2.2", "192.0.2.66", "2001:db8:1::2", "2001:db8:1::66"]
        }
        _ => ["10.99.0.2", "10.99.0.66", "fd00:99::2", "fd00:99::66"],
    };
    let all = [
        "192.0.2.2",
        "192.0.2.66",
        "2001:db8:1::2",
        "2001:db8:1::66",
        "10.99.0.2",
        "10.99.0.66",
        "fd00:99::2",
        "fd00:99::66",
        "10.0.0.10",
    ];
    let mut v: Vec<IpAddr> = link_first
        .iter()
        .chain(all.iter())
        .map(|s| s.parse().unwrap())
        .filter(|a: &IpAddr| a.is_ipv4() == to.is_ipv4())
        .collect();
    v.dedup();
    let mut seen = HashSet::new();
    v.retain(|a| seen.insert(*a));
    v
}

/// The host's local addresses per interface (the topology's, link-local excepted).
fn local(iface: &str) -> [IpAddr; 2] {
    let l = if iface == PUBLIC.host_if {
        PUBLIC
    } else {
        PRIVATE
    };
    [l.host4.parse().unwrap(), l.host6.parse().unwrap()]
}

fn edges(first: u16, last: u16) -> Vec<u16> {
    let mut v = vec![first, first + (last - first) / 2, last];
    v.dedup();
    v
}

fn ranges(v: &Value) -> Vec<(u16, u16)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_u64().unwrap() as u16, r[1].as_u64().unwrap() as u16))
        .collect()
}

fn nets(v: &Value) -> Vec<IpNet> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().parse().unwrap())
        .collect()
}

/// Writes a configuration file for one test.
fn config_file(tag: &str, text: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("pw-audit-{}-{tag}.toml", std::process::id()));
    std::fs::write(&p, text).unwrap();
    p
}

/// Runs `portwarden audit --format json --all-peers --config F` in the host
/// namespace (every peer prefix: the probes are built from the pieces).
fn audit(t: &Topology, cfg: &Path) -> (Value, i32) {
    t.host.audit_json(cfg, &["--all-peers"])
}

fn findings<'a>(report: &'a Value, kind: &str) -> Vec<&'a Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == kind)
        .collect()
}

/// A reported piece: interface, local address, port ranges, peers, protocol.
type Reported = (String, IpAddr, Vec<(u16, u16)>, Vec<IpNet>, String);

/// Probes for the inbound claims of `report`: every missing piece is
/// refused, every required port not reported missing is accepted (from
/// a source the host routes through that interface).
fn inbound_probes(host: &Netns, report: &Value, cfg_text: &str) -> Vec<Probe> {
    let cat = Catalog::builtin().unwrap();
    let (cfg, _) = HostConfig::parse(Path::new("t.toml"), cfg_text, &cat).unwrap();
    let reqs = cat.resolve(&cfg.roles, &cfg.settings).unwrap();
    let mut sport = 20000u16;
    let mut next = || {
        sport += 1;
        sport
    };
    let mut probes = Vec::new();
    // (iface, to, ports, peers) reported missing
    let mut missing: Vec<Reported> = Vec::new();
    for kind in ["missing-opening", "partial-opening"] {
        for f in findings(report, kind) {
            let proto = f["proto"].as_str().unwrap().to_string();
            for p in f["pieces"].as_array().unwrap() {
                let pr = ranges(&p["ports"]);
                let pn = nets(&p["peers"]);
                // Every interface and local address of the piece is checked,
                // not one for all.
                let ifaces = p["interfaces"].as_array().unwrap();
                let tos = p["to"].as_array().unwrap();
                for (iface, to) in ifaces.iter().flat_map(|i| tos.iter().map(move |t| (i, t))) {
                    let iface = iface.as_str().unwrap().to_string();
                    let to: IpAddr = to.as_str().unwrap().parse().unwrap();
                    let sources: Vec<IpAddr> = peer_sources(to)
                        .into_iter()
                        .filter(|a| pn.iter().any(|n| n.contains(a)))
                        .take(2)
                        .collect();
                    for &s in &sources {
                        for &(a, b) in &pr {
                            for port in edges(a, b) {
                                probes.push(Probe {
                                    proto: proto.clone(),
                                    saddr: s,
                                    daddr: to,
                                    dport: port,
                                    sport: next(),
                                    expect: false,
                                    why: format!("{kind} {} on {iface}", f["id"]),
                                });
                            }
                        }
                    }
                    missing.push((iface.clone(), to, pr.clone(), pn.clone(), proto.clone()));
                }
            }
        }
    }
    let undecided: Vec<&str> = report["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str())
        .filter(|n| n.contains("may or may not"))
        .collect();
    for r in reqs.iter().filter(|r| r.direction == Direction::In) {
        let name = format!("{}/{}", r.role, r.requirement);
        if undecided.iter().any(|n| n.starts_with(&name)) {
            continue;
        }
        let peers: Peers = requirement_peers(r, &cfg);
        let ifaces: Vec<&str> = match r.scope {
            Scope::Private if !cfg.private_interfaces.is_empty() => {
                cfg.private_interfaces.iter().map(String::as_str).collect()
            }
            _ => vec![PUBLIC.host_if, PRIVATE.host_if],
        };
        let proto = r.proto.to_string();
        for iface in ifaces {
            for to in local(iface) {
                let fam = if to.is_ipv4() { &peers.v4 } else { &peers.v6 };
                // Only sources the host routes through this interface
                // concern it.
                let Some(src) = peer_sources(to)
                    .into_iter()
                    .find(|a| fam.contains(*a) && route_dev(host, *a).as_deref() == Some(iface))
                else {
                    continue;
                };
                for range in r.ports.ranges() {
                    for port in edges(range.first(), range.last()) {
                        let reported = missing.iter().any(|(i, t, pr, pn, p)| {
                            i == iface
                                && *t == to
                                && *p == proto
                                && pr.iter().any(|&(a, b)| a <= port && port <= b)
                                && pn.iter().any(|n| n.contains(&src))
                        });
                        if !reported {
                            probes.push(Probe {
                                proto: proto.clone(),
                                saddr: src,
                                daddr: to,
                                dport: port,
                                sport: next(),
                                expect: true,
                                why: format!("{name} is not reported missing on {iface}"),
                            });
                        }
                    }
                }
            }
        }
    }
    probes
}

/// The interface `host` routes `addr` through (`ip route get`), if any.
fn route_dev(host: &Netns, addr: IpAddr) -> Option<String> {
    let out = host
        .cmd("ip")
        .args(["-j", "route", "get", &addr.to_string()])
        .output()
        .ok()?;
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    v[0]["dev"].as_str().map(String::from)
}

fn assert_valid_finding(f: &Value) {
    let id = f["id"].as_str().unwrap();
    assert!(
        id.len() == 12 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "{f}"
    );
    assert!(f["fix"].is_null() || f["fix"]["nft"].is_string(), "{f}");
}

// ---- scenarios ----

const BASIC_CFG: &str = r#"roles = ["veeam-data-mover", "evault-agent"]
private_interfaces = ["pw-priv"]
[peers]
backup_server = ["192.0.2.2", "10.99.0.2"]
evault_management = ["10.99.0.0/24"]
"#;

#[test]
fn textbook_ruleset_missing_pieces_are_refused_and_the_rest_accepted() {
    if !require_root("textbook_ruleset_missing_pieces_are_refused_and_the_rest_accepted") {
        return;
    }
    let t = Topology::new("aud-basic");
    add_peer_addresses(&t);
    t.load_fixture("backup-host-basic.nft");
    let _l = common::listeners(&t.host, &["tcp/22", "tcp/6160", "tcp/6162", "tcp/2548"]);
    let cfg = config_file("basic", BASIC_CFG);
    let (report, code) = audit(&t, &cfg);
    assert_eq!(code, 2, "{report:#}");
    for f in report["findings"].as_array().unwrap() {
        assert_valid_finding(f);
    }
    // 6160 and 6162 from 192.0.2.2/10.99.0.2 on pw-pub: rejected by the tcp reset rule.
    let missing = findings(&report, "missing-opening");
    let ports: Vec<&Value> = missing.iter().map(|f| &f["ports"]).collect();
    assert!(
        ports.contains(&&serde_json::json!([[6160, 6160]])),
        "{report:#}"
    );
    assert!(
        ports.contains(&&serde_json::json!([[6162, 6162]])),
        "{report:#}"
    );
    assert!(missing
        .iter()
        .all(|f| f["interfaces"] == serde_json::json!(["pw-pub"])));
    assert!(findings(&report, "not-listening").is_empty(), "{report:#}");
    let probes = inbound_probes(&t.host, &report, BASIC_CFG);
    assert!(probes.iter().any(|p| !p.expect) && probes.iter().any(|p| p.expect));
    check(&t.host, &t.peer, &probes);
    let _ = std::fs::remove_file(cfg);
}

const RANGE_RULESET: &str = r#"flush ruleset
table inet filter {
  chain input {
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    iif "lo" accept
    meta l4proto ipv6-icmp accept
    tcp dport 2500-2599 accept
    tcp dport 3000-3100 reject with tcp reset
    ip saddr 10.99.0.66 tcp dport 6162 drop
    tcp dport { 22, 6160, 6162 } accept
  }
}
"#;

const RANGE_CFG: &str = r#"roles = ["veeam-data-mover"]
[settings]
veeam_data_range = "legacy"
"#;

#[test]
fn partly_open_range_with_two_blockers_matches_the_kernel() {
    if !require_root("partly_open_range_with_two_blockers_matches_the_kernel") {
        return;
    }
    let t = Topology::new("aud-range");
    add_peer_addresses(&t);
    t.host.nft_text(RANGE_RULESET);
    let _l = common::listeners(&t.host, &["tcp/22", "tcp/6160", "tcp/6162"]);
    let cfg = config_file("range", RANGE_CFG);
    let (report, _) = audit(&t, &cfg);
    // backup_server unbound: any source. 2500-5000 (legacy) minus 2500-2599,
    // split by blocker: the reject rule (3000-3100) and the policy.
    let partial = findings(&report, "partial-opening");
    assert_eq!(partial.len(), 2, "{report:#}");
    let mut got: Vec<Value> = partial.iter().map(|f| f["ports"].clone()).collect();
    got.sort_by_key(|v| v.to_string());
    assert_eq!(
        got,
        [
            serde_json::json!([[2600, 2999], [3101, 5000]]),
            serde_json::json!([[3000, 3100]])
        ]
    );
    // 6162 from 10.99.0.66 only: dropped by the saddr rule. The peers are
    // any address, so that is a deny list: a note, not a missing opening.
    let transport: Vec<&Value> = findings(&report, "missing-opening")
        .into_iter()
        .filter(|f| f["requirement"] == "transport")
        .collect();
    assert!(transport.is_empty(), "{report:#}");
    let deny: Vec<&Value> = report["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n.as_str().unwrap().contains("deny list"))
        .collect();
    assert_eq!(deny.len(), 1, "{report:#}");
    assert!(
        deny[0].as_str().unwrap().contains(
            "veeam-data-mover/transport: accepted from any address except 1 prefix in the addresses the rule names"
        ),
        "{report:#}"
    );
    let mut probes = inbound_probes(&t.host, &report, RANGE_CFG);
    probes.extend(role_probes(
        "10.99.0.66",
        PRIVATE.host4,
        false,
        "the deny rule",
        &[(6162, 6162)],
    ));
    check(&t.host, &t.peer, &probes);
    let _ = std::fs::remove_file(cfg);
}

const OPEN_RULESET: &str = "flush ruleset\ntable inet filter {\n  chain input {\n    type filter hook input priority filter; policy accept;\n  }\n}\n";

const OPEN_CFG: &str = r#"roles = ["veeam-data-mover"]
[peers]
backup_server = ["10.99.0.2"]
"#;

#[test]
fn default_accept_host_is_one_excess_finding_per_protocol() {
    if !require_root("default_accept_host_is_one_excess_finding_per_protocol") {
        return;
    }
    let t = Topology::new("aud-open");
    add_peer_addresses(&t);
    t.host.nft_text(OPEN_RULESET);
    let _l = common::listeners(&t.host, &["tcp/22", "tcp/6160", "tcp/6162", "tcp/8080"]);
    let cfg = config_file("open", OPEN_CFG);
    let (report, code) = audit(&t, &cfg);
    assert_eq!(code, 2, "{report:#}");
    let excess = findings(&report, "excess-opening");
    assert_eq!(excess.len(), 2, "{report:#}");
    for f in &excess {
        assert_eq!(f["ports"], serde_json::json!([[0, 65535]]), "{f}");
        assert_eq!(f["role"], Value::Null);
        assert_eq!(f["evidence"][0]["type"], "policy");
    }
    assert!(
        findings(&report, "missing-opening").is_empty(),
        "{report:#}"
    );
    // The python listener on 8080 is exposed, with its process.
    let exposed = findings(&report, "exposed-listener");
    let e8080 = exposed
        .iter()
        .find(|f| f["ports"] == serde_json::json!([[8080, 8080]]))
        .unwrap_or_else(|| panic!("{report:#}"));
    let process = e8080["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "listener")
        .unwrap()["process"]
        .clone();
    assert!(
        process["command"].as_str().unwrap().contains("python"),
        "{process}"
    );
    assert!(process["pid"].as_u64().unwrap() > 0);
    // The kernel accepts the excess ports too (edges of the whole space) and everything required.
    let mut probes = inbound_probes(&t.host, &report, OPEN_CFG);
    let mut sport = 40000;
    for (src, dst) in [("192.0.2.2", "192.0.2.1"), ("fd00:99::2", "fd00:99::1")] {
        for port in [1u16, 8080, 65535] {
            for proto in ["tcp", "udp"] {
                sport += 1;
                probes.push(Probe {
                    proto: proto.into(),
                    saddr: src.parse().unwrap(),
                    daddr: dst.parse().unwrap(),
                    dport: port,
                    sport,
                    expect: true,
                    why: "reported excess".into(),
                });
            }
        }
    }
    check(&t.host, &t.peer, &probes);
    let _ = std::fs::remove_file(cfg);
}

const FIREWALLD_CFG: &str = r#"roles = ["veeam-data-mover"]
[peers]
backup_server = ["10.0.0.10"]
"#;

#[test]
fn firewalld_host_gets_firewall_cmd_fixes_and_matches_the_kernel() {
    if !require_root("firewalld_host_gets_firewall_cmd_fixes_and_matches_the_kernel") {
        return;
    }
    let t = Topology::new("aud-fwd");
    add_peer_addresses(&t);
    // The backup server 10.0.0.10 sits behind the private link.
    t.peer
        .ip(&["addr", "add", "10.0.0.10/32", "dev", PRIVATE.peer_if]);
    t.host.ip(&[
        "route",
        "add",
        "10.0.0.10/32",
        "via",
        "10.99.0.2",
        "dev",
        PRIVATE.host_if,
    ]);
    t.load_fixture("firewalld-zones.nft");
    let _l = common::listeners(&t.host, &["tcp/22", "tcp/6160", "tcp/6162"]);
    let cfg = config_file("fwd", FIREWALLD_CFG);
    let (report, _) = audit(&t, &cfg);
    let with_fix: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["fix"]["firewalld"].is_string())
        .collect();
    assert!(!with_fix.is_empty(), "{report:#}");
    assert!(with_fix.iter().all(|f| f["fix"]["firewalld"]
        .as_str()
        .unwrap()
        .contains("firewall-cmd --permanent")));
    let probes = inbound_probes(&t.host, &report, FIREWALLD_CFG);
    // The backup server is probed where it is routed (pw-priv).
    let bs: IpAddr = "10.0.0.10".parse().unwrap();
    assert!(
        probes
            .iter()
            .any(|p| p.saddr == bs && p.daddr == PRIVATE.host4.parse::<IpAddr>().unwrap()),
        "{probes:#?}"
    );
    check(&t.host, &t.peer, &probes);
    let _ = std::fs::remove_file(cfg);
}

const UFW_CFG: &str = r#"roles = ["veeam-data-mover"]
[settings]
veeam_data_range = "legacy"
[peers]
backup_server = ["192.0.2.2"]
"#;

#[test]
fn ufw_host_gets_ufw_fixes_and_matches_the_kernel() {
    if !require_root("ufw_host_gets_ufw_fixes_and_matches_the_kernel") {
        return;
    }
    let t = Topology::new("aud-ufw");
    add_peer_addresses(&t);
    t.load_fixture("gen/ufw-host.sh");
    let _l = common::listeners(&t.host, &["tcp/22", "tcp/6160", "tcp/6162"]);
    let cfg = config_file("ufw", UFW_CFG);
    let (report, _) = audit(&t, &cfg);
    // 3301-5000 from 192.0.2.2 is refused (only 10.0.0.10 may use 2500:5000).
    let partial = findings(&report, "partial-opening");
    assert!(!partial.is_empty(), "{report:#}");
    assert!(report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["fix"]["ufw"]
            .as_str()
            .is_some_and(|u| u.starts_with("ufw "))));
    // Port 22 is `ufw limit`ed (6 hits in 30 s): keep the accept probes few.
    let probes = inbound_probes(&t.host, &report, UFW_CFG);
    assert!(probes.iter().filter(|p| p.dport == 22).count() <= 4);
    check(&t.host, &t.peer, &probes);
    let _ = std::fs::remove_file(cfg);
}

const OUTBOUND_RULESET: &str = r#"flush ruleset
table inet filter {
  chain output {
    type filter hook output priority filter; policy drop;
    ct state established,related accept
    oifname "lo" accept
    meta l4proto ipv6-icmp accept
    tcp dport 443 accept
  }
}
"#;

const OUTBOUND_CFG: &str = r#"roles = ["evault-agent"]
[peers]
evault_vault = ["192.0.2.2"]
evault_registration = ["10.99.0.2"]
evault_portal = ["192.0.2.2"]
"#;

#[test]
fn outbound_blocked_is_what_the_kernel_blocks() {
    if !require_root("outbound_blocked_is_what_the_kernel_blocks") {
        return;
    }
    let t = Topology::new("aud-out");
    t.host.nft_text(OUTBOUND_RULESET);
    let _l = common::listeners(&t.host, &["tcp/2548"]);
    let cfg = config_file("out", OUTBOUND_CFG);
    let (report, code) = audit(&t, &cfg);
    assert_eq!(code, 2, "{report:#}");
    let blocked = findings(&report, "outbound-blocked");
    let mut got: Vec<(String, Value)> = blocked
        .iter()
        .map(|f| {
            (
                f["requirement"].as_str().unwrap().to_string(),
                f["ports"].clone(),
            )
        })
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        [
            (
                "registration".to_string(),
                serde_json::json!([[8086, 8087]])
            ),
            ("vault".to_string(), serde_json::json!([[2546, 2546]]))
        ],
        "{report:#}"
    );
    // Host -> peer: blocked ports never reach the peer; 443 does.
    let mut probes = Vec::new();
    let mut sport = 30000;
    for f in &blocked {
        for peer in nets(&f["peers"]) {
            let daddr = peer.addr();
            let saddr: IpAddr = if daddr.to_string().starts_with("10.99.") {
                PRIVATE.host4.parse().unwrap()
            } else {
                PUBLIC.host4.parse().unwrap()
            };
            for (a, b) in ranges(&f["ports"]) {
                for port in edges(a, b) {
                    sport += 1;
                    probes.push(Probe {
                        proto: "tcp".into(),
                        saddr,
                        daddr,
                        dport: port,
                        sport,
                        expect: false,
                        why: format!("outbound-blocked {}", f["id"]),
                    });
                }
            }
        }
    }
    probes.push(Probe {
        proto: "tcp".into(),
        saddr: PUBLIC.host4.parse().unwrap(),
        daddr: "192.0.2.2".parse().unwrap(),
        dport: 443,
        sport: 31000,
        expect: true,
        why: "portal-web 443 is not reported blocked".into(),
    });
    check(&t.peer, &t.host, &probes);
    let _ = std::fs::remove_file(cfg);
}

/// Partly blocked outbound requirements: per port and per peer.
const PARTIAL_OUT_RULESET: &str = r#"flush ruleset
table inet filter {
  chain out_priv {
    ip daddr 10.99.0.2 tcp dport 8086 drop
    return
  }
  chain output {
    type filter hook output priority filter; policy accept;
    oifname "pw-priv" jump out_priv
    tcp dport 8087 reject with tcp reset
    ip6 daddr fd00:99::/64 tcp dport 2546 reject
  }
}
"#;

const PARTIAL_OUT_CFG: &str = r#"roles = ["evault-agent"]
[peers]
evault_vault = ["192.0.2.2", "fd00:99::2"]
evault_registration = ["10.99.0.2", "192.0.2.2"]
evault_portal = ["192.0.2.2"]
evault_federal = []
"#;

/// The host address on the peer's link.
fn host_side(peer: IpAddr) -> IpAddr {
    let l = if [PRIVATE.peer4, PRIVATE.peer6].contains(&peer.to_string().as_str()) {
        PRIVATE
    } else {
        PUBLIC
    };
    let a = if peer.is_ipv6() { l.host6 } else { l.host4 };
    a.parse().unwrap()
}

#[test]
fn partly_blocked_outbound_is_exact_and_the_rest_gets_through() {
    if !require_root("partly_blocked_outbound_is_exact_and_the_rest_gets_through") {
        return;
    }
    let t = Topology::new("aud-out2");
    t.host.nft_text(PARTIAL_OUT_RULESET);
    let cfg = config_file("out2", PARTIAL_OUT_CFG);
    let (report, _) = audit(&t, &cfg);
    let blocked = findings(&report, "outbound-blocked");
    let mut got: Vec<(String, Value, Value)> = blocked
        .iter()
        .map(|f| {
            (
                f["requirement"].as_str().unwrap().to_string(),
                f["ports"].clone(),
                f["peers"].clone(),
            )
        })
        .collect();
    got.sort_by_key(|g| g.0.clone() + &g.1.to_string());
    assert_eq!(
        got,
        [
            (
                "registration".to_string(),
                serde_json::json!([[8086, 8086]]),
                serde_json::json!(["10.99.0.2/32"])
            ),
            (
                "registration".to_string(),
                serde_json::json!([[8087, 8087]]),
                serde_json::json!(["10.99.0.2/32", "192.0.2.2/32"])
            ),
            (
                "vault".to_string(),
                serde_json::json!([[2546, 2546]]),
                serde_json::json!(["fd00:99::2/128"])
            ),
        ],
        "{report:#}"
    );
    assert!(
        report["notes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| !n.as_str().unwrap().contains("outbound")),
        "{report:#}"
    );
    // Every required (peer, port): blocked exactly where a finding says so.
    let required: &[(&str, u16, u16, &[&str])] = &[
        ("vault", 2546, 2546, &["192.0.2.2", "fd00:99::2"]),
        ("registration", 8086, 8087, &["10.99.0.2", "192.0.2.2"]),
        ("portal-web", 443, 443, &["192.0.2.2"]),
    ];
    let reported = |req: &str, peer: IpAddr, port: u16| {
        blocked.iter().any(|f| {
            f["requirement"] == req
                && nets(&f["peers"]).iter().any(|n| n.contains(&peer))
                && ranges(&f["ports"])
                    .iter()
                    .any(|(a, b)| (*a..=*b).contains(&port))
        })
    };
    let mut probes = Vec::new();
    let mut sport = 30000;
    for (req, first, last, peers) in required {
        for peer in peers.iter().map(|p| p.parse::<IpAddr>().unwrap()) {
            for port in edges(*first, *last) {
                sport += 1;
                let blocked = reported(req, peer, port);
                probes.push(Probe {
                    proto: "tcp".into(),
                    saddr: host_side(peer),
                    daddr: peer,
                    dport: port,
                    sport,
                    expect: !blocked,
                    why: format!(
                        "{req} {port} to {peer} is {}reported blocked",
                        if blocked { "" } else { "not " }
                    ),
                });
            }
        }
    }
    assert!(probes.iter().any(|p| p.expect) && probes.iter().any(|p| !p.expect));
    check(&t.peer, &t.host, &probes);
    let _ = std::fs::remove_file(cfg);
}

// ---- two interfaces with routes: peers are checked where they arrive ----

/// The topology with a routed host: default routes (both families) through
/// the public peer, 10.0.0.0/24 through the private peer, which holds the
/// backup server 10.0.0.10. The kernel's own reverse-path filter is off
/// (`rp` sets it per interface afterwards).
fn routed_topology(tag: &str) -> Topology {
    let t = Topology::new(tag);
    t.host.ip(&[
        "route",
        "add",
        "default",
        "via",
        PUBLIC.peer4,
        "dev",
        PUBLIC.host_if,
    ]);
    t.host.ip(&[
        "-6",
        "route",
        "add",
        "default",
        "via",
        PUBLIC.peer6,
        "dev",
        PUBLIC.host_if,
    ]);
    t.host.ip(&[
        "route",
        "add",
        "10.0.0.0/24",
        "via",
        PRIVATE.peer4,
        "dev",
        PRIVATE.host_if,
    ]);
    t.peer
        .ip(&["addr", "add", "10.0.0.10/32", "dev", PRIVATE.peer_if]);
    for k in ["all", "default", "pw-pub", "pw-priv"] {
        rp(&t, k, 0);
    }
    // The peer knows the host's link addresses for good: an ARP request
    // sent for a SYN from 10.0.0.10 would carry that source, which a
    // strict reverse-path filter on pw-pub ignores too.
    t.static_neighbours();
    t
}

/// Sets `net.ipv4.conf.IF.rp_filter` in the host namespace.
fn rp(t: &Topology, iface: &str, v: u8) {
    run(t
        .host
        .cmd("sysctl")
        .args(["-qw", &format!("net.ipv4.conf.{iface}.rp_filter={v}")]));
}

/// firewalld's IPv6 reverse-path filter, and an input chain that accepts
/// the roles' ports from the backup server's network on pw-priv only.
const ROUTED_RULESET: &str = r#"flush ruleset
table inet rpf {
  chain prerouting {
    type filter hook prerouting priority filter + 10; policy accept;
    meta nfproto ipv6 meta l4proto ipv6-icmp icmpv6 type { nd-router-advert, nd-neighbor-solicit } accept
    meta nfproto ipv6 fib saddr . mark . iif oif missing drop
  }
}
table inet filter {
  chain input {
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    ct state invalid drop
    iif "lo" accept
    meta l4proto { icmp, ipv6-icmp } accept
    iifname "pw-priv" ip saddr 10.0.0.10 tcp dport { 22, 6160, 6162, 2500-3300 } accept
    iifname "pw-priv" ip saddr 10.0.0.0/24 tcp dport 2548 accept
  }
}
"#;

const ROUTED_CFG: &str = r#"roles = ["veeam-data-mover", "evault-agent"]
private_interfaces = ["pw-priv"]
[peers]
backup_server = ["10.0.0.10"]
evault_management = ["10.0.0.0/24"]
evault_vault = []
evault_registration = []
evault_portal = []
evault_federal = []
"#;

/// The same roles with every peer group unbound (any address), and a
/// ruleset that accepts them from anywhere (2548 on pw-priv only), behind
/// the same IPv6 reverse-path filter.
const ANY_RULESET: &str = r#"flush ruleset
table inet rpf {
  chain prerouting {
    type filter hook prerouting priority filter + 10; policy accept;
    meta nfproto ipv6 meta l4proto ipv6-icmp icmpv6 type { nd-router-advert, nd-neighbor-solicit } accept
    meta nfproto ipv6 fib saddr . mark . iif oif missing drop
  }
}
table inet filter {
  chain input {
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    iif "lo" accept
    meta l4proto { icmp, ipv6-icmp } accept
    tcp dport { 22, 6160, 6162, 2500-3300 } accept
    iifname "pw-priv" tcp dport 2548 accept
  }
}
"#;

const ANY_CFG: &str = r#"roles = ["veeam-data-mover", "evault-agent"]
private_interfaces = ["pw-priv"]
"#;

/// A source port not used before in this test process (the recorder
/// tells probes apart by source address and port).
fn next_sport() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(45000);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// SYNs from `from` to `to` at the edges of the roles' inbound ports.
fn role_probes(from: &str, to: &str, expect: bool, why: &str, ports: &[(u16, u16)]) -> Vec<Probe> {
    let mut v = Vec::new();
    for &(a, b) in ports {
        for port in edges(a, b) {
            v.push(Probe {
                proto: "tcp".into(),
                saddr: from.parse().unwrap(),
                daddr: to.parse().unwrap(),
                dport: port,
                sport: next_sport(),
                expect,
                why: format!("{why}: {from} -> {to}:{port}"),
            });
        }
    }
    v
}

const ROLE_PORTS: &[(u16, u16)] = &[(22, 22), (6160, 6160), (6162, 6162), (2500, 3300)];

#[test]
fn routed_two_interface_host_with_a_correct_ruleset_exits_0() {
    if !require_root("routed_two_interface_host_with_a_correct_ruleset_exits_0") {
        return;
    }
    let t = routed_topology("aud-routed");
    let _l = common::listeners(&t.host, &["tcp/22", "tcp/6160", "tcp/6162", "tcp/2548"]);

    // The backup server behind pw-priv, opened there only.
    t.host.nft_text(ROUTED_RULESET);
    let cfg = config_file("routed", ROUTED_CFG);
    let (report, code) = audit(&t, &cfg);
    assert_eq!(code, 0, "{report:#}");
    assert!(
        report["findings"].as_array().unwrap().is_empty(),
        "{report:#}"
    );
    // The kernel agrees: the backup server reaches every required port
    // through pw-priv, and (not a requirement there) not through pw-pub.
    let mut probes = role_probes(
        "10.0.0.10",
        PRIVATE.host4,
        true,
        "routed via pw-priv",
        ROLE_PORTS,
    );
    probes.extend(role_probes(
        "10.0.0.10",
        PRIVATE.host4,
        true,
        "evault management",
        &[(2548, 2548)],
    ));
    probes.extend(role_probes(
        "10.0.0.10",
        PUBLIC.host4,
        false,
        "not opened on pw-pub",
        &[(6162, 6162)],
    ));
    check(&t.host, &t.peer, &probes);
    let _ = std::fs::remove_file(cfg);

    // Any address: each source is checked where it is routed; the IPv6
    // reverse-path filter refuses only what arrives elsewhere, which is
    // no missing opening.
    t.host.nft_text(ANY_RULESET);
    let cfg = config_file("routed-any", ANY_CFG);
    let (report, code) = audit(&t, &cfg);
    assert_eq!(code, 0, "{report:#}");
    assert!(
        !report["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("reverse-path")),
        "{report:#}"
    );
    let mut probes = Vec::new();
    for l in [PUBLIC, PRIVATE] {
        probes.extend(role_probes(
            l.peer4,
            l.host4,
            true,
            "any, own link",
            ROLE_PORTS,
        ));
        probes.extend(role_probes(
            l.peer6,
            l.host6,
            true,
            "any, own link",
            ROLE_PORTS,
        ));
    }
    probes.extend(role_probes(
        PRIVATE.peer4,
        PRIVATE.host4,
        true,
        "management",
        &[(2548, 2548)],
    ));
    probes.extend(role_probes(
        PRIVATE.peer6,
        PRIVATE.host6,
        true,
        "management",
        &[(2548, 2548)],
    ));
    check(&t.host, &t.peer, &probes);
    let _ = std::fs::remove_file(cfg);
}

/// Counters before and after the routing decision for SYNs from the
/// backup server to pw-pub's address on 6162.
const RP_COUNTERS: &str = r#"table inet pw_rp {
  counter pre {}
  counter input {}
  chain pre {
    type filter hook prerouting priority -300; policy accept;
    ip saddr 10.0.0.10 tcp dport 6162 counter name "pre"
  }
  chain input {
    type filter hook input priority -300; policy accept;
    ip saddr 10.0.0.10 tcp dport 6162 counter name "input"
  }
}
"#;

/// Packets counted by `RP_COUNTERS`' counter `name`.
fn rp_count(t: &Topology, name: &str) -> u64 {
    let o = run(t
        .host
        .cmd("nft")
        .args(["-j", "list", "counter", "inet", "pw_rp", name]));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|o| o["counter"]["packets"].as_u64())
        .unwrap()
}

/// One SYN from the backup server to pw-pub's address, port 6162.
fn syn_to_public(t: &Topology, sport: u16) {
    packets::send(
        &t.peer,
        &[packets::Packet {
            proto: "tcp".into(),
            from: "10.0.0.10".parse().unwrap(),
            to: PUBLIC.host4.parse().unwrap(),
            sport,
            port: 6162,
        }],
        0.0,
    );
}

const PINNED_CFG: &str = r#"roles = ["veeam-data-mover"]
[peers]
backup_server = ["10.0.0.10"]
[peer_interfaces]
backup_server = ["pw-pub"]
"#;

const PINNED_RULESET: &str = r#"flush ruleset
table inet filter {
  chain input {
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    iif "lo" accept
    iifname "pw-priv" ip saddr 10.0.0.10 tcp dport { 22, 6160, 6162, 2500-3300 } accept
  }
}
"#;

fn rp_notes(report: &Value) -> Vec<String> {
    report["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str())
        .filter(|n| n.contains("reverse-path"))
        .map(String::from)
        .collect()
}

#[test]
fn sources_the_reverse_path_filter_refuses_are_a_note_not_a_missing_opening() {
    if !require_root("sources_the_reverse_path_filter_refuses_are_a_note_not_a_missing_opening") {
        return;
    }
    let t = routed_topology("aud-rpf");
    let _l = common::listeners(&t.host, &["tcp/22", "tcp/6160", "tcp/6162"]);
    let cfg = config_file("pinned", PINNED_CFG);

    // The backup server pinned to pw-pub, but routed back through pw-priv:
    // strict rp_filter on pw-pub refuses it before any chain.
    t.host.nft_text(PINNED_RULESET);
    t.host.nft_text(RP_COUNTERS);
    rp(&t, "pw-pub", 1);
    let (report, code) = audit(&t, &cfg);
    assert!(
        findings(&report, "missing-opening").is_empty(),
        "{report:#}"
    );
    assert_eq!(code, 0, "{report:#}");
    let notes = rp_notes(&report);
    assert_eq!(notes.len(), 1, "{report:#}");
    assert!(
        notes[0].contains("10.0.0.10/32 on pw-pub (rp_filter strict)"),
        "{}",
        notes[0]
    );
    // The kernel: seen in prerouting, never in input.
    syn_to_public(&t, 41001);
    assert!(rp_count(&t, "pre") >= 1);
    assert_eq!(rp_count(&t, "input"), 0, "strict rp_filter lets it through");

    // Without the filter it reaches the input chain, where the ruleset
    // refuses it: now a real missing opening on pw-pub.
    rp(&t, "pw-pub", 0);
    syn_to_public(&t, 41002);
    assert!(rp_count(&t, "input") >= 1);
    let (report, code) = audit(&t, &cfg);
    assert_eq!(code, 2, "{report:#}");
    let m = findings(&report, "missing-opening");
    assert!(!m.is_empty());
    assert!(m
        .iter()
        .all(|f| f["interfaces"] == serde_json::json!(["pw-pub"])));
    assert!(rp_notes(&report).is_empty(), "{report:#}");

    // Loose rp_filter: 10.0.0.10 is routable, so it passes, and the
    // missing opening stands.
    rp(&t, "pw-pub", 2);
    let (_, code) = audit(&t, &cfg);
    assert_eq!(code, 2);
    rp(&t, "pw-pub", 0);

    // The nft form: `fib saddr . iif oif missing drop` in prerouting.
    t.host.nft_text(
        "table inet rpf {\n  chain prerouting {\n    type filter hook prerouting priority -150; policy accept;\n    fib saddr . iif oif missing drop\n  }\n}\n",
    );
    let (report, code) = audit(&t, &cfg);
    assert!(
        findings(&report, "missing-opening").is_empty(),
        "{report:#}"
    );
    assert_eq!(code, 0, "{report:#}");
    let notes = rp_notes(&report);
    assert_eq!(notes.len(), 1, "{report:#}");
    assert!(
        notes[0].contains("table inet rpf chain prerouting"),
        "{}",
        notes[0]
    );
    let before = rp_count(&t, "input");
    let pre = rp_count(&t, "pre");
    syn_to_public(&t, 41003);
    assert!(rp_count(&t, "pre") > pre);
    assert_eq!(
        rp_count(&t, "input"),
        before,
        "the fib rule lets it through"
    );
    let _ = std::fs::remove_file(cfg);
}

// ---- private interfaces are never a silent guess ----

const EVAULT_RULESET: &str = r#"flush ruleset
table inet filter {
  chain input {
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    iif "lo" accept
    tcp dport 22 accept
  }
}
"#;

#[test]
fn private_interface_errors_are_never_silent() {
    if !require_root("private_interface_errors_are_never_silent") {
        return;
    }
    let t = routed_topology("aud-priv");
    t.host.nft_text(EVAULT_RULESET);
    let _l = common::listeners(&t.host, &["tcp/2548"]);
    let typo = "roles = [\"evault-agent\"]\nprivate_interfaces = [\"pw-prv\"]\n[peers]\nevault_management = [\"10.0.0.0/24\"]\nevault_vault = []\nevault_registration = []\nevault_portal = []\nevault_federal = []\n";
    let cfg = config_file("typo", typo);
    // check-config, in the host's namespace, knows its interfaces.
    let out = t
        .host
        .portwarden(&["check-config", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:2:23: ", cfg.display())), "{err}");
    assert!(err.contains("\"pw-prv\" matches no interface"), "{err}");
    assert!(err.contains("pw-priv"), "{err}");
    // The example configuration names eth1: valid on a host that has it.
    let example = common::fixture("../../config/portwarden.toml");
    let example = example.to_str().unwrap();
    let out = t.host.portwarden(&["check-config", "--config", example]);
    assert_eq!(out.status.code(), Some(3));
    t.host.ip(&[
        "link",
        "add",
        "eth1",
        "type",
        "veth",
        "peer",
        "name",
        "eth1-peer",
    ]);
    let out = t.host.portwarden(&["check-config", "--config", example]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The audit: a critical not-checked finding, not a silent skip.
    let (report, code) = audit(&t, &cfg);
    assert_eq!(code, 2, "{report:#}");
    let n = findings(&report, "not-checked");
    assert_eq!(n.len(), 1, "{report:#}");
    assert_eq!(n[0]["severity"], "critical");
    assert_eq!(n[0]["requirement"], "management");
    // The same through --private-iface.
    let out = t.host.portwarden(&[
        "audit",
        "--format",
        "json",
        "--role",
        "evault-agent",
        "--private-iface",
        "pw-prv",
        "--peer",
        "evault_management=10.0.0.0/24",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(findings(&v, "not-checked").len(), 1, "{v:#}");
    let _ = std::fs::remove_file(cfg);

    // No private interface at all, management from any address: the
    // refusal is reported, but no fix opens 2548 on pw-pub (default route).
    let none = "roles = [\"evault-agent\"]\n[peers]\nevault_vault = []\nevault_registration = []\nevault_portal = []\nevault_federal = []\n";
    let cfg = config_file("noprivate", none);
    let (report, code) = audit(&t, &cfg);
    assert_eq!(code, 2, "{report:#}");
    let m = findings(&report, "missing-opening");
    assert_eq!(m.len(), 1, "{report:#}");
    assert!(m[0]["interfaces"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("pw-pub")));
    assert!(m[0]["fix"].is_null(), "{report:#}");
    assert!(
        m[0]["summary"]
            .as_str()
            .unwrap()
            .contains("configure private_interfaces"),
        "{report:#}"
    );
    // And what it reports is refused by the kernel.
    let mut probes = role_probes(
        PUBLIC.peer4,
        PUBLIC.host4,
        false,
        "2548 refused",
        &[(2548, 2548)],
    );
    probes.extend(role_probes(
        PRIVATE.peer4,
        PRIVATE.host4,
        false,
        "2548 refused",
        &[(2548, 2548)],
    ));
    check(&t.host, &t.peer, &probes);
    let _ = std::fs::remove_file(cfg);
}

// ---- deny lists are policy, not holes ----

/// Behind the fail2ban fixture's blocklists: only the data mover's ports.
const F2B_FILTER: &str = r#"table inet filter {
  chain input {
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    iif "lo" accept
    meta l4proto { icmp, ipv6-icmp } accept
    tcp dport { 22, 6160, 6162, 2500-3300 } accept
  }
}
"#;

#[test]
fn blocklists_are_a_note_for_any_peer_and_a_named_hole_for_a_bound_one() {
    if !require_root("blocklists_are_a_note_for_any_peer_and_a_named_hole_for_a_bound_one") {
        return;
    }
    let t = routed_topology("aud-f2b");
    add_peer_addresses(&t);
    t.load_fixture("fail2ban-blocklist.nft");
    t.host.nft_text(F2B_FILTER);
    let _l = common::listeners(&t.host, &["tcp/22", "tcp/6160", "tcp/6162"]);

    // Any address: the blocklists are one note each, nothing missing.
    let cfg = config_file("f2b-any", "roles = [\"veeam-data-mover\"]\n");
    let (report, code) = audit(&t, &cfg);
    assert_eq!(code, 0, "{report:#}");
    assert!(
        report["findings"].as_array().unwrap().is_empty(),
        "{report:#}"
    );
    let notes: Vec<&str> = report["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str())
        .filter(|n| n.contains("deny list"))
        .collect();
    assert!(
        notes.iter().any(|n| n.contains(
            "accepted from any address except 3,194 prefixes in set inet f2b blocklist-v4"
        )),
        "{notes:#?}"
    );
    assert!(
        notes.len() <= 4 && notes.iter().all(|n| n.len() < 400),
        "{notes:#?}"
    );
    // The text report stays small.
    let text = t
        .host
        .portwarden(&["audit", "--config", cfg.to_str().unwrap()]);
    assert!(
        text.stdout.len() < 4000,
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );
    // The kernel: a listed source is refused, an unlisted one gets in.
    let mut probes = role_probes(
        "192.0.2.66",
        PUBLIC.host4,
        false,
        "blocklisted",
        &[(6162, 6162)],
    );
    probes.extend(role_probes(
        PUBLIC.peer4,
        PUBLIC.host4,
        true,
        "not listed",
        ROLE_PORTS,
    ));
    check(&t.host, &t.peer, &probes);
    let _ = std::fs::remove_file(cfg);

    // The backup server inside the blocklist: a critical missing opening
    // naming the set and the element, and its fix lets exactly it in.
    let cfg = config_file(
        "f2b-bound",
        "roles = [\"veeam-data-mover\"]\n[peers]\nbackup_server = [\"192.0.2.66\"]\n",
    );
    let (report, code) = audit(&t, &cfg);
    assert_eq!(code, 2, "{report:#}");
    let m = findings(&report, "missing-opening");
    assert!(!m.is_empty(), "{report:#}");
    for f in &m {
        assert_eq!(f["peers"], serde_json::json!(["192.0.2.66/32"]), "{f:#}");
        let summary = f["summary"].as_str().unwrap();
        assert!(
            summary
                .contains("192.0.2.66/32 is in set inet f2b blocklist-v4 (element 192.0.2.66/32)"),
            "{summary}"
        );
        let fix = f["fix"]["nft"].as_str().unwrap();
        assert!(fix.contains("ip saddr 192.0.2.66/32"), "{fix}");
    }
    let probes = role_probes(
        "192.0.2.66",
        PUBLIC.host4,
        false,
        "backup server blocklisted",
        ROLE_PORTS,
    );
    check(&t.host, &t.peer, &probes);
    let _ = std::fs::remove_file(cfg);

    // An opening no role wants, behind the blocklist: its peers are the
    // blocklist's complement, thousands of prefixes. The JSON lists the
    // first few and counts them all; the document stays small.
    t.host
        .nft_text("add rule inet filter input tcp dport 9000 accept\n");
    let cfg = config_file("f2b-excess", "roles = [\"veeam-data-mover\"]\n");
    let (report, code) = t.host.audit_json(&cfg, &[]);
    let (full, _) = t.host.audit_json(&cfg, &["--all-peers"]);
    assert_eq!(code, 1, "{report:#}");
    let excess: Vec<&Value> = findings(&report, "excess-opening")
        .into_iter()
        .filter(|f| ranges(&f["ports"]).contains(&(9000, 9000)))
        .collect();
    assert!(!excess.is_empty(), "{report:#}");
    let listed = portwarden::audit::netjson::PEERS_LISTED;
    for f in &excess {
        assert!(f["peer_count"].as_u64().unwrap() > 3000, "{f:#}");
        for doc in std::iter::once(*f).chain(f["pieces"].as_array().unwrap()) {
            let count = doc["peer_count"].as_u64().unwrap() as usize;
            let peers = nets(&doc["peers"]);
            assert_eq!(peers.len(), count.min(listed), "{doc:#}");
            // The first ones, in order; the blocklisted host is not among
            // them (it is not a peer the opening lets in).
            assert!(peers.windows(2).all(|w| w[0] < w[1]), "{doc:#}");
            assert!(
                !peers
                    .iter()
                    .any(|n| n.contains(&"192.0.2.66".parse::<IpAddr>().unwrap())),
                "{doc:#}"
            );
        }
    }
    let json = serde_json::to_string(&report).unwrap();
    assert!(json.len() < 64 * 1024, "{} bytes", json.len());
    // --all-peers lists them all: the same findings, every prefix.
    let full_excess: Vec<&Value> = findings(&full, "excess-opening")
        .into_iter()
        .filter(|f| ranges(&f["ports"]).contains(&(9000, 9000)))
        .collect();
    assert_eq!(full_excess.len(), excess.len());
    for (f, capped) in full_excess.iter().zip(&excess) {
        assert_eq!(f["id"], capped["id"]);
        let all = nets(&f["peers"]);
        assert_eq!(all.len() as u64, f["peer_count"].as_u64().unwrap());
        assert_eq!(&all[..listed], nets(&capped["peers"]).as_slice());
        assert!(!all
            .iter()
            .any(|n| n.contains(&"192.0.2.66".parse::<IpAddr>().unwrap())));
    }
    let _ = std::fs::remove_file(cfg);
}

// ---- alternatives: "80 or 443" ----

/// Output refused except replies, loopback and (when given) one port to
/// the peer.
fn crl_ruleset(open: Option<u16>) -> String {
    let accept = open.map_or_else(String::new, |p| {
        format!("    ip daddr 192.0.2.2 tcp dport {p} accept\n")
    });
    format!(
        "flush ruleset
table inet filter {{
  chain output {{
    type filter hook output priority filter; policy drop;
    ct state established,related accept
    oifname \"lo\" accept
    meta l4proto ipv6-icmp accept
{accept}  }}
}}
"
    )
}

/// The Veeam agent sending to Cloud Connect: CRLs on 443 or 80. Every
/// other peer group bound empty, so that only the CRL requirement (and
/// the gateway's 6180) concerns the output path.
const CRL_CFG: &str = r#"roles = ["veeam-agent-linux"]
[settings]
agent_cloud_connect = true
[peers]
crl_endpoints = ["192.0.2.2"]
cloud_gateway = []
backup_server = []
repository = []
gateway = []
"#;

fn crl_findings(report: &Value) -> Vec<&Value> {
    findings(report, "outbound-blocked")
        .into_iter()
        .filter(|f| f["requirement"] == "crl")
        .collect()
}

fn out_probe(port: u16, sport: u16, expect: bool, why: &str) -> Probe {
    Probe {
        proto: "tcp".into(),
        saddr: PUBLIC.host4.parse().unwrap(),
        daddr: "192.0.2.2".parse().unwrap(),
        dport: port,
        sport,
        expect,
        why: why.into(),
    }
}

#[test]
fn one_open_alternative_is_enough_and_none_open_is_one_finding_whose_fix_opens_the_first() {
    if !require_root(
        "one_open_alternative_is_enough_and_none_open_is_one_finding_whose_fix_opens_the_first",
    ) {
        return;
    }
    let t = Topology::new("aud-alt");
    let cfg = config_file("alt", CRL_CFG);
    // 443 open, 80 refused: the requirement holds, no finding.
    t.host.nft_text(&crl_ruleset(Some(443)));
    let (report, _) = audit(&t, &cfg);
    assert!(crl_findings(&report).is_empty(), "{report:#}");
    check(
        &t.peer,
        &t.host,
        &[
            out_probe(443, 32001, true, "the open alternative"),
            out_probe(80, 32002, false, "the other alternative is refused"),
        ],
    );
    // Only 80 open: holds as well.
    t.host.nft_text(&crl_ruleset(Some(80)));
    let (report, _) = audit(&t, &cfg);
    assert!(crl_findings(&report).is_empty(), "{report:#}");
    // Neither: one finding, naming both, for the first (443).
    t.host.nft_text(&crl_ruleset(None));
    let (report, _) = audit(&t, &cfg);
    let crl = crl_findings(&report);
    assert_eq!(crl.len(), 1, "{report:#}");
    let f = crl[0];
    assert_eq!(f["ports"], serde_json::json!([[443, 443]]), "{f:#}");
    assert_eq!(
        f["alternatives"],
        serde_json::json!([[[443, 443]], [[80, 80]]]),
        "{f:#}"
    );
    let summary = f["summary"].as_str().unwrap();
    assert!(summary.contains("tcp 443 or 80"), "{summary}");
    assert!(summary.contains("80: refused by"), "{summary}");
    check(
        &t.peer,
        &t.host,
        &[
            out_probe(443, 32003, false, "reported blocked"),
            out_probe(80, 32004, false, "the other alternative, named as blocked"),
        ],
    );
    // The fix, proven by the audit, applied as printed: 443 then gets out,
    // 80 stays refused, and a fresh audit finds the requirement met.
    assert_eq!(f["fix"]["status"], "proven", "{f:#}");
    let nft = f["fix"]["nft"].as_str().unwrap();
    assert!(nft.contains("443") && !nft.contains(" 80"), "{nft}");
    for line in nft.lines() {
        run(t.host.cmd("sh").args(["-c", line]));
    }
    check(
        &t.peer,
        &t.host,
        &[
            out_probe(443, 32005, true, "opened by the fix"),
            out_probe(80, 32006, false, "the fix opens the first alternative only"),
        ],
    );
    let (report, _) = audit(&t, &cfg);
    assert!(crl_findings(&report).is_empty(), "{report:#}");
    let _ = std::fs::remove_file(cfg);
}

/// A role of an extension directory with an inbound requirement with
/// alternatives (the built-in catalog's are outbound).
const ALT_IN_ROLE: &str = r#"
[[role]]
id = "test-alternatives-in"
title = "Inbound alternatives"
description = "A console reachable on 8443 or 9443."
sources = ["VBR-UG-13.1"]

[[role.requirement]]
id = "console"
direction = "in"
proto = "tcp"
any_of = [8443, 9443]
peer = "backup_server"
purpose = "Console connections."
source = { doc = "VBR-UG-13.1", section = "test" }
"#;

const ALT_IN_CFG: &str = r#"roles = ["test-alternatives-in"]
[peers]
backup_server = ["192.0.2.2"]
"#;

fn alt_in_ruleset(open: Option<u16>) -> String {
    let accept = open.map_or_else(String::new, |p| {
        format!("    ip saddr 192.0.2.2 tcp dport {p} accept\n")
    });
    format!(
        "flush ruleset
table inet filter {{
  chain input {{
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    iif \"lo\" accept
    meta l4proto ipv6-icmp accept
{accept}  }}
}}
"
    )
}

fn in_probe(port: u16, sport: u16, expect: bool, why: &str) -> Probe {
    Probe {
        proto: "tcp".into(),
        saddr: PUBLIC.peer4.parse().unwrap(),
        daddr: PUBLIC.host4.parse().unwrap(),
        dport: port,
        sport,
        expect,
        why: why.into(),
    }
}

#[test]
fn inbound_alternatives_one_accepted_is_enough_and_none_is_one_missing_opening() {
    if !require_root("inbound_alternatives_one_accepted_is_enough_and_none_is_one_missing_opening")
    {
        return;
    }
    let t = Topology::new("aud-altin");
    let dir = std::env::temp_dir().join(format!("pw-alt-in-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("alt.toml"), ALT_IN_ROLE).unwrap();
    let cfg = config_file("altin", ALT_IN_CFG);
    let run_audit = || -> Value {
        t.host
            .audit_json(&cfg, &["--catalog-dir", dir.to_str().unwrap()])
            .0
    };
    let missing = |report: &Value| -> Vec<Value> {
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| {
                (f["kind"] == "missing-opening" || f["kind"] == "partial-opening")
                    && f["requirement"] == "console"
            })
            .cloned()
            .collect()
    };
    // 9443 (the second alternative) accepted: no finding.
    t.host.nft_text(&alt_in_ruleset(Some(9443)));
    let report = run_audit();
    assert!(missing(&report).is_empty(), "{report:#}");
    // Every alternative is wanted: the accepted one is no excess opening.
    assert!(findings(&report, "excess-opening").is_empty(), "{report:#}");
    check(
        &t.host,
        &t.peer,
        &[
            in_probe(9443, 33001, true, "the accepted alternative"),
            in_probe(8443, 33002, false, "the other alternative is refused"),
        ],
    );
    // Neither: one missing opening for the first, naming both.
    t.host.nft_text(&alt_in_ruleset(None));
    let report = run_audit();
    let m = missing(&report);
    assert_eq!(m.len(), 1, "{report:#}");
    let f = &m[0];
    assert_eq!(f["kind"], "missing-opening");
    assert_eq!(f["ports"], serde_json::json!([[8443, 8443]]), "{f:#}");
    assert_eq!(
        f["alternatives"],
        serde_json::json!([[[8443, 8443]], [[9443, 9443]]]),
        "{f:#}"
    );
    let summary = f["summary"].as_str().unwrap();
    assert!(summary.contains("tcp 8443 or 9443"), "{summary}");
    assert_eq!(f["fix"]["status"], "proven", "{f:#}");
    let nft = f["fix"]["nft"].as_str().unwrap().to_string();
    for line in nft.lines() {
        run(t.host.cmd("sh").args(["-c", line]));
    }
    check(
        &t.host,
        &t.peer,
        &[
            in_probe(8443, 33003, true, "opened by the fix"),
            in_probe(
                9443,
                33004,
                false,
                "the fix opens the first alternative only",
            ),
        ],
    );
    assert!(missing(&run_audit()).is_empty());
    let _ = std::fs::remove_file(cfg);
    let _ = std::fs::remove_dir_all(dir);
}
