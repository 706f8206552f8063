//! The ruleset as data: one consistent copy of what the kernel enforces.
//!
//! A [`Snapshot`] is what [`crate::nft`] reads from the kernel and what every
//! later stage (evaluation, audit, reports) consumes; nothing past this type
//! touches netlink. It is keyed the way the kernel's change notifications are
//! (table by family and name, chain and set by name, rule by handle, element by
//! key: see [`Set::upsert`] and [`Set::remove`]), and the decoder in
//! [`crate::nft::decode`] turns one netlink message at a time into these
//! values, so a notification can be applied in place instead of re-dumping a
//! ruleset with a 200,000-element blocklist.

mod expr;
pub mod legacy;
mod set;
mod summary;
mod text;
pub mod value;
pub mod xt;

pub use expr::*;
pub use set::*;
pub use summary::Summary;
pub use text::{rule_text, TableText};

use serde::{Deserialize, Serialize};
use std::fmt;

/// A consistent copy of the whole nftables ruleset of one network namespace.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The ruleset generation the copy was taken at (the kernel's `NEWGEN` id).
    pub generation: u32,
    /// Every table, in the kernel's dump order.
    pub tables: Vec<Table>,
    /// The legacy iptables and ip6tables tables of the namespace (x_tables,
    /// outside nf_tables): their chains, policies and decoded rules. See
    /// [`legacy`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub legacy: Vec<legacy::LegacyTable>,
    /// Why the legacy tables of a family could not be listed (e.g. the
    /// names file in `/proc/net` is readable by root only): nothing is
    /// known of them, and answers say that they assume none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub legacy_unlisted: Vec<legacy::LegacyUnlisted>,
}

/// An nftables address family, as `nft` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// `ip`: IPv4 only.
    Ip,
    /// `ip6`: IPv6 only.
    Ip6,
    /// `inet`: IPv4 and IPv6.
    Inet,
    /// `arp`.
    Arp,
    /// `bridge`.
    Bridge,
    /// `netdev`: ingress/egress of a device, before the IP stack.
    Netdev,
}

impl Family {
    /// The family for a kernel `NFPROTO_*` number.
    pub fn from_nfproto(n: u32) -> Option<Family> {
        Some(match n {
            1 => Family::Inet,
            2 => Family::Ip,
            3 => Family::Arp,
            5 => Family::Netdev,
            7 => Family::Bridge,
            10 => Family::Ip6,
            _ => return None,
        })
    }

    /// The kernel's `NFPROTO_*` number.
    pub fn nfproto(self) -> u8 {
        match self {
            Family::Inet => 1,
            Family::Ip => 2,
            Family::Arp => 3,
            Family::Netdev => 5,
            Family::Bridge => 7,
            Family::Ip6 => 10,
        }
    }

    /// Every family, in the order `nft list ruleset` dumps them.
    pub const ALL: [Family; 6] = [
        Family::Ip,
        Family::Ip6,
        Family::Inet,
        Family::Arp,
        Family::Bridge,
        Family::Netdev,
    ];
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Ip => "ip",
            Family::Ip6 => "ip6",
            Family::Inet => "inet",
            Family::Arp => "arp",
            Family::Bridge => "bridge",
            Family::Netdev => "netdev",
        })
    }
}

/// A table and everything in it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Table {
    /// Address family.
    pub family: Family,
    /// Table name.
    pub name: String,
    /// Kernel handle.
    pub handle: u64,
    /// `NFT_TABLE_F_*` flags (1 = dormant, 2 = owner).
    #[serde(default)]
    pub flags: u32,
    /// Chains, base and regular, in dump order.
    pub chains: Vec<Chain>,
    /// Named and anonymous sets and maps.
    pub sets: Vec<Set>,
    /// Flowtables, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flowtables: Vec<Flowtable>,
    /// Stateful objects (named counters, quotas, limits, ct helpers...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<Object>,
}

impl Table {
    /// Whether the table is dormant (its base chains are not registered).
    pub fn dormant(&self) -> bool {
        self.flags & 1 != 0
    }

    /// The chain called `name`.
    pub fn chain(&self, name: &str) -> Option<&Chain> {
        self.chains.iter().find(|c| c.name == name)
    }

    /// The set or map called `name`.
    pub fn set(&self, name: &str) -> Option<&Set> {
        self.sets.iter().find(|s| s.name == name)
    }
}

