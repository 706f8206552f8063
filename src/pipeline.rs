//! The one pipeline from the kernel to a report, shared by `portwarden
//! audit` and `portwarden daemon`:
//!
//! 1. [`Setup::load`]: the role catalog, the host configuration and the
//!    requirements they resolve to;
//! 2. [`read_host_state`]: the ruleset (one generation), the interfaces,
//!    addresses and routes, and the listening sockets, read over netlink;
//! 3. [`audit_state`]: the evaluator, the exposure and the audit, on that
//!    plain data.
//!
//! The daemon keeps its [`HostState`] up to date from the kernel's change
//! notifications instead of reading it again, and runs step 3 on it.

use crate::audit::{self, AuditInput, Report};
use crate::catalog::{Catalog, CatalogError, ResolvedRequirement};
use crate::config::{CliOptions, ConfigError, HostConfig, Warning};
use crate::eval::Evaluator;
use crate::host::Routes;
use crate::host::{self, HostError, Listener};
use crate::nft::{read_snapshot, ReadError, ReadOptions};
use crate::snapshot::Snapshot;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Where the roles of a [`Setup`] come from.
#[derive(Clone, Copy, Debug)]
pub enum RolesFrom<'a> {
    /// A configuration file.
    File(&'a Path),
    /// Command-line options (`--role`, `--peer`, `--private-iface`, `--set`).
    Options(&'a CliOptions),
}

/// What the audit checks against: the catalog, the host configuration and
/// the requirements of the host's roles.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The role catalog (built in, then the override directories).
    pub catalog: Catalog,
    /// The validated host configuration.
    pub config: HostConfig,
    /// The requirements of the configured roles, settings applied.
    pub requirements: Vec<ResolvedRequirement>,
    /// What validation warned about (the configuration is still used).
    pub warnings: Vec<Warning>,
}

/// Why a [`Setup`] could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The catalog could not be read or does not validate.
    #[error("catalog: {0}")]
    Catalog(#[from] CatalogError),
    /// The configuration could not be read or does not validate.
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// The configured roles do not resolve.
    #[error("roles: {0}")]
    Roles(CatalogError),
}

impl Setup {
    /// Loads the catalog from `catalog_dirs` (after the built-in one), then
    /// the configuration, and resolves the roles.
    pub fn load(catalog_dirs: &[PathBuf], roles: RolesFrom<'_>) -> Result<Setup, SetupError> {
        let dirs: Vec<&Path> = catalog_dirs.iter().map(PathBuf::as_path).collect();
        let catalog = Catalog::load(&dirs)?;
        let (config, warnings) = match roles {
            RolesFrom::File(path) => HostConfig::load(path, &catalog)?,
            RolesFrom::Options(o) => HostConfig::from_cli_options(&catalog, o)?,
        };
        let requirements = catalog
            .resolve(&config.roles, &config.settings)
            .map_err(SetupError::Roles)?;
        Ok(Setup {
            catalog,
            config,
            requirements,
            warnings,
        })
    }

    /// The catalog's default override directories.
    pub fn default_catalog_dirs() -> Vec<PathBuf> {
        crate::catalog::DEFAULT_DIRS
            .iter()
            .map(PathBuf::from)
            .collect()
    }
}

/// What the kernel says about the host, as plain data: everything an audit
/// reads.
#[derive(Clone, Debug, Default)]
pub struct HostState {
    /// The ruleset, at one generation.
    pub snapshot: Snapshot,
    /// Interfaces, addresses and main-table routes.
    pub routes: Routes,
    /// Listening TCP sockets and bound UDP sockets.
    pub listeners: Vec<Listener>,
}

/// Why the host state could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading the ruleset failed.
    #[error("reading the ruleset: {0}")]
    Ruleset(#[from] ReadError),
    /// Reading interfaces and routes failed.
    #[error("reading interfaces and routes: {0}")]
    Routes(HostError),
    /// Reading the listening sockets failed.
    #[error("reading listening sockets: {0}")]
    Listeners(HostError),
}

impl StateError {
    /// The process exit code of the underlying error (as `portwarden dump`).
    pub fn exit_code(&self) -> u8 {
        match self {
            StateError::Ruleset(e) => e.exit_code(),
            StateError::Routes(e) | StateError::Listeners(e) => e.exit_code(),
        }
    }
}

