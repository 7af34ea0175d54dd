//! Resource → file translation tests for both drivers, on fake cgroup
//! trees in a temporary directory (no root needed).

use std::collections::BTreeMap;
use std::path::PathBuf;

use oci_spec::runtime::LinuxResources;

use crate::fsutil::Write;
use crate::mountinfo::CgroupMount;
use crate::{CgroupManager, CgroupPath, Error, Layout, Mounts, V1Manager, V2Manager};

const LEAF: &str = "cella/t";

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

fn path() -> CgroupPath {
    CgroupPath::resolve_with_own(Some("/cella/t"), "t", BTreeMap::new()).unwrap()
}

/// Files a fresh v1 cgroup has, per hierarchy, with their content.
fn v1_files() -> Vec<(&'static str, &'static str, &'static str)> {
    vec![
        ("memory", "memory.limit_in_bytes", "9223372036854771712"),
        (
            "memory",
            "memory.memsw.limit_in_bytes",
            "9223372036854771712",
        ),
        (
            "memory",
            "memory.soft_limit_in_bytes",
            "9223372036854771712",
        ),
        (
            "memory",
            "memory.kmem.limit_in_bytes",
            "9223372036854771712",
        ),
        (
            "memory",
            "memory.kmem.tcp.limit_in_bytes",
            "9223372036854771712",
        ),
        ("memory", "memory.swappiness", "60"),
        (
            "memory",
            "memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
        ),
        ("memory", "memory.use_hierarchy", "1"),
        ("memory", "memory.usage_in_bytes", "1048576"),
        ("memory", "memory.max_usage_in_bytes", "2097152"),
        ("cpu,cpuacct", "cpu.shares", "1024"),
        ("cpu,cpuacct", "cpu.cfs_period_us", "100000"),
        ("cpu,cpuacct", "cpu.cfs_quota_us", "-1"),
        ("cpu,cpuacct", "cpu.cfs_burst_us", "0"),
        ("cpu,cpuacct", "cpu.rt_period_us", "1000000"),
        ("cpu,cpuacct", "cpu.rt_runtime_us", "0"),
        ("cpu,cpuacct", "cpu.idle", "0"),
        ("cpu,cpuacct", "cpuacct.usage", "123456789"),
        ("cpuset", "cpuset.cpus", "0-1"),
        ("cpuset", "cpuset.mems", "0"),
        ("pids", "pids.max", "max"),
        ("pids", "pids.current", "2"),
        ("blkio", "blkio.weight", "500"),
        ("blkio", "blkio.leaf_weight", "500"),
        ("blkio", "blkio.weight_device", ""),
        ("blkio", "blkio.leaf_weight_device", ""),
        ("blkio", "blkio.throttle.read_bps_device", ""),
        ("blkio", "blkio.throttle.write_bps_device", ""),
        ("blkio", "blkio.throttle.read_iops_device", ""),
        ("blkio", "blkio.throttle.write_iops_device", ""),
        (
            "hugetlb",
            "hugetlb.2MB.limit_in_bytes",
            "9223372036854771712",
        ),
        ("net_cls,net_prio", "net_cls.classid", "0"),
        ("net_cls,net_prio", "net_prio.ifpriomap", ""),
        ("rdma", "rdma.max", ""),
        ("devices", "devices.allow", ""),
        ("devices", "devices.deny", ""),
        ("freezer", "freezer.state", "THAWED"),
        ("name=systemd", "cgroup.procs", ""),
    ]
}

struct Fake {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    mounts: Mounts,
}

