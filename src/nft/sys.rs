//! The one module with `unsafe` code: a netfilter netlink socket (libmnl via
//! `mnl`) and libnftnl's message parsers (via `nftnl-sys`), behind a safe API.
//!
//! Everything handed out borrows from an owner that frees the libnftnl object
//! on drop, so no raw pointer outlives its object. Messages are length-checked
//! here before libnftnl sees them, because libmnl trusts `nlmsg_len`, and
//! every parse entry point runs [`validate`] first, because libnftnl exits
//! the process on an attribute of unexpected size, and parses only with a
//! libnftnl release the validator was checked against ([`libversion::check`]).

use super::libversion::{self, Unsupported};
use super::validate::{self, Invalid, Kind};
use libc::{c_char, c_int, c_void, nlmsghdr};
use nftnl_sys as ffi;
use std::ffi::CStr;
use std::io;
use std::marker::PhantomData;

/// Netfilter subsystem number of nf_tables.
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_MULTI: u16 = 0x2;
const NLM_F_DUMP_INTR: u16 = 0x10;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_HDRLEN: usize = 16;
/// `nlmsghdr` + `nfgenmsg`.
const NFMSG_HDRLEN: usize = 20;
/// The kernel sizes dump skbs up to 32 KiB when the reader's buffer allows;
/// fewer, larger batches mean fewer restarts of an interval-set walk.
const RECV_BUF: usize = 64 * 1024;

/// `NFT_MSG_*` request and notification types.
#[allow(missing_docs)]
pub mod msg {
    pub const NEWTABLE: u16 = 0;
    pub const GETTABLE: u16 = 1;
    pub const DELTABLE: u16 = 2;
    pub const NEWCHAIN: u16 = 3;
    pub const GETCHAIN: u16 = 4;
    pub const DELCHAIN: u16 = 5;
    pub const NEWRULE: u16 = 6;
    pub const GETRULE: u16 = 7;
    pub const DELRULE: u16 = 8;
    pub const NEWSET: u16 = 9;
    pub const GETSET: u16 = 10;
    pub const DELSET: u16 = 11;
    pub const NEWSETELEM: u16 = 12;
    pub const GETSETELEM: u16 = 13;
    pub const DELSETELEM: u16 = 14;
    pub const NEWGEN: u16 = 15;
    pub const GETGEN: u16 = 16;
    pub const NEWOBJ: u16 = 18;
    pub const GETOBJ: u16 = 19;
    pub const DELOBJ: u16 = 20;
    pub const NEWFLOWTABLE: u16 = 22;
    pub const GETFLOWTABLE: u16 = 23;
    pub const DELFLOWTABLE: u16 = 24;
}

/// One validated netlink message: header and payload, in bounds.
#[derive(Clone, Copy)]
pub struct Msg<'a> {
    bytes: &'a [u8],
}

impl<'a> Msg<'a> {
    /// The `NFT_MSG_*` type (subsystem stripped), or the netlink control type.
    pub fn kind(&self) -> u16 {
        let t = u16::from_ne_bytes([self.bytes[4], self.bytes[5]]);
        if t >> 8 == NFNL_SUBSYS_NFTABLES {
            t & 0xff
        } else {
            t
        }
    }

    fn raw_type(&self) -> u16 {
        u16::from_ne_bytes([self.bytes[4], self.bytes[5]])
    }

    /// The netlink header flags (`NLM_F_*`).
    pub fn flags(&self) -> u16 {
        u16::from_ne_bytes([self.bytes[6], self.bytes[7]])
    }

    fn seq(&self) -> u32 {
        u32::from_ne_bytes(self.bytes[8..12].try_into().expect("16-byte header"))
    }

    /// The `nfgenmsg` family byte (NFPROTO number).
    pub fn family(&self) -> Option<u8> {
        self.bytes.get(16).copied()
    }

    /// The whole message, `nlmsghdr` first.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The netlink attributes after the `nfgenmsg` header.
    pub fn attrs(&self) -> &'a [u8] {
        self.bytes.get(NFMSG_HDRLEN..).unwrap_or_default()
    }

    fn hdr(&self) -> *const nlmsghdr {
        self.bytes.as_ptr() as *const nlmsghdr
    }
}

/// Splits a buffer into netlink messages, checking every length.
pub fn messages(buf: &[u8]) -> impl Iterator<Item = Result<Msg<'_>, io::Error>> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let fail = |what: &str| {
            Some(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                what.to_string(),
            )))
        };
        if rest.len() < NLMSG_HDRLEN {
            rest = &[];
            return fail("truncated netlink header");
        }
        let len = u32::from_ne_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            rest = &[];
            return fail("netlink message length out of bounds");
        }
        let m = Msg {
            bytes: &rest[..len],
        };
        rest = rest.get(len.next_multiple_of(4)..).unwrap_or_default();
        Some(Ok(m))
    })
}

/// Heap buffer aligned for `nlmsghdr`.
struct AlignedBuf(Vec<u32>);

impl AlignedBuf {
    fn new(bytes: usize) -> Self {
        AlignedBuf(vec![0u32; bytes / 4])
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: u32 storage reinterpreted as bytes; same length, alignment 1 <= 4.
        unsafe { std::slice::from_raw_parts_mut(self.0.as_mut_ptr() as *mut u8, self.0.len() * 4) }
    }
}

