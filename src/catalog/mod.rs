//! The role catalog: which connections each backup role of a Linux host needs.
//!
//! The catalog is TOML data (`config/catalog/*.toml`, compiled into the binary)
//! that directories such as `/usr/share/portwarden/catalog.d/` and
//! `/etc/portwarden/catalog.d/` may extend or override. A file may hold:
//!
//! - `[sources."NAME"]`: documents cited by the entries (`title`, `location`, `note`,
//!   and `seed`: the file of the project's seed documents that holds its port
//!   tables, whose `lines` its citations then give; see `docs/catalog-sources.md`);
//! - `[settings.NAME]`: host settings that conditions and port sets depend on
//!   (`description`, `default` = a boolean or a string, `values` = the allowed
//!   strings, `source`);
//! - `[port_sets.NAME]`: port lists that depend on one setting (`description`,
//!   `setting`, `values.VALUE = [ports]`, `source`), e.g. the Veeam data range
//!   2500-3300 or 2500-5000;
//! - `[peer_groups.NAME]`: the other side of a connection (`description`,
//!   `suggested` and `minimum` prefixes, `note`, `source`). Suggestions are
//!   never applied: the host configuration binds groups to addresses;
//! - `[[role]]` with `[[role.requirement]]` entries (see [`Role`], [`Requirement`]):
//!   ports as `ports` (all needed), `port_set` (picked by a setting) or `any_of`
//!   (alternatives, one open is enough), a `source` citation and more in `also`.
//!
//! A later directory replaces a role, setting, port set, peer group or source of
//! the same name; within one layer (the built-in files, or one directory) a name
//! may be defined once. The merged catalog is validated as a whole, and every
//! problem is reported with file, line and column.
//!
//! How the audit should read a requirement's peers: the requirement concerns the
//! union of the addresses bound to its peer groups. A group the host leaves
//! unbound is skipped, unless none of the groups is bound, in which case any
//! address counts. A group bound to an empty list contributes no address, so a
//! requirement whose groups are all bound empty needs no opening.

mod diag;
mod load;
mod portlist;
#[cfg(test)]
mod tests;
mod validate;

pub use diag::{nearest, Diagnostic, DiagnosticKind, LineIndex, Location};
pub use portlist::PortList;

pub(crate) use diag::{display_all, read_text, ReadTextError, SourceText};
pub(crate) use load::parse_toml_located;

/// The largest catalog file accepted, in bytes (8 MiB, as for the host
/// configuration, [`crate::config::MAX_FILE_SIZE`]); a larger file is
/// refused by its size, before it is read.
pub const MAX_FILE_SIZE: u64 = 8 << 20;

/// Directories the CLI and the daemon read catalog overrides from, in order.
pub const DEFAULT_DIRS: &[&str] = &[
    "/usr/share/portwarden/catalog.d",
    "/etc/portwarden/catalog.d",
];

use crate::ports::PortSet;
use ipnet::IpNet;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use toml::Spanned;

/// Why a catalog could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A catalog file or directory could not be read.
    #[error("cannot read catalog file {path}: {source}")]
    Io {
        /// The file or directory.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A catalog file larger than [`MAX_FILE_SIZE`]; refused before it is read.
    #[error("{path}: the file has {size} bytes, over the limit of {} bytes ({} MiB) for a catalog file; refused unread", MAX_FILE_SIZE, MAX_FILE_SIZE >> 20)]
    TooLarge {
        /// The file.
        path: std::path::PathBuf,
        /// Its size in bytes (or as much as was read before giving up).
        size: u64,
    },
    /// Catalog files that do not parse or do not validate, one diagnostic each.
    #[error("{}", display_all(.0))]
    Invalid(Vec<Diagnostic>),
    /// A role id that the catalog does not define.
    #[error("unknown role `{id}`{}", suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default())]
    UnknownRole {
        /// The id asked for.
        id: String,
        /// The nearest defined role id.
        suggestion: Option<String>,
    },
}

impl CatalogError {
    /// The located diagnostics of an [`CatalogError::Invalid`] error (empty otherwise).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            CatalogError::Invalid(d) => d,
            _ => &[],
        }
    }
}

/// Traffic direction, relative to the audited host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Connections that peers open to this host.
    In,
    /// Connections that this host opens to peers.
    Out,
}

