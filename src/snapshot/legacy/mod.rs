//! Legacy iptables tables (`iptables-legacy`, `ip6tables-legacy`): what the
//! kernel's x_tables hold besides nf_tables.
//!
//! Every rule is decoded ([`LegacyRule`]): its header part (addresses,
//! interfaces, protocol), its matches and its target, the matches and
//! targets with the same xt decoding as iptables-nft's compat expressions
//! ([`super::xt`]). The evaluator runs them as chains of its own model
//! ([`LegacyTable::to_table`]), at the legacy table's hooks and priorities,
//! together with the nf_tables chains; `dump` shows them as
//! `iptables-save` would ([`save`]). A table the kernel lists but will not
//! give makes the answers passing its hooks `unknown` (see
//! [`LegacyTable::deciding`]). docs/legacy-iptables.md says more.

mod nft;
pub mod save;

use super::xt::XtInfo;
use super::{Hook, Policy};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LegacyChain {
    /// `INPUT`, `PREROUTING`... as iptables names it.
    pub name: String,
    /// The netfilter hook.
    pub hook: Hook,
    /// The hook priority the kernel registers the table at (`None` for a
    /// table portwarden does not know by name).
    pub priority: Option<i32>,
    /// The chain's policy.
    pub policy: Policy,
    /// Rules in the chain, in order (not counting its policy).
    #[serde(default)]
    pub rules: Vec<LegacyRule>,
}

/// A user-defined chain of a legacy table (reached only by jumps from the
/// built-in chains).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LegacyUserChain {
    /// Chain name.
    pub name: String,
    /// Rules in the chain, in order (not counting its final RETURN).
    #[serde(default)]
    pub rules: Vec<LegacyRule>,
}

/// One legacy rule (`struct ipt_entry` / `ip6t_entry`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LegacyRule {
    /// The header part (`struct ipt_ip` / `ip6t_ip6`).
    pub ip: IpPart,
    /// The matches (`-m NAME ...`), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<LegacyMatch>,
    /// What the rule does when everything matches.
    pub target: LegacyTarget,
}

/// The header part of a legacy rule. A field left out matches every
/// packet.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpPart {
    /// `-s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<AddrMatch>,
    /// `-d`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst: Option<AddrMatch>,
    /// `-i`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iniface: Option<IfaceMatch>,
    /// `-o`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outiface: Option<IfaceMatch>,
    /// `-p`: the IPv4 protocol, or the IPv6 upper-layer protocol (after
    /// the extension headers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<ProtoMatch>,
    /// `-f` (IPv4): `Some(true)` matches second and later fragments only,
    /// `Some(false)` (`! -f`) everything else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fragment: Option<bool>,
}

/// An address with its mask, as `-s`/`-d` keep it: the packet's address
/// ANDed with `mask` must equal `addr` (or not, with `invert`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddrMatch {
    /// The address.
    pub addr: IpAddr,
    /// The mask (any bit pattern; usually a prefix).
    pub mask: IpAddr,
    /// `!`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub invert: bool,
}

/// An interface name, as `-i`/`-o` keep it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IfaceMatch {
    /// The name, without the `+`.
    pub name: String,
    /// `eth+`: every interface whose name starts with `name`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub wildcard: bool,
    /// `!`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub invert: bool,
}

/// `-p`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtoMatch {
    /// Protocol number (never 0: `-p all` is no test).
    pub proto: u8,
    /// `!`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub invert: bool,
}

/// A match of a legacy rule (`struct xt_entry_match`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LegacyMatch {
    /// The extension's name (`tcp`, `conntrack`...).
    pub name: String,
    /// Its revision.
    pub rev: u8,
    /// Its options, decoded as iptables-nft's `xt match` ones are.
    pub info: XtInfo,
}

/// The target of a legacy rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "lowercase")]
pub enum LegacyTarget {
    /// `-j ACCEPT`.
    Accept,
    /// `-j DROP`.
    Drop,
    /// `-j QUEUE` (userspace queue 0).
    Queue,
    /// `-j RETURN`.
    Return,
    /// `-j CHAIN`: a user chain, coming back after it.
    Jump {
        /// The user chain.
        chain: String,
    },
    /// `-g CHAIN`: a user chain, not coming back.
    Goto {
        /// The user chain.
        chain: String,
    },
    /// No `-j`: the next rule follows (counters only).
    Fallthrough,
    /// An extension target (`-j REJECT`, `-j DNAT`, `-j LOG`...).
    Target {
        /// Its name.
        name: String,
        /// Its revision.
        rev: u8,
        /// Its options, decoded as iptables-nft's `xt target` ones are.
        info: XtInfo,
    },
}

