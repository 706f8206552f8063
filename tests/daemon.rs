//! `portwarden daemon` against the real kernel and a real journald: the
//! daemon runs in the test topology's host namespace, changes are made with
//! `nft` there, and what the daemon says is read back from the journal, the
//! notify socket and its report file.

mod common;

use common::daemon::{self, field, Daemon};
use common::{require_root, run, Netns, Topology};
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

const MISSING: &str = "52ac6f21f73a475994c3a829c70d580d";
const RESOLVED: &str = "bf2a4470791c4ab8b38770b0769e639a";
const RESYNC: &str = "63f51947dcad46bbb18e48df2105a9d1";
const RELOAD: &str = "3cd5ad96b7f64eb6a4a3905de931f3ba";
const SUMMARY: &str = "ade134ae86df4073b08c8c5a8cd957e2";
const NOT_CONFIGURED: &str = "def923fe04c54ed39822cbdbc12189ee";

/// The Data Mover role, its backup server routed through pw-priv, and
/// nothing about listeners (the test starts none).
const CONFIG: &str = r#"
roles = ["veeam-data-mover"]
private_interfaces = ["pw-priv"]
[peers]
backup_server = ["10.0.0.10"]
[severity]
not-listening = "ignore"
"#;

/// The daemon host with `portwarden daemon` started on it with `config`
/// and ready; `None` (the test is skipped, saying why) without root or
/// journald.
fn started(test: &str, tag: &str, config: &str) -> Option<(Topology, Daemon)> {
    if !require_root(test) || !daemon::available(test) {
        return None;
    }
    let t = common::daemon_host(tag);
    let mut d = Daemon::start(&t.host.name, tag, config);
    ready(&mut d);
    Some((t, d))
}

fn ready(d: &mut Daemon) {
    assert!(
        d.wait_notify("READY=1", Duration::from_secs(30)).is_some(),
        "no READY=1; stderr: {}",
        d.stderr()
    );
}

/// Runs `nft ARGS` in the namespace; returns its pid (`ip netns exec`
/// execs nft in the same process) and when it started.
fn nft(ns: &Netns, args: &[&str]) -> (u32, SystemTime) {
    let started = SystemTime::now();
    let child = ns
        .cmd("nft")
        .args(args)
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("nft");
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "nft {args:?} failed");
    (pid, started)
}

/// `__REALTIME_TIMESTAMP` (µs since the epoch): when journald received it.
fn received(e: &Value) -> SystemTime {
    let us: u64 = field(e, "__REALTIME_TIMESTAMP").parse().unwrap();
    SystemTime::UNIX_EPOCH + Duration::from_micros(us)
}

/// The handle of the first rule of `inet filter input` whose text has `needle`.
fn handle_of(ns: &Netns, needle: &str) -> String {
    let out = run(ns
        .cmd("nft")
        .args(["-a", "list", "chain", "inet", "filter", "input"]));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no rule with {needle:?} in\n{text}"));
    line.rsplit("# handle ").next().unwrap().trim().to_string()
}

/// The generation of the namespace's ruleset now.
fn generation(ns: &Netns) -> u64 {
    ns.dump_json()["generation"].as_u64().unwrap()
}

