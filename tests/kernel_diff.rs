//! Kernel differential test (the Rust port of
//! the former `kernel-diff.py`): for every fixture, real packets
//! against the real kernel, compared with `portwarden explain --batch`.
//!
//! For each fixture (the `.nft` files and the script fixtures, enumerated as
//! `tests/crosscheck.rs` does), in a fresh [`Topology`]:
//!
//! 1. extra source addresses go on the peer (same-subnet ones on the peer's
//!    link, remote ones on its `lo`, plus up to two IPv4 and two IPv6
//!    addresses taken from the fixture's own address matches), each with a
//!    return route on the host so `fib` reverse-path checks see a real
//!    route; the peer gets static neighbour entries for the host's
//!    addresses, so no probe waits on (or is lost to) ARP/ND;
//! 2. the fixture is loaded; the probes are built: TCP and UDP, IPv4 and
//!    IPv6, on both links, to every port number the fixture mentions (native
//!    matches, sets, maps, NAT targets, iptables-nft xt ports, its header's
//!    expectations), their neighbours, the catalog's ports and a seeded
//!    random sample; each probe has its own source port;
//! 3. `portwarden explain --batch` answers them all in the host namespace
//!    (and `portwarden exposure --json`);
//! 4. a recorder table (`inet pw_seen`, an input chain at priority
//!    2147483647, after every other input chain) records
//!    `iifname . saddr . l4proto . sport . dport` of every TCP/UDP packet
//!    that gets there, and one python3 process in the peer namespace sends a
//!    real SYN (non-blocking connect) or one datagram per probe;
//! 5. "reached the recorder" is compared with `verdict == accept`.
//!
//! Stateful rules: the evaluator answers for the first connection under no
//! load and lists `limit`, meter, `recent`, dynamic-set and `ct count`
//! assumptions. Probes carrying one are sent after all the others, and any
//! of them the kernel disagrees on is sent again alone in a fresh topology
//! (its first connection, as the evaluator assumed); that answer counts.
//!
//! An `unknown` verdict with a stated reason (e.g. `socket` without socket
//! information) is not a failure but is listed. Every other difference is:
//! the probe, the kernel's answer and ours are printed. Needs root and
//! python3 (prints SKIPPED otherwise); a script fixture whose tool (ufw,
//! iptables-nft) is missing is SKIPPED on its own.

mod common;

use common::packets::{self, Seen};
use common::{fixture, have_tool, require_root, tools_for, Link, Netns, Topology, PRIVATE, PUBLIC};
use ipnet::IpNet;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;
use std::time::Instant;

/// Catalog ports that are always probed besides the catalog's own list.
const BASE_PORTS: &[u16] = &[
    22, 53, 123, 2500, 2546, 2548, 3300, 5000, 6160, 6162, 8086, 8087, 10005, 10006,
];

/// Sampled ports per non-primary source (times TCP and UDP).
const PORTS_PER_EXTRA_SOURCE: usize = 6;
/// Random ports added to every fixture's port list.
const RANDOM_PORTS: usize = 8;
/// Most stateful probes re-sent alone in a fresh topology, per fixture.
const MAX_RETESTS: usize = 24;

/// xorshift64*: deterministic, seeded per fixture.
struct Rng(u64);

impl Rng {
    fn seeded(name: &str) -> Rng {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        Rng(h | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Every fixture: `*.nft` files, plus the scripts that build rulesets with
/// ufw and iptables-nft (the same enumeration as `tests/crosscheck.rs`).
fn all_fixtures() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(fixture(""))
        .expect("tests/fixtures")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".nft"))
        .collect();
    v.sort();
    for script in ["gen/ufw-host.sh", "gen/iptables-xt.sh"] {
        if fixture(script).exists() {
            v.push(script.to_string());
        }
    }
    v
}

/// A probe source: its address and the link it sends on.
#[derive(Clone)]
struct Source {
    addr: IpAddr,
    link: &'static Link,
    /// Probed on every port (the peer's own address); others get a sample.
    primary: bool,
}

/// Where an extra source address lives on the peer, and its host route.
#[derive(Clone)]
struct Extra {
    addr: IpAddr,
    /// On the peer's link with the link's prefix (same subnet as the host),
    /// or on the peer's `lo`, routed by the host through `via`.
    on_link: Option<&'static Link>,
    via: &'static Link,
}

/// One probe, as sent and as asked.
#[derive(Clone, Debug)]
struct Probe {
    proto: &'static str,
    from: IpAddr,
    to: IpAddr,
    iif: &'static str,
    sport: u16,
    port: u16,
}

