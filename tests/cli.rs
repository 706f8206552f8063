//! The command line: roles and check-config (no root needed).

mod common;

use std::process::Command;

fn pw(args: &[&str]) -> std::process::Output {
    Command::new(common::portwarden_bin())
        .args(args)
        .output()
        .expect("run portwarden")
}

#[test]
fn roles_lists_the_required_role_ids_and_shows_sources() {
    let out = pw(&["roles"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for id in [
        "evault-agent",
        "veeam-data-mover",
        "veeam-linux-repository",
        "veeam-hardened-repository",
        "veeam-linux-proxy",
        "veeam-nutanix-worker",
        "veeam-linux-guest",
        "veeam-cdp-proxy",
        "veeam-mount-server",
        "veeam-agent-linux",
        "veeam-network-extension",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(id)),
            "{id} missing from:\n{text}"
        );
    }
    let show = pw(&["roles", "show", "veeam-data-mover"]);
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(
        text.contains("6162") && text.contains("source: VBR-"),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_slice(&pw(&["roles", "--json"]).stdout).unwrap();
    assert!(json.as_array().unwrap().len() >= 11);
}

#[test]
fn unknown_role_suggests_the_nearest() {
    let out = pw(&["roles", "show", "evault-agnt"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean `evault-agent`"));
}

#[test]
fn check_config_reports_file_line_column_and_exits_3() {
    let dir = std::env::temp_dir().join(format!("pw-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "roles = [\"veeam-linux-repositry\"]\n").unwrap();
    let out = pw(&["check-config", "--config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:1:10") && err.contains("veeam-linux-repository"),
        "{err}"
    );
    // The example names eth1, which this machine need not have.
    let good = pw(&[
        "check-config",
        "--offline",
        "--config",
        common::fixture("../../config/portwarden.toml")
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(
        good.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