/// Waits until the daemon's report is at generation `gen`.
fn report_at(d: &mut Daemon, gen: u64, within: Duration) -> Value {
    let end = Instant::now() + within;
    loop {
        if let Some(r) = d.report() {
            if r["generation"].as_u64() == Some(gen) {
                return r;
            }
        }
        if Instant::now() > end {
            let said: Vec<String> = d
                .journal()
                .iter()
                .map(|e| field(e, "MESSAGE").to_string())
                .collect();
            panic!(
                "the report never reached generation {gen}: {:?}\njournal: {said:#?}\nstderr: {}\nexited: {:?}",
                d.report().map(|r| r["generation"].clone()),
                d.stderr(),
                d.child.try_wait()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A one-shot `audit --json` with the same configuration.
fn one_shot(ns: &Netns, d: &Daemon) -> Value {
    let out = ns.portwarden(&[
        "audit",
        "--format",
        "json",
        "--config",
        d.dir.join("portwarden.toml").to_str().unwrap(),
    ]);
    serde_json::from_slice(&out.stdout).expect("audit --json")
}

#[test]
fn changes_reach_the_journal_with_their_fields_and_who_made_them() {
    let Some((t, mut d)) = started("daemon journal", "dj", CONFIG) else {
        return;
    };
    // READY comes after the first audit: its report is there, and correct.
    let first = d.report().expect("a report at READY");
    assert_eq!(first["findings"], one_shot(&t.host, &d)["findings"]);
    assert!(first["audited_at"].is_string());
    let summary = d
        .wait_entry(Duration::from_secs(5), |e| {
            field(e, "MESSAGE_ID") == SUMMARY
        })
        .expect("a summary entry at start");
    assert!(
        field(&summary, "MESSAGE").contains("0 critical"),
        "{summary}"
    );

    // Block 6162: a missing-opening entry with every field, naming this nft.
    let (pid, started) = nft(
        &t.host,
        &[
            "insert", "rule", "inet", "filter", "input", "tcp", "dport", "6162", "drop",
        ],
    );
    let e = d
        .wait_entry(Duration::from_secs(10), |e| {
            field(e, "MESSAGE_ID") == MISSING
        })
        .unwrap_or_else(|| panic!("no missing-opening entry: {:?}", d.journal()));
    let latency = received(&e).duration_since(started).unwrap();
    assert!(latency <= Duration::from_secs(1), "{latency:?}");
    assert_eq!(field(&e, "PRIORITY"), "3", "critical is logged at err");
    assert_eq!(field(&e, "PORTWARDEN_KIND"), "missing-opening");
    assert_eq!(field(&e, "PORTWARDEN_SEVERITY"), "critical");
    assert_eq!(field(&e, "PORTWARDEN_ROLE"), "veeam-data-mover");
    assert_eq!(field(&e, "PORTWARDEN_REQUIREMENT"), "transport");
    assert_eq!(field(&e, "PORTWARDEN_PROTO"), "tcp");
    assert_eq!(field(&e, "PORTWARDEN_PORTS"), "6162");
    assert_eq!(field(&e, "PORTWARDEN_PEERS"), "10.0.0.10/32");
    let handle = handle_of(&t.host, "tcp dport 6162 drop");
    assert_eq!(
        field(&e, "PORTWARDEN_RULE"),
        format!("inet filter input {handle}")
    );
    assert!(field(&e, "PORTWARDEN_FIX").starts_with("nft "), "{e}");
    assert_eq!(field(&e, "PORTWARDEN_CHANGED_BY_PID"), pid.to_string());
    assert_eq!(field(&e, "PORTWARDEN_CHANGED_BY_COMM"), "nft");
    assert_eq!(
        field(&e, "PORTWARDEN_GENERATION"),
        generation(&t.host).to_string()
    );
    let id = field(&e, "PORTWARDEN_FINDING_ID").to_string();
    assert_eq!(id.len(), 12);

    // Restore: the resolved entry, for the same finding, at notice.
    nft(
        &t.host,
        &[
            "delete", "rule", "inet", "filter", "input", "handle", &handle,
        ],
    );
    let r = d
        .wait_entry(Duration::from_secs(10), |e| {
            field(e, "MESSAGE_ID") == RESOLVED && field(e, "PORTWARDEN_FINDING_ID") == id
        })
        .expect("a resolved entry");
    assert_eq!(field(&r, "PRIORITY"), "5");
    // Logged once each.
    let count = |mid: &str| {
        d.journal()
            .iter()
            .filter(|e| field(e, "MESSAGE_ID") == mid && field(e, "PORTWARDEN_FINDING_ID") == id)
            .count()
    };
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!((count(MISSING), count(RESOLVED)), (1, 1));

    // The backup server in the blocklist: critical, naming the blocklist rule.
    nft(
        &t.host,
        &[
            "add",
            "element",
            "inet",
            "filter",
            "blocklist",
            "{ 10.0.0.0/28 }",
        ],
    );
    let handle = handle_of(&t.host, "@blocklist drop");
    let e = d
        .wait_entry(Duration::from_secs(10), |e| {
            field(e, "MESSAGE_ID") == MISSING
                && field(e, "PORTWARDEN_RULE") == format!("inet filter input {handle}")
        })
        .unwrap_or_else(|| panic!("no blocklist entry: {:?}", d.journal()));
    assert_eq!(field(&e, "PORTWARDEN_SEVERITY"), "critical");
    assert_eq!(field(&e, "PORTWARDEN_PEERS"), "10.0.0.10/32");

    // SIGTERM: exit 0, within a second.
    d.signal("TERM");
    assert_eq!(d.wait_exit(Duration::from_secs(1)), Some(0));
}

#[test]
fn a_burst_of_transactions_ends_in_the_one_shot_state() {
    let Some((t, mut d)) = started("daemon burst", "db", CONFIG) else {
        return;
    };
    // 500 transactions: elements in and out of the blocklist, rules
    // inserted and deleted, the backup server blocked then let in again.
    let mut script = String::new();
    for i in 0..500u32 {
        let cmd = match i % 5 {
            0 => format!(
                "nft add element inet filter blocklist {{ 198.51.{}.{} }}",
                i / 250,
                i % 250
            ),
            1 => "nft insert rule inet filter input tcp dport 2600-2700 drop".to_string(),
            2 => format!(
                "nft delete element inet filter blocklist {{ 198.51.{}.{} }}",
                (i - 2) / 250,
                (i - 2) % 250
            ),
            3 => "nft add element inet filter blocklist { 10.0.0.10 }".to_string(),
            _ => "nft delete element inet filter blocklist { 10.0.0.10 }".to_string(),
        };
        script.push_str(&cmd);
        script.push('\n');
    }
    run(t.host.cmd("bash").args(["-c", &script]));
    let gen = generation(&t.host);
    let report = report_at(&mut d, gen, Duration::from_secs(30));
    let expect = one_shot(&t.host, &d);
    assert_eq!(expect["generation"].as_u64(), Some(gen));
    assert_eq!(report["findings"], expect["findings"]);
    // 100 inserted 2600-2700 drops: that range is missing.
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["ports"] == serde_json::json!([[2600, 2700]])),
        "{report}"
    );
}

#[test]
fn lost_events_end_in_a_resync_and_the_right_state() {
    // A receive buffer of 4 KiB: the kernel rounds it up, but a
    // transaction of thousands of element events cannot fit.
    let Some((t, mut d)) = started(
        "daemon enobufs",
        "de",
        &format!("{CONFIG}\n[daemon]\nevent_buffer_kib = 4\n"),
    ) else {
        return;
    };
    // The daemon is stopped while the kernel sends: the events pile up in
    // its socket until the buffer overflows.
    d.signal("STOP");
    let mut batch = String::from("add element inet filter blocklist { ");
    for i in 0..4000u32 {
        batch.push_str(&format!("172.{}.{}.0/24, ", 16 + i / 250, i % 250));
    }
    batch.push_str("10.0.0.10 }\n");
    t.host.nft_text(&batch);
    t.host
        .nft_text("add element inet filter blocklist { 192.0.2.0/24 }\n");
    d.signal("CONT");
    let e = d
        .wait_entry(Duration::from_secs(30), |e| {
            field(e, "MESSAGE_ID") == RESYNC
        })
        .unwrap_or_else(|| panic!("no resync entry: {:?}", d.journal()));
    assert_eq!(field(&e, "PRIORITY"), "4", "logged at warning");
    let gen = generation(&t.host);
    let report = report_at(&mut d, gen, Duration::from_secs(30));
    assert_eq!(report["findings"], one_shot(&t.host, &d)["findings"]);
    let prom = std::fs::read_to_string(d.dir.join("portwarden.prom")).unwrap();
    assert!(prom.contains("portwarden_resyncs_total 1"), "{prom}");
}

#[test]
fn sighup_with_a_broken_config_keeps_the_old_one() {
    let Some((t, mut d)) = started("daemon reload", "dh", CONFIG) else {
        return;
    };
    d.write_config("roles = [\"veeam-data-mover\"\n[peers\n");
    d.notified.clear();
    d.signal("HUP");
    assert!(d
        .wait_notify("RELOADING=1", Duration::from_secs(10))
        .is_some());
    let status = d
        .wait_notify("READY=1", Duration::from_secs(10))
        .expect("READY=1 after the reload");
    assert!(status.contains("reload refused"), "{status}");
    let e = d
        .wait_entry(Duration::from_secs(5), |e| field(e, "MESSAGE_ID") == RELOAD)
        .expect("a reload entry");
    assert_eq!(field(&e, "PRIORITY"), "3");
    assert!(
        field(&e, "MESSAGE").contains("portwarden.toml:"),
        "file, line and column: {e}"
    );
    // Still running, still on the old configuration: a change is audited.
    nft(
        &t.host,
        &[
            "insert", "rule", "inet", "filter", "input", "tcp", "dport", "22", "drop",
        ],
    );
    d.wait_entry(Duration::from_secs(10), |e| {
        field(e, "MESSAGE_ID") == MISSING && field(e, "PORTWARDEN_PORTS") == "22"
    })
    .expect("the old configuration still audits");
    // `status` reads the report: criticals, exit 2.
    let (code, text) = d.status();
    assert_eq!(code, Some(2));
    assert!(
        text.starts_with("1 critical, 0 warning; generation "),
        "{text}"
    );
    assert!(text.contains("by nft["), "{text}");
    d.signal("TERM");
    assert_eq!(d.wait_exit(Duration::from_secs(1)), Some(0));
}

/// The configuration the package installs selects no role: the service is
/// up, says once what to configure, alerts on nothing although the host has
/// openings no role wants, and `status` answers UNKNOWN; a reload with
/// roles starts the audit.
#[test]
fn the_packaged_default_starts_quietly_and_waits_for_roles() {
    let packaged =
        std::fs::read_to_string(common::fixture("../../packaging/portwarden.toml")).unwrap();
    let Some((t, mut d)) = started("daemon unconfigured", "du", &packaged) else {
        return;
    };
    let status = d.wait_notify("READY=1", Duration::from_secs(1)).unwrap();
    assert!(status.contains("not configured"), "{status}");
    // A ruleset change is no news to a daemon that audits nothing.
    nft(
        &t.host,
        &[
            "insert", "rule", "inet", "filter", "input", "tcp", "dport", "4444", "accept",
        ],
    );
    std::thread::sleep(Duration::from_millis(500));
    let entries = d.journal();
    let notes: Vec<&Value> = entries
        .iter()
        .filter(|e| field(e, "MESSAGE_ID") == NOT_CONFIGURED)
        .collect();
    assert_eq!(notes.len(), 1, "{entries:#?}");
    assert_eq!(field(notes[0], "PRIORITY"), "4");
    assert!(
        field(notes[0], "MESSAGE").contains("portwarden catalog"),
        "{:?}",
        notes[0]
    );
    let others: Vec<&Value> = entries
        .iter()
        .filter(|e| e.get("MESSAGE_ID").is_some() && field(e, "MESSAGE_ID") != NOT_CONFIGURED)
        .collect();
    assert!(
        others.is_empty(),
        "no alert before roles are set: {others:#?}"
    );
    let (code, text) = d.status();
    assert_eq!(code, Some(3));
    assert!(
        text.starts_with("UNKNOWN: portwarden is not configured"),
        "{text}"
    );
    // Roles set, then a reload: the first audit, its summary and READY.
    d.write_config(&Daemon::with_paths(&d.dir, CONFIG));
    d.notified.clear();
    d.signal("HUP");
    d.wait_entry(Duration::from_secs(10), |e| {
        field(e, "MESSAGE_ID") == SUMMARY
    })
    .expect("the first audit after the reload");
    assert!(d.wait_notify("READY=1", Duration::from_secs(5)).is_some());
    let (code, text) = d.status();
    assert_ne!(code, Some(3), "{text}");
    d.signal("TERM");
    assert_eq!(d.wait_exit(Duration::from_secs(1)), Some(0));
}

#[test]
fn the_journal_catalog_compiles_and_explains_every_entry() {
    if !require_root("journal catalog") || !common::have_tool("journalctl") {
        return;
    }
    let root = std::env::temp_dir().join(format!("pwt-catalog-{}", std::process::id()));
    let dir = root.join("usr/lib/systemd/catalog");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/portwarden.catalog"),
        dir.join("portwarden.catalog"),
    )
    .unwrap();
    let root_arg = format!("--root={}", root.display());
    run(Command::new("journalctl").args([&root_arg, "--update-catalog"]));
    let listed = run(Command::new("journalctl").args([&root_arg, "--list-catalog"]));
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    let _ = std::fs::remove_dir_all(&root);
    for id in portwarden::render::journal::ALL {
        assert!(listed.contains(id), "{id} missing from:\n{listed}");
    }
    assert!(
        listed.contains("A required inbound connection is refused"),
        "{listed}"
    );
}

#[test]
fn the_metrics_textfile_passes_promtool() {
    if !require_root("daemon metrics") || !daemon::available("daemon metrics") {
        return;
    }
    if !common::have_tool("promtool") {
        eprintln!("SKIPPED daemon metrics: needs promtool (Debian package prometheus)");
        return;
    }
    let t = common::daemon_host("dm");
    // A finding, so that the findings metric has a sample.
    t.host
        .nft_text("insert rule inet filter input tcp dport 6162 drop\n");
    let mut d = Daemon::start(&t.host.name, "metrics", CONFIG);
    ready(&mut d);
    let prom_path = d.dir.join("portwarden.prom");
    let prom = std::fs::read_to_string(&prom_path).expect("the textfile");
    for name in [
        "portwarden_findings{kind=\"missing-opening\",severity=\"critical\",role=\"veeam-data-mover\"} 1",
        "portwarden_audit_duration_seconds ",
        "portwarden_last_audit_timestamp_seconds ",
        "portwarden_ruleset_generation ",
        "portwarden_resyncs_total 0",
        "portwarden_lost_events_total 0",
        "portwarden_up 1",
    ] {
        assert!(prom.contains(name), "{name} not in\n{prom}");
    }
    let out = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&prom_path).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn deny_list_changes_that_touch_no_peer_are_audited_together_later() {
    let Some((t, mut d)) = started(
        "daemon deny list",
        "dl",
        &format!("{CONFIG}\n[daemon]\ndeny_list_audit_s = 3\n"),
    ) else {
        return;
    };
    let before = d.report().unwrap()["generation"].as_u64().unwrap();
    for a in ["198.51.100.7", "198.51.100.8"] {
        nft(
            &t.host,
            &[
                "add",
                "element",
                "inet",
                "filter",
                "blocklist",
                &format!("{{ {a} }}"),
            ],
        );
    }
    let gen = generation(&t.host);
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        d.report().unwrap()["generation"].as_u64(),
        Some(before),
        "audited at once though no bound peer was touched"
    );
    let report = report_at(&mut d, gen, Duration::from_secs(10));
    assert_eq!(report["findings"], one_shot(&t.host, &d)["findings"]);
    // The backup server's own address is audited at once.
    nft(
        &t.host,
        &[
            "add",
            "element",
            "inet",
            "filter",
            "blocklist",
            "{ 10.0.0.10 }",
        ],
    );
    let gen = generation(&t.host);
    report_at(&mut d, gen, Duration::from_secs(2));
}

