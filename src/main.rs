//! The `portwarden` command line.

mod explain;
mod exposure_text;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};
use portwarden::catalog::{self, Catalog};
use portwarden::config::{self, CliOptions, HostConfig};
use portwarden::eval::Evaluator;
use portwarden::host::{self, read_routes, HostError};
use portwarden::nft::{read_snapshot, ReadError, ReadOptions};
use portwarden::snapshot::Summary;
use std::io::{self, BufWriter, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Audit what this host's live nftables ruleset does to the connections its
/// backup roles (Veeam, EVault / IBM Cloud Backup) need.
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
    /// Exit codes: 0 ok, 77 no permission (needs root or CAP_NET_ADMIN),
    /// 69 nf_tables unavailable, 75 ruleset kept changing, 76 unexpected
    /// netlink reply, 74 other I/O error.
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
    /// List the backup roles the catalog knows, or show one with its sources.
    ///
    /// The catalog is built in and extended or overridden by *.toml files in
    /// /usr/share/portwarden/catalog.d/ then /etc/portwarden/catalog.d/.
    ///
    /// Examples: portwarden roles; portwarden roles show evault-agent
    Roles {
        /// `show ID` to show one role.
        #[command(subcommand)]
        show: Option<RolesCommand>,
        /// Print JSON.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Validate the host configuration against the catalog.
    ///
    /// Every error names file, line and column and what was expected; unknown
    /// keys and role ids come with the nearest valid name; interface names
    /// (private_interfaces, [peer_interfaces]) must match an interface of
    /// this network namespace (unless --offline). Exit 0 when valid
    /// (warnings are printed), 3 when not.
    CheckConfig {
        /// The configuration file.
        #[arg(long, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
        /// Do not look at this host's interfaces (a configuration meant for
        /// another host).
        #[arg(long)]
        offline: bool,
    },
    /// List the listening TCP and bound UDP sockets of this network namespace.
    ///
    /// One line per socket, sorted by protocol, port and address: the bound
    /// address and port, the owning process (lowest pid holding the socket,
    /// its systemd unit), `v6only` for an IPv6 socket that takes no IPv4,
    /// `dev NAME` for a socket bound to an interface. Read over sock_diag;
    /// processes from /proc (run as root to see every process).
    ///
    /// Exit codes: 0 ok, 77 no permission, 69 sock_diag unavailable, 76
    /// unexpected netlink reply, 74 other I/O error.
    ///
    /// Example: ip netns exec NS portwarden listeners --json
    Listeners {
        /// Print JSON: a list of {proto, addr, port, v6only, dev, uid, inode,
        /// process: {pid, command, unit}}.
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
    ///
    /// Exit codes: 0 ok, and the read errors of `dump` (77, 69, 75, 76, 74).
    Exposure {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
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
    /// (with --peer, --private-iface and --set).
    ///
    /// Exit codes (monitoring-plugin convention): 0 no warnings, 1 warnings,
    /// 2 criticals, 3 could not audit (bad configuration, no permission,
    /// read error; the reason is one line on stderr).
    ///
    /// Examples: portwarden audit --format json;
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
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// How many times to start over when the ruleset changes mid-read.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
        tries: u32,
    },
}

const EXPLAIN_EXAMPLES: &str = "\
Examples:
  portwarden explain tcp/6162 --from 10.0.0.5
  portwarden explain udp/53 --from 2001:db8:1::2 --iif pw-pub --json
  echo '{\"proto\":\"tcp\",\"port\":6162,\"from\":\"10.0.0.5\"}' | portwarden explain --batch

Batch input, one JSON object per line: proto, port, from (required); to, iif,
sport (optional, same defaults). Output: one JSON answer per line, in order;
a line that cannot be read gets {\"error\": \"line N: ...\"} instead.

Exit codes: 0 ok (whatever the verdict), 2 bad arguments, and the read errors
of `dump` (77 no permission, 69 unavailable, 75 ruleset kept changing,
76 unexpected netlink reply, 74 other I/O error).";

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
    /// `{"generation": N, "findings": [...], "notes": [...]}`.
    Json,
}

#[derive(Subcommand)]
enum RolesCommand {
    /// Show one role: its requirements, each with its source.
    Show {
        /// Role id, e.g. veeam-linux-repository.
        id: String,
    },
}

/// The catalog: built in, then the override directories.
fn load_catalog() -> anyhow::Result<Catalog> {
    let dirs: Vec<&Path> = catalog::DEFAULT_DIRS.iter().map(Path::new).collect();
    Ok(Catalog::load(&dirs)?)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        // `audit` keeps the monitoring-plugin convention: a usage error is
        // "could not audit" (3), not clap's 2 (which would read as critical).
        Err(e) if e.use_stderr() && std::env::args().nth(1).as_deref() == Some("audit") => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("portwarden: cannot audit: {first} (see portwarden audit --help)");
            return ExitCode::from(CANNOT_AUDIT);
        }
        Err(e) => e.exit(),
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            let code = e
                .downcast_ref::<ReadError>()
                .map(ReadError::exit_code)
                .or_else(|| e.downcast_ref::<HostError>().map(HostError::exit_code))
                .unwrap_or(1);
            eprintln!("portwarden: {e:#}");
            ExitCode::from(code)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Dump { json, tries } => {
            let mut timings = Timings::from_env();
            let snap = read_snapshot(&ReadOptions { max_tries: tries })?;
            timings.lap("snapshot");
            let stdout = io::stdout();
            let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
            if json {
                serde_json::to_writer(&mut out, &snap).context("writing JSON")?;
                writeln!(out)?;
            } else {
                write!(out, "{}", Summary(&snap))?;
            }
            if let Err(e) = out.flush() {
                // A closed pipe (`| head`) is not an error worth a message.
                if e.kind() != io::ErrorKind::BrokenPipe {
                    return Err(e).context("writing output");
                }
            }
            timings.lap("report");
            timings.print();
            // Exiting next: no need to free the snapshot piece by piece.
            std::mem::forget(snap);
            Ok(ExitCode::SUCCESS)
        }
        Command::Roles { show, json } => {
            let cat = load_catalog()?;
            match show {
                None if json => {
                    let roles: Vec<_> = cat.roles().collect();
                    println!("{}", serde_json::to_string_pretty(&roles)?);
                }
                None => {
                    for r in cat.roles() {
                        println!("{:<36} {}", r.id(), r.title);
                    }
                }
                Some(RolesCommand::Show { id }) => {
                    let Some(role) = cat.role(&id) else {
                        let near = catalog::nearest(&id, cat.role_ids());
                        let hint = near
                            .map(|n| format!("; did you mean `{n}`?"))
                            .unwrap_or_default();
                        anyhow::bail!("unknown role `{id}`{hint} (portwarden roles lists them)");
                    };
                    if json {
                        println!("{}", serde_json::to_string_pretty(role)?);
                    } else {
                        print_role(role);
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Listeners { json } => {
            let listeners = host::read_listeners()?;
            let stdout = io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            if json {
                serde_json::to_writer_pretty(&mut out, &listeners).context("writing JSON")?;
                writeln!(out)?;
            } else {
                for l in &listeners {
                    writeln!(out, "{l}")?;
                }
            }
            finish(out)
        }
        Command::Routes { json: _ } => {
            let routes = host::read_routes()?;
            let stdout = io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            serde_json::to_writer_pretty(&mut out, &routes).context("writing JSON")?;
            writeln!(out)?;
            finish(out)
        }
        Command::Explain(a) => run_explain(a),
        Command::Exposure { json, tries } => {
            let snap = read_snapshot(&ReadOptions { max_tries: tries })?;
            let routes = read_routes()?;
            let x = Evaluator::new(&snap, routes).exposure();
            let stdout = io::stdout();
            let mut out = BufWriter::new(stdout.lock());
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
                serde_json::to_writer(&mut out, &doc).context("writing JSON")?;
                writeln!(out)?;
            } else {
                out.write_all(exposure_text::text(&x).as_bytes())?;
            }
            finish(out)
        }
        Command::CheckConfig { config, offline } => {
            let cat = load_catalog()?;
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
                    println!("{}: valid", config.display());
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("{e}");
                    Ok(ExitCode::from(3))
                }
            }
        }
        Command::Audit {
            config,
            role,
            peer,
            private_iface,
            set,
            format,
            tries,
        } => Ok(audit(
            config,
            CliOptions {
                roles: role,
                peers: peer,
                settings: set,
                private_interfaces: private_iface,
            },
            format,
            tries,
        )),
    }
}

/// Flushes the output; a closed pipe (`| head`) is not an error worth a
/// message.
fn finish(mut out: impl Write) -> anyhow::Result<ExitCode> {
    match out.flush() {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e).context("writing output"),
        _ => Ok(ExitCode::SUCCESS),
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

fn run_explain(a: ExplainArgs) -> anyhow::Result<ExitCode> {
    if let (Some(f), Some(t)) = (a.from, a.to) {
        if f.is_ipv6() != t.is_ipv6() {
            explain_usage_error(format!(
                "--from {f} and --to {t} are not of the same address family"
            ));
        }
    }
    let snap = read_snapshot(&ReadOptions { max_tries: a.tries })?;
    let routes = read_routes()?;
    let ev = Evaluator::new(&snap, routes);
    if a.batch {
        let stdin = io::stdin();
        let stdout = io::stdout();
        return match explain::batch(&ev, stdin.lock(), stdout.lock()) {
            Ok(()) => Ok(ExitCode::SUCCESS),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
            Err(e) => Err(e).context("explain --batch"),
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
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let written = if a.json {
        serde_json::to_writer(&mut out, &answer)
            .map_err(io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        write!(
            out,
            "{}",
            explain::text(&snap, ev.routes(), &probe, &answer)
        )
    };
    match written.and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e).context("writing output"),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// Exit code when the audit could not be done.
const CANNOT_AUDIT: u8 = 3;

/// `portwarden audit`: gathers the inputs, audits, prints. Every failure
/// before the report is exit 3 with one line on stderr.
fn audit(config: Option<PathBuf>, cli: CliOptions, format: Format, tries: u32) -> ExitCode {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        let text = e.to_string();
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let first = lines.next().unwrap_or_default().trim().to_string();
        let more = lines.count();
        let more = if more > 0 {
            format!(" (and {more} more lines; see portwarden check-config)")
        } else {
            String::new()
        };
        eprintln!("portwarden: cannot audit: {what}: {first}{more}");
        ExitCode::from(CANNOT_AUDIT)
    };
    let cat = match load_catalog() {
        Ok(c) => c,
        Err(e) => return fail("catalog", &e),
    };
    let loaded = if cli.roles.is_empty() {
        let path = config.unwrap_or_else(|| PathBuf::from(config::DEFAULT_PATH));
        HostConfig::load(&path, &cat)
    } else {
        HostConfig::from_cli_options(&cat, &cli)
    };
    let (cfg, warnings) = match loaded {
        Ok(c) => c,
        Err(e) => return fail("configuration", &e),
    };
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    let reqs = match cat.resolve(&cfg.roles, &cfg.settings) {
        Ok(r) => r,
        Err(e) => return fail("roles", &e),
    };
    let mut timings = Timings::from_env();
    // The host's interfaces, routes and sockets are read while the ruleset
    // is: a large set takes the kernel seconds to dump, on one core.
    let (snapshot, host) = std::thread::scope(|s| {
        let host = s.spawn(|| (host::read_routes(), host::read_listeners()));
        let snapshot = read_snapshot(&ReadOptions { max_tries: tries });
        timings.lap("snapshot");
        (snapshot, host.join())
    });
    timings.lap("host");
    let snapshot = match snapshot {
        Ok(s) => s,
        Err(e) => return fail("reading the ruleset", &e),
    };
    let Ok((routes, listeners)) = host else {
        return fail(
            "reading interfaces and sockets",
            &"the reading thread panicked",
        );
    };
    let routes = match routes {
        Ok(r) => r,
        Err(e) => return fail("reading interfaces and routes", &e),
    };
    let listeners = match listeners {
        Ok(l) => l,
        Err(e) => return fail("reading listening sockets", &e),
    };
    let evaluator = portwarden::eval::Evaluator::new(&snapshot, routes);
    timings.lap("evaluator");
    let exposure = evaluator.exposure();
    timings.lap("exposure");
    let report = portwarden::audit::audit(&portwarden::audit::AuditInput {
        snapshot: &snapshot,
        evaluator: &evaluator,
        exposure: &exposure,
        listeners: &listeners,
        requirements: &reqs,
        config: &cfg,
    });
    timings.lap("findings");
    let out = io::stdout().lock();
    let written = match format {
        Format::Json => report.write_json(out),
        Format::Text => {
            let text = portwarden::audit::text::render(
                &report,
                portwarden::audit::text::colour_for_stdout(),
            );
            let mut out = out;
            out.write_all(text.as_bytes()).and_then(|()| out.flush())
        }
    };
    if let Err(e) = written {
        if e.kind() != io::ErrorKind::BrokenPipe {
            return fail("writing the report", &e);
        }
    }
    timings.lap("report");
    timings.print();
    let code = ExitCode::from(report.exit_code());
    // The process exits next: the kernel takes the memory back at once,
    // where freeing the ruleset, the evaluator and the exposure piece by
    // piece (millions of allocations on a big host) takes a noticeable time.
    std::mem::forget((snapshot, evaluator, exposure, report, listeners));
    code
}

/// With `PORTWARDEN_TIMINGS` set, how long each phase of a command took,
/// for benchmarks and profiling: one line on stderr at the end,
/// `timings: snapshot 5.230 s, host 0.001 s, ...` (each phase from the end
/// of the one before; the first from the start of the reads).
struct Timings {
    /// Phase start, and the phases so far; `None`: not asked for.
    on: Option<(std::time::Instant, Vec<(&'static str, f64)>)>,
}

impl Timings {
    fn from_env() -> Timings {
        Timings {
            on: std::env::var_os("PORTWARDEN_TIMINGS")
                .map(|_| (std::time::Instant::now(), Vec::new())),
        }
    }

    /// Ends the phase `name`.
    fn lap(&mut self, name: &'static str) {
        if let Some((start, laps)) = &mut self.on {
            laps.push((name, start.elapsed().as_secs_f64()));
            *start = std::time::Instant::now();
        }
    }

    fn print(&self) {
        if let Some((_, laps)) = &self.on {
            let parts: Vec<String> = laps.iter().map(|(n, t)| format!("{n} {t:.3} s")).collect();
            eprintln!("timings: {}", parts.join(", "));
        }
    }
}

fn print_role(role: &catalog::Role) {
    println!("{} — {}", role.id(), role.title);
    println!("{}", role.description.trim());
    if !role.includes.is_empty() {
        let inc: Vec<&str> = role.includes.iter().map(|i| i.get_ref().as_str()).collect();
        println!("includes: {}", inc.join(", "));
    }
    for r in &role.requirements {
        let ports = match (&r.ports, &r.port_set) {
            (Some(p), _) => p.to_set().to_string(),
            (None, Some(set)) => format!("<{}>", set.get_ref()),
            (None, None) => String::from("?"),
        };
        println!(
            "  {:<5}{:<4}{:<14} peer {:<28} {}",
            format!("{:?}", r.direction).to_lowercase(),
            format!("{:?}", r.proto).to_lowercase(),
            ports,
            r.peers().join("|"),
            r.purpose
        );
        println!(
            "        source: {}, {}",
            r.source.doc.get_ref(),
            r.source.section
        );
    }
}
