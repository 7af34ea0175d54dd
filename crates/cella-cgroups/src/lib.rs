//! cgroup drivers for the cella container runtime.
//!
//! * [`Layout::detect`] reads `/proc/self/mountinfo` to tell a pure v1
//!   (`Legacy`), mixed (`Hybrid`) or pure v2 (`Unified`) host apart.
//! * [`CgroupPath::resolve`] turns `linux.cgroupsPath` into a checked path.
//! * [`open`] / [`open_existing`] give a [`CgroupManager`]: the v1 driver
//!   (also used on hybrid hosts) or the v2 driver, which create the cgroup,
//!   apply OCI `linux.resources`, move processes in, freeze, kill, report
//!   statistics and remove the cgroup.
//!
//! All v1↔v2 value conversions live in [`convert`].

#![deny(unsafe_op_in_unsafe_fn)]

mod bpf;
pub mod convert;
mod devices;
mod error;
mod fsutil;
pub mod mountinfo;
mod path;
mod v1;
mod v2;

#[cfg(test)]
mod plan_tests;

use std::os::fd::OwnedFd;
use std::path::PathBuf;

pub use error::Error;
pub use mountinfo::{CgroupMount, Mounts};
pub use oci_spec::runtime::LinuxResources;
pub use path::CgroupPath;
pub use v1::V1Manager;
pub use v2::V2Manager;

/// How the cgroup hierarchies are mounted on the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Layout {
    /// Only cgroup v1 hierarchies.
    Legacy,
    /// cgroup v1 controllers plus a cgroup2 mount (usually
    /// `/sys/fs/cgroup/unified`) holding few or no controllers.
    Hybrid,
    /// Only cgroup2 (possibly next to a named v1 hierarchy such as name=systemd).
    Unified,
}

impl Layout {
    /// Detect the layout from `/proc/self/mountinfo`.
    pub fn detect() -> Result<Layout, Error> {
        Mounts::detect()?.layout()
    }
}

/// Resource usage of a container's cgroup. A field is `None` when the
/// controller is not available.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    /// Memory in use, bytes (v1 memory.usage_in_bytes, v2 memory.current).
    pub memory_usage: Option<u64>,
    /// Highest memory use seen, bytes (v1 memory.max_usage_in_bytes, v2
    /// memory.peak; `None` on v2 kernels before 5.19).
    pub memory_peak: Option<u64>,
    /// Memory limit in bytes; `None` if unlimited or no memory controller.
    pub memory_limit: Option<u64>,
    /// Number of processes killed by the OOM killer in this cgroup.
    pub oom_kill: Option<u64>,
    /// CPU time used, nanoseconds.
    pub cpu_usage_ns: Option<u64>,
    /// Number of tasks (pids.current).
    pub pids_current: Option<u64>,
}

/// What to mount at `/sys/fs/cgroup` inside the container for one hierarchy.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContainerCgroupMount {
    /// Directory below `/sys/fs/cgroup`: `"memory"`, `"cpu,cpuacct"`,
    /// `"systemd"`, `"unified"` (hybrid); `""` for the v2 mount, which goes
    /// on `/sys/fs/cgroup` itself.
    pub dir: String,
    /// `"cgroup"` (v1) or `"cgroup2"`.
    pub fstype: String,
    /// Mount data for a fresh mount in a cgroup namespace: `"memory"`,
    /// `"cpu,cpuacct"`, `"name=systemd"`; `""` for cgroup2.
    pub options: String,
    /// This container's cgroup directory on the host, to bind-mount when
    /// there is no cgroup namespace.
    pub host_dir: PathBuf,
    /// Symlinks to create next to `dir` for co-mounted controllers, as
    /// (link name, target): e.g. `("cpu", "cpu,cpuacct")`.
    pub symlinks: Vec<(String, String)>,
}

