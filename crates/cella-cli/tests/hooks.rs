//! OCI hooks: each kind runs at its moment, in the right namespace, with the state on stdin
//! and its own args and env; failures and timeouts abort cleanly.

mod common;

use common::*;
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const RUNTIME_NS_KINDS: [&str; 4] = ["prestart", "createRuntime", "createContainer", "poststart"];

/// A hook that records, under `dir` (resolved where the hook runs), its stdin, its `$0 $1`,
/// its environment and its mount namespace, in files named after `kind`.
fn recording_hook(dir: &str, kind: &str) -> Value {
    let script = format!(
        "cat > {dir}/{kind}.state; echo \"$0 $1\" > {dir}/{kind}.args; env > {dir}/{kind}.env; \
         readlink /proc/self/ns/mnt > {dir}/{kind}.mnt"
    );
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", script, "arg-zero", "arg-one"],
        "env": [format!("HOOK_KIND={kind}"), "PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
    })
}

/// A bundle with a recording hook of every kind. Runtime-namespace hooks write to the returned
/// host directory; startContainer (which resolves in the container) writes to the rootfs's /.
fn bundle_with_all_hooks(env: &Env) -> (Bundle, PathBuf) {
    let out = env.scratch("hook-out");
    let dir = out.to_str().unwrap().to_string();
    let mut b = env.bundle();
    let mut hooks = serde_json::Map::new();
    for kind in RUNTIME_NS_KINDS.iter().chain(&["poststop"]) {
        hooks.insert(kind.to_string(), json!([recording_hook(&dir, kind)]));
    }
    hooks.insert(
        "startContainer".into(),
        json!([recording_hook("", "startContainer")]),
    );
    b.config_mut()["hooks"] = Value::Object(hooks);
    (b, out)
}

fn hook_file(b: &Bundle, out: &Path, kind: &str, ext: &str) -> PathBuf {
    if kind == "startContainer" {
        b.rootfs().join(format!("{kind}.{ext}"))
    } else {
        out.join(format!("{kind}.{ext}"))
    }
}

fn ran(b: &Bundle, out: &Path, kind: &str) -> bool {
    hook_file(b, out, kind, "mnt").exists()
}

fn hook_state(b: &Bundle, out: &Path, kind: &str) -> Value {
    let p = hook_file(b, out, kind, "state");
    let text = fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{kind} stdin {text:?}: {e}"))
}