/// Transport protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    /// `tcp` or `udp`.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// Which interfaces an inbound requirement concerns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Any interface.
    #[default]
    Any,
    /// Only the host's private interfaces (`private_interfaces` in the host
    /// configuration); the opening should not exist on the others.
    Private,
}

macro_rules! display_as_serde_name {
    ($($t:ty { $($v:ident => $s:literal),* })*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self { $(Self::$v => $s),* })
            }
        }
    )*};
}
display_as_serde_name! {
    Direction { In => "in", Out => "out" }
    Proto { Tcp => "tcp", Udp => "udp" }
    Scope { Any => "any", Private => "private" }
}

/// The value of a host setting: a boolean or a string.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum SettingValue {
    /// A boolean setting.
    Bool(bool),
    /// A setting with a fixed list of string values.
    Text(String),
}

impl SettingValue {
    /// "a boolean" or "a string", for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            SettingValue::Bool(_) => "a boolean",
            SettingValue::Text(_) => "a string",
        }
    }
}

impl fmt::Display for SettingValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingValue::Bool(b) => write!(f, "{b}"),
            SettingValue::Text(s) => f.write_str(s),
        }
    }
}

impl<'de> Deserialize<'de> for SettingValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = SettingValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false or a string")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<SettingValue, E> {
                Ok(SettingValue::Bool(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SettingValue, E> {
                Ok(SettingValue::Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// What a condition expects of one setting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Condition {
    /// The setting has exactly this value.
    Is(SettingValue),
    /// The (string) setting has one of these values.
    AnyOf(Vec<String>),
}

impl Condition {
    /// Whether `value` satisfies the condition.
    pub fn matches(&self, value: &SettingValue) -> bool {
        match (self, value) {
            (Condition::Is(want), v) => want == v,
            (Condition::AnyOf(list), SettingValue::Text(v)) => list.contains(v),
            (Condition::AnyOf(_), SettingValue::Bool(_)) => false,
        }
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Condition;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false, a string or a list of strings")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Condition, E> {
                Ok(Condition::Is(SettingValue::Bool(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Condition, E> {
                Ok(Condition::Is(SettingValue::Text(v.to_string())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Condition, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element()? {
                    out.push(s);
                }
                Ok(Condition::AnyOf(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// Conditions on host settings, all of which must hold: setting name → expected value.
pub type Conditions = BTreeMap<Spanned<String>, Spanned<Condition>>;

/// One or more peer group names (`peer = "a"` or `peer = ["a", "b"]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct PeerNames(pub Vec<String>);

impl<'de> Deserialize<'de> for PeerNames {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PeerNames;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a peer group name or a list of them")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PeerNames, E> {
                Ok(PeerNames(vec![v.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PeerNames, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element()? {
                    out.push(s);
                }
                Ok(PeerNames(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A citation: a document named in the catalog's `[sources]` and a section of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceRef {
    /// Name of the document (a key of `[sources]`).
    pub doc: Spanned<String>,
    /// Section, table or paragraph of the document.
    pub section: String,
    /// The lines of the document's seed file (its `seed` in `[sources]`)
    /// that say it. A requirement citing a document with a seed must give
    /// them; a document without a seed has no lines to give.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<Spanned<SeedLines>>,
}

/// Line numbers of a seed file (`lines = [39, "47-48"]`: a line or a
/// range `"first-last"`), counted from 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedLines(pub Vec<(u32, u32)>);

impl SeedLines {
    /// Every line, in the order written.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().flat_map(|&(a, b)| a..=b)
    }
}

/// `39, 47-48`.
impl fmt::Display for SeedLines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (a, b)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            if a == b {
                write!(f, "{a}")?;
            } else {
                write!(f, "{a}-{b}")?;
            }
        }
        Ok(())
    }
}

/// Serialised as the list of every line.
impl Serialize for SeedLines {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for SeedLines {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const WHAT: &str = "a line number (from 1) or a range like \"47-48\"";
        fn line<E: de::Error>(v: i64) -> Result<u32, E> {
            u32::try_from(v)
                .ok()
                .filter(|&n| n >= 1)
                .ok_or_else(|| E::custom(format!("invalid line {v}, expected {WHAT}")))
        }
        struct Item((u32, u32));
        impl<'de> Deserialize<'de> for Item {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = Item;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str(WHAT)
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Item, E> {
                        line(v).map(|n| Item((n, n)))
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Item, E> {
                        self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<Item, E> {
                        let bad = || E::custom(format!("invalid lines {v:?}, expected {WHAT}"));
                        let (a, b) = v.split_once('-').ok_or_else(bad)?;
                        let a: i64 = a.trim().parse().map_err(|_| bad())?;
                        let b: i64 = b.trim().parse().map_err(|_| bad())?;
                        let (a, b) = (line(a)?, line(b)?);
                        if a > b {
                            return Err(bad());
                        }
                        Ok(Item((a, b)))
                    }
                }
                d.deserialize_any(V)
            }
        }
        struct L;
        impl<'de> Visitor<'de> for L {
            type Value = SeedLines;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a list of line numbers and ranges")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SeedLines, A::Error> {
                let mut out = Vec::new();
                while let Some(Item(r)) = seq.next_element()? {
                    out.push(r);
                }
                Ok(SeedLines(out))
            }
        }
        d.deserialize_seq(L)
    }
}

/// The file an item was read from, kept for locating later diagnostics.
#[derive(Clone, Default)]
struct Origin(Option<Arc<SourceText>>);

/// Shows the path only, not the whole file text.
impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Origin").field(&self.path()).finish()
    }
}

impl Origin {
    fn locate(&self, span: std::ops::Range<usize>) -> Option<Location> {
        self.0.as_ref().map(|s| s.locate(span))
    }
    fn path(&self) -> Option<&Path> {
        self.0.as_ref().map(|s| s.path.as_path())
    }
    /// Whether the item comes from a file compiled into the binary.
    fn is_builtin(&self) -> bool {
        self.path().is_some_and(|p| p.starts_with("<builtin>"))
    }
}

/// A document the catalog cites (`[sources."NAME"]`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceDoc {
    /// Title of the document.
    pub title: String,
    /// Address or page name where it can be read.
    #[serde(default)]
    pub location: Option<String>,
    /// Remarks on the document (older editions, scope).
    #[serde(default)]
    pub note: Option<String>,
    /// The file of the project's seed documents (`tests/fixtures/seeds/`)
    /// that holds this document's port tables; `None` for a document
    /// outside the seeds, which citations then cannot give lines of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
    #[serde(skip)]
    origin: Origin,
}

/// A host setting that conditions and port sets can depend on (`[settings.NAME]`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingDef {
    /// What the setting means and how to choose it.
    pub description: String,
    /// Value used when the host configuration does not set it. Its type
    /// (boolean or string) is the setting's type.
    pub default: Spanned<SettingValue>,
    /// For a string setting, the allowed values.
    #[serde(default)]
    pub values: Vec<String>,
    /// Where the distinction is documented.
    #[serde(default)]
    pub source: Option<SourceRef>,
    #[serde(skip)]
    origin: Origin,
}

impl SettingDef {
    /// The values this setting can take, as strings (`false`/`true` for a boolean).
    pub fn possible_values(&self) -> Vec<String> {
        match self.default.get_ref() {
            SettingValue::Bool(_) => vec!["false".into(), "true".into()],
            SettingValue::Text(_) => self.values.clone(),
        }
    }
}

/// A port list chosen by a setting (`[port_sets.NAME]`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortSetDef {
    /// What the ports are for.
    pub description: String,
    /// The setting that picks the variant.
    pub setting: Spanned<String>,
    /// Ports for each value of the setting (`false`/`true` for a boolean setting).
    pub values: BTreeMap<Spanned<String>, PortList>,
    /// Where the variants are documented.
    #[serde(default)]
    pub source: Option<SourceRef>,
    #[serde(skip)]
    origin: Origin,
}

/// The other side of a connection (`[peer_groups.NAME]`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerGroup {
    /// Which machines belong to the group.
    pub description: String,
    /// Prefixes recommended for the group; shown to the operator, never applied.
    #[serde(default)]
    pub suggested: Vec<IpNet>,
    /// The narrowest prefixes the vendor says still work (may stop working when
    /// the vendor's infrastructure grows).
    #[serde(default)]
    pub minimum: Vec<IpNet>,
    /// Remarks, e.g. addresses from older documents.
    #[serde(default)]
    pub note: Option<String>,
    /// Where the addresses are documented.
    #[serde(default)]
    pub source: Option<SourceRef>,
    #[serde(skip)]
    origin: Origin,
}

/// A backup role a host can play (`[[role]]`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Role {
    /// Stable id (lowercase letters, digits and dashes), e.g. `veeam-linux-repository`.
    pub id: Spanned<String>,
    /// One-line name.
    pub title: String,
    /// What the role is and what to know when auditing it.
    pub description: String,
    /// Documents the role is based on.
    #[serde(default)]
    pub sources: Vec<Spanned<String>>,
    /// Roles whose requirements this role also has.
    #[serde(default)]
    pub includes: Vec<Spanned<String>>,
    /// The role's own requirements (`[[role.requirement]]`).
    #[serde(default, rename = "requirement")]
    pub requirements: Vec<Requirement>,
    #[serde(skip)]
    origin: Origin,
}

impl Role {
    /// The role id.
    pub fn id(&self) -> &str {
        self.id.get_ref()
    }

    /// The file the role was read from.
    pub fn origin(&self) -> Option<&Path> {
        self.origin.path()
    }
}

/// One connection a role needs (`[[role.requirement]]`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    /// Id, unique within the role and stable across releases.
    pub id: Spanned<String>,
    /// `in` or `out`, relative to the audited host.
    pub direction: Direction,
    /// `tcp` or `udp`.
    pub proto: Proto,
    /// Fixed ports, all of them needed; exactly one of `ports`, `port_set`
    /// and `any_of` is given.
    #[serde(default)]
    pub ports: Option<PortList>,
    /// Alternatives: each item (a port or a range) is one opening, and any
    /// one of them open satisfies the requirement ("80 or 443"); at least
    /// two, disjoint. The audit reports the requirement only when none is
    /// open, and its fix opens the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub any_of: Option<PortList>,
    /// Name of a port set whose variant a setting picks.
    #[serde(default)]
    pub port_set: Option<Spanned<String>>,
    /// Peer group(s) on the other side.
    pub peer: Spanned<PeerNames>,
    /// Whether a local service should listen on these ports (inbound only).
    #[serde(default)]
    pub listen: bool,
    /// Which interfaces the requirement concerns.
    #[serde(default)]
    pub scope: Scope,
    /// Whether a partly open range is normal (Veeam opens only as many data
    /// ports as it needs); the policy decides how to rate it.
    #[serde(default)]
    pub partial_ok: bool,
    /// What the connection is for.
    pub purpose: String,
    /// Settings under which the requirement applies (all must hold; empty = always).
    #[serde(default)]
    pub conditions: Conditions,
    /// Settings under which the ports are only a fallback channel.
    #[serde(default)]
    pub fallback_when: Option<Conditions>,
    /// Where the requirement is documented.
    pub source: SourceRef,
    /// Further documents that say the same (another edition, the other
    /// side's table).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<SourceRef>,
    /// Remarks for the operator.
    #[serde(default)]
    pub note: Option<String>,
}

impl Requirement {
    /// The alternatives of an `any_of` requirement, one port set each, in
    /// the catalog's order; empty for one that needs all its ports.
    pub fn alternatives(&self) -> Vec<PortSet> {
        self.any_of.as_ref().map_or_else(Vec::new, |l| {
            l.0.iter().map(|r| PortSet::from_ranges([*r])).collect()
        })
    }

    /// Its citations: `source`, then `also`.
    pub fn citations(&self) -> impl Iterator<Item = &SourceRef> {
        std::iter::once(&self.source).chain(self.also.iter())
    }

    /// The requirement id.
    pub fn id(&self) -> &str {
        self.id.get_ref()
    }

    /// The peer group names.
    pub fn peers(&self) -> &[String] {
        &self.peer.get_ref().0
    }
}

/// Host-level values for the catalog's settings; unset ones take the catalog default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct HostSettings {
    values: BTreeMap<String, SettingValue>,
}

/// Why a host setting was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    /// The catalog defines no such setting.
    #[error("unknown setting `{name}`")]
    Unknown {
        /// The name given.
        name: String,
        /// The nearest defined setting.
        suggestion: Option<String>,
    },
    /// A boolean for a string setting or the reverse.
    #[error("setting `{name}` takes {expected}, found {found}")]
    WrongType {
        /// The setting.
        name: String,
        /// "a boolean" or "a string".
        expected: &'static str,
        /// The value given.
        found: SettingValue,
    },
    /// A string that is not one of the allowed values.
    #[error("setting `{name}` cannot be {value:?}")]
    NotAllowed {
        /// The setting.
        name: String,
        /// The value given.
        value: String,
        /// The allowed values.
        allowed: Vec<String>,
        /// The nearest allowed value.
        suggestion: Option<String>,
    },
}

impl HostSettings {
    /// No explicit settings: every setting takes its catalog default.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` after checking it against the catalog.
    pub fn set(
        &mut self,
        catalog: &Catalog,
        name: &str,
        value: SettingValue,
    ) -> Result<(), SettingError> {
        catalog.check_setting(name, &value)?;
        self.values.insert(name.to_string(), value);
        Ok(())
    }

    /// The explicit value of `name`, if the host set one.
    pub fn get(&self, name: &str) -> Option<&SettingValue> {
        self.values.get(name)
    }

    /// The explicitly set settings, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &SettingValue)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// How a requirement's ports were picked from a port set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PortChoice {
    /// The port set.
    pub port_set: String,
    /// The setting that picked the variant.
    pub setting: String,
    /// Its effective value.
    pub value: String,
}

/// One variant of a requirement's ports: its fixed ports, or what its port
/// set gives for one value of the set's setting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PortVariant {
    /// The setting and its value that pick these ports; `None` for fixed ports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<(String, String)>,
    /// The ports.
    pub ports: PortSet,
    /// Whether the setting's default picks this variant (true for fixed ports).
    pub default: bool,
}

/// Where a resolved requirement is documented (plain form of [`SourceRef`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Citation {
    /// Document name (a key of the catalog's sources).
    pub doc: String,
    /// Section of the document.
    pub section: String,
    /// The lines of the document's seed file that say it (empty for a
    /// document outside the seeds).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<u32>,
}

impl Citation {
    fn of(s: &SourceRef) -> Citation {
        Citation {
            doc: s.doc.get_ref().clone(),
            section: s.section.clone(),
            lines: s
                .lines
                .as_ref()
                .map_or_else(Vec::new, |l| l.get_ref().iter().collect()),
        }
    }
}

/// A requirement that applies to the host, with its ports decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResolvedRequirement {
    /// The role that defines the requirement.
    pub role: String,
    /// The requirement id within that role.
    pub requirement: String,
    /// The selected roles that brought it in, directly or through `includes`.
    pub selected_by: Vec<String>,
    /// Direction relative to the host.
    pub direction: Direction,
    /// Protocol.
    pub proto: Proto,
    /// The ports, with any port set resolved; for alternatives, all of them
    /// (any port a requirement may use).
    pub ports: PortSet,
    /// Alternatives (`any_of` in the catalog): one of these, fully open,
    /// satisfies the requirement; empty when every port of `ports` is needed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub any_of: Vec<PortSet>,
    /// How the ports were picked, when they come from a port set.
    pub port_choice: Option<PortChoice>,
    /// Peer groups on the other side.
    pub peers: Vec<String>,
    /// Whether a local service should listen.
    pub listen: bool,
    /// Interfaces concerned.
    pub scope: Scope,
    /// Whether a partly open range is normal.
    pub partial_ok: bool,
    /// Whether, with these settings, the ports are only a fallback channel.
    pub fallback: bool,
    /// What the connection is for.
    pub purpose: String,
    /// Remarks.
    pub note: Option<String>,
    /// Where it is documented.
    pub source: Citation,
    /// Further documents that say the same.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<Citation>,
}

