//! The container's init: the code the cloned child runs, from its first instruction in the
//! new namespaces to the execve of the user's program. It never returns: it either execs or
//! reports an error to the runtime over the channel and exits.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use oci_spec::runtime::LinuxNamespaceType;
use rustix::fs::{Mode, OFlags};
use rustix::process::Signal;

use crate::caps::CapSets;
use crate::error::{Context, Error, Result};
use crate::mounts::MountKind;
use crate::rootfs::{self, CgroupMount};
use crate::spec::{Config, NamespaceSet};
use crate::sync::{Channel, Msg};
use crate::{console, hooks, process, resolve, sys};

/// How the init waits for `start`.
pub enum Gate {
    /// `create`: block opening the exec fifo for writing until `start` opens it for reading.
    Fifo(OwnedFd),
    /// `run`: wait for a Start message on the channel.
    Channel,
}

/// Everything the init needs; built by the runtime before clone and inherited by copy.
pub struct InitArgs<'a> {
    pub config: &'a Config,
    pub id: &'a str,
    pub namespaces: NamespaceSet,
    /// Opened namespace files to join (setns), except pid and time (joined by the parent).
    pub join: Vec<(LinuxNamespaceType, OwnedFd)>,
    pub gate: Gate,
    /// A connected console socket, when process.terminal is set.
    pub console_socket: Option<OwnedFd>,
    /// What to mount at /sys/fs/cgroup (empty while `cgroups_later`).
    pub cgroup_mounts: Vec<CgroupMount>,
    /// The runtime makes the v1 cgroups after clone and sends them (Msg::Cgroups) with their
    /// `tasks` files; the init joins them before it first needs them.
    pub cgroups_later: bool,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// Fds of the runtime that the init must close at once (the parent's channel end, the
    /// state dir lock).
    pub close_now: Vec<RawFd>,
    /// How to join the container's cgroup (done first thing).
    pub cgroup_entry: &'a crate::container::CgroupEntry,
    pub seccomp: Option<&'a cella_seccomp::Filter>,
}

/// The child's entry point. Never returns.
pub fn run(args: InitArgs<'_>, chan: Channel) -> ! {
    for fd in &args.close_now {
        // SAFETY: these fds belong to the parent's objects, which this process will never use
        // or drop (it leaves through exec or _exit).
        unsafe { libc::close(*fd) };
    }
    match setup_and_exec(args, &chan) {
        Ok(never) => match never {},
        Err(e) => {
            // After Commit nobody reads the channel; then stderr is all the user has.
            if chan.report_and_linger(e.to_string()).is_err() {
                let _ =
                    rustix::io::write(rustix::stdio::stderr(), format!("cella: {e}\n").as_bytes());
            }
            sys::exit_now(127)
        }
    }
}

enum Never {}