#[test]
fn each_hook_runs_at_its_moment() {
    let Some(env) = Env::new() else { return };
    let (mut b, out) = bundle_with_all_hooks(&env);
    b.sh("[ -e /startContainer.mnt ] && echo start-hook-ran-first; exec sleep 1000");
    let created = env.create(&b);
    created.ok();
    for kind in ["prestart", "createRuntime", "createContainer"] {
        assert!(ran(&b, &out, kind), "{kind} did not run during create");
    }
    // poststart is checked in its own test: runc 1.1 runs it during create.
    for kind in ["startContainer", "poststop"] {
        assert!(!ran(&b, &out, kind), "{kind} ran during create");
    }
    env.start(&b.id).ok();
    // poststart runs before start returns; startContainer before the user process.
    assert!(
        ran(&b, &out, "startContainer"),
        "startContainer did not run"
    );
    assert!(
        ran(&b, &out, "poststart"),
        "poststart did not run before start returned"
    );
    assert!(!ran(&b, &out, "poststop"), "poststop ran before delete");
    let deadline = Instant::now() + TIMEOUT;
    while !created.stdout_now().contains("start-hook-ran-first") {
        assert!(
            Instant::now() < deadline,
            "the user process ran before startContainer"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    env.kill(&b.id, "KILL").ok();
    env.wait_status(&b.id, "stopped");
    assert!(!ran(&b, &out, "poststop"), "poststop ran before delete");
    env.delete(&b.id).ok();
    assert!(ran(&b, &out, "poststop"), "poststop did not run on delete");
}

#[test]
fn poststart_runs_at_start_not_during_create() {
    if cella_only("runc 1.1 runs poststart hooks during create, before start") {
        return;
    }
    let Some(env) = Env::new() else { return };
    let (mut b, out) = bundle_with_all_hooks(&env);
    b.args(&["sleep", "1000"]);
    env.create(&b).ok();
    assert!(!ran(&b, &out, "poststart"), "poststart ran during create");
    env.start(&b.id).ok();
    assert!(
        ran(&b, &out, "poststart"),
        "poststart did not run before start returned"
    );
    assert_eq!(hook_state(&b, &out, "poststart")["status"], "running");
}

#[test]
fn hooks_receive_the_state_on_stdin() {
    let Some(env) = Env::new() else { return };
    let (mut b, out) = bundle_with_all_hooks(&env);
    b.args(&["sleep", "1000"]);
    env.create(&b).ok();
    let pid = env.state(&b.id)["pid"].as_i64().unwrap();
    env.start(&b.id).ok();
    env.rt(&["delete", "--force", &b.id]).ok();
    for kind in RUNTIME_NS_KINDS
        .iter()
        .chain(&["startContainer", "poststop"])
    {
        let st = hook_state(&b, &out, kind);
        assert_eq!(st["id"], json!(b.id), "{kind}: {st}");
        assert!(st["ociVersion"].is_string(), "{kind}: {st}");
        let bundle = st["bundle"]
            .as_str()
            .unwrap_or_else(|| panic!("{kind}: {st}"));
        assert_eq!(
            Path::new(bundle).canonicalize().unwrap(),
            b.dir.canonicalize().unwrap(),
            "{kind}"
        );
        match *kind {
            "poststop" => {}
            // Hooks run in the container's pid namespace may see its init as 1 (runc does).
            "createContainer" | "startContainer" => assert!(
                st["pid"] == json!(pid) || st["pid"] == json!(1),
                "{kind}: {st}"
            ),
            _ => assert_eq!(st["pid"], json!(pid), "{kind}: {st}"),
        }
    }
    let status = |kind: &str| hook_state(&b, &out, kind)["status"].clone();
    for kind in ["prestart", "createRuntime", "createContainer"] {
        assert_eq!(status(kind), "creating", "{kind}");
    }
    assert_eq!(status("startContainer"), "created");
    // poststart's status is checked in poststart_runs_at_start_not_during_create.
    assert_eq!(status("poststop"), "stopped");
}

#[test]
fn hooks_get_their_args_and_env() {
    let Some(env) = Env::new() else { return };
    let (mut b, out) = bundle_with_all_hooks(&env);
    b.args(&["true"]);
    env.run(&b).ok();
    for kind in RUNTIME_NS_KINDS
        .iter()
        .chain(&["startContainer", "poststop"])
    {
        let args = fs::read_to_string(hook_file(&b, &out, kind, "args")).unwrap();
        assert_eq!(args, "arg-zero arg-one\n", "{kind}");
        let envs = fs::read_to_string(hook_file(&b, &out, kind, "env")).unwrap();
        assert!(
            envs.lines().any(|l| l == format!("HOOK_KIND={kind}")),
            "{kind} env: {envs}"
        );
        // The hook's env is its own, not the container process's.
        assert!(
            !envs.lines().any(|l| l == "TERM=xterm"),
            "{kind} env: {envs}"
        );
    }
}

#[test]
fn hooks_run_in_the_documented_namespaces() {
    let Some(env) = Env::new() else { return };
    let (mut b, out) = bundle_with_all_hooks(&env);
    b.sh("readlink /proc/self/ns/mnt");
    let container_mnt = env.run_ok(&b);
    let host_mnt = format!(
        "{}\n",
        fs::read_link("/proc/self/ns/mnt").unwrap().display()
    );
    let mnt = |kind: &str| fs::read_to_string(hook_file(&b, &out, kind, "mnt")).unwrap();
    for kind in ["prestart", "createRuntime", "poststart", "poststop"] {
        assert_eq!(
            mnt(kind),
            host_mnt,
            "{kind} must run in the runtime namespace"
        );
    }
    for kind in ["createContainer", "startContainer"] {
        assert_eq!(
            mnt(kind),
            container_mnt,
            "{kind} must run in the container namespace"
        );
    }
}

#[test]
fn hooks_of_one_kind_run_in_order() {
    let Some(env) = Env::new() else { return };
    let log = env.scratch("order").join("log");
    let mut b = env.bundle();
    let hook = |n: u32| {
        json!({"path": "/bin/sh",
               "args": ["sh", "-c", format!("echo {n} >> {}", log.display())]})
    };
    b.config_mut()["hooks"] = json!({"createRuntime": [hook(1), hook(2), hook(3)]});
    b.args(&["true"]);
    env.run(&b).ok();
    assert_eq!(fs::read_to_string(&log).unwrap(), "1\n2\n3\n");
}

fn failing_hook_aborts_create(kind: &str) {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.config_mut()["hooks"] = json!({
        kind: [{"path": "/bin/sh", "args": ["sh", "-c", "echo hook-complains >&2; exit 3"]}]
    });
    b.args(&["sleep", "1000"]);
    let out = env.create(&b);
    out.failed();
    env.rt(&["state", &b.id]).failed();
    env.assert_no_leaks(&b);
}

#[test]
fn failing_create_runtime_hook_aborts_create_and_leaves_nothing() {
    failing_hook_aborts_create("createRuntime");
}

#[test]
fn failing_prestart_hook_aborts_create_and_leaves_nothing() {
    failing_hook_aborts_create("prestart");
}

#[test]
fn failing_create_container_hook_aborts_create_and_leaves_nothing() {
    failing_hook_aborts_create("createContainer");
}

#[test]
fn failing_poststop_hook_does_not_stop_delete() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.config_mut()["hooks"] =
        json!({"poststop": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 1"]}]});
    b.args(&["true"]);
    env.create_start(&b);
    env.wait_status(&b.id, "stopped");
    env.delete(&b.id).ok();
    env.rt(&["state", &b.id]).failed();
    env.assert_no_leaks(&b);
}

#[test]
fn hook_timeout_is_enforced() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.config_mut()["hooks"] = json!({
        "createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "20"], "timeout": 1}]
    });
    b.args(&["sleep", "1000"]);
    let t0 = Instant::now();
    let out = env.create(&b);
    let took = t0.elapsed();
    out.failed();
    assert!(
        took < Duration::from_secs(10),
        "create took {took:?} with a 1 s hook timeout"
    );
    env.rt(&["state", &b.id]).failed();
    env.assert_no_leaks(&b);
    // The timed-out hook was killed, not left running.
    let sleepers: Vec<i32> = fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == b"sleep\x0020\x00")
                && fs::read_link(format!("/proc/{pid}/cwd"))
                    .is_ok_and(|cwd| cwd.starts_with(&b.dir))
        })
        .collect();
    assert!(
        sleepers.is_empty(),
        "timed-out hook still running: {sleepers:?}"
    );
}

