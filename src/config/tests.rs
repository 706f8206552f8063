use super::*;
use crate::catalog::DiagnosticKind;
use std::sync::OnceLock;

const FILE: &str = "/etc/portwarden/portwarden.toml";

fn catalog() -> &'static Catalog {
    static CAT: OnceLock<Catalog> = OnceLock::new();
    CAT.get_or_init(|| Catalog::builtin().expect("builtin catalog"))
}

fn parse(text: &str) -> Result<(HostConfig, Vec<Warning>), ConfigError> {
    HostConfig::parse(Path::new(FILE), text, catalog())
}

/// The single diagnostic of an invalid configuration.
fn error(text: &str) -> Diagnostic {
    match parse(text) {
        Ok(_) => panic!("configuration unexpectedly valid:\n{text}"),
        Err(e) => {
            let d = e.diagnostics();
            assert_eq!(d.len(), 1, "{d:#?}");
            d[0].clone()
        }
    }
}

/// Asserts kind, line and column, and returns the diagnostic for further checks.
fn expect(text: &str, kind: DiagnosticKind, line: usize, column: usize) -> Diagnostic {
    let d = error(text);
    assert_eq!(d.kind, kind, "{d}");
    let loc = d.location.clone().expect("located");
    assert_eq!(loc.file, Path::new(FILE));
    assert_eq!((loc.line, loc.column), (line, column), "{d}");
    assert!(
        d.to_string()
            .starts_with(&format!("{FILE}:{line}:{column}: ")),
        "{d}"
    );
    d
}

const ROLES: &str = "roles = [\"veeam-linux-repository\"]\n";

#[test]
fn example_file_is_valid_and_quiet() {
    let text = include_str!("../../config/portwarden.toml");
    let (cfg, warnings) = parse(text).unwrap_or_else(|e| panic!("{e}"));
    assert!(warnings.is_empty(), "{warnings:#?}");
    assert_eq!(cfg.roles, ["veeam-linux-repository", "evault-agent"]);
    assert_eq!(
        cfg.peers["backup_server"],
        ["10.0.0.10/32".parse::<IpNet>().unwrap()]
    );
    assert!(cfg.peers["gateway"].is_empty());
    assert_eq!(cfg.allow[0].ports.to_string(), "9100");
    assert_eq!(cfg.private_interfaces, ["eth1"]);
    assert_eq!(cfg.severity, SeverityPolicy::default());
    assert_eq!(cfg.daemon, DaemonConfig::default());
    assert_eq!(cfg.alerts, AlertsConfig::default());
    assert_eq!(cfg.remediation, RemediationConfig::default());
}

#[test]
fn defaults_apply_to_everything_but_roles() {
    let (cfg, warnings) = parse(ROLES).unwrap();
    assert!(warnings.is_empty());
    assert_eq!(
        cfg.severity.of(FindingKind::MissingOpening),
        Severity::Critical
    );
    assert_eq!(cfg.severity.of(FindingKind::PartialOpening), Severity::Ok);
    assert!(!cfg.remediation.enabled);
    assert_eq!(cfg.remediation.rollback_timeout_s, 60);
    assert!(cfg.alerts.journal);
    assert_eq!(cfg.settings, HostSettings::new());
    assert_eq!(cfg.path.as_deref(), Some(Path::new(FILE)));
}

