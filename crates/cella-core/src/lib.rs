//! cella-core: turns an OCI runtime spec into an isolated, resource-limited process and
//! manages its life. No CLI parsing, no printing, no global state.
//!
//! The modules, one concern each:
//! - [`spec`]: load and validate config.json; [`mounts`]: parse mount entries;
//! - [`state`]: the per-container state directory; [`id`]: container id rules;
//! - [`container`]: create/start/state/kill/delete in the runtime process;
//! - [`resources`]: update, statistics and OOM events of an existing container;
//! - [`checkpoint`]: what `checkpoint`/`restore` need besides CRIU (external mounts, restore state);
//! - [`init`]: the cloned child that builds the container and execs the program;
//! - [`rootfs`], [`resolve`]: mounts and path resolution inside the rootfs through fds;
//! - [`process`], [`caps`], [`lsm`], [`console`]: process attributes applied by the init;
//! - [`sealed`]: the runtime re-executed from a sealed copy of its binary (CVE-2019-5736);
//! - [`hooks`], [`signal`], [`sync`], [`sys`]: hooks, signal names, the parent/child channel,
//!   and raw system calls.

pub mod caps;
pub mod checkpoint;
pub mod console;
pub mod container;
pub mod error;
pub mod exec;
pub mod hooks;
pub mod id;
pub mod init;
pub mod lsm;
pub mod mounts;
pub mod process;
pub mod resolve;
pub mod resources;
pub mod rootfs;
pub mod sealed;
pub mod signal;
pub mod spec;
pub mod state;
pub mod sync;
pub mod sys;

pub use error::{Error, Result};
