//! Invalid messages on the log: parked with their original sequence, reported in place, and the
//! replay and an aggregate's read continue past them.

use async_nats::jetstream;
use claimledger_events::{Event, encode};
use claimledger_log::{
    InvalidMessage, PARKED_SEQUENCE_HEADER, PARKED_SUBJECT_HEADER, ReplayFilter, ReplayItem,
};
use futures::StreamExt;
use integration_tests::commits::{commit_for, new_chain, new_clinic, new_session, scheduled};
use integration_tests::{TestEnv, drain};

#[tokio::test]
async fn invalid_messages_are_parked_and_reported_and_replay_continues() -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    let log = env.event_log().await?;
    let raw = jetstream::new(env.nats.clone());
    let chain = new_chain();
    let clinic = new_clinic();
    let session = new_session(chain, clinic);
    let other = new_session(chain, clinic);

    let before = commit_for(&session, vec![scheduled()]);
    let before_sequence = log.append(&session, 0, &before).await?.sequence;

    // Garbage under a well-formed subject, as a buggy or hostile writer would publish it.
    let garbage_subject = log.subject_of(&session)?;
    let garbage_sequence = raw
        .publish(
            garbage_subject.clone(),
            vec![0xde, 0xad, 0xbe, 0xef, 1, 2, 3].into(),
        )
        .await?
        .await?
        .sequence;
    // A valid commit of one session stored under another session's subject.
    let misfiled_subject = log.subject_of(&other)?;
    let misfiled = encode(&commit_for(&session, vec![Event::CheckedIn]))?;
    let misfiled_sequence = raw
        .publish(misfiled_subject.clone(), misfiled.into())
        .await?
        .await?
        .sequence;

    let after = commit_for(&other, vec![scheduled()]);
    let after_sequence = log
        .append(&other, misfiled_sequence, &after)
        .await?
        .sequence;

    let items = drain(log.replay(0, ReplayFilter::Chain(chain)).await?).await?;
    assert_eq!(items.len(), 4);
    assert!(matches!(&items[0], ReplayItem::Commit(c) if c.sequence == before_sequence));
    match &items[1] {
        ReplayItem::Invalid {
            sequence,
            subject,
            error: InvalidMessage::Undecodable(_),
        } => {
            assert_eq!(*sequence, garbage_sequence);
            assert_eq!(*subject, garbage_subject);
        }
        other => panic!("expected the garbage to be reported, got {other:?}"),
    }
    match &items[2] {
        ReplayItem::Invalid {
            sequence,
            error: InvalidMessage::WrongSubject { commit_subject },
            ..
        } => {
            assert_eq!(*sequence, misfiled_sequence);
            assert_eq!(*commit_subject, garbage_subject);
        }
        other => panic!("expected the misfiled commit to be reported, got {other:?}"),
    }
    assert!(matches!(&items[3], ReplayItem::Commit(c) if c.sequence == after_sequence));

    // Replaying again reports them again but parks each only once.
    let again = drain(log.replay(0, ReplayFilter::All).await?).await?;
    assert_eq!(again.len(), 4);
    let parked_stream = raw
        .get_stream(env.log_config().parked_stream_name())
        .await?;
    let parked = parked_stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig::default())
        .await?
        .messages()
        .await?
        .take(2)
        .collect::<Vec<_>>()
        .await;
    let mut parked_positions = Vec::new();
    for message in parked {
        let message = message?;
        let headers = message
            .headers
            .as_ref()
            .expect("parked messages carry headers");
        let sequence: u64 = headers
            .get(PARKED_SEQUENCE_HEADER)
            .expect("original sequence header")
            .as_str()
            .parse()?;
        let subject = headers
            .get(PARKED_SUBJECT_HEADER)
            .expect("original subject header")
            .to_string();
        parked_positions.push((sequence, subject));
    }
    assert_eq!(
        parked_positions,
        vec![
            (garbage_sequence, garbage_subject),
            (misfiled_sequence, misfiled_subject)
        ]
    );
    let mut parked_stream = parked_stream;
    assert_eq!(
        parked_stream.info().await?.state.messages,
        2,
        "parked once each"
    );

    // Reading the aggregate skips the garbage and says so; it was parked already, so not again.
    let history = log.read(&session).await?;
    assert_eq!(
        history
            .commits
            .iter()
            .map(|commit| commit.sequence)
            .collect::<Vec<_>>(),
        vec![before_sequence]
    );
    assert_eq!(
        history
            .skipped
            .iter()
            .map(|skipped| skipped.sequence)
            .collect::<Vec<_>>(),
        vec![garbage_sequence]
    );
    assert_eq!(history.version, garbage_sequence);
    assert_eq!(parked_stream.info().await?.state.messages, 2);
    env.cleanup().await
}

#[tokio::test]
async fn garbage_on_a_sessions_subject_is_skipped_by_read_and_the_session_goes_on()
-> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    let log = env.event_log().await?;
    let raw = jetstream::new(env.nats.clone());
    let session = new_session(new_chain(), new_clinic());
    let scheduled_at = log
        .append(&session, 0, &commit_for(&session, vec![scheduled()]))
        .await?
        .sequence;
    let subject = log.subject_of(&session)?;
    let garbage = raw
        .publish(subject.clone(), b"not a commit".as_slice().into())
        .await?
        .await?
        .sequence;

    let history = log.read(&session).await?;
    assert_eq!(history.commits.len(), 1);
    assert_eq!(history.commits[0].sequence, scheduled_at);
    assert_eq!(history.skipped.len(), 1);
    let skipped = &history.skipped[0];
    assert_eq!(
        (skipped.sequence, skipped.subject.as_str()),
        (garbage, subject.as_str())
    );
    assert!(
        skipped.reason.contains("does not decode"),
        "the reason says what is wrong: {}",
        skipped.reason
    );
    assert_eq!(
        history.version, garbage,
        "the version is the subject's last stored sequence"
    );

    // The next command appends at that version, and the aggregate reads on.
    let checked_in = log
        .append(
            &session,
            history.version,
            &commit_for(&session, vec![Event::CheckedIn]),
        )
        .await?
        .sequence;
    let again = log.read(&session).await?;
    assert_eq!(
        again
            .commits
            .iter()
            .map(|commit| commit.sequence)
            .collect::<Vec<_>>(),
        vec![scheduled_at, checked_in]
    );
    assert_eq!(again.skipped, history.skipped);
    assert_eq!(again.version, checked_in);

    // Parked once, however often it is read.
    let mut parked = raw
        .get_stream(env.log_config().parked_stream_name())
        .await?;
    assert_eq!(parked.info().await?.state.messages, 1);
    let copy = parked
        .get_last_raw_message_by_subject(&format!(
            "{}.{garbage}",
            env.log_config().parked_subject_prefix()
        ))
        .await?;
    assert_eq!(copy.payload.as_ref(), b"not a commit");
    env.cleanup().await
}
