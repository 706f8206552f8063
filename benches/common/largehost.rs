//! The large benchmark host shared by the audit and daemon benchmarks: the
//! large ruleset ([`super::ruleset`]) in a scratch namespace with links
//! `eth0`-`eth3` and `sockets` listening TCP sockets held by python3.

use super::harness::{check_interrupted, ip, Scratch};
use super::ruleset::ruleset;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// python3 holding `n` IPv4 TCP listeners on 0.0.0.0, ports from `first`.
const LISTENERS: &str = r#"
import resource, socket, sys, time
n, first = int(sys.argv[1]), int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_NOFILE, (n + 64, n + 64))
keep = []
for port in range(first, first + n):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(1)
    keep.append(s)
print("ready", flush=True)
time.sleep(86400)
"#;

/// Fills `scratch`'s namespace: links, addresses, the ruleset with `rules`
/// rules and an `elements`-range blocklist, and `sockets` listeners
/// (checked with `portwarden listeners` before anything is timed); how
/// many sockets `portwarden listeners` saw.
pub fn setup(scratch: &mut Scratch, rules: usize, elements: usize, sockets: usize) -> usize {
    let file = scratch.path(".nft");
    let script = scratch.path(".py");
    let ns = scratch.ns.clone();
    let peer_ns = format!("{ns}-p");
    let mut peer_made = false;
    std::fs::write(&file, ruleset(rules, elements)).expect("write ruleset");
    std::fs::write(&script, LISTENERS).expect("write listener script");
    let ns = ns.as_str();
    for i in 0..4 {
        let dev = format!("eth{i}");
        // A dummy link; where the kernel has no dummy driver (containers),
        // a veth whose other end lives in a second namespace.
        let dummy = Command::new("ip")
            .args(["-n", ns, "link", "add", &dev, "type", "dummy"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !dummy {
            if !peer_made {
                scratch.add_ns(&peer_ns);
                peer_made = true;
            }
            ip(&[
                "link", "add", &dev, "netns", ns, "type", "veth", "peer", "name", &dev, "netns",
                &peer_ns,
            ]);
            ip(&["-n", &peer_ns, "link", "set", &dev, "up"]);
        }
        ip(&[
            "-n",
            ns,
            "addr",
            "add",
            &format!("192.0.{}.1/24", 2 + i),
            "dev",
            &dev,
        ]);
        ip(&[
            "-n",
            ns,
            "addr",
            "add",
            &format!("2001:db8:{i}::1/64"),
            "dev",
            &dev,
            "nodad",
        ]);
        ip(&["-n", ns, "link", "set", &dev, "up"]);
    }

    eprintln!("loading {rules} rules and a {elements}-element interval set...");
    scratch.load(&file);

    let first_port = 20_000u16;
    eprintln!("starting {sockets} listening sockets...");
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "python3"])
        .arg(&script)
        .args([sockets.to_string(), first_port.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let stdout = child.stdout.take().expect("listener stdout");
    scratch.keep(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("listener output");
    check_interrupted();
    assert_eq!(line.trim(), "ready", "the listener process did not start");

    let ours = env!("CARGO_BIN_EXE_portwarden");
    // Not timed: the namespace holds what we think it holds.
    let out = Command::new("ip")
        .args(["netns", "exec", ns, ours, "listeners", "--json"])
        .output()
        .expect("portwarden listeners");
    assert!(out.status.success(), "portwarden listeners failed");
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).expect("listeners JSON");
    let seen = seen.as_array().map_or(0, Vec::len);
    assert!(seen >= sockets, "{seen} sockets seen, {sockets} expected");
    seen
}
