//! Shared support for cella's integration tests: they start real containers from a busybox
//! rootfs through a runc-compatible command line and check what a user sees.
//!
//! The runtime under test is `CELLA_RUNTIME` when set (e.g. `/usr/sbin/runc`, to check that the
//! tests themselves are right), and cella's own `cella-runc` otherwise.
//!
//! Every test makes one [`Env`]: a private temp dir holding the `--root` state dir and the
//! bundles. Dropping the `Env` force-deletes every container it made, checks that nothing is
//! left behind (state dirs, cgroups, mounts, processes), cleans up whatever was, and fails the
//! test if anything leaked.
#![allow(dead_code)] // each test binary uses a different part of this module

use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::fmt;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long one runtime command may take before the test kills it and fails.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The runtime binary under test.
pub fn runtime() -> PathBuf {
    match std::env::var_os("CELLA_RUNTIME") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_cella-runc")),
    }
}

/// The runtime cella is compared with.
pub const REFERENCE_RUNTIME: &str = "/usr/sbin/runc";

/// Whether the runtime under test is cella's own.
pub fn runtime_is_cella() -> bool {
    let rt = runtime();
    rt == Path::new(env!("CARGO_BIN_EXE_cella-runc"))
        || rt
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("cella"))
}

/// For the few tests whose expectation is cella's own (error wording, or behaviour another
/// runtime gets wrong or lacks): returns true, after printing why, when the runtime under test
/// is not cella, so the test can `return` early. Usage: `if cella_only("why") { return; }`.
pub fn cella_only(reason: &str) -> bool {
    if runtime_is_cella() {
        return false;
    }
    eprintln!(
        "SKIP (cella-only; runtime under test is {}): {reason}",
        runtime().display()
    );
    true
}

/// Prints a skip reason; returns true so a test can `return` early.
pub fn skip(reason: &str) -> bool {
    eprintln!("SKIP: {reason}");
    true
}

/// The repository's top directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// The busybox rootfs the bundles copy: `CELLA_TEST_ROOTFS`, or `tests/fixtures/rootfs`, built
/// by `tests/make-rootfs.sh` on first use when missing.
pub fn fixture_rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        if let Some(p) = std::env::var_os("CELLA_TEST_ROOTFS") {
            let p = PathBuf::from(p);
            assert!(
                p.join("bin/busybox").is_file(),
                "CELLA_TEST_ROOTFS={} has no bin/busybox",
                p.display()
            );
            return p;
        }
        let dest = repo_root().join("tests/fixtures/rootfs");
        if !dest.join("bin/sh").exists() {
            // Build beside the destination and rename, so that concurrent test binaries
            // never see a half-built rootfs.
            let tmp = repo_root().join(format!("tests/fixtures/rootfs.tmp-{}", std::process::id()));
            let script = repo_root().join("tests/make-rootfs.sh");
            let st = Command::new("bash")
                .arg(&script)
                .arg(&tmp)
                .status()
                .expect("run tests/make-rootfs.sh");
            assert!(
                st.success(),
                "{} {} failed: {st}",
                script.display(),
                tmp.display()
            );
            if fs::rename(&tmp, &dest).is_err() {
                let _ = fs::remove_dir_all(&tmp); // someone else built it first
            }
        }
        assert!(
            dest.join("bin/sh").exists(),
            "no rootfs at {}",
            dest.display()
        );
        dest
    })
}

