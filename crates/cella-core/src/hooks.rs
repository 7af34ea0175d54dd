//! OCI hooks: run a program with the container state on its stdin, its args and env, and a
//! timeout. Which hooks run when is decided by `container` and `init`.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Hook, Hooks};

use crate::error::{Error, Result};

/// Check every hook's path (absolute) and timeout (positive).
pub fn validate(h: &Hooks) -> Result<()> {
    let lists = [
        ("prestart", h.prestart()),
        ("createRuntime", h.create_runtime()),
        ("createContainer", h.create_container()),
        ("startContainer", h.start_container()),
        ("poststart", h.poststart()),
        ("poststop", h.poststop()),
    ];
    for (name, list) in lists {
        for (i, hook) in list.iter().flatten().enumerate() {
            if !hook.path().is_absolute() {
                return Err(Error::spec(
                    format!("hooks.{name}[{i}].path"),
                    format!("{} must be an absolute path", hook.path().display()),
                ));
            }
            if let Some(t) = hook.timeout() {
                if t <= 0 {
                    return Err(Error::spec(
                        format!("hooks.{name}[{i}].timeout"),
                        format!("{t} must be a positive number of seconds"),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Run `hooks` (named `kind` in messages) one after another; stop at the first failure.
pub fn run_all(kind: &str, hooks: Option<&Vec<Hook>>, state_json: &[u8]) -> Result<()> {
    for (i, h) in hooks.into_iter().flatten().enumerate() {
        run(kind, i, h, state_json)?;
    }
    Ok(())
}

/// Run one hook.
pub fn run(kind: &str, i: usize, h: &Hook, state_json: &[u8]) -> Result<()> {
    let path = h.path();
    let name = format!("hooks.{kind}[{i}] ({})", path.display());
    let mut cmd = Command::new(path);
    let args = h.args().clone().unwrap_or_default();
    if let Some(first) = args.first() {
        cmd.arg0(first);
        cmd.args(&args[1..]);
    }
    cmd.env_clear();
    for kv in h.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    // A hook must not outlive a runtime killed while waiting for it (kill -9 mid-create):
    // nobody would ever reap or stop it.
    // SAFETY: the closure runs in the forked child before exec and calls only prctl, which is
    // async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::Hook(format!("{name}: cannot run: {e}")))?;
    // A hook may exit without reading its stdin; a broken pipe there is not an error.
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(state_json);
    }
    let timeout = h.timeout().map(|t| Duration::from_secs(t as u64));
    let pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(child.id() as i32).expect("child pid is positive"),
        rustix::process::PidfdFlags::empty(),
    )
    .map_err(|e| Error::Hook(format!("{name}: pidfd_open: {e}")))?;
    let start = Instant::now();
    loop {
        let left = match timeout {
            Some(t) => match t.checked_sub(start.elapsed()) {
                Some(l) => Some(l),
                None => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(Error::Hook(format!(
                        "{name}: timed out after {}s and was killed",
                        t.as_secs()
                    )));
                }
            },
            None => None,
        };
        let mut fds = [rustix::event::PollFd::new(
            &pidfd,
            rustix::event::PollFlags::IN,
        )];
        let ts = left.map(|l| rustix::time::Timespec {
            tv_sec: l.as_secs() as i64,
            tv_nsec: l.subsec_nanos() as i64,
        });
        match rustix::event::poll(&mut fds, ts.as_ref()) {
            Ok(n) if n > 0 => break,
            Ok(_) | Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Error::Hook(format!("{name}: waiting: {e}"))),
        }
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::Hook(format!("{name}: waiting: {e}")))?;
    let _ = pidfd.as_fd();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stderr = stderr.trim();
        let how = match out.status.code() {
            Some(c) => format!("exited with status {c}"),
            None => format!(
                "was killed by {}",
                crate::signal::describe_status(out.status)
            ),
        };
        return Err(Error::Hook(if stderr.is_empty() {
            format!("{name} {how}")
        } else {
            format!("{name} {how}: {stderr}")
        }));
    }
    // Pass the hook's stderr through for the user to see.
    if !out.stderr.is_empty() {
        let _ = std::io::stderr().write_all(&out.stderr);
    }
    Ok(())
}
