//! Resource control with real containers from the busybox rootfs: memory (OOM kill, reported
//! by `events` and by `cella run`), pids (fork bomb), cpu quota, cpuset, pause/resume and
//! `ps`, `update` of live limits, device rules, `events --stats`.
//!
//! The same tests run on a cgroup v1 / hybrid host and in a pure cgroup v2 guest
//! (tests/cgroup2-vm/run.sh). They need root; without it they print SKIP and pass.
//!
//! Environment: `CELLA_RUNTIME` (runtime under test, default cella-runc), `CELLA_BIN` (the
//! friendly binary, default cella), `CELLA_TEST_ROOTFS` (busybox rootfs, default
//! tests/fixtures/rootfs, built with tests/make-rootfs.sh when missing).

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::{Bundle, Env, Out};
use serde_json::{json, Value};

// ---------------------------------------------------------------- helpers over tests/common

/// The friendly binary under test.
fn friendly() -> PathBuf {
    std::env::var_os("CELLA_BIN")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_cella")))
}

/// These tests measure CPU time and start fork bombs: one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static L: Mutex<()> = Mutex::new(());
    L.lock().unwrap_or_else(|e| e.into_inner())
}

fn unified() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// One container of a test: the test's [`Env`] (which force-deletes it and checks for leaks
/// on drop) and its bundle, with /sys/fs/cgroup mounted and a "deny all" device list.
struct Ctr {
    env: Env,
    b: Bundle,
    id: String,
}

impl Ctr {
    /// None (after printing SKIP) when the tests cannot run here (not root).
    fn new() -> Option<Ctr> {
        let env = Env::new()?;
        let mut b = env.bundle();
        b.add_mount(
            json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
            "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
        );
        b.config_mut()["linux"]["resources"] =
            json!({"devices": [{"allow": false, "access": "rwm"}]});
        let id = b.id.clone();
        Some(Ctr { env, b, id })
    }

    fn sh(&mut self, script: &str) -> &mut Self {
        self.b.sh(script);
        self
    }

    fn config(&mut self) -> &mut Value {
        self.b.config_mut()
    }

    fn resources(&mut self) -> &mut Value {
        &mut self.b.config_mut()["linux"]["resources"]
    }

    /// The runtime with this test's `--root` and `args`, to spawn by hand.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(common::runtime());
        c.arg("--root").arg(&self.env.root).args(args);
        c.stdin(Stdio::null());
        c
    }

    fn rt(&self, args: &[&str]) -> Out {
        self.env.rt(args)
    }

    #[track_caller]
    fn rt_ok(&self, args: &[&str]) -> String {
        let o = self.env.rt(args);
        o.ok();
        o.stdout
    }

    #[track_caller]
    fn create_start(&self) {
        self.env.create_start(&self.b);
    }

    fn run(&self) -> Out {
        self.env.run(&self.b)
    }

    #[track_caller]
    fn status(&self) -> String {
        self.env.status(&self.id)
    }

    /// The container's host cgroup file for `controller` (v1) or in its v2 directory.
    fn cg(&self, controller: &str, file: &str) -> PathBuf {
        let rel = self.b.cgroup_rel();
        if unified() {
            Path::new("/sys/fs/cgroup").join(rel).join(file)
        } else {
            Path::new("/sys/fs/cgroup")
                .join(controller)
                .join(rel)
                .join(file)
        }
    }

    #[track_caller]
    fn cg_read(&self, controller: &str, file: &str) -> String {
        let p = self.cg(controller, file);
        fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .trim()
            .to_string()
    }

    /// CPU time used so far, ns.
    fn cpu_ns(&self) -> u64 {
        if unified() {
            keyed(&self.cg_read("", "cpu.stat"), "usage_usec").unwrap() * 1000
        } else {
            self.cg_read("cpuacct", "cpuacct.usage").parse().unwrap()
        }
    }

    /// A file the container wrote under its /tmp.
    fn ctr_file(&self, name: &str) -> String {
        fs::read_to_string(self.b.rootfs().join("tmp").join(name))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    #[track_caller]
    fn wait_for(&self, what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !f() {
            assert!(
                Instant::now() < deadline,
                "container {}: timed out waiting for {what}",
                self.id
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next()? == key).then(|| it.next()?.parse().ok())?
    })
}

