//! The human-readable summary `portwarden dump` prints without `--json`.

use super::legacy::{LegacyContents, LegacyTable};
use super::{Snapshot, Table};
use std::fmt;

/// Displays a snapshot as one line per table, chain and named set.
pub struct Summary<'a>(pub &'a Snapshot);

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        let rules: usize = s
            .tables
            .iter()
            .flat_map(|t| &t.chains)
            .map(|c| c.rules.len())
            .sum();
        writeln!(
            f,
            "ruleset generation {}: {} tables, {} rules",
            s.generation,
            s.tables.len(),
            rules
        )?;
        for t in &s.tables {
            table(f, t)?;
        }
        for t in &s.legacy {
            legacy(f, t)?;
        }
        for u in &s.legacy_unlisted {
            writeln!(f, "{u}")?;
        }
        Ok(())
    }
}

/// A legacy iptables table: one line, then its rules as `iptables-save`
/// writes them.
fn legacy(f: &mut fmt::Formatter<'_>, t: &LegacyTable) -> fmt::Result {
    write!(f, "legacy iptables table {} ({})", t.name, t.family)?;
    match &t.contents {
        LegacyContents::Unreadable { reason } => {
            return writeln!(f, ": could not be read ({reason}); not evaluated");
        }
        LegacyContents::Read {
            entries, chains, ..
        } => {
            let rules: usize = chains.iter().map(|c| c.rules.len()).sum();
            let empty = chains.iter().all(|c| !c.can_decide());
            writeln!(
                f,
                ": {entries} kernel entries, {rules} rules in built-in chains{}",
                if empty {
                    "; empty, changes nothing"
                } else {
                    ""
                }
            )?;
            for c in chains {
                if let Some(p) = c.priority {
                    writeln!(f, "  # {}: hook {} priority {p}", c.name, c.hook)?;
                }
            }
        }
    }
    for line in super::legacy::save::table_text(t).lines() {
        writeln!(f, "  {line}")?;
    }
    Ok(())
}

fn table(f: &mut fmt::Formatter<'_>, t: &Table) -> fmt::Result {
    writeln!(
        f,
        "table {} {}{}",
        t.family,
        t.name,
        if t.dormant() { " (dormant)" } else { "" }
    )?;
    for c in &t.chains {
        let incomplete = c.rules.iter().filter(|r| r.incomplete).count();
        match &c.base {
            Some(b) => write!(
                f,
                "  chain {}: {} hook {} priority {} policy {}",
                c.name,
                b.kind,
                b.hook,
                b.priority,
                match b.policy {
                    super::Policy::Accept => "accept",
                    super::Policy::Drop => "drop",
                }
            )?,
            None => write!(f, "  chain {}", c.name)?,
        }
        if let Some(b) = &c.base {
            if !b.devices.is_empty() {
                write!(f, " devices {}", b.devices.join(","))?;
            }
        }
        write!(f, ", {} rules", c.rules.len())?;
        if incomplete > 0 {
            write!(f, " ({incomplete} not fully decoded)")?;
        }
        writeln!(f)?;
    }
    for s in t.sets.iter().filter(|s| !s.anonymous()) {
        let kind = if s.is_map() { "map" } else { "set" };
        let key: Vec<&str> = s.key.0.iter().map(|d| d.name().unwrap_or("?")).collect();
        writeln!(
            f,
            "  {kind} {}: {}{}, {} elements",
            s.name,
            key.join(" . "),
            if s.interval() { " (intervals)" } else { "" },
            s.elements.len()
        )?;
    }
    for o in &t.objects {
        writeln!(f, "  object {}", o.name)?;
    }
    for ft in &t.flowtables {
        writeln!(
            f,
            "  flowtable {} devices {}",
            ft.name,
            ft.devices.join(",")
        )?;
    }
    Ok(())
}
