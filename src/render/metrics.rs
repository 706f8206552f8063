//! The daemon's state as Prometheus text exposition, for node_exporter's
//! textfile collector.

use crate::audit::Report;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// What the metrics say besides the report's findings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DaemonCounters {
    /// Seconds the last audit took.
    pub audit_duration_s: f64,
    /// When the last audit ended, seconds since the epoch.
    pub last_audit_unix_s: f64,
    /// Full re-reads of the ruleset since start (lost events, mismatches).
    pub resyncs: u64,
    /// Ruleset generations whose events were lost since start.
    pub lost_events: u64,
    /// Whether the last audit succeeded.
    pub up: bool,
}

/// Escapes a label value (backslash, quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `# HELP` and `# TYPE` of one metric.
fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The textfile: findings counted by kind, severity and role, and the
/// daemon's own gauges and counters.
pub fn textfile(report: &Report, c: &DaemonCounters) -> String {
    let mut counts: BTreeMap<(&str, &str, &str), u64> = BTreeMap::new();
    for f in &report.findings {
        let role = f.role.as_deref().unwrap_or("");
        *counts
            .entry((f.kind.name(), f.severity.name(), role))
            .or_default() += 1;
    }
    let mut out = String::new();
    header(
        &mut out,
        "portwarden_findings",
        "gauge",
        "Current findings by kind, severity and role (empty: required by no role).",
    );
    for ((kind, sev, role), n) in &counts {
        let _ = writeln!(
            out,
            "portwarden_findings{{kind=\"{}\",severity=\"{}\",role=\"{}\"}} {n}",
            label(kind),
            label(sev),
            label(role)
        );
    }
    for (name, kind, help, value) in [
        (
            "portwarden_audit_duration_seconds",
            "gauge",
            "How long the last audit took.",
            format!("{:.6}", c.audit_duration_s),
        ),
        (
            "portwarden_last_audit_timestamp_seconds",
            "gauge",
            "When the last audit ended (Unix time).",
            format!("{:.3}", c.last_audit_unix_s),
        ),
        (
            "portwarden_ruleset_generation",
            "gauge",
            "The nftables ruleset generation the last audit saw.",
            report.generation.to_string(),
        ),
        (
            "portwarden_resyncs_total",
            "counter",
            "Full re-reads of the ruleset since the daemon started.",
            c.resyncs.to_string(),
        ),
        (
            "portwarden_lost_events_total",
            "counter",
            "Ruleset generations whose change events were lost (ENOBUFS).",
            c.lost_events.to_string(),
        ),
        (
            "portwarden_up",
            "gauge",
            "1 when the last audit succeeded.",
            u8::from(c.up).to_string(),
        ),
    ] {
        header(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
    out
}
