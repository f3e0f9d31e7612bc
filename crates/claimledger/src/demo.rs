//! `claimledger demo`: the end-to-end run a new user starts with. It publishes the repository's
//! payer rules to the log, starts the sessions API in-process, records a synthetic chain's visits
//! through the public HTTP API, lets the projector catch up, and prints the draft claims' charges by
//! payer and code from the read models.
//!
//! The workload is seeded and deterministic: the same flags record the same visits (only the ids and
//! the dates, which are relative to today, differ between runs). Each run creates a new chain, so runs
//! never disturb each other.

mod api;
mod billing;
#[cfg(test)]
mod tests;
mod workload;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use claimledger_events::UtcMicros;
use claimledger_log::EventLog;
use claimledger_payer_rules::load_dir;
use claimledger_payer_rules::publish::publish;
use claimledger_payer_rules::service::{DEFAULT_SUBJECT_PREFIX, PayerRulesService, ServiceConfig};
use claimledger_projector::{Outcome, Projector, ProjectorConfig};
use claimledger_sessions_api::auth::bootstrap_chain;
use claimledger_sessions_api::config::Settings;
use claimledger_sessions_api::startup::Application;
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::task::JoinSet;
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
    /// Requests in flight at once: days of clinics recorded, and claims billed, concurrently (each
    /// visit's and each claim's own requests stay in order).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub concurrency: u32,
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
    let log = EventLog::connect(client.clone(), settings.log.clone())
        .await
        .context("opening the event log")?;

    let rules = Arc::new(
        load_dir(&args.rules_dir)
            .with_context(|| format!("loading the payer rules in {}", args.rules_dir.display()))?,
    );
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
    // The payer-rules service answers code-acceptance questions over NATS for other systems; the
    // demo serves the same rules it published.
    let rules_service = PayerRulesService::start(
        &client,
        Arc::clone(&rules),
        &ServiceConfig::new(DEFAULT_SUBJECT_PREFIX),
    )
    .await
    .context("starting the payer-rules service")?;
    let rules_server =
        tokio::spawn(rules_service.run_until_stopped(shutdown.clone().cancelled_owned()));
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

    let analyst_key = api
        .post(
            "/v1/api-keys",
            &json!({"role": "analyst", "label": "demo analyst"}),
        )
        .await?["key"]
        .as_str()
        .context("the API returned no key")?
        .to_owned();

    let payer_keys: Vec<String> = rules.payer_ids().into_iter().map(str::to_owned).collect();
    let started = Instant::now();
    let recorded = workload::record_chain(
        &api,
        &front_desk,
        args,
        &payer_keys,
        Utc::now().date_naive(),
    )
    .await?;
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

    // The billing office works the derived claims; simulated payers answer with remittances.
    let billing_key = api
        .post(
            "/v1/api-keys",
            &json!({"role": "billing", "label": "demo billing office"}),
        )
        .await?["key"]
        .as_str()
        .context("the API returned no key")?
        .to_owned();
    let billing = Api {
        http: api.http.clone(),
        base_url: base_url.clone(),
        key: billing_key,
    };
    let started = Instant::now();
    let billed = billing::bill_chain(
        billing,
        &pool,
        chain.as_uuid(),
        Arc::clone(&rules),
        args.seed,
        args.concurrency,
        billing::DRAFTS_PER_PAGE,
    )
    .await?;
    writeln!(
        out,
        "billed {} claims: {} paid, {} denied, {} resubmitted with the other code ({} then paid), {} with denied lines written off; {} HTTP requests, {:.1} s",
        billed.submitted,
        billed.paid,
        billed.denied,
        billed.resubmitted,
        billed.paid_after_resubmission,
        billed.written_off,
        billed.requests,
        started.elapsed().as_secs_f64()
    )?;
    let applied = catch_up(log.clone(), pool.clone(), &args.rules_dir).await?;
    writeln!(
        out,
        "projector caught up with the remittances: {applied} log positions applied"
    )?;

    let reporting_settings = claimledger_reporting::config::Settings::from_env()
        .context("reading the reporting settings")?;
    let reporting =
        claimledger_reporting::startup::Application::build_with(reporting_settings, pool.clone())
            .await
            .context("starting the reporting service")?;
    let reporting_url = format!("http://127.0.0.1:{}", reporting.port());
    let reporting_server = tokio::spawn(reporting.run_until_stopped(shutdown.clone()));

    print_report(&mut out, &pool, chain.as_uuid()).await?;
    writeln!(out)?;
    writeln!(
        out,
        "Where to look (an analyst key for the chain: {analyst_key}):"
    )?;
    writeln!(
        out,
        "  charts          {reporting_url}/charts#key={analyst_key}"
    )?;
    writeln!(
        out,
        "  reporting API   {reporting_url}/openapi.json, e.g. curl -H 'Authorization: Bearer {analyst_key}' '{reporting_url}/v1/reports/reimbursement?group_by=code,payer&format=csv'"
    )?;
    writeln!(out, "  sessions API    {base_url}/openapi.json")?;
    writeln!(
        out,
        "  payer rules     NATS service 'payer-rules' on {DEFAULT_SUBJECT_PREFIX}.* (contract: proto/payer_rules.proto; discovery: $SRV.INFO.payer-rules)"
    )?;
    writeln!(
        out,
        "  the terminal    claimledger report best-code --chain {chain}"
    )?;
    writeln!(
        out,
        "  the projector   claimledger projector run  (health and metrics on 127.0.0.1:9464)"
    )?;
    if !args.keep_serving {
        writeln!(
            out,
            "  (the APIs stop when the demo ends; run with --keep-serving to keep them up until Ctrl-C)"
        )?;
    }
    drop(out);

    if args.keep_serving {
        crate::shutdown::signal().await;
    }
    shutdown.cancel();
    server.await??;
    reporting_server.await??;
    rules_server.await??;
    Ok(())
}

