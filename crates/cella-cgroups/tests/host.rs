//! Root-only tests against the real cgroup filesystem of this machine.
//! Each test creates a uniquely named cgroup, and a Drop guard kills the
//! children it started and removes the cgroup even when an assertion fails.
//! Without root they print why and pass without doing anything.

use std::io::{Read, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cella_cgroups::{
    open_existing, open_with, CgroupManager, CgroupPath, Layout, LinuxResources, Mounts,
};

fn skip_reason() -> Option<String> {
    if rustix::process::geteuid().as_raw() != 0 {
        return Some("needs root (cgroup directories are only writable by root)".into());
    }
    match Layout::detect() {
        Ok(_) => None,
        Err(e) => Some(format!("no usable cgroup layout: {e}")),
    }
}

macro_rules! root_only {
    () => {
        if let Some(why) = skip_reason() {
            eprintln!("SKIPPED {}: {why}", module_path!());
            return;
        }
    };
}

fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("/cella-test-{tag}-{}-{nanos}/ctr", std::process::id())
}

struct Guard {
    mgr: Box<dyn CgroupManager>,
    children: Vec<Child>,
    restore: Vec<(PathBuf, String)>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Err(e) = self.mgr.destroy() {
            eprintln!("cleanup: {e}");
        }
        for (file, value) in &self.restore {
            let _ = std::fs::write(file, value);
        }
    }
}

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap().trim().to_string()
}

