//! Test harness: throwaway network namespaces with veth peers, rulesets
//! loaded by `nft -f` or by real firewall managers, and portwarden run inside.
//!
//! Every namespace is deleted when its [`Netns`] is dropped, including on a
//! panicking test. Tests that need root call [`require_root`] first and skip
//! with a visible message without it.

#![allow(dead_code)]

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
}
