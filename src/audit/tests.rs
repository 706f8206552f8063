//! Audit tests on hand-built exposures, listeners and requirements, with
//! real snapshots (`src/eval/testdata`) or small hand-written ones.

use super::fix::{self, Access, Manager};
use super::region::{self, Rect};
use super::*;
use crate::addrs::{AddrFamily, AddrSet};
use crate::catalog::Catalog;
use crate::config::{FirewallManager, HostConfig};
use crate::eval::{Opening, PolicyRef, RuleRef, Verdict, L4};
use crate::host::{Listener, Process};
use crate::host::{Route, Routes};
use crate::ports::{PortRange, PortSet};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::OnceLock;

fn catalog() -> &'static Catalog {
    static CAT: OnceLock<Catalog> = OnceLock::new();
    CAT.get_or_init(|| Catalog::builtin().expect("builtin catalog"))
}

use crate::eval::testkit::snapshot as testdata;

/// The host side of the test topology, routing all of 10/8 to the private
/// side and everything else (both families) to the public side.
fn topology() -> Routes {
    let mut r = crate::eval::testkit::topology();
    r.routes = vec![
        Route::via("10.0.0.0/8", "pw-priv"),
        Route::via("0.0.0.0/0", "pw-pub"),
        Route::via("::/0", "pw-pub"),
    ];
    r
}

/// Every non-loopback (interface, local address) of the topology, link-local excepted.
const LOCAL: &[(&str, &str)] = &[
    ("pw-pub", "192.0.2.1"),
    ("pw-pub", "2001:db8:1::1"),
    ("pw-priv", "10.99.0.1"),
    ("pw-priv", "fd00:99::1"),
];

fn config(text: &str) -> HostConfig {
    HostConfig::parse(Path::new("test.toml"), text, catalog())
        .unwrap_or_else(|e| panic!("{e}"))
        .0
}

fn rule_ref(family: Family, table: &str, chain: &str, handle: u64) -> DecidedBy {
    DecidedBy::Rule(RuleRef {
        family,
        table: table.into(),
        chain: chain.into(),
        handle,
    })
}

fn policy_ref(family: Family, table: &str, chain: &str, policy: Policy) -> DecidedBy {
    DecidedBy::Policy(PolicyRef {
        family,
        table: table.into(),
        chain: chain.into(),
        policy,
    })
}

fn range(a: u16, b: u16) -> PortRange {
    PortRange::new(a, b).unwrap()
}

/// An accepting opening on (iif, to) for sources.
fn opening(
    iif: &str,
    to: &str,
    proto: L4,
    ports: PortRange,
    sources: &[&str],
    by: Option<DecidedBy>,
) -> Opening {
    let to: IpAddr = to.parse().unwrap();
    let fam = region::family_of(to);
    let nets: Vec<IpNet> = sources.iter().map(|s| s.parse().unwrap()).collect();
    Opening {
        family: fam,
        proto,
        iif: iif.into(),
        to: vec![to],
        ports,
        sports: PortRange::ALL,
        sources: AddrSet::from_prefixes(fam, nets),
        verdict: Verdict::Accept,
        decided_by: by,
        reason: None,
        time_dependent: false,
    }
}

/// The same opening on every local address (sources of the matching family).
fn everywhere(proto: L4, ports: PortRange, by: &DecidedBy) -> Vec<Opening> {
    LOCAL
        .iter()
        .map(|(i, a)| opening(i, a, proto, ports, &["0.0.0.0/0", "::/0"], Some(by.clone())))
        .collect()
}

fn listener(proto: L4, addr: &str, port: u16, command: &str) -> Listener {
    Listener {
        proto,
        addr: addr.parse().unwrap(),
        port,
        v6only: false,
        dev: None,
        uid: 0,
        inode: u64::from(port),
        cgroup_id: None,
        cgroup: None,
        unit: Some(format!("{command}.service")),
        unit_user: None,
        process: Some(Process {
            pid: 100 + u32::from(port),
            command: command.into(),
            unit: Some(format!("{command}.service")),
        }),
    }
}

struct Case {
    snapshot: Snapshot,
    routes: Routes,
    exposure: Exposure,
    listeners: Vec<Listener>,
    config: HostConfig,
}

impl Case {
    fn new(snapshot: Snapshot, config_text: &str) -> Case {
        Case {
            snapshot,
            routes: topology(),
            exposure: Exposure {
                notes: Vec::new(),
                openings: Vec::new(),
                alike: Vec::new(),
                classes: Vec::new(),
            },
            listeners: Vec::new(),
            config: config(config_text),
        }
    }

    fn run(&self) -> Report {
        let reqs = catalog()
            .resolve(&self.config.roles, &self.config.settings)
            .unwrap();
        let ev = Evaluator::new(&self.snapshot, self.routes.clone()).without_routing_checks();
        audit(&AuditInput {
            snapshot: &self.snapshot,
            evaluator: &ev,
            exposure: &self.exposure,
            listeners: &self.listeners,
            requirements: &reqs,
            config: &self.config,
            proofs: Proofs::Budgeted,
        })
    }
}

fn of_kind(r: &Report, k: FindingKind) -> Vec<&Finding> {
    r.findings.iter().filter(|f| f.kind == k).collect()
}

fn ports(f: &Finding) -> String {
    f.ports.to_string()
}

fn peers(f: &Finding) -> Vec<String> {
    f.peers.iter().map(ToString::to_string).collect()
}

// ---- hand-written rulesets, in the dump's JSON form ----

fn hex(b: &[u8]) -> String {
    let mut s = String::from("0x");
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

fn l4proto(p: u8) -> Vec<Value> {
    vec![
        json!({"type": "meta", "key": "l4proto", "dreg": 1}),
        json!({"type": "cmp", "sreg": 1, "op": "eq", "data": hex(&[p])}),
    ]
}

fn dport_range(a: u16, b: u16) -> Vec<Value> {
    vec![
        json!({"type": "payload", "base": "transport", "offset": 2, "len": 2, "dreg": 1}),
        json!({"type": "range", "sreg": 1, "op": "eq", "from": hex(&a.to_be_bytes()), "to": hex(&b.to_be_bytes())}),
    ]
}

fn dport(p: u16) -> Vec<Value> {
    vec![
        json!({"type": "payload", "base": "transport", "offset": 2, "len": 2, "dreg": 1}),
        json!({"type": "cmp", "sreg": 1, "op": "eq", "data": hex(&p.to_be_bytes())}),
    ]
}

fn ct_established() -> Vec<Value> {
    vec![
        json!({"type": "ct", "key": "state", "dreg": 1}),
        json!({"type": "bitwise", "sreg": 1, "dreg": 1, "len": 4, "op": "bool", "mask": "0x06000000", "xor": "0x00000000"}),
        json!({"type": "cmp", "sreg": 1, "op": "neq", "data": "0x00000000"}),
    ]
}

fn verdict(v: Value) -> Value {
    json!({"type": "immediate", "dreg": 0, "verdict": v})
}

fn reject() -> Value {
    json!({"type": "reject", "kind": 1, "code": 0})
}

fn chain(name: &str, hook: Option<(&str, &str)>, rules: Vec<Vec<Value>>) -> Value {
    let rules: Vec<Value> = rules
        .into_iter()
        .enumerate()
        .map(|(i, exprs)| json!({"handle": 10 + i, "position": i, "exprs": exprs}))
        .collect();
    let mut c = json!({"name": name, "handle": 1, "rules": rules});
    if let Some((hook, policy)) = hook {
        c["type"] = json!("filter");
        c["hook"] = json!(hook);
        c["priority"] = json!(0);
        c["policy"] = json!(policy);
    }
    c
}

fn snap(chains: Vec<Value>) -> Snapshot {
    serde_json::from_value(json!({"generation": 7, "tables": [
        {"family": "inet", "name": "filter", "handle": 1, "flags": 0, "chains": chains, "sets": []}
    ]}))
    .expect("snapshot JSON")
}

fn cat(parts: Vec<Vec<Value>>) -> Vec<Value> {
    parts.into_iter().flatten().collect()
}

// ---- missing-opening ----

const MOVER: &str =
    "roles = [\"veeam-data-mover\"]\n[peers]\nbackup_server = [\"10.99.0.2\", \"192.0.2.2\"]\n";

/// The exposure of tests/fixtures/backup-host-basic.nft: 22 everywhere,
/// the Veeam ports on pw-priv only.
fn basic_exposure() -> Exposure {
    let t = |h| Some(rule_ref(Family::Inet, "filter", "input", h));
    let mut openings = Vec::new();
    for (i, a) in LOCAL {
        let all: &[&str] = &["0.0.0.0/0", "::/0"];
        openings.push(opening(i, a, L4::Tcp, PortRange::single(22), all, t(12)));
        if *i == "pw-priv" {
            for r in [
                range(2500, 3300),
                PortRange::single(6160),
                PortRange::single(6162),
            ] {
                openings.push(opening(i, a, L4::Tcp, r, all, t(13)));
            }
        }
    }
    Exposure {
        openings,
        alike: Vec::new(),
        classes: Vec::new(),
        notes: Vec::new(),
    }
}

#[test]
fn missing_openings_name_exact_pieces_and_the_refusing_rule() {
    let mut case = Case::new(testdata("backup-host-basic"), MOVER);
    case.exposure = basic_exposure();
    let r = case.run();
    let missing = of_kind(&r, FindingKind::MissingOpening);
    // 6160 and 6162 are refused on pw-pub by `meta l4proto tcp reject with
    // tcp reset` (handle 16), for the backup server address routed there
    // (10.99.0.2 is routed through pw-priv, where they are accepted).
    assert_eq!(missing.len(), 2, "{}", r.to_json());
    for f in &missing {
        assert_eq!(f.interfaces, ["pw-pub"]);
        assert_eq!(peers(f), ["192.0.2.2/32"]);
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.role.as_deref(), Some("veeam-data-mover"));
        match &f.evidence[0] {
            Evidence::Rule { handle, text, .. } => {
                assert_eq!(*handle, 16);
                assert_eq!(text, "meta l4proto tcp reject with tcp reset");
            }
            other => panic!("{other:?}"),
        }
        let fix = f.fix.as_ref().unwrap();
        assert_eq!(
            fix.nft().unwrap_or_else(|| panic!("{fix:?}")),
            format!(
                "nft insert rule inet filter input handle 16 'iifname \"pw-pub\" ip saddr 192.0.2.2/32 tcp dport {} accept'",
                ports(f)
            )
        );
        assert!(matches!(
            fix,
            Fix::Proven {
                firewalld: None,
                ufw: None,
                ..
            }
        ));
        // Only the IPv4 address of pw-pub: the peers are IPv4 only.
        assert_eq!(f.pieces.len(), 1);
        assert_eq!(f.pieces[0].to, ["192.0.2.1".parse::<IpAddr>().unwrap()]);
    }
    let ports: Vec<String> = missing.iter().map(|f| ports(f)).collect();
    assert_eq!(ports, ["6160", "6162"]);
    // The data range is partly open (pw-priv): partial_ok makes it `partial-opening`, severity ok.
    let partial = of_kind(&r, FindingKind::PartialOpening);
    assert_eq!(partial.len(), 1);
    assert_eq!(partial[0].severity, Severity::Ok);
    assert_eq!(self::ports(partial[0]), "2500-3300");
    assert_eq!(partial[0].interfaces, ["pw-pub"]);
    // ssh (22) is accepted everywhere: no finding for it.
    assert!(!r
        .findings
        .iter()
        .any(|f| f.requirement.as_deref() == Some("ssh") && f.kind != FindingKind::NotListening));
}

