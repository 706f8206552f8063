//! Alerts report changes, not state: a finding is logged when it appears
//! and when it is resolved, once each, and a finding that keeps coming and
//! going is held to `flap_limit` entries per `flap_window_s`.

use crate::audit::{Finding, Report};
use crate::config::Severity;
use crate::render::journal::{self, FindingFields};
use crate::render::status::ChangedBy;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// One journal entry the daemon is to write.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    /// New or resolved.
    pub what: Change,
    /// The finding's fields.
    pub fields: FindingFields,
    /// The finding's severity (for a resolved one: what it was).
    pub severity: Severity,
    /// The finding's summary.
    pub summary: String,
    /// Entries about this finding held back by the flap limit since the
    /// last one written.
    pub suppressed: u64,
}

/// Whether a finding appeared or went away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// It is new (or present at start).
    New,
    /// It is resolved.
    Resolved,
}

impl Alert {
    /// The entry's `MESSAGE_ID`.
    pub fn message_id(&self) -> &'static str {
        match self.what {
            Change::New => self.fields.message_id,
            Change::Resolved => journal::RESOLVED,
        }
    }

    /// The entry's `MESSAGE`.
    pub fn message(&self, changed_by: Option<&ChangedBy>) -> String {
        let by = changed_by
            .map(|c| format!(" (after a change by {c})"))
            .unwrap_or_default();
        let held = if self.suppressed > 0 {
            format!(
                "; {} more entries about this finding were held back (flapping)",
                self.suppressed
            )
        } else {
            String::new()
        };
        match self.what {
            Change::New => format!("{}{by}{held}", self.summary),
            Change::Resolved => format!("resolved: {}{by}{held}", self.summary),
        }
    }
}

#[derive(Debug, Default)]
struct Flap {
    /// When entries about the finding were written, within the window.
    written: VecDeque<Instant>,
    /// Entries held back since the last one written.
    held: u64,
}

/// What the daemon has said so far.
#[derive(Debug)]
pub struct Alerter {
    /// The findings currently reported, by id: (severity, summary, fields).
    current: HashMap<String, (Severity, String, FindingFields)>,
    flaps: HashMap<String, Flap>,
    limit: usize,
    window: Duration,
    /// Total entries held back by the flap limit.
    pub suppressed_total: u64,
}

impl Alerter {
    /// No finding known yet.
    pub fn new(limit: u64, window: Duration) -> Alerter {
        Alerter {
            current: HashMap::new(),
            flaps: HashMap::new(),
            limit: usize::try_from(limit).unwrap_or(usize::MAX).max(1),
            window,
            suppressed_total: 0,
        }
    }

    /// Changes the flap limit (on reload).
    pub fn set_limit(&mut self, limit: u64, window: Duration) {
        self.limit = usize::try_from(limit).unwrap_or(usize::MAX).max(1);
        self.window = window;
    }

    /// Compares `report` with what was reported before and returns the
    /// entries to write, most severe first. Findings of severity `ok` are
    /// tracked but never alerted. With `announce` false (the first report,
    /// when `alert_existing` is off) the findings are only remembered.
    pub fn update(&mut self, report: &Report, announce: bool, now: Instant) -> Vec<Alert> {
        let seen: HashMap<&str, &Finding> =
            report.findings.iter().map(|f| (f.id.as_str(), f)).collect();
        let mut gone: Vec<String> = self
            .current
            .keys()
            .filter(|id| !seen.contains_key(id.as_str()))
            .cloned()
            .collect();
        gone.sort();
        let mut out = Vec::new();
        for f in &report.findings {
            if self.current.contains_key(&f.id) {
                continue;
            }
            let fields = FindingFields::of(f);
            // The same opening whose sources changed (a deny list in front
            // of it took or dropped an address): not a new hole.
            let same = same_hole(&fields).then(|| {
                gone.iter().position(|id| {
                    self.current
                        .get(id)
                        .is_some_and(|(_, _, g)| hole(g) == hole(&fields))
                })
            });
            if let Some(Some(i)) = same {
                let old = gone.remove(i);
                self.current.remove(&old);
                if let Some(flap) = self.flaps.remove(&old) {
                    self.flaps.insert(f.id.clone(), flap);
                }
                self.current
                    .insert(f.id.clone(), (f.severity, f.summary.clone(), fields));
                continue;
            }
            self.current.insert(
                f.id.clone(),
                (f.severity, f.summary.clone(), fields.clone()),
            );
            if announce && f.severity > Severity::Ok {
                if let Some(suppressed) = self.admit(&f.id, now) {
                    out.push(Alert {
                        what: Change::New,
                        fields,
                        severity: f.severity,
                        summary: f.summary.clone(),
                        suppressed,
                    });
                }
            }
        }
        for id in gone {
            let Some((severity, summary, fields)) = self.current.remove(&id) else {
                continue;
            };
            if severity > Severity::Ok {
                if let Some(suppressed) = self.admit(&id, now) {
                    out.push(Alert {
                        what: Change::Resolved,
                        fields,
                        severity,
                        summary,
                        suppressed,
                    });
                }
            }
        }
        out.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.fields.finding_id.cmp(&b.fields.finding_id))
        });
        out
    }

    /// Whether an entry about `id` may be written now: `Some(held back
    /// since the last one)`, or `None` when the flap limit holds it back.
    fn admit(&mut self, id: &str, now: Instant) -> Option<u64> {
        let flap = self.flaps.entry(id.to_string()).or_default();
        while flap
            .written
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            flap.written.pop_front();
        }
        if flap.written.len() >= self.limit {
            flap.held += 1;
            self.suppressed_total += 1;
            return None;
        }
        flap.written.push_back(now);
        Some(std::mem::take(&mut flap.held))
    }
}