/// A child that waits for a line on stdin, then runs `script`.
fn spawn_waiting(script: &str) -> Child {
    Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("read _x; {script}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn release(c: &mut Child) {
    let mut stdin = c.stdin.take().unwrap();
    stdin.write_all(b"go\n").unwrap();
}

fn wait_exit(c: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Some(st) = c.try_wait().unwrap() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

fn dir_with(mgr: &dyn CgroupManager, hierarchy: &str) -> PathBuf {
    mgr.dirs()
        .into_iter()
        .find(|d| d.to_string_lossy().contains(&format!("/{hierarchy}/")))
        .unwrap_or_else(|| panic!("no {hierarchy} dir in {:?}", mgr.dirs()))
}

#[test]
fn v1_lifecycle_limits_freeze_kill_destroy() {
    root_only!();
    let layout = Layout::detect().unwrap();
    if layout == Layout::Unified {
        eprintln!("SKIPPED: host is pure cgroup v2 (this test is for the v1 driver)");
        return;
    }
    let spec = unique("v1");
    let path = CgroupPath::resolve(Some(&spec), "ctr").unwrap();
    let mut g = Guard {
        mgr: cella_cgroups::open(layout, &path).unwrap(),
        children: Vec::new(),
        restore: Vec::new(),
    };
    g.mgr.create().unwrap();
    let created = g.mgr.created_dirs();
    assert!(
        created.len() >= 2 && created.iter().all(|d| !g.mgr.dirs().contains(d)),
        "the parent made in each hierarchy, not the container's own dirs: {created:?}"
    );
    for d in g.mgr.dirs() {
        assert!(d.is_dir(), "{}", d.display());
    }
    // cpuset of the new parents was initialised, so tasks can join
    let cpuset = dir_with(&*g.mgr, "cpuset");
    assert!(!read(&cpuset.join("cpuset.cpus")).is_empty());

    g.mgr
        .apply(&res(
            r#"{"memory": {"limit": 67108864, "swap": 67108864, "reservation": 33554432},
                       "cpu": {"shares": 512, "quota": 50000, "period": 100000},
                       "pids": {"limit": 32}}"#,
        ))
        .unwrap();
    let mem = dir_with(&*g.mgr, "memory");
    assert_eq!(read(&mem.join("memory.limit_in_bytes")), "67108864");
    if mem.join("memory.memsw.limit_in_bytes").exists() {
        assert_eq!(read(&mem.join("memory.memsw.limit_in_bytes")), "67108864");
    }
    assert_eq!(read(&mem.join("memory.soft_limit_in_bytes")), "33554432");
    let cpu = dir_with(&*g.mgr, "cpu");
    assert_eq!(read(&cpu.join("cpu.shares")), "512");
    assert_eq!(read(&cpu.join("cpu.cfs_quota_us")), "50000");
    assert_eq!(read(&cpu.join("cpu.cfs_period_us")), "100000");
    assert_eq!(read(&dir_with(&*g.mgr, "pids").join("pids.max")), "32");

    // raise memory above the current memsw: the order of writes must flip
    g.mgr
        .apply(&res(
            r#"{"memory": {"limit": 134217728, "swap": 268435456}}"#,
        ))
        .unwrap();
    assert_eq!(read(&mem.join("memory.limit_in_bytes")), "134217728");

    let child = Command::new("sleep").arg("60").spawn().unwrap();
    let pid = child.id() as i32;
    g.children.push(child);
    g.mgr.add_pid(pid).unwrap();
    assert_eq!(g.mgr.pids().unwrap(), vec![pid]);
    for d in g.mgr.dirs() {
        let procs = read(&d.join("cgroup.procs"));
        assert_eq!(procs, pid.to_string(), "{}", d.display());
    }
    let s = g.mgr.stats().unwrap();
    assert_eq!(s.pids_current, Some(1));
    assert_eq!(s.memory_limit, Some(134217728));
    assert!(s.memory_usage.is_some() && s.cpu_usage_ns.is_some());
    assert_eq!(g.mgr.oom_kill_count().unwrap(), 0);

    g.mgr.freeze().unwrap();
    assert!(g.mgr.is_frozen().unwrap());
    g.mgr.thaw().unwrap();
    assert!(!g.mgr.is_frozen().unwrap());

    g.mgr.kill_all(libc::SIGTERM).unwrap();
    let st = wait_exit(&mut g.children[0], Duration::from_secs(5)).expect("sleep did not die");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(st.signal(), Some(libc::SIGTERM));
    assert!(!g.mgr.is_frozen().unwrap(), "kill_all must thaw again");

    // SIGKILL while paused still kills (kill_all thaws afterwards)
    let child = Command::new("sleep").arg("60").spawn().unwrap();
    let pid = child.id() as i32;
    g.children.push(child);
    g.mgr.add_pid(pid).unwrap();
    g.mgr.freeze().unwrap();
    g.mgr.kill_all(libc::SIGKILL).unwrap();
    let st = wait_exit(&mut g.children[1], Duration::from_secs(5)).expect("sleep did not die");
    assert_eq!(st.signal(), Some(libc::SIGKILL));

    // a later command destroys from the persisted list of created dirs
    let later = open_existing(layout, &path, created.clone()).unwrap();
    let child = Command::new("sleep").arg("60").spawn().unwrap();
    later.add_pid(child.id() as i32).unwrap();
    g.children.push(child);
    later.destroy().unwrap();
    for d in created.iter().chain(later.dirs().iter()) {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    // destroying again is fine
    later.destroy().unwrap();
}

#[test]
fn v1_oom_kill_is_counted() {
    root_only!();
    let layout = Layout::detect().unwrap();
    if layout == Layout::Unified {
        eprintln!("SKIPPED: host is pure cgroup v2");
        return;
    }
    let path = CgroupPath::resolve(Some(&unique("oom")), "ctr").unwrap();
    let mut g = Guard {
        mgr: cella_cgroups::open(layout, &path).unwrap(),
        children: Vec::new(),
        restore: Vec::new(),
    };
    g.mgr.create().unwrap();
    g.mgr
        .apply(&res(
            r#"{"memory": {"limit": 33554432, "swap": 33554432}, "pids": {"limit": 8}}"#,
        ))
        .unwrap();
    let mut c = spawn_waiting("exec tail /dev/zero");
    g.mgr.add_pid(c.id() as i32).unwrap();
    release(&mut c);
    let st = wait_exit(&mut c, Duration::from_secs(30)).expect("memory hog was not killed");
    g.children.push(c);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(st.signal(), Some(libc::SIGKILL));
    assert!(g.mgr.oom_kill_count().unwrap() >= 1);
    let s = g.mgr.stats().unwrap();
    assert!(s.oom_kill.unwrap() >= 1);
    assert!(s.memory_peak.unwrap() >= 30 << 20, "{s:?}");
}

#[test]
fn v1_pids_limit_stops_forks() {
    root_only!();
    let layout = Layout::detect().unwrap();
    if layout == Layout::Unified {
        eprintln!("SKIPPED: host is pure cgroup v2");
        return;
    }
    let path = CgroupPath::resolve(Some(&unique("pids")), "ctr").unwrap();
    let mut g = Guard {
        mgr: cella_cgroups::open(layout, &path).unwrap(),
        children: Vec::new(),
        restore: Vec::new(),
    };
    g.mgr.create().unwrap();
    g.mgr.apply(&res(r#"{"pids": {"limit": 3}}"#)).unwrap();
    let mut c = spawn_waiting(
        "n=0; for i in 1 2 3 4 5 6; do sleep 5 & n=$((n+1)); done 2>/dev/null; \
         echo started; kill $(jobs -p) 2>/dev/null; wait",
    );
    g.mgr.add_pid(c.id() as i32).unwrap();
    release(&mut c);
    let st = wait_exit(&mut c, Duration::from_secs(20)).expect("shell hung");
    let mut out = String::new();
    c.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    g.children.push(c);
    // the shell is killed or fails a fork: it never gets to print "started" with 6 children
    let pids_events = dir_with(&*g.mgr, "pids").join("pids.events");
    let events = read(&pids_events);
    assert!(
        events.contains("max ") && !events.contains("max 0"),
        "no fork was refused: {events}; {st:?} {out}"
    );
}

#[test]
fn unsupported_fields_fail_on_this_host() {
    root_only!();
    let layout = Layout::detect().unwrap();
    if layout == Layout::Unified {
        eprintln!("SKIPPED: host is pure cgroup v2");
        return;
    }
    let path = CgroupPath::resolve(Some(&unique("unsup")), "ctr").unwrap();
    let mut g = Guard {
        mgr: cella_cgroups::open(layout, &path).unwrap(),
        children: Vec::new(),
        restore: Vec::new(),
    };
    g.mgr.create().unwrap();
    let err = g
        .mgr
        .apply(&res(r#"{"unified": {"memory.high": "1"}}"#))
        .unwrap_err()
        .to_string();
    assert!(err.contains("linux.resources.unified"), "{err}");
    let mounts = Mounts::detect().unwrap();
    if mounts.v1_for("net_cls").is_none() {
        let err = g
            .mgr
            .apply(&res(r#"{"network": {"classID": 1}}"#))
            .unwrap_err()
            .to_string();
        assert!(err.contains("linux.resources.network.classID"), "{err}");
    }
    // kernel memory limits: either honoured or refused, never silently dropped
    match g.mgr.apply(&res(r#"{"memory": {"kernel": 67108864}}"#)) {
        Ok(()) => {
            eprintln!("memory.kernel honoured by this kernel");
            let mem = dir_with(&*g.mgr, "memory");
            assert_eq!(read(&mem.join("memory.kmem.limit_in_bytes")), "67108864");
        }
        Err(e) => {
            eprintln!("memory.kernel refused: {e}");
            assert!(
                e.to_string().contains("linux.resources.memory.kernel"),
                "{e}"
            )
        }
    }
    // devices on v1
    g.mgr
        .apply(&res(r#"{"devices": [{"allow": false, "access": "rwm"},
                                    {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]}"#))
        .unwrap();
    let list = read(&dir_with(&*g.mgr, "devices").join("devices.list"));
    assert_eq!(list, "c 1:3 rwm");
}

/// The cgroup2 mount of this host (hybrid: /sys/fs/cgroup/unified) driven
/// by the v2 driver: placement, freeze, cgroup.kill, and the eBPF device
/// program, which the kernel runs for a task's cgroup2 cgroup.
#[test]
fn v2_driver_on_the_cgroup2_mount() {
    root_only!();
    let mounts = Mounts::detect().unwrap();
    let Some(unified) = mounts.unified.clone() else {
        eprintln!("SKIPPED: no cgroup2 mount");
        return;
    };
    let only_v2 = Mounts {
        v1: Vec::new(),
        unified: Some(unified.clone()),
    };
    let root_sc = unified.mount_point.join("cgroup.subtree_control");
    let before = read(&root_sc);
    let path = CgroupPath::resolve(Some(&unique("v2")), "ctr").unwrap();
    let mut g = Guard {
        mgr: open_with(&only_v2, Layout::Unified, &path, Vec::new()).unwrap(),
        children: Vec::new(),
        restore: Vec::new(),
    };
    g.mgr.create().unwrap();
    // put the root's subtree_control back as it was, afterwards
    let after = read(&root_sc);
    for c in after.split_whitespace() {
        if !before.split_whitespace().any(|b| b == c) {
            g.restore.push((root_sc.clone(), format!("-{c}")));
        }
    }
    let fd = g.mgr.unified_dir_fd().unwrap().expect("v2 gives an fd");
    drop(fd);

    g.mgr
        .apply(&res(r#"{"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "r"}]}"#))
        .unwrap();
    let mut c = spawn_waiting(
        "(echo x > /dev/null) 2>/dev/null && echo null-write-ok; \
         (head -c1 /dev/zero >/dev/null) 2>/dev/null && echo zero-read-ok; \
         (echo x > /dev/zero) 2>/dev/null || echo zero-write-denied; \
         (head -c1 /dev/urandom >/dev/null) 2>/dev/null || echo urandom-denied",
    );
    g.mgr.add_pid(c.id() as i32).unwrap();
    assert_eq!(g.mgr.pids().unwrap(), vec![c.id() as i32]);
    release(&mut c);
    wait_exit(&mut c, Duration::from_secs(10)).expect("device probe hung");
    let mut out = String::new();
    c.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    g.children.push(c);
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        vec![
            "null-write-ok",
            "zero-read-ok",
            "zero-write-denied",
            "urandom-denied"
        ]
    );

    // an update replaces the program instead of stacking a second one
    g.mgr
        .apply(&res(r#"{"devices": [{"allow": true, "access": "rwm"}]}"#))
        .unwrap();
    let mut c = spawn_waiting("(head -c1 /dev/urandom >/dev/null) 2>/dev/null && echo urandom-ok");
    g.mgr.add_pid(c.id() as i32).unwrap();
    release(&mut c);
    wait_exit(&mut c, Duration::from_secs(10)).expect("probe hung");
    let mut out = String::new();
    c.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    g.children.push(c);
    assert_eq!(out.trim(), "urandom-ok");

    // freeze / thaw / cgroup.kill
    let child = Command::new("sleep").arg("60").spawn().unwrap();
    let pid = child.id() as i32;
    g.children.push(child);
    g.mgr.add_pid(pid).unwrap();
    g.mgr.freeze().unwrap();
    assert!(g.mgr.is_frozen().unwrap());
    g.mgr.thaw().unwrap();
    assert!(!g.mgr.is_frozen().unwrap());
    g.mgr.kill_all(libc::SIGKILL).unwrap();
    let n = g.children.len() - 1;
    wait_exit(&mut g.children[n], Duration::from_secs(5)).expect("cgroup.kill did not kill");
    let created = g.mgr.created_dirs();
    g.mgr.destroy().unwrap();
    for d in created.iter().chain(g.mgr.dirs().iter()) {
        assert!(!d.exists(), "{} left behind", d.display());
    }
}

/// Pure cgroup v2 hosts (run in the cgroup2 VM): limits read back through
/// the real files, the OOM kill count and removal.
#[test]
fn v2_limits_oom_and_destroy() {
    root_only!();
    let layout = Layout::detect().unwrap();
    if layout != Layout::Unified {
        eprintln!("SKIPPED: host is not pure cgroup v2 ({layout:?})");
        return;
    }
    let path = CgroupPath::resolve(Some(&unique("v2lim")), "ctr").unwrap();
    let mut g = Guard {
        mgr: cella_cgroups::open(layout, &path).unwrap(),
        children: Vec::new(),
        restore: Vec::new(),
    };
    g.mgr.create().unwrap();
    let dir = g.mgr.dirs()[0].clone();
    g.mgr
        .apply(&res(
            r#"{"memory": {"limit": 33554432, "swap": 33554432, "reservation": 16777216},
                       "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0"},
                       "pids": {"limit": 16},
                       "unified": {"memory.high": "30000000"}}"#,
        ))
        .unwrap();
    assert_eq!(read(&dir.join("memory.max")), "33554432");
    assert_eq!(read(&dir.join("memory.low")), "16777216");
    if dir.join("memory.swap.max").exists() {
        assert_eq!(read(&dir.join("memory.swap.max")), "0");
    }
    assert_eq!(read(&dir.join("cpu.weight")), "39");
    assert_eq!(read(&dir.join("cpu.max")), "50000 100000");
    assert_eq!(read(&dir.join("cpuset.cpus")), "0");
    assert_eq!(read(&dir.join("pids.max")), "16");
    assert_eq!(read(&dir.join("memory.high")), "29999104"); // page-rounded
    let err = g
        .mgr
        .apply(&res(r#"{"memory": {"kernel": 4096}}"#))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("linux.resources.memory.kernel is not supported on cgroup v2"),
        "{err}"
    );
    g.mgr
        .apply(&res(r#"{"unified": {"memory.high": "max"}}"#))
        .unwrap();

    let mut c = spawn_waiting("exec tail /dev/zero");
    g.mgr.add_pid(c.id() as i32).unwrap();
    release(&mut c);
    let st = wait_exit(&mut c, Duration::from_secs(60)).expect("memory hog was not killed");
    g.children.push(c);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(st.signal(), Some(libc::SIGKILL));
    assert!(g.mgr.oom_kill_count().unwrap() >= 1);
    let s = g.mgr.stats().unwrap();
    assert_eq!(s.memory_limit, Some(33554432));
    assert!(s.cpu_usage_ns.unwrap() > 0, "{s:?}");

    let child = Command::new("sleep").arg("60").spawn().unwrap();
    g.mgr.add_pid(child.id() as i32).unwrap();
    g.children.push(child);
    let created = g.mgr.created_dirs();
    g.mgr.destroy().unwrap();
    for d in created.iter().chain(g.mgr.dirs().iter()) {
        assert!(!d.exists(), "{} left behind", d.display());
    }
}
