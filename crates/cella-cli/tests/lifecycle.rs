//! The container life cycle through the runc command line: create, start, state, kill,
//! delete, run, list, spec, and the global options.

mod common;

use common::*;
use serde_json::json;
use std::fs;
use std::path::Path;

/// A script that reports TERM on stdout and exits 7 when it gets it. A signal sent from
/// outside to a pid namespace's init is only delivered when init handles it, so a trap is
/// needed for anything but KILL.
const TRAP_TERM: &str =
    "trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 1 & wait $!; done";

fn pid_alive(pid: i64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

/// Waits until the container's stdout (the create command's stdout file) contains `what`.
fn wait_output(out: &Out, what: &str) {
    let deadline = std::time::Instant::now() + TIMEOUT;
    while !out.stdout_now().contains(what) {
        assert!(
            std::time::Instant::now() < deadline,
            "container never printed {what:?}; stdout so far: {:?}",
            out.stdout_now()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn create_leaves_status_created_with_a_live_pid() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.args(&["sleep", "1000"]);
    env.create(&b).ok();
    let st = env.state(&b.id);
    assert_eq!(st["status"], "created", "{st}");
    let pid = st["pid"].as_i64().expect("state.pid is a number");
    assert!(pid > 1, "state.pid {pid}");
    assert!(
        pid_alive(pid),
        "pid {pid} of a created container is not alive"
    );
}

#[test]
fn create_writes_pid_file_without_newline() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.args(&["sleep", "1000"]);
    let pid_file = env.tmp.join("container.pid");
    env.create_with(&b, &["--pid-file", pid_file.to_str().unwrap()])
        .ok();
    let text = fs::read_to_string(&pid_file).expect("pid file written");
    assert_eq!(
        text.trim(),
        text,
        "pid file has surrounding whitespace: {text:?}"
    );
    let pid: i64 = text.parse().expect("pid file holds a number");
    assert_eq!(env.state(&b.id)["pid"], json!(pid));
}

#[test]
fn start_makes_a_created_container_running() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.args(&["sleep", "1000"]);
    env.create(&b).ok();
    env.start(&b.id).ok();
    assert_eq!(env.status(&b.id), "running");
}

#[test]
fn start_runs_the_process_only_at_start() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.sh("echo started-now");
    let created = env.create(&b);
    created.ok();
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(
        !created.stdout_now().contains("started-now"),
        "the user process ran before start"
    );
    env.start(&b.id).ok();
    wait_output(&created, "started-now");
}

#[test]
fn start_twice_is_rejected() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.args(&["sleep", "1000"]);
    env.create_start(&b);
    env.start(&b.id).failed();
    assert_eq!(env.status(&b.id), "running");
}

#[test]
fn process_exit_makes_the_container_stopped() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.args(&["true"]);
    env.create_start(&b);
    env.wait_status(&b.id, "stopped");
}

#[test]
fn state_json_has_the_oci_fields_and_annotations() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.args(&["sleep", "1000"]);
    b.config_mut()["annotations"] = json!({"org.example.key": "value-1", "other": "x y"});
    env.create(&b).ok();
    let st = env.state(&b.id);
    assert!(st["ociVersion"].is_string(), "ociVersion: {st}");
    assert_eq!(st["id"], json!(b.id), "{st}");
    assert_eq!(st["status"], "created", "{st}");
    assert!(st["pid"].as_i64().is_some_and(|p| p > 0), "pid: {st}");
    let bundle = st["bundle"].as_str().expect("state.bundle is a string");
    assert_eq!(
        Path::new(bundle).canonicalize().unwrap(),
        b.dir.canonicalize().unwrap(),
        "state.bundle"
    );
    assert_eq!(
        st["annotations"],
        json!({"org.example.key": "value-1", "other": "x y"}),
        "annotations are passed through: {st}"
    );
}

