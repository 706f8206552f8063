//! Evaluation: what the kernel does to one new connection, inbound or
//! outbound.
//!
//! An [`Evaluator`] is built once from a [`Snapshot`] and the host's
//! [`Routes`]; [`Evaluator::explain`] then follows a [`Probe`] (the first
//! packet of a new TCP or UDP connection: a SYN, or the first datagram;
//! conntrack state `new`, mark 0) through every base chain on its way into
//! the host, the way `nf_hook_slow` and `nft_do_chain` do, and says what
//! happens to it ([`Answer`]). [`Evaluator::explain_output`] does the same
//! for a connection the host opens ([`OutProbe`]): output and postrouting
//! chains with the same interpreter; see [`output`].
//!
//! # The path
//!
//! 1. **ingress**: `netdev` ingress chains whose devices include the input
//!    interface and `inet` ingress chains (kernel 5.10+) for it. Both sit on
//!    the device's one ingress hook list, so they run interleaved by priority.
//!    There is no conntrack yet (`ct state` is `invalid`, other `ct` keys do
//!    not match) and `meta nfproto` is `netdev` (5) in netdev chains.
//! 2. **prerouting** (`ip`/`inet` for IPv4, `ip6`/`inet` for IPv6), by
//!    priority. Conntrack runs at -200: before it the packet has no
//!    conntrack entry (`notrack` there makes it `untracked`); after it,
//!    `ct state new`. All `nat` chains of the hook run together at -100 (the
//!    NAT hook, `nf_nat_inet_fn`), each by its own priority, until one sets
//!    up a mapping; untracked packets skip them.
//! 3. **routing decision** (IPv4, from a non-loopback interface; a packet
//!    from a local process keeps its route from the output path): martian
//!    sources (0.0.0.0/8, multicast, broadcast, 127.0.0.0/8 without
//!    `route_localnet`) and destinations (0.0.0.0/8, 127.0.0.0/8 after DNAT
//!    without `route_localnet` on the input interface) are dropped; for a
//!    local, broadcast or multicast destination, `fib_validate_source`:
//!    reverse-path filtering (`rp_filter`, the larger of `all` and the
//!    interface's value: strict, the route back to the source must leave
//!    through the input interface; loose, it must exist and be unicast)
//!    and a source that is one of the host's own addresses (without
//!    `accept_local`). Such a drop is a `drop` decided by no rule, with
//!    [`Answer::routing`] naming the check and the sysctl. Then a
//!    destination that is not local (after DNAT) leaves the input path: the
//!    verdict is [`Verdict::Forwarded`] (the forward path is not
//!    evaluated). [`Evaluator::without_routing_checks`] leaves the checks
//!    out (the audit's evaluator).
//! 4. **input**, by priority; `nat` chains of the input hook (SNAT) run
//!    together at 100.
//!
//! Base chains of dormant tables are skipped. When two base chains of a hook
//! share a priority (`ip`, `ip6` and `inet` chains share one hook list), the
//! kernel runs the one registered *last* first (`nf_hook_entries_grow`
//! inserts before equal priorities), and so are conntrack's hooks (at -200,
//! registered when the first rule or table needs conntrack) against chains
//! at -200. A dump does not say when each was registered: the probe follows
//! every order of such a group (see `order`); when all orders end in the
//! same verdict it is certain (an assumption says so), otherwise the answer
//! is `unknown` naming the chains (or conntrack) and each order's outcome.
//!
//! In a base chain `accept` ends that chain only: the packet goes on to the
//! next base chain. `drop` and `reject` are final. Reaching the end of a base
//! chain (or `return` in it) applies its policy. `jump` pushes a return point
//! (at most 16, `NFT_JUMP_STACK_SIZE`), `goto` does not, `return` and the end
//! of a regular chain pop one. A failed match ends the rule.
//!
//! # Registers and packet
//!
//! The kernel's register file is emulated byte for byte (`nft_regs`: 16-byte
//! registers 1-4 overlapping 4-byte registers 8-23) with the kernel's store
//! widths (`nft_reg_store8/16`, zeroed tails of payload loads, host byte order
//! for meta/ct values), so `cmp`, `range`, `bitwise`, `byteorder` and set keys
//! compare exactly the bytes the kernel compares. Headers are synthesised
//! from the probe: IPv4/IPv6 (no options, no extension headers), then TCP
//! (a plain SYN, flags 0x02, with the options a Linux SYN carries: MSS,
//! SACK permitted, timestamps, window scale; a 40-byte header) or UDP.
//!
//! # What is not known is never guessed
//!
//! Every register byte carries a mask of the bits that are known. Fields the
//! probe does not determine (IP id and checksum, TCP sequence number and
//! window, packet length unless given, flow label, MAC addresses, the time
//! unless the evaluator has a clock ([`Evaluator::at`], see [`clock`]), CPU,
//! random numbers...) are unknown bits. A comparison, range or lookup whose
//! result depends on unknown bits, an [`Expr::Unknown`] expression (every
//! rule marked `incomplete` holds at least one), an undecoded `xt` match or
//! target (`XtInfo::Raw`), a `socket`/`tproxy` lookup without socket
//! information, or anything else not modelled is a **fork**: evaluation
//! continues separately with every outcome the construct could have
//! (for a condition: matches / does not match; for an opaque expression:
//! does not match, matches with unknown side effects on registers, marks and
//! conntrack state, accepts, drops). If every branch ends in the same
//! verdict, that verdict is certain and the assumptions name the construct;
//! otherwise the verdict is [`Verdict::Unknown`] and [`Answer::reason`] names
//! the table, chain, rule handle and expression. At most [`MAX_BRANCHES`]
//! branches are explored per probe.
//!
//! Stateful matches are evaluated for the first connection under no load:
//! `limit` is not exceeded, `quota` keeps its snapshot consumption, `ct count`
//! and `connlimit` count 1, xt `recent` lists do not hold the source, dynamic
//! set meters start fresh. Each assumption used is listed in the answer.
//!
//! A probe arriving on a loopback interface comes from a local process: its
//! conntrack entry and NAT bindings already exist from the output path
//! (`ct state` is `new` even before -200, `notrack` has no effect, prerouting
//! `nat` chains are skipped); [`Evaluator::explain`] does not evaluate that
//! output path ([`Evaluator::explain_output`] to a local address does, and
//! goes on along this input path).
//!
//! On the input path there is no output device: `meta oifname` reads as the
//! empty name and `meta oif` as 0 (so `oifname != "x"` matches), as in the
//! kernel.
//!
//! # Not modelled
//!
//! - The forward path; netdev egress chains (an output probe meeting one is
//!   `unknown`); bridge and arp families.
//! - Policy routing (`ip rule`, fwmark routing tables), multipath weights
//!   (reverse-path filtering sees a multipath route's first next hop only),
//!   route metrics; `src_valid_mark`, `log_martians`, IPsec (which skips
//!   `rp_filter`), the checks on forwarded packets and IPv6's own
//!   martian checks. `fib` answers from [`Routes`] only.
//! - Fragments, IPv4 options and IPv6 extension headers (the probe has none),
//!   TCP options other than a Linux SYN's (absent), the timestamp value and
//!   window shift (unknown bits), UDP payload contents.
//! - Userspace queues: `queue` / xt `NFQUEUE` to a queue a program listens
//!   on (or when the listeners are not known) is `unknown`; without a
//!   listener the packet is dropped, or with bypass goes on as accepted by
//!   the chain.
//! - Conntrack helpers (`ct helper set` has no modelled effect),
//!   expectations (`related`), accounting. (Zones and labels are followed
//!   like marks: `ct zone set` before conntrack attaches a template, in
//!   which `ct state` is already `new`, even after `notrack`; conntrack
//!   then uses its zone, per direction; `ct label set` on the new entry adds
//!   its bits. Other conntrack keys read from a template fork.)
//! - Expressions that change the packet other than NAT and `payload set`
//!   (e.g. `tcp option ... set`) do not change what later loads see.
//! - Per-element state of dynamic sets (a meter's existing entry is treated
//!   as fresh), existing `xt recent` entries, quota consumption after the
//!   snapshot.
//!
//! # Speed
//!
//! Building the [`Evaluator`] compiles every rule. Besides the interpreter,
//! each rule gets a *guard* (its leading `load → [mask] → test` conditions,
//! evaluated straight from the packet state) and each chain an *index* (for
//! fields many rules test, the rules each value or value range allows), so
//! rules that cannot match are skipped without being run. This is exact
//! because every rule is checked to read only registers it wrote itself (as
//! every rule `nft` generates does; otherwise guards and indexes are off):
//! a skipped rule has a pure condition that is false, and nothing it would
//! have written is ever read.

