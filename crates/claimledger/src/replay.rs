//! `claimledger replay --rules <dir>`: re-derives the claims on the log under proposed payer rules,
//! streaming the log in bounded memory, and prints what would change (table, CSV or JSON), with a
//! progress bar on stderr when it is a terminal. Reads the log only (provider data included) and
//! writes nothing.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use chrono::NaiveDate;
use claimledger_events::UtcMicros;
use claimledger_replay::render::{Format, render};
use claimledger_replay::replay::{
    DEFAULT_MAX_OPEN_SESSIONS, ReplayProgress, ReplayRequest, load_proposed, replay_with_progress,
};
use claimledger_replay::report::Scope;
use indicatif::{ProgressBar, ProgressStyle};
use uuid::Uuid;

use crate::log_args::LogArgs;

/// Arguments of `claimledger replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The proposed rules directory (payer files plus reference/), validated like `rules check`.
    #[arg(long = "rules")]
    pub rules: PathBuf,
    /// Only this chain's claims (and only this chain's part of the log is read).
    #[arg(long)]
    pub chain: Option<Uuid>,
    /// The first date of service compared (YYYY-MM-DD).
    #[arg(long)]
    pub from: Option<NaiveDate>,
    /// The last date of service compared (YYYY-MM-DD).
    #[arg(long)]
    pub to: Option<NaiveDate>,
    /// The date timely filing is judged on (YYYY-MM-DD); today when not given.
    #[arg(long)]
    pub as_of: Option<NaiveDate>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// Write the report to this file instead of standard output.
    #[arg(long)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub log: LogArgs,
    /// The projector's rules directory: its reference/ tables (NCCI, MUE, always-therapy) price
    /// both derivations, as they do in the projector.
    #[arg(long, env = "CLAIMLEDGER_RULES_DIR", default_value = "rules")]
    pub reference_dir: PathBuf,
}

/// `--format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns.
    Table,
    /// Comma-separated values.
    Csv,
    /// JSON.
    Json,
}

/// Runs `claimledger replay`.
pub fn run(args: &ReplayArgs) -> anyhow::Result<()> {
    // The clock is read here, at the edge; the replay itself takes the dates as inputs.
    let now = chrono::Utc::now();
    let request = ReplayRequest {
        proposed_dir: args.rules.clone(),
        reference_dir: args.reference_dir.clone(),
        scope: Scope {
            chain: args.chain,
            from: args.from,
            to: args.to,
            as_of: args.as_of.unwrap_or_else(|| now.date_naive()),
        },
        recorded_at: UtcMicros(now.timestamp_micros()),
        max_open_sessions: DEFAULT_MAX_OPEN_SESSIONS,
    };
    // Invalid proposed rules are reported before anything connects (replay checks them again).
    load_proposed(&args.rules)?;
    let runtime = tokio::runtime::Runtime::new()?;
    // indicatif draws on stderr only when it is a terminal, so redirected output stays clean.
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} replaying [{elapsed_precise}] {wide_bar} {pos}/{len} log positions, ETA {eta} {msg}",
        )
        .context("the progress bar template")?,
    );
    let mut progress = |step: ReplayProgress| {
        bar.set_length(step.last);
        bar.set_position(step.through.min(step.last));
        bar.set_message(format!("({} sessions held)", step.open_sessions));
    };
    let report = runtime.block_on(async {
        let log = args.log.open_existing().await?;
        anyhow::Ok(replay_with_progress(&log, &request, &mut progress).await?)
    })?;
    bar.finish_and_clear();
    let format = match args.format {
        OutputFormat::Table => Format::Table,
        OutputFormat::Csv => Format::Csv,
        OutputFormat::Json => Format::Json,
    };
    let text = render(&report, format)?;
    match &args.output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    if format != Format::Table || args.output.is_some() {
        // The table prints its own timing; the other formats keep stdout machine-readable.
        writeln!(
            std::io::stderr().lock(),
            "replayed {} log positions: {} claims compared, {} changed, in {} ms",
            report.log_positions,
            report.claims_compared,
            report.changed.len(),
            report.timings.total_ms
        )?;
    }
    Ok(())
}
