//! Renderers: what a report looks like to each reader. Each turns the same
//! [`crate::audit::Report`] (or one of its findings) into one form:
//!
//! - [`text`]: `portwarden audit`'s text report;
//! - [`json`]: the one-line JSON documents (`audit --json`, the daemon's
//!   report file);
//! - [`explain`], [`exposure`], [`catalog`]: the text of `portwarden
//!   explain`, `portwarden exposure` and `portwarden roles`/`catalog`;
//! - [`journal`]: the message ids and native journal fields of the
//!   daemon's entries;
//! - [`metrics`]: the Prometheus text exposition written for node_exporter's
//!   textfile collector;
//! - [`status`]: the report file as `portwarden status` reads it back;
//! - [`host`]: the host part of `portwarden dump` (interfaces, routes,
//!   policy routing rules).

pub mod catalog;
pub mod explain;
pub mod exposure;
pub mod host;
pub mod journal;
pub mod json;
pub mod metrics;
pub mod status;
pub mod text;
