//! Test harness: every test gets its own JetStream stream (unique stream name and subject prefix) and
//! its own freshly created and migrated PostgreSQL database, and removes both afterwards.
//!
//! Services are found in this order: `NATS_URL` / `DATABASE_URL` (defaulting to the loopback
//! services `deploy/local-stack.sh` starts); if one of them does not answer and a Docker engine is
//! available (`docker info` succeeds), a testcontainers container replaces it for the whole test
//! binary. Without either, `TestEnv::start` fails and says what is missing. Streams get
//! `CLAIMLEDGER_LOG_REPLICAS` replicas (default 1), as the services' streams do.

pub mod bench_log;
pub mod claim_workload;
pub mod cluster;
pub mod commits;
pub mod read_model_fixture;
mod services;
pub mod workload;

use std::str::FromStr;

use anyhow::Context as _;
use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::context::DeleteStreamErrorKind;
use claimledger_log::{EventLog, LogConfig};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
use uuid::Uuid;

pub use services::Endpoints;

/// One test's isolated slice of the services. Call [`TestEnv::cleanup`] at the end of the test; if the
/// test panics first, `Drop` removes the stream and database instead.
#[derive(Debug)]
pub struct TestEnv {
    /// A client connected to the test's NATS server.
    pub nats: async_nats::Client,
    /// A pool on the test's own database, already migrated.
    pub db: PgPool,
    endpoints: Endpoints,
    log_config: LogConfig,
    database_name: String,
    cleaned_up: bool,
}

impl TestEnv {
    /// Resolves the services, creates the test's database (migrated) and picks its stream names.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with_pool(4).await
    }

    /// [`TestEnv::start`] with a pool of `connections` on the test's database (a service under
    /// test that serves concurrent requests needs more than the default 4).
    pub async fn start_with_pool(connections: u32) -> anyhow::Result<Self> {
        let endpoints = services::resolve().await?;
        let unique = Uuid::new_v4().simple().to_string();

        let nats = async_nats::connect(&endpoints.nats_url)
            .await
            .with_context(|| format!("connecting to NATS at {}", endpoints.nats_url))?;
        let log_config = LogConfig {
            replicas: services::log_replicas()?,
            ..LogConfig::new(format!("IT_{unique}"), format!("it.{unique}"))
        };

        let database_name = format!("it_{unique}");
        let mut admin = admin_connection(&endpoints.database_url).await?;
        sqlx::query(&format!(r#"CREATE DATABASE "{database_name}""#))
            .execute(&mut admin)
            .await
            .with_context(|| format!("creating test database {database_name}"))?;
        admin.close().await.ok();

        let options = PgConnectOptions::from_str(&endpoints.database_url)
            .context("parsing DATABASE_URL")?
            .database(&database_name);
        let db = PgPoolOptions::new()
            .max_connections(connections)
            .connect_with(options)
            .await
            .with_context(|| format!("connecting to test database {database_name}"))?;
        sqlx::migrate!("../migrations")
            .run(&db)
            .await
            .context("migrating the test database")?;

        Ok(Self {
            nats,
            db,
            endpoints,
            log_config,
            database_name,
            cleaned_up: false,
        })
    }

    /// The log configuration of this test: a unique stream name and subject prefix.
    pub fn log_config(&self) -> LogConfig {
        self.log_config.clone()
    }

    /// The URLs of the services in use.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// The name of this test's database.
    pub fn database_name(&self) -> &str {
        &self.database_name
    }

    /// Opens the event log on this test's stream with the default settings.
    pub async fn event_log(&self) -> anyhow::Result<EventLog> {
        self.event_log_with(self.log_config()).await
    }

    /// Opens the event log with adjusted settings. The stream name and subject prefix must stay those
    /// of [`TestEnv::log_config`], so that cleanup finds the stream.
    pub async fn event_log_with(&self, config: LogConfig) -> anyhow::Result<EventLog> {
        anyhow::ensure!(
            config.stream_name == self.log_config.stream_name
                && config.subject_prefix == self.log_config.subject_prefix,
            "a test's log must keep the stream name and subject prefix the harness chose"
        );
        Ok(EventLog::connect(self.nats.clone(), config).await?)
    }

    /// Deletes the test's streams and drops its database.
    pub async fn cleanup(mut self) -> anyhow::Result<()> {
        self.cleaned_up = true;
        self.db.close().await;
        remove_resources(
            &self.endpoints,
            Some(self.nats.clone()),
            &self.log_config,
            &self.database_name,
        )
        .await
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if self.cleaned_up {
            return;
        }
        // The test ended without calling `cleanup` (a failed assertion, or an owner that cleans up on
        // drop, as the sessions API tests' `TestApp` does). Async work cannot run
        // inside `drop`, and the test's runtime may be shutting down, so clean up on a helper thread
        // with its own runtime and wait for it.
        let endpoints = self.endpoints.clone();
        let log_config = self.log_config.clone();
        let database_name = self.database_name.clone();
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a cleanup runtime starts");
            runtime.block_on(remove_resources(
                &endpoints,
                None,
                &log_config,
                &database_name,
            ))
        });
        if let Ok(Err(error)) = cleanup.join() {
            // Nothing can be returned from `drop`; the test's own failure is already being reported.
            let _ = std::io::Write::write_fmt(
                &mut std::io::stderr(),
                format_args!("test cleanup failed: {error:#}\n"),
            );
        }
    }
}

async fn admin_connection(database_url: &str) -> anyhow::Result<PgConnection> {
    PgConnectOptions::from_str(database_url)
        .context("parsing DATABASE_URL")?
        .connect()
        .await
        .with_context(|| format!("connecting to PostgreSQL at {database_url}"))
}

async fn remove_resources(
    endpoints: &Endpoints,
    nats: Option<async_nats::Client>,
    log_config: &LogConfig,
    database_name: &str,
) -> anyhow::Result<()> {
    let nats = match nats {
        Some(client) => client,
        None => async_nats::connect(&endpoints.nats_url).await?,
    };
    let jetstream = async_nats::jetstream::new(nats);
    for stream in [
        log_config.stream_name.clone(),
        log_config.parked_stream_name(),
    ] {
        if let Err(error) = jetstream.delete_stream(&stream).await {
            let not_found = matches!(
                error.kind(),
                DeleteStreamErrorKind::JetStream(ref server)
                    if server.error_code() == ErrorCode::STREAM_NOT_FOUND
            );
            if !not_found {
                return Err(error).with_context(|| format!("deleting stream {stream}"));
            }
        }
    }
    let mut admin = admin_connection(&endpoints.database_url).await?;
    sqlx::query(&format!(
        r#"DROP DATABASE IF EXISTS "{database_name}" WITH (FORCE)"#
    ))
    .execute(&mut admin)
    .await
    .with_context(|| format!("dropping test database {database_name}"))?;
    admin.close().await.ok();
    Ok(())
}

/// Collects a (non-follow) replay to its end, failing if it does not end within 30 seconds.
pub async fn drain(
    mut replay: claimledger_log::Replay,
) -> anyhow::Result<Vec<claimledger_log::ReplayItem>> {
    use futures::StreamExt as _;
    let collect = async {
        let mut items = Vec::new();
        while let Some(item) = replay.next().await {
            items.push(item?);
        }
        anyhow::Ok(items)
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), collect)
        .await
        .context("the replay did not end within 30 s")?
}