#[test]
fn values_reach_the_config() {
    let (cfg, _) = parse(&format!(
        "{ROLES}[settings]\nveeam_data_range = \"legacy\"\n[peers]\nbackup_server = [\"10.0.0.10\", \"fd00::/64\"]\n[severity]\nexcess-opening = \"ignore\"\n[remediation]\nenabled = true\nmanager = \"firewalld\"\n[[allow]]\ndirection = \"out\"\nproto = \"udp\"\nports = [\"1195-1199\"]\nto = [\"192.0.2.1\"]\ncomment = \"extra tenant networks\"\n"
    ))
    .unwrap();
    assert_eq!(
        cfg.settings.get("veeam_data_range"),
        Some(&SettingValue::Text("legacy".into()))
    );
    assert_eq!(
        cfg.peers["backup_server"][1],
        "fd00::/64".parse::<IpNet>().unwrap()
    );
    assert_eq!(cfg.severity.excess_opening, Severity::Ignore);
    assert_eq!(cfg.remediation.manager, FirewallManager::Firewalld);
    let a = &cfg.allow[0];
    assert_eq!(
        (a.direction, a.proto, a.ports.to_string()),
        (Direction::Out, Proto::Udp, "1195-1199".to_string())
    );
    assert_eq!(a.addresses, ["192.0.2.1/32".parse::<IpNet>().unwrap()]);
    // The setting reaches the catalog's resolution.
    let reqs = catalog().resolve(&cfg.roles, &cfg.settings).unwrap();
    let data = reqs.iter().find(|r| r.requirement == "data").unwrap();
    assert_eq!(data.ports.to_string(), "2500-5000");
}

#[test]
fn syntax_error() {
    let d = expect(&format!("{ROLES}[peers\n"), DiagnosticKind::Syntax, 2, 7);
    assert!(d.expected.is_some(), "{d}");
}

#[test]
fn unknown_key_suggests_the_nearest_key() {
    let d = expect(
        "rols = [\"veeam-linux-repository\"]\n",
        DiagnosticKind::UnknownKey,
        1,
        1,
    );
    assert_eq!(d.suggestion.as_deref(), Some("roles"));
    assert!(
        d.expected
            .as_deref()
            .unwrap()
            .contains("`private_interfaces`"),
        "{d}"
    );
    let d = expect(
        &format!("{ROLES}\n[daemon]\ndebounce = 100\n"),
        DiagnosticKind::UnknownKey,
        4,
        1,
    );
    assert_eq!(d.suggestion.as_deref(), Some("debounce_ms"));
    let d = expect(
        &format!("{ROLES}[severity]\nmissing_opening = \"warning\"\n"),
        DiagnosticKind::UnknownKey,
        3,
        1,
    );
    assert_eq!(d.suggestion.as_deref(), Some("missing-opening"));
    let d = expect(
        &format!(
            "{ROLES}[[allow]]\nproto = \"tcp\"\nports = 1\ncomment = \"c\"\nfrom_addresses = []\n"
        ),
        DiagnosticKind::UnknownKey,
        6,
        1,
    );
    assert_eq!(d.suggestion.as_deref(), Some("from"));
}

#[test]
fn missing_roles() {
    let d = expect("[settings]\n", DiagnosticKind::MissingKey, 1, 1);
    assert_eq!(d.expected.as_deref(), Some("a key `roles`"));
    expect("roles = []\n", DiagnosticKind::NoRoles, 1, 9);
}

#[test]
fn unknown_role_suggests_the_nearest_role() {
    let d = expect(
        "roles = [\"evault-agent\", \"veeam-hardend-repository\"]\n",
        DiagnosticKind::UnknownRole,
        1,
        26,
    );
    assert_eq!(d.suggestion.as_deref(), Some("veeam-hardened-repository"));
    assert!(
        d.to_string()
            .contains("did you mean `veeam-hardened-repository`?"),
        "{d}"
    );
}

#[test]
fn bad_prefix() {
    let d = expect(
        &format!("{ROLES}[peers]\nbackup_server = [\"10.0.0.10\", \"10.0.0.300/24\"]\n"),
        DiagnosticKind::BadPrefix,
        3,
        31,
    );
    assert!(
        d.expected.as_deref().unwrap().contains("IPv4 or IPv6"),
        "{d}"
    );
    expect(
        &format!("{ROLES}[peers]\nproxy = [\"fd00::/129\"]\n"),
        DiagnosticKind::BadPrefix,
        3,
        10,
    );
    expect(&format!("{ROLES}[[allow]]\nproto = \"tcp\"\nports = 1\nfrom = [\"host.example\"]\ncomment = \"c\"\n"), DiagnosticKind::BadPrefix, 5, 9);
}