fn check_term_delivered(signal: &str) {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.sh(TRAP_TERM);
    let created = env.create(&b);
    created.ok();
    env.start(&b.id).ok();
    wait_output(&created, "ready");
    env.kill(&b.id, signal).ok();
    env.wait_status(&b.id, "stopped");
    assert!(
        created.stdout_now().contains("got-term"),
        "kill {signal} did not deliver SIGTERM; output: {:?}",
        created.stdout_now()
    );
}

#[test]
fn kill_with_name_term() {
    check_term_delivered("TERM");
}

#[test]
fn kill_with_name_sigterm() {
    check_term_delivered("SIGTERM");
}

#[test]
fn kill_with_number_15() {
    check_term_delivered("15");
}

#[test]
fn kill_without_signal_sends_term() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.sh(TRAP_TERM);
    let created = env.create(&b);
    created.ok();
    env.start(&b.id).ok();
    wait_output(&created, "ready");
    env.rt(&["kill", &b.id]).ok();
    env.wait_status(&b.id, "stopped");
    assert!(created.stdout_now().contains("got-term"));
}

#[test]
fn kill_with_kill_stops_an_untrapping_init() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.args(&["sleep", "1000"]);
    env.create_start(&b);
    let pid = env.state(&b.id)["pid"].as_i64().unwrap();
    env.kill(&b.id, "KILL").ok();
    env.wait_status(&b.id, "stopped");
    assert!(!pid_alive(pid), "pid {pid} survived KILL");
}

#[test]
fn kill_with_number_9() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.args(&["sleep", "1000"]);
    env.create_start(&b);
    env.kill(&b.id, "9").ok();
    env.wait_status(&b.id, "stopped");
}

#[test]
fn kill_rejects_an_unknown_signal_name() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.args(&["sleep", "1000"]);
    env.create_start(&b);
    env.kill(&b.id, "SIGBANANA").failed();
    env.kill(&b.id, "BANANA").failed();
    assert_eq!(
        env.status(&b.id),
        "running",
        "a bad signal must not touch the container"
    );
}

#[test]
fn kill_all_reaches_every_process_in_the_container() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    // Without a pid namespace, killing init alone would leave its children running.
    b.remove_namespace("pid");
    b.sh("sleep 1000 & sleep 1001 & echo ready; wait");
    let created = env.create(&b);
    created.ok();
    env.start(&b.id).ok();
    wait_output(&created, "ready");
    let cg = b.cgroup_rel();
    let deadline = std::time::Instant::now() + TIMEOUT;
    while processes_of(Some(&cg), None).len() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "children never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    env.rt(&["kill", "--all", &b.id, "KILL"]).ok();
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let left = processes_of(Some(&cg), None);
        if left.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "kill --all left processes: {left:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    env.wait_status(&b.id, "stopped");
}

#[test]
fn delete_removes_a_stopped_container_completely() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.args(&["true"]);
    env.create_start(&b);
    env.wait_status(&b.id, "stopped");
    env.delete(&b.id).ok();
    env.rt(&["state", &b.id]).failed();
    env.assert_no_leaks(&b);
}

#[test]
fn delete_of_a_created_container_removes_it() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.args(&["sleep", "1000"]);
    env.create(&b).ok();
    let pid = env.state(&b.id)["pid"].as_i64().unwrap();
    env.delete(&b.id).ok();
    env.rt(&["state", &b.id]).failed();
    assert!(
        !pid_alive(pid),
        "the created container's init {pid} survived delete"
    );
    env.assert_no_leaks(&b);
}

#[test]
fn delete_refuses_a_running_container_without_force() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.args(&["sleep", "1000"]);
    env.create_start(&b);
    env.delete(&b.id).failed();
    assert_eq!(env.status(&b.id), "running");
}

#[test]
fn delete_force_kills_and_removes_a_running_container() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.args(&["sleep", "1000"]);
    env.create_start(&b);
    let pid = env.state(&b.id)["pid"].as_i64().unwrap();
    env.rt(&["delete", "--force", &b.id]).ok();
    assert!(!pid_alive(pid), "pid {pid} survived delete --force");
    env.rt(&["state", &b.id]).failed();
    env.assert_no_leaks(&b);
}