#[test]
fn missing_pieces_are_grouped_by_what_refuses_them() {
    // policy drop; 3000-3100 rejected by a rule; nothing accepted at all.
    let s = snap(vec![chain(
        "input",
        Some(("input", "drop")),
        vec![
            cat(vec![ct_established(), vec![verdict(json!("accept"))]]),
            cat(vec![l4proto(6), dport_range(3000, 3100), vec![reject()]]),
        ],
    )]);
    let case = Case::new(
        s,
        "roles = [\"veeam-data-mover\"]\nprivate_interfaces = [\"pw-priv\"]\n[peers]\nbackup_server = [\"10.99.0.0/24\"]\n",
    );
    let r = case.run();
    let data: Vec<&Finding> = of_kind(&r, FindingKind::MissingOpening)
        .into_iter()
        .filter(|f| f.requirement.as_deref() == Some("data"))
        .collect();
    assert_eq!(data.len(), 2, "{}", r.to_json());
    let by_policy = data
        .iter()
        .find(|f| matches!(f.evidence[0], Evidence::Policy { .. }))
        .unwrap();
    let by_rule = data
        .iter()
        .find(|f| matches!(f.evidence[0], Evidence::Rule { .. }))
        .unwrap();
    assert_eq!(ports(by_policy), "2500-2999,3101-3300");
    assert_eq!(ports(by_rule), "3000-3100");
    // 10.99.0.0/24 is routed through pw-priv: checked there only.
    assert_eq!(by_policy.interfaces, ["pw-priv"]);
    assert_eq!(
        candidate(by_policy),
        "nft add rule inet filter input 'iifname \"pw-priv\" ip saddr 10.99.0.0/24 tcp dport { 2500-2999, 3101-3300 } accept'"
    );
    assert_eq!(
        candidate(by_rule),
        "nft insert rule inet filter input handle 11 'iifname \"pw-priv\" ip saddr 10.99.0.0/24 tcp dport 3000-3100 accept'"
    );
    assert_ne!(by_policy.id, by_rule.id);
}

#[test]
fn unbound_peer_group_means_any_source_and_empty_group_needs_nothing() {
    let s = snap(vec![chain("input", Some(("input", "drop")), vec![])]);
    // backup_server unbound: any source, both families.
    let r = Case::new(s.clone(), "roles = [\"veeam-data-mover\"]\n").run();
    let transport = r
        .findings
        .iter()
        .find(|f| {
            f.kind == FindingKind::MissingOpening && f.requirement.as_deref() == Some("transport")
        })
        .unwrap();
    // Any source, each checked on the interface it is routed through:
    // 10/8 on pw-priv, the rest on pw-pub (the default route).
    assert_eq!(peers(transport), ["0.0.0.0/0", "::/0"]);
    assert_eq!(transport.pieces.len(), 4);
    let on = |i: &str, v4: bool| {
        transport
            .pieces
            .iter()
            .find(|p| p.interfaces == [i] && p.to[0].is_ipv4() == v4)
            .unwrap()
            .peers
            .clone()
    };
    assert_eq!(
        on("pw-priv", true),
        ["10.0.0.0/8".parse::<IpNet>().unwrap()]
    );
    assert_eq!(
        on("pw-priv", false),
        ["fd00:99::/64".parse::<IpNet>().unwrap()]
    );
    assert!(!on("pw-pub", true)
        .iter()
        .any(|n| n.contains(&"10.1.1.1".parse::<IpAddr>().unwrap())));
    assert_eq!(on("pw-pub", true).len(), 8, "everything but 10/8");
    // Each interface's share exactly, in a few words.
    assert_eq!(
        candidate(transport),
        "nft add rule inet filter input 'iifname \"pw-pub\" ip saddr != 10.0.0.0/8 tcp dport 6162 accept'\n\
         nft add rule inet filter input 'iifname \"pw-priv\" ip saddr 10.0.0.0/8 tcp dport 6162 accept'\n\
         nft add rule inet filter input 'iifname \"pw-pub\" ip6 saddr != fd00:99::/64 tcp dport 6162 accept'\n\
         nft add rule inet filter input 'iifname \"pw-priv\" ip6 saddr fd00:99::/64 tcp dport 6162 accept'"
    );
    // Bound to []: no opening needed, no finding of any kind for it.
    let r = Case::new(
        s,
        "roles = [\"veeam-data-mover\"]\n[peers]\nbackup_server = []\n",
    )
    .run();
    assert!(r.findings.is_empty(), "{}", r.to_json());
}

#[test]
fn private_requirements_are_checked_on_private_interfaces_only() {
    let s = snap(vec![chain("input", Some(("input", "drop")), vec![])]);
    let mut case = Case::new(
        s,
        "roles = [\"evault-agent\"]\nprivate_interfaces = [\"pw-priv\"]\n[peers]\nevault_management = [\"10.0.0.0/8\"]\n",
    );
    case.listeners = vec![listener(L4::Tcp, "0.0.0.0", 2548, "VVAgent")];
    let r = case.run();
    let m = of_kind(&r, FindingKind::MissingOpening);
    assert_eq!(m.len(), 1, "{}", r.to_json());
    assert_eq!(m[0].interfaces, ["pw-priv"]);
    assert_eq!(ports(m[0]), "2548");
    assert_eq!(
        candidate(m[0]),
        "nft add rule inet filter input 'iifname \"pw-priv\" ip saddr 10.0.0.0/8 tcp dport 2548 accept'"
    );
    // An opening for it on the public interface is excess.
    case.exposure.openings = vec![
        opening(
            "pw-pub",
            "192.0.2.1",
            L4::Tcp,
            PortRange::single(2548),
            &["10.0.0.0/8"],
            Some(rule_ref(Family::Inet, "filter", "input", 10)),
        ),
        opening(
            "pw-priv",
            "10.99.0.1",
            L4::Tcp,
            PortRange::single(2548),
            &["10.0.0.0/8"],
            Some(rule_ref(Family::Inet, "filter", "input", 10)),
        ),
    ];
    let r = case.run();
    assert!(of_kind(&r, FindingKind::MissingOpening).is_empty());
    let x = of_kind(&r, FindingKind::ExcessOpening);
    assert_eq!(x.len(), 1);
    assert_eq!(x[0].interfaces, ["pw-pub"]);
    // evault-agent requires 2548 (elsewhere): the wording says so.
    assert!(
        x[0].summary
            .contains("more sources than evault-agent needs")
            && !x[0].summary.contains("no role requires"),
        "{}",
        x[0].summary
    );
    // The rule also accepts what is wanted (on pw-priv): narrow it, do not delete it.
    assert!(candidate(x[0]).starts_with("nft insert rule inet filter input handle 10 "));
}

#[test]
fn legacy_data_range_setting_widens_the_requirement() {
    let s = snap(vec![chain("input", Some(("input", "drop")), vec![])]);
    let r = Case::new(
        s,
        "roles = [\"veeam-data-mover\"]\n[settings]\nveeam_data_range = \"legacy\"\n[peers]\nbackup_server = [\"10.99.0.2\"]\n",
    )
    .run();
    let data = r
        .findings
        .iter()
        .find(|f| f.requirement.as_deref() == Some("data"))
        .unwrap();
    assert_eq!(ports(data), "2500-5000");
}

// ---- excess-opening ----

fn open_snapshot() -> Snapshot {
    snap(vec![chain("input", Some(("input", "accept")), vec![])])
}

