//! Replays read through the log's direct connection (`claimledger_log`'s bulk reader) deliver
//! exactly what the async-nats ordered consumer delivers: every position, in order, across several
//! pull requests, with invalid messages parked in place, filtered, resumed, and followed past the
//! moments when a pull request expires with nothing new.

use std::time::Duration;

use async_nats::jetstream;
use claimledger_events::Event;
use claimledger_log::{EventLog, ReplayFilter, ReplayItem};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use integration_tests::commits::{commit_for, new_chain, new_clinic, new_session, scheduled};
use integration_tests::{TestEnv, drain};

/// Waves of one commit per session: 30 x 300 = 9,000 commits, more than one pull request asks for
/// (4,096), so the reader chains requests.
const WAVES: usize = 30;

/// What a replay item says, comparable across readers.
fn described(items: &[ReplayItem]) -> Vec<String> {
    items
        .iter()
        .map(|item| match item {
            ReplayItem::Commit(recorded) => format!(
                "{} {} {:?}",
                recorded.sequence, recorded.subject, recorded.commit
            ),
            ReplayItem::Invalid {
                sequence,
                subject,
                error,
            } => format!("{sequence} {subject} invalid: {error}"),
        })
        .collect()
}

/// Appends `WAVES` commits to each of 300 sessions of two chains, with a garbage message after every
/// fourth wave; returns the first chain.
async fn populate(env: &TestEnv, log: &EventLog) -> anyhow::Result<claimledger_events::ChainId> {
    let raw = jetstream::new(env.nats.clone());
    let chains = [new_chain(), new_chain()];
    let clinic = new_clinic();
    let sessions: Vec<_> = (0..300)
        .map(|index| new_session(chains[index % 2], clinic))
        .collect();
    let mut versions = vec![0_u64; sessions.len()];
    for wave_number in 0..WAVES {
        // Sessions advance in waves of concurrent appends, each on its own version.
        let mut wave = FuturesUnordered::new();
        for (index, session) in sessions.iter().enumerate() {
            let event = if versions[index] == 0 {
                scheduled()
            } else {
                Event::CheckedIn
            };
            let commit = commit_for(session, vec![event]);
            let version = versions[index];
            wave.push(async move {
                anyhow::Ok((index, log.append(session, version, &commit).await?.sequence))
            });
        }
        while let Some(appended) = wave.next().await {
            let (index, sequence) = appended?;
            versions[index] = sequence;
        }
        if wave_number % 4 == 3 {
            // On a subject of its own, so no session's version moves under the waves.
            raw.publish(
                log.subject_of(&new_session(chains[0], clinic))?,
                vec![0xba, 0xd0].into(),
            )
            .await?
            .await?;
        }
    }
    Ok(chains[0])
}

#[tokio::test]
async fn direct_and_async_nats_replays_deliver_the_same_positions() -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    let log = env.event_log().await?;
    assert!(
        log.reads_directly(),
        "the local NATS server asks for no credentials, so replays must read directly"
    );
    let fallback = log.without_direct_reads();
    assert!(!fallback.reads_directly());
    let chain = populate(&env, &log).await?;
    let last = log.last_sequence().await?;

    for (from, filter) in [
        (0, ReplayFilter::All),
        (last / 3, ReplayFilter::All),
        (0, ReplayFilter::Chain(chain)),
        (last + 1, ReplayFilter::All),
    ] {
        let direct = drain(log.replay(from, filter).await?).await?;
        let through_async_nats = drain(fallback.replay(from, filter).await?).await?;
        assert_eq!(
            described(&direct),
            described(&through_async_nats),
            "from {from} with {filter:?}"
        );
        if from <= 1 && filter == ReplayFilter::All {
            assert_eq!(direct.len() as u64, last, "every position of the log");
            assert!(
                direct
                    .iter()
                    .filter(|item| matches!(item, ReplayItem::Invalid { .. }))
                    .count()
                    >= 7,
                "the garbage messages are reported in place"
            );
        }
        if from > last {
            assert!(direct.is_empty());
        }
    }
    env.cleanup().await
}

#[tokio::test]
async fn a_direct_follow_keeps_delivering_after_its_pull_requests_expire() -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    let log = env.event_log().await?;
    assert!(log.reads_directly());
    let session = new_session(new_chain(), new_clinic());
    let first = commit_for(&session, vec![scheduled()]);
    let mut version = log.append(&session, 0, &first).await?.sequence;
    let mut follow = log.follow(0, ReplayFilter::All).await?;
    let mut next_sequence = async || -> anyhow::Result<u64> {
        let item = tokio::time::timeout(Duration::from_secs(10), follow.next())
            .await?
            .expect("a follow replay does not end")?;
        Ok(item.sequence())
    };
    assert_eq!(next_sequence().await?, version);

    // Quiet for longer than a follow request's 5 s expiry, twice: the reader must ask again.
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_secs(6)).await;
        let next = commit_for(&session, vec![Event::CheckedIn]);
        version = log.append(&session, version, &next).await?.sequence;
        assert_eq!(next_sequence().await?, version);
    }
    env.cleanup().await
}
