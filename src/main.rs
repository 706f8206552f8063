//! The `portwarden` command line.

#[cfg(test)]
mod dist;
mod explain;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use portwarden::audit::Proofs;
use portwarden::catalog::{self, Catalog, CatalogError};
use portwarden::config::{self, CliOptions, HostConfig};
use portwarden::exit;
use portwarden::host::{self, read_routes, HostError};
use portwarden::nft::{read_snapshot, ReadError, ReadOptions};
use portwarden::pipeline::{
    audit_state, read_evaluator, read_host_state, RolesFrom, Setup, Timings,
};
use portwarden::render::json::PeerLists;
use portwarden::snapshot::Summary;
use std::io::{self, BufWriter, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Audit what this host's live nftables ruleset does to the connections its
/// backup roles (Veeam, EVault / IBM Cloud Backup) need.
///
/// Output goes to stdout, errors and warnings to stderr (one line each);
/// `--json` prints one JSON document on one line. A closed pipe (`| head`)
/// ends any command quietly, with exit 0.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read the live ruleset of this network namespace over netlink and print it.
    ///
    /// The copy is taken at one ruleset generation: if the ruleset changes
    /// while it is read, reading starts over (up to --tries times).
    ///
    /// Example: ip netns exec NS portwarden dump --json | jq '.tables[].name'
    Dump {
        /// Print the snapshot as JSON (generation, tables, chains, rules, sets).
        #[arg(long)]
        json: bool,
        /// How many times to start over when the ruleset changes mid-read.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
        tries: u32,
    },
    /// List the backup roles the catalog knows, or show one with its ports.
    ///
    /// `roles show ID` prints each requirement with its real ports (a port
    /// set's variants by the value of its setting, the default marked), the
    /// peer groups and interfaces it concerns, the settings it applies under,
    /// and its source. The catalog is built in and extended or overridden by
    /// *.toml files in /usr/share/portwarden/catalog.d/, then
    /// /etc/portwarden/catalog.d/, then each --catalog-dir.
    ///
    /// Examples: portwarden roles; portwarden roles show evault-agent
    Roles {
        /// `show ID` to show one role.
        #[command(subcommand)]
        show: Option<RolesCommand>,
        /// Print JSON: the role (or a list of them) as the catalog holds it,
        /// with `port_variants`, each requirement's ports resolved.
        #[arg(long, global = true)]
        json: bool,
        #[command(flatten)]
        catalog: CatalogDirs,
    },
    /// List the catalog: roles, host settings and peer groups.
    ///
    /// Settings are what the configuration's [settings] (or audit --set)
    /// choose: their type, default, allowed values and the port sets they
    /// pick from. Peer groups are what [peers] (or audit --peer) bind to
    /// addresses, with the prefixes the vendor suggests.
    ///
    /// Examples: portwarden catalog; portwarden catalog settings;
    /// portwarden catalog peers --json | jq -r '.peer_groups[].name'
    Catalog {
        /// Only this section.
        #[arg(value_enum)]
        section: Option<portwarden::render::catalog::Section>,
        /// Print JSON: {"roles": [{id, title}], "settings": [{name, default,
        /// values, description, port_sets, source}], "peer_groups": [{name,
        /// description, suggested, minimum, note, source}]}.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        catalog: CatalogDirs,
    },
    /// Validate the host configuration against the catalog.
    ///
    /// Every error names file, line and column and what was expected; unknown
    /// keys and role ids come with the nearest valid name; interface names
    /// (private_interfaces, [peer_interfaces]) must match an interface of
    /// this network namespace (unless --offline). At most 100 errors are
    /// listed; a file over 8 MiB is refused unread. Warnings are printed
    /// too.
    CheckConfig {
        /// The configuration file.
        #[arg(long, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
        #[command(flatten)]
        catalog: CatalogDirs,
        /// Do not look at this host's interfaces (a configuration meant for
        /// another host).
        #[arg(long)]
        offline: bool,
    },
    /// List the listening TCP and bound UDP sockets of this network namespace.
    ///
    /// One line per socket, sorted by protocol, port and address: the bound
    /// address and port, the owning process (lowest pid holding the socket)
    /// and the systemd unit it belongs to, `v6only` for an IPv6 socket that
    /// takes no IPv4, `dev NAME` for a socket bound to an interface. Read
    /// over sock_diag. The unit comes from the socket's cgroup and needs no
    /// privilege; processes come from /proc/PID/fd, which needs root (or
    /// CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH): without it the unit alone
    /// names the owner.
    ///
    /// Example: nsenter --net=/run/netns/NS portwarden listeners --json
    /// (`ip netns exec` mounts a fresh /sys, without the cgroup tree)
    Listeners {
        /// Print JSON: a list of {proto, addr, port, v6only, dev, uid, inode,
        /// cgroup_id, cgroup, unit, unit_user, process: {pid, command, unit}}.
        #[arg(long)]
        json: bool,
    },
    /// Print the interfaces, addresses and main-table routes this network
    /// namespace's evaluation would use, as JSON (a debugging aid).
    #[command(hide = true)]
    Routes {
        /// Print JSON (the only format).
        #[arg(long)]
        json: bool,
    },
    /// Say what the live ruleset does to one new inbound connection.
    ///
    /// Follows the connection's first packet (a TCP SYN or the first UDP
    /// datagram) through every base chain on its way into this host, as the
    /// kernel would, and prints the verdict, the rule or policy that decided
    /// it, the chains traversed, any NAT, and the assumptions the answer rests
    /// on (or why it cannot be decided). Reads the ruleset over netlink and
    /// the interfaces and routes of this network namespace.
    Explain(ExplainArgs),
    /// Map what the live ruleset accepts: every new inbound TCP and UDP
    /// connection, over all source addresses and ports.
    ///
    /// For each family, protocol, input interface and local address, the
    /// destination port intervals that are accepted, each with the source
    /// prefixes (and source ports) it is accepted from and the rule or policy
    /// that lets it in. Computed from classes of connections the ruleset
    /// cannot tell apart, each decided as `explain` decides it, so the map and
    /// `explain` always agree. `unknown` marks regions that depend on
    /// something the snapshot cannot decide.
    ///
    /// JSON: {"generation": N, "openings": [{"family", "proto", "iif", "to",
    /// "ports": [first, last], "sports": [first, last], "sources": [prefixes],
    /// "verdict": "accept"|"unknown", "decided_by", "reason"}], "notes"}.
    Exposure {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Evaluate time matches (meta hour/day/time, xt time) at this UTC
        /// moment, e.g. 2026-12-06T14:30:00Z [default: now].
        #[arg(long, value_name = "RFC3339", value_parser = explain::parse_at)]
        at: Option<portwarden::eval::Clock>,
        /// How many times to start over when the ruleset changes mid-read.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
        tries: u32,
    },
    /// Audit this host: what the live ruleset, the listening sockets and the
    /// host's roles mean together.
    ///
    /// Reads the ruleset (one generation), the interfaces and routes and the
    /// listening sockets of this network namespace, and reports missing and
    /// excess openings, exposed listeners, required services not listening
    /// and blocked outbound connections, each with evidence and a fix.
    ///
    /// The roles come from the configuration file (--config, default
    /// /etc/portwarden/portwarden.toml), or, without a file, from --role
    /// (with --peer, --private-iface and --set). Exit codes follow the
    /// monitoring-plugin convention, usage errors included (3, not 2).
    ///
    /// Examples: portwarden audit --json;
    /// portwarden audit --role veeam-linux-repository --peer backup_server=10.0.0.10
    Audit {
        /// The configuration file (not with --role).
        #[arg(long, conflicts_with = "role")]
        config: Option<PathBuf>,
        /// A role the host plays, instead of a configuration file (repeatable).
        #[arg(long = "role", value_name = "ID")]
        role: Vec<String>,
        /// Bind a peer group: GROUP=ADDR[/LEN][,ADDR...] (repeatable; with --role).
        #[arg(long = "peer", value_name = "GROUP=PREFIX", requires = "role")]
        peer: Vec<String>,
        /// An interface facing the private network (repeatable; with --role).
        #[arg(long = "private-iface", value_name = "IF", requires = "role")]
        private_iface: Vec<String>,
        /// A host setting: NAME=VALUE (repeatable; with --role).
        #[arg(long = "set", value_name = "NAME=VALUE", requires = "role")]
        set: Vec<String>,
        /// Print the report as JSON: {"generation": N, "findings": [...],
        /// "notes": [...]} (the same as --format json).
        #[arg(long, conflicts_with = "format")]
        json: bool,
        /// Output format (--format json is the same as --json).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// With JSON: list every peer prefix of each finding and piece. By
        /// default `peers` holds the first 16 and `peer_count` counts them
        /// all (behind a blocklist they run to thousands, and the report to
        /// megabytes).
        #[arg(long)]
        all_peers: bool,
        /// Prove every fix (up to 256), however large the ruleset. By
        /// default an audit proves fewer as the ruleset grows, and none on
        /// one of more than 5,000 rules or 50,000 set elements (each proof
        /// copies and recompiles the ruleset: about a second on a
        /// 20,000-rule host); those fixes say "not proven".
        #[arg(long)]
        prove_all: bool,
        /// How many times to start over when the ruleset changes mid-read.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
        tries: u32,
        #[command(flatten)]
        catalog: CatalogDirs,
    },
    /// Run as a service: follow the kernel and alert in the journal when a
    /// change opens or closes something the host's roles care about.
    ///
    /// Reads the host once, audits, tells systemd READY=1 (Type=notify),
    /// then applies every nftables change notification to the kept ruleset
    /// and audits again after each committed change (debounced), logging
    /// new and resolved findings with native journal fields (MESSAGE_ID,
    /// PORTWARDEN_*), naming the process that made the change. Links,
    /// addresses and routes are followed as the kernel announces them;
    /// sockets and self-filling sets on timers ([daemon] in the config).
    /// Writes the last report to report_path (as audit --json) and a
    /// Prometheus textfile. SIGHUP reloads the configuration and catalog
    /// (an invalid one is logged and the old one kept); SIGTERM stops.
    ///
    /// Logs to the journal when started by systemd (JOURNAL_STREAM), else
    /// to stderr; PORTWARDEN_LOG=debug|info|warn|error sets the level.
    Daemon {
        /// The configuration file.
        #[arg(long, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Print the daemon's last report: a summary line and the current
    /// findings, with the monitoring-plugin exit codes of `audit` (a Nagios
    /// check: `portwarden status`).
    Status {
        /// The configuration file (for [daemon] report_path and stale_after_s).
        #[arg(long, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
        /// The report file [default: report_path of the configuration].
        #[arg(long, value_name = "PATH")]
        report: Option<PathBuf>,
        /// Seconds after which the report is stale [default: stale_after_s].
        #[arg(long, value_name = "SECONDS")]
        max_age: Option<u64>,
        /// Print the report file's JSON as is.
        #[arg(long)]
        json: bool,
    },
}

/// `--catalog-dir`, on the commands that load the catalog.
#[derive(clap::Args)]
struct CatalogDirs {
    /// Also load catalog extensions (*.toml) from DIR, after the installed
    /// ones, e.g. to try them before installing (repeatable; later
    /// directories override earlier ones).
    #[arg(long = "catalog-dir", value_name = "DIR", global = true, value_parser = existing_dir)]
    dirs: Vec<PathBuf>,
}

/// A `--catalog-dir` value: an existing directory (a typo must not go
/// unnoticed, as a missing default directory may).
fn existing_dir(s: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(s);
    match std::fs::metadata(&p) {
        Ok(m) if m.is_dir() => Ok(p),
        Ok(_) => Err(format!("{s} is not a directory")),
        Err(e) => Err(format!("{s}: {e}")),
    }
}

const EXPLAIN_EXAMPLES: &str = "\
Examples:
  portwarden explain tcp/6162 --from 10.0.0.5
  portwarden explain udp/53 --from 2001:db8:1::2 --iif pw-pub --json
  echo '{\"proto\":\"tcp\",\"port\":6162,\"from\":\"10.0.0.5\"}' | portwarden explain --batch

Batch input, one JSON object per line: proto, port, from (required); to, iif,
sport (optional, same defaults). Output: one JSON answer per line, in order;
a line that cannot be read gets {\"error\": \"line N: ...\"} instead.";

/// Arguments of `explain`.
#[derive(clap::Args)]
#[command(after_help = EXPLAIN_EXAMPLES)]
struct ExplainArgs {
    /// Protocol and destination port, e.g. tcp/6162 or udp/53.
    #[arg(value_name = "PROTO/PORT", value_parser = explain::parse_service,
          required_unless_present = "batch")]
    service: Option<explain::Service>,
    /// Source address of the connection.
    #[arg(long, value_name = "ADDR", required_unless_present = "batch")]
    from: Option<IpAddr>,
    /// Destination address [default: the first address of the input
    /// interface of the source's family, else any non-loopback local one].
    #[arg(long, value_name = "ADDR")]
    to: Option<IpAddr>,
    /// Input interface [default: the interface this host routes --from through].
    #[arg(long, value_name = "IFNAME")]
    iif: Option<String>,
    /// Source port (the default is a typical Linux ephemeral port).
    #[arg(long, value_name = "N", default_value_t = explain::DEFAULT_SPORT)]
    sport: u16,
    /// Evaluate time matches (meta hour/day/time, xt time) at this UTC
    /// moment, e.g. 2026-12-06T14:30:00Z [default: now].
    #[arg(long, value_name = "RFC3339", value_parser = explain::parse_at)]
    at: Option<portwarden::eval::Clock>,
    /// Print the answer as JSON.
    #[arg(long)]
    json: bool,
    /// Read probes as JSON lines on stdin and write one JSON answer per line.
    /// The ruleset and routes are read once: every answer is from the same
    /// snapshot.
    #[arg(long, conflicts_with_all = ["service", "from", "to", "iif", "sport", "json"])]
    batch: bool,
    /// How many times to start over when the ruleset changes mid-read.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    tries: u32,
}

