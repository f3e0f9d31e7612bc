//! Tidy checks run as tests, so `cargo test` keeps the codebase's conventions: every Rust file says
//! what it is for in a `//!` header, and every crate is named in ARCHITECTURE.md's code map.

use std::fs;
use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("integration-tests sits in the workspace root")
        .to_path_buf()
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("a readable source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            if path.file_name().is_some_and(|name| name != "target") {
                rust_files(&path, found);
            }
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn every_rust_file_starts_with_a_module_doc_comment() {
    let root = workspace_root();
    let mut files = Vec::new();
    rust_files(&root.join("crates"), &mut files);
    rust_files(&root.join("integration-tests"), &mut files);
    assert!(files.len() > 50, "found only {} Rust files", files.len());
    let missing: Vec<String> = files
        .iter()
        .filter(|path| {
            let text = fs::read_to_string(path).expect("a readable Rust file");
            !text.trim_start().starts_with("//!")
        })
        .map(|path| {
            path.strip_prefix(&root)
                .unwrap_or(path)
                .display()
                .to_string()
        })
        .collect();
    assert!(
        missing.is_empty(),
        "these files do not start with a `//!` comment saying what they are for: {missing:?}"
    );
}

#[test]
fn every_crate_is_named_in_the_architecture_code_map() {
    let root = workspace_root();
    let architecture =
        fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md exists");
    let mut crates: Vec<String> = fs::read_dir(root.join("crates"))
        .expect("a crates directory")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.join("Cargo.toml").is_file())
        .map(|path| {
            format!(
                "crates/{}",
                path.file_name().expect("a name").to_string_lossy()
            )
        })
        .collect();
    crates.push("integration-tests".to_owned());
    let unnamed: Vec<&String> = crates
        .iter()
        .filter(|name| !architecture.contains(&format!("### `{name}`")))
        .collect();
    assert!(
        unnamed.is_empty(),
        "ARCHITECTURE.md has no code-map heading for {unnamed:?}"
    );
}
