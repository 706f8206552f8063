//! `portwarden daemon` under test: run in a network namespace, logging into
//! a real systemd-journald that runs in a private mount namespace (tmpfs on
//! `/run/systemd` and `/run/log`), with a notify socket the test reads.
//!
//! Everything is torn down on drop: the daemon, the journald, and with them
//! the mount namespace and its tmpfs. Shared by the tests and the daemon
//! benchmark (which includes this file by path), so it stands alone.

use serde_json::Value;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running daemon with its own journald.
pub struct Daemon {
    /// The daemon process (pid = the daemon's, after the shell's `exec`).
    pub child: Child,
    /// Working directory: config, notify socket, report, journald's pid.
    pub dir: PathBuf,
    notify: std::sync::mpsc::Receiver<String>,
    /// Every notify message received so far.
    pub notified: Vec<String>,
}

/// Whether this machine can run the test (journald and the tools).
pub fn available(test: &str) -> bool {
    let have = |t: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let ok = Path::new("/lib/systemd/systemd-journald").exists()
        && have("journalctl")
        && have("unshare")
        && have("nsenter");
    if !ok {
        eprintln!("SKIPPED {test}: needs systemd-journald, journalctl, unshare and nsenter");
    }
    ok
}

impl Daemon {
    /// Starts `portwarden daemon --config CONFIG` in the network namespace
    /// named `ns` with `config` as the configuration text (its `[daemon]`
    /// report and textfile paths are added here, into the working
    /// directory).
    pub fn start(ns: &str, tag: &str, config: &str) -> Daemon {
        Self::start_with(ns, tag, config, "")
    }

    /// [`Daemon::start`] with more environment for the daemon
    /// (`NAME=VALUE ...`, e.g. `WATCHDOG_USEC=200000`).
    pub fn start_with(ns: &str, tag: &str, config: &str, env: &str) -> Daemon {
        let dir = std::env::temp_dir().join(format!("pwt-daemon-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("portwarden.toml");
        std::fs::write(&cfg, Self::with_paths(&dir, config)).unwrap();
        let sock = dir.join("notify");
        // Drained all the time, as systemd does: a full socket would block
        // the daemon's next notification.
        let socket = UnixDatagram::bind(&sock).unwrap();
        let (tx, notify) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = socket.recv(&mut buf) {
                if tx
                    .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                    .is_err()
                {
                    return;
                }
            }
        });
        let script = format!(
            r#"set -e
mount -t tmpfs tmpfs /run/systemd
mount -t tmpfs tmpfs /run/log
mkdir -p /run/systemd/journal /run/log/journal
/lib/systemd/systemd-journald </dev/null >/dev/null 2>&1 &
echo $! > {dir}/journald.pid
for _ in $(seq 100); do [ -S /run/systemd/journal/socket ] && break; sleep 0.05; done
exec nsenter --net=/run/netns/{ns} env NOTIFY_SOCKET={sock} JOURNAL_STREAM=0:0 {env} {bin} daemon --config {cfg}"#,
            dir = dir.display(),
            ns = ns,
            sock = sock.display(),
            bin = env!("CARGO_BIN_EXE_portwarden"),
            cfg = cfg.display(),
            env = env,
        );
        let child = Command::new("unshare")
            .args(["-m", "--propagation", "private", "bash", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr")).unwrap())
            .spawn()
            .expect("start the daemon");
        Daemon {
            child,
            dir,
            notify,
            notified: Vec::new(),
        }
    }

    /// The configuration text with this run's report and textfile paths.
    pub fn with_paths(dir: &Path, config: &str) -> String {
        let paths = format!(
            "[daemon]\nreport_path = \"{}\"\ntextfile_path = \"{}\"\n",
            dir.join("report.json").display(),
            dir.join("portwarden.prom").display()
        );
        if config.contains("[daemon]\n") {
            config.replacen("[daemon]\n", &paths, 1)
        } else {
            format!("{config}\n{paths}")
        }
    }

    /// Rewrites the configuration file.
    pub fn write_config(&self, text: &str) {
        std::fs::write(self.dir.join("portwarden.toml"), text).unwrap();
    }

    /// Waits up to `within` for a notify message containing `what`,
    /// keeping every message; returns it.
    pub fn wait_notify(&mut self, what: &str, within: Duration) -> Option<String> {
        let end = Instant::now() + within;
        if let Some(m) = self.notified.iter().find(|m| m.contains(what)) {
            return Some(m.clone());
        }
        while Instant::now() < end {
            if let Ok(m) = self.notify.recv_timeout(Duration::from_millis(100)) {
                self.notified.push(m.clone());
                if m.contains(what) {
                    return Some(m);
                }
            }
            if let Ok(Some(_)) = self.child.try_wait() {
                return None;
            }
        }
        None
    }

    /// `journalctl ARGS` on the daemon's journal (portwarden's entries).
    pub fn journalctl(&self, args: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--mount=/proc/{}/ns/mnt", self.child.id()))
            .args(["journalctl", "-D", "/run/log/journal", "--no-pager"])
            .args(args)
            .arg("SYSLOG_IDENTIFIER=portwarden")
            .stdin(Stdio::null());
        c
    }

    /// Every journal entry of portwarden so far, as JSON objects.
    pub fn journal(&self) -> Vec<Value> {
        let out = self
            .journalctl(&["-o", "json"])
            .output()
            .expect("journalctl");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits up to `within` for a journal entry that `pred` accepts.
    pub fn wait_entry(&self, within: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        let end = Instant::now() + within;
        loop {
            if let Some(e) = self.journal().into_iter().find(|e| pred(e)) {
                return Some(e);
            }
            if Instant::now() > end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `portwarden status` on this daemon's report: its exit code and
    /// stdout.
    pub fn status(&self) -> (Option<i32>, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_portwarden"))
            .arg("status")
            .arg("--report")
            .arg(self.dir.join("report.json"))
            .output()
            .expect("portwarden status");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// The report file, parsed.
    pub fn report(&self) -> Option<Value> {
        let text = std::fs::read_to_string(self.dir.join("report.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// What the daemon wrote on stderr (before the journal took over, and
    /// errors at start).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr")).unwrap_or_default()
    }

    /// Sends a signal to the daemon.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{sig}");
    }

    /// Waits up to `within` for the daemon to exit; its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("journald.pid")) {
            let _ = Command::new("kill").args(["-9", pid.trim()]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A string field of a journal entry.
pub fn field<'a>(e: &'a Value, name: &str) -> &'a str {
    e.get(name).and_then(Value::as_str).unwrap_or("")
}