fn setup_and_exec(mut args: InitArgs<'_>, chan: &Channel) -> Result<Never> {
    let cfg = args.config;
    let spec = &cfg.spec;
    let linux = spec.linux().as_ref().expect("validated");
    let proc_spec = spec.process().as_ref().expect("validated");
    let ns = &args.namespaces;

    args.cgroup_entry.enter()?;
    reset_signals();
    rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
        .ctx(|| "prctl(PR_SET_PDEATHSIG)".to_string())?;
    // (If the runtime died before the prctl, the channel reads below see EOF and we exit.)
    // Files we create (devices, dirs) get exactly the modes asked for.
    rustix::process::umask(Mode::empty());

    // Join namespaces given by path: the user namespace first, as it owns the others.
    let mut got_go = false;
    for (t, fd) in args
        .join
        .iter()
        .filter(|(t, _)| *t == LinuxNamespaceType::User)
    {
        setns(fd, *t)?;
    }
    if ns.is_new(LinuxNamespaceType::User) {
        chan.expect(Msg::Go)?;
        got_go = true;
    }
    if ns.has(LinuxNamespaceType::User) {
        become_root_in_userns()?;
    }
    for (t, fd) in args
        .join
        .iter()
        .filter(|(t, _)| *t != LinuxNamespaceType::User && *t != LinuxNamespaceType::Cgroup)
    {
        setns(fd, *t)?;
    }
    if ns.is_new(LinuxNamespaceType::Network) {
        loopback_up()?;
    }
    if !args.no_new_keyring {
        join_session_keyring(args.id);
    }

    // The host's procfs, opened before the container's mounts exist, checked to be procfs:
    // every later /proc access of the init goes through it.
    let procfd = open_host_proc()?;
    let host_pid: i32 = rustix::fs::readlinkat(&procfd, "self", Vec::new())
        .ok()
        .and_then(|s| s.to_str().ok().and_then(|s| s.parse().ok()))
        .unwrap_or(0);
    let dev_null = rootfs::open_dev_null()?;

    let propagation = linux
        .rootfs_propagation()
        .as_deref()
        .and_then(crate::mounts::propagation_from_name);
    let private = matches!(propagation, Some((p, _)) if p == sys::propagation::PRIVATE);
    let rootfd = rootfs::prepare(&cfg.rootfs, private)?;
    let ctx = rootfs::MountContext {
        rootfd: rootfd.as_fd(),
        userns: ns.has(LinuxNamespaceType::User),
        cgroupns: ns.has(LinuxNamespaceType::Cgroup),
    };
    let mut cgroup_mounts = std::mem::take(&mut args.cgroup_mounts);
    let mut cgroups_pending = args.cgroups_later;
    let join_cgroups = |pending: &mut bool, mounts: &mut Vec<CgroupMount>| -> Result<()> {
        if *pending {
            let (m, tasks) = chan.expect_cgroups()?;
            crate::container::enter_tasks(&tasks)?;
            *mounts = m;
            *pending = false;
        }
        Ok(())
    };
    let mut cgroupns_done = false;
    let enter_cgroup_ns = |got_go: &mut bool, done: &mut bool| -> Result<()> {
        if !*got_go {
            chan.expect(Msg::Go)?;
            *got_go = true;
        }
        if !*done {
            if let Some((_, fd)) = args
                .join
                .iter()
                .find(|(t, _)| *t == LinuxNamespaceType::Cgroup)
            {
                setns(fd, LinuxNamespaceType::Cgroup)?;
            } else if ns.is_new(LinuxNamespaceType::Cgroup) {
                // SAFETY: CLONE_NEWCGROUP changes only the cgroup view of this single-threaded
                // process; no fd or memory state depends on it.
                unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWCGROUP) }
                    .ctx(|| "creating the cgroup namespace".to_string())?;
            }
            *done = true;
        }
        Ok(())
    };
    for plan in &cfg.mounts {
        if plan.kind == MountKind::Cgroup {
            join_cgroups(&mut cgroups_pending, &mut cgroup_mounts)?;
            if ns.has(LinuxNamespaceType::Cgroup) {
                // The cgroup namespace must be rooted at the container's cgroup.
                enter_cgroup_ns(&mut got_go, &mut cgroupns_done)?;
            }
        }
        rootfs::mount(&ctx, plan, &cgroup_mounts)?;
    }
    rootfs::setup_dev(&ctx, linux.devices().as_deref().unwrap_or(&[]))?;

    if proc_spec.terminal().unwrap_or(false) {
        let sock = args.console_socket.as_ref().ok_or_else(|| {
            Error::spec(
                "process.terminal",
                "is true but no console socket was given (--console-socket)",
            )
        })?;
        let size = proc_spec
            .console_size()
            .as_ref()
            .map(|b| (b.height() as u16, b.width() as u16));
        let p = console::open_in_container(rootfd.as_fd(), size)?;
        let console_path = resolve::mkdir_all_open(
            rootfd.as_fd(),
            Path::new("/dev/console"),
            resolve::Kind::File,
        )?;
        let tree = rustix::mount::open_tree(
            &p.slave,
            "",
            rustix::mount::OpenTreeFlags::OPEN_TREE_CLONE
                | rustix::mount::OpenTreeFlags::OPEN_TREE_CLOEXEC
                | rustix::mount::OpenTreeFlags::AT_EMPTY_PATH,
        )
        .ctx(|| "binding the pty to /dev/console".to_string())?;
        rustix::mount::move_mount(
            &tree,
            "",
            &console_path,
            "",
            rustix::mount::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH
                | rustix::mount::MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
        )
        .ctx(|| "binding the pty to /dev/console".to_string())?;
        console::send_master(sock.as_fd(), p.master.as_fd())?;
        drop(p.master);
        // Take the terminal as stdio now, as runc does: the runtime's own stdout/stderr
        // (often pipes an engine reads until EOF) must not stay open in the init.
        console::become_controlling(&p.slave)?;
    }
    drop(args.console_socket.take());

    // In the container's cgroups before any hook runs (hooks look the process up there) and
    // before the cgroup namespace is made.
    join_cgroups(&mut cgroups_pending, &mut cgroup_mounts)?;
    let h = spec.hooks().as_ref();
    let runtime_hooks = h.is_some_and(|h| {
        h.prestart().as_ref().is_some_and(|v| !v.is_empty())
            || h.create_runtime().as_ref().is_some_and(|v| !v.is_empty())
    });
    if runtime_hooks {
        chan.send(&Msg::RunHooks)?;
        chan.expect(Msg::HooksDone)?;
    }
    if let Some(list) = h.and_then(|h| h.create_container().as_ref()) {
        let state = crate::container::state_json_for_hooks(args.id, host_pid, "creating", cfg);
        hooks::run_all("createContainer", Some(list), &state)?;
    }

    rootfs::mask_paths(
        rootfd.as_fd(),
        linux.masked_paths().as_deref().unwrap_or(&[]),
        &dev_null,
    )?;
    rootfs::readonly_paths(
        rootfd.as_fd(),
        linux.readonly_paths().as_deref().unwrap_or(&[]),
    )?;
    resolve::mkdir_all_open(rootfd.as_fd(), proc_spec.cwd(), resolve::Kind::Dir)?;
    drop(dev_null);

    if args.no_pivot {
        rootfs::move_and_chroot(&cfg.rootfs)?;
    } else {
        rootfs::pivot(&rootfd)?;
    }
    drop(rootfd);
    let wants_shared = propagation
        .filter(|(p, _)| *p != sys::propagation::SLAVE && *p != sys::propagation::PRIVATE);
    rootfs::finish_root(
        spec.root()
            .as_ref()
            .and_then(|r| r.readonly())
            .unwrap_or(false),
        wants_shared,
    )?;

    for (k, v) in linux.sysctl().iter().flatten() {
        write_sysctl(&procfd, k, v)?;
    }
    if let Some(hn) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        rustix::system::sethostname(hn.as_bytes()).ctx(|| format!("hostname: setting {hn:?}"))?;
    }
    if let Some(dn) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        rustix::system::setdomainname(dn.as_bytes())
            .ctx(|| format!("domainname: setting {dn:?}"))?;
    }
    enter_cgroup_ns(&mut got_go, &mut cgroupns_done)?;

    rustix::process::chdir(proc_spec.cwd())
        .ctx(|| format!("process.cwd: chdir to {}", proc_spec.cwd().display()))?;
    verify_cwd_inside_root(proc_spec.cwd())?;
    let prepared = prepare_process(proc_spec, &procfd)?;
    process::apply_personality(linux)?;
    let seccomp_loaded = drop_privileges(proc_spec, &prepared, args.seccomp, chan)?;
    rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
        .ctx(|| "prctl(PR_SET_PDEATHSIG)".to_string())?;

    chan.send(&Msg::Ready)?;
    let mut fifo_writer = None;
    match &args.gate {
        Gate::Channel => {
            chan.expect(Msg::Start)?;
            rustix::process::set_parent_process_death_signal(None)
                .ctx(|| "clearing PR_SET_PDEATHSIG".to_string())?;
        }
        Gate::Fifo(fifo) => {
            chan.expect(Msg::Commit)?;
            rustix::process::set_parent_process_death_signal(None)
                .ctx(|| "clearing PR_SET_PDEATHSIG".to_string())?;
            // The runtime waits for this before it exits, or its exit could still kill us.
            chan.send(&Msg::Committed)?;
            // Blocks until `start` opens the fifo for reading.
            let w = rustix::fs::openat(
                &procfd,
                format!("self/fd/{}", fifo.as_raw_fd()),
                OFlags::WRONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .ctx(|| "opening the exec fifo".to_string())?;
            rustix::io::write(&w, b"0").ctx(|| "writing the exec fifo".to_string())?;
            // Keep the write end open until exec: `start` sees EOF when exec happens, or
            // the error if exec fails.
            fifo_writer = Some(w);
        }
    }
    drop(procfd);

    if let Some(list) = h.and_then(|h| h.start_container().as_ref()) {
        let state = crate::container::state_json_for_hooks(args.id, host_pid, "created", cfg);
        hooks::run_all("startContainer", Some(list), &state)?;
    }
    let err = final_exec(&prepared, args.preserve_fds, args.seccomp, seccomp_loaded);
    if let Some(w) = &fifo_writer {
        let _ = rustix::io::write(w, format!("cella: {err}").as_bytes());
    }
    Err(err)
}

