//! cella's two front doors: the friendly `cella` command and the runc-compatible
//! `cella-runc`. Both are thin layers over cella-core.

pub mod criu_cmd;
pub mod features;
pub mod foreground;
pub mod friendly;
pub mod log;
pub mod resources_cmd;
pub mod rootfs_source;
pub mod runc;
pub mod specgen;
