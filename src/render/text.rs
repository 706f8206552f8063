//! The report as text: findings grouped by role (then those no role
//! requires), most severe first, each with its evidence and fix; ANSI
//! colour only when asked for (the CLI asks when stdout is a terminal and
//! `NO_COLOR` is unset).

use crate::audit::{Finding, Fix, Report};
use crate::config::Severity;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Whether to colour output written to stdout: a terminal, and `NO_COLOR`
/// unset or empty (<https://no-color.org>).
pub fn colour_for_stdout() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && !std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

struct Paint {
    on: bool,
}

impl Paint {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn severity(&self, s: Severity) -> String {
        let (code, word) = match s {
            Severity::Critical => ("1;31", "CRITICAL"),
            Severity::Warning => ("1;33", "WARNING "),
            Severity::Ok => ("32", "OK      "),
            Severity::Ignore => ("2", "IGNORED "),
        };
        self.wrap(code, word)
    }
    fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }
    fn dim(&self, s: &str) -> String {
        self.wrap("2", s)
    }
}

fn kind_word(f: &Finding) -> String {
    f.kind.name().to_string()
}

fn finding(out: &mut String, f: &Finding, p: &Paint) {
    let indent = "            ";
    let ports = if f.ports.is_empty() {
        String::new()
    } else {
        format!(" {} {}", f.proto, f.ports)
    };
    let req = f
        .requirement
        .as_ref()
        .map(|r| format!(" {r}:"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "  {}  {}{req}{ports}  {}",
        p.severity(f.severity),
        p.bold(&kind_word(f)),
        p.dim(&format!("[{}]", f.id))
    );
    let _ = writeln!(out, "{indent}{}", f.summary);
    for e in &f.evidence {
        let _ = writeln!(out, "{indent}{} {}", p.dim("evidence:"), e.line());
    }
    if let Some(fix) = &f.fix {
        let mut block = |label: &str, text: &str| {
            let mut lines = text.lines();
            if let Some(first) = lines.next() {
                let _ = writeln!(out, "{indent}{} {first}", p.dim(label));
                let pad = " ".repeat(label.len() + 1);
                for l in lines {
                    let _ = writeln!(out, "{indent}{pad}{l}");
                }
            }
        };
        match fix {
            Fix::Proven {
                nft,
                firewalld,
                ufw,
                changes,
            } => {
                // Where a legacy iptables table decides, the commands are
                // iptables-legacy ones.
                let legacy = changes.iter().find_map(|c| match c {
                    crate::audit::change::Change::InsertLegacyRule { at, .. } => {
                        Some(at.family.command())
                    }
                    _ => None,
                });
                block(&format!("fix ({}):", legacy.unwrap_or("nft")), nft);
                if let Some(t) = firewalld {
                    block("fix (firewalld):", t);
                }
                if let Some(t) = ufw {
                    block("fix (ufw):", t);
                }
            }
            Fix::NoSafeFix { reason, evidence } => {
                block("no safe automatic fix:", reason);
                for e in evidence {
                    block("  proof:", e);
                }
            }
        }
    }
}

/// The report as text.
pub fn render(report: &Report, colour: bool) -> String {
    let p = Paint { on: colour };
    let mut out = String::new();
    let count = |s: Severity| report.findings.iter().filter(|f| f.severity == s).count();
    let _ = writeln!(
        out,
        "{} (ruleset generation {}): {} critical, {} warning, {} ok",
        p.bold("portwarden audit"),
        report.generation,
        count(Severity::Critical),
        count(Severity::Warning),
        count(Severity::Ok)
    );
    if report.findings.is_empty() {
        let _ = writeln!(out, "\nno findings");
    }
    let mut by_role: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
    let mut no_role: Vec<&Finding> = Vec::new();
    for f in &report.findings {
        match &f.role {
            Some(r) => by_role.entry(r.as_str()).or_default().push(f),
            None => no_role.push(f),
        }
    }
    for (role, fs) in by_role {
        let _ = writeln!(out, "\n{}", p.bold(role));
        for f in fs {
            finding(&mut out, f, &p);
        }
    }
    if !no_role.is_empty() {
        let _ = writeln!(out, "\n{}", p.bold("not required by any role"));
        for f in no_role {
            finding(&mut out, f, &p);
        }
    }
    if !report.notes.is_empty() {
        let _ = writeln!(out, "\n{}", p.bold("notes"));
        for n in &report.notes {
            let _ = writeln!(out, "  - {n}");
        }
    }
    out
}
