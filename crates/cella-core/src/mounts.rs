//! Turning a spec mount (type, source, options) into a plan: what to mount and which mount
//! attributes and propagation to apply. Pure logic, unit tested; `rootfs` carries it out.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Mount;

use crate::error::{Error, Result};
use crate::sys::{attr, propagation};

/// How the mount is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A bind mount of a host path (recursive for rbind).
    Bind { recursive: bool },
    /// A new filesystem instance of this type (proc, tmpfs, sysfs, ...).
    Fs { fstype: String },
    /// The container's view of the cgroup hierarchies (`type: cgroup` or `cgroup2`).
    Cgroup,
}

/// Mount attributes to set and clear, on the top mount and (r-variants) on the whole tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attrs {
    pub set: u64,
    pub clr: u64,
    pub rec_set: u64,
    pub rec_clr: u64,
}

/// A spec mount, parsed and checked.
#[derive(Debug, Clone)]
pub struct MountPlan {
    /// Position in the spec's `mounts` (for error messages).
    pub index: usize,
    pub kind: MountKind,
    /// Absolute destination inside the container.
    pub destination: PathBuf,
    /// Source: a host path for binds (resolved against the bundle), a free label otherwise.
    pub source: Option<PathBuf>,
    pub attrs: Attrs,
    /// Propagation flag (MS_SHARED...) and whether it is recursive.
    pub propagation: Option<(u64, bool)>,
    /// Filesystem options passed to the filesystem (key, optional value), in order.
    pub data: Vec<(String, Option<String>)>,
    /// Copy the destination's existing contents into a new tmpfs (podman's `tmpcopyup`).
    pub tmpcopyup: bool,
}

impl MountPlan {
    /// The `mounts[i]` field name, for messages.
    pub fn field(&self) -> String {
        format!("mounts[{}] ({})", self.index, self.destination.display())
    }

    /// Whether the mount should be read-only at its top.
    pub fn readonly(&self) -> bool {
        self.attrs.set & attr::RDONLY != 0
    }

