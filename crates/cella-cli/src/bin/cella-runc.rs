//! The runc-compatible OCI runtime that engines call.
fn main() {
    std::process::exit(cella_cli::runc::main());
}
