//! The per-container state directory under the state root (`--root`, default /run/cella).
//!
//! Layout of `<root>/<id>/` (mode 0700):
//! - `state.json`: what `state` reports plus what later commands need (written atomically);
//! - `config.json`: the spec the container was created from (the bundle may change later);
//! - `exec.fifo`: exists while the container is `created`; `start` opens it to release init.
//!
//! Every command that changes a container holds an exclusive flock on its directory, and
//! every reader a shared one.
//!
//! `create` writes `config.json` first, straight to its name (until `state.json` exists the
//! directory is not a container: `delete --force` just removes it), then `state.json` as an
//! unnamed `O_TMPFILE` linked in once complete, so it is whole or absent even if the runtime
//! dies mid-write. Later changes replace `state.json` (or `config.json`) by exchanging a
//! complete temporary file with it: readers see the old or the new file, never a part.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};
use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};

/// The default state root.
pub const DEFAULT_ROOT: &str = "/run/cella";

/// What cella records about a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub oci_version: String,
    pub id: String,
    /// Host pid of the container's init (0 before it exists).
    pub pid: i32,
    /// Start time of that pid, to detect pid reuse.
    pub pid_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339 creation time.
    pub created: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// The resolved cgroup path (e.g. /cella/web).
    pub cgroup_path: String,
    /// Cgroup directories cella created (removed by delete).
    #[serde(default)]
    pub cgroup_created: Vec<PathBuf>,
}

/// The state root directory.
#[derive(Debug, Clone)]
pub struct StateRoot {
    path: PathBuf,
}

impl StateRoot {
    /// Use `path` as the root (created with mode 0700 when needed).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StateRoot { path: path.into() }
    }

    /// The root's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn ensure(&self) -> Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.path)
            .ctx(|| format!("creating state root {}", self.path.display()))
    }

    /// The directory of container `id` (which must be validated).
    pub fn dir_of(&self, id: &str) -> PathBuf {
        self.path.join(id)
    }

    /// Create the directory for a new container and lock it. Fails if it exists.
    pub fn create(&self, id: &str) -> Result<ContainerDir> {
        crate::id::validate(id)?;
        self.ensure()?;
        let dir = self.dir_of(id);
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::Exists(id.to_string()))
            }
            Err(e) => return Err(e).ctx(|| format!("creating state dir {}", dir.display())),
        }
        let d = ContainerDir::lock(id, dir.clone());
        if d.is_err() {
            let _ = fs::remove_dir_all(&dir);
        }
        d
    }

    /// Open and lock the directory of an existing container.
    pub fn open(&self, id: &str) -> Result<ContainerDir> {
        crate::id::validate(id)?;
        let dir = self.dir_of(id);
        if !dir.join("state.json").exists() {
            return Err(Error::NotFound(id.to_string()));
        }
        ContainerDir::lock(id, dir)
    }

    /// Open the directory of an existing container with a shared lock (for reading: waits
    /// while another command changes it).
    pub fn open_shared(&self, id: &str) -> Result<ContainerDir> {
        crate::id::validate(id)?;
        let dir = self.dir_of(id);
        if !dir.join("state.json").exists() {
            return Err(Error::NotFound(id.to_string()));
        }
        ContainerDir::lock_with(id, dir, FlockOperation::LockShared)
    }

    /// Ids of all containers under the root, sorted.
    pub fn list(&self) -> Result<Vec<String>> {
        let rd = match fs::read_dir(&self.path) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).ctx(|| format!("reading state root {}", self.path.display())),
        };
        let mut ids: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("state.json").exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|id| crate::id::validate(id).is_ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

/// A locked container state directory.
#[derive(Debug)]
pub struct ContainerDir {
    pub id: String,
    pub path: PathBuf,
    _lock: OwnedFd,
}

impl ContainerDir {
    fn lock(id: &str, path: PathBuf) -> Result<ContainerDir> {
        Self::lock_with(id, path, FlockOperation::LockExclusive)
    }

    fn lock_with(id: &str, path: PathBuf, op: FlockOperation) -> Result<ContainerDir> {
        let fd = rustix::fs::open(
            &path,
            rustix::fs::OFlags::RDONLY
                | rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| match e {
            rustix::io::Errno::NOENT => Error::NotFound(id.to_string()),
            e => Error::Io {
                context: format!("opening state dir {}", path.display()),
                source: e.into(),
            },
        })?;
        flock(fd.as_fd(), op).ctx(|| format!("locking state dir {}", path.display()))?;
        Ok(ContainerDir {
            id: id.to_string(),
            path,
            _lock: fd,
        })
    }