    /// Parse spec mount `i`; relative bind sources are taken relative to `bundle`.
    pub fn from_spec(i: usize, m: &Mount, bundle: &Path) -> Result<MountPlan> {
        let dest = m.destination();
        let field = format!("mounts[{i}] ({})", dest.display());
        if !dest.is_absolute() {
            return Err(Error::spec(
                format!("{field}.destination"),
                format!("{} must be an absolute path", dest.display()),
            ));
        }
        if dest
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(Error::spec(
                format!("{field}.destination"),
                format!("{} must not contain ..", dest.display()),
            ));
        }
        let opts: Vec<String> = m.options().clone().unwrap_or_default();
        let is_bind = opts.iter().any(|o| o == "bind" || o == "rbind");
        let recursive = opts.iter().any(|o| o == "rbind");
        let typ = m.typ().clone().unwrap_or_default();
        let kind = if is_bind || typ == "bind" || typ == "rbind" {
            MountKind::Bind {
                recursive: recursive || typ == "rbind",
            }
        } else if typ == "cgroup" || typ == "cgroup2" {
            MountKind::Cgroup
        } else if typ.is_empty() || typ == "none" {
            return Err(Error::spec(
                format!("{field}.type"),
                "is missing: give a filesystem type, or the \"bind\" option for a bind mount",
            ));
        } else {
            if !filesystem_known(&typ) {
                return Err(Error::spec(format!("{field}.type"), format!("unknown mount type {typ:?}: this kernel has no such filesystem (see /proc/filesystems)")));
            }
            MountKind::Fs {
                fstype: typ.clone(),
            }
        };
        let source = match (&kind, m.source()) {
            (MountKind::Bind { .. }, None) => {
                return Err(Error::spec(
                    format!("{field}.source"),
                    "is missing: a bind mount needs a host path",
                ));
            }
            (MountKind::Bind { .. }, Some(s)) if s.is_relative() => Some(bundle.join(s)),
            (_, s) => s.clone(),
        };
        let mut plan = MountPlan {
            index: i,
            kind,
            destination: dest.clone(),
            source,
            attrs: Attrs::default(),
            propagation: None,
            data: Vec::new(),
            tmpcopyup: false,
        };
        for o in &opts {
            plan.apply_option(o)?;
        }
        if plan.tmpcopyup
            && plan.kind
                != (MountKind::Fs {
                    fstype: "tmpfs".into(),
                })
        {
            return Err(Error::spec(
                format!("{field}.options"),
                "\"tmpcopyup\" only applies to tmpfs mounts",
            ));
        }
        Ok(plan)
    }

    fn apply_option(&mut self, o: &str) -> Result<()> {
        if let Some((set, flag, recursive)) = attr_option(o) {
            let (s, c) = if recursive {
                (&mut self.attrs.rec_set, &mut self.attrs.rec_clr)
            } else {
                (&mut self.attrs.set, &mut self.attrs.clr)
            };
            let base = if recursive { &o[1..] } else { o };
            if matches!(base, "noatime" | "strictatime" | "relatime" | "norelatime") {
                // atime settings replace each other.
                *c |= attr::ATIME_MASK;
                *s &= !attr::ATIME_MASK;
            }
            if set {
                *s |= flag;
                *c &= !flag;
            } else {
                *c |= flag;
                *s &= !flag;
            }
            return Ok(());
        }
        if let Some(p) = propagation_from_name(o) {
            self.propagation = Some(p);
            return Ok(());
        }
        match o {
            "bind" | "rbind" | "defaults" => Ok(()),
            "tmpcopyup" => {
                self.tmpcopyup = true;
                Ok(())
            }
            "idmap" | "ridmap" => Err(Error::Unsupported(format!(
                "{}.options: {o:?}: id-mapped mounts are not supported by cella yet",
                self.field()
            ))),
            _ => match &self.kind {
                MountKind::Bind { .. } | MountKind::Cgroup => Err(Error::spec(
                    format!("{}.options", self.field()),
                    format!(
                        "unknown option {o:?} for a {} mount",
                        if self.kind == MountKind::Cgroup {
                            "cgroup"
                        } else {
                            "bind"
                        }
                    ),
                )),
                MountKind::Fs { .. } => {
                    match o.split_once('=') {
                        Some((k, v)) => self.data.push((k.to_string(), Some(v.to_string()))),
                        None => self.data.push((o.to_string(), None)),
                    }
                    Ok(())
                }
            },
        }
    }
}

/// Mount-attribute options: (true = set / false = clear, flag, recursive). The r-prefixed
/// forms ("rro", "rnosuid", "rrelatime") apply to the whole mount tree.
fn attr_option(o: &str) -> Option<(bool, u64, bool)> {
    if let Some((set, flag)) = plain_attr_option(o) {
        return Some((set, flag, false));
    }
    let (set, flag) = plain_attr_option(o.strip_prefix('r')?)?;
    Some((set, flag, true))
}

fn plain_attr_option(o: &str) -> Option<(bool, u64)> {
    Some(match o {
        "ro" => (true, attr::RDONLY),
        "rw" => (false, attr::RDONLY),
        "nosuid" => (true, attr::NOSUID),
        "suid" => (false, attr::NOSUID),
        "nodev" => (true, attr::NODEV),
        "dev" => (false, attr::NODEV),
        "noexec" => (true, attr::NOEXEC),
        "exec" => (false, attr::NOEXEC),
        "noatime" => (true, attr::NOATIME),
        "atime" => (false, attr::NOATIME),
        "strictatime" => (true, attr::STRICTATIME),
        "relatime" => (true, attr::RELATIME),
        "norelatime" => (true, attr::STRICTATIME),
        "nodiratime" => (true, attr::NODIRATIME),
        "diratime" => (false, attr::NODIRATIME),
        "nosymfollow" => (true, attr::NOSYMFOLLOW),
        "symfollow" => (false, attr::NOSYMFOLLOW),
        _ => return None,
    })
}

