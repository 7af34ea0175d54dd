//! Building the container's root filesystem inside its new mount namespace: propagation, the
//! rootfs bind, the spec's mounts, /dev, masked and read-only paths, and pivot_root.
//!
//! Mounts use the new mount API: a filesystem or a bind is first made as a detached mount
//! (fsmount / open_tree), its attributes are set while nobody can see it (mount_setattr),
//! and only then is it attached with move_mount onto an fd that was resolved inside the
//! rootfs. No mount target is ever a path string.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::mount::{
    fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, move_mount,
    open_tree, FsMountFlags, FsOpenFlags, MountAttrFlags, MountPropagationFlags, MoveMountFlags,
    OpenTreeFlags, UnmountFlags,
};

use crate::error::{Context, Error, Result};
use crate::mounts::{MountKind, MountPlan};
use crate::resolve::{self, Kind};
use crate::sys::{self, attr};

pub use cella_cgroups::ContainerCgroupMount as CgroupMount;

/// Mount settings that apply to the whole rootfs build.
pub struct MountContext<'a> {
    pub rootfd: BorrowedFd<'a>,
    /// The container has its own user namespace (no mknod, sysfs may need a bind).
    pub userns: bool,
    /// The container has its own cgroup namespace.
    pub cgroupns: bool,
}

/// Make every mount in our new mount namespace a slave (or private) so nothing we do
/// propagates back to the host, then bind the rootfs onto itself so it is a mount point
/// that pivot_root accepts. Returns an fd of the rootfs mount.
pub fn prepare(rootfs: &Path, private: bool) -> Result<OwnedFd> {
    let flags = if private {
        MountPropagationFlags::PRIVATE
    } else {
        MountPropagationFlags::DOWNSTREAM
    };
    rustix::mount::mount_change("/", flags | MountPropagationFlags::REC)
        .ctx(|| "making / a slave mount in the container's mount namespace".to_string())?;
    let tree = open_tree(
        rustix::fs::CWD,
        rootfs,
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_RECURSIVE,
    )
    .ctx(|| format!("binding the rootfs {}", rootfs.display()))?;
    move_mount(
        tree.as_fd(),
        "",
        rustix::fs::CWD,
        rootfs,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .ctx(|| format!("binding the rootfs {} onto itself", rootfs.display()))?;
    rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("opening the rootfs {}", rootfs.display()))
}

