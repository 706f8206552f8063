//! Benchmark: the exposure map of the large ruleset (20,000 rules and a
//! 200,000-element interval blocklist), computed from a snapshot already in
//! memory.
//!
//! The benchmark process joins a throwaway network namespace holding the
//! ruleset and reads the snapshot over netlink itself, so what it holds is
//! the snapshot, as the daemon would; then, alternately, the time to read it
//! again (the reference, measured in the same run) and the time to build the
//! evaluator and compute the exposure map are measured. The host is
//! described by hand: loopback and four Ethernet interfaces with IPv4 and
//! IPv6 addresses (`eth0`-`eth3`, which the ruleset's `iifname` rules name).
//!
//! Prints wall times, the ratio exposure / snapshot read, and the process's
//! peak RSS (snapshot included). Targets: at most 1 s and 256 MiB. Needs
//! root. `cargo bench --bench exposure`; `PW_BENCH_RUNS`, `PW_BENCH_RULES`,
//! `PW_BENCH_ELEMENTS` as for the dump benchmark.

use portwarden::eval::Evaluator;
use portwarden::host::{Interface, Routes, ARPHRD_LOOPBACK};
use portwarden::nft::{read_snapshot, ReadOptions};
use std::os::fd::AsRawFd;
use std::time::Instant;

#[path = "common/harness.rs"]
mod harness;
#[path = "common/ruleset.rs"]
mod ruleset;
use harness::{env_usize, median, Scratch};
use ruleset::ruleset;

fn peak_rss_mib() -> f64 {
    // SAFETY: zeroed rusage is a valid out-parameter for getrusage.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    ru.ru_maxrss as f64 / 1024.0
}

fn host() -> Routes {
    let mut lo = Interface::new("lo", 1, &["127.0.0.1/8", "::1/128"]);
    lo.iftype = ARPHRD_LOOPBACK;
    let mut interfaces = vec![lo];
    for i in 0..4u32 {
        let v4 = format!("192.0.{}.1/24", 2 + i);
        let v6 = format!("2001:db8:{i}::1/64");
        interfaces.push(Interface::new(&format!("eth{i}"), 2 + i, &[&v4, &v6]));
    }
    Routes {
        interfaces,
        routes: Vec::new(),
        sockets: None,
        queues: None,
    }
}

fn main() {
    if !harness::start("exposure") {
        return;
    }
    let rules = env_usize("PW_BENCH_RULES", 20_000);
    let elements = env_usize("PW_BENCH_ELEMENTS", 200_000);
    let runs = env_usize("PW_BENCH_RUNS", 3).max(1);
    let mut scratch = Scratch::new("pwbenchx");
    let file = scratch.path(".nft");
    std::fs::write(&file, ruleset(rules, elements)).expect("write ruleset");
    scratch.load(&file);
    let ns = &scratch.ns;

    // Join the namespace (this process is single-threaded here).
    let nsfile = std::fs::File::open(format!("/var/run/netns/{ns}")).expect("open netns");
    // SAFETY: setns on a namespace file we opened; no other threads exist yet.
    let rc = unsafe { libc::setns(nsfile.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
    let read = || {
        let t = Instant::now();
        let snap = read_snapshot(&ReadOptions::default()).expect("read snapshot");
        (t.elapsed().as_secs_f64(), snap)
    };
    let (_, snap) = read();
    let rss_snapshot = peak_rss_mib();

    let (mut reads, mut maps) = (Vec::new(), Vec::new());
    let mut openings = 0;
    for _ in 0..runs {
        reads.push(read().0);
        let t = Instant::now();
        let ev = Evaluator::new(&snap, host());
        let x = ev.exposure();
        maps.push(t.elapsed().as_secs_f64());
        openings = x.openings.len();
        assert!(x.notes.is_empty(), "{:?}", x.notes);
    }
    let (r, m) = (median(reads), median(maps));
    let rss = peak_rss_mib();
    println!("exposure benchmark: {rules} rules, {elements}-element interval blocklist, 4 interfaces, median of {runs} runs");
    println!("snapshot read over netlink: {r:.3} s  (reference)");
    println!("evaluator build + exposure map:         {m:.3} s  ({openings} openings)");
    println!("ratio exposure / snapshot read: {:.3}", m / r);
    println!("peak RSS: {rss:.1} MiB (after loading the snapshot: {rss_snapshot:.1} MiB)");
    println!(
        "targets: exposure <= 1 s: {}; peak RSS <= 256 MiB: {}",
        if m <= 1.0 { "met" } else { "NOT met" },
        if rss <= 256.0 { "met" } else { "NOT met" }
    );
}