/// What a request asks the kernel for.
pub enum Request<'a> {
    /// The current ruleset generation.
    GetGen,
    /// Dump every object of one kind (`msg::GETTABLE`, ...), all families.
    Dump(u16),
    /// Dump the elements of one set.
    SetElems {
        /// NFPROTO family of the table.
        family: u8,
        /// Table name.
        table: &'a str,
        /// Set name.
        set: &'a str,
    },
    /// Dump the rules of one chain.
    ChainRules {
        /// NFPROTO family of the table.
        family: u8,
        /// Table name.
        table: &'a str,
        /// Chain name.
        chain: &'a str,
    },
}

/// How a request ended.
#[derive(Debug, Default, Clone, Copy)]
pub struct Outcome {
    /// The kernel flagged the dump as interrupted by a ruleset change.
    pub interrupted: bool,
}

/// Errors of a request: the kernel's errno, or a malformed reply.
#[derive(Debug)]
pub enum RequestError<E> {
    /// The socket or the kernel reported an error.
    Io(io::Error),
    /// The callback failed.
    Callback(E),
}

/// A netfilter netlink socket.
pub struct Socket {
    sock: mnl::Socket,
    seq: u32,
    buf: AlignedBuf,
}

impl Socket {
    /// Opens and binds a `NETLINK_NETFILTER` socket.
    pub fn open() -> io::Result<Socket> {
        let sock = mnl::Socket::new(mnl::Bus::Netfilter)?;
        Ok(Socket {
            sock,
            seq: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as u32)
                .unwrap_or(1),
            buf: AlignedBuf::new(RECV_BUF),
        })
    }

    fn build(&mut self, req: &Request<'_>) -> io::Result<Vec<u8>> {
        self.seq = self.seq.wrapping_add(1);
        let mut out = AlignedBuf::new(4096);
        let bytes = out.bytes_mut();
        let ptr = bytes.as_mut_ptr() as *mut c_char;
        // SAFETY: `ptr` points at 4096 writable, aligned bytes; the header and
        // the two short strings below fit (names are limited to 256 bytes by
        // the kernel and checked here).
        let len = unsafe {
            match req {
                Request::GetGen => {
                    let nlh = ffi::nftnl_nlmsg_build_hdr(ptr, msg::GETGEN, 0, 0, self.seq);
                    (*nlh).nlmsg_len
                }
                Request::Dump(kind) => {
                    let nlh = ffi::nftnl_nlmsg_build_hdr(ptr, *kind, 0, NLM_F_DUMP, self.seq);
                    (*nlh).nlmsg_len
                }
                Request::SetElems { family, table, set } => {
                    if table.len() > 256 || set.len() > 256 {
                        return Err(io::Error::new(io::ErrorKind::InvalidInput, "name too long"));
                    }
                    let t = std::ffi::CString::new(*table)?;
                    let s = std::ffi::CString::new(*set)?;
                    let nlh = ffi::nftnl_nlmsg_build_hdr(
                        ptr,
                        msg::GETSETELEM,
                        u16::from(*family),
                        NLM_F_DUMP,
                        self.seq,
                    );
                    let obj = ffi::nftnl_set_alloc();
                    if obj.is_null() {
                        return Err(io::Error::from(io::ErrorKind::OutOfMemory));
                    }
                    ffi::nftnl_set_set_str(obj, ffi::NFTNL_SET_TABLE as u16, t.as_ptr());
                    ffi::nftnl_set_set_str(obj, ffi::NFTNL_SET_NAME as u16, s.as_ptr());
                    ffi::nftnl_set_elems_nlmsg_build_payload(nlh, obj);
                    ffi::nftnl_set_free(obj);
                    (*nlh).nlmsg_len
                }
                Request::ChainRules {
                    family,
                    table,
                    chain,
                } => {
                    if table.len() > 256 || chain.len() > 256 {
                        return Err(io::Error::new(io::ErrorKind::InvalidInput, "name too long"));
                    }
                    let t = std::ffi::CString::new(*table)?;
                    let c = std::ffi::CString::new(*chain)?;
                    let nlh = ffi::nftnl_nlmsg_build_hdr(
                        ptr,
                        msg::GETRULE,
                        u16::from(*family),
                        NLM_F_DUMP,
                        self.seq,
                    );
                    let obj = ffi::nftnl_rule_alloc();
                    if obj.is_null() {
                        return Err(io::Error::from(io::ErrorKind::OutOfMemory));
                    }
                    ffi::nftnl_rule_set_str(obj, ffi::NFTNL_RULE_TABLE as u16, t.as_ptr());
                    ffi::nftnl_rule_set_str(obj, ffi::NFTNL_RULE_CHAIN as u16, c.as_ptr());
                    ffi::nftnl_rule_nlmsg_build_payload(nlh, obj);
                    ffi::nftnl_rule_free(obj);
                    (*nlh).nlmsg_len
                }
            }
        } as usize;
        Ok(bytes[..len].to_vec())
    }

    /// Sends `req` and hands every reply message to `f` until the kernel says
    /// the answer is complete.
    pub fn request<E>(
        &mut self,
        req: &Request<'_>,
        mut f: impl FnMut(Msg<'_>) -> Result<(), E>,
    ) -> Result<Outcome, RequestError<E>> {
        let out = self.build(req).map_err(RequestError::Io)?;
        self.sock.send(&out).map_err(RequestError::Io)?;
        let seq = self.seq;
        let single = matches!(req, Request::GetGen);
        let mut outcome = Outcome::default();
        loop {
            let n = self
                .sock
                .recv_raw(self.buf.bytes_mut())
                .map_err(RequestError::Io)?;
            let buf = &self.buf.bytes_mut()[..n];
            for m in messages(buf) {
                let m = m.map_err(RequestError::Io)?;
                if m.seq() != seq {
                    continue; // a stale reply to an earlier, abandoned request
                }
                if m.flags() & NLM_F_DUMP_INTR != 0 {
                    outcome.interrupted = true;
                }
                match m.raw_type() {
                    NLMSG_DONE => return Ok(outcome),
                    NLMSG_ERROR => {
                        let code = m
                            .bytes
                            .get(16..20)
                            .map(|b| i32::from_ne_bytes(b.try_into().expect("4 bytes")))
                            .ok_or_else(|| {
                                RequestError::Io(io::Error::new(
                                    io::ErrorKind::InvalidData,
                                    "truncated netlink error",
                                ))
                            })?;
                        if code == 0 {
                            return Ok(outcome);
                        }
                        return Err(RequestError::Io(io::Error::from_raw_os_error(-code)));
                    }
                    _ => {
                        f(m).map_err(RequestError::Callback)?;
                        if single && m.flags() & NLM_F_MULTI == 0 {
                            return Ok(outcome);
                        }
                    }
                }
            }
        }
    }
}

