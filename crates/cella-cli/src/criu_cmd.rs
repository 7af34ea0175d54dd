//! `checkpoint` and `restore` with runc's flags, done by CRIU's command line (`criu dump`,
//! `criu restore`). podman drives them for `podman container checkpoint/restore`.
//!
//! What the runtime adds to CRIU: the container's rootfs as CRIU's root, the bind mounts and
//! masked files as external mounts (bound again from the spec's sources at restore), the
//! container's stdio pipes recorded at dump and handed back at restore (`--inherit-fd`), the
//! cgroup (created with the spec's limits, then `--cgroup-root`), and the state directory.
//! When CRIU fails, its own errors (from its log) are the error, with the log's path.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};
use cella_core::checkpoint::{external_mounts, ExternalMount, Restoring};
use cella_core::container::{self, Status};
use cella_core::state::StateRoot;

/// The file in the image directory naming the container's fds 0-2 at dump time.
const DESCRIPTORS: &str = "descriptors.json";

#[derive(clap::Args, Debug)]
pub struct CheckpointArgs {
    #[command(flatten)]
    criu: CriuArgs,
    /// A previous pre-dump's image directory (relative to --image-path, or absolute).
    #[arg(long, value_name = "DIR")]
    parent_path: Option<PathBuf>,
    /// Leave the processes running after the dump.
    #[arg(long)]
    leave_running: bool,
    /// Fd CRIU writes \0 to when the lazy-pages server is ready (with --lazy-pages).
    #[arg(long, value_name = "FD")]
    status_fd: Option<i32>,
    /// ADDRESS:PORT of a CRIU page server (not supported by cella).
    #[arg(long, value_name = "ADDRESS:PORT")]
    page_server: Option<String>,
    /// Only dump memory (an iterative migration's pre-dump); the container keeps running.
    #[arg(long)]
    pre_dump: bool,
    /// Container id.
    id: String,
}

#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    /// Unix socket for the pty master (containers with a terminal are refused).
    #[arg(long, value_name = "PATH")]
    console_socket: Option<PathBuf>,
    #[command(flatten)]
    criu: CriuArgs,
    /// Path to the bundle (the directory holding config.json).
    #[arg(short, long, default_value = ".", value_name = "DIR")]
    bundle: PathBuf,
    /// Return once the container is restored instead of waiting for it.
    #[arg(short, long)]
    detach: bool,
    /// Write the restored init's host pid to FILE.
    #[arg(long, value_name = "FILE")]
    pid_file: Option<PathBuf>,
    /// Do not become the restored process's subreaper.
    #[arg(long)]
    no_subreaper: bool,
    /// Accepted for runc compatibility: CRIU always enters the root with pivot_root.
    #[arg(long)]
    no_pivot: bool,
    /// LSM profile for the restored processes (not supported by cella).
    #[arg(long, value_name = "TYPE:LABEL")]
    lsm_profile: Option<String>,
    /// SELinux mount context (not supported by cella).
    #[arg(long, value_name = "CONTEXT")]
    lsm_mount_context: Option<String>,
    /// Container id.
    id: String,
}

/// The options `checkpoint` and `restore` share, with runc's names.
#[derive(clap::Args, Debug)]
pub struct CriuArgs {
    /// Directory of the CRIU image files.
    #[arg(long, default_value = "checkpoint", value_name = "DIR")]
    image_path: PathBuf,
    /// Directory for CRIU's log and work files (default: the image directory).
    #[arg(long, value_name = "DIR")]
    work_path: Option<PathBuf>,
    /// Allow established TCP connections.
    #[arg(long)]
    tcp_established: bool,
    /// Allow external unix sockets.
    #[arg(long)]
    ext_unix_sk: bool,
    /// Allow a shell job (a process with a controlling terminal outside).
    #[arg(long)]
    shell_job: bool,
    /// Dump and restore file locks.
    #[arg(long)]
    file_locks: bool,
    /// Cgroup handling: soft, full, strict or ignore.
    #[arg(long, value_name = "MODE")]
    manage_cgroups_mode: Option<String>,
    /// Namespace to create empty at restore instead of restoring it (only "network").
    #[arg(long, value_name = "NS")]
    empty_ns: Vec<String>,
    /// Deduplicate pages (the parent's as they are dumped, or as they are restored).
    #[arg(long)]
    auto_dedup: bool,
    /// Use userfaultfd to restore memory lazily (not supported by cella).
    #[arg(long)]
    lazy_pages: bool,
}

