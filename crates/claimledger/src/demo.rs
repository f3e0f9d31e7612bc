//! `claimledger demo`: the end-to-end run a new user starts with. It publishes the repository's
//! payer rules to the log, starts the sessions API in-process, records a synthetic chain's visits
//! through the public HTTP API, lets the projector catch up, and prints the draft claims' charges by
//! payer and code from the read models.
//!
//! The workload is seeded and deterministic: the same flags record the same visits (only the ids and
//! the dates, which are relative to today, differ between runs). Each run creates a new chain, so runs
//! never disturb each other.

mod api;
mod workload;

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use claimledger_events::UtcMicros;
use claimledger_log::EventLog;
use claimledger_payer_rules::load_dir;
use claimledger_payer_rules::publish::publish;
use claimledger_projector::{Outcome, Projector, ProjectorConfig};
use claimledger_sessions_api::auth::bootstrap_chain;
use claimledger_sessions_api::config::Settings;
use claimledger_sessions_api::startup::Application;
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio_util::sync::CancellationToken;

use self::api::Api;

/// Arguments of `claimledger demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Clinics in the synthetic chain.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub clinics: u32,
    /// Days of history to record, ending yesterday.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=366))]
    pub days: u32,
    /// Booked visits per clinic per day (at most 8: two therapists, four two-hour slots each).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=8))]
    pub visits_per_day: u32,
    /// Seed of the workload generator.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// The payer rules to publish (one TOML file per payer).
    #[arg(long, env = "CLAIMLEDGER_RULES_DIR", default_value = "rules")]
    pub rules_dir: PathBuf,
    /// Keep the sessions API serving after the report, until Ctrl-C.
    #[arg(long)]
    pub keep_serving: bool,
}

/// Runs the demo.
pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    tokio::runtime::Runtime::new()?.block_on(demo(args))
}

async fn demo(args: &DemoArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let settings = Settings::from_env().context("reading the settings (NATS_URL, DATABASE_URL)")?;
    let pool = PgPoolOptions::new()
        .max_connections(settings.database.max_connections)
        .connect_with(settings.database.connect_options()?)
        .await
        .context("connecting to PostgreSQL")?;
    sqlx::migrate!("../../migrations")
        .run(&pool)
        .await
        .context("migrating the database")?;
    let client = async_nats::connect(&settings.nats_url)
        .await
        .with_context(|| format!("connecting to NATS at {}", settings.nats_url))?;
    let log = EventLog::connect(client, settings.log.clone())
        .await
        .context("opening the event log")?;

    let rules = load_dir(&args.rules_dir)
        .with_context(|| format!("loading the payer rules in {}", args.rules_dir.display()))?;
    let (chain, admin) = bootstrap_chain(&pool, &format!("Demo chain (seed {})", args.seed))
        .await
        .context("creating the demo chain")?;
    let published = publish(
        &log,
        chain,
        &rules,
        UtcMicros(Utc::now().timestamp_micros()),
    )
    .await
    .context("publishing the payer rules")?;
    writeln!(
        out,
        "chain {chain}: published {} payer rules versions to the log",
        published.appended.len()
    )?;

    let application = Application::build_with(settings.clone(), pool.clone(), log.clone())
        .await
        .context("starting the sessions API")?;
    let base_url = format!("http://127.0.0.1:{}", application.port());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(application.run_until_stopped(shutdown.clone()));
    let api = Api {
        http: reqwest::Client::new(),
        base_url: base_url.clone(),
        key: admin.secret,
    };

    // Reference data is an admin's job; visits are recorded by the front desk, with its own key.
    let front_desk_key = api
        .post(
            "/v1/api-keys",
            &json!({"role": "front_desk", "label": "demo front desk"}),
        )
        .await?["key"]
        .as_str()
        .context("the API returned no key")?
        .to_owned();
    let front_desk = Api {
        http: api.http.clone(),
        base_url: base_url.clone(),
        key: front_desk_key,
    };

    let payer_keys: Vec<String> = rules.payer_ids().into_iter().map(str::to_owned).collect();
    let started = Instant::now();
    let recorded = workload::record_chain(&api, &front_desk, args, &payer_keys).await?;
    let recording = started.elapsed();
    writeln!(
        out,
        "recorded {} visits ({} completed, of which {} amended and {} with late notes; {} cancelled, {} no-shows) in {} HTTP requests, {:.1} s ({:.0} requests/s)",
        recorded.visits,
        recorded.completed,
        recorded.amended,
        recorded.late_notes,
        recorded.cancelled,
        recorded.no_shows,
        recorded.requests,
        recording.as_secs_f64(),
        recorded.requests as f64 / recording.as_secs_f64()
    )?;

    let started = Instant::now();
    let applied = catch_up(log.clone(), pool.clone(), &args.rules_dir).await?;
    writeln!(
        out,
        "projector caught up: {applied} log positions applied in {:.1} s",
        started.elapsed().as_secs_f64()
    )?;

    print_report(&mut out, &pool, chain.as_uuid()).await?;
    writeln!(out)?;
    writeln!(out, "Where to look:")?;
    writeln!(
        out,
        "  sessions API    {base_url}/openapi.json (stopped when the demo ends; --keep-serving keeps it)"
    )?;
    writeln!(
        out,
        "  read models     psql \"$DATABASE_URL\" -c 'SELECT * FROM read_models.claims WHERE chain_id = '\\''{chain}'\\'' LIMIT 5'"
    )?;
    writeln!(
        out,
        "  the projector   claimledger projector run  (health and metrics on 127.0.0.1:9464)"
    )?;
    drop(out);

    if args.keep_serving {
        crate::shutdown::signal().await;
    }
    shutdown.cancel();
    server.await??;
    Ok(())
}

