//! The cgroup v1 driver (also used on hybrid hosts, where the cgroup2 mount
//! is used for the processes' placement and for hugetlb if only it has it).

use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::LinuxResources;

use crate::convert::{self, Swap};
use crate::devices;
use crate::fsutil::{self, Write};
use crate::mountinfo::CgroupMount;
use crate::{CgroupManager, CgroupPath, ContainerCgroupMount, Error, Layout, Mounts, Stats};

const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);
const EMPTY_TIMEOUT: Duration = Duration::from_secs(5);
const RMDIR_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Clone, Debug)]
pub(crate) struct Hier {
    pub(crate) mount: CgroupMount,
    pub(crate) dir: PathBuf,
}

/// cgroup v1 driver: one directory per mounted v1 hierarchy (plus the
/// cgroup2 mount on hybrid hosts).
#[derive(Debug)]
pub struct V1Manager {
    pub(crate) hiers: Vec<Hier>,
    unified: Option<Hier>,
    created: Vec<PathBuf>,
    /// The default path: the parent `cella` is kept (see [`CgroupPath::is_default`]).
    keep_parents: bool,
    /// `create_before_clone` made the unified directory already.
    unified_made: bool,
}

fn f(name: &str) -> String {
    format!("linux.resources.{name}")
}

fn unsupported(field: &str, reason: impl Into<String>) -> Error {
    Error::Unsupported {
        field: f(field),
        reason: reason.into(),
    }
}