/// What the process needs at exec, computed while the runtime can still report errors.
pub(crate) struct Prepared {
    exe: std::path::PathBuf,
    c_exe: CString,
    c_argv: Vec<CString>,
    c_env: Vec<CString>,
    caps: CapSets,
}

/// Resolve args[0] in the (entered) container root and apply the process attributes that
/// need privileges: rlimits, OOM score, I/O priority, scheduler, CPU affinity, LSM labels.
pub(crate) fn prepare_process(
    proc_spec: &oci_spec::runtime::Process,
    procfd: &OwnedFd,
) -> Result<Prepared> {
    let env: Vec<String> = proc_spec.env().clone().unwrap_or_default();
    let argv: Vec<String> = proc_spec.args().clone().expect("validated");
    let exe = process::find_executable(&argv[0], &env, proc_spec.cwd())?;
    process::apply_rlimits(proc_spec)?;
    process::apply_oom_score_adj(proc_spec, procfd)?;
    process::apply_io_priority(proc_spec)?;
    process::apply_scheduler(proc_spec)?;
    if let Some(a) = proc_spec.exec_cpu_affinity() {
        if let Some(list) = a.cpu_affinity_final().as_deref().or(a.initial().as_deref()) {
            process::set_affinity(list, "process.execCPUAffinity")?;
        }
    }
    if let Some(p) = proc_spec
        .apparmor_profile()
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        crate::lsm::apparmor_exec(procfd, p)?;
    }
    if let Some(l) = proc_spec
        .selinux_label()
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        crate::lsm::selinux_exec(procfd, l)?;
    }
    Ok(Prepared {
        c_exe: cstring(exe.as_os_str().as_bytes(), "process.args[0]")?,
        c_argv: argv
            .iter()
            .map(|a| cstring(a.as_bytes(), "process.args"))
            .collect::<Result<_>>()?,
        c_env: env
            .iter()
            .map(|a| cstring(a.as_bytes(), "process.env"))
            .collect::<Result<_>>()?,
        caps: CapSets::from_spec(proc_spec.capabilities().as_ref())?,
        exe,
    })
}