/// A serialising lock for host-global operations (e.g. `ip netns`).
pub fn host_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The capabilities `runc spec` gives a container.
pub const DEFAULT_CAPS: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A config.json like the one `runc spec` writes (without the cgroup mount and the device
/// rules), with `cgroupsPath` set to `/cella-test/<id>` and no terminal.
pub fn default_config(id: &str) -> Value {
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [DEFAULT_PATH, "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": DEFAULT_CAPS,
                "effective": DEFAULT_CAPS,
                "permitted": DEFAULT_CAPS,
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "cella-test",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]}
        ],
        "linux": {
            "cgroupsPath": format!("/cella-test/{id}"),
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// One runtime command's result. Its stdout and stderr went to files (not pipes), so a
/// container started by `create` or `run --detach` that inherits them cannot hold the test up;
/// [`Out::stdout_now`] re-reads the stdout file later, e.g. after such a container exited.
pub struct Out {
    pub cmdline: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub stdout_path: PathBuf,
}

impl Out {
    /// The exit code, or None when the runtime itself died of a signal.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
    pub fn success(&self) -> bool {
        self.status.success()
    }
    /// Asserts that the command succeeded.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert!(self.success(), "command failed:\n{self}");
        self
    }
    /// Asserts that the command failed with a non-zero exit code (not a crash by signal).
    #[track_caller]
    pub fn failed(&self) -> &Self {
        assert!(
            matches!(self.code(), Some(c) if c != 0),
            "command should have exited non-zero:\n{self}"
        );
        self
    }
    /// Asserts that stderr mentions every one of `needles` (case-insensitive).
    #[track_caller]
    pub fn stderr_mentions(&self, needles: &[&str]) -> &Self {
        let err = self.stderr.to_lowercase();
        for n in needles {
            assert!(
                err.contains(&n.to_lowercase()),
                "stderr should mention {n:?}:\n{self}"
            );
        }
        self
    }
    /// The stdout file as it is now (a detached container may have written more).
    pub fn stdout_now(&self) -> String {
        fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }
    /// Parses stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self}"))
    }
}

impl fmt::Display for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "$ {}\n-> {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmdline, self.status, self.stdout, self.stderr
        )
    }
}

/// A bundle: a directory with a private copy of the busybox rootfs and a config.json
/// that is (re)written from [`Bundle::config_mut`] before each runtime command.
pub struct Bundle {
    /// The container id this bundle is meant to run as (unique: test name, pid, counter).
    pub id: String,
    pub dir: PathBuf,
    config: Value,
}

impl Bundle {
    pub fn config(&self) -> &Value {
        &self.config
    }
    pub fn config_mut(&mut self) -> &mut Value {
        &mut self.config
    }
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }
    /// `cgroupsPath` relative to a hierarchy's mount point (no leading slash).
    pub fn cgroup_rel(&self) -> String {
        self.config["linux"]["cgroupsPath"]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string()
    }
    /// The directory of `cgroupsPath` in one v1 hierarchy, e.g. `memory`.
    pub fn cgroup_dir(&self, controller: &str) -> PathBuf {
        Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(self.cgroup_rel())
    }
    /// Sets `process.args`.
    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.config["process"]["args"] = json!(args);
        self
    }
    /// Sets `process.args` to `sh -c SCRIPT`.
    pub fn sh(&mut self, script: &str) -> &mut Self {
        self.args(&["sh", "-c", script])
    }
    /// Drops the namespace of `kind` from `linux.namespaces`.
    pub fn remove_namespace(&mut self, kind: &str) -> &mut Self {
        let ns = self.config["linux"]["namespaces"]
            .as_array_mut()
            .expect("linux.namespaces");
        ns.retain(|n| n["type"] != kind);
        self
    }
    /// Adds (or replaces) a namespace entry.
    pub fn set_namespace(&mut self, entry: Value) -> &mut Self {
        let kind = entry["type"].clone();
        let ns = self.config["linux"]["namespaces"]
            .as_array_mut()
            .expect("linux.namespaces");
        ns.retain(|n| n["type"] != kind);
        ns.push(entry);
        self
    }
    /// Appends a mount.
    pub fn add_mount(&mut self, mount: Value) -> &mut Self {
        self.config["mounts"]
            .as_array_mut()
            .expect("mounts")
            .push(mount);
        self
    }
    /// Writes config.json as it is now.
    pub fn write_config(&self) {
        fs::write(
            self.dir.join("config.json"),
            serde_json::to_vec_pretty(&self.config).expect("serialise config"),
        )
        .expect("write config.json");
    }
}