impl CriuArgs {
    /// The image and work directories, absolute (the work directory defaults to the image
    /// directory).
    fn dirs(&self) -> Result<(PathBuf, PathBuf)> {
        let image = std::path::absolute(&self.image_path)?;
        let work = match &self.work_path {
            Some(w) => std::path::absolute(w)?,
            None => image.clone(),
        };
        Ok((image, work))
    }

    /// CRIU's `--manage-cgroups` and the shared switches that are on.
    fn flags(&self) -> Result<Vec<String>> {
        let mut v = vec![match manage_cgroups(&self.manage_cgroups_mode)? {
            Some(m) => format!("--manage-cgroups={m}"),
            None => "--manage-cgroups".into(),
        }];
        for (on, flag) in [
            (self.tcp_established, "--tcp-established"),
            (self.ext_unix_sk, "--ext-unix-sk"),
            (self.shell_job, "--shell-job"),
            (self.file_locks, "--file-locks"),
            (self.auto_dedup, "--auto-dedup"),
        ] {
            if on {
                v.push(flag.into());
            }
        }
        Ok(v)
    }
}

fn manage_cgroups(mode: &Option<String>) -> Result<Option<&'static str>> {
    Ok(match mode.as_deref() {
        None => None,
        Some("soft") => Some("soft"),
        Some("full") => Some("full"),
        Some("strict") => Some("strict"),
        Some("ignore") => Some("ignore"),
        Some(m) => bail!("--manage-cgroups-mode {m:?}: use soft, full, strict or ignore"),
    })
}

fn empty_net(ns: &[String]) -> Result<bool> {
    let mut net = false;
    for n in ns {
        match n.as_str() {
            "network" | "net" => net = true,
            other => bail!("--empty-ns {other:?}: only \"network\" can be left empty"),
        }
    }
    Ok(net)
}

fn dump_log(a: &CheckpointArgs) -> &'static str {
    if a.pre_dump {
        "pre-dump.log"
    } else {
        "dump.log"
    }
}

/// `criu dump` (or `pre-dump`) arguments for a container whose init is `pid`.
fn dump_argv(
    a: &CheckpointArgs,
    pid: i32,
    rootfs: &Path,
    image: &Path,
    work: &Path,
    ext: &[ExternalMount],
) -> Result<Vec<String>> {
    let mut v: Vec<String> = vec![
        if a.pre_dump { "pre-dump" } else { "dump" }.into(),
        "--tree".into(),
        pid.to_string(),
        "--images-dir".into(),
        image.display().to_string(),
        "--work-dir".into(),
        work.display().to_string(),
        "--log-file".into(),
        dump_log(a).into(),
        "-v4".into(),
        "--root".into(),
        rootfs.display().to_string(),
    ];
    v.extend(a.criu.flags()?);
    if a.leave_running && !a.pre_dump {
        v.push("--leave-running".into());
    }
    if let Some(p) = &a.parent_path {
        v.push("--prev-images-dir".into());
        v.push(p.display().to_string());
        v.push("--track-mem".into());
    } else if a.pre_dump {
        v.push("--track-mem".into());
    }
    for m in ext {
        v.push("--ext-mount-map".into());
        v.push(format!("{}:{}", m.key, m.key));
    }
    Ok(v)
}

fn refuse_unsupported_checkpoint(a: &CheckpointArgs) -> Result<()> {
    if a.criu.lazy_pages || a.status_fd.is_some() {
        bail!("--lazy-pages/--status-fd: lazy restore through userfaultfd is not supported by cella; checkpoint without it");
    }
    if a.page_server.is_some() {
        bail!("--page-server: dumping to a CRIU page server is not supported by cella; use --image-path");
    }
    empty_net(&a.criu.empty_ns)?;
    Ok(())
}

/// `cella-runc checkpoint`.
pub fn checkpoint(root: &StateRoot, a: CheckpointArgs) -> Result<i32> {
    refuse_unsupported_checkpoint(&a)?;
    let st = container::state(root, &a.id)?;
    if st.status != Status::Running {
        bail!(
            "container {:?} is {}: only a running container can be checkpointed{}",
            a.id,
            st.status,
            if st.status == Status::Paused {
                " (resume it first)"
            } else {
                ""
            }
        );
    }
    let dir = root.open_shared(&a.id)?;
    let spec = dir.read_config()?;
    if spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false)
    {
        bail!("process.terminal: checkpointing a container with a terminal is not supported by cella; run it without a tty");
    }
    for ns in spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
    {
        if let Some(p) = ns.path() {
            bail!(
                "linux.namespaces: the container joined the {:?} namespace {} (an external namespace); checkpointing it is not supported by cella",
                ns.typ(),
                p.display()
            );
        }
    }
    let (image, work) = a.criu.dirs()?;
    for d in [&image, &work] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    // The container's stdio as the kernel names it (pipe:[N], /dev/null...), for restore.
    let fds: Vec<String> = (0..3)
        .map(|i| {
            std::fs::read_link(format!("/proc/{}/fd/{i}", st.pid))
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        })
        .collect();
    std::fs::write(image.join(DESCRIPTORS), serde_json::to_vec(&fds)?)
        .with_context(|| format!("writing {}", image.join(DESCRIPTORS).display()))?;
    let ext = external_mounts(&spec, &st.bundle)?;
    let argv = dump_argv(&a, st.pid, &st.rootfs, &image, &work, &ext)?;
    run_criu(&argv, &work.join(dump_log(&a)), false)?;
    if !a.leave_running && !a.pre_dump {
        // CRIU killed the processes after dumping them: the container is gone, as in runc.
        container::delete(root, &a.id, true)?;
    }
    Ok(0)
}

