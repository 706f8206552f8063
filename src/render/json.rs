//! The one-line JSON documents: `audit --json` (the [`Report`]) and the
//! daemon's report file (the same, with members added).

use crate::audit::netjson::AllPeers;
use crate::audit::{Finding, Report};
use rayon::prelude::*;
use std::io::Write;

/// How many peer prefixes a finding's and piece's `peers` list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PeerLists {
    /// The first [`PEERS_LISTED`](crate::audit::netjson::PEERS_LISTED),
    /// with `peer_count` counting them all.
    #[default]
    First,
    /// Every prefix (`audit --json --all-peers`; a report can run to
    /// megabytes).
    All,
}

/// Writes `report` compact (one line, as `dump --json` and `exposure
/// --json`) and a newline to `w`: `{"generation": N, "findings": [...],
/// "notes": [...]}`. Reports with thousands of findings run to megabytes:
/// the findings are serialised in chunks on all cores, then written in
/// order.
pub fn write_report(report: &Report, w: impl Write) -> std::io::Result<()> {
    write_report_with(report, w, &serde_json::Map::new(), PeerLists::First)
}

/// `f` as JSON with every peer prefix listed.
fn all_peers(f: &Finding) -> serde_json::Value {
    let list = |nets| serde_json::to_value(AllPeers(nets)).expect("prefixes serialise");
    let mut v = serde_json::to_value(f).expect("a finding serialises");
    v["peers"] = list(&f.peers);
    if let Some(pieces) = v.get_mut("pieces").and_then(|p| p.as_array_mut()) {
        for (pv, p) in pieces.iter_mut().zip(&f.pieces) {
            pv["peers"] = list(&p.peers);
        }
    }
    v
}

/// [`write_report`] with `extra` members after `notes` (the daemon's
/// `audited_at`, `checked_at` and `changed_by`), and the peer lists as
/// `peers` says.
pub fn write_report_with(
    report: &Report,
    w: impl Write,
    extra: &serde_json::Map<String, serde_json::Value>,
    peers: PeerLists,
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
                match peers {
                    PeerLists::First => serde_json::to_writer(&mut out, f),
                    PeerLists::All => serde_json::to_writer(&mut out, &all_peers(f)),
                }
                .expect("a finding serialises");
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
