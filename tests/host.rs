//! The host readers against the kernel, in throwaway namespaces:
//! `portwarden routes --json` against `ip -j addr` / `ip -j route`, and
//! `portwarden listeners` against real sockets opened by python3.

mod common;

use common::{require_root, run, Netns, ScratchCgroups, Topology};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A python3 process inside a namespace holding sockets open; killed on drop.
struct Sockets {
    child: Child,
    /// Its pid, as it reported it.
    pid: u32,
    /// Socket inodes, in the order of the spec.
    inodes: Vec<u64>,
    ready: PathBuf,
}

impl Drop for Sockets {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.ready);
    }
}

/// Opens sockets from a spec (a list of [proto, family, addr, port,
/// v6only, dev]) or `count` TCP listeners on 0.0.0.0 from port 20000,
/// writes {pid, inodes} to the ready file, then waits to be killed.
const PY: &str = r#"
import json, os, resource, signal, socket, sys
ready, spec = sys.argv[1], json.loads(sys.argv[2])
if isinstance(spec, int):
    resource.setrlimit(resource.RLIMIT_NOFILE, (spec + 100, max(spec + 100, resource.getrlimit(resource.RLIMIT_NOFILE)[1])))
    spec = [["tcp", 4, "0.0.0.0", 20000 + i, False, None] for i in range(spec)]
socks = []
for proto, fam, addr, port, v6only, dev in spec:
    s = socket.socket(socket.AF_INET6 if fam == 6 else socket.AF_INET,
                      socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    if fam == 6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if v6only else 0)
    if dev:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, dev.encode())
    s.bind((addr, port))
    if proto == "tcp":
        s.listen(1)
    socks.append(s)
tmp = ready + ".tmp"
with open(tmp, "w") as f:
    json.dump({"pid": os.getpid(), "inodes": [os.fstat(s.fileno()).st_ino for s in socks]}, f)
os.rename(tmp, ready)
signal.pause()
"#;

fn open_sockets(ns: &Netns, spec: &str) -> Sockets {
    open_sockets_in(ns, None, spec)
}

