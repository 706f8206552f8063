//! The cgroup a socket was created in, and the systemd unit that names.
//!
//! sock_diag reports each socket's cgroup id (`INET_DIAG_CGROUP_ID`, what
//! `ss -e` shows as `cgroup:`): the inode number of the socket's cgroup
//! directory in the cgroup2 hierarchy. Walking that hierarchy maps the id
//! to a path (`/system.slice/sshd.service`), and the path to a unit. Unlike
//! scanning `/proc/PID/fd`, this needs no capability and works under
//! `ProtectProc=invisible`: cgroupfs directories are world-readable.
//!
//! The cgroup is the one the socket was *created* in. A socket-activated
//! listener was created by systemd itself (`/init.scope`); a socket handed
//! to another process keeps its creator's cgroup.
//!
//! On a host without a cgroup2 mount (cgroup v1 only, or inside `ip netns
//! exec`, which mounts a fresh `/sys`) no id resolves: no path, no unit.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::os::unix::fs::{DirEntryExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// How deep the walk descends below the cgroup2 root (systemd's trees are
/// a handful of levels; this bounds the open directories, one per level).
const MAX_DEPTH: usize = 32;

/// How many ids the process-wide cache keeps before it starts afresh.
const CACHE_LIMIT: usize = 65_536;

/// Cgroup ids mapped to their paths below one cgroup2 mount.
///
/// A cgroup id is never reused while the system runs (it is a 64-bit
/// kernfs inode number), so an id, once looked up, keeps its answer: a
/// found path, or none (the cgroup was removed while the socket lives on,
/// or it lies outside this mount's view). The hierarchy is walked only
/// when some wanted id has not been looked up yet, and the walk stops as
/// soon as every wanted id is found.
#[derive(Debug)]
pub struct CgroupPaths {
    root: Option<PathBuf>,
    known: HashMap<u64, Option<String>>,
    walks: u64,
    visited: u64,
}

impl CgroupPaths {
    /// Paths below the cgroup2 mount at `root` (`None`: no cgroup2, every
    /// lookup answers none).
    pub fn new(root: Option<PathBuf>) -> CgroupPaths {
        CgroupPaths {
            root,
            known: HashMap::new(),
            walks: 0,
            visited: 0,
        }
    }

    /// The cgroup2 mount of this process's mount namespace, from
    /// `/proc/self/mountinfo`.
    pub fn system() -> CgroupPaths {
        let root = fs::read_to_string("/proc/self/mountinfo")
            .ok()
            .and_then(|m| cgroup2_mount(&m));
        CgroupPaths::new(root)
    }

    /// The cgroup2 mount point in use, if any.
    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// How many walks of the hierarchy were made, and how many cgroup
    /// directories they read, in total.
    pub fn stats(&self) -> (u64, u64) {
        (self.walks, self.visited)
    }

    /// Looks up every id in `wanted` not looked up before, with at most one
    /// walk.
    pub fn resolve(&mut self, wanted: impl IntoIterator<Item = u64>) {
        let mut missing: HashSet<u64> = wanted
            .into_iter()
            .filter(|id| !self.known.contains_key(id))
            .collect();
        if missing.is_empty() {
            return;
        }
        if let Some(root) = self.root.clone() {
            self.walks += 1;
            self.walk(&root, &mut missing);
        }
        for id in missing {
            self.known.insert(id, None);
        }
    }

    /// The path of cgroup `id` (`/` for the root), if [`resolve`](Self::resolve)
    /// found it.
    pub fn path(&self, id: u64) -> Option<&str> {
        self.known.get(&id)?.as_deref()
    }

    /// How many ids are known (found or not).
    pub fn len(&self) -> usize {
        self.known.len()
    }

