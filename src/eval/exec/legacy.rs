//! Legacy iptables tables that are not evaluated in answers. Tables read
//! are compiled as chains of their own ([`crate::snapshot::legacy::LegacyTable::to_table`])
//! and run with the nf_tables ones; this handles the rest: an answer whose
//! packet passes a hook where a table the kernel would not give (or one of
//! a name without known priorities) could decide is `unknown`, and its
//! reason names the table (see
//! [`crate::snapshot::legacy::LegacyTable::deciding`]): any of its rules
//! could drop, or mark or translate the packet for a later chain.
//!
//! "Passes" follows the path's order: for a packet that is accepted (or
//! whose verdict is already unknown) every hook of its path; for one
//! dropped or rejected, the hooks before the point where nf_tables stopped
//! it, and on that hook the legacy chains at the same or an earlier
//! priority (the kernel's order between equal priorities is not known);
//! for one forwarded, prerouting. `nat` tables are not seen by an
//! established connection's packets.

use super::{Out, Program};
use crate::eval::Verdict;
use crate::snapshot::legacy::LegacyPoint;
use crate::snapshot::Hook;

/// Makes `out` unknown when a legacy table on `path` (the hooks in the
/// order the packet meets them) could change it.
pub(super) fn apply(p: &Program, path: &[Hook], established: bool, out: &mut Out) {
    for u in &p.legacy_unlisted {
        if u.family.is_v6() == out.v6 {
            out.notes.push(u.to_string());
        }
    }
    let points = &p.legacy;
    if points.is_empty() {
        return;
    }
    let pos = |h: Hook| path.iter().position(|&x| x == h);
    let passed = |p: &LegacyPoint| {
        if p.family.is_v6() != out.v6 || (p.nat && established) {
            return false;
        }
        let Some(at) = pos(p.hook) else {
            return false;
        };
        match out.verdict {
            Verdict::Accept | Verdict::Unknown => true,
            Verdict::Forwarded => p.hook == Hook::Prerouting,
            Verdict::Drop | Verdict::Reject => {
                match out.stop.and_then(|(h, prio)| Some((pos(h)?, prio))) {
                    Some((stop, prio)) => {
                        at < stop || (at == stop && p.priority.map_or(true, |lp| lp <= prio))
                    }
                    // Stopped before any chain (no route...): nothing passed.
                    None => false,
                }
            }
        }
    };
    let mut whys: Vec<&str> = Vec::new();
    for p in points.iter().filter(|p| passed(p)) {
        if !whys.contains(&p.why.as_str()) {
            whys.push(&p.why);
        }
    }
    if whys.is_empty() {
        return;
    }
    let legacy = whys.join("; ");
    out.reason = Some(match (out.verdict, out.reason.take()) {
        (Verdict::Unknown, Some(r)) => format!("{legacy}; besides, {r}"),
        (v, _) => format!("{legacy} (nf_tables alone: {v})"),
    });
    out.verdict = Verdict::Unknown;
    out.dec = None;
    out.reject = None;
}
