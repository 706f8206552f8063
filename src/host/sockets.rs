//! Listening TCP and bound UDP sockets of the current network namespace,
//! over sock_diag, with the systemd unit they belong to (from the socket's
//! cgroup) and their owning processes from `/proc`.
//!
//! sock_diag answers for the namespace the socket asking lives in, so `ip
//! netns exec NS portwarden listeners` lists `NS`'s sockets. It reports
//! each socket's cgroup id, which [`super::cgroup`] maps to a cgroup path
//! and a unit with no capability needed. It does not say which process
//! holds a socket: `/proc/[pid]/fd/*` is scanned once per read for
//! `socket:[INODE]` links, which for other users' processes needs
//! CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH (and a `/proc` that shows them:
//! not under `ProtectProc=invisible`); without them the unit alone names
//! the owner. That scan sees the processes of every network namespace,
//! which is harmless: only inodes sock_diag reported for this namespace
//! are looked up.

use super::cgroup::{self, unit_of_path};
use super::netlink::Conn;
use super::HostError;
use crate::eval::L4;
use netlink_packet_core::{NlasIterator, Parseable, NLA_TYPE_MASK};
use netlink_packet_sock_diag::constants::{
    AF_INET, AF_INET6, INET_DIAG_SKV6ONLY, IPPROTO_TCP, IPPROTO_UDP, SOCK_DIAG_BY_FAMILY,
};
use netlink_packet_sock_diag::inet::{
    ExtensionFlags, InetRequest, InetResponseHeader, SocketId, StateFlags,
};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_sys::protocols::NETLINK_SOCK_DIAG;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

const WHAT: &str = "reading sockets (sock_diag)";

/// Length of `struct inet_diag_msg`; attributes follow it.
const INET_DIAG_MSG_LEN: usize = 72;

/// `INET_DIAG_CGROUP_ID` (linux/inet_diag.h): the socket's cgroup2 id, a
/// u64 in host order; sent with every socket since Linux 5.9 (not in
/// netlink-packet-sock-diag's constants).
const INET_DIAG_CGROUP_ID: u16 = 21;

/// A listening TCP socket or a bound UDP socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    /// `tcp` or `udp`.
    pub proto: L4,
    /// Bound address; the unspecified address (0.0.0.0 / ::) for a wildcard bind.
    pub addr: IpAddr,
    /// Bound port.
    pub port: u16,
    /// For an IPv6 wildcard socket: true if it does NOT also accept IPv4 (IPV6_V6ONLY).
    pub v6only: bool,
    /// SO_BINDTODEVICE interface name, if bound to one.
    pub dev: Option<String>,
    /// Owner of the socket.
    pub uid: u32,
    /// Socket inode (`socket:[INODE]` in `/proc/PID/fd`).
    pub inode: u64,
    /// The id of the cgroup the socket was created in, as sock_diag reports
    /// it (`ss -e`: `cgroup:`); none from kernels before 5.9.
    #[serde(default)]
    pub cgroup_id: Option<u64>,
    /// That cgroup's path in the cgroup2 hierarchy
    /// (`/system.slice/sshd.service`), when a cgroup2 mount shows it.
    #[serde(default)]
    pub cgroup: Option<String>,
    /// The systemd unit the socket belongs to: from its cgroup, else from
    /// the owning process's cgroup. `init.scope` means systemd itself made
    /// the socket (socket activation).
    #[serde(default)]
    pub unit: Option<String>,
    /// When `unit` is a unit of a user's service manager
    /// (`user@UID.service`), that UID: the unit is `systemctl --user`'s.
    #[serde(default)]
    pub unit_user: Option<u32>,
    /// Owning process, when /proc shows one (first pid found holding the inode).
    pub process: Option<Process>,
}

/// The process holding a socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    /// Process id (the lowest of the processes holding the socket).
    pub pid: u32,
    /// `/proc/PID/comm`.
    pub command: String,
    /// systemd unit from /proc/PID/cgroup (e.g. "sshd.service")
    pub unit: Option<String>,
}

