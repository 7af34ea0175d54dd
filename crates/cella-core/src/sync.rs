//! The channel between the runtime (parent) and the container's init (child) during create:
//! a SOCK_SEQPACKET socketpair carrying small JSON messages, and fds where needed.

use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};

use rustix::net::{
    recvmsg, sendmsg, socketpair, AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage,
    RecvFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};
use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};

/// Messages on the channel.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Msg {
    /// parent → child: the id maps are written (and hooks, cgroups may follow).
    Go,
    /// parent → child: the v1 cgroup directories exist now (made while the child set up):
    /// their `tasks` files come attached, in order, and this is what to mount at
    /// /sys/fs/cgroup. Only when the runtime split the cgroup creation around clone.
    Cgroups(Vec<crate::rootfs::CgroupMount>),
    /// child → parent: run the prestart and createRuntime hooks now.
    RunHooks,
    /// parent → child: hooks done.
    HooksDone,
    /// child → parent: the seccomp notify listener fd follows.
    SeccompFd,
    /// child → parent: set up and waiting to be started.
    Ready,
    /// parent → child: the state is recorded; stop watching the parent and wait for start.
    Commit,
    /// child → parent: Commit seen; the init no longer dies with the runtime.
    Committed,
    /// parent → child (run mode): start now, no fifo.
    Start,
    /// child → parent: something failed; the message says what.
    Error(String),
}

/// One end of the channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
    /// `Go` arrives whenever the runtime is done with the cgroup and id maps, which may be
    /// while the init waits for something else: it is remembered here.
    go_seen: std::cell::Cell<bool>,
}

/// The most fds one message carries (a v1 host has about a dozen hierarchies).
pub const MAX_FDS: usize = 32;

/// A connected pair (parent end, child end). Both ends are close-on-exec.
pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .ctx(|| "creating the runtime/init socketpair".to_string())?;
    Ok((
        Channel {
            fd: a,
            go_seen: Default::default(),
        },
        Channel {
            fd: b,
            go_seen: Default::default(),
        },
    ))
}

impl Channel {
    /// Send a message.
    pub fn send(&self, m: &Msg) -> Result<()> {
        self.send_with_fd(m, None)
    }

    /// Send a message with an fd attached.
    pub fn send_with_fd(&self, m: &Msg, fd: Option<std::os::fd::BorrowedFd<'_>>) -> Result<()> {
        match fd {
            Some(fd) => self.send_with_fds(m, &[fd]),
            None => self.send_with_fds(m, &[]),
        }
    }

    /// Send a message with fds attached (at most [`MAX_FDS`]).
    pub fn send_with_fds(&self, m: &Msg, fds: &[std::os::fd::BorrowedFd<'_>]) -> Result<()> {
        if fds.len() > MAX_FDS {
            return Err(Error::Init(format!(
                "{} fds to pass to the container init; at most {MAX_FDS} fit one message",
                fds.len()
            )));
        }
        let data = serde_json::to_vec(m).expect("messages serialise");
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut anc = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() {
            anc.push(SendAncillaryMessage::ScmRights(fds));
        }
        sendmsg(
            &self.fd,
            &[std::io::IoSlice::new(&data)],
            &mut anc,
            SendFlags::NOSIGNAL,
        )
        .ctx(|| "sending to the container init".to_string())?;
        Ok(())
    }

    /// Receive a message; `Ok(None)` when the other end closed (exited or exec'd).
    pub fn recv(&self) -> Result<Option<(Msg, Option<OwnedFd>)>> {
        Ok(self.recv_fds()?.map(|(m, fds)| (m, fds.into_iter().next())))
    }

    /// Receive a message and every fd attached to it.
    pub fn recv_fds(&self) -> Result<Option<(Msg, Vec<OwnedFd>)>> {
        let mut buf = vec![0u8; 65536];
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut anc = RecvAncillaryBuffer::new(&mut space);
        let r = loop {
            match recvmsg(
                &self.fd,
                &mut [IoSliceMut::new(&mut buf)],
                &mut anc,
                RecvFlags::CMSG_CLOEXEC,
            ) {
                Err(rustix::io::Errno::INTR) => continue,
                r => break r,
            }
        }
        .ctx(|| "reading from the container init".to_string())?;
        if r.bytes == 0 {
            return Ok(None);
        }
        let mut fds = Vec::new();
        for m in anc.drain() {
            if let RecvAncillaryMessage::ScmRights(got) = m {
                fds.extend(got);
            }
        }
        let msg = serde_json::from_slice(&buf[..r.bytes])
            .map_err(|e| Error::Init(format!("garbled message from the container init: {e}")))?;
        Ok(Some((msg, fds)))
    }

    /// In the init: wait for the runtime's `Cgroups` message (remembering a `Go` that comes
    /// first), with its `tasks` fds.
    pub fn expect_cgroups(&self) -> Result<(Vec<crate::rootfs::CgroupMount>, Vec<OwnedFd>)> {
        loop {
            match self.recv_fds()? {
                Some((Msg::Go, _)) => self.go_seen.set(true),
                Some((Msg::Cgroups(mounts), fds)) => return Ok((mounts, fds)),
                Some((Msg::Error(e), _)) => return Err(Error::Init(e)),
                Some((m, _)) => {
                    return Err(Error::Init(format!(
                        "protocol error: expected the cgroups, got {m:?}"
                    )))
                }
                None => {
                    return Err(Error::Init(
                        "the other side closed the channel while waiting for the cgroups".into(),
                    ))
                }
            }
        }
    }

    /// Receive and require `want`; an `Error` message becomes an error.
    pub fn expect(&self, want: Msg) -> Result<()> {
        if want == Msg::Go && self.go_seen.get() {
            return Ok(());
        }
        match self.recv()? {
            Some((Msg::Go, _)) if want != Msg::Go => {
                self.go_seen.set(true);
                self.expect(want)
            }
            Some((m, _)) if m == want => Ok(()),
            Some((Msg::Error(e), _)) => Err(Error::Init(e)),
            Some((m, _)) => Err(Error::Init(format!(
                "protocol error: expected {want:?}, got {m:?}"
            ))),
            None => Err(Error::Init(format!(
                "the other side closed the channel while waiting for {want:?}"
            ))),
        }
    }

    /// Report a fatal error to the other side and wait until it has gone (reads and drops
    /// anything it still sends). Exiting with unread messages queued would make the other
    /// side's read fail with ECONNRESET instead of returning our error.
    pub fn report_and_linger(&self, message: String) -> Result<()> {
        self.send(&Msg::Error(message))?;
        while let Ok(Some(_)) = self.recv() {}
        Ok(())
    }

    /// The raw fd (for poll).
    pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