impl Probe {
    fn json(&self) -> Value {
        json!({"proto": self.proto, "port": self.port, "from": self.from.to_string(),
               "to": self.to.to_string(), "iif": self.iif, "sport": self.sport})
    }
    fn describe(&self) -> String {
        let ep = |a: IpAddr, p: u16| match a {
            IpAddr::V6(_) => format!("[{a}]:{p}"),
            IpAddr::V4(_) => format!("{a}:{p}"),
        };
        format!(
            "{} {} -> {} iif {}",
            self.proto,
            ep(self.from, self.sport),
            ep(self.to, self.port),
            self.iif
        )
    }
}

fn parse(s: &str) -> IpAddr {
    s.parse().expect("address")
}

fn host_addr(l: &Link, v6: bool) -> IpAddr {
    parse(if v6 { l.host6 } else { l.host4 })
}

/// The extra source addresses every fixture gets.
fn fixed_extras() -> Vec<Extra> {
    let e = |a: &str, on_link: Option<&'static Link>, via: &'static Link| Extra {
        addr: parse(a),
        on_link,
        via,
    };
    vec![
        e("192.0.2.66", Some(&PUBLIC), &PUBLIC),
        e("10.99.0.200", Some(&PRIVATE), &PRIVATE),
        e("2001:db8:1::66", Some(&PUBLIC), &PUBLIC),
        e("fd00:99::200", Some(&PRIVATE), &PRIVATE),
        // Remote networks: one behind each link ("the backup server" 10.0.0.10
        // behind the private one, as in tests/fixtures/topology.sh).
        e("198.51.100.7", None, &PUBLIC),
        e("2001:db8:ff::7", None, &PUBLIC),
        e("10.0.0.10", None, &PRIVATE),
        e("fd00:aa::10", None, &PRIVATE),
    ]
}

/// Sources probed: the peer's own addresses (primary), the extras on their
/// own link, and the remote ones also from the other link (spoofed, as
/// reverse-path checks see them).
fn sources(extras: &[Extra]) -> Vec<Source> {
    let mut v = Vec::new();
    for l in [&PUBLIC, &PRIVATE] {
        for a in [l.peer4, l.peer6] {
            v.push(Source {
                addr: parse(a),
                link: l,
                primary: true,
            });
        }
    }
    for x in extras {
        v.push(Source {
            addr: x.addr,
            link: x.on_link.unwrap_or(x.via),
            primary: false,
        });
        if x.on_link.is_none() {
            let other = if x.via.host_if == PUBLIC.host_if {
                &PRIVATE
            } else {
                &PUBLIC
            };
            v.push(Source {
                addr: x.addr,
                link: other,
                primary: false,
            });
        }
    }
    v
}

/// A topology with the extras, the fixture loaded and (optionally) the
/// recorder table.
struct Env {
    topo: Topology,
}

impl Env {
    fn new(name: &str, extras: &[Extra]) -> Env {
        let env = Env {
            topo: Topology::new("kd"),
        };
        env.add_extras(extras);
        env.topo.static_neighbours();
        env.topo.load_fixture(name);
        env
    }

    /// Puts extra source addresses on the peer, with host return routes.
    fn add_extras(&self, extras: &[Extra]) {
        let (h, p) = (&self.topo.host, &self.topo.peer);
        for x in extras {
            let v6 = x.addr.is_ipv6();
            match x.on_link {
                Some(l) => {
                    let len = if v6 { 64 } else { 24 };
                    let mut args = vec![
                        "addr".to_string(),
                        "add".into(),
                        format!("{}/{len}", x.addr),
                        "dev".into(),
                        l.peer_if.into(),
                    ];
                    if v6 {
                        args.push("nodad".into());
                    }
                    p.ip(&args.iter().map(String::as_str).collect::<Vec<_>>());
                }
                None => {
                    let len = if v6 { 128 } else { 32 };
                    let pre = format!("{}/{len}", x.addr);
                    let mut args = vec!["addr", "add", &pre, "dev", "lo"];
                    if v6 {
                        args.push("nodad");
                    }
                    p.ip(&args);
                    let gw = if v6 { x.via.peer6 } else { x.via.peer4 };
                    h.ip(&["route", "add", &pre, "via", gw, "dev", x.via.host_if]);
                }
            }
        }
    }

    fn add_recorder(&self) {
        packets::add_recorder(&self.topo.host);
    }

