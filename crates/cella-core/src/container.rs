//! Container life cycle in the runtime process: create, start, state, kill, delete, list.
//! The runtime never stays resident: `create` leaves the init blocked on the exec fifo and
//! exits; `start` releases it.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cella_cgroups::{CgroupManager, CgroupPath, Layout, Mounts};
use oci_spec::runtime::LinuxNamespaceType;
use rustix::fs::{Mode, OFlags};
use serde::Serialize;

use crate::error::{Context, Error, Result};
use crate::init::{self, Gate, InitArgs};
use crate::spec::{self, Config};
use crate::state::{self, ContainerDir, Record, StateRoot};
use crate::sync::{self, Channel, Msg};
use crate::{hooks, sys};

/// How `create` leaves the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateMode {
    /// Blocked on the exec fifo until `start` (runc create).
    Detached,
    /// Waiting on the channel; the caller starts and waits for it (run in the foreground).
    Foreground,
}

/// Options of `create`.
#[derive(Debug)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    /// A connected unix socket to send the pty master to (process.terminal).
    pub console_socket: Option<OwnedFd>,
    pub preserve_fds: u32,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub mode: CreateMode,
}

/// A container `create` made.
#[derive(Debug)]
pub struct Created {
    pub id: String,
    pub pid: i32,
    pub pidfd: OwnedFd,
    /// The channel to the init (Foreground mode).
    chan: Option<Channel>,
    config: Config,
    cgroup: Box<dyn CgroupManager>,
    dir: Option<ContainerDir>,
}

/// The status values of the runtime spec (plus paused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What `state` prints (the runtime-spec state, plus runc's extra fields).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateReport {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Undoes a half-made create on drop unless disarmed.
struct Undo {
    pidfd: Option<OwnedFd>,
    pid: i32,
    cgroup: Option<Box<dyn CgroupManager>>,
    dir: Option<PathBuf>,
    armed: bool,
}

impl Drop for Undo {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(fd) = &self.pidfd {
            let _ = rustix::process::pidfd_send_signal(fd, rustix::process::Signal::KILL);
            reap(self.pid);
        }
        if let Some(cg) = &self.cgroup {
            let _ = cg.destroy();
        }
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn reap(pid: i32) {
    let _ = rustix::process::waitpid(
        rustix::process::Pid::from_raw(pid),
        rustix::process::WaitOptions::empty(),
    );
}

/// Create a container from `opts.bundle`.
pub fn create(root: &StateRoot, opts: CreateOptions) -> Result<Created> {
    crate::id::validate(&opts.id)?;
    let config = spec::load_bundle(&opts.bundle)?;
    create_from_config(root, opts, config)
}

/// Create a container from an already validated config (the friendly command builds one in
/// memory).
pub fn create_from_config(
    root: &StateRoot,
    opts: CreateOptions,
    config: Config,
) -> Result<Created> {
    let spec_ = &config.spec;
    let linux = spec_.linux().as_ref().expect("validated");
    let namespaces = spec::namespaces(spec_);
    let seccomp = match linux.seccomp() {
        Some(s) => Some(cella_seccomp::Filter::from_spec(s)?),
        None => None,
    };
    if let Some(console) = &opts.console_socket {
        let _ = console;
    } else if spec_
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false)
    {
        return Err(Error::spec(
            "process.terminal",
            "is true but no --console-socket was given to receive the terminal",
        ));
    }

    let dir = root.create(&opts.id)?;
    let mut undo = Undo {
        pidfd: None,
        pid: 0,
        cgroup: None,
        dir: Some(dir.path.clone()),
        armed: true,
    };
    let cg_path = CgroupPath::resolve(
        linux.cgroups_path().as_ref().and_then(|p| p.to_str()),
        &opts.id,
    )?;
    let mut record = new_record(&opts.id, &config, &cg_path);
    // The spec's copy first (without state.json the directory is not a container yet), then
    // the record, before anything else exists, so a crash from here on can be cleaned by
    // delete.
    dir.create_config(spec_, config.source.as_deref())?;
    dir.write_new(&record)?;

    let (mounts, layout) = host_cgroups()?;
    let mut cgroup = cella_cgroups::open_with(mounts, layout, &cg_path, Vec::new())?;
    let resources = effective_resources(linux);
    // On v1 only the cgroup2 part (if any) must exist before clone; the v1 hierarchies are
    // made after it, while the init builds its root filesystem, and the init joins them
    // itself when they are ready (Msg::Cgroups). On pure v2 everything is made now.
    let cgroups_later = cgroup.create_before_clone()?;
    let (entry, cgroup_mounts) = if cgroups_later {
        let entry = CgroupEntry {
            into: cgroup.unified_dir_fd()?,
            tasks: Vec::new(),
        };
        (entry, Vec::new())
    } else {
        finish_cgroups(cgroup.as_ref(), &mut record, &dir, resources.as_ref())?;
        (
            CgroupEntry::open(cgroup.as_ref())?,
            cgroup.container_mounts(),
        )
    };
    undo.cgroup = Some(cgroup);

