//! `claimledger units`: the 8-minute-rule calculator. Takes minutes per code, runs the payer's
//! unit method (CMS total time or AMA per code) from the billing core and prints the units per
//! code and in total with the reasoning, as a table or as JSON.

use std::io::Write;

use anyhow::{Context, bail};
use claimledger_billing::units::{
    CodeMinutes, CodeUnits, LeftoverOutcome, TieBreakRule, UnitReason, VisitUnits, visit_units,
};
use claimledger_billing::{CptCode, TieBreak, UnitMethod};
use serde::Serialize;

/// Arguments of `claimledger units`.
#[derive(Debug, clap::Args)]
pub struct UnitsArgs {
    /// Minutes per code, e.g. `97110=33 97140=7` (one entry per code).
    #[arg(value_name = "CODE=MINUTES", required = true, value_parser = parse_code_minutes)]
    pub minutes: Vec<CodeMinutes>,
    /// The payer's unit method; there is no default because the two differ and the payer decides.
    #[arg(long, value_enum)]
    pub method: MethodArg,
    /// The code the clinician marked as primary: it wins ties for the last unit (CMS).
    #[arg(long, value_name = "CODE", value_parser = parse_code)]
    pub primary: Option<CptCode>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `--method` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MethodArg {
    /// CMS total time (Medicare and payers that follow it).
    Cms,
    /// AMA per code ("rule of eights").
    Ama,
}

impl From<MethodArg> for UnitMethod {
    fn from(method: MethodArg) -> Self {
        match method {
            MethodArg::Cms => UnitMethod::CmsTotalTime,
            MethodArg::Ama => UnitMethod::AmaPerCode,
        }
    }
}

fn parse_code(value: &str) -> Result<CptCode, String> {
    CptCode::parse("code", value).map_err(|error| error.to_string())
}

/// Parses one `CODE=MINUTES` argument; clap prefixes the message with the argument it refused.
fn parse_code_minutes(value: &str) -> Result<CodeMinutes, String> {
    let (code, minutes) = value
        .split_once('=')
        .ok_or_else(|| "missing '=': write CODE=MINUTES, e.g. 97110=33".to_owned())?;
    let code = parse_code(code.trim())?;
    let minutes = minutes
        .trim()
        .parse::<u32>()
        .map_err(|_| format!("minutes for {code}: {minutes:?} is not a whole number of minutes"))?;
    Ok(CodeMinutes { code, minutes })
}

/// Runs the command and writes its output to stdout.
pub fn run(args: &UnitsArgs) -> anyhow::Result<()> {
    let units = compute(args)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &UnitsReport::from(&units))?;
        writeln!(out)?;
    } else {
        out.write_all(render_table(&units).as_bytes())?;
    }
    Ok(())
}

/// Checks the arguments as a whole and computes the units.
pub fn compute(args: &UnitsArgs) -> anyhow::Result<VisitUnits> {
    for (index, entry) in args.minutes.iter().enumerate() {
        if let Some(first) = args.minutes[..index]
            .iter()
            .position(|earlier| earlier.code == entry.code)
        {
            bail!(
                "CODE=MINUTES argument {} repeats code {} (already given as argument {}); give each code once with its total minutes",
                index + 1,
                entry.code,
                first + 1
            );
        }
    }
    if let Some(primary) = args.primary
        && !args.minutes.iter().any(|entry| entry.code == primary)
    {
        bail!("--primary {primary}: the code is not among the CODE=MINUTES arguments");
    }
    let tie_break = TieBreak {
        primary: args.primary,
        expected_allowed_per_unit: &[],
    };
    visit_units(args.method.into(), &args.minutes, &tie_break).context("computing units")
}

