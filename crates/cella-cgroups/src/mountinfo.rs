//! Finding the cgroup hierarchies from `/proc/self/mountinfo`, and the
//! process's own cgroups from `/proc/self/cgroup`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::{Error, Layout};

/// Cgroup filesystem version of one mount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// `cgroup` (v1): one or more controllers, or a named hierarchy.
    V1,
    /// `cgroup2`: the unified hierarchy.
    V2,
}

/// One mounted cgroup hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupMount {
    /// Where it is mounted, e.g. `/sys/fs/cgroup/memory`.
    pub mount_point: PathBuf,
    /// The cgroup (inside the hierarchy) that appears at the mount point:
    /// `/` normally, something else for a bind of a sub-cgroup.
    pub root: String,
    /// v1 or v2.
    pub version: Version,
    /// v1: controllers and `name=` from the super options, in the kernel's
    /// order (e.g. `["cpu", "cpuacct"]`, `["name=systemd"]`). v2: empty.
    pub controllers: Vec<String>,
}

impl CgroupMount {
    /// A v1 mount for the given controllers (used to build test layouts).
    pub fn v1(mount_point: impl Into<PathBuf>, controllers: &[&str]) -> Self {
        CgroupMount {
            mount_point: mount_point.into(),
            root: "/".into(),
            version: Version::V1,
            controllers: controllers.iter().map(|c| c.to_string()).collect(),
        }
    }

    /// A cgroup2 mount (used to build test layouts).
    pub fn v2(mount_point: impl Into<PathBuf>) -> Self {
        CgroupMount {
            mount_point: mount_point.into(),
            root: "/".into(),
            version: Version::V2,
            controllers: Vec::new(),
        }
    }

    /// The key this hierarchy has in `/proc/<pid>/cgroup`: `cpu,cpuacct`,
    /// `name=systemd`, or the empty string for cgroup2.
    pub fn proc_key(&self) -> String {
        self.controllers.join(",")
    }

    /// Does this v1 hierarchy carry `controller`?
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// The cgroup hierarchies visible to this process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mounts {
    /// v1 hierarchies, one per hierarchy (duplicate mounts removed).
    pub v1: Vec<CgroupMount>,
    /// The cgroup2 mount, if any.
    pub unified: Option<CgroupMount>,
}

/// The v1 controllers that limit or account resources (as opposed to a
/// named hierarchy such as `name=systemd`).
fn is_controller(opt: &str) -> bool {
    matches!(
        opt,
        "cpu"
            | "cpuacct"
            | "cpuset"
            | "memory"
            | "devices"
            | "freezer"
            | "net_cls"
            | "net_prio"
            | "blkio"
            | "perf_event"
            | "hugetlb"
            | "pids"
            | "rdma"
            | "misc"
    )
}

/// Undo the octal escapes (`\040` for space etc.) of mountinfo fields.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Mounts {
    /// Read `/proc/self/mountinfo`.
    pub fn detect() -> Result<Mounts, Error> {
        let path = Path::new("/proc/self/mountinfo");
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.into(),
            source,
        })?;
        Mounts::from_mountinfo(&text, path)
    }

    /// Parse mountinfo text. `source` is only used in error messages.
    pub fn from_mountinfo(text: &str, source: &Path) -> Result<Mounts, Error> {
        let mut mounts = Mounts::default();
        let mut seen_devs: Vec<String> = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let bad = |reason: &str| Error::Parse {
                path: source.into(),
                content: line.into(),
                reason: reason.into(),
            };
            let (left, right) = line
                .split_once(" - ")
                .ok_or_else(|| bad("no \" - \" separator"))?;
            let lf: Vec<&str> = left.split(' ').collect();
            if lf.len() < 6 {
                return Err(bad("fewer than 6 fields before the separator"));
            }
            let rf: Vec<&str> = right.split(' ').collect();
            if rf.len() < 3 {
                return Err(bad("fewer than 3 fields after the separator"));
            }
            let version = match rf[0] {
                "cgroup" => Version::V1,
                "cgroup2" => Version::V2,
                _ => continue,
            };
            let dev = lf[2].to_string();
            // The same hierarchy can be mounted several times; keep the first.
            if seen_devs.contains(&dev) {
                continue;
            }
            seen_devs.push(dev);
            let mount = CgroupMount {
                mount_point: PathBuf::from(unescape(lf[4])),
                root: unescape(lf[3]),
                version,
                controllers: match version {
                    Version::V2 => Vec::new(),
                    Version::V1 => rf[2]
                        .split(',')
                        .filter(|o| is_controller(o) || o.starts_with("name="))
                        .map(str::to_string)
                        .collect(),
                },
            };
            match version {
                Version::V2 => {
                    if mounts.unified.is_none() {
                        mounts.unified = Some(mount);
                    }
                }
                Version::V1 => {
                    if !mount.controllers.is_empty() {
                        mounts.v1.push(mount);
                    }
                }
            }
        }
        Ok(mounts)
    }

    /// The layout these mounts form. A v1 hierarchy with at least one real
    /// controller makes it Legacy (no cgroup2) or Hybrid (cgroup2 too);
    /// only named v1 hierarchies (`name=systemd`) next to cgroup2 is Unified.
    pub fn layout(&self) -> Result<Layout, Error> {
        let v1_controllers = self
            .v1
            .iter()
            .any(|m| m.controllers.iter().any(|c| is_controller(c)));
        match (v1_controllers, self.unified.is_some()) {
            (true, false) => Ok(Layout::Legacy),
            (true, true) => Ok(Layout::Hybrid),
            (false, true) => Ok(Layout::Unified),
            (false, false) => Err(Error::NoCgroupMounts {
                path: "/proc/self/mountinfo".into(),
            }),
        }
    }

    /// The v1 hierarchy carrying `controller`.
    pub fn v1_for(&self, controller: &str) -> Option<&CgroupMount> {
        self.v1.iter().find(|m| m.has(controller))
    }
}

