//! The host configuration: which roles this host plays and how the audit
//! should judge it (`/etc/portwarden/portwarden.toml` by default; the commented
//! example is `config/portwarden.toml`).
//!
//! Roles, settings and peer groups are checked against the [`Catalog`]; every
//! error names the file, line and column, what was expected and, for a
//! misspelt name, the nearest valid one. Things that are legal but probably
//! not meant (a peer group no selected role uses, a prefix with host bits) are
//! returned as [`Warning`]s.

#[cfg(test)]
mod tests;

mod bulk;

use crate::catalog::{
    display_all, nearest, parse_toml_located, read_text, Catalog, Diagnostic, DiagnosticKind as K,
    Direction, HostSettings, LineIndex, Location, PortList, Proto, ReadTextError, SettingError,
    SettingValue,
};
use crate::ports::PortSet;
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Where the daemon and the CLI look for the host configuration.
pub const DEFAULT_PATH: &str = "/etc/portwarden/portwarden.toml";

/// The largest configuration file accepted, in bytes (8 MiB: a peer list of
/// half a million prefixes). A larger file is refused by its size, before it
/// is read. Loading takes time and memory in proportion to the file: peer
/// lists are read ahead of the `toml` crate (`bulk`), and a file of one
/// short prefix per line peaks at under 8 times its size (`cargo bench
/// --bench config_load`), so this limit bounds it to about 65 MiB.
pub const MAX_FILE_SIZE: u64 = 8 << 20;

/// Why a host configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_FILE_SIZE`]; refused before it is read.
    #[error("{path}: the file has {size} bytes, over the limit of {limit} bytes ({} MiB) for a configuration file; refused unread", limit >> 20)]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size in bytes (or as much as was read before giving up).
        size: u64,
        /// [`MAX_FILE_SIZE`].
        limit: u64,
    },
    /// The configuration does not parse or does not validate, one diagnostic each.
    #[error("{}", display_all(.0))]
    Invalid(Vec<Diagnostic>),
}

impl ConfigError {
    /// The located diagnostics of an [`ConfigError::Invalid`] error (empty otherwise).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ConfigError::Invalid(d) => d,
            ConfigError::Io { .. } | ConfigError::TooLarge { .. } => &[],
        }
    }

    /// Whether the only problem is that no role is selected: a valid
    /// configuration that does not say yet what to audit (a fresh install).
    pub fn is_only_no_roles(&self) -> bool {
        let d = self.diagnostics();
        !d.is_empty() && d.iter().all(|d| d.kind == K::NoRoles)
    }
}

/// What a [`Warning`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WarningKind {
    /// A bound peer group that no requirement of the selected roles uses.
    UnusedPeerGroup,
    /// A prefix with host bits set (`10.0.0.1/24`); the network address is used.
    HostBitsSet,
    /// A role selected twice.
    DuplicateRole,
    /// Stands for the warnings beyond [`MAX_DIAGNOSTICS`] (the message
    /// says how many).
    Omitted,
}

/// Something legal in the configuration that was probably not meant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// Where; `None` for command-line input.
    pub location: Option<Location>,
    /// What it is about.
    pub kind: WarningKind,
    /// Explanation, in one line.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(loc) = &self.location {
            write!(f, "{loc}: ")?;
        }
        write!(f, "warning: {}", self.message)
    }
}

/// How serious a finding is. Ordered from least to most serious.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Not reported at all.
    Ignore,
    /// Reported as fine; never alerts.
    Ok,
    /// Reported and alerted as a warning.
    Warning,
    /// Reported and alerted as critical.
    Critical,
}

impl Severity {
    /// The severity as the configuration and the JSON report spell it.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Ignore => "ignore",
            Severity::Ok => "ok",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// The kinds of finding whose severity the configuration can change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// A required inbound opening is missing (fully or, for ranges without `partial_ok`, partly).
    MissingOpening,
    /// An opening no requirement or `[[allow]]` entry accounts for.
    ExcessOpening,
    /// A listening service reachable from addresses it should not be.
    ExposedListener,
    /// A required listener is not running.
    NotListening,
    /// A required outbound connection is blocked.
    OutboundBlocked,
    /// A `partial_ok` range is only partly open (normal where Veeam opens ports on demand).
    PartialOpening,
    /// Something the audit was asked to check could not be checked (a
    /// private interface that matches no interface of the host).
    NotChecked,
}

