//! Test harness: throwaway network namespaces with veth peers, rulesets
//! loaded by `nft -f` or by real firewall managers, and portwarden run inside.
//!
//! Every namespace is deleted when its [`Netns`] is dropped, including on a
//! panicking test. Tests that need root call [`require_root`] first and skip
//! with a visible message without it.

#![allow(dead_code)]

pub mod daemon;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Returns false (after saying so on stderr) when the test cannot run
/// because it is not root. CI runs as root, so there nothing is skipped.
pub fn require_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    eprintln!("SKIPPED {test}: needs root (network namespaces, nftables)");
    false
}

/// Runs a command, returning its output; panics with stderr if it fails.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Path of a fixture under `tests/fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Tools a script fixture (`gen/*.sh`) needs to generate its ruleset.
pub fn tools_for(name: &str) -> &'static [&'static str] {
    match name {
        "gen/ufw-host.sh" => &["ufw", "iptables-nft", "ip6tables-nft"],
        "gen/iptables-xt.sh" => &["iptables-nft", "ip6tables-nft"],
        _ => &[],
    }
}

/// Whether a command is installed (on `PATH` or in the sbin/bin dirs).
pub fn have_tool(t: &str) -> bool {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .any(|d| Path::new(d).join(t).is_file());
    found
}

/// The portwarden binary built for this test run.
pub fn portwarden_bin() -> &'static str {
    env!("CARGO_BIN_EXE_portwarden")
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A network namespace deleted on drop.
pub struct Netns {
    /// Its name under /run/netns.
    pub name: String,
}