#[test]
fn hook_with_missing_path_fails_create_and_names_it() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.config_mut()["hooks"] =
        json!({"createRuntime": [{"path": "/no/such/hook-binary", "args": ["x"]}]});
    b.args(&["true"]);
    let out = env.create(&b);
    out.failed();
    env.assert_no_leaks(&b);
    if !cella_only("runc's error does not name the hook path") {
        out.stderr_mentions(&["/no/such/hook-binary"]);
    }
}

/// On a v1 host the runtime makes the container's v1 cgroups after clone, while the init sets
/// up, and the init joins them when they are ready: it must have joined them before the
/// prestart and createRuntime hooks run (hooks such as device plugins look the process up by
/// its cgroup), whether or not the spec mounts /sys/fs/cgroup (the other point where the init
/// joins).
#[test]
fn runtime_hooks_see_the_init_in_its_cgroups() {
    let Some(env) = Env::new() else { return };
    for with_cgroup_mount in [true, false] {
        let out = env.scratch(&format!("hook-cg-{with_cgroup_mount}"));
        let dir = out.to_str().unwrap().to_string();
        let mut b = env.bundle();
        let hook = |kind: &str| {
            json!({
                "path": "/bin/sh",
                "args": ["sh", "-c", format!(
                    "pid=$(sed -n 's/.*\"pid\": *\\([0-9]*\\).*/\\1/p'); \
                     cat /proc/$pid/cgroup > {dir}/{kind}.cgroup")]
            })
        };
        b.config_mut()["hooks"] = json!({
            "prestart": [hook("prestart")],
            "createRuntime": [hook("createRuntime")],
        });
        if !with_cgroup_mount {
            let mounts = b.config_mut()["mounts"].as_array_mut().unwrap();
            mounts.retain(|m| m["type"] != "cgroup");
        }
        let path = b.config_mut()["linux"]["cgroupsPath"]
            .as_str()
            .unwrap()
            .to_string();
        env.create(&b).ok();
        env.rt(&["delete", "--force", &b.id]).ok();
        for kind in ["prestart", "createRuntime"] {
            let f = out.join(format!("{kind}.cgroup"));
            let text = fs::read_to_string(&f)
                .unwrap_or_else(|e| panic!("{kind} (cgroup mount {with_cgroup_mount}): {e}"));
            let v1: Vec<&str> = text.lines().filter(|l| !l.starts_with("0::")).collect();
            assert!(!v1.is_empty(), "{kind}: no v1 hierarchy in {text:?}");
            for line in v1 {
                assert!(
                    line.ends_with(&path),
                    "{kind} (cgroup mount {with_cgroup_mount}): the init is not in {path} \
                     yet: {line:?} in\n{text}"
                );
            }
        }
    }
}
