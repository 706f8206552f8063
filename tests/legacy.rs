//! Legacy iptables (x_tables) tables against the real kernel, each in
//! throwaway namespaces: `iptables-legacy`, `ip6tables-legacy` and `ferm`
//! are run by path inside `ip netns exec` only (the host's alternatives
//! and tables are never touched). The differential tests ask `explain`
//! first, then send real packets from the peer and compare with what
//! reached the host's last input chain.

mod common;

use common::packets::{self, Packet};
use common::{require_root, run, Netns, Topology, PRIVATE, PUBLIC};
use serde_json::{json, Value};
use std::net::IpAddr;

const IPTABLES: &str = "/usr/sbin/iptables-legacy";
const IP6TABLES: &str = "/usr/sbin/ip6tables-legacy";

fn have_legacy(test: &str) -> bool {
    if !require_root(test) {
        return false;
    }
    if !std::path::Path::new(IPTABLES).exists() || !std::path::Path::new(IP6TABLES).exists() {
        eprintln!("skipping {test}: {IPTABLES} or {IP6TABLES} not installed");
        return false;
    }
    true
}

/// Runs a legacy command (by path) inside the namespace.
fn legacy(ns: &Netns, cmd: &str, args: &[&str]) {
    run(ns.cmd(cmd).args(args));
}

fn explain(ns: &Netns, port: &str, from: &str) -> Value {
    let out = ns.portwarden(&["explain", port, "--from", from, "--json"]);
    assert!(
        out.status.success(),
        "explain failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("explain --json is JSON")
}

fn legacy_tables(ns: &Netns) -> Vec<Value> {
    ns.dump_json()["legacy"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn table<'a>(tables: &'a [Value], family: &str, name: &str) -> &'a Value {
    tables
        .iter()
        .find(|t| t["family"] == family && t["name"] == name)
        .unwrap_or_else(|| panic!("no {family} {name} in {tables:#?}"))
}

fn chain<'a>(table: &'a Value, name: &str) -> &'a Value {
    table["chains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no chain {name} in {table:#}"))
}

/// Whether a TCP connection from the peer to `addr:port` is refused or
/// dropped (false) or answered (true: a RST from a closed port counts,
/// the packet reached the host's TCP stack).
fn reaches(t: &Topology, addr: &str, port: u16) -> bool {
    let script = format!("timeout 1 bash -c 'exec 3<>/dev/tcp/{addr}/{port}' 2>&1; true");
    let out = run(t.peer.cmd("bash").args(["-c", &script]));
    let text = String::from_utf8_lossy(&out.stdout);
    // "Connection refused": the host's stack answered; a timeout prints nothing.
    text.contains("refused")
}

#[test]
fn empty_legacy_filter_table_changes_no_answer() {
    if !have_legacy("empty_legacy_filter_table_changes_no_answer") {
        return;
    }
    let t = Topology::new("lg-empty");
    let before = explain(&t.host, "tcp/22", PUBLIC.peer4);
    assert_eq!(before["verdict"], "accept", "{before:#}");
    // Listing creates the (empty) table in this namespace.
    legacy(&t.host, IPTABLES, &["-L", "-n"]);
    legacy(&t.host, IP6TABLES, &["-L", "-n"]);
    let tables = legacy_tables(&t.host);
    for fam in ["ipv4", "ipv6"] {
        let f = table(&tables, fam, "filter");
        // 3 policies and the final error entry, as the kernel counts them.
        assert_eq!(f["entries"], 4, "{f:#}");
        for c in ["INPUT", "FORWARD", "OUTPUT"] {
            assert_eq!(chain(f, c)["rules"], json!([]));
            assert_eq!(chain(f, c)["policy"], "accept");
        }
    }
    assert_eq!(explain(&t.host, "tcp/22", PUBLIC.peer4), before);
    let v6 = explain(&t.host, "tcp/22", PUBLIC.peer6);
    assert_eq!(v6["verdict"], "accept", "{v6:#}");
    assert!(reaches(&t, PUBLIC.host4, 22), "the kernel lets it through");
}