impl FindingKind {
    /// The kind as the configuration and the JSON report spell it.
    pub fn name(self) -> &'static str {
        match self {
            FindingKind::MissingOpening => "missing-opening",
            FindingKind::ExcessOpening => "excess-opening",
            FindingKind::ExposedListener => "exposed-listener",
            FindingKind::NotListening => "not-listening",
            FindingKind::OutboundBlocked => "outbound-blocked",
            FindingKind::PartialOpening => "partial-opening",
            FindingKind::NotChecked => "not-checked",
        }
    }
}

/// Severity of each finding kind (`[severity]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct SeverityPolicy {
    /// Default `critical`.
    pub missing_opening: Severity,
    /// Default `warning`.
    pub excess_opening: Severity,
    /// Default `critical`.
    pub exposed_listener: Severity,
    /// Default `warning`.
    pub not_listening: Severity,
    /// Default `critical`.
    pub outbound_blocked: Severity,
    /// Default `ok`.
    pub partial_opening: Severity,
    /// Default `critical`.
    pub not_checked: Severity,
}

impl Default for SeverityPolicy {
    fn default() -> Self {
        SeverityPolicy {
            missing_opening: Severity::Critical,
            excess_opening: Severity::Warning,
            exposed_listener: Severity::Critical,
            not_listening: Severity::Warning,
            outbound_blocked: Severity::Critical,
            partial_opening: Severity::Ok,
            not_checked: Severity::Critical,
        }
    }
}

impl SeverityPolicy {
    /// The severity configured for `kind`.
    pub fn of(&self, kind: FindingKind) -> Severity {
        match kind {
            FindingKind::MissingOpening => self.missing_opening,
            FindingKind::ExcessOpening => self.excess_opening,
            FindingKind::ExposedListener => self.exposed_listener,
            FindingKind::NotListening => self.not_listening,
            FindingKind::OutboundBlocked => self.outbound_blocked,
            FindingKind::PartialOpening => self.partial_opening,
            FindingKind::NotChecked => self.not_checked,
        }
    }
}

/// Rejects 0 for durations that must be positive.
fn positive<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = u64::deserialize(d)?;
    if v == 0 {
        return Err(serde::de::Error::invalid_value(
            serde::de::Unexpected::Unsigned(0),
            &"a positive number of seconds",
        ));
    }
    Ok(v)
}

/// How `portwarden daemon` follows the host (`[daemon]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DaemonConfig {
    /// Quiet time after a committed ruleset change before auditing again,
    /// in milliseconds (default 20): a burst of transactions is audited once.
    pub debounce_ms: u64,
    /// Re-read the listening sockets every this many seconds (default 10;
    /// the kernel announces no socket changes).
    #[serde(deserialize_with = "positive")]
    pub sockets_interval_s: u64,
    /// Re-read the sets the packet path fills or whose elements time out
    /// every this many seconds (default 30; the kernel announces neither).
    #[serde(deserialize_with = "positive")]
    pub dynamic_sets_interval_s: u64,
    /// Compare the ruleset kept from notifications with a fresh full read
    /// every this many seconds, 0 = never (default 3600).
    #[serde(alias = "resync_interval_s")]
    pub verify_interval_s: u64,
    /// At most this many journal entries per finding within
    /// `flap_window_s`; the rest are counted and reported (default 4).
    #[serde(deserialize_with = "positive")]
    pub flap_limit: u64,
    /// The window of `flap_limit`, in seconds (default 600).
    #[serde(deserialize_with = "positive")]
    pub flap_window_s: u64,
    /// Where the last report is kept, replaced atomically (default
    /// `/run/portwarden/report.json`).
    pub report_path: PathBuf,
    /// node_exporter textfile for Prometheus, written by atomic rename;
    /// empty = none (default
    /// `/var/lib/prometheus/node-exporter/portwarden.prom`, written only when
    /// the directory exists).
    pub textfile_path: PathBuf,
    /// At start, one journal entry per existing finding besides the summary
    /// (default true).
    pub alert_existing: bool,
    /// `portwarden status` calls a report older than this many seconds
    /// stale (exit 3; default 120). The daemon refreshes it at every socket
    /// check.
    #[serde(deserialize_with = "positive")]
    pub stale_after_s: u64,
    /// Receive buffer for nftables change events, in KiB (default 16384,
    /// as `nft monitor`). A burst larger than this loses events, which the
    /// daemon answers with a full re-read.
    #[serde(deserialize_with = "positive")]
    pub event_buffer_kib: u64,
    /// Changes that only add or remove addresses of a deny list (an
    /// address-keyed set), none of them a bound peer's, are audited this
    /// many seconds after the first, together (default 300): they change no
    /// alert, and a fail2ban host changes its list every second.
    pub deny_list_audit_s: u64,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            debounce_ms: 20,
            sockets_interval_s: 10,
            dynamic_sets_interval_s: 30,
            verify_interval_s: 3600,
            flap_limit: 4,
            flap_window_s: 600,
            report_path: PathBuf::from("/run/portwarden/report.json"),
            textfile_path: PathBuf::from("/var/lib/prometheus/node-exporter/portwarden.prom"),
            alert_existing: true,
            stale_after_s: 120,
            event_buffer_kib: 16384,
            deny_list_audit_s: 300,
        }
    }
}

