//! The same bundle run by the runtime under test and by Debian's runc (the reference): what
//! a user or an engine sees must match. Skipped when the runtime under test is that runc.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;

/// Returns true (after printing why) when there is nothing to compare with.
fn no_reference() -> bool {
    let reference = Path::new(REFERENCE_RUNTIME);
    if !reference.exists() {
        return skip(&format!("{REFERENCE_RUNTIME} is not installed"));
    }
    let same = runtime().canonicalize().ok() == reference.canonicalize().ok();
    if same {
        return skip("the runtime under test is the reference runc itself");
    }
    false
}

/// Two bundles with the same config: one for the runtime under test, one for runc.
fn twin_bundles(env: &Env, setup: impl Fn(&mut Bundle)) -> (Bundle, Bundle) {
    let mut ours = env.bundle();
    let mut theirs = env.bundle();
    setup(&mut ours);
    setup(&mut theirs);
    (ours, theirs)
}

fn run_reference(env: &Env, b: &Bundle) -> Out {
    b.write_config();
    env.reference_rt(&["run", "--bundle", b.dir.to_str().unwrap(), &b.id])
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

#[test]
fn state_json_keys_and_status_values_match() {
    if no_reference() {
        return;
    }
    let Some(env) = Env::new() else { return };
    let (ours, theirs) = twin_bundles(&env, |b| {
        b.args(&["sleep", "1000"]);
        b.config_mut()["annotations"] = json!({"k": "v"});
    });
    let ref_state = |id: &str| {
        let out = env.reference_rt(&["state", id]);
        out.ok();
        out.json()
    };
    env.create(&ours).ok();
    theirs.write_config();
    env.reference_rt(&[
        "create",
        "--bundle",
        theirs.dir.to_str().unwrap(),
        &theirs.id,
    ])
    .ok();
    let (a, b) = (env.state(&ours.id), ref_state(&theirs.id));
    assert_eq!(keys(&a), keys(&b), "created: {a} vs {b}");
    assert_eq!(a["status"], b["status"]);
    assert_eq!(a["annotations"], b["annotations"]);

    env.start(&ours.id).ok();
    env.reference_rt(&["start", &theirs.id]).ok();
    let (a, b) = (env.state(&ours.id), ref_state(&theirs.id));
    assert_eq!(keys(&a), keys(&b), "running: {a} vs {b}");
    assert_eq!(a["status"], b["status"]);

    env.kill(&ours.id, "KILL").ok();
    env.reference_rt(&["kill", &theirs.id, "KILL"]).ok();
    env.wait_status(&ours.id, "stopped");
    let deadline = std::time::Instant::now() + TIMEOUT;
    while ref_state(&theirs.id)["status"] != "stopped" {
        assert!(
            std::time::Instant::now() < deadline,
            "runc's container never stopped"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (a, b) = (env.state(&ours.id), ref_state(&theirs.id));
    assert_eq!(keys(&a), keys(&b), "stopped: {a} vs {b}");
    env.reference_rt(&["delete", &theirs.id]).ok();
}

fn exit_codes_match(setup: impl Fn(&mut Bundle)) {
    if no_reference() {
        return;
    }
    let Some(env) = Env::new() else { return };
    let (ours, theirs) = twin_bundles(&env, setup);
    let a = env.run(&ours);
    let b = run_reference(&env, &theirs);
    assert_eq!(a.code(), b.code(), "ours:\n{a}\nrunc:\n{b}");
    assert_eq!(a.stdout, b.stdout);
}

#[test]
fn exit_code_0_matches() {
    exit_codes_match(|b| {
        b.sh("echo fine");
    });
}

#[test]
fn exit_code_3_matches() {
    exit_codes_match(|b| {
        b.sh("echo failing; exit 3");
    });
}

#[test]
fn exit_code_of_a_signal_matches() {
    exit_codes_match(|b| {
        b.remove_namespace("pid");
        b.sh("kill -USR2 $$; sleep 5");
    });
}

fn caps_match(setup: impl Fn(&mut Bundle)) {
    if no_reference() {
        return;
    }
    let Some(env) = Env::new() else { return };
    let (ours, theirs) = twin_bundles(&env, |b| {
        setup(b);
        b.args(&["cat", "/proc/self/status"]);
    });
    let a = env.run(&ours);
    a.ok();
    let b = run_reference(&env, &theirs);
    b.ok();
    assert_eq!(cap_lines(&a.stdout), cap_lines(&b.stdout));
    let nnp = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("NoNewPrivs:"))
            .map(String::from)
    };
    assert_eq!(nnp(&a.stdout), nnp(&b.stdout));
}

#[test]
fn capabilities_match_for_the_default_config() {
    caps_match(|_| {});
}

#[test]
fn capabilities_match_for_a_non_root_user() {
    caps_match(|b| {
        let c = ["CAP_KILL", "CAP_CHOWN", "CAP_NET_RAW"];
        b.config_mut()["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        b.config_mut()["process"]["capabilities"] = json!({
            "bounding": c, "permitted": c, "effective": c, "inheritable": c, "ambient": c
        });
    });
}

#[test]
fn capabilities_match_for_a_wide_root_set() {
    caps_match(|b| {
        let c = [
            "CAP_CHOWN",
            "CAP_DAC_OVERRIDE",
            "CAP_FSETID",
            "CAP_FOWNER",
            "CAP_MKNOD",
            "CAP_NET_RAW",
            "CAP_SETGID",
            "CAP_SETUID",
            "CAP_SETFCAP",
            "CAP_SETPCAP",
            "CAP_NET_BIND_SERVICE",
            "CAP_SYS_CHROOT",
            "CAP_KILL",
            "CAP_AUDIT_WRITE",
        ];
        b.config_mut()["process"]["capabilities"] =
            json!({"bounding": c, "permitted": c, "effective": c});
        b.config_mut()["process"]["noNewPrivileges"] = json!(false);
    });
}

fn mount_points(mountinfo: &str) -> BTreeSet<String> {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .collect()
}

#[test]
fn mount_points_inside_match() {
    if no_reference() {
        return;
    }
    let Some(env) = Env::new() else { return };
    let src = env.scratch("shared-src");
    let (ours, theirs) = twin_bundles(&env, |b| {
        b.add_mount(
            json!({"destination": "/data", "type": "bind", "source": src,
                           "options": ["rbind", "ro"]}),
        );
        b.add_mount(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs"}));
        b.args(&["cat", "/proc/self/mountinfo"]);
    });
    let a = env.run(&ours);
    a.ok();
    let b = run_reference(&env, &theirs);
    b.ok();
    assert_eq!(mount_points(&a.stdout), mount_points(&b.stdout));
}

#[test]
fn dev_entries_match() {
    if no_reference() {
        return;
    }
    let Some(env) = Env::new() else { return };
    let (ours, theirs) = twin_bundles(&env, |b| {
        b.sh("cd /dev && for f in $(ls -A); do echo \"$f $(stat -c '%F %t:%T %a' $f)\"; done");
    });
    let a = env.run(&ours);
    a.ok();
    let b = run_reference(&env, &theirs);
    b.ok();
    let lines = |s: &str| s.lines().map(String::from).collect::<BTreeSet<_>>();
    assert_eq!(lines(&a.stdout), lines(&b.stdout));
}
