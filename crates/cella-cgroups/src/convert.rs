//! Every conversion between OCI (cgroup v1-shaped) values and what the
//! kernel files take, for v1 and v2, in one place.

use crate::Error;

const F_SWAP: &str = "linux.resources.memory.swap";

/// Smallest and largest `cpu.shares` the kernel accepts (it clamps others).
pub const SHARES_MIN: u64 = 2;
/// See [`SHARES_MIN`].
pub const SHARES_MAX: u64 = 262_144;

/// cgroup v1 `cpu.shares` → cgroup v2 `cpu.weight`, with the linear mapping
/// documented for runc/OCI (`[2, 262144]` onto `[1, 10000]`):
/// `weight = 1 + (shares - 2) * 9999 / 262142`. `0` means unset.
pub fn shares_to_weight(shares: u64) -> Option<u64> {
    if shares == 0 {
        return None;
    }
    let s = shares.clamp(SHARES_MIN, SHARES_MAX);
    Some(1 + ((s - 2) * 9999) / 262_142)
}

/// Check a `cpu.shares` value before writing it (the kernel would clamp it
/// silently and the container would get something else than asked).
pub fn check_shares(shares: u64) -> Result<(), Error> {
    if (SHARES_MIN..=SHARES_MAX).contains(&shares) {
        Ok(())
    } else {
        Err(Error::InvalidValue {
            field: "linux.resources.cpu.shares".into(),
            value: shares.to_string(),
            reason: format!("must be between {SHARES_MIN} and {SHARES_MAX} (or 0 for unset)"),
        })
    }
}

/// Check a v1 blkio weight (10..=1000, 0 = unset). `field` names the spec field.
pub fn check_blkio_weight(field: &str, w: u16) -> Result<(), Error> {
    if (10..=1000).contains(&w) {
        Ok(())
    } else {
        Err(Error::InvalidValue {
            field: field.into(),
            value: w.to_string(),
            reason: "must be between 10 and 1000 (or 0 for unset)".into(),
        })
    }
}

/// blkio weight `[10, 1000]` → v2 `io.weight` `[1, 10000]`:
/// `1 + (w - 10) * 9999 / 990`.
pub fn blkio_weight_to_io_weight(w: u16) -> u64 {
    let w = u64::from(w.clamp(10, 1000));
    1 + (w - 10) * 9999 / 990
}

/// blkio weight → v2 `io.bfq.weight`: BFQ takes `[1, 1000]`, the same
/// scale as blkio, so the value is kept.
pub fn blkio_weight_to_bfq_weight(w: u16) -> u64 {
    u64::from(w)
}

/// An OCI limit (`-1` or any negative = unlimited) as a v1 file value.
pub fn v1_limit(v: i64) -> String {
    if v < 0 {
        "-1".into()
    } else {
        v.to_string()
    }
}

/// An OCI limit (`-1` = unlimited) as a v2 file value (`max`).
pub fn v2_limit(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

/// A throttle rate: `0` removes the limit (v1 semantics), which is `max` on v2.
pub fn v2_rate(rate: u64) -> String {
    if rate == 0 {
        "max".into()
    } else {
        rate.to_string()
    }
}

/// What to do with memory+swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Swap {
    /// Leave it alone.
    Unset,
    /// Unlimited.
    Unlimited,
    /// This many bytes (v1: memory+swap; v2: swap alone).
    Bytes(i64),
}

fn normalise(v: Option<i64>) -> i64 {
    match v {
        None | Some(0) => 0,
        Some(x) if x < 0 => -1,
        Some(x) => x,
    }
}