/// `NFNLGRP_NFTABLES`: the multicast group of nf_tables change notifications.
const NFNLGRP_NFTABLES: u32 = 7;

/// A netfilter netlink socket subscribed to nf_tables change notifications
/// (needs CAP_NET_ADMIN): every committed transaction's per-object events,
/// then its `NEWGEN`.
pub struct Monitor {
    sock: mnl::Socket,
    buf: AlignedBuf,
}

impl Monitor {
    /// Opens the socket, joins `NFNLGRP_NFTABLES` and asks for a receive
    /// buffer of `rcvbuf` bytes (`SO_RCVBUFFORCE`, as `nft monitor` does,
    /// falling back to the `rmem_max`-capped `SO_RCVBUF`). A burst larger
    /// than the buffer ends a [`Monitor::recv`] with `ENOBUFS`: events were
    /// lost and only a fresh read is safe.
    pub fn open(rcvbuf: usize) -> io::Result<Monitor> {
        let sock = mnl::Socket::open(mnl::Bus::Netfilter)?;
        sock.bind(0, mnl_sys_autopid())?;
        let fd = mnl_fd(&sock);
        let size = c_int::try_from(rcvbuf).unwrap_or(c_int::MAX);
        let group = NFNLGRP_NFTABLES as c_int;
        // SAFETY: `fd` is the open socket owned by `sock`, alive for these
        // calls; each option value is a c_int on the stack, passed with its
        // size.
        unsafe {
            let setopt = |level, name, v: &c_int| {
                libc::setsockopt(
                    fd,
                    level,
                    name,
                    v as *const c_int as *const c_void,
                    std::mem::size_of::<c_int>() as libc::socklen_t,
                )
            };
            if setopt(libc::SOL_NETLINK, libc::NETLINK_ADD_MEMBERSHIP, &group) < 0 {
                return Err(io::Error::last_os_error());
            }
            if setopt(libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &size) < 0 {
                setopt(libc::SOL_SOCKET, libc::SO_RCVBUF, &size);
            }
        }
        Ok(Monitor {
            sock,
            buf: AlignedBuf::new(RECV_BUF),
        })
    }

    /// Waits for the next datagram of notifications and hands each message
    /// in it to `f`. `ENOBUFS` means events were lost.
    pub fn recv(&mut self, mut f: impl FnMut(Msg<'_>)) -> io::Result<()> {
        let n = self.sock.recv_raw(self.buf.bytes_mut())?;
        for m in messages(&self.buf.bytes_mut()[..n]) {
            f(m?);
        }
        Ok(())
    }
}

/// libmnl's "choose a port id for me" (`MNL_SOCKET_AUTOPID`).
fn mnl_sys_autopid() -> libc::pid_t {
    0
}

/// The file descriptor of an mnl socket.
fn mnl_fd(sock: &mnl::Socket) -> c_int {
    use std::os::fd::AsRawFd;
    sock.as_raw_fd()
}

/// Reads a C string returned by libnftnl (NULL = unset).
///
/// # Safety
/// `p` must be NULL or point at a NUL-terminated string that lives as long as `'a`.
unsafe fn c_str<'a>(p: *const c_char) -> Option<&'a str> {
    if p.is_null() {
        None
    } else {
        CStr::from_ptr(p).to_str().ok()
    }
}

/// Reads a data attribute returned by libnftnl (NULL = unset).
///
/// # Safety
/// `p` must be NULL or point at `len` readable bytes living as long as `'a`.
unsafe fn c_data<'a>(p: *const c_void, len: u32) -> Option<&'a [u8]> {
    if p.is_null() {
        None
    } else {
        Some(std::slice::from_raw_parts(p as *const u8, len as usize))
    }
}

// ---------------------------------------------------------------------------
// Which libnftnl is loaded (for `libversion`).

/// The file the loaded libnftnl was mapped from, symlinks resolved (e.g.
/// `/usr/lib/x86_64-linux-gnu/libnftnl.so.11.6.0`). `dladdr` names the path
/// the dynamic loader opened (usually the `libnftnl.so.11` symlink); the
/// symlink is then read from the library directory, so nothing in `/proc`
/// is needed.
pub fn libnftnl_file() -> io::Result<std::path::PathBuf> {
    let f: unsafe extern "C" fn() -> *mut ffi::nftnl_table = ffi::nftnl_table_alloc;
    let mut info = std::mem::MaybeUninit::<libc::Dl_info>::zeroed();
    // SAFETY: dladdr only reads the address, which is that of a function in
    // the loaded libnftnl, and fills `info`; it returns 0 when the address is
    // in no loaded object.
    let found = unsafe { libc::dladdr(f as *const c_void, info.as_mut_ptr()) };
    // SAFETY: zero-initialised, and filled by dladdr when `found` != 0.
    let info = unsafe { info.assume_init() };
    if found == 0 || info.dli_fname.is_null() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "dladdr does not place nftnl_table_alloc in a loaded library",
        ));
    }
    // SAFETY: dli_fname is the NUL-terminated name the loader keeps for the
    // object for as long as it stays loaded (libnftnl is never unloaded).
    let name = unsafe { CStr::from_ptr(info.dli_fname) };
    use std::os::unix::ffi::OsStrExt;
    let path = std::path::Path::new(std::ffi::OsStr::from_bytes(name.to_bytes()));
    std::fs::canonicalize(path)
}

