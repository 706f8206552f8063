//! TEMPORARY stub of the host helper's module (replaced at merge): the
//! contract's types and signatures; the readers return
//! [`HostError::Unavailable`].

use crate::eval::{Routes, L4};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Why the host could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// Not implemented in this build.
    #[error("{0} is not available in this build")]
    Unavailable(&'static str),
}

impl HostError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        69
    }
}

/// Interfaces, addresses and main-table routes of the current network namespace.
pub fn read_routes() -> Result<Routes, HostError> {
    Err(HostError::Unavailable("reading routes"))
}

/// TCP listeners and bound UDP sockets, v4 and v6, of the current netns.
pub fn read_listeners() -> Result<Vec<Listener>, HostError> {
    Err(HostError::Unavailable("reading listeners"))
}

/// A listening TCP socket or a bound UDP socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    /// Protocol.
    pub proto: L4,
    /// Bound address; the unspecified address (0.0.0.0 / ::) for a wildcard bind.
    pub addr: IpAddr,
    /// Port.
    pub port: u16,
    /// For an IPv6 wildcard socket: true if it does NOT also accept IPv4 (IPV6_V6ONLY).
    pub v6only: bool,
    /// SO_BINDTODEVICE interface name, if bound to one.
    pub dev: Option<String>,
    /// Owner uid.
    pub uid: u32,
    /// Socket inode.
    pub inode: u64,
    /// Owning process, when /proc shows one.
    pub process: Option<Process>,
}

/// The process holding a socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    /// Process id.
    pub pid: u32,
    /// Command name.
    pub command: String,
    /// systemd unit from /proc/PID/cgroup (e.g. "sshd.service").
    pub unit: Option<String>,
}

impl Listener {
    /// Whether a connection to (daddr, iif) on this family reaches this socket.
    pub fn accepts(&self, daddr: IpAddr, iif: &str) -> bool {
        if self.dev.as_deref().is_some_and(|d| d != iif) {
            return false;
        }
        match (self.addr, daddr) {
            (a, d) if a == d => true,
            (IpAddr::V4(a), IpAddr::V4(_)) => a.is_unspecified(),
            (IpAddr::V6(a), IpAddr::V6(_)) => a.is_unspecified(),
            (IpAddr::V6(a), IpAddr::V4(_)) => a.is_unspecified() && !self.v6only,
            (IpAddr::V4(_), IpAddr::V6(_)) => false,
        }
    }

    /// Not bound to loopback only (127.0.0.0/8, ::1) and not to lo.
    pub fn is_exposed(&self) -> bool {
        !self.addr.is_loopback() && self.dev.as_deref() != Some("lo")
    }
}
