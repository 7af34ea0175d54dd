//! Handing the `SCMP_ACT_NOTIFY` listener fd to the seccomp agent at `listenerPath`.

use std::io::{IoSlice, Write};
use std::mem::MaybeUninit;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

use oci_spec::runtime::{ContainerProcessState, ContainerProcessStateBuilder, State};
use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};

use crate::Error;

/// The name of the listener fd in the `fds` array of the container process state.
pub const SECCOMP_FD_NAME: &str = oci_spec::runtime::SECCOMP_FD_NAME;

/// Builds the OCI "container process state" JSON sent to a seccomp agent with the
/// listener fd: `{"ociVersion", "fds": ["seccompFd"], "pid", "metadata", "state"}`.
///
/// `pid` is the container process as the runtime sees it, `metadata` is
/// `linux.seccomp.listenerMetadata`, `state` the container's state (as `cella state`
/// prints it). `ociVersion` is taken from `state`, or this crate's spec version when empty.
pub fn process_state_json(
    pid: i32,
    metadata: Option<&str>,
    state: &State,
) -> Result<Vec<u8>, Error> {
    let version = if state.version().is_empty() {
        oci_spec::runtime::VERSION.to_string()
    } else {
        state.version().clone()
    };
    let mut builder = ContainerProcessStateBuilder::default()
        .version(version)
        .fds(vec![SECCOMP_FD_NAME.to_string()])
        .pid(pid)
        .state(state.clone());
    if let Some(metadata) = metadata {
        builder = builder.metadata(metadata.to_string());
    }
    let process_state = builder
        .build()
        .map_err(|e| Error::invalid("container process state", format!("cannot build it: {e}")))?;
    serde_json::to_vec(&process_state).map_err(|e| {
        Error::invalid(
            "container process state",
            format!("cannot serialise it: {e}"),
        )
    })
}

/// Sends the seccomp listener `fd` and the container process state to the seccomp agent
/// listening on the unix stream socket `listener_path` (`linux.seccomp.listenerPath`).
///
/// `state_json` must be the OCI container process state object (see
/// [`process_state_json`]) whose `fds` is exactly `["seccompFd"]`: the fd travels as the
/// only `SCM_RIGHTS` entry of the first message. The JSON follows on the same stream and
/// the connection is closed at the end, which is how the agent knows it has it all.
pub fn send_listener(fd: impl AsFd, listener_path: &str, state_json: &[u8]) -> Result<(), Error> {
    let process_state: ContainerProcessState = serde_json::from_slice(state_json).map_err(|e| {
        Error::invalid(
            "container process state",
            format!("not a valid OCI container process state JSON object: {e}"),
        )
    })?;
    if process_state.fds() != &[SECCOMP_FD_NAME.to_string()] {
        return Err(Error::invalid(
            "container process state.fds",
            format!(
                "must be [{SECCOMP_FD_NAME:?}] since exactly one fd (the seccomp listener) is \
                 sent, not {:?}",
                process_state.fds()
            ),
        ));
    }

    let what = |action: &str| {
        format!("{action} the seccomp agent at linux.seccomp.listenerPath {listener_path:?}")
    };
    let mut stream = UnixStream::connect(listener_path).map_err(|e| {
        Error::io(
            what("connecting to"),
            std::io::Error::new(
                e.kind(),
                format!("{e} (is the seccomp agent running and listening there?)"),
            ),
        )
    })?;

    let fds = [fd.as_fd()];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(Error::io(
            what("sending the listener fd to"),
            std::io::Error::other("the control message does not fit its buffer"),
        ));
    }
    let sent = loop {
        match rustix::net::sendmsg(
            &stream,
            &[IoSlice::new(state_json)],
            &mut control,
            SendFlags::NOSIGNAL,
        ) {
            Ok(n) => break n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Error::io(what("sending the listener fd to"), e)),
        }
    };
    stream
        .write_all(&state_json[sent..])
        .map_err(|e| Error::io(what("sending the container state to"), e))?;
    Ok(())
}