#[test]
fn run_returns_the_exit_code() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.sh("echo hello; exit 3");
    let out = env.run(&b);
    assert_eq!(out.code(), Some(3), "{out}");
    assert_eq!(out.stdout, "hello\n");
    env.assert_no_leaks(&b);
}

#[test]
fn run_returns_zero_on_success() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.args(&["true"]);
    let out = env.run(&b);
    assert_eq!(out.code(), Some(0), "{out}");
}

#[test]
fn run_returns_128_plus_signal_when_killed() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    // Without a pid namespace sh is not an init, so it can die of its own signal.
    b.remove_namespace("pid");
    b.sh("kill -USR1 $$; sleep 5");
    let out = env.run(&b);
    assert_eq!(out.code(), Some(128 + libc::SIGUSR1), "{out}");
    env.assert_no_leaks(&b);
}

#[test]
fn run_returns_137_when_init_is_killed_from_outside() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.sh("echo $$ > /tmp/pid-seen; exec sleep 1000");
    // Kill init from the host once it is running.
    let id = b.id.clone();
    let root = env.root.clone();
    let killer = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + TIMEOUT;
        while std::time::Instant::now() < deadline {
            let out = std::process::Command::new(runtime())
                .args(["--root", root.to_str().unwrap(), "kill", &id, "KILL"])
                .output()
                .expect("kill");
            if out.status.success() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        false
    });
    let out = env.run(&b);
    assert!(killer.join().unwrap(), "could not kill the container");
    assert_eq!(out.code(), Some(137), "{out}");
}

#[test]
fn run_detach_returns_while_the_container_runs() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.sh("echo detached-output; exec sleep 1000");
    let out = env.run_with(&b, &["--detach"]);
    out.ok();
    let st = env.state(&b.id);
    assert_eq!(st["status"], "running", "{st}");
    assert!(pid_alive(st["pid"].as_i64().unwrap()));
    wait_output(&out, "detached-output");
}

#[test]
fn run_detach_short_form() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.args(&["sleep", "1000"]);
    env.run_with(&b, &["-d"]).ok();
    assert_eq!(env.status(&b.id), "running");
}

#[test]
fn duplicate_id_is_rejected_and_the_first_container_survives() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.args(&["sleep", "1000"]);
    env.create(&b).ok();
    let pid = env.state(&b.id)["pid"].clone();
    let mut other = env.bundle();
    other.args(&["sleep", "1000"]);
    other.id = b.id.clone();
    env.create(&other).failed();
    let st = env.state(&b.id);
    assert_eq!(st["pid"], pid, "the first container was replaced: {st}");
    assert_eq!(st["status"], "created");
    // The second bundle's own cgroup path must not have been left behind.
    let leaks = env.leaks_of("\0", Some(&other.dir), &other.cgroup_rel());
    assert!(leaks.is_empty(), "{leaks:?}");
}

#[test]
fn unknown_id_says_does_not_exist() {
    let Some(env) = Env::new() else { return };
    let id = env.new_id();
    for args in [
        vec!["state", id.as_str()],
        vec!["start", id.as_str()],
        vec!["kill", id.as_str(), "KILL"],
        vec!["delete", id.as_str()],
    ] {
        let out = env.rt(&args);
        out.failed().stderr_mentions(&["does not exist"]);
    }
}

#[test]
fn delete_force_of_unknown_id_succeeds() {
    // `delete --force` is what engines call to make sure a container is gone.
    let Some(env) = Env::new() else { return };
    let id = env.new_id();
    env.rt(&["delete", "--force", &id]).ok();
}

