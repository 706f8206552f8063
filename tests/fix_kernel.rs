//! Every fix the audit shows, applied for real: in the host namespace of
//! the test topology, with the `nft` commands exactly as printed, one fix
//! at a time (the ruleset reloaded in between). Real packets then check:
//!
//! - (a) and (c): every SYN and datagram of a grid (each peer address of
//!   the topology × each local address of the interface it arrives on ×
//!   the edges of every required port range and of every reported piece,
//!   and the ports just outside them, TCP and UDP) reaches the host's last
//!   input chain after the fix exactly when it did before, except inside
//!   the finding's pieces: those now arrive (a missing opening) or no
//!   longer do (an excess opening);
//! - (b) is part of the grid: every required range's edges from every peer;
//! - (d): the host's own TCP connections and UDP exchanges to the peer
//!   (both links, both families) that worked before still complete, so
//!   their replies still come back in.
//!
//! Covered: the demo host, an empty ruleset, a firewalld ruleset and a ufw
//! ruleset.

mod common;

use common::{packets, require_root, run, Netns, Topology, PRIVATE, PUBLIC};
use ipnet::IpNet;
use portwarden::catalog::{Catalog, Direction};
use portwarden::config::HostConfig;
use serde_json::Value;
use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The peer's servers for the host's own connections: TCP 443 accepted,
/// UDP 53 echoed.
const SERVERS: &str = r#"
import socket, threading, time
def tcp():
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", 443)); s.listen(64)
    while True:
        c, _ = s.accept(); c.close()
# One socket per address: a reply leaves from the address the query went
# to (a wildcard socket may answer from another address of the link).
def udp(addr):
    s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 53))
    while True:
        d, a = s.recvfrom(100); s.sendto(d, a)
threading.Thread(target=tcp, daemon=True).start()
for a in ["192.0.2.2", "10.99.0.2", "2001:db8:1::2", "fd00:99::2"]:
    threading.Thread(target=udp, args=(a,), daemon=True).start()
time.sleep(0.2)
print("ready", flush=True)
time.sleep(3600)
"#;

/// The host's own connections: which complete (reply received).
const CLIENT: &str = r#"
import socket, sys
for a in sys.argv[1:]:
    fam = socket.AF_INET6 if ":" in a else socket.AF_INET
    try:
        s = socket.create_connection((a, 443), timeout=1.5); s.close(); print("tcp", a)
    except OSError:
        pass
    s = socket.socket(fam, socket.SOCK_DGRAM); s.settimeout(1.5)
    try:
        s.sendto(b"ping", (a, 53)); s.recvfrom(100); print("udp", a)
    except OSError:
        pass
"#;

const PEERS: [&str; 4] = ["192.0.2.2", "10.99.0.2", "2001:db8:1::2", "fd00:99::2"];

/// The host's own connections that complete.
fn own_connections(t: &Topology) -> BTreeSet<String> {
    let out = run(t.host.cmd("python3").arg("-c").arg(CLIENT).args(PEERS));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The topology with a second peer address per link, the backup server
/// 10.0.0.10 behind the private link, and reverse-path filtering off.
fn topology(tag: &str) -> Topology {
    let t = Topology::new(tag);
    for (a, dev) in [
        ("192.0.2.66/24", PUBLIC.peer_if),
        ("10.99.0.66/24", PRIVATE.peer_if),
        ("10.0.0.10/32", PRIVATE.peer_if),
    ] {
        t.peer.ip(&["addr", "add", a, "dev", dev]);
    }
    for (a, dev) in [
        ("2001:db8:1::66/64", PUBLIC.peer_if),
        ("fd00:99::66/64", PRIVATE.peer_if),
    ] {
        t.peer.ip(&["addr", "add", a, "dev", dev, "nodad"]);
    }
    t.host.ip(&[
        "route",
        "add",
        "10.0.0.0/8",
        "via",
        "10.99.0.2",
        "dev",
        PRIVATE.host_if,
    ]);
    for k in ["all", "default", "pw-pub", "pw-priv"] {
        run(t
            .host
            .cmd("sysctl")
            .args(["-qw", &format!("net.ipv4.conf.{k}.rp_filter=0")]));
    }
    t
}

fn audit(t: &Topology, cfg: &Path) -> Value {
    // Every peer prefix: the packets are checked against the exact pieces.
    t.host.audit_json(cfg, &["--all-peers"]).0
}

/// One packet of the grid: protocol, source, destination, port, and the
/// interface it arrives on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Pkt {
    proto: &'static str,
    from: IpAddr,
    to: IpAddr,
    port: u16,
    iif: &'static str,
}