    let gate = match opts.mode {
        CreateMode::Detached => {
            let fifo = dir.fifo_path();
            rustix::fs::mknodat(
                rustix::fs::CWD,
                &fifo,
                rustix::fs::FileType::Fifo,
                Mode::from_raw_mode(0o622),
                0,
            )
            .ctx(|| format!("creating {}", fifo.display()))?;
            // Writable by the init even when it runs as a mapped (non-host-root) user; the
            // umask took the write bits off.
            rustix::fs::chmod(&fifo, Mode::from_raw_mode(0o622))
                .ctx(|| format!("chmod {}", fifo.display()))?;
            Gate::Fifo(
                rustix::fs::open(&fifo, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
                    .ctx(|| format!("opening {}", fifo.display()))?,
            )
        }
        CreateMode::Foreground => Gate::Channel,
    };

    let mut join = Vec::new();
    let mut parent_join = Vec::new();
    for (t, p) in namespaces.entries() {
        if let Some(p) = p {
            let fd =
                rustix::fs::open(p, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ctx(|| {
                    format!(
                        "linux.namespaces: opening {} namespace {}",
                        spec::ns_name(*t),
                        p.display()
                    )
                })?;
            if matches!(t, LinuxNamespaceType::Pid | LinuxNamespaceType::Time) {
                parent_join.push((*t, fd));
            } else {
                join.push((*t, fd));
            }
        }
    }
    let mut flags: u64 = 0;
    for (t, p) in namespaces.entries() {
        if p.is_some() {
            continue;
        }
        flags |= match t {
            LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
            LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
            LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
            LinuxNamespaceType::Network => libc::CLONE_NEWNET,
            LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
            LinuxNamespaceType::User => libc::CLONE_NEWUSER,
            // The cgroup namespace is made by the init once it is in its cgroup; the time
            // namespace by the runtime (below) so its offsets can be written first.
            LinuxNamespaceType::Cgroup | LinuxNamespaceType::Time => 0,
        } as u64;
    }
    let restore = enter_parent_namespaces(&parent_join, linux, &namespaces)?;

    let (parent_end, child_end) = sync::pair()?;
    let close_now = vec![parent_end.as_fd().as_raw_fd(), dir.lock_raw_fd()];
    let forked = sys::clone3_fork(flags, entry.into.as_ref().map(|f| f.as_raw_fd()));
    let forked = match forked {
        Ok(f) => f,
        Err(e) => {
            restore.restore();
            return Err(e).ctx(|| "clone3 of the container init with its namespaces".to_string());
        }
    };
    let (pid, pidfd) = match forked {
        sys::Forked::Child => {
            let args = InitArgs {
                config: &config,
                id: &opts.id,
                namespaces,
                join,
                gate,
                console_socket: opts.console_socket,
                cgroup_mounts,
                cgroups_later,
                no_pivot: opts.no_pivot,
                no_new_keyring: opts.no_new_keyring,
                preserve_fds: opts.preserve_fds,
                close_now,
                cgroup_entry: &entry,
                seccomp: seccomp.as_ref(),
            };
            std::mem::forget(undo);
            init::run(args, child_end)
        }
        sys::Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    restore.restore();
    drop(child_end);
    drop(gate);
    drop(join);
    undo.pid = pid;
    undo.pidfd = Some(pidfd.try_clone().ctx(|| "dup pidfd".to_string())?);

    if namespaces.is_new(LinuxNamespaceType::User) {
        write_id_maps(pid, linux)?;
    }
    if let Err(e) = parent_end.send(&Msg::Go) {
        return Err(child_error(&parent_end, pid).unwrap_or(e));
    }
    if cgroups_later {
        let cgroup = undo.cgroup.as_mut().expect("set above");
        cgroup.create()?;
        finish_cgroups(cgroup.as_ref(), &mut record, &dir, resources.as_ref())?;
        let tasks = CgroupEntry::open_tasks(cgroup.as_ref())?;
        let fds: Vec<_> = tasks.iter().map(|f| f.as_fd()).collect();
        if let Err(e) = parent_end.send_with_fds(&Msg::Cgroups(cgroup.container_mounts()), &fds) {
            return Err(child_error(&parent_end, pid).unwrap_or(e));
        }
    }
    record.pid = pid;
    record.pid_start_time = sys::process_start_time(pid).unwrap_or(0);
    // Recorded now, while the init sets up, not after it is ready: no reader sees it before
    // create ends (they take the directory's lock, which create holds), and from here on
    // delete can find the process even if this runtime dies.
    dir.write(&record)?;

    loop {
        match parent_end.recv()? {
            Some((Msg::RunHooks, _)) => {
                let state = state_json_for_hooks(&opts.id, pid, "creating", &config);
                let h = spec_.hooks().as_ref().expect("hooks requested");
                hooks::run_all("prestart", h.prestart().as_ref(), &state)?;
                hooks::run_all("createRuntime", h.create_runtime().as_ref(), &state)?;
                if let Err(e) = parent_end.send(&Msg::HooksDone) {
                    return Err(child_error(&parent_end, pid).unwrap_or(e));
                }
            }
            Some((Msg::SeccompFd, fd)) => {
                let fd = fd.ok_or_else(|| Error::Init("seccomp listener fd missing".into()))?;
                let s = linux.seccomp().as_ref().expect("filter came from the spec");
                let path = s.listener_path().as_ref().ok_or_else(|| {
                    Error::spec(
                        "linux.seccomp.listenerPath",
                        "is required when a syscall uses SCMP_ACT_NOTIFY",
                    )
                })?;
                let state_json = state_json_for_hooks(&opts.id, pid, "creating", &config);
                let state: oci_spec::runtime::State = serde_json::from_slice(&state_json)
                    .map_err(|e| Error::Init(format!("state for the seccomp agent: {e}")))?;
                let msg = cella_seccomp::process_state_json(
                    pid,
                    s.listener_metadata().as_deref(),
                    &state,
                )?;
                cella_seccomp::send_listener(fd.as_fd(), &path.to_string_lossy(), &msg)?;
            }
            Some((Msg::Ready, _)) => break,
            Some((Msg::Error(e), _)) => return Err(Error::Init(e)),
            Some((m, _)) => {
                return Err(Error::Init(format!(
                    "protocol error: unexpected {m:?} from the container init"
                )))
            }
            None => {
                return Err(Error::Init(format!(
                    "the container init exited during setup ({})",
                    describe_exit(pid)
                )))
            }
        }
    }

    if let Some(pf) = &opts.pid_file {
        state::write_atomic(pf, pid.to_string().as_bytes())?;
    }
    if opts.mode == CreateMode::Detached {
        parent_end.send(&Msg::Commit)?;
        parent_end.expect(Msg::Committed)?;
    }
    let cgroup = undo.cgroup.take().expect("set above");
    undo.armed = false;
    let dir_opt;
    let chan = match opts.mode {
        CreateMode::Detached => {
            dir_opt = None;
            None
        }
        CreateMode::Foreground => {
            dir_opt = Some(dir);
            Some(parent_end)
        }
    };
    Ok(Created {
        id: opts.id,
        pid,
        pidfd,
        chan,
        config,
        cgroup,
        dir: dir_opt,
    })
}

/// Saved namespaces of the runtime, restored after clone.
struct Restore {
    saved: Vec<(i32, OwnedFd)>,
}

impl Restore {
    fn restore(self) {
        for (nstype, fd) in &self.saved {
            // SAFETY: setns back into the namespace we were in; fd is a valid ns fd.
            unsafe { libc::setns(fd.as_raw_fd(), *nstype) };
        }
    }
}

/// Join the pid and time namespaces given by path (they take effect for children only), or
/// make a new time namespace and write its offsets before any process enters it.
fn enter_parent_namespaces(
    join: &[(LinuxNamespaceType, OwnedFd)],
    linux: &oci_spec::runtime::Linux,
    ns: &spec::NamespaceSet,
) -> Result<Restore> {
    let mut saved = Vec::new();
    let new_time = ns.is_new(LinuxNamespaceType::Time);
    if !join.is_empty() || new_time {
        for (name, t) in [
            ("pid_for_children", libc::CLONE_NEWPID),
            ("time_for_children", libc::CLONE_NEWTIME),
        ] {
            if let Ok(fd) = rustix::fs::open(
                format!("/proc/self/ns/{name}"),
                OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                saved.push((t, fd));
            }
        }
    }
    let restore = Restore { saved };
    for (t, fd) in join {
        // SAFETY: setns on an ns fd we opened; affects only our future children for pid/time.
        if unsafe { libc::setns(fd.as_raw_fd(), 0) } != 0 {
            let e = std::io::Error::last_os_error();
            restore.restore();
            return Err(e).ctx(|| {
                format!(
                    "joining the {} namespace given in linux.namespaces",
                    spec::ns_name(*t)
                )
            });
        }
    }
    if new_time {
        let r = (|| -> Result<()> {
            // SAFETY: CLONE_NEWTIME only changes the time namespace of our future children; it
            // does not affect memory or file descriptors this process relies on.
            unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWTIME) }
                .ctx(|| "creating the time namespace".to_string())?;
            let mut text = String::new();
            for (clock, off) in linux.time_offsets().iter().flatten() {
                text.push_str(&format!(
                    "{clock} {} {}\n",
                    off.secs().unwrap_or(0),
                    off.nanosecs().unwrap_or(0)
                ));
            }
            if !text.is_empty() {
                std::fs::write("/proc/self/timens_offsets", &text)
                    .ctx(|| format!("linux.timeOffsets: writing {text:?}"))?;
            }
            Ok(())
        })();
        if let Err(e) = r {
            restore.restore();
            return Err(e);
        }
    }
    Ok(restore)
}

fn write_id_maps(pid: i32, linux: &oci_spec::runtime::Linux) -> Result<()> {
    let fmt = |maps: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
        maps.iter()
            .flatten()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect::<String>()
    };
    let uid = fmt(linux.uid_mappings());
    let gid = fmt(linux.gid_mappings());
    std::fs::write(format!("/proc/{pid}/uid_map"), &uid)
        .ctx(|| format!("linux.uidMappings: writing {uid:?} to /proc/{pid}/uid_map"))?;
    std::fs::write(format!("/proc/{pid}/gid_map"), &gid)
        .ctx(|| format!("linux.gidMappings: writing {gid:?} to /proc/{pid}/gid_map"))?;
    Ok(())
}

