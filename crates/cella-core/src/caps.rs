//! Capabilities: the five sets of process.capabilities applied exactly, nothing more.

use std::collections::HashSet;

use caps::{CapSet, Capability as Cap, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

use crate::error::{Error, Result};

/// The five sets, as the `caps` crate understands them.
#[derive(Debug, Clone, Default)]
pub struct CapSets {
    pub bounding: CapsHashSet,
    pub effective: CapsHashSet,
    pub permitted: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub ambient: CapsHashSet,
}

/// The capabilities this kernel knows (probed once: each probe is a prctl per capability).
fn supported() -> &'static HashSet<Cap> {
    static SUPPORTED: std::sync::OnceLock<HashSet<Cap>> = std::sync::OnceLock::new();
    SUPPORTED.get_or_init(caps::runtime::thread_all_supported)
}

fn convert(field: &str, set: &Option<Capabilities>) -> Result<CapsHashSet> {
    let supported = supported();
    let mut out = CapsHashSet::new();
    for c in set.iter().flatten() {
        let name = serde_json::to_value(c)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let cap: Cap = name
            .parse()
            .map_err(|_| Error::spec(field, format!("unknown capability {name:?}")))?;
        // A capability newer than this kernel cannot be granted; leaving it out is what the
        // kernel would do anyway.
        if supported.contains(&cap) {
            out.insert(cap);
        }
    }
    Ok(out)
}

impl CapSets {
    /// Convert the spec's sets (absent sets are empty).
    pub fn from_spec(c: Option<&LinuxCapabilities>) -> Result<CapSets> {
        let Some(c) = c else {
            return Ok(CapSets::default());
        };
        Ok(CapSets {
            bounding: convert("process.capabilities.bounding", c.bounding())?,
            effective: convert("process.capabilities.effective", c.effective())?,
            permitted: convert("process.capabilities.permitted", c.permitted())?,
            inheritable: convert("process.capabilities.inheritable", c.inheritable())?,
            ambient: convert("process.capabilities.ambient", c.ambient())?,
        })
    }

    /// Drop from the bounding set everything not listed. Needs CAP_SETPCAP, so it runs
    /// before the switch to the container user.
    pub fn apply_bounding(&self) -> Result<()> {
        for &cap in supported() {
            if !self.bounding.contains(&cap) {
                caps::drop(None, CapSet::Bounding, cap).map_err(|e| {
                    Error::Init(format!("dropping {cap} from the bounding set: {e}"))
                })?;
            }
        }
        Ok(())
    }

    /// Set the permitted, inheritable, effective and ambient sets (after the user switch,
    /// with PR_SET_KEEPCAPS having kept the permitted set). The first three go in one
    /// capset(2) call, so the kernel checks them together against the old sets.
    pub fn apply_rest(&self) -> Result<()> {
        let mask = |set: &CapsHashSet| -> u64 { set.iter().fold(0u64, |m, c| m | c.bitmask()) };
        let (e, p, i) = (
            mask(&self.effective),
            mask(&self.permitted),
            mask(&self.inheritable),
        );
        #[repr(C)]
        struct Header {
            version: u32,
            pid: i32,
        }
        #[repr(C)]
        #[derive(Clone, Copy)]
        struct Data {
            effective: u32,
            permitted: u32,
            inheritable: u32,
        }
        let hdr = Header {
            version: 0x2008_0522,
            pid: 0,
        };
        let data = [
            Data {
                effective: e as u32,
                permitted: p as u32,
                inheritable: i as u32,
            },
            Data {
                effective: (e >> 32) as u32,
                permitted: (p >> 32) as u32,
                inheritable: (i >> 32) as u32,
            },
        ];
        // SAFETY: capset with a v3 header and the two-element data array it requires; both live
        // across the call.
        if unsafe { libc::syscall(libc::SYS_capset, &hdr as *const Header, data.as_ptr()) } != 0 {
            return Err(Error::Init(format!(
                "setting capabilities (effective {:?}, permitted {:?}, inheritable {:?}): {}",
                self.effective,
                self.permitted,
                self.inheritable,
                std::io::Error::last_os_error()
            )));
        }
        caps::clear(None, CapSet::Ambient)
            .map_err(|e| Error::Init(format!("clearing the ambient capability set: {e}")))?;
        // The kernel only lets a capability into the ambient set when it is both permitted
        // and inheritable. runc's own default spec lists ambient capabilities without
        // inheritable ones; like runc, raise only those the kernel can accept.
        for cap in self
            .ambient
            .iter()
            .filter(|c| self.permitted.contains(c) && self.inheritable.contains(c))
        {
            caps::raise(None, CapSet::Ambient, *cap).map_err(|e| {
                Error::Init(format!("raising {cap} in the ambient set (it must also be permitted and inheritable): {e}"))
            })?;
        }
        Ok(())
    }
}
