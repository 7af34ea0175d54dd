//! The library's error type. Every variant carries what a person needs to act: the field,
//! path or value involved, and what went wrong.

use std::io;
use std::path::PathBuf;

/// Errors from cella-core. Messages are complete sentences fragments meant to be shown as is.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The container id is not acceptable.
    #[error("invalid container id {id:?}: {reason}")]
    InvalidId { id: String, reason: &'static str },

    /// A config.json field has a bad value.
    #[error("{field}: {message}")]
    Spec { field: String, message: String },

    /// config.json could not be read or parsed.
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },

    /// No container of this id under the state root.
    #[error("container {0:?} does not exist")]
    NotFound(String),

    /// A container of this id already exists.
    #[error("container {0:?} already exists (delete it first, or pick another id)")]
    Exists(String),

    /// The operation does not fit the container's current status.
    #[error("container {id:?} is {status}: {what}")]
    BadStatus {
        id: String,
        status: String,
        what: String,
    },

    /// A system call or file operation failed; `context` says what was being done.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },

    /// The container's init process reported an error while setting the container up.
    #[error("{0}")]
    Init(String),

    /// A hook failed.
    #[error("{0}")]
    Hook(String),

    /// A cgroup operation failed.
    #[error(transparent)]
    Cgroup(#[from] cella_cgroups::Error),

    /// The seccomp profile is invalid or could not be loaded.
    #[error(transparent)]
    Seccomp(#[from] cella_seccomp::Error),

    /// Something the host cannot do (a missing kernel feature or security module).
    #[error("{0}")]
    Unsupported(String),
}

/// Result alias for the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A spec error for `field` with `message`.
    pub fn spec(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Spec {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Attach a human context to an `io::Result` (or anything convertible to `io::Error`).
pub trait Context<T> {
    /// Wrap the error with a context computed lazily.
    fn ctx<C: Into<String>, F: FnOnce() -> C>(self, f: F) -> Result<T>;
}

impl<T, E: Into<io::Error>> Context<T> for std::result::Result<T, E> {
    fn ctx<C: Into<String>, F: FnOnce() -> C>(self, f: F) -> Result<T> {
        self.map_err(|e| Error::Io {
            context: f().into(),
            source: e.into(),
        })
    }
}
