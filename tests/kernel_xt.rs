//! The xt extensions iptables-nft writes, against the real kernel: rules
//! made by `iptables-nft` (and the nft statements they stand for) in the
//! host namespace of a [`Topology`], real SYNs and datagrams from the peer
//! (non-blocking `connect`s: the SYN a Linux stack really sends, with its
//! options), and `portwarden explain --batch` asked about each.
//!
//! - `docker_published_ports_are_followed_through_dnat`: the rules Docker
//!   writes for a published port (nat `PREROUTING -m addrtype --dst-type
//!   LOCAL -j DOCKER`, `DOCKER` with `! -i docker0 ... -j DNAT`, filter
//!   `FORWARD` through `DOCKER-USER`, `DOCKER-ISOLATION-STAGE-1/2` and
//!   `DOCKER`, `MASQUERADE`), a bridge and a container namespace, plus an
//!   xt `REDIRECT`; and the host's own connections through nat `OUTPUT -j
//!   DOCKER` (`explain_output`, in-process), which must reach the container;
//! - `nfqueue_without_a_listener_drops_or_bypasses`: xt `NFQUEUE`, with
//!   and without bypass, with no program listening (this kernel has no
//!   `nft_queue`: the nft `queue` statement, evaluated by the same code,
//!   is covered by the unit tests);
//! - `tcp_options_and_other_matches_follow_a_real_syn`: `--tcp-option`,
//!   nft `tcp option`, `length`, `tcpmss`, `ecn`, `devgroup`, `helper`,
//!   `rpfilter`, and the matches that stay `unknown` (`mac`, `statistic`,
//!   `string`, `socket`), which must name themselves.
//!
//! What the kernel did is read from recorder tables: the last input
//! chain (`inet pw_seen`, see `tests/common`), a first forward chain (the
//! packet was routed on, with its translated destination) and the
//! container's own input. An answer `accept` must have reached the input
//! recorder (after a `redirect`, on the translated port), `forwarded` the
//! forward recorder with the translated destination, `drop`/`reject`
//! neither; `portwarden exposure --json` must agree with every answer.
//! Needs root, python3 and iptables-nft (prints SKIPPED
//! otherwise).

mod common;

use common::packets::{self, Packet, Seen};
use common::{have_tool, require_root, run, Netns, Topology, PRIVATE, PUBLIC};
use portwarden::eval::{Evaluator, OutProbe, Verdict as OutVerdict, L4};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::IpAddr;

/// One probe from the peer.
#[derive(Clone, Debug)]
struct Probe {
    proto: &'static str,
    from: &'static str,
    to: &'static str,
    iif: &'static str,
    port: u16,
    sport: u16,
}

impl Probe {
    fn json(&self) -> Value {
        json!({"proto": self.proto, "port": self.port, "from": self.from, "to": self.to,
               "iif": self.iif, "sport": self.sport})
    }
    fn packet(&self) -> Packet {
        Packet {
            proto: self.proto.to_string(),
            from: self.from.parse().expect("address"),
            to: self.to.parse().expect("address"),
            sport: self.sport,
            port: self.port,
        }
    }
}

