//! The `portwarden` command line.

use anyhow::Context;
use clap::{Parser, Subcommand};
use portwarden::nft::{read_snapshot, ReadError, ReadOptions};
use portwarden::snapshot::Summary;
use std::io::{self, BufWriter, Write};
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    }
}
