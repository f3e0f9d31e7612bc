//! `claimledger projector run` and `claimledger projector rebuild [--chain <id>]`: the projector that
//! keeps the PostgreSQL read models, and the operator command that rebuilds them from the log while
//! the live tables keep serving.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use claimledger_events::ChainId;
use claimledger_log::EventLog;
use claimledger_projector::rebuild::{RebuildProgress, rebuild};
use claimledger_projector::{Projector, ProjectorConfig};
use indicatif::{ProgressBar, ProgressStyle};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio_util::sync::CancellationToken;

use crate::log_args::LogArgs;

/// Arguments of `claimledger projector`.
#[derive(Debug, clap::Args)]
pub struct ProjectorArgs {
    #[command(subcommand)]
    pub command: ProjectorCommand,
}

/// `claimledger projector` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ProjectorCommand {
    /// Follows the log and keeps the read models until Ctrl-C or SIGTERM, with a health and
    /// metrics endpoint.
    Run(RunArgs),
    /// Replays the log into fresh tables while the live ones keep serving, then swaps them in.
    Rebuild(RebuildArgs),
}

/// Where the log, the database and the reference rules are.
#[derive(Debug, clap::Args)]
pub struct ConnectionArgs {
    #[command(flatten)]
    pub log: LogArgs,
    /// The PostgreSQL database holding the read models (already migrated).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://claimledger:claimledger@127.0.0.1:5432/claimledger"
    )]
    pub database_url: String,
    /// The rules directory; its `reference/` tables (NCCI, MUE, always-therapy) are read at start.
    #[arg(long, env = "CLAIMLEDGER_RULES_DIR", default_value = "rules")]
    pub rules_dir: PathBuf,
    /// The most commits applied in one transaction.
    #[arg(long, default_value_t = 10_000)]
    pub batch_commits: usize,
}

/// Arguments of `claimledger projector run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// Where `GET /health` (liveness), `GET /ready` (readiness) and `GET /metrics` are served.
    #[arg(
        long,
        env = "CLAIMLEDGER_PROJECTOR_HTTP",
        default_value = "127.0.0.1:9464"
    )]
    pub http_addr: SocketAddr,
}

/// Arguments of `claimledger projector rebuild`.
#[derive(Debug, clap::Args)]
pub struct RebuildArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// Rebuild only this chain's rows (the other chains' rows are left as they are).
    #[arg(long, value_parser = parse_chain)]
    pub chain: Option<ChainId>,
}

fn parse_chain(value: &str) -> Result<ChainId, String> {
    uuid::Uuid::parse_str(value)
        .map(ChainId::from)
        .map_err(|error| format!("--chain must be a UUID: {error}"))
}

/// Runs a `claimledger projector` subcommand.
pub fn run(args: &ProjectorArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    match &args.command {
        ProjectorCommand::Run(args) => runtime.block_on(run_projector(args)),
        ProjectorCommand::Rebuild(args) => runtime.block_on(run_rebuild(args)),
    }
}

async fn connect(
    args: &ConnectionArgs,
    log: EventLog,
) -> anyhow::Result<(EventLog, PgPool, ProjectorConfig)> {
    // Lazy: the projector starts, and waits, while PostgreSQL is still coming up.
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy(&args.database_url)
        .context("parsing DATABASE_URL")?;
    let mut config = ProjectorConfig::live(args.rules_dir.clone());
    config.max_batch_commits = args.batch_commits;
    Ok((log, pool, config))
}

async fn run_projector(args: &RunArgs) -> anyhow::Result<()> {
    let (log, pool, config) = connect(&args.connection, args.connection.log.open().await?).await?;
    let projector = Projector::build(log, pool, config)?;
    let listener = tokio::net::TcpListener::bind(args.http_addr)
        .await
        .with_context(|| format!("binding {}", args.http_addr))?;
    tracing::info!(http = %args.http_addr, "projector started");
    let shutdown = CancellationToken::new();
    let http = tokio::spawn(claimledger_projector::http::serve(
        listener,
        projector.probes(),
        shutdown.clone(),
    ));
    let signal = tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            crate::shutdown::signal().await;
            shutdown.cancel();
        }
    });
    let outcome = projector.run(shutdown.clone()).await;
    shutdown.cancel();
    signal.abort();
    http.await.context("the HTTP task panicked")??;
    outcome.context("the projector stopped on an error")
}

async fn run_rebuild(args: &RebuildArgs) -> anyhow::Result<()> {
    // A rebuild only reads the log: it never creates the stream.
    let log = args.connection.log.open_existing().await?;
    let (log, pool, config) = connect(&args.connection, log).await?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} rebuilding [{elapsed_precise}] {wide_bar} {pos}/{len} log positions, ETA {eta}",
        )
        .context("the progress bar template")?,
    );
    let mut progress = |step: RebuildProgress| {
        bar.set_length(step.target);
        bar.set_position(step.applied_through.min(step.target));
    };
    let report = rebuild(&log, &pool, &config, args.chain, &mut progress).await?;
    bar.finish_and_clear();
    writeln!(
        std::io::stdout().lock(),
        "rebuilt {} log positions ({} events) in {:.1} s; the live read models now stand at sequence {}",
        report.positions,
        report.events,
        report.elapsed.as_secs_f64(),
        report.checkpoint
    )?;
    Ok(())
}
