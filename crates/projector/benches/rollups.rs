//! Rollup benchmark: how long the projector's write phase takes for one batch that changes a few
//! thousand claims, which is where the monthly rollups are written (`reimbursement_monthly`,
//! `denial_reasons_monthly` and the chain and clinic rollups).
//!
//! A chain of `BENCH_CLINICS` clinics (default 100) gets `BENCH_VISITS_PER_CLINIC` visits each
//! (default 30, spread over about 13 months, so most claims land on rollup rows of their own) and
//! the projector derives their claims. Then every derived claim is submitted, and the projector
//! applies the submissions in one batch; then each gets a remittance (paid, denied, or its first
//! line denied), applied in one batch. For both batches it prints the claims changed, the rollup
//! rows they touched and the batch's write phase, as the projector's phase metrics measure it;
//! at the end, whether the chain and clinic rollups equal the `GROUP BY` sums of
//! `reimbursement_monthly` and how many row triggers that table has.
//!
//! The same file runs unchanged on a tree from before migration 0012 (the row triggers), which is
//! how the before/after figures are taken.
//!
//! Uses the local NATS and PostgreSQL like the integration tests, with a stream and a database of
//! its own, deleted at the end.

use integration_tests::{claim_workload, workload};

use std::io::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use claimledger_projector::{LIVE_SCHEMA, Outcome, Projector, ProjectorConfig};
use integration_tests::TestEnv;

use crate::claim_workload::{
    Answer, another_clinic, append_visits_at, clinic_today, derived_claims, run_round,
};
use crate::workload::{Workload, rules_dir};

fn knob(name: &str, default: u64) -> anyhow::Result<u64> {
    match std::env::var(name) {
        Ok(text) => text.parse().with_context(|| format!("{name}={text:?}")),
        Err(_) => Ok(default),
    }
}

/// Applies batches until the projector is idle; returns the batches that applied something and
/// the seconds their write phases took.
async fn drain(projector: &mut Projector) -> anyhow::Result<(u32, f64)> {
    let metrics = projector.metrics();
    let before = metrics.snapshot().phases.write;
    let mut batches = 0;
    loop {
        match projector.process_next_batch().await? {
            Outcome::Applied(0) => {}
            Outcome::Applied(_) => batches += 1,
            Outcome::Idle => break,
        }
    }
    Ok((batches, metrics.snapshot().phases.write - before))
}

/// Rows in each rollup table of the live schema.
async fn rollup_rows(db: &sqlx::PgPool) -> anyhow::Result<String> {
    let mut counts = Vec::new();
    for table in [
        "reimbursement_monthly",
        "reimbursement_monthly_chain",
        "reimbursement_monthly_clinic",
        "denial_reasons_monthly",
    ] {
        let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {LIVE_SCHEMA}.{table}"))
            .fetch_one(db)
            .await?;
        counts.push(format!("{table} {rows}"));
    }
    Ok(counts.join(", "))
}

/// Whether the chain and clinic rollups are the `GROUP BY` sums of `reimbursement_monthly`, and
/// how many row triggers its table has (two before migration 0012, none after): so a run says
/// which way the rollups were written and that the figures are of correct tables.
async fn sums_check(db: &sqlx::PgPool) -> anyhow::Result<String> {
    let counters = "sum(billed_lines), sum(billed_units), sum(billed_cents), \
         sum(adjudicated_lines), sum(denied_lines), sum(allowed_cents), sum(paid_cents), \
         sum(paid_units), sum(patient_responsibility_cents), sum(paid_lines), \
         sum(days_to_payment_sum)";
    let mut equal = true;
    for (table, keys) in [
        (
            "reimbursement_monthly_chain",
            "chain_id, month, payer_id, code",
        ),
        ("reimbursement_monthly_clinic", "chain_id, month, clinic_id"),
    ] {
        let differing: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM ( \
                 (SELECT * FROM {LIVE_SCHEMA}.{table} \
                  EXCEPT SELECT {keys}, {counters} FROM {LIVE_SCHEMA}.reimbursement_monthly \
                  GROUP BY {keys}) \
                 UNION ALL \
                 (SELECT {keys}, {counters} FROM {LIVE_SCHEMA}.reimbursement_monthly \
                  GROUP BY {keys} EXCEPT SELECT * FROM {LIVE_SCHEMA}.{table})) differences"
        ))
        .fetch_one(db)
        .await?;
        equal &= differing == 0;
    }
    let triggers: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = to_regclass($1) AND NOT tgisinternal",
    )
    .bind(format!("{LIVE_SCHEMA}.reimbursement_monthly"))
    .fetch_one(db)
    .await?;
    Ok(format!(
        "row triggers on reimbursement_monthly: {triggers}; chain and clinic rollups equal the \
         GROUP BY sums of reimbursement_monthly: {equal}"
    ))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let clinics = knob("BENCH_CLINICS", 100)?;
    let visits_per_clinic = knob("BENCH_VISITS_PER_CLINIC", 30)?;
    let env = TestEnv::start().await?;
    let log = env.event_log().await?;
    let first = Workload::new();
    first.seed_directory(&env.db).await?;
    first.publish_rules(&log).await?;
    first.record_directory(&log).await?;
    let mut workloads = vec![first.clone()];
    for _ in 1..clinics {
        workloads.push(another_clinic(&log, &first).await?);
    }
    for (clinic, workload) in (0_u64..).zip(&workloads) {
        // Every 13th day (`Workload::visit_commits` dates visit i on day i mod 400).
        let indices = (0..visits_per_clinic).map(|visit| clinic * 100_000 + visit * 13);
        append_visits_at(&log, workload, indices, 16).await?;
    }

    let mut config = ProjectorConfig::live(rules_dir());
    config.max_batch_commits = 1_000_000;
    // Long enough that each step's commits, all on the log already, make one batch.
    config.max_batch_wait = Duration::from_secs(2);
    let mut projector = Projector::build(log.clone(), env.db.clone(), config)?;
    let started = Instant::now();
    drain(&mut projector).await?;
    let mut claims = derived_claims(&env.db, first.chain).await?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{} visits in {clinics} clinics projected in {:.1} s: {} claims derived",
        clinics * visits_per_clinic,
        started.elapsed().as_secs_f64(),
        claims.len()
    )?;

    let today = clinic_today(chrono::Utc::now());
    for step in ["submissions", "remittances"] {
        let changed = run_round(&log, &mut claims, 16, |index, claim| {
            Ok(Some(match step {
                "submissions" => claim.submit(),
                _ => claim.remittance(
                    match index % 4 {
                        0 => Answer::Denied,
                        1 => Answer::FirstLineDenied,
                        _ => Answer::Paid,
                    },
                    today,
                )?,
            }))
        })
        .await?;
        let (batches, write) = drain(&mut projector).await?;
        writeln!(
            out,
            "{step}: {changed} claims changed in {batches} batch(es), write phase {:.1} ms; \
             rows now: {}",
            write * 1000.0,
            rollup_rows(&env.db).await?
        )?;
    }
    writeln!(out, "{}", sums_check(&env.db).await?)?;
    env.cleanup().await
}