    /// Sends `probes` from the peer, then returns what the recorder saw,
    /// by (proto, sport).
    fn send(&self, probes: &[&Probe], pace: f64) -> HashMap<(String, u16), Seen> {
        let batch: Vec<packets::Packet> = probes
            .iter()
            .map(|p| packets::Packet {
                proto: p.proto.to_string(),
                from: p.from,
                to: p.to,
                sport: p.sport,
                port: p.port,
            })
            .collect();
        packets::send(&self.topo.peer, &batch, pace);
        packets::seen(&self.topo.host)
            .into_iter()
            .map(|s| ((s.proto.clone(), s.sport), s))
            .collect()
    }
}

// ------------------------------------------------------------ port numbers

fn is_port_field(v: &Value) -> bool {
    let s = v.to_string();
    s.contains("\"dport\"") || s.contains("\"sport\"")
}

fn collect_ints(v: &Value, out: &mut BTreeSet<u16>) {
    match v {
        Value::Number(n) => {
            if let Some(p) = n.as_u64().filter(|p| (1..=65535).contains(p)) {
                out.insert(p as u16);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_ints(x, out)),
        Value::Object(o) => o.values().for_each(|x| collect_ints(x, out)),
        _ => {}
    }
}

/// Keys only, for map elements `[key, data]`.
fn collect_keys(elems: &Value, out: &mut BTreeSet<u16>) {
    for e in elems.as_array().into_iter().flatten() {
        match e {
            Value::Array(kv) if kv.len() == 2 => collect_ints(&kv[0], out),
            other => collect_ints(other, out),
        }
    }
}

/// Every port number the ruleset mentions (`nft -j list ruleset`).
fn ruleset_ports(nft: &Value) -> BTreeSet<u16> {
    let items = nft["nftables"].as_array().cloned().unwrap_or_default();
    let mut sets: HashMap<String, Value> = HashMap::new();
    let mut out = BTreeSet::new();
    for it in &items {
        for kind in ["set", "map"] {
            if let Some(s) = it.get(kind) {
                let name = format!(
                    "{} {} {}",
                    s["family"].as_str().unwrap_or(""),
                    s["table"].as_str().unwrap_or(""),
                    s["name"].as_str().unwrap_or("")
                );
                if s["type"].to_string().contains("inet_service") {
                    collect_keys(&s["elem"], &mut out);
                }
                sets.insert(name, s.clone());
            }
        }
    }
    fn walk(v: &Value, rule: &Value, sets: &HashMap<String, Value>, out: &mut BTreeSet<u16>) {
        match v {
            Value::Object(o) => {
                if let Some(m) = o.get("match") {
                    if is_port_field(&m["left"]) {
                        let right = &m["right"];
                        collect_ints(right, out);
                        if let Some(r) = right.as_str().and_then(|r| r.strip_prefix('@')) {
                            let key = format!(
                                "{} {} {r}",
                                rule["family"].as_str().unwrap_or(""),
                                rule["table"].as_str().unwrap_or("")
                            );
                            if let Some(s) = sets.get(&key) {
                                collect_keys(&s["elem"], out);
                            }
                        }
                    }
                }
                for k in ["vmap", "map"] {
                    if let Some(m) = o.get(k) {
                        if is_port_field(&m["key"]) {
                            collect_keys(&m["data"]["set"], out);
                        }
                    }
                }
                for k in ["dnat", "snat", "redirect", "tproxy"] {
                    if let Some(n) = o.get(k) {
                        if let Some(p) = n.get("port") {
                            collect_ints(p, out);
                        }
                    }
                }
                for x in o.values() {
                    walk(x, rule, sets, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, rule, sets, out)),
            _ => {}
        }
    }
    for it in &items {
        if let Some(r) = it.get("rule") {
            walk(&r["expr"], r, &sets, &mut out);
        }
    }
    out
}

/// Ports of iptables-nft xt matches (opaque to `nft -j`), from the dump.
fn xt_ports(dump: &Value, out: &mut BTreeSet<u16>) {
    match dump {
        Value::Object(o) => {
            if o.get("type").and_then(Value::as_str) == Some("match") {
                let info = &o["info"];
                match info["kind"].as_str() {
                    Some("tcp" | "udp") => {
                        for k in ["sport", "dport"] {
                            let r = &info[k];
                            if *r != json!([0, 65535]) {
                                collect_ints(r, out);
                            }
                        }
                    }
                    Some("multiport") => collect_ints(&info["ports"], out),
                    _ => {}
                }
            }
            o.values().for_each(|x| xt_ports(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| xt_ports(x, out)),
        _ => {}
    }
}

/// Ports of the fixture header's `Expected` lines (`-> DST:PORT`).
fn header_ports(path: &Path, out: &mut BTreeSet<u16>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    for line in text
        .lines()
        .take_while(|l| l.starts_with('#') || l.is_empty())
    {
        let Some((_, rest)) = line.split_once("->") else {
            continue;
        };
        let dst = rest.split_whitespace().next().unwrap_or("");
        if let Some((_, p)) = dst.rsplit_once(':') {
            if let Ok(p) = p.parse::<u16>() {
                if p > 0 {
                    out.insert(p);
                }
            }
        }
    }
}

/// Every port of the role catalog.
fn catalog_ports() -> BTreeSet<u16> {
    let cat = portwarden::catalog::Catalog::builtin().expect("built-in catalog");
    let mut out = BTreeSet::new();
    let mut add = |l: &portwarden::catalog::PortList| {
        for r in &l.0 {
            out.insert(r.first());
            out.insert(r.last());
        }
    };
    for role in cat.roles() {
        for req in &role.requirements {
            if let Some(l) = &req.ports {
                add(l);
            }
            if let Some(s) = req
                .port_set
                .as_ref()
                .and_then(|n| cat.port_set(n.get_ref()))
            {
                for l in s.values.values() {
                    add(l);
                }
            }
        }
    }
    out.remove(&0);
    out
}

// -------------------------------------------------------- source addresses

/// Addresses the topology already uses, or that make no sense as sources.
fn unusable(a: IpAddr) -> bool {
    let taken: [IpNet; 8] = [
        "192.0.2.0/24".parse().unwrap(),
        "10.99.0.0/24".parse().unwrap(),
        "2001:db8:1::/64".parse().unwrap(),
        "fd00:99::/64".parse().unwrap(),
        "198.51.100.7/32".parse().unwrap(),
        "10.0.0.10/32".parse().unwrap(),
        "2001:db8:ff::/64".parse().unwrap(),
        "fd00:aa::/64".parse().unwrap(),
    ];
    if taken.iter().any(|n| n.contains(&a)) || a.is_loopback() || a.is_unspecified() {
        return true;
    }
    match a {
        IpAddr::V4(v) => {
            let o = v.octets();
            o[0] == 0 || o[0] >= 224 || v.is_link_local() || o[3] == 255 || o[3] == 0
        }
        IpAddr::V6(v) => {
            let s = v.segments();
            s[0] & 0xffc0 == 0xfe80
                || s[0] >= 0xff00
                || s[..5] == [0; 5]
                || s[0] == 0x2002
                || v.to_ipv4_mapped().is_some()
        }
    }
}

/// Candidate addresses from a JSON value: addresses, prefixes, ranges.
fn collect_addrs(v: &Value, rng: &mut Rng, out: &mut Vec<IpAddr>) {
    match v {
        Value::String(s) => {
            if let Ok(a) = s.parse::<IpAddr>() {
                out.push(a);
            }
        }
        Value::Object(o) => {
            if let Some(p) = o.get("prefix") {
                if let (Some(a), Some(len)) = (
                    p["addr"].as_str().and_then(|a| a.parse::<IpAddr>().ok()),
                    p["len"].as_u64(),
                ) {
                    if let Ok(net) = IpNet::new(a, len as u8) {
                        // An address inside the prefix, not its first.
                        let span = net.hosts().take(1000).count().max(1) as u64;
                        let pick = 1 + rng.below(span);
                        if let Some(h) = net.hosts().nth(pick as usize % span as usize) {
                            out.push(h);
                        }
                    }
                }
                return;
            }
            if let Some(Value::Array(r)) = o.get("range") {
                if let Some(a) = r.first() {
                    collect_addrs(a, rng, out);
                }
                return;
            }
            o.values().for_each(|x| collect_addrs(x, rng, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_addrs(x, rng, out)),
        _ => {}
    }
}

/// Up to two IPv4 and two IPv6 source addresses the fixture matches on
/// (`saddr` matches and address sets), outside the topology's own networks.
fn fixture_sources(nft: &Value, rng: &mut Rng) -> Vec<IpAddr> {
    let mut cands = Vec::new();
    fn walk(v: &Value, rng: &mut Rng, out: &mut Vec<IpAddr>) {
        match v {
            Value::Object(o) => {
                if let Some(m) = o.get("match") {
                    if m["left"].to_string().contains("\"saddr\"") {
                        collect_addrs(&m["right"], rng, out);
                    }
                }
                o.values().for_each(|x| walk(x, rng, out));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, rng, out)),
            _ => {}
        }
    }
    for it in nft["nftables"].as_array().into_iter().flatten() {
        if let Some(r) = it.get("rule") {
            walk(&r["expr"], rng, &mut cands);
        }
        for kind in ["set", "map"] {
            if let Some(s) = it.get(kind) {
                let ty = s["type"].to_string();
                if ty.contains("ipv4_addr") || ty.contains("ipv6_addr") {
                    let elems = s["elem"].as_array().cloned().unwrap_or_default();
                    // Sample big sets instead of walking them whole.
                    for _ in 0..elems.len().min(8) {
                        let e = &elems[rng.below(elems.len() as u64) as usize];
                        let e = match e {
                            Value::Array(kv) if kv.len() == 2 => &kv[0],
                            other => other,
                        };
                        collect_addrs(e, rng, &mut cands);
                    }
                }
            }
        }
    }
    cands.retain(|a| !unusable(*a));
    cands.sort();
    cands.dedup();
    let mut out = Vec::new();
    for v6 in [false, true] {
        let mut fam: Vec<IpAddr> = cands
            .iter()
            .copied()
            .filter(|a| a.is_ipv6() == v6)
            .collect();
        for _ in 0..2 {
            if fam.is_empty() {
                break;
            }
            out.push(fam.remove(rng.below(fam.len() as u64) as usize));
        }
    }
    out
}

// ------------------------------------------------------------------ probes

fn build_probes(srcs: &[Source], ports: &[u16], rng: &mut Rng) -> Vec<Probe> {
    let mut v = Vec::new();
    let mut sport = 20000u16;
    let mut push = |from: IpAddr, link: &'static Link, port: u16, v: &mut Vec<Probe>| {
        for proto in ["tcp", "udp"] {
            sport += 1;
            v.push(Probe {
                proto,
                from,
                to: host_addr(link, from.is_ipv6()),
                iif: link.host_if,
                sport,
                port,
            });
        }
    };
    for s in srcs {
        if s.primary {
            for &p in ports {
                push(s.addr, s.link, p, &mut v);
            }
        } else {
            let mut pick: BTreeSet<u16> = BTreeSet::new();
            while pick.len() < PORTS_PER_EXTRA_SOURCE.min(ports.len()) {
                pick.insert(ports[rng.below(ports.len() as u64) as usize]);
            }
            for p in pick {
                push(s.addr, s.link, p, &mut v);
            }
        }
    }
    v
}

/// Whether an answer rests on state that earlier probes can change.
fn stateful(answer: &Value) -> bool {
    answer["assumptions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .any(|a| {
            a.starts_with("rate limits")
                || a.starts_with("connection counts")
                || a.starts_with("xt recent")
                || a.starts_with("dynamic sets")
        })
}

/// Runs `explain --batch` in the host namespace.
fn explain_batch(ns: &Netns, probes: &[Probe]) -> Vec<Value> {
    let queries: Vec<Value> = probes.iter().map(Probe::json).collect();
    let answers = ns.explain_batch(&queries);
    for (p, a) in probes.iter().zip(&answers) {
        assert!(a.get("error").is_none(), "{}: {a}", p.describe());
    }
    answers
}

/// `portwarden exposure --json` compared with explain, probe by probe.
fn exposure_check(ns: &Netns, probes: &[Probe], answers: &[Value]) -> Vec<String> {
    let out = ns.portwarden(&["exposure", "--json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exposure --json failed: {err}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("exposure JSON");
    exposure_disagreements(&v, probes, answers)
}

/// Probes where "explain accepts" and "an accepting opening of the exposure
/// contains the probe" differ.
fn exposure_disagreements(exposure: &Value, probes: &[Probe], answers: &[Value]) -> Vec<String> {
    let openings = exposure["openings"].as_array().cloned().unwrap_or_default();
    let within = |r: &Value, n: u16| {
        r[0].as_u64().is_some_and(|a| a <= u64::from(n))
            && r[1].as_u64().is_some_and(|b| u64::from(n) <= b)
    };
    let mut bad = Vec::new();
    for (p, a) in probes.iter().zip(answers) {
        let explain_accepts = a["verdict"] == "accept";
        let open = openings.iter().any(|o| {
            o["verdict"] == "accept"
                && o["proto"] == p.proto
                && o["iif"] == p.iif
                && o["to"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|t| t.as_str().and_then(|t| t.parse::<IpAddr>().ok()) == Some(p.to))
                && within(&o["ports"], p.port)
                && within(&o["sports"], p.sport)
                && o["sources"].as_array().into_iter().flatten().any(|s| {
                    s.as_str()
                        .and_then(|s| s.parse::<IpNet>().ok())
                        .is_some_and(|n| n.contains(&p.from))
                })
        });
        if open != explain_accepts {
            bad.push(format!(
                "{}: explain {}, exposure {}",
                p.describe(),
                a["verdict"],
                if open {
                    "has an accepting opening"
                } else {
                    "has none"
                }
            ));
        }
    }
    bad
}

#[test]
fn exposure_comparison_follows_the_contract() {
    // The JSON of the contract's example, and probes inside and outside it.
    let exposure = json!({"generation": 1, "openings": [
        {"family": "ipv4", "proto": "tcp", "iif": "pw-pub", "to": ["192.0.2.1"],
         "ports": [22, 22], "sports": [0, 65535], "sources": ["192.0.2.0/24"],
         "verdict": "accept", "decided_by": null, "reason": null},
        {"family": "ipv4", "proto": "tcp", "iif": "pw-pub", "to": ["192.0.2.1"],
         "ports": [6162, 6162], "sports": [0, 65535], "sources": ["0.0.0.0/0"],
         "verdict": "unknown", "decided_by": null, "reason": "socket"}]});
    let p = |port: u16, from: &str| Probe {
        proto: "tcp",
        from: parse(from),
        to: parse("192.0.2.1"),
        iif: "pw-pub",
        sport: 40000,
        port,
    };
    let probes = [
        p(22, "192.0.2.2"),
        p(22, "198.51.100.7"),
        p(6162, "192.0.2.2"),
    ];
    let agree = [
        json!({"verdict": "accept"}),
        json!({"verdict": "drop"}),
        json!({"verdict": "unknown"}),
    ];
    assert!(exposure_disagreements(&exposure, &probes, &agree).is_empty());
    let disagree = [
        json!({"verdict": "drop"}),
        json!({"verdict": "accept"}),
        json!({"verdict": "accept"}),
    ];
    assert_eq!(
        exposure_disagreements(&exposure, &probes, &disagree).len(),
        3
    );
}

/// The outcome for one fixture.
#[derive(Default)]
struct Report {
    probes: usize,
    kernel_accepted: usize,
    stateful: usize,
    retested: usize,
    disagreements: Vec<String>,
    unknown: Vec<String>,
    exposure: Vec<String>,
    /// Probes explain says the routing decision drops (`routing` set).
    routing_refused: usize,
    seconds: f64,
}

fn run_fixture(name: &str) -> Report {
    run_fixture_with(name, &[])
}

/// [`run_fixture`] with the host's `net.ipv4.conf.KEY.rp_filter` set to
/// the given values first.
fn run_fixture_with(name: &str, rp_filter: &[(&str, u8)]) -> Report {
    let t0 = Instant::now();
    let mut rng = Rng::seeded(name);
    let fixed = fixed_extras();

    // Read the ruleset for ports and addresses, then add the fixture's own
    // sources.
    let env = Env::new(name, &fixed);
    for (k, v) in rp_filter {
        common::run(
            env.topo
                .host
                .cmd("sysctl")
                .args(["-qw", &format!("net.ipv4.conf.{k}.rp_filter={v}")]),
        );
    }
    let nft = env.topo.host.nft_json();
    let dump = env.topo.host.dump_json();
    let derived: Vec<Extra> = fixture_sources(&nft, &mut rng)
        .into_iter()
        .map(|a| Extra {
            addr: a,
            on_link: None,
            via: &PUBLIC,
        })
        .collect();
    env.add_extras(&derived);
    let extras: Vec<Extra> = fixed.iter().chain(&derived).cloned().collect();
    let mut ports = ruleset_ports(&nft);
    xt_ports(&dump, &mut ports);
    header_ports(&fixture(name), &mut ports);
    let mut all: BTreeSet<u16> = BTreeSet::new();
    for &p in &ports {
        all.extend([p.saturating_sub(1).max(1), p, p.saturating_add(1)]);
    }
    all.extend(BASE_PORTS);
    all.extend(catalog_ports());
    for _ in 0..RANDOM_PORTS {
        all.insert(1 + rng.below(65535) as u16);
    }
    let ports: Vec<u16> = all.into_iter().collect();
    if std::env::var_os("PW_KERNEL_DIFF_VERBOSE").is_some() {
        let srcs: Vec<String> = extras.iter().map(|x| x.addr.to_string()).collect();
        eprintln!(
            "  {name}: ports {ports:?}; extra sources {}",
            srcs.join(" ")
        );
    }

    let probes = build_probes(&sources(&extras), &ports, &mut rng);
    let answers = explain_batch(&env.topo.host, &probes);
    let exposure = exposure_check(&env.topo.host, &probes, &answers);
    env.add_recorder();

    // Stateless probes first, then those whose answer rests on state.
    let (mut first, mut later): (Vec<usize>, Vec<usize>) = (Vec::new(), Vec::new());
    for (i, a) in answers.iter().enumerate() {
        if stateful(a) {
            later.push(i);
        } else {
            first.push(i);
        }
    }
    let order: Vec<usize> = first.iter().chain(&later).copied().collect();
    let batch: Vec<&Probe> = order.iter().map(|&i| &probes[i]).collect();
    let mut seen = env.send(&batch, 0.0002);
    drop(env);

    let key = |p: &Probe| (p.proto.to_string(), p.sport);
    let disagrees = |seen: &HashMap<(String, u16), Seen>, i: usize| {
        let kernel = seen.contains_key(&key(&probes[i]));
        answers[i]["verdict"] != "unknown" && (answers[i]["verdict"] == "accept") != kernel
    };
    // Stateful probes the kernel disagreed on: their first connection, alone.
    let retest: Vec<usize> = later
        .iter()
        .copied()
        .filter(|&i| disagrees(&seen, i))
        .take(MAX_RETESTS)
        .collect();
    for &i in &retest {
        let env = Env::new(name, &extras);
        env.add_recorder();
        let alone = env.send(&[&probes[i]], 0.0);
        seen.remove(&key(&probes[i]));
        if let Some(s) = alone.get(&key(&probes[i])) {
            seen.insert(key(&probes[i]), s.clone());
        }
    }

    let mut r = Report {
        probes: probes.len(),
        stateful: later.len(),
        retested: retest.len(),
        exposure,
        ..Report::default()
    };
    for (i, (p, a)) in probes.iter().zip(&answers).enumerate() {
        let got = seen.get(&key(p));
        if got.is_some() {
            r.kernel_accepted += 1;
        }
        let ours = a["verdict"].as_str().unwrap_or("?");
        if a.get("routing").is_some() {
            r.routing_refused += 1;
        }
        let why = |a: &Value| {
            let mut s = String::new();
            if let Some(d) = a.get("decided_by") {
                let _ = write!(s, " decided by {d}");
            }
            if let Some(x) = a["reason"].as_str() {
                let _ = write!(s, " reason: {x}");
            }
            s
        };
        if ours == "unknown" {
            let reason = a["reason"].as_str().unwrap_or("");
            assert!(
                !reason.is_empty(),
                "{}: unknown without a reason",
                p.describe()
            );
            r.unknown.push(format!(
                "{}: kernel {}, ours unknown ({reason})",
                p.describe(),
                if got.is_some() {
                    "accepted"
                } else {
                    "did not accept"
                }
            ));
            continue;
        }
        if let Some(s) = got {
            // Recorded, but not as sent (NAT in input, wrong interface)?
            if s.iif != p.iif || s.saddr.parse::<IpAddr>().ok() != Some(p.from) {
                let nat = a.get("nat").map(|n| n.to_string()).unwrap_or_default();
                if nat.is_empty() || !nat.contains("snat") {
                    r.disagreements.push(format!(
                        "{}: kernel recorded it as iif {} saddr {} dport {}",
                        p.describe(),
                        s.iif,
                        s.saddr,
                        s.dport
                    ));
                }
            }
        }
        if disagrees(&seen, i) {
            r.disagreements.push(format!(
                "{}: kernel {}, ours {ours}{}{}",
                p.describe(),
                if got.is_some() {
                    "accepted"
                } else {
                    "did not accept"
                },
                why(a),
                if stateful(a) {
                    " (stateful; after a fresh retest)"
                } else {
                    ""
                }
            ));
        }
    }
    r.seconds = t0.elapsed().as_secs_f64();
    r
}

#[test]
fn explain_agrees_with_the_kernel_on_every_fixture() {
    if !require_root("explain_agrees_with_the_kernel_on_every_fixture") {
        return;
    }
    if !have_tool("python3") {
        eprintln!(
            "SKIPPED explain_agrees_with_the_kernel_on_every_fixture: needs python3 to send probes"
        );
        return;
    }
    let only = std::env::var("PW_KERNEL_DIFF_ONLY").ok();
    let t0 = Instant::now();
    let mut failures = BTreeMap::new();
    let mut exposure_failures = BTreeMap::new();
    let (mut total, mut ran, mut accepted) = (0, 0, 0);
    for name in all_fixtures() {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let missing: Vec<&str> = tools_for(&name)
            .iter()
            .copied()
            .filter(|t| !have_tool(t))
            .collect();
        if !missing.is_empty() {
            eprintln!("SKIPPED {name}: needs {}", missing.join(", "));
            continue;
        }
        let r = run_fixture(&name);
        ran += 1;
        total += r.probes;
        accepted += r.kernel_accepted;
        let exp = if r.exposure.is_empty() {
            "exposure agrees".to_string()
        } else {
            format!("exposure DIFFERS on {}", r.exposure.len())
        };
        eprintln!(
            "kernel_diff {name}: {} probes, kernel accepted {}, {} disagreements, {} unknown, {} stateful sent last, {} retested alone; {exp} ({:.1} s)",
            r.probes,
            r.kernel_accepted,
            r.disagreements.len(),
            r.unknown.len(),
            r.stateful,
            r.retested,
            r.seconds
        );
        for u in &r.unknown {
            eprintln!("  unknown (allowed, reason stated): {u}");
        }
        for d in &r.disagreements {
            eprintln!("  DISAGREEMENT {name}: {d}");
        }
        for d in &r.exposure {
            eprintln!("  EXPOSURE {name}: {d}");
        }
        if !r.exposure.is_empty() {
            exposure_failures.insert(name.clone(), r.exposure.len());
        }
        if !r.disagreements.is_empty() {
            failures.insert(name.clone(), r.disagreements.len());
        }
    }
    eprintln!(
        "kernel_diff: {ran} fixtures, {total} probes in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    assert!(
        ran == 0 || accepted > 0,
        "the recorder saw nothing at all: the probes or the recorder are broken"
    );
    assert!(
        only.is_some() || ran >= 20,
        "expected at least 20 fixtures, ran {ran}"
    );
    assert!(
        failures.is_empty(),
        "explain disagrees with the kernel: {failures:?}"
    );
    assert!(
        exposure_failures.is_empty(),
        "exposure disagrees with explain: {exposure_failures:?}"
    );
}

/// Reverse-path filtering on, strict on the public link and loose on the
/// private one: every source the probes spoof from the other link (the
/// remote networks behind each link, the fixtures' own addresses) meets
/// the kernel's routing decision. A few fixtures with different rulesets
/// (explain and the exposure map both checked, as above).
#[test]
fn explain_agrees_with_the_kernel_under_reverse_path_filtering() {
    if !require_root("explain_agrees_with_the_kernel_under_reverse_path_filtering") {
        return;
    }
    if !have_tool("python3") {
        eprintln!(
            "SKIPPED explain_agrees_with_the_kernel_under_reverse_path_filtering: needs python3"
        );
        return;
    }
    let rp = [("all", 0), ("default", 0), ("pw-pub", 1), ("pw-priv", 2)];
    let mut failures = Vec::new();
    let mut refused = 0;
    for name in [
        "backup-host-basic.nft",
        "rpfilter-raw.nft",
        "nat-gateway.nft",
        "firewalld-zones.nft",
        "fail2ban-blocklist.nft",
    ] {
        let r = run_fixture_with(name, &rp);
        eprintln!(
            "kernel_diff (rp_filter) {name}: {} probes, kernel accepted {}, {} disagreements, {} unknown, exposure differs on {} ({:.1} s)",
            r.probes,
            r.kernel_accepted,
            r.disagreements.len(),
            r.unknown.len(),
            r.exposure.len(),
            r.seconds
        );
        refused += r.routing_refused;
        for d in r.disagreements.iter().chain(&r.exposure) {
            eprintln!("  DISAGREEMENT {name}: {d}");
            failures.push(format!("{name}: {d}"));
        }
    }
    assert!(
        refused > 0,
        "no probe met reverse-path filtering: the test does not test it"
    );
    assert!(failures.is_empty(), "{} disagreements", failures.len());
}
