//! `portwarden explain` and `explain --batch` from the command line: usage
//! errors (no root needed), then text, JSON and batch output on a fixture
//! loaded in a throwaway namespace (root).

mod common;

use common::{require_root, Topology};
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};

fn pw(args: &[&str]) -> std::process::Output {
    Command::new(common::portwarden_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run portwarden")
}

#[test]
fn bad_arguments_are_usage_errors() {
    for (args, says) in [
        (&["explain", "tcp/99999", "--from", "10.0.0.5"][..], "port"),
        (&["explain", "icmp/8", "--from", "10.0.0.5"], "protocol"),
        (&["explain", "6162", "--from", "10.0.0.5"], "PROTO/PORT"),
        (&["explain", "tcp/6162", "--from", "10.0.0.256"], "--from"),
        (&["explain", "tcp/6162"], "--from"),
        (
            &["explain", "tcp/6162", "--from", "10.0.0.5", "--to", "::1"],
            "same address family",
        ),
        (&["explain", "--batch", "--from", "10.0.0.5"], "--batch"),
    ] {
        let out = pw(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let help = pw(&["explain", "--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("portwarden explain tcp/6162 --from 10.0.0.5"));
    assert!(text.contains("40000"));
}

/// Runs `explain --batch` in `ns` with `input`, returning stdout lines.
fn batch(topo: &Topology, input: &str) -> Vec<Value> {
    let mut child = topo
        .host
        .cmd(common::portwarden_bin())
        .args(["explain", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_string();
    let w = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    w.join().unwrap().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON value per line"))
        .collect()
}

#[test]
fn explain_text_json_and_batch_on_a_fixture() {
    if !require_root("explain_text_json_and_batch_on_a_fixture") {
        return;
    }
    let topo = Topology::new("ex");
    topo.load_fixture("backup-host-basic.nft");

    // Defaults: iif from the route to --from, --to from that interface.
    let out = topo
        .host
        .portwarden(&["explain", "tcp/6162", "--from", "10.99.0.2"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.starts_with("tcp 10.99.0.2:40000 -> 10.99.0.1:6162 in on pw-priv: ACCEPT"),
        "{text}"
    );
    assert!(
        text.contains("decided by: table inet filter chain input rule handle")
            && text.contains("iifname \"pw-priv\" tcp dport @veeam_tcp"),
        "{text}"
    );
    assert!(text.contains("chains traversed:") && text.contains("inet filter input"));

    let out = topo.host.portwarden(&[
        "explain",
        "udp/6162",
        "--from",
        "2001:db8:1::2",
        "--sport",
        "5353",
        "--json",
    ]);
    let a: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(a["verdict"], "reject");
    assert_eq!(a["decided_by"]["kind"], "rule");
    assert_eq!(a["reject_with"], "icmpx admin-prohibited", "{a}");

    // A probe with no route and no --iif is a usage error.
    let out = topo
        .host
        .portwarden(&["explain", "tcp/22", "--from", "203.0.113.9"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--iif"));

    // Batch: one answer per line, in order; bad lines answered in place.
    let lines = batch(
        &topo,
        concat!(
            "{\"proto\":\"tcp\",\"port\":6162,\"from\":\"10.99.0.2\"}\n",
            "not json\n",
            "{\"proto\":\"tcp\",\"port\":6162,\"from\":\"192.0.2.2\",\"iif\":\"pw-pub\",\"to\":\"192.0.2.1\",\"sport\":1}\n",
            "\n",
            "{\"proto\":\"sctp\",\"port\":1,\"from\":\"10.99.0.2\"}\n",
            "{\"proto\":\"tcp\",\"port\":1,\"from\":\"10.99.0.2\",\"to\":\"::1\"}\n",
            "{\"proto\":\"udp\",\"dport\":6162,\"from\":\"fd00:99::2\"}",
        ),
    );
    assert_eq!(lines.len(), 7, "{lines:?}");
    assert_eq!(lines[0]["verdict"], "accept");
    assert!(lines[1]["error"].as_str().unwrap().starts_with("line 2: "));
    assert_eq!(lines[2]["verdict"], "reject");
    assert!(lines[3]["error"]
        .as_str()
        .unwrap()
        .starts_with("line 4: empty"));
    assert!(lines[4]["error"].as_str().unwrap().contains("sctp"));
    assert!(lines[5]["error"]
        .as_str()
        .unwrap()
        .contains("same address family"));
    assert_eq!(lines[6]["verdict"], "reject", "{}", lines[6]);
}
