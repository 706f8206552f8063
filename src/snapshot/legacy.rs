//! Legacy iptables tables (`iptables-legacy`, `ip6tables-legacy`): what the
//! kernel's x_tables hold besides nf_tables.
//!
//! Only their shape is read so far: which tables exist, and for each
//! built-in chain how many rules it holds and its policy. The rules
//! themselves are not decoded or evaluated; an answer whose packet passes a
//! hook where a legacy table could decide is `unknown` and names the table
//! (see [`LegacyTable::deciding`]). docs/legacy-iptables.md says more.

use super::{Hook, Policy};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The address family of a legacy table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LegacyFamily {
    /// `iptables` (`/proc/net/ip_tables_names`).
    Ipv4,
    /// `ip6tables` (`/proc/net/ip6_tables_names`).
    Ipv6,
}

impl LegacyFamily {
    /// Whether this is IPv6.
    pub fn is_v6(self) -> bool {
        self == LegacyFamily::Ipv6
    }

    /// The command that manages this family's legacy tables.
    pub fn command(self) -> &'static str {
        match self {
            LegacyFamily::Ipv4 => "iptables-legacy",
            LegacyFamily::Ipv6 => "ip6tables-legacy",
        }
    }
}

impl fmt::Display for LegacyFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LegacyFamily::Ipv4 => "IPv4",
            LegacyFamily::Ipv6 => "IPv6",
        })
    }
}

/// One legacy table of the network namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyTable {
    /// IPv4 or IPv6.
    pub family: LegacyFamily,
    /// Table name: `filter`, `nat`, `mangle`, `raw`, `security`.
    pub name: String,
    /// What was read of it.
    #[serde(flatten)]
    pub contents: LegacyContents,
}

/// What was read of a legacy table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum LegacyContents {
    /// The kernel gave its entries.
    Read {
        /// Kernel entries in the table: rules, one policy per built-in
        /// chain, a head and an end per user chain, and the final error
        /// entry (an empty `filter` table has 4).
        entries: u32,
        /// The built-in chains, in hook order.
        chains: Vec<LegacyChain>,
        /// User-defined chains, in kernel order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        user_chains: Vec<LegacyUserChain>,
    },
    /// The table is listed by the kernel but could not be read.
    Unreadable {
        /// Why (e.g. no `CAP_NET_ADMIN`).
        reason: String,
    },
}

/// A family whose legacy tables could not be listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyUnlisted {
    /// IPv4 or IPv6.
    pub family: LegacyFamily,
    /// Why (e.g. `/proc/net/ip_tables_names` is readable by root only).
    pub reason: String,
}

impl fmt::Display for LegacyUnlisted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "legacy iptables tables ({}) not checked ({}): assumed none",
            self.family, self.reason
        )
    }
}

/// A built-in chain of a legacy table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyChain {
    /// `INPUT`, `PREROUTING`... as iptables names it.
    pub name: String,
    /// The netfilter hook.
    pub hook: Hook,
    /// The hook priority the kernel registers the table at (`None` for a
    /// table portwarden does not know by name).
    pub priority: Option<i32>,
    /// Rules in the chain (not counting its policy).
    pub rules: u32,
    /// The chain's policy.
    pub policy: Policy,
}

/// A user-defined chain of a legacy table (reached only by jumps from the
/// built-in chains).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyUserChain {
    /// Chain name.
    pub name: String,
    /// Rules in the chain.
    pub rules: u32,
}

impl LegacyChain {
    /// Whether this chain can change what happens to a packet: it holds a
    /// rule or its policy is not ACCEPT. (An empty chain with policy ACCEPT
    /// lets every packet on, as if the table were not there.)
    pub fn can_decide(&self) -> bool {
        self.rules > 0 || self.policy != Policy::Accept
    }
}

/// Where a legacy table could decide, and how to say so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegacyPoint {
    /// IPv4 or IPv6 packets.
    pub family: LegacyFamily,
    /// The hook.
    pub hook: Hook,
    /// Its priority there (`None`: not known, taken as anywhere).
    pub priority: Option<i32>,
    /// A `nat` table: seen by the first packet of a connection only.
    pub nat: bool,
    /// Why answers passing it are unknown, e.g. "legacy iptables table
    /// filter (IPv4) has 12 rules in INPUT, not evaluated".
    pub why: String,
}

impl LegacyTable {
    /// The points where this table could change an answer: its chains
    /// that hold rules or have a policy other than ACCEPT; every hook a
    /// table of that name uses, when it could not be read.
    pub fn deciding(&self) -> Vec<LegacyPoint> {
        let point = |hook, priority, why| LegacyPoint {
            family: self.family,
            hook,
            priority,
            nat: self.name == "nat",
            why,
        };
        match &self.contents {
            LegacyContents::Read { chains, .. } => chains
                .iter()
                .filter(|c| c.can_decide())
                .map(|c| {
                    let what = match (c.rules, c.policy) {
                        (0, p) => format!("policy {} in {}", policy_name(p), c.name),
                        (1, Policy::Accept) => format!("1 rule in {}", c.name),
                        (n, Policy::Accept) => format!("{n} rules in {}", c.name),
                        (n, p) => format!(
                            "{n} rule{} and policy {} in {}",
                            if n == 1 { "" } else { "s" },
                            policy_name(p),
                            c.name
                        ),
                    };
                    point(
                        c.hook,
                        c.priority,
                        format!(
                            "legacy iptables table {} ({}) has {what}, not evaluated",
                            self.name, self.family
                        ),
                    )
                })
                .collect(),
            LegacyContents::Unreadable { reason } => {
                let hooks = builtin_hooks(&self.name).unwrap_or(&ALL_HOOKS);
                hooks
                    .iter()
                    .map(|&(hook, _)| {
                        point(
                            hook,
                            priority(&self.name, hook),
                            format!(
                                "legacy iptables table {} ({}) could not be read ({reason}), not evaluated",
                                self.name, self.family
                            ),
                        )
                    })
                    .collect()
            }
        }
    }
}