/// The daemon host with a port-knock trap: whoever touches 2222 is added
/// to `banned` by the packet path (the kernel announces nothing), and
/// `banned` is dropped before the backup server's accept. The backup
/// server is the peer's private address. Starts the daemon with `daemon`
/// added to the configuration's `[daemon]` table.
fn trap_host(test: &str, tag: &str, daemon_cfg: &str, env: &str) -> Option<(Topology, Daemon)> {
    if !require_root(test) || !daemon::available(test) {
        return None;
    }
    let t = common::daemon_host(tag);
    t.host.nft_text(
        "add set inet filter banned { type ipv4_addr; flags dynamic, timeout; timeout 1h; }\n\
         insert rule inet filter input ip saddr @banned drop\n\
         insert rule inet filter input tcp dport 2222 add @banned { ip saddr } drop\n\
         add rule inet filter input ip saddr 10.99.0.2 tcp dport { 22, 6160, 6162, 2500-3300 } accept\n",
    );
    let config = CONFIG.replace("10.0.0.10", "10.99.0.2");
    let mut d = Daemon::start_with(
        &t.host.name,
        tag,
        &format!("{config}\n[daemon]\n{daemon_cfg}\n"),
        env,
    );
    ready(&mut d);
    let before = d.report().unwrap();
    assert!(
        !before["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "missing-opening"),
        "{before}"
    );
    Some((t, d))
}

/// The backup server walks into the trap; the critical entry that must
/// follow, naming the `banned` drop.
fn spring_trap(t: &Topology, d: &Daemon) -> Value {
    let _ = t
        .peer
        .cmd("bash")
        .args([
            "-c",
            "timeout 1 bash -c 'echo > /dev/tcp/10.99.0.1/2222' 2>/dev/null",
        ])
        .status();
    let handle = handle_of(&t.host, "ip saddr @banned drop");
    let e = d
        .wait_entry(Duration::from_secs(10), |e| {
            field(e, "MESSAGE_ID") == MISSING
                && field(e, "PORTWARDEN_RULE") == format!("inet filter input {handle}")
        })
        .unwrap_or_else(|| panic!("no entry after the set filled: {:?}", d.journal()));
    assert_eq!(field(&e, "PORTWARDEN_PEERS"), "10.99.0.2/32");
    e
}

#[test]
fn sets_the_packet_path_fills_are_read_again_on_their_timer() {
    let Some((t, mut d)) = trap_host(
        "daemon dynamic sets",
        "dd",
        "dynamic_sets_interval_s = 1",
        "WATCHDOG_USEC=400000",
    ) else {
        return;
    };
    // The watchdog is fed at half its interval.
    assert!(d
        .wait_notify("WATCHDOG=1", Duration::from_secs(2))
        .is_some());
    spring_trap(&t, &d);
}

#[test]
fn the_periodic_verification_finds_what_no_event_said() {
    // The set timer is off (an hour); only the comparison with a fresh
    // read can see the element the packet path added.
    let Some((t, d)) = trap_host(
        "daemon verify",
        "dv",
        "dynamic_sets_interval_s = 3600\nverify_interval_s = 1",
        "",
    ) else {
        return;
    };
    spring_trap(&t, &d);
    let e = d
        .wait_entry(Duration::from_secs(5), |e| {
            field(e, "MESSAGE_ID") == portwarden::render::journal::VERIFY_MISMATCH
        })
        .expect("a verify-mismatch entry");
    assert_eq!(field(&e, "PRIORITY"), "3", "logged as an error");
}

#[test]
fn route_changes_are_followed_as_the_kernel_announces_them() {
    let Some((t, d)) = started("daemon routes", "dr", CONFIG) else {
        return;
    };
    // 6162 refused: a missing opening for the backup server, routed
    // through pw-priv.
    nft(
        &t.host,
        &[
            "insert", "rule", "inet", "filter", "input", "tcp", "dport", "6162", "drop",
        ],
    );
    let e = d
        .wait_entry(Duration::from_secs(10), |e| {
            field(e, "MESSAGE_ID") == MISSING
        })
        .expect("a missing-opening entry");
    let id = field(&e, "PORTWARDEN_FINDING_ID").to_string();
    // The route to the backup server's network goes away: no interface
    // leads to it, so nothing is missing there any more (a note says so).
    t.host.ip(&["route", "del", "10.0.0.0/24"]);
    d.wait_entry(Duration::from_secs(10), |e| {
        field(e, "MESSAGE_ID") == RESOLVED && field(e, "PORTWARDEN_FINDING_ID") == id
    })
    .unwrap_or_else(|| {
        panic!(
            "no resolved entry after the route change: {:?}",
            d.journal()
        )
    });
    let report = d.report().unwrap();
    assert!(
        report["notes"].to_string().contains("10.0.0.10"),
        "{report}"
    );
}

/// An exposed listener's journal entry names the systemd unit of the
/// cgroup its socket was made in (PORTWARDEN_UNIT), found by the daemon in
/// the cgroup2 tree it sees.
#[test]
fn an_exposed_listener_entry_names_its_unit() {
    let test = "an_exposed_listener_entry_names_its_unit";
    if !require_root(test) || !daemon::available(test) {
        return;
    }
    let Some(mount) = common::ScratchCgroups::mount() else {
        eprintln!("SKIPPED {test}: no cgroup2 mount (a cgroup v1 only host)");
        return;
    };
    let t = common::daemon_host("du");
    // Port 8080 open to everyone: a listener there is exposed.
    run(t.host.cmd("nft").args([
        "insert", "rule", "inet", "filter", "input", "tcp", "dport", "8080", "accept",
    ]));
    let scratch = common::ScratchCgroups::new(&mount, "daemon", &["system.slice/webui.service"]);
    let dir = scratch.root.join("system.slice/webui.service");
    let script = "import socket, time\n\
                  s = socket.socket(); s.bind(('0.0.0.0', 8080)); s.listen()\n\
                  print('ready', flush=True); time.sleep(120)";
    // Killed on drop, before the scratch cgroups go (declared after them).
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Killed(
        Command::new("sh")
            .args(["-c", "echo $$ > \"$0/cgroup.procs\" && exec \"$@\""])
            .arg(&dir)
            .args(["ip", "netns", "exec", &t.host.name, "python3", "-c", script])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3"),
    );
    let mut line = [0u8; 5];
    std::io::Read::read_exact(child.0.stdout.as_mut().unwrap(), &mut line).unwrap();

    let mut d = Daemon::start(&t.host.name, "du", CONFIG);
    ready(&mut d);
    let e = d
        .wait_entry(Duration::from_secs(10), |e| {
            field(e, "PORTWARDEN_KIND") == "exposed-listener"
                && field(e, "PORTWARDEN_PORTS") == "8080"
        })
        .unwrap_or_else(|| panic!("no exposed-listener entry: {:?}", d.journal()));
    assert_eq!(field(&e, "PORTWARDEN_UNIT"), "webui.service", "{e}");
    assert!(
        field(&e, "MESSAGE").starts_with("python3 listens on tcp 8080"),
        "{e}"
    );
    // The report carries the socket's unit in the evidence.
    let report = d.report().expect("a report");
    let f = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "exposed-listener")
        .expect("the finding in the report");
    assert!(
        f["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|ev| ev["unit"] == "webui.service"),
        "{f}"
    );
    drop(d);
    drop(child);
    drop(scratch);
}
