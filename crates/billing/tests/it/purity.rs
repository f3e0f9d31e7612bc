//! Build checks that keep the billing core pure: its normal dependencies are only chrono and
//! thiserror (no tokio, sqlx, async-nats, axum, serde, tracing, anyhow), and its sources never read
//! the clock or derive serde traits.

use std::fs;
use std::path::Path;

const ALLOWED_DEPENDENCIES: [&str; 2] = ["chrono", "thiserror"];

/// The dependency names of one `[section]` of a Cargo manifest, read line by line (the manifest
/// is ours and uses one `name = ...` line per dependency).
fn dependency_names(manifest: &str, section: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut inside = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == section;
            continue;
        }
        if inside && !line.is_empty() && !line.starts_with('#') {
            let name = line.split(['=', '.']).next().unwrap_or_default().trim();
            names.push(name.to_owned());
        }
    }
    names
}

#[test]
fn given_the_manifest_when_normal_dependencies_are_listed_then_only_chrono_and_thiserror_appear() {
    let manifest = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .expect("read Cargo.toml");
    let names = dependency_names(&manifest, "[dependencies]");
    assert_eq!(
        names, ALLOWED_DEPENDENCIES,
        "the billing core must stay free of I/O dependencies"
    );
    for section in ["[target", "[build-dependencies]"] {
        assert!(
            !manifest.contains(section),
            "unexpected {section} section in the billing manifest"
        );
    }
}

#[test]
fn given_the_sources_when_scanned_then_no_clock_reads_and_no_serde_derives_appear() {
    let source_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let forbidden = [
        "Utc::now",
        "Local::now",
        "SystemTime::now",
        "Instant::now",
        "Serialize",
        "Deserialize",
        "tokio",
        "std::fs",
        "std::net",
    ];
    let mut scanned = 0;
    // Module folders (`claim/`) are scanned too.
    let mut folders = vec![source_dir];
    let mut files = Vec::new();
    while let Some(folder) = folders.pop() {
        for entry in fs::read_dir(&folder).expect("read src") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                folders.push(path);
            } else {
                files.push(path);
            }
        }
    }
    for path in files {
        let source = fs::read_to_string(&path).expect("read source");
        scanned += 1;
        for word in forbidden {
            assert!(!source.contains(word), "{} mentions {word}", path.display());
        }
    }
    assert!(
        scanned >= 8,
        "expected the crate's modules under src/, found {scanned} files"
    );
}

#[test]
fn given_a_manifest_with_tokio_when_parsed_then_the_check_would_catch_it() {
    let manifest = "[package]\nname = \"x\"\n\n[dependencies]\nchrono = { workspace = true }\ntokio.workspace = true\n\n[dev-dependencies]\nproptest = \"1\"\n";
    assert_eq!(
        dependency_names(manifest, "[dependencies]"),
        ["chrono", "tokio"]
    );
    assert_eq!(
        dependency_names(manifest, "[dev-dependencies]"),
        ["proptest"]
    );
}