/// Run criu; on failure the error is CRIU's own (the `Error` lines of its log). With
/// `pass_stdio`, criu gets our stdio (restore hands fds 0-2 to the restored process) and its
/// messages go there; otherwise they are captured for the error.
fn run_criu(argv: &[String], log: &Path, pass_stdio: bool) -> Result<()> {
    let mut cmd = Command::new("criu");
    cmd.args(argv);
    let (status, stderr) = if pass_stdio {
        let st = cmd.status();
        (st, String::new())
    } else {
        cmd.stdin(Stdio::null());
        match cmd.output() {
            Ok(o) => (
                Ok(o.status),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            ),
            Err(e) => (Err(e), String::new()),
        }
    };
    let status =
        status.map_err(|e| anyhow!("running criu: {e} (install CRIU: apt-get install criu)"))?;
    if status.success() {
        return Ok(());
    }
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let errors: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_once("Error (").map(|(_, e)| e))
        .map(|e| e.split_once("): ").map_or(e, |(_, msg)| msg))
        .collect();
    let shown = if errors.is_empty() {
        stderr.trim().to_string()
    } else {
        errors
            .iter()
            .take(4)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ")
    };
    let hint = if shown.to_ascii_lowercase().contains("vdso") {
        format!(
            " — CRIU {} cannot read the vDSO layout of this kernel ({}), and `criu check` fails the same way: kernels from 6.13 on need CRIU 4.1 or later",
            criu_version(),
            kernel_release()
        )
    } else {
        String::new()
    };
    bail!(
        "criu {} failed ({status}): {shown}{hint} (log: {})",
        argv[0],
        log.display()
    )
}

fn criu_version() -> String {
    Command::new("criu")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("Version: ").map(str::to_string))
        })
        .unwrap_or_else(|| "(unknown version)".into())
}

fn kernel_release() -> String {
    rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned()
}

/// `criu restore` arguments.
#[allow(clippy::too_many_arguments)]
fn restore_argv(
    a: &RestoreArgs,
    rootfs: &Path,
    image: &Path,
    work: &Path,
    pidfile: &Path,
    cgroup_root: &str,
    ext: &[ExternalMount],
    inherit: &[(i32, String)],
) -> Result<Vec<String>> {
    let mut v: Vec<String> = vec![
        "restore".into(),
        "--images-dir".into(),
        image.display().to_string(),
        "--work-dir".into(),
        work.display().to_string(),
        "--log-file".into(),
        "restore.log".into(),
        "-v4".into(),
        "--root".into(),
        rootfs.display().to_string(),
        "--restore-detached".into(),
        "--restore-sibling".into(),
        "--pidfile".into(),
        pidfile.display().to_string(),
        "--cgroup-root".into(),
        cgroup_root.to_string(),
    ];
    v.extend(a.criu.flags()?);
    if empty_net(&a.criu.empty_ns)? {
        v.push("--empty-ns".into());
        v.push("net".into());
    }
    for m in ext {
        v.push("--ext-mount-map".into());
        v.push(format!("{}:{}", m.key, m.source.display()));
    }
    for (fd, name) in inherit {
        v.push("--inherit-fd".into());
        v.push(format!("fd[{fd}]:{name}"));
    }
    Ok(v)
}

/// Which of our fds 0-2 CRIU should give the restored process in place of the pipes and
/// sockets it had (the engine hands the runtime the new ones as its stdio).
fn inherited_fds(descriptors: &[String]) -> Vec<(i32, String)> {
    descriptors
        .iter()
        .enumerate()
        .filter(|(_, d)| d.starts_with("pipe:") || d.starts_with("socket:"))
        .map(|(i, d)| (i as i32, d.clone()))
        .collect()
}