fn attach(tree: &OwnedFd, target: &OwnedFd) -> rustix::io::Result<()> {
    move_mount(
        tree.as_fd(),
        "",
        target.as_fd(),
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
}

fn set_attrs(tree: &OwnedFd, plan: &MountPlan) -> rustix::io::Result<()> {
    let a = &plan.attrs;
    if a.set != 0 || a.clr != 0 {
        sys::mount_setattr(tree.as_fd(), false, a.set, a.clr, 0).map_err(errno)?;
    }
    if a.rec_set != 0 || a.rec_clr != 0 {
        sys::mount_setattr(tree.as_fd(), true, a.rec_set, a.rec_clr, 0).map_err(errno)?;
    }
    Ok(())
}

fn set_propagation(tree: &OwnedFd, plan: &MountPlan) -> rustix::io::Result<()> {
    if let Some((flag, recursive)) = plan.propagation {
        sys::mount_setattr(tree.as_fd(), recursive, 0, 0, flag).map_err(errno)?;
    }
    Ok(())
}

fn errno(e: std::io::Error) -> Errno {
    Errno::from_io_error(&e).unwrap_or(Errno::IO)
}

/// Carry out one spec mount.
pub fn mount(ctx: &MountContext<'_>, plan: &MountPlan, cgroups: &[CgroupMount]) -> Result<()> {
    let dest = plan.destination.as_path();
    let what = || {
        format!(
            "{} ({} at {})",
            plan.field(),
            kind_name(&plan.kind),
            dest.display()
        )
    };
    match &plan.kind {
        MountKind::Bind { recursive } => {
            let src = plan.source.as_deref().expect("bind mounts have a source");
            let mut flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
            if *recursive {
                flags |= OpenTreeFlags::AT_RECURSIVE;
            }
            let tree = open_tree(rustix::fs::CWD, src, flags).map_err(|e| {
                Error::spec(
                    format!("{}.source", plan.field()),
                    format!("{}: {}", src.display(), std::io::Error::from(e)),
                )
            })?;
            let kind = if resolve::is_dir(&tree) {
                Kind::Dir
            } else {
                Kind::File
            };
            let target = resolve::mkdir_all_open(ctx.rootfd, dest, kind)?;
            set_attrs(&tree, plan).ctx(|| format!("{}: setting mount options", what()))?;
            attach(&tree, &target).ctx(|| format!("{}: attaching", what()))?;
            set_propagation(&tree, plan).ctx(|| format!("{}: setting propagation", what()))?;
        }
        MountKind::Fs { fstype } => {
            if fstype == "proc" || fstype == "sysfs" {
                refuse_symlink(ctx.rootfd, plan)?;
            }
            let target = resolve::mkdir_all_open(ctx.rootfd, dest, Kind::Dir)?;
            let tree = match new_fs(fstype, plan) {
                Ok(t) => t,
                // sysfs cannot be mounted in a user namespace that does not own the network
                // namespace: show the host's /sys read-only instead, as other runtimes do.
                Err(Error::Io { source, .. })
                    if fstype == "sysfs"
                        && ctx.userns
                        && source.raw_os_error() == Some(libc::EPERM) =>
                {
                    let t = open_tree(
                        rustix::fs::CWD,
                        "/sys",
                        OpenTreeFlags::OPEN_TREE_CLONE
                            | OpenTreeFlags::OPEN_TREE_CLOEXEC
                            | OpenTreeFlags::AT_RECURSIVE,
                    )
                    .ctx(|| format!("{}: binding /sys", what()))?;
                    sys::mount_setattr(
                        t.as_fd(),
                        true,
                        attr::RDONLY | attr::NOSUID | attr::NODEV | attr::NOEXEC,
                        0,
                        0,
                    )
                    .ctx(|| format!("{}: making /sys read-only", what()))?;
                    t
                }
                Err(e) => return Err(e),
            };
            if plan.tmpcopyup {
                copy_tree(&target, &tree)
                    .ctx(|| format!("{}: tmpcopyup of {}", what(), dest.display()))?;
            }
            attach(&tree, &target).ctx(|| format!("{}: attaching", what()))?;
            set_propagation(&tree, plan).ctx(|| format!("{}: setting propagation", what()))?;
        }
        MountKind::Cgroup => mount_cgroups(ctx, plan, cgroups)?,
    }
    Ok(())
}

fn kind_name(k: &MountKind) -> &str {
    match k {
        MountKind::Bind { .. } => "bind",
        MountKind::Fs { fstype } => fstype,
        MountKind::Cgroup => "cgroup",
    }
}

/// proc and sysfs must be mounted on real directories, never through a symlink planted in
/// the image (a symlinked /proc could redirect the runtime's later /proc writes).
fn refuse_symlink(root: BorrowedFd<'_>, plan: &MountPlan) -> Result<()> {
    let rel = resolve::relative(&plan.destination);
    match rustix::fs::openat2(
        root,
        rel,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        rustix::fs::ResolveFlags::IN_ROOT | rustix::fs::ResolveFlags::NO_SYMLINKS,
    ) {
        Err(Errno::LOOP) => Err(Error::spec(
            format!("{}.destination", plan.field()),
            format!(
                "{} is a symlink in the rootfs; refusing to mount {} through it",
                plan.destination.display(),
                kind_name(&plan.kind)
            ),
        )),
        _ => Ok(()),
    }
}

/// A detached mount of a new `fstype` filesystem configured from the plan's data options.
fn new_fs(fstype: &str, plan: &MountPlan) -> Result<OwnedFd> {
    let what = || {
        format!(
            "{} ({fstype} at {})",
            plan.field(),
            plan.destination.display()
        )
    };
    let fs = fsopen(fstype, FsOpenFlags::FSOPEN_CLOEXEC)
        .ctx(|| format!("{}: opening filesystem", what()))?;
    if let Some(src) = &plan.source {
        // The source is only a label for these filesystems; some (e.g. overlay) ignore it.
        let _ = fsconfig_set_string(fs.as_fd(), "source", src.as_os_str());
    }
    for (k, v) in &plan.data {
        let r = match v {
            Some(v) => fsconfig_set_string(fs.as_fd(), k.as_str(), v.as_str()),
            None => fsconfig_set_flag(fs.as_fd(), k.as_str()),
        };
        r.map_err(|e| {
            let opt = match v {
                Some(v) => format!("{k}={v}"),
                None => k.clone(),
            };
            Error::spec(
                format!("{}.options", plan.field()),
                format!(
                    "{fstype} rejected option {opt:?}: {}",
                    std::io::Error::from(e)
                ),
            )
        })?;
    }
    fsconfig_create(fs.as_fd()).ctx(|| format!("{}: creating filesystem", what()))?;
    let a = plan.attrs.set | plan.attrs.rec_set;
    fsmount(
        fs.as_fd(),
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::from_bits_retain(a as u32),
    )
    .ctx(|| format!("{}: mounting", what()))
}

/// `type: cgroup` at a destination: on cgroup v2 one cgroup2 mount; on v1 a tmpfs holding a
/// mount per hierarchy. Inside a cgroup namespace the hierarchies are fresh mounts (they show
/// the container's subtree); without one, the container's own cgroup dirs are bound.
fn mount_cgroups(ctx: &MountContext<'_>, plan: &MountPlan, cgroups: &[CgroupMount]) -> Result<()> {
    let dest = plan.destination.as_path();
    let field = plan.field();
    let target = resolve::mkdir_all_open(ctx.rootfd, dest, Kind::Dir)?;
    let attrs = plan.attrs.set | plan.attrs.rec_set | attr::NOSUID | attr::NODEV | attr::NOEXEC;
    if let [only] = cgroups {
        if only.fstype == "cgroup2" {
            let tree = cgroup_tree(ctx, only, attrs, &field)?;
            return attach(&tree, &target)
                .ctx(|| format!("{field}: attaching cgroup2 at {}", dest.display()));
        }
    }
    // v1: a tmpfs to hold the hierarchies; read-only at the end if asked.
    let tmp = fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC)
        .ctx(|| format!("{field}: tmpfs for cgroups"))?;
    fsconfig_set_string(tmp.as_fd(), "mode", "755").ctx(|| format!("{field}: tmpfs mode"))?;
    fsconfig_create(tmp.as_fd()).ctx(|| format!("{field}: tmpfs for cgroups"))?;
    let tmpfs = fsmount(
        tmp.as_fd(),
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_NOSUID
            | MountAttrFlags::MOUNT_ATTR_NODEV
            | MountAttrFlags::MOUNT_ATTR_NOEXEC,
    )
    .ctx(|| format!("{field}: tmpfs for cgroups"))?;
    attach(&tmpfs, &target).ctx(|| format!("{field}: attaching tmpfs at {}", dest.display()))?;
    let dirfd = resolve::open_in_root(ctx.rootfd, dest, OFlags::PATH | OFlags::DIRECTORY)
        .ctx(|| format!("{field}: reopening {}", dest.display()))?;
    for cg in cgroups {
        rustix::fs::mkdirat(&dirfd, cg.dir.as_str(), Mode::from_raw_mode(0o755))
            .ctx(|| format!("{field}: mkdir {}", cg.dir))?;
        let sub = rustix::fs::openat(
            &dirfd,
            cg.dir.as_str(),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| format!("{field}: open {}", cg.dir))?;
        let tree = cgroup_tree(ctx, cg, attrs, &field)?;
        attach(&tree, &sub).ctx(|| {
            format!(
                "{field}: attaching {} at {}/{}",
                cg.fstype,
                dest.display(),
                cg.dir
            )
        })?;
        for (name, to) in &cg.symlinks {
            match rustix::fs::symlinkat(to.as_str(), &dirfd, name.as_str()) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(e).ctx(|| format!("{field}: symlink {name} -> {to}")),
            }
        }
    }
    if plan.readonly() {
        sys::mount_setattr(tmpfs.as_fd(), false, attr::RDONLY, 0, 0)
            .ctx(|| format!("{field}: making {} read-only", dest.display()))?;
    }
    Ok(())
}

