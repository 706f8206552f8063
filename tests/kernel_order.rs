//! Kernel differential tests for what a dump does not show directly:
//! the order of base chains at one priority (and of conntrack against
//! chains at -200), conntrack zones and labels, and time matches. Each case
//! loads rules into a fresh [`Topology`], sends one real SYN from the peer
//! and compares whether it reached a last-priority input chain (the
//! recorder) with `portwarden explain --batch` in the host namespace.
//!
//! For the order cases the kernel's own verdict is shown to depend on the
//! order the same rules were loaded in; `explain` must then answer
//! `unknown` naming the chains, and agree with the kernel once the
//! priorities differ. Needs root and python3 (SKIPPED otherwise).

mod common;

use common::packets::{self, Packet};
use common::{have_tool, require_root, Topology, PRIVATE};
use serde_json::{json, Value};

const PORT: u16 = 6162;

fn ready(test: &str) -> bool {
    if !require_root(test) {
        return false;
    }
    if !have_tool("python3") {
        eprintln!("SKIPPED {test}: needs python3");
        return false;
    }
    true
}

/// Loads `parts` into a fresh topology one `nft -f` at a time (in that
/// order), then asks `explain` about one SYN from the private peer to
/// [`PORT`] (with `extra` query fields) and sends it: (explain's answer,
/// whether the kernel let it reach the last input chain).
fn trial(tag: &str, parts: &[&str], extra: &[(&str, Value)]) -> (Value, bool) {
    trial_ports(tag, parts, &[PORT], extra).remove(0)
}

/// [`trial`] for one SYN to each of `ports`.
fn trial_ports(
    tag: &str,
    parts: &[&str],
    ports: &[u16],
    extra: &[(&str, Value)],
) -> Vec<(Value, bool)> {
    let topo = Topology::new(tag);
    for p in parts {
        topo.host.nft_text(p);
    }
    let queries: Vec<Value> = ports
        .iter()
        .map(|port| {
            let mut q = json!({"proto": "tcp", "port": port, "from": PRIVATE.peer4,
                "iif": PRIVATE.host_if, "sport": 40000});
            for (k, v) in extra {
                q[*k] = v.clone();
            }
            q
        })
        .collect();
    let answers = topo.host.explain_batch(&queries);
    for a in &answers {
        assert!(a.get("error").is_none(), "{a}");
    }
    packets::add_recorder(&topo.host);
    let sent: Vec<Packet> = ports
        .iter()
        .map(|&port| Packet {
            proto: "tcp".into(),
            from: PRIVATE.peer4.parse().unwrap(),
            to: PRIVATE.host4.parse().unwrap(),
            sport: 40000,
            port,
        })
        .collect();
    packets::send(&topo.peer, &sent, 0.0);
    let seen = packets::seen(&topo.host);
    answers
        .into_iter()
        .zip(ports)
        .map(|(a, &port)| {
            let reached = seen.iter().any(|s| s.dport == port && s.sport == 40000);
            (a, reached)
        })
        .collect()
}

fn verdict(a: &Value) -> &str {
    a["verdict"].as_str().unwrap_or("?")
}

fn reason(a: &Value) -> &str {
    a["reason"].as_str().unwrap_or("")
}

/// `ip a` sets a mark, `inet b` drops what is not marked: which one runs
/// first decides.
fn mark_pair(pa: i32, pb: i32) -> (String, String) {
    (
        format!(
            "table ip pw_a {{ chain c {{ type filter hook input priority {pa}; policy accept;\n tcp dport {PORT} meta mark set 0x1\n }}\n}}"
        ),
        format!(
            "table inet pw_b {{ chain c {{ type filter hook input priority {pb}; policy accept;\n tcp dport {PORT} meta mark != 0x1 drop\n }}\n}}"
        ),
    )
}

#[test]
fn chains_of_one_priority_that_disagree_are_unknown_and_the_kernel_follows_load_order() {
    if !ready("chains_of_one_priority_that_disagree_are_unknown_and_the_kernel_follows_load_order")
    {
        return;
    }
    let (a, b) = mark_pair(0, 0);
    let (ans_ab, kernel_ab) = trial("ord-ab", &[&a, &b], &[]);
    let (ans_ba, kernel_ba) = trial("ord-ba", &[&b, &a], &[]);
    eprintln!("kernel: a then b loaded → reached {kernel_ab}; b then a → reached {kernel_ba}");
    // The last registered runs first: b (loaded last) drops the unmarked
    // packet; loaded first, it sees a's mark.
    assert!(
        !kernel_ab && kernel_ba,
        "the kernel's verdict did not follow load order"
    );
    for ans in [&ans_ab, &ans_ba] {
        assert_eq!(verdict(ans), "unknown", "{ans}");
        let r = reason(ans);
        assert!(
            r.contains("table ip pw_a chain c") && r.contains("table inet pw_b chain c"),
            "{r}"
        );
    }
    // With distinct priorities explain agrees with the kernel, whatever the
    // load order.
    for (pa, pb, reached) in [(-1, 0, true), (1, 0, false)] {
        let (a, b) = mark_pair(pa, pb);
        for parts in [[&a, &b], [&b, &a]] {
            let (ans, kernel) = trial("ord-prio", &[parts[0], parts[1]], &[]);
            assert_eq!(kernel, reached, "priorities {pa}/{pb}");
            let want = if reached { "accept" } else { "drop" };
            assert_eq!(verdict(&ans), want, "priorities {pa}/{pb}: {ans}");
        }
    }
}

