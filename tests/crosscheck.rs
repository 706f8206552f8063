//! The snapshot agrees with `nft -j list ruleset` on every fixture: tables,
//! chains (hook, priority, policy), rule counts per chain, and the elements
//! of every named set and map.

mod common;

use common::{fixture, require_root, Topology};
use serde_json::Value;
use std::collections::BTreeMap;

/// A chain as compared: hook, priority, policy, rule count.
type ChainView = (Option<String>, Option<i64>, Option<String>, usize);

/// What both views are compared on.
#[derive(Debug, Default, PartialEq)]
struct View {
    tables: Vec<String>,
    /// chain -> (hook, priority, policy, rule count)
    chains: BTreeMap<String, ChainView>,
    /// named set -> sorted elements
    sets: BTreeMap<String, Vec<String>>,
}

/// Strips per-element details (timeouts, expiry, counters) down to the value.
fn element_value(e: &Value) -> Value {
    match e {
        Value::Object(o) if o.contains_key("elem") => element_value(&o["elem"]["val"]),
        Value::Array(a) => Value::Array(a.iter().map(element_value).collect()),
        other => other.clone(),
    }
}

fn sorted(elems: Option<&Value>) -> Vec<String> {
    let mut v: Vec<String> = elems
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|e| element_value(e).to_string()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn nft_view(v: &Value) -> View {
    let mut view = View::default();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for item in v["nftables"].as_array().expect("nftables array") {
        let (kind, o) = item.as_object().unwrap().iter().next().unwrap();
        let key = |name: &str| {
            format!(
                "{} {} {}",
                o["family"].as_str().unwrap(),
                o["table"].as_str().unwrap_or(""),
                name
            )
        };
        match kind.as_str() {
            "table" => view.tables.push(format!(
                "{} {}",
                o["family"].as_str().unwrap(),
                o["name"].as_str().unwrap()
            )),
            "chain" => {
                view.chains.insert(
                    key(o["name"].as_str().unwrap()),
                    (
                        o.get("hook").and_then(Value::as_str).map(String::from),
                        o.get("prio").and_then(Value::as_i64),
                        o.get("policy").and_then(Value::as_str).map(String::from),
                        0,
                    ),
                );
            }
            "rule" => *counts.entry(key(o["chain"].as_str().unwrap())).or_default() += 1,
            "set" | "map" => {
                view.sets
                    .insert(key(o["name"].as_str().unwrap()), sorted(o.get("elem")));
            }
            _ => {}
        }
    }
    for (c, n) in counts {
        view.chains.get_mut(&c).expect("rule in a listed chain").3 = n;
    }
    view.tables.sort();
    view
}

fn pw_view(v: &Value) -> View {
    let mut view = View::default();
    for t in v["tables"].as_array().expect("tables array") {
        let prefix = format!(
            "{} {}",
            t["family"].as_str().unwrap(),
            t["name"].as_str().unwrap()
        );
        view.tables.push(prefix.clone());
        for c in t["chains"].as_array().unwrap() {
            view.chains.insert(
                format!("{prefix} {}", c["name"].as_str().unwrap()),
                (
                    c.get("hook").and_then(Value::as_str).map(String::from),
                    c.get("priority").and_then(Value::as_i64),
                    c.get("policy").and_then(Value::as_str).map(String::from),
                    c["rules"].as_array().unwrap().len(),
                ),
            );
        }
        for s in t["sets"].as_array().unwrap() {
            if s["anonymous"].as_bool() == Some(false) {
                view.sets.insert(
                    format!("{prefix} {}", s["name"].as_str().unwrap()),
                    sorted(s.get("elements")),
                );
            }
        }
    }
    view.tables.sort();
    view
}

/// Every fixture: `*.nft` files, plus the scripts that build rulesets with
/// ufw and iptables-nft (their xt expressions cannot be reloaded by nft -f).
pub fn all_fixtures() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(fixture(""))
        .expect("tests/fixtures")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".nft"))
        .collect();
    v.sort();
    for script in ["gen/ufw-host.sh", "gen/iptables-xt.sh"] {
        if fixture(script).exists() {
            v.push(script.to_string());
        }
    }
    v
}

#[test]
fn snapshot_agrees_with_nft_on_every_fixture() {
    if !require_root("snapshot_agrees_with_nft_on_every_fixture") {
        return;
    }
    let fixtures = all_fixtures();
    assert!(
        fixtures.len() >= 15,
        "expected at least 15 fixtures, found {}",
        fixtures.len()
    );
    let mut failures = Vec::new();
    for name in &fixtures {
        let topo = Topology::new("xc");
        topo.load_fixture(name);
        let mut dump = topo.host.dump_json();
        // The host part (interfaces, routes, policy rules) is not the
        // snapshot's.
        if dump
            .as_object_mut()
            .and_then(|o| o.remove("host"))
            .is_none()
        {
            failures.push(format!("{name}: dump --json has no host part"));
        }
        // The JSON reads back into the same snapshot.
        let back: portwarden::snapshot::Snapshot = match serde_json::from_value(dump.clone()) {
            Ok(s) => s,
            Err(e) => {
                failures.push(format!("{name}: JSON does not read back: {e}"));
                continue;
            }
        };
        if serde_json::to_value(&back).unwrap() != dump {
            failures.push(format!("{name}: JSON read back differs"));
        }
        // Every construct in the corpus decodes: no rule is left incomplete.
        for t in dump["tables"].as_array().unwrap() {
            for c in t["chains"].as_array().unwrap() {
                for r in c["rules"].as_array().unwrap() {
                    if r.get("incomplete").is_some() {
                        failures.push(format!(
                            "{name}: rule {} in {} not fully decoded: {}",
                            r["handle"], c["name"], r["exprs"]
                        ));
                    }
                }
            }
        }
        let ours = pw_view(&dump);
        let theirs = nft_view(&topo.host.nft_json());
        assert!(!theirs.tables.is_empty(), "{name}: fixture loaded no table");
        if ours != theirs {
            let mut diff = String::new();
            if ours.tables != theirs.tables {
                diff += &format!("  tables: ours {:?} nft {:?}\n", ours.tables, theirs.tables);
            }
            for (k, v) in &theirs.chains {
                if ours.chains.get(k) != Some(v) {
                    diff += &format!("  chain {k}: ours {:?} nft {v:?}\n", ours.chains.get(k));
                }
            }
            for (k, v) in &theirs.sets {
                if ours.sets.get(k) != Some(v) {
                    diff += &format!("  set {k}: ours {:?}\n     nft {v:?}\n", ours.sets.get(k));
                }
            }
            for k in ours
                .chains
                .keys()
                .filter(|k| !theirs.chains.contains_key(*k))
            {
                diff += &format!("  chain {k}: only in ours\n");
            }
            for k in ours.sets.keys().filter(|k| !theirs.sets.contains_key(*k)) {
                diff += &format!("  set {k}: only in ours\n");
            }
            failures.push(format!("{name}:\n{diff}"));
        }
    }
    assert!(
        failures.is_empty(),
        "snapshot disagrees with nft:\n{}",
        failures.join("\n")
    );
    eprintln!("cross-checked {} fixtures", fixtures.len());
}