/// A chain. Base chains carry a [`BaseHook`]; regular chains are reached only
/// by jump or goto.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Chain {
    /// Chain name.
    pub name: String,
    /// Kernel handle.
    pub handle: u64,
    /// Where the chain is attached, for base chains.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub base: Option<BaseHook>,
    /// Rules in evaluation order.
    pub rules: Vec<Rule>,
}

/// The hook a base chain is attached to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseHook {
    /// Chain type: `filter`, `nat` or `route`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The netfilter hook.
    pub hook: Hook,
    /// Priority; lower runs first.
    pub priority: i32,
    /// What happens to a packet that reaches the end of the chain.
    pub policy: Policy,
    /// Devices, for netdev chains and inet ingress chains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
}

/// A netfilter hook, named as `nft` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Hook {
    /// Before routing.
    Prerouting,
    /// Packets for a local socket.
    Input,
    /// Routed packets.
    Forward,
    /// Locally generated packets.
    Output,
    /// After routing, all outgoing packets.
    Postrouting,
    /// Device ingress (netdev, inet).
    Ingress,
    /// Device egress (netdev).
    Egress,
}

impl Hook {
    /// The hook for a kernel hook number in `family`.
    pub fn from_raw(family: Family, n: u32) -> Option<Hook> {
        Some(match (family, n) {
            (Family::Netdev, 0) => Hook::Ingress,
            (Family::Netdev, 1) => Hook::Egress,
            (Family::Arp, 0) => Hook::Input,
            (Family::Arp, 1) => Hook::Output,
            (Family::Arp, 2) => Hook::Forward,
            (Family::Netdev | Family::Arp, _) => return None,
            (_, 0) => Hook::Prerouting,
            (_, 1) => Hook::Input,
            (_, 2) => Hook::Forward,
            (_, 3) => Hook::Output,
            (_, 4) => Hook::Postrouting,
            (_, 5) => Hook::Ingress,
            _ => return None,
        })
    }
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = serde_json::to_value(self).ok();
        f.write_str(s.as_ref().and_then(|v| v.as_str()).unwrap_or("?"))
    }
}

/// A base chain's policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Packets reaching the end go on to the next base chain.
    Accept,
    /// Packets reaching the end are dropped.
    Drop,
}

/// A rule: its handle, position and decoded expressions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// Kernel handle, stable for the rule's life.
    pub handle: u64,
    /// Index within the chain (0 = evaluated first).
    pub position: u32,
    /// The rule's comment, from its userdata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Expressions in evaluation order.
    pub exprs: Vec<Expr>,
    /// True when an expression could not be decoded ([`Expr::Unknown`]): the
    /// rule is kept, and anything judging it must treat it as not understood.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub incomplete: bool,
}

/// A flowtable (fast path offload), kept by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flowtable {
    /// Name.
    pub name: String,
    /// Hook number as the kernel reports it.
    pub hook: u32,
    /// Priority.
    pub priority: i32,
    /// Devices the flowtable covers.
    pub devices: Vec<String>,
    /// `NFT_FLOWTABLE_*` flags.
    pub flags: u32,
}

/// A named stateful object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Object {
    /// Name.
    pub name: String,
    /// Kind: `counter`, `quota`, `limit`, `ct helper`, ...
    pub kind: ObjectKind,
}

/// What a named object is, with the fields that matter for evaluation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ObjectKind {
    /// A counter.
    Counter {
        /// Packets seen.
        packets: u64,
        /// Bytes seen.
        bytes: u64,
    },
    /// A quota.
    Quota {
        /// Byte budget.
        bytes: u64,
        /// Bytes used.
        consumed: u64,
        /// 1 = `over` (inverted).
        flags: u32,
    },
    /// A rate limit.
    Limit {
        /// Rate per unit.
        rate: u64,
        /// Unit in seconds.
        unit: u64,
        /// Burst.
        burst: u32,
        /// 0 packets, 1 bytes.
        kind: u32,
        /// 1 = `over` (inverted).
        flags: u32,
    },
    /// Any other object type, by kernel type number.
    Other {
        /// `NFT_OBJECT_*` number.
        object_type: u32,
    },
}

#[cfg(test)]
mod size_tests {
    /// Snapshot memory is dominated by set elements and expressions (a
    /// 200,000-range blocklist, 20,000 rules): keep them from growing unnoticed.
    #[test]
    fn elements_and_expressions_stay_small() {
        assert!(std::mem::size_of::<super::Element>() <= 72);
        assert!(std::mem::size_of::<super::Expr>() <= 88);
    }
}
