//! The dump loop: generation, objects, generation, retry on change.

use super::decode::{self, DecodeError, ElemSink, Location};
use super::sys::{self, msg, Request, RequestError, Socket};
use crate::exit;
use crate::snapshot::{Family, Snapshot, Table};
use std::collections::HashMap;
use std::io;
use std::time::Duration;

/// Why the ruleset could not be read. Each kind has its own exit code
/// ([`ReadError::exit_code`], from `sysexits.h`).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The kernel refused: not root, or no CAP_NET_ADMIN.
    #[error(
        "permission denied reading the nftables ruleset: run as root or with CAP_NET_ADMIN ({0})"
    )]
    Permission(io::Error),
    /// No nf_tables in this kernel or namespace.
    #[error("nf_tables is not available in this kernel or network namespace ({0})")]
    Unavailable(io::Error),
    /// The ruleset changed during every attempt.
    #[error("the ruleset kept changing while it was being read ({tries} attempts); try again")]
    KeptChanging {
        /// Attempts made.
        tries: u32,
    },
    /// A reply the decoder could not make sense of.
    #[error("unexpected netlink reply: {0}")]
    Protocol(String),
    /// Any other socket error.
    #[error("netlink error: {0}")]
    Io(io::Error),
    /// The loaded libnftnl is not a release the validator was checked
    /// against; nothing is read.
    #[error(transparent)]
    Libnftnl(#[from] super::libversion::Unsupported),
}

impl ReadError {
    /// Process exit code: 77 no permission, 69 unavailable, 75 kept
    /// changing (temporary), 76 protocol, 74 other I/O, 78 unsupported
    /// libnftnl.
    pub fn exit_code(&self) -> u8 {
        match self {
            ReadError::Permission(_) => exit::NO_PERMISSION,
            ReadError::Unavailable(_) => exit::UNAVAILABLE,
            ReadError::KeptChanging { .. } => exit::KEPT_CHANGING,
            ReadError::Protocol(_) => exit::PROTOCOL,
            ReadError::Io(_) => exit::IO_ERROR,
            ReadError::Libnftnl(_) => exit::UNSUPPORTED_LIBNFTNL,
        }
    }

    pub(crate) fn from_io(e: io::Error) -> ReadError {
        match e.raw_os_error() {
            Some(libc::EPERM | libc::EACCES) => ReadError::Permission(e),
            Some(libc::EPROTONOSUPPORT | libc::EAFNOSUPPORT | libc::EOPNOTSUPP) => {
                ReadError::Unavailable(e)
            }
            _ if e.kind() == io::ErrorKind::InvalidData => ReadError::Protocol(e.to_string()),
            _ => ReadError::Io(e),
        }
    }
}

/// Options of [`read_snapshot`].
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// How many times to start over when the ruleset changes mid-read.
    pub max_tries: u32,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions { max_tries: 10 }
    }
}

/// A failed attempt: either the ruleset moved (retry) or a real error.
enum Attempt {
    Changed,
    Failed(ReadError),
}

impl From<RequestError<DecodeError>> for Attempt {
    fn from(e: RequestError<DecodeError>) -> Self {
        match e {
            // An object named in one dump vanished before the next: the
            // ruleset changed under us.
            RequestError::Io(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOENT | libc::EINTR | libc::EAGAIN)
                ) =>
            {
                Attempt::Changed
            }
            RequestError::Io(e) => Attempt::Failed(ReadError::from_io(e)),
            RequestError::Callback(d) => Attempt::Failed(ReadError::Protocol(d.to_string())),
        }
    }
}

fn generation(sock: &mut Socket) -> Result<u32, ReadError> {
    let mut gen = None;
    sock.request(&Request::GetGen, |m| {
        if m.kind() == msg::NEWGEN {
            gen = sys::parse_gen(m);
        }
        Ok::<_, DecodeError>(())
    })
    .map_err(|e| match e {
        RequestError::Io(e) => ReadError::from_io(e),
        RequestError::Callback(d) => ReadError::Protocol(d.to_string()),
    })?;
    gen.ok_or_else(|| ReadError::Protocol("no generation in NEWGEN reply".into()))
}

/// Reads one consistent snapshot of the current namespace's ruleset.
pub fn read_snapshot(opts: &ReadOptions) -> Result<Snapshot, ReadError> {
    super::libversion::check()?;
    let mut sock = Socket::open().map_err(ReadError::from_io)?;
    for attempt in 0..opts.max_tries.max(1) {
        let before = generation(&mut sock)?;
        match dump_once(&mut sock) {
            Ok(mut snap) => {
                if generation(&mut sock)? == before {
                    snap.generation = before;
                    (snap.legacy, snap.legacy_unlisted) = super::legacy::read_legacy();
                    return Ok(snap);
                }
            }
            Err(Attempt::Changed) => {}
            Err(Attempt::Failed(e)) => return Err(e),
        }
        // Back off a little: a firewall manager reloading sends bursts.
        std::thread::sleep(Duration::from_millis(5 << attempt.min(6)));
    }
    Err(ReadError::KeptChanging {
        tries: opts.max_tries.max(1),
    })
}

type TableKey = (Family, String);

