//! Each config.json field does what the OCI runtime spec says, seen from inside the container
//! (and, for cgroups, from the host).

mod common;

use common::*;
use serde_json::json;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// One mount from a mountinfo text: mount point, per-mount options, optional fields, fs type,
/// super options.
#[derive(Debug)]
struct MountLine {
    point: String,
    opts: Vec<String>,
    optional: Vec<String>,
    fstype: String,
    super_opts: Vec<String>,
}

fn parse_mountinfo(text: &str) -> Vec<MountLine> {
    text.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            Some(MountLine {
                point: unescape_mountinfo(f.get(4)?),
                opts: f.get(5)?.split(',').map(String::from).collect(),
                optional: f[6..].iter().map(|s| s.to_string()).collect(),
                fstype: r.first()?.to_string(),
                super_opts: r
                    .get(2)
                    .unwrap_or(&"")
                    .split(',')
                    .map(String::from)
                    .collect(),
            })
        })
        .collect()
}

/// The last (topmost) mount at `point` in a mountinfo text.
#[track_caller]
fn mount_at<'a>(mounts: &'a [MountLine], point: &str) -> &'a MountLine {
    mounts
        .iter()
        .rev()
        .find(|m| m.point == point)
        .unwrap_or_else(|| panic!("no mount at {point} in {mounts:#?}"))
}

fn ns_link(path: &str) -> String {
    fs::read_link(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .to_string_lossy()
        .into_owned()
}

// ---------------------------------------------------------------- namespaces

#[test]
fn each_namespace_differs_from_the_host() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    let kinds = ["pid", "net", "ipc", "uts", "mnt", "cgroup"];
    b.sh("for n in pid net ipc uts mnt cgroup; do echo \"$n $(readlink /proc/self/ns/$n)\"; done");
    let out = env.run_ok(&b);
    for kind in kinds {
        let host = ns_link(&format!("/proc/self/ns/{kind}"));
        let inside = out
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{kind} ")))
            .unwrap_or_else(|| panic!("no {kind} line in {out}"));
        assert!(inside.starts_with(&format!("{kind}:[")), "{inside}");
        assert_ne!(inside, host, "{kind} namespace is the host's");
    }
}

#[test]
fn a_namespace_not_listed_is_the_hosts() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.remove_namespace("network");
    b.remove_namespace("ipc");
    b.sh("readlink /proc/self/ns/net; readlink /proc/self/ns/ipc");
    let out = env.run_ok(&b);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [ns_link("/proc/self/ns/net"), ns_link("/proc/self/ns/ipc")]
    );
}

#[test]
fn hostname_and_domainname_are_set() {
    if cella_only("runc 1.1 ignores the domainname field (it came in runc 1.2)") {
        return;
    }
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.config_mut()["hostname"] = json!("box-one");
    b.config_mut()["domainname"] = json!("example.org");
    b.sh("hostname; cat /proc/sys/kernel/domainname");
    assert_eq!(env.run_ok(&b), "box-one\nexample.org\n");
    assert_ne!(
        fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        "box-one\n"
    );
}

#[test]
fn network_namespace_has_only_loopback() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.args(&["cat", "/proc/net/dev"]);
    let out = env.run_ok(&b);
    let ifaces: Vec<&str> = out
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(ifaces, ["lo"], "{out}");
    // The host has more than lo, so this can fail.
    let host = fs::read_to_string("/proc/net/dev").unwrap();
    assert!(host.lines().count() > 3, "{host}");
}

/// Deletes a named network namespace on drop.
struct NetnsGuard(String);
impl Drop for NetnsGuard {
    fn drop(&mut self) {
        let _lock = host_lock();
        let _ = std::process::Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
    }
}

#[test]
fn joins_an_existing_network_namespace_by_path() {
    let Some(env) = Env::new() else { return };
    let name = format!("cella-{}-{}", env.name, std::process::id());
    {
        let _lock = host_lock();
        env.host("ip", &["netns", "add", &name]);
    }
    let _guard = NetnsGuard(name.clone());
    let path = format!("/var/run/netns/{name}");
    let ino = fs::metadata(&path).unwrap().ino();
    let mut b = env.bundle();
    b.set_namespace(json!({"type": "network", "path": path}));
    b.args(&["readlink", "/proc/self/ns/net"]);
    assert_eq!(env.run_ok(&b), format!("net:[{ino}]\n"));
}

