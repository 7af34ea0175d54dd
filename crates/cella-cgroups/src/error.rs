//! Error type of the crate. Every variant names the file, field or value involved.

use std::io;
use std::path::PathBuf;

/// Errors from cgroup detection, path resolution and the drivers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading a cgroup (or /proc) file failed.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// Writing a value to a cgroup file failed.
    #[error("writing {value:?} to {path}: {source}{hint}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The value that was written.
        value: String,
        /// The OS error.
        #[source]
        source: io::Error,
        /// Extra advice, starting with "; " when not empty.
        hint: String,
    },

    /// The kernel accepted a write but the file reads back something else,
    /// so the requested limit is not in force.
    #[error("{field}: wrote {value:?} to {path} but it reads back {read_back:?}; {reason}")]
    NotHonoured {
        /// The spec field.
        field: String,
        /// The file.
        path: PathBuf,
        /// Value written.
        value: String,
        /// Value read back.
        read_back: String,
        /// Why this probably happened.
        reason: String,
    },

    /// Creating a cgroup directory failed.
    #[error("creating cgroup directory {path}: {source}")]
    Mkdir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// Removing a cgroup directory failed.
    #[error("removing cgroup directory {path}: {source}{hint}")]
    Rmdir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
        /// Extra advice, starting with "; " when not empty.
        hint: String,
    },

    /// Opening a file or directory failed.
    #[error("opening {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// A cgroup or /proc file had content this crate cannot parse.
    #[error("parsing {path}: unexpected content {content:?}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The offending content (a line or the whole file).
        content: String,
        /// What was expected.
        reason: String,
    },

    /// A resource field that this host (or this cgroup version) cannot honour.
    #[error("{field} is not supported {reason}")]
    Unsupported {
        /// The spec field, e.g. `linux.resources.memory.kernel`.
        field: String,
        /// Why, starting with a preposition, e.g. "on cgroup v2 (...)".
        reason: String,
    },

    /// A resource field has a value that cannot be applied.
    #[error("invalid value {value:?} for {field}: {reason}")]
    InvalidValue {
        /// The spec field.
        field: String,
        /// The value as given.
        value: String,
        /// What is wrong and what to do.
        reason: String,
    },

    /// A field needs a controller that is not mounted or not enabled.
    #[error("{field} needs the {controller:?} cgroup controller, but {detail}")]
    ControllerMissing {
        /// The spec field.
        field: String,
        /// The controller name.
        controller: String,
        /// Where it was looked for.
        detail: String,
    },

    /// `linux.cgroupsPath` is not usable.
    #[error("invalid linux.cgroupsPath {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// What is wrong.
        reason: String,
    },

    /// `linux.cgroupsPath` is in the systemd `slice:prefix:name` form.
    #[error(
        "linux.cgroupsPath {path:?} is in the systemd form \"slice:prefix:name\", but the systemd \
         cgroup driver is not available in cella (no systemd on this host or --systemd-cgroup is \
         not supported); use a cgroupfs path such as \"/cella/<id>\" instead"
    )]
    SystemdUnavailable {
        /// The path as given.
        path: String,
    },

    /// No usable cgroup filesystem was found.
    #[error("no cgroup filesystem is mounted according to {path}; mount cgroup2 on /sys/fs/cgroup (or the v1 controllers) and retry")]
    NoCgroupMounts {
        /// The mountinfo file that was read.
        path: PathBuf,
    },

    /// The layout requested does not match the mounts found.
    #[error("cgroup layout {layout:?} was requested but {detail}")]
    LayoutMismatch {
        /// The layout asked for.
        layout: crate::Layout,
        /// What was found instead.
        detail: String,
    },

    /// Sending a signal to a process of the cgroup failed.
    #[error("sending signal {signal} to pid {pid} of cgroup {path}: {source}")]
    Signal {
        /// The pid.
        pid: i32,
        /// The signal number.
        signal: i32,
        /// The cgroup directory the pid was read from.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// Waiting for the kernel to reach a state took too long.
    #[error("timed out after {millis} ms waiting for {what} in {path}")]
    Timeout {
        /// What was waited for.
        what: String,
        /// The cgroup directory or file.
        path: PathBuf,
        /// How long it waited.
        millis: u64,
    },

    /// A bpf(2) operation for the cgroup v2 device filter failed.
    #[error("bpf {op} for linux.resources.devices on {path}: {source}{log}")]
    Bpf {
        /// Which bpf command.
        op: &'static str,
        /// The cgroup directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
        /// Verifier log, starting with "\n" when not empty.
        log: String,
    },

    /// Several independent steps failed (teardown keeps going and reports all).
    #[error("{}", join_errors(.0))]
    Multiple(Vec<Error>),
}

fn join_errors(errors: &[Error]) -> String {
    let parts: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    format!("{} errors: {}", errors.len(), parts.join("; "))
}

impl Error {
    /// Collapse a list of errors: `Ok` when empty, the error itself when
    /// there is one, `Multiple` otherwise.
    pub(crate) fn collect(mut errors: Vec<Error>) -> Result<(), Error> {
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(Error::Multiple(errors)),
        }
    }
}
