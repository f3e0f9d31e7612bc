//! The chain rollup (month × payer × code) and the clinic rollup (month × clinic), written by the
//! projector from its per-batch deltas (migration 0012 dropped the row triggers that kept them),
//! are exactly the `GROUP BY` sums of `reimbursement_monthly`, with no zero rows: after every step
//! of a claim workload with submissions, remittances, resubmissions and write-offs, after a
//! rebuild, and whatever the batch size.

use anyhow::Context as _;
use chrono::NaiveDate;
use claimledger_claims::command::ClaimCommand;
use claimledger_projector::{LIVE_SCHEMA, Projector};
use sqlx::PgPool;

use crate::claim_workload::{
    Answer, ClaimOnLog, another_clinic, append_visits_at, clinic_today, derived_claims, run_round,
};
use crate::helpers::{Checksums, TestApp, drain, spawn_app, test_config};

/// The counters shared by `reimbursement_monthly` and both rollups, in table order.
const COUNTERS: &str = "billed_lines, billed_units, billed_cents, adjudicated_lines, denied_lines, \
     allowed_cents, paid_cents, paid_units, patient_responsibility_cents, paid_lines, \
     days_to_payment_sum";

/// A code no derived claim of the workload bills: claims resubmitted with it and then back give
/// rows that appear and fall to zero again.
const PASSING_CODE: &str = "97530";

/// A code some denied claims are resubmitted with for good.
const RESUBMITTED_CODE: &str = "97112";

/// The rows of `table` as text, in key order.
async fn rows(db: &PgPool, query: &str) -> anyhow::Result<Vec<String>> {
    sqlx::query_scalar(query)
        .fetch_all(db)
        .await
        .with_context(|| format!("running {query}"))
}

/// Asserts that both rollups of `schema` are the `GROUP BY` sums of its `reimbursement_monthly`,
/// row for row, and that no rollup table holds a row whose counters are all zero.
async fn assert_rollups_are_sums(db: &PgPool, schema: &str, when: &str) -> anyhow::Result<()> {
    let sums = COUNTERS
        .split(", ")
        .map(|column| format!("sum({column})::bigint"))
        .collect::<Vec<_>>()
        .join(", ");
    for (table, keys) in [
        (
            "reimbursement_monthly_chain",
            "chain_id, month, payer_id, code",
        ),
        ("reimbursement_monthly_clinic", "chain_id, month, clinic_id"),
    ] {
        let stored = rows(
            db,
            &format!("SELECT t::text FROM {schema}.{table} t ORDER BY {keys}"),
        )
        .await?;
        let summed = rows(
            db,
            &format!(
                "SELECT g::text FROM (SELECT {keys}, {sums} FROM {schema}.reimbursement_monthly \
                 GROUP BY {keys}) g ORDER BY {keys}"
            ),
        )
        .await?;
        assert_eq!(stored, summed, "{table} after {when}");
    }
    let all_zero = COUNTERS
        .split(", ")
        .map(|column| format!("{column} = 0"))
        .collect::<Vec<_>>()
        .join(" AND ");
    for (table, zero) in [
        ("reimbursement_monthly", all_zero.as_str()),
        ("reimbursement_monthly_chain", all_zero.as_str()),
        ("reimbursement_monthly_clinic", all_zero.as_str()),
        ("denial_reasons_monthly", "lines = 0 AND amount_cents = 0"),
    ] {
        let zero_rows: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {schema}.{table} WHERE {zero}"
        ))
        .fetch_one(db)
        .await?;
        assert_eq!(zero_rows, 0, "zero rows in {table} after {when}");
    }
    Ok(())
}

/// How many rows of the live chain rollup bill `code`.
async fn chain_rows_with_code(db: &PgPool, code: &str) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {LIVE_SCHEMA}.reimbursement_monthly_chain WHERE code = $1"
    ))
    .bind(code)
    .fetch_one(db)
    .await?)
}

/// Visits in two clinics of one chain, projected into draft claims; returns the derived claims.
async fn two_clinics_with_claims(app: &TestApp) -> anyhow::Result<Vec<ClaimOnLog>> {
    let second = another_clinic(&app.log, &app.workload).await?;
    append_visits_at(&app.log, &app.workload, 0..42, 8).await?;
    append_visits_at(&app.log, &second, 1000..1042, 8).await?;
    let mut projector = app.projector()?;
    drain(&mut projector).await?;
    let claims = derived_claims(&app.env.db, app.workload.chain).await?;
    assert!(claims.len() > 40, "{} claims derived", claims.len());
    assert!(
        claims
            .iter()
            .flat_map(|claim| &claim.derived)
            .all(|line| line.code != PASSING_CODE && line.code != RESUBMITTED_CODE),
        "the workload's derived lines never bill the codes resubmissions use"
    );
    Ok(claims)
}