#[test]
fn user_namespace_maps_root_to_an_unprivileged_host_id() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.set_namespace(json!({"type": "user"}));
    b.config_mut()["linux"]["uidMappings"] =
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config_mut()["linux"]["gidMappings"] =
        json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    b.sh("id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; readlink /proc/self/ns/user");
    let out = env.run_ok(&b);
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0"], "{out}");
    assert_eq!(lines[1], ["0"], "{out}");
    assert_eq!(lines[2], ["0", "100000", "65536"], "{out}");
    assert_eq!(lines[3], ["0", "200000", "65536"], "{out}");
    assert_ne!(lines[4], [ns_link("/proc/self/ns/user").as_str()], "{out}");
}

#[test]
fn user_namespace_process_is_unprivileged_on_the_host() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.set_namespace(json!({"type": "user"}));
    b.config_mut()["linux"]["uidMappings"] =
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config_mut()["linux"]["gidMappings"] =
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.args(&["sleep", "1000"]);
    env.create_start(&b);
    let pid = env.state(&b.id)["pid"].as_i64().unwrap();
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        uid.split_whitespace().collect::<Vec<_>>(),
        ["Uid:", "100000", "100000", "100000", "100000"]
    );
}

#[test]
fn time_namespace_offsets_shift_uptime() {
    if cella_only("runc 1.1 does not support the time namespace (linux.timeOffsets)") {
        return;
    }
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    let day = 86400u64;
    b.set_namespace(json!({"type": "time"}));
    b.config_mut()["linux"]["timeOffsets"] = json!({
        "monotonic": {"secs": 10 * day, "nanosecs": 0},
        "boottime": {"secs": 20 * day, "nanosecs": 0}
    });
    b.args(&["cat", "/proc/uptime"]);
    let out = env.run_ok(&b);
    let inside: f64 = out.split_whitespace().next().unwrap().parse().unwrap();
    let host: f64 = fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let diff = inside - host;
    assert!(
        (diff - (20 * day) as f64).abs() < 60.0,
        "uptime inside {inside}, host {host}: boottime offset not applied"
    );
}

// ---------------------------------------------------------------- root and mounts

#[test]
fn readonly_root_rejects_writes() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.config_mut()["root"]["readonly"] = json!(true);
    b.sh("touch /new-file 2>/dev/null && echo wrote || echo refused; echo ok > /dev/shm/x && echo shm-ok");
    assert_eq!(env.run_ok(&b), "refused\nshm-ok\n");
    assert!(!b.rootfs().join("new-file").exists());
}

#[test]
fn writable_root_accepts_writes() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.sh("touch /new-file && echo wrote");
    assert_eq!(env.run_ok(&b), "wrote\n");
    assert!(b.rootfs().join("new-file").exists());
}

#[test]
fn rootfs_propagation_shared_makes_root_a_shared_mount() {
    // runc 1.1 makes the rootfs's parent mount private before bind-mounting the rootfs, so
    // the bind (and / after pivot_root) is never shared whatever rootfsPropagation says.
    if cella_only("runc 1.1 never makes / shared (its rootfs bind copies a private parent)") {
        return;
    }
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.config_mut()["linux"]["rootfsPropagation"] = json!("shared");
    b.args(&["cat", "/proc/self/mountinfo"]);
    let out = env.run_ok(&b);
    let mounts = parse_mountinfo(&out);
    let root = mount_at(&mounts, "/");
    assert!(
        root.optional.iter().any(|o| o.starts_with("shared:")),
        "/ is not shared: {root:?}"
    );
}

#[test]
fn rootfs_propagation_private_makes_root_private() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.config_mut()["linux"]["rootfsPropagation"] = json!("private");
    b.args(&["cat", "/proc/self/mountinfo"]);
    let out = env.run_ok(&b);
    let mounts = parse_mountinfo(&out);
    let root = mount_at(&mounts, "/");
    assert!(
        root.optional.is_empty(),
        "/ has propagation fields: {root:?}"
    );
}