/// Whether the loaded libnftnl exports `symbol` (looked up in the process's
/// global scope, and checked to come from the same object as libnftnl's
/// `nftnl_table_alloc`).
pub fn libnftnl_exports(symbol: &CStr) -> bool {
    let base = |addr: *const c_void| {
        let mut info = std::mem::MaybeUninit::<libc::Dl_info>::zeroed();
        // SAFETY: dladdr only reads the address and fills `info`.
        let found = unsafe { libc::dladdr(addr, info.as_mut_ptr()) };
        // SAFETY: zero-initialised, filled by dladdr when `found` != 0.
        (found != 0).then(|| unsafe { info.assume_init() }.dli_fbase)
    };
    // SAFETY: dlsym with RTLD_DEFAULT (a null handle in glibc) searches the
    // objects already loaded; `symbol` is NUL-terminated. Nothing is called
    // through the returned address.
    let p = unsafe { libc::dlsym(std::ptr::null_mut(), symbol.as_ptr()) };
    let table_alloc: unsafe extern "C" fn() -> *mut ffi::nftnl_table = ffi::nftnl_table_alloc;
    !p.is_null() && base(p).is_some() && base(p) == base(table_alloc as *const c_void)
}

/// Whether the loaded libnftnl knows the expression `name` (its
/// `nftnl_expr_alloc` finds ops for it). No message is parsed.
pub fn libnftnl_knows_expression(name: &CStr) -> bool {
    // SAFETY: nftnl_expr_alloc copies nothing from `name` beyond its NUL and
    // returns an owned expression or NULL; the expression is freed at once.
    unsafe {
        let e = ffi::nftnl_expr_alloc(name.as_ptr());
        if e.is_null() {
            return false;
        }
        ffi::nftnl_expr_free(e);
        true
    }
}

/// Why a libnftnl parse entry point gave no object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The message would make libnftnl exit or read outside it, so it was
    /// not handed over (see [`validate`]).
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// libnftnl refused the message (an expression it does not know, ...).
    #[error("rejected by libnftnl")]
    Rejected,
    /// The loaded libnftnl is not a release the validator was checked
    /// against, so no message is handed to it.
    #[error(transparent)]
    Unsupported(#[from] Unsupported),
}

/// Validates `m` for `kind`, after making sure the loaded libnftnl is one
/// the validator was checked against ([`libversion::check`]).
fn admit(kind: Kind, m: Msg<'_>) -> Result<(), ParseError> {
    libversion::check()?;
    validate::validate_as(kind, m.bytes)?;
    Ok(())
}

