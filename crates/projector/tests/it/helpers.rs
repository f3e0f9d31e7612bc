//! `spawn_app`: a test's own stream, migrated database, directory rows and published payer rules,
//! plus helpers that drive the projector's step function and digest the read models.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use claimledger_log::EventLog;
use claimledger_projector::checksum::{TableDigest, read_model_checksums};
use claimledger_projector::rebuild::rebuild;
use claimledger_projector::{LIVE_SCHEMA, Outcome, Projector, ProjectorConfig};
use integration_tests::TestEnv;

use crate::workload::{Workload, rules_dir};

/// Every read model's digest.
pub type Checksums = BTreeMap<&'static str, TableDigest>;

/// One test's world.
#[derive(Debug)]
pub struct TestApp {
    pub env: TestEnv,
    pub log: EventLog,
    pub workload: Workload,
}

/// Starts an isolated test world with one chain's directory rows and published payer rules.
pub async fn spawn_app() -> anyhow::Result<TestApp> {
    init_test_logging();
    let env = TestEnv::start().await?;
    let log = env.event_log().await?;
    let workload = Workload::new();
    workload.seed_directory(&env.db).await?;
    workload.publish_rules(&log).await?;
    workload.record_directory(&log).await?;
    Ok(TestApp { env, log, workload })
}

/// Logs are silent unless `TEST_LOG` is set.
fn init_test_logging() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// The projector configuration tests use: small batches so that several batches run.
pub fn test_config() -> ProjectorConfig {
    let mut config = ProjectorConfig::live(rules_dir());
    config.max_batch_commits = 200;
    config.idle_wait = Duration::from_millis(100);
    config
}

impl TestApp {
    /// A live projector on this test's log and database.
    pub fn projector(&self) -> anyhow::Result<Projector> {
        Ok(Projector::build(
            self.log.clone(),
            self.env.db.clone(),
            test_config(),
        )?)
    }

    /// Digests of the live read models.
    pub async fn checksums(&self) -> anyhow::Result<Checksums> {
        Ok(read_model_checksums(&self.env.db, LIVE_SCHEMA, None).await?)
    }

    /// Rebuilds every read model from the log and returns the digests afterwards.
    pub async fn rebuild_all(&self) -> anyhow::Result<Checksums> {
        rebuild(&self.log, &self.env.db, &test_config(), None, &mut |_| {}).await?;
        self.checksums().await
    }

    /// The live checkpoint.
    pub async fn live_checkpoint(&self) -> anyhow::Result<u64> {
        let sequence: Option<i64> = sqlx::query_scalar(
            "SELECT last_sequence FROM projector_checkpoints \
             WHERE projection = $1 AND chain_id IS NULL",
        )
        .bind(LIVE_SCHEMA)
        .fetch_optional(&self.env.db)
        .await?;
        Ok(sequence.map_or(0, |value| u64::try_from(value).unwrap_or(0)))
    }
}

/// Steps the projector until it reports idle (bounded: fails after 120 seconds). Returns the
/// positions applied.
pub async fn drain(projector: &mut Projector) -> anyhow::Result<u64> {
    let steps = async {
        let mut applied = 0;
        loop {
            match projector.process_next_batch().await? {
                Outcome::Applied(positions) => applied += positions,
                Outcome::Idle => return anyhow::Ok(applied),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(120), steps)
        .await
        .context("the projector did not become idle within 120 seconds")?
}

/// Steps the projector until one step applies something (the first steps may only open the
/// consumer); bounded like [`drain`].
pub async fn step_until_applied(projector: &mut Projector) -> anyhow::Result<u64> {
    let steps = async {
        loop {
            match projector.process_next_batch().await? {
                Outcome::Applied(0) => {}
                Outcome::Applied(positions) => return anyhow::Ok(positions),
                Outcome::Idle => anyhow::bail!("idle before anything was applied"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(120), steps)
        .await
        .context("nothing was applied within 120 seconds")?
}