/// Who owns a socket, in words: `sshd (pid 123, sshd.service)` when the
/// process is known, else the unit (`sshd.service`, `app.service of user
/// 1000`, `systemd (init.scope, socket activation)`); `None` when neither
/// is known.
pub fn owner_text(
    process: Option<&Process>,
    unit: Option<&str>,
    user: Option<u32>,
) -> Option<String> {
    let unit = match (unit, user) {
        (Some(u), Some(uid)) => Some(format!("{u} of user {uid}")),
        (Some(u), None) => Some(u.to_string()),
        (None, _) => process.and_then(|p| p.unit.clone()),
    };
    match process {
        Some(p) => {
            let unit = unit.map(|u| format!(", {u}")).unwrap_or_default();
            Some(format!("{} (pid {}{unit})", p.command, p.pid))
        }
        None if unit.as_deref() == Some("init.scope") => {
            Some("systemd (init.scope, socket activation)".to_string())
        }
        None => unit,
    }
}

impl Listener {
    /// Sets the socket's cgroup path and the unit it names; without a path
    /// (or a unit in it), the unit of the owning process, if known.
    pub fn set_cgroup(&mut self, path: Option<String>) {
        let unit = path.as_deref().and_then(unit_of_path);
        self.cgroup = path;
        match unit {
            Some(u) => {
                self.unit = Some(u.name);
                self.unit_user = u.user;
            }
            None => {
                self.unit = self.process.as_ref().and_then(|p| p.unit.clone());
                self.unit_user = None;
            }
        }
    }

    /// Whether a connection to (daddr, iif) on this family reaches this socket (wildcard, v6only, bound device).
    ///
    /// The socket's address must be `daddr` or the wildcard of `daddr`'s
    /// family; an IPv6 wildcard socket without `v6only` also takes IPv4, and
    /// an IPv6 socket bound to a v4-mapped address (`::ffff:a.b.c.d`) takes
    /// IPv4 to `a.b.c.d`. A socket bound to a device takes only what arrives
    /// on it (`iif`). The protocol is the caller's to compare; that a more
    /// specific socket on the same port would be chosen first, and VRF
    /// (`tcp_l3mdev_accept`) are not considered.
    pub fn accepts(&self, daddr: IpAddr, iif: &str) -> bool {
        if let Some(dev) = &self.dev {
            if dev != iif {
                return false;
            }
        }
        match (self.addr, daddr) {
            (IpAddr::V4(a), IpAddr::V4(d)) => a.is_unspecified() || a == d,
            (IpAddr::V6(a), IpAddr::V6(d)) => a.is_unspecified() || a == d,
            (IpAddr::V6(a), IpAddr::V4(d)) => {
                if a.is_unspecified() {
                    !self.v6only
                } else {
                    !self.v6only && a.to_ipv4_mapped() == Some(d)
                }
            }
            (IpAddr::V4(_), IpAddr::V6(_)) => false,
        }
    }

    /// Not bound to loopback only (127.0.0.0/8, ::1) and not to lo.
    pub fn is_exposed(&self) -> bool {
        let loopback = match self.addr {
            IpAddr::V4(a) => a.is_loopback(),
            IpAddr::V6(a) => a.is_loopback() || a.to_ipv4_mapped().is_some_and(|m| m.is_loopback()),
        };
        !loopback && self.dev.as_deref() != Some("lo")
    }

    /// `0.0.0.0:22`, `[::]:22`.
    pub fn endpoint(&self) -> String {
        match self.addr {
            IpAddr::V4(a) => format!("{a}:{}", self.port),
            IpAddr::V6(a) => format!("[{a}]:{}", self.port),
        }
    }

    /// Who owns the socket, in words ([`owner_text`]).
    pub fn owner(&self) -> Option<String> {
        owner_text(self.process.as_ref(), self.unit.as_deref(), self.unit_user)
    }

    fn sort_key(&self) -> (u8, u16, IpAddr, Option<&str>, u64) {
        (
            self.proto.proto(),
            self.port,
            self.addr,
            self.dev.as_deref(),
            self.inode,
        )
    }
}