/// One test's private world. See the module documentation.
pub struct Env {
    /// The test's name (from the test thread), made safe for ids and paths.
    pub name: String,
    /// The private temp dir; everything the test makes lives inside it.
    pub tmp: PathBuf,
    /// The runtime's `--root`.
    pub root: PathBuf,
    /// Container ids this test may have created, with the cgroup path each used.
    tracked: RefCell<Vec<(String, String)>>,
    seq: Cell<u32>,
}

impl Env {
    /// A new test environment, or None (after printing why) when the tests cannot run here:
    /// they need root. Usage: `let Some(env) = Env::new() else { return };`
    pub fn new() -> Option<Env> {
        if !rustix::process::geteuid().is_root() {
            skip("integration tests start real containers and need root");
            return None;
        }
        let _ = fixture_rootfs();
        let thread = std::thread::current();
        let raw = thread.name().unwrap_or("test");
        let raw = raw.rsplit("::").next().unwrap_or(raw);
        let mut name: String = raw
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        name.truncate(40);
        let tmp = tempfile::Builder::new()
            .prefix(&format!("cella-test-{name}-"))
            .tempdir()
            .expect("temp dir")
            .keep();
        let root = tmp.join("state");
        fs::create_dir(&root).expect("state dir");
        Some(Env {
            name,
            tmp,
            root,
            tracked: RefCell::new(Vec::new()),
            seq: Cell::new(0),
        })
    }

    fn next(&self) -> u32 {
        let n = self.seq.get() + 1;
        self.seq.set(n);
        n
    }

    /// A fresh container id, unique across tests and test processes, tracked for cleanup.
    pub fn new_id(&self) -> String {
        let id = format!("{}-{}-{}", self.name, std::process::id(), self.next());
        self.track(&id, &format!("cella-test/{id}"));
        id
    }

    /// Makes the guard force-delete `id` and check `cgroup_rel` on drop.
    pub fn track(&self, id: &str, cgroup_rel: &str) {
        let mut t = self.tracked.borrow_mut();
        if !t.iter().any(|(i, c)| i == id && c == cgroup_rel) {
            t.push((id.to_string(), cgroup_rel.to_string()));
        }
    }

    /// A bundle with a private copy of the rootfs and the default config, running `sh`.
    pub fn bundle(&self) -> Bundle {
        let id = self.new_id();
        let dir = self.tmp.join(format!("bundle-{id}"));
        fs::create_dir(&dir).expect("bundle dir");
        let st = Command::new("cp")
            .arg("-a")
            .arg(fixture_rootfs())
            .arg(dir.join("rootfs"))
            .status()
            .expect("cp -a rootfs");
        assert!(st.success(), "cp -a of the rootfs failed");
        Bundle {
            config: default_config(&id),
            id,
            dir,
        }
    }

