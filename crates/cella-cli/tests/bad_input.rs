//! Bad input: each is refused with a non-zero exit, the error says what is wrong (the exact
//! wording is checked only for cella), and nothing is left behind.

mod common;

use common::*;
use serde_json::json;
use std::fs;

/// Creates `b` (config already adjusted), expects failure and a clean host; returns the
/// runtime's output for wording checks.
#[track_caller]
fn refused(env: &Env, b: &Bundle) -> Out {
    let out = env.create(b);
    out.failed();
    env.rt(&["state", &b.id]).failed();
    env.assert_no_leaks(b);
    out
}

/// For cella only: the error names all of `words`.
#[track_caller]
fn names(out: &Out, words: &[&str]) {
    if !cella_only("error wording is cella's") {
        out.stderr_mentions(words);
    }
}

#[test]
fn config_that_is_not_json() {
    let Some(env) = Env::new() else { return };
    let b = env.bundle();
    b.write_config();
    fs::write(
        b.dir.join("config.json"),
        "{\"ociVersion\": \"1.0.2\", oops",
    )
    .unwrap();
    let out = env.rt(&["create", "--bundle", b.dir.to_str().unwrap(), &b.id]);
    out.failed();
    env.assert_no_leaks(&b);
    names(&out, &["config.json"]);
}

#[test]
fn missing_config_json() {
    let Some(env) = Env::new() else { return };
    let b = env.bundle();
    let out = env.rt(&["create", "--bundle", b.dir.to_str().unwrap(), &b.id]);
    out.failed();
    env.assert_no_leaks(&b);
    names(&out, &["config.json"]);
}

#[test]
fn missing_bundle_directory() {
    let Some(env) = Env::new() else { return };
    let missing = env.tmp.join("no-such-bundle");
    let id = env.new_id();
    let out = env.rt(&["create", "--bundle", missing.to_str().unwrap(), &id]);
    out.failed();
    assert!(env
        .leaks_of(&id, None, &format!("cella-test/{id}"))
        .is_empty());
    names(&out, &[missing.to_str().unwrap()]);
}

#[test]
fn missing_root_path() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.config_mut().as_object_mut().unwrap().remove("root");
    let out = refused(&env, &b);
    names(&out, &["root"]);
}

#[test]
fn root_path_that_does_not_exist() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.config_mut()["root"]["path"] = json!("no-such-rootfs");
    let out = refused(&env, &b);
    names(&out, &["no-such-rootfs"]);
}

fn bad_oci_version(version: &str) {
    // runc 1.1 does not check ociVersion at all, and starts the container.
    if cella_only("runc 1.1 accepts any ociVersion") {
        return;
    }
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.config_mut()["ociVersion"] = json!(version);
    let out = refused(&env, &b);
    names(&out, &["ociVersion", version]);
}

#[test]
fn oci_version_0_1() {
    bad_oci_version("0.1");
}

#[test]
fn oci_version_banana() {
    bad_oci_version("banana");
}

#[test]
fn unknown_namespace_type() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.set_namespace(json!({"type": "banana"}));
    let out = refused(&env, &b);
    names(&out, &["banana"]);
}

#[test]
fn unknown_mount_type() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.add_mount(json!({"destination": "/mnt/x", "type": "bananafs", "source": "none"}));
    let out = refused(&env, &b);
    names(&out, &["bananafs", "/mnt/x"]);
}

#[test]
fn bind_mount_source_that_does_not_exist() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    let src = env.tmp.join("no-such-source");
    b.add_mount(
        json!({"destination": "/data", "type": "bind", "source": src,
                       "options": ["rbind"]}),
    );
    let out = refused(&env, &b);
    names(&out, &[src.to_str().unwrap()]);
}

#[test]
fn nonexistent_executable_names_the_path() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.args(&["/no/such/binary", "arg"]);
    // Whether create or start notices is the runtime's choice; run covers both.
    let out = env.run(&b);
    out.failed().stderr_mentions(&["/no/such/binary"]);
    env.rt(&["delete", "--force", &b.id]).ok();
    env.assert_no_leaks(&b);
}

#[test]
fn executable_not_on_path_names_it() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.args(&["no-such-command-anywhere"]);
    let out = env.run(&b);
    out.failed().stderr_mentions(&["no-such-command-anywhere"]);
    env.rt(&["delete", "--force", &b.id]).ok();
    env.assert_no_leaks(&b);
}

#[test]
fn empty_args() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.args(&[]);
    let out = refused(&env, &b);
    names(&out, &["args"]);
}