fn dump_once(sock: &mut Socket) -> Result<Snapshot, Attempt> {
    let mut interrupted = false;
    let mut tables: Vec<Table> = Vec::new();
    sock.request(&Request::Dump(msg::GETTABLE), |m| {
        tables.push(decode::table(m)?);
        Ok(())
    })
    .map(|o| interrupted |= o.interrupted)?;
    let index: HashMap<TableKey, usize> = tables
        .iter()
        .enumerate()
        .map(|(i, t)| ((t.family, t.name.clone()), i))
        .collect();
    let find = |loc: &Location| -> Result<usize, DecodeError> {
        index
            .get(&(loc.family, loc.table.clone()))
            .copied()
            .ok_or_else(|| DecodeError {
                what: "object",
                why: format!("table {} {} not in the table dump", loc.family, loc.table),
            })
    };

    // A missing table means the ruleset changed between dumps.
    let mut changed = false;
    sock.request(&Request::Dump(msg::GETCHAIN), |m| {
        let (loc, c) = decode::chain(m)?;
        match find(&loc) {
            Ok(i) => tables[i].chains.push(c),
            Err(_) => changed = true,
        }
        Ok(())
    })
    .map(|o| interrupted |= o.interrupted)?;

    let mut chain_index: HashMap<(usize, String), usize> = HashMap::new();
    for (ti, t) in tables.iter().enumerate() {
        for (ci, c) in t.chains.iter().enumerate() {
            chain_index.insert((ti, c.name.clone()), ci);
        }
    }
    sock.request(&Request::Dump(msg::GETRULE), |m| {
        let (loc, mut r) = decode::rule(m, |f| f == Family::Ip6)?;
        let chain = loc.parent.clone().unwrap_or_default();
        match find(&loc)
            .ok()
            .and_then(|ti| chain_index.get(&(ti, chain)).map(|ci| (ti, *ci)))
        {
            Some((ti, ci)) => {
                let rules = &mut tables[ti].chains[ci].rules;
                r.position = rules.len() as u32;
                rules.push(r);
            }
            None => changed = true,
        }
        Ok(())
    })
    .map(|o| interrupted |= o.interrupted)?;

    sock.request(&Request::Dump(msg::GETSET), |m| {
        let (loc, s) = decode::set(m)?;
        match find(&loc) {
            Ok(i) => tables[i].sets.push(s),
            Err(_) => changed = true,
        }
        Ok(())
    })
    .map(|o| interrupted |= o.interrupted)?;

    for t in tables.iter_mut() {
        let family = t.family.nfproto();
        for s in t.sets.iter_mut() {
            let mut sink = ElemSink::default();
            let req = Request::SetElems {
                family,
                table: &t.name,
                set: &s.name,
            };
            sock.request(&req, |m| {
                if m.kind() == msg::NEWSETELEM {
                    decode::elements(m, &mut sink)?;
                }
                Ok(())
            })
            .map(|o| interrupted |= o.interrupted)?;
            decode::fill_set(s, sink);
        }
    }

    sock.request(&Request::Dump(msg::GETOBJ), |m| {
        let (loc, o) = decode::object(m)?;
        match find(&loc) {
            Ok(i) => tables[i].objects.push(o),
            Err(_) => changed = true,
        }
        Ok(())
    })
    .map(|o| interrupted |= o.interrupted)?;

    sock.request(&Request::Dump(msg::GETFLOWTABLE), |m| {
        let (loc, f) = decode::flowtable(m)?;
        match find(&loc) {
            Ok(i) => tables[i].flowtables.push(f),
            Err(_) => changed = true,
        }
        Ok(())
    })
    .map(|o| interrupted |= o.interrupted)?;

    if interrupted || changed {
        return Err(Attempt::Changed);
    }
    Ok(Snapshot {
        generation: 0,
        tables,
        legacy: Vec::new(),
        legacy_unlisted: Vec::new(),
    })
}

/// Reads parts of the ruleset, for keeping a snapshot up to date without
/// dumping it whole.
pub struct PartReader {
    sock: Socket,
}

impl PartReader {
    /// Opens a netlink socket.
    pub fn open() -> Result<PartReader, ReadError> {
        super::libversion::check()?;
        Ok(PartReader {
            sock: Socket::open().map_err(ReadError::from_io)?,
        })
    }

    /// The current generation.
    pub fn generation(&mut self) -> Result<u32, ReadError> {
        generation(&mut self.sock)
    }

    /// The rules of one chain, in order.
    pub fn chain_rules(
        &mut self,
        family: Family,
        table: &str,
        chain: &str,
    ) -> Result<Vec<crate::snapshot::Rule>, ReadError> {
        let mut rules = Vec::new();
        let req = Request::ChainRules {
            family: family.nfproto(),
            table,
            chain,
        };
        self.sock
            .request(&req, |m| {
                let (_, mut r) = decode::rule(m, |f| f == Family::Ip6)?;
                r.position = rules.len() as u32;
                rules.push(r);
                Ok::<_, DecodeError>(())
            })
            .map_err(part_error)?;
        Ok(rules)
    }

    /// The elements of one set, filled into `set` (its metadata kept).
    pub fn set_elements(
        &mut self,
        family: Family,
        table: &str,
        set: &mut crate::snapshot::Set,
    ) -> Result<(), ReadError> {
        let mut sink = ElemSink::default();
        let req = Request::SetElems {
            family: family.nfproto(),
            table,
            set: &set.name,
        };
        self.sock
            .request(&req, |m| {
                if m.kind() == msg::NEWSETELEM {
                    decode::elements(m, &mut sink)?;
                }
                Ok::<_, DecodeError>(())
            })
            .map_err(part_error)?;
        decode::fill_set(set, sink);
        Ok(())
    }
}

fn part_error(e: RequestError<DecodeError>) -> ReadError {
    match e {
        RequestError::Io(e) => ReadError::from_io(e),
        RequestError::Callback(d) => ReadError::Protocol(d.to_string()),
    }
}
