use super::*;
use crate::ports::PortRange;
use std::path::PathBuf;

/// The source names defined by the project's port facts.
const FACT_SOURCES: &[&str] = &[
    "VBR-UG-13.0.1",
    "VBR-UG-13.1",
    "VBR-AGENTS-13.0.1",
    "VCC-13.0.1",
    "AHV-13.9",
    "VBR-LINUX-SSH",
    "IBM-BACKUP-2024",
];

/// Sources besides the port facts' names: seed 001, the 2019 German
/// edition the port facts mention under IBM-BACKUP-2024, cited on its
/// own for its lines.
const SEED_SOURCES: &[&str] = &["IBM-BACKUP-2019"];

/// Every Linux role the port facts describe.
const FACT_ROLES: &[&str] = &[
    "evault-agent",
    "veeam-data-mover",
    "veeam-linux-repository",
    "veeam-hardened-repository",
    "veeam-linux-proxy",
    "veeam-linux-gateway",
    "veeam-nutanix-worker",
    "veeam-flr-helper",
    "veeam-linux-guest",
    "veeam-cdp-proxy",
    "veeam-mount-server",
    "veeam-agent-linux",
    "veeam-network-extension",
    "veeam-backup-server",
    "veeam-cloud-provider-repository",
    "veeam-cloud-provider-proxy",
    "veeam-cloud-connect-tenant",
    // Rows of the seeds (issue 14).
    "veeam-log-shipping-server",
    "veeam-cloud-tenant-backup-server",
    "veeam-cloud-provider-cdp-proxy",
];

fn builtin() -> Catalog {
    match Catalog::builtin() {
        Ok(c) => c,
        Err(e) => panic!("builtin catalog does not load:\n{e}"),
    }
}

fn settings(cat: &Catalog, pairs: &[(&str, SettingValue)]) -> HostSettings {
    let mut s = HostSettings::new();
    for (k, v) in pairs {
        s.set(cat, k, v.clone()).unwrap();
    }
    s
}

fn text(s: &str) -> SettingValue {
    SettingValue::Text(s.to_string())
}

fn find<'a>(
    reqs: &'a [ResolvedRequirement],
    role: &str,
    id: &str,
) -> Option<&'a ResolvedRequirement> {
    reqs.iter().find(|r| r.role == role && r.requirement == id)
}

fn overlay_err(toml_text: &str) -> Vec<Diagnostic> {
    match Catalog::with_overlay(&[(Path::new("/etc/portwarden/catalog.d/x.toml"), toml_text)]) {
        Ok(_) => panic!("overlay unexpectedly valid"),
        Err(e) => e.diagnostics().to_vec(),
    }
}

/// The port facts file, beside the repository as `../shared/` (CI and developers).
fn port_facts() -> Option<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/port-facts.md");
    std::fs::read_to_string(path).ok()
}

#[test]
fn fact_sources_match_the_port_facts_file() {
    let Some(facts) = port_facts() else {
        return; // not available outside the project's workspace
    };
    // "Sources (cite them by these names ...):" then "- NAME[ / NAME]: ..." lines.
    let listed: Vec<&str> = facts
        .lines()
        .skip_while(|l| !l.starts_with("Sources"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.strip_prefix("- "))
        .filter_map(|l| l.split_once(':').map(|(names, _)| names))
        .flat_map(|names| names.split(" / ").map(str::trim))
        .collect();
    let mut listed_sorted = listed.clone();
    listed_sorted.sort_unstable();
    let mut ours = FACT_SOURCES.to_vec();
    ours.sort_unstable();
    assert_eq!(listed_sorted, ours);
}

#[test]
fn builtin_catalog_loads_and_validates() {
    let cat = builtin();
    assert!(cat.roles().count() >= FACT_ROLES.len());
}

#[test]
fn every_file_of_config_catalog_is_compiled_in() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/catalog");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    on_disk.sort();
    let mut built: Vec<String> = load::BUILTIN.iter().map(|(n, _)| n.to_string()).collect();
    built.sort();
    assert_eq!(on_disk, built);
}