/// no_new_privs, seccomp (early when it needs CAP_SYS_ADMIN or a notify listener), the
/// capability sets and the switch to process.user, then the umask. Returns whether the
/// seccomp filter is already loaded.
pub(crate) fn drop_privileges(
    proc_spec: &oci_spec::runtime::Process,
    p: &Prepared,
    seccomp: Option<&cella_seccomp::Filter>,
    chan: &Channel,
) -> Result<bool> {
    let nnp = proc_spec.no_new_privileges().unwrap_or(false);
    if nnp {
        rustix::thread::set_no_new_privs(true)
            .ctx(|| "process.noNewPrivileges: prctl(PR_SET_NO_NEW_PRIVS)".to_string())?;
    }
    // Without no_new_privs the filter needs CAP_SYS_ADMIN to load: load it before caps go.
    // With it, load as late as possible so the filter need not allow the runtime's syscalls.
    let mut loaded = false;
    if let Some(f) = seccomp {
        if !nnp || f.needs_notify() {
            if let Some(listener) = f.load()? {
                chan.send_with_fd(&Msg::SeccompFd, Some(listener.as_fd()))?;
            }
            loaded = true;
        }
    }
    p.caps.apply_bounding()?;
    switch_user(proc_spec.user())?;
    p.caps.apply_rest()?;
    rustix::process::umask(Mode::from_raw_mode(
        proc_spec.user().umask().unwrap_or(0o022),
    ));
    Ok(loaded)
}

