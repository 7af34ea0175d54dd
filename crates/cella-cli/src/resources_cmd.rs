//! `cella-runc update` and `cella-runc events`: flag parsing and printing; the work is in
//! `cella_core::resources`.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use cella_core::resources;
use cella_core::state::StateRoot;
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Value};

/// runc's `update` flags.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct UpdateArgs {
    /// Read the new resources (an OCI linux.resources object) from FILE, or stdin with "-".
    /// The flags below override the file's values.
    #[arg(short, long, value_name = "FILE")]
    pub resources: Option<PathBuf>,
    /// Memory limit (bytes, or with a unit: 64M, 1G; -1: unlimited).
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory plus swap limit (-1: unlimited swap).
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Soft memory limit.
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// CPU shares (relative weight).
    #[arg(long, value_name = "N")]
    pub cpu_shares: Option<u64>,
    /// CPU time in microseconds per --cpu-period (-1: unlimited).
    #[arg(long, value_name = "USEC", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU CFS period in microseconds.
    #[arg(long, value_name = "USEC")]
    pub cpu_period: Option<u64>,
    /// CPUs the container may run on (e.g. 0-1,3).
    #[arg(long, value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes the container may use.
    #[arg(long, value_name = "LIST")]
    pub cpuset_mems: Option<String>,
    /// Most processes the container may have (-1 or 0: unlimited).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Block IO weight, 10 to 1000.
    #[arg(long, value_name = "N")]
    pub blkio_weight: Option<u16>,
    /// Container id.
    pub id: String,
}

/// Build the `linux.resources` of an update from the file's JSON (if any) and the flags.
pub fn update_resources(file_json: Option<&str>, a: &UpdateArgs) -> Result<LinuxResources> {
    let mut v: Value = match file_json {
        Some(text) => {
            serde_json::from_str(text).context("--resources: not a JSON linux.resources object")?
        }
        None => json!({}),
    };
    if !v.is_object() {
        bail!("--resources: expected a JSON object (the linux.resources of a config.json)");
    }
    let mut set = |section: &str, key: &str, val: Value| {
        if !v[section].is_object() {
            v[section] = json!({});
        }
        v[section][key] = val;
    };
    let bytes = |s: &str, flag: &str| -> Result<i64> { crate::friendly::parse_bytes(s, flag) };
    if let Some(m) = &a.memory {
        set("memory", "limit", json!(bytes(m, "--memory")?));
    }
    if let Some(m) = &a.memory_swap {
        set("memory", "swap", json!(bytes(m, "--memory-swap")?));
    }
    if let Some(m) = &a.memory_reservation {
        set(
            "memory",
            "reservation",
            json!(bytes(m, "--memory-reservation")?),
        );
    }
    if let Some(s) = a.cpu_shares {
        set("cpu", "shares", json!(s));
    }
    if let Some(q) = a.cpu_quota {
        set("cpu", "quota", json!(q));
    }
    if let Some(p) = a.cpu_period {
        set("cpu", "period", json!(p));
    }
    if let Some(c) = &a.cpuset_cpus {
        set("cpu", "cpus", json!(c));
    }
    if let Some(m) = &a.cpuset_mems {
        set("cpu", "mems", json!(m));
    }
    if let Some(p) = a.pids_limit {
        set("pids", "limit", json!(if p <= 0 { -1 } else { p }));
    }
    if let Some(w) = a.blkio_weight {
        set("blockIO", "weight", json!(w));
    }
    if v.as_object().is_some_and(|o| o.is_empty()) {
        bail!(
            "update {}: nothing to change; give --resources FILE or a flag such as --memory",
            a.id
        );
    }
    serde_json::from_value(v).context("the resources to update")
}

/// `update`.
pub fn update(root: &StateRoot, a: &UpdateArgs) -> Result<i32> {
    let text = match &a.resources {
        None => None,
        Some(p) if p.as_os_str() == "-" => Some(
            std::io::read_to_string(std::io::stdin()).context("--resources -: reading stdin")?,
        ),
        Some(p) => Some(
            std::fs::read_to_string(p).with_context(|| format!("--resources {}", p.display()))?,
        ),
    };
    let r = update_resources(text.as_deref(), a)?;
    resources::update(root, &a.id, &r)?;
    Ok(0)
}

