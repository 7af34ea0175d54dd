//! The mount parser (`MountPlan::from_spec`): options, types, sources and destinations of
//! one mount entry. The input is split into a type, a source, a destination and a list of
//! options, so the fuzzer explores option strings directly instead of JSON syntax.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.split('\n');
    let typ = parts.next().unwrap_or_default();
    let source = parts.next().unwrap_or_default();
    let dest = parts.next().unwrap_or("/mnt");
    let options: Vec<&str> = parts.next().unwrap_or_default().split(',').collect();
    let value = serde_json::json!({
        "destination": dest,
        "type": typ,
        "source": source,
        "options": options,
    });
    let Ok(mount) = serde_json::from_value::<oci_spec::runtime::Mount>(value) else {
        return;
    };
    let _ = cella_core::mounts::MountPlan::from_spec(0, &mount, Path::new("/nonexistent-bundle"));
});