/// Output format of `audit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// Readable text, grouped by role.
    Text,
    /// `{"generation": N, "findings": [...], "notes": [...]}`, on one line.
    Json,
}

#[derive(Subcommand)]
enum RolesCommand {
    /// Show one role: its requirements with their ports, peers, conditions
    /// and sources.
    Show {
        /// Role id, e.g. veeam-linux-repository.
        id: String,
    },
}

/// What the ruleset and socket reads can fail with (`dump`, `explain`,
/// `exposure`, `listeners`).
const READ_ERRORS: &[(u8, &str)] = &[
    (
        exit::NO_PERMISSION,
        "permission denied: run as root or with CAP_NET_ADMIN",
    ),
    (
        exit::UNAVAILABLE,
        "nf_tables (or sock_diag) is not available in this kernel or namespace",
    ),
    (
        exit::IO_ERROR,
        "other I/O error, writing the output included",
    ),
    (exit::PROTOCOL, "an unexpected or malformed netlink reply"),
];

/// The ruleset kept changing (commands that read the ruleset).
const KEPT_CHANGING: (u8, &str) = (
    exit::KEPT_CHANGING,
    "the ruleset kept changing while it was read (--tries exhausted); try again",
);

/// The loaded libnftnl is not a checked release (commands that parse
/// nf_tables messages).
const UNSUPPORTED_LIBNFTNL: (u8, &str) = (
    exit::UNSUPPORTED_LIBNFTNL,
    "the loaded libnftnl is not a release portwarden was checked against (docs/libnftnl.md)",
);