/// Validate `memory.limit` / `memory.swap` (OCI: swap is memory+swap) and
/// return the v1 `memory.memsw.limit_in_bytes` action.
/// When memory is set to unlimited and swap is not given, swap becomes
/// unlimited too (otherwise the old memsw limit would keep memory capped).
pub fn swap_v1(limit: Option<i64>, swap: Option<i64>) -> Result<Swap, Error> {
    let (l, s) = (normalise(limit), normalise(swap));
    match (l, s) {
        (-1, 0) => Ok(Swap::Unlimited),
        (_, 0) => Ok(Swap::Unset),
        (_, -1) => Ok(Swap::Unlimited),
        (l, s) if l > 0 && s < l => Err(swap_below_limit(l, s)),
        (_, s) => Ok(Swap::Bytes(s)),
    }
}

fn swap_below_limit(l: i64, s: i64) -> Error {
    Error::InvalidValue {
        field: F_SWAP.into(),
        value: s.to_string(),
        reason: format!(
            "memory.swap is the memory+swap limit and must be >= memory.limit ({l}), or -1"
        ),
    }
}

/// Validate `memory.limit` / `memory.swap` and return the v2
/// `memory.swap.max` action: swap alone, i.e. `swap - limit`.
pub fn swap_v2(limit: Option<i64>, swap: Option<i64>) -> Result<Swap, Error> {
    let (l, s) = (normalise(limit), normalise(swap));
    match (l, s) {
        (-1, 0) => Ok(Swap::Unlimited),
        (_, 0) => Ok(Swap::Unset),
        (_, -1) => Ok(Swap::Unlimited),
        (0, s) | (-1, s) => Err(Error::InvalidValue {
            field: F_SWAP.into(),
            value: s.to_string(),
            reason: "on cgroup v2 the swap limit is memory.swap minus memory.limit, so a finite \
                     memory.swap needs a finite memory.limit"
                .into(),
        }),
        (l, s) if s < l => Err(swap_below_limit(l, s)),
        (l, s) => Ok(Swap::Bytes(s - l)),
    }
}

/// The v2 `cpu.max` line for quota/period (µs). `current` is the file's
/// present content, needed when only the period changes.
/// `None`: nothing to write.
pub fn cpu_max(quota: Option<i64>, period: Option<u64>, current: Option<&str>) -> Option<String> {
    let quota = quota.filter(|q| *q != 0);
    let period = period.filter(|p| *p != 0);
    match (quota, period) {
        (None, None) => None,
        (Some(q), None) => Some(v2_limit(q)),
        (q, Some(p)) => {
            let q = match q {
                Some(q) => v2_limit(q),
                None => current
                    .and_then(|c| c.split_whitespace().next())
                    .unwrap_or("max")
                    .to_string(),
            };
            Some(format!("{q} {p}"))
        }
    }
}