fn cgroup_tree(
    ctx: &MountContext<'_>,
    cg: &CgroupMount,
    attrs: u64,
    field: &str,
) -> Result<OwnedFd> {
    if ctx.cgroupns {
        let fs = fsopen(cg.fstype.as_str(), FsOpenFlags::FSOPEN_CLOEXEC)
            .ctx(|| format!("{field}: opening {}", cg.fstype))?;
        for o in cg.options.split(',').filter(|o| !o.is_empty()) {
            let r = match o.split_once('=') {
                Some((k, v)) => fsconfig_set_string(fs.as_fd(), k, v),
                None => fsconfig_set_flag(fs.as_fd(), o),
            };
            r.ctx(|| format!("{field}: cgroup option {o}"))?;
        }
        fsconfig_create(fs.as_fd())
            .ctx(|| format!("{field}: creating {} ({})", cg.fstype, cg.options))?;
        return fsmount(
            fs.as_fd(),
            FsMountFlags::FSMOUNT_CLOEXEC,
            MountAttrFlags::from_bits_retain(attrs as u32),
        )
        .ctx(|| format!("{field}: mounting {} ({})", cg.fstype, cg.options));
    }
    let tree = open_tree(
        rustix::fs::CWD,
        &cg.host_dir,
        OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )
    .ctx(|| format!("{field}: binding {}", cg.host_dir.display()))?;
    sys::mount_setattr(tree.as_fd(), false, attrs, 0, 0)
        .ctx(|| format!("{field}: options of {}", cg.host_dir.display()))?;
    Ok(tree)
}