fn host_dir_with_file(env: &Env, name: &str) -> std::path::PathBuf {
    let dir = env.scratch(name);
    fs::write(dir.join("hello.txt"), "hello from host\n").unwrap();
    dir
}

#[test]
fn bind_mount_readonly_is_readable_not_writable() {
    let Some(env) = Env::new() else { return };
    let src = host_dir_with_file(&env, "ro-src");
    let mut b = env.bundle();
    b.add_mount(
        json!({"destination": "/data", "type": "bind", "source": src,
                       "options": ["rbind", "ro"]}),
    );
    b.sh(
        "cat /data/hello.txt; touch /data/new 2>/dev/null && echo wrote || echo refused; \
          cat /proc/self/mountinfo",
    );
    let out = env.run_ok(&b);
    assert!(out.starts_with("hello from host\nrefused\n"), "{out}");
    let mounts = parse_mountinfo(&out);
    assert!(mount_at(&mounts, "/data").opts.contains(&"ro".to_string()));
    assert!(!src.join("new").exists());
}

#[test]
fn bind_mount_readwrite_with_nosuid_nodev_noexec() {
    let Some(env) = Env::new() else { return };
    let src = host_dir_with_file(&env, "rw-src");
    fs::copy("/bin/busybox", src.join("busybox")).unwrap();
    let mut b = env.bundle();
    b.add_mount(
        json!({"destination": "/data", "type": "bind", "source": src,
                       "options": ["rbind", "rw", "nosuid", "nodev", "noexec"]}),
    );
    b.sh("echo from-container > /data/written; \
          /data/busybox true 2>/dev/null && echo executed || echo exec-refused; \
          cat /proc/self/mountinfo");
    let out = env.run_ok(&b);
    assert!(out.starts_with("exec-refused\n"), "{out}");
    let mounts = parse_mountinfo(&out);
    let m = mount_at(&mounts, "/data");
    for o in ["rw", "nosuid", "nodev", "noexec"] {
        assert!(m.opts.contains(&o.to_string()), "/data lacks {o}: {m:?}");
    }
    assert_eq!(
        fs::read_to_string(src.join("written")).unwrap(),
        "from-container\n"
    );
}

#[test]
fn bind_mount_of_a_file_creates_the_destination_file() {
    let Some(env) = Env::new() else { return };
    let src = host_dir_with_file(&env, "file-src");
    let mut b = env.bundle();
    b.add_mount(json!({"destination": "/etc/greeting", "type": "bind",
                       "source": src.join("hello.txt"), "options": ["bind", "ro"]}));
    b.sh("[ -f /etc/greeting ] && cat /etc/greeting");
    assert_eq!(env.run_ok(&b), "hello from host\n");
}

#[test]
fn tmpfs_mount_gets_size_and_mode() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.add_mount(
        json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                       "options": ["nosuid", "size=1m", "mode=710"]}),
    );
    b.sh("stat -c %a /scratch; cat /proc/self/mountinfo");
    let out = env.run_ok(&b);
    assert!(out.starts_with("710\n"), "{out}");
    let mounts = parse_mountinfo(&out);
    let m = mount_at(&mounts, "/scratch");
    assert_eq!(m.fstype, "tmpfs");
    assert!(m.super_opts.contains(&"size=1024k".to_string()), "{m:?}");
    assert!(m.super_opts.contains(&"mode=710".to_string()), "{m:?}");
    assert!(m.opts.contains(&"nosuid".to_string()), "{m:?}");
}

#[test]
fn tmpfs_size_limit_is_enforced() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.add_mount(
        json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                       "options": ["size=1m"]}),
    );
    b.sh("head -c 2000000 /dev/zero > /scratch/big 2>/dev/null && echo fit || echo full");
    assert_eq!(env.run_ok(&b), "full\n");
}

#[test]
fn missing_mount_destinations_are_created() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.add_mount(
        json!({"destination": "/does/not/exist/yet", "type": "tmpfs",
                       "source": "tmpfs"}),
    );
    b.sh("[ -d /does/not/exist/yet ] && cat /proc/self/mountinfo");
    let out = env.run_ok(&b);
    let mounts = parse_mountinfo(&out);
    assert_eq!(mount_at(&mounts, "/does/not/exist/yet").fstype, "tmpfs");
}