/// A Go-style duration as runc takes it: "5s", "100ms", "1m30s", "1.5s", "250us".
pub fn parse_duration(s: &str) -> Result<Duration> {
    let err = || {
        anyhow!("--interval {s:?}: not a duration; use a number with a unit, like 5s, 500ms or 1m")
    };
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(err());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        if n == 0 {
            return Err(err());
        }
        let num: f64 = rest[..n].parse().map_err(|_| err())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(err()),
        };
        total += num * mult;
        rest = &rest[u..];
    }
    if total <= 0.0 {
        bail!("--interval {s:?}: must be more than 0");
    }
    Ok(Duration::from_secs_f64(total))
}

/// `events [--stats] [--interval D] ID`: one JSON object a line.
pub fn events(root: &StateRoot, id: &str, stats: bool, interval: &str) -> Result<i32> {
    let interval = parse_duration(interval)?;
    let mut out = std::io::stdout().lock();
    if stats {
        let e = resources::stats(root, id)?;
        writeln!(out, "{}", serde_json::to_string(&e)?)?;
        return Ok(0);
    }
    resources::events(root, id, interval, |e| {
        let line = serde_json::to_string(e).expect("event serialises");
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|err| cella_core::Error::Io {
                context: "writing events to stdout".into(),
                source: err,
            })
    })?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(id: &str) -> UpdateArgs {
        UpdateArgs {
            id: id.into(),
            ..Default::default()
        }
    }

    #[test]
    fn flags_to_resources() {
        let mut a = args("c1");
        a.memory = Some("64M".into());
        a.memory_swap = Some("-1".into());
        a.memory_reservation = Some("32m".into());
        a.cpu_shares = Some(512);
        a.cpu_quota = Some(50000);
        a.cpu_period = Some(100000);
        a.cpuset_cpus = Some("0-1".into());
        a.cpuset_mems = Some("0".into());
        a.pids_limit = Some(0);
        a.blkio_weight = Some(300);
        let r = update_resources(None, &a).unwrap();
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["memory"]["limit"], 64 << 20);
        assert_eq!(v["memory"]["swap"], -1);
        assert_eq!(v["memory"]["reservation"], 32 << 20);
        assert_eq!(v["cpu"]["shares"], 512);
        assert_eq!(v["cpu"]["quota"], 50000);
        assert_eq!(v["cpu"]["period"], 100000);
        assert_eq!(v["cpu"]["cpus"], "0-1");
        assert_eq!(v["cpu"]["mems"], "0");
        assert_eq!(v["pids"]["limit"], -1);
        assert_eq!(v["blockIO"]["weight"], 300);
    }

    #[test]
    fn flags_override_the_file() {
        let mut a = args("c1");
        a.pids_limit = Some(20);
        let r = update_resources(
            Some(r#"{"pids": {"limit": 5}, "memory": {"limit": 1048576}}"#),
            &a,
        )
        .unwrap();
        assert_eq!(r.pids().as_ref().unwrap().limit(), 20);
        assert_eq!(r.memory().as_ref().unwrap().limit(), Some(1 << 20));
        assert!(r.cpu().is_none());
    }

    #[test]
    fn bad_updates_are_refused() {
        let e = update_resources(None, &args("c1")).unwrap_err().to_string();
        assert!(e.contains("nothing to change"), "{e}");
        let e = update_resources(Some("[1]"), &args("c1"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("JSON object"), "{e}");
        let e = update_resources(Some("{"), &args("c1"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--resources"), "{e}");
        let mut a = args("c1");
        a.memory = Some("lots".into());
        assert!(format!("{:#}", update_resources(None, &a).unwrap_err()).contains("--memory"));
        let e = format!(
            "{:#}",
            update_resources(Some(r#"{"pids": {"limit": "x"}}"#), &args("c1")).unwrap_err()
        );
        assert!(e.contains("limit") || e.contains("invalid"), "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("250us").unwrap(), Duration::from_micros(250));
        for bad in ["", "5", "s", "5x", "0s", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