const SOURCES: [(&str, &str); 9] = [
    ("pw-pub", "192.0.2.2"),
    ("pw-pub", "192.0.2.66"),
    ("pw-pub", "2001:db8:1::2"),
    ("pw-pub", "2001:db8:1::66"),
    ("pw-priv", "10.99.0.2"),
    ("pw-priv", "10.99.0.66"),
    ("pw-priv", "10.0.0.10"),
    ("pw-priv", "fd00:99::2"),
    ("pw-priv", "fd00:99::66"),
];

fn local_of(iif: &str, v6: bool) -> IpAddr {
    let l = if iif == PUBLIC.host_if {
        PUBLIC
    } else {
        PRIVATE
    };
    (if v6 { l.host6 } else { l.host4 }).parse().unwrap()
}

fn ranges(v: &Value) -> Vec<(u16, u16)> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|r| (r[0].as_u64().unwrap() as u16, r[1].as_u64().unwrap() as u16))
        .collect()
}

/// The ports of the grid: edges (and the ports just outside) of every
/// required inbound range and of every reported port range.
fn grid_ports(report: &Value, cfg_text: &str, skip: &[u16]) -> BTreeSet<u16> {
    let cat = Catalog::builtin().unwrap();
    let (cfg, _) = HostConfig::parse(Path::new("t.toml"), cfg_text, &cat).unwrap();
    let mut rs: Vec<(u16, u16)> = Vec::new();
    for r in cat.resolve(&cfg.roles, &cfg.settings).unwrap() {
        if r.direction == Direction::In {
            rs.extend(r.ports.ranges().iter().map(|r| (r.first(), r.last())));
        }
    }
    for f in report["findings"].as_array().unwrap() {
        if f["direction"] == "in" {
            rs.extend(ranges(&f["ports"]));
        }
    }
    let mut out = BTreeSet::new();
    for (a, b) in rs {
        for p in [
            a.saturating_sub(1),
            a,
            a + (b - a) / 2,
            b,
            b.saturating_add(1),
        ] {
            if p != 0 && !skip.contains(&p) {
                out.insert(p);
            }
        }
    }
    out
}

fn grid(ports: &BTreeSet<u16>) -> Vec<Pkt> {
    let mut v = Vec::new();
    for (iif, from) in SOURCES {
        let from: IpAddr = from.parse().unwrap();
        let iif: &'static str = if iif == "pw-pub" { "pw-pub" } else { "pw-priv" };
        for &port in ports {
            for proto in ["tcp", "udp"] {
                v.push(Pkt {
                    proto,
                    from,
                    to: local_of(iif, from.is_ipv6()),
                    port,
                    iif,
                });
            }
        }
    }
    v
}

/// Which packets of the grid reach the host's last input chain.
fn arrive(t: &Topology, g: &[Pkt]) -> HashSet<Pkt> {
    packets::add_recorder(&t.host);
    // Fresh source ports every round: a packet reusing an earlier round's
    // ports would belong to that round's conntrack entry (established).
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(10000);
    let base = NEXT.fetch_add(g.len() as u32 + 1, std::sync::atomic::Ordering::Relaxed);
    assert!(base + (g.len() as u32) < 65000, "out of source ports");
    let mut sport = base as u16;
    let batch: Vec<packets::Packet> = g
        .iter()
        .map(|p| {
            sport += 1;
            packets::Packet {
                proto: p.proto.into(),
                from: p.from,
                to: p.to,
                sport,
                port: p.port,
            }
        })
        .collect();
    packets::send(&t.peer, &batch, 0.001);
    let seen: HashSet<(String, String, u16)> = packets::seen(&t.host)
        .into_iter()
        .map(|s| (s.proto, s.saddr, s.sport))
        .collect();
    packets::remove_recorder(&t.host);
    g.iter()
        .zip(&batch)
        .filter(|(p, b)| seen.contains(&(p.proto.to_string(), p.from.to_string(), b.sport)))
        .map(|(p, _)| p.clone())
        .collect()
}

