//! The runtime binary out of the container's reach (the CVE-2019-5736 class).
//!
//! When the runtime (or a process cloned from it: the init, an exec child) execs a container
//! program whose interpreter is `/proc/self/exe` (a `#!/proc/self/exe` script, or an ELF whose
//! PT_INTERP is that path), the kernel runs the runtime's own binary inside the container,
//! dumpable again after execve. A container process can then take an `O_PATH` handle on
//! `/proc/PID/exe`, wait for that process to exit, and reopen the handle for writing through
//! `/proc/self/fd/N`: it would rewrite the host's runtime binary, run by root next time.
//!
//! [`ensure_sealed_exe`] makes that impossible: the commands that start container processes
//! (`create`, `run`, `exec`) first re-exec themselves, once, from a memfd copy of the binary
//! sealed with `F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE`. From then on
//! `/proc/self/exe` of the runtime and of every process it clones is that memfd: a container
//! can reach only a private, immutable copy, never the file on the host. The marker that the
//! re-exec happened is the seals themselves, read back from `/proc/self/exe`.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{Mode, OFlags};

use crate::error::{Error, Result};

/// The seals the copy carries.
pub const SEALS: i32 =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// Set (to "1") across the re-exec, so that a kernel where the sealed copy does not show up as
/// `/proc/self/exe` produces an error instead of an exec loop. Removed right after.
pub const REEXEC_ENV: &str = "_CELLA_SEALED_REEXEC";

/// Whether this process runs from a view of its binary that cannot be written: a sealed
/// memfd, or a file on a read-only overlayfs.
pub fn running_sealed() -> bool {
    let Ok(fd) = rustix::fs::open(
        "/proc/self/exe",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return false;
    };
    // SAFETY: F_GET_SEALS on an fd we own; no pointer arguments.
    let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
    if seals >= 0 && seals & SEALS == SEALS {
        return true;
    }
    matches!(rustix::fs::fstatfs(&fd), Ok(st) if st.f_type == libc::OVERLAYFS_SUPER_MAGIC)
        && matches!(rustix::fs::fstatvfs(&fd), Ok(v) if v.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY))
}

/// Whether any command-line argument (after the program name) is one of `words`. The CLIs use
/// it to decide on the re-exec before parsing: a positional argument that happens to spell a
/// command (a container named `run`) only costs a needless re-exec, never a skipped one.
pub fn any_arg_is(words: &[&str]) -> bool {
    std::env::args_os()
        .skip(1)
        .any(|a| words.iter().any(|w| a.as_bytes() == w.as_bytes()))
}

/// Re-exec this process from a sealed memfd copy of its binary, with the same arguments,
/// environment and fds, unless it already runs from one. Returns `Ok(())` in the re-executed
/// process; on success in the first process it does not return at all. Call it before any
/// thread is started. There is deliberately no run-time switch to turn it off.
pub fn ensure_sealed_exe() -> Result<()> {
    let again = std::env::var_os(REEXEC_ENV).is_some();
    if running_sealed() {
        if again {
            std::env::remove_var(REEXEC_ENV);
        }
        return Ok(());
    }
    if again {
        return Err(Error::Init(
            "re-executed from a sealed copy of the runtime binary, but /proc/self/exe is not \
             that copy; refusing to continue (is /proc mounted?)"
                .into(),
        ));
    }
    let copy = match readonly_overlay_view() {
        Ok(fd) => fd,
        Err(_) => sealed_copy()?,
    };
    let argv: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()).unwrap_or_default())
        .collect();
    let mut envp: Vec<CString> = std::env::vars_os()
        .filter(|(k, _)| k != REEXEC_ENV)
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            CString::new(kv.as_bytes()).unwrap_or_default()
        })
        .collect();
    envp.push(CString::new(format!("{REEXEC_ENV}=1")).expect("no NUL"));
    let mut av: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    av.push(std::ptr::null());
    let mut ev: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).collect();
    ev.push(std::ptr::null());
    // SAFETY: execveat on a memfd we own with AT_EMPTY_PATH; the path is an empty C string and
    // argv/envp are NULL-terminated arrays of C strings that outlive the call. It returns only
    // on failure.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            copy.as_raw_fd(),
            c"".as_ptr(),
            av.as_ptr(),
            ev.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Err(Error::Init(format!(
        "re-executing the runtime from its sealed copy: execveat: {}",
        std::io::Error::last_os_error()
    )))
}

