//! A new rule for a legacy iptables chain: where a legacy table decides,
//! the fix is an `iptables-legacy` (or `ip6tables-legacy`) command.
//!
//! A [`NewRule`] becomes one legacy rule per interface, prefix and port
//! range (iptables takes one of each per rule), built as the kernel holds
//! them ([`LegacyRule`]) so that the proof evaluates exactly what the
//! command loads, and written as `iptables-save` writes them.

use super::change::{AddrField, ApplyError, CtState, NewRule, RuleVerdict, Stmt};
use crate::addrs::AddrFamily;
use crate::catalog::Proto;
use crate::snapshot::legacy::{
    save, AddrMatch, IfaceMatch, IpPart, LegacyContents, LegacyFamily, LegacyMatch, LegacyRule,
    LegacyTarget, ProtoMatch,
};
use crate::snapshot::xt::XtInfo;
use crate::snapshot::Snapshot;
use ipnet::IpNet;
use serde::Serialize;
use std::fmt;

/// A chain of a legacy table.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct LegacyChainRef {
    /// IPv4 (`iptables-legacy`) or IPv6 (`ip6tables-legacy`).
    pub family: LegacyFamily,
    /// `filter`, `nat`...
    pub table: String,
    /// `INPUT`, or a user chain.
    pub chain: String,
}

impl fmt::Display for LegacyChainRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} -t {} {}",
            self.family.command(),
            self.table,
            self.chain
        )
    }
}

fn family_of(f: LegacyFamily) -> AddrFamily {
    if f.is_v6() {
        AddrFamily::V6
    } else {
        AddrFamily::V4
    }
}

/// `rule` as the legacy rules that make it, in a table of `family`.
pub fn legacy_rules(family: LegacyFamily, rule: &NewRule) -> Result<Vec<LegacyRule>, ApplyError> {
    let misfit = |what: &str| ApplyError::Misfit(format!("{what} in an {family} legacy table"));
    let mut rules = vec![LegacyRule {
        ip: IpPart::default(),
        matches: Vec::new(),
        target: match rule.verdict {
            RuleVerdict::Accept => LegacyTarget::Accept,
            RuleVerdict::Drop => LegacyTarget::Drop,
        },
    }];
    // Each statement multiplies the rules by its alternatives.
    let fork = |rules: Vec<LegacyRule>, n: usize, set: &dyn Fn(&mut LegacyRule, usize)| {
        rules
            .into_iter()
            .flat_map(|r| {
                (0..n).map(move |i| {
                    let mut r = r.clone();
                    set(&mut r, i);
                    r
                })
            })
            .collect::<Vec<_>>()
    };
    for m in &rule.matches {
        rules = match m {
            Stmt::Iifname { names } => fork(rules, names.len(), &|r, i| {
                r.ip.iniface = Some(IfaceMatch {
                    name: names[i].clone(),
                    wildcard: false,
                    invert: false,
                })
            }),
            Stmt::Nfproto { family: f } if *f == family_of(family) => rules,
            Stmt::Nfproto { .. } => return Err(misfit("a match of the other family")),
            Stmt::Addr { family: f, .. } if *f != family_of(family) => {
                return Err(misfit("an address of the other family"));
            }
            Stmt::Addr {
                field,
                negate,
                prefixes,
                ..
            } => {
                if *negate && prefixes.len() != 1 {
                    return Err(ApplyError::Misfit(
                        "iptables cannot refuse several prefixes in one rule".into(),
                    ));
                }
                let am = |n: &IpNet| AddrMatch {
                    addr: n.network(),
                    mask: n.netmask(),
                    invert: *negate,
                };
                fork(rules, prefixes.len(), &|r, i| {
                    let a = Some(am(&prefixes[i]));
                    match field {
                        AddrField::Saddr => r.ip.src = a,
                        AddrField::Daddr => r.ip.dst = a,
                    }
                })
            }
            Stmt::Dport { proto, ports } => {
                let ranges = ports.ranges();
                fork(rules, ranges.len(), &|r, i| {
                    let dport = [ranges[i].first(), ranges[i].last()];
                    let (number, name, info) = match proto {
                        Proto::Tcp => (
                            6,
                            "tcp",
                            XtInfo::Tcp {
                                sport: [0, 65535],
                                dport,
                                flg_mask: 0,
                                flg_cmp: 0,
                                invflags: 0,
                                option: 0,
                            },
                        ),
                        Proto::Udp => (
                            17,
                            "udp",
                            XtInfo::Udp {
                                sport: [0, 65535],
                                dport,
                                invflags: 0,
                            },
                        ),
                    };
                    r.ip.proto = Some(ProtoMatch {
                        proto: number,
                        invert: false,
                    });
                    r.matches.push(LegacyMatch {
                        name: name.into(),
                        rev: 0,
                        info,
                    });
                })
            }
            Stmt::Ct { states } => {
                // `XT_CONNTRACK_STATE_BIT`: established 2, related 4.
                let state_mask = states
                    .iter()
                    .map(|s| match s {
                        CtState::Established => 2,
                        CtState::Related => 4,
                    })
                    .fold(0u16, |m, b| m | b);
                for r in &mut rules {
                    r.matches.push(LegacyMatch {
                        name: "conntrack".into(),
                        rev: 3,
                        info: XtInfo::Conntrack {
                            match_flags: 1,
                            invert_flags: 0,
                            state_mask,
                            status_mask: 0,
                            l4proto: 0,
                        },
                    });
                }
                rules
            }
        };
    }
    Ok(rules)
}