/// When talking to the init fails, the init has usually died after reporting why: fetch that.
fn child_error(chan: &Channel, pid: i32) -> Option<Error> {
    loop {
        match chan.recv() {
            Ok(Some((Msg::Error(e), _))) => return Some(Error::Init(e)),
            Ok(Some(_)) => continue,
            Ok(None) => {
                return Some(Error::Init(format!(
                    "the container init exited during setup ({})",
                    describe_exit(pid)
                )))
            }
            Err(_) => return None,
        }
    }
}

fn describe_exit(pid: i32) -> String {
    match rustix::process::waitpid(
        rustix::process::Pid::from_raw(pid),
        rustix::process::WaitOptions::NOHANG,
    ) {
        Ok(Some((_, st))) => {
            if let Some(c) = st.exit_status() {
                format!("exit status {c}")
            } else if let Some(s) = st.terminating_signal() {
                format!("killed by signal {s}")
            } else {
                "unknown status".into()
            }
        }
        _ => "no status".into(),
    }
}

/// The state JSON given to hooks on stdin.
pub fn state_json_for_hooks(id: &str, pid: i32, status: &str, cfg: &Config) -> Vec<u8> {
    let annotations: BTreeMap<String, String> = cfg
        .spec
        .annotations()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let v = serde_json::json!({
        "ociVersion": spec::OCI_VERSION,
        "id": id,
        "status": status,
        "pid": pid,
        "bundle": cfg.bundle,
        "annotations": annotations,
    });
    serde_json::to_vec(&v).expect("json")
}

