//! Kernel differential test of the output path: real connections opened by
//! the host, compared with [`Evaluator::explain_output`].
//!
//! For each fixture (the output-path fixtures in `tests/fixtures/output/`,
//! and every other fixture with output or postrouting chains, including the
//! rulesets ufw and iptables-nft build), in a fresh [`Topology`]:
//!
//! 1. the peer holds two remote addresses on its `lo` (10.0.0.10, routed by
//!    the host via the private link, and 203.0.113.5, via the public link),
//!    has reverse-path filtering off (a DNAT on the host can send a packet
//!    out of the other link), and the host has static neighbour entries for
//!    the peer (no ARP/ND depends on the ruleset);
//! 2. the fixture is loaded into the host; the evaluator is built in-process
//!    from the host namespace's live snapshot and routes (read over netlink
//!    from a thread that joined the namespace);
//! 3. the probes: TCP and UDP, from each host address to each peer address
//!    (both links, the remote addresses, IPv4 and IPv6), to every port the
//!    fixture mentions and their neighbours (sampled evenly down to
//!    [`MAX_PORTS`]), the ports of its header's expectations and common
//!    backup ports; each with its own source port;
//! 4. a recorder table on the peer (an input chain at priority 2147483647)
//!    records every TCP/UDP packet that arrives, and one python3 process in
//!    the host namespace opens a real connection (non-blocking connect) or
//!    sends one datagram per probe;
//! 5. "arrived at the peer" is compared with `verdict == accept`; for an
//!    arrival the peer-side link (the evaluator's output device), the source
//!    address (after SNAT/masquerade) and the destination port (after DNAT)
//!    must match too.
//!
//! An `unknown` answer is not compared; its reason must be one of the
//! documented ones ([`DOCUMENTED_UNKNOWN`]). Needs root and python3
//! (SKIPPED otherwise); a script fixture whose tool is missing is skipped
//! on its own.

mod common;

use common::packets::{self, Packet};
use common::{fixture, have_tool, require_root, run, tools_for, Topology, PRIVATE, PUBLIC};
use portwarden::eval::{OutProbe, Verdict, L4};
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::Instant;

/// The fixtures with output or postrouting chains.
const FIXTURES: &[&str] = &[
    "output/basic.nft",
    "output/marks-nat.nft",
    "output/order-reject.nft",
    "backup-host-basic.nft",
    "evault-agent.nft",
    "firewalld-zones.nft",
    "marks-ctmark.nft",
    "named-objects.nft",
    "nat-gateway.nft",
    "trap-notrack-untracked.nft",
    "gen/ufw-host.sh",
    "gen/iptables-xt.sh",
];

/// Reasons an `unknown` answer may give (documented limits of the output
/// path), by a part of their text.
const DOCUMENTED_UNKNOWN: &[&str] = &[
    // A route chain that changes the mark: re-routing then depends on
    // policy routing rules, which are not read.
    "policy routing",
];

/// (host source, peer destination) pairs probed.
const PAIRS: &[(&str, &str)] = &[
    ("192.0.2.1", "192.0.2.2"),
    ("10.99.0.1", "10.99.0.2"),
    ("10.99.0.1", "10.0.0.10"),
    ("192.0.2.1", "10.0.0.10"),
    ("192.0.2.1", "203.0.113.5"),
    ("2001:db8:1::1", "2001:db8:1::2"),
    ("fd00:99::1", "fd00:99::2"),
];

/// Ports always probed.
const BASE_PORTS: &[u16] = &[
    22, 53, 80, 123, 443, 2500, 2546, 2548, 3300, 5000, 6160, 6162, 8086, 8087, 10005, 65535,
];

/// Most ports probed per fixture (its own, sampled evenly; then the base
/// ports and those of its header's expectations).
const MAX_PORTS: usize = 80;