macro_rules! nl_object {
    ($(#[$m:meta])* $name:ident, $kind:ident, $ty:ident, $alloc:ident, $free:ident, $parse:ident,
     $is_set:ident, $get_data:ident, $get_str:ident, $get_u32:ident, $get_u64:ident) => {
        $(#[$m])*
        pub struct $name(*mut ffi::$ty);

        impl $name {
            /// Parses one message; `None` if the validator or libnftnl rejects it.
            pub fn parse(m: Msg<'_>) -> Option<Self> {
                Self::try_parse(m).ok()
            }
            /// Parses one message, validated first so that libnftnl never
            /// sees a message it would exit or read out of bounds on.
            pub fn try_parse(m: Msg<'_>) -> Result<Self, ParseError> {
                admit(Kind::$kind, m)?;
                // SAFETY: alloc returns an owned object or NULL; `m` is a
                // bounds-checked message that passed the validator, so parse
                // reads only inside it and does not exit.
                unsafe {
                    let p = ffi::$alloc();
                    if p.is_null() {
                        return Err(ParseError::Rejected);
                    }
                    let o = $name(p);
                    if ffi::$parse(m.hdr(), p) >= 0 {
                        Ok(o)
                    } else {
                        Err(ParseError::Rejected)
                    }
                }
            }
            /// Test hook: libnftnl's parser alone, the validator skipped, for
            /// tests that watch what libnftnl does in a child process.
            #[cfg(test)]
            fn parse_unvalidated(m: Msg<'_>) -> bool {
                // SAFETY: as in `try_parse`; without validation libnftnl may
                // exit, which is what the caller observes.
                unsafe {
                    let p = ffi::$alloc();
                    if p.is_null() {
                        return false;
                    }
                    let ok = ffi::$parse(m.hdr(), p) >= 0;
                    ffi::$free(p);
                    ok
                }
            }
            /// Whether the attribute is present.
            pub fn has(&self, attr: u32) -> bool {
                // SAFETY: self.0 is a live object.
                unsafe { ffi::$is_set(self.0, attr as u16) }
            }
            /// A string attribute.
            pub fn str(&self, attr: u32) -> Option<&str> {
                if !self.has(attr) {
                    return None;
                }
                // SAFETY: the string belongs to the object, which `&self` keeps alive.
                unsafe { c_str(ffi::$get_str(self.0 as _, attr as u16)) }
            }
            /// A 32-bit attribute.
            pub fn u32(&self, attr: u32) -> Option<u32> {
                // SAFETY: checked present; self.0 is live.
                self.has(attr).then(|| unsafe { ffi::$get_u32(self.0 as _, attr as u16) })
            }
            /// A 64-bit attribute.
            pub fn u64(&self, attr: u32) -> Option<u64> {
                // SAFETY: checked present; self.0 is live.
                self.has(attr).then(|| unsafe { ffi::$get_u64(self.0 as _, attr as u16) })
            }
            /// A binary attribute.
            pub fn data(&self, attr: u32) -> Option<&[u8]> {
                if !self.has(attr) {
                    return None;
                }
                let mut len = 0u32;
                // SAFETY: the data belongs to the object, kept alive by `&self`.
                unsafe { c_data(ffi::$get_data(self.0 as _, attr as u16, &mut len), len) }
            }
        }

        impl Drop for $name {
            fn drop(&mut self) {
                // SAFETY: we own the object and free it once.
                unsafe { ffi::$free(self.0) }
            }
        }
    };
}

nl_object!(
    /// A table message decoded by libnftnl.
    Table, Table, nftnl_table, nftnl_table_alloc, nftnl_table_free, nftnl_table_nlmsg_parse,
    nftnl_table_is_set, nftnl_table_get_data, nftnl_table_get_str, nftnl_table_get_u32,
    nftnl_table_get_u64
);
nl_object!(
    /// A chain message decoded by libnftnl.
    Chain, Chain, nftnl_chain, nftnl_chain_alloc, nftnl_chain_free, nftnl_chain_nlmsg_parse,
    nftnl_chain_is_set, nftnl_chain_get_data, nftnl_chain_get_str, nftnl_chain_get_u32,
    nftnl_chain_get_u64
);
nl_object!(
    /// A rule message decoded by libnftnl.
    Rule, Rule, nftnl_rule, nftnl_rule_alloc, nftnl_rule_free, nftnl_rule_nlmsg_parse,
    nftnl_rule_is_set, nftnl_rule_get_data, nftnl_rule_get_str, nftnl_rule_get_u32,
    nftnl_rule_get_u64
);
nl_object!(
    /// A set message decoded by libnftnl.
    Set, Set, nftnl_set, nftnl_set_alloc, nftnl_set_free, nftnl_set_nlmsg_parse,
    nftnl_set_is_set, nftnl_set_get_data, nftnl_set_get_str, nftnl_set_get_u32,
    nftnl_set_get_u64
);
nl_object!(
    /// A stateful object message decoded by libnftnl.
    Obj, Obj, nftnl_obj, nftnl_obj_alloc, nftnl_obj_free, nftnl_obj_nlmsg_parse,
    nftnl_obj_is_set, nftnl_obj_get_data, nftnl_obj_get_str, nftnl_obj_get_u32,
    nftnl_obj_get_u64
);
nl_object!(
    /// A flowtable message decoded by libnftnl.
    Flowtable, Flowtable, nftnl_flowtable, nftnl_flowtable_alloc, nftnl_flowtable_free,
    nftnl_flowtable_nlmsg_parse, nftnl_flowtable_is_set, nftnl_flowtable_get_data,
    nftnl_flowtable_get_str, nftnl_flowtable_get_u32, nftnl_flowtable_get_u64
);

impl Chain {
    /// A signed 32-bit attribute (the priority).
    pub fn s32(&self, attr: u32) -> Option<i32> {
        // SAFETY: checked present; self.0 is live.
        self.has(attr)
            .then(|| unsafe { ffi::nftnl_chain_get_s32(self.0, attr as u16) })
    }

    /// A NULL-terminated string array attribute (the devices).
    pub fn strings(&self, attr: u32) -> Vec<String> {
        if !self.has(attr) {
            return Vec::new();
        }
        let mut out = Vec::new();
        // SAFETY: libnftnl returns a NULL-terminated array owned by the chain.
        unsafe {
            let mut p = ffi::nftnl_chain_get_array(self.0, attr as u16);
            while !p.is_null() && !(*p).is_null() {
                if let Some(s) = c_str(*p) {
                    out.push(s.to_string());
                }
                p = p.add(1);
            }
        }
        out
    }
}

impl Flowtable {
    /// A signed 32-bit attribute (the priority).
    pub fn s32(&self, attr: u32) -> Option<i32> {
        // SAFETY: checked present; self.0 is live.
        self.has(attr)
            .then(|| unsafe { ffi::nftnl_flowtable_get_s32(self.0, attr as u16) })
    }

    /// The devices.
    pub fn devices(&self) -> Vec<String> {
        let attr = ffi::NFTNL_FLOWTABLE_DEVICES;
        if !self.has(attr) {
            return Vec::new();
        }
        let mut out = Vec::new();
        // SAFETY: libnftnl returns a NULL-terminated array owned by the flowtable.
        unsafe {
            let mut p = ffi::nftnl_flowtable_get_array(self.0, attr as u16);
            while !p.is_null() && !(*p).is_null() {
                if let Some(s) = c_str(*p) {
                    out.push(s.to_string());
                }
                p = p.add(1);
            }
        }
        out
    }
}

/// The generation id from a `NEWGEN` message.
pub fn parse_gen(m: Msg<'_>) -> Option<u32> {
    admit(Kind::Gen, m).ok()?;
    // SAFETY: owned object, freed below; `m` is bounds-checked and validated.
    unsafe {
        let g = ffi::nftnl_gen_alloc();
        if g.is_null() {
            return None;
        }
        let ok = ffi::nftnl_gen_nlmsg_parse(m.hdr(), g) >= 0;
        let id = (ok && ffi::nftnl_gen_is_set(g, ffi::NFTNL_GEN_ID as u16))
            .then(|| ffi::nftnl_gen_get_u32(g, ffi::NFTNL_GEN_ID as u16));
        ffi::nftnl_gen_free(g);
        id
    }
}

/// One expression of a rule (or nested in a dynset), borrowed from its owner.
#[derive(Clone, Copy)]
pub struct Expr<'a> {
    ptr: *mut ffi::nftnl_expr,
    _owner: PhantomData<&'a ()>,
}

impl<'a> Expr<'a> {
    /// The expression's kernel name (`payload`, `cmp`, ...).
    pub fn name(&self) -> &'a str {
        // SAFETY: every parsed expression has a name owned by its ops table.
        unsafe {
            c_str(ffi::nftnl_expr_get_str(
                self.ptr,
                ffi::NFTNL_EXPR_NAME as u16,
            ))
        }
        .unwrap_or("")
    }
    /// Whether the attribute is present.
    pub fn has(&self, attr: u32) -> bool {
        // SAFETY: live expression.
        unsafe { ffi::nftnl_expr_is_set(self.ptr, attr as u16) }
    }
    /// A binary attribute.
    pub fn data(&self, attr: u32) -> Option<&'a [u8]> {
        if !self.has(attr) {
            return None;
        }
        let mut len = 0u32;
        // SAFETY: data owned by the expression, which lives for 'a.
        unsafe { c_data(ffi::nftnl_expr_get(self.ptr, attr as u16, &mut len), len) }
    }
    /// A string attribute.
    pub fn str(&self, attr: u32) -> Option<&'a str> {
        if !self.has(attr) {
            return None;
        }
        // SAFETY: string owned by the expression, which lives for 'a.
        unsafe { c_str(ffi::nftnl_expr_get_str(self.ptr, attr as u16)) }
    }
    /// An integer attribute of any width up to 64 bits, read by its length.
    pub fn uint(&self, attr: u32) -> Option<u64> {
        let d = self.data(attr)?;
        Some(match d.len() {
            1 => u64::from(d[0]),
            2 => u64::from(u16::from_ne_bytes(d.try_into().ok()?)),
            4 => u64::from(u32::from_ne_bytes(d.try_into().ok()?)),
            8 => u64::from_ne_bytes(d.try_into().ok()?),
            _ => return None,
        })
    }
    /// A 32-bit attribute (or narrower, widened).
    pub fn u32(&self, attr: u32) -> Option<u32> {
        self.uint(attr).map(|v| v as u32)
    }
    /// Expressions nested inside this one (dynset's stateful expressions);
    /// empty for any other expression.
    pub fn nested(&self) -> Vec<Expr<'a>> {
        // libnftnl reads any expression's private data as a dynset's.
        if self.name() != "dynset" {
            return Vec::new();
        }
        unsafe extern "C" fn collect(e: *mut ffi::nftnl_expr, data: *mut c_void) -> c_int {
            // SAFETY: `data` is the Vec passed below, alive for the call.
            let v = unsafe { &mut *(data as *mut Vec<*mut ffi::nftnl_expr>) };
            v.push(e);
            0
        }
        let mut v: Vec<*mut ffi::nftnl_expr> = Vec::new();
        // SAFETY: the callback only records pointers owned by self.
        unsafe {
            ffi::nftnl_expr_expr_foreach(self.ptr, Some(collect), &mut v as *mut _ as *mut c_void);
        }
        v.into_iter()
            .map(|ptr| Expr {
                ptr,
                _owner: PhantomData,
            })
            .collect()
    }
}

