//! PostgreSQL restarted under a running projector: it waits, resumes from its checkpoint, and ends
//! with the same tables as a clean run. The test runs its own PostgreSQL (initdb + pg_ctl on a free
//! port in a temporary directory), never the machine's shared one.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use claimledger_projector::checksum::read_model_checksums;
use claimledger_projector::rebuild::rebuild;
use claimledger_projector::{LIVE_SCHEMA, Projector};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::helpers::test_config;
use crate::workload::Workload;

const POSTGRES_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A throwaway PostgreSQL server; stopped and deleted on drop.
struct PrivatePostgres {
    dir: PathBuf,
    port: u16,
    run_as_postgres: bool,
}

impl PrivatePostgres {
    async fn start() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("claimledger-pg-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        // initdb refuses to run as root: run the server as the postgres user then.
        let uid = Command::new("id").arg("-u").output().await?;
        let run_as_postgres = String::from_utf8_lossy(&uid.stdout).trim() == "0";
        if run_as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .await?;
            anyhow::ensure!(status.success(), "chown of the temporary directory failed");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let server = Self {
            dir,
            port,
            run_as_postgres,
        };
        server
            .tool(
                "initdb",
                &[
                    "-D",
                    &server.data_dir(),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--no-sync",
                ],
            )
            .await?;
        server.start_server().await?;
        Ok(server)
    }

    fn data_dir(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    async fn tool(&self, name: &str, args: &[&str]) -> anyhow::Result<()> {
        let program = Path::new(POSTGRES_BIN).join(name);
        let mut command = if self.run_as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        let output = command
            .args(args)
            .stdin(Stdio::null())
            .output()
            .await
            .with_context(|| format!("running {name}"))?;
        anyhow::ensure!(
            output.status.success(),
            "{name} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    }

    async fn start_server(&self) -> anyhow::Result<()> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log").display().to_string();
        self.tool(
            "pg_ctl",
            &[
                "-D",
                &self.data_dir(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "start",
            ],
        )
        .await
    }

    async fn stop_server(&self) -> anyhow::Result<()> {
        self.tool(
            "pg_ctl",
            &["-D", &self.data_dir(), "-m", "fast", "-w", "stop"],
        )
        .await
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let program = Path::new(POSTGRES_BIN).join("pg_ctl");
        let data = self.data_dir();
        let mut command = if self.run_as_postgres {
            let mut command = std::process::Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            std::process::Command::new(program)
        };
        // Best effort: the server may already be stopped.
        let _ = command
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_mid_run_the_projector_waits_and_resumes() -> anyhow::Result<()> {
    let env = integration_tests::TestEnv::start().await?;
    let log = env.event_log().await?;
    let postgres = PrivatePostgres::start().await?;
    let mut admin = PgConnection::connect(&postgres.url("postgres")).await?;
    sqlx::query("CREATE DATABASE claimledger")
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    let pool: PgPool = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(2))
        .connect_with(PgConnectOptions::from_str(&postgres.url("claimledger"))?)
        .await?;
    sqlx::migrate!("../../migrations").run(&pool).await?;
    let workload = Workload::new();
    workload.seed_directory(&pool).await?;
    workload.publish_rules(&log).await?;
    workload.record_directory(&log).await?;
    workload.append_visits(&log, 0..150, 16).await?;

    let projector = Projector::build(log.clone(), pool.clone(), test_config())?;
    let metrics = projector.metrics();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(projector.run(shutdown.clone()));
    let checkpoint = || async {
        anyhow::Ok(
            sqlx::query_scalar::<_, i64>(
                "SELECT last_sequence FROM projector_checkpoints WHERE projection = $1",
            )
            .bind(LIVE_SCHEMA)
            .fetch_optional(&pool)
            .await?
            .unwrap_or(0),
        )
    };
    let started = async {
        while checkpoint().await? == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(Duration::from_secs(60), started).await??;

    postgres.stop_server().await?;
    // New positions arrive while the database is down, so the projector must try to write.
    workload.append_visits(&log, 150..250, 16).await?;
    let noticed = async {
        while metrics.snapshot().last_error.is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), noticed)
        .await
        .context("the projector never noticed that PostgreSQL was down")?;
    assert!(!metrics.snapshot().healthy);
    assert!(!running.is_finished(), "the projector must wait, not exit");

    postgres.start_server().await?;
    let last = i64::try_from(log.last_sequence().await?)?;
    let resumed = async {
        loop {
            // Until the pool has reconnected, the check itself may fail: keep asking.
            if checkpoint().await.is_ok_and(|sequence| sequence >= last) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(90), resumed)
        .await
        .context("the projector did not resume after PostgreSQL came back")?;
    shutdown.cancel();
    running.await??;
    assert!(metrics.snapshot().healthy);

    let survived = read_model_checksums(&pool, LIVE_SCHEMA, None).await?;
    rebuild(&log, &pool, &test_config(), None, &mut |_| {}).await?;
    assert_eq!(
        read_model_checksums(&pool, LIVE_SCHEMA, None).await?,
        survived
    );
    pool.close().await;
    drop(postgres);
    env.cleanup().await
}