impl Created {
    /// Foreground mode: let the init exec, run poststart hooks, and mark the container running.
    pub fn start(&mut self) -> Result<()> {
        let chan = self
            .chan
            .as_ref()
            .ok_or_else(|| Error::Init("start: not a foreground container".into()))?;
        chan.send(&Msg::Start)?;
        // The init's end closes at exec (O_CLOEXEC); an Error message means exec failed.
        match chan.recv()? {
            None => {}
            Some((Msg::Error(e), _)) => return Err(Error::Init(e)),
            Some((m, _)) => return Err(Error::Init(format!("protocol error: unexpected {m:?}"))),
        }
        let state = state_json_for_hooks(&self.id, self.pid, "running", &self.config);
        if let Some(h) = self.config.spec.hooks() {
            hooks::run_all("poststart", h.poststart().as_ref(), &state)?;
        }
        Ok(())
    }

    /// Delete a foreground container once its process has been waited for: the same as
    /// [`delete`] with --force, without reading back what this process already holds.
    pub fn delete(self, root: &StateRoot) -> Result<()> {
        let _ = rustix::process::pidfd_send_signal(&self.pidfd, rustix::process::Signal::KILL);
        let mut problems = Vec::new();
        if let Err(e) = self.cgroup.destroy() {
            problems.push(e.to_string());
        }
        drop(self.dir);
        if let Err(e) = std::fs::remove_dir_all(root.dir_of(&self.id)) {
            if e.kind() != std::io::ErrorKind::NotFound {
                problems.push(format!("removing state dir: {e}"));
            }
        }
        run_poststop(&self.id, self.pid, &self.config);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Init(format!(
                "deleting container {:?}: {}",
                self.id,
                problems.join("; ")
            )))
        }
    }

    /// The container's cgroup.
    pub fn cgroup(&self) -> &dyn CgroupManager {
        self.cgroup.as_ref()
    }

    /// The validated config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Release the state dir lock (so other commands can act on the container while the
    /// caller waits for it).
    pub fn unlock(&mut self) {
        self.dir = None;
    }
}

