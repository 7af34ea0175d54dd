//! Filters installed for real: each test forks a child that loads a filter and makes
//! syscalls, and the parent checks what the kernel did.
//!
//! The child sets no_new_privs itself, so these tests need no root.

use std::io::{IoSlice, IoSliceMut, Read};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use cella_seccomp::{default_profile, parse_profile, process_state_json, send_listener, Filter};
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};

/// Exit codes the child uses for its own failures (distinct from errno values tested).
const LOAD_FAILED: i32 = 250;
const PREPARE_FAILED: i32 = 251;

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Exited(i32),
    Signaled(i32),
}

/// A forked child; killed and reaped on drop if the test did not wait for it.
struct Child {
    pid: libc::pid_t,
    reaped: bool,
}

impl Child {
    fn wait(mut self) -> Outcome {
        let mut status = 0;
        // SAFETY: waiting for our own child; `status` is a valid out pointer.
        let r = unsafe { libc::waitpid(self.pid, &mut status, 0) };
        assert_eq!(r, self.pid, "waitpid: {}", std::io::Error::last_os_error());
        self.reaped = true;
        if libc::WIFEXITED(status) {
            Outcome::Exited(libc::WEXITSTATUS(status))
        } else if libc::WIFSIGNALED(status) {
            Outcome::Signaled(libc::WTERMSIG(status))
        } else {
            panic!("unexpected wait status {status:#x}");
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            // SAFETY: signalling and reaping our own, not yet reaped, child.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
                libc::waitpid(self.pid, std::ptr::null_mut(), 0);
            }
        }
    }
}

/// Forks; the child runs `f` and exits with its result. `f` runs in a child of a
/// multi-threaded process, so it must stick to async-signal-safe calls (no allocation,
/// no locks, no panics): plain syscalls and `Filter::load`.
fn fork_child(f: impl FnOnce() -> i32) -> Child {
    // SAFETY: the child only runs async-signal-safe code (see above) and then _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let code = f();
        // SAFETY: leaving the child without running the parent's destructors.
        unsafe { libc::_exit(code) }
    }
    Child { pid, reaped: false }
}

/// In the child, before loading: no core dumps from SIGSYS, and no_new_privs so that
/// loading works without CAP_SYS_ADMIN (what the runtime does too).
fn prepare_child() -> bool {
    // SAFETY: plain prctl calls with integer arguments.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) == 0
            && libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// syscall(nr, a0, a1) returning Ok(value) or Err(errno).
fn sys2(nr: libc::c_long, a0: u64, a1: u64) -> Result<libc::c_long, i32> {
    // SAFETY: only called with syscalls that take integer arguments or ignore them.
    let r = unsafe { libc::syscall(nr, a0, a1) };
    if r == -1 {
        Err(errno())
    } else {
        Ok(r)
    }
}

/// Runs `body` in a child with `filter` loaded; the child's exit code is the result.
fn run_filtered(filter: &Filter, body: impl FnOnce() -> i32) -> Outcome {
    fork_child(|| {
        if !prepare_child() {
            return PREPARE_FAILED;
        }
        if filter.load().is_err() {
            return LOAD_FAILED;
        }
        body()
    })
    .wait()
}

fn filter(json: &str) -> Filter {
    Filter::from_spec(&parse_profile(json.as_bytes()).unwrap()).unwrap()
}

#[test]
fn errno_action_returns_the_configured_errno() {
    let dir = tempfile::tempdir().unwrap();
    let target = std::ffi::CString::new(
        dir.path()
            .join("made")
            .into_os_string()
            .into_encoded_bytes(),
    )
    .unwrap();
    for (errno_ret, expected) in [
        ("", libc::EPERM),
        (r#","errnoRet":38"#, libc::ENOSYS),
        (r#","errnoRet":122"#, libc::EDQUOT),
    ] {
        let f = filter(&format!(
            r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"{errno_ret}}}]}}"#
        ));
        let outcome = run_filtered(&f, || {
            // SAFETY: `target` is a valid NUL-terminated path.
            if unsafe { libc::mkdir(target.as_ptr(), 0o755) } == 0 {
                0
            } else {
                errno()
            }
        });
        assert_eq!(outcome, Outcome::Exited(expected), "errnoRet {errno_ret:?}");
        assert!(!dir.path().join("made").exists());
    }
    // Without the filter the same call works: the errno above came from the filter.
    let outcome = fork_child(|| {
        // SAFETY: `target` is a valid NUL-terminated path.
        if unsafe { libc::mkdir(target.as_ptr(), 0o755) } == 0 {
            0
        } else {
            errno()
        }
    })
    .wait();
    assert_eq!(outcome, Outcome::Exited(0));
    assert!(dir.path().join("made").is_dir());
}

#[test]
fn kill_actions_kill_with_sigsys() {
    for action in [
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_KILL_PROCESS",
    ] {
        let f = filter(&format!(
            r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["getppid"],"action":"{action}"}}]}}"#
        ));
        let outcome = run_filtered(&f, || {
            let _ = sys2(libc::SYS_getppid, 0, 0);
            0
        });
        assert_eq!(outcome, Outcome::Signaled(libc::SIGSYS), "{action}");
    }
}

