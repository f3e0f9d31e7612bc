//! `cargo bench -p claimledger-reporting --bench rollups`: chain-wide report questions over a year
//! of a 500-clinic chain, answered from the monthly rollups and from the claim lines (plain GROUP
//! BY over the same data), in the same run, through the same chain-scoped (row-level security)
//! transactions the service uses. Prints p50/p95 of both and the ratio. Target: rollups ≤ 50 ms p95.
//!
//! A private database is created, migrated, filled with COPY from a seeded generator and dropped.
//! Knobs: `BENCH_CLINICS` (500), `BENCH_DAYS` (365), `BENCH_CLAIMS_PER_CLINIC_DAY` (4),
//! `BENCH_ITERATIONS` (15), `BENCH_SEED` (2026), `DATABASE_URL` (a role that may create databases).

use integration_tests::read_model_fixture as fixture;

use std::io::Write;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::NaiveDate;
use claimledger_reporting::config::DEFAULT_DATABASE_URL;
use claimledger_reporting::filter::{Dimension, ReportFilter, Source};
use claimledger_reporting::reimbursement::ReportQuery;
use claimledger_reporting::reports::Reports;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};
use uuid::Uuid;

fn knob(name: &str, default: u64) -> anyhow::Result<u64> {
    match std::env::var(name) {
        Ok(text) => text.parse().with_context(|| format!("{name}={text:?}")),
        Err(_) => Ok(default),
    }
}

fn percentile(samples: &[Duration], fraction: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// One chain-wide question.
struct Question {
    name: &'static str,
    group_by: Vec<Dimension>,
    denials: bool,
}

async fn time_question(
    reports: &Reports,
    chain: Uuid,
    filter: &ReportFilter,
    question: &Question,
    source: Source,
    iterations: u64,
) -> anyhow::Result<(Vec<Duration>, usize)> {
    let query = ReportQuery {
        filter: filter.clone(),
        group_by: question.group_by.clone(),
        source,
    };
    let mut samples = Vec::new();
    let mut rows = 0;
    // One unmeasured run warms the cache for both sources alike.
    for iteration in 0..=iterations {
        let started = Instant::now();
        rows = if question.denials {
            reports.denial_reasons(chain, &query, 5).await?.rows.len()
        } else {
            reports.reimbursement(chain, &query).await?.rows.len()
        };
        if iteration > 0 {
            samples.push(started.elapsed());
        }
    }
    Ok((samples, rows))
}

async fn run(out: &mut impl Write) -> anyhow::Result<()> {
    let clinics = knob("BENCH_CLINICS", 500)?;
    let days = knob("BENCH_DAYS", 365)?;
    let per_day = knob("BENCH_CLAIMS_PER_CLINIC_DAY", 4)?;
    let iterations = knob("BENCH_ITERATIONS", 15)?.max(1);
    let seed = knob("BENCH_SEED", 2026)?;
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
    let admin_options = PgConnectOptions::from_str(&url)?;
    let database = format!("bench_reporting_{}", Uuid::new_v4().simple());
    let mut admin = admin_options.connect().await?;
    sqlx::query(&format!(r#"CREATE DATABASE "{database}""#))
        .execute(&mut admin)
        .await?;
    let outcome = async {
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect_with(admin_options.clone().database(&database))
            .await?;
        sqlx::migrate!("../../migrations").run(&pool).await?;

        let start = NaiveDate::from_ymd_opt(2025, 1, 1).expect("a date");
        let started = Instant::now();
        #[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
        let data = fixture::generate(seed, clinics as usize, start, days as i64, per_day);
        data.write(&pool).await?;
        sqlx::query("ANALYZE").execute(&pool).await?;
        let rollup_rows: i64 =
            sqlx::query_scalar("SELECT count(*) FROM read_models.reimbursement_monthly")
                .fetch_one(&pool)
                .await?;
        writeln!(
            out,
            "reporting rollups bench: {clinics} clinics x {days} days x {per_day} claims/clinic/day \
             = {} claim lines, {rollup_rows} rollup rows (seed {seed}); loaded in {:.1} s; \
             {iterations} timed runs per question and source",
            data.lines.len(),
            started.elapsed().as_secs_f64()
        )?;

        let reports = Reports::new(pool.clone());
        let end = start + chrono::Duration::days(i64::try_from(days)? - 1);
        let filter = ReportFilter::new(start, fixture_month_end(end))?;
        let questions = [
            Question { name: "by code x payer", group_by: vec![Dimension::Code, Dimension::Payer], denials: false },
            Question { name: "by clinic", group_by: vec![Dimension::Clinic], denials: false },
            Question { name: "by month x code", group_by: vec![Dimension::Code, Dimension::Month], denials: false },
            Question { name: "denial reasons by payer", group_by: vec![Dimension::Payer], denials: true },
        ];
        writeln!(
            out,
            "{:<24} {:>6} {:>12} {:>12} {:>12} {:>12} {:>9}",
            "question", "rows", "rollups p50", "rollups p95", "lines p50", "lines p95", "p50 ratio"
        )?;
        let mut worst_rollup_p95 = Duration::ZERO;
        for question in &questions {
            let (rollups, rows) =
                time_question(&reports, data.chain, &filter, question, Source::Rollups, iterations).await?;
            let (lines, line_rows) =
                time_question(&reports, data.chain, &filter, question, Source::Lines, iterations).await?;
            anyhow::ensure!(rows == line_rows, "{}: rollups and lines disagree", question.name);
            let (rollup_p50, rollup_p95) = (percentile(&rollups, 0.5), percentile(&rollups, 0.95));
            let (line_p50, line_p95) = (percentile(&lines, 0.5), percentile(&lines, 0.95));
            worst_rollup_p95 = worst_rollup_p95.max(rollup_p95);
            writeln!(
                out,
                "{:<24} {:>6} {:>9.1} ms {:>9.1} ms {:>9.1} ms {:>9.1} ms {:>8.1}x",
                question.name,
                rows,
                millis(rollup_p50),
                millis(rollup_p95),
                millis(line_p50),
                millis(line_p95),
                millis(line_p50) / millis(rollup_p50)
            )?;
        }
        writeln!(
            out,
            "worst rollups p95: {:.1} ms (target <= 50 ms: {})",
            millis(worst_rollup_p95),
            if worst_rollup_p95 <= Duration::from_millis(50) { "met" } else { "NOT met" }
        )?;
        pool.close().await;
        anyhow::Ok(())
    }
    .await;
    sqlx::query(&format!(
        r#"DROP DATABASE IF EXISTS "{database}" WITH (FORCE)"#
    ))
    .execute(&mut admin)
    .await?;
    admin.close().await?;
    outcome
}

/// The last day of `date`'s month, so the range is whole months (the rollups' grain).
fn fixture_month_end(date: NaiveDate) -> NaiveDate {
    claimledger_reporting::filter::last_of_month(date)
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let mut out = std::io::stdout().lock();
    runtime.block_on(run(&mut out))
}