/// Runs `work` on every item with at most `concurrency` items in flight, each on its own task, and
/// returns the results (in completion order). The first failure stops the rest.
async fn in_parallel<Item, Work, Fut, Output>(
    concurrency: usize,
    items: Vec<Item>,
    work: Work,
) -> anyhow::Result<Vec<Output>>
where
    Work: Fn(Item) -> Fut,
    Fut: Future<Output = anyhow::Result<Output>> + Send + 'static,
    Output: Send + 'static,
{
    let mut items = items.into_iter();
    let mut running = JoinSet::new();
    let mut outputs = Vec::with_capacity(items.len());
    for item in items.by_ref().take(concurrency.max(1)) {
        running.spawn(work(item));
    }
    // Dropping the set on an early return aborts the tasks still running.
    while let Some(finished) = running.join_next().await {
        outputs.push(finished.context("a demo task panicked")??);
        if let Some(item) = items.next() {
            running.spawn(work(item));
        }
    }
    Ok(outputs)
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

/// Prints what the chain was paid per payer and code, and which code pays best per payer, through
/// the reporting service's query layer (row-level security on the chain, as the API does).
async fn print_report(
    out: &mut impl Write,
    pool: &PgPool,
    chain: uuid::Uuid,
) -> anyhow::Result<()> {
    use claimledger_reporting::filter::{Dimension, ReportFilter, Source};
    use claimledger_reporting::insights::Thresholds;
    use claimledger_reporting::reimbursement::ReportQuery;
    use claimledger_reporting::reports::Reports;
    use claimledger_reporting::table::Table;

    let reports = Reports::new(pool.clone());
    let filter = ReportFilter::last_year(Utc::now().date_naive());
    let reimbursement = reports
        .reimbursement(
            chain,
            &ReportQuery {
                filter: filter.clone(),
                group_by: vec![Dimension::Payer, Dimension::Code],
                source: Source::Rollups,
            },
        )
        .await
        .context("reading the reimbursement report")?;
    writeln!(out)?;
    writeln!(out, "Reimbursement by payer and code (last 12 months):")?;
    write!(out, "{}", Table::from(&reimbursement).to_text())?;
    let best = reports
        .best_code(chain, &filter, Source::Rollups, Thresholds::default())
        .await
        .context("reading the best code per payer")?;
    writeln!(out)?;
    writeln!(out, "Which code pays best, per payer (observed payments):")?;
    write!(out, "{}", Table::from(&best).to_text())?;
    Ok(())
}