impl Rule {
    /// The rule's expressions in order.
    pub fn exprs(&self) -> Vec<Expr<'_>> {
        let mut out = Vec::new();
        // SAFETY: the iterator walks expressions owned by the rule, which
        // `&self` keeps alive; it is destroyed before returning.
        unsafe {
            let it = ffi::nftnl_expr_iter_create(self.0);
            if it.is_null() {
                return out;
            }
            loop {
                let e = ffi::nftnl_expr_iter_next(it);
                if e.is_null() {
                    break;
                }
                out.push(Expr {
                    ptr: e,
                    _owner: PhantomData,
                });
            }
            ffi::nftnl_expr_iter_destroy(it);
        }
        out
    }
}

/// One set element, borrowed from a per-message element list.
pub struct Elem<'a> {
    ptr: *mut ffi::nftnl_set_elem,
    _owner: PhantomData<&'a ()>,
}

impl<'a> Elem<'a> {
    /// Whether the attribute is present.
    pub fn has(&self, attr: u32) -> bool {
        // SAFETY: live element.
        unsafe { ffi::nftnl_set_elem_is_set(self.ptr, attr as u16) }
    }
    /// A binary attribute.
    pub fn data(&self, attr: u32) -> Option<&'a [u8]> {
        if !self.has(attr) {
            return None;
        }
        let mut len = 0u32;
        // SAFETY: data owned by the element list, alive for 'a.
        unsafe {
            c_data(
                ffi::nftnl_set_elem_get(self.ptr, attr as u16, &mut len),
                len,
            )
        }
    }
    /// A string attribute.
    pub fn str(&self, attr: u32) -> Option<&'a str> {
        if !self.has(attr) {
            return None;
        }
        // SAFETY: owned by the element list, alive for 'a.
        unsafe { c_str(ffi::nftnl_set_elem_get_str(self.ptr, attr as u16)) }
    }
    /// A 32-bit attribute.
    pub fn u32(&self, attr: u32) -> Option<u32> {
        // SAFETY: checked present; live element.
        self.has(attr)
            .then(|| unsafe { ffi::nftnl_set_elem_get_u32(self.ptr, attr as u16) })
    }
    /// A 64-bit attribute.
    pub fn u64(&self, attr: u32) -> Option<u64> {
        // SAFETY: checked present; live element.
        self.has(attr)
            .then(|| unsafe { ffi::nftnl_set_elem_get_u64(self.ptr, attr as u16) })
    }
}

