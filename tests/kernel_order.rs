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
    let topo = Topology::new(tag);
    for p in parts {
        topo.host.nft_text(p);
    }
    let mut q = json!({"proto": "tcp", "port": PORT, "from": PRIVATE.peer4,
        "iif": PRIVATE.host_if, "sport": 40000});
    for (k, v) in extra {
        q[*k] = v.clone();
    }
    let answer = topo.host.explain_batch(&[q]).remove(0);
    assert!(answer.get("error").is_none(), "{answer}");
    packets::add_recorder(&topo.host);
    packets::send(
        &topo.peer,
        &[Packet {
            proto: "tcp".into(),
            from: PRIVATE.peer4.parse().unwrap(),
            to: PRIVATE.host4.parse().unwrap(),
            sport: 40000,
            port: PORT,
        }],
        0.0,
    );
    let seen = packets::seen(&topo.host)
        .iter()
        .any(|s| s.dport == PORT && s.sport == 40000);
    (answer, seen)
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
