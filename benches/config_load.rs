//! Benchmark: loading the host configuration scales linearly with its size.
//!
//! Writes configurations whose `backup_server` peer list has N and 10N
//! entries (one per line) and loads each (`HostConfig::load` against the
//! built-in catalog, the result dropped), in a fresh process each time, so
//! that each load's peak RSS is its own. Prints the load times (median of
//! `PW_BENCH_RUNS`, default 3) and their ratio (linear: about 10; the old
//! quadratic loader: about 100). Then, one load each, files just under the
//! size limit (`config::MAX_FILE_SIZE`): a valid peer list, one whose every
//! entry is a bad prefix, one that ends in a syntax error; and a file of
//! `PW_BENCH_MB` MB (default 50), over the limit: the load time and the
//! process's peak RSS against the file size. Targets: 100,000 entries in
//! under 1 s; a 50 MB file handled in seconds, peak RSS at most 10 times
//! the file size.
//!
//! `cargo bench --bench config_load`; N via `PW_BENCH_PEERS` (default
//! 10,000). Needs no root.

use portwarden::catalog::Catalog;
use portwarden::config::{HostConfig, MAX_FILE_SIZE};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Set in a child: the file it loads.
const CHILD: &str = "PW_CONFIG_LOAD_CHILD";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Peak RSS of this process so far, in bytes.
fn peak_rss() -> u64 {
    // SAFETY: zeroed rusage is a valid out-parameter for getrusage.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    ru.ru_maxrss as u64 * 1024
}

/// In a child: loads the file, prints `SECONDS PEAK_BEFORE PEAK_AFTER OUTCOME`.
fn child(path: &Path) {
    let cat = Catalog::builtin().expect("built-in catalog");
    let before = peak_rss();
    let t = Instant::now();
    let outcome = match HostConfig::load(path, &cat) {
        Ok((cfg, w)) => format!(
            "valid ({} prefixes, {} warnings)",
            cfg.peers.values().map(Vec::len).sum::<usize>(),
            w.len()
        ),
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default().to_string();
            let last = text.lines().last().unwrap_or_default().to_string();
            let n = text.lines().count();
            let first = first.rsplit_once(": ").map_or(first.as_str(), |x| x.1);
            format!("refused, {n} lines: \"{first}\" ... \"{last}\"")
        }
    };
    let secs = t.elapsed().as_secs_f64();
    println!("{secs} {before} {} {outcome}", peak_rss());
}

struct Load {
    secs: f64,
    before: u64,
    peak: u64,
    outcome: String,
}

fn load_in_child(path: &Path) -> Load {
    let out = Command::new(std::env::current_exe().expect("own path"))
        .env(CHILD, path)
        .output()
        .expect("run child");
    assert!(
        out.status.success(),
        "child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let mut parts = text.trim().splitn(4, ' ');
    let mut next = || parts.next().expect("child output").to_string();
    Load {
        secs: next().parse().expect("seconds"),
        before: next().parse().expect("bytes"),
        peak: next().parse().expect("bytes"),
        outcome: next(),
    }
}

/// The `i`-th peer prefix, distinct for every `i` below 2^24.
fn prefix(i: usize) -> String {
    format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)
}

/// Writes a configuration with a peer list of `n` entries, each made by
/// `entry`, followed by `tail`; returns its size.
fn write_config(path: &Path, n: usize, entry: impl Fn(usize) -> String, tail: &str) -> u64 {
    let f = std::fs::File::create(path).expect("create");
    let mut w = std::io::BufWriter::new(f);
    writeln!(
        w,
        "roles = [\"veeam-linux-repository\"]\n[peers]\nbackup_server = ["
    )
    .unwrap();
    for i in 0..n {
        writeln!(w, "  \"{}\",", entry(i)).unwrap();
    }
    writeln!(w, "]\n{tail}").unwrap();
    drop(w);
    std::fs::metadata(path).expect("size").len()
}

/// Entries for a file of about `mb` MB (an entry line is 14 to 17 bytes).
fn entries_for(mb: usize) -> usize {
    mb * 1_000_000 / 16
}

fn mib(b: u64) -> f64 {
    b as f64 / (1 << 20) as f64
}

fn main() {
    if let Some(path) = std::env::var_os(CHILD) {
        return child(Path::new(&path));
    }
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let n = env_usize("PW_BENCH_PEERS", 10_000);
    let runs = env_usize("PW_BENCH_RUNS", 3).max(1);
    let mb = env_usize("PW_BENCH_MB", 50);
    let dir: PathBuf = std::env::temp_dir().join(format!("pw-bench-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    struct Cleanup(PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _cleanup = Cleanup(dir.clone());

    println!(
        "config_load: peer lists of {n} and {} entries, median of {runs}",
        10 * n
    );
    let mut times = Vec::new();
    for count in [n, 10 * n] {
        let path = dir.join(format!("peers-{count}.toml"));
        let size = write_config(&path, count, prefix, "");
        let loads: Vec<Load> = (0..runs).map(|_| load_in_child(&path)).collect();
        let secs = median(loads.iter().map(|l| l.secs).collect());
        println!(
            "  {count:>9} entries  {:>6.2} MiB  load {secs:.4} s  peak RSS {:.1} MiB  {}",
            mib(size),
            mib(loads[0].peak),
            loads[0].outcome
        );
        times.push(secs);
    }
    println!(
        "  ratio 10N / N: {:.1} (linear: 10 or a little less, for the fixed costs; quadratic: 100); target: {} entries under 1 s",
        times[1] / times[0],
        10 * n
    );

    // Files just under the size limit, then one of PW_BENCH_MB MB.
    let under = (MAX_FILE_SIZE as usize - 4096) / 20;
    println!(
        "large files (the limit is {} MiB; one load each):",
        MAX_FILE_SIZE >> 20
    );
    let bad = |i: usize| format!("10.{}.{}.x{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
    type Entry<'a> = &'a dyn Fn(usize) -> String;
    let cases: [(&str, usize, Entry, &str); 4] = [
        ("valid peer list", under, &prefix, ""),
        ("every entry a bad prefix", under, &bad, ""),
        ("syntax error at the end", under, &prefix, "oops = = 1"),
        ("valid, over the limit", entries_for(mb), &prefix, ""),
    ];
    for (what, count, entry, tail) in cases {
        let path = dir.join("big.toml");
        let size = write_config(&path, count, entry, tail);
        let l = load_in_child(&path);
        println!(
            "  {what:<25} {:>6.2} MiB  load {:.3} s  peak RSS {:.1} MiB = {:.2} x file size \
             (before loading {:.1} MiB; the load's own {:.2} x)\n      {}",
            mib(size),
            l.secs,
            mib(l.peak),
            l.peak as f64 / size as f64,
            mib(l.before),
            l.peak.saturating_sub(l.before) as f64 / size as f64,
            l.outcome
        );
        let _ = std::fs::remove_file(&path);
    }
}
