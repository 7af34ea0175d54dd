//! process.*: validation in the runtime, and the per-process settings the init applies just
//! before exec (rlimits, oom score, personality, I/O priority, scheduler, CPU affinity).

use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    IOPriorityClass, LinuxSchedulerFlag, LinuxSchedulerPolicy, PosixRlimitType, Process,
};

use crate::error::{Error, Result};

/// Validate `process` (named `field` in messages: "process", or "exec" for exec).
pub fn validate(p: &Process, field: &str) -> Result<()> {
    let args = p.args().as_ref().filter(|a| !a.is_empty()).ok_or_else(|| {
        Error::spec(
            format!("{field}.args"),
            "is empty: give the program to run as args[0]",
        )
    })?;
    if args[0].is_empty() {
        return Err(Error::spec(
            format!("{field}.args[0]"),
            "is an empty string",
        ));
    }
    if !p.cwd().is_absolute() {
        return Err(Error::spec(
            format!("{field}.cwd"),
            format!("{} must be an absolute path", p.cwd().display()),
        ));
    }
    for (i, e) in p.env().iter().flatten().enumerate() {
        if !e.contains('=') || e.starts_with('=') {
            return Err(Error::spec(
                format!("{field}.env[{i}]"),
                format!("{e:?} is not of the form NAME=value"),
            ));
        }
        if e.contains('\0') {
            return Err(Error::spec(
                format!("{field}.env[{i}]"),
                "contains a NUL byte",
            ));
        }
    }
    if p.console_size().is_some() && !p.terminal().unwrap_or(false) {
        return Err(Error::spec(
            format!("{field}.consoleSize"),
            "is set but terminal is false",
        ));
    }
    if let Some(adj) = p.oom_score_adj() {
        if !(-1000..=1000).contains(&adj) {
            return Err(Error::spec(
                format!("{field}.oomScoreAdj"),
                format!("{adj} is outside -1000..1000"),
            ));
        }
    }
    if let Some(um) = p.user().umask() {
        if um > 0o777 {
            return Err(Error::spec(
                format!("{field}.user.umask"),
                format!("{um:o} is not a valid umask"),
            ));
        }
    }
    check_rlimits(p, field)?;
    if let Some(io) = p.io_priority() {
        if !(0..=7).contains(&io.priority()) {
            return Err(Error::spec(
                format!("{field}.ioPriority.priority"),
                format!("{} is outside 0..7", io.priority()),
            ));
        }
    }
    if let Some(s) = p.scheduler() {
        scheduler_attr(s).map_err(|m| Error::spec(format!("{field}.scheduler"), m))?;
    }
    if let Some(a) = p.exec_cpu_affinity() {
        for (name, v) in [("initial", a.initial()), ("final", a.cpu_affinity_final())] {
            if let Some(v) = v {
                parse_cpu_list(v)
                    .map_err(|m| Error::spec(format!("{field}.execCPUAffinity.{name}"), m))?;
            }
        }
    }
    if p.apparmor_profile().as_ref().is_some_and(|s| !s.is_empty()) {
        crate::lsm::require_apparmor(&format!("{field}.apparmorProfile"))?;
    }
    if p.selinux_label().as_ref().is_some_and(|s| !s.is_empty()) {
        crate::lsm::require_selinux(&format!("{field}.selinuxLabel"))?;
    }
    crate::caps::CapSets::from_spec(p.capabilities().as_ref())?;
    Ok(())
}

/// The setrlimit resource number of a spec rlimit type.
pub fn rlimit_resource(t: PosixRlimitType) -> (libc::__rlimit_resource_t, &'static str) {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => (libc::RLIMIT_CPU, "RLIMIT_CPU"),
        RlimitFsize => (libc::RLIMIT_FSIZE, "RLIMIT_FSIZE"),
        RlimitData => (libc::RLIMIT_DATA, "RLIMIT_DATA"),
        RlimitStack => (libc::RLIMIT_STACK, "RLIMIT_STACK"),
        RlimitCore => (libc::RLIMIT_CORE, "RLIMIT_CORE"),
        RlimitRss => (libc::RLIMIT_RSS, "RLIMIT_RSS"),
        RlimitNproc => (libc::RLIMIT_NPROC, "RLIMIT_NPROC"),
        RlimitNofile => (libc::RLIMIT_NOFILE, "RLIMIT_NOFILE"),
        RlimitMemlock => (libc::RLIMIT_MEMLOCK, "RLIMIT_MEMLOCK"),
        RlimitAs => (libc::RLIMIT_AS, "RLIMIT_AS"),
        RlimitLocks => (libc::RLIMIT_LOCKS, "RLIMIT_LOCKS"),
        RlimitSigpending => (libc::RLIMIT_SIGPENDING, "RLIMIT_SIGPENDING"),
        RlimitMsgqueue => (libc::RLIMIT_MSGQUEUE, "RLIMIT_MSGQUEUE"),
        RlimitNice => (libc::RLIMIT_NICE, "RLIMIT_NICE"),
        RlimitRtprio => (libc::RLIMIT_RTPRIO, "RLIMIT_RTPRIO"),
        RlimitRttime => (libc::RLIMIT_RTTIME, "RLIMIT_RTTIME"),
    }
}