/// Every number in the fixture's text that can be a port, with its
/// neighbours, sampled down to [`MAX_PORTS`], plus [`BASE_PORTS`].
fn fixture_ports(name: &str) -> Vec<u16> {
    let text = std::fs::read_to_string(fixture(name)).expect("fixture text");
    let mut own = BTreeSet::new();
    for tok in text.split(|c: char| !c.is_ascii_digit()) {
        if let Ok(n) = tok.parse::<u32>() {
            for p in [n.saturating_sub(1), n, n + 1] {
                if (1..=65535).contains(&p) {
                    own.insert(p as u16);
                }
            }
        }
    }
    let own: Vec<u16> = own.into_iter().collect();
    let step = own.len().div_ceil(MAX_PORTS).max(1);
    let mut ports: BTreeSet<u16> = own.iter().step_by(step).copied().collect();
    ports.extend(BASE_PORTS);
    // The ports of the header's expectations (`-> ADDR:PORT`) always.
    for line in text
        .lines()
        .filter(|l| l.starts_with('#') && l.contains("->"))
    {
        let dst = line.split("->").nth(1).unwrap_or("");
        let dst = dst.split_whitespace().next().unwrap_or("");
        if let Some(p) = dst.rsplit(':').next().and_then(|p| p.parse().ok()) {
            ports.insert(p);
        }
    }
    ports.into_iter().collect()
}

