//! The `portwarden` command line.

use anyhow::Context;
use clap::{Parser, Subcommand};
use portwarden::catalog::{self, Catalog};
use portwarden::config::{self, CliOptions, HostConfig};
use portwarden::host;
use portwarden::nft::{read_snapshot, ReadError, ReadOptions};
use portwarden::snapshot::Summary;
use std::io::{self, BufWriter, Write};
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
    /// keys and role ids come with the nearest valid name. Exit 0 when valid
    /// (warnings are printed), 3 when not.
    CheckConfig {
        /// The configuration file.
        #[arg(long, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
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
                .map_or(1, ReadError::exit_code);
            eprintln!("portwarden: {e:#}");
            ExitCode::from(code)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Dump { json, tries } => {
            let snap = read_snapshot(&ReadOptions { max_tries: tries })?;
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
        Command::CheckConfig { config } => {
            let cat = load_catalog()?;
            match HostConfig::load(&config, &cat) {
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
    let snapshot = match read_snapshot(&ReadOptions { max_tries: tries }) {
        Ok(s) => s,
        Err(e) => return fail("reading the ruleset", &e),
    };
    let routes = match host::read_routes() {
        Ok(r) => r,
        Err(e) => return fail("reading interfaces and routes", &e),
    };
    let listeners = match host::read_listeners() {
        Ok(l) => l,
        Err(e) => return fail("reading listening sockets", &e),
    };
    let report = portwarden::audit::audit_snapshot(&snapshot, routes, &listeners, &reqs, &cfg);
    let text = match format {
        Format::Json => report.to_json() + "\n",
        Format::Text => {
            portwarden::audit::text::render(&report, portwarden::audit::text::colour_for_stdout())
        }
    };
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() != io::ErrorKind::BrokenPipe {
            return fail("writing the report", &e);
        }
    }
    ExitCode::from(report.exit_code())
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
