//! `portwarden explain`'s text: the verdict, the deciding rule as nft
//! lists it (a legacy iptables rule as `iptables-save` writes it; or the
//! routing step that dropped the packet), NAT, the chains
//! traversed, assumptions and reasons.

use crate::eval::{Answer, DecidedBy, Probe, Via};
use crate::host::Routes;
use crate::snapshot::{rule_text, Snapshot};
use std::fmt::Write as _;
use std::net::IpAddr;

/// The text report of one answer.
pub fn text(snap: &Snapshot, routes: &Routes, probe: &Probe, a: &Answer) -> String {
    let mut s = String::new();
    let ep = |a: IpAddr, p: u16| match a {
        IpAddr::V6(_) => format!("[{a}]:{p}"),
        IpAddr::V4(_) => format!("{a}:{p}"),
    };
    let _ = writeln!(
        s,
        "{} {} -> {} in on {}: {}",
        probe.proto,
        ep(probe.saddr, probe.sport),
        ep(probe.daddr, probe.dport),
        probe.iif.name,
        a.verdict.to_string().to_uppercase()
    );
    match &a.decided_by {
        Some(d @ DecidedBy::Rule(r)) => {
            let _ = writeln!(s, "decided by: {d}");
            let rule = snap
                .tables
                .iter()
                .find(|t| t.family == r.family && t.name == r.table)
                .and_then(|t| Some((t, t.chain(&r.chain)?)))
                .and_then(|(t, c)| Some((t, c.rules.iter().find(|x| x.handle == r.handle)?)));
            if let Some((t, rule)) = rule {
                let names = |i: u32| {
                    routes
                        .interfaces
                        .iter()
                        .find(|x| x.index == i)
                        .map(|x| x.name.clone())
                };
                let _ = writeln!(s, "  {}", rule_text(t, rule, &names));
            } else if let Some(line) = crate::snapshot::legacy::rule_line(
                &snap.legacy,
                r.family,
                &r.table,
                &r.chain,
                r.handle,
            ) {
                // A legacy iptables rule, as iptables-save writes it.
                let _ = writeln!(s, "  {line}");
            }
        }
        Some(d @ DecidedBy::Policy(_)) => {
            let _ = writeln!(s, "decided by: {d}");
        }
        None => {}
    }
    if let Some(step) = &a.routing {
        let _ = writeln!(
            s,
            "decided by: the routing decision after prerouting: {step}"
        );
    }
    if let Some(r) = &a.reject_with {
        let _ = writeln!(s, "rejected with: {r}");
    }
    if let Some(n) = &a.nat {
        let _ = writeln!(s, "nat: {} to {} by {}", n.kind, ep(n.addr, n.port), n.rule);
    }
    if !a.trace.is_empty() {
        let _ = writeln!(s, "chains traversed:");
        for v in &a.trace {
            let via = match v.via {
                Via::Hook => String::new(),
                Via::Jump => " (jump)".into(),
                Via::Goto => " (goto)".into(),
                Via::Return => " (returned to)".into(),
            };
            let _ = writeln!(
                s,
                "  {:<11} {:>11}  {} {} {}{via}",
                v.hook.to_string(),
                v.priority,
                v.family,
                v.table,
                v.chain
            );
        }
    }
    if !a.assumptions.is_empty() {
        let _ = writeln!(s, "assumptions:");
        for x in &a.assumptions {
            let _ = writeln!(s, "  - {x}");
        }
    }
    if let Some(r) = &a.reason {
        let _ = writeln!(s, "reason: {r}");
    }
    s
}
