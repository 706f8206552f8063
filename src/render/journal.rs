//! The daemon's journal entries: one `MESSAGE_ID` per kind of entry
//! (explained for `journalctl -x` by `systemd/portwarden.catalog`) and the
//! `PORTWARDEN_*` fields of a finding.

use crate::audit::{Evidence, Finding, Fix};
use crate::config::FindingKind;

/// `MESSAGE_ID` of a new finding of `kind`.
pub fn finding_message_id(kind: FindingKind) -> &'static str {
    match kind {
        FindingKind::MissingOpening => "52ac6f21f73a475994c3a829c70d580d",
        FindingKind::PartialOpening => "3a924044ce794df791ce09627bcfb2cd",
        FindingKind::ExcessOpening => "b4b999388d4948cfbe38ce43f4577cf2",
        FindingKind::ExposedListener => "415d60dbbb954c8bacb69d3e57da6a8b",
        FindingKind::NotListening => "8145cc2e8006461c8eb98903387771b7",
        FindingKind::OutboundBlocked => "1c2376d206684a988e3c818b80641243",
        FindingKind::NotChecked => "9adf58d09e8d49c3a5eb6ba6e2a6a03f",
        FindingKind::ArpRefused => "49b4b0dbc21f405c8114b6c15b6971b9",
    }
}

/// `MESSAGE_ID` of a finding that is resolved.
pub const RESOLVED: &str = "bf2a4470791c4ab8b38770b0769e639a";
/// `MESSAGE_ID` of "the ruleset changed" (one per audited change).
pub const RULESET_CHANGED: &str = "242918f6878f4e43b9ab548e7a858d37";
/// `MESSAGE_ID` of a full re-read after lost events.
pub const RESYNC: &str = "63f51947dcad46bbb18e48df2105a9d1";
/// `MESSAGE_ID` of a configuration reload (done or refused).
pub const RELOAD: &str = "3cd5ad96b7f64eb6a4a3905de931f3ba";
/// `MESSAGE_ID` of the summary after the first audit.
pub const SUMMARY: &str = "ade134ae86df4073b08c8c5a8cd957e2";
/// `MESSAGE_ID` of a kept ruleset that differed from a fresh read.
pub const VERIFY_MISMATCH: &str = "d0f6b55773a44ebbbe93c32027318d0b";
/// `MESSAGE_ID` of "no role configured yet": the daemon waits for a reload.
pub const NOT_CONFIGURED: &str = "def923fe04c54ed39822cbdbc12189ee";

/// The native journal fields of a finding's entry, without the `MESSAGE`,
/// `MESSAGE_ID` and `PRIORITY` (the caller's logger sets those).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FindingFields {
    /// The `MESSAGE_ID` of the finding's kind (for a new finding).
    pub message_id: &'static str,
    /// `PORTWARDEN_FINDING_ID`.
    pub finding_id: String,
    /// `PORTWARDEN_KIND`.
    pub kind: &'static str,
    /// `PORTWARDEN_SEVERITY`.
    pub severity: &'static str,
    /// `PORTWARDEN_ROLE` (empty when no role requires it).
    pub role: String,
    /// `PORTWARDEN_REQUIREMENT`.
    pub requirement: String,
    /// `PORTWARDEN_PROTO`.
    pub proto: &'static str,
    /// `PORTWARDEN_PORTS`: `6162,2500-3300`.
    pub ports: String,
    /// `PORTWARDEN_PEERS`: prefixes, the first ten, then `(+N more)`.
    pub peers: String,
    /// `PORTWARDEN_RULE`: `family table chain handle` of the first rule
    /// evidence, or `family table chain policy P`.
    pub rule: String,
    /// `PORTWARDEN_FIX`: the proven nft fix, or why there is no safe one
    /// (empty when the finding has none, as `not-listening`).
    pub fix: String,
    /// `PORTWARDEN_UNIT`: the systemd units of the listening sockets an
    /// `exposed-listener` finding is about (`sshd.service`), comma
    /// separated; empty when none is known or the finding has no socket.
    pub unit: String,
}