#[test]
fn bad_port_range() {
    let d = expect(
        &format!(
            "{ROLES}[[allow]]\nproto = \"tcp\"\nports = [22, \"3300-2500\"]\ncomment = \"c\"\n"
        ),
        DiagnosticKind::BadPortRange,
        4,
        14,
    );
    assert_eq!(d.expected.as_deref(), Some("the lower port first"));
    let d = expect(
        &format!("{ROLES}[[allow]]\nproto = \"tcp\"\nports = 70000\ncomment = \"c\"\n"),
        DiagnosticKind::BadPortRange,
        4,
        9,
    );
    assert_eq!(d.expected.as_deref(), Some("a port number from 0 to 65535"));
}

#[test]
fn bad_severity_value() {
    let d = expect(
        &format!("{ROLES}[severity]\nexcess-opening = \"critcal\"\n"),
        DiagnosticKind::InvalidValue,
        3,
        18,
    );
    assert_eq!(d.suggestion.as_deref(), Some("critical"));
    assert!(d.expected.as_deref().unwrap().contains("`ignore`"), "{d}");
    let d = expect(
        &format!("{ROLES}[remediation]\nmanager = \"iptables\"\n"),
        DiagnosticKind::InvalidValue,
        3,
        11,
    );
    assert!(
        d.expected.as_deref().unwrap().contains("`firewalld`"),
        "{d}"
    );
}

#[test]
fn wrong_type() {
    let d = expect(
        &format!("{ROLES}[alerts]\njournal = \"yes\"\n"),
        DiagnosticKind::WrongType,
        3,
        11,
    );
    assert_eq!(d.expected.as_deref(), Some("a boolean"));
    expect(
        "roles = \"veeam-linux-repository\"\n",
        DiagnosticKind::WrongType,
        1,
        9,
    );
    let d = expect(
        &format!("{ROLES}[settings]\nssh_enabled = \"no\"\n"),
        DiagnosticKind::WrongType,
        3,
        15,
    );
    assert_eq!(d.expected.as_deref(), Some("a boolean"));
}

#[test]
fn zero_rollback_timeout() {
    let d = expect(
        &format!("{ROLES}[remediation]\nrollback_timeout_s = 0\n"),
        DiagnosticKind::InvalidValue,
        3,
        22,
    );
    assert_eq!(d.expected.as_deref(), Some("a positive number of seconds"));
}

#[test]
fn unknown_setting_and_value() {
    let d = expect(
        &format!("{ROLES}[settings]\nveeam_data_rang = \"v10\"\n"),
        DiagnosticKind::UnknownSetting,
        3,
        1,
    );
    assert_eq!(d.suggestion.as_deref(), Some("veeam_data_range"));
    let d = expect(
        &format!("{ROLES}[settings]\nveeam_data_range = \"legasy\"\n"),
        DiagnosticKind::InvalidValue,
        3,
        20,
    );
    assert_eq!(d.suggestion.as_deref(), Some("legacy"));
    assert_eq!(d.expected.as_deref(), Some("one of v10, legacy"));
}

#[test]
fn unknown_peer_group() {
    let d = expect(
        &format!("{ROLES}[peers]\nbakup_server = [\"10.0.0.10\"]\n"),
        DiagnosticKind::UnknownPeerGroup,
        3,
        1,
    );
    assert_eq!(d.suggestion.as_deref(), Some("backup_server"));
    // A top-level key written after [peers] lands in the table: say so.
    let d = expect(
        &format!("{ROLES}[peers]\nprivate_interfaces = [\"eth1\"]\n"),
        DiagnosticKind::UnknownPeerGroup,
        3,
        1,
    );
    assert!(
        d.expected
            .as_deref()
            .unwrap()
            .contains("must come before the first [table]"),
        "{d}"
    );
}

