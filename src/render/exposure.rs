//! Text output of `portwarden exposure`.

use crate::addrs::AddrSet;
use crate::eval::exposure::{Exposure, Opening};
use crate::eval::{DecidedBy, Verdict};
use std::fmt::Write as _;

/// Most prefixes printed for one opening's sources before summarising.
const MAX_PREFIXES: usize = 6;

/// Sources in a line: prefixes, or a count with the first few (or "any
/// except ..." when the complement is the short one).
fn sources(s: &AddrSet) -> String {
    if s.is_all() {
        return "any".into();
    }
    let p = s.to_prefixes();
    if p.len() <= MAX_PREFIXES {
        return p
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(", ");
    }
    let c = s.complement().to_prefixes();
    if c.len() <= MAX_PREFIXES {
        let list: Vec<String> = c.iter().map(|p| p.to_string()).collect();
        return format!("any except {}", list.join(", "));
    }
    format!(
        "{} prefixes ({}, ...; any except {} prefixes); see --json",
        p.len(),
        p[0],
        c.len()
    )
}

fn decider(o: &Opening) -> String {
    match &o.decided_by {
        Some(DecidedBy::Rule(r)) => {
            format!("{} {} {} handle {}", r.family, r.table, r.chain, r.handle)
        }
        Some(DecidedBy::Policy(p)) => format!(
            "policy {} of {} {} {}",
            format!("{:?}", p.policy).to_lowercase(),
            p.family,
            p.table,
            p.chain
        ),
        None => "no base chain".into(),
    }
}

/// The exposure map as text: one line per opening, by family, protocol
/// and interface.
pub fn text(x: &Exposure) -> String {
    let mut out = String::new();
    let mut v: Vec<&Opening> = x.openings.iter().collect();
    v.sort_by(|a, b| {
        (a.family, a.proto as u8, &a.iif, a.ports.first(), &a.to).cmp(&(
            b.family,
            b.proto as u8,
            &b.iif,
            b.ports.first(),
            &b.to,
        ))
    });
    if v.is_empty() {
        out.push_str("no new inbound TCP or UDP connection is accepted\n");
    }
    let mut head = None;
    for o in v {
        let h = (o.family, o.proto, o.iif.clone());
        if head.as_ref() != Some(&h) {
            let _ = writeln!(
                out,
                "{} {} on {}:",
                o.family,
                format!("{:?}", o.proto).to_lowercase(),
                o.iif
            );
            head = Some(h);
        }
        let sp = if o.sports.first() == 0 && o.sports.last() == u16::MAX {
            String::new()
        } else {
            format!(" from source ports {}", o.sports)
        };
        let _ = write!(
            out,
            "  {:<11} to {:<16} from {}{sp}  [{}]",
            o.ports.to_string(),
            o.to.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
            sources(&o.sources),
            decider(o)
        );
        if o.time_dependent {
            out.push_str("  (depends on the time of day)");
        }
        if o.verdict == Verdict::Unknown {
            let _ = write!(
                out,
                "  UNKNOWN: {}",
                o.reason.as_deref().unwrap_or("undecided")
            );
        }
        out.push('\n');
    }
    for n in &x.notes {
        let _ = writeln!(out, "note: {n}");
    }
    out
}
