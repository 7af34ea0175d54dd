//! `linux.cgroupsPath` → the cgroup directory in each hierarchy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::mountinfo::{own_cgroups, CgroupMount};
use crate::Error;

/// A validated cgroup path.
///
/// Absolute paths (`/a/b`) are taken from the root of every hierarchy.
/// Relative paths (`a/b`) are taken below the cgroup the runtime itself is
/// in, separately in each hierarchy (as runc does); the runtime's own
/// cgroups are captured when the path is resolved, so a serialized
/// `CgroupPath` still points at the same directories from a later command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupPath {
    spec: String,
    /// For relative paths: `/proc/self/cgroup` at resolve time.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    own: BTreeMap<String, String>,
    /// Resolved from an absent `cgroupsPath` (`/cella/<id>`): only `create` uses it.
    #[serde(skip)]
    default: bool,
}

fn invalid(path: &str, reason: impl Into<String>) -> Error {
    Error::InvalidPath {
        path: path.into(),
        reason: reason.into(),
    }
}

/// Check the components of a cgroup path (without its leading '/').
fn check_components(whole: &str, rel: &str) -> Result<(), Error> {
    if rel.is_empty() {
        return Err(invalid(
            whole,
            "it names the root cgroup; give a cgroup below it, e.g. \"/cella/<id>\"",
        ));
    }
    for comp in rel.split('/') {
        match comp {
            "" => {
                return Err(invalid(
                    whole,
                    "empty path component (\"//\" or a trailing \"/\")",
                ))
            }
            "." | ".." => {
                return Err(invalid(
                    whole,
                    format!("path component {comp:?} is not allowed"),
                ))
            }
            _ if comp.contains('\0') => return Err(invalid(whole, "contains a NUL byte")),
            _ => {}
        }
    }
    Ok(())
}

impl CgroupPath {
    /// Resolve `linux.cgroupsPath` for `container_id`: `None` gives
    /// `/cella/<container_id>`; relative paths read `/proc/self/cgroup`.
    pub fn resolve(spec_path: Option<&str>, container_id: &str) -> Result<Self, Error> {
        let needs_own = spec_path.is_some_and(|p| !p.starts_with('/'));
        let own = if needs_own {
            own_cgroups()?
        } else {
            BTreeMap::new()
        };
        Self::resolve_with_own(spec_path, container_id, own)
    }

    /// Like [`CgroupPath::resolve`], with the runtime's own cgroups given
    /// (the parsed `/proc/self/cgroup`; see [`crate::mountinfo::parse_proc_cgroup`]).
    pub fn resolve_with_own(
        spec_path: Option<&str>,
        container_id: &str,
        own: BTreeMap<String, String>,
    ) -> Result<Self, Error> {
        let Some(spec) = spec_path else {
            let default = format!("/cella/{container_id}");
            if container_id.is_empty() || container_id.contains('/') {
                return Err(invalid(
                    &default,
                    format!("container id {container_id:?} cannot be used as a cgroup name"),
                ));
            }
            check_components(&default, &default[1..])?;
            return Ok(CgroupPath {
                spec: default,
                own: BTreeMap::new(),
                default: true,
            });
        };
        if spec.is_empty() {
            return Err(invalid(
                spec,
                "it is empty; leave it out to get the default /cella/<id>",
            ));
        }
        if let Some(rel) = spec.strip_prefix('/') {
            check_components(spec, rel)?;
            return Ok(CgroupPath {
                spec: spec.into(),
                own: BTreeMap::new(),
                default: false,
            });
        }
        if spec.split(':').count() == 3 {
            return Err(Error::SystemdUnavailable { path: spec.into() });
        }
        check_components(spec, spec)?;
        Ok(CgroupPath {
            spec: spec.into(),
            own,
            default: false,
        })
    }

    /// Is this the default path `/cella/<id>` (no `cgroupsPath` in the spec)? Its parent
    /// `/cella` is the runtime's own: created when missing and kept between containers
    /// (removing it when empty only made the next container create it again), while the
    /// parents an explicit `cgroupsPath` needed are removed with the container when empty.
    pub fn is_default(&self) -> bool {
        self.default
    }

    /// The path as given (absolute `/a/b` or relative `a/b`).
    pub fn as_str(&self) -> &str {
        &self.spec
    }

    /// Is this path relative to the runtime's own cgroup?
    pub fn is_relative(&self) -> bool {
        !self.spec.starts_with('/')
    }

    /// The cgroup path inside the hierarchy of `mount` (always absolute,
    /// e.g. `/process_api/22/a/b` for a relative `a/b`).
    pub fn in_hierarchy(&self, mount: &CgroupMount) -> Result<String, Error> {
        if !self.is_relative() {
            return Ok(self.spec.clone());
        }
        let key = mount.proc_key();
        let own = self.own.get(&key).ok_or_else(|| {
            invalid(
                &self.spec,
                format!(
                    "it is relative, but the runtime's own cgroup in hierarchy {:?} is not \
                     listed in /proc/self/cgroup",
                    if key.is_empty() {
                        "cgroup2"
                    } else {
                        key.as_str()
                    }
                ),
            )
        })?;
        let base = own.trim_end_matches('/');
        Ok(format!("{base}/{}", self.spec))
    }