#[test]
fn default_accept_host_is_one_excess_finding_per_protocol() {
    let policy = policy_ref(Family::Inet, "filter", "input", Policy::Accept);
    let mut case = Case::new(
        open_snapshot(),
        "roles = [\"veeam-data-mover\"]\n[peers]\nbackup_server = [\"10.0.0.10\"]\n",
    );
    case.exposure.openings = [L4::Tcp, L4::Udp]
        .into_iter()
        .flat_map(|p| everywhere(p, PortRange::ALL, &policy))
        .collect();
    let r = case.run();
    let x = of_kind(&r, FindingKind::ExcessOpening);
    assert_eq!(x.len(), 2, "{}", r.to_json());
    for f in &x {
        assert_eq!(f.ports.ranges(), [PortRange::ALL]);
        assert_eq!(peers(f), ["0.0.0.0/0", "::/0"]);
        assert_eq!(f.interfaces, ["pw-priv", "pw-pub"]);
        assert_eq!(f.role, None);
        assert_eq!(f.severity, Severity::Warning);
        assert!(matches!(
            f.evidence[0],
            Evidence::Policy {
                policy: Policy::Accept,
                ..
            }
        ));
    }
    let json: Value = serde_json::from_str(&r.to_json()).unwrap();
    let tcp = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "excess-opening" && f["proto"] == "tcp")
        .unwrap();
    assert_eq!(tcp["ports"], json!([[0, 65535]]));
    // The drop rules keep what is required (from 10.0.0.10) and loopback untouched.
    let nft = &candidate(x.iter().find(|f| f.proto == Proto::Tcp).unwrap());
    assert!(nft.contains("nft add rule inet filter input 'iifname { \"pw-priv\", \"pw-pub\" } ip saddr != 10.0.0.10/32 tcp dport { 22, 2500-3300, 6160, 6162 } drop'"), "{nft}");
    assert!(
        nft.contains(
            "meta nfproto ipv4 tcp dport { 0-21, 23-2499, 3301-6159, 6161, 6163-65535 } drop"
        ),
        "{nft}"
    );
    assert!(
        nft.contains("meta nfproto ipv6 tcp dport 0-65535 drop"),
        "{nft}"
    );
    // Wanted traffic is not excess.
    assert!(of_kind(&r, FindingKind::MissingOpening).is_empty());
}

#[test]
fn allowlisted_openings_are_not_excess() {
    let by = rule_ref(Family::Inet, "filter", "input", 20);
    let mut case = Case::new(
        open_snapshot(),
        "roles = [\"evault-agent\"]\nprivate_interfaces = [\"pw-priv\"]\n[peers]\nevault_management = [\"10.0.0.0/8\"]\n\n[[allow]]\nproto = \"tcp\"\nports = [9100]\nfrom = [\"10.0.5.0/24\"]\ninterfaces = [\"pw-priv\"]\ncomment = \"node exporter\"\n",
    );
    case.exposure.openings = vec![
        opening(
            "pw-priv",
            "10.99.0.1",
            L4::Tcp,
            PortRange::single(9100),
            &["10.0.5.0/24"],
            Some(by.clone()),
        ),
        opening(
            "pw-pub",
            "192.0.2.1",
            L4::Tcp,
            PortRange::single(9100),
            &["10.0.5.0/24"],
            Some(by.clone()),
        ),
    ];
    let r = case.run();
    let x = of_kind(&r, FindingKind::ExcessOpening);
    assert_eq!(x.len(), 1, "{}", r.to_json());
    assert_eq!(x[0].interfaces, ["pw-pub"]);
    // Narrow (the rule also accepts the allowed part), never delete.
    assert_eq!(
        candidate(x[0]),
        "nft insert rule inet filter input handle 20 'iifname \"pw-pub\" ip saddr 10.0.5.0/24 tcp dport 9100 drop'"
    );
    // Allowed everywhere: nothing.
    case.exposure.openings.truncate(1);
    let r = case.run();
    assert!(
        of_kind(&r, FindingKind::ExcessOpening).is_empty(),
        "{}",
        r.to_json()
    );
}

#[test]
fn a_rule_that_accepts_only_excess_is_deleted() {
    let by = rule_ref(Family::Inet, "filter", "input", 21);
    let mut case = Case::new(open_snapshot(), MOVER);
    case.exposure.openings = vec![
        opening(
            "pw-pub",
            "192.0.2.1",
            L4::Tcp,
            PortRange::single(8080),
            &["0.0.0.0/0"],
            Some(by.clone()),
        ),
        opening(
            "pw-priv",
            "10.99.0.1",
            L4::Tcp,
            PortRange::single(8080),
            &["0.0.0.0/0"],
            Some(by),
        ),
    ];
    let r = case.run();
    let x = of_kind(&r, FindingKind::ExcessOpening);
    assert_eq!(x.len(), 1, "merged across interfaces: {}", r.to_json());
    assert_eq!(x[0].interfaces, ["pw-priv", "pw-pub"]);
    assert_eq!(x[0].pieces.len(), 2);
    assert_eq!(
        candidate(x[0]),
        "nft delete rule inet filter input handle 21"
    );
}

// ---- exposed-listener and not-listening ----

#[test]
fn exposed_listeners_are_reported_with_their_process() {
    let policy = policy_ref(Family::Inet, "filter", "input", Policy::Accept);
    let mut case = Case::new(
        open_snapshot(),
        "roles = [\"evault-agent\"]\nprivate_interfaces = [\"pw-priv\"]\n[peers]\nevault_management = [\"10.0.0.0/8\"]\n\n[[allow]]\nproto = \"tcp\"\nports = [9100]\ncomment = \"node exporter\"\n",
    );
    case.exposure.openings = everywhere(L4::Tcp, PortRange::ALL, &policy);
    let mut v6only = listener(L4::Tcp, "::", 22, "sshd");
    v6only.v6only = true;
    case.listeners = vec![
        listener(L4::Tcp, "0.0.0.0", 22, "sshd"),
        v6only,
        listener(L4::Tcp, "127.0.0.1", 631, "cupsd"),
        listener(L4::Tcp, "0.0.0.0", 9100, "node_exporter"),
        listener(L4::Tcp, "0.0.0.0", 2548, "VVAgent"),
        listener(L4::Udp, "0.0.0.0", 5353, "avahi"),
    ];
    let r = case.run();
    let x = of_kind(&r, FindingKind::ExposedListener);
    let got: Vec<String> = x.iter().map(|f| ports(f)).collect();
    // 631 is loopback only, 9100 allowlisted, avahi's UDP port not accepted;
    // 2548 is wanted from 10/8 on pw-priv, and open to everything else on
    // both interfaces: more than the role needs, in the catalog's words.
    assert_eq!(got, ["22", "2548"], "{}", r.to_json());
    assert_eq!(x[1].interfaces, ["pw-priv", "pw-pub"]);
    assert!(
        x[1].summary
            .contains("open to more sources than evault-agent needs"),
        "{}",
        x[1].summary
    );
    assert!(!x[1].summary.contains("no role"), "{}", x[1].summary);
    assert_eq!(x[1].severity, Severity::Critical);
    // The pw-priv part is everything but what the role wants there.
    let priv4 = x[1]
        .pieces
        .iter()
        .find(|p| p.interfaces == ["pw-priv"] && p.to[0].is_ipv4())
        .unwrap();
    assert!(!priv4
        .peers
        .iter()
        .any(|n| n.contains(&"10.1.2.3".parse::<IpAddr>().unwrap())));
    assert!(priv4
        .peers
        .iter()
        .any(|n| n.contains(&"11.0.0.1".parse::<IpAddr>().unwrap())));
    let f = x[0];
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(peers(f), ["0.0.0.0/0", "::/0"]);
    assert_eq!(f.interfaces, ["pw-priv", "pw-pub"]);
    let listeners: Vec<&Evidence> = f
        .evidence
        .iter()
        .filter(|e| matches!(e, Evidence::Listener { .. }))
        .collect();
    assert_eq!(listeners.len(), 2);
    assert!(
        listeners[0].line().contains("sshd (pid 122, sshd.service)"),
        "{}",
        listeners[0].line()
    );
    assert!(
        f.summary.starts_with("sshd listens on tcp 22"),
        "{}",
        f.summary
    );
    assert!(candidate(f).starts_with("nft add rule inet filter input 'iifname"));
}

/// Without the privilege to read /proc/PID/fd no process is known: the
/// socket's unit names the owner, in the summary, the evidence and the
/// journal's PORTWARDEN_UNIT.
#[test]
fn exposed_listeners_without_a_process_are_named_by_their_unit() {
    let policy = policy_ref(Family::Inet, "filter", "input", Policy::Accept);
    let mut case = Case::new(
        open_snapshot(),
        "roles = [\"evault-agent\"]\nprivate_interfaces = [\"pw-priv\"]\n[peers]\nevault_management = [\"10.0.0.0/8\"]\n",
    );
    case.exposure.openings = everywhere(L4::Tcp, PortRange::ALL, &policy);
    let mut by_unit = listener(L4::Tcp, "0.0.0.0", 8080, "java");
    by_unit.process = None;
    by_unit.unit = Some("app.service".into());
    by_unit.unit_user = Some(1000);
    let mut unknown = listener(L4::Tcp, "0.0.0.0", 8081, "x");
    unknown.process = None;
    unknown.unit = None;
    case.listeners = vec![by_unit, unknown];
    let r = case.run();
    let x = of_kind(&r, FindingKind::ExposedListener);
    assert_eq!(x.len(), 2, "{}", r.to_json());
    let (f, g) = (x[0], x[1]);
    assert!(
        f.summary.starts_with("app.service listens on tcp 8080"),
        "{}",
        f.summary
    );
    let ev = f
        .evidence
        .iter()
        .find(|e| matches!(e, Evidence::Listener { .. }))
        .unwrap();
    assert!(
        ev.line()
            .ends_with("listened on by app.service of user 1000"),
        "{}",
        ev.line()
    );
    let json = serde_json::to_value(ev).unwrap();
    assert_eq!(json["unit"], "app.service", "{json}");
    assert_eq!(json["unit_user"], 1000, "{json}");
    assert!(json["process"].is_null(), "{json}");
    assert_eq!(
        crate::render::journal::FindingFields::of(f).unit,
        "app.service"
    );
    // Neither known: as before.
    assert!(
        g.summary.starts_with("a process listens on tcp 8081"),
        "{}",
        g.summary
    );
    assert_eq!(crate::render::journal::FindingFields::of(g).unit, "");
    let ev = g
        .evidence
        .iter()
        .find(|e| matches!(e, Evidence::Listener { .. }))
        .unwrap();
    assert!(
        ev.line().ends_with("listened on by unknown process"),
        "{}",
        ev.line()
    );
    let json = serde_json::to_value(ev).unwrap();
    assert!(json.get("unit").is_none(), "{json}");
}