#[test]
fn nested_mount_destinations() {
    let Some(env) = Env::new() else { return };
    let src = host_dir_with_file(&env, "nested-src");
    let mut b = env.bundle();
    b.add_mount(json!({"destination": "/outer", "type": "tmpfs", "source": "tmpfs"}));
    b.add_mount(
        json!({"destination": "/outer/inner", "type": "bind", "source": src,
                       "options": ["rbind"]}),
    );
    b.sh("cat /outer/inner/hello.txt; cat /proc/self/mountinfo");
    let out = env.run_ok(&b);
    assert!(out.starts_with("hello from host\n"), "{out}");
    let mounts = parse_mountinfo(&out);
    assert_eq!(mount_at(&mounts, "/outer").fstype, "tmpfs");
    mount_at(&mounts, "/outer/inner");
    // The inner destination was made inside the tmpfs, not in the rootfs.
    assert!(!b.rootfs().join("outer/inner").exists());
}

// ---------------------------------------------------------------- devices

#[test]
fn default_dev_has_the_standard_devices() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.sh("for d in null zero full random urandom tty; do \
            echo \"$d $(stat -c '%F %t:%T' /dev/$d)\"; done; \
          for d in ptmx; do [ -c /dev/$d ] && echo \"$d char\"; done; \
          for d in pts shm; do [ -d /dev/$d ] && echo \"$d dir\"; done; \
          for l in fd stdin stdout stderr; do echo \"$l -> $(readlink /dev/$l)\"; done; \
          [ -e /dev/vda ] && echo host-device-visible; \
          echo x > /dev/null && head -c 3 /dev/zero | od -An -tx1");
    let out = env.run_ok(&b);
    let expect = [
        "null character special file 1:3",
        "zero character special file 1:5",
        "full character special file 1:7",
        "random character special file 1:8",
        "urandom character special file 1:9",
        "tty character special file 5:0",
        "ptmx char",
        "pts dir",
        "shm dir",
        "fd -> /proc/self/fd",
        "stdin -> /proc/self/fd/0",
        "stdout -> /proc/self/fd/1",
        "stderr -> /proc/self/fd/2",
    ];
    let lines: Vec<&str> = out.lines().collect();
    for e in expect {
        assert!(lines.contains(&e), "missing {e:?} in:\n{out}");
    }
    assert!(!out.contains("host-device-visible"), "{out}");
    assert!(out.ends_with(" 00 00 00\n"), "{out}");
}

#[test]
fn spec_device_is_created_with_its_numbers_mode_and_owner() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.config_mut()["linux"]["devices"] = json!([{
        "path": "/dev/custom-full", "type": "c", "major": 1, "minor": 7,
        "fileMode": 0o640, "uid": 1234, "gid": 5678
    }]);
    b.sh("stat -c '%F %t:%T %a %u %g' /dev/custom-full; \
          echo x > /dev/custom-full 2>/dev/null && echo wrote || echo full");
    assert_eq!(
        env.run_ok(&b),
        "character special file 1:7 640 1234 5678\nfull\n"
    );
}

// ---------------------------------------------------------------- masked and readonly paths

#[test]
fn masked_paths_read_empty() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    let secret_dir = b.rootfs().join("etc/secret-dir");
    fs::create_dir(&secret_dir).unwrap();
    fs::write(secret_dir.join("key"), "k").unwrap();
    fs::write(b.rootfs().join("etc/secret-file"), "s").unwrap();
    b.config_mut()["linux"]["maskedPaths"] = json!([
        "/proc/timer_list",
        "/sys/firmware",
        "/etc/secret-dir",
        "/etc/secret-file",
        "/no/such/path"
    ]);
    // The host's versions are not empty, so these checks can fail.
    assert!(!fs::read_to_string("/proc/timer_list").unwrap().is_empty());
    assert!(fs::read_dir("/sys/firmware").unwrap().count() > 0);
    b.sh("echo timer_list $(wc -c < /proc/timer_list); \
          echo firmware $(ls -A /sys/firmware | wc -l); \
          echo dir $(ls -A /etc/secret-dir | wc -l); \
          echo file $(wc -c < /etc/secret-file)");
    assert_eq!(env.run_ok(&b), "timer_list 0\nfirmware 0\ndir 0\nfile 0\n");
}