extern "C" fn exit_77(_: libc::c_int) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(77) }
}

#[test]
fn trap_action_raises_a_catchable_sigsys() {
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getppid"],"action":"SCMP_ACT_TRAP"}]}"#,
    );
    let outcome = run_filtered(&f, || {
        // SAFETY: installing an async-signal-safe handler in the child.
        unsafe { libc::signal(libc::SIGSYS, exit_77 as *const () as libc::sighandler_t) };
        let _ = sys2(libc::SYS_getppid, 0, 0);
        0
    });
    assert_eq!(outcome, Outcome::Exited(77));
}

#[test]
fn trace_action_without_a_tracer_fails_with_enosys() {
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getppid"],"action":"SCMP_ACT_TRACE","errnoRet":5}]}"#,
    );
    let outcome = run_filtered(&f, || match sys2(libc::SYS_getppid, 0, 0) {
        Ok(_) => 0,
        Err(e) => e,
    });
    assert_eq!(outcome, Outcome::Exited(libc::ENOSYS));
}

#[test]
fn log_action_lets_the_call_through() {
    let parent = std::process::id() as libc::c_long;
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getppid"],"action":"SCMP_ACT_LOG"}]}"#,
    );
    let outcome = run_filtered(&f, || match sys2(libc::SYS_getppid, 0, 0) {
        Ok(p) if p == parent => 0,
        Ok(_) => 1,
        Err(e) => e,
    });
    assert_eq!(outcome, Outcome::Exited(0));
}

#[test]
fn allow_rules_under_a_denying_default() {
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":13,"syscalls":[
            {"names":["exit_group","exit","getppid"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    let parent = std::process::id() as libc::c_long;
    let outcome = run_filtered(&f, || {
        if sys2(libc::SYS_getppid, 0, 0) != Ok(parent) {
            return 1;
        }
        match sys2(libc::SYS_getuid, 0, 0) {
            Ok(_) => 2,
            Err(e) => e,
        }
    });
    assert_eq!(outcome, Outcome::Exited(libc::EACCES));
}

#[test]
fn personality_query_allowed_other_values_denied() {
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["personality"],"action":"SCMP_ACT_ERRNO",
            "args":[{"index":0,"value":4294967295,"op":"SCMP_CMP_NE"}]}]}"#,
    );
    let outcome = run_filtered(&f, || {
        if sys2(libc::SYS_personality, 0xffff_ffff, 0).is_err() {
            return 1;
        }
        match sys2(libc::SYS_personality, 0x0008, 0) {
            Ok(_) => 2,
            Err(e) => e,
        }
    });
    assert_eq!(outcome, Outcome::Exited(libc::EPERM));
}