/// One line: `tcp  0.0.0.0:22  sshd (pid 123, sshd.service)`, then
/// `v6only` and `dev NAME` when set; without a process, the unit if known,
/// its uid and inode.
impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proto = match self.proto {
            L4::Tcp => "tcp",
            L4::Udp => "udp",
        };
        write!(f, "{proto:<4} {:<22} ", self.endpoint())?;
        match (self.owner(), &self.process) {
            (Some(o), Some(_)) => write!(f, "{o}")?,
            (Some(o), None) => write!(f, "{o} (uid {}, inode {})", self.uid, self.inode)?,
            (None, _) => write!(f, "? (uid {}, inode {})", self.uid, self.inode)?,
        }
        if self.v6only {
            write!(f, "  v6only")?;
        }
        if let Some(d) = &self.dev {
            write!(f, "  dev {d}")?;
        }
        Ok(())
    }
}

/// TCP listeners and bound UDP sockets, v4 and v6, of the current netns.
///
/// TCP: sockets in `LISTEN`. UDP: every socket with a local port, in any
/// state (an unconnected bound socket shows `CLOSE`; a connected one,
/// `ESTABLISHED`, is listed too). Sorted by protocol, port, address.
pub fn read_listeners() -> Result<Vec<Listener>, HostError> {
    let names = super::routes::interface_names()?;
    let mut conn = Conn::open(NETLINK_SOCK_DIAG, WHAT)?;
    let mut out = Vec::new();
    for (proto, protocol, states) in [
        (L4::Tcp, IPPROTO_TCP, StateFlags::LISTEN),
        (L4::Udp, IPPROTO_UDP, StateFlags::all()),
    ] {
        for family in [AF_INET, AF_INET6] {
            let req = InetRequest {
                family,
                protocol,
                extensions: ExtensionFlags::empty(),
                states: states.clone(),
                socket_id: if family == AF_INET {
                    SocketId::new_v4()
                } else {
                    SocketId::new_v6()
                },
            };
            // A dump of sockets is not flagged as interrupted: sockets come
            // and go while it runs, and each is reported as it was.
            conn.dump(SockDiagMessage::InetRequest(req), |kind, payload| {
                if kind != SOCK_DIAG_BY_FAMILY {
                    return Ok(());
                }
                if let Some(l) = decode_socket(payload, proto, family, &names)? {
                    out.push(l);
                }
                Ok(())
            })?;
        }
    }
    let ids: HashSet<u64> = out.iter().filter_map(|l| l.cgroup_id).collect();
    let paths = cgroup::system_paths(&ids);
    let inodes: HashSet<u64> = out.iter().map(|l| l.inode).filter(|&i| i != 0).collect();
    let owners = socket_owners(Path::new("/proc"), &inodes);
    let mut procs: HashMap<u32, Option<Process>> = HashMap::new();
    for l in &mut out {
        if let Some(&pid) = owners.get(&l.inode) {
            l.process = procs
                .entry(pid)
                .or_insert_with(|| process_info(Path::new("/proc"), pid))
                .clone();
        }
        l.set_cgroup(l.cgroup_id.and_then(|id| paths.get(&id).cloned()));
    }
    out.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    Ok(out)
}

/// One `inet_diag_msg`, or `None` for a socket this list leaves out (UDP
/// without a local port, another family).
pub(crate) fn decode_socket(
    payload: &[u8],
    proto: L4,
    family: u8,
    names: &HashMap<u32, String>,
) -> Result<Option<Listener>, HostError> {
    let what = "decoding a sock_diag message";
    if payload.len() < INET_DIAG_MSG_LEN {
        return Err(HostError::protocol(
            what,
            format!("{} bytes, shorter than inet_diag_msg", payload.len()),
        ));
    }
    let h = InetResponseHeader::parse(payload).map_err(|e| HostError::protocol(what, e))?;
    if h.family != family || h.socket_id.source_port == 0 {
        return Ok(None);
    }
    let mut v6only = false;
    let mut cgroup_id = None;
    for nla in NlasIterator::new(&payload[INET_DIAG_MSG_LEN..]).map_while(Result::ok) {
        match nla.kind() & NLA_TYPE_MASK {
            INET_DIAG_SKV6ONLY => v6only = nla.value().first().is_some_and(|&b| b != 0),
            INET_DIAG_CGROUP_ID => {
                cgroup_id = nla
                    .value()
                    .get(..8)
                    .map(|b| u64::from_ne_bytes(b.try_into().expect("8 bytes")));
            }
            _ => {}
        }
    }
    let mut addr = h.socket_id.source_address;
    if family == AF_INET {
        // The kernel fills only the first 4 of 16 bytes; be strict anyway.
        if let IpAddr::V6(a) = addr {
            addr = IpAddr::V4(a.to_ipv4().unwrap_or(Ipv4Addr::UNSPECIFIED));
        }
    }
    let dev = match h.socket_id.interface_id {
        0 => None,
        i => Some(names.get(&i).cloned().unwrap_or_else(|| i.to_string())),
    };
    Ok(Some(Listener {
        proto,
        addr,
        port: h.socket_id.source_port,
        v6only: family == AF_INET6 && v6only,
        dev,
        uid: h.uid,
        inode: u64::from(h.inode),
        cgroup_id,
        cgroup: None,
        unit: None,
        unit_user: None,
        process: None,
    }))
}

