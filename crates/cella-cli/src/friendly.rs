//! The friendly command: `cella run --rootfs ./rootfs --memory 512M -- /bin/sh`, the
//! tutorial's container done properly. It builds a spec in memory and calls cella-core.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use cella_core::container::{self, CreateMode, CreateOptions};
use cella_core::state::StateRoot;
use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};

use crate::specgen;

#[derive(Parser, Debug)]
#[command(
    name = "cella",
    about = "Run a command in an isolated container",
    long_about = "cella runs a program in a container: its own root filesystem (entered with pivot_root), \
its own process, mount, network, hostname, IPC and cgroup namespaces, and cgroup limits on memory, CPU and \
process count. With no --rootfs, the host's /usr is shown read-only, so `cella run -- sh` works on a fresh \
machine.\n\nFor engines (podman, docker, containerd) use the runc-compatible binary `cella-runc`.",
    disable_version_flag = true
)]
struct Cli {
    /// Directory for container state (and the rootfs tarball cache).
    #[arg(long, global = true, default_value = cella_core::state::DEFAULT_ROOT, value_name = "DIR")]
    root: PathBuf,
    /// Print the version.
    #[arg(short = 'v', long)]
    version: bool,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run a command in a new container and remove the container when it exits.
    #[command(
        long_about = "Run COMMAND in a new container and wait for it. The container is removed when it exits \
(--rm is the default), and cella exits with the command's exit status (128+N when it was killed by signal N). \
When the memory limit kills it, cella says so and exits with 137.\n\n\
The root filesystem is --rootfs: a directory, or a tarball (.tar, .tar.gz, .tar.xz, .tar.zst) that is unpacked \
once into a cache under the state root and reused. The container writes to a private overlay, so the rootfs \
itself is never changed. Without --rootfs, the host's /usr, /bin, /lib* and a few /etc files are mounted \
read-only, with a private /tmp.",
        after_help = "EXAMPLES:\n  cella run --rootfs ./rootfs --memory 512M -- /bin/sh\n  cella run -it --rootfs ubuntu-base.tar.gz -- bash\n  \
cella run -v /srv/data:/data:ro --pids-limit 100 -- ls /data\n  cella run --cpus 0.5 -e FOO=bar -w /tmp -u 1000:1000 -- sh -c 'id; pwd'"
    )]
    Run(Box<RunArgs>),
    /// List containers.
    Ps,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Root filesystem: a directory or a tarball. Default: the host's /usr, read-only.
    #[arg(long, value_name = "PATH")]
    rootfs: Option<PathBuf>,
    /// Memory limit, e.g. 512M, 1g, 67108864.
    #[arg(short, long, value_name = "BYTES")]
    memory: Option<String>,
    /// Memory plus swap limit (-1: unlimited swap). Needs --memory.
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// CPU limit in CPUs, e.g. 0.5 or 2.
    #[arg(long, value_name = "N")]
    cpus: Option<f64>,
    /// Most processes the container may have (-1: unlimited).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Container hostname (default: the container name).
    #[arg(long, value_name = "NAME")]
    hostname: Option<String>,
    /// Bind mount HOST:CONTAINER[:ro|rw].
    #[arg(short, long = "volume", value_name = "HOST:CTR[:ro]")]
    volumes: Vec<String>,
    /// Set an environment variable (KEY=VALUE, or KEY to copy it from here).
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short, long, value_name = "DIR")]
    workdir: Option<PathBuf>,
    /// User to run as: UID[:GID], or a name from the container's /etc/passwd.
    #[arg(short, long, value_name = "UID[:GID]")]
    user: Option<String>,
    /// Mount the container's root filesystem read-only.
    #[arg(long)]
    read_only: bool,
    /// Remove the container when it exits (always on; kept for docker compatibility).
    #[arg(long)]
    rm: bool,
    /// Allocate a terminal (use with -i for an interactive shell).
    #[arg(short, long)]
    tty: bool,
    /// Keep stdin open and pass it to the container.
    #[arg(short, long)]
    interactive: bool,
    /// Container name (default: a random one).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Add a capability (e.g. NET_ADMIN or CAP_NET_ADMIN; ALL for every one); repeatable.
    #[arg(long = "cap-add", value_name = "CAP")]
    cap_add: Vec<String>,
    /// Drop a capability (e.g. NET_RAW; ALL for every one); repeatable. Drops apply first.
    #[arg(long = "cap-drop", value_name = "CAP")]
    cap_drop: Vec<String>,
    /// Security options: seccomp=FILE (a linux.seccomp JSON profile), seccomp=unconfined,
    /// no-new-privileges[=true|false]; repeatable.
    #[arg(long = "security-opt", value_name = "OPT")]
    security_opt: Vec<String>,
    /// Network: "private" (default: own namespace with only loopback) or "host".
    #[arg(long, value_name = "MODE", default_value = "private")]
    network: String,
    /// When the container exits, print its peak memory, CPU time and OOM kills (to stderr).
    #[arg(long)]
    stats: bool,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// Entry point of `cella`.
