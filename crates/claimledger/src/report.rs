//! `claimledger serve reporting` runs the reporting HTTP service until Ctrl-C or SIGTERM, and
//! `claimledger report reimbursement|denial-reasons|best-code|outliers --chain <id> ...` prints a
//! report from the database (through the same query layer and row-level security as the service)
//! as an aligned table, CSV or JSON. Settings come from the environment (`DATABASE_URL`,
//! `CLAIMLEDGER_REPORTING_*`; see `claimledger_reporting::config`).

use std::io::Write;

use anyhow::Context;
use chrono::{NaiveDate, Utc};
use claimledger_reporting::config::Settings;
use claimledger_reporting::filter::{
    Dimension, ReportFilter, Source, parse_code, parse_date, parse_region,
};
use claimledger_reporting::insights::{DEFAULT_MIN_LINES, DEFAULT_Z_THRESHOLD, Thresholds};
use claimledger_reporting::reimbursement::ReportQuery;
use claimledger_reporting::reports::Reports;
use claimledger_reporting::startup::Application;
use claimledger_reporting::table::Table;
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
use sqlx::postgres::PgPoolOptions;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// `claimledger serve reporting`: no flags; DATABASE_URL and CLAIMLEDGER_REPORTING_* apply.
#[derive(Debug, Args)]
pub struct ServeReportingArgs {}

/// `claimledger report ...`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(subcommand)]
    command: ReportCommand,
}

#[derive(Debug, Subcommand)]
enum ReportCommand {
    /// Billed, allowed, paid, units, yield per unit, denial rate and days to payment per group.
    Reimbursement(ReimbursementArgs),
    /// The most frequent denial reasons (group code and CARC) per group.
    DenialReasons(DenialReasonsArgs),
    /// The best-paying code per payer from observed payments, with the evidence.
    BestCode(InsightArgs),
    /// Clinics whose code yield or denial rate stands out from the rest of the chain.
    Outliers(InsightArgs),
}

/// How the report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Aligned columns, dollars.
    Table,
    /// CSV with a header line, cents.
    Csv,
    /// The HTTP API's JSON.
    Json,
}

/// Where the figures come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SourceArg {
    /// Rollups for whole months, lines otherwise.
    Auto,
    /// The monthly rollups.
    Rollups,
    /// The claim lines.
    Lines,
}

#[derive(Debug, Args)]
struct CommonArgs {
    /// The chain (tenant) to report on.
    #[arg(long)]
    chain: Uuid,
    /// First date of service (default: the first day of the month eleven months ago).
    #[arg(long, value_parser = |text: &str| parse_date("from", text).map_err(|error| error.to_string()))]
    from: Option<NaiveDate>,
    /// Last date of service, inclusive (default: the last day of this month).
    #[arg(long, value_parser = |text: &str| parse_date("to", text).map_err(|error| error.to_string()))]
    to: Option<NaiveDate>,
    /// Only this clinic.
    #[arg(long)]
    clinic: Option<Uuid>,
    /// Only clinics in this region (US state, e.g. WA).
    #[arg(long, value_parser = |text: &str| parse_region(text).map_err(|error| error.to_string()))]
    region: Option<String>,
    /// Only this payer.
    #[arg(long)]
    payer: Option<Uuid>,
    /// Only this procedure code.
    #[arg(long, value_parser = |text: &str| parse_code(text).map_err(|error| error.to_string()))]
    code: Option<String>,
    /// Rollups, lines, or whichever answers the range exactly.
    #[arg(long, value_enum, default_value = "auto")]
    source: SourceArg,
    /// table, csv or json.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

impl CommonArgs {
    fn filter(&self) -> anyhow::Result<ReportFilter> {
        let mut filter = ReportFilter::last_year(Utc::now().date_naive());
        filter.from = self.from.unwrap_or(filter.from);
        filter.to = self.to.unwrap_or(filter.to);
        filter.clinics = self.clinic.map(|clinic| vec![clinic]);
        filter.region.clone_from(&self.region);
        filter.payer = self.payer;
        filter.code.clone_from(&self.code);
        filter.validate()?;
        Ok(filter)
    }

