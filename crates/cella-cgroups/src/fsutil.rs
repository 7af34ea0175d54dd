//! Small helpers for reading and writing cgroup files with errors that
//! name the file and the value.

use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::Error;

/// One planned write of a value into a cgroup file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Write {
    /// The file.
    pub path: PathBuf,
    /// What to write.
    pub value: String,
    /// The spec field this implements (for messages).
    pub field: String,
    /// Read the file back afterwards and fail if the kernel did not take
    /// the value (for files some kernels accept and ignore).
    pub verify: bool,
}

impl Write {
    pub(crate) fn new(path: PathBuf, value: impl Into<String>, field: impl Into<String>) -> Self {
        Write {
            path,
            value: value.into(),
            field: field.into(),
            verify: false,
        }
    }

    pub(crate) fn verified(mut self) -> Self {
        self.verify = true;
        self
    }
}

/// Performs planned writes in order, keeping each file open for the next write to it (the
/// ~11 device rules of a spec go to `devices.allow`/`devices.deny` through one open each;
/// every value is still its own write(2), in the plan's order).
#[derive(Default)]
pub(crate) struct Writer {
    open: Vec<(PathBuf, File)>,
}

impl Writer {
    /// Perform one write (and the verification, if asked).
    pub(crate) fn run(&mut self, w: &Write) -> Result<(), Error> {
        let i = match self.open.iter().position(|(p, _)| *p == w.path) {
            Some(i) => i,
            None => {
                self.open
                    .push((w.path.clone(), open_for_write(&w.path, &w.value)?));
                self.open.len() - 1
            }
        };
        write_to(&mut self.open[i].1, &w.path, &w.value)?;
        w.verify_back()
    }
}

impl Write {
    fn verify_back(&self) -> Result<(), Error> {
        if self.verify {
            let back = read_string(&self.path)?;
            let back = back.trim();
            if !same_limit(&self.value, back) {
                return Err(Error::NotHonoured {
                    field: self.field.clone(),
                    path: self.path.clone(),
                    value: self.value.clone(),
                    read_back: back.into(),
                    reason: "this kernel accepts the file but ignores the value (kernel memory \
                             limits were removed from Linux); remove the field from the spec"
                        .into(),
                });
            }
        }
        Ok(())
    }
}

/// Does a limit file's content `back` mean the value `written`? Byte limits
/// are rounded down to the page size; `-1` reads back as a huge number.
fn same_limit(written: &str, back: &str) -> bool {
    if written == back {
        return true;
    }
    let page = rustix::param::page_size() as u64;
    match (written.parse::<i64>(), back.parse::<u64>()) {
        (Ok(w), Ok(b)) if w < 0 => b >= (1u64 << 62),
        (Ok(w), Ok(b)) => (w as u64) / page * page == b,
        _ => false,
    }
}

/// Read a whole file: open and read(2) until the end, without the fstat std's
/// `fs::read_to_string` does first (cgroup and proc files report size 0 anyway).
pub(crate) fn read_string(path: &Path) -> Result<String, Error> {
    read_small(path).map_err(|source| Error::Read {
        path: path.into(),
        source,
    })
}

/// Read a small pseudo-file (cgroup, proc) with plain read(2) calls.
pub(crate) fn read_small(path: &Path) -> io::Result<String> {
    let mut f = File::open(path)?;
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match f.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    String::from_utf8(out).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )
    })
}

/// Read a file holding one unsigned number ("max" is `u64::MAX`).
pub(crate) fn read_u64(path: &Path) -> Result<u64, Error> {
    let s = read_string(path)?;
    parse_u64(path, s.trim())
}

pub(crate) fn parse_u64(path: &Path, s: &str) -> Result<u64, Error> {
    if s == "max" {
        return Ok(u64::MAX);
    }
    s.parse().map_err(|_| Error::Parse {
        path: path.into(),
        content: s.into(),
        reason: "expected an unsigned number".into(),
    })
}

/// The value of `key` in a flat-keyed file (`key value` lines), such as
/// memory.events, cpu.stat or memory.oom_control.
pub(crate) fn keyed_u64(path: &Path, key: &str) -> Result<Option<u64>, Error> {
    let text = read_string(path)?;
    for line in text.lines() {
        let mut it = line.split_whitespace();
        if it.next() == Some(key) {
            if let Some(v) = it.next() {
                return parse_u64(path, v).map(Some);
            }
        }
    }
    Ok(None)
}

/// Write `value` to an existing file (never creates it), in one write(2).
pub(crate) fn write_file(path: &Path, value: &str) -> Result<(), Error> {
    let mut f = open_for_write(path, value)?;
    write_to(&mut f, path, value)
}

