//! The daemon before any role is configured.
//!
//! A fresh install has `roles = []`: portwarden does not know what this
//! host is, so every opening would read as excess and every listener as
//! exposed. Instead it logs one entry that says what to configure, tells
//! systemd it is ready (the service is up, not failed), writes a report
//! file that `portwarden status` answers UNKNOWN for, and waits for
//! `SIGHUP`. A reload with roles starts the real daemon.

use super::{files, DaemonError, DaemonOptions};
use crate::config::DaemonConfig;
use crate::pipeline::{RolesFrom, Setup, SetupError};
use crate::render::journal;
use sd_notify::NotifyState;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio::time::interval;
use tracing::{error, info, warn};

/// Waits until a reload brings a configuration with roles (`Some`), or
/// until `SIGTERM`/`SIGINT` (`None`).
pub async fn wait_for_roles(opts: &DaemonOptions) -> Result<Option<Setup>, DaemonError> {
    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::io("signals"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::io("signals"))?;
    let mut hup = signal(SignalKind::hangup()).map_err(DaemonError::io("signals"))?;
    let path = opts.config.display().to_string();
    let what = format!(
        "not configured: {path} selects no role; set roles (see `portwarden catalog`) and \
         the peers they use, check with `portwarden check-config`, then `systemctl reload portwarden`"
    );
    warn!(
        message_id = journal::NOT_CONFIGURED,
        "{what}; until then nothing is audited and no alert is raised"
    );
    let mut cfg = DaemonConfig::from_file_leniently(&opts.config);
    files::write_not_configured(&cfg, &what);
    let _ = sd_notify::notify(&[NotifyState::Ready, NotifyState::Status(&what)]);
    let watchdog = sd_notify::watchdog_enabled();
    let mut dog = interval(watchdog.map_or(Duration::from_secs(3600), |d| d / 2));
    // Keeps the report fresh for `status`'s age check.
    let mut touch = interval(Duration::from_secs(cfg.sockets_interval_s.max(1)));
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = touch.tick() => files::touch(&cfg.report_path),
            _ = dog.tick(), if watchdog.is_some() => {
                let _ = sd_notify::notify(&[NotifyState::Watchdog]);
            }
            _ = hup.recv() => {
                let _ = sd_notify::notify(&[NotifyState::Reloading]);
                match Setup::load(&opts.catalog_dirs, RolesFrom::File(&opts.config)) {
                    Ok(setup) => {
                        info!(
                            message_id = journal::RELOAD,
                            "configuration reloaded from {path}: roles {}",
                            setup.config.roles.join(", ")
                        );
                        // READY follows the first audit, as at a start.
                        return Ok(Some(setup));
                    }
                    Err(SetupError::Config(e)) if e.is_only_no_roles() => {
                        info!(message_id = journal::RELOAD, "configuration reloaded; still {what}");
                    }
                    Err(e) => {
                        error!(
                            message_id = journal::RELOAD,
                            "configuration not reloaded, still not configured: {e}"
                        );
                    }
                }
                cfg = DaemonConfig::from_file_leniently(&opts.config);
                files::write_not_configured(&cfg, &what);
                let _ = sd_notify::notify(&[NotifyState::Ready, NotifyState::Status(&what)]);
            }
        }
    }
    let _ = sd_notify::notify(&[NotifyState::Stopping]);
    info!("stopping");
    Ok(None)
}
