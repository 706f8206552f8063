//! Legacy iptables (x_tables) tables against the real kernel, each in
//! throwaway namespaces: `iptables-legacy` and `ip6tables-legacy` are run
//! by path inside `ip netns exec` only (the host's alternatives and
//! tables are never touched).

mod common;

use common::{require_root, run, Netns, Topology, PRIVATE, PUBLIC};
use serde_json::Value;

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
            assert_eq!(chain(f, c)["rules"], 0);
            assert_eq!(chain(f, c)["policy"], "accept");
        }
    }
    assert_eq!(explain(&t.host, "tcp/22", PUBLIC.peer4), before);
    let v6 = explain(&t.host, "tcp/22", PUBLIC.peer6);
    assert_eq!(v6["verdict"], "accept", "{v6:#}");
    assert!(reaches(&t, PUBLIC.host4, 22), "the kernel lets it through");
}

#[test]
fn legacy_drop_rule_makes_answers_unknown_and_names_the_table() {
    if !have_legacy("legacy_drop_rule_makes_answers_unknown_and_names_the_table") {
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
    assert_eq!(chain(f, "INPUT")["rules"], 1);
    assert_eq!(chain(f, "INPUT")["priority"], 0);
    let text = String::from_utf8_lossy(&t.host.portwarden(&["dump"]).stdout).into_owned();
    assert!(
        text.contains("legacy iptables table filter (IPv4)"),
        "{text}"
    );

    let why = "legacy iptables table filter (IPv4) has 1 rule in INPUT, not evaluated";
    for port in ["tcp/22", "tcp/23", "udp/53"] {
        let a = explain(&t.host, port, PUBLIC.peer4);
        assert_eq!(a["verdict"], "unknown", "{a:#}");
        assert!(a["reason"].as_str().unwrap().contains(why), "{a:#}");
    }
    // IPv6 has no legacy table: unchanged.
    assert_eq!(
        explain(&t.host, "tcp/22", PUBLIC.peer6)["verdict"],
        "accept"
    );

    // The exposure map: every IPv4 opening is unknown and says why.
    let out = t.host.portwarden(&["exposure", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exp: Value = serde_json::from_slice(&out.stdout).unwrap();
    let openings = exp["openings"].as_array().unwrap();
    let v4: Vec<&Value> = openings.iter().filter(|o| o["family"] == "ipv4").collect();
    assert!(!v4.is_empty(), "{exp:#}");
    for o in &v4 {
        assert_eq!(o["verdict"], "unknown", "{o:#}");
        assert!(o["reason"].as_str().unwrap().contains(why), "{o:#}");
    }
    assert!(openings
        .iter()
        .any(|o| o["family"] == "ipv6" && o["verdict"] == "accept"));

    // The audit: a note, not an IPv4 excess opening over 0-65535.
    let cfg = std::env::temp_dir().join(format!("pw-legacy-{}.toml", std::process::id()));
    std::fs::write(
        &cfg,
        "roles = [\"veeam-data-mover\"]\n[peers]\nbackup_server = [\"10.99.0.2\"]\n",
    )
    .unwrap();
    let (report, _) = t.host.audit_json(&cfg, &[]);
    let _ = std::fs::remove_file(&cfg);
    let text = report.to_string();
    assert!(text.contains(why), "{report:#}");
    for f in report["findings"].as_array().unwrap() {
        if f["kind"] == "excess-opening" {
            assert_ne!(f["family"], "ipv4", "{f:#}");
            assert!(!f.to_string().contains(PRIVATE.host4), "{f:#}");
            assert!(!f.to_string().contains(PUBLIC.host4), "{f:#}");
        }
    }
}

#[test]
fn legacy_ip6tables_drop_policy_is_named_for_ipv6_only() {
    if !have_legacy("legacy_ip6tables_drop_policy_is_named_for_ipv6_only") {
        return;
    }
    let t = Topology::new("lg-v6");
    legacy(&t.host, IP6TABLES, &["-P", "INPUT", "DROP"]);
    let tables = legacy_tables(&t.host);
    let f = table(&tables, "ipv6", "filter");
    assert_eq!(chain(f, "INPUT")["policy"], "drop", "{f:#}");
    assert_eq!(chain(f, "INPUT")["rules"], 0, "{f:#}");
    let a = explain(&t.host, "tcp/22", PUBLIC.peer6);
    assert_eq!(a["verdict"], "unknown", "{a:#}");
    assert!(
        a["reason"].as_str().unwrap().contains(
            "legacy iptables table filter (IPv6) has policy DROP in INPUT, not evaluated"
        ),
        "{a:#}"
    );
    assert_eq!(
        explain(&t.host, "tcp/22", PUBLIC.peer4)["verdict"],
        "accept"
    );
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
    // Dropped at priority -10, before the legacy filter table (0): decided.
    let a = explain(&t.host, "tcp/22", PUBLIC.peer4);
    assert_eq!(a["verdict"], "drop", "{a:#}");
    assert!(!reaches(&t, PUBLIC.host4, 22));
    // Accepted by nf_tables, then the legacy table decides: unknown.
    let a = explain(&t.host, "tcp/23", PUBLIC.peer4);
    assert_eq!(a["verdict"], "unknown", "{a:#}");
    assert!(!reaches(&t, PUBLIC.host4, 23));
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
    let why = "legacy iptables table filter (IPv4) has 1 rule in INPUT";
    let has_note = |r: &Value| r["notes"].to_string().contains(why);
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