/// Mark every fd above the standard and preserved ones close-on-exec, load a late seccomp
/// filter, and exec. Returns only on failure.
pub(crate) fn final_exec(
    p: &Prepared,
    preserve_fds: u32,
    seccomp: Option<&cella_seccomp::Filter>,
    seccomp_loaded: bool,
) -> Error {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags on descriptors.
    if unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3 + preserve_fds,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    } != 0
    {
        return Error::Init(format!("close_range: {}", std::io::Error::last_os_error()));
    }
    if let Some(f) = seccomp {
        if !seccomp_loaded {
            if let Err(e) = f.load() {
                return e.into();
            }
        }
    }
    let err = exec(&p.c_exe, &p.c_argv, &p.c_env);
    Error::Init(format!("exec {} failed: {err}", p.exe.display()))
}

fn exec(path: &CString, argv: &[CString], env: &[CString]) -> std::io::Error {
    let mut av: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    av.push(std::ptr::null());
    let mut ev: Vec<*const libc::c_char> = env.iter().map(|a| a.as_ptr()).collect();
    ev.push(std::ptr::null());
    // SAFETY: path, argv and envp are NUL-terminated arrays of valid C strings that outlive
    // the call; execve only returns on failure.
    unsafe { libc::execve(path.as_ptr(), av.as_ptr(), ev.as_ptr()) };
    std::io::Error::last_os_error()
}

fn cstring(b: &[u8], field: &str) -> Result<CString> {
    CString::new(b).map_err(|_| Error::spec(field, "contains a NUL byte"))
}

/// Undo what the runtime's Rust start-up changed (SIGPIPE ignored) and unblock signals, so
/// the container's program starts with default dispositions.
pub(crate) fn reset_signals() {
    // SAFETY: plain libc calls on a local, initialised sigset; signal() with SIG_DFL has no
    // handler to run.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        for s in 1..32 {
            if s != libc::SIGKILL && s != libc::SIGSTOP {
                libc::signal(s, libc::SIG_DFL);
            }
        }
    }
}

fn setns(fd: &OwnedFd, t: LinuxNamespaceType) -> Result<()> {
    // SAFETY: setns on a namespace fd we own; nstype 0 lets the kernel check the fd's type.
    if unsafe { libc::setns(fd.as_raw_fd(), 0) } != 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| {
            format!(
                "joining the {} namespace given in linux.namespaces",
                crate::spec::ns_name(t)
            )
        });
    }
    Ok(())
}

fn become_root_in_userns() -> Result<()> {
    rustix::thread::set_thread_res_gid(
        rustix::process::Gid::ROOT,
        rustix::process::Gid::ROOT,
        rustix::process::Gid::ROOT,
    )
    .ctx(|| {
        "setresgid(0) in the user namespace (is gid 0 mapped in linux.gidMappings?)".to_string()
    })?;
    rustix::thread::set_thread_res_uid(
        rustix::process::Uid::ROOT,
        rustix::process::Uid::ROOT,
        rustix::process::Uid::ROOT,
    )
    .ctx(|| {
        "setresuid(0) in the user namespace (is uid 0 mapped in linux.uidMappings?)".to_string()
    })?;
    Ok(())
}