#[test]
fn not_listening_only_where_the_catalog_says_a_service_listens() {
    let s = open_snapshot();
    let mut case = Case::new(s, MOVER);
    case.listeners = vec![
        listener(L4::Tcp, "0.0.0.0", 22, "sshd"),
        listener(L4::Tcp, "127.0.0.1", 6162, "veeamtransport"),
    ];
    let r = case.run();
    let n = of_kind(&r, FindingKind::NotListening);
    let got: Vec<String> = n.iter().map(|f| ports(f)).collect();
    // 6160 and 6162 (loopback only does not count); not the data range (listen = false), not 22.
    assert_eq!(got, ["6160", "6162"], "{}", r.to_json());
    assert!(n
        .iter()
        .all(|f| f.severity == Severity::Warning && f.fix.is_none()));
}

// ---- outbound-blocked ----

#[test]
fn outbound_blocked_by_an_output_policy_and_notes_for_what_is_not_evaluated() {
    // The sending socket's owner is not known: whether 8087 is accepted
    // cannot be decided.
    let skuid = vec![
        json!({"type": "meta", "key": "skuid", "dreg": 1}),
        json!({"type": "cmp", "sreg": 1, "op": "eq", "data": hex(&[0, 0, 0, 0])}),
    ];
    let s = snap(vec![
        chain("input", Some(("input", "accept")), vec![]),
        chain(
            "output",
            Some(("output", "drop")),
            vec![
                cat(vec![ct_established(), vec![verdict(json!("accept"))]]),
                cat(vec![l4proto(6), dport(443), vec![verdict(json!("accept"))]]),
                cat(vec![
                    l4proto(6),
                    dport(8087),
                    skuid,
                    vec![verdict(json!("accept"))],
                ]),
                vec![verdict(json!({"jump": "extra"}))],
            ],
        ),
        chain(
            "extra",
            None,
            vec![
                cat(vec![
                    l4proto(6),
                    dport(8086),
                    vec![verdict(json!("return"))],
                ]),
                cat(vec![
                    l4proto(6),
                    dport(2546),
                    vec![verdict(json!("accept"))],
                ]),
            ],
        ),
    ]);
    let r = Case::new(
        s,
        "roles = [\"evault-agent\"]\n[peers]\nevault_registration = [\"10.200.86.0/24\"]\nevault_portal = [\"10.200.86.22\"]\n",
    )
    .run();
    let b = of_kind(&r, FindingKind::OutboundBlocked);
    let got: Vec<(String, String)> = b
        .iter()
        .map(|f| (f.requirement.clone().unwrap(), ports(f)))
        .collect();
    // 2546 is accepted in the jumped-to chain; 8086 returns from it and
    // meets the policy; 443 is accepted; 8087 depends on the socket's owner.
    assert_eq!(
        got,
        [("registration".to_string(), "8086".to_string())],
        "{}",
        r.to_json()
    );
    let reg = b[0];
    assert_eq!(reg.direction, Direction::Out);
    assert_eq!(reg.severity, Severity::Critical);
    assert_eq!(peers(reg), ["10.200.86.0/24"]);
    assert!(matches!(
        reg.evidence[0],
        Evidence::Policy {
            policy: Policy::Drop,
            ..
        }
    ));
    assert_eq!(
        candidate(reg),
        "nft add rule inet filter output ip daddr 10.200.86.0/24 tcp dport 8086 accept"
    );
    assert!(
        r.notes.iter().any(|n| n.contains("outbound tcp 8087")
            && n.contains("not verified")
            && n.contains("rule handle 12")
            && n.contains("socket's owner")),
        "{:#?}",
        r.notes
    );
    assert_eq!(
        r.notes.iter().filter(|n| n.contains("outbound")).count(),
        1,
        "{:#?}",
        r.notes
    );
}

#[test]
fn no_output_chain_means_nothing_is_blocked() {
    let s = snap(vec![chain("input", Some(("input", "accept")), vec![])]);
    let r = Case::new(s, "roles = [\"evault-agent\"]\n").run();
    assert!(of_kind(&r, FindingKind::OutboundBlocked).is_empty());
    assert!(
        r.notes.iter().all(|n| !n.contains("outbound")),
        "{:#?}",
        r.notes
    );
    // An output chain with an accept policy and no rules blocks nothing either.
    let r = Case::new(
        testdata("backup-host-basic"),
        "roles = [\"evault-agent\"]\n",
    )
    .run();
    assert!(of_kind(&r, FindingKind::OutboundBlocked).is_empty());
}

#[test]
fn outbound_drop_rule_for_the_port_is_a_finding() {
    let s = snap(vec![chain(
        "output",
        Some(("output", "accept")),
        vec![
            cat(vec![
                l4proto(17),
                dport(2546),
                vec![verdict(json!("accept"))],
            ]),
            cat(vec![l4proto(6), dport_range(2000, 3000), vec![reject()]]),
        ],
    )]);
    let r = Case::new(
        s,
        "roles = [\"evault-agent\"]\n[peers]\nevault_vault = [\"192.0.2.0/24\"]\n",
    )
    .run();
    let b = of_kind(&r, FindingKind::OutboundBlocked);
    assert_eq!(b.len(), 1, "{}", r.to_json());
    assert_eq!(ports(b[0]), "2546");
    assert!(
        matches!(&b[0].evidence[0], Evidence::Rule { handle: 11, text, .. } if text == "tcp dport 2000-3000 reject with tcp reset")
    );
    assert_eq!(
        candidate(b[0]),
        "nft insert rule inet filter output handle 11 ip daddr 192.0.2.0/24 tcp dport 2546 accept"
    );
}

#[test]
fn outbound_findings_name_exact_port_ranges_and_peer_prefixes() {
    // 8086 is refused towards 192.0.2.0/24 only, 8087 towards every peer.
    let daddr_192_0_2 = vec![
        json!({"type": "meta", "key": "nfproto", "dreg": 1}),
        json!({"type": "cmp", "sreg": 1, "op": "eq", "data": hex(&[2])}),
        json!({"type": "payload", "base": "network", "offset": 16, "len": 3, "dreg": 1}),
        json!({"type": "cmp", "sreg": 1, "op": "eq", "data": hex(&[192, 0, 2])}),
    ];
    let s = snap(vec![chain(
        "output",
        Some(("output", "accept")),
        vec![
            cat(vec![daddr_192_0_2, l4proto(6), dport(8086), vec![reject()]]),
            cat(vec![l4proto(6), dport(8087), vec![verdict(json!("drop"))]]),
        ],
    )]);
    let r = Case::new(
        s,
        "roles = [\"evault-agent\"]\n[peers]\nevault_registration = [\"10.200.86.0/24\", \"192.0.2.0/24\"]\nevault_vault = [\"192.0.2.0/24\"]\n",
    )
    .run();
    let mut got: Vec<(String, String, Vec<String>, u64)> =
        of_kind(&r, FindingKind::OutboundBlocked)
            .iter()
            .map(|f| {
                let handle = match &f.evidence[0] {
                    Evidence::Rule { handle, .. } => *handle,
                    other => panic!("{other:?}"),
                };
                (f.requirement.clone().unwrap(), ports(f), peers(f), handle)
            })
            .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (
                "registration".to_string(),
                "8086".to_string(),
                vec!["192.0.2.0/24".to_string()],
                10
            ),
            (
                "registration".to_string(),
                "8087".to_string(),
                vec!["10.200.86.0/24".to_string(), "192.0.2.0/24".to_string()],
                11
            ),
        ],
        "{}",
        r.to_json()
    );
    assert!(
        r.notes.iter().all(|n| !n.contains("outbound")),
        "{:#?}",
        r.notes
    );
}

// ---- severities, ids, output ----

#[test]
fn severity_overrides_apply_and_ignore_drops() {
    let policy = policy_ref(Family::Inet, "filter", "input", Policy::Accept);
    let mut case = Case::new(
        open_snapshot(),
        "roles = [\"veeam-data-mover\"]\n[peers]\nbackup_server = [\"10.0.0.10\"]\n[severity]\nexcess-opening = \"critical\"\nnot-listening = \"ignore\"\n",
    );
    case.exposure.openings = everywhere(L4::Tcp, PortRange::ALL, &policy);
    let r = case.run();
    assert!(of_kind(&r, FindingKind::NotListening).is_empty());
    let x = of_kind(&r, FindingKind::ExcessOpening);
    assert_eq!(x.len(), 1);
    assert_eq!(x[0].severity, Severity::Critical);
    assert_eq!(r.exit_code(), 2);
    // Default severities: missing openings are critical; made `ok`, the
    // not-listening warnings remain: exit 1.
    case.snapshot = snap(vec![chain("input", Some(("input", "drop")), vec![])]);
    case.config =
        config("roles = [\"veeam-data-mover\"]\n[peers]\nbackup_server = [\"10.0.0.10\"]\n");
    case.exposure.openings = LOCAL
        .iter()
        .map(|(i, a)| {
            opening(
                i,
                a,
                L4::Tcp,
                PortRange::single(22),
                &["10.0.0.10/32"],
                Some(policy.clone()),
            )
        })
        .collect();
    let r = case.run();
    assert_eq!(r.worst(), Severity::Critical, "{}", r.to_json());
    let mut ok = case.config.clone();
    ok.severity.missing_opening = Severity::Ok;
    case.config = ok;
    let r = case.run();
    assert_eq!(r.exit_code(), 1, "{}", r.to_json());
}