/// Every exit code `command` (a subcommand's name) can produce, with its
/// meaning: the list its `--help` shows (and the README's table).
fn exit_codes(command: &str) -> Vec<(u8, &'static str)> {
    const USAGE: (u8, &str) = (exit::USAGE, "bad arguments (usage error)");
    let reads = || READ_ERRORS.iter().copied();
    let catalog = [
        (
            exit::USAGE,
            "bad arguments (usage error, an unknown role id, a --catalog-dir that is not a directory)",
        ),
        (
            exit::INVALID,
            "a catalog file is invalid, too large or cannot be read",
        ),
        (exit::IO_ERROR, "writing the output failed"),
    ];
    let mut codes: Vec<(u8, &'static str)> =
        match command {
            "dump" | "explain" | "exposure" => {
                let mut v = vec![(exit::OK, "ok"), USAGE, KEPT_CHANGING, UNSUPPORTED_LIBNFTNL];
                v.extend(reads());
                v
            }
            "listeners" | "routes" => {
                let mut v = vec![(exit::OK, "ok"), USAGE];
                v.extend(reads());
                v
            }
            "roles" | "catalog" => {
                let mut v = vec![(exit::OK, "ok")];
                v.extend(catalog);
                v
            }
            "check-config" => vec![
            (exit::OK, "the configuration is valid (warnings are printed)"),
            USAGE,
            (
                exit::INVALID,
                "the configuration is invalid, too large or cannot be read, or so is the catalog",
            ),
            (exit::IO_ERROR, "writing the output failed"),
        ],
            "audit" => vec![
                (exit::OK, "no warnings (only `ok` findings or none)"),
                (exit::WARNINGS, "warnings"),
                (exit::CRITICAL, "criticals"),
                (
                    exit::INVALID,
                    "could not audit: bad arguments, configuration or catalog, no permission, \
                 a read error (one line on stderr)",
                ),
            ],
            "daemon" => {
                let mut v = vec![
                    (exit::OK, "stopped by SIGTERM or SIGINT"),
                    USAGE,
                    (
                        exit::INVALID,
                        "the configuration or the catalog is invalid or cannot be read at start",
                    ),
                    KEPT_CHANGING,
                    UNSUPPORTED_LIBNFTNL,
                ];
                v.extend(reads());
                v
            }
            "status" => vec![
                (exit::OK, "no warnings (only `ok` findings or none)"),
                (exit::WARNINGS, "warnings"),
                (exit::CRITICAL, "criticals"),
                (
                    exit::INVALID,
                    "unknown: no report, an unreadable one, one older than --max-age (is the \
                     daemon running?), or bad arguments",
                ),
            ],
            _ => Vec::new(),
        };
    codes.sort_by_key(|c| c.0);
    codes
}

/// "Exit codes:" and one line per code, for a `--help`.
fn exit_help(codes: &[(u8, &str)]) -> String {
    let mut s = String::from("Exit codes:");
    for (code, meaning) in codes {
        s.push_str(&format!("\n  {code:<4}{meaning}"));
    }
    s
}

/// The command line, with each command's exit codes in its `--help`.
fn command() -> clap::Command {
    let top = "Exit codes: 0 ok; 2 bad arguments (usage error); audit: 1 warnings, \
               2 criticals, 3 could not audit (usage errors included); 3 invalid \
               configuration or catalog; 69, 74-78 read errors (each command's --help \
               lists its own).";
    let mut cmd = Cli::command().after_help(top);
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    for name in names {
        let codes = exit_codes(&name);
        if codes.is_empty() {
            continue; // `help`
        }
        let codes = exit_help(&codes);
        cmd = cmd.mut_subcommand(&name, |sub| {
            let help = match sub.get_after_help() {
                Some(before) => format!("{before}\n\n{codes}"),
                None => codes.clone(),
            };
            let nested: Vec<String> = sub
                .get_subcommands()
                .map(|c| c.get_name().to_string())
                .collect();
            let mut sub = sub.after_help(help);
            for n in nested {
                sub = sub.mut_subcommand(&n, |c| c.after_help(codes.clone()));
            }
            sub
        });
    }
    cmd
}

/// A failed command: its exit code and what to say on stderr.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl Failure {
    fn new(code: u8, error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            code,
            error: error.into(),
        }
    }
}

