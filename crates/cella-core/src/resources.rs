//! Resource control of an existing container: `update` (live limits, saved back into the
//! container's config), statistics in runc's `events` shape, and OOM notification.
//!
//! The cgroup files themselves are written by `cella-cgroups`; this module decides *what* to
//! write for an update, and reads the extra counters `events --stats` reports.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cella_cgroups::CgroupManager;
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};
use rustix::fs::{Mode, OFlags};
use serde::Serialize;
use serde_json::Value;

use crate::container::{self, Status};
use crate::error::{Context, Error, Result};
use crate::state::{Record, StateRoot};

/// What an update changes: `apply` is written to the cgroup, `merged` replaces
/// `linux.resources` in the saved config.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdatePlan {
    pub apply: LinuxResources,
    pub merged: LinuxResources,
}

/// Work out an update of `saved` (the container's current `linux.resources`) by `update`.
///
/// Objects merge field by field (a field the update leaves out keeps its value), arrays and
/// scalars are replaced. Two rules keep the result meaningful:
/// - memory: when the update changes `memory.limit` but not `memory.swap`, and the saved swap
///   equalled the saved limit (no swap allowed), swap follows the new limit, so the container
///   still cannot swap and the v1 rule memory ≤ memory+swap holds;
/// - devices: the new list replaces the old one. Unless it starts with a rule for every
///   device, an "allow all" rule is put first, so the new list is judged on its own and not
///   on top of the rules it replaces.
pub fn plan_update(saved: Option<&LinuxResources>, update: &LinuxResources) -> Result<UpdatePlan> {
    let to_value = |r: &LinuxResources| {
        serde_json::to_value(r)
            .map_err(|e| Error::Init(format!("serialising linux.resources: {e}")))
    };
    let mut apply_v = to_value(update)?;
    let mut merged_v = match saved {
        Some(s) => to_value(s)?,
        None => Value::Object(Default::default()),
    };

    let new_limit = update.memory().as_ref().and_then(|m| m.limit());
    let new_swap = update.memory().as_ref().and_then(|m| m.swap());
    let old_limit = saved
        .and_then(|s| s.memory().as_ref())
        .and_then(|m| m.limit());
    let old_swap = saved
        .and_then(|s| s.memory().as_ref())
        .and_then(|m| m.swap());
    if let (Some(l), None, Some(ol), Some(os)) = (new_limit, new_swap, old_limit, old_swap) {
        if ol == os && ol > 0 && l != ol {
            apply_v["memory"]["swap"] = Value::from(l);
        }
    }
    if let Some(rules) = update.devices() {
        let covers_all = rules.first().is_some_and(|r| {
            matches!(r.typ(), None | Some(oci_spec::runtime::LinuxDeviceType::A))
                && r.major().is_none()
                && r.minor().is_none()
        });
        if !covers_all {
            let mut all = LinuxDeviceCgroup::default();
            all.set_allow(true);
            all.set_typ(Some(oci_spec::runtime::LinuxDeviceType::A));
            all.set_access(Some("rwm".into()));
            let mut v = vec![serde_json::to_value(&all).expect("device rule serialises")];
            v.extend(apply_v["devices"].as_array().cloned().unwrap_or_default());
            apply_v["devices"] = Value::Array(v);
        }
    }
    merge_json(&mut merged_v, &apply_v);
    let from_value = |v: Value, what: &str| -> Result<LinuxResources> {
        serde_json::from_value(v)
            .map_err(|e| Error::spec("linux.resources", format!("{what}: {e}")))
    };
    Ok(UpdatePlan {
        apply: from_value(apply_v, "the update")?,
        merged: from_value(merged_v, "the updated resources")?,
    })
}

/// Merge `patch` into `base`: objects key by key (recursively), everything else replaced;
/// null values in `patch` are skipped.
fn merge_json(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    continue;
                }
                match b.get_mut(k) {
                    Some(slot) if slot.is_object() && v.is_object() => merge_json(slot, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, p) => {
            if !p.is_null() {
                *b = p.clone();
            }
        }
    }
}