#[test]
fn ids_are_stable_unique_and_independent_of_order() {
    let policy = policy_ref(Family::Inet, "filter", "input", Policy::Accept);
    let mut case = Case::new(testdata("backup-host-basic"), MOVER);
    case.exposure = basic_exposure();
    case.exposure
        .openings
        .extend(everywhere(L4::Udp, PortRange::ALL, &policy));
    case.listeners = vec![listener(L4::Udp, "0.0.0.0", 53, "dnsmasq")];
    let a = case.run();
    case.exposure.openings.reverse();
    case.config.roles.reverse();
    let b = case.run();
    let ids = |r: &Report| {
        let mut v: Vec<String> = r.findings.iter().map(|f| f.id.clone()).collect();
        v.sort();
        v
    };
    assert_eq!(ids(&a), ids(&b));
    assert_eq!(a, b, "same report whatever the input order");
    let v = ids(&a);
    assert!(v.len() >= 5);
    assert!(v
        .iter()
        .all(|id| id.len() == 12 && id.chars().all(|c| c.is_ascii_hexdigit())));
    let mut u = v.clone();
    u.dedup();
    assert_eq!(u, v, "unique");
    // A known value: the id depends on nothing but the finding's identity.
    let f = a
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::MissingOpening && ports(f) == "6162")
        .unwrap();
    assert_eq!(
        f.id,
        format!(
            "{:012x}",
            fnv1a("missing-opening|veeam-data-mover|in|tcp|6162|192.0.2.2/32|pw-pub")
                & 0xffff_ffff_ffff
        )
    );
}

#[test]
fn json_shape() {
    let mut case = Case::new(testdata("backup-host-basic"), MOVER);
    case.exposure = basic_exposure();
    let r = case.run();
    let v: Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(v["generation"], json!(r.generation));
    assert!(v["notes"].is_array());
    let f = &v["findings"][0];
    for key in [
        "id",
        "severity",
        "kind",
        "role",
        "direction",
        "proto",
        "ports",
        "peers",
        "interfaces",
        "evidence",
        "fix",
        "summary",
    ] {
        assert!(f.get(key).is_some(), "{key} missing in {f}");
    }
    assert_eq!(f["severity"], "critical");
    assert_eq!(f["kind"], "missing-opening");
    assert_eq!(f["direction"], "in");
    assert_eq!(f["ports"], json!([[6160, 6160]]));
    assert_eq!(f["evidence"][0]["type"], "rule");
    assert_eq!(f["fix"]["firewalld"], Value::Null);
    assert!(f["fix"]["nft"]
        .as_str()
        .unwrap()
        .starts_with("nft insert rule"));
}

#[test]
fn text_is_grouped_by_role_and_coloured_only_on_request() {
    let policy = policy_ref(Family::Inet, "filter", "input", Policy::Accept);
    let mut case = Case::new(testdata("backup-host-basic"), MOVER);
    case.exposure = basic_exposure();
    case.exposure
        .openings
        .extend(everywhere(L4::Udp, range(5000, 5001), &policy));
    let r = case.run();
    let plain = crate::render::text::render(&r, false);
    assert!(!plain.contains('\x1b'));
    let role = plain.find("\nveeam-data-mover\n").expect(&plain);
    let none = plain.find("\nnot required by any role\n").expect(&plain);
    assert!(role < none);
    assert!(
        plain.contains("CRITICAL  missing-opening transport: tcp 6162"),
        "{plain}"
    );
    assert!(
        plain.contains("fix (nft): nft insert rule inet filter input handle 16"),
        "{plain}"
    );
    let coloured = crate::render::text::render(&r, true);
    assert!(coloured.contains("\x1b[1;31mCRITICAL\x1b[0m"));
}

// ---- fixes per manager ----

#[test]
fn manager_is_detected_from_the_snapshot() {
    assert_eq!(
        Manager::detect(&testdata("firewalld-zones"), FirewallManager::Auto),
        Manager::Firewalld
    );
    assert_eq!(
        Manager::detect(&testdata("ufw-host"), FirewallManager::Auto),
        Manager::Ufw
    );
    assert_eq!(
        Manager::detect(&testdata("backup-host-basic"), FirewallManager::Auto),
        Manager::Nft
    );
    assert_eq!(
        Manager::detect(&testdata("backup-host-basic"), FirewallManager::Ufw),
        Manager::Ufw
    );
}

fn access(
    ifaces: &[&str],
    sources: Option<&[&str]>,
    fam: AddrFamily,
    ports: &[(u16, u16)],
) -> Access {
    Access {
        ifaces: ifaces.iter().map(|s| s.to_string()).collect(),
        sources: sources.map(|s| AddrSet::from_prefixes(fam, s.iter().map(|p| p.parse().unwrap()))),
        ports: PortSet::from_ranges(ports.iter().map(|&(a, b)| range(a, b))),
    }
}

/// The nft text of a finding's fix: the proven one, or the candidate that
/// could not be proven (unit cases with hand-made exposures cannot be
/// proven: the copy's exposure is computed, the original's is made up).
fn candidate(f: &Finding) -> String {
    match f.fix.as_ref().expect("a fix") {
        Fix::Proven { nft, .. } => nft.clone(),
        Fix::NoSafeFix { reason, .. } => {
            let at = reason.find("(the candidate was: ").expect("a candidate") + 20;
            reason[at..reason.len() - 1].replace("; ", "\n")
        }
    }
}

/// The texts of a candidate fix: nft, firewalld, ufw.
fn texts(p: Result<fix::Plan, String>) -> (String, Option<String>, Option<String>) {
    match p.expect("a candidate").proven() {
        Fix::Proven {
            nft,
            firewalld,
            ufw,
            ..
        } => (nft, firewalld, ufw),
        other => panic!("{other:?}"),
    }
}

fn first(p: Result<Vec<fix::Plan>, String>) -> Result<fix::Plan, String> {
    p.map(|v| v.into_iter().next().expect("a candidate"))
}

#[test]
fn fix_text_for_nft_firewalld_and_ufw() {
    let blocker = rule_ref(Family::Inet, "firewalld", "filter_IN_public", 99);
    let a = access(
        &["pw-priv"],
        Some(&["10.0.0.0/8"]),
        AddrFamily::V4,
        &[(2548, 2548), (2500, 2509)],
    );
    let (nft, fw, ufw) = texts(fix::open_inbound(
        Manager::Firewalld,
        Some(&blocker),
        Proto::Tcp,
        std::slice::from_ref(&a),
        true,
    ));
    assert_eq!(
        nft,
        "nft insert rule inet firewalld filter_IN_public handle 99 'iifname \"pw-priv\" ip saddr 10.0.0.0/8 tcp dport { 2500-2509, 2548 } accept'"
    );
    let fw = fw.unwrap();
    assert_eq!(
        fw.lines().next().unwrap(),
        "firewall-cmd --permanent --zone=\"$(firewall-cmd --get-zone-of-interface=pw-priv || firewall-cmd --get-default-zone)\" --add-rich-rule='rule family=\"ipv4\" source address=\"10.0.0.0/8\" port port=\"2500-2509\" protocol=\"tcp\" accept'"
    );
    assert_eq!(fw.lines().last().unwrap(), "firewall-cmd --reload");
    assert_eq!(ufw, None);

    let (_, _, ufw) = texts(fix::open_inbound(
        Manager::Ufw,
        Some(&blocker),
        Proto::Tcp,
        &[a],
        true,
    ));
    assert_eq!(
        ufw.unwrap(),
        "ufw allow in on pw-priv proto tcp from 10.0.0.0/8 to any port 2500:2509,2548"
    );
    // Any source: firewalld ports.
    let any = access(&["pw-pub"], None, AddrFamily::V4, &[(6162, 6162)]);
    let (_, fw, _) = texts(fix::open_inbound(
        Manager::Firewalld,
        Some(&blocker),
        Proto::Tcp,
        std::slice::from_ref(&any),
        false,
    ));
    assert!(fw.unwrap().contains("--add-port=6162/tcp"));
    let (nft, _, ufw) = texts(fix::open_inbound(
        Manager::Ufw,
        Some(&rule_ref(Family::Ip, "filter", "ufw-user-input", 5)),
        Proto::Tcp,
        &[any],
        false,
    ));
    assert_eq!(
        nft,
        "nft insert rule ip filter ufw-user-input handle 5 tcp dport 6162 accept"
    );
    assert_eq!(
        ufw.unwrap(),
        "ufw prepend allow proto tcp from any to any port 6162"
    );

    // Closing everything but one address.
    let mut except = access(
        &["pw-pub"],
        Some(&["0.0.0.0/0"]),
        AddrFamily::V4,
        &[(22, 22)],
    );
    except.sources = Some(except.sources.unwrap().subtract(&AddrSet::from_prefixes(
        AddrFamily::V4,
        ["10.0.0.10/32".parse().unwrap()],
    )));
    let by = rule_ref(Family::Ip, "filter", "ufw-user-input", 7);
    let (nft, _, ufw) = texts(first(fix::close_inbound(
        Manager::Ufw,
        Some(&by),
        false,
        Proto::Tcp,
        &[except.clone()],
    )));
    assert_eq!(
        nft,
        "nft insert rule ip filter ufw-user-input handle 7 'iifname \"pw-pub\" ip saddr != 10.0.0.10/32 tcp dport 22 drop'"
    );
    assert_eq!(
        ufw.unwrap(),
        "ufw prepend deny in on pw-pub proto tcp from 0.0.0.0/0 to any port 22\nufw prepend allow in on pw-pub proto tcp from 10.0.0.10/32 to any port 22"
    );
    let (_, fw, _) = texts(first(fix::close_inbound(
        Manager::Firewalld,
        Some(&by),
        false,
        Proto::Tcp,
        &[except],
    )));
    assert!(fw.unwrap().contains("--add-rich-rule='rule family=\"ipv4\" source NOT address=\"10.0.0.10/32\" port port=\"22\" protocol=\"tcp\" drop'"));
    // Several exceptions: a firewalld ipset of them.
    let mut two = access(
        &["pw-pub"],
        Some(&["0.0.0.0/0"]),
        AddrFamily::V4,
        &[(22, 22)],
    );
    two.sources = Some(two.sources.unwrap().subtract(&AddrSet::from_prefixes(
        AddrFamily::V4,
        [
            "10.0.0.10/32".parse().unwrap(),
            "10.0.0.20/32".parse().unwrap(),
        ],
    )));
    let (_, fw, _) = texts(first(fix::close_inbound(
        Manager::Firewalld,
        Some(&by),
        false,
        Proto::Tcp,
        &[two],
    )));
    let fw = fw.unwrap();
    let lines: Vec<&str> = fw.lines().collect();
    assert_eq!(lines.len(), 4, "{fw}");
    assert!(
        lines[0].starts_with("firewall-cmd --permanent --new-ipset=pw-")
            && lines[0].ends_with(" --type=hash:net"),
        "{fw}"
    );
    assert!(
        lines[1].starts_with(
            "for e in 10.0.0.10/32 10.0.0.20/32; do firewall-cmd --permanent --ipset=pw-"
        ),
        "{fw}"
    );
    assert!(
        lines[2].contains("rule family=\"ipv4\" source NOT ipset=\"pw-"),
        "{fw}"
    );
    // An IPv6 block is never put in an `ip` table.
    let v6 = access(
        &["pw-pub"],
        Some(&["2001:db8::/32"]),
        AddrFamily::V6,
        &[(22, 22)],
    );
    let p = first(fix::close_inbound(
        Manager::Nft,
        Some(&by),
        false,
        Proto::Tcp,
        &[v6],
    ))
    .unwrap();
    assert!(p.changes.is_empty());
    // A blocklist's worth of prefixes is never written out: counted, the
    // first few named.
    let many: Vec<String> = (0..50_000u32)
        .map(|i| format!("{}/32", std::net::Ipv4Addr::from(0x0b00_0000 + 16 * i)))
        .collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let big = access(&["pw-pub"], Some(&many), AddrFamily::V4, &[(22, 22)]);
    let why = fix::open_inbound(Manager::Nft, Some(&by), Proto::Tcp, &[big], false).unwrap_err();
    assert!(why.contains("50000 address prefixes"), "{why}");
    assert!(why.len() < 400, "{why}");
}