/// Drives the projector step by step until it has applied everything on the log.
async fn catch_up(log: EventLog, pool: PgPool, rules_dir: &std::path::Path) -> anyhow::Result<u64> {
    let mut projector = Projector::build(log, pool, ProjectorConfig::live(rules_dir.to_owned()))?;
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut applied = 0;
    loop {
        match projector.process_next_batch().await? {
            Outcome::Applied(count) => applied += count,
            Outcome::Idle => return Ok(applied),
        }
        if Instant::now() > deadline {
            bail!("the projector did not catch up within 10 minutes ({applied} positions applied)");
        }
    }
}

/// Prints the draft claims' charges by payer and code for the chain, from the read models.
async fn print_report(
    out: &mut impl Write,
    pool: &PgPool,
    chain: uuid::Uuid,
) -> anyhow::Result<()> {
    let rows: Vec<(Option<String>, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT c.payer_key, l.code, count(DISTINCT l.session_id), sum(l.units)::bigint, sum(l.charge_cents)::bigint
         FROM read_models.claims c
         JOIN read_models.claim_lines l USING (chain_id, session_id, payer_id)
         WHERE c.chain_id = $1
         GROUP BY c.payer_key, l.code
         ORDER BY c.payer_key, l.code",
    )
    .bind(chain)
    .fetch_all(pool)
    .await
    .context("reading the claims")?;
    let (claims, not_derived): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE derivation_error IS NOT NULL)
         FROM read_models.claims WHERE chain_id = $1",
    )
    .bind(chain)
    .fetch_one(pool)
    .await?;

    writeln!(out)?;
    writeln!(
        out,
        "Draft claims: {claims} ({not_derived} could not be derived). Charges by payer and code (at the payer's\nfee schedule; a code the payer does not list is charged at a stand-in price and flagged by the scrubber):"
    )?;
    writeln!(
        out,
        "{:<24} {:<6} {:>7} {:>7} {:>14} {:>12}",
        "payer", "code", "claims", "units", "charged", "per unit"
    )?;
    for (payer, code, sessions, units, cents) in rows {
        let per_unit = if units > 0 { cents / units } else { 0 };
        writeln!(
            out,
            "{:<24} {:<6} {:>7} {:>7} {:>14} {:>12}",
            payer.unwrap_or_else(|| "(no rules)".to_owned()),
            code,
            sessions,
            units,
            dollars(cents),
            dollars(per_unit)
        )?;
    }
    Ok(())
}

/// Cents as dollars for display, e.g. `$1,234.56`.
fn dollars(cents: i64) -> String {
    let whole = (cents / 100).to_string();
    let mut grouped = String::new();
    for (index, digit) in whole.chars().enumerate() {
        if index > 0 && (whole.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    format!("${grouped}.{:02}", cents % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_group_thousands_and_keep_cents() {
        assert_eq!(dollars(0), "$0.00");
        assert_eq!(dollars(2_976), "$29.76");
        assert_eq!(dollars(123_456_789), "$1,234,567.89");
    }
}