pub fn main() -> i32 {
    // `run` starts a container: run it from a sealed copy of this binary (CVE-2019-5736).
    // Decided before clap parses (see `cella_core::sealed::any_arg_is`).
    if cella_core::sealed::any_arg_is(&["run"]) {
        if let Err(e) = cella_core::sealed::ensure_sealed_exe() {
            eprintln!("cella: {e}");
            return 125;
        }
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 125 } else { 0 };
        }
    };
    if cli.version {
        print!("{}", crate::runc::version_text("cella"));
        return 0;
    }
    let root = StateRoot::new(&cli.root);
    let r = match cli.cmd {
        Some(Cmd::Run(a)) => run(&root, *a),
        Some(Cmd::Ps) => ps(&root),
        None => Err(anyhow!("no command given; try `cella run --help`")),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cella: {e:#}");
            125
        }
    }
}

fn ps(root: &StateRoot) -> Result<i32> {
    println!("{:<24} {:<8} {:<10} CREATED", "NAME", "PID", "STATUS");
    for s in container::list(root)? {
        println!("{:<24} {:<8} {:<10} {}", s.id, s.pid, s.status, s.created);
    }
    Ok(0)
}

/// Parse a size like docker: 512M, 1g, 100k, 1024, 2GiB.
pub fn parse_bytes(s: &str, flag: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t
        .strip_suffix("ib")
        .or_else(|| t.strip_suffix('b'))
        .unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num.trim().parse().map_err(|_| {
        anyhow!("{flag} {s:?}: not a size; use a number with an optional unit, like 512M or 1G")
    })?;
    if n.is_nan() || n <= 0.0 || !n.is_finite() {
        bail!("{flag} {s:?}: must be a positive size");
    }
    Ok((n * mult as f64) as i64)
}

fn human_bytes(n: i64) -> String {
    if n >= 1 << 30 && n % (1 << 30) == 0 {
        format!("{} GiB", n >> 30)
    } else if n >= 1 << 20 {
        format!("{} MiB", n >> 20)
    } else {
        format!("{n} bytes")
    }
}

fn random_name() -> String {
    let mut b = [0u8; 6];
    let _ = rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty());
    format!(
        "cella-{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    )
}

