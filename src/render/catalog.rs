//! Output of `portwarden roles` and `portwarden catalog`: roles with their
//! ports resolved through the catalog's port sets, settings, peer groups.

use crate::catalog::{
    Catalog, Condition, Conditions, Direction, PeerGroup, PortVariant, Requirement, Role, Scope,
    SettingDef, SourceRef,
};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// `NAME = VALUE` or `NAME is one of A, B`, joined by "and".
fn conditions(c: &Conditions) -> String {
    c.iter()
        .map(|(name, cond)| match cond.get_ref() {
            Condition::Is(v) => format!("{} = {v}", name.get_ref()),
            Condition::AnyOf(list) => format!("{} is one of {}", name.get_ref(), list.join(", ")),
        })
        .collect::<Vec<_>>()
        .join(" and ")
}

/// The ports of the setting's default (the only ones for fixed ports).
fn default_ports(variants: &[PortVariant]) -> String {
    variants
        .iter()
        .find(|v| v.default)
        .or(variants.first())
        .map_or_else(|| "?".to_string(), |v| v.ports.to_string())
}

/// `ports by SETTING (port set NAME): A = 2500-3300 (default), B = ...`.
fn variants_line(req: &Requirement, variants: &[PortVariant]) -> Option<String> {
    let set = req.port_set.as_ref()?.get_ref();
    let setting = variants.iter().find_map(|v| v.when.as_ref())?.0.as_str();
    let list: Vec<String> = variants
        .iter()
        .filter_map(|v| {
            let (_, value) = v.when.as_ref()?;
            let default = if v.default { " (default)" } else { "" };
            Some(format!("{value} = {}{default}", v.ports))
        })
        .collect();
    Some(format!(
        "ports by {setting} (port set {set}): {}",
        list.join(", ")
    ))
}

/// `DOC, SECTION`, without the seed lines.
fn source(s: &SourceRef) -> String {
    format!("{}, {}", s.doc.get_ref(), s.section)
}

/// A requirement's citation with where the operator checks it: the seed
/// file and its lines, or a mark for a document outside the seeds.
fn citation(cat: &Catalog, s: &SourceRef) -> String {
    let seed = cat.source(s.doc.get_ref()).and_then(|d| d.seed.as_deref());
    match (seed, &s.lines) {
        (Some(file), Some(lines)) => {
            let lines = lines.get_ref();
            let word = if lines.iter().nth(1).is_some() {
                "lines"
            } else {
                "line"
            };
            format!("{}; seed {file}, {word} {lines}", source(s))
        }
        // A seed document cited without lines (settings, peer groups).
        (Some(_), None) => source(s),
        (None, _) => format!("{} [not in the seeds]", source(s)),
    }
}

/// `443 or 80`.
fn alternatives(r: &Requirement) -> Option<String> {
    let alts = r.alternatives();
    (!alts.is_empty()).then(|| {
        alts.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" or ")
    })
}

