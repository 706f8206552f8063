//! The exit codes of the `portwarden` command, in one place.
//!
//! Read errors use the `sysexits.h` codes (64-78); the audit keeps the
//! monitoring-plugin convention (0 ok, 1 warning, 2 critical, 3 unknown),
//! so that a usage error of `audit` is 3, never clap's 2 (which would read as
//! critical). Which command gives which code is in each command's `--help`
//! and in the README.

/// Success (for `audit`: no warnings; for `check-config`: valid).
pub const OK: u8 = 0;
/// `audit`: the worst finding is a warning.
pub const WARNINGS: u8 = 1;
/// `audit`: there is a critical finding.
pub const CRITICAL: u8 = 2;
/// Every command but `audit`: bad arguments (clap's usage error, an unknown
/// role id, a `--catalog-dir` that is not a directory).
pub const USAGE: u8 = 2;
/// `audit`: could not audit (bad options, configuration or catalog, no
/// permission, a read error); `check-config`, `roles`, `catalog`: the
/// configuration or the catalog is invalid or cannot be read.
pub const INVALID: u8 = 3;
/// The kernel lacks what is read (nf_tables, sock_diag) in this namespace
/// (`EX_UNAVAILABLE`).
pub const UNAVAILABLE: u8 = 69;
/// Any other I/O error, writing the output included (`EX_IOERR`).
pub const IO_ERROR: u8 = 74;
/// The ruleset kept changing while it was read; try again (`EX_TEMPFAIL`).
pub const KEPT_CHANGING: u8 = 75;
/// An unexpected or malformed netlink reply (`EX_PROTOCOL`).
pub const PROTOCOL: u8 = 76;
/// Permission denied: run as root or with CAP_NET_ADMIN (`EX_NOPERM`).
pub const NO_PERMISSION: u8 = 77;
/// The loaded libnftnl is not a release portwarden's message validator was
/// checked against (see docs/libnftnl.md); nothing was parsed
/// (`EX_CONFIG`: the system's libnftnl does not fit this build).
pub const UNSUPPORTED_LIBNFTNL: u8 = 78;
