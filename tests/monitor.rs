//! The snapshot kept from change notifications (`nft::monitor`) against the
//! real kernel: after random sequences of `nft` changes in a throwaway
//! namespace (tables, chains, renames, rules, sets, plain and interval
//! elements, flushes, named counters and quotas, several changes in one
//! transaction), the snapshot kept from the events equals a fresh read at
//! the same generation.

mod common;

use common::{require_root, Netns};
use portwarden::nft::monitor::{self, Event, Transaction};
use portwarden::nft::sys::Monitor;
use portwarden::nft::{read_snapshot, PartReader};
use portwarden::snapshot::Snapshot;
use proptest::prelude::*;
use std::os::fd::AsRawFd;

/// The ruleset every case starts from.
const BASE: &str = "flush ruleset
table inet t0 {
  set s0 { type ipv4_addr; flags interval; elements = { 10.0.0.0/8, 192.168.1.1-192.168.1.9 } }
  set s1 { type inet_service; elements = { 22, 6162 } }
  chain c0 { type filter hook input priority 0; policy accept; tcp dport 22 accept; }
  chain c1 { ip saddr @s0 drop; }
}
table ip t1 {
  chain c0 { type filter hook output priority 0; }
}
";

/// One change, as an nft command (without the leading `nft`). Names are
/// drawn so that most commands apply to objects that exist.
fn op() -> impl Strategy<Value = String> {
    let t = prop::sample::select(vec!["inet t0", "inet t0", "inet t0", "ip t1", "inet t2"]);
    let c = prop::sample::select(vec!["c0", "c1", "c1", "c2"]);
    let addr_set = prop::sample::select(vec!["s0", "s0", "s2"]);
    let n = 0u32..40;
    (t, c, addr_set, n, 0u32..23).prop_map(|(t, c, s, n, k)| match k {
        0 => format!("add table {t}"),
        1 => format!("delete table {t}"),
        2 => format!("add chain {t} {c}"),
        3 => format!("add chain {t} {c} {{ type filter hook input priority {n}; policy drop; }}"),
        4 => format!("delete chain {t} {c}"),
        5 => format!("rename chain {t} {c} c{}", n % 4),
        6 => format!("add rule {t} {c} tcp dport {} accept", 1000 + n),
        7 => format!("insert rule {t} {c} ip saddr 10.1.{n}.0/24 counter drop"),
        8 => format!("delete rule {t} {c} handle {}", n % 12),
        9 => format!("flush chain {t} {c}"),
        10 => format!("add set {t} s2 {{ type ipv4_addr; flags interval; }}"),
        11 => format!(
            "add element {t} {s} {{ 172.{}.0.0/16, 11.9.{n}.1-11.9.{n}.20 }}",
            16 + n % 16
        ),
        12 if n % 2 == 0 => format!("delete element {t} {s} {{ 10.0.0.0/8 }}"),
        12 => format!("delete element {t} {s} {{ 172.{}.0.0/16 }}", 16 + n % 16),
        13 => format!("add element {t} s1 {{ {} }}", 20 + n),
        14 => format!(
            "delete element {t} s1 {{ {} }}",
            [22, 6162, 20 + n][n as usize % 3]
        ),
        15 => format!("flush set {t} {s}"),
        16 => format!("delete set {t} s2"),
        17 => format!("add element {t} {s} {{ 192.168.{}.0/24 }}", 2 + n),
        18 => format!("flush table {t}"),
        // Named stateful objects.
        19 => format!("add counter {t} o{}", n % 3),
        20 => format!("add quota {t} q{} {{ over {} mbytes }}", n % 3, 1 + n),
        21 => format!("delete counter {t} o{}", n % 3),
        _ => format!("delete quota {t} q{}", n % 3),
    })
}

/// A transaction: mostly one change, sometimes a few applied together
/// with one `nft -f`.
fn txn() -> impl Strategy<Value = Vec<String>> {
    prop_oneof![
        4 => prop::collection::vec(op(), 1..2),
        1 => prop::collection::vec(op(), 2..4),
    ]
}

/// Runs `body` on a thread that joined `ns`'s network namespace.
fn in_netns<T: Send + 'static>(ns: &Netns, body: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{}", ns.name);
    std::thread::spawn(move || {
        let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: setns on a valid namespace fd changes only this thread's
        // network namespace; the thread ends after the body.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        body()
    })
    .join()
    .expect("namespace thread")
}

