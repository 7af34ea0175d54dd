//! Linux security modules: AppArmor profiles and SELinux labels are applied when the module
//! is active, and refused with a clear error when it is not (never silently dropped).

use std::path::Path;

use crate::error::{Error, Result};

/// Whether AppArmor is enabled on this host.
pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .map(|s| s.trim() == "Y")
        .unwrap_or(false)
        && Path::new("/sys/kernel/security/apparmor").exists()
}

/// Whether SELinux is enabled on this host.
pub fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// Fail unless SELinux is active.
pub fn require_selinux(field: &str) -> Result<()> {
    if selinux_enabled() {
        Ok(())
    } else {
        Err(Error::Unsupported(format!("{field}: SELinux is not enabled on this host, so the label cannot be applied; remove the field or enable SELinux")))
    }
}

/// Fail unless AppArmor is active.
pub fn require_apparmor(field: &str) -> Result<()> {
    if apparmor_enabled() {
        Ok(())
    } else {
        Err(Error::Unsupported(format!("{field}: AppArmor is not enabled on this host, so the profile cannot be applied; remove the field or enable AppArmor")))
    }
}

/// Arrange for the next exec to switch to AppArmor `profile` (the write goes to the
/// procfs handle `proc` the init holds).
pub fn apparmor_exec(proc: &std::os::fd::OwnedFd, profile: &str) -> Result<()> {
    write_attr(
        proc,
        "self/attr/apparmor/exec",
        "self/attr/exec",
        format!("exec {profile}").as_bytes(),
    )
}

/// Arrange for the next exec to run with SELinux `label`.
pub fn selinux_exec(proc: &std::os::fd::OwnedFd, label: &str) -> Result<()> {
    write_attr(
        proc,
        "self/attr/selinux/exec",
        "self/attr/exec",
        label.as_bytes(),
    )
}

fn write_attr(proc: &std::os::fd::OwnedFd, path: &str, fallback: &str, data: &[u8]) -> Result<()> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::openat(proc, path, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())
        .or_else(|_| {
            rustix::fs::openat(
                proc,
                fallback,
                OFlags::WRONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )
        })
        .map_err(|e| Error::Init(format!("opening /proc/{path}: {e}")))?;
    rustix::io::write(&fd, data).map_err(|e| Error::Init(format!("writing /proc/{path}: {e}")))?;
    Ok(())
}