/// The validated set of roles, peer groups, settings, port sets and sources.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    roles: BTreeMap<String, Role>,
    peer_groups: BTreeMap<String, PeerGroup>,
    settings: BTreeMap<String, SettingDef>,
    port_sets: BTreeMap<String, PortSetDef>,
    sources: BTreeMap<String, SourceDoc>,
}

impl Catalog {
    /// The role with this id.
    pub fn role(&self, id: &str) -> Option<&Role> {
        self.roles.get(id)
    }

    /// All roles, by id.
    pub fn roles(&self) -> impl Iterator<Item = &Role> {
        self.roles.values()
    }

    /// All role ids, sorted.
    pub fn role_ids(&self) -> impl Iterator<Item = &str> {
        self.roles.keys().map(String::as_str)
    }

    /// The peer group with this name.
    pub fn peer_group(&self, name: &str) -> Option<&PeerGroup> {
        self.peer_groups.get(name)
    }

    /// All peer groups, by name.
    pub fn peer_groups(&self) -> impl Iterator<Item = (&str, &PeerGroup)> {
        self.peer_groups.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The setting with this name.
    pub fn setting(&self, name: &str) -> Option<&SettingDef> {
        self.settings.get(name)
    }

    /// All settings, by name.
    pub fn settings(&self) -> impl Iterator<Item = (&str, &SettingDef)> {
        self.settings.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The port set with this name.
    pub fn port_set(&self, name: &str) -> Option<&PortSetDef> {
        self.port_sets.get(name)
    }

    /// The source document with this name.
    pub fn source(&self, name: &str) -> Option<&SourceDoc> {
        self.sources.get(name)
    }

    /// All source documents, by name.
    pub fn sources(&self) -> impl Iterator<Item = (&str, &SourceDoc)> {
        self.sources.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Every variant of a requirement's ports: one for fixed `ports`; for a
    /// `port_set`, one per value of its setting (in the setting's order),
    /// the default's marked.
    pub fn port_variants(&self, req: &Requirement) -> Vec<PortVariant> {
        if let Some(list) = req.ports.as_ref().or(req.any_of.as_ref()) {
            return vec![PortVariant {
                when: None,
                ports: list.to_set(),
                default: true,
            }];
        }
        let Some(set) = req
            .port_set
            .as_ref()
            .and_then(|n| self.port_sets.get(n.get_ref()))
        else {
            return Vec::new();
        };
        let setting = set.setting.get_ref();
        let Some(def) = self.settings.get(setting) else {
            return Vec::new();
        };
        let default = def.default.get_ref().to_string();
        def.possible_values()
            .into_iter()
            .filter_map(|value| {
                let ports = set.values.get(value.as_str())?.to_set();
                Some(PortVariant {
                    default: value == default,
                    when: Some((setting.clone(), value)),
                    ports,
                })
            })
            .collect()
    }

    /// The port sets, by name.
    pub fn port_sets(&self) -> impl Iterator<Item = (&str, &PortSetDef)> {
        self.port_sets.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Checks that `value` is valid for the setting `name`.
    pub fn check_setting(&self, name: &str, value: &SettingValue) -> Result<(), SettingError> {
        let def = self
            .settings
            .get(name)
            .ok_or_else(|| SettingError::Unknown {
                name: name.to_string(),
                suggestion: nearest(name, self.settings.keys().map(String::as_str))
                    .map(str::to_string),
            })?;
        match (def.default.get_ref(), value) {
            (SettingValue::Bool(_), SettingValue::Bool(_)) => Ok(()),
            (SettingValue::Text(_), SettingValue::Text(v)) if def.values.contains(v) => Ok(()),
            (SettingValue::Text(_), SettingValue::Text(v)) => Err(SettingError::NotAllowed {
                name: name.to_string(),
                value: v.clone(),
                allowed: def.values.clone(),
                suggestion: nearest(v, def.values.iter().map(String::as_str)).map(str::to_string),
            }),
            (default, found) => Err(SettingError::WrongType {
                name: name.to_string(),
                expected: default.type_name(),
                found: found.clone(),
            }),
        }
    }

    /// The effective value of setting `name` for a host: its explicit value or the default.
    pub fn setting_value<'a>(
        &'a self,
        settings: &'a HostSettings,
        name: &str,
    ) -> Option<&'a SettingValue> {
        settings
            .get(name)
            .or_else(|| self.settings.get(name).map(|d| d.default.get_ref()))
    }

    /// Whether all `conditions` hold for the host.
    pub fn holds(&self, conditions: &Conditions, settings: &HostSettings) -> bool {
        conditions.iter().all(|(name, cond)| {
            self.setting_value(settings, name.get_ref())
                .is_some_and(|v| cond.get_ref().matches(v))
        })
    }

    fn unknown_role(&self, id: &str) -> CatalogError {
        CatalogError::UnknownRole {
            id: id.to_string(),
            suggestion: nearest(id, self.role_ids()).map(str::to_string),
        }
    }

    /// The selected roles and every role they include, each once, included
    /// roles before the roles that include them.
    pub fn expand<S: AsRef<str>>(&self, role_ids: &[S]) -> Result<Vec<&Role>, CatalogError> {
        fn visit<'a>(
            cat: &'a Catalog,
            role: &'a Role,
            seen: &mut HashSet<&'a str>,
            out: &mut Vec<&'a Role>,
        ) {
            if !seen.insert(role.id()) {
                return;
            }
            for inc in &role.includes {
                if let Some(r) = cat.roles.get(inc.get_ref()) {
                    visit(cat, r, seen, out);
                }
            }
            out.push(role);
        }
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for id in role_ids {
            let role = self
                .role(id.as_ref())
                .ok_or_else(|| self.unknown_role(id.as_ref()))?;
            visit(self, role, &mut seen, &mut out);
        }
        Ok(out)
    }

    /// The requirements that apply to a host with these roles and settings:
    /// includes expanded, conditions applied, port sets resolved. A requirement
    /// reached from several selected roles appears once.
    pub fn resolve<S: AsRef<str>>(
        &self,
        role_ids: &[S],
        settings: &HostSettings,
    ) -> Result<Vec<ResolvedRequirement>, CatalogError> {
        let mut out: Vec<ResolvedRequirement> = Vec::new();
        let mut index: HashMap<(String, String), usize> = HashMap::new();
        for selected in role_ids {
            let selected = selected.as_ref();
            for role in self.expand(&[selected])? {
                for req in &role.requirements {
                    if !self.holds(&req.conditions, settings) {
                        continue;
                    }
                    let key = (role.id().to_string(), req.id().to_string());
                    if let Some(&i) = index.get(&key) {
                        if !out[i].selected_by.iter().any(|s| s == selected) {
                            out[i].selected_by.push(selected.to_string());
                        }
                        continue;
                    }
                    index.insert(key, out.len());
                    out.push(self.resolve_one(role, req, selected, settings));
                }
            }
        }
        Ok(out)
    }

    fn resolve_one(
        &self,
        role: &Role,
        req: &Requirement,
        selected: &str,
        settings: &HostSettings,
    ) -> ResolvedRequirement {
        let (ports, port_choice) = match (req.ports.as_ref().or(req.any_of.as_ref()), &req.port_set)
        {
            (Some(list), _) => (list.to_set(), None),
            (None, Some(name)) => self.pick_ports(name.get_ref(), settings),
            // Validation guarantees one of the three.
            (None, None) => (PortSet::new(), None),
        };
        ResolvedRequirement {
            role: role.id().to_string(),
            requirement: req.id().to_string(),
            selected_by: vec![selected.to_string()],
            direction: req.direction,
            proto: req.proto,
            ports,
            any_of: req.alternatives(),
            port_choice,
            peers: req.peers().to_vec(),
            listen: req.listen,
            scope: req.scope,
            partial_ok: req.partial_ok,
            fallback: req
                .fallback_when
                .as_ref()
                .is_some_and(|c| self.holds(c, settings)),
            purpose: req.purpose.clone(),
            note: req.note.clone(),
            source: Citation::of(&req.source),
            also: req.also.iter().map(Citation::of).collect(),
        }
    }

    fn pick_ports(&self, name: &str, settings: &HostSettings) -> (PortSet, Option<PortChoice>) {
        let Some(set) = self.port_sets.get(name) else {
            return (PortSet::new(), None);
        };
        let setting = set.setting.get_ref();
        let value = self
            .setting_value(settings, setting)
            .map(ToString::to_string)
            .unwrap_or_default();
        let ports = set
            .values
            .get(value.as_str())
            .map(PortList::to_set)
            .unwrap_or_default();
        let choice = PortChoice {
            port_set: name.to_string(),
            setting: setting.clone(),
            value,
        };
        (ports, Some(choice))
    }
}