    /// Whether no id was looked up yet.
    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    /// Depth-first walk below `root` with one open directory per level:
    /// entries are matched by the inode number and type in the directory
    /// entry itself, with no `stat` per cgroup and none of the control
    /// files opened. Unreadable directories are skipped.
    fn walk(&mut self, root: &Path, missing: &mut HashSet<u64>) {
        if let Ok(m) = fs::metadata(root) {
            if missing.remove(&m.ino()) {
                self.known.insert(m.ino(), Some("/".to_string()));
            }
        }
        if missing.is_empty() {
            return;
        }
        let Ok(top) = fs::read_dir(root) else {
            return;
        };
        self.visited += 1;
        // (directory being read, its path relative to the root)
        let mut stack = vec![(top, String::new())];
        while !missing.is_empty() {
            let Some((dir, rel)) = stack.last_mut() else {
                break;
            };
            let Some(entry) = dir.next() else {
                stack.pop();
                continue;
            };
            let Ok(entry) = entry else { continue };
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let path = format!("{rel}/{name}");
            if missing.remove(&entry.ino()) {
                self.known.insert(entry.ino(), Some(path.clone()));
            }
            if stack.len() < MAX_DEPTH {
                if let Ok(sub) = fs::read_dir(entry.path()) {
                    self.visited += 1;
                    stack.push((sub, path));
                }
            }
        }
    }
}

