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

/// The kernel's timezone, minutes west of UTC (what `meta day` and
/// `--kerneltz` use).
fn kernel_minutes_west() -> i32 {
    #[repr(C)]
    struct Tz {
        west: libc::c_int,
        dst: libc::c_int,
    }
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut tz = Tz { west: 0, dst: 0 };
    // SAFETY: both pointers are to live structs of the layout gettimeofday
    // writes.
    let rc = unsafe { libc::gettimeofday(&mut tv, (&mut tz as *mut Tz).cast()) };
    assert_eq!(rc, 0);
    let _ = tz.dst;
    tz.west
}

fn hms(s: i64) -> String {
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of seconds since the epoch.
fn datetime(secs: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs as u64);
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .trim_end_matches('Z')
        .replace('T', " ")
}

#[test]
fn time_rules_true_now_and_false_now_agree_with_the_kernel() {
    if !ready("time_rules_true_now_and_false_now_agree_with_the_kernel") {
        return;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let west = i64::from(kernel_minutes_west());
    let day_s = now.rem_euclid(86_400);
    // Windows of the day (UTC) that hold now and that do not, neither
    // wrapping midnight.
    let yes = (
        day_s.saturating_sub(1800).max(0),
        (day_s + 1800).min(86_399),
    );
    let no = if day_s < 43_200 {
        (day_s + 3600, day_s + 7200)
    } else {
        (day_s - 7200, day_s - 3600)
    };
    let days = [
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ];
    let kday = ((now - 60 * west).div_euclid(86_400) + 4).rem_euclid(7) as usize;
    let rules = format!(
        "table inet pw_t {{
 chain c {{ type filter hook input priority 10; policy accept;
  tcp dport 6162 meta hour \"{}\"-\"{}\" drop
  tcp dport 6163 meta hour \"{}\"-\"{}\" drop
  tcp dport 6164 meta day \"{}\" drop
  tcp dport 6165 meta day \"{}\" drop
  tcp dport 6166 meta time \"{}\"-\"{}\" drop
  tcp dport 6167 meta time \"{}\"-\"{}\" drop
 }}
}}",
        hms(yes.0),
        hms(yes.1),
        hms(no.0),
        hms(no.1),
        days[kday],
        days[(kday + 3) % 7],
        datetime(now - 3600),
        datetime(now + 3600),
        datetime(now - 7200),
        datetime(now - 3600),
    );
    let topo = Topology::new("time");
    // nft takes hours and dates as local time: UTC here.
    let mut load = topo.host.cmd("nft");
    load.env("TZ", "UTC").args(["-f", "-"]);
    run_with_input(&mut load, &rules);
    let mut ports = vec![6162, 6163, 6164, 6165, 6166, 6167, 6172];
    let mut want = vec![false, true, false, true, false, true, true];
    let xt = have_tool("iptables-nft");
    if xt {
        // iptables-nft keeps -m time as an xt match (UTC unless --kerneltz).
        let ipt = |args: &str| {
            let mut c = topo.host.cmd("iptables-nft");
            c.args(args.split_whitespace());
            common::run(&mut c);
        };
        let utc_iso = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
            [(now.div_euclid(86_400) + 4).rem_euclid(7) as usize];
        let local_s = (now - 60 * west).rem_euclid(86_400);
        let local_yes = (
            local_s.saturating_sub(1800).max(0),
            (local_s + 1800).min(86_399),
        );
        ipt(&format!(
            "-A INPUT -p tcp --dport 6168 -m time --timestart {} --timestop {} -j DROP",
            hms(yes.0),
            hms(yes.1)
        ));
        ipt(&format!(
            "-A INPUT -p tcp --dport 6169 -m time --timestart {} --timestop {} -j DROP",
            hms(no.0),
            hms(no.1)
        ));
        ipt(&format!(
            "-A INPUT -p tcp --dport 6170 -m time --weekdays {utc_iso} -j DROP"
        ));
        ipt(&format!(
            "-A INPUT -p tcp --dport 6171 -m time --kerneltz --timestart {} --timestop {} -j DROP",
            hms(local_yes.0),
            hms(local_yes.1)
        ));
        ports.extend([6168, 6169, 6170, 6171]);
        want.extend([false, true, false, false]);
        let dump = topo.host.dump_json().to_string();
        assert!(
            dump.contains(r#""name":"time""#),
            "-m time is not an xt match: {dump}"
        );
    } else {
        eprintln!("SKIPPED xt time part: needs iptables-nft");
    }
    let queries: Vec<Value> = ports
        .iter()
        .map(|p| json!({"proto": "tcp", "port": p, "from": PRIVATE.peer4, "iif": PRIVATE.host_if, "sport": 40000}))
        .collect();
    let answers = topo.host.explain_batch(&queries);
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
    for ((port, ans), want) in ports.iter().zip(&answers).zip(&want) {
        let kernel = seen.iter().any(|s| s.dport == *port);
        assert_eq!(kernel, *want, "kernel, port {port}");
        let v = if *want { "accept" } else { "drop" };
        assert_eq!(verdict(ans), v, "explain, port {port}: {ans}");
        if *port != 6172 {
            let text = ans.to_string();
            assert!(text.contains("time matches are evaluated at"), "{text}");
        }
    }
    // --at: the same ruleset at a moment inside the "no" window.
    let at = now - day_s + (no.0 + no.1) / 2;
    let at_text = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(at as u64),
    )
    .to_string();
    let out = topo.host.portwarden(&[
        "explain",
        "tcp/6163",
        "--from",
        PRIVATE.peer4,
        "--iif",
        PRIVATE.host_if,
        "--at",
        &at_text,
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let a: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdict(&a), "drop", "at {at_text}: {a}");
    // The exposure map marks what the time decides.
    let out = topo.host.portwarden(&["exposure", "--json"]);
    assert!(out.status.success());
    let x: Value = serde_json::from_slice(&out.stdout).unwrap();
    let marked = |port: u64| {
        x["openings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["iif"] == PRIVATE.host_if && o["proto"] == "tcp" && o["family"] == "ipv4")
            .filter(|o| {
                o["ports"][0].as_u64() <= Some(port) && Some(port) <= o["ports"][1].as_u64()
            })
            .map(|o| o["time_dependent"].as_bool().unwrap_or(false))
            .collect::<Vec<_>>()
    };
    assert_eq!(marked(6163), vec![true], "{x}");
    assert_eq!(marked(6172), vec![false], "{x}");
    assert!(marked(6162).is_empty(), "{x}");
}

/// Runs `cmd` with `input` on its stdin; panics unless it succeeds.
fn run_with_input(cmd: &mut std::process::Command, input: &str) {
    use std::io::Write;
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{input}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