/// `update ID`: change the resources of a created, running or paused container, and save them
/// in its config so that later commands (and `state`) see the same values.
pub fn update(root: &StateRoot, id: &str, update: &LinuxResources) -> Result<()> {
    let dir = root.open(id)?;
    let rec = dir.read()?;
    let status = container::status_of(&dir, &rec);
    if status == Status::Stopped {
        return Err(Error::BadStatus {
            id: id.into(),
            status: status.to_string(),
            what: "cannot update the resources of a stopped container".into(),
        });
    }
    let mut spec = dir.read_config()?;
    let mut linux = spec.linux().clone().unwrap_or_default();
    let plan = plan_update(linux.resources().as_ref(), update)?;
    linux.set_resources(Some(plan.merged.clone()));
    let mut apply = plan.apply;
    if apply.devices().is_some() {
        // The devices every container keeps (and the ones its spec creates) stay allowed.
        let mut only_devices = LinuxResources::default();
        only_devices.set_devices(apply.devices().clone());
        let mut l = linux.clone();
        l.set_resources(Some(only_devices));
        let eff = container::effective_resources(&l);
        apply.set_devices(eff.and_then(|e| e.devices().clone()));
    }
    container::open_cgroup_of(&rec)?.apply(&apply)?;
    spec.set_linux(Some(linux));
    dir.write_config(&spec)
}

/// One record of `events`, in runc's shape: `{"type":"stats","id":…,"data":{…}}` or
/// `{"type":"oom","id":…}`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<StatsData>,
}

/// The kinds of [`Event`].
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Stats,
    Oom,
}

/// Resource usage of a container (the `data` of a stats event). A counter the host does not
/// have (missing controller or file) is left out, never reported as 0.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct StatsData {
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub pids: PidsStats,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CpuStats {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

/// CPU time in nanoseconds.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub periods: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttled_periods: Option<u64>,
    /// Nanoseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttled_time: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct MemoryStats {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<u64>,
    pub usage: MemoryEntry,
    /// v1: memory+swap (memsw); v2: swap alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap: Option<MemoryEntry>,
    /// memory.stat as is.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

/// Bytes; `limit` is u64::MAX when unlimited (as runc reports it).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct MemoryEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failcnt: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct PidsStats {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<u64>,
    /// Left out when unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

/// The first of the cgroup's directories (one per v1 hierarchy, one on v2) holding `name`.
fn find(dirs: &[PathBuf], name: &str) -> Option<PathBuf> {
    dirs.iter().map(|d| d.join(name)).find(|p| p.exists())
}

/// A cgroup value: a number, or "max" (u64::MAX).
pub fn parse_value(s: &str) -> Option<u64> {
    let s = s.trim();
    if s == "max" {
        return Some(u64::MAX);
    }
    s.parse().ok()
}

/// A flat keyed file ("key value" lines, like memory.stat or cpu.stat).
pub fn parse_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let v = parse_value(it.next()?)?;
            Some((k.to_string(), v))
        })
        .collect()
}

fn read_value(p: Option<PathBuf>) -> Option<u64> {
    parse_value(&std::fs::read_to_string(p?).ok()?)
}

fn read_keyed(p: Option<PathBuf>) -> BTreeMap<String, u64> {
    p.and_then(|p| std::fs::read_to_string(p).ok())
        .map(|t| parse_keyed(&t))
        .unwrap_or_default()
}

/// The statistics of a cgroup, from its directories (v1 hierarchies or the v2 directory).
pub fn stats_of(cg: &dyn CgroupManager) -> StatsData {
    stats_from_dirs(&cg.dirs())
}