#[test]
fn readonly_paths_reject_writes() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    fs::create_dir(b.rootfs().join("etc/ro-dir")).unwrap();
    b.config_mut()["linux"]["readonlyPaths"] = json!(["/etc/ro-dir", "/proc/sys"]);
    b.sh("touch /etc/ro-dir/new 2>/dev/null && echo ro-dir-writable || echo ro-dir-refused; \
          touch /etc/rw-ok && echo rw-ok; \
          echo 1 > /proc/sys/kernel/shm_rmid_forced 2>/dev/null && echo sys-writable || echo sys-refused");
    assert_eq!(env.run_ok(&b), "ro-dir-refused\nrw-ok\nsys-refused\n");
}

// ---------------------------------------------------------------- sysctl

#[test]
fn sysctls_are_set_inside_only() {
    let Some(env) = Env::new() else { return };
    let host_fwd = fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let host_shm = fs::read_to_string("/proc/sys/kernel/shm_rmid_forced").unwrap();
    let want_fwd = if host_fwd.trim() == "1" { "0" } else { "1" };
    let want_shm = if host_shm.trim() == "1" { "0" } else { "1" };
    let mut b = env.bundle();
    b.config_mut()["linux"]["sysctl"] = json!({
        "net.ipv4.ip_forward": want_fwd,
        "kernel.shm_rmid_forced": want_shm
    });
    b.sh("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shm_rmid_forced");
    assert_eq!(env.run_ok(&b), format!("{want_fwd}\n{want_shm}\n"));
    assert_eq!(
        fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_fwd
    );
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/shm_rmid_forced").unwrap(),
        host_shm
    );
}

// ---------------------------------------------------------------- process

#[test]
fn args_are_passed_exactly() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.args(&[
        "sh",
        "-c",
        "printf '[%s]' \"$0\" \"$@\"",
        "zero",
        "a b",
        "",
        "c*",
    ]);
    assert_eq!(env.run_ok(&b), "[zero][a b][][c*]");
}

#[test]
fn env_is_exactly_the_spec_env() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.config_mut()["process"]["env"] = json!([DEFAULT_PATH, "GREETING=hello world", "EMPTY="]);
    b.args(&["env"]);
    let out = env.run_ok(&b);
    // busybox env adds nothing and sh is not involved. Like runc, a runtime may add HOME
    // (from /etc/passwd) when the spec has none; nothing else.
    let mut vars: Vec<&str> = out.lines().filter(|l| *l != "HOME=/root").collect();
    vars.sort();
    assert_eq!(
        vars,
        ["EMPTY=", "GREETING=hello world", DEFAULT_PATH],
        "{out}"
    );
}

#[test]
fn cwd_is_applied_and_created_when_missing() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.config_mut()["process"]["cwd"] = json!("/var/lib/work");
    b.args(&["pwd"]);
    assert_eq!(env.run_ok(&b), "/var/lib/work\n");
}

#[test]
fn user_uid_gid_additional_gids_and_umask() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.config_mut()["process"]["user"] =
        json!({"uid": 1000, "gid": 1001, "additionalGids": [10, 20], "umask": 0o027});
    b.sh("grep -E '^(Uid|Gid|Groups):' /proc/self/status; umask; \
          cd /tmp && touch f && stat -c %a f");
    let out = env.run_ok(&b);
    let norm: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        norm,
        [
            "Uid: 1000 1000 1000 1000",
            "Gid: 1001 1001 1001 1001",
            "Groups: 10 20",
            "0027",
            "640"
        ],
        "{out}"
    );
}

#[test]
fn user_without_additional_gids_has_no_supplementary_groups() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.config_mut()["process"]["user"] = json!({"uid": 65534, "gid": 65534});
    b.sh("id -u; id -g; grep Groups: /proc/self/status");
    let out = env.run_ok(&b);
    let norm: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(norm, ["65534", "65534", "Groups:"], "{out}");
}