/// Propagation option name to (MS_* flag, recursive).
pub fn propagation_from_name(o: &str) -> Option<(u64, bool)> {
    Some(match o {
        "private" => (propagation::PRIVATE, false),
        "rprivate" => (propagation::PRIVATE, true),
        "shared" => (propagation::SHARED, false),
        "rshared" => (propagation::SHARED, true),
        "slave" => (propagation::SLAVE, false),
        "rslave" => (propagation::SLAVE, true),
        "unbindable" => (propagation::UNBINDABLE, false),
        "runbindable" => (propagation::UNBINDABLE, true),
        _ => return None,
    })
}

/// Whether /proc/filesystems lists `fstype`.
fn filesystem_known(fstype: &str) -> bool {
    static FILESYSTEMS: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    match FILESYSTEMS.get_or_init(|| std::fs::read_to_string("/proc/filesystems").ok()) {
        Some(s) => s
            .lines()
            .any(|l| l.split_whitespace().last() == Some(fstype)),
        // Without /proc/filesystems let the kernel decide at mount time.
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(json: &str) -> Result<MountPlan> {
        let m: Mount = serde_json::from_str(json).unwrap();
        MountPlan::from_spec(2, &m, Path::new("/bundle"))
    }

    #[test]
    fn bind_with_flags() {
        let p = plan(r#"{"destination":"/data","type":"bind","source":"vol","options":["rbind","ro","nosuid","nodev","noexec","rprivate"]}"#).unwrap();
        assert_eq!(p.kind, MountKind::Bind { recursive: true });
        assert_eq!(p.source.as_deref(), Some(Path::new("/bundle/vol")));
        assert_eq!(
            p.attrs.set,
            attr::RDONLY | attr::NOSUID | attr::NODEV | attr::NOEXEC
        );
        assert_eq!(p.attrs.rec_set, 0);
        assert_eq!(p.propagation, Some((propagation::PRIVATE, true)));
        assert!(p.data.is_empty());
    }

    #[test]
    fn recursive_attrs() {
        let p = plan(
            r#"{"destination":"/d","source":"/s","options":["rbind","rro","rnosuid","rnoexec"]}"#,
        )
        .unwrap();
        assert_eq!(p.attrs.rec_set, attr::RDONLY | attr::NOSUID | attr::NOEXEC);
        assert_eq!(p.attrs.set, 0);
    }

    #[test]
    fn rw_clears_ro_and_atime_replaces() {
        let p = plan(r#"{"destination":"/d","source":"/s","options":["bind","ro","rw","noatime","relatime"]}"#).unwrap();
        assert_eq!(p.attrs.set & attr::RDONLY, 0);
        assert_eq!(p.attrs.clr & attr::RDONLY, attr::RDONLY);
        assert_eq!(p.attrs.set & attr::ATIME_MASK, attr::RELATIME);
        assert_eq!(p.attrs.clr & attr::ATIME_MASK, attr::ATIME_MASK);
    }

    #[test]
    fn tmpfs_data_options() {
        let p = plan(r#"{"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","strictatime","mode=755","size=65536k"]}"#).unwrap();
        assert_eq!(
            p.kind,
            MountKind::Fs {
                fstype: "tmpfs".into()
            }
        );
        assert_eq!(p.attrs.set, attr::NOSUID | attr::STRICTATIME);
        assert_eq!(
            p.data,
            vec![
                ("mode".into(), Some("755".into())),
                ("size".into(), Some("65536k".into()))
            ]
        );
    }

    #[test]
    fn errors_name_the_field() {
        let e = plan(r#"{"destination":"rel","type":"tmpfs"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("mounts[2] (rel).destination"), "{e}");
        let e = plan(r#"{"destination":"/x","type":"nosuchfs"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("mounts[2] (/x).type") && e.contains("nosuchfs"),
            "{e}"
        );
        let e = plan(r#"{"destination":"/x","source":"/s","options":["bind","frobnicate"]}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("mounts[2] (/x).options") && e.contains("frobnicate"),
            "{e}"
        );
        let e = plan(r#"{"destination":"/x","options":["bind"]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("mounts[2] (/x).source"), "{e}");
        let e = plan(r#"{"destination":"/x/../y","type":"tmpfs"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("must not contain .."), "{e}");
    }
}
