//! What every benchmark needs: sizes from the environment, medians, a
//! throwaway network namespace that is removed however the benchmark ends
//! (Ctrl-C included), and a child's wall time and resource use (wait4).

#![allow(dead_code)] // each benchmark uses its part

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Whether the benchmark can run (root); says why not otherwise. Also makes
/// SIGINT/SIGTERM unwind (through [`Scratch`]'s cleanup) instead of killing.
pub fn start(name: &str) -> bool {
    // `cargo test --benches` passes --test; listing passes --list.
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return false;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED {name} benchmark: needs root (network namespaces)");
        return false;
    }
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    true
}

/// Panics (unwinding through the cleanup guards) after Ctrl-C.
pub fn check_interrupted() {
    if INTERRUPTED.load(Ordering::SeqCst) {
        panic!("interrupted");
    }
}

/// A size from the environment, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// With `PW_BENCH_HOLD=1`, says the namespace is ready and waits until
/// the file it names is removed, so that the command under test can be
/// profiled by hand (`ip netns exec NS perf record ...`) in the same setup.
pub fn hold(ns: &str) {
    if std::env::var("PW_BENCH_HOLD").as_deref() != Ok("1") {
        return;
    }
    let flag = std::env::temp_dir().join(format!("{ns}.hold"));
    std::fs::write(&flag, "").expect("hold flag");
    eprintln!("holding namespace {ns}; remove {} to go on", flag.display());
    while flag.exists() {
        check_interrupted();
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The median (upper median for an even count) of a non-empty list.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Runs `ip ARGS`, which must succeed.
pub fn ip(args: &[&str]) {
    let ok = Command::new("ip").args(args).status().map(|s| s.success());
    assert_eq!(ok.ok(), Some(true), "ip {args:?}");
}

/// A throwaway namespace, further namespaces, files or directories, and
/// child processes, all removed on drop.
pub struct Scratch {
    /// The namespace's name.
    pub ns: String,
    extra_ns: Vec<String>,
    paths: Vec<PathBuf>,
    children: Vec<Child>,
}

impl Scratch {
    /// Creates namespace `PREFIX-PID` with loopback up.
    pub fn new(prefix: &str) -> Scratch {
        let s = Scratch {
            ns: format!("{prefix}-{}", std::process::id()),
            extra_ns: Vec::new(),
            paths: Vec::new(),
            children: Vec::new(),
        };
        ip(&["netns", "add", &s.ns]);
        ip(&["-n", &s.ns, "link", "set", "lo", "up"]);
        s
    }

    /// Creates one more namespace, removed with this one.
    pub fn add_ns(&mut self, name: &str) {
        ip(&["netns", "add", name]);
        self.extra_ns.push(name.to_string());
    }

    /// A path in the temporary directory, removed on drop.
    pub fn path(&mut self, suffix: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("{}{suffix}", self.ns));
        self.paths.push(p.clone());
        p
    }

    /// A child process killed on drop.
    pub fn keep(&mut self, child: Child) {
        self.children.push(child);
    }

    /// Loads an `nft -f` file into the namespace.
    pub fn load(&self, file: &std::path::Path) {
        let t = Instant::now();
        let st = Command::new("ip")
            .args(["netns", "exec", &self.ns, "nft", "-f"])
            .arg(file)
            .status()
            .expect("nft");
        check_interrupted();
        assert!(st.success(), "loading the benchmark ruleset failed");
        eprintln!("loaded in {:.1} s", t.elapsed().as_secs_f64());
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in self.extra_ns.iter().chain([&self.ns]) {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        for p in &self.paths {
            let _ = std::fs::remove_file(p);
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

/// One run of one command.
pub struct Usage {
    pub wall: f64,
    pub user: f64,
    pub sys: f64,
    pub max_rss_kib: i64,
    pub code: i32,
}

/// Runs `args` inside `ns` with the given stdin and stdout, returning its
/// resource use, or `None` when it did not finish within `timeout` (it is
/// then killed).
pub fn measure(
    ns: &str,
    args: &[&str],
    stdin: Stdio,
    stdout: Stdio,
    timeout: Option<Duration>,
) -> Option<Usage> {
    measure_err(ns, args, stdin, stdout, Stdio::inherit(), timeout)
}

/// [`measure`], with the command's stderr to `stderr`.
pub fn measure_err(
    ns: &str,
    args: &[&str],
    stdin: Stdio,
    stdout: Stdio,
    stderr: Stdio,
    timeout: Option<Duration>,
) -> Option<Usage> {
    check_interrupted();
    let start = Instant::now();
    // `ip netns exec` execs the command itself, so the child's rusage is the
    // command's. Reaped with wait4 below (for its rusage), not Child::wait.
    #[allow(clippy::zombie_processes)]
    let child = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .stdin(stdin)
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .expect("spawn");
    let pid = child.id() as i32;
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid out-parameter.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: wait4 on our own child, without blocking.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
        if r == pid {
            break;
        }
        assert_eq!(r, 0, "wait4");
        let late = timeout.is_some_and(|t| start.elapsed() > t);
        if late || INTERRUPTED.load(Ordering::SeqCst) {
            // SAFETY: our own, not yet reaped child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::wait4(pid, &mut status, 0, &mut ru);
            }
            check_interrupted();
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let wall = start.elapsed().as_secs_f64();
    assert!(libc::WIFEXITED(status), "{args:?} was killed");
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some(Usage {
        wall,
        user: secs(ru.ru_utime),
        sys: secs(ru.ru_stime),
        max_rss_kib: ru.ru_maxrss,
        code: libc::WEXITSTATUS(status),
    })
}
