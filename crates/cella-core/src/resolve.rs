//! Resolving paths inside a container's root filesystem through file descriptors.
//!
//! Every lookup is an openat2(2) with RESOLVE_IN_ROOT relative to an fd of the rootfs, so
//! `..` and symlinks (absolute or relative) can never leave the rootfs: a symlink in an image
//! cannot make cella act on a host path. Missing directories are created one component at a
//! time, each relative to the fd of its parent, and opened with O_NOFOLLOW.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::error::{Context, Result};

const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// Open `path` (absolute or relative; always taken inside `root`) with `flags`.
pub fn open_in_root(
    root: BorrowedFd<'_>,
    path: &Path,
    flags: OFlags,
) -> rustix::io::Result<OwnedFd> {
    let rel = relative(path);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    loop {
        match rustix::fs::openat2(root, rel, flags | OFlags::CLOEXEC, Mode::empty(), RESOLVE) {
            Err(Errno::AGAIN) | Err(Errno::INTR) => continue,
            r => return r,
        }
    }
}

/// An O_PATH fd for `path` inside `root`.
pub fn open_path(root: BorrowedFd<'_>, path: &Path) -> rustix::io::Result<OwnedFd> {
    open_in_root(root, path, OFlags::PATH)
}

/// What to create at a missing mount destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
}

/// Open `path` inside `root`, creating it (and missing parents, mode 0755) when absent.
/// Returns an O_PATH fd of the final component. `kind` says what to create at the end.
pub fn mkdir_all_open(root: BorrowedFd<'_>, path: &Path, kind: Kind) -> Result<OwnedFd> {
    match open_path(root, path) {
        Ok(fd) => return Ok(fd),
        Err(Errno::NOENT) => {}
        Err(e) => {
            return Err(e).ctx(|| format!("resolving {} in the container root", path.display()))
        }
    }
    let comps: Vec<&std::ffi::OsStr> = relative(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s),
            _ => None,
        })
        .collect();
    // Find the deepest existing ancestor, then create downwards from it.
    let mut existing = comps.len();
    let mut dir = loop {
        if existing == 0 {
            break open_in_root(root, Path::new("."), OFlags::PATH | OFlags::DIRECTORY)
                .ctx(|| "opening the container root".to_string())?;
        }
        existing -= 1;
        let prefix: std::path::PathBuf = comps[..existing].iter().collect();
        match open_in_root(root, &prefix, OFlags::PATH | OFlags::DIRECTORY) {
            Ok(fd) => break fd,
            Err(Errno::NOENT) => continue,
            Err(e) => {
                return Err(e)
                    .ctx(|| format!("resolving {} in the container root", prefix.display()))
            }
        }
    };
    for (i, name) in comps.iter().enumerate().skip(existing) {
        let last = i + 1 == comps.len();
        let shown = || format!("creating {} in the container root", path.display());
        if last && kind == Kind::File {
            let made = rustix::fs::openat(
                &dir,
                *name,
                OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o644),
            );
            match made {
                Ok(_) | Err(Errno::EXIST) => {}
                Err(e) => return Err(e).ctx(shown),
            }
            return rustix::fs::openat(
                &dir,
                *name,
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .ctx(shown);
        }
        match rustix::fs::mkdirat(&dir, *name, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e).ctx(shown),
        }
        // O_NOFOLLOW|O_DIRECTORY: if something swapped in a symlink, this fails instead of
        // following it.
        dir = rustix::fs::openat(
            &dir,
            *name,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ctx(shown)?;
    }
    Ok(dir)
}

/// `path` without its leading `/`.
pub fn relative(path: &Path) -> &Path {
    path.strip_prefix("/").unwrap_or(path)
}

/// The "/proc/self/fd/N" path of an fd, for the few interfaces that need a path.
pub fn fd_path(fd: BorrowedFd<'_>) -> String {
    use std::os::fd::AsRawFd;
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// Whether the O_PATH fd `fd` refers to a directory.
pub fn is_dir(fd: impl AsFd) -> bool {
    rustix::fs::fstat(fd)
        .map(|st| {
            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_stay_inside_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::create_dir_all(root.join("outside")).unwrap();
        // An absolute symlink and a ../ symlink that point at the host dir.
        symlink("/outside", root.join("abs")).unwrap();
        symlink("../../outside", root.join("rel")).unwrap();
        let rfd = rustix::fs::open(
            &root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        mkdir_all_open(rfd.as_fd(), Path::new("/abs/x/y"), Kind::Dir).unwrap();
        mkdir_all_open(rfd.as_fd(), Path::new("/rel/z"), Kind::File).unwrap();
        assert!(
            std::fs::read_dir(&outside).unwrap().next().is_none(),
            "host dir was touched"
        );
        // The links resolved inside the root: abs -> /outside in root, rel -> /outside in root.
        assert!(root.join("outside/x/y").is_dir());
        assert!(root.join("outside/z").is_file());
        // A dangling link is not followed out of the root either: creation fails instead.
        symlink("/nowhere", root.join("dangling")).unwrap();
        assert!(mkdir_all_open(rfd.as_fd(), Path::new("/dangling/q"), Kind::Dir).is_err());
        assert!(!tmp.path().join("nowhere").exists());
    }
}
