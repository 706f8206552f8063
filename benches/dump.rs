//! Benchmark: `portwarden dump --json` against `nft -j list ruleset` on the
//! same large ruleset (20,000 rules and a 200,000-element interval set), in
//! one throwaway network namespace, measured in the same run.
//!
//! Prints wall time, user and system CPU and peak RSS of each, and the ratio
//! ours / nft. Needs root. Run with `cargo bench --bench dump` (it builds the
//! release binary); `PW_BENCH_RUNS=N` sets the number of alternating runs
//! (default 3), `PW_BENCH_ELEMENTS` / `PW_BENCH_RULES` the sizes.

use std::process::{Command, Stdio};
use std::time::Instant;

#[path = "common/ruleset.rs"]
mod ruleset;
use ruleset::ruleset;

struct Usage {
    wall: f64,
    user: f64,
    sys: f64,
    max_rss_kib: i64,
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `args` inside `ns` with stdout discarded, returning its resource use.
fn measure(ns: &str, args: &[&str]) -> Usage {
    let start = Instant::now();
    // Reaped with wait4 below (for its rusage), not Child::wait.
    #[allow(clippy::zombie_processes)]
    let child = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid out-parameter; wait4 reaps our own child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut ru) };
    let wall = start.elapsed().as_secs_f64();
    assert_eq!(pid, child.id() as i32, "wait4");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{args:?} failed"
    );
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Usage {
        wall,
        user: secs(ru.ru_utime),
        sys: secs(ru.ru_stime),
        max_rss_kib: ru.ru_maxrss,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` would run us too.
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED dump benchmark: needs root (network namespaces)");
        return;
    }
    let rules = env_usize("PW_BENCH_RULES", 20_000);
    let elements = env_usize("PW_BENCH_ELEMENTS", 200_000);
    let runs = env_usize("PW_BENCH_RUNS", 3).max(1);
    let ns = format!("pwbench-{}", std::process::id());
    let file = std::env::temp_dir().join(format!("{ns}.nft"));
    std::fs::write(&file, ruleset(rules, elements)).expect("write ruleset");
    let ok = Command::new("ip")
        .args(["netns", "add", &ns])
        .status()
        .map(|s| s.success());
    assert_eq!(ok.ok(), Some(true), "ip netns add");
    // Delete the namespace however we leave.
    struct Cleanup(String, std::path::PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
            let _ = std::fs::remove_file(&self.1);
        }
    }
    let _cleanup = Cleanup(ns.clone(), file.clone());

    eprintln!("loading {rules} rules and a {elements}-element interval set...");
    let t = Instant::now();
    let st = Command::new("ip")
        .args(["netns", "exec", &ns, "nft", "-f"])
        .arg(&file)
        .status()
        .expect("nft");
    assert!(st.success(), "loading the benchmark ruleset failed");
    eprintln!("loaded in {:.1} s", t.elapsed().as_secs_f64());

    let ours = env!("CARGO_BIN_EXE_portwarden");
    let (mut pw, mut nft) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        // Alternate so both see the same machine state.
        nft.push(measure(&ns, &["nft", "-j", "list", "ruleset"]));
        pw.push(measure(&ns, &[ours, "dump", "--json"]));
    }
    let stat = |v: &[Usage]| {
        (
            median(v.iter().map(|u| u.wall).collect()),
            median(v.iter().map(|u| u.user).collect()),
            median(v.iter().map(|u| u.sys).collect()),
            v.iter().map(|u| u.max_rss_kib).max().unwrap_or(0) as f64 / 1024.0,
        )
    };
    let (p, n) = (stat(&pw), stat(&nft));
    println!(
        "dump benchmark: {rules} rules, {elements}-element interval set, median of {runs} runs"
    );
    println!(
        "{:<28} {:>9} {:>9} {:>9} {:>12}",
        "", "wall s", "user s", "sys s", "peak RSS MiB"
    );
    println!(
        "{:<28} {:>9.2} {:>9.2} {:>9.2} {:>12.1}",
        "portwarden dump --json", p.0, p.1, p.2, p.3
    );
    println!(
        "{:<28} {:>9.2} {:>9.2} {:>9.2} {:>12.1}",
        "nft -j list ruleset", n.0, n.1, n.2, n.3
    );
    println!(
        "ratio portwarden/nft: wall {:.2}, user {:.2}, sys {:.2}, peak RSS {:.2}",
        p.0 / n.0,
        p.1 / n.1.max(1e-9),
        p.2 / n.2.max(1e-9),
        p.3 / n.3
    );
    println!(
        "targets: wall ratio <= 1.0: {}; peak RSS <= 64 MiB: {}",
        if p.0 / n.0 <= 1.0 { "met" } else { "NOT met" },
        if p.3 <= 64.0 { "met" } else { "NOT met" }
    );
}
