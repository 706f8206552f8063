//! Test data shared by the evaluator's and the audit's unit tests: the
//! dumped fixture snapshots of `src/eval/testdata` and the host side of the
//! standard test topology (`tests/fixtures/topology.sh`).

use crate::host::{Interface, Route, Routes, ARPHRD_LOOPBACK};
use crate::snapshot::Snapshot;

/// The snapshot dumped from fixture `name`.
pub(crate) fn snapshot(name: &str) -> Snapshot {
    let path = format!(
        "{}/src/eval/testdata/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The host side of the test topology.
pub(crate) fn topology() -> Routes {
    let mut lo = Interface::new("lo", 1, &["127.0.0.1/8", "::1/128"]);
    lo.iftype = ARPHRD_LOOPBACK;
    Routes {
        interfaces: vec![
            lo,
            Interface::new(
                "pw-pub",
                2,
                &["192.0.2.1/24", "2001:db8:1::1/64", "fe80::1/64"],
            ),
            Interface::new(
                "pw-priv",
                3,
                &["10.99.0.1/24", "fd00:99::1/64", "fe80::2/64"],
            ),
        ],
        routes: vec![Route::via("10.0.0.10/32", "pw-priv")],
        sockets: None,
        queues: None,
    }
}

/// The test topology with interfaces no fixture names: two Ethernet links
/// (one with an address), and a tunnel of another link type.
pub(crate) fn wide_topology() -> Routes {
    let mut r = topology();
    r.interfaces.push(Interface::new("eth7", 4, &[]));
    r.interfaces
        .push(Interface::new("veth9", 5, &["198.18.0.1/24", "fe80::9/64"]));
    let mut tun = Interface::new("wg0", 6, &[]);
    tun.iftype = 65534;
    r.interfaces.push(tun);
    r
}
