//! config.json parsing and validation: any input must give a Config or an error, never a
//! panic, a hang or an abort. The bundle is a private temp dir with an empty `rootfs`, so
//! validation that looks at the bundle has something real to look at.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

fn bundle() -> &'static PathBuf {
    static B: OnceLock<PathBuf> = OnceLock::new();
    B.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("cella-fuzz-bundle-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("rootfs")).expect("fuzz bundle");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let b = bundle();
    if let Ok(spec) = cella_core::spec::parse(text, &b.join("config.json")) {
        let _ = cella_core::spec::validate(spec, b.clone());
    }
});
