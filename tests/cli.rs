//! The command line: roles, catalog, check-config, --catalog-dir, JSON
//! layout, exit codes in --help and README, and a closed pipe on every
//! command (those that read the kernel run in a throwaway namespace, as
//! root).

mod common;

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn pw(args: &[&str]) -> std::process::Output {
    Command::new(common::portwarden_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run portwarden")
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("pw-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, text).unwrap();
        p
    }

    fn path(&self, name: &str) -> &str {
        let p = self.0.join(name);
        Box::leak(p.to_string_lossy().into_owned().into_boxed_str())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn roles_lists_the_required_role_ids_and_shows_sources() {
    let out = pw(&["roles"]);
    assert!(out.status.success());
    let text = stdout(&out);
    for id in [
        "evault-agent",
        "veeam-data-mover",
        "veeam-linux-repository",
        "veeam-hardened-repository",
        "veeam-linux-proxy",
        "veeam-nutanix-worker",
        "veeam-linux-guest",
        "veeam-cdp-proxy",
        "veeam-mount-server",
        "veeam-agent-linux",
        "veeam-network-extension",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(id)),
            "{id} missing from:\n{text}"
        );
    }
    let show = pw(&["roles", "show", "veeam-data-mover"]);
    let text = stdout(&show);
    assert!(
        text.contains("6162") && text.contains("source: VBR-"),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_slice(&pw(&["roles", "--json"]).stdout).unwrap();
    assert!(json.as_array().unwrap().len() >= 11);
}

#[test]
fn unknown_role_suggests_the_nearest() {
    let out = pw(&["roles", "show", "evault-agnt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("did you mean `evault-agent`"));
}

#[test]
fn check_config_reports_file_line_column_and_exits_3() {
    let dir = Scratch::new("check");
    let bad = dir.file("bad.toml", "roles = [\"veeam-linux-repositry\"]\n");
    let out = pw(&["check-config", "--config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(
        err.contains("bad.toml:1:10") && err.contains("veeam-linux-repository"),
        "{err}"
    );
    // The example names eth1, which this machine need not have.
    let good = pw(&[
        "check-config",
        "--offline",
        "--config",
        common::fixture("../../config/portwarden.toml")
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(good.status.code(), Some(0), "{}", stderr(&good));
}

#[test]
fn check_config_locates_a_byte_that_is_not_utf8() {
    let dir = Scratch::new("latin1");
    let path = dir.0.join("latin1.toml");
    let mut bytes = b"roles = [\"evault-agent\"]\n# caf".to_vec();
    bytes.extend([0xe9, b'\n']);
    std::fs::write(&path, bytes).unwrap();
    let out = pw(&["check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("latin1.toml:2:6: invalid UTF-8: byte 0xe9"),
        "{}",
        stderr(&out)
    );
}

/// `[[first, last], ...]` (a port set's JSON) as text: `2500-3300,4000`.
fn ports_text(v: &serde_json::Value) -> String {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let (a, b) = (r[0].as_u64().unwrap(), r[1].as_u64().unwrap());
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn roles_show_prints_real_ports_conditions_and_peer_scope() {
    let json: serde_json::Value = serde_json::from_slice(&pw(&["roles", "--json"]).stdout).unwrap();
    let mut variants_seen = 0;
    for role in json.as_array().unwrap() {
        let id = role["id"].as_str().unwrap();
        let text = stdout(&pw(&["roles", "show", id]));
        assert!(
            !text.contains('<'),
            "{id}: a port set left unresolved:\n{text}"
        );
        for req in role["requirement"].as_array().unwrap() {
            let rid = req["id"].as_str().unwrap();
            let variants = role["port_variants"][rid].as_array().unwrap();
            assert!(!variants.is_empty(), "{id}/{rid}: no ports");
            // Alternatives: each one, "443 or 80", instead of their union.
            if let Some(alts) = req["any_of"].as_array() {
                let each: Vec<String> = alts
                    .iter()
                    .map(|a| ports_text(&serde_json::json!([a])))
                    .collect();
                let shown = format!(" {} ", each.join(" or "));
                assert!(
                    text.contains(&shown),
                    "{id}/{rid}: {shown:?} not in\n{text}"
                );
                assert!(
                    text.contains(&format!(
                        "alternatives: {}, any one of them open is enough (a fix opens {})",
                        each.join(" or "),
                        each[0]
                    )),
                    "{id}/{rid}:\n{text}"
                );
            }
            // Backed by the seeds or not, in JSON and text alike.
            let seeds = role["seed_files"][rid].as_array().unwrap();
            let only_outside = req["source"]["lines"].is_null()
                && req["also"]
                    .as_array()
                    .map_or(true, |a| a.iter().all(|c| c["lines"].is_null()));
            assert_eq!(seeds.is_empty(), only_outside, "{id}/{rid}");
            // The citation: seed file and lines, or the mark.
            let src = &req["source"];
            let cited = format!(
                "source: {}, {}{}",
                src["doc"].as_str().unwrap(),
                src["section"].as_str().unwrap(),
                if src["lines"].is_array() {
                    "; seed "
                } else {
                    " [not in the seeds]"
                }
            );
            assert!(
                text.contains(&cited),
                "{id}/{rid}: {cited:?} not in\n{text}"
            );
            for v in variants.iter().filter(|_| req["any_of"].is_null()) {
                let ports = ports_text(&v["ports"]);
                let shown = match v["when"].as_array() {
                    Some(w) => format!("{} = {ports}", w[1].as_str().unwrap()),
                    None => format!(" {ports} "),
                };
                assert!(
                    text.contains(&shown),
                    "{id}/{rid}: {shown:?} not in\n{text}"
                );
                variants_seen += usize::from(v["when"].is_array());
            }
            let peers: Vec<&str> = req["peer"]
                .as_array()
                .map(|a| a.iter().map(|p| p.as_str().unwrap()).collect())
                .unwrap_or_else(|| vec![req["peer"].as_str().unwrap()]);
            assert!(text.contains(&peers.join(" or ")), "{id}/{rid}:\n{text}");
        }
    }
    assert!(variants_seen >= 4, "port sets: {variants_seen} variants");
    let evault = stdout(&pw(&["roles", "show", "evault-agent"]));
    for want in [
        "source: IBM-BACKUP-2024, Commercial Portal Servers; seed 000_3e6eabf04c03e319.txt, line 47",
        "source: IBM-BACKUP-2024, Configuring Ports (director host list); seed 000_3e6eabf04c03e319.txt, lines 19-22",
        "also: IBM-BACKUP-2019, US-Bundesumgebung (closing paragraph on the management port); seed 001_a875d17cbc6cb7ea.txt, line 63",
    ] {
        assert!(evault.contains(want), "{want:?} not in\n{evault}");
    }
    let mover = stdout(&pw(&["roles", "show", "veeam-data-mover"]));
    assert_eq!(
        mover
            .matches("backed only by documents outside the seeds")
            .count(),
        4,
        "{mover}"
    );
    for want in [
        "tcp 2548",
        "ports by evault_legacy_agent (port set evault-management): false = 2548 (default), true = 808",
        "on the private interfaces only",
        "applies when evault_environment = commercial",
        "applies when evault_environment = federal",
        "to evault_registration",
    ] {
        assert!(evault.contains(want), "{want:?} not in\n{evault}");
    }
    let mover = stdout(&pw(&["roles", "show", "veeam-data-mover"]));
    for want in [
        "tcp 2500-3300",
        "ports by veeam_data_range (port set veeam-data): v10 = 2500-3300 (default), legacy = 2500-5000",
        "a fallback channel when veeam_release is one of 13.0.1.2067, 13.1",
        "applies when ssh_enabled = true",
        "from backup_server",
    ] {
        assert!(mover.contains(want), "{want:?} not in\n{mover}");
    }
}

/// The keys of a `[table]` of a TOML text, with `commented`, commented-out
/// ones (`# key = ...`) too.
fn table_keys(text: &str, table: &str, commented: bool) -> Vec<String> {
    let mut keys = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        // Commented-out tables end a table too.
        let l = line.trim().trim_start_matches('#').trim();
        if l.starts_with('[') {
            inside = l == format!("[{table}]");
            continue;
        }
        if let Some((k, _)) = l.split_once(" = ") {
            let ident = k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            let is_comment = line.trim_start().starts_with('#');
            if inside && ident && (commented || !is_comment) {
                keys.push(k.to_string());
            }
        }
    }
    keys
}

#[test]
fn the_catalog_command_the_example_config_names_lists_settings_and_peers() {
    let config = std::fs::read_to_string(common::fixture("../../config/portwarden.toml")).unwrap();
    // The example config says which command lists roles, settings and
    // peer groups: run exactly that.
    let named = config
        .split('`')
        .find(|s| s.starts_with("portwarden catalog"))
        .expect("the example config names `portwarden catalog`");
    let args: Vec<&str> = named.split_whitespace().skip(1).collect();
    let out = pw(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let settings = table_keys(&config, "settings", true);
    let peers = table_keys(&config, "peers", false);
    assert!(
        settings.len() >= 7 && peers.len() >= 10,
        "{settings:?} {peers:?}"
    );
    for name in settings.iter().chain(&peers) {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(name.as_str())),
            "{name} not listed by `{named}`:\n{text}"
        );
    }
    for role in stdout(&pw(&["roles"])).lines() {
        assert!(text.contains(role), "{role} not listed");
    }
    assert!(text.contains("picks port set veeam-data: v10 = 2500-3300, legacy = 2500-5000"));
    assert!(text.contains("suggested: 10.0.0.0/8"), "{text}");

    // One section at a time.
    let only_settings = stdout(&pw(&["catalog", "settings"]));
    let only_peers = stdout(&pw(&["catalog", "peers"]));
    for s in &settings {
        assert!(only_settings.contains(&format!("  {s} = ")), "{s}");
        assert!(!only_peers.contains(&format!("  {s} = ")), "{s}");
    }
    for p in &peers {
        assert!(only_peers.lines().any(|l| l == format!("  {p}")), "{p}");
    }
    assert!(!only_settings.contains("veeam-data-mover"));
    let json: serde_json::Value =
        serde_json::from_slice(&pw(&["catalog", "peers", "--json"]).stdout).unwrap();
    let names: BTreeSet<&str> = json["peer_groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert!(peers.iter().all(|p| names.contains(p.as_str())));
    assert!(json.get("settings").is_none() && json.get("roles").is_none());
}

/// A catalog extension: a setting, a port set it picks, a peer group and a role.
const EXTENSION: &str = r#"
[settings.test_port_choice]
description = "Which ports the test service uses."
values = ["low", "high"]
default = "low"

[port_sets.test-ports]
description = "Ports of the test service."
setting = "test_port_choice"
values.low = [4100]
values.high = ["4200-4210"]

[peer_groups.test_peers]
description = "Machines that use the test service."
suggested = ["192.0.2.0/24"]

[[role]]
id = "test-extension-role"
title = "A role from a --catalog-dir"
description = "Tries an extension before it is installed."

[[role.requirement]]
id = "service"
direction = "in"
proto = "tcp"
port_set = "test-ports"
peer = "test_peers"
listen = true
purpose = "The test service."
source = { doc = "VBR-UG-13.1", section = "Ports" }
"#;

#[test]
fn catalog_dir_loads_extensions_to_try_them() {
    let dir = Scratch::new("catdir");
    dir.file("ext/test.toml", EXTENSION);
    let ext = dir.path("ext");
    let listed = stdout(&pw(&["roles", "--catalog-dir", ext]));
    assert!(listed.contains("test-extension-role"), "{listed}");
    assert!(!stdout(&pw(&["roles"])).contains("test-extension-role"));
    // After the subcommand too.
    let show = pw(&["roles", "show", "test-extension-role", "--catalog-dir", ext]);
    assert_eq!(show.status.code(), Some(0), "{}", stderr(&show));
    assert!(
        stdout(&show).contains(
            "ports by test_port_choice (port set test-ports): low = 4100 (default), high = 4200-4210"
        ),
        "{}",
        stdout(&show)
    );
    let settings = stdout(&pw(&["catalog", "settings", "--catalog-dir", ext]));
    assert!(settings.contains("test_port_choice = low | high  (default low)"));
    let peers = stdout(&pw(&["catalog", "peers", "--catalog-dir", ext]));
    assert!(peers.contains("  test_peers\n") && peers.contains("suggested: 192.0.2.0/24"));

    let cfg = dir.file(
        "pw.toml",
        "roles = [\"test-extension-role\"]\n[settings]\ntest_port_choice = \"high\"\n\
         [peers]\ntest_peers = [\"192.0.2.10\"]\n",
    );
    let cfg = cfg.to_str().unwrap();
    let ok = pw(&["check-config", "--config", cfg, "--catalog-dir", ext]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let without = pw(&["check-config", "--config", cfg]);
    assert_eq!(without.status.code(), Some(3));
    assert!(stderr(&without).contains("unknown role `test-extension-role`"));

    // A broken extension is reported with file, line and column: exit 3.
    dir.file("broken/bad.toml", "[[role]]\nid = \n");
    let broken = pw(&["roles", "--catalog-dir", dir.path("broken")]);
    assert_eq!(broken.status.code(), Some(3));
    assert!(
        stderr(&broken).contains("bad.toml:2:"),
        "{}",
        stderr(&broken)
    );
    // A directory that does not exist is a usage error (audit: 3).
    let missing = dir.path("no-such-dir");
    assert_eq!(
        pw(&["roles", "--catalog-dir", missing]).status.code(),
        Some(2)
    );
    let audit = pw(&["audit", "--role", "evault-agent", "--catalog-dir", missing]);
    assert_eq!(audit.status.code(), Some(3));
}

/// The codes listed under "Exit codes:" in `portwarden ARGS --help`.
fn help_exit_codes(args: &[&str]) -> BTreeSet<u8> {
    let mut full: Vec<&str> = args.to_vec();
    full.push("--help");
    let out = pw(&full);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    let (_, list) = text
        .split_once("\nExit codes:\n")
        .unwrap_or_else(|| panic!("no exit codes in {args:?} --help:\n{text}"));
    list.lines()
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect()
}

/// The codes README's exit code table gives for `command`.
fn readme_exit_codes(command: &str) -> BTreeSet<u8> {
    let readme = std::fs::read_to_string(common::fixture("../../README.md")).unwrap();
    let (_, table) = readme
        .split_once("| code | name (`portwarden::exit`) | meaning | commands |")
        .expect("the exit code table in README.md");
    table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .filter_map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let commands: Vec<&str> = cells[4].split(", ").collect();
            (commands.contains(&"all") || commands.contains(&command))
                .then(|| cells[1].parse().unwrap())
        })
        .collect()
}

const COMMANDS: &[&str] = &[
    "dump",
    "roles",
    "catalog",
    "check-config",
    "listeners",
    "explain",
    "exposure",
    "audit",
    "daemon",
    "status",
];

#[test]
fn every_exit_code_is_in_help_and_readme() {
    for cmd in COMMANDS {
        let help = help_exit_codes(&[cmd]);
        assert_eq!(help, readme_exit_codes(cmd), "{cmd}: --help vs README");
        assert!(help.contains(&0), "{cmd}");
    }
    assert_eq!(
        help_exit_codes(&["roles", "show"]),
        help_exit_codes(&["roles"])
    );
    assert!(stdout(&pw(&["--help"])).contains("Exit codes:"));
    // Codes the commands really give are listed: usage errors first.
    let cases: &[(&[&str], &str)] = &[
        (&["dump", "--bogus"], "dump"),
        (&["explain", "tcp/22"], "explain"),
        (&["exposure", "--tries", "0"], "exposure"),
        (&["listeners", "extra"], "listeners"),
        (&["roles", "show", "no-such-role"], "roles"),
        (&["catalog", "nothing"], "catalog"),
        (
            &["check-config", "--config", "/nonexistent/pw.toml"],
            "check-config",
        ),
        (&["check-config", "--bogus"], "check-config"),
        (&["audit", "--bogus"], "audit"),
        (&["audit", "--peer", "backup_server=10.0.0.1"], "audit"),
        (&["audit", "--config", "/nonexistent/pw.toml"], "audit"),
        (&["daemon", "--bogus"], "daemon"),
        (&["daemon", "--config", "/nonexistent/pw.toml"], "daemon"),
        (&["status", "--bogus"], "status"),
        (
            &["status", "--report", "/nonexistent/report.json"],
            "status",
        ),
    ];
    for (args, cmd) in cases {
        let out = pw(args);
        let code = out.status.code().expect("exit code") as u8;
        assert_ne!(code, 0, "{args:?}");
        assert!(
            help_exit_codes(&[cmd]).contains(&code),
            "{args:?} exits {code}, not in its --help ({})",
            stderr(&out)
        );
        assert!(
            !stderr(&out).trim().is_empty(),
            "{args:?}: nothing on stderr"
        );
    }
    assert_eq!(pw(&["audit", "--bogus"]).status.code(), Some(3));
    assert_eq!(pw(&["dump", "--bogus"]).status.code(), Some(2));
}

#[test]
fn json_is_one_document_per_line() {
    for args in [
        &["roles", "--json"][..],
        &["roles", "show", "evault-agent", "--json"],
        &["roles", "--json", "show", "evault-agent"],
        &["catalog", "--json"],
        &["catalog", "settings", "--json"],
    ] {
        let out = pw(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        one_json_line(&args, &stdout(&out));
    }
}

/// Asserts `text` is one JSON document on one line; returns it.
fn one_json_line(what: &dyn std::fmt::Debug, text: &str) -> serde_json::Value {
    assert!(text.ends_with('\n'), "{what:?}: no final newline");
    assert_eq!(text.lines().count(), 1, "{what:?}: not one line");
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{what:?}: {e}"))
}

/// Runs `prefix... portwarden args...` with stdout a pipe that is closed:
/// first closed before portwarden starts (a shell waits first), so every
/// write fails with EPIPE; then after one byte was read (`| head -c1`).
/// Both must end quietly with `code`, except that the second run may end
/// with `delivered` when its whole output fit in the pipe before it closed.
fn closed_pipe(prefix: &[&str], args: &[&str], code: i32) {
    closed_pipe_or(prefix, args, code, code)
}

/// [`closed_pipe`] for a command whose exit code, when its whole output
/// was delivered, is `delivered`.
fn closed_pipe_or(prefix: &[&str], args: &[&str], code: i32, delivered: i32) {
    let bin = common::portwarden_bin();
    let command = |wrapped: bool| {
        let mut all: Vec<&str> = prefix.to_vec();
        if wrapped {
            all.extend(["sh", "-c", "sleep 0.3; exec \"$0\" \"$@\"", bin]);
        } else {
            all.push(bin);
        }
        all.extend(args);
        let mut c = Command::new(all[0]);
        c.args(&all[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    };
    // Closed before the first write.
    let mut child = command(true).spawn().expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{args:?} on a closed pipe: {}",
        stderr(&out)
    );
    assert_eq!(stderr(&out), "", "{args:?} on a closed pipe");
    // `| head -c1`.
    let mut child = command(false).spawn().expect("spawn");
    let mut pipe = child.stdout.take().unwrap();
    let mut byte = [0u8];
    assert_eq!(pipe.read(&mut byte).unwrap(), 1, "{args:?}: no output");
    drop(pipe);
    let out = child.wait_with_output().unwrap();
    assert!(
        [Some(code), Some(delivered)].contains(&out.status.code()),
        "{args:?} | head -c1: {:?} {}",
        out.status.code(),
        stderr(&out)
    );
    assert_eq!(stderr(&out), "", "{args:?} | head -c1");
}

#[test]
fn a_closed_pipe_ends_catalog_commands_quietly_with_exit_0() {
    let dir = Scratch::new("pipe");
    let cfg = common::fixture("../../config/portwarden.toml");
    for args in [
        &["roles", "--json"][..],
        &["roles"],
        &["roles", "show", "veeam-linux-repository"],
        &["roles", "show", "veeam-linux-repository", "--json"],
        &["catalog"],
        &["catalog", "--json"],
        &[
            "check-config",
            "--offline",
            "--config",
            cfg.to_str().unwrap(),
        ],
        &["--help"],
        &["audit", "--help"],
    ] {
        closed_pipe(&[], args, 0);
    }
    drop(dir);
}

/// A TCP listener on port 22 in a namespace, killed on drop.
struct Listener(std::process::Child);

impl Listener {
    fn start(ns: &common::Netns) -> Listener {
        let script = "import socket, sys, time\n\
                      s = socket.socket(); s.bind(('0.0.0.0', 22)); s.listen()\n\
                      print('ready', flush=True); time.sleep(120)";
        let mut child = ns
            .cmd("python3")
            .args(["-c", script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut ready = [0u8; 5];
        child
            .stdout
            .as_mut()
            .unwrap()
            .read_exact(&mut ready)
            .unwrap();
        Listener(child)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A ruleset whose dump is far larger than a pipe and a write buffer
/// together (a 20,000-element set), so that `| head -c1` closes the pipe
/// while portwarden is still writing.
fn big_ruleset() -> String {
    let elems: Vec<String> = (0..20_000)
        .map(|i| format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255))
        .collect();
    format!(
        "table inet pwpipe {{\n set blocked {{ type ipv4_addr; elements = {{ {} }} }}\n \
         chain input {{ type filter hook input priority 0; policy accept;\n  \
         ip saddr @blocked drop\n  tcp dport 22 accept\n }}\n}}\n",
        elems.join(", ")
    )
}

#[test]
fn a_closed_pipe_ends_every_kernel_command_quietly_with_exit_0() {
    if !common::require_root("a_closed_pipe_ends_every_kernel_command_quietly_with_exit_0") {
        return;
    }
    let ns = common::Netns::new("pipe");
    ns.nft_text(&big_ruleset());
    ns.ip(&["addr", "add", "192.0.2.1/24", "dev", "lo"]);
    let _listener = Listener::start(&ns);
    let prefix = ["ip", "netns", "exec", ns.name.as_str()];
    let full = ns.portwarden(&["dump", "--json"]);
    assert!(
        full.stdout.len() > 200_000,
        "dump is {} bytes",
        full.stdout.len()
    );
    for args in [
        &["dump", "--json"][..],
        &["dump"],
        &["listeners"],
        &["listeners", "--json"],
        &["routes", "--json"],
        &["exposure"],
        &["exposure", "--json"],
        &["explain", "tcp/22", "--from", "192.0.2.7"],
        &["explain", "tcp/22", "--from", "192.0.2.7", "--json"],
    ] {
        closed_pipe(&prefix, args, 0);
    }
    // The audit too, though its verdict on this host is not 0: the reader
    // stopped reading, and a verdict it never saw must not read as one.
    let audit = ["audit", "--role", "veeam-data-mover", "--json"];
    let verdict = ns.portwarden(&audit).status.code().unwrap();
    assert!((1..=2).contains(&verdict), "audit exit {verdict}");
    closed_pipe_or(&prefix, &audit, 0, verdict);
    closed_pipe_or(&prefix, &audit[..3], 0, verdict);
}

#[test]
fn kernel_commands_print_one_json_line_and_audit_json_is_format_json() {
    if !common::require_root("kernel_commands_print_one_json_line_and_audit_json_is_format_json") {
        return;
    }
    let ns = common::Netns::new("json");
    ns.nft_text(&big_ruleset());
    ns.ip(&["addr", "add", "192.0.2.1/24", "dev", "lo"]);
    for args in [
        &["dump", "--json"][..],
        &["listeners", "--json"],
        &["routes", "--json"],
        &["exposure", "--json"],
        &["explain", "tcp/22", "--from", "192.0.2.7", "--json"],
    ] {
        let out = ns.portwarden(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        one_json_line(&args, &stdout(&out));
    }
    let json = ns.portwarden(&["audit", "--role", "veeam-data-mover", "--json"]);
    let format = ns.portwarden(&["audit", "--role", "veeam-data-mover", "--format", "json"]);
    assert_eq!(json.status.code(), format.status.code());
    let a = one_json_line(&"audit --json", &stdout(&json));
    let b = one_json_line(&"audit --format json", &stdout(&format));
    assert_eq!(a, b);
    assert!(!a["findings"].as_array().unwrap().is_empty());
    // Both at once is a usage error: 3 for the audit.
    let both = ns.portwarden(&[
        "audit",
        "--role",
        "veeam-data-mover",
        "--json",
        "--format",
        "text",
    ]);
    assert_eq!(both.status.code(), Some(3), "{}", stderr(&both));
}

#[test]
fn audit_uses_a_catalog_dir() {
    if !common::require_root("audit_uses_a_catalog_dir") {
        return;
    }
    let dir = Scratch::new("auditdir");
    dir.file("ext/test.toml", EXTENSION);
    let ns = common::Netns::new("catdir");
    let args = [
        "audit",
        "--role",
        "test-extension-role",
        "--peer",
        "test_peers=192.0.2.10",
        "--set",
        "test_port_choice=high",
        "--json",
        "--catalog-dir",
        dir.path("ext"),
    ];
    let out = ns.portwarden(&args);
    // Nothing listens on 4200-4210: a not-listening warning of the role.
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = one_json_line(&"audit", &stdout(&out));
    let f = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "not-listening")
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(f["role"], "test-extension-role");
    assert_eq!(f["ports"], serde_json::json!([[4200, 4210]]));
    let without = ns.portwarden(&args[..args.len() - 2]);
    assert_eq!(without.status.code(), Some(3));
    let _ = Path::new(dir.path("ext"));
}
