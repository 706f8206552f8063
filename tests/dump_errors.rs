//! Bad conditions give one clear line and a distinct exit code, never a panic.

mod common;

use common::{require_root, Netns};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn one_line(stderr: &[u8]) -> String {
    let s = String::from_utf8_lossy(stderr).into_owned();
    assert_eq!(
        s.trim_end().lines().count(),
        1,
        "expected one line, got: {s}"
    );
    assert!(!s.contains("panicked"), "{s}");
    s
}

#[test]
fn without_cap_net_admin_says_so_with_exit_77() {
    if !require_root("without_cap_net_admin_says_so_with_exit_77") {
        return;
    }
    let ns = Netns::new("perm");
    ns.nft_text("table inet t {\n chain c { type filter hook input priority 0; }\n}\n");
    let out = ns
        .cmd("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ])
        .args([common::portwarden_bin(), "dump"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(77), "{out:?}");
    let msg = one_line(&out.stderr);
    assert!(
        msg.contains("permission denied") && msg.contains("CAP_NET_ADMIN"),
        "{msg}"
    );
}

/// Two rulesets that differ in every part that is dumped separately (rule
/// count, set size): any mix of the two in one snapshot is detectable.
fn ruleset(rules: usize, elems: usize) -> String {
    let mut s = String::from(
        "flush ruleset\ntable inet churn {\n set s { type inet_service; elements = { ",
    );
    s += &(1..=elems)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    s += " } }\n chain c { type filter hook input priority 0;\n";
    for i in 0..rules {
        s += &format!("  tcp dport {} accept\n", 10000 + i);
    }
    s += " }\n}\n";
    s
}

fn shape(v: &serde_json::Value) -> (usize, usize) {
    let t = &v["tables"][0];
    (
        t["chains"][0]["rules"].as_array().unwrap().len(),
        t["sets"][0]["elements"].as_array().unwrap().len(),
    )
}

#[test]
fn a_changing_ruleset_is_never_mixed_and_gives_up_with_exit_75() {
    if !require_root("a_changing_ruleset_is_never_mixed_and_gives_up_with_exit_75") {
        return;
    }
    let ns = Netns::new("churn");
    let (a, b) = (ruleset(300, 3000), ruleset(500, 5000));
    let dir = std::env::temp_dir().join(format!("pw-churn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (fa, fb) = (dir.join("a.nft"), dir.join("b.nft"));
    std::fs::write(&fa, a).unwrap();
    std::fs::write(&fb, b).unwrap();
    ns.nft_file(&fa);

    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let (stop, name, fa, fb) = (stop.clone(), ns.name.clone(), fa.clone(), fb.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for f in [&fa, &fb] {
                    let _ = Command::new("ip")
                        .args(["netns", "exec", &name, "nft", "-f"])
                        .arg(f)
                        .status();
                }
            }
        })
    };

    let (mut consistent, mut gave_up) = (0, 0);
    for _ in 0..40 {
        let out = ns.portwarden(&["dump", "--json", "--tries", "1"]);
        match out.status.code() {
            Some(0) => {
                let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                let s = shape(&v);
                assert!(s == (300, 3000) || s == (500, 5000), "mixed snapshot {s:?}");
                consistent += 1;
            }
            Some(75) => {
                let msg = one_line(&out.stderr);
                assert!(msg.contains("kept changing"), "{msg}");
                gave_up += 1;
            }
            other => panic!(
                "unexpected exit {other:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
        }
        if gave_up > 0 && consistent > 0 {
            break;
        }
    }
    // With retries, every read succeeds with one of the two rulesets.
    for _ in 0..5 {
        let out = ns.portwarden(&["dump", "--json", "--tries", "50"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let s = shape(&serde_json::from_slice(&out.stdout).unwrap());
        assert!(s == (300, 3000) || s == (500, 5000), "mixed snapshot {s:?}");
    }
    stop.store(true, Ordering::Relaxed);
    churn.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        gave_up > 0,
        "the ruleset changed under every read but no read gave up"
    );
    eprintln!("{consistent} consistent reads, {gave_up} gave up");
}

#[test]
fn an_empty_namespace_dumps_cleanly() {
    if !require_root("an_empty_namespace_dumps_cleanly") {
        return;
    }
    let ns = Netns::new("empty");
    let v = ns.dump_json();
    assert_eq!(v["tables"].as_array().map(Vec::len), Some(0));
    assert!(v["generation"].is_u64());
}
