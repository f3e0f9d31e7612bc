//! Stream set-up is idempotent, and an existing stream that contradicts the configuration is refused.

use std::time::Duration;

use claimledger_log::{EventLog, LogError};
use integration_tests::TestEnv;

#[tokio::test]
async fn connecting_twice_reuses_the_stream_and_a_contradicting_setting_is_named()
-> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    let first = env.event_log().await?;
    let again = env.event_log().await?;
    again.ensure_stream().await?;
    assert_eq!(first.last_sequence().await?, again.last_sequence().await?);

    let mut contradicting = env.log_config();
    contradicting.duplicate_window = Duration::from_secs(7);
    match EventLog::connect(env.nats.clone(), contradicting).await {
        Err(LogError::StreamMismatch { field, .. }) => assert_eq!(field, "duplicate_window"),
        other => panic!("expected a stream mismatch, got {other:?}"),
    }
    env.cleanup().await
}