/// Status of a recorded container.
pub fn status_of(dir: &ContainerDir, rec: &Record) -> Status {
    if rec.pid <= 0 {
        return Status::Stopped;
    }
    let alive = matches!(sys::process_stat(rec.pid),
        Some((state, start)) if start == rec.pid_start_time && !matches!(state, 'Z' | 'X'));
    if !alive {
        return Status::Stopped;
    }
    if let Ok(cg) = open_cgroup(rec) {
        if cg.is_frozen().unwrap_or(false) {
            return Status::Paused;
        }
    }
    if dir.fifo_path().exists() {
        Status::Created
    } else {
        Status::Running
    }
}

/// The cgroup of a recorded container.
pub fn open_cgroup_of(rec: &Record) -> Result<Box<dyn CgroupManager>> {
    open_cgroup(rec)
}

fn open_cgroup(rec: &Record) -> Result<Box<dyn CgroupManager>> {
    let (mounts, layout) = host_cgroups()?;
    let path = CgroupPath::resolve(Some(&rec.cgroup_path), &rec.id)?;
    Ok(cella_cgroups::open_with(
        mounts,
        layout,
        &path,
        rec.cgroup_created.clone(),
    )?)
}

/// The host's cgroup mounts and their layout, from `/proc/self/mountinfo` read once per
/// process: each command is one short-lived process, and the cgroup mounts do not change
/// under it (`delete` and `exec` look at a container's status and then open its cgroup;
/// `list` does that for every container).
pub(crate) fn host_cgroups() -> Result<(&'static Mounts, Layout)> {
    static MOUNTS: OnceLock<Mounts> = OnceLock::new();
    let mounts = match MOUNTS.get() {
        Some(m) => m,
        None => {
            let m = Mounts::detect()?;
            MOUNTS.get_or_init(|| m)
        }
    };
    Ok((mounts, mounts.layout()?))
}

fn report(dir: &ContainerDir, rec: Record) -> StateReport {
    let status = status_of(dir, &rec);
    StateReport {
        oci_version: rec.oci_version,
        id: rec.id,
        pid: if status == Status::Stopped {
            0
        } else {
            rec.pid
        },
        status,
        bundle: rec.bundle,
        rootfs: rec.rootfs,
        created: rec.created,
        owner: String::new(),
        annotations: rec.annotations,
    }
}

/// `state ID`.
pub fn state(root: &StateRoot, id: &str) -> Result<StateReport> {
    let dir = root.open_shared(id)?;
    let rec = dir.read()?;
    Ok(report(&dir, rec))
}

/// `list`.
pub fn list(root: &StateRoot) -> Result<Vec<StateReport>> {
    let mut out = Vec::new();
    for id in root.list()? {
        if let Ok(dir) = root.open_shared(&id) {
            if let Ok(rec) = dir.read() {
                out.push(report(&dir, rec));
            }
        }
    }
    Ok(out)
}

