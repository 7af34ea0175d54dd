//! The runc-compatible command line (`cella-runc`): the surface podman, docker, containerd
//! and buildah call. Thin: parse, call cella-core, print, exit code.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use cella_core::container::{self, CreateMode, CreateOptions};
use cella_core::state::StateRoot;
use clap::{Parser, Subcommand, ValueEnum};

use crate::log::Log;

#[derive(Parser, Debug)]
#[command(
    name = "cella-runc",
    about = "cella's OCI runtime, with runc's command line",
    long_about = "cella-runc creates and runs containers from OCI bundles (a directory with config.json and a root \
filesystem). Engines (podman, docker, containerd) call it the way they call runc.",
    disable_version_flag = true
)]
struct Cli {
    /// Directory for container state.
    #[arg(long, global = true, default_value = cella_core::state::DEFAULT_ROOT, value_name = "DIR")]
    root: PathBuf,
    /// Write errors (and --debug records) to FILE.
    #[arg(long, global = true, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Format of the --log records.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Log debug records.
    #[arg(long, global = true)]
    debug: bool,
    /// Manage cgroups through systemd (needs a running systemd).
    #[arg(long, global = true)]
    systemd_cgroup: bool,
    /// runc's rootless switch: "false" or "auto" (cella runs as root; "true" is refused).
    #[arg(long, value_name = "VALUE")]
    rootless: Option<String>,
    /// Print the version.
    #[arg(short = 'v', long)]
    version: bool,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

#[derive(clap::Args, Debug)]
struct CreateArgs {
    /// Path to the bundle (the directory holding config.json).
    #[arg(short, long, default_value = ".", value_name = "DIR")]
    bundle: PathBuf,
    /// Unix socket to send the container's pty master to (process.terminal).
    #[arg(long, value_name = "PATH")]
    console_socket: Option<PathBuf>,
    /// Write the container's host pid to FILE.
    #[arg(long, value_name = "FILE")]
    pid_file: Option<PathBuf>,
    /// Pass N extra fds (3..3+N) to the container process.
    #[arg(long, default_value_t = 0, value_name = "N")]
    preserve_fds: u32,
    /// Use chroot instead of pivot_root (weaker; for ramdisk roots).
    #[arg(long)]
    no_pivot: bool,
    /// Do not create a new session keyring.
    #[arg(long)]
    no_new_keyring: bool,
    /// Container id.
    id: String,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create a container: set it up and leave it waiting for `start`.
    Create(CreateArgs),
    /// Start a created container's process.
    Start { id: String },
    /// Create and start a container, and wait for it unless --detach.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Return once the container has started.
        #[arg(short, long)]
        detach: bool,
        /// Keep the container's state after it exits.
        #[arg(long)]
        keep: bool,
    },
    /// Print a container's state as JSON.
    State { id: String },
    /// Send a signal (default TERM) to the container's init, or to all its processes.
    Kill {
        /// Signal every process in the container's cgroup.
        #[arg(short, long)]
        all: bool,
        id: String,
        #[arg(default_value = "TERM")]
        signal: String,
    },
    /// Delete a container (its state, cgroup and, with --force, its processes).
    Delete {
        /// Kill the container first if it is still running.
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// List containers.
    List {
        #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        /// Print only ids.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Write a default config.json into the bundle.
    Spec {
        #[arg(short, long, default_value = ".", value_name = "DIR")]
        bundle: PathBuf,
        /// A spec for a rootless container (user namespace, no network namespace).
        #[arg(long = "rootless", id = "spec_rootless")]
        rootless: bool,
    },
    /// Print the features document of the OCI runtime spec.
    Features,
    /// List the processes of a container.
    Ps {
        #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        id: String,
        /// Arguments passed to ps(1) for the table format.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Run a process inside a running container.
    Exec(ExecArgs),
    /// Freeze every process of a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// Change the resource limits of a container while it runs.
    Update(crate::resources_cmd::UpdateArgs),
    /// Print resource statistics and OOM events of a container as JSON lines.
    Events {
        /// Print one statistics snapshot and exit.
        #[arg(long)]
        stats: bool,
        /// Time between statistics records (e.g. 5s, 500ms).
        #[arg(long, default_value = "5s", value_name = "DURATION")]
        interval: String,
        id: String,
    },
    /// Checkpoint a running container with CRIU.
    Checkpoint(crate::criu_cmd::CheckpointArgs),
    /// Restore a container from a CRIU checkpoint.
    Restore(crate::criu_cmd::RestoreArgs),
}

#[derive(clap::Args, Debug)]
struct ExecArgs {
    /// A runtime-spec Process JSON file describing the process (replaces the flags below).
    #[arg(short, long, value_name = "FILE")]
    process: Option<PathBuf>,
    /// Return once the process has started.
    #[arg(short, long)]
    detach: bool,
    /// Write the process's host pid to FILE.
    #[arg(long, value_name = "FILE")]
    pid_file: Option<PathBuf>,
    /// Allocate a pseudo-terminal.
    #[arg(short, long)]
    tty: bool,
    /// Unix socket to send the pty master to.
    #[arg(long, value_name = "PATH")]
    console_socket: Option<PathBuf>,
    /// Pass N extra fds (3..3+N) to the process.
    #[arg(long, default_value_t = 0, value_name = "N")]
    preserve_fds: u32,
    /// Working directory in the container.
    #[arg(long, value_name = "DIR")]
    cwd: Option<PathBuf>,
    /// Set an environment variable (KEY=VALUE); repeatable.
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// UID[:GID] to run as.
    #[arg(short, long, value_name = "UID[:GID]")]
    user: Option<String>,
    /// Additional group id; repeatable.
    #[arg(short = 'g', long = "additional-gids", value_name = "GID")]
    additional_gids: Vec<u32>,
    /// Add a capability (e.g. CAP_NET_ADMIN) to the process's sets; repeatable.
    #[arg(short, long = "cap", value_name = "CAP")]
    caps: Vec<String>,
    /// Set no_new_privs for the process.
    #[arg(long)]
    no_new_privs: bool,
    /// SELinux label for the process.
    #[arg(long, value_name = "LABEL")]
    process_label: Option<String>,
    /// AppArmor profile for the process.
    #[arg(short, long, value_name = "PROFILE")]
    apparmor: Option<String>,
    /// Container id.
    id: String,
    /// The command and its arguments (without --process).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum ListFormat {
    Table,
    Json,
}

/// Entry point of `cella-runc`.
pub fn main() -> i32 {
    // Commands that start container processes run from a sealed copy of this binary, so no
    // container process can ever reach the host's file (CVE-2019-5736). The others need not.
    // Decided from the raw arguments, before clap builds its parser, so the arguments are
    // parsed once (in the re-executed process); any argument spelling one of these commands
    // counts, so a doubt re-executes rather than skips.
    if cella_core::sealed::any_arg_is(&["create", "run", "exec"]) {
        if let Err(e) = cella_core::sealed::ensure_sealed_exe() {
            eprintln!("cella: {e}");
            return 1;
        }
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let mut log = match Log::new(
        cli.log.as_deref(),
        cli.log_format == LogFormat::Json,
        cli.debug,
    ) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cella: {e:#}");
            return 1;
        }
    };
    match run(cli, &mut log) {
        Ok(code) => code,
        Err(e) => {
            log.error(&format!("{e:#}"));
            1
        }
    }
}

/// `--version` output in runc's shape (engines parse the first line).
pub fn version_text(name: &str) -> String {
    format!(
        "{name} version {}\ncommit: {}\nspec: {}\nlibseccomp: 2.5.4\n",
        env!("CARGO_PKG_VERSION"),
        option_env!("CELLA_GIT_COMMIT").unwrap_or("unknown"),
        cella_core::spec::OCI_VERSION
    )
}

fn run(cli: Cli, log: &mut Log) -> Result<i32> {
    if cli.version {
        print!("{}", version_text("cella"));
        return Ok(0);
    }
    let Some(cmd) = cli.cmd else {
        bail!("no command given; see `cella-runc --help`");
    };
    if cli.systemd_cgroup {
        bail!("--systemd-cgroup: systemd is not running on this host (no /run/systemd/system); use the default cgroupfs driver");
    }
    match cli.rootless.as_deref() {
        None | Some("false") | Some("auto") => {}
        Some("true") => bail!(
            "--rootless true: rootless containers are not supported by cella yet; run as root"
        ),
        Some(v) => bail!("--rootless {v:?}: use true, false or auto"),
    }
    let root = StateRoot::new(&cli.root);
    log.debug(&format!("command: {cmd:?}"));
    match cmd {
        Cmd::Create(a) => {
            create(&root, a, CreateMode::Detached)?;
            Ok(0)
        }
        Cmd::Start { id } => {
            container::start(&root, &id)?;
            Ok(0)
        }
        Cmd::Run {
            create: a,
            detach,
            keep,
        } => {
            if detach {
                let id = a.id.clone();
                create(&root, a, CreateMode::Detached)?;
                container::start(&root, &id)?;
                return Ok(0);
            }
            run_foreground(&root, a, keep)
        }
        Cmd::State { id } => {
            let s = container::state(&root, &id)?;
            println!("{}", serde_json::to_string_pretty(&s)?);
            Ok(0)
        }
        Cmd::Kill { all, id, signal } => {
            let sig = cella_core::signal::parse(&signal)?;
            container::kill(&root, &id, sig, all)?;
            Ok(0)
        }
        Cmd::Delete { force, id } => {
            container::delete(&root, &id, force)?;
            Ok(0)
        }
        Cmd::List { format, quiet } => {
            let all = container::list(&root)?;
            if quiet {
                for s in &all {
                    println!("{}", s.id);
                }
            } else if format == ListFormat::Json {
                println!("{}", serde_json::to_string(&all)?);
            } else {
                println!(
                    "{:<24} {:<8} {:<10} {:<40} {:<32} OWNER",
                    "ID", "PID", "STATUS", "BUNDLE", "CREATED"
                );
                for s in &all {
                    println!(
                        "{:<24} {:<8} {:<10} {:<40} {:<32} root",
                        s.id,
                        s.pid,
                        s.status,
                        s.bundle.display(),
                        s.created
                    );
                }
            }
            Ok(0)
        }
        Cmd::Spec { bundle, rootless } => {
            let path = bundle.join("config.json");
            if path.exists() {
                bail!("{} exists; remove it first", path.display());
            }
            let v = crate::specgen::runc_default(rootless);
            std::fs::write(&path, serde_json::to_string_pretty(&v)? + "\n")
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(0)
        }
        Cmd::Features => {
            println!(
                "{}",
                serde_json::to_string_pretty(&crate::features::document())?
            );
            Ok(0)
        }
        Cmd::Ps {
            format,
            id,
            ps_args,
        } => {
            let pids = container::pids(&root, &id)?;
            if format == ListFormat::Json {
                println!("{}", serde_json::to_string(&pids)?);
                return Ok(0);
            }
            ps_table(&pids, &ps_args)
        }
        Cmd::Exec(a) => exec(&root, a),
        Cmd::Pause { id } => {
            container::pause(&root, &id)?;
            Ok(0)
        }
        Cmd::Resume { id } => {
            container::resume(&root, &id)?;
            Ok(0)
        }
        Cmd::Update(a) => crate::resources_cmd::update(&root, &a),
        Cmd::Events {
            stats,
            interval,
            id,
        } => crate::resources_cmd::events(&root, &id, stats, &interval),
        Cmd::Checkpoint(a) => crate::criu_cmd::checkpoint(&root, a),
        Cmd::Restore(a) => crate::criu_cmd::restore(&root, a),
    }
}

fn ps_table(pids: &[i32], args: &[String]) -> Result<i32> {
    let args: Vec<String> = if args.is_empty() {
        vec!["-ef".into()]
    } else {
        args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("running ps")?;
    if !out.status.success() {
        bail!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let pid_col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| anyhow!("ps output has no PID column"))?;
    println!("{header}");
    for l in lines {
        if let Some(p) = l
            .split_whitespace()
            .nth(pid_col)
            .and_then(|p| p.parse::<i32>().ok())
        {
            if pids.contains(&p) {
                println!("{l}");
            }
        }
    }
    Ok(0)
}

fn connect_console(path: &std::path::Path) -> Result<OwnedFd> {
    let s = std::os::unix::net::UnixStream::connect(path)
        .with_context(|| format!("--console-socket {}: connecting", path.display()))?;
    Ok(OwnedFd::from(s))
}

fn create(root: &StateRoot, a: CreateArgs, mode: CreateMode) -> Result<container::Created> {
    let console_socket = match &a.console_socket {
        Some(p) => Some(connect_console(p)?),
        None => None,
    };
    let c = container::create(
        root,
        CreateOptions {
            id: a.id,
            bundle: a.bundle,
            pid_file: a.pid_file,
            console_socket,
            preserve_fds: a.preserve_fds,
            no_pivot: a.no_pivot,
            no_new_keyring: a.no_new_keyring,
            mode,
        },
    )?;
    Ok(c)
}

/// `run` without --detach: the container's stdio is ours (or a pty we proxy), we forward
/// signals, and exit with its status; then the container is deleted unless --keep.
fn run_foreground(root: &StateRoot, mut a: CreateArgs, keep: bool) -> Result<i32> {
    let sigfd = crate::foreground::SignalFd::new()?;
    cella_core::id::validate(&a.id)?;
    let config = cella_core::spec::load_bundle(&a.bundle)?;
    let terminal = config
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    let mut own_console = None;
    if terminal && a.console_socket.is_none() {
        let (ours, theirs) = crate::foreground::console_pair()?;
        own_console = Some((ours, theirs));
    }
    let console_socket = match (&a.console_socket, own_console.as_mut()) {
        (Some(p), _) => Some(connect_console(p)?),
        (None, Some((_, theirs))) => Some(theirs.try_clone()?),
        _ => None,
    };
    a.console_socket = None;
    let mut c = container::create_from_config(
        root,
        CreateOptions {
            id: a.id,
            bundle: a.bundle,
            pid_file: a.pid_file,
            console_socket,
            preserve_fds: a.preserve_fds,
            no_pivot: a.no_pivot,
            no_new_keyring: a.no_new_keyring,
            mode: CreateMode::Foreground,
        },
        config,
    )?;
    let pty = match own_console {
        Some((ours, theirs)) => {
            drop(theirs);
            Some(crate::foreground::recv_pty_master(ours.as_fd())?)
        }
        None => None,
    };
    let started = c.start();
    c.unlock();
    let code = match started {
        Ok(()) => crate::foreground::wait(c.pid, c.pidfd.as_fd(), &sigfd, pty, true),
        Err(e) => Err(e.into()),
    };
    if !keep {
        c.delete(root)?;
    }
    code
}

/// The process for `exec`: the --process file, or the container's process with the flags
/// applied (so exec inherits user, capabilities, no_new_privs and LSM settings).
fn exec_process(root: &StateRoot, a: &ExecArgs) -> Result<oci_spec::runtime::Process> {
    if let Some(p) = &a.process {
        if !a.command.is_empty() {
            bail!("exec: give either --process or a command, not both");
        }
        return Ok(cella_core::exec::load_process(p)?);
    }
    if a.command.is_empty() {
        bail!("exec: no command given: cella-runc exec ID COMMAND [ARGS...]");
    }
    let mut p = cella_core::exec::container_process(root, &a.id)?;
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    p.set_console_size(None);
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    let mut env = p.env().clone().unwrap_or_default();
    for e in &a.env {
        let key = e.split('=').next().unwrap_or("");
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    p.set_env(Some(env));
    if let Some(u) = &a.user {
        let (uid, gid) = match u.split_once(':') {
            Some((x, y)) => (x, Some(y)),
            None => (u.as_str(), None),
        };
        let uid: u32 = uid
            .parse()
            .map_err(|_| anyhow!("--user {u:?}: use numeric UID[:GID]"))?;
        let gid: u32 = match gid {
            Some(g) => g
                .parse()
                .map_err(|_| anyhow!("--user {u:?}: use numeric UID[:GID]"))?,
            None => uid,
        };
        let mut user = p.user().clone();
        user.set_uid(uid);
        user.set_gid(gid);
        p.set_user(user);
    }
    if !a.additional_gids.is_empty() {
        let mut user = p.user().clone();
        user.set_additional_gids(Some(a.additional_gids.clone()));
        p.set_user(user);
    }
    if !a.caps.is_empty() {
        let mut c = p.capabilities().clone().unwrap_or_default();
        for name in &a.caps {
            let full = if name.starts_with("CAP_") {
                name.clone()
            } else {
                format!("CAP_{}", name.to_ascii_uppercase())
            };
            let cap: oci_spec::runtime::Capability =
                serde_json::from_value(serde_json::Value::String(full.clone()))
                    .map_err(|_| anyhow!("--cap {name:?}: unknown capability"))?;
            let add = |s: &Option<oci_spec::runtime::Capabilities>| {
                let mut s = s.clone().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            let (b, e, pm) = (add(c.bounding()), add(c.effective()), add(c.permitted()));
            c.set_bounding(b);
            c.set_effective(e);
            c.set_permitted(pm);
        }
        p.set_capabilities(Some(c));
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(l) = &a.process_label {
        p.set_selinux_label(Some(l.clone()));
    }
    if let Some(ap) = &a.apparmor {
        p.set_apparmor_profile(Some(ap.clone()));
    }
    Ok(p)
}

fn exec(root: &StateRoot, a: ExecArgs) -> Result<i32> {
    let process = exec_process(root, &a)?;
    let terminal = process.terminal().unwrap_or(false);
    let sigfd = if a.detach {
        None
    } else {
        Some(crate::foreground::SignalFd::new()?)
    };
    let mut own = None;
    let console_socket = match (&a.console_socket, terminal) {
        (Some(p), _) => Some(connect_console(p)?),
        (None, true) if !a.detach => {
            let (ours, theirs) = crate::foreground::console_pair()?;
            own = Some(ours);
            Some(theirs)
        }
        _ => None,
    };
    let execed = cella_core::exec::exec(
        root,
        cella_core::exec::ExecOptions {
            id: a.id.clone(),
            process,
            pid_file: a.pid_file.clone(),
            console_socket,
            preserve_fds: a.preserve_fds,
        },
    )?;
    if a.detach {
        return Ok(0);
    }
    let pty = match own {
        Some(ours) => Some(crate::foreground::recv_pty_master(ours.as_fd())?),
        None => None,
    };
    crate::foreground::wait(
        execed.pid,
        execed.pidfd.as_fd(),
        sigfd.as_ref().expect("not detached"),
        pty,
        true,
    )
}
