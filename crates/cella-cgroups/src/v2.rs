//! The cgroup v2 driver.

use std::path::PathBuf;
use std::time::Duration;

use oci_spec::runtime::LinuxResources;

use crate::convert::{self, Swap};
use crate::devices::{self, DevRule};
use crate::fsutil::{self, Write};
use crate::mountinfo::CgroupMount;
use crate::v1::{enable_v2_controllers, rdma_line, remove_created_parents};
use crate::{CgroupManager, CgroupPath, ContainerCgroupMount, Error, Mounts, Stats};

const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);
const EMPTY_TIMEOUT: Duration = Duration::from_secs(5);
const RMDIR_TIMEOUT: Duration = Duration::from_secs(1);

/// cgroup v2 driver: one directory in the unified hierarchy.
#[derive(Debug)]
pub struct V2Manager {
    mount: CgroupMount,
    dir: PathBuf,
    created: Vec<PathBuf>,
    /// The default path: the parent `cella` is kept (see [`CgroupPath::is_default`]).
    keep_parents: bool,
}

fn f(name: &str) -> String {
    format!("linux.resources.{name}")
}

fn unsupported_v2(field: &str, why: &str) -> Error {
    Error::Unsupported {
        field: f(field),
        reason: format!("on cgroup v2 ({why})"),
    }
}

/// What `apply` does on v2: file writes, then the device filter.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub writes: Vec<Write>,
    pub devices: Option<Vec<DevRule>>,
}

impl V2Manager {
    /// Driver for `path` in the cgroup2 mount of `mounts`.
    pub fn new(mounts: &Mounts, path: &CgroupPath, created: Vec<PathBuf>) -> Result<Self, Error> {
        let mount = mounts
            .unified
            .clone()
            .ok_or_else(|| Error::LayoutMismatch {
                layout: crate::Layout::Unified,
                detail: "no cgroup2 filesystem is mounted".into(),
            })?;
        Ok(V2Manager {
            dir: path.dir_in(&mount)?,
            mount,
            created,
            keep_parents: path.is_default(),
        })
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub(crate) fn plan(&self, r: &LinuxResources) -> Result<Plan, Error> {
        let mut w = Vec::new();
        self.plan_memory(r, &mut w)?;
        self.plan_cpu(r, &mut w)?;
        if let Some(p) = r.pids() {
            if p.limit() != 0 {
                w.push(Write::new(
                    self.file("pids.max"),
                    convert::v2_limit(p.limit()),
                    f("pids.limit"),
                ));
            }
        }
        self.plan_io(r, &mut w)?;
        if let Some(limits) = r.hugepage_limits() {
            for (i, l) in limits.iter().enumerate() {
                let field = f(&format!("hugepageLimits[{i}]"));
                let name = convert::hugetlb_file(l.page_size(), true)?;
                let value = convert::v2_limit(l.limit());
                w.push(Write::new(self.file(&name), value.clone(), field.clone()));
                let rsvd = self.file(&format!("hugetlb.{}.rsvd.max", l.page_size()));
                if rsvd.exists() {
                    w.push(Write::new(rsvd, value, field));
                }
            }
        }
        if let Some(net) = r.network() {
            if net.class_id().is_some() {
                return Err(unsupported_v2("network.classID", "net_cls is a cgroup v1 controller; classify traffic with an eBPF or tc cgroup filter instead"));
            }
            if net.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
                return Err(unsupported_v2(
                    "network.priorities",
                    "net_prio is a cgroup v1 controller",
                ));
            }
        }
        if let Some(rdma) = r.rdma() {
            let mut devs: Vec<_> = rdma.iter().collect();
            devs.sort_by(|a, b| a.0.cmp(b.0));
            for (dev, l) in devs {
                if let Some(line) = rdma_line(dev, l.hca_handles(), l.hca_objects())? {
                    w.push(Write::new(
                        self.file("rdma.max"),
                        line,
                        f(&format!("rdma[{dev:?}]")),
                    ));
                }
            }
        }
        if let Some(u) = r.unified() {
            let mut keys: Vec<(&String, &String)> = u.iter().collect();
            keys.sort();
            for (k, v) in keys {
                let field = f(&format!("unified[{k:?}]"));
                check_unified_key(k, &field)?;
                let p = self.file(k);
                if !p.exists() {
                    return Err(Error::InvalidValue {
                        field,
                        value: v.clone(),
                        reason: format!(
                            "{} does not exist: unknown file, or the {:?} controller is not enabled in the parent's cgroup.subtree_control",
                            p.display(),
                            fsutil::controller_of(&p)
                        ),
                    });
                }
                w.push(Write::new(p, v.clone(), field));
            }
        }
        let devices = match r.devices() {
            Some(rules) if !rules.is_empty() => Some(devices::parse_rules(rules)?),
            _ => None,
        };
        Ok(Plan { writes: w, devices })
    }

