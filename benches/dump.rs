//! Benchmark: `portwarden dump --json` against `nft -j list ruleset` on the
//! same large ruleset (20,000 rules and a 200,000-element interval set), in
//! one throwaway network namespace, measured in the same run.
//!
//! Prints wall time, user and system CPU and peak RSS of each, and the ratio
//! ours / nft. Needs root. Run with `cargo bench --bench dump` (it builds the
//! release binary); `PW_BENCH_RUNS=N` sets the number of alternating runs
//! (default 3), `PW_BENCH_ELEMENTS` / `PW_BENCH_RULES` the sizes.

use std::process::Stdio;

#[path = "common/harness.rs"]
mod harness;
#[path = "common/ruleset.rs"]
mod ruleset;
use harness::{env_usize, median, Scratch, Usage};
use ruleset::ruleset;

/// Runs `args` inside `ns` with stdout discarded; it must succeed.
fn measure(ns: &str, args: &[&str]) -> Usage {
    let u = harness::measure(ns, args, Stdio::null(), Stdio::null(), None).expect("no timeout");
    assert_eq!(u.code, 0, "{args:?} failed");
    u
}

fn main() {
    if !harness::start("dump") {
        return;
    }
    let rules = env_usize("PW_BENCH_RULES", 20_000);
    let elements = env_usize("PW_BENCH_ELEMENTS", 200_000);
    let runs = env_usize("PW_BENCH_RUNS", 3).max(1);
    let mut scratch = Scratch::new("pwbench");
    let file = scratch.path(".nft");
    std::fs::write(&file, ruleset(rules, elements)).expect("write ruleset");
    eprintln!("loading {rules} rules and a {elements}-element interval set...");
    scratch.load(&file);
    let ns = scratch.ns.clone();

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
