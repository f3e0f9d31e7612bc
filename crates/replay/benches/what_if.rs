//! What-if replay benchmark: `claimledger replay --rules <dir>` over a generated log of N visits
//! (about six events each) with a proposed second version of one payer's rules, in events per
//! second and peak memory, against a raw baseline measured in the same run: reading (and
//! decoding) the same log straight through `EventLog::replay`, deriving nothing.
//!
//! The replay runs in this process; its peak memory is this process's VmHWM, reset just before the
//! replay starts (`/proc/self/clear_refs`), so it covers the replay alone plus whatever this
//! process still held from generating the log (printed as the resident size at the reset). It uses
//! the allocator of the `claimledger` binary.
//!
//! - `BENCH_VISITS` sets N (default 3000); `BENCH_VISITS=300000` is the measurement.
//! - `BENCH_REUSE=1` keeps the generated log and reuses it when a later run asks for the same N.
//!   The log is the projector bench's (same stream, chain and ids, visits in date order), so a log
//!   either bench generated serves both.

use integration_tests::{bench_log, workload};

use std::io::Write as _;
use std::time::Instant;

use anyhow::Context as _;
use chrono::NaiveDate;
use claimledger_log::{EventLog, ReplayFilter, ReplayItem};
use claimledger_replay::replay::{DEFAULT_MAX_OPEN_SESSIONS, ReplayRequest, replay};
use claimledger_replay::report::Scope;
use futures::StreamExt as _;
use integration_tests::TestEnv;

use crate::workload::{
    LAKESHORE_V2_VERSION, VISIT_DAYS, VisitDays, now, rules_dir, rules_dir_with_lakeshore,
};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The memory target of a replay, whatever the log's length.
const TARGET_MIB: f64 = 512.0;
/// Visits in a 500-clinic chain-year, for the extrapolated time.
const CHAIN_YEAR_VISITS: f64 = 3_100_000.0;

fn env_number(name: &str, default: u64) -> anyhow::Result<u64> {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .with_context(|| format!("{name} must be a whole number, got {value:?}")),
        Err(_) => Ok(default),
    }
}

/// A figure of `/proc/self/status` in MiB (`VmHWM`, `VmRSS`).
fn status_mib(field: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|line| line.starts_with(field))
        .with_context(|| format!("no {field} in /proc/self/status"))?;
    let kib: f64 = line
        .split_whitespace()
        .nth(1)
        .with_context(|| format!("{field} has no value"))?
        .parse()?;
    Ok(kib / 1024.0)
}

/// The raw baseline: the whole log read and decoded, nothing derived. Events and seconds.
async fn read_baseline(log: &EventLog) -> anyhow::Result<(u64, f64)> {
    let started = Instant::now();
    let mut reader = log.replay(1, ReplayFilter::All).await?;
    let mut events: u64 = 0;
    while let Some(item) = reader.next().await {
        if let ReplayItem::Commit(recorded) = item? {
            events += recorded.commit.events.len() as u64;
        }
    }
    Ok((events, started.elapsed().as_secs_f64()))
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let visits = env_number("BENCH_VISITS", 3000)?;
    let reuse = env_number("BENCH_REUSE", 0)? == 1;
    let mut out = std::io::stdout().lock();
    let env = TestEnv::start().await?;
    let workload = bench_log::workload(VisitDays::Dated {
        visits_per_day: visits.div_ceil(VISIT_DAYS),
    });
    let log = bench_log::open(&env, &workload, visits, reuse, &mut out).await?;
    let commits = log.last_sequence().await?;
    let proposed = rules_dir_with_lakeshore(LAKESHORE_V2_VERSION)?;

    let (events, baseline_seconds) = read_baseline(&log).await?;
    writeln!(
        out,
        "{commits} commits, {events} events ({visits} visits in date order)\n\
         baseline (read and decode, derive nothing): {baseline_seconds:.2} s, {:.0} events/s",
        events as f64 / baseline_seconds
    )?;

    let request = ReplayRequest {
        proposed_dir: proposed.clone(),
        reference_dir: rules_dir(),
        scope: Scope {
            chain: None,
            from: None,
            to: None,
            as_of: NaiveDate::from_ymd_opt(2026, 7, 1).context("a date")?,
        },
        recorded_at: now(),
        max_open_sessions: DEFAULT_MAX_OPEN_SESSIONS,
    };
    let resident_before = status_mib("VmRSS:")?;
    std::fs::write("/proc/self/clear_refs", "5").context("resetting VmHWM")?;
    let started = Instant::now();
    let report = replay(&log, &request).await?;
    let seconds = started.elapsed().as_secs_f64();
    let peak = status_mib("VmHWM:")?;
    std::fs::remove_dir_all(&proposed).ok();
    writeln!(
        out,
        "replay: {seconds:.2} s (reading {:.2} s, deriving and comparing {:.2} s), {:.0} events/s, \
         {} claims compared, {} changed",
        report.timings.read_log_ms as f64 / 1000.0,
        report.timings.derive_ms as f64 / 1000.0,
        events as f64 / seconds,
        report.claims_compared,
        report.changed.len()
    )?;
    writeln!(
        out,
        "replay peak memory (VmHWM of this process, reset at the start; {resident_before:.0} MiB resident then): \
         {peak:.0} MiB (target <= {TARGET_MIB:.0})"
    )?;
    writeln!(
        out,
        "replay against the raw read: {:.2}x its events/s",
        baseline_seconds / seconds
    )?;
    writeln!(
        out,
        "a 500-clinic chain-year ({CHAIN_YEAR_VISITS:.0} visits) at this rate: about {:.0} s (target <= 120)",
        seconds * CHAIN_YEAR_VISITS / visits as f64
    )?;
    if !reuse {
        bench_log::delete(&env.nats, log.config()).await;
    }
    env.cleanup().await
}