/// Parses the elements of one `NEWSETELEM` message and hands each to `f`.
/// libnftnl's copies are freed when the message is done, so memory stays
/// bounded by one message however large the set.
pub fn for_each_elem(m: Msg<'_>, mut f: impl FnMut(&Elem<'_>)) -> Result<(), ParseError> {
    admit(Kind::SetElems, m)?;
    // SAFETY: a fresh set owns the parsed elements; the iterator and the set
    // are freed before returning and no Elem escapes the closure. `m` passed
    // the validator.
    unsafe {
        let s = ffi::nftnl_set_alloc();
        if s.is_null() {
            return Err(ParseError::Rejected);
        }
        let owner = Set(s);
        if ffi::nftnl_set_elems_nlmsg_parse(m.hdr(), s) < 0 {
            return Err(ParseError::Rejected);
        }
        let it = ffi::nftnl_set_elems_iter_create(s);
        if it.is_null() {
            return Err(ParseError::Rejected);
        }
        // `iter_next` returns the current element and advances (NULL at the end).
        loop {
            let e = ffi::nftnl_set_elems_iter_next(it);
            if e.is_null() {
                break;
            }
            f(&Elem {
                ptr: e,
                _owner: PhantomData,
            });
        }
        ffi::nftnl_set_elems_iter_destroy(it);
        drop(owner);
    }
    Ok(())
}

/// Test hook: hands `m` to libnftnl's parser for `kind` without validating
/// it, to check in a child process that libnftnl exits exactly where the
/// validator says it would.
#[cfg(test)]
pub(crate) fn parse_unvalidated(kind: Kind, m: Msg<'_>) -> bool {
    match kind {
        Kind::Table => Table::parse_unvalidated(m),
        Kind::Chain => Chain::parse_unvalidated(m),
        Kind::Rule => Rule::parse_unvalidated(m),
        Kind::Set => Set::parse_unvalidated(m),
        Kind::Obj => Obj::parse_unvalidated(m),
        Kind::Flowtable => Flowtable::parse_unvalidated(m),
        // SAFETY: owned objects, freed here; `m` is bounds-checked.
        Kind::Gen => unsafe {
            let g = ffi::nftnl_gen_alloc();
            let ok = ffi::nftnl_gen_nlmsg_parse(m.hdr(), g) >= 0;
            ffi::nftnl_gen_free(g);
            ok
        },
        Kind::SetElems => unsafe {
            let s = ffi::nftnl_set_alloc();
            let ok = ffi::nftnl_set_elems_nlmsg_parse(m.hdr(), s) >= 0;
            ffi::nftnl_set_free(s);
            ok
        },
    }
}

/// Parses a message with every libnftnl parser, for robustness tests: none
/// may crash on any bounds-checked input.
#[cfg(test)]
pub fn parse_all_for_fuzzing(m: Msg<'_>) {
    let _ = Table::parse(m);
    let _ = Chain::parse(m).map(|c| c.strings(ffi::NFTNL_CHAIN_DEVICES));
    if let Some(r) = Rule::parse(m) {
        for e in r.exprs() {
            let _ = (e.name(), e.nested());
        }
    }
    let _ = Set::parse(m);
    let _ = Obj::parse(m);
    let _ = Flowtable::parse(m).map(|f| f.devices());
    let _ = parse_gen(m);
    let _ = for_each_elem(m, |e| {
        let _ = e.data(ffi::NFTNL_SET_ELEM_KEY);
    });
}

/// The legacy x_tables interface (iptables-legacy, ip6tables-legacy): the
/// two get-sockopts `iptables-legacy-save` reads a table with. The bytes
/// are handed out as they come; [`crate::nft::legacy`] decodes them
/// without `unsafe`.
pub mod xtables {
    use libc::{c_int, c_void, socklen_t};
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    /// `IPT_SO_GET_INFO` / `IP6T_SO_GET_INFO` (`IPT_BASE_CTL`).
    const SO_GET_INFO: c_int = 64;
    /// `IPT_SO_GET_ENTRIES` / `IP6T_SO_GET_ENTRIES`.
    const SO_GET_ENTRIES: c_int = 65;
    /// `XT_TABLE_MAXNAMELEN`.
    pub const TABLE_MAXNAMELEN: usize = 32;
    /// `NF_INET_NUMHOOKS`.
    pub const NUMHOOKS: usize = 5;

    /// `struct ipt_getinfo` (and `struct ip6t_getinfo`, the same layout).
    #[repr(C)]
    #[derive(Clone, Copy, Debug)]
    pub struct GetInfo {
        /// The table's name, NUL-terminated.
        pub name: [u8; TABLE_MAXNAMELEN],
        /// Bit `h` set: the table has a built-in chain at hook `h`.
        pub valid_hooks: u32,
        /// Byte offset of each hook's first entry.
        pub hook_entry: [u32; NUMHOOKS],
        /// Byte offset of each hook's policy entry.
        pub underflow: [u32; NUMHOOKS],
        /// Entries in the table (rules, policies, chain heads and ends,
        /// the final error entry).
        pub num_entries: u32,
        /// Bytes of the entries.
        pub size: u32,
    }