/// How many peers a journal field lists before counting the rest.
const PEERS_SHOWN: usize = 10;

impl FindingFields {
    /// The fields of `f`.
    pub fn of(f: &Finding) -> FindingFields {
        let mut peers: Vec<String> = f
            .peers
            .iter()
            .take(PEERS_SHOWN)
            .map(ToString::to_string)
            .collect();
        if f.peers.len() > PEERS_SHOWN {
            peers.push(format!("(+{} more)", f.peers.len() - PEERS_SHOWN));
        }
        let rule = f
            .evidence
            .iter()
            .find_map(|e| match e {
                Evidence::Rule {
                    family,
                    table,
                    chain,
                    handle,
                    ..
                } => Some(format!("{family} {table} {chain} {handle}")),
                Evidence::Policy {
                    family,
                    table,
                    chain,
                    policy,
                } => Some(format!("{family} {table} {chain} policy {policy:?}").to_lowercase()),
                _ => None,
            })
            .unwrap_or_default();
        let mut units: Vec<&str> = Vec::new();
        for e in &f.evidence {
            if let Evidence::Listener { unit: Some(u), .. } = e {
                if !units.contains(&u.as_str()) {
                    units.push(u);
                }
            }
        }
        FindingFields {
            unit: units.join(","),
            message_id: finding_message_id(f.kind),
            finding_id: f.id.clone(),
            kind: f.kind.name(),
            severity: f.severity.name(),
            role: f.role.clone().unwrap_or_default(),
            requirement: f.requirement.clone().unwrap_or_default(),
            proto: f.proto.name(),
            ports: f.ports.to_string(),
            peers: peers.join(","),
            rule,
            fix: match &f.fix {
                Some(Fix::Proven { nft, .. }) => nft.clone(),
                Some(Fix::NoSafeFix { reason, .. }) => format!("no safe automatic fix: {reason}"),
                None => String::new(),
            },
        }
    }
}

/// Every `MESSAGE_ID` portwarden writes (each explained in
/// `systemd/portwarden.catalog`).
pub const ALL: &[&str] = &[
    "52ac6f21f73a475994c3a829c70d580d",
    "3a924044ce794df791ce09627bcfb2cd",
    "b4b999388d4948cfbe38ce43f4577cf2",
    "415d60dbbb954c8bacb69d3e57da6a8b",
    "8145cc2e8006461c8eb98903387771b7",
    "1c2376d206684a988e3c818b80641243",
    "9adf58d09e8d49c3a5eb6ba6e2a6a03f",
    "49b4b0dbc21f405c8114b6c15b6971b9",
    RESOLVED,
    RULESET_CHANGED,
    RESYNC,
    RELOAD,
    SUMMARY,
    VERIFY_MISMATCH,
    NOT_CONFIGURED,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_id_is_listed_and_explained_in_the_catalog() {
        let catalog = include_str!("../../systemd/portwarden.catalog");
        for kind in [
            FindingKind::MissingOpening,
            FindingKind::PartialOpening,
            FindingKind::ExcessOpening,
            FindingKind::ExposedListener,
            FindingKind::NotListening,
            FindingKind::OutboundBlocked,
            FindingKind::NotChecked,
            FindingKind::ArpRefused,
        ] {
            assert!(ALL.contains(&finding_message_id(kind)), "{kind:?}");
        }
        let mut seen = std::collections::HashSet::new();
        for id in ALL {
            assert!(seen.insert(id), "{id} twice");
            assert_eq!(id.len(), 32);
            assert!(
                catalog.contains(&format!("-- {id}\n")),
                "{id} not in the catalog"
            );
        }
        assert_eq!(catalog.matches("\n-- ").count(), ALL.len());
    }
}