impl DaemonConfig {
    /// The `[daemon]` table of the configuration file at `path`, or the
    /// defaults when the file cannot be read or the table does not parse.
    /// For what needs the daemon's paths whether or not the rest of the
    /// file validates (`portwarden status`, a daemon with no role yet).
    pub fn from_file_leniently(path: &Path) -> DaemonConfig {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|t| t.parse::<toml::Table>().ok())
            .and_then(|t| t.get("daemon").cloned())
            .and_then(|d| d.try_into::<DaemonConfig>().ok())
            .unwrap_or_default()
    }
}

/// Where findings are sent (`[alerts]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// Log findings to the systemd journal (default true).
    pub journal: bool,
    /// Least severity that raises an alert (default `warning`).
    pub min_severity: Severity,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            journal: true,
            min_severity: Severity::Warning,
        }
    }
}

/// Which tool owns the host's firewall, for remediation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FirewallManager {
    /// Detect it.
    #[default]
    Auto,
    /// Plain nftables.
    Nft,
    /// firewalld.
    Firewalld,
    /// ufw.
    Ufw,
}

/// Automatic repair of missing openings (`[remediation]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RemediationConfig {
    /// Whether portwarden may change the firewall at all (default false).
    pub enabled: bool,
    /// Seconds after which an unconfirmed change is rolled back (default 60, must be positive).
    #[serde(deserialize_with = "positive")]
    pub rollback_timeout_s: u64,
    /// Firewall manager to act through (default `auto`).
    pub manager: FirewallManager,
}

impl Default for RemediationConfig {
    fn default() -> Self {
        RemediationConfig {
            enabled: false,
            rollback_timeout_s: 60,
            manager: FirewallManager::Auto,
        }
    }
}

/// An intended opening that no role requires (`[[allow]]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AllowRule {
    /// `in` (default) or `out`.
    pub direction: Direction,
    /// Protocol.
    pub proto: Proto,
    /// Ports.
    pub ports: PortSet,
    /// Peer prefixes (`from` for inbound, `to` for outbound); empty = any address.
    pub addresses: Vec<IpNet>,
    /// Interfaces; empty = any.
    pub interfaces: Vec<String>,
    /// Why the opening is intended.
    pub comment: String,
}

/// A validated host configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HostConfig {
    /// The file it was read from (`None` when built from the command line).
    pub path: Option<PathBuf>,
    /// Selected role ids, in the order given, without repeats.
    pub roles: Vec<String>,
    /// Host settings for the catalog's conditions.
    pub settings: HostSettings,
    /// Peer group bindings. A group absent here is unbound (any address); a
    /// group bound to an empty list has no members.
    pub peers: BTreeMap<String, Vec<IpNet>>,
    /// Peer groups pinned to interfaces (`[peer_interfaces]`, for asymmetric
    /// routing): the group's addresses are checked on these interfaces
    /// instead of the one the host routes them through. Only bound groups
    /// (keys of `peers`) can be pinned; each list is non-empty.
    pub peer_interfaces: BTreeMap<String, Vec<String>>,
    /// Interfaces facing the private network (for `scope = "private"` requirements).
    pub private_interfaces: Vec<String>,
    /// Intended extra openings.
    pub allow: Vec<AllowRule>,
    /// Severity per finding kind.
    pub severity: SeverityPolicy,
    /// Daemon timing.
    pub daemon: DaemonConfig,
    /// Alerting.
    pub alerts: AlertsConfig,
    /// Remediation.
    pub remediation: RemediationConfig,
}

/// Command-line options that stand in for a configuration file (see
/// [`HostConfig::from_cli_options`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CliOptions {
    /// `--role ID`, in order.
    pub roles: Vec<String>,
    /// `--peer GROUP=ADDR[/LEN][,ADDR...]`.
    pub peers: Vec<String>,
    /// `--set NAME=VALUE`.
    pub settings: Vec<String>,
    /// `--private-iface IF`.
    pub private_interfaces: Vec<String>,
}

fn default_in() -> Direction {
    Direction::In
}

