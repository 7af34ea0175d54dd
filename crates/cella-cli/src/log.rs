//! Error and debug records for `--log FILE` / `--log-format text|json`, in runc's shape:
//! json is one object a line with level, msg and time; text is logrus-style key=value.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// Where records go besides stderr.
#[derive(Debug, Default)]
pub struct Log {
    file: Option<File>,
    json: bool,
    debug: bool,
}

impl Log {
    /// Open `path` for appending (created if missing).
    pub fn new(path: Option<&Path>, json: bool, debug: bool) -> anyhow::Result<Log> {
        let file = match path {
            Some(p) => Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| anyhow::anyhow!("--log {}: {e}", p.display()))?,
            ),
            None => None,
        };
        Ok(Log { file, json, debug })
    }

    /// Record an error: to the log file when one is given, and always to stderr.
    pub fn error(&mut self, msg: &str) {
        self.write("error", msg);
        eprintln!("cella: {msg}");
    }

    /// A warning (stderr and log).
    pub fn warn(&mut self, msg: &str) {
        self.write("warning", msg);
        eprintln!("cella: warning: {msg}");
    }

    /// A debug record (only with --debug).
    pub fn debug(&mut self, msg: &str) {
        if self.debug {
            self.write("debug", msg);
            if self.file.is_none() {
                eprintln!("cella: debug: {msg}");
            }
        }
    }

    fn write(&mut self, level: &str, msg: &str) {
        let Some(f) = &mut self.file else { return };
        let time = cella_core::state::rfc3339_now();
        let line = if self.json {
            serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
        } else {
            format!("time={:?} level={level} msg={:?}", time, msg)
        };
        let _ = writeln!(f, "{line}");
    }
}