// ---------------------------------------------------------------- tests

#[test]
fn memory_hog_is_oom_killed_and_reported() {
    let _g = serial();
    let Some(mut c) = Ctr::new() else { return };
    c.resources()["memory"] = json!({"limit": 64 << 20, "swap": 64 << 20});
    c.sh("tail /dev/zero");

    // 1. In the foreground: the hog dies of SIGKILL, `run` exits 137.
    let o = c.run();
    assert_eq!(o.code(), Some(137), "memory hog under 64M: {}", o);

    // 2. Detached, watched by `events`: an oom event arrives.
    c.env.create(&c.b).ok();
    let mut ev = c.cmd(&["events", "--interval", "200ms", &c.id]);
    ev.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut ev = ev.spawn().unwrap();
    let mut lines = BufReader::new(ev.stdout.take().unwrap()).lines();
    let Some(Ok(first)) = lines.next() else {
        let _ = ev.kill();
        let o = ev.wait_with_output().unwrap();
        panic!(
            "events printed nothing ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
    };
    let first: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(first["type"], "stats", "{first}");
    assert_eq!(
        first["data"]["memory"]["usage"]["limit"],
        64u64 << 20,
        "{first}"
    );
    c.rt_ok(&["start", &c.id]);
    let killer = {
        let pid = ev.id() as i32;
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(60));
            // SAFETY: kill(2) on our own child (a stuck events process); harmless if reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        })
    };
    let all: Vec<Value> = lines
        .map_while(|l| l.ok())
        .map(|l| serde_json::from_str(&l).unwrap())
        .collect();
    let st = ev.wait().unwrap();
    drop(killer);
    assert!(st.success(), "events ended with {st}; events: {all:?}");
    let ooms: Vec<&Value> = all.iter().filter(|e| e["type"] == "oom").collect();
    assert!(!ooms.is_empty(), "no oom event; got {all:?}");
    assert_eq!(ooms[0], &json!({"type": "oom", "id": c.id}));
    let count = if unified() {
        keyed(&c.cg_read("memory", "memory.events"), "oom_kill")
    } else {
        keyed(&c.cg_read("memory", "memory.oom_control"), "oom_kill")
    };
    assert!(count >= Some(1), "oom_kill count {count:?}");
    assert_eq!(c.status(), "stopped");
    c.rt_ok(&["delete", &c.id]);

    // 3. The friendly command says so, and --stats reports the peak and the kill.
    let state = c.env.scratch("friendly-state");
    let mut f = Command::new(friendly());
    f.arg("--root")
        .arg(&state)
        .args(["run", "--rootfs"])
        .arg(c.b.rootfs());
    f.args([
        "--memory",
        "64M",
        "--memory-swap",
        "64M",
        "--stats",
        "--",
        "tail",
        "/dev/zero",
    ]);
    f.stdin(Stdio::null());
    let o = c.env.run_cmd(f, Duration::from_secs(60));
    let err = o.stderr.clone();
    assert_eq!(o.code(), Some(137), "{}", o);
    assert!(err.contains("out of memory (limit 64 MiB)"), "{}", o);
    let stats = err
        .lines()
        .find(|l| l.starts_with("cella: stats:"))
        .unwrap_or_else(|| panic!("no stats line: {}", o));
    assert!(
        stats.contains("OOM kills 1") || stats.contains("OOM kills 2"),
        "{stats}"
    );
    let peak: f64 = stats
        .split("peak memory ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{stats}"));
    assert!(
        (40.0..=64.5).contains(&peak),
        "peak {peak} MiB under a 64 MiB limit: {stats}"
    );
    assert!(
        fs::read_dir(&state)
            .map(|d| d
                .filter_map(|e| e.ok())
                .filter(|e| e.path().join("state.json").exists())
                .count())
            .unwrap_or(0)
            == 0
    );
}