    /// Where the entries start in `struct ipt_get_entries`: after the name
    /// and size, at the alignment of `struct ipt_entry` (its counters are
    /// `u64`s).
    pub const ENTRIES_OFFSET: usize =
        (TABLE_MAXNAMELEN + 4).next_multiple_of(std::mem::align_of::<u64>());

    /// A socket of the family the tables belong to. A UDP socket reaches
    /// the same get-sockopts as `iptables`' raw one (`ip_getsockopt` and
    /// `ipv6_getsockopt` hand unknown options of their level to netfilter)
    /// and needs no `CAP_NET_RAW`; the kernel checks `CAP_NET_ADMIN` on
    /// each request.
    fn socket(v6: bool) -> io::Result<OwnedFd> {
        let family = if v6 { libc::AF_INET6 } else { libc::AF_INET };
        // SAFETY: socket(2) takes no pointers; the result is checked.
        let fd = unsafe { libc::socket(family, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    fn getsockopt(fd: &OwnedFd, v6: bool, opt: c_int, buf: &mut [u8]) -> io::Result<usize> {
        let level = if v6 { libc::SOL_IPV6 } else { libc::SOL_IP };
        let mut len = socklen_t::try_from(buf.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "buffer too large"))?;
        // SAFETY: `buf` is writable for `len` bytes, and the kernel writes
        // at most `len` bytes and stores the length it wrote in `len`.
        let r = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                level,
                opt,
                buf.as_mut_ptr() as *mut c_void,
                &mut len,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(len as usize)
    }

    /// The info of the table `name` of the current network namespace
    /// (`v6`: ip6tables). Ask only for tables the kernel lists
    /// (`/proc/net/ip_tables_names`): asking for another creates it.
    pub fn info(v6: bool, name: &str) -> io::Result<GetInfo> {
        let fd = socket(v6)?;
        info_on(&fd, v6, name)
    }

    fn info_on(fd: &OwnedFd, v6: bool, name: &str) -> io::Result<GetInfo> {
        if name.len() >= TABLE_MAXNAMELEN || name.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "table name too long",
            ));
        }
        let mut buf = [0u8; std::mem::size_of::<GetInfo>()];
        buf[..name.len()].copy_from_slice(name.as_bytes());
        let n = getsockopt(fd, v6, SO_GET_INFO, &mut buf)?;
        if n != buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("GET_INFO returned {n} bytes, not {}", buf.len()),
            ));
        }
        let word = |i: usize| u32::from_ne_bytes(buf[i..i + 4].try_into().expect("4 bytes"));
        let mut info = GetInfo {
            name: [0; TABLE_MAXNAMELEN],
            valid_hooks: word(32),
            hook_entry: [0; NUMHOOKS],
            underflow: [0; NUMHOOKS],
            num_entries: word(32 + 4 + 8 * NUMHOOKS),
            size: word(32 + 4 + 8 * NUMHOOKS + 4),
        };
        info.name.copy_from_slice(&buf[..TABLE_MAXNAMELEN]);
        for h in 0..NUMHOOKS {
            info.hook_entry[h] = word(36 + 4 * h);
            info.underflow[h] = word(36 + 4 * NUMHOOKS + 4 * h);
        }
        Ok(info)
    }

    /// The info and entries of the table `name` (see [`info`]). The
    /// entries are `struct ipt_entry` (or `ip6t_entry`) records, as the
    /// kernel lays them out; [`crate::nft::legacy`] checks every offset
    /// before reading them. Retries when the table changes in between.
    pub fn entries(v6: bool, name: &str) -> io::Result<(GetInfo, Vec<u8>)> {
        let fd = socket(v6)?;
        for _ in 0..10 {
            let info = info_on(&fd, v6, name)?;
            let size = info.size as usize;
            let mut buf = vec![0u8; ENTRIES_OFFSET + size];
            buf[..name.len()].copy_from_slice(name.as_bytes());
            buf[TABLE_MAXNAMELEN..TABLE_MAXNAMELEN + 4].copy_from_slice(&info.size.to_ne_bytes());
            match getsockopt(&fd, v6, SO_GET_ENTRIES, &mut buf) {
                Ok(n) if n == buf.len() => {
                    buf.drain(..ENTRIES_OFFSET);
                    return Ok((info, buf));
                }
                Ok(n) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("GET_ENTRIES returned {n} bytes, not {}", buf.len()),
                    ))
                }
                // The table changed size between the two calls.
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::Interrupted,
            "the legacy table kept changing while it was read",
        ))
    }
}

/// The kernel's timezone (`sys_tz.tz_minuteswest`: minutes west of UTC),
/// which nft `meta day` and xt `time --kerneltz` use: `gettimeofday`'s
/// second argument. 0 when it cannot be read.
pub fn kernel_minutes_west() -> i32 {
    /// `struct timezone` (the `libc` crate keeps it opaque).
    #[repr(C)]
    struct Timezone {
        minuteswest: c_int,
        dsttime: c_int,
    }
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut tz = Timezone {
        minuteswest: 0,
        dsttime: 0,
    };
    // SAFETY: both pointers are to live, writable structs laid out as
    // gettimeofday expects (`struct timeval`, `struct timezone`).
    let rc = unsafe { libc::gettimeofday(&mut tv, (&mut tz as *mut Timezone).cast()) };
    let _ = tz.dsttime;
    if rc == 0 {
        tz.minuteswest
    } else {
        0
    }
}