    fn plan_memory(&self, r: &LinuxResources, w: &mut Vec<Write>) -> Result<(), Error> {
        let Some(m) = r.memory() else { return Ok(()) };
        let limit = m.limit().filter(|v| *v != 0);
        let swap = convert::swap_v2(m.limit(), m.swap())?;
        if m.check_before_update() == Some(true) {
            if let Some(l) = limit.filter(|l| *l > 0) {
                let usage = fsutil::read_u64(&self.file("memory.current"))?;
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
        if let Some(l) = limit {
            w.push(Write::new(
                self.file("memory.max"),
                convert::v2_limit(l),
                f("memory.limit"),
            ));
        }
        let swap_file = self.file("memory.swap.max");
        match swap {
            Swap::Unset => {}
            Swap::Unlimited | Swap::Bytes(0) if !swap_file.exists() => {}
            Swap::Unlimited | Swap::Bytes(_) if !swap_file.exists() => {
                return Err(Error::Unsupported {
                    field: f("memory.swap"),
                    reason: format!(
                        "on this host: {} does not exist (no swap accounting; boot with \
                         swapaccount=1), so only memory.swap equal to memory.limit or -1 works",
                        swap_file.display()
                    ),
                })
            }
            Swap::Unlimited => w.push(Write::new(swap_file, "max", f("memory.swap"))),
            Swap::Bytes(b) => w.push(Write::new(swap_file, b.to_string(), f("memory.swap"))),
        }
        if let Some(res) = m.reservation().filter(|v| *v != 0) {
            w.push(Write::new(
                self.file("memory.low"),
                convert::v2_limit(res),
                f("memory.reservation"),
            ));
        }
        if m.kernel().is_some_and(|v| v != 0) {
            return Err(unsupported_v2(
                "memory.kernel",
                "kernel memory is part of memory.max",
            ));
        }
        if m.kernel_tcp().is_some_and(|v| v != 0) {
            return Err(unsupported_v2(
                "memory.kernelTCP",
                "socket memory is part of memory.max",
            ));
        }
        if m.swappiness().is_some_and(|s| s != u64::MAX) {
            return Err(unsupported_v2(
                "memory.swappiness",
                "there is no per-cgroup swappiness",
            ));
        }
        if m.disable_oom_killer() == Some(true) {
            return Err(unsupported_v2(
                "memory.disableOOMKiller",
                "the OOM killer cannot be disabled per cgroup",
            ));
        }
        if m.use_hierarchy() == Some(false) {
            return Err(unsupported_v2(
                "memory.useHierarchy=false",
                "accounting is always hierarchical",
            ));
        }
        Ok(())
    }

    fn plan_cpu(&self, r: &LinuxResources, w: &mut Vec<Write>) -> Result<(), Error> {
        let Some(c) = r.cpu() else { return Ok(()) };
        if let Some(s) = c.shares().filter(|s| *s != 0) {
            convert::check_shares(s)?;
            let weight = convert::shares_to_weight(s).unwrap_or(100);
            w.push(Write::new(
                self.file("cpu.weight"),
                weight.to_string(),
                f("cpu.shares"),
            ));
        }
        let period_only =
            c.quota().filter(|q| *q != 0).is_none() && c.period().is_some_and(|p| p != 0);
        let current = if period_only {
            Some(fsutil::read_string(&self.file("cpu.max"))?)
        } else {
            None
        };
        if let Some(line) = convert::cpu_max(c.quota(), c.period(), current.as_deref()) {
            w.push(Write::new(
                self.file("cpu.max"),
                line,
                f("cpu.quota/cpu.period"),
            ));
        }
        if let Some(b) = c.burst() {
            let p = self.file("cpu.max.burst");
            if p.exists() {
                w.push(Write::new(p, b.to_string(), f("cpu.burst")));
            } else if b != 0 {
                return Err(Error::Unsupported {
                    field: f("cpu.burst"),
                    reason: format!("by this kernel ({} does not exist)", p.display()),
                });
            }
        }
        if c.realtime_runtime().is_some_and(|v| v != 0) {
            return Err(unsupported_v2(
                "cpu.realtimeRuntime",
                "realtime group scheduling is only in the v1 cpu controller",
            ));
        }
        if c.realtime_period().is_some_and(|v| v != 0) {
            return Err(unsupported_v2(
                "cpu.realtimePeriod",
                "realtime group scheduling is only in the v1 cpu controller",
            ));
        }
        if let Some(i) = c.idle() {
            if i != 0 && i != 1 {
                return Err(Error::InvalidValue {
                    field: f("cpu.idle"),
                    value: i.to_string(),
                    reason: "must be 0 or 1".into(),
                });
            }
            let p = self.file("cpu.idle");
            if p.exists() {
                w.push(Write::new(p, i.to_string(), f("cpu.idle")));
            } else if i != 0 {
                return Err(Error::Unsupported {
                    field: f("cpu.idle"),
                    reason: format!("by this kernel ({} does not exist)", p.display()),
                });
            }
        }
        for (val, file, field) in [
            (c.cpus(), "cpuset.cpus", "cpu.cpus"),
            (c.mems(), "cpuset.mems", "cpu.mems"),
        ] {
            if let Some(v) = val.as_deref().filter(|v| !v.is_empty()) {
                w.push(Write::new(self.file(file), v, f(field)));
            }
        }
        Ok(())
    }

    fn plan_io(&self, r: &LinuxResources, w: &mut Vec<Write>) -> Result<(), Error> {
        let Some(b) = r.block_io() else { return Ok(()) };
        let bfq = self.file("io.bfq.weight");
        let use_bfq = bfq.exists();
        if let Some(wt) = b.weight().filter(|w| *w != 0) {
            convert::check_blkio_weight(&f("blockIO.weight"), wt)?;
            if use_bfq {
                w.push(Write::new(
                    bfq.clone(),
                    convert::blkio_weight_to_bfq_weight(wt).to_string(),
                    f("blockIO.weight"),
                ));
            } else {
                w.push(Write::new(
                    self.file("io.weight"),
                    convert::blkio_weight_to_io_weight(wt).to_string(),
                    f("blockIO.weight"),
                ));
            }
        }
        if b.leaf_weight().is_some_and(|w| w != 0) {
            return Err(unsupported_v2(
                "blockIO.leafWeight",
                "there are no leaf weights",
            ));
        }
        if let Some(devs) = b.weight_device() {
            for (i, d) in devs.iter().enumerate() {
                let field = format!("blockIO.weightDevice[{i}]");
                if let Some(wt) = d.weight().filter(|w| *w != 0) {
                    convert::check_blkio_weight(&f(&format!("{field}.weight")), wt)?;
                    let (file, v) = if use_bfq {
                        (bfq.clone(), convert::blkio_weight_to_bfq_weight(wt))
                    } else {
                        (
                            self.file("io.weight"),
                            convert::blkio_weight_to_io_weight(wt),
                        )
                    };
                    w.push(Write::new(
                        file,
                        format!("{}:{} {v}", d.major(), d.minor()),
                        f(&field),
                    ));
                }
                if d.leaf_weight().is_some_and(|w| w != 0) {
                    return Err(unsupported_v2(
                        &format!("{field}.leafWeight"),
                        "there are no leaf weights",
                    ));
                }
            }
        }
        let throttles = [
            (
                b.throttle_read_bps_device(),
                "rbps",
                "blockIO.throttleReadBpsDevice",
            ),
            (
                b.throttle_write_bps_device(),
                "wbps",
                "blockIO.throttleWriteBpsDevice",
            ),
            (
                b.throttle_read_iops_device(),
                "riops",
                "blockIO.throttleReadIOPSDevice",
            ),
            (
                b.throttle_write_iops_device(),
                "wiops",
                "blockIO.throttleWriteIOPSDevice",
            ),
        ];
        for (list, key, field) in throttles {
            for (i, t) in list.iter().flatten().enumerate() {
                w.push(Write::new(
                    self.file("io.max"),
                    format!(
                        "{}:{} {key}={}",
                        t.major(),
                        t.minor(),
                        convert::v2_rate(t.rate())
                    ),
                    f(&format!("{field}[{i}]")),
                ));
            }
        }
        Ok(())
    }

    fn frozen_event(&self) -> Result<bool, Error> {
        Ok(fsutil::keyed_u64(&self.file("cgroup.events"), "frozen")? == Some(1))
    }

    fn set_freeze(&self, on: bool) -> Result<(), Error> {
        let file = self.file("cgroup.freeze");
        if !file.exists() && self.dir.exists() {
            return Err(Error::Unsupported {
                field: "pause/resume".into(),
                reason: format!(
                    "by this kernel ({} does not exist; Linux 5.2 or later is needed)",
                    file.display()
                ),
            });
        }
        fsutil::write_file(&file, if on { "1" } else { "0" })?;
        let what = if on {
            "cgroup.events \"frozen 1\""
        } else {
            "cgroup.events \"frozen 0\""
        };
        fsutil::wait_until(FREEZE_TIMEOUT, what, &self.dir, || {
            Ok(self.frozen_event()? == on)
        })
    }
}

/// Keys of `linux.resources.unified` must name a file directly in the
/// cgroup, not one that moves or kills processes.
fn check_unified_key(k: &str, field: &str) -> Result<(), Error> {
    let bad = |reason: &str| Error::InvalidValue {
        field: field.into(),
        value: k.into(),
        reason: reason.into(),
    };
    if k.is_empty() || k.contains('/') || k.contains("..") || k.contains('\0') {
        return Err(bad(
            "keys must be plain cgroup file names (no \"/\" or \"..\")",
        ));
    }
    if !k.contains('.') {
        return Err(bad(
            "keys must be cgroup interface files such as \"memory.high\"",
        ));
    }
    if matches!(
        k,
        "cgroup.procs"
            | "cgroup.threads"
            | "cgroup.kill"
            | "cgroup.freeze"
            | "cgroup.subtree_control"
            | "cgroup.type"
    ) {
        return Err(bad(
            "this file is managed by the runtime and cannot be set through linux.resources.unified",
        ));
    }
    Ok(())
}

impl CgroupManager for V2Manager {
    fn create(&mut self) -> Result<(), Error> {
        let made = fsutil::mkdir_all(&self.mount.mount_point, &self.dir)?;
        enable_v2_controllers(&self.mount.mount_point, &self.dir);
        // The container's own directory is always removed by destroy; record only the
        // parents made here, and none for the default path.
        if !self.keep_parents {
            self.created
                .extend(made.into_iter().filter(|d| *d != self.dir));
        }
        Ok(())
    }

    fn apply(&self, r: &LinuxResources) -> Result<(), Error> {
        let plan = self.plan(r)?;
        let mut out = fsutil::Writer::default();
        for w in &plan.writes {
            out.run(w)?;
        }
        if let Some(rules) = plan.devices {
            crate::bpf::install(&devices::program(&rules), &self.dir)?;
        }
        Ok(())
    }

    fn add_pid(&self, pid: i32) -> Result<(), Error> {
        fsutil::write_file(&self.file("cgroup.procs"), &pid.to_string())
    }

    fn pids(&self) -> Result<Vec<i32>, Error> {
        let mut pids = fsutil::read_pids(&self.file("cgroup.procs"))?;
        for d in fsutil::descendants_deepest_first(&self.dir)? {
            pids.extend(fsutil::read_pids(&d.join("cgroup.procs"))?);
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    fn kill_all(&self, sig: i32) -> Result<(), Error> {
        let kill = self.file("cgroup.kill");
        if sig == libc::SIGKILL && kill.exists() {
            return fsutil::write_file(&kill, "1");
        }
        let can_freeze = self.file("cgroup.freeze").exists();
        let was_frozen = can_freeze && self.is_frozen()?;
        if can_freeze && !was_frozen {
            self.freeze()?;
        }
        let res = self
            .pids()
            .and_then(|p| fsutil::signal_all(&p, sig, &self.dir));
        if can_freeze && (!was_frozen || sig == libc::SIGKILL) {
            self.thaw()?;
        }
        res
    }

    fn freeze(&self) -> Result<(), Error> {
        let res = self.set_freeze(true);
        if res.is_err() {
            let _ = fsutil::write_file(&self.file("cgroup.freeze"), "0");
        }
        res
    }

    fn thaw(&self) -> Result<(), Error> {
        self.set_freeze(false)
    }

    fn is_frozen(&self) -> Result<bool, Error> {
        if !self.file("cgroup.freeze").exists() {
            return Ok(false);
        }
        self.frozen_event()
    }

    fn stats(&self) -> Result<Stats, Error> {
        let mut s = Stats::default();
        let opt = |name: &str| -> Result<Option<u64>, Error> {
            let p = self.file(name);
            if p.exists() {
                fsutil::read_u64(&p).map(Some)
            } else {
                Ok(None)
            }
        };
        s.memory_usage = opt("memory.current")?;
        s.memory_peak = opt("memory.peak")?;
        s.memory_limit = opt("memory.max")?.filter(|v| *v != u64::MAX);
        if self.file("memory.events").exists() {
            s.oom_kill = Some(self.oom_kill_count()?);
        }
        let cpu = self.file("cpu.stat");
        if cpu.exists() {
            s.cpu_usage_ns = fsutil::keyed_u64(&cpu, "usage_usec")?.map(|u| u.saturating_mul(1000));
        }
        s.pids_current = opt("pids.current")?;
        Ok(s)
    }

    fn oom_kill_count(&self) -> Result<u64, Error> {
        Ok(fsutil::keyed_u64(&self.file("memory.events"), "oom_kill")?.unwrap_or(0))
    }

    fn destroy(&self) -> Result<(), Error> {
        let mut errors = Vec::new();
        // The usual case: the processes are gone and one rmdir removes the cgroup (the
        // kernel refuses while it has processes or sub-cgroups: then they are killed).
        if !fsutil::rmdir_if_unused(&self.dir) && self.dir.exists() {
            match self.pids() {
                Ok(p) if !p.is_empty() => {
                    if let Err(e) = self.kill_all(libc::SIGKILL) {
                        errors.push(e);
                    }
                    if let Err(e) = fsutil::wait_until(
                        EMPTY_TIMEOUT,
                        "all processes to exit",
                        &self.dir,
                        || Ok(self.pids()?.is_empty()),
                    ) {
                        errors.push(e);
                    }
                }
                Ok(_) => {}
                Err(e) => errors.push(e),
            }
            fsutil::remove_tree(&self.dir, RMDIR_TIMEOUT, &mut errors);
        }
        remove_created_parents(&self.created, std::slice::from_ref(&self.dir), &mut errors);
        Error::collect(errors)
    }

    fn created_dirs(&self) -> Vec<PathBuf> {
        self.created.clone()
    }

    fn dirs(&self) -> Vec<PathBuf> {
        vec![self.dir.clone()]
    }

    fn container_mounts(&self) -> Vec<ContainerCgroupMount> {
        vec![ContainerCgroupMount {
            dir: String::new(),
            fstype: "cgroup2".into(),
            options: String::new(),
            host_dir: self.dir.clone(),
            symlinks: Vec::new(),
        }]
    }

    fn cgroup2_dir(&self) -> Option<PathBuf> {
        Some(self.dir.clone())
    }
}