/// The hugetlb file for a page size (`2MB`, `1GB`): v1 `limit_in_bytes`,
/// v2 `max`. The size string is validated to be a plain size so that it
/// cannot name another file.
pub fn hugetlb_file(page_size: &str, v2: bool) -> Result<String, Error> {
    let ok = page_size.len() >= 3
        && page_size.ends_with('B')
        && page_size[..page_size.len() - 2]
            .chars()
            .all(|c| c.is_ascii_digit())
        && matches!(&page_size[page_size.len() - 2..], "KB" | "MB" | "GB");
    if !ok {
        return Err(Error::InvalidValue {
            field: "linux.resources.hugepageLimits[].pageSize".into(),
            value: page_size.into(),
            reason: "expected a size like \"2MB\" or \"1GB\"".into(),
        });
    }
    Ok(if v2 {
        format!("hugetlb.{page_size}.max")
    } else {
        format!("hugetlb.{page_size}.limit_in_bytes")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares() {
        assert_eq!(shares_to_weight(0), None);
        assert_eq!(shares_to_weight(2), Some(1));
        assert_eq!(shares_to_weight(1024), Some(39));
        assert_eq!(shares_to_weight(262_144), Some(10_000));
        assert_eq!(shares_to_weight(1), Some(1)); // clamped
        assert!(check_shares(1).is_err());
        assert!(check_shares(262_145).is_err());
        assert!(check_shares(512).is_ok());
    }

    #[test]
    fn blkio_weights() {
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
        assert_eq!(blkio_weight_to_io_weight(500), 1 + 490 * 9999 / 990);
        assert_eq!(blkio_weight_to_bfq_weight(500), 500);
        assert!(check_blkio_weight("f", 9).is_err());
        assert!(check_blkio_weight("f", 1001).is_err());
        assert!(check_blkio_weight("f", 10).is_ok());
    }

    #[test]
    fn limits() {
        assert_eq!(v1_limit(-1), "-1");
        assert_eq!(v1_limit(4096), "4096");
        assert_eq!(v2_limit(-1), "max");
        assert_eq!(v2_limit(4096), "4096");
        assert_eq!(v2_rate(0), "max");
        assert_eq!(v2_rate(10), "10");
    }

    #[test]
    fn swap_conversions() {
        const M: i64 = 1 << 20;
        assert_eq!(swap_v1(None, None).unwrap(), Swap::Unset);
        assert_eq!(swap_v1(Some(64 * M), None).unwrap(), Swap::Unset);
        assert_eq!(swap_v1(Some(-1), None).unwrap(), Swap::Unlimited);
        assert_eq!(swap_v1(Some(64 * M), Some(-1)).unwrap(), Swap::Unlimited);
        assert_eq!(
            swap_v1(Some(64 * M), Some(128 * M)).unwrap(),
            Swap::Bytes(128 * M)
        );
        assert!(swap_v1(Some(64 * M), Some(32 * M)).is_err());
        assert_eq!(swap_v1(None, Some(32 * M)).unwrap(), Swap::Bytes(32 * M));

        assert_eq!(swap_v2(None, None).unwrap(), Swap::Unset);
        assert_eq!(swap_v2(Some(-1), None).unwrap(), Swap::Unlimited);
        assert_eq!(swap_v2(Some(64 * M), Some(-1)).unwrap(), Swap::Unlimited);
        assert_eq!(swap_v2(Some(64 * M), Some(64 * M)).unwrap(), Swap::Bytes(0));
        assert_eq!(
            swap_v2(Some(64 * M), Some(96 * M)).unwrap(),
            Swap::Bytes(32 * M)
        );
        let e = swap_v2(Some(64 * M), Some(32 * M)).unwrap_err().to_string();
        assert!(e.contains("linux.resources.memory.swap"), "{e}");
        assert!(swap_v2(None, Some(32 * M)).is_err());
        assert!(swap_v2(Some(-1), Some(32 * M)).is_err());
    }

    #[test]
    fn cpu_max_line() {
        assert_eq!(cpu_max(None, None, None), None);
        assert_eq!(cpu_max(Some(0), Some(0), None), None);
        assert_eq!(cpu_max(Some(50_000), None, None).unwrap(), "50000");
        assert_eq!(cpu_max(Some(-1), None, None).unwrap(), "max");
        assert_eq!(
            cpu_max(Some(50_000), Some(100_000), None).unwrap(),
            "50000 100000"
        );
        assert_eq!(cpu_max(Some(-1), Some(20_000), None).unwrap(), "max 20000");
        assert_eq!(
            cpu_max(None, Some(20_000), Some("30000 100000\n")).unwrap(),
            "30000 20000"
        );
        assert_eq!(
            cpu_max(None, Some(20_000), Some("max 100000")).unwrap(),
            "max 20000"
        );
    }

    #[test]
    fn hugetlb_names() {
        assert_eq!(
            hugetlb_file("2MB", false).unwrap(),
            "hugetlb.2MB.limit_in_bytes"
        );
        assert_eq!(hugetlb_file("1GB", true).unwrap(), "hugetlb.1GB.max");
        for bad in ["", "MB", "2mb", "../x", "2MB/../../x", "2TB"] {
            assert!(hugetlb_file(bad, true).is_err(), "{bad}");
        }
    }
}