/// The process's own cgroup in each hierarchy, from `/proc/self/cgroup`:
/// key as in [`CgroupMount::proc_key`] (`""` for cgroup2), value the path.
pub fn parse_proc_cgroup(text: &str, source: &Path) -> Result<BTreeMap<String, String>, Error> {
    let mut map = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(key), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(Error::Parse {
                path: source.into(),
                content: line.into(),
                reason: "expected \"id:controllers:path\"".into(),
            });
        };
        map.insert(key.to_string(), path.to_string());
    }
    Ok(map)
}

/// Read `/proc/self/cgroup`.
pub fn own_cgroups() -> Result<BTreeMap<String, String>, Error> {
    let path = Path::new("/proc/self/cgroup");
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.into(),
        source,
    })?;
    parse_proc_cgroup(&text, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine's layout: v1 controllers each on its own mount, a
    /// name=systemd hierarchy and cgroup2 at /sys/fs/cgroup/unified.
    pub(crate) const HYBRID: &str = "\
22 1 0:20 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    const PURE_V2: &str = "\
24 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
30 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    const PURE_V1: &str = "\
25 24 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd
29 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,cpu,cpuacct
30 25 0:27 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,net_cls,net_prio
31 25 0:28 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,memory
32 25 0:29 / /sys/fs/cgroup/hugetlb rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,hugetlb
33 25 0:28 / /mnt/memory\\040again rw,relatime shared:14 - cgroup cgroup rw,memory
";

    #[test]
    fn hybrid_like_this_machine() {
        let m = Mounts::from_mountinfo(HYBRID, Path::new("t")).unwrap();
        assert_eq!(m.layout().unwrap(), Layout::Hybrid);
        assert_eq!(m.v1.len(), 9);
        assert_eq!(
            m.v1_for("memory").unwrap().mount_point,
            Path::new("/sys/fs/cgroup/memory")
        );
        assert_eq!(m.v1_for("cpuacct").unwrap().controllers, vec!["cpuacct"]);
        let sd = m.v1.iter().find(|h| h.has("name=systemd")).unwrap();
        assert_eq!(sd.proc_key(), "name=systemd");
        assert_eq!(
            m.unified.as_ref().unwrap().mount_point,
            Path::new("/sys/fs/cgroup/unified")
        );
    }

    #[test]
    fn pure_v2() {
        let m = Mounts::from_mountinfo(PURE_V2, Path::new("t")).unwrap();
        assert_eq!(m.layout().unwrap(), Layout::Unified);
        assert!(m.v1.is_empty());
        assert_eq!(m.unified.unwrap().mount_point, Path::new("/sys/fs/cgroup"));
    }

    #[test]
    fn pure_v1_with_comounts_and_duplicates() {
        let m = Mounts::from_mountinfo(PURE_V1, Path::new("t")).unwrap();
        assert_eq!(m.layout().unwrap(), Layout::Legacy);
        // the second memory mount (same 0:28) is dropped
        assert_eq!(m.v1.len(), 5);
        let cpu = m.v1_for("cpuacct").unwrap();
        assert_eq!(cpu.controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(cpu.proc_key(), "cpu,cpuacct");
        assert_eq!(cpu.mount_point, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        // xattr and release_agent= are not controllers
        let sd = m.v1_for("name=systemd").unwrap();
        assert_eq!(sd.controllers, vec!["name=systemd"]);
        assert!(m.v1_for("net_prio").unwrap().has("net_cls"));
    }

    #[test]
    fn systemd_named_only_with_cgroup2_is_unified() {
        let text = "\
26 25 0:23 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd
27 25 0:24 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
";
        let m = Mounts::from_mountinfo(text, Path::new("t")).unwrap();
        assert_eq!(m.layout().unwrap(), Layout::Unified);
    }

    #[test]
    fn escapes_and_errors() {
        let text = "33 25 0:28 /sub /mnt/a\\040b rw - cgroup2 cgroup2 rw\n";
        let m = Mounts::from_mountinfo(text, Path::new("t")).unwrap();
        let u = m.unified.unwrap();
        assert_eq!(u.mount_point, Path::new("/mnt/a b"));
        assert_eq!(u.root, "/sub");
        let err = Mounts::from_mountinfo("garbage line\n", Path::new("/x")).unwrap_err();
        assert!(err.to_string().contains("/x"), "{err}");
        assert!(matches!(
            Mounts::from_mountinfo("", Path::new("t")).unwrap().layout(),
            Err(Error::NoCgroupMounts { .. })
        ));
    }

    #[test]
    fn proc_cgroup() {
        let text = "9:name=systemd:/\n4:memory:/process_api/22\n2:cpu,cpuacct:/a\n0::/\n";
        let m = parse_proc_cgroup(text, Path::new("t")).unwrap();
        assert_eq!(m["memory"], "/process_api/22");
        assert_eq!(m["cpu,cpuacct"], "/a");
        assert_eq!(m["name=systemd"], "/");
        assert_eq!(m[""], "/");
        assert!(parse_proc_cgroup("bad\n", Path::new("t")).is_err());
    }
}