/// The layout of the file, with positions kept for validation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    roles: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    settings: BTreeMap<Spanned<String>, Spanned<SettingValue>>,
    #[serde(default)]
    peers: BTreeMap<Spanned<String>, Vec<Spanned<String>>>,
    #[serde(default)]
    private_interfaces: Vec<Spanned<String>>,
    #[serde(default)]
    peer_interfaces: BTreeMap<Spanned<String>, Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    allow: Vec<RawAllow>,
    #[serde(default)]
    severity: SeverityPolicy,
    #[serde(default)]
    daemon: DaemonConfig,
    #[serde(default)]
    alerts: AlertsConfig,
    #[serde(default)]
    remediation: RemediationConfig,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAllow {
    #[serde(default = "default_in")]
    direction: Direction,
    proto: Proto,
    ports: Spanned<PortList>,
    #[serde(default)]
    from: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    to: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    interfaces: Vec<Spanned<String>>,
    comment: Spanned<String>,
}

/// Top-level keys of the file: written after a `[table]` header they land in
/// that table, a common TOML slip worth explaining.
const TOP_LEVEL_KEYS: &[&str] = &["roles", "private_interfaces"];

/// What to expect instead of an unknown name in a `[table]` holding `what`.
fn expected_in_table(name: &str, what: &str) -> String {
    if TOP_LEVEL_KEYS.contains(&name) {
        format!("{what}; `{name}` is a top-level key and must come before the first [table]")
    } else {
        what.to_string()
    }
}

/// At most this many errors, and as many warnings, are reported for one
/// configuration; the rest are counted in a last line ("N more errors not
/// shown"). A file with millions of bad entries is refused with a readable
/// message and without holding a diagnostic for each.
pub const MAX_DIAGNOSTICS: usize = 100;

/// Where a value came from: a byte range of the file, or `None` for a
/// command-line value. Turned into a line and column only when something is
/// reported about it.
type Span = Option<std::ops::Range<usize>>;

/// The file being checked, located lazily: its line index is built when
/// the first diagnostic needs it, and each location then costs a binary
/// search, so checking stays linear in the file's size.
struct Source<'t> {
    path: &'t Path,
    text: &'t str,
    index: std::cell::OnceCell<LineIndex>,
}

/// Collects diagnostics and warnings while checking values against the catalog.
struct Checker<'c> {
    catalog: &'c Catalog,
    /// The file; `None` for command-line options.
    source: Option<Source<'c>>,
    errors: Vec<Diagnostic>,
    warnings: Vec<Warning>,
    /// Errors and warnings beyond [`MAX_DIAGNOSTICS`], counted only.
    omitted_errors: usize,
    omitted_warnings: usize,
    /// Receives the details of an error that is only counted.
    spare: Diagnostic,
}

impl<'c> Checker<'c> {
    fn new(catalog: &'c Catalog, source: Option<Source<'c>>) -> Self {
        Checker {
            catalog,
            source,
            errors: Vec::new(),
            warnings: Vec::new(),
            omitted_errors: 0,
            omitted_warnings: 0,
            spare: Diagnostic::new(None, K::InvalidValue, String::new()),
        }
    }

    /// The line and column of `span` in the file.
    fn locate(&self, span: Span) -> Option<Location> {
        let (src, span) = (self.source.as_ref()?, span?);
        let index = src.index.get_or_init(|| LineIndex::new(src.text));
        Some(index.locate(src.path, src.text, span.start))
    }

    fn error(&mut self, span: Span, kind: K, message: String) -> &mut Diagnostic {
        if self.errors.len() >= MAX_DIAGNOSTICS {
            self.omitted_errors += 1;
            self.spare = Diagnostic::new(None, kind, message);
            return &mut self.spare;
        }
        let loc = self.locate(span);
        self.errors.push(Diagnostic::new(loc, kind, message));
        self.errors.last_mut().expect("just pushed")
    }

    fn warn(&mut self, span: Span, kind: WarningKind, message: String) {
        if self.warnings.len() >= MAX_DIAGNOSTICS {
            self.omitted_warnings += 1;
            return;
        }
        self.warnings.push(Warning {
            location: self.locate(span),
            kind,
            message,
        });
    }

    /// Adds a selected role to `roles` if the catalog defines it.
    fn role(&mut self, id: &str, loc: Span, roles: &mut Vec<String>) {
        if self.catalog.role(id).is_none() {
            let hint = nearest(id, self.catalog.role_ids()).map(str::to_string);
            let d = self.error(loc, K::UnknownRole, format!("unknown role `{id}`"));
            d.suggestion = hint;
            d.expected = Some("a role id defined by the catalog".into());
        } else if roles.iter().any(|r| r == id) {
            self.warn(
                loc,
                WarningKind::DuplicateRole,
                format!("role `{id}` is selected twice"),
            );
        } else {
            roles.push(id.to_string());
        }
    }

