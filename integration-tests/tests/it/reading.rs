//! Reading one aggregate, replaying the log (whole, per chain, per clinic, per aggregate), resuming
//! from a sequence, and following new commits.

use std::time::Duration;

use claimledger_events::{CommandId, Event};
use claimledger_log::{AggregateAddress, EventLog, ReplayFilter, ReplayItem};
use futures::StreamExt;
use integration_tests::commits::{
    commit_for, new_chain, new_clinic, new_payer_rules, new_session, scheduled, service,
};
use integration_tests::{TestEnv, drain};

#[tokio::test]
async fn read_returns_an_aggregates_commits_in_order_with_its_version() -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    let log = env.event_log().await?;
    let chain = new_chain();
    let clinic = new_clinic();
    let session = new_session(chain, clinic);
    let neighbour = new_session(chain, clinic);

    let mut appended = Vec::new();
    let mut version = 0;
    let mut neighbour_version = 0;
    for minutes in 1..=12 {
        let commit = commit_for(&session, vec![service(minutes)]);
        version = log.append(&session, version, &commit).await?.sequence;
        appended.push((version, commit));
        // Interleave another aggregate so that the session's sequences are not contiguous.
        let noise = commit_for(&neighbour, vec![Event::CheckedIn]);
        neighbour_version = log
            .append(&neighbour, neighbour_version, &noise)
            .await?
            .sequence;
    }

    let history = log.read(&session).await?;
    let read: Vec<_> = history
        .commits
        .into_iter()
        .map(|recorded| (recorded.sequence, recorded.commit))
        .collect();
    assert_eq!(read, appended);
    assert_eq!(history.version, version);
    assert_eq!(log.version(&session).await?, version);

    let unknown = new_session(chain, clinic);
    let empty = log.read(&unknown).await?;
    assert!(empty.commits.is_empty());
    assert_eq!(empty.version, 0);
    assert_eq!(log.version(&unknown).await?, 0);
    env.cleanup().await
}

/// Appends commits round-robin over two chains × two clinics × three sessions plus one chain-wide
/// aggregate per chain, and returns (sequence, address, command id) in append order.
async fn populate(log: &EventLog) -> anyhow::Result<Vec<(u64, AggregateAddress, CommandId)>> {
    let mut aggregates = Vec::new();
    for _ in 0..2 {
        let chain = new_chain();
        aggregates.push(new_payer_rules(chain));
        for _ in 0..2 {
            let clinic = new_clinic();
            for _ in 0..3 {
                aggregates.push(new_session(chain, clinic));
            }
        }
    }
    let mut versions = vec![0; aggregates.len()];
    let mut appended = Vec::new();
    for round in 0..3 {
        for (index, aggregate) in aggregates.iter().enumerate() {
            let event = if round == 0 { scheduled() } else { service(10) };
            let commit = commit_for(aggregate, vec![event]);
            let sequence = log
                .append(aggregate, versions[index], &commit)
                .await?
                .sequence;
            versions[index] = sequence;
            appended.push((sequence, *aggregate, commit.command_id));
        }
    }
    Ok(appended)
}

fn positions(items: &[ReplayItem]) -> Vec<(u64, CommandId)> {
    items
        .iter()
        .map(|item| match item {
            ReplayItem::Commit(recorded) => (recorded.sequence, recorded.commit.command_id),
            ReplayItem::Invalid { sequence, .. } => panic!("unexpected invalid message {sequence}"),
        })
        .collect()
}

#[tokio::test]
async fn replay_streams_every_commit_in_log_order_and_filters_by_chain_clinic_and_aggregate()
-> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    let log = env.event_log().await?;
    let appended = populate(&log).await?;
    let expect = |keep: &dyn Fn(&AggregateAddress) -> bool| -> Vec<(u64, CommandId)> {
        appended
            .iter()
            .filter(|(_, address, _)| keep(address))
            .map(|(sequence, _, command)| (*sequence, *command))
            .collect()
    };

    let all = drain(log.replay(0, ReplayFilter::All).await?).await?;
    assert_eq!(positions(&all), expect(&|_| true));
    assert!(
        all.windows(2)
            .all(|pair| pair[0].sequence() < pair[1].sequence())
    );

    let (_, first_session, _) = appended[1];
    let chain = first_session.chain;
    let clinic = first_session.clinic.expect("sessions have a clinic");

    let by_chain = drain(log.replay(0, ReplayFilter::Chain(chain)).await?).await?;
    assert_eq!(
        positions(&by_chain),
        expect(&|address| address.chain == chain)
    );
    // The chain includes its chain-wide payer rules.
    assert!(by_chain.iter().any(|item| matches!(
        item,
        ReplayItem::Commit(recorded) if recorded.commit.clinic.is_none()
    )));

    let by_clinic = drain(log.replay(0, ReplayFilter::Clinic(chain, clinic)).await?).await?;
    assert_eq!(
        positions(&by_clinic),
        expect(&|address| address.chain == chain && address.clinic == Some(clinic))
    );
    assert_eq!(by_clinic.len(), 9, "three sessions, three commits each");

    let one = drain(
        log.replay(0, ReplayFilter::Aggregate(first_session))
            .await?,
    )
    .await?;
    assert_eq!(
        positions(&one),
        expect(&|address| *address == first_session)
    );
    env.cleanup().await
}

#[tokio::test]
async fn replay_resumes_from_a_sequence_and_ends_at_the_last_sequence_of_the_call()
-> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    let log = env.event_log().await?;
    let appended = populate(&log).await?;
    let resume_after = appended[10].0;

    let replay = log.replay(resume_after + 1, ReplayFilter::All).await?;
    // A commit appended after the call is not part of this replay.
    let (_, late_aggregate, _) = appended[0];
    let late = commit_for(&late_aggregate, vec![Event::SessionCompleted]);
    let late_version = log.version(&late_aggregate).await?;
    let late_sequence = log
        .append(&late_aggregate, late_version, &late)
        .await?
        .sequence;

    let tail = drain(replay).await?;
    let expected: Vec<_> = appended[11..]
        .iter()
        .map(|(sequence, _, command)| (*sequence, *command))
        .collect();
    assert_eq!(positions(&tail), expected);

    // Resuming past the end yields nothing; resuming at the late commit yields just it.
    let beyond = drain(log.replay(late_sequence + 1, ReplayFilter::All).await?).await?;
    assert!(beyond.is_empty());
    let last = drain(log.replay(late_sequence, ReplayFilter::All).await?).await?;
    assert_eq!(positions(&last), vec![(late_sequence, late.command_id)]);
    env.cleanup().await
}

#[tokio::test]
async fn follow_keeps_delivering_commits_appended_after_the_call() -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    let log = env.event_log().await?;
    let chain = new_chain();
    let session = new_session(chain, new_clinic());
    let first = commit_for(&session, vec![scheduled()]);
    let first_sequence = log.append(&session, 0, &first).await?.sequence;

    let mut follow = log.follow(0, ReplayFilter::Chain(chain)).await?;
    let second = commit_for(&session, vec![Event::CheckedIn]);
    let second_sequence = log
        .append(&session, first_sequence, &second)
        .await?
        .sequence;

    let mut received = Vec::new();
    for _ in 0..2 {
        let item = tokio::time::timeout(Duration::from_secs(10), follow.next())
            .await?
            .expect("a follow replay does not end")?;
        received.push(item);
    }
    assert_eq!(
        positions(&received),
        vec![
            (first_sequence, first.command_id),
            (second_sequence, second.command_id)
        ]
    );
    drop(follow);
    env.cleanup().await
}
