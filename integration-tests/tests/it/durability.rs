//! Acknowledged data is never lost: everything acked is readable through a brand-new connection.

use std::collections::BTreeMap;

use claimledger_log::{ReplayFilter, ReplayItem};
use futures::stream::{FuturesUnordered, StreamExt};
use integration_tests::commits::{commit_for, new_chain, new_clinic, new_session, service};
use integration_tests::{TestEnv, drain};

#[tokio::test]
async fn every_acknowledged_commit_is_read_back_through_a_new_client() -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    let chain = new_chain();
    let clinic = new_clinic();
    let sessions: Vec<_> = (0..25).map(|_| new_session(chain, clinic)).collect();

    // Ledger of acknowledgements: sequence -> command id, kept on the client side.
    let mut acked = BTreeMap::new();
    {
        let log = env.event_log().await?;
        for round in 0..8u16 {
            // One in-flight append per session (its expected version), all sessions in parallel.
            let mut in_flight: FuturesUnordered<_> = sessions
                .iter()
                .map(|session| {
                    let log = log.clone();
                    let commit = commit_for(session, vec![service(round + 1)]);
                    async move {
                        let version = log.version(session).await?;
                        let appended = log.append(session, version, &commit).await?;
                        anyhow::Ok((appended.sequence, commit.command_id))
                    }
                })
                .collect();
            while let Some(result) = in_flight.next().await {
                let (sequence, command) = result?;
                assert!(acked.insert(sequence, command).is_none());
            }
        }
    }
    assert_eq!(acked.len(), 200);

    let fresh_client = async_nats::connect(&env.endpoints().nats_url).await?;
    let log = claimledger_log::EventLog::connect(fresh_client, env.log_config()).await?;
    let replayed: BTreeMap<_, _> = drain(log.replay(0, ReplayFilter::All).await?)
        .await?
        .into_iter()
        .map(|item| match item {
            ReplayItem::Commit(recorded) => (recorded.sequence, recorded.commit.command_id),
            ReplayItem::Invalid { sequence, .. } => panic!("unexpected invalid message {sequence}"),
        })
        .collect();
    assert_eq!(replayed, acked);
    for session in &sessions {
        assert_eq!(log.read(session).await?.commits.len(), 8);
    }
    env.cleanup().await
}