/// Copy the contents of directory `from` (an O_PATH fd) into the detached mount `to`.
fn copy_tree(from: &OwnedFd, to: &OwnedFd) -> std::io::Result<()> {
    let src = rustix::fs::openat(
        from,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let st = rustix::fs::fstat(&src)?;
    // `to` is fsmount's O_PATH fd, which fchmod/fchown refuse (EBADF): reopen the root.
    let to = &rustix::fs::openat(
        to,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    rustix::fs::fchmod(to, Mode::from_raw_mode(st.st_mode & 0o7777))?;
    let _ = rustix::fs::fchown(
        to,
        Some(rustix::fs::Uid::from_raw(st.st_uid)),
        Some(rustix::fs::Gid::from_raw(st.st_gid)),
    );
    copy_dir_contents(&src, to)
}

fn copy_dir_contents(src: &OwnedFd, dst: &OwnedFd) -> std::io::Result<()> {
    use rustix::fs::{AtFlags, FileType};
    let dir = rustix::fs::Dir::read_from(src)?;
    for ent in dir {
        let ent = ent?;
        let name = ent.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let st = rustix::fs::statat(src, name, AtFlags::SYMLINK_NOFOLLOW)?;
        let mode = Mode::from_raw_mode(st.st_mode & 0o7777);
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                rustix::fs::mkdirat(dst, name, mode)?;
                let s = rustix::fs::openat(
                    src,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let d = rustix::fs::openat(
                    dst,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                copy_dir_contents(&s, &d)?;
            }
            FileType::RegularFile => {
                let s = rustix::fs::openat(
                    src,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let d = rustix::fs::openat(
                    dst,
                    name,
                    OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
                    mode,
                )?;
                let mut sf = std::fs::File::from(s);
                let mut df = std::fs::File::from(d);
                std::io::copy(&mut sf, &mut df)?;
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(src, name, Vec::new())?;
                rustix::fs::symlinkat(target.as_c_str(), dst, name)?;
            }
            // Devices, fifos and sockets are not copied up.
            _ => continue,
        }
        let _ = rustix::fs::chownat(
            dst,
            name,
            Some(rustix::fs::Uid::from_raw(st.st_uid)),
            Some(rustix::fs::Gid::from_raw(st.st_gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        );
    }
    Ok(())
}

/// The devices every container gets (runtime-spec "Default Devices").
pub fn default_devices() -> Vec<(&'static str, u64, u64)> {
    vec![
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
}

/// Create the default devices, the spec's devices and the /dev symlinks.
pub fn setup_dev(ctx: &MountContext<'_>, devices: &[LinuxDevice]) -> Result<()> {
    let mut all: Vec<(PathBuf, LinuxDeviceType, u64, u64, u32, u32, u32)> = Vec::new();
    for (name, maj, min) in default_devices() {
        let path = PathBuf::from("/dev").join(name);
        if devices.iter().any(|d| d.path() == &path) {
            continue;
        }
        all.push((path, LinuxDeviceType::C, maj, min, 0o666, 0, 0));
    }
    for d in devices {
        all.push((
            d.path().clone(),
            d.typ(),
            d.major() as u64,
            d.minor() as u64,
            d.file_mode().unwrap_or(0o666),
            d.uid().unwrap_or(0),
            d.gid().unwrap_or(0),
        ));
    }
    for (path, typ, maj, min, mode, uid, gid) in all {
        make_device(ctx, &path, typ, maj, min, mode, uid, gid)?;
    }
    let dev = resolve::mkdir_all_open(ctx.rootfd, Path::new("/dev"), Kind::Dir)?;
    let links = [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ];
    for (name, to) in links {
        match rustix::fs::symlinkat(to, &dev, name) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => {
                return Err(e).ctx(|| format!("creating /dev/{name} -> {to} in the container"))
            }
        }
    }
    if Path::new("/proc/kcore").exists() {
        let _ = rustix::fs::symlinkat("/proc/kcore", &dev, "core");
    }
    // /dev/ptmx: the devpts instance's ptmx, when /dev/pts is mounted.
    let has_pts = resolve::open_path(ctx.rootfd, Path::new("/dev/pts/ptmx")).is_ok();
    if has_pts {
        match rustix::fs::unlinkat(&dev, "ptmx", rustix::fs::AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return Err(e).ctx(|| "removing /dev/ptmx in the container".to_string()),
        }
        rustix::fs::symlinkat("pts/ptmx", &dev, "ptmx")
            .ctx(|| "creating /dev/ptmx -> pts/ptmx".to_string())?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn make_device(
    ctx: &MountContext<'_>,
    path: &Path,
    typ: LinuxDeviceType,
    maj: u64,
    min: u64,
    mode: u32,
    uid: u32,
    gid: u32,
) -> Result<()> {
    let shown = || format!("creating device {} in the container", path.display());
    let parent_path = path.parent().unwrap_or(Path::new("/"));
    let name = path.file_name().ok_or_else(|| {
        Error::spec(
            "linux.devices",
            format!("{} has no file name", path.display()),
        )
    })?;
    let parent = resolve::mkdir_all_open(ctx.rootfd, parent_path, Kind::Dir)?;
    let ftype = match typ {
        LinuxDeviceType::C | LinuxDeviceType::U => rustix::fs::FileType::CharacterDevice,
        LinuxDeviceType::B => rustix::fs::FileType::BlockDevice,
        LinuxDeviceType::P => rustix::fs::FileType::Fifo,
        LinuxDeviceType::A => {
            return Err(Error::spec(
                "linux.devices",
                format!(
                    "{}: type \"a\" is only valid in linux.resources.devices",
                    path.display()
                ),
            ))
        }
    };
    match rustix::fs::unlinkat(&parent, name, rustix::fs::AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => {}
        Err(e) => return Err(e).ctx(shown),
    }
    if ctx.userns && ftype != rustix::fs::FileType::Fifo {
        // mknod is not allowed in a user namespace: bind the host's node instead.
        let host = Path::new("/dev").join(
            resolve::relative(path)
                .strip_prefix("dev")
                .unwrap_or(resolve::relative(path)),
        );
        rustix::fs::openat(
            &parent,
            name,
            OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .ctx(shown)?;
        let target = rustix::fs::openat(
            &parent,
            name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ctx(shown)?;
        let tree = open_tree(
            rustix::fs::CWD,
            &host,
            OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
        )
        .ctx(|| {
            format!(
                "binding host device {} (a user namespace cannot mknod)",
                host.display()
            )
        })?;
        verify_device(&tree, ftype, maj, min)
            .map_err(|m| Error::Init(format!("{}: {m}", host.display())))?;
        attach(&tree, &target).ctx(shown)?;
        return Ok(());
    }
    let dev = rustix::fs::makedev(maj as u32, min as u32);
    rustix::fs::mknodat(
        &parent,
        name,
        ftype,
        Mode::from_raw_mode(mode & 0o7777),
        dev,
    )
    .ctx(shown)?;
    rustix::fs::chownat(
        &parent,
        name,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .ctx(shown)?;
    Ok(())
}

/// Check that `fd` is the device node we expect (never a symlink, file or other device).
pub fn verify_device(
    fd: impl AsFd,
    ftype: rustix::fs::FileType,
    maj: u64,
    min: u64,
) -> std::result::Result<(), String> {
    let st = rustix::fs::fstat(fd).map_err(|e| e.to_string())?;
    let t = rustix::fs::FileType::from_raw_mode(st.st_mode);
    let (ma, mi) = (
        rustix::fs::major(st.st_rdev) as u64,
        rustix::fs::minor(st.st_rdev) as u64,
    );
    if t != ftype || ma != maj || mi != min {
        return Err(format!(
            "is not the expected device {maj}:{min} (found {t:?} {ma}:{mi})"
        ));
    }
    Ok(())
}

/// An fd of the host's /dev/null, verified to be the real character device 1:3. Opened
/// before pivot_root and used to mask files.
pub fn open_dev_null() -> Result<OwnedFd> {
    let fd = rustix::fs::open(
        "/dev/null",
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "opening the host's /dev/null".to_string())?;
    verify_device(&fd, rustix::fs::FileType::CharacterDevice, 1, 3)
        .map_err(|m| Error::Init(format!("/dev/null {m}; refusing to mask paths with it")))?;
    Ok(fd)
}

/// Hide each path: a directory gets an empty read-only tmpfs, anything else /dev/null.
pub fn mask_paths(root: BorrowedFd<'_>, paths: &[String], dev_null: &OwnedFd) -> Result<()> {
    for p in paths {
        let target = match resolve::open_path(root, Path::new(p)) {
            Ok(fd) => fd,
            Err(Errno::NOENT) | Err(Errno::NOTDIR) => continue,
            Err(e) => return Err(e).ctx(|| format!("linux.maskedPaths: resolving {p}")),
        };
        let tree = if resolve::is_dir(&target) {
            let fs = fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC)
                .ctx(|| format!("linux.maskedPaths: tmpfs for {p}"))?;
            fsconfig_set_string(fs.as_fd(), "size", "0")
                .ctx(|| format!("linux.maskedPaths: tmpfs for {p}"))?;
            fsconfig_create(fs.as_fd()).ctx(|| format!("linux.maskedPaths: tmpfs for {p}"))?;
            fsmount(
                fs.as_fd(),
                FsMountFlags::FSMOUNT_CLOEXEC,
                MountAttrFlags::MOUNT_ATTR_RDONLY,
            )
            .ctx(|| format!("linux.maskedPaths: tmpfs for {p}"))?
        } else {
            open_tree(
                dev_null,
                "",
                OpenTreeFlags::OPEN_TREE_CLONE
                    | OpenTreeFlags::OPEN_TREE_CLOEXEC
                    | OpenTreeFlags::AT_EMPTY_PATH,
            )
            .ctx(|| format!("linux.maskedPaths: binding /dev/null for {p}"))?
        };
        attach(&tree, &target).ctx(|| format!("linux.maskedPaths: masking {p}"))?;
    }
    Ok(())
}

/// Make each path a read-only bind of itself (recursively).
pub fn readonly_paths(root: BorrowedFd<'_>, paths: &[String]) -> Result<()> {
    for p in paths {
        let target = match resolve::open_path(root, Path::new(p)) {
            Ok(fd) => fd,
            Err(Errno::NOENT) | Err(Errno::NOTDIR) => continue,
            Err(e) => return Err(e).ctx(|| format!("linux.readonlyPaths: resolving {p}")),
        };
        let tree = open_tree(
            &target,
            "",
            OpenTreeFlags::OPEN_TREE_CLONE
                | OpenTreeFlags::OPEN_TREE_CLOEXEC
                | OpenTreeFlags::AT_EMPTY_PATH
                | OpenTreeFlags::AT_RECURSIVE,
        )
        .ctx(|| format!("linux.readonlyPaths: binding {p}"))?;
        sys::mount_setattr(
            tree.as_fd(),
            true,
            attr::RDONLY | attr::NOSUID | attr::NODEV,
            0,
            0,
        )
        .ctx(|| format!("linux.readonlyPaths: making {p} read-only"))?;
        attach(&tree, &target).ctx(|| format!("linux.readonlyPaths: attaching {p}"))?;
    }
    Ok(())
}

/// Switch the root to the rootfs: pivot_root, then detach the old root.
pub fn pivot(rootfd: &OwnedFd) -> Result<()> {
    rustix::process::fchdir(rootfd).ctx(|| "entering the rootfs".to_string())?;
    rustix::process::pivot_root(".", ".").ctx(|| "pivot_root into the rootfs".to_string())?;
    // The old root is now stacked on top of "."; detach it.
    rustix::mount::unmount(".", UnmountFlags::DETACH)
        .ctx(|| "detaching the old root after pivot_root".to_string())?;
    rustix::process::chdir("/").ctx(|| "chdir / after pivot_root".to_string())
}

/// --no-pivot: move the rootfs mount over / and chroot into it (weaker: the old root stays
/// reachable for a process with CAP_SYS_CHROOT).
pub fn move_and_chroot(rootfs: &Path) -> Result<()> {
    rustix::process::chdir(rootfs).ctx(|| format!("entering {}", rootfs.display()))?;
    rustix::mount::mount_move(".", "/")
        .ctx(|| "moving the rootfs over / (--no-pivot)".to_string())?;
    rustix::process::chroot(".").ctx(|| "chroot into the rootfs (--no-pivot)".to_string())?;
    rustix::process::chdir("/").ctx(|| "chdir / after chroot".to_string())
}

/// After the switch: make / read-only (root.readonly) and set rootfsPropagation.
pub fn finish_root(readonly: bool, propagation: Option<(u64, bool)>) -> Result<()> {
    let root = rustix::fs::open(
        "/",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "opening /".to_string())?;
    if readonly {
        sys::mount_setattr(root.as_fd(), false, attr::RDONLY, 0, 0)
            .ctx(|| "root.readonly: making / read-only".to_string())?;
    }
    if let Some((flag, recursive)) = propagation {
        sys::mount_setattr(root.as_fd(), recursive, 0, 0, flag)
            .ctx(|| "linux.rootfsPropagation".to_string())?;
    }
    Ok(())
}
