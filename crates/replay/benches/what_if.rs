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

use integration_tests::workload;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::NaiveDate;
use claimledger_log::{EventLog, LogConfig, ReplayFilter, ReplayItem};
use claimledger_replay::replay::{DEFAULT_MAX_OPEN_SESSIONS, ReplayRequest, replay};
use claimledger_replay::report::Scope;
use futures::StreamExt as _;
use integration_tests::TestEnv;
use uuid::Uuid;

use crate::workload::{LAKESHORE_V2_VERSION, VISIT_DAYS, VisitDays, Workload, now, rules_dir};

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

/// The projector bench's chain and log settings, so the two benches share a generated log.
fn bench_workload(visits: u64) -> Workload {
    Workload {
        chain: Uuid::from_u128(0x0b3c_0000_0000_4000_8000_0000_0000_0001).into(),
        clinic: Uuid::from_u128(0x0b3c_0000_0000_4000_8000_0000_0000_0002).into(),
        therapists: (3..6)
            .map(|n| Uuid::from_u128(0x0b3c_0000_0000_4000_8000_0000_0000_0000 + n).into())
            .collect(),
        days: VisitDays::Dated {
            visits_per_day: visits.div_ceil(VISIT_DAYS),
        },
    }
}

fn bench_log_config(visits: u64) -> LogConfig {
    let mut config = LogConfig::new(
        format!("BENCH_REPLAY_DATED_{visits}"),
        format!("bench.replaydated{visits}"),
    );
    // Short: the window's message ids are kept in the server's memory while the log is built.
    config.duplicate_window = Duration::from_secs(5);
    config
}

async fn delete_log(nats: &async_nats::Client, config: &LogConfig) {
    let jetstream = async_nats::jetstream::new(nats.clone());
    for stream in [config.stream_name.clone(), config.parked_stream_name()] {
        // A missing stream is what we want; any other failure shows when the log is reopened.
        let _ = jetstream.delete_stream(&stream).await;
    }
}

/// Opens the bench log, building it unless `reuse` finds it complete.
async fn bench_log(
    env: &TestEnv,
    workload: &Workload,
    visits: u64,
    reuse: bool,
    out: &mut impl std::io::Write,
) -> anyhow::Result<EventLog> {
    let config = bench_log_config(visits);
    let visit_commits: u64 = (0..visits)
        .map(|index| workload.visit_commits(index).len() as u64)
        .sum();
    if reuse {
        let log = EventLog::connect(env.nats.clone(), config.clone()).await?;
        let last = log.last_sequence().await?;
        let mut chain_wide = 0;
        let mut reader = log
            .replay(1, ReplayFilter::ChainWide(Some(workload.chain)))
            .await?;
        while let Some(item) = reader.next().await {
            item?;
            chain_wide += 1;
        }
        if chain_wide > 0 && last == chain_wide + visit_commits {
            writeln!(
                out,
                "reusing {} ({visits} visits, {last} commits)",
                config.stream_name
            )?;
            return Ok(log);
        }
        writeln!(
            out,
            "{} holds {last} commits; rebuilding it",
            config.stream_name
        )?;
    }
    delete_log(&env.nats, &config).await;
    let log = EventLog::connect(env.nats.clone(), config).await?;
    workload.publish_rules(&log).await?;
    workload.record_directory(&log).await?;
    let started = Instant::now();
    workload.append_visits(&log, 0..visits, 512).await?;
    writeln!(
        out,
        "generated {visits} visits ({visit_commits} commits) in {:.1} s",
        started.elapsed().as_secs_f64()
    )?;
    Ok(log)
}

/// The repository's rules with Lakeshore's second version appended.
fn proposed_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("claimledger-what-if-{}", Uuid::new_v4()));
    copy_dir(&rules_dir(), &dir)?;
    let file = dir.join("lakeshore-mutual.toml");
    let mut text = std::fs::read_to_string(&file)?;
    text.push_str(LAKESHORE_V2_VERSION);
    std::fs::write(&file, text)?;
    Ok(dir)
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
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
    let workload = bench_workload(visits);
    let log = bench_log(&env, &workload, visits, reuse, &mut out).await?;
    let commits = log.last_sequence().await?;
    let proposed = proposed_dir()?;

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
        delete_log(&env.nats, log.config()).await;
    }
    env.cleanup().await
}