#[test]
fn bad_interface() {
    let d = expect("roles = [\"evault-agent\"]\nprivate_interfaces = [\"eth1\", \"a-very-long-interface-name\"]\n", DiagnosticKind::BadInterface, 2, 31);
    assert!(
        d.expected
            .as_deref()
            .unwrap()
            .starts_with("1-15 characters"),
        "{d}"
    );
    assert!(parse("roles = [\"evault-agent\"]\nprivate_interfaces = [\"vlan*\"]\n").is_ok());
}

#[test]
fn allow_entries_are_checked() {
    let d = expect(
        &format!("{ROLES}[[allow]]\nproto = \"tcp\"\nports = 1\n"),
        DiagnosticKind::MissingKey,
        2,
        1,
    );
    assert_eq!(d.expected.as_deref(), Some("a key `comment`"));
    expect(
        &format!("{ROLES}[[allow]]\nproto = \"tcp\"\nports = 1\ncomment = \" \"\n"),
        DiagnosticKind::Empty,
        5,
        11,
    );
    let d = expect(
        &format!(
            "{ROLES}[[allow]]\nproto = \"tcp\"\nports = 1\nto = [\"10.0.0.1\"]\ncomment = \"c\"\n"
        ),
        DiagnosticKind::InvalidValue,
        5,
        6,
    );
    assert_eq!(d.expected.as_deref(), Some("`from` for this direction"));
}

#[test]
fn all_semantic_errors_are_reported_together() {
    let err = parse("roles = [\"veeam-linux-repo\"]\n[peers]\nproxy = [\"x\"]\n").unwrap_err();
    let kinds: Vec<DiagnosticKind> = err.diagnostics().iter().map(|d| d.kind).collect();
    assert_eq!(
        kinds,
        [DiagnosticKind::UnknownRole, DiagnosticKind::BadPrefix]
    );
}

#[test]
fn warnings_for_unused_groups_and_host_bits() {
    let (cfg, w) = parse(&format!(
        "{ROLES}[peers]\nevault_vault = [\"10.1.2.3\"]\nproxy = [\"10.0.0.1/24\"]\n"
    ))
    .unwrap();
    assert_eq!(
        cfg.peers["proxy"],
        ["10.0.0.0/24".parse::<IpNet>().unwrap()]
    );
    let kinds: Vec<(WarningKind, usize)> = w
        .iter()
        .map(|w| (w.kind, w.location.as_ref().unwrap().line))
        .collect();
    assert_eq!(
        kinds,
        [
            (WarningKind::HostBitsSet, 4),
            (WarningKind::UnusedPeerGroup, 3)
        ]
    );
    assert!(w[1].to_string().contains("evault_vault"), "{}", w[1]);
    // A group used only under a condition that does not hold is unused too.
    let (_, w) =
        parse("roles = [\"veeam-backup-server\"]\n[peers]\nha_partner = [\"10.0.0.2\"]\n").unwrap();
    assert_eq!(w.len(), 1);
    let (_, w) = parse("roles = [\"veeam-backup-server\"]\n[settings]\nvsa_ha = true\n[peers]\nha_partner = [\"10.0.0.2\"]\n").unwrap();
    assert!(w.is_empty());
}

#[test]
fn from_cli_builds_a_config() {
    let (cfg, w) = HostConfig::from_cli(
        catalog(),
        &["veeam-linux-repository", "evault-agent"],
        &[
            "backup_server=10.0.0.10",
            "backup_server=10.0.0.11,fd00::1",
            "evault_registration=10.0.0.0/8",
        ],
        &["veeam_data_range=legacy", "ssh_enabled=false"],
    )
    .unwrap();
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(cfg.peers["backup_server"].len(), 3);
    assert_eq!(
        cfg.settings.get("ssh_enabled"),
        Some(&SettingValue::Bool(false))
    );
    assert_eq!(cfg.path, None);
}