/// The human table: one row per code, then the total, then the reasoning.
pub fn render_table(units: &VisitUnits) -> String {
    let mut text = format!(
        "Method: {}\n\n{:<6} {:>7} {:>5}  {}\n",
        units.timed.method, "CODE", "MINUTES", "UNITS", "WHY"
    );
    for entry in &units.timed.codes {
        text.push_str(&format!(
            "{:<6} {:>7} {:>5}  {entry}\n",
            entry.code.as_str(),
            entry.minutes,
            entry.units
        ));
    }
    for entry in &units.untimed {
        text.push_str(&format!(
            "{:<6} {:>7} {:>5}  {entry}\n",
            entry.code.as_str(),
            entry.minutes,
            1
        ));
    }
    text.push_str(&format!(
        "{:<6} {:>7} {:>5}  timed minutes and all units\n\n{}\n",
        "TOTAL",
        units.timed.total_timed_minutes,
        units.total_units(),
        units.timed.summary()
    ));
    text
}

/// JSON output. The billing core's types carry no serde derives; this is the binary's own shape.
#[derive(Debug, Serialize)]
pub struct UnitsReport {
    method: &'static str,
    total_timed_minutes: u32,
    total_units: u32,
    summary: String,
    codes: Vec<CodeReport>,
    tie: Option<TieReport>,
}

#[derive(Debug, Serialize)]
struct CodeReport {
    code: &'static str,
    minutes: u32,
    units: u32,
    timed: bool,
    /// The fewest and most units any allowed assignment gives this code.
    allowed_units: [u32; 2],
    reason: ReasonReport,
    explanation: String,
}

#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum ReasonReport {
    TotalTime {
        full_blocks: u32,
        leftover_minutes: u32,
        leftover_rank: Option<u32>,
        leftover_earned_unit: bool,
    },
    PerCode {
        minutes: u32,
    },
    Untimed,
}

#[derive(Debug, Serialize)]
struct TieReport {
    tied_codes: Vec<&'static str>,
    leftover_minutes: u32,
    winners: Vec<&'static str>,
    rule: &'static str,
}

fn method_name(method: UnitMethod) -> &'static str {
    match method {
        UnitMethod::CmsTotalTime => "cms_total_time",
        UnitMethod::AmaPerCode => "ama_per_code",
    }
}

fn reason_report(entry: &CodeUnits<CptCode>) -> ReasonReport {
    match entry.reason {
        UnitReason::PerCode { minutes } => ReasonReport::PerCode { minutes },
        UnitReason::TotalTime {
            full_blocks,
            leftover_minutes,
            leftover,
        } => {
            let (leftover_rank, leftover_earned_unit) = match leftover {
                LeftoverOutcome::NoLeftover => (None, false),
                LeftoverOutcome::EarnedUnit { rank, .. } => (Some(rank), true),
                LeftoverOutcome::NoUnit { rank, .. } => (Some(rank), false),
            };
            ReasonReport::TotalTime {
                full_blocks,
                leftover_minutes,
                leftover_rank,
                leftover_earned_unit,
            }
        }
    }
}

impl From<&VisitUnits> for UnitsReport {
    fn from(units: &VisitUnits) -> Self {
        let timed = units.timed.codes.iter().map(|entry| CodeReport {
            code: entry.code.as_str(),
            minutes: entry.minutes,
            units: entry.units,
            timed: true,
            allowed_units: [entry.allowed_units.0, entry.allowed_units.1],
            reason: reason_report(entry),
            explanation: entry.to_string(),
        });
        let untimed = units.untimed.iter().map(|entry| CodeReport {
            code: entry.code.as_str(),
            minutes: entry.minutes,
            units: 1,
            timed: false,
            allowed_units: [1, 1],
            reason: ReasonReport::Untimed,
            explanation: entry.to_string(),
        });
        let tie = units.timed.tie.as_ref().map(|tie| TieReport {
            tied_codes: tie.tied_codes.iter().map(|code| code.as_str()).collect(),
            leftover_minutes: tie.leftover_minutes,
            winners: tie.winners.iter().map(|code| code.as_str()).collect(),
            rule: match tie.rule {
                TieBreakRule::ClinicianPrimary => "clinician_primary",
                TieBreakRule::HigherExpectedAllowed => "higher_expected_allowed",
                TieBreakRule::LowerCodeNumber => "lower_code_number",
            },
        });
        UnitsReport {
            method: method_name(units.timed.method),
            total_timed_minutes: units.timed.total_timed_minutes,
            total_units: units.total_units(),
            summary: units.timed.summary(),
            codes: timed.chain(untimed).collect(),
            tie,
        }
    }
}