#[test]
fn list_shows_containers_in_a_table() {
    let Some(env) = Env::new() else { return };
    let mut a = env.bundle();
    a.args(&["sleep", "1000"]);
    let mut b = env.bundle();
    b.args(&["sleep", "1000"]);
    env.create(&a).ok();
    env.create_start(&b);
    let out = env.rt(&["list"]);
    out.ok();
    let mut lines = out.stdout.lines();
    let header = lines.next().expect("list prints a header");
    for col in ["ID", "PID", "STATUS", "BUNDLE"] {
        assert!(header.contains(col), "header {header:?} lacks {col}");
    }
    let rows: Vec<&str> = lines.collect();
    let row_a = rows
        .iter()
        .find(|r| r.starts_with(&a.id))
        .expect("row for a");
    let row_b = rows
        .iter()
        .find(|r| r.starts_with(&b.id))
        .expect("row for b");
    assert!(row_a.contains("created"), "{row_a}");
    assert!(row_b.contains("running"), "{row_b}");
    assert_eq!(rows.len(), 2, "{}", out.stdout);
}

#[test]
fn list_quiet_prints_only_ids() {
    let Some(env) = Env::new() else { return };
    let mut a = env.bundle();
    a.args(&["sleep", "1000"]);
    env.create(&a).ok();
    let out = env.rt(&["list", "-q"]);
    out.ok();
    assert_eq!(out.stdout, format!("{}\n", a.id));
}

#[test]
fn list_format_json() {
    let Some(env) = Env::new() else { return };
    let mut a = env.bundle();
    a.args(&["sleep", "1000"]);
    env.create_start(&a);
    let out = env.rt(&["list", "--format", "json"]);
    out.ok();
    let v = out.json();
    let arr = v.as_array().expect("list --format json prints an array");
    assert_eq!(arr.len(), 1, "{v}");
    let c = &arr[0];
    assert_eq!(c["id"], json!(a.id));
    assert_eq!(c["status"], "running");
    assert!(c["pid"].as_i64().is_some_and(|p| p > 0), "{c}");
    assert_eq!(
        Path::new(c["bundle"].as_str().unwrap())
            .canonicalize()
            .unwrap(),
        a.dir.canonicalize().unwrap()
    );
    assert!(c["created"].is_string(), "{c}");
}

#[test]
fn spec_writes_a_config_that_run_accepts() {
    let Some(env) = Env::new() else { return };
    let b = env.bundle();
    fs::remove_file(b.dir.join("config.json")).ok();
    env.rt(&["spec", "--bundle", b.dir.to_str().unwrap()]).ok();
    let text = fs::read_to_string(b.dir.join("config.json")).expect("spec wrote config.json");
    let mut cfg: serde_json::Value = serde_json::from_str(&text).expect("config.json is JSON");
    assert!(cfg["ociVersion"]
        .as_str()
        .is_some_and(|v| v.starts_with("1.")));
    assert_eq!(cfg["root"]["path"], "rootfs");
    assert!(cfg["process"]["args"]
        .as_array()
        .is_some_and(|a| !a.is_empty()));
    // The test has no terminal; everything else is as `spec` wrote it.
    cfg["process"]["terminal"] = json!(false);
    cfg["process"]["args"] = json!(["sh", "-c", "echo from-spec"]);
    fs::write(b.dir.join("config.json"), cfg.to_string()).unwrap();
    // The spec has no cgroupsPath: the runtime uses /cella/<id> (the parent `cella` is
    // kept between containers; the container's own directory must go).
    env.track(&b.id, &format!("cella/{}", b.id));
    let out = env.rt(&["run", "--bundle", b.dir.to_str().unwrap(), &b.id]);
    out.ok();
    assert_eq!(out.stdout, "from-spec\n");
}

#[test]
fn spec_refuses_to_overwrite_config() {
    let Some(env) = Env::new() else { return };
    let b = env.bundle();
    b.write_config();
    let before = fs::read(b.dir.join("config.json")).unwrap();
    env.rt(&["spec", "--bundle", b.dir.to_str().unwrap()])
        .failed();
    assert_eq!(fs::read(b.dir.join("config.json")).unwrap(), before);
}

