//! Appending: optimistic concurrency under contention, idempotent retries inside and outside the
//! server's duplicate window, and retries while the log does not answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use async_nats::jetstream::message::PublishMessage;
use claimledger_events::Event;
use claimledger_log::{Appended, LogError};
use integration_tests::TestEnv;
use integration_tests::commits::{
    commit_for, new_chain, new_clinic, new_session, scheduled, service,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_with_the_same_expected_version_have_exactly_one_winner()
-> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    let log = env.event_log().await?;
    let session = new_session(new_chain(), new_clinic());

    let mut version = 0;
    for round in 0..5 {
        let contenders: Vec<_> = (0..8)
            .map(|_| {
                let log = log.clone();
                let commit = commit_for(&session, vec![service(15)]);
                tokio::spawn(async move { log.append(&session, version, &commit).await })
            })
            .collect();
        let mut winners = Vec::new();
        let mut conflicts = Vec::new();
        for contender in contenders {
            match contender.await? {
                Ok(appended) => winners.push(appended),
                Err(LogError::Conflict {
                    expected_version,
                    actual_version,
                    ..
                }) => conflicts.push((expected_version, actual_version)),
                Err(other) => return Err(other.into()),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one append wins");
        assert!(!winners[0].duplicate);
        assert_eq!(conflicts.len(), 7, "round {round}: the others conflict");
        for (expected, actual) in conflicts {
            assert_eq!(expected, version);
            assert_eq!(
                actual, winners[0].sequence,
                "the conflict names the true version"
            );
        }
        version = winners[0].sequence;
    }

    let history = log.read(&session).await?;
    assert_eq!(
        history.commits.len(),
        5,
        "one commit per round, none lost or doubled"
    );
    assert_eq!(history.version, version);
    env.cleanup().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_appends_at_the_same_version_give_one_success_and_one_conflict()
-> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    let log = env.event_log().await?;
    let chain = new_chain();
    let clinic = new_clinic();

    // Many pairs, so that both the server's check of a stored version and its check of an append
    // still in flight (a clustered server's error 10164) get their chance to answer.
    for round in 0..20 {
        let session = new_session(chain, clinic);
        let first = log
            .append(&session, 0, &commit_for(&session, vec![scheduled()]))
            .await?;
        let start = Arc::new(tokio::sync::Barrier::new(2));
        let pair: Vec<_> = (0..2)
            .map(|_| {
                let log = log.clone();
                let start = Arc::clone(&start);
                let commit = commit_for(&session, vec![service(15)]);
                tokio::spawn(async move {
                    start.wait().await;
                    log.append(&session, first.sequence, &commit).await
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for contender in pair {
            outcomes.push(contender.await?);
        }
        let winner = match outcomes.iter().find_map(|outcome| outcome.as_ref().ok()) {
            Some(winner) => *winner,
            None => panic!("round {round}: one append wins, got {outcomes:?}"),
        };
        assert!(!winner.duplicate, "round {round}");
        let conflicts: Vec<_> = outcomes
            .iter()
            .filter_map(|outcome| match outcome {
                Err(LogError::Conflict {
                    expected_version,
                    actual_version,
                    ..
                }) => Some((*expected_version, *actual_version)),
                _ => None,
            })
            .collect();
        assert_eq!(
            conflicts,
            vec![(first.sequence, winner.sequence)],
            "round {round}: the other append conflicts, naming the winner's version; got {outcomes:?}"
        );
        assert_eq!(log.version(&session).await?, winner.sequence);
    }
    env.cleanup().await
}

#[tokio::test]
async fn an_append_retries_while_no_stream_answers_and_lands_once_one_does() -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    let log = env.event_log().await?;
    let session = new_session(new_chain(), new_clinic());
    let commit = commit_for(&session, vec![scheduled()]);

    // No stream listening on the subject is what a stream without a leader looks like to a writer
    // (a "no responders" answer). The stream comes back while the append is retrying.
    let jetstream = jetstream::new(env.nats.clone());
    jetstream
        .delete_stream(&env.log_config().stream_name)
        .await?;
    let restore = {
        let log = log.clone();
        tokio::spawn(async move {
            // The outage has to last on the server's side for the append to meet it; there is no
            // step to drive.
            tokio::time::sleep(Duration::from_millis(400)).await;
            log.ensure_stream().await
        })
    };
    let appended = log.append(&session, 0, &commit).await?;
    restore.await??;

    assert!(!appended.duplicate);
    assert_eq!(log.read(&session).await?.commits.len(), 1, "stored once");
    assert_eq!(log.version(&session).await?, appended.sequence);
    env.cleanup().await
}

#[tokio::test]
async fn an_append_gives_up_with_a_nats_error_when_the_log_stays_unavailable() -> anyhow::Result<()>
{
    let env = TestEnv::start().await?;
    let budget = Duration::from_millis(300);
    let log = env.event_log().await?.with_append_retry(budget);
    let session = new_session(new_chain(), new_clinic());
    let jetstream = jetstream::new(env.nats.clone());
    jetstream
        .delete_stream(&env.log_config().stream_name)
        .await?;

    let started = Instant::now();
    let outcome = log
        .append(&session, 0, &commit_for(&session, vec![scheduled()]))
        .await;
    let elapsed = started.elapsed();

    assert!(
        matches!(outcome, Err(LogError::Nats { .. })),
        "an unavailable log is a NATS error, got {outcome:?}"
    );
    assert!(
        elapsed >= budget / 2 && elapsed < Duration::from_secs(5),
        "retried for about the budget, took {elapsed:?}"
    );
    env.cleanup().await
}

#[tokio::test]
async fn a_retry_inside_the_duplicate_window_is_acknowledged_with_the_original_sequence()
-> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    let log = env.event_log().await?;
    let session = new_session(new_chain(), new_clinic());
    let commit = commit_for(&session, vec![scheduled()]);

    let first = log.append(&session, 0, &commit).await?;
    let retry = log.append(&session, 0, &commit).await?;

    assert!(!first.duplicate);
    assert_eq!(
        retry,
        Appended {
            sequence: first.sequence,
            duplicate: true
        }
    );
    assert_eq!(log.read(&session).await?.commits.len(), 1);
    assert_eq!(
        log.last_sequence().await?,
        first.sequence,
        "nothing else stored"
    );
    env.cleanup().await
}

/// Waits until the server has forgotten the message ids published so far, proving it by
/// republishing a probe id (published after them) until the server stops calling it a duplicate.
///
/// This is a bounded wait on the server's own clock, which is what the test is about: there is no
/// step to drive, the duplicate window simply has to elapse on the server.
async fn wait_past_duplicate_window(env: &TestEnv, window: Duration) -> anyhow::Result<()> {
    let jetstream = jetstream::new(env.nats.clone());
    let probe_subject = format!("{}.window-probe", env.log_config().subject_prefix);
    let publish_probe = || {
        let jetstream = jetstream.clone();
        let subject = probe_subject.clone();
        async move {
            let message = PublishMessage::build()
                .payload("probe".into())
                .message_id("window-probe");
            anyhow::Ok(jetstream.send_publish(subject, message).await?.await?)
        }
    };
    publish_probe().await?;
    tokio::time::sleep(window).await;
    let deadline = Instant::now() + window * 10;
    loop {
        if !publish_probe().await?.duplicate {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the duplicate window never closed"
        );
        tokio::time::sleep(window / 4).await;
    }
}

#[tokio::test]
async fn a_retry_after_the_duplicate_window_is_recognised_from_the_aggregate_history()
-> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    let window = Duration::from_secs(1);
    let mut config = env.log_config();
    config.duplicate_window = window;
    let log = env.event_log_with(config).await?;
    let session = new_session(new_chain(), new_clinic());
    let commit = commit_for(&session, vec![scheduled()]);

    let first = log.append(&session, 0, &commit).await?;
    wait_past_duplicate_window(&env, window).await?;
    let retry = log.append(&session, 0, &commit).await?;

    assert_eq!(
        retry,
        Appended {
            sequence: first.sequence,
            duplicate: true
        }
    );
    assert_eq!(log.read(&session).await?.commits.len(), 1, "stored once");
    env.cleanup().await
}

#[tokio::test]
async fn a_late_retry_is_recognised_even_after_later_commits_and_real_conflicts_still_conflict()
-> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    let window = Duration::from_secs(1);
    let mut config = env.log_config();
    config.duplicate_window = window;
    let log = env.event_log_with(config).await?;
    let session = new_session(new_chain(), new_clinic());

    let schedule = commit_for(&session, vec![scheduled()]);
    let first = log.append(&session, 0, &schedule).await?;
    let check_in = commit_for(&session, vec![Event::CheckedIn]);
    let second = log.append(&session, first.sequence, &check_in).await?;
    wait_past_duplicate_window(&env, window).await?;

    // The first command is retried with its original expected version after another commit landed.
    let retry = log.append(&session, 0, &schedule).await?;
    assert_eq!(
        retry,
        Appended {
            sequence: first.sequence,
            duplicate: true
        }
    );

    // A different command based on the same stale version is a real conflict.
    let stale = commit_for(&session, vec![Event::SessionNoShow]);
    match log.append(&session, first.sequence, &stale).await {
        Err(LogError::Conflict { actual_version, .. }) => {
            assert_eq!(actual_version, second.sequence);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(log.read(&session).await?.commits.len(), 2);
    env.cleanup().await
}

#[tokio::test]
async fn a_commit_for_another_aggregate_or_without_events_is_refused() -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    let log = env.event_log().await?;
    let chain = new_chain();
    let clinic = new_clinic();
    let session = new_session(chain, clinic);
    let other = new_session(chain, clinic);

    let misaddressed = commit_for(&other, vec![Event::CheckedIn]);
    assert!(matches!(
        log.append(&session, 0, &misaddressed).await,
        Err(LogError::AggregateMismatch { .. })
    ));
    let empty = commit_for(&session, Vec::new());
    match log.append(&session, 0, &empty).await {
        Err(LogError::InvalidCommit(error)) => assert_eq!(error.field, "events"),
        other => panic!("expected an invalid commit, got {other:?}"),
    }
    assert_eq!(log.last_sequence().await?, 0, "nothing was written");
    env.cleanup().await
}