/// Probes of `proto` from each `(from, to, iif)` to each port, numbered
/// source ports from `first_sport`.
fn probes(
    proto: &'static str,
    paths: &[(&'static str, &'static str, &'static str)],
    ports: &[u16],
    first_sport: u16,
) -> Vec<Probe> {
    let mut v = Vec::new();
    for &(from, to, iif) in paths {
        for &port in ports {
            v.push(Probe {
                proto,
                from,
                to,
                iif,
                port,
                sport: first_sport + v.len() as u16,
            });
        }
    }
    v
}

fn skip(test: &str) -> bool {
    if !require_root(test) {
        return true;
    }
    for t in ["python3", "iptables-nft", "ip6tables-nft"] {
        if !have_tool(t) {
            eprintln!("SKIPPED {test}: {t} is not installed");
            return true;
        }
    }
    false
}

/// Runs `iptables-nft` (or `ip6tables-nft` with `v6`) in `ns`.
fn ipt(ns: &Netns, v6: bool, args: &str) {
    let tool = if v6 { "ip6tables-nft" } else { "iptables-nft" };
    run(ns
        .cmd(tool)
        .arg("-w")
        .args(args.split_whitespace().collect::<Vec<_>>()));
}

fn sysctl(ns: &Netns, kv: &str) {
    run(ns.cmd("sysctl").args(["-qw", kv]));
}

/// Static neighbour entries on the peer for the host's addresses.
fn neighbours(t: &Topology) {
    for l in [&PUBLIC, &PRIVATE] {
        let link: Value =
            serde_json::from_slice(&t.host.ip(&["-j", "link", "show", l.host_if]).stdout)
                .expect("ip -j link");
        let mac = link[0]["address"].as_str().expect("MAC").to_string();
        for a in [l.host4, l.host6] {
            t.peer.ip(&[
                "neigh",
                "replace",
                a,
                "lladdr",
                &mac,
                "dev",
                l.peer_if,
                "nud",
                "permanent",
            ]);
        }
    }
}

/// Records every TCP/UDP packet the host routes on, with its destination
/// (after DNAT), before any forward chain of the ruleset.
const FORWARD_RECORDER: &str = r#"
table inet pw_fwd {
  set s4 { type ipv4_addr . inet_proto . inet_service . inet_service; flags dynamic; size 65535; }
  chain pass {
    type filter hook forward priority -1000; policy accept;
    meta nfproto ipv4 meta l4proto { tcp, udp } add @s4 { ip daddr . meta l4proto . th sport . th dport }
  }
}
"#;

/// A forwarded packet: destination address and port, by (proto, sport).
fn forwarded(host: &Netns) -> HashMap<(String, u16), (IpAddr, u16)> {
    let out = run(host
        .cmd("nft")
        .args(["-j", "list", "set", "inet", "pw_fwd", "s4"]));
    let v: Value = serde_json::from_slice(&out.stdout).expect("nft -j");
    let mut m = HashMap::new();
    for o in v["nftables"].as_array().into_iter().flatten() {
        for e in o["set"]["elem"].as_array().into_iter().flatten() {
            let val = if e.get("elem").is_some() {
                &e["elem"]["val"]
            } else {
                e
            };
            let c = val["concat"].as_array().expect("concat element");
            let proto = match &c[1] {
                Value::String(s) => s.clone(),
                Value::Number(n) if n.as_u64() == Some(6) => "tcp".into(),
                Value::Number(n) if n.as_u64() == Some(17) => "udp".into(),
                other => other.to_string(),
            };
            let daddr: IpAddr = c[0].as_str().expect("daddr").parse().expect("address");
            m.insert(
                (proto, c[2].as_u64().expect("sport") as u16),
                (daddr, c[3].as_u64().expect("dport") as u16),
            );
        }
    }
    m
}

/// Sends `probes` from the peer and compares what the kernel did with
/// the answers, and the exposure map with the answers. Returns the
/// disagreements, and the answers.
fn compare(t: &Topology, probes: &[Probe], with_forward: bool) -> (Vec<String>, Vec<Value>) {
    let answers = t
        .host
        .explain_batch(&probes.iter().map(Probe::json).collect::<Vec<_>>());
    // The exposure map, before the recorders join the ruleset.
    let exposure_bad = exposure_disagreements(&t.host, probes, &answers);
    packets::add_recorder(&t.host);
    if with_forward {
        t.host.nft_text(FORWARD_RECORDER);
    }
    let batch: Vec<Packet> = probes.iter().map(Probe::packet).collect();
    packets::send(&t.peer, &batch, 0.02);
    let input: HashMap<(String, u16), Seen> = packets::seen(&t.host)
        .into_iter()
        .map(|s| ((s.proto.clone(), s.sport), s))
        .collect();
    let fwd = if with_forward {
        forwarded(&t.host)
    } else {
        HashMap::new()
    };
    let mut bad = Vec::new();
    for (p, a) in probes.iter().zip(&answers) {
        let key = (p.proto.to_string(), p.sport);
        let verdict = a["verdict"].as_str().unwrap_or("?");
        let nat_port = a["nat"]["port"].as_u64().map(|x| x as u16);
        let nat_addr: Option<IpAddr> = a["nat"]["addr"].as_str().and_then(|s| s.parse().ok());
        let kernel = match (input.get(&key), fwd.get(&key)) {
            (Some(s), _) => format!("accept (port {})", s.dport),
            (None, Some((d, port))) => format!("forwarded to {d}:{port}"),
            (None, None) => "dropped".to_string(),
        };
        let agrees = match verdict {
            "accept" => input
                .get(&key)
                .is_some_and(|s| s.dport == nat_port.unwrap_or(p.port)),
            "forwarded" => fwd.get(&key).is_some_and(|(d, port)| {
                *d == nat_addr.unwrap_or_else(|| p.to.parse().unwrap())
                    && *port == nat_port.unwrap_or(p.port)
            }),
            "drop" | "reject" => !input.contains_key(&key) && !fwd.contains_key(&key),
            _ => true, // unknown: checked by each test
        };
        if !agrees {
            bad.push(format!(
                "{} {}:{} -> {}:{} iif {}: kernel {kernel}, portwarden {verdict} {}",
                p.proto, p.from, p.sport, p.to, p.port, p.iif, a["nat"]
            ));
        }
    }
    bad.extend(exposure_bad);
    (bad, answers)
}

/// Probes where "explain accepts" and "an accepting opening of
/// `portwarden exposure --json` contains the probe" differ (as in
/// `tests/kernel_diff.rs`).
fn exposure_disagreements(ns: &Netns, probes: &[Probe], answers: &[Value]) -> Vec<String> {
    let out = ns.portwarden(&["exposure", "--json"]);
    assert!(
        out.status.success(),
        "exposure --json failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("exposure JSON");
    let openings = v["openings"].as_array().cloned().unwrap_or_default();
    let within = |r: &Value, n: u16| {
        r[0].as_u64().is_some_and(|a| a <= u64::from(n))
            && r[1].as_u64().is_some_and(|b| u64::from(n) <= b)
    };
    let mut bad = Vec::new();
    for (p, a) in probes.iter().zip(answers) {
        let (from, to): (IpAddr, IpAddr) = (p.from.parse().unwrap(), p.to.parse().unwrap());
        let open = openings.iter().any(|o| {
            o["verdict"] == "accept"
                && o["proto"] == p.proto
                && o["iif"] == p.iif
                && o["to"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|t| t.as_str().and_then(|t| t.parse::<IpAddr>().ok()) == Some(to))
                && within(&o["ports"], p.port)
                && within(&o["sports"], p.sport)
                && o["sources"].as_array().into_iter().flatten().any(|s| {
                    s.as_str()
                        .and_then(|s| s.parse::<ipnet::IpNet>().ok())
                        .is_some_and(|n| n.contains(&from))
                })
        });
        if open != (a["verdict"] == "accept") {
            bad.push(format!(
                "exposure: {} {}:{} -> {}:{} iif {}: explain {}, exposure {}",
                p.proto,
                p.from,
                p.sport,
                p.to,
                p.port,
                p.iif,
                a["verdict"],
                if open {
                    "accepts"
                } else {
                    "has no accepting opening"
                }
            ));
        }
    }
    bad
}

// ------------------------------------------------------------------ Docker

/// The rules Docker (20.10-24.x, iptables backend = iptables-nft here)
/// writes for one container 172.17.0.2 on `docker0` publishing 8080/tcp
/// -> 80 and 5353/udp -> 53, in its order; plus a host rule dropping
/// 2222/tcp and an xt REDIRECT of 2500 to 6162 on the private side.
const DOCKER_RULES: &[&str] = &[
    "-t nat -N DOCKER",
    "-t nat -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER",
    "-t nat -A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER",
    "-t nat -A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE",
    "-t nat -A POSTROUTING -s 172.17.0.2/32 -d 172.17.0.2/32 -p tcp -m tcp --dport 80 -j MASQUERADE",
    "-t nat -A DOCKER -i docker0 -j RETURN",
    "-t nat -A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80",
    "-t nat -A DOCKER ! -i docker0 -p udp -m udp --dport 5353 -j DNAT --to-destination 172.17.0.2:53",
    "-N DOCKER",
    "-N DOCKER-ISOLATION-STAGE-1",
    "-N DOCKER-ISOLATION-STAGE-2",
    "-N DOCKER-USER",
    "-P FORWARD DROP",
    "-A FORWARD -j DOCKER-USER",
    "-A FORWARD -j DOCKER-ISOLATION-STAGE-1",
    "-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    "-A FORWARD -o docker0 -j DOCKER",
    "-A FORWARD -i docker0 ! -o docker0 -j ACCEPT",
    "-A FORWARD -i docker0 -o docker0 -j ACCEPT",
    "-A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT",
    "-A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p udp -m udp --dport 53 -j ACCEPT",
    "-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2",
    "-A DOCKER-ISOLATION-STAGE-1 -j RETURN",
    "-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP",
    "-A DOCKER-ISOLATION-STAGE-2 -j RETURN",
    "-A DOCKER-USER -j RETURN",
    // Not Docker: a host rule, and an xt REDIRECT.
    "-A INPUT -p tcp --dport 2222 -j DROP",
    "-t nat -A PREROUTING -i pw-priv -p tcp --dport 2500 -j REDIRECT --to-ports 6162",
];

#[test]
fn docker_published_ports_are_followed_through_dnat() {
    if skip("docker_published_ports_are_followed_through_dnat") {
        return;
    }
    let t = Topology::new("xd");
    let ctr = Netns::new("xd-c");
    // docker0 with the container's veth; the container routes through it.
    t.host.ip(&["link", "add", "docker0", "type", "bridge"]);
    t.host
        .ip(&["addr", "add", "172.17.0.1/16", "dev", "docker0"]);
    t.host.ip(&["link", "set", "docker0", "up"]);
    t.host.ip(&[
        "link", "add", "vethc", "type", "veth", "peer", "name", "eth0", "netns", &ctr.name,
    ]);
    t.host.ip(&["link", "set", "vethc", "master", "docker0"]);
    t.host.ip(&["link", "set", "vethc", "up"]);
    ctr.ip(&["addr", "add", "172.17.0.2/16", "dev", "eth0"]);
    ctr.ip(&["link", "set", "eth0", "up"]);
    ctr.ip(&["route", "add", "default", "via", "172.17.0.1"]);
    sysctl(&t.host, "net.ipv4.ip_forward=1");
    // The peer reaches the container network through the host, and a
    // second address of the host's private interface through the public
    // link.
    t.peer
        .ip(&["route", "add", "172.17.0.0/16", "via", PUBLIC.host4]);
    t.host
        .ip(&["addr", "add", "10.99.0.50/24", "dev", PRIVATE.host_if]);
    t.peer
        .ip(&["route", "add", "10.99.0.50/32", "via", PUBLIC.host4]);
    neighbours(&t);
    for r in DOCKER_RULES {
        ipt(&t.host, false, r);
    }

    let paths = [
        ("192.0.2.2", "192.0.2.1", "pw-pub"),
        ("10.99.0.2", "10.99.0.1", "pw-priv"),
        // A local address of the other interface: still LOCAL for addrtype.
        ("192.0.2.2", "10.99.0.50", "pw-pub"),
        // The container's own address, routed by the host: no DNAT.
        ("192.0.2.2", "172.17.0.2", "pw-pub"),
    ];
    let mut all = probes("tcp", &paths, &[8080, 80, 8081, 2222, 2500], 40000);
    all.extend(probes("udp", &paths, &[5353, 53], 41000));
    let (bad, answers) = compare(&t, &all, true);

    // The container itself saw the published ports' SYNs (Docker's
    // forward rules accept them) on the translated port.
    let (sent_to_ctr, in_ctr): (usize, Vec<Seen>) = {
        // The recorder was added to the host only; the container's view
        // is taken with a second round for the published ports.
        packets::add_recorder(&ctr);
        let published: Vec<Probe> = all
            .iter()
            .filter(|p| {
                p.to != "172.17.0.2" && matches!((p.proto, p.port), ("tcp", 8080) | ("udp", 5353))
            })
            .map(|p| Probe {
                sport: p.sport + 2000,
                ..p.clone()
            })
            .collect();
        packets::send(
            &t.peer,
            &published.iter().map(Probe::packet).collect::<Vec<_>>(),
            0.02,
        );
        (published.len(), packets::seen(&ctr))
    };

    let mut report = String::new();
    for (p, a) in all.iter().zip(&answers) {
        report.push_str(&format!(
            "{} {} -> {}:{} iif {}: {} {}\n",
            p.proto, p.from, p.to, p.port, p.iif, a["verdict"], a["nat"]
        ));
    }
    assert!(
        bad.is_empty(),
        "disagreements:\n{}\n{report}",
        bad.join("\n")
    );
    // Every answer is decided: nothing here is unknowable.
    let unknown: Vec<_> = all
        .iter()
        .zip(&answers)
        .filter(|(_, a)| a["verdict"] == "unknown")
        .map(|(p, a)| format!("{p:?}: {}", a["reason"]))
        .collect();
    assert!(
        unknown.is_empty(),
        "unknown answers: {unknown:#?}\n{report}"
    );
    // The published ports are DNATed to the container by the xt target.
    for (p, a) in all.iter().zip(&answers) {
        let published =
            p.to != "172.17.0.2" && matches!((p.proto, p.port), ("tcp", 8080) | ("udp", 5353));
        if published {
            assert_eq!(a["verdict"], "forwarded", "{p:?}: {a}");
            assert_eq!(a["nat"]["kind"], "dnat", "{p:?}: {a}");
            assert_eq!(a["nat"]["addr"], "172.17.0.2", "{p:?}: {a}");
            assert_eq!(a["nat"]["port"], if p.proto == "tcp" { 80 } else { 53 });
        }
    }
    assert_eq!(
        in_ctr.len(),
        sent_to_ctr,
        "the container received every published-port probe: {in_ctr:?}"
    );
    assert!(in_ctr
        .iter()
        .all(|s| s.dport == if s.proto == "tcp" { 80 } else { 53 }));

    // The host's own connections: nat OUTPUT sends those to a local
    // address (not 127.0.0.0/8) through DOCKER too.
    let ev = evaluator_in(&t.host);
    packets::remove_recorder(&ctr);
    packets::add_recorder(&ctr);
    let out: Vec<(OutProbe, &str)> = [
        ("192.0.2.1", 8080, "tcp"),
        ("10.99.0.1", 8080, "tcp"),
        ("10.99.0.50", 5353, "udp"),
        ("127.0.0.1", 8080, "tcp"),
        ("192.0.2.1", 8081, "tcp"),
    ]
    .iter()
    .enumerate()
    .map(|(i, &(to, port, proto))| {
        let src = if to == "127.0.0.1" { to } else { "192.0.2.1" };
        let l4 = if proto == "tcp" { L4::Tcp } else { L4::Udp };
        (
            OutProbe::new(
                l4,
                src.parse().unwrap(),
                to.parse().unwrap(),
                45000 + i as u16,
                port,
            ),
            proto,
        )
    })
    .collect();
    let answers: Vec<_> = out.iter().map(|(p, _)| ev.explain_output(p)).collect();
    packets::send(
        &t.host,
        &out.iter()
            .map(|(p, proto)| Packet {
                proto: proto.to_string(),
                from: p.saddr,
                to: p.daddr,
                sport: p.sport,
                port: p.dport,
            })
            .collect::<Vec<_>>(),
        0.02,
    );
    let in_ctr = packets::seen(&ctr);
    let in_host = packets::seen(&t.host);
    for ((p, _), a) in out.iter().zip(&answers) {
        assert_eq!(a.verdict, OutVerdict::Accept, "{p:?}: {a:?}");
        let to_ctr = in_ctr.iter().find(|s| s.sport == p.sport);
        let to_host = in_host.iter().find(|s| s.sport == p.sport);
        match &a.nat {
            Some(n) => {
                // DNATed to the container: it arrives there, on the port.
                assert_eq!(a.oif.as_deref(), Some("docker0"), "{p:?}: {a:?}");
                assert_eq!(n.addr.to_string(), "172.17.0.2");
                let s = to_ctr.unwrap_or_else(|| panic!("{p:?} reached the container: {a:?}"));
                assert_eq!(s.dport, n.port, "{p:?}");
            }
            None => {
                assert_eq!(a.oif.as_deref(), Some("lo"), "{p:?}: {a:?}");
                assert!(to_ctr.is_none() && to_host.is_some(), "{p:?}: {a:?}");
            }
        }
        let dnat = p.dport != 8081 && !p.daddr.is_loopback();
        assert_eq!(a.nat.is_some(), dnat, "{p:?}: {a:?}");
    }
}

/// The evaluator for `ns`'s live ruleset and routes, read in-process by a
/// thread that joined the namespace (as `tests/kernel_output.rs` does).
fn evaluator_in(ns: &Netns) -> Evaluator {
    use std::os::fd::AsRawFd;
    let path = format!("/run/netns/{}", ns.name);
    std::thread::spawn(move || {
        let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: setns on a valid namespace fd changes only this thread's
        // network namespace; the thread ends after reading.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        let snap = portwarden::nft::read_snapshot(&Default::default())
            .unwrap_or_else(|e| panic!("reading the snapshot: {e}"));
        let routes =
            portwarden::host::read_routes().unwrap_or_else(|e| panic!("reading the routes: {e}"));
        Evaluator::new(&snap, routes)
    })
    .join()
    .expect("evaluator thread")
}

// ----------------------------------------------------------------- NFQUEUE

#[test]
fn nfqueue_without_a_listener_drops_or_bypasses() {
    if skip("nfqueue_without_a_listener_drops_or_bypasses") {
        return;
    }
    let t = Topology::new("xq");
    neighbours(&t);
    for r in [
        "-A INPUT -p tcp --dport 9000 -j NFQUEUE --queue-num 3",
        "-A INPUT -p tcp --dport 9001 -j NFQUEUE --queue-num 3 --queue-bypass",
        "-A INPUT -p tcp --dport 9002 -j NFQUEUE --queue-balance 4:6 --queue-bypass",
        "-A INPUT -p udp --dport 9000 -j NFQUEUE --queue-num 3 --queue-bypass",
        // After a bypass the hook goes on: a later rule of the chain does
        // not run, later base chains do.
        "-A INPUT -p tcp --dport 9001 -j DROP",
    ] {
        ipt(&t.host, false, r);
    }
    ipt(
        &t.host,
        true,
        "-A INPUT -p tcp --dport 9000 -j NFQUEUE --queue-num 3",
    );
    ipt(
        &t.host,
        true,
        "-A INPUT -p tcp --dport 9001 -j NFQUEUE --queue-num 3 --queue-bypass",
    );
    t.host.nft_text(
        "table inet q {
           chain late {
             type filter hook input priority 10; policy accept;
             tcp dport 9002 drop
           }
         }",
    );
    let paths = [
        ("192.0.2.2", "192.0.2.1", "pw-pub"),
        ("2001:db8:1::2", "2001:db8:1::1", "pw-pub"),
    ];
    let all: Vec<Probe> = probes("tcp", &paths, &[9000, 9001, 9002, 9005], 42000)
        .into_iter()
        .chain(probes("udp", &paths[..1], &[9000], 42100))
        .collect();
    let (bad, answers) = compare(&t, &all, false);
    assert!(bad.is_empty(), "disagreements:\n{}", bad.join("\n"));
    for (p, a) in all.iter().zip(&answers) {
        assert_ne!(a["verdict"], "unknown", "{p:?}: {a}");
        if p.port == 9000 && p.proto == "tcp" {
            assert_eq!(a["verdict"], "drop", "{p:?}: {a}");
            let assumed = a["assumptions"].to_string();
            assert!(assumed.contains("NFQUEUE"), "{p:?}: {a}");
        }
    }
    // 9002 was bypassed by iptables, then dropped by the later chain.
    let a9002 = &answers[2];
    assert_eq!(a9002["verdict"], "drop");
    assert_eq!(a9002["decided_by"]["table"], "q");

    // A program bound to queue 3: the packets wait for its verdict (the
    // kernel delivers none of them), and portwarden says it cannot know.
    let mut listener = t
        .host
        .cmd("python3")
        .args(["-c", QUEUE_LISTENER, "3"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 listener");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(listener.stdout.as_mut().unwrap()),
        &mut line,
    )
    .expect("listener output");
    assert_eq!(line.trim(), "bound", "the listener bound queue 3");
    let listened = probes("tcp", &paths[..1], &[9000, 9001], 42200);
    let answers = t
        .host
        .explain_batch(&listened.iter().map(Probe::json).collect::<Vec<_>>());
    packets::send(
        &t.peer,
        &listened.iter().map(Probe::packet).collect::<Vec<_>>(),
        0.02,
    );
    let seen = packets::seen(&t.host);
    let _ = listener.kill();
    let _ = listener.wait();
    for (p, a) in listened.iter().zip(&answers) {
        assert_eq!(a["verdict"], "unknown", "{p:?}: {a}");
        let why = a["reason"].as_str().unwrap_or("");
        assert!(why.contains("queue 3") && why.contains("listens"), "{why}");
        assert!(
            !seen.iter().any(|s| s.sport == p.sport),
            "{p:?}: held by the queue"
        );
    }
}

/// Binds NFQUEUE queue `argv[1]` over nfnetlink (`NFQNL_MSG_CONFIG` with
/// `NFQNL_CFG_CMD_BIND`), prints `bound` once the kernel acknowledged it,
/// then holds the socket (and the queued packets) until killed.
const QUEUE_LISTENER: &str = r#"
import socket, struct, sys, time
q = int(sys.argv[1])
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)  # NETLINK_NETFILTER
s.bind((0, 0))
cmd = struct.pack("=BBH", 1, 0, 0)                      # NFQNL_CFG_CMD_BIND
attr = struct.pack("=HH", 4 + len(cmd), 1) + cmd         # NFQA_CFG_CMD
body = struct.pack("=BBH", 0, 0, socket.htons(q)) + attr # nfgenmsg
hdr = struct.pack("=IHHII", 16 + len(body), (3 << 8) | 2, 1 | 4, 1, 0)
s.send(hdr + body)
ack = s.recv(4096)
err = struct.unpack("=i", ack[16:20])[0]
if err != 0:
    sys.exit("bind failed: %d" % err)
print("bound", flush=True)
while True:
    time.sleep(1)
"#;

// ------------------------------------------------- TCP options and matches

#[test]
fn tcp_options_and_other_matches_follow_a_real_syn() {
    if skip("tcp_options_and_other_matches_follow_a_real_syn") {
        return;
    }
    let t = Topology::new("xo");
    neighbours(&t);
    // A source the host routes through the public link, also sent from the
    // private one (spoofed, for rpfilter).
    t.peer.ip(&["addr", "add", "198.51.100.7/32", "dev", "lo"]);
    t.host.ip(&[
        "route",
        "add",
        "198.51.100.7/32",
        "via",
        PUBLIC.peer4,
        "dev",
        PUBLIC.host_if,
    ]);
    t.host.ip(&["link", "set", PUBLIC.host_if, "group", "5"]);
    for v6 in [false, true] {
        for r in [
            "-A INPUT -p tcp --dport 7001 --tcp-option 8 -j DROP",
            "-A INPUT -p tcp --dport 7002 ! --tcp-option 4 -j DROP",
            "-A INPUT -p tcp --dport 7003 --tcp-option 19 -j DROP",
            "-A INPUT -p tcp --dport 7004 --tcp-option 1 -j DROP",
            "-A INPUT -p tcp --dport 7012 -m tcpmss --mss 1400:1500 -j DROP",
            "-A INPUT -p tcp --dport 7013 -m tcpmss --mss 1000:1399 -j DROP",
            "-A INPUT -p tcp --dport 7014 -m ecn --ecn-tcp-cwr -j DROP",
            "-A INPUT -p tcp --dport 7015 -m ecn ! --ecn-tcp-ece -j DROP",
            "-A INPUT -p tcp --dport 7016 -m devgroup --src-group 5 -j DROP",
            "-A INPUT -p tcp --dport 7017 -m helper --helper ftp -j DROP",
            "-A INPUT -p tcp --dport 7018 -m helper ! --helper ftp -j DROP",
            "-A INPUT -p tcp --dport 7020 -m mac --mac-source 02:00:00:00:00:01 -j DROP",
            "-A INPUT -p tcp --dport 7021 -m statistic --mode random --probability 0.5 -j DROP",
            "-A INPUT -p tcp --dport 7022 -m string --algo bm --string xyz -j DROP",
            "-A INPUT -p tcp --dport 7023 -m socket -j DROP",
            "-A INPUT -p tcp --dport 7024 -m statistic --mode random --probability 1 -j DROP",
            "-A INPUT -p tcp --dport 7025 -m statistic --mode nth --every 1 --packet 0 -j DROP",
            "-t raw -A PREROUTING -p tcp --dport 7030 -m rpfilter --invert -j DROP",
            "-t mangle -A PREROUTING -p tcp --dport 7031 -m rpfilter --loose --invert -j DROP",
        ] {
            ipt(&t.host, v6, r);
        }
    }
    ipt(
        &t.host,
        false,
        "-A INPUT -p tcp --dport 7010 -m length --length 60 -j DROP",
    );
    ipt(
        &t.host,
        false,
        "-A INPUT -p tcp --dport 7011 -m length --length 0:59 -j DROP",
    );
    ipt(
        &t.host,
        false,
        "-A INPUT -p tcp --dport 7019 -m ecn --ecn-ip-ect 0 -j DROP",
    );
    ipt(
        &t.host,
        true,
        "-A INPUT -p tcp --dport 7010 -m length --length 80 -j DROP",
    );
    ipt(
        &t.host,
        true,
        "-A INPUT -p tcp --dport 7011 -m length --length 61:79 -j DROP",
    );
    t.host.nft_text(
        "table inet opts {
           chain in {
             type filter hook input priority -10; policy accept;
             tcp dport 7041 tcp option timestamp exists drop
             tcp dport 7042 tcp option sack-perm missing drop
             tcp dport 7043 tcp option window exists drop
             tcp dport 7044 tcp option maxseg size 1400-1500 drop
             tcp dport 7045 tcp option fastopen exists drop
             tcp dport 7046 tcp option sack exists drop
             tcp dport 7047 tcp option window length 3 drop
             tcp dport 7048 meta length 60 drop
             tcp dport 7050 tcp option nop exists drop
             tcp dport 7051 tcp option eol exists drop
             tcp dport 7049 tcp option timestamp tsval 0 drop
           }
         }",
    );
    let decided: Vec<u16> = (7001..=7004)
        .chain(7010..=7019)
        .chain([7024, 7025, 7030, 7031])
        .chain(7041..=7048)
        .chain([7050, 7051])
        .collect();
    let unknowable: &[(u16, &str)] = &[
        (7020, "mac"),
        (7021, "statistic"),
        (7022, "string"),
        (7023, "socket"),
        (7049, "TCP"),
    ];
    let mut ports = decided.clone();
    ports.extend(unknowable.iter().map(|(p, _)| *p));
    let paths = [
        ("192.0.2.2", "192.0.2.1", "pw-pub"),
        ("10.99.0.2", "10.99.0.1", "pw-priv"),
        ("2001:db8:1::2", "2001:db8:1::1", "pw-pub"),
        ("fd00:99::2", "fd00:99::1", "pw-priv"),
        ("198.51.100.7", "192.0.2.1", "pw-pub"),
        ("198.51.100.7", "10.99.0.1", "pw-priv"),
    ];
    let all = probes("tcp", &paths, &ports, 43000);
    let (bad, answers) = compare(&t, &all, false);
    let mut report = String::new();
    for (p, a) in all.iter().zip(&answers) {
        report.push_str(&format!(
            "{} -> {}:{} iif {}: {} {}\n",
            p.from, p.to, p.port, p.iif, a["verdict"], a["reason"]
        ));
    }
    assert!(
        bad.is_empty(),
        "disagreements:\n{}\n{report}",
        bad.join("\n")
    );
    for (p, a) in all.iter().zip(&answers) {
        if decided.contains(&p.port) {
            assert_ne!(a["verdict"], "unknown", "{p:?}: {a}");
        }
        if let Some((_, name)) = unknowable.iter().find(|(port, _)| *port == p.port) {
            assert_eq!(a["verdict"], "unknown", "{p:?}: {a}");
            let reason = a["reason"].as_str().unwrap_or("");
            assert!(reason.contains(name), "{p:?}: the reason names {name}: {a}");
        }
        // Every answer that met a TCP option states the assumption.
        if [7001, 7002, 7003, 7041, 7042, 7043].contains(&p.port) {
            let assumed = a["assumptions"].to_string();
            assert!(
                assumed.contains("Linux SYN"),
                "{p:?}: the assumption is stated: {a}"
            );
        }
    }
}