/// Each operator compares argument 0 of getppid (which ignores its arguments) with 4096;
/// the child reports, as a bit mask, which of five values were denied with EDOM.
#[test]
fn every_operator_matches_in_the_kernel() {
    const VALUES: [u64; 5] = [4095, 4096, 4097, 0x1_0000_1000, 0x3000];
    let cases = [
        ("SCMP_CMP_NE", "", 0b11101),
        ("SCMP_CMP_LT", "", 0b00001),
        ("SCMP_CMP_LE", "", 0b00011),
        ("SCMP_CMP_EQ", "", 0b00010),
        ("SCMP_CMP_GE", "", 0b11110),
        ("SCMP_CMP_GT", "", 0b11100),
        // value is the mask, valueTwo the expected result: (arg & 0xf000) == 0x1000, so
        // 0x3000 does not match (it would if mask and result were swapped).
        ("SCMP_CMP_MASKED_EQ", r#","valueTwo":4096"#, 0b01110),
    ];
    for (op, extra, expected) in cases {
        let value = if op == "SCMP_CMP_MASKED_EQ" {
            0xf000
        } else {
            4096
        };
        let f = filter(&format!(
            r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":33,
                "args":[{{"index":0,"value":{value},"op":"{op}"{extra}}}]}}]}}"#
        ));
        let outcome = run_filtered(&f, || {
            let mut mask = 0;
            for (bit, v) in VALUES.iter().enumerate() {
                match sys2(libc::SYS_getppid, *v, 0) {
                    Ok(_) => {}
                    Err(libc::EDOM) => mask |= 1 << bit,
                    Err(_) => return 100,
                }
            }
            mask
        });
        assert_eq!(outcome, Outcome::Exited(expected), "{op}");
    }
}

#[test]
fn args_are_anded_across_indexes_and_ored_within_one() {
    let and = filter(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":33,
            "args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":1,"value":2,"op":"SCMP_CMP_EQ"}]}]}"#,
    );
    let or = filter(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":33,
            "args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":0,"value":2,"op":"SCMP_CMP_EQ"}]}]}"#,
    );
    let probe = || {
        let mut mask = 0;
        for (bit, (a0, a1)) in [(1, 2), (1, 0), (2, 0), (0, 2)].iter().enumerate() {
            if sys2(libc::SYS_getppid, *a0, *a1) == Err(libc::EDOM) {
                mask |= 1 << bit;
            }
        }
        mask
    };
    assert_eq!(run_filtered(&and, probe), Outcome::Exited(0b0001));
    assert_eq!(run_filtered(&or, probe), Outcome::Exited(0b0111));
}

/// Sends `fd` over `sock` with SCM_RIGHTS, allocation-free (usable in the child).
fn send_fd(sock: &OwnedFd, fd: &OwnedFd) -> bool {
    let fds = [fd.as_fd()];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    control.push(SendAncillaryMessage::ScmRights(&fds))
        && rustix::net::sendmsg(
            sock,
            &[IoSlice::new(b"x")],
            &mut control,
            SendFlags::empty(),
        )
        .is_ok()
}

/// Receives one fd (and the bytes sent with it) from `sock`.
fn recv_fd(sock: impl AsFd) -> (Vec<u8>, OwnedFd) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let msg = rustix::net::recvmsg(
        &sock,
        &mut [IoSliceMut::new(&mut buf)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .unwrap();
    let mut received = None;
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = m {
            received = fds.next();
        }
    }
    buf.truncate(msg.bytes);
    (buf, received.expect("an fd in SCM_RIGHTS"))
}

/// Waits up to 10 s for `fd` to become readable.
fn wait_readable(fd: &OwnedFd) {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let r = unsafe { libc::poll(&mut pfd, 1, 10_000) };
    assert_eq!(r, 1, "no seccomp notification within 10 s");
}