fn run(root: &StateRoot, a: RunArgs) -> Result<i32> {
    if a.command.is_empty() {
        bail!("no command given: cella run [OPTIONS] -- COMMAND [ARGS...]");
    }
    let id = a.name.clone().unwrap_or_else(random_name);
    cella_core::id::validate(&id).map_err(|e| anyhow!("--name: {e}"))?;
    if root.dir_of(&id).join("state.json").exists() {
        bail!("--name {id:?}: a container of that name exists; remove it or choose another name");
    }
    let memory = a
        .memory
        .as_deref()
        .map(|m| parse_bytes(m, "--memory"))
        .transpose()?;
    let swap = a
        .memory_swap
        .as_deref()
        .map(|m| parse_bytes(m, "--memory-swap"))
        .transpose()?;
    if swap.is_some() && memory.is_none() {
        bail!("--memory-swap needs --memory");
    }
    if let (Some(m), Some(s)) = (memory, swap) {
        if s != -1 && s < m {
            bail!(
                "--memory-swap {} must be at least --memory {} (it is memory plus swap)",
                human_bytes(s),
                human_bytes(m)
            );
        }
    }
    if let Some(c) = a.cpus {
        if c.is_nan() || c <= 0.0 || c > 1024.0 {
            bail!("--cpus {c}: must be more than 0 (e.g. 0.5 or 2)");
        }
    }
    let network_private = match a.network.as_str() {
        "private" | "none" => true,
        "host" => false,
        other => {
            bail!("--network {other:?}: use \"private\" (own namespace, loopback only) or \"host\"")
        }
    };
    std::fs::create_dir_all(root.path())
        .with_context(|| format!("creating {}", root.path().display()))?;

    let scratch = crate::rootfs_source::private_scratch(root.path())?;
    let rootfs = crate::rootfs_source::prepare(a.rootfs.as_deref(), root.path(), &scratch)?;

    let mut mounts: Vec<Value> = specgen::default_mounts()
        .as_array()
        .cloned()
        .unwrap_or_default();
    mounts.extend(rootfs.mounts.iter().cloned());
    for v in &a.volumes {
        mounts.push(volume_mount(v)?);
    }
    let (uid, gid) = match &a.user {
        Some(u) => parse_user(u, &rootfs.path)?,
        None => (0, 0),
    };
    let mut env = vec![
        specgen::DEFAULT_PATH.to_string(),
        format!("HOSTNAME={}", a.hostname.as_deref().unwrap_or(&id)),
    ];
    env.push(format!("HOME={}", if uid == 0 { "/root" } else { "/" }));
    if a.tty {
        env.push(format!(
            "TERM={}",
            std::env::var("TERM").unwrap_or_else(|_| "xterm".into())
        ));
    }
    for e in &a.env {
        let kv = if e.contains('=') {
            e.clone()
        } else {
            match std::env::var(e) {
                Ok(v) => format!("{e}={v}"),
                Err(_) => continue,
            }
        };
        let key = kv.split('=').next().unwrap_or("").to_string();
        if key.is_empty() {
            bail!("-e {e:?}: the variable has no name");
        }
        env.retain(|x| x.split('=').next() != Some(key.as_str()));
        env.push(kv);
    }
    let caps = json!(capabilities(&a.cap_add, &a.cap_drop)?);
    let security = SecurityOpts::parse(&a.security_opt)?;
    let mut resources = json!({"devices": [{"allow": false, "access": "rwm"}]});
    if let Some(m) = memory {
        resources["memory"] = json!({"limit": m});
        if let Some(s) = swap {
            resources["memory"]["swap"] = json!(s);
        }
    }
    if let Some(c) = a.cpus {
        resources["cpu"] = json!({"quota": (c * 100_000.0).round() as i64, "period": 100_000});
    }
    if let Some(p) = a.pids_limit {
        resources["pids"] = json!({"limit": if p <= 0 { -1 } else { p }});
    }
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
        json!({"type": "cgroup"}),
    ];
    if network_private {
        namespaces.push(json!({"type": "network"}));
    }
    let seccomp = match &security.seccomp {
        SeccompChoice::Default => serde_json::to_value(cella_seccomp::default_profile())?,
        SeccompChoice::Unconfined => Value::Null,
        SeccompChoice::Profile(p) => p.clone(),
    };
    let hostname = a
        .hostname
        .clone()
        .unwrap_or_else(|| id.chars().take(63).collect());
    let spec = json!({
        "ociVersion": cella_core::spec::OCI_VERSION,
        "process": {
            "terminal": a.tty,
            "user": {"uid": uid, "gid": gid},
            "args": a.command,
            "env": env,
            "cwd": a.workdir.clone().unwrap_or_else(|| PathBuf::from("/")),
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": security.no_new_privileges
        },
        "root": {"path": rootfs.path, "readonly": a.read_only},
        "hostname": hostname,
        "mounts": mounts,
        "linux": {
            "resources": resources,
            "namespaces": namespaces,
            "maskedPaths": specgen::MASKED_PATHS,
            "readonlyPaths": specgen::READONLY_PATHS,
            "seccomp": seccomp
        }
    });
    let mut spec = spec;
    if spec["linux"]["seccomp"].is_null() {
        spec["linux"]
            .as_object_mut()
            .expect("object")
            .remove("seccomp");
    }
    let spec: oci_spec::runtime::Spec =
        serde_json::from_value(spec).context("building the container spec")?;
    let config = cella_core::spec::validate(spec, scratch.clone())?;

    let sigfd = crate::foreground::SignalFd::new()?;
    let console = if a.tty {
        Some(crate::foreground::console_pair()?)
    } else {
        None
    };
    let stdin_null = if !a.interactive && !a.tty {
        // Like docker: without -i the container's stdin is empty.
        let null = rustix::fs::open(
            "/dev/null",
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?;
        let saved = rustix::io::fcntl_dupfd_cloexec(rustix::stdio::stdin(), 3)?;
        // SAFETY: dup2 onto fd 0; the saved copy restores it after create.
        unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), 0) };
        Some(saved)
    } else {
        None
    };
    let created = container::create_from_config(
        root,
        CreateOptions {
            id: id.clone(),
            bundle: scratch.clone(),
            pid_file: None,
            console_socket: match &console {
                Some((_, theirs)) => Some(theirs.try_clone()?),
                None => None,
            },
            preserve_fds: 0,
            no_pivot: false,
            no_new_keyring: false,
            mode: CreateMode::Foreground,
        },
        config,
    );
    if let Some(saved) = stdin_null {
        // SAFETY: restore our stdin from the saved duplicate.
        unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&saved), 0) };
    }
    let mut c = created?;
    let pty = match console {
        Some((ours, theirs)) => {
            drop(theirs);
            Some(crate::foreground::recv_pty_master(ours.as_fd())?)
        }
        None => None,
    };
    let result = c.start().map_err(anyhow::Error::from);
    c.unlock();
    let code = result
        .and_then(|()| crate::foreground::wait(c.pid, c.pidfd.as_fd(), &sigfd, pty, a.interactive));
    let oom = c.cgroup().oom_kill_count().unwrap_or(0);
    // Read before delete removes the cgroup.
    let usage = a.stats.then(|| cella_core::resources::stats_of(c.cgroup()));
    let deleted = c.delete(root);
    let code = code?;
    deleted?;
    if oom > 0 {
        let limit = memory.map(human_bytes).unwrap_or_else(|| "none set".into());
        if code == 137 {
            eprintln!("cella: container killed: out of memory (limit {limit})");
        } else {
            eprintln!("cella: {oom} process(es) in the container were killed: out of memory (limit {limit})");
        }
    }
    if let Some(u) = usage {
        eprintln!("{}", stats_line(&u, oom));
    }
    Ok(code)
}

