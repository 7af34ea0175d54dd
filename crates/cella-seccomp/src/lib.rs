//! OCI `linux.seccomp` compiled to a seccomp BPF filter through libseccomp.
//!
//! The flow a runtime follows:
//!
//! 1. Before forking, [`Filter::from_spec`] validates the whole `linux.seccomp` object and
//!    compiles it to a BPF program. Every error names the offending field, e.g.
//!    `linux.seccomp.syscalls[3].errnoRet: ...`. Syscall names libseccomp does not know
//!    for this architecture are skipped (as runc does) and reported by
//!    [`Filter::skipped_syscalls`].
//! 2. In the container's init, after `no_new_privs` is set (or while it still holds
//!    `CAP_SYS_ADMIN`), right before `execve`, [`Filter::load`] installs the program. It
//!    is one system call: no allocation, safe to call after `fork` in a child.
//! 3. When [`Filter::needs_notify`] is true, `load` returns the notify listener fd; the
//!    runtime hands it to the seccomp agent with [`send_listener`], along with the
//!    container process state built by [`process_state_json`].
//!
//! [`default_profile`] is an allow-list profile for the friendly `cella run` command, and
//! [`parse_profile`] reads a profile file (the `linux.seccomp` JSON object) with errors
//! that name the field.

mod filter;
mod json;
mod listener;
mod profile;

pub use filter::{export_pfc, Filter, SkippedSyscall};
pub use json::parse_profile;
pub use listener::{process_state_json, send_listener, SECCOMP_FD_NAME};
pub use profile::default_profile;

/// Everything that can go wrong while compiling, loading or handing out a filter.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A field of `linux.seccomp` has a value this runtime cannot apply.
    #[error("{field}: {message}")]
    Invalid {
        /// The JSON path of the field, e.g. `linux.seccomp.syscalls[3].action`.
        field: String,
        /// What is wrong and what to do about it.
        message: String,
    },

    /// libseccomp refused part of the filter.
    #[error("{field}: libseccomp could not {what}: {source}")]
    Libseccomp {
        /// The JSON path of the field being applied.
        field: String,
        /// What was being done.
        what: String,
        /// The libseccomp error.
        #[source]
        source: libseccomp::error::SeccompError,
    },

    /// The kernel refused the filter when it was installed.
    #[error("cannot install the seccomp filter: {}", load_hint(*errno))]
    Load {
        /// The errno returned by `seccomp(SECCOMP_SET_MODE_FILTER, ...)`.
        errno: i32,
    },

    /// An I/O operation failed (exporting the program, talking to the seccomp agent).
    #[error("{what}: {source}")]
    Io {
        /// What was being done, naming the path or object involved.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub(crate) fn io(what: impl Into<String>, source: impl Into<std::io::Error>) -> Self {
        Error::Io {
            what: what.into(),
            source: source.into(),
        }
    }
}

fn load_hint(errno: i32) -> String {
    let base = std::io::Error::from_raw_os_error(errno);
    let hint = match errno {
        libc::EACCES => {
            "; the process must have no_new_privs set (prctl PR_SET_NO_NEW_PRIVS) \
             or hold CAP_SYS_ADMIN before the filter is loaded"
        }
        libc::EINVAL => "; the kernel rejected the program or one of the filter flags",
        libc::ENOSYS => "; this kernel was built without seccomp filter support",
        libc::ESRCH => "; another thread of the process could not be synchronised (TSYNC)",
        libc::EBUSY => "; a notify listener is already installed for this process",
        libc::ENOMEM => "; too many or too large seccomp filters are attached to the process",
        _ => "",
    };
    format!("{base}{hint}")
}