#[test]
fn a_prerouting_chain_at_minus_200_runs_before_or_after_conntrack_by_registration() {
    if !ready("a_prerouting_chain_at_minus_200_runs_before_or_after_conntrack_by_registration") {
        return;
    }
    // Before conntrack the packet is `invalid` (dropped), after it `new`.
    let raw = format!(
        "table ip pw_r {{ chain c {{ type filter hook prerouting priority -200; policy accept;\n tcp dport {PORT} ct state invalid drop\n }}\n}}"
    );
    // A table that needs conntrack, loaded first: conntrack's hooks are
    // registered before the -200 chain, which then runs first.
    let ct_first =
        "table inet pw_ct { chain c { type filter hook input priority 10; policy accept;\n ct state established accept\n }\n}";
    let (ans_alone, kernel_alone) = trial("ct-alone", &[&raw], &[]);
    let (ans_after, kernel_after) = trial("ct-after", &[ct_first, &raw], &[]);
    eprintln!("kernel: -200 chain alone → reached {kernel_alone}; after conntrack was registered → reached {kernel_after}");
    assert!(
        kernel_alone && !kernel_after,
        "the kernel's verdict did not follow registration order"
    );
    for ans in [&ans_alone, &ans_after] {
        assert_eq!(verdict(ans), "unknown", "{ans}");
        let r = reason(ans);
        assert!(
            r.contains("conntrack") && r.contains("table ip pw_r chain c"),
            "{r}"
        );
    }
    // At -201 the chain runs before conntrack whatever the order.
    let raw201 = raw.replace("-200", "-201");
    for parts in [vec![raw201.as_str()], vec![ct_first, raw201.as_str()]] {
        let (ans, kernel) = trial("ct-201", &parts, &[]);
        assert!(!kernel);
        assert_eq!(verdict(&ans), "drop", "{ans}");
    }
}

#[test]
fn conntrack_zones_and_labels_set_earlier_are_followed() {
    if !ready("conntrack_zones_and_labels_set_earlier_are_followed") {
        return;
    }
    // Each port's expectation is the kernel's (checked below): 6162 zone 1
    // and label 5; 6163 zone 2 in the original direction only; 6164 zone 3
    // in the reply direction only (the original direction reads zone 0);
    // 6165 zone 1 without the label; 6166 the label in zone 0; 6167 none;
    // 6168: a zone template makes `ct state` new before conntrack; 6169:
    // a zone set after `notrack` tracks the packet again, in that zone.
    let rules = "table ip pw_z {
 chain raw { type filter hook prerouting priority -300; policy accept;
  tcp dport { 6162, 6165 } ct zone set 1
  tcp dport 6163 ct original zone set 2
  tcp dport 6164 ct reply zone set 3
  tcp dport 6168 ct zone set 1
  tcp dport 6169 notrack
 }
 chain raw2 { type filter hook prerouting priority -250; policy accept;
  tcp dport 6168 ct state invalid drop
  tcp dport 6169 ct zone set 4
 }
 chain mangle { type filter hook prerouting priority -150; policy accept;
  tcp dport { 6162, 6166 } ct label set 5
 }
 chain f { type filter hook input priority 0; policy accept;
  tcp dport 6162 ct zone 1 ct label 5 accept
  tcp dport 6162 drop
  tcp dport 6163 ct original zone 2 ct reply zone 0 ct zone 2 accept
  tcp dport 6163 drop
  tcp dport 6164 ct zone 3 ct original zone 0 ct reply zone 3 accept
  tcp dport 6164 drop
  tcp dport 6165 ct label 5 accept
  tcp dport 6165 ct zone 1 drop
  tcp dport 6166 ct zone 0 ct label 5 drop
  tcp dport 6167 ct zone != 0 drop
  tcp dport 6167 ct label 5 drop
  tcp dport 6169 ct state untracked drop
  tcp dport 6169 ct zone 4 accept
  tcp dport 6169 drop
 }
}";
    let ports = [6162, 6163, 6164, 6165, 6166, 6167, 6168, 6169];
    let want = [true, true, true, false, false, true, true, true];
    let results = trial_ports("ctzone", &[rules], &ports, &[]);
    for ((port, (ans, kernel)), want) in ports.iter().zip(&results).zip(want) {
        assert_eq!(*kernel, want, "kernel, port {port}");
        let v = if want { "accept" } else { "drop" };
        assert_eq!(verdict(ans), v, "explain, port {port}: {ans}");
        let text = ans.to_string();
        assert!(!text.contains("assumed 0"), "{text}");
    }
}