    fn setting(
        &mut self,
        name: &str,
        value: SettingValue,
        key_loc: Span,
        value_loc: Span,
        settings: &mut HostSettings,
    ) {
        let err = match settings.set(self.catalog, name, value) {
            Ok(()) => return,
            Err(e) => e,
        };
        let message = err.to_string();
        match err {
            SettingError::Unknown { suggestion, .. } => {
                let d = self.error(key_loc, K::UnknownSetting, message);
                d.suggestion = suggestion;
                d.expected = Some(expected_in_table(name, "a setting defined by the catalog"));
            }
            SettingError::WrongType { expected, .. } => {
                self.error(value_loc, K::WrongType, message).expected = Some(expected.into());
            }
            SettingError::NotAllowed {
                allowed,
                suggestion,
                ..
            } => {
                let d = self.error(value_loc, K::InvalidValue, message);
                d.suggestion = suggestion;
                d.expected = Some(format!("one of {}", allowed.join(", ")));
            }
        }
    }

    /// Whether the catalog defines peer group `name` (reports it if not).
    fn group(&mut self, name: &str, loc: Span) -> bool {
        if self.catalog.peer_group(name).is_some() {
            return true;
        }
        let hint = nearest(name, self.catalog.peer_groups().map(|(n, _)| n)).map(str::to_string);
        let d = self.error(
            loc,
            K::UnknownPeerGroup,
            format!("unknown peer group `{name}`"),
        );
        d.suggestion = hint;
        d.expected = Some(expected_in_table(
            name,
            "a peer group defined by the catalog",
        ));
        false
    }

    /// Parses an address (as a host prefix) or a prefix.
    fn prefix(&mut self, text: &str, loc: Span) -> Option<IpNet> {
        let text = text.trim();
        let net = match (text.parse::<IpNet>(), text.parse::<IpAddr>()) {
            (Ok(n), _) => n,
            (_, Ok(a)) => IpNet::from(a),
            _ => {
                self.error(
                    loc,
                    K::BadPrefix,
                    format!("invalid address or prefix {text:?}"),
                )
                .expected = Some(
                    "an IPv4 or IPv6 address or prefix, e.g. 10.0.0.10, 10.0.0.0/24 or fd00::/64"
                        .into(),
                );
                return None;
            }
        };
        let trunc = net.trunc();
        if trunc != net {
            self.warn(
                loc,
                WarningKind::HostBitsSet,
                format!("{net} has host bits set; using {trunc}"),
            );
        }
        Some(trunc)
    }

    /// Checks an interface name (`*` may end it, as in nftables).
    fn interface(&mut self, name: &str, loc: Span) -> Option<String> {
        let base = name.strip_suffix('*').unwrap_or(name);
        let ok = !base.is_empty()
            && name.len() < 16
            && base != "."
            && base != ".."
            && !base.contains(['/', ':', '*'])
            && !name.chars().any(char::is_whitespace);
        if ok {
            return Some(name.to_string());
        }
        self.error(
            loc,
            K::BadInterface,
            format!("invalid interface name {name:?}"),
        )
        .expected = Some(
            "1-15 characters without '/', ':' or spaces (a trailing '*' matches a prefix)".into(),
        );
        None
    }

    /// Reports an interface name (or `*` pattern) that matches none of
    /// `live` (when the host's interfaces are known).
    fn exists(&mut self, name: &str, live: Option<&[String]>, loc: Span, key: &str) {
        let Some(live) = live else { return };
        if live
            .iter()
            .any(|l| crate::audit::region::iface_matches(name, l))
        {
            return;
        }
        let hint = nearest(name, live.iter().map(String::as_str)).map(str::to_string);
        let d = self.error(
            loc,
            K::NoSuchInterface,
            format!("{key} entry {name:?} matches no interface of this host"),
        );
        d.suggestion = hint;
        d.expected = Some(format!(
            "one of this host's interfaces: {}",
            live.join(", ")
        ));
    }

    /// Warns about bound peer groups that no applicable requirement uses.
    fn unused_groups(&mut self, cfg: &HostConfig, loc_of: impl Fn(&str) -> Span) {
        let Ok(reqs) = self.catalog.resolve(&cfg.roles, &cfg.settings) else {
            return;
        };
        let used: BTreeSet<&str> = reqs
            .iter()
            .flat_map(|r| r.peers.iter().map(String::as_str))
            .collect();
        for group in cfg.peers.keys().filter(|g| !used.contains(g.as_str())) {
            self.warn(
                loc_of(group),
                WarningKind::UnusedPeerGroup,
                format!("peer group `{group}` is not used by any requirement of the selected roles with these settings"),
            );
        }
    }