impl Netns {
    /// Creates a fresh namespace with loopback up.
    pub fn new(tag: &str) -> Netns {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("pwt-{}-{n}-{tag}", std::process::id());
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// A command that runs inside the namespace.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs `ip ARGS` inside the namespace, panicking on failure.
    pub fn ip(&self, args: &[&str]) -> Output {
        run(Command::new("ip").arg("-n").arg(&self.name).args(args))
    }

    /// Loads a ruleset file with `nft -f`.
    pub fn nft_file(&self, path: &Path) {
        run(self.cmd("nft").arg("-f").arg(path));
    }

    /// Loads ruleset text with `nft -f -`.
    pub fn nft_text(&self, text: &str) {
        use std::io::Write;
        let mut child = self
            .cmd("nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nft");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "nft -f failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `nft -j list ruleset` parsed.
    pub fn nft_json(&self) -> serde_json::Value {
        let out = run(self.cmd("nft").args(["-j", "list", "ruleset"]));
        serde_json::from_slice(&out.stdout).expect("nft -j output is JSON")
    }

    /// Runs portwarden with `args` inside the namespace (not asserting success).
    pub fn portwarden(&self, args: &[&str]) -> Output {
        self.cmd(portwarden_bin())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run portwarden")
    }

    /// `portwarden audit --format json --config CFG ARGS...`: the report and
    /// the exit code; panics unless the audit ran (exit 0, 1 or 2).
    pub fn audit_json(&self, cfg: &Path, args: &[&str]) -> (serde_json::Value, i32) {
        let mut all = vec![
            "audit",
            "--format",
            "json",
            "--config",
            cfg.to_str().unwrap(),
        ];
        all.extend(args);
        let out = self.portwarden(&all);
        let code = out.status.code().unwrap_or(-1);
        assert!(
            (0..=2).contains(&code),
            "audit failed ({code}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
        (report, code)
    }

    /// `portwarden explain --batch` fed `queries` (one JSON object each):
    /// one answer per query, in order; panics if it fails.
    pub fn explain_batch(&self, queries: &[serde_json::Value]) -> Vec<serde_json::Value> {
        use std::io::Write;
        let mut child = self
            .cmd(portwarden_bin())
            .args(["explain", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn explain --batch");
        let input: String = queries.iter().map(|q| format!("{q}\n")).collect();
        let mut stdin = child.stdin.take().unwrap();
        // Written from another thread: the answers fill stdout meanwhile.
        let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
        let out = child.wait_with_output().expect("explain --batch");
        writer.join().unwrap().expect("write queries");
        assert!(
            out.status.success(),
            "explain --batch failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let answers: Vec<serde_json::Value> = String::from_utf8(out.stdout)
            .expect("UTF-8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON answer"))
            .collect();
        assert_eq!(answers.len(), queries.len(), "one answer per query");
        answers
    }

    /// `portwarden dump --json` parsed; panics if it fails.
    pub fn dump_json(&self) -> serde_json::Value {
        let out = self.portwarden(&["dump", "--json"]);
        assert!(
            out.status.success(),
            "portwarden dump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("dump --json is JSON")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Stop anything still running inside (a firewall manager), then delete.
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// The standard test topology: an audited `host` and a `peer`, joined by a
/// public and a private veth pair.
///
/// | host side | address                      | peer side   | address                      |
/// |-----------|------------------------------|-------------|------------------------------|
/// | pw-pub    | 192.0.2.1/24, 2001:db8:1::1  | peer-pub    | 192.0.2.2/24, 2001:db8:1::2  |
/// | pw-priv   | 10.99.0.1/24, fd00:99::1     | peer-priv   | 10.99.0.2/24, fd00:99::2     |
pub struct Topology {
    /// The audited host.
    pub host: Netns,
    /// The peer that sends probes.
    pub peer: Netns,
}

/// One side of a veth pair in the topology.
pub struct Link {
    /// Interface name on the host.
    pub host_if: &'static str,
    /// Interface name on the peer.
    pub peer_if: &'static str,
    /// Host IPv4 address.
    pub host4: &'static str,
    /// Peer IPv4 address.
    pub peer4: &'static str,
    /// Host IPv6 address.
    pub host6: &'static str,
    /// Peer IPv6 address.
    pub peer6: &'static str,
}

/// The public link.
pub const PUBLIC: Link = Link {
    host_if: "pw-pub",
    peer_if: "peer-pub",
    host4: "192.0.2.1",
    peer4: "192.0.2.2",
    host6: "2001:db8:1::1",
    peer6: "2001:db8:1::2",
};

/// The private link.
pub const PRIVATE: Link = Link {
    host_if: "pw-priv",
    peer_if: "peer-priv",
    host4: "10.99.0.1",
    peer4: "10.99.0.2",
    host6: "fd00:99::1",
    peer6: "fd00:99::2",
};

impl Topology {
    /// Creates both namespaces and both links, addressed and up.
    pub fn new(tag: &str) -> Topology {
        let host = Netns::new(&format!("{tag}-h"));
        let peer = Netns::new(&format!("{tag}-p"));
        for l in [PUBLIC, PRIVATE] {
            host.ip(&[
                "link", "add", l.host_if, "type", "veth", "peer", "name", l.peer_if, "netns",
                &peer.name,
            ]);
            for (ns, ifname, a4, a6) in [
                (&host, l.host_if, l.host4, l.host6),
                (&peer, l.peer_if, l.peer4, l.peer6),
            ] {
                ns.ip(&["addr", "add", &format!("{a4}/24"), "dev", ifname]);
                ns.ip(&["addr", "add", &format!("{a6}/64"), "dev", ifname, "nodad"]);
                ns.ip(&["link", "set", ifname, "up"]);
            }
        }
        Topology { host, peer }
    }

    /// Loads a fixture into the host: `.nft` files with `nft -f`; `.sh`
    /// fixtures (rulesets made by ufw or iptables-nft, which `nft -f`
    /// cannot reload) by running the script with the namespace name.
    pub fn load_fixture(&self, name: &str) {
        let path = fixture(name);
        if name.ends_with(".sh") {
            run(Command::new("bash").arg(&path).arg(&self.host.name));
        } else {
            self.host.nft_file(&path);
        }
    }

    /// Static neighbour entries on the peer for the host's addresses on
    /// both links, so that no packet waits on ARP or neighbour discovery
    /// (an IPv6 packet sent just after set-up would be lost).
    #[allow(dead_code)] // not every test binary needs it
    pub fn static_neighbours(&self) {
        for l in [&PUBLIC, &PRIVATE] {
            let link: serde_json::Value =
                serde_json::from_slice(&self.host.ip(&["-j", "link", "show", l.host_if]).stdout)
                    .expect("ip -j link");
            let mac = link[0]["address"].as_str().expect("MAC").to_string();
            for a in [l.host4, l.host6] {
                self.peer.ip(&[
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
}

impl Netns {
    /// The evaluator for this namespace's live ruleset and routes, read
    /// in-process by a thread that joins the namespace.
    #[allow(dead_code)] // not every test binary needs it
    pub fn evaluator(&self) -> portwarden::eval::Evaluator {
        use std::os::fd::AsRawFd;
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            // SAFETY: setns on a valid namespace fd changes only this
            // thread's network namespace; the thread ends after reading.
            let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            let snap = portwarden::nft::read_snapshot(&Default::default())
                .unwrap_or_else(|e| panic!("reading the snapshot: {e}"));
            let routes = portwarden::host::read_routes()
                .unwrap_or_else(|e| panic!("reading the routes: {e}"));
            portwarden::eval::Evaluator::new(&snap, routes)
        })
        .join()
        .expect("evaluator thread")
    }
}

/// Real packets from a peer namespace, and what reached the host's last
/// input chain: the kernel side of the kernel tests.
#[allow(dead_code)] // each test binary uses its part
pub mod packets {
    use super::{run, Netns};
    use serde_json::Value;
    use std::io::Write;
    use std::net::IpAddr;
    use std::process::Stdio;

    /// The recording table: its chain runs after every other input chain
    /// and adds every TCP/UDP packet that gets there to a dynamic set.
    const RECORDER: &str = r#"
table inet pw_seen {
  set s4 { type ifname . ipv4_addr . inet_proto . inet_service . inet_service; flags dynamic; size 65535; }
  set s6 { type ifname . ipv6_addr . inet_proto . inet_service . inet_service; flags dynamic; size 65535; }
  chain last {
    type filter hook input priority 2147483647; policy accept;
    meta nfproto ipv4 meta l4proto { tcp, udp } add @s4 { iifname . ip saddr . meta l4proto . th sport . th dport }
    meta nfproto ipv6 meta l4proto { tcp, udp } add @s6 { iifname . ip6 saddr . meta l4proto . th sport . th dport }
  }
}
"#;

    /// Sends one SYN or datagram per JSON line on stdin, `argv[1]` seconds
    /// apart; with `argv[2] == "lenient"` a failing send is not reported
    /// (a firewall refusing locally generated packets fails the send).
    const SENDER: &str = r#"
import json, socket, sys, time
pace = float(sys.argv[1])
strict = len(sys.argv) < 3 or sys.argv[2] != "lenient"
for line in sys.stdin:
    p = json.loads(line)
    fam = socket.AF_INET6 if ":" in p["from"] else socket.AF_INET
    kind = socket.SOCK_STREAM if p["proto"] == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(fam, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((p["from"], p["sport"]))
        s.setblocking(False)
        if kind == socket.SOCK_STREAM:
            s.connect_ex((p["to"], p["port"]))
        else:
            s.sendto(b"x" * 8, (p["to"], p["port"]))
    except OSError as e:
        if strict:
            print("send", p, e, file=sys.stderr)
    # The SYN is on its way once connect returns; closing sends nothing
    # more (no RST from SYN_SENT) and leaves no retransmission behind.
    s.close()
    if pace:
        time.sleep(pace)
time.sleep(0.3)
"#;

    /// One packet: a TCP SYN or a UDP datagram.
    #[derive(Clone, Debug)]
    pub struct Packet {
        /// `tcp` or `udp`.
        pub proto: String,
        pub from: IpAddr,
        pub to: IpAddr,
        pub sport: u16,
        pub port: u16,
    }

    /// A packet the recorder saw.
    #[derive(Clone, Debug, PartialEq, Eq, Hash)]
    pub struct Seen {
        pub iif: String,
        pub proto: String,
        pub saddr: String,
        pub sport: u16,
        pub dport: u16,
    }

    /// Adds the recorder to `host`.
    pub fn add_recorder(host: &Netns) {
        host.nft_text(RECORDER);
    }

    /// Removes the recorder (and what it saw) from `host`.
    pub fn remove_recorder(host: &Netns) {
        run(host.cmd("nft").args(["delete", "table", "inet", "pw_seen"]));
    }

    /// Sends `packets` from `peer`, `pace` seconds apart; every send must
    /// succeed.
    pub fn send(peer: &Netns, packets: &[Packet], pace: f64) {
        send_with(peer, packets, pace, "strict")
    }

    /// Sends `packets` from `ns`, `pace` seconds apart, ignoring sends that
    /// fail (on the output path a dropped packet fails `sendto` with EPERM).
    pub fn send_lenient(ns: &Netns, packets: &[Packet], pace: f64) {
        send_with(ns, packets, pace, "lenient")
    }

    fn send_with(peer: &Netns, packets: &[Packet], pace: f64, mode: &str) {
        let mut child = peer
            .cmd("python3")
            .args(["-c", SENDER, &pace.to_string(), mode])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 sender");
        {
            let mut stdin = child.stdin.take().expect("stdin");
            for p in packets {
                let line = serde_json::json!({"proto": p.proto, "from": p.from.to_string(),
                    "to": p.to.to_string(), "sport": p.sport, "port": p.port});
                writeln!(stdin, "{line}").expect("write to sender");
            }
        }
        let out = child.wait_with_output().expect("sender");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "sender failed: {err}");
        assert!(err.trim().is_empty(), "sender: {err}");
    }

    /// What the recorder of `host` has seen.
    pub fn seen(host: &Netns) -> Vec<Seen> {
        let mut out = Vec::new();
        for set in ["s4", "s6"] {
            let o = run(host
                .cmd("nft")
                .args(["-j", "list", "set", "inet", "pw_seen", set]));
            let v: Value = serde_json::from_slice(&o.stdout).expect("nft -j");
            for o in v["nftables"].as_array().into_iter().flatten() {
                for e in o["set"]["elem"].as_array().into_iter().flatten() {
                    let val = if e.get("elem").is_some() {
                        &e["elem"]["val"]
                    } else {
                        e
                    };
                    let c = val["concat"].as_array().expect("concat element");
                    let proto = match &c[2] {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => match n.as_u64() {
                            Some(6) => "tcp".into(),
                            Some(17) => "udp".into(),
                            _ => n.to_string(),
                        },
                        other => other.to_string(),
                    };
                    out.push(Seen {
                        iif: c[0].as_str().unwrap_or("?").to_string(),
                        proto,
                        saddr: c[1].as_str().unwrap_or("?").to_string(),
                        sport: c[3].as_u64().expect("sport") as u16,
                        dport: c[4].as_u64().unwrap_or(0) as u16,
                    });
                }
            }
        }
        out
    }
}

/// A scratch tree of cgroups under the cgroup2 mount, `pw-test-PID-TAG/...`:
/// removed on drop, deepest first (drop the processes inside first).
pub struct ScratchCgroups {
    /// `pw-test-PID-TAG` under the mount.
    pub root: PathBuf,
    dirs: Vec<PathBuf>,
}

impl ScratchCgroups {
    /// The cgroup2 mount of this mount namespace, or `None` (a cgroup v1
    /// only host).
    pub fn mount() -> Option<PathBuf> {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        portwarden::host::cgroup::cgroup2_mount(&info)
    }

    /// Creates the root and every directory of `paths` (below it).
    pub fn new(mount: &Path, tag: &str, paths: &[&str]) -> ScratchCgroups {
        let root = mount.join(format!("pw-test-{}-{tag}", std::process::id()));
        let mut s = ScratchCgroups {
            root: root.clone(),
            dirs: vec![root.clone()],
        };
        std::fs::create_dir(&root).unwrap();
        for p in paths {
            let mut d = root.clone();
            for c in p.split('/') {
                d.push(c);
                if !s.dirs.contains(&d) {
                    std::fs::create_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
                    s.dirs.push(d.clone());
                }
            }
        }
        s
    }

    /// The cgroup path portwarden should report for `p` (below the mount).
    pub fn rel(&self, p: &str, mount: &Path) -> String {
        format!(
            "/{}",
            self.root.join(p).strip_prefix(mount).unwrap().display()
        )
    }
}

impl Drop for ScratchCgroups {
    fn drop(&mut self) {
        for d in self.dirs.iter().rev() {
            // A killed process leaves its cgroup a moment after it is reaped.
            for _ in 0..100 {
                if std::fs::remove_dir(d).is_ok() || !d.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
}

/// The daemon tests' host: the topology with the daemon host's ruleset
/// (`tests/fixtures/daemon/host.nft`) and a route to the backup server's
/// network (10.0.0.0/24) through the private link.
pub fn daemon_host(tag: &str) -> Topology {
    let t = Topology::new(tag);
    t.host.ip(&[
        "route",
        "add",
        "10.0.0.0/24",
        "via",
        "10.99.0.2",
        "dev",
        "pw-priv",
    ]);
    t.load_fixture("daemon/host.nft");
    t
}

/// A python3 process that printed `ready`; killed (by its pid) on drop.
pub struct Python(std::process::Child);

impl Drop for Python {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs python3 `script` with `args` in `ns` and waits for its `ready`.
#[allow(dead_code)] // not every test binary needs it
pub fn python(ns: &Netns, script: &str, args: &[&str]) -> Python {
    use std::io::{BufRead, BufReader};
    let mut child = ns
        .cmd("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    Python(child)
}

/// [`LISTENERS`] on `specs` (`tcp/6162`, `udp/53`) in `ns`, until dropped.
#[allow(dead_code)] // not every test binary needs it
pub fn listeners(ns: &Netns, specs: &[&str]) -> Python {
    python(ns, LISTENERS, specs)
}

/// A python3 script that listens on each `tcp/PORT` or `udp/PORT` given as
/// an argument (IPv6 wildcard sockets that take IPv4 too), prints `ready`
/// and waits.
pub const LISTENERS: &str = r#"
import socket, sys, time
keep = []
for spec in sys.argv[1:]:
    proto, port = spec.split("/")
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(socket.AF_INET6, kind)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", int(port)))
    if kind == socket.SOCK_STREAM:
        s.listen(64)
    keep.append(s)
print("ready", flush=True)
time.sleep(3600)
"#;