impl Fake {
    /// A legacy v1 tree; `skip` lists files to leave out.
    fn v1(skip: &[&str]) -> Fake {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let mut mounts = Mounts::default();
        let mut hiers: Vec<&str> = Vec::new();
        for (h, file, content) in v1_files() {
            if !hiers.contains(&h) {
                hiers.push(h);
            }
            if skip.contains(&file) {
                continue;
            }
            let dir = root.join(h.trim_start_matches("name=")).join(LEAF);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(file), content).unwrap();
        }
        for h in hiers {
            let ctl: Vec<&str> = h.split(',').collect();
            mounts.v1.push(CgroupMount::v1(
                root.join(h.trim_start_matches("name=")),
                &ctl,
            ));
        }
        Fake {
            _tmp: tmp,
            root,
            mounts,
        }
    }

    /// A pure v2 tree with the given files in the leaf.
    fn v2(files: &[(&str, &str)]) -> Fake {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let dir = root.join(LEAF);
        std::fs::create_dir_all(&dir).unwrap();
        for (file, content) in files {
            std::fs::write(dir.join(file), content).unwrap();
        }
        let mounts = Mounts {
            v1: Vec::new(),
            unified: Some(CgroupMount::v2(&root)),
        };
        Fake {
            _tmp: tmp,
            root,
            mounts,
        }
    }

    fn v1m(&self) -> V1Manager {
        V1Manager::new(&self.mounts, Layout::Legacy, &path(), Vec::new()).unwrap()
    }

    fn v2m(&self) -> V2Manager {
        V2Manager::new(&self.mounts, &path(), Vec::new()).unwrap()
    }

    /// (path relative to the fake root, value) of each write.
    fn rel(&self, writes: &[Write]) -> Vec<(String, String)> {
        writes
            .iter()
            .map(|w| {
                (
                    w.path
                        .strip_prefix(&self.root)
                        .unwrap()
                        .display()
                        .to_string(),
                    w.value.clone(),
                )
            })
            .collect()
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.root.join(rel)).unwrap()
    }
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn all_v1_fields() -> LinuxResources {
    res(r#"{
        "memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728,
                   "kernel": 16777216, "kernelTCP": 8388608, "swappiness": 10,
                   "disableOOMKiller": true, "useHierarchy": true, "checkBeforeUpdate": true},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "burst": 1000,
                "realtimeRuntime": 5000, "realtimePeriod": 100000, "cpus": "0", "mems": "0", "idle": 1},
        "pids": {"limit": 64},
        "blockIO": {"weight": 300, "leafWeight": 200,
                    "weightDevice": [{"major": 8, "minor": 0, "weight": 400, "leafWeight": 100}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                    "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 2097152}],
                    "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}],
                    "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 200}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
        "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]},
        "rdma": {"mlx5_0": {"hcaHandles": 3, "hcaObjects": 100}},
        "devices": [{"allow": false, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]
    }"#)
}

#[test]
fn v1_every_field() {
    let fake = Fake::v1(&[]);
    let m = fake.v1m();
    let r = all_v1_fields();
    let plan = m.plan(&r).unwrap();
    let mem = "memory/cella/t/";
    let cpu = "cpu,cpuacct/cella/t/";
    let blk = "blkio/cella/t/";
    let expected: Vec<(String, String)> = [
        // new limit is below the current memsw limit: memory first
        (format!("{mem}memory.limit_in_bytes"), "67108864"),
        (format!("{mem}memory.memsw.limit_in_bytes"), "134217728"),
        (format!("{mem}memory.soft_limit_in_bytes"), "33554432"),
        (format!("{mem}memory.kmem.limit_in_bytes"), "16777216"),
        (format!("{mem}memory.kmem.tcp.limit_in_bytes"), "8388608"),
        (format!("{mem}memory.swappiness"), "10"),
        (format!("{mem}memory.oom_control"), "1"),
        (format!("{cpu}cpu.shares"), "512"),
        (format!("{cpu}cpu.cfs_period_us"), "100000"),
        (format!("{cpu}cpu.cfs_quota_us"), "50000"),
        (format!("{cpu}cpu.cfs_burst_us"), "1000"),
        (format!("{cpu}cpu.rt_period_us"), "100000"),
        (format!("{cpu}cpu.rt_runtime_us"), "5000"),
        (format!("{cpu}cpu.idle"), "1"),
        ("cpuset/cella/t/cpuset.cpus".into(), "0"),
        ("cpuset/cella/t/cpuset.mems".into(), "0"),
        ("pids/cella/t/pids.max".into(), "64"),
        (format!("{blk}blkio.weight"), "300"),
        (format!("{blk}blkio.leaf_weight"), "200"),
        (format!("{blk}blkio.weight_device"), "8:0 400"),
        (format!("{blk}blkio.leaf_weight_device"), "8:0 100"),
        (
            format!("{blk}blkio.throttle.read_bps_device"),
            "8:0 1048576",
        ),
        (
            format!("{blk}blkio.throttle.write_bps_device"),
            "8:0 2097152",
        ),
        (format!("{blk}blkio.throttle.read_iops_device"), "8:0 100"),
        (format!("{blk}blkio.throttle.write_iops_device"), "8:0 200"),
        (
            "hugetlb/cella/t/hugetlb.2MB.limit_in_bytes".into(),
            "4194304",
        ),
        ("net_cls,net_prio/cella/t/net_cls.classid".into(), "1048577"),
        (
            "net_cls,net_prio/cella/t/net_prio.ifpriomap".into(),
            "eth0 5",
        ),
        (
            "rdma/cella/t/rdma.max".into(),
            "mlx5_0 hca_handle=3 hca_object=100",
        ),
        ("devices/cella/t/devices.deny".into(), "a"),
        ("devices/cella/t/devices.allow".into(), "c 1:3 rwm"),
    ]
    .iter()
    .map(|(a, b)| (a.clone(), b.to_string()))
    .collect();
    assert_eq!(fake.rel(&plan), expected);
    // kmem limits are read back (some kernels accept and ignore them)
    assert!(plan
        .iter()
        .filter(|w| w.verify)
        .all(|w| w.path.to_str().unwrap().contains("kmem")));
    assert_eq!(plan.iter().filter(|w| w.verify).count(), 2);

    m.apply(&r).unwrap();
    assert_eq!(
        fake.read("memory/cella/t/memory.limit_in_bytes"),
        "67108864"
    );
    assert_eq!(
        fake.read("memory/cella/t/memory.memsw.limit_in_bytes"),
        "134217728"
    );
    assert_eq!(fake.read("cpu,cpuacct/cella/t/cpu.cfs_quota_us"), "50000");
    assert_eq!(fake.read("pids/cella/t/pids.max"), "64");
    assert_eq!(fake.read("devices/cella/t/devices.allow"), "c 1:3 rwm");
}

#[test]
fn v1_swap_order_when_raising() {
    let fake = Fake::v1(&[]);
    std::fs::write(
        fake.root.join("memory/cella/t/memory.memsw.limit_in_bytes"),
        "33554432",
    )
    .unwrap();
    let plan = fake
        .v1m()
        .plan(&res(
            r#"{"memory": {"limit": 67108864, "swap": 134217728}}"#,
        ))
        .unwrap();
    assert_eq!(
        fake.rel(&plan),
        pairs(&[
            ("memory/cella/t/memory.memsw.limit_in_bytes", "134217728"),
            ("memory/cella/t/memory.limit_in_bytes", "67108864"),
        ])
    );
    // unlimited memory without a swap value makes memory+swap unlimited too, first
    let plan = fake
        .v1m()
        .plan(&res(r#"{"memory": {"limit": -1}}"#))
        .unwrap();
    assert_eq!(
        fake.rel(&plan),
        pairs(&[
            ("memory/cella/t/memory.memsw.limit_in_bytes", "-1"),
            ("memory/cella/t/memory.limit_in_bytes", "-1"),
        ])
    );
}

#[test]
fn v1_without_swap_accounting() {
    let fake = Fake::v1(&["memory.memsw.limit_in_bytes"]);
    let m = fake.v1m();
    let err = m
        .plan(&res(
            r#"{"memory": {"limit": 67108864, "swap": 134217728}}"#,
        ))
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("linux.resources.memory.swap") && msg.contains("swapaccount=1"),
        "{msg}"
    );
    for ok in [
        r#"{"memory": {"limit": 67108864, "swap": 67108864}}"#,
        r#"{"memory": {"limit": 67108864, "swap": -1}}"#,
    ] {
        let plan = m.plan(&res(ok)).unwrap();
        assert_eq!(
            fake.rel(&plan),
            pairs(&[("memory/cella/t/memory.limit_in_bytes", "67108864")])
        );
    }
    assert!(m
        .plan(&res(r#"{"memory": {"limit": 67108864, "swap": 1}}"#))
        .is_err());
}

#[test]
fn zero_values_are_unset() {
    let json = r#"{"memory": {"limit": 0, "reservation": 0, "kernel": 0, "kernelTCP": 0, "swap": 0},
                   "cpu": {"shares": 0, "quota": 0, "period": 0, "realtimeRuntime": 0, "realtimePeriod": 0, "cpus": "", "mems": ""},
                   "pids": {"limit": 0},
                   "blockIO": {"weight": 0, "leafWeight": 0, "weightDevice": [{"major": 8, "minor": 0, "weight": 0}]}}"#;
    let fake = Fake::v1(&[]);
    assert!(fake.v1m().plan(&res(json)).unwrap().is_empty());
    let fake = Fake::v2(&[]);
    let p = fake.v2m().plan(&res(json)).unwrap();
    assert!(p.writes.is_empty() && p.devices.is_none());
    // and no controller is needed for them
    let mut empty = Fake::v1(&[]);
    empty.mounts.v1.retain(|m| m.has("freezer"));
    assert!(empty.v1m().plan(&res(json)).unwrap().is_empty());
}

#[test]
fn v1_rejections() {
    let fake = Fake::v1(&[]);
    let m = fake.v1m();
    let cases = [
        (
            r#"{"unified": {"memory.high": "1"}}"#,
            "linux.resources.unified is not supported on a cgroup v1 host",
        ),
        (r#"{"cpu": {"shares": 1}}"#, "linux.resources.cpu.shares"),
        (
            r#"{"memory": {"swappiness": 101}}"#,
            "linux.resources.memory.swappiness",
        ),
        (
            r#"{"memory": {"limit": 67108864, "swap": 1024}}"#,
            "linux.resources.memory.swap",
        ),
        (
            r#"{"memory": {"limit": 1024, "checkBeforeUpdate": true}}"#,
            "below the current usage of 1048576",
        ),
        (
            r#"{"blockIO": {"weight": 5}}"#,
            "linux.resources.blockIO.weight",
        ),
        (r#"{"cpu": {"idle": 2}}"#, "linux.resources.cpu.idle"),
        (
            r#"{"hugepageLimits": [{"pageSize": "1GB", "limit": 1}]}"#,
            "hugepageLimits[0].pageSize",
        ),
        (
            r#"{"devices": [{"allow": true, "type": "p"}]}"#,
            "linux.resources.devices[0].type",
        ),
    ];
    for (json, want) in cases {
        let msg = m.plan(&res(json)).unwrap_err().to_string();
        assert!(msg.contains(want), "{json}: {msg}");
    }
    // missing controllers / kernel files
    let fake = Fake::v1(&[
        "blkio.weight",
        "blkio.leaf_weight",
        "cpu.cfs_burst_us",
        "cpu.rt_period_us",
        "memory.kmem.limit_in_bytes",
    ]);
    let mut m = fake.v1m();
    for (json, want) in [
        (
            r#"{"blockIO": {"weight": 100}}"#,
            "linux.resources.blockIO.weight is not supported on this host",
        ),
        (
            r#"{"cpu": {"burst": 10}}"#,
            "linux.resources.cpu.burst is not supported by this kernel",
        ),
        (
            r#"{"cpu": {"realtimePeriod": 10}}"#,
            "linux.resources.cpu.realtimePeriod is not supported",
        ),
        (
            r#"{"memory": {"kernel": 4096}}"#,
            "linux.resources.memory.kernel is not supported",
        ),
    ] {
        let msg = m.plan(&res(json)).unwrap_err().to_string();
        assert!(msg.contains(want), "{json}: {msg}");
    }
    assert!(m.plan(&res(r#"{"cpu": {"burst": 0}}"#)).unwrap().is_empty());
    m.hiers
        .retain(|h| !h.mount.has("net_cls") && !h.mount.has("rdma"));
    for (json, want) in [
        (
            r#"{"network": {"classID": 1}}"#,
            "linux.resources.network.classID needs the \"net_cls\" cgroup controller",
        ),
        (
            r#"{"network": {"priorities": [{"name": "lo", "priority": 1}]}}"#,
            "\"net_prio\"",
        ),
        (r#"{"rdma": {"mlx": {"hcaHandles": 1}}}"#, "\"rdma\""),
    ] {
        let msg = m.plan(&res(json)).unwrap_err().to_string();
        assert!(msg.contains(want), "{json}: {msg}");
    }
}

#[test]
fn v1_use_hierarchy_written_only_on_change() {
    let fake = Fake::v1(&[]);
    let m = fake.v1m();
    assert!(m
        .plan(&res(r#"{"memory": {"useHierarchy": true}}"#))
        .unwrap()
        .is_empty());
    let p = m
        .plan(&res(
            r#"{"memory": {"useHierarchy": false, "disableOOMKiller": false}}"#,
        ))
        .unwrap();
    assert_eq!(
        fake.rel(&p),
        pairs(&[
            ("memory/cella/t/memory.oom_control", "0"),
            ("memory/cella/t/memory.use_hierarchy", "0")
        ])
    );
}

#[test]
fn hybrid_hugetlb_goes_to_unified() {
    let mut fake = Fake::v1(&[]);
    fake.mounts.v1.retain(|m| !m.has("hugetlb"));
    let uroot = fake.root.join("unified");
    std::fs::create_dir_all(uroot.join(LEAF)).unwrap();
    std::fs::write(uroot.join("cgroup.controllers"), "hugetlb\n").unwrap();
    std::fs::write(uroot.join("cgroup.subtree_control"), "").unwrap();
    std::fs::write(uroot.join("cella/cgroup.subtree_control"), "hugetlb\n").unwrap();
    std::fs::write(uroot.join(LEAF).join("hugetlb.2MB.max"), "max").unwrap();
    std::fs::write(uroot.join(LEAF).join("hugetlb.2MB.rsvd.max"), "max").unwrap();
    fake.mounts.unified = Some(CgroupMount::v2(&uroot));
    let m = V1Manager::new(&fake.mounts, Layout::Hybrid, &path(), Vec::new()).unwrap();
    let p = m
        .plan(&res(
            r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}"#,
        ))
        .unwrap();
    assert_eq!(
        fake.rel(&p),
        pairs(&[
            ("unified/cgroup.subtree_control", "+hugetlb"),
            ("unified/cella/t/hugetlb.2MB.max", "4194304"),
            ("unified/cella/t/hugetlb.2MB.rsvd.max", "4194304"),
        ])
    );
    // without hugetlb anywhere it is an error naming the field
    std::fs::write(uroot.join("cgroup.controllers"), "").unwrap();
    let msg = m
        .plan(&res(
            r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 1}]}"#,
        ))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("linux.resources.hugepageLimits[0] needs the \"hugetlb\""),
        "{msg}"
    );
    // the unified leaf is part of the cgroup on hybrid hosts
    assert!(m.dirs().contains(&uroot.join(LEAF)));
    assert!(m
        .container_mounts()
        .iter()
        .any(|c| c.dir == "unified" && c.fstype == "cgroup2"));
}

fn v2_leaf_files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("memory.max", "max"),
        ("memory.swap.max", "max"),
        ("memory.low", "0"),
        ("memory.current", "1048576"),
        ("memory.peak", "2097152"),
        ("memory.events", "low 0\nhigh 0\nmax 0\noom 2\noom_kill 2\n"),
        ("cpu.weight", "100"),
        ("cpu.max", "max 100000"),
        ("cpu.max.burst", "0"),
        ("cpu.idle", "0"),
        (
            "cpu.stat",
            "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n",
        ),
        ("cpuset.cpus", ""),
        ("cpuset.mems", ""),
        ("pids.max", "max"),
        ("pids.current", "3"),
        ("io.weight", "default 100"),
        ("io.max", ""),
        ("hugetlb.2MB.max", "max"),
        ("rdma.max", ""),
        ("memory.high", "max"),
        ("cgroup.freeze", "0"),
        ("cgroup.events", "populated 1\nfrozen 0\n"),
        ("cgroup.procs", "10\n11\n"),
    ]
}

#[test]
fn v2_every_field() {
    let fake = Fake::v2(&v2_leaf_files());
    let m = fake.v2m();
    let r = res(r#"{
        "memory": {"limit": 67108864, "reservation": 33554432, "swap": 100663296,
                   "kernel": 0, "useHierarchy": true, "disableOOMKiller": false, "checkBeforeUpdate": true},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "burst": 1000, "cpus": "0-1", "mems": "0", "idle": 0},
        "pids": {"limit": -1},
        "blockIO": {"weight": 500,
                    "weightDevice": [{"major": 8, "minor": 0, "weight": 1000}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                    "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 0}],
                    "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}],
                    "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 200}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": -1}],
        "rdma": {"mlx5_0": {"hcaHandles": 3}},
        "unified": {"memory.high": "50331648"},
        "devices": [{"allow": false, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]
    }"#);
    let plan = m.plan(&r).unwrap();
    let l = "cella/t/";
    let expected: Vec<(String, String)> = [
        ("memory.max", "67108864"),
        ("memory.swap.max", "33554432"),
        ("memory.low", "33554432"),
        ("cpu.weight", "39"),
        ("cpu.max", "50000 100000"),
        ("cpu.max.burst", "1000"),
        ("cpu.idle", "0"),
        ("cpuset.cpus", "0-1"),
        ("cpuset.mems", "0"),
        ("pids.max", "max"),
        ("io.weight", "4950"),
        ("io.weight", "8:0 10000"),
        ("io.max", "8:0 rbps=1048576"),
        ("io.max", "8:0 wbps=max"),
        ("io.max", "8:0 riops=100"),
        ("io.max", "8:0 wiops=200"),
        ("hugetlb.2MB.max", "max"),
        ("rdma.max", "mlx5_0 hca_handle=3"),
        ("memory.high", "50331648"),
    ]
    .iter()
    .map(|(a, b)| (format!("{l}{a}"), b.to_string()))
    .collect();
    assert_eq!(fake.rel(&plan.writes), expected);
    let rules = plan.devices.unwrap();
    assert_eq!(rules.len(), 2);
    assert!(!rules[0].allow && rules[1].allow);
    // writes land in the files (the device program needs a real cgroup)
    let mut no_dev = r.clone();
    no_dev.set_devices(None);
    m.apply(&no_dev).unwrap();
    assert_eq!(fake.read("cella/t/memory.swap.max"), "33554432");
    assert_eq!(fake.read("cella/t/memory.high"), "50331648");
}

#[test]
fn v2_bfq_weight_and_period_only() {
    let mut files = v2_leaf_files();
    files.push(("io.bfq.weight", "default 100"));
    files.retain(|(f, _)| *f != "cpu.max");
    files.push(("cpu.max", "30000 100000\n"));
    let fake = Fake::v2(&files);
    let m = fake.v2m();
    let p = m
        .plan(&res(r#"{"blockIO": {"weight": 500, "weightDevice": [{"major": 8, "minor": 16, "weight": 20}]}, "cpu": {"period": 50000}}"#))
        .unwrap();
    assert_eq!(
        fake.rel(&p.writes),
        pairs(&[
            ("cella/t/cpu.max", "30000 50000"),
            ("cella/t/io.bfq.weight", "500"),
            ("cella/t/io.bfq.weight", "8:16 20"),
        ])
    );
}

#[test]
fn v2_rejections() {
    let fake = Fake::v2(&v2_leaf_files());
    let m = fake.v2m();
    let cases = [
        (
            r#"{"memory": {"kernel": 4096}}"#,
            "linux.resources.memory.kernel is not supported on cgroup v2",
        ),
        (
            r#"{"memory": {"kernelTCP": 4096}}"#,
            "linux.resources.memory.kernelTCP is not supported on cgroup v2",
        ),
        (
            r#"{"memory": {"swappiness": 0}}"#,
            "linux.resources.memory.swappiness is not supported on cgroup v2",
        ),
        (
            r#"{"memory": {"disableOOMKiller": true}}"#,
            "linux.resources.memory.disableOOMKiller is not supported on cgroup v2",
        ),
        (
            r#"{"memory": {"useHierarchy": false}}"#,
            "useHierarchy=false is not supported on cgroup v2",
        ),
        (
            r#"{"memory": {"swap": 4096}}"#,
            "linux.resources.memory.swap",
        ),
        (
            r#"{"memory": {"limit": 2048, "checkBeforeUpdate": true}}"#,
            "checkBeforeUpdate",
        ),
        (
            r#"{"cpu": {"realtimeRuntime": 1000}}"#,
            "linux.resources.cpu.realtimeRuntime is not supported on cgroup v2",
        ),
        (
            r#"{"cpu": {"realtimePeriod": 1000}}"#,
            "linux.resources.cpu.realtimePeriod is not supported on cgroup v2",
        ),
        (
            r#"{"blockIO": {"leafWeight": 100}}"#,
            "linux.resources.blockIO.leafWeight is not supported on cgroup v2",
        ),
        (
            r#"{"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "leafWeight": 100}]}}"#,
            "weightDevice[0].leafWeight is not supported",
        ),
        (
            r#"{"network": {"classID": 5}}"#,
            "linux.resources.network.classID is not supported on cgroup v2",
        ),
        (
            r#"{"network": {"priorities": [{"name": "lo", "priority": 1}]}}"#,
            "linux.resources.network.priorities is not supported on cgroup v2",
        ),
        (
            r#"{"unified": {"../memory.max": "1"}}"#,
            "no \"/\" or \"..\"",
        ),
        (
            r#"{"unified": {"a/memory.max": "1"}}"#,
            "no \"/\" or \"..\"",
        ),
        (
            r#"{"unified": {"cgroup.procs": "1"}}"#,
            "managed by the runtime",
        ),
        (r#"{"unified": {"memory": "1"}}"#, "interface files"),
        (r#"{"unified": {"io.latency": "1"}}"#, "does not exist"),
        (
            r#"{"hugepageLimits": [{"pageSize": "2MB/../x", "limit": 1}]}"#,
            "pageSize",
        ),
    ];
    for (json, want) in cases {
        let msg = m.plan(&res(json)).unwrap_err().to_string();
        assert!(msg.contains(want), "{json}: {msg}");
    }
    // a file missing because the controller is not enabled: the write names it
    let fake = Fake::v2(&[]);
    let err = fake
        .v2m()
        .apply(&res(r#"{"pids": {"limit": 5}}"#))
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("\"5\"") && msg.contains("pids.max") && msg.contains("subtree_control"),
        "{msg}"
    );
    // no swap accounting: only swap == limit or -1
    let mut files = v2_leaf_files();
    files.retain(|(f, _)| *f != "memory.swap.max");
    let fake = Fake::v2(&files);
    let m = fake.v2m();
    assert!(matches!(
        m.plan(&res(r#"{"memory": {"limit": 4096, "swap": 8192}}"#)),
        Err(Error::Unsupported { .. })
    ));
    let p = m
        .plan(&res(r#"{"memory": {"limit": 4096, "swap": 4096}}"#))
        .unwrap();
    assert_eq!(
        fake.rel(&p.writes),
        pairs(&[("cella/t/memory.max", "4096")])
    );
}

#[test]
fn v2_stats_pids_and_fd() {
    let fake = Fake::v2(&v2_leaf_files());
    let m = fake.v2m();
    let s = m.stats().unwrap();
    assert_eq!(s.memory_usage, Some(1048576));
    assert_eq!(s.memory_peak, Some(2097152));
    assert_eq!(s.memory_limit, None);
    assert_eq!(s.oom_kill, Some(2));
    assert_eq!(s.cpu_usage_ns, Some(1_500_000));
    assert_eq!(s.pids_current, Some(3));
    assert_eq!(m.oom_kill_count().unwrap(), 2);
    assert_eq!(m.pids().unwrap(), vec![10, 11]);
    assert!(!m.is_frozen().unwrap());
    let fd = m.unified_dir_fd().unwrap().unwrap();
    let flags = rustix::io::fcntl_getfd(&fd).unwrap();
    assert!(flags.contains(rustix::io::FdFlags::CLOEXEC));
    assert_eq!(m.container_mounts()[0].fstype, "cgroup2");
    assert_eq!(m.container_mounts()[0].dir, "");
}

#[test]
fn v1_stats_and_mounts() {
    let fake = Fake::v1(&[]);
    let m = fake.v1m();
    let s = m.stats().unwrap();
    assert_eq!(s.memory_usage, Some(1048576));
    assert_eq!(s.memory_peak, Some(2097152));
    assert_eq!(s.memory_limit, None);
    assert_eq!(s.oom_kill, Some(3));
    assert_eq!(s.cpu_usage_ns, Some(123456789));
    assert_eq!(s.pids_current, Some(2));
    assert!(m.unified_dir_fd().unwrap().is_none());
    assert!(!m.is_frozen().unwrap());
    let mounts = m.container_mounts();
    let cpu = mounts.iter().find(|c| c.dir == "cpu,cpuacct").unwrap();
    assert_eq!(cpu.options, "cpu,cpuacct");
    assert_eq!(
        cpu.symlinks,
        vec![
            ("cpu".to_string(), "cpu,cpuacct".to_string()),
            ("cpuacct".to_string(), "cpu,cpuacct".to_string())
        ]
    );
    assert_eq!(cpu.host_dir, fake.root.join("cpu,cpuacct").join(LEAF));
    let sd = mounts.iter().find(|c| c.options == "name=systemd").unwrap();
    assert_eq!(sd.dir, "systemd");
    assert!(sd.symlinks.is_empty());
    assert!(mounts.iter().all(|c| c.fstype == "cgroup"));
}

#[test]
fn create_and_destroy_in_temp_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    for h in ["memory", "pids"] {
        std::fs::create_dir_all(root.join(h).join("cella")).unwrap();
    }
    let mounts = Mounts {
        v1: vec![
            CgroupMount::v1(root.join("memory"), &["memory"]),
            CgroupMount::v1(root.join("pids"), &["pids"]),
        ],
        unified: None,
    };
    let p = CgroupPath::resolve_with_own(Some("/cella/a/b"), "b", BTreeMap::new()).unwrap();
    let mut m = crate::open_with(&mounts, Layout::Legacy, &p, Vec::new()).unwrap();
    m.create().unwrap();
    let created = m.created_dirs();
    // the parents made here; the container's own directories are not listed (destroy
    // always removes them)
    assert_eq!(
        created,
        vec![root.join("memory/cella/a"), root.join("pids/cella/a")]
    );
    // a later command reopens with the persisted list and cleans up; the container's dirs
    // are empty, so they go with the first rmdir (tmpfs has no cgroup.procs to read)
    let again = crate::open_with(&mounts, Layout::Legacy, &p, created).unwrap();
    again.destroy().unwrap();
    assert!(!root.join("memory/cella/a/b").exists());
    assert!(!root.join("memory/cella/a").exists());
    assert!(!root.join("pids/cella/a").exists());
    assert!(
        root.join("memory/cella").exists(),
        "pre-existing parent must stay"
    );
}

#[test]
fn v2_create_enables_controllers_in_ancestors() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    std::fs::write(root.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
    std::fs::write(root.join("cgroup.subtree_control"), "memory\n").unwrap();
    let mounts = Mounts {
        v1: vec![],
        unified: Some(CgroupMount::v2(root)),
    };
    let mut m = crate::open_with(&mounts, Layout::Unified, &path(), Vec::new()).unwrap();
    m.create().unwrap();
    assert_eq!(
        std::fs::read_to_string(root.join("cgroup.subtree_control")).unwrap(),
        "+cpu +pids"
    );
    assert_eq!(m.created_dirs(), vec![root.join("cella")]);
    assert!(crate::open_with(&mounts, Layout::Legacy, &path(), Vec::new()).is_err());
}

#[test]
fn default_path_keeps_its_parent() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    std::fs::create_dir(root.join("memory")).unwrap();
    let mounts = Mounts {
        v1: vec![CgroupMount::v1(root.join("memory"), &["memory"])],
        unified: Some(CgroupMount::v2(root.join("unified"))),
    };
    std::fs::create_dir(root.join("unified")).unwrap();
    let p = CgroupPath::resolve_with_own(None, "a", BTreeMap::new()).unwrap();
    for layout in [Layout::Legacy, Layout::Unified] {
        let mut m = crate::open_with(&mounts, layout, &p, Vec::new()).unwrap();
        m.create().unwrap();
        // `cella` was made here, but it is the runtime's own parent: not recorded
        assert!(m.created_dirs().is_empty(), "{layout:?}");
        for d in m.dirs() {
            assert!(d.is_dir());
            // tmpfs is not cgroupfs: there is no cgroup.procs; the first rmdir removes it
            m.destroy().unwrap();
            assert!(!d.exists());
            assert!(d.parent().unwrap().is_dir(), "the parent stays");
        }
    }
}

#[test]
fn cpuset_is_copied_down_where_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("cpuset");
    // `cella` exists with empty values (another runtime made it a moment ago)
    std::fs::create_dir_all(root.join("cella")).unwrap();
    for (dir, cpus, mems) in [(&root, "0-1\n", "0\n"), (&root.join("cella"), "", "")] {
        std::fs::write(dir.join("cpuset.cpus"), cpus).unwrap();
        std::fs::write(dir.join("cpuset.mems"), mems).unwrap();
    }
    let mounts = Mounts {
        v1: vec![CgroupMount::v1(&root, &["cpuset"])],
        unified: None,
    };
    let p = CgroupPath::resolve_with_own(Some("/cella/x/t"), "t", BTreeMap::new()).unwrap();
    let mut m = crate::open_with(&mounts, Layout::Legacy, &p, Vec::new()).unwrap();
    // a fresh tmpfs dir has no files; cgroupfs makes them empty
    let leaf = root.join("cella/x/t");
    for d in [root.join("cella/x"), leaf.clone()] {
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("cpuset.cpus"), "").unwrap();
        std::fs::write(d.join("cpuset.mems"), "").unwrap();
    }
    std::fs::write(root.join("cella/x/cpuset.cpus"), "1\n").unwrap();
    std::fs::write(root.join("cella/x/cpuset.mems"), "0\n").unwrap();
    m.create().unwrap();
    let read = |p: PathBuf| std::fs::read_to_string(p).unwrap();
    // the empty parent got the root's values; a level that has its own keeps them
    assert_eq!(read(root.join("cella/cpuset.cpus")), "0-1");
    assert_eq!(read(root.join("cella/x/cpuset.cpus")), "1\n");
    assert_eq!(read(leaf.join("cpuset.cpus")), "1");
    assert_eq!(read(leaf.join("cpuset.mems")), "0");
}
