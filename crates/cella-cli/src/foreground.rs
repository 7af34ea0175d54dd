//! Running a container in the foreground: forward signals to it, proxy its terminal, wait
//! for it, and turn its end into an exit code (the code, or 128+N for signal N).

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use anyhow::{anyhow, Context};
use rustix::event::{poll, PollFd, PollFlags};
use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};

const FORWARDED: [i32; 7] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
];

/// Signals blocked and read through a signalfd, so none is lost between create and wait.
pub struct SignalFd {
    fd: OwnedFd,
    old: libc::sigset_t,
}

impl SignalFd {
    /// Block the forwarded signals and open a signalfd for them.
    pub fn new() -> anyhow::Result<SignalFd> {
        // SAFETY: sigset operations on local, initialised sets; signalfd returns a new fd
        // that we take ownership of.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for s in FORWARDED {
                libc::sigaddset(&mut set, s);
            }
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigprocmask(libc::SIG_BLOCK, &set, &mut old);
            let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
            if fd < 0 {
                return Err(std::io::Error::last_os_error()).context("signalfd");
            }
            Ok(SignalFd {
                fd: OwnedFd::from_raw_fd(fd),
                old,
            })
        }
    }

    fn read(&self) -> Option<i32> {
        let mut info = MaybeUninit::<libc::signalfd_siginfo>::uninit();
        // SAFETY: reading one signalfd_siginfo into properly sized storage.
        let n = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                info.as_mut_ptr().cast(),
                std::mem::size_of::<libc::signalfd_siginfo>(),
            )
        };
        if n as usize != std::mem::size_of::<libc::signalfd_siginfo>() {
            return None;
        }
        // SAFETY: the kernel filled the whole struct.
        Some(unsafe { info.assume_init() }.ssi_signo as i32)
    }
}

impl Drop for SignalFd {
    fn drop(&mut self) {
        // SAFETY: restoring the mask saved in new().
        unsafe { libc::sigprocmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut()) };
    }
}

/// A connected pair (ours, theirs) standing in for --console-socket when we proxy the
/// container's terminal ourselves: `theirs` goes to the init, the pty master comes back on
/// `ours`.
pub fn console_pair() -> anyhow::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::net::socketpair(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::STREAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )?)
}

/// Receive the pty master the init sends over our end of the console socketpair.
pub fn recv_pty_master(sock: BorrowedFd<'_>) -> anyhow::Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut anc = RecvAncillaryBuffer::new(&mut space);
    recvmsg(
        sock,
        &mut [std::io::IoSliceMut::new(&mut buf)],
        &mut anc,
        RecvFlags::CMSG_CLOEXEC,
    )
    .context("receiving the container's terminal")?;
    for m in anc.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = m {
            if let Some(fd) = fds.next() {
                return Ok(fd);
            }
        }
    }
    Err(anyhow!("the container init sent no terminal"))
}

/// Puts our terminal in raw mode for the life of the guard.
struct RawMode {
    saved: Option<rustix::termios::Termios>,
}

impl RawMode {
    fn enter() -> RawMode {
        let stdin = rustix::stdio::stdin();
        let Ok(saved) = rustix::termios::tcgetattr(stdin) else {
            return RawMode { saved: None };
        };
        let mut raw = saved.clone();
        raw.make_raw();
        let _ = rustix::termios::tcsetattr(stdin, rustix::termios::OptionalActions::Now, &raw);
        RawMode { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = rustix::termios::tcsetattr(
                rustix::stdio::stdin(),
                rustix::termios::OptionalActions::Now,
                t,
            );
        }
    }
}

fn copy_winsize(master: BorrowedFd<'_>) {
    if let Ok(ws) = rustix::termios::tcgetwinsize(rustix::stdio::stdin()) {
        let _ = rustix::termios::tcsetwinsize(master, ws);
    }
}

fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> bool {
    while !data.is_empty() {
        match rustix::io::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => continue,
            Err(_) => return false,
        }
    }
    true
}

/// Wait for the container's init `pid`, forwarding signals and proxying `pty` (with our
/// stdin when `interactive`). Returns the exit code to exit with.
pub fn wait(
    pid: i32,
    pidfd: BorrowedFd<'_>,
    sigfd: &SignalFd,
    pty: Option<OwnedFd>,
    interactive: bool,
) -> anyhow::Result<i32> {
    let _raw = match (&pty, rustix::termios::isatty(rustix::stdio::stdin())) {
        (Some(m), true) => {
            copy_winsize(m.as_fd());
            Some(RawMode::enter())
        }
        _ => None,
    };
    let mut stdin_open = interactive && pty.is_some();
    let mut pty_open = pty.is_some();
    let mut exited = false;
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        if exited && !pty_open {
            break;
        }
        let stdin = rustix::stdio::stdin();
        let mut fds = vec![
            PollFd::new(&sigfd.fd, PollFlags::IN),
            PollFd::new(&pidfd, PollFlags::IN),
        ];
        let pty_idx = pty.as_ref().filter(|_| pty_open).map(|m| {
            fds.push(PollFd::new(m, PollFlags::IN));
            fds.len() - 1
        });
        let in_idx = if stdin_open && !exited {
            fds.push(PollFd::from_borrowed_fd(stdin, PollFlags::IN));
            Some(fds.len() - 1)
        } else {
            None
        };
        let timeout = exited.then_some(rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 200_000_000,
        });
        match poll(&mut fds, timeout.as_ref()) {
            Ok(0) if exited => break,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e).context("poll"),
        }
        let rev: Vec<PollFlags> = fds.iter().map(|f| f.revents()).collect();
        drop(fds);
        if !rev[0].is_empty() {
            while let Some(sig) = sigfd.read() {
                if sig == libc::SIGWINCH {
                    if let Some(m) = &pty {
                        copy_winsize(m.as_fd());
                    }
                } else {
                    // SAFETY: pidfd_send_signal on our child's pidfd with no siginfo.
                    unsafe {
                        libc::syscall(
                            libc::SYS_pidfd_send_signal,
                            pidfd.as_raw_fd(),
                            sig,
                            std::ptr::null::<libc::siginfo_t>(),
                            0,
                        )
                    };
                }
            }
        }
        if let Some(i) = pty_idx {
            if !rev[i].is_empty() {
                match rustix::io::read(pty.as_ref().expect("pty"), &mut buf) {
                    Ok(n) if n > 0 => {
                        write_all(rustix::stdio::stdout(), &buf[..n]);
                    }
                    Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => {}
                    _ => pty_open = false,
                }
            }
        }
        if let Some(i) = in_idx {
            if !rev[i].is_empty() {
                match rustix::io::read(rustix::stdio::stdin(), &mut buf) {
                    Ok(n) if n > 0 => {
                        write_all(pty.as_ref().expect("pty").as_fd(), &buf[..n]);
                    }
                    Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => {}
                    _ => stdin_open = false,
                }
            }
        }
        if !rev[1].is_empty() && !exited {
            exited = true;
            if pty.is_none() {
                break;
            }
        }
    }
    let (_, status) = rustix::process::waitpid(
        rustix::process::Pid::from_raw(pid),
        rustix::process::WaitOptions::empty(),
    )
    .context("waiting for the container")?
    .ok_or_else(|| anyhow!("no status for the container"))?;
    Ok(if let Some(c) = status.exit_status() {
        c
    } else if let Some(s) = status.terminating_signal() {
        128 + s
    } else {
        1
    })
}