#[test]
fn from_cli_errors_carry_suggestions() {
    let err = HostConfig::from_cli(
        catalog(),
        &["veeam-linux-proxi"],
        &["bakup_server=10.0.0.1", "proxy", "proxy=10.0.0.300"],
        &["veeam_data_range=legasy"],
    )
    .unwrap_err();
    let got: Vec<(DiagnosticKind, Option<&str>)> = err
        .diagnostics()
        .iter()
        .map(|d| (d.kind, d.suggestion.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            (DiagnosticKind::UnknownRole, Some("veeam-linux-proxy")),
            (DiagnosticKind::UnknownPeerGroup, Some("backup_server")),
            (DiagnosticKind::InvalidValue, None),
            (DiagnosticKind::BadPrefix, None),
            (DiagnosticKind::InvalidValue, Some("legacy")),
        ]
    );
    assert!(err.diagnostics().iter().all(|d| d.location.is_none()));
    let none: &[&str] = &[];
    assert_eq!(
        HostConfig::from_cli(catalog(), none, none, none)
            .unwrap_err()
            .diagnostics()[0]
            .kind,
        DiagnosticKind::NoRoles
    );
}

#[test]
fn load_reads_the_file_and_reports_io_errors() {
    let path = std::env::temp_dir().join(format!(
        "portwarden-config-test-{}.toml",
        std::process::id()
    ));
    std::fs::write(&path, ROLES).unwrap();
    let (cfg, _) = HostConfig::load(&path, catalog()).unwrap();
    assert_eq!(cfg.path.as_deref(), Some(path.as_path()));
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        HostConfig::load(&path, catalog()),
        Err(ConfigError::Io { .. })
    ));
}

#[test]
fn from_cli_options_take_private_interfaces() {
    let opts = CliOptions {
        roles: vec!["evault-agent".into()],
        peers: vec!["evault_management=10.0.0.0/8".into()],
        settings: Vec::new(),
        private_interfaces: vec!["eth1".into(), "vlan*".into(), "eth1".into()],
    };
    let (cfg, _) = HostConfig::from_cli_options(catalog(), &opts).unwrap();
    assert_eq!(cfg.private_interfaces, ["eth1", "vlan*"]);
    let bad = CliOptions {
        private_interfaces: vec!["a/b".into()],
        roles: vec!["evault-agnt".into()],
        ..opts
    };
    let kinds: Vec<DiagnosticKind> = HostConfig::from_cli_options(catalog(), &bad)
        .unwrap_err()
        .diagnostics()
        .iter()
        .map(|d| d.kind)
        .collect();
    assert_eq!(
        kinds,
        [DiagnosticKind::UnknownRole, DiagnosticKind::BadInterface]
    );
}

#[test]
fn finding_kind_names_are_their_serde_names() {
    use super::FindingKind as K;
    for k in [
        K::MissingOpening,
        K::ExcessOpening,
        K::ExposedListener,
        K::NotListening,
        K::OutboundBlocked,
        K::PartialOpening,
    ] {
        assert_eq!(serde_json::to_value(k).unwrap(), k.name());
    }
}

#[test]
fn load_locates_the_first_byte_that_is_not_utf8() {
    let path = std::env::temp_dir().join(format!(
        "portwarden-config-latin1-{}.toml",
        std::process::id()
    ));
    // "café" in Latin-1 on line 3, column 8 (after `# caf`, 2 spaces before).
    let mut bytes = format!("{ROLES}[peers]\n  # caf").into_bytes();
    bytes.extend([0xe9, b'\n']);
    std::fs::write(&path, bytes).unwrap();
    let err = HostConfig::load(&path, catalog()).unwrap_err();
    std::fs::remove_file(&path).unwrap();
    let d = &err.diagnostics()[0];
    assert_eq!(d.kind, DiagnosticKind::Encoding);
    let loc = d.location.as_ref().unwrap();
    assert_eq!((loc.line, loc.column), (3, 8), "{d}");
    assert_eq!(
        err.to_string(),
        format!(
            "{}:3:8: invalid UTF-8: byte 0xe9; expected UTF-8 text \
             (convert a Latin-1 file with `iconv -f latin1 -t utf-8`)",
            path.display()
        )
    );
}

