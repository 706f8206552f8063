//! `portwarden explain` (part of the binary): one probe with text or JSON
//! output, or a stream of probes with `--batch`.

use portwarden::eval::{Evaluator, Iface, Probe, L4};
use portwarden::host::Routes;
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, BufRead, Write};
use std::net::IpAddr;

/// The source port used when none is given: a typical Linux ephemeral port.
pub const DEFAULT_SPORT: u16 = 40000;

/// A `PROTO/PORT` argument.
#[derive(Clone, Copy, Debug)]
pub struct Service {
    /// Protocol.
    pub proto: L4,
    /// Destination port.
    pub port: u16,
}

/// Parses `--at`: an RFC 3339 moment in UTC, `2026-12-06T14:30:00Z`
/// (clap value parser), with the kernel's timezone as it is now.
pub fn parse_at(s: &str) -> Result<portwarden::eval::Clock, String> {
    let t = humantime::parse_rfc3339_weak(s.trim_end_matches(['Z', 'z']))
        .map_err(|e| format!("expected a UTC time such as 2026-12-06T14:30:00Z, got {s:?}: {e}"))?;
    Ok(portwarden::eval::Clock::at(
        t,
        portwarden::nft::sys::kernel_minutes_west(),
    ))
}

/// Parses `tcp/6162` (clap value parser).
pub fn parse_service(s: &str) -> Result<Service, String> {
    let (p, n) = s
        .split_once('/')
        .ok_or_else(|| format!("expected PROTO/PORT such as tcp/6162, got {s:?}"))?;
    Ok(Service {
        proto: parse_proto(p)?,
        port: n
            .parse()
            .map_err(|_| format!("{n:?} is not a port number (0-65535)"))?,
    })
}

fn parse_proto(p: &str) -> Result<L4, String> {
    match p {
        "tcp" | "TCP" => Ok(L4::Tcp),
        "udp" | "UDP" => Ok(L4::Udp),
        _ => Err(format!("unknown protocol {p:?} (tcp or udp)")),
    }
}

/// Turns a query (defaults not yet applied) into a probe.
pub struct Resolver<'e> {
    ev: &'e Evaluator,
    /// Reused between queries so a batch does not allocate an interface
    /// name per line.
    probe: Probe,
}

impl<'e> Resolver<'e> {
    /// A resolver over `ev`'s routes.
    pub fn new(ev: &'e Evaluator) -> Self {
        let unspecified = IpAddr::from([0u8, 0, 0, 0]);
        Resolver {
            ev,
            probe: Probe::new(
                L4::Tcp,
                unspecified,
                unspecified,
                DEFAULT_SPORT,
                0,
                Iface::new("", 0, 1),
            ),
        }
    }

    fn routes(&self) -> &'e Routes {
        self.ev.routes()
    }

    /// Applies the documented defaults and checks the probe.
    pub fn resolve(
        &mut self,
        proto: L4,
        port: u16,
        from: IpAddr,
        to: Option<IpAddr>,
        iif: Option<&str>,
        sport: u16,
    ) -> Result<&Probe, String> {
        if let Some(t) = to {
            if t.is_ipv6() != from.is_ipv6() {
                return Err(format!(
                    "--from {from} and --to {t} are not of the same address family"
                ));
            }
        }
        let iif = match iif {
            Some(i) => i,
            None => self.routes().route_dev(from).ok_or_else(|| {
                format!("this host has no route to {from}, so the input interface is not known: name it (--iif)")
            })?,
        };
        if iif.len() > 15 {
            return Err(format!("interface name {iif:?} is longer than 15 bytes"));
        }
        let to = match to {
            Some(t) => t,
            None => self
                .routes()
                .default_local_addr(iif, from.is_ipv6())
                .ok_or_else(|| {
                    format!(
                        "this host has no {} address to take as the destination: name one (--to)",
                        if from.is_ipv6() { "IPv6" } else { "IPv4" }
                    )
                })?,
        };
        if self.probe.iif.name != iif {
            self.probe.iif = self.ev.iface(iif);
        }
        let p = &mut self.probe;
        p.proto = proto;
        p.saddr = from;
        p.daddr = to;
        p.sport = sport;
        p.dport = port;
        Ok(&self.probe)
    }
}

/// One line of `explain --batch` input.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Query<'a> {
    #[serde(borrow)]
    proto: Cow<'a, str>,
    #[serde(alias = "dport")]
    port: u16,
    from: IpAddr,
    #[serde(default)]
    to: Option<IpAddr>,
    #[serde(default, borrow)]
    iif: Option<Cow<'a, str>>,
    #[serde(default)]
    sport: Option<u16>,
}

#[derive(serde::Serialize)]
struct LineError<'a> {
    error: &'a str,
}

/// `explain --batch`: JSON lines in, one JSON answer (or `{"error": ...}`)
/// per line out, in order. Output is flushed whenever the input has no more
/// buffered lines, so an interactive caller gets its answers without waiting
/// for the end of input.
pub fn batch(ev: &Evaluator, input: impl BufRead, out: impl Write) -> io::Result<()> {
    let mut input = input;
    let mut out = io::BufWriter::with_capacity(1 << 16, out);
    let mut res = Resolver::new(ev);
    let mut line = Vec::with_capacity(256);
    let mut msg = String::new();
    let mut n = 0u64;
    loop {
        if input.fill_buf()?.is_empty() {
            // About to block (or at the end): let the caller see what is done.
            out.flush()?;
        }
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        n += 1;
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        let parsed = if line.iter().all(u8::is_ascii_whitespace) {
            Err("empty line".to_string())
        } else {
            serde_json::from_slice::<Query>(&line).map_err(|e| e.to_string())
        };
        let answer = parsed.and_then(|q| {
            let proto = parse_proto(&q.proto)?;
            res.resolve(
                proto,
                q.port,
                q.from,
                q.to,
                q.iif.as_deref(),
                q.sport.unwrap_or(DEFAULT_SPORT),
            )
            .map(|p| ev.explain(p))
        });
        match answer {
            Ok(a) => serde_json::to_writer(&mut out, &a)?,
            Err(e) => {
                msg.clear();
                let _ = write!(msg, "line {n}: {e}");
                serde_json::to_writer(&mut out, &LineError { error: &msg })?;
            }
        }
        out.write_all(b"\n")?;
    }
    out.flush()
}
