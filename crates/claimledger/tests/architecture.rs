//! ARCHITECTURE.md's dependency rules, enforced: the workspace's manifests (read through
//! `cargo metadata`) and the pure crates' sources are checked against them, so a crate that gains a
//! dependency its rules forbid fails here, not in review.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The crates that do no I/O, no async and read no clock: every input is passed in.
const PURE: [&str; 7] = [
    "claimledger-events",
    "claimledger-derive",
    "claimledger-billing",
    "claimledger-sessions",
    "claimledger-claims",
    "claimledger-payer-rules",
    "claimledger-x12",
];

/// Crates a pure crate may not depend on (unless the dependency is optional, behind a feature
/// such as payer-rules' `service`).
const IO_CRATES: [&str; 9] = [
    "tokio",
    "sqlx",
    "async-nats",
    "axum",
    "hyper",
    "reqwest",
    "tower",
    "tower-http",
    "tracing-subscriber",
];

/// The services: none depends on another, but for the one edge below.
const SERVICES: [&str; 4] = [
    "claimledger-sessions-api",
    "claimledger-projector",
    "claimledger-reporting",
    "claimledger-replay",
];

/// Which crates may use each I/O crate directly (normal, non-optional dependencies).
const IO_USERS: [(&str, &[&str]); 3] = [
    (
        "async-nats",
        &[
            "claimledger-log",
            "claimledger-sessions-api",
            "claimledger",
            "integration-tests",
        ],
    ),
    (
        "sqlx",
        &[
            "claimledger-http-edge",
            "claimledger-sessions-api",
            "claimledger-projector",
            "claimledger-reporting",
            "claimledger",
            "integration-tests",
        ],
    ),
    (
        "axum",
        &[
            "claimledger-http-edge",
            "claimledger-sessions-api",
            "claimledger-projector",
            "claimledger-reporting",
            "claimledger",
        ],
    ),
];

/// A declared dependency: its name, whether it is a normal one, whether it is optional.
#[derive(Debug, Clone)]
struct Dependency {
    name: String,
    normal: bool,
    optional: bool,
}

fn workspace() -> BTreeMap<String, (PathBuf, Vec<Dependency>)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata is JSON");
    metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|package| {
            let name = package["name"].as_str().expect("a name").to_owned();
            let manifest = PathBuf::from(package["manifest_path"].as_str().expect("a manifest"));
            let dependencies = package["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .map(|dependency| Dependency {
                    name: dependency["name"].as_str().expect("a name").to_owned(),
                    normal: dependency["kind"].is_null(),
                    optional: dependency["optional"].as_bool().unwrap_or(false),
                })
                .collect();
            (name, (manifest, dependencies))
        })
        .collect()
}

fn required_normal(dependencies: &[Dependency]) -> BTreeSet<&str> {
    dependencies
        .iter()
        .filter(|dependency| dependency.normal && !dependency.optional)
        .map(|dependency| dependency.name.as_str())
        .collect()
}