#[test]
fn rlimits_are_applied() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.config_mut()["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456},
        {"type": "RLIMIT_NPROC", "soft": 1000, "hard": 2000}
    ]);
    b.sh("ulimit -n; ulimit -Hn; ulimit -u");
    assert_eq!(env.run_ok(&b), "123\n456\n1000\n");
}

#[test]
fn oom_score_adj_is_applied() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.config_mut()["process"]["oomScoreAdj"] = json!(567);
    b.args(&["cat", "/proc/self/oom_score_adj"]);
    assert_eq!(env.run_ok(&b), "567\n");
}

fn caps_inside(env: &Env, b: &Bundle) -> Vec<(String, u64)> {
    let out = env.run_ok(b);
    cap_lines(&out)
}

#[test]
fn default_capabilities_for_root() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.args(&["cat", "/proc/self/status"]);
    let caps = caps_inside(&env, &b);
    let m = cap_mask(&DEFAULT_CAPS);
    assert_eq!(
        caps,
        [
            ("CapInh".to_string(), 0),
            ("CapPrm".to_string(), m),
            ("CapEff".to_string(), m),
            ("CapBnd".to_string(), m),
            ("CapAmb".to_string(), 0)
        ]
    );
}

#[test]
fn all_five_capability_sets_for_a_non_root_user() {
    // For a non-root user without file capabilities, exec keeps exactly: bounding,
    // inheritable, ambient, and permitted = effective = ambient. So with
    // ambient = permitted = effective, each set inside equals the spec's.
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    let bounding = [
        "CAP_KILL",
        "CAP_CHOWN",
        "CAP_NET_RAW",
        "CAP_NET_BIND_SERVICE",
    ];
    let inheritable = ["CAP_KILL", "CAP_CHOWN", "CAP_NET_RAW"];
    let pe = ["CAP_KILL", "CAP_CHOWN"];
    b.config_mut()["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    b.config_mut()["process"]["capabilities"] = json!({
        "bounding": bounding, "inheritable": inheritable,
        "permitted": pe, "effective": pe, "ambient": pe
    });
    b.args(&["cat", "/proc/self/status"]);
    let caps = caps_inside(&env, &b);
    assert_eq!(
        caps,
        [
            ("CapInh".to_string(), cap_mask(&inheritable)),
            ("CapPrm".to_string(), cap_mask(&pe)),
            ("CapEff".to_string(), cap_mask(&pe)),
            ("CapBnd".to_string(), cap_mask(&bounding)),
            ("CapAmb".to_string(), cap_mask(&pe))
        ]
    );
}

#[test]
fn capability_sets_are_enforced() {
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    // Root without CAP_CHOWN cannot chown a file it does not own... nor its own to another.
    let caps = ["CAP_KILL"];
    b.config_mut()["process"]["capabilities"] =
        json!({"bounding": caps, "permitted": caps, "effective": caps});
    b.sh("touch /tmp/f; chown 1234 /tmp/f 2>/dev/null && echo chowned || echo refused");
    assert_eq!(env.run_ok(&b), "refused\n");
}

#[test]
fn no_new_privileges_true_and_false() {
    let Some(env) = Env::new() else { return };
    for (nnp, want) in [(true, "1"), (false, "0")] {
        let mut b = env.bundle();
        b.config_mut()["process"]["noNewPrivileges"] = json!(nnp);
        b.sh("grep NoNewPrivs: /proc/self/status");
        let out = env.run_ok(&b);
        assert_eq!(
            out.split_whitespace().collect::<Vec<_>>(),
            ["NoNewPrivs:", want],
            "noNewPrivileges {nnp}"
        );
    }
}

#[test]
fn personality_linux32_changes_uname() {
    if cella_only("runc 1.1 ignores linux.personality (it came in runc 1.2)") {
        return;
    }
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.config_mut()["linux"]["personality"] = json!({"domain": "LINUX32"});
    b.args(&["uname", "-m"]);
    assert_eq!(env.run_ok(&b), "i686\n");
}