impl LegacyChain {
    /// Whether this chain can change what happens to a packet: it holds a
    /// rule or its policy is not ACCEPT. (An empty chain with policy ACCEPT
    /// lets every packet on, as if the table were not there.)
    pub fn can_decide(&self) -> bool {
        !self.rules.is_empty() || self.policy != Policy::Accept
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
    /// The points where this table could change an answer without being
    /// evaluated: every hook a table of that name uses, when it could not
    /// be read; the chains that hold rules or a policy other than ACCEPT
    /// of a table read but not known by name (no priority to run it at).
    /// Tables read and known by name are evaluated ([`Self::to_table`]).
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
                .filter(|c| c.priority.is_none() && c.can_decide())
                .map(|c| {
                    point(
                        c.hook,
                        None,
                        format!(
                            "legacy iptables table {} ({}) is not a table portwarden knows (no priority to run it at), its chain {} not evaluated",
                            self.name, self.family, c.name
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

/// The `iptables-save` line of the legacy rule the evaluator knows as
/// rule `handle` (its line number) of `chain` in table `table` (its
/// [`LegacyTable::eval_name`]) of `family`.
pub fn rule_line(
    legacy: &[LegacyTable],
    family: super::Family,
    table: &str,
    chain: &str,
    handle: u64,
) -> Option<String> {
    let t = legacy.iter().find(|t| {
        let fam = if t.family.is_v6() {
            super::Family::Ip6
        } else {
            super::Family::Ip
        };
        fam == family && t.eval_name() == table
    })?;
    let LegacyContents::Read {
        chains,
        user_chains,
        ..
    } = &t.contents
    else {
        return None;
    };
    let rules = chains
        .iter()
        .map(|c| (&c.name, &c.rules))
        .chain(user_chains.iter().map(|c| (&c.name, &c.rules)))
        .find(|(n, _)| *n == chain)?
        .1;
    let r = rules.get(usize::try_from(handle.checked_sub(1)?).ok()?)?;
    Some(save::rule_text(chain, r, t.family))
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

    fn drop_rule() -> LegacyRule {
        LegacyRule {
            ip: IpPart {
                src: Some(AddrMatch {
                    addr: "10.0.0.0".parse().unwrap(),
                    mask: "255.255.255.0".parse().unwrap(),
                    invert: true,
                }),
                iniface: Some(IfaceMatch {
                    name: "eth".into(),
                    wildcard: true,
                    invert: false,
                }),
                ..IpPart::default()
            },
            matches: vec![],
            target: LegacyTarget::Drop,
        }
    }

    fn filter(input_rules: usize, input_policy: Policy) -> LegacyTable {
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
                entries: 4 + input_rules as u32,
                chains: vec![
                    chain(
                        "INPUT",
                        Hook::Input,
                        vec![drop_rule(); input_rules],
                        input_policy,
                    ),
                    chain("FORWARD", Hook::Forward, vec![], Policy::Accept),
                    chain("OUTPUT", Hook::Output, vec![], Policy::Accept),
                ],
                user_chains: vec![],
            },
        }
    }

    #[test]
    fn a_read_table_is_evaluated_not_named() {
        assert!(filter(0, Policy::Accept).deciding().is_empty());
        assert!(filter(12, Policy::Drop).deciding().is_empty());
        let t = filter(2, Policy::Drop).to_table().unwrap();
        assert_eq!(t.name, "filter (iptables-legacy)");
        assert_eq!(t.family, crate::snapshot::Family::Ip);
        let input = t.chain("INPUT").unwrap();
        let base = input.base.as_ref().unwrap();
        assert_eq!(
            (base.hook, base.priority, base.policy),
            (Hook::Input, 0, Policy::Drop)
        );
        assert_eq!(input.rules.len(), 2);
        assert_eq!(input.rules[1].handle, 2);
    }

    #[test]
    fn rules_are_written_as_iptables_save_does() {
        let text = save::table_text(&filter(1, Policy::Drop));
        assert!(
            text.contains("*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n"),
            "{text}"
        );
        assert!(
            text.contains("-A INPUT ! -s 10.0.0.0/24 -i eth+ -j DROP\n"),
            "{text}"
        );
        assert!(text.ends_with("COMMIT\n"), "{text}");
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
        assert!(t.to_table().is_none());
    }
}