/// `cella-runc restore`.
pub fn restore(root: &StateRoot, a: RestoreArgs) -> Result<i32> {
    if a.criu.lazy_pages {
        bail!("--lazy-pages: lazy restore through userfaultfd is not supported by cella; restore without it");
    }
    if a.lsm_profile.is_some() || a.lsm_mount_context.is_some() {
        bail!("--lsm-profile/--lsm-mount-context: relabelling at restore is not supported by cella (no SELinux or AppArmor here)");
    }
    let config = cella_core::spec::load_bundle(&a.bundle)?;
    let spec = &config.spec;
    if spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false)
        || a.console_socket.is_some()
    {
        bail!("process.terminal: restoring a container with a terminal is not supported by cella");
    }
    if spec.hooks().is_some() {
        bail!("hooks: restoring a container with OCI hooks is not supported by cella (CRIU would have to run them mid-restore); remove them from config.json");
    }
    let (image, work) = a.criu.dirs()?;
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let descriptors: Vec<String> = match std::fs::read(image.join(DESCRIPTORS)) {
        Ok(b) => serde_json::from_slice(&b).with_context(|| {
            format!("{}: not cella's fd list", image.join(DESCRIPTORS).display())
        })?,
        Err(e) => bail!(
            "{}: {e}; is --image-path a checkpoint made by cella-runc checkpoint?",
            image.join(DESCRIPTORS).display()
        ),
    };
    let ext = external_mounts(spec, &config.bundle)?;
    let restoring = Restoring::prepare(root, &a.id, &config)?;
    // CRIU enters --root with pivot_root, which needs a mount point: bind the rootfs onto
    // itself in a mount namespace of our own (CRIU inherits it; the host sees nothing).
    private_root_mount(&config.rootfs)?;
    let pidfile = work.join("restore.pid");
    let _ = std::fs::remove_file(&pidfile);
    let inherit = inherited_fds(&descriptors);
    let argv = restore_argv(
        &a,
        &config.rootfs,
        &image,
        &work,
        &pidfile,
        restoring.cgroup_path(),
        &ext,
        &inherit,
    )?;
    if !a.detach && !a.no_subreaper {
        // While we wait for the restored init (our child: --restore-sibling), its orphans
        // are reparented to us rather than to the host's init.
        rustix::process::set_child_subreaper(Some(rustix::process::getpid()))?;
    }
    run_criu(&argv, &work.join("restore.log"), true)?;
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .with_context(|| format!("reading CRIU's pid file {}", pidfile.display()))?
        .trim()
        .parse()
        .with_context(|| format!("{}: not a pid", pidfile.display()))?;
    restoring.commit(pid)?;
    if let Some(p) = &a.pid_file {
        cella_core::state::write_atomic(p, pid.to_string().as_bytes())?;
    }
    if a.detach {
        return Ok(0);
    }
    let status = rustix::process::waitpid(
        Some(
            rustix::process::Pid::from_raw(pid)
                .ok_or_else(|| anyhow!("CRIU reported pid {pid}"))?,
        ),
        rustix::process::WaitOptions::empty(),
    )?;
    let code = match status.map(|(_, s)| s) {
        Some(s) if s.exited() => s.exit_status().unwrap_or(0),
        Some(s) if s.signaled() => 128 + s.terminating_signal().unwrap_or(0),
        _ => 0,
    };
    container::delete(root, &a.id, true)?;
    Ok(code)
}

