//! Rebuilding the read models from the log: deterministic, atomic, and safe while the live
//! projector runs.

use std::time::Duration;

use claimledger_projector::LIVE_SCHEMA;
use claimledger_projector::checksum::read_model_checksums;
use claimledger_projector::rebuild::rebuild;
use tokio_util::sync::CancellationToken;

use crate::helpers::{drain, spawn_app, test_config};
use crate::workload::Workload;

/// Tables filled by claim lifecycle commits (submissions, remittances), which this workload does
/// not record; the sessions API's claim tests drive and rebuild them.
const CLAIM_LIFECYCLE_TABLES: [&str; 5] = [
    "claim_line_outcomes",
    "reimbursement_monthly",
    "denial_reasons_monthly",
    "reimbursement_monthly_chain",
    "reimbursement_monthly_clinic",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_rebuilds_give_identical_checksums_equal_to_the_live_projection() -> anyhow::Result<()>
{
    let app = spawn_app().await?;
    app.workload.append_visits(&app.log, 0..80, 16).await?;
    let mut projector = app.projector()?;
    drain(&mut projector).await?;
    let live = app.checksums().await?;
    assert!(
        live.iter()
            .filter(|(table, _)| !CLAIM_LIFECYCLE_TABLES.contains(table))
            .all(|(_, digest)| digest.rows > 0),
        "{live:?}"
    );

    let mut reported = Vec::new();
    let report = rebuild(
        &app.log,
        &app.env.db,
        &test_config(),
        None,
        &mut |progress| reported.push(progress),
    )
    .await?;
    let first = app.checksums().await?;
    let second = app.rebuild_all().await?;
    assert_eq!(first, live);
    assert_eq!(second, first);
    assert_eq!(report.checkpoint, app.log.last_sequence().await?);
    assert!(reported.len() > 1, "progress is reported per batch");
    assert!(
        reported
            .windows(2)
            .all(|pair| pair[0].applied_through <= pair[1].applied_through)
    );

    // The live projector continues from the rebuilt checkpoint after the swap.
    app.workload.append_visits(&app.log, 80..100, 8).await?;
    drain(&mut projector).await?;
    assert_eq!(app.live_checkpoint().await?, app.log.last_sequence().await?);
    let continued = app.checksums().await?;
    assert_eq!(app.rebuild_all().await?, continued);
    app.env.cleanup().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuilding_one_chain_replaces_only_that_chains_rows() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let other = Workload::new();
    other.seed_directory(&app.env.db).await?;
    other.publish_rules(&app.log).await?;
    other.record_directory(&app.log).await?;
    app.workload.append_visits(&app.log, 0..30, 8).await?;
    other.append_visits(&app.log, 0..30, 8).await?;
    let mut projector = app.projector()?;
    drain(&mut projector).await?;
    let before = app.checksums().await?;
    let chain = app.workload.chain;

    // Damage the chain's rows the way a projection bug would; the other chain's rows are the
    // control group.
    sqlx::query("UPDATE read_models.sessions SET status = 'damaged' WHERE chain_id = $1")
        .bind(chain.as_uuid())
        .execute(&app.env.db)
        .await?;
    sqlx::query("DELETE FROM read_models.claim_lines WHERE chain_id = $1")
        .bind(chain.as_uuid())
        .execute(&app.env.db)
        .await?;
    let other_before =
        read_model_checksums(&app.env.db, LIVE_SCHEMA, Some(other.chain.as_uuid())).await?;
    assert_ne!(app.checksums().await?, before);

    rebuild(
        &app.log,
        &app.env.db,
        &test_config(),
        Some(chain),
        &mut |_| {},
    )
    .await?;
    assert_eq!(app.checksums().await?, before);
    assert_eq!(
        read_model_checksums(&app.env.db, LIVE_SCHEMA, Some(other.chain.as_uuid())).await?,
        other_before
    );
    assert_eq!(app.live_checkpoint().await?, app.log.last_sequence().await?);
    app.env.cleanup().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_swaps_in_while_the_live_projector_runs_and_appends_continue()
-> anyhow::Result<()> {
    let app = spawn_app().await?;
    app.workload.append_visits(&app.log, 0..60, 16).await?;
    let projector = app.projector()?;
    let shutdown = CancellationToken::new();
    let live = tokio::spawn(projector.run(shutdown.clone()));

    let config = test_config();
    let mut ignore_progress = |_| {};
    let (appended, rebuilt) = tokio::join!(
        app.workload.append_visits(&app.log, 60..140, 8),
        rebuild(&app.log, &app.env.db, &config, None, &mut ignore_progress),
    );
    appended?;
    rebuilt?;

    // The live projector keeps going after the swap until it has applied the whole log.
    let last = app.log.last_sequence().await?;
    let caught_up = async {
        while app.live_checkpoint().await? < last {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(Duration::from_secs(60), caught_up).await??;
    shutdown.cancel();
    live.await??;

    let served = app.checksums().await?;
    assert_eq!(app.rebuild_all().await?, served);
    app.env.cleanup().await
}