#[test]
fn load_refuses_a_file_over_the_limit_unread() {
    let path =
        std::env::temp_dir().join(format!("portwarden-config-big-{}.toml", std::process::id()));
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(MAX_FILE_SIZE + 1).unwrap(); // sparse: nothing to read
    let err = HostConfig::load(&path, catalog()).unwrap_err();
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(err, ConfigError::TooLarge { size, .. } if size == MAX_FILE_SIZE + 1));
    assert_eq!(
        err.to_string(),
        format!(
            "{}: the file has 8388609 bytes, over the limit of 8388608 bytes (8 MiB) \
             for a configuration file; refused unread",
            path.display()
        )
    );
}

/// A peer list of `n` entries, one per line, made by `entry`.
fn peer_list(n: usize, entry: impl Fn(usize) -> String) -> String {
    let mut text = format!("{ROLES}[peers]\nbackup_server = [\n");
    for i in 0..n {
        text.push_str(&format!("  \"{}\",\n", entry(i)));
    }
    text.push_str("]\n");
    text
}

#[test]
fn errors_deep_in_a_long_list_are_located_and_capped() {
    let n = 20_000;
    // Every 100th entry is bad: 200 errors, the first on line 4.
    let text = peer_list(n, |i| {
        if i % 100 == 0 {
            format!("10.0.{}.x", i / 256)
        } else {
            format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255)
        }
    });
    let err = parse(&text).unwrap_err();
    let d = err.diagnostics();
    assert_eq!(d.len(), MAX_DIAGNOSTICS + 1);
    for (k, diag) in d[..MAX_DIAGNOSTICS].iter().enumerate() {
        assert_eq!(diag.kind, DiagnosticKind::BadPrefix);
        let loc = diag.location.as_ref().unwrap();
        assert_eq!((loc.line, loc.column), (4 + 100 * k, 3), "{diag}");
    }
    let last = &d[MAX_DIAGNOSTICS];
    assert_eq!(last.kind, DiagnosticKind::Omitted);
    assert_eq!(
        last.to_string(),
        "100 more errors not shown (only the first 100 are listed)"
    );
}

#[test]
fn warnings_are_capped_too() {
    let text = peer_list(150, |i| format!("10.0.{i}.1/24"));
    let (cfg, warnings) = parse(&text).unwrap();
    assert_eq!(cfg.peers["backup_server"].len(), 150);
    assert_eq!(warnings.len(), MAX_DIAGNOSTICS + 1);
    assert_eq!(warnings[0].location.as_ref().unwrap().line, 4);
    assert_eq!(warnings[MAX_DIAGNOSTICS].kind, WarningKind::Omitted);
    assert_eq!(
        warnings[MAX_DIAGNOSTICS].to_string(),
        "warning: 50 more warnings not shown"
    );
}

#[test]
fn peer_interfaces_pin_bound_groups() {
    let text = "roles = [\"veeam-data-mover\"]\n[peers]\nbackup_server = [\"10.0.0.10\"]\n[peer_interfaces]\nbackup_server = [\"eth1\", \"vlan*\"]\n";
    let (cfg, _) = parse(text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.peer_interfaces["backup_server"], ["eth1", "vlan*"]);
    // Unbound group: nothing to pin.
    let d = expect(
        "roles = [\"veeam-data-mover\"]\n[peer_interfaces]\nbackup_server = [\"eth1\"]\n",
        DiagnosticKind::InvalidValue,
        3,
        1,
    );
    assert!(d.message.contains("no addresses"), "{d}");
    // Unknown group, empty list, bad name.
    expect(
        "roles = [\"veeam-data-mover\"]\n[peer_interfaces]\nbakup_server = [\"eth1\"]\n",
        DiagnosticKind::UnknownPeerGroup,
        3,
        1,
    );
    expect(
        "roles = [\"veeam-data-mover\"]\n[peers]\nbackup_server = [\"10.0.0.10\"]\n[peer_interfaces]\nbackup_server = []\n",
        DiagnosticKind::Empty,
        5,
        17,
    );
    expect(
        "roles = [\"veeam-data-mover\"]\n[peers]\nbackup_server = [\"10.0.0.10\"]\n[peer_interfaces]\nbackup_server = [\"a b\"]\n",
        DiagnosticKind::BadInterface,
        5,
        18,
    );
}