#[test]
fn io_priority_is_applied() {
    if cella_only("runc 1.1 ignores process.ioPriority (it came in runc 1.2)") {
        return;
    }
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.config_mut()["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 6});
    b.sh("ionice -p $$");
    assert_eq!(env.run_ok(&b), "best-effort: prio 6\n");
}

#[test]
fn scheduler_policy_and_nice_are_applied() {
    if cella_only("runc 1.1 ignores process.scheduler (it came in runc 1.2)") {
        return;
    }
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.config_mut()["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 7});
    b.args(&["cat", "/proc/self/stat"]);
    let out = env.run_ok(&b);
    // Fields after "(comm) ": state is field 3; nice is 19, policy is 41.
    let rest: Vec<&str> = out.rsplit_once(") ").unwrap().1.split(' ').collect();
    assert_eq!(rest[19 - 3], "7", "nice: {out}");
    assert_eq!(rest[41 - 3], libc::SCHED_BATCH.to_string(), "policy: {out}");
}

// ---------------------------------------------------------------- resources (cgroup v1 host)

fn read_cg(b: &Bundle, controller: &str, file: &str) -> String {
    let p = b.cgroup_dir(controller).join(file);
    fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

fn v1_only() -> bool {
    if !Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists() {
        return skip("these checks read cgroup v1 files; this host has no v1 memory hierarchy");
    }
    false
}

#[test]
fn memory_limit_is_written_to_the_cgroup() {
    if v1_only() {
        return;
    }
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.args(&["sleep", "1000"]);
    b.config_mut()["linux"]["resources"] =
        json!({"memory": {"limit": 64 * 1024 * 1024, "reservation": 32 * 1024 * 1024}});
    env.create(&b).ok();
    assert_eq!(
        read_cg(&b, "memory", "memory.limit_in_bytes"),
        (64 << 20).to_string()
    );
    assert_eq!(
        read_cg(&b, "memory", "memory.soft_limit_in_bytes"),
        (32 << 20).to_string()
    );
    // The init process is in that cgroup.
    let pid = env.state(&b.id)["pid"].as_i64().unwrap();
    assert!(read_cg(&b, "memory", "cgroup.procs")
        .lines()
        .any(|l| l == pid.to_string()));
}

#[test]
fn cpu_quota_period_and_shares_are_written_to_the_cgroup() {
    if v1_only() {
        return;
    }
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.args(&["sleep", "1000"]);
    b.config_mut()["linux"]["resources"] =
        json!({"cpu": {"quota": 50000, "period": 200000, "shares": 512}});
    env.create(&b).ok();
    assert_eq!(read_cg(&b, "cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(read_cg(&b, "cpu", "cpu.cfs_period_us"), "200000");
    assert_eq!(read_cg(&b, "cpu", "cpu.shares"), "512");
}

#[test]
fn pids_limit_is_written_and_enforced() {
    if v1_only() {
        return;
    }
    let Some(env) = Env::new() else { return };
    let mut b = env.bundle();
    b.config_mut()["linux"]["resources"] = json!({"pids": {"limit": 5}});
    // An inner shell (init + it = 2) tries to start 8 sleeps; the 4th fork fails, the inner
    // shell gives up, and its 3 sleeps stay. Without the limit it would wait forever.
    b.sh(
        "sh -c 'for i in 1 2 3 4 5 6 7 8; do sleep 1000 & done; wait' 2>/dev/null; \
          echo inner-exited; exec sleep 1000",
    );
    let created = env.create(&b);
    created.ok();
    assert_eq!(read_cg(&b, "pids", "pids.max"), "5");
    env.start(&b.id).ok();
    let deadline = std::time::Instant::now() + TIMEOUT;
    while !created.stdout_now().contains("inner-exited") {
        assert!(
            std::time::Instant::now() < deadline,
            "the limit did not stop the forks; pids.current {}",
            read_cg(&b, "pids", "pids.current")
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(read_cg(&b, "pids", "pids.current"), "4");
    let procs = processes_of(Some(&b.cgroup_rel()), None);
    assert_eq!(procs.len(), 4, "{procs:?}");
}