/// The capability set for `--cap-add`/`--cap-drop`: the engines' default set, minus the
/// drops, plus the adds (docker's order). Names are case-insensitive, with or without
/// `CAP_`; `ALL` means every capability this kernel knows. Unknown names are an error.
fn capabilities(add: &[String], drop: &[String]) -> Result<Vec<String>> {
    fn canon(flag: &str, name: &str) -> Result<Option<caps::Capability>> {
        let up = name.trim().to_ascii_uppercase();
        if up == "ALL" {
            return Ok(None);
        }
        let full = if up.starts_with("CAP_") {
            up
        } else {
            format!("CAP_{up}")
        };
        full.parse::<caps::Capability>().map(Some).map_err(|_| {
            anyhow!("{flag} {name:?}: unknown capability (e.g. NET_ADMIN, SYS_PTRACE, or ALL)")
        })
    }
    let mut set: caps::CapsHashSet = specgen::ENGINE_DEFAULT_CAPS
        .iter()
        .map(|c| c.parse().expect("the default set names known capabilities"))
        .collect();
    for d in drop {
        match canon("--cap-drop", d)? {
            None => set.clear(),
            Some(c) => {
                set.remove(&c);
            }
        }
    }
    for a in add {
        match canon("--cap-add", a)? {
            None => set
                .extend(caps::runtime::procfs_all_supported(None).unwrap_or_else(|_| caps::all())),
            Some(c) => {
                set.insert(c);
            }
        }
    }
    let mut names: Vec<String> = set.into_iter().map(|c| c.to_string()).collect();
    names.sort();
    Ok(names)
}

