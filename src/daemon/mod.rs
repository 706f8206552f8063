//! `portwarden daemon`: follows the kernel and alerts in the journal when a
//! change opens or closes something that matters.
//!
//! - **Start**: subscribe to the kernel's announcements first
//!   ([`watch`]: nf_tables notifications, link, address and route changes),
//!   then read the host once ([`crate::pipeline::read_host_state`]), audit,
//!   log a summary (and the existing findings, `alert_existing`), write the
//!   report and metrics, and tell systemd `READY=1`.
//! - **Changes**: each committed nf_tables transaction is applied to the
//!   kept snapshot in place ([`crate::nft::monitor`]); after `debounce_ms`
//!   without another commit the host is audited again, and what changed in
//!   the findings is logged ([`alerts`]), with the pid and command of the
//!   process that committed the change. The whole ruleset is never read
//!   again because something changed.
//! - **Timers**, for what the kernel does not announce: the listening
//!   sockets, the sets the packet path fills or that time out, and an hourly
//!   comparison of the kept snapshot with a fresh read.
//! - **Lost events** (`ENOBUFS`): a full read, logged at warning.
//! - **No role configured** (`roles = []`, as the package installs the
//!   file): one entry says what to configure, `READY=1`, and the daemon
//!   waits for `SIGHUP` ([`unconfigured`]) instead of alerting on every
//!   opening of a host it knows nothing about.
//! - **Signals**: `SIGHUP` reloads the configuration and the catalog (an
//!   invalid one is logged, the old one stays in force); `SIGTERM` and
//!   `SIGINT` end the daemon with status 0.

pub mod alerts;
mod files;
pub mod logging;
mod unconfigured;
pub mod watch;

use crate::audit::Report;
use crate::config::Severity;
use crate::host;
use crate::nft::monitor::{self, Applied};
use crate::nft::{read_snapshot, PartReader, ReadOptions};
use crate::pipeline::{
    audit_state, read_host_state, HostState, RolesFrom, Setup, SetupError, StateError, Timings,
};
use crate::render::journal::{self, FindingFields};
use crate::render::metrics::DaemonCounters;
use crate::render::status::{self, ChangedBy};
use crate::snapshot::flags;
use alerts::{Alert, Alerter, Change};
use sd_notify::NotifyState;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio::time::{interval, sleep_until, MissedTickBehavior};
use tracing::{debug, error, info, warn};
use watch::News;

/// What `portwarden daemon` is started with.
#[derive(Clone, Debug)]
pub struct DaemonOptions {
    /// The configuration file.
    pub config: PathBuf,
    /// Catalog override directories, after the built-in catalog.
    pub catalog_dirs: Vec<PathBuf>,
}