pub mod clock;
mod compile;
mod exec;
pub mod exposure;
mod ifclass;
mod order;
pub mod output;
mod routes;
#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;

pub use clock::Clock;
pub use exposure::{Alike, Exposure, Opening};
pub use output::OutProbe;

use crate::host::{Routes, ARPHRD_ETHER};
use crate::snapshot::{Expr, Family, Hook, Policy, Snapshot};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// Most branches explored for one probe before giving up with `unknown`.
pub const MAX_BRANCHES: u32 = 256;

/// The transport protocol of a probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum L4 {
    /// TCP: the probe is a SYN.
    Tcp,
    /// UDP: the probe is the first datagram.
    Udp,
}

impl L4 {
    /// The IP protocol number.
    pub fn proto(self) -> u8 {
        match self {
            L4::Tcp => 6,
            L4::Udp => 17,
        }
    }
}

impl fmt::Display for L4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            L4::Tcp => "tcp",
            L4::Udp => "udp",
        })
    }
}

/// The interface a probe arrives on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iface {
    /// Name (`meta iifname`).
    pub name: String,
    /// Index (`meta iif`).
    pub index: u32,
    /// `ARPHRD_*` type (`meta iiftype`): 1 Ethernet, 772 loopback.
    #[serde(default = "routes_ether")]
    pub iftype: u16,
}