#[test]
fn every_fact_role_exists() {
    let cat = builtin();
    for id in FACT_ROLES {
        assert!(cat.role(id).is_some(), "missing role {id}");
    }
}

#[test]
fn every_citation_names_a_fact_source() {
    let cat = builtin();
    let names: Vec<&str> = cat.sources().map(|(n, _)| n).collect();
    for n in &names {
        assert!(
            FACT_SOURCES.contains(n) || SEED_SOURCES.contains(n),
            "source {n} is not one of the port facts' sources"
        );
    }
    for role in cat.roles() {
        assert!(!role.sources.is_empty(), "role {} cites nothing", role.id());
        for req in &role.requirements {
            let doc = req.source.doc.get_ref();
            assert!(
                FACT_SOURCES.contains(&doc.as_str()),
                "{}/{}: {doc}",
                role.id(),
                req.id()
            );
            assert!(
                !req.source.section.trim().is_empty(),
                "{}/{}",
                role.id(),
                req.id()
            );
        }
    }
}

#[test]
fn data_range_follows_the_setting() {
    let cat = builtin();
    let range = |s: &HostSettings| {
        let reqs = cat.resolve(&["veeam-linux-repository"], s).unwrap();
        let data = find(&reqs, "veeam-data-mover", "data").expect("data requirement");
        (data.ports.clone(), data.port_choice.clone().unwrap().value)
    };
    let v10 = PortSet::from_ranges([PortRange::new(2500, 3300).unwrap()]);
    let legacy = PortSet::from_ranges([PortRange::new(2500, 5000).unwrap()]);
    assert_eq!(
        range(&HostSettings::new()),
        (v10.clone(), "v10".to_string())
    );
    let s = settings(&cat, &[("veeam_data_range", text("legacy"))]);
    assert_eq!(range(&s), (legacy, "legacy".to_string()));
    let s = settings(&cat, &[("veeam_data_range", text("v10"))]);
    assert_eq!(range(&s).0, v10);
}

#[test]
fn includes_expand_once_and_remember_who_asked() {
    let cat = builtin();
    let s = HostSettings::new();
    let reqs = cat
        .resolve(&["veeam-hardened-repository", "veeam-linux-proxy"], &s)
        .unwrap();
    // hardened -> linux-repository -> data-mover; the proxy includes data-mover too.
    let transport = find(&reqs, "veeam-data-mover", "transport").unwrap();
    assert_eq!(
        transport.selected_by,
        ["veeam-hardened-repository", "veeam-linux-proxy"]
    );
    assert_eq!(transport.ports.to_string(), "6162");
    assert!(transport.listen);
    assert!(find(&reqs, "veeam-linux-repository", "data-from-components").is_some());
    assert!(find(&reqs, "veeam-linux-proxy", "vcenter").is_some());
    let keys: HashSet<_> = reqs.iter().map(|r| (&r.role, &r.requirement)).collect();
    assert_eq!(keys.len(), reqs.len(), "a requirement appears twice");
    let order: Vec<&str> = cat
        .expand(&["veeam-hardened-repository"])
        .unwrap()
        .iter()
        .map(|r| r.id())
        .collect();
    assert_eq!(
        order,
        [
            "veeam-data-mover",
            "veeam-linux-repository",
            "veeam-hardened-repository"
        ]
    );
}