/// The running binary opened through a detached read-only overlayfs (see the module
/// documentation). Fails on kernels without `lowerdir+` (before 6.8) or when the binary's
/// directory cannot be an overlay layer; the caller then makes a sealed copy.
fn readonly_overlay_view() -> Result<OwnedFd> {
    use rustix::mount::{
        fsconfig_create, fsconfig_set_string, fsmount, fsopen, FsMountFlags, FsOpenFlags,
        MountAttrFlags,
    };
    let fail = |what: &str, e: rustix::io::Errno| {
        Error::Init(format!("read-only overlay view: {what}: {e}"))
    };
    let exe =
        rustix::fs::readlink("/proc/self/exe", Vec::new()).map_err(|e| fail("readlink", e))?;
    let exe = std::path::PathBuf::from(std::ffi::OsStr::from_bytes(exe.as_bytes()));
    let (Some(dir), Some(name)) = (exe.parent(), exe.file_name()) else {
        return Err(Error::Init(format!(
            "read-only overlay view: odd path {}",
            exe.display()
        )));
    };
    let tmp = fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC).map_err(|e| fail("tmpfs", e))?;
    fsconfig_create(&tmp).map_err(|e| fail("tmpfs", e))?;
    let empty = fsmount(
        &tmp,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_RDONLY,
    )
    .map_err(|e| fail("tmpfs", e))?;
    let ov = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).map_err(|e| fail("overlay", e))?;
    fsconfig_set_string(&ov, "lowerdir+", dir).map_err(|e| fail("lowerdir+", e))?;
    fsconfig_set_string(
        &ov,
        "lowerdir+",
        format!("/proc/self/fd/{}", empty.as_raw_fd()),
    )
    .map_err(|e| fail("lowerdir+", e))?;
    fsconfig_create(&ov).map_err(|e| fail("overlay", e))?;
    let mnt = fsmount(
        &ov,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_RDONLY
            | MountAttrFlags::MOUNT_ATTR_NODEV
            | MountAttrFlags::MOUNT_ATTR_NOSUID,
    )
    .map_err(|e| fail("overlay", e))?;
    let file = rustix::fs::openat(&mnt, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| fail("opening the binary", e))?;
    // The same program as the one running (the path could have been replaced meanwhile).
    let now = rustix::fs::fstat(&file).map_err(|e| fail("fstat", e))?;
    let running = rustix::fs::stat("/proc/self/exe").map_err(|e| fail("stat", e))?;
    if now.st_size != running.st_size || now.st_mtime != running.st_mtime {
        return Err(Error::Init(format!(
            "read-only overlay view: {} changed",
            exe.display()
        )));
    }
    Ok(file)
}

/// The length of the part of an ELF file that exec reads (the header, the program headers
/// and every segment's bytes), read from `file`; `None` when it is not a 64-bit
/// little-endian ELF file or its headers do not make sense (the whole file is copied then).
fn loaded_len(file: &OwnedFd) -> Option<usize> {
    let mut header = [0u8; 64];
    if rustix::io::pread(file, &mut header, 0).ok()? != header.len() {
        return None;
    }
    let (phoff, phentsize, phnum) = program_headers(&header)?;
    let mut table = vec![0u8; phentsize * phnum];
    if rustix::io::pread(file, &mut table, phoff as u64).ok()? != table.len() {
        return None;
    }
    loaded_end(&header, &table)
}

/// Where the program header table is: (offset, entry size, count), from a 64-bit
/// little-endian ELF header.
fn program_headers(header: &[u8]) -> Option<(usize, usize, usize)> {
    if header.len() < 64 || header[..4] != *b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return None;
    }
    let phoff = u64::from_le_bytes(header[0x20..0x28].try_into().ok()?) as usize;
    let phentsize = u16::from_le_bytes(header[0x36..0x38].try_into().ok()?) as usize;
    let phnum = u16::from_le_bytes(header[0x38..0x3a].try_into().ok()?) as usize;
    if phentsize < 56 || phnum == 0 || phentsize * phnum > 64 * 1024 {
        return None;
    }
    Some((phoff, phentsize, phnum))
}

/// The end of the furthest segment (or of the headers), given the ELF header and its
/// program header table.
fn loaded_end(header: &[u8], table: &[u8]) -> Option<usize> {
    let (phoff, phentsize, phnum) = program_headers(header)?;
    let mut end = (phoff + phentsize * phnum).max(64);
    for i in 0..phnum {
        let ph = table.get(i * phentsize..(i + 1) * phentsize)?;
        let offset = u64::from_le_bytes(ph[8..16].try_into().ok()?);
        let filesz = u64::from_le_bytes(ph[32..40].try_into().ok()?);
        end = end.max(usize::try_from(offset.checked_add(filesz)?).ok()?);
    }
    Some(end)
}

