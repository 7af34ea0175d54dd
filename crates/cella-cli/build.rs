//! Relink the binaries when the hot-function layout list changes: `cargo build-static` hands
//! `.cargo/hot-functions.txt` to the linker (see .cargo/static.toml), and cargo does not track
//! files that only the linker reads.
fn main() {
    println!("cargo:rerun-if-changed=../../.cargo/hot-functions.txt");
    println!("cargo:rerun-if-changed=build.rs");
}
