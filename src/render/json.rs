//! The one-line JSON documents: `audit --json` (the [`Report`]) and the
//! daemon's report file (the same, with members added).

use crate::audit::Report;
use rayon::prelude::*;
use std::io::Write;

/// Writes `report` compact (one line, as `dump --json` and `exposure
/// --json`) and a newline to `w`: `{"generation": N, "findings": [...],
/// "notes": [...]}`. Reports with thousands of findings run to megabytes:
/// the findings are serialised in chunks on all cores, then written in
/// order.
pub fn write_report(report: &Report, w: impl Write) -> std::io::Result<()> {
    write_report_with(report, w, &serde_json::Map::new())
}

/// [`write_report`] with `extra` members after `notes` (the daemon's
/// `audited_at`, `checked_at` and `changed_by`).
pub fn write_report_with(
    report: &Report,
    w: impl Write,
    extra: &serde_json::Map<String, serde_json::Value>,
) -> std::io::Result<()> {
    // Serialised in chunks shared out between the cores (findings
    // differ in size by orders of magnitude), then written in order.
    let chunk = report.findings.len().div_ceil(64).max(1);
    let parts: Vec<Vec<u8>> = report
        .findings
        .par_chunks(chunk)
        .map(|v| {
            let mut out = Vec::new();
            for f in v {
                out.push(b',');
                serde_json::to_writer(&mut out, f).expect("a finding serialises");
            }
            out
        })
        .collect();
    let mut w = std::io::BufWriter::with_capacity(1 << 16, w);
    write!(w, "{{\"generation\":{},\"findings\":[", report.generation)?;
    for (i, p) in parts.iter().enumerate() {
        // Each part starts with a comma; the first one's is dropped.
        w.write_all(if i == 0 { &p[1..] } else { p })?;
    }
    w.write_all(b"],\"notes\":")?;
    serde_json::to_writer(&mut w, &report.notes).map_err(std::io::Error::from)?;
    for (k, v) in extra {
        w.write_all(b",")?;
        serde_json::to_writer(&mut w, k).map_err(std::io::Error::from)?;
        w.write_all(b":")?;
        serde_json::to_writer(&mut w, v).map_err(std::io::Error::from)?;
    }
    w.write_all(b"}\n")?;
    w.flush()
}