/// A memfd holding a copy of /proc/self/exe, sealed against every change.
fn sealed_copy() -> Result<OwnedFd> {
    let io =
        |what: &str, e: std::io::Error| Error::Init(format!("sealed runtime copy: {what}: {e}"));
    let src = rustix::fs::open(
        "/proc/self/exe",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io("opening /proc/self/exe", e.into()))?;
    let file_size = rustix::fs::fstat(&src)
        .map_err(|e| io("fstat /proc/self/exe", e.into()))?
        .st_size as usize;
    // Only what exec reads: the symbol table and section headers after the last segment
    // (about a tenth of a release binary) are not copied.
    let size = loaded_len(&src).map_or(file_size, |n| n.min(file_size));
    // MFD_EXEC (Linux 6.3+) keeps the copy executable where vm.memfd_noexec would make memfds
    // non-executable by default; older kernels reject the flag, and there memfds are executable.
    const MFD_EXEC: u32 = 0x0010;
    let base = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    let mut fd = -1;
    for flags in [base | MFD_EXEC, base] {
        // SAFETY: memfd_create with a NUL-terminated name and flags; returns a new fd or -1.
        fd = unsafe { libc::memfd_create(c"cella-runtime".as_ptr(), flags) };
        if fd >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) {
            break;
        }
    }
    if fd < 0 {
        return Err(io("memfd_create", std::io::Error::last_os_error()));
    }
    // SAFETY: fd is a new descriptor that nothing else owns.
    let mem = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let mut left = size;
    while left > 0 {
        let n = rustix::fs::sendfile(&mem, &src, None, left)
            .map_err(|e| io("copying the binary into the memfd", e.into()))?;
        if n == 0 {
            return Err(Error::Init(format!(
                "sealed runtime copy: /proc/self/exe ended after {} of {size} bytes",
                size - left
            )));
        }
        left -= n;
    }
    // SAFETY: F_ADD_SEALS on the memfd we own, with an integer argument.
    if unsafe { libc::fcntl(mem.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } != 0 {
        return Err(io("sealing the memfd", std::io::Error::last_os_error()));
    }
    Ok(mem)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reopening `fd` for writing through /proc/self/fd, as an attacker holding an O_PATH
    /// handle on /proc/PID/exe would.
    fn reopen_for_write(fd: &OwnedFd) -> std::io::Result<std::fs::File> {
        std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/proc/self/fd/{}", fd.as_raw_fd()))
    }

    #[test]
    fn sealed_copy_cannot_be_changed() {
        let copy = sealed_copy().unwrap();
        // SAFETY: F_GET_SEALS on an fd we own.
        let seals = unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_GET_SEALS) };
        assert_eq!(seals & SEALS, SEALS);
        // Everything exec reads, and no more (not the symbol table or debug info).
        let size = rustix::fs::fstat(&copy).unwrap().st_size as usize;
        let exe = rustix::fs::open(
            "/proc/self/exe",
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .unwrap();
        assert_eq!(Some(size), loaded_len(&exe));
        assert!(size <= std::fs::metadata("/proc/self/exe").unwrap().len() as usize);
        if let Ok(mut f) = reopen_for_write(&copy) {
            use std::io::Write;
            assert!(f.write_all(b"x").is_err(), "wrote into the sealed copy");
            assert!(f.set_len(0).is_err(), "truncated the sealed copy");
        }
        assert_eq!(rustix::fs::fstat(&copy).unwrap().st_size as usize, size);
    }

    #[test]
    fn overlay_view_is_read_only() {
        // Needs root (fsmount); and the overlay may be unavailable (then the copy is used).
        let Ok(view) = readonly_overlay_view() else {
            return;
        };
        let e = reopen_for_write(&view).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EROFS), "{e}");
        let st = rustix::fs::fstatvfs(&view).unwrap();
        assert!(st.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY));
    }
}

#[cfg(test)]
mod elf_tests {
    use super::{loaded_end, loaded_len, program_headers};

    /// A minimal 64-bit ELF header and program header table with the given segments
    /// (offset, file size).
    fn elf(segments: &[(u64, u64)]) -> (Vec<u8>, Vec<u8>) {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        h[5] = 1;
        h[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        h[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        h[0x38..0x3a].copy_from_slice(&(segments.len() as u16).to_le_bytes());
        let mut t = Vec::new();
        for (off, size) in segments {
            let mut ph = vec![0u8; 56];
            ph[0..4].copy_from_slice(&1u32.to_le_bytes());
            ph[8..16].copy_from_slice(&off.to_le_bytes());
            ph[32..40].copy_from_slice(&size.to_le_bytes());
            t.extend(ph);
        }
        (h, t)
    }

    #[test]
    fn the_copy_ends_with_the_furthest_segment() {
        let (h, t) = elf(&[(0, 0x1000), (0x5000, 0x300), (0x2000, 0x100)]);
        assert_eq!(loaded_end(&h, &t), Some(0x5300));
        // The headers count even when every segment ends before them.
        let (h, t) = elf(&[(0, 10)]);
        assert_eq!(loaded_end(&h, &t), Some(64 + 56));
    }

    #[test]
    fn anything_but_a_sane_64_bit_elf_means_the_whole_file() {
        let (mut h, t) = elf(&[(0, 10)]);
        h[4] = 1; // 32-bit
        assert_eq!(program_headers(&h), None);
        let (mut h, _) = elf(&[(0, 10)]);
        h[0] = 0;
        assert_eq!(program_headers(&h), None);
        let (h, t2) = elf(&[(u64::MAX, 2)]);
        assert_eq!(loaded_end(&h, &t2), None, "overflowing segment");
        let (h, _) = elf(&[(0, 10)]);
        assert_eq!(loaded_end(&h, &t[..0]), None, "truncated table");
    }

    #[test]
    fn this_test_binary_is_covered_up_to_its_segments() {
        let f = rustix::fs::open(
            "/proc/self/exe",
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .unwrap();
        let size = rustix::fs::fstat(&f).unwrap().st_size as usize;
        let n = loaded_len(&f).expect("a 64-bit ELF");
        assert!(n > 64 && n <= size, "{n} of {size}");
    }
}
