//! The runtime's side of `checkpoint` and `restore` (CRIU does the dumping and restoring;
//! the command line that drives it lives in cella-cli). Here: which mounts CRIU must treat
//! as external, and the state directory and cgroup of a container being restored.

use std::path::{Path, PathBuf};

use cella_cgroups::{CgroupManager, CgroupPath};
use oci_spec::runtime::Spec;

use crate::container::effective_resources;
use crate::error::{Error, Result};
use crate::mounts::{MountKind, MountPlan};
use crate::spec::Config;
use crate::state::{ContainerDir, Record, StateRoot};
use crate::sys;

/// A mount CRIU cannot rebuild from its images: a bind of something outside the container.
/// It is dumped under `key` (the destination) and bound again from `source` at restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalMount {
    pub key: String,
    pub source: PathBuf,
}

/// The spec's bind mounts (sources relative to `bundle` resolved) and the masked files
/// (binds of /dev/null), in spec order.
pub fn external_mounts(spec: &Spec, bundle: &Path) -> Result<Vec<ExternalMount>> {
    let mut out = Vec::new();
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let plan = MountPlan::from_spec(i, m, bundle)?;
        if let MountKind::Bind { .. } = plan.kind {
            let source = plan.source.clone().ok_or_else(|| {
                Error::spec(format!("mounts[{i}].source"), "a bind mount needs a source")
            })?;
            out.push(ExternalMount {
                key: plan.destination.display().to_string(),
                source,
            });
        }
    }
    let masked = spec
        .linux()
        .as_ref()
        .and_then(|l| l.masked_paths().clone())
        .unwrap_or_default();
    for p in masked {
        // Masked directories are empty read-only tmpfs mounts, which CRIU dumps itself;
        // masked files are binds of /dev/null. Which one a path was is decided by the
        // host's /proc, as the init decided it.
        if Path::new(&p).is_dir() {
            continue;
        }
        if Path::new(&p).exists() {
            out.push(ExternalMount {
                key: p.clone(),
                source: PathBuf::from("/dev/null"),
            });
        }
    }
    Ok(out)
}

/// A container being restored: its state directory and cgroup exist, its process not yet.
/// Dropped without [`Restoring::commit`], it removes both.
pub struct Restoring {
    dir: Option<ContainerDir>,
    cgroup: Box<dyn CgroupManager>,
    record: Record,
}

impl Restoring {
    /// Create the state directory and the cgroup (with the spec's limits) for `id`.
    pub fn prepare(root: &StateRoot, id: &str, config: &Config) -> Result<Restoring> {
        let spec_ = &config.spec;
        let linux = spec_.linux().as_ref().expect("validated");
        let cg_path =
            CgroupPath::resolve(linux.cgroups_path().as_ref().and_then(|p| p.to_str()), id)?;
        let (mounts, layout) = crate::container::host_cgroups()?;
        let cgroup = cella_cgroups::open_with(mounts, layout, &cg_path, Vec::new())?;
        let record = crate::container::new_record(id, config, &cg_path);
        let mut r = Restoring {
            dir: Some(root.create(id)?),
            cgroup,
            record,
        };
        let dir = r.dir.as_ref().expect("set");
        // Recorded before the cgroup exists, so `delete` can clean up after a crash (the
        // same order and files as `create`).
        dir.create_config(spec_, config.source.as_deref())?;
        dir.write_new(&r.record)?;
        r.cgroup.create()?;
        r.record.cgroup_created = r.cgroup.created_dirs();
        if !r.record.cgroup_created.is_empty() {
            dir.write(&r.record)?;
        }
        if let Some(res) = effective_resources(linux) {
            r.cgroup.apply(&res)?;
        }
        Ok(r)
    }

    /// The cgroup path CRIU restores the processes into (`--cgroup-root`).
    pub fn cgroup_path(&self) -> &str {
        &self.record.cgroup_path
    }

    /// CRIU restored the container's init as `pid`: record it; the container is running.
    pub fn commit(mut self, pid: i32) -> Result<()> {
        self.record.pid = pid;
        self.record.pid_start_time = sys::process_start_time(pid).ok_or_else(|| Error::Io {
            context: format!("reading the start time of restored pid {pid}"),
            source: std::io::Error::from_raw_os_error(libc::ESRCH),
        })?;
        let dir = self.dir.take().expect("not committed twice");
        dir.write(&self.record)
    }
}

impl Drop for Restoring {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let _ = self.cgroup.destroy();
            let _ = dir.remove();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_and_masked_files_are_external() {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/etc/hosts", "type": "bind", "source": "/srv/hosts", "options": ["rbind", "ro"]},
                {"destination": "/data", "source": "/srv/data", "options": ["bind"]},
                {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}
            ],
            "linux": {"maskedPaths": ["/proc/self/status", "/proc/self", "/no/such/path"]}
        }))
        .unwrap();
        let ext = external_mounts(&spec, Path::new("/b")).unwrap();
        assert_eq!(
            ext,
            vec![
                ExternalMount {
                    key: "/etc/hosts".into(),
                    source: "/srv/hosts".into()
                },
                ExternalMount {
                    key: "/data".into(),
                    source: "/srv/data".into()
                },
                ExternalMount {
                    key: "/proc/self/status".into(),
                    source: "/dev/null".into()
                },
            ]
        );
    }
}