fn routes_ether() -> u16 {
    ARPHRD_ETHER
}

impl Iface {
    /// An interface by name, index and type.
    pub fn new(name: &str, index: u32, iftype: u16) -> Iface {
        Iface {
            name: name.to_string(),
            index,
            iftype,
        }
    }
}

/// Why a probe cannot be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// Source and destination are of different families.
    #[error("source {0} and destination {1} are not of the same address family")]
    MixedFamilies(IpAddr, IpAddr),
    /// The interface name does not fit `IFNAMSIZ`.
    #[error("interface name {0:?} is longer than 15 bytes")]
    IfaceName(String),
}

/// The first packet of a new inbound connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    /// TCP (a SYN) or UDP.
    pub proto: L4,
    /// Source address; its family (v4/v6) is the probe's.
    pub saddr: IpAddr,
    /// Destination address.
    pub daddr: IpAddr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Input interface.
    pub iif: Iface,
    /// IPv4 TTL / IPv6 hop limit; 64 (Linux) assumed when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u8>,
    /// UDP payload length, when known (packet length fields are unknown
    /// otherwise; a SYN's length depends on its options and is unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_len: Option<u16>,
    /// The SYN's MSS option; 1460 (IPv4) / 1440 (IPv6) assumed when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_mss: Option<u16>,
    /// A packet of an established connection (conntrack state
    /// `established`, the TCP flags of a SYN-ACK) instead of a new one: the
    /// reply to a connection the host opened, or a later packet of one it
    /// accepted. NAT chains do not see it; conntrack keys other than the
    /// state are not modelled for it (a rule testing one forks).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub established: bool,
}

impl Probe {
    /// A probe with the given addresses and ports; TTL, payload length and
    /// MSS are left to their documented defaults.
    pub fn new(
        proto: L4,
        saddr: IpAddr,
        daddr: IpAddr,
        sport: u16,
        dport: u16,
        iif: Iface,
    ) -> Probe {
        Probe {
            proto,
            saddr,
            daddr,
            sport,
            dport,
            iif,
            ttl: None,
            payload_len: None,
            tcp_mss: None,
            established: false,
        }
    }

    /// Whether the probe is IPv6.
    pub fn is_v6(&self) -> bool {
        self.saddr.is_ipv6()
    }

    /// Checks that the probe can be evaluated.
    pub fn validate(&self) -> Result<(), ProbeError> {
        if self.saddr.is_ipv6() != self.daddr.is_ipv6() {
            return Err(ProbeError::MixedFamilies(self.saddr, self.daddr));
        }
        if self.iif.name.len() > 15 {
            return Err(ProbeError::IfaceName(self.iif.name.clone()));
        }
        Ok(())
    }
}

/// What the kernel does to the probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Delivered to a local socket (every base chain on the path let it through).
    Accept,
    /// Dropped.
    Drop,
    /// Dropped with an ICMP error or TCP reset ([`Answer::reject_with`]).
    Reject,
    /// Not for this host (after DNAT, see [`Answer::nat`]): routed on, the
    /// forward path is not evaluated.
    Forwarded,
    /// Cannot be decided from the snapshot; see [`Answer::reason`].
    Unknown,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Accept => "accept",
            Verdict::Drop => "drop",
            Verdict::Reject => "reject",
            Verdict::Forwarded => "forwarded",
            Verdict::Unknown => "unknown",
        })
    }
}

/// A rule, by where it is.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RuleRef {
    /// Table family.
    pub family: Family,
    /// Table name.
    pub table: String,
    /// Chain name.
    pub chain: String,
    /// Rule handle.
    pub handle: u64,
}

impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "table {} {} chain {} rule handle {}",
            self.family, self.table, self.chain, self.handle
        )
    }
}