fn bad_id(id: &str) {
    let Some(env) = Env::new() else { return };
    let b = env.bundle();
    b.write_config();
    let out = env.rt(&["create", "--bundle", b.dir.to_str().unwrap(), id]);
    out.failed();
    // Nothing was made under --root (nor beside it, for ids that climb out).
    let entries: Vec<_> = fs::read_dir(&env.root).unwrap().flatten().collect();
    assert!(entries.is_empty(), "state root not empty: {entries:?}");
    let beside: Vec<_> = fs::read_dir(&env.tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("bundle-") && !n.starts_with("out-") && n != "state")
        .collect();
    assert!(beside.is_empty(), "files beside the state root: {beside:?}");
    assert!(env.leaks_of("\0", Some(&b.dir), &b.cgroup_rel()).is_empty());
    if !id.is_empty() {
        names(&out, &["id", id]);
    } else {
        names(&out, &["id"]);
    }
}

#[test]
fn id_with_a_slash() {
    bad_id("a/b");
}

#[test]
fn id_dot_dot() {
    bad_id("..");
}

#[test]
fn id_climbing_out() {
    bad_id("../escaped");
}

#[test]
fn id_empty() {
    bad_id("");
}

#[test]
fn duplicate_id() {
    let Some(env) = Env::new() else { return };
    let mut a = env.bundle();
    a.args(&["sleep", "1000"]);
    env.create(&a).ok();
    let mut b = env.bundle();
    b.id = a.id.clone();
    let out = env.create(&b);
    out.failed();
    assert_eq!(env.status(&a.id), "created");
    assert!(env.leaks_of("\0", Some(&b.dir), &b.cgroup_rel()).is_empty());
    names(&out, &[&a.id, "exists"]);
}

#[test]
fn rlimit_above_the_kernel_maximum() {
    // Never allowed, whatever the capabilities: RLIMIT_NOFILE above fs.nr_open.
    let Some(env) = Env::new() else { return };
    let nr_open: u64 = fs::read_to_string("/proc/sys/fs/nr_open")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut b = env.bundle();
    b.config_mut()["process"]["rlimits"] =
        json!([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": nr_open + 1}]);
    b.args(&["true"]);
    let out = env.run(&b);
    out.failed();
    env.rt(&["delete", "--force", &b.id]).ok();
    env.assert_no_leaks(&b);
    names(&out, &["RLIMIT_NOFILE"]);
}

#[test]
fn rlimit_above_the_callers_hard_limit() {
    // The container process does not keep CAP_SYS_RESOURCE (not in the default set), so it
    // cannot raise a hard limit above the one it inherited from the runtime's caller.
    let Some(env) = Env::new() else { return };
    let caller_hard = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .maximum
        .unwrap_or(u64::MAX);
    let nr_open: u64 = fs::read_to_string("/proc/sys/fs/nr_open")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    if caller_hard >= nr_open {
        skip("the caller's hard NOFILE limit is already the kernel maximum");
        return;
    }
    let mut b = env.bundle();
    b.config_mut()["process"]["rlimits"] =
        json!([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": nr_open}]);
    b.args(&["true"]);
    let out = env.run(&b);
    out.failed();
    env.rt(&["delete", "--force", &b.id]).ok();
    env.assert_no_leaks(&b);
    names(&out, &["RLIMIT_NOFILE"]);
}

#[test]
fn unknown_rlimit_type() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.config_mut()["process"]["rlimits"] = json!([{"type": "RLIMIT_BANANA", "soft": 1, "hard": 1}]);
    let out = refused(&env, &b);
    names(&out, &["RLIMIT_BANANA"]);
}

#[test]
fn unknown_capability() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.config_mut()["process"]["capabilities"]["bounding"] = json!(["CAP_BANANA"]);
    b.args(&["true"]);
    let out = env.run(&b);
    // runc 1.1 only warns about unknown capabilities and runs the container anyway.
    if cella_only("runc 1.1 ignores unknown capability names with a warning") {
        env.rt(&["delete", "--force", &b.id]);
        return;
    }
    out.failed();
    env.assert_no_leaks(&b);
    names(&out, &["CAP_BANANA"]);
}

#[test]
fn failing_create_runtime_hook() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.config_mut()["hooks"] = json!({"createRuntime": [
        {"path": "/bin/sh", "args": ["sh", "-c", "exit 42"]}
    ]});
    let out = refused(&env, &b);
    names(&out, &["createRuntime"]);
}

#[test]
fn relative_mount_destination() {
    // OCI 1.0.2 allows relative destinations only for compatibility; runc resolves them
    // against /. A runtime may refuse them, but if it accepts, the mount must be at /rel.
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.add_mount(json!({"destination": "rel", "type": "tmpfs", "source": "tmpfs"}));
    b.sh("grep -c ' /rel ' /proc/self/mountinfo");
    let out = env.run(&b);
    if out.success() {
        assert_eq!(out.stdout, "1\n");
    } else {
        env.assert_no_leaks(&b);
        names(&out, &["rel", "destination"]);
    }
}