/// Inode → the lowest pid holding `socket:[INODE]`, for the wanted inodes.
/// Processes whose fds cannot be read (gone, or not ours to see) are
/// skipped.
pub(crate) fn socket_owners(proc_root: &Path, wanted: &HashSet<u64>) -> HashMap<u64, u32> {
    let mut owners = HashMap::new();
    if wanted.is_empty() {
        return owners;
    }
    let Ok(dir) = fs::read_dir(proc_root) else {
        return owners;
    };
    let mut pids: Vec<u32> = dir
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    for pid in pids {
        let Ok(fds) = fs::read_dir(proc_root.join(pid.to_string()).join("fd")) else {
            continue;
        };
        for fd in fds.filter_map(Result::ok) {
            let Ok(target) = fs::read_link(fd.path()) else {
                continue;
            };
            if let Some(inode) = target.to_str().and_then(socket_inode) {
                if wanted.contains(&inode) {
                    owners.entry(inode).or_insert(pid);
                }
            }
        }
        if owners.len() == wanted.len() {
            break;
        }
    }
    owners
}

/// `socket:[12345]` → 12345.
fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

fn process_info(proc_root: &Path, pid: u32) -> Option<Process> {
    let dir = proc_root.join(pid.to_string());
    let command = fs::read_to_string(dir.join("comm")).ok()?;
    let unit = fs::read_to_string(dir.join("cgroup"))
        .ok()
        .and_then(|c| unit_from_cgroup(&c));
    Some(Process {
        pid,
        command: command.trim_end_matches('\n').to_string(),
        unit,
    })
}

