//! Compiles `proto/payer_rules.proto` into Rust types with protox (a pure-Rust protobuf compiler),
//! so building the crate never needs a system `protoc`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time, not with `env!`: a build script binary can be reused for a checkout at
    // another path, and the proto must be found where the crate is now.
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_dir = manifest_dir.join("../../proto");
    let proto_file = proto_dir.join("payer_rules.proto");
    println!("cargo:rerun-if-changed={}", proto_file.display());
    let descriptors = protox::compile([&proto_file], [&proto_dir])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