#[test]
fn fork_bomb_stays_within_pids_limit() {
    let _g = serial();
    let Some(mut c) = Ctr::new() else { return };
    c.resources()["pids"] = json!({"limit": 32});
    c.resources()["cpu"] = json!({"quota": 50000, "period": 100000});
    c.sh("f() { f | f & }; f; sleep 1000");
    c.create_start();
    let max = c.cg("pids", "pids.max");
    assert_eq!(fs::read_to_string(&max).unwrap().trim(), "32");
    let mut highest = 0;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(2) {
        let n: u64 = c.cg_read("pids", "pids.current").parse().unwrap();
        highest = highest.max(n);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        highest <= 32,
        "pids.current reached {highest} over a limit of 32"
    );
    assert!(
        highest >= 16,
        "the bomb did not get going (highest pids.current {highest})"
    );
    let refused = keyed(&c.cg_read("pids", "pids.events"), "max").unwrap_or(0);
    assert!(
        refused > 0,
        "no fork was refused (pids.events max = {refused})"
    );
    // The host stays responsive: a fork+exec here takes well under a second.
    let t = Instant::now();
    assert!(Command::new("true").status().unwrap().success());
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "host fork+exec took {:?}",
        t.elapsed()
    );
    // kill --all takes every process down; delete then removes the cgroup.
    c.rt_ok(&["kill", "--all", &c.id, "KILL"]);
    c.wait_for("the bomb to die", || {
        c.cg_read("pids", "pids.current") == "0"
    });
    c.rt_ok(&["delete", &c.id]);
    assert!(!c.cg("pids", "").exists(), "cgroup left after delete");
}

#[test]
fn cpu_quota_half_holds_a_busy_loop_near_50_percent() {
    let _g = serial();
    let Some(mut c) = Ctr::new() else { return };
    c.resources()["cpu"] = json!({"quota": 50000, "period": 100000});
    // Two busy loops: without the quota they would use two CPUs.
    c.sh("while :; do :; done & while :; do :; done");
    c.create_start();
    std::thread::sleep(Duration::from_millis(500));
    let (u0, t0) = (c.cpu_ns(), Instant::now());
    std::thread::sleep(Duration::from_secs(3));
    let (u1, t1) = (c.cpu_ns(), Instant::now());
    let share = (u1 - u0) as f64 / (t1 - t0).as_nanos() as f64;
    eprintln!(
        "cpu quota 0.5: measured {:.1}% of one CPU over {:?}",
        share * 100.0,
        t1 - t0
    );
    assert!(
        (0.35..=0.65).contains(&share),
        "cpu quota 0.5 measured {:.1}%",
        share * 100.0
    );
    let stat = c.rt_ok(&["events", "--stats", &c.id]);
    let v: Value = serde_json::from_str(&stat).unwrap();
    assert!(
        v["data"]["cpu"]["throttling"]["throttledPeriods"]
            .as_u64()
            .unwrap()
            > 0,
        "{v}"
    );
}

#[test]
fn cpuset_pins_the_container() {
    let _g = serial();
    let Some(mut c) = Ctr::new() else { return };
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let cpu = (ncpu - 1).to_string();
    c.resources()["cpu"] = json!({"cpus": cpu, "mems": "0"});
    c.sh("grep Cpus_allowed_list /proc/self/status");
    let o = c.run();
    assert!(o.success(), "{}", o);
    let out = o.stdout;
    assert_eq!(out.split_whitespace().nth(1), Some(cpu.as_str()), "{out}");
}

