//! `claimledger rules check|publish <dir>` and `claimledger serve payer-rules`: the operator's side
//! of payer rules. Checking validates a rules directory (every problem as `file:line: field:
//! reason`, exit status 1); publishing appends the versions the log does not hold yet as
//! `RulesChanged` events; serving answers the payer-rules NATS endpoints from a rules directory.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use claimledger_events::{ChainId, UtcMicros};
use claimledger_payer_rules::RuleBook;
use claimledger_payer_rules::publish::publish;
use claimledger_payer_rules::service::{DEFAULT_SUBJECT_PREFIX, PayerRulesService, ServiceConfig};

use crate::log_args::LogArgs;

/// Arguments of `claimledger rules`.
#[derive(Debug, clap::Args)]
pub struct RulesArgs {
    #[command(subcommand)]
    pub command: RulesCommand,
}

/// `claimledger rules` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum RulesCommand {
    /// Validates a rules directory (payer files plus reference/); lists every problem as
    /// file:line: field: reason and exits non-zero if there is any.
    Check {
        /// The rules directory, e.g. `rules`.
        dir: PathBuf,
    },
    /// Validates a rules directory, then appends every payer version the event log does not hold
    /// yet as a RulesChanged event. Unchanged versions write nothing; an edited published version
    /// is refused.
    Publish {
        /// The rules directory, e.g. `rules`.
        dir: PathBuf,
        /// The chain (tenant) whose log receives the rules.
        #[arg(long, env = "CLAIMLEDGER_CHAIN_ID", value_parser = parse_chain)]
        chain: ChainId,
        #[command(flatten)]
        log: LogArgs,
    },
}

/// Arguments of `claimledger serve payer-rules`.
#[derive(Debug, clap::Args)]
pub struct ServePayerRulesArgs {
    /// The rules directory to serve.
    #[arg(long, default_value = "rules")]
    pub rules_dir: PathBuf,
    /// The NATS server.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// Endpoints answer on `<prefix>.decide`, `<prefix>.choose_code` and `<prefix>.visit`.
    #[arg(long, env = "CLAIMLEDGER_PAYER_RULES_SUBJECT_PREFIX", default_value = DEFAULT_SUBJECT_PREFIX)]
    pub subject_prefix: String,
}

/// Parses a chain id given as a UUID.
fn parse_chain(value: &str) -> Result<ChainId, String> {
    uuid::Uuid::parse_str(value)
        .map(ChainId::from)
        .map_err(|error| format!("{value:?} is not a UUID: {error}"))
}

fn load(dir: &std::path::Path) -> anyhow::Result<RuleBook> {
    claimledger_payer_rules::load_dir(dir)
        .with_context(|| format!("the rules in {} are not valid", dir.display()))
}

/// Runs `claimledger rules ...`.
pub fn run_rules(args: &RulesArgs) -> anyhow::Result<()> {
    match &args.command {
        RulesCommand::Check { dir } => check(dir),
        RulesCommand::Publish { dir, chain, log } => {
            let book = load(dir)?;
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(publish_rules(book, *chain, log))
        }
    }
}

fn check(dir: &std::path::Path) -> anyhow::Result<()> {
    let book = load(dir)?;
    let payers = book.payer_ids();
    let versions: usize = payers
        .iter()
        .filter_map(|payer| book.payer(payer))
        .map(|payer| payer.versions.len())
        .sum();
    let reference = book.reference();
    writeln!(
        std::io::stdout().lock(),
        "ok: {} payers ({}), {versions} rules versions, {} NCCI pairs, {} MUE limits, {} always-therapy codes",
        payers.len(),
        payers.join(", "),
        reference.ptp_edits.len(),
        reference.mue_limits.len(),
        reference.always_therapy.len()
    )?;
    Ok(())
}

async fn publish_rules(book: RuleBook, chain: ChainId, args: &LogArgs) -> anyhow::Result<()> {
    let log = args.open().await?;
    let recorded_at = UtcMicros(chrono::Utc::now().timestamp_micros());
    let report = publish(&log, chain, &book, recorded_at).await?;
    let mut out = std::io::stdout().lock();
    for (payer, version) in &report.appended {
        writeln!(out, "published {payer} version {version}")?;
    }
    writeln!(
        out,
        "{} version(s) published, {} already on the log unchanged",
        report.appended.len(),
        report.unchanged.len()
    )?;
    Ok(())
}

/// Runs `claimledger serve payer-rules` until Ctrl-C or SIGTERM.
pub fn run_serve(args: &ServePayerRulesArgs) -> anyhow::Result<()> {
    let book = Arc::new(load(&args.rules_dir)?);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let client = async_nats::connect(&args.nats_url)
            .await
            .with_context(|| format!("connecting to NATS at {}", args.nats_url))?;
        let service = PayerRulesService::start(
            &client,
            book,
            &ServiceConfig::new(args.subject_prefix.clone()),
        )
        .await?;
        service.run_until_stopped(crate::shutdown::signal()).await?;
        tracing::info!("payer-rules service stopped");
        Ok(())
    })
}