/// The text of `roles show ID`.
pub fn role_text(cat: &Catalog, role: &Role) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} — {}", role.id(), role.title);
    let _ = writeln!(out, "{}", role.description.trim());
    if !role.includes.is_empty() {
        let inc: Vec<&str> = role.includes.iter().map(|i| i.get_ref().as_str()).collect();
        let _ = writeln!(
            out,
            "includes: {} (see portwarden roles show for each)",
            inc.join(", ")
        );
    }
    for r in &role.requirements {
        let variants = cat.port_variants(r);
        let (dir, side) = match r.direction {
            Direction::In => ("in", "from"),
            Direction::Out => ("out", "to"),
        };
        let peers = format!("{side} {}", r.peers().join(" or "));
        let _ = writeln!(
            out,
            "  {dir:<4}{:<4}{:<12} {peers:<32} {}",
            r.proto.to_string(),
            alternatives(r).unwrap_or_else(|| default_ports(&variants)),
            r.purpose
        );
        let mut detail = |line: String| {
            let _ = writeln!(out, "        {line}");
        };
        if let Some(line) = variants_line(r, &variants) {
            detail(line);
        }
        if let Some(alts) = alternatives(r) {
            let first = r.alternatives()[0].to_string();
            detail(format!(
                "alternatives: {alts}, any one of them open is enough (a fix opens {first})"
            ));
        }
        if r.direction == Direction::In {
            detail(match r.scope {
                Scope::Any => "on any interface".to_string(),
                Scope::Private => {
                    "on the private interfaces only (private_interfaces in the configuration)"
                        .to_string()
                }
            });
        }
        if !r.conditions.is_empty() {
            detail(format!("applies when {}", conditions(&r.conditions)));
        }
        if let Some(f) = &r.fallback_when {
            detail(format!("a fallback channel when {}", conditions(f)));
        }
        let mut flags = Vec::new();
        if r.listen {
            flags.push("a local service listens");
        }
        if r.partial_ok {
            flags.push("a partly open range is normal");
        }
        if !flags.is_empty() {
            detail(flags.join("; "));
        }
        if let Some(n) = &r.note {
            detail(format!("note: {}", n.trim()));
        }
        if seed_files(cat, r).is_empty() {
            detail("backed only by documents outside the seeds".to_string());
        }
        detail(format!("source: {}", citation(cat, &r.source)));
        for a in &r.also {
            detail(format!("also: {}", citation(cat, a)));
        }
    }
    out
}

/// `roles --json` and `roles show --json`: the role as the catalog holds
/// it, each requirement's ports resolved (`port_variants`, by
/// requirement id: the fixed ports, or one entry per value of the port
/// set's setting), and for each requirement the seed files whose lines its
/// citations give (`seed_files`; empty for one backed only by documents
/// outside the seeds).
#[derive(Serialize)]
pub struct RoleJson<'a> {
    #[serde(flatten)]
    role: &'a Role,
    port_variants: BTreeMap<&'a str, Vec<PortVariant>>,
    seed_files: BTreeMap<&'a str, Vec<String>>,
}

/// The seed files a requirement's citations give lines of.
fn seed_files(cat: &Catalog, r: &Requirement) -> Vec<String> {
    let mut out: Vec<String> = r
        .citations()
        .filter(|c| c.lines.is_some())
        .filter_map(|c| cat.source(c.doc.get_ref())?.seed.clone())
        .collect();
    out.dedup();
    out
}

/// The JSON view of one role.
pub fn role_json<'a>(cat: &Catalog, role: &'a Role) -> RoleJson<'a> {
    RoleJson {
        role,
        port_variants: role
            .requirements
            .iter()
            .map(|r| (r.id(), cat.port_variants(r)))
            .collect(),
        seed_files: role
            .requirements
            .iter()
            .map(|r| (r.id(), seed_files(cat, r)))
            .collect(),
    }
}

/// A section of `portwarden catalog`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Section {
    /// The roles, one line each.
    Roles,
    /// Host settings: type, default, allowed values, the port sets they pick.
    Settings,
    /// Peer groups: what they stand for, suggested and minimum prefixes.
    Peers,
}

/// The text of `portwarden catalog [SECTION]`.
pub fn catalog_text(cat: &Catalog, section: Option<Section>) -> String {
    let mut out = String::new();
    let all = section.is_none();
    let want = |s: Section| section.is_none() || section == Some(s);
    if want(Section::Roles) {
        if all {
            out.push_str("roles (portwarden roles show ID):\n");
        }
        out.push_str(&roles_list(cat, if all { "  " } else { "" }));
    }
    if want(Section::Settings) {
        if all {
            out.push_str("\nsettings ([settings] in the configuration, --set NAME=VALUE):\n");
        }
        for (name, def) in cat.settings() {
            setting_text(&mut out, cat, name, def);
        }
    }
    if want(Section::Peers) {
        if all {
            out.push_str("\npeer groups ([peers] in the configuration, --peer GROUP=PREFIX):\n");
        }
        for (name, g) in cat.peer_groups() {
            peer_text(&mut out, cat, name, g);
        }
    }
    out
}

/// One line per role: id and title.
pub fn roles_list(cat: &Catalog, indent: &str) -> String {
    let mut out = String::new();
    for r in cat.roles() {
        let _ = writeln!(out, "{indent}{:<36} {}", r.id(), r.title);
    }
    out
}