/// Why the daemon stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The configuration or catalog could not be loaded at start.
    #[error(transparent)]
    Setup(#[from] crate::pipeline::SetupError),
    /// The host could not be read.
    #[error(transparent)]
    Read(#[from] StateError),
    /// A kernel subscription or the runtime failed.
    #[error("{what}: {source}")]
    Io {
        /// What failed.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
}

impl DaemonError {
    fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> DaemonError {
        move |source| DaemonError::Io { what, source }
    }
}

/// Runs the daemon until `SIGTERM` or `SIGINT`.
pub fn run(opts: DaemonOptions) -> Result<(), DaemonError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(DaemonError::io("starting the runtime"))?;
    rt.block_on(async move {
        let setup = match Setup::load(&opts.catalog_dirs, RolesFrom::File(&opts.config)) {
            Err(SetupError::Config(e)) if e.is_only_no_roles() => {
                match unconfigured::wait_for_roles(&opts).await? {
                    Some(setup) => setup,
                    None => return Ok(()),
                }
            }
            setup => setup?,
        };
        let mut d = Daemon::start(opts, setup)?;
        d.run().await
    })
}

/// A journal entry at the level of a severity (critical: err, warning:
/// warning, else notice), with the finding's fields.
macro_rules! finding_entry {
    ($sev:expr, $($fields:tt)*) => {
        match $sev {
            Severity::Critical => error!($($fields)*),
            Severity::Warning => warn!($($fields)*),
            _ => info!($($fields)*),
        }
    };
}

struct Daemon {
    opts: DaemonOptions,
    setup: Arc<Setup>,
    state: Arc<HostState>,
    news: UnboundedReceiver<News>,
    parts: PartReader,
    alerter: Alerter,
    counters: DaemonCounters,
    changed_by: Option<ChangedBy>,
    report: Option<Arc<Report>>,
    /// Why the configuration in force is not the file's (a refused reload).
    config_problem: Option<String>,
    /// When an audit is due (a debounced change is pending).
    due: Option<tokio::time::Instant>,
    /// When an audit is due for deny-list changes that touch no bound peer
    /// (`deny_list_audit_s` after the first of them).
    lazy_due: Option<tokio::time::Instant>,
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

impl Daemon {
    fn start(opts: DaemonOptions, setup: Setup) -> Result<Daemon, DaemonError> {
        for w in &setup.warnings {
            warn!("{}: {w}", opts.config.display());
        }
        // Subscribe before reading, so that no commit falls between the
        // read and the subscription; commits the read already holds are
        // skipped by generation.
        // libnftnl parses what the subscription receives: refuse a release
        // the message validator was not checked against before anything is
        // parsed (a clear error and exit code, not libnftnl's exit()).
        let release = crate::nft::libversion::check()
            .map_err(|e| StateError::from(crate::nft::ReadError::from(e)))?;
        info!("parsing nf_tables messages with {release}");
        let (tx, news) = unbounded_channel();
        let rcvbuf = usize::try_from(setup.config.daemon.event_buffer_kib.saturating_mul(1024))
            .unwrap_or(usize::MAX);
        watch::nftables(tx.clone(), rcvbuf).map_err(DaemonError::io("subscribing to nftables"))?;
        watch::routes(tx).map_err(DaemonError::io("subscribing to route changes"))?;
        let state = read_host_state(&ReadOptions::default(), &mut Timings::default())?;
        let parts = PartReader::open().map_err(StateError::from)?;
        let d = &setup.config.daemon;
        let alerter = Alerter::new(d.flap_limit, Duration::from_secs(d.flap_window_s));
        Ok(Daemon {
            opts,
            setup: Arc::new(setup),
            state: Arc::new(state),
            news,
            parts,
            alerter,
            counters: DaemonCounters::default(),
            changed_by: None,
            report: None,
            config_problem: None,
            due: None,
            lazy_due: None,
        })
    }

    async fn run(&mut self) -> Result<(), DaemonError> {
        let mut term = signal(SignalKind::terminate()).map_err(DaemonError::io("signals"))?;
        let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::io("signals"))?;
        let mut hup = signal(SignalKind::hangup()).map_err(DaemonError::io("signals"))?;
        self.audit(true).await;
        let _ = sd_notify::notify(&[NotifyState::Ready, NotifyState::Status(&self.status())]);

        let cfg = self.setup.config.daemon.clone();
        let tick = |s: u64| {
            let mut i = interval(Duration::from_secs(s.max(1)));
            i.set_missed_tick_behavior(MissedTickBehavior::Delay);
            i
        };
        let mut sockets = tick(cfg.sockets_interval_s);
        let mut dynsets = tick(cfg.dynamic_sets_interval_s);
        let verify_on = cfg.verify_interval_s > 0;
        let mut verify = tick(cfg.verify_interval_s);
        let watchdog = sd_notify::watchdog_enabled();
        let mut dog = interval(watchdog.map_or(Duration::from_secs(3600), |d| d / 2));
        // Every interval's first tick is immediate: the start did that work.
        sockets.tick().await;
        dynsets.tick().await;
        verify.tick().await;
        loop {
            let due = self.due;
            let lazy_due = self.lazy_due;
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => self.reload().await,
                Some(n) = self.news.recv() => self.on_news(n)?,
                _ = sockets.tick() => self.recheck_sockets(),
                _ = dynsets.tick() => self.recheck_dynamic_sets(),
                _ = verify.tick(), if verify_on => self.verify(),
                _ = dog.tick(), if watchdog.is_some() => {
                    let _ = sd_notify::notify(&[NotifyState::Watchdog]);
                }
                _ = sleep_until(due.unwrap_or_else(tokio::time::Instant::now)), if due.is_some() => {
                    self.due = None;
                    self.audit(false).await;
                }
                _ = sleep_until(lazy_due.unwrap_or_else(tokio::time::Instant::now)), if lazy_due.is_some() => {
                    self.lazy_due = None;
                    self.audit(false).await;
                }
            }
        }
        let _ = sd_notify::notify(&[NotifyState::Stopping]);
        info!("stopping");
        Ok(())
    }

    /// Whether any of these address ranges holds an address of a bound peer
    /// group.
    fn touches_bound_peers(&self, hulls: &[(std::net::IpAddr, std::net::IpAddr)]) -> bool {
        self.setup.config.peers.values().flatten().any(|net| {
            let (first, last) = (net.network(), net.broadcast());
            hulls
                .iter()
                .any(|(lo, hi)| lo.is_ipv4() == first.is_ipv4() && *lo <= last && first <= *hi)
        })
    }

    /// Schedules an audit for deny-list changes that touch no bound peer:
    /// they change no alert (blocked sources that are not the host's peers
    /// are policy, and an opening whose sources shrink is the same hole), so
    /// on a host whose blocklist changes every second they are audited
    /// `deny_list_audit_s` after the first, together.
    fn dirty_lazily(&mut self) {
        if self.lazy_due.is_none() {
            let wait = Duration::from_secs(self.setup.config.daemon.deny_list_audit_s);
            self.lazy_due = Some(tokio::time::Instant::now() + wait);
        }
    }

    /// Schedules an audit after the debounce.
    fn dirty(&mut self) {
        let wait = Duration::from_millis(self.setup.config.daemon.debounce_ms);
        self.due = Some(tokio::time::Instant::now() + wait);
    }

    fn on_news(&mut self, n: News) -> Result<(), DaemonError> {
        match n {
            News::Commit(events, gen) => {
                if gen.id <= self.state.snapshot.generation && gen.id != 0 {
                    return Ok(()); // already in the snapshot read at start
                }
                let expected = self.state.snapshot.generation.wrapping_add(1);
                let deny_list_only = monitor::address_elements_only(&self.state.snapshot, &events)
                    .is_some_and(|hulls| !self.touches_bound_peers(&hulls));
                let state = Arc::make_mut(&mut self.state);
                let Applied { reread, lost } = monitor::apply(&mut state.snapshot, events);
                state.snapshot.generation = gen.id;
                self.changed_by = Some(ChangedBy {
                    pid: gen.pid,
                    comm: gen.comm.clone(),
                    at: Some(now_rfc3339()),
                });
                debug!(
                    message_id = journal::RULESET_CHANGED,
                    portwarden_generation = gen.id,
                    portwarden_changed_by_pid = gen.pid.unwrap_or(0),
                    portwarden_changed_by_comm = gen.comm.as_deref().unwrap_or(""),
                    "ruleset changed: generation {}",
                    gen.id
                );
                if lost || gen.id != expected {
                    let missed = u64::from(gen.id.wrapping_sub(expected));
                    self.resync(missed, "the events did not match the kept ruleset");
                } else {
                    if deny_list_only {
                        self.dirty_lazily();
                        return Ok(());
                    }
                    for r in reread {
                        match self.parts.chain_rules(r.family, &r.table, &r.chain) {
                            Ok(rules) => {
                                let state = Arc::make_mut(&mut self.state);
                                if let Some(c) = state
                                    .snapshot
                                    .tables
                                    .iter_mut()
                                    .find(|t| t.family == r.family && t.name == r.table)
                                    .and_then(|t| t.chains.iter_mut().find(|c| c.name == r.chain))
                                {
                                    c.rules = rules;
                                }
                            }
                            Err(e) => {
                                self.resync(0, &format!("reading chain {}: {e}", r.chain));
                                break;
                            }
                        }
                    }
                }
                self.dirty();
            }
            News::Lost => {
                // How many generations were missed is known after the read.
                let before = self.state.snapshot.generation;
                self.resync(0, "the kernel dropped change events (ENOBUFS)");
                let missed = u64::from(self.state.snapshot.generation.wrapping_sub(before));
                self.counters.lost_events += missed.max(1);
                self.dirty();
            }
            News::Undecodable(why) => {
                self.resync(0, &format!("an undecodable notification: {why}"));
                self.dirty();
            }
            News::Routes => match host::read_routes() {
                Ok(mut routes) => {
                    routes.sockets = self.state.routes.sockets.clone();
                    if routes != self.state.routes {
                        Arc::make_mut(&mut self.state).routes = routes;
                        self.dirty();
                    }
                }
                Err(e) => warn!("reading interfaces and routes: {e}"),
            },
            News::Failed(what, e) => {
                return Err(DaemonError::Io { what, source: e });
            }
        }
        Ok(())
    }

    /// Reads the whole ruleset again (lost or inconsistent events).
    fn resync(&mut self, missed: u64, why: &str) {
        match read_snapshot(&ReadOptions::default()) {
            Ok(snap) => {
                self.counters.resyncs += 1;
                let gap = missed.max(u64::from(
                    snap.generation.wrapping_sub(self.state.snapshot.generation),
                ));
                warn!(
                    message_id = journal::RESYNC,
                    portwarden_generation = snap.generation,
                    portwarden_lost_events = gap,
                    "full re-read of the ruleset: {why}; about {gap} generations of events lost"
                );
                Arc::make_mut(&mut self.state).snapshot = snap;
            }
            Err(e) => error!(message_id = journal::RESYNC, "re-reading the ruleset: {e}"),
        }
    }

    fn recheck_sockets(&mut self) {
        match host::read_listeners() {
            Ok(l) if l != self.state.listeners => {
                Arc::make_mut(&mut self.state).listeners = l;
                self.dirty();
            }
            Ok(_) => files::touch(&self.setup.config.daemon.report_path),
            Err(e) => warn!("reading listening sockets: {e}"),
        }
    }

    fn recheck_dynamic_sets(&mut self) {
        let mut changed = false;
        let state = Arc::make_mut(&mut self.state);
        let generation = state.snapshot.generation;
        for t in &mut state.snapshot.tables {
            for s in &mut t.sets {
                if s.flags & (flags::TIMEOUT | flags::EVAL) == 0 {
                    continue;
                }
                let mut fresh = s.clone();
                match self.parts.set_elements(t.family, &t.name, &mut fresh) {
                    Ok(()) => {
                        let key = |e: &crate::snapshot::Element| (e.key.clone(), e.key_end.clone());
                        if !fresh
                            .elements
                            .iter()
                            .map(key)
                            .eq(s.elements.iter().map(key))
                        {
                            changed = true;
                        }
                        *s = fresh;
                    }
                    // Gone since: the notification that says so follows.
                    Err(e) => debug!("re-reading set {} at generation {generation}: {e}", s.name),
                }
            }
        }
        if changed {
            self.dirty();
        }
    }

    /// Compares the kept ruleset with a fresh read; the fresh read wins.
    fn verify(&mut self) {
        let fresh = match read_snapshot(&ReadOptions::default()) {
            Ok(s) => s,
            Err(e) => {
                warn!("verifying the kept ruleset: {e}");
                return;
            }
        };
        if fresh.generation != self.state.snapshot.generation {
            return; // a commit is on its way; try at the next interval
        }
        if monitor::comparable(&fresh) != monitor::comparable(&self.state.snapshot) {
            self.counters.resyncs += 1;
            error!(
                message_id = journal::VERIFY_MISMATCH,
                portwarden_generation = fresh.generation,
                "the ruleset kept from change events differs from a fresh read at generation {}; using the fresh read",
                fresh.generation
            );
            Arc::make_mut(&mut self.state).snapshot = fresh;
            self.dirty();
        } else if (&fresh.legacy, &fresh.legacy_unlisted)
            != (
                &self.state.snapshot.legacy,
                &self.state.snapshot.legacy_unlisted,
            )
        {
            // No event tells of legacy iptables tables: this check does.
            info!("the legacy iptables tables changed; re-auditing");
            let snap = &mut Arc::make_mut(&mut self.state).snapshot;
            snap.legacy = fresh.legacy;
            snap.legacy_unlisted = fresh.legacy_unlisted;
            self.dirty();
        }
    }

    async fn reload(&mut self) {
        let _ = sd_notify::notify(&[NotifyState::Reloading]);
        match Setup::load(&self.opts.catalog_dirs, RolesFrom::File(&self.opts.config)) {
            Ok(setup) => {
                let d = &setup.config.daemon;
                self.alerter
                    .set_limit(d.flap_limit, Duration::from_secs(d.flap_window_s));
                self.setup = Arc::new(setup);
                self.config_problem = None;
                info!(
                    message_id = journal::RELOAD,
                    "configuration reloaded from {}",
                    self.opts.config.display()
                );
                self.audit(false).await;
            }
            Err(e) => {
                let first = e.to_string();
                let first = first.lines().next().unwrap_or_default().to_string();
                error!(
                    message_id = journal::RELOAD,
                    "configuration not reloaded, the previous one stays in force: {e}"
                );
                self.config_problem = Some(first);
            }
        }
        let _ = sd_notify::notify(&[NotifyState::Ready, NotifyState::Status(&self.status())]);
    }

    fn status(&self) -> String {
        let (c, w) = match &self.report {
            Some(r) => status::counts(r.findings.iter().map(|f| &f.severity)),
            None => (0, 0),
        };
        let mut s = status::summary_line(
            c,
            w,
            self.state.snapshot.generation,
            self.changed_by.as_ref(),
        );
        if let Some(p) = &self.config_problem {
            s.push_str(&format!("; reload refused, previous config in force: {p}"));
        }
        s
    }

    /// Audits the kept state and says what changed.
    async fn audit(&mut self, first: bool) {
        // This audit covers any deny-list change waiting for its own.
        self.lazy_due = None;
        let (state, setup) = (self.state.clone(), self.setup.clone());
        let started = Instant::now();
        let report = tokio::task::spawn_blocking(move || {
            audit_state(
                &state,
                &setup,
                crate::audit::Proofs::Budgeted,
                &mut Timings::default(),
            )
        })
        .await;
        let report = match report {
            Ok(r) => Arc::new(r),
            Err(e) => {
                error!("the audit failed: {e}");
                self.counters.up = false;
                return;
            }
        };
        self.counters.audit_duration_s = started.elapsed().as_secs_f64();
        self.counters.last_audit_unix_s = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.counters.up = true;
        let announce = !first || self.setup.config.daemon.alert_existing;
        let alerts = self.alerter.update(&report, announce, Instant::now());
        if first {
            let (c, w) = status::counts(report.findings.iter().map(|f| &f.severity));
            info!(
                message_id = journal::SUMMARY,
                portwarden_generation = report.generation,
                "started: {c} critical, {w} warning, {} findings in all; roles {}",
                report.findings.len(),
                self.setup.config.roles.join(", ")
            );
        }
        for a in &alerts {
            self.log_alert(a, report.generation);
        }
        self.report = Some(report.clone());
        files::write_report(&self.setup.config.daemon, &report, self.changed_by.as_ref());
        files::write_metrics(&self.setup.config.daemon, &report, &self.counters);
        let _ = sd_notify::notify(&[NotifyState::Status(&self.status())]);
    }

    fn log_alert(&self, a: &Alert, generation: u32) {
        let FindingFields {
            message_id: _,
            finding_id,
            kind,
            severity,
            role,
            requirement,
            proto,
            ports,
            peers,
            rule,
            fix,
            unit,
        } = &a.fields;
        let by = self.changed_by.as_ref();
        let pid = by.and_then(|c| c.pid).unwrap_or(0);
        let comm = by.and_then(|c| c.comm.as_deref()).unwrap_or("");
        let message = a.message(by);
        let level = match a.what {
            Change::New => a.severity,
            Change::Resolved => Severity::Ok,
        };
        finding_entry!(
            level,
            message_id = a.message_id(),
            portwarden_finding_id = finding_id.as_str(),
            portwarden_kind = *kind,
            portwarden_severity = *severity,
            portwarden_role = role.as_str(),
            portwarden_requirement = requirement.as_str(),
            portwarden_proto = *proto,
            portwarden_ports = ports.as_str(),
            portwarden_peers = peers.as_str(),
            portwarden_rule = rule.as_str(),
            portwarden_fix = fix.as_str(),
            portwarden_unit = unit.as_str(),
            portwarden_generation = generation,
            portwarden_changed_by_pid = pid,
            portwarden_changed_by_comm = comm,
            portwarden_suppressed = a.suppressed,
            "{message}"
        );
    }
}
