//! Where the friendly command's root filesystem comes from: a directory, a tarball unpacked
//! once into a cache under the state root, or the host's own /usr (read-only) when none is
//! given. The container always writes to a private overlay (or tmpfs), so the source stays
//! untouched and nothing is left on the host: every mount made here lives in the runtime's
//! own private mount namespace and disappears with it.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use rustix::mount::{mount, mount_change, MountFlags, MountPropagationFlags};
use serde_json::{json, Value};

/// The prepared root: its path, and extra mounts for the spec (the host-/usr default).
pub struct Root {
    pub path: PathBuf,
    pub mounts: Vec<Value>,
}

/// Move this process into a private mount namespace with a tmpfs scratch area.
pub fn private_scratch(state_root: &Path) -> Result<PathBuf> {
    let scratch = state_root.join(".scratch");
    fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    // SAFETY: a new mount namespace for this single-threaded process; it changes which mounts
    // we see, not any memory or fd we hold.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS) }
        .context("creating a private mount namespace")?;
    mount_change(
        "/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )
    .context("making mounts private")?;
    mount(
        "tmpfs",
        &scratch,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV,
        c"mode=0700",
    )
    .context("mounting the scratch tmpfs")?;
    Ok(scratch)
}

/// Prepare the root from `--rootfs` (None: the host's /usr).
pub fn prepare(source: Option<&Path>, state_root: &Path, scratch: &Path) -> Result<Root> {
    match source {
        None => host_root(scratch),
        Some(p) => {
            let meta = fs::metadata(p)
                .with_context(|| format!("--rootfs {}: cannot read it", p.display()))?;
            let lower = if meta.is_dir() {
                fs::canonicalize(p)?
            } else if meta.is_file() {
                unpack_cached(p, state_root)?
            } else {
                bail!(
                    "--rootfs {}: neither a directory nor a tarball",
                    p.display()
                );
            };
            if !lower.join("bin").exists() && !lower.join("usr").exists() {
                bail!(
                    "--rootfs {}: this does not look like a root filesystem (no /bin or /usr in it)",
                    p.display()
                );
            }
            overlay(&lower, scratch)
        }
    }
}

fn overlay(lower: &Path, scratch: &Path) -> Result<Root> {
    let (upper, work, merged) = (
        scratch.join("upper"),
        scratch.join("work"),
        scratch.join("merged"),
    );
    for d in [&upper, &work, &merged] {
        fs::create_dir_all(d)?;
    }
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    if lower.to_string_lossy().contains([',', ':']) {
        bail!(
            "--rootfs {}: overlayfs cannot use a path containing ',' or ':'",
            lower.display()
        );
    }
    let data = std::ffi::CString::new(data)?;
    mount(
        "overlay",
        &merged,
        "overlay",
        MountFlags::empty(),
        data.as_c_str(),
    )
    .with_context(|| {
        format!(
            "mounting a private writable overlay over {}",
            lower.display()
        )
    })?;
    Ok(Root {
        path: merged,
        mounts: Vec::new(),
    })
}

/// An empty root whose /usr (and /bin, /lib* and /etc essentials) come from the host,
/// read-only.
fn host_root(scratch: &Path) -> Result<Root> {
    let root = scratch.join("root");
    fs::create_dir_all(&root)?;
    for d in [
        "usr", "etc", "tmp", "proc", "sys", "dev", "root", "home", "run", "var", "var/tmp", "mnt",
    ] {
        fs::create_dir_all(root.join(d))?;
    }
    let ro_bind = |src: &str, dst: &str| json!({"destination": dst, "type": "bind", "source": src, "options": ["rbind", "ro", "nosuid", "nodev"]});
    let mut mounts = vec![ro_bind("/usr", "/usr")];
    for d in ["bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
        let host = Path::new("/").join(d);
        match fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() => {
                std::os::unix::fs::symlink(fs::read_link(&host)?, root.join(d))?;
            }
            Ok(m) if m.is_dir() => {
                mounts.push(ro_bind(host.to_str().expect("utf8"), &format!("/{d}")))
            }
            _ => {}
        }
    }
    for f in [
        "passwd",
        "group",
        "hosts",
        "resolv.conf",
        "nsswitch.conf",
        "ld.so.cache",
        "ld.so.conf",
        "ld.so.conf.d",
        "localtime",
        "alternatives",
        "os-release",
        "debian_version",
        "hostname",
        "services",
        "protocols",
        "ssl",
        "terminfo",
    ] {
        let host = Path::new("/etc").join(f);
        if host.exists() {
            mounts.push(ro_bind(host.to_str().expect("utf8"), &format!("/etc/{f}")));
        }
    }
    mounts.push(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]}));
    fs::set_permissions(
        root.join("tmp"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )?;
    Ok(Root { path: root, mounts })
}

/// Unpack `tarball` into `<state root>/images/<key>/rootfs` once; later runs reuse it.
fn unpack_cached(tarball: &Path, state_root: &Path) -> Result<PathBuf> {
    let abs = fs::canonicalize(tarball)?;
    let meta = fs::metadata(&abs)?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (
        abs.as_os_str(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ino(),
    )
        .hash(&mut h);
    let dir = state_root
        .join("images")
        .join(format!("{:016x}", h.finish()));
    let rootfs = dir.join("rootfs");
    if dir.join("complete").exists() {
        return Ok(rootfs);
    }
    let tmp = state_root
        .join("images")
        .join(format!(".unpack-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(tmp.join("rootfs"))?;
    let result = (|| -> Result<()> {
        let mut f = fs::File::open(&abs).with_context(|| format!("opening {}", abs.display()))?;
        let mut magic = [0u8; 6];
        let n = f.read(&mut magic)?;
        drop(f);
        let file = fs::File::open(&abs)?;
        let reader: Box<dyn Read> = match &magic[..n] {
            [0x1f, 0x8b, ..] => Box::new(flate2::read::GzDecoder::new(file)),
            [0xfd, b'7', b'z', b'X', b'Z', 0x00] => Box::new(xz2::read::XzDecoder::new(file)),
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Box::new(zstd::stream::read::Decoder::new(file)?),
            _ => Box::new(file),
        };
        let mut ar = tar::Archive::new(reader);
        ar.set_preserve_permissions(true);
        ar.set_preserve_ownerships(true);
        ar.set_unpack_xattrs(false);
        ar.set_overwrite(true);
        ar.unpack(tmp.join("rootfs")).map_err(|e| {
            anyhow!(
                "--rootfs {}: unpacking failed: {e} (is it a .tar, .tar.gz, .tar.xz or .tar.zst?)",
                tarball.display()
            )
        })?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    fs::write(tmp.join("complete"), abs.to_string_lossy().as_bytes())?;
    let _ = fs::create_dir_all(dir.parent().expect("has parent"));
    match fs::rename(&tmp, &dir) {
        Ok(()) => {}
        // Another run unpacked the same tarball first: use theirs.
        Err(_) if dir.join("complete").exists() => {
            let _ = fs::remove_dir_all(&tmp);
        }
        Err(e) => {
            return Err(e)
                .with_context(|| format!("storing the unpacked rootfs in {}", dir.display()))
        }
    }
    Ok(rootfs)
}