// ---- pieces: rule text and regions ----

#[test]
fn rules_read_as_nft_lists_them() {
    let s = testdata("backup-host-basic");
    let t = &s.tables[0];
    let text = |h: u64| {
        let r = t
            .chain("input")
            .unwrap()
            .rules
            .iter()
            .find(|r| r.handle == h)
            .unwrap();
        crate::snapshot::rule_text(t, r, &|_| None)
    };
    assert_eq!(text(5), "ct state established,related accept");
    assert_eq!(text(6), "ct state invalid counter packets 0 bytes 0 drop");
    assert_eq!(text(9), "icmp type { 3, 8, 11 } accept");
    assert_eq!(
        text(12),
        "tcp dport 22 ct state new limit rate 10/minute burst 5 packets counter packets 0 bytes 0 accept"
    );
    assert_eq!(
        text(13),
        "iifname \"pw-priv\" tcp dport @veeam_tcp counter packets 0 bytes 0 accept"
    );
    assert_eq!(
        text(14),
        "iifname \"pw-priv\" ip saddr 10.99.0.0/24 tcp dport 2548 counter packets 0 bytes 0 accept"
    );
    assert_eq!(text(17), "reject with icmpx admin-prohibited");
}

#[test]
fn uncovered_regions_are_exact() {
    let all4 = AddrSet::all(AddrFamily::V4);
    let net = |s: &str| AddrSet::from_prefixes(AddrFamily::V4, [s.parse().unwrap()]);
    let want = PortSet::from_ranges([range(2500, 3300)]);
    let covers = vec![
        Rect {
            ports: PortSet::from_ranges([range(2500, 2509)]),
            sources: all4.clone(),
        },
        Rect {
            ports: PortSet::from_ranges([range(2400, 2600)]),
            sources: net("10.0.0.0/8"),
        },
    ];
    let got: Vec<(String, Vec<String>)> = region::uncovered(&want, &all4, &covers)
        .into_iter()
        .map(|(r, a)| {
            (
                r.to_string(),
                a.to_prefixes().iter().map(ToString::to_string).collect(),
            )
        })
        .collect();
    let not10: Vec<String> = all4
        .subtract(&net("10.0.0.0/8"))
        .to_prefixes()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        got,
        vec![
            ("2510-2600".to_string(), not10),
            ("2601-3300".to_string(), vec!["0.0.0.0/0".to_string()]),
        ]
    );
    assert!(region::uncovered(&want, &net("10.1.0.0/16"), &covers[1..]).len() == 1);
}

#[test]
fn merged_pieces_share_addresses_exactly() {
    use super::findings::{merge, RawPiece};
    let a: IpAddr = "192.0.2.1".parse().unwrap();
    let b: IpAddr = "192.0.3.1".parse().unwrap();
    let any = AddrSet::all(AddrFamily::V4);
    let piece = |to: Vec<IpAddr>, p: u16| RawPiece {
        iface: "eth0".into(),
        to,
        ports: PortRange::single(p),
        sources: any.clone(),
        decided_by: None,
    };
    // A group and its members: each address keeps exactly its own ports.
    let m = merge(&[piece(vec![a, b], 22), piece(vec![a], 80)]);
    let got: Vec<(Vec<IpAddr>, String)> = m
        .pieces
        .iter()
        .map(|p| (p.to.clone(), p.ports.to_string()))
        .collect();
    assert!(m.pieces.iter().all(|p| p.interfaces == ["eth0"]));
    assert_eq!(
        got,
        [(vec![a], "22,80".to_string()), (vec![b], "22".to_string())]
    );
    // Disjoint lists with the same ports and peers become one piece.
    let m = merge(&[piece(vec![a], 22), piece(vec![b], 22)]);
    assert_eq!(m.pieces.len(), 1);
    assert_eq!(m.pieces[0].to, [a, b]);
    assert_eq!(m.ports.to_string(), "22");
}

#[test]
fn interfaces_seeing_the_same_share_a_piece() {
    use super::findings::{merge, RawPiece};
    let a: IpAddr = "192.0.2.1".parse().unwrap();
    let any = AddrSet::all(AddrFamily::V4);
    let piece = |iface: &str, p: u16| RawPiece {
        iface: iface.into(),
        to: vec![a],
        ports: PortRange::single(p),
        sources: any.clone(),
        decided_by: None,
    };
    let m = merge(&[piece("eth1", 22), piece("eth0", 22), piece("eth2", 80)]);
    let got: Vec<(Vec<String>, String)> = m
        .pieces
        .iter()
        .map(|p| (p.interfaces.clone(), p.ports.to_string()))
        .collect();
    assert_eq!(
        got,
        [
            (
                vec!["eth0".to_string(), "eth1".to_string()],
                "22".to_string()
            ),
            (vec!["eth2".to_string()], "80".to_string())
        ]
    );
    assert_eq!(m.interfaces, ["eth0", "eth1", "eth2"]);
}

#[test]
fn the_streamed_report_is_the_serialised_report() {
    let mut case = Case::new(testdata("backup-host-basic"), MOVER);
    case.exposure = basic_exposure();
    let mut r = case.run();
    r.notes.push("a \"quoted\" note".into());
    assert!(r.findings.len() >= 3, "{}", r.to_json());
    for n in [0, 1, 2, r.findings.len()] {
        let mut part = r.clone();
        part.findings.truncate(n);
        let mut out = Vec::new();
        crate::render::json::write_report(&part, &mut out).unwrap();
        let expect = serde_json::to_string(&part).unwrap() + "\n";
        assert_eq!(String::from_utf8(out).unwrap(), expect);
    }
}

#[test]
fn peers_read_as_prefixes_or_as_any_except() {
    use super::findings::peers_text;
    use super::region::Peers;
    let v4 = |nets: &[&str]| {
        let mut p = Peers::none();
        p.add(&AddrSet::from_prefixes(
            AddrFamily::V4,
            nets.iter().map(|n| n.parse::<IpNet>().unwrap()),
        ));
        p
    };
    assert_eq!(peers_text(&Peers::any()), "any address");
    assert_eq!(peers_text(&v4(&["10.0.0.10/32"])), "10.0.0.10/32");
    let mut most = Peers::none();
    most.add(
        &AddrSet::all(AddrFamily::V4).subtract(&AddrSet::from_prefixes(
            AddrFamily::V4,
            ["10.0.0.0/8".parse::<IpNet>().unwrap()],
        )),
    );
    assert_eq!(peers_text(&most), "any IPv4 address except 10.0.0.0/8");
    assert_eq!(
        peers_text(&v4(&["10.0.0.0/8", "192.0.2.0/24"])),
        "10.0.0.0/8, 192.0.2.0/24"
    );
}