/// A base chain's policy, by where it is.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PolicyRef {
    /// Table family.
    pub family: Family,
    /// Table name.
    pub table: String,
    /// Base chain name.
    pub chain: String,
    /// The policy.
    pub policy: Policy,
}

/// What decided the verdict.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DecidedBy {
    /// A rule (for `accept`: the accepting rule of the last base chain that
    /// accepted by a rule; a chain whose accept policy let the packet
    /// through is credited only when no rule accepted it).
    Rule(RuleRef),
    /// A base chain's policy.
    Policy(PolicyRef),
}

impl fmt::Display for DecidedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecidedBy::Rule(r) => r.fmt(f),
            DecidedBy::Policy(p) => write!(
                f,
                "table {} {} chain {} policy {}",
                p.family,
                p.table,
                p.chain,
                match p.policy {
                    Policy::Accept => "accept",
                    Policy::Drop => "drop",
                }
            ),
        }
    }
}

/// A check of the kernel's IPv4 routing decision after prerouting (before
/// the input hook) that can drop a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoutingCheck {
    /// Reverse-path filtering (`rp_filter`) refused the source.
    RpFilter,
    /// The source is a martian: in 0.0.0.0/8, multicast or broadcast, in
    /// 127.0.0.0/8 without `route_localnet`, or one of the host's own
    /// addresses without `accept_local`.
    MartianSource,
    /// The destination (after DNAT) is a martian: in 0.0.0.0/8, or in
    /// 127.0.0.0/8 without `route_localnet` on the input interface.
    MartianDestination,
}

/// The step of the routing decision that dropped a packet (no chain of the
/// input hook sees it).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RoutingStep {
    /// Which check.
    pub check: RoutingCheck,
    /// The sysctl settings in force that decide it (`name=value`), none
    /// when no setting changes the outcome (a source in 0.0.0.0/8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setting: Option<String>,
}

/// `refused by reverse-path filtering (net.ipv4.conf.eth0.rp_filter=1)`,
/// `dropped as a martian destination (...)`.
impl fmt::Display for RoutingStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.check {
            RoutingCheck::RpFilter => "refused by reverse-path filtering",
            RoutingCheck::MartianSource => "dropped as a martian source",
            RoutingCheck::MartianDestination => "dropped as a martian destination",
        })?;
        match &self.setting {
            Some(s) => write!(f, " ({s})"),
            None => Ok(()),
        }
    }
}

/// How a chain was entered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// A base chain, from its hook.
    Hook,
    /// By `jump`.
    Jump,
    /// By `goto`.
    Goto,
    /// Resumed after a jumped-to chain returned.
    Return,
}

/// One chain on the probe's way, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainVisit {
    /// Table family.
    pub family: Family,
    /// Table name.
    pub table: String,
    /// Chain name.
    pub chain: String,
    /// The hook being traversed.
    pub hook: Hook,
    /// The priority of the base chain being run (a `nat` chain shows its
    /// own priority; it runs at the NAT hook, -100 in prerouting, 100 in
    /// input).
    pub priority: i32,
    /// How the chain was entered.
    pub via: Via,
}

/// A NAT translation applied on the way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Translation {
    /// `dnat`, `redirect` or `snat`.
    pub kind: String,
    /// The new destination (source, for `snat`) address.
    pub addr: IpAddr,
    /// The new port.
    pub port: u16,
    /// The rule that translated.
    pub rule: RuleRef,
}

/// The evaluator's answer for one probe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// The verdict.
    pub verdict: Verdict,
    /// The rule or policy that decided it (for `unknown`, or a drop by the
    /// routing decision: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<DecidedBy>,
    /// For a drop by the routing decision after prerouting (before any
    /// input chain): the check that dropped it; [`Answer::reason`] says
    /// why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<RoutingStep>,
    /// For `reject`: how (`tcp reset`, `icmp port-unreachable`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject_with: Option<String>,
    /// A DNAT/redirect (or input SNAT) applied on the way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nat: Option<Translation>,
    /// Every chain traversed, in order.
    pub trace: Vec<ChainVisit>,
    /// Assumptions the verdict rests on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assumptions: Vec<String>,
    /// Why the verdict is `unknown` (or what `forwarded` means here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// On the output path ([`Evaluator::explain_output`]): the device the
    /// packet leaves through (after any re-routing; the loopback device
    /// for a local destination). `None` on the input path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oif: Option<String>,
}

/// A snapshot pre-indexed for evaluation: base chains per hook in priority
/// order, chains and sets by id, set elements flattened for binary search,
/// jump targets resolved. Owns its data (no borrow of the snapshot) and is
/// `Send + Sync`: share one between threads.
#[derive(Debug)]
pub struct Evaluator {
    prog: compile::Program,
    routes: routes::RouteIndex,
    /// The output paths ([`Evaluator::explain_output`]).
    out: output::Paths,
}