    /// The raw fd holding the lock (the container init closes it at once).
    pub fn lock_raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self._lock.as_raw_fd()
    }

    /// Path of the exec fifo.
    pub fn fifo_path(&self) -> PathBuf {
        self.path.join("exec.fifo")
    }

    /// Read state.json.
    pub fn read(&self) -> Result<Record> {
        let p = self.path.join("state.json");
        let text = fs::read_to_string(&p).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound(self.id.clone()),
            _ => Error::Io {
                context: format!("reading {}", p.display()),
                source: e,
            },
        })?;
        serde_json::from_str(&text).map_err(|e| Error::Config {
            path: p,
            message: format!("corrupt state file: {e}"),
        })
    }

    /// Write the first state.json of a new container: it appears complete or not at all.
    pub fn write_new(&self, r: &Record) -> Result<()> {
        let json = serde_json::to_vec(r).expect("state serialises");
        create_atomic(&self.path.join("state.json"), &json)
    }

    /// Replace state.json atomically.
    pub fn write(&self, r: &Record) -> Result<()> {
        let json = serde_json::to_vec(r).expect("state serialises");
        replace_atomic(&self.path.join("state.json"), &json)
    }

    /// Save the spec of a new container, before its state.json exists: `source` is the text
    /// it was parsed from (the bundle's config.json as read), saved as it is; without it the
    /// spec is serialised.
    pub fn create_config(
        &self,
        spec: &oci_spec::runtime::Spec,
        source: Option<&str>,
    ) -> Result<()> {
        let p = self.path.join("config.json");
        let json;
        let data = match source {
            Some(text) => text.as_bytes(),
            None => {
                json = serde_json::to_vec(spec).expect("spec serialises");
                &json
            }
        };
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&p)
            .ctx(|| format!("writing {}", p.display()))?;
        f.write_all(data).ctx(|| format!("writing {}", p.display()))
    }

    /// Replace the saved spec atomically (`update`).
    pub fn write_config(&self, spec: &oci_spec::runtime::Spec) -> Result<()> {
        let json = serde_json::to_vec(spec).expect("spec serialises");
        replace_atomic(&self.path.join("config.json"), &json)
    }

    /// Load the saved spec.
    pub fn read_config(&self) -> Result<oci_spec::runtime::Spec> {
        let p = self.path.join("config.json");
        let text = fs::read_to_string(&p).ctx(|| format!("reading {}", p.display()))?;
        crate::spec::parse(&text, &p)
    }

    /// Remove the directory (the lock goes with it).
    pub fn remove(self) -> Result<()> {
        fs::remove_dir_all(&self.path).ctx(|| format!("removing state dir {}", self.path.display()))
    }
}

/// Write `data` to `path` through a temporary file and rename, so readers never see half a file.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = write_tmp(path, data)?;
    fs::rename(&tmp, path).ctx(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

/// Write `data` to `path`'s temporary sibling (`.tmp`); returns its path.
fn write_tmp(path: &Path, data: &[u8]) -> Result<PathBuf> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(&tmp)
        .ctx(|| format!("writing {}", tmp.display()))?;
    f.write_all(data)
        .ctx(|| format!("writing {}", tmp.display()))?;
    Ok(tmp)
}

/// Create `path` (which does not exist) with `data`, complete or not at all: an unnamed
/// `O_TMPFILE` in its directory, linked under its name once written (no rename, no
/// temporary name left behind by a crash). Where O_TMPFILE or linking an fd is not available
/// (a filesystem without it; linkat of an fd needs CAP_DAC_READ_SEARCH), through a
/// temporary file and rename.
pub fn create_atomic(path: &Path, data: &[u8]) -> Result<()> {
    use rustix::fs::{linkat, open, AtFlags, Mode, OFlags, CWD};
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let linked = open(
        dir,
        OFlags::TMPFILE | OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .ok()
    .map(fs::File::from)
    .is_some_and(|mut f| {
        f.write_all(data).is_ok() && linkat(&f, "", CWD, path, AtFlags::EMPTY_PATH).is_ok()
    });
    if linked {
        return Ok(());
    }
    write_atomic(path, data)
}

/// Replace the existing `path` with `data` atomically: a complete temporary file is
/// exchanged with it (renameat2 RENAME_EXCHANGE) and the old one, now under the temporary
/// name, unlinked. Unlike a rename over the file, this does not make ext4 flush the new
/// file's data (auto_da_alloc, ~35 µs per replace here). Falls back to a rename where the
/// filesystem cannot exchange (or `path` does not exist).
pub fn replace_atomic(path: &Path, data: &[u8]) -> Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    let tmp = write_tmp(path, data)?;
    if renameat_with(CWD, &tmp, CWD, path, RenameFlags::EXCHANGE).is_ok() {
        // The old content, no longer named by `path`; a leftover would go with the dir.
        let _ = fs::remove_file(&tmp);
        return Ok(());
    }
    fs::rename(&tmp, path).ctx(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

/// Now as an RFC 3339 UTC timestamp with nanoseconds (as runc reports `created`).
pub fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs() as i64, now.subsec_nanos())
}

/// Format seconds since the epoch as RFC 3339 UTC.
pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let base = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    if nanos == 0 {
        format!("{base}Z")
    } else {
        format!("{base}.{nanos:09}Z")
    }
}

/// Days since 1970-01-01 to a (year, month, day) civil date.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(rfc3339(1_796_000_000, 0), "2026-11-30T00:53:20Z");
    }

    #[test]
    fn create_lock_list_remove() {
        let tmp = tempfile::tempdir().unwrap();
        let root = StateRoot::new(tmp.path().join("root"));
        let d = root.create("c1").unwrap();
        assert!(matches!(root.create("c1"), Err(Error::Exists(_))));
        let rec = Record {
            oci_version: "1.2.0".into(),
            id: "c1".into(),
            pid: 1,
            pid_start_time: 2,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: rfc3339_now(),
            annotations: BTreeMap::new(),
            cgroup_path: "/cella/c1".into(),
            cgroup_created: vec![],
        };
        d.write_new(&rec).unwrap();
        assert_eq!(d.read().unwrap().pid, 1);
        let mut rec2 = rec.clone();
        rec2.pid = 7;
        d.write(&rec2).unwrap();
        assert_eq!(d.read().unwrap().pid, 7);
        let names: Vec<_> = fs::read_dir(&d.path)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["state.json"], "no temporary file is left");
        assert_eq!(root.list().unwrap(), vec!["c1".to_string()]);
        d.remove().unwrap();
        assert!(matches!(root.open("c1"), Err(Error::NotFound(_))));
        assert!(root.open("../etc").is_err());
    }
}
