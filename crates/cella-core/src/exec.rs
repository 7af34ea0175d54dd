//! `exec`: run another process inside a running container. The new process joins every
//! namespace and the cgroup of the container's init and inherits the container's settings
//! (user, capabilities, no_new_privs, seccomp, LSM labels) unless the given process says
//! otherwise.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Process};
use rustix::fs::{Mode, OFlags};

use crate::container::{self, Status};
use crate::error::{Context, Error, Result};
use crate::spec;
use crate::state::StateRoot;
use crate::sync::{self, Channel, Msg};
use crate::{console, init, sys};

/// Options of `exec`.
#[derive(Debug)]
pub struct ExecOptions {
    pub id: String,
    /// The process to run (built by the caller from --process or from flags).
    pub process: Process,
    pub pid_file: Option<PathBuf>,
    /// A connected unix socket to send the pty master to (process.terminal).
    pub console_socket: Option<OwnedFd>,
    pub preserve_fds: u32,
}

/// A started exec process.
#[derive(Debug)]
pub struct Execed {
    pub pid: i32,
    pub pidfd: OwnedFd,
}

/// The container's process spec, to build an exec process from (runc's human flags).
pub fn container_process(root: &StateRoot, id: &str) -> Result<Process> {
    let dir = root.open_shared(id)?;
    let spec = dir.read_config()?;
    spec.process()
        .clone()
        .ok_or_else(|| Error::spec("process", "the container has no process"))
}

/// Parse a --process file (a runtime-spec Process object).
pub fn load_process(path: &Path) -> Result<Process> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
        path: path.to_path_buf(),
        message: format!("cannot read the process file: {e}"),
    })?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de).map_err(|e| Error::Config {
        path: path.to_path_buf(),
        message: format!("invalid process: field {}: {}", e.path(), e.inner()),
    })
}

