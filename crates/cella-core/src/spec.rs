//! Loading and validating a bundle's config.json.
//!
//! Validation happens once, in the runtime process, before anything is created: a bad
//! config never leaves a state dir, cgroup or process behind. Each rule names the field.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, Result};
use crate::mounts::MountPlan;

/// The OCI runtime-spec version cella implements (what `state` and `features` report).
pub const OCI_VERSION: &str = "1.2.0";

/// A validated spec, with paths resolved against the bundle.
#[derive(Debug, Clone)]
pub struct Config {
    /// The parsed config.json.
    pub spec: Spec,
    /// Absolute bundle directory.
    pub bundle: PathBuf,
    /// Absolute, canonical rootfs directory.
    pub rootfs: PathBuf,
    /// Parsed mounts, in spec order.
    pub mounts: Vec<MountPlan>,
    /// The text `spec` was parsed from (the bundle's config.json), which `create` saves as
    /// the container's copy instead of serialising `spec` again; `None` for a spec built in
    /// memory. `spec` must not be changed when this is set.
    pub(crate) source: Option<String>,
}

/// Parse `text` as a spec. Errors name the JSON path of the offending field.
pub fn parse(text: &str, origin: &Path) -> Result<Spec> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let message = if field == "." || field.is_empty() {
            format!("not a valid OCI runtime config: {inner}")
        } else {
            format!("invalid value for field {field}: {inner}")
        };
        Error::Config {
            path: origin.to_path_buf(),
            message,
        }
    })
}

/// Read `bundle/config.json`, parse and validate it.
pub fn load_bundle(bundle: &Path) -> Result<Config> {
    let bundle = std::path::absolute(bundle).map_err(|e| Error::Io {
        context: format!("bundle path {}", bundle.display()),
        source: e,
    })?;
    let path = bundle.join("config.json");
    let text = fs::read_to_string(&path).map_err(|e| Error::Config {
        path: path.clone(),
        message: format!("cannot read the bundle's config ({e}); is --bundle pointing at the directory that holds config.json?"),
    })?;
    let spec = parse(&text, &path)?;
    let mut config = validate(spec, bundle)?;
    config.source = Some(text);
    Ok(config)
}

/// Validate a parsed spec for `create`/`run`; resolve the rootfs against `bundle`.
pub fn validate(spec: Spec, bundle: PathBuf) -> Result<Config> {
    check_version(spec.version())?;
    let root = spec.root().as_ref().ok_or_else(|| {
        Error::spec(
            "root",
            "is missing: a container needs a root filesystem (root.path)",
        )
    })?;
    if root.path().as_os_str().is_empty() {
        return Err(Error::spec("root.path", "is empty"));
    }
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    let rootfs = fs::canonicalize(&rootfs).map_err(|e| {
        Error::spec(
            "root.path",
            format!(
                "{}: {e} (the root filesystem must be an existing directory)",
                rootfs.display()
            ),
        )
    })?;
    if !rootfs.is_dir() {
        return Err(Error::spec(
            "root.path",
            format!("{} is not a directory", rootfs.display()),
        ));
    }
    if rootfs == Path::new("/") {
        return Err(Error::spec(
            "root.path",
            "is the host's / : refusing to use the host root as a container root",
        ));
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::spec("process", "is missing: nothing to run"))?;
    crate::process::validate(process, "process")?;
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| Error::spec("linux", "is missing: cella runs Linux containers"))?;
    let namespaces = check_namespaces(&spec)?;
    if let Some(h) = spec.hostname() {
        if !h.is_empty() && !namespaces.is_new(LinuxNamespaceType::Uts) {
            return Err(Error::spec(
                "hostname",
                "needs a new uts namespace (linux.namespaces has no \"uts\" without a path)",
            ));
        }
    }
    if let Some(d) = spec.domainname() {
        if !d.is_empty() && !namespaces.is_new(LinuxNamespaceType::Uts) {
            return Err(Error::spec("domainname", "needs a new uts namespace"));
        }
    }
    check_unsupported_linux(linux)?;
    check_sysctl(linux, &namespaces)?;
    check_time_offsets(linux, &namespaces)?;
    check_devices(linux)?;
    check_paths("linux.maskedPaths", linux.masked_paths())?;
    check_paths("linux.readonlyPaths", linux.readonly_paths())?;
    if let Some(p) = linux.rootfs_propagation() {
        crate::mounts::propagation_from_name(p)
            .ok_or_else(|| Error::spec("linux.rootfsPropagation", format!("unknown value {p:?}; use shared, slave, private or unbindable (optionally prefixed with r)")))?;
    }
    if let Some(label) = linux.mount_label() {
        if !label.is_empty() {
            crate::lsm::require_selinux("linux.mountLabel")?;
        }
    }
    if let Some(p) = linux.personality() {
        if let Some(flags) = p.flags() {
            if !flags.is_empty() {
                return Err(Error::spec("linux.personality.flags", format!("{flags:?}: no personality flags are defined by the runtime spec; remove them")));
            }
        }
    }
    let mounts = match spec.mounts() {
        Some(ms) => ms
            .iter()
            .enumerate()
            .map(|(i, m)| MountPlan::from_spec(i, m, &bundle))
            .collect::<Result<Vec<_>>>()?,
        None => Vec::new(),
    };
    if let Some(hooks) = spec.hooks() {
        crate::hooks::validate(hooks)?;
    }
    Ok(Config {
        spec,
        bundle,
        rootfs,
        mounts,
        source: None,
    })
}