#[test]
fn conditions_follow_host_settings() {
    let cat = builtin();
    let has = |role: &str, req: &str, s: &HostSettings| {
        find(&cat.resolve(&[role], s).unwrap(), role, req).is_some()
    };
    let none = HostSettings::new();
    // SSH can be switched off (hardened repository).
    assert!(has("veeam-data-mover", "ssh", &none));
    let off = settings(&cat, &[("ssh_enabled", SettingValue::Bool(false))]);
    assert!(!has("veeam-data-mover", "ssh", &off));
    // Guest: SSH without persistent agent, 6162 with it.
    assert!(has("veeam-linux-guest", "ssh", &none));
    assert!(!has("veeam-linux-guest", "management-agent", &none));
    let persistent = settings(&cat, &[("guest_mode", text("persistent"))]);
    assert!(has("veeam-linux-guest", "management-agent", &persistent));
    assert!(!has("veeam-linux-guest", "ssh", &persistent));
    // 13.0.1 tables list the data range for non-persistent guests, 13.1 tables do not.
    assert!(!has("veeam-linux-guest", "data-non-persistent", &none));
    let old = settings(&cat, &[("veeam_release", text("13.0.1.1071"))]);
    assert!(has("veeam-linux-guest", "data-non-persistent", &old));
    // EVault: commercial or federal portal.
    assert!(has("evault-agent", "registration", &none));
    let fed = settings(&cat, &[("evault_environment", text("federal"))]);
    assert!(has("evault-agent", "registration-federal", &fed));
    assert!(!has("evault-agent", "registration", &fed));
}

#[test]
fn fallback_and_partial_flags() {
    let cat = builtin();
    let data = |s: &HostSettings| {
        find(
            &cat.resolve(&["veeam-data-mover"], s).unwrap(),
            "veeam-data-mover",
            "data",
        )
        .cloned()
        .unwrap()
    };
    let d = data(&HostSettings::new());
    assert!(d.partial_ok && d.fallback);
    let d = data(&settings(&cat, &[("veeam_release", text("13.0.1.1071"))]));
    assert!(d.partial_ok && !d.fallback);
}

#[test]
fn evault_peer_groups_carry_suggestions_and_legacy_port() {
    let cat = builtin();
    let g = cat.peer_group("evault_registration").unwrap();
    assert_eq!(g.suggested, ["10.0.0.0/8".parse::<IpNet>().unwrap()]);
    assert_eq!(g.minimum.len(), 2);
    let s = HostSettings::new();
    let m = find(
        &cat.resolve(&["evault-agent"], &s).unwrap(),
        "evault-agent",
        "management",
    )
    .cloned()
    .unwrap();
    assert_eq!(
        (m.ports.to_string(), m.scope),
        ("2548".to_string(), Scope::Private)
    );
    let old = settings(&cat, &[("evault_legacy_agent", SettingValue::Bool(true))]);
    let m = find(
        &cat.resolve(&["evault-agent"], &old).unwrap(),
        "evault-agent",
        "management",
    )
    .cloned()
    .unwrap();
    assert_eq!(m.ports.to_string(), "808");
}

