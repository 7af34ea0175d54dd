//! process.terminal with --console-socket: the runtime sends the pty master over a unix
//! socket (SCM_RIGHTS), and the container's stdio is the pty's slave.

mod common;

use common::*;
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use serde_json::json;
use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::Instant;

/// Listens on a console socket in the test's temp dir; `receive` yields the first fd sent.
struct ConsoleSocket {
    path: PathBuf,
    thread: JoinHandle<std::io::Result<OwnedFd>>,
}

impl ConsoleSocket {
    fn new(env: &Env) -> ConsoleSocket {
        let path = env.tmp.join("console.sock");
        let listener = UnixListener::bind(&path).expect("bind console socket");
        let thread = std::thread::spawn(move || -> std::io::Result<OwnedFd> {
            let (conn, _) = listener.accept()?;
            let mut data = [0u8; 256];
            let mut iov = [IoSliceMut::new(&mut data)];
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
            let mut cmsg = RecvAncillaryBuffer::new(&mut space);
            recvmsg(&conn, &mut iov, &mut cmsg, RecvFlags::CMSG_CLOEXEC)?;
            let mut fds: Vec<OwnedFd> = Vec::new();
            for msg in cmsg.drain() {
                if let RecvAncillaryMessage::ScmRights(rights) = msg {
                    fds.extend(rights);
                }
            }
            let n = fds.len();
            fds.into_iter().next().filter(|_| n == 1).ok_or_else(|| {
                std::io::Error::other(format!("expected exactly one fd over SCM_RIGHTS, got {n}"))
            })
        });
        ConsoleSocket { path, thread }
    }

    fn receive(self) -> OwnedFd {
        self.thread
            .join()
            .expect("console socket thread")
            .expect("receive the pty master")
    }
}

/// Reads the pty master until the slave side is closed by everyone (EIO) or `TIMEOUT`.
fn read_all(master: &OwnedFd) -> String {
    let mut out = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    loop {
        assert!(
            Instant::now() < deadline,
            "console output never ended: {:?}",
            String::from_utf8_lossy(&out)
        );
        let mut fds = [PollFd::new(master, PollFlags::IN)];
        let ts = Timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        if poll(&mut fds, Some(&ts)).expect("poll") == 0 {
            continue;
        }
        let mut buf = [0u8; 4096];
        match rustix::io::read(master, &mut buf) {
            Ok(0) | Err(rustix::io::Errno::IO) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => {}
            Err(e) => panic!("read pty master: {e}"),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Creates and starts `b` with a terminal and a console socket; returns the pty master.
fn start_with_console(env: &Env, b: &mut Bundle) -> OwnedFd {
    b.config_mut()["process"]["terminal"] = json!(true);
    let sock = ConsoleSocket::new(env);
    env.create_with(b, &["--console-socket", sock.path.to_str().unwrap()])
        .ok();
    let master = sock.receive();
    env.start(&b.id).ok();
    master
}

#[test]
fn console_socket_receives_the_pty_master() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.sh("tty; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-stdio-is-tty");
    let master = start_with_console(&env, &mut b);
    let out = read_all(&master);
    assert_eq!(out, "/dev/pts/0\r\nall-stdio-is-tty\r\n");
    env.wait_status(&b.id, "stopped");
}

#[test]
fn console_size_is_applied() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.config_mut()["process"]["consoleSize"] = json!({"height": 31, "width": 101});
    b.args(&["stty", "size"]);
    let master = start_with_console(&env, &mut b);
    assert_eq!(read_all(&master), "31 101\r\n");
}

#[test]
fn console_input_reaches_the_process() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.sh("stty -echo; echo ready; read line; echo \"got:$line\"");
    let master = start_with_console(&env, &mut b);
    // Wait for "ready" so the line is not echoed before echo is off.
    let mut seen = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    while !String::from_utf8_lossy(&seen).contains("ready") {
        assert!(Instant::now() < deadline, "no ready: {seen:?}");
        let mut buf = [0u8; 256];
        let n = rustix::io::read(&master, &mut buf).expect("read");
        seen.extend_from_slice(&buf[..n]);
    }
    rustix::io::write(&master, b"hello there\n").expect("write to pty");
    let rest = read_all(&master);
    assert!(rest.contains("got:hello there\r\n"), "{rest:?}");
}

#[test]
fn terminal_without_console_socket_is_rejected_by_create() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.config_mut()["process"]["terminal"] = json!(true);
    env.create(&b).failed();
    env.rt(&["state", &b.id]).failed();
    env.assert_no_leaks(&b);
}

#[test]
fn console_socket_that_does_not_exist_fails_create() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.config_mut()["process"]["terminal"] = json!(true);
    let missing = env.tmp.join("no-such.sock");
    let out = env.create_with(&b, &["--console-socket", missing.to_str().unwrap()]);
    out.failed();
    env.assert_no_leaks(&b);
    if !cella_only("the error naming the socket path is cella's wording") {
        out.stderr_mentions(&[missing.to_str().unwrap()]);
    }
}

#[test]
fn pty_master_is_a_terminal_fd() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.args(&["true"]);
    let master = start_with_console(&env, &mut b);
    assert!(
        rustix::termios::isatty(master.as_fd()),
        "the fd received is not a tty"
    );
    read_all(&master);
}

/// The image's /dev/console is an absolute symlink to a host file and the image's own /dev is
/// used (no tmpfs on /dev): the pty must be bound inside the rootfs, never onto the host file
/// (CVE-2025-52565 class).
///
/// Defense: the init binds the pty onto an fd from `resolve::mkdir_all_open` (openat2
/// RESOLVE_IN_ROOT). Switch it off by making `resolve::open_in_root` use
/// `ResolveFlags::empty()`: the canary becomes a mount point in the init's mount namespace
/// (the createRuntime hook below records it) and the container's /dev/console is not the pty.
#[test]
fn console_symlink_in_image_cannot_reach_the_host() {
    let Some(env) = Env::new() else { return };
    let canary = env.scratch("console-canary").join("console");
    std::fs::write(&canary, "canary").unwrap();
    let mut b = env.bundle();
    b.config_mut()["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["destination"] != "/dev");
    let dev = b.rootfs().join("dev");
    std::fs::create_dir_all(&dev).unwrap();
    let _ = std::fs::remove_file(dev.join("console"));
    std::os::unix::fs::symlink(&canary, dev.join("console")).unwrap();
    // The hook runs after the pty is bound: it copies the init's mount table for the check.
    let seen = env.tmp.join("init-mountinfo");
    b.config_mut()["hooks"] = json!({"createRuntime": [{
        "path": "/bin/sh",
        "args": ["sh", "-c", format!(
            "pid=$(sed -n 's/.*\"pid\": *\\([0-9]*\\).*/\\1/p'); cat /proc/$pid/mountinfo > {}",
            seen.display()
        )]
    }]});
    b.sh("ls -l /dev/console; tty");
    let master = start_with_console(&env, &mut b);
    let out = read_all(&master);
    assert_eq!(std::fs::read_to_string(&canary).unwrap(), "canary");
    assert!(
        mounts_under(canary.parent().unwrap()).is_empty(),
        "a mount on the host canary"
    );
    let init_mounts = std::fs::read_to_string(&seen).expect("the hook saw the init's mounts");
    assert!(
        !init_mounts.contains(canary.to_str().unwrap()),
        "the pty was bound onto the host canary in the init's mount namespace:\n{init_mounts}"
    );
    assert!(
        out.contains("/dev/pts/"),
        "the container's terminal is its pty: {out}"
    );
    env.rt(&["delete", "--force", &b.id]).ok();
    env.assert_no_leaks(&b);
}
