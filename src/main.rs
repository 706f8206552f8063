//! The `portwarden` command line.

use anyhow::Context;
use clap::{Parser, Subcommand};
use portwarden::catalog::{self, Catalog};
use portwarden::config::{self, HostConfig};
use portwarden::host::{self, HostError};
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
    let cli = Cli::parse();
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
