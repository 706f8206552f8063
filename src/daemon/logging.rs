//! Where the daemon's entries go: the journal, with native fields, when
//! stderr is connected to it (`JOURNAL_STREAM` set, as systemd does for a
//! service), else readable lines on stderr.

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

/// Installs the global subscriber. `PORTWARDEN_LOG` (`error`, `warn`,
/// `info`, `debug`, `trace`) sets the least level written (default `info`).
pub fn init() {
    let level = std::env::var("PORTWARDEN_LOG")
        .ok()
        .and_then(|v| v.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let registry = tracing_subscriber::registry().with(level);
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        match tracing_journald::layer() {
            Ok(layer) => {
                let layer = layer
                    .with_field_prefix(None)
                    .with_syslog_identifier("portwarden".into());
                let _ = registry.with(layer).try_init();
                return;
            }
            Err(e) => eprintln!("portwarden: no journal ({e}); logging to stderr"),
        }
    }
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false);
    let _ = registry.with(fmt).try_init();
}