/// ociVersion must be a 1.x semantic version.
pub fn check_version(v: &str) -> Result<()> {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    let numeric = parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !numeric {
        return Err(Error::spec(
            "ociVersion",
            format!("{v:?} is not a semantic version like \"1.0.2\""),
        ));
    }
    if parts[0] != "1" {
        return Err(Error::spec(
            "ociVersion",
            format!(
                "{v:?} is not supported: cella implements runtime-spec 1.x (up to {OCI_VERSION})"
            ),
        ));
    }
    Ok(())
}

/// Which namespaces a spec asks for.
#[derive(Debug, Clone, Default)]
pub struct NamespaceSet {
    entries: Vec<(LinuxNamespaceType, Option<PathBuf>)>,
}

impl NamespaceSet {
    /// Whether a fresh namespace of `t` is created.
    pub fn is_new(&self, t: LinuxNamespaceType) -> bool {
        self.entries.iter().any(|(k, p)| *k == t && p.is_none())
    }
    /// Whether the container has its own namespace of `t` (fresh or joined).
    pub fn has(&self, t: LinuxNamespaceType) -> bool {
        self.entries.iter().any(|(k, _)| *k == t)
    }
    /// The path to join for `t`, if any.
    pub fn path(&self, t: LinuxNamespaceType) -> Option<&Path> {
        self.entries
            .iter()
            .find(|(k, _)| *k == t)
            .and_then(|(_, p)| p.as_deref())
    }
    /// All entries.
    pub fn entries(&self) -> &[(LinuxNamespaceType, Option<PathBuf>)] {
        &self.entries
    }
}

/// The spec's namespace name for `t`, as written in config.json.
pub fn ns_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

/// The namespaces of a spec, checked: no duplicates, paths exist, mappings match.
pub fn namespaces(spec: &Spec) -> NamespaceSet {
    let mut set = NamespaceSet::default();
    if let Some(l) = spec.linux() {
        for ns in l.namespaces().iter().flatten() {
            set.entries.push((ns.typ(), ns.path().clone()));
        }
    }
    set
}

fn check_namespaces(spec: &Spec) -> Result<NamespaceSet> {
    let linux = spec.linux().as_ref();
    let mut seen = HashSet::new();
    for (i, ns) in linux
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        let field = format!("linux.namespaces[{i}]");
        if !seen.insert(ns.typ()) {
            return Err(Error::spec(
                field,
                format!("namespace {:?} is listed twice", ns_name(ns.typ())),
            ));
        }
        if let Some(p) = ns.path() {
            if !p.is_absolute() {
                return Err(Error::spec(
                    format!("{field}.path"),
                    format!("{} must be an absolute path", p.display()),
                ));
            }
            if let Err(e) = fs::metadata(p) {
                return Err(Error::spec(
                    format!("{field}.path"),
                    format!("{}: {e}", p.display()),
                ));
            }
        }
    }
    let set = namespaces(spec);
    if !set.has(LinuxNamespaceType::Mount) {
        return Err(Error::spec("linux.namespaces", "has no \"mount\" namespace: cella always builds the root filesystem in a new mount namespace; add {\"type\":\"mount\"}"));
    }
    let has_maps = linux
        .map(|l| {
            l.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
                || l.gid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        })
        .unwrap_or(false);
    if set.is_new(LinuxNamespaceType::User) {
        let l = linux.expect("namespaces imply linux");
        if l.uid_mappings().as_ref().is_none_or(|m| m.is_empty()) {
            return Err(Error::spec(
                "linux.uidMappings",
                "is empty but a new user namespace is requested: give at least one mapping",
            ));
        }
        if l.gid_mappings().as_ref().is_none_or(|m| m.is_empty()) {
            return Err(Error::spec(
                "linux.gidMappings",
                "is empty but a new user namespace is requested: give at least one mapping",
            ));
        }
    } else if has_maps {
        return Err(Error::spec("linux.uidMappings", "mappings are given but no new user namespace is requested: add {\"type\":\"user\"} to linux.namespaces"));
    }
    Ok(set)
}