/// [`open_sockets`], with python3 first moved into the cgroup `cgroup` (a
/// directory of the cgroup2 tree): its sockets are created there.
fn open_sockets_in(ns: &Netns, cgroup: Option<&Path>, spec: &str) -> Sockets {
    let tag = cgroup.map_or(String::new(), |c| {
        format!("-{}", c.file_name().unwrap().to_string_lossy())
    });
    let ready = std::env::temp_dir().join(format!("{}{tag}.ready", ns.name));
    let _ = std::fs::remove_file(&ready);
    let mut cmd = match cgroup {
        None => ns.cmd("python3"),
        Some(dir) => {
            // The shell moves itself, then execs: python3 starts inside.
            let mut c = Command::new("sh");
            c.args(["-c", "echo $$ > \"$0/cgroup.procs\" && exec \"$@\""])
                .arg(dir)
                .args(["ip", "netns", "exec", &ns.name, "python3"]);
            c
        }
    };
    let mut child = cmd
        .args(["-c", PY])
        .arg(&ready)
        .arg(spec)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python3");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(text) = std::fs::read_to_string(&ready) {
            let v: Value = serde_json::from_str(&text).expect("ready file is JSON");
            let pid = v["pid"].as_u64().unwrap() as u32;
            let inodes = v["inodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i.as_u64().unwrap())
                .collect();
            return Sockets {
                child,
                pid,
                inodes,
                ready,
            };
        }
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "python3 exited with {status}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(Instant::now() < deadline, "python3 never became ready");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn portwarden_json(ns: &Netns, args: &[&str]) -> Value {
    let out = ns.portwarden(args);
    assert!(
        out.status.success(),
        "portwarden {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

fn ip_json(ns: &Netns, args: &[&str]) -> Value {
    let out = ns.ip(&[&["-j"][..], args].concat());
    serde_json::from_slice(&out.stdout).expect("ip -j is JSON")
}

/// `ip`'s route destination as a prefix: `default`, `10.0.0.7`, `10.0.0.0/8`.
fn ip_dst(dst: &str, v6: bool) -> String {
    match (dst, v6) {
        ("default", false) => "0.0.0.0/0".into(),
        ("default", true) => "::/0".into(),
        (d, _) if d.contains('/') => d.into(),
        (d, false) => format!("{d}/32"),
        (d, true) => format!("{d}/128"),
    }
}

#[test]
fn host_routes_match_ip() {
    if !require_root("host_routes_match_ip") {
        return;
    }
    let t = Topology::new("rt");
    let h = &t.host;
    // A secondary address (kernel order), a group, a second veth pair
    // inside the host for the link kind, and routes of every kind.
    h.ip(&["addr", "add", "10.99.1.1/24", "dev", "pw-priv"]);
    h.ip(&["addr", "add", "10.99.0.77/24", "dev", "pw-priv"]);
    h.ip(&[
        "-6",
        "addr",
        "add",
        "fd00:99::77/64",
        "dev",
        "pw-priv",
        "nodad",
    ]);
    h.ip(&["link", "set", "pw-priv", "group", "7"]);
    h.ip(&[
        "link", "add", "pw-a", "type", "veth", "peer", "name", "pw-b",
    ]);
    h.ip(&["route", "add", "default", "via", "192.0.2.2"]);
    h.ip(&["route", "add", "198.51.100.0/24", "via", "10.99.0.2"]);
    h.ip(&["route", "add", "198.51.100.77", "via", "10.99.0.2"]);
    h.ip(&["route", "add", "blackhole", "203.0.113.0/24"]);
    h.ip(&["route", "add", "unreachable", "198.18.0.0/15"]);
    h.ip(&["route", "add", "prohibit", "198.20.0.0/16"]);
    h.ip(&[
        "route",
        "add",
        "192.0.2.128/25",
        "dev",
        "pw-pub",
        "table",
        "100",
    ]);
    h.ip(&[
        "-6",
        "route",
        "add",
        "2001:db8:99::/48",
        "via",
        "fd00:99::2",
    ]);
    h.ip(&["-6", "route", "add", "blackhole", "2001:db8:dead::/48"]);
    h.ip(&[
        "rule",
        "add",
        "pref",
        "200",
        "from",
        "10.0.0.0/8",
        "lookup",
        "100",
    ]);
    h.ip(&["-6", "route", "add", "prohibit", "2001:db8:beef::/48"]);

    // `ip` before and after ours, the same both times: nothing (an IPv6
    // link-local address, say) appeared in between.
    let (ours, links) = (0..5)
        .find_map(|_| {
            let before = ip_json(h, &["-d", "addr", "show"]);
            let ours = portwarden_json(h, &["routes", "--json"]);
            let after = ip_json(h, &["-d", "addr", "show"]);
            (before == after).then_some((ours, after))
        })
        .expect("addresses kept changing");

    // Interfaces: names, indexes, types, addresses in order, group, kind.
    let links = links.as_array().unwrap();
    let itfs = ours["interfaces"].as_array().unwrap();
    assert_eq!(itfs.len(), links.len(), "{ours:#}");
    for link in links {
        let name = link["ifname"].as_str().unwrap();
        let itf = itfs
            .iter()
            .find(|i| i["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing: {ours:#}"));
        assert_eq!(itf["index"], link["ifindex"], "{name}");
        let iftype = match link["link_type"].as_str().unwrap() {
            "ether" => 1,
            "loopback" => 772,
            other => panic!("unexpected link type {other}"),
        };
        assert_eq!(itf["iftype"], iftype, "{name}");
        let want: Vec<String> = link["addr_info"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
            .collect();
        let got: Vec<String> = itf["addrs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        assert_eq!(got, want, "addresses of {name}");
        let group = match link["group"].as_str().unwrap() {
            "default" => 0,
            g => g.parse().unwrap(),
        };
        assert_eq!(itf["group"], group, "{name}");
        assert_eq!(
            itf.get("kind").and_then(Value::as_str),
            link["linkinfo"]["info_kind"].as_str(),
            "{name}"
        );
    }
    let priv_if = itfs.iter().find(|i| i["name"] == "pw-priv").unwrap();
    assert_eq!(priv_if["group"], 7);
    assert_eq!(priv_if["kind"], "veth");
    assert_eq!(priv_if["addrs"][0], "10.99.0.1/24");
    assert!(priv_if["addrs"]
        .as_array()
        .unwrap()
        .contains(&Value::from("fd00:99::1/64")));

    // Routes: every table but local, v4 then v6, in the kernel's order,
    // each with its table (main when absent).
    let mut want = Vec::new();
    for (v6, fam) in [(false, "-4"), (true, "-6")] {
        for r in ip_json(h, &[fam, "route", "show", "table", "all"])
            .as_array()
            .unwrap()
        {
            let kind = r["type"].as_str().unwrap_or("unicast").to_string();
            let table = match r["table"].as_str() {
                None | Some("main") => 254,
                Some("local") => continue,
                Some(t) => t.parse().unwrap(),
            };
            if !["unicast", "blackhole", "unreachable", "prohibit", "throw"]
                .contains(&kind.as_str())
            {
                continue;
            }
            let dev = match kind.as_str() {
                "unicast" => r["dev"].as_str().map(str::to_string),
                _ => None,
            };
            want.push((ip_dst(r["dst"].as_str().unwrap(), v6), dev, kind, table));
        }
    }
    let got: Vec<(String, Option<String>, String, u64)> = ours["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["dst"].as_str().unwrap().to_string(),
                r.get("dev").and_then(Value::as_str).map(str::to_string),
                r["kind"].as_str().unwrap().to_string(),
                r.get("table").and_then(Value::as_u64).unwrap_or(254),
            )
        })
        .collect();
    assert_eq!(got, want);
    let has = |dst: &str, dev: Option<&str>, kind: &str| {
        got.iter()
            .any(|(d, v, k, _)| d == dst && v.as_deref() == dev && k == kind)
    };
    assert!(
        got.contains(&(
            "192.0.2.128/25".into(),
            Some("pw-pub".into()),
            "unicast".into(),
            100
        )),
        "{got:?}"
    );
    // Policy rules: as `ip -j rule` lists them, both families.
    for fam in ["-4", "-6"] {
        let theirs: Vec<u64> = ip_json(h, &[fam, "rule", "show"])
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["priority"].as_u64().unwrap())
            .collect();
        let v6 = fam == "-6";
        let mine: Vec<u64> = ours["rules"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["v6"].as_bool() == Some(v6))
            .map(|r| r["priority"].as_u64().unwrap())
            .collect();
        assert_eq!(mine, theirs, "{fam} rules");
    }
    assert!(
        ours["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["priority"] == 200
                && r["from"] == "10.0.0.0/8"
                && r["action"] == serde_json::json!({"lookup": 100})),
        "{}",
        ours["rules"]
    );
    assert!(has("0.0.0.0/0", Some("pw-pub"), "unicast"), "{got:?}");
    assert!(has("198.51.100.0/24", Some("pw-priv"), "unicast"));
    assert!(has("198.51.100.77/32", Some("pw-priv"), "unicast"));
    assert!(has("203.0.113.0/24", None, "blackhole"));
    assert!(has("198.18.0.0/15", None, "unreachable"));
    assert!(has("198.20.0.0/16", None, "prohibit"));
    assert!(has("2001:db8:99::/48", Some("pw-priv"), "unicast"));
    assert!(has("2001:db8:dead::/48", None, "blackhole"));
    assert!(has("2001:db8:beef::/48", None, "prohibit"));
    // Table 100's route is there once, with its table.
    assert_eq!(
        got.iter().filter(|(d, ..)| d == "192.0.2.128/25").count(),
        1,
        "{got:?}"
    );
}

/// Every field of every socket, against what python3 opened.
#[test]
fn host_listeners_every_field() {
    if !require_root("host_listeners_every_field") {
        return;
    }
    let t = Topology::new("ls");
    let spec = r#"[
        ["tcp", 4, "0.0.0.0", 6162, false, null],
        ["tcp", 6, "::", 2500, true, null],
        ["tcp", 6, "::", 2548, false, null],
        ["udp", 4, "10.99.0.1", 2546, false, null],
        ["tcp", 4, "0.0.0.0", 10005, false, "pw-priv"],
        ["tcp", 4, "127.0.0.1", 8080, false, null],
        ["udp", 6, "fd00:99::1", 2547, true, null],
        ["udp", 4, "0.0.0.0", 5353, false, "pw-pub"]
    ]"#;
    let socks = open_sockets(&t.host, spec);
    assert_eq!(socks.pid, socks.child.id(), "ip netns exec execs python3");
    let cgroup = std::fs::read_to_string(format!("/proc/{}/cgroup", socks.pid)).unwrap();
    let unit = portwarden::host::sockets::unit_from_cgroup(&cgroup);

    let ours = portwarden_json(&t.host, &["listeners", "--json"]);
    let ours = ours.as_array().unwrap();
    // (proto, addr, port, v6only, dev, exposed)
    let expected = [
        ("tcp", "0.0.0.0", 6162, false, None, true),
        ("tcp", "::", 2500, true, None, true),
        ("tcp", "::", 2548, false, None, true),
        ("udp", "10.99.0.1", 2546, false, None, true),
        ("tcp", "0.0.0.0", 10005, false, Some("pw-priv"), true),
        ("tcp", "127.0.0.1", 8080, false, None, false),
        ("udp", "fd00:99::1", 2547, true, None, true),
        ("udp", "0.0.0.0", 5353, false, Some("pw-pub"), true),
    ];
    assert_eq!(ours.len(), expected.len(), "{ours:#?}");
    for (i, (proto, addr, port, v6only, dev, exposed)) in expected.into_iter().enumerate() {
        let l = ours
            .iter()
            .find(|l| l["proto"] == proto && l["port"] == port)
            .unwrap_or_else(|| panic!("{proto} {port} missing: {ours:#?}"));
        assert_eq!(l["addr"], addr, "{l}");
        assert_eq!(l["v6only"], v6only, "{l}");
        assert_eq!(l["dev"].as_str(), dev, "{l}");
        assert_eq!(l["uid"], 0, "{l}");
        assert_eq!(l["inode"], socks.inodes[i], "{l}");
        assert_eq!(l["process"]["pid"], socks.pid, "{l}");
        assert_eq!(l["process"]["command"], "python3", "{l}");
        assert_eq!(l["process"]["unit"].as_str(), unit.as_deref(), "{l}");
        let typed: portwarden::host::Listener = serde_json::from_value(l.clone()).unwrap();
        assert_eq!(typed.is_exposed(), exposed, "{l}");
    }
    // Sorted by protocol, port, address.
    let order: Vec<(String, u64)> = ours
        .iter()
        .map(|l| {
            (
                l["proto"].as_str().unwrap().into(),
                l["port"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);

    // ss agrees on the set of sockets.
    let ss = run(t.host.cmd("ss").args(["-H", "-ltun"]));
    let ss: BTreeSet<(String, u16)> = String::from_utf8_lossy(&ss.stdout)
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let port = f[4].rsplit(':').next().unwrap().parse().unwrap();
            (f[0].to_string(), port)
        })
        .collect();
    let mine: BTreeSet<(String, u16)> = order.iter().map(|(p, n)| (p.clone(), *n as u16)).collect();
    assert_eq!(mine, ss);

    // The text form: one line each, v6only and dev shown.
    let out = t.host.portwarden(&["listeners"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), expected.len(), "{text}");
    let pid = format!("python3 (pid {}", socks.pid);
    assert!(lines.iter().all(|l| l.contains(&pid)), "{text}");
    let line = |needle: &str| *lines.iter().find(|l| l.contains(needle)).unwrap();
    assert!(line("tcp  0.0.0.0:6162 ").starts_with("tcp  0.0.0.0:6162"));
    assert!(line("[::]:2500").ends_with("v6only"), "{text}");
    assert!(!line("[::]:2548").contains("v6only"), "{text}");
    assert!(line("0.0.0.0:10005").ends_with("dev pw-priv"), "{text}");
    assert!(line("10.99.0.1:2546").starts_with("udp "), "{text}");

    // Without privileges: the same sockets, but other users' processes
    // cannot be seen.
    let out = t
        .host
        .cmd("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args(["--inh-caps=-all", "--bounding-set=-all"])
        .args([common::portwarden_bin(), "listeners", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let unpriv: Vec<portwarden::host::Listener> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(unpriv.len(), expected.len());
    assert!(unpriv.iter().all(|l| l.process.is_none()), "{unpriv:?}");

    // A namespace is its own: the peer has none of these.
    let peer = portwarden_json(&t.peer, &["listeners", "--json"]);
    assert_eq!(peer, Value::Array(vec![]));
    drop(socks);
}

/// 5,000 listening sockets of one process are all found, with their owner.
#[test]
fn host_five_thousand_listeners() {
    if !require_root("host_five_thousand_listeners") {
        return;
    }
    const N: usize = 5000;
    let ns = Netns::new("many");
    let socks = open_sockets(&ns, &N.to_string());
    let start = Instant::now();
    let out = ns.portwarden(&["listeners", "--json"]);
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours: Vec<portwarden::host::Listener> = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!(
        "host_five_thousand_listeners: {} sockets read in {:.3} s (portwarden listeners --json, whole process)",
        ours.len(),
        took.as_secs_f64()
    );
    assert_eq!(ours.len(), N);
    let by_inode: HashMap<u64, &portwarden::host::Listener> =
        ours.iter().map(|l| (l.inode, l)).collect();
    for (i, inode) in socks.inodes.iter().enumerate() {
        let l = by_inode
            .get(inode)
            .unwrap_or_else(|| panic!("socket {i} (inode {inode}) missing"));
        assert_eq!(l.port as usize, 20000 + i);
        assert_eq!(l.process.as_ref().map(|p| p.pid), Some(socks.pid));
    }
    let ports: Vec<u16> = ours.iter().map(|l| l.port).collect();
    assert!(ports.windows(2).all(|w| w[0] < w[1]), "sorted by port");
}

#[test]
fn host_rp_filter_is_read_per_interface() {
    if !require_root("host_rp_filter_is_read_per_interface") {
        return;
    }
    let t = Topology::new("rpf");
    let sysctl = |kv: String| {
        common::run(t.host.cmd("sysctl").args(["-qw", &kv]));
    };
    let set = |k: &str, v: u8| sysctl(format!("net.ipv4.conf.{k}.rp_filter={v}"));
    let field = |v: &Value, name: &str, key: &str| -> Value {
        v["interfaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == name)
            .unwrap()
            .get(key)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let of = |v: &Value, name: &str| field(v, name, "rp_filter");
    let from = |v: &Value, name: &str| field(v, name, "rp_filter_from");
    set("all", 0);
    set("pw-pub", 1);
    set("pw-priv", 0);
    let v = portwarden_json(&t.host, &["routes", "--json"]);
    assert_eq!(of(&v, "pw-pub"), "strict");
    assert_eq!(from(&v, "pw-pub"), Value::Null, "the interface's own");
    assert_eq!(of(&v, "pw-priv"), Value::Null, "off is left out");
    assert_eq!(from(&v, "pw-priv"), Value::Null, "off: nothing to name");
    // The larger of `all` and the interface's value counts: loose (2) wins.
    set("all", 2);
    let v = portwarden_json(&t.host, &["routes", "--json"]);
    assert_eq!(of(&v, "pw-pub"), "loose");
    assert_eq!(from(&v, "pw-pub"), "all");
    assert_eq!(of(&v, "pw-priv"), "loose");
    set("pw-pub", 2);
    let v = portwarden_json(&t.host, &["routes", "--json"]);
    assert_eq!(from(&v, "pw-pub"), "all", "equal: `all` is named");

    // route_localnet and accept_local: either `all` or the interface's own
    // enables them.
    for key in ["route_localnet", "accept_local"] {
        for k in ["all", "pw-pub", "pw-priv"] {
            sysctl(format!("net.ipv4.conf.{k}.{key}=0"));
        }
        let v = portwarden_json(&t.host, &["routes", "--json"]);
        assert_eq!(field(&v, "pw-pub", key), Value::Null, "{key} off");
        sysctl(format!("net.ipv4.conf.pw-pub.{key}=1"));
        let v = portwarden_json(&t.host, &["routes", "--json"]);
        assert_eq!(field(&v, "pw-pub", key), "interface", "{key}");
        assert_eq!(field(&v, "pw-priv", key), Value::Null, "{key}");
        sysctl(format!("net.ipv4.conf.all.{key}=1"));
        let v = portwarden_json(&t.host, &["routes", "--json"]);
        assert_eq!(field(&v, "pw-pub", key), "all", "{key}");
        assert_eq!(field(&v, "pw-priv", key), "all", "{key}");
    }
}

/// `portwarden ARGS` in the namespace, entered with nsenter (the mount
/// namespace stays: `ip netns exec` would mount a fresh /sys without the
/// cgroup tree), run as root (`caps` None) or as nobody with only the
/// capabilities `caps` (`+net_admin`: as the hardened service runs).
///
/// With `hide_proc`, in a mount namespace of its own with a /proc mounted
/// `hidepid=invisible,subset=pid`, as systemd's `ProtectProc=invisible` and
/// `ProcSubset=pid` give the hardened service.
fn portwarden_nsenter(
    ns: &Netns,
    caps: Option<&str>,
    hide_proc: bool,
    args: &[&str],
) -> std::process::Output {
    let mut c = if hide_proc {
        let mut c = Command::new("unshare");
        c.args(["-m", "--propagation", "private", "sh", "-c"])
            .arg("mount -t proc -o hidepid=invisible,subset=pid proc /proc && exec \"$@\"")
            .args(["sh", "nsenter"]);
        c
    } else {
        Command::new("nsenter")
    };
    c.arg(format!("--net=/run/netns/{}", ns.name));
    if let Some(caps) = caps {
        c.args([
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ])
        .arg(format!("--inh-caps=-all,{caps}"))
        .arg(format!("--ambient-caps=-all,{caps}"))
        .arg(format!("--bounding-set=-all,{caps}"))
        .arg("--");
    }
    c.arg(common::portwarden_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run portwarden under nsenter")
}

/// Every listener names the systemd unit of the cgroup its socket was
/// created in, as root (with the process too), as nobody with only
/// CAP_NET_ADMIN (the unit alone: /proc/PID/fd of root's processes is
/// closed to it; also with /proc mounted as `ProtectProc=invisible` and
/// `ProcSubset=pid` show it) and as nobody with the documented drop-in's
/// CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH added (the process again), in the
/// text and JSON of `listeners` and in the audit's exposed-listener
/// findings.
#[test]
fn host_listeners_name_their_unit_from_the_socket_cgroup() {
    let test = "host_listeners_name_their_unit_from_the_socket_cgroup";
    if !require_root(test) {
        return;
    }
    let Some(mount) = ScratchCgroups::mount() else {
        eprintln!("SKIPPED {test}: no cgroup2 mount (a cgroup v1 only host)");
        return;
    };
    // (cgroup below the scratch root, port, unit, user manager's uid)
    let cases: [(&str, u16, Option<&str>, Option<u32>); 5] = [
        ("system.slice/foo.service", 7001, Some("foo.service"), None),
        (
            "system.slice/getty@tty1.service/payload/inner",
            7002,
            Some("getty@tty1.service"),
            None,
        ),
        (
            "user.slice/user-1000.slice/user@1000.service/app.slice/app-x.service",
            7003,
            Some("app-x.service"),
            Some(1000),
        ),
        (
            "user.slice/user-1000.slice/session-3.scope",
            7004,
            Some("session-3.scope"),
            None,
        ),
        ("plain", 7005, None, None),
    ];
    let t = Topology::new("cg");
    let scratch = ScratchCgroups::new(&mount, "listeners", &cases.map(|(p, ..)| p));
    let socks: Vec<Sockets> = cases
        .iter()
        .map(|(p, port, ..)| {
            let spec = format!(r#"[["tcp", 4, "0.0.0.0", {port}, false, null]]"#);
            open_sockets_in(&t.host, Some(&scratch.root.join(p)), &spec)
        })
        .collect();

    let run_json = |caps: Option<&str>, hide_proc: bool, args: &[&str]| -> Value {
        let out = portwarden_nsenter(&t.host, caps, hide_proc, args);
        assert!(
            out.status.code().is_some_and(|c| c <= 2),
            "portwarden {args:?} (caps {caps:?}): {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("JSON output")
    };
    for (caps, hide_proc) in [
        (None, false),
        (Some("+net_admin"), false),
        (Some("+net_admin"), true),
        (Some("+net_admin,+sys_ptrace,+dac_read_search"), false),
    ] {
        // Whether /proc/PID/fd of root's python3 is closed to this run.
        let unprivileged = caps == Some("+net_admin");
        let ours = run_json(caps, hide_proc, &["listeners", "--json"]);
        let ours = ours.as_array().unwrap();
        assert_eq!(ours.len(), cases.len(), "{ours:#?}");
        for ((p, port, unit, user), s) in cases.iter().zip(&socks) {
            let l = ours.iter().find(|l| l["port"] == *port).unwrap();
            // The id is the cgroup directory's inode number: the kernel's
            // word, checked against the file system here.
            let dir = scratch.root.join(p);
            let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&dir).unwrap());
            assert_eq!(l["cgroup_id"], ino, "{l}");
            assert_eq!(l["cgroup"], scratch.rel(p, &mount), "{l}");
            assert_eq!(l["unit"].as_str(), *unit, "{l}");
            assert_eq!(l["unit_user"].as_u64(), user.map(u64::from), "{l}");
            if unprivileged {
                assert!(l["process"].is_null(), "{l}");
            } else {
                assert_eq!(l["process"]["pid"], s.pid, "{l}");
                assert_eq!(l["process"]["command"], "python3", "{l}");
            }
        }

        let out = portwarden_nsenter(&t.host, caps, hide_proc, &["listeners"]);
        let text = String::from_utf8(out.stdout).unwrap();
        let line = |port: u16| {
            text.lines()
                .find(|l| l.contains(&format!("0.0.0.0:{port} ")))
                .unwrap_or_else(|| panic!("{port} missing:\n{text}"))
                .to_string()
        };
        if unprivileged {
            assert!(line(7001).contains("foo.service (uid 0, inode "), "{text}");
            assert!(
                line(7003).contains("app-x.service of user 1000 (uid 0"),
                "{text}"
            );
            assert!(line(7005).contains("? (uid 0, inode "), "{text}");
        } else {
            let pid = socks[0].pid;
            assert!(
                line(7001).contains(&format!("python3 (pid {pid}, foo.service)")),
                "{text}"
            );
        }

        // The audit's exposed-listener finding names the unit (no ruleset:
        // every port is open to everyone on pw-pub).
        let report = run_json(
            caps,
            hide_proc,
            &[
                "audit",
                "--json",
                "--role",
                "evault-agent",
                "--peer",
                "evault_management=10.99.0.0/24",
                "--private-iface",
                "pw-priv",
            ],
        );
        let findings = report["findings"].as_array().unwrap();
        let f = findings
            .iter()
            .find(|f| {
                f["kind"] == "exposed-listener" && f["ports"] == serde_json::json!([[7001, 7001]])
            })
            .unwrap_or_else(|| panic!("no exposed-listener finding for 7001: {report:#}"));
        let summary = f["summary"].as_str().unwrap();
        let ev = f["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["port"] == 7001)
            .unwrap();
        assert_eq!(ev["unit"], "foo.service", "{ev}");
        if unprivileged {
            assert!(
                summary.starts_with("foo.service listens on tcp 7001"),
                "{summary}"
            );
            assert!(ev["process"].is_null(), "{ev}");
        } else {
            assert!(
                summary.starts_with("python3 listens on tcp 7001"),
                "{summary}"
            );
            assert_eq!(ev["process"]["pid"], socks[0].pid, "{ev}");
        }
    }
    drop(socks);
    drop(scratch);
}

/// Cgroup ids are looked up with one walk of the cgroup2 tree, and never
/// walked for again: found ids keep their path, an id that is nowhere (a
/// removed cgroup) keeps its "none".
#[test]
fn host_cgroup_paths_walk_once_per_unknown_id() {
    let test = "host_cgroup_paths_walk_once_per_unknown_id";
    if !require_root(test) {
        return;
    }
    let Some(mount) = ScratchCgroups::mount() else {
        eprintln!("SKIPPED {test}: no cgroup2 mount (a cgroup v1 only host)");
        return;
    };
    let scratch = ScratchCgroups::new(&mount, "walk", &["a.slice/b.service", "c"]);
    let ino = |p: &str| {
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(scratch.root.join(p)).unwrap())
    };
    let (b, c) = (ino("a.slice/b.service"), ino("c"));
    let mut paths = portwarden::host::cgroup::CgroupPaths::new(Some(mount.clone()));
    paths.resolve([b, c]);
    assert_eq!(paths.stats().0, 1);
    assert_eq!(
        paths.path(b),
        Some(scratch.rel("a.slice/b.service", &mount).as_str())
    );
    assert_eq!(paths.path(c), Some(scratch.rel("c", &mount).as_str()));
    paths.resolve([c, b]);
    assert_eq!(paths.stats().0, 1, "known ids walk again");
    // The root is id 1 ("/"), found without reading a directory.
    paths.resolve([1]);
    assert_eq!(paths.path(1), Some("/"));
    // A removed cgroup: one walk, then its absence is remembered.
    let gone = ino("a.slice/b.service");
    drop(scratch);
    let mut fresh = portwarden::host::cgroup::CgroupPaths::new(Some(mount));
    fresh.resolve([gone]);
    assert_eq!(fresh.path(gone), None);
    let walks = fresh.stats().0;
    fresh.resolve([gone]);
    assert_eq!(fresh.stats().0, walks);
    // No cgroup2 mount: nothing resolves, nothing is walked.
    let mut none = portwarden::host::cgroup::CgroupPaths::new(None);
    none.resolve([1, b]);
    assert_eq!((none.path(1), none.stats()), (None, (0, 0)));
}
