//! Benchmark: `portwarden explain --batch` answering 200,000 probes against a
//! 1,000-rule ruleset (interval sets, a verdict map, jumps, ct state,
//! iifname, source prefixes, port ranges, IPv4 and IPv6) loaded in one
//! throwaway network namespace.
//!
//! Prints the rate in queries per second, and in the same run two
//! references: `cat` of the same query file (the floor of reading the
//! input) and `portwarden dump --json` (reading the ruleset, which explain
//! does once). `explain` with an empty input measures the fixed start-up
//! cost (snapshot, routes, compiling the rules), so the steady rate is shown
//! too. No timed assertions. Needs root. Run with `cargo bench --bench
//! explain`; `PW_BENCH_RUNS=N` sets the number of alternating runs (default
//! 3), `PW_BENCH_QUERIES` the number of queries.

use std::fmt::Write as _;
use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};

#[path = "common/harness.rs"]
mod harness;
use harness::{env_usize, median, Scratch};

/// Wall time of `args` inside `ns`, stdin from `input`, stdout discarded.
fn measure(ns: &str, args: &[&str], input: &Path) -> f64 {
    let stdin = Stdio::from(File::open(input).expect("open input"));
    let u = harness::measure(ns, args, stdin, Stdio::null(), None).expect("no timeout");
    assert_eq!(u.code, 0, "{args:?} failed");
    u.wall
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// About 1,000 rules: a dispatching input chain, one chain per interface,
/// small jumped-to chains, and a raw prerouting chain.
fn ruleset() -> (String, usize) {
    let mut s = String::from("flush ruleset\n");
    let mut rules = 0;
    s += "table inet bench {\n";
    s += "  set blk4 { type ipv4_addr; flags interval; elements = {";
    for i in 0..500u32 {
        let _ = write!(
            s,
            "{} 100.{}.{}.0/24",
            if i > 0 { "," } else { "" },
            64 + i / 256,
            i % 256
        );
    }
    s += " } }\n";
    s += "  set allow4 { type ipv4_addr; flags interval; elements = { 10.10.0.0/16, 10.20.0.0/16, 192.0.2.128/25, 172.16.5.0/24 } }\n";
    s += "  set veeam { type inet_service; flags interval; elements = { 2500-3300, 6160, 6162, 10005-10006 } }\n";
    s += "  set svc { type ipv4_addr . inet_service; flags interval; elements = { 10.30.0.0/16 . 8086-8087, 10.31.0.0/16 . 2546 } }\n";
    let zones = 4;
    let per_zone = 230;
    let subs = 20;
    for j in 0..subs {
        let _ = writeln!(s, "  chain sub{j} {{");
        for k in 0..5 {
            let _ = writeln!(
                s,
                "    ip saddr 10.{j}.{k}.0/24 tcp dport {} accept",
                20000 + j * 10 + k
            );
            rules += 1;
        }
        s += "  }\n";
    }
    for z in 0..zones {
        let _ = writeln!(s, "  chain z{z} {{");
        for i in 0..per_zone {
            let p = 1000 + (z * per_zone + i) * 7 % 60000;
            let _ = match i % 8 {
                0 => writeln!(s, "    ip saddr 10.{z}.{}.0/24 tcp dport {p} accept", i % 256),
                1 => writeln!(s, "    iifname \"eth{z}\" udp dport {p}-{} counter accept", p + 5),
                2 => writeln!(
                    s,
                    "    ip6 saddr fd00:{z}:{i:x}::/64 tcp dport {{ {p}, {}, {} }} ct state new accept",
                    p + 1,
                    p + 2
                ),
                3 => writeln!(s, "    tcp dport {p} jump sub{}", i % subs),
                4 => writeln!(s, "    meta l4proto tcp th dport {p} ip saddr != 192.168.0.0/16 drop"),
                5 => writeln!(s, "    ip saddr 172.16.{}.0/24 udp dport {p} reject", i % 256),
                6 => writeln!(s, "    tcp dport {p}-{} ct state new,untracked counter accept", p + 3),
                _ => writeln!(s, "    ip6 saddr 2001:db8:{i:x}::/48 udp dport {p} drop"),
            };
            rules += 1;
        }
        s += "  }\n";
    }
    s += "  chain input {\n    type filter hook input priority filter; policy drop;\n";
    for r in [
        "ct state established,related accept",
        "ct state invalid drop",
        "iif \"lo\" accept",
        "ip saddr @blk4 counter drop",
        "ip saddr . tcp dport @svc accept",
        "iifname vmap { \"eth0\" : jump z0, \"eth1\" : jump z1, \"eth2\" : jump z2, \"eth3\" : jump z3 }",
        "tcp dport @veeam ip saddr @allow4 accept",
        "meta l4proto { tcp, udp } th dport 22 limit rate 10/minute accept",
        "reject with icmpx admin-prohibited",
    ] {
        let _ = writeln!(s, "    {r}");
        rules += 1;
    }
    s += "  }\n}\n";
    s += "table ip raw {\n  chain pre {\n    type filter hook prerouting priority raw; policy accept;\n";
    for i in 0..40 {
        let _ = writeln!(s, "    ip saddr 198.18.{i}.0/24 udp dport 53 notrack");
        rules += 1;
    }
    s += "    fib saddr . iif oif missing drop\n  }\n}\n";
    rules += 1;
    (s, rules)
}

fn queries(n: usize) -> String {
    let mut r = Rng(0x5eed_1234_abcd_0001);
    let mut s = String::with_capacity(n * 96);
    for i in 0..n {
        let proto = if r.below(3) == 0 { "udp" } else { "tcp" };
        let port = match r.below(4) {
            0 => [22, 2500, 2546, 3300, 6160, 6162, 8086, 10005][r.below(8) as usize],
            1 => 1000 + r.below(60000) as u16,
            _ => 1000 + (r.below(920) as u16) * 7,
        };
        let z = r.below(4);
        let (from, v6) = match r.below(6) {
            0 => (
                format!("10.{}.{}.{}", r.below(32), r.below(256), 1 + r.below(254)),
                false,
            ),
            1 => (
                format!("172.16.{}.{}", r.below(256), 1 + r.below(254)),
                false,
            ),
            2 => (format!("192.0.2.{}", 2 + r.below(250)), false),
            3 => (format!("100.{}.{}.7", 64 + r.below(3), r.below(256)), false),
            4 => (
                format!("fd00:{z}:{:x}::{:x}", r.below(230), 1 + r.below(999)),
                true,
            ),
            _ => (
                format!("2001:db8:{:x}::{:x}", r.below(230), 1 + r.below(999)),
                true,
            ),
        };
        let _ = write!(
            s,
            "{{\"proto\":\"{proto}\",\"port\":{port},\"from\":\"{from}\",\"sport\":{}",
            32768 + (i % 28000)
        );
        // Three in four name the interface; the rest take the route's.
        if r.below(4) != 0 {
            let _ = write!(s, ",\"iif\":\"eth{z}\"");
            if r.below(2) == 0 {
                let to = if v6 {
                    format!("fd00::{}", z + 1)
                } else {
                    format!("10.250.{z}.1")
                };
                let _ = write!(s, ",\"to\":\"{to}\"");
            }
        }
        s += "}\n";
    }
    s
}

fn main() {
    if !harness::start("explain") {
        return;
    }
    let n = env_usize("PW_BENCH_QUERIES", 200_000);
    let runs = env_usize("PW_BENCH_RUNS", 3).max(1);
    let mut scratch = Scratch::new("pwbench-ex");
    let ns = scratch.ns.clone();
    let dir = scratch.path(".d");
    std::fs::create_dir_all(&dir).expect("temp dir");

    let ip = |args: &str| {
        let st = Command::new("ip")
            .args(["-n", &ns])
            .args(args.split_whitespace())
            .status()
            .expect("ip");
        assert!(st.success(), "ip {args}");
    };
    for z in 0..4 {
        // veth pairs (the dummy driver is not always built).
        ip(&format!("link add eth{z} type veth peer name peer{z}"));
        ip(&format!("link set peer{z} up"));
        ip(&format!("addr add 10.250.{z}.1/24 dev eth{z}"));
        ip(&format!("addr add fd00::{}/64 dev eth{z} nodad", z + 1));
        ip(&format!("link set eth{z} up"));
    }
    ip("route add 10.0.0.0/8 dev eth1");
    ip("route add 172.16.0.0/12 dev eth2");
    ip("route add default dev eth0");
    ip("-6 route add fd00::/16 dev eth3");
    ip("-6 route add default dev eth0");

    let (text, rules) = ruleset();
    let rs = dir.join("ruleset.nft");
    std::fs::write(&rs, text).expect("write ruleset");
    scratch.load(&rs);
    let qfile = dir.join("queries.jsonl");
    std::fs::write(&qfile, queries(n)).expect("write queries");
    let empty = dir.join("empty");
    std::fs::write(&empty, "").expect("write empty");

    let ours = env!("CARGO_BIN_EXE_portwarden");
    // One checked run first: every line answered, no errors.
    let out = Command::new("ip")
        .args(["netns", "exec", &ns, ours, "explain", "--batch"])
        .stdin(File::open(&qfile).unwrap())
        .output()
        .expect("explain --batch");
    assert!(out.status.success(), "explain --batch failed");
    let lines = out.stdout.split(|b| *b == b'\n').filter(|l| !l.is_empty());
    let (mut answered, mut accepted, mut errors) = (0, 0, 0);
    for l in lines {
        answered += 1;
        if l.starts_with(b"{\"error\"") {
            errors += 1;
        } else if l.starts_with(b"{\"verdict\":\"accept\"") {
            accepted += 1;
        }
    }
    assert_eq!(answered, n, "one answer per query");
    assert_eq!(errors, 0, "no query rejected");

    let (mut ex, mut start, mut cat, mut dump) = (vec![], vec![], vec![], vec![]);
    for _ in 0..runs {
        // Alternate so all see the same machine state.
        cat.push(measure(&ns, &["cat"], &qfile));
        dump.push(measure(&ns, &[ours, "dump", "--json"], &empty));
        start.push(measure(&ns, &[ours, "explain", "--batch"], &empty));
        ex.push(measure(&ns, &[ours, "explain", "--batch"], &qfile));
    }
    let (ex, start, cat, dump) = (median(ex), median(start), median(cat), median(dump));
    println!(
        "explain benchmark: {rules} rules, {n} queries ({accepted} accepted), median of {runs} runs"
    );
    println!("{:<44} {:>9}", "", "wall s");
    println!(
        "{:<44} {:>9.3}",
        "portwarden explain --batch (all queries)", ex
    );
    println!(
        "{:<44} {:>9.3}",
        "portwarden explain --batch (empty input)", start
    );
    println!("{:<44} {:>9.3}", "cat of the query file", cat);
    println!("{:<44} {:>9.3}", "portwarden dump --json", dump);
    println!(
        "rate: {:.0} queries/s overall, {:.0} queries/s after start-up",
        n as f64 / ex,
        n as f64 / (ex - start).max(1e-9)
    );
    println!(
        "ratios: explain/cat {:.1}, explain/dump {:.1}",
        ex / cat,
        ex / dump
    );
    println!(
        "target >= 100000 queries/s overall: {}",
        if n as f64 / ex >= 100_000.0 {
            "met"
        } else {
            "NOT met"
        }
    );
}