/// [`stats_of`] from the directories themselves (tests point it at a fake tree).
pub fn stats_from_dirs(dirs: &[PathBuf]) -> StatsData {
    let mut s = StatsData::default();
    // CPU: v1 cpuacct (usage in ns, user/system in clock ticks) or v2 cpu.stat (µs).
    if let Some(total) = read_value(find(dirs, "cpuacct.usage")) {
        s.cpu.usage.total = Some(total);
        if let Some(p) = find(dirs, "cpuacct.usage_percpu") {
            s.cpu.usage.percpu = std::fs::read_to_string(p)
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
        }
        let st = read_keyed(find(dirs, "cpuacct.stat"));
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        let ns = |ticks: u64| ticks.saturating_mul(1_000_000_000 / hz);
        s.cpu.usage.user = st.get("user").copied().map(ns);
        s.cpu.usage.kernel = st.get("system").copied().map(ns);
        let cs = read_keyed(find(dirs, "cpu.stat"));
        s.cpu.throttling.periods = cs.get("nr_periods").copied();
        s.cpu.throttling.throttled_periods = cs.get("nr_throttled").copied();
        s.cpu.throttling.throttled_time = cs.get("throttled_time").copied();
    } else {
        let cs = read_keyed(find(dirs, "cpu.stat"));
        let us = |k: &str| cs.get(k).map(|v| v.saturating_mul(1000));
        s.cpu.usage.total = us("usage_usec");
        s.cpu.usage.user = us("user_usec");
        s.cpu.usage.kernel = us("system_usec");
        s.cpu.throttling.periods = cs.get("nr_periods").copied();
        s.cpu.throttling.throttled_periods = cs.get("nr_throttled").copied();
        s.cpu.throttling.throttled_time = us("throttled_usec");
    }
    // Memory.
    if let Some(usage) = read_value(find(dirs, "memory.usage_in_bytes")) {
        s.memory.usage = MemoryEntry {
            limit: read_value(find(dirs, "memory.limit_in_bytes")),
            usage: Some(usage),
            max: read_value(find(dirs, "memory.max_usage_in_bytes")),
            failcnt: read_value(find(dirs, "memory.failcnt")),
        };
        if let Some(u) = read_value(find(dirs, "memory.memsw.usage_in_bytes")) {
            s.memory.swap = Some(MemoryEntry {
                limit: read_value(find(dirs, "memory.memsw.limit_in_bytes")),
                usage: Some(u),
                max: read_value(find(dirs, "memory.memsw.max_usage_in_bytes")),
                failcnt: read_value(find(dirs, "memory.memsw.failcnt")),
            });
        }
        s.memory.raw = read_keyed(find(dirs, "memory.stat"));
        s.memory.cache = s
            .memory
            .raw
            .get("total_cache")
            .or_else(|| s.memory.raw.get("cache"))
            .copied();
    } else if let Some(usage) = read_value(find(dirs, "memory.current")) {
        let events = read_keyed(find(dirs, "memory.events"));
        s.memory.usage = MemoryEntry {
            limit: read_value(find(dirs, "memory.max")),
            usage: Some(usage),
            max: read_value(find(dirs, "memory.peak")),
            failcnt: events.get("max").copied(),
        };
        if let Some(u) = read_value(find(dirs, "memory.swap.current")) {
            s.memory.swap = Some(MemoryEntry {
                limit: read_value(find(dirs, "memory.swap.max")),
                usage: Some(u),
                max: read_value(find(dirs, "memory.swap.peak")),
                failcnt: read_keyed(find(dirs, "memory.swap.events"))
                    .get("max")
                    .copied(),
            });
        }
        s.memory.raw = read_keyed(find(dirs, "memory.stat"));
        s.memory.cache = s.memory.raw.get("file").copied();
    }
    s.pids.current = read_value(find(dirs, "pids.current"));
    s.pids.limit = read_value(find(dirs, "pids.max")).filter(|v| *v != u64::MAX);
    s
}

/// `events --stats ID`: one statistics snapshot.
pub fn stats(root: &StateRoot, id: &str) -> Result<Event> {
    let (rec, _) = running_record(root, id)?;
    let cg = container::open_cgroup_of(&rec)?;
    Ok(Event {
        kind: EventKind::Stats,
        id: id.into(),
        data: Some(stats_of(cg.as_ref())),
    })
}