/// Reads the ruleset, the routes and the listeners of the current network
/// namespace. The host's interfaces and sockets are read while the ruleset
/// is: a large set takes the kernel seconds to dump, on one core.
pub fn read_host_state(opts: &ReadOptions, timings: &mut Timings) -> Result<HostState, StateError> {
    let (snapshot, host) = std::thread::scope(|s| {
        let host = s.spawn(|| (host::read_routes(), host::read_listeners()));
        let snapshot = read_snapshot(opts);
        timings.lap("snapshot");
        (snapshot, host.join())
    });
    timings.lap("host");
    let snapshot = snapshot?;
    // The reading thread only calls netlink; a panic there is a bug worth
    // propagating as is.
    let (routes, listeners) = host.unwrap_or_else(|p| std::panic::resume_unwind(p));
    Ok(HostState {
        snapshot,
        routes: routes.map_err(StateError::Routes)?,
        listeners: listeners.map_err(StateError::Listeners)?,
    })
}

/// Reads the ruleset and the routes of the current network namespace and
/// builds the evaluator (`explain`, `exposure`): the snapshot, for
/// rendering rules, and the evaluator, which answers for now (time matches
/// are decided at the moment of the read).
pub fn read_evaluator(opts: &ReadOptions) -> Result<(Snapshot, Evaluator), StateError> {
    let snapshot = read_snapshot(opts)?;
    let routes = host::read_routes().map_err(StateError::Routes)?;
    let evaluator = Evaluator::new(&snapshot, routes).at(crate::eval::Clock::now());
    Ok((snapshot, evaluator))
}

/// Audits `state` against `setup`: builds the evaluator and the exposure
/// once, then the findings.
pub fn audit_state(
    state: &HostState,
    setup: &Setup,
    proofs: audit::Proofs,
    timings: &mut Timings,
) -> Report {
    // The audit keeps its own handling of routing refusals (see
    // `Evaluator::without_routing_checks`).
    let evaluator = Evaluator::new(&state.snapshot, state.routes.clone()).without_routing_checks();
    timings.lap("evaluator");
    let exposure = evaluator.exposure();
    timings.lap("exposure");
    let report = audit::audit(&AuditInput {
        snapshot: &state.snapshot,
        evaluator: &evaluator,
        exposure: &exposure,
        listeners: &state.listeners,
        requirements: &setup.requirements,
        config: &setup.config,
        proofs,
    });
    timings.lap("findings");
    // On a big host the evaluator and the exposure are millions of small
    // allocations; the CLI exits right after, and the daemon drops them on
    // its blocking thread, so neither waits here for them to be freed one
    // by one when it does not have to.
    if timings.exiting {
        std::mem::forget((evaluator, exposure));
    }
    report
}

/// How long each phase took, with `PORTWARDEN_TIMINGS` set: one line on
/// stderr at the end, `timings: snapshot 5.230 s, host 0.001 s, ...` (each
/// phase from the end of the one before). For benchmarks and profiling.
#[derive(Debug, Default)]
pub struct Timings {
    /// Phase start, and the phases so far; `None`: not asked for.
    on: Option<(Instant, Vec<(&'static str, f64)>)>,
    /// Whether the process exits after this run (big structures are then
    /// left to the kernel instead of being freed).
    pub exiting: bool,
}

impl Timings {
    /// On when `PORTWARDEN_TIMINGS` is set.
    pub fn from_env() -> Timings {
        Timings {
            on: std::env::var_os("PORTWARDEN_TIMINGS").map(|_| (Instant::now(), Vec::new())),
            exiting: false,
        }
    }

    /// Ends the phase `name`.
    pub fn lap(&mut self, name: &'static str) {
        if let Some((start, laps)) = &mut self.on {
            laps.push((name, start.elapsed().as_secs_f64()));
            *start = Instant::now();
        }
    }

    /// Prints the phases on stderr, when on.
    pub fn print(&self) {
        if let Some((_, laps)) = &self.on {
            let parts: Vec<String> = laps.iter().map(|(n, t)| format!("{n} {t:.3} s")).collect();
            eprintln!("timings: {}", parts.join(", "));
        }
    }
}
