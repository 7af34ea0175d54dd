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
    /// parent → child: the child is in its cgroup and its id maps are written.
    Go,
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
        let data = serde_json::to_vec(m).expect("messages serialise");
        let fds;
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut anc = SendAncillaryBuffer::new(&mut space);
        if let Some(fd) = fd {
            fds = [fd];
            anc.push(SendAncillaryMessage::ScmRights(&fds));
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
        let mut buf = vec![0u8; 65536];
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
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
        let mut fd = None;
        for m in anc.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = m {
                fd = fds.into_iter().next();
            }
        }
        let msg = serde_json::from_slice(&buf[..r.bytes])
            .map_err(|e| Error::Init(format!("garbled message from the container init: {e}")))?;
        Ok(Some((msg, fd)))
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