/// The seccomp choice of `--security-opt`.
#[derive(Debug, Clone, PartialEq)]
enum SeccompChoice {
    Default,
    Unconfined,
    /// A `linux.seccomp` object read from a file (validated).
    Profile(Value),
}

/// What `--security-opt` asked for.
#[derive(Debug, Clone, PartialEq)]
struct SecurityOpts {
    seccomp: SeccompChoice,
    no_new_privileges: bool,
}

impl SecurityOpts {
    fn parse(opts: &[String]) -> Result<SecurityOpts> {
        let mut out = SecurityOpts {
            seccomp: SeccompChoice::Default,
            no_new_privileges: true,
        };
        for o in opts {
            // docker accepts both KEY=VALUE and the older KEY:VALUE.
            let (key, value) = match o.split_once(['=', ':']) {
                Some((k, v)) => (k, Some(v)),
                None => (o.as_str(), None),
            };
            match (key, value) {
                ("seccomp", Some("unconfined")) => out.seccomp = SeccompChoice::Unconfined,
                ("seccomp", Some(file)) if !file.is_empty() => {
                    let text = std::fs::read(file)
                        .with_context(|| format!("--security-opt {o:?}: reading {file}"))?;
                    let profile = cella_seccomp::parse_profile(&text)
                        .map_err(|e| anyhow!("--security-opt {o:?}: {file}: {e}"))?;
                    cella_seccomp::Filter::from_spec(&profile)
                        .map_err(|e| anyhow!("--security-opt {o:?}: {file}: {e}"))?;
                    out.seccomp = SeccompChoice::Profile(serde_json::to_value(profile)?);
                }
                ("seccomp", _) => {
                    bail!("--security-opt {o:?}: use seccomp=FILE or seccomp=unconfined")
                }
                ("no-new-privileges", None | Some("true")) => out.no_new_privileges = true,
                ("no-new-privileges", Some("false")) => out.no_new_privileges = false,
                ("no-new-privileges", Some(v)) => {
                    bail!("--security-opt {o:?}: no-new-privileges takes true or false, not {v:?}")
                }
                _ => bail!(
                    "--security-opt {o:?}: unknown option; cella knows seccomp=FILE, \
                     seccomp=unconfined and no-new-privileges[=true|false]"
                ),
            }
        }
        Ok(out)
    }
}

/// The `--stats` summary: `cella: stats: peak memory 12.3 MiB, CPU time 0.52 s (user 0.40 s, system 0.12 s), OOM kills 0`.
fn stats_line(u: &cella_core::resources::StatsData, oom: u64) -> String {
    let mib = |b: u64| format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64);
    let secs = |ns: u64| format!("{:.2} s", ns as f64 / 1e9);
    let peak = u
        .memory
        .usage
        .max
        .map(mib)
        .unwrap_or_else(|| "unknown (no memory.peak on this kernel)".into());
    let mut cpu = u
        .cpu
        .usage
        .total
        .map(secs)
        .unwrap_or_else(|| "unknown".into());
    if let (Some(us), Some(sy)) = (u.cpu.usage.user, u.cpu.usage.kernel) {
        cpu.push_str(&format!(" (user {}, system {})", secs(us), secs(sy)));
    }
    format!("cella: stats: peak memory {peak}, CPU time {cpu}, OOM kills {oom}")
}

