//! The host's own network configuration, as the evaluator needs it.
//!
//! TEMPORARY (branch `cli`): this module only exists so that `portwarden
//! explain` can be built and tested before the real one lands. It runs
//! `ip -j` (iproute2) and parses its JSON. At merge it is replaced by the
//! rtnetlink implementation of branch `host`, which has the same
//! [`read_routes`] signature and the same [`HostError::exit_code`] values
//! (see the shared API contract); nothing else in this file is meant to
//! survive the merge.

use crate::eval::{Interface, Route, RouteKind, Routes, ARPHRD_ETHER, ARPHRD_LOOPBACK};
use ipnet::IpNet;
use serde_json::Value;
use std::net::IpAddr;
use std::process::Command;

/// Why the host's configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// Not allowed to read it.
    #[error("permission denied reading the host's {0}")]
    Permission(String),
    /// The facility (here: the `ip` command) is not available.
    #[error("cannot read the host's {what}: {detail}")]
    Unavailable {
        /// What was being read.
        what: String,
        /// Why not.
        detail: String,
    },
    /// Another I/O error.
    #[error("reading the host's {what}: {source}")]
    Io {
        /// What was being read.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// An unexpected or malformed reply.
    #[error("unexpected reply reading the host's {what}: {detail}")]
    Protocol {
        /// What was being read.
        what: String,
        /// What was wrong.
        detail: String,
    },
}

impl HostError {
    /// The process exit code for this error: 77 permission, 69 unavailable,
    /// 74 I/O, 76 protocol (the same values as [`crate::nft::ReadError`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            HostError::Permission(_) => 77,
            HostError::Unavailable { .. } => 69,
            HostError::Io { .. } => 74,
            HostError::Protocol { .. } => 76,
        }
    }
}

/// Runs `ip -j ARGS` and parses its JSON output.
fn ip_json(what: &str, args: &[&str]) -> Result<Value, HostError> {
    let out = Command::new("ip")
        .arg("-j")
        .args(args)
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => HostError::Unavailable {
                what: what.to_string(),
                detail: "the `ip` command (iproute2) is not installed".to_string(),
            },
            std::io::ErrorKind::PermissionDenied => HostError::Permission(what.to_string()),
            _ => HostError::Io {
                what: what.to_string(),
                source: e,
            },
        })?;
    if !out.status.success() {
        return Err(HostError::Protocol {
            what: what.to_string(),
            detail: format!(
                "ip {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    // `ip -j` prints nothing at all when there is nothing to list.
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Array(Vec::new()));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| HostError::Protocol {
        what: what.to_string(),
        detail: format!("ip {}: {e}", args.join(" ")),
    })
}

fn protocol(what: &str, detail: String) -> HostError {
    HostError::Protocol {
        what: what.to_string(),
        detail,
    }
}

fn interfaces(v: &Value) -> Result<Vec<Interface>, HostError> {
    const W: &str = "interfaces";
    let list = v
        .as_array()
        .ok_or_else(|| protocol(W, "not a JSON array".into()))?;
    let mut out = Vec::with_capacity(list.len());
    for l in list {
        let name = l["ifname"]
            .as_str()
            .ok_or_else(|| protocol(W, "interface without ifname".into()))?;
        let index = l["ifindex"]
            .as_u64()
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| protocol(W, format!("{name}: no ifindex")))?;
        let iftype = match l["link_type"].as_str() {
            Some("loopback") => ARPHRD_LOOPBACK,
            _ => ARPHRD_ETHER,
        };
        let group = match &l["group"] {
            Value::Number(n) => n.as_u64().unwrap_or(0) as u32,
            Value::String(s) => s.parse().unwrap_or(0),
            _ => 0,
        };
        let mut addrs = Vec::new();
        for a in l["addr_info"].as_array().into_iter().flatten() {
            let (Some(local), Some(len)) = (a["local"].as_str(), a["prefixlen"].as_u64()) else {
                continue;
            };
            let addr: IpAddr = local
                .parse()
                .map_err(|e| protocol(W, format!("{name}: address {local:?}: {e}")))?;
            let net = IpNet::new(addr, len as u8)
                .map_err(|e| protocol(W, format!("{name}: {local}/{len}: {e}")))?;
            addrs.push(net);
        }
        out.push(Interface {
            name: name.to_string(),
            index,
            iftype,
            addrs,
            group,
            kind: l["linkinfo"]["info_kind"].as_str().map(String::from),
        });
    }
    Ok(out)
}

fn routes(v: &Value, v6: bool, out: &mut Vec<Route>) -> Result<(), HostError> {
    const W: &str = "routes";
    for r in v
        .as_array()
        .ok_or_else(|| protocol(W, "not a JSON array".into()))?
    {
        let Some(dst) = r["dst"].as_str() else {
            continue;
        };
        let dst: IpNet = match dst {
            "default" if v6 => "::/0".parse().expect("prefix"),
            "default" => "0.0.0.0/0".parse().expect("prefix"),
            d if d.contains('/') => d
                .parse()
                .map_err(|e| protocol(W, format!("route to {d:?}: {e}")))?,
            d => IpNet::from(
                d.parse::<IpAddr>()
                    .map_err(|e| protocol(W, format!("route to {d:?}: {e}")))?,
            ),
        };
        let kind = match r["type"].as_str().unwrap_or("unicast") {
            "unicast" => RouteKind::Unicast,
            "local" => RouteKind::Local,
            "broadcast" => RouteKind::Broadcast,
            "blackhole" => RouteKind::Blackhole,
            "unreachable" => RouteKind::Unreachable,
            "prohibit" => RouteKind::Prohibit,
            // multicast, anycast, throw, nat...: not modelled.
            _ => continue,
        };
        out.push(Route {
            dst,
            dev: r["dev"].as_str().map(String::from),
            kind,
        });
    }
    Ok(())
}

/// Interfaces, addresses and main-table routes of the current network
/// namespace. Sockets are left unknown (`None`).
///
/// TEMPORARY: read with `ip -j`; replaced at merge by the rtnetlink reader.
pub fn read_routes() -> Result<Routes, HostError> {
    let interfaces = interfaces(&ip_json("interfaces", &["-d", "addr", "show"])?)?;
    let mut rs = Vec::new();
    routes(
        &ip_json("routes", &["-4", "route", "show", "table", "main"])?,
        false,
        &mut rs,
    )?;
    routes(
        &ip_json("routes", &["-6", "route", "show", "table", "main"])?,
        true,
        &mut rs,
    )?;
    Ok(Routes {
        interfaces,
        routes: rs,
        sockets: None,
    })
}
