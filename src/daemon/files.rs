//! The daemon's state for other tools: the report file and the Prometheus
//! textfile, each replaced atomically (written beside, then renamed).

use crate::audit::Report;
use crate::config::DaemonConfig;
use crate::render::metrics::{self, DaemonCounters};
use crate::render::status::ChangedBy;
use std::io::Write;
use std::path::Path;
use tracing::warn;

/// Writes `path` through `PATH.tmp` and a rename, so a reader sees the old
/// file or the new one, never half of one.
fn replace(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp)?;
    let done = write(&mut f).and_then(|()| f.flush());
    if let Err(e) = done {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path)
}

/// The report as `audit --json` writes it, plus `audited_at`,
/// `checked_at` (the file's modification time is refreshed at every
/// socket check) and `changed_by`.
pub fn write_report(cfg: &DaemonConfig, report: &Report, changed_by: Option<&ChangedBy>) {
    let path = &cfg.report_path;
    if path.as_os_str().is_empty() {
        return;
    }
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let now = super::now_rfc3339();
    let mut extra = serde_json::Map::new();
    extra.insert("audited_at".into(), now.clone().into());
    extra.insert("checked_at".into(), now.into());
    extra.insert(
        "changed_by".into(),
        serde_json::to_value(changed_by).unwrap_or_default(),
    );
    if let Err(e) = replace(path, |f| {
        crate::render::json::write_report_with(
            report,
            f,
            &extra,
            crate::render::json::PeerLists::First,
        )
    }) {
        warn!("writing {}: {e}", path.display());
    }
}

/// The report file of a daemon with no role configured: `status` reads
/// `not_configured` and answers UNKNOWN with its text.
pub fn write_not_configured(cfg: &DaemonConfig, what: &str) {
    let path = &cfg.report_path;
    if path.as_os_str().is_empty() {
        return;
    }
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let doc = serde_json::json!({
        "not_configured": what,
        "checked_at": super::now_rfc3339(),
    });
    if let Err(e) = replace(path, |f| writeln!(f, "{doc}")) {
        warn!("writing {}: {e}", path.display());
    }
}

/// Refreshes the report's modification time: the state it describes still
/// holds.
pub fn touch(path: &Path) {
    if let Ok(f) = std::fs::File::options().append(true).open(path) {
        let _ = f.set_modified(std::time::SystemTime::now());
    }
}

/// The node_exporter textfile, when its directory exists.
pub fn write_metrics(cfg: &DaemonConfig, report: &Report, counters: &DaemonCounters) {
    let path = &cfg.textfile_path;
    if path.as_os_str().is_empty() || !path.parent().is_some_and(Path::is_dir) {
        return;
    }
    let text = metrics::textfile(report, counters);
    if let Err(e) = replace(path, |f| f.write_all(text.as_bytes())) {
        warn!("writing {}: {e}", path.display());
    }
}
