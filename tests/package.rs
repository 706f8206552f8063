//! The packages, as a sysadmin gets them.
//!
//! The .deb is installed with apt into a minimal Debian 12 (debootstrap)
//! booted with systemd in `systemd-nspawn --private-network`, and driven
//! there by `tests/e2e/checks.sh` under the real systemd: install, the
//! unconfigured start, a drifted ruleset and the alert in the journal,
//! `journalctl -x`, `portwarden status`, a refused reload, the installed
//! unit's exposure, an upgrade that keeps an edited conffile, and a purge.
//! Then the .rpm, installed with rpm into the same root (no RPM-based root
//! can be built from what this machine reaches): its scriptlets under the
//! real systemd, an upgrade keeping the edited configuration, an erase.
//! The container has its own network namespace: the host's ruleset and
//! network are never read or changed.
//!
//! Needs what `./scripts/package` builds (`target/debian/*.deb`,
//! `target/generate-rpm/*.rpm`), debootstrap, systemd-nspawn and rpm.
//! Without them the tests say so and skip, unless `PW_PACKAGE_TESTS=1`
//! (set by `scripts/test`), when that is a failure.

mod common;

use common::require_root;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What the container's root is made of: systemd to boot, the libraries
/// the .deb depends on (the container has no network to fetch them), nft
/// and ip for the drifted host, iptables-legacy for a legacy rule, rpm to
/// install the .rpm too.
const ROOT_PACKAGES: &str =
    "systemd,systemd-sysv,dbus,libnftnl11,libmnl0,procps,nftables,iproute2,rpm,iptables";

/// The checks `tests/e2e/checks.sh` must report as passed.
const CHECKS: &[&str] = &[
    "install",
    "installing-leaves-the-firewall-alone",
    "user-created",
    "enabled",
    "active-unconfigured",
    "says-what-to-configure",
    "no-alert-unconfigured",
    "status-unconfigured-is-unknown",
    "catalog-installed",
    "check-config",
    "reload",
    "active-configured",
    "missing-opening-entry",
    "exposed-listener-names-its-unit",
    "journal-x-explains",
    "active-with-owner-pids",
    "owner-pids-names-the-process",
    "owner-pids-removed",
    "journal-x-fields",
    "status-critical",
    "status-summary",
    "status-lists-the-finding",
    "reload-broken-keeps-running",
    "reload-broken-logged",
    "still-running-after-broken-reload",
    "active-with-legacy-rule",
    "legacy-table-named",
    "security-analyzed",
    "upgrade",
    "upgraded",
    "conffile-kept",
    "active-after-upgrade",
    "purge",
    "service-gone",
    "not-running",
    "user-gone",
    "group-gone",
    "config-gone",
    "state-gone",
    "firewall-untouched",
    "rpm-install",
    "rpm-user-created",
    "rpm-unit-known",
    "rpm-not-started",
    "rpm-config-noreplace-listed",
    "rpm-start",
    "rpm-active",
    "rpm-upgrade",
    "rpm-config-kept",
    "rpm-active-after-upgrade",
    "rpm-erase",
    "rpm-stopped",
    "rpm-user-gone",
    "rpm-binary-gone",
    "rpm-firewall-untouched",
];

/// The highest exposure `systemd-analyze security` may rate the unit.
const MAX_EXPOSURE: f64 = 1.5;

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Whether a missing prerequisite fails the test (CI) or skips it.
fn required() -> bool {
    std::env::var_os("PW_PACKAGE_TESTS").is_some_and(|v| v == "1")
}

/// Skips (or, when required, fails) the test for want of `what`.
fn unavailable(test: &str, what: &str) {
    assert!(!required(), "{test}: {what} (PW_PACKAGE_TESTS=1)");
    eprintln!("SKIPPED {test}: {what}; run ./scripts/package first");
}

/// The one file in `dir` whose name ends with `suffix`, the newest if
/// there are several.
fn newest(dir: &Path, suffix: &str) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
}