/// The error of writing `value` to `path`, with a hint for the usual causes.
fn write_error(path: &Path, value: &str, source: io::Error) -> Error {
    let hint = match source.raw_os_error() {
        Some(libc::ENOENT) => format!(
            "; the file does not exist: the {:?} controller is not available for this cgroup \
                 (on cgroup v2 it must be enabled in the parent's cgroup.subtree_control)",
            controller_of(path)
        ),
        Some(libc::EBUSY)
            if path.ends_with("memory.limit_in_bytes") || path.ends_with("memory.max") =>
        {
            "; the cgroup's memory usage is above the new limit and could not be reclaimed".into()
        }
        _ => String::new(),
    };
    Error::Write {
        path: path.into(),
        value: value.into(),
        source,
        hint,
    }
}

/// Open an existing file for writing `value` (named in the error if it cannot be opened).
fn open_for_write(path: &Path, value: &str) -> Result<File, Error> {
    // std opens with O_CLOEXEC.
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(|e| write_error(path, value, e))
}

/// Write `value` to the open file `f` (which is `path`).
fn write_to(f: &mut File, path: &Path, value: &str) -> Result<(), Error> {
    f.write_all(value.as_bytes())
        .map_err(|e| write_error(path, value, e))
}

/// `memory` for `.../memory.max`, `cgroup` for `cgroup.procs`.
pub(crate) fn controller_of(path: &Path) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.split('.').next())
        .unwrap_or("")
        .to_string()
}

/// Read a `cgroup.procs` file.
pub(crate) fn read_pids(path: &Path) -> Result<Vec<i32>, Error> {
    let text = read_string(path)?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim().parse::<i32>().map_err(|_| Error::Parse {
                path: path.into(),
                content: l.into(),
                reason: "expected a pid".into(),
            })
        })
        .collect()
}

/// Sub-directories of `dir` (child cgroups), deepest first.
pub(crate) fn descendants_deepest_first(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    collect_children(dir, &mut out)?;
    Ok(out)
}

fn collect_children(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(Error::Read {
                path: dir.into(),
                source,
            })
        }
    };
    for entry in rd {
        let entry = entry.map_err(|source| Error::Read {
            path: dir.into(),
            source,
        })?;
        let ft = entry.file_type().map_err(|source| Error::Read {
            path: entry.path(),
            source,
        })?;
        if ft.is_dir() {
            let p = entry.path();
            collect_children(&p, out)?;
            out.push(p);
        }
    }
    Ok(())
}

/// Remove a cgroup directory, retrying EBUSY (exiting tasks still being
/// accounted) for up to `timeout`. A missing directory is fine.
pub(crate) fn rmdir_retry(dir: &Path, timeout: Duration) -> Result<(), Error> {
    let start = Instant::now();
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && start.elapsed() < timeout => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(source) => {
                let hint = if source.raw_os_error() == Some(libc::EBUSY) {
                    "; processes are still in the cgroup".to_string()
                } else {
                    String::new()
                };
                return Err(Error::Rmdir {
                    path: dir.into(),
                    source,
                    hint,
                });
            }
        }
    }
}

/// Create `dir` and any missing parents below `stop` (which must exist),
/// returning the directories that were created, top-down.
pub(crate) fn mkdir_all(stop: &Path, dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let rel = dir.strip_prefix(stop).map_err(|_| Error::Mkdir {
        path: dir.into(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "not below the cgroup mount"),
    })?;
    // The usual case: the parents exist (the default parent `cella` is kept between
    // containers), so one mkdir makes the container's directory.
    match std::fs::create_dir(dir) {
        Ok(()) => return Ok(vec![dir.to_path_buf()]),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(Vec::new()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(Error::Mkdir {
                path: dir.into(),
                source,
            })
        }
    }
    let mut created = Vec::new();
    // A shared parent can be removed by another container's teardown between our mkdir of
    // it (EEXIST) and our mkdir below it (ENOENT): start again from the top a few times.
    let mut attempts = 0;
    'again: loop {
        let mut cur = stop.to_path_buf();
        for comp in rel.components() {
            cur.push(comp);
            match std::fs::create_dir(&cur) {
                Ok(()) => {
                    if !created.contains(&cur) {
                        created.push(cur.clone());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempts < 5 => {
                    attempts += 1;
                    continue 'again;
                }
                Err(source) => {
                    return Err(Error::Mkdir {
                        path: cur.clone(),
                        source,
                    })
                }
            }
        }
        return Ok(created);
    }
}

/// Poll `cond` every 5 ms (then 20 ms) until it holds or `timeout` passes.
pub(crate) fn wait_until(
    timeout: Duration,
    what: &str,
    path: &Path,
    mut cond: impl FnMut() -> Result<bool, Error>,
) -> Result<(), Error> {
    let start = Instant::now();
    loop {
        if cond()? {
            return Ok(());
        }
        let el = start.elapsed();
        if el >= timeout {
            return Err(Error::Timeout {
                what: what.into(),
                path: path.into(),
                millis: timeout.as_millis() as u64,
            });
        }
        std::thread::sleep(if el < Duration::from_millis(100) {
            Duration::from_millis(5)
        } else {
            Duration::from_millis(20)
        });
    }
}

/// Send `sig` to every pid; a pid that is already gone is fine.
pub(crate) fn signal_all(pids: &[i32], sig: i32, dir: &Path) -> Result<(), Error> {
    let mut errors = Vec::new();
    for &pid in pids {
        // SAFETY: kill(2) takes plain integers and has no memory effects;
        // pids come from this cgroup's cgroup.procs and are > 0.
        let rc = unsafe { libc::kill(pid, sig) };
        if rc != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ESRCH) {
                errors.push(Error::Signal {
                    pid,
                    signal: sig,
                    path: dir.into(),
                    source: e,
                });
            }
        }
    }
    Error::collect(errors)
}