    fn source(&self) -> Source {
        match self.source {
            SourceArg::Auto => Source::Auto,
            SourceArg::Rollups => Source::Rollups,
            SourceArg::Lines => Source::Lines,
        }
    }
}

#[derive(Debug, Args)]
struct ReimbursementArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Comma-separated dimensions: code, payer, clinic, month (empty: one total row).
    #[arg(long, default_value = "code,payer")]
    group_by: String,
}

#[derive(Debug, Args)]
struct DenialReasonsArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Comma-separated dimensions: code, payer, clinic, month (empty: chain-wide).
    #[arg(long, default_value = "")]
    group_by: String,
    /// Reasons per group.
    #[arg(long, default_value_t = 5)]
    limit: i64,
}

#[derive(Debug, Args)]
struct InsightArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Adjudicated lines a code (best code) or clinic (outliers) needs.
    #[arg(long, default_value_t = DEFAULT_MIN_LINES)]
    min_lines: i64,
    /// Outliers: the |z| from which a clinic stands out.
    #[arg(long, default_value_t = DEFAULT_Z_THRESHOLD)]
    z_threshold: f64,
}

impl InsightArgs {
    fn thresholds(&self) -> Thresholds {
        Thresholds {
            min_lines: self.min_lines,
            z_threshold: self.z_threshold,
        }
    }
}

/// Serves the reporting API until Ctrl-C or SIGTERM, then lets requests in flight finish.
pub fn run_serve(_args: &ServeReportingArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let settings = Settings::from_env().context("reading the reporting settings")?;
        let application = Application::build(settings)
            .await
            .context("starting the reporting service")?;
        let shutdown = CancellationToken::new();
        let signal = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                crate::shutdown::signal().await;
                shutdown.cancel();
            }
        });
        let served = application.run_until_stopped(shutdown).await;
        signal.abort();
        served.context("serving the reporting API")
    })
}

/// Prints one report.
pub fn run_report(args: &ReportArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let text = runtime.block_on(async {
        let settings = Settings::from_env().context("reading the database settings")?;
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(settings.database.connect_options()?)
            .await
            .context("connecting to PostgreSQL")?;
        let reports = Reports::new(pool);
        match &args.command {
            ReportCommand::Reimbursement(args) => {
                let query = ReportQuery {
                    filter: args.common.filter()?,
                    group_by: Dimension::parse_list(&args.group_by)?,
                    source: args.common.source(),
                };
                let report = reports.reimbursement(args.common.chain, &query).await?;
                render(&report, args.common.format)
            }
            ReportCommand::DenialReasons(args) => {
                let query = ReportQuery {
                    filter: args.common.filter()?,
                    group_by: Dimension::parse_list(&args.group_by)?,
                    source: args.common.source(),
                };
                let report = reports
                    .denial_reasons(args.common.chain, &query, args.limit)
                    .await?;
                render(&report, args.common.format)
            }
            ReportCommand::BestCode(args) => {
                let report = reports
                    .best_code(
                        args.common.chain,
                        &args.common.filter()?,
                        args.common.source(),
                        args.thresholds(),
                    )
                    .await?;
                render(&report, args.common.format)
            }
            ReportCommand::Outliers(args) => {
                let report = reports
                    .outliers(
                        args.common.chain,
                        &args.common.filter()?,
                        args.common.source(),
                        args.thresholds(),
                    )
                    .await?;
                render(&report, args.common.format)
            }
        }
    })?;
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}

fn render<'a, T>(report: &'a T, format: Format) -> anyhow::Result<String>
where
    T: Serialize,
    Table: From<&'a T>,
{
    Ok(match format {
        Format::Table => Table::from(report).to_text(),
        Format::Csv => Table::from(report).to_csv(),
        Format::Json => {
            let mut text = serde_json::to_string_pretty(report)?;
            text.push('\n');
            text
        }
    })
}
