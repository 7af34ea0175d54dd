//! The friendly command: `cella run --rootfs DIR --memory 512M -- /bin/sh`.
fn main() {
    std::process::exit(cella_cli::friendly::main());
}