    /// A scratch directory inside the test's temp dir.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let p = self.tmp.join(name);
        fs::create_dir_all(&p).expect("scratch dir");
        p
    }

    /// Runs the runtime with `--root` and `args`, within [`TIMEOUT`].
    pub fn rt(&self, args: &[&str]) -> Out {
        let mut full: Vec<&str> = vec!["--root", self.root.to_str().unwrap()];
        full.extend_from_slice(args);
        self.rt_raw(&full, TIMEOUT)
    }

    /// The `--root` of the reference runtime (see [`REFERENCE_RUNTIME`]).
    pub fn ref_root(&self) -> PathBuf {
        self.tmp.join("state-ref")
    }

    /// Runs the reference runtime (Debian's runc) with its own `--root` and `args`.
    pub fn reference_rt(&self, args: &[&str]) -> Out {
        let root = self.ref_root();
        fs::create_dir_all(&root).expect("reference state dir");
        let mut cmd = Command::new(REFERENCE_RUNTIME);
        cmd.arg("--root").arg(&root).args(args);
        self.run_cmd(cmd, TIMEOUT)
    }

    /// Runs the runtime with exactly `args` (no `--root`), killing it after `timeout`.
    pub fn rt_raw(&self, args: &[&str], timeout: Duration) -> Out {
        let mut cmd = Command::new(runtime());
        cmd.args(args);
        self.run_cmd(cmd, timeout)
    }

    /// Runs any command with stdin from /dev/null and stdout/stderr to files, within `timeout`.
    pub fn run_cmd(&self, mut cmd: Command, timeout: Duration) -> Out {
        let n = self.next();
        let stdout_path = self.tmp.join(format!("out-{n}.stdout"));
        let stderr_path = self.tmp.join(format!("out-{n}.stderr"));
        let cmdline = format!("{cmd:?}");
        if cmd.get_current_dir().is_none() {
            cmd.current_dir(&self.tmp);
        }
        cmd.stdin(Stdio::null())
            .stdout(fs::File::create(&stdout_path).expect("stdout file"))
            .stderr(fs::File::create(&stderr_path).expect("stderr file"));
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmdline}: {e}"));
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(st) = child.try_wait().expect("wait") {
                break st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let st = child.wait().expect("wait");
                let out = Out {
                    cmdline,
                    status: st,
                    stdout: fs::read_to_string(&stdout_path).unwrap_or_default(),
                    stderr: fs::read_to_string(&stderr_path).unwrap_or_default(),
                    stdout_path,
                };
                panic!("timed out after {timeout:?}, killed:\n{out}");
            }
            std::thread::sleep(Duration::from_millis(3));
        };
        Out {
            cmdline,
            status,
            stdout: fs::read_to_string(&stdout_path).unwrap_or_default(),
            stderr: fs::read_to_string(&stderr_path).unwrap_or_default(),
            stdout_path,
        }
    }

    /// Runs a host command (e.g. `ip`) and asserts it succeeds; returns stdout.
    #[track_caller]
    pub fn host(&self, prog: &str, args: &[&str]) -> String {
        let mut cmd = Command::new(prog);
        cmd.args(args);
        let out = self.run_cmd(cmd, TIMEOUT);
        out.ok();
        out.stdout
    }

    /// `create --bundle DIR ID` (config written first).
    pub fn create(&self, b: &Bundle) -> Out {
        self.create_with(b, &[])
    }

    /// `create` with extra options before the id.
    pub fn create_with(&self, b: &Bundle, extra: &[&str]) -> Out {
        b.write_config();
        let mut args = vec!["create", "--bundle", b.dir.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push(&b.id);
        self.rt(&args)
    }

    /// `run --bundle DIR ID` in the foreground: stdout is the container's.
    pub fn run(&self, b: &Bundle) -> Out {
        self.run_with(b, &[])
    }

    pub fn run_with(&self, b: &Bundle, extra: &[&str]) -> Out {
        b.write_config();
        let mut args = vec!["run", "--bundle", b.dir.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push(&b.id);
        self.rt(&args)
    }

    /// Runs the bundle in the foreground, asserts exit 0, and returns its stdout.
    #[track_caller]
    pub fn run_ok(&self, b: &Bundle) -> String {
        let out = self.run(b);
        out.ok();
        out.stdout
    }

    pub fn start(&self, id: &str) -> Out {
        self.rt(&["start", id])
    }

    pub fn kill(&self, id: &str, signal: &str) -> Out {
        self.rt(&["kill", id, signal])
    }

    pub fn delete(&self, id: &str) -> Out {
        self.rt(&["delete", id])
    }

    /// `state ID`, asserted to succeed, parsed.
    #[track_caller]
    pub fn state(&self, id: &str) -> Value {
        let out = self.rt(&["state", id]);
        out.ok();
        out.json()
    }

    /// The `status` field of `state ID`.
    #[track_caller]
    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"]
            .as_str()
            .expect("state.status is a string")
            .to_string()
    }

    /// Polls `state ID` until its status is `want`; fails after [`TIMEOUT`].
    #[track_caller]
    pub fn wait_status(&self, id: &str, want: &str) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let st = self.status(id);
            if st == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "container {id} still {st:?}, expected {want:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// create + start, asserting both succeed.
    #[track_caller]
    pub fn create_start(&self, b: &Bundle) -> Out {
        let out = self.create(b);
        out.ok();
        self.start(&b.id).ok();
        out
    }

    /// Everything `id`'s container (with bundle `bundle_dir` and cgroup `cgroup_rel`) left
    /// behind: state dir, cgroup dirs, mounts under the bundle, processes in its cgroup or
    /// rooted in its bundle. Empty means clean.
    pub fn leaks_of(&self, id: &str, bundle_dir: Option<&Path>, cgroup_rel: &str) -> Vec<String> {
        let mut leaks = Vec::new();
        let state = self.root.join(id);
        if state.exists() {
            leaks.push(format!("state dir {}", state.display()));
        }
        for dir in cgroup_dirs(cgroup_rel) {
            leaks.push(format!("cgroup dir {}", dir.display()));
        }
        if let Some(b) = bundle_dir {
            for m in mounts_under(b) {
                leaks.push(format!("mount {m}"));
            }
        }
        for (pid, why) in processes_of(Some(cgroup_rel), bundle_dir) {
            leaks.push(format!("process {pid} ({why})"));
        }
        leaks
    }

    /// [`Env::leaks_of`] for a bundle and its own id.
    pub fn leaks(&self, b: &Bundle) -> Vec<String> {
        self.leaks_of(&b.id, Some(&b.dir), &b.cgroup_rel())
    }

    /// Asserts that nothing is left of the bundle's container.
    #[track_caller]
    pub fn assert_no_leaks(&self, b: &Bundle) {
        let leaks = self.leaks(b);
        assert!(
            leaks.is_empty(),
            "container {} left behind: {leaks:#?}",
            b.id
        );
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let tracked = self.tracked.borrow().clone();
        let mut leaks = Vec::new();
        for (id, _) in &tracked {
            // Ignore errors: most tracked ids were already deleted or never created.
            let _ = self.rt(&["delete", "--force", id]);
            if self.ref_root().exists() {
                let _ = self.reference_rt(&["delete", "--force", id]);
            }
        }
        for (id, cg) in &tracked {
            for l in self.leaks_of(id, None, cg) {
                leaks.push(format!("{id}: {l}"));
            }
        }
        for m in mounts_under(&self.tmp) {
            leaks.push(format!("mount {m}"));
        }
        for (pid, why) in processes_of(None, Some(&self.tmp)) {
            leaks.push(format!("process {pid} ({why})"));
        }

        // Clean up whatever is left, so one failing test does not break the next.
        for (id, cg) in &tracked {
            for (pid, _) in processes_of(Some(cg), None) {
                // SAFETY: kill(2) with a pid in this test's own container cgroup.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            let _ = fs::remove_dir_all(self.root.join(id));
        }
        for (pid, _) in processes_of(None, Some(&self.tmp)) {
            // SAFETY: kill(2) with a pid whose root or cwd is inside this test's temp dir.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        for (_, cg) in &tracked {
            for dir in cgroup_dirs(cg) {
                remove_cgroup(&dir);
            }
        }
        let mut mounts = mounts_under(&self.tmp);
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in &mounts {
            let _ = rustix::mount::unmount(m.as_str(), rustix::mount::UnmountFlags::DETACH);
        }
        if mounts_under(&self.tmp).is_empty() {
            let _ = fs::remove_dir_all(&self.tmp);
        } else {
            eprintln!("not removing {}: mounts remain", self.tmp.display());
        }

        if !leaks.is_empty() {
            let msg = format!("test {} left behind: {leaks:#?}", self.name);
            if std::thread::panicking() {
                eprintln!("{msg}");
            } else {
                panic!("{msg}");
            }
        }
    }
}

/// Existing directories `/sys/fs/cgroup/<hierarchy>/<cgroup_rel>`.
pub fn cgroup_dirs(cgroup_rel: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if cgroup_rel.trim_matches('/').is_empty() {
        return out;
    }
    let mut bases = vec![PathBuf::from("/sys/fs/cgroup")];
    if let Ok(rd) = fs::read_dir("/sys/fs/cgroup") {
        bases.extend(rd.flatten().map(|e| e.path()));
    }
    for base in bases {
        let dir = base.join(cgroup_rel.trim_start_matches('/'));
        if base.join("cgroup.procs").exists() && dir.is_dir() {
            out.push(dir);
        }
    }
    out
}

fn remove_cgroup(dir: &Path) {
    // Children first; cgroup dirs are removed with rmdir, not by deleting their files.
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup(&e.path());
            }
        }
    }
    for _ in 0..50 {
        if fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Mount points in this process's mount namespace at or under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = dir.to_string_lossy().to_string();
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|m| m == &dir || m.starts_with(&format!("{dir}/")))
        .collect()
}

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
pub fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Live (non-zombie) processes in cgroup `cgroup_rel` (any hierarchy), or whose root or cwd
/// is inside `dir`, with the reason each matched. Never includes the test process itself.
pub fn processes_of(cgroup_rel: Option<&str>, dir: Option<&Path>) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let needle = cgroup_rel.map(|c| format!("/{}", c.trim_matches('/')));
    let mut out = Vec::new();
    // Identities of the rootfs directories under `dir`: its own, or its bundles'.
    let mut roots = Vec::new();
    if let Some(dir) = dir {
        let mut candidates = vec![dir.join("rootfs")];
        if let Ok(rd) = fs::read_dir(dir) {
            candidates.extend(rd.flatten().map(|e| e.path().join("rootfs")));
        }
        for c in candidates {
            if let Ok(m) = fs::metadata(&c) {
                roots.push((m.dev(), m.ino()));
            }
        }
    }
    let Ok(rd) = fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let p = e.path();
        let stat = fs::read_to_string(p.join("stat")).unwrap_or_default();
        let state = stat.rsplit(") ").next().and_then(|s| s.chars().next());
        if matches!(state, None | Some('Z') | Some('X')) {
            continue;
        }
        if let Some(needle) = &needle {
            let cg = fs::read_to_string(p.join("cgroup")).unwrap_or_default();
            if cg.lines().any(|l| {
                let path = l.splitn(3, ':').nth(2).unwrap_or("");
                path == needle || path.starts_with(&format!("{needle}/"))
            }) {
                out.push((pid, format!("in cgroup {needle}")));
                continue;
            }
        }
        if let Some(dir) = dir {
            // After pivot_root the root link reads "/", so compare the directory itself.
            if let Ok(m) = fs::metadata(p.join("root")) {
                if roots.contains(&(m.dev(), m.ino())) {
                    out.push((pid, "root is a bundle rootfs".to_string()));
                    continue;
                }
            }
            for link in ["root", "cwd"] {
                if let Ok(target) = fs::read_link(p.join(link)) {
                    if target.starts_with(dir) {
                        out.push((pid, format!("{link} is {}", target.display())));
                        break;
                    }
                }
            }
        }
    }
    out
}