    /// The directory of this cgroup under `mount`.
    pub fn dir_in(&self, mount: &CgroupMount) -> Result<PathBuf, Error> {
        let in_h = self.in_hierarchy(mount)?;
        // Relative paths start from our own cgroup, which is a path in the
        // whole hierarchy; the mount may show only a sub-tree (`root`).
        let visible = if self.is_relative() && mount.root != "/" {
            in_h.strip_prefix(mount.root.trim_end_matches('/'))
                .unwrap_or(&in_h)
                .to_string()
        } else {
            in_h
        };
        Ok(join_below(&mount.mount_point, &visible))
    }
}

/// `base` + `/a/b` (the path's components, never escaping `base`: the
/// components were validated not to be `..`).
pub(crate) fn join_below(base: &Path, path: &str) -> PathBuf {
    let mut out = base.to_path_buf();
    for comp in path.split('/').filter(|c| !c.is_empty()) {
        out.push(comp);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mountinfo::CgroupMount;

    fn own() -> BTreeMap<String, String> {
        [
            ("memory", "/process_api/22"),
            ("cpu", "/"),
            ("", "/user.slice/x.scope"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn default_path() {
        let p = CgroupPath::resolve_with_own(None, "web", BTreeMap::new()).unwrap();
        assert_eq!(p.as_str(), "/cella/web");
        assert!(p.is_default());
        let explicit =
            CgroupPath::resolve_with_own(Some("/cella/web"), "web", BTreeMap::new()).unwrap();
        assert!(!explicit.is_default());
        let mem = CgroupMount::v1("/sys/fs/cgroup/memory", &["memory"]);
        assert_eq!(
            p.dir_in(&mem).unwrap(),
            Path::new("/sys/fs/cgroup/memory/cella/web")
        );
        assert!(CgroupPath::resolve_with_own(None, "a/b", BTreeMap::new()).is_err());
        assert!(CgroupPath::resolve_with_own(None, "..", BTreeMap::new()).is_err());
        assert!(CgroupPath::resolve_with_own(None, "", BTreeMap::new()).is_err());
    }

    #[test]
    fn absolute_path() {
        let p = CgroupPath::resolve_with_own(Some("/a/b"), "x", BTreeMap::new()).unwrap();
        assert!(!p.is_relative());
        let v2 = CgroupMount::v2("/sys/fs/cgroup");
        assert_eq!(p.dir_in(&v2).unwrap(), Path::new("/sys/fs/cgroup/a/b"));
    }

    #[test]
    fn relative_path_per_hierarchy() {
        let p = CgroupPath::resolve_with_own(Some("a/b"), "x", own()).unwrap();
        assert!(p.is_relative());
        let mem = CgroupMount::v1("/sys/fs/cgroup/memory", &["memory"]);
        assert_eq!(
            p.dir_in(&mem).unwrap(),
            Path::new("/sys/fs/cgroup/memory/process_api/22/a/b")
        );
        let cpu = CgroupMount::v1("/sys/fs/cgroup/cpu", &["cpu"]);
        assert_eq!(p.dir_in(&cpu).unwrap(), Path::new("/sys/fs/cgroup/cpu/a/b"));
        let v2 = CgroupMount::v2("/sys/fs/cgroup");
        assert_eq!(
            p.dir_in(&v2).unwrap(),
            Path::new("/sys/fs/cgroup/user.slice/x.scope/a/b")
        );
        // a mount showing only a sub-tree (no cgroup namespace, bind of /user.slice)
        let mut sub = CgroupMount::v2("/sys/fs/cgroup");
        sub.root = "/user.slice".into();
        assert_eq!(
            p.dir_in(&sub).unwrap(),
            Path::new("/sys/fs/cgroup/x.scope/a/b")
        );
        let pids = CgroupMount::v1("/sys/fs/cgroup/pids", &["pids"]);
        let err = p.dir_in(&pids).unwrap_err().to_string();
        assert!(err.contains("\"pids\""), "{err}");
    }

    #[test]
    fn serde_round_trip_keeps_own_cgroups() {
        let p = CgroupPath::resolve_with_own(Some("a/b"), "x", own()).unwrap();
        let json = serde_json::to_string(&p).unwrap();
        let back: CgroupPath = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn rejected_paths() {
        for bad in [
            "/", "", "/a//b", "/a/../b", "a/./b", "/a/", "../x", "/a/b/..",
        ] {
            let err = CgroupPath::resolve_with_own(Some(bad), "x", own()).unwrap_err();
            assert!(matches!(err, Error::InvalidPath { .. }), "{bad}: {err}");
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn systemd_form() {
        let err =
            CgroupPath::resolve_with_own(Some("system.slice:cella:abc"), "x", own()).unwrap_err();
        assert!(matches!(err, Error::SystemdUnavailable { .. }));
        let msg = err.to_string();
        assert!(
            msg.contains("system.slice:cella:abc") && msg.contains("/cella/<id>"),
            "{msg}"
        );
        // a colon inside an absolute path is just a name
        assert!(CgroupPath::resolve_with_own(Some("/a:b:c"), "x", own()).is_ok());
    }
}