#[test]
fn pure_crates_depend_on_no_io_crate() {
    let workspace = workspace();
    let mut broken = Vec::new();
    for name in PURE {
        let (_, dependencies) = workspace
            .get(name)
            .expect("the pure crate is in the workspace");
        for dependency in required_normal(dependencies) {
            if IO_CRATES.contains(&dependency) {
                broken.push(format!("{name} depends on {dependency}"));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn no_service_crate_depends_on_another() {
    let workspace = workspace();
    let mut broken = Vec::new();
    for name in SERVICES {
        let (_, dependencies) = workspace
            .get(name)
            .expect("the service is in the workspace");
        for dependency in required_normal(dependencies) {
            if SERVICES.contains(&dependency) {
                broken.push(format!("{name} depends on the service {dependency}"));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// `replay` derives claims with the projector's own derivation (`claimledger-derive`), so that live
/// projection, rebuild and replay cannot disagree, but it needs no database and serves no HTTP:
/// nothing it links, through any crate of the workspace, uses sqlx or axum.
#[test]
fn replay_links_no_database_or_http_crate() {
    let workspace = workspace();
    let mut reached = BTreeSet::from(["claimledger-replay"]);
    let mut to_visit = vec!["claimledger-replay"];
    let mut broken = Vec::new();
    while let Some(name) = to_visit.pop() {
        let Some((_, dependencies)) = workspace.get(name) else {
            continue;
        };
        for dependency in required_normal(dependencies) {
            if ["sqlx", "axum"].contains(&dependency) {
                broken.push(format!(
                    "claimledger-replay links {dependency} through {name}"
                ));
            }
            if let Some((found, _)) = workspace.get_key_value(dependency)
                && reached.insert(found.as_str())
            {
                to_visit.push(found.as_str());
            }
        }
    }
    assert!(
        reached.contains("claimledger-derive"),
        "replay derives with claimledger-derive"
    );
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn only_the_named_crates_use_nats_sqlx_and_axum_directly() {
    let workspace = workspace();
    let mut broken = Vec::new();
    for (name, (_, dependencies)) in &workspace {
        let used = required_normal(dependencies);
        for (io, users) in IO_USERS {
            if used.contains(io) && !users.contains(&name.as_str()) {
                broken.push(format!("{name} uses {io}"));
            }
        }
        if used.contains("anyhow") && !["claimledger", "integration-tests"].contains(&name.as_str())
        {
            broken.push(format!("{name} uses anyhow outside the binary and tests"));
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// The source files of a pure crate that its rules cover: all of `src`, but payer-rules' loader
/// (it reads the rules directory) and its `service`-feature modules.
fn pure_sources(crate_dir: &Path, name: &str) -> Vec<PathBuf> {
    let excluded: &[&str] = if name == "claimledger-payer-rules" {
        &["load.rs", "files.rs", "service.rs", "publish.rs"]
    } else {
        &[]
    };
    let mut files = Vec::new();
    let mut folders = vec![crate_dir.join("src")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("a source folder") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|extension| extension == "rs")
                && !path
                    .file_name()
                    .and_then(|file| file.to_str())
                    .is_some_and(|file| excluded.contains(&file))
            {
                files.push(path);
            }
        }
    }
    files
}

#[test]
fn pure_crates_read_no_clock_file_network_or_environment() {
    const FORBIDDEN: [&str; 10] = [
        "std::fs",
        "std::net",
        "std::process",
        "std::env::var",
        "Utc::now",
        "SystemTime::now",
        "Instant::now",
        "Local::now",
        "tokio::",
        "thread::sleep",
    ];
    let workspace = workspace();
    let mut broken = Vec::new();
    for name in PURE {
        let (manifest, _) = workspace
            .get(name)
            .expect("the pure crate is in the workspace");
        let crate_dir = manifest.parent().expect("the crate's folder");
        for file in pure_sources(crate_dir, name) {
            let text = std::fs::read_to_string(&file).expect("a readable source");
            for (number, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or_default();
                for token in FORBIDDEN {
                    if code.contains(token) {
                        broken.push(format!("{}:{}: {token}", file.display(), number + 1));
                    }
                }
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// The modules of a crate (`src/name.rs` with its folder `src/name/`) and, for each, the crate's
/// other modules its code names (`crate::other`), comments left out.
fn module_graph(crate_dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let src = crate_dir.join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(&src).expect("a source folder") {
        let path = entry.expect("an entry").path();
        let Some(stem) = path.file_stem().and_then(|stem| stem.to_str()) else {
            continue;
        };
        if stem == "lib" || stem == "main" {
            continue;
        }
        if path.is_dir() {
            for inner in std::fs::read_dir(&path).expect("a module folder") {
                files.push((stem.to_owned(), inner.expect("an entry").path()));
            }
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            files.push((stem.to_owned(), path));
        }
    }
    for (module, _) in &files {
        graph.entry(module.clone()).or_default();
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for (module, file) in files {
        let text = std::fs::read_to_string(&file).expect("a readable source");
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or_default();
            for (index, _) in code.match_indices("crate::") {
                let named: String = code[index + "crate::".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if named != module && modules.contains(&named) {
                    graph.entry(module.clone()).or_default().insert(named);
                }
            }
        }
    }
    graph
}

/// A cycle among `graph`'s modules, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        module: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|seen| seen == module) {
            let mut cycle = path[start..].to_vec();
            cycle.push(module.to_owned());
            return Some(cycle);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_owned());
        for next in graph.get(module).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(module.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|module| visit(module, graph, &mut Vec::new(), &mut done))
}

fn crate_dir(name: &str) -> PathBuf {
    let workspace = workspace();
    let (manifest, _) = workspace.get(name).expect("the crate is in the workspace");
    manifest.parent().expect("the crate's folder").to_owned()
}

/// The derivation's modules depend on each other one way, so each can be read from the modules
/// it names alone.
#[test]
fn the_derivation_has_no_module_cycle() {
    let graph = module_graph(&crate_dir("claimledger-derive"));
    assert!(graph.contains_key("batch"), "the module graph was read");
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "claimledger-derive's modules form a cycle: {}",
            cycle.join(" → ")
        );
    }
}

/// The projector's layers run one way: its pipeline uses its store, and its store (every SQL
/// statement) never calls back into the pipeline; neither holds derivation logic of its own, which
/// is `claimledger-derive`'s.
#[test]
fn the_projector_store_does_not_use_its_pipeline() {
    let graph = module_graph(&crate_dir("claimledger-projector"));
    let store = graph.get("store").expect("the projector has a store");
    assert!(
        !store.contains("pipeline") && !store.contains("rebuild"),
        "the store names {store:?}"
    );
    assert!(
        graph
            .get("pipeline")
            .is_some_and(|uses| uses.contains("store")),
        "the pipeline writes through the store"
    );
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "claimledger-projector's modules form a cycle: {}",
            cycle.join(" → ")
        );
    }
}

/// The code lines of every `.rs` file under `folder` (comments left out), with their file and line.
fn code_lines(folder: &Path) -> Vec<(String, usize, String)> {
    let mut lines = Vec::new();
    let mut folders = vec![folder.to_owned()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("a source folder") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                let text = std::fs::read_to_string(&path).expect("a readable source");
                for (number, line) in text.lines().enumerate() {
                    let code = line.split("//").next().unwrap_or_default().to_owned();
                    lines.push((path.display().to_string(), number + 1, code));
                }
            }
        }
    }
    lines
}

/// The sessions API's handlers parse, call the application layer and render: none reads the log
/// or runs SQL itself (a store type may be named, a store function not called), the application
/// layer knows nothing of HTTP, and every SQL statement is in the storage layer.
#[test]
fn the_sessions_api_handlers_leave_the_log_and_sql_to_the_application_layer() {
    let src = crate_dir("claimledger-sessions-api").join("src");
    let mut broken = Vec::new();
    for (file, number, code) in code_lines(&src.join("http")) {
        let calls_store = code.match_indices("store::").any(|(index, _)| {
            code[index + "store::".len()..]
                .chars()
                .next()
                .is_some_and(|next| next.is_ascii_lowercase())
        });
        for (found, what) in [
            (calls_store, "calls the store"),
            (code.contains("sqlx::"), "uses sqlx"),
            (code.contains(".log."), "reads the log"),
            (code.contains("projection::"), "projects"),
        ] {
            if found {
                broken.push(format!("{file}:{number}: {what}"));
            }
        }
    }
    // The storage layer: the statements of the commands (`store`), of the reference projection
    // and of the idempotency records; nothing else runs SQL.
    for (file, number, code) in code_lines(&src) {
        let storage = ["/src/store.rs", "/src/projection.rs", "/src/idempotency.rs"]
            .iter()
            .any(|module| file.ends_with(module));
        if code.contains("sqlx::query") && !storage {
            broken.push(format!("{file}:{number}: SQL outside the storage layer"));
        }
    }
    for (file, number, code) in code_lines(&src.join("app")) {
        if code.contains("axum") || code.contains("crate::http") || code.contains("crate::dto") {
            broken.push(format!("{file}:{number}: the application layer names HTTP"));
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}