#[test]
fn notify_round_trip() {
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/unused/in/this/test",
            "syscalls":[{"names":["getppid"],"action":"SCMP_ACT_NOTIFY"}]}"#,
    );
    assert!(f.needs_notify());
    let (parent_sock, child_sock) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    let child = fork_child(|| {
        if !prepare_child() {
            return PREPARE_FAILED;
        }
        let listener = match f.load() {
            Ok(Some(fd)) => fd,
            _ => return LOAD_FAILED,
        };
        if !send_fd(&child_sock, &listener) {
            return 3;
        }
        drop(listener);
        // Answered by the parent: first with a value, then with an error.
        if sys2(libc::SYS_getppid, 11, 0) != Ok(4242) {
            return 4;
        }
        match sys2(libc::SYS_getppid, 12, 0) {
            Err(libc::EDQUOT) => 0,
            _ => 5,
        }
    });
    drop(child_sock);

    let (_, listener) = recv_fd(&parent_sock);
    for (arg, val, error) in [(11u64, 4242i64, 0i32), (12, 0, -libc::EDQUOT)] {
        wait_readable(&listener);
        // SAFETY: an all-zero seccomp_notif is valid (and required) input to NOTIF_RECV.
        let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: `req` is a valid seccomp_notif the kernel fills in.
        let r = unsafe {
            libc::ioctl(
                listener.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_RECV,
                &mut req,
            )
        };
        assert_eq!(r, 0, "NOTIF_RECV: {}", std::io::Error::last_os_error());
        assert_eq!(req.pid as libc::pid_t, child.pid);
        assert_eq!(req.data.nr as libc::c_long, libc::SYS_getppid);
        assert_eq!(req.data.args[0], arg);
        let mut resp = libc::seccomp_notif_resp {
            id: req.id,
            val,
            error,
            flags: 0,
        };
        // SAFETY: `resp` is a valid seccomp_notif_resp for the request just received.
        let r = unsafe {
            libc::ioctl(
                listener.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SEND,
                &mut resp,
            )
        };
        assert_eq!(r, 0, "NOTIF_SEND: {}", std::io::Error::last_os_error());
    }
    assert_eq!(child.wait(), Outcome::Exited(0));
}

#[test]
fn send_listener_delivers_the_fd_and_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("agent.sock");
    let agent = UnixListener::bind(&sock_path).unwrap();

    // Any fd will do to check delivery; a file we can recognise by its inode.
    let file_path = dir.path().join("marker");
    std::fs::write(&file_path, b"marker").unwrap();
    let file = std::fs::File::open(&file_path).unwrap();

    let state: oci_spec::runtime::State = serde_json::from_str(
        r#"{"ociVersion":"1.2.0","id":"web","status":"creating","pid":4321,"bundle":"/srv/web"}"#,
    )
    .unwrap();
    let json = process_state_json(4321, Some("MKNOD=/dev/null"), &state).unwrap();
    let path = sock_path.to_str().unwrap();
    send_listener(&file, path, &json).unwrap();

    let (conn, _) = agent.accept().unwrap();
    let (mut got, fd) = recv_fd(&conn);
    let mut rest = Vec::new();
    (&conn).read_to_end(&mut rest).unwrap();
    got.extend_from_slice(&rest);
    assert_eq!(got, json);
    let value: serde_json::Value = serde_json::from_slice(&got).unwrap();
    assert_eq!(value["ociVersion"], "1.2.0");
    assert_eq!(value["fds"], serde_json::json!(["seccompFd"]));
    assert_eq!(value["pid"], 4321);
    assert_eq!(value["metadata"], "MKNOD=/dev/null");
    assert_eq!(value["state"]["id"], "web");
    assert_eq!(value["state"]["status"], "creating");

    let sent = rustix::fs::fstat(&file).unwrap();
    let received = rustix::fs::fstat(&fd).unwrap();
    assert_eq!(
        (sent.st_dev, sent.st_ino),
        (received.st_dev, received.st_ino)
    );
    let flags = rustix::io::fcntl_getfd(&fd).unwrap();
    assert!(flags.contains(rustix::io::FdFlags::CLOEXEC));

    // A state object that does not announce exactly the one fd is refused.
    let bad = br#"{"ociVersion":"1.2.0","fds":[],"pid":1,"state":{"ociVersion":"1.2.0","id":"x","status":"creating","bundle":"/"}}"#;
    let e = send_listener(&file, path, bad).unwrap_err().to_string();
    assert!(
        e.starts_with("container process state.fds: must be [\"seccompFd\"]"),
        "{e}"
    );

    // No agent listening: the error names the field and the path.
    let missing = dir.path().join("nobody.sock");
    let e = send_listener(&file, missing.to_str().unwrap(), &json)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("linux.seccomp.listenerPath") && e.contains("nobody.sock"),
        "{e}"
    );
}

fn run_shell_with(filter: &Filter, program: &str, args: &[&str]) -> std::process::Output {
    let filter = filter.clone();
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null());
    // SAFETY: the closure only makes prctl and seccomp syscalls (no allocation on the
    // success path), which is allowed between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            filter
                .load()
                .map(|_| ())
                .map_err(|e| std::io::Error::other(e.to_string()))
        });
    }
    cmd.output().unwrap()
}

