//! Thin wrappers over the few system calls that rustix does not cover: clone3,
//! mount_setattr and close_range. Everything else goes through rustix.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

/// MOUNT_ATTR_* flags of mount_setattr(2).
pub mod attr {
    pub const RDONLY: u64 = 0x0000_0001;
    pub const NOSUID: u64 = 0x0000_0002;
    pub const NODEV: u64 = 0x0000_0004;
    pub const NOEXEC: u64 = 0x0000_0008;
    pub const ATIME_MASK: u64 = 0x0000_0070;
    pub const RELATIME: u64 = 0x0000_0000;
    pub const NOATIME: u64 = 0x0000_0010;
    pub const STRICTATIME: u64 = 0x0000_0020;
    pub const NODIRATIME: u64 = 0x0000_0080;
    pub const NOSYMFOLLOW: u64 = 0x0020_0000;
}

/// Propagation types (MS_* values), as mount_setattr takes them.
pub mod propagation {
    pub const PRIVATE: u64 = libc::MS_PRIVATE;
    pub const SHARED: u64 = libc::MS_SHARED;
    pub const SLAVE: u64 = libc::MS_SLAVE;
    pub const UNBINDABLE: u64 = libc::MS_UNBINDABLE;
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// mount_setattr(2) on the mount `fd` refers to (AT_EMPTY_PATH), optionally recursive.
pub fn mount_setattr(
    fd: BorrowedFd<'_>,
    recursive: bool,
    set: u64,
    clr: u64,
    propagation: u64,
) -> io::Result<()> {
    let mut attr = MountAttr {
        attr_set: set,
        attr_clr: clr,
        propagation,
        userns_fd: 0,
    };
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: the path is a valid empty C string, `attr` is a properly initialised struct
    // that outlives the call, and its size is passed alongside.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &mut attr as *mut MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Close every fd from `first` up (close_range(2)).
pub fn close_fds_from(first: u32) -> io::Result<()> {
    // SAFETY: close_range only closes descriptors; callers invoke it right before exec when no
    // Rust object still relies on descriptors at or above `first`.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0u32) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// CLONE_INTO_CGROUP (clone3 only).
pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// What `clone3` returned in the calling process.
pub enum Forked {
    /// We are the new process.
    Child,
    /// We are the parent; the child's pid and a pidfd for it.
    Parent {
        pid: i32,
        pidfd: std::os::fd::OwnedFd,
    },
}

/// fork-like clone3(2): the child gets a copy of the address space and starts at the return
/// of this call. `flags` are CLONE_NEW* flags; a pidfd is always requested. `cgroup` puts the
/// child straight into a cgroup v2 directory (CLONE_INTO_CGROUP).
///
/// The caller must be single-threaded (the child only has the calling thread).
pub fn clone3_fork(flags: u64, cgroup: Option<RawFd>) -> io::Result<Forked> {
    let mut pidfd: RawFd = -1;
    let mut args = CloneArgs {
        flags: flags | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut RawFd as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    // SAFETY: args is a valid clone_args struct whose pointers (pidfd) outlive the call; with a
    // zero stack clone3 behaves like fork, so the child continues on a copy of this stack. The
    // runtime is single-threaded when it calls this, so the child's copy of the heap and of all
    // locks is consistent.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    if r == 0 {
        return Ok(Forked::Child);
    }
    // SAFETY: the kernel stored a fresh pidfd that nothing else owns.
    let pidfd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(pidfd) };
    Ok(Forked::Parent {
        pid: r as i32,
        pidfd,
    })
}

/// Exit the current process at once, without running destructors or atexit handlers
/// (used by forked children that must not unwind into the parent's code).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

/// The start time of `pid` (field 22 of /proc/PID/stat, in clock ticks since boot), used to
/// tell a container's init from a later process that reused its pid.
pub fn process_start_time(pid: i32) -> Option<u64> {
    process_stat(pid).map(|(_, start)| start)
}

/// Whether `pid` is alive and a zombie is not counted as alive.
pub fn process_state(pid: i32) -> Option<char> {
    process_stat(pid).map(|(state, _)| state)
}

/// The state (field 3) and start time (field 22) of `pid` from one read of /proc/PID/stat.
pub fn process_stat(pid: i32) -> Option<(char, u64)> {
    use std::io::Read;
    // One read(2) (the file is well under 1 KiB), without the fstat of fs::read_to_string.
    let mut f = std::fs::File::open(format!("/proc/{pid}/stat")).ok()?;
    let mut buf = [0u8; 1024];
    let mut len = 0;
    loop {
        match f.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
        if len == buf.len() {
            return None;
        }
    }
    let stat = std::str::from_utf8(&buf[..len]).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: skip past it.
    let rest = &stat[stat.rfind(')')? + 2..];
    let state = rest.chars().next()?;
    let start = rest.split(' ').nth(19)?.parse().ok()?;
    Some((state, start))
}
