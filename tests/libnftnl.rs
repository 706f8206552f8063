//! A libnftnl release portwarden's message validator was not checked against
//! is refused before any message is parsed: one clear line, exit 78, from
//! the commands and from the daemon (docs/libnftnl.md).
//!
//! The unchecked release is made from the machine's own libnftnl, copied
//! under another libtool file name (`libnftnl.so.11.9.0`, which no checked
//! release has) and loaded through `LD_LIBRARY_PATH`, as the dynamic loader
//! would load a newer distribution's library.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A directory holding `libnftnl.so.11` -> `libnftnl.so.11.9.0`, a copy of
/// the library this test binary runs with.
fn unchecked_library(tag: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("portwarden-libnftnl-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let system = std::fs::canonicalize(loaded_libnftnl()).expect("the loaded libnftnl");
    std::fs::copy(&system, dir.join("libnftnl.so.11.9.0")).unwrap();
    std::os::unix::fs::symlink("libnftnl.so.11.9.0", dir.join("libnftnl.so.11")).unwrap();
    dir
}

/// Where the portwarden binary's libnftnl.so.11 is found (from `ldd`).
fn loaded_libnftnl() -> PathBuf {
    let out = Command::new("ldd")
        .arg(common::portwarden_bin())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.contains("libnftnl.so"))
        .unwrap_or_else(|| panic!("portwarden is not linked with libnftnl:\n{text}"));
    let path = line
        .split("=>")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("{line}"));
    PathBuf::from(path)
}

fn run(lib: &Path, args: &[&str]) -> Output {
    Command::new(common::portwarden_bin())
        .args(args)
        .env("LD_LIBRARY_PATH", lib)
        .env_remove("JOURNAL_STREAM")
        .output()
        .unwrap()
}

fn assert_refusal(text: &str) {
    assert!(!text.contains("panicked"), "{text}");
    assert!(!text.contains("kernel ABI is broken"), "{text}");
    for part in [
        "libnftnl.so.11.9.0",
        "not a version portwarden was checked against",
        "1.2.1 to 1.2.9",
        "docs/libnftnl.md",
    ] {
        assert!(text.contains(part), "{part:?} missing from: {text}");
    }
}

#[test]
fn commands_refuse_an_unchecked_libnftnl_with_exit_78() {
    let lib = unchecked_library("cmd");
    for args in [
        &["dump"][..],
        &["exposure"],
        &["explain", "tcp/22", "--from", "192.0.2.7"],
    ] {
        let out = run(&lib, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert_refusal(&stderr);
    }
    // The same binary with the machine's own library reads on.
    let out = Command::new(common::portwarden_bin())
        .args(["dump", "--json"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(78), "{out:?}");
    let _ = std::fs::remove_dir_all(&lib);
}

#[test]
fn the_daemon_logs_the_refusal_and_exits_78() {
    let lib = unchecked_library("daemon");
    let config = lib.join("portwarden.toml");
    std::fs::write(&config, "roles = [\"veeam-linux-repository\"]\n").unwrap();
    let out = run(&lib, &["daemon", "--config", config.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("ERROR"), "logged as an error: {stderr}");
    assert_refusal(&stderr);
    let _ = std::fs::remove_dir_all(&lib);
}

/// The check reads no `/proc` (the unit runs with `ProtectProc=invisible`)
/// and needs no privilege beyond CAP_NET_ADMIN: `dump` as nobody with only
/// that capability, in a mount namespace without `/proc`, parses a ruleset.
#[test]
fn the_check_needs_neither_proc_nor_root() {
    if !common::require_root("the_check_needs_neither_proc_nor_root") {
        return;
    }
    let ns = common::Netns::new("libck");
    ns.nft_text(
        "table inet t {\n chain c { type filter hook input priority 0; tcp dport 22 accept; }\n}\n",
    );
    let script = format!(
        "umount -l /proc && test ! -e /proc/self && exec setpriv --reuid=65534 --regid=65534 \
         --clear-groups --inh-caps=-all,+net_admin --ambient-caps=+net_admin {} dump",
        common::portwarden_bin()
    );
    let out = ns
        .cmd("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(stdout.contains("1 tables, 1 rules"), "{stdout}");
    assert!(stdout.contains("table inet t"), "{stdout}");
}