fn private_root_mount(rootfs: &Path) -> Result<()> {
    use rustix::mount::{mount_bind, mount_change, MountPropagationFlags};
    // SAFETY: cella-runc is single-threaded here; a new mount namespace for this process
    // changes no memory or fd state other code relies on.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS) }
        .context("unshare(CLONE_NEWNS) for the restore's root")?;
    mount_change(
        "/",
        MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC,
    )
    .context("making / a slave mount in the restore's mount namespace")?;
    mount_bind(rootfs, rootfs)
        .with_context(|| format!("binding the rootfs {} onto itself", rootfs.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(subcommand)]
        c: C,
    }
    #[derive(clap::Subcommand)]
    enum C {
        Checkpoint(CheckpointArgs),
        Restore(RestoreArgs),
    }

    fn ck(args: &[&str]) -> CheckpointArgs {
        let mut v = vec!["t", "checkpoint"];
        v.extend_from_slice(args);
        match T::parse_from(v).c {
            C::Checkpoint(a) => a,
            C::Restore(_) => unreachable!(),
        }
    }

    #[test]
    fn podman_checkpoint_becomes_criu_dump() {
        let a = ck(&[
            "--image-path",
            "/w/checkpoint",
            "--work-path",
            "/w",
            "--tcp-established",
            "c1",
        ]);
        let ext = vec![ExternalMount {
            key: "/etc/hosts".into(),
            source: "/w/hosts".into(),
        }];
        let v = dump_argv(
            &a,
            42,
            Path::new("/r"),
            Path::new("/w/checkpoint"),
            Path::new("/w"),
            &ext,
        )
        .unwrap();
        let s = v.join(" ");
        assert!(
            s.starts_with(
                "dump --tree 42 --images-dir /w/checkpoint --work-dir /w --log-file dump.log"
            ),
            "{s}"
        );
        assert!(s.contains("--root /r --manage-cgroups"), "{s}");
        assert!(s.contains("--tcp-established"), "{s}");
        assert!(!s.contains("--leave-running"), "{s}");
        assert!(s.ends_with("--ext-mount-map /etc/hosts:/etc/hosts"), "{s}");
    }

    #[test]
    fn pre_dump_tracks_memory_and_keeps_running() {
        let a = ck(&[
            "--pre-dump",
            "--leave-running",
            "--manage-cgroups-mode",
            "full",
            "c1",
        ]);
        let v = dump_argv(
            &a,
            7,
            Path::new("/r"),
            Path::new("/i"),
            Path::new("/i"),
            &[],
        )
        .unwrap();
        assert_eq!(v[0], "pre-dump");
        assert!(v.contains(&"pre-dump.log".to_string()));
        assert!(v.contains(&"--track-mem".to_string()));
        assert!(v.contains(&"--manage-cgroups=full".to_string()));
        assert!(!v.contains(&"--manage-cgroups".to_string()));
        assert!(
            !v.contains(&"--leave-running".to_string()),
            "criu pre-dump has no --leave-running"
        );
        let bad = ck(&["--manage-cgroups-mode", "some", "c1"]);
        let e = dump_argv(
            &bad,
            7,
            Path::new("/r"),
            Path::new("/i"),
            Path::new("/i"),
            &[],
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("--manage-cgroups-mode \"some\""),
            "{e}"
        );
    }

    #[test]
    fn unsupported_checkpoint_flags_are_refused_by_name() {
        for (args, word) in [
            (&["--lazy-pages", "c"][..], "--lazy-pages"),
            (&["--page-server", "1.2.3.4:5", "c"][..], "--page-server"),
            (&["--empty-ns", "ipc", "c"][..], "--empty-ns \"ipc\""),
        ] {
            let e = refuse_unsupported_checkpoint(&ck(args)).unwrap_err();
            assert!(e.to_string().contains(word), "{args:?}: {e}");
        }
        refuse_unsupported_checkpoint(&ck(&["--empty-ns", "network", "c"])).unwrap();
    }

    #[test]
    fn restore_maps_mounts_to_sources_and_pipes_to_our_fds() {
        let a = match T::parse_from([
            "t",
            "restore",
            "--bundle",
            "/b",
            "--image-path",
            "/w/ck",
            "--detach",
            "--pid-file",
            "/w/pid",
            "--empty-ns",
            "network",
            "c1",
        ])
        .c
        {
            C::Restore(a) => a,
            C::Checkpoint(_) => unreachable!(),
        };
        let ext = vec![ExternalMount {
            key: "/proc/kcore".into(),
            source: "/dev/null".into(),
        }];
        let inherit =
            inherited_fds(&["/dev/null".into(), "pipe:[123]".into(), "socket:[9]".into()]);
        assert_eq!(
            inherit,
            vec![(1, "pipe:[123]".to_string()), (2, "socket:[9]".to_string())]
        );
        let v = restore_argv(
            &a,
            Path::new("/b/rootfs"),
            Path::new("/w/ck"),
            Path::new("/w"),
            Path::new("/w/restore.pid"),
            "/libpod_parent/libpod-c1",
            &ext,
            &inherit,
        )
        .unwrap();
        let s = v.join(" ");
        assert!(
            s.contains(
                "--root /b/rootfs --restore-detached --restore-sibling --pidfile /w/restore.pid"
            ),
            "{s}"
        );
        assert!(
            s.contains("--cgroup-root /libpod_parent/libpod-c1 --manage-cgroups"),
            "{s}"
        );
        assert!(s.contains("--empty-ns net"), "{s}");
        assert!(s.contains("--ext-mount-map /proc/kcore:/dev/null"), "{s}");
        assert!(
            s.ends_with("--inherit-fd fd[1]:pipe:[123] --inherit-fd fd[2]:socket:[9]"),
            "{s}"
        );
    }
}
