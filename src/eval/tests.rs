//! Evaluator tests on snapshots dumped by `portwarden dump --json` from the
//! fixtures of `tests/fixtures` loaded into a throwaway namespace with the
//! standard test topology (`tests/fixtures/topology.sh`).

use super::*;
use crate::host::{Route, RouteKind, Socket, ARPHRD_LOOPBACK};
use crate::snapshot::Snapshot;
use std::net::IpAddr;

use super::testkit::{snapshot, topology, wide_topology};

fn ev(name: &str) -> Evaluator {
    Evaluator::new(&snapshot(name), topology())
}

/// The interface a peer reaches `dst` through, unless `via` says otherwise.
fn iif_for(e: &Evaluator, dst: IpAddr, via: Option<&str>) -> Iface {
    let name = via.unwrap_or(match dst.to_string().as_str() {
        "192.0.2.1" | "2001:db8:1::1" => "pw-pub",
        _ => "pw-priv",
    });
    e.iface(name)
}

fn probe(e: &Evaluator, proto: L4, src: &str, dst: &str, port: u16) -> Probe {
    let d: IpAddr = dst.parse().unwrap();
    Probe::new(
        proto,
        src.parse().unwrap(),
        d,
        40000,
        port,
        iif_for(e, d, None),
    )
}

fn tcp(e: &Evaluator, src: &str, dst: &str, port: u16) -> Answer {
    e.explain(&probe(e, L4::Tcp, src, dst, port))
}

fn udp(e: &Evaluator, src: &str, dst: &str, port: u16) -> Answer {
    e.explain(&probe(e, L4::Udp, src, dst, port))
}

fn rule(a: &Answer) -> (String, u64) {
    match &a.decided_by {
        Some(DecidedBy::Rule(r)) => (format!("{} {} {}", r.family, r.table, r.chain), r.handle),
        other => panic!("decided by {other:?}, not a rule: {a:#?}"),
    }
}

fn policy(a: &Answer) -> String {
    match &a.decided_by {
        Some(DecidedBy::Policy(p)) => format!("{} {} {}", p.family, p.table, p.chain),
        other => panic!("decided by {other:?}, not a policy: {a:#?}"),
    }
}