/// Start `opts.process` inside container `opts.id`. Returns once the process has exec'd.
pub fn exec(root: &StateRoot, opts: ExecOptions) -> Result<Execed> {
    let dir = root.open_shared(&opts.id)?;
    let rec = dir.read()?;
    let status = container::status_of(&dir, &rec);
    if status != Status::Running && status != Status::Created {
        return Err(Error::BadStatus {
            id: opts.id.clone(),
            status: status.to_string(),
            what: if status == Status::Paused {
                "cannot exec into a paused container; resume it first".into()
            } else {
                "cannot exec into a container that is not running".into()
            },
        });
    }
    let spec_ = dir.read_config()?;
    drop(dir);
    let process = opts.process;
    crate::process::validate(&process, "process")?;
    if process.terminal().unwrap_or(false) && opts.console_socket.is_none() {
        return Err(Error::spec(
            "process.terminal",
            "is true but no console socket was given (--console-socket)",
        ));
    }
    let linux = spec_.linux().clone().unwrap_or_default();
    let seccomp = match linux.seccomp() {
        Some(s) => Some(cella_seccomp::Filter::from_spec(s)?),
        None => None,
    };
    let ns = spec::namespaces(&spec_);
    let init_pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(rec.pid).expect("pid > 0"),
        rustix::process::PidfdFlags::empty(),
    )
    .ctx(|| format!("opening the container init (pid {})", rec.pid))?;
    // Namespaces to join: every one the container has. pid and time take effect for our
    // children, so the runtime joins them before clone and returns after.
    let mut child_flags = 0i32;
    for (t, _) in ns.entries() {
        child_flags |= match t {
            LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
            LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
            LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
            LinuxNamespaceType::Network => libc::CLONE_NEWNET,
            LinuxNamespaceType::User => libc::CLONE_NEWUSER,
            LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
            LinuxNamespaceType::Pid | LinuxNamespaceType::Time => 0,
        };
    }
    let mut parent_flags = 0i32;
    if ns.has(LinuxNamespaceType::Pid) {
        parent_flags |= libc::CLONE_NEWPID;
    }
    if ns.has(LinuxNamespaceType::Time) {
        parent_flags |= libc::CLONE_NEWTIME;
    }
    let saved: Vec<(i32, OwnedFd)> = [
        ("pid_for_children", libc::CLONE_NEWPID),
        ("time_for_children", libc::CLONE_NEWTIME),
    ]
    .into_iter()
    .filter(|(_, f)| parent_flags & f != 0)
    .filter_map(|(n, f)| {
        rustix::fs::open(
            format!("/proc/self/ns/{n}"),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()
        .map(|fd| (f, fd))
    })
    .collect();
    let restore = || {
        for (t, fd) in &saved {
            // SAFETY: setns back into our own namespace through a valid ns fd.
            unsafe { libc::setns(fd.as_raw_fd(), *t) };
        }
    };
    if parent_flags != 0 {
        // SAFETY: setns with a pidfd and pid/time flags changes only what our children join.
        if unsafe { libc::setns(init_pidfd.as_raw_fd(), parent_flags) } != 0 {
            return Err(std::io::Error::last_os_error())
                .ctx(|| format!("joining the pid namespace of container {:?}", opts.id));
        }
    }
    let cgroup = container::open_cgroup_of(&rec)?;
    let entry = container::CgroupEntry::open(cgroup.as_ref())?;
    let (parent_end, child_end) = sync::pair()?;
    let host_proc = rustix::fs::open(
        "/proc",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "opening /proc".to_string())?;
    let forked = sys::clone3_fork(0, entry.into.as_ref().map(|f| f.as_raw_fd()));
    restore();
    let forked = forked.ctx(|| "clone3 of the exec process".to_string())?;
    let (pid, pidfd) = match forked {
        sys::Forked::Child => {
            // SAFETY: closing the parent's end, which this process never uses or drops.
            unsafe { libc::close(parent_end.as_fd().as_raw_fd()) };
            let r = entry.enter().and_then(|()| {
                exec_child(
                    &init_pidfd,
                    child_flags,
                    &process,
                    &host_proc,
                    opts.console_socket.as_ref(),
                    seccomp.as_ref(),
                    opts.preserve_fds,
                    &child_end,
                )
            });
            let e = match r {
                Ok(never) => match never {},
                Err(e) => e,
            };
            let _ = child_end.report_and_linger(e.to_string());
            sys::exit_now(127)
        }
        sys::Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    drop(child_end);
    let kill = |e: Error| -> Error {
        let _ = rustix::process::pidfd_send_signal(&pidfd, rustix::process::Signal::KILL);
        let _ = rustix::process::waitpid(
            rustix::process::Pid::from_raw(pid),
            rustix::process::WaitOptions::empty(),
        );
        e
    };
    if let Err(e) = parent_end.send(&Msg::Go) {
        return Err(kill(e));
    }
    loop {
        match parent_end.recv() {
            Ok(Some((Msg::SeccompFd, Some(fd)))) => {
                let s = linux.seccomp().as_ref().expect("filter from spec");
                let r = (|| -> Result<()> {
                    let path = s.listener_path().as_ref().ok_or_else(|| {
                        Error::spec(
                            "linux.seccomp.listenerPath",
                            "is required with SCMP_ACT_NOTIFY",
                        )
                    })?;
                    let state: oci_spec::runtime::State = serde_json::from_value(serde_json::json!({
                        "ociVersion": spec::OCI_VERSION, "id": opts.id, "status": "running", "pid": rec.pid, "bundle": rec.bundle,
                    }))
                    .map_err(|e| Error::Init(e.to_string()))?;
                    let msg = cella_seccomp::process_state_json(
                        pid,
                        s.listener_metadata().as_deref(),
                        &state,
                    )?;
                    cella_seccomp::send_listener(fd.as_fd(), &path.to_string_lossy(), &msg)?;
                    Ok(())
                })();
                if let Err(e) = r {
                    return Err(kill(e));
                }
            }
            Ok(Some((Msg::Error(e), _))) => return Err(kill(Error::Init(e))),
            Ok(Some((m, _))) => {
                return Err(kill(Error::Init(format!(
                    "protocol error: unexpected {m:?} from the exec process"
                ))))
            }
            // EOF: the process exec'd (its end of the channel is close-on-exec).
            Ok(None) => break,
            Err(e) => return Err(kill(e)),
        }
    }
    if let Some(pf) = &opts.pid_file {
        crate::state::write_atomic(pf, pid.to_string().as_bytes())?;
    }
    Ok(Execed { pid, pidfd })
}

enum Never {}

#[allow(clippy::too_many_arguments)]
fn exec_child(
    init_pidfd: &OwnedFd,
    flags: i32,
    process: &Process,
    host_proc: &OwnedFd,
    console_socket: Option<&OwnedFd>,
    seccomp: Option<&cella_seccomp::Filter>,
    preserve_fds: u32,
    chan: &Channel,
) -> Result<Never> {
    // Nothing in the container may ptrace or open /proc/PID/exe of this process (a copy of
    // the runtime) before it execs the container's program.
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .ctx(|| "prctl(PR_SET_DUMPABLE)".to_string())?;
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .ctx(|| "prctl(PR_SET_PDEATHSIG)".to_string())?;
    init::reset_signals();
    chan.expect(Msg::Go)?;
    // SAFETY: setns with the init's pidfd joins all of its namespaces in `flags` at once.
    if flags != 0 && unsafe { libc::setns(init_pidfd.as_raw_fd(), flags) } != 0 {
        return Err(std::io::Error::last_os_error())
            .ctx(|| "joining the container's namespaces".to_string());
    }
    rustix::process::chdir(process.cwd()).ctx(|| {
        format!(
            "process.cwd: chdir to {} in the container",
            process.cwd().display()
        )
    })?;
    init::verify_cwd_inside_root(process.cwd())?;
    let mut pty = None;
    if process.terminal().unwrap_or(false) {
        let root = rustix::fs::open(
            "/",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| "opening /".to_string())?;
        let size = process
            .console_size()
            .as_ref()
            .map(|b| (b.height() as u16, b.width() as u16));
        let p = console::open_in_container(root.as_fd(), size)?;
        console::send_master(
            console_socket.expect("checked by exec").as_fd(),
            p.master.as_fd(),
        )?;
        pty = Some(p.slave);
    }
    let prepared = init::prepare_process(process, host_proc)?;
    let loaded = init::drop_privileges(process, &prepared, seccomp, chan)?;
    if let Some(slave) = &pty {
        console::become_controlling(slave)?;
    }
    drop(pty);
    // The parent-death signal survives exec: a detached exec must not die with the runtime.
    rustix::process::set_parent_process_death_signal(None)
        .ctx(|| "clearing PR_SET_PDEATHSIG".to_string())?;
    Err(init::final_exec(&prepared, preserve_fds, seccomp, loaded))
}
