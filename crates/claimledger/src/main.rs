//! The `claimledger` binary: parses the command line, sets up logging on stderr and runs one
//! subcommand. Each subcommand lives in its own module; add a `Command` variant to add one.

mod demo;
mod log_args;
mod payer_rules;
mod projector;
mod replay;
mod report;
mod sessions;
mod shutdown;
mod units;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// ClaimLedger: billing for massage and manual-therapy clinic chains.
#[derive(Debug, Parser)]
#[command(name = "claimledger", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Every subcommand of the binary.
#[derive(Debug, Subcommand)]
enum Command {
    /// The end-to-end demo: records a synthetic chain's visits through the API, projects them and
    /// prints the draft claims' charges by payer and code.
    Demo(demo::DemoArgs),
    /// Timed units from minutes per code (the 8-minute rule), with the reasoning.
    Units(units::UnitsArgs),
    /// Payer rules files: validate them, or publish new versions to the event log.
    Rules(payer_rules::RulesArgs),
    /// Runs one service until Ctrl-C or SIGTERM.
    #[command(subcommand)]
    Serve(ServeCommand),
    /// The read-model projector: run it, or rebuild the read models from the log.
    Projector(projector::ProjectorArgs),
    /// API keys: bootstrap a chain with its first admin key, or add keys to a chain.
    Keys(sessions::KeysArgs),
    /// What proposed payer rules would change: re-derives the claims on the log in memory under
    /// them and reports changed claims, totals and what can still be resubmitted.
    Replay(replay::ReplayArgs),
    /// Reports from the read models: reimbursement, denial reasons, best code per payer, outliers.
    Report(report::ReportArgs),
}

/// The services `claimledger serve` can run.
#[derive(Debug, Subcommand)]
enum ServeCommand {
    /// The payer-rules NATS service (decide, choose_code, visit).
    PayerRules(payer_rules::ServePayerRulesArgs),
    /// The sessions HTTP API (clinics record visits).
    Sessions(sessions::ServeSessionsArgs),
    /// The reporting HTTP API (port 8081, /openapi.json, /charts).
    Reporting(report::ServeReportingArgs),
}

// Every service in this binary allocates per request or per event; mimalloc is markedly cheaper than
// glibc's malloc for that pattern (measured on the projector, BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs the command; a failure prints its cause chain on stderr and exits with status 1.
fn main() -> ExitCode {
    init_tracing();
    let outcome = match Cli::parse().command {
        Command::Demo(args) => demo::run(&args),
        Command::Units(args) => units::run(&args),
        Command::Rules(args) => payer_rules::run_rules(&args),
        Command::Serve(ServeCommand::PayerRules(args)) => payer_rules::run_serve(&args),
        Command::Serve(ServeCommand::Sessions(args)) => sessions::run_serve(&args),
        Command::Projector(args) => projector::run(&args),
        Command::Keys(args) => sessions::run_keys(&args),
        Command::Replay(args) => replay::run(&args),
        Command::Report(args) => report::run_report(&args),
        Command::Serve(ServeCommand::Reporting(args)) => report::run_serve(&args),
    };
    let Err(error) = outcome else {
        return ExitCode::SUCCESS;
    };
    // If stderr itself is gone there is nowhere left to report to; the exit status still says it.
    let _ = writeln!(std::io::stderr(), "error: {error:#}");
    ExitCode::FAILURE
}

/// Logs go to stderr so that stdout carries only command output; `RUST_LOG` sets the filter.
fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