/// Switch to process.user, keeping the permitted capabilities across the switch.
fn switch_user(u: &oci_spec::runtime::User) -> Result<()> {
    rustix::thread::set_keep_capabilities(true).ctx(|| "prctl(PR_SET_KEEPCAPS)".to_string())?;
    let groups: Vec<rustix::process::Gid> = u
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| rustix::process::Gid::from_raw(*g))
        .collect();
    // setgroups is refused in a user namespace whose setgroups file says "deny"; only then is
    // an empty list acceptable.
    if let Err(e) = rustix::thread::set_thread_groups(&groups) {
        if !groups.is_empty() || e != rustix::io::Errno::PERM {
            return Err(e).ctx(|| {
                format!(
                    "process.user.additionalGids: setgroups {:?}",
                    u.additional_gids()
                )
            });
        }
    }
    let gid = rustix::process::Gid::from_raw(u.gid());
    rustix::thread::set_thread_res_gid(gid, gid, gid)
        .ctx(|| format!("process.user.gid: setresgid({}) (is it mapped?)", u.gid()))?;
    let uid = rustix::process::Uid::from_raw(u.uid());
    rustix::thread::set_thread_res_uid(uid, uid, uid)
        .ctx(|| format!("process.user.uid: setresuid({}) (is it mapped?)", u.uid()))?;
    rustix::thread::set_keep_capabilities(false).ctx(|| "prctl(PR_SET_KEEPCAPS, 0)".to_string())?;
    Ok(())
}

/// A new session keyring per container, so containers do not share the host's keys.
fn join_session_keyring(id: &str) {
    let name = CString::new(format!("_ses.{}", &id[..id.len().min(64)])).unwrap_or_default();
    // SAFETY: KEYCTL_JOIN_SESSION_KEYRING (1) takes a NUL-terminated name. Failure (e.g. keyctl
    // blocked by an engine's seccomp profile) leaves the inherited keyring, as other runtimes do.
    unsafe { libc::syscall(libc::SYS_keyctl, 1, name.as_ptr()) };
}

/// Refuse to go on when the working directory is not reachable from the container's root: a
/// cwd like `/proc/self/fd/N` naming a host directory the runtime still holds open
/// (CVE-2024-21626) makes the kernel's getcwd answer "(unreachable)/...".
pub(crate) fn verify_cwd_inside_root(cwd: &Path) -> Result<()> {
    let here = rustix::process::getcwd(Vec::new())
        .ctx(|| format!("process.cwd: getcwd after chdir to {}", cwd.display()))?;
    if !here.to_bytes().starts_with(b"/") {
        return Err(Error::spec(
            "process.cwd",
            format!(
                "{} leads outside the container's root ({}); refusing to start",
                cwd.display(),
                here.to_string_lossy()
            ),
        ));
    }
    Ok(())
}

fn open_host_proc() -> Result<OwnedFd> {
    let fd = rustix::fs::open(
        "/proc",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "opening the host's /proc".to_string())?;
    let st = rustix::fs::fstatfs(&fd).ctx(|| "statfs /proc".to_string())?;
    if st.f_type != libc::PROC_SUPER_MAGIC {
        return Err(Error::Init(
            "/proc is not a procfs; refusing to use it".into(),
        ));
    }
    Ok(fd)
}

fn write_sysctl(procfd: &OwnedFd, key: &str, value: &str) -> Result<()> {
    let rel = format!("sys/{}", key.replace('.', "/"));
    let fd = rustix::fs::openat2(
        procfd,
        rel.as_str(),
        OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::empty(),
        rustix::fs::ResolveFlags::NO_SYMLINKS | rustix::fs::ResolveFlags::BENEATH,
    )
    .map_err(|e| {
        Error::spec(
            format!("linux.sysctl[{key:?}]"),
            format!("cannot open /proc/{rel}: {e}"),
        )
    })?;
    rustix::io::write(&fd, value.as_bytes()).map_err(|e| {
        Error::spec(
            format!("linux.sysctl[{key:?}]"),
            format!("writing {value:?}: {e}"),
        )
    })?;
    Ok(())
}

/// A new network namespace starts with its loopback down; bring it up so 127.0.0.1 works.
fn loopback_up() -> Result<()> {
    let sock = rustix::net::socket(
        rustix::net::AddressFamily::INET,
        rustix::net::SocketType::DGRAM,
        None,
    )
    .ctx(|| "socket for configuring lo".to_string())?;
    // SAFETY: an ifreq zeroed then filled with the NUL-terminated name "lo"; the ioctls read and
    // write only that struct.
    unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) != 0 {
            return Err(std::io::Error::last_os_error())
                .ctx(|| "reading the flags of lo".to_string());
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) != 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| "bringing lo up".to_string());
        }
    }
    Ok(())
}