/// Try to remove the cgroup `dir` once: true if it is gone (removed now or missing), false
/// if it could not be removed (busy: it still has processes or sub-cgroups; or any other
/// error, which the caller's full removal reports).
pub(crate) fn rmdir_if_unused(dir: &Path) -> bool {
    match std::fs::remove_dir(dir) {
        Ok(()) => true,
        Err(e) => e.kind() == io::ErrorKind::NotFound,
    }
}

/// Remove the cgroup `dir` with every sub-cgroup below it (deepest first), retrying while
/// the kernel still reports them busy; failures are added to `errors` and the rest goes on.
/// A plain rmdir is tried first: only a cgroup that has sub-cgroups (or is still busy) is
/// listed.
pub(crate) fn remove_tree(dir: &Path, timeout: Duration, errors: &mut Vec<Error>) {
    if rmdir_if_unused(dir) {
        return;
    }
    match descendants_deepest_first(dir) {
        Ok(children) => {
            for c in children {
                if let Err(e) = rmdir_retry(&c, timeout) {
                    errors.push(e);
                }
            }
        }
        Err(e) => errors.push(e),
    }
    if let Err(e) = rmdir_retry(dir, timeout) {
        errors.push(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_read_back() {
        assert!(same_limit("-1", "9223372036854771712"));
        assert!(same_limit("67108864", "67108864"));
        assert!(same_limit("67108865", "67108864"));
        assert!(!same_limit("67108864", "9223372036854771712"));
        assert!(!same_limit("1", "x"));
    }

    #[test]
    fn write_never_creates_and_names_path_and_value() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("memory.max");
        let e = write_file(&p, "123").unwrap_err().to_string();
        assert!(
            e.contains("\"123\"")
                && e.contains("memory.max")
                && e.contains("\"memory\" controller"),
            "{e}"
        );
        std::fs::write(&p, "old").unwrap();
        write_file(&p, "123").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "123");
    }

    #[test]
    fn keyed_and_pids() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("memory.events");
        std::fs::write(&p, "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n").unwrap();
        assert_eq!(keyed_u64(&p, "oom_kill").unwrap(), Some(2));
        assert_eq!(keyed_u64(&p, "nope").unwrap(), None);
        let q = d.path().join("cgroup.procs");
        std::fs::write(&q, "1\n22\n").unwrap();
        assert_eq!(read_pids(&q).unwrap(), vec![1, 22]);
        std::fs::write(&q, "x\n").unwrap();
        assert!(read_pids(&q).is_err());
    }

    #[test]
    fn writer_keeps_a_file_open_for_its_next_write() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("devices.allow");
        std::fs::write(&p, "old").unwrap();
        let mut w = Writer::default();
        w.run(&Write::new(p.clone(), "c 1:3 rwm", "f")).unwrap();
        w.run(&Write::new(p.clone(), "|c 1:5 rwm", "f")).unwrap();
        // one open (truncating once), two writes; on cgroupfs each write is one rule
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "c 1:3 rwm|c 1:5 rwm");
        let e = w
            .run(&Write::new(d.path().join("nope"), "1", "f"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope") && e.contains("\"1\""), "{e}");
    }

    #[test]
    fn mkdir_all_reports_created() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("a")).unwrap();
        let made = mkdir_all(d.path(), &d.path().join("a/b/c")).unwrap();
        assert_eq!(made, vec![d.path().join("a/b"), d.path().join("a/b/c")]);
        assert!(mkdir_all(d.path(), &d.path().join("a/b/c"))
            .unwrap()
            .is_empty());
        // parents present: just the leaf
        assert_eq!(
            mkdir_all(d.path(), &d.path().join("a/b/d")).unwrap(),
            vec![d.path().join("a/b/d")]
        );
        std::fs::remove_dir(d.path().join("a/b/d")).unwrap();
        assert_eq!(
            descendants_deepest_first(&d.path().join("a")).unwrap(),
            vec![d.path().join("a/b/c"), d.path().join("a/b")]
        );
        rmdir_retry(&d.path().join("a/b/c"), Duration::from_millis(10)).unwrap();
        rmdir_retry(&d.path().join("a/b/c"), Duration::from_millis(10)).unwrap();
    }
}