/// `start ID`: release a created container's init.
pub fn start(root: &StateRoot, id: &str) -> Result<()> {
    let dir = root.open(id)?;
    let rec = dir.read()?;
    let status = status_of(&dir, &rec);
    if status != Status::Created {
        return Err(Error::BadStatus {
            id: id.into(),
            status: status.to_string(),
            what: "only a created container can be started".into(),
        });
    }
    let config = dir.read_config()?;
    let fifo = dir.fifo_path();
    // The pidfd first: once the fifo is open the program may run and exit at once.
    let pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(rec.pid).expect("pid > 0"),
        rustix::process::PidfdFlags::empty(),
    )
    .ctx(|| format!("pidfd_open({})", rec.pid))?;
    let rd = rustix::fs::open(
        &fifo,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("opening {}", fifo.display()))?;
    // Wait for the init's "0" (it opens the fifo for writing as soon as we hold the read end),
    // then for EOF, which comes when exec closes its O_CLOEXEC write end.
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut buf = [0u8; 4096];
        match rustix::io::read(&rd, &mut buf) {
            Ok(0) if !got.is_empty() => break,
            Ok(n) if n > 0 => {
                got.extend_from_slice(&buf[..n]);
                continue;
            }
            Ok(_) | Err(rustix::io::Errno::AGAIN) => {}
            Err(e) => return Err(e).ctx(|| format!("reading {}", fifo.display())),
        }
        if Instant::now() > deadline {
            return Err(Error::Init(format!(
                "container {id:?} did not start within 60s"
            )));
        }
        let mut fds = [
            rustix::event::PollFd::new(&rd, rustix::event::PollFlags::IN),
            rustix::event::PollFd::new(&pidfd, rustix::event::PollFlags::IN),
        ];
        let ts = rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 50_000_000,
        };
        let _ = rustix::event::poll(&mut fds, Some(&ts));
        let init_gone = fds[1].revents().contains(rustix::event::PollFlags::IN);
        if init_gone && got.is_empty() {
            if let Ok(n) = rustix::io::read(&rd, &mut buf) {
                if n > 0 {
                    got.extend_from_slice(&buf[..n]);
                    continue;
                }
            }
            let _ = std::fs::remove_file(&fifo);
            return Err(Error::Init(format!(
                "container {id:?} init exited before it could be started"
            )));
        }
    }
    let _ = std::fs::remove_file(&fifo);
    if got.len() > 1 {
        // The init wrote "0" then an error: exec failed.
        return Err(Error::Init(
            String::from_utf8_lossy(&got[1..]).trim().to_string(),
        ));
    }
    let cfg = Config {
        rootfs: rec.rootfs.clone(),
        bundle: rec.bundle.clone(),
        mounts: Vec::new(),
        spec: config,
        source: None,
    };
    if let Some(h) = cfg.spec.hooks() {
        let state = state_json_for_hooks(id, rec.pid, "running", &cfg);
        hooks::run_all("poststart", h.poststart().as_ref(), &state)?;
    }
    Ok(())
}

/// `kill ID SIGNAL` (`all`: every process in the container's cgroup).
pub fn kill(root: &StateRoot, id: &str, signal: i32, all: bool) -> Result<()> {
    let dir = root.open_shared(id)?;
    let rec = dir.read()?;
    let status = status_of(&dir, &rec);
    if all {
        return Ok(open_cgroup(&rec)?.kill_all(signal)?);
    }
    if status == Status::Stopped {
        return Err(Error::BadStatus {
            id: id.into(),
            status: status.to_string(),
            what: "cannot signal a stopped container".into(),
        });
    }
    signal_pid(rec.pid, signal)
}

fn signal_pid(pid: i32, signal: i32) -> Result<()> {
    let fd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(pid).expect("pid > 0"),
        rustix::process::PidfdFlags::empty(),
    )
    .ctx(|| format!("pidfd_open({pid})"))?;
    // SAFETY: pidfd_send_signal with a valid pidfd, a signal number and no siginfo.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error())
            .ctx(|| format!("sending signal {signal} to pid {pid}"));
    }
    Ok(())
}

