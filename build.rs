//! Compiles `proto/*.proto` into Rust (tonic services and prost messages) for
//! `src/cluster/`, with the protoc shipped by the `protoc-bin-vendored` crate, so
//! building needs no system protoc.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // prost-build finds protoc through this variable (build scripts are single-threaded).
    std::env::set_var("PROTOC", protoc);
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos(
            &[
                "proto/raft.proto",
                "proto/cluster.proto",
                "proto/admin.proto",
            ],
            &["proto"],
        )?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