fn check_unsupported_linux(l: &oci_spec::runtime::Linux) -> Result<()> {
    if l.intel_rdt().is_some() {
        return Err(Error::Unsupported(
            "linux.intelRdt: Intel RDT (resctrl) is not supported by cella; remove the field"
                .into(),
        ));
    }
    if l.memory_policy().is_some() {
        return Err(Error::Unsupported("linux.memoryPolicy: NUMA memory policy is not supported by cella yet; remove the field".into()));
    }
    if l.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
        return Err(Error::Unsupported("linux.netDevices: moving host network devices into the container is not supported by cella yet; remove the field".into()));
    }
    Ok(())
}

/// Sysctls must be namespaced and belong to a namespace the container owns.
fn check_sysctl(l: &oci_spec::runtime::Linux, ns: &NamespaceSet) -> Result<()> {
    let Some(map) = l.sysctl() else { return Ok(()) };
    for key in map.keys() {
        let field = format!("linux.sysctl[{key:?}]");
        if key.is_empty() || key.contains("..") || key.starts_with('/') || key.starts_with('.') {
            return Err(Error::spec(field, "is not a valid sysctl name"));
        }
        let needed = sysctl_namespace(key).ok_or_else(|| {
            Error::spec(&field, "is not a namespaced sysctl: it would change the host; only kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, kernel.hostname, kernel.domainname and net.* are allowed")
        })?;
        if !ns.has(needed) {
            return Err(Error::spec(
                field,
                format!(
                    "needs the container to have its own {} namespace",
                    ns_name(needed)
                ),
            ));
        }
    }
    Ok(())
}

/// The namespace a sysctl key belongs to, or None if it is not namespaced.
pub fn sysctl_namespace(key: &str) -> Option<LinuxNamespaceType> {
    let k = key.replace('/', ".");
    let ipc = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if ipc.contains(&k.as_str()) || k.starts_with("fs.mqueue.") {
        return Some(LinuxNamespaceType::Ipc);
    }
    if k == "kernel.hostname" || k == "kernel.domainname" {
        return Some(LinuxNamespaceType::Uts);
    }
    if k.starts_with("net.") {
        return Some(LinuxNamespaceType::Network);
    }
    None
}

fn check_time_offsets(l: &oci_spec::runtime::Linux, ns: &NamespaceSet) -> Result<()> {
    let Some(map) = l.time_offsets() else {
        return Ok(());
    };
    if map.is_empty() {
        return Ok(());
    }
    if !ns.is_new(LinuxNamespaceType::Time) {
        return Err(Error::spec(
            "linux.timeOffsets",
            "needs a new time namespace: add {\"type\":\"time\"} to linux.namespaces",
        ));
    }
    for k in map.keys() {
        if k != "monotonic" && k != "boottime" {
            return Err(Error::spec(
                format!("linux.timeOffsets[{k:?}]"),
                "unknown clock; use \"monotonic\" or \"boottime\"",
            ));
        }
    }
    Ok(())
}

fn check_devices(l: &oci_spec::runtime::Linux) -> Result<()> {
    for (i, d) in l.devices().iter().flatten().enumerate() {
        let p = d.path();
        if !p.is_absolute()
            || p.components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(Error::spec(
                format!("linux.devices[{i}].path"),
                format!("{} must be an absolute path without ..", p.display()),
            ));
        }
    }
    Ok(())
}

fn check_paths(field: &str, paths: &Option<Vec<String>>) -> Result<()> {
    for (i, p) in paths.iter().flatten().enumerate() {
        if !p.starts_with('/') {
            return Err(Error::spec(
                format!("{field}[{i}]"),
                format!("{p:?} must be an absolute path"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        for ok in ["1.0.0", "1.0.2-dev", "1.1.0", "1.2.0", "1.0.0+build"] {
            check_version(ok).unwrap();
        }
        for bad in ["", "banana", "0.1", "0.1.0", "2.0.0", "1.0", "1.x.0"] {
            let e = check_version(bad).unwrap_err().to_string();
            assert!(e.starts_with("ociVersion: "), "{e}");
        }
    }

    #[test]
    fn parse_errors_name_the_field() {
        let text =
            r#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"pid"},{"type":"bogus"}]}}"#;
        let e = parse(text, Path::new("/b/config.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("linux.namespaces[1].type"), "{e}");
        assert!(e.contains("bogus"), "{e}");
        let e = parse("{not json", Path::new("/b/config.json"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/b/config.json: "), "{e}");
    }

    #[test]
    fn sysctl_namespaces() {
        assert_eq!(
            sysctl_namespace("net.ipv4.ip_forward"),
            Some(LinuxNamespaceType::Network)
        );
        assert_eq!(
            sysctl_namespace("kernel.shm_rmid_forced"),
            Some(LinuxNamespaceType::Ipc)
        );
        assert_eq!(
            sysctl_namespace("fs.mqueue.msg_max"),
            Some(LinuxNamespaceType::Ipc)
        );
        assert_eq!(
            sysctl_namespace("kernel.hostname"),
            Some(LinuxNamespaceType::Uts)
        );
        assert_eq!(sysctl_namespace("kernel.panic"), None);
        assert_eq!(sysctl_namespace("vm.swappiness"), None);
    }
}