impl V1Manager {
    /// Driver for `path` on the given mounts. `layout` must be Legacy or
    /// Hybrid; on Hybrid the cgroup2 mount is used too.
    pub fn new(
        mounts: &Mounts,
        layout: Layout,
        path: &CgroupPath,
        created: Vec<PathBuf>,
    ) -> Result<Self, Error> {
        if mounts.v1.is_empty() {
            return Err(Error::LayoutMismatch {
                layout,
                detail: "no cgroup v1 hierarchy is mounted".into(),
            });
        }
        let hiers = mounts
            .v1
            .iter()
            .map(|m| {
                Ok(Hier {
                    dir: path.dir_in(m)?,
                    mount: m.clone(),
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let unified = match (layout, &mounts.unified) {
            (Layout::Hybrid, Some(m)) => Some(Hier {
                dir: path.dir_in(m)?,
                mount: m.clone(),
            }),
            _ => None,
        };
        Ok(V1Manager {
            hiers,
            unified,
            created,
            keep_parents: path.is_default(),
            unified_made: false,
        })
    }

    fn all(&self) -> impl Iterator<Item = &Hier> {
        self.hiers.iter().chain(self.unified.iter())
    }

    fn dir(&self, controller: &str) -> Option<&Path> {
        self.hiers
            .iter()
            .find(|h| h.mount.has(controller))
            .map(|h| h.dir.as_path())
    }

    fn need(&self, controller: &str, field: &str) -> Result<&Path, Error> {
        self.dir(controller)
            .ok_or_else(|| Error::ControllerMissing {
                field: f(field),
                controller: controller.into(),
                detail: "no cgroup v1 hierarchy with it is mounted (see /proc/self/mountinfo)"
                    .into(),
            })
    }

    /// Where hugetlb limits go: the v1 hugetlb hierarchy, or on a hybrid
    /// host the cgroup2 mount if hugetlb is one of its controllers.
    fn hugetlb_target(&self) -> Result<Option<(PathBuf, bool)>, Error> {
        if let Some(d) = self.dir("hugetlb") {
            return Ok(Some((d.to_path_buf(), false)));
        }
        if let Some(u) = &self.unified {
            let ctl = u.mount.mount_point.join("cgroup.controllers");
            if ctl.exists() {
                let text = fsutil::read_string(&ctl)?;
                if text.split_whitespace().any(|c| c == "hugetlb") {
                    return Ok(Some((u.dir.clone(), true)));
                }
            }
        }
        Ok(None)
    }

    /// Translate resources into ordered file writes (reads current values
    /// where the order of writes depends on them).
    pub(crate) fn plan(&self, r: &LinuxResources) -> Result<Vec<Write>, Error> {
        let mut w = Vec::new();
        self.plan_memory(r, &mut w)?;
        self.plan_cpu(r, &mut w)?;
        if let Some(p) = r.pids() {
            if p.limit() != 0 {
                let d = self.need("pids", "pids.limit")?;
                let v = if p.limit() < 0 {
                    "max".to_string()
                } else {
                    p.limit().to_string()
                };
                w.push(Write::new(d.join("pids.max"), v, f("pids.limit")));
            }
        }
        self.plan_blkio(r, &mut w)?;
        if let Some(limits) = r.hugepage_limits() {
            for (i, l) in limits.iter().enumerate() {
                let field = format!("hugepageLimits[{i}]");
                let (dir, v2) = self.hugetlb_target()?.ok_or_else(|| Error::ControllerMissing {
                    field: f(&field),
                    controller: "hugetlb".into(),
                    detail: "it is neither a mounted v1 hierarchy nor available in the cgroup2 mount".into(),
                })?;
                let name = convert::hugetlb_file(l.page_size(), v2)?;
                let file = dir.join(&name);
                let value = if v2 {
                    convert::v2_limit(l.limit())
                } else {
                    convert::v1_limit(l.limit())
                };
                if !v2 && !file.exists() {
                    return Err(Error::InvalidValue {
                        field: f(&format!("{field}.pageSize")),
                        value: l.page_size().clone(),
                        reason: format!(
                            "this host has no {} (page size not supported)",
                            file.display()
                        ),
                    });
                }
                if v2 {
                    // Only hugetlb is taken from the cgroup2 mount here; enable
                    // it from the mount root down to the leaf's parent.
                    if let Some(u) = &self.unified {
                        for anc in ancestors(&u.mount.mount_point, &u.dir) {
                            let sc = anc.join("cgroup.subtree_control");
                            let already = fsutil::read_string(&sc)?
                                .split_whitespace()
                                .any(|c| c == "hugetlb");
                            if !already && !w.iter().any(|x: &Write| x.path == sc) {
                                w.push(Write::new(sc, "+hugetlb", f(&field)));
                            }
                        }
                    }
                }
                w.push(Write::new(file, value.clone(), f(&field)));
                if v2 {
                    let rsvd = dir.join(format!("hugetlb.{}.rsvd.max", l.page_size()));
                    if rsvd.exists() {
                        w.push(Write::new(rsvd, value, f(&field)));
                    }
                }
            }
        }
        if let Some(net) = r.network() {
            if let Some(id) = net.class_id() {
                let d = self.need("net_cls", "network.classID")?;
                w.push(Write::new(
                    d.join("net_cls.classid"),
                    id.to_string(),
                    f("network.classID"),
                ));
            }
            if let Some(prios) = net.priorities() {
                for (i, p) in prios.iter().enumerate() {
                    let field = format!("network.priorities[{i}]");
                    let d = self.need("net_prio", &field)?;
                    if p.name().is_empty() || p.name().contains(char::is_whitespace) {
                        return Err(Error::InvalidValue {
                            field: f(&format!("{field}.name")),
                            value: p.name().clone(),
                            reason: "must be an interface name".into(),
                        });
                    }
                    w.push(Write::new(
                        d.join("net_prio.ifpriomap"),
                        format!("{} {}", p.name(), p.priority()),
                        f(&field),
                    ));
                }
            }
        }
        if let Some(rdma) = r.rdma() {
            let mut devs: Vec<_> = rdma.iter().collect();
            devs.sort_by(|a, b| a.0.cmp(b.0));
            for (dev, l) in devs {
                if let Some(line) = rdma_line(dev, l.hca_handles(), l.hca_objects())? {
                    let d = self.need("rdma", &format!("rdma[{dev:?}]"))?;
                    w.push(Write::new(
                        d.join("rdma.max"),
                        line,
                        f(&format!("rdma[{dev:?}]")),
                    ));
                }
            }
        }
        if let Some(u) = r.unified() {
            if !u.is_empty() {
                let mut keys: Vec<&String> = u.keys().collect();
                keys.sort();
                return Err(unsupported(
                    "unified",
                    format!(
                        "on a cgroup v1 host (keys {keys:?} are cgroup v2 files); use the \
                         other linux.resources fields"
                    ),
                ));
            }
        }
        if let Some(rules) = r.devices() {
            if !rules.is_empty() {
                let parsed = devices::parse_rules(rules)?;
                let d = self.need("devices", "devices")?;
                for (i, rule) in parsed.iter().enumerate() {
                    let file = if rule.allow {
                        "devices.allow"
                    } else {
                        "devices.deny"
                    };
                    w.push(Write::new(
                        d.join(file),
                        devices::v1_line(rule),
                        format!("linux.resources.devices[{i}]"),
                    ));
                }
            }
        }
        Ok(w)
    }

    fn plan_memory(&self, r: &LinuxResources, w: &mut Vec<Write>) -> Result<(), Error> {
        let Some(m) = r.memory() else { return Ok(()) };
        let limit = m.limit().filter(|v| *v != 0);
        let swap = convert::swap_v1(m.limit(), m.swap())?;
        let dir = || self.need("memory", "memory");
        if m.check_before_update() == Some(true) {
            if let Some(l) = limit.filter(|l| *l > 0) {
                let d = dir()?;
                let usage = fsutil::read_u64(&d.join("memory.usage_in_bytes"))?;
                if (l as u64) < usage {
                    return Err(Error::InvalidValue {
                        field: f("memory.limit"),
                        value: l.to_string(),
                        reason: format!(
                            "below the current usage of {usage} bytes (checkBeforeUpdate is set)"
                        ),
                    });
                }
            }
        }
        let limit_write = |d: &Path, l: i64| {
            Write::new(
                d.join("memory.limit_in_bytes"),
                convert::v1_limit(l),
                f("memory.limit"),
            )
        };
        match swap {
            Swap::Unset => {
                if let Some(l) = limit {
                    w.push(limit_write(dir()?, l));
                }
            }
            Swap::Unlimited | Swap::Bytes(_) => {
                let d = dir()?;
                let memsw = d.join("memory.memsw.limit_in_bytes");
                let swap_value = match swap {
                    Swap::Bytes(s) => s.to_string(),
                    _ => "-1".to_string(),
                };
                if !memsw.exists() {
                    // No swap accounting: memory.limit already caps memory+swap.
                    let same = matches!(swap, Swap::Unlimited)
                        || Some(swap_value.as_str()) == limit.map(|l| l.to_string()).as_deref();
                    if !same {
                        return Err(unsupported(
                            "memory.swap",
                            format!(
                                "on this host: swap accounting is off ({} does not exist); boot \
                                 with swapaccount=1, or set memory.swap to -1 or equal to memory.limit",
                                memsw.display()
                            ),
                        ));
                    }
                    if let Some(l) = limit {
                        w.push(limit_write(d, l));
                    }
                } else {
                    let sw = Write::new(memsw.clone(), swap_value, f("memory.swap"));
                    match limit {
                        None => w.push(sw),
                        Some(l) => {
                            // memory <= memory+swap must hold after each write.
                            let cur = fsutil::read_u64(&memsw)?;
                            if l < 0 || (l as u64) > cur {
                                w.push(sw);
                                w.push(limit_write(d, l));
                            } else {
                                w.push(limit_write(d, l));
                                w.push(sw);
                            }
                        }
                    }
                }
            }
        }
        if let Some(res) = m.reservation().filter(|v| *v != 0) {
            w.push(Write::new(
                dir()?.join("memory.soft_limit_in_bytes"),
                convert::v1_limit(res),
                f("memory.reservation"),
            ));
        }
        for (val, file, field) in [
            (m.kernel(), "memory.kmem.limit_in_bytes", "memory.kernel"),
            (
                m.kernel_tcp(),
                "memory.kmem.tcp.limit_in_bytes",
                "memory.kernelTCP",
            ),
        ] {
            if let Some(v) = val.filter(|v| *v != 0) {
                let p = dir()?.join(file);
                if !p.exists() {
                    return Err(unsupported(
                        field,
                        format!("by this kernel ({} does not exist)", p.display()),
                    ));
                }
                w.push(Write::new(p, convert::v1_limit(v), f(field)).verified());
            }
        }
        if let Some(s) = m.swappiness().filter(|s| *s != u64::MAX) {
            if s > 100 {
                return Err(Error::InvalidValue {
                    field: f("memory.swappiness"),
                    value: s.to_string(),
                    reason: "must be between 0 and 100".into(),
                });
            }
            w.push(Write::new(
                dir()?.join("memory.swappiness"),
                s.to_string(),
                f("memory.swappiness"),
            ));
        }
        if let Some(d) = m.disable_oom_killer() {
            let v = if d { "1" } else { "0" };
            w.push(Write::new(
                dir()?.join("memory.oom_control"),
                v,
                f("memory.disableOOMKiller"),
            ));
        }
        if let Some(h) = m.use_hierarchy() {
            let p = dir()?.join("memory.use_hierarchy");
            let want = if h { "1" } else { "0" };
            let cur = fsutil::read_string(&p)?;
            if cur.trim() != want {
                w.push(Write::new(p, want, f("memory.useHierarchy")));
            }
        }
        Ok(())
    }

    fn plan_cpu(&self, r: &LinuxResources, w: &mut Vec<Write>) -> Result<(), Error> {
        let Some(c) = r.cpu() else { return Ok(()) };
        if let Some(s) = c.shares().filter(|s| *s != 0) {
            convert::check_shares(s)?;
            w.push(Write::new(
                self.need("cpu", "cpu.shares")?.join("cpu.shares"),
                s.to_string(),
                f("cpu.shares"),
            ));
        }
        if let Some(p) = c.period().filter(|p| *p != 0) {
            w.push(Write::new(
                self.need("cpu", "cpu.period")?.join("cpu.cfs_period_us"),
                p.to_string(),
                f("cpu.period"),
            ));
        }
        if let Some(q) = c.quota().filter(|q| *q != 0) {
            w.push(Write::new(
                self.need("cpu", "cpu.quota")?.join("cpu.cfs_quota_us"),
                convert::v1_limit(q),
                f("cpu.quota"),
            ));
        }
        if let Some(b) = c.burst() {
            let p = self.need("cpu", "cpu.burst")?.join("cpu.cfs_burst_us");
            if p.exists() {
                w.push(Write::new(p, b.to_string(), f("cpu.burst")));
            } else if b != 0 {
                return Err(unsupported(
                    "cpu.burst",
                    format!("by this kernel ({} does not exist)", p.display()),
                ));
            }
        }
        let rt = [
            (
                c.realtime_period().map(|v| v as i64),
                "cpu.rt_period_us",
                "cpu.realtimePeriod",
            ),
            (
                c.realtime_runtime(),
                "cpu.rt_runtime_us",
                "cpu.realtimeRuntime",
            ),
        ];
        for (val, file, field) in rt {
            if let Some(v) = val.filter(|v| *v != 0) {
                let p = self.need("cpu", field)?.join(file);
                if !p.exists() {
                    return Err(unsupported(
                        field,
                        format!(
                            "by this kernel ({} does not exist: no CONFIG_RT_GROUP_SCHED)",
                            p.display()
                        ),
                    ));
                }
                w.push(Write::new(p, convert::v1_limit(v), f(field)));
            }
        }
        if let Some(i) = c.idle() {
            if i != 0 && i != 1 {
                return Err(Error::InvalidValue {
                    field: f("cpu.idle"),
                    value: i.to_string(),
                    reason: "must be 0 or 1".into(),
                });
            }
            let p = self.need("cpu", "cpu.idle")?.join("cpu.idle");
            if p.exists() {
                w.push(Write::new(p, i.to_string(), f("cpu.idle")));
            } else if i != 0 {
                return Err(unsupported(
                    "cpu.idle",
                    format!("by this kernel ({} does not exist)", p.display()),
                ));
            }
        }
        for (val, file, field) in [
            (c.cpus(), "cpuset.cpus", "cpu.cpus"),
            (c.mems(), "cpuset.mems", "cpu.mems"),
        ] {
            if let Some(v) = val.as_deref().filter(|v| !v.is_empty()) {
                w.push(Write::new(
                    self.need("cpuset", field)?.join(file),
                    v,
                    f(field),
                ));
            }
        }
        Ok(())
    }

    fn plan_blkio(&self, r: &LinuxResources, w: &mut Vec<Write>) -> Result<(), Error> {
        let Some(b) = r.block_io() else { return Ok(()) };
        let pick = |names: &[&str], field: &str| -> Result<PathBuf, Error> {
            let d = self.need("blkio", field)?;
            names
                .iter()
                .map(|n| d.join(n))
                .find(|p| p.exists())
                .ok_or_else(|| unsupported(field, format!("on this host (none of {names:?} exists in {}: the I/O scheduler has no weight support)", d.display())))
        };
        if let Some(wt) = b.weight().filter(|w| *w != 0) {
            convert::check_blkio_weight(&f("blockIO.weight"), wt)?;
            w.push(Write::new(
                pick(&["blkio.weight", "blkio.bfq.weight"], "blockIO.weight")?,
                wt.to_string(),
                f("blockIO.weight"),
            ));
        }
        if let Some(wt) = b.leaf_weight().filter(|w| *w != 0) {
            convert::check_blkio_weight(&f("blockIO.leafWeight"), wt)?;
            w.push(Write::new(
                pick(&["blkio.leaf_weight"], "blockIO.leafWeight")?,
                wt.to_string(),
                f("blockIO.leafWeight"),
            ));
        }
        if let Some(devs) = b.weight_device() {
            for (i, d) in devs.iter().enumerate() {
                let field = format!("blockIO.weightDevice[{i}]");
                if let Some(wt) = d.weight().filter(|w| *w != 0) {
                    convert::check_blkio_weight(&f(&format!("{field}.weight")), wt)?;
                    let p = pick(
                        &["blkio.weight_device", "blkio.bfq.weight_device"],
                        &format!("{field}.weight"),
                    )?;
                    w.push(Write::new(
                        p,
                        format!("{}:{} {wt}", d.major(), d.minor()),
                        f(&field),
                    ));
                }
                if let Some(wt) = d.leaf_weight().filter(|w| *w != 0) {
                    convert::check_blkio_weight(&f(&format!("{field}.leafWeight")), wt)?;
                    let p = pick(
                        &["blkio.leaf_weight_device"],
                        &format!("{field}.leafWeight"),
                    )?;
                    w.push(Write::new(
                        p,
                        format!("{}:{} {wt}", d.major(), d.minor()),
                        f(&field),
                    ));
                }
            }
        }
        let throttles = [
            (
                b.throttle_read_bps_device(),
                "blkio.throttle.read_bps_device",
                "blockIO.throttleReadBpsDevice",
            ),
            (
                b.throttle_write_bps_device(),
                "blkio.throttle.write_bps_device",
                "blockIO.throttleWriteBpsDevice",
            ),
            (
                b.throttle_read_iops_device(),
                "blkio.throttle.read_iops_device",
                "blockIO.throttleReadIOPSDevice",
            ),
            (
                b.throttle_write_iops_device(),
                "blkio.throttle.write_iops_device",
                "blockIO.throttleWriteIOPSDevice",
            ),
        ];
        for (list, file, field) in throttles {
            for (i, t) in list.iter().flatten().enumerate() {
                let field = format!("{field}[{i}]");
                let d = self.need("blkio", &field)?;
                w.push(Write::new(
                    d.join(file),
                    format!("{}:{} {}", t.major(), t.minor(), t.rate()),
                    f(&field),
                ));
            }
        }
        Ok(())
    }

    fn freezer(&self) -> Result<&Path, Error> {
        self.dir("freezer").ok_or_else(|| Error::ControllerMissing {
            field: "pause/resume".into(),
            controller: "freezer".into(),
            detail: "no cgroup v1 hierarchy with it is mounted".into(),
        })
    }

    fn freezer_state(&self, d: &Path) -> Result<String, Error> {
        Ok(fsutil::read_string(&d.join("freezer.state"))?
            .trim()
            .to_string())
    }

    /// The hierarchy whose cgroup.procs lists the container's processes.
    fn procs_dir(&self) -> &Path {
        ["pids", "freezer", "memory", "cpu", "devices"]
            .iter()
            .find_map(|c| self.dir(c))
            .unwrap_or(&self.hiers[0].dir)
    }
}

/// The `rdma.max` line for one device; `None` when nothing is limited.
pub(crate) fn rdma_line(
    dev: &str,
    handles: Option<u32>,
    objects: Option<u32>,
) -> Result<Option<String>, Error> {
    if dev.is_empty() || dev.contains(char::is_whitespace) {
        return Err(Error::InvalidValue {
            field: "linux.resources.rdma".into(),
            value: dev.into(),
            reason: "the key must be an RDMA device name".into(),
        });
    }
    let mut line = dev.to_string();
    if let Some(h) = handles {
        line.push_str(&format!(" hca_handle={h}"));
    }
    if let Some(o) = objects {
        line.push_str(&format!(" hca_object={o}"));
    }
    Ok((handles.is_some() || objects.is_some()).then_some(line))
}

/// `mount_point` and every directory below it down to `leaf`'s parent.
fn ancestors(mount_point: &Path, leaf: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut cur = leaf.parent();
    while let Some(d) = cur {
        if !d.starts_with(mount_point) {
            break;
        }
        out.push(d.to_path_buf());
        cur = d.parent();
    }
    out.reverse();
    out
}

/// Give every cpuset cgroup from below the mount point down to `dir` its parent's
/// cpuset.cpus/mems where they are empty: the kernel refuses tasks in a cpuset without them
/// (ENOSPC). Every level is checked, not only the ones made here: a parent another runtime
/// created a moment ago may still have empty cpus/mems, and a child copied from it could
/// never take a task. Top-down, each value is read once: a level's value is what the next
/// level copies, and a directory made just now (in `made`) is written without being read
/// (it is empty, or holds its parent's value with `cgroup.clone_children`).
fn init_cpuset(mount_point: &Path, dir: &Path, made: &[PathBuf]) -> Result<(), Error> {
    let Ok(rel) = dir.strip_prefix(mount_point) else {
        return Ok(());
    };
    for file in ["cpuset.cpus", "cpuset.mems"] {
        // The value of the level above `cur` when known (the mount point's is read only if
        // a level below it needs it).
        let mut above: Option<String> = None;
        let mut cur = mount_point.to_path_buf();
        for comp in rel.components() {
            let parent = cur.clone();
            cur.push(comp);
            let mine = cur.join(file);
            if !made.contains(&cur) {
                let v = fsutil::read_string(&mine)?;
                if !v.trim().is_empty() {
                    above = Some(v);
                    continue;
                }
            }
            let v = match above.take() {
                Some(v) => v,
                None => fsutil::read_string(&parent.join(file))?,
            };
            fsutil::write_file(&mine, v.trim())?;
            above = Some(v);
        }
    }
    Ok(())
}

/// Enable every available controller of each cgroup2 directory from the
/// mount root down to the leaf's parent. Best effort: a controller that
/// cannot be enabled shows up as a missing file when a limit needs it.
pub(crate) fn enable_v2_controllers(mount_point: &Path, leaf: &Path) {
    let Ok(rel) = leaf.strip_prefix(mount_point) else {
        return;
    };
    let mut cur = mount_point.to_path_buf();
    let comps: Vec<_> = rel.components().collect();
    for (i, comp) in comps.iter().enumerate() {
        let Ok(avail) = fsutil::read_string(&cur.join("cgroup.controllers")) else {
            return;
        };
        let enabled = fsutil::read_string(&cur.join("cgroup.subtree_control")).unwrap_or_default();
        let missing: Vec<&str> = avail
            .split_whitespace()
            .filter(|c| !enabled.split_whitespace().any(|e| e == *c))
            .collect();
        if !missing.is_empty() {
            let all: Vec<String> = missing.iter().map(|c| format!("+{c}")).collect();
            let sc = cur.join("cgroup.subtree_control");
            if fsutil::write_file(&sc, &all.join(" ")).is_err() {
                for c in &all {
                    let _ = fsutil::write_file(&sc, c);
                }
            }
        }
        if i + 1 == comps.len() {
            break;
        }
        cur.push(comp);
    }
}

impl V1Manager {
    /// Make the v1 hierarchies' directories and/or the cgroup2 (unified) one.
    fn make(&mut self, v1: bool, unified: bool) -> Result<(), Error> {
        let mut made_now: Vec<PathBuf> = Vec::new();
        let result = (|| {
            let hiers = self.hiers.iter().filter(|_| v1);
            for h in hiers.chain(self.unified.iter().filter(|_| unified)) {
                let made = fsutil::mkdir_all(&h.mount.mount_point, &h.dir)?;
                made_now.extend(made.iter().cloned());
                if h.mount.has("cpuset") {
                    init_cpuset(&h.mount.mount_point, &h.dir, &made)?;
                }
            }
            Ok(())
        })();
        match result {
            Ok(()) => {
                // The container's own directories are always removed by destroy; record
                // only the parents made here, and none for the default path.
                if !self.keep_parents {
                    let own = self.dirs();
                    self.created
                        .extend(made_now.into_iter().filter(|d| !own.contains(d)));
                }
                Ok(())
            }
            Err(e) => {
                for d in made_now.iter().rev() {
                    let _ = std::fs::remove_dir(d);
                }
                Err(e)
            }
        }
    }
}

impl CgroupManager for V1Manager {
    fn create(&mut self) -> Result<(), Error> {
        let unified = !self.unified_made;
        self.make(true, unified)
    }

    fn create_before_clone(&mut self) -> Result<bool, Error> {
        self.make(false, true)?;
        self.unified_made = true;
        Ok(true)
    }

    fn cgroup2_dir(&self) -> Option<PathBuf> {
        self.unified.as_ref().map(|u| u.dir.clone())
    }

    fn apply(&self, r: &LinuxResources) -> Result<(), Error> {
        let mut out = fsutil::Writer::default();
        for w in self.plan(r)? {
            out.run(&w)?;
        }
        Ok(())
    }

    fn add_pid(&self, pid: i32) -> Result<(), Error> {
        for h in self.all() {
            fsutil::write_file(&h.dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    fn pids(&self) -> Result<Vec<i32>, Error> {
        let top = self.procs_dir();
        let mut pids = fsutil::read_pids(&top.join("cgroup.procs"))?;
        for d in fsutil::descendants_deepest_first(top)? {
            pids.extend(fsutil::read_pids(&d.join("cgroup.procs"))?);
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    fn kill_all(&self, sig: i32) -> Result<(), Error> {
        let top = self.procs_dir().to_path_buf();
        if self.dir("freezer").is_none() {
            return fsutil::signal_all(&self.pids()?, sig, &top);
        }
        let was_frozen = self.is_frozen()?;
        if !was_frozen {
            self.freeze()?;
        }
        let res = self.pids().and_then(|p| fsutil::signal_all(&p, sig, &top));
        // Frozen tasks act on SIGKILL only once thawed.
        if !was_frozen || sig == libc::SIGKILL {
            self.thaw()?;
        }
        res
    }

    fn freeze(&self) -> Result<(), Error> {
        let d = self.freezer()?;
        let file = d.join("freezer.state");
        let res = fsutil::wait_until(FREEZE_TIMEOUT, "freezer.state FROZEN", &file, || {
            fsutil::write_file(&file, "FROZEN")?;
            Ok(self.freezer_state(d)? == "FROZEN")
        });
        if res.is_err() {
            let _ = fsutil::write_file(&file, "THAWED");
        }
        res
    }

    fn thaw(&self) -> Result<(), Error> {
        let d = self.freezer()?;
        let file = d.join("freezer.state");
        fsutil::wait_until(FREEZE_TIMEOUT, "freezer.state THAWED", &file, || {
            fsutil::write_file(&file, "THAWED")?;
            Ok(self.freezer_state(d)? == "THAWED")
        })
    }

    fn is_frozen(&self) -> Result<bool, Error> {
        match self.dir("freezer") {
            None => Ok(false),
            Some(d) => Ok(self.freezer_state(d)? == "FROZEN"),
        }
    }

    fn stats(&self) -> Result<Stats, Error> {
        let mut s = Stats::default();
        if let Some(d) = self.dir("memory") {
            s.memory_usage = Some(fsutil::read_u64(&d.join("memory.usage_in_bytes"))?);
            s.memory_peak = Some(fsutil::read_u64(&d.join("memory.max_usage_in_bytes"))?);
            let lim = fsutil::read_u64(&d.join("memory.limit_in_bytes"))?;
            s.memory_limit = (lim < (1u64 << 62)).then_some(lim);
            s.oom_kill = Some(self.oom_kill_count()?);
        }
        if let Some(d) = self.dir("cpuacct") {
            s.cpu_usage_ns = Some(fsutil::read_u64(&d.join("cpuacct.usage"))?);
        }
        if let Some(d) = self.dir("pids") {
            s.pids_current = Some(fsutil::read_u64(&d.join("pids.current"))?);
        }
        Ok(s)
    }

    fn oom_kill_count(&self) -> Result<u64, Error> {
        let d = self.dir("memory").ok_or_else(|| Error::ControllerMissing {
            field: "OOM kill count".into(),
            controller: "memory".into(),
            detail: "no cgroup v1 hierarchy with it is mounted".into(),
        })?;
        let p = d.join("memory.oom_control");
        fsutil::keyed_u64(&p, "oom_kill")?.ok_or_else(|| Error::Parse {
            path: p.clone(),
            content: String::new(),
            reason: "no \"oom_kill\" line (kernel older than 4.13)".into(),
        })
    }

    fn destroy(&self) -> Result<(), Error> {
        let mut errors = Vec::new();
        // The usual case: the container's processes are gone. The kernel refuses to remove
        // a cgroup that has processes or sub-cgroups, so removing the directory that lists
        // the processes is the check; only when it is busy are they listed and killed.
        let top = self.procs_dir().to_path_buf();
        let top_gone = fsutil::rmdir_if_unused(&top);
        if !top_gone && top.exists() {
            let _ = self.thaw_if_frozen();
            match self.pids() {
                Ok(p) if !p.is_empty() => {
                    if let Err(e) = self.kill_all(libc::SIGKILL) {
                        errors.push(e);
                    }
                    let top = self.procs_dir().to_path_buf();
                    if let Err(e) =
                        fsutil::wait_until(EMPTY_TIMEOUT, "all processes to exit", &top, || {
                            Ok(self.pids()?.is_empty())
                        })
                    {
                        errors.push(e);
                    }
                }
                Ok(_) => {}
                Err(e) => errors.push(e),
            }
        }
        for h in self.all() {
            if !(top_gone && h.dir == top) {
                fsutil::remove_tree(&h.dir, RMDIR_TIMEOUT, &mut errors);
            }
        }
        remove_created_parents(&self.created, &self.dirs(), &mut errors);
        Error::collect(errors)
    }

    fn created_dirs(&self) -> Vec<PathBuf> {
        self.created.clone()
    }

    fn dirs(&self) -> Vec<PathBuf> {
        self.all().map(|h| h.dir.clone()).collect()
    }

    fn container_mounts(&self) -> Vec<ContainerCgroupMount> {
        let mut out = Vec::new();
        for h in &self.hiers {
            let c = &h.mount.controllers;
            let dir = match c.as_slice() {
                [one] if one.starts_with("name=") => one["name=".len()..].to_string(),
                _ => c.join(","),
            };
            let symlinks = if c.len() > 1 {
                c.iter()
                    .filter(|x| !x.starts_with("name="))
                    .map(|x| (x.clone(), dir.clone()))
                    .collect()
            } else {
                Vec::new()
            };
            out.push(ContainerCgroupMount {
                dir,
                fstype: "cgroup".into(),
                options: c.join(","),
                host_dir: h.dir.clone(),
                symlinks,
            });
        }
        if let Some(u) = &self.unified {
            out.push(ContainerCgroupMount {
                dir: "unified".into(),
                fstype: "cgroup2".into(),
                options: String::new(),
                host_dir: u.dir.clone(),
                symlinks: Vec::new(),
            });
        }
        out
    }
}

impl V1Manager {
    fn thaw_if_frozen(&self) -> Result<(), Error> {
        if self.is_frozen()? {
            self.thaw()?;
        }
        Ok(())
    }
}

/// Remove the parents `create` made, deepest first, if they are empty now
/// (another container may still use them: then they stay). The container's own
/// directories (`own`), which states written by earlier versions list too, were removed
/// already and are skipped.
pub(crate) fn remove_created_parents(
    created: &[PathBuf],
    own: &[PathBuf],
    errors: &mut Vec<Error>,
) {
    for d in created.iter().rev().filter(|d| !own.contains(d)) {
        if let Err(source) = std::fs::remove_dir(d) {
            let benign = matches!(
                source.raw_os_error(),
                Some(libc::ENOENT) | Some(libc::ENOTEMPTY) | Some(libc::EBUSY)
            );
            if !benign {
                errors.push(Error::Rmdir {
                    path: d.clone(),
                    source,
                    hint: String::new(),
                });
            }
        }
    }
}