/// `ACCEPT`, `DROP`, as iptables writes a policy.
pub fn policy_name(p: Policy) -> &'static str {
    match p {
        Policy::Accept => "ACCEPT",
        Policy::Drop => "DROP",
    }
}

const ALL_HOOKS: [(Hook, &str); 5] = [
    (Hook::Prerouting, "PREROUTING"),
    (Hook::Input, "INPUT"),
    (Hook::Forward, "FORWARD"),
    (Hook::Output, "OUTPUT"),
    (Hook::Postrouting, "POSTROUTING"),
];

/// The hook for a kernel hook number (`NF_INET_*`, 0-4) and iptables'
/// name for its built-in chain.
pub fn hook_of(n: usize) -> Option<(Hook, &'static str)> {
    ALL_HOOKS.get(n).copied()
}

/// The hooks a table of that name has built-in chains at (the kernel's
/// `valid_hooks` of `iptable_*`), when portwarden knows the name.
fn builtin_hooks(table: &str) -> Option<&'static [(Hook, &'static str)]> {
    Some(match table {
        "filter" | "security" => &ALL_HOOKS[1..4],
        "mangle" => &ALL_HOOKS,
        "raw" => &[ALL_HOOKS[0], ALL_HOOKS[3]],
        "nat" => &[ALL_HOOKS[0], ALL_HOOKS[1], ALL_HOOKS[3], ALL_HOOKS[4]],
        _ => return None,
    })
}

/// The priority the kernel registers a legacy table at on `hook`
/// (`NF_IP_PRI_*`, the same for IPv6): raw -300, mangle -150, nat -100
/// (destination NAT: prerouting, output) or 100 (source NAT: input,
/// postrouting), filter 0, security 50. `None` for other names.
pub fn priority(table: &str, hook: Hook) -> Option<i32> {
    Some(match table {
        "raw" => -300,
        "mangle" => -150,
        "nat" => match hook {
            Hook::Prerouting | Hook::Output => -100,
            _ => 100,
        },
        "filter" => 0,
        "security" => 50,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(input_rules: u32, input_policy: Policy) -> LegacyTable {
        let chain = |name: &str, hook, rules, policy| LegacyChain {
            name: name.into(),
            hook,
            priority: Some(0),
            rules,
            policy,
        };
        LegacyTable {
            family: LegacyFamily::Ipv4,
            name: "filter".into(),
            contents: LegacyContents::Read {
                entries: 4 + input_rules,
                chains: vec![
                    chain("INPUT", Hook::Input, input_rules, input_policy),
                    chain("FORWARD", Hook::Forward, 0, Policy::Accept),
                    chain("OUTPUT", Hook::Output, 0, Policy::Accept),
                ],
                user_chains: vec![],
            },
        }
    }

    #[test]
    fn an_empty_accepting_table_decides_nothing() {
        assert!(filter(0, Policy::Accept).deciding().is_empty());
    }

    #[test]
    fn rules_or_a_drop_policy_are_named() {
        let d = filter(12, Policy::Accept).deciding();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].hook, Hook::Input);
        assert_eq!(
            d[0].why,
            "legacy iptables table filter (IPv4) has 12 rules in INPUT, not evaluated"
        );
        let d = filter(0, Policy::Drop).deciding();
        assert_eq!(
            d[0].why,
            "legacy iptables table filter (IPv4) has policy DROP in INPUT, not evaluated"
        );
    }

    #[test]
    fn the_json_reads_back() {
        let mut snap = crate::snapshot::Snapshot::default();
        snap.legacy.push(filter(2, Policy::Drop));
        snap.legacy.push(LegacyTable {
            family: LegacyFamily::Ipv6,
            name: "raw".into(),
            contents: LegacyContents::Unreadable {
                reason: "EPERM".into(),
            },
        });
        snap.legacy_unlisted.push(LegacyUnlisted {
            family: LegacyFamily::Ipv4,
            reason: "EACCES".into(),
        });
        let json = serde_json::to_value(&snap).unwrap();
        assert_eq!(json["legacy"][0]["status"], "read");
        assert_eq!(json["legacy"][1]["status"], "unreadable");
        let back: crate::snapshot::Snapshot = serde_json::from_value(json).unwrap();
        assert_eq!(back, snap);
    }

    #[test]
    fn an_unreadable_table_counts_at_each_of_its_hooks() {
        let t = LegacyTable {
            family: LegacyFamily::Ipv6,
            name: "raw".into(),
            contents: LegacyContents::Unreadable {
                reason: "Operation not permitted".into(),
            },
        };
        let d = t.deciding();
        assert_eq!(
            d.iter().map(|p| (p.hook, p.priority)).collect::<Vec<_>>(),
            [(Hook::Prerouting, Some(-300)), (Hook::Output, Some(-300))]
        );
    }
}