/// Applies `txns` with nft (each may fail: the kernel then commits
/// nothing) while following the notifications; returns the kept snapshot
/// and a fresh read at the same generation.
fn follow(ns: &Netns, txns: Vec<Vec<String>>) -> (Snapshot, Snapshot, usize) {
    ns.nft_text(BASE);
    let name = ns.name.clone();
    in_netns(ns, move || {
        let mut mon = Monitor::open(16 << 20).expect("subscribe");
        let mut kept = read_snapshot(&Default::default()).expect("read");
        let mut parts = PartReader::open().unwrap();
        let mut committed = 0;
        for t in &txns {
            let ok = std::process::Command::new("nft")
                .args(["-f", "-"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .and_then(|mut c| {
                    use std::io::Write;
                    c.stdin.take().unwrap().write_all(t.join("\n").as_bytes())?;
                    c.wait()
                })
                .expect("nft")
                .success();
            committed += usize::from(ok);
        }
        let fresh = read_snapshot(&Default::default()).expect("fresh read");
        // Everything up to the fresh read's generation is queued: drain it.
        let mut txn = Transaction::default();
        while kept.generation != fresh.generation {
            mon.recv(|m| match monitor::event(m).expect("decodable") {
                Some(Event::NewGen(g)) => {
                    let events = txn.take();
                    if g.id > kept.generation {
                        let applied = monitor::apply(&mut kept, events);
                        assert!(!applied.lost, "events about unknown objects");
                        for r in applied.reread {
                            let rules = parts.chain_rules(r.family, &r.table, &r.chain).unwrap();
                            let t = kept
                                .tables
                                .iter_mut()
                                .find(|t| t.family == r.family && t.name == r.table)
                                .unwrap();
                            t.chains
                                .iter_mut()
                                .find(|c| c.name == r.chain)
                                .unwrap()
                                .rules = rules;
                        }
                        kept.generation = g.id;
                    }
                }
                Some(ev) => txn.push(ev),
                None => {}
            })
            .expect("recv");
        }
        let _ = name;
        (kept, fresh, committed)
    })
}

/// Transactions the kernel committed over all cases (printed at the end of
/// the property test, to see that it tests real changes).
static COMMITTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn kept_snapshot_equals_a_fresh_read(txns in prop::collection::vec(txn(), 1..24)) {
        if !require_root("monitor proptest") {
            return Ok(());
        }
        let ns = Netns::new("mon");
        let shown = txns.clone();
        let (kept, fresh, committed) = follow(&ns, txns);
        let all = COMMITTED.fetch_add(committed, std::sync::atomic::Ordering::Relaxed) + committed;
        eprintln!("monitor proptest: {committed} of {} transactions committed ({all} so far)", shown.len());
        let (k, f) = (monitor::comparable(&kept), monitor::comparable(&fresh));
        prop_assert!(k == f, "after {:#?}\nkept:  {}\nfresh: {}", shown,
            serde_json::to_string(&k).unwrap(), serde_json::to_string(&f).unwrap());
    }
}

/// Found by the property test: a rule added to a chain that the same
/// transaction renames keeps its position.
#[test]
fn a_rule_added_then_its_chain_renamed_in_one_transaction() {
    if !require_root("monitor rename") {
        return;
    }
    let ns = Netns::new("monr");
    let txns = vec![vec![
        "add rule inet t0 c1 tcp dport 1000 accept".to_string(),
        "rename chain inet t0 c1 c2".to_string(),
    ]];
    let (kept, fresh, committed) = follow(&ns, txns);
    assert_eq!(committed, 1);
    assert!(monitor::comparable(&kept) == monitor::comparable(&fresh));
}

/// The generator is not idle: over a fixed set of sequences most
/// transactions commit, so the property is tested on real changes.
#[test]
fn most_generated_transactions_commit() {
    if !require_root("monitor commits") {
        return;
    }
    let ns = Netns::new("monc");
    let txns: Vec<Vec<String>> = [
        "add table inet t2",
        "add chain inet t2 c0",
        "add rule inet t0 c1 tcp dport 1001 accept",
        "insert rule inet t0 c1 ip saddr 10.1.1.0/24 counter drop",
        "add element inet t0 s0 { 172.16.0.0/16, 11.9.1.1-11.9.1.20 }",
        "delete element inet t0 s0 { 10.0.0.0/8 }",
        "rename chain inet t0 c1 c3",
        "flush set inet t0 s1",
        "delete table ip t1",
        "add counter inet t0 o1",
        "add quota inet t0 q1 { over 5 mbytes }",
        "delete counter inet t0 o1",
    ]
    .iter()
    .map(|s| vec![s.to_string()])
    .collect();
    let n = txns.len();
    let (kept, fresh, committed) = follow(&ns, txns);
    assert_eq!(committed, n);
    assert!(monitor::comparable(&kept) == monitor::comparable(&fresh));
}
