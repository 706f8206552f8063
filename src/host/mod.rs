//! The host side of an audit: interfaces, addresses and routes
//! ([`read_routes`], over rtnetlink) and listening sockets
//! ([`read_listeners`], over sock_diag and `/proc`) of the *current* network
//! namespace.
//!
//! Both read the namespace the calling thread is in: `ip netns exec NS
//! portwarden listeners` lists `NS`'s sockets. Neither needs `unsafe`: the
//! sockets are `netlink-sys`'s, and messages are built and parsed with
//! `netlink-packet-route` / `netlink-packet-sock-diag`.

pub mod cgroup;
pub mod model;
mod netlink;
pub mod routes;
pub mod sockets;

pub use model::{
    rtn, ConfFrom, Interface, Route, RouteKind, Routes, RpFilter, Rule, RuleAction, Socket,
    ARPHRD_ETHER, ARPHRD_LOOPBACK, RT_TABLE_DEFAULT, RT_TABLE_LOCAL, RT_TABLE_MAIN,
};
pub use routes::read_routes;
pub use sockets::{read_listeners, Listener, Process};

use std::io;

/// Why reading the host's routes or sockets failed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The kernel refused (`EPERM` / `EACCES`).
    #[error("permission denied {what}: run as root or with CAP_NET_ADMIN ({source})")]
    Permission {
        /// What was being read.
        what: &'static str,
        /// The kernel's error.
        source: io::Error,
    },
    /// The netlink family is missing from this kernel (no `sock_diag`, no
    /// IPv6...).
    #[error("{what}: not available in this kernel or network namespace ({source})")]
    Unavailable {
        /// What was being read.
        what: &'static str,
        /// The kernel's error.
        source: io::Error,
    },
    /// A reply that could not be decoded.
    #[error("{what}: unexpected netlink reply: {detail}")]
    Protocol {
        /// What was being read.
        what: &'static str,
        /// What was wrong with it.
        detail: String,
    },
    /// Any other socket error.
    #[error("{what}: {source}")]
    Io {
        /// What was being read.
        what: &'static str,
        /// The error.
        source: io::Error,
    },
}

impl HostError {
    /// Process exit code: 77 no permission, 69 unavailable, 76 protocol,
    /// 74 other I/O (the same codes as `portwarden dump`).
    pub fn exit_code(&self) -> u8 {
        match self {
            HostError::Permission { .. } => crate::exit::NO_PERMISSION,
            HostError::Unavailable { .. } => crate::exit::UNAVAILABLE,
            HostError::Protocol { .. } => crate::exit::PROTOCOL,
            HostError::Io { .. } => crate::exit::IO_ERROR,
        }
    }

    /// Classifies an OS error by its errno.
    pub(crate) fn from_io(what: &'static str, source: io::Error) -> HostError {
        match source.raw_os_error() {
            Some(libc::EPERM | libc::EACCES) => HostError::Permission { what, source },
            Some(libc::EPROTONOSUPPORT | libc::EAFNOSUPPORT | libc::EOPNOTSUPP | libc::ENOENT) => {
                HostError::Unavailable { what, source }
            }
            _ => HostError::Io { what, source },
        }
    }

    /// A reply that did not decode.
    pub(crate) fn protocol(what: &'static str, detail: impl std::fmt::Display) -> HostError {
        HostError::Protocol {
            what,
            detail: detail.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_exit_codes() {
        let e = |n| HostError::from_io("reading links", io::Error::from_raw_os_error(n));
        assert_eq!(e(libc::EPERM).exit_code(), 77);
        assert_eq!(e(libc::EACCES).exit_code(), 77);
        assert_eq!(e(libc::EPROTONOSUPPORT).exit_code(), 69);
        assert_eq!(e(libc::EIO).exit_code(), 74);
        assert_eq!(HostError::protocol("x", "bad").exit_code(), 76);
        let msg = e(libc::EPERM).to_string();
        assert!(msg.contains("permission denied reading links"), "{msg}");
    }
}
