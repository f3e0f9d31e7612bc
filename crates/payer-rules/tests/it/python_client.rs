//! A client in another language, written from the .proto alone: generates the Python message
//! module from `proto/payer_rules.proto` with grpcio-tools' protoc into a temporary directory, then
//! runs `docs/examples/payer_rules_client.py` (nats-py + protobuf) against the real service and
//! checks what it printed. Needs `python3 -m pip install nats-py protobuf grpcio-tools`.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use tokio::process::Command;

use crate::helpers::{RunningService, nats_url};

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

async fn run(command: &mut Command) -> anyhow::Result<Output> {
    let output = tokio::time::timeout(Duration::from_secs(60), command.output()).await??;
    anyhow::ensure!(
        output.status.success(),
        "{command:?} failed with {}:\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(output)
}

/// A temporary directory removed on drop, so a failing test cleans up too.
struct TempDir(PathBuf);

impl TempDir {
    fn create() -> anyhow::Result<TempDir> {
        let path = std::env::temp_dir().join(format!("payer-rules-py-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&path)?;
        Ok(TempDir(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn the_python_example_talks_to_the_service_from_the_proto_alone() -> anyhow::Result<()> {
    let root = workspace_root();
    let generated = TempDir::create()?;
    run(Command::new(python())
        .args(["-m", "grpc_tools.protoc", "-I"])
        .arg(root.join("proto"))
        .arg(format!("--python_out={}", generated.path().display()))
        .arg(root.join("proto/payer_rules.proto")))
    .await?;

    let running = RunningService::start().await?;
    let output = run(Command::new(python())
        .arg(root.join("docs/examples/payer_rules_client.py"))
        .args([
            "--nats-url",
            &nats_url(),
            "--subject-prefix",
            &running.prefix,
        ])
        .env("PYTHONPATH", generated.path()))
    .await;
    running.stop().await?;
    let output = output?;

    let answers: Vec<Value> = String::from_utf8(output.stdout)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let answer = |call: &str| {
        answers
            .iter()
            .find(|answer| answer["call"] == call)
            .cloned()
            .unwrap_or_else(|| panic!("the example printed no {call:?} answer: {answers:?}"))
    };

    let without_xs = answer("decide");
    assert_eq!(without_xs["outcome"], "rejected");
    assert_eq!(
        without_xs["reason"],
        "REJECTION_REASON_NCCI_MODIFIER_REQUIRED"
    );
    assert_eq!(without_xs["rules_version"], 2);

    let with_xs = answer("decide_with_xs");
    assert_eq!(with_xs["outcome"], "accepted");
    assert_eq!(with_xs["expected_allowed_cents"], 2 * 3073);

    let choice = answer("choose_code");
    assert_eq!(choice["code"], "97140");
    assert_eq!(choice["expected_allowed_cents"], 7700);

    let unknown = answer("unknown_payer");
    assert_eq!(unknown["status"], "error");
    assert_eq!(unknown["http_status"], 404);
    assert_eq!(unknown["code"], "ERROR_CODE_UNKNOWN_PAYER");
    assert_eq!(unknown["field"], "payer");
    Ok(())
}