impl From<ReadError> for Failure {
    fn from(e: ReadError) -> Failure {
        Failure::new(e.exit_code(), e)
    }
}

impl From<HostError> for Failure {
    fn from(e: HostError) -> Failure {
        Failure::new(e.exit_code(), e)
    }
}

impl From<portwarden::pipeline::StateError> for Failure {
    fn from(e: portwarden::pipeline::StateError) -> Failure {
        Failure::new(e.exit_code(), e)
    }
}

impl From<CatalogError> for Failure {
    fn from(e: CatalogError) -> Failure {
        Failure::new(exit::INVALID, anyhow::Error::new(e).context("catalog"))
    }
}

/// The catalog: built in, then the installed override directories, then
/// `extra` (`--catalog-dir`).
fn load_catalog(extra: &[PathBuf]) -> Result<Catalog, CatalogError> {
    warn_empty_catalog_dirs(extra);
    let dirs: Vec<&Path> = catalog::DEFAULT_DIRS
        .iter()
        .map(Path::new)
        .chain(extra.iter().map(PathBuf::as_path))
        .collect();
    Catalog::load(&dirs)
}

/// Warns about a `--catalog-dir` that holds no `*.toml` file.
fn warn_empty_catalog_dirs(extra: &[PathBuf]) {
    for dir in extra {
        let has_toml = std::fs::read_dir(dir).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.path().extension().is_some_and(|x| x == "toml"))
        });
        if !has_toml {
            eprintln!(
                "portwarden: warning: --catalog-dir {} holds no *.toml file",
                dir.display()
            );
        }
    }
}