/// The record of a container that has a live init (created, running or paused), read under
/// a shared lock that is released before returning (so a long `events` never holds up
/// `delete`).
fn running_record(root: &StateRoot, id: &str) -> Result<(Record, Status)> {
    let dir = root.open_shared(id)?;
    let rec = dir.read()?;
    let status = container::status_of(&dir, &rec);
    if status == Status::Stopped {
        return Err(Error::BadStatus {
            id: id.into(),
            status: status.to_string(),
            what: "events and statistics need a container that is not stopped".into(),
        });
    }
    Ok((rec, status))
}

/// Notification of OOM kills in a cgroup: v1 through an eventfd registered on
/// memory.oom_control (cgroup.event_control), v2 through inotify on memory.events. The fd
/// becomes readable when something happened; [`OomWatch::check`] counts new OOM kills.
#[derive(Debug)]
pub struct OomWatch {
    fd: Option<OwnedFd>,
    /// Kept open while the v1 registration lives.
    _control: Option<OwnedFd>,
    /// memory.oom_control (v1) or memory.events (v2).
    file: PathBuf,
    v1: bool,
    last: u64,
}

impl OomWatch {
    /// Watch the cgroup with these directories. `Ok(None)` when it has no memory controller.
    pub fn new(dirs: &[PathBuf]) -> Result<Option<OomWatch>> {
        if let Some(file) = find(dirs, "memory.oom_control") {
            let dir = file.parent().expect("file in a dir").to_path_buf();
            let efd = rustix::event::eventfd(
                0,
                rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
            )
            .ctx(|| "eventfd for OOM notification".to_string())?;
            let control = rustix::fs::open(&file, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
                .ctx(|| format!("opening {}", file.display()))?;
            use std::os::fd::AsRawFd;
            let line = format!("{} {}", efd.as_raw_fd(), control.as_raw_fd());
            let ec = dir.join("cgroup.event_control");
            std::fs::write(&ec, &line).ctx(|| {
                format!(
                    "registering for OOM events: writing {line:?} to {}",
                    ec.display()
                )
            })?;
            let last = oom_count(&file, true).unwrap_or(0);
            return Ok(Some(OomWatch {
                fd: Some(efd),
                _control: Some(control),
                file,
                v1: true,
                last,
            }));
        }
        if let Some(file) = find(dirs, "memory.events") {
            use rustix::fs::inotify;
            let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)
                .ctx(|| "inotify_init1".to_string())?;
            inotify::add_watch(&fd, &file, inotify::WatchFlags::MODIFY)
                .ctx(|| format!("inotify watch on {}", file.display()))?;
            let last = oom_count(&file, false).unwrap_or(0);
            return Ok(Some(OomWatch {
                fd: Some(fd),
                _control: None,
                file,
                v1: false,
                last,
            }));
        }
        Ok(None)
    }

    /// The fd to poll for readability.
    pub fn fd(&self) -> Option<&OwnedFd> {
        self.fd.as_ref()
    }

    /// Drain the notification fd and return how many OOM kills happened since the last call
    /// (0 when the cgroup is gone).
    pub fn check(&mut self) -> u64 {
        if let Some(fd) = &self.fd {
            let mut buf = [0u8; 4096];
            while matches!(rustix::io::read(fd, &mut buf), Ok(n) if n > 0) {}
        }
        match oom_count(&self.file, self.v1) {
            Some(n) if n > self.last => {
                let d = n - self.last;
                self.last = n;
                d
            }
            _ => 0,
        }
    }
}

fn oom_count(file: &Path, v1: bool) -> Option<u64> {
    let _ = v1; // both files name the count "oom_kill"
    parse_keyed(&std::fs::read_to_string(file).ok()?)
        .get("oom_kill")
        .copied()
}