impl Evaluator {
    /// Indexes `snapshot` for evaluation with the host's `routes`.
    pub fn new(snapshot: &Snapshot, routes: Routes) -> Evaluator {
        let prog = compile::Program::new(snapshot);
        let out = output::Paths::new(snapshot, &prog);
        Evaluator {
            prog,
            routes: routes::RouteIndex::new(routes),
            out,
        }
    }

    /// The same evaluator without the IPv4 routing decision's own checks
    /// (reverse-path filtering, martian sources and destinations): every
    /// packet for a local address reaches the input hook, as before those
    /// checks were modelled. For the audit, which handles reverse-path
    /// refusals itself (pinned peers become notes) and must not report
    /// martian sources as missing openings no rule can fix.
    pub fn without_routing_checks(mut self) -> Evaluator {
        self.routes.checks = false;
        self
    }

    /// Whether the IPv4 routing decision's own checks are applied (see
    /// [`Evaluator::without_routing_checks`]).
    pub fn routing_checks(&self) -> bool {
        self.routes.checks
    }

    /// An evaluator for another snapshot with the same routes, the same
    /// routing checks and the same clock.
    pub fn like(&self, snapshot: &Snapshot) -> Evaluator {
        let mut e = Evaluator::new(snapshot, self.routes.given.clone());
        e.routes.checks = self.routes.checks;
        e.prog.now = self.prog.now;
        e
    }

    /// The same evaluator answering for the moment `clock`: time matches
    /// (`meta hour`, `meta day`, `meta time`, xt `time`) are decided at
    /// that moment, and answers that read the time say so. Without a clock
    /// (the default) the time is unknown and those matches fork.
    pub fn at(mut self, clock: Clock) -> Evaluator {
        self.prog.now = Some(clock);
        self
    }

    /// The moment answers are for, if set ([`Evaluator::at`]).
    pub fn clock(&self) -> Option<Clock> {
        self.prog.now
    }

    /// The routes the evaluator answers `fib` from.
    pub fn routes(&self) -> &Routes {
        &self.routes.given
    }

    /// The interface called `name` as a probe's input interface (index and
    /// type from [`Routes`]; index 0 and Ethernet when not listed).
    pub fn iface(&self, name: &str) -> Iface {
        match self.routes.by_name(name) {
            Some(i) => {
                let itf = self.routes.interface(i);
                Iface::new(&itf.name, itf.index, itf.iftype)
            }
            None => Iface::new(name, 0, ARPHRD_ETHER),
        }
    }

    /// Follows `probe` through the ruleset and says what happens to it.
    pub fn explain(&self, probe: &Probe) -> Answer {
        exec::explain(&self.prog, &self.routes, probe)
    }

    /// The verdict of [`Evaluator::explain`] and the rule or policy that
    /// decided it, without the trace (cheaper when only these are needed).
    pub fn decide(&self, probe: &Probe) -> (Verdict, Option<DecidedBy>) {
        let (v, dec, _, _) = exec::brief(&self.prog, &self.routes, probe);
        (v, dec.map(|d| exec::decided_by(&self.prog, d)))
    }

    /// Only the verdict of [`Evaluator::explain`].
    pub fn verdict(&self, probe: &Probe) -> Verdict {
        exec::verdict(&self.prog, &self.routes, probe)
    }
}

/// A short description of an expression for reasons (`meta l4proto`,
/// `xt match "foo"`...).
pub(crate) fn describe(e: &Expr) -> String {
    match e {
        Expr::Unknown { name, reason } => format!("expression {name:?} ({reason})"),
        Expr::Match { name, info, .. } | Expr::Target { name, info, .. } => {
            let what = if matches!(e, Expr::Match { .. }) {
                "match"
            } else {
                "target"
            };
            match &**info {
                crate::snapshot::xt::XtInfo::Raw { .. } => {
                    format!("xt {what} {name:?} (options not decoded)")
                }
                _ => format!("xt {what} {name:?}"),
            }
        }
        other => {
            let v = serde_json::to_value(other).ok();
            let ty = v
                .as_ref()
                .and_then(|v| v.get("type"))
                .and_then(|t| t.as_str())
                .unwrap_or("expression")
                .to_string();
            match v.as_ref().and_then(|v| v.get("key")) {
                Some(k) => format!("{ty} {}", k.as_str().map_or(k.to_string(), String::from)),
                None => ty,
            }
        }
    }
}