/// Parses the `Cap*:` lines of a /proc/PID/status text into name → mask.
pub fn cap_lines(status: &str) -> Vec<(String, u64)> {
    status
        .lines()
        .filter(|l| l.starts_with("Cap"))
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.to_string(), u64::from_str_radix(v.trim(), 16).ok()?))
        })
        .collect()
}

/// The bit of a capability named like `CAP_KILL` (the ones these tests use).
pub fn cap_bit(name: &str) -> u64 {
    let n = match name {
        "CAP_CHOWN" => 0,
        "CAP_DAC_OVERRIDE" => 1,
        "CAP_DAC_READ_SEARCH" => 2,
        "CAP_FOWNER" => 3,
        "CAP_FSETID" => 4,
        "CAP_KILL" => 5,
        "CAP_SETGID" => 6,
        "CAP_SETUID" => 7,
        "CAP_SETPCAP" => 8,
        "CAP_NET_BIND_SERVICE" => 10,
        "CAP_NET_RAW" => 13,
        "CAP_SYS_CHROOT" => 18,
        "CAP_SYS_ADMIN" => 21,
        "CAP_MKNOD" => 27,
        "CAP_AUDIT_WRITE" => 29,
        "CAP_SETFCAP" => 31,
        other => panic!("cap_bit: add {other}"),
    };
    1u64 << n
}

/// The mask of a list of capability names.
pub fn cap_mask(names: &[&str]) -> u64 {
    names.iter().map(|n| cap_bit(n)).fold(0, |a, b| a | b)
}
