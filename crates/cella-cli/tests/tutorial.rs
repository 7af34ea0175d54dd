//! The tutorial's three promises, checked on real containers: the container cannot see the
//! host's files, sees only its own processes, and cannot use more memory than its limit.

mod common;

use common::*;
use serde_json::json;
use std::fs;

#[test]
fn host_file_outside_the_rootfs_is_not_visible() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    // A file beside the rootfs, in the bundle directory, and one in the host's /tmp.
    let secret = b.dir.join("host-secret");
    fs::write(&secret, "top secret").unwrap();
    let host_tmp = tempfile::NamedTempFile::new().unwrap();
    fs::write(host_tmp.path(), "also secret").unwrap();
    let script = format!(
        "for f in /host-secret ../host-secret /../host-secret {bundle}/host-secret {tmp}; do \
           if [ -e \"$f\" ]; then echo \"VISIBLE $f\"; fi; done; \
         cd / && cd .. && ls; echo done",
        bundle = b.dir.display(),
        tmp = host_tmp.path().display()
    );
    b.sh(&script);
    let out = env.run_ok(&b);
    assert!(!out.contains("VISIBLE"), "{out}");
    assert!(out.ends_with("done\n"), "{out}");
    // `..` of / is / itself: the listing is the rootfs's, not the bundle's.
    assert!(out.contains("bin") && !out.contains("host-secret"), "{out}");
    // And the host file really exists, so the check above can fail.
    assert!(secret.exists() && host_tmp.path().exists());
}

#[test]
fn file_created_inside_is_written_to_the_rootfs_only() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.sh("echo from-inside > /made-inside");
    env.run_ok(&b);
    assert_eq!(
        fs::read_to_string(b.rootfs().join("made-inside")).unwrap(),
        "from-inside\n"
    );
    assert!(!std::path::Path::new("/made-inside").exists());
}

#[test]
fn ps_shows_only_the_containers_processes_with_the_command_as_pid_1() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    // `; true` keeps sh from exec'ing ps, so there are two processes: sh (PID 1) and ps.
    b.sh("ps -o pid,args; true");
    let out = env.run_ok(&b);
    let rows: Vec<(u32, String)> = out
        .lines()
        .skip(1)
        .map(|l| {
            let l = l.trim();
            let (pid, args) = l.split_once(' ').expect("ps row");
            (pid.parse().expect("pid"), args.trim().to_string())
        })
        .collect();
    assert_eq!(
        rows[0],
        (1, "sh -c ps -o pid,args; true".to_string()),
        "{out}"
    );
    // Only sh and the ps it started (busybox may show it under either name).
    assert_eq!(
        rows.len(),
        2,
        "processes other than the container's are visible:\n{out}"
    );
    assert!(rows[1].1.contains("ps"), "{out}");
    // The host has far more processes than that.
    let host = fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .count();
    assert!(host > 2);
}

#[test]
fn proc_inside_shows_pid_1_as_the_command() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.args(&["cat", "/proc/1/cmdline"]);
    let out = env.run_ok(&b);
    assert_eq!(out, "cat\0/proc/1/cmdline\0");
}

/// A bundle whose init is `tail /dev/zero`: /dev/zero has no newline, so busybox tail keeps
/// the whole growing "last line" in memory until it is killed.
fn memory_hog(env: &Env, limit_mib: u64) -> Bundle {
    let mut b = env.bundle();
    b.args(&["tail", "/dev/zero"]);
    b.config_mut()["linux"]["resources"] = json!({"memory": {"limit": limit_mib * 1024 * 1024}});
    b
}

#[test]
fn memory_hog_is_killed_with_exit_137() {
    let Some(env) = Env::new() else { return };
    let b = memory_hog(&env, 48);
    let out = env.run(&b);
    assert_eq!(out.code(), Some(137), "{out}");
    env.assert_no_leaks(&b);
}

#[test]
fn memory_hog_leaves_oom_kill_evidence_in_its_cgroup() {
    let Some(env) = Env::new() else { return };
    let b = memory_hog(&env, 32);
    env.create_start(&b);
    env.wait_status(&b.id, "stopped");
    // cgroup v1: the cgroup stays until delete; memory.oom_control counts OOM kills.
    let dir = b.cgroup_dir("memory");
    let limit: u64 = fs::read_to_string(dir.join("memory.limit_in_bytes"))
        .expect("memory cgroup of the container")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(limit, 32 * 1024 * 1024);
    let oom = fs::read_to_string(dir.join("memory.oom_control")).unwrap();
    let kills: u64 = oom
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .expect("oom_kill line in memory.oom_control")
        .parse()
        .unwrap();
    assert!(kills >= 1, "no OOM kill recorded:\n{oom}");
    let failcnt: u64 = fs::read_to_string(dir.join("memory.failcnt"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(failcnt > 0, "the limit was never hit");
    env.delete(&b.id).ok();
    env.assert_no_leaks(&b);
}

#[test]
fn process_under_the_memory_limit_is_not_killed() {
    // The same allocation pattern, bounded, under the limit: exit 0. Shows the 137 above
    // comes from the limit and not from the command.
    let Some(env) = Env::new() else { return };
    let mut b = memory_hog(&env, 64);
    b.sh("head -c 8000000 /dev/zero | tail > /dev/null; echo survived");
    let out = env.run(&b);
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(out.stdout, "survived\n");
}