    fn finish(mut self, cfg: HostConfig) -> Result<(HostConfig, Vec<Warning>), ConfigError> {
        if self.omitted_warnings > 0 {
            self.warnings.push(Warning {
                location: None,
                kind: WarningKind::Omitted,
                message: format!("{} more warnings not shown", self.omitted_warnings),
            });
        }
        if self.errors.is_empty() {
            return Ok((cfg, self.warnings));
        }
        if self.omitted_errors > 0 {
            self.errors.push(Diagnostic::new(
                None,
                K::Omitted,
                format!(
                    "{} more errors not shown (only the first {MAX_DIAGNOSTICS} are listed)",
                    self.omitted_errors
                ),
            ));
        }
        Err(ConfigError::Invalid(self.errors))
    }
}

impl HostConfig {
    /// A configuration with these roles and everything else at its default.
    fn with_roles(roles: Vec<String>) -> Self {
        HostConfig {
            path: None,
            roles,
            settings: HostSettings::new(),
            peers: BTreeMap::new(),
            peer_interfaces: BTreeMap::new(),
            private_interfaces: Vec::new(),
            allow: Vec::new(),
            severity: SeverityPolicy::default(),
            daemon: DaemonConfig::default(),
            alerts: AlertsConfig::default(),
            remediation: RemediationConfig::default(),
        }
    }

    /// Reads and validates the configuration file at `path` against `catalog`.
    pub fn load(path: &Path, catalog: &Catalog) -> Result<(HostConfig, Vec<Warning>), ConfigError> {
        Self::parse(path, &Self::read(path)?, catalog)
    }

    /// The file's text: at most [`MAX_FILE_SIZE`], UTF-8 (else the line and
    /// column of the first bad byte).
    fn read(path: &Path) -> Result<String, ConfigError> {
        read_text(path, MAX_FILE_SIZE).map_err(|e| match e {
            ReadTextError::Io(source) => ConfigError::Io {
                path: path.to_path_buf(),
                source,
            },
            ReadTextError::TooLarge { size } => ConfigError::TooLarge {
                path: path.to_path_buf(),
                size,
                limit: MAX_FILE_SIZE,
            },
            ReadTextError::NotUtf8(d) => ConfigError::Invalid(vec![d]),
        })
    }

    /// Like [`HostConfig::load`], and every `private_interfaces` and
    /// `[peer_interfaces]` entry must match one of `interfaces` (the host's
    /// interface names): `portwarden check-config`.
    pub fn load_on_host(
        path: &Path,
        catalog: &Catalog,
        interfaces: &[String],
    ) -> Result<(HostConfig, Vec<Warning>), ConfigError> {
        Self::parse_on(path, &Self::read(path)?, catalog, Some(interfaces))
    }

    /// Validates configuration `text`; `path` is used in messages.
    pub fn parse(
        path: &Path,
        text: &str,
        catalog: &Catalog,
    ) -> Result<(HostConfig, Vec<Warning>), ConfigError> {
        Self::parse_on(path, text, catalog, None)
    }

    /// [`HostConfig::parse`], checking interface names against `live`
    /// when given.
    fn parse_on(
        path: &Path,
        text: &str,
        catalog: &Catalog,
        live: Option<&[String]>,
    ) -> Result<(HostConfig, Vec<Warning>), ConfigError> {
        Self::parse_with(path, text, catalog, live, true)
    }