#[test]
fn resolve_rejects_unknown_roles_with_a_suggestion() {
    let cat = builtin();
    match cat.resolve(&["veeam-linux-repo"], &HostSettings::new()) {
        Err(CatalogError::UnknownRole { id, suggestion }) => {
            assert_eq!(id, "veeam-linux-repo");
            assert_eq!(suggestion.as_deref(), Some("veeam-linux-repository"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn host_settings_are_checked() {
    let cat = builtin();
    let mut s = HostSettings::new();
    assert!(matches!(
        s.set(&cat, "veeam_data_rnage", text("v10")),
        Err(SettingError::Unknown { suggestion: Some(n), .. }) if n == "veeam_data_range"
    ));
    assert!(matches!(
        s.set(&cat, "veeam_data_range", text("legcy")),
        Err(SettingError::NotAllowed { suggestion: Some(n), .. }) if n == "legacy"
    ));
    assert!(matches!(
        s.set(&cat, "ssh_enabled", text("no")),
        Err(SettingError::WrongType {
            expected: "a boolean",
            ..
        })
    ));
}

#[test]
fn overlay_replaces_a_role_and_adds_one() {
    let overlay = r#"
[[role]]
id = "veeam-data-mover"
title = "Data Mover on port 6262"
description = "Site override: transport port chosen when the server was added."
sources = ["VBR-LINUX-SSH"]

[[role.requirement]]
id = "transport"
direction = "in"
proto = "tcp"
ports = [6262]
peer = "backup_server"
listen = true
purpose = "Data Mover."
source = { doc = "VBR-LINUX-SSH", section = "Specify Credentials and SSH Settings" }

[[role]]
id = "site-monitoring"
title = "Monitoring agent"
description = "Local addition."
includes = ["veeam-data-mover"]
"#;
    let cat = Catalog::with_overlay(&[(Path::new("/etc/portwarden/catalog.d/site.toml"), overlay)])
        .unwrap();
    let reqs = cat
        .resolve(&["veeam-linux-repository"], &HostSettings::new())
        .unwrap();
    assert_eq!(
        find(&reqs, "veeam-data-mover", "transport")
            .unwrap()
            .ports
            .to_string(),
        "6262"
    );
    assert!(find(&reqs, "veeam-data-mover", "ssh").is_none());
    assert!(cat.role("site-monitoring").is_some());
    assert_eq!(
        cat.role("site-monitoring").unwrap().origin(),
        Some(Path::new("/etc/portwarden/catalog.d/site.toml"))
    );
}

#[test]
fn load_reads_directories_in_order_and_skips_missing_ones() {
    let base = std::env::temp_dir().join(format!("portwarden-catalog-test-{}", std::process::id()));
    let (a, b) = (base.join("usr"), base.join("etc"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let role = |title: &str| {
        format!(
            "[[role]]\nid = \"site-role\"\ntitle = \"{title}\"\ndescription = \"d\"\nincludes = [\"veeam-data-mover\"]\n"
        )
    };
    std::fs::write(a.join("10-site.toml"), role("from usr")).unwrap();
    std::fs::write(b.join("10-site.toml"), role("from etc")).unwrap();
    std::fs::write(b.join("README"), "not toml").unwrap();
    let missing = base.join("missing");
    let cat = Catalog::load(&[a.as_path(), missing.as_path(), b.as_path()]).unwrap();
    assert_eq!(cat.role("site-role").unwrap().title, "from etc");
    std::fs::write(b.join("20-broken.toml"), "[[role]\n").unwrap();
    let err = Catalog::load(&[a.as_path(), b.as_path()]).unwrap_err();
    let d = &err.diagnostics()[0];
    assert_eq!(d.kind, DiagnosticKind::Syntax);
    assert_eq!(d.location.as_ref().unwrap().file, b.join("20-broken.toml"));
    std::fs::remove_dir_all(&base).unwrap();
}

#[test]
fn broken_file_reports_line_and_column() {
    let d = overlay_err("[[role]]\nid = \"x\"\ntitle = \"unterminated\n");
    assert_eq!(d.len(), 1);
    let loc = d[0].location.as_ref().unwrap();
    assert_eq!(d[0].kind, DiagnosticKind::Syntax);
    assert_eq!(loc.file, Path::new("/etc/portwarden/catalog.d/x.toml"));
    assert_eq!((loc.line, loc.column), (3, 22));
    assert!(
        d[0].to_string()
            .starts_with("/etc/portwarden/catalog.d/x.toml:3:22: "),
        "{}",
        d[0]
    );
}

#[test]
fn unknown_key_is_rejected_with_the_nearest_key() {
    let d = overlay_err(
        "[[role]]\nid = \"x\"\ntitle = \"t\"\ndescription = \"d\"\nincludes = [\"veeam-data-mover\"]\ninclude_roles = []\n",
    );
    assert_eq!(d[0].kind, DiagnosticKind::UnknownKey);
    let loc = d[0].location.as_ref().unwrap();
    assert_eq!((loc.line, loc.column), (6, 1));
    assert_eq!(d[0].suggestion.as_deref(), Some("includes"));
    assert!(d[0].expected.as_deref().unwrap().contains("`requirement`"));
}

#[test]
fn unknown_include_is_rejected_with_the_nearest_role() {
    let d = overlay_err("[[role]]\nid = \"x\"\ntitle = \"t\"\ndescription = \"d\"\nincludes = [\"veeam-data-mover\", \"veeam-linux-repo\"]\n");
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].kind, DiagnosticKind::UnknownRole);
    let loc = d[0].location.as_ref().unwrap();
    assert_eq!((loc.line, loc.column), (5, 33));
    assert_eq!(d[0].suggestion.as_deref(), Some("veeam-linux-repository"));
}

const REQ_HEAD: &str =
    "[[role]]\nid = \"x\"\ntitle = \"t\"\ndescription = \"d\"\n\n[[role.requirement]]\n";

#[test]
fn requirement_references_are_checked() {
    let d = overlay_err(&format!(
        "{REQ_HEAD}id = \"a\"\ndirection = \"in\"\nproto = \"tcp\"\nport_set = \"veeam-dta\"\npeer = \"bakup_server\"\npurpose = \"p\"\nconditions = {{ ssh_enabld = true }}\nsource = {{ doc = \"VBR-UG-13.2\", section = \"s\" }}\n\n[[role.requirement]]\nid = \"a\"\ndirection = \"out\"\nproto = \"udp\"\nports = [1]\npeer = \"proxy\"\nlisten = true\npurpose = \"p\"\nsource = {{ doc = \"VCC-13.0.1\", section = \"\" }}\n"
    ));
    let got: Vec<(DiagnosticKind, usize, Option<&str>)> = d
        .iter()
        .map(|d| {
            (
                d.kind,
                d.location.as_ref().unwrap().line,
                d.suggestion.as_deref(),
            )
        })
        .collect();
    use DiagnosticKind as K;
    for want in [
        (K::UnknownPortSet, 10, Some("veeam-data")),
        (K::UnknownPeerGroup, 11, Some("backup_server")),
        (K::UnknownSetting, 13, Some("ssh_enabled")),
        (K::UnknownSource, 14, Some("VBR-UG-13.1")),
        (K::Duplicate, 17, None),
        (K::InvalidValue, 17, None), // listen on an outbound requirement
        (K::Empty, 24, None),        // empty section
    ] {
        assert!(got.contains(&want), "missing {want:?} in {got:?}");
    }
}

#[test]
fn condition_values_must_fit_the_setting() {
    let d = overlay_err(&format!(
        "{REQ_HEAD}id = \"a\"\ndirection = \"in\"\nproto = \"tcp\"\nports = 1\npeer = \"proxy\"\npurpose = \"p\"\nconditions = {{ veeam_data_range = \"legasy\", ssh_enabled = \"yes\" }}\nsource = {{ doc = \"VCC-13.0.1\", section = \"s\" }}\n"
    ));
    assert_eq!(d.len(), 2, "{d:?}");
    let wrong_type = d
        .iter()
        .find(|d| d.kind == DiagnosticKind::WrongType)
        .unwrap();
    assert_eq!(wrong_type.expected.as_deref(), Some("true or false"));
    let bad_value = d
        .iter()
        .find(|d| d.kind == DiagnosticKind::InvalidValue)
        .unwrap();
    assert_eq!(bad_value.suggestion.as_deref(), Some("legacy"));
    assert_eq!(bad_value.location.as_ref().unwrap().line, 13);
}

#[test]
fn bad_port_in_catalog_is_located() {
    let d = overlay_err(&format!(
        "{REQ_HEAD}id = \"a\"\ndirection = \"in\"\nproto = \"tcp\"\nports = [22, 65536]\npeer = \"proxy\"\npurpose = \"p\"\nsource = {{ doc = \"VCC-13.0.1\", section = \"s\" }}\n"
    ));
    assert_eq!(d[0].kind, DiagnosticKind::BadPortRange);
    let loc = d[0].location.as_ref().unwrap();
    assert_eq!((loc.line, loc.column), (10, 14));
}

#[test]
fn include_cycles_and_duplicate_roles_are_rejected() {
    let d = overlay_err(
        "[[role]]\nid = \"a\"\ntitle = \"t\"\ndescription = \"d\"\nincludes = [\"b\"]\n\n[[role]]\nid = \"b\"\ntitle = \"t\"\ndescription = \"d\"\nincludes = [\"a\"]\n",
    );
    assert!(
        d.iter()
            .any(|d| d.kind == DiagnosticKind::IncludeCycle && d.message.contains("a -> b -> a")),
        "{d:?}"
    );
    let d = overlay_err("[[role]]\nid = \"a\"\ntitle = \"t\"\ndescription = \"d\"\nincludes = [\"veeam-data-mover\"]\n\n[[role]]\nid = \"a\"\ntitle = \"t\"\ndescription = \"d\"\nincludes = [\"veeam-data-mover\"]\n");
    assert_eq!(d[0].kind, DiagnosticKind::Duplicate);
    assert_eq!(d[0].location.as_ref().unwrap().line, 8);
}

#[test]
fn port_variants_resolve_port_sets_through_their_setting() {
    let cat = builtin();
    let req = |role: &str, id: &str| {
        cat.role(role)
            .unwrap()
            .requirements
            .iter()
            .find(|r| r.id() == id)
            .unwrap()
            .clone()
    };
    type Shown = (Option<(String, String)>, String, bool);
    let show = |v: &[PortVariant]| -> Vec<Shown> {
        v.iter()
            .map(|v| (v.when.clone(), v.ports.to_string(), v.default))
            .collect()
    };
    let when = |s: &str, v: &str| Some((s.to_string(), v.to_string()));
    let mgmt = req("evault-agent", "management");
    assert_eq!(
        show(&cat.port_variants(&mgmt)),
        [
            (when("evault_legacy_agent", "false"), "2548".into(), true),
            (when("evault_legacy_agent", "true"), "808".into(), false),
        ]
    );
    let data = cat
        .role("veeam-data-mover")
        .unwrap()
        .requirements
        .iter()
        .find(|r| r.port_set.is_some())
        .unwrap()
        .clone();
    assert_eq!(
        show(&cat.port_variants(&data)),
        [
            (when("veeam_data_range", "v10"), "2500-3300".into(), true),
            (
                when("veeam_data_range", "legacy"),
                "2500-5000".into(),
                false
            ),
        ]
    );
    // The variant the default picks is what resolving with defaults gives.
    let resolved = cat
        .resolve(&["evault-agent"], &HostSettings::new())
        .unwrap();
    let r = find(&resolved, "evault-agent", "management").unwrap();
    assert_eq!(r.ports.to_string(), "2548");
    let vault = req("evault-agent", "vault");
    assert_eq!(
        show(&cat.port_variants(&vault)),
        [(None, "2546".into(), true)]
    );
}

/// An overlay with one requirement of role `x` made of `body`.
fn one_requirement(body: &str) -> String {
    format!("{REQ_HEAD}id = \"a\"\ndirection = \"out\"\nproto = \"tcp\"\npeer = \"crl_endpoints\"\npurpose = \"p\"\n{body}\n")
}

#[test]
fn alternatives_resolve_to_every_port_and_each_alternative() {
    let cat = Catalog::with_overlay(&[(
        Path::new("/etc/portwarden/catalog.d/x.toml"),
        &one_requirement(
            "any_of = [443, 80, \"8080-8081\"]\nsource = { doc = \"VBR-UG-13.1\", section = \"s\" }",
        ),
    )])
    .unwrap();
    let r = &cat.resolve(&["x"], &HostSettings::new()).unwrap()[0];
    assert_eq!(r.ports.to_string(), "80,443,8080-8081");
    let alts: Vec<String> = r.any_of.iter().map(ToString::to_string).collect();
    assert_eq!(alts, ["443", "80", "8080-8081"]);
    // A requirement that needs all its ports has none.
    let cat = builtin();
    let all = cat
        .resolve(&["veeam-data-mover"], &HostSettings::new())
        .unwrap();
    assert!(all.iter().all(|r| r.any_of.is_empty()));
}

#[test]
fn alternatives_are_checked_at_load() {
    let src = "source = { doc = \"VBR-UG-13.1\", section = \"s\" }";
    for (body, message) in [
        ("any_of = [443]", "fewer than two alternatives"),
        ("any_of = [443, \"400-500\"]", "overlap"),
        (
            "any_of = [443, 80]\nports = [443]",
            "gives ports and any_of",
        ),
        ("any_of = []", "fewer than two alternatives"),
    ] {
        let text = one_requirement(&format!("{body}\n{src}"));
        let d = match Catalog::with_overlay(&[(Path::new("/x.toml"), &text)]) {
            Ok(_) => panic!("{body}: accepted"),
            Err(e) => e.to_string(),
        };
        assert!(d.contains(message), "{body}: {d}");
    }
    // No listener: which alternative a service would listen on is unknown.
    let text = format!("{REQ_HEAD}id = \"a\"\ndirection = \"in\"\nproto = \"tcp\"\npeer = \"proxy\"\npurpose = \"p\"\nlisten = true\nany_of = [443, 80]\n{src}\n");
    let d = overlay_err(&text);
    assert!(
        d.iter()
            .any(|d| d.message.contains("cannot ask for a listener")),
        "{d:?}"
    );
}

#[test]
fn seed_lines_are_required_for_a_seed_document_and_refused_for_another() {
    let text = one_requirement("ports = [443]\nsource = { doc = \"VCC-13.0.1\", section = \"s\" }");
    // The built-in files must give them (a file loaded as built-in here).
    let missing = match Catalog::with_overlay(&[(Path::new("<builtin>/x.toml"), &text)]) {
        Ok(_) => panic!("accepted without lines"),
        Err(e) => e.diagnostics().to_vec(),
    };
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert_eq!(missing[0].kind, DiagnosticKind::MissingKey);
    assert!(missing[0].message.contains("002_402ecc867aa4b243.txt"));
    // An operator's catalog.d file may cite a seed document without them.
    Catalog::with_overlay(&[(Path::new("/etc/portwarden/catalog.d/x.toml"), &text)]).unwrap();
    let stray = overlay_err(&one_requirement(
        "ports = [443]\nsource = { doc = \"VBR-UG-13.1\", section = \"s\", lines = [3] }",
    ));
    assert_eq!(stray.len(), 1, "{stray:?}");
    assert!(stray[0].message.contains("has no seed"), "{stray:?}");
    for bad in ["[0]", "[\"9-3\"]", "[\"x\"]"] {
        let d = overlay_err(&one_requirement(&format!(
            "ports = [443]\nsource = {{ doc = \"VCC-13.0.1\", section = \"s\", lines = {bad} }}"
        )));
        assert!(!d.is_empty(), "{bad}");
    }
    // Lines of a seed document, also in `also`: valid, and resolved.
    let cat = Catalog::with_overlay(&[(
        Path::new("/x.toml"),
        &one_requirement(
            "ports = [443]\nsource = { doc = \"VCC-13.0.1\", section = \"s\", lines = [53, \"60-61\"] }\nalso = [{ doc = \"VBR-UG-13.1\", section = \"t\" }]",
        ),
    )])
    .unwrap();
    let r = &cat.resolve(&["x"], &HostSettings::new()).unwrap()[0];
    assert_eq!(r.source.lines, [53, 60, 61]);
    assert_eq!(r.also.len(), 1);
    assert!(r.also[0].lines.is_empty());
}

/// The resolved requirements of `role` (default settings, or `set`) that
/// match direction, protocol and a port.
fn needing(
    cat: &Catalog,
    role: &str,
    set: &[(&str, SettingValue)],
    dir: Direction,
    proto: Proto,
    port: u16,
) -> Vec<ResolvedRequirement> {
    let mut s = HostSettings::new();
    for (k, v) in set {
        s.set(cat, k, v.clone()).unwrap();
    }
    cat.resolve(&[role], &s)
        .unwrap()
        .into_iter()
        .filter(|r| r.direction == dir && r.proto == proto && r.ports.contains(port))
        .collect()
}

/// Whether some requirement of the list has `peer` as a peer group.
fn any_peer(rs: &[ResolvedRequirement], peer: &str) -> bool {
    rs.iter().any(|r| r.peers.iter().any(|p| p == peer))
}

#[test]
fn the_gaps_of_issue_14_are_closed() {
    use Direction::{In, Out};
    use Proto::{Tcp, Udp};
    let cat = builtin();
    // AHV workers and Veeam Agents reach repositories and gateways; proxies
    // send data to gateways.
    for role in ["veeam-linux-repository", "veeam-linux-gateway"] {
        for port in [6162, 2500] {
            let rs = needing(&cat, role, &[], In, Tcp, port);
            assert!(any_peer(&rs, "ahv_worker"), "{role} {port}");
            assert!(any_peer(&rs, "veeam_agent"), "{role} {port}");
        }
    }
    assert!(any_peer(
        &needing(&cat, "veeam-linux-gateway", &[], In, Tcp, 3000),
        "proxy"
    ));
    // CRL: 443 or 80 for the agent and the tenant backup server, not for
    // the tenant's repository or proxy.
    let cc = [("agent_cloud_connect", SettingValue::Bool(true))];
    for (role, set) in [
        ("veeam-agent-linux", &cc[..]),
        ("veeam-cloud-tenant-backup-server", &[][..]),
    ] {
        let crl = needing(&cat, role, set, Out, Tcp, 80);
        assert_eq!(crl.len(), 1, "{role}");
        let alts: Vec<String> = crl[0].any_of.iter().map(ToString::to_string).collect();
        assert_eq!(alts, ["443", "80"], "{role}");
    }
    assert!(needing(&cat, "veeam-cloud-connect-tenant", &[], Out, Tcp, 80).is_empty());
    assert!(needing(&cat, "veeam-cloud-connect-tenant", &[], Out, Tcp, 443).is_empty());
    for proto in [Tcp, Udp] {
        assert!(any_peer(
            &needing(
                &cat,
                "veeam-cloud-tenant-backup-server",
                &[],
                Out,
                proto,
                6180
            ),
            "cloud_gateway"
        ));
    }
    // CDP: the cloud gateway reaches the provider's CDP proxy on 33032-33033;
    // a CDP proxy's 33032 comes from ESXi only.
    for port in [33032, 33033] {
        assert!(any_peer(
            &needing(&cat, "veeam-cloud-provider-cdp-proxy", &[], In, Tcp, port),
            "cloud_gateway"
        ));
    }
    let from_host = needing(&cat, "veeam-cdp-proxy", &[], In, Tcp, 33032);
    assert!(any_peer(&from_host, "esxi") && !any_peer(&from_host, "cdp_proxy"));
    // The Linux guest in persistent mode: 6162, no 6160.
    let persistent = [("guest_mode", SettingValue::Text("persistent".into()))];
    assert!(!needing(&cat, "veeam-linux-guest", &persistent, In, Tcp, 6162).is_empty());
    assert!(needing(&cat, "veeam-linux-guest", &persistent, In, Tcp, 6160).is_empty());
    // The Linux log shipping server.
    let lss = "veeam-log-shipping-server";
    assert!(any_peer(
        &needing(&cat, lss, &[], In, Tcp, 2500),
        "guest_os"
    ));
    for port in [6162, 2500] {
        let out = needing(&cat, lss, &[], Out, Tcp, port);
        assert!(any_peer(&out, "repository") && any_peer(&out, "gateway"));
    }
    // The backup server's side of 6170, 6182, 6190; the repository's copies
    // to the backup server.
    for (port, peer) in [
        (6170, "mount_server"),
        (6182, "cdp_proxy"),
        (6190, "gateway"),
    ] {
        assert!(any_peer(
            &needing(&cat, "veeam-backup-server", &[], Out, Tcp, port),
            peer
        ));
    }
    assert!(any_peer(
        &needing(&cat, "veeam-linux-repository", &[], Out, Tcp, 2600),
        "backup_server"
    ));
}