#[test]
fn pause_resume_and_ps() {
    let _g = serial();
    let Some(mut c) = Ctr::new() else { return };
    c.sh(
        "i=0; while :; do i=$((i+1)); echo $i > /tmp/n.new; mv /tmp/n.new /tmp/n; sleep 0.05; done",
    );
    c.create_start();
    c.wait_for("the counter to start", || {
        c.ctr_file("n").parse::<u64>().unwrap_or(0) > 2
    });

    let state: Value = serde_json::from_str(&c.rt_ok(&["state", &c.id])).unwrap();
    let pid = state["pid"].as_i64().unwrap();
    let pids: Vec<i64> =
        serde_json::from_str(&c.rt_ok(&["ps", "--format", "json", &c.id])).unwrap();
    assert!(pids.contains(&pid), "ps json {pids:?} lacks the init {pid}");
    let table = c.rt_ok(&["ps", &c.id]);
    assert!(table.lines().next().unwrap().contains("PID"), "{table}");
    assert!(
        table
            .lines()
            .skip(1)
            .any(|l| l.split_whitespace().any(|w| w == pid.to_string())),
        "{table}"
    );

    c.rt_ok(&["pause", &c.id]);
    assert_eq!(c.status(), "paused");
    std::thread::sleep(Duration::from_millis(100));
    let a = c.ctr_file("n");
    std::thread::sleep(Duration::from_millis(600));
    let b = c.ctr_file("n");
    assert_eq!(a, b, "the counter moved while paused");
    let o = c.rt(&["pause", &c.id]);
    assert!(!o.success(), "pausing twice should fail: {}", o);

    c.rt_ok(&["resume", &c.id]);
    assert_eq!(c.status(), "running");
    let before: u64 = b.parse().unwrap();
    c.wait_for("the counter to move again", || {
        c.ctr_file("n").parse::<u64>().unwrap_or(0) > before + 2
    });
    let o = c.rt(&["resume", &c.id]);
    assert!(
        !o.success(),
        "resuming a running container should fail: {}",
        o
    );
}