    /// [`HostConfig::parse_on`]; `read_ahead`: long peer lists are read
    /// ahead of the `toml` crate (see `bulk`; off only to test that it
    /// changes no outcome).
    fn parse_with(
        path: &Path,
        text: &str,
        catalog: &Catalog,
        live: Option<&[String]>,
        read_ahead: bool,
    ) -> Result<(HostConfig, Vec<Warning>), ConfigError> {
        let bulk = if read_ahead {
            bulk::extract(text)
        } else {
            bulk::Bulk {
                text: None,
                lists: Vec::new(),
            }
        };
        let mut raw: RawConfig =
            parse_toml_located(path, bulk.text.as_deref().unwrap_or(text), text)
                .map_err(|d| ConfigError::Invalid(vec![d]))?;
        drop(bulk.text);
        // Each list read ahead reads as empty in `raw`, with the same span.
        for (place, list) in bulk.lists {
            let slot = match &place {
                bulk::Place::Peers(group) => raw
                    .peers
                    .iter_mut()
                    .find(|(k, _)| k.get_ref() == group)
                    .map(|(_, v)| v),
                bulk::Place::AllowFrom(i) => raw
                    .allow
                    .get_mut(*i)
                    .and_then(|a| a.from.as_mut())
                    .map(|v| v.get_mut()),
                bulk::Place::AllowTo(i) => raw
                    .allow
                    .get_mut(*i)
                    .and_then(|a| a.to.as_mut())
                    .map(|v| v.get_mut()),
            };
            if let Some(v) = slot {
                *v = list;
            }
        }
        let at = |span: std::ops::Range<usize>| -> Span { Some(span) };
        let source = Source {
            path,
            text,
            index: std::cell::OnceCell::new(),
        };
        let mut ck = Checker::new(catalog, Some(source));
        let mut cfg = HostConfig::with_roles(Vec::new());
        cfg.path = Some(path.to_path_buf());

        if raw.roles.get_ref().is_empty() {
            ck.error(at(raw.roles.span()), K::NoRoles, "no role selected".into())
                .expected =
                Some("at least one role id, e.g. roles = [\"veeam-linux-repository\"]".into());
        }
        for id in raw.roles.get_ref() {
            ck.role(id.get_ref(), at(id.span()), &mut cfg.roles);
        }
        for (name, value) in raw.settings {
            let (key, val) = (at(name.span()), at(value.span()));
            ck.setting(
                name.get_ref(),
                value.into_inner(),
                key,
                val,
                &mut cfg.settings,
            );
        }
        let mut group_locs = BTreeMap::new();
        for (group, addrs) in &raw.peers {
            if ck.group(group.get_ref(), at(group.span())) {
                let nets = addrs
                    .iter()
                    .filter_map(|a| ck.prefix(a.get_ref(), at(a.span())))
                    .collect();
                cfg.peers.insert(group.get_ref().clone(), nets);
                group_locs.insert(group.get_ref().clone(), group.span());
            }
        }
        for name in &raw.private_interfaces {
            if let Some(n) = ck.interface(name.get_ref(), at(name.span())) {
                ck.exists(&n, live, at(name.span()), "private_interfaces");
                cfg.private_interfaces.push(n);
            }
        }
        for (group, list) in &raw.peer_interfaces {
            let loc = at(group.span());
            if !ck.group(group.get_ref(), loc.clone()) {
                continue;
            }
            if !cfg.peers.contains_key(group.get_ref()) {
                ck.error(
                    loc,
                    K::InvalidValue,
                    format!(
                        "peer group `{}` is pinned to interfaces but has no addresses",
                        group.get_ref()
                    ),
                )
                .expected = Some(format!(
                    "its addresses in [peers], e.g. {} = [\"10.0.0.10\"]",
                    group.get_ref()
                ));
                continue;
            }
            if list.get_ref().is_empty() {
                ck.error(
                    at(list.span()),
                    K::Empty,
                    format!("no interface for peer group `{}`", group.get_ref()),
                )
                .expected = Some(
                    "at least one interface name; leave the group out to check it where the host routes it".into(),
                );
                continue;
            }
            let mut names = Vec::new();
            for name in list.get_ref() {
                if let Some(n) = ck.interface(name.get_ref(), at(name.span())) {
                    ck.exists(&n, live, at(name.span()), "[peer_interfaces]");
                    names.push(n);
                }
            }
            cfg.peer_interfaces.insert(group.get_ref().clone(), names);
        }
        for a in raw.allow {
            if let Some(rule) = Self::allow_rule(&mut ck, a, &at) {
                cfg.allow.push(rule);
            }
        }
        cfg.severity = raw.severity;
        cfg.daemon = raw.daemon;
        cfg.alerts = raw.alerts;
        cfg.remediation = raw.remediation;
        if ck.errors.is_empty() {
            ck.unused_groups(&cfg, |g| group_locs.get(g).and_then(|s| at(s.clone())));
        }
        ck.finish(cfg)
    }