/// Drives every claim through its lifecycle in rounds, the projector catching up after each, and
/// checks the rollups after every round. The `i`-th claim in session order follows script `i % 7`:
/// 0 stays a draft; 1 is submitted; 2 is paid; 3 is denied, resubmitted with another code and
/// paid; 4 is denied and written off; 5 has its first line denied, then a corrected remittance
/// pays it and the rest is written off; 6 is denied, resubmitted with [`PASSING_CODE`], denied
/// again, resubmitted with its derived lines and paid (its `PASSING_CODE` rows fall to zero).
async fn run_lifecycles(
    app: &TestApp,
    claims: &mut [ClaimOnLog],
    projector: &mut Projector,
) -> anyhow::Result<()> {
    type Step = fn(usize, &ClaimOnLog, NaiveDate) -> anyhow::Result<Option<ClaimCommand>>;
    let today = clinic_today(chrono::Utc::now());
    let rounds: [(&str, Step); 6] = [
        ("submissions", |_, claim, _| Ok(Some(claim.submit()))),
        ("first remittances", |script, claim, today| match script {
            2 => claim.remittance(Answer::Paid, today).map(Some),
            3 | 4 | 6 => claim.remittance(Answer::Denied, today).map(Some),
            5 => claim.remittance(Answer::FirstLineDenied, today).map(Some),
            _ => Ok(None),
        }),
        (
            "resubmissions and write-offs",
            |script, claim, today| match script {
                3 => claim.resubmit_as(RESUBMITTED_CODE).map(Some),
                4 => Ok(Some(claim.write_off_balance())),
                5 => claim.remittance(Answer::Paid, today).map(Some),
                6 => claim.resubmit_as(PASSING_CODE).map(Some),
                _ => Ok(None),
            },
        ),
        (
            "answers to resubmissions",
            |script, claim, today| match script {
                3 => claim.remittance(Answer::Paid, today).map(Some),
                5 => Ok(Some(claim.write_off_balance())),
                6 => claim.remittance(Answer::Denied, today).map(Some),
                _ => Ok(None),
            },
        ),
        ("second resubmissions", |script, claim, _| match script {
            6 => Ok(Some(claim.resubmit_derived())),
            _ => Ok(None),
        }),
        ("last remittances", |script, claim, today| match script {
            6 => claim.remittance(Answer::Paid, today).map(Some),
            _ => Ok(None),
        }),
    ];
    for (round, (name, step)) in rounds.into_iter().enumerate() {
        let appended = run_round(&app.log, claims, 8, |index, claim| match index % 7 {
            0 => Ok(None),
            script => step(script, claim, today),
        })
        .await?;
        assert!(appended > 0, "round {name} appends commits");
        drain(projector).await?;
        assert_rollups_are_sums(&app.env.db, LIVE_SCHEMA, name).await?;
        // The passing code's rows exist between its resubmission and the return to the derived
        // lines, and are gone (fell to zero and deleted) afterwards.
        let passing = chain_rows_with_code(&app.env.db, PASSING_CODE).await?;
        match round {
            2 | 3 => assert!(passing > 0, "{PASSING_CODE} rows after {name}"),
            4 | 5 => assert_eq!(passing, 0, "{PASSING_CODE} rows after {name}"),
            _ => {}
        }
    }
    assert!(chain_rows_with_code(&app.env.db, RESUBMITTED_CODE).await? > 0);
    Ok(())
}

/// Drops the live read models and projects the whole log again with batches of at most
/// `max_batch_commits`.
async fn project_afresh(app: &TestApp, max_batch_commits: usize) -> anyhow::Result<Checksums> {
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
    config.max_batch_commits = max_batch_commits;
    let mut projector = Projector::build(app.log.clone(), app.env.db.clone(), config)?;
    drain(&mut projector).await?;
    assert_rollups_are_sums(
        &app.env.db,
        LIVE_SCHEMA,
        &format!("projecting afresh in batches of {max_batch_commits}"),
    )
    .await?;
    app.checksums().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_and_clinic_rollups_are_the_sums_of_the_monthly_rollup_live_rebuilt_and_in_any_batches()
-> anyhow::Result<()> {
    let app = spawn_app().await?;
    let mut claims = two_clinics_with_claims(&app).await?;
    let mut projector = app.projector()?;
    run_lifecycles(&app, &mut claims, &mut projector).await?;
    drop(projector);

    let live = app.checksums().await?;
    for table in [
        "reimbursement_monthly",
        "denial_reasons_monthly",
        "reimbursement_monthly_chain",
        "reimbursement_monthly_clinic",
    ] {
        assert!(live[table].rows > 0, "{table} is empty: {live:?}");
    }
    let clinics: i64 = sqlx::query_scalar(&format!(
        "SELECT count(DISTINCT clinic_id) FROM {LIVE_SCHEMA}.reimbursement_monthly_clinic"
    ))
    .fetch_one(&app.env.db)
    .await?;
    assert_eq!(clinics, 2, "the clinic rollup covers both clinics");

    // No row trigger is left on the monthly rollup, neither in the live schema (migrated) nor in
    // a schema a rebuild creates (parts 0010 and 0011 create the triggers, part 0012 drops them).
    let rebuilt = app.rebuild_all().await?;
    let triggers: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_trigger \
         WHERE tgrelid = to_regclass($1) AND NOT tgisinternal",
    )
    .bind(format!("{LIVE_SCHEMA}.reimbursement_monthly"))
    .fetch_one(&app.env.db)
    .await?;
    assert_eq!(
        triggers, 0,
        "triggers on reimbursement_monthly after a rebuild"
    );
    assert_rollups_are_sums(&app.env.db, LIVE_SCHEMA, "a rebuild").await?;
    assert_eq!(rebuilt, live, "a rebuild gives the live tables");

    // One commit per batch: every claim step lands in its own batch, so rows fall to zero in
    // one batch and are deleted there. One batch for the whole log: the deltas of a claim's
    // whole life are summed before anything is written.
    assert_eq!(
        project_afresh(&app, 1).await?,
        live,
        "batches of one commit"
    );
    assert_eq!(project_afresh(&app, 100_000).await?, live, "one batch");
    app.env.cleanup().await
}
