//! Stream set-up is idempotent, and an existing stream that contradicts the configuration is refused;
//! opening the log for reading creates nothing and accepts any duplicate window.

use std::time::Duration;

use async_nats::jetstream;
use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::context::GetStreamErrorKind;
use claimledger_events::encode;
use claimledger_log::{EventLog, LogError, ReplayFilter, ReplayItem};
use integration_tests::commits::{commit_for, new_chain, new_clinic, new_session, scheduled};
use integration_tests::{TestEnv, drain};

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

#[tokio::test]
async fn opening_a_missing_stream_for_reading_fails_naming_it_and_creates_nothing()
-> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    let config = env.log_config();

    match EventLog::open_existing(env.nats.clone(), config.clone()).await {
        Err(LogError::StreamNotFound { stream }) => assert_eq!(stream, config.stream_name),
        other => panic!("expected the missing stream to be named, got {other:?}"),
    }

    let jetstream = jetstream::new(env.nats.clone());
    for stream in [config.stream_name.clone(), config.parked_stream_name()] {
        match jetstream.get_stream(&stream).await {
            Err(error) => assert!(
                matches!(
                    error.kind(),
                    GetStreamErrorKind::JetStream(ref server)
                        if server.error_code() == ErrorCode::STREAM_NOT_FOUND
                ),
                "{stream}: {error}"
            ),
            Ok(_) => panic!("{stream} was created by a read-only open"),
        }
    }
    env.cleanup().await
}

#[tokio::test]
async fn a_stream_written_with_another_duplicate_window_opens_for_reading() -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    let mut writer_config = env.log_config();
    writer_config.duplicate_window = Duration::from_secs(7);
    let writer = env.event_log_with(writer_config).await?;
    let session = new_session(new_chain(), new_clinic());
    let appended = writer
        .append(&session, 0, &commit_for(&session, vec![scheduled()]))
        .await?;

    let reader = EventLog::open_existing(env.nats.clone(), env.log_config()).await?;
    let history = reader.read(&session).await?;
    assert_eq!(history.version, appended.sequence);
    assert_eq!(history.commits.len(), 1);
    let items = drain(reader.replay(0, ReplayFilter::All).await?).await?;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].sequence(), appended.sequence);
    env.cleanup().await
}

#[tokio::test]
async fn a_read_only_log_without_a_parked_stream_skips_invalid_messages_without_creating_it()
-> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    let config = env.log_config();
    let jetstream = jetstream::new(env.nats.clone());
    // The log stream alone, as an operator might have created it by hand.
    jetstream
        .create_stream(jetstream::stream::Config {
            name: config.stream_name.clone(),
            subjects: vec![format!("{}.>", config.subject_prefix)],
            ..Default::default()
        })
        .await?;
    let session = new_session(new_chain(), new_clinic());
    let subject = session.subject(&config.subject_prefix)?;
    let garbage = jetstream
        .publish(subject.clone(), vec![0xba, 0xd0].into())
        .await?
        .await?
        .sequence;
    let good = jetstream
        .publish(
            subject,
            encode(&commit_for(&session, vec![scheduled()]))?.into(),
        )
        .await?
        .await?
        .sequence;

    let reader = EventLog::open_existing(env.nats.clone(), config.clone()).await?;
    let items = drain(reader.replay(0, ReplayFilter::All).await?).await?;
    assert!(
        matches!(&items[..], [ReplayItem::Invalid { sequence, .. }, ReplayItem::Commit(commit)]
        if *sequence == garbage && commit.sequence == good)
    );
    assert!(
        jetstream
            .get_stream(config.parked_stream_name())
            .await
            .is_err(),
        "the parked stream was not created"
    );
    env.cleanup().await
}