    fn allow_rule(
        ck: &mut Checker<'_>,
        a: RawAllow,
        at: &impl Fn(std::ops::Range<usize>) -> Span,
    ) -> Option<AllowRule> {
        let errors_before = ck.errors.len();
        if a.comment.get_ref().trim().is_empty() {
            ck.error(
                at(a.comment.span()),
                K::Empty,
                "empty comment in [[allow]]".into(),
            )
            .expected = Some("a comment saying why the opening is intended".into());
        }
        if a.ports.get_ref().0.is_empty() {
            ck.error(at(a.ports.span()), K::Empty, "no ports in [[allow]]".into())
                .expected = Some("at least one port or range".into());
        }
        let (wrong, wrong_key) = match a.direction {
            Direction::In => (&a.to, "to"),
            Direction::Out => (&a.from, "from"),
        };
        if let Some(w) = wrong {
            let right = if wrong_key == "to" { "from" } else { "to" };
            ck.error(
                at(w.span()),
                K::InvalidValue,
                format!("`{wrong_key}` does not fit direction \"{}\"", a.direction),
            )
            .expected = Some(format!("`{right}` for this direction"));
        }
        let addrs = match a.direction {
            Direction::In => a.from,
            Direction::Out => a.to,
        };
        let addresses = addrs
            .map(Spanned::into_inner)
            .unwrap_or_default()
            .iter()
            .filter_map(|s| ck.prefix(s.get_ref(), at(s.span())))
            .collect();
        let interfaces = a
            .interfaces
            .iter()
            .filter_map(|i| ck.interface(i.get_ref(), at(i.span())))
            .collect();
        (ck.errors.len() == errors_before).then(|| AllowRule {
            direction: a.direction,
            proto: a.proto,
            ports: a.ports.get_ref().to_set(),
            addresses,
            interfaces,
            comment: a.comment.into_inner(),
        })
    }

    /// A configuration from command-line options, without a file:
    /// `--role ID` (repeatable), `--peer GROUP=ADDR[/LEN][,ADDR...]`
    /// (repeatable; repeated groups accumulate) and `--set NAME=VALUE`
    /// (`true`/`false` give a boolean). Everything else takes its default.
    pub fn from_cli<S: AsRef<str>>(
        catalog: &Catalog,
        roles: &[S],
        peers: &[S],
        settings: &[S],
    ) -> Result<(HostConfig, Vec<Warning>), ConfigError> {
        let own = |v: &[S]| v.iter().map(|s| s.as_ref().to_string()).collect();
        Self::from_cli_options(
            catalog,
            &CliOptions {
                roles: own(roles),
                peers: own(peers),
                settings: own(settings),
                private_interfaces: Vec::new(),
            },
        )
    }

    /// Like [`HostConfig::from_cli`], with every command-line option
    /// including `--private-iface IF` (repeatable). All errors are reported
    /// together.
    pub fn from_cli_options(
        catalog: &Catalog,
        opts: &CliOptions,
    ) -> Result<(HostConfig, Vec<Warning>), ConfigError> {
        let (roles, peers, settings) = (&opts.roles, &opts.peers, &opts.settings);
        let mut ck = Checker::new(catalog, None);
        let mut cfg = HostConfig::with_roles(Vec::new());
        if roles.is_empty() {
            ck.error(None, K::NoRoles, "no role selected".into())
                .expected = Some("at least one --role ID".into());
        }
        for id in roles {
            ck.role(id.trim(), None, &mut cfg.roles);
        }
        for arg in peers {
            let Some((group, list)) = arg.split_once('=') else {
                ck.error(None, K::InvalidValue, format!("--peer {arg:?} has no '='"))
                    .expected =
                    Some("GROUP=ADDRESS[/LEN][,ADDRESS...], e.g. backup_server=10.0.0.10".into());
                continue;
            };
            let group = group.trim();
            if ck.group(group, None) {
                let nets: Vec<IpNet> = list
                    .split(',')
                    .filter(|s| !s.trim().is_empty())
                    .filter_map(|s| ck.prefix(s, None))
                    .collect();
                cfg.peers.entry(group.to_string()).or_default().extend(nets);
            }
        }
        for arg in settings {
            let Some((name, value)) = arg.split_once('=') else {
                ck.error(None, K::InvalidValue, format!("--set {arg:?} has no '='"))
                    .expected = Some("NAME=VALUE, e.g. veeam_data_range=legacy".into());
                continue;
            };
            let value = match value.trim() {
                "true" => SettingValue::Bool(true),
                "false" => SettingValue::Bool(false),
                v => SettingValue::Text(v.to_string()),
            };
            ck.setting(name.trim(), value, None, None, &mut cfg.settings);
        }
        for name in &opts.private_interfaces {
            if let Some(n) = ck.interface(name.trim(), None) {
                if !cfg.private_interfaces.contains(&n) {
                    cfg.private_interfaces.push(n);
                }
            }
        }
        if ck.errors.is_empty() {
            ck.unused_groups(&cfg, |_| None);
        }
        ck.finish(cfg)
    }
}