/// `delete [--force] ID`.
pub fn delete(root: &StateRoot, id: &str, force: bool) -> Result<()> {
    let dir = match root.open(id) {
        Ok(d) => d,
        Err(Error::NotFound(_)) if force => {
            // A create that died before writing its state may have left an empty dir.
            let _ = std::fs::remove_dir_all(root.dir_of(id));
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let rec = dir.read()?;
    let status = status_of(&dir, &rec);
    if matches!(status, Status::Running | Status::Paused) && !force {
        return Err(Error::BadStatus {
            id: id.into(),
            status: status.to_string(),
            what: "cannot delete a container that is not stopped; stop it first or use --force"
                .into(),
        });
    }
    let mut problems = Vec::new();
    let cgroup = open_cgroup(&rec);
    if status != Status::Stopped {
        if let Ok(cg) = &cgroup {
            if status == Status::Paused {
                let _ = cg.thaw();
            }
        }
        if let Err(e) = signal_pid(rec.pid, libc::SIGKILL) {
            problems.push(e.to_string());
        }
        wait_gone(rec.pid, rec.pid_start_time);
    }
    match &cgroup {
        Ok(cg) => {
            if let Err(e) = cg.destroy() {
                problems.push(e.to_string());
            }
        }
        Err(e) => problems.push(e.to_string()),
    }
    let config = dir.read_config().ok();
    let bundle = rec.bundle.clone();
    let rootfs = rec.rootfs.clone();
    let pid = rec.pid;
    if let Err(e) = dir.remove() {
        problems.push(e.to_string());
    }
    if let Some(spec) = config {
        let cfg = Config {
            spec,
            bundle,
            rootfs,
            mounts: Vec::new(),
            source: None,
        };
        run_poststop(id, pid, &cfg);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Init(format!(
            "deleting container {id:?}: {}",
            problems.join("; ")
        )))
    }
}

/// Poststop hooks: a failing one is reported as a warning and the rest still run (the spec).
fn run_poststop(id: &str, pid: i32, cfg: &Config) {
    let Some(h) = cfg.spec.hooks() else { return };
    let state = state_json_for_hooks(id, pid, "stopped", cfg);
    for (i, hook) in h.poststop().iter().flatten().enumerate() {
        if let Err(e) = hooks::run("poststop", i, hook, &state) {
            eprintln!("cella: warning: {e}");
        }
    }
}

/// Wait (up to 10 s) until `pid` with that start time is gone or a zombie.
fn wait_gone(pid: i32, start: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if !matches!(sys::process_stat(pid),
            Some((state, s)) if s == start && !matches!(state, 'Z' | 'X'))
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Host pids of every process in the container (`ps`).
pub fn pids(root: &StateRoot, id: &str) -> Result<Vec<i32>> {
    let dir = root.open_shared(id)?;
    let rec = dir.read()?;
    let mut p = open_cgroup(&rec)?.pids()?;
    p.sort_unstable();
    Ok(p)
}

/// `pause`: freeze every process of a running container.
pub fn pause(root: &StateRoot, id: &str) -> Result<()> {
    let dir = root.open(id)?;
    let rec = dir.read()?;
    let status = status_of(&dir, &rec);
    if status != Status::Running && status != Status::Created {
        return Err(Error::BadStatus {
            id: id.into(),
            status: status.to_string(),
            what: "only a running or created container can be paused".into(),
        });
    }
    Ok(open_cgroup(&rec)?.freeze()?)
}

/// `resume`: thaw a paused container.
pub fn resume(root: &StateRoot, id: &str) -> Result<()> {
    let dir = root.open(id)?;
    let rec = dir.read()?;
    let status = status_of(&dir, &rec);
    if status != Status::Paused {
        return Err(Error::BadStatus {
            id: id.into(),
            status: status.to_string(),
            what: "only a paused container can be resumed".into(),
        });
    }
    Ok(open_cgroup(&rec)?.thaw()?)
}

/// The device-cgroup rules to apply: the spec's, then allow rules for the devices every
/// container gets and the ones the spec creates (so a spec's "deny all" keeps /dev/null;
/// a created device that a spec rule names is only allowed to be made, see below).
pub fn effective_resources(
    linux: &oci_spec::runtime::Linux,
) -> Option<oci_spec::runtime::LinuxResources> {
    use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};
    let mut r = linux.resources().clone()?;
    let mut rules: Vec<LinuxDeviceCgroup> = r.devices().clone().unwrap_or_default();
    if rules.is_empty() {
        return Some(r);
    }
    // A device the spec creates is allowed too, unless a rule of the spec names exactly that
    // device: then the spec decides whether it may be read and written (e.g. a /dev/kmsg that
    // must not be readable), and only mknod is allowed, so that the init can create it.
    let named: Vec<(LinuxDeviceType, i64, i64)> = rules
        .iter()
        .filter_map(|d| {
            Some((
                d.typ().unwrap_or(LinuxDeviceType::A),
                d.major()?,
                d.minor()?,
            ))
        })
        .collect();
    // As runc: mknod of any node is allowed (opening it is still filtered by the rules).
    for t in [LinuxDeviceType::C, LinuxDeviceType::B] {
        let mut d = LinuxDeviceCgroup::default();
        d.set_allow(true);
        d.set_typ(Some(t));
        d.set_access(Some("m".to_string()));
        rules.push(d);
    }
    let mut allow_access =
        |t: LinuxDeviceType, maj: Option<i64>, min: Option<i64>, access: &str| {
            let mut d = LinuxDeviceCgroup::default();
            d.set_allow(true);
            d.set_typ(Some(t));
            d.set_major(maj);
            d.set_minor(min);
            d.set_access(Some(access.to_string()));
            rules.push(d);
        };
    let mut allow =
        |t: LinuxDeviceType, maj: Option<i64>, min: Option<i64>| allow_access(t, maj, min, "rwm");
    // As runc: the default devices, the pty devices and /dev/net/tun. Not the host's
    // console (5:1): /dev/console in a container is a bind of its pty.
    for (_, maj, min) in crate::rootfs::default_devices() {
        allow(LinuxDeviceType::C, Some(maj as i64), Some(min as i64));
    }
    allow(LinuxDeviceType::C, Some(5), Some(2)); // /dev/ptmx
    allow(LinuxDeviceType::C, Some(136), None); // /dev/pts/*
    allow(LinuxDeviceType::C, Some(10), Some(200)); // /dev/net/tun
    for d in linux.devices().iter().flatten() {
        let t = if d.typ() == LinuxDeviceType::U {
            LinuxDeviceType::C
        } else {
            d.typ()
        };
        let explicit = named.iter().any(|(nt, ma, mi)| {
            (*nt == t || *nt == LinuxDeviceType::A) && *ma == d.major() && *mi == d.minor()
        });
        if t != LinuxDeviceType::P {
            allow_access(
                t,
                Some(d.major()),
                Some(d.minor()),
                if explicit { "m" } else { "rwm" },
            );
        }
    }
    r.set_devices(Some(rules));
    Some(r)
}

/// The state record of a container being made from `config` (no process yet).
pub(crate) fn new_record(id: &str, config: &Config, cgroup_path: &CgroupPath) -> Record {
    Record {
        oci_version: spec::OCI_VERSION.to_string(),
        id: id.to_string(),
        pid: 0,
        pid_start_time: 0,
        bundle: config.bundle.clone(),
        rootfs: config.rootfs.clone(),
        created: state::rfc3339_now(),
        annotations: config
            .spec
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        cgroup_path: cgroup_path.as_str().to_string(),
        cgroup_created: Vec::new(),
    }
}

/// After the container's cgroup directories exist: record the parents an explicit
/// cgroupsPath needed (the container's own directories follow from cgroup_path, so nothing
/// is written for the default path), then write the limits.
fn finish_cgroups(
    cgroup: &dyn CgroupManager,
    record: &mut Record,
    dir: &ContainerDir,
    resources: Option<&oci_spec::runtime::LinuxResources>,
) -> Result<()> {
    record.cgroup_created = cgroup.created_dirs();
    if !record.cgroup_created.is_empty() {
        dir.write(record)?;
    }
    if let Some(r) = resources {
        cgroup.apply(r)?;
    }
    Ok(())
}

/// How a new process enters a container's cgroup without the runtime writing its pid to
/// cgroup.procs (on v1 that write waits for an RCU grace period, 5-25 ms): a v2 directory fd
/// for clone3(CLONE_INTO_CGROUP), and v1 `tasks` files the process writes "0" to itself.
pub struct CgroupEntry {
    pub into: Option<OwnedFd>,
    pub tasks: Vec<OwnedFd>,
}

impl CgroupEntry {
    /// Open the entry points of every hierarchy of `cgroup`.
    pub fn open(cgroup: &dyn CgroupManager) -> Result<CgroupEntry> {
        Ok(CgroupEntry {
            into: cgroup.unified_dir_fd()?,
            tasks: Self::open_tasks(cgroup)?,
        })
    }

    /// The `tasks` file of every v1 hierarchy, for writing (opened by the runtime, before any
    /// user namespace exists, so the kernel checks the runtime's credentials).
    pub fn open_tasks(cgroup: &dyn CgroupManager) -> Result<Vec<OwnedFd>> {
        let unified = cgroup.cgroup2_dir();
        let mut tasks = Vec::new();
        for dir in cgroup.dirs() {
            if unified.as_ref() == Some(&dir) {
                continue;
            }
            let t = dir.join("tasks");
            let fd = rustix::fs::open(&t, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())
                .ctx(|| format!("opening {}", t.display()))?;
            tasks.push(fd);
        }
        Ok(tasks)
    }

    /// In the new process: move ourselves into every v1 hierarchy.
    pub fn enter(&self) -> Result<()> {
        enter_tasks(&self.tasks)
    }
}

/// Move the calling (single-threaded) process into the v1 cgroups whose `tasks` files these
/// are: writing "0" moves only the caller, which the kernel does without the global lock
/// whose first use waits for an RCU grace period.
pub(crate) fn enter_tasks(tasks: &[OwnedFd]) -> Result<()> {
    for fd in tasks {
        rustix::io::write(fd, b"0")
            .ctx(|| "joining the container's cgroup (writing 0 to tasks)".to_string())?;
    }
    Ok(())
}
