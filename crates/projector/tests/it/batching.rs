//! How batches write: session rows are COPYed (a session a batch continues has its stored row
//! deleted first), a row taken for new that exists after all sends the batch down the upsert path,
//! and the tables do not depend on which path a row took or where batches were cut.

use anyhow::Context as _;
use claimledger_events::Event;
use claimledger_projector::rebuild::rebuild;
use claimledger_projector::{LIVE_SCHEMA, Projector};
use integration_tests::commits::{commit_for, scheduled};

use crate::helpers::{drain, spawn_app, test_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_commit_batches_and_one_big_batch_give_the_same_tables() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    app.workload.append_visits(&app.log, 0..40, 8).await?;

    // One big batch: every session is new to it, so every row takes the COPY path.
    let mut config = test_config();
    config.max_batch_commits = 100_000;
    let mut big = Projector::build(app.log.clone(), app.env.db.clone(), config)?;
    drain(&mut big).await?;
    let copied = app.checksums().await?;
    assert!(
        copied["sessions"].rows == 40 && copied["claim_lines"].rows > 0,
        "the workload projects sessions and claim lines: {copied:?}"
    );
    drop(big);

    // One commit per batch, into fresh tables: after its first commit every session continues
    // a stored row, so its final row replaces a stored one (deleted, then COPYd).
    sqlx::query(&format!("DROP SCHEMA {LIVE_SCHEMA} CASCADE"))
        .execute(&app.env.db)
        .await?;
    sqlx::query("SELECT claimledger_create_read_models($1)")
        .bind(LIVE_SCHEMA)
        .execute(&app.env.db)
        .await?;
    sqlx::query("DELETE FROM projector_checkpoints")
        .execute(&app.env.db)
        .await?;
    let mut config = test_config();
    config.max_batch_commits = 1;
    let mut small = Projector::build(app.log.clone(), app.env.db.clone(), config)?;
    drain(&mut small).await?;
    assert_eq!(app.checksums().await?, copied);
    assert_eq!(
        small.metrics().snapshot().reapplied_total,
        0,
        "every continued session replaced its stored row without the upsert fallback"
    );
    app.env.cleanup().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_scheduled_twice_is_upserted_instead_of_copied() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let session = app.workload.session(0);
    let first = app
        .log
        .append(&session, 0, &commit_for(&session, vec![scheduled()]))
        .await?;
    let mut projector = app.projector()?;
    drain(&mut projector).await?;

    // The session domain never schedules a session twice, but the log cannot refuse it. The
    // batch takes the session for new (its first commit in the batch schedules it), its COPY
    // meets the stored row, and the batch is applied again with upserts.
    let second = app
        .log
        .append(
            &session,
            first.sequence,
            &commit_for(&session, vec![scheduled(), Event::CheckedIn]),
        )
        .await?;
    drain(&mut projector).await?;
    assert_eq!(app.live_checkpoint().await?, second.sequence);
    assert_eq!(projector.metrics().snapshot().reapplied_total, 1);
    let (rows, last_sequence, status): (i64, i64, String) = sqlx::query_as(&format!(
        "SELECT count(*) OVER (), last_sequence, status FROM {LIVE_SCHEMA}.sessions \
         WHERE session_id = $1"
    ))
    .bind(session.id.as_uuid())
    .fetch_one(&app.env.db)
    .await
    .context("reading the session row")?;
    assert_eq!(rows, 1);
    assert_eq!(last_sequence, i64::try_from(second.sequence)?);
    assert_eq!(status, "checked_in");
    let live = app.checksums().await?;

    // A rebuild one commit per batch meets the same conflict on its sequential path: the fold
    // consumed the batch, so the fallback reads its positions again from the log.
    let mut config = test_config();
    config.max_batch_commits = 1;
    rebuild(&app.log, &app.env.db, &config, None, &mut |_| {}).await?;
    assert_eq!(app.checksums().await?, live);
    app.env.cleanup().await
}