/// The mount point of the first cgroup2 file system in a
/// `/proc/PID/mountinfo`, preferring one that shows the whole hierarchy
/// (root `/`).
pub fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    let mounts: Vec<(&str, &str)> = mountinfo
        .lines()
        .filter_map(|line| {
            let (fields, rest) = line.split_once(" - ")?;
            let fstype = rest.split(' ').next()?;
            let mut f = fields.split(' ');
            let root = f.nth(3)?;
            let point = f.next()?;
            (fstype == "cgroup2").then_some((root, point))
        })
        .collect();
    let (_, point) = mounts
        .iter()
        .find(|(root, _)| *root == "/")
        .or_else(|| mounts.first())?;
    Some(PathBuf::from(unescape_mount_path(point)))
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mount_path(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 4])
                .ok()
                .and_then(|o| u8::from_str_radix(o, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The systemd unit a cgroup path belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitOf {
    /// The innermost unit in the path (`sshd.service`, `getty@tty1.service`,
    /// `session-3.scope`); a cgroup nested below a unit (a delegated
    /// subtree) belongs to that unit.
    pub name: String,
    /// The uid of the user's service manager (`user@UID.service`) when the
    /// unit is one of its units rather than a system unit.
    pub user: Option<u32>,
}

/// The unit a cgroup path names: its last component ending in `.service`,
/// `.socket` or `.scope`; `None` for a path in no unit (`/`, a slice, a
/// container's own tree).
pub fn unit_of_path(path: &str) -> Option<UnitOf> {
    let comps: Vec<&str> = path.trim_end().split('/').collect();
    let at = comps.iter().rposition(|c| is_unit_name(c))?;
    let user = comps[..at].iter().rev().find_map(|c| {
        c.strip_prefix("user@")?
            .strip_suffix(".service")?
            .parse()
            .ok()
    });
    Some(UnitOf {
        name: comps[at].to_string(),
        user,
    })
}

fn is_unit_name(c: &str) -> bool {
    [".service", ".socket", ".scope"]
        .iter()
        .any(|s| c.len() > s.len() && c.ends_with(s))
}

/// The process-wide lookups (see [`CgroupPaths`]: answers never go stale,
/// so they are kept across reads; the daemon's later reads walk only for
/// sockets in cgroups not seen before).
static SYSTEM: Mutex<Option<CgroupPaths>> = Mutex::new(None);

/// Paths of `ids` in this process's cgroup2 mount (looked up, walking
/// only for ids not looked up before), by id; ids with no path are left
/// out.
pub fn system_paths(ids: &HashSet<u64>) -> HashMap<u64, String> {
    let mut guard = SYSTEM.lock().unwrap_or_else(|p| p.into_inner());
    let paths = guard.get_or_insert_with(CgroupPaths::system);
    if paths.len() > CACHE_LIMIT {
        *paths = CgroupPaths::system();
    }
    paths.resolve(ids.iter().copied());
    ids.iter()
        .filter_map(|&id| Some((id, paths.path(id)?.to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_unit_of_path() {
        let u = |p: &str| unit_of_path(p).map(|u| (u.name, u.user));
        let sys = |n: &str| Some((n.to_string(), None));
        assert_eq!(u("/system.slice/sshd.service"), sys("sshd.service"));
        assert_eq!(
            u("/system.slice/system-getty.slice/getty@tty1.service"),
            sys("getty@tty1.service")
        );
        assert_eq!(
            u("/user.slice/user-1000.slice/session-3.scope"),
            sys("session-3.scope")
        );
        assert_eq!(
            u("/user.slice/user-1000.slice/user@1000.service/app.slice/app-x.service"),
            Some(("app-x.service".to_string(), Some(1000)))
        );
        // The user manager itself (its own init.scope) is the manager's.
        assert_eq!(
            u("/user.slice/user-1000.slice/user@1000.service/init.scope"),
            Some(("init.scope".to_string(), Some(1000)))
        );
        assert_eq!(
            u("/user.slice/user-1000.slice/user@1000.service"),
            sys("user@1000.service")
        );
        // Nested below a unit (a delegated subtree): that unit.
        assert_eq!(
            u("/system.slice/docker.service/payload/x"),
            sys("docker.service")
        );
        assert_eq!(u("/system.slice/sshd.socket"), sys("sshd.socket"));
        assert_eq!(u("/init.scope"), sys("init.scope"));
        for none in [
            "/",
            "",
            "/system.slice",
            "/pw-test/plain",
            "/.service",
            "/x/.scope",
        ] {
            assert_eq!(u(none), None, "{none}");
        }
    }

    #[test]
    fn host_cgroup2_mount_from_mountinfo() {
        let hybrid = "\
30 24 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
";
        assert_eq!(
            cgroup2_mount(hybrid),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let unified = "35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup2_mount(unified),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
        // A bind mount of a subtree comes after one of the whole tree.
        let two = "\
40 24 0:30 /system.slice /mnt/sub rw - cgroup2 cgroup2 rw
41 24 0:30 / /mnt/my\\040cg rw - cgroup2 cgroup2 rw
";
        assert_eq!(cgroup2_mount(two), Some(PathBuf::from("/mnt/my cg")));
        let v1_only = "32 30 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        assert_eq!(cgroup2_mount(v1_only), None);
        assert_eq!(cgroup2_mount(""), None);
        assert_eq!(cgroup2_mount("garbage\n1 2 3\n - cgroup2"), None);
        assert_eq!(unescape_mount_path("a\\134b\\"), "a\\b\\");
        assert_eq!(unescape_mount_path("a\\9zz"), "a\\9zz");
    }

    /// A tree of plain directories stands in for cgroupfs: ids are inode
    /// numbers either way.
    #[test]
    fn host_cgroup_paths_fake_tree() {
        let root = std::env::temp_dir().join(format!("pw-cg-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        for d in [
            "system.slice/a.service/x",
            "user.slice/b.scope",
            "deep/1/2/3",
        ] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        fs::write(root.join("system.slice/cgroup.procs"), "").unwrap();
        let ino = |p: &str| fs::metadata(root.join(p)).unwrap().ino();
        let mut c = CgroupPaths::new(Some(root.clone()));
        c.resolve([ino("system.slice/a.service/x"), ino("deep/1/2/3"), ino("")]);
        assert_eq!(
            c.path(ino("system.slice/a.service/x")),
            Some("/system.slice/a.service/x")
        );
        assert_eq!(c.path(ino("deep/1/2/3")), Some("/deep/1/2/3"));
        assert_eq!(c.path(ino("")), Some("/"));
        // A regular file is not a cgroup, even with a wanted inode.
        let file = ino("system.slice/cgroup.procs");
        c.resolve([file]);
        assert_eq!(c.path(file), None);
        assert_eq!(c.stats().0, 2);
        c.resolve([file, ino("deep/1/2/3")]);
        assert_eq!(c.stats().0, 2);
        // The walk stops once everything wanted is found.
        let mut d = CgroupPaths::new(Some(root.clone()));
        d.resolve([ino("")]);
        assert_eq!(d.stats(), (1, 0));
        fs::remove_dir_all(&root).unwrap();
    }
}
