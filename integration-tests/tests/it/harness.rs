//! The harness itself: each test gets a migrated database and its own stream, and cleanup removes both.

use async_nats::jetstream;
use integration_tests::TestEnv;
use sqlx::Row;

#[tokio::test]
async fn each_test_gets_its_own_migrated_database_and_stream_and_cleanup_removes_them()
-> anyhow::Result<()> {
    let first = TestEnv::start().await?;
    let second = TestEnv::start().await?;
    assert_ne!(first.database_name(), second.database_name());
    assert_ne!(
        first.log_config().stream_name,
        second.log_config().stream_name
    );
    assert_ne!(
        first.log_config().subject_prefix,
        second.log_config().subject_prefix
    );

    let tables = sqlx::query(
        "SELECT to_regclass('projector_checkpoints') IS NOT NULL AS checkpoints, \
                to_regclass('parked_events') IS NOT NULL AS parked, \
                (SELECT count(*) FROM _sqlx_migrations WHERE success) AS applied",
    )
    .fetch_one(&first.db)
    .await?;
    assert!(tables.get::<bool, _>("checkpoints"));
    assert!(tables.get::<bool, _>("parked"));
    assert!(tables.get::<i64, _>("applied") >= 1);

    let log = first.event_log().await?;
    let stream_name = log.config().stream_name.clone();
    let database_name = first.database_name().to_owned();
    let observer = second.db.clone();
    let raw = jetstream::new(second.nats.clone());
    assert!(raw.get_stream(&stream_name).await.is_ok());

    first.cleanup().await?;

    assert!(
        raw.get_stream(&stream_name).await.is_err(),
        "stream deleted"
    );
    let remaining: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(&database_name)
        .fetch_one(&observer)
        .await?;
    assert_eq!(remaining, 0, "database dropped");
    second.cleanup().await
}