/// The test topology plus remote peer addresses, no reverse-path filter on
/// the peer and static neighbours on the host.
fn topology(tag: &str) -> Topology {
    let t = Topology::new(tag);
    for a in ["10.0.0.10/32", "203.0.113.5/32"] {
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
    t.host.ip(&[
        "route",
        "add",
        "203.0.113.0/24",
        "via",
        PUBLIC.peer4,
        "dev",
        PUBLIC.host_if,
    ]);
    for key in ["all", "default", PUBLIC.peer_if, PRIVATE.peer_if] {
        run(t
            .peer
            .cmd("sysctl")
            .args(["-qw", &format!("net.ipv4.conf.{key}.rp_filter=0")]));
    }
    for l in [PUBLIC, PRIVATE] {
        let out = t.peer.ip(&["-j", "link", "show", "dev", l.peer_if]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip -j link");
        let mac = v[0]["address"].as_str().expect("peer MAC").to_string();
        for a in [l.peer4, l.peer6] {
            t.host.ip(&[
                "neigh",
                "replace",
                a,
                "lladdr",
                &mac,
                "dev",
                l.host_if,
                "nud",
                "permanent",
            ]);
        }
    }
    t
}

/// The peer-side interface of a host interface.
fn peer_side(host_if: &str) -> Option<&'static str> {
    [PUBLIC, PRIVATE]
        .into_iter()
        .find(|l| l.host_if == host_if)
        .map(|l| l.peer_if)
}

/// What one fixture gave.
#[derive(Default)]
struct Tally {
    probes: usize,
    agree: usize,
    accepted: usize,
    unknown: Vec<String>,
    bad: Vec<String>,
}

fn run_fixture(name: &str) -> Tally {
    let tag = name
        .rsplit('/')
        .next()
        .unwrap_or(name)
        .trim_end_matches(".nft")
        .trim_end_matches(".sh");
    let t = topology(&format!("o-{}", &tag[..tag.len().min(6)]));
    t.load_fixture(name);
    let ev = t.host.evaluator();
    let ports = fixture_ports(name);
    let mut probes: Vec<(OutProbe, Packet)> = Vec::new();
    let mut sport = 20000u16;
    for (from, to) in PAIRS {
        let (saddr, daddr): (IpAddr, IpAddr) = (from.parse().unwrap(), to.parse().unwrap());
        for proto in [L4::Tcp, L4::Udp] {
            for &port in &ports {
                sport += 1;
                probes.push((
                    OutProbe::new(proto, saddr, daddr, sport, port),
                    Packet {
                        proto: proto.to_string(),
                        from: saddr,
                        to: daddr,
                        sport,
                        port,
                    },
                ));
            }
        }
    }
    let answers: Vec<_> = probes.iter().map(|(p, _)| ev.explain_output(p)).collect();
    packets::add_recorder(&t.peer);
    let batch: Vec<Packet> = probes.iter().map(|(_, p)| p.clone()).collect();
    packets::send_lenient(&t.host, &batch, 0.001);
    let seen: HashMap<(String, u16), packets::Seen> = packets::seen(&t.peer)
        .into_iter()
        .map(|s| ((s.proto.clone(), s.sport), s))
        .collect();
    let mut tally = Tally {
        probes: probes.len(),
        ..Tally::default()
    };
    for ((p, _), a) in probes.iter().zip(&answers) {
        let what = format!(
            "{name}: {} {}:{} -> {}:{}",
            p.proto, p.saddr, p.sport, p.daddr, p.dport
        );
        if a.verdict == Verdict::Unknown {
            let reason = a.reason.clone().unwrap_or_default();
            if DOCUMENTED_UNKNOWN.iter().any(|d| reason.contains(d)) {
                tally.unknown.push(format!("{what}: {reason}"));
            } else {
                tally
                    .bad
                    .push(format!("{what}: undocumented unknown: {reason}"));
            }
            continue;
        }
        let arrived = seen.get(&(p.proto.to_string(), p.sport));
        let expect = a.verdict == Verdict::Accept;
        if arrived.is_some() != expect {
            tally.bad.push(format!(
                "{what}: kernel {}, explain_output {} ({}; oif {:?})",
                if arrived.is_some() {
                    "delivered it"
                } else {
                    "did not deliver it"
                },
                a.verdict,
                a.decided_by
                    .as_ref()
                    .map_or("no rule".into(), ToString::to_string),
                a.oif
            ));
            continue;
        }
        if let Some(s) = arrived {
            tally.accepted += 1;
            let want_if = a.oif.as_deref().and_then(peer_side);
            let (mut saddr, mut dport) = (p.saddr, p.dport);
            if let Some(n) = &a.nat {
                match n.kind.as_str() {
                    "dnat" | "redirect" => dport = n.port,
                    _ => saddr = n.addr,
                }
            }
            if want_if != Some(s.iif.as_str()) || s.saddr != saddr.to_string() || s.dport != dport {
                tally.bad.push(format!(
                    "{what}: arrived on {} from {} to port {}, explain_output says out of {:?} from {saddr} to port {dport}",
                    s.iif, s.saddr, s.dport, a.oif
                ));
                continue;
            }
        }
        tally.agree += 1;
    }
    tally
}

#[test]
fn explain_output_agrees_with_the_kernel() {
    if !require_root("explain_output_agrees_with_the_kernel") {
        return;
    }
    if !have_tool("python3") {
        eprintln!("SKIPPED explain_output_agrees_with_the_kernel: needs python3");
        return;
    }
    let start = Instant::now();
    let (mut probes, mut agree, mut accepted, mut unknown) = (0, 0, 0, 0);
    let mut bad = Vec::new();
    for name in FIXTURES {
        if let Some(t) = tools_for(name).iter().find(|t| !have_tool(t)) {
            eprintln!("SKIPPED fixture {name}: needs {t}");
            continue;
        }
        let t0 = Instant::now();
        let r = run_fixture(name);
        eprintln!(
            "{name}: {} probes, {} agree ({} delivered), {} unknown (documented), {} disagree, {:.1}s",
            r.probes,
            r.agree,
            r.accepted,
            r.unknown.len(),
            r.bad.len(),
            t0.elapsed().as_secs_f64()
        );
        for u in r.unknown.iter().take(3) {
            eprintln!("  unknown: {u}");
        }
        probes += r.probes;
        agree += r.agree;
        accepted += r.accepted;
        unknown += r.unknown.len();
        bad.extend(r.bad);
    }
    eprintln!(
        "kernel_output: {probes} probes, {agree} agree ({accepted} delivered, {} refused), {unknown} documented unknown, {} disagree, {:.1}s",
        agree - accepted,
        bad.len(),
        start.elapsed().as_secs_f64()
    );
    assert!(
        bad.is_empty(),
        "{} of {probes} probes disagree with the kernel:\n{}",
        bad.len(),
        bad.join("\n")
    );
    assert!(accepted > 0 && agree > accepted, "the probes test nothing");
}