#[test]
fn default_profile_runs_a_shell_workload() {
    let f = Filter::from_spec(&default_profile()).unwrap();
    let script =
        "ls / >/dev/null && cat /proc/self/status >/dev/null && x=$(echo sub) && echo ok $x";
    let out = run_shell_with(&f, "/bin/sh", &["-c", script]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok sub\n");

    if std::path::Path::new("/bin/busybox").exists() {
        let out = run_shell_with(
            &f,
            "/bin/busybox",
            &[
                "sh",
                "-c",
                &format!("busybox {script}; busybox ps >/dev/null"),
            ],
        );
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "ok sub\n");
    }
}

#[test]
fn default_profile_denies_dangerous_syscalls() {
    let f = Filter::from_spec(&default_profile()).unwrap();
    let outcome = run_filtered(&f, || {
        let eperm = Err(libc::EPERM);
        let checks: [(libc::c_long, u64, u64, Result<(), i32>); 12] = [
            (libc::SYS_keyctl, 0, 0, eperm),
            (libc::SYS_add_key, 0, 0, eperm),
            (libc::SYS_kexec_load, 0, 0, eperm),
            (libc::SYS_init_module, 0, 0, eperm),
            (libc::SYS_bpf, 0, 0, eperm),
            (libc::SYS_userfaultfd, 0, 0, eperm),
            (libc::SYS_ptrace, libc::PTRACE_TRACEME as u64, 0, eperm),
            (libc::SYS_unshare, libc::CLONE_NEWUSER as u64, 0, eperm),
            (libc::SYS_unshare, libc::CLONE_NEWNS as u64, 0, eperm),
            (libc::SYS_clone3, 0, 0, Err(libc::ENOSYS)),
            (libc::SYS_personality, 0x0040000, 0, eperm),
            (libc::SYS_socket, 40, libc::SOCK_STREAM as u64, eperm),
        ];
        for (i, (nr, a0, a1, expected)) in checks.iter().enumerate() {
            if sys2(*nr, *a0, *a1).map(|_| ()) != *expected {
                return 10 + i as i32;
            }
        }
        // What stays allowed.
        if sys2(libc::SYS_personality, 0xffff_ffff, 0).is_err() {
            return 30;
        }
        if sys2(libc::SYS_unshare, libc::CLONE_FILES as u64, 0).is_err() {
            return 31;
        }
        match sys2(
            libc::SYS_socket,
            libc::AF_UNIX as u64,
            libc::SOCK_STREAM as u64,
        ) {
            Ok(_) => 0,
            Err(_) => 32,
        }
    });
    assert_eq!(outcome, Outcome::Exited(0));
}

#[test]
fn load_without_no_new_privs_or_cap_sys_admin_is_refused() {
    // Only meaningful when the test runs without CAP_SYS_ADMIN; as root, drop it first.
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getppid"],"action":"SCMP_ACT_ERRNO"}]}"#,
    );
    let outcome = fork_child(|| {
        let mut caps = caps_header_data();
        // SAFETY: capget/capset with valid header and data arrays.
        unsafe {
            if libc::syscall(libc::SYS_capget, &mut caps.0, caps.1.as_mut_ptr()) != 0 {
                return PREPARE_FAILED;
            }
            caps.1[0].effective &= !(1 << 21); // CAP_SYS_ADMIN
            if libc::syscall(libc::SYS_capset, &mut caps.0, caps.1.as_ptr()) != 0 {
                return PREPARE_FAILED;
            }
        }
        match f.load() {
            Ok(_) => 0,
            Err(cella_seccomp::Error::Load { errno }) => errno,
            Err(_) => 1,
        }
    })
    .wait();
    assert_eq!(outcome, Outcome::Exited(libc::EACCES));
    let msg = cella_seccomp::Error::Load {
        errno: libc::EACCES,
    }
    .to_string();
    assert!(
        msg.contains("no_new_privs") && msg.contains("CAP_SYS_ADMIN"),
        "{msg}"
    );
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

fn caps_header_data() -> (CapHeader, [CapData; 2]) {
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    (
        CapHeader {
            version: LINUX_CAPABILITY_VERSION_3,
            pid: 0,
        },
        [CapData {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        }; 2],
    )
}