/// The commands that insert `rule` into `at` before rule number `before`
/// (1-based, as `iptables -I CHAIN N` counts), or append it.
pub fn commands(at: &LegacyChainRef, before: Option<u64>, rule: &NewRule) -> String {
    let rules = match legacy_rules(at.family, rule) {
        Ok(r) => r,
        Err(e) => return format!("# {e}"),
    };
    let head = format!("-A {}", at.chain);
    rules
        .iter()
        .map(|r| {
            let line = save::rule_text(&at.chain, r, at.family);
            let spec = line.strip_prefix(&head).unwrap_or(&line);
            let table = if at.table == "filter" {
                String::new()
            } else {
                format!(" -t {}", at.table)
            };
            match before {
                Some(n) => format!("{}{table} -I {} {n}{spec}", at.family.command(), at.chain),
                None => format!("{}{table} -A {}{spec}", at.family.command(), at.chain),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Inserts `rule` into the legacy chain `at` of `snapshot`, as the
/// commands of [`commands`] do.
pub fn apply(
    snapshot: &mut Snapshot,
    at: &LegacyChainRef,
    before: Option<u64>,
    rule: &NewRule,
) -> Result<(), ApplyError> {
    let new = legacy_rules(at.family, rule)?;
    let where_ = at.to_string();
    let t = snapshot
        .legacy
        .iter_mut()
        .find(|t| t.family == at.family && t.name == at.table)
        .ok_or_else(|| ApplyError::Chain(where_.clone(), "no such legacy table"))?;
    let LegacyContents::Read {
        chains,
        user_chains,
        ..
    } = &mut t.contents
    else {
        return Err(ApplyError::Chain(where_, "the legacy table was not read"));
    };
    let rules = chains
        .iter_mut()
        .map(|c| (&c.name, &mut c.rules))
        .chain(user_chains.iter_mut().map(|c| (&c.name, &mut c.rules)))
        .find(|(n, _)| **n == at.chain)
        .ok_or_else(|| ApplyError::Chain(where_.clone(), "no such chain"))?
        .1;
    let pos = match before {
        Some(n) => {
            let i = usize::try_from(n.saturating_sub(1)).unwrap_or(usize::MAX);
            if n == 0 || i >= rules.len() {
                return Err(ApplyError::Rule(where_, n));
            }
            i
        }
        None => rules.len(),
    };
    // `-I CHAIN N` one after the other: each goes before the previous one.
    for r in new {
        rules.insert(pos, r);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{PortRange, PortSet};
    use crate::snapshot::legacy::{LegacyChain, LegacyTable};
    use crate::snapshot::{Hook, Policy};

    fn filter_with(rules: usize) -> Snapshot {
        let rule = LegacyRule {
            ip: IpPart::default(),
            matches: Vec::new(),
            target: LegacyTarget::Accept,
        };
        Snapshot {
            legacy: vec![LegacyTable {
                family: LegacyFamily::Ipv4,
                name: "filter".into(),
                contents: LegacyContents::Read {
                    entries: 0,
                    chains: vec![LegacyChain {
                        name: "INPUT".into(),
                        hook: Hook::Input,
                        priority: Some(0),
                        policy: Policy::Drop,
                        rules: vec![rule; rules],
                    }],
                    user_chains: Vec::new(),
                },
            }],
            ..Snapshot::default()
        }
    }

    fn input() -> LegacyChainRef {
        LegacyChainRef {
            family: LegacyFamily::Ipv4,
            table: "filter".into(),
            chain: "INPUT".into(),
        }
    }

    #[test]
    fn one_legacy_rule_per_interface_prefix_and_port_range() {
        let rule = NewRule {
            matches: vec![
                Stmt::Iifname {
                    names: vec!["eth0".into(), "eth1".into()],
                },
                Stmt::Addr {
                    field: AddrField::Saddr,
                    family: AddrFamily::V4,
                    negate: false,
                    prefixes: vec!["10.0.0.10/32".parse().unwrap()],
                },
                Stmt::Dport {
                    proto: Proto::Tcp,
                    ports: PortSet::from_ranges([
                        PortRange::new(22, 22).unwrap(),
                        PortRange::new(2500, 3300).unwrap(),
                    ]),
                },
            ],
            verdict: RuleVerdict::Drop,
        };
        let text = commands(&input(), Some(2), &rule);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "iptables-legacy -I INPUT 2 -s 10.0.0.10/32 -i eth0 -p tcp -m tcp --dport 22 -j DROP",
                "iptables-legacy -I INPUT 2 -s 10.0.0.10/32 -i eth0 -p tcp -m tcp --dport 2500:3300 -j DROP",
                "iptables-legacy -I INPUT 2 -s 10.0.0.10/32 -i eth1 -p tcp -m tcp --dport 22 -j DROP",
                "iptables-legacy -I INPUT 2 -s 10.0.0.10/32 -i eth1 -p tcp -m tcp --dport 2500:3300 -j DROP",
            ]
        );
        // Applied: the four go before the second rule, the others stay.
        let mut snap = filter_with(3);
        apply(&mut snap, &input(), Some(2), &rule).unwrap();
        let LegacyContents::Read { chains, .. } = &snap.legacy[0].contents else {
            panic!()
        };
        let targets: Vec<&LegacyTarget> = chains[0].rules.iter().map(|r| &r.target).collect();
        assert_eq!(targets.len(), 7);
        assert!(targets[1..5].iter().all(|t| **t == LegacyTarget::Drop));
        assert!([0, 5, 6]
            .iter()
            .all(|&i| *targets[i] == LegacyTarget::Accept));
        // A rule number past the chain, or the other family: refused.
        assert!(apply(&mut filter_with(1), &input(), Some(5), &rule).is_err());
        let v6 = NewRule {
            matches: vec![Stmt::Nfproto {
                family: AddrFamily::V6,
            }],
            verdict: RuleVerdict::Accept,
        };
        assert!(legacy_rules(LegacyFamily::Ipv4, &v6).is_err());
    }

    #[test]
    fn several_refused_prefixes_cannot_be_one_legacy_rule() {
        let rule = NewRule {
            matches: vec![Stmt::Addr {
                field: AddrField::Saddr,
                family: AddrFamily::V4,
                negate: true,
                prefixes: vec![
                    "10.0.0.0/8".parse().unwrap(),
                    "192.0.2.0/24".parse().unwrap(),
                ],
            }],
            verdict: RuleVerdict::Drop,
        };
        assert!(legacy_rules(LegacyFamily::Ipv4, &rule).is_err());
        let one = NewRule {
            matches: vec![Stmt::Addr {
                field: AddrField::Saddr,
                family: AddrFamily::V4,
                negate: true,
                prefixes: vec!["10.0.0.0/8".parse().unwrap()],
            }],
            verdict: RuleVerdict::Drop,
        };
        assert_eq!(
            commands(&input(), None, &one),
            "iptables-legacy -A INPUT ! -s 10.0.0.0/8 -j DROP"
        );
    }
}