/// Whether a finding of this kind stays the same hole when only its
/// sources change: an opening too wide or a listener too exposed is still
/// that one when a deny list in front of it changes (fail2ban adding an
/// address must not read as "resolved" plus "new"). A missing opening or a
/// blocked outbound connection whose peers change is a change to report.
fn same_hole(f: &FindingFields) -> bool {
    matches!(f.kind, "excess-opening" | "exposed-listener")
}

/// What identifies a hole apart from its sources.
fn hole(f: &FindingFields) -> (&str, &str, &str, &str, &str, &str, &str) {
    (
        f.kind,
        f.severity,
        &f.role,
        &f.requirement,
        f.proto,
        &f.ports,
        &f.rule,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Finding;
    use crate::catalog::{Direction, Proto};
    use crate::config::FindingKind;

    fn finding(id: &str, severity: Severity) -> Finding {
        Finding {
            id: id.into(),
            severity,
            kind: FindingKind::MissingOpening,
            role: Some("veeam-data-mover".into()),
            requirement: Some("transport".into()),
            needed_by: Vec::new(),
            direction: Direction::In,
            proto: Proto::Tcp,
            ports: crate::ports::PortSet::from_ranges([
                crate::ports::PortRange::new(6162, 6162).unwrap()
            ]),
            peers: vec!["10.0.0.10/32".parse().unwrap()],
            interfaces: vec!["eth1".into()],
            summary: format!("finding {id}"),
            evidence: Vec::new(),
            fix: None,
            pieces: Vec::new(),
            alternatives: Vec::new(),
        }
    }

    fn report(findings: Vec<Finding>) -> Report {
        Report {
            generation: 1,
            findings,
            notes: Vec::new(),
        }
    }

    #[test]
    fn new_and_resolved_findings_are_each_logged_once() {
        let mut a = Alerter::new(4, Duration::from_secs(600));
        let t = Instant::now();
        let r1 = report(vec![finding("a", Severity::Critical)]);
        let got = a.update(&r1, true, t);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].what, Change::New);
        assert_eq!(got[0].fields.finding_id, "a");
        // The same state again: nothing.
        assert!(a.update(&r1, true, t).is_empty());
        let got = a.update(&report(vec![]), true, t);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].what, Change::Resolved);
        assert_eq!(got[0].message_id(), journal::RESOLVED);
        assert!(a.update(&report(vec![]), true, t).is_empty());
    }

    #[test]
    fn an_excess_opening_whose_sources_change_is_the_same_hole() {
        let mut a = Alerter::new(4, Duration::from_secs(600));
        let t = Instant::now();
        let excess = |id: &str, peer: &str| {
            let mut f = finding(id, Severity::Warning);
            f.kind = FindingKind::ExcessOpening;
            f.role = None;
            f.requirement = None;
            f.peers = vec![peer.parse().unwrap()];
            f
        };
        assert_eq!(
            a.update(&report(vec![excess("x1", "0.0.0.0/1")]), true, t)
                .len(),
            1
        );
        // A deny list took some sources: another id, the same hole.
        assert!(a
            .update(&report(vec![excess("x2", "0.0.0.0/2")]), true, t)
            .is_empty());
        // Gone for real: resolved, once.
        let got = a.update(&report(vec![]), true, t);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].fields.finding_id, "x2");
        // A missing opening whose peers change is reported as such.
        let mut m2 = finding("m2", Severity::Critical);
        m2.peers = vec!["10.0.0.11/32".parse().unwrap()];
        a.update(&report(vec![finding("m1", Severity::Critical)]), true, t);
        assert_eq!(a.update(&report(vec![m2]), true, t).len(), 2);
    }

    #[test]
    fn ok_findings_never_alert_and_quiet_start_only_remembers() {
        let mut a = Alerter::new(4, Duration::from_secs(600));
        let t = Instant::now();
        let r = report(vec![
            finding("ok", Severity::Ok),
            finding("w", Severity::Warning),
        ]);
        assert!(a.update(&r, false, t).is_empty());
        assert!(a.update(&r, true, t).is_empty());
        let got = a.update(&report(vec![finding("ok", Severity::Ok)]), true, t);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].fields.finding_id, "w");
        assert_eq!(got[0].what, Change::Resolved);
    }

    #[test]
    fn a_flapping_finding_is_held_to_the_limit_and_the_count_reported() {
        let mut a = Alerter::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        let on = report(vec![finding("f", Severity::Critical)]);
        let off = report(vec![]);
        let mut written = 0;
        for i in 0..10 {
            let r = if i % 2 == 0 { &on } else { &off };
            written += a.update(r, true, t0).len();
        }
        assert_eq!(written, 2);
        assert_eq!(a.suppressed_total, 8);
        // After the window, the next entry says how many were held back.
        let later = t0 + Duration::from_secs(61);
        let got = a.update(&on, true, later);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].suppressed, 8);
        assert!(got[0].message(None).contains("8 more entries"));
    }
}