/// The systemd unit in a `/proc/PID/cgroup`: the last path component
/// ending in `.service`, `.socket` or `.scope`, from the unified hierarchy
/// (`0::`) or else systemd's own (`name=systemd`).
pub fn unit_from_cgroup(text: &str) -> Option<String> {
    let path_of = |want: &dyn Fn(&str, &str) -> bool| {
        text.lines().find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            want(id, controllers).then_some(path)
        })
    };
    let unified = path_of(&|id, c| id == "0" && c.is_empty());
    let systemd = path_of(&|_, c| c == "name=systemd");
    [unified, systemd]
        .into_iter()
        .flatten()
        .find_map(|path| unit_of_path(path).map(|u| u.name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    fn listener(addr: &str, v6only: bool, dev: Option<&str>) -> Listener {
        Listener {
            proto: L4::Tcp,
            addr: addr.parse().unwrap(),
            port: 2500,
            v6only,
            dev: dev.map(str::to_string),
            uid: 0,
            inode: 1,
            cgroup_id: None,
            cgroup: None,
            unit: None,
            unit_user: None,
            process: None,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn host_accepts_wildcards_and_families() {
        let any4 = listener("0.0.0.0", false, None);
        assert!(any4.accepts(ip("192.0.2.1"), "pw-pub"));
        assert!(any4.accepts(ip("127.0.0.1"), "lo"));
        assert!(!any4.accepts(ip("2001:db8:1::1"), "pw-pub"));

        let dual = listener("::", false, None);
        assert!(dual.accepts(ip("2001:db8:1::1"), "pw-pub"));
        assert!(dual.accepts(ip("10.99.0.1"), "pw-priv"));

        let v6only = listener("::", true, None);
        assert!(v6only.accepts(ip("fd00:99::1"), "pw-priv"));
        assert!(!v6only.accepts(ip("10.99.0.1"), "pw-priv"));

        let one = listener("10.99.0.1", false, None);
        assert!(one.accepts(ip("10.99.0.1"), "pw-pub"));
        assert!(!one.accepts(ip("192.0.2.1"), "pw-pub"));
        assert!(!one.accepts(ip("::ffff:10.99.0.1"), "pw-pub"));

        let one6 = listener("2001:db8:1::1", false, None);
        assert!(one6.accepts(ip("2001:db8:1::1"), "pw-pub"));
        assert!(!one6.accepts(ip("2001:db8:1::2"), "pw-pub"));
        assert!(!one6.accepts(ip("192.0.2.1"), "pw-pub"));

        let mapped = listener("::ffff:10.99.0.1", false, None);
        assert!(mapped.accepts(ip("10.99.0.1"), "pw-priv"));
        assert!(!mapped.accepts(ip("10.99.0.2"), "pw-priv"));
    }

    #[test]
    fn host_accepts_bound_device() {
        let l = listener("0.0.0.0", false, Some("pw-priv"));
        assert!(l.accepts(ip("10.99.0.1"), "pw-priv"));
        assert!(!l.accepts(ip("10.99.0.1"), "pw-pub"));
        assert!(!l.accepts(ip("192.0.2.1"), "pw-pub"));
        let l6 = listener("::", false, Some("pw-pub"));
        assert!(l6.accepts(ip("192.0.2.1"), "pw-pub"));
        assert!(!l6.accepts(ip("2001:db8:1::1"), "pw-priv"));
    }

    #[test]
    fn host_is_exposed() {
        assert!(listener("0.0.0.0", false, None).is_exposed());
        assert!(listener("::", true, None).is_exposed());
        assert!(listener("10.99.0.1", false, None).is_exposed());
        assert!(listener("0.0.0.0", false, Some("pw-priv")).is_exposed());
        assert!(!listener("127.0.0.1", false, None).is_exposed());
        assert!(!listener("127.0.0.53", false, None).is_exposed());
        assert!(!listener("::1", false, None).is_exposed());
        assert!(!listener("::ffff:127.0.0.1", false, None).is_exposed());
        assert!(!listener("0.0.0.0", false, Some("lo")).is_exposed());
        assert!(!listener("::", false, Some("lo")).is_exposed());
    }

    #[test]
    fn host_unit_from_cgroup() {
        let u = |s| unit_from_cgroup(s);
        assert_eq!(
            u("0::/system.slice/sshd.service\n").as_deref(),
            Some("sshd.service")
        );
        assert_eq!(
            u("0::/user.slice/user-1000.slice/session-3.scope\n").as_deref(),
            Some("session-3.scope")
        );
        assert_eq!(
            u("0::/system.slice/docker.socket\n").as_deref(),
            Some("docker.socket")
        );
        // Delegated subtree below a unit: the last unit-like component.
        assert_eq!(
            u("0::/system.slice/veeamservice.service/payload\n").as_deref(),
            Some("veeamservice.service")
        );
        assert_eq!(
            u("0::/system.slice/containerd.service/abc.scope\n").as_deref(),
            Some("abc.scope")
        );
        // Hybrid hierarchy: unified at the root, systemd's own has the unit.
        let hybrid =
            "12:pids:/system.slice/cron.service\n1:name=systemd:/system.slice/cron.service\n0::/\n";
        assert_eq!(u(hybrid).as_deref(), Some("cron.service"));
        // A container: no unit anywhere.
        assert_eq!(u("9:name=systemd:/\n4:memory:/x\n0::/\n"), None);
        assert_eq!(u(""), None);
        assert_eq!(u("garbage without colons"), None);
        assert_eq!(u("0::/.service"), None);
        // Controller lines are not systemd's: ignored.
        assert_eq!(u("4:memory:/system.slice/foo.service\n0::/\n"), None);
    }

    #[test]
    fn host_socket_inode_links() {
        assert_eq!(socket_inode("socket:[12345]"), Some(12345));
        assert_eq!(socket_inode("socket:[]"), None);
        assert_eq!(socket_inode("pipe:[12345]"), None);
        assert_eq!(socket_inode("/dev/null"), None);
        assert_eq!(socket_inode("socket:[12x]"), None);
    }

    /// A fake /proc: two processes share one socket; the lower pid wins;
    /// unreadable and non-numeric entries are skipped.
    #[test]
    fn host_socket_owners_fake_proc() {
        let root = std::env::temp_dir().join(format!("pw-proc-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        for (pid, links) in [
            ("300", &["socket:[7]", "socket:[8]"][..]),
            ("20", &["socket:[7]", "/dev/null"][..]),
            ("self", &["socket:[8]"][..]),
            ("4000", &[][..]),
        ] {
            let fd = root.join(pid).join("fd");
            fs::create_dir_all(&fd).unwrap();
            for (i, l) in links.iter().enumerate() {
                std::os::unix::fs::symlink(l, fd.join(i.to_string())).unwrap();
            }
            fs::write(root.join(pid).join("comm"), format!("cmd{pid}\n")).unwrap();
        }
        fs::create_dir_all(root.join("5")).unwrap(); // no fd dir
        fs::write(
            root.join("20").join("cgroup"),
            "0::/system.slice/a.service\n",
        )
        .unwrap();
        let wanted: HashSet<u64> = [7, 8, 9].into_iter().collect();
        let owners = socket_owners(&root, &wanted);
        assert_eq!(owners.get(&7), Some(&20));
        assert_eq!(owners.get(&8), Some(&300));
        assert_eq!(owners.get(&9), None);
        let p = process_info(&root, 20).unwrap();
        assert_eq!(p.command, "cmd20");
        assert_eq!(p.unit.as_deref(), Some("a.service"));
        assert_eq!(process_info(&root, 300).unwrap().unit, None);
        assert_eq!(process_info(&root, 99), None);
        fs::remove_dir_all(&root).unwrap();
    }

    fn diag_msg(family: u8, port: u16, addr: [u8; 16], ifindex: u32, nlas: &[u8]) -> Vec<u8> {
        let mut m = vec![family, 10, 0, 0];
        m.extend_from_slice(&port.to_be_bytes());
        m.extend_from_slice(&0u16.to_be_bytes());
        m.extend_from_slice(&addr);
        m.extend_from_slice(&[0; 16]);
        m.extend_from_slice(&ifindex.to_ne_bytes());
        m.extend_from_slice(&[0xff; 8]);
        m.extend_from_slice(&0u32.to_ne_bytes()); // expires
        m.extend_from_slice(&0u32.to_ne_bytes()); // rqueue
        m.extend_from_slice(&0u32.to_ne_bytes()); // wqueue
        m.extend_from_slice(&1000u32.to_ne_bytes()); // uid
        m.extend_from_slice(&4711u32.to_ne_bytes()); // inode
        assert_eq!(m.len(), INET_DIAG_MSG_LEN);
        m.extend_from_slice(nlas);
        m
    }

    #[test]
    fn host_decode_socket_messages() {
        let names: HashMap<u32, String> = [(3, "pw-priv".to_string())].into_iter().collect();
        let mut v4 = [0u8; 16];
        v4[..4].copy_from_slice(&[10, 99, 0, 1]);
        let l = decode_socket(
            &diag_msg(AF_INET, 2546, v4, 3, &[]),
            L4::Udp,
            AF_INET,
            &names,
        )
        .unwrap()
        .unwrap();
        assert_eq!(l.addr, ip("10.99.0.1"));
        assert_eq!((l.port, l.uid, l.inode), (2546, 1000, 4711));
        assert_eq!(l.dev.as_deref(), Some("pw-priv"));
        assert!(!l.v6only);

        // v6only attribute (type 11, one byte, padded); unknown ifindex.
        let v6only_nla = [5, 0, 11, 0, 1, 0, 0, 0];
        let l = decode_socket(
            &diag_msg(
                AF_INET6,
                2500,
                Ipv6Addr::UNSPECIFIED.octets(),
                9,
                &v6only_nla,
            ),
            L4::Tcp,
            AF_INET6,
            &names,
        )
        .unwrap()
        .unwrap();
        assert_eq!(l.addr, ip("::"));
        assert!(l.v6only);
        assert_eq!(l.dev.as_deref(), Some("9"));

        // Port 0 (an unbound UDP socket) is left out.
        assert!(
            decode_socket(&diag_msg(AF_INET, 0, v4, 0, &[]), L4::Udp, AF_INET, &names)
                .unwrap()
                .is_none()
        );
        // Garbage after the header (a truncated attribute) is tolerated.
        let l = decode_socket(
            &diag_msg(AF_INET6, 1, [0; 16], 0, &[200, 0, 11]),
            L4::Tcp,
            AF_INET6,
            &names,
        )
        .unwrap()
        .unwrap();
        assert!(!l.v6only);
        // Short messages are an error, not a panic.
        for n in 0..INET_DIAG_MSG_LEN {
            let e = decode_socket(&vec![AF_INET; n], L4::Tcp, AF_INET, &names).unwrap_err();
            assert_eq!(e.exit_code(), 76);
        }
    }

    #[test]
    fn host_listener_display() {
        let mut l = listener("::", true, Some("pw-priv"));
        l.process = Some(Process {
            pid: 123,
            command: "sshd".into(),
            unit: Some("sshd.service".into()),
        });
        let s = l.to_string();
        assert!(s.starts_with("tcp  [::]:2500"), "{s}");
        assert!(
            s.contains("sshd (pid 123, sshd.service)  v6only  dev pw-priv"),
            "{s}"
        );
        let mut l = listener("0.0.0.0", false, None);
        l.proto = L4::Udp;
        assert!(l.to_string().contains("? (uid 0, inode 1)"));
        assert!(!l.to_string().contains("v6only"));

        // No process (no privilege for /proc/PID/fd): the socket's unit.
        l.set_cgroup(Some("/system.slice/sshd.service".into()));
        assert_eq!(l.cgroup.as_deref(), Some("/system.slice/sshd.service"));
        assert!(
            l.to_string().contains("sshd.service (uid 0, inode 1)"),
            "{l}"
        );
        l.set_cgroup(Some(
            "/user.slice/user-1000.slice/user@1000.service/app.slice/x.service".into(),
        ));
        assert_eq!(
            (l.unit.as_deref(), l.unit_user),
            (Some("x.service"), Some(1000))
        );
        assert!(l.to_string().contains("x.service of user 1000 (uid"), "{l}");
        l.set_cgroup(Some("/init.scope".into()));
        assert!(
            l.to_string()
                .contains("systemd (init.scope, socket activation) (uid"),
            "{l}"
        );
        // A process and a socket cgroup: the socket's unit, which may
        // differ from the process's (the socket was made elsewhere).
        l.process = Some(Process {
            pid: 7,
            command: "vsftpd".into(),
            unit: Some("vsftpd.service".into()),
        });
        l.set_cgroup(Some("/system.slice/inetd.service".into()));
        assert!(
            l.to_string().contains("vsftpd (pid 7, inetd.service)"),
            "{l}"
        );
        // No cgroup path (cgroup v1 only, no cgroup2 mount): the process's.
        l.set_cgroup(None);
        assert_eq!(l.unit.as_deref(), Some("vsftpd.service"));
        assert!(
            l.to_string().contains("vsftpd (pid 7, vsftpd.service)"),
            "{l}"
        );
        l.process = None;
        l.set_cgroup(None);
        assert_eq!(l.unit, None);
        assert!(l.to_string().contains("? (uid 0, inode 1)"), "{l}");
    }

    #[test]
    fn host_decode_cgroup_id() {
        let names = HashMap::new();
        // INET_DIAG_CGROUP_ID (21): 4 header bytes + a u64, host order.
        let mut nla = vec![12, 0, 21, 0];
        nla.extend_from_slice(&0x1234_5678_9abc_u64.to_ne_bytes());
        let l = decode_socket(
            &diag_msg(AF_INET, 22, [0; 16], 0, &nla),
            L4::Tcp,
            AF_INET,
            &names,
        )
        .unwrap()
        .unwrap();
        assert_eq!(l.cgroup_id, Some(0x1234_5678_9abc));
        // Too short a value: no id, no panic. No attribute: no id.
        let short = [8, 0, 21, 0, 1, 0, 0, 0];
        for nlas in [&short[..], &[]] {
            let l = decode_socket(
                &diag_msg(AF_INET, 22, [0; 16], 0, nlas),
                L4::Tcp,
                AF_INET,
                &names,
            )
            .unwrap()
            .unwrap();
            assert_eq!(l.cgroup_id, None);
        }
    }
}