#[test]
fn interface_names_are_checked_against_the_host() {
    let dir = std::env::temp_dir().join(format!("pw-cfg-live-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("portwarden.toml");
    let text = "roles = [\"evault-agent\"]\nprivate_interfaces = [\"pw-prv\", \"vlan*\"]\n[peers]\nevault_management = [\"10.0.0.0/8\"]\n[peer_interfaces]\nevault_management = [\"eth9\"]\n";
    std::fs::write(&path, text).unwrap();
    let live = [
        "lo".to_string(),
        "pw-priv".to_string(),
        "vlan10".to_string(),
    ];
    let e = HostConfig::load_on_host(&path, catalog(), &live).unwrap_err();
    let d = e.diagnostics();
    assert_eq!(d.len(), 2, "{d:#?}");
    assert_eq!(d[0].kind, DiagnosticKind::NoSuchInterface);
    let loc = d[0].location.clone().unwrap();
    assert_eq!((loc.line, loc.column), (2, 23), "{}", d[0]);
    assert!(
        d[0].message.contains("\"pw-prv\" matches no interface"),
        "{}",
        d[0]
    );
    assert_eq!(d[0].suggestion.as_deref(), Some("pw-priv"));
    let loc = d[1].location.clone().unwrap();
    assert_eq!((loc.line, loc.column), (6, 22), "{}", d[1]);
    // Without the host's interfaces (audit, tests), names are not looked up.
    assert!(HostConfig::load(&path, catalog()).is_ok());
    let _ = std::fs::remove_dir_all(dir);
}

/// The file the package installs as /etc/portwarden/portwarden.toml is
/// valid except that it selects no role yet: the daemon waits for one.
#[test]
fn packaged_default_selects_no_role_and_nothing_else_is_wrong() {
    let text = include_str!("../../packaging/portwarden.toml");
    let err = parse(text).expect_err("no role selected");
    assert!(err.is_only_no_roles(), "{err}");
    // Its commented-out keys, uncommented in place of `roles = []`, make a
    // valid configuration: the hints are not stale.
    let is_key =
        |l: &str| l.starts_with('[') || l.split_once(" = ").is_some_and(|(k, _)| !k.contains(' '));
    let uncommented: String = text
        .lines()
        .filter(|l| *l != "roles = []")
        .map(|l| l.strip_prefix("# ").filter(|l| is_key(l)).unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let (cfg, _) = parse(&uncommented).unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
    assert_eq!(cfg.roles, ["veeam-linux-repository"]);
}

/// The fields a struct read with `deny_unknown_fields` accepts, as serde
/// lists them when it meets an unknown one.
fn accepted_keys<T: serde::de::DeserializeOwned>() -> Vec<String> {
    let err = match toml::from_str::<T>("zz_not_a_key = 0\n") {
        Ok(_) => panic!("an unknown key was accepted"),
        Err(e) => e.message().to_string(),
    };
    let list = err
        .split_once("expected one of ")
        .or_else(|| err.split_once("expected "))
        .unwrap_or_else(|| panic!("no field list in: {err}"))
        .1;
    // "`a`", "`a` or `b`", "one of `a`, `b`, `c`".
    list.split(", ")
        .flat_map(|s| s.split(" or "))
        .map(|s| s.trim().trim_matches('`').to_string())
        .collect()
}

/// `dist/man/portwarden.toml.5` with roff's `\-` read as `-`.
fn toml_man_page() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/dist/man/portwarden.toml.5");
    std::fs::read_to_string(path)
        .expect("dist/man/portwarden.toml.5")
        .replace("\\-", "-")
}

/// The page's tagged paragraph header for `key` (`\fBkey\fR = ...`).
fn key_header<'p>(page: &'p str, key: &str) -> Option<&'p str> {
    let tag = format!("\\fB{key}\\fR");
    let mut lines = page.lines();
    while let Some(l) = lines.next() {
        if l == ".TP" {
            if let Some(h) = lines.next() {
                if h.starts_with(&tag) {
                    return Some(h);
                }
            }
        }
    }
    None
}

