//! `kill -9` of a real `claimledger projector run` process at random points, many times: the read
//! models end up identical to a clean run's.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use rand::Rng as _;
use tokio::process::{Child, Command};
use tokio::sync::OnceCell;

use crate::helpers::{TestApp, spawn_app};
use crate::workload::rules_dir;

/// Builds the `claimledger` binary once per test run (it belongs to another package, so cargo does
/// not build it for this test binary) and returns its path.
async fn claimledger_binary() -> anyhow::Result<PathBuf> {
    static BINARY: OnceCell<PathBuf> = OnceCell::const_new();
    BINARY
        .get_or_try_init(|| async {
            // This test binary lives in <target>/<profile>/deps/.
            let exe = std::env::current_exe()?;
            let profile_dir = exe
                .parent()
                .and_then(|deps| deps.parent())
                .context("locating the target directory")?;
            let target_dir = profile_dir
                .parent()
                .context("locating the target directory")?;
            let status = Command::new(env!("CARGO"))
                .args([
                    "build",
                    "--quiet",
                    "-p",
                    "claimledger",
                    "--bin",
                    "claimledger",
                ])
                .arg("--target-dir")
                .arg(target_dir)
                .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
                .status()
                .await
                .context("running cargo build")?;
            anyhow::ensure!(status.success(), "building the claimledger binary failed");
            Ok(target_dir.join("debug").join("claimledger"))
        })
        .await
        .cloned()
}

/// The test database's URL: the harness's server with the test's database name.
fn database_url(app: &TestApp) -> anyhow::Result<String> {
    let server = &app.env.endpoints().database_url;
    let (base, _) = server
        .rsplit_once('/')
        .context("DATABASE_URL has no database name")?;
    Ok(format!("{base}/{}", app.env.database_name()))
}

async fn spawn_projector(app: &TestApp, binary: &PathBuf) -> anyhow::Result<Child> {
    let config = app.env.log_config();
    Command::new(binary)
        .args([
            "projector",
            "run",
            "--batch-commits",
            "40",
            "--http-addr",
            "127.0.0.1:0",
        ])
        .env("NATS_URL", &app.env.endpoints().nats_url)
        .env("DATABASE_URL", database_url(app)?)
        .env("CLAIMLEDGER_LOG_STREAM", &config.stream_name)
        .env("CLAIMLEDGER_LOG_SUBJECT_PREFIX", &config.subject_prefix)
        .env("CLAIMLEDGER_RULES_DIR", rules_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting claimledger projector run")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_points_then_restart_gives_the_clean_run_checksums() -> anyhow::Result<()>
{
    let binary = claimledger_binary().await?;
    let app = spawn_app().await?;
    app.workload.append_visits(&app.log, 0..1000, 32).await?;
    let last = app.log.last_sequence().await?;
    let mut rng = rand::rng();
    let mut kills = 0;
    let mut progress = Vec::new();
    while kills < 12 {
        let mut child = spawn_projector(&app, &binary).await?;
        if kills == 0 {
            // The first kill lands right after the first committed batch, so at least one kill is
            // in the middle of the log however fast the projector runs through it.
            let first_batch = async {
                while app.live_checkpoint().await? == 0 {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                anyhow::Ok(())
            };
            tokio::time::timeout(Duration::from_secs(60), first_batch).await??;
        } else {
            // The other kill points are random: anywhere from start-up to the middle of a batch.
            let lifetime = Duration::from_millis(rng.random_range(150..900));
            tokio::time::sleep(lifetime).await;
        }
        child.start_kill().context("sending SIGKILL")?;
        child.wait().await?;
        kills += 1;
        progress.push(app.live_checkpoint().await?);
        // Append while the projector is down too, so restarts meet new positions.
        if kills % 4 == 0 {
            app.workload
                .append_visits(&app.log, 1000 + kills * 10..1010 + kills * 10, 8)
                .await?;
        }
    }
    assert!(
        progress.windows(2).all(|pair| pair[0] <= pair[1]),
        "the checkpoint never moves back: {progress:?}"
    );
    assert!(
        progress
            .iter()
            .any(|checkpoint| *checkpoint > 0 && *checkpoint < last),
        "at least one kill landed in the middle of the log: {progress:?}"
    );

    // A final run to the end of the log.
    let last = app.log.last_sequence().await?;
    let mut child = spawn_projector(&app, &binary).await?;
    let caught_up = async {
        while app.live_checkpoint().await? < last {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(Duration::from_secs(120), caught_up).await??;
    child.start_kill()?;
    child.wait().await?;

    let survived = app.checksums().await?;
    let clean = app.rebuild_all().await?;
    assert_eq!(survived, clean);
    app.env.cleanup().await
}
