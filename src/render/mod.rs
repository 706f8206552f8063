//! Renderers: what a report looks like to each reader. Each turns the same
//! [`crate::audit::Report`] (or one of its findings) into one form:
//!
//! - [`journal`]: the message ids and native journal fields of the
//!   daemon's entries;
//! - [`metrics`]: the Prometheus text exposition written for node_exporter's
//!   textfile collector;
//! - [`status`]: the report file as `portwarden status` reads it back.
//!
//! The text and JSON reports of `portwarden audit` are
//! [`crate::audit::text`] and [`crate::audit::Report::write_json`].

pub mod journal;
pub mod metrics;
pub mod status;