/// portwarden.toml(5) describes every key the parser accepts: the top-level
/// keys and tables of the file, the keys of every table (with their
/// defaults, as the code has them), the keys of [[allow]], and the
/// settings and peer groups of the built-in catalog (with the settings'
/// defaults and values). Each list comes from the code, not from here.
#[test]
fn every_config_key_is_in_the_toml_man_page() {
    let page = toml_man_page();
    let mut missing = Vec::new();
    let top = accepted_keys::<RawConfig>();
    assert!(top.contains(&"roles".to_string()), "{top:?}");
    // Defaults of every table, from a configuration that sets none.
    let (cfg, _) = parse("roles = [\"veeam-data-mover\"]\n").unwrap();
    let defaults = toml::Value::try_from(&cfg).unwrap();
    for key in &top {
        let heading = |h: String| page.contains(&format!(".SH \"{h}\""));
        match defaults.get(key) {
            Some(toml::Value::Table(t)) => {
                if !heading(format!("[{key}]")) {
                    missing.push(format!("section [{key}]"));
                }
                for (k, v) in t {
                    match key_header(&page, k) {
                        None => missing.push(format!("[{key}] {k}")),
                        Some(h)
                            if h.split_once(" = ").and_then(|(_, r)| r.split(' ').next())
                                != Some(v.to_string().as_str()) =>
                        {
                            missing.push(format!("[{key}] {k}: default {v} (header: {h})"))
                        }
                        Some(_) => {}
                    }
                }
            }
            Some(toml::Value::Array(_)) if key == "allow" => {
                if !heading(format!("[[{key}]]")) {
                    missing.push(format!("section [[{key}]]"));
                }
            }
            _ => {
                if key_header(&page, key).is_none() {
                    missing.push(format!("top-level {key}"));
                }
            }
        }
    }
    // Keys of the tables and of [[allow]] as the parser accepts them
    // (aliases included where serde lists them).
    for (table, keys) in [
        ("severity", accepted_keys::<SeverityPolicy>()),
        ("daemon", accepted_keys::<DaemonConfig>()),
        ("alerts", accepted_keys::<AlertsConfig>()),
        ("remediation", accepted_keys::<RemediationConfig>()),
        ("allow", accepted_keys::<RawAllow>()),
    ] {
        assert!(top.contains(&table.to_string()), "{table}");
        for k in keys {
            let aliased = format!("(\\fB{k}\\fR is an older name");
            if key_header(&page, &k).is_none() && !page.contains(&aliased) {
                missing.push(format!("[{table}] {k}"));
            }
        }
    }
    // The built-in catalog's settings and peer groups.
    for (name, def) in catalog().settings() {
        let Some(h) = key_header(&page, name) else {
            missing.push(format!("[settings] {name}"));
            continue;
        };
        let quote = |v: &str| match def.default.get_ref() {
            SettingValue::Bool(_) => v.to_string(),
            SettingValue::Text(_) => format!("\"{v}\""),
        };
        let default = format!("(default {})", quote(&def.default.get_ref().to_string()));
        let values: Vec<String> = def.possible_values().iter().map(|v| quote(v)).collect();
        if !h.contains(&default) || !h.contains(&values.join(" | ")) {
            missing.push(format!(
                "[settings] {name}: {} {default} (header: {h})",
                values.join(" | ")
            ));
        }
    }
    for (name, _) in catalog().peer_groups() {
        if !page.contains(&format!("\\fB{name}\\fR")) {
            missing.push(format!("[peers] {name}"));
        }
    }
    assert!(
        missing.is_empty(),
        "dist/man/portwarden.toml.5 does not describe: {missing:#?}"
    );
}