#[test]
fn a_legacy_drop_rule_is_evaluated_and_dumped() {
    if !have_legacy("a_legacy_drop_rule_is_evaluated_and_dumped") {
        return;
    }
    let t = Topology::new("lg-drop");
    legacy(
        &t.host,
        IPTABLES,
        &["-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "DROP"],
    );
    // The kernel drops what nf_tables alone would accept.
    assert!(!reaches(&t, PUBLIC.host4, 22));
    assert!(reaches(&t, PUBLIC.host4, 23));

    let tables = legacy_tables(&t.host);
    let f = table(&tables, "ipv4", "filter");
    assert_eq!(f["entries"], 5, "{f:#}");
    let input = chain(f, "INPUT");
    assert_eq!(input["priority"], 0);
    assert_eq!(input["rules"].as_array().unwrap().len(), 1, "{f:#}");
    let rule = &input["rules"][0];
    assert_eq!(rule["ip"]["proto"]["proto"], 6, "{rule:#}");
    assert_eq!(rule["matches"][0]["name"], "tcp", "{rule:#}");
    assert_eq!(rule["matches"][0]["info"]["dport"], json!([22, 22]));
    assert_eq!(rule["target"]["verdict"], "drop", "{rule:#}");
    let text = String::from_utf8_lossy(&t.host.portwarden(&["dump"]).stdout).into_owned();
    assert!(
        text.contains("legacy iptables table filter (IPv4)"),
        "{text}"
    );
    // The rule as iptables-legacy-save writes it.
    let save =
        String::from_utf8_lossy(&run(&mut t.host.cmd("/usr/sbin/iptables-legacy-save")).stdout)
            .into_owned();
    let line = "-A INPUT -p tcp -m tcp --dport 22 -j DROP";
    assert!(save.contains(line), "{save}");
    assert!(text.contains(line), "{text}");

    let a = explain(&t.host, "tcp/22", PUBLIC.peer4);
    assert_eq!(a["verdict"], "drop", "{a:#}");
    assert!(
        a["decided_by"]
            .to_string()
            .contains("filter (iptables-legacy)"),
        "{a:#}"
    );
    // The text names the rule as iptables-save writes it.
    let out = t
        .host
        .portwarden(&["explain", "tcp/22", "--from", PUBLIC.peer4]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("\n  {line}\n")), "{text}");
    for port in ["tcp/23", "udp/53"] {
        let a = explain(&t.host, port, PUBLIC.peer4);
        assert_eq!(a["verdict"], "accept", "{a:#}");
    }
    // IPv6 has no legacy table: unchanged.
    assert_eq!(
        explain(&t.host, "tcp/22", PUBLIC.peer6)["verdict"],
        "accept"
    );

    // The exposure map: IPv4 22 dropped by the legacy rule, the rest open.
    let out = t.host.portwarden(&["exposure", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exp: Value = serde_json::from_slice(&out.stdout).unwrap();
    let openings = exp["openings"].as_array().unwrap();
    let covers_22 =
        |o: &&Value| o["ports"][0].as_u64() <= Some(22) && o["ports"][1].as_u64() >= Some(22);
    for o in openings
        .iter()
        .filter(|o| o["family"] == "ipv4" && o["proto"] == "tcp")
    {
        assert_ne!(o["verdict"], "unknown", "{o:#}");
        if covers_22(&o) {
            assert_eq!(o["verdict"], "drop", "{o:#}");
        }
    }
}

#[test]
fn legacy_ip6tables_drop_policy_drops_ipv6_only() {
    if !have_legacy("legacy_ip6tables_drop_policy_drops_ipv6_only") {
        return;
    }
    let t = Topology::new("lg-v6");
    legacy(&t.host, IP6TABLES, &["-P", "INPUT", "DROP"]);
    let tables = legacy_tables(&t.host);
    let f = table(&tables, "ipv6", "filter");
    assert_eq!(chain(f, "INPUT")["policy"], "drop", "{f:#}");
    assert_eq!(chain(f, "INPUT")["rules"], json!([]), "{f:#}");
    let a = explain(&t.host, "tcp/22", PUBLIC.peer6);
    assert_eq!(a["verdict"], "drop", "{a:#}");
    assert_eq!(
        a["decided_by"]["table"], "filter (ip6tables-legacy)",
        "{a:#}"
    );
    assert!(!reaches(&t, PUBLIC.host6, 22));
    assert_eq!(
        explain(&t.host, "tcp/22", PUBLIC.peer4)["verdict"],
        "accept"
    );
    assert!(reaches(&t, PUBLIC.host4, 22));
}

#[test]
fn nft_drop_before_the_legacy_table_stays_a_drop() {
    if !have_legacy("nft_drop_before_the_legacy_table_stays_a_drop") {
        return;
    }
    let t = Topology::new("lg-order");
    t.host.nft_text(
        "table ip early {\n  chain input {\n    type filter hook input priority -10; policy accept;\n    tcp dport 22 drop\n  }\n}\n",
    );
    legacy(
        &t.host,
        IPTABLES,
        &["-A", "INPUT", "-p", "tcp", "--dport", "23", "-j", "DROP"],
    );
    // Dropped at priority -10, before the legacy filter table (0).
    let a = explain(&t.host, "tcp/22", PUBLIC.peer4);
    assert_eq!(a["verdict"], "drop", "{a:#}");
    assert_eq!(a["decided_by"]["table"], "early", "{a:#}");
    assert!(!reaches(&t, PUBLIC.host4, 22));
    // Accepted by nf_tables, then dropped by the legacy table.
    let a = explain(&t.host, "tcp/23", PUBLIC.peer4);
    assert_eq!(a["verdict"], "drop", "{a:#}");
    assert_eq!(
        a["decided_by"]["table"], "filter (iptables-legacy)",
        "{a:#}"
    );
    assert!(!reaches(&t, PUBLIC.host4, 23));
}

/// One probe of a differential test: a TCP SYN or UDP datagram from the
/// peer, and when `explain` may answer `unknown` (a reason naming what is
/// not decoded), if ever.
struct Case {
    proto: &'static str,
    from: &'static str,
    to: &'static str,
    iif: &'static str,
    port: u16,
    /// `unknown` is allowed only with a reason containing this.
    unknown_ok: Option<&'static str>,
}

fn case(
    proto: &'static str,
    from: &'static str,
    to: &'static str,
    iif: &'static str,
    port: u16,
) -> Case {
    Case {
        proto,
        from,
        to,
        iif,
        port,
        unknown_ok: None,
    }
}

/// Asks `explain` for every case, then sends them for real: every
/// decided answer must agree with the kernel (accept: the packet reached
/// the last input chain; drop or reject: it did not), and the exposure map
/// must hold each probe in an accepting opening exactly when explain
/// accepts it. Returns the answers.
fn differential(t: &Topology, cases: &[Case]) -> Vec<Value> {
    let sport = |i: usize| 41000 + i as u16;
    let queries: Vec<Value> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| {
            json!({"proto": c.proto, "port": c.port, "from": c.from, "to": c.to,
                   "iif": c.iif, "sport": sport(i)})
        })
        .collect();
    let answers = t.host.explain_batch(&queries);
    // The exposure map from the same ruleset: an accepting opening holds
    // a probe exactly when explain accepts it.
    let out = t.host.portwarden(&["exposure", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exposure: Value = serde_json::from_slice(&out.stdout).expect("exposure JSON");
    let openings = exposure["openings"].as_array().cloned().unwrap_or_default();
    let within = |r: &Value, n: u16| {
        r[0].as_u64().is_some_and(|a| a <= u64::from(n))
            && r[1].as_u64().is_some_and(|b| u64::from(n) <= b)
    };
    let mut wrong = Vec::new();
    for (i, (c, a)) in cases.iter().zip(&answers).enumerate() {
        let from: IpAddr = c.from.parse().unwrap();
        let to: IpAddr = c.to.parse().unwrap();
        let open = openings.iter().any(|o| {
            o["verdict"] == "accept"
                && o["proto"] == c.proto
                && o["iif"] == c.iif
                && o["to"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|t| t.as_str().and_then(|t| t.parse::<IpAddr>().ok()) == Some(to))
                && within(&o["ports"], c.port)
                && within(&o["sports"], sport(i))
                && o["sources"].as_array().into_iter().flatten().any(|s| {
                    s.as_str()
                        .and_then(|s| s.parse::<ipnet::IpNet>().ok())
                        .is_some_and(|n| n.contains(&from))
                })
        });
        if open != (a["verdict"] == "accept") {
            wrong.push(format!(
                "{} {} -> {}:{} on {}: explain {}, exposure open: {open}",
                c.proto, c.from, c.to, c.port, c.iif, a["verdict"]
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    packets::add_recorder(&t.host);
    let sent: Vec<Packet> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| Packet {
            proto: c.proto.into(),
            from: c.from.parse().unwrap(),
            to: c.to.parse().unwrap(),
            sport: sport(i),
            port: c.port,
        })
        .collect();
    packets::send(&t.peer, &sent, 0.02);
    let seen = packets::seen(&t.host);
    packets::remove_recorder(&t.host);
    for (i, (c, a)) in cases.iter().zip(&answers).enumerate() {
        let from: IpAddr = c.from.parse().unwrap();
        let arrived = seen.iter().any(|s| {
            s.proto == c.proto
                && s.sport == sport(i)
                && s.saddr.parse::<IpAddr>().ok() == Some(from)
        });
        let what = format!("{} {} -> {}:{} on {}", c.proto, c.from, c.to, c.port, c.iif);
        match a["verdict"].as_str().unwrap_or("?") {
            "accept" if !arrived => {
                wrong.push(format!("{what}: explain accepts, the kernel drops"))
            }
            "drop" | "reject" if arrived => wrong.push(format!(
                "{what}: explain {}, the kernel accepts",
                a["verdict"]
            )),
            "unknown" => {
                let reason = a["reason"].as_str().unwrap_or_default();
                match c.unknown_ok {
                    Some(w) if reason.contains(w) => {}
                    _ => wrong.push(format!("{what}: unknown ({reason})")),
                }
            }
            "accept" | "drop" | "reject" => {}
            v => wrong.push(format!("{what}: {v}")),
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    answers
}

/// Every `-A` line `save` (`iptables-legacy-save` or
/// `ip6tables-legacy-save`) writes for the filter table is a line of
/// `dump`'s text for that table (`family`: `IPv4`, `IPv6`), but those
/// naming an extension in `skip` (options not spelled by portwarden).
fn dump_writes_what_save_writes(ns: &Netns, save: &str, family: &str, skip: &[&str]) {
    dump_writes_what_save_writes_for(ns, save, "filter", family, skip, 5);
}

/// [`dump_writes_what_save_writes`] for `table`, with at least `min` lines.
fn dump_writes_what_save_writes_for(
    ns: &Netns,
    save: &str,
    table: &str,
    family: &str,
    skip: &[&str],
    min: usize,
) {
    let save = run(ns.cmd(save).args(["-t", table])).stdout;
    let save = String::from_utf8_lossy(&save).into_owned();
    let dump = String::from_utf8_lossy(&ns.portwarden(&["dump"]).stdout).into_owned();
    let start = format!("legacy iptables table {table} ({family})");
    let section: Vec<&str> = dump
        .lines()
        .skip_while(|l| !l.starts_with(&start))
        .take_while(|l| l.trim() != "COMMIT")
        .map(str::trim)
        .collect();
    let mut n = 0;
    for line in save.lines().filter(|l| l.starts_with("-A ")) {
        if skip.iter().any(|s| line.contains(s)) {
            continue;
        }
        assert!(section.contains(&line), "{line:?} not in {section:#?}");
        n += 1;
    }
    assert!(n >= min, "{save}");
}

/// `decided_by` of an answer names a legacy table.
fn by_legacy(a: &Value) -> bool {
    a["decided_by"]["table"]
        .as_str()
        .is_some_and(|t| t.ends_with("tables-legacy)"))
}

#[test]
fn iptables_legacy_ruleset_agrees_with_the_kernel() {
    if !have_legacy("iptables_legacy_ruleset_agrees_with_the_kernel") {
        return;
    }
    let t = Topology::new("lg-diff4");
    t.peer
        .ip(&["addr", "add", "10.99.0.10/24", "dev", PRIVATE.peer_if]);
    t.peer
        .ip(&["addr", "add", "192.0.2.66/24", "dev", PUBLIC.peer_if]);
    let x = |args: &[&str]| legacy(&t.host, IPTABLES, args);
    x(&["-P", "INPUT", "DROP"]);
    x(&["-N", "SSH_CHECK"]);
    x(&["-A", "INPUT", "-i", "lo", "-j", "ACCEPT"]);
    x(&[
        "-A",
        "INPUT",
        "-m",
        "conntrack",
        "--ctstate",
        "ESTABLISHED,RELATED",
        "-j",
        "ACCEPT",
    ]);
    x(&[
        "-A",
        "INPUT",
        "-m",
        "conntrack",
        "--ctstate",
        "INVALID",
        "-j",
        "DROP",
    ]);
    x(&[
        "-A",
        "INPUT",
        "-s",
        "10.99.0.10/32",
        "-i",
        "pw-priv",
        "-p",
        "tcp",
        "-m",
        "tcp",
        "--dport",
        "6162",
        "-j",
        "ACCEPT",
    ]);
    x(&[
        "-A",
        "INPUT",
        "-i",
        "pw-priv",
        "-p",
        "tcp",
        "-m",
        "multiport",
        "--dports",
        "2500:3300,2548",
        "-j",
        "ACCEPT",
    ]);
    x(&[
        "-A",
        "INPUT",
        "-p",
        "tcp",
        "--dport",
        "22",
        "-j",
        "SSH_CHECK",
    ]);
    x(&["-A", "SSH_CHECK", "-s", "192.0.2.66", "-j", "RETURN"]);
    x(&["-A", "SSH_CHECK", "-i", "pw-pu+", "-j", "ACCEPT"]);
    x(&["-A", "SSH_CHECK", "-i", "pw-priv", "-j", "ACCEPT"]);
    x(&[
        "-A",
        "INPUT",
        "-p",
        "tcp",
        "--dport",
        "8086:8087",
        "-j",
        "REJECT",
        "--reject-with",
        "tcp-reset",
    ]);
    x(&[
        "-A", "INPUT", "-p", "tcp", "--dport", "9000", "-m", "dscp", "--dscp", "0", "-j", "ACCEPT",
    ]);
    x(&[
        "-A", "INPUT", "-p", "udp", "-m", "udp", "--dport", "53", "-j", "ACCEPT",
    ]);
    x(&["-A", "INPUT", "-p", "udp", "-j", "REJECT"]);
    // nat PREROUTING: 2222 on the public side to the SSH port.
    legacy(
        &t.host,
        IPTABLES,
        &[
            "-t",
            "nat",
            "-A",
            "PREROUTING",
            "-i",
            "pw-pub",
            "-p",
            "tcp",
            "--dport",
            "2222",
            "-j",
            "REDIRECT",
            "--to-ports",
            "22",
        ],
    );

    let (pub4, priv4) = (PUBLIC.host4, PRIVATE.host4);
    let mut cases = vec![
        case("tcp", "10.99.0.10", priv4, "pw-priv", 6162),
        case("tcp", "10.99.0.2", priv4, "pw-priv", 6162),
        case("tcp", "192.0.2.2", pub4, "pw-pub", 6162),
        case("tcp", "10.99.0.2", priv4, "pw-priv", 2600),
        case("tcp", "10.99.0.2", priv4, "pw-priv", 2548),
        case("tcp", "192.0.2.2", pub4, "pw-pub", 2600),
        case("tcp", "192.0.2.2", pub4, "pw-pub", 22),
        case("tcp", "192.0.2.66", pub4, "pw-pub", 22),
        case("tcp", "10.99.0.2", priv4, "pw-priv", 22),
        case("tcp", "192.0.2.2", pub4, "pw-pub", 8086),
        case("udp", "192.0.2.2", pub4, "pw-pub", 53),
        case("udp", "192.0.2.2", pub4, "pw-pub", 123),
        case("tcp", "192.0.2.2", pub4, "pw-pub", 9000),
        case("tcp", "192.0.2.2", pub4, "pw-pub", 2222),
        case("tcp", "192.0.2.66", pub4, "pw-pub", 2222),
    ];
    // Not decoded: unknown, naming the extension.
    cases[12].unknown_ok = Some("xt match \"dscp\"");

    let a = differential(&t, &cases);
    let verdicts: Vec<&str> = a.iter().map(|a| a["verdict"].as_str().unwrap()).collect();
    assert_eq!(
        verdicts[..12],
        [
            "accept", "drop", "drop", "accept", "accept", "drop", "accept", "drop", "accept",
            "reject", "accept", "reject"
        ],
        "{a:#?}"
    );
    assert!(a[..12].iter().all(by_legacy), "{a:#?}");
    // The RETURN from SSH_CHECK reaches INPUT's policy.
    assert_eq!(a[7]["decided_by"]["kind"], "policy", "{:#}", a[7]);
    assert_eq!(a[6]["decided_by"]["chain"], "SSH_CHECK", "{:#}", a[6]);
    assert_eq!(a[12]["verdict"], "unknown", "{:#}", a[12]);
    // 2222 redirected to 22 by the legacy nat table: SSH_CHECK decides.
    assert_eq!(
        (a[13]["verdict"].as_str(), a[14]["verdict"].as_str()),
        (Some("accept"), Some("drop")),
        "{a:#?}"
    );
    assert!(
        a[13]["nat"].to_string().contains("nat (iptables-legacy)"),
        "{:#}",
        a[13]
    );
    dump_writes_what_save_writes(
        &t.host,
        "/usr/sbin/iptables-legacy-save",
        "IPv4",
        &["-m dscp"],
    );
    dump_writes_what_save_writes_for(
        &t.host,
        "/usr/sbin/iptables-legacy-save",
        "nat",
        "IPv4",
        &[],
        1,
    );
}

#[test]
fn ip6tables_legacy_ruleset_agrees_with_the_kernel() {
    if !have_legacy("ip6tables_legacy_ruleset_agrees_with_the_kernel") {
        return;
    }
    let t = Topology::new("lg-diff6");
    t.peer.ip(&[
        "addr",
        "add",
        "fd00:99::10/64",
        "dev",
        PRIVATE.peer_if,
        "nodad",
    ]);
    t.peer.ip(&[
        "addr",
        "add",
        "2001:db8:1::66/64",
        "dev",
        PUBLIC.peer_if,
        "nodad",
    ]);
    let x = |args: &[&str]| legacy(&t.host, IP6TABLES, args);
    x(&["-P", "INPUT", "DROP"]);
    x(&["-N", "SSH_CHECK"]);
    x(&[
        "-A",
        "INPUT",
        "-m",
        "state",
        "--state",
        "ESTABLISHED,RELATED",
        "-j",
        "ACCEPT",
    ]);
    x(&["-A", "INPUT", "-p", "ipv6-icmp", "-j", "ACCEPT"]);
    x(&[
        "-A",
        "INPUT",
        "-s",
        "fd00:99::10/128",
        "-i",
        "pw-priv",
        "-p",
        "tcp",
        "--dport",
        "6162",
        "-j",
        "ACCEPT",
    ]);
    x(&[
        "-A",
        "INPUT",
        "-i",
        "pw-priv",
        "-p",
        "tcp",
        "-m",
        "multiport",
        "--dports",
        "2500:3300",
        "-j",
        "ACCEPT",
    ]);
    x(&[
        "-A",
        "INPUT",
        "-p",
        "tcp",
        "--dport",
        "22",
        "-g",
        "SSH_CHECK",
    ]);
    x(&["-A", "SSH_CHECK", "-s", "2001:db8:1::66", "-j", "RETURN"]);
    x(&["-A", "SSH_CHECK", "!", "-i", "pw-priv", "-j", "ACCEPT"]);
    x(&[
        "-A",
        "INPUT",
        "!",
        "-s",
        "fd00:99::/64",
        "-p",
        "udp",
        "-j",
        "REJECT",
        "--reject-with",
        "icmp6-adm-prohibited",
    ]);
    x(&["-A", "INPUT", "-p", "udp", "--dport", "53", "-j", "ACCEPT"]);

    let (pub6, priv6) = (PUBLIC.host6, PRIVATE.host6);
    let cases = [
        case("tcp", "fd00:99::10", priv6, "pw-priv", 6162),
        case("tcp", "fd00:99::2", priv6, "pw-priv", 6162),
        case("tcp", "fd00:99::2", priv6, "pw-priv", 3000),
        case("tcp", "2001:db8:1::2", pub6, "pw-pub", 3000),
        case("tcp", "2001:db8:1::2", pub6, "pw-pub", 22),
        case("tcp", "2001:db8:1::66", pub6, "pw-pub", 22),
        case("tcp", "fd00:99::2", priv6, "pw-priv", 22),
        case("udp", "2001:db8:1::2", pub6, "pw-pub", 53),
        case("udp", "fd00:99::2", priv6, "pw-priv", 53),
        case("udp", "fd00:99::2", priv6, "pw-priv", 54),
    ];
    let a = differential(&t, &cases);
    let verdicts: Vec<&str> = a.iter().map(|a| a["verdict"].as_str().unwrap()).collect();
    assert_eq!(
        verdicts,
        [
            "accept", "drop", "accept", "drop", "accept", "drop", "drop", "reject", "accept",
            "drop"
        ],
        "{a:#?}"
    );
    assert!(a.iter().all(by_legacy), "{a:#?}");
    // The goto's RETURN goes back past INPUT: its policy.
    assert_eq!(a[5]["decided_by"]["kind"], "policy", "{:#}", a[5]);
    dump_writes_what_save_writes(&t.host, "/usr/sbin/ip6tables-legacy-save", "IPv6", &[]);
}

/// The ferm configuration both backends load.
const FERM_CONF: &str = r#"domain (ip ip6) table filter {
    chain INPUT {
        policy DROP;
        mod state state INVALID DROP;
        mod state state (ESTABLISHED RELATED) ACCEPT;
        interface lo ACCEPT;
        # Neighbour discovery: without it no IPv6 packet arrives at all.
        @if @eq($DOMAIN, ip6) proto ipv6-icmp ACCEPT;
        interface pw-priv proto tcp dport (6162 2500:3300) ACCEPT;
        proto tcp dport 22 jump SSH;
        proto udp REJECT;
    }
    chain SSH {
        @if @eq($DOMAIN, ip) saddr 192.0.2.66 RETURN;
        interface pw-pub ACCEPT;
    }
    chain OUTPUT policy ACCEPT;
    chain FORWARD policy DROP;
}
"#;

/// Which tools ferm applies its rules with.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum FermBackend {
    /// iptables-legacy and ip6tables-legacy, which ferm prefers when they
    /// are installed (as on Debian).
    Legacy,
    /// iptables and ip6tables as installed (Debian's alternatives:
    /// iptables-nft), with the legacy tools hidden from ferm.
    Nft,
}

/// Loads [`FERM_CONF`] with ferm into the host namespace, then checks
/// explain against real packets from the peer.
fn ferm_agrees_with_the_kernel(test: &str, tag: &str, backend: FermBackend) {
    if !have_legacy(test) {
        return;
    }
    if !std::path::Path::new("/usr/sbin/ferm").exists() {
        eprintln!("skipping {test}: ferm not installed (scripts/install-deps)");
        return;
    }
    let t = Topology::new(tag);
    t.peer
        .ip(&["addr", "add", "192.0.2.66/24", "dev", PUBLIC.peer_if]);
    let conf = std::env::temp_dir().join(format!("pw-ferm-{}-{tag}.conf", std::process::id()));
    std::fs::write(&conf, FERM_CONF).unwrap();
    let ferm = format!(
        "ip netns exec {} /usr/sbin/ferm {}",
        t.host.name,
        conf.display()
    );
    let out = match backend {
        FermBackend::Legacy => run(t.host.cmd("/usr/sbin/ferm").arg(&conf)),
        // ferm looks for `*tables-legacy*` first: in a private mount
        // namespace of this command only, they are /dev/null (not
        // executable), and ferm falls back to the tools as installed.
        FermBackend::Nft => run(std::process::Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-ec"])
            .arg(format!(
                "for f in /usr/sbin/*tables-legacy*; do mount --bind /dev/null \"$f\"; done; exec {ferm}"
            ))),
    };
    let _ = std::fs::remove_file(&conf);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tables = legacy_tables(&t.host);
    match backend {
        FermBackend::Legacy => {
            for (fam, rules) in [("ipv4", 7), ("ipv6", 8)] {
                let f = table(&tables, fam, "filter");
                assert_eq!(chain(f, "INPUT")["policy"], "drop", "{f:#}");
                assert_eq!(
                    chain(f, "INPUT")["rules"].as_array().unwrap().len(),
                    rules,
                    "{f:#}"
                );
            }
        }
        FermBackend::Nft => {
            // Nothing in the legacy tables; iptables-nft's tables instead.
            assert!(
                tables
                    .iter()
                    .all(|t| t["chains"].as_array().map_or(true, |c| c
                        .iter()
                        .all(|c| c["rules"].as_array().map_or(true, Vec::is_empty)))),
                "{tables:#?}"
            );
            let dump = t.host.dump_json();
            for fam in ["ip", "ip6"] {
                assert!(
                    dump["tables"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|t| t["family"] == fam && t["name"] == "filter"),
                    "no {fam} filter table from iptables-nft"
                );
            }
        }
    }
    let (pub4, priv4, pub6, priv6) = (PUBLIC.host4, PRIVATE.host4, PUBLIC.host6, PRIVATE.host6);
    let cases = [
        case("tcp", "10.99.0.2", priv4, "pw-priv", 6162),
        case("tcp", "192.0.2.2", pub4, "pw-pub", 6162),
        case("tcp", "10.99.0.2", priv4, "pw-priv", 3300),
        case("tcp", "192.0.2.2", pub4, "pw-pub", 22),
        case("tcp", "192.0.2.66", pub4, "pw-pub", 22),
        case("tcp", "10.99.0.2", priv4, "pw-priv", 22),
        case("udp", "192.0.2.2", pub4, "pw-pub", 53),
        case("tcp", "fd00:99::2", priv6, "pw-priv", 6162),
        case("tcp", "2001:db8:1::2", pub6, "pw-pub", 6162),
        case("tcp", "2001:db8:1::2", pub6, "pw-pub", 22),
        case("udp", "2001:db8:1::2", pub6, "pw-pub", 53),
    ];
    let a = differential(&t, &cases);
    let verdicts: Vec<&str> = a.iter().map(|a| a["verdict"].as_str().unwrap()).collect();
    assert_eq!(
        verdicts,
        [
            "accept", "drop", "accept", "accept", "drop", "drop", "reject", "accept", "drop",
            "accept", "reject"
        ],
        "{a:#?}"
    );
    match backend {
        FermBackend::Legacy => {
            assert!(a.iter().all(by_legacy), "{a:#?}");
            dump_writes_what_save_writes(&t.host, "/usr/sbin/iptables-legacy-save", "IPv4", &[]);
            dump_writes_what_save_writes(&t.host, "/usr/sbin/ip6tables-legacy-save", "IPv6", &[]);
        }
        FermBackend::Nft => assert!(!a.iter().any(by_legacy), "{a:#?}"),
    }
}

/// ferm, as Debian ships it, applies its rules with iptables-legacy and
/// ip6tables-legacy (it prefers the legacy tools): run inside the
/// namespace, what it loads is read, evaluated, and agrees with the kernel.
#[test]
fn ferm_ruleset_agrees_with_the_kernel() {
    ferm_agrees_with_the_kernel(
        "ferm_ruleset_agrees_with_the_kernel",
        "lg-ferm",
        FermBackend::Legacy,
    );
}

/// ferm's other backend: without the legacy tools it applies the same
/// rules with iptables-nft (xt matches in nf_tables), and the answers are
/// the same.
#[test]
fn ferm_with_iptables_nft_agrees_with_the_kernel() {
    ferm_agrees_with_the_kernel(
        "ferm_with_iptables_nft_agrees_with_the_kernel",
        "lg-fermnft",
        FermBackend::Nft,
    );
}

/// A host whose only firewall is legacy iptables gets findings: a
/// required port the legacy rules refuse is a critical missing opening,
/// its evidence the iptables-save line or policy.
#[test]
fn the_audit_of_a_legacy_only_host_finds_a_missing_opening() {
    if !have_legacy("the_audit_of_a_legacy_only_host_finds_a_missing_opening") {
        return;
    }
    let t = Topology::new("lg-audit");
    let x = |args: &[&str]| legacy(&t.host, IPTABLES, args);
    x(&["-P", "INPUT", "DROP"]);
    x(&[
        "-A",
        "INPUT",
        "-m",
        "conntrack",
        "--ctstate",
        "ESTABLISHED,RELATED",
        "-j",
        "ACCEPT",
    ]);
    x(&[
        "-A",
        "INPUT",
        "-s",
        "10.99.0.2/32",
        "-p",
        "tcp",
        "-m",
        "multiport",
        "--dports",
        "22,2500:3300,6160",
        "-j",
        "ACCEPT",
    ]);
    // 6162 (the Veeam Data Mover) is missing.
    assert!(!reaches(&t, PRIVATE.host4, 6162));
    let cfg = std::env::temp_dir().join(format!("pw-legacy-{}.toml", std::process::id()));
    std::fs::write(
        &cfg,
        "roles = [\"veeam-data-mover\"]\n[peers]\nbackup_server = [\"10.99.0.2\"]\n[severity]\nnot-listening = \"ignore\"\n",
    )
    .unwrap();
    let (report, code) = t.host.audit_json(&cfg, &[]);
    assert_eq!(code, 2, "criticals: {report:#}");
    let findings = report["findings"].as_array().unwrap();
    let missing: Vec<&Value> = findings
        .iter()
        .filter(|f| f["kind"] == "missing-opening")
        .collect();
    assert_eq!(missing.len(), 1, "{report:#}");
    let m = missing[0];
    assert_eq!(m["severity"], "critical", "{m:#}");
    assert!(m.to_string().contains("6162"), "{m:#}");
    assert!(m.to_string().contains("filter (iptables-legacy)"), "{m:#}");
    assert!(
        !report["notes"].to_string().contains("not evaluated"),
        "{report:#}"
    );
    // Its fix is an iptables-legacy command, proven like every fix; run as
    // printed, the backup server reaches 6162 and nothing is left missing.
    assert_eq!(m["fix"]["status"], "proven", "{m:#}");
    let fix = m["fix"]["nft"].as_str().unwrap();
    // (The INPUT policy refused it: the accept goes at the chain's end.)
    assert!(fix.starts_with("iptables-legacy -A INPUT "), "{fix}");
    assert!(fix.contains("--dport 6162 -j ACCEPT"), "{fix}");
    // The text report names the tool.
    let text = t
        .host
        .portwarden(&["audit", "--config", cfg.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("fix (iptables-legacy): iptables-legacy -A INPUT "),
        "{text}"
    );
    for line in fix.lines() {
        let out = run(t.host.cmd("sh").args(["-c", line]));
        assert!(out.status.success(), "{line}");
    }
    assert!(reaches(&t, PRIVATE.host4, 6162));
    assert!(!reaches(&t, PRIVATE.host4, 6163));
    let (after, _) = t.host.audit_json(&cfg, &[]);
    let _ = std::fs::remove_file(&cfg);
    assert!(
        !after["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "missing-opening"),
        "{after:#}"
    );
}

#[test]
fn the_daemon_sees_a_legacy_table_at_its_verification_read() {
    let test = "the_daemon_sees_a_legacy_table_at_its_verification_read";
    if !have_legacy(test) || !common::daemon::available(test) {
        return;
    }
    use common::daemon::{field, Daemon};
    use std::time::{Duration, Instant};
    let t = common::daemon_host("lg-dmn");
    let config = "roles = [\"veeam-data-mover\"]\nprivate_interfaces = [\"pw-priv\"]\n\
                  [peers]\nbackup_server = [\"10.0.0.10\"]\n[severity]\nnot-listening = \"ignore\"\n\
                  [daemon]\nverify_interval_s = 1\n";
    let mut d = Daemon::start(&t.host.name, "lgd", config);
    assert!(
        d.wait_notify("READY=1", Duration::from_secs(30)).is_some(),
        "no READY=1; stderr: {}",
        d.stderr()
    );
    // The legacy drop of 6162 becomes a missing opening it decides.
    let has_note = |r: &Value| {
        r["findings"].as_array().is_some_and(|f| {
            f.iter().any(|f| {
                f["kind"] == "missing-opening" && f.to_string().contains("filter (iptables-legacy)")
            })
        })
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while d.report().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!has_note(&d.report().expect("a report")));
    // No nf_tables event tells of this: the verification read does.
    legacy(
        &t.host,
        IPTABLES,
        &["-A", "INPUT", "-p", "tcp", "--dport", "6162", "-j", "DROP"],
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let report = loop {
        let r = d.report().unwrap_or_default();
        if has_note(&r) || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(has_note(&report), "{report:#}");
    // Seen without calling the kept ruleset wrong.
    assert!(
        !d.journal()
            .iter()
            .any(|e| field(e, "MESSAGE_ID") == portwarden::render::journal::VERIFY_MISMATCH),
        "{:?}",
        d.journal()
    );
}

/// Conntrack state in a legacy INPUT chain, against the kernel: with
/// policy DROP and no ESTABLISHED rule the replies of the host's own
/// connections are refused (the audit's outbound-blocked finding, named
/// for the legacy policy; the kernel's connect times out); with
/// `-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT` they come back
/// (no finding; the kernel connects).
#[test]
fn legacy_conntrack_state_lets_replies_in_as_the_kernel_does() {
    if !have_legacy("legacy_conntrack_state_lets_replies_in_as_the_kernel_does") {
        return;
    }
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let t = Topology::new("lg-ct");
    legacy(&t.host, IPTABLES, &["-P", "INPUT", "DROP"]);
    let mut listener = t
        .peer
        .cmd("python3")
        .args(["-c", common::LISTENERS, "tcp/2546"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 listener");
    let mut line = String::new();
    BufReader::new(listener.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    let connects = || {
        let script = "timeout 2 bash -c 'exec 3<>/dev/tcp/192.0.2.2/2546'";
        t.host
            .cmd("bash")
            .args(["-c", script])
            .status()
            .unwrap()
            .success()
    };
    let cfg = std::env::temp_dir().join(format!("pw-legacy-ct-{}.toml", std::process::id()));
    std::fs::write(
        &cfg,
        "roles = [\"evault-agent\"]\n[peers]\nevault_vault = [\"192.0.2.2\"]\nevault_registration = []\nevault_portal = []\nevault_management = []\n[severity]\nnot-listening = \"ignore\"\n",
    )
    .unwrap();
    let vault_blocked = |report: &Value| -> Vec<Value> {
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["kind"] == "outbound-blocked" && f["requirement"] == "vault")
            .cloned()
            .collect()
    };
    let (before, _) = t.host.audit_json(&cfg, &[]);
    let blocked = vault_blocked(&before);
    let kernel_before = connects();
    legacy(
        &t.host,
        IPTABLES,
        &[
            "-I",
            "INPUT",
            "-m",
            "conntrack",
            "--ctstate",
            "ESTABLISHED,RELATED",
            "-j",
            "ACCEPT",
        ],
    );
    let (after, _) = t.host.audit_json(&cfg, &[]);
    let kernel_after = connects();
    let _ = std::fs::remove_file(&cfg);
    let _ = listener.kill();
    let _ = listener.wait();
    assert!(
        !kernel_before && kernel_after,
        "{kernel_before} {kernel_after}"
    );
    assert_eq!(blocked.len(), 1, "{before:#}");
    let text = blocked[0].to_string();
    assert!(text.contains("replies are refused"), "{text}");
    assert!(text.contains("filter (iptables-legacy)"), "{text}");
    assert!(vault_blocked(&after).is_empty(), "{after:#}");
}