fn volume_mount(v: &str) -> Result<Value> {
    let parts: Vec<&str> = v.split(':').collect();
    let (host, ctr, mode) = match parts.as_slice() {
        [h, c] => (*h, *c, "rw"),
        [h, c, m] => (*h, *c, *m),
        _ => bail!("-v {v:?}: use HOST:CONTAINER or HOST:CONTAINER:ro"),
    };
    if mode != "ro" && mode != "rw" {
        bail!("-v {v:?}: unknown mode {mode:?}; use ro or rw");
    }
    let host =
        std::fs::canonicalize(host).with_context(|| format!("-v {v:?}: host path {host}"))?;
    if !ctr.starts_with('/') {
        bail!("-v {v:?}: the container path {ctr:?} must be absolute");
    }
    let mut options = vec!["rbind", "rprivate"];
    if mode == "ro" {
        options.push("ro");
    }
    Ok(json!({"destination": ctr, "type": "bind", "source": host, "options": options}))
}

/// UID[:GID] numbers, or a user name looked up in the rootfs's /etc/passwd (read through an
/// fd resolved inside the rootfs).
fn parse_user(u: &str, rootfs: &Path) -> Result<(u32, u32)> {
    let (user, group) = match u.split_once(':') {
        Some((a, b)) => (a, Some(b)),
        None => (u, None),
    };
    let read_db = |name: &str| -> String {
        let Ok(root) = rustix::fs::open(
            rootfs,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        ) else {
            return String::new();
        };
        match cella_core::resolve::open_in_root(
            root.as_fd(),
            Path::new(name),
            rustix::fs::OFlags::RDONLY,
        ) {
            Ok(fd) => std::io::read_to_string(std::fs::File::from(fd)).unwrap_or_default(),
            Err(_) => String::new(),
        }
    };
    let (uid, primary) = match user.parse::<u32>() {
        Ok(n) => (n, None),
        Err(_) => {
            let db = read_db("/etc/passwd");
            let line = db
                .lines()
                .find(|l| l.split(':').next() == Some(user))
                .ok_or_else(|| {
                    anyhow!("-u {u:?}: no user {user:?} in the container's /etc/passwd")
                })?;
            let f: Vec<&str> = line.split(':').collect();
            (
                f.get(2).and_then(|x| x.parse().ok()).unwrap_or(0),
                f.get(3).and_then(|x| x.parse::<u32>().ok()),
            )
        }
    };
    let gid = match group {
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                let db = read_db("/etc/group");
                db.lines()
                    .find(|l| l.split(':').next() == Some(g))
                    .and_then(|l| l.split(':').nth(2).and_then(|x| x.parse().ok()))
                    .ok_or_else(|| {
                        anyhow!("-u {u:?}: no group {g:?} in the container's /etc/group")
                    })?
            }
        },
        None => primary.unwrap_or(uid),
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("512M", "--memory").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("1g", "--memory").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("64MiB", "--memory").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("100k", "--memory").unwrap(), 100 << 10);
        assert_eq!(parse_bytes("1024", "--memory").unwrap(), 1024);
        assert_eq!(parse_bytes("-1", "--memory-swap").unwrap(), -1);
        assert!(parse_bytes("lots", "--memory")
            .unwrap_err()
            .to_string()
            .contains("--memory \"lots\""));
        assert!(parse_bytes("0", "--memory").is_err());
    }

    #[test]
    fn cap_add_and_drop() {
        let c = capabilities(
            &["net_admin".into(), "CAP_SYS_PTRACE".into()],
            &["NET_RAW".into()],
        )
        .unwrap();
        assert!(c.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(c.contains(&"CAP_SYS_PTRACE".to_string()));
        assert!(!c.contains(&"CAP_NET_RAW".to_string()));
        assert!(c.contains(&"CAP_CHOWN".to_string()));
        let c = capabilities(&["kill".into()], &["ALL".into()]).unwrap();
        assert_eq!(c, ["CAP_KILL"]);
        let c = capabilities(&["all".into()], &[]).unwrap();
        assert!(c.contains(&"CAP_SYS_ADMIN".to_string()) && c.len() > 30);
        let e = capabilities(&["CAP_BOGUS".into()], &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--cap-add") && e.contains("CAP_BOGUS"), "{e}");
        let e = capabilities(&[], &["frobnicate".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--cap-drop") && e.contains("frobnicate"), "{e}");
    }

    #[test]
    fn security_opts() {
        let d = SecurityOpts::parse(&[]).unwrap();
        assert_eq!(d.seccomp, SeccompChoice::Default);
        assert!(d.no_new_privileges);
        let o = SecurityOpts::parse(&[
            "seccomp=unconfined".into(),
            "no-new-privileges=false".into(),
        ])
        .unwrap();
        assert_eq!(o.seccomp, SeccompChoice::Unconfined);
        assert!(!o.no_new_privileges);
        assert!(
            SecurityOpts::parse(&["no-new-privileges".into()])
                .unwrap()
                .no_new_privileges
        );
        assert!(
            SecurityOpts::parse(&["no-new-privileges:true".into()])
                .unwrap()
                .no_new_privileges
        );
        for bad in [
            "seccomp",
            "seccomp=",
            "no-new-privileges=maybe",
            "apparmor=x",
            "label=y",
        ] {
            let e = SecurityOpts::parse(&[bad.into()]).unwrap_err().to_string();
            assert!(e.contains(bad), "{bad}: {e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p.json");
        std::fs::write(
            &f,
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#,
        )
        .unwrap();
        let o = SecurityOpts::parse(&[format!("seccomp={}", f.display())]).unwrap();
        assert!(
            matches!(o.seccomp, SeccompChoice::Profile(ref v) if v["syscalls"][0]["names"][0] == "mkdir")
        );
        std::fs::write(&f, r#"{"defaultAction":"SCMP_ACT_FOO"}"#).unwrap();
        let e = SecurityOpts::parse(&[format!("seccomp={}", f.display())])
            .unwrap_err()
            .to_string();
        assert!(e.contains("SCMP_ACT_FOO"), "{e}");
    }

    #[test]
    fn stats_summary() {
        let mut u = cella_core::resources::StatsData::default();
        u.memory.usage.max = Some(3 << 19);
        u.cpu.usage.total = Some(1_250_000_000);
        u.cpu.usage.user = Some(1_000_000_000);
        u.cpu.usage.kernel = Some(250_000_000);
        assert_eq!(stats_line(&u, 2), "cella: stats: peak memory 1.5 MiB, CPU time 1.25 s (user 1.00 s, system 0.25 s), OOM kills 2");
        let e = stats_line(&cella_core::resources::StatsData::default(), 0);
        assert!(
            e.contains("peak memory unknown") && e.contains("CPU time unknown"),
            "{e}"
        );
    }

    #[test]
    fn volumes() {
        let v = volume_mount("/tmp:/data:ro").unwrap();
        assert_eq!(v["destination"], "/data");
        assert!(v["options"].as_array().unwrap().iter().any(|o| o == "ro"));
        assert!(volume_mount("/tmp:data").is_err());
        assert!(volume_mount("/nonexistent-xyz:/d")
            .unwrap_err()
            .to_string()
            .contains("/nonexistent-xyz"));
        assert!(volume_mount("/tmp:/d:rx").is_err());
    }
}
