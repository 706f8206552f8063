//! The daemon's report file (`report_path`) as `portwarden status` reads
//! it back: `audit --json`'s document plus `audited_at`, `checked_at` and
//! `changed_by`.

use crate::config::Severity;
use serde::Deserialize;
use std::fmt::Write as _;

/// The parts of the report file that `status` shows.
#[derive(Clone, Debug, Deserialize)]
pub struct StatusDoc {
    /// The ruleset generation audited.
    pub generation: u32,
    /// The findings, most severe first.
    pub findings: Vec<StatusFinding>,
    /// When the report was made (RFC 3339).
    #[serde(default)]
    pub audited_at: Option<String>,
    /// When the daemon last confirmed it still holds (RFC 3339).
    #[serde(default)]
    pub checked_at: Option<String>,
    /// The process whose commit led to it.
    #[serde(default)]
    pub changed_by: Option<ChangedBy>,
}

/// The report file of a daemon whose configuration selects no role yet.
#[derive(Clone, Debug, Deserialize)]
pub struct NotConfigured {
    /// What to configure, in one sentence.
    pub not_configured: String,
}

/// A process that committed a ruleset change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct ChangedBy {
    /// Its pid.
    pub pid: Option<u32>,
    /// Its command name.
    pub comm: Option<String>,
    /// When the change was seen (RFC 3339).
    pub at: Option<String>,
}

impl std::fmt::Display for ChangedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.comm, self.pid) {
            (Some(c), Some(p)) => write!(f, "{c}[{p}]"),
            (Some(c), None) => f.write_str(c),
            (None, Some(p)) => write!(f, "pid {p}"),
            (None, None) => f.write_str("unknown"),
        }
    }
}

/// One finding, as `status` lists it.
#[derive(Clone, Debug, Deserialize)]
pub struct StatusFinding {
    /// Stable id.
    pub id: String,
    /// Severity.
    pub severity: Severity,
    /// Kind, as the JSON spells it.
    pub kind: String,
    /// One sentence.
    pub summary: String,
}

/// Counts of findings by severity: `(critical, warning)`.
pub fn counts<'a>(sev: impl IntoIterator<Item = &'a Severity>) -> (usize, usize) {
    sev.into_iter().fold((0, 0), |(c, w), s| match s {
        Severity::Critical => (c + 1, w),
        Severity::Warning => (c, w + 1),
        _ => (c, w),
    })
}

/// The one-line summary: `2 critical, 3 warning; generation 42; last
/// change 12:03:05 by nft[1234]`.
pub fn summary_line(
    critical: usize,
    warning: usize,
    generation: u32,
    changed: Option<&ChangedBy>,
) -> String {
    let mut s = format!("{critical} critical, {warning} warning; generation {generation}");
    if let Some(c) = changed {
        let at = c.at.as_deref().and_then(|t| t.get(11..19)).unwrap_or("?");
        let _ = write!(s, "; last change {at} by {c}");
    }
    s
}

/// What `portwarden status` prints: the summary, then one line per finding
/// that is not `ok`.
pub fn text(doc: &StatusDoc) -> String {
    let (c, w) = counts(doc.findings.iter().map(|f| &f.severity));
    let mut out = summary_line(c, w, doc.generation, doc.changed_by.as_ref());
    out.push('\n');
    if let Some(at) = &doc.audited_at {
        let _ = writeln!(out, "audited at {at}");
    }
    for f in doc.findings.iter().filter(|f| f.severity > Severity::Ok) {
        let _ = writeln!(
            out,
            "  {:<8} {:<16} {}  [{}]",
            f.severity.name(),
            f.kind,
            f.summary,
            f.id
        );
    }
    out
}

/// The monitoring-plugin exit code of the findings: 0, 1 warnings, 2
/// criticals.
pub fn exit_code(doc: &StatusDoc) -> u8 {
    match doc.findings.iter().map(|f| f.severity).max() {
        Some(Severity::Critical) => 2,
        Some(Severity::Warning) => 1,
        _ => 0,
    }
}