fn has_cap_sys_resource() -> bool {
    caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_RESOURCE,
    )
    .unwrap_or(false)
}

/// Rlimits: soft <= hard, no duplicates, and no hard limit above ours unless we may raise it.
fn check_rlimits(p: &Process, field: &str) -> Result<()> {
    let may_raise = has_cap_sys_resource();
    let mut seen = Vec::new();
    for (i, r) in p.rlimits().iter().flatten().enumerate() {
        let (res, name) = rlimit_resource(r.typ());
        let f = format!("{field}.rlimits[{i}]");
        if seen.contains(&name) {
            return Err(Error::spec(f, format!("{name} is listed twice")));
        }
        seen.push(name);
        if r.soft() > r.hard() {
            return Err(Error::spec(
                f,
                format!(
                    "{name} soft limit {} is above its hard limit {}",
                    r.soft(),
                    r.hard()
                ),
            ));
        }
        if !may_raise {
            let mut cur = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: getrlimit writes into the valid rlimit struct we pass.
            if unsafe { libc::getrlimit(res, &mut cur) } == 0
                && cur.rlim_max != libc::RLIM_INFINITY
                && r.hard() > cur.rlim_max
            {
                return Err(Error::spec(
                    f,
                    format!(
                        "{name} hard limit {} is above the runtime's own hard limit {} and raising it needs CAP_SYS_RESOURCE, which this runtime does not have; lower the limit to at most {}",
                        r.hard(),
                        cur.rlim_max,
                        cur.rlim_max
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Apply rlimits in the init.
pub fn apply_rlimits(p: &Process) -> Result<()> {
    for r in p.rlimits().iter().flatten() {
        let (res, name) = rlimit_resource(r.typ());
        let lim = libc::rlimit {
            rlim_cur: r.soft(),
            rlim_max: r.hard(),
        };
        // SAFETY: setrlimit reads the valid rlimit struct we pass.
        if unsafe { libc::setrlimit(res, &lim) } != 0 {
            let e = std::io::Error::last_os_error();
            return Err(Error::Init(format!(
                "process.rlimits: setting {name} to soft {} hard {}: {e}",
                r.soft(),
                r.hard()
            )));
        }
    }
    Ok(())
}

/// Apply ioPriority.
pub fn apply_io_priority(p: &Process) -> Result<()> {
    let Some(io) = p.io_priority() else {
        return Ok(());
    };
    let class = match io.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    let value = (class << 13) | io.priority() as libc::c_long;
    // SAFETY: ioprio_set takes three integers; IOPRIO_WHO_PROCESS (1) with pid 0 is us.
    if unsafe { libc::syscall(libc::SYS_ioprio_set, 1, 0, value) } != 0 {
        return Err(Error::Init(format!(
            "process.ioPriority: ioprio_set: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    sched_policy: u32,
    sched_flags: u64,
    sched_nice: i32,
    sched_priority: u32,
    sched_runtime: u64,
    sched_deadline: u64,
    sched_period: u64,
    sched_util_min: u32,
    sched_util_max: u32,
}

fn scheduler_attr(s: &oci_spec::runtime::Scheduler) -> std::result::Result<SchedAttr, String> {
    let policy = match s.policy() {
        LinuxSchedulerPolicy::SchedOther => 0,
        LinuxSchedulerPolicy::SchedFifo => 1,
        LinuxSchedulerPolicy::SchedRr => 2,
        LinuxSchedulerPolicy::SchedBatch => 3,
        LinuxSchedulerPolicy::SchedIso => {
            return Err("SCHED_ISO is not implemented by Linux".into())
        }
        LinuxSchedulerPolicy::SchedIdle => 5,
        LinuxSchedulerPolicy::SchedDeadline => 6,
    };
    let mut flags = 0u64;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            LinuxSchedulerFlag::SchedResetOnFork => 0x01,
            LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
            LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
            LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
            LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
            LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
            LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
        };
    }
    let nice = s.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        return Err(format!("nice {nice} is outside -20..19"));
    }
    let prio = s.priority().unwrap_or(0);
    if matches!(policy, 1 | 2) && !(1..=99).contains(&prio) {
        return Err(format!(
            "priority {prio} must be 1..99 for SCHED_FIFO and SCHED_RR"
        ));
    }
    if !matches!(policy, 1 | 2) && prio != 0 {
        return Err(format!("priority {prio} must be 0 for this policy"));
    }
    Ok(SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        sched_policy: policy,
        sched_flags: flags,
        sched_nice: nice,
        sched_priority: prio as u32,
        sched_runtime: s.runtime().unwrap_or(0),
        sched_deadline: s.deadline().unwrap_or(0),
        sched_period: s.period().unwrap_or(0),
        ..Default::default()
    })
}

/// Apply process.scheduler.
pub fn apply_scheduler(p: &Process) -> Result<()> {
    let Some(s) = p.scheduler() else {
        return Ok(());
    };
    let attr = scheduler_attr(s).map_err(|m| Error::spec("process.scheduler", m))?;
    // SAFETY: sched_setattr reads a properly sized, initialised sched_attr for pid 0 (us).
    if unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) } != 0 {
        return Err(Error::Init(format!(
            "process.scheduler: sched_setattr: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

/// Parse "0-3,5" into CPU numbers.
pub fn parse_cpu_list(s: &str) -> std::result::Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("{s:?} is not a CPU list like \"0-3,5\"");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if a > b || b >= 1024 {
                    return Err(bad());
                }
                out.extend(a..=b);
            }
            None => {
                let n: usize = part.parse().map_err(|_| bad())?;
                if n >= 1024 {
                    return Err(bad());
                }
                out.push(n);
            }
        }
    }
    if out.is_empty() {
        return Err(format!("{s:?} names no CPU"));
    }
    Ok(out)
}

/// Pin the calling process to `cpus`.
pub fn set_affinity(list: &str, field: &str) -> Result<()> {
    let cpus = parse_cpu_list(list).map_err(|m| Error::spec(field, m))?;
    let mut set = rustix::thread::CpuSet::new();
    for c in cpus {
        set.set(c);
    }
    rustix::thread::sched_setaffinity(None, &set)
        .map_err(|e| Error::Init(format!("{field}: sched_setaffinity {list}: {e}")))
}

/// Apply linux.personality.
pub fn apply_personality(l: &oci_spec::runtime::Linux) -> Result<()> {
    let Some(p) = l.personality() else {
        return Ok(());
    };
    let domain = match p.domain() {
        oci_spec::runtime::LinuxPersonalityDomain::PerLinux => 0x0000,
        oci_spec::runtime::LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    // SAFETY: personality takes a plain integer.
    if unsafe { libc::personality(domain) } == -1 {
        return Err(Error::Init(format!(
            "linux.personality: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

/// Write process.oomScoreAdj through the init's procfs handle.
pub fn apply_oom_score_adj(p: &Process, proc: &std::os::fd::OwnedFd) -> Result<()> {
    let Some(adj) = p.oom_score_adj() else {
        return Ok(());
    };
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::openat(
        proc,
        "self/oom_score_adj",
        OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        Error::Init(format!(
            "process.oomScoreAdj: opening /proc/self/oom_score_adj: {e}"
        ))
    })?;
    rustix::io::write(&fd, adj.to_string().as_bytes()).map_err(|e| {
        Error::Init(format!("process.oomScoreAdj: writing {adj}: {e} (lowering the score below the runtime's own needs CAP_SYS_RESOURCE)"))
    })?;
    Ok(())
}

/// Find args[0] inside the (already entered) container root, as execvp would, and explain
/// precisely when it cannot be executed.
pub fn find_executable(arg0: &str, env: &[String], cwd: &Path) -> Result<PathBuf> {
    let candidates: Vec<PathBuf> = if arg0.contains('/') {
        vec![if Path::new(arg0).is_absolute() {
            PathBuf::from(arg0)
        } else {
            cwd.join(arg0)
        }]
    } else {
        let path = env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        path.split(':')
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(d).join(arg0))
            .collect()
    };
    let mut not_exec = None;
    for c in &candidates {
        match std::fs::metadata(c) {
            Ok(m) if m.is_file() => {
                use std::os::unix::fs::PermissionsExt;
                if m.permissions().mode() & 0o111 == 0 {
                    not_exec = Some(c.clone());
                    continue;
                }
                diagnose_format(c)?;
                return Ok(c.clone());
            }
            Ok(_) => continue,
            Err(_) => continue,
        }
    }
    if let Some(c) = not_exec {
        return Err(Error::spec(
            "process.args[0]",
            format!(
                "{} is not executable in the container (mode lacks x bits)",
                c.display()
            ),
        ));
    }
    if arg0.contains('/') {
        Err(Error::spec(
            "process.args[0]",
            format!("{arg0:?}: no such file in the container's root filesystem"),
        ))
    } else {
        Err(Error::spec(
            "process.args[0]",
            format!(
                "{arg0:?}: executable file not found in the container's $PATH ({})",
                env.iter()
                    .find_map(|e| e.strip_prefix("PATH="))
                    .unwrap_or("default PATH")
            ),
        ))
    }
}

/// Look inside an executable for the reasons exec would fail with ENOENT even though the
/// file exists: a missing ELF interpreter (dynamic loader) or a script interpreter that does
/// not exist (often a CRLF line ending on the #! line).
pub fn diagnose_format(path: &Path) -> Result<()> {
    use std::io::Read;
    let mut head = vec![0u8; 4096];
    let n = match std::fs::File::open(path).and_then(|mut f| f.read(&mut head)) {
        Ok(n) => n,
        Err(_) => return Ok(()),
    };
    let head = &head[..n];
    if head.starts_with(b"#!") {
        let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
        let line = &head[2..line_end];
        if line.ends_with(b"\r") {
            return Err(Error::spec(
                "process.args[0]",
                format!("{}: its #! line ends with a carriage return (CRLF line endings), so the interpreter name includes \\r; convert the script to LF line endings", path.display()),
            ));
        }
        let text = String::from_utf8_lossy(line);
        if let Some(interp) = text.split_whitespace().next() {
            if !Path::new(interp).exists() {
                return Err(Error::spec(
                    "process.args[0]",
                    format!(
                        "{}: its interpreter {interp} does not exist in the container",
                        path.display()
                    ),
                ));
            }
        }
        return Ok(());
    }
    if let Some(interp) = elf_interpreter(head) {
        if !Path::new(&interp).exists() {
            return Err(Error::spec(
                "process.args[0]",
                format!("{} is a dynamically linked binary but its loader {interp} is missing from the container's root filesystem (copy the libraries it needs, or use a static binary)", path.display()),
            ));
        }
    }
    Ok(())
}

/// PT_INTERP of a 64-bit little-endian ELF image whose headers lie in `head`.
fn elf_interpreter(head: &[u8]) -> Option<String> {
    if head.len() < 64 || &head[..4] != b"\x7fELF" || head[4] != 2 || head[5] != 1 {
        return None;
    }
    let u16at = |o: usize| Some(u16::from_le_bytes(head.get(o..o + 2)?.try_into().ok()?));
    let u64at = |o: usize| Some(u64::from_le_bytes(head.get(o..o + 8)?.try_into().ok()?));
    let phoff = u64at(0x20)? as usize;
    let phentsize = u16at(0x36)? as usize;
    let phnum = u16at(0x38)? as usize;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        let ptype = u32::from_le_bytes(head.get(ph..ph + 4)?.try_into().ok()?);
        if ptype == 3 {
            let off = u64at(ph + 8)? as usize;
            let size = u64at(ph + 32)? as usize;
            let bytes = head.get(off..off + size)?;
            let s = bytes.split(|&b| b == 0).next()?;
            return Some(String::from_utf8_lossy(s).into_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-2,5").unwrap(), vec![0, 1, 2, 5]);
        assert_eq!(parse_cpu_list("1").unwrap(), vec![1]);
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("x").is_err());
        assert!(parse_cpu_list("").is_err());
    }

    #[test]
    fn elf_interp_of_a_dynamic_binary() {
        let head = std::fs::read("/bin/ls").unwrap();
        let interp = elf_interpreter(&head[..4096.min(head.len())]).unwrap();
        assert!(interp.contains("ld-linux"), "{interp}");
    }

    #[test]
    fn crlf_shebang_is_explained() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("s.sh");
        std::fs::write(&p, "#!/bin/sh\r\necho hi\r\n").unwrap();
        let e = diagnose_format(&p).unwrap_err().to_string();
        assert!(e.contains("CRLF"), "{e}");
        std::fs::write(&p, "#!/nonexistent/interp\n").unwrap();
        let e = diagnose_format(&p).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/interp does not exist"), "{e}");
    }
}