#[test]
fn interfaces_treated_alike_share_their_probes_without_changing_a_finding() {
    // Peers that the rulesets refuse somewhere, on a topology with
    // interfaces no rule names (evaluated as one class).
    let config = "roles = [\"veeam-linux-repository\", \"evault-agent\"]\n[peers]\nbackup_server = [\"10.99.0.2\", \"192.0.2.2\", \"2001:db8:1::2\"]\n";
    let mut shared = 0;
    for fx in [
        "backup-host-basic",
        "firewalld-zones",
        "trap-vmap-fallthrough",
        "veeam-repository",
    ] {
        let mut case = Case::new(testdata(fx), config);
        case.routes = crate::eval::testkit::wide_topology();
        let ev = Evaluator::new(&case.snapshot, case.routes.clone()).without_routing_checks();
        case.exposure = ev.exposure();
        shared += case
            .exposure
            .classes
            .iter()
            .filter(|c| c.interfaces.len() > 1)
            .count();
        let json = |r: &Report| {
            let mut out = Vec::new();
            crate::render::json::write_report(r, &mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        let with_classes = json(&case.run());
        case.exposure.classes.clear();
        let each = json(&case.run());
        assert_eq!(with_classes, each, "{fx}");
        assert!(
            with_classes.contains("missing-opening"),
            "{fx}: nothing was probed"
        );
    }
    assert!(shared >= 8, "{shared} classes of several interfaces");
}

proptest::proptest! {
    /// The shortcut for uniform pieces gives what the general merge gives.
    #[test]
    fn merging_uniform_pieces_takes_a_shortcut_to_the_same_result(
        raw in proptest::collection::vec((0usize..3, 0u16..6, 1u16..3), 1..8),
        uniform in proptest::bool::ANY,
        split_sources in proptest::bool::ANY,
    ) {
        use super::findings::{merge, merge_by_value, RawPiece};
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.3.1".parse().unwrap();
        let any = AddrSet::all(AddrFamily::V4);
        let ten = AddrSet::from_prefixes(AddrFamily::V4, ["10.0.0.0/8".parse().unwrap()]);
        let pieces: Vec<RawPiece> = raw
            .iter()
            .enumerate()
            .map(|(k, &(i, p, n))| RawPiece {
                iface: format!("eth{i}"),
                to: if uniform || k % 2 == 0 { vec![b, a] } else { vec![a] },
                ports: PortRange::new(22 + p, 22 + p + n).unwrap(),
                // Equal sets in distinct allocations, or another set.
                sources: if split_sources && k % 3 == 2 { ten.clone() } else { AddrSet::union_all(AddrFamily::V4, [&any]) },
                decided_by: None,
            })
            .collect();
        let (x, y) = (merge(&pieces), merge_by_value(&pieces));
        proptest::prop_assert_eq!(x.pieces, y.pieces);
        proptest::prop_assert_eq!(x.interfaces, y.interfaces);
        proptest::prop_assert_eq!(x.ports, y.ports);
        proptest::prop_assert_eq!(x.peers.prefixes(), y.peers.prefixes());
    }
}

// ---- where peers are checked, reverse-path filtering, private interfaces ----

const REPOSITORY: &str = r#"roles = ["veeam-linux-repository"]
[peers]
backup_server = ["192.0.2.2"]
mount_server = ["192.0.2.2"]
proxy = ["192.0.2.0/28"]
repository = []
gateway = []
tape_server = []
log_shipping_server = []
guest_os = []
wan_accelerator = []
cloud_restore_helper = []
"#;

#[test]
fn one_hole_needed_by_two_roles_is_one_finding() {
    let s = snap(vec![chain("input", Some(("input", "drop")), vec![])]);
    let r = Case::new(s, REPOSITORY).run();
    let at = |port: &str| -> Vec<&Finding> {
        r.findings
            .iter()
            .filter(|f| {
                matches!(
                    f.kind,
                    FindingKind::MissingOpening | FindingKind::PartialOpening
                ) && ports(f) == port
            })
            .collect()
    };
    // 6162 refused by the policy is one hole, needed by the data mover
    // (backup server 192.0.2.2) and by the repository (mount server and
    // proxies 192.0.2.0/28): one finding naming both.
    let f = at("6162");
    assert_eq!(f.len(), 1, "{}", r.to_json());
    let both = f[0];
    assert_eq!(peers(both), ["192.0.2.0/28"]);
    let names: Vec<String> = both
        .needed_by
        .iter()
        .map(|n| format!("{}/{}", n.role, n.requirement))
        .collect();
    assert_eq!(
        names,
        [
            "veeam-data-mover/transport",
            "veeam-linux-repository/transport-from-components"
        ]
    );
    assert_eq!(both.role.as_deref(), Some("veeam-data-mover"));
    assert!(both
        .summary
        .contains("veeam-linux-repository/transport-from-components"));
    // The fix accepts each address once.
    let fix = &candidate(both);
    assert_eq!(fix.lines().count(), 1, "{fix}");
    assert!(fix.contains("ip saddr 192.0.2.0/28"), "{fix}");
    // The data channels: one hole too (both roles' data requirements).
    let data = at("2500-3300");
    assert_eq!(data.len(), 1, "{}", r.to_json());
    assert_eq!(data[0].needed_by.len(), 2);
    // Nothing listens on 6162: one not-listening finding for both roles.
    let nl: Vec<&Finding> = of_kind(&r, FindingKind::NotListening)
        .into_iter()
        .filter(|f| ports(f) == "6162")
        .collect();
    assert_eq!(nl.len(), 1, "{}", r.to_json());
    assert_eq!(nl[0].needed_by.len(), 2);
    let v = serde_json::to_value(both).unwrap();
    assert_eq!(
        v["needed_by"][1]["requirement"],
        "transport-from-components"
    );
    assert_eq!(v["role"], "veeam-data-mover");
}

#[test]
fn peers_are_checked_where_they_are_routed_or_pinned() {
    let s = snap(vec![chain("input", Some(("input", "drop")), vec![])]);
    // 10.0.0.10 is routed through pw-priv (10/8): checked there only.
    let cfg = "roles = [\"veeam-data-mover\"]\n[peers]\nbackup_server = [\"10.0.0.10\"]\n";
    let r = Case::new(s.clone(), cfg).run();
    let m = of_kind(&r, FindingKind::MissingOpening);
    assert!(!m.is_empty());
    assert!(
        m.iter().all(|f| f.interfaces == ["pw-priv"]),
        "{}",
        r.to_json()
    );
    // Pinned to pw-pub (asymmetric routing): checked there instead.
    let pinned = format!("{cfg}[peer_interfaces]\nbackup_server = [\"pw-pub\"]\n");
    let mut case = Case::new(s, &pinned);
    let r = case.run();
    let m = of_kind(&r, FindingKind::MissingOpening);
    assert!(!m.is_empty());
    assert!(
        m.iter().all(|f| f.interfaces == ["pw-pub"]),
        "{}",
        r.to_json()
    );
    assert!(!r.notes.iter().any(|n| n.contains("reverse-path")));
    // With strict rp_filter on pw-pub the kernel refuses 10.0.0.10 there
    // (its route back is pw-priv): a note, not a missing opening.
    for i in &mut case.routes.interfaces {
        if i.name == "pw-pub" {
            i.rp_filter = crate::host::RpFilter::Strict;
        }
    }
    let r = case.run();
    assert!(
        of_kind(&r, FindingKind::MissingOpening).is_empty(),
        "{}",
        r.to_json()
    );
    let rp: Vec<&String> = r
        .notes
        .iter()
        .filter(|n| n.contains("reverse-path"))
        .collect();
    assert_eq!(rp.len(), 1, "{:?}", r.notes);
    assert!(
        rp[0].contains("10.0.0.10/32 on pw-pub (rp_filter strict)"),
        "{}",
        rp[0]
    );
    // Loose: 10.0.0.10 is routable, so it passes and is checked.
    for i in &mut case.routes.interfaces {
        if i.name == "pw-pub" {
            i.rp_filter = crate::host::RpFilter::Loose;
        }
    }
    let r = case.run();
    assert!(!of_kind(&r, FindingKind::MissingOpening).is_empty());
}

#[test]
fn nft_reverse_path_rule_refusals_are_one_note() {
    // fib saddr . iif oif missing drop, then everything accepted. Any
    // source is checked on its routed interface, which the fib check
    // passes; pinned to the other interface, the fib rule refuses it.
    let fib = vec![
        json!({"type": "fib", "flags": 9, "result": 1, "dreg": 1}),
        json!({"type": "cmp", "sreg": 1, "op": "eq", "data": "0x00000000"}),
        verdict(json!("drop")),
    ];
    let s = snap(vec![chain("input", Some(("input", "accept")), vec![fib])]);
    let cfg = "roles = [\"veeam-data-mover\"]\n[peers]\nbackup_server = [\"10.0.0.10\"]\n[peer_interfaces]\nbackup_server = [\"pw-pub\"]\n";
    let mut case = Case::new(s, cfg);
    case.exposure = Evaluator::new(&case.snapshot, case.routes.clone())
        .without_routing_checks()
        .exposure();
    let r = case.run();
    assert!(
        of_kind(&r, FindingKind::MissingOpening).is_empty(),
        "{}",
        r.to_json()
    );
    let rp: Vec<&String> = r
        .notes
        .iter()
        .filter(|n| n.contains("reverse-path"))
        .collect();
    assert_eq!(rp.len(), 1, "{:?}", r.notes);
    assert!(rp[0].contains("handle 10"), "{}", rp[0]);
    // Unbound: every source arrives where it is routed; nothing missing, no note.
    let mut case = Case::new(case.snapshot.clone(), "roles = [\"veeam-data-mover\"]\n");
    case.exposure = Evaluator::new(&case.snapshot, case.routes.clone())
        .without_routing_checks()
        .exposure();
    let r = case.run();
    assert!(
        of_kind(&r, FindingKind::MissingOpening).is_empty(),
        "{}",
        r.to_json()
    );
    assert!(
        !r.notes.iter().any(|n| n.contains("reverse-path")),
        "{:?}",
        r.notes
    );
}

#[test]
fn private_interface_matching_nothing_is_a_critical_not_checked_finding() {
    let s = snap(vec![chain("input", Some(("input", "drop")), vec![])]);
    let r = Case::new(
        s,
        "roles = [\"evault-agent\"]\nprivate_interfaces = [\"pw-prv\"]\n[peers]\nevault_management = [\"10.0.0.0/8\"]\n",
    )
    .run();
    let n = of_kind(&r, FindingKind::NotChecked);
    assert_eq!(n.len(), 1, "{}", r.to_json());
    assert_eq!(n[0].severity, Severity::Critical);
    assert_eq!(n[0].requirement.as_deref(), Some("management"));
    assert!(
        n[0].summary.contains("\"pw-prv\" matches no interface"),
        "{}",
        n[0].summary
    );
    assert_eq!(r.exit_code(), 2);
}

#[test]
fn private_requirement_without_private_interfaces_is_not_opened_on_a_default_route() {
    let s = snap(vec![chain("input", Some(("input", "drop")), vec![])]);
    let r = Case::new(s, "roles = [\"evault-agent\"]\n").run();
    let m = of_kind(&r, FindingKind::MissingOpening);
    // Any source: 10/8 is checked on pw-priv, the rest on pw-pub, which
    // carries the default route: no fix, and the advice.
    assert_eq!(m.len(), 1, "{}", r.to_json());
    assert_eq!(m[0].interfaces, ["pw-priv", "pw-pub"]);
    assert!(m[0].fix.is_none(), "{}", r.to_json());
    assert!(m[0].summary.contains("configure private_interfaces"));
    // With the private interface named, it is checked and fixed there only.
    let s = snap(vec![chain("input", Some(("input", "drop")), vec![])]);
    let r = Case::new(
        s,
        "roles = [\"evault-agent\"]\nprivate_interfaces = [\"pw-priv\"]\n",
    )
    .run();
    let m = of_kind(&r, FindingKind::MissingOpening);
    assert_eq!(m.len(), 1, "{}", r.to_json());
    assert_eq!(m[0].interfaces, ["pw-priv"]);
    assert!(candidate(m[0]).contains("iifname \"pw-priv\""));
    assert!(!r
        .notes
        .iter()
        .any(|n| n.contains("not one of the private_interfaces")));
    // Bound peers routed through a public interface are said, not checked.
    let s = snap(vec![chain("input", Some(("input", "drop")), vec![])]);
    let r = Case::new(
        s,
        "roles = [\"evault-agent\"]\nprivate_interfaces = [\"pw-priv\"]\n[peers]\nevault_management = [\"10.0.0.0/8\", \"192.0.2.0/24\"]\n",
    )
    .run();
    let m = of_kind(&r, FindingKind::MissingOpening);
    assert_eq!(m.len(), 1, "{}", r.to_json());
    assert_eq!(peers(m[0]), ["10.0.0.0/8"]);
    assert!(
        r.notes.iter().any(|n| n.contains(
            "evault-agent/management: 192.0.2.0/24 is routed through pw-pub, which is not one of the private_interfaces"
        )),
        "{:?}",
        r.notes
    );
}

// ---- deny lists ----

#[test]
fn deny_lists_are_a_note_for_any_address_and_named_for_a_bound_peer() {
    // The fail2ban fixture: blocklist sets dropped at priority filter - 1,
    // everything else accepted.
    let mut case = Case::new(
        testdata("fail2ban-blocklist"),
        "roles = [\"veeam-data-mover\"]\n",
    );
    case.exposure = Evaluator::new(&case.snapshot, case.routes.clone())
        .without_routing_checks()
        .exposure();
    let r = case.run();
    assert!(
        of_kind(&r, FindingKind::MissingOpening).is_empty()
            && of_kind(&r, FindingKind::PartialOpening).is_empty(),
        "{}",
        r.to_json()
    );
    let deny: Vec<&String> = r.notes.iter().filter(|n| n.contains("deny list")).collect();
    assert!(
        deny.iter().any(|n| n.contains(
            "accepted from any address except 3,194 prefixes in set inet f2b blocklist-v4"
        )),
        "{deny:#?}"
    );
    assert!(
        deny.iter()
            .any(|n| n.contains("423 prefixes in set inet f2b blocklist-v6")),
        "{deny:#?}"
    );
    // One line per deny rule, not one per prefix.
    assert!(deny.len() <= 4, "{deny:#?}");
    assert!(deny.iter().all(|n| n.len() < 400), "{deny:#?}");
    // The backup server inside the blocklist: a critical missing opening
    // naming the set and the element.
    let mut case = Case::new(
        testdata("fail2ban-blocklist"),
        "roles = [\"veeam-data-mover\"]\n[peers]\nbackup_server = [\"192.0.2.66\", \"192.0.2.2\"]\n",
    );
    case.exposure = Evaluator::new(&case.snapshot, case.routes.clone())
        .without_routing_checks()
        .exposure();
    let r = case.run();
    let m = of_kind(&r, FindingKind::MissingOpening);
    assert!(!m.is_empty(), "{}", r.to_json());
    for f in &m {
        assert_eq!(peers(f), ["192.0.2.66/32"]);
        assert!(
            f.summary
                .contains("192.0.2.66/32 is in set inet f2b blocklist-v4 (element 192.0.2.66/32)"),
            "{}",
            f.summary
        );
        assert_eq!(f.severity, Severity::Critical);
    }
    assert!(
        !r.notes.iter().any(|n| n.contains("deny list")),
        "{:?}",
        r.notes
    );
}

#[test]
fn rule_texts_cut_long_inline_sets() {
    let long: Vec<String> = (0..50).map(|i| format!("192.0.2.{i}")).collect();
    let text = format!(
        "ip saddr {{ {} }} tcp dport {{ 22, 6162 }} drop",
        long.join(", ")
    );
    assert_eq!(
        super::shorten_sets(&text),
        "ip saddr { 192.0.2.0, 192.0.2.1, 192.0.2.2, 192.0.2.3, 192.0.2.4, 192.0.2.5, ... (50 elements) } tcp dport { 22, 6162 } drop"
    );
    assert_eq!(
        super::shorten_sets("tcp dport 22 accept"),
        "tcp dport 22 accept"
    );
}

#[test]
fn the_most_severe_fixes_are_proven_first_when_the_budget_runs_out() {
    use crate::audit::change::{apply_all, ChainRef, Change, NewRule, RuleVerdict, Stmt};
    use crate::catalog::Proto;
    let at = ChainRef {
        family: Family::Inet,
        table: "filter".into(),
        chain: "input".into(),
    };
    let mut changes = vec![
        Change::AddTable {
            family: Family::Inet,
            table: "filter".into(),
        },
        Change::AddBaseChain {
            at: at.clone(),
            hook: crate::snapshot::Hook::Input,
            priority: 0,
            policy: Policy::Drop,
        },
        Change::AddRule {
            at: at.clone(),
            rule: NewRule::established_related(),
        },
    ];
    // 600 ports open to everyone: 600 excess openings (warnings), more
    // than this ruleset's proof budget; and the backup server's ports not
    // open at all (criticals).
    for p in 0..600 {
        changes.push(Change::AddRule {
            at: at.clone(),
            rule: NewRule {
                matches: vec![Stmt::Dport {
                    proto: Proto::Tcp,
                    ports: PortSet::from_ranges([range(20000 + p, 20000 + p)]),
                }],
                verdict: RuleVerdict::Accept,
            },
        });
    }
    let mut snapshot = Snapshot::default();
    apply_all(&mut snapshot, &changes).unwrap();
    let mut case = Case::new(
        snapshot,
        "roles = [\"veeam-data-mover\"]\n[peers]\nbackup_server = [\"10.0.0.10\"]\n",
    );
    case.exposure = Evaluator::new(&case.snapshot, case.routes.clone())
        .without_routing_checks()
        .exposure();
    let r = case.run();
    let missing = of_kind(&r, FindingKind::MissingOpening);
    assert!(!missing.is_empty(), "{:#?}", r.findings.first());
    for f in &missing {
        assert!(matches!(f.fix, Some(Fix::Proven { .. })), "{:#?}", f.fix);
    }
    let excess = of_kind(&r, FindingKind::ExcessOpening);
    assert_eq!(excess.len(), 600);
    let proven = excess
        .iter()
        .filter(|f| matches!(f.fix, Some(Fix::Proven { .. })))
        .count();
    let waiting = excess
        .iter()
        .filter(|f| {
            matches!(&f.fix, Some(Fix::NoSafeFix { reason, .. })
                if reason.contains("the most severe are proven first"))
        })
        .count();
    assert!(
        proven > 0 && proven + waiting == 600,
        "{proven} + {waiting}"
    );
    assert!(waiting > 500, "{waiting}");
}

#[test]
fn policy_routing_rules_are_a_note_on_where_peers_are_checked() {
    use crate::host::{Rule, RuleAction};
    let cfg = "roles = [\"veeam-data-mover\"]\n[peers]\nbackup_server = [\"10.0.0.10\"]\n";
    let says = |r: &Report| r.notes.iter().any(|n| n.contains("policy routing rules"));
    let case = Case::new(testdata("backup-host-basic"), cfg);
    assert!(!says(&case.run()));
    // A rule before main's: the note, for IPv4 only.
    let mut case = Case::new(testdata("backup-host-basic"), cfg);
    let mut rules = Rule::defaults(false);
    rules.push(Rule::new(false, 100, RuleAction::Lookup(300)));
    case.routes.rules = rules;
    let r = case.run();
    let notes: Vec<&String> = r
        .notes
        .iter()
        .filter(|n| n.contains("policy routing rules"))
        .collect();
    assert_eq!(notes.len(), 1, "{notes:#?}");
    assert!(notes[0].starts_with("IPv4 "), "{}", notes[0]);
}