fn setting_text(out: &mut String, cat: &Catalog, name: &str, def: &SettingDef) {
    let values = def.possible_values().join(" | ");
    let _ = writeln!(
        out,
        "  {name} = {values}  (default {})",
        def.default.get_ref()
    );
    let _ = writeln!(out, "      {}", def.description.trim().replace('\n', " "));
    for (set_name, set) in cat.port_sets() {
        if set.setting.get_ref() != name {
            continue;
        }
        let list: Vec<String> = def
            .possible_values()
            .into_iter()
            .filter_map(|v| {
                let ports = set.values.get(v.as_str())?.to_set();
                Some(format!("{v} = {ports}"))
            })
            .collect();
        let _ = writeln!(out, "      picks port set {set_name}: {}", list.join(", "));
    }
    if let Some(s) = &def.source {
        let _ = writeln!(out, "      source: {}", citation(cat, s));
    }
}

fn nets(list: &[ipnet::IpNet]) -> String {
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn peer_text(out: &mut String, cat: &Catalog, name: &str, g: &PeerGroup) {
    let _ = writeln!(out, "  {name}");
    let _ = writeln!(out, "      {}", g.description.trim().replace('\n', " "));
    if !g.suggested.is_empty() {
        let _ = writeln!(out, "      suggested: {}", nets(&g.suggested));
    }
    if !g.minimum.is_empty() {
        let _ = writeln!(out, "      minimum: {}", nets(&g.minimum));
    }
    if let Some(n) = &g.note {
        let _ = writeln!(out, "      note: {}", n.trim().replace('\n', " "));
    }
    if let Some(s) = &g.source {
        let _ = writeln!(out, "      source: {}", citation(cat, s));
    }
}

/// A setting in the JSON of `portwarden catalog`.
#[derive(Serialize)]
struct SettingJson<'a> {
    name: &'a str,
    #[serde(flatten)]
    def: &'a SettingDef,
    /// The port sets the setting picks a variant of, by name.
    port_sets: BTreeMap<&'a str, BTreeMap<String, crate::ports::PortSet>>,
}

/// A peer group in the JSON of `portwarden catalog`.
#[derive(Serialize)]
struct PeerJson<'a> {
    name: &'a str,
    #[serde(flatten)]
    group: &'a PeerGroup,
}

/// A role's id and title in the JSON of `portwarden catalog`.
#[derive(Serialize)]
struct RoleLine<'a> {
    id: &'a str,
    title: &'a str,
}

/// The JSON of `portwarden catalog [SECTION]`: `{"roles": [...],
/// "settings": [...], "peer_groups": [...]}`, only the section asked for.
pub fn catalog_json(cat: &Catalog, section: Option<Section>) -> serde_json::Value {
    let want = |s: Section| section.is_none() || section == Some(s);
    let mut doc = serde_json::Map::new();
    if want(Section::Roles) {
        let roles: Vec<RoleLine> = cat
            .roles()
            .map(|r| RoleLine {
                id: r.id(),
                title: &r.title,
            })
            .collect();
        doc.insert("roles".into(), serde_json::json!(roles));
    }
    if want(Section::Settings) {
        let settings: Vec<SettingJson> = cat
            .settings()
            .map(|(name, def)| SettingJson {
                name,
                def,
                port_sets: cat
                    .port_sets()
                    .filter(|(_, s)| s.setting.get_ref() == name)
                    .map(|(n, s)| {
                        let values = def
                            .possible_values()
                            .into_iter()
                            .filter_map(|v| {
                                let ports = s.values.get(v.as_str())?.to_set();
                                Some((v, ports))
                            })
                            .collect();
                        (n, values)
                    })
                    .collect(),
            })
            .collect();
        doc.insert("settings".into(), serde_json::json!(settings));
    }
    if want(Section::Peers) {
        let peers: Vec<PeerJson> = cat
            .peer_groups()
            .map(|(name, group)| PeerJson { name, group })
            .collect();
        doc.insert("peer_groups".into(), serde_json::json!(peers));
    }
    serde_json::Value::Object(doc)
}