/// One container's cgroup, in every hierarchy the driver uses.
///
/// Object safe: the runtime holds a `Box<dyn CgroupManager>`.
pub trait CgroupManager: std::fmt::Debug {
    /// Create the cgroup directories. Remembers the parents it created for
    /// [`CgroupManager::destroy`], except the default path's parent `cella`, which is kept
    /// between containers (see [`CgroupPath::is_default`]).
    fn create(&mut self) -> Result<(), Error>;
    /// Create only what must exist before the container's first process does: the cgroup2
    /// directory that clone3(CLONE_INTO_CGROUP) places it in. Returns `true` when the rest
    /// (v1 hierarchies, which the new process joins itself by writing "0" to their `tasks`)
    /// is left to [`CgroupManager::create`], which the runtime then calls while the new
    /// process builds its root filesystem. The default creates everything now and returns
    /// `false`.
    fn create_before_clone(&mut self) -> Result<bool, Error> {
        self.create()?;
        Ok(false)
    }
    /// The cgroup2 directory of this container (pure v2, or the cgroup2 part of a hybrid
    /// host), which a new process enters with clone3(CLONE_INTO_CGROUP); `None` on v1 hosts
    /// without one.
    fn cgroup2_dir(&self) -> Option<PathBuf>;
    /// Write the limits (before [`CgroupManager::add_pid`], and for `update`).
    fn apply(&self, r: &LinuxResources) -> Result<(), Error>;
    /// Move a process into the cgroup, in every hierarchy.
    fn add_pid(&self, pid: i32) -> Result<(), Error>;
    /// The processes in the cgroup and its sub-cgroups.
    fn pids(&self) -> Result<Vec<i32>, Error>;
    /// Signal every process. v2 uses cgroup.kill for SIGKILL when the
    /// kernel has it; otherwise the cgroup is frozen (if possible) so that
    /// no process can fork meanwhile, each pid signalled, and thawed.
    fn kill_all(&self, sig: i32) -> Result<(), Error>;
    /// Freeze every process; returns once the kernel reports them frozen.
    fn freeze(&self) -> Result<(), Error>;
    /// Thaw the cgroup.
    fn thaw(&self) -> Result<(), Error>;
    /// Is the cgroup frozen?
    fn is_frozen(&self) -> Result<bool, Error>;
    /// Usage statistics.
    fn stats(&self) -> Result<Stats, Error>;
    /// How many processes the OOM killer has killed in this cgroup.
    fn oom_kill_count(&self) -> Result<u64, Error>;
    /// Kill what is left, remove the cgroup (and its sub-cgroups), then the
    /// parents this driver created if they are empty. A missing cgroup is
    /// not an error. All steps are tried; all failures are reported. An empty
    /// cgroup costs one rmdir per directory: processes are looked for only when
    /// the kernel refuses it.
    fn destroy(&self) -> Result<(), Error>;
    /// Parents created by [`CgroupManager::create`] above the container's own
    /// directories (top-down), for the runtime's state so that a later command can
    /// remove them when empty. Empty for the default path.
    fn created_dirs(&self) -> Vec<PathBuf>;
    /// This container's cgroup directory in each hierarchy.
    fn dirs(&self) -> Vec<PathBuf>;
    /// What the container should see at /sys/fs/cgroup.
    fn container_mounts(&self) -> Vec<ContainerCgroupMount>;
    /// An `O_PATH | O_DIRECTORY | O_CLOEXEC` fd of [`CgroupManager::cgroup2_dir`], for
    /// `clone3(CLONE_INTO_CGROUP)`; `Ok(None)` without a cgroup2 part.
    fn unified_dir_fd(&self) -> Result<Option<OwnedFd>, Error> {
        use rustix::fs::{open, Mode, OFlags};
        let Some(dir) = self.cgroup2_dir() else {
            return Ok(None);
        };
        let fd = open(
            &dir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::Open {
            path: dir.clone(),
            source: e.into(),
        })?;
        Ok(Some(fd))
    }
}

/// The driver for a new container, using the host's real cgroup mounts.
pub fn open(layout: Layout, path: &CgroupPath) -> Result<Box<dyn CgroupManager>, Error> {
    open_existing(layout, path, Vec::new())
}

/// The driver for an existing container (later commands: kill, delete,
/// update, …), with the directories its `create` made.
pub fn open_existing(
    layout: Layout,
    path: &CgroupPath,
    created: Vec<PathBuf>,
) -> Result<Box<dyn CgroupManager>, Error> {
    open_with(&Mounts::detect()?, layout, path, created)
}

/// Like [`open_existing`] with the mounts given (tests point them at a
/// temporary directory).
pub fn open_with(
    mounts: &Mounts,
    layout: Layout,
    path: &CgroupPath,
    created: Vec<PathBuf>,
) -> Result<Box<dyn CgroupManager>, Error> {
    Ok(match layout {
        Layout::Legacy | Layout::Hybrid => Box::new(V1Manager::new(mounts, layout, path, created)?),
        Layout::Unified => Box::new(V2Manager::new(mounts, path, created)?),
    })
}
