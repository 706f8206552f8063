//! TEMPORARY stub of the lead's exposure computation (replaced at merge):
//! the contract's types and signatures; [`Evaluator::exposure`] returns no
//! openings.

use super::{DecidedBy, Evaluator, Verdict, L4};
use crate::addrs::AddrFamily;
use crate::addrs::AddrSet;
use crate::ports::PortRange;
use serde::Serialize;
use std::net::IpAddr;

/// What the ruleset accepts, for new inbound TCP/UDP connections, over the
/// whole source-address and port spaces.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Exposure {
    /// The accepted (or possibly accepted) regions.
    pub openings: Vec<Opening>,
}

/// One region of (interface, local address, ports, sources) with one outcome.
#[derive(Clone, Debug, Serialize)]
pub struct Opening {
    /// Address family.
    pub family: AddrFamily,
    /// Protocol.
    pub proto: L4,
    /// Input interface.
    pub iif: String,
    /// Local destination address.
    pub to: IpAddr,
    /// Destination ports.
    pub ports: PortRange,
    /// Source ports.
    pub sports: PortRange,
    /// Accepted source addresses.
    pub sources: AddrSet,
    /// Accept, or Unknown (may be accepted; see `reason`).
    pub verdict: Verdict,
    /// The accepting rule or policy of the last base chain that accepted.
    pub decided_by: Option<DecidedBy>,
    /// Why the verdict is unknown.
    pub reason: Option<String>,
}

impl Evaluator {
    /// What the ruleset accepts (stub: nothing).
    pub fn exposure(&self) -> Exposure {
        Exposure::default()
    }
}

impl Exposure {
    /// Openings matching a probe (verdict Accept/Unknown); none => not accepted.
    pub fn lookup(
        &self,
        proto: L4,
        from: IpAddr,
        to: IpAddr,
        iif: &str,
        sport: u16,
        dport: u16,
    ) -> Option<&Opening> {
        self.openings.iter().find(|o| {
            o.proto == proto
                && o.to == to
                && o.iif == iif
                && o.ports.contains(dport)
                && o.sports.contains(sport)
                && o.sources.contains(from)
        })
    }
}
