//! The container's terminal: a pty allocated inside the container's own devpts, whose master
//! is sent over the console socket (SCM_RIGHTS) the way runc does, and whose slave becomes the
//! process's controlling terminal and /dev/console.

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::OFlags;
use rustix::net::{sendmsg, SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use rustix::pty::OpenptFlags;

use crate::error::{Context, Result};
use crate::resolve;

/// A pty pair: master and slave.
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

/// Open a new pty from the container's /dev/pts/ptmx (or /dev/ptmx), resolved in `root`.
pub fn open_in_container(root: BorrowedFd<'_>, size: Option<(u16, u16)>) -> Result<Pty> {
    let flags = OFlags::RDWR | OFlags::NOCTTY;
    let master = resolve::open_in_root(root, Path::new("/dev/pts/ptmx"), flags)
        .or_else(|_| resolve::open_in_root(root, Path::new("/dev/ptmx"), flags))
        .ctx(|| "process.terminal: opening /dev/pts/ptmx in the container (is devpts mounted at /dev/pts?)".to_string())?;
    rustix::pty::unlockpt(&master).ctx(|| "process.terminal: unlockpt".to_string())?;
    // TIOCGPTPEER opens the slave from the master itself: no path lookup an attacker could redirect.
    let slave = rustix::pty::ioctl_tiocgptpeer(&master, OpenptFlags::RDWR | OpenptFlags::NOCTTY)
        .ctx(|| "process.terminal: opening the pty slave".to_string())?;
    if let Some((h, w)) = size {
        let ws = rustix::termios::Winsize {
            ws_row: h,
            ws_col: w,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(&master, ws)
            .ctx(|| "process.consoleSize: setting the window size".to_string())?;
    }
    Ok(Pty { master, slave })
}

/// Send `master` over the connected console socket, with the pty's name as the payload.
pub fn send_master(socket: BorrowedFd<'_>, master: BorrowedFd<'_>) -> Result<()> {
    let name = b"/dev/ptmx";
    let fds = [master];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut anc = SendAncillaryBuffer::new(&mut space);
    anc.push(SendAncillaryMessage::ScmRights(&fds));
    sendmsg(
        socket,
        &[std::io::IoSlice::new(name)],
        &mut anc,
        SendFlags::NOSIGNAL,
    )
    .ctx(|| "sending the pty master over --console-socket".to_string())?;
    Ok(())
}

/// Make `slave` the controlling terminal and stdio of the calling process.
pub fn become_controlling(slave: &OwnedFd) -> Result<()> {
    rustix::process::setsid().ctx(|| "setsid for the container's terminal".to_string())?;
    rustix::process::ioctl_tiocsctty(slave)
        .ctx(|| "making the pty the controlling terminal".to_string())?;
    for target in 0..3 {
        // SAFETY: dup2 onto 0..2 replaces the standard streams; no Rust object owns them.
        if unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&slave.as_fd()), target) } < 0 {
            return Err(std::io::Error::last_os_error())
                .ctx(|| format!("dup2 of the pty onto fd {target}"));
        }
    }
    Ok(())
}
