//! portwarden: audit what a Linux host's live nftables ruleset does to the
//! connections its backup roles need.
//!
//! The crate is split along one boundary: [`nft`] reads the kernel (the only
//! module with `unsafe` code and netlink sockets) and produces a
//! [`snapshot::Snapshot`]; everything else works on that snapshot as plain data.
//! [`host`] reads the rest of the host (interfaces, routes, listening
//! sockets) over rtnetlink and sock_diag, without `unsafe`.

pub mod addrs;
pub mod audit;
pub mod catalog;
pub mod config;
pub mod daemon;
pub mod eval;
pub mod exit;
pub mod host;
pub mod nft;
pub mod pipeline;
pub mod ports;
pub mod render;
pub mod snapshot;