/// A directory removed when dropped, also when the test panics.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var_os("PW_KEEP_E2E").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A pristine Debian 12 root made by debootstrap once and kept under
/// `target/e2e/` (never booted itself: each run boots a copy).
fn pristine_root() -> PathBuf {
    let key: u32 = ROOT_PACKAGES
        .bytes()
        .fold(7, |h, b| h.wrapping_mul(31).wrapping_add(b.into()));
    let root = manifest().join(format!("target/e2e/bookworm-{key:08x}"));
    if root.join("usr/bin/systemctl").exists() {
        return root;
    }
    let tmp = root.with_extension("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(tmp.parent().unwrap()).unwrap();
    let out = Command::new("debootstrap")
        .args([
            "--variant=minbase",
            &format!("--include={ROOT_PACKAGES}"),
            "bookworm",
        ])
        .arg(&tmp)
        .arg("http://deb.debian.org/debian")
        .stdin(Stdio::null())
        .output()
        .expect("debootstrap");
    assert!(
        out.status.success(),
        "debootstrap failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&tmp, &root).unwrap();
    root
}

fn sh(cmd: &mut Command) {
    common::run(cmd);
}

/// Boots `root` until it powers off (at most `limit`); returns its console.
fn boot(root: &Path, binds: &[(&Path, &str, bool)], limit: Duration) -> String {
    let console = root.with_extension("console");
    let mut c = Command::new("systemd-nspawn");
    c.args([
        "-q",
        "--register=no",
        "--keep-unit",
        "--private-network",
        "-b",
        "--console=pipe",
        "-D",
    ])
    .arg(root);
    for (from, to, writable) in binds {
        let flag = if *writable { "--bind" } else { "--bind-ro" };
        c.arg(format!("{flag}={}:{to}", from.display()));
    }
    let mut child = c
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&console).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("systemd-nspawn");
    let end = Instant::now() + limit;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > end {
            // nspawn shuts the container down on SIGTERM; then make sure.
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            std::thread::sleep(Duration::from_secs(5));
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::fs::read_to_string(console).unwrap_or_default()
}

#[test]
fn the_deb_installs_alerts_upgrades_and_purges_under_real_systemd() {
    let test = "package e2e";
    if !require_root(test) {
        return;
    }
    let Some(deb) = newest(&manifest().join("target/debian"), ".deb") else {
        return unavailable(test, "no target/debian/*.deb");
    };
    let Some(rpm) = newest(&manifest().join("target/generate-rpm"), ".rpm") else {
        return unavailable(test, "no target/generate-rpm/*.rpm");
    };
    for tool in ["debootstrap", "systemd-nspawn", "dpkg-deb"] {
        if !common::have_tool(tool) {
            return unavailable(test, &format!("no {tool}"));
        }
    }
    let pristine = pristine_root();
    let run = Scratch(manifest().join(format!("target/e2e/run-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&run.0);
    let (root, pkg, out) = (run.0.join("root"), run.0.join("pkg"), run.0.join("out"));
    for d in [&pkg.join("rev1"), &pkg.join("rev2"), &out] {
        std::fs::create_dir_all(d).unwrap();
    }
    sh(Command::new("cp")
        .args(["-a", "--reflink=auto"])
        .arg(&pristine)
        .arg(&root));
    std::fs::copy(&deb, pkg.join("rev1").join(deb.file_name().unwrap())).unwrap();
    std::fs::copy(&rpm, pkg.join(rpm.file_name().unwrap())).unwrap();
    // The same package rebuilt as the next version: an upgrade.
    let unpacked = run.0.join("rev2-tree");
    sh(Command::new("dpkg-deb").arg("-R").arg(&deb).arg(&unpacked));
    let control = unpacked.join("DEBIAN/control");
    let text = std::fs::read_to_string(&control).unwrap();
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("Version: "))
        .expect("a Version")
        .to_string();
    let next = text.replace(
        &format!("Version: {version}"),
        &format!("Version: {version}+rebuilt1"),
    );
    std::fs::write(&control, next).unwrap();
    sh(Command::new("dpkg-deb")
        .args(["--root-owner-group", "-b"])
        .arg(&unpacked)
        .arg(pkg.join("rev2/portwarden-rebuilt.deb")));
    std::fs::copy(
        manifest().join("tests/e2e/checks.sh"),
        pkg.join("checks.sh"),
    )
    .unwrap();
    let units = root.join("etc/systemd/system");
    std::fs::write(
        units.join("pw-e2e.service"),
        "[Unit]\nDescription=portwarden end-to-end checks\nAfter=multi-user.target\n\
         [Service]\nType=oneshot\nExecStart=/e2e/checks.sh\n",
    )
    .unwrap();
    std::fs::create_dir_all(units.join("multi-user.target.wants")).unwrap();
    std::os::unix::fs::symlink(
        "/etc/systemd/system/pw-e2e.service",
        units.join("multi-user.target.wants/pw-e2e.service"),
    )
    .unwrap();

    let console = boot(
        &root,
        &[(&pkg, "/e2e", false), (&out, "/e2e-out", true)],
        Duration::from_secs(300),
    );
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap_or_default();
    let results = read("results");
    let context = || {
        format!(
            "results:\n{results}\nlog:\n{}\nconsole (tail):\n{}",
            read("log"),
            console
                .lines()
                .rev()
                .take(40)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        )
    };
    assert!(
        results.lines().any(|l| l == "done"),
        "the checks did not finish\n{}",
        context()
    );
    let failed: Vec<&str> = results.lines().filter(|l| l.starts_with("FAIL ")).collect();
    assert!(failed.is_empty(), "{failed:#?}\n{}", context());
    for name in CHECKS {
        assert!(
            results.lines().any(|l| l == format!("ok {name}")),
            "check {name} did not run\n{}",
            context()
        );
    }
    // The alert, with its native fields.
    let entry: serde_json::Value = read("missing.json")
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["PORTWARDEN_PORTS"] == "6162")
        .expect("the missing-opening entry of 6162 as JSON");
    for (k, v) in [
        ("PORTWARDEN_KIND", "missing-opening"),
        ("PORTWARDEN_SEVERITY", "critical"),
        ("PORTWARDEN_ROLE", "veeam-data-mover"),
        ("PORTWARDEN_PROTO", "tcp"),
        ("PORTWARDEN_PORTS", "6162"),
        ("_SYSTEMD_UNIT", "portwarden.service"),
    ] {
        assert_eq!(entry[k].as_str(), Some(v), "{k} in {entry}");
    }
    // The exposure of the unit as installed and started.
    // The installed unit rates as the repository's does offline, and the
    // documented drop-in costs what it says.
    let security = read("security.txt");
    let exposure = exposure_of(&security).unwrap_or_else(|| panic!("no exposure in:\n{security}"));
    assert_eq!(exposure, offline_exposure(&[]), "installed vs offline");
    let with_pids = read("security-owner-pids.txt");
    let dropin = manifest().join("packaging/owner-pids.conf");
    assert_eq!(
        exposure_of(&with_pids),
        Some(offline_exposure(&[&dropin])),
        "{with_pids}"
    );
    assert!(
        exposure <= MAX_EXPOSURE,
        "exposure {exposure} > {MAX_EXPOSURE}\n{security}"
    );
}

/// `→ Overall exposure level for portwarden.service: 1.1 OK 🙂` → 1.1.
fn exposure_of(analysis: &str) -> Option<f64> {
    let line = analysis
        .lines()
        .find(|l| l.contains("Overall exposure level for"))?;
    line.split(": ")
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `systemd-analyze security --offline=true` of the unit (with `dropins`
/// installed beside it in a scratch root).
fn offline_exposure(dropins: &[&Path]) -> f64 {
    let root = Scratch(std::env::temp_dir().join(format!(
        "pwt-unit-{}-{}",
        std::process::id(),
        dropins.len()
    )));
    let system = root.0.join("etc/systemd/system");
    let dir = system.join("portwarden.service.d");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        manifest().join("systemd/portwarden.service"),
        system.join("portwarden.service"),
    )
    .unwrap();
    for d in dropins {
        std::fs::copy(d, dir.join(d.file_name().unwrap())).unwrap();
    }
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(format!("--root={}", root.0.display()))
        .arg("portwarden.service")
        .output()
        .expect("systemd-analyze");
    let text = String::from_utf8_lossy(&out.stdout);
    exposure_of(&text).unwrap_or_else(|| {
        panic!(
            "no exposure in:\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The shipped unit rates at most 1.5, as its comment says; the drop-in
/// that names listeners' processes costs what its comment says.
#[test]
fn the_unit_is_hardened_and_its_figures_are_true() {
    if !common::have_tool("systemd-analyze") {
        return unavailable("unit exposure", "no systemd-analyze");
    }
    let unit = std::fs::read_to_string(manifest().join("systemd/portwarden.service")).unwrap();
    let base = offline_exposure(&[]);
    assert!(base <= MAX_EXPOSURE, "exposure {base}");
    assert!(
        unit.contains(&format!("rates this unit\n# {base:.1} on systemd")),
        "the unit's comment says another figure than {base:.1}"
    );
    let dropin = manifest().join("packaging/owner-pids.conf");
    let with_pids = offline_exposure(&[&dropin]);
    let text = std::fs::read_to_string(&dropin).unwrap();
    let said = format!("from {base:.1} to {with_pids:.1}");
    assert!(text.contains(&said), "owner-pids.conf should say {said:?}");
}

/// `rpm -qp ARGS RPM`'s output.
fn rpm_query(rpm: &Path, args: &[&str]) -> String {
    let out = common::run(Command::new("rpm").arg("-qp").args(args).arg(rpm));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The .rpm as `rpm` reads it: every file in its place, the configuration
/// `%config(noreplace)`, the scriptlets that make the user and follow
/// systemd's conventions, and the libraries it was tested with.
#[test]
fn the_rpm_carries_its_files_scriptlets_requires_and_conffile() {
    let test = "rpm contents";
    let Some(rpm) = newest(&manifest().join("target/generate-rpm"), ".rpm") else {
        return unavailable(test, "no target/generate-rpm/*.rpm");
    };
    if !common::have_tool("rpm") {
        return unavailable(test, "no rpm");
    }
    let name = rpm.file_name().unwrap().to_string_lossy().into_owned();
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        name.starts_with(&format!("portwarden-{version}-1.")) && name.ends_with(".rpm"),
        "{name}"
    );
    let files = rpm_query(&rpm, &["-l"]);
    for f in [
        "/usr/bin/portwarden",
        "/usr/lib/systemd/system/portwarden.service",
        "/usr/lib/sysusers.d/portwarden.conf",
        "/usr/lib/systemd/catalog/portwarden.catalog",
        "/etc/portwarden/portwarden.toml",
        "/usr/share/man/man8/portwarden.8",
        "/usr/share/man/man5/portwarden.toml.5",
        "/usr/share/bash-completion/completions/portwarden",
        "/usr/share/zsh/site-functions/_portwarden",
        "/usr/share/fish/vendor_completions.d/portwarden.fish",
        "/usr/share/portwarden/catalog.d/README",
        "/etc/portwarden/catalog.d/README",
        "/usr/share/doc/portwarden/examples/portwarden.toml",
        "/usr/share/doc/portwarden/examples/owner-pids.conf",
        "/usr/share/doc/portwarden/README.md",
        "/usr/share/licenses/portwarden/LICENSE-MIT",
        "/usr/share/licenses/portwarden/LICENSE-APACHE",
    ] {
        assert!(
            files.lines().any(|l| l == f),
            "{f} not in the rpm:\n{files}"
        );
    }
    let config = rpm_query(&rpm, &["-c"]);
    assert!(
        config
            .lines()
            .any(|l| l == "/etc/portwarden/portwarden.toml"),
        "{config}"
    );
    // noreplace: an edited configuration survives an upgrade.
    let flags = rpm_query(&rpm, &["--qf", "[%{FILENAMES} %{FILEFLAGS:fflags}\\n]"]);
    assert!(
        flags
            .lines()
            .any(|l| l == "/etc/portwarden/portwarden.toml cn"),
        "{flags}"
    );
    let scripts = rpm_query(&rpm, &["--scripts"]);
    for needle in [
        "postinstall scriptlet",
        "systemd-sysusers portwarden.conf",
        "systemctl --no-reload preset portwarden.service",
        "preuninstall scriptlet",
        "disable --now portwarden.service",
        "postuninstall scriptlet",
        "try-restart portwarden.service",
        "userdel portwarden",
    ] {
        assert!(
            scripts.contains(needle),
            "{needle:?} not in the scriptlets:\n{scripts}"
        );
    }
    assert!(
        !scripts.contains("nft ") && !scripts.contains("iptables"),
        "{scripts}"
    );
    let requires = rpm_query(&rpm, &["--requires"]);
    for r in ["libnftnl >= 1.2.1", "libmnl >= 1.0.4"] {
        assert!(
            requires.lines().any(|l| l.trim() == r),
            "{r} not required:\n{requires}"
        );
    }
}