/// Writes a command's output to stdout through one buffer. A closed pipe
/// (`| head`) ends the command quietly with exit 0, wherever the write
/// stood; any other write error is exit 74.
fn emit(write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<ExitCode, Failure> {
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    match write(&mut out).and_then(|()| out.flush()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(Failure::new(
            exit::IO_ERROR,
            anyhow::Error::new(e).context("writing the output"),
        )),
    }
}

/// One JSON document on one line, as every `--json` prints.
fn json_line(out: &mut dyn Write, value: &impl serde::Serialize) -> io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")
}

fn main() -> ExitCode {
    let matches = match command().try_get_matches() {
        Ok(m) => m,
        // `audit` keeps the monitoring-plugin convention: a usage error is
        // "could not audit" (3), not clap's 2 (which would read as critical).
        // So does `status`, a monitoring plugin too.
        Err(e)
            if e.use_stderr()
                && matches!(std::env::args().nth(1).as_deref(), Some("audit" | "status")) =>
        {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            let first = first.strip_prefix("error: ").unwrap_or(first);
            let cmd = std::env::args().nth(1).unwrap_or_default();
            let what = if cmd == "audit" {
                "cannot audit"
            } else {
                "status"
            };
            eprintln!("portwarden: {what}: {first} (see portwarden {cmd} --help)");
            return ExitCode::from(CANNOT_AUDIT);
        }
        Err(e) => e.exit(),
    };
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match run(cli) {
        Ok(code) => code,
        Err(f) => {
            eprintln!("portwarden: {:#}", f.error);
            ExitCode::from(f.code)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, Failure> {
    match cli.command {
        Command::Dump { json, tries } => {
            let mut timings = Timings::from_env();
            timings.exiting = true;
            let snap = read_snapshot(&ReadOptions { max_tries: tries })?;
            timings.lap("snapshot");
            let code = emit(|out| {
                if json {
                    json_line(out, &snap)
                } else {
                    write!(out, "{}", Summary(&snap))
                }
            });
            timings.lap("report");
            timings.print();
            // Exiting next: no need to free the snapshot piece by piece.
            std::mem::forget(snap);
            code
        }
        Command::Roles {
            show,
            json,
            catalog,
        } => {
            let cat = load_catalog(&catalog.dirs)?;
            match show {
                None => emit(|out| {
                    if json {
                        let roles: Vec<_> = cat
                            .roles()
                            .map(|r| portwarden::render::catalog::role_json(&cat, r))
                            .collect();
                        json_line(out, &roles)
                    } else {
                        out.write_all(portwarden::render::catalog::roles_list(&cat, "").as_bytes())
                    }
                }),
                Some(RolesCommand::Show { id }) => {
                    let Some(role) = cat.role(&id) else {
                        let near = catalog::nearest(&id, cat.role_ids());
                        let hint = near
                            .map(|n| format!("; did you mean `{n}`?"))
                            .unwrap_or_default();
                        return Err(Failure::new(
                            exit::USAGE,
                            anyhow::anyhow!(
                                "unknown role `{id}`{hint} (portwarden roles lists them)"
                            ),
                        ));
                    };
                    emit(|out| {
                        if json {
                            json_line(out, &portwarden::render::catalog::role_json(&cat, role))
                        } else {
                            out.write_all(
                                portwarden::render::catalog::role_text(&cat, role).as_bytes(),
                            )
                        }
                    })
                }
            }
        }
        Command::Catalog {
            section,
            json,
            catalog,
        } => {
            let cat = load_catalog(&catalog.dirs)?;
            emit(|out| {
                if json {
                    json_line(
                        out,
                        &portwarden::render::catalog::catalog_json(&cat, section),
                    )
                } else {
                    out.write_all(
                        portwarden::render::catalog::catalog_text(&cat, section).as_bytes(),
                    )
                }
            })
        }
        Command::Listeners { json } => {
            let listeners = host::read_listeners()?;
            emit(|out| {
                if json {
                    json_line(out, &listeners)
                } else {
                    listeners.iter().try_for_each(|l| writeln!(out, "{l}"))
                }
            })
        }
        Command::Routes { json: _ } => {
            let routes = host::read_routes()?;
            emit(|out| json_line(out, &routes))
        }
        Command::Explain(a) => run_explain(a),
        Command::Exposure { json, at, tries } => {
            let (snap, ev) = read_evaluator(&ReadOptions { max_tries: tries })?;
            let ev = match at {
                Some(c) => ev.at(c),
                None => ev,
            };
            let x = ev.exposure();
            emit(|out| {
                if json {
                    #[derive(serde::Serialize)]
                    struct Doc<'a> {
                        generation: u32,
                        #[serde(flatten)]
                        exposure: &'a portwarden::eval::exposure::Exposure,
                    }
                    let doc = Doc {
                        generation: snap.generation,
                        exposure: &x,
                    };
                    json_line(out, &doc)
                } else {
                    out.write_all(portwarden::render::exposure::text(&x).as_bytes())
                }
            })
        }
        Command::CheckConfig {
            config,
            catalog,
            offline,
        } => {
            let cat = load_catalog(&catalog.dirs)?;
            // Interface names are checked against this host's (the current
            // network namespace's) interfaces.
            let loaded = match (!offline).then(read_routes) {
                None => HostConfig::load(&config, &cat),
                Some(Ok(r)) => {
                    let names: Vec<String> = r.interfaces.into_iter().map(|i| i.name).collect();
                    HostConfig::load_on_host(&config, &cat, &names)
                }
                Some(Err(e)) => {
                    eprintln!("warning: interface names not checked: {e}");
                    HostConfig::load(&config, &cat)
                }
            };
            match loaded {
                Ok((_, warnings)) => {
                    for w in &warnings {
                        eprintln!("warning: {w}");
                    }
                    emit(|out| writeln!(out, "{}: valid", config.display()))
                }
                Err(e) => {
                    eprintln!("{e}");
                    Ok(ExitCode::from(exit::INVALID))
                }
            }
        }
        Command::Daemon { config } => {
            limit_malloc_arenas();
            portwarden::daemon::logging::init();
            let opts = portwarden::daemon::DaemonOptions {
                config,
                catalog_dirs: Setup::default_catalog_dirs(),
            };
            match portwarden::daemon::run(opts) {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(e) => {
                    tracing::error!("{e}");
                    let code = match &e {
                        portwarden::daemon::DaemonError::Setup(_) => exit::INVALID,
                        portwarden::daemon::DaemonError::Read(r) => r.exit_code(),
                        portwarden::daemon::DaemonError::Io { .. } => exit::IO_ERROR,
                    };
                    Ok(ExitCode::from(code))
                }
            }
        }
        Command::Status {
            config,
            report,
            max_age,
            json,
        } => Ok(status(&config, report, max_age, json)),
        Command::Audit {
            config,
            role,
            peer,
            private_iface,
            set,
            json,
            format,
            all_peers,
            prove_all,
            tries,
            catalog,
        } => Ok(audit(
            config,
            CliOptions {
                roles: role,
                peers: peer,
                settings: set,
                private_interfaces: private_iface,
            },
            if json { Format::Json } else { format },
            if all_peers {
                PeerLists::All
            } else {
                PeerLists::First
            },
            if prove_all {
                Proofs::All
            } else {
                Proofs::Budgeted
            },
            tries,
            &catalog.dirs,
        )),
    }
}

/// Exits with a usage error (status 2) for `explain`, as clap does.
fn explain_usage_error(msg: String) -> ! {
    let mut cmd = Cli::command();
    let sub = cmd
        .find_subcommand_mut("explain")
        .expect("explain subcommand")
        .clone()
        .bin_name("portwarden explain");
    sub.clone()
        .error(clap::error::ErrorKind::ValueValidation, msg)
        .exit()
}

fn run_explain(a: ExplainArgs) -> Result<ExitCode, Failure> {
    if let (Some(f), Some(t)) = (a.from, a.to) {
        if f.is_ipv6() != t.is_ipv6() {
            explain_usage_error(format!(
                "--from {f} and --to {t} are not of the same address family"
            ));
        }
    }
    let (snap, ev) = read_evaluator(&ReadOptions { max_tries: a.tries })?;
    let ev = match a.at {
        Some(c) => ev.at(c),
        None => ev,
    };
    if a.batch {
        let stdin = io::stdin();
        let stdout = io::stdout();
        return match explain::batch(&ev, stdin.lock(), stdout.lock()) {
            Ok(()) => Ok(ExitCode::SUCCESS),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
            Err(e) => Err(Failure::new(
                exit::IO_ERROR,
                anyhow::Error::new(e).context("explain --batch"),
            )),
        };
    }
    let (Some(svc), Some(from)) = (a.service, a.from) else {
        explain_usage_error("PROTO/PORT and --from are required".into());
    };
    let mut res = explain::Resolver::new(&ev);
    let probe = match res.resolve(svc.proto, svc.port, from, a.to, a.iif.as_deref(), a.sport) {
        Ok(p) => p.clone(),
        Err(e) => explain_usage_error(e),
    };
    if ev
        .routes()
        .interfaces
        .iter()
        .all(|i| i.name != probe.iif.name)
    {
        eprintln!(
            "portwarden: warning: no interface {:?} on this host (index 0 assumed)",
            probe.iif.name
        );
    }
    let answer = ev.explain(&probe);
    emit(|out| {
        if a.json {
            json_line(out, &answer)
        } else {
            write!(
                out,
                "{}",
                portwarden::render::explain::text(&snap, ev.routes(), &probe, &answer)
            )
        }
    })
}

/// Exit code when the audit could not be done.
const CANNOT_AUDIT: u8 = exit::INVALID;

/// `portwarden audit`: gathers the inputs, audits, prints. Every failure
/// before the report is exit 3 with one line on stderr.
fn audit(
    config: Option<PathBuf>,
    cli: CliOptions,
    format: Format,
    peers: PeerLists,
    proofs: Proofs,
    tries: u32,
    catalog_dirs: &[PathBuf],
) -> ExitCode {
    let fail = |e: &dyn std::fmt::Display| {
        let text = e.to_string();
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let first = lines.next().unwrap_or_default().trim().to_string();
        let more = lines.count();
        let more = if more > 0 {
            format!(" (and {more} more lines; see portwarden check-config)")
        } else {
            String::new()
        };
        eprintln!("portwarden: cannot audit: {first}{more}");
        ExitCode::from(CANNOT_AUDIT)
    };
    let path = config.unwrap_or_else(|| PathBuf::from(config::DEFAULT_PATH));
    let roles = if cli.roles.is_empty() {
        RolesFrom::File(&path)
    } else {
        RolesFrom::Options(&cli)
    };
    warn_empty_catalog_dirs(catalog_dirs);
    let mut dirs = Setup::default_catalog_dirs();
    dirs.extend(catalog_dirs.iter().cloned());
    let setup = match Setup::load(&dirs, roles) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    for w in &setup.warnings {
        eprintln!("warning: {w}");
    }
    let mut timings = Timings::from_env();
    timings.exiting = true;
    let state = match read_host_state(&ReadOptions { max_tries: tries }, &mut timings) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let report = audit_state(&state, &setup, proofs, &mut timings);
    let out = io::stdout().lock();
    let written = match format {
        Format::Json => portwarden::render::json::write_report_with(
            &report,
            out,
            &serde_json::Map::new(),
            peers,
        ),
        Format::Text => {
            let text = portwarden::render::text::render(
                &report,
                portwarden::render::text::colour_for_stdout(),
            );
            let mut out = out;
            out.write_all(text.as_bytes()).and_then(|()| out.flush())
        }
    };
    // A closed pipe (`audit | head`) ends the audit quietly with 0, as every
    // command: the reader chose to stop, and what it read is not the verdict.
    let code = match written {
        Ok(()) => ExitCode::from(report.exit_code()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => return fail(&format!("writing the report: {e}")),
    };
    timings.lap("report");
    timings.print();
    // The process exits next: the kernel takes the memory back at once,
    // where freeing the ruleset piece by piece (millions of allocations on
    // a big host) takes a noticeable time.
    std::mem::forget((state, report));
    code
}

/// Runs the daemon with at most two glibc malloc arenas: every thread that
/// allocates (the audit's rayon workers) otherwise gets an arena of its own
/// that keeps what was freed, and the daemon's RSS on the 20,000-rule
/// benchmark host peaked at 328 MiB, then sank from 286 to 234 MiB; with two
/// arenas it stays at 196 MiB (peak 229 MiB) at the same speed
/// (`cargo bench --bench daemon`). glibc reads `MALLOC_ARENA_MAX` only when
/// the process starts, so the daemon executes itself again with it set
/// (same pid: systemd's notify socket and watchdog see one process). A
/// value the environment already sets is kept.
fn limit_malloc_arenas() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("MALLOC_ARENA_MAX", "2")
        .exec();
    // Not fatal: the daemon runs as it is, with more memory.
    eprintln!("portwarden: could not limit malloc arenas: {err}");
}

/// `portwarden status`: the daemon's last report.
fn status(config: &Path, report: Option<PathBuf>, max_age: Option<u64>, json: bool) -> ExitCode {
    use portwarden::render::status::{self, StatusDoc};
    // The configuration is only asked for the report's place and age; it
    // need not validate against the catalog for that.
    let daemon_cfg = config::DaemonConfig::from_file_leniently(config);
    let path = report.unwrap_or(daemon_cfg.report_path);
    let max_age = max_age.unwrap_or(daemon_cfg.stale_after_s);
    // The monitoring-plugin way (stdout, read by Nagios) and the CLI's
    // (stderr).
    let unknown = |why: String| {
        println!("UNKNOWN: {why}");
        eprintln!("portwarden: status: {why}");
        ExitCode::from(CANNOT_AUDIT)
    };
    let (text, modified) = match std::fs::read_to_string(&path).and_then(|t| {
        std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .map(|m| (t, m))
    }) {
        Ok(x) => x,
        Err(e) => {
            return unknown(format!(
                "no report at {} ({e}); is portwarden.service running?",
                path.display()
            ))
        }
    };
    if let Ok(n) = serde_json::from_str::<status::NotConfigured>(&text) {
        if json {
            print!("{text}");
            return ExitCode::from(CANNOT_AUDIT);
        }
        return unknown(format!("portwarden is {}", n.not_configured));
    }
    let doc: StatusDoc = match serde_json::from_str(&text) {
        Ok(d) => d,
        Err(e) => return unknown(format!("{}: not a portwarden report: {e}", path.display())),
    };
    let age = modified.elapsed().map_or(0, |d| d.as_secs());
    if age > max_age {
        return unknown(format!(
            "the report at {} is {age} s old (more than {max_age} s); is portwarden.service running?",
            path.display()
        ));
    }
    if json {
        print!("{text}");
    } else {
        print!("{}", status::text(&doc));
    }
    ExitCode::from(status::exit_code(&doc))
}