/// `events ID`: a stats event every `interval`, an oom event whenever the OOM killer kills in
/// the container, until the container's init exits (or `emit` fails, e.g. stdout closed).
pub fn events(
    root: &StateRoot,
    id: &str,
    interval: Duration,
    mut emit: impl FnMut(&Event) -> Result<()>,
) -> Result<()> {
    let (rec, _) = running_record(root, id)?;
    let cg = container::open_cgroup_of(&rec)?;
    let pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(rec.pid).expect("live pid > 0"),
        rustix::process::PidfdFlags::empty(),
    )
    .ctx(|| format!("pidfd_open({}) for container {id:?}", rec.pid))?;
    if crate::sys::process_start_time(rec.pid) != Some(rec.pid_start_time) {
        return Ok(()); // exited (and its pid reused) since we looked
    }
    let dirs = cg.dirs();
    let mut oom = OomWatch::new(&dirs)?;
    let stats_event = || Event {
        kind: EventKind::Stats,
        id: id.into(),
        data: Some(stats_from_dirs(&dirs)),
    };
    let oom_event = || Event {
        kind: EventKind::Oom,
        id: id.into(),
        data: None,
    };
    let mut next = Instant::now();
    loop {
        let now = Instant::now();
        if now >= next {
            emit(&stats_event())?;
            next = now + interval;
        }
        let wait = next.saturating_duration_since(Instant::now());
        let ts = rustix::time::Timespec {
            tv_sec: wait.as_secs() as i64,
            tv_nsec: wait.subsec_nanos() as i64,
        };
        let mut fds = vec![rustix::event::PollFd::new(
            &pidfd,
            rustix::event::PollFlags::IN,
        )];
        if let Some(fd) = oom.as_ref().and_then(|o| o.fd()) {
            fds.push(rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN));
        }
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e).ctx(|| "poll in events".to_string()),
        }
        let exited = !fds[0].revents().is_empty();
        drop(fds);
        if let Some(o) = oom.as_mut() {
            if o.check() > 0 {
                emit(&oom_event())?;
            }
        }
        if exited {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn res(v: Value) -> LinuxResources {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn update_merges_objects_and_replaces_arrays() {
        let saved = res(
            json!({"memory": {"limit": 64 << 20, "reservation": 32 << 20}, "cpu": {"shares": 512, "cpus": "0"},
            "pids": {"limit": 10}, "devices": [{"allow": false, "access": "rwm"}]}),
        );
        let upd = res(json!({"memory": {"limit": 128 << 20}, "cpu": {"quota": 50000}}));
        let p = plan_update(Some(&saved), &upd).unwrap();
        let m = serde_json::to_value(&p.merged).unwrap();
        assert_eq!(m["memory"]["limit"], 128 << 20);
        assert_eq!(m["memory"]["reservation"], 32 << 20);
        assert_eq!(m["cpu"]["shares"], 512);
        assert_eq!(m["cpu"]["quota"], 50000);
        assert_eq!(m["cpu"]["cpus"], "0");
        assert_eq!(m["pids"]["limit"], 10);
        assert_eq!(m["devices"].as_array().unwrap().len(), 1);
        // Only what the update names is written to the cgroup.
        let a = serde_json::to_value(&p.apply).unwrap();
        assert!(a.get("pids").is_none_or(|v| v.is_null()));
        assert!(a["memory"].get("reservation").is_none_or(|v| v.is_null()));
        assert_eq!(a["memory"]["limit"], 128 << 20);
    }

    #[test]
    fn update_without_saved_resources() {
        let upd = res(json!({"pids": {"limit": 42}}));
        let p = plan_update(None, &upd).unwrap();
        assert_eq!(p.merged.pids().as_ref().unwrap().limit(), 42);
        assert_eq!(p.apply, upd);
    }

    #[test]
    fn swap_follows_limit_when_it_forbade_swap() {
        let saved = res(json!({"memory": {"limit": 64 << 20, "swap": 64 << 20}}));
        let p = plan_update(Some(&saved), &res(json!({"memory": {"limit": 256 << 20}}))).unwrap();
        assert_eq!(p.apply.memory().as_ref().unwrap().swap(), Some(256 << 20));
        assert_eq!(p.merged.memory().as_ref().unwrap().swap(), Some(256 << 20));
        // Swap allowed before: left alone (the cgroup driver rejects swap < limit).
        let saved = res(json!({"memory": {"limit": 64 << 20, "swap": 1 << 30}}));
        let p = plan_update(Some(&saved), &res(json!({"memory": {"limit": 128 << 20}}))).unwrap();
        assert_eq!(p.apply.memory().as_ref().unwrap().swap(), None);
        assert_eq!(p.merged.memory().as_ref().unwrap().swap(), Some(1 << 30));
        // An explicit swap wins.
        let saved = res(json!({"memory": {"limit": 64 << 20, "swap": 64 << 20}}));
        let p = plan_update(
            Some(&saved),
            &res(json!({"memory": {"limit": 128 << 20, "swap": -1}})),
        )
        .unwrap();
        assert_eq!(p.apply.memory().as_ref().unwrap().swap(), Some(-1));
    }

    #[test]
    fn device_update_replaces_the_list() {
        let saved = res(
            json!({"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]}),
        );
        let upd = res(
            json!({"devices": [{"allow": false, "type": "c", "major": 1, "minor": 11, "access": "rwm"}]}),
        );
        let p = plan_update(Some(&saved), &upd).unwrap();
        let d = p.apply.devices().as_ref().unwrap();
        assert_eq!(d.len(), 2);
        assert!(
            d[0].allow()
                && d[0].major().is_none()
                && d[0].typ() == Some(oci_spec::runtime::LinuxDeviceType::A)
        );
        assert_eq!(p.merged.devices().as_ref().unwrap().len(), 2);
        // A list that starts with "deny all" is taken as is.
        let upd = res(json!({"devices": [{"allow": false, "access": "rwm"}]}));
        let p = plan_update(Some(&saved), &upd).unwrap();
        assert_eq!(p.apply.devices().as_ref().unwrap().len(), 1);
    }

    #[test]
    fn event_json_shapes() {
        let mut data = StatsData::default();
        data.cpu.usage.total = Some(1500);
        data.cpu.usage.percpu = vec![1000, 500];
        data.cpu.throttling.throttled_periods = Some(3);
        data.memory.usage = MemoryEntry {
            limit: Some(64 << 20),
            usage: Some(1 << 20),
            max: Some(2 << 20),
            failcnt: Some(0),
        };
        data.pids.current = Some(2);
        let e = Event {
            kind: EventKind::Stats,
            id: "c1".into(),
            data: Some(data),
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            json!({"type": "stats", "id": "c1", "data": {
                "cpu": {"usage": {"total": 1500, "percpu": [1000, 500]}, "throttling": {"throttledPeriods": 3}},
                "memory": {"usage": {"limit": 67108864, "usage": 1048576, "max": 2097152, "failcnt": 0}},
                "pids": {"current": 2}
            }})
        );
        let o = Event {
            kind: EventKind::Oom,
            id: "c1".into(),
            data: None,
        };
        assert_eq!(
            serde_json::to_string(&o).unwrap(),
            r#"{"type":"oom","id":"c1"}"#
        );
    }

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn stats_from_a_v2_tree() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        write(d, "cpu.stat", "usage_usec 2000\nuser_usec 1500\nsystem_usec 500\nnr_periods 10\nnr_throttled 4\nthrottled_usec 30\n");
        write(d, "memory.current", "4096\n");
        write(d, "memory.max", "max\n");
        write(d, "memory.peak", "8192\n");
        write(
            d,
            "memory.events",
            "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\n",
        );
        write(d, "memory.stat", "anon 100\nfile 200\n");
        write(d, "pids.current", "3\n");
        write(d, "pids.max", "max\n");
        let s = stats_from_dirs(&[d.to_path_buf()]);
        assert_eq!(s.cpu.usage.total, Some(2_000_000));
        assert_eq!(s.cpu.usage.user, Some(1_500_000));
        assert_eq!(s.cpu.usage.kernel, Some(500_000));
        assert_eq!(s.cpu.throttling.throttled_periods, Some(4));
        assert_eq!(s.cpu.throttling.throttled_time, Some(30_000));
        assert_eq!(s.memory.usage.limit, Some(u64::MAX));
        assert_eq!(s.memory.usage.max, Some(8192));
        assert_eq!(s.memory.usage.failcnt, Some(7));
        assert_eq!(s.memory.cache, Some(200));
        assert_eq!(s.memory.swap, None);
        assert_eq!(s.pids.current, Some(3));
        assert_eq!(s.pids.limit, None);
    }

    #[test]
    fn stats_from_v1_hierarchies() {
        let t = tempfile::tempdir().unwrap();
        let (cpu, mem, pids) = (
            t.path().join("cpu"),
            t.path().join("memory"),
            t.path().join("pids"),
        );
        for d in [&cpu, &mem, &pids] {
            std::fs::create_dir(d).unwrap();
        }
        write(&cpu, "cpuacct.usage", "123456789\n");
        write(&cpu, "cpuacct.usage_percpu", "100000000 23456789 \n");
        write(&cpu, "cpuacct.stat", "user 10\nsystem 2\n");
        write(
            &cpu,
            "cpu.stat",
            "nr_periods 5\nnr_throttled 1\nthrottled_time 999\n",
        );
        write(&mem, "memory.usage_in_bytes", "1000\n");
        write(&mem, "memory.limit_in_bytes", "67108864\n");
        write(&mem, "memory.max_usage_in_bytes", "2000\n");
        write(&mem, "memory.failcnt", "5\n");
        write(&mem, "memory.memsw.usage_in_bytes", "1100\n");
        write(&mem, "memory.memsw.limit_in_bytes", "67108864\n");
        write(&mem, "memory.stat", "cache 10\ntotal_cache 11\n");
        write(&pids, "pids.current", "1\n");
        write(&pids, "pids.max", "100\n");
        let s = stats_from_dirs(&[cpu, mem, pids]);
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
        assert_eq!(s.cpu.usage.total, Some(123456789));
        assert_eq!(s.cpu.usage.percpu, vec![100000000, 23456789]);
        assert_eq!(s.cpu.usage.user, Some(10 * (1_000_000_000 / hz)));
        assert_eq!(s.cpu.throttling.throttled_time, Some(999));
        assert_eq!(s.memory.usage.limit, Some(64 << 20));
        assert_eq!(s.memory.usage.failcnt, Some(5));
        assert_eq!(s.memory.swap.as_ref().unwrap().usage, Some(1100));
        assert_eq!(s.memory.cache, Some(11));
        assert_eq!(s.pids.limit, Some(100));
    }

    #[test]
    fn keyed_parsing() {
        let m = parse_keyed("a 1\nb max\nbroken\nc x\n");
        assert_eq!(m.get("a"), Some(&1));
        assert_eq!(m.get("b"), Some(&u64::MAX));
        assert_eq!(m.len(), 2);
    }
}

#[cfg(test)]
mod device_tests {
    use oci_spec::runtime::{Linux, LinuxDeviceType};
    use serde_json::json;

    fn rules_for(linux: serde_json::Value) -> Vec<(bool, Option<i64>, String)> {
        let l: Linux = serde_json::from_value(linux).unwrap();
        crate::container::effective_resources(&l)
            .unwrap()
            .devices()
            .clone()
            .unwrap()
            .iter()
            .filter(|d| {
                d.major() == Some(1) && d.minor() == Some(11) && d.typ() == Some(LinuxDeviceType::C)
            })
            .map(|d| (d.allow(), d.minor(), d.access().clone().unwrap_or_default()))
            .collect()
    }

    #[test]
    fn a_created_device_named_by_a_rule_is_only_allowed_to_be_made() {
        let kmsg = json!([{"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11}]);
        // Not named by any rule: allowed in full, after the spec's "deny all".
        let r = rules_for(
            json!({"devices": kmsg, "resources": {"devices": [{"allow": false, "access": "rwm"}]}}),
        );
        assert_eq!(r, vec![(true, Some(11), "rwm".to_string())]);
        // Named by a deny rule: the rule stands; only mknod is added after it.
        let r = rules_for(json!({"devices": kmsg, "resources": {"devices": [
            {"allow": false, "access": "rwm"}, {"allow": false, "type": "c", "major": 1, "minor": 11, "access": "rwm"}]}}));
        assert_eq!(
            r,
            vec![
                (false, Some(11), "rwm".to_string()),
                (true, Some(11), "m".to_string())
            ]
        );
    }
}