/// Whether a packet is inside one of a finding's pieces.
fn in_pieces(f: &Value, p: &Pkt) -> bool {
    if f["proto"] != p.proto {
        return false;
    }
    f["pieces"].as_array().into_iter().flatten().any(|pc| {
        let on = pc["interfaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i == p.iif);
        let to = pc["to"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a.as_str() == Some(&p.to.to_string()));
        let port = ranges(&pc["ports"])
            .iter()
            .any(|&(a, b)| (a..=b).contains(&p.port));
        let peer = pc["peers"].as_array().unwrap().iter().any(|n| {
            n.as_str()
                .unwrap()
                .parse::<IpNet>()
                .unwrap()
                .contains(&p.from)
        });
        on && to && port && peer
    })
}

/// Runs a printed command line in the host namespace; it must succeed.
fn sh(ns: &Netns, line: &str) {
    let out = ns.cmd("sh").args(["-c", line]).output().expect("sh");
    assert!(
        out.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Applies every proven fix of the audit in turn and checks it with real
/// packets; returns the proven fixes' nft texts.
fn check_fixes(
    t: &Topology,
    load: &dyn Fn(&Topology),
    cfg_text: &str,
    skip_ports: &[u16],
) -> (Value, Vec<String>) {
    load(t);
    let cfg = std::env::temp_dir().join(format!(
        "pw-fix-{}-{}.toml",
        std::process::id(),
        t.host.name
    ));
    std::fs::write(&cfg, cfg_text).unwrap();
    let report = audit(t, &cfg);
    let ports = grid_ports(&report, cfg_text, skip_ports);
    let g = grid(&ports);
    let before = arrive(t, &g);
    let own_before = own_connections(t);
    let mut shown = Vec::new();
    let mut failures = Vec::new();
    for f in report["findings"].as_array().unwrap() {
        if f["fix"]["status"] != "proven" {
            continue;
        }
        let nft = f["fix"]["nft"].as_str().unwrap().to_string();
        for line in nft.lines() {
            sh(&t.host, line);
        }
        let after = arrive(t, &g);
        let own_after = own_connections(t);
        let opens = f["kind"] == "missing-opening" || f["kind"] == "partial-opening";
        for p in &g {
            let inside = f["direction"] == "in" && in_pieces(f, p);
            let want = if inside { opens } else { before.contains(p) };
            if after.contains(p) != want {
                failures.push(format!(
                    "after `{nft}`: {} {} -> {}:{} on {} {} (before: {}, inside the finding: {inside})",
                    p.proto,
                    p.from,
                    p.to,
                    p.port,
                    p.iif,
                    if after.contains(p) { "arrives" } else { "is refused" },
                    before.contains(p)
                ));
            }
        }
        for c in own_before.difference(&own_after) {
            failures.push(format!(
                "after `{nft}`: the host's own {c} connection no longer completes"
            ));
        }
        shown.push(nft);
        // Back to the audited ruleset for the next fix.
        run(t.host.cmd("nft").args(["flush", "ruleset"]));
        load(t);
    }
    let _ = std::fs::remove_file(&cfg);
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    (report, shown)
}

fn fix_texts(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{} {}: {}", f["kind"], f["summary"], f["fix"]))
        .collect()
}

fn demo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo")
}

#[test]
fn demo_host_fixes_are_exact_in_the_kernel() {
    if !require_root("demo_host_fixes_are_exact_in_the_kernel") {
        return;
    }
    let t = topology("fx-demo");
    let _l = common::listeners(
        &t.host,
        &["tcp/22", "tcp/6162", "tcp/2500", "tcp/2548", "tcp/8080"],
    );
    let _s = common::python(&t.peer, SERVERS, &[]);
    let cfg = std::fs::read_to_string(demo_dir().join("portwarden.toml")).unwrap();
    let load = |t: &Topology| t.host.nft_file(&demo_dir().join("ruleset.nft"));
    let (report, shown) = check_fixes(&t, &load, &cfg, &[]);
    assert!(!shown.is_empty(), "{:#?}", fix_texts(&report));
    // The rule that opens ssh also carries the backup server's IPv4 ssh:
    // it is never deleted; the excess part is dropped instead.
    let ssh = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "excess-opening" && f["ports"] == serde_json::json!([[22, 22]]))
        .unwrap_or_else(|| panic!("{:#?}", fix_texts(&report)));
    let nft = ssh["fix"]["nft"]
        .as_str()
        .unwrap_or_else(|| panic!("{ssh:#}"));
    assert!(!nft.contains("delete rule"), "{nft}");
    assert!(nft.contains("drop"), "{nft}");
    // explain credits the rule that opened the port, not a later chain's policy.
    assert_eq!(ssh["evidence"][0]["type"], "rule", "{ssh:#}");
}

#[test]
fn empty_ruleset_fix_keeps_outbound_connections() {
    if !require_root("empty_ruleset_fix_keeps_outbound_connections") {
        return;
    }
    let t = topology("fx-empty");
    let _l = common::listeners(&t.host, &["tcp/22", "tcp/6162", "tcp/8080"]);
    let _s = common::python(&t.peer, SERVERS, &[]);
    let cfg = "roles = [\"veeam-data-mover\"]\n[peers]\nbackup_server = [\"10.0.0.10\"]\n";
    let load = |_: &Topology| {};
    let (report, shown) = check_fixes(&t, &load, cfg, &[]);
    let created = shown
        .iter()
        .find(|n| n.contains("add chain inet portwarden input"))
        .unwrap_or_else(|| panic!("{:#?}", fix_texts(&report)));
    assert!(
        created.contains("ct state established,related accept"),
        "{created}"
    );
    // Before any fix the host reaches the peer on every link and family.
    assert_eq!(own_connections(&t).len(), 8);
}

#[test]
fn firewalld_ruleset_fixes_are_exact_in_the_kernel() {
    if !require_root("firewalld_ruleset_fixes_are_exact_in_the_kernel") {
        return;
    }
    let t = topology("fx-fwd");
    let _l = common::listeners(&t.host, &["tcp/22", "tcp/6160", "tcp/6162"]);
    let _s = common::python(&t.peer, SERVERS, &[]);
    let cfg = "roles = [\"veeam-data-mover\"]\n[peers]\nbackup_server = [\"10.0.0.10\"]\n";
    let load = |t: &Topology| t.load_fixture("firewalld-zones.nft");
    let (report, shown) = check_fixes(&t, &load, cfg, &[]);
    assert!(!shown.is_empty(), "{:#?}", fix_texts(&report));
}

#[test]
fn ufw_ruleset_fixes_are_exact_in_the_kernel() {
    if !require_root("ufw_ruleset_fixes_are_exact_in_the_kernel") {
        return;
    }
    let t = topology("fx-ufw");
    let _l = common::listeners(&t.host, &["tcp/22", "tcp/6160", "tcp/6162"]);
    let _s = common::python(&t.peer, SERVERS, &[]);
    let cfg = "roles = [\"veeam-data-mover\"]\n[settings]\nveeam_data_range = \"legacy\"\n[peers]\nbackup_server = [\"192.0.2.2\"]\n";
    let load = |t: &Topology| t.load_fixture("gen/ufw-host.sh");
    // Port 22 is `ufw limit`ed: left out of the grid.
    let (report, shown) = check_fixes(&t, &load, cfg, &[21, 22, 23]);
    assert!(!shown.is_empty(), "{:#?}", fix_texts(&report));
}

/// A host run by its named sets: the backup servers allowed in by
/// `@backup_servers` (the new one missing, a retired one still there) and
/// the data ports by `@data_ports` (one port too many).
const NAMED_SETS: &str = r#"flush ruleset
table inet filter {
  set backup_servers {
    type ipv4_addr
    elements = { 10.0.0.12 }
  }
  set data_ports {
    type inet_service
    flags interval
    elements = { 2500-3300, 9000 }
  }
  chain input {
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    iif "lo" accept
    meta l4proto { icmp, ipv6-icmp } accept
    ip saddr 10.0.0.10 tcp dport { 22, 6160 } accept
    iifname "pw-priv" ip saddr @backup_servers tcp dport 6162 accept
    ip saddr 10.0.0.10 tcp dport @data_ports accept
  }
}
"#;

#[test]
fn named_set_fixes_change_the_set_and_are_exact_in_the_kernel() {
    if !require_root("named_set_fixes_change_the_set_and_are_exact_in_the_kernel") {
        return;
    }
    let t = topology("fx-sets");
    t.peer
        .ip(&["addr", "add", "10.0.0.12/32", "dev", PRIVATE.peer_if]);
    let _l = common::listeners(&t.host, &["tcp/22", "tcp/6160", "tcp/6162", "tcp/2500"]);
    let _s = common::python(&t.peer, SERVERS, &[]);
    let cfg = "roles = [\"veeam-data-mover\"]\n[peers]\nbackup_server = [\"10.0.0.10\"]\n";
    let load = |t: &Topology| t.host.nft_text(NAMED_SETS);
    // Each proven fix applied as printed, then real packets: exactly the
    // finding's pieces change.
    let (report, shown) = check_fixes(&t, &load, cfg, &[]);
    let texts = fix_texts(&report);
    for want in [
        // The backup server is added to the set its rule looks up ...
        "nft add element inet filter backup_servers '{ 10.0.0.10 }'",
        // ... the retired one is taken out of it ...
        "nft delete element inet filter backup_servers '{ 10.0.0.12 }'",
        // ... and the port no role needs out of the data ports.
        "nft delete element inet filter data_ports '{ 9000 }'",
    ] {
        assert!(shown.iter().any(|s| s == want), "{want}\n{texts:#?}");
    }
    // The listener on 6162 that the retired server still reaches: the
    // same element deleted.
    let exposed = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "exposed-listener" && ranges(&f["ports"]) == [(6162, 6162)])
        .unwrap_or_else(|| panic!("{texts:#?}"));
    assert_eq!(
        exposed["fix"]["nft"], "nft delete element inet filter backup_servers '{ 10.0.0.12 }'",
        "{exposed:#}"
    );
    // After all three (two findings share the last), nothing is left to
    // report.
    load(&t);
    let distinct: BTreeSet<&String> = shown.iter().collect();
    for s in distinct {
        sh(&t.host, s);
    }
    let path = std::env::temp_dir().join(format!("pw-fix-sets-{}.toml", std::process::id()));
    std::fs::write(&path, cfg).unwrap();
    let after = audit(&t, &path);
    let _ = std::fs::remove_file(&path);
    let left: Vec<&Value> = after["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] != "exposed-listener")
        .collect();
    assert!(left.is_empty(), "{:#?}", fix_texts(&after));
}

/// A ruleset just over the size an audit proves fixes on by default: a
/// blocklist of 50,001 addresses before the accepts.
fn large_ruleset() -> String {
    let elements: Vec<String> = (0..50_001u32)
        .map(|i| std::net::Ipv4Addr::from(0x0b00_0000 + 2 * i).to_string())
        .collect();
    format!(
        "flush ruleset
table inet filter {{
  set bl {{
    type ipv4_addr
    flags interval
    elements = {{ {} }}
  }}
  chain input {{
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    iif \"lo\" accept
    meta l4proto {{ icmp, ipv6-icmp }} accept
    ip saddr @bl drop
    ip saddr 10.0.0.10 tcp dport {{ 22, 6160, 2500-3300 }} accept
  }}
}}
",
        elements.join(", ")
    )
}

#[test]
fn prove_all_proves_fixes_on_a_large_ruleset() {
    if !require_root("prove_all_proves_fixes_on_a_large_ruleset") {
        return;
    }
    let t = topology("fx-large");
    let _l = common::listeners(&t.host, &["tcp/22", "tcp/6160", "tcp/6162", "tcp/2500"]);
    t.host.nft_text(&large_ruleset());
    let cfg = std::env::temp_dir().join(format!("pw-fix-large-{}.toml", std::process::id()));
    std::fs::write(
        &cfg,
        "roles = [\"veeam-data-mover\"]\n[peers]\nbackup_server = [\"10.0.0.10\"]\n",
    )
    .unwrap();
    let missing = |args: &[&str]| -> Value {
        let (report, _) = t.host.audit_json(&cfg, args);
        let m: Vec<&Value> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["kind"] == "missing-opening")
            .collect();
        assert_eq!(m.len(), 1, "{:#?}", fix_texts(&report));
        m[0].clone()
    };
    // By default: not proven, and the reason says how to get it proven.
    let f = missing(&[]);
    assert_eq!(f["fix"]["status"], "no-safe-fix", "{f:#}");
    let reason = f["fix"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("too large") && reason.contains("--prove-all"),
        "{reason}"
    );
    // With --prove-all: proven, and it works as printed.
    let f = missing(&["--prove-all"]);
    assert_eq!(f["fix"]["status"], "proven", "{f:#}");
    let nft = f["fix"]["nft"].as_str().unwrap();
    let port = |p: u16| Pkt {
        proto: "tcp",
        from: "10.0.0.10".parse().unwrap(),
        to: local_of("pw-priv", false),
        port: p,
        iif: "pw-priv",
    };
    let g = [port(6161), port(6162), port(6163)];
    assert!(arrive(&t, &g).is_empty());
    for line in nft.lines() {
        sh(&t.host, line);
    }
    assert_eq!(arrive(&t, &g), HashSet::from([port(6162)]), "after `{nft}`");
    let _ = std::fs::remove_file(&cfg);
}