/// Every inbound expectation written in the fixtures' headers (and checked
/// against the kernel by `tests/fixtures/verify-expected.py`).
#[test]
fn fixture_header_expectations() {
    let text = std::fs::read_to_string(format!(
        "{}/src/eval/testdata/expected.txt",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut evs: std::collections::HashMap<String, Evaluator> = Default::default();
    let mut bad = Vec::new();
    let mut n = 0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (spec, orig) = line.split_once(" | ").unwrap();
        let f: Vec<&str> = spec.split_whitespace().collect();
        let [fx, proto, src, dst, port, via, want] = f[..] else {
            panic!("bad line {line}")
        };
        let e = evs.entry(fx.to_string()).or_insert_with(|| ev(fx));
        let d: IpAddr = dst.parse().unwrap();
        let iif = iif_for(e, d, (via != "-").then_some(via));
        let proto = if proto == "tcp" { L4::Tcp } else { L4::Udp };
        let p = Probe::new(
            proto,
            src.parse().unwrap(),
            d,
            40000,
            port.parse().unwrap(),
            iif,
        );
        let a = e.explain(&p);
        n += 1;
        if a.verdict.to_string() != want {
            bad.push(format!(
                "{fx}: {orig}\n    got {} ({}) {}",
                a.verdict,
                a.decided_by
                    .as_ref()
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
                a.reason.unwrap_or_default()
            ));
        }
    }
    assert!(n > 150, "only {n} expectations read");
    assert!(
        bad.is_empty(),
        "{} of {n} wrong:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

fn vias(a: &Answer) -> Vec<String> {
    a.trace
        .iter()
        .map(|v| format!("{:?} {}", v.via, v.chain).to_lowercase())
        .collect()
}

#[test]
fn policies_decide_when_no_rule_does() {
    let e = ev("trap-policy-drop-after-accept");
    // Accepted by input_veeam (filter - 10), then input's policy drops.
    let a = tcp(&e, "10.99.0.2", "10.99.0.1", 6162);
    assert_eq!(a.verdict, Verdict::Drop);
    assert_eq!(policy(&a), "inet filter input");
    assert_eq!(
        a.trace
            .iter()
            .map(|v| (v.chain.as_str(), v.priority))
            .collect::<Vec<_>>(),
        [("input_veeam", -10), ("input", 0)]
    );
    // Policy accept of input_veeam, then a rule of input accepts.
    let a = tcp(&e, "10.99.0.2", "10.99.0.1", 2548);
    assert_eq!(a.verdict, Verdict::Accept);
    assert_eq!(rule(&a).0, "inet filter input");
    // Policy accept everywhere.
    let e = ev("trap-negation-udp");
    let a = udp(&e, "10.99.0.2", "10.99.0.1", 2500);
    assert_eq!(a.verdict, Verdict::Accept);
    assert_eq!(policy(&a), "inet filter input");
}

#[test]
fn accept_in_one_table_then_drop_in_a_later_one() {
    let e = ev("trap-accept-then-drop");
    let a = tcp(&e, "192.0.2.2", "192.0.2.1", 6162);
    assert_eq!(a.verdict, Verdict::Drop);
    assert_eq!(rule(&a).0, "ip legacy input");
    assert_eq!(a.trace.len(), 2);
    assert_eq!(a.trace[1].priority, 10);
    // The ip table does not see IPv6.
    let a = tcp(&e, "2001:db8:1::2", "2001:db8:1::1", 6162);
    assert_eq!(a.verdict, Verdict::Accept);
    assert_eq!(a.trace.len(), 1);
}

#[test]
fn jump_return_and_goto() {
    let e = ev("trap-return-from-jump");
    // veeam_src returns; the caller's next rule accepts.
    let a = tcp(&e, "10.99.0.2", "10.99.0.1", 6162);
    assert_eq!(a.verdict, Verdict::Accept);
    assert_eq!(vias(&a), ["hook input", "jump veeam_src", "return input"]);
    // Falling off the end of ssh_check returns to the caller.
    let a = tcp(&e, "192.0.2.2", "192.0.2.1", 22);
    assert_eq!(a.verdict, Verdict::Accept);
    assert_eq!(vias(&a), ["hook input", "jump ssh_check", "return input"]);
    // `return` in the base chain applies the policy.
    let a = tcp(&e, "192.0.2.66", "192.0.2.1", 22);
    assert_eq!(a.verdict, Verdict::Drop);
    assert_eq!(policy(&a), "inet filter input");

    let e = ev("trap-goto-vs-jump");
    // goto priv falls off: no return point, the base policy drops.
    let a = tcp(&e, "10.99.0.2", "10.99.0.1", 22);
    assert_eq!(a.verdict, Verdict::Drop);
    assert_eq!(vias(&a), ["hook input", "goto priv"]);
    // jump pub_dispatch, goto pub4 falls off: back after the jump.
    let a = tcp(&e, "192.0.2.2", "192.0.2.1", 22);
    assert_eq!(a.verdict, Verdict::Accept);
    assert_eq!(
        vias(&a),
        [
            "hook input",
            "jump pub_dispatch",
            "goto pub4",
            "return input"
        ]
    );
}

#[test]
fn verdict_maps_jump_continue_and_miss() {
    let e = ev("trap-vmap-fallthrough");
    let a = tcp(&e, "192.0.2.2", "192.0.2.1", 6162);
    assert_eq!(a.verdict, Verdict::Drop);
    assert_eq!(vias(&a), ["hook input", "jump from_pub"]);
    // continue from the anonymous vmap, then the named vmap accepts.
    let a = tcp(&e, "10.99.0.2", "10.99.0.1", 6162);
    assert_eq!(a.verdict, Verdict::Accept);
    // Not in the map: the rule does not match, the next one accepts.
    let a = tcp(&e, "10.99.0.2", "10.99.0.1", 6160);
    assert_eq!(a.verdict, Verdict::Accept);
    // jump ssh_guard from the vmap returns to the rule after it.
    let a = tcp(&e, "10.99.0.2", "10.99.0.1", 22);
    assert_eq!(a.verdict, Verdict::Accept);
    assert_eq!(vias(&a), ["hook input", "jump ssh_guard", "return input"]);
    let a = udp(&e, "10.99.0.2", "10.99.0.1", 6162);
    assert_eq!(a.verdict, Verdict::Drop);
}

#[test]
fn named_anonymous_interval_and_concatenated_sets() {
    let e = ev("concat-sets");
    // Exact concatenation.
    assert_eq!(
        tcp(&e, "10.99.0.2", "10.99.0.1", 6162).verdict,
        Verdict::Accept
    );
    assert_eq!(
        tcp(&e, "10.0.0.10", "10.99.0.1", 22).verdict,
        Verdict::Accept
    );
    assert_eq!(rule(&tcp(&e, "10.0.0.10", "10.99.0.1", 22)).1, 7);
    // Concatenated ranges, per component.
    let a = tcp(&e, "10.99.0.77", "10.99.0.1", 3300);
    assert_eq!((a.verdict, rule(&a).1), (Verdict::Accept, 8));
    assert_eq!(
        tcp(&e, "10.99.0.77", "10.99.0.1", 3301).verdict,
        Verdict::Drop
    );
    assert_eq!(
        tcp(&e, "10.99.1.77", "10.99.0.1", 2600).verdict,
        Verdict::Drop
    );
    // ifname . l4proto . port
    let a = tcp(&e, "10.99.1.9", "10.99.0.1", 2548);
    assert_eq!((a.verdict, rule(&a).1), (Verdict::Accept, 9));
    assert_eq!(
        udp(&e, "192.0.2.2", "192.0.2.1", 53).verdict,
        Verdict::Accept
    );
    assert_eq!(tcp(&e, "192.0.2.2", "192.0.2.1", 53).verdict, Verdict::Drop);
    // Interval data map into meta mark.
    let a = tcp(&e, "10.99.0.9", "10.99.0.1", 8050);
    assert_eq!((a.verdict, rule(&a).1), (Verdict::Accept, 11));
    assert_eq!(
        tcp(&e, "10.99.0.9", "10.99.0.1", 8100).verdict,
        Verdict::Drop
    );
    // Anonymous concatenated interval set (IPv6).
    assert_eq!(
        tcp(&e, "fd00:99::2", "fd00:99::1", 6162).verdict,
        Verdict::Accept
    );
    assert_eq!(
        tcp(&e, "fd00:99::5", "fd00:99::1", 2650).verdict,
        Verdict::Accept
    );
    assert_eq!(
        tcp(&e, "fd00:99::5", "fd00:99::1", 6162).verdict,
        Verdict::Drop
    );
    // Negated range, then an anonymous interval set.
    let a = tcp(&e, "192.0.2.2", "192.0.2.1", 6000);
    assert_eq!(a.verdict, Verdict::Reject);
    assert_eq!(a.reject_with.as_deref(), Some("tcp reset"));
    assert_eq!(
        tcp(&e, "192.0.2.2", "192.0.2.1", 1000).verdict,
        Verdict::Drop
    );
    assert_eq!(
        udp(&e, "192.0.2.2", "192.0.2.1", 550).verdict,
        Verdict::Accept
    );
    assert_eq!(
        udp(&e, "192.0.2.2", "192.0.2.1", 601).verdict,
        Verdict::Drop
    );
}

#[test]
fn negation_does_not_match_the_other_protocol() {
    let e = ev("trap-negation-udp");
    let a = tcp(&e, "10.99.0.2", "10.99.0.1", 22);
    assert_eq!((a.verdict, rule(&a).1), (Verdict::Drop, 3));
    // `tcp dport != 6162` must not see UDP.
    assert_eq!(
        udp(&e, "10.99.0.2", "10.99.0.1", 22).verdict,
        Verdict::Accept
    );
    assert_eq!(
        udp(&e, "192.0.2.2", "192.0.2.1", 2500).verdict,
        Verdict::Drop
    );
    // `udp dport != { 53, 123 }` must not see TCP.
    assert_eq!(
        tcp(&e, "192.0.2.2", "192.0.2.1", 22).verdict,
        Verdict::Accept
    );
    assert_eq!(
        tcp(&e, "192.0.2.2", "192.0.2.1", 6162).verdict,
        Verdict::Reject
    );
}

#[test]
fn mark_set_in_prerouting_is_seen_in_input() {
    let e = ev("trap-mark-prerouting");
    let a = tcp(&e, "10.0.0.10", "10.99.0.1", 6162);
    assert_eq!(a.verdict, Verdict::Accept);
    assert_eq!(a.trace[0].hook, Hook::Prerouting);
    assert_eq!(
        tcp(&e, "10.99.0.2", "10.99.0.1", 6162).verdict,
        Verdict::Drop
    );
    assert_eq!(
        tcp(&e, "10.99.0.2", "10.99.0.1", 22).verdict,
        Verdict::Accept
    );
    // Conntrack mark restored into the packet mark, by class.
    let e = ev("marks-ctmark");
    assert_eq!(
        tcp(&e, "10.99.0.2", "10.99.0.1", 2600).verdict,
        Verdict::Accept
    );
    assert_eq!(
        tcp(&e, "fd00:99::2", "fd00:99::1", 2600).verdict,
        Verdict::Accept
    );
    assert_eq!(
        tcp(&e, "192.0.2.2", "192.0.2.1", 2600).verdict,
        Verdict::Drop
    );
}

#[test]
fn ip_rules_in_inet_tables_never_match_ipv6() {
    let e = ev("trap-inet-ip-saddr-v6");
    assert_eq!(
        tcp(&e, "fd00:99::2", "fd00:99::1", 6162).verdict,
        Verdict::Drop
    );
    assert_eq!(
        tcp(&e, "10.99.0.2", "10.99.0.1", 6162).verdict,
        Verdict::Accept
    );
    // The negated `ip saddr != @mgmt4` drops IPv4 but not IPv6.
    assert_eq!(tcp(&e, "192.0.2.2", "192.0.2.1", 22).verdict, Verdict::Drop);
    assert_eq!(
        tcp(&e, "2001:db8:1::2", "2001:db8:1::1", 22).verdict,
        Verdict::Accept
    );
}

#[test]
fn conntrack_state_and_notrack() {
    let e = ev("trap-notrack-untracked");
    let a = tcp(&e, "10.99.0.2", "10.99.0.1", 2600);
    assert_eq!((a.verdict, rule(&a).1), (Verdict::Accept, 6));
    // notrack'ed, but only `ct state new` is accepted for 3000-3300.
    assert_eq!(
        tcp(&e, "10.99.0.2", "10.99.0.1", 3100).verdict,
        Verdict::Drop
    );
    // Tracked: ct state new.
    let a = tcp(&e, "10.99.0.2", "10.99.0.1", 6162);
    assert_eq!((a.verdict, rule(&a).1), (Verdict::Accept, 8));
}

#[test]
fn fib_reverse_path_and_local_type() {
    let e = ev("rpfilter-raw");
    // No route back to the source: `fib saddr . iif oif missing drop`.
    let a = tcp(&e, "198.51.100.7", "192.0.2.1", 22);
    assert_eq!(a.verdict, Verdict::Drop);
    assert_eq!(rule(&a).0, "inet mangle prerouting");
    assert_eq!(
        tcp(&e, "10.0.0.10", "10.99.0.1", 6162).verdict,
        Verdict::Accept
    );
    // Reverse path is pw-priv, the packet arrives on pw-pub.
    let d: IpAddr = "192.0.2.1".parse().unwrap();
    let p = Probe::new(
        L4::Tcp,
        "10.0.0.10".parse().unwrap(),
        d,
        40000,
        22,
        e.iface("pw-pub"),
    );
    assert_eq!(e.explain(&p).verdict, Verdict::Drop);
    // `fib daddr . iif type != local`: 10.99.0.1 is local, not on pw-pub.
    let d: IpAddr = "10.99.0.1".parse().unwrap();
    let p = Probe::new(
        L4::Tcp,
        "192.0.2.2".parse().unwrap(),
        d,
        40000,
        22,
        e.iface("pw-pub"),
    );
    let a = e.explain(&p);
    assert_eq!(
        (a.verdict, rule(&a).0.as_str()),
        (Verdict::Drop, "inet filter input")
    );
    // Without routes the fib answers are unknown, and so is the verdict.
    let bare = Evaluator::new(&snapshot("rpfilter-raw"), Routes::default());
    let a = bare.explain(&probe(&bare, L4::Tcp, "192.0.2.2", "192.0.2.1", 22));
    assert_eq!(a.verdict, Verdict::Unknown);
    assert!(a.reason.unwrap().contains("no routes given"));
}

#[test]
fn netdev_and_inet_ingress_run_first_for_their_device() {
    let e = ev("netdev-ingress");
    let a = tcp(&e, "198.51.100.9", "192.0.2.1", 22);
    assert_eq!(a.verdict, Verdict::Drop);
    assert_eq!(rule(&a).0, "netdev edge ingress_pub");
    assert_eq!(a.trace[0].hook, Hook::Ingress);
    let a = tcp(&e, "169.254.3.4", "192.0.2.1", 22);
    assert_eq!(
        (a.verdict, rule(&a).0.as_str()),
        (Verdict::Drop, "netdev edge ingress_pub")
    );
    // The ingress chains are bound to pw-pub only.
    let a = tcp(&e, "10.99.0.2", "10.99.0.1", 6162);
    assert_eq!(a.verdict, Verdict::Accept);
    assert!(a.trace.iter().all(|v| v.hook != Hook::Ingress));
    let a = tcp(&e, "192.0.2.2", "192.0.2.1", 22);
    assert_eq!(a.verdict, Verdict::Accept);
    assert_eq!(
        a.trace.iter().map(|v| v.priority).collect::<Vec<_>>(),
        [-500, -450, 0]
    );
}

#[test]
fn nat_redirect_and_dnat() {
    let e = ev("trap-redirect-port");
    let a = tcp(&e, "192.0.2.2", "192.0.2.1", 2222);
    assert_eq!(a.verdict, Verdict::Accept);
    let n = a.nat.unwrap();
    assert_eq!((n.kind.as_str(), n.port), ("redirect", 22));
    let a = tcp(&e, "192.0.2.2", "192.0.2.1", 16162);
    assert_eq!(a.verdict, Verdict::Forwarded);
    let n = a.nat.unwrap();
    assert_eq!(
        (n.addr.to_string(), n.port),
        ("10.99.0.2".to_string(), 6162)
    );
    // The redirect is in an ip table: IPv6 keeps port 2222.
    assert_eq!(
        tcp(&e, "2001:db8:1::2", "2001:db8:1::1", 2222).verdict,
        Verdict::Drop
    );
    // dnat through a map with concatenated data.
    let e = ev("nat-gateway");
    let a = tcp(&e, "192.0.2.2", "192.0.2.1", 12500);
    assert_eq!(a.verdict, Verdict::Forwarded);
    let n = a.nat.unwrap();
    assert_eq!(
        (n.addr.to_string(), n.port),
        ("10.99.0.3".to_string(), 2500)
    );
    let a = tcp(&e, "2001:db8:1::2", "2001:db8:1::1", 16162);
    assert_eq!(a.verdict, Verdict::Forwarded);
    assert_eq!(a.nat.unwrap().addr.to_string(), "fd00:99::2");
}

#[test]
fn stateful_matches_are_assumed_first_connection() {
    let e = ev("backup-host-basic");
    let a = tcp(&e, "192.0.2.2", "192.0.2.1", 22);
    assert_eq!(a.verdict, Verdict::Accept);
    assert!(a.assumptions.iter().any(|s| s.contains("rate limits")));
    let e = ev("dynset-bruteforce");
    let a = tcp(&e, "192.0.2.2", "192.0.2.1", 22);
    assert_eq!(a.verdict, Verdict::Accept);
    assert!(a.assumptions.iter().any(|s| s.contains("dynamic sets")));
    let e = ev("iptables-xt");
    let a = tcp(&e, "192.0.2.2", "192.0.2.1", 22);
    assert_eq!(a.verdict, Verdict::Accept);
    assert!(a.assumptions.iter().any(|s| s.contains("recent")));
}

#[test]
fn invalid_probes_are_unknown() {
    let e = ev("trap-negation-udp");
    let p = Probe::new(
        L4::Tcp,
        "10.99.0.2".parse().unwrap(),
        "fd00:99::1".parse().unwrap(),
        1,
        2,
        e.iface("pw-priv"),
    );
    assert!(p.validate().is_err());
    assert_eq!(e.explain(&p).verdict, Verdict::Unknown);
}

fn unknown_expr() -> crate::snapshot::Expr {
    serde_json::from_value(serde_json::json!(
        {"type": "unknown", "name": "frobnicate", "reason": "expression type not decoded"}
    ))
    .unwrap()
}

fn chain_mut<'a>(s: &'a mut Snapshot, table: &str, chain: &str) -> &'a mut crate::snapshot::Chain {
    s.tables
        .iter_mut()
        .find(|t| t.name == table)
        .unwrap()
        .chains
        .iter_mut()
        .find(|c| c.name == chain)
        .unwrap()
}

#[test]
fn an_unknown_expression_is_unknown_only_when_it_matters() {
    // The dropping rule of `ip legacy` gets an undecodable expression.
    let mut s = snapshot("trap-accept-then-drop");
    let r = &mut chain_mut(&mut s, "legacy", "input").rules[1];
    r.exprs.insert(0, unknown_expr());
    r.incomplete = true;
    let handle = r.handle;
    let e = Evaluator::new(&s, topology());
    // From pw-pub to 6162 the rule decides: accept (policy) or drop.
    let a = tcp(&e, "192.0.2.2", "192.0.2.1", 6162);
    assert_eq!(a.verdict, Verdict::Unknown);
    assert_eq!(a.decided_by, None);
    let why = a.reason.unwrap();
    assert!(
        why.contains(&format!("table ip legacy chain input rule handle {handle}"))
            && why.contains("frobnicate"),
        "{why}"
    );
    // IPv6 never meets the ip table: certain.
    assert_eq!(
        tcp(&e, "2001:db8:1::2", "2001:db8:1::1", 6162).verdict,
        Verdict::Accept
    );
    // Whatever the expression does, the inet table drops UDP first.
    assert_eq!(
        udp(&e, "192.0.2.2", "192.0.2.1", 6162).verdict,
        Verdict::Drop
    );
    // 22 from pw-pub is accepted by inet veeam, then meets the unknown
    // expression before the rule's own port test: it could drop.
    let a = tcp(&e, "192.0.2.2", "192.0.2.1", 22);
    assert_eq!(a.verdict, Verdict::Unknown);

    // An opaque xt match in front of a drop, in a chain whose policy drops
    // anyway: every outcome is a drop.
    let mut s = snapshot("trap-policy-drop-after-accept");
    let mut rule = chain_mut(&mut s, "filter", "input").rules[0].clone();
    rule.handle = 999;
    rule.exprs = serde_json::from_value(serde_json::json!([
        {"type": "match", "name": "frob", "rev": 0, "info": {"kind": "raw", "bytes": "0x00"}},
        {"type": "immediate", "dreg": 0, "verdict": "drop"}
    ]))
    .unwrap();
    chain_mut(&mut s, "filter", "input").rules.push(rule);
    let e = Evaluator::new(&s, topology());
    let a = udp(&e, "10.99.0.2", "10.99.0.1", 6162);
    assert_eq!(a.verdict, Verdict::Drop);
    assert!(
        a.assumptions
            .iter()
            .any(|x| x.contains("frob") && x.contains("every outcome")),
        "{:?}",
        a.assumptions
    );
    // An earlier accept makes the rule irrelevant: no note at all.
    let a = tcp(&e, "10.99.0.2", "10.99.0.1", 22);
    assert_eq!(a.verdict, Verdict::Accept);
    assert!(a.assumptions.iter().all(|x| !x.contains("frob")));

    // A failed match before the unknown expression ends the rule first.
    let mut s = snapshot("trap-negation-udp");
    let r = &mut chain_mut(&mut s, "filter", "input").rules[1];
    let at = r.exprs.len() - 2;
    r.exprs.insert(at, unknown_expr());
    r.incomplete = true;
    let e = Evaluator::new(&s, topology());
    assert_eq!(
        udp(&e, "10.99.0.2", "10.99.0.1", 22).verdict,
        Verdict::Accept
    );
    assert_eq!(
        tcp(&e, "10.99.0.2", "10.99.0.1", 22).verdict,
        Verdict::Unknown
    );
}

#[test]
fn fields_the_probe_does_not_fix_are_unknown() {
    // `ip id 7 drop` in a chain with policy accept: the IP id is unknown.
    let mut s = snapshot("trap-negation-udp");
    let mut rule = chain_mut(&mut s, "filter", "input").rules[0].clone();
    rule.handle = 998;
    rule.exprs = serde_json::from_value(serde_json::json!([
        {"type": "payload", "base": "network", "offset": 4, "len": 2, "dreg": 1},
        {"type": "cmp", "sreg": 1, "op": "eq", "data": "0x0007"},
        {"type": "immediate", "dreg": 0, "verdict": "drop"}
    ]))
    .unwrap();
    chain_mut(&mut s, "filter", "input").rules.insert(0, rule);
    let e = Evaluator::new(&s, topology());
    let a = udp(&e, "10.99.0.2", "10.99.0.1", 2500);
    assert_eq!(a.verdict, Verdict::Unknown);
    assert!(a.reason.unwrap().contains("identification"));
    // A masked test of known bits only is decided: `ip frag-off & 0x1fff != 0`.
    let e = ev("netdev-ingress");
    assert_eq!(
        tcp(&e, "192.0.2.2", "192.0.2.1", 22).verdict,
        Verdict::Accept
    );
}

const FIXTURES: &[&str] = &[
    "backup-host-basic",
    "concat-sets",
    "dynset-bruteforce",
    "evault-agent",
    "fail2ban-blocklist",
    "firewalld-zones",
    "iptables-xt",
    "marks-ctmark",
    "multi-table-priorities",
    "named-objects",
    "nat-hook-order",
    "nat-gateway",
    "netdev-ingress",
    "rpfilter-raw",
    "tcp-hardening",
    "tproxy-socket",
    "trap-accept-then-drop",
    "trap-goto-vs-jump",
    "trap-inet-ip-saddr-v6",
    "trap-mark-prerouting",
    "trap-negation-udp",
    "trap-notrack-untracked",
    "trap-policy-drop-after-accept",
    "trap-redirect-port",
    "trap-return-from-jump",
    "trap-vmap-fallthrough",
    "ufw-host",
    "veeam-repository",
];

/// Probes from several sources, on every interface, to many ports.
fn grid(e: &Evaluator) -> Vec<Probe> {
    let ports = [
        22, 53, 67, 68, 123, 137, 500, 1000, 2222, 2500, 2546, 2547, 2548, 2549, 2600, 3000, 3100,
        3300, 3301, 4000, 5000, 6160, 6161, 6162, 6163, 6180, 8000, 8050, 8086, 8100, 10005, 12500,
        16162, 16180, 40000,
    ];
    let srcs = [
        "192.0.2.2",
        "192.0.2.66",
        "10.99.0.2",
        "10.99.0.200",
        "10.0.0.10",
        "198.51.100.7",
        "203.0.113.5",
        "127.0.0.1",
        "2001:db8:1::2",
        "fd00:99::2",
        "fe80::99",
        "::1",
    ];
    let mut out = Vec::new();
    for iif in ["pw-pub", "pw-priv", "lo"] {
        let itf = e.iface(iif);
        for src in srcs {
            let s: IpAddr = src.parse().unwrap();
            let dst = e
                .routes()
                .interfaces
                .iter()
                .find(|i| i.name == iif)
                .and_then(|i| {
                    i.addrs
                        .iter()
                        .map(|a| a.addr())
                        .find(|a| a.is_ipv6() == s.is_ipv6())
                })
                .unwrap();
            for port in ports {
                for proto in [L4::Tcp, L4::Udp] {
                    out.push(Probe::new(proto, s, dst, 40000, port, itf.clone()));
                }
            }
        }
    }
    out
}

#[test]
fn guards_and_indexes_do_not_change_answers() {
    let mut total = 0;
    for fx in FIXTURES {
        let fast = ev(fx);
        assert!(
            fast.prog.guards,
            "{fx}: a rule reads registers it did not write"
        );
        let mut plain = ev(fx);
        plain.prog.guards = false;
        for c in &mut plain.prog.chains {
            c.index = Box::new([]);
            for r in &mut c.rules {
                r.guard = Box::new([]);
            }
        }
        for p in grid(&fast) {
            let (a, b) = (fast.explain(&p), plain.explain(&p));
            total += 1;
            assert_eq!(
                (
                    &a.verdict,
                    &a.decided_by,
                    &a.reject_with,
                    &a.nat,
                    &a.trace,
                    &a.reason
                ),
                (
                    &b.verdict,
                    &b.decided_by,
                    &b.reject_with,
                    &b.nat,
                    &b.trace,
                    &b.reason
                ),
                "{fx}: {p:?}"
            );
            assert_eq!(fast.verdict(&p), a.verdict);
        }
    }
    assert!(total > 20_000);
}

/// A synthetic ruleset of `n` rules in one input chain, most of them
/// `iifname . saddr . dport` accepts, some with anonymous sets, and a
/// 1,000-element interval blocklist.
fn synthetic(n: usize) -> Snapshot {
    synthetic_with(n, false)
}

/// With `ranges`, every rule tests a port range and an address prefix
/// (nothing an equality index can use).
fn synthetic_with(n: usize, ranges: bool) -> Snapshot {
    use serde_json::json;
    let mut rules = Vec::new();
    for i in 0..n {
        let port = 10000 + i as u16;
        let exprs = if ranges {
            json!([
                {"type": "meta", "key": "l4proto", "dreg": 1},
                {"type": "cmp", "sreg": 1, "op": "eq", "data": "0x06"},
                {"type": "payload", "base": "transport", "offset": 2, "len": 2, "dreg": 1},
                {"type": "range", "sreg": 1, "op": "eq", "from": format!("0x{port:04x}"), "to": format!("0x{:04x}", port + 3)},
                {"type": "payload", "base": "network", "offset": 12, "len": 4, "dreg": 1},
                {"type": "bitwise", "sreg": 1, "dreg": 1, "len": 4, "op": "bool", "mask": "0xffffff00", "xor": "0x00000000"},
                {"type": "cmp", "sreg": 1, "op": "eq", "data": format!("0x0a63{:02x}00", i % 256)},
                {"type": "immediate", "dreg": 0, "verdict": "accept"}
            ])
        } else if i % 10 == 9 {
            json!([
                {"type": "meta", "key": "l4proto", "dreg": 1},
                {"type": "cmp", "sreg": 1, "op": "eq", "data": "0x06"},
                {"type": "payload", "base": "transport", "offset": 2, "len": 2, "dreg": 1},
                {"type": "lookup", "set": "ports", "sreg": 1, "invert": false},
                {"type": "payload", "base": "network", "offset": 12, "len": 4, "dreg": 1},
                {"type": "lookup", "set": "block", "sreg": 1, "invert": false},
                {"type": "counter", "packets": 0, "bytes": 0},
                {"type": "immediate", "dreg": 0, "verdict": "drop"}
            ])
        } else {
            json!([
                {"type": "meta", "key": "iifname", "dreg": 1},
                {"type": "cmp", "sreg": 1, "op": "eq", "data": "0x70772d707269760000000000000000"},
                {"type": "meta", "key": "l4proto", "dreg": 1},
                {"type": "cmp", "sreg": 1, "op": "eq", "data": "0x06"},
                {"type": "payload", "base": "network", "offset": 12, "len": 4, "dreg": 1},
                {"type": "cmp", "sreg": 1, "op": "eq", "data": format!("0x0a63{:02x}{:02x}", i / 256, i % 256)},
                {"type": "payload", "base": "transport", "offset": 2, "len": 2, "dreg": 1},
                {"type": "cmp", "sreg": 1, "op": "eq", "data": format!("0x{port:04x}")},
                {"type": "counter", "packets": 0, "bytes": 0},
                {"type": "immediate", "dreg": 0, "verdict": "accept"}
            ])
        };
        rules.push(json!({"handle": i + 10, "position": i, "exprs": exprs}));
    }
    let block: Vec<_> = (0..1000)
        .map(|i| json!({"range": [format!("203.{}.{}.0", i / 256, i % 256), format!("203.{}.{}.127", i / 256, i % 256)]}))
        .collect();
    serde_json::from_value(json!({"generation": 1, "tables": [{
        "family": "inet", "name": "filter", "handle": 1,
        "sets": [
            {"name": "ports", "handle": 1, "flags": 4, "key": [{"type": "inet_service", "len": 2}],
             "elements": [{"range": [1, 1023]}, 6162, {"range": [2500, 3300]}]},
            {"name": "block", "handle": 2, "flags": 4, "key": [{"type": "ipv4_addr", "len": 4}],
             "elements": block}
        ],
        "chains": [{"name": "input", "handle": 1, "type": "filter", "hook": "input",
                    "priority": 0, "policy": "drop", "rules": rules}]
    }]}))
    .unwrap()
}

#[test]
fn synthetic_ruleset_is_evaluated_like_the_rules_say() {
    let e = Evaluator::new(&synthetic(1000), topology());
    assert_eq!(
        tcp(&e, "10.99.0.5", "10.99.0.1", 10005).verdict,
        Verdict::Accept
    );
    assert_eq!(
        tcp(&e, "10.99.0.5", "10.99.0.1", 10006).verdict,
        Verdict::Drop
    );
    assert_eq!(
        tcp(&e, "10.99.3.231", "10.99.0.1", 10999).verdict,
        Verdict::Drop
    );
    let a = tcp(&e, "203.0.9.5", "192.0.2.1", 22);
    assert_eq!((a.verdict, rule(&a).1), (Verdict::Drop, 19));
}

/// `cargo test --release --lib eval::tests::throughput -- --ignored --nocapture`
#[test]
#[ignore]
fn throughput() {
    let e = Evaluator::new(&synthetic(1000), topology());
    let probes: Vec<Probe> = (0..1000u32)
        .map(|i| {
            let (src, dst) = if i % 2 == 0 {
                (format!("10.99.{}.{}", i % 4, i % 250), "10.99.0.1")
            } else {
                (format!("192.0.2.{}", 2 + i % 200), "192.0.2.1")
            };
            probe(
                &e,
                if i % 3 == 0 { L4::Udp } else { L4::Tcp },
                &src,
                dst,
                (9000 + i * 7 % 3000) as u16,
            )
        })
        .collect();
    let hard = Evaluator::new(&synthetic_with(1000, true), topology());
    for (n, ranges) in [(20_000, false), (20_000, true)] {
        let snap = synthetic_with(n, ranges);
        let t = std::time::Instant::now();
        let big = Evaluator::new(&snap, topology());
        let built = t.elapsed();
        let t = std::time::Instant::now();
        let mut k = 0;
        for p in probes.iter().cycle().take(20_000) {
            std::hint::black_box(big.explain(p));
            k += 1;
        }
        println!(
            "{n} rules (ranges: {ranges}): built in {built:?}, {:.0} probes/s",
            k as f64 / t.elapsed().as_secs_f64()
        );
    }
    let ufw = ev("ufw-host");
    let fwd = ev("firewalld-zones");
    let f2b = ev("fail2ban-blocklist");
    let real: Vec<Probe> = grid(&ufw);
    for (what, full, e, probes) in [
        ("verdict", false, &e, &probes),
        ("explain", true, &e, &probes),
        ("verdict, port ranges", false, &hard, &probes),
        ("explain, port ranges", true, &hard, &probes),
        ("explain, ufw-host", true, &ufw, &real),
        ("explain, firewalld-zones", true, &fwd, &real),
        ("explain, fail2ban-blocklist", true, &f2b, &real),
    ] {
        let t = std::time::Instant::now();
        let mut n = 0u64;
        while t.elapsed().as_secs_f64() < 2.0 {
            for p in probes.iter() {
                if full {
                    std::hint::black_box(e.explain(p));
                } else {
                    std::hint::black_box(e.verdict(p));
                }
                n += 1;
            }
        }
        let rate = n as f64 / t.elapsed().as_secs_f64();
        println!("{what}: {rate:.0} probes/s on one core");
    }
}

#[test]
fn conntrack_and_nat_run_at_their_hook_points() {
    // Kernel-verified: `ct state` before conntrack is invalid, and nat chains
    // run at -100 whatever their own priority.
    let e = ev("nat-hook-order");
    let a = tcp(&e, "192.0.2.2", "192.0.2.1", 2222);
    assert_eq!(a.verdict, Verdict::Accept);
    assert_eq!(
        a.trace.iter().map(|v| v.chain.as_str()).collect::<Vec<_>>(),
        ["raw", "mid", "early_nat", "late"]
    );
    assert_eq!(a.nat.unwrap().port, 22);
}

#[test]
fn fixtures_are_decided_except_where_sockets_matter() {
    for fx in FIXTURES {
        let e = ev(fx);
        let unknown = grid(&e)
            .iter()
            .filter(|p| e.verdict(p) == Verdict::Unknown)
            .count();
        if *fx == "tproxy-socket" {
            assert!(unknown > 0);
        } else {
            assert_eq!(unknown, 0, "{fx}");
        }
    }
    // With the host's sockets known (none transparent), tproxy is decided.
    let mut routes = topology();
    routes.sockets = Some(vec![Socket {
        proto: L4::Tcp,
        addr: None,
        port: 6180,
        transparent: false,
        mark: 0,
    }]);
    let e = Evaluator::new(&snapshot("tproxy-socket"), routes);
    assert!(grid(&e).iter().all(|p| e.verdict(p) != Verdict::Unknown));
    assert_eq!(
        tcp(&e, "192.0.2.2", "192.0.2.1", 6180).verdict,
        Verdict::Drop
    );
}

#[test]
fn public_types_serialise_and_evaluators_are_shared() {
    fn shared<T: Send + Sync>() {}
    shared::<Evaluator>();
    let e = ev("trap-redirect-port");
    let a = tcp(&e, "192.0.2.2", "192.0.2.1", 2222);
    let j = serde_json::to_string(&a).unwrap();
    assert!(j.contains(r#""verdict":"accept""#), "{j}");
    assert!(
        j.contains(r#""decided_by":{"kind":"rule","family":"inet""#),
        "{j}"
    );
    assert_eq!(serde_json::from_str::<Answer>(&j).unwrap(), a);
    let r = topology();
    let j = serde_json::to_string(&r).unwrap();
    assert_eq!(serde_json::from_str::<Routes>(&j).unwrap(), r);
    let p = probe(&e, L4::Udp, "fd00:99::2", "fd00:99::1", 53);
    let j = serde_json::to_string(&p).unwrap();
    assert_eq!(serde_json::from_str::<Probe>(&j).unwrap(), p);
}

#[test]
fn loopback_probes_were_tracked_on_the_way_out() {
    // Kernel-verified: on lo, `ct state` is already new at -300, `notrack`
    // has no effect and prerouting nat chains are skipped.
    let s: Snapshot = serde_json::from_value(serde_json::json!({"generation": 1, "tables": [{
    "family": "inet", "name": "t", "handle": 1, "sets": [],
    "chains": [
        {"name": "raw", "handle": 1, "type": "filter", "hook": "prerouting",
         "priority": -300, "policy": "accept", "rules": [
            {"handle": 2, "position": 0, "exprs": [{"type": "notrack"}]}]},
        {"name": "inp", "handle": 3, "type": "filter", "hook": "input",
         "priority": 0, "policy": "drop", "rules": [
            {"handle": 4, "position": 0, "exprs": [
                {"type": "ct", "key": "state", "dreg": 1},
                {"type": "cmp", "sreg": 1, "op": "eq", "data": "0x08000000"},
                {"type": "immediate", "dreg": 0, "verdict": "accept"}]}]}
    ]}]}))
    .unwrap();
    let e = Evaluator::new(&s, topology());
    let lo = e.iface("lo");
    let p = Probe::new(
        L4::Tcp,
        "127.0.0.1".parse().unwrap(),
        "127.0.0.1".parse().unwrap(),
        40000,
        22,
        lo,
    );
    let a = e.explain(&p);
    assert_eq!(a.verdict, Verdict::Accept);
    assert!(a.assumptions.iter().any(|x| x.contains("local process")));
    // From outside, notrack in raw makes the packet untracked: dropped.
    assert_eq!(tcp(&e, "192.0.2.2", "192.0.2.1", 22).verdict, Verdict::Drop);
}

/// Snapshots may come from a JSON file: expressions with any register, length,
/// offset or data size must never make the evaluator panic.
#[test]
fn malformed_expressions_never_panic() {
    use serde_json::Value;
    let mut seed = std::env::var("PW_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x9e37_79b9_7f4a_7c15u64);
    let mut rnd = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n.max(1)
    };
    let bases = [
        "ufw-host",
        "nat-gateway",
        "concat-sets",
        "rpfilter-raw",
        "marks-ctmark",
        "iptables-xt",
    ]
    .into_iter()
    .map(snapshot)
    .chain([
        xt_queue_snapshot(),
        xt_nat_snapshot(),
        xt_matches_snapshot(),
    ]);
    for base in bases {
        let probes: Vec<Probe> = {
            let e = Evaluator::new(&base, topology());
            grid(&e).into_iter().step_by(97).collect()
        };
        let iters: usize = std::env::var("PW_FUZZ_ITERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(150);
        for _ in 0..iters {
            let mut s = base.clone();
            for _ in 0..4 {
                let t = rnd(s.tables.len() as u64) as usize;
                let chains = &mut s.tables[t].chains;
                let c = rnd(chains.len() as u64) as usize;
                let rules = &mut chains[c].rules;
                if rules.is_empty() {
                    continue;
                }
                let r = rnd(rules.len() as u64) as usize;
                let exprs = &mut rules[r].exprs;
                let x = rnd(exprs.len() as u64) as usize;
                let mut v = serde_json::to_value(&exprs[x]).unwrap();
                if let Value::Object(m) = &mut v {
                    for (k, val) in m.iter_mut() {
                        // xt options: their numbers too.
                        if let Value::Object(info) = val {
                            for x in info.values_mut() {
                                if x.is_number() {
                                    let bits = 8 * (1 + rnd(4));
                                    *x = Value::from(rnd(1 << bits));
                                }
                            }
                            continue;
                        }
                        match val {
                            Value::Number(_) if k != "type" => {
                                *val = Value::from(match rnd(3) {
                                    0 => rnd(30),
                                    1 => rnd(100),
                                    _ => rnd(1 << 32),
                                })
                            }
                            Value::String(h) if h.starts_with("0x") => {
                                let n = rnd(40) as usize;
                                *h = format!(
                                    "0x{}",
                                    (0..n)
                                        .map(|_| format!("{:02x}", rnd(256)))
                                        .collect::<String>()
                                );
                            }
                            _ => {}
                        }
                    }
                }
                if let Ok(e) = serde_json::from_value(v) {
                    exprs[x] = e;
                }
            }
            let e = Evaluator::new(&s, topology());
            for p in &probes {
                let _ = e.explain(p);
            }
        }
    }
}

/// What the exposure map says of a probe, as a verdict: `accept` or
/// `unknown` from the opening covering it, `drop` for "not accepted".
fn exposed(x: &exposure::Exposure, p: &Probe) -> Verdict {
    x.lookup(p.proto, p.saddr, p.daddr, &p.iif.name, p.sport, p.dport)
        .map_or(Verdict::Drop, |o| o.verdict)
}

fn as_exposure(v: Verdict) -> Verdict {
    match v {
        Verdict::Accept | Verdict::Unknown => v,
        _ => Verdict::Drop,
    }
}

/// Probes at and around every edge of every opening, plus the grid.
fn edge_probes(e: &Evaluator, x: &exposure::Exposure, seed: &mut u64) -> Vec<Probe> {
    let mut next = move || {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    };
    let mut out: Vec<Probe> = grid(e).into_iter().filter(|p| p.iif.name != "lo").collect();
    for o in &x.openings {
        let fam = o.family;
        let mut srcs = o.sources.sample(4);
        if let Some(&(a, b)) = o.sources.intervals().first() {
            srcs.extend([a.wrapping_sub(1), b.wrapping_add(1)].map(|v| fam.addr(v & fam.max())));
        }
        srcs.push(fam.addr(next() as u128 & fam.max()));
        let (f, l) = (o.ports.first(), o.ports.last());
        let ports = [f, l, f.wrapping_sub(1), l.wrapping_add(1), f + (l - f) / 2];
        for s in srcs {
            for d in ports {
                for &to in &o.to {
                    out.push(Probe::new(
                        o.proto,
                        s,
                        to,
                        o.sports.first(),
                        d,
                        e.iface(&o.iif),
                    ));
                }
            }
        }
    }
    out
}

/// Checks the exposure map against explain on every fixture with the
/// host side `routes`; returns the number of probes compared.
fn exposure_agrees_with(routes: &Routes) -> usize {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut total = 0;
    for fx in FIXTURES {
        let e = Evaluator::new(&snapshot(fx), routes.clone());
        let x = e.exposure();
        assert!(x.notes.is_empty(), "{fx}: {:?}", x.notes);
        for p in edge_probes(&e, &x, &mut seed) {
            let want = as_exposure(e.verdict(&p));
            let got = exposed(&x, &p);
            assert_eq!(
                got,
                want,
                "{fx}: {:?} {} -> {} {}:{} on {}: exposure says {got} ({:?}), explain {want}",
                p.proto,
                p.saddr,
                p.daddr,
                p.sport,
                p.dport,
                p.iif.name,
                x.lookup(p.proto, p.saddr, p.daddr, &p.iif.name, p.sport, p.dport)
                    .and_then(|o| o.reason.clone())
            );
            total += 1;
        }
    }
    total
}

#[test]
fn exposure_agrees_with_explain_on_every_fixture() {
    let total = exposure_agrees_with(&topology());
    assert!(total > 10_000, "{total} probes");
}

/// With reverse-path filtering (strict on pw-pub, loose on pw-priv, whose
/// sources then need a route back at all), `route_localnet` and
/// `accept_local` set somewhere, the map still agrees with explain: the
/// routes split the sources, and interfaces with different settings are
/// not taken as alike.
#[test]
fn exposure_agrees_with_explain_under_reverse_path_filtering() {
    let mut r = wide_topology();
    r.routes.push(Route::via("198.51.100.0/24", "pw-pub"));
    r.routes.push(blackhole_203());
    for i in &mut r.interfaces {
        match i.name.as_str() {
            "pw-pub" => i.rp_filter = crate::host::RpFilter::Strict,
            "pw-priv" => i.rp_filter = crate::host::RpFilter::Loose,
            "eth7" => i.rp_filter = crate::host::RpFilter::Loose,
            "veth9" => i.accept_local = Some(crate::host::ConfFrom::All),
            _ => {}
        }
    }
    let total = exposure_agrees_with(&r);
    assert!(total > 10_000, "{total} probes");
}

/// The topology with reverse-path filtering on pw-pub and the answer for
/// a probe from `src` to 192.0.2.1:22 arriving there.
fn on_pub(rp: crate::host::RpFilter, from_all: bool, src: &str, dst: &str) -> Answer {
    let mut r = topology();
    r.routes.push(blackhole_203());
    r.interfaces[1].rp_filter = rp;
    if from_all {
        r.interfaces[1].rp_filter_from = crate::host::ConfFrom::All;
    }
    let e = Evaluator::new(&snapshot("backup-host-basic"), r);
    let p = Probe::new(
        L4::Tcp,
        src.parse().unwrap(),
        dst.parse().unwrap(),
        40000,
        22,
        e.iface("pw-pub"),
    );
    e.explain(&p)
}

fn routing(a: &Answer) -> (Verdict, Option<RoutingCheck>, Option<&str>) {
    let step = a.routing.as_ref();
    (
        a.verdict,
        step.map(|s| s.check),
        step.and_then(|s| s.setting.as_deref()),
    )
}

#[test]
fn reverse_path_filtering_drops_before_the_input_hook() {
    use crate::host::RpFilter::{Loose, Off, Strict};
    let pub1 = Some("net.ipv4.conf.pw-pub.rp_filter=1");
    // The base line: 22 is open on pw-pub to anyone.
    for src in ["192.0.2.2", "10.0.0.10", "10.99.0.2", "198.51.100.7"] {
        assert_eq!(
            on_pub(Off, false, src, "192.0.2.1").verdict,
            Verdict::Accept
        );
    }
    // Strict: the route back must leave through pw-pub.
    assert_eq!(
        routing(&on_pub(Strict, false, "192.0.2.2", "192.0.2.1")).1,
        None
    );
    for src in ["10.0.0.10", "10.99.0.2", "198.51.100.7", "203.0.113.5"] {
        let a = on_pub(Strict, false, src, "192.0.2.1");
        assert_eq!(
            routing(&a),
            (Verdict::Drop, Some(RoutingCheck::RpFilter), pub1),
            "{src}: {a:#?}"
        );
        assert_eq!(a.decided_by, None);
        assert!(a
            .trace
            .iter()
            .all(|v| v.hook != crate::snapshot::Hook::Input));
        assert!(a
            .reason
            .as_deref()
            .unwrap()
            .contains("before the input hook"));
    }
    let a = on_pub(Strict, false, "10.0.0.10", "192.0.2.1");
    assert!(
        a.reason
            .as_deref()
            .unwrap()
            .contains("leaves through pw-priv, not pw-pub"),
        "{a:#?}"
    );
    // Loose (from `all`): any unicast route back; none, or a blackhole, is refused.
    let all2 = Some("net.ipv4.conf.all.rp_filter=2");
    for src in ["192.0.2.2", "10.0.0.10", "10.99.0.2"] {
        assert_eq!(
            on_pub(Loose, true, src, "192.0.2.1").verdict,
            Verdict::Accept,
            "{src}"
        );
    }
    for src in ["198.51.100.7", "203.0.113.5"] {
        assert_eq!(
            routing(&on_pub(Loose, true, src, "192.0.2.1")),
            (Verdict::Drop, Some(RoutingCheck::RpFilter), all2),
            "{src}"
        );
    }
    // The host's own address as source: a martian, with or without rp_filter.
    for rp in [Off, Strict, Loose] {
        let a = on_pub(rp, false, "10.99.0.1", "192.0.2.1");
        assert_eq!(
            routing(&a),
            (
                Verdict::Drop,
                Some(RoutingCheck::MartianSource),
                Some("net.ipv4.conf.all.accept_local=0, net.ipv4.conf.pw-pub.accept_local=0")
            ),
            "{rp:?}"
        );
    }
    // Loopback destination or source from outside: martians.
    let lo0 = Some("net.ipv4.conf.all.route_localnet=0, net.ipv4.conf.pw-pub.route_localnet=0");
    assert_eq!(
        routing(&on_pub(Off, false, "192.0.2.2", "127.0.0.1")),
        (Verdict::Drop, Some(RoutingCheck::MartianDestination), lo0)
    );
    assert_eq!(
        routing(&on_pub(Off, false, "127.0.0.9", "192.0.2.1")),
        (Verdict::Drop, Some(RoutingCheck::MartianSource), lo0)
    );
    assert_eq!(
        routing(&on_pub(Off, false, "0.1.2.3", "192.0.2.1")),
        (Verdict::Drop, Some(RoutingCheck::MartianSource), None)
    );
    // IPv6 has no such sysctls.
    assert_eq!(
        on_pub(Strict, false, "fd00:99::2", "2001:db8:1::1").verdict,
        Verdict::Accept
    );
}

#[test]
fn route_localnet_and_accept_local_lift_the_martian_checks() {
    let mut r = topology();
    r.interfaces[1].route_localnet = Some(crate::host::ConfFrom::Interface);
    r.interfaces[1].accept_local = Some(crate::host::ConfFrom::All);
    let e = Evaluator::new(&snapshot("backup-host-basic"), r);
    let p = |src: &str, dst: &str| {
        Probe::new(
            L4::Tcp,
            src.parse().unwrap(),
            dst.parse().unwrap(),
            40000,
            22,
            e.iface("pw-pub"),
        )
    };
    // 127.0.0.1 is local (lo's 127.0.0.0/8): delivered, then the ruleset decides.
    let a = e.explain(&p("192.0.2.2", "127.0.0.1"));
    assert_eq!(a.routing, None, "{a:#?}");
    assert_eq!(e.explain(&p("10.99.0.1", "192.0.2.1")).routing, None);
    // The loopback interface itself is never checked (its packets keep their route).
    let mut q = p("127.0.0.1", "127.0.0.1");
    q.iif = e.iface("lo");
    assert_eq!(
        Evaluator::new(&snapshot("backup-host-basic"), topology())
            .explain(&q)
            .routing,
        None
    );
}

#[test]
fn route_dev_is_the_longest_prefix_match() {
    let mut r = topology();
    r.routes.push(Route::via("0.0.0.0/0", "pw-pub"));
    r.routes.push(blackhole_203());
    let dev = |a: &str| r.route_dev(a.parse().unwrap());
    assert_eq!(dev("10.99.0.7"), Some("pw-priv"));
    assert_eq!(dev("10.0.0.10"), Some("pw-priv"));
    assert_eq!(dev("10.0.0.11"), Some("pw-pub"), "default route");
    assert_eq!(dev("192.0.2.200"), Some("pw-pub"));
    assert_eq!(dev("203.0.113.5"), None, "blackhole");
    assert_eq!(dev("fd00:99::2"), Some("pw-priv"));
    assert_eq!(dev("2001:db8:9::1"), None, "no IPv6 default route");
    assert_eq!(dev("10.99.0.1"), Some("lo"), "own address");
    assert_eq!(dev("127.0.0.9"), Some("lo"));
}

#[test]
fn default_local_addr_prefers_the_interface_then_any() {
    let r = topology();
    let a = |d: &str, v6: bool| r.default_local_addr(d, v6).map(|a| a.to_string());
    assert_eq!(a("pw-priv", false).as_deref(), Some("10.99.0.1"));
    assert_eq!(a("pw-pub", true).as_deref(), Some("2001:db8:1::1"));
    assert_eq!(a("nosuch", false).as_deref(), Some("192.0.2.1"));
    assert_eq!(a("lo", false).as_deref(), Some("127.0.0.1"));
}

/// The classes of the non-loopback interfaces, by name.
fn if_classes(e: &Evaluator, fam: crate::addrs::AddrFamily, proto: L4) -> Vec<Vec<String>> {
    let itfs: Vec<Iface> = e
        .routes
        .given
        .interfaces
        .iter()
        .filter(|i| i.iftype != ARPHRD_LOOPBACK)
        .map(|i| Iface::new(&i.name, i.index, i.iftype))
        .collect();
    ifclass::classes(&e.prog, &e.routes, fam, proto, &itfs)
        .into_iter()
        .map(|c| c.into_iter().map(|k| itfs[k].name.clone()).collect())
        .collect()
}

#[test]
fn interface_classes_never_change_the_exposure_map() {
    let mut grouped = 0;
    for fx in FIXTURES {
        let e = Evaluator::new(&snapshot(fx), wide_topology());
        let by_class = e.exposure_with(true);
        let each = e.exposure_with(false);
        let show = |x: &exposure::Exposure| -> Vec<String> {
            x.openings.iter().map(|o| format!("{o:?}")).collect()
        };
        let (a, b) = (show(&by_class), show(&each));
        if let Some(i) = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i)) {
            panic!(
                "{fx}: opening {i} differs:\n by class: {:?}\n each:     {:?}",
                a.get(i),
                b.get(i)
            );
        }
        assert_eq!(by_class.alike, each.alike, "{fx}: alike addresses");
        for fam in [crate::addrs::AddrFamily::V4, crate::addrs::AddrFamily::V6] {
            grouped += usize::from(if_classes(&e, fam, L4::Tcp).len() < 5);
        }
    }
    assert!(grouped > 20, "interfaces were grouped {grouped} times");
}

#[test]
fn interfaces_are_told_apart_exactly_where_rules_do() {
    use crate::addrs::AddrFamily::{V4, V6};
    let names = |v: &[&[&str]]| -> Vec<Vec<String>> {
        v.iter()
            .map(|c| c.iter().map(|s| s.to_string()).collect())
            .collect()
    };
    let classes = |fx: &str, fam| {
        if_classes(
            &Evaluator::new(&snapshot(fx), wide_topology()),
            fam,
            L4::Tcp,
        )
    };
    // `iif "lo"` and `iifname "pw-priv"` tests: only pw-priv differs, and
    // wg0 by its link type.
    assert_eq!(
        classes("backup-host-basic", V4),
        names(&[&["pw-pub", "eth7", "veth9"], &["pw-priv"], &["wg0"]])
    );
    // Zones by iifname for IPv4; IPv6 has an rpfilter `fib ... iif`, which
    // depends on each interface's routes.
    assert_eq!(
        classes("firewalld-zones", V4),
        names(&[&["pw-pub"], &["pw-priv"], &["eth7", "veth9"], &["wg0"]])
    );
    assert_eq!(
        classes("firewalld-zones", V6),
        names(&[&["pw-pub"], &["pw-priv"], &["eth7"], &["veth9"], &["wg0"]])
    );
    // A verdict map keyed by iifname: its two elements and the rest.
    assert_eq!(
        classes("trap-vmap-fallthrough", V4),
        names(&[&["pw-pub"], &["pw-priv"], &["eth7", "veth9"], &["wg0"]])
    );
}

/// A legacy table `name` (IPv4 unless `v6`) with one chain at `hook`
/// holding `rules`, policy ACCEPT.
fn legacy_table(
    v6: bool,
    name: &str,
    chain: &str,
    hook: crate::snapshot::Hook,
    rules: Vec<crate::snapshot::legacy::LegacyRule>,
) -> crate::snapshot::legacy::LegacyTable {
    use crate::snapshot::legacy::*;
    LegacyTable {
        family: if v6 {
            LegacyFamily::Ipv6
        } else {
            LegacyFamily::Ipv4
        },
        name: name.into(),
        contents: LegacyContents::Read {
            entries: 2 + rules.len() as u32,
            chains: vec![LegacyChain {
                name: chain.into(),
                hook,
                priority: priority(name, hook),
                rules,
                policy: crate::snapshot::Policy::Accept,
            }],
            user_chains: vec![],
        },
    }
}

/// A legacy rule: `[-s src] [-p tcp -m tcp --dport port] -j target`.
fn legacy_rule(
    src: Option<&str>,
    dport: Option<u16>,
    target: crate::snapshot::legacy::LegacyTarget,
) -> crate::snapshot::legacy::LegacyRule {
    use crate::snapshot::legacy::*;
    use crate::snapshot::xt::XtInfo;
    let mut ip = IpPart {
        src: src.map(|a| AddrMatch {
            addr: a.parse().unwrap(),
            mask: "255.255.255.255".parse().unwrap(),
            invert: false,
        }),
        ..IpPart::default()
    };
    let mut matches = Vec::new();
    if let Some(p) = dport {
        ip.proto = Some(ProtoMatch {
            proto: 6,
            invert: false,
        });
        // struct xt_tcp: sport[2], dport[2], option, flg_mask, flg_cmp, invflags.
        let mut b = Vec::new();
        for x in [0, 65535, p, p] {
            b.extend(u16::to_ne_bytes(x));
        }
        b.extend([0, 0, 0, 0]);
        let info = crate::snapshot::xt::decode_match("tcp", 0, &b, false);
        assert!(matches!(info, XtInfo::Tcp { .. }));
        matches.push(LegacyMatch {
            name: "tcp".into(),
            rev: 0,
            info,
        });
    }
    LegacyRule {
        ip,
        matches,
        target,
    }
}

#[test]
fn legacy_chains_are_evaluated_at_their_hooks() {
    use crate::snapshot::legacy::{LegacyContents, LegacyFamily, LegacyTable, LegacyTarget};
    use crate::snapshot::Hook;
    let mut snap = Snapshot::default();
    snap.legacy.push(legacy_table(
        false,
        "filter",
        "OUTPUT",
        Hook::Output,
        vec![legacy_rule(None, Some(443), LegacyTarget::Drop)],
    ));
    snap.legacy.push(legacy_table(
        false,
        "mangle",
        "PREROUTING",
        Hook::Prerouting,
        vec![legacy_rule(Some("10.99.0.3"), None, LegacyTarget::Drop)],
    ));
    let e = Evaluator::new(&snap, topology());
    // Inbound: mangle PREROUTING drops one source, lets the others on.
    let a = tcp(&e, "10.99.0.3", "10.99.0.1", 22);
    assert_eq!(a.verdict, Verdict::Drop, "{a:#?}");
    assert_eq!(
        a.decided_by.as_ref().unwrap().to_string(),
        "table ip mangle (iptables-legacy) chain PREROUTING rule handle 1"
    );
    assert_eq!(a.trace[0].priority, -150, "{a:#?}");
    assert_eq!(
        tcp(&e, "10.99.0.2", "10.99.0.1", 22).verdict,
        Verdict::Accept
    );
    // IPv6 has no legacy table.
    assert_eq!(
        tcp(&e, "fd00:99::2", "fd00:99::1", 22).verdict,
        Verdict::Accept
    );
    // Outbound: the filter table's OUTPUT drops 443 only.
    let out = |port| {
        OutProbe::new(
            L4::Tcp,
            "10.99.0.1".parse().unwrap(),
            "10.0.0.10".parse().unwrap(),
            40000,
            port,
        )
    };
    let a = e.explain_output(&out(443));
    assert_eq!(a.verdict, Verdict::Drop, "{a:#?}");
    assert_eq!(e.output_verdict(&out(443)), Verdict::Drop);
    assert_eq!(e.output_verdict(&out(80)), Verdict::Accept);
    // A table the kernel lists but will not give: unknown where it hooks,
    // but a nat table is not seen by an established connection's packets.
    snap.legacy.push(LegacyTable {
        family: LegacyFamily::Ipv4,
        name: "nat".into(),
        contents: LegacyContents::Unreadable {
            reason: "Operation not permitted".into(),
        },
    });
    let e = Evaluator::new(&snap, topology());
    let a = tcp(&e, "10.99.0.2", "10.99.0.1", 22);
    assert_eq!(a.verdict, Verdict::Unknown, "{a:#?}");
    assert!(a
        .reason
        .as_deref()
        .unwrap()
        .contains("legacy iptables table nat (IPv4) could not be read (Operation not permitted)"));
    let mut p = probe(&e, L4::Tcp, "10.99.0.2", "10.99.0.1", 22);
    p.established = true;
    assert_eq!(e.explain(&p).verdict, Verdict::Accept);
}

#[test]
fn a_legacy_drop_after_nf_tables_accepts_decides() {
    use crate::snapshot::legacy::LegacyTarget;
    use crate::snapshot::Hook;
    let mut snap = snapshot("backup-host-basic");
    snap.legacy.push(legacy_table(
        false,
        "security",
        "INPUT",
        Hook::Input,
        vec![legacy_rule(None, None, LegacyTarget::Drop)],
    ));
    let plain = Evaluator::new(&snapshot("backup-host-basic"), topology());
    let e = Evaluator::new(&snap, topology());
    // Every IPv4 probe nf_tables accepts is dropped by the security table
    // (input priority 50); one dropped or rejected before it keeps its
    // answer; IPv6 is unchanged.
    let mut seen = (0, 0);
    for p in grid(&plain) {
        let (a, b) = (plain.explain(&p), e.explain(&p));
        match a.verdict {
            Verdict::Accept if !p.is_v6() => {
                assert_eq!(b.verdict, Verdict::Drop, "{p:?}");
                assert!(b
                    .decided_by
                    .as_ref()
                    .unwrap()
                    .to_string()
                    .contains("security (iptables-legacy) chain INPUT"));
                seen.0 += 1;
            }
            Verdict::Drop | Verdict::Reject if a.trace.last().is_some_and(|v| v.priority < 50) => {
                assert_eq!(b.verdict, a.verdict, "{p:?}");
                seen.1 += 1;
            }
            _ if p.is_v6() => assert_eq!(b.verdict, a.verdict, "{p:?}"),
            _ => {}
        }
    }
    assert!(seen.0 > 0 && seen.1 > 0, "{seen:?}");
}

#[test]
fn unlisted_legacy_tables_are_an_assumption_of_their_family() {
    use crate::snapshot::legacy::{LegacyFamily, LegacyUnlisted};
    let mut snap = Snapshot::default();
    snap.legacy_unlisted.push(LegacyUnlisted {
        family: LegacyFamily::Ipv4,
        reason: "reading /proc/net/ip_tables_names: Permission denied".into(),
    });
    let e = Evaluator::new(&snap, topology());
    let a = tcp(&e, "10.99.0.2", "10.99.0.1", 22);
    assert_eq!(a.verdict, Verdict::Accept);
    assert!(
        a.assumptions
            .iter()
            .any(|s| s.starts_with("legacy iptables tables (IPv4) not checked")),
        "{a:#?}"
    );
    let a = tcp(&e, "fd00:99::2", "fd00:99::1", 22);
    assert!(
        !a.assumptions.iter().any(|s| s.contains("legacy")),
        "{a:#?}"
    );
    assert!(e
        .exposure()
        .notes
        .iter()
        .any(|n| n.contains("legacy iptables tables (IPv4) not checked")));
}

/// A packet the routing decision drops has passed every prerouting chain,
/// legacy ones included, and no input chain: a legacy mangle PREROUTING
/// rule that drops it decides before routing, a legacy INPUT rule is
/// never reached.
#[test]
fn a_routing_drop_has_passed_legacy_prerouting_but_not_input() {
    use crate::host::RpFilter::Strict;
    use crate::snapshot::legacy::LegacyTarget;
    use crate::snapshot::Hook;
    let mut r = topology();
    r.interfaces[1].rp_filter = Strict;
    let probe_on_pub = |snap: &Snapshot| {
        let e = Evaluator::new(snap, r.clone());
        let p = Probe::new(
            L4::Tcp,
            "10.0.0.10".parse().unwrap(),
            "192.0.2.1".parse().unwrap(),
            40000,
            22,
            e.iface("pw-pub"),
        );
        e.explain(&p)
    };
    let mut snap = snapshot("backup-host-basic");
    snap.legacy.push(legacy_table(
        false,
        "filter",
        "INPUT",
        Hook::Input,
        vec![legacy_rule(None, None, LegacyTarget::Accept)],
    ));
    let a = probe_on_pub(&snap);
    assert_eq!(a.verdict, Verdict::Drop, "{a:#?}");
    assert_eq!(routing(&a).1, Some(RoutingCheck::RpFilter));
    snap.legacy.push(legacy_table(
        false,
        "mangle",
        "PREROUTING",
        Hook::Prerouting,
        vec![legacy_rule(Some("10.0.0.10"), None, LegacyTarget::Drop)],
    ));
    let a = probe_on_pub(&snap);
    assert_eq!(a.verdict, Verdict::Drop, "{a:#?}");
    assert_eq!(routing(&a).1, None, "{a:#?}");
    assert_eq!(
        a.decided_by.as_ref().unwrap().to_string(),
        "table ip mangle (iptables-legacy) chain PREROUTING rule handle 1"
    );
}

/// `blackhole 203.0.113.0/24`: a route back that loose reverse-path
/// filtering refuses.
fn blackhole_203() -> Route {
    Route {
        dst: "203.0.113.0/24".parse().unwrap(),
        dev: None,
        kind: RouteKind::Blackhole,
        table: crate::host::RT_TABLE_MAIN,
    }
}

/// A snapshot of one `ip` table holding `chains` (JSON as `dump --json`
/// writes it).
fn ip_table(name: &str, chains: serde_json::Value) -> Snapshot {
    serde_json::from_value(serde_json::json!({"generation": 1, "tables": [
        {"family": "ip", "name": name, "handle": 1, "flags": 0, "chains": chains, "sets": []}
    ]}))
    .expect("snapshot JSON")
}

/// `meta l4proto tcp tcp dport PORT` then `then`, as rule `handle`.
fn tcp_dport_rule(handle: u64, port: u16, then: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"handle": handle, "position": handle, "exprs": [
        {"type": "meta", "key": "l4proto", "dreg": 1},
        {"type": "cmp", "sreg": 1, "op": "eq", "data": "0x06"},
        {"type": "payload", "base": "transport", "offset": 2, "len": 2, "dreg": 1},
        {"type": "cmp", "sreg": 1, "op": "eq", "data": format!("0x{port:04x}")},
        then
    ]})
}

/// xt NFQUEUE and nft `queue` rules, with and without bypass.
fn xt_queue_snapshot() -> Snapshot {
    use serde_json::json;
    let xtq = |num: u16, bypass: bool| {
        json!({"type": "target", "name": "NFQUEUE", "rev": 3, "info":
            {"kind": "queue", "num": num, "total": 1, "bypass": bypass, "fanout": false}})
    };
    let nftq =
        |num: u16, flags: u16| json!({"type": "queue", "num": num, "total": 2, "flags": flags});
    let drop = json!({"type": "immediate", "dreg": 0, "verdict": "drop"});
    ip_table(
        "filter",
        json!([{"name": "INPUT", "handle": 1, "type": "filter", "hook": "input",
                "priority": 0, "policy": "accept", "rules": [
            tcp_dport_rule(2, 9000, xtq(3, false)),
            tcp_dport_rule(3, 9001, xtq(3, true)),
            tcp_dport_rule(4, 9001, drop.clone()),
            tcp_dport_rule(5, 9002, nftq(7, 0)),
            tcp_dport_rule(6, 9003, nftq(7, 1)),
        ]}]),
    )
}

#[test]
fn queues_drop_without_a_listener_and_go_on_with_bypass() {
    let snap = xt_queue_snapshot();
    let with = |queues: Option<Vec<u16>>| {
        let mut r = topology();
        r.queues = queues;
        Evaluator::new(&snap, r)
    };
    // No listener: drop, or with bypass the chain's accept (its later
    // rules do not run).
    let e = with(Some(vec![]));
    for (port, want) in [
        (9000, Verdict::Drop),
        (9001, Verdict::Accept),
        (9002, Verdict::Drop),
        (9003, Verdict::Accept),
    ] {
        let a = tcp(&e, "192.0.2.2", "192.0.2.1", port);
        assert_eq!(a.verdict, want, "{port}: {a:#?}");
        assert!(
            a.assumptions.iter().any(|s| s.contains("NFQUEUE")),
            "{a:#?}"
        );
        assert!(matches!(a.decided_by, Some(DecidedBy::Rule(_))), "{a:#?}");
    }
    // A listener on the queue (queue 8 is the second of nft's 7-8), or
    // listeners not known: the reader decides.
    for queues in [Some(vec![3, 8]), None] {
        let e = with(queues.clone());
        for port in [9000, 9001, 9002, 9003] {
            let a = tcp(&e, "192.0.2.2", "192.0.2.1", port);
            assert_eq!(a.verdict, Verdict::Unknown, "{queues:?} {port}: {a:#?}");
            let why = a.reason.unwrap();
            assert!(why.contains("queue"), "{why}");
            let listened = if queues.is_some() {
                "listens"
            } else {
                "not known"
            };
            assert!(why.contains(listened), "{why}");
        }
    }
}

/// xt DNAT and REDIRECT targets in a `nat` prerouting chain.
fn xt_nat_snapshot() -> Snapshot {
    use serde_json::json;
    let nat = |target: &str, flags: u32, addr: Option<[&str; 2]>, ports: Option<[u16; 2]>| {
        let mut info = json!({"kind": "nat", "target": target, "flags": flags});
        if let Some(a) = addr {
            info["addr"] = json!(a);
        }
        if let Some(p) = ports {
            info["ports"] = json!(p);
        }
        json!({"type": "target", "name": target.to_uppercase(), "rev": 2, "info": info})
    };
    ip_table(
        "nat",
        json!([{"name": "PREROUTING", "handle": 1, "type": "nat", "hook": "prerouting",
                "priority": -100, "policy": "accept", "rules": [
            tcp_dport_rule(2, 8080, nat("dnat", 3, Some(["10.99.0.2", "10.99.0.2"]), Some([80, 80]))),
            tcp_dport_rule(3, 8081, nat("dnat", 1, Some(["10.99.0.2", "10.99.0.9"]), None)),
            tcp_dport_rule(4, 8082, nat("dnat", 2, None, Some([22, 22]))),
            tcp_dport_rule(5, 2500, nat("redirect", 2, None, Some([6162, 6162]))),
            tcp_dport_rule(6, 2501, nat("redirect", 0, None, None)),
            tcp_dport_rule(7, 9999, nat("dnat", 0x23, Some(["10.99.0.2", "10.99.0.2"]), Some([80, 90]))),
        ]}]),
    )
}

#[test]
fn xt_nat_targets_are_followed_like_nat_statements() {
    let snap = xt_nat_snapshot();
    let e = Evaluator::new(&snap, topology());
    let a = tcp(&e, "192.0.2.2", "192.0.2.1", 8080);
    assert_eq!(a.verdict, Verdict::Forwarded, "{a:#?}");
    let n = a.nat.unwrap();
    assert_eq!(
        (n.kind.as_str(), n.addr.to_string(), n.port),
        ("dnat", "10.99.0.2".into(), 80)
    );
    assert_eq!(n.rule.handle, 2);
    // An address range: its first address, said so; the port is kept.
    let a = tcp(&e, "192.0.2.2", "192.0.2.1", 8081);
    let n = a.nat.clone().unwrap();
    assert_eq!((n.addr.to_string(), n.port), ("10.99.0.2".into(), 8081));
    assert!(a.assumptions.iter().any(|s| s.contains("NAT to a range")));
    // A port only: to a local port of the same address.
    let a = tcp(&e, "192.0.2.2", "192.0.2.1", 8082);
    assert_eq!(a.verdict, Verdict::Accept);
    assert_eq!(a.nat.unwrap().port, 22);
    // REDIRECT: the input interface's address.
    let a = tcp(&e, "10.99.0.2", "10.99.0.1", 2500);
    let n = a.nat.unwrap();
    assert_eq!(
        (n.kind.as_str(), n.addr.to_string(), n.port),
        ("redirect", "10.99.0.1".into(), 6162)
    );
    let a = tcp(&e, "192.0.2.2", "192.0.2.1", 2501);
    let n = a.nat.unwrap();
    assert_eq!((n.addr.to_string(), n.port), ("192.0.2.1".into(), 2501));
    // A port offset (NF_NAT_RANGE_PROTO_OFFSET) is not modelled: unknown.
    assert_eq!(
        tcp(&e, "192.0.2.2", "192.0.2.1", 9999).verdict,
        Verdict::Unknown
    );
    // The table is IPv4: an IPv6 probe does not meet it.
    assert_eq!(
        tcp(&e, "2001:db8:1::2", "2001:db8:1::1", 8080).verdict,
        Verdict::Accept
    );
}

/// xt matches that drop, one destination port each.
fn xt_matches_snapshot() -> Snapshot {
    use serde_json::json;
    let m = |kind: serde_json::Value| {
        let name = kind["kind"].as_str().unwrap().to_string();
        json!({"type": "match", "name": name, "rev": 0, "info": kind})
    };
    let drop = |handle: u64, port: u16, info: serde_json::Value| {
        json!({"handle": handle, "position": handle, "exprs": [
            {"type": "payload", "base": "transport", "offset": 2, "len": 2, "dreg": 1},
            {"type": "cmp", "sreg": 1, "op": "eq", "data": format!("0x{port:04x}")},
            m(info),
            {"type": "immediate", "dreg": 0, "verdict": "drop"}
        ]})
    };
    ip_table(
        "filter",
        json!([{"name": "INPUT", "handle": 1, "type": "filter", "hook": "input",
                "priority": 0, "policy": "accept", "rules": [
            drop(2, 100, json!({"kind": "length", "range": [36, 36], "invert": false})),
            drop(3, 101, json!({"kind": "mac", "addr": [2, 0, 0, 0, 0, 1], "invert": false})),
            drop(4, 102, json!({"kind": "devgroup", "flags": 1, "src": [7, 0xff], "dst": [0, 0]})),
            drop(5, 103, json!({"kind": "rpfilter", "flags": 0})),
            drop(6, 104, json!({"kind": "statistic", "mode": 1, "invert": false, "every": 2})),
            drop(7, 105, json!({"kind": "statistic", "mode": 0, "invert": false, "probability": 0x8000_0000u32})),
            drop(8, 106, json!({"kind": "statistic", "mode": 1, "invert": true, "every": 0})),
        ]}]),
    )
}

#[test]
fn xt_matches_are_decided_where_the_probe_fixes_them() {
    let snap = xt_matches_snapshot();
    let mut routes = topology();
    routes.interfaces[2].group = 7; // pw-priv
    let e = Evaluator::new(&snap, routes);
    let verdict = |proto: L4, src: &str, dst: &str, port: u16, len: Option<u16>| {
        let mut p = probe(&e, proto, src, dst, port);
        p.payload_len = len;
        e.explain(&p)
    };
    // length: a UDP datagram's from its payload length; unknown without it.
    assert_eq!(
        verdict(L4::Udp, "192.0.2.2", "192.0.2.1", 100, Some(8)).verdict,
        Verdict::Drop
    );
    assert_eq!(
        verdict(L4::Udp, "192.0.2.2", "192.0.2.1", 100, Some(9)).verdict,
        Verdict::Accept
    );
    let a = verdict(L4::Udp, "192.0.2.2", "192.0.2.1", 100, None);
    assert_eq!(a.verdict, Verdict::Unknown);
    assert!(a.reason.unwrap().contains("xt length"));
    // mac: not known on Ethernet; never true on loopback.
    let a = verdict(L4::Tcp, "192.0.2.2", "192.0.2.1", 101, None);
    assert!(a.reason.unwrap().contains("xt mac"));
    let mut p = probe(&e, L4::Tcp, "127.0.0.1", "127.0.0.1", 101);
    p.iif = e.iface("lo");
    assert_eq!(e.explain(&p).verdict, Verdict::Accept);
    // devgroup: the input interface's group.
    assert_eq!(
        tcp(&e, "10.99.0.2", "10.99.0.1", 102).verdict,
        Verdict::Drop
    );
    assert_eq!(
        tcp(&e, "192.0.2.2", "192.0.2.1", 102).verdict,
        Verdict::Accept
    );
    // rpfilter (strict, not inverted: matches when the route back is right).
    assert_eq!(
        tcp(&e, "10.0.0.10", "10.99.0.1", 103).verdict,
        Verdict::Drop
    );
    let mut p = probe(&e, L4::Tcp, "10.0.0.10", "192.0.2.1", 103);
    p.iif = e.iface("pw-pub");
    assert_eq!(e.explain(&p).verdict, Verdict::Accept);
    // Without routes, rpfilter cannot be decided.
    let e2 = Evaluator::new(&snap, crate::host::Routes::default());
    let p = Probe::new(
        L4::Tcp,
        "10.0.0.10".parse().unwrap(),
        "10.99.0.1".parse().unwrap(),
        40000,
        103,
        Iface::new("pw-priv", 3, 1),
    );
    assert_eq!(e2.explain(&p).verdict, Verdict::Unknown);
    // statistic: unknown, named.
    let a = tcp(&e, "192.0.2.2", "192.0.2.1", 104);
    assert!(a.reason.unwrap().contains("statistic --mode nth"));
    // ... but a probability of 1 always matches, every 1st never misses.
    assert_eq!(
        tcp(&e, "192.0.2.2", "192.0.2.1", 105).verdict,
        Verdict::Drop
    );
    assert_eq!(
        tcp(&e, "192.0.2.2", "192.0.2.1", 106).verdict,
        Verdict::Accept
    );
}

/// Two tables with one base chain each: `a` (ip) and `b` (inet), on
/// `hook` at priorities `pa` and `pb`, with the given rules.
fn two_chains(
    hook: &str,
    pa: i32,
    a: serde_json::Value,
    pb: i32,
    b: serde_json::Value,
) -> Snapshot {
    serde_json::from_value(serde_json::json!({"generation": 1, "tables": [
        {"family": "ip", "name": "a", "handle": 1, "sets": [], "chains": [
            {"name": "c", "handle": 1, "type": "filter", "hook": hook,
             "priority": pa, "policy": "accept", "rules": [
                {"handle": 2, "position": 0, "exprs": a}]}]},
        {"family": "inet", "name": "b", "handle": 2, "sets": [], "chains": [
            {"name": "c", "handle": 1, "type": "filter", "hook": hook,
             "priority": pb, "policy": "accept", "rules": [
                {"handle": 2, "position": 0, "exprs": b}]}]}
    ]}))
    .unwrap()
}

#[test]
fn equal_priorities_are_unknown_only_when_the_order_changes_the_outcome() {
    use serde_json::json;
    let set_mark = json!([
        {"type": "immediate", "dreg": 1, "data": "0x01000000"},
        {"type": "meta_set", "key": "mark", "sreg": 1}]);
    let drop_unmarked = json!([
        {"type": "meta", "key": "mark", "dreg": 1},
        {"type": "cmp", "sreg": 1, "op": "neq", "data": "0x01000000"},
        {"type": "immediate", "dreg": 0, "verdict": "drop"}]);
    let accept = json!([{"type": "immediate", "dreg": 0, "verdict": "accept"}]);
    let drop = json!([{"type": "immediate", "dreg": 0, "verdict": "drop"}]);
    // The mark one chain sets decides the other's drop: which runs first
    // is registration order.
    let s = two_chains("input", 0, set_mark.clone(), 0, drop_unmarked.clone());
    let a = tcp(
        &Evaluator::new(&s, topology()),
        "10.99.0.2",
        "10.99.0.1",
        22,
    );
    assert_eq!(a.verdict, Verdict::Unknown, "{a:#?}");
    let why = a.reason.unwrap();
    assert!(
        why.contains("table ip a chain c") && why.contains("table inet b chain c"),
        "{why}"
    );
    assert!(why.contains("→ accept") && why.contains("→ drop"), "{why}");
    // With distinct priorities the order is known.
    for (pa, pb, v) in [(-1, 0, Verdict::Accept), (1, 0, Verdict::Drop)] {
        let s = two_chains("input", pa, set_mark.clone(), pb, drop_unmarked.clone());
        let a = tcp(
            &Evaluator::new(&s, topology()),
            "10.99.0.2",
            "10.99.0.1",
            22,
        );
        assert_eq!(a.verdict, v, "{pa} {pb}: {a:#?}");
    }
    // An accept ends one base chain only: a chain that can only accept
    // changes nothing, its order is not even followed.
    let s = two_chains("input", 0, accept.clone(), 0, drop.clone());
    let a = tcp(
        &Evaluator::new(&s, topology()),
        "10.99.0.2",
        "10.99.0.1",
        22,
    );
    assert_eq!(a.verdict, Verdict::Drop, "{a:#?}");
    assert!(!a.assumptions.iter().any(|x| x.contains("every order")));
    // A drop is final: whatever the other chain did first, the packet is
    // dropped; both orders are followed and agree.
    let s = two_chains("input", 0, set_mark.clone(), 0, drop.clone());
    let a = tcp(
        &Evaluator::new(&s, topology()),
        "10.99.0.2",
        "10.99.0.1",
        22,
    );
    assert_eq!(a.verdict, Verdict::Drop, "{a:#?}");
    assert!(a.assumptions.iter().any(|x| x.contains("every order")));
    // IPv6 packets never meet the ip table: no tie for them.
    let a = tcp(
        &Evaluator::new(&s, topology()),
        "fd00:99::2",
        "fd00:99::1",
        22,
    );
    assert_eq!(a.verdict, Verdict::Drop);
    assert!(!a.assumptions.iter().any(|x| x.contains("every order")));
}

#[test]
fn a_chain_at_minus_200_reading_conntrack_is_unknown() {
    use serde_json::json;
    // ct state invalid (before conntrack) or new (after) decides.
    let drop_invalid = json!([
        {"type": "ct", "key": "state", "dreg": 1},
        {"type": "bitwise", "sreg": 1, "dreg": 1, "len": 4, "op": "bool", "mask": "0x01000000", "xor": "0x00000000"},
        {"type": "cmp", "sreg": 1, "op": "neq", "data": "0x00000000"},
        {"type": "immediate", "dreg": 0, "verdict": "drop"}]);
    let counter = json!([{"type": "counter", "packets": 0, "bytes": 0}]);
    let s = two_chains("prerouting", -200, drop_invalid.clone(), 0, counter.clone());
    let a = tcp(
        &Evaluator::new(&s, topology()),
        "10.99.0.2",
        "10.99.0.1",
        22,
    );
    assert_eq!(a.verdict, Verdict::Unknown, "{a:#?}");
    let why = a.reason.unwrap();
    assert!(
        why.contains("conntrack") && why.contains("table ip a chain c"),
        "{why}"
    );
    // At -201 it certainly runs before conntrack: dropped.
    let s = two_chains("prerouting", -201, drop_invalid, 0, counter.clone());
    let a = tcp(
        &Evaluator::new(&s, topology()),
        "10.99.0.2",
        "10.99.0.1",
        22,
    );
    assert_eq!(a.verdict, Verdict::Drop, "{a:#?}");
    // A chain at -200 that can change nothing: certain, no order followed.
    let s = two_chains("prerouting", -200, counter.clone(), 0, counter);
    let a = tcp(
        &Evaluator::new(&s, topology()),
        "10.99.0.2",
        "10.99.0.1",
        22,
    );
    assert_eq!(a.verdict, Verdict::Accept, "{a:#?}");
    // One that marks, and whose mark no later rule reads: both orders
    // followed, they agree.
    let set_mark = json!([
        {"type": "immediate", "dreg": 1, "data": "0x01000000"},
        {"type": "meta_set", "key": "mark", "sreg": 1}]);
    let counter = json!([{"type": "counter", "packets": 0, "bytes": 0}]);
    let s = two_chains("prerouting", -200, set_mark, 0, counter);
    let a = tcp(
        &Evaluator::new(&s, topology()),
        "10.99.0.2",
        "10.99.0.1",
        22,
    );
    assert_eq!(a.verdict, Verdict::Accept, "{a:#?}");
    assert!(a.assumptions.iter().any(|x| x.contains("conntrack")));
}

#[test]
fn time_matches_are_decided_at_the_evaluators_clock() {
    use serde_json::json;
    use std::time::{Duration, UNIX_EPOCH};
    // Port 22 dropped on Sundays (meta day, kernel timezone); port 23
    // dropped from 09:00 to 17:00 UTC (xt time).
    let sunday = json!([
        {"type": "meta", "key": "l4proto", "dreg": 1},
        {"type": "cmp", "sreg": 1, "op": "eq", "data": "0x06"},
        {"type": "payload", "base": "transport", "offset": 2, "len": 2, "dreg": 1},
        {"type": "cmp", "sreg": 1, "op": "eq", "data": "0x0016"},
        {"type": "meta", "key": "day", "dreg": 1},
        {"type": "cmp", "sreg": 1, "op": "eq", "data": "0x00"},
        {"type": "immediate", "dreg": 0, "verdict": "drop"}]);
    let office = json!([
        {"type": "meta", "key": "l4proto", "dreg": 1},
        {"type": "cmp", "sreg": 1, "op": "eq", "data": "0x06"},
        {"type": "payload", "base": "transport", "offset": 2, "len": 2, "dreg": 1},
        {"type": "cmp", "sreg": 1, "op": "eq", "data": "0x0017"},
        {"type": "match", "name": "time", "rev": 0, "info": {"kind": "time",
            "date": [0, 2147483647], "daytime": [32400, 61200],
            "monthdays": 4294967294u32, "weekdays": 254, "flags": 0}},
        {"type": "immediate", "dreg": 0, "verdict": "drop"}]);
    let s = two_chains("input", 0, sunday, 10, office);
    // Sunday 2026-12-06 10:00 UTC; the same in UTC-11 is Saturday.
    let at = |secs: u64, west: i32| {
        Evaluator::new(&s, topology()).at(crate::eval::Clock::at(
            UNIX_EPOCH + Duration::from_secs(secs),
            west,
        ))
    };
    let sun10 = 1_796_551_200;
    let cases = [
        (sun10, 0, 22, Verdict::Drop),
        (sun10, 11 * 60, 22, Verdict::Accept),
        (sun10, 0, 23, Verdict::Drop),
        (sun10 + 8 * 3600, 0, 23, Verdict::Accept),
        (sun10 + 8 * 3600, 0, 24, Verdict::Accept),
    ];
    for (t, west, port, want) in cases {
        let a = tcp(&at(t, west), "10.99.0.2", "10.99.0.1", port);
        assert_eq!(a.verdict, want, "{t} {west} {port}: {a:#?}");
        if port != 24 {
            assert!(
                a.assumptions.iter().any(|x| x.contains("2026-12-06")),
                "{a:#?}"
            );
        }
    }
    // Without a clock the time is unknown.
    let a = tcp(
        &Evaluator::new(&s, topology()),
        "10.99.0.2",
        "10.99.0.1",
        23,
    );
    assert_eq!(a.verdict, Verdict::Unknown, "{a:#?}");
    // The exposure map marks what the time decides, and only that.
    let x = at(sun10 + 8 * 3600, 0).exposure();
    let on = |port: u16| {
        x.openings
            .iter()
            .filter(|o| o.family == crate::addrs::AddrFamily::V4 && o.proto == L4::Tcp)
            .filter(|o| o.iif == "pw-priv" && o.ports.first() <= port && port <= o.ports.last())
            .map(|o| o.time_dependent)
            .collect::<Vec<_>>()
    };
    assert_eq!(on(23), vec![true], "{x:#?}");
    // Dropped on Sundays: not open now, whatever it is on other days.
    assert_eq!(on(22), Vec::<bool>::new());
    assert_eq!(on(24), vec![false]);
    assert!(x.notes.iter().any(|n| n.contains("time matches")));
}

// ------------------------------------------------------ policy routing

/// The topology with `rules` (IPv4 unless a rule says otherwise; the
/// other family keeps its defaults) and `routes` added.
fn with_rules(rules: Vec<crate::host::Rule>, routes: Vec<Route>) -> Routes {
    let mut r = topology();
    r.rules = rules;
    r.routes.extend(routes);
    r
}

fn ip_rule(priority: u32, action: crate::host::RuleAction) -> crate::host::Rule {
    crate::host::Rule::new(false, priority, action)
}

/// The kernel's IPv4 defaults with `extra` added.
fn defaults_and(extra: Vec<crate::host::Rule>) -> Vec<crate::host::Rule> {
    let mut v = crate::host::Rule::defaults(false);
    v.extend(extra);
    v.sort_by_key(|r| r.priority);
    v
}

fn probe_on(e: &Evaluator, src: &str, dst: &str, dport: u16, iif: &str) -> Answer {
    let p = Probe::new(
        L4::Tcp,
        src.parse().unwrap(),
        dst.parse().unwrap(),
        40000,
        dport,
        e.iface(iif),
    );
    e.explain(&p)
}

#[test]
fn policy_rules_refuse_the_input_route() {
    use crate::host::RuleAction::*;
    use crate::host::RT_TABLE_LOCAL;
    // The local rule moved after a prohibit rule: packets from 192.0.2.2
    // are refused before the local table is consulted.
    let mut deny = ip_rule(100, Prohibit);
    deny.from = Some("192.0.2.2/32".parse().unwrap());
    let rules = vec![
        deny,
        ip_rule(32765, Lookup(RT_TABLE_LOCAL)),
        ip_rule(32766, Lookup(crate::host::RT_TABLE_MAIN)),
    ];
    let e = Evaluator::new(&snapshot("backup-host-basic"), with_rules(rules, vec![]));
    let a = probe_on(&e, "192.0.2.2", "192.0.2.1", 22, "pw-pub");
    assert_eq!(
        routing(&a),
        (
            Verdict::Drop,
            Some(RoutingCheck::PolicyRouting),
            Some("rule 100: from 192.0.2.2 prohibit")
        ),
        "{a:#?}"
    );
    assert_eq!(
        a.routing.as_ref().unwrap().to_string(),
        "refused by policy routing (rule 100: from 192.0.2.2 prohibit)"
    );
    assert!(a
        .trace
        .iter()
        .all(|v| v.hook != crate::snapshot::Hook::Input));
    // Another source is not selected.
    assert_eq!(
        probe_on(&e, "192.0.2.3", "192.0.2.1", 22, "pw-pub").verdict,
        Verdict::Accept
    );
    // `not`: every other source is.
    let mut e2 = with_rules(vec![], vec![]);
    let mut deny = ip_rule(100, Blackhole);
    deny.from = Some("192.0.2.2/32".parse().unwrap());
    deny.not = true;
    e2.rules = vec![deny, ip_rule(200, Lookup(RT_TABLE_LOCAL))];
    let e2 = Evaluator::new(&snapshot("backup-host-basic"), e2);
    assert_eq!(
        probe_on(&e2, "192.0.2.2", "192.0.2.1", 22, "pw-pub").verdict,
        Verdict::Accept
    );
    assert_eq!(
        routing(&probe_on(&e2, "192.0.2.3", "192.0.2.1", 22, "pw-pub")).1,
        Some(RoutingCheck::PolicyRouting)
    );
    // The default rules: the local table first, a prohibit rule after it
    // does not touch local delivery.
    let mut late = ip_rule(100, Prohibit);
    late.from = Some("192.0.2.2/32".parse().unwrap());
    let e3 = Evaluator::new(
        &snapshot("backup-host-basic"),
        with_rules(defaults_and(vec![late]), vec![]),
    );
    assert_eq!(
        probe_on(&e3, "192.0.2.2", "192.0.2.1", 22, "pw-pub").verdict,
        Verdict::Accept
    );
}

/// `fwmark`, `iif`, `dport`, `goto` and `nop` selectors and actions, and a
/// selector it cannot decide.
#[test]
fn policy_rule_selectors_and_actions() {
    use crate::host::RuleAction::*;
    use crate::host::RT_TABLE_LOCAL;
    let mk = |rules: Vec<crate::host::Rule>| {
        Evaluator::new(&snapshot("backup-host-basic"), with_rules(rules, vec![]))
    };
    let local = || ip_rule(32765, Lookup(RT_TABLE_LOCAL));
    // dport 22 on pw-pub only.
    let mut r = ip_rule(10, Unreachable);
    r.dport = Some((22, 22));
    r.iif = Some("pw-pub".into());
    let e = mk(vec![r, local()]);
    assert_eq!(
        routing(&probe_on(&e, "192.0.2.2", "192.0.2.1", 22, "pw-pub")).1,
        Some(RoutingCheck::PolicyRouting)
    );
    assert_eq!(
        probe_on(&e, "10.99.0.2", "10.99.0.1", 22, "pw-priv").verdict,
        Verdict::Accept
    );
    // fwmark: the probe's mark is 0.
    let mut r = ip_rule(10, Prohibit);
    r.fwmark = Some((1, 1));
    let e = mk(vec![r, local()]);
    assert_eq!(
        probe_on(&e, "192.0.2.2", "192.0.2.1", 22, "pw-pub").verdict,
        Verdict::Accept
    );
    // goto skips the prohibit rule; nop does nothing.
    let mut r = ip_rule(20, Prohibit);
    r.from = Some("192.0.2.0/24".parse().unwrap());
    let e = mk(vec![
        ip_rule(10, Nop),
        ip_rule(15, Goto(30)),
        r.clone(),
        ip_rule(30, Lookup(RT_TABLE_LOCAL)),
    ]);
    assert_eq!(
        probe_on(&e, "192.0.2.2", "192.0.2.1", 22, "pw-pub").verdict,
        Verdict::Accept
    );
    let e = mk(vec![
        ip_rule(10, Nop),
        r,
        ip_rule(30, Lookup(RT_TABLE_LOCAL)),
    ]);
    assert_eq!(
        probe_on(&e, "192.0.2.2", "192.0.2.1", 22, "pw-pub").verdict,
        Verdict::Drop
    );
    // uidrange: input lookups run as user 0.
    let mut r = ip_rule(10, Prohibit);
    r.uidrange = Some((1000, 2000));
    let e = mk(vec![r, local()]);
    assert_eq!(
        probe_on(&e, "192.0.2.2", "192.0.2.1", 22, "pw-pub").verdict,
        Verdict::Accept
    );
    let mut r = ip_rule(10, Prohibit);
    r.uidrange = Some((0, 0));
    let e = mk(vec![r, local()]);
    assert_eq!(
        probe_on(&e, "192.0.2.2", "192.0.2.1", 22, "pw-pub").verdict,
        Verdict::Drop
    );
    // l3mdev: not decidable, and named.
    let mut r = ip_rule(10, Prohibit);
    r.undecided = vec!["l3mdev".into()];
    let e = mk(vec![r, local()]);
    let a = probe_on(&e, "192.0.2.2", "192.0.2.1", 22, "pw-pub");
    assert_eq!(a.verdict, Verdict::Unknown);
    assert!(
        a.reason
            .as_deref()
            .unwrap()
            .contains("rule 10: from all l3mdev prohibit"),
        "{a:#?}"
    );
}

/// A table chosen by the source address changes the route back, and with
/// it strict reverse-path filtering's outcome and the reply's interface.
#[test]
fn policy_tables_change_the_route_back() {
    use crate::host::RpFilter::Strict;
    use crate::host::RuleAction::*;
    let mut by_src = ip_rule(100, Lookup(100));
    by_src.from = Some("192.0.2.1/32".parse().unwrap());
    let table = vec![Route::via("0.0.0.0/0", "pw-pub").in_table(100)];
    let mut r = with_rules(defaults_and(vec![by_src]), table);
    r.interfaces[1].rp_filter = Strict;
    r.interfaces[2].rp_filter = Strict;
    let e = Evaluator::new(&snapshot("backup-host-basic"), r);
    // Main routes 10.0.0.10 through pw-priv; replies from 192.0.2.1 use
    // table 100, through pw-pub: strict filtering passes.
    let a = probe_on(&e, "10.0.0.10", "192.0.2.1", 22, "pw-pub");
    assert_eq!(a.verdict, Verdict::Accept, "{a:#?}");
    // Arriving on pw-priv for 10.99.0.1 (main table, pw-priv): passes too.
    let a = probe_on(&e, "10.0.0.10", "10.99.0.1", 22, "pw-priv");
    assert_eq!(a.verdict, Verdict::Accept, "{a:#?}");
    // To 192.0.2.1 on pw-priv: the route back is table 100's, through
    // pw-pub, and strict filtering names it.
    let a = probe_on(&e, "10.0.0.10", "192.0.2.1", 22, "pw-priv");
    assert_eq!(routing(&a).1, Some(RoutingCheck::RpFilter), "{a:#?}");
    assert!(
        a.reason.as_deref().unwrap().contains(
            "the route back to 10.0.0.10 (0.0.0.0/0, table 100 by rule 100: from 192.0.2.1 lookup 100) leaves through pw-pub, not pw-priv"
        ),
        "{a:#?}"
    );
    // suppress_prefixlength 0 on a main lookup before: the default route
    // of main would be ignored, its /32 is not.
    let mut main_first = ip_rule(50, Lookup(crate::host::RT_TABLE_MAIN));
    main_first.suppress_prefixlength = Some(0);
    let mut by_src = ip_rule(100, Lookup(100));
    by_src.from = Some("192.0.2.1/32".parse().unwrap());
    let mut r = with_rules(
        defaults_and(vec![main_first, by_src]),
        vec![Route::via("0.0.0.0/0", "pw-pub").in_table(100)],
    );
    r.interfaces[1].rp_filter = Strict;
    let e = Evaluator::new(&snapshot("backup-host-basic"), r);
    assert_eq!(
        routing(&probe_on(&e, "10.0.0.10", "192.0.2.1", 22, "pw-pub")).1,
        Some(RoutingCheck::RpFilter)
    );
    assert_eq!(
        probe_on(&e, "198.51.100.7", "192.0.2.1", 22, "pw-pub").verdict,
        Verdict::Accept
    );

    // With rp_filter off, a reply refused by a rule is a note.
    let mut deny = ip_rule(100, Prohibit);
    deny.to = Some("10.0.0.10/32".parse().unwrap());
    let e = Evaluator::new(
        &snapshot("backup-host-basic"),
        with_rules(defaults_and(vec![deny]), vec![]),
    );
    let a = probe_on(&e, "10.0.0.10", "10.99.0.1", 22, "pw-priv");
    assert_eq!(a.verdict, Verdict::Accept);
    assert!(
        a.assumptions.iter().any(|n| n.contains(
            "the reply to 10.0.0.10 is refused by policy routing (rule 100: from all to 10.0.0.10 prohibit)"
        )),
        "{a:#?}"
    );
    // The output path follows the rules too.
    let p = crate::eval::output::OutProbe::new(
        L4::Tcp,
        "10.99.0.1".parse().unwrap(),
        "10.0.0.10".parse().unwrap(),
        40000,
        6162,
    );
    let a = e.explain_output(&p);
    assert!(
        a.reason
            .as_deref()
            .unwrap_or("")
            .contains("refused by policy routing (rule 100"),
        "{a:#?}"
    );
}

/// The map agrees with explain under custom rules (source prefixes, a
/// port range, an interface, a table).
#[test]
fn exposure_agrees_with_explain_under_policy_rules() {
    use crate::host::RuleAction::*;
    let mut a = ip_rule(10, Prohibit);
    a.from = Some("198.51.100.0/25".parse().unwrap());
    a.iif = Some("pw-pub".into());
    let mut b = ip_rule(20, Blackhole);
    b.dport = Some((20, 25));
    b.from = Some("10.0.0.0/8".parse().unwrap());
    let mut c = ip_rule(30, Lookup(100));
    c.to = Some("203.0.113.0/24".parse().unwrap());
    let mut rules = vec![a, b, c];
    rules.push(ip_rule(32765, Lookup(crate::host::RT_TABLE_LOCAL)));
    rules.push(ip_rule(32766, Lookup(crate::host::RT_TABLE_MAIN)));
    let mut r = with_rules(
        rules,
        vec![Route::via("203.0.113.0/24", "pw-priv").in_table(100)],
    );
    r.interfaces[1].rp_filter = crate::host::RpFilter::Strict;
    let total = exposure_agrees_with(&r);
    assert!(total > 1_000, "{total} probes");
}

/// `fib saddr . iif oif missing drop` follows the policy rules: a table
/// sending 10.0.0.10 back through pw-pub lets it in there; a prohibit rule
/// for 198.51.100.0/24 (which pw-pub would otherwise reach) refuses it.
#[test]
fn fib_follows_policy_rules() {
    use crate::host::RuleAction::*;
    let mut to_pub = ip_rule(100, Lookup(100));
    to_pub.to = Some("10.0.0.10/32".parse().unwrap());
    let mut deny = ip_rule(90, Prohibit);
    deny.to = Some("198.51.100.0/24".parse().unwrap());
    let routes = with_rules(
        defaults_and(vec![to_pub, deny]),
        vec![
            Route::via("10.0.0.0/24", "pw-pub").in_table(100),
            Route::via("198.51.100.0/24", "pw-pub"),
        ],
    );
    let e = Evaluator::new(&snapshot("rpfilter-raw"), routes.clone());
    let a = probe_on(&e, "10.0.0.10", "192.0.2.1", 22, "pw-pub");
    assert_eq!(a.verdict, Verdict::Accept, "{a:#?}");
    let a = probe_on(&e, "198.51.100.7", "192.0.2.1", 22, "pw-pub");
    assert_eq!(a.verdict, Verdict::Drop, "{a:#?}");
    // Without the rules: the other way round.
    let mut plain = routes;
    plain.rules.clear();
    let e = Evaluator::new(&snapshot("rpfilter-raw"), plain.clone());
    assert_eq!(
        probe_on(&e, "10.0.0.10", "192.0.2.1", 22, "pw-pub").verdict,
        Verdict::Drop
    );
    assert_eq!(
        probe_on(&e, "198.51.100.7", "192.0.2.1", 22, "pw-pub").verdict,
        Verdict::Accept
    );
}