#[test]
fn log_json_gets_one_object_per_line_on_error() {
    let Some(env) = Env::new() else { return };
    let id = env.new_id();
    let log = env.tmp.join("runtime.log");
    let out = env.rt_raw(
        &[
            "--root",
            env.root.to_str().unwrap(),
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            "json",
            "start",
            &id,
        ],
        TIMEOUT,
    );
    out.failed();
    let text = fs::read_to_string(&log).expect("log file written");
    let mut saw_error = false;
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("log line {line:?}: {e}"));
        assert!(v["level"].is_string(), "no level: {line}");
        assert!(v["msg"].is_string(), "no msg: {line}");
        assert!(v["time"].is_string(), "no time: {line}");
        if v["level"] == "error" && v["msg"].as_str().unwrap().contains("does not exist") {
            saw_error = true;
        }
    }
    assert!(
        saw_error,
        "no error entry about the missing container in {text:?}"
    );
}

#[test]
fn flags_accept_the_equals_form() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.args(&["sleep", "1000"]);
    b.write_config();
    let root = format!("--root={}", env.root.display());
    let bundle = format!("--bundle={}", b.dir.display());
    let pid_file = env.tmp.join("eq.pid");
    let pid_arg = format!("--pid-file={}", pid_file.display());
    env.rt_raw(&[&root, "create", &bundle, &pid_arg, &b.id], TIMEOUT)
        .ok();
    assert!(pid_file.exists(), "--pid-file=... was not honoured");
    assert_eq!(env.status(&b.id), "created", "--root=... was not honoured");
    let log = env.tmp.join("eq.log");
    let log_arg = format!("--log={}", log.display());
    env.rt_raw(
        &[
            &root,
            &log_arg,
            "--log-format=json",
            "start",
            "nope-not-here",
        ],
        TIMEOUT,
    )
    .failed();
    let text = fs::read_to_string(&log).expect("--log=... was not honoured");
    assert!(
        text.lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
            && !text.is_empty(),
        "--log-format=json was not honoured: {text:?}"
    );
    let out = env.rt_raw(&[&root, "list", "--format=json"], TIMEOUT);
    out.ok();
    assert!(out.json().is_array());
}

#[test]
fn flags_accept_the_separate_value_form() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.args(&["true"]);
    b.write_config();
    let out = env.rt_raw(
        &[
            "--root",
            env.root.to_str().unwrap(),
            "run",
            "--bundle",
            b.dir.to_str().unwrap(),
            &b.id,
        ],
        TIMEOUT,
    );
    out.ok();
}

#[test]
fn bundle_defaults_to_the_current_directory() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.sh("echo in-cwd-bundle");
    b.write_config();
    let mut cmd = std::process::Command::new(runtime());
    cmd.current_dir(&b.dir)
        .args(["--root", env.root.to_str().unwrap(), "run", &b.id]);
    let out = env.run_cmd(cmd, TIMEOUT);
    out.ok();
    assert_eq!(out.stdout, "in-cwd-bundle\n");
}

#[test]
fn leak_check_sees_everything_a_live_container_holds() {
    // Guards the guard: the leak checks used by every test must be able to fail.
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.args(&["sleep", "1000"]);
    b.config_mut()["linux"]["resources"] = json!({"pids": {"limit": 100}});
    env.create_start(&b);
    let leaks = env.leaks(&b);
    let has = |what: &str| leaks.iter().any(|l| l.starts_with(what));
    assert!(has("state dir"), "{leaks:#?}");
    assert!(has("cgroup dir"), "{leaks:#?}");
    assert!(
        leaks
            .iter()
            .any(|l| l.starts_with("process") && l.contains("cgroup")),
        "{leaks:#?}"
    );
    let pid = env.state(&b.id)["pid"].as_i64().unwrap() as i32;
    let by_root = processes_of(None, Some(&b.dir));
    assert!(
        by_root.iter().any(|(p, _)| *p == pid),
        "init {pid} not found by its root: {by_root:?}"
    );
    env.rt(&["delete", "--force", &b.id]).ok();
    env.assert_no_leaks(&b);
}