#[test]
fn update_changes_live_limits() {
    let _g = serial();
    let Some(mut c) = Ctr::new() else { return };
    c.resources()["memory"] = json!({"limit": 64 << 20});
    c.resources()["pids"] = json!({"limit": 20});
    // The container reports what it sees in its own /sys/fs/cgroup.
    c.sh("while :; do \
            for f in /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes; do [ -f $f ] && cat $f > /tmp/mem; done; \
            for f in /sys/fs/cgroup/pids.max /sys/fs/cgroup/pids/pids.max; do [ -f $f ] && cat $f > /tmp/pids; done; \
            sleep 0.05; done");
    c.create_start();
    let mem_file = if unified() {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    assert_eq!(c.cg_read("memory", mem_file), (64u64 << 20).to_string());
    c.wait_for("the container's view", || {
        c.ctr_file("mem") == (64u64 << 20).to_string() && c.ctr_file("pids") == "20"
    });

    c.rt_ok(&["update", "--memory", "128M", "--pids-limit", "50", &c.id]);
    assert_eq!(c.cg_read("memory", mem_file), (128u64 << 20).to_string());
    assert_eq!(c.cg_read("pids", "pids.max"), "50");
    c.wait_for("the container to see 128M and 50", || {
        c.ctr_file("mem") == (128u64 << 20).to_string() && c.ctr_file("pids") == "50"
    });

    // --resources - reads linux.resources from stdin; the flags override it.
    let script = format!(
        "echo '{{\"memory\": {{\"limit\": 100663296}}, \"pids\": {{\"limit\": 7}}}}' | {} --root {} update --resources - --pids-limit 60 {}",
        common::runtime().display(),
        c.env.root.display(),
        c.id
    );
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(&script);
    c.env.run_cmd(cmd, common::TIMEOUT).ok();
    assert_eq!(c.cg_read("memory", mem_file), "100663296");
    assert_eq!(c.cg_read("pids", "pids.max"), "60");

    // The saved config agrees.
    let saved: Value =
        serde_json::from_slice(&fs::read(c.env.root.join(&c.id).join("config.json")).unwrap())
            .unwrap();
    assert_eq!(saved["linux"]["resources"]["memory"]["limit"], 100663296);
    assert_eq!(saved["linux"]["resources"]["pids"]["limit"], 60);

    // A bad value is refused and names the field; nothing changes.
    let o = c.rt(&["update", "--memory", "lots", &c.id]);
    assert!(!o.success() && o.stderr.contains("--memory"), "{}", o);
    assert_eq!(c.cg_read("pids", "pids.max"), "60");

    c.rt_ok(&["kill", &c.id, "KILL"]);
    c.wait_for("the container to stop", || c.status() == "stopped");
    let o = c.rt(&["update", "--pids-limit", "5", &c.id]);
    assert!(!o.success() && o.stderr.contains("stopped"), "{}", o);
}

/// /dev/kmsg is created in the container (linux.devices) and a rule of
/// linux.resources.devices denies it; the default devices keep working. A control container
/// whose rule allows reading /dev/kmsg (not writing) opens it for reading only. Both get
/// CAP_SYSLOG, so that dmesg_restrict is not what stops the read.
#[test]
fn devices_deny_kmsg_and_allow_what_the_spec_allows() {
    let _g = serial();
    for (access, read, write) in [
        (None, "read-denied", "write-denied"),
        (Some("r"), "read-ok", "write-denied"),
    ] {
        let Some(mut c) = Ctr::new() else { return };
        for set in ["bounding", "effective", "permitted"] {
            c.config()["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_SYSLOG"));
        }
        c.config()["linux"]["devices"] = json!([
            {"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 0o644, "uid": 0, "gid": 0}
        ]);
        let rule = match access {
            None => json!({"allow": false, "type": "c", "major": 1, "minor": 11, "access": "rwm"}),
            Some(a) => json!({"allow": true, "type": "c", "major": 1, "minor": 11, "access": a}),
        };
        c.resources()["devices"] = json!([{"allow": false, "access": "rwm"}, rule]);
        c.sh("ls -l /dev/kmsg >/dev/null && echo kmsg-exists; \
              if (exec 3</dev/kmsg) 2>/dev/null; then echo read-ok; else echo read-denied; fi; \
              if (exec 3>/dev/kmsg) 2>/dev/null; then echo write-ok; else echo write-denied; fi; \
              head -c 16 /dev/urandom | wc -c; echo x > /dev/null && echo null-ok");
        let o = c.run();
        o.ok();
        let lines: Vec<&str> = o.stdout.lines().map(str::trim).collect();
        assert_eq!(
            lines,
            ["kmsg-exists", read, write, "16", "null-ok"],
            "kmsg rule {access:?}: {o}"
        );
    }
}

#[test]
fn events_stats_reports_memory_cpu_and_pids() {
    let _g = serial();
    let Some(mut c) = Ctr::new() else { return };
    c.resources()["memory"] = json!({"limit": 64 << 20});
    c.resources()["pids"] = json!({"limit": 10});
    c.sh("i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 1000");
    c.create_start();
    std::thread::sleep(Duration::from_millis(300));
    let out = c.rt_ok(&["events", "--stats", &c.id]);
    assert_eq!(out.lines().count(), 1, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["type"], "stats");
    assert_eq!(v["id"], c.id.as_str());
    let d = &v["data"];
    assert_eq!(d["memory"]["usage"]["limit"], 64u64 << 20, "{d}");
    assert!(d["memory"]["usage"]["usage"].as_u64().unwrap() > 0, "{d}");
    assert!(d["memory"]["usage"]["max"].as_u64().unwrap() > 0, "{d}");
    assert!(
        d["cpu"]["usage"]["total"].as_u64().unwrap() > 1_000_000,
        "{d}"
    );
    assert_eq!(d["pids"]["current"], 1, "{d}");
    assert_eq!(d["pids"]["limit"], 10, "{d}");
    let o = c.rt(&["events", "--stats", "no-such-container"]);
    assert!(
        !o.success() && o.stderr.contains("no-such-container"),
        "{}",
        o
    );
}
